/*
 * Listening sockets, TCP ("127.0.0.1:2525", "[::1]:2525") or UNIX, that hand
 * each accepted connection to a callback.
 */
#ifndef NET_LISTENER_H
#define NET_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct listener;

/* Runs on the loop thread with a non-blocking fd the callee owns. */
typedef void (*listener_accept_cb)(int fd, const struct sockaddr *peer,
    socklen_t peerlen, void *arg);

/*
 * Listens on addr with the given backlog. Returns NULL with a message in err
 * when the address is malformed or cannot be bound.
 */
struct listener *listener_new_tcp(struct event_base *base, const char *addr,
    int backlog, listener_accept_cb cb, void *arg, char *err, size_t errlen);

/* Listens on a UNIX socket at path (a stale socket file is replaced). */
struct listener *listener_new_unix(struct event_base *base, const char *path,
    unsigned mode, listener_accept_cb cb, void *arg, char *err, size_t errlen);

/* The bound port (for TCP listeners on port 0), or 0. */
int listener_port(const struct listener *l);

/* Closes the socket (and removes a UNIX socket file); sets *l to NULL. */
void listener_free(struct listener **l);

/*
 * Client connections (conn_open_count()) at which every listener pauses
 * until some have ended; unlimited until set.
 */
void listener_set_ceiling(size_t conns);

#endif
