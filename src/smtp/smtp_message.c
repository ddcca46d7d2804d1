/*
 * The message of an SMTP or LMTP transaction: DATA (RFC 5321 section 4.1.1.4)
 * and BDAT (RFC 3030) input, the Received field (section 4.4), the From:
 * check of submission (RFC 6409 section 8) and the hand-off to the store
 * with its replies (LMTP: one per recipient, RFC 2033 section 4.2).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header.h"
#include "smtp/smtp_parser.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

/* Appends the Received field (RFC 5321 section 4.4) to out. */
static char *
smtp_session_received(struct smtp_session *s)
{
	char ipbuf[CONN_IP_LEN];
	const char *ip = conn_peer_ip(s->conn, ipbuf);
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
	    s->sid, smtp_session_proto(s->mode), s->id, d->len, d->nrcpts, ok,
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
		    s->sid, smtp_session_proto(s->mode), s->id);
		smtp_session_reply(s,
		    "550 5.5.2 Message refused: bare LF or CR");
	} else if (smtp_data_too_big(data)) {
		smtp_session_reply(s,
		    "552 5.3.4 Message size exceeds fixed limit");
	} else {
		msg = smtp_data_take(data, &len);
		if (smtp_session_check_from(s, msg, len) == 0) {
			smtp_session_store(s, msg, len);
			return;
		}
		free(msg);
		smtp_session_reply(s,
		    "553 5.7.1 From header not owned by user");
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

void
smtp_message_data_cmd(struct smtp_session *s)
{
	if (s->mail_from == NULL || s->nrcpts == 0) {
		smtp_session_reply(s,
		    s->mail_from == NULL ? "503 5.5.1 Need MAIL command" :
		                           "503 5.5.1 No valid recipients");
		return;
	}
	if (s->bdat_started) {
		smtp_session_reply(s, "503 5.5.1 DATA after BDAT");
		return;
	}
	smtp_session_data_new(s);
	smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->phase = PH_DATA;
}

/*
 * BDAT: the chunk's bytes follow the command at once, so they are read
 * (and discarded when the command is refused) in every case.
 */
void
smtp_message_bdat_cmd(struct smtp_session *s, struct smtp_cmd *cmd)
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
int
smtp_message_data_input(struct smtp_session *s)
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
		smtp_session_reply(s, s->bdat_error);
		s->bdat_error = NULL;
		smtp_session_idle(s);
	} else if (s->bdat_last) {
		smtp_session_message(s);
	} else {
		snprintf(reply, sizeof(reply), "250 2.0.0 %llu bytes received",
		    (unsigned long long)s->data->size);
		smtp_session_reply(s, reply);
		smtp_session_idle(s);
	}
}

/* Reads BDAT chunk bytes; 1 while progress is made. */
int
smtp_message_bdat_input(struct smtp_session *s)
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
