/*
 * Client connections over libevent bufferevents: plaintext, implicit TLS or
 * STARTTLS (RFC 3207 section 4.2: pipelined plaintext is discarded), with
 * TCP keepalive, a read timeout, bounded lines and output back-pressure.
 *
 * A sleepy connection (an IMAP session in IDLE) gives its bufferevent back
 * whenever nothing is buffered either way and no read timeout runs, and
 * its socket joins the park: one epoll set per event base, itself watched
 * by one libevent event, so a sleeping connection holds no user-space
 * memory beyond its struct (the kernel keeps the epoll entry). Its TLS
 * state stays in the SSL object. Input arriving, or any use (conn_output(),
 * conn_printf()), makes the bufferevent again first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"

#define CONN_DEFAULT_OUTPUT_LIMIT (256 * 1024)

struct conn {
	struct event_base *base;
	struct bufferevent *bev;
	int fd;
	unsigned timeout;
	size_t output_limit;
	size_t bytes_in;
	size_t bytes_out;
	conn_read_cb read_cb;
	conn_drain_cb drain_cb;
	conn_end_cb end_cb;
	void *arg;
	SSL_CTX *starttls_ctx;  /* handshake to start once output drained */
	SSL *ssl;               /* under TLS; ours, kept while asleep */
	struct conn_park *park; /* asleep (bev NULL): the set its socket is in */
	unsigned tls : 1;
	unsigned sleepy : 1;    /* sleeps whenever nothing is buffered */
	unsigned paused : 1;    /* by the owner */
	unsigned throttled : 1; /* by the output limit */
	unsigned shutting_down : 1;
	unsigned discarding : 1; /* inside an over-long line */
	unsigned ended : 1;
	unsigned gathering : 1; /* between conn_gather() and conn_flush() */
	int local_port;
	sa_family_t peer_family; /* AF_INET, AF_INET6, or AF_UNIX ("local") */

	union {
		struct in_addr v4;
		struct in6_addr v6;
	} peer;
};

/* Conns alive (loop thread only). */
static size_t conn_nopen;

/* What a sleeping conn gathers (conn_gather()); one conn at a time. */
static struct evbuffer *conn_gathered;

static void conn_on_read(struct bufferevent *bev, void *arg);
static void conn_on_write(struct bufferevent *bev, void *arg);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);
static void conn_wake(struct conn *conn);
static void conn_sleep(struct conn *conn);
static void conn_unpark(struct conn *conn);

static void
conn_count_in(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *conn = arg;

	conn->bytes_in += info->n_added;
}

static void
conn_count_out(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *conn = arg;

	conn->bytes_out += info->n_deleted;
}

static void
conn_set_sockopts(int fd)
{
	int one = 1, idle = 120, intvl = 30, cnt = 4;

	/* Replies are small and latency matters more than packet count. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void
conn_describe_peer(struct conn *conn, const struct sockaddr *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	conn->peer_family = peer->sa_family;
	if (peer->sa_family == AF_INET)
		conn->peer.v4 = ((const struct sockaddr_in *)peer)->sin_addr;
	else if (peer->sa_family == AF_INET6)
		conn->peer.v6 = ((const struct sockaddr_in6 *)peer)->sin6_addr;
	else
		conn->peer_family = AF_UNIX;
	if (getsockname(conn->fd, (struct sockaddr *)&local, &len) == 0) {
		if (local.ss_family == AF_INET)
			conn->local_port =
			    ntohs(((struct sockaddr_in *)&local)->sin_port);
		else if (local.ss_family == AF_INET6)
			conn->local_port =
			    ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
	}
}

/*
 * A bufferevent on conn's socket: plaintext when ssl is NULL, else over ssl
 * in the given state (accepting for a new handshake, open after a sleep).
 */
static struct bufferevent *
conn_make_bev(struct conn *conn, SSL *ssl, enum bufferevent_ssl_state state)
{
	struct bufferevent *bev;

	if (ssl != NULL) {
		bev = bufferevent_openssl_socket_new(conn->base, conn->fd, ssl,
		    state, 0);
		if (bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(conn->base, conn->fd, 0);
	}
	if (bev == NULL)
		return NULL;
	evbuffer_add_cb(bufferevent_get_input(bev), conn_count_in, conn);
	evbuffer_add_cb(bufferevent_get_output(bev), conn_count_out, conn);
	bufferevent_setcb(bev, conn_on_read, conn_on_write, conn_on_event,
	    conn);
	return bev;
}

/* Starts TLS as server on conn's socket: a new SSL and its bufferevent. */
static int
conn_make_tls(struct conn *conn, SSL_CTX *tls)
{
	conn->ssl = SSL_new(tls);
	if (conn->ssl == NULL)
		return -1;
	conn->bev = conn_make_bev(conn, conn->ssl, BUFFEREVENT_SSL_ACCEPTING);
	if (conn->bev == NULL) {
		SSL_free(conn->ssl);
		conn->ssl = NULL;
		return -1;
	}
	return 0;
}

struct conn *
conn_new(struct event_base *base, int fd, SSL_CTX *tls,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct conn *conn = xcalloc(1, sizeof(*conn));

	conn->base = base;
	conn->fd = fd;
	conn->output_limit = CONN_DEFAULT_OUTPUT_LIMIT;
	conn->tls = tls != NULL;
	if (peer->sa_family != AF_UNIX)
		conn_set_sockopts(fd);
	conn_describe_peer(conn, peer);
	if (tls != NULL)
		conn_make_tls(conn, tls);
	else
		conn->bev = conn_make_bev(conn, NULL, 0);
	if (conn->bev == NULL) {
		close(fd);
		free(conn);
		return NULL;
	}
	conn_nopen++;
	return conn;
}

void
conn_set_cbs(struct conn *conn, conn_read_cb read, conn_drain_cb drain,
    conn_end_cb end, void *arg)
{
	conn->read_cb = read;
	conn->drain_cb = drain;
	conn->end_cb = end;
	conn->arg = arg;
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

static void
conn_apply_timeout(struct conn *conn)
{
	struct timeval tv = {.tv_sec = conn->timeout};

	/* A parked socket has no timer: a timeout wakes the conn. */
	conn_wake(conn);
	/* The write timeout catches a peer that stopped reading. */
	bufferevent_set_timeouts(conn->bev, conn->timeout ? &tv : NULL,
	    conn->timeout ? &tv : NULL);
}

void
conn_set_timeout(struct conn *conn, unsigned seconds)
{
	conn->timeout = seconds;
	conn_apply_timeout(conn);
}

void
conn_set_output_limit(struct conn *conn, size_t limit)
{
	conn->output_limit = limit;
}

const char *
conn_peer_ip(const struct conn *conn, char buf[CONN_IP_LEN])
{
	const void *addr = &conn->peer;

	if (conn->peer_family == AF_UNIX ||
	    inet_ntop(conn->peer_family, addr, buf, CONN_IP_LEN) == NULL)
		snprintf(buf, CONN_IP_LEN, "local");
	return buf;
}

int
conn_local_port(const struct conn *conn)
{
	return conn->local_port;
}

int
conn_is_tls(const struct conn *conn)
{
	return conn->tls;
}

const char *
conn_tls_version(const struct conn *conn)
{
	return conn->ssl ? SSL_get_version(conn->ssl) : NULL;
}

const char *
conn_tls_cipher(const struct conn *conn)
{
	return conn->ssl ? SSL_get_cipher_name(conn->ssl) : NULL;
}

struct evbuffer *
conn_input(struct conn *conn)
{
	conn_wake(conn);
	return bufferevent_get_input(conn->bev);
}

struct evbuffer *
conn_output(struct conn *conn)
{
	if (conn->gathering && conn->bev == NULL)
		return conn_gathered;
	conn_wake(conn);
	return bufferevent_get_output(conn->bev);
}

static void
conn_update_reading(struct conn *conn)
{
	conn_wake(conn);
	if (conn->paused || conn->throttled || conn->shutting_down ||
	    conn->starttls_ctx != NULL)
		bufferevent_disable(conn->bev, EV_READ);
	else
		bufferevent_enable(conn->bev, EV_READ);
}

/* Drops input through the next LF; returns 1 when the LF was found. */
static int
conn_discard_line(struct evbuffer *in)
{
	size_t eol_len;
	struct evbuffer_ptr p =
	    evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (p.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	evbuffer_drain(in, (size_t)p.pos + eol_len);
	return 1;
}

int
conn_readline(struct conn *conn, size_t max, char **line, size_t *len)
{
	struct evbuffer *in = conn_input(conn);
	struct evbuffer_ptr p;
	size_t eol_len, n;
	char *s;

	if (conn->discarding) {
		if (!conn_discard_line(in))
			return 0;
		conn->discarding = 0;
	}
	p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) <= max + 1)
			return 0;
		conn->discarding = 1;
		conn_discard_line(in);
		return -1;
	}
	n = (size_t)p.pos;
	s = xmalloc(n + 1);
	evbuffer_remove(in, s, n);
	evbuffer_drain(in, eol_len);
	if (n > 0 && s[n - 1] == '\r')
		n--;
	s[n] = '\0';
	if (n > max) {
		free(s);
		return -1;
	}
	*line = s;
	*len = n;
	return 1;
}

static void
conn_check_output(struct conn *conn)
{
	if (!conn->throttled &&
	    evbuffer_get_length(conn_output(conn)) > conn->output_limit) {
		conn->throttled = 1;
		bufferevent_setwatermark(conn->bev, EV_WRITE,
		    conn->output_limit / 2, 0);
		conn_update_reading(conn);
	}
}

void
conn_write(struct conn *conn, const void *data, size_t len)
{
	evbuffer_add(conn_output(conn), data, len);
	conn_check_output(conn);
}

void
conn_printf(struct conn *conn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(conn_output(conn), fmt, ap);
	va_end(ap);
	conn_check_output(conn);
}

void
conn_pause(struct conn *conn)
{
	conn->paused = 1;
	conn_update_reading(conn);
}

void
conn_resume(struct conn *conn)
{
	conn->paused = 0;
	conn_update_reading(conn);
	if (evbuffer_get_length(conn_input(conn)) > 0 && !conn->throttled)
		bufferevent_trigger(conn->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Replaces the plaintext bufferevent by a TLS one on the same socket. */
static void
conn_switch_to_tls(struct conn *conn)
{
	SSL_CTX *ctx = conn->starttls_ctx;

	conn->starttls_ctx = NULL;
	bufferevent_free(conn->bev);
	conn->bev = NULL;
	conn->tls = 1;
	if (conn_make_tls(conn, ctx) < 0) {
		conn->ended = 1;
		conn->end_cb(conn, CONN_END_ERROR, conn->arg);
		return;
	}
	conn_apply_timeout(conn);
	bufferevent_enable(conn->bev, EV_WRITE);
	conn_update_reading(conn);
}

int
conn_starttls(struct conn *conn, SSL_CTX *tls)
{
	struct evbuffer *in = conn_input(conn);

	if (conn->tls || conn->starttls_ctx != NULL)
		return -1;
	evbuffer_drain(in, evbuffer_get_length(in));
	conn->discarding = 0;
	conn->starttls_ctx = tls;
	conn_update_reading(conn);
	/* The switch waits until the reply to STARTTLS has been written. */
	if (evbuffer_get_length(conn_output(conn)) == 0)
		conn_switch_to_tls(conn);
	else
		bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	return 0;
}

void
conn_shutdown(struct conn *conn)
{
	conn->sleepy = 0;
	conn->shutting_down = 1;
	conn_update_reading(conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(conn_output(conn)) == 0 && !conn->ended) {
		conn->ended = 1;
		conn->end_cb(conn, CONN_END_SHUTDOWN, conn->arg);
	}
}

void
conn_free(struct conn **connp)
{
	struct conn *conn = *connp;

	if (conn == NULL)
		return;
	/* Without BEV_OPT_CLOSE_ON_FREE the SSL object stays ours. */
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	if (conn->ssl != NULL)
		SSL_free(conn->ssl);
	if (conn->park != NULL)
		conn_unpark(conn);
	if (conn->gathering)
		evbuffer_drain(conn_gathered,
		    evbuffer_get_length(conn_gathered));
	close(conn->fd);
	free(conn);
	*connp = NULL;
	conn_nopen--;
}

size_t
conn_open_count(void)
{
	return conn_nopen;
}

size_t
conn_bytes_in(const struct conn *conn)
{
	return conn->bytes_in;
}

size_t
conn_bytes_out(const struct conn *conn)
{
	return conn->bytes_out;
}

/* ------------------------------------------------------------------ */
/* Sleeping connections. */

/* The sockets of sleeping conns of one event base. */
struct conn_park {
	struct event_base *base;
	int epfd;
	struct event *ev; /* epfd readable: a parked socket is */
	size_t n;         /* conns parked */
	struct conn_park *next;
};

/* Loop thread only, like every conn. */
static struct conn_park *conn_parks;

static void conn_on_park(evutil_socket_t fd, short what, void *arg);

static struct conn_park *
conn_park_get(struct event_base *base)
{
	struct conn_park *pk;

	for (pk = conn_parks; pk != NULL; pk = pk->next)
		if (pk->base == base)
			return pk;
	pk = xcalloc(1, sizeof(*pk));
	pk->base = base;
	pk->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pk->epfd >= 0)
		pk->ev = event_new(base, pk->epfd, EV_READ | EV_PERSIST,
		    conn_on_park, pk);
	if (pk->ev == NULL || event_add(pk->ev, NULL) < 0) {
		log_error("event=conn error=\"cannot make the park: %s\"",
		    strerror(errno));
		if (pk->ev != NULL)
			event_free(pk->ev);
		if (pk->epfd >= 0)
			close(pk->epfd);
		free(pk);
		return NULL;
	}
	pk->next = conn_parks;
	conn_parks = pk;
	return pk;
}

/* The last conn left: the park goes, so an event base can be freed. */
static void
conn_park_put(struct conn_park *pk)
{
	struct conn_park **pp;

	if (--pk->n > 0)
		return;
	for (pp = &conn_parks; *pp != pk; pp = &(*pp)->next)
		;
	*pp = pk->next;
	event_free(pk->ev);
	close(pk->epfd);
	free(pk);
}

static void
conn_unpark(struct conn *conn)
{
	struct conn_park *pk = conn->park;

	epoll_ctl(pk->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
	conn->park = NULL;
	conn_park_put(pk);
}

/*
 * Parked sockets are readable (input, end of stream or an error): their
 * conns wake, and their bufferevents read on the next turn.
 */
static void
conn_on_park(evutil_socket_t fd, short what, void *arg)
{
	struct epoll_event evs[64];
	int n = epoll_wait(fd, evs, 64, 0);

	for (int i = 0; i < n; i++)
		conn_wake(evs[i].data.ptr);
}

/*
 * Remakes the bufferevent of a sleeping conn, with its timeouts and
 * reading as they were; a no-op when awake.
 */
static void
conn_wake(struct conn *conn)
{
	if (conn->bev != NULL)
		return;
	conn_unpark(conn);
	conn->bev = conn_make_bev(conn, conn->ssl, BUFFEREVENT_SSL_OPEN);
	if (conn->bev == NULL)
		log_fatal("event=conn error=\"cannot make a bufferevent\"");
	conn_apply_timeout(conn);
	bufferevent_enable(conn->bev, EV_WRITE);
	conn_update_reading(conn);
	/* What it gathered asleep goes out first. */
	if (conn->gathering)
		evbuffer_add_buffer(bufferevent_get_output(conn->bev),
		    conn_gathered);
}

void
conn_gather(struct conn *conn)
{
	if (conn_gathered == NULL && (conn_gathered = evbuffer_new()) == NULL)
		log_fatal("event=conn error=\"cannot make a buffer\"");
	conn->gathering = 1;
}

void
conn_flush(struct conn *conn)
{
	size_t len = evbuffer_get_length(conn_gathered);

	if (len > 0 && conn->ssl == NULL && !conn->ended) {
		int n = evbuffer_write(conn_gathered, conn->fd);

		if (n > 0)
			conn->bytes_out += (size_t)n;
	}
	/* The rest (TLS, a full socket, an error) takes the usual way. */
	if (evbuffer_get_length(conn_gathered) > 0)
		conn_wake(conn);
	conn->gathering = 0;
}

/*
 * Frees the bufferevent when nothing needs it: sleepy, awake, no read
 * timeout, nothing buffered (not even inside the SSL object), reading on
 * and no state that the bufferevent carries (throttling, shutdown,
 * STARTTLS, a line being discarded, a handshake in progress).
 */
static void
conn_sleep(struct conn *conn)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	struct conn_park *pk;

	if (!conn->sleepy || conn->bev == NULL || conn->ended ||
	    conn->timeout > 0 || conn->paused || conn->throttled ||
	    conn->shutting_down || conn->discarding ||
	    conn->starttls_ctx != NULL ||
	    evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
		return;
	if (conn->ssl != NULL &&
	    (!SSL_is_init_finished(conn->ssl) || SSL_pending(conn->ssl) > 0))
		return;
	pk = conn_park_get(conn->base);
	if (pk == NULL)
		return;
	ev.data.ptr = conn;
	if (epoll_ctl(pk->epfd, EPOLL_CTL_ADD, conn->fd, &ev) < 0) {
		log_error("event=conn error=\"cannot park: %s\"",
		    strerror(errno));
		pk->n++;
		conn_park_put(pk);
		return;
	}
	pk->n++;
	conn->park = pk;
	bufferevent_free(conn->bev);
	conn->bev = NULL;
}

void
conn_set_sleepy(struct conn *conn, int sleepy)
{
	conn->sleepy = sleepy != 0;
	if (conn->sleepy)
		conn_sleep(conn);
}

int
conn_is_asleep(const struct conn *conn)
{
	return conn->bev == NULL;
}

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *conn = arg;

	if (conn->ended || conn->paused || conn->shutting_down ||
	    conn->starttls_ctx != NULL)
		return;
	conn->read_cb(conn, conn->arg);
}

static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *conn = arg;
	size_t pending = evbuffer_get_length(conn_output(conn));

	if (conn->ended)
		return;
	if (conn->starttls_ctx != NULL && pending == 0) {
		conn_switch_to_tls(conn);
		return;
	}
	if (conn->shutting_down) {
		if (pending == 0) {
			conn->ended = 1;
			conn->end_cb(conn, CONN_END_SHUTDOWN, conn->arg);
		}
		return;
	}
	if (conn->throttled && pending <= conn->output_limit / 2) {
		conn->throttled = 0;
		bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
		conn_update_reading(conn);
		if (conn->drain_cb != NULL)
			conn->drain_cb(conn, conn->arg);
		return;
	}
	if (pending == 0)
		conn_sleep(conn);
}

static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *conn = arg;
	enum conn_end why = CONN_END_ERROR;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (conn->ended)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		why = CONN_END_TIMEOUT;
	else if (what & BEV_EVENT_EOF)
		why = CONN_END_EOF;
	/*
	 * A quiet reader may still be told why it is dropped: the owner can
	 * write a last line and shut down. A writer that is stuck cannot.
	 */
	if (why == CONN_END_TIMEOUT && (what & BEV_EVENT_READING) &&
	    !conn->shutting_down) {
		conn->end_cb(conn, why, conn->arg);
		return;
	}
	conn->ended = 1;
	conn->end_cb(conn, why, conn->arg);
}
