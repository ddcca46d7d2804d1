/*
 * Fuzz target for sequence sets: a set that parses and resolves must format
 * to a set that parses and resolves to the same ranges, and its members
 * must agree with iteration.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imap/imap_seqset.h"

/* Checks stay on in release builds, where NDEBUG removes assert(). */
#define FUZZ_CHECK(cond)         \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_again(const struct imap_seqset *out, uint32_t max)
{
	struct imap_seqset in2, out2;
	char *f = imap_seqset_format(out);

	if (out->n == 0) {
		free(f);
		return;
	}
	FUZZ_CHECK(imap_seqset_parse(f, strlen(f), &in2) == 0);
	FUZZ_CHECK(imap_seqset_resolve(&in2, max, 0, &out2) == 0);
	FUZZ_CHECK(out2.n == out->n);
	FUZZ_CHECK(memcmp(out2.r, out->r, out->n * sizeof(*out->r)) == 0);
	imap_seqset_clear(&in2);
	imap_seqset_clear(&out2);
	free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_seqset in, out;
	struct imap_seqset_iter it = {0};
	uint32_t max, n, k = 0;

	if (size < 2)
		return 0;
	max = (uint32_t)data[0] * 4 + data[1] % 4;
	if (imap_seqset_parse((const char *)data + 2, size - 2, &in) < 0)
		return 0;
	if (imap_seqset_resolve(&in, max, data[1] & 4, &out) == 0) {
		FUZZ_CHECK(imap_seqset_count(&out) <= max);
		while (imap_seqset_next(&out, &it, &n)) {
			FUZZ_CHECK(n >= 1 && n <= max);
			FUZZ_CHECK(imap_seqset_contains(&out, n));
			k++;
		}
		FUZZ_CHECK(k == imap_seqset_count(&out));
		fuzz_check_again(&out, max);
		imap_seqset_clear(&out);
	}
	imap_seqset_clear(&in);
	return 0;
}
