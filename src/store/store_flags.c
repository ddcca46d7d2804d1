/*
 * Flag changes and expunges: STORE (RFC 3501 section 6.4.6), the implicit
 * \Seen of FETCH BODY[] (section 6.4.5), EXPUNGE and UID EXPUNGE (section
 * 6.4.3, RFC 4315). Rows, MODSEQ (RFC 7162) and tombstones commit in one
 * synchronous=FULL transaction, then the files follow, then each change is
 * announced like a delivery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_fetch.h"
#include "store/store_flags.h"
#include "store/store_int.h"

enum store_flags_op {
	STORE_FLAGS_OP_SEEN,
	STORE_FLAGS_OP_STORE,
	STORE_FLAGS_OP_EXPUNGE,
};

struct store_flags_job {
	struct store_task task; /* first */
	enum store_flags_op op;
	int64_t mailbox_id;
	uint32_t *uids; /* ascending, no duplicates */
	size_t n;
	enum store_flags_mode mode;
	unsigned flags;
	char **kw; /* keywords to apply */
	size_t nkw;
	store_flags_cb seen_cb;
	store_flags_store_cb store_cb;
	store_flags_expunge_cb expunge_cb;
	store_flags_cond_cb cond_cb; /* STORE with UNCHANGEDSINCE */
	uint64_t unchangedsince;
	uint32_t *modified; /* refused by UNCHANGEDSINCE, ascending */
	size_t nmodified;
	void *arg;
	char *mailbox; /* IMAP name */
	char *folder;  /* relative to the user's directory */
	uint32_t uidvalidity;
	struct store_change *changes; /* committed, to announce */
	char **kwtext;                /* each change's keywords (STORE) */
	char **from, **to;            /* after the commit: rename, or unlink
	                                 from when to is NULL */
	size_t nchanges;
	enum store_view_status status;
};

static const char *const store_flags_op_names[] = {"set_seen", "store",
    "expunge"};

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

/* A folder's subdirectory: <user>/<folder>/<sub>. */
static char *
store_flags_dir(struct store_flags_job *j, const char *sub)
{
	return xasprintf("%s/%s%s%s", j->task.user->dir, j->folder,
	    j->folder[0] != '\0' ? "/" : "", sub);
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

/* ------------------------------------------------------------------ */
/* Keyword lists: space-separated names, compared without case. */

static int
store_flags_kw_has(const char *list, const char *word, size_t wlen)
{
	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, " ");

		if (len == wlen && strncasecmp(p, word, wlen) == 0)
			return 1;
		p += len;
		p += strspn(p, " ");
	}
	return 0;
}

static void
store_flags_kw_append(char **list, const char *word, size_t len)
{
	char *n;

	if (len == 0 || store_flags_kw_has(*list, word, len))
		return;
	n = xasprintf("%s%s%.*s", *list, (*list)[0] != '\0' ? " " : "",
	    (int)len, word);
	free(*list);
	*list = n;
}

static int
store_flags_kw_listed(struct store_flags_job *j, const char *word, size_t len)
{
	for (size_t k = 0; k < j->nkw; k++)
		if (strlen(j->kw[k]) == len &&
		    strncasecmp(j->kw[k], word, len) == 0)
			return 1;
	return 0;
}

/* The keywords a message with old has after the job; the caller frees. */
static char *
store_flags_kw_combine(struct store_flags_job *j, const char *old)
{
	char *out = xstrdup("");

	for (const char *p = old; j->mode != STORE_FLAGS_SET && *p != '\0';) {
		size_t len = strcspn(p, " ");

		if (j->mode != STORE_FLAGS_REMOVE ||
		    !store_flags_kw_listed(j, p, len))
			store_flags_kw_append(&out, p, len);
		p += len;
		p += strspn(p, " ");
	}
	for (size_t k = 0; j->mode != STORE_FLAGS_REMOVE && k < j->nkw; k++)
		store_flags_kw_append(&out, j->kw[k], strlen(j->kw[k]));
	return out;
}

/* Whether two lists without duplicates hold the same names. */
static int
store_flags_kw_same(const char *a, const char *b)
{
	size_t na = 0, nb = 0;

	for (const char *p = a; *p != '\0';) {
		size_t len = strcspn(p, " ");

		if (len > 0 && !store_flags_kw_has(b, p, len))
			return 0;
		na += len > 0;
		p += len;
		p += strspn(p, " ");
	}
	for (const char *p = b; *p != '\0'; p += strspn(p, " ")) {
		size_t len = strcspn(p, " ");

		nb += len > 0;
		p += len;
	}
	return na == nb;
}

/*
 * Gives each keyword to add the spelling the mailbox already knows, and
 * defines the new ones (RFC 3501 section 2.3.2: keywords are defined per
 * mailbox, without case).
 */
static int
store_flags_keywords(struct store_flags_job *j, sqlite3 *db)
{
	sqlite3_stmt *sel, *ins;
	int rc = 0;

	if (j->mode == STORE_FLAGS_REMOVE || j->nkw == 0)
		return 0;
	if (sqlite3_prepare_v2(db,
	        "SELECT name FROM mailbox_keyword WHERE mailbox_id = ?1"
	        " AND name = ?2 COLLATE NOCASE",
	        -1, &sel, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO mailbox_keyword(mailbox_id, name) VALUES(?1, ?2)",
	        -1, &ins, NULL) != SQLITE_OK) {
		sqlite3_finalize(sel);
		return -1;
	}
	for (size_t k = 0; k < j->nkw && rc == 0; k++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, j->mailbox_id);
		sqlite3_bind_text(sel, 2, j->kw[k], -1, SQLITE_STATIC);
		if (sqlite3_step(sel) == SQLITE_ROW) {
			char *name =
			    xstrdup((const char *)sqlite3_column_text(sel, 0));

			sqlite3_reset(sel);
			free(j->kw[k]);
			j->kw[k] = name;
			continue;
		}
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, j->mailbox_id);
		sqlite3_bind_text(ins, 2, j->kw[k], -1, SQLITE_STATIC);
		rc = sqlite3_step(ins) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Rows. */

static unsigned
store_flags_combine(struct store_flags_job *j, unsigned old)
{
	switch (j->mode) {
	case STORE_FLAGS_SET:
		return j->flags;
	case STORE_FLAGS_ADD:
		return old | j->flags;
	case STORE_FLAGS_REMOVE:
		break;
	}
	return old & ~j->flags;
}

/* Takes the mailbox's next MODSEQ, moving unseen by delta. */
static int
store_flags_next_modseq(struct store_flags_job *j, sqlite3 *db, int delta,
    uint64_t *modseq)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET highestmodseq = highestmodseq + 1,"
	        " unseen = unseen + ?2 WHERE id = ?1 RETURNING highestmodseq",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int(st, 2, delta);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*modseq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int
store_flags_write_row(struct store_flags_job *j, sqlite3 *db,
    const struct store_change *c, const char *kw, int in_cur)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE message SET flags = ?3, keywords = ?4, modseq = ?5,"
	        " in_cur = ?6 WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, c->uid);
	sqlite3_bind_int(st, 3, (int)c->flags);
	sqlite3_bind_text(st, 4, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)c->modseq);
	sqlite3_bind_int(st, 6, in_cur);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Applies the job to one row (sel: file, in_cur, flags, size, keywords).
 * A message left as it was gets no MODSEQ. Returns 0, or -1 on an SQLite
 * error.
 */
static int
store_flags_one(struct store_flags_job *j, sqlite3 *db, sqlite3_stmt *sel,
    uint32_t uid)
{
	const char *file = (const char *)sqlite3_column_text(sel, 0);
	int in_cur = sqlite3_column_int(sel, 1);
	unsigned old = (unsigned)sqlite3_column_int(sel, 2);
	const char *oldkw = (const char *)sqlite3_column_text(sel, 4);
	struct store_change *c = &j->changes[j->nchanges];
	char *kw = store_flags_kw_combine(j, oldkw != NULL ? oldkw : "");
	int to_cur, delta;

	c->flags = store_flags_combine(j, old);
	if (c->flags == old && store_flags_kw_same(kw, oldkw ? oldkw : "")) {
		free(kw);
		return 0;
	}
	to_cur = in_cur || c->flags != 0;
	delta = ((c->flags & STORE_FLAG_SEEN) == 0) -
	    ((old & STORE_FLAG_SEEN) == 0);
	c->uid = uid;
	c->size = (uint64_t)sqlite3_column_int64(sel, 3);
	j->kwtext[j->nchanges] = kw;
	j->from[j->nchanges] = store_flags_path(j, file, in_cur, old);
	j->to[j->nchanges++] = store_flags_path(j, file, to_cur, c->flags);
	if (store_flags_next_modseq(j, db, delta, &c->modseq) < 0)
		return -1;
	return store_flags_write_row(j, db, c, kw, to_cur);
}

/* Removes one row (sel: file, in_cur, flags, size), keeping a tombstone. */
static int
store_flags_expunge_one(struct store_flags_job *j, sqlite3 *db,
    sqlite3_stmt *sel, uint32_t uid)
{
	struct store_change *c = &j->changes[j->nchanges];
	sqlite3_stmt *st;
	int rc;

	c->uid = uid;
	c->flags = (unsigned)sqlite3_column_int(sel, 2);
	c->size = (uint64_t)sqlite3_column_int64(sel, 3);
	j->from[j->nchanges++] =
	    store_flags_path(j, (const char *)sqlite3_column_text(sel, 0),
	        sqlite3_column_int(sel, 1), c->flags);
	if (store_index_message_expunge(db, j->mailbox_id, uid) < 0 ||
	    sqlite3_prepare_v2(db,
	        "SELECT highestmodseq FROM mailbox WHERE id = ?", -1, &st,
	        NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	rc = sqlite3_step(st);
	c->modseq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Every UID asked for whose row exists. */
static int
store_flags_rows(struct store_flags_job *j, sqlite3 *db)
{
	sqlite3_stmt *sel;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT file, in_cur, flags, size, keywords, modseq"
	        " FROM message WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &sel, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < j->n && rc == 0; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, j->mailbox_id);
		sqlite3_bind_int64(sel, 2, j->uids[i]);
		if (sqlite3_step(sel) != SQLITE_ROW)
			continue;
		/* RFC 7162 section 3.1.3: checked in the same transaction. */
		if (j->cond_cb != NULL &&
		    (uint64_t)sqlite3_column_int64(sel, 5) >
		        j->unchangedsince) {
			j->modified[j->nmodified++] = j->uids[i];
			continue;
		}
		if (j->op == STORE_FLAGS_OP_EXPUNGE)
			rc = store_flags_expunge_one(j, db, sel, j->uids[i]);
		else
			rc = store_flags_one(j, db, sel, j->uids[i]);
	}
	sqlite3_finalize(sel);
	return rc;
}

/* After the commit: the files follow the rows. */
static void
store_flags_files(struct store_flags_job *j)
{
	const char *op = store_flags_op_names[j->op];
	char *dir;

	for (size_t i = 0; i < j->nchanges; i++) {
		int r = j->to[i] != NULL ? rename(j->from[i], j->to[i]) :
		                           unlink(j->from[i]);

		if (r < 0)
			log_warn("event=store op=%s uid=%u error=\"%s\"", op,
			    j->changes[i].uid, strerror(errno));
	}
	if (j->nchanges == 0)
		return;
	dir = store_flags_dir(j, "cur");
	store_maildir_fsync_dir(dir);
	free(dir);
	if (j->op != STORE_FLAGS_OP_EXPUNGE)
		return;
	dir = store_flags_dir(j, "new");
	store_maildir_fsync_dir(dir);
	free(dir);
}

/*
 * Worker: the rows commit first, then the files move. A crash between the
 * two leaves names recovery corrects: the row is the truth.
 */
static void
store_flags_run(struct store_task *t, sqlite3 *db)
{
	struct store_flags_job *j = (struct store_flags_job *)t;

	if (db == NULL || store_index_begin(db) < 0)
		return;
	if (store_flags_mailbox(j, db) < 0 || store_flags_keywords(j, db) < 0 ||
	    store_flags_rows(j, db) < 0 || store_index_commit(db) < 0) {
		log_error("event=store op=%s error=\"%s\"",
		    store_flags_op_names[j->op], sqlite3_errmsg(db));
		store_index_rollback(db);
		j->nchanges = 0;
		j->nmodified = 0;
		return;
	}
	j->status = STORE_VIEW_OK;
	store_flags_files(j);
}

/* ------------------------------------------------------------------ */
/* Back on the loop thread. */

static void
store_flags_answer(struct store_flags_job *j)
{
	struct store_flags_update *list;
	uint32_t *uids;
	size_t n = j->status == STORE_VIEW_OK ? j->nchanges : 0;

	if (j->op == STORE_FLAGS_OP_SEEN) {
		j->seen_cb(j->status, j->arg);
	} else if (j->op == STORE_FLAGS_OP_STORE) {
		list = xcalloc(n ? n : 1, sizeof(*list));
		for (size_t i = 0; i < n; i++) {
			list[i].uid = j->changes[i].uid;
			list[i].flags = j->changes[i].flags;
			list[i].keywords = j->kwtext[i];
			list[i].modseq = j->changes[i].modseq;
		}
		if (j->cond_cb != NULL)
			j->cond_cb(n ? list : NULL, n,
			    j->nmodified ? j->modified : NULL, j->nmodified,
			    j->status, j->arg);
		else
			j->store_cb(n ? list : NULL, n, j->status, j->arg);
		free(list);
	} else {
		uids = xcalloc(n ? n : 1, sizeof(*uids));
		for (size_t i = 0; i < n; i++)
			uids[i] = j->changes[i].uid;
		j->expunge_cb(n ? uids : NULL, n, j->status, j->arg);
		free(uids);
	}
}

static void
store_flags_job_free(struct store_flags_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->from[i]);
		free(j->to[i]);
		free(j->kwtext[i]);
	}
	for (size_t k = 0; k < j->nkw; k++)
		free(j->kw[k]);
	free(j->kw);
	free(j->from);
	free(j->to);
	free(j->kwtext);
	free(j->changes);
	free(j->modified);
	free(j->mailbox);
	free(j->folder);
	free(j->uids);
	free(j);
}

/* Announces each change as a delivery would, then answers. */
static void
store_flags_done(struct store_task *t)
{
	struct store_flags_job *j = (struct store_flags_job *)t;
	struct store *store = j->task.store;

	for (size_t i = 0; i < j->nchanges; i++) {
		struct store_change *c = &j->changes[i];

		c->kind = j->op == STORE_FLAGS_OP_EXPUNGE ?
		    STORE_CHANGE_EXPUNGE :
		    STORE_CHANGE_FLAGS;
		c->user = j->task.user->name;
		c->mailbox = j->mailbox;
		c->mailbox_id = j->mailbox_id;
		c->uidvalidity = j->uidvalidity;
		store_view_apply(store, c, j->kwtext[i]);
		if (store->change_cb != NULL)
			store->change_cb(c, store->change_arg);
	}
	store_flags_answer(j);
	store_flags_job_free(j);
}

/* ------------------------------------------------------------------ */
/* Submitting. */

static int
store_flags_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static struct store_flags_job *
store_flags_job_new(enum store_flags_op op, int64_t mailbox_id,
    const uint32_t *uids, size_t n, void *arg)
{
	struct store_flags_job *j = xcalloc(1, sizeof(*j));
	size_t m = 0;

	j->op = op;
	j->mailbox_id = mailbox_id;
	j->uids = xcalloc(n ? n : 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	qsort(j->uids, n, sizeof(*j->uids), store_flags_u32_cmp);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || j->uids[m - 1] != j->uids[i])
			j->uids[m++] = j->uids[i];
	j->n = m;
	j->changes = xcalloc(m ? m : 1, sizeof(*j->changes));
	j->kwtext = xcalloc(m ? m : 1, sizeof(*j->kwtext));
	j->from = xcalloc(m ? m : 1, sizeof(*j->from));
	j->to = xcalloc(m ? m : 1, sizeof(*j->to));
	j->arg = arg;
	j->status = STORE_VIEW_IO;
	j->task.run = store_flags_run;
	j->task.done = store_flags_done;
	return j;
}

void
store_flags_set_seen(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, store_flags_cb cb, void *arg)
{
	struct store_flags_job *j;

	if (n > STORE_FETCH_MAX_MSGS)
		n = STORE_FETCH_MAX_MSGS;
	j = store_flags_job_new(STORE_FLAGS_OP_SEEN, mailbox_id, uids, n, arg);
	j->mode = STORE_FLAGS_ADD;
	j->flags = STORE_FLAG_SEEN;
	j->seen_cb = cb;
	store_task_submit(store, user, &j->task);
}

/* A STORE job; the caller sets its callback and submits it. */
static struct store_flags_job *
store_flags_store_job(int64_t mailbox_id, const uint32_t *uids, size_t n,
    enum store_flags_mode mode, unsigned flags, const char *const *keywords,
    size_t nkw, void *arg)
{
	struct store_flags_job *j =
	    store_flags_job_new(STORE_FLAGS_OP_STORE, mailbox_id, uids, n, arg);

	j->mode = mode;
	j->flags = flags;
	j->kw = xcalloc(nkw ? nkw : 1, sizeof(*j->kw));
	for (size_t k = 0; k < nkw; k++)
		j->kw[k] = xstrdup(keywords[k]);
	j->nkw = nkw;
	return j;
}

void
store_flags_store(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, enum store_flags_mode mode, unsigned flags,
    const char *const *keywords, size_t nkw, store_flags_store_cb cb, void *arg)
{
	struct store_flags_job *j = store_flags_store_job(mailbox_id, uids, n,
	    mode, flags, keywords, nkw, arg);

	j->store_cb = cb;
	store_task_submit(store, user, &j->task);
}

void
store_flags_store_cond(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n, uint64_t unchangedsince,
    enum store_flags_mode mode, unsigned flags, const char *const *keywords,
    size_t nkw, store_flags_cond_cb cb, void *arg)
{
	struct store_flags_job *j = store_flags_store_job(mailbox_id, uids, n,
	    mode, flags, keywords, nkw, arg);

	j->cond_cb = cb;
	j->unchangedsince = unchangedsince;
	j->modified = xcalloc(j->n ? j->n : 1, sizeof(*j->modified));
	store_task_submit(store, user, &j->task);
}

void
store_flags_expunge(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, store_flags_expunge_cb cb, void *arg)
{
	struct store_flags_job *j = store_flags_job_new(STORE_FLAGS_OP_EXPUNGE,
	    mailbox_id, uids, n, arg);

	j->expunge_cb = cb;
	store_task_submit(store, user, &j->task);
}
