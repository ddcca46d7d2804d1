/*
 * CREATE, DELETE, RENAME (RENAME INBOX too), SUBSCRIBE and UNSUBSCRIBE
 * (RFC 3501 sections 6.3.3-6.3.7, RFC 9051 sections 6.3.4-6.3.8) as user
 * tasks: index rows commit first, with the folder and file renames they
 * owe the disk recorded beside them, so recovery can finish a RENAME cut
 * short; loaded views of a deleted or renamed mailbox are retired after.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* A message RENAME INBOX moves out, and the tombstone it leaves. */
struct store_mailbox_msg {
	uint32_t uid;
	unsigned flags;
	uint64_t size;
	uint64_t modseq; /* of its tombstone in INBOX */
};

struct store_mailbox_job {
	struct store_task task; /* first */
	enum store_mailbox_op op;
	char *name;
	char *to;       /* RENAME only */
	char *gone_dir; /* DELETE: folder to remove after the commit */
	struct store_mailbox_msg *msgs; /* RENAME INBOX: committed moves */
	size_t nmsgs;
	int64_t inbox_id;
	uint32_t inbox_uidvalidity;
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
 * Creates one mailbox, unsubscribed: RFC 9051 section 6.3.4 has CREATE
 * leave subscriptions alone. store_index_mailbox_create() subscribes, as a
 * new user's default mailboxes want, so the subscription it added goes
 * again, while one the name had before (it outlives DELETE) stays.
 */
static int
store_mailbox_create_one(struct store_mailbox_job *j, sqlite3 *db,
    const char *name)
{
	int sub = store_mailbox_exec(db,
	    "SELECT 1 FROM subscription WHERE name = ?1", name, NULL);

	if (sub < 0 ||
	    store_index_mailbox_create(db, j->task.user->dir, name, NULL) < 0)
		return -1;
	if (sub > 0)
		return 0;
	return store_mailbox_exec(db,
	    "DELETE FROM subscription WHERE name = ?1", name, NULL);
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
		    (e == 0 && store_mailbox_create_one(j, db, path) < 0)) {
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

/* ------------------------------------------------------------------ */
/* Renames the index owes the disk. */

/* One row of pending_rename. */
struct store_mailbox_owed {
	int64_t seq;
	char *from, *to; /* relative to the user's directory */
};

/* Records a rename for after the commit; inside the transaction. */
static int
store_mailbox_owe(sqlite3 *db, const char *from, const char *to)
{
	return store_mailbox_exec(db,
	    "INSERT INTO pending_rename(from_path, to_path) VALUES(?1, ?2)",
	    from, to);
}

/* Reads pending_rename in the order it was written; count or -1. */
static ssize_t
store_mailbox_owed_load(sqlite3 *db, struct store_mailbox_owed **out)
{
	struct store_mailbox_owed *v = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(db,
	        "SELECT seq, from_path, to_path FROM pending_rename"
	        " ORDER BY seq",
	        -1, &st, NULL) == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].seq = sqlite3_column_int64(st, 0);
			v[n].from =
			    xstrdup((const char *)sqlite3_column_text(st, 1));
			v[n++].to =
			    xstrdup((const char *)sqlite3_column_text(st, 2));
		}
		sqlite3_finalize(st);
	}
	*out = v;
	return rc == SQLITE_DONE ? (ssize_t)n : -1;
}

/* Notes the directory that holds path, once. */
static void
store_mailbox_dir_note(char ***dirs, size_t *n, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = xstrndup(path, slash != NULL ? (size_t)(slash - path) : 0);

	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*dirs)[i], dir) == 0) {
			free(dir);
			return;
		}
	}
	*dirs = xreallocarray(*dirs, *n + 1, sizeof(**dirs));
	(*dirs)[(*n)++] = dir;
}

/*
 * Makes one owed rename. A source that is gone was renamed before a crash
 * (or never existed): done. A failure leaves the row for the next start.
 */
static int
store_mailbox_redo_one(const char *userdir, const struct store_mailbox_owed *o,
    char ***dirs, size_t *ndirs)
{
	char *from = xasprintf("%s/%s", userdir, o->from);
	char *to = xasprintf("%s/%s", userdir, o->to);
	struct stat sb;
	int r = 0;

	if (rename(from, to) == 0) {
		store_mailbox_dir_note(dirs, ndirs, from);
		store_mailbox_dir_note(dirs, ndirs, to);
	} else if (errno != ENOENT || lstat(from, &sb) == 0) {
		log_error("event=store op=rename from=%s to=%s error=\"%s\"",
		    from, to, strerror(errno));
		r = -1;
	}
	free(from);
	free(to);
	return r;
}

/* Forgets the owed renames up to seq, done and durable. */
static int
store_mailbox_owed_clear(sqlite3 *db, int64_t seq)
{
	char *sql = xasprintf("DELETE FROM pending_rename WHERE seq <= %lld",
	    (long long)seq);
	int r = store_mailbox_exec(db, sql, NULL, NULL);

	free(sql);
	return r;
}

/*
 * The renames go in the order they were recorded and stop at the first
 * failure, since a later one may depend on it (a folder renamed twice).
 */
int
store_mailbox_redo(sqlite3 *db, const char *userdir)
{
	struct store_mailbox_owed *v = NULL;
	ssize_t n = store_mailbox_owed_load(db, &v), done = 0;
	char **dirs = NULL;
	size_t ndirs = 0;
	int r = n < 0 ? -1 : 0;

	while (done < n &&
	    store_mailbox_redo_one(userdir, &v[done], &dirs, &ndirs) == 0)
		done++;
	if (done < n)
		r = -1;
	/* The renames are made durable before their record goes. */
	for (size_t i = 0; i < ndirs; i++) {
		if (store_maildir_fsync_dir(dirs[i]) < 0)
			done = 0;
		free(dirs[i]);
	}
	free(dirs);
	if (done > 0 && store_mailbox_owed_clear(db, v[done - 1].seq) < 0)
		r = -1;
	else if (done == 0 && n > 0)
		r = -1;
	for (ssize_t i = 0; i < n; i++) {
		free(v[i].from);
		free(v[i].to);
	}
	free(v);
	return r;
}

/* ------------------------------------------------------------------ */
/* RENAME of a mailbox and its inferiors. */

/* One mailbox a RENAME moves: names and folders before and after. */
struct store_mailbox_move {
	char *from, *to;         /* IMAP names */
	char *from_rel, *to_rel; /* the dir column before and after */
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
			struct store_mailbox_move *m;

			v = xreallocarray(v, n + 1, sizeof(*v));
			m = &v[n++];
			m->from = xstrdup(name);
			m->to =
			    xasprintf("%s%s", j->to, name + strlen(j->name));
			m->from_rel =
			    xstrdup((const char *)sqlite3_column_text(st, 1));
			m->to_rel = store_maildir_folder_dir(m->to);
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
		free(v[i].from_rel);
		free(v[i].to_rel);
	}
	free(v);
}

/* Moves one mailbox's row and owes its folder's rename; in the transaction. */
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
	if (rc != SQLITE_DONE) {
		log_error("event=store op=rename from=%s error=\"%s\"", m->from,
		    sqlite3_errmsg(db));
		return -1;
	}
	return store_mailbox_owe(db, m->from_rel, m->to_rel);
}

/*
 * Subscriptions follow a renamed mailbox and its inferiors, replacing any
 * the new names had (RFC 9051 section 6.3.6 leaves this to the server;
 * clients expect a subscribed mailbox to stay subscribed).
 */
static int
store_mailbox_move_subscriptions(struct store_mailbox_job *j, sqlite3 *db)
{
	return store_mailbox_exec(db,
	    "UPDATE OR REPLACE subscription"
	    " SET name = ?2 || substr(name, length(?1) + 1)"
	    " WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'",
	    j->name, j->to);
}

/* Checks every new name: 0, or -1 with j->status set. */
static int
store_mailbox_rename_check(struct store_mailbox_job *j, sqlite3 *db,
    struct store_mailbox_move *v, size_t n)
{
	int e = store_mailbox_exists(db, j->to);

	for (size_t i = 0; e == 0 && i < n; i++) {
		if (v[i].to_rel == NULL) {
			j->status = STORE_MAILBOX_CANNOT;
			return -1;
		}
		e = store_mailbox_exists(db, v[i].to);
	}
	if (e > 0)
		j->status = STORE_MAILBOX_EXISTS;
	return e == 0 ? 0 : -1;
}

/*
 * The transaction: superiors of to, each row with the rename of its folder
 * recorded in pending_rename, the subscriptions; then the folders move.
 * Crash safety: nothing on disk changes before the commit, so a crash
 * before it leaves the old names in the index and on disk. After it, the
 * index holds the new names and the renames still owed; recovery makes
 * them (store_mailbox_redo()) before it compares any folder with its rows.
 */
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
		r = store_mailbox_move_subscriptions(j, db);
	if (r == 0)
		r = store_maildir_fsync_dir(j->task.user->dir);
	if (r == 0)
		r = store_index_commit(db);
	if (r < 0) {
		store_index_rollback(db);
		return;
	}
	j->status = STORE_MAILBOX_OK;
	store_mailbox_redo(db, j->task.user->dir);
}

/* Whether to is from or lies under it. */
static int
store_mailbox_under(const char *to, const char *from)
{
	size_t n = strlen(from);

	return strncmp(to, from, n) == 0 && (to[n] == '\0' || to[n] == '/');
}

/* ------------------------------------------------------------------ */
/* RENAME INBOX (RFC 9051 section 6.3.6, RFC 3501 section 6.3.5). */

/* "<dir>/<sub>/<name>", or "<sub>/<name>" for INBOX's dir "". */
static char *
store_mailbox_rel(const char *dir, const char *sub, const char *name)
{
	return xasprintf("%s%s%s/%s", dir, dir[0] != '\0' ? "/" : "", sub,
	    name);
}

/* Notes one INBOX message (sel: uid, file, in_cur, flags, size). */
static int
store_mailbox_inbox_msg(struct store_mailbox_job *j, sqlite3 *db,
    sqlite3_stmt *sel, const char *to_dir)
{
	const char *file = (const char *)sqlite3_column_text(sel, 1);
	int in_cur = sqlite3_column_int(sel, 2);
	struct store_mailbox_msg *m;
	char letters[8], *name, *from, *to;
	int r;

	j->msgs = xreallocarray(j->msgs, j->nmsgs + 1, sizeof(*j->msgs));
	m = &j->msgs[j->nmsgs++];
	m->uid = (uint32_t)sqlite3_column_int64(sel, 0);
	m->flags = (unsigned)sqlite3_column_int(sel, 3);
	m->size = (uint64_t)sqlite3_column_int64(sel, 4);
	store_maildir_flag_letters(m->flags, letters);
	name = xasprintf("%s%s%s", file, in_cur ? ":2," : "",
	    in_cur ? letters : "");
	from = store_mailbox_rel("", in_cur ? "cur" : "new", name);
	to = store_mailbox_rel(to_dir, in_cur ? "cur" : "new", name);
	r = store_mailbox_owe(db, from, to);
	free(name);
	free(from);
	free(to);
	return r;
}

/* Lists INBOX's messages, owing the rename of each file. */
static int
store_mailbox_inbox_list(struct store_mailbox_job *j, sqlite3 *db,
    const struct store_mailbox *inbox, const struct store_mailbox *target)
{
	sqlite3_stmt *sel;
	int rc = SQLITE_DONE, r = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT uid, file, in_cur, flags, size FROM message"
	        " WHERE mailbox_id = ?1 ORDER BY uid",
	        -1, &sel, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(sel, 1, inbox->id);
	while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW)
		r = store_mailbox_inbox_msg(j, db, sel, target->dir);
	sqlite3_finalize(sel);
	if (r == 0 && rc != SQLITE_DONE)
		r = -1;
	for (size_t i = 0; r == 0 && i < j->nmsgs; i++)
		j->msgs[i].modseq = inbox->highestmodseq + i + 1;
	return r;
}

/*
 * The rows: a tombstone per message in INBOX, each with its own MODSEQ in
 * UID order (RFC 7162), the messages with their UIDs, flags and keywords
 * to the target, which takes INBOX's UIDNEXT, HIGHESTMODSEQ and counters;
 * INBOX keeps its UIDVALIDITY and UIDNEXT and is left empty. The quota
 * usage does not change.
 */
static int
store_mailbox_inbox_rows(sqlite3 *db, const struct store_mailbox *inbox,
    const struct store_mailbox *target, size_t n)
{
	long long in = (long long)inbox->id, t = (long long)target->id;
	char *sql[5];
	int r = 0;

	sql[0] = xasprintf("INSERT OR REPLACE INTO expunged(mailbox_id, uid,"
	                   " modseq) SELECT %lld, uid, %lld + row_number()"
	                   " OVER (ORDER BY uid) FROM message"
	                   " WHERE mailbox_id = %lld",
	    in, (long long)inbox->highestmodseq, in);
	sql[1] = xasprintf("UPDATE message SET mailbox_id = %lld"
	                   " WHERE mailbox_id = %lld",
	    t, in);
	sql[2] = xasprintf("INSERT OR IGNORE INTO mailbox_keyword(mailbox_id,"
	                   " name) SELECT %lld, name FROM mailbox_keyword"
	                   " WHERE mailbox_id = %lld",
	    t, in);
	sql[3] = xasprintf("UPDATE mailbox SET (uidnext, highestmodseq,"
	                   " first_recent_uid, messages, unseen, bytes) ="
	                   " (SELECT uidnext, highestmodseq, first_recent_uid,"
	                   " messages, unseen, bytes FROM mailbox"
	                   " WHERE id = %lld) WHERE id = %lld",
	    in, t);
	sql[4] = xasprintf("UPDATE mailbox SET highestmodseq = highestmodseq"
	                   " + %zu, messages = 0, unseen = 0, bytes = 0"
	                   " WHERE id = %lld",
	    n, in);
	for (size_t i = 0; i < 5; i++) {
		if (r == 0)
			r = store_mailbox_exec(db, sql[i], NULL, NULL);
		free(sql[i]);
	}
	return r;
}

/* Inside the transaction: the target, then the rows and owed renames. */
static int
store_mailbox_inbox_move(struct store_mailbox_job *j, sqlite3 *db)
{
	struct store_mailbox inbox = {0}, target = {0};
	char *folder = NULL;
	int r = -1;

	if (store_index_mailbox_find(db, "INBOX", &inbox) == 0 &&
	    store_mailbox_make(j, db, j->to, 1) == 0 &&
	    store_index_mailbox_find(db, j->to, &target) == 0) {
		folder = xasprintf("%s/%s", j->task.user->dir, target.dir);
		j->inbox_id = inbox.id;
		j->inbox_uidvalidity = inbox.uidvalidity;
		if (store_mailbox_inbox_list(j, db, &inbox, &target) == 0 &&
		    store_mailbox_inbox_rows(db, &inbox, &target, j->nmsgs) ==
		        0 &&
		    store_maildir_fsync_dir(folder) == 0 &&
		    store_maildir_fsync_dir(j->task.user->dir) == 0)
			r = 0;
	}
	free(folder);
	store_index_mailbox_deinit(&inbox);
	store_index_mailbox_deinit(&target);
	return r;
}

/*
 * Moves INBOX's messages into the new mailbox j->to; INBOX's inferiors
 * stay. Crash safety as for any RENAME: the commit comes first and
 * records every file rename it owes; a crash before it leaves all in
 * INBOX (and at most an empty folder for the target), a crash after it
 * leaves files that recovery moves into the target before it scans any
 * folder, so each message is found exactly once, with its flags.
 */
static void
store_mailbox_inbox_run(struct store_mailbox_job *j, sqlite3 *db)
{
	char *to_rel = store_maildir_folder_dir(j->to);
	int e;

	if (to_rel == NULL || (e = store_mailbox_exists(db, j->to)) != 0) {
		if (to_rel == NULL)
			j->status = STORE_MAILBOX_CANNOT;
		else if (e > 0)
			j->status = STORE_MAILBOX_EXISTS;
		free(to_rel);
		return;
	}
	free(to_rel);
	if (store_index_begin(db) < 0)
		return;
	if (store_mailbox_inbox_move(j, db) < 0 || store_index_commit(db) < 0) {
		store_index_rollback(db);
		j->nmsgs = 0;
		return;
	}
	j->status = STORE_MAILBOX_OK;
	store_mailbox_redo(db, j->task.user->dir);
}

/* After RENAME INBOX: each message left INBOX, as an expunge would. */
static void
store_mailbox_inbox_announce(struct store_mailbox_job *j)
{
	struct store *store = j->task.store;

	for (size_t i = 0; i < j->nmsgs; i++) {
		struct store_change c = {
		    .kind = STORE_CHANGE_EXPUNGE,
		    .user = j->task.user->name,
		    .mailbox = "INBOX",
		    .mailbox_id = j->inbox_id,
		    .uidvalidity = j->inbox_uidvalidity,
		    .uid = j->msgs[i].uid,
		    .modseq = j->msgs[i].modseq,
		    .flags = j->msgs[i].flags,
		    .size = j->msgs[i].size,
		};

		store_view_apply(store, &c, NULL);
		if (store->change_cb != NULL)
			store->change_cb(&c, store->change_arg);
	}
}

static void
store_mailbox_rename_run(struct store_mailbox_job *j, sqlite3 *db)
{
	struct store_mailbox_move *v = NULL;
	ssize_t n;

	if (strcmp(j->name, "INBOX") == 0) {
		store_mailbox_inbox_run(j, db);
		return;
	}
	if (store_mailbox_under(j->to, j->name)) {
		j->status = STORE_MAILBOX_CANNOT;
		return;
	}
	/*
	 * A name that exists only through its inferiors (a missing level,
	 * \NonExistent in LIST) is renamed too: RFC 9051 section 6.3.6 has
	 * the inferiors follow, and the level stays missing under the new
	 * name. Only a name with neither row nor inferiors is NONEXISTENT.
	 */
	n = store_mailbox_collect(j, db, &v);
	if (n == 0)
		j->status = STORE_MAILBOX_NONEXISTENT;
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

	if (j->status == STORE_MAILBOX_OK && j->op == STORE_MAILBOX_OP_RENAME &&
	    strcmp(j->name, "INBOX") == 0)
		store_mailbox_inbox_announce(j);
	else if (j->status == STORE_MAILBOX_OK &&
	    (j->op == STORE_MAILBOX_OP_DELETE ||
	        j->op == STORE_MAILBOX_OP_RENAME))
		store_view_retire(t->store, t->user->name, j->name);
	j->cb(j->status, j->arg);
	free(j->msgs);
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
	if (to != NULL)
		j->to = xstrdup(strcasecmp(to, "INBOX") == 0 ? "INBOX" : to);
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
