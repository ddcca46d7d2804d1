/*
 * Listening sockets on TCP addresses or UNIX paths, via evconnlistener.
 * At the connection ceiling every listener stops accepting, so the
 * descriptors the store needs (index handles, message files) are never
 * taken by a reconnect storm; the kernel's backlog holds the clients until
 * connections have ended and accepting resumes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "net/listener.h"

/* Accepting resumes this many connections below the ceiling. */
#define LISTENER_SLACK 64

struct listener {
	struct evconnlistener *evl;
	struct event *pause; /* re-enables accepting after EMFILE */
	listener_accept_cb cb;
	void *arg;
	char *unix_path;
	int port;
	struct listener *next; /* on listeners */
};

static struct listener *listeners;
static size_t listener_ceiling = SIZE_MAX;
static int listener_full; /* paused at the ceiling */

void
listener_set_ceiling(size_t conns)
{
	listener_ceiling = conns > LISTENER_SLACK ? conns : LISTENER_SLACK + 1;
}

static void
listener_pause_all(void)
{
	struct timeval tv = {0, 20 * 1000};

	if (!listener_full)
		log_warn("event=accept action=pause connections=%zu "
		         "ceiling=%zu",
		    conn_open_count(), listener_ceiling);
	listener_full = 1;
	for (struct listener *l = listeners; l != NULL; l = l->next) {
		evconnlistener_disable(l->evl);
		event_add(l->pause, &tv);
	}
}

static void
listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	l->cb(fd, sa, (socklen_t)salen, l->arg);
	if (conn_open_count() >= listener_ceiling)
		listener_pause_all();
}

static void
listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = {0, 20 * 1000};

	if (listener_full &&
	    conn_open_count() + LISTENER_SLACK > listener_ceiling) {
		event_add(l->pause, &tv);
		return;
	}
	if (listener_full)
		log_info("event=accept action=resume connections=%zu",
		    conn_open_count());
	listener_full = 0;
	evconnlistener_enable(l->evl);
}

static void
listener_on_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 100 * 1000};

	log_warn("event=accept error=\"%s\"",
	    evutil_socket_error_to_string(err));
	/*
	 * Out of descriptors, the pending connection stays queued and the
	 * socket stays readable: pause instead of spinning on it.
	 */
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(evl);
		event_add(l->pause, &tv);
	}
}

static struct listener *
listener_start(struct event_base *base, const struct sockaddr *sa,
    socklen_t len, int backlog, listener_accept_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	if (sa->sa_family != AF_UNIX)
		flags |= LEV_OPT_REUSEABLE;
	l->cb = cb;
	l->arg = arg;
	l->evl = evconnlistener_new_bind(base, listener_on_accept, l, flags,
	    backlog, sa, (int)len);
	if (l->evl == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_on_error);
	l->pause = evtimer_new(base, listener_on_resume, l);
	l->next = listeners;
	listeners = l;
	return l;
}

/* Parses "1.2.3.4:25" or "[::1]:25" (port 0 allowed) into ss. */
static int
listener_parse_addr(const char *addr, struct sockaddr_storage *ss,
    socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(addr, ':');
	char *end;
	unsigned long port;
	size_t hl;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	port = strtoul(colon + 1, &end, 10);
	hl = (size_t)(colon - addr);
	if (*end != '\0' || port > 65535 || hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ?
		    0 :
		    -1;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
	}
}

struct listener *
listener_new_tcp(struct event_base *base, const char *addr, int backlog,
    listener_accept_cb cb, void *arg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct listener *l;
	char e[256];

	if (listener_parse_addr(addr, &ss, &len) < 0) {
		snprintf(err, errlen, "%s: expected IPv4:port or [IPv6]:port",
		    addr);
		return NULL;
	}
	l = listener_start(base, (struct sockaddr *)&ss, len, backlog, cb, arg,
	    e, sizeof(e));
	if (l == NULL) {
		snprintf(err, errlen, "%s: %s", addr, e);
		return NULL;
	}
	len = sizeof(ss);
	getsockname(evconnlistener_get_fd(l->evl), (struct sockaddr *)&ss,
	    &len);
	l->port = ntohs(ss.ss_family == AF_INET6 ?
	        ((struct sockaddr_in6 *)&ss)->sin6_port :
	        ((struct sockaddr_in *)&ss)->sin_port);
	return l;
}

struct listener *
listener_new_unix(struct event_base *base, const char *path, unsigned mode,
    listener_accept_cb cb, void *arg, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct listener *l;
	char e[256];

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	/* A socket left by a previous run; the data-dir lock says it is ours. */
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	l = listener_start(base, (struct sockaddr *)&sun, sizeof(sun), 128, cb,
	    arg, e, sizeof(e));
	if (l == NULL) {
		snprintf(err, errlen, "%s: %s", path, e);
		return NULL;
	}
	chmod(path, mode);
	l->unix_path = xstrdup(path);
	return l;
}

int
listener_port(const struct listener *l)
{
	return l->port;
}

void
listener_free(struct listener **lp)
{
	struct listener *l = *lp;

	if (l == NULL)
		return;
	for (struct listener **pp = &listeners; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	evconnlistener_free(l->evl);
	event_free(l->pause);
	if (l->unix_path != NULL) {
		unlink(l->unix_path);
		free(l->unix_path);
	}
	free(l);
	*lp = NULL;
}
