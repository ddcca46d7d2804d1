/*
 * Internal to smtp/: the server's state that sessions read, and the
 * per-connection session (RFC 5321, 6409 and 2033 state machine) that
 * smtp_server starts and, at shutdown, closes.
 */
#ifndef SMTP_SMTP_SESSION_H
#define SMTP_SMTP_SESSION_H

#include <stddef.h>

#include "smtp/smtp_server.h"

struct conn;
struct smtp_session;

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

#endif
