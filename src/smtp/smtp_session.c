/*
 * One SMTP, submission or LMTP connection: the command state machine of RFC
 * 5321 section 4.1.4 with PIPELINING (RFC 2920), STARTTLS (RFC 3207), AUTH
 * (RFC 4954), CHUNKING (RFC 3030) and LMTP's per-recipient replies (RFC 2033
 * section 4.2), the Received field of section 4.4 and the hand-off to the
 * store.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header.h"
#include "smtp/smtp_parser.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

#define SMTP_LINE_MAX 4096
#define SMTP_OUTPUT_LIMIT (256 * 1024)

enum smtp_phase {
	PH_CMD,     /* reading command lines */
	PH_AUTH,    /* reading an AUTH response line */
	PH_DATA,    /* reading a DATA body */
	PH_BDAT,    /* reading a BDAT chunk */
	PH_BUSY,    /* waiting for the store or for auth */
	PH_CLOSING, /* the last reply is being flushed */
};

enum smtp_auth_step {
	AUTH_NONE,
	AUTH_PLAIN_WAIT, /* sent "334 " for PLAIN */
	AUTH_LOGIN_USER, /* sent "334 Username:" */
	AUTH_LOGIN_PASS, /* sent "334 Password:" */
};

/* One accepted RCPT and the store recipients it maps to. */
struct smtp_rcpt {
	char *address;
	size_t *idx;
	size_t nidx;
};

struct smtp_session {
	struct smtp_server *srv; /* NULL once closed by the server */
	struct smtp_session *next, *prev;
	struct conn *conn; /* NULL once the connection is gone */
	uint32_t sid;
	enum smtp_mode mode;
	enum smtp_phase phase;
	int in_run;  /* inside a handler: defer the free */
	int storing; /* a delivery is in flight: defer the free */
	int dead;    /* ended while in_run or busy */
	char *helo;  /* NULL before HELO/EHLO/LHLO */
	int esmtp;
	char *user; /* authenticated user */
	unsigned ncmds, nbad, ntrans;
	char id[32]; /* the current transaction's id */

	/* The transaction, from MAIL to the end of the message. */
	char *mail_from; /* NULL: no MAIL yet */
	int smtputf8;
	struct smtp_rcpt *rcpts;
	size_t nrcpts;
	struct store_rcpt *srcpts;
	size_t nsrcpts;
	struct smtp_data *data;
	uint64_t bdat_left;
	int bdat_last;
	const char *bdat_error; /* reply to send after discarding the chunk */
	int bdat_started;

	/* AUTH in progress. */
	enum smtp_auth_step auth_step;
	char *auth_login_user;
	struct auth_request *auth_req;
};

static void smtp_session_run(struct smtp_session *s);

static const char *
smtp_proto(enum smtp_mode mode)
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

static void
smtp_reply(struct smtp_session *s, const char *reply)
{
	if (s->conn != NULL)
		conn_printf(s->conn, "%s\r\n", reply);
}

/* Forgets the transaction: MAIL, recipients and any body read so far. */
static void
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
smtp_session_auth_clear(struct smtp_session *s)
{
	s->auth_step = AUTH_NONE;
	xfree_secret_str(s->auth_login_user);
	s->auth_login_user = NULL;
	if (s->auth_req != NULL)
		auth_request_cancel(&s->auth_req);
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

static void
smtp_session_free(struct smtp_session *s)
{
	smtp_session_unlink(s);
	smtp_session_reset(s);
	smtp_session_auth_clear(s);
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
	    s->sid, smtp_proto(s->mode), reason, conn_bytes_in(s->conn),
	    conn_bytes_out(s->conn), s->ncmds);
	conn_free(&s->conn);
	if (s->auth_req != NULL)
		auth_request_cancel(&s->auth_req);
	s->dead = 1;
	if (!s->in_run && !s->storing)
		smtp_session_free(s);
}

static void smtp_session_close_with(struct smtp_session *s, const char *reply);

static void
smtp_session_on_end(struct conn *conn, enum conn_end why, void *arg)
{
	struct smtp_session *s = arg;

	/* RFC 5321 section 4.5.3.2: say why before closing. */
	if (why == CONN_END_TIMEOUT && s->phase != PH_CLOSING) {
		log_info("sid=" LOG_SID_FMT " proto=%s event=timeout", s->sid,
		    smtp_proto(s->mode));
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
static void
smtp_session_close_with(struct smtp_session *s, const char *reply)
{
	smtp_reply(s, reply);
	s->phase = PH_CLOSING;
	conn_shutdown(s->conn);
}

/* Counts a client error; too many of them close the session. */
static void
smtp_session_bad(struct smtp_session *s, const char *reply)
{
	s->nbad++;
	if (s->srv->set.max_bad_commands != 0 &&
	    s->nbad >= s->srv->set.max_bad_commands) {
		/* The last straw gets the 421 instead of its own reply. */
		log_info("sid=" LOG_SID_FMT " proto=%s event=cmd "
		         "error=too_many_errors count=%u",
		    s->sid, smtp_proto(s->mode), s->nbad);
		smtp_session_close_with(s,
		    "421 4.7.0 Too many errors, closing connection");
		return;
	}
	smtp_reply(s, reply);
}

/* Waits for the store or for auth: no input is read meanwhile. */
static void
smtp_session_busy(struct smtp_session *s)
{
	s->phase = PH_BUSY;
	conn_pause(s->conn);
}

static void
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
		smtp_reply(s, "503 5.5.1 TLS already active");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 section 4.2: forget everything learnt in plaintext. */
	smtp_session_reset(s);
	free(s->helo);
	s->helo = NULL;
	free(s->user);
	s->user = NULL;
	conn_starttls(s->conn, s->srv->set.tls);
	log_info("sid=" LOG_SID_FMT " proto=%s event=tls action=starttls",
	    s->sid, smtp_proto(s->mode));
}

/* ------------------------------------------------------------------ */
/* MAIL and RCPT. */

static void
smtp_cmd_mail(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct smtp_settings *set = &s->srv->set;

	if (s->helo == NULL) {
		smtp_reply(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (s->mail_from != NULL) {
		smtp_reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (s->mode == SMTP_MODE_SUBMISSION && s->user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (cmd->has_size && cmd->size > set->max_message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (s->mode == SMTP_MODE_SUBMISSION &&
	    !userdb_may_send_as(s->srv->env.userdb, s->user, cmd->path)) {
		smtp_reply(s, "553 5.7.1 Sender address not owned by user");
		return;
	}
	s->mail_from = cmd->path;
	cmd->path = NULL;
	s->smtputf8 = cmd->smtputf8;
	s->ntrans++;
	snprintf(s->id, sizeof(s->id), LOG_SID_FMT ".%u", s->sid, s->ntrans);
	smtp_reply(s, "250 2.1.0 Ok");
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
		smtp_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->bdat_started) {
		smtp_reply(s, "503 5.5.1 RCPT after BDAT");
		return;
	}
	if (cmd->path_utf8 && !s->smtputf8) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (s->nrcpts >= s->srv->set.max_recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	res = userdb_resolve(s->srv->env.userdb, cmd->path, &users, &nusers);
	if (res == USERDB_NOT_LOCAL) {
		smtp_reply(s, "550 5.7.1 Relaying denied");
		return;
	}
	if (res != USERDB_LOCAL || nusers == 0) {
		smtp_reply(s, "550 5.1.1 User unknown");
		return;
	}
	smtp_session_add_rcpt(s, cmd->path, users, nusers);
	cmd->path = NULL;
	userdb_names_free(users, nusers);
	smtp_reply(s, "250 2.1.5 Ok");
}

/* ------------------------------------------------------------------ */
/* DATA, BDAT and delivery. */

/* Appends the Received field (RFC 5321 section 4.4) to out. */
static char *
smtp_session_received(struct smtp_session *s)
{
	const char *ip = conn_peer_ip(s->conn);
	int v6 = strchr(ip, ':') != NULL, tls = conn_is_tls(s->conn);
	char date[64], with[16], tlsinfo[160] = "", forinfo[300] = "";
	struct tm tm;
	time_t now = time(NULL);

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->mode == SMTP_MODE_LMTP)
		snprintf(with, sizeof(with), "LMTP%s%s", tls ? "S" : "",
		    s->user ? "A" : "");
	else
		snprintf(with, sizeof(with), "%s%s%s",
		    s->esmtp ? "ESMTP" : "SMTP", s->esmtp && tls ? "S" : "",
		    s->esmtp && s->user ? "A" : "");
	if (tls)
		snprintf(tlsinfo, sizeof(tlsinfo),
		    "\r\n\t(using %s with cipher %s)",
		    conn_tls_version(s->conn), conn_tls_cipher(s->conn));
	if (s->nrcpts == 1)
		snprintf(forinfo, sizeof(forinfo), "\r\n\tfor <%s>",
		    s->rcpts[0].address);
	return xasprintf("Received: from %s (unknown [%s%s])%s%s%s\r\n"
	                 "\tby %s (pushmail) with %s id %s%s%s; %s\r\n",
	    s->helo, v6 ? "IPv6:" : "", ip,
	    s->user ? " (authenticated as " : "", s->user ? s->user : "",
	    s->user ? ")" : "", s->srv->set.hostname, with, s->id, tlsinfo,
	    forinfo, date);
}

/* The reply code and enhanced status for a store status. */
static const char *
smtp_status_code(enum store_status st)
{
	switch (st) {
	case STORE_OK:
		return "250 2.0.0";
	case STORE_ERR_QUOTA:
		return "552 5.2.2";
	case STORE_ERR_NOSPACE:
		return "452 4.3.1";
	case STORE_ERR_IO:
		break;
	}
	return "451 4.3.0";
}

static const char *
smtp_status_text(enum store_status st)
{
	switch (st) {
	case STORE_OK:
		return "Ok";
	case STORE_ERR_QUOTA:
		return "Mailbox full";
	case STORE_ERR_NOSPACE:
		return "Insufficient system storage";
	case STORE_ERR_IO:
		break;
	}
	return "Local error in processing";
}

static const char *
smtp_status_name(enum store_status st)
{
	static const char *const names[] = {"ok", "quota", "nospace", "io"};

	return (unsigned)st < 4 ? names[st] : "io";
}

/* The status of one RCPT: its first store recipient that failed. */
static enum store_status
smtp_rcpt_status(const struct smtp_rcpt *r, const struct store_delivery *d)
{
	for (size_t i = 0; i < r->nidx; i++)
		if (d->rcpts[r->idx[i]].status != STORE_OK)
			return d->rcpts[r->idx[i]].status;
	return STORE_OK;
}

static void
smtp_session_delivered_reply(struct smtp_session *s,
    const struct store_delivery *d)
{
	enum store_status st = STORE_OK;

	if (s->mode == SMTP_MODE_LMTP) {
		for (size_t i = 0; i < s->nrcpts; i++) {
			st = smtp_rcpt_status(&s->rcpts[i], d);
			conn_printf(s->conn, "%s <%s> %s\r\n",
			    smtp_status_code(st), s->rcpts[i].address,
			    smtp_status_text(st));
		}
		return;
	}
	for (size_t i = 0; i < d->nrcpts && st == STORE_OK; i++)
		st = d->rcpts[i].status;
	if (st == STORE_OK)
		conn_printf(s->conn, "250 2.0.0 Ok: queued as %s\r\n", s->id);
	else
		conn_printf(s->conn, "%s %s\r\n", smtp_status_code(st),
		    smtp_status_text(st));
}

static void
smtp_session_on_stored(struct store_delivery *d, void *arg)
{
	struct smtp_session *s = arg;
	enum store_status st = STORE_OK;
	size_t ok = 0;

	for (size_t i = 0; i < d->nrcpts; i++) {
		ok += d->rcpts[i].status == STORE_OK;
		if (st == STORE_OK)
			st = d->rcpts[i].status;
	}
	log_info("sid=" LOG_SID_FMT " proto=%s event=deliver id=%s size=%zu "
	         "rcpts=%zu stored=%zu status=%s",
	    s->sid, smtp_proto(s->mode), s->id, d->len, d->nrcpts, ok,
	    smtp_status_name(st));
	if (s->conn != NULL)
		smtp_session_delivered_reply(s, d);
	store_delivery_free(&d);
	smtp_session_reset(s);
	s->storing = 0;
	if (s->dead) {
		smtp_session_free(s);
		return;
	}
	smtp_session_idle(s);
}

/* Checks the From: field of a submitted message; 0 when it may go. */
static int
smtp_session_check_from(struct smtp_session *s, const char *msg, size_t len)
{
	char **addrs;
	size_t n;
	int ok = 1;

	if (s->mode != SMTP_MODE_SUBMISSION)
		return 0;
	if (smtp_header_from(msg, len, &addrs, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!userdb_may_send_as(s->srv->env.userdb, s->user, addrs[i]))
			ok = 0;
	smtp_header_addrs_free(addrs, n);
	return ok ? 0 : -1;
}

/* Hands the message to the store; the reply comes from the callback. */
static void
smtp_session_store(struct smtp_session *s, char *msg, size_t len)
{
	struct store_delivery *d = xcalloc(1, sizeof(*d));
	char *hdr = smtp_session_received(s);
	size_t hlen = strlen(hdr);

	d->data = xrealloc(msg, hlen + len + 1);
	memmove(d->data + hlen, d->data, len + 1);
	memcpy(d->data, hdr, hlen);
	free(hdr);
	d->len = hlen + len;
	d->return_path = xstrdup(s->mail_from);
	d->internaldate = time(NULL);
	d->all_or_none = s->mode != SMTP_MODE_LMTP;
	/* The store recipients now belong to the delivery. */
	d->rcpts = s->srcpts;
	d->nrcpts = s->nsrcpts;
	s->srcpts = NULL;
	s->nsrcpts = 0;
	d->done = smtp_session_on_stored;
	d->arg = s;
	smtp_session_busy(s);
	s->storing = 1;
	store_deliver(s->srv->env.store, d);
}

/* The whole message has been read: refuse it or store it. */
static void
smtp_session_message(struct smtp_session *s)
{
	struct smtp_data *data = s->data;
	char *msg;
	size_t len;

	smtp_data_finish(data);
	if (data->bare && !data->normalize) {
		log_info("sid=" LOG_SID_FMT " proto=%s event=deliver id=%s "
		         "status=refused reason=bare_line_end",
		    s->sid, smtp_proto(s->mode), s->id);
		smtp_reply(s, "550 5.5.2 Message refused: bare LF or CR");
	} else if (smtp_data_too_big(data)) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
	} else {
		msg = smtp_data_take(data, &len);
		if (smtp_session_check_from(s, msg, len) == 0) {
			smtp_session_store(s, msg, len);
			return;
		}
		free(msg);
		smtp_reply(s, "553 5.7.1 From header not owned by user");
	}
	smtp_session_reset(s);
	smtp_session_idle(s);
}

static void
smtp_session_data_new(struct smtp_session *s)
{
	s->data = xmalloc(sizeof(*s->data));
	smtp_data_init(s->data, s->srv->set.max_message_size,
	    s->srv->set.bare_lf_normalize);
	conn_set_timeout(s->conn, s->srv->set.data_timeout);
}

static void
smtp_cmd_data(struct smtp_session *s)
{
	if (s->mail_from == NULL || s->nrcpts == 0) {
		smtp_reply(s,
		    s->mail_from == NULL ? "503 5.5.1 Need MAIL command" :
		                           "503 5.5.1 No valid recipients");
		return;
	}
	if (s->bdat_started) {
		smtp_reply(s, "503 5.5.1 DATA after BDAT");
		return;
	}
	smtp_session_data_new(s);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->phase = PH_DATA;
}

/*
 * BDAT: the chunk's bytes follow the command at once, so they are read
 * (and discarded when the command is refused) in every case.
 */
static void
smtp_cmd_bdat(struct smtp_session *s, struct smtp_cmd *cmd)
{
	s->bdat_left = cmd->size;
	s->bdat_last = cmd->last;
	s->bdat_error = NULL;
	if (s->mail_from == NULL)
		s->bdat_error = "503 5.5.1 Need MAIL command";
	else if (s->nrcpts == 0)
		s->bdat_error = "503 5.5.1 No valid recipients";
	if (s->bdat_error == NULL && s->data == NULL) {
		smtp_session_data_new(s);
		smtp_data_set_bdat(s->data);
	}
	s->bdat_started = s->bdat_error == NULL;
	conn_set_timeout(s->conn, s->srv->set.data_timeout);
	s->phase = PH_BDAT;
}

/* Reads DATA body bytes from the input; 1 when the message ended. */
static int
smtp_session_data_input(struct smtp_session *s)
{
	struct evbuffer *in = conn_input(s->conn);
	struct evbuffer_iovec v;
	size_t used;
	int end;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	end = smtp_data_feed(s->data, v.iov_base, v.iov_len, &used);
	evbuffer_drain(in, used);
	if (end)
		smtp_session_message(s);
	return 1;
}

static void
smtp_session_bdat_done(struct smtp_session *s)
{
	char reply[64];

	if (s->bdat_error != NULL) {
		smtp_reply(s, s->bdat_error);
		s->bdat_error = NULL;
		smtp_session_idle(s);
	} else if (s->bdat_last) {
		smtp_session_message(s);
	} else {
		snprintf(reply, sizeof(reply), "250 2.0.0 %llu bytes received",
		    (unsigned long long)s->data->size);
		smtp_reply(s, reply);
		smtp_session_idle(s);
	}
}

/* Reads BDAT chunk bytes; 1 while progress is made. */
static int
smtp_session_bdat_input(struct smtp_session *s)
{
	struct evbuffer *in = conn_input(s->conn);
	struct evbuffer_iovec v;
	size_t n, used;

	if (s->bdat_left > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return 0;
		n = v.iov_len < s->bdat_left ? v.iov_len : (size_t)s->bdat_left;
		if (s->bdat_error == NULL)
			smtp_data_feed(s->data, v.iov_base, n, &used);
		evbuffer_drain(in, n);
		s->bdat_left -= n;
	}
	if (s->bdat_left == 0)
		smtp_session_bdat_done(s);
	return 1;
}

/* ------------------------------------------------------------------ */
/* AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN. */

static void
smtp_session_on_auth(enum auth_result result, const char *user, void *arg)
{
	struct smtp_session *s = arg;

	s->auth_req = NULL;
	s->in_run = 1;
	log_info("sid=" LOG_SID_FMT " proto=%s event=auth result=%s%s%s",
	    s->sid, smtp_proto(s->mode),
	    result == AUTH_OK         ? "ok" :
	        result == AUTH_FAILED ? "fail" :
	                                "tempfail",
	    user != NULL ? " user=" : "", user != NULL ? user : "");
	if (result == AUTH_OK) {
		s->user = xstrdup(user);
		smtp_reply(s, "235 2.7.0 Authentication successful");
	} else if (result == AUTH_FAILED) {
		smtp_session_bad(s,
		    "535 5.7.8 Authentication credentials invalid");
	} else {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
	}
	if (s->phase == PH_BUSY && !s->dead)
		smtp_session_idle(s);
	s->in_run = 0;
	if (s->dead)
		smtp_session_free(s);
}

/* Checks the credentials on the auth pool; input waits meanwhile. */
static void
smtp_session_verify(struct smtp_session *s, const char *authcid,
    const char *password)
{
	smtp_session_busy(s);
	s->auth_step = AUTH_NONE;
	s->auth_req = auth_verify(s->srv->env.auth, authcid, password,
	    conn_peer_ip(s->conn), smtp_session_on_auth, s);
}

static void
smtp_session_auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	char *authzid, *authcid, *password;

	if (sasl_plain_decode(b64, len, &authzid, &authcid, &password) < 0) {
		s->auth_step = AUTH_NONE;
		smtp_session_bad(s, "501 5.5.2 Cannot decode response");
		return;
	}
	/* Acting as someone else is not supported. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		s->auth_step = AUTH_NONE;
		smtp_session_bad(s,
		    "535 5.7.8 Authentication credentials invalid");
	} else {
		smtp_session_verify(s, authcid, password);
	}
	free(authzid);
	free(authcid);
	xfree_secret_str(password);
}

static void
smtp_session_auth_login(struct smtp_session *s, const char *b64, size_t len)
{
	char *value;

	if (sasl_login_decode(b64, len, &value) < 0) {
		smtp_session_auth_clear(s);
		smtp_session_bad(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth_step == AUTH_LOGIN_USER) {
		s->auth_login_user = value;
		s->auth_step = AUTH_LOGIN_PASS;
		smtp_reply(s, "334 UGFzc3dvcmQ6");
		s->phase = PH_AUTH;
		return;
	}
	smtp_session_verify(s, s->auth_login_user, value);
	xfree_secret_str(value);
	xfree_secret_str(s->auth_login_user);
	s->auth_login_user = NULL;
}

/* One client response to a 334 challenge ("=" is an empty one). */
static void
smtp_session_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	s->phase = PH_CMD;
	if (len == 1 && line[0] == '*') {
		smtp_session_auth_clear(s);
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (len == 1 && line[0] == '=')
		len = 0;
	if (s->auth_step == AUTH_PLAIN_WAIT)
		smtp_session_auth_plain(s, line, len);
	else
		smtp_session_auth_login(s, line, len);
}

static void
smtp_cmd_auth(struct smtp_session *s, struct smtp_cmd *cmd)
{
	int plain = strcmp(cmd->arg, "PLAIN") == 0;

	if (s->mode != SMTP_MODE_SUBMISSION || s->srv->env.auth == NULL) {
		smtp_session_bad(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (s->helo == NULL || s->user != NULL || s->mail_from != NULL) {
		smtp_reply(s,
		    s->user != NULL ? "503 5.5.1 Already authenticated" :
		                      "503 5.5.1 Bad sequence of commands");
		return;
	}
	if (!conn_is_tls(s->conn) && !s->srv->set.auth_plaintext) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (!plain && strcmp(cmd->arg, "LOGIN") != 0) {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	s->auth_step = plain ? AUTH_PLAIN_WAIT : AUTH_LOGIN_USER;
	if (cmd->initial != NULL) {
		smtp_session_auth_response(s, cmd->initial,
		    strlen(cmd->initial));
		return;
	}
	smtp_reply(s, plain ? "334 " : "334 VXNlcm5hbWU6");
	s->phase = PH_AUTH;
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
		smtp_cmd_data(s);
		break;
	case SMTP_CMD_BDAT:
		smtp_cmd_bdat(s, cmd);
		break;
	case SMTP_CMD_RSET:
		smtp_session_reset(s);
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		smtp_session_close_with(s, "221 2.0.0 Bye");
		break;
	case SMTP_CMD_VRFY:
		smtp_reply(s,
		    "252 2.5.0 Cannot VRFY user, but will accept "
		    "message and attempt delivery");
		break;
	case SMTP_CMD_EXPN:
		smtp_reply(s, "502 5.5.1 EXPN not available");
		break;
	case SMTP_CMD_HELP:
		smtp_reply(s, "214 2.0.0 pushmail: see RFC 5321");
		break;
	case SMTP_CMD_STARTTLS:
		smtp_cmd_starttls(s);
		break;
	case SMTP_CMD_AUTH:
		smtp_cmd_auth(s, cmd);
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
			smtp_session_auth_clear(s);
		s->phase = PH_CMD;
		smtp_session_bad(s, "500 5.5.2 Line too long");
		return 1;
	}
	if (s->phase == PH_AUTH)
		smtp_session_auth_response(s, line, len);
	else
		smtp_session_command(s, line, len);
	xfree_secret(line, len);
	return 1;
}

/*
 * Handles buffered input in order until it runs out or the session must
 * wait (store, auth, TLS) or close.
 */
static void
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
			progress = smtp_session_data_input(s);
			break;
		case PH_BDAT:
			progress = smtp_session_bdat_input(s);
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
	    s->sid, smtp_proto(s->mode), srv->set.name, conn_peer_ip(conn),
	    conn_local_port(conn), conn_is_tls(conn));
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
