/*
 * Unit tests for the FETCH reads of the store: cached columns and the file
 * of a delivered message, a UID with no row, a vanished file, and the
 * per-call bound on messages. Each test runs in a fresh directory with a
 * real event loop and worker pool; and the implicit \Seen of BODY[].
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
#include "store/store_fetch.h"
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
	int changes;
	int64_t mailbox_id;
	struct store_fetch_result *res;
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
	struct store_mailbox_status s;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_fetch_XXXXXX");
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
	store_fetch_result_free(&c->res);
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
on_fetch(struct store_fetch_result *res, void *arg)
{
	struct ctx *c = arg;

	store_fetch_result_free(&c->res);
	c->res = res;
	c->answers++;
}

static struct store_fetch_result *
fetch(struct ctx *c, const uint32_t *uids, size_t n, unsigned what)
{
	int before = c->answers;

	store_fetch(c->store, "alice", c->mailbox_id, uids, n, what, on_fetch,
	    c);
	CHECK_INT(c->answers, before);
	run_until(c, &c->answers, before + 1);
	return c->res;
}

/* The path of the only file in alice's new/. */
static char *
only_file(struct ctx *c)
{
	char *dir = xasprintf("%s/alice/new", c->dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	char *path = NULL;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			path = xasprintf("%s/%s", dir, e->d_name);
	if (d != NULL)
		closedir(d);
	free(dir);
	return path;
}

static void
test_fetch_row_and_file(void)
{
	struct ctx c;
	uint32_t uids[] = {1, 7};
	struct store_fetch_result *r;
	const struct store_fetch_msg *m;
	char *path;
	struct stat sb;

	setup(&c);
	deliver(&c);
	path = only_file(&c);
	CHECK(path != NULL && stat(path, &sb) == 0);
	r = fetch(&c, uids, 2,
	    STORE_FETCH_ENVELOPE | STORE_FETCH_BODYSTRUCTURE |
	        STORE_FETCH_PARTMAP | STORE_FETCH_DATA);
	CHECK_INT(r->status, STORE_VIEW_OK);
	CHECK_INT(r->n, 2);
	m = &r->msgs[0];
	CHECK_INT(m->uid, 1);
	CHECK_INT(m->missing, 0);
	CHECK_INT(m->size, sb.st_size);
	CHECK_INT(m->len, sb.st_size);
	CHECK_INT(m->internaldate, 1700000000);
	CHECK(m->prefix_size > 0 && m->header_size > m->prefix_size);
	CHECK(m->envelope != NULL && strstr(m->envelope, "\"hi\"") != NULL);
	CHECK(m->bodystructure != NULL && m->partmap != NULL);
	CHECK(m->body == NULL);
	CHECK(m->data != NULL && strcmp(m->data + m->prefix_size, MSG) == 0);
	CHECK_INT(r->msgs[1].uid, 7);
	CHECK_INT(r->msgs[1].missing, 1);

	/* RFC 2180 4.1.3: a file gone behind our back is reported. */
	CHECK_INT(unlink(path), 0);
	r = fetch(&c, uids, 1, STORE_FETCH_DATA);
	CHECK_INT(r->status, STORE_VIEW_OK);
	CHECK_INT(r->n, 1);
	CHECK_INT(r->msgs[0].missing, 1);
	r = fetch(&c, uids, 1, 0);
	CHECK_INT(r->msgs[0].missing, 0);
	free(path);
	teardown(&c);
}

static void
test_fetch_bounded(void)
{
	struct ctx c;
	uint32_t *uids = xcalloc(STORE_FETCH_MAX_MSGS + 10, sizeof(*uids));
	struct store_fetch_result *r;

	setup(&c);
	for (uint32_t i = 0; i < STORE_FETCH_MAX_MSGS + 10; i++)
		uids[i] = i + 1;
	r = fetch(&c, uids, STORE_FETCH_MAX_MSGS + 10, 0);
	CHECK_INT(r->status, STORE_VIEW_OK);
	CHECK_INT(r->n, STORE_FETCH_MAX_MSGS);
	CHECK_INT(r->msgs[STORE_FETCH_MAX_MSGS - 1].missing, 1);
	r = fetch(&c, uids, 0, 0);
	CHECK_INT(r->n, 0);
	free(uids);
	teardown(&c);
}

static void
on_change(const struct store_change *ch, void *arg)
{
	struct ctx *c = arg;

	if (ch->kind == STORE_CHANGE_FLAGS && ch->uid == 1 &&
	    ch->flags == STORE_FLAG_SEEN)
		c->changes++;
}

static void
on_seen(enum store_view_status status, void *arg)
{
	struct ctx *c = arg;

	CHECK_INT(status, STORE_VIEW_OK);
	c->answers++;
}

static void
test_set_seen(void)
{
	struct ctx c;
	uint32_t uids[] = {1, 5};
	struct store_mailbox_status st;
	char *path, *cur;
	struct stat sb;

	setup(&c);
	deliver(&c);
	path = only_file(&c);
	store_set_change_cb(c.store, on_change, &c);
	store_flags_set_seen(c.store, "alice", c.mailbox_id, uids, 2, on_seen,
	    &c);
	run_until(&c, &c.answers, 1);
	CHECK_INT(c.changes, 1);
	/* A second time finds nothing to change. */
	store_flags_set_seen(c.store, "alice", c.mailbox_id, uids, 1, on_seen,
	    &c);
	run_until(&c, &c.answers, 2);
	CHECK_INT(c.changes, 1);
	CHECK_INT(store_mailbox_status(c.store, "alice", "INBOX", &st), 0);
	CHECK_INT(st.unseen, 0);
	CHECK(stat(path, &sb) < 0);
	cur = xasprintf("%s:2,S", path);
	memcpy(strstr(cur, "/new/"), "/cur/", 5);
	CHECK_INT(stat(cur, &sb), 0);
	CHECK_INT(fetch(&c, uids, 1, STORE_FETCH_DATA)->msgs[0].missing, 0);
	free(cur);
	free(path);
	teardown(&c);
}

int
main(void)
{
	CHECK_RUN(test_fetch_row_and_file);
	CHECK_RUN(test_fetch_bounded);
	CHECK_RUN(test_set_seen);
	return check_summary();
}
