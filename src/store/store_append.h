/*
 * APPEND (RFC 3501 section 6.3.11) with the APPENDUID answer of RFC 4315
 * section 3: one message stored into a named mailbox of one user, with
 * its flags and INTERNALDATE, durably, and announced like a delivery.
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
	STORE_APPEND_QUOTA,     /* the message would exceed the quota */
	STORE_APPEND_IO,        /* disk full, I/O or SQLite failure */
};

/*
 * Gets the outcome and, with STORE_APPEND_OK, the target's UIDVALIDITY
 * and the new message's UID.
 */
typedef void (*store_append_cb)(enum store_append_status status,
    uint32_t uidvalidity, uint32_t uid, void *arg);

/*
 * Stores data[0..len) (CRLF line ends, taken as is: no header is added)
 * into user's mailbox (IMAP name, UTF-8) with flags (STORE_FLAG_*) and
 * internaldate. quota (bytes, 0: none) bounds the user's usage. As a user
 * task: the file is written to tmp/ and fdatasynced, the row (with the
 * parsed MIME data) commits with synchronous=FULL, then the file is
 * renamed into cur/ with its ":2," letters (new/ when flags is 0) and the
 * directory is fsynced. On the loop thread the new message is applied to
 * the loaded view and reported to the change callback (STORE_CHANGE_NEW)
 * before cb runs; cb never runs before this returns. data is copied.
 */
void store_append(struct store *store, const char *user, const char *mailbox,
    const char *data, size_t len, unsigned flags, time_t internaldate,
    uint64_t quota, store_append_cb cb, void *arg);

#endif
