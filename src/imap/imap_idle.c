/*
 * IDLE (RFC 2177, RFC 9051 section 6.3.13): the client waits, the hub's
 * callback writes the selected mailbox's changes at once, a keepalive line
 * every few minutes keeps NAT and mobile networks from dropping the flow,
 * and the line "DONE" ends it.
 */
#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "net/conn.h"

/*
 * Keepalives come every IMAP_IDLE_KEEPALIVE seconds, give or take
 * IMAP_IDLE_JITTER; the first one after a random share of the period, so
 * sessions that start IDLE together (after a reconnect storm) spread out.
 */
#define IMAP_IDLE_KEEPALIVE 240
#define IMAP_IDLE_JITTER 15

/* Exists only while a session idles: 32 bytes and a libevent timer. */
struct imap_idle {
	char *tag;
	struct event *timer;
};

static void
imap_idle_arm(struct imap_session *s, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds,
	    .tv_usec = (suseconds_t)arc4random_uniform(1000000)};

	evtimer_add(s->idle->timer, &tv);
}

/*
 * Output still queued from the last keepalive means the peer stopped
 * reading: the write timeout comes back to close the session.
 */
static void
imap_idle_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (s->conn == NULL)
		return;
	if (evbuffer_get_length(conn_output(s->conn)) > 0) {
		log_info("sid=" LOG_SID_FMT " proto=imap event=idle "
		         "error=not_reading",
		    s->sid);
		conn_set_timeout(s->conn, 60);
		imap_session_bye(s, "timeout", "Not reading; closing");
		return;
	}
	imap_session_printf(s, "* OK Still here");
	imap_idle_arm(s,
	    IMAP_IDLE_KEEPALIVE - IMAP_IDLE_JITTER +
	        arc4random_uniform(2 * IMAP_IDLE_JITTER));
}

void
imap_idle_start(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_session_bad(s, cmd->tag, "IDLE takes no arguments");
		return;
	}
	s->idle = xcalloc(1, sizeof(*s->idle));
	s->idle->tag = xstrdup(cmd->tag);
	s->idle->timer = evtimer_new(s->srv->base, imap_idle_keepalive, s);
	imap_idle_arm(s,
	    IMAP_IDLE_KEEPALIVE / 2 +
	        arc4random_uniform(IMAP_IDLE_KEEPALIVE / 2));
	s->phase = IMAP_PHASE_IDLE;
	/* Keepalives, not the autologout timer, rule an idling session. */
	conn_set_timeout(s->conn, 0);
	imap_session_printf(s, "+ idling");
	imap_select_updates(s, 1);
	log_debug("sid=" LOG_SID_FMT " proto=imap event=idle action=start",
	    s->sid);
}

void
imap_idle_free(struct imap_session *s)
{
	if (s->idle == NULL)
		return;
	event_free(s->idle->timer);
	free(s->idle->tag);
	free(s->idle);
	s->idle = NULL;
}

int
imap_idle_input(struct imap_session *s)
{
	char *line = NULL;
	int progress;
	int r = imap_session_line(s, &line, &progress);
	char *tag;

	if (r == 0)
		return progress;
	tag = s->idle->tag;
	s->idle->tag = NULL;
	imap_idle_free(s);
	imap_session_idle(s);
	if (r < 0)
		imap_session_bad(s, tag, "Line too long; expected DONE");
	else if (strcasecmp(line, "DONE") != 0)
		imap_session_bad(s, tag, "Expected DONE");
	else
		imap_session_printf(s, "%s OK IDLE terminated", tag);
	xfree_secret_str(line);
	free(tag);
	return 1;
}
