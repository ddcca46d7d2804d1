/*
 * Parsing a message once, at delivery: the IMAP ENVELOPE, BODY and
 * BODYSTRUCTURE (RFC 3501 section 7.4.2) as the exact strings FETCH sends,
 * decoded header fields for SEARCH, SORT and THREAD, and the map of MIME
 * parts that BODY[section] needs. Pure functions over a message in memory.
 */
#ifndef MIME_MIME_H
#define MIME_MIME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mime_info {
	char *envelope;      /* "(date subject from sender ... message-id)" */
	char *body;          /* BODY: the non-extensible structure */
	char *bodystructure; /* BODYSTRUCTURE, with extension data */
	/*
	 * The part map: for each part, in depth-first order, its section
	 * path and byte offsets in the message (header start, body start,
	 * end), serialised as text so the store can cache it. See
	 * mime_partmap_find().
	 */
	char *partmap;
	/* Decoded (RFC 2047, to UTF-8) header values; NULL when absent. */
	char *subject;
	char *from; /* the addr-specs, comma-separated, lower case */
	char *to;
	char *cc;
	char *message_id;
	char *in_reply_to;
	char *references;
	time_t date;        /* from the Date field, or -1 */
	size_t header_size; /* bytes up to and including the empty line */
	uint32_t lines;     /* lines in the whole message */
};

/*
 * Parses len bytes at msg (CRLF line ends expected, bare LF tolerated).
 * Never fails on malformed input: what cannot be parsed is described as
 * RFC 3501 says (text/plain defaults, NIL fields). Bounded depth and part
 * count. Fills out, which the caller frees with mime_info_deinit().
 */
void mime_parse(const char *msg, size_t len, struct mime_info *out);
void mime_info_deinit(struct mime_info *info);

/*
 * Finds a section ("1.2", "" for the whole message) in a part map. Sets the
 * offsets of its header and body and returns 0, or -1 if there is none.
 */
int mime_partmap_find(const char *partmap, const char *section,
    size_t *header_start, size_t *body_start, size_t *end);

#endif
