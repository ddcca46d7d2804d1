/*
 * One SMTP, submission or LMTP connection: the command state machine of RFC
 * 5321 section 4.1.4 with PIPELINING (RFC 2920), STARTTLS (RFC 3207), AUTH
 * (RFC 4954), CHUNKING (RFC 3030) and LMTP's per-recipient replies (RFC 2033
 * section 4.2), the Received field of section 4.4 and the hand-off to the
 * store.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parser.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

#define SMTP_LINE_MAX 4096
#define SMTP_OUTPUT_LIMIT (256 * 1024)

const char *
smtp_session_proto(enum smtp_mode mode)
{
	switch (mode) {
	case SMTP_MODE_SMTP:
		return "smtp";
	case SMTP_MODE_SUBMISSION:
		return "submission";
	case SMTP_MODE_LMTP:
		return "lmtp";
	}
	return "smtp";
}

void
smtp_session_reply(struct smtp_session *s, const char *reply)
{
	if (s->conn != NULL)
		conn_printf(s->conn, "%s\r\n", reply);
}

/* Forgets the transaction: MAIL, recipients and any body read so far. */
void
smtp_session_reset(struct smtp_session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	s->smtputf8 = 0;
	for (size_t i = 0; i < s->nrcpts; i++) {
		free(s->rcpts[i].address);
		free(s->rcpts[i].idx);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	for (size_t i = 0; i < s->nsrcpts; i++) {
		free(s->srcpts[i].user);
		free(s->srcpts[i].delivered_to);
	}
	free(s->srcpts);
	s->srcpts = NULL;
	s->nsrcpts = 0;
	if (s->data != NULL) {
		smtp_data_deinit(s->data);
		free(s->data);
		s->data = NULL;
	}
	s->bdat_started = 0;
	s->bdat_error = NULL;
}

static void
smtp_session_unlink(struct smtp_session *s)
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
smtp_session_free(struct smtp_session *s)
{
	smtp_session_unlink(s);
	smtp_session_reset(s);
	smtp_auth_clear(s);
	conn_free(&s->conn);
	free(s->helo);
	free(s->user);
	free(s);
}

static const char *
smtp_end_reason(enum conn_end why)
{
	switch (why) {
	case CONN_END_EOF:
		return "eof";
	case CONN_END_ERROR:
		return "error";
	case CONN_END_TIMEOUT:
		return "timeout";
	case CONN_END_SHUTDOWN:
		return "quit";
	}
	return "error";
}

/*
 * The connection is over: log the summary, drop the conn, and free the
 * session unless a delivery or the run loop still holds it.
 */
static void
smtp_session_end(struct smtp_session *s, const char *reason)
{
	if (s->conn == NULL)
		return;
	log_info("sid=" LOG_SID_FMT " proto=%s event=disconnect reason=%s "
	         "in=%zu out=%zu commands=%u",
	    s->sid, smtp_session_proto(s->mode), reason, conn_bytes_in(s->conn),
	    conn_bytes_out(s->conn), s->ncmds);
	conn_free(&s->conn);
	if (s->auth_req != NULL)
		auth_request_cancel(&s->auth_req);
	s->dead = 1;
	if (!s->in_run && !s->storing)
		smtp_session_free(s);
}

static void
smtp_session_on_end(struct conn *conn, enum conn_end why, void *arg)
{
	struct smtp_session *s = arg;

	/* RFC 5321 section 4.5.3.2: say why before closing. */
	if (why == CONN_END_TIMEOUT && s->phase != PH_CLOSING) {
		log_info("sid=" LOG_SID_FMT " proto=%s event=timeout", s->sid,
		    smtp_session_proto(s->mode));
		smtp_session_close_with(s,
		    "421 4.4.2 Timeout, closing connection");
		return;
	}
	smtp_session_end(s, smtp_end_reason(why));
}

static void
smtp_session_on_read(struct conn *conn, void *arg)
{
	smtp_session_run(arg);
}

/* Replies and closes the connection once the reply is written. */
void
smtp_session_close_with(struct smtp_session *s, const char *reply)
{
	smtp_session_reply(s, reply);
	s->phase = PH_CLOSING;
	conn_shutdown(s->conn);
}

/* Counts a client error; too many of them close the session. */
void
smtp_session_bad(struct smtp_session *s, const char *reply)
{
	s->nbad++;
	if (s->srv->set.max_bad_commands != 0 &&
	    s->nbad >= s->srv->set.max_bad_commands) {
		/* The last straw gets the 421 instead of its own reply. */
		log_info("sid=" LOG_SID_FMT " proto=%s event=cmd "
		         "error=too_many_errors count=%u",
		    s->sid, smtp_session_proto(s->mode), s->nbad);
		smtp_session_close_with(s,
		    "421 4.7.0 Too many errors, closing connection");
		return;
	}
	smtp_session_reply(s, reply);
}

/* Waits for the store or for auth: no input is read meanwhile. */
void
smtp_session_busy(struct smtp_session *s)
{
	s->phase = PH_BUSY;
	conn_pause(s->conn);
}

void
smtp_session_idle(struct smtp_session *s)
{
	s->phase = PH_CMD;
	conn_set_timeout(s->conn, s->srv->set.timeout);
	conn_resume(s->conn);
}

/* ------------------------------------------------------------------ */
/* Greeting, HELO/EHLO/LHLO and the simple commands. */

static void
smtp_session_ehlo_caps(struct smtp_session *s)
{
	const struct smtp_settings *set = &s->srv->set;
	int tls = conn_is_tls(s->conn);

	conn_printf(s->conn, "250-PIPELINING\r\n250-SIZE %llu\r\n",
	    (unsigned long long)set->max_message_size);
	conn_printf(s->conn,
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n");
	if (set->tls != NULL && !tls)
		conn_printf(s->conn, "250-STARTTLS\r\n");
	if (s->mode == SMTP_MODE_SUBMISSION && s->user == NULL &&
	    (tls || set->auth_plaintext))
		conn_printf(s->conn, "250-AUTH PLAIN LOGIN\r\n");
	conn_printf(s->conn, "250 ENHANCEDSTATUSCODES\r\n");
}

static void
smtp_cmd_helo(struct smtp_session *s, struct smtp_cmd *cmd)
{
	int lmtp = s->mode == SMTP_MODE_LMTP;

	if (lmtp != (cmd->verb == SMTP_CMD_LHLO)) {
		smtp_session_bad(s, "500 5.5.1 Command unrecognized");
		return;
	}
	smtp_session_reset(s);
	free(s->helo);
	s->helo = cmd->arg;
	cmd->arg = NULL;
	s->esmtp = cmd->verb != SMTP_CMD_HELO;
	if (!s->esmtp) {
		conn_printf(s->conn, "250 %s\r\n", s->srv->set.hostname);
		return;
	}
	conn_printf(s->conn, "250-%s\r\n", s->srv->set.hostname);
	smtp_session_ehlo_caps(s);
}

static void
smtp_cmd_starttls(struct smtp_session *s)
{
	if (s->srv->set.tls == NULL) {
		smtp_session_bad(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (conn_is_tls(s->conn)) {
		smtp_session_reply(s, "503 5.5.1 TLS already active");
		return;
	}
	smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 section 4.2: forget everything learnt in plaintext. */
	smtp_session_reset(s);
	free(s->helo);
	s->helo = NULL;
	free(s->user);
	s->user = NULL;
	conn_starttls(s->conn, s->srv->set.tls);
	log_info("sid=" LOG_SID_FMT " proto=%s event=tls action=starttls",
	    s->sid, smtp_session_proto(s->mode));
}

/* ------------------------------------------------------------------ */
/* MAIL and RCPT. */

static void
smtp_cmd_mail(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct smtp_settings *set = &s->srv->set;

	if (s->helo == NULL) {
		smtp_session_reply(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (s->mail_from != NULL) {
		smtp_session_reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (s->mode == SMTP_MODE_SUBMISSION && s->user == NULL) {
		smtp_session_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (cmd->has_size && cmd->size > set->max_message_size) {
		smtp_session_reply(s,
		    "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (s->mode == SMTP_MODE_SUBMISSION &&
	    !userdb_may_send_as(s->srv->env.userdb, s->user, cmd->path)) {
		smtp_session_reply(s,
		    "553 5.7.1 Sender address not owned by user");
		return;
	}
	s->mail_from = cmd->path;
	cmd->path = NULL;
	s->smtputf8 = cmd->smtputf8;
	s->ntrans++;
	snprintf(s->id, sizeof(s->id), LOG_SID_FMT ".%u", s->sid, s->ntrans);
	smtp_session_reply(s, "250 2.1.0 Ok");
}

/* The index of user among the store recipients, added when new. */
static size_t
smtp_session_srcpt(struct smtp_session *s, const char *user,
    const char *delivered_to)
{
	const struct userdb_user *u;
	struct store_rcpt *r;

	for (size_t i = 0; i < s->nsrcpts; i++)
		if (strcmp(s->srcpts[i].user, user) == 0)
			return i;
	s->srcpts =
	    xreallocarray(s->srcpts, s->nsrcpts + 1, sizeof(*s->srcpts));
	r = &s->srcpts[s->nsrcpts];
	memset(r, 0, sizeof(*r));
	r->user = xstrdup(user);
	r->delivered_to = xstrdup(delivered_to);
	u = userdb_lookup(s->srv->env.userdb, user);
	r->quota = u != NULL ? u->quota : 0;
	return s->nsrcpts++;
}

static void
smtp_session_add_rcpt(struct smtp_session *s, char *address, char **users,
    size_t nusers)
{
	struct smtp_rcpt *r;

	s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(*s->rcpts));
	r = &s->rcpts[s->nrcpts++];
	r->address = address;
	r->idx = xreallocarray(NULL, nusers, sizeof(*r->idx));
	r->nidx = nusers;
	/* A plain recipient keeps the address as given for Delivered-To. */
	for (size_t i = 0; i < nusers; i++)
		r->idx[i] = smtp_session_srcpt(s, users[i],
		    nusers == 1 ? address : users[i]);
}

static void
smtp_cmd_rcpt(struct smtp_session *s, struct smtp_cmd *cmd)
{
	char **users = NULL;
	size_t nusers = 0;
	enum userdb_resolve res;

	if (s->mail_from == NULL) {
		smtp_session_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->bdat_started) {
		smtp_session_reply(s, "503 5.5.1 RCPT after BDAT");
		return;
	}
	if (cmd->path_utf8 && !s->smtputf8) {
		smtp_session_reply(s,
		    "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (s->nrcpts >= s->srv->set.max_recipients) {
		smtp_session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	res = userdb_resolve(s->srv->env.userdb, cmd->path, &users, &nusers);
	if (res == USERDB_NOT_LOCAL) {
		smtp_session_reply(s, "550 5.7.1 Relaying denied");
		return;
	}
	if (res != USERDB_LOCAL || nusers == 0) {
		smtp_session_reply(s, "550 5.1.1 User unknown");
		return;
	}
	smtp_session_add_rcpt(s, cmd->path, users, nusers);
	cmd->path = NULL;
	userdb_names_free(users, nusers);
	smtp_session_reply(s, "250 2.1.5 Ok");
}

/* ------------------------------------------------------------------ */
/* Command dispatch. */

static void
smtp_session_dispatch(struct smtp_session *s, struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
	case SMTP_CMD_LHLO:
		smtp_cmd_helo(s, cmd);
		break;
	case SMTP_CMD_MAIL:
		smtp_cmd_mail(s, cmd);
		break;
	case SMTP_CMD_RCPT:
		smtp_cmd_rcpt(s, cmd);
		break;
	case SMTP_CMD_DATA:
		smtp_message_data_cmd(s);
		break;
	case SMTP_CMD_BDAT:
		smtp_message_bdat_cmd(s, cmd);
		break;
	case SMTP_CMD_RSET:
		smtp_session_reset(s);
		smtp_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		smtp_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		smtp_session_close_with(s, "221 2.0.0 Bye");
		break;
	case SMTP_CMD_VRFY:
		smtp_session_reply(s,
		    "252 2.5.0 Cannot VRFY user, but will accept "
		    "message and attempt delivery");
		break;
	case SMTP_CMD_EXPN:
		smtp_session_reply(s, "502 5.5.1 EXPN not available");
		break;
	case SMTP_CMD_HELP:
		smtp_session_reply(s, "214 2.0.0 pushmail: see RFC 5321");
		break;
	case SMTP_CMD_STARTTLS:
		smtp_cmd_starttls(s);
		break;
	case SMTP_CMD_AUTH:
		smtp_auth_cmd(s, cmd);
		break;
	case SMTP_CMD_UNKNOWN:
		smtp_session_bad(s, "500 5.5.1 Command unrecognized");
		break;
	}
}

static void
smtp_session_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;

	s->ncmds++;
	if (smtp_parse(line, len, &cmd) < 0) {
		smtp_session_bad(s, cmd.error);
		/* A refused BDAT's chunk cannot be found: stop here. */
		if (cmd.verb == SMTP_CMD_BDAT && s->phase != PH_CLOSING)
			smtp_session_close_with(s,
			    "421 4.5.0 Cannot continue after a bad BDAT");
		smtp_cmd_clear(&cmd);
		return;
	}
	smtp_session_dispatch(s, &cmd);
	smtp_cmd_clear(&cmd);
}

/* Reads and handles one line; 1 when one was handled, 0 for more input. */
static int
smtp_session_line(struct smtp_session *s)
{
	char *line;
	size_t len;
	int r = conn_readline(s->conn, SMTP_LINE_MAX, &line, &len);

	if (r == 0)
		return 0;
	if (r < 0) {
		s->ncmds++;
		if (s->phase == PH_AUTH)
			smtp_auth_clear(s);
		s->phase = PH_CMD;
		smtp_session_bad(s, "500 5.5.2 Line too long");
		return 1;
	}
	if (s->phase == PH_AUTH)
		smtp_auth_response(s, line, len);
	else
		smtp_session_command(s, line, len);
	xfree_secret(line, len);
	return 1;
}

/*
 * Handles buffered input in order until it runs out or the session must
 * wait (store, auth, TLS) or close.
 */
void
smtp_session_run(struct smtp_session *s)
{
	int progress = 1;

	s->in_run = 1;
	while (progress && !s->dead) {
		switch (s->phase) {
		case PH_CMD:
		case PH_AUTH:
			progress = smtp_session_line(s);
			break;
		case PH_DATA:
			progress = smtp_message_data_input(s);
			break;
		case PH_BDAT:
			progress = smtp_message_bdat_input(s);
			break;
		case PH_BUSY:
		case PH_CLOSING:
			progress = 0;
			break;
		}
	}
	s->in_run = 0;
	if (s->dead && !s->storing)
		smtp_session_free(s);
}

void
smtp_session_start(struct smtp_server *srv, struct conn *conn)
{
	char ipbuf[CONN_IP_LEN];
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->conn = conn;
	s->sid = log_sid_next();
	s->mode = srv->set.mode;
	s->phase = PH_CMD;
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	log_info("sid=" LOG_SID_FMT " proto=%s event=connect listener=%s ip=%s "
	         "port=%d tls=%d",
	    s->sid, smtp_session_proto(s->mode), srv->set.name,
	    conn_peer_ip(conn, ipbuf), conn_local_port(conn),
	    conn_is_tls(conn));
	conn_set_output_limit(conn, SMTP_OUTPUT_LIMIT);
	conn_set_timeout(conn, srv->set.timeout);
	conn_printf(conn, "220 %s %s pushmail\r\n", srv->set.hostname,
	    s->mode == SMTP_MODE_LMTP ? "LMTP" : "ESMTP");
	conn_set_cbs(conn, smtp_session_on_read, NULL, smtp_session_on_end, s);
}

void
smtp_session_close(struct smtp_session *s)
{
	smtp_session_unlink(s);
	smtp_session_end(s, "shutdown");
}
