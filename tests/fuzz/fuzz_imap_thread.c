/*
 * Fuzz target for threading: each input line is one message, its fields
 * (Message-ID, References, In-Reply-To, Subject, date byte) split by tabs.
 * Both algorithms must name every message exactly once, with balanced
 * parentheses, and the base subject must be a fixed point.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_thread.h"

#define FUZZ_CHECK(cond)         \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define FUZZ_MAX_MSGS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every id 1..n once, parentheses balanced and never empty. */
static void
fuzz_check_threads(char *out, size_t n)
{
	unsigned char *seen = calloc(n + 1, 1);
	long depth = 0;

	for (char *p = out; *p != '\0';) {
		if (*p == '(' || *p == ')') {
			depth += *p == '(' ? 1 : -1;
			FUZZ_CHECK(depth >= 0);
			FUZZ_CHECK(!(p[0] == '(' && p[1] == ')'));
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			unsigned long id = strtoul(p, &p, 10);

			FUZZ_CHECK(id >= 1 && id <= n && !seen[id]);
			seen[id] = 1;
		}
	}
	FUZZ_CHECK(depth == 0);
	for (size_t i = 1; i <= n; i++)
		FUZZ_CHECK(seen[i]);
	free(seen);
	free(out);
}

/* Splits line at tabs into the record's fields (missing ones NULL). */
static void
fuzz_fields(char *line, struct imap_thread_msg *m)
{
	char *f[5] = {0};
	size_t k = 0;

	f[k++] = line;
	for (char *p = line; *p != '\0' && k < 5; p++) {
		if (*p == '\t') {
			*p = '\0';
			f[k++] = p + 1;
		}
	}
	m->message_id = f[0];
	m->references = f[1];
	m->in_reply_to = f[2];
	m->subject = f[3];
	m->date = f[4] != NULL ? (unsigned char)f[4][0] : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *save = NULL;
	struct imap_thread_msg *msgs = calloc(FUZZ_MAX_MSGS, sizeof(*msgs));
	size_t n = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = strtok_r(buf, "\n", &save);
	     line != NULL && n < FUZZ_MAX_MSGS;
	     line = strtok_r(NULL, "\n", &save)) {
		msgs[n].id = (uint32_t)n + 1;
		fuzz_fields(line, &msgs[n]);
		n++;
	}
	fuzz_check_threads(imap_thread_references(msgs, n), n);
	fuzz_check_threads(imap_thread_orderedsubject(msgs, n), n);
	for (size_t i = 0; i < n; i++) {
		char *b = imap_thread_base_subject(msgs[i].subject, NULL);
		char *b2 = imap_thread_base_subject(b, NULL);

		FUZZ_CHECK(strcmp(b, b2) == 0 || strncmp(b, "[", 1) == 0);
		free(b);
		free(b2);
	}
	free(msgs);
	free(buf);
	return 0;
}
