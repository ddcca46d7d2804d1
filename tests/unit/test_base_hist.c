/* Unit tests for the latency histogram: buckets, percentiles, merge. */
#include "base/hist.h"
#include "check.h"

static struct hist h1, h2;

static void
test_empty(void)
{
	hist_init(&h1);
	CHECK_INT(h1.count, 0);
	CHECK_INT(hist_percentile(&h1, 0.5), 0);
	CHECK_INT(hist_percentile(&h1, 0.99), 0);
}

/* Below HIST_SUB_COUNT every value has its own bucket: exact answers. */
static void
test_small_exact(void)
{
	hist_init(&h1);
	for (uint64_t v = 1; v <= 20; v++)
		hist_add(&h1, v);
	CHECK_INT(h1.count, 20);
	CHECK_INT(h1.min_ns, 1);
	CHECK_INT(h1.max_ns, 20);
	CHECK_INT(h1.sum_ns, 210);
	CHECK_INT(hist_percentile(&h1, 0.5), 10);
	CHECK_INT(hist_percentile(&h1, 0.95), 19);
	CHECK_INT(hist_percentile(&h1, 1.0), 20);
	CHECK_INT(hist_percentile(&h1, 0.0), 1);
}

/* Larger values: within one bucket width (1/32) above the true value. */
static void
test_relative_error(void)
{
	static const uint64_t vals[] = {1000, 1234, 50000, 99999, 123456789,
	    2000000000ull, 9999999999ull};

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint64_t got;

		hist_init(&h1);
		hist_add(&h1, vals[i]);
		hist_add(&h1,
		    vals[i] * 2 > HIST_MAX_NS ? HIST_MAX_NS : vals[i] * 2);
		got = hist_percentile(&h1, 0.5);
		CHECK(got >= vals[i]);
		CHECK(got <= vals[i] + vals[i] / 32);
	}
}

/* 1..1000 us: p50 and p99 near 500 us and 990 us, never below. */
static void
test_percentiles(void)
{
	uint64_t p50, p99;

	hist_init(&h1);
	for (uint64_t us = 1000; us >= 1; us--)
		hist_add(&h1, us * 1000);
	p50 = hist_percentile(&h1, 0.5);
	p99 = hist_percentile(&h1, 0.99);
	CHECK(p50 >= 500000 && p50 <= 500000 + 500000 / 32);
	CHECK(p99 >= 990000 && p99 <= 990000 + 990000 / 32);
	CHECK_INT(hist_percentile(&h1, 1.0), 1000000);
	CHECK_INT(hist_percentile(&h1, 2.0), 1000000);
	CHECK(hist_percentile(&h1, -1.0) <= 1000 + 1000 / 32);
}

/* Samples past 10 s land in the last bucket; the max stays exact. */
static void
test_overflow(void)
{
	hist_init(&h1);
	hist_add(&h1, 0);
	hist_add(&h1, UINT64_MAX / 4);
	CHECK_INT(h1.buckets[0], 1);
	CHECK_INT(h1.buckets[HIST_BUCKETS - 1], 1);
	CHECK(hist_percentile(&h1, 1.0) == UINT64_MAX / 4);
	CHECK_INT(hist_percentile(&h1, 0.5), 0);
}

/* Every value maps to a bucket whose range holds it. */
static void
test_bucket_edges(void)
{
	hist_init(&h1);
	for (uint64_t v = 1; v < (1ull << 34); v = v * 3 / 2 + 1) {
		hist_init(&h1);
		hist_add(&h1, v);
		hist_add(&h1, HIST_MAX_NS * 2);
		if (v <= HIST_MAX_NS) {
			uint64_t got = hist_percentile(&h1, 0.5);

			CHECK(got >= v && got - v <= v / 32);
		}
	}
}

static void
test_merge(void)
{
	hist_init(&h1);
	hist_init(&h2);
	hist_merge(&h1, &h2);
	CHECK_INT(h1.count, 0);
	for (uint64_t v = 1; v <= 10; v++)
		hist_add(&h1, v * 1000);
	for (uint64_t v = 11; v <= 20; v++)
		hist_add(&h2, v * 1000);
	hist_merge(&h1, &h2);
	CHECK_INT(h1.count, 20);
	CHECK_INT(h1.min_ns, 1000);
	CHECK_INT(h1.max_ns, 20000);
	CHECK_INT(h1.sum_ns, 210000);
	CHECK_INT(h2.count, 10);
	hist_init(&h2);
	hist_merge(&h2, &h1);
	CHECK_INT(h2.min_ns, 1000);
	CHECK_INT(hist_percentile(&h2, 1.0), 20000);
}

static void
test_clock(void)
{
	uint64_t a = hist_now_ns(), b = hist_now_ns();

	CHECK(a > 0);
	CHECK(b >= a);
}

int
main(void)
{
	CHECK_RUN(test_empty);
	CHECK_RUN(test_small_exact);
	CHECK_RUN(test_relative_error);
	CHECK_RUN(test_percentiles);
	CHECK_RUN(test_overflow);
	CHECK_RUN(test_bucket_edges);
	CHECK_RUN(test_merge);
	CHECK_RUN(test_clock);
	return check_summary();
}
