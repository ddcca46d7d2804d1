/*
 * The mail store: per user, a Maildir++ tree holding the message files and a
 * SQLite index (WAL) holding what IMAP needs exactly
 * (UIDVALIDITY, UIDNEXT, MODSEQ, flags, keywords, cached envelope and body
 * structure, tombstones, subscriptions, special-use, quota usage). All disk
 * work runs on the I/O worker pool; results and change events come back on
 * the loop thread. See DESIGN.md, "The path of one message".
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct worker_pool;
struct store;

/* IMAP system flags, as stored in the index and in Maildir file names. */
#define STORE_FLAG_SEEN 0x01     /* S */
#define STORE_FLAG_ANSWERED 0x02 /* R */
#define STORE_FLAG_FLAGGED 0x04  /* F */
#define STORE_FLAG_DELETED 0x08  /* T */
#define STORE_FLAG_DRAFT 0x10    /* D */

enum store_status {
	STORE_OK = 0,
	STORE_ERR_QUOTA,   /* the message would exceed the user's quota */
	STORE_ERR_NOSPACE, /* the disk is full (ENOSPC, EDQUOT) */
	STORE_ERR_IO,      /* any other I/O or SQLite failure */
};

/*
 * How deliveries are made durable before their replies. SYNCFS: files are
 * written without a sync, a syncfs(2) on the store's
 * file system that starts after they are written makes them durable, index
 * rows commit with synchronous=NORMAL, and a syncfs that starts after the
 * commit and renames makes those and the WAL durable. One syncfs runs at a
 * time and serves every delivery waiting for it; but a syncfs also writes
 * out whatever else is dirty on that file system (other programs' files,
 * the index shared-memory files a login storm dirties: 340 MB after 5,000
 * SELECTs, a 1.5 s syncfs), so a delivery's latency depends on others.
 * FILE (the default): each file is fdatasynced, rows commit with
 * synchronous=FULL, and new/ is fsynced once per user job; a delivery
 * waits for its own data only, and a store may span file systems.
 */
enum store_fsync_mode {
	STORE_FSYNC_SYNCFS = 0,
	STORE_FSYNC_FILE,
};

enum store_change_kind {
	STORE_CHANGE_NEW,     /* a message was added */
	STORE_CHANGE_FLAGS,   /* flags or keywords of a message changed */
	STORE_CHANGE_EXPUNGE, /* a message was expunged */
	/*
	 * The mailbox was deleted or renamed (it or an ancestor) while a
	 * view of it was held: uid, modseq, flags and size are 0.
	 */
	STORE_CHANGE_MAILBOX_GONE,
};

/* One committed change; valid only during the callback. */
struct store_change {
	enum store_change_kind kind;
	const char *user;
	const char *mailbox; /* IMAP name, UTF-8, "/" separated */
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t modseq;
	unsigned flags; /* STORE_FLAG_* after the change */
	uint64_t size;
	/*
	 * CLOCK_MONOTONIC ns (hist_now_ns()) when the change became durable,
	 * taken on the I/O thread; 0: not timed. Deliveries set it.
	 */
	uint64_t committed_ns;
};

/*
 * Called on the loop thread for every committed change, after the file is in
 * place and before the operation's own completion callback runs.
 */
typedef void (*store_change_cb)(const struct store_change *change, void *arg);

/* One recipient of a delivery. */
struct store_rcpt {
	char *user;         /* canonical user name: the store's directory key */
	char *delivered_to; /* address for the Delivered-To header field */
	uint64_t quota;     /* bytes; 0 means no limit */
	/* Set by the store before the done callback: */
	enum store_status status;
	uint32_t uid; /* UID in INBOX when status is STORE_OK */
};

struct store_delivery;
typedef void (*store_delivery_cb)(struct store_delivery *d, void *arg);

/*
 * A message for one or more users' INBOX. The caller fills it, hands it to
 * store_deliver() and gets it back in the done callback, where it reads each
 * rcpt's status and then frees it with store_delivery_free().
 */
struct store_delivery {
	char *return_path; /* reverse-path without <>; "" for the null sender */
	char *data;        /* the message, CRLF line ends, not dot-stuffed */
	size_t len;        /* bytes in data */
	time_t internaldate;
	int all_or_none; /* SMTP: stored for every rcpt or for none */
	struct store_rcpt *rcpts;
	size_t nrcpts;
	store_delivery_cb done;
	void *arg;
};

/*
 * Opens the store rooted at dir (created when missing). io runs all disk
 * work. Returns NULL with the reason in err.
 */
struct store *store_new(struct event_base *base, struct worker_pool *io,
    const char *dir, char *err, size_t errlen);

/*
 * Descriptors the store may hold at once (its index handles, plus message
 * files and folders being written or scanned): the server keeps that many
 * free of client connections (listener_set_ceiling()).
 */
size_t store_fd_reserve(const struct store *store);

/*
 * Chooses how deliveries are made durable (see enum store_fsync_mode). Call
 * on the loop thread before the first store_deliver(); the default is
 * STORE_FSYNC_FILE.
 */
void store_set_fsync_mode(struct store *store, enum store_fsync_mode mode);

/*
 * Parses a config value: "syncfs" or "file". Returns 0, or -1 for anything
 * else.
 */
int store_fsync_mode_parse(const char *s, enum store_fsync_mode *out);

/* Waits for every pending operation to complete, then frees the store. */
void store_free(struct store **store);

/*
 * Loop thread: closes, on the calling thread, the index handle of every
 * user no job is running for. Each handle locks its index for as long as
 * it is open (the daemon owns the data directory), so this is what lets
 * another process read an index, as the tests do; the handles reopen on
 * the next job. Returns how many handles stay open because a job is using
 * them (a delivery is reported done before its job has ended).
 */
size_t store_release_handles(struct store *store);

void store_set_change_cb(struct store *store, store_change_cb cb, void *arg);

/*
 * Crash recovery for every user under dir, run synchronously at start-up
 * before any listener opens: committed rows whose file is still in tmp/ are
 * renamed into place, tmp/ files without a row are removed, and files in
 * cur/ or new/ without a row get new UIDs. Returns 0, or -1 with err.
 */
int store_recover(struct store *store, char *err, size_t errlen);

/*
 * Delivers d. Each recipient is worked on its own as soon as its user is
 * free (one job at a time per user; recipients that arrive meanwhile share
 * the next job): its file (with Return-Path and Delivered-To prepended) is
 * written to tmp/ and made durable; once every recipient of d is staged,
 * each one's index row commits (one transaction per user job) and its file
 * is renamed into new/, and the renames and rows are made durable; then the
 * change callback fires per stored message, then d->done.
 * A recipient reports STORE_OK only when its file, directory entry and row
 * are on disk. With all_or_none, a staging failure for one recipient leaves
 * none stored and every status reports it. The store owns d until d->done,
 * which never runs before this returns.
 */
void store_deliver(struct store *store, struct store_delivery *d);

/* Frees d, its strings and rcpts. */
void store_delivery_free(struct store_delivery **d);

/*
 * Makes sure the user's Maildir and index exist, with INBOX and the
 * special-use mailboxes Sent, Drafts, Trash, Junk and Archive. Synchronous;
 * for `pushmaild user add`.
 */
int store_user_create(struct store *store, const char *user, char *err,
    size_t errlen);

/* A mailbox's counters, as store_mailbox_status() reads them. */
struct store_mailbox_status {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t bytes;
};

/*
 * Reads a mailbox's counters from the user's index on a connection of its
 * own, synchronously, after store_release_handles(): for tools, tests and
 * the crash test, not for the loop thread of a running server. Returns 0, or -1
 * when the user or mailbox does not exist or the index cannot be read.
 */
int store_mailbox_status(struct store *store, const char *user,
    const char *mailbox, struct store_mailbox_status *out);

/*
 * Index transactions committed by deliveries since store_new(): at most one
 * per user job. For tests and metrics.
 */
uint64_t store_commit_count(struct store *store);

/*
 * Durability barriers (syncfs(2) calls, mode STORE_FSYNC_SYNCFS) started
 * since store_new(). For tests and metrics.
 */
uint64_t store_barrier_count(struct store *store);

/*
 * Test hook: from now on, writing a message file into user's tmp/ fails as
 * if write(2) had failed with err (e.g. ENOSPC, EIO). err 0 or user NULL
 * turns it off. Call on the loop thread while no delivery is pending.
 */
void store_test_fail_writes(struct store *store, const char *user, int err);

/*
 * Test hook: from now on, every barrier that serves barrier role 1 (staged
 * files) or 2 (committed rows and renames) fails as if syncfs(2) had failed
 * with err, in mode STORE_FSYNC_SYNCFS; every item waiting for it then fails
 * as its own step requires. err 0 turns it off. Call on the loop thread
 * while no delivery is pending.
 */
void store_test_fail_barrier(struct store *store, int barrier, int err);

#endif
