/*
 * Fuzz target for the IMAP command tokenizer and the FETCH, SEARCH and
 * sequence-set parsers behind it. The first byte picks flags and literal
 * decisions; the input is fed whole and then cut at a position taken from
 * the second byte, and both runs must yield the same commands.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imap/imap_fetchatt.h"
#include "imap/imap_parser.h"
#include "imap/imap_searchkey.h"
#include "imap/imap_seqset.h"
#include "mime/mime.h"

/* Checks stay on in release builds, where NDEBUG removes assert(). */
#define FUZZ_CHECK(cond)         \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_arg(struct mime_buf *b, const struct imap_arg *a, unsigned depth)
{
	size_t i;

	FUZZ_CHECK(depth <= 8);
	mime_buf_printf(b, " %d:%zu:", (int)a->type, a->len);
	if (a->type != IMAP_ARG_LIST) {
		FUZZ_CHECK(a->str != NULL && a->str[a->len] == '\0');
		mime_buf_add(b, a->str, a->len);
		return;
	}
	for (i = 0; i < a->count; i++)
		fuzz_arg(b, &a->list[i], depth + 1);
	mime_buf_addc(b, ')');
}

/* Runs the argument parsers on what a command holds. */
static void
fuzz_semantics(const struct imap_cmd *cmd)
{
	struct imap_fetchatt fa;
	struct imap_search s;
	struct imap_seqset set, out;
	enum imap_search_err err;
	const char *text;
	size_t i;

	if (cmd->nargs > 1 &&
	    imap_fetchatt_parse(cmd->args + 1, cmd->nargs - 1, &fa, &text) ==
	        0) {
		for (i = 0; i < fa.nsections; i++)
			FUZZ_CHECK(fa.sections[i].name != NULL);
		imap_fetchatt_clear(&fa);
	}
	if (imap_searchkey_parse(cmd->args, cmd->nargs, IMAP_SEARCH_REV2, &s,
	        &err, &text) == 0)
		FUZZ_CHECK(s.root != NULL);
	else
		FUZZ_CHECK(text != NULL && err != IMAP_SEARCH_ERR_NONE);
	imap_searchkey_clear(&s);
	if (cmd->nargs > 0 && cmd->args[0].type == IMAP_ARG_ATOM &&
	    imap_seqset_parse(cmd->args[0].str, cmd->args[0].len, &set) == 0) {
		if (imap_seqset_resolve(&set, 1000, 1, &out) == 0)
			FUZZ_CHECK(imap_seqset_count(&out) <= 1000);
		imap_seqset_clear(&out);
		imap_seqset_clear(&set);
	}
}

/* Feeds data in pieces of at most chunk bytes; returns a transcript. */
static char *
fuzz_run(const uint8_t *data, size_t size, size_t chunk, unsigned mode,
    int semantics)
{
	struct imap_parser_limits lim = {0};
	struct imap_parser *p;
	struct mime_buf b = {0};
	struct imap_cmd *cmd;
	size_t off = 0, n, used, decisions = 0, i;
	int r;

	lim.line_max = 4096;
	lim.literal_max = 4096;
	lim.skip_max = 8192;
	lim.args_max = 200;
	lim.depth_max = 8;
	p = imap_parser_new(&lim, mode & 3);
	while (off < size) {
		n = size - off < chunk ? size - off : chunk;
		r = imap_parser_feed(p, (const char *)data + off, n, &used,
		    &cmd);
		FUZZ_CHECK(used <= n);
		off += used;
		if (r == 1) {
			mime_buf_printf(&b, "\n%s %s", cmd->tag, cmd->name);
			for (i = 0; i < cmd->nargs; i++)
				fuzz_arg(&b, &cmd->args[i], 0);
			if (semantics)
				fuzz_semantics(cmd);
			imap_cmd_free(&cmd);
		} else if (r == -1) {
			const struct imap_parser_error *e =
			    imap_parser_error(p);

			FUZZ_CHECK(e->text != NULL);
			mime_buf_printf(&b, "\nERR %d %s", (int)e->code,
			    e->tag ? e->tag : "*");
			if (e->fatal)
				break;
		} else if (imap_parser_literal(p) != NULL) {
			/* Refuse every fourth literal when mode says so. */
			if ((mode & 4) && decisions++ % 4 == 3)
				imap_parser_literal_refuse(p);
			else
				imap_parser_literal_accept(p);
		} else {
			FUZZ_CHECK(used == n);
		}
	}
	imap_parser_free(&p);
	return mime_buf_finish(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t chunk;
	char *whole, *split;

	if (size < 2)
		return 0;
	mode = data[0];
	chunk = (data[1] % 16) + 1;
	data += 2;
	size -= 2;
	whole = fuzz_run(data, size, size ? size : 1, mode, 1);
	split = fuzz_run(data, size, chunk, mode, 0);
	FUZZ_CHECK(strcmp(whole, split) == 0);
	free(whole);
	free(split);
	return 0;
}
