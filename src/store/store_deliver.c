/*
 * The delivery pipeline (DESIGN.md, "The path of one message") as a group
 * commit across users. Deliveries gather into batches; each batch is
 * staged in one cycle (each recipient's file written to tmp/ with the RFC
 * 5321 section 4.4 Return-Path and a Delivered-To field) and committed in
 * the next (each user's rows in one transaction, files renamed into new/).
 * A cycle stages one batch while it commits the previous one, then one
 * barrier makes both durable: the staged files before their rows can be,
 * the rows and renames before any reply. Within a cycle, one job per user.
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
	STORE_OP_COMMIT, /* staged and wanted: row, rename into new/ */
	STORE_OP_ABORT,  /* failed or refused: unlink a staged file */
};

/* One recipient of a delivery, queued on its user for the batch. */
struct store_item {
	struct store_djob *job;
	size_t idx; /* in job->d->rcpts */
	struct store_user *user;
	enum store_op op;
	int parse; /* this item's stage job parses the message */
	char *prefix;
	char *unique;
	char *file; /* final base name once committed */
	uint64_t size;
	int staged;    /* the file is in tmp/ and ours to remove */
	int committed; /* the row is committed */
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
	TAILQ_ENTRY(store_djob) link;
};

/* The work for one user in a cycle; its items are user->pending. */
struct store_ujob {
	struct store_batch *b;
	struct store_user *user;
	sqlite3 *close_db; /* a handle evicted from the cache, to close */
	int64_t mailbox_id;
	uint32_t uidvalidity;
};

struct store_batch {
	struct store *store;
	struct store_djob_list jobs;
	struct store_ujob *ujobs;
	size_t nujobs;
};

/* A job the pool refused, submitted again shortly. */
struct store_retry {
	struct store *store;
	worker_run_cb run;
	worker_done_cb done;
	void *arg;
};

static char *
store_deliver_tmp_path(struct store_item *it)
{
	return xasprintf("%s/tmp/%s", it->user->dir, it->unique);
}

/* Worker: removes a staged file that will not be committed. */
static void
store_deliver_unstage(struct store_item *it)
{
	char *path = store_deliver_tmp_path(it);

	if (unlink(path) < 0 && errno != ENOENT)
		log_error("event=deliver user=%s op=unlink error=\"%s\"",
		    it->user->name, strerror(errno));
	free(path);
	it->staged = 0;
}

/* Worker: quota check and tmp/ file for one item; usage counts staging. */
static void
store_deliver_stage_one(struct store *store, struct store_item *it,
    uint64_t *usage)
{
	struct store_delivery *d = it->job->d;
	struct store_rcpt *r = &d->rcpts[it->idx];
	char *path, q[160];
	int err = 0;

	if (r->quota > 0 && *usage + it->size > r->quota) {
		log_info("event=deliver user=%s status=quota size=%llu",
		    it->user->name, (unsigned long long)it->size);
		it->status = STORE_ERR_QUOTA;
		return;
	}
	path = store_deliver_tmp_path(it);
	if (store->fail_user != NULL &&
	    strcmp(store->fail_user, it->user->name) == 0)
		err = store->fail_errno;
	else if (store_maildir_write(path, it->prefix, d->data, d->len,
	             store->fsync_mode == STORE_FSYNC_FILE) < 0)
		err = errno;
	if (err != 0) {
		log_error("event=deliver user=%s op=write file=%s error=\"%s\"",
		    it->user->name, log_quote(q, sizeof(q), path, strlen(path)),
		    strerror(err));
		it->status = store_maildir_errno_status(err);
	} else {
		it->staged = 1;
		*usage += it->size;
	}
	free(path);
}

/* Worker, staging: the one job for uj->user in this cycle. */
static void
store_deliver_stage_run(void *arg)
{
	struct store_ujob *uj = arg;
	struct store_user *u = uj->user;
	struct store_mailbox mb = {0};
	struct store_item *it;
	uint64_t usage = 0;

	store_index_close(&uj->close_db);
	TAILQ_FOREACH(it, &u->pending, link)
		if (it->parse)
			mime_parse(it->job->d->data, it->job->d->len,
			    &it->job->mime);
	if ((u->db == NULL && store_user_open(u->dir, &u->db) < 0) ||
	    store_index_mailbox_find(u->db, "INBOX", &mb) < 0 ||
	    store_index_usage(u->db, &usage) < 0) {
		TAILQ_FOREACH(it, &u->pending, link)
			it->status = STORE_ERR_IO;
		store_index_mailbox_deinit(&mb);
		return;
	}
	uj->mailbox_id = mb.id;
	uj->uidvalidity = mb.uidvalidity;
	store_index_mailbox_deinit(&mb);
	TAILQ_FOREACH(it, &u->pending, link)
		store_deliver_stage_one(uj->b->store, it, &usage);
}

/* Worker: inserts the rows of uj's COMMIT items in one transaction. */
static int
store_deliver_insert(struct store_ujob *uj)
{
	sqlite3 *db = uj->user->db;
	struct store_item *it;

	if (store_index_begin(db) < 0)
		return -1;
	TAILQ_FOREACH(it, &uj->user->pending, link) {
		struct store_msg m = {
		    .mailbox_id = uj->mailbox_id,
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
		it->mailbox_id = uj->mailbox_id;
		it->uidvalidity = uj->uidvalidity;
	}
	if (store_index_commit(db) < 0) {
		store_index_rollback(db);
		return -1;
	}
	return 0;
}

/*
 * Worker: commits uj's rows. In syncfs mode the connection commits with
 * synchronous=NORMAL (barrier 2 makes the WAL durable) and goes back to
 * FULL for every other writer; a handle that cannot go back is closed.
 */
static int
store_deliver_rows(struct store_ujob *uj)
{
	struct store_user *u = uj->user;
	int relaxed = uj->b->store->fsync_mode == STORE_FSYNC_SYNCFS;
	struct store_item *it;
	int r;

	if (relaxed && store_index_set_full_sync(u->db, 0) < 0)
		return -1;
	r = store_deliver_insert(uj);
	if (relaxed && store_index_set_full_sync(u->db, 1) < 0)
		store_index_close(&u->db);
	if (r < 0)
		return -1;
	atomic_fetch_add(&uj->b->store->commits, 1);
	TAILQ_FOREACH(it, &u->pending, link)
		it->committed = it->op == STORE_OP_COMMIT;
	return 0;
}

/*
 * Worker: moves committed files into new/; in file mode syncs new/ once. A
 * failed rename or sync reports the item STORE_ERR_IO although its row
 * stays: store_recover() puts the file in place at the next start, and the
 * client, told to retry, may store it twice rather than lose it.
 */
static void
store_deliver_place(struct store_ujob *uj)
{
	struct store_user *u = uj->user;
	char *newdir = xasprintf("%s/new", u->dir);
	struct store_item *it;
	int moved = 0;

	TAILQ_FOREACH(it, &u->pending, link) {
		char *from, *to;

		if (!it->committed)
			continue;
		from = store_deliver_tmp_path(it);
		to = xasprintf("%s/%s", newdir, it->file);
		if (rename(from, to) < 0) {
			log_error("event=deliver user=%s op=rename error=\"%s\"",
			    u->name, strerror(errno));
			it->status = STORE_ERR_IO;
		} else {
			moved++;
		}
		it->staged = 0;
		free(from);
		free(to);
	}
	if (moved > 0 && uj->b->store->fsync_mode == STORE_FSYNC_FILE &&
	    store_maildir_fsync_dir(newdir) < 0) {
		log_error("event=deliver user=%s op=fsync error=\"%s\"",
		    u->name, strerror(errno));
		TAILQ_FOREACH(it, &u->pending, link)
			if (it->committed)
				it->status = STORE_ERR_IO;
	}
	free(newdir);
}

/* Worker, committing: the one job for uj->user in this cycle. */
static void
store_deliver_commit_run(void *arg)
{
	struct store_ujob *uj = arg;
	struct store_item *it;
	int any = 0;

	TAILQ_FOREACH(it, &uj->user->pending, link) {
		if (it->op == STORE_OP_ABORT && it->staged)
			store_deliver_unstage(it);
		any |= it->op == STORE_OP_COMMIT;
	}
	if (!any)
		return;
	if (store_deliver_rows(uj) == 0) {
		store_deliver_place(uj);
		return;
	}
	TAILQ_FOREACH(it, &uj->user->pending, link) {
		if (it->op != STORE_OP_COMMIT)
			continue;
		store_deliver_unstage(it);
		it->status = STORE_ERR_IO;
	}
}

/* Worker: one syncfs(2) of the store's file system; 0 or an errno. */
static int
store_deliver_syncfs(struct store *store, int barrier)
{
	int err = store->fail_barrier[barrier - 1];

	if (err == 0 && syncfs(store->root_fd) < 0)
		err = errno;
	if (err != 0)
		log_error("event=deliver op=syncfs barrier=%d error=\"%s\"",
		    barrier, strerror(err));
	return err;
}

/*
 * Worker, the cycle's barrier (syncfs mode): one syncfs makes the staged
 * files of one batch and the rows and renames of the other durable. On
 * failure every staged file is removed and its item fails, and every
 * committed item fails (its row and file may yet be on disk: see
 * store_deliver_place()).
 */
static void
store_deliver_barrier_run(void *arg)
{
	struct store *store = arg;
	struct store_djob *job;
	int err;

	err = store_deliver_syncfs(store, store->committing ? 2 : 1);
	if (err == 0 && store->committing != NULL && store->staging != NULL)
		err = store->fail_barrier[0];
	if (err == 0)
		return;
	if (store->staging != NULL) {
		TAILQ_FOREACH(job, &store->staging->jobs, link) {
			for (size_t i = 0; i < job->d->nrcpts; i++) {
				struct store_item *it = &job->items[i];

				if (!it->staged)
					continue;
				store_deliver_unstage(it);
				it->status = store_maildir_errno_status(err);
			}
		}
	}
	if (store->committing != NULL) {
		TAILQ_FOREACH(job, &store->committing->jobs, link) {
			for (size_t i = 0; i < job->d->nrcpts; i++)
				if (job->items[i].committed)
					job->items[i].status = STORE_ERR_IO;
		}
	}
}

/*
 * Loop thread, once a batch is staged and durable: with all_or_none and
 * any recipient failed, every recipient gets the first error and staged
 * files are aborted by the commit jobs.
 */
static void
store_deliver_settle(struct store_djob *job)
{
	enum store_status first = STORE_OK;
	size_t n = job->d->nrcpts;

	for (size_t i = 0; i < n && first == STORE_OK; i++)
		first = job->items[i].status;
	for (size_t i = 0; i < n; i++) {
		struct store_item *it = &job->items[i];

		if (job->d->all_or_none && first != STORE_OK)
			it->status = first;
		it->op =
		    it->status == STORE_OK ? STORE_OP_COMMIT : STORE_OP_ABORT;
	}
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

/* Loop thread: reports one delivery and frees what the store added. */
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

/*
 * Loop thread, once a batch's rows and renames are durable: releases its
 * users, announces every stored message, then completes each delivery.
 */
static void
store_batch_finish(struct store *store, struct store_batch *b)
{
	struct store_djob *job;

	for (size_t i = 0; i < b->nujobs; i++) {
		struct store_user *u = b->ujobs[i].user;

		u->busy = 0;
		TAILQ_INIT(&u->pending);
		store_user_handle_failed(store, u);
	}
	TAILQ_FOREACH(job, &b->jobs, link) {
		for (size_t i = 0; i < job->d->nrcpts; i++)
			if (job->items[i].committed &&
			    job->items[i].status == STORE_OK)
				store_deliver_announce(store, &job->items[i]);
	}
	while ((job = TAILQ_FIRST(&b->jobs)) != NULL) {
		TAILQ_REMOVE(&b->jobs, job, link);
		store_deliver_finish(job);
	}
	free(b->ujobs);
	free(b);
}

static void store_cycle_start(struct store *store);

/*
 * Loop thread, after the cycle's barrier: the committed batch is done,
 * the staged one moves on to be committed, and the next cycle begins.
 */
static void
store_cycle_end(struct store *store)
{
	struct store_batch *b = store->committing;
	struct store_djob *job;

	store->committing = store->staging;
	store->staging = NULL;
	if (store->committing != NULL)
		TAILQ_FOREACH(job, &store->committing->jobs, link)
			store_deliver_settle(job);
	store->cycle_busy = 0;
	if (b != NULL)
		store_batch_finish(store, b);
	store_cycle_start(store);
}

static void
store_cycle_barrier_done(void *arg)
{
	store_cycle_end(arg);
}

static void
store_cycle_deferred(evutil_socket_t fd, short what, void *arg)
{
	store_cycle_end(arg);
}

static void
store_cycle_retry(evutil_socket_t fd, short what, void *arg)
{
	struct store_retry *r = arg;
	struct timeval later = {0, 1000};

	if (worker_pool_submit(r->store->io, r->run, r->done, r->arg) == 0)
		free(r);
	else
		event_base_once(r->store->base, -1, EV_TIMEOUT,
		    store_cycle_retry, r, &later);
}

/*
 * Queues one job of the cycle. A refused job is retried shortly: failing
 * it instead would leave staged files behind or lie about rows.
 */
static void
store_cycle_submit(struct store *store, worker_run_cb run, worker_done_cb done,
    void *arg)
{
	struct store_retry *r;
	struct timeval later = {0, 1000};

	store->cycle_running++;
	if (worker_pool_submit(store->io, run, done, arg) == 0)
		return;
	log_error("event=deliver error=\"worker queue full\" action=retry");
	r = xcalloc(1, sizeof(*r));
	r->store = store;
	r->run = run;
	r->done = done;
	r->arg = arg;
	event_base_once(store->base, -1, EV_TIMEOUT, store_cycle_retry, r,
	    &later);
}

/* Loop thread: every stage and commit job of the cycle is done. */
static void
store_cycle_jobs_done(struct store *store)
{
	struct timeval now = {0, 0};

	if (store->fsync_mode == STORE_FSYNC_SYNCFS) {
		store_cycle_submit(store, store_deliver_barrier_run,
		    store_cycle_barrier_done, store);
		return;
	}
	/* A cycle without jobs still ends on a later loop turn. */
	event_base_once(store->base, -1, EV_TIMEOUT, store_cycle_deferred,
	    store, &now);
}

static void
store_cycle_ujob_done(void *arg)
{
	struct store_ujob *uj = arg;
	struct store *store = uj->b->store;

	if (--store->cycle_running == 0)
		store_cycle_jobs_done(store);
}

/* Loop thread: queues a delivery's items on their users. */
static void
store_batch_group(struct store_batch *b, struct store_djob *job)
{
	int parse = 1;

	for (size_t i = 0; i < job->d->nrcpts; i++) {
		struct store_item *it = &job->items[i];
		struct store_user *u = it->user;

		if (u == NULL)
			continue;
		it->parse = parse;
		parse = 0;
		if (!u->busy) {
			u->busy = 1;
			u->batch = b;
			b->ujobs = xreallocarray(b->ujobs, b->nujobs + 1,
			    sizeof(*b->ujobs));
			b->ujobs[b->nujobs++] =
			    (struct store_ujob){.b = b, .user = u};
		}
		TAILQ_INSERT_TAIL(&u->pending, it, link);
	}
}

/* Whether a waiting delivery touches a user busy in another batch. */
static int
store_batch_blocked(struct store_djob *job, const struct store_batch *b)
{
	for (size_t i = 0; i < job->d->nrcpts; i++) {
		const struct store_user *u = job->items[i].user;

		if (u != NULL && u->busy && (b == NULL || u->batch != b))
			return 1;
	}
	return 0;
}

/*
 * Loop thread: the waiting deliveries whose users are free form a batch;
 * one that shares a user with the batch being committed waits a cycle, so
 * that each user's handle serves one job at a time.
 */
static struct store_batch *
store_batch_form(struct store *store)
{
	struct store_batch *b = NULL;
	struct store_djob *job, *next;

	for (job = TAILQ_FIRST(&store->waiting); job != NULL; job = next) {
		next = TAILQ_NEXT(job, link);
		if (store_batch_blocked(job, b))
			continue;
		if (b == NULL) {
			b = xcalloc(1, sizeof(*b));
			b->store = store;
			TAILQ_INIT(&b->jobs);
		}
		TAILQ_REMOVE(&store->waiting, job, link);
		TAILQ_INSERT_TAIL(&b->jobs, job, link);
		store_batch_group(b, job);
	}
	if (b == NULL)
		return NULL;
	store->batches++;
	/* Every user of the batch is busy now, so none loses its handle. */
	for (size_t i = 0; i < b->nujobs; i++)
		b->ujobs[i].close_db =
		    store_user_take_handle(store, b->ujobs[i].user);
	return b;
}

/*
 * Loop thread: a cycle stages a new batch while it commits the previous
 * one; one barrier then serves both. Nothing starts while a cycle runs.
 */
static void
store_cycle_start(struct store *store)
{
	struct store_batch *s, *c;

	if (store->cycle_busy)
		return;
	store->staging = store_batch_form(store);
	s = store->staging;
	c = store->committing;
	if (s == NULL && c == NULL)
		return;
	store->cycle_busy = 1;
	store->cycle_running = 0;
	for (size_t i = 0; s != NULL && i < s->nujobs; i++)
		store_cycle_submit(store, store_deliver_stage_run,
		    store_cycle_ujob_done, &s->ujobs[i]);
	for (size_t i = 0; c != NULL && i < c->nujobs; i++)
		store_cycle_submit(store, store_deliver_commit_run,
		    store_cycle_ujob_done, &c->ujobs[i]);
	if (store->cycle_running == 0)
		store_cycle_jobs_done(store);
}

/* Loop thread: resolves one recipient and names its file. */
static void
store_deliver_item_init(struct store_djob *job, size_t i)
{
	struct store_delivery *d = job->d;
	struct store_item *it = &job->items[i];
	const char *to = d->rcpts[i].delivered_to;
	char q[160];

	it->job = job;
	it->idx = i;
	it->user = store_user_get(job->store, d->rcpts[i].user);
	if (it->user == NULL) {
		log_warn("event=deliver error=\"invalid user\" user=%s",
		    log_quote(q, sizeof(q), d->rcpts[i].user,
		        strlen(d->rcpts[i].user)));
		it->status = STORE_ERR_IO;
		return;
	}
	it->status = STORE_OK;
	it->prefix = store_maildir_prefix(d->return_path ? d->return_path : "",
	    to ? to : d->rcpts[i].user);
	it->unique = store_maildir_unique(job->store);
	it->size = strlen(it->prefix) + d->len;
}

void
store_deliver(struct store *store, struct store_delivery *d)
{
	struct store_djob *job = xcalloc(1, sizeof(*job));

	job->store = store;
	job->d = d;
	job->items = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(*job->items));
	mime_info_deinit(&job->mime);
	for (size_t i = 0; i < d->nrcpts; i++)
		store_deliver_item_init(job, i);
	store->inflight++;
	TAILQ_INSERT_TAIL(&store->waiting, job, link);
	store_cycle_start(store);
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
