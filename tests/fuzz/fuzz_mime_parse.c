/*
 * Fuzz target for mime_parse(): any bytes must parse without a crash or a
 * leak, and every section in the part map must be found again in bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_map(const struct mime_info *mi, size_t size)
{
	const char *line = mi->partmap;
	char section[512];
	size_t h, b, e, n;

	while (*line != '\0') {
		n = strcspn(line, " ");
		if (n < sizeof(section) && !(n == 1 && line[0] == '0')) {
			memcpy(section, line, n);
			section[n] = '\0';
			if (mime_partmap_find(mi->partmap, section, &h, &b,
			        &e) != 0 ||
			    h > b || b > e || e > size)
				abort();
		}
		line += strcspn(line, "\n");
		if (*line == '\n')
			line++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_info mi;

	mime_parse((const char *)data, size, &mi);
	fuzz_check_map(&mi, size);
	mime_info_deinit(&mi);
	return 0;
}
