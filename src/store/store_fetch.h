/*
 * Reading messages for IMAP FETCH (RFC 3501 section 6.4.5, RFC 9051
 * section 6.4.5): the cached index columns (sizes, INTERNALDATE, ENVELOPE,
 * BODY, BODYSTRUCTURE, the part map) and, when asked, the message file,
 * read on the I/O pool in bounded chunks. The implicit \Seen that FETCH
 * BODY[] sets is in store_flags.h, included here.
 */
#ifndef STORE_STORE_FETCH_H
#define STORE_STORE_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/store_flags.h"
#include "store/store_view.h"

/* What store_fetch() reads, as bits of its what argument. */
#define STORE_FETCH_ENVELOPE 0x01
#define STORE_FETCH_BODY 0x02
#define STORE_FETCH_BODYSTRUCTURE 0x04
#define STORE_FETCH_PARTMAP 0x08
#define STORE_FETCH_DATA 0x10 /* the whole message file */

/* One call reads at most this many messages ... */
#define STORE_FETCH_MAX_MSGS 256
/* ... and stops adding files once their bytes reach this (at least one). */
#define STORE_FETCH_MAX_BYTES (4u << 20)

/* How one BINARY section (RFC 3516) of a message came out. */
enum store_fetch_binary_status {
	STORE_FETCH_BINARY_OK = 0,
	STORE_FETCH_BINARY_NOPART,      /* the message has no such part */
	STORE_FETCH_BINARY_UNKNOWN_CTE, /* RFC 3516: NO [UNKNOWN-CTE] */
};

/* The content of one BINARY section, content-transfer-decoded. */
struct store_fetch_binary {
	enum store_fetch_binary_status status;
	char *data; /* len bytes, may hold NUL; NULL when len is 0 */
	size_t len;
};

/*
 * One message. Sizes and dates are always filled for a message found;
 * strings are NULL unless asked for (or not cached). missing: the index
 * has no such UID, or its file could not be read (RFC 2180 section
 * 4.1.3: the caller answers NO for it).
 */
struct store_fetch_msg {
	uint32_t uid;
	int missing;
	uint64_t size; /* RFC822.SIZE: the file's bytes */
	time_t internaldate;
	size_t prefix_size; /* bytes before the message as received */
	size_t header_size; /* header bytes of the file, prefix included */
	char *envelope;
	char *body;
	char *bodystructure;
	char *partmap; /* offsets count from prefix_size on */
	char *data;    /* STORE_FETCH_DATA: the file, len bytes */
	size_t len;
	/* store_fetch_sections(): one per section asked for, in order. */
	struct store_fetch_binary *binary;
};

/*
 * The answer: msgs[0..n) for the first n UIDs asked for, in their order
 * (n may be less than asked: the caller asks again for the rest). status
 * is STORE_VIEW_IO when the index could not be read (n is then 0).
 */
struct store_fetch_result {
	struct store_fetch_msg *msgs;
	size_t n;
	size_t nbinary; /* entries of each found message's binary */
	enum store_view_status status;
};

/* Gets the result, which the callee owns (store_fetch_result_free()). */
typedef void (*store_fetch_cb)(struct store_fetch_result *res, void *arg);

/*
 * Reads the messages uids[0..n) of user's mailbox mailbox_id (what: the
 * STORE_FETCH_* bits) as a user task on the I/O pool, at most
 * STORE_FETCH_MAX_MSGS of them and, with STORE_FETCH_DATA, files of about
 * STORE_FETCH_MAX_BYTES. uids is copied. cb runs on the loop thread,
 * never before this returns, exactly once.
 */
void store_fetch(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, unsigned what, store_fetch_cb cb,
    void *arg);

/*
 * store_fetch() that also decodes sections for FETCH BINARY (RFC 3516
 * section 4.2) on the I/O pool: binary[0..nbinary) are part paths ("1.2";
 * "" is the whole message, as it stands), or NULL for a slot left empty.
 * Each message found gets binary[i] decoded into msg->binary[i]: base64
 * and quoted-printable decoded, identity encodings and multipart or
 * message parts as they stand. what gains STORE_FETCH_DATA and
 * STORE_FETCH_PARTMAP; decoded bytes count toward STORE_FETCH_MAX_BYTES.
 * binary is copied.
 */
void store_fetch_sections(struct store *store, const char *user,
    int64_t mailbox_id, const uint32_t *uids, size_t n, unsigned what,
    const char *const *binary, size_t nbinary, store_fetch_cb cb, void *arg);

/* Frees a result and sets *res to NULL; accepts NULL. */
void store_fetch_result_free(struct store_fetch_result **res);

#endif
