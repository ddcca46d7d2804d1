/*
 * Fuzz target for the users and aliases file parsers: the first byte picks
 * the file kind (even: users, odd: aliases), the rest is the file.
 */
#include <stddef.h>
#include <stdint.h>

#include "auth/userdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	if (size == 0)
		return 0;
	userdb_check_text((const char *)data + 1, size - 1, data[0] & 1, err,
	    sizeof(err));
	return 0;
}
