/*
 * The store object: the table of users known to this process, the bounded
 * LRU cache of their open SQLite handles, the queue of user tasks that share
 * a user's handle with delivery jobs, user creation with the RFC 6154
 * special-use mailboxes, and the synchronous read helpers for tools.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_watch.h"

static const struct {
	const char *name;
	const char *special_use;
} store_default_mailboxes[] = {
    {"INBOX", NULL},
    {"Sent", "\\Sent"},
    {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"},
    {"Junk", "\\Junk"},
    {"Archive", "\\Archive"},
};

static void
store_host_init(struct store *store)
{
	char host[64];
	size_t o = 0;

	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* '/', ':' and ',' would break the file name; write them in octal. */
	for (const char *p = host; *p != '\0'; p++) {
		if (*p == '/' || *p == ':' || *p == ',')
			o += (size_t)snprintf(store->host + o,
			    sizeof(store->host) - o, "\\%03o",
			    (unsigned char)*p);
		else
			store->host[o++] = *p;
	}
	store->host[o] = '\0';
}

/*
 * A thirty-second of the descriptors for index handles: enough to keep the
 * active users open, and the rest for client connections.
 */
static size_t
store_handles_budget(void)
{
	struct rlimit rl;
	size_t n = STORE_HANDLES_MIN;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = (size_t)rl.rlim_cur / 32;
	if (n < STORE_HANDLES_MIN)
		n = STORE_HANDLES_MIN;
	if (n > STORE_HANDLES_MAX)
		n = STORE_HANDLES_MAX;
	return n;
}

static uint64_t
store_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A handle the sweep took from its user, closed on a worker. */
struct store_sweep_job {
	struct store *store;
	struct store_user *user;
	sqlite3 *db;
};

/* Worker: closes the handle (the last close may checkpoint the WAL). */
static void
store_sweep_close(void *arg)
{
	struct store_sweep_job *j = arg;

	store_index_close(&j->db);
}

static void
store_sweep_closed(void *arg)
{
	struct store_sweep_job *j = arg;

	j->store->inflight--;
	store_user_closed(j->store, j->user);
	free(j);
}

/*
 * Gives the memory freed since the last sweep (closed handles, hibernated
 * views) back to the system: glibc keeps freed heap pages otherwise, and
 * idle sessions are to cost what they hold, not what they once held. It
 * waits until the I/O threads have ended (worker.c): a live thread's malloc
 * cache pins pages that no trim can release.
 */
static void
store_sweep_trim(struct store *store)
{
	uint64_t t0;

	if (!store->trim_due || store->inflight > 0 ||
	    worker_pool_threads(store->io) > 0)
		return;
	store->trim_due = 0;
	t0 = store_now_us();
	malloc_trim(0);
	log_debug("event=store op=trim us=%llu",
	    (unsigned long long)(store_now_us() - t0));
}

/*
 * Loop thread, every STORE_HANDLE_IDLE / 2 seconds: the handles of users
 * that ran nothing for STORE_HANDLE_IDLE seconds are closed, so thousands
 * of users whose sessions idle hold no index handle, page cache or
 * descriptor (DESIGN.md, "What an idle session costs").
 */
static void
store_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct store *store = arg;
	time_t now = time(NULL);
	struct store_user *u, *prev;

	store_sweep_trim(store);
	for (u = TAILQ_LAST(&store->lru, store_user_list); u != NULL;
	     u = prev) {
		struct store_sweep_job *j;

		prev = TAILQ_PREV(u, store_user_list, lru);
		if (now - u->used < STORE_HANDLE_IDLE)
			break;
		if (u->busy || u->db == NULL)
			continue;
		j = xcalloc(1, sizeof(*j));
		j->store = store;
		j->user = u;
		j->db = u->db;
		u->db = NULL;
		u->closing = 1;
		TAILQ_REMOVE(&store->lru, u, lru);
		u->in_lru = 0;
		store->nopen--;
		store->inflight++;
		store->trim_due = 1;
		store_deliver_submit(store, store_sweep_close,
		    store_sweep_closed, j);
	}
}

size_t
store_release_handles(struct store *store)
{
	struct store_user *u, *prev;
	size_t busy = 0;

	for (u = TAILQ_LAST(&store->lru, store_user_list); u != NULL;
	     u = prev) {
		prev = TAILQ_PREV(u, store_user_list, lru);
		if (u->busy)
			busy++;
		if (u->busy || u->db == NULL)
			continue;
		store_index_close(&u->db);
		TAILQ_REMOVE(&store->lru, u, lru);
		u->in_lru = 0;
		store->nopen--;
	}
	store_handle_wake(store);
	return busy;
}

struct store *
store_new(struct event_base *base, struct worker_pool *io, const char *dir,
    char *err, size_t errlen)
{
	struct store *store;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return NULL;
	}
	if (access(dir, R_OK | W_OK | X_OK) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	store = xcalloc(1, sizeof(*store));
	store->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->root_fd < 0) {
		snprintf(err, errlen, "open %s: %s", dir, strerror(errno));
		free(store);
		return NULL;
	}
	store->base = base;
	store->io = io;
	store->dir = xstrdup(dir);
	store->fsync_mode = STORE_FSYNC_FILE;
	store->handles_max = store_handles_budget();
	TAILQ_INIT(&store->lru);
	TAILQ_INIT(&store->idle);
	TAILQ_INIT(&store->ready);
	TAILQ_INIT(&store->hwait);
	TAILQ_INIT(&store->waiters);
	TAILQ_INIT(&store->view_lru);
	store->barrier_next = 1;
	store_host_init(store);
	store->sweep = event_new(base, -1, EV_PERSIST, store_sweep, store);
	if (store->sweep == NULL ||
	    event_add(store->sweep,
	        &(struct timeval){STORE_HANDLE_IDLE / 2, 0}) < 0)
		log_fatal("event=store error=\"cannot arm the handle sweep\"");
	return store;
}

size_t
store_fd_reserve(const struct store *store)
{
	/* An index handle is two (database, WAL). */
	return store->handles_max * 2 + STORE_FD_SPARE;
}

void
store_free(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	while (store->inflight > 0)
		event_base_loop(store->base, EVLOOP_ONCE);
	if (store->kick != NULL)
		event_free(store->kick);
	event_free(store->sweep);
	store_view_free_all(store);
	store_watch_shutdown(store);
	for (size_t i = 0; i < STORE_USER_BUCKETS; i++) {
		struct store_user *u, *next;

		for (u = store->users[i]; u != NULL; u = next) {
			next = u->next;
			store_index_close(&u->db);
			free(u);
		}
	}
	close(store->root_fd);
	free(store->fail_user);
	free(store->dir);
	free(store);
	*storep = NULL;
}

void
store_set_fsync_mode(struct store *store, enum store_fsync_mode mode)
{
	store->fsync_mode = mode;
}

int
store_fsync_mode_parse(const char *s, enum store_fsync_mode *out)
{
	if (strcmp(s, "syncfs") == 0)
		*out = STORE_FSYNC_SYNCFS;
	else if (strcmp(s, "file") == 0)
		*out = STORE_FSYNC_FILE;
	else
		return -1;
	return 0;
}

void
store_set_change_cb(struct store *store, store_change_cb cb, void *arg)
{
	store->change_cb = cb;
	store->change_arg = arg;
}

static size_t
store_user_hash(const char *name)
{
	size_t h = 5381;

	for (const char *p = name; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % STORE_USER_BUCKETS;
}

/*
 * Finds or adds the entry for user name (loop thread). Returns NULL when
 * the name is not a valid user name.
 */
struct store_user *
store_user_get(struct store *store, const char *name)
{
	size_t h = store_user_hash(name);
	struct store_user *u;

	for (u = store->users[h]; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	if (!store_maildir_user_ok(name))
		return NULL;
	/* One allocation: the struct, then "<store dir>/<name>". */
	u = xcalloc(1, sizeof(*u) + strlen(store->dir) + 1 + strlen(name) + 1);
	u->dir = (char *)(u + 1);
	sprintf(u->dir, "%s/%s", store->dir, name);
	u->name = u->dir + strlen(store->dir) + 1;
	TAILQ_INIT(&u->stage);
	TAILQ_INIT(&u->commit);
	TAILQ_INIT(&u->tasks);
	u->next = store->users[h];
	store->users[h] = u;
	return u;
}

/* Finds the entry for user name without adding one; NULL if unknown. */
struct store_user *
store_user_find(struct store *store, const char *name)
{
	struct store_user *u;

	for (u = store->users[store_user_hash(name)]; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	return NULL;
}

/* Worker: opens the user's handle when needed and runs the task. */
static void
store_task_run(void *arg)
{
	struct store_task *t = arg;
	struct store_user *u = t->user;

	if (u->db == NULL && store_user_open(u->dir, &u->db) < 0)
		u->db = NULL;
	t->run(t, u->db);
	store_index_idle(u->db);
	/* Last, as in store_deliver_ujob_run(): a close may sync. */
	store_index_close(&t->close_db);
}

/*
 * Loop thread: the task is over. Waiting deliveries go next, so a stream
 * of tasks never holds a delivery back; otherwise the next task starts.
 */
static void
store_task_done(void *arg)
{
	struct store_task *t = arg;
	struct store *store = t->store;
	struct store_user *u = t->user;

	u->busy = 0;
	store_user_handle_failed(store, u);
	store->inflight--;
	if (t->close_user != NULL)
		store_user_closed(store, t->close_user);
	t->done(t);
	if (!TAILQ_EMPTY(&u->stage) || !TAILQ_EMPTY(&u->commit))
		store_deliver_user_ready(store, u);
	else
		store_task_resume(store, u);
	store_handle_wake(store);
}

/* Loop thread: starts u's next task when u is free and one waits. */
void
store_task_resume(struct store *store, struct store_user *u)
{
	struct store_task *t = TAILQ_FIRST(&u->tasks);

	struct store_user *victim_user;
	sqlite3 *victim;

	if (u->busy || t == NULL ||
	    store_user_take_handle(store, u, &victim, &victim_user) < 0)
		return;
	TAILQ_REMOVE(&u->tasks, t, link);
	u->busy = 1;
	t->close_db = victim;
	t->close_user = victim_user;
	store_deliver_submit(store, store_task_run, store_task_done, t);
}

static void
store_task_refused(evutil_socket_t fd, short what, void *arg)
{
	struct store_task *t = arg;

	t->done(t);
}

/*
 * Loop thread: queues task t (run and done set by the caller) for user.
 * Tasks and delivery jobs of one user run one at a time: each owns the
 * user's cached handle while it runs (u->busy), so no user ever holds two
 * handles and a reader never waits on SQLite's lock. t->done runs on the
 * loop thread, never before this returns; store_free() waits for it. For
 * an invalid user name t->run never runs and t->done runs on the next
 * loop turn (the caller's state still says "failed").
 */
void
store_task_submit(struct store *store, const char *user, struct store_task *t)
{
	struct timeval now = {0, 0};

	t->store = store;
	t->user = store_user_get(store, user);
	if (t->user == NULL) {
		if (event_base_once(store->base, -1, EV_TIMEOUT,
		        store_task_refused, t, &now) < 0)
			log_fatal(
			    "event=store error=\"event_base_once failed\"");
		return;
	}
	store->inflight++;
	TAILQ_INSERT_TAIL(&t->user->tasks, t, link);
	store_task_resume(store, t->user);
}

/* The least recently used cached user whose handle no job holds, or NULL. */
static struct store_user *
store_handle_victim(struct store *store)
{
	struct store_user *v;

	TAILQ_FOREACH_REVERSE(v, &store->lru, store_user_list, lru)
		if (!v->busy && v->db != NULL)
			return v;
	return NULL;
}

/*
 * Loop thread, before a job takes user u: gives u a place in the handle
 * cache. When the cache is full, u takes the place of the least recently
 * used idle user, whose handle comes back in *victim for the job to close
 * on its worker once its own work is done (a close may checkpoint the WAL,
 * a sync): while it runs, a job may hold one handle beyond the budget. When
 * every cached user is busy, u waits on store->hwait until a job ends
 * (store_handle_wake()), so a storm of logins never opens more than handles_max
 * handles: each costs two descriptors. The victim is marked closing until that
 * job is done (store_user_closed()): its index stays locked until the close, so
 * it starts no job of its own before. Returns 0, or -1 when u waits.
 */
int
store_user_take_handle(struct store *store, struct store_user *u,
    sqlite3 **victim, struct store_user **victim_user)
{
	struct store_user *v;

	*victim = NULL;
	*victim_user = NULL;
	if (u->hwait || u->closing)
		return -1;
	if (!u->in_lru) {
		if (store->nopen >= store->handles_max) {
			if ((v = store_handle_victim(store)) == NULL) {
				u->hwait = 1;
				TAILQ_INSERT_TAIL(&store->hwait, u, ready_link);
				return -1;
			}
			*victim = v->db;
			*victim_user = v;
			v->db = NULL;
			v->closing = 1;
			TAILQ_REMOVE(&store->lru, v, lru);
			v->in_lru = 0;
			store->nopen--;
		}
		TAILQ_INSERT_HEAD(&store->lru, u, lru);
		u->in_lru = 1;
		store->nopen++;
	} else {
		TAILQ_REMOVE(&store->lru, u, lru);
		TAILQ_INSERT_HEAD(&store->lru, u, lru);
	}
	u->used = time(NULL);
	return 0;
}

/*
 * Loop thread: u's evicted handle is closed; the work u was given meanwhile
 * starts (deliveries first).
 */
void
store_user_closed(struct store *store, struct store_user *u)
{
	u->closing = 0;
	if (!TAILQ_EMPTY(&u->stage) || !TAILQ_EMPTY(&u->commit))
		store_deliver_user_ready(store, u);
	else
		store_task_resume(store, u);
}

/*
 * Loop thread, when a job has ended or handles were closed: starts the
 * waiting users' work, first come first served, while places are free.
 */
void
store_handle_wake(struct store *store)
{
	struct store_user *u;

	while ((u = TAILQ_FIRST(&store->hwait)) != NULL) {
		if (store->nopen >= store->handles_max &&
		    store_handle_victim(store) == NULL)
			return;
		TAILQ_REMOVE(&store->hwait, u, ready_link);
		u->hwait = 0;
		if (!TAILQ_EMPTY(&u->stage) || !TAILQ_EMPTY(&u->commit))
			store_deliver_ujob_start(store, u);
		else
			store_task_resume(store, u);
	}
}

/* After a job on u: forgets u's cache slot if its handle failed to open. */
void
store_user_handle_failed(struct store *store, struct store_user *u)
{
	if (u->db != NULL || !u->in_lru)
		return;
	TAILQ_REMOVE(&store->lru, u, lru);
	u->in_lru = 0;
	store->nopen--;
}

/* Creates the default mailboxes when the index has no INBOX yet. */
static int
store_user_defaults(sqlite3 *db, const char *userdir)
{
	struct store_mailbox mb;

	if (store_index_mailbox_find(db, "INBOX", &mb) == 0) {
		store_index_mailbox_deinit(&mb);
		return 0;
	}
	if (store_index_begin(db) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(store_default_mailboxes) /
	         sizeof(store_default_mailboxes[0]);
	     i++) {
		if (store_index_mailbox_create(db, userdir,
		        store_default_mailboxes[i].name,
		        store_default_mailboxes[i].special_use) < 0) {
			store_index_rollback(db);
			return -1;
		}
	}
	return store_index_commit(db);
}

/*
 * Opens user's index in userdir, creating the directory, the index and
 * the default mailboxes as needed. Any thread; 0 or -1 (logged).
 */
int
store_user_open(const char *userdir, sqlite3 **out)
{
	sqlite3 *db;

	if (mkdir(userdir, 0700) < 0 && errno != EEXIST) {
		log_error("event=store op=mkdir dir=%s error=\"%s\"", userdir,
		    strerror(errno));
		return -1;
	}
	if (store_index_open(userdir, &db) < 0)
		return -1;
	if (store_user_defaults(db, userdir) < 0) {
		store_index_close(&db);
		return -1;
	}
	*out = db;
	return 0;
}

int
store_user_create(struct store *store, const char *user, char *err,
    size_t errlen)
{
	char *userdir;
	sqlite3 *db;
	int r;

	if (!store_maildir_user_ok(user)) {
		snprintf(err, errlen, "invalid user name");
		return -1;
	}
	userdir = xasprintf("%s/%s", store->dir, user);
	r = store_user_open(userdir, &db);
	if (r == 0)
		store_index_close(&db);
	else
		snprintf(err, errlen, "cannot create the store of user %s",
		    user);
	free(userdir);
	return r;
}

static int
store_status_read(sqlite3 *db, const char *mailbox,
    struct store_mailbox_status *out)
{
	sqlite3_stmt *st;
	int r = -1;

	if (sqlite3_prepare_v2(db,
	        "SELECT id, uidvalidity, uidnext, highestmodseq, messages,"
	        " unseen, bytes FROM mailbox WHERE name = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		out->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		out->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		out->messages = (uint32_t)sqlite3_column_int64(st, 4);
		out->unseen = (uint32_t)sqlite3_column_int64(st, 5);
		out->bytes = (uint64_t)sqlite3_column_int64(st, 6);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int
store_mailbox_status(struct store *store, const char *user, const char *mailbox,
    struct store_mailbox_status *out)
{
	struct store_user *u;
	char *userdir, *path;
	sqlite3 *db = NULL;
	int r = -1;

	if (!store_maildir_user_ok(user))
		return -1;
	/* The user's jobs end first: their handle locks the index. */
	while ((u = store_user_find(store, user)) != NULL &&
	    (u->busy || !TAILQ_EMPTY(&u->tasks)))
		event_base_loop(store->base, EVLOOP_ONCE);
	store_release_handles(store);
	userdir = xasprintf("%s/%s", store->dir, user);
	path = xasprintf("%s/" STORE_INDEX_FILE, userdir);
	if (access(path, F_OK) == 0 && store_index_open(userdir, &db) == 0) {
		r = store_status_read(db,
		    strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox, out);
		store_index_close(&db);
	}
	free(path);
	free(userdir);
	return r;
}

uint64_t
store_commit_count(struct store *store)
{
	return atomic_load(&store->commits);
}

uint64_t
store_barrier_count(struct store *store)
{
	return store->barriers;
}

void
store_test_fail_barrier(struct store *store, int barrier, int err)
{
	if (barrier == 1 || barrier == 2)
		store->fail_barrier[barrier - 1] = err;
}

void
store_test_fail_writes(struct store *store, const char *user, int err)
{
	free(store->fail_user);
	store->fail_user = user != NULL && err != 0 ? xstrdup(user) : NULL;
	store->fail_errno = err;
}
