/*
 * Other programs' changes to a Maildir (DESIGN.md, "The path of one
 * message"): inotify watches on new/ and cur/ of every mailbox that has a
 * loaded view, and the reconciliation that compares those directories with
 * the index as a user task, so that files delivered, renamed or removed by
 * an MDA, a mail reader or a backup tool become RFC 3501 EXISTS, FETCH
 * FLAGS and EXPUNGE news with UIDs and MODSEQs (RFC 7162) like our own.
 * Internal to src/store/.
 */
#ifndef STORE_STORE_WATCH_H
#define STORE_STORE_WATCH_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct store;
struct store_user;
struct store_watch;

/* Names in new/ or cur/ longer than this are never indexed. */
#define STORE_WATCH_NAME_MAX 255

/* A Maildir file name taken apart. */
struct store_watch_name {
	size_t base_len; /* bytes of the name before ":2," */
	unsigned flags;  /* STORE_FLAG_* of the ":2," letters (D F R S T) */
	uint32_t uid;    /* the number after ",U=" in the base; 0 if none */
};

/*
 * Takes a file name found in new/ or cur/ apart; the letters after ":2,"
 * that have no IMAP flag (P, and a-z keywords of other programs) are
 * ignored. Returns 0, or -1 for a name the store never indexes: empty,
 * hidden (leading '.'), longer than STORE_WATCH_NAME_MAX or holding '/'.
 */
int store_watch_name_parse(const char *name, struct store_watch_name *out);

/*
 * The name the store gives a message with file name base: base itself in
 * new/ (in_cur 0), "base:2,<letters>" in cur/. The caller frees it.
 */
char *store_watch_canonical(const char *base, int in_cur, unsigned flags);

/*
 * Loop thread, when a view of user u's mailbox (IMAP name) starts loading:
 * watches the folder's new/ and cur/ with inotify and queues a user task
 * that reconciles the folder with the index (a directory scan, skipped
 * when both directories' mtimes are those of the last full scan), so that
 * it runs before the view's load. From then on, each burst of inotify
 * events for the folder becomes one reconciliation task after the loop
 * turn. Foreign files are indexed like deliveries (next UID and MODSEQ,
 * flags from ":2,") and renamed to the store's scheme
 * "<unique>,U=<uid>,S=<size>[:2,<letters>]"; vanished files are expunged
 * with a tombstone; renamed ones change flags. Every change is applied to
 * the loaded view and passed to the change callback on the loop thread.
 * Never fails: without inotify (or past fs.inotify.max_user_watches) the
 * folder is still reconciled at each load. Returns a handle for
 * store_watch_drop(), or NULL when watching is off.
 */
struct store_watch *store_watch_add(struct store *store, struct store_user *u,
    const char *mailbox);

/*
 * Turns watching and reconciling off (on 0) or back on for views that
 * load from now on; on by default. For tests that build an index whose
 * rows have no files.
 */
void store_watch_enable(struct store *store, int on);

/*
 * Loop thread: stops watching (the view is being freed) and sets *w to
 * NULL. A reconciliation in flight still commits and announces.
 */
void store_watch_drop(struct store_watch **w);

/*
 * At store_free(), after every view is freed and no task is in flight:
 * closes the inotify descriptor.
 */
void store_watch_shutdown(struct store *store);

/* Bits of STORE_WATCH_KEEP_*: the directories a write changes. */
#define STORE_WATCH_KEEP_NEW 1
#define STORE_WATCH_KEEP_CUR 2

/*
 * What store_watch_keep_begin() saw of a folder before one of our writes.
 * Opaque to callers; on their stack.
 */
struct store_watch_keep {
	int64_t mailbox_id;
	char *folder;
	int64_t stamp[2]; /* the recorded mtimes of new/ and cur/ */
	int match[2];     /* the directory still had its recorded mtime */
};

/*
 * Keeping the scan stamps current through the store's own writes, so that
 * a view load after our deliveries can skip the directory scan. On the
 * worker of a user job or task, around renames or unlinks of our own in
 * new/ and cur/ (which: STORE_WATCH_KEEP_* bits) of the folder (absolute
 * path) of mailbox mailbox_id. begin() reads the recorded mtimes and
 * stats the directories; call it right before the first rename, after the
 * job's own transaction committed. end() stats them again and, for each
 * one that had its recorded mtime before, records its mtime now: nothing
 * foreign changed it since the last reconciliation, and our own change is
 * in the index already. It runs its own short transaction with
 * synchronous=NORMAL (a lost stamp only costs a scan) and puts the handle
 * back to FULL. Returns 0, or -1 when db could not go back to FULL (the
 * caller closes it). A folder on a file system without sub-second mtimes
 * is never kept: a change in the same second would not show.
 * FIXME(watch-keep): a foreign file written into the folder between
 * begin() and the end of the clock tick of our last rename (microseconds
 * to a few milliseconds) while no view watches the folder is picked up
 * only by the next reconciliation that scans (a later foreign change, an
 * inotify overflow, or the start-up recovery).
 */
void store_watch_keep_begin(struct store_watch_keep *k, struct sqlite3 *db,
    int64_t mailbox_id, const char *folder, unsigned which);
int store_watch_keep_end(struct store_watch_keep *k, struct sqlite3 *db);

#endif
