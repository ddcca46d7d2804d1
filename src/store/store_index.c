/*
 * The per-user SQLite index: schema, migrations by PRAGMA user_version, and
 * the statements delivery and recovery need. It holds what IMAP needs
 * exactly (RFC 3501 UIDs and UIDVALIDITY, RFC 7162 MODSEQ and expunge
 * tombstones, RFC 6154 special-use, RFC 9208 quota usage).
 *
 * Schema version 4, in <dir>/<user>/pushmail.sqlite (WAL, synchronous=FULL
 * by default; deliveries in syncfs mode commit with NORMAL):
 *
 *   meta(key TEXT PRIMARY KEY, value INTEGER)
 *     'uidvalidity_last'  last UIDVALIDITY handed out (next: max(now, +1))
 *     'usage_bytes'       sum of message file sizes, all mailboxes
 *     'usage_messages'    number of messages, all mailboxes
 *   mailbox(id, name UNIQUE (IMAP name, UTF-8, '/' separated), dir (folder
 *     relative to the user's directory: "" for INBOX, ".A.B" for "A/B"),
 *     uidvalidity, uidnext, highestmodseq, first_recent_uid, special_use
 *     ("\Sent" etc. or NULL), messages, unseen, bytes, scan_new_mtime,
 *     scan_cur_mtime (ns; version 2: new/ and cur/ at the last full
 *     reconciliation with the directories, see store_watch.c))
 *   subscription(name PRIMARY KEY)
 *   message(mailbox_id, uid, PRIMARY KEY (mailbox_id, uid),
 *     file (base name "<unique>,U=<uid>,S=<size>" without ":2,<flags>"),
 *     in_cur (0: new/<file>; 1: cur/<file>:2,<flag letters>),
 *     flags (STORE_FLAG_* bits), keywords (space separated), modseq,
 *     size (file bytes = RFC822.SIZE), internaldate, saved_date (unix time),
 *     prefix_size (bytes of Return-Path/Delivered-To the store prepended),
 *     header_size (header bytes of the file, prefix included), lines,
 *     envelope, body, bodystructure (FETCH strings), partmap (mime.h
 *     text; its offsets count from the message as received, so a reader
 *     adds prefix_size to find them in the file), subject, from_addr,
 *     to_addr, cc_addr,
 *     message_id, in_reply_to, refs (decoded search fields), date_sent)
 *     with an index on (mailbox_id, modseq) and (version 4) the covering
 *     index message_view on (mailbox_id, uid, flags, modseq, keywords), so
 *     that loading a view reads a few bytes a message, not the whole row
 *   expunged(mailbox_id, uid, modseq) tombstones, index (mailbox_id, modseq)
 *   mailbox_keyword(mailbox_id, name) keywords defined in a mailbox
 *   pending_rename(seq, from_path, to_path) (version 3) renames of files
 *     and folders (paths relative to the user's directory) that a committed
 *     transaction still owes the disk; see store_mailbox_redo()
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"

static const char store_index_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES('uidvalidity_last', 0), ('usage_bytes', 0),"
    " ('usage_messages', 0);"
    "CREATE TABLE mailbox(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " dir TEXT NOT NULL UNIQUE, uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL DEFAULT 1,"
    " highestmodseq INTEGER NOT NULL DEFAULT 1,"
    " first_recent_uid INTEGER NOT NULL DEFAULT 1, special_use TEXT,"
    " messages INTEGER NOT NULL DEFAULT 0, unseen INTEGER NOT NULL DEFAULT 0,"
    " bytes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE subscription(name TEXT PRIMARY KEY);"
    "CREATE TABLE message(mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL,"
    " file TEXT NOT NULL, in_cur INTEGER NOT NULL DEFAULT 0,"
    " flags INTEGER NOT NULL DEFAULT 0, keywords TEXT NOT NULL DEFAULT '',"
    " modseq INTEGER NOT NULL, size INTEGER NOT NULL,"
    " internaldate INTEGER NOT NULL, saved_date INTEGER NOT NULL,"
    " prefix_size INTEGER NOT NULL DEFAULT 0,"
    " header_size INTEGER NOT NULL, lines INTEGER NOT NULL,"
    " envelope TEXT, body TEXT, bodystructure TEXT, partmap TEXT,"
    " subject TEXT, from_addr TEXT, to_addr TEXT, cc_addr TEXT,"
    " message_id TEXT, in_reply_to TEXT, refs TEXT, date_sent INTEGER,"
    " PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX message_modseq ON message(mailbox_id, modseq);"
    "CREATE TABLE expunged(mailbox_id INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
    "CREATE TABLE mailbox_keyword(mailbox_id INTEGER NOT NULL,"
    " name TEXT NOT NULL, PRIMARY KEY(mailbox_id, name)) WITHOUT ROWID;";

/*
 * Version 2: the mtimes (ns) of a folder's new/ and cur/ at its last full
 * reconciliation with the directories (store_watch.c), 0 for none.
 */
static const char store_index_v2[] =
    "ALTER TABLE mailbox ADD COLUMN scan_new_mtime INTEGER NOT NULL"
    " DEFAULT 0;"
    "ALTER TABLE mailbox ADD COLUMN scan_cur_mtime INTEGER NOT NULL"
    " DEFAULT 0;";

/*
 * Version 3: the renames a committed RENAME still has to make on disk
 * (store_mailbox.c), finished by recovery before it compares folders.
 */
static const char store_index_v3[] =
    "CREATE TABLE pending_rename(seq INTEGER PRIMARY KEY,"
    " from_path TEXT NOT NULL, to_path TEXT NOT NULL);";

/*
 * Version 4: what a view load reads (store_view.c), apart from the wide
 * message rows, which hold about 1 KiB each of cached envelope, structure
 * and search fields.
 */
static const char store_index_v4[] =
    "CREATE INDEX message_view ON message(mailbox_id, uid, flags, modseq,"
    " keywords);";

/* Migration i takes a database from user_version i to i + 1. */
static const char *const store_index_migrations[] = {
    store_index_v1,
    store_index_v2,
    store_index_v3,
    store_index_v4,
};

#define STORE_INDEX_VERSION                    \
	(int)(sizeof(store_index_migrations) / \
	    sizeof(store_index_migrations[0]))

static void
store_index_log(sqlite3 *db, const char *what)
{
	log_error("event=store op=%s error=\"%s\"", what, sqlite3_errmsg(db));
}

static int
store_index_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int e = sqlite3_system_errno(db);

		log_error("event=store op=exec error=\"%s\" errno=\"%s\"",
		    msg ? msg : "unknown", e ? strerror(e) : "none");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
store_index_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int r = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

/* Runs every migration past the file's version, each in a transaction. */
static int
store_index_migrate(sqlite3 *db)
{
	int v;

	if (store_index_version(db, &v) < 0)
		return -1;
	if (v > STORE_INDEX_VERSION) {
		log_error("event=store op=migrate error=\"schema version %d is "
		          "newer than %d\"",
		    v, STORE_INDEX_VERSION);
		return -1;
	}
	if (v == STORE_INDEX_VERSION)
		return 0;
	for (; v < STORE_INDEX_VERSION; v++) {
		char *set = xasprintf("PRAGMA user_version=%d", v + 1);
		int r = store_index_exec(db, "BEGIN IMMEDIATE");

		if (r == 0)
			r = store_index_exec(db, store_index_migrations[v]);
		if (r == 0)
			r = store_index_exec(db, set);
		if (r == 0)
			r = store_index_exec(db, "COMMIT");
		free(set);
		if (r < 0) {
			store_index_rollback(db);
			return -1;
		}
	}
	/*
	 * Into the database file now: a handle that changed no row closes
	 * without a checkpoint (store_index_close()), and a copy of the
	 * file alone should not miss the schema.
	 */
	if (sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE,
	        NULL, NULL) != SQLITE_OK)
		store_index_log(db, "checkpoint");
	return 0;
}

/*
 * The default VFS, except that a WAL file that exists is opened without
 * SQLITE_OPEN_CREATE. SQLite syncs the directory on the first sync of a
 * WAL it may have created, which made every delivery to a user whose
 * handle was not open wait for a directory sync besides its own. A WAL
 * this VFS creates has its directory synced at once instead (a handle
 * that only reads never syncs), so the entry of every WAL that exists is
 * durable.
 */
static sqlite3_vfs store_index_vfs;
static sqlite3_vfs *store_index_vfs_base;
static pthread_once_t store_index_vfs_once = PTHREAD_ONCE_INIT;

static int
store_index_vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
    int flags, int *outflags)
{
	sqlite3_vfs *base = store_index_vfs_base;
	const char *slash;
	char *dir;
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL) || !(flags & SQLITE_OPEN_CREATE) ||
	    name == NULL || (slash = strrchr(name, '/')) == NULL)
		return base->xOpen(base, name, f, flags, outflags);
	if (access(name, F_OK) == 0 &&
	    base->xOpen(base, name, f, flags & ~SQLITE_OPEN_CREATE, outflags) ==
	        SQLITE_OK)
		return SQLITE_OK;
	rc = base->xOpen(base, name, f, flags, outflags);
	dir = xstrndup(name, (size_t)(slash - name));
	if (rc == SQLITE_OK && store_maildir_fsync_dir(dir) < 0) {
		log_error("event=store op=fsync dir=%s error=\"%s\"", dir,
		    strerror(errno));
		f->pMethods->xClose(f);
		f->pMethods = NULL;
		rc = SQLITE_IOERR_DIR_FSYNC;
	}
	free(dir);
	return rc;
}

static void
store_index_vfs_init(void)
{
	store_index_vfs_base = sqlite3_vfs_find(NULL);
	if (store_index_vfs_base == NULL)
		return;
	store_index_vfs = *store_index_vfs_base;
	store_index_vfs.zName = "pushmail";
	store_index_vfs.pNext = NULL;
	store_index_vfs.xOpen = store_index_vfs_open;
	if (sqlite3_vfs_register(&store_index_vfs, 0) != SQLITE_OK)
		store_index_vfs_base = NULL;
}

/*
 * Opens (creating if need be) the index in userdir, sets WAL and
 * synchronous=FULL and brings the schema up to date. 0, or -1 (logged).
 */
int
store_index_open(const char *userdir, sqlite3 **out)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE, userdir);
	sqlite3 *db = NULL;
	int rc, persist = 1;

	pthread_once(&store_index_vfs_once, store_index_vfs_init);
	rc = sqlite3_open_v2(path, &db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    store_index_vfs_base != NULL ? "pushmail" : NULL);
	free(path);
	if (rc != SQLITE_OK) {
		log_error("event=store op=open dir=%s error=\"%s\"", userdir,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	/*
	 * Thousands of users may have a handle open: the default lookaside
	 * (about 120 KiB each) goes, a few KiB stay for the small
	 * allocations of one statement.
	 */
	sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 128, 32);
	/*
	 * The daemon owns its data directory (DESIGN.md), so each index is
	 * locked for the life of its handle: with locking_mode=EXCLUSIVE set
	 * before the first access, a WAL database keeps its index in memory
	 * instead of a -shm file. Opening a handle then neither truncates and
	 * rewrites 32 KiB of shared memory (5,000 SELECTs of a login storm had
	 * dirtied 340 MB that way, and the next fsync waited for them) nor
	 * takes a lock per transaction, and a handle costs two descriptors.
	 * The WAL stays between handles (truncated to nothing at close, thanks
	 * to journal_size_limit), so reopening does not create and unlink it.
	 */
	sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (store_index_exec(db, "PRAGMA locking_mode=EXCLUSIVE") < 0 ||
	    store_index_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    store_index_exec(db, "PRAGMA journal_size_limit=4194304") < 0 ||
	    store_index_exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    store_index_migrate(db) < 0) {
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

void
store_index_idle(sqlite3 *db)
{
	if (db != NULL)
		sqlite3_db_release_memory(db);
}

/*
 * Closes a handle so that the next one starts cheaply. SQLite checkpoints
 * the WAL at close, and the first commit after a complete checkpoint
 * restarts the log, which syncs its header: one more sync on the way of
 * the next delivery. So a handle that wrote checkpoints here (truncating
 * the WAL) and restarts the log at once, off that way, with a commit that
 * rewrites the schema version (it changes nothing but writes a page; an
 * UPDATE to the same value writes none), then closes without
 * checkpointing; one that wrote nothing just closes without checkpointing.
 * The WAL then holds one small transaction (about 4 KiB), which the next
 * open reads and the next write appends to.
 */
void
store_index_close(sqlite3 **db)
{
	int log = 0, done = 0, keep = 1;
	char *restart;

	if (*db == NULL)
		return;
	if (sqlite3_get_autocommit(*db) && sqlite3_total_changes64(*db) > 0) {
		restart =
		    xasprintf("PRAGMA user_version = %d", STORE_INDEX_VERSION);
		keep =
		    sqlite3_wal_checkpoint_v2(*db, "main",
		        SQLITE_CHECKPOINT_TRUNCATE, &log, &done) == SQLITE_OK &&
		    log == done && store_index_exec(*db, restart) == 0;
		free(restart);
	}
	if (keep)
		sqlite3_db_config(*db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
		    NULL);
	if (sqlite3_close(*db) != SQLITE_OK)
		store_index_log(*db, "close");
	*db = NULL;
}

int
store_index_begin(sqlite3 *db)
{
	return store_index_exec(db, "BEGIN IMMEDIATE");
}

int
store_index_commit(sqlite3 *db)
{
	return store_index_exec(db, "COMMIT");
}

/*
 * Sets the connection's PRAGMA synchronous to FULL (full set) or NORMAL,
 * outside a transaction. In WAL mode NORMAL skips the sync at commit; the
 * delivery pipeline's second syncfs(2) makes such a commit durable.
 */
int
store_index_set_full_sync(sqlite3 *db, int full)
{
	return store_index_exec(db,
	    full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

void
store_index_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *
store_index_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_index_log(db, "prepare");
		return NULL;
	}
	return st;
}

/* Steps a statement that returns no row, then finalizes it. */
static int
store_index_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_index_log(db, what);
		return -1;
	}
	return 0;
}

static char *
store_index_text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return xstrdup(s ? (const char *)s : "");
}

/* Looks a mailbox up by IMAP name; 0, or -1 when absent or on error. */
int
store_index_mailbox_find(sqlite3 *db, const char *name,
    struct store_mailbox *out)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "SELECT id, name, dir, uidvalidity, uidnext, highestmodseq "
	    "FROM mailbox WHERE name = ?");
	int r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->name = store_index_text(st, 1);
		out->dir = store_index_text(st, 2);
		out->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
		out->uidnext = (uint32_t)sqlite3_column_int64(st, 4);
		out->highestmodseq = (uint64_t)sqlite3_column_int64(st, 5);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

void
store_index_mailbox_deinit(struct store_mailbox *mb)
{
	free(mb->name);
	free(mb->dir);
	mb->name = mb->dir = NULL;
}

static int
store_index_meta_get(sqlite3 *db, const char *key, int64_t *out)
{
	sqlite3_stmt *st =
	    store_index_prepare(db, "SELECT value FROM meta WHERE key = ?");
	int r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	} else {
		store_index_log(db, "meta");
	}
	sqlite3_finalize(st);
	return r;
}

static int
store_index_meta_set(sqlite3 *db, const char *key, int64_t value)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	return store_index_done(db, st, "meta");
}

/*
 * Picks the UIDVALIDITY of a new mailbox: max(now, last + 1), or the value
 * saved in the folder when one survives there (an index being rebuilt), so
 * that no two incarnations of a name share one. Inside a transaction.
 */
static int
store_index_uidvalidity_next(sqlite3 *db, const char *folder, uint32_t *out)
{
	int64_t last, now = (int64_t)time(NULL);
	uint32_t saved;

	if (store_index_meta_get(db, "uidvalidity_last", &last) < 0)
		return -1;
	if (store_maildir_uidvalidity_read(folder, &saved) == 0) {
		*out = saved;
	} else {
		*out = (uint32_t)(now > last + 1 ? now : last + 1);
		if (store_maildir_uidvalidity_write(folder, *out) < 0) {
			log_error("event=store op=uidvalidity folder=%s "
			          "error=\"%s\"",
			    folder, strerror(errno));
			return -1;
		}
	}
	if (*out > last)
		last = *out;
	return store_index_meta_set(db, "uidvalidity_last", last);
}

static int
store_index_mailbox_insert(sqlite3 *db, const char *name, const char *dir,
    uint32_t uidvalidity, const char *special_use)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "INSERT INTO mailbox(name, dir, uidvalidity, special_use) "
	    "VALUES(?, ?, ?, ?)");

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dir, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uidvalidity);
	if (special_use != NULL)
		sqlite3_bind_text(st, 4, special_use, -1, SQLITE_STATIC);
	if (store_index_done(db, st, "mailbox_insert") < 0)
		return -1;
	st = store_index_prepare(db,
	    "INSERT OR IGNORE INTO subscription(name) VALUES(?)");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return store_index_done(db, st, "subscribe");
}

/*
 * Creates mailbox name (its folder on disk and its row, subscribed) within
 * the caller's transaction. Returns 0, or -1 for a bad name or an error.
 */
int
store_index_mailbox_create(sqlite3 *db, const char *userdir, const char *name,
    const char *special_use)
{
	char *dir = store_maildir_folder_dir(name);
	char *folder;
	uint32_t uidvalidity;
	int r = -1;

	if (dir == NULL)
		return -1;
	folder = xasprintf("%s/%s", userdir, dir);
	if (store_maildir_mkdirs(folder) < 0)
		log_error("event=store op=mkdir folder=%s error=\"%s\"", folder,
		    strerror(errno));
	else if (store_index_uidvalidity_next(db, folder, &uidvalidity) == 0)
		r = store_index_mailbox_insert(db,
		    dir[0] == '\0' ? "INBOX" : name, dir, uidvalidity,
		    special_use);
	free(folder);
	free(dir);
	return r;
}

int
store_index_usage(sqlite3 *db, uint64_t *bytes)
{
	int64_t v;

	if (store_index_meta_get(db, "usage_bytes", &v) < 0)
		return -1;
	*bytes = v < 0 ? 0 : (uint64_t)v;
	return 0;
}

/* Adds size and count (each may be negative) to the quota usage. */
static int
store_index_usage_add(sqlite3 *db, int64_t bytes, int64_t count)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "UPDATE meta SET value = value + CASE key "
	    "WHEN 'usage_bytes' THEN ?1 ELSE ?2 END "
	    "WHERE key IN ('usage_bytes', 'usage_messages')");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, bytes);
	sqlite3_bind_int64(st, 2, count);
	return store_index_done(db, st, "usage");
}

/* Takes the next UID and MODSEQ and updates the counters for a new message. */
static int
store_index_mailbox_bump(sqlite3 *db, struct store_msg *m)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "UPDATE mailbox SET uidnext = uidnext + 1,"
	    " highestmodseq = highestmodseq + 1, messages = messages + 1,"
	    " unseen = unseen + ?2, bytes = bytes + ?3 WHERE id = ?1 "
	    "RETURNING uidnext - 1, highestmodseq");
	int r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, m->mailbox_id);
	sqlite3_bind_int(st, 2, (m->flags & STORE_FLAG_SEEN) ? 0 : 1);
	sqlite3_bind_int64(st, 3, (int64_t)m->size);
	if (sqlite3_step(st) == SQLITE_ROW) {
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	}
	if (r < 0)
		store_index_log(db, "mailbox_bump");
	sqlite3_finalize(st);
	return r;
}

static void
store_index_bind_opt(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

static void
store_index_bind_mime(sqlite3_stmt *st, const struct store_msg *m)
{
	const struct mime_info *mi = m->mime;

	sqlite3_bind_int64(st, 11, (int64_t)(mi->header_size + m->prefix_len));
	sqlite3_bind_int64(st, 12,
	    (int64_t)mi->lines + (m->prefix_len ? 2 : 0));
	store_index_bind_opt(st, 13, mi->envelope);
	store_index_bind_opt(st, 14, mi->body);
	store_index_bind_opt(st, 15, mi->bodystructure);
	store_index_bind_opt(st, 16, mi->partmap);
	store_index_bind_opt(st, 17, mi->subject);
	store_index_bind_opt(st, 18, mi->from);
	store_index_bind_opt(st, 19, mi->to);
	store_index_bind_opt(st, 20, mi->cc);
	store_index_bind_opt(st, 21, mi->message_id);
	store_index_bind_opt(st, 22, mi->in_reply_to);
	store_index_bind_opt(st, 23, mi->references);
	if (mi->date != (time_t)-1)
		sqlite3_bind_int64(st, 24, (int64_t)mi->date);
}

/*
 * Adds message m within the caller's transaction: takes UID = uidnext and
 * MODSEQ = highestmodseq + 1, names the file "<unique>,U=<uid>,S=<size>",
 * sets all three in m (the caller frees m->file), inserts the row and
 * updates the mailbox counters and quota usage.
 */
int
store_index_message_add(sqlite3 *db, struct store_msg *m)
{
	sqlite3_stmt *st;

	if (store_index_mailbox_bump(db, m) < 0 ||
	    store_index_usage_add(db, (int64_t)m->size, 1) < 0)
		return -1;
	free(m->file);
	m->file = store_maildir_final(m->unique, m->uid, m->size);
	st = store_index_prepare(db,
	    "INSERT INTO message(mailbox_id, uid, file, in_cur, flags, modseq,"
	    " size, internaldate, saved_date, prefix_size, header_size, lines,"
	    " envelope, body, bodystructure, partmap, subject, from_addr,"
	    " to_addr, cc_addr, message_id, in_reply_to, refs, date_sent) "
	    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, m->mailbox_id);
	sqlite3_bind_int64(st, 2, m->uid);
	sqlite3_bind_text(st, 3, m->file, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, m->in_cur);
	sqlite3_bind_int(st, 5, (int)m->flags);
	sqlite3_bind_int64(st, 6, (int64_t)m->modseq);
	sqlite3_bind_int64(st, 7, (int64_t)m->size);
	sqlite3_bind_int64(st, 8, (int64_t)m->internaldate);
	sqlite3_bind_int64(st, 9, (int64_t)time(NULL));
	sqlite3_bind_int64(st, 10, (int64_t)m->prefix_len);
	store_index_bind_mime(st, m);
	return store_index_done(db, st, "message_add");
}

/* Sets a message's file name and place (new/ or cur/). */
int
store_index_message_set_file(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
    const char *file, int in_cur)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "UPDATE message SET file = ?3, in_cur = ?4 "
	    "WHERE mailbox_id = ?1 AND uid = ?2");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, in_cur);
	return store_index_done(db, st, "message_set_file");
}

/*
 * Removes a message row within the caller's transaction, leaving a
 * tombstone with a new MODSEQ and updating counters and quota usage.
 */
int
store_index_message_expunge(sqlite3 *db, int64_t mailbox_id, uint32_t uid)
{
	sqlite3_stmt *st = store_index_prepare(db,
	    "DELETE FROM message WHERE mailbox_id = ?1 AND uid = ?2 "
	    "RETURNING size, flags");
	int64_t size = 0;
	int seen = 0, r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) == SQLITE_ROW) {
		size = sqlite3_column_int64(st, 0);
		seen = (sqlite3_column_int(st, 1) & STORE_FLAG_SEEN) != 0;
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	if (r < 0) {
		store_index_log(db, "expunge");
		return -1;
	}
	st = store_index_prepare(db,
	    "UPDATE mailbox SET highestmodseq = highestmodseq + 1,"
	    " messages = messages - 1, unseen = unseen - ?2,"
	    " bytes = bytes - ?3 WHERE id = ?1;");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, seen ? 0 : 1);
	sqlite3_bind_int64(st, 3, size);
	if (store_index_done(db, st, "expunge_counters") < 0)
		return -1;
	st = store_index_prepare(db,
	    "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) "
	    "SELECT id, ?2, highestmodseq FROM mailbox WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if (store_index_done(db, st, "tombstone") < 0)
		return -1;
	return store_index_usage_add(db, -size, -1);
}
