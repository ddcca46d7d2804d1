/*
 * Unit tests for user creation and delivery: files, rows, UIDs, MODSEQ,
 * counters, change events before completion, group commit, quota (also
 * for messages in flight), the all-or-none rule, failed durability
 * barriers and UIDVALIDITY uniqueness.
 * Each test runs in a fresh directory with a real event loop and worker
 * pool; the delivery tests run once per fsync mode.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "base/xmalloc.h"
#include "check.h"
#include "net/worker.h"
#include "store/store_int.h"

/* I/O workers of the test store; each job may close one evicted handle. */
#define TEST_IO_WORKERS 4
#define MSG "From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n"

/* The fsync mode of the stores the tests open. */
static enum store_fsync_mode fsync_mode;

struct ctx {
	char dir[64];
	struct event_base *base;
	struct worker_pool *io;
	struct store *store;
	int changes;
	int done;
	int changes_before_done[64];
	uint32_t change_uid[64];
	uint64_t change_modseq[64];
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
setup(struct ctx *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_store_XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
	c->base = event_base_new();
	c->io = worker_pool_new(c->base, "io", TEST_IO_WORKERS, 0, 0);
	c->store = store_new(c->base, c->io, c->dir, err, sizeof(err));
	CHECK(c->store != NULL);
	store_set_fsync_mode(c->store, fsync_mode);
}

static void
teardown(struct ctx *c)
{
	store_free(&c->store);
	worker_pool_free(&c->io);
	event_base_free(c->base);
	nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
on_change(const struct store_change *ch, void *arg)
{
	struct ctx *c = arg;

	if (c->changes < 64) {
		c->change_uid[c->changes] = ch->uid;
		c->change_modseq[c->changes] = ch->modseq;
	}
	CHECK(ch->kind == STORE_CHANGE_NEW);
	CHECK_STR(ch->mailbox, "INBOX");
	c->changes++;
}

static void
on_done(struct store_delivery *d, void *arg)
{
	struct ctx *c = arg;

	if (c->done < 64)
		c->changes_before_done[c->done] = c->changes;
	c->done++;
}

static struct store_delivery *
make_delivery(struct ctx *c, const char *const *users, size_t n, uint64_t quota)
{
	struct store_delivery *d = calloc(1, sizeof(*d));

	d->return_path = strdup("sender@example.org");
	d->data = strdup(MSG);
	d->len = strlen(MSG);
	d->internaldate = 1700000000;
	d->rcpts = calloc(n, sizeof(*d->rcpts));
	d->nrcpts = n;
	for (size_t i = 0; i < n; i++) {
		d->rcpts[i].user = strdup(users[i]);
		d->rcpts[i].delivered_to = strdup(users[i]);
		d->rcpts[i].quota = quota;
	}
	d->done = on_done;
	d->arg = c;
	return d;
}

static void
run_until(struct ctx *c, int done)
{
	while (c->done < done)
		event_base_loop(c->base, EVLOOP_ONCE);
}

/* Delivers one message and waits for it; the caller frees it. */
static struct store_delivery *
deliver(struct ctx *c, const char *const *users, size_t n, uint64_t quota,
    int all_or_none)
{
	struct store_delivery *d = make_delivery(c, users, n, quota);
	int before = c->done;

	d->all_or_none = all_or_none;
	store_deliver(c->store, d);
	CHECK_INT(c->done, before);
	run_until(c, before + 1);
	return d;
}

static size_t
count_files(struct ctx *c, const char *user, const char *sub)
{
	char *path = xasprintf("%s/%s/%s", c->dir, user, sub);
	DIR *dir = opendir(path);
	struct dirent *de;
	size_t n = 0;

	free(path);
	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

static sqlite3 *
open_index(struct ctx *c, const char *user)
{
	char *path = xasprintf("%s/%s/" STORE_INDEX_FILE, c->dir, user);
	sqlite3 *db = NULL;

	/* A delivery is done before its job ends; the job holds the lock. */
	while (store_release_handles(c->store) > 0)
		event_base_loop(c->base, EVLOOP_ONCE);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	free(path);
	return db;
}

static long long
sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_user_create(void)
{
	struct ctx c;
	struct store_mailbox_status s, t;
	char err[128];
	sqlite3 *db;

	setup(&c);
	CHECK_INT(store_user_create(c.store, "alice", err, sizeof(err)), 0);
	CHECK_INT(store_user_create(c.store, "alice", err, sizeof(err)), 0);
	CHECK_INT(store_user_create(c.store, "../x", err, sizeof(err)), -1);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 0);
	CHECK_INT(s.uidnext, 1);
	CHECK_INT(store_mailbox_status(c.store, "alice", "Sent", &t), 0);
	CHECK(s.uidvalidity != t.uidvalidity);
	CHECK_INT(store_mailbox_status(c.store, "nobody", "INBOX", &s), -1);
	{
		char *p1 = xasprintf("%s/alice/.Archive/cur", c.dir);
		char *p2 =
		    xasprintf("%s/alice/.Sent/" STORE_UIDVALIDITY_FILE, c.dir);

		CHECK_INT(access(p1, F_OK), 0);
		CHECK_INT(access(p2, F_OK), 0);
		free(p1);
		free(p2);
	}
	db = open_index(&c, "alice");
	CHECK_INT(sql_int(db, "PRAGMA user_version"), 4);
	CHECK_INT(sql_int(db, "SELECT count(*) FROM mailbox"), 6);
	CHECK_INT(sql_int(db, "SELECT count(*) FROM subscription"), 6);
	CHECK_INT(sql_int(db,
	              "SELECT count(*) FROM mailbox WHERE "
	              "special_use = '\\Junk' AND name = 'Junk'"),
	    1);
	CHECK_INT(sql_int(db,
	              "SELECT count(*) FROM mailbox WHERE "
	              "special_use IS NULL"),
	    1);
	sqlite3_close(db);
	teardown(&c);
}

static void
test_deliver_single(void)
{
	static const char *const users[] = {"alice"};
	struct ctx c;
	struct store_mailbox_status s;
	struct store_delivery *d;
	char *want, *path, buf[512];
	sqlite3 *db;
	FILE *f;
	size_t n;

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	d = deliver(&c, users, 1, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	CHECK_INT(d->rcpts[0].uid, 1);
	CHECK_INT(c.changes, 1);
	CHECK_INT(c.changes_before_done[0], 1);
	CHECK_INT(c.change_uid[0], 1);
	CHECK_INT(c.change_modseq[0], 2);
	store_delivery_free(&d);
	CHECK(d == NULL);

	want = xasprintf("Return-Path: <sender@example.org>\r\n"
	                 "Delivered-To: alice\r\n%s",
	    MSG);
	CHECK_INT(count_files(&c, "alice", "new"), 1);
	CHECK_INT(count_files(&c, "alice", "tmp"), 0);
	db = open_index(&c, "alice");
	CHECK_INT(sql_int(db, "SELECT size FROM message"), strlen(want));
	CHECK_INT(sql_int(db, "SELECT prefix_size FROM message"),
	    strlen(want) - strlen(MSG));
	CHECK_INT(sql_int(db, "SELECT modseq FROM message WHERE uid = 1"), 2);
	CHECK_INT(sql_int(db, "SELECT internaldate FROM message"), 1700000000);
	CHECK_INT(sql_int(db,
	              "SELECT value FROM meta WHERE "
	              "key = 'usage_bytes'"),
	    strlen(want));
	{
		sqlite3_stmt *st;
		char *suffix = xasprintf(",U=1,S=%zu", strlen(want));
		const char *file;

		sqlite3_prepare_v2(db, "SELECT file FROM message", -1, &st,
		    NULL);
		CHECK_INT(sqlite3_step(st), SQLITE_ROW);
		file = (const char *)sqlite3_column_text(st, 0);
		CHECK(strlen(file) > strlen(suffix) &&
		    strcmp(file + strlen(file) - strlen(suffix), suffix) == 0);
		path = xasprintf("%s/alice/new/%s", c.dir, file);
		sqlite3_finalize(st);
		free(suffix);
	}
	sqlite3_close(db);
	f = fopen(path, "rb");
	CHECK(f != NULL);
	n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	CHECK_INT(n, strlen(want));
	CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 1);
	CHECK_INT(s.unseen, 1);
	CHECK_INT(s.bytes, strlen(want));
	CHECK_INT(s.uidnext, 2);
	CHECK_INT(s.highestmodseq, 2);
	free(want);
	free(path);
	teardown(&c);
}

static void
test_deliver_multi(void)
{
	static const char *const users[] = {"alice", "bob", "carol/../x"};
	struct ctx c;
	struct store_delivery *d;
	struct store_mailbox_status s;

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	d = deliver(&c, users, 2, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	CHECK_INT(d->rcpts[1].status, STORE_OK);
	CHECK_INT(c.changes_before_done[0], 2);
	store_delivery_free(&d);
	d = deliver(&c, users, 3, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	CHECK_INT(d->rcpts[0].uid, 2);
	CHECK_INT(d->rcpts[1].uid, 2);
	CHECK_INT(d->rcpts[2].status, STORE_ERR_IO);
	store_delivery_free(&d);
	CHECK_INT(count_files(&c, "alice", "new"), 2);
	CHECK_INT(count_files(&c, "bob", "new"), 2);
	CHECK_INT(store_mailbox_status(c.store, "bob", "INBOX", &s), 0);
	CHECK_INT(s.messages, 2);
	CHECK_INT(s.highestmodseq, 3);
	teardown(&c);
}

static void
test_deliver_batch(void)
{
	static const char *const users[] = {"alice", "bob"};
	struct store_delivery *ds[40];
	struct store_mailbox_status s;
	struct ctx c;
	uint32_t seen[41] = {0};

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	for (int i = 0; i < 40; i++) {
		ds[i] = make_delivery(&c, users + (i % 3 == 0), 1, 0);
		store_deliver(c.store, ds[i]);
	}
	run_until(&c, 40);
	CHECK_INT(c.changes, 40);
	for (int i = 0; i < 40; i++) {
		uint32_t uid = ds[i]->rcpts[0].uid;

		CHECK_INT(ds[i]->rcpts[0].status, STORE_OK);
		if (i % 3 != 0 && uid >= 1 && uid <= 40)
			seen[uid]++;
		store_delivery_free(&ds[i]);
	}
	for (int i = 1; i <= 26; i++)
		CHECK_INT(seen[i], 1);
	/* Deliveries that waited together shared a transaction. */
	CHECK(store_commit_count(c.store) < 40);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 26);
	CHECK_INT(s.uidnext, 27);
	CHECK_INT(s.highestmodseq, 27);
	CHECK_INT(store_mailbox_status(c.store, "bob", "INBOX", &s), 0);
	CHECK_INT(s.messages, 14);
	teardown(&c);
}

/*
 * 50 deliveries to 20 users submitted at once share far fewer transactions
 * and barriers than there are deliveries.
 */
static void
test_group_commit(void)
{
	static const char *const users[] = {"u00", "u01", "u02", "u03", "u04",
	    "u05", "u06", "u07", "u08", "u09", "u10", "u11", "u12", "u13",
	    "u14", "u15", "u16", "u17", "u18", "u19"};
	struct store_delivery *ds[50];
	struct store_mailbox_status s;
	uint64_t commits, barriers;
	struct ctx c;
	int total = 0;

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	commits = store_commit_count(c.store);
	barriers = store_barrier_count(c.store);
	for (int i = 0; i < 50; i++) {
		ds[i] = make_delivery(&c, users + i % 20, 1, 0);
		store_deliver(c.store, ds[i]);
	}
	CHECK_INT(c.done, 0);
	run_until(&c, 50);
	CHECK_INT(c.changes, 50);
	for (int i = 0; i < 50; i++) {
		CHECK_INT(ds[i]->rcpts[0].status, STORE_OK);
		CHECK_INT(ds[i]->rcpts[0].uid, i / 20 + 1);
		store_delivery_free(&ds[i]);
	}
	/*
	 * Every user's deliveries arrived in one turn, so one job stages them
	 * and one transaction commits them; the barriers are shared by
	 * whatever finished while the one before ran.
	 */
	barriers = store_barrier_count(c.store) - barriers;
	if (fsync_mode == STORE_FSYNC_SYNCFS)
		CHECK(barriers >= 2 && barriers <= 12);
	else
		CHECK_INT(barriers, 0);
	CHECK(store_commit_count(c.store) - commits <= 21);
	for (int i = 0; i < 20; i++) {
		CHECK_INT(store_mailbox_status(c.store, users[i], "INBOX", &s),
		    0);
		CHECK_INT(count_files(&c, users[i], "new"), s.messages);
		CHECK_INT(count_files(&c, users[i], "tmp"), 0);
		total += (int)s.messages;
	}
	CHECK_INT(total, 50);
	teardown(&c);
}

/*
 * A failed barrier fails the deliveries it covers: before the commit no
 * row or file stays; after it, the rows and files stay (recovery would keep
 * them) but nothing is reported stored.
 */
static void
test_barrier_failure(void)
{
	static const char *const users[] = {"alice", "bob"};
	struct store_mailbox_status s;
	struct store_delivery *d;
	struct ctx c;

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	store_test_fail_barrier(c.store, 1, ENOSPC);
	d = deliver(&c, users, 2, 0, 0);
	if (fsync_mode == STORE_FSYNC_SYNCFS) {
		CHECK_INT(d->rcpts[0].status, STORE_ERR_NOSPACE);
		CHECK_INT(d->rcpts[1].status, STORE_ERR_NOSPACE);
		CHECK_INT(c.changes, 0);
		CHECK_INT(count_files(&c, "alice", "new") +
		        count_files(&c, "alice", "tmp"),
		    0);
		CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s),
		    0);
		CHECK_INT(s.messages, 0);
	} else {
		CHECK_INT(d->rcpts[0].status, STORE_OK);
	}
	store_delivery_free(&d);
	store_test_fail_barrier(c.store, 1, 0);

	store_test_fail_barrier(c.store, 2, EIO);
	c.changes = 0;
	d = deliver(&c, users, 2, 0, 0);
	if (fsync_mode == STORE_FSYNC_SYNCFS) {
		CHECK_INT(d->rcpts[0].status, STORE_ERR_IO);
		CHECK_INT(d->rcpts[1].status, STORE_ERR_IO);
		CHECK_INT(d->rcpts[0].uid, 0);
		CHECK_INT(c.changes, 0);
		CHECK_INT(count_files(&c, "bob", "new"), 1);
		CHECK_INT(count_files(&c, "bob", "tmp"), 0);
	} else {
		CHECK_INT(d->rcpts[1].status, STORE_OK);
	}
	store_delivery_free(&d);
	store_test_fail_barrier(c.store, 2, 0);
	d = deliver(&c, users, 2, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	store_delivery_free(&d);
	teardown(&c);
}

static void
test_quota(void)
{
	static const char *const users[] = {"alice"};
	struct store_mailbox_status s;
	struct store_delivery *d;
	struct ctx c;
	uint64_t size;

	setup(&c);
	d = deliver(&c, users, 1, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	store_delivery_free(&d);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	size = s.bytes;
	d = deliver(&c, users, 1, 2 * size - 1, 0);
	CHECK_INT(d->rcpts[0].status, STORE_ERR_QUOTA);
	store_delivery_free(&d);
	d = deliver(&c, users, 1, 2 * size, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	store_delivery_free(&d);
	CHECK_INT(count_files(&c, "alice", "new"), 2);
	CHECK_INT(count_files(&c, "alice", "tmp"), 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 2);
	teardown(&c);
}

/*
 * The quota counts a message that is staged but not yet committed: the
 * second delivery arrives while the first waits for its barrier, or (file
 * mode) for its other recipient: a message for one recipient only is
 * committed by the job that stages it.
 */
static void
test_quota_inflight(void)
{
	static const char *const users[] = {"alice", "bob"};
	struct store_delivery *d1, *d2;
	struct ctx c;
	uint64_t size;

	setup(&c);
	d1 = make_delivery(&c, users, 2, 0);
	store_deliver(c.store, d1);
	/* Until the file is written and counted, not yet committed. */
	while (
	    store_user_get(c.store, "alice")->staged_bytes == 0 && c.done == 0)
		event_base_loop(c.base, EVLOOP_ONCE);
	CHECK_INT(c.done, 0);
	size = store_user_get(c.store, "alice")->staged_bytes;
	CHECK(size > strlen(MSG));
	d2 = make_delivery(&c, users, 1, 2 * size - 1);
	store_deliver(c.store, d2);
	run_until(&c, 2);
	CHECK_INT(d1->rcpts[0].status, STORE_OK);
	CHECK_INT(d1->rcpts[1].status, STORE_OK);
	CHECK_INT(d2->rcpts[0].status, STORE_ERR_QUOTA);
	CHECK_INT(store_user_get(c.store, "alice")->staged_bytes, 0);
	CHECK_INT(count_files(&c, "alice", "new"), 1);
	CHECK_INT(count_files(&c, "alice", "tmp"), 0);
	store_delivery_free(&d1);
	store_delivery_free(&d2);
	teardown(&c);
}

static void
test_all_or_none(void)
{
	static const char *const users[] = {"alice", "bob"};
	struct store_mailbox_status s;
	struct store_delivery *d;
	struct ctx c;

	setup(&c);
	store_set_change_cb(c.store, on_change, &c);
	store_test_fail_writes(c.store, "bob", ENOSPC);
	d = deliver(&c, users, 2, 0, 1);
	CHECK_INT(d->rcpts[0].status, STORE_ERR_NOSPACE);
	CHECK_INT(d->rcpts[1].status, STORE_ERR_NOSPACE);
	store_delivery_free(&d);
	CHECK_INT(c.changes, 0);
	CHECK_INT(count_files(&c, "alice", "new") +
	        count_files(&c, "alice", "tmp") +
	        count_files(&c, "bob", "new") + count_files(&c, "bob", "tmp"),
	    0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 0);
	CHECK_INT(s.uidnext, 1);

	/* Without all_or_none, the other recipient gets the message. */
	store_test_fail_writes(c.store, "bob", EIO);
	d = deliver(&c, users, 2, 0, 0);
	CHECK_INT(d->rcpts[0].status, STORE_OK);
	CHECK_INT(d->rcpts[1].status, STORE_ERR_IO);
	store_delivery_free(&d);
	CHECK_INT(c.changes, 1);

	/* A quota refusal also fails everyone. */
	store_test_fail_writes(c.store, NULL, 0);
	d = make_delivery(&c, users, 2, 0);
	d->rcpts[1].quota = 10;
	d->all_or_none = 1;
	store_deliver(c.store, d);
	run_until(&c, 3);
	CHECK_INT(d->rcpts[0].status, STORE_ERR_QUOTA);
	CHECK_INT(d->rcpts[1].status, STORE_ERR_QUOTA);
	store_delivery_free(&d);
	CHECK_INT(count_files(&c, "alice", "new"), 1);
	CHECK_INT(count_files(&c, "alice", "tmp"), 0);
	CHECK_INT(count_files(&c, "bob", "new"), 0);
	teardown(&c);
}

/* UIDVALIDITY of a deleted and re-created mailbox differs from before. */
static void
test_uidvalidity(void)
{
	struct store_mailbox mb;
	uint32_t first;
	char err[128], *userdir, *cmd;
	sqlite3 *db;
	struct ctx c;

	setup(&c);
	CHECK_INT(store_user_create(c.store, "alice", err, sizeof(err)), 0);
	userdir = xasprintf("%s/alice", c.dir);
	CHECK_INT(store_index_open(userdir, &db), 0);
	CHECK_INT(store_index_begin(db), 0);
	CHECK_INT(store_index_mailbox_create(db, userdir, "A/B", NULL), 0);
	CHECK_INT(store_index_commit(db), 0);
	CHECK_INT(store_index_mailbox_find(db, "A/B", &mb), 0);
	first = mb.uidvalidity;
	CHECK_STR(mb.dir, ".A.B");
	store_index_mailbox_deinit(&mb);

	cmd = xasprintf("rm -rf '%s/.A.B'", userdir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	CHECK_INT(sqlite3_exec(db, "DELETE FROM mailbox WHERE name = 'A/B'",
	              NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(store_index_begin(db), 0);
	CHECK_INT(store_index_mailbox_create(db, userdir, "A/B", NULL), 0);
	CHECK_INT(store_index_commit(db), 0);
	CHECK_INT(store_index_mailbox_find(db, "A/B", &mb), 0);
	CHECK(mb.uidvalidity > first);
	store_index_mailbox_deinit(&mb);
	CHECK_INT(store_index_mailbox_create(db, userdir, "a/../../x", NULL),
	    0);
	CHECK_INT(store_index_mailbox_find(db, "a/../../x", &mb), 0);
	CHECK_STR(mb.dir, ".a.%2E%2E.%2E%2E.x");
	store_index_mailbox_deinit(&mb);
	store_index_close(&db);
	free(userdir);
	teardown(&c);
}

static void
test_fsync_mode_parse(void)
{
	enum store_fsync_mode m = STORE_FSYNC_FILE;

	CHECK_INT(store_fsync_mode_parse("syncfs", &m), 0);
	CHECK_INT(m, STORE_FSYNC_SYNCFS);
	CHECK_INT(store_fsync_mode_parse("file", &m), 0);
	CHECK_INT(m, STORE_FSYNC_FILE);
	CHECK_INT(store_fsync_mode_parse("fsync", &m), -1);
	CHECK_INT(store_fsync_mode_parse("", &m), -1);
}

/* Per-user UID order of change events, for test_announce_order. */
struct order {
	uint32_t last[3];
	int bad;
	int n;
};

static void
on_change_order(const struct store_change *ch, void *arg)
{
	struct order *o = arg;
	int u = ch->user[0] - 'a';

	if (u < 0 || u > 2 || ch->uid <= o->last[u])
		o->bad++;
	else
		o->last[u] = ch->uid;
	o->n++;
}

/*
 * Deliveries with recipients spread over users finish in any order, yet
 * each mailbox must hear of its new UIDs in ascending order.
 */
static void
test_announce_order(void)
{
	static const char *const sets[][3] = {{"a", "b", "c"}, {"b"},
	    {"c", "a"}, {"a"}, {"b", "c"}, {"c"}};
	static const size_t sizes[] = {3, 1, 2, 1, 2, 1};
	struct store_delivery *ds[60];
	struct order o = {{0}, 0, 0};
	struct ctx c;
	int total = 0;

	setup(&c);
	store_set_change_cb(c.store, on_change_order, &o);
	for (int i = 0; i < 60; i++) {
		ds[i] = make_delivery(&c, sets[i % 6], sizes[i % 6], 0);
		store_deliver(c.store, ds[i]);
		total += (int)sizes[i % 6];
		if (i % 7 == 0)
			event_base_loop(c.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	run_until(&c, 60);
	CHECK_INT(o.n, total);
	CHECK_INT(o.bad, 0);
	for (int i = 0; i < 60; i++)
		store_delivery_free(&ds[i]);
	teardown(&c);
}

/* Index files open in this process, and the most seen at once. */
static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static int budget_peak;

static int
count_index_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], target[512];
	int n = 0;

	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		len -= (ssize_t)strlen(STORE_INDEX_FILE);
		n += len > 0 && strcmp(target + len, STORE_INDEX_FILE) == 0;
	}
	closedir(dir);
	return n;
}

struct budget_task {
	struct store_task t;
	struct ctx *c;
	int had_db;
};

static void
budget_run(struct store_task *t, sqlite3 *db)
{
	struct budget_task *bt = (struct budget_task *)t;
	int n = count_index_fds();

	bt->had_db = db != NULL;
	pthread_mutex_lock(&budget_lock);
	if (n > budget_peak)
		budget_peak = n;
	pthread_mutex_unlock(&budget_lock);
}

static void
budget_done(struct store_task *t)
{
	struct budget_task *bt = (struct budget_task *)t;

	CHECK(bt->had_db);
	bt->c->done++;
}

/*
 * A storm of tasks and deliveries for more users than the handle cache
 * holds: every one runs, with its handle, and no more than handles_max
 * index handles are ever open (the rest wait for a place), plus the
 * evicted handle each running job closes when its work is done.
 */
static void
test_handle_budget(void)
{
	struct budget_task tasks[40], again[36];
	struct store_delivery *ds[20];
	struct ctx c;
	char name[16];

	setup(&c);
	c.store->handles_max = 4;
	budget_peak = 0;
	for (int i = 0; i < 40; i++) {
		memset(&tasks[i], 0, sizeof(tasks[i]));
		tasks[i].c = &c;
		tasks[i].t.run = budget_run;
		tasks[i].t.done = budget_done;
		snprintf(name, sizeof(name), "t%d", i);
		store_task_submit(c.store, name, &tasks[i].t);
		if (i % 2 == 0) {
			const char *users[1];

			snprintf(name, sizeof(name), "d%d", i / 2);
			users[0] = name;
			ds[i / 2] = make_delivery(&c, users, 1, 0);
			store_deliver(c.store, ds[i / 2]);
		}
	}
	run_until(&c, 60);
	/*
	 * Twelve users in turn through four places: each comes back while
	 * the handle evicted from it may still be closing, and must wait for
	 * that close (its index stays locked until then) instead of failing.
	 */
	for (int i = 0; i < 36; i++) {
		memset(&again[i], 0, sizeof(again[i]));
		again[i].c = &c;
		again[i].t.run = budget_run;
		again[i].t.done = budget_done;
		snprintf(name, sizeof(name), "t%d", i % 12);
		store_task_submit(c.store, name, &again[i].t);
		if (i % 5 == 0)
			event_base_loop(c.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	run_until(&c, 96);
	for (int i = 0; i < 20; i++) {
		CHECK_INT(ds[i]->rcpts[0].status, STORE_OK);
		store_delivery_free(&ds[i]);
	}
	CHECK(budget_peak > 0);
	CHECK(budget_peak <= 4 + TEST_IO_WORKERS);
	CHECK(c.store->nopen <= 4);
	CHECK(TAILQ_EMPTY(&c.store->hwait));
	teardown(&c);
}

int
main(void)
{
	static const enum store_fsync_mode modes[] = {STORE_FSYNC_SYNCFS,
	    STORE_FSYNC_FILE};

	evthread_use_pthreads();
	CHECK_RUN(test_user_create);
	CHECK_RUN(test_uidvalidity);
	CHECK_RUN(test_fsync_mode_parse);
	for (size_t i = 0; i < 2; i++) {
		fsync_mode = modes[i];
		fprintf(stderr, "fsync mode %s\n", i == 0 ? "syncfs" : "file");
		CHECK_RUN(test_deliver_single);
		CHECK_RUN(test_deliver_multi);
		CHECK_RUN(test_deliver_batch);
		CHECK_RUN(test_group_commit);
		CHECK_RUN(test_announce_order);
		CHECK_RUN(test_handle_budget);
		CHECK_RUN(test_quota);
		CHECK_RUN(test_quota_inflight);
		CHECK_RUN(test_all_or_none);
		CHECK_RUN(test_barrier_failure);
	}
	return check_summary();
}
