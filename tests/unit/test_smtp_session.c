/*
 * Unit tests for the SMTP session over a socketpair, with the user
 * database, auth and store replaced by fakes defined here (the linker takes
 * these instead of the library's).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "base/xmalloc.h"
#include "smtp/smtp_server.h"
#include "store/store.h"
#include "check.h"

static struct event_base *base;
static struct store_delivery *last_delivery;
static size_t deliveries;
static enum store_status next_status = STORE_OK;

enum userdb_resolve
userdb_resolve(struct userdb *db, const char *address, char ***users,
    size_t *nusers)
{
	if (strcmp(address, "alias@local.test") == 0) {
		*users = xcalloc(2, sizeof(char *));
		(*users)[0] = xstrdup("a@local.test");
		(*users)[1] = xstrdup("b@local.test");
		*nusers = 2;
		return USERDB_LOCAL;
	}
	if (strcmp(address, "a@local.test") == 0 ||
	    strcmp(address, "b@local.test") == 0) {
		*users = xcalloc(1, sizeof(char *));
		(*users)[0] = xstrdup(address);
		*nusers = 1;
		return USERDB_LOCAL;
	}
	if (strstr(address, "@local.test") != NULL)
		return USERDB_NO_SUCH_USER;
	return USERDB_NOT_LOCAL;
}

void
userdb_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

const struct userdb_user *
userdb_lookup(struct userdb *db, const char *name)
{
	return NULL;
}

int
userdb_may_send_as(struct userdb *db, const char *user, const char *address)
{
	return strcmp(user, address) == 0;
}

struct auth_request *
auth_verify(struct auth *auth, const char *authcid, const char *password,
    const char *client_ip, auth_done_cb cb, void *arg)
{
	/* Not exercised here: SMTP mode never authenticates. */
	abort();
}

void
auth_request_cancel(struct auth_request **req)
{
	*req = NULL;
}

static void
store_done(evutil_socket_t fd, short what, void *arg)
{
	struct store_delivery *d = arg;

	d->done(d, d->arg);
}

void
store_deliver(struct store *store, struct store_delivery *d)
{
	deliveries++;
	for (size_t i = 0; i < d->nrcpts; i++)
		d->rcpts[i].status = i == 1 ? next_status : STORE_OK;
	if (d->all_or_none && next_status != STORE_OK)
		for (size_t i = 0; i < d->nrcpts; i++)
			d->rcpts[i].status = next_status;
	event_base_once(base, -1, EV_TIMEOUT, store_done, d, NULL);
}

void
store_delivery_free(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;

	free(last_delivery ? last_delivery->data : NULL);
	free(last_delivery);
	last_delivery = xcalloc(1, sizeof(*d));
	last_delivery->data = d->data;
	last_delivery->len = d->len;
	last_delivery->nrcpts = d->nrcpts;
	free(d->return_path);
	for (size_t i = 0; i < d->nrcpts; i++) {
		free(d->rcpts[i].user);
		free(d->rcpts[i].delivered_to);
	}
	free(d->rcpts);
	free(d);
	*dp = NULL;
}

/* Runs a session of mode on script; returns all the server wrote. */
static char *
converse(enum smtp_mode mode, const char *script)
{
	struct smtp_settings set = {
	    .mode = mode,
	    .name = "test",
	    .hostname = "mx.local.test",
	    .max_message_size = 1000,
	    .max_recipients = 3,
	    .max_bad_commands = 5,
	    .timeout = 5,
	    .data_timeout = 5,
	};
	struct smtp_env env = {NULL, NULL, NULL};
	static char fake_auth;

	/* Never dereferenced: auth_verify is the fake above. */
	env.auth = (struct auth *)&fake_auth;
	struct smtp_server *srv = smtp_server_new(base, &set, &env);
	struct sockaddr_un peer = {.sun_family = AF_UNIX};
	static char out[65536];
	size_t n = 0;
	int sv[2];
	ssize_t r;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	smtp_server_accept(sv[0], (struct sockaddr *)&peer, sizeof(peer), srv);
	if (write(sv[1], script, strlen(script)) < 0)
		CHECK_FAIL("write");
	shutdown(sv[1], SHUT_WR);
	while (smtp_server_sessions(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	while ((r = read(sv[1], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(sv[1]);
	smtp_server_free(&srv);
	return out;
}

static void
test_basic(void)
{
	size_t before = deliveries;
	const char *out = converse(SMTP_MODE_SMTP,
	    "EHLO c.example\r\nMAIL FROM:<x@remote.example>\r\n"
	    "RCPT TO:<a@local.test>\r\nRCPT TO:<nobody@local.test>\r\n"
	    "RCPT TO:<x@elsewhere.example>\r\nDATA\r\n"
	    "Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");

	CHECK(strncmp(out, "220 mx.local.test ESMTP pushmail\r\n", 34) == 0);
	CHECK(strstr(out, "250-PIPELINING\r\n") != NULL);
	CHECK(strstr(out, "250-SIZE 1000\r\n") != NULL);
	CHECK(strstr(out, "250-CHUNKING\r\n") != NULL);
	CHECK(strstr(out, "AUTH") == NULL);
	CHECK(strstr(out, "STARTTLS") == NULL);
	CHECK(strstr(out, "550 5.1.1") != NULL);
	CHECK(strstr(out, "550 5.7.1") != NULL);
	CHECK(strstr(out, "354 ") != NULL);
	CHECK(strstr(out, "250 2.0.0 Ok: queued as") != NULL);
	CHECK(strstr(out, "221 2.0.0") != NULL);
	CHECK_INT(deliveries, before + 1);
	CHECK(last_delivery != NULL &&
	    strncmp(last_delivery->data, "Received: from c.example", 24) == 0);
	CHECK(last_delivery != NULL &&
	    strstr(last_delivery->data, "with ESMTP id") != NULL);
	CHECK(last_delivery != NULL &&
	    strstr(last_delivery->data, "\r\n\r\n.dot\r\n") != NULL);
}

static void
test_sequence(void)
{
	const char *out = converse(SMTP_MODE_SMTP,
	    "MAIL FROM:<x@y.z>\r\nHELO c\r\nRCPT TO:<a@local.test>\r\n"
	    "DATA\r\nMAIL FROM:<x@y.z>\r\nMAIL FROM:<x@y.z>\r\nDATA\r\n"
	    "MAIL FROM:<x@y.z> FOO=1\r\nNOOP\r\nVRFY a\r\nEXPN b\r\n"
	    "HELP\r\nRSET\r\nQUIT\r\n");

	CHECK(strstr(out, "503 5.5.1 Send EHLO first") != NULL);
	CHECK(strstr(out, "250 mx.local.test\r\n") != NULL);
	CHECK(strstr(out, "503 5.5.1 Need MAIL before RCPT") != NULL);
	CHECK(strstr(out, "503 5.5.1 Need MAIL command") != NULL);
	CHECK(strstr(out, "503 5.5.1 Nested MAIL") != NULL);
	CHECK(strstr(out, "503 5.5.1 No valid recipients") != NULL);
	CHECK(strstr(out, "555 5.5.4") != NULL);
	CHECK(strstr(out, "252 2.5.0") != NULL);
	CHECK(strstr(out, "502 5.5.1") != NULL);
	CHECK(strstr(out, "214 2.0.0") != NULL);
}

static void
test_smuggling(void)
{
	size_t before = deliveries;
	const char *out = converse(SMTP_MODE_SMTP,
	    "EHLO c\r\nMAIL FROM:<x@y.z>\r\nRCPT TO:<a@local.test>\r\nDATA\r\n"
	    "a\n.\nMAIL FROM:<evil@y.z>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n"
	    "smuggled\r\n.\r\nNOOP\r\n");

	CHECK(strstr(out, "550 5.5.2") != NULL);
	CHECK(strstr(out, "\r\n250 2.0.0 Ok\r\n") != NULL);
	CHECK_INT(deliveries, before);
}

static void
test_limits(void)
{
	char script[8192];
	const char *out;

	snprintf(script, sizeof(script),
	    "EHLO c\r\nMAIL FROM:<x@y.z> SIZE=1001\r\nMAIL FROM:<x@y.z>\r\n"
	    "RCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\n"
	    "RCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\n"
	    "DATA\r\n%01100d\r\n.\r\nX%05000d\r\nNOOP\r\n",
	    0, 0);
	out = converse(SMTP_MODE_SMTP, script);
	CHECK(strstr(out, "552 5.3.4") != NULL);
	CHECK(strstr(out, "452 4.5.3") != NULL);
	CHECK(strstr(out, "500 5.5.2 Line too long") != NULL);
	CHECK(strstr(out, "552 5.3.4 Message size") != NULL);

	out = converse(SMTP_MODE_SMTP, "A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\n");
	CHECK(strstr(out, "421 4.7.0") != NULL);
	CHECK(strstr(out, "250 2.0.0 Ok") == NULL);
}

static void
test_bdat(void)
{
	size_t before = deliveries;
	const char *out = converse(SMTP_MODE_SMTP,
	    "EHLO c\r\nBDAT 5\r\nQUIT\r\nMAIL FROM:<x@y.z>\r\n"
	    "RCPT TO:<a@local.test>\r\nBDAT 6\r\nA: b\r\n"
	    "BDAT 7 LAST\r\n\r\nbody\rNOOP\r\nMAIL FROM:<x@y.z>\r\n"
	    "RCPT TO:<a@local.test>\r\nBDAT 8\r\nA: b\r\n\r\nDATA\r\n"
	    "BDAT 0 LAST\r\nQUIT\r\n");

	CHECK(strstr(out, "503 5.5.1 Need MAIL command") != NULL);
	CHECK(strstr(out, "250 2.0.0 6 bytes received") != NULL);
	CHECK(strstr(out, "550 5.5.2") != NULL);
	CHECK(strstr(out, "503 5.5.1 DATA after BDAT") != NULL);
	CHECK(strstr(out, "queued as") != NULL);
	CHECK_INT(deliveries, before + 1);
	CHECK(last_delivery != NULL &&
	    strstr(last_delivery->data, "\r\nA: b\r\n\r\n") != NULL);
}

static void
test_lmtp(void)
{
	const char *out;

	next_status = STORE_ERR_QUOTA;
	out = converse(SMTP_MODE_LMTP,
	    "EHLO c\r\nLHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@local.test>\r\n"
	    "RCPT TO:<alias@local.test>\r\nRCPT TO:<b@local.test>\r\n"
	    "DATA\r\nx\r\n.\r\nQUIT\r\n");
	next_status = STORE_OK;
	CHECK(strncmp(out, "220 mx.local.test LMTP", 22) == 0);
	CHECK(strstr(out, "500 5.5.1") != NULL);
	CHECK(strstr(out,
	          "250 2.0.0 <a@local.test> Ok\r\n"
	          "552 5.2.2 <alias@local.test> Mailbox full\r\n"
	          "552 5.2.2 <b@local.test> Mailbox full\r\n") != NULL);
	CHECK(last_delivery != NULL && last_delivery->nrcpts == 2);
	CHECK(last_delivery != NULL &&
	    strstr(last_delivery->data, "with LMTP id") != NULL);
}

static void
test_submission(void)
{
	const char *out = converse(SMTP_MODE_SUBMISSION,
	    "EHLO c\r\nMAIL FROM:<a@local.test>\r\nAUTH PLAIN\r\nQUIT\r\n");

	CHECK(strstr(out, "AUTH") == NULL || strstr(out, "250-AUTH") == NULL);
	CHECK(strstr(out, "530 5.7.0 Authentication required") != NULL);
	CHECK(strstr(out, "530 5.7.0 Must issue a STARTTLS") != NULL);
}

int
main(void)
{
	base = event_base_new();
	CHECK_RUN(test_basic);
	CHECK_RUN(test_sequence);
	CHECK_RUN(test_smuggling);
	CHECK_RUN(test_limits);
	CHECK_RUN(test_bdat);
	CHECK_RUN(test_lmtp);
	CHECK_RUN(test_submission);
	if (last_delivery != NULL)
		free(last_delivery->data);
	free(last_delivery);
	event_base_free(base);
	return check_summary();
}
