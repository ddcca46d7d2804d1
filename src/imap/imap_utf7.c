/*
 * Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3; RFC 2152 base64
 * with ',' for '/'), UTF-8 validation (RFC 3629) and mailbox-name checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "mime/mime.h"
#include "imap/imap_utf7.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Reads one code point at s[*i]; returns it, or -1 when malformed. */
static int32_t
utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	int32_t cp, min;
	size_t n, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return -1;
	if (len - *i <= n)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return cp;
}

int
imap_utf7_valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len)
		if (utf8_next(s, len, &i) < 0)
			return 0;
	return 1;
}

static void
utf8_put(struct mime_buf *b, uint32_t cp)
{
	if (cp < 0x80) {
		mime_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		mime_buf_addc(b, (char)(0xc0 | cp >> 6));
		mime_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		mime_buf_addc(b, (char)(0xe0 | cp >> 12));
		mime_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		mime_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		mime_buf_addc(b, (char)(0xf0 | cp >> 18));
		mime_buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		mime_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		mime_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* Adds one UTF-16 unit of a shift; *hi holds a pending high surrogate. */
static int
utf7_unit(struct mime_buf *b, uint32_t u, uint32_t *hi)
{
	if (*hi != 0) {
		if (u < 0xdc00 || u > 0xdfff)
			return -1;
		utf8_put(b, 0x10000 + ((*hi - 0xd800) << 10) + (u - 0xdc00));
		*hi = 0;
		return 0;
	}
	if (u >= 0xd800 && u <= 0xdbff) {
		*hi = u;
		return 0;
	}
	/* Lone low surrogates, NUL and printable ASCII are not allowed. */
	if ((u >= 0xdc00 && u <= 0xdfff) || (u >= 0x20 && u <= 0x7e) || u == 0)
		return -1;
	utf8_put(b, u);
	return 0;
}

/*
 * Decodes the shift that starts at in[*i] (after "&") up to its "-";
 * returns 0 and moves *i past the "-", or -1.
 */
static int
utf7_shift(const char *in, size_t len, size_t *i, struct mime_buf *b)
{
	uint32_t bits = 0, hi = 0;
	unsigned nbits = 0;
	const char *q;

	for (; *i < len && in[*i] != '-'; (*i)++) {
		q = in[*i] != '\0' ? strchr(b64, in[*i]) : NULL;
		if (q == NULL)
			return -1;
		bits = (bits << 6) | (uint32_t)(q - b64);
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			if (utf7_unit(b, (bits >> nbits) & 0xffff, &hi) < 0)
				return -1;
		}
	}
	/* Unterminated, dangling surrogate, or non-zero/too long padding. */
	if (*i == len || hi != 0 || nbits >= 6 ||
	    (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	(*i)++;
	return 0;
}

int
imap_utf7_decode(const char *in, size_t len, char **out)
{
	struct mime_buf b = {0};
	size_t i = 0;
	int shifted = 0; /* the previous byte ended a non-empty shift */

	*out = NULL;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			mime_buf_addc(&b, (char)c);
			i++;
			shifted = 0;
			continue;
		}
		if (i + 1 < len && in[i + 1] == '-') {
			mime_buf_addc(&b, '&');
			i += 2;
			shifted = 0;
			continue;
		}
		i++;
		if (shifted || utf7_shift(in, len, &i, &b) < 0)
			goto fail;
		shifted = 1;
	}
	*out = mime_buf_finish(&b);
	return 0;
fail:
	free(b.data);
	return -1;
}

/* Writes UTF-16 units of code points s[*i]... while they are not ASCII. */
static int
utf7_encode_run(const unsigned char *s, size_t len, size_t *i,
    struct mime_buf *b)
{
	uint32_t bits = 0, units[2];
	unsigned nbits = 0, n, k;
	int32_t cp;

	mime_buf_addc(b, '&');
	while (*i < len && (s[*i] < 0x20 || s[*i] > 0x7e)) {
		if (s[*i] == 0 || (cp = utf8_next(s, len, i)) < 0)
			return -1;
		n = 1;
		units[0] = (uint32_t)cp;
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((uint32_t)(cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((uint32_t)(cp - 0x10000) & 0x3ff);
			n = 2;
		}
		for (k = 0; k < n; k++) {
			bits = (bits << 16) | units[k];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				mime_buf_addc(b, b64[(bits >> nbits) & 0x3f]);
			}
		}
	}
	if (nbits > 0)
		mime_buf_addc(b, b64[(bits << (6 - nbits)) & 0x3f]);
	mime_buf_addc(b, '-');
	return 0;
}

int
imap_utf7_encode(const char *in, size_t len, char **out)
{
	const unsigned char *s = (const unsigned char *)in;
	struct mime_buf b = {0};
	size_t i = 0;

	*out = NULL;
	while (i < len) {
		if (s[i] >= 0x20 && s[i] <= 0x7e) {
			if (s[i] == '&')
				mime_buf_adds(&b, "&-");
			else
				mime_buf_addc(&b, (char)s[i]);
			i++;
		} else if (utf7_encode_run(s, len, &i, &b) < 0) {
			free(b.data);
			return -1;
		}
	}
	*out = mime_buf_finish(&b);
	return 0;
}

/* One hierarchy component: not empty, not "." or "..". */
static int
mailbox_component_ok(const char *c, size_t n)
{
	return n > 0 && !(n == 1 && c[0] == '.') &&
	    !(n == 2 && c[0] == '.' && c[1] == '.');
}

int
imap_utf7_mailbox_valid(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, start = 0;
	int32_t cp;

	if (len == 0)
		return 0;
	while (i < len) {
		if (s[i] == '/') {
			if (!mailbox_component_ok(name + start, i - start))
				return 0;
			start = ++i;
			continue;
		}
		cp = utf8_next(s, len, &i);
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return 0;
	}
	return mailbox_component_ok(name + start, len - start);
}
