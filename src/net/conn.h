/*
 * A client connection: a socket with buffered input and output (libevent
 * bufferevent), optional TLS from the start or by STARTTLS, TCP keepalive, an
 * idle timeout, bounded line reading and output back-pressure. The protocol
 * session that owns a conn is told of input, of drained output and of the end.
 */
#ifndef NET_CONN_H
#define NET_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct conn;

enum conn_end {
	CONN_END_EOF,      /* the peer closed */
	CONN_END_ERROR,    /* socket or TLS error */
	CONN_END_TIMEOUT,  /* no input within the read timeout */
	CONN_END_SHUTDOWN, /* conn_shutdown() finished flushing */
};

/* New input is in conn_input(). */
typedef void (*conn_read_cb)(struct conn *conn, void *arg);
/* Output fell below the low-water mark after having been above it. */
typedef void (*conn_drain_cb)(struct conn *conn, void *arg);
/*
 * The connection is over; the owner must conn_free() it (typically as part
 * of freeing its session) before or after returning, and no other callback
 * follows. Only for CONN_END_TIMEOUT may the owner instead write a last
 * line and call conn_shutdown(); the callback then fires once more.
 */
typedef void (*conn_end_cb)(struct conn *conn, enum conn_end why, void *arg);

/*
 * Wraps the accepted socket fd (which the conn now owns and closes). With a
 * non-NULL tls, the TLS handshake starts at once (implicit TLS). peer is the
 * client's address (AF_UNIX for local sockets). Reading starts once
 * callbacks are set.
 */
struct conn *conn_new(struct event_base *base, int fd, SSL_CTX *tls,
    const struct sockaddr *peer, socklen_t peerlen);

void conn_set_cbs(struct conn *conn, conn_read_cb read, conn_drain_cb drain,
    conn_end_cb end, void *arg);

/* Ends the connection with CONN_END_TIMEOUT after seconds without input. */
void conn_set_timeout(struct conn *conn, unsigned seconds);

/*
 * When more than limit bytes wait in the output, reading stops until the
 * output drains below half of it; the drain callback then fires.
 */
void conn_set_output_limit(struct conn *conn, size_t limit);

/* Room for conn_peer_ip()'s text, NUL included. */
#define CONN_IP_LEN 46

/* The peer's address as text ("127.0.0.1", "::1", or "local") in buf. */
const char *conn_peer_ip(const struct conn *conn, char buf[CONN_IP_LEN]);

/* The local port the client connected to (0 for UNIX sockets). */
int conn_local_port(const struct conn *conn);

/* 1 when the connection is under TLS (handshake started), else 0. */
int conn_is_tls(const struct conn *conn);

/* The negotiated protocol and cipher, for logs and Received headers. */
const char *conn_tls_version(const struct conn *conn);
const char *conn_tls_cipher(const struct conn *conn);

struct evbuffer *conn_input(struct conn *conn);
struct evbuffer *conn_output(struct conn *conn);

/*
 * Takes one line ending in LF (CRLF or bare LF) off the input, of at most
 * max bytes without its line end. Returns 1 with *line (NUL-terminated, line
 * end removed, caller frees) and *len, 0 when no whole line has arrived, or
 * -1 when the line is longer than max: its bytes are discarded up to and
 * including the next LF, which may still be to come.
 */
int conn_readline(struct conn *conn, size_t max, char **line, size_t *len);

/* Queues bytes for output. */
void conn_write(struct conn *conn, const void *data, size_t len);
void conn_printf(struct conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Stops and resumes reading input (for example while a command waits for a
 * worker). Resuming runs the read callback soon if input is buffered.
 */
void conn_pause(struct conn *conn);
void conn_resume(struct conn *conn);

/*
 * Starts a TLS handshake as server on this plaintext connection. Any input
 * already buffered is discarded (RFC 3207 section 4.2: nothing sent before
 * the handshake may be acted on). Returns 0, or -1 if TLS is already on.
 */
int conn_starttls(struct conn *conn, SSL_CTX *tls);

/*
 * Stops reading, flushes the output, then ends with CONN_END_SHUTDOWN.
 */
void conn_shutdown(struct conn *conn);

/*
 * A sleepy connection frees its bufferevent whenever nothing is buffered
 * and makes it again on input or on any use: for sessions that wait long
 * (IMAP IDLE). Off again at conn_shutdown().
 */
void conn_set_sleepy(struct conn *conn, int sleepy);

/*
 * Brackets the writes of one notice to a possibly sleeping connection
 * (an IMAP push). While it sleeps they are gathered, and conn_flush()
 * sends them with one send(2) straight from the loop; a plaintext
 * connection whose socket takes them all stays asleep, without a
 * bufferevent ever being made. Anything else (TLS, a full socket buffer,
 * a use that wakes the connection) goes through the bufferevent as usual.
 * One connection gathers at a time.
 */
void conn_gather(struct conn *conn);
void conn_flush(struct conn *conn);

/* 1 while a sleepy connection holds no bufferevent (for tests and logs). */
int conn_is_asleep(const struct conn *conn);

/* Closes the socket at once and frees conn; sets *conn to NULL. */
void conn_free(struct conn **conn);

/* Connections made by conn_new() and not yet freed. */
size_t conn_open_count(void);

/* Bytes read and written so far, for the disconnect log line. */
size_t conn_bytes_in(const struct conn *conn);
size_t conn_bytes_out(const struct conn *conn);

#endif
