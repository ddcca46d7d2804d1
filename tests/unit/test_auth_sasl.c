/* Unit tests for SASL PLAIN (RFC 4616) and LOGIN response decoding. */
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "base/base64.h"
#include "base/xmalloc.h"
#include "check.h"

/* Encodes len bytes of raw into a new base64 string. */
static char *
enc(const char *raw, size_t len)
{
	char *out = xmalloc(base64_encoded_size(len));

	base64_encode(raw, len, out);
	return out;
}

/* Decodes a PLAIN message of len raw bytes; returns sasl's result. */
static int
plain(const char *raw, size_t len, char **z, char **c, char **p)
{
	char *b64 = enc(raw, len);
	int r = sasl_plain_decode(b64, strlen(b64), z, c, p);

	free(b64);
	return r;
}

static void
test_plain_good(void)
{
	char *z, *c, *p;

	/* RFC 4616 section 4 examples. */
	CHECK_INT(plain("\0tim\0tanstaaftanstaaf", 21, &z, &c, &p), 0);
	CHECK_STR(z, "");
	CHECK_STR(c, "tim");
	CHECK_STR(p, "tanstaaftanstaaf");
	free(z);
	free(c);
	xfree_secret_str(p);
	CHECK_INT(plain("Ursel\0Kurt\0xipj3plmq", 20, &z, &c, &p), 0);
	CHECK_STR(z, "Ursel");
	CHECK_STR(c, "Kurt");
	CHECK_STR(p, "xipj3plmq");
	free(z);
	free(c);
	xfree_secret_str(p);
	/* UTF-8 in the password. */
	CHECK_INT(plain("\0a@b\0p\xc3\xa4ss", 10, &z, &c, &p), 0);
	CHECK_STR(p, "p\xc3\xa4ss");
	free(z);
	free(c);
	xfree_secret_str(p);
}

static void
test_plain_bad(void)
{
	static const struct {
		const char *raw;
		size_t len;
	} bad[] = {
	    {"", 0},                     /* empty */
	    {"tim", 3},                  /* no NUL */
	    {"\0tim", 4},                /* one NUL */
	    {"\0tim\0pw\0", 8},          /* three NULs */
	    {"\0\0pw", 4},               /* empty authcid */
	    {"\0tim\0", 5},              /* empty password */
	    {"\0tim\0p\xc3", 7},         /* truncated UTF-8 */
	    {"\0tim\0p\xc0\xafw", 9},    /* overlong UTF-8 */
	    {"\0t\xed\xa0\x80m\0pw", 9}, /* surrogate */
	    {"\xff\0tim\0pw", 8},        /* bad byte in authzid */
	};

	char *z, *c, *p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (plain(bad[i].raw, bad[i].len, &z, &c, &p) != -1)
			CHECK_FAIL("accepted case %zu", i);
		CHECK(z == NULL && c == NULL && p == NULL);
	}
	/* Not base64 at all, and missing padding. */
	CHECK_INT(sasl_plain_decode("AHRpbQB0", 7, &z, &c, &p), -1);
	CHECK_INT(sasl_plain_decode("AHRp bQB0", 9, &z, &c, &p), -1);
}

static void
test_plain_bounds(void)
{
	char raw[2 + 1024 + 1 + 1025], *z, *c, *p;

	/* A 1024-byte password fits, 1025 bytes do not. */
	memset(raw, 'x', sizeof(raw));
	raw[0] = '\0';
	raw[5] = '\0';
	CHECK_INT(plain(raw, 6 + 1024, &z, &c, &p), 0);
	CHECK_INT(strlen(p), 1024);
	free(z);
	free(c);
	xfree_secret_str(p);
	CHECK_INT(plain(raw, 6 + 1025, &z, &c, &p), -1);
	/* An overlong authcid. */
	raw[5] = 'x';
	raw[1 + 1025] = '\0';
	CHECK_INT(plain(raw, 1 + 1025 + 1 + 3, &z, &c, &p), -1);
}

static void
test_login(void)
{
	char *out, big[4 * 400 + 1];

	CHECK_INT(sasl_login_decode("dGlt", 4, &out), 0);
	CHECK_STR(out, "tim");
	free(out);
	CHECK_INT(sasl_login_decode("", 0, &out), 0);
	CHECK_STR(out, "");
	free(out);
	CHECK_INT(sasl_login_decode("dGlt=", 5, &out), -1);
	CHECK(out == NULL);
	CHECK_INT(sasl_login_decode("AHRpbQ==", 8, &out), -1); /* NUL */
	/* "QUFB" is "AAA": 1023 bytes fit, 1200 do not. */
	for (int i = 0; i < 400; i++)
		memcpy(big + 4 * i, "QUFB", 4);
	CHECK_INT(sasl_login_decode(big, 4 * 341, &out), 0);
	CHECK_INT(strlen(out), 1023);
	free(out);
	CHECK_INT(sasl_login_decode(big, 4 * 400, &out), -1);
}

int
main(void)
{
	CHECK_RUN(test_plain_good);
	CHECK_RUN(test_plain_bad);
	CHECK_RUN(test_plain_bounds);
	CHECK_RUN(test_login);
	return check_summary();
}
