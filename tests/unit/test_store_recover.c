/*
 * Unit tests for crash recovery: a committed file left in tmp/, a stray
 * tmp/ file, foreign files in new/ and cur/, a vanished file, a file in
 * new/ whose row was lost, and an index rebuilt from file names with
 * UIDVALIDITY and UIDs kept.
 */
#include <dirent.h>
#include <ftw.h>
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

#define MSG "From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n"

struct ctx {
	char dir[64];
	struct event_base *base;
	struct worker_pool *io;
	struct store *store;
	int done;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
open_store(struct ctx *c)
{
	char err[256];

	c->store = store_new(c->base, c->io, c->dir, err, sizeof(err));
	CHECK(c->store != NULL);
}

static void
setup(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_store_XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
	c->base = event_base_new();
	c->io = worker_pool_new(c->base, "io", 2, 0, 0);
	open_store(c);
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
on_done(struct store_delivery *d, void *arg)
{
	struct ctx *c = arg;

	c->done++;
	store_delivery_free(&d);
}

static void
deliver(struct ctx *c, const char *user)
{
	struct store_delivery *d = xcalloc(1, sizeof(*d));
	int before = c->done;

	d->return_path = xstrdup("");
	d->data = xstrdup(MSG);
	d->len = strlen(MSG);
	d->rcpts = xcalloc(1, sizeof(*d->rcpts));
	d->nrcpts = 1;
	d->rcpts[0].user = xstrdup(user);
	d->rcpts[0].delivered_to = xstrdup(user);
	d->done = on_done;
	d->arg = c;
	store_deliver(c->store, d);
	while (c->done == before)
		event_base_loop(c->base, EVLOOP_ONCE);
}

/* The one file in <user>/<sub>, or NULL; the caller frees it. */
static char *
only_file(struct ctx *c, const char *sub)
{
	char *path = xasprintf("%s/alice/%s", c->dir, sub);
	DIR *dir = opendir(path);
	struct dirent *de;
	char *name = NULL;
	int n = 0;

	free(path);
	if (dir == NULL)
		return NULL;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		free(name);
		name = xstrdup(de->d_name);
		n++;
	}
	closedir(dir);
	if (n != 1) {
		free(name);
		return NULL;
	}
	return name;
}

static int
count_files(struct ctx *c, const char *sub)
{
	char *path = xasprintf("%s/alice/%s", c->dir, sub);
	DIR *dir = opendir(path);
	struct dirent *de;
	int n = 0;

	free(path);
	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void
put_file(struct ctx *c, const char *sub, const char *name)
{
	char *path = xasprintf("%s/alice/%s/%s", c->dir, sub, name);
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	if (f != NULL) {
		fputs(MSG, f);
		fclose(f);
	}
	free(path);
}

static void
move(struct ctx *c, const char *from, const char *to)
{
	char *a = xasprintf("%s/alice/%s", c->dir, from);
	char *b = xasprintf("%s/alice/%s", c->dir, to);

	CHECK_INT(rename(a, b), 0);
	free(a);
	free(b);
}

static int
recover(struct ctx *c)
{
	char err[256];

	return store_recover(c->store, err, sizeof(err));
}

static void
test_tmp_committed(void)
{
	struct store_mailbox_status s;
	struct ctx c;
	char *name, *unique, *from, *to;

	setup(&c);
	deliver(&c, "alice");
	name = only_file(&c, "new");
	CHECK(name != NULL);
	unique = xstrndup(name, strcspn(name, ","));
	from = xasprintf("new/%s", name);
	to = xasprintf("tmp/%s", unique);
	move(&c, from, to);
	put_file(&c, "tmp", "1.M1P1Q1.stray");
	CHECK_INT(recover(&c), 0);
	CHECK_INT(count_files(&c, "tmp"), 0);
	free(to);
	to = only_file(&c, "new");
	CHECK_STR(to, name);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 1);
	CHECK_INT(s.highestmodseq, 2);
	free(name);
	free(unique);
	free(from);
	free(to);
	teardown(&c);
}

static void
test_foreign_and_vanished(void)
{
	struct store_mailbox_status s;
	struct ctx c;
	char *name, *path;
	sqlite3 *db;

	setup(&c);
	deliver(&c, "alice");
	name = only_file(&c, "new");
	path = xasprintf("%s/alice/new/%s", c.dir, name);
	CHECK_INT(unlink(path), 0);
	free(path);
	free(name);
	put_file(&c, "new", "100.mutt.host");
	put_file(&c, "cur", "101.mutt.host:2,FS");
	CHECK_INT(recover(&c), 0);

	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 2);
	CHECK_INT(s.unseen, 1);
	CHECK_INT(s.uidnext, 4);
	/* One expunge and two new messages: 2 + 3. */
	CHECK_INT(s.highestmodseq, 5);
	CHECK_INT(s.bytes, 2 * strlen(MSG));
	name = only_file(&c, "new");
	path = xasprintf("100.mutt.host,U=2,S=%zu", strlen(MSG));
	CHECK_STR(name, path);
	free(name);
	free(path);
	name = only_file(&c, "cur");
	path = xasprintf("101.mutt.host,U=3,S=%zu:2,FS", strlen(MSG));
	CHECK_STR(name, path);
	free(name);
	free(path);

	while (store_release_handles(c.store) > 0)
		event_base_loop(c.base, EVLOOP_ONCE);
	path = xasprintf("%s/alice/" STORE_INDEX_FILE, c.dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;

		sqlite3_prepare_v2(db,
		    "SELECT uid, modseq FROM expunged UNION ALL "
		    "SELECT flags, in_cur FROM message WHERE uid = 3",
		    -1, &st, NULL);
		CHECK_INT(sqlite3_step(st), SQLITE_ROW);
		/* Foreign files are adopted first, then vanished expunged. */
		CHECK_INT(sqlite3_column_int(st, 0), 1);
		CHECK_INT(sqlite3_column_int(st, 1), 5);
		CHECK_INT(sqlite3_step(st), SQLITE_ROW);
		CHECK_INT(sqlite3_column_int(st, 0),
		    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
		CHECK_INT(sqlite3_column_int(st, 1), 1);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	free(path);

	/* A second run finds everything in order and changes nothing. */
	CHECK_INT(recover(&c), 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 2);
	CHECK_INT(s.highestmodseq, 5);
	teardown(&c);
}

/* Moved from new/ to cur/ by a mail reader: the row follows. */
static void
test_moved_to_cur(void)
{
	struct store_mailbox_status s;
	struct ctx c;
	char *name, *from, *to;

	setup(&c);
	deliver(&c, "alice");
	name = only_file(&c, "new");
	from = xasprintf("new/%s", name);
	to = xasprintf("cur/%s:2,S", name);
	move(&c, from, to);
	CHECK_INT(recover(&c), 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 1);
	CHECK_INT(s.uidnext, 2);
	CHECK_INT(count_files(&c, "cur"), 1);
	free(name);
	free(from);
	free(to);
	teardown(&c);
}

/*
 * In syncfs mode a crash can keep the rename into new/ and lose the row
 * (its WAL frame was not yet synced): the message was never acknowledged,
 * and recovery gives it a UID so that it appears exactly once.
 */
static void
test_row_lost(void)
{
	struct store_mailbox_status s;
	struct ctx c;
	char *path, *name, *want;
	sqlite3 *db;

	setup(&c);
	deliver(&c, "alice");
	store_free(&c.store);
	path = xasprintf("%s/alice/" STORE_INDEX_FILE, c.dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
	              "DELETE FROM message;"
	              "UPDATE mailbox SET uidnext = 1, highestmodseq = 1,"
	              " messages = 0, unseen = 0, bytes = 0;"
	              "UPDATE meta SET value = 0 WHERE key LIKE 'usage_%'",
	              NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	free(path);
	open_store(&c);
	CHECK_INT(recover(&c), 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_INT(s.messages, 1);
	CHECK_INT(s.uidnext, 2);
	CHECK_INT(count_files(&c, "new"), 1);
	CHECK_INT(count_files(&c, "tmp"), 0);
	name = only_file(&c, "new");
	want = xasprintf(",U=1,S=%llu", (unsigned long long)s.bytes);
	CHECK(name != NULL && strstr(name, want) != NULL &&
	    strstr(name, ",U=1,") == strstr(name, want));
	free(name);
	free(want);
	teardown(&c);
}

static void
test_rebuild(void)
{
	struct store_mailbox_status before, after;
	struct ctx c;
	char *cmd;

	setup(&c);
	deliver(&c, "alice");
	deliver(&c, "alice");
	deliver(&c, "alice");
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &before), 0);
	store_free(&c.store);
	cmd =
	    xasprintf("rm -f %s/alice/new/*Q1.* %s/alice/" STORE_INDEX_FILE "*",
	        c.dir, c.dir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	open_store(&c);
	CHECK_INT(recover(&c), 0);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &after), 0);
	CHECK_INT(after.uidvalidity, before.uidvalidity);
	CHECK_INT(after.messages, 2);
	CHECK_INT(after.uidnext, 4);
	/* New deliveries continue after the highest UID found. */
	deliver(&c, "alice");
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &after), 0);
	CHECK_INT(after.uidnext, 5);
	CHECK_INT(count_files(&c, "new"), 3);
	teardown(&c);
}

int
main(void)
{
	evthread_use_pthreads();
	CHECK_RUN(test_tmp_committed);
	CHECK_RUN(test_foreign_and_vanished);
	CHECK_RUN(test_moved_to_cur);
	CHECK_RUN(test_row_lost);
	CHECK_RUN(test_rebuild);
	return check_summary();
}
