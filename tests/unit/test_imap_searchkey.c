/* Unit tests for SEARCH program parsing. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_searchkey.h"
#include "mime/mime.h"
#include "check.h"

static void
dump_key(struct mime_buf *b, const struct imap_skey *k)
{
	static const char *const cmps[] = {"<", "=", ">=", ">"};
	size_t i;
	char *s;

	switch (k->type) {
	case IMAP_SKEY_AND:
	case IMAP_SKEY_OR:
	case IMAP_SKEY_NOT:
		mime_buf_adds(b,
		    k->type == IMAP_SKEY_AND    ? "(and" :
		        k->type == IMAP_SKEY_OR ? "(or" :
		                                  "(not");
		for (i = 0; i < k->nchild; i++) {
			mime_buf_addc(b, ' ');
			dump_key(b, &k->child[i]);
		}
		mime_buf_addc(b, ')');
		break;
	case IMAP_SKEY_ALL:
		mime_buf_adds(b, "all");
		break;
	case IMAP_SKEY_SEQSET:
	case IMAP_SKEY_UID:
		mime_buf_adds(b, k->type == IMAP_SKEY_UID ? "uid:" : "seq:");
		if (k->set.saved) {
			mime_buf_addc(b, '$');
			break;
		}
		for (i = 0; i < k->set.n; i++)
			mime_buf_printf(b, "%s%u-%u", i ? "," : "",
			    k->set.r[i].first, k->set.r[i].last);
		break;
	case IMAP_SKEY_FLAG:
		mime_buf_printf(b, "flag:%s", k->str);
		break;
	case IMAP_SKEY_HEADER:
		mime_buf_printf(b, "hdr:%s=%s", k->field, k->str);
		break;
	case IMAP_SKEY_BODY:
	case IMAP_SKEY_TEXT:
		mime_buf_printf(b, "%s:%s",
		    k->type == IMAP_SKEY_BODY ? "body" : "text", k->str);
		break;
	case IMAP_SKEY_DATE:
	case IMAP_SKEY_SENTDATE:
		mime_buf_printf(b, "%s%s%04d-%02d-%02d",
		    k->type == IMAP_SKEY_DATE ? "date" : "sent", cmps[k->cmp],
		    k->date.year, k->date.month, k->date.day);
		break;
	case IMAP_SKEY_SIZE:
		mime_buf_printf(b, "size%s%llu", cmps[k->cmp],
		    (unsigned long long)k->num);
		break;
	case IMAP_SKEY_MODSEQ:
		s = k->field;
		mime_buf_printf(b, "modseq>=%llu%s%s/%d",
		    (unsigned long long)k->num, s ? ":" : "", s ? s : "",
		    k->entry_type);
		break;
	}
}

static const char *const errs[] = {"", "BAD", "BADCHARSET", "COMPLEX"};

/* Parses "t SEARCH <prog>" and dumps the tree, or the error class. */
static char *
search_flags(const char *prog, unsigned flags, struct imap_search *out)
{
	struct imap_parser_limits lim = {0};
	struct imap_parser *p;
	struct imap_cmd *cmd = NULL;
	struct mime_buf b = {0};
	enum imap_search_err err;
	const char *text;
	char *line = NULL;
	size_t used, off = 0;
	int r;

	lim.line_max = 1 << 20;
	lim.args_max = 100000;
	lim.depth_max = 100;
	p = imap_parser_new(&lim, IMAP_PARSER_UTF8);
	mime_buf_printf(&b, "t SEARCH %s\r\n", prog);
	line = mime_buf_finish(&b);
	/* Feed the line, accepting literals, until a command or an error. */
	while ((r = imap_parser_feed(p, line + off, strlen(line + off), &used,
	            &cmd)) == 0 &&
	    imap_parser_literal(p) != NULL) {
		imap_parser_literal_accept(p);
		off += used;
	}
	if (r != 1) {
		mime_buf_adds(&b, "TOKENIZER");
	} else if (imap_searchkey_parse(cmd->args, cmd->nargs, flags, out, &err,
	               &text) < 0) {
		CHECK(text != NULL);
		mime_buf_adds(&b, errs[err]);
	} else {
		dump_key(&b, out->root);
	}
	free(line);
	imap_cmd_free(&cmd);
	imap_parser_free(&p);
	return mime_buf_finish(&b);
}

static void
expect_flags(const char *prog, unsigned flags, const char *want)
{
	struct imap_search s = {0};
	char *got = search_flags(prog, flags, &s);

	CHECK_STR(got, want);
	free(got);
	imap_searchkey_clear(&s);
}

static void
expect(const char *prog, const char *want)
{
	expect_flags(prog, 0, want);
}

static void
test_rfc_examples(void)
{
	expect("FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
	    "(and flag:\\Flagged date>=1994-02-01 (not hdr:FROM=Smith))");
	expect("TEXT \"string not in mailbox\"",
	    "(and text:string not in mailbox)");
	expect("CHARSET UTF-8 TEXT {12}\r\nXXXXXXXXXXXX",
	    "(and text:XXXXXXXXXXXX)");
	expect("DELETED FROM \"SMITH\" SINCE 1-Feb-1994",
	    "(and flag:\\Deleted hdr:FROM=SMITH date>=1994-02-01)");
	expect("OR ANSWERED UNSEEN",
	    "(and (or flag:\\Answered (not flag:\\Seen)))");
}

static void
test_all_keys(void)
{
	expect("ALL ANSWERED DELETED DRAFT FLAGGED SEEN RECENT",
	    "(and all flag:\\Answered flag:\\Deleted flag:\\Draft "
	    "flag:\\Flagged flag:\\Seen flag:\\Recent)");
	expect("UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
	    "(and (not flag:\\Answered) (not flag:\\Deleted) "
	    "(not flag:\\Draft) (not flag:\\Flagged) (not flag:\\Seen))");
	expect("NEW OLD",
	    "(and (and flag:\\Recent (not flag:\\Seen)) (not flag:\\Recent))");
	expect("KEYWORD $Forwarded UNKEYWORD Junk",
	    "(and flag:$Forwarded (not flag:Junk))");
	expect("BCC a CC b FROM c SUBJECT \"d e\" TO f BODY g TEXT h",
	    "(and hdr:BCC=a hdr:CC=b hdr:FROM=c hdr:SUBJECT=d e hdr:TO=f "
	    "body:g text:h)");
	expect("HEADER X-Spam \"\" header List-Id {3}\r\nfoo",
	    "(and hdr:X-Spam= hdr:List-Id=foo)");
	expect("HEADER X-Spam \"\"", "(and hdr:X-Spam=)");
	expect("BEFORE 1-Jan-2000 ON \"29-Feb-2000\" SINCE 31-dec-1999",
	    "(and date<2000-01-01 date=2000-02-29 date>=1999-12-31)");
	expect("SENTBEFORE 1-Jan-2000 SENTON 02-Mar-2001 SENTSINCE 9-Sep-2009",
	    "(and sent<2000-01-01 sent=2001-03-02 sent>=2009-09-09)");
	expect("LARGER 100 SMALLER 5000000000",
	    "(and size>100 size<5000000000)");
	expect("UID 1:*,5 1,3:4 $", "(and uid:1-0,5-5 seq:1-1,3-4 seq:$)");
	expect("(SEEN (DRAFT)) NOT (ALL)",
	    "(and (and flag:\\Seen (and flag:\\Draft)) (not (and all)))");
	expect("or not seen (deleted) uid $",
	    "(and (or (not flag:\\Seen) (and flag:\\Deleted)) uid:$)");
}

static void
test_modseq(void)
{
	expect("MODSEQ 620162338", "(and modseq>=620162338/0)");
	expect("MODSEQ \"/flags/\\\\draft\" all 620162338",
	    "(and modseq>=620162338:/flags/\\draft/3)");
	expect("MODSEQ \"/flags/$x\" priv 5 MODSEQ \"/flags/y\" SHARED 0",
	    "(and modseq>=5:/flags/$x/1 modseq>=0:/flags/y/2)");
	expect("MODSEQ \"/flags/x\" other 5", "BAD");
	expect("MODSEQ \"/foo/x\" all 5", "BAD");
	expect("MODSEQ \"/flags/\" all 5", "BAD");
	expect("MODSEQ", "BAD");
	expect("MODSEQ -1", "BAD");
	expect("MODSEQ 9223372036854775808", "BAD");
}

static void
test_prefixes(void)
{
	struct imap_search s = {0};
	char *got;

	expect("CHARSET US-ASCII ALL", "(and all)");
	expect("charset \"utf-8\" ALL", "(and all)");
	expect("CHARSET ISO-8859-1 ALL", "BADCHARSET");
	expect("CHARSET", "BAD");
	expect("CHARSET UTF-8", "BAD");
	expect("ALL CHARSET UTF-8", "BAD");
	got = search_flags("RETURN (MIN MAX) CHARSET UTF-8 UNSEEN", 0, &s);
	CHECK_STR(got, "(and (not flag:\\Seen))");
	CHECK(s.esearch);
	CHECK(s.utf8);
	CHECK_INT(s.ret, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX);
	free(got);
	imap_searchkey_clear(&s);
	got = search_flags("RETURN () ALL", 0, &s);
	CHECK_INT(s.ret, IMAP_SEARCH_RET_ALL);
	free(got);
	imap_searchkey_clear(&s);
	got = search_flags("RETURN (count save all) ALL", 0, &s);
	CHECK_INT(s.ret,
	    IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_SAVE | IMAP_SEARCH_RET_ALL);
	free(got);
	imap_searchkey_clear(&s);
	expect("RETURN (FOO) ALL", "BAD");
	expect("RETURN ALL", "BAD");
	expect("RETURN (MIN)", "BAD");
}

static void
test_errors(void)
{
	expect("", "TOKENIZER");
	expect("FOO", "BAD");
	expect("ALL ()", "BAD");
	expect("NOT", "BAD");
	expect("OR SEEN", "BAD");
	expect("FROM", "BAD");
	expect("FROM (a)", "BAD");
	expect("HEADER X", "BAD");
	expect("KEYWORD \\Seen", "BAD");
	expect("KEYWORD \"x\"", "BAD");
	expect("LARGER x", "BAD");
	expect("LARGER -1", "BAD");
	expect("SINCE 1-Feb-94", "BAD");
	expect("SINCE 30-Feb-2000", "BAD");
	expect("SINCE 29-Feb-1900", "BAD");
	expect("SINCE 0-Jan-2000", "BAD");
	expect("SINCE 123-Jan-2000", "BAD");
	expect("SINCE 1-Foo-2000", "BAD");
	expect("SINCE 1/Jan/2000", "BAD");
	expect("SINCE (1-Jan-2000)", "BAD");
	expect("UID", "BAD");
	expect("UID 0", "BAD");
	expect("UID x", "BAD");
	expect("1:0", "BAD");
	expect("\"1\"", "BAD");
	expect("NIL", "BAD");
	expect_flags("RECENT", IMAP_SEARCH_REV2, "BAD");
	expect_flags("NEW", IMAP_SEARCH_REV2, "BAD");
	expect_flags("OLD", IMAP_SEARCH_REV2, "BAD");
	expect_flags("SEEN UNKEYWORD x", IMAP_SEARCH_REV2,
	    "(and flag:\\Seen (not flag:x))");
}

/* Deep nesting and huge programs fail cleanly, without deep recursion. */
static void
test_bounds(void)
{
	struct mime_buf b = {0};
	char *prog;
	int i;

	for (i = 0; i < 10000; i++)
		mime_buf_adds(&b, "NOT ");
	mime_buf_adds(&b, "ALL");
	prog = mime_buf_finish(&b);
	expect(prog, "COMPLEX");
	free(prog);

	for (i = 0; i < IMAP_SEARCH_MAX_DEPTH - 1; i++)
		mime_buf_adds(&b, "NOT ");
	mime_buf_adds(&b, "ALL");
	prog = mime_buf_finish(&b);
	{
		struct imap_search s = {0};
		char *got = search_flags(prog, 0, &s);

		CHECK(strncmp(got, "(and (not (not", 14) == 0);
		free(got);
		imap_searchkey_clear(&s);
	}
	free(prog);

	for (i = 0; i < 5000; i++)
		mime_buf_adds(&b, "OR ALL ");
	mime_buf_adds(&b, "ALL");
	prog = mime_buf_finish(&b);
	expect(prog, "COMPLEX");
	free(prog);

	for (i = 0; i < IMAP_SEARCH_MAX_KEYS + 1; i++)
		mime_buf_adds(&b, "ALL ");
	mime_buf_adds(&b, "ALL");
	prog = mime_buf_finish(&b);
	expect(prog, "COMPLEX");
	free(prog);

	for (i = 0; i < 90; i++)
		mime_buf_addc(&b, '(');
	mime_buf_adds(&b, "ALL");
	for (i = 0; i < 90; i++)
		mime_buf_addc(&b, ')');
	prog = mime_buf_finish(&b);
	expect(prog, "COMPLEX");
	free(prog);
}

int
main(void)
{
	CHECK_RUN(test_rfc_examples);
	CHECK_RUN(test_all_keys);
	CHECK_RUN(test_modseq);
	CHECK_RUN(test_prefixes);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_bounds);
	return check_summary();
}
