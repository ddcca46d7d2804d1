/*
 * Internal to smtp/: the server's state that sessions read, and the
 * per-connection session (RFC 5321, 6409 and 2033 state machine) that
 * smtp_server starts and, at shutdown, closes.
 */
#ifndef SMTP_SMTP_SESSION_H
#define SMTP_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_server.h"

struct auth_request;
struct conn;
struct smtp_data;
struct store_rcpt;
struct smtp_cmd;

/* What the session reads next. */
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

struct smtp_server {
	struct event_base *base;
	struct smtp_settings set; /* strings owned */
	struct smtp_env env;
	struct smtp_session *sessions; /* open sessions, linked */
	size_t nsessions;
};

/*
 * Starts a session on conn (owned by the session from now on): greets and
 * reads. The session links itself into srv and unlinks when it ends.
 */
void smtp_session_start(struct smtp_server *srv, struct conn *conn);

/*
 * Closes a session at server shutdown: its connection goes at once; a
 * delivery in flight completes later without a reply and then frees the
 * session, which no longer refers to the server.
 */
void smtp_session_close(struct smtp_session *s);

/* "smtp", "submission" or "lmtp", for log lines. */
const char *smtp_session_proto(enum smtp_mode mode);

/* Queues one reply line (CRLF added); nothing once the conn is gone. */
void smtp_session_reply(struct smtp_session *s, const char *reply);

/* Counts a client error and replies; the last one allowed closes (421). */
void smtp_session_bad(struct smtp_session *s, const char *reply);

/* Replies, then closes once the reply is written. */
void smtp_session_close_with(struct smtp_session *s, const char *reply);

/* Forgets the transaction: MAIL, recipients and any body read so far. */
void smtp_session_reset(struct smtp_session *s);

/* Stops reading input while the store or auth works, and resumes it. */
void smtp_session_busy(struct smtp_session *s);
void smtp_session_idle(struct smtp_session *s);

/* Handles buffered input until it runs out or the session must wait. */
void smtp_session_run(struct smtp_session *s);

/* Frees the session and everything it holds (the conn included). */
void smtp_session_free(struct smtp_session *s);

/* smtp_message.c: DATA and BDAT commands and their input. */
void smtp_message_data_cmd(struct smtp_session *s);
void smtp_message_bdat_cmd(struct smtp_session *s, struct smtp_cmd *cmd);
/* Each returns 1 while it makes progress, 0 when it needs more input. */
int smtp_message_data_input(struct smtp_session *s);
int smtp_message_bdat_input(struct smtp_session *s);

/* smtp_auth.c: the AUTH command, a response line to 334, and cleanup. */
void smtp_auth_cmd(struct smtp_session *s, struct smtp_cmd *cmd);
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_clear(struct smtp_session *s);

#endif
