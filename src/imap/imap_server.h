/*
 * IMAP servers (RFC 9051, with RFC 3501 clients in mind): one imap_server
 * per listener, owning the sessions it accepted. Implicit TLS follows RFC
 * 8314; STARTTLS and plaintext LOGIN policy follow RFC 9051 section 6.2.
 */
#ifndef IMAP_IMAP_SERVER_H
#define IMAP_IMAP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct store;
struct userdb;
struct auth;
struct hub;
struct imap_server;

/* When LOGIN and AUTHENTICATE may run on a connection without TLS. */
enum imap_plaintext {
	IMAP_PLAINTEXT_LOOPBACK, /* only from 127.0.0.0/8, ::1 and UNIX */
	IMAP_PLAINTEXT_YES,      /* from anywhere (tests, trusted nets) */
	IMAP_PLAINTEXT_NO,       /* never: LOGINDISABLED until TLS */
};

/* Zero numeric fields take the default named in the comment. */
struct imap_settings {
	const char *name;     /* listener name, for logs */
	const char *hostname; /* for logs and later responses */
	SSL_CTX *tls;         /* offered by STARTTLS; NULL: not offered */
	int implicit_tls;     /* connections arrive already under TLS */
	enum imap_plaintext plaintext_auth;
	unsigned timeout_login;     /* idle seconds before login: 60 */
	unsigned timeout;           /* idle seconds once logged in: 1800 */
	size_t line_max;            /* one command without literals: 64 KiB */
	uint64_t literal_max;       /* one literal once logged in: 64 MiB */
	uint64_t literal_max_login; /* one literal before login: 8 KiB */
	size_t output_limit;        /* queued output before reading stops */
	unsigned max_bad_commands;  /* consecutive errors before BYE: 10 */
	unsigned idle_keepalive;    /* seconds between IDLE "* OK": 240 */
	unsigned idle_hibernate;    /* IDLE seconds before views sleep: 30 */
};

/* The services a session uses; all outlive the server. */
struct imap_env {
	struct store *store;
	struct userdb *userdb;
	struct auth *auth;
	struct hub *hub;
};

/* Copies settings (strings included); env is borrowed. */
struct imap_server *imap_server_new(struct event_base *base,
    const struct imap_settings *settings, const struct imap_env *env);

/*
 * Starts a session on an accepted socket; usable directly as a
 * listener_accept_cb with the server as its argument.
 */
void imap_server_accept(int fd, const struct sockaddr *peer, socklen_t peerlen,
    void *server);

/* Sessions now open. */
size_t imap_server_sessions(const struct imap_server *srv);

/*
 * Closes every session at once (a password check in flight is cancelled)
 * and frees the server. Accepts NULL; sets *srv to NULL.
 */
void imap_server_free(struct imap_server **srv);

#endif
