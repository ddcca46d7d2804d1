/*
 * Decoding of header text for search and sort: RFC 2047 encoded words
 * (sections 2 to 6, with the RFC 2231 section 5 language suffix) converted
 * to UTF-8 with iconv; anything undecodable becomes U+FFFD.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/xmalloc.h"
#include "mime/mime.h"

#define MIME_RFC2047_REPLACEMENT "\xef\xbf\xbd"

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
mime_rfc2047_utf8_len(const unsigned char *s, size_t len)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Appends s, replacing bytes that are not valid UTF-8 (and NUL). */
static void
mime_rfc2047_add_utf8(struct mime_buf *out, const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = mime_rfc2047_utf8_len((const unsigned char *)s + i,
		    len - i);
		if (n == 0 || s[i] == '\0') {
			mime_buf_adds(out, MIME_RFC2047_REPLACEMENT);
			i++;
			continue;
		}
		mime_buf_add(out, s + i, n);
		i += n;
	}
}

static int
mime_rfc2047_is_utf8(const char *charset)
{
	return strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "utf8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0 ||
	    strcasecmp(charset, "ascii") == 0;
}

/* Converts len bytes in charset to UTF-8 and appends them. */
static void
mime_rfc2047_convert(struct mime_buf *out, const char *charset, const char *s,
    size_t len)
{
	iconv_t cd;
	char tmp[256], *in = (char *)s, *o;
	size_t left = len, room;

	if (mime_rfc2047_is_utf8(charset) ||
	    (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		mime_rfc2047_add_utf8(out, s, len);
		return;
	}
	while (left > 0) {
		o = tmp;
		room = sizeof(tmp);
		if (iconv(cd, &in, &left, &o, &room) == (size_t)-1 &&
		    errno != E2BIG) {
			/* EILSEQ or EINVAL: one bad byte, then go on. */
			mime_rfc2047_add_utf8(out, tmp, (size_t)(o - tmp));
			mime_buf_adds(out, MIME_RFC2047_REPLACEMENT);
			in++;
			left--;
			iconv(cd, NULL, NULL, NULL, NULL);
			continue;
		}
		mime_rfc2047_add_utf8(out, tmp, (size_t)(o - tmp));
	}
	iconv_close(cd);
}

static int
mime_rfc2047_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the Q encoding (RFC 2047 section 4.2) in place; returns length. */
static size_t
mime_rfc2047_q(char *s, size_t len)
{
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] == '_') {
			s[n++] = ' ';
		} else if (s[i] == '=' && i + 2 < len &&
		    (hi = mime_rfc2047_hex(s[i + 1])) >= 0 &&
		    (lo = mime_rfc2047_hex(s[i + 2])) >= 0) {
			s[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			s[n++] = s[i];
		}
	}
	return n;
}

/* Decodes base64 in place, ignoring anything else; returns the length. */
static size_t
mime_rfc2047_b(char *s, size_t len)
{
	size_t i, n = 0;
	uint32_t acc = 0;
	int bits = 0, v;

	for (i = 0; i < len; i++) {
		if ((v = base64_value((unsigned char)s[i])) < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[n++] = (char)(acc >> bits & 0xff);
		}
	}
	return n;
}

/* One encoded word, "=?charset?e?text?=", found in a header value. */
struct mime_rfc2047_word {
	const char *charset;
	size_t charset_len;
	char encoding;
	const char *text;
	size_t text_len;
	size_t end; /* offset just past "?=" */
};

static int
mime_rfc2047_word(const char *s, size_t len, size_t pos,
    struct mime_rfc2047_word *w)
{
	size_t i = pos + 2;

	if (pos + 2 > len || s[pos] != '=' || s[pos + 1] != '?')
		return 0;
	w->charset = s + i;
	while (i < len && s[i] != '?' && s[i] != ' ' && s[i] != '\t')
		i++;
	w->charset_len = (size_t)(s + i - w->charset);
	if (w->charset_len == 0 || i + 3 > len || s[i + 2] != '?')
		return 0;
	w->encoding = s[i + 1];
	if (w->encoding != 'b' && w->encoding != 'B' && w->encoding != 'q' &&
	    w->encoding != 'Q')
		return 0;
	i += 3;
	w->text = s + i;
	while (i < len && s[i] != '?' && s[i] != ' ' && s[i] != '\t')
		i++;
	if (i + 2 > len || s[i] != '?' || s[i + 1] != '=')
		return 0;
	w->text_len = (size_t)(s + i - w->text);
	w->end = i + 2;
	return 1;
}

/*
 * Decoded bytes of adjacent encoded words in one charset, converted
 * together so that a character split across two words survives.
 */
struct mime_rfc2047_pending {
	char charset[64];
	struct mime_buf bytes;
};

static void
mime_rfc2047_flush(struct mime_buf *out, struct mime_rfc2047_pending *pend)
{
	if (pend->bytes.len > 0)
		mime_rfc2047_convert(out, pend->charset, pend->bytes.data,
		    pend->bytes.len);
	pend->bytes.len = 0;
}

static void
mime_rfc2047_add_word(struct mime_buf *out, struct mime_rfc2047_pending *pend,
    const struct mime_rfc2047_word *w)
{
	char charset[sizeof(pend->charset)];
	size_t n = w->charset_len, start = pend->bytes.len;
	const char *star = memchr(w->charset, '*', n);

	/* RFC 2231 section 5: "charset*language". */
	if (star != NULL)
		n = (size_t)(star - w->charset);
	if (n >= sizeof(charset))
		n = sizeof(charset) - 1;
	memcpy(charset, w->charset, n);
	charset[n] = '\0';
	if (strcasecmp(charset, pend->charset) != 0) {
		mime_rfc2047_flush(out, pend);
		memcpy(pend->charset, charset, n + 1);
		start = 0;
	}
	mime_buf_add(&pend->bytes, w->text, w->text_len);
	if (w->encoding == 'b' || w->encoding == 'B')
		n = mime_rfc2047_b(pend->bytes.data + start, w->text_len);
	else
		n = mime_rfc2047_q(pend->bytes.data + start, w->text_len);
	pend->bytes.len = start + n;
}

static int
mime_rfc2047_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	}
	return 1;
}

char *
mime_rfc2047_decode(const char *value, size_t len)
{
	char *s = mime_header_unfold(value, len);
	struct mime_rfc2047_pending pend = {.charset = ""};
	struct mime_buf out = {0};
	struct mime_rfc2047_word w;
	size_t i = 0, raw = 0, n = strlen(s);
	int after_word = 0;

	while (i < n) {
		if (!mime_rfc2047_word(s, n, i, &w)) {
			i++;
			continue;
		}
		if (!after_word || !mime_rfc2047_blank(s + raw, i - raw)) {
			mime_rfc2047_flush(&out, &pend);
			mime_rfc2047_add_utf8(&out, s + raw, i - raw);
		}
		mime_rfc2047_add_word(&out, &pend, &w);
		i = raw = w.end;
		after_word = 1;
	}
	mime_rfc2047_flush(&out, &pend);
	mime_rfc2047_add_utf8(&out, s + raw, n - raw);
	free(pend.bytes.data);
	free(s);
	return mime_buf_finish(&out);
}
