/*
 * Latency histograms: fixed log-linear buckets in the manner of HDR
 * histograms, nanosecond samples from 1 us to 10 s with about 3 % relative
 * error, and the monotonic clock the samples are taken with. Pure: no
 * allocation, no locking (one owner thread per histogram).
 */
#ifndef BASE_HIST_H
#define BASE_HIST_H

#include <stdint.h>

/*
 * Each power of two is split into 2^HIST_SUB_BITS equal buckets, so a
 * bucket is at most 1/32 of its values wide (3.1 %).
 */
#define HIST_SUB_BITS 5
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)

/* Samples above this (10 s) count in the last bucket; max stays exact. */
#define HIST_MAX_NS 10000000000ull

/*
 * Buckets up to HIST_MAX_NS: the highest set bit of 10^10 is bit 33, so
 * (33 - HIST_SUB_BITS + 1) groups of HIST_SUB_COUNT above the linear first
 * group. hist.c checks this at compile time.
 */
#define HIST_BUCKETS ((33 - HIST_SUB_BITS + 2) * HIST_SUB_COUNT)

/* Embed it anywhere; zeroed (hist_init or {0}) it is empty. */
struct hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns; /* valid when count > 0 */
	uint64_t max_ns;
	uint64_t buckets[HIST_BUCKETS];
};

/* Empties h. */
void hist_init(struct hist *h);

/* Records one sample of ns nanoseconds. Constant time, never fails. */
void hist_add(struct hist *h, uint64_t ns);

/* Adds every sample of from to to (from is unchanged). */
void hist_merge(struct hist *to, const struct hist *from);

/*
 * The nearest-rank percentile for fraction in [0, 1] (0.99 for p99), in
 * nanoseconds: the upper edge of the bucket holding that rank, but never
 * above the largest sample, so it errs high by at most one bucket width.
 * Returns 0 when h is empty.
 */
uint64_t hist_percentile(const struct hist *h, double fraction);

/* CLOCK_MONOTONIC in nanoseconds; comparable across threads. */
uint64_t hist_now_ns(void);

#endif
