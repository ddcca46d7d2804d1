/*
 * APPEND and MULTIAPPEND (RFC 3501 section 6.3.11, RFC 3502, APPENDUID of
 * RFC 4315 section 3) as a user task: every file is written to the
 * folder's tmp/ and fdatasynced, all rows commit in one synchronous=FULL
 * transaction, the files are renamed into cur/ (or new/ without flags) and
 * the directories fsynced, then the new messages are announced like
 * deliveries. Before the commit nothing is visible; after it, everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_append.h"
#include "store/store_int.h"

/* One message of the job. */
struct store_append_item {
	char *data;
	size_t len;
	unsigned flags;
	char **kw; /* as asked; nkw of them */
	size_t nkw;
	char *kwtext; /* as committed: space separated, "" for none */
	time_t internaldate;
	char *unique;
	char *tmp;   /* the staged file, once written */
	int written; /* tmp exists */
	struct store_msg msg;
};

struct store_append_job {
	struct store_task task; /* first */
	char *mailbox;
	struct store_append_item *items;
	size_t n;
	uint64_t quota;
	struct store_mailbox mb;
	enum store_append_status status;
	store_append_cb cb;
	void *arg;
};

/* <user>/<folder>/<sub>[/<name>]. */
static char *
store_append_path(struct store_append_job *j, const char *sub, const char *name)
{
	const char *dir = j->mb.dir;

	return xasprintf("%s/%s%s%s%s%s", j->task.user->dir, dir,
	    dir[0] != '\0' ? "/" : "", sub, name != NULL ? "/" : "",
	    name != NULL ? name : "");
}

/* ------------------------------------------------------------------ */
/* Keywords. */

/* Whether the space-separated list holds name (len bytes), any case. */
static int
store_append_kw_listed(const char *list, const char *name, size_t len)
{
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n == len && strncasecmp(p, name, len) == 0)
			return 1;
		p += n;
		p += strspn(p, " ");
	}
	return 0;
}

/*
 * The spelling the mailbox knows for name (RFC 3501 section 2.3.2:
 * keywords are defined per mailbox, without case), defining it when new.
 * Returns a new string, or NULL on an SQLite error.
 */
static char *
store_append_kw_define(struct store_append_job *j, sqlite3 *db,
    const char *name)
{
	sqlite3_stmt *st;
	char *known = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT name FROM mailbox_keyword WHERE mailbox_id = ?1"
	        " AND name = ?2 COLLATE NOCASE",
	        -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, j->mb.id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		known = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (known != NULL)
		return known;
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO mailbox_keyword(mailbox_id, name) VALUES(?1, ?2)",
	        -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, j->mb.id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? xstrdup(name) : NULL;
}

/* Worker: the item's keywords, defined and written into its row. */
static int
store_append_keywords(struct store_append_job *j, sqlite3 *db,
    struct store_append_item *it)
{
	struct mime_buf list = {0};
	sqlite3_stmt *st;
	int rc = 0;

	mime_buf_adds(&list, "");
	for (size_t k = 0; k < it->nkw && rc == 0; k++) {
		char *name;

		if (store_append_kw_listed(list.data, it->kw[k],
		        strlen(it->kw[k])))
			continue;
		name = store_append_kw_define(j, db, it->kw[k]);
		if (name == NULL)
			rc = -1;
		else if (list.len > 0)
			mime_buf_addc(&list, ' ');
		if (name != NULL)
			mime_buf_adds(&list, name);
		free(name);
	}
	it->kwtext = mime_buf_finish(&list);
	if (rc < 0 || it->kwtext[0] == '\0')
		return rc;
	if (sqlite3_prepare_v2(db,
	        "UPDATE message SET keywords = ?3"
	        " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mb.id);
	sqlite3_bind_int64(st, 2, it->msg.uid);
	sqlite3_bind_text(st, 3, it->kwtext, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The worker's steps. */

/* Writes and fdatasyncs every file into tmp/; 0, or -1 (logged). */
static int
store_append_stage(struct store_append_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct store_append_item *it = &j->items[i];

		it->tmp = store_append_path(j, "tmp", it->unique);
		if (store_maildir_write(it->tmp, "", it->data, it->len, 1) <
		    0) {
			log_error("event=append user=%s op=write error=\"%s\"",
			    j->task.user->name, strerror(errno));
			return -1;
		}
		it->written = 1;
	}
	return 0;
}

/* One row with its parsed MIME data and keywords, in the transaction. */
static int
store_append_row(struct store_append_job *j, sqlite3 *db,
    struct store_append_item *it)
{
	struct mime_info mime = {0};
	int r;

	it->msg.mailbox_id = j->mb.id;
	it->msg.unique = it->unique;
	it->msg.in_cur = it->flags != 0;
	it->msg.flags = it->flags;
	it->msg.size = it->len;
	it->msg.internaldate = it->internaldate;
	it->msg.mime = &mime;
	mime_parse(it->data, it->len, &mime);
	r = store_index_message_add(db, &it->msg);
	it->msg.mime = NULL;
	mime_info_deinit(&mime);
	if (r == 0)
		r = store_append_keywords(j, db, it);
	return r;
}

/* All rows in one synchronous=FULL transaction; 0, or -1 (logged). */
static int
store_append_rows(struct store_append_job *j, sqlite3 *db)
{
	int r;

	if (store_index_begin(db) < 0)
		return -1;
	r = 0;
	for (size_t i = 0; i < j->n && r == 0; i++)
		r = store_append_row(j, db, &j->items[i]);
	if (r == 0)
		r = store_index_commit(db);
	if (r < 0) {
		log_error("event=append user=%s op=commit error=\"%s\"",
		    j->task.user->name, sqlite3_errmsg(db));
		store_index_rollback(db);
		/* Nothing committed: forget the UIDs the rows had taken. */
		for (size_t i = 0; i < j->n; i++)
			j->items[i].msg.uid = 0;
	}
	return r;
}

/* Renames one staged file into place; returns -1 on failure. */
static int
store_append_rename(struct store_append_job *j, struct store_append_item *it)
{
	char letters[8], *name, *to;
	int r;

	store_maildir_flag_letters(it->flags, letters);
	name = xasprintf("%s%s%s", it->msg.file, it->msg.in_cur ? ":2," : "",
	    it->msg.in_cur ? letters : "");
	to = store_append_path(j, it->msg.in_cur ? "cur" : "new", name);
	r = rename(it->tmp, to);
	free(name);
	free(to);
	return r;
}

/*
 * Worker: renames every file into place, then fsyncs each directory that
 * got one. The rows are the truth: store_recover() finishes what fails.
 */
static void
store_append_place(struct store_append_job *j)
{
	int used[2] = {0, 0}, r = 0;

	for (size_t i = 0; i < j->n; i++) {
		if (store_append_rename(j, &j->items[i]) < 0)
			r = -1;
		used[j->items[i].msg.in_cur] = 1;
	}
	for (int k = 0; k < 2 && r == 0; k++) {
		char *dir = used[k] ?
		    store_append_path(j, k ? "cur" : "new", NULL) :
		    NULL;

		if (dir != NULL && store_maildir_fsync_dir(dir) < 0)
			r = -1;
		free(dir);
	}
	if (r < 0) {
		log_error("event=append user=%s op=place error=\"%s\"",
		    j->task.user->name, strerror(errno));
		j->status = STORE_APPEND_IO;
	}
}

/* Worker: removes the staged files of a batch that did not commit. */
static void
store_append_unstage(struct store_append_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		if (j->items[i].written)
			unlink(j->items[i].tmp);
}

/* Worker: quota, then files, rows and renames. */
static void
store_append_store(struct store_append_job *j, sqlite3 *db)
{
	uint64_t usage = 0, total = 0;

	if (store_index_usage(db, &usage) < 0)
		return;
	for (size_t i = 0; i < j->n; i++)
		total += j->items[i].len;
	if (j->quota > 0 && usage + total > j->quota) {
		j->status = STORE_APPEND_QUOTA;
		return;
	}
	if (store_append_stage(j) < 0 || store_append_rows(j, db) < 0) {
		store_append_unstage(j);
		return;
	}
	j->status = STORE_APPEND_OK;
	store_append_place(j);
}

static void
store_append_run(struct store_task *t, sqlite3 *db)
{
	struct store_append_job *j = (struct store_append_job *)t;
	int r;

	if (db == NULL)
		return;
	r = store_index_mailbox_find(db, j->mailbox, &j->mb);
	if (r != 0 || j->mb.dir == NULL) {
		j->status = STORE_APPEND_NOMAILBOX;
		return;
	}
	store_append_store(j, db);
}

/* ------------------------------------------------------------------ */
/* The loop thread. */

/* Announces one committed message as a delivery would. */
static void
store_append_announce(struct store_append_job *j,
    const struct store_append_item *it)
{
	struct store *store = j->task.store;
	struct store_change c = {
	    .kind = STORE_CHANGE_NEW,
	    .user = j->task.user->name,
	    .mailbox = j->mailbox,
	    .mailbox_id = j->mb.id,
	    .uidvalidity = j->mb.uidvalidity,
	    .uid = it->msg.uid,
	    .modseq = it->msg.modseq,
	    .flags = it->flags,
	    .size = it->len,
	};

	store_view_apply(store, &c,
	    it->kwtext != NULL && it->kwtext[0] != '\0' ? it->kwtext : NULL);
	if (store->change_cb != NULL)
		store->change_cb(&c, store->change_arg);
}

static void
store_append_item_deinit(struct store_append_item *it)
{
	for (size_t k = 0; k < it->nkw; k++)
		free(it->kw[k]);
	free(it->kw);
	free(it->kwtext);
	free(it->msg.file);
	free(it->unique);
	free(it->tmp);
	free(it->data);
}

static void
store_append_done(struct store_task *t)
{
	struct store_append_job *j = (struct store_append_job *)t;
	uint32_t *uids = xcalloc(j->n, sizeof(*uids));
	size_t n = 0;

	/* Committed rows are announced even when a rename failed. */
	for (size_t i = 0; i < j->n; i++) {
		if (j->items[i].msg.uid == 0)
			continue;
		store_append_announce(j, &j->items[i]);
		uids[n++] = j->items[i].msg.uid;
	}
	if (j->status == STORE_APPEND_OK)
		j->cb(j->status, j->mb.uidvalidity, uids, n, j->arg);
	else
		j->cb(j->status, j->mb.uidvalidity, NULL, 0, j->arg);
	free(uids);
	store_index_mailbox_deinit(&j->mb);
	for (size_t i = 0; i < j->n; i++)
		store_append_item_deinit(&j->items[i]);
	free(j->items);
	free(j->mailbox);
	free(j);
}

/* Copies one message into the job. */
static void
store_append_item_init(struct store *store, struct store_append_item *it,
    const struct store_append_msg *m)
{
	it->data = xmalloc(m->len ? m->len : 1);
	if (m->len > 0)
		memcpy(it->data, m->data, m->len);
	it->len = m->len;
	it->flags = m->flags;
	it->internaldate = m->internaldate;
	it->nkw = m->nkw;
	it->kw = xcalloc(m->nkw ? m->nkw : 1, sizeof(*it->kw));
	for (size_t k = 0; k < m->nkw; k++)
		it->kw[k] = xstrdup(m->keywords[k]);
	it->unique = store_maildir_unique(store);
}

void
store_append(struct store *store, const char *user, const char *mailbox,
    const struct store_append_msg *msgs, size_t n, uint64_t quota,
    store_append_cb cb, void *arg)
{
	struct store_append_job *j = xcalloc(1, sizeof(*j));

	j->mailbox = xstrdup(mailbox);
	j->items = xcalloc(n ? n : 1, sizeof(*j->items));
	for (size_t i = 0; i < n; i++)
		store_append_item_init(store, &j->items[i], &msgs[i]);
	j->n = n;
	j->quota = quota;
	j->status = STORE_APPEND_IO;
	j->cb = cb;
	j->arg = arg;
	j->task.run = store_append_run;
	j->task.done = store_append_done;
	store_task_submit(store, user, &j->task);
}
