/*
 * Unit tests for the pure matchers of store_search.c: case-insensitive
 * substrings, header fields (folded, RFC 2047), and body text in plain,
 * quoted-printable and base64 parts, found through the MIME part map.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mime/mime.h"
#include "store/store_search.h"

static uint64_t
match(const char *msg, const struct store_search_key *keys, size_t n)
{
	struct mime_info info;
	uint64_t bits;

	memset(&info, 0, sizeof(info));
	mime_parse(msg, strlen(msg), &info);
	bits = store_search_message(keys, n, msg, strlen(msg), info.partmap);
	mime_info_deinit(&info);
	return bits;
}

static struct store_search_key
key(enum store_search_kind kind, const char *field, const char *str)
{
	struct store_search_key k;

	memset(&k, 0, sizeof(k));
	k.kind = kind;
	k.field = field;
	k.str = str;
	k.len = strlen(str);
	return k;
}

static void
test_contains(void)
{
	CHECK_INT(store_search_contains("Hello World", 11, "world", 5), 1);
	CHECK_INT(store_search_contains("Hello", 5, "", 0), 1);
	CHECK_INT(store_search_contains("Hel", 3, "hello", 5), 0);
	CHECK_INT(store_search_contains("a\0b", 3, "B", 1), 1);
}

static void
test_headers(void)
{
	const char *msg = "From: Alice <a@example.org>\r\n"
	                  "Subject: =?ISO-8859-1?Q?K=F6ln?= trip\r\n"
	                  "X-Long: first\r\n second\r\n\r\nbody\r\n";
	struct store_search_key k[] = {
	    key(STORE_SEARCH_HEADER, "FROM", "ALICE"),
	    key(STORE_SEARCH_HEADER, "SUBJECT", "k\xc3\xb6ln TRIP"),
	    key(STORE_SEARCH_HEADER, "X-LONG", "first second"),
	    key(STORE_SEARCH_HEADER, "CC", ""),
	    key(STORE_SEARCH_HEADER, "SUBJECT", ""),
	    key(STORE_SEARCH_TEXT, NULL, "trip"),
	    key(STORE_SEARCH_BODY, NULL, "trip"),
	};

	CHECK_INT(match(msg, k, 7), 0x1 | 0x2 | 0x4 | 0x10 | 0x20);
}

static void
test_bodies(void)
{
	const char *msg = "Subject: parts\r\nMIME-Version: 1.0\r\n"
	                  "Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
	                  "--XX\r\nContent-Type: text/plain\r\n"
	                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	                  "soft=\r\nbreak and caf=C3=A9\r\n"
	                  "--XX\r\nContent-Type: text/html\r\n"
	                  "Content-Transfer-Encoding: base64\r\n\r\n"
	                  "PGI+Ym9sZCBtb3ZlPC9iPg==\r\n"
	                  "--XX\r\nContent-Type: image/png\r\n"
	                  "Content-Transfer-Encoding: base64\r\n\r\n"
	                  "aGlkZGVuIGltYWdl\r\n--XX--\r\n";
	struct store_search_key k[] = {
	    key(STORE_SEARCH_BODY, NULL, "softbreak"),
	    key(STORE_SEARCH_BODY, NULL, "caf\xc3\xa9"),
	    key(STORE_SEARCH_BODY, NULL, "BOLD MOVE"),
	    key(STORE_SEARCH_BODY, NULL, "hidden image"),
	    key(STORE_SEARCH_TEXT, NULL, "parts"),
	    key(STORE_SEARCH_BODY, NULL, "parts"),
	};

	CHECK_INT(match(msg, k, 6), 0x1 | 0x2 | 0x4 | 0x10);
}

static void
test_plain_body(void)
{
	const char *msg = "Subject: x\r\n\r\nJust Some Text\r\n";
	struct store_search_key k[] = {
	    key(STORE_SEARCH_BODY, NULL, "some text"),
	    key(STORE_SEARCH_BODY, NULL, "subject"),
	};

	CHECK_INT(match(msg, k, 2), 0x1);
}

int
main(void)
{
	CHECK_RUN(test_contains);
	CHECK_RUN(test_headers);
	CHECK_RUN(test_bodies);
	CHECK_RUN(test_plain_body);
	return check_summary();
}
