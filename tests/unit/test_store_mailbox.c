/*
 * Unit tests for the renames a committed RENAME owes the disk
 * (store_mailbox_redo()): made in order and forgotten once durable, a
 * source already moved counts as done, and a rename that fails keeps its
 * row for the next start. Also how an index handle leaves its WAL at
 * close (store_index_close()).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xmalloc.h"
#include "check.h"
#include "store/store_int.h"

struct ctx {
	char dir[64];
	sqlite3 *db;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
setup(struct ctx *c)
{
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_store_mailbox_XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
	c->db = NULL;
	CHECK_INT(store_index_open(c->dir, &c->db), 0);
}

static void
teardown(struct ctx *c)
{
	store_index_close(&c->db);
	nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates a file or (dir set) a directory under the test directory. */
static void
make(struct ctx *c, const char *rel, int dir)
{
	char *p = xasprintf("%s/%s", c->dir, rel);
	FILE *f;

	if (dir) {
		CHECK_INT(mkdir(p, 0700), 0);
	} else {
		CHECK((f = fopen(p, "w")) != NULL);
		if (f != NULL)
			fclose(f);
	}
	free(p);
}

static int
exists(struct ctx *c, const char *rel)
{
	char *p = xasprintf("%s/%s", c->dir, rel);
	int r = access(p, F_OK) == 0;

	free(p);
	return r;
}

static void
owe(struct ctx *c, const char *from, const char *to)
{
	char *sql = xasprintf("INSERT INTO pending_rename(from_path, to_path)"
	                      " VALUES('%s', '%s')",
	    from, to);

	CHECK_INT(sqlite3_exec(c->db, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
}

static int
owed(struct ctx *c)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM pending_rename", -1,
	        &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Folder renames in order: a chain .A -> .B -> .C ends at .C. */
static void
test_redo_in_order(void)
{
	struct ctx c;

	setup(&c);
	make(&c, ".A", 1);
	make(&c, ".A/cur", 1);
	make(&c, ".A/cur/m1", 0);
	owe(&c, ".A", ".B");
	owe(&c, ".B", ".C");
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	CHECK(!exists(&c, ".A") && !exists(&c, ".B"));
	CHECK(exists(&c, ".C/cur/m1"));
	CHECK_INT(owed(&c), 0);
	/* Run again (a second crash): nothing left to do. */
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	CHECK(exists(&c, ".C/cur/m1"));
	teardown(&c);
}

/* Message files: one still in INBOX, one moved before the crash. */
static void
test_redo_files_partly_done(void)
{
	struct ctx c;

	setup(&c);
	make(&c, "new", 1);
	make(&c, "cur", 1);
	make(&c, ".Old", 1);
	make(&c, ".Old/new", 1);
	make(&c, ".Old/cur", 1);
	make(&c, "new/m1,U=1,S=5", 0);
	make(&c, ".Old/cur/m2,U=2,S=5:2,S", 0);
	owe(&c, "new/m1,U=1,S=5", ".Old/new/m1,U=1,S=5");
	owe(&c, "cur/m2,U=2,S=5:2,S", ".Old/cur/m2,U=2,S=5:2,S");
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	CHECK(exists(&c, ".Old/new/m1,U=1,S=5"));
	CHECK(exists(&c, ".Old/cur/m2,U=2,S=5:2,S"));
	CHECK(!exists(&c, "new/m1,U=1,S=5"));
	CHECK_INT(owed(&c), 0);
	teardown(&c);
}

/* A rename that cannot be made while its source exists stays owed. */
static void
test_redo_failure_kept(void)
{
	struct ctx c;

	setup(&c);
	make(&c, "new", 1);
	make(&c, "new/m1", 0);
	make(&c, "new/m2", 0);
	make(&c, ".T", 1);
	make(&c, ".T/new", 1);
	/* An empty table first, and a rename whose source never was. */
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	owe(&c, "new/m3", ".T/new/m3");
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	CHECK_INT(owed(&c), 0);
	owe(&c, "new/m1", ".Missing/new/m1");
	owe(&c, "new/m2", ".T/new/m2");
	CHECK_INT(store_mailbox_redo(c.db, c.dir), -1);
	CHECK(exists(&c, "new/m1"));
	/* Later renames wait for the one that failed. */
	CHECK(exists(&c, "new/m2"));
	CHECK_INT(owed(&c), 2);
	/* Once the target exists, the next start finishes it. */
	make(&c, ".Missing", 1);
	make(&c, ".Missing/new", 1);
	CHECK_INT(store_mailbox_redo(c.db, c.dir), 0);
	CHECK(exists(&c, ".Missing/new/m1"));
	CHECK(exists(&c, ".T/new/m2"));
	CHECK_INT(owed(&c), 0);
	teardown(&c);
}

static off_t
wal_size(struct ctx *c)
{
	char *p = xasprintf("%s/" STORE_INDEX_FILE "-wal", c->dir);
	struct stat st;
	off_t n = stat(p, &st) == 0 ? st.st_size : -1;

	free(p);
	return n;
}

/*
 * A handle that wrote leaves a WAL holding one small committed transaction
 * (the log already restarted, so the next commit syncs once); a handle
 * that only read leaves the WAL as it found it; the data survives both.
 */
static void
test_close_keeps_small_wal(void)
{
	struct ctx c;
	off_t after_write;

	setup(&c);
	owe(&c, "a", "b");
	store_index_close(&c.db);
	after_write = wal_size(&c);
	CHECK(after_write > 0);
	CHECK(after_write < 16384);
	CHECK_INT(store_index_open(c.dir, &c.db), 0);
	CHECK_INT(owed(&c), 1);
	store_index_close(&c.db);
	CHECK_INT((int64_t)wal_size(&c), (int64_t)after_write);
	CHECK_INT(store_index_open(c.dir, &c.db), 0);
	CHECK_INT(owed(&c), 1);
	teardown(&c);
}

int
main(void)
{
	CHECK_RUN(test_close_keeps_small_wal);
	CHECK_RUN(test_redo_in_order);
	CHECK_RUN(test_redo_files_partly_done);
	CHECK_RUN(test_redo_failure_kept);
	return check_summary();
}
