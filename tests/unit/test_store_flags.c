/*
 * Unit tests for STORE and EXPUNGE in the store: flags and keywords set,
 * added and removed with a MODSEQ only for messages that change, the
 * unseen counter, Maildir names in cur/, and expunges with their
 * tombstones, counters and files. Each test runs in a fresh directory with
 * a real event loop and worker pool.
 */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/xmalloc.h"
#include "check.h"
#include "net/worker.h"
#include "store/store_flags.h"
#include "store/store_int.h"
#include "store/store_view.h"

#define MSG "From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n"

struct ctx {
	char dir[64];
	struct event_base *base;
	struct worker_pool *io;
	struct store *store;
	int done;
	int answers;
	int64_t mailbox_id;
	/* the last answer */
	size_t n;
	uint32_t uids[8];
	unsigned flags[8];
	char kw[8][64];
	uint64_t modseq[8];
	/* change callbacks seen */
	int nchanges;
	enum store_change_kind kinds[8];
	uint32_t change_uids[8];
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
on_change(const struct store_change *ch, void *arg)
{
	struct ctx *c = arg;

	if (c->nchanges < 8) {
		c->kinds[c->nchanges] = ch->kind;
		c->change_uids[c->nchanges] = ch->uid;
	}
	c->nchanges++;
}

static void
setup(struct ctx *c)
{
	char err[256];
	struct store_mailbox_status s;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_flags_XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
	c->base = event_base_new();
	c->io = worker_pool_new(c->base, "io", 2, 0, 0);
	c->store = store_new(c->base, c->io, c->dir, err, sizeof(err));
	CHECK(c->store != NULL);
	CHECK_INT(store_user_create(c->store, "alice", err, sizeof(err)), 0);
	CHECK_INT(store_mailbox_status(c->store, "alice", "INBOX", &s), 0);
	c->mailbox_id = s.id;
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
on_store(const struct store_flags_update *list, size_t n,
    enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	CHECK_INT(status, STORE_VIEW_OK);
	c->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		c->uids[i] = list[i].uid;
		c->flags[i] = list[i].flags;
		c->modseq[i] = list[i].modseq;
		snprintf(c->kw[i], sizeof(c->kw[i]), "%s", list[i].keywords);
	}
	c->answers++;
}

static void
do_store(struct ctx *c, const uint32_t *uids, size_t n,
    enum store_flags_mode mode, unsigned flags, const char *const *kw,
    size_t nkw)
{
	int before = c->answers;

	store_flags_store(c->store, "alice", c->mailbox_id, uids, n, mode,
	    flags, kw, nkw, on_store, c);
	CHECK_INT(c->answers, before);
	run_until(c, &c->answers, before + 1);
}

static void
on_expunge(const uint32_t *uids, size_t n, enum store_view_status status,
    void *arg)
{
	struct ctx *c = arg;

	CHECK_INT(status, STORE_VIEW_OK);
	c->n = n;
	for (size_t i = 0; i < n && i < 8; i++)
		c->uids[i] = uids[i];
	c->answers++;
}

/* How many files alice's INBOX has in sub ("new" or "cur"). */
static int
count_files(struct ctx *c, const char *sub, const char *suffix)
{
	char *dir = xasprintf("%s/alice/%s", c->dir, sub);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name), sl = strlen(suffix);

		if (e->d_name[0] != '.' && len >= sl &&
		    strcmp(e->d_name + len - sl, suffix) == 0)
			n++;
	}
	if (d != NULL)
		closedir(d);
	free(dir);
	return n;
}

static void
test_store_modes(void)
{
	struct ctx c;
	uint32_t uids[] = {2, 1, 9};
	const char *fwd[] = {"$Forwarded", "custom"};
	const char *lower[] = {"$forwarded"};
	struct store_mailbox_status st, st2;

	setup(&c);
	deliver(&c);
	deliver(&c);
	deliver(&c);
	store_set_change_cb(c.store, on_change, &c);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st), 0);
	CHECK_INT(st.unseen, 3);

	/* +FLAGS on 1 and 2 (9 does not exist), in ascending order. */
	do_store(&c, uids, 3, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, fwd, 2);
	CHECK_INT(c.n, 2);
	CHECK_INT(c.uids[0], 1);
	CHECK_INT(c.uids[1], 2);
	CHECK_INT(c.flags[0], STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	CHECK_STR(c.kw[0], "$Forwarded custom");
	CHECK_INT(c.modseq[0], st.highestmodseq + 1);
	CHECK_INT(c.modseq[1], st.highestmodseq + 2);
	CHECK_INT(c.nchanges, 2);
	CHECK_INT(c.kinds[0], STORE_CHANGE_FLAGS);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st2), 0);
	CHECK_INT(st2.unseen, 1);
	CHECK_INT(st2.highestmodseq, st.highestmodseq + 2);
	CHECK_INT(count_files(&c, "cur", ":2,FS"), 2);
	CHECK_INT(count_files(&c, "new", ""), 1);

	/* The same again (keywords in another case) changes nothing. */
	do_store(&c, uids, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN, lower, 1);
	CHECK_INT(c.n, 0);
	CHECK_INT(c.nchanges, 2);

	/* -FLAGS \Seen and a keyword on 1. */
	do_store(&c, uids + 1, 1, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, lower,
	    1);
	CHECK_INT(c.n, 1);
	CHECK_INT(c.flags[0], STORE_FLAG_FLAGGED);
	CHECK_STR(c.kw[0], "custom");
	CHECK_INT(count_files(&c, "cur", ":2,F"), 1);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st2), 0);
	CHECK_INT(st2.unseen, 2);

	/* FLAGS replaces both. */
	do_store(&c, uids + 1, 1, STORE_FLAGS_SET, STORE_FLAG_DELETED, NULL, 0);
	CHECK_INT(c.n, 1);
	CHECK_INT(c.flags[0], STORE_FLAG_DELETED);
	CHECK_STR(c.kw[0], "");
	CHECK_INT(count_files(&c, "cur", ":2,T"), 1);
	teardown(&c);
}

static void
test_expunge(void)
{
	struct ctx c;
	uint32_t uids[] = {3, 1, 7, 1};
	struct store_mailbox_status st, st2;

	setup(&c);
	deliver(&c);
	deliver(&c);
	deliver(&c);
	do_store(&c, uids, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0);
	store_set_change_cb(c.store, on_change, &c);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st), 0);
	store_flags_expunge(c.store, "alice", c.mailbox_id, uids, 4, on_expunge,
	    &c);
	run_until(&c, &c.answers, 2);
	CHECK_INT(c.n, 2);
	CHECK_INT(c.uids[0], 1);
	CHECK_INT(c.uids[1], 3);
	CHECK_INT(c.nchanges, 2);
	CHECK_INT(c.kinds[0], STORE_CHANGE_EXPUNGE);
	CHECK_INT(c.change_uids[0], 1);
	CHECK_INT(c.change_uids[1], 3);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st2), 0);
	CHECK_INT(st2.messages, 1);
	CHECK_INT(st2.unseen, 1);
	CHECK_INT(st2.bytes, st.bytes / 3);
	CHECK_INT(st2.highestmodseq, st.highestmodseq + 2);
	CHECK_INT(count_files(&c, "cur", ""), 0);
	CHECK_INT(count_files(&c, "new", ""), 1);

	/* Nothing left to expunge of those. */
	store_flags_expunge(c.store, "alice", c.mailbox_id, uids, 2, on_expunge,
	    &c);
	run_until(&c, &c.answers, 3);
	CHECK_INT(c.n, 0);
	teardown(&c);
}

int
main(void)
{
	CHECK_RUN(test_store_modes);
	CHECK_RUN(test_expunge);
	return check_summary();
}
