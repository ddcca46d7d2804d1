/*
 * The delivery pipeline (DESIGN.md, "The path of one message"), driven per
 * recipient with durability epochs. Each recipient is an item queued on its
 * user; one job at a time per user commits the user's settled items (their
 * rows in one transaction, then each file renamed into new/) and stages its
 * new ones (the file written to tmp/ with the RFC 5321 section 4.4
 * Return-Path and a Delivered-To field). One syncfs(2) runs at a time as a
 * barrier; it covers every step that finished before it started. A file's
 * barrier completes before its delivery settles and its row can commit, so
 * the file is durable before the row can be; the row and rename are covered
 * by a later barrier before the reply. In file mode each step syncs itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/hist.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/worker.h"
#include "store/store_int.h"
#include "store/store_watch.h"

enum store_op {
	STORE_OP_COMMIT, /* staged and wanted: row, rename into new/ */
	STORE_OP_ABORT,  /* failed or refused: unlink a staged file */
};

/* What a waiting item's barrier covers; also the test hook's numbering. */
enum store_step {
	STORE_STEP_STAGED = 1,    /* its file in tmp/ */
	STORE_STEP_COMMITTED = 2, /* its row and its rename into new/ */
};

/* One recipient of a delivery. */
struct store_item {
	struct store_djob *job;
	size_t idx; /* in job->d->rcpts */
	struct store_user *user;
	enum store_op op;     /* once its delivery is settled */
	enum store_step step; /* while it waits for barrier need */
	uint64_t need;
	int parse; /* this item's stage job parses the message */
	char *prefix;
	char *unique;
	char *file; /* final base name once committed */
	uint64_t size;
	int staged;    /* the file is in tmp/ and ours to remove */
	int fd;        /* a direct item's file, open until synced, or -1 */
	int committed; /* the row is committed */
	int direct;    /* committed by the job that staged it */
	enum store_status status;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t modseq;
	uint64_t durable_ns; /* hist_now_ns() once row and file are durable */
	TAILQ_ENTRY(store_item) link; /* on a user, a job or store->waiters */
};

struct store_djob {
	struct store *store;
	struct store_delivery *d;
	struct mime_info mime;
	struct store_item *items;
	size_t unsettled; /* items neither durably staged nor failed */
	size_t left;      /* items not yet final */
	TAILQ_ENTRY(store_djob) link; /* on store->idle */
};

/* The one job running for a user: owns its items and its handle. */
struct store_ujob {
	struct store *store;
	struct store_user *user;
	sqlite3 *close_db;             /* a handle evicted from the cache */
	struct store_user *close_user; /* whose it was */
	struct store_item_list commit; /* (a) settled items */
	struct store_item_list stage;  /* (b) arrived items */
	uint64_t usage_extra; /* staged by earlier jobs, not yet committed */
	int64_t mailbox_id;
	uint32_t uidvalidity;
};

/* Committed items a job hands to the loop before it ends. */
struct store_handover {
	struct store *store;
	struct store_item_list items;
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

	if (it->fd >= 0) {
		close(it->fd);
		it->fd = -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		log_error("event=deliver user=%s op=unlink error=\"%s\"",
		    it->user->name, strerror(errno));
	free(path);
	it->staged = 0;
}

/*
 * File mode: an item of a delivery with no other recipient is settled as
 * soon as it is staged (nothing to wait for), so the job that stages it
 * commits it too, which saves a round trip through the loop and a second
 * job; its file's sync waits until the index rows are ready.
 */
static int
store_deliver_is_direct(const struct store *store, const struct store_item *it)
{
	return store->fsync_mode == STORE_FSYNC_FILE && it->job->d->nrcpts == 1;
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
	else if (store_deliver_is_direct(store, it))
		err = (it->fd = store_maildir_write_start(path, it->prefix,
		           d->data, d->len)) < 0 ?
		    errno :
		    0;
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

/*
 * Worker: syncs the files of direct items, written with only a head start
 * (store_maildir_write_start()). A failed sync fails them all: the data is
 * written again by the client's retry, never assumed.
 */
static int
store_deliver_sync_direct(struct store_ujob *uj)
{
	struct store_item *it;
	int r = 0;

	TAILQ_FOREACH(it, &uj->commit, link) {
		if (it->fd < 0)
			continue;
		if (fdatasync(it->fd) < 0) {
			log_error("event=deliver user=%s op=fdatasync "
			          "error=\"%s\"",
			    it->user->name, strerror(errno));
			r = -1;
		}
		close(it->fd);
		it->fd = -1;
	}
	return r;
}

/* Worker: inserts the rows of uj's COMMIT items in one transaction. */
static int
store_deliver_insert(struct store_ujob *uj)
{
	sqlite3 *db = uj->user->db;
	struct store_item *it;

	if (store_index_begin(db) < 0)
		return -1;
	TAILQ_FOREACH(it, &uj->commit, link) {
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
	/* A file is durable before its row can be. */
	if (store_deliver_sync_direct(uj) < 0) {
		store_index_rollback(db);
		return -1;
	}
	if (store_index_commit(db) < 0) {
		store_index_rollback(db);
		return -1;
	}
	return 0;
}

/*
 * Worker: commits uj's rows. In syncfs mode the connection commits with
 * synchronous=NORMAL (a barrier makes the WAL durable) and goes back to
 * FULL for every other writer; a handle that cannot go back is closed.
 */
static int
store_deliver_rows(struct store_ujob *uj)
{
	struct store_user *u = uj->user;
	int relaxed = uj->store->fsync_mode == STORE_FSYNC_SYNCFS;
	struct store_item *it;
	int r;

	if (relaxed && store_index_set_full_sync(u->db, 0) < 0)
		return -1;
	r = store_deliver_insert(uj);
	if (relaxed && store_index_set_full_sync(u->db, 1) < 0)
		store_index_close(&u->db);
	if (r < 0)
		return -1;
	atomic_fetch_add(&uj->store->commits, 1);
	TAILQ_FOREACH(it, &uj->commit, link)
		it->committed = it->op == STORE_OP_COMMIT;
	return 0;
}

/* The change a stored item makes: a new message in INBOX. */
static struct store_change
store_deliver_change(const struct store_item *it)
{
	return (struct store_change){
	    .kind = STORE_CHANGE_NEW,
	    .user = it->user->name,
	    .mailbox = "INBOX",
	    .mailbox_id = it->mailbox_id,
	    .uidvalidity = it->uidvalidity,
	    .uid = it->uid,
	    .modseq = it->modseq,
	    .size = it->size,
	    .committed_ns = it->durable_ns,
	};
}

/* Loop thread: the views and the hub hear of c. */
static void
store_deliver_publish(struct store *store, const struct store_change *c)
{
	store_view_apply(store, c, NULL);
	if (store->change_cb != NULL)
		store->change_cb(c, store->change_arg);
}

/* Announcements a worker sends ahead of the items they describe. */
struct store_early {
	struct store *store;
	size_t n;
	struct store_change c[];
};

static void store_deliver_early_done(void *arg);

/*
 * Worker, file mode: announces the items just renamed into new/ before
 * the directory's sync (DESIGN.md, the path of one message: the push
 * follows the rename, the 250 the sync). The row and the file are durable;
 * should the rename be lost in a crash, store_recover() puts the file in
 * place again from tmp/, so a watcher never sees a message that goes away.
 */
static void
store_deliver_announce_early(struct store_ujob *uj)
{
	struct store_early *e;
	struct store_item *it;
	size_t n = 0;

	TAILQ_FOREACH(it, &uj->commit, link)
		n += it->committed && it->status == STORE_OK;
	if (n == 0)
		return;
	e = xmalloc(sizeof(*e) + n * sizeof(e->c[0]));
	e->store = uj->store;
	e->n = 0;
	TAILQ_FOREACH(it, &uj->commit, link)
		if (it->committed && it->status == STORE_OK)
			e->c[e->n++] = store_deliver_change(it);
	worker_pool_post(uj->store->io, store_deliver_early_done, e);
}

/*
 * Worker: moves committed files into new/; in file mode announces them,
 * then syncs new/ once. A failed rename or sync reports the item
 * STORE_ERR_IO although its row stays: store_recover() puts the file in
 * place at the next start, and the client, told to retry, may store it
 * twice rather than lose it.
 */
static void
store_deliver_place(struct store_ujob *uj)
{
	struct store_user *u = uj->user;
	char *newdir = xasprintf("%s/new", u->dir);
	struct store_item *it;
	uint64_t now;
	int moved = 0;

	TAILQ_FOREACH(it, &uj->commit, link) {
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
	/* In file mode this is when the push latency starts (syncfs: later). */
	now = hist_now_ns();
	TAILQ_FOREACH(it, &uj->commit, link)
		it->durable_ns = now;
	if (moved > 0 && uj->store->fsync_mode == STORE_FSYNC_FILE) {
		store_deliver_announce_early(uj);
		if (store_maildir_fsync_dir(newdir) < 0) {
			log_error("event=deliver user=%s op=fsync "
			          "error=\"%s\"",
			    u->name, strerror(errno));
			TAILQ_FOREACH(it, &uj->commit, link)
				if (it->committed)
					it->status = STORE_ERR_IO;
		}
	}
	free(newdir);
}

static void store_deliver_handover_done(void *arg);

/*
 * Worker: hands uj's committed items to the loop now (their 250 and push
 * need nothing more) rather than when the job ends.
 */
static void
store_deliver_hand_over(struct store_ujob *uj)
{
	struct store_handover *h = xmalloc(sizeof(*h));

	h->store = uj->store;
	TAILQ_INIT(&h->items);
	TAILQ_CONCAT(&h->items, &uj->commit, link);
	worker_pool_post(uj->store->io, store_deliver_handover_done, h);
}

/*
 * Worker, step (a): unlinks the files of refused items, then commits the
 * rest and renames them into new/. Failed rows leave nothing behind.
 */
static void
store_deliver_commit(struct store_ujob *uj)
{
	struct store_item *it;
	int any = 0;

	TAILQ_FOREACH(it, &uj->commit, link) {
		if (it->op == STORE_OP_ABORT && it->staged)
			store_deliver_unstage(it);
		any |= it->op == STORE_OP_COMMIT;
	}
	if (!any)
		return;
	if (store_deliver_rows(uj) == 0) {
		struct store_watch_keep keep = {0};

		/* Our renames leave new/ as the last scan knew it, plus ours. */
		if (uj->user->db != NULL)
			store_watch_keep_begin(&keep, uj->user->db,
			    uj->mailbox_id, uj->user->dir,
			    STORE_WATCH_KEEP_NEW);
		store_deliver_place(uj);
		store_deliver_hand_over(uj);
		if (store_watch_keep_end(&keep, uj->user->db) < 0)
			store_index_close(&uj->user->db);
		return;
	}
	TAILQ_FOREACH(it, &uj->commit, link) {
		if (it->op != STORE_OP_COMMIT)
			continue;
		store_deliver_unstage(it);
		it->status = STORE_ERR_IO;
	}
}

/* Worker, step (b): stages each arrived item, counting the quota. */
static void
store_deliver_stage(struct store_ujob *uj)
{
	struct store_item *it;
	uint64_t usage = 0;

	if (uj->user->db == NULL ||
	    store_index_usage(uj->user->db, &usage) < 0) {
		TAILQ_FOREACH(it, &uj->stage, link)
			it->status = STORE_ERR_IO;
		return;
	}
	usage += uj->usage_extra;
	TAILQ_FOREACH(it, &uj->stage, link)
		store_deliver_stage_one(uj->store, it, &usage);
}

/* Worker: direct items (store_deliver_is_direct()) go on to commit. */
static void
store_deliver_take_direct(struct store_ujob *uj)
{
	struct store_item *it, *next;

	for (it = TAILQ_FIRST(&uj->stage); it != NULL; it = next) {
		next = TAILQ_NEXT(it, link);
		if (!it->staged || !store_deliver_is_direct(uj->store, it))
			continue;
		TAILQ_REMOVE(&uj->stage, it, link);
		it->op = STORE_OP_COMMIT;
		it->direct = 1;
		TAILQ_INSERT_TAIL(&uj->commit, it, link);
	}
}

/* Worker: opens the user's index if needed and finds INBOX. */
static int
store_deliver_open(struct store_ujob *uj)
{
	struct store_user *u = uj->user;
	struct store_mailbox mb = {0};

	if ((u->db == NULL && store_user_open(u->dir, &u->db) < 0) ||
	    store_index_mailbox_find(u->db, "INBOX", &mb) < 0) {
		store_index_mailbox_deinit(&mb);
		return -1;
	}
	uj->mailbox_id = mb.id;
	uj->uidvalidity = mb.uidvalidity;
	store_index_mailbox_deinit(&mb);
	return 0;
}

/*
 * Worker: the one job for uj->user; it either commits settled items or
 * stages new ones (committing those that need not wait for settling).
 */
static void
store_deliver_ujob_run(void *arg)
{
	struct store_ujob *uj = arg;
	struct store_item *it;

	/* Parsed whatever happens: other users' jobs commit from it. */
	TAILQ_FOREACH(it, &uj->stage, link)
		if (it->parse)
			mime_parse(it->job->d->data, it->job->d->len,
			    &it->job->mime);
	if (store_deliver_open(uj) == 0) {
		if (!TAILQ_EMPTY(&uj->stage)) {
			store_deliver_stage(uj);
			store_deliver_take_direct(uj);
		}
		store_deliver_commit(uj);
		store_index_idle(uj->user->db);
	} else {
		TAILQ_FOREACH(it, &uj->commit, link) {
			if (it->staged)
				store_deliver_unstage(it);
			it->status = STORE_ERR_IO;
		}
		TAILQ_FOREACH(it, &uj->stage, link)
			it->status = STORE_ERR_IO;
	}
	/*
	 * The evicted handle is closed last: its close checkpoints the WAL
	 * (a sync), which no delivery should wait for.
	 */
	store_index_close(&uj->close_db);
}

/* One barrier in flight, and when its syncfs(2) returned. */
struct store_barrier {
	struct store *store;
	uint64_t done_ns;
};

/* Worker: the barrier, one syncfs(2) of the store's file system. */
static void
store_deliver_barrier_run(void *arg)
{
	struct store_barrier *b = arg;
	struct store *store = b->store;
	int err = store->barrier_fail;

	if (err == 0 && syncfs(store->root_fd) < 0)
		err = errno;
	b->done_ns = hist_now_ns();
	if (err != 0)
		log_error("event=deliver op=syncfs barrier=%llu error=\"%s\"",
		    (unsigned long long)store->barrier_running, strerror(err));
	store->barrier_err = err;
}

/* Loop thread: runs store_deliver_kick_cb() at the end of this turn. */
static void
store_deliver_schedule(struct store *store)
{
	event_active(store->kick, EV_TIMEOUT, 0);
}

static void
store_deliver_retry(evutil_socket_t fd, short what, void *arg)
{
	struct store_retry *r = arg;
	struct timeval later = {0, 1000};

	if (worker_pool_submit(r->store->io, r->run, r->done, r->arg) == 0)
		free(r);
	else
		event_base_once(r->store->base, -1, EV_TIMEOUT,
		    store_deliver_retry, r, &later);
}

/*
 * Queues a job on the I/O pool. A refused job is retried shortly: failing
 * it instead would leave staged files behind or lie about rows.
 */
void
store_deliver_submit(struct store *store, worker_run_cb run,
    worker_done_cb done, void *arg)
{
	struct store_retry *r;
	struct timeval later = {0, 1000};

	if (worker_pool_submit(store->io, run, done, arg) == 0)
		return;
	log_error("event=deliver error=\"worker queue full\" action=retry");
	r = xcalloc(1, sizeof(*r));
	r->store = store;
	r->run = run;
	r->done = done;
	r->arg = arg;
	event_base_once(store->base, -1, EV_TIMEOUT, store_deliver_retry, r,
	    &later);
}

/*
 * Queues a delivery job ahead of IMAP tasks and view loads, so a storm of
 * SELECTs never stands between a message and its 250 and push.
 */
static void
store_deliver_submit_first(struct store *store, worker_run_cb run,
    worker_done_cb done, void *arg)
{
	if (worker_pool_submit_first(store->io, run, done, arg) < 0)
		store_deliver_submit(store, run, done, arg);
}

/* Loop thread: u has work; its job starts at the end of this turn. */
void
store_deliver_user_ready(struct store *store, struct store_user *u)
{
	if (u->busy || u->ready || u->hwait)
		return;
	u->ready = 1;
	TAILQ_INSERT_TAIL(&store->ready, u, ready_link);
	store_deliver_schedule(store);
}

static void
store_deliver_queue(struct store_item *it, struct store_item_list *list)
{
	TAILQ_INSERT_TAIL(list, it, link);
	store_deliver_user_ready(it->job->store, it->user);
}

static void
store_deliver_announce(struct store *store, struct store_item *it)
{
	struct store_change c = store_deliver_change(it);

	store_deliver_publish(store, &c);
}

/* Loop thread: the pushes of store_deliver_announce_early(). */
static void
store_deliver_early_done(void *arg)
{
	struct store_early *e = arg;

	for (size_t i = 0; i < e->n; i++)
		store_deliver_publish(e->store, &e->c[i]);
	free(e);
}

/*
 * Loop thread: reports a delivery whose items are all final (each stored
 * one was announced when it became durable) and frees what the store added.
 */
static void
store_deliver_done(struct store_djob *job)
{
	struct store_delivery *d = job->d;
	struct store *store = job->store;

	for (size_t i = 0; i < d->nrcpts; i++) {
		struct store_item *it = &job->items[i];

		d->rcpts[i].status = it->status;
		d->rcpts[i].uid = it->status == STORE_OK ? it->uid : 0;
		if (it->fd >= 0) /* not reached: synced or unstaged before */
			close(it->fd);
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

/* Loop thread: n more items of job are final. */
static void
store_deliver_final(struct store_djob *job, size_t n)
{
	job->left -= n;
	if (job->left == 0)
		store_deliver_done(job);
}

/*
 * Loop thread, once every item of a delivery is durably staged or failed:
 * with all_or_none and any recipient failed, every recipient gets the first
 * error. Items to commit and staged files to remove go to their users.
 */
static void
store_deliver_settle(struct store_djob *job)
{
	enum store_status first = STORE_OK;
	size_t n = job->d->nrcpts, nfinal = 0;

	for (size_t i = 0; i < n && first == STORE_OK; i++)
		first = job->items[i].status;
	for (size_t i = 0; i < n; i++) {
		struct store_item *it = &job->items[i];

		if (it->user == NULL)
			continue;
		if (job->d->all_or_none && first != STORE_OK)
			it->status = first;
		it->op =
		    it->status == STORE_OK ? STORE_OP_COMMIT : STORE_OP_ABORT;
		if (it->op == STORE_OP_COMMIT || it->staged)
			store_deliver_queue(it, &it->user->commit);
		else
			nfinal++;
	}
	store_deliver_final(job, nfinal);
}

static void
store_deliver_stage_settled(struct store_item *it)
{
	if (--it->job->unsettled == 0)
		store_deliver_settle(it->job);
}

/* Loop thread: its last step waits for the next barrier to start. */
static void
store_deliver_wait(struct store *store, struct store_item *it,
    enum store_step step)
{
	it->step = step;
	it->need = store->barrier_next;
	store->barrier_roles |= 1u << (step - 1);
	TAILQ_INSERT_TAIL(&store->waiters, it, link);
	store_deliver_schedule(store);
}

/*
 * Loop thread: its barrier completed with err (0 or an errno). A file
 * not made durable fails and is removed by its user's next job; a row and
 * rename not made durable fail with the row left for store_recover().
 */
static void
store_deliver_covered(struct store_item *it, int err)
{
	if (it->step == STORE_STEP_STAGED) {
		if (err != 0)
			it->status = store_maildir_errno_status(err);
		store_deliver_stage_settled(it);
		return;
	}
	if (err != 0)
		it->status = STORE_ERR_IO;
	/*
	 * Announced as soon as it is durable, not when its whole delivery is:
	 * waiters leave in commit order, so each mailbox hears of its new
	 * UIDs in ascending order, as IMAP needs (RFC 3501 section 2.3.1.1).
	 */
	if (it->status == STORE_OK)
		store_deliver_announce(it->job->store, it);
	store_deliver_final(it->job, 1);
}

static void
store_deliver_barrier_done(void *arg)
{
	struct store_barrier *b = arg;
	struct store *store = b->store;
	uint64_t id = store->barrier_running;
	int err = store->barrier_err;
	struct store_item *it;

	store->barrier_running = 0;
	while ((it = TAILQ_FIRST(&store->waiters)) != NULL && it->need <= id) {
		TAILQ_REMOVE(&store->waiters, it, link);
		it->durable_ns = b->done_ns;
		store_deliver_covered(it, err);
	}
	free(b);
	store_deliver_schedule(store);
}

/*
 * Loop thread: starts the next barrier when none runs and items wait for
 * one. Everything waiting then finished its step before it started.
 */
static void
store_deliver_barrier_start(struct store *store)
{
	unsigned roles = store->barrier_roles;
	struct store_barrier *b;

	if (store->barrier_running != 0 || TAILQ_EMPTY(&store->waiters))
		return;
	store->barrier_running = store->barrier_next++;
	store->barrier_roles = 0;
	store->barrier_err = 0;
	store->barrier_fail = 0;
	for (int i = 0; i < 2 && store->barrier_fail == 0; i++)
		if (roles & (1u << i))
			store->barrier_fail = store->fail_barrier[i];
	store->barriers++;
	b = xcalloc(1, sizeof(*b));
	b->store = store;
	store_deliver_submit_first(store, store_deliver_barrier_run,
	    store_deliver_barrier_done, b);
}

/* Loop thread: an item leaves step (a) of a user job. */
static void
store_deliver_committed(struct store *store, struct store_item *it)
{
	struct store_user *u = it->user;

	/* A direct item was never counted as staged, nor settled. */
	if (it->direct)
		it->job->unsettled--;
	else
		u->staged_bytes -= it->size;
	if (it->committed && store->fsync_mode == STORE_FSYNC_SYNCFS) {
		store_deliver_wait(store, it, STORE_STEP_COMMITTED);
		return;
	}
	/* File mode: store_deliver_place() announced it already. */
	store_deliver_final(it->job, 1);
}

/* Loop thread: an item leaves step (b) of a user job. */
static void
store_deliver_staged(struct store *store, struct store_item *it)
{
	if (it->staged && store->fsync_mode == STORE_FSYNC_SYNCFS)
		store_deliver_wait(store, it, STORE_STEP_STAGED);
	else
		store_deliver_stage_settled(it);
}

/* Loop thread: a user job is over; its items move on. */
static void
store_deliver_ujob_done(void *arg)
{
	struct store_ujob *uj = arg;
	struct store *store = uj->store;
	struct store_user *u = uj->user;
	struct store_item *it;

	u->busy = 0;
	store->inflight--;
	store_user_handle_failed(store, u);
	if (uj->close_user != NULL)
		store_user_closed(store, uj->close_user);
	while ((it = TAILQ_FIRST(&uj->commit)) != NULL) {
		TAILQ_REMOVE(&uj->commit, it, link);
		store_deliver_committed(store, it);
	}
	while ((it = TAILQ_FIRST(&uj->stage)) != NULL) {
		TAILQ_REMOVE(&uj->stage, it, link);
		if (it->staged)
			u->staged_bytes += it->size;
		store_deliver_staged(store, it);
	}
	free(uj);
	/* Waiting user tasks go first, then the deliveries that came. */
	store_task_resume(store, u);
	if (!TAILQ_EMPTY(&u->stage) || !TAILQ_EMPTY(&u->commit))
		store_deliver_user_ready(store, u);
	store_handle_wake(store);
}

/* Loop thread: the items a job handed over before it ended. */
static void
store_deliver_handover_done(void *arg)
{
	struct store_handover *h = arg;
	struct store_item *it;

	while ((it = TAILQ_FIRST(&h->items)) != NULL) {
		TAILQ_REMOVE(&h->items, it, link);
		store_deliver_committed(h->store, it);
	}
	free(h);
}

/*
 * Loop thread: hands u's settled items, or else its new ones, to one job
 * (so a commit never waits for another message's staging). u is busy
 * until the job is done, so its handle is neither evicted nor shared.
 */
void
store_deliver_ujob_start(struct store *store, struct store_user *u)
{
	struct store_ujob *uj;
	struct store_item *it;
	struct store_user *victim_user;
	sqlite3 *victim;

	if (u->busy || (TAILQ_EMPTY(&u->stage) && TAILQ_EMPTY(&u->commit)))
		return;
	if (store_user_take_handle(store, u, &victim, &victim_user) < 0) {
		/* Deliveries wait ahead of user tasks. */
		if (u->hwait) {
			TAILQ_REMOVE(&store->hwait, u, ready_link);
			TAILQ_INSERT_HEAD(&store->hwait, u, ready_link);
		}
		return;
	}
	uj = xcalloc(1, sizeof(*uj));
	uj->store = store;
	uj->user = u;
	TAILQ_INIT(&uj->commit);
	TAILQ_INIT(&uj->stage);
	if (!TAILQ_EMPTY(&u->commit))
		TAILQ_CONCAT(&uj->commit, &u->commit, link);
	else
		TAILQ_CONCAT(&uj->stage, &u->stage, link);
	/* Every item to commit or abort was staged; the rest count too. */
	uj->usage_extra = u->staged_bytes;
	TAILQ_FOREACH(it, &uj->commit, link)
		uj->usage_extra -= it->size;
	u->busy = 1;
	/* Its items may be done before it is (store_deliver_hand_over). */
	store->inflight++;
	uj->close_db = victim;
	uj->close_user = victim_user;
	store_deliver_submit_first(store, store_deliver_ujob_run,
	    store_deliver_ujob_done, uj);
}

/*
 * Loop thread, at the end of a turn in which work arrived or finished:
 * starts the barrier first (so it queues ahead), then the user jobs, then
 * completes deliveries that had no user to work for.
 */
static void
store_deliver_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *store = arg;
	struct store_user *u;
	struct store_djob *job;

	store_deliver_barrier_start(store);
	while ((u = TAILQ_FIRST(&store->ready)) != NULL) {
		TAILQ_REMOVE(&store->ready, u, ready_link);
		u->ready = 0;
		store_deliver_ujob_start(store, u);
	}
	while ((job = TAILQ_FIRST(&store->idle)) != NULL) {
		TAILQ_REMOVE(&store->idle, job, link);
		store_deliver_done(job);
	}
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
	it->fd = -1;
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
	int parse = 1;

	if (store->kick == NULL &&
	    (store->kick = event_new(store->base, -1, 0, store_deliver_kick_cb,
	         store)) == NULL)
		log_fatal("event=deliver error=\"event_new failed\"");
	job->store = store;
	job->d = d;
	job->items = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(*job->items));
	mime_info_deinit(&job->mime);
	store->inflight++;
	for (size_t i = 0; i < d->nrcpts; i++) {
		struct store_item *it = &job->items[i];

		store_deliver_item_init(job, i);
		if (it->user == NULL)
			continue;
		it->parse = parse;
		parse = 0;
		job->unsettled++;
		job->left++;
		store_deliver_queue(it, &it->user->stage);
	}
	if (job->left == 0) {
		TAILQ_INSERT_TAIL(&store->idle, job, link);
		store_deliver_schedule(store);
	}
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
