/*
 * Flag changes and expunges of messages (RFC 3501 sections 6.4.3 and
 * 6.4.6, RFC 4315 UID EXPUNGE, RFC 7162 MODSEQ): each commits in one
 * synchronous=FULL transaction, then the Maildir files follow (renamed
 * with their ":2," letters, or unlinked), then every change is applied to
 * the loaded view and announced like a delivery.
 */
#ifndef STORE_STORE_FLAGS_H
#define STORE_STORE_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_view.h"

/* Gets STORE_VIEW_OK, or STORE_VIEW_IO (nothing changed). */
typedef void (*store_flags_cb)(enum store_view_status status, void *arg);

/*
 * Sets \Seen on the messages uids[0..n) (at most STORE_FETCH_MAX_MSGS) of
 * user's mailbox mailbox_id that exist without it: the implicit \Seen of
 * FETCH BODY[] (RFC 3501 section 6.4.5). In one synchronous=FULL
 * transaction each gets the next MODSEQ; then its file moves into cur/
 * with ":2,<letters>". On the loop thread every change is applied to the
 * loaded view and reported to the change callback (STORE_CHANGE_FLAGS)
 * before cb runs; cb never runs before this returns.
 */
void store_flags_set_seen(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n, store_flags_cb cb,
    void *arg);

/* How store_flags_store() combines the given flags with a message's. */
enum store_flags_mode {
	STORE_FLAGS_SET,    /* FLAGS: replace */
	STORE_FLAGS_ADD,    /* +FLAGS */
	STORE_FLAGS_REMOVE, /* -FLAGS */
};

/* One message whose flags changed, as committed. */
struct store_flags_update {
	uint32_t uid;
	unsigned flags;       /* STORE_FLAG_* after the change */
	const char *keywords; /* after the change, space separated; "" none */
	uint64_t modseq;
};

/*
 * Gets the changed messages in ascending UID order (owned by the store,
 * valid during the call) and STORE_VIEW_OK, or NULL, 0 and STORE_VIEW_IO
 * (nothing changed). Messages that did not exist or were left as they
 * were are not listed.
 */
typedef void (*store_flags_store_cb)(const struct store_flags_update *list,
    size_t n, enum store_view_status status, void *arg);

/*
 * STORE (RFC 3501 section 6.4.6): applies flags (STORE_FLAG_* bits) and
 * keywords[0..nkw) (atoms, compared without case; a new name is added to
 * the mailbox's keywords) to the messages uids[0..n) of user's mailbox
 * mailbox_id, as mode says. In one synchronous=FULL transaction each
 * message that changes gets the next MODSEQ and the unseen counter
 * follows; unchanged messages keep theirs. Then the files are renamed:
 * into cur/ with ":2,<letters>" (a message still in new/ stays there only
 * while it has no system flag). On the loop thread each change is applied
 * to the loaded view and reported to the change callback
 * (STORE_CHANGE_FLAGS) before cb runs; cb never runs before this returns.
 * uids and keywords are copied.
 */
void store_flags_store(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n,
    enum store_flags_mode mode, unsigned flags, const char *const *keywords,
    size_t nkw, store_flags_store_cb cb, void *arg);

/*
 * Like store_flags_store_cb, and modified[0..nmodified) (ascending, owned
 * by the store, valid during the call): the messages left alone because
 * their MODSEQ was above UNCHANGEDSINCE. Both lists are empty on
 * STORE_VIEW_IO.
 */
typedef void (*store_flags_cond_cb)(const struct store_flags_update *list,
    size_t n, const uint32_t *modified, size_t nmodified,
    enum store_view_status status, void *arg);

/*
 * STORE with UNCHANGEDSINCE (RFC 7162 section 3.1.3): as
 * store_flags_store(), except that a message whose MODSEQ is above
 * unchangedsince is not changed and is listed in modified instead. The
 * check is made inside the transaction that changes the others, so no
 * other session's change can come between the two. unchangedsince 0
 * refuses every existing message.
 */
void store_flags_store_cond(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n, uint64_t unchangedsince,
    enum store_flags_mode mode, unsigned flags, const char *const *keywords,
    size_t nkw, store_flags_cond_cb cb, void *arg);

/*
 * Gets the expunged UIDs in ascending order (owned by the store, valid
 * during the call) and STORE_VIEW_OK, or NULL, 0 and STORE_VIEW_IO
 * (nothing expunged).
 */
typedef void (*store_flags_expunge_cb)(const uint32_t *uids, size_t n,
    enum store_view_status status, void *arg);

/*
 * EXPUNGE and UID EXPUNGE (RFC 3501 section 6.4.3, RFC 4315 section 2.1):
 * removes the messages uids[0..n) of user's mailbox mailbox_id that exist,
 * whatever their flags (the caller chooses them). In one
 * synchronous=FULL transaction the rows go, each leaves a tombstone with
 * its own new MODSEQ, and the mailbox counters and quota usage follow;
 * then the files are unlinked and their directories fsynced. On the loop
 * thread each expunge is applied to the loaded view and reported to the
 * change callback (STORE_CHANGE_EXPUNGE) in ascending UID order before cb
 * runs; cb never runs before this returns. uids is copied.
 */
void store_flags_expunge(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n,
    store_flags_expunge_cb cb, void *arg);

#endif
