/*
 * APPEND (RFC 3501 section 6.3.11) and MULTIAPPEND (RFC 3502) with the
 * APPENDUID answer of RFC 4315 section 3: one or more messages stored
 * into a named mailbox of one user, with their flags, keywords and
 * INTERNALDATE, durably and all or none, and announced like deliveries.
 */
#ifndef STORE_STORE_APPEND_H
#define STORE_STORE_APPEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;

enum store_append_status {
	STORE_APPEND_OK = 0,
	STORE_APPEND_NOMAILBOX, /* no mailbox of that name: TRYCREATE */
	STORE_APPEND_QUOTA,     /* the messages would exceed the quota */
	STORE_APPEND_IO,        /* disk full, I/O or SQLite failure */
};

/* One message to append. */
struct store_append_msg {
	const char *data; /* CRLF line ends, taken as is: no header is added */
	size_t len;
	unsigned flags;              /* STORE_FLAG_* */
	const char *const *keywords; /* atoms; nkw of them */
	size_t nkw;
	time_t internaldate;
};

/*
 * Gets the outcome and, with STORE_APPEND_OK, the target's UIDVALIDITY
 * and the new messages' UIDs, one per message in order, ascending (the
 * store's array, valid during the call); otherwise uids is NULL, n 0.
 */
typedef void (*store_append_cb)(enum store_append_status status,
    uint32_t uidvalidity, const uint32_t *uids, size_t n, void *arg);

/*
 * Stores msgs[0..n) (n >= 1) into user's mailbox (IMAP name, UTF-8),
 * all or none (RFC 3502 section 6.3.11). quota (bytes, 0: none) bounds
 * the user's usage after all of them. As a user task: every file is
 * written to tmp/ and fdatasynced, then all rows (with the parsed MIME
 * data and the keywords, which the mailbox learns, RFC 3501 section
 * 2.3.2, spelt as it already knows them) commit in one synchronous=FULL
 * transaction, then the files are renamed into cur/ with their ":2,"
 * letters (new/ without flags) and the directories fsynced; a crash before
 * the commit leaves no message, one after it all of them (store_recover()
 * finishes the renames). On the loop thread each new message is applied to
 * the loaded view and reported to the change callback (STORE_CHANGE_NEW)
 * before cb runs; cb never runs before this returns. Everything is copied.
 */
void store_append(struct store *store, const char *user, const char *mailbox,
    const struct store_append_msg *msgs, size_t n, uint64_t quota,
    store_append_cb cb, void *arg);

#endif
