/*
 * CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 3501 sections
 * 6.3.3-6.3.7, RFC 9051 sections 6.3.4-6.3.8) as user tasks: index rows
 * and Maildir++ folders change together, and loaded views of a deleted or
 * renamed mailbox are retired on the loop thread afterwards.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_mailbox.h"

enum store_mailbox_op {
	STORE_MAILBOX_OP_CREATE,
	STORE_MAILBOX_OP_DELETE,
	STORE_MAILBOX_OP_RENAME,
	STORE_MAILBOX_OP_SUBSCRIBE,
	STORE_MAILBOX_OP_UNSUBSCRIBE,
};

struct store_mailbox_job {
	struct store_task task; /* first */
	enum store_mailbox_op op;
	char *name;
	char *to;       /* RENAME only */
	char *gone_dir; /* DELETE: folder to remove after the commit */
	enum store_mailbox_outcome status;
	store_mailbox_cb cb;
	void *arg;
};

/* Runs one statement binding up to two texts; 0 or -1 (logged). */
static int
store_mailbox_exec(sqlite3 *db, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("event=store op=mailbox error=\"%s\"",
		    sqlite3_errmsg(db));
		return -1;
	}
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("event=store op=mailbox error=\"%s\"",
		    sqlite3_errmsg(db));
		return -1;
	}
	return rc == SQLITE_ROW ? 1 : 0;
}

/* 1 when mailbox name exists, 0 when not, -1 on error. */
static int
store_mailbox_exists(sqlite3 *db, const char *name)
{
	return store_mailbox_exec(db, "SELECT 1 FROM mailbox WHERE name = ?1",
	    name, NULL);
}

/* 1 when name has an inferior ("name/..."), 0 when not, -1 on error. */
static int
store_mailbox_has_children(sqlite3 *db, const char *name)
{
	char *prefix = xasprintf("%s/", name);
	int r = store_mailbox_exec(db,
	    "SELECT 1 FROM mailbox WHERE substr(name, 1, length(?1)) = ?1",
	    prefix, NULL);

	free(prefix);
	return r;
}

/*
 * Within a transaction: creates each missing superior of name, then name
 * itself unless last is 0. 0, or -1 with j->status set.
 */
static int
store_mailbox_make(struct store_mailbox_job *j, sqlite3 *db, const char *name,
    int last)
{
	char *path = xstrdup(name);
	int r = 0;

	for (char *p = path;; p++) {
		int end = *p == '\0';
		int e;

		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (end && !last)
			break;
		if ((e = store_mailbox_exists(db, path)) < 0 ||
		    (e == 0 &&
		        store_index_mailbox_create(db, j->task.user->dir, path,
		            NULL) < 0)) {
			r = -1;
			break;
		}
		if (end)
			break;
		*p = '/';
	}
	free(path);
	return r;
}

static void
store_mailbox_create_run(struct store_mailbox_job *j, sqlite3 *db)
{
	char *dir = store_maildir_folder_dir(j->name);
	int e;

	if (dir == NULL || dir[0] == '\0') {
		j->status =
		    dir == NULL ? STORE_MAILBOX_CANNOT : STORE_MAILBOX_EXISTS;
		free(dir);
		return;
	}
	free(dir);
	if ((e = store_mailbox_exists(db, j->name)) != 0) {
		if (e > 0)
			j->status = STORE_MAILBOX_EXISTS;
		return;
	}
	if (store_index_begin(db) < 0)
		return;
	if (store_mailbox_make(j, db, j->name, 1) < 0 ||
	    store_maildir_fsync_dir(j->task.user->dir) < 0 ||
	    store_index_commit(db) < 0) {
		store_index_rollback(db);
		return;
	}
	j->status = STORE_MAILBOX_OK;
}

/* Counts the mailbox's messages and bytes out of the quota usage. */
static int
store_mailbox_usage_drop(sqlite3 *db, int64_t id)
{
	char *sql =
	    xasprintf("UPDATE meta SET value = value - (SELECT CASE meta.key"
	              " WHEN 'usage_bytes' THEN coalesce(sum(size), 0)"
	              " ELSE count(*) END"
	              " FROM message WHERE mailbox_id = %lld)"
	              " WHERE key IN ('usage_bytes', 'usage_messages')",
	        (long long)id);
	int r = store_mailbox_exec(db, sql, NULL, NULL);

	free(sql);
	return r;
}

/* Removes the rows of mailbox id; inside a transaction. */
static int
store_mailbox_drop_rows(sqlite3 *db, int64_t id)
{
	static const char *const tables[] = {"message", "expunged",
	    "mailbox_keyword"};
	int r = store_mailbox_usage_drop(db, id);

	for (size_t i = 0; r == 0 && i < 3; i++) {
		char *sql = xasprintf("DELETE FROM %s WHERE mailbox_id = %lld",
		    tables[i], (long long)id);

		r = store_mailbox_exec(db, sql, NULL, NULL);
		free(sql);
	}
	if (r == 0) {
		char *sql = xasprintf("DELETE FROM mailbox WHERE id = %lld",
		    (long long)id);

		r = store_mailbox_exec(db, sql, NULL, NULL);
		free(sql);
	}
	return r;
}

static void
store_mailbox_delete_run(struct store_mailbox_job *j, sqlite3 *db)
{
	struct store_mailbox mb = {0};
	int c;

	if (strcmp(j->name, "INBOX") == 0) {
		j->status = STORE_MAILBOX_CANNOT;
		return;
	}
	if (store_index_mailbox_find(db, j->name, &mb) < 0) {
		j->status = STORE_MAILBOX_NONEXISTENT;
		return;
	}
	if ((c = store_mailbox_has_children(db, j->name)) != 0) {
		if (c > 0)
			j->status = STORE_MAILBOX_HASCHILDREN;
	} else if (store_index_begin(db) == 0) {
		if (store_mailbox_drop_rows(db, mb.id) < 0 ||
		    store_index_commit(db) < 0) {
			store_index_rollback(db);
		} else {
			j->status = STORE_MAILBOX_OK;
			j->gone_dir =
			    xasprintf("%s/%s", j->task.user->dir, mb.dir);
		}
	}
	store_index_mailbox_deinit(&mb);
}

/* Unlinks every entry of path that is not a directory. */
static void
store_mailbox_empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *f;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		f = xasprintf("%s/%s", path, e->d_name);
		unlink(f);
		free(f);
	}
	closedir(d);
}

/* Worker, after the commit: the folder's files, its subdirectories, it. */
static void
store_mailbox_remove_folder(struct store_mailbox_job *j)
{
	static const char *const subs[] = {"cur", "new", "tmp"};

	for (size_t i = 0; i < 3; i++) {
		char *sub = xasprintf("%s/%s", j->gone_dir, subs[i]);

		store_mailbox_empty_dir(sub);
		rmdir(sub);
		free(sub);
	}
	store_mailbox_empty_dir(j->gone_dir);
	if (rmdir(j->gone_dir) < 0 && errno != ENOENT)
		log_warn("event=store op=delete user=%s folder=%s "
		         "error=\"%s\"",
		    j->task.user->name, j->gone_dir, strerror(errno));
	store_maildir_fsync_dir(j->task.user->dir);
}

/* One mailbox a RENAME moves: names and folders before and after. */
struct store_mailbox_move {
	char *from, *to;         /* IMAP names */
	char *from_dir, *to_dir; /* absolute folder paths */
	char *to_rel;            /* the new dir column */
	int moved;               /* rename(2) done */
};

/* Collects from and its inferiors; returns the count or -1. */
static ssize_t
store_mailbox_collect(struct store_mailbox_job *j, sqlite3 *db,
    struct store_mailbox_move **out)
{
	char *prefix = xasprintf("%s/", j->name);
	struct store_mailbox_move *v = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(db,
	        "SELECT name, dir FROM mailbox WHERE name = ?1"
	        " OR substr(name, 1, length(?2)) = ?2",
	        -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, j->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name =
			    (const char *)sqlite3_column_text(st, 0);
			const char *dir =
			    (const char *)sqlite3_column_text(st, 1);
			struct store_mailbox_move *m;

			v = xreallocarray(v, n + 1, sizeof(*v));
			m = &v[n++];
			memset(m, 0, sizeof(*m));
			m->from = xstrdup(name);
			m->to =
			    xasprintf("%s%s", j->to, name + strlen(j->name));
			m->from_dir =
			    xasprintf("%s/%s", j->task.user->dir, dir);
			m->to_rel = store_maildir_folder_dir(m->to);
			m->to_dir = m->to_rel == NULL ?
			    NULL :
			    xasprintf("%s/%s", j->task.user->dir, m->to_rel);
		}
		sqlite3_finalize(st);
	}
	free(prefix);
	*out = v;
	return rc == SQLITE_DONE ? (ssize_t)n : -1;
}

static void
store_mailbox_moves_free(struct store_mailbox_move *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].from);
		free(v[i].to);
		free(v[i].from_dir);
		free(v[i].to_dir);
		free(v[i].to_rel);
	}
	free(v);
}

/* Puts back the folders already renamed. */
static void
store_mailbox_unmove(struct store_mailbox_move *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].moved && rename(v[i].to_dir, v[i].from_dir) == 0)
			v[i].moved = 0;
}

/* Moves one mailbox's row and folder, inside the transaction. */
static int
store_mailbox_move_one(sqlite3 *db, struct store_mailbox_move *m)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET name = ?1, dir = ?2 WHERE name = ?3", -1,
	        &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, m->to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->to_rel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->from, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || rename(m->from_dir, m->to_dir) < 0) {
		log_error("event=store op=rename from=%s error=\"%s\"",
		    m->from_dir,
		    rc != SQLITE_DONE ? sqlite3_errmsg(db) : strerror(errno));
		return -1;
	}
	m->moved = 1;
	return 0;
}

/* Checks every new name: 0, or -1 with j->status set. */
static int
store_mailbox_rename_check(struct store_mailbox_job *j, sqlite3 *db,
    struct store_mailbox_move *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int e;

		if (v[i].to_rel == NULL) {
			j->status = STORE_MAILBOX_CANNOT;
			return -1;
		}
		if ((e = store_mailbox_exists(db, v[i].to)) != 0) {
			if (e > 0)
				j->status = STORE_MAILBOX_EXISTS;
			return -1;
		}
	}
	return 0;
}

/* The transaction: superiors of to, then each row and folder. */
static void
store_mailbox_rename_apply(struct store_mailbox_job *j, sqlite3 *db,
    struct store_mailbox_move *v, size_t n)
{
	int r;

	if (store_index_begin(db) < 0)
		return;
	r = store_mailbox_make(j, db, j->to, 0);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = store_mailbox_move_one(db, &v[i]);
	if (r == 0)
		r = store_maildir_fsync_dir(j->task.user->dir);
	if (r == 0)
		r = store_index_commit(db);
	if (r < 0) {
		store_mailbox_unmove(v, n);
		store_index_rollback(db);
		return;
	}
	j->status = STORE_MAILBOX_OK;
}

/* Whether to is from or lies under it. */
static int
store_mailbox_under(const char *to, const char *from)
{
	size_t n = strlen(from);

	return strncmp(to, from, n) == 0 && (to[n] == '\0' || to[n] == '/');
}

static void
store_mailbox_rename_run(struct store_mailbox_job *j, sqlite3 *db)
{
	struct store_mailbox_move *v = NULL;
	ssize_t n;

	/* TODO(rename-inbox): RFC 3501 moves INBOX's messages instead. */
	if (strcmp(j->name, "INBOX") == 0 ||
	    store_mailbox_under(j->to, j->name)) {
		j->status = STORE_MAILBOX_CANNOT;
		return;
	}
	n = store_mailbox_collect(j, db, &v);
	if (n == 0)
		j->status = STORE_MAILBOX_NONEXISTENT;
	else if (n > 0 && store_mailbox_exists(db, j->name) == 0)
		j->status = STORE_MAILBOX_NONEXISTENT; /* only inferiors */
	else if (n > 0 && store_mailbox_rename_check(j, db, v, (size_t)n) == 0)
		store_mailbox_rename_apply(j, db, v, (size_t)n);
	store_mailbox_moves_free(v, n > 0 ? (size_t)n : 0);
}

static void
store_mailbox_subscribe_run(struct store_mailbox_job *j, sqlite3 *db)
{
	const char *sql = j->op == STORE_MAILBOX_OP_SUBSCRIBE ?
	    "INSERT OR IGNORE INTO subscription(name) VALUES(?1)" :
	    "DELETE FROM subscription WHERE name = ?1";

	if (store_mailbox_exec(db, sql, j->name, NULL) == 0)
		j->status = STORE_MAILBOX_OK;
}

static void
store_mailbox_run(struct store_task *t, sqlite3 *db)
{
	struct store_mailbox_job *j = (struct store_mailbox_job *)t;

	if (db == NULL)
		return;
	switch (j->op) {
	case STORE_MAILBOX_OP_CREATE:
		store_mailbox_create_run(j, db);
		break;
	case STORE_MAILBOX_OP_DELETE:
		store_mailbox_delete_run(j, db);
		if (j->gone_dir != NULL)
			store_mailbox_remove_folder(j);
		break;
	case STORE_MAILBOX_OP_RENAME:
		store_mailbox_rename_run(j, db);
		break;
	default:
		store_mailbox_subscribe_run(j, db);
		break;
	}
}

static void
store_mailbox_done(struct store_task *t)
{
	struct store_mailbox_job *j = (struct store_mailbox_job *)t;

	if (j->status == STORE_MAILBOX_OK &&
	    (j->op == STORE_MAILBOX_OP_DELETE ||
	        j->op == STORE_MAILBOX_OP_RENAME))
		store_view_retire(t->store, t->user->name, j->name);
	j->cb(j->status, j->arg);
	free(j->gone_dir);
	free(j->to);
	free(j->name);
	free(j);
}

static void
store_mailbox_submit(struct store *store, const char *user,
    enum store_mailbox_op op, const char *name, const char *to,
    store_mailbox_cb cb, void *arg)
{
	struct store_mailbox_job *j = xcalloc(1, sizeof(*j));

	j->op = op;
	j->name = xstrdup(strcasecmp(name, "INBOX") == 0 ? "INBOX" : name);
	j->to = to != NULL ? xstrdup(to) : NULL;
	j->status = STORE_MAILBOX_IO;
	j->cb = cb;
	j->arg = arg;
	j->task.run = store_mailbox_run;
	j->task.done = store_mailbox_done;
	store_task_submit(store, user, &j->task);
}

void
store_mailbox_create(struct store *store, const char *user, const char *name,
    store_mailbox_cb cb, void *arg)
{
	store_mailbox_submit(store, user, STORE_MAILBOX_OP_CREATE, name, NULL,
	    cb, arg);
}

void
store_mailbox_delete(struct store *store, const char *user, const char *name,
    store_mailbox_cb cb, void *arg)
{
	store_mailbox_submit(store, user, STORE_MAILBOX_OP_DELETE, name, NULL,
	    cb, arg);
}

void
store_mailbox_rename(struct store *store, const char *user, const char *from,
    const char *to, store_mailbox_cb cb, void *arg)
{
	store_mailbox_submit(store, user, STORE_MAILBOX_OP_RENAME, from, to, cb,
	    arg);
}

void
store_mailbox_subscribe(struct store *store, const char *user, const char *name,
    int on, store_mailbox_cb cb, void *arg)
{
	store_mailbox_submit(store, user,
	    on ? STORE_MAILBOX_OP_SUBSCRIBE : STORE_MAILBOX_OP_UNSUBSCRIBE,
	    name, NULL, cb, arg);
}
