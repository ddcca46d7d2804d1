/*
 * Sequence sets (RFC 9051 section 9 "sequence-set", with "$" of RFC 5182
 * SEARCHRES): parsing, resolving against a mailbox, membership, iteration,
 * and formatting a compact set for COPYUID, ESEARCH ALL and VANISHED.
 */
#ifndef IMAP_IMAP_SEQSET_H
#define IMAP_IMAP_SEQSET_H

#include <stddef.h>
#include <stdint.h>

/* The most ranges a parsed set may hold; more is rejected. */
#define IMAP_SEQSET_MAX_RANGES 65536

/* first <= last once resolved; before, 0 stands for "*" and any order. */
struct imap_seq_range {
	uint32_t first;
	uint32_t last;
};

/*
 * A set of ranges. Zero-initialise it; imap_seqset_clear() frees it.
 * saved: the set was "$" (the saved SEARCH result); it holds no ranges and
 * the caller substitutes its saved set.
 */
struct imap_seqset {
	struct imap_seq_range *r;
	size_t n;
	int saved;
};

/*
 * Parses len bytes: seq-number / seq-range separated by ",", each number a
 * nz-number (1 to 4294967295) or "*", or the whole set "$". Returns 0 with
 * set filled (unresolved: as written, "*" as 0), or -1 (set left empty).
 */
int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set);

/*
 * Resolves a parsed set against max, the message count (uid == 0) or the
 * highest UID in use (uid != 0) into out: "*" becomes max, ranges are
 * ordered, sorted and merged. Message numbers: a number above max, or "*"
 * with max == 0, fails (BAD). UIDs: each range is clipped to 1..max, so
 * "n:*" always holds max when max > 0 and out may be empty. Returns 0, or
 * -1 (also for a "$" set). out is initialised by the call; in is unchanged.
 */
int imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, int uid,
    struct imap_seqset *out);

/*
 * Builds a resolved set from n numbers in any order (duplicates allowed);
 * zeros are ignored. out is initialised by the call.
 */
void imap_seqset_from_array(const uint32_t *nums, size_t n,
    struct imap_seqset *out);

/* For resolved sets: whether n is in set (binary search), 1 or 0. */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);

/* For resolved sets: how many numbers set holds. */
uint64_t imap_seqset_count(const struct imap_seqset *set);

/*
 * Iterates a resolved set in ascending order: zero-initialise it, then
 * imap_seqset_next() returns 1 with *n for each number, then 0.
 */
struct imap_seqset_iter {
	size_t range;
	uint64_t next;
};

int imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it,
    uint32_t *n);

/*
 * Formats a resolved set compactly ("1:3,7,9:12"); returns a new string
 * the caller frees ("" for an empty set).
 */
char *imap_seqset_format(const struct imap_seqset *set);

/*
 * Formats n numbers, keeping their order, with runs of consecutive
 * ascending numbers as ranges: for COPYUID, whose two sets must correspond
 * element by element. Returns a new string the caller frees.
 */
char *imap_seqset_format_array(const uint32_t *nums, size_t n);

void imap_seqset_clear(struct imap_seqset *set);

#endif
