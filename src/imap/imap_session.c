/*
 * One IMAP connection: greeting, reading commands through the incremental
 * parser with the literal hand-shake of RFC 9051 section 4.3 and RFC 7888,
 * answering pipelined commands in order, the autologout timer of section
 * 5.4 and the BYE of section 7.1.5.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "net/conn.h"

void
imap_session_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->conn == NULL)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(conn_output(s->conn), fmt, ap);
	va_end(ap);
	conn_write(s->conn, "\r\n", 2);
}

static void
imap_session_unlink(struct imap_session *s)
{
	if (s->srv == NULL)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->srv->nsessions--;
	s->srv = NULL;
}

void
imap_session_free(struct imap_session *s)
{
	imap_idle_free(s); /* its timer is on srv's wheel */
	imap_session_unlink(s);
	imap_auth_clear(s);
	imap_select_clear(s);
	imap_search_forget(s);
	if (s->async != NULL)
		s->async->s = NULL;
	imap_parser_free(&s->parser);
	conn_free(&s->conn);
	free(s->user);
	free(s);
}

static const char *
imap_end_reason(enum conn_end why)
{
	switch (why) {
	case CONN_END_EOF:
		return "eof";
	case CONN_END_ERROR:
		return "error";
	case CONN_END_TIMEOUT:
		return "timeout";
	case CONN_END_SHUTDOWN:
		return "logout";
	}
	return "error";
}

/*
 * The connection is over: log the summary, drop the conn, and free the
 * session unless the run loop still holds it.
 */
static void
imap_session_end(struct imap_session *s, const char *reason)
{
	if (s->conn == NULL)
		return;
	log_info("sid=" LOG_SID_FMT " proto=imap event=disconnect reason=%s "
	         "in=%zu out=%zu commands=%u",
	    s->sid, reason, conn_bytes_in(s->conn), conn_bytes_out(s->conn),
	    s->ncmds);
	conn_free(&s->conn);
	imap_auth_clear(s);
	imap_idle_free(s);
	s->dead = 1;
	if (!s->in_run)
		imap_session_free(s);
}

void
imap_session_bye(struct imap_session *s, const char *reason, const char *text)
{
	if (s->phase == IMAP_PHASE_CLOSING || s->conn == NULL)
		return;
	s->close_reason = reason;
	imap_session_printf(s, "* BYE %s", text);
	s->phase = IMAP_PHASE_CLOSING;
	conn_shutdown(s->conn);
}

static void
imap_session_on_end(struct conn *conn, enum conn_end why, void *arg)
{
	struct imap_session *s = arg;

	/* RFC 9051 section 5.4: autologout is announced with BYE. */
	if (why == CONN_END_TIMEOUT && s->phase != IMAP_PHASE_CLOSING) {
		log_info("sid=" LOG_SID_FMT " proto=imap event=timeout",
		    s->sid);
		imap_session_bye(s, "timeout", "Autologout; idle for too long");
		return;
	}
	if (why == CONN_END_SHUTDOWN && s->close_reason != NULL)
		imap_session_end(s, s->close_reason);
	else
		imap_session_end(s, imap_end_reason(why));
}

static void
imap_session_on_read(struct conn *conn, void *arg)
{
	imap_session_run(arg);
}

/* Counts a client error (already answered); too many close the session. */
static void
imap_session_count_error(struct imap_session *s)
{
	s->nbad++;
	if (s->nbad < s->srv->set.max_bad_commands)
		return;
	log_info("sid=" LOG_SID_FMT " proto=imap event=cmd "
	         "error=too_many_errors count=%u",
	    s->sid, s->nbad);
	imap_session_bye(s, "errors", "Too many invalid commands");
}

void
imap_session_bad(struct imap_session *s, const char *tag, const char *text)
{
	imap_session_printf(s, "%s BAD %s", tag != NULL ? tag : "*", text);
	imap_session_count_error(s);
}

void
imap_session_fail(struct imap_session *s, const char *tag, const char *text)
{
	imap_session_printf(s, "%s NO %s", tag, text);
	imap_session_count_error(s);
}

void
imap_session_busy(struct imap_session *s)
{
	s->phase = IMAP_PHASE_BUSY;
	conn_pause(s->conn);
}

void
imap_session_idle(struct imap_session *s)
{
	const struct imap_settings *set = &s->srv->set;

	s->phase = IMAP_PHASE_CMD;
	conn_set_timeout(s->conn,
	    s->state == IMAP_STATE_NOAUTH ? set->timeout_login : set->timeout);
	conn_resume(s->conn);
}

static int
imap_session_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
	    strncmp(ip, "::ffff:127.", 11) == 0 || strcmp(ip, "local") == 0;
}

int
imap_session_plaintext_ok(struct imap_session *s)
{
	char ipbuf[CONN_IP_LEN];
	switch (s->srv->set.plaintext_auth) {
	case IMAP_PLAINTEXT_YES:
		return 1;
	case IMAP_PLAINTEXT_NO:
		return conn_is_tls(s->conn);
	case IMAP_PLAINTEXT_LOOPBACK:
		break;
	}
	return conn_is_tls(s->conn) ||
	    imap_session_loopback(conn_peer_ip(s->conn, ipbuf));
}

/* The list grows as commands land: only what works is advertised. */
void
imap_session_capability(struct imap_session *s, const char *prefix,
    const char *suffix)
{
	int noauth = s->state == IMAP_STATE_NOAUTH;
	int plain_ok = imap_session_plaintext_ok(s);

	imap_session_printf(s,
	    "%sCAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID "
	    "NAMESPACE IDLE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED "
	    "LIST-STATUS SPECIAL-USE STATUS=SIZE ESEARCH SEARCHRES CONDSTORE "
	    "QRESYNC SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
	    "BINARY MULTIAPPEND UTF8=ACCEPT APPENDLIMIT=%llu%s%s%s%s",
	    prefix, (unsigned long long)s->srv->set.literal_max,
	    noauth && s->srv->set.tls != NULL && !conn_is_tls(s->conn) ?
	        " STARTTLS" :
	        "",
	    noauth && plain_ok ? " AUTH=PLAIN" : "",
	    noauth && !plain_ok ? " LOGINDISABLED" : "", suffix);
}

/* ------------------------------------------------------------------ */
/* Reading commands. */

static struct imap_parser *
imap_session_parser(struct imap_session *s)
{
	const struct imap_settings *set = &s->srv->set;
	struct imap_parser_limits lim = {0};
	unsigned flags = 0;

	if (s->parser != NULL)
		return s->parser;
	lim.line_max = set->line_max;
	lim.literal_max = set->literal_max;
	/* Before login, a refused literal over this size ends the session. */
	if (s->state == IMAP_STATE_NOAUTH)
		lim.skip_max = set->literal_max_login;
	if (s->enabled & (IMAP_ENABLED_UTF8 | IMAP_ENABLED_IMAP4REV2))
		flags |= IMAP_PARSER_UTF8;
	s->parser = imap_parser_new(&lim, flags);
	return s->parser;
}

/* A parser error: a response, and BYE when the parser cannot go on. */
/* Whether command carries messages in its literals (APPEND, REPLACE). */
static int
imap_session_takes_messages(const char *command)
{
	return command != NULL &&
	    (strcasecmp(command, "APPEND") == 0 ||
	        strcasecmp(command, "REPLACE") == 0);
}

static void
imap_session_parse_error(struct imap_session *s)
{
	const struct imap_parser_error *e = imap_parser_error(s->parser);

	s->ncmds++;
	log_info("sid=" LOG_SID_FMT " proto=imap event=cmd error=\"%s\"",
	    s->sid, e->text);
	if (e->fatal) {
		imap_session_printf(s, "%s BAD [TOOBIG] %s",
		    e->tag != NULL ? e->tag : "*", e->text);
		imap_session_bye(s, "literal",
		    "Cannot continue after this command");
		return;
	}
	if ((e->code == IMAP_PERR_LITERAL_TOO_BIG ||
	        e->code == IMAP_PERR_REFUSED) &&
	    e->tag != NULL && imap_session_takes_messages(e->command)) {
		/* RFC 7889: APPENDLIMIT is answered NO [TOOBIG]. */
		imap_session_printf(s, "%s NO [TOOBIG] %s", e->tag, e->text);
		return;
	}
	if (e->code == IMAP_PERR_LITERAL_TOO_BIG ||
	    e->code == IMAP_PERR_REFUSED)
		imap_session_bad(s, e->tag, "[TOOBIG] Literal too big");
	else
		imap_session_bad(s, e->tag, e->text);
}

/*
 * A literal was announced: within the limit of this state it is taken
 * (a synchronising one after "+ "), otherwise refused.
 */
static void
imap_session_literal(struct imap_session *s,
    const struct imap_literal_info *lit)
{
	const struct imap_settings *set = &s->srv->set;
	uint64_t max = s->state == IMAP_STATE_NOAUTH ? set->literal_max_login :
	                                               set->literal_max;

	/* Only a message may be large; any other literal fits a line. */
	if (!imap_session_takes_messages(lit->command) && max > set->line_max)
		max = set->line_max;
	if (lit->size > max) {
		imap_parser_literal_refuse(s->parser);
		imap_session_parse_error(s);
		return;
	}
	imap_parser_literal_accept(s->parser);
	if (lit->sync)
		imap_session_printf(s, "+ OK");
}

static void
imap_session_command(struct imap_session *s, struct imap_cmd *cmd)
{
	s->ncmds++;
	/* The parser holds no byte of the next command: let it go. */
	imap_parser_free(&s->parser);
	imap_command_run(s, cmd);
	imap_cmd_free(&cmd);
}

/* Feeds the first chunk of input; 1 when progress was made, else 0. */
static int
imap_session_input(struct imap_session *s)
{
	struct evbuffer *in = conn_input(s->conn);
	struct evbuffer_iovec v;
	const struct imap_literal_info *lit;
	struct imap_cmd *cmd = NULL;
	size_t used = 0;
	int r;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	r = imap_parser_feed(imap_session_parser(s), v.iov_base, v.iov_len,
	    &used, &cmd);
	evbuffer_drain(in, used);
	if (r == 1) {
		imap_session_command(s, cmd);
		return 1;
	}
	if (r < 0) {
		imap_session_parse_error(s);
		return 1;
	}
	if ((lit = imap_parser_literal(s->parser)) != NULL) {
		imap_session_literal(s, lit);
		return 1;
	}
	return used > 0;
}

int
imap_session_line(struct imap_session *s, char **line, int *progress)
{
	struct evbuffer *in = conn_input(s->conn);
	struct evbuffer_iovec v;
	size_t used = 0;
	int r;

	*progress = 0;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	r = imap_parser_line(imap_session_parser(s), v.iov_base, v.iov_len,
	    &used, line);
	evbuffer_drain(in, used);
	*progress = r != 0 || used > 0;
	if (r == 1)
		imap_parser_free(&s->parser);
	return r;
}

/* Reads the line that answers AUTHENTICATE's continuation. */
static int
imap_session_auth_input(struct imap_session *s)
{
	char *line = NULL;
	int progress;
	int r = imap_session_line(s, &line, &progress);

	if (r == 0)
		return progress;
	s->phase = IMAP_PHASE_CMD;
	if (r < 0) {
		imap_session_bad(s, s->tag, "Line too long");
		imap_auth_clear(s);
		return 1;
	}
	imap_auth_response(s, line);
	xfree_secret_str(line);
	return 1;
}

void
imap_session_run(struct imap_session *s)
{
	int progress = 1;

	s->in_run = 1;
	while (progress && !s->dead) {
		switch (s->phase) {
		case IMAP_PHASE_CMD:
			progress = imap_session_input(s);
			break;
		case IMAP_PHASE_AUTH:
			progress = imap_session_auth_input(s);
			break;
		case IMAP_PHASE_IDLE:
			progress = imap_idle_input(s);
			break;
		case IMAP_PHASE_BUSY:
		case IMAP_PHASE_CLOSING:
			progress = 0;
			break;
		}
	}
	s->in_run = 0;
	if (s->dead)
		imap_session_free(s);
}

void
imap_session_start(struct imap_server *srv, struct conn *conn)
{
	char ipbuf[CONN_IP_LEN];
	struct imap_session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->conn = conn;
	s->sid = log_sid_next();
	s->state = IMAP_STATE_NOAUTH;
	s->phase = IMAP_PHASE_CMD;
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	log_info("sid=" LOG_SID_FMT " proto=imap event=connect listener=%s "
	         "ip=%s port=%d tls=%d",
	    s->sid, srv->set.name, conn_peer_ip(conn, ipbuf),
	    conn_local_port(conn), conn_is_tls(conn));
	conn_set_output_limit(conn, srv->set.output_limit);
	conn_set_timeout(conn, srv->set.timeout_login);
	imap_session_capability(s, "* OK [", "] pushmail ready");
	conn_set_cbs(conn, imap_session_on_read, NULL, imap_session_on_end, s);
}

void
imap_session_close(struct imap_session *s)
{
	imap_idle_free(s); /* its timer is on srv's wheel */
	imap_session_unlink(s);
	imap_session_end(s, "shutdown");
}
