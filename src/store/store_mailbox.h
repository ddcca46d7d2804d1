/*
 * Mailbox management for IMAP CREATE, DELETE, RENAME, SUBSCRIBE and
 * UNSUBSCRIBE (RFC 3501 sections 6.3.3-6.3.7, RFC 9051 sections
 * 6.3.4-6.3.8): each a user task on the user's index and Maildir++ folders.
 */
#ifndef STORE_STORE_MAILBOX_H
#define STORE_STORE_MAILBOX_H

#include "store/store.h"

enum store_mailbox_outcome {
	STORE_MAILBOX_OK = 0,
	STORE_MAILBOX_EXISTS,      /* the (new) name exists: ALREADYEXISTS */
	STORE_MAILBOX_NONEXISTENT, /* no mailbox of that name */
	STORE_MAILBOX_HASCHILDREN, /* DELETE of a mailbox with inferiors */
	STORE_MAILBOX_CANNOT,      /* INBOX, or a name the store refuses */
	STORE_MAILBOX_IO,          /* disk, I/O or SQLite failure */
};

/* Gets the outcome on the loop thread, never before the call returns. */
typedef void (*store_mailbox_cb)(enum store_mailbox_outcome status, void *arg);

/*
 * Creates user's mailbox name (IMAP name, UTF-8, '/' separated, already
 * validated by the caller) and every missing superior as a real mailbox:
 * folder with cur/, new/, tmp/ and its UIDVALIDITY file, fsynced, then the
 * row with a fresh UIDVALIDITY (never one used before) in one transaction.
 * Subscriptions are left as they are (RFC 9051 section 6.3.4): a new
 * mailbox is not subscribed, unless its name already was.
 */
void store_mailbox_create(struct store *store, const char *user,
    const char *name, store_mailbox_cb cb, void *arg);

/*
 * Deletes user's mailbox name with its messages, keywords and expunge
 * tombstones, and lowers the quota usage, in one transaction; the folder's
 * files go after the commit. INBOX and a mailbox with inferiors are
 * refused. A loaded view of it is retired (store_view_retire()). The
 * subscription stays, as RFC 3501 section 6.3.4 allows.
 */
void store_mailbox_delete(struct store *store, const char *user,
    const char *name, store_mailbox_cb cb, void *arg);

/*
 * Renames user's mailbox from, and its inferiors from/x, to to and to/x,
 * with the subscriptions of those names; UIDVALIDITY is kept; missing
 * superiors of to are created (unsubscribed). A from that exists only
 * through its inferiors is renamed too (the missing level stays missing).
 * The rows commit first together with the folder renames they owe, which
 * follow (rename(2), then the user directory is fsynced); after a crash in
 * between, recovery makes them. Renaming a mailbox under itself is refused
 * (CANNOT); a to that exists gives EXISTS, a from with neither row nor
 * inferiors NONEXISTENT.
 *
 * RENAME INBOX (RFC 9051 section 6.3.6) creates to with a fresh
 * UIDVALIDITY and moves every INBOX message there, keeping its UID, flags
 * and keywords (to takes INBOX's UIDNEXT); each message leaves a tombstone
 * with its own MODSEQ in INBOX, whose UIDVALIDITY, UIDNEXT, inferiors and
 * subscription stay, and the quota usage does not change. The files follow
 * the commit like the folders above. Before cb, each moved UID is
 * announced as an EXPUNGE of INBOX to the change callback, so sessions
 * with INBOX selected hear of it at once; to may lie under INBOX.
 */
void store_mailbox_rename(struct store *store, const char *user,
    const char *from, const char *to, store_mailbox_cb cb, void *arg);

/*
 * Adds (on set) or removes name in user's subscriptions. The mailbox need
 * not exist; removing an absent subscription succeeds.
 */
void store_mailbox_subscribe(struct store *store, const char *user,
    const char *name, int on, store_mailbox_cb cb, void *arg);

#endif
