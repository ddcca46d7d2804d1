/* Unit tests for the RFC 7162 SELECT parameters and STORE modifiers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "check.h"

/* Parses "t SELECT INBOX <params>"; returns 0 or -1 with *p filled. */
static int
sel(const char *params, struct imap_condstore_select *p)
{
	struct imap_parser *ps = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd = NULL;
	const char *err = NULL;
	char line[512];
	size_t used;
	int r = -2;

	snprintf(line, sizeof(line), "t SELECT INBOX %s\r\n", params);
	memset(p, 0, sizeof(*p));
	if (imap_parser_feed(ps, line, strlen(line), &used, &cmd) == 1)
		r = imap_condstore_select_parse(cmd->nargs > 1 ? &cmd->args[1] :
		                                                 NULL,
		    p, &err);
	if (r == -1)
		CHECK(err != NULL);
	imap_cmd_free(&cmd);
	imap_parser_free(&ps);
	return r;
}

static int
sel_ok(const char *params)
{
	struct imap_condstore_select p;
	int r = sel(params, &p);

	imap_condstore_select_clear(&p);
	return r == 0;
}

static void
test_select_params(void)
{
	struct imap_condstore_select p;

	CHECK_INT(sel("(CONDSTORE)", &p), 0);
	CHECK_INT(p.condstore, 1);
	CHECK_INT(p.qresync, 0);
	imap_condstore_select_clear(&p);

	CHECK_INT(sel("(QRESYNC (67890007 90060115194045000 41:211,214))", &p),
	    0);
	CHECK_INT(p.qresync, 1);
	CHECK_INT(p.uidvalidity, 67890007);
	CHECK(p.modseq == 90060115194045000ull);
	CHECK_INT(p.has_known, 1);
	CHECK_INT(imap_seqset_contains(&p.known, 41), 1);
	CHECK_INT(imap_seqset_contains(&p.known, 212), 0);
	CHECK_INT(imap_seqset_contains(&p.known, 214), 1);
	imap_condstore_select_clear(&p);

	CHECK_INT(sel("(qresync (1 2 1:9 (1,3 2,7)) condstore)", &p), 0);
	CHECK_INT(p.condstore, 1);
	CHECK_INT(p.qresync, 1);
	imap_condstore_select_clear(&p);
	/* seq-match-data without known-uids. */
	CHECK(sel_ok("(QRESYNC (1 2 (1:2 5:6)))"));
	CHECK(sel_ok("(QRESYNC (1 9223372036854775807))"));
}

static void
test_select_bad(void)
{
	static const char *const bad[] = {"()", "(FOO)", "CONDSTORE",
	    "(QRESYNC)", "(QRESYNC ())", "(QRESYNC (1))", "(QRESYNC (0 1))",
	    "(QRESYNC (1 0))", "(QRESYNC (4294967296 1))",
	    "(QRESYNC (1 9223372036854775808))", "(QRESYNC (1 -1))",
	    "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 $))",
	    "(QRESYNC (1 1 1 (1:2 3)))", "(QRESYNC (1 1 1 (1 2 3)))",
	    "(QRESYNC (1 1 1 (1 2) 4))", "(QRESYNC (1 1) QRESYNC (1 1))",
	    "(QRESYNC 1 1)", "(QRESYNC (\"1\" 1))"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sel_ok(bad[i]))
			CHECK_FAIL("accepted %s", bad[i]);
}

static void
test_select_none(void)
{
	struct imap_condstore_select p;
	const char *err;

	CHECK_INT(imap_condstore_select_parse(NULL, &p, &err), 0);
	CHECK_INT(p.condstore | p.qresync, 0);
	imap_condstore_select_clear(&p);
}

/* Parses "t STORE 1 <mods> FLAGS ()" modifiers; 0 or -1. */
static int
mods(const char *text, uint64_t *v)
{
	struct imap_parser *ps = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd = NULL;
	const char *err;
	char line[256];
	size_t used;
	int r = -2;

	snprintf(line, sizeof(line), "t STORE 1 %s FLAGS ()\r\n", text);
	if (imap_parser_feed(ps, line, strlen(line), &used, &cmd) == 1)
		r = imap_condstore_store_modifiers(&cmd->args[1], v, &err);
	imap_cmd_free(&cmd);
	imap_parser_free(&ps);
	return r;
}

static void
test_store_modifiers(void)
{
	uint64_t v = 1;

	CHECK_INT(mods("(UNCHANGEDSINCE 0)", &v), 0);
	CHECK(v == 0);
	CHECK_INT(mods("(unchangedsince 320162338)", &v), 0);
	CHECK(v == 320162338);
	CHECK_INT(mods("(UNCHANGEDSINCE)", &v), -1);
	CHECK_INT(mods("(UNCHANGEDSINCE x)", &v), -1);
	CHECK_INT(mods("(UNCHANGEDSINCE 1 2)", &v), -1);
	CHECK_INT(mods("(CHANGEDSINCE 1)", &v), -1);
	CHECK_INT(mods("UNCHANGEDSINCE", &v), -1);
	CHECK_INT(mods("(UNCHANGEDSINCE 99999999999999999999)", &v), -1);
}

int
main(void)
{
	CHECK_RUN(test_select_params);
	CHECK_RUN(test_select_bad);
	CHECK_RUN(test_select_none);
	CHECK_RUN(test_store_modifiers);
	return check_summary();
}
