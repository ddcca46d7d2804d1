/* Unit tests for FETCH attribute parsing. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fetchatt.h"
#include "imap/imap_parser.h"
#include "check.h"

/* Parses "t FETCH 1 <atts>" and the attributes; returns 0 or -1. */
static int
fetch(const char *atts, struct imap_fetchatt *fa, const char **error)
{
	struct imap_parser *p = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd = NULL;
	char line[1024];
	size_t used;
	int r = -1;

	snprintf(line, sizeof(line), "t FETCH 1 %s\r\n", atts);
	memset(fa, 0, sizeof(*fa));
	*error = "tokenizer";
	if (imap_parser_feed(p, line, strlen(line), &used, &cmd) == 1)
		r = imap_fetchatt_parse(cmd->args + 1, cmd->nargs - 1, fa,
		    error);
	imap_cmd_free(&cmd);
	imap_parser_free(&p);
	return r;
}

static int
ok(const char *atts)
{
	struct imap_fetchatt fa;
	const char *err;
	int r = fetch(atts, &fa, &err);

	imap_fetchatt_clear(&fa);
	return r == 0;
}

/* The response name of the single section item, or "ERR". */
static char *
name_of(const char *atts)
{
	struct imap_fetchatt fa;
	const char *err;
	char *n;

	if (fetch(atts, &fa, &err) < 0 || fa.nsections != 1)
		return strdup("ERR");
	n = strdup(fa.sections[0].name);
	imap_fetchatt_clear(&fa);
	return n;
}

static void
expect_name(const char *atts, const char *want)
{
	char *got = name_of(atts);

	CHECK_STR(got, want);
	free(got);
}

static void
test_macros(void)
{
	struct imap_fetchatt fa;
	const char *err;

	CHECK_INT(fetch("ALL", &fa, &err), 0);
	CHECK_INT(fa.flags,
	    IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE |
	        IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE);
	imap_fetchatt_clear(&fa);
	CHECK_INT(fetch("fast", &fa, &err), 0);
	CHECK_INT(fa.flags,
	    IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE |
	        IMAP_FETCH_RFC822_SIZE);
	imap_fetchatt_clear(&fa);
	/* RFC 3501 section 8: "a003 fetch 12 full", "fetch 12 body[header]". */
	expect_name("body[header]", "BODY[HEADER]");
	CHECK_INT(fetch("FULL", &fa, &err), 0);
	CHECK(fa.flags & IMAP_FETCH_BODY);
	imap_fetchatt_clear(&fa);
	/* Macros stand alone, never in a list. */
	CHECK(!ok("(ALL)"));
	CHECK(!ok("(FLAGS FAST)"));
	CHECK(!ok("()"));
	CHECK(!ok("NIL"));
	CHECK(!ok("\"FLAGS\""));
}

static void
test_simple(void)
{
	struct imap_fetchatt fa;
	const char *err;

	CHECK_INT(fetch("(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY "
	                "BODYSTRUCTURE UID MODSEQ RFC822 RFC822.HEADER "
	                "rfc822.text)",
	              &fa, &err),
	    0);
	CHECK_INT(fa.flags, 0x7ff);
	CHECK_INT(fa.nsections, 0);
	imap_fetchatt_clear(&fa);
	CHECK_INT(fetch("UID", &fa, &err), 0);
	CHECK_INT(fa.flags, IMAP_FETCH_UID);
	imap_fetchatt_clear(&fa);
	CHECK(!ok("FOO"));
	CHECK(!ok("(FLAGS FOO)"));
	CHECK(!ok("BODY.PEEK"));
	CHECK(!ok("(FLAGS (UID))"));
}

static void
test_sections(void)
{
	struct imap_fetchatt fa;
	const struct imap_fetch_section *s;
	const char *err;

	CHECK_INT(fetch("(FLAGS BODY[HEADER.FIELDS (DATE FROM)])", &fa, &err),
	    0);
	CHECK_INT(fa.nsections, 1);
	s = &fa.sections[0];
	CHECK_INT(s->kind, IMAP_FETCH_KIND_BODY);
	CHECK(!s->peek);
	CHECK_INT(s->text, IMAP_SECTION_HEADER_FIELDS);
	CHECK_INT(s->nfields, 2);
	CHECK_STR(s->fields[0], "DATE");
	CHECK_STR(s->fields[1], "FROM");
	CHECK_STR(s->name, "BODY[HEADER.FIELDS (DATE FROM)]");
	imap_fetchatt_clear(&fa);

	CHECK_INT(fetch("body.peek[1.2.MIME]<10.20>", &fa, &err), 0);
	s = &fa.sections[0];
	CHECK(s->peek);
	CHECK_INT(s->nparts, 2);
	CHECK_INT(s->parts[0], 1);
	CHECK_INT(s->parts[1], 2);
	CHECK_INT(s->text, IMAP_SECTION_MIME);
	CHECK(s->partial);
	CHECK_INT(s->origin, 10);
	CHECK_INT(s->length, 20);
	CHECK_STR(s->name, "BODY[1.2.MIME]<10>");
	imap_fetchatt_clear(&fa);

	expect_name("BODY[]", "BODY[]");
	expect_name("BODY[TEXT]", "BODY[TEXT]");
	expect_name("BODY[header]", "BODY[HEADER]");
	expect_name("BODY[3]", "BODY[3]");
	expect_name("BODY[4.2.2.TEXT]", "BODY[4.2.2.TEXT]");
	expect_name("BODY[4.2.HEADER]", "BODY[4.2.HEADER]");
	expect_name("BODY[HEADER.FIELDS.NOT (Subject \"X-Y\")]<0.1>",
	    "BODY[HEADER.FIELDS.NOT (Subject X-Y)]<0>");
	expect_name("BODY[1.HEADER.FIELDS (a)]", "BODY[1.HEADER.FIELDS (a)]");
	expect_name("BODY[]<0.4294967296>", "BODY[]<0>");
	expect_name("BINARY[1]", "BINARY[1]");
	expect_name("BINARY.PEEK[1.2]<0.100>", "BINARY[1.2]<0>");
	expect_name("BINARY[]", "BINARY[]");
	expect_name("BINARY.SIZE[3]", "BINARY.SIZE[3]");
}

static void
test_invalid_sections(void)
{
	CHECK(!ok("BODY[MIME]")); /* MIME needs a part number */
	CHECK(!ok("BODY[0]"));    /* part numbers are nz-number */
	CHECK(!ok("BODY[1.0]"));
	CHECK(!ok("BODY[01]"));
	CHECK(!ok("BODY[1.]"));
	CHECK(!ok("BODY[.1]"));
	CHECK(!ok("BODY[1..2]"));
	CHECK(!ok("BODY[FOO]"));
	CHECK(!ok("BODY[HEADER.FIELDS]"));
	CHECK(!ok("BODY[HEADER.FIELDS ()]"));
	CHECK(!ok("BODY[HEADER.FIELDS (a:b)]"));
	CHECK(!ok("BODY[HEADER.FIELDS (a  b)]"));
	CHECK(!ok("BODY[HEADER.FIELDS (a)"));
	CHECK(!ok("BODY[TEXT]x"));
	CHECK(!ok("BODY[]<1>"));
	CHECK(!ok("BODY[]<1.0>"));
	CHECK(!ok("BODY[]<.1>"));
	CHECK(!ok("BODY[]<1.1"));
	CHECK(!ok("BINARY[TEXT]"));
	CHECK(!ok("BINARY[1.MIME]"));
	CHECK(!ok("BINARY.SIZE[1]<0.1>"));
	CHECK(!ok("BINARY.PEEK"));
	CHECK(!ok("RFC822[]"));
	CHECK(ok("BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21."
	         "22.23.24.25.26.27.28.29.30.31.32]"));
	CHECK(!ok("BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21."
	          "22.23.24.25.26.27.28.29.30.31.32.33]"));
}

static void
test_modifiers(void)
{
	struct imap_fetchatt fa;
	const char *err;

	CHECK_INT(fetch("(FLAGS) (CHANGEDSINCE 12345)", &fa, &err), 0);
	CHECK(fa.changedsince);
	CHECK_INT(fa.modseq, 12345);
	CHECK(fa.flags & IMAP_FETCH_MODSEQ);
	CHECK(!fa.vanished);
	imap_fetchatt_clear(&fa);
	CHECK_INT(fetch("(FLAGS) (CHANGEDSINCE 9 VANISHED)", &fa, &err), 0);
	CHECK(fa.vanished);
	imap_fetchatt_clear(&fa);
	CHECK_INT(fetch("FLAGS (VANISHED)", &fa, &err), -1);
	CHECK_STR(err, "VANISHED needs CHANGEDSINCE");
	CHECK(!ok("FLAGS (CHANGEDSINCE 0)"));
	CHECK(!ok("FLAGS (CHANGEDSINCE 9223372036854775808)"));
	CHECK(ok("FLAGS (CHANGEDSINCE 9223372036854775807)"));
	CHECK(!ok("FLAGS (CHANGEDSINCE)"));
	CHECK(!ok("FLAGS (CHANGEDSINCE x)"));
	CHECK(!ok("FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)"));
	CHECK(!ok("FLAGS (FOO)"));
	CHECK(!ok("FLAGS ()"));
	CHECK(!ok("FLAGS CHANGEDSINCE 1"));
	CHECK(!ok("FLAGS (CHANGEDSINCE 1) (VANISHED)"));
}

int
main(void)
{
	CHECK_RUN(test_macros);
	CHECK_RUN(test_simple);
	CHECK_RUN(test_sections);
	CHECK_RUN(test_invalid_sections);
	CHECK_RUN(test_modifiers);
	return check_summary();
}
