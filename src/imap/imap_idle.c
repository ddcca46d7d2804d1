/*
 * IDLE (RFC 2177, RFC 9051 section 6.3.13): the client waits, the hub's
 * callback writes the selected mailbox's changes at once, a keepalive line
 * every few minutes keeps NAT and mobile networks from dropping the flow,
 * and the line "DONE" ends it. A mailbox whose every watcher idles lets its
 * shared view hibernate (store_view.h) after idle_hibernate seconds; DONE
 * wakes it before the tagged answer, so the next command finds it whole.
 * The connection sleeps between writes from the start of IDLE
 * (conn_set_sleepy()), holding no bufferevent while nothing moves.
 */
#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "net/conn.h"
#include "net/wheel.h"
#include "store/store_view.h"

/*
 * Keepalives come every idle_keepalive seconds, give or take a sixteenth;
 * the first one after a random share of the period, so sessions that
 * start IDLE together (after a reconnect storm) spread out. The first
 * timer fires after idle_hibernate seconds to let the view sleep.
 */

/* Exists only while a session idles: 64 bytes, its timer included. */
struct imap_idle {
	struct wheel_timer timer; /* on srv->idle_wheel */
	struct imap_session *s;
	char *tag;
	struct store_view *view; /* counted idle in it; no reference */
	int rested;              /* the first timer (hibernation) fired */
	struct imap_idle_woken *waiting; /* updates wait for the view */
};

/* Updates of an idle session waiting for its view to wake. */
struct imap_idle_woken {
	struct imap_session *s;  /* NULL once the IDLE ended */
	struct store_view *view; /* one reference held */
};

/* A DONE waiting for the view to wake before it answers. */
struct imap_idle_done {
	struct imap_async async; /* first */
	char *tag;
	struct store_view *view; /* one reference held */
};

/* On the wheel, to the second; the callers spread sessions out. */
static void
imap_idle_arm(struct imap_session *s, unsigned seconds)
{
	wheel_add(s->srv->idle_wheel, &s->idle->timer, seconds);
}

/* Seconds to the first timer: hibernation, before the first keepalive. */
static unsigned
imap_idle_rest(const struct imap_session *s)
{
	unsigned ka = s->srv->set.idle_keepalive / 2;

	return s->srv->set.idle_hibernate < ka ? s->srv->set.idle_hibernate :
	                                         ka;
}

/*
 * Output still queued from the last keepalive means the peer stopped
 * reading: the write timeout comes back to close the session.
 */
void
imap_idle_on_timer(struct wheel_timer *t, void *arg)
{
	struct imap_session *s = ((struct imap_idle *)t)->s;
	unsigned ka = s->srv->set.idle_keepalive;

	if (s->conn == NULL)
		return;
	if (s->idle->view != NULL && store_view_hibernate(s->idle->view) == 0)
		log_debug("sid=" LOG_SID_FMT " proto=imap event=idle "
		          "action=hibernate messages=%u",
		    s->sid, store_view_count(s->idle->view));
	if (!s->idle->rested) {
		s->idle->rested = 1;
		log_debug("sid=" LOG_SID_FMT " proto=imap event=idle "
		          "action=rest asleep=%d",
		    s->sid, conn_is_asleep(s->conn));
		imap_idle_arm(s,
		    ka / 2 - imap_idle_rest(s) +
		        arc4random_uniform(ka / 2 + 1));
		return;
	}
	/* Asleep, the keepalive goes straight to the socket. */
	conn_gather(s->conn);
	if (evbuffer_get_length(conn_output(s->conn)) > 0) {
		conn_flush(s->conn);
		log_info("sid=" LOG_SID_FMT " proto=imap event=idle "
		         "error=not_reading",
		    s->sid);
		conn_set_timeout(s->conn, 60);
		imap_session_bye(s, "timeout", "Not reading; closing");
		return;
	}
	imap_session_printf(s, "* OK Still here");
	conn_flush(s->conn);
	imap_idle_arm(s, ka - ka / 16 + arc4random_uniform(ka / 8 + 1));
}

void
imap_idle_start(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_session_bad(s, cmd->tag, "IDLE takes no arguments");
		return;
	}
	s->idle = xcalloc(1, sizeof(*s->idle));
	s->idle->s = s;
	s->idle->tag = xstrdup(cmd->tag);
	if (s->sel != NULL) {
		s->idle->view = s->sel->view;
		store_view_idle(s->idle->view, 1);
	}
	imap_idle_arm(s, imap_idle_rest(s));
	s->phase = IMAP_PHASE_IDLE;
	/* Keepalives, not the autologout timer, rule an idling session. */
	conn_set_timeout(s->conn, 0);
	imap_session_printf(s, "+ idling");
	imap_select_updates(s, 1);
	/*
	 * Asleep as soon as this is written: the bufferevent it frees is
	 * the one the next session to connect takes, so thousands of idle
	 * sessions leave no kilobyte holes between the bytes they keep.
	 */
	conn_set_sleepy(s->conn, 1);
	log_debug("sid=" LOG_SID_FMT " proto=imap event=idle action=start",
	    s->sid);
}

void
imap_idle_free(struct imap_session *s)
{
	if (s->idle == NULL)
		return;
	if (s->idle->view != NULL)
		store_view_idle(s->idle->view, 0);
	if (s->idle->waiting != NULL)
		s->idle->waiting->s = NULL;
	if (s->conn != NULL)
		conn_set_sleepy(s->conn, 0);
	wheel_del(s->srv->idle_wheel, &s->idle->timer);
	free(s->idle->tag);
	free(s->idle);
	s->idle = NULL;
}

static void
imap_idle_view_woken(struct store_view *view, enum store_view_status status,
    void *arg)
{
	struct imap_idle_woken *w = arg;
	struct imap_session *s = w->s;

	if (s != NULL) {
		s->idle->waiting = NULL;
		if (status == STORE_VIEW_OK)
			imap_select_updates(s, 1);
		else
			imap_session_bye(s, "io",
			    "[UNAVAILABLE] Cannot read the mailbox");
	}
	store_view_unref(&w->view);
	free(w);
}

void
imap_idle_wait_view(struct imap_session *s)
{
	struct imap_idle_woken *w;

	if (s->idle == NULL || s->idle->waiting != NULL)
		return;
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->view = store_view_ref(s->sel->view);
	s->idle->waiting = w;
	store_view_wake(w->view, imap_idle_view_woken, w);
}

static void
imap_idle_woken(struct store_view *view, enum store_view_status status,
    void *arg)
{
	struct imap_idle_done *d = arg;
	struct imap_session *s = d->async.s;

	if (s != NULL) {
		s->async = NULL;
		if (status == STORE_VIEW_OK) {
			imap_session_printf(s, "%s OK IDLE terminated", d->tag);
			imap_session_idle(s);
		} else
			imap_session_bye(s, "io",
			    "[UNAVAILABLE] Cannot read the mailbox");
	}
	store_view_unref(&d->view);
	free(d->tag);
	free(d);
}

/* DONE of a hibernated mailbox: the answer waits for the view. */
static void
imap_idle_wake(struct imap_session *s, char *tag)
{
	struct imap_idle_done *d = xcalloc(1, sizeof(*d));

	d->async.s = s;
	d->tag = tag;
	d->view = store_view_ref(s->sel->view);
	s->async = &d->async;
	imap_session_busy(s);
	store_view_wake(d->view, imap_idle_woken, d);
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
	else if (s->sel != NULL && !store_view_full(s->sel->view)) {
		imap_idle_wake(s, tag);
		tag = NULL;
	} else
		imap_session_printf(s, "%s OK IDLE terminated", tag);
	xfree_secret_str(line);
	free(tag);
	return 1;
}
