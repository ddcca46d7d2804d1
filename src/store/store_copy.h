/*
 * COPY and MOVE (RFC 3501 section 6.4.7, RFC 6851) with the COPYUID answer
 * of RFC 4315 section 3: messages of one mailbox duplicated into another
 * mailbox of the same user, sharing their Maildir files by hard link.
 */
#ifndef STORE_STORE_COPY_H
#define STORE_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum store_copy_status {
	STORE_COPY_OK = 0,
	STORE_COPY_NOMAILBOX, /* no destination of that name: TRYCREATE */
	STORE_COPY_QUOTA,     /* the copies would exceed the quota */
	STORE_COPY_IO,        /* disk full, I/O or SQLite failure */
};

/*
 * Gets the outcome and, with STORE_COPY_OK, the destination's UIDVALIDITY
 * and the n copied messages: src_uids[i] became dst_uids[i], in ascending
 * order of both (owned by the store, valid during the call). Source UIDs
 * that no longer existed are not listed; n may be 0.
 */
typedef void (*store_copy_cb)(enum store_copy_status status,
    uint32_t uidvalidity, const uint32_t *src_uids, const uint32_t *dst_uids,
    size_t n, void *arg);

/*
 * Copies the messages uids[0..n) (ascending) of user's mailbox
 * src_mailbox_id into the mailbox named dst_mailbox (IMAP name, UTF-8),
 * which may be the same one. quota (bytes, 0: none) bounds the user's
 * usage. As a user task: each copy gets the destination's next UID and
 * MODSEQ and keeps the flags, keywords, size, INTERNALDATE and cached MIME
 * data of its source; its file is hard-linked (copied when linking is
 * impossible) into cur/ (new/ without flags) under a name carrying the new
 * UID, the directories are fsynced, and only then do the rows commit, all
 * at once, with synchronous=FULL. On failure nothing is copied. On the
 * loop thread each copy is applied to the loaded view and reported to the
 * change callback (STORE_CHANGE_NEW) in UID order before cb runs; cb never
 * runs before this returns. uids and dst_mailbox are copied.
 */
void store_copy(struct store *store, const char *user, int64_t src_mailbox_id,
    const uint32_t *uids, size_t n, const char *dst_mailbox, uint64_t quota,
    store_copy_cb cb, void *arg);

#endif
