/*
 * The mailbox listing for IMAP LIST, LSUB and STATUS (RFC 9051 sections
 * 6.3.9 and 6.3.11, RFC 6154 special-use, RFC 5258 SUBSCRIBED): every
 * mailbox with its counters, and the subscriptions naming no mailbox, read
 * on the I/O pool as a user task.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_view.h"

struct store_list_job {
	struct store_task task;
	store_mailbox_list_cb cb;
	void *arg;
	struct store_mailbox_list *list;
	size_t cap;
	unsigned flags; /* STORE_LIST_* */
	enum store_view_status status;
};

static struct store_mailbox_info *
store_list_add(struct store_list_job *j, const char *name)
{
	struct store_mailbox_list *l = j->list;

	if (l->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 16;
		l->items = xreallocarray(l->items, j->cap, sizeof(*l->items));
	}
	memset(&l->items[l->n], 0, sizeof(l->items[0]));
	l->items[l->n].name = xstrdup(name ? name : "");
	return &l->items[l->n++];
}

/*
 * The \Recent count reads the (mailbox_id, uid) key from first_recent_uid;
 * the \Deleted count, only when asked for, scans the mailbox's entries of
 * the message_view index.
 */
static int
store_list_mailboxes(struct store_list_job *j, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT m.name, m.special_use, s.name IS NOT NULL,"
	        " m.uidvalidity, m.uidnext, m.highestmodseq, m.messages,"
	        " m.unseen, (SELECT count(*) FROM message WHERE"
	        " mailbox_id = m.id AND uid >= m.first_recent_uid), m.bytes,"
	        " CASE WHEN ?1 THEN (SELECT count(*) FROM message WHERE"
	        " mailbox_id = m.id AND flags & ?2) ELSE 0 END"
	        " FROM mailbox m LEFT JOIN subscription s ON s.name = m.name"
	        " ORDER BY m.name",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (j->flags & STORE_LIST_DELETED) != 0);
	sqlite3_bind_int(st, 2, STORE_FLAG_DELETED);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_mailbox_info *mi =
		    store_list_add(j, (const char *)sqlite3_column_text(st, 0));
		const char *su = (const char *)sqlite3_column_text(st, 1);

		mi->special_use = su != NULL ? xstrdup(su) : NULL;
		mi->exists = 1;
		mi->subscribed = sqlite3_column_int(st, 2);
		mi->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
		mi->uidnext = (uint32_t)sqlite3_column_int64(st, 4);
		mi->highestmodseq = (uint64_t)sqlite3_column_int64(st, 5);
		mi->messages = (uint32_t)sqlite3_column_int64(st, 6);
		mi->unseen = (uint32_t)sqlite3_column_int64(st, 7);
		mi->recent = (uint32_t)sqlite3_column_int64(st, 8);
		mi->bytes = (uint64_t)sqlite3_column_int64(st, 9);
		mi->deleted = (uint32_t)sqlite3_column_int64(st, 10);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_list_orphans(struct store_list_job *j, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT name FROM subscription WHERE name NOT IN"
	        " (SELECT name FROM mailbox) ORDER BY name",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_list_add(j, (const char *)sqlite3_column_text(st, 0))
		    ->subscribed = 1;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Worker: both reads in one transaction, so they agree. */
static void
store_list_run(struct store_task *t, sqlite3 *db)
{
	struct store_list_job *j = (struct store_list_job *)t;

	if (db == NULL ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (store_list_mailboxes(j, db) == 0 && store_list_orphans(j, db) == 0)
		j->status = STORE_VIEW_OK;
	else
		log_error("event=store op=list error=\"%s\"",
		    sqlite3_errmsg(db));
	store_index_rollback(db);
}

static void
store_list_done(struct store_task *t)
{
	struct store_list_job *j = (struct store_list_job *)t;

	if (j->status != STORE_VIEW_OK)
		store_mailbox_list_free(&j->list);
	j->cb(j->list, j->status, j->arg);
	free(j);
}

void
store_mailbox_list(struct store *store, const char *user, unsigned flags,
    store_mailbox_list_cb cb, void *arg)
{
	struct store_list_job *j = xcalloc(1, sizeof(*j));

	j->flags = flags;
	j->cb = cb;
	j->arg = arg;
	j->list = xcalloc(1, sizeof(*j->list));
	j->status = STORE_VIEW_IO;
	j->task.run = store_list_run;
	j->task.done = store_list_done;
	store_task_submit(store, user, &j->task);
}

void
store_mailbox_list_free(struct store_mailbox_list **listp)
{
	struct store_mailbox_list *l = *listp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].special_use);
	}
	free(l->items);
	free(l);
	*listp = NULL;
}
