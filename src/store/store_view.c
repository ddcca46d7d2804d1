/*
 * Shared mailbox views: one per open (user, mailbox), loaded once from the
 * index and kept current by every commit, holding the UID map (RFC 3501
 * section 2.3.1), flags, interned keyword sets, MODSEQ and a window of
 * recent expunges (RFC 7162 section 3.2.5), and the \Recent claim of RFC
 * 3501 section 2.3.2. Loads and claims are user tasks (store.c), so they
 * run one at a time with the user's deliveries on the user's one handle.
 *
 * Memory: 16 bytes per message, plus per view about 250 bytes, the keyword
 * names and sets, and (after the first expunge) a 2 KiB expunge window.
 * A view whose every holder sits in IDLE may hibernate: the message array,
 * keywords and window go, and only the UIDs remain as runs of consecutive
 * numbers (8 bytes a run), enough to announce new messages and expunges;
 * the first flag change, or a holder that needs more, reloads it.
 * While it reloads the runs stay current, so a failed reload leaves it
 * hibernated as it was.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_view.h"
#include "store/store_watch.h"

/* Expunges a view remembers; older ones raise the window's floor. */
#define STORE_VIEW_EXPUNGES 128
#define STORE_VIEW_KWSET_MAX 0xffffff

enum store_view_state {
	STORE_VIEW_LOADING, /* the load task owns the data fields */
	STORE_VIEW_READY,
	STORE_VIEW_GONE, /* failed to load; freed when the waiters are told */
};

/* What of a ready view is in memory. */
enum store_view_mem {
	STORE_VIEW_FULL,       /* msgs, keywords and the window */
	STORE_VIEW_HIBERNATED, /* runs only; nothing but news since */
	STORE_VIEW_WAKING,     /* runs only; a reload is in flight */
};

/* Consecutive UIDs lo..hi, all in the mailbox. */
struct store_view_run {
	uint32_t lo, hi;
};

/* A set of keywords: sorted, distinct indices into view->keywords. */
struct store_kwset {
	uint32_t n;
	uint32_t *kw;
};

/* One store_view_open() waiting for its answer. */
struct store_view_waiter {
	struct store_view *view;
	enum store_view_status status;
	store_view_open_cb cb;
	void *arg;
	struct store_view_waiter *next;
};

struct store_view {
	struct store *store;
	struct store_user *user;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t first_recent_uid;
	uint32_t nkeywords;
	uint64_t highestmodseq;
	struct store_view_msg *msgs; /* ascending UID */
	uint32_t count, cap;
	char **keywords;
	struct store_kwset *sets; /* set 0 is the empty set */
	uint32_t *slots;          /* hash of sets: set index + 1, 0 free */
	uint32_t nsets;
	uint32_t nslots;           /* a power of two, over twice nsets */
	struct store_expunge *exp; /* ring of STORE_VIEW_EXPUNGES */
	uint32_t exp_head, exp_len;
	uint64_t floor; /* every expunge above this MODSEQ is in exp */
	unsigned refs;
	enum store_view_state state;
	struct store_view_waiter *waiters;
	struct store_view *next; /* on user->views */
	TAILQ_ENTRY(store_view) lru;
	int in_lru;
	int retired; /* its mailbox was deleted or renamed: never found */
	struct store_watch *watch; /* inotify on its folder (store_watch.c) */
	enum store_view_mem mem;
	struct store_view_run *runs; /* unless FULL: the UID map */
	uint32_t nruns;
	unsigned idlers;       /* references whose holders sit in IDLE */
	uint32_t claim_gen;    /* \Recent claims made on this view */
	uint32_t recent_given; /* UIDs below it went to the newest claim */
	struct store_view_waiter *wakers;
	char name[]; /* the mailbox's IMAP name */
};

static uint32_t
store_view_kwset_hash(const uint32_t *kw, uint32_t n)
{
	uint32_t h = 2166136261u;

	for (uint32_t i = 0; i < n; i++)
		h = (h ^ kw[i]) * 16777619u;
	return h;
}

static void
store_view_slots_grow(struct store_view *v)
{
	uint32_t n = v->nslots ? v->nslots * 2 : 16;

	free(v->slots);
	v->slots = xcalloc(n, sizeof(*v->slots));
	v->nslots = n;
	for (uint32_t s = 1; s < v->nsets; s++) {
		uint32_t h = store_view_kwset_hash(v->sets[s].kw, v->sets[s].n);

		while (v->slots[h & (n - 1)] != 0)
			h++;
		v->slots[h & (n - 1)] = s + 1;
	}
}

/*
 * Returns the index of the set of the n sorted, distinct keyword indices
 * kw, adding it when new, or -1 when the view holds too many sets.
 */
static int64_t
store_view_kwset_intern(struct store_view *v, const uint32_t *kw, uint32_t n)
{
	uint32_t h = store_view_kwset_hash(kw, n), s;

	if (n == 0)
		return 0;
	if (v->nslots < 2 * (v->nsets + 1))
		store_view_slots_grow(v);
	for (;; h++) {
		s = v->slots[h & (v->nslots - 1)];
		if (s == 0)
			break;
		if (v->sets[s - 1].n == n &&
		    memcmp(v->sets[s - 1].kw, kw, n * sizeof(*kw)) == 0)
			return s - 1;
	}
	if (v->nsets > STORE_VIEW_KWSET_MAX)
		return -1;
	v->sets = xreallocarray(v->sets, v->nsets + 1, sizeof(*v->sets));
	v->sets[v->nsets].n = n;
	v->sets[v->nsets].kw = xcalloc(n, sizeof(*kw));
	memcpy(v->sets[v->nsets].kw, kw, n * sizeof(*kw));
	v->slots[h & (v->nslots - 1)] = v->nsets + 1;
	return v->nsets++;
}

/* The index of keyword name (len bytes), added to the mailbox's list. */
static uint32_t
store_view_keyword_intern(struct store_view *v, const char *name, size_t len)
{
	for (uint32_t k = 0; k < v->nkeywords; k++)
		if (strncmp(v->keywords[k], name, len) == 0 &&
		    v->keywords[k][len] == '\0')
			return k;
	v->keywords =
	    xreallocarray(v->keywords, v->nkeywords + 1, sizeof(*v->keywords));
	v->keywords[v->nkeywords] = xstrndup(name, len);
	return v->nkeywords++;
}

static int
store_view_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The set of the space-separated keywords in text (NULL or "" for none).
 * Returns its index, or -1 when the view holds too many sets.
 */
static int64_t
store_view_kwset_parse(struct store_view *v, const char *text)
{
	uint32_t *kw, n = 0, m = 0;
	int64_t r;

	if (text == NULL || text[0] == '\0')
		return 0;
	kw = xcalloc(strlen(text) / 2 + 1, sizeof(*kw));
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, " ");

		if (len > 0)
			kw[n++] = store_view_keyword_intern(v, p, len);
		p += len;
		p += strspn(p, " ");
	}
	qsort(kw, n, sizeof(*kw), store_view_u32_cmp);
	for (uint32_t i = 0; i < n; i++)
		if (m == 0 || kw[m - 1] != kw[i])
			kw[m++] = kw[i];
	r = store_view_kwset_intern(v, kw, m);
	free(kw);
	return r;
}

/* The position of the first message with a UID >= uid (FULL views). */
static uint32_t
store_view_pos(const struct store_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
store_view_reserve(struct store_view *v, uint32_t n)
{
	if (n <= v->cap)
		return;
	v->cap = n < 64 ? 64 : n;
	if (v->cap < n + n / 2 && n > 64)
		v->cap = n + n / 2;
	v->msgs = xreallocarray(v->msgs, v->cap, sizeof(*v->msgs));
}

/*
 * Adds a message; a UID the view already holds is left alone. UIDs mostly
 * come in ascending order, but two deliveries committed in one user job
 * can be announced in either order, so a lower UID is inserted in place.
 */
static void
store_view_insert(struct store_view *v, uint32_t uid, uint64_t modseq,
    unsigned flags, uint32_t kwset)
{
	uint32_t pos = v->count;

	if (v->count > 0 && v->msgs[v->count - 1].uid >= uid) {
		pos = store_view_pos(v, uid);
		if (v->msgs[pos].uid == uid)
			return;
	}
	store_view_reserve(v, v->count + 1);
	memmove(&v->msgs[pos + 1], &v->msgs[pos],
	    (v->count - pos) * sizeof(*v->msgs));
	v->msgs[pos] = (struct store_view_msg){
	    .modseq = modseq,
	    .uid = uid,
	    .kwset = kwset,
	    .flags = flags & 0xff,
	};
	v->count++;
	if (uid >= v->uidnext)
		v->uidnext = uid + 1;
}

/*
 * Drops the message array, the keywords and the expunge window: every
 * expunge so far counts as reported (the window's floor moves up).
 */
static void
store_view_forget(struct store_view *v)
{
	for (uint32_t k = 0; k < v->nkeywords; k++)
		free(v->keywords[k]);
	for (uint32_t s = 1; s < v->nsets; s++)
		free(v->sets[s].kw);
	free(v->keywords);
	free(v->sets);
	free(v->slots);
	free(v->exp);
	free(v->msgs);
	v->keywords = NULL;
	v->sets = NULL;
	v->slots = NULL;
	v->exp = NULL;
	v->msgs = NULL;
	v->nkeywords = v->nsets = v->nslots = 0;
	v->exp_head = v->exp_len = 0;
	v->cap = 0;
	v->floor = v->highestmodseq;
}

static void
store_view_free(struct store_view *v)
{
	store_watch_drop(&v->watch);
	store_view_forget(v);
	free(v->runs);
	free(v);
}

static void store_view_wake_wait(struct store_view *v,
    struct store_view_waiter *w);

/* ---- The UID runs of a hibernated view ---- */

/* The index of the first run whose end is at least uid (nruns if none). */
static uint32_t
store_view_run_find(const struct store_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->nruns;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v->runs[mid].hi < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
store_view_run_insert_at(struct store_view *v, uint32_t r, uint32_t lo,
    uint32_t hi)
{
	v->runs = xreallocarray(v->runs, v->nruns + 1, sizeof(*v->runs));
	memmove(&v->runs[r + 1], &v->runs[r],
	    (v->nruns - r) * sizeof(*v->runs));
	v->runs[r] = (struct store_view_run){lo, hi};
	v->nruns++;
}

static void
store_view_run_delete_at(struct store_view *v, uint32_t r)
{
	memmove(&v->runs[r], &v->runs[r + 1],
	    (v->nruns - r - 1) * sizeof(*v->runs));
	v->nruns--;
}

/* Adds uid to the runs; returns 0, or -1 when it was there already. */
static int
store_view_run_add(struct store_view *v, uint32_t uid)
{
	uint32_t r = store_view_run_find(v, uid);

	if (r < v->nruns && v->runs[r].lo <= uid)
		return -1;
	if (r > 0 && v->runs[r - 1].hi + 1 == uid) {
		v->runs[r - 1].hi = uid;
		if (r < v->nruns && v->runs[r].lo == uid + 1) {
			v->runs[r - 1].hi = v->runs[r].hi;
			store_view_run_delete_at(v, r);
		}
	} else if (r < v->nruns && v->runs[r].lo == uid + 1)
		v->runs[r].lo = uid;
	else
		store_view_run_insert_at(v, r, uid, uid);
	return 0;
}

/* Removes uid from the runs; returns 0, or -1 when it was not there. */
static int
store_view_run_remove(struct store_view *v, uint32_t uid)
{
	uint32_t r = store_view_run_find(v, uid);
	struct store_view_run *run = &v->runs[r];

	if (r == v->nruns || run->lo > uid)
		return -1;
	if (run->lo == uid && run->hi == uid)
		store_view_run_delete_at(v, r);
	else if (run->lo == uid)
		run->lo++;
	else if (run->hi == uid)
		run->hi--;
	else {
		uint32_t hi = run->hi;

		run->hi = uid - 1;
		store_view_run_insert_at(v, r + 1, uid + 1, hi);
	}
	return 0;
}

/* The messages below uid, counted over the runs. */
static uint32_t
store_view_run_lower(const struct store_view *v, uint32_t uid)
{
	uint32_t n = 0;

	for (uint32_t r = 0; r < v->nruns && v->runs[r].lo < uid; r++)
		n += (uid <= v->runs[r].hi ? uid - 1 : v->runs[r].hi) -
		    v->runs[r].lo + 1;
	return n;
}

static void
store_view_unlink(struct store_view *v)
{
	struct store_view **pp = &v->user->views;

	while (*pp != v)
		pp = &(*pp)->next;
	*pp = v->next;
}

/* ---- Loading (worker), opening (loop) ---- */

struct store_view_load {
	struct store_task task; /* first: the task is the load */
	struct store_view *view;
	enum store_view_status status;
};

static int
store_view_load_mailbox(struct store_view *v, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT id, uidvalidity, uidnext, highestmodseq,"
	        " first_recent_uid, messages FROM mailbox WHERE name = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, v->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		v->mailbox_id = sqlite3_column_int64(st, 0);
		v->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		v->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		v->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		v->first_recent_uid = (uint32_t)sqlite3_column_int64(st, 4);
		store_view_reserve(v, (uint32_t)sqlite3_column_int64(st, 5));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? 1 : -1;
}

static int
store_view_load_keywords(struct store_view *v, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT name FROM mailbox_keyword WHERE mailbox_id = ?", -1,
	        &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, v->mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name != NULL)
			store_view_keyword_intern(v, name, strlen(name));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One query in UID order; rows come from the (mailbox_id, uid) key. */
static int
store_view_load_messages(struct store_view *v, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT uid, flags, modseq, keywords FROM message"
	        " WHERE mailbox_id = ? ORDER BY uid",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, v->mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kw = (const char *)sqlite3_column_text(st, 3);
		int64_t set = store_view_kwset_parse(v, kw);

		if (set < 0)
			break;
		store_view_insert(v, (uint32_t)sqlite3_column_int64(st, 0),
		    (uint64_t)sqlite3_column_int64(st, 2),
		    (unsigned)sqlite3_column_int(st, 1), (uint32_t)set);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Worker: fills the view, which the loop thread leaves alone meanwhile. */
static void
store_view_load_run(struct store_task *t, sqlite3 *db)
{
	struct store_view_load *l = (struct store_view_load *)t;
	struct store_view *v = l->view;
	int r;

	if (db == NULL)
		return;
	r = store_view_load_mailbox(v, db);
	if (r > 0) {
		l->status = STORE_VIEW_NOMAILBOX;
		return;
	}
	if (r == 0 && store_view_load_keywords(v, db) == 0 &&
	    store_view_load_messages(v, db) == 0) {
		v->floor = v->highestmodseq;
		l->status = STORE_VIEW_OK;
		return;
	}
	log_error("event=store op=view_load user=%s error=\"%s\"",
	    v->user->name, sqlite3_errmsg(db));
}

/* Loop thread: answers every waiting open, then drops a failed view. */
static void
store_view_load_done(struct store_task *t)
{
	struct store_view_load *l = (struct store_view_load *)t;
	struct store_view *v = l->view;
	struct store_view_waiter *w;

	v->state =
	    l->status == STORE_VIEW_OK ? STORE_VIEW_READY : STORE_VIEW_GONE;
	if (v->state == STORE_VIEW_GONE)
		store_view_unlink(v);
	while ((w = v->waiters) != NULL) {
		v->waiters = w->next;
		if (v->state == STORE_VIEW_GONE)
			v->refs--;
		w->cb(v->state == STORE_VIEW_READY ? v : NULL, l->status,
		    w->arg);
		free(w);
	}
	if (v->state == STORE_VIEW_GONE)
		store_view_free(v);
	free(l);
}

static void
store_view_answer(evutil_socket_t fd, short what, void *arg)
{
	struct store_view_waiter *w = arg;

	w->cb(w->view, w->status, w->arg);
	free(w);
}

static struct store_view *
store_view_lookup(struct store_user *u, const char *name)
{
	struct store_view *v;

	for (v = u->views; v != NULL; v = v->next)
		if (v->state != STORE_VIEW_GONE && !v->retired &&
		    strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

/* Loop thread: a new view of u's mailbox name, loading. */
static struct store_view *
store_view_new(struct store *store, struct store_user *u, const char *name)
{
	/* The name lives at the end of the struct: one allocation. */
	struct store_view *v = xcalloc(1, sizeof(*v) + strlen(name) + 1);
	struct store_view_load *l = xcalloc(1, sizeof(*l));

	v->store = store;
	v->user = u;
	memcpy(v->name, name, strlen(name) + 1);
	v->state = STORE_VIEW_LOADING;
	v->sets = xcalloc(1, sizeof(*v->sets));
	v->nsets = 1;
	v->next = u->views;
	u->views = v;
	l->view = v;
	l->status = STORE_VIEW_IO;
	l->task.run = store_view_load_run;
	l->task.done = store_view_load_done;
	/* Its folder is reconciled with the index before the load reads. */
	v->watch = store_watch_add(store, u, name);
	store_task_submit(store, u->name, &l->task);
	return v;
}

void
store_view_open(struct store *store, const char *user, const char *mailbox,
    store_view_open_cb cb, void *arg)
{
	struct store_view_waiter *w = xcalloc(1, sizeof(*w));
	struct store_user *u = store_user_get(store, user);
	const char *name =
	    strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
	struct timeval now = {0, 0};
	struct store_view *v;

	w->cb = cb;
	w->arg = arg;
	v = u != NULL ? store_view_lookup(u, name) : NULL;
	if (u != NULL && (v == NULL || v->state == STORE_VIEW_LOADING)) {
		struct store_view_waiter **pp;

		if (v == NULL)
			v = store_view_new(store, u, name);
		store_view_ref(v);
		w->view = v;
		for (pp = &v->waiters; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = w;
		return;
	}
	if (v != NULL && v->mem != STORE_VIEW_FULL) {
		w->view = store_view_ref(v);
		store_view_wake_wait(v, w);
		return;
	}
	/* Loaded already, or an invalid user name that has no index. */
	w->view = v != NULL ? store_view_ref(v) : NULL;
	w->status = v != NULL ? STORE_VIEW_OK : STORE_VIEW_IO;
	if (event_base_once(store->base, -1, EV_TIMEOUT, store_view_answer, w,
	        &now) < 0)
		log_fatal("event=store error=\"event_base_once failed\"");
}

struct store_view *
store_view_ref(struct store_view *v)
{
	if (v->in_lru) {
		TAILQ_REMOVE(&v->store->view_lru, v, lru);
		v->in_lru = 0;
		v->store->nview_lru--;
	}
	v->refs++;
	return v;
}

void
store_view_unref(struct store_view **vp)
{
	struct store_view *v = *vp;
	struct store *store;

	*vp = NULL;
	if (v == NULL || --v->refs > 0)
		return;
	assert(v->state == STORE_VIEW_READY);
	store = v->store;
	if (v->retired) {
		store_view_unlink(v);
		store_view_free(v);
		return;
	}
	TAILQ_INSERT_HEAD(&store->view_lru, v, lru);
	v->in_lru = 1;
	store->nview_lru++;
	while (store->nview_lru > STORE_VIEW_CACHE) {
		v = TAILQ_LAST(&store->view_lru, store_view_list);
		TAILQ_REMOVE(&store->view_lru, v, lru);
		store->nview_lru--;
		store_view_unlink(v);
		store_view_free(v);
	}
}

/* Whether a view's name is name itself or one of its inferiors. */
static int
store_view_under(const struct store_view *v, const char *name)
{
	size_t n = strlen(name);

	return strncmp(v->name, name, n) == 0 &&
	    (v->name[n] == '\0' || v->name[n] == '/');
}

/* Tells the holders of a retired view that its mailbox is gone. */
static void
store_view_gone(struct store *store, struct store_view *v)
{
	struct store_change c = {
	    .kind = STORE_CHANGE_MAILBOX_GONE,
	    .user = v->user->name,
	    .mailbox = v->name,
	    .mailbox_id = v->mailbox_id,
	    .uidvalidity = v->uidvalidity,
	};

	if (store->change_cb != NULL)
		store->change_cb(&c, store->change_arg);
}

void
store_view_retire(struct store *store, const char *user, const char *name)
{
	struct store_user *u = store_user_find(store, user);
	struct store_view *v, *next;

	for (v = u != NULL ? u->views : NULL; v != NULL; v = next) {
		next = v->next;
		if (v->retired || !store_view_under(v, name))
			continue;
		v->retired = 1;
		if (!v->in_lru) {
			store_view_gone(store, v);
			continue;
		}
		/* Unreferenced: nobody holds it, so it goes now. */
		TAILQ_REMOVE(&store->view_lru, v, lru);
		store->nview_lru--;
		store_view_unlink(v);
		store_view_free(v);
	}
}

/* Frees every view at store_free(); no reference may be left. */
void
store_view_free_all(struct store *store)
{
	for (size_t i = 0; i < STORE_USER_BUCKETS; i++) {
		for (struct store_user *u = store->users[i]; u != NULL;
		     u = u->next) {
			struct store_view *v;

			while ((v = u->views) != NULL) {
				u->views = v->next;
				store_view_free(v);
			}
		}
	}
	TAILQ_INIT(&store->view_lru);
	store->nview_lru = 0;
}

int64_t
store_view_mailbox_id(const struct store_view *v)
{
	return v->mailbox_id;
}

const char *
store_view_name(const struct store_view *v)
{
	return v->name;
}

uint32_t
store_view_uidvalidity(const struct store_view *v)
{
	return v->uidvalidity;
}

uint32_t
store_view_uidnext(const struct store_view *v)
{
	return v->uidnext;
}

uint64_t
store_view_highestmodseq(const struct store_view *v)
{
	return v->highestmodseq;
}

uint32_t
store_view_first_recent_uid(const struct store_view *v)
{
	return v->first_recent_uid;
}

uint32_t
store_view_count(const struct store_view *v)
{
	return v->count;
}

const struct store_view_msg *
store_view_msg(const struct store_view *v, uint32_t i)
{
	assert(v->mem == STORE_VIEW_FULL && i < v->count);
	return &v->msgs[i];
}

uint32_t
store_view_lower(const struct store_view *v, uint32_t uid)
{
	if (v->mem != STORE_VIEW_FULL)
		return store_view_run_lower(v, uid);
	return store_view_pos(v, uid);
}

int64_t
store_view_find(const struct store_view *v, uint32_t uid)
{
	uint32_t pos = store_view_lower(v, uid), r;

	if (v->mem == STORE_VIEW_FULL)
		return pos < v->count && v->msgs[pos].uid == uid ?
		    (int64_t)pos :
		    -1;
	r = store_view_run_find(v, uid);
	return r < v->nruns && v->runs[r].lo <= uid ? (int64_t)pos : -1;
}

int
store_view_full(const struct store_view *v)
{
	return v->mem == STORE_VIEW_FULL;
}

int
store_view_waking(const struct store_view *v)
{
	return v->mem == STORE_VIEW_WAKING;
}

void
store_view_idle(struct store_view *v, int on)
{
	if (on)
		v->idlers++;
	else if (v->idlers > 0)
		v->idlers--;
}

int
store_view_hibernate(struct store_view *v)
{
	if (v->state != STORE_VIEW_READY || v->mem != STORE_VIEW_FULL ||
	    v->refs == 0 || v->idlers != v->refs)
		return -1;
	for (uint32_t i = 0; i < v->count; i++) {
		uint32_t uid = v->msgs[i].uid;

		if (v->nruns > 0 && v->runs[v->nruns - 1].hi + 1 == uid)
			v->runs[v->nruns - 1].hi = uid;
		else
			store_view_run_insert_at(v, v->nruns, uid, uid);
	}
	store_view_forget(v);
	v->mem = STORE_VIEW_HIBERNATED;
	v->store->trim_due = 1;
	return 0;
}

size_t
store_view_msg_keywords(const struct store_view *v, uint32_t i,
    const uint32_t **kw)
{
	const struct store_kwset *set = &v->sets[store_view_msg(v, i)->kwset];

	*kw = set->kw;
	return set->n;
}

size_t
store_view_keyword_count(const struct store_view *v)
{
	return v->nkeywords;
}

const char *
store_view_keyword(const struct store_view *v, size_t k)
{
	assert(k < v->nkeywords);
	return v->keywords[k];
}

/* ---- Keeping views current (loop thread) ---- */

/* Remembers an expunge; the oldest one leaving the ring raises the floor. */
static void
store_view_expunge_note(struct store_view *v, uint32_t uid, uint64_t modseq)
{
	if (modseq <= v->floor)
		return;
	if (v->exp == NULL)
		v->exp = xcalloc(STORE_VIEW_EXPUNGES, sizeof(*v->exp));
	if (v->exp_len == STORE_VIEW_EXPUNGES) {
		if (v->exp[v->exp_head].modseq > v->floor)
			v->floor = v->exp[v->exp_head].modseq;
		v->exp_head = (v->exp_head + 1) % STORE_VIEW_EXPUNGES;
		v->exp_len--;
	}
	v->exp[(v->exp_head + v->exp_len) % STORE_VIEW_EXPUNGES] =
	    (struct store_expunge){.uid = uid, .modseq = modseq};
	v->exp_len++;
}

static void
store_view_expunge(struct store_view *v, uint32_t uid, uint64_t modseq)
{
	int64_t i = store_view_find(v, uid);

	if (i >= 0) {
		memmove(&v->msgs[i], &v->msgs[i + 1],
		    (v->count - (uint32_t)i - 1) * sizeof(*v->msgs));
		v->count--;
	}
	store_view_expunge_note(v, uid, modseq);
}

static void
store_view_flags(struct store_view *v, const struct store_change *c,
    const char *keywords)
{
	int64_t i = store_view_find(v, c->uid), set;
	struct store_view_msg *m;

	if (i < 0 || v->msgs[i].modseq >= c->modseq)
		return;
	m = &v->msgs[i];
	if (keywords != NULL &&
	    (set = store_view_kwset_parse(v, keywords)) >= 0)
		m->kwset = (uint32_t)set;
	m->flags = c->flags & 0xff;
	m->modseq = c->modseq;
}

static struct store_view *
store_view_loaded(struct store *store, const char *user, int64_t mailbox_id)
{
	struct store_user *u = store_user_find(store, user);
	struct store_view *v;

	for (v = u != NULL ? u->views : NULL; v != NULL; v = v->next)
		if (v->state == STORE_VIEW_READY && !v->retired &&
		    v->mailbox_id == mailbox_id)
			return v;
	return NULL;
}

/*
 * A change to a view without its message array. News and expunges keep
 * the runs current; a flag change needs the array, so the view wakes.
 * While it wakes, the reload reads every change committed so far (user
 * tasks run in order), so only the expunges must still be noted for the
 * sessions that have not heard of them.
 */
static void
store_view_apply_asleep(struct store_view *v, const struct store_change *c)
{
	if (c->kind == STORE_CHANGE_EXPUNGE) {
		if (store_view_run_remove(v, c->uid) == 0)
			v->count--;
		store_view_expunge_note(v, c->uid, c->modseq);
	} else if (c->kind == STORE_CHANGE_NEW) {
		if (store_view_run_add(v, c->uid) == 0)
			v->count++;
		if (c->uid >= v->uidnext)
			v->uidnext = c->uid + 1;
	} else if (c->kind == STORE_CHANGE_FLAGS)
		store_view_wake(v, NULL, NULL);
	if (c->modseq > v->highestmodseq)
		v->highestmodseq = c->modseq;
}

void
store_view_apply(struct store *store, const struct store_change *c,
    const char *keywords)
{
	struct store_view *v = store_view_loaded(store, c->user, c->mailbox_id);
	int64_t set;

	if (v == NULL)
		return;
	if (v->mem != STORE_VIEW_FULL) {
		store_view_apply_asleep(v, c);
		return;
	}
	switch (c->kind) {
	case STORE_CHANGE_NEW:
		set = store_view_kwset_parse(v, keywords);
		store_view_insert(v, c->uid, c->modseq, c->flags,
		    set < 0 ? 0 : (uint32_t)set);
		break;
	case STORE_CHANGE_FLAGS:
		store_view_flags(v, c, keywords);
		break;
	case STORE_CHANGE_EXPUNGE:
		store_view_expunge(v, c->uid, c->modseq);
		break;
	case STORE_CHANGE_MAILBOX_GONE:
		break;
	}
	if (c->modseq > v->highestmodseq)
		v->highestmodseq = c->modseq;
}

int
store_view_expunged_since(const struct store_view *v, uint64_t modseq,
    void (*cb)(const struct store_expunge *e, void *arg), void *arg)
{
	if (modseq < v->floor)
		return -1;
	for (uint32_t i = 0; i < v->exp_len; i++) {
		const struct store_expunge *e =
		    &v->exp[(v->exp_head + i) % STORE_VIEW_EXPUNGES];

		if (e->modseq > modseq)
			cb(e, arg);
	}
	return 0;
}

/* ---- Waking a hibernated view ---- */

struct store_view_wake {
	struct store_task task;  /* first */
	struct store_view *view; /* one reference held */
	struct store_view *tmp;  /* filled on the worker */
	enum store_view_status status;
};

/* Worker: loads the mailbox afresh into tmp; the view is left alone. */
static void
store_view_wake_run(struct store_task *t, sqlite3 *db)
{
	struct store_view_wake *wk = (struct store_view_wake *)t;
	struct store_view *tmp = wk->tmp;
	int r;

	if (db == NULL)
		return;
	r = store_view_load_mailbox(tmp, db);
	if (r > 0 || (r == 0 && tmp->mailbox_id != wk->view->mailbox_id)) {
		wk->status = STORE_VIEW_NOMAILBOX;
		return;
	}
	if (r == 0 && store_view_load_keywords(tmp, db) == 0 &&
	    store_view_load_messages(tmp, db) == 0) {
		wk->status = STORE_VIEW_OK;
		return;
	}
	log_error("event=store op=view_wake user=%s error=\"%s\"",
	    wk->view->user->name, sqlite3_errmsg(db));
}

/* Loop thread: the reloaded array replaces the runs. */
static void
store_view_wake_swap(struct store_view *v, struct store_view *tmp)
{
	v->msgs = tmp->msgs;
	v->count = tmp->count;
	v->cap = tmp->cap;
	v->keywords = tmp->keywords;
	v->nkeywords = tmp->nkeywords;
	v->sets = tmp->sets;
	v->nsets = tmp->nsets;
	v->slots = tmp->slots;
	v->nslots = tmp->nslots;
	if (tmp->uidnext > v->uidnext)
		v->uidnext = tmp->uidnext;
	if (tmp->highestmodseq > v->highestmodseq)
		v->highestmodseq = tmp->highestmodseq;
	if (tmp->first_recent_uid > v->first_recent_uid)
		v->first_recent_uid = tmp->first_recent_uid;
	tmp->msgs = NULL;
	tmp->keywords = NULL;
	tmp->sets = NULL;
	tmp->slots = NULL;
	tmp->nkeywords = tmp->nsets = 0;
	free(v->runs);
	v->runs = NULL;
	v->nruns = 0;
	v->mem = STORE_VIEW_FULL;
}

static void
store_view_wake_done(struct store_task *t)
{
	struct store_view_wake *wk = (struct store_view_wake *)t;
	struct store_view *v = wk->view;
	struct store_view_waiter *w;

	if (wk->status == STORE_VIEW_OK)
		store_view_wake_swap(v, wk->tmp);
	else
		v->mem = STORE_VIEW_HIBERNATED;
	store_view_free(wk->tmp);
	while ((w = v->wakers) != NULL) {
		struct store_view *ref = w->view;

		v->wakers = w->next;
		w->cb(wk->status == STORE_VIEW_OK ? v : NULL, wk->status,
		    w->arg);
		/* An open that failed drops the reference it was to get. */
		if (wk->status != STORE_VIEW_OK && ref != NULL)
			store_view_unref(&ref);
		free(w);
	}
	store_view_unref(&wk->view);
	free(wk);
}

/* Queues w (NULL: nobody to tell) and starts the reload if none runs. */
static void
store_view_wake_wait(struct store_view *v, struct store_view_waiter *w)
{
	struct store_view_wake *wk;

	if (w != NULL) {
		struct store_view_waiter **pp = &v->wakers;

		while (*pp != NULL)
			pp = &(*pp)->next;
		*pp = w;
	}
	if (v->mem != STORE_VIEW_HIBERNATED)
		return;
	v->mem = STORE_VIEW_WAKING;
	wk = xcalloc(1, sizeof(*wk));
	wk->view = store_view_ref(v);
	wk->tmp = xcalloc(1, sizeof(*wk->tmp) + strlen(v->name) + 1);
	memcpy(wk->tmp->name, v->name, strlen(v->name) + 1);
	wk->tmp->sets = xcalloc(1, sizeof(*wk->tmp->sets));
	wk->tmp->nsets = 1;
	wk->status = STORE_VIEW_IO;
	wk->task.run = store_view_wake_run;
	wk->task.done = store_view_wake_done;
	store_task_submit(v->store, v->user->name, &wk->task);
}

void
store_view_wake(struct store_view *v, store_view_open_cb cb, void *arg)
{
	struct store_view_waiter *w = NULL;

	if (cb != NULL) {
		w = xcalloc(1, sizeof(*w));
		w->cb = cb;
		w->arg = arg;
	}
	if (v->mem == STORE_VIEW_FULL) {
		struct timeval now = {0, 0};

		if (w == NULL)
			return;
		w->view = v;
		w->status = STORE_VIEW_OK;
		if (event_base_once(v->store->base, -1, EV_TIMEOUT,
		        store_view_answer, w, &now) < 0)
			log_fatal("event=store error=\"event_base_once "
			          "failed\"");
		return;
	}
	store_view_wake_wait(v, w);
}

/* ---- Tombstones from the index ---- */

struct store_view_tomb {
	struct store_task task;
	int64_t mailbox_id;
	uint64_t modseq;
	store_expunged_cb cb;
	void *arg;
	struct store_expunge *list;
	size_t n;
	enum store_view_status status;
};

static void
store_view_tomb_run(struct store_task *t, sqlite3 *db)
{
	struct store_view_tomb *q = (struct store_view_tomb *)t;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	if (db == NULL ||
	    sqlite3_prepare_v2(db,
	        "SELECT uid, modseq FROM expunged"
	        " WHERE mailbox_id = ? AND modseq > ?"
	        " ORDER BY uid",
	        -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, q->mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)q->modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (q->n == cap) {
			cap = cap ? cap * 2 : 64;
			q->list = xreallocarray(q->list, cap, sizeof(*q->list));
		}
		q->list[q->n].uid = (uint32_t)sqlite3_column_int64(st, 0);
		q->list[q->n++].modseq = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		q->status = STORE_VIEW_OK;
	else
		log_error("event=store op=expunged error=\"%s\"",
		    sqlite3_errmsg(db));
}

static void
store_view_tomb_done(struct store_task *t)
{
	struct store_view_tomb *q = (struct store_view_tomb *)t;

	if (q->status == STORE_VIEW_OK)
		q->cb(q->list, q->n, STORE_VIEW_OK, q->arg);
	else
		q->cb(NULL, 0, q->status, q->arg);
	free(q->list);
	free(q);
}

void
store_expunged_since(struct store *store, const char *user, int64_t mailbox_id,
    uint64_t modseq, store_expunged_cb cb, void *arg)
{
	struct store_view_tomb *q = xcalloc(1, sizeof(*q));

	q->mailbox_id = mailbox_id;
	q->modseq = modseq;
	q->cb = cb;
	q->arg = arg;
	q->status = STORE_VIEW_IO;
	q->task.run = store_view_tomb_run;
	q->task.done = store_view_tomb_done;
	store_task_submit(store, user, &q->task);
}

/* ---- The \Recent claim ---- */

struct store_view_claim {
	struct store_task task;
	struct store_view *view;
	int64_t mailbox_id;
	store_view_recent_cb cb;
	void *arg;
	uint32_t first_recent; /* before the claim */
	uint32_t uidnext;      /* the first \Recent UID after it */
	enum store_view_status status;
};

static int
store_view_claim_sql(struct store_view_claim *cl, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT first_recent_uid, uidnext FROM mailbox WHERE id = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, cl->mailbox_id);
	rc = sqlite3_step(st);
	cl->first_recent = (uint32_t)sqlite3_column_int64(st, 0);
	cl->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	/* Nothing arrived since the last claim (a reconnect, mostly). */
	if (cl->first_recent >= cl->uidnext)
		return 0;
	if (sqlite3_prepare_v2(db,
	        "UPDATE mailbox SET first_recent_uid ="
	        " uidnext WHERE id = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, cl->mailbox_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
store_view_claim_run(struct store_task *t, sqlite3 *db)
{
	struct store_view_claim *cl = (struct store_view_claim *)t;

	if (db == NULL || store_index_begin(db) < 0)
		return;
	if (store_view_claim_sql(cl, db) == 0 && store_index_commit(db) == 0) {
		cl->status = STORE_VIEW_OK;
		return;
	}
	log_error("event=store op=claim_recent error=\"%s\"",
	    sqlite3_errmsg(db));
	store_index_rollback(db);
}

static void
store_view_claim_done(struct store_task *t)
{
	struct store_view_claim *cl = (struct store_view_claim *)t;
	struct store_view *v = cl->view;

	if (cl->status == STORE_VIEW_OK) {
		if (cl->uidnext > v->first_recent_uid)
			v->first_recent_uid = cl->uidnext;
		/* What the previous claim was told of stays its own. */
		if (v->recent_given > cl->first_recent)
			cl->first_recent = v->recent_given;
		v->claim_gen++;
	}
	cl->cb(v, cl->first_recent, cl->status, cl->arg);
	store_view_unref(&cl->view);
	free(cl);
}

uint32_t
store_view_claim_gen(const struct store_view *v)
{
	return v->claim_gen;
}

void
store_view_recent_given(struct store_view *v, uint32_t uidnext)
{
	if (uidnext > v->recent_given)
		v->recent_given = uidnext;
}

void
store_view_claim_recent(struct store_view *v, store_view_recent_cb cb,
    void *arg)
{
	struct store_view_claim *cl = xcalloc(1, sizeof(*cl));

	assert(v->state == STORE_VIEW_READY);
	cl->view = store_view_ref(v);
	cl->mailbox_id = v->mailbox_id;
	cl->cb = cb;
	cl->arg = arg;
	cl->status = STORE_VIEW_IO;
	cl->task.run = store_view_claim_run;
	cl->task.done = store_view_claim_done;
	store_task_submit(v->store, v->user->name, &cl->task);
}
