/*
 * Flag changes made by the server itself: the implicit \Seen of FETCH
 * BODY[] and RFC822 (RFC 3501 section 6.4.5). Flags and MODSEQ (RFC 7162)
 * change in one synchronous=FULL transaction, the files move to cur/ with
 * their ":2," letters, and each change is announced like a delivery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_fetch.h"
#include "store/store_int.h"

struct store_flags_job {
	struct store_task task; /* first */
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	store_flags_cb cb;
	void *arg;
	char *mailbox; /* IMAP name */
	char *folder;  /* relative to the user's directory */
	uint32_t uidvalidity;
	struct store_change *changes; /* committed, to announce */
	char **from, **to;            /* renames after the commit */
	size_t nchanges;
	enum store_view_status status;
};

static int
store_flags_mailbox(struct store_flags_job *j, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT name, dir, uidvalidity FROM mailbox WHERE id = ?", -1,
	        &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		j->mailbox = xstrdup((const char *)sqlite3_column_text(st, 0));
		j->folder = xstrdup((const char *)sqlite3_column_text(st, 1));
		j->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* A file name in the folder: {new,cur}/<file>[:2,<letters>]. */
static char *
store_flags_path(struct store_flags_job *j, const char *file, int in_cur,
    unsigned flags)
{
	char letters[8];

	store_maildir_flag_letters(flags, letters);
	return xasprintf("%s/%s%s%s/%s%s%s", j->task.user->dir, j->folder,
	    j->folder[0] != '\0' ? "/" : "", in_cur ? "cur" : "new", file,
	    in_cur ? ":2," : "", in_cur ? letters : "");
}

/*
 * Sets \Seen on one row (st selected it) with the next MODSEQ; records the
 * change and the rename. Returns 0, or -1 on an SQLite error.
 */
static int
store_flags_one(struct store_flags_job *j, sqlite3 *db, sqlite3_stmt *sel,
    uint32_t uid)
{
	const char *file = (const char *)sqlite3_column_text(sel, 0);
	int in_cur = sqlite3_column_int(sel, 1);
	unsigned flags = (unsigned)sqlite3_column_int(sel, 2);
	struct store_change *c = &j->changes[j->nchanges];
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET highestmodseq = highestmodseq + 1,"
	        " unseen = unseen - 1 WHERE id = ?1 RETURNING highestmodseq",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	rc = sqlite3_step(st);
	c->modseq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW ||
	    sqlite3_prepare_v2(db,
	        "UPDATE message SET flags = ?3, modseq = ?4, in_cur = 1"
	        " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int(st, 3, (int)(flags | STORE_FLAG_SEEN));
	sqlite3_bind_int64(st, 4, (int64_t)c->modseq);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	c->uid = uid;
	c->flags = flags | STORE_FLAG_SEEN;
	c->size = (uint64_t)sqlite3_column_int64(sel, 3);
	j->from[j->nchanges] = store_flags_path(j, file, in_cur, flags);
	j->to[j->nchanges++] = store_flags_path(j, file, 1, c->flags);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Every UID asked for whose row exists without \Seen. */
static int
store_flags_rows(struct store_flags_job *j, sqlite3 *db)
{
	sqlite3_stmt *sel;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT file, in_cur, flags, size FROM message"
	        " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &sel, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < j->n && rc == 0; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, j->mailbox_id);
		sqlite3_bind_int64(sel, 2, j->uids[i]);
		if (sqlite3_step(sel) != SQLITE_ROW ||
		    (sqlite3_column_int(sel, 2) & STORE_FLAG_SEEN) != 0)
			continue;
		rc = store_flags_one(j, db, sel, j->uids[i]);
	}
	sqlite3_finalize(sel);
	return rc;
}

/*
 * Worker: the rows commit first, then the files move. A crash between the
 * two leaves names recovery corrects: the row is the truth.
 */
static void
store_flags_run(struct store_task *t, sqlite3 *db)
{
	struct store_flags_job *j = (struct store_flags_job *)t;
	char *cur;

	if (db == NULL || store_index_begin(db) < 0)
		return;
	if (store_flags_mailbox(j, db) < 0 || store_flags_rows(j, db) < 0 ||
	    store_index_commit(db) < 0) {
		log_error("event=store op=set_seen error=\"%s\"",
		    sqlite3_errmsg(db));
		store_index_rollback(db);
		j->nchanges = 0;
		return;
	}
	j->status = STORE_VIEW_OK;
	for (size_t i = 0; i < j->nchanges; i++)
		if (rename(j->from[i], j->to[i]) < 0)
			log_warn("event=store op=set_seen uid=%u error=\"%s\"",
			    j->changes[i].uid, strerror(errno));
	cur = xasprintf("%s/%s%scur", j->task.user->dir, j->folder,
	    j->folder[0] != '\0' ? "/" : "");
	if (j->nchanges > 0)
		store_maildir_fsync_dir(cur);
	free(cur);
}

/* Loop thread: announces each change as a delivery would, then answers. */
static void
store_flags_done(struct store_task *t)
{
	struct store_flags_job *j = (struct store_flags_job *)t;
	struct store *store = j->task.store;

	for (size_t i = 0; i < j->nchanges; i++) {
		struct store_change *c = &j->changes[i];

		c->kind = STORE_CHANGE_FLAGS;
		c->user = j->task.user->name;
		c->mailbox = j->mailbox;
		c->mailbox_id = j->mailbox_id;
		c->uidvalidity = j->uidvalidity;
		store_view_apply(store, c, NULL);
		if (store->change_cb != NULL)
			store->change_cb(c, store->change_arg);
	}
	j->cb(j->status, j->arg);
	for (size_t i = 0; i < j->nchanges; i++) {
		free(j->from[i]);
		free(j->to[i]);
	}
	free(j->from);
	free(j->to);
	free(j->changes);
	free(j->mailbox);
	free(j->folder);
	free(j->uids);
	free(j);
}

void
store_flags_set_seen(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, store_flags_cb cb, void *arg)
{
	struct store_flags_job *j = xcalloc(1, sizeof(*j));

	if (n > STORE_FETCH_MAX_MSGS)
		n = STORE_FETCH_MAX_MSGS;
	j->mailbox_id = mailbox_id;
	j->uids = xcalloc(n ? n : 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->changes = xcalloc(n ? n : 1, sizeof(*j->changes));
	j->from = xcalloc(n ? n : 1, sizeof(*j->from));
	j->to = xcalloc(n ? n : 1, sizeof(*j->to));
	j->cb = cb;
	j->arg = arg;
	j->status = STORE_VIEW_IO;
	j->task.run = store_flags_run;
	j->task.done = store_flags_done;
	store_task_submit(store, user, &j->task);
}
