/*
 * Unit tests for the IMAP session over a socketpair, with auth replaced by
 * a fake defined here (the linker takes it instead of the library's): the
 * autologout timers, which the protocol tests cannot wait for, and a
 * pipelined script whose LOGIN waits for auth.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "base/xmalloc.h"
#include "imap/imap_server.h"
#include "check.h"

static struct event_base *base;

struct auth_request {
	struct event *ev;
	auth_done_cb cb;
	void *arg;
	int ok;
};

static void
fake_auth_done(evutil_socket_t fd, short what, void *arg)
{
	struct auth_request *req = arg;
	auth_done_cb cb = req->cb;
	void *cb_arg = req->arg;
	int ok = req->ok;

	event_free(req->ev);
	free(req);
	cb(ok ? AUTH_OK : AUTH_FAILED, ok ? "alice" : NULL, cb_arg);
}

struct auth_request *
auth_verify(struct auth *auth, const char *authcid, const char *password,
    const char *client_ip, auth_done_cb cb, void *arg)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	struct timeval tv = {0, 1000};

	req->cb = cb;
	req->arg = arg;
	req->ok =
	    strcmp(authcid, "alice") == 0 && strcmp(password, "secret") == 0;
	req->ev = evtimer_new(base, fake_auth_done, req);
	evtimer_add(req->ev, &tv);
	return req;
}

void
auth_request_cancel(struct auth_request **req)
{
	event_free((*req)->ev);
	free(*req);
	*req = NULL;
}

/*
 * Runs a session on script until the server closes it; half_close ends
 * the client's side after the script. Returns all the server wrote.
 */
static char *
converse(const char *script, int half_close, unsigned timeout)
{
	struct imap_settings set = {
	    .name = "test",
	    .hostname = "imap.local.test",
	    .timeout_login = timeout,
	    .timeout = timeout,
	};
	static char fake_auth, out[65536];
	struct imap_env env = {NULL, NULL, (struct auth *)&fake_auth, NULL};
	struct imap_server *srv = imap_server_new(base, &set, &env);
	struct sockaddr_un peer = {.sun_family = AF_UNIX};
	size_t n = 0;
	ssize_t r;
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	imap_server_accept(sv[0], (struct sockaddr *)&peer, sizeof(peer), srv);
	if (write(sv[1], script, strlen(script)) < 0)
		CHECK_FAIL("write");
	if (half_close)
		shutdown(sv[1], SHUT_WR);
	while (imap_server_sessions(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	while ((r = read(sv[1], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(sv[1]);
	imap_server_free(&srv);
	return out;
}

static void
test_autologout_before_login(void)
{
	const char *out = converse("a NOOP\r\n", 0, 1);

	CHECK(strncmp(out, "* OK [CAPABILITY IMAP4rev1 ", 27) == 0);
	CHECK(strstr(out, "a OK NOOP completed\r\n") != NULL);
	CHECK(strstr(out, "\r\n* BYE Autologout") != NULL);
}

static void
test_autologout_after_login(void)
{
	const char *out = converse("a LOGIN alice secret\r\n", 0, 1);

	CHECK(strstr(out, "a OK [CAPABILITY ") != NULL);
	CHECK(strstr(out, "\r\n* BYE Autologout") != NULL);
}

static void
test_pipelined_login(void)
{
	const char *out = converse("a LOGIN alice wrong\r\nb NOOP\r\n"
	                           "c LOGIN alice secret\r\nd NAMESPACE\r\n"
	                           "e LOGOUT\r\n",
	    1, 5);
	const char *a = strstr(out, "a NO [AUTHENTICATIONFAILED]");
	const char *b = strstr(out, "b OK NOOP");
	const char *c = strstr(out, "c OK [CAPABILITY ");
	const char *d = strstr(out, "d OK NAMESPACE");
	const char *e = strstr(out, "e OK LOGOUT");

	CHECK(a != NULL && b != NULL && c != NULL && d != NULL && e != NULL);
	CHECK(a < b && b < c && c < d && d < e);
	/* AUTH=PLAIN is advertised on local sockets, not after login. */
	CHECK(strstr(out, "AUTH=PLAIN") < c);
	CHECK(strstr(c, "AUTH=PLAIN") == NULL);
}

static void
test_eof_during_auth(void)
{
	const char *out = converse("a LOGIN alice secret\r\n", 1, 5);

	/* Either the login finished first or it was cancelled: no leak. */
	CHECK(strncmp(out, "* OK ", 5) == 0);
}

int
main(void)
{
	base = event_base_new();
	CHECK_RUN(test_autologout_before_login);
	CHECK_RUN(test_autologout_after_login);
	CHECK_RUN(test_pipelined_login);
	CHECK_RUN(test_eof_during_auth);
	event_base_free(base);
	return check_summary();
}
