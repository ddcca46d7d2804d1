/*
 * Fuzz target for modified UTF-7: whatever decodes must encode back to the
 * same bytes (decoding is strict, so only canonical forms pass), whatever
 * encodes must decode back, and the mailbox-name check must not crash.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imap/imap_utf7.h"

/* Checks stay on in release builds, where NDEBUG removes assert(). */
#define FUZZ_CHECK(cond)         \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *a, *b;

	if (imap_utf7_decode(s, size, &a) == 0) {
		FUZZ_CHECK(imap_utf7_valid_utf8((unsigned char *)a, strlen(a)));
		FUZZ_CHECK(imap_utf7_encode(a, strlen(a), &b) == 0);
		FUZZ_CHECK(strlen(b) == size && memcmp(b, s, size) == 0);
		free(b);
		(void)imap_utf7_mailbox_valid(a, strlen(a));
		free(a);
	}
	if (imap_utf7_encode(s, size, &a) == 0) {
		FUZZ_CHECK(imap_utf7_valid_utf8(data, size));
		FUZZ_CHECK(imap_utf7_decode(a, strlen(a), &b) == 0);
		FUZZ_CHECK(strlen(b) == size && memcmp(b, s, size) == 0);
		free(b);
		free(a);
	}
	(void)imap_utf7_mailbox_valid(s, size);
	return 0;
}
