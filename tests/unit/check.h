/*
 * A small unit-test harness: each test file defines test functions, lists them
 * in main() with CHECK_RUN, and ends with check_summary(), which prints
 * "N passed, N failed" and returns the exit status.
 */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures_now;
static int check_passed;
static int check_failed;

#define CHECK_FAIL(...)                                         \
	do {                                                    \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fputc('\n', stderr);                            \
		check_failures_now++;                           \
	} while (0)

#define CHECK(cond)                                            \
	do {                                                   \
		if (!(cond))                                   \
			CHECK_FAIL("check failed: %s", #cond); \
	} while (0)

#define CHECK_INT(a, b)                                                   \
	do {                                                              \
		long long check_a_ = (long long)(a),                      \
		          check_b_ = (long long)(b);                      \
		if (check_a_ != check_b_)                                 \
			CHECK_FAIL("%s == %lld, expected %s == %lld", #a, \
			    check_a_, #b, check_b_);                      \
	} while (0)

#define CHECK_STR(a, b)                                                 \
	do {                                                            \
		const char *check_a_ = (a), *check_b_ = (b);            \
		if (check_a_ == NULL || check_b_ == NULL ||             \
		    strcmp(check_a_, check_b_) != 0)                    \
			CHECK_FAIL("%s == \"%s\", expected \"%s\"", #a, \
			    check_a_ ? check_a_ : "(null)",             \
			    check_b_ ? check_b_ : "(null)");            \
	} while (0)

#define CHECK_RUN(fn)                                      \
	do {                                               \
		check_failures_now = 0;                    \
		fn();                                      \
		if (check_failures_now) {                  \
			check_failed++;                    \
			fprintf(stderr, "FAIL %s\n", #fn); \
		} else {                                   \
			check_passed++;                    \
		}                                          \
	} while (0)

static inline int
check_summary(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
