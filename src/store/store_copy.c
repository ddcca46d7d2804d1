/*
 * COPY and MOVE (RFC 3501 section 6.4.7, RFC 6851, COPYUID of RFC 4315
 * section 3) as a user task: each source row is duplicated under the
 * destination's next UID, its file hard-linked into the destination
 * folder, and the rows commit together once the links are durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_copy.h"
#include "store/store_int.h"

/* One message to copy, as its source row has it. */
struct store_copy_item {
	uint32_t src_uid;
	uint32_t dst_uid;
	uint64_t modseq;
	char *file; /* the source file name, without ":2," */
	int in_cur;
	unsigned flags;
	char *keywords; /* space separated, "" for none */
	uint64_t size;
	char *link; /* the destination path once created */
};

struct store_copy_job {
	struct store_task task; /* first */
	int64_t src_id;
	uint32_t *uids;
	size_t n;
	char *dst_name;
	uint64_t quota;
	char *src_dir;
	struct store_mailbox mb;
	struct store_copy_item *items;
	size_t nitems;
	int committed;
	enum store_copy_status status;
	store_copy_cb cb;
	void *arg;
};

/* Steps a statement to its end and finalizes it; 0 or -1. */
static int
store_copy_step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static sqlite3_stmt *
store_copy_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

/* Worker: the source folder, relative to the user's directory. */
static int
store_copy_src_dir(struct store_copy_job *j, sqlite3 *db)
{
	sqlite3_stmt *st =
	    store_copy_prepare(db, "SELECT dir FROM mailbox WHERE id = ?1");
	int r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->src_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		j->src_dir = xstrdup((const char *)sqlite3_column_text(st, 0));
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

/* Worker: reads the source rows that still exist into j->items. */
static int
store_copy_load(struct store_copy_job *j, sqlite3 *db)
{
	sqlite3_stmt *st = store_copy_prepare(db,
	    "SELECT file, in_cur, flags, keywords, size FROM message"
	    " WHERE mailbox_id = ?1 AND uid = ?2");

	if (st == NULL)
		return -1;
	j->items = xcalloc(j->n + 1, sizeof(*j->items));
	for (size_t i = 0; i < j->n; i++) {
		struct store_copy_item *it = &j->items[j->nitems];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->src_id);
		sqlite3_bind_int64(st, 2, j->uids[i]);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue;
		it->src_uid = j->uids[i];
		it->file = xstrdup((const char *)sqlite3_column_text(st, 0));
		it->in_cur = sqlite3_column_int(st, 1);
		it->flags = (unsigned)sqlite3_column_int(st, 2);
		it->keywords =
		    xstrdup((const char *)sqlite3_column_text(st, 3));
		it->size = (uint64_t)sqlite3_column_int64(st, 4);
		j->nitems++;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Worker: takes the destination's next UID and MODSEQ for it. */
static int
store_copy_bump(struct store_copy_job *j, sqlite3 *db,
    struct store_copy_item *it)
{
	sqlite3_stmt *st = store_copy_prepare(db,
	    "UPDATE mailbox SET uidnext = uidnext + 1,"
	    " highestmodseq = highestmodseq + 1, messages = messages + 1,"
	    " unseen = unseen + ?2, bytes = bytes + ?3 WHERE id = ?1 "
	    "RETURNING uidnext - 1, highestmodseq");
	int r = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->mb.id);
	sqlite3_bind_int(st, 2, (it->flags & STORE_FLAG_SEEN) ? 0 : 1);
	sqlite3_bind_int64(st, 3, (int64_t)it->size);
	if (sqlite3_step(st) == SQLITE_ROW) {
		it->dst_uid = (uint32_t)sqlite3_column_int64(st, 0);
		it->modseq = (uint64_t)sqlite3_column_int64(st, 1);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	return r;
}

/* Worker: the new row, a copy of the source row but for its identity. */
static int
store_copy_insert(struct store_copy_job *j, sqlite3 *db,
    struct store_copy_item *it, const char *file)
{
	sqlite3_stmt *st = store_copy_prepare(db,
	    "INSERT INTO message(mailbox_id, uid, file, in_cur, flags,"
	    " keywords, modseq, size, internaldate, saved_date, prefix_size,"
	    " header_size, lines, envelope, body, bodystructure, partmap,"
	    " subject, from_addr, to_addr, cc_addr, message_id, in_reply_to,"
	    " refs, date_sent) "
	    "SELECT ?1, ?2, ?3, ?4, flags, keywords, ?5, size, internaldate,"
	    " ?6, prefix_size, header_size, lines, envelope, body,"
	    " bodystructure, partmap, subject, from_addr, to_addr, cc_addr,"
	    " message_id, in_reply_to, refs, date_sent FROM message"
	    " WHERE mailbox_id = ?7 AND uid = ?8");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->mb.id);
	sqlite3_bind_int64(st, 2, it->dst_uid);
	sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, it->flags != 0);
	sqlite3_bind_int64(st, 5, (int64_t)it->modseq);
	sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
	sqlite3_bind_int64(st, 7, j->src_id);
	sqlite3_bind_int64(st, 8, it->src_uid);
	if (store_copy_step(st) < 0 || sqlite3_changes(db) != 1)
		return -1;
	return 0;
}

/* Worker: the copy's keywords become keywords of the destination too. */
static int
store_copy_keywords(struct store_copy_job *j, sqlite3 *db,
    const struct store_copy_item *it)
{
	char *list = xstrdup(it->keywords), *save = NULL;
	int r = 0;

	for (char *k = strtok_r(list, " ", &save); k != NULL && r == 0;
	     k = strtok_r(NULL, " ", &save)) {
		sqlite3_stmt *st = store_copy_prepare(db,
		    "INSERT OR IGNORE INTO mailbox_keyword(mailbox_id, name)"
		    " VALUES(?1, ?2)");

		if (st == NULL) {
			r = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, j->mb.id);
		sqlite3_bind_text(st, 2, k, -1, SQLITE_STATIC);
		r = store_copy_step(st);
	}
	free(list);
	return r;
}

/* Worker: adds the copies to the quota usage. */
static int
store_copy_usage(struct store_copy_job *j, sqlite3 *db, uint64_t bytes)
{
	sqlite3_stmt *st = store_copy_prepare(db,
	    "UPDATE meta SET value = value + CASE key "
	    "WHEN 'usage_bytes' THEN ?1 ELSE ?2 END "
	    "WHERE key IN ('usage_bytes', 'usage_messages')");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)bytes);
	sqlite3_bind_int64(st, 2, (int64_t)j->nitems);
	return store_copy_step(st);
}

/* <user>/<folder>/<sub>[/<name>]. */
static char *
store_copy_path(struct store_copy_job *j, const char *folder, const char *sub,
    const char *name)
{
	return xasprintf("%s/%s%s%s%s%s", j->task.user->dir, folder,
	    folder[0] != '\0' ? "/" : "", sub, name != NULL ? "/" : "",
	    name != NULL ? name : "");
}

/* Worker: copies the bytes of from into a new file to, fdatasynced. */
static int
store_copy_bytes(const char *from, const char *to)
{
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *data;
	ssize_t got = -1;
	int r;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -1;
	}
	data = xmalloc((size_t)sb.st_size + 1);
	got = pread(fd, data, (size_t)sb.st_size, 0);
	close(fd);
	r = got == sb.st_size ?
	    store_maildir_write(to, "", data, (size_t)got, 1) :
	    -1;
	free(data);
	return r;
}

/* Worker: <folder>/{new,cur}/<file>[:2,<letters>]. */
static char *
store_copy_file_path(struct store_copy_job *j, const char *folder,
    const char *file, int in_cur, unsigned flags)
{
	char letters[8], *name, *path;

	store_maildir_flag_letters(flags, letters);
	name = xasprintf("%s%s%s", file, in_cur ? ":2," : "",
	    in_cur ? letters : "");
	path = store_copy_path(j, folder, in_cur ? "cur" : "new", name);
	free(name);
	return path;
}

/* Worker: the destination file, a hard link to the source's when it can. */
static int
store_copy_link(struct store_copy_job *j, struct store_copy_item *it,
    const char *file)
{
	char *src = store_copy_file_path(j, j->src_dir, it->file, it->in_cur,
	    it->flags);
	int r;

	it->link =
	    store_copy_file_path(j, j->mb.dir, file, it->flags != 0, it->flags);
	r = link(src, it->link);
	if (r < 0 && (errno == EXDEV || errno == EMLINK))
		r = store_copy_bytes(src, it->link);
	if (r < 0) {
		log_error("event=copy user=%s op=link file=%s error=\"%s\"",
		    j->task.user->name, src, strerror(errno));
		free(it->link);
		it->link = NULL;
	}
	free(src);
	return r;
}

/* Worker: one copy's row, keywords and file, inside the transaction. */
static int
store_copy_one(struct store_copy_job *j, sqlite3 *db,
    struct store_copy_item *it, char *unique)
{
	char *file;
	int r = -1;

	if (store_copy_bump(j, db, it) < 0)
		return -1;
	file = store_maildir_final(unique, it->dst_uid, it->size);
	if (store_copy_insert(j, db, it, file) == 0 &&
	    store_copy_keywords(j, db, it) == 0 &&
	    store_copy_link(j, it, file) == 0)
		r = 0;
	free(file);
	return r;
}

/* Worker: makes the destination's cur/ and new/ entries durable. */
static int
store_copy_sync(struct store_copy_job *j)
{
	char *cur = store_copy_path(j, j->mb.dir, "cur", NULL);
	char *new = store_copy_path(j, j->mb.dir, "new", NULL);
	int r = 0;

	if (store_maildir_fsync_dir(cur) < 0 ||
	    store_maildir_fsync_dir(new) < 0)
		r = -1;
	free(cur);
	free(new);
	return r;
}

/* Worker: removes the files linked for a transaction that did not commit. */
static void
store_copy_unlink(struct store_copy_job *j)
{
	for (size_t i = 0; i < j->nitems; i++) {
		if (j->items[i].link != NULL)
			unlink(j->items[i].link);
		free(j->items[i].link);
		j->items[i].link = NULL;
	}
}

/*
 * Worker: rows and links in one transaction, committed after the fsync.
 * TODO(copy-crash): a crash after the links are synced and before the
 * commit leaves files without rows, which store_recover() takes for a
 * foreign delivery: the copies appear once more after restart. The fix is
 * a marker in the name (or a journal row) that recovery unlinks.
 */
static int
store_copy_commit(struct store_copy_job *j, sqlite3 *db, uint64_t bytes)
{
	int r = 0;

	if (store_index_begin(db) < 0)
		return -1;
	for (size_t i = 0; i < j->nitems && r == 0; i++) {
		char *unique = store_maildir_unique(j->task.store);

		r = store_copy_one(j, db, &j->items[i], unique);
		free(unique);
	}
	if (r == 0)
		r = store_copy_usage(j, db, bytes);
	if (r == 0)
		r = store_copy_sync(j);
	if (r == 0)
		r = store_index_commit(db);
	if (r < 0) {
		store_index_rollback(db);
		store_copy_unlink(j);
	}
	return r;
}

/* Worker: quota, then the copies. */
static void
store_copy_store(struct store_copy_job *j, sqlite3 *db)
{
	uint64_t usage = 0, bytes = 0;

	if (store_copy_src_dir(j, db) < 0 || store_copy_load(j, db) < 0 ||
	    store_index_usage(db, &usage) < 0)
		return;
	for (size_t i = 0; i < j->nitems; i++)
		bytes += j->items[i].size;
	if (j->quota > 0 && bytes > 0 && usage + bytes > j->quota) {
		j->status = STORE_COPY_QUOTA;
		return;
	}
	if (j->nitems > 0 && store_copy_commit(j, db, bytes) < 0) {
		log_error("event=copy user=%s op=commit error=\"%s\"",
		    j->task.user->name, sqlite3_errmsg(db));
		return;
	}
	j->committed = j->nitems > 0;
	j->status = STORE_COPY_OK;
}

static void
store_copy_run(struct store_task *t, sqlite3 *db)
{
	struct store_copy_job *j = (struct store_copy_job *)t;

	if (db == NULL)
		return;
	if (store_index_mailbox_find(db, j->dst_name, &j->mb) != 0 ||
	    j->mb.dir == NULL) {
		j->status = STORE_COPY_NOMAILBOX;
		return;
	}
	store_copy_store(j, db);
}

/* Loop thread: announces each copy as a delivery would, in UID order. */
static void
store_copy_announce(struct store_copy_job *j)
{
	struct store *store = j->task.store;

	for (size_t i = 0; i < j->nitems; i++) {
		const struct store_copy_item *it = &j->items[i];
		struct store_change c = {
		    .kind = STORE_CHANGE_NEW,
		    .user = j->task.user->name,
		    .mailbox = j->mb.name,
		    .mailbox_id = j->mb.id,
		    .uidvalidity = j->mb.uidvalidity,
		    .uid = it->dst_uid,
		    .modseq = it->modseq,
		    .flags = it->flags,
		    .size = it->size,
		};

		store_view_apply(store, &c,
		    it->keywords[0] != '\0' ? it->keywords : NULL);
		if (store->change_cb != NULL)
			store->change_cb(&c, store->change_arg);
	}
}

/* Loop thread: the result lists, the callback, then everything freed. */
static void
store_copy_done(struct store_task *t)
{
	struct store_copy_job *j = (struct store_copy_job *)t;
	size_t n = j->committed ? j->nitems : 0;
	uint32_t *src = xcalloc(n + 1, sizeof(*src));
	uint32_t *dst = xcalloc(n + 1, sizeof(*dst));

	if (j->committed)
		store_copy_announce(j);
	for (size_t i = 0; i < n; i++) {
		src[i] = j->items[i].src_uid;
		dst[i] = j->items[i].dst_uid;
	}
	j->cb(j->status, j->mb.uidvalidity, src, dst, n, j->arg);
	for (size_t i = 0; i < j->nitems; i++) {
		free(j->items[i].file);
		free(j->items[i].keywords);
		free(j->items[i].link);
	}
	free(src);
	free(dst);
	free(j->items);
	store_index_mailbox_deinit(&j->mb);
	free(j->src_dir);
	free(j->dst_name);
	free(j->uids);
	free(j);
}

void
store_copy(struct store *store, const char *user, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, const char *dst_mailbox, uint64_t quota,
    store_copy_cb cb, void *arg)
{
	struct store_copy_job *j = xcalloc(1, sizeof(*j));

	j->src_id = src_mailbox_id;
	j->uids = xcalloc(n + 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->dst_name = xstrdup(dst_mailbox);
	j->quota = quota;
	j->status = STORE_COPY_IO;
	j->cb = cb;
	j->arg = arg;
	j->task.run = store_copy_run;
	j->task.done = store_copy_done;
	store_task_submit(store, user, &j->task);
}
