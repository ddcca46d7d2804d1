/*
 * The index side of IMAP SORT and THREAD (RFC 5256, RFC 5957): per-UID
 * sort and threading keys read from the cached index columns on the I/O
 * pool, in bounded chunks. The caller orders and threads them.
 */
#ifndef STORE_STORE_SORT_H
#define STORE_STORE_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_view.h"

/* One call reads at most this many rows; the caller asks for the rest. */
#define STORE_SORT_MAX_MSGS 1024

/*
 * The keys of one message. Strings are owned by the message (see
 * store_sort_msg_deinit()); a missing field is "" for the address keys and
 * NULL for the others.
 */
struct store_sort_msg {
	uint32_t uid;
	int missing; /* no such row (expunged meanwhile): no keys */
	uint64_t size;
	int64_t internaldate;
	int64_t date;  /* the Date: field, or INTERNALDATE without one */
	char *subject; /* decoded (RFC 2047) */
	/* addr-mailbox (local part) of the first address, lower case */
	char *from, *to, *cc;
	/* RFC 5957: the decoded display-name of the first From / To
	 * address, or its addr-spec (lower case) when it has none */
	char *display_from, *display_to;
	char *message_id, *in_reply_to, *references; /* raw field values */
};

/*
 * msgs[0..n) for the first n UIDs asked for, in their order. status is
 * STORE_VIEW_IO (n 0) on failure. A caller that keeps messages moves
 * them out and sets n to 0 before freeing the result.
 */
struct store_sort_result {
	struct store_sort_msg *msgs;
	size_t n;
	enum store_view_status status;
};

/* Gets the result, which the callee owns (store_sort_result_free()). */
typedef void (*store_sort_cb)(struct store_sort_result *res, void *arg);

/*
 * Reads the keys of uids[0..n) of user's mailbox mailbox_id as a user task
 * on the I/O pool, at most STORE_SORT_MAX_MSGS per call (uids is copied).
 * cb runs on the loop thread, never before this returns, exactly once.
 */
void store_sort(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, store_sort_cb cb, void *arg);

/* Frees the strings of one message. */
void store_sort_msg_deinit(struct store_sort_msg *m);

/* Frees a result (messages 0..n) and sets *res to NULL; accepts NULL. */
void store_sort_result_free(struct store_sort_result **res);

/*
 * Exported for tests: the RFC 5957 display value of the first address of
 * the address list that is item field (2 From, 5 To) of an ENVELOPE
 * string (RFC 3501 section 7.4.2), as a new string, or NULL when the
 * field is NIL or the envelope does not parse.
 */
char *store_sort_display(const char *envelope, int field);

#endif
