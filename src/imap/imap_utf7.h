/*
 * Mailbox names: modified UTF-7 (RFC 3501 section 5.1.3) to and from UTF-8
 * with strict validation, UTF-8 validity (RFC 3629) and the mailbox-name
 * rules we enforce for the hierarchy separator '/'.
 */
#ifndef IMAP_IMAP_UTF7_H
#define IMAP_IMAP_UTF7_H

#include <stddef.h>

/*
 * Decodes len bytes of modified UTF-7 into UTF-8. Strict: only printable
 * ASCII on input; "&-" for "&"; every shift ends with "-"; no empty or
 * back-to-back shifts; no NUL or printable ASCII encoded in a shift; base64
 * padding bits must be zero and fewer than 6; surrogates must pair. Returns 0
 * with *out (NUL-terminated, the caller frees it), or -1.
 */
int imap_utf7_decode(const char *in, size_t len, char **out);

/*
 * Encodes len bytes of UTF-8 as modified UTF-7 (the canonical form, which
 * imap_utf7_decode() accepts). Returns 0 with *out (the caller frees it), or
 * -1 when the input is not valid UTF-8 or holds a NUL.
 */
int imap_utf7_encode(const char *in, size_t len, char **out);

/*
 * Whether len bytes are well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). NUL is valid here. Returns 1 or 0.
 */
int imap_utf7_valid_utf8(const unsigned char *s, size_t len);

/*
 * Whether a UTF-8 mailbox name (as the client meant it, after decoding)
 * is acceptable: valid UTF-8, not empty, no control characters (C0, DEL,
 * C1), no empty hierarchy component (so no leading, trailing or doubled
 * '/'), and no "." or ".." component. Returns 1 or 0.
 */
int imap_utf7_mailbox_valid(const char *name, size_t len);

#endif
