/*
 * Fuzz target for the DATA/BDAT reader. The first byte picks the mode and
 * the size of the pieces the rest is fed in; the reader must end at the
 * same place and keep the same message however the input is cut.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

/* Checks stay on in release builds, where NDEBUG removes assert(). */
#define FUZZ_CHECK(cond)         \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds in pieces of step bytes; returns the bytes taken, sets *ended. */
static size_t
feed(struct smtp_data *d, const char *in, size_t len, size_t step, int *ended)
{
	size_t off = 0;

	*ended = 0;
	while (off < len && !*ended) {
		size_t n = len - off < step ? len - off : step, used;

		*ended = smtp_data_feed(d, in + off, n, &used);
		FUZZ_CHECK(used <= n && (*ended || used == n));
		off += used;
	}
	if (d->bdat)
		smtp_data_finish(d);
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data a, b;
	size_t ua, ub;
	int ea, eb, flags;

	if (size < 1)
		return 0;
	flags = data[0];
	smtp_data_init(&a, 4096, flags & 1);
	smtp_data_init(&b, 4096, flags & 1);
	if (flags & 2) {
		smtp_data_set_bdat(&a);
		smtp_data_set_bdat(&b);
	}
	ua = feed(&a, (const char *)data + 1, size - 1, size, &ea);
	ub = feed(&b, (const char *)data + 1, size - 1, (flags >> 2) + 1, &eb);
	FUZZ_CHECK(ua == ub && ea == eb && a.bare == b.bare);
	FUZZ_CHECK(a.size == b.size && a.len <= 4096 && b.len <= 4096);
	FUZZ_CHECK(smtp_data_too_big(&a) == smtp_data_too_big(&b));
	/* A message over the limit is refused: what was kept is moot. */
	if (!smtp_data_too_big(&a)) {
		FUZZ_CHECK(a.len == b.len);
		FUZZ_CHECK(a.len == 0 || memcmp(a.buf, b.buf, a.len) == 0);
	}
	smtp_data_deinit(&a);
	smtp_data_deinit(&b);
	return 0;
}
