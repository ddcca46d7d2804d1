/*
 * CONDSTORE and QRESYNC (RFC 7162) pieces shared by the IMAP commands: the
 * grammar of the SELECT parameters and STORE modifiers (section 7), the
 * CONDSTORE enabling rule (section 3.1), VANISHED (section 3.2.10) and the
 * expunges since a MODSEQ, from the view's window or the index.
 */
#ifndef IMAP_IMAP_CONDSTORE_H
#define IMAP_IMAP_CONDSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_seqset.h"
#include "store/store_view.h"

struct imap_arg;
struct imap_session;

/* The largest mod-sequence-value: a positive signed 63-bit number. */
#define IMAP_CONDSTORE_MODSEQ_MAX 9223372036854775807ull

/* The select-params of SELECT and EXAMINE (RFC 4466, RFC 7162). */
struct imap_condstore_select {
	int condstore; /* (CONDSTORE) */
	int qresync;   /* (QRESYNC (...)) */
	uint32_t uidvalidity;
	uint64_t modseq;
	int has_known;            /* known-uids was given */
	struct imap_seqset known; /* resolved, no "*" */
};

/*
 * Parses the optional select-params list that follows the mailbox name
 * (a == NULL: none): "(CONDSTORE)", "(QRESYNC (uidvalidity modseq
 * [known-uids [(known-sequence-set known-uid-set)]]))", or both. The
 * seq-match-data is checked and dropped: the index keeps every tombstone,
 * so it is never needed. Returns 0 with out filled (free it with
 * imap_condstore_select_clear()), or -1 with *error a static text for BAD.
 */
int imap_condstore_select_parse(const struct imap_arg *a,
    struct imap_condstore_select *out, const char **error);
void imap_condstore_select_clear(struct imap_condstore_select *p);

/*
 * Parses STORE's store-modifiers list "(UNCHANGEDSINCE n)" (n may be 0).
 * Returns 0 with *unchangedsince, or -1 with *error a static text for BAD.
 */
int imap_condstore_store_modifiers(const struct imap_arg *a,
    uint64_t *unchangedsince, const char **error);

/*
 * A CONDSTORE enabling command (RFC 7162 section 3.1) ran: turns CONDSTORE
 * on for the session; the first time, with a mailbox selected, also writes
 * "* OK [HIGHESTMODSEQ n]".
 */
void imap_condstore_enable(struct imap_session *s);

/*
 * Writes "* VANISHED [(EARLIER) ]set" for uids[0..n) (any order, sorted in
 * place), ranges compacted; nothing when n is 0.
 */
void imap_condstore_put_vanished(struct imap_session *s, int earlier,
    uint32_t *uids, size_t n);

/*
 * Gets the expunges of view's mailbox with MODSEQ above modseq: from the
 * view's window when it reaches back that far (cb runs before this
 * returns), else from the index's tombstones on the I/O pool (cb runs on
 * the loop thread later, with the view current up to the same commit). The
 * list is owned by the callee and valid during the call. view must stay
 * referenced until cb has run.
 */
void imap_condstore_expunged(struct store *store, const char *user,
    const struct store_view *view, uint64_t modseq, store_expunged_cb cb,
    void *arg);

#endif
