/*
 * Other programs' changes to a Maildir: inotify watches on new/ and cur/
 * of each mailbox with a loaded view, batched per mailbox, and the user
 * task that reconciles a folder with the index (RFC 3501 UIDs, RFC 7162
 * MODSEQ and tombstones), then announces what it changed like a commit.
 *
 * Our own writes raise inotify events too. They need no suppression: a
 * reconciliation runs as a user task, after the task or delivery job that
 * renamed or removed a file has committed its rows, so it finds such a
 * file where the index says it is, and does nothing for it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_view.h"
#include "store/store_watch.h"

#define STORE_WATCH_BUCKETS 64
/* Event names queued for one folder; past this, it is scanned whole. */
#define STORE_WATCH_PENDING_MAX 4096
/* Reads of the inotify descriptor per wake-up, so a flood yields. */
#define STORE_WATCH_READS 16
#define STORE_WATCH_SYSFLAGS                                          \
	(STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
	    STORE_FLAG_DELETED | STORE_FLAG_DRAFT)
/*
 * A watch starts with the events of the directory itself; close-after-write
 * of a file in it is added by a task after the view's load, because the
 * kernel then marks every cached entry of the directory (tens of ms for
 * 100,000 messages). That task compares the mtimes again, so a file
 * written in between is found by a scan.
 */
#define STORE_WATCH_MASK_DIR                                    \
	(IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR | \
	    IN_DONT_FOLLOW | IN_MASK_ADD)
#define STORE_WATCH_MASK (STORE_WATCH_MASK_DIR | IN_CLOSE_WRITE)

/* One inotify watch of a folder's new/ (in_cur 0) or cur/. */
struct store_watch_slot {
	struct store_watch *w;
	struct store_watch_slot *next; /* hash chain by wd */
	int wd;             /* -1: none; else on the hash chain of wd */
	unsigned alive : 1; /* the kernel still has the watch */
	unsigned in_cur : 1;
};

/* A name an event reported, waiting for the next reconciliation. */
struct store_watch_pend {
	char *name;
	int in_cur;
};

struct store_watch {
	struct store_watch_set *set;
	struct store_user *user;
	int64_t mailbox_id; /* 0 until a reconciliation found the mailbox */
	struct store_watch_slot slot[2];
	struct store_watch_pend *pend;
	size_t npend;
	unsigned
	    initial : 1; /* the next task is the load scan (mtimes decide) */
	unsigned rescan : 1; /* the next task scans whole, mtimes or not */
	unsigned
	    upgrade : 1; /* after the load scan: add IN_CLOSE_WRITE (a job) */
	unsigned running : 1; /* a reconciliation is queued or running */
	unsigned dropped : 1; /* the view let go; freed when the task is done */
	unsigned dirty : 1;   /* on set->dirty */
	TAILQ_ENTRY(store_watch) dirty_link;
	TAILQ_ENTRY(store_watch) all_link;
	char mailbox[]; /* IMAP name at load; found by it until known */
};

TAILQ_HEAD(store_watch_list, store_watch);

struct store_watch_set {
	struct store *store;
	int fd; /* inotify; -1 when there is none */
	struct event *ev;
	struct event *flush; /* end of turn: submit the batches */
	struct store_watch_slot *buckets[STORE_WATCH_BUCKETS];
	struct store_watch_list dirty;
	struct store_watch_list all;
	int off; /* store_watch_enable(store, 0) */
};

/* ------------------------------------------------------------------ */
/* Names. */

int
store_watch_name_parse(const char *name, struct store_watch_name *out)
{
	size_t len = strlen(name);
	const char *info = strstr(name, ":2,");
	const char *u;

	if (len == 0 || len > STORE_WATCH_NAME_MAX || name[0] == '.' ||
	    strchr(name, '/') != NULL)
		return -1;
	out->base_len = info != NULL ? (size_t)(info - name) : len;
	out->flags = info != NULL ? store_maildir_flags_parse(name) : 0;
	out->uid = 0;
	u = strstr(name, ",U=");
	if (u != NULL && (size_t)(u - name) < out->base_len) {
		char *end;
		unsigned long v = strtoul(u + 3, &end, 10);

		if (end > u + 3 && v > 0 && v <= UINT32_MAX &&
		    (size_t)(end - name) <= out->base_len &&
		    (*end == ',' || end == name + out->base_len))
			out->uid = (uint32_t)v;
	}
	return 0;
}

char *
store_watch_canonical(const char *base, int in_cur, unsigned flags)
{
	char letters[8];

	if (!in_cur)
		return xstrdup(base);
	store_maildir_flag_letters(flags, letters);
	return xasprintf("%s:2,%s", base, letters);
}

/* ------------------------------------------------------------------ */
/* The reconciliation (worker). */

/* A message row of the folder. */
struct store_watch_row {
	uint32_t uid;
	char *file;
	int in_cur;
	unsigned flags;
	uint64_t size;
	int claimed;                 /* a file on disk is this row's */
	struct store_watch_ent *ent; /* that file; NULL: in place */
	ino_t ino;
};

/* A file on disk (a scan) or a name an event reported. */
struct store_watch_ent {
	char *name;
	int in_cur;
	struct store_watch_name n;
	int exists;
	ino_t ino;
	struct store_watch_row *row; /* the row it is */
	int adopt;                   /* foreign: index it */
};

struct store_watch_task {
	struct store_task task; /* first */
	struct store_watch *w;  /* loop thread only */
	char *mailbox;
	int64_t mailbox_id;
	int full;      /* scan the directories whole */
	int use_mtime; /* skip a full scan when the mtimes are unchanged */
	struct store_watch_ent *ents;
	size_t nents;
	struct store_watch_row *rows;
	size_t nrows;
	/* Results: */
	struct store_mailbox mb;
	char *folder;
	int64_t seen[2];  /* mtimes of new/ and cur/ before the scan, 0: none */
	int64_t mtime[2]; /* what the scan records: seen, 0 when too fresh */
	struct store_change *changes;
	size_t nchanges;
	char **renames; /* pairs: from, to; done after the commit */
	size_t nrenames;
	int failed_rename;
};

static void
store_watch_ents_free(struct store_watch_task *t)
{
	for (size_t i = 0; i < t->nents; i++)
		free(t->ents[i].name);
	free(t->ents);
	t->ents = NULL;
	t->nents = 0;
}

static void
store_watch_rows_free(struct store_watch_task *t)
{
	for (size_t i = 0; i < t->nrows; i++)
		free(t->rows[i].file);
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

static void
store_watch_task_free(struct store_watch_task *t)
{
	store_watch_ents_free(t);
	store_watch_rows_free(t);
	for (size_t i = 0; i < t->nrenames; i++)
		free(t->renames[i]);
	free(t->renames);
	free(t->changes);
	free(t->folder);
	free(t->mailbox);
	store_index_mailbox_deinit(&t->mb);
	free(t);
}

static int64_t
store_watch_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* <folder>/<new or cur>[/name]. */
static char *
store_watch_path(const struct store_watch_task *t, int in_cur, const char *name)
{
	return xasprintf("%s/%s%s%s", t->folder, in_cur ? "cur" : "new",
	    name != NULL ? "/" : "", name != NULL ? name : "");
}

/* Finds the mailbox by id (or by name before the first find). */
static int
store_watch_mailbox(struct store_watch_task *t, sqlite3 *db, int64_t stamp[2])
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        t->mailbox_id != 0 ?
	            "SELECT id, name, dir, uidvalidity, scan_new_mtime,"
	            " scan_cur_mtime FROM mailbox WHERE id = ?" :
	            "SELECT id, name, dir, uidvalidity, scan_new_mtime,"
	            " scan_cur_mtime FROM mailbox WHERE name = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (t->mailbox_id != 0)
		sqlite3_bind_int64(st, 1, t->mailbox_id);
	else
		sqlite3_bind_text(st, 1, t->mailbox, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t->mb.id = sqlite3_column_int64(st, 0);
		t->mb.name = xstrdup((const char *)sqlite3_column_text(st, 1));
		t->mb.dir = xstrdup((const char *)sqlite3_column_text(st, 2));
		t->mb.uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
		stamp[0] = sqlite3_column_int64(st, 4);
		stamp[1] = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* The mtime of a directory in ns, or 0 when it cannot be read. */
static int64_t
store_watch_dir_mtime(const char *folder, int in_cur)
{
	char *path = xasprintf("%s/%s", folder, in_cur ? "cur" : "new");
	struct stat sb;
	int64_t ns = 0;

	if (stat(path, &sb) == 0)
		ns = store_watch_ns(&sb.st_mtim);
	free(path);
	return ns;
}

/*
 * Reads the mtimes of new/ and cur/ before a scan. One that a later change
 * might leave as it is gets recorded as 0 (never equal): the kernel stamps
 * a change with its coarse clock (or later), so once that clock has passed
 * a nanosecond mtime, any change after the listing moves it; a file system
 * that keeps whole seconds needs the second to be over.
 */
static void
store_watch_mtimes(struct store_watch_task *t)
{
	struct timespec now, tick;
	int64_t ns, coarse;

	for (int i = 0; i < 2; i++)
		t->seen[i] = store_watch_dir_mtime(t->folder, i);
	clock_gettime(CLOCK_REALTIME, &now);
	clock_gettime(CLOCK_REALTIME_COARSE, &tick);
	ns = store_watch_ns(&now);
	coarse = store_watch_ns(&tick);
	for (int i = 0; i < 2; i++) {
		int64_t m = t->seen[i];
		int whole = m % 1000000000 == 0;

		t->mtime[i] = 0;
		if (m != 0 && ((!whole && coarse > m) || ns - m > 1000000000))
			t->mtime[i] = m;
	}
}

/*
 * Whether both directories still have their recorded mtimes. A stamp was
 * recorded only when a later change had to move the mtime (see above and
 * store_watch_keep_end()), so a fresh mtime equal to it is as good.
 */
static int
store_watch_unchanged(const struct store_watch_task *t, const int64_t stamp[2])
{
	return stamp[0] != 0 && stamp[1] != 0 && t->seen[0] == stamp[0] &&
	    t->seen[1] == stamp[1];
}

static void
store_watch_ent_add(struct store_watch_task *t, const char *name, int in_cur,
    int exists, ino_t ino)
{
	struct store_watch_ent *e;
	struct store_watch_name n;

	if (store_watch_name_parse(name, &n) < 0)
		return;
	t->ents = xreallocarray(t->ents, t->nents + 1, sizeof(*t->ents));
	e = &t->ents[t->nents++];
	*e = (struct store_watch_ent){.name = xstrdup(name),
	    .in_cur = in_cur,
	    .n = n,
	    .exists = exists,
	    .ino = ino};
}

/*
 * Lists the regular-looking entries of new/ or cur/. Returns -1 when the
 * directory cannot be read: a missing folder never means missing mail.
 */
static int
store_watch_list(struct store_watch_task *t, int in_cur)
{
	char *path = store_watch_path(t, in_cur, NULL);
	DIR *dir = opendir(path);
	struct dirent *de;

	if (dir == NULL) {
		log_warn("event=store op=maildir_scan dir=%s error=\"%s\"",
		    path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	while ((de = readdir(dir)) != NULL)
		if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)
			store_watch_ent_add(t, de->d_name, in_cur, 1,
			    de->d_ino);
	closedir(dir);
	return 0;
}

static int
store_watch_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_watch_row *)a)->file,
	    ((const struct store_watch_row *)b)->file);
}

static int
store_watch_row_load(struct store_watch_task *t, sqlite3_stmt *st)
{
	struct store_watch_row *r;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		t->rows = xreallocarray(t->rows, t->nrows + 1, sizeof(*r));
		r = &t->rows[t->nrows++];
		*r = (struct store_watch_row){.uid = (uint32_t)
		                                  sqlite3_column_int64(st, 0),
		    .file = xstrdup((const char *)sqlite3_column_text(st, 1)),
		    .in_cur = sqlite3_column_int(st, 2),
		    .flags = (unsigned)sqlite3_column_int(st, 3),
		    .size = (uint64_t)sqlite3_column_int64(st, 4)};
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Loads the folder's rows: all of them for a full scan, else those whose
 * UID an event name carries (",U=").
 */
static int
store_watch_rows(struct store_watch_task *t, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        t->full ? "SELECT uid, file, in_cur, flags, size FROM message"
	                  " WHERE mailbox_id = ?1" :
	                  "SELECT uid, file, in_cur, flags, size FROM message"
	                  " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, t->mb.id);
	if (t->full)
		rc = store_watch_row_load(t, st);
	for (size_t i = 0; !t->full && i < t->nents && rc == 0; i++) {
		if (t->ents[i].n.uid == 0 ||
		    (i > 0 && t->ents[i - 1].n.uid == t->ents[i].n.uid))
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 2, t->ents[i].n.uid);
		rc = store_watch_row_load(t, st);
	}
	sqlite3_finalize(st);
	if (t->nrows > 1)
		qsort(t->rows, t->nrows, sizeof(*t->rows), store_watch_row_cmp);
	return rc;
}

/* The row whose file is e's base name, or NULL. */
static struct store_watch_row *
store_watch_find(struct store_watch_task *t, const struct store_watch_ent *e)
{
	size_t lo = 0, hi = t->nrows, len = e->n.base_len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *file = t->rows[mid].file;
		int c = strncmp(e->name, file, len);

		if (c == 0)
			c = file[len] == '\0' ? 0 : -1;
		if (c == 0)
			return &t->rows[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Whether e sits exactly where the index puts row r. */
static int
store_watch_in_place(const struct store_watch_ent *e,
    const struct store_watch_row *r)
{
	char *want = store_watch_canonical(r->file, r->in_cur, r->flags);
	int same = e->in_cur == r->in_cur && strcmp(e->name, want) == 0;

	free(want);
	return same;
}

/*
 * Pairs files with rows. A file in place claims its row first; then any
 * file with a row's base name claims an unclaimed row; a second name of
 * the same inode is the same file; every other file is foreign.
 */
static void
store_watch_match(struct store_watch_task *t)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < t->nents; i++) {
			struct store_watch_ent *e = &t->ents[i];
			struct store_watch_row *r;

			if (!e->exists || e->row != NULL || e->adopt)
				continue;
			r = store_watch_find(t, e);
			if (pass == 0 &&
			    (r == NULL || r->claimed ||
			        !store_watch_in_place(e, r)))
				continue;
			if (r != NULL && !r->claimed) {
				r->claimed = 1;
				r->ent = e;
				r->ino = e->ino;
				e->row = r;
			} else if (r == NULL || r->ino != e->ino) {
				e->adopt = 1;
			}
		}
	}
}

static int
store_watch_ent_cmp(const void *a, const void *b)
{
	const struct store_watch_ent *x = a, *y = b;

	if (x->n.uid != y->n.uid)
		return x->n.uid < y->n.uid ? -1 : 1;
	if (x->in_cur != y->in_cur)
		return x->in_cur - y->in_cur;
	return strcmp(x->name, y->name);
}

/* Event names: sorted, distinct, each checked on disk. */
static void
store_watch_ents_prepare(struct store_watch_task *t)
{
	size_t m = 0;

	if (t->nents > 1)
		qsort(t->ents, t->nents, sizeof(*t->ents), store_watch_ent_cmp);
	for (size_t i = 0; i < t->nents; i++) {
		struct store_watch_ent *e = &t->ents[i];
		char *path;
		struct stat sb;

		if (m > 0 && store_watch_ent_cmp(&t->ents[m - 1], e) == 0) {
			free(e->name);
			continue;
		}
		path = store_watch_path(t, e->in_cur, e->name);
		e->exists = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
		e->ino = e->exists ? sb.st_ino : 0;
		free(path);
		t->ents[m++] = *e;
	}
	t->nents = m;
}

/*
 * Event mode: rows the events named but no existing name claimed are
 * looked for where the index puts them. Returns -1 when one is not there:
 * it moved where no event said, or went; only a full scan can tell.
 */
static int
store_watch_probe(struct store_watch_task *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		struct store_watch_row *r = &t->rows[i];
		char *name =
		    store_watch_canonical(r->file, r->in_cur, r->flags);
		char *path = store_watch_path(t, r->in_cur, name);
		struct stat sb;
		int ok = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);

		free(name);
		free(path);
		if (ok) {
			r->claimed = 1;
			r->ino = sb.st_ino;
		}
	}
	store_watch_match(t);
	for (size_t i = 0; i < t->nrows; i++)
		if (!t->rows[i].claimed)
			return -1;
	return 0;
}

/* Full mode: lists both directories, twice when a row seems gone. */
static int
store_watch_scan(struct store_watch_task *t)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t lost = 0;

		store_watch_ents_free(t);
		for (size_t i = 0; i < t->nrows; i++) {
			t->rows[i].claimed = 0;
			t->rows[i].ent = NULL;
		}
		if (store_watch_list(t, 0) < 0 || store_watch_list(t, 1) < 0)
			return -1;
		store_watch_match(t);
		for (size_t i = 0; i < t->nrows; i++)
			lost += !t->rows[i].claimed;
		/* A file renamed during the listing may be missed once. */
		if (lost == 0)
			break;
	}
	return 0;
}

static struct store_change *
store_watch_change(struct store_watch_task *t, enum store_change_kind kind)
{
	struct store_change *c;

	t->changes =
	    xreallocarray(t->changes, t->nchanges + 1, sizeof(*t->changes));
	c = &t->changes[t->nchanges++];
	*c = (struct store_change){.kind = kind,
	    .mailbox_id = t->mb.id,
	    .uidvalidity = t->mb.uidvalidity};
	return c;
}

static void
store_watch_rename_later(struct store_watch_task *t, char *from, char *to)
{
	t->renames =
	    xreallocarray(t->renames, t->nrenames + 2, sizeof(*t->renames));
	t->renames[t->nrenames++] = from;
	t->renames[t->nrenames++] = to;
}

/* The next MODSEQ for a flag change, moving unseen by delta. */
static int
store_watch_next_modseq(struct store_watch_task *t, sqlite3 *db, int delta,
    uint64_t *modseq)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET highestmodseq = highestmodseq + 1,"
	        " unseen = unseen + ?2 WHERE id = ?1 RETURNING highestmodseq",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, t->mb.id);
	sqlite3_bind_int(st, 2, delta);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*modseq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int
store_watch_set_flags(struct store_watch_task *t, sqlite3 *db,
    struct store_watch_row *r, int in_cur, unsigned flags)
{
	int delta = ((flags & STORE_FLAG_SEEN) == 0) -
	    ((r->flags & STORE_FLAG_SEEN) == 0);
	struct store_change *c = store_watch_change(t, STORE_CHANGE_FLAGS);
	sqlite3_stmt *st;
	int rc;

	c->uid = r->uid;
	c->flags = flags;
	c->size = r->size;
	if (store_watch_next_modseq(t, db, delta, &c->modseq) < 0 ||
	    sqlite3_prepare_v2(db,
	        "UPDATE message SET flags = ?3, modseq = ?4, in_cur = ?5"
	        " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, t->mb.id);
	sqlite3_bind_int64(st, 2, r->uid);
	sqlite3_bind_int(st, 3, (int)flags);
	sqlite3_bind_int64(st, 4, (int64_t)c->modseq);
	sqlite3_bind_int(st, 5, in_cur);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A row whose file was renamed: flags from the new name (none in new/),
 * a new MODSEQ when they differ, and the file renamed to the store's name
 * for its state when the other program's name is not that.
 */
static int
store_watch_update(struct store_watch_task *t, sqlite3 *db,
    struct store_watch_row *r)
{
	struct store_watch_ent *e = r->ent;
	unsigned flags = e->in_cur ? e->n.flags : 0;
	char *name;

	if (flags != (r->flags & STORE_WATCH_SYSFLAGS)) {
		flags |= r->flags & ~STORE_WATCH_SYSFLAGS;
		if (store_watch_set_flags(t, db, r, e->in_cur, flags) < 0)
			return -1;
	} else if (e->in_cur != r->in_cur &&
	    store_index_message_set_file(db, t->mb.id, r->uid, r->file,
	        e->in_cur) < 0) {
		return -1;
	}
	name = store_watch_canonical(r->file, e->in_cur, flags);
	if (strcmp(name, e->name) != 0)
		store_watch_rename_later(t,
		    store_watch_path(t, e->in_cur, e->name),
		    store_watch_path(t, e->in_cur, name));
	free(name);
	return 0;
}

static int
store_watch_expunge(struct store_watch_task *t, sqlite3 *db,
    struct store_watch_row *r)
{
	struct store_change *c;
	sqlite3_stmt *st;
	int rc;

	if (store_index_message_expunge(db, t->mb.id, r->uid) < 0 ||
	    sqlite3_prepare_v2(db,
	        "SELECT highestmodseq FROM mailbox WHERE id = ?", -1, &st,
	        NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, t->mb.id);
	rc = sqlite3_step(st);
	c = store_watch_change(t, STORE_CHANGE_EXPUNGE);
	c->uid = r->uid;
	c->flags = r->flags;
	c->size = r->size;
	c->modseq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Indexes a foreign file like a delivery and names it the store's way. */
static int
store_watch_adopt(struct store_watch_task *t, sqlite3 *db,
    struct store_watch_ent *e)
{
	char *path = store_watch_path(t, e->in_cur, e->name);
	struct store_msg m = {.mailbox_id = t->mb.id, .in_cur = e->in_cur};
	struct store_change *c;
	struct mime_info mi;
	struct stat sb;
	char *data, *unique, *name;
	size_t len;
	int rc;

	if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    store_maildir_read(path, &data, &len) < 0) {
		/* Gone again, or unreadable: nothing to index. */
		free(path);
		return 0;
	}
	unique = store_maildir_unique(t->task.store);
	mime_parse(data, len, &mi);
	m.unique = unique;
	m.flags = e->in_cur ? e->n.flags : 0;
	m.size = len;
	m.internaldate = sb.st_mtime;
	m.mime = &mi;
	rc = store_index_message_add(db, &m);
	if (rc == 0) {
		c = store_watch_change(t, STORE_CHANGE_NEW);
		c->uid = m.uid;
		c->modseq = m.modseq;
		c->flags = m.flags;
		c->size = m.size;
		name = store_watch_canonical(m.file, e->in_cur, m.flags);
		store_watch_rename_later(t, path,
		    store_watch_path(t, e->in_cur, name));
		free(name);
		path = NULL;
	}
	mime_info_deinit(&mi);
	free(data);
	free(m.file);
	free(unique);
	free(path);
	return rc;
}

static int
store_watch_stamp(struct store_watch_task *t, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET scan_new_mtime = ?2, scan_cur_mtime = ?3"
	        " WHERE id = ?1",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, t->mb.id);
	sqlite3_bind_int64(st, 2, t->mtime[0]);
	sqlite3_bind_int64(st, 3, t->mtime[1]);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Inside the transaction: renamed rows, gone rows, then foreign files. */
static int
store_watch_apply(struct store_watch_task *t, sqlite3 *db)
{
	for (size_t i = 0; i < t->nrows; i++) {
		struct store_watch_row *r = &t->rows[i];

		if (r->ent != NULL && store_watch_update(t, db, r) < 0)
			return -1;
		if (!r->claimed && store_watch_expunge(t, db, r) < 0)
			return -1;
	}
	for (size_t i = 0; i < t->nents; i++)
		if (t->ents[i].adopt &&
		    store_watch_adopt(t, db, &t->ents[i]) < 0)
			return -1;
	return t->full ? store_watch_stamp(t, db) : 0;
}

static void
store_watch_renames(struct store_watch_task *t)
{
	for (size_t i = 0; i < t->nrenames; i += 2) {
		if (rename(t->renames[i], t->renames[i + 1]) == 0)
			continue;
		/* Moved again meanwhile: the row now names no file. */
		log_warn("event=store op=maildir_rename error=\"%s\"",
		    strerror(errno));
		t->failed_rename = 1;
	}
}

/* Worker: compares the folder with the index and commits the difference. */
static void
store_watch_run(struct store_task *task, sqlite3 *db)
{
	struct store_watch_task *t = (struct store_watch_task *)task;
	int64_t stamp[2] = {0, 0};

	if (db == NULL || store_watch_mailbox(t, db, stamp) < 0)
		return;
	t->folder = xasprintf("%s%s%s", task->user->dir,
	    t->mb.dir[0] != '\0' ? "/" : "", t->mb.dir);
	if (t->full) {
		store_watch_mtimes(t);
		if (t->use_mtime && store_watch_unchanged(t, stamp))
			return;
	}
	if (store_index_begin(db) < 0)
		goto fail;
	if (!t->full) {
		store_watch_ents_prepare(t);
		if (store_watch_rows(t, db) < 0)
			goto fail;
		if (store_watch_probe(t) < 0) {
			/* Escalate: the directories tell where rows went. */
			t->full = 1;
			store_watch_rows_free(t);
			store_watch_mtimes(t);
		}
	}
	if (t->full && (store_watch_rows(t, db) < 0 || store_watch_scan(t) < 0))
		goto fail;
	if (store_watch_apply(t, db) < 0 || store_index_commit(db) < 0)
		goto fail;
	store_watch_renames(t);
	return;
fail:
	log_error("event=store op=maildir_sync user=%s error=\"%s\"",
	    task->user->name, sqlite3_errmsg(db));
	store_index_rollback(db);
	t->nchanges = 0;
}

/* ------------------------------------------------------------------ */
/* Stamps kept through our own writes (worker). */

void
store_watch_keep_begin(struct store_watch_keep *k, sqlite3 *db,
    int64_t mailbox_id, const char *folder, unsigned which)
{
	sqlite3_stmt *st;

	*k = (struct store_watch_keep){.mailbox_id = mailbox_id};
	if (sqlite3_prepare_v2(db,
	        "SELECT scan_new_mtime, scan_cur_mtime FROM mailbox"
	        " WHERE id = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		k->stamp[0] = sqlite3_column_int64(st, 0);
		k->stamp[1] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	for (int i = 0; i < 2; i++)
		k->match[i] = (which & (1u << i)) && k->stamp[i] != 0 &&
		    store_watch_dir_mtime(folder, i) == k->stamp[i];
	if (k->match[0] || k->match[1])
		k->folder = xstrdup(folder);
}

/* Records the new stamps, compared and set in one statement. */
static int
store_watch_keep_write(struct store_watch_keep *k, sqlite3 *db,
    const int64_t now[2])
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET scan_new_mtime = ?4, scan_cur_mtime = ?5"
	        " WHERE id = ?1 AND scan_new_mtime = ?2"
	        " AND scan_cur_mtime = ?3",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, k->mailbox_id);
	sqlite3_bind_int64(st, 2, k->stamp[0]);
	sqlite3_bind_int64(st, 3, k->stamp[1]);
	sqlite3_bind_int64(st, 4, now[0]);
	sqlite3_bind_int64(st, 5, now[1]);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_watch_keep_end(struct store_watch_keep *k, sqlite3 *db)
{
	int64_t now[2] = {k->stamp[0], k->stamp[1]};
	int change = 0, r = 0;

	if (k->folder == NULL)
		return 0;
	for (int i = 0; i < 2; i++) {
		int64_t m =
		    k->match[i] ? store_watch_dir_mtime(k->folder, i) : 0;

		/* Whole seconds: this file system cannot show a later change
		 * in the same second. */
		if (m != 0 && m % 1000000000 != 0 && m != now[i]) {
			now[i] = m;
			change = 1;
		}
	}
	free(k->folder);
	k->folder = NULL;
	if (!change || store_index_set_full_sync(db, 0) < 0)
		return 0;
	if (store_watch_keep_write(k, db, now) < 0)
		log_warn("event=store op=keep_stamp error=\"%s\"",
		    sqlite3_errmsg(db));
	if (store_index_set_full_sync(db, 1) < 0)
		r = -1;
	return r;
}

/* ------------------------------------------------------------------ */
/* Watches and batches (loop thread). */

static void store_watch_submit(struct store_watch *w);
static void store_watch_free(struct store_watch *w);

/* The job that adds IN_CLOSE_WRITE to a folder's two watches. */
struct store_watch_up {
	struct store_watch *w; /* loop thread only */
	int fd;
	char *path[2];
	int wd[2];
};

/* Worker: the kernel marks each cached entry of the directories here. */
static void
store_watch_up_run(void *arg)
{
	struct store_watch_up *up = arg;

	for (int i = 0; i < 2; i++)
		up->wd[i] =
		    inotify_add_watch(up->fd, up->path[i], STORE_WATCH_MASK);
}

/*
 * A watch the job made that no slot holds (the view let go meanwhile, or
 * the directory was replaced): removed unless another slot shares it.
 */
static void
store_watch_wd_release(struct store_watch_set *set, int wd)
{
	for (struct store_watch_slot *s =
	         set->buckets[wd % STORE_WATCH_BUCKETS];
	     s != NULL; s = s->next)
		if (s->wd == wd && s->alive)
			return;
	inotify_rm_watch(set->fd, wd);
}

/*
 * Loop thread: a file written in place before the upgrade raised no event,
 * but moved the directory's mtime, so the mtimes are compared once more.
 */
static void
store_watch_up_done(void *arg)
{
	struct store_watch_up *up = arg;
	struct store_watch *w = up->w;

	for (int i = 0; i < 2; i++) {
		if (up->wd[i] >= 0 &&
		    (w->dropped || up->wd[i] != w->slot[i].wd))
			store_watch_wd_release(w->set, up->wd[i]);
		free(up->path[i]);
	}
	free(up);
	w->set->store->inflight--;
	w->running = 0;
	if (w->dropped) {
		store_watch_free(w);
		return;
	}
	w->initial = 1;
	store_watch_submit(w);
}

/*
 * Loop thread, after the load scan: a job outside the user's queue, so
 * that the view's load and the session's next task need not wait for it.
 */
static void
store_watch_upgrade(struct store_watch *w, const char *folder)
{
	struct store_watch_up *up = xcalloc(1, sizeof(*up));

	w->upgrade = 0;
	w->running = 1;
	up->w = w;
	up->fd = w->set->fd;
	up->path[0] = xasprintf("%s/new", folder);
	up->path[1] = xasprintf("%s/cur", folder);
	w->set->store->inflight++; /* store_free() waits for it */
	store_deliver_submit(w->set->store, store_watch_up_run,
	    store_watch_up_done, up);
}

/* Loop thread: announces the changes, then runs the next batch. */
static void
store_watch_done(struct store_task *task)
{
	struct store_watch_task *t = (struct store_watch_task *)task;
	struct store *store = task->store;
	struct store_watch *w = t->w;

	for (size_t i = 0; i < t->nchanges; i++) {
		struct store_change *c = &t->changes[i];

		c->user = w->user->name;
		c->mailbox = t->mb.name;
		store_view_apply(store, c, NULL);
		if (store->change_cb != NULL)
			store->change_cb(c, store->change_arg);
	}
	if (t->nchanges > 0)
		log_debug("event=store op=maildir_sync user=%s mailbox_id=%lld"
		          " changes=%zu full=%d",
		    w->user->name, (long long)t->mb.id, t->nchanges, t->full);
	if (t->mb.id != 0)
		w->mailbox_id = t->mb.id;
	if (t->failed_rename && !t->full)
		w->rescan = 1;
	w->running = 0;
	if (w->upgrade && !w->dropped && t->folder != NULL) {
		store_watch_upgrade(w, t->folder);
		store_watch_task_free(t);
		return;
	}
	store_watch_task_free(t);
	if (w->dropped)
		store_watch_free(w);
	else if (w->npend > 0 || w->rescan)
		store_watch_submit(w);
}

/* Hands the batch of w to a new reconciliation task. */
static void
store_watch_submit(struct store_watch *w)
{
	struct store_watch_task *t = xcalloc(1, sizeof(*t));

	t->w = w;
	t->mailbox = xstrdup(w->mailbox);
	t->mailbox_id = w->mailbox_id;
	t->full = w->initial || w->rescan;
	t->use_mtime = w->initial && !w->rescan;
	for (size_t i = 0; i < w->npend; i++) {
		if (!t->full)
			store_watch_ent_add(t, w->pend[i].name,
			    w->pend[i].in_cur, 0, 0);
		free(w->pend[i].name);
	}
	free(w->pend);
	w->pend = NULL;
	w->npend = 0;
	w->initial = w->rescan = 0;
	w->running = 1;
	t->task.run = store_watch_run;
	t->task.done = store_watch_done;
	store_task_submit(w->set->store, w->user->name, &t->task);
}

static void
store_watch_mark(struct store_watch *w)
{
	struct store_watch_set *set = w->set;

	if (!w->dirty) {
		w->dirty = 1;
		TAILQ_INSERT_TAIL(&set->dirty, w, dirty_link);
	}
}

static void
store_watch_pend_add(struct store_watch *w, const char *name, int in_cur)
{
	if (w->rescan)
		return;
	if (w->npend >= STORE_WATCH_PENDING_MAX) {
		for (size_t i = 0; i < w->npend; i++)
			free(w->pend[i].name);
		free(w->pend);
		w->pend = NULL;
		w->npend = 0;
		w->rescan = 1;
		return;
	}
	w->pend = xreallocarray(w->pend, w->npend + 1, sizeof(*w->pend));
	w->pend[w->npend].name = xstrdup(name);
	w->pend[w->npend++].in_cur = in_cur;
}

static void
store_watch_event(struct store_watch_set *set, const struct inotify_event *ev)
{
	struct store_watch_slot *s;
	struct store_watch *w;

	if (ev->mask & IN_Q_OVERFLOW) {
		/* Events were lost: every watched folder is scanned. */
		TAILQ_FOREACH(w, &set->all, all_link) {
			w->rescan = 1;
			store_watch_mark(w);
		}
		return;
	}
	if (ev->wd < 0)
		return;
	for (s = set->buckets[ev->wd % STORE_WATCH_BUCKETS]; s != NULL;
	     s = s->next) {
		if (s->wd != ev->wd || !s->alive)
			continue;
		if (ev->mask & IN_IGNORED) {
			s->alive = 0; /* the kernel dropped it */
			continue;
		}
		if (ev->len == 0 || ev->name[0] == '.')
			continue;
		store_watch_pend_add(s->w, ev->name, s->in_cur);
		store_watch_mark(s->w);
	}
}

static void
store_watch_read(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch_set *set = arg;
	char buf[16384]
	    __attribute__((aligned(__alignof__(struct inotify_event))));

	for (int i = 0; i < STORE_WATCH_READS; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		const char *p = buf;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		while (p < buf + n) {
			const struct inotify_event *ev =
			    (const struct inotify_event *)(const void *)p;

			store_watch_event(set, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (!TAILQ_EMPTY(&set->dirty))
		event_active(set->flush, EV_TIMEOUT, 0);
}

/* End of the loop turn: one reconciliation per folder with news. */
static void
store_watch_flush(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch_set *set = arg;
	struct store_watch *w;

	while ((w = TAILQ_FIRST(&set->dirty)) != NULL) {
		TAILQ_REMOVE(&set->dirty, w, dirty_link);
		w->dirty = 0;
		if (!w->running)
			store_watch_submit(w);
	}
}

static struct store_watch_set *
store_watch_set_get(struct store *store)
{
	struct store_watch_set *set = store->watches;

	if (set != NULL)
		return set;
	set = xcalloc(1, sizeof(*set));
	set->store = store;
	TAILQ_INIT(&set->dirty);
	TAILQ_INIT(&set->all);
	set->flush = event_new(store->base, -1, 0, store_watch_flush, set);
	set->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (set->fd < 0)
		log_warn("event=store op=inotify_init error=\"%s\"",
		    strerror(errno));
	else
		set->ev = event_new(store->base, set->fd, EV_READ | EV_PERSIST,
		    store_watch_read, set);
	if (set->flush == NULL ||
	    (set->fd >= 0 && (set->ev == NULL || event_add(set->ev, NULL) < 0)))
		log_fatal("event=store error=\"cannot watch inotify\"");
	store->watches = set;
	return set;
}

/* Watches <user>/<folder>/<new or cur>. */
static void
store_watch_slot_add(struct store_watch *w, const char *folder, int in_cur)
{
	struct store_watch_set *set = w->set;
	struct store_watch_slot *s = &w->slot[in_cur];
	char *path;

	s->w = w;
	s->in_cur = in_cur;
	s->wd = -1;
	if (set->fd < 0 || folder == NULL)
		return;
	path = xasprintf("%s%s%s/%s", w->user->dir, folder[0] ? "/" : "",
	    folder, in_cur ? "cur" : "new");
	s->wd = inotify_add_watch(set->fd, path, STORE_WATCH_MASK_DIR);
	if (s->wd < 0 && errno != ENOENT)
		log_warn("event=store op=inotify_add_watch path=%s error=\"%s\"",
		    path, strerror(errno));
	free(path);
	if (s->wd < 0)
		return;
	s->alive = 1;
	s->next = set->buckets[s->wd % STORE_WATCH_BUCKETS];
	set->buckets[s->wd % STORE_WATCH_BUCKETS] = s;
}

/* Unhooks a slot; the kernel watch goes when no other slot shares it. */
static void
store_watch_slot_remove(struct store_watch_slot *s)
{
	struct store_watch_set *set = s->w->set;
	struct store_watch_slot **pp, *o;
	int shared = 0;

	for (pp = &set->buckets[s->wd % STORE_WATCH_BUCKETS]; *pp != NULL;) {
		o = *pp;
		if (o == s) {
			*pp = o->next;
			continue;
		}
		shared |= o->wd == s->wd && o->alive;
		pp = &o->next;
	}
	if (!shared && s->alive)
		inotify_rm_watch(set->fd, s->wd);
	s->wd = -1;
	s->alive = 0;
}

void
store_watch_enable(struct store *store, int on)
{
	store_watch_set_get(store)->off = !on;
}

struct store_watch *
store_watch_add(struct store *store, struct store_user *u, const char *mailbox)
{
	struct store_watch_set *set = store_watch_set_get(store);
	struct store_watch *w;
	char *folder;

	if (set->off)
		return NULL;
	w = xcalloc(1, sizeof(*w) + strlen(mailbox) + 1);
	folder = store_maildir_folder_dir(mailbox);
	w->set = set;
	w->user = u;
	memcpy(w->mailbox, mailbox, strlen(mailbox) + 1);
	store_watch_slot_add(w, folder, 0);
	store_watch_slot_add(w, folder, 1);
	free(folder);
	TAILQ_INSERT_TAIL(&w->set->all, w, all_link);
	w->initial = 1;
	w->upgrade = set->fd >= 0;
	store_watch_submit(w);
	return w;
}

static void
store_watch_free(struct store_watch *w)
{
	for (size_t i = 0; i < w->npend; i++)
		free(w->pend[i].name);
	free(w->pend);
	free(w);
}

void
store_watch_drop(struct store_watch **wp)
{
	struct store_watch *w = *wp;

	*wp = NULL;
	if (w == NULL)
		return;
	for (int i = 0; i < 2; i++)
		if (w->slot[i].wd >= 0)
			store_watch_slot_remove(&w->slot[i]);
	TAILQ_REMOVE(&w->set->all, w, all_link);
	if (w->dirty)
		TAILQ_REMOVE(&w->set->dirty, w, dirty_link);
	w->dirty = 0;
	if (w->running)
		w->dropped = 1;
	else
		store_watch_free(w);
}

void
store_watch_shutdown(struct store *store)
{
	struct store_watch_set *set = store->watches;

	if (set == NULL)
		return;
	if (set->ev != NULL)
		event_free(set->ev);
	event_free(set->flush);
	if (set->fd >= 0)
		close(set->fd);
	free(set);
	store->watches = NULL;
}
