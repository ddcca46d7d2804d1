/*
 * Latency histograms with log-linear buckets: values below HIST_SUB_COUNT
 * have a bucket each, and every power of two above is split into
 * HIST_SUB_COUNT equal buckets, found from the value's highest set bit.
 */
#include <string.h>
#include <time.h>

#include "base/hist.h"

_Static_assert(HIST_MAX_NS >= (1ull << 33) && HIST_MAX_NS < (1ull << 34),
    "HIST_BUCKETS assumes the highest set bit of HIST_MAX_NS is bit 33");

static unsigned
hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v > HIST_MAX_NS)
		return HIST_BUCKETS - 1;
	if (v < HIST_SUB_COUNT)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB_COUNT + (unsigned)(v >> shift) -
	    HIST_SUB_COUNT;
}

/* The largest value that lands in bucket i. */
static uint64_t
hist_upper(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < HIST_SUB_COUNT)
		return i;
	shift = i / HIST_SUB_COUNT - 1;
	m = HIST_SUB_COUNT + i % HIST_SUB_COUNT;
	return ((m + 1) << shift) - 1;
}

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
hist_add(struct hist *h, uint64_t ns)
{
	if (h->count == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
	h->buckets[hist_index(ns)]++;
}

void
hist_merge(struct hist *to, const struct hist *from)
{
	if (from->count == 0)
		return;
	if (to->count == 0 || from->min_ns < to->min_ns)
		to->min_ns = from->min_ns;
	if (from->max_ns > to->max_ns)
		to->max_ns = from->max_ns;
	to->count += from->count;
	to->sum_ns += from->sum_ns;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		to->buckets[i] += from->buckets[i];
}

uint64_t
hist_percentile(const struct hist *h, double fraction)
{
	uint64_t rank, seen = 0;
	double want;

	if (h->count == 0)
		return 0;
	/* NaN and out-of-range fractions clamp to the ends. */
	if (!(fraction > 0.0))
		fraction = 0.0;
	if (fraction > 1.0)
		fraction = 1.0;
	want = fraction * (double)h->count;
	rank = want <= 1.0 ? 1 : (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t up = hist_upper(i);

			if (i == HIST_BUCKETS - 1 || up > h->max_ns)
				return h->max_ns;
			return up;
		}
	}
	return h->max_ns;
}

uint64_t
hist_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
