/*
 * Unit tests for conn: bounded lines, pause and resume, shutdown, sleeping
 * and gathered writes.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "check.h"
#include "net/conn.h"

struct t {
	struct event_base *base;
	struct conn *conn;
	char lines[16][64];
	int results[16];
	int n;
	int ended;
	enum conn_end why;
	int pause_after;
};

static void
t_read(struct conn *conn, void *arg)
{
	struct t *t = arg;
	char *line;
	size_t len;
	int r;

	while (t->n < 16 && (r = conn_readline(conn, 8, &line, &len)) != 0) {
		t->results[t->n] = r;
		if (r == 1) {
			snprintf(t->lines[t->n], sizeof(t->lines[0]), "%s",
			    line);
			free(line);
		}
		t->n++;
		if (t->n == t->pause_after) {
			conn_pause(conn);
			return;
		}
	}
}

static void
t_end(struct conn *conn, enum conn_end why, void *arg)
{
	struct t *t = arg;

	t->ended = 1;
	t->why = why;
	event_base_loopbreak(t->base);
}

static void
t_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static void
t_run(struct t *t, int ms)
{
	struct timeval tv = {0, ms * 1000};

	event_base_once(t->base, -1, EV_TIMEOUT, t_stop, t->base, &tv);
	event_base_dispatch(t->base);
}

static int
t_setup(struct t *t, int *peer)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int sv[2];

	memset(t, 0, sizeof(*t));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	t->base = event_base_new();
	t->conn = conn_new(t->base, sv[0], NULL, (struct sockaddr *)&sun,
	    sizeof(sun));
	conn_set_cbs(t->conn, t_read, NULL, t_end, t);
	*peer = sv[1];
	return 0;
}

static void
t_teardown(struct t *t, int peer)
{
	conn_free(&t->conn);
	close(peer);
	event_base_free(t->base);
}

static void
test_lines_and_limits(void)
{
	const char input[] = "one\r\ntwo\nthis-is-too-long\r\nend\r\n";
	struct t t;
	int peer;
	char ip[CONN_IP_LEN];

	CHECK(t_setup(&t, &peer) == 0);
	CHECK_STR(conn_peer_ip(t.conn, ip), "local");
	CHECK(write(peer, input, sizeof(input) - 1) > 0);
	t_run(&t, 100);
	CHECK_INT(t.n, 4);
	CHECK_STR(t.lines[0], "one");
	CHECK_STR(t.lines[1], "two");
	CHECK_INT(t.results[2], -1);
	CHECK_STR(t.lines[3], "end");
	CHECK_INT(conn_bytes_in(t.conn), sizeof(input) - 1);
	t_teardown(&t, peer);
}

static void
test_long_line_split_across_reads(void)
{
	struct t t;
	int peer;

	CHECK(t_setup(&t, &peer) == 0);
	CHECK(write(peer, "aaaaaaaaaaaaaaaaaaaa", 20) > 0);
	t_run(&t, 50);
	CHECK_INT(t.n, 1);
	CHECK_INT(t.results[0], -1);
	/* The rest of the long line is dropped, the next line is kept. */
	CHECK(write(peer, "bbbb\r\nok\r\n", 10) > 0);
	t_run(&t, 50);
	CHECK_INT(t.n, 2);
	CHECK_STR(t.lines[1], "ok");
	t_teardown(&t, peer);
}

static void
test_pause_resume(void)
{
	struct t t;
	int peer;

	CHECK(t_setup(&t, &peer) == 0);
	t.pause_after = 1;
	CHECK(write(peer, "a\r\nb\r\n", 6) > 0);
	t_run(&t, 50);
	CHECK_INT(t.n, 1);
	t.pause_after = 0;
	conn_resume(t.conn);
	t_run(&t, 50);
	CHECK_INT(t.n, 2);
	CHECK_STR(t.lines[1], "b");
	t_teardown(&t, peer);
}

static void
test_shutdown_flushes(void)
{
	char buf[64];
	struct t t;
	int peer;
	ssize_t n;

	CHECK(t_setup(&t, &peer) == 0);
	conn_printf(t.conn, "221 %s\r\n", "bye");
	conn_shutdown(t.conn);
	t_run(&t, 200);
	CHECK(t.ended);
	CHECK_INT(t.why, CONN_END_SHUTDOWN);
	n = read(peer, buf, sizeof(buf));
	CHECK_INT(n, 9);
	CHECK(memcmp(buf, "221 bye\r\n", 9) == 0);
	t_teardown(&t, peer);
}

static void
test_peer_close(void)
{
	struct t t;
	int peer;

	CHECK(t_setup(&t, &peer) == 0);
	close(peer);
	t_run(&t, 200);
	CHECK(t.ended);
	CHECK_INT(t.why, CONN_END_EOF);
	conn_free(&t.conn);
	event_base_free(t.base);
}

/*
 * A sleepy conn gives its bufferevent up once its output is written, wakes
 * for input (and sleeps again after), wakes to write, and notices the peer
 * closing while asleep. Two conns share the park; freeing the last one
 * frees the park too (ASan would report it otherwise).
 */
static void
test_sleep_and_wake(void)
{
	struct t t, u;
	int peer, upeer;
	char buf[64];

	CHECK(t_setup(&t, &peer) == 0);
	conn_set_timeout(t.conn, 30);
	conn_set_sleepy(t.conn, 1);
	CHECK(!conn_is_asleep(t.conn)); /* a read timeout runs */
	conn_set_timeout(t.conn, 0);
	conn_set_sleepy(t.conn, 1);
	CHECK(conn_is_asleep(t.conn));
	CHECK(write(peer, "one\r\n", 5) == 5);
	t_run(&t, 50);
	CHECK_INT(t.n, 1);
	CHECK_STR(t.lines[0], "one");
	CHECK(conn_is_asleep(t.conn));
	/* Writing wakes it; once written, it sleeps again. */
	conn_printf(t.conn, "hello\r\n");
	CHECK(!conn_is_asleep(t.conn));
	t_run(&t, 50);
	CHECK(conn_is_asleep(t.conn));
	CHECK_INT((int)read(peer, buf, sizeof(buf)), 7);
	/* A second conn of the same base joins the same park. */
	{
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		int sv[2];

		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) ==
		    0);
		memset(&u, 0, sizeof(u));
		u.base = t.base;
		u.conn = conn_new(t.base, sv[0], NULL, (struct sockaddr *)&sun,
		    sizeof(sun));
		conn_set_cbs(u.conn, t_read, NULL, t_end, &u);
		upeer = sv[1];
	}
	conn_set_timeout(u.conn, 0);
	conn_set_sleepy(u.conn, 1);
	CHECK(conn_is_asleep(u.conn));
	conn_free(&u.conn);
	close(upeer);
	/* The peer goes away while t sleeps. */
	close(peer);
	t_run(&t, 200);
	CHECK(t.ended);
	CHECK_INT((int)t.why, (int)CONN_END_EOF);
	conn_free(&t.conn);
	event_base_free(t.base);
}

/* Reads from a non-blocking peer until want bytes came or ms passed. */
static size_t
t_drain(struct t *t, int peer, char *buf, size_t want, int ms)
{
	size_t got = 0;

	for (int i = 0; i < ms && got < want; i++) {
		ssize_t n = read(peer, buf + got, want - got);

		if (n > 0)
			got += (size_t)n;
		else
			t_run(t, 1);
	}
	return got;
}

/*
 * A push to a sleeping conn goes to its socket without waking it; what the
 * socket cannot take wakes it and follows, in order; a wake in between
 * keeps the order; a conn freed while gathering leaves nothing behind.
 */
static void
test_gather(void)
{
	static const size_t big = 1024 * 1024;
	struct t t;
	int peer;
	char buf[64], *in, *out;
	size_t before;

	CHECK(t_setup(&t, &peer) == 0);
	CHECK(fcntl(peer, F_SETFL, O_NONBLOCK) == 0);
	conn_set_timeout(t.conn, 0);
	conn_set_sleepy(t.conn, 1);
	CHECK(conn_is_asleep(t.conn));
	before = conn_bytes_out(t.conn);
	conn_gather(t.conn);
	conn_printf(t.conn, "* %u EXISTS\r\n", 7u);
	conn_write(t.conn, "* 1 RECENT\r\n", 12);
	conn_flush(t.conn);
	CHECK(conn_is_asleep(t.conn));
	CHECK_INT((int)(conn_bytes_out(t.conn) - before), 24);
	CHECK_INT((int)read(peer, buf, sizeof(buf)), 24);
	CHECK(memcmp(buf, "* 7 EXISTS\r\n* 1 RECENT\r\n", 24) == 0);

	/* Woken in between: what was gathered goes first. */
	conn_gather(t.conn);
	conn_write(t.conn, "a", 1);
	(void)conn_input(t.conn);
	CHECK(!conn_is_asleep(t.conn));
	conn_write(t.conn, "b\r\n", 3);
	conn_flush(t.conn);
	CHECK_INT((int)t_drain(&t, peer, buf, 4, 200), 4);
	CHECK(memcmp(buf, "ab\r\n", 4) == 0);
	t_run(&t, 20);
	CHECK(conn_is_asleep(t.conn));

	/* More than the socket takes: the rest wakes the conn. */
	out = malloc(big);
	in = malloc(big);
	for (size_t i = 0; i < big; i++)
		out[i] = (char)('a' + i % 26);
	conn_set_output_limit(t.conn, 2 * big);
	conn_gather(t.conn);
	conn_write(t.conn, out, big);
	conn_flush(t.conn);
	CHECK(!conn_is_asleep(t.conn));
	CHECK_INT((int)t_drain(&t, peer, in, big, 2000), (int)big);
	CHECK(memcmp(in, out, big) == 0);
	t_run(&t, 20);
	CHECK(conn_is_asleep(t.conn));
	free(in);
	free(out);

	/* Freed while gathering: the next conn sends only its own. */
	conn_gather(t.conn);
	conn_write(t.conn, "lost", 4);
	t_teardown(&t, peer);
	CHECK(t_setup(&t, &peer) == 0);
	conn_set_timeout(t.conn, 0);
	conn_set_sleepy(t.conn, 1);
	conn_gather(t.conn);
	conn_write(t.conn, "kept", 4);
	conn_flush(t.conn);
	CHECK_INT((int)read(peer, buf, sizeof(buf)), 4);
	CHECK(memcmp(buf, "kept", 4) == 0);
	t_teardown(&t, peer);
}

int
main(void)
{
	CHECK_RUN(test_gather);
	CHECK_RUN(test_sleep_and_wake);
	CHECK_RUN(test_lines_and_limits);
	CHECK_RUN(test_long_line_split_across_reads);
	CHECK_RUN(test_pause_resume);
	CHECK_RUN(test_shutdown_flushes);
	CHECK_RUN(test_peer_close);
	return check_summary();
}
