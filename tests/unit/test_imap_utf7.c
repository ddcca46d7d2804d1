/* Unit tests for modified UTF-7 and mailbox-name checks. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"
#include "check.h"

static char *
dec(const char *s)
{
	char *out;

	return imap_utf7_decode(s, strlen(s), &out) == 0 ? out : strdup("ERR");
}

static char *
enc(const char *s)
{
	char *out;

	return imap_utf7_encode(s, strlen(s), &out) == 0 ? out : strdup("ERR");
}

static void
expect_dec(const char *in, const char *want)
{
	char *got = dec(in);

	CHECK_STR(got, want);
	free(got);
}

/* Both ways: in UTF-8 encodes to utf7, which decodes back to it. */
static void
round_trip(const char *utf8, const char *utf7)
{
	char *e = enc(utf8), *d = dec(utf7);

	CHECK_STR(e, utf7);
	CHECK_STR(d, utf8);
	free(e);
	free(d);
}

static void
test_rfc_example(void)
{
	/* RFC 3501 section 5.1.3: "~peter/mail/" + Japanese names. */
	round_trip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
}

static void
test_round_trips(void)
{
	round_trip("", "");
	round_trip("INBOX", "INBOX");
	round_trip("&", "&-");
	round_trip("a&b&&", "a&-b&-&-");
	round_trip("caf\xc3\xa9", "caf&AOk-");
	round_trip("\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-");
	/* Outside the BMP: a surrogate pair (U+1F600). */
	round_trip("\xf0\x9f\x98\x80", "&2D3eAA-");
	round_trip("x\xe2\x82\xac\xe2\x82\xac", "x&IKwgrA-");
	round_trip("\xc3\xa9&", "&AOk-&-");
}

static void
test_decode_strict(void)
{
	expect_dec("&", "ERR");          /* unterminated shift */
	expect_dec("&AOk", "ERR");       /* unterminated */
	expect_dec("&AOk-&AOk-", "ERR"); /* back-to-back shifts */
	expect_dec("&AOl-", "ERR");      /* non-zero padding bits */
	expect_dec("&AOkA-", "ERR");     /* 6 or more padding bits */
	expect_dec("&AGE-", "ERR");      /* encoded "a" */
	expect_dec("&ACY-", "ERR");      /* encoded "&" */
	expect_dec("&2D0-", "ERR");      /* lone high surrogate */
	expect_dec("&3gA-", "ERR");      /* lone low surrogate */
	expect_dec("&2D3YPQ-", "ERR");   /* high followed by high */
	expect_dec("&AO/-", "ERR");      /* "/" is not modified base64 */
	expect_dec("&A=k-", "ERR");
	expect_dec("caf\xc3\xa9", "ERR"); /* raw 8-bit */
	expect_dec("a\tb", "ERR");
	expect_dec("&-&-", "&&");
	expect_dec("&AOk-x&AOk-", "\xc3\xa9x\xc3\xa9");
}

static void
test_encode_invalid(void)
{
	char *s;

	s = enc("\xc3");
	CHECK_STR(s, "ERR");
	free(s);
	s = enc("\xc0\x80"); /* overlong */
	CHECK_STR(s, "ERR");
	free(s);
	s = enc("\xed\xa0\x80"); /* surrogate */
	CHECK_STR(s, "ERR");
	free(s);
	s = enc("\xf4\x90\x80\x80"); /* above U+10FFFF */
	CHECK_STR(s, "ERR");
	free(s);
	CHECK_INT(imap_utf7_encode("a\0b", 3, &s), -1);
}

static void
test_utf8_valid(void)
{
	CHECK(imap_utf7_valid_utf8((const unsigned char *)"", 0));
	CHECK(imap_utf7_valid_utf8((const unsigned char *)"\xe2\x82\xac", 3));
	CHECK(!imap_utf7_valid_utf8((const unsigned char *)"\xe2\x82", 2));
	CHECK(!imap_utf7_valid_utf8((const unsigned char *)"\xe0\x80\x80", 3));
	CHECK(!imap_utf7_valid_utf8((const unsigned char *)"\xff", 1));
}

static int
mbox(const char *s)
{
	return imap_utf7_mailbox_valid(s, strlen(s));
}

static void
test_mailbox(void)
{
	CHECK(mbox("INBOX"));
	CHECK(mbox("a/b/c"));
	CHECK(mbox("caf\xc3\xa9/x"));
	CHECK(mbox("a.b/..c"));
	CHECK(!mbox(""));
	CHECK(!mbox("/a"));
	CHECK(!mbox("a/"));
	CHECK(!mbox("a//b"));
	CHECK(!mbox(".."));
	CHECK(!mbox("a/../b"));
	CHECK(!mbox("a/."));
	CHECK(!mbox("a\tb"));
	CHECK(!mbox("a\x7f"));
	CHECK(!mbox("a\xc2\x85"));
	CHECK(!mbox("a\xff"));
	CHECK(!imap_utf7_mailbox_valid("a\0b", 3));
}

int
main(void)
{
	CHECK_RUN(test_rfc_example);
	CHECK_RUN(test_round_trips);
	CHECK_RUN(test_decode_strict);
	CHECK_RUN(test_encode_invalid);
	CHECK_RUN(test_utf8_valid);
	CHECK_RUN(test_mailbox);
	return check_summary();
}
