/*
 * Shared mailbox views and the mailbox listing, for IMAP (DESIGN.md, "What
 * an idle session costs"): one in-memory view per open (user, mailbox)
 * holds the UID-ordered message map (RFC 3501 section 2.3.1), flags,
 * keywords and MODSEQ (RFC 7162), and a window of recent expunges, kept
 * current by the store on every commit, so sessions hold no copy of it.
 */
#ifndef STORE_STORE_VIEW_H
#define STORE_STORE_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_view;

enum store_view_status {
	STORE_VIEW_OK = 0,
	STORE_VIEW_NOMAILBOX, /* the user has no mailbox of that name */
	STORE_VIEW_IO,        /* the index could not be read or written */
};

/*
 * One message of a view: 16 bytes. flags are STORE_FLAG_* bits; kwset
 * names the message's set of keywords (0: none), see
 * store_view_msg_keywords().
 */
struct store_view_msg {
	uint64_t modseq;
	uint32_t uid;
	uint32_t kwset : 24;
	uint32_t flags : 8;
};

/* One expunged message, as the window and the index report it. */
struct store_expunge {
	uint32_t uid;
	uint64_t modseq;
};

/*
 * Gets view (with a reference the callee owns and drops with
 * store_view_unref()) and STORE_VIEW_OK, or NULL and the reason.
 */
typedef void (*store_view_open_cb)(struct store_view *view,
    enum store_view_status status, void *arg);

/*
 * Opens the view of user's mailbox (IMAP name; "INBOX" in any case).
 * The first open loads it from the index on the I/O pool (serialised with
 * the user's deliveries); while it is loaded, later opens share it and are
 * answered on the next loop turn. cb runs on the loop thread, never before
 * this returns, exactly once. The store keeps every loaded view current:
 * a commit is applied to it before the change callback runs.
 */
void store_view_open(struct store *store, const char *user, const char *mailbox,
    store_view_open_cb cb, void *arg);

/* Takes another reference. Returns view. */
struct store_view *store_view_ref(struct store_view *view);

/*
 * Drops a reference and sets *view to NULL. An unreferenced view stays
 * loaded (and current) in a small cache, so reopening it costs no query;
 * the oldest beyond STORE_VIEW_CACHE are freed. Every reference must be
 * dropped before store_free().
 */
void store_view_unref(struct store_view **view);

int64_t store_view_mailbox_id(const struct store_view *view);
const char *store_view_name(const struct store_view *view);
uint32_t store_view_uidvalidity(const struct store_view *view);
uint32_t store_view_uidnext(const struct store_view *view);
uint64_t store_view_highestmodseq(const struct store_view *view);

/* The first UID still \Recent for the next session that claims it. */
uint32_t store_view_first_recent_uid(const struct store_view *view);

/* Messages in the view; sequence number i + 1 is message i. */
uint32_t store_view_count(const struct store_view *view);

/*
 * Message i (0-based, ascending UID; i < count). The pointer is valid
 * until the view next changes (the next commit or loop turn).
 */
const struct store_view_msg *store_view_msg(const struct store_view *view,
    uint32_t i);

/*
 * The index of uid, or -1 when the view has no such message. Works on a
 * view that is not full too (the index is then what store_view_lower()
 * counts).
 */
int64_t store_view_find(const struct store_view *view, uint32_t uid);

/* The number of messages with a UID below uid; works in every state. */
uint32_t store_view_lower(const struct store_view *view, uint32_t uid);

/*
 * Hibernation (DESIGN.md, "What an idle session costs"). A view whose
 * every reference is held by a session in IDLE may drop its message
 * array, keywords and expunge window and keep only its UIDs, as runs of
 * consecutive numbers. Such a view still answers store_view_count(),
 * _uidnext(), _highestmodseq(), _first_recent_uid(), _find(), _lower()
 * and store_view_expunged_since(), and stays current with new messages
 * and expunges; the first flag change wakes it (reloads it from the index
 * on the I/O pool). store_view_msg(), _msg_keywords() and the keyword
 * list need a full view.
 *
 * store_view_full() says whether the message array is in memory;
 * store_view_waking() whether a reload is in flight (a holder then waits
 * with store_view_wake() before it reads anything but the counters).
 * store_view_idle() counts one reference as held by an IDLE session (on)
 * or no longer (off). store_view_hibernate() hibernates a full view when
 * every reference is an idle one; returns 0, or -1 when it may not.
 * Every expunge so far then counts as reported: call it only when each
 * idle holder has heard everything.
 * store_view_wake() calls cb (view, STORE_VIEW_OK, arg) once the view is
 * full, at the earliest on the next loop turn, or (NULL, the reason, arg)
 * when the reload failed; the caller keeps its own reference meanwhile.
 * With a NULL cb it only starts the reload. store_view_open() of a
 * hibernated view wakes it before it answers.
 */
int store_view_full(const struct store_view *view);
int store_view_waking(const struct store_view *view);
void store_view_idle(struct store_view *view, int on);
int store_view_hibernate(struct store_view *view);
void store_view_wake(struct store_view *view, store_view_open_cb cb, void *arg);

/*
 * The keywords of message i: sets *kw to their indices in the mailbox's
 * keyword list (store_view_keyword()) and returns how many. The array
 * stays valid as long as the view.
 */
size_t store_view_msg_keywords(const struct store_view *view, uint32_t i,
    const uint32_t **kw);

/* The mailbox's keywords (defined or in use): count, and the k-th name. */
size_t store_view_keyword_count(const struct store_view *view);
const char *store_view_keyword(const struct store_view *view, size_t k);

/*
 * Calls cb for every expunge the view saw with MODSEQ above modseq, in the
 * order they happened, synchronously. Returns 0, or -1 (calling nothing)
 * when the in-memory window does not reach back that far; the caller then
 * asks the index with store_expunged_since().
 */
int store_view_expunged_since(const struct store_view *view, uint64_t modseq,
    void (*cb)(const struct store_expunge *e, void *arg), void *arg);

/*
 * Gets the expunged messages (ascending UID, owned by the store, valid
 * during the call) or NULL, 0 and STORE_VIEW_IO.
 */
typedef void (*store_expunged_cb)(const struct store_expunge *list, size_t n,
    enum store_view_status status, void *arg);

/*
 * Reads the index's tombstones of mailbox_id with MODSEQ above modseq, on
 * the I/O pool. cb runs on the loop thread, never before this returns.
 */
void store_expunged_since(struct store *store, const char *user,
    int64_t mailbox_id, uint64_t modseq, store_expunged_cb cb, void *arg);

/*
 * Gets the first UID that was \Recent before the claim: the session that
 * claimed owns \Recent for every message with a UID from it on.
 */
typedef void (*store_view_recent_cb)(struct store_view *view,
    uint32_t first_recent, enum store_view_status status, void *arg);

/*
 * For SELECT (not EXAMINE), RFC 3501 section 2.3.2: in one transaction
 * reads the mailbox's first \Recent UID and moves it to UIDNEXT, then
 * updates the view. The store holds a reference to view until cb has run
 * (on the loop thread, never before this returns).
 */
void store_view_claim_recent(struct store_view *view, store_view_recent_cb cb,
    void *arg);

/*
 * The claim generation: it grows by one with each claim, so the session
 * whose claim is the newest (its generation is the view's) knows that the
 * messages arriving now are \Recent for it alone. That session reports
 * what it was told of with store_view_recent_given(view, uidnext); the
 * next claim then starts above it (RFC 3501: a message is \Recent in one
 * session only). Kept in memory: after the view is freed, messages told
 * to a session since its claim count as \Recent again for the next one.
 */
uint32_t store_view_claim_gen(const struct store_view *view);
void store_view_recent_given(struct store_view *view, uint32_t uidnext);

/* One mailbox, or a subscription that names no mailbox (exists 0). */
struct store_mailbox_info {
	char *name;        /* IMAP name, UTF-8, "/" separated */
	char *special_use; /* "\Sent" etc., or NULL */
	int exists;        /* 0: only a subscription; counters are 0 */
	int subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent;  /* messages with a UID >= the first \Recent UID */
	uint64_t bytes;   /* sum of RFC822.SIZE */
	uint32_t deleted; /* with \Deleted; counted for STORE_LIST_DELETED */
};

struct store_mailbox_list {
	struct store_mailbox_info *items; /* mailboxes by name, then the rest */
	size_t n;
};

/*
 * Gets the listing (the callee owns it and frees it with
 * store_mailbox_list_free()) or NULL and STORE_VIEW_IO.
 */
typedef void (*store_mailbox_list_cb)(struct store_mailbox_list *list,
    enum store_view_status status, void *arg);

/*
 * Lists every mailbox of user with its counters, and the subscriptions
 * that name no mailbox (for LIST (SUBSCRIBED), RFC 9051 section 6.3.9),
 * on the I/O pool. cb runs on the loop thread, never before this returns.
 */
#define STORE_LIST_DELETED 0x1 /* count \Deleted messages (a scan) */

void store_mailbox_list(struct store *store, const char *user, unsigned flags,
    store_mailbox_list_cb cb, void *arg);

/* Frees a listing and sets *list to NULL. */
void store_mailbox_list_free(struct store_mailbox_list **list);

#endif
