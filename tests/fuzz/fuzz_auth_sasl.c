/*
 * Fuzz target for SASL response decoding: the input is handed to the PLAIN
 * decoder and to the LOGIN decoder as the base64 text a client sent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "auth/sasl.h"
#include "base/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *z, *c, *p, *out;

	if (sasl_plain_decode((const char *)data, size, &z, &c, &p) == 0) {
		free(z);
		free(c);
		xfree_secret_str(p);
	}
	if (sasl_login_decode((const char *)data, size, &out) == 0)
		free(out);
	return 0;
}
