/*
 * SMTP (RFC 5321), submission (RFC 6409) and LMTP (RFC 2033) servers: one
 * smtp_server per listener, owning the sessions it accepted.
 */
#ifndef SMTP_SMTP_SERVER_H
#define SMTP_SMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct store;
struct userdb;
struct auth;
struct smtp_server;

enum smtp_mode {
	SMTP_MODE_SMTP,       /* inbound relay-to-local on port 25 */
	SMTP_MODE_SUBMISSION, /* authenticated users, RFC 6409 */
	SMTP_MODE_LMTP,       /* RFC 2033, one reply per recipient */
};

struct smtp_settings {
	enum smtp_mode mode;
	const char *name;     /* listener name, for logs */
	const char *hostname; /* greeting, EHLO and Received */
	SSL_CTX *tls;         /* offered by STARTTLS; NULL: not offered */
	int implicit_tls;     /* connections arrive already under TLS */
	int auth_plaintext;   /* allow AUTH without TLS (tests only) */
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_bad_commands; /* unknown commands before closing */
	unsigned timeout;          /* seconds idle between commands */
	unsigned data_timeout;     /* seconds idle inside DATA/BDAT */
	int bare_lf_normalize;     /* turn bare LF/CR in DATA into CRLF */
};

/* The services a session uses; all outlive the server. */
struct smtp_env {
	struct store *store;
	struct userdb *userdb;
	struct auth *auth; /* NULL for LMTP */
};

/* Copies settings (strings included); env is borrowed. */
struct smtp_server *smtp_server_new(struct event_base *base,
    const struct smtp_settings *settings, const struct smtp_env *env);

/*
 * Starts a session on an accepted socket; usable directly as a
 * listener_accept_cb with the server as its argument.
 */
void smtp_server_accept(int fd, const struct sockaddr *peer, socklen_t peerlen,
    void *server);

/* Sessions now open. */
size_t smtp_server_sessions(const struct smtp_server *srv);

/*
 * Closes every session (a delivery in flight completes first, without a
 * reply) and frees the server. Sets *srv to NULL.
 */
void smtp_server_free(struct smtp_server **srv);

#endif
