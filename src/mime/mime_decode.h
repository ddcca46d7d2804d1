/*
 * Content-transfer decoding (RFC 2045 section 6: base64 and
 * quoted-printable; 7bit, 8bit and binary are identities) of one MIME
 * part, as FETCH BINARY (RFC 3516, RFC 9051 section 6.4.5) sends it. Pure
 * functions over bytes in memory.
 */
#ifndef MIME_MIME_DECODE_H
#define MIME_MIME_DECODE_H

#include <stddef.h>

#include "mime/mime.h"

enum mime_cte {
	MIME_CTE_IDENTITY, /* absent, 7bit, 8bit or binary */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN, /* anything else: RFC 3516 answers UNKNOWN-CTE */
};

/*
 * The encoding a Content-Transfer-Encoding value names (white space
 * around it and case ignored); NULL is the default, 7bit.
 */
enum mime_cte mime_decode_cte(const char *value);

/*
 * Appends the bytes that len characters of base64 at in stand for to out,
 * leniently (RFC 2045 section 6.8): characters outside the alphabet are
 * skipped and decoding stops at the first "=".
 */
void mime_decode_base64(const char *in, size_t len, struct mime_buf *out);

/*
 * Appends the quoted-printable text in (len bytes) decoded to out (RFC
 * 2045 section 6.7): "=XX" in either case becomes its byte, "=" before
 * the line end (trailing blanks allowed) is a soft line break and goes,
 * blanks before a hard line end go, and a malformed "=" stays as it is.
 */
void mime_decode_qp(const char *in, size_t len, struct mime_buf *out);

/*
 * Decodes the body of a part whose MIME header is hdr (hlen bytes; may be
 * empty) into out, as FETCH BINARY sends it: a multipart or message part
 * and an identity encoding come out as they stand. Returns 0, or -1 (out
 * untouched) when the encoding is unknown.
 */
int mime_decode_part(const char *hdr, size_t hlen, const char *body,
    size_t blen, struct mime_buf *out);

#endif
