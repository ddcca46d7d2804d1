/*
 * Fuzz target for the SMTP command-line parser and the From: field reader:
 * any bytes must parse or fail cleanly, and a parsed path must be bounded.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/smtp_header.h"
#include "smtp/smtp_parser.h"

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
	struct smtp_cmd cmd;
	char **addrs;
	size_t n;

	if (smtp_parse((const char *)data, size, &cmd) == 0) {
		FUZZ_CHECK(
		    cmd.path == NULL || strlen(cmd.path) <= SMTP_PATH_MAX);
		FUZZ_CHECK(cmd.error == NULL);
	} else {
		FUZZ_CHECK(cmd.error != NULL);
	}
	smtp_cmd_clear(&cmd);
	if (smtp_header_from((const char *)data, size, &addrs, &n) == 0)
		smtp_header_addrs_free(addrs, n);
	return 0;
}
