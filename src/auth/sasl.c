/*
 * SASL PLAIN (RFC 4616 section 2) and LOGIN client responses: strict
 * base64 decoding, then the message grammar (UTF-8, NUL separators,
 * non-empty authcid and passwd) with a bound on each field.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "base/base64.h"
#include "base/xmalloc.h"

/* Longest authzid, authcid, passwd or LOGIN step we accept, in bytes. */
#define SASL_FIELD_MAX 1024
/* Three fields and two NULs, as base64. */
#define SASL_PLAIN_B64_MAX ((3 * SASL_FIELD_MAX + 2 + 2) / 3 * 4)

/* Length of the UTF-8 sequence at p (at most len bytes), or 0 if invalid. */
static size_t
sasl_utf8_char(const unsigned char *p, size_t len)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* 1 when len bytes at s are valid UTF-8 without NUL. */
static int
sasl_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = s[i] == 0 ? 0 : sasl_utf8_char(s + i, len - i);

		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Decodes b64 into a new buffer of *n bytes; NULL when malformed. */
static unsigned char *
sasl_decode(const char *b64, size_t len, size_t max_b64, size_t *n)
{
	unsigned char *buf;
	long r;

	if (len > max_b64)
		return NULL;
	buf = xmalloc(len / 4 * 3 + 1);
	r = base64_decode(b64, len, buf);
	if (r < 0) {
		xfree_secret(buf, len / 4 * 3 + 1);
		return NULL;
	}
	*n = (size_t)r;
	return buf;
}

/* Copies one field, checking its bound and encoding; NULL if bad. */
static char *
sasl_field(const unsigned char *p, size_t len, int may_be_empty)
{
	if (len > SASL_FIELD_MAX || (len == 0 && !may_be_empty) ||
	    !sasl_utf8_valid(p, len))
		return NULL;
	return xstrndup((const char *)p, len);
}

int
sasl_plain_decode(const char *b64, size_t len, char **authzid, char **authcid,
    char **password)
{
	unsigned char *buf, *nul1, *nul2;
	size_t n;
	int ret = -1;

	*authzid = *authcid = *password = NULL;
	buf = sasl_decode(b64, len, SASL_PLAIN_B64_MAX, &n);
	if (buf == NULL)
		return -1;
	nul1 = memchr(buf, '\0', n);
	nul2 =
	    nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - buf)) : NULL;
	if (nul2 == NULL)
		goto out;
	/* The passwd field runs to the end: a third NUL fails its check. */
	*authzid = sasl_field(buf, (size_t)(nul1 - buf), 1);
	*authcid = sasl_field(nul1 + 1, (size_t)(nul2 - nul1 - 1), 0);
	*password = sasl_field(nul2 + 1, n - (size_t)(nul2 + 1 - buf), 0);
	if (*authzid != NULL && *authcid != NULL && *password != NULL)
		ret = 0;
out:
	xfree_secret(buf, len / 4 * 3 + 1);
	if (ret < 0) {
		free(*authzid);
		free(*authcid);
		xfree_secret_str(*password);
		*authzid = *authcid = *password = NULL;
	}
	return ret;
}

int
sasl_login_decode(const char *b64, size_t len, char **out)
{
	unsigned char *buf;
	size_t n;

	*out = NULL;
	buf = sasl_decode(b64, len, (SASL_FIELD_MAX + 2) / 3 * 4, &n);
	if (buf == NULL)
		return -1;
	*out = sasl_field(buf, n, 1);
	xfree_secret(buf, len / 4 * 3 + 1);
	return *out != NULL ? 0 : -1;
}
