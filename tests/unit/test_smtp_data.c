/* Unit tests for the DATA and BDAT body reader. */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "check.h"

#define BIG 1000000

struct result {
	int ended;
	size_t used; /* bytes of the input taken in all */
	int bare;
	int too_big;
	char *msg;
	size_t len;
};

/* Feeds in as pieces of at most step bytes (0: all at once). */
static struct result
run(const char *in, size_t len, size_t step, uint64_t max, int normalize)
{
	struct smtp_data d;
	struct result r = {0};

	smtp_data_init(&d, max, normalize);
	while (r.used < len && !r.ended) {
		size_t n = len - r.used, used;

		if (step != 0 && n > step)
			n = step;
		r.ended = smtp_data_feed(&d, in + r.used, n, &used);
		CHECK(used <= n);
		if (!r.ended)
			CHECK_INT(used, n);
		r.used += used;
	}
	r.bare = d.bare;
	r.too_big = smtp_data_too_big(&d);
	r.msg = smtp_data_take(&d, &r.len);
	smtp_data_deinit(&d);
	return r;
}

/* A whole DATA exchange that must end cleanly with the message want. */
static void
check_msg(const char *in, const char *want)
{
	size_t len = strlen(in);

	for (size_t step = 0; step <= len; step++) {
		struct result r = run(in, len, step, BIG, 0);

		CHECK_INT(r.ended, 1);
		CHECK_INT(r.used, len);
		CHECK_INT(r.bare, 0);
		CHECK_STR(r.msg, want);
		free(r.msg);
	}
}

static void
test_plain(void)
{
	check_msg(".\r\n", "");
	check_msg("a\r\n.\r\n", "a\r\n");
	check_msg("Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n\r\nbody\r\n");
	check_msg("\r\n.\r\n", "\r\n");
	check_msg("8bit \xc3\xa9\xff\x01 ok\r\n.\r\n",
	    "8bit \xc3\xa9\xff\x01 ok\r\n");
}

static void
test_dots(void)
{
	check_msg("..\r\n.\r\n", ".\r\n");
	check_msg("...\r\n.\r\n", "..\r\n");
	check_msg("a\r\n..b\r\n.\r\n", "a\r\n.b\r\n");
	check_msg("a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n");
	check_msg(". \r\n.\r\n", " \r\n");
	check_msg("x\r\n..\r\n.\r\n", "x\r\n.\r\n");
	check_msg("a\r\n.\r\n", "a\r\n");
}

/* The end marker is found wherever the input is cut. */
static void
test_split_end(void)
{
	const char *in = "line one\r\n..stuffed\r\n.\r\nQUIT\r\n";
	size_t len = strlen(in);

	for (size_t step = 1; step <= len; step++) {
		struct result r = run(in, len, step, BIG, 0);

		CHECK_INT(r.ended, 1);
		CHECK_INT(r.used, len - 6);
		CHECK_STR(r.msg, "line one\r\n.stuffed\r\n");
		free(r.msg);
	}
	/* Every cut into two pieces, at every position. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct smtp_data d;
		size_t u1 = 0, u2 = 0;
		int e;

		smtp_data_init(&d, BIG, 0);
		e = smtp_data_feed(&d, in, cut, &u1);
		if (!e)
			e = smtp_data_feed(&d, in + cut, len - cut, &u2);
		CHECK_INT(e, 1);
		CHECK_INT(u1 + u2, len - 6);
		CHECK_INT(d.len, 20);
		smtp_data_deinit(&d);
	}
}

/* Bare line ends never end DATA; the message is flagged. */
static void
check_bare(const char *in, const char *rest)
{
	size_t len = strlen(in);

	for (size_t step = 0; step <= len; step++) {
		struct result r = run(in, len, step, BIG, 0);

		CHECK_INT(r.ended, 1);
		CHECK_INT(r.bare, 1);
		CHECK_STR(in + r.used, rest);
		free(r.msg);
	}
}

static void
test_bare(void)
{
	check_bare("a\n.\nMAIL FROM:<x@y>\r\n.\r\n", "");
	check_bare("a\r.\rRCPT\r\n.\r\nQUIT\r\n", "QUIT\r\n");
	check_bare("a\n.\r\nsmuggled\r\n.\r\n", "");
	check_bare("a\r\n.\nb\r\n.\r\n", "");
	check_bare("a\r\n.\rb\r\n.\r\n", "");
	check_bare("a\r.\r\nb\r\n.\r\n", "");
	check_bare("bare lf\nonly\r\n.\r\n", "");
	check_bare("\n.\r\n.\r\n", "");
	check_bare("a\r\r\n.\r\n", "");
	check_bare("\r\n.\r\r\n.\r\n", "");
}

static void
check_norm(const char *in, const char *want)
{
	size_t len = strlen(in);

	for (size_t step = 0; step <= len; step++) {
		struct result r = run(in, len, step, BIG, 1);

		CHECK_INT(r.ended, 1);
		CHECK_INT(r.used, len);
		CHECK_STR(r.msg, want);
		free(r.msg);
	}
}

static void
test_normalize(void)
{
	check_norm("a\nb\r\n.\r\n", "a\r\nb\r\n");
	check_norm("a\rb\r\n.\r\n", "a\r\nb\r\n");
	check_norm("a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n");
	check_norm("a\n..b\r\n.\r\n", "a\r\n.b\r\n");
	check_norm("a\r\r\n.\r\n", "a\r\n\r\n");
	check_norm("a\n\r\n.\r\n", "a\r\n\r\n");
}

static void
test_size_limit(void)
{
	const char *in = "0123456789\r\n0123456789\r\n.\r\nNOOP\r\n";
	size_t len = strlen(in);
	struct result r;

	r = run(in, len, 0, 24, 0);
	CHECK_INT(r.ended, 1);
	CHECK_INT(r.too_big, 0);
	CHECK_INT(r.len, 24);
	free(r.msg);
	for (size_t step = 0; step < 5; step++) {
		r = run(in, len, step, 23, 0);
		CHECK_INT(r.ended, 1);
		CHECK_INT(r.too_big, 1);
		CHECK_INT(r.used, len - 6);
		CHECK(r.len <= 23);
		free(r.msg);
	}
	r = run(in, len, 0, 0, 0);
	CHECK_INT(r.too_big, 1);
	CHECK_INT(r.len, 0);
	free(r.msg);
}

static void
test_long_lines(void)
{
	size_t n = 100000;
	char *in = malloc(n + 6);
	struct result r;

	memset(in, 'x', n);
	memcpy(in + n, "\r\n.\r\n", 6);
	r = run(in, n + 5, 0, BIG, 0);
	CHECK_INT(r.ended, 1);
	CHECK_INT(r.len, n + 2);
	free(r.msg);
	r = run(in, n + 5, 4093, BIG, 0);
	CHECK_INT(r.len, n + 2);
	free(r.msg);
	free(in);
}

/* Feeds BDAT chunks of the given sizes out of in. */
static struct result
run_bdat(const char *in, const size_t *chunks, size_t nchunks, uint64_t max,
    int normalize)
{
	struct smtp_data d;
	struct result r = {0};

	smtp_data_init(&d, max, normalize);
	smtp_data_set_bdat(&d);
	for (size_t i = 0; i < nchunks; i++) {
		size_t used;

		CHECK_INT(smtp_data_feed(&d, in + r.used, chunks[i], &used), 0);
		CHECK_INT(used, chunks[i]);
		r.used += used;
	}
	smtp_data_finish(&d);
	r.bare = d.bare;
	r.too_big = smtp_data_too_big(&d);
	r.msg = smtp_data_take(&d, &r.len);
	smtp_data_deinit(&d);
	return r;
}

static void
test_bdat(void)
{
	const char *in = "A: b\r\n\r\n.\r\n..x\r\n";
	size_t whole[] = {17}, split[] = {5, 1, 0, 3, 8}, cr[] = {6, 11};
	struct result r;

	r = run_bdat(in, whole, 1, BIG, 0);
	CHECK_INT(r.len, 17);
	CHECK_STR(r.msg, in);
	CHECK_INT(r.bare, 0);
	free(r.msg);
	r = run_bdat(in, split, 5, BIG, 0);
	CHECK_STR(r.msg, in);
	CHECK_INT(r.bare, 0);
	free(r.msg);
	r = run_bdat(in, cr, 2, BIG, 0);
	CHECK_STR(r.msg, in);
	free(r.msg);
	r = run_bdat(in, whole, 1, 16, 0);
	CHECK_INT(r.too_big, 1);
	free(r.msg);

	size_t one[] = {4};
	r = run_bdat("a\nb\r", one, 1, BIG, 0);
	CHECK_INT(r.bare, 1);
	free(r.msg);
	r = run_bdat("a\nb\r", one, 1, BIG, 1);
	CHECK_STR(r.msg, "a\r\nb\r\n");
	free(r.msg);
	size_t zero[] = {3};
	r = run_bdat("\0\0\0", zero, 1, BIG, 0);
	CHECK_INT(r.len, 3);
	CHECK_INT(r.bare, 0);
	free(r.msg);
}

int
main(void)
{
	CHECK_RUN(test_plain);
	CHECK_RUN(test_dots);
	CHECK_RUN(test_split_end);
	CHECK_RUN(test_bare);
	CHECK_RUN(test_normalize);
	CHECK_RUN(test_size_limit);
	CHECK_RUN(test_long_lines);
	CHECK_RUN(test_bdat);
	return check_summary();
}
