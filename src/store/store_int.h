/*
 * Internal interfaces of the store layer, shared by its files: the user
 * table and handle cache (store.c), Maildir file and folder names
 * (store_maildir.c), the SQLite index (store_index.c), the delivery
 * pipeline (store_deliver.c) and the shared mailbox views (store_view.c).
 * Nothing outside src/store/ includes this.
 */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "mime/mime.h"
#include "net/worker.h"
#include "store/store.h"

#define STORE_INDEX_FILE "pushmail.sqlite"
#define STORE_UIDVALIDITY_FILE "pushmail-uidvalidity"
#define STORE_USER_MAX 128
/*
 * Open SQLite handles (two descriptors each) are bounded by a
 * share of the descriptor limit, between these two.
 */
#define STORE_HANDLES_MIN 16
#define STORE_HANDLES_MAX 1024
/* Seconds a handle may stay open unused before the sweep closes it. */
#define STORE_HANDLE_IDLE 30

/*
 * Descriptors for message files, folders, inotify and logs besides handles,
 * and for the evicted handle each running job closes at its end.
 */
#define STORE_FD_SPARE 256
#define STORE_USER_BUCKETS 256

struct store_item;
struct store_djob;
struct store_task;
struct store_view;
struct store_watch_set;
struct event;
TAILQ_HEAD(store_item_list, store_item);
TAILQ_HEAD(store_djob_list, store_djob);
TAILQ_HEAD(store_task_list, store_task);
TAILQ_HEAD(store_view_list, store_view);

/* Unreferenced loaded views kept current in memory, at most this many. */
#define STORE_VIEW_CACHE 32

/*
 * A user task: one read or write of the user's index other than delivery
 * (a view load, a \Recent claim, a listing). Tasks and delivery jobs of one
 * user run one at a time on the shared handle (see store_task_submit()).
 * Embed it in the caller's state; run and done get it back.
 */
typedef void (*store_task_run_cb)(struct store_task *t, sqlite3 *db);
typedef void (*store_task_done_cb)(struct store_task *t);

struct store_task {
	struct store *store;
	struct store_user *user;
	store_task_run_cb run;   /* worker; db is NULL when it cannot open */
	store_task_done_cb done; /* loop thread, afterwards */
	sqlite3 *close_db;       /* a handle evicted from the cache */
	struct store_user *close_user; /* whose it was */
	TAILQ_ENTRY(store_task) link;
};

/*
 * One user known to this process. The loop thread owns it, except that
 * while busy is set the one user job that runs for it (store_deliver.c) may
 * use db. Items wait on stage and commit until the next user job takes them.
 */
struct store_user {
	char *name; /* the end of dir */
	char *dir;  /* <store dir>/<name>, after the struct */
	sqlite3 *db;
	unsigned busy : 1;    /* a user job runs and owns db */
	unsigned ready : 1;   /* on store->ready */
	unsigned hwait : 1;   /* on store->hwait, by ready_link */
	unsigned closing : 1; /* another job is closing its evicted handle */
	unsigned in_lru : 1;
	struct store_item_list stage;  /* arrived items, to stage */
	struct store_item_list commit; /* settled items, to commit or abort */
	struct store_task_list tasks;  /* user tasks waiting for the handle */
	struct store_view *views;      /* views of this user's mailboxes */
	uint64_t staged_bytes;         /* staged in tmp/, not yet committed */
	TAILQ_ENTRY(store_user) ready_link;
	TAILQ_ENTRY(store_user) lru; /* users holding a handle, newest first */
	time_t used;                 /* when a job last took the handle */
	struct store_user *next;     /* hash chain */
};

TAILQ_HEAD(store_user_list, store_user);

struct store {
	struct event_base *base;
	struct worker_pool *io;
	char *dir;
	int root_fd; /* the store directory, for syncfs(2) */
	enum store_fsync_mode fsync_mode;
	store_change_cb change_cb;
	void *change_arg;
	struct store_user *users[STORE_USER_BUCKETS];
	struct store_user_list lru;
	size_t nopen;
	size_t handles_max;           /* from RLIMIT_NOFILE at store_new() */
	struct event *sweep;          /* closes handles left unused */
	int trim_due;                 /* memory was freed since the sweep */
	size_t inflight;              /* deliveries and jobs not yet done */
	struct store_djob_list idle;  /* deliveries with no user to work for */
	struct store_user_list ready; /* users with work and no job yet */
	struct store_user_list hwait; /* users waiting for a handle slot */
	struct event *kick;           /* end of turn: start jobs and barrier */
	struct store_item_list waiters; /* items waiting for a barrier */
	uint64_t barrier_next;          /* the id the next barrier gets */
	uint64_t barrier_running;       /* the id of the one in flight, or 0 */
	unsigned barrier_roles;         /* steps waiting for barrier_next */
	int barrier_fail;               /* errno the running one must fake */
	int barrier_err;                /* its result: 0 or an errno */
	char host[128];                 /* sanitised host name for file names */
	atomic_uint_fast64_t seq;
	atomic_uint_fast64_t commits;
	uint64_t barriers;
	struct store_view_list view_lru; /* unreferenced views, newest first */
	size_t nview_lru;
	struct store_watch_set *watches; /* inotify (store_watch.c) or NULL */
	/* Test hooks: tmp/ writes for fail_user fail with fail_errno; a
	 * barrier serving step i (1 staged, 2 committed) fails with
	 * fail_barrier[i - 1]. */
	char *fail_user;
	int fail_errno;
	int fail_barrier[2];
};

/* Per-message data the index stores, whoever adds the message. */
struct store_msg {
	int64_t mailbox_id;
	uint32_t uid;       /* set by store_index_message_add */
	uint64_t modseq;    /* set by store_index_message_add */
	const char *unique; /* file name up to ",U=" */
	char *file;         /* set by store_index_message_add */
	int in_cur;
	unsigned flags;
	uint64_t size;
	time_t internaldate;
	size_t prefix_len; /* bytes the store prepended to the message */
	const struct mime_info *mime;
};

struct store_mailbox {
	int64_t id;
	char *name;
	char *dir; /* relative to the user's directory; "" for INBOX */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
};

/* store.c */
struct store_user *store_user_get(struct store *store, const char *name);
struct store_user *store_user_find(struct store *store, const char *name);
void store_task_submit(struct store *store, const char *user,
    struct store_task *t);
void store_task_resume(struct store *store, struct store_user *u);
int store_user_take_handle(struct store *store, struct store_user *u,
    sqlite3 **victim, struct store_user **victim_user);
void store_user_closed(struct store *store, struct store_user *u);
void store_user_handle_failed(struct store *store, struct store_user *u);
void store_handle_wake(struct store *store);
int store_user_open(const char *userdir, sqlite3 **out);

/* store_maildir.c */
int store_maildir_user_ok(const char *user);
char *store_maildir_folder_dir(const char *mailbox);
char *store_maildir_folder_name(const char *dir);
int store_maildir_mkdirs(const char *path);
int store_maildir_fsync_dir(const char *path);
char *store_maildir_unique(struct store *store);
char *store_maildir_final(const char *unique, uint32_t uid, uint64_t size);
void store_maildir_flag_letters(unsigned flags, char out[8]);
unsigned store_maildir_flags_parse(const char *name);
char *store_maildir_prefix(const char *return_path, const char *delivered_to);
/*
 * Reads the whole file at path into a new NUL-terminated buffer (*data, the
 * caller frees it) of *len bytes. Returns 0, or -1 with errno.
 * TODO(fetch-range): FETCH of a part or partial of a large message still
 * reads it whole; read only the byte ranges the items need.
 */
int store_maildir_read(const char *path, char **data, size_t *len);

int store_maildir_write(const char *path, const char *prefix, const char *data,
    size_t len, int datasync);
/*
 * Like store_maildir_write() without the sync: starts the writeback and
 * returns the open descriptor, for an fdatasync(2) later (the caller closes
 * it), so the disk writes while the caller prepares the index rows.
 */
int store_maildir_write_start(const char *path, const char *prefix,
    const char *data, size_t len);
int store_maildir_uidvalidity_read(const char *folder, uint32_t *out);
int store_maildir_uidvalidity_write(const char *folder, uint32_t v);
enum store_status store_maildir_errno_status(int err);

/* store_deliver.c */
void store_deliver_submit(struct store *store, worker_run_cb run,
    worker_done_cb done, void *arg);
void store_deliver_user_ready(struct store *store, struct store_user *u);
void store_deliver_ujob_start(struct store *store, struct store_user *u);

/*
 * store_view.c. store_view_apply() brings the loaded view of c's mailbox,
 * if any, up to date with a committed change, on the loop thread before
 * the change callback runs: NEW adds c->uid (keywords: space-separated, or
 * NULL for none), FLAGS sets flags, MODSEQ and keywords (NULL: unchanged),
 * EXPUNGE removes the message and records it in the expunge window. A
 * change the view already holds (it was loaded after the commit) is a
 * no-op; so is a change for a mailbox no view has loaded.
 */
void store_view_apply(struct store *store, const struct store_change *c,
    const char *keywords);
void store_view_free_all(struct store *store);
/*
 * Retires the views of user's mailbox name and of its inferiors ("name/x")
 * after a DELETE or RENAME committed: later opens load a fresh view, an
 * unreferenced view is freed now, a referenced one when its last holder
 * lets go (it keeps what it had; no change reaches it by name).
 */
void store_view_retire(struct store *store, const char *user, const char *name);

/*
 * store_mailbox.c. Makes the renames listed in the index's pending_rename
 * table (paths under userdir), in the order they were recorded, fsyncs the
 * directories they touched and removes the rows of those done; a rename
 * whose source is gone counts as done. Outside a transaction; RENAME runs
 * it after its commit, recovery before it compares folders with the index.
 * It stops at the first rename that fails: that row and the later ones
 * stay for the next start. Returns 0, or -1 on such a failure or an index
 * error.
 */
int store_mailbox_redo(sqlite3 *db, const char *userdir);

/* store_index.c */
int store_index_open(const char *userdir, sqlite3 **out);
void store_index_close(sqlite3 **db);
/* After a job, on its worker: the handle's page cache goes (NULL is ok). */
void store_index_idle(sqlite3 *db);
int store_index_begin(sqlite3 *db);
int store_index_commit(sqlite3 *db);
int store_index_set_full_sync(sqlite3 *db, int full);
void store_index_rollback(sqlite3 *db);
int store_index_mailbox_find(sqlite3 *db, const char *name,
    struct store_mailbox *out);
void store_index_mailbox_deinit(struct store_mailbox *mb);
int store_index_mailbox_create(sqlite3 *db, const char *userdir,
    const char *name, const char *special_use);
int store_index_usage(sqlite3 *db, uint64_t *bytes);
int store_index_message_add(sqlite3 *db, struct store_msg *m);
int store_index_message_expunge(sqlite3 *db, int64_t mailbox_id, uint32_t uid);
int store_index_message_set_file(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
    const char *file, int in_cur);

#endif
