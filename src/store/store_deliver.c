/*
 * The delivery pipeline (DESIGN.md, "The path of one message"): parse once,
 * stage each recipient's file in tmp/ with its RFC 5321 section 4.4
 * Return-Path and a Delivered-To field, commit the index rows, rename into
 * new/ and sync the directory, then report on the loop thread. Work for one
 * user runs as one job at a time; what queues up meanwhile forms the next
 * batch, which shares one transaction and one directory sync.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/worker.h"
#include "store/store_int.h"

enum store_op {
	STORE_OP_STAGE,  /* quota check, write and sync tmp/ file */
	STORE_OP_COMMIT, /* index row, rename into new/ */
	STORE_OP_ABORT,  /* unlink the staged file */
};

struct store_djob;

/* One recipient of a delivery, queued on its user. */
struct store_item {
	struct store_djob *job;
	size_t idx; /* in job->d->rcpts */
	struct store_user *user;
	enum store_op op;
	char *prefix;
	char *unique;
	char *file; /* final base name once committed */
	uint64_t size;
	int staged;
	enum store_status status;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t modseq;
	TAILQ_ENTRY(store_item) link;
};

struct store_djob {
	struct store *store;
	struct store_delivery *d;
	struct mime_info mime;
	struct store_item *items;
	size_t outstanding;
};

/* The items one job takes for one user. */
struct store_batch {
	struct store *store;
	struct store_user *user;
	struct store_item_list items;
	sqlite3 *close_db;
};

static void store_deliver_kick(struct store *store, struct store_user *u);

static void
store_deliver_finish(struct store_djob *job)
{
	struct store_delivery *d = job->d;
	struct store *store = job->store;

	for (size_t i = 0; i < d->nrcpts; i++) {
		struct store_item *it = &job->items[i];

		d->rcpts[i].status = it->status;
		d->rcpts[i].uid = it->status == STORE_OK ? it->uid : 0;
		free(it->prefix);
		free(it->unique);
		free(it->file);
	}
	mime_info_deinit(&job->mime);
	free(job->items);
	free(job);
	store->inflight--;
	d->done(d, d->arg);
}

static void
store_deliver_enqueue(struct store_item *it, enum store_op op)
{
	it->op = op;
	TAILQ_INSERT_TAIL(&it->user->pending, it, link);
	it->job->outstanding++;
}

static void
store_deliver_kick_all(struct store_djob *job)
{
	for (size_t i = 0; i < job->d->nrcpts; i++)
		if (job->items[i].user != NULL)
			store_deliver_kick(job->store, job->items[i].user);
}

/* Loop thread, after the parse: every valid recipient gets staged. */
static void
store_deliver_parsed(void *arg)
{
	struct store_djob *job = arg;

	for (size_t i = 0; i < job->d->nrcpts; i++)
		if (job->items[i].user != NULL)
			store_deliver_enqueue(&job->items[i], STORE_OP_STAGE);
	if (job->outstanding == 0) {
		store_deliver_finish(job);
		return;
	}
	store_deliver_kick_all(job);
}

/*
 * Loop thread, once every recipient is staged (or refused): commit the
 * staged ones, or with all_or_none and any failure, abort them all.
 */
static void
store_deliver_staged(struct store_djob *job)
{
	enum store_status first = STORE_OK;
	size_t n = job->d->nrcpts;

	for (size_t i = 0; i < n && first == STORE_OK; i++)
		first = job->items[i].status;
	for (size_t i = 0; i < n; i++) {
		struct store_item *it = &job->items[i];

		if (job->d->all_or_none && first != STORE_OK) {
			it->status = first;
			if (it->staged)
				store_deliver_enqueue(it, STORE_OP_ABORT);
		} else if (it->status == STORE_OK) {
			store_deliver_enqueue(it, STORE_OP_COMMIT);
		}
	}
	if (job->outstanding == 0) {
		store_deliver_finish(job);
		return;
	}
	store_deliver_kick_all(job);
}

static void
store_deliver_announce(struct store *store, struct store_item *it)
{
	struct store_change c = {
	    .kind = STORE_CHANGE_NEW,
	    .user = it->user->name,
	    .mailbox = "INBOX",
	    .mailbox_id = it->mailbox_id,
	    .uidvalidity = it->uidvalidity,
	    .uid = it->uid,
	    .modseq = it->modseq,
	    .flags = 0,
	    .size = it->size,
	};

	if (store->change_cb != NULL)
		store->change_cb(&c, store->change_arg);
}

/* Loop thread: one item's op has completed. */
static void
store_deliver_item_done(struct store *store, struct store_item *it)
{
	struct store_djob *job = it->job;

	if (it->op == STORE_OP_COMMIT && it->status == STORE_OK)
		store_deliver_announce(store, it);
	if (--job->outstanding > 0)
		return;
	if (it->op == STORE_OP_STAGE)
		store_deliver_staged(job);
	else
		store_deliver_finish(job);
}

static char *
store_deliver_tmp_path(struct store_item *it)
{
	return xasprintf("%s/tmp/%s", it->user->dir, it->unique);
}

static void
store_deliver_stage_one(struct store_batch *b, struct store_item *it,
    uint64_t usage)
{
	struct store_delivery *d = it->job->d;
	struct store_rcpt *r = &d->rcpts[it->idx];
	char *path, q[160];
	int err = 0;

	if (r->quota > 0 && usage + b->user->reserved + it->size > r->quota) {
		log_info("event=deliver user=%s status=quota size=%llu",
		    b->user->name, (unsigned long long)it->size);
		it->status = STORE_ERR_QUOTA;
		return;
	}
	path = store_deliver_tmp_path(it);
	if (b->store->fail_user != NULL &&
	    strcmp(b->store->fail_user, b->user->name) == 0)
		err = b->store->fail_errno;
	else if (store_maildir_write(path, it->prefix, d->data, d->len) < 0)
		err = errno;
	if (err != 0) {
		log_error("event=deliver user=%s op=write file=%s error=\"%s\"",
		    b->user->name, log_quote(q, sizeof(q), path, strlen(path)),
		    strerror(err));
		it->status = store_maildir_errno_status(err);
	} else {
		it->staged = 1;
		it->status = STORE_OK;
		b->user->reserved += it->size;
	}
	free(path);
}

static void
store_deliver_unstage(struct store_batch *b, struct store_item *it)
{
	char *path = store_deliver_tmp_path(it);

	if (unlink(path) < 0 && errno != ENOENT)
		log_error("event=deliver user=%s op=unlink error=\"%s\"",
		    b->user->name, strerror(errno));
	free(path);
	b->user->reserved -= it->size;
	it->staged = 0;
}

/* Worker: inserts every COMMIT item's row in one transaction. */
static int
store_deliver_rows(struct store_batch *b, const struct store_mailbox *mb)
{
	sqlite3 *db = b->user->db;
	struct store_item *it;

	if (store_index_begin(db) < 0)
		return -1;
	TAILQ_FOREACH(it, &b->items, link) {
		struct store_msg m = {
		    .mailbox_id = mb->id,
		    .unique = it->unique,
		    .size = it->size,
		    .internaldate = it->job->d->internaldate,
		    .prefix_len = strlen(it->prefix),
		    .mime = &it->job->mime,
		};

		if (it->op != STORE_OP_COMMIT)
			continue;
		if (store_index_message_add(db, &m) < 0) {
			free(m.file);
			store_index_rollback(db);
			return -1;
		}
		it->file = m.file;
		it->uid = m.uid;
		it->modseq = m.modseq;
		it->mailbox_id = mb->id;
		it->uidvalidity = mb->uidvalidity;
	}
	if (store_index_commit(db) < 0) {
		store_index_rollback(db);
		return -1;
	}
	atomic_fetch_add(&b->store->commits, 1);
	return 0;
}

/*
 * Worker: moves committed files into new/ and syncs it once. A failed
 * rename or sync leaves a committed row whose file is still durable in
 * tmp/ or new/, which store_recover() puts in place: the message is not
 * lost, so the status stays STORE_OK.
 */
static void
store_deliver_place(struct store_batch *b)
{
	char *newdir = xasprintf("%s/new", b->user->dir);
	struct store_item *it;

	TAILQ_FOREACH(it, &b->items, link) {
		char *from, *to;

		if (it->op != STORE_OP_COMMIT || it->status != STORE_OK)
			continue;
		from = store_deliver_tmp_path(it);
		to = xasprintf("%s/%s", newdir, it->file);
		if (rename(from, to) < 0)
			log_error("event=deliver user=%s op=rename error=\"%s\"",
			    b->user->name, strerror(errno));
		b->user->reserved -= it->size;
		it->staged = 0;
		free(from);
		free(to);
	}
	if (store_maildir_fsync_dir(newdir) < 0)
		log_error("event=deliver user=%s op=fsync error=\"%s\"",
		    b->user->name, strerror(errno));
	free(newdir);
}

static void
store_deliver_commit(struct store_batch *b, const struct store_mailbox *mb)
{
	struct store_item *it;
	int any = 0;

	TAILQ_FOREACH(it, &b->items, link)
		any |= it->op == STORE_OP_COMMIT;
	if (!any)
		return;
	if (store_deliver_rows(b, mb) == 0) {
		store_deliver_place(b);
		return;
	}
	TAILQ_FOREACH(it, &b->items, link) {
		if (it->op != STORE_OP_COMMIT)
			continue;
		store_deliver_unstage(b, it);
		it->status = STORE_ERR_IO;
	}
}

/* Worker: fails every item of a batch whose index cannot be opened. */
static void
store_deliver_fail_all(struct store_batch *b)
{
	struct store_item *it;

	TAILQ_FOREACH(it, &b->items, link) {
		if (it->op != STORE_OP_STAGE)
			store_deliver_unstage(b, it);
		if (it->op != STORE_OP_ABORT)
			it->status = STORE_ERR_IO;
	}
}

/* Worker: the one job that holds b->user. */
static void
store_deliver_batch_run(void *arg)
{
	struct store_batch *b = arg;
	struct store_user *u = b->user;
	struct store_mailbox mb = {0};
	struct store_item *it;
	uint64_t usage = 0;

	store_index_close(&b->close_db);
	if ((u->db == NULL && store_user_open(u->dir, &u->db) < 0) ||
	    store_index_mailbox_find(u->db, "INBOX", &mb) < 0 ||
	    store_index_usage(u->db, &usage) < 0) {
		store_deliver_fail_all(b);
		store_index_mailbox_deinit(&mb);
		return;
	}
	TAILQ_FOREACH(it, &b->items, link) {
		if (it->op == STORE_OP_STAGE)
			store_deliver_stage_one(b, it, usage);
		else if (it->op == STORE_OP_ABORT)
			store_deliver_unstage(b, it);
	}
	store_deliver_commit(b, &mb);
	store_index_mailbox_deinit(&mb);
}

static void
store_deliver_batch_done(void *arg)
{
	struct store_batch *b = arg;
	struct store *store = b->store;
	struct store_user *u = b->user;
	struct store_item *it;

	u->busy = 0;
	store_user_handle_failed(store, u);
	while ((it = TAILQ_FIRST(&b->items)) != NULL) {
		TAILQ_REMOVE(&b->items, it, link);
		store_deliver_item_done(store, it);
	}
	free(b);
	store_deliver_kick(store, u);
}

/* The pool refused the job: the batch fails without touching the disk. */
static void
store_deliver_batch_refused(evutil_socket_t fd, short what, void *arg)
{
	struct store_batch *b = arg;
	struct store_item *it;

	store_index_close(&b->close_db);
	TAILQ_FOREACH(it, &b->items, link)
		if (it->op != STORE_OP_ABORT)
			it->status = STORE_ERR_IO;
	store_deliver_batch_done(b);
}

/* Starts a job for u when it is idle and has work queued. */
static void
store_deliver_kick(struct store *store, struct store_user *u)
{
	struct store_batch *b;
	struct timeval now = {0, 0};

	if (u->busy || TAILQ_EMPTY(&u->pending))
		return;
	b = xcalloc(1, sizeof(*b));
	b->store = store;
	b->user = u;
	TAILQ_INIT(&b->items);
	TAILQ_CONCAT(&b->items, &u->pending, link);
	u->busy = 1;
	b->close_db = store_user_take_handle(store, u);
	if (worker_pool_submit(store->io, store_deliver_batch_run,
	        store_deliver_batch_done, b) < 0) {
		log_error("event=deliver user=%s error=\"worker queue full\"",
		    u->name);
		event_base_once(store->base, -1, EV_TIMEOUT,
		    store_deliver_batch_refused, b, &now);
	}
}

/* Worker: parse the message once and name each recipient's file. */
static void
store_deliver_parse(void *arg)
{
	struct store_djob *job = arg;
	struct store_delivery *d = job->d;

	mime_parse(d->data, d->len, &job->mime);
	for (size_t i = 0; i < d->nrcpts; i++) {
		struct store_item *it = &job->items[i];

		if (it->user == NULL)
			continue;
		it->prefix =
		    store_maildir_prefix(d->return_path ? d->return_path : "",
		        d->rcpts[i].delivered_to ? d->rcpts[i].delivered_to :
		                                   d->rcpts[i].user);
		it->unique = store_maildir_unique(job->store);
		it->size = strlen(it->prefix) + d->len;
	}
}

static void
store_deliver_refused(evutil_socket_t fd, short what, void *arg)
{
	struct store_djob *job = arg;

	for (size_t i = 0; i < job->d->nrcpts; i++)
		job->items[i].status = STORE_ERR_IO;
	store_deliver_finish(job);
}

void
store_deliver(struct store *store, struct store_delivery *d)
{
	struct store_djob *job = xcalloc(1, sizeof(*job));
	struct timeval now = {0, 0};
	char q[160];

	job->store = store;
	job->d = d;
	job->items = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(*job->items));
	store->inflight++;
	for (size_t i = 0; i < d->nrcpts; i++) {
		struct store_item *it = &job->items[i];

		it->job = job;
		it->idx = i;
		it->user = store_user_get(store, d->rcpts[i].user);
		it->status = it->user != NULL ? STORE_OK : STORE_ERR_IO;
		if (it->user == NULL)
			log_warn("event=deliver error=\"invalid user\" user=%s",
			    log_quote(q, sizeof(q), d->rcpts[i].user,
			        strlen(d->rcpts[i].user)));
	}
	if (worker_pool_submit(store->io, store_deliver_parse,
	        store_deliver_parsed, job) < 0)
		event_base_once(store->base, -1, EV_TIMEOUT,
		    store_deliver_refused, job, &now);
}

void
store_delivery_free(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;

	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nrcpts; i++) {
		free(d->rcpts[i].user);
		free(d->rcpts[i].delivered_to);
	}
	free(d->rcpts);
	free(d->return_path);
	free(d->data);
	free(d);
	*dp = NULL;
}
