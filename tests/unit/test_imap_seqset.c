/* Unit tests for sequence sets: parsing, resolving, membership, format. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"
#include "check.h"

/* Parses s, resolves it against max and formats the result ("ERR"). */
static char *
resolve(const char *s, uint32_t max, int uid)
{
	struct imap_seqset in, out;
	char *r;

	if (imap_seqset_parse(s, strlen(s), &in) < 0)
		return strdup("PARSE");
	if (imap_seqset_resolve(&in, max, uid, &out) < 0) {
		imap_seqset_clear(&in);
		return strdup("ERR");
	}
	r = imap_seqset_format(&out);
	imap_seqset_clear(&in);
	imap_seqset_clear(&out);
	return r;
}

static void
expect(const char *s, uint32_t max, int uid, const char *want)
{
	char *got = resolve(s, max, uid);

	CHECK_STR(got, want);
	free(got);
}

static void
test_parse(void)
{
	expect("1", 10, 0, "1");
	expect("2:4", 10, 0, "2:4");
	expect("4:2", 10, 0, "2:4");
	expect("2,4:7,9,12:*", 15, 0, "2,4:7,9,12:15");
	expect("*:4,5:7", 10, 0, "4:10");
	expect("3:5,1,2,9", 10, 0, "1:5,9");
	expect("4294967295", 10, 1, "");
	expect("", 10, 0, "PARSE");
	expect("0", 10, 0, "PARSE");
	expect("1:0", 10, 0, "PARSE");
	expect("01", 10, 0, "PARSE");
	expect("4294967296", 10, 0, "PARSE");
	expect("1,", 10, 0, "PARSE");
	expect(",1", 10, 0, "PARSE");
	expect("1::2", 10, 0, "PARSE");
	expect("1:2:3", 10, 0, "PARSE");
	expect("a", 10, 0, "PARSE");
	expect("1 ", 10, 0, "PARSE");
	expect("$,1", 10, 0, "PARSE");
}

static void
test_resolve(void)
{
	/* Message numbers beyond the count are an error. */
	expect("11", 10, 0, "ERR");
	expect("*", 0, 0, "ERR");
	expect("1:*", 0, 0, "ERR");
	/* UIDs: clipped; "n:*" holds the highest UID (RFC 9051 6.4.8). */
	expect("11", 10, 1, "");
	expect("20:*", 10, 1, "10");
	expect("1:*", 0, 1, "");
	expect("5:100", 10, 1, "5:10");
	expect("*", 7, 1, "7");
}

static void
test_saved(void)
{
	struct imap_seqset s, out;

	CHECK_INT(imap_seqset_parse("$", 1, &s), 0);
	CHECK(s.saved);
	CHECK_INT(imap_seqset_resolve(&s, 10, 0, &out), -1);
	imap_seqset_clear(&s);
}

static void
test_members(void)
{
	struct imap_seqset in, out;
	struct imap_seqset_iter it = {0};
	uint32_t n, got[16];
	size_t k = 0;

	CHECK_INT(imap_seqset_parse("9,1:3,5:6,3", 11, &in), 0);
	CHECK_INT(imap_seqset_resolve(&in, 10, 0, &out), 0);
	CHECK_INT(out.n, 3);
	CHECK(imap_seqset_contains(&out, 1));
	CHECK(imap_seqset_contains(&out, 3));
	CHECK(!imap_seqset_contains(&out, 4));
	CHECK(imap_seqset_contains(&out, 6));
	CHECK(imap_seqset_contains(&out, 9));
	CHECK(!imap_seqset_contains(&out, 10));
	CHECK(!imap_seqset_contains(&out, 0));
	CHECK_INT(imap_seqset_count(&out), 6);
	while (imap_seqset_next(&out, &it, &n) && k < 16)
		got[k++] = n;
	CHECK_INT(k, 6);
	CHECK(got[0] == 1 && got[2] == 3 && got[3] == 5 && got[5] == 9);
	imap_seqset_clear(&in);
	imap_seqset_clear(&out);
}

static void
test_max_range(void)
{
	struct imap_seqset in, out;
	struct imap_seqset_iter it = {0};
	uint32_t n = 0;

	CHECK_INT(imap_seqset_parse("4294967294:*", 12, &in), 0);
	CHECK_INT(imap_seqset_resolve(&in, UINT32_MAX, 1, &out), 0);
	CHECK_INT(imap_seqset_count(&out), 2);
	CHECK(imap_seqset_next(&out, &it, &n) && n == 4294967294u);
	CHECK(imap_seqset_next(&out, &it, &n) && n == 4294967295u);
	CHECK(!imap_seqset_next(&out, &it, &n));
	imap_seqset_clear(&in);
	imap_seqset_clear(&out);
}

/* An absurd number of ranges is refused cleanly. */
static void
test_bounded(void)
{
	size_t n = IMAP_SEQSET_MAX_RANGES + 1, i;
	char *s = malloc(n * 2);
	struct imap_seqset set;

	for (i = 0; i < n; i++) {
		s[2 * i] = '1';
		s[2 * i + 1] = ',';
	}
	CHECK_INT(imap_seqset_parse(s, n * 2 - 1, &set), -1);
	CHECK_INT(imap_seqset_parse(s, n * 2 - 3, &set), 0);
	CHECK_INT(set.n, IMAP_SEQSET_MAX_RANGES);
	imap_seqset_clear(&set);
	free(s);
}

static void
test_format(void)
{
	static const uint32_t a[] = {1, 2, 3, 5, 7, 8, 4294967295u};
	static const uint32_t b[] = {9, 3, 4, 5, 1, 1};
	struct imap_seqset set;
	char *s;

	s = imap_seqset_format_array(a, 7);
	CHECK_STR(s, "1:3,5,7:8,4294967295");
	free(s);
	s = imap_seqset_format_array(b, 6);
	CHECK_STR(s, "9,3:5,1,1");
	free(s);
	s = imap_seqset_format_array(b, 0);
	CHECK_STR(s, "");
	free(s);
	imap_seqset_from_array(b, 6, &set);
	s = imap_seqset_format(&set);
	CHECK_STR(s, "1,3:5,9");
	free(s);
	imap_seqset_clear(&set);
}

int
main(void)
{
	CHECK_RUN(test_parse);
	CHECK_RUN(test_resolve);
	CHECK_RUN(test_saved);
	CHECK_RUN(test_members);
	CHECK_RUN(test_max_range);
	CHECK_RUN(test_bounded);
	CHECK_RUN(test_format);
	return check_summary();
}
