/*
 * Unit tests for the shared mailbox views and the mailbox listing: loading,
 * accessors and UID lookup, a delivery reaching an open view before the
 * change callback, the \Recent claim, sharing and the cache of unreferenced
 * views, a 20,000-message load (timed), the listing, a missing mailbox and
 * the expunge window. Each test runs in a fresh directory with a real event
 * loop and worker pool.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "base/xmalloc.h"
#include "check.h"
#include "net/worker.h"
#include "store/store_int.h"
#include "store/store_view.h"
#include "store/store_watch.h"

#define MSG "From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n"

struct ctx {
	char dir[64];
	struct event_base *base;
	struct worker_pool *io;
	struct store *store;
	int done;    /* deliveries done */
	int changes; /* change callbacks */
	int changes_seen_in_view;
	int answers; /* view opens, claims, lists answered */
	struct store_view *view;
	enum store_view_status status;
	uint32_t first_recent;
	struct store_mailbox_list *list;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
setup(struct ctx *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_view_XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
	c->base = event_base_new();
	c->io = worker_pool_new(c->base, "io", 4, 0, 0);
	c->store = store_new(c->base, c->io, c->dir, err, sizeof(err));
	CHECK(c->store != NULL);
	CHECK_INT(store_user_create(c->store, "alice", err, sizeof(err)), 0);
}

static void
teardown(struct ctx *c)
{
	store_free(&c->store);
	worker_pool_free(&c->io);
	event_base_free(c->base);
	nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
run_until(struct ctx *c, int *counter, int n)
{
	while (*counter < n)
		event_base_loop(c->base, EVLOOP_ONCE);
}

static void
on_done(struct store_delivery *d, void *arg)
{
	struct ctx *c = arg;

	c->done++;
	store_delivery_free(&d);
}

/* Delivers one message to alice and waits for it. */
static void
deliver(struct ctx *c)
{
	struct store_delivery *d = xcalloc(1, sizeof(*d));
	int before = c->done;

	d->return_path = xstrdup("sender@example.org");
	d->data = xstrdup(MSG);
	d->len = strlen(MSG);
	d->internaldate = 1700000000;
	d->rcpts = xcalloc(1, sizeof(*d->rcpts));
	d->nrcpts = 1;
	d->rcpts[0].user = xstrdup("alice");
	d->done = on_done;
	d->arg = c;
	store_deliver(c->store, d);
	run_until(c, &c->done, before + 1);
}

static void
on_open(struct store_view *view, enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	c->view = view;
	c->status = status;
	c->answers++;
}

/* Opens a view of alice's mailbox and waits for the answer. */
static struct store_view *
open_view(struct ctx *c, const char *user, const char *mailbox)
{
	int before = c->answers;

	c->view = NULL;
	store_view_open(c->store, user, mailbox, on_open, c);
	CHECK_INT(c->answers, before);
	run_until(c, &c->answers, before + 1);
	return c->view;
}

static void
test_open_accessors(void)
{
	struct ctx c;
	struct store_view *v;
	struct store_mailbox_status s;
	const uint32_t *kw;

	setup(&c);
	for (int i = 0; i < 3; i++)
		deliver(&c);
	v = open_view(&c, "alice", "inbox");
	CHECK(v != NULL);
	CHECK_INT(c.status, STORE_VIEW_OK);
	if (v == NULL) {
		teardown(&c);
		return;
	}
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	CHECK_STR(store_view_name(v), "INBOX");
	CHECK_INT(store_view_mailbox_id(v), s.id);
	CHECK_INT(store_view_uidvalidity(v), s.uidvalidity);
	CHECK_INT(store_view_uidnext(v), 4);
	CHECK_INT(store_view_highestmodseq(v), s.highestmodseq);
	CHECK_INT(store_view_first_recent_uid(v), 1);
	CHECK_INT(store_view_count(v), 3);
	for (uint32_t i = 0; i < 3; i++) {
		CHECK_INT(store_view_msg(v, i)->uid, i + 1);
		CHECK_INT(store_view_msg(v, i)->flags, 0);
		CHECK_INT(store_view_msg_keywords(v, i, &kw), 0);
	}
	CHECK_INT(store_view_msg(v, 2)->modseq, s.highestmodseq);
	CHECK_INT(store_view_find(v, 2), 1);
	CHECK_INT(store_view_find(v, 4), -1);
	CHECK_INT(store_view_find(v, 0), -1);
	CHECK_INT(store_view_keyword_count(v), 0);
	store_view_unref(&v);
	CHECK(v == NULL);
	teardown(&c);
}

static void
on_change(const struct store_change *ch, void *arg)
{
	struct ctx *c = arg;
	struct store_view *v = c->view;

	c->changes++;
	if (v != NULL && store_view_find(v, ch->uid) >= 0 &&
	    store_view_uidnext(v) == ch->uid + 1 &&
	    store_view_highestmodseq(v) == ch->modseq)
		c->changes_seen_in_view++;
}

static void
test_delivery_updates_view(void)
{
	struct ctx c;
	struct store_view *v;

	setup(&c);
	deliver(&c);
	v = open_view(&c, "alice", "INBOX");
	CHECK(v != NULL);
	store_set_change_cb(c.store, on_change, &c);
	deliver(&c);
	deliver(&c);
	CHECK_INT(c.changes, 2);
	CHECK_INT(c.changes_seen_in_view, 2);
	CHECK_INT(store_view_count(v), 3);
	CHECK_INT(store_view_msg(v, 2)->uid, 3);
	c.view = NULL;
	store_view_unref(&v);
	teardown(&c);
}

static void
on_claim(struct store_view *view, uint32_t first_recent,
    enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	c->first_recent = first_recent;
	c->status = status;
	c->answers++;
}

static void
test_claim_recent(void)
{
	struct ctx c;
	struct store_view *v;
	struct store_view *w;

	setup(&c);
	deliver(&c);
	deliver(&c);
	v = open_view(&c, "alice", "INBOX");
	store_view_claim_recent(v, on_claim, &c);
	run_until(&c, &c.answers, 2);
	CHECK_INT(c.status, STORE_VIEW_OK);
	CHECK_INT(c.first_recent, 1);
	CHECK_INT(store_view_first_recent_uid(v), 3);
	store_view_claim_recent(v, on_claim, &c);
	run_until(&c, &c.answers, 3);
	CHECK_INT(c.first_recent, 3); /* nothing recent is left */
	deliver(&c);
	w = open_view(&c, "alice", "INBOX");
	CHECK(w == v);
	store_view_claim_recent(w, on_claim, &c);
	run_until(&c, &c.answers, 5);
	CHECK_INT(c.first_recent, 3); /* the new message is recent */
	CHECK_INT(store_view_first_recent_uid(v), 4);
	store_view_unref(&v);
	store_view_unref(&w);
	teardown(&c);
}

/* Two opens in one turn share the one load; the cache keeps it after. */
static void
test_share_and_cache(void)
{
	struct ctx c;
	struct store_view *a, *b, *again, *first;
	char name[32];

	setup(&c);
	store_view_open(c.store, "alice", "Sent", on_open, &c);
	a = open_view(&c, "alice", "Sent");
	run_until(&c, &c.answers, 2);
	b = c.view;
	CHECK(a != NULL && a == b);
	first = a;
	store_view_unref(&a);
	store_view_unref(&b);
	again = open_view(&c, "alice", "Sent");
	CHECK(again == first);
	store_view_unref(&again);
	/* Six mailboxes of six users: more than the cache holds. */
	for (int u = 0; u < 6; u++) {
		static const char *const boxes[] = {"INBOX", "Sent", "Drafts",
		    "Trash", "Junk", "Archive"};

		snprintf(name, sizeof(name), "user%d", u);
		for (int i = 0; i < 6; i++) {
			a = open_view(&c, name, boxes[i]);
			CHECK(a != NULL);
			store_view_unref(&a);
		}
	}
	CHECK_INT(c.store->nview_lru, STORE_VIEW_CACHE);
	teardown(&c);
}

static void
test_missing_mailbox(void)
{
	struct ctx c;

	setup(&c);
	CHECK(open_view(&c, "alice", "Nope") == NULL);
	CHECK_INT(c.status, STORE_VIEW_NOMAILBOX);
	CHECK(open_view(&c, "../bad", "INBOX") == NULL);
	CHECK_INT(c.status, STORE_VIEW_IO);
	teardown(&c);
}

/* Inserts n rows into alice's INBOX directly, with realistic cached data. */
static void
insert_rows(struct ctx *c, uint32_t n)
{
	char *userdir = xasprintf("%s/alice", c->dir);
	char env[600], bs[400];
	struct mime_info mi = {0};
	struct store_mailbox mb;
	sqlite3 *db;

	memset(env, 'e', sizeof(env) - 1);
	env[sizeof(env) - 1] = '\0';
	memset(bs, 'b', sizeof(bs) - 1);
	bs[sizeof(bs) - 1] = '\0';
	mi.envelope = env;
	mi.bodystructure = bs;
	mi.body = bs;
	mi.date = -1;
	CHECK_INT(store_user_open(userdir, &db), 0);
	CHECK_INT(store_index_mailbox_find(db, "INBOX", &mb), 0);
	CHECK_INT(store_index_begin(db), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct store_msg m = {
		    .mailbox_id = mb.id,
		    .unique = "1700000000.M1P1.host",
		    .flags = i % 3 == 0 ? STORE_FLAG_SEEN : 0,
		    .size = 1000,
		    .internaldate = 1700000000,
		    .mime = &mi,
		};

		CHECK_INT(store_index_message_add(db, &m), 0);
		free(m.file);
	}
	sqlite3_exec(db,
	    "UPDATE message SET keywords = '$Junk Work' WHERE uid % 7 = 0;"
	    "UPDATE message SET keywords = 'Work $Junk' WHERE uid % 11 = 0;"
	    "INSERT INTO mailbox_keyword VALUES(1, 'Defined')",
	    NULL, NULL, NULL);
	CHECK_INT(store_index_commit(db), 0);
	store_index_mailbox_deinit(&mb);
	store_index_close(&db);
	free(userdir);
}

static void
test_large_load(void)
{
	struct ctx c;
	struct store_view *v;
	struct timespec t0, t1;
	const uint32_t *kw, *kw2;
	double ms;

	setup(&c);
	/* Rows without files: the Maildir scan would expunge them. */
	store_watch_enable(c.store, 0);
	insert_rows(&c, 20000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	v = open_view(&c, "alice", "INBOX");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("view of 20000 messages loaded in %.1f ms\n", ms);
	CHECK(v != NULL);
	if (v == NULL) {
		teardown(&c);
		return;
	}
	CHECK_INT(store_view_count(v), 20000);
	CHECK_INT(store_view_find(v, 12345), 12344);
	CHECK_INT(store_view_msg(v, 3)->flags, STORE_FLAG_SEEN);
	CHECK_INT(store_view_msg(v, 2)->flags, 0);
	CHECK_INT(store_view_keyword_count(v), 3);
	CHECK_STR(store_view_keyword(v, 0), "Defined");
	CHECK_INT(store_view_msg_keywords(v, 6, &kw), 2);   /* uid 7 */
	CHECK_INT(store_view_msg_keywords(v, 10, &kw2), 2); /* uid 11 */
	CHECK(kw == kw2); /* one interned set */
	CHECK_INT(store_view_msg(v, 6)->kwset, store_view_msg(v, 10)->kwset);
	CHECK_INT(store_view_msg_keywords(v, 0, &kw), 0);
	store_view_unref(&v);
	teardown(&c);
}

static void
on_list(struct store_mailbox_list *list, enum store_view_status status,
    void *arg)
{
	struct ctx *c = arg;

	c->list = list;
	c->status = status;
	c->answers++;
}

static void
test_listing(void)
{
	struct ctx c;
	struct store_mailbox_info *inbox = NULL;
	sqlite3 *db;
	char *path;

	setup(&c);
	deliver(&c);
	deliver(&c);
	while (store_release_handles(c.store) > 0)
		event_base_loop(c.base, EVLOOP_ONCE);
	path = xasprintf("%s/alice/" STORE_INDEX_FILE, c.dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_exec(db,
	    "INSERT INTO subscription VALUES('Gone');"
	    "DELETE FROM subscription WHERE name = 'Junk'",
	    NULL, NULL, NULL);
	sqlite3_close(db);
	free(path);
	store_mailbox_list(c.store, "alice", 0, on_list, &c);
	CHECK_INT(c.answers, 0);
	run_until(&c, &c.answers, 1);
	CHECK_INT(c.status, STORE_VIEW_OK);
	CHECK(c.list != NULL);
	if (c.list == NULL) {
		teardown(&c);
		return;
	}
	CHECK_INT(c.list->n, 7);
	for (size_t i = 0; i < c.list->n; i++) {
		struct store_mailbox_info *mi = &c.list->items[i];

		if (strcmp(mi->name, "INBOX") == 0)
			inbox = mi;
		if (strcmp(mi->name, "Junk") == 0) {
			CHECK_INT(mi->subscribed, 0);
			CHECK_STR(mi->special_use, "\\Junk");
		}
		CHECK_INT(mi->exists, i < 6);
	}
	CHECK_STR(c.list->items[6].name, "Gone");
	CHECK_INT(c.list->items[6].subscribed, 1);
	CHECK(inbox != NULL);
	if (inbox != NULL) {
		CHECK_INT(inbox->messages, 2);
		CHECK_INT(inbox->unseen, 2);
		CHECK_INT(inbox->recent, 2);
		CHECK_INT(inbox->uidnext, 3);
		CHECK_INT(inbox->subscribed, 1);
		CHECK(inbox->special_use == NULL);
		CHECK(inbox->bytes > 2 * strlen(MSG));
	}
	store_mailbox_list_free(&c.list);
	teardown(&c);
}

static void
collect(const struct store_expunge *e, void *arg)
{
	uint32_t *uids = arg;

	uids[++uids[0]] = e->uid;
}

static void
apply(struct ctx *c, struct store_view *v, enum store_change_kind kind,
    uint32_t uid, uint64_t modseq, unsigned flags, const char *kw)
{
	struct store_change ch = {
	    .kind = kind,
	    .user = "alice",
	    .mailbox = "INBOX",
	    .mailbox_id = store_view_mailbox_id(v),
	    .uid = uid,
	    .modseq = modseq,
	    .flags = flags,
	};

	store_view_apply(c->store, &ch, kw);
}

static void
test_apply_and_expunge_window(void)
{
	struct ctx c;
	struct store_view *v;
	uint32_t uids[300];
	const uint32_t *kw;
	uint64_t base;

	setup(&c);
	v = open_view(&c, "alice", "INBOX");
	base = store_view_highestmodseq(v);
	/* Earlier than the load: the window reaches back to it only. */
	CHECK_INT(store_view_expunged_since(v, base - 1, collect, uids), -1);
	for (uint32_t i = 1; i <= 200; i++)
		apply(&c, v, STORE_CHANGE_NEW, i, base + i, 0, NULL);
	apply(&c, v, STORE_CHANGE_NEW, 5, base + 5, 0, NULL); /* repeated */
	CHECK_INT(store_view_count(v), 200);
	CHECK_INT(store_view_uidnext(v), 201);
	apply(&c, v, STORE_CHANGE_FLAGS, 3, base + 201,
	    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, "Work");
	apply(&c, v, STORE_CHANGE_FLAGS, 3, base + 150, 0, NULL); /* stale */
	CHECK_INT(store_view_msg(v, 2)->flags,
	    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	CHECK_INT(store_view_msg(v, 2)->modseq, base + 201);
	CHECK_INT(store_view_msg_keywords(v, 2, &kw), 1);
	CHECK_STR(store_view_keyword(v, kw[0]), "Work");
	for (uint32_t i = 1; i <= 150; i++)
		apply(&c, v, STORE_CHANGE_EXPUNGE, i, base + 201 + i, 0, NULL);
	CHECK_INT(store_view_count(v), 50);
	CHECK_INT(store_view_msg(v, 0)->uid, 151);
	CHECK_INT(store_view_highestmodseq(v), base + 351);
	/* 150 expunges, 128 kept: the first 22 left the window. */
	uids[0] = 0;
	CHECK_INT(store_view_expunged_since(v, base + 201, collect, uids), -1);
	CHECK_INT(store_view_expunged_since(v, base + 223, collect, uids), 0);
	CHECK_INT(uids[0], 128);
	CHECK_INT(uids[1], 23);
	CHECK_INT(uids[128], 150);
	uids[0] = 0;
	CHECK_INT(store_view_expunged_since(v, base + 349, collect, uids), 0);
	CHECK_INT(uids[0], 2);
	store_view_unref(&v);
	teardown(&c);
}

static void
on_tombs(const struct store_expunge *list, size_t n,
    enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	c->status = status;
	c->first_recent = (uint32_t)n;
	if (n > 0)
		CHECK_INT(list[0].uid, 2);
	c->answers++;
}

static void
test_expunged_from_index(void)
{
	struct ctx c;
	char *userdir;
	sqlite3 *db;
	struct store_mailbox_status s;

	setup(&c);
	deliver(&c);
	deliver(&c);
	userdir = xasprintf("%s/alice", c.dir);
	while (store_release_handles(c.store) > 0)
		event_base_loop(c.base, EVLOOP_ONCE);
	CHECK_INT(store_index_open(userdir, &db), 0);
	CHECK_INT(store_index_begin(db), 0);
	CHECK_INT(store_index_message_expunge(db, 1, 2), 0);
	CHECK_INT(store_index_commit(db), 0);
	store_index_close(&db);
	free(userdir);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &s), 0);
	store_expunged_since(c.store, "alice", s.id, s.highestmodseq - 1,
	    on_tombs, &c);
	run_until(&c, &c.answers, 1);
	CHECK_INT(c.status, STORE_VIEW_OK);
	CHECK_INT(c.first_recent, 1);
	store_expunged_since(c.store, "alice", s.id, s.highestmodseq, on_tombs,
	    &c);
	run_until(&c, &c.answers, 2);
	CHECK_INT(c.first_recent, 0);
	teardown(&c);
}

static void
on_wake(struct store_view *view, enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	c->status = status;
	c->view = view;
	c->answers++;
}

/* Hibernation: runs, news and expunges while asleep, waking on a flag. */
static void
test_hibernate(void)
{
	struct ctx c;
	struct store_view *v, *v2;
	uint64_t hms;
	int answers;

	setup(&c);
	for (int i = 0; i < 6; i++)
		deliver(&c);
	v = open_view(&c, "alice", "INBOX");
	CHECK_INT(store_view_hibernate(v), -1); /* not idle */
	store_view_idle(v, 1);
	CHECK_INT(store_view_hibernate(v), 0);
	CHECK_INT(store_view_full(v), 0);
	CHECK_INT(store_view_count(v), 6);
	deliver(&c); /* uid 7 */
	CHECK_INT(store_view_full(v), 0);
	CHECK_INT(store_view_count(v), 7);
	CHECK_INT(store_view_uidnext(v), 8);
	hms = store_view_highestmodseq(v);
	apply(&c, v, STORE_CHANGE_EXPUNGE, 3, hms + 1, 0, NULL);
	apply(&c, v, STORE_CHANGE_EXPUNGE, 3, hms + 1, 0, NULL); /* again */
	CHECK_INT(store_view_count(v), 6);
	CHECK_INT(store_view_lower(v, 3), 2);
	CHECK_INT(store_view_lower(v, 5), 3);
	CHECK_INT(store_view_lower(v, 100), 6);
	CHECK_INT(store_view_find(v, 3), -1);
	CHECK_INT(store_view_find(v, 4), 2);
	CHECK_INT(store_view_find(v, 7), 5);
	CHECK_INT(store_view_highestmodseq(v), hms + 1);
	/* A flag change wakes it; the array comes back from the index. */
	apply(&c, v, STORE_CHANGE_FLAGS, 2, hms + 2, STORE_FLAG_SEEN, NULL);
	CHECK_INT(store_view_waking(v), 1);
	answers = c.answers;
	store_view_wake(v, on_wake, &c);
	v2 = open_view(&c, "alice", "INBOX"); /* waits for the wake too */
	run_until(&c, &c.answers, answers + 2);
	CHECK(v2 == v);
	CHECK_INT(store_view_full(v), 1);
	CHECK_INT(store_view_count(v), 7); /* the index still has uid 3 */
	CHECK_INT(store_view_msg(v, 6)->uid, 7);
	CHECK(store_view_highestmodseq(v) >= hms + 2);
	/* Two holders, one idle: no hibernation. */
	CHECK_INT(store_view_hibernate(v), -1);
	store_view_idle(v, 1);
	CHECK_INT(store_view_hibernate(v), 0);
	store_view_idle(v, 0);
	store_view_unref(&v2);
	/* A wake of a full view answers on the next turn. */
	store_view_wake(v, NULL, NULL);
	answers = c.answers;
	store_view_wake(v, on_wake, &c);
	run_until(&c, &c.answers, answers + 1);
	CHECK_INT(c.status, STORE_VIEW_OK);
	CHECK_INT(store_view_full(v), 1);
	store_view_idle(v, 0);
	store_view_unref(&v);
	teardown(&c);
}

int
main(void)
{
	evthread_use_pthreads();
	CHECK_RUN(test_open_accessors);
	CHECK_RUN(test_delivery_updates_view);
	CHECK_RUN(test_claim_recent);
	CHECK_RUN(test_share_and_cache);
	CHECK_RUN(test_missing_mailbox);
	CHECK_RUN(test_large_load);
	CHECK_RUN(test_listing);
	CHECK_RUN(test_apply_and_expunge_window);
	CHECK_RUN(test_expunged_from_index);
	CHECK_RUN(test_hibernate);
	return check_summary();
}
