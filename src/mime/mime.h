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
 * The part map is text, one line per entity, each "SECTION HDR BODY END"
 * or, for a message/rfc822 part, "SECTION HDR BODY END TEXT": decimal byte
 * offsets into the message. HDR is where the entity's MIME header starts,
 * BODY where its body starts, END where it ends (exclusive); TEXT is where
 * the body of the encapsulated message starts. The whole message is the
 * first line, with SECTION "0". Section numbers follow RFC 3501 section
 * 6.4.5: a non-multipart message (or encapsulated message) has its body as
 * part "1" (whose MIME header is the message header); the parts of a
 * message/rfc822 part "2" are "2.1", "2.2"...
 */

/*
 * Finds a section ("1.2", "" for the whole message) in a part map. Sets the
 * offsets of its header and body and returns 0, or -1 if there is none.
 * For "" the header is the message header; otherwise it is the part's MIME
 * header (BODY[1.2.MIME]) and the body is BODY[1.2].
 */
int mime_partmap_find(const char *partmap, const char *section,
    size_t *header_start, size_t *body_start, size_t *end);

/*
 * For "" (the whole message) or a section that is a message/rfc822 part,
 * sets the offsets of the message's header (BODY[2.HEADER] runs from
 * header_start to text_start) and text (BODY[2.TEXT], from text_start to
 * end) and returns 0; returns -1 for any other section.
 */
int mime_partmap_find_message(const char *partmap, const char *section,
    size_t *header_start, size_t *text_start, size_t *end);

/*
 * Helpers the mime files share, exported because the IMAP layer needs the
 * same rules (string quoting, header fields, dates).
 */

/* A growable byte string; zero-initialise it, free data when done. */
struct mime_buf {
	char *data; /* NUL-terminated once anything was added */
	size_t len;
	size_t cap;
};

void mime_buf_add(struct mime_buf *buf, const void *p, size_t len);
void mime_buf_adds(struct mime_buf *buf, const char *s);
void mime_buf_addc(struct mime_buf *buf, char c);
void mime_buf_printf(struct mime_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the string (never NULL, "" if empty); buf is empty afterwards. */
char *mime_buf_finish(struct mime_buf *buf);

/*
 * Appends s (len bytes) as an IMAP string (RFC 3501 section 4.3): a quoted
 * string, with \ and " escaped, when it is at most 1024 bytes of 7-bit
 * text without CR, LF or NUL; otherwise a literal "{n}\r\n" followed by the
 * bytes, NUL bytes dropped. mime_buf_add_nstring writes NIL for s == NULL.
 */
void mime_buf_add_string(struct mime_buf *buf, const char *s, size_t len);
void mime_buf_add_nstring(struct mime_buf *buf, const char *s);

/* A parameter list, as parsed from Content-Type or Content-Disposition. */
struct mime_param {
	char *name;  /* upper case; "NAME*" for an RFC 2231 extended value */
	char *value; /* unquoted; an extended value stays percent-encoded */
};

struct mime_params {
	struct mime_param *v;
	size_t n;
};

/*
 * Parses a Content-Type or Content-Disposition value (RFC 2045 section 5.1,
 * RFC 2183): returns the part before the first ";" with white space and
 * comments removed, as a new string, and fills params with the parameters,
 * RFC 2231 continuations (section 3) joined in order. At most 64 parameters
 * are kept. Free params with mime_param_deinit().
 */
char *mime_param_parse(const char *value, struct mime_params *params);
/* Returns the value of the parameter name (upper case), or NULL. */
const char *mime_param_get(const struct mime_params *params, const char *name);
void mime_param_deinit(struct mime_params *params);

/* One header field as it stands in the message. */
struct mime_header_field {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	const char *value; /* after the colon, still folded, no final EOL */
	size_t value_len;
};

/*
 * Returns the length of the header that starts msg: up to and including
 * the first empty line (CRLF or bare LF), or len when there is none.
 */
size_t mime_header_size(const char *msg, size_t len);

/*
 * Steps through the fields of a header of len bytes: starts with *pos = 0,
 * fills field and returns 1 for each field, 0 at the end. Lines without a
 * colon are skipped.
 */
int mime_header_next(const char *hdr, size_t len, size_t *pos,
    struct mime_header_field *field);

/*
 * Returns the value of the first field called name (case-insensitive),
 * unfolded (CR and LF removed) with white space trimmed at both ends, as a
 * new string the caller frees, or NULL if the header has no such field.
 */
char *mime_header_get(const char *hdr, size_t len, const char *name);

/* Returns value unfolded and trimmed, as a new string. */
char *mime_header_unfold(const char *value, size_t len);

/*
 * Returns a header value with RFC 2047 encoded words decoded, as a new
 * UTF-8 string: other charsets are converted with iconv, bytes that are
 * not valid in their charset (or, outside encoded words, not valid UTF-8)
 * become U+FFFD. Encoded words separated only by white space are joined.
 */
char *mime_rfc2047_decode(const char *value, size_t len);

/*
 * Parses an RFC 5322 date-time (section 3.3, with the obsolete forms of
 * section 4.3: two-digit years, alphabetic zones, comments). Sets *out to
 * the UTC time and, if tz_minutes is not NULL, *tz_minutes to the zone's
 * offset east of UTC; returns 0, or -1 if s is not a date.
 */
int mime_date_parse(const char *s, time_t *out, int *tz_minutes);

/*
 * Parses an address list (RFC 5322 section 3.4, with groups) and appends it
 * to env as an RFC 3501 envelope address list: "((name adl mailbox host)
 * ...)", group start (NIL NIL "group" NIL) and end (NIL NIL NIL NIL), or
 * NIL when it holds no address. If specs is not NULL, appends the
 * addr-specs, lower case and comma-separated, to it. Returns the number of
 * addresses written.
 */
int mime_envelope_addresses(const char *value, size_t len, struct mime_buf *env,
    struct mime_buf *specs);

/*
 * Appends the RFC 3501 ENVELOPE of the header hdr (len bytes) to env.
 */
void mime_envelope_build(const char *hdr, size_t len, struct mime_buf *env);

#endif
