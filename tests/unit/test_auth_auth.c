/*
 * Unit tests for password checking and verification: crypt(3) and PLAIN
 * schemes, the credential cache, failure throttling, the bounded hashing
 * queue and cancellation while a worker is hashing.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "base/xmalloc.h"
#include "check.h"

static char dir[] = "/tmp/pm-auth-XXXXXX";
static char users_path[256], aliases_path[256];
static char sha512[256];

struct result {
	int calls;
	enum auth_result r;
	char user[128];
	long ms; /* from verify to callback */
	struct timespec start;
	struct event_base *base;
};

static long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 +
	    (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void
on_done(enum auth_result r, const char *user, void *arg)
{
	struct result *res = arg;

	res->calls++;
	res->r = r;
	snprintf(res->user, sizeof(res->user), "%s", user ? user : "(null)");
	res->ms = ms_since(&res->start);
	event_base_loopbreak(res->base);
}

/* Runs the loop for up to ms or until res has its callback. */
static void
run(struct event_base *base, struct result *res, int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	while (ms_since(&t) < ms && (res == NULL || res->calls == 0)) {
		struct timeval tv = {0, 5000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/* Verifies and waits for the answer. */
static struct result
verify(struct auth *auth, struct event_base *base, const char *user,
    const char *pw, const char *ip)
{
	struct result res = {.base = base};

	clock_gettime(CLOCK_MONOTONIC, &res.start);
	auth_verify(auth, user, pw, ip, on_done, &res);
	/* Never inside auth_verify(). */
	CHECK_INT(res.calls, 0);
	run(base, &res, 20000);
	CHECK_INT(res.calls, 1);
	return res;
}

static void
test_check_password(void)
{
	char *y = auth_hash_password("secret");

	CHECK(y != NULL && strncmp(y, "{CRYPT}$y$", 10) == 0);
	CHECK_INT(auth_check_password(y, "secret"), 1);
	CHECK_INT(auth_check_password(y, "Secret"), 0);
	CHECK_INT(auth_check_password(y + 7, "secret"), 1);
	free(y);
	CHECK_INT(auth_check_password(sha512, "pw-s"), 1);
	CHECK_INT(auth_check_password(sha512, "pw-x"), 0);
	CHECK_INT(auth_check_password(sha512 + 7, "pw-s"), 1);
	y = xasprintf("{SHA512-CRYPT}%s", sha512 + 7);
	CHECK_INT(auth_check_password(y, "pw-s"), 1);
	free(y);
	CHECK_INT(auth_check_password("{PLAIN}pw", "pw"), 1);
	CHECK_INT(auth_check_password("{plain}pw", "pw"), 1);
	CHECK_INT(auth_check_password("{PLAIN}pw", "pw2"), 0);
	CHECK_INT(auth_check_password("{PLAIN}pw", ""), 0);
	CHECK_INT(auth_check_password("{PLAIN}", ""), 0);
	CHECK_INT(auth_check_password("", ""), 0);
	CHECK_INT(auth_check_password("!locked", "x"), 0);
	CHECK_INT(auth_check_password("{CRYPT}*", "x"), 0);
	CHECK_INT(auth_check_password("{MD4}abc", "x"), -1);
	CHECK_INT(auth_check_password("{CRYPT", "x"), -1);
	CHECK_INT(auth_check_password("$q$garbage", "x"), -1);
}

static struct userdb *
make_db(void)
{
	char *y = auth_hash_password("pw-y"), err[256];
	FILE *f = fopen(users_path, "w");
	struct userdb *db;

	fprintf(f,
	    "y@x.org:%s\ns@x.org:%s\np@x.org:{PLAIN}pw-p\n"
	    "b@x.org:%s\nn@x.org:\n",
	    y, sha512, sha512 + 7);
	fclose(f);
	free(y);
	f = fopen(aliases_path, "w");
	fputs("alias@x.org: y@x.org\nboth@x.org: y@x.org, p@x.org\n", f);
	fclose(f);
	db = userdb_open(users_path, aliases_path, NULL, 0, err, sizeof(err));
	if (db == NULL)
		CHECK_FAIL("userdb_open: %s", err);
	return db;
}

static void
test_verify(void)
{
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 2, 16);
	struct auth_stats st;
	struct result r;

	r = verify(auth, base, "Y@X.org", "pw-y", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	CHECK_STR(r.user, "y@x.org");
	r = verify(auth, base, "alias@x.org", "pw-y", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	CHECK_STR(r.user, "y@x.org");
	r = verify(auth, base, "s@x.org", "pw-s", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	r = verify(auth, base, "b+tag@x.org", "pw-s", NULL);
	CHECK_INT(r.r, AUTH_OK);
	CHECK_STR(r.user, "b@x.org");
	r = verify(auth, base, "p@x.org", "pw-p", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	r = verify(auth, base, "p@x.org", "wrong", "10.0.0.2");
	CHECK_INT(r.r, AUTH_FAILED);
	CHECK_STR(r.user, "(null)");
	r = verify(auth, base, "n@x.org", "", "10.0.0.2");
	CHECK_INT(r.r, AUTH_FAILED);
	r = verify(auth, base, "both@x.org", "pw-y", "10.0.0.2");
	CHECK_INT(r.r, AUTH_FAILED);

	/* Unknown users cost a hash too. */
	auth_get_stats(auth, &st);
	r = verify(auth, base, "nobody@x.org", "pw-y", "10.0.0.3");
	CHECK_INT(r.r, AUTH_FAILED);
	CHECK_INT(st.hashes + 1, (auth_get_stats(auth, &st), st.hashes));
	auth_free(&auth);
	CHECK(auth == NULL);
	userdb_free(&db);
	event_base_free(base);
}

static void
test_cache(void)
{
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 1, 16);
	struct auth_stats st;
	struct result r;

	r = verify(auth, base, "y@x.org", "pw-y", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	auth_get_stats(auth, &st);
	CHECK_INT(st.hashes, 1);
	/* The same pair again, by another name: no hash. */
	r = verify(auth, base, "alias@x.org", "pw-y", "10.0.0.9");
	CHECK_INT(r.r, AUTH_OK);
	CHECK_STR(r.user, "y@x.org");
	auth_get_stats(auth, &st);
	CHECK_INT(st.hashes, 1);
	CHECK_INT(st.cache_hits, 1);
	/* A wrong password is not answered from the cache. */
	r = verify(auth, base, "y@x.org", "pw-Y", "10.0.0.1");
	CHECK_INT(r.r, AUTH_FAILED);
	auth_get_stats(auth, &st);
	CHECK_INT(st.hashes, 2);
	/* After auth_forget() the next login hashes again. */
	auth_forget(auth, "y@x.org");
	r = verify(auth, base, "y@x.org", "pw-y", "10.0.0.1");
	CHECK_INT(r.r, AUTH_OK);
	auth_get_stats(auth, &st);
	CHECK_INT(st.hashes, 3);
	CHECK_INT(st.cache_hits, 1);
	auth_forget(auth, NULL);
	auth_forget(auth, "nobody@x.org");
	r = verify(auth, base, "y@x.org", "pw-y", "10.0.0.1");
	auth_get_stats(auth, &st);
	CHECK_INT(st.hashes, 4);
	auth_free(&auth);
	userdb_free(&db);
	event_base_free(base);
}

static void
test_throttle(void)
{
	static const long want[] = {0, 0, 0, 100, 200, 400, 400};
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 1, 16);
	struct result r;

	auth_set_throttle(auth, 3, 100, 400, 300);
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		r = verify(auth, base, "p@x.org", "bad", "192.0.2.1");
		CHECK_INT(r.r, AUTH_FAILED);
		/* libevent's timers run on the coarse monotonic clock, a
		 * few ms a tick: they may fire up to two ticks early. */
		if (r.ms < want[i] - 10 || r.ms > want[i] + 80)
			CHECK_FAIL("failure %zu took %ld ms, expected %ld", i,
			    r.ms, want[i]);
	}
	/* Success from the same address is not delayed. */
	r = verify(auth, base, "p@x.org", "pw-p", "192.0.2.1");
	CHECK_INT(r.r, AUTH_OK);
	CHECK(r.ms < 80);
	/* Other addresses are not affected. */
	r = verify(auth, base, "p@x.org", "bad", "192.0.2.2");
	CHECK_INT(r.r, AUTH_FAILED);
	CHECK(r.ms < 80);
	auth_free(&auth);
	userdb_free(&db);
	event_base_free(base);
}

static void
test_throttle_parallel(void)
{
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 1, 16);
	struct result a = {.base = base}, b = {.base = base};
	struct auth_stats st;

	auth_set_throttle(auth, 1, 10, 10, 300);
	verify(auth, base, "p@x.org", "bad", "192.0.2.1");
	/* While one hash of a throttled address runs, others wait. */
	clock_gettime(CLOCK_MONOTONIC, &a.start);
	b.start = a.start;
	auth_verify(auth, "y@x.org", "pw-y", "192.0.2.1", on_done, &a);
	auth_verify(auth, "y@x.org", "pw-y", "192.0.2.1", on_done, &b);
	run(base, &a, 5000);
	run(base, &b, 5000);
	CHECK_INT(a.r, AUTH_OK);
	CHECK_INT(b.r, AUTH_TEMPFAIL);
	auth_get_stats(auth, &st);
	CHECK_INT(st.throttled, 1);
	auth_free(&auth);
	userdb_free(&db);
	event_base_free(base);
}

static void
test_queue_full(void)
{
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 1, 1);
	struct result res[6];
	struct auth_stats st;
	int ok = 0, temp = 0;

	for (int i = 0; i < 6; i++) {
		char ip[32];

		res[i] = (struct result){.base = base};
		snprintf(ip, sizeof(ip), "10.1.0.%d", i);
		auth_verify(auth, "y@x.org", "pw-y", ip, on_done, &res[i]);
	}
	for (int i = 0; i < 6; i++) {
		run(base, &res[i], 10000);
		ok += res[i].r == AUTH_OK;
		temp += res[i].r == AUTH_TEMPFAIL;
	}
	auth_get_stats(auth, &st);
	CHECK(ok >= 1 && ok <= 2);
	CHECK_INT(temp, 6 - ok);
	CHECK_INT(st.queue_full, temp);
	auth_free(&auth);
	userdb_free(&db);
	event_base_free(base);
}

static void
test_cancel(void)
{
	struct event_base *base = event_base_new();
	struct userdb *db = make_db();
	struct auth *auth = auth_new(base, db, 2, 16);
	struct result a = {.base = base}, b = {.base = base};
	struct auth_request *req;

	/* Cancelled while a worker hashes: no callback, nothing leaks. */
	req = auth_verify(auth, "y@x.org", "pw-y", "10.0.0.1", on_done, &a);
	auth_request_cancel(&req);
	CHECK(req == NULL);
	auth_request_cancel(&req);
	run(base, NULL, 300);
	CHECK_INT(a.calls, 0);

	/* Cancelled while its failure reply is delayed. */
	auth_set_throttle(auth, 0, 200, 200, 300);
	req = auth_verify(auth, "p@x.org", "bad", "10.0.0.1", on_done, &a);
	run(base, NULL, 100);
	auth_request_cancel(&req);
	run(base, NULL, 250);
	CHECK_INT(a.calls, 0);

	/* A cache hit cancelled before the loop runs. */
	verify(auth, base, "p@x.org", "pw-p", "10.0.0.2");
	req = auth_verify(auth, "p@x.org", "pw-p", "10.0.0.2", on_done, &b);
	auth_request_cancel(&req);
	run(base, NULL, 50);
	CHECK_INT(b.calls, 0);

	/* Requests still open at auth_free() never call back. */
	auth_verify(auth, "y@x.org", "pw-y", "10.0.0.3", on_done, &a);
	auth_verify(auth, "p@x.org", "pw-p", "10.0.0.2", on_done, &b);
	auth_free(&auth);
	CHECK_INT(a.calls + b.calls, 0);
	userdb_free(&db);
	event_base_free(base);
}

int
main(void)
{
	struct crypt_data cd = {0};
	const char *h;

	evthread_use_pthreads();
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(users_path, sizeof(users_path), "%s/users", dir);
	snprintf(aliases_path, sizeof(aliases_path), "%s/aliases", dir);
	/* A SHA-512 hash made with crypt(3) directly, as other tools do. */
	h = crypt_r("pw-s", "$6$saltsaltsalt$", &cd);
	snprintf(sha512, sizeof(sha512), "{CRYPT}%s", h ? h : "*");
	CHECK_RUN(test_check_password);
	CHECK_RUN(test_verify);
	CHECK_RUN(test_cache);
	CHECK_RUN(test_throttle);
	CHECK_RUN(test_throttle_parallel);
	CHECK_RUN(test_queue_full);
	CHECK_RUN(test_cancel);
	unlink(users_path);
	unlink(aliases_path);
	rmdir(dir);
	return check_summary();
}
