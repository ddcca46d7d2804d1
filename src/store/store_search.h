/*
 * The index and message side of IMAP SEARCH (RFC 3501 / RFC 9051 section
 * 6.4.4): sizes, dates, header fields and body text of messages, tested on
 * the I/O pool in bounded chunks. The caller (imap_search.c) evaluates the
 * program; this only says which of its keys each message matches.
 */
#ifndef STORE_STORE_SEARCH_H
#define STORE_STORE_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_view.h"

/* Keys one search may send (one bit each in store_search_msg.match). */
#define STORE_SEARCH_MAX_KEYS 64
/* One call tests at most this many messages ... */
#define STORE_SEARCH_MAX_MSGS 256
/* ... and stops reading files once their bytes reach this (at least one). */
#define STORE_SEARCH_MAX_BYTES (4u << 20)

enum store_search_kind {
	STORE_SEARCH_SIZE,     /* RFC822.SIZE vs num */
	STORE_SEARCH_DATE,     /* INTERNALDATE vs the UTC day starting num */
	STORE_SEARCH_SENTDATE, /* the Date: field vs the UTC day at num */
	STORE_SEARCH_HEADER,   /* field contains str ("" : field present) */
	STORE_SEARCH_BODY,     /* the decoded body text contains str */
	STORE_SEARCH_TEXT,     /* the header or the body text contains str */
};

enum store_search_cmp {
	STORE_SEARCH_LT, /* SMALLER, BEFORE: value < num (day) */
	STORE_SEARCH_EQ, /* ON: within the day */
	STORE_SEARCH_GE, /* SINCE: on the day or later */
	STORE_SEARCH_GT, /* LARGER: value > num */
};

/*
 * One key. Strings compare as a case-insensitive (ASCII letters) substring
 * of the unfolded, RFC 2047-decoded field value, or of body text after
 * its Content-Transfer-Encoding (7bit, 8bit, binary, quoted-printable,
 * base64) is undone, in text/ parts (and parts without a type); other
 * charsets are not converted.
 */
struct store_search_key {
	enum store_search_kind kind;
	enum store_search_cmp cmp;
	int64_t num;       /* bytes, or the unix time of 00:00 UTC of a day */
	const char *field; /* HEADER: the field name */
	const char *str;   /* HEADER, BODY, TEXT: len bytes */
	size_t len;
};

/* One message: bit k of match is set when it matches keys[k]. */
struct store_search_msg {
	uint32_t uid;
	int missing; /* no such row, or its file could not be read */
	uint64_t match;
};

/*
 * msgs[0..n) for the first n UIDs asked for, in their order (the caller
 * asks again for the rest). status is STORE_VIEW_IO (n 0) on failure.
 */
struct store_search_result {
	struct store_search_msg *msgs;
	size_t n;
	enum store_view_status status;
};

/* Gets the result, which the callee owns (store_search_result_free()). */
typedef void (*store_search_cb)(struct store_search_result *res, void *arg);

/*
 * Tests the messages uids[0..n) of user's mailbox mailbox_id against
 * keys[0..nkeys) (nkeys <= STORE_SEARCH_MAX_KEYS) as a user task on the
 * I/O pool, at most STORE_SEARCH_MAX_MSGS messages and about
 * STORE_SEARCH_MAX_BYTES of files per call. keys and uids are copied. cb
 * runs on the loop thread, never before this returns, exactly once.
 */
void store_search(struct store *store, const char *user, int64_t mailbox_id,
    const struct store_search_key *keys, size_t nkeys, const uint32_t *uids,
    size_t n, store_search_cb cb, void *arg);

/* Frees a result and sets *res to NULL; accepts NULL. */
void store_search_result_free(struct store_search_result **res);

/*
 * The pure matchers, exported for tests. store_search_message() tests
 * one message file (len bytes, the message as received: no store prefix)
 * with its part map (mime.h) against keys, and returns the match bits
 * of the string keys only (HEADER, BODY, TEXT).
 */
uint64_t store_search_message(const struct store_search_key *keys, size_t nkeys,
    const char *msg, size_t len, const char *partmap);

/* 1 when hay (hlen bytes) contains needle, ASCII case ignored; else 0. */
int store_search_contains(const char *hay, size_t hlen, const char *needle,
    size_t nlen);

#endif
