/* Unit tests for the incremental IMAP command tokenizer. */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "mime/mime.h"
#include "check.h"

static void
dump_arg(struct mime_buf *b, const struct imap_arg *a)
{
	size_t i;

	switch (a->type) {
	case IMAP_ARG_ATOM:
		mime_buf_add(b, a->str, a->len);
		break;
	case IMAP_ARG_NIL:
		mime_buf_adds(b, "NIL");
		break;
	case IMAP_ARG_STRING:
		mime_buf_addc(b, '"');
		mime_buf_add(b, a->str, a->len);
		mime_buf_addc(b, '"');
		break;
	case IMAP_ARG_LITERAL:
		mime_buf_printf(b, "%s{%zu:", a->literal8 ? "~" : "", a->len);
		for (i = 0; i < a->len; i++)
			if (a->str[i] == '\0')
				mime_buf_adds(b, "\\0");
			else
				mime_buf_addc(b, a->str[i]);
		mime_buf_addc(b, '}');
		break;
	case IMAP_ARG_LIST:
		mime_buf_addc(b, '(');
		for (i = 0; i < a->count; i++) {
			if (i > 0)
				mime_buf_addc(b, ' ');
			dump_arg(b, &a->list[i]);
		}
		mime_buf_addc(b, ')');
		break;
	}
}

/* A command as one comparable line: "tag|NAME|arg|arg". */
static char *
dump(const struct imap_cmd *cmd)
{
	struct mime_buf b = {0};
	size_t i;

	mime_buf_printf(&b, "%s|%s", cmd->tag, cmd->name);
	for (i = 0; i < cmd->nargs; i++) {
		mime_buf_addc(&b, '|');
		dump_arg(&b, &cmd->args[i]);
	}
	return mime_buf_finish(&b);
}

/*
 * Feeds s in pieces cut at split (0: whole), accepting every literal; the
 * dumps of commands are joined with "\n", errors as "ERR:tag:text".
 */
static char *
run(struct imap_parser *p, const char *s, size_t len, size_t split)
{
	struct mime_buf out = {0};
	struct imap_cmd *cmd;
	size_t off = 0, end, used;
	int r;

	while (off < len) {
		end = split && off < split ? split : len;
		r = imap_parser_feed(p, s + off, end - off, &used, &cmd);
		off += used;
		if (r == 1) {
			char *d = dump(cmd);

			mime_buf_printf(&out, "%s%s", out.len ? "\n" : "", d);
			free(d);
			imap_cmd_free(&cmd);
		} else if (r == -1) {
			const struct imap_parser_error *e =
			    imap_parser_error(p);

			mime_buf_printf(&out, "%sERR:%s:%s",
			    out.len ? "\n" : "", e->tag ? e->tag : "*",
			    e->text);
			if (e->fatal)
				break;
		} else if (imap_parser_literal(p) != NULL) {
			imap_parser_literal_accept(p);
		} else if (used == 0 && off < end) {
			break;
		}
	}
	return mime_buf_finish(&out);
}

static char *
runs(struct imap_parser *p, const char *s)
{
	return run(p, s, strlen(s), 0);
}

static char *
parse1(const char *s)
{
	struct imap_parser *p = imap_parser_new(NULL, IMAP_PARSER_UTF8);
	char *r = run(p, s, strlen(s), 0);

	imap_parser_free(&p);
	return r;
}

static void
expect(const char *in, const char *want)
{
	char *got = parse1(in);

	CHECK_STR(got, want);
	free(got);
}

static void
test_basic(void)
{
	expect("a001 CAPABILITY\r\n", "a001|CAPABILITY");
	expect("a1 noop\r\n", "a1|NOOP");
	expect("A142 SELECT INBOX\r\n", "A142|SELECT|INBOX");
	expect("a002 LOGIN SMITH SESAME\r\n", "a002|LOGIN|SMITH|SESAME");
	expect("A003 CREATE owatagusiam/\r\n", "A003|CREATE|owatagusiam/");
	expect("A682 LIST \"\" *\r\n", "A682|LIST|\"\"|*");
	expect("A101 LIST \"\" \"\"\r\n", "A101|LIST|\"\"|\"\"");
	expect("A102 LIST #news.comp.mail.misc \"\"\r\n",
	    "A102|LIST|#news.comp.mail.misc|\"\"");
	expect("A202 LIST ~/Mail/ %\r\n", "A202|LIST|~/Mail/|%");
	expect("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
	    "A042|STATUS|blurdybloop|(UIDNEXT MESSAGES)");
	expect("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
	    "A003|STORE|2:4|+FLAGS|(\\Deleted)");
	expect("A999 UID FETCH 4827313:4828442 FLAGS\r\n",
	    "A999|UID|FETCH|4827313:4828442|FLAGS");
	expect("a NOOP\n", "a|NOOP");
	expect("\r\n\r\na NOOP\r\n", "a|NOOP");
	expect("a X nil NIL \"NIL\"\r\n", "a|X|NIL|NIL|\"NIL\"");
	expect("a X () (a (b ()) c)\r\n", "a|X|()|(a (b ()) c)");
	expect("a X \"q\\\"uo\\\\te\"\r\n", "a|X|\"q\"uo\\te\"");
	expect("a X ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n",
	    "a|X|~peter/mail/&U,BTFw-/&ZeVnLIqe-");
}

/* RFC 3501 section 8, and command examples of RFC 9051 and extensions. */
static void
test_rfc_examples(void)
{
	expect("a001 login mrc secret\r\n", "a001|LOGIN|mrc|secret");
	expect("a002 select inbox\r\n", "a002|SELECT|inbox");
	expect("a003 fetch 12 full\r\n", "a003|FETCH|12|full");
	expect("a004 fetch 12 body[header]\r\n", "a004|FETCH|12|body[header]");
	expect("a005 store 12 +flags \\deleted\r\n",
	    "a005|STORE|12|+flags|\\deleted");
	expect("a006 logout\r\n", "a006|LOGOUT");
	expect("t1 ENABLE UTF8=ACCEPT CONDSTORE\r\n",
	    "t1|ENABLE|UTF8=ACCEPT|CONDSTORE");
	expect("A01 UID SEARCH RETURN (MIN MAX) 1:5000\r\n",
	    "A01|UID|SEARCH|RETURN|(MIN MAX)|1:5000");
	expect("A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "
	       "\"Smith\"\r\n",
	    "A282|SEARCH|RETURN|(SAVE)|FLAGGED|SINCE|1-Feb-1994|NOT|FROM|"
	    "\"Smith\"");
	expect("A03 FETCH $ (UID INTERNALDATE)\r\n",
	    "A03|FETCH|$|(UID INTERNALDATE)");
	expect("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 "
	       "41,43:211,214:541))\r\n",
	    "A02|SELECT|INBOX|(QRESYNC (67890007 20050715194045000 "
	    "41,43:211,214:541))");
	expect("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 "
	       "VANISHED)\r\n",
	    "s100|UID|FETCH|300:500|(FLAGS)|(CHANGEDSINCE 12345 VANISHED)");
	expect("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT "
	       "(\\Deleted)\r\n",
	    "d105|STORE|7,5,9|(UNCHANGEDSINCE 320162338)|+FLAGS.SILENT|"
	    "(\\Deleted)");
	expect("A01 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN "
	       "(CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
	    "A01|LIST|(SUBSCRIBED RECURSIVEMATCH)|\"\"|\"%\"|RETURN|"
	    "(CHILDREN STATUS (MESSAGES UNSEEN))");
	expect("a023 ID (\"name\" \"sodr\" \"version\" NIL)\r\n",
	    "a023|ID|(\"name\" \"sodr\" \"version\" NIL)");
	expect("a MOVE 42:69 foo\r\nb UID EXPUNGE 3000:3002\r\n",
	    "a|MOVE|42:69|foo\nb|UID|EXPUNGE|3000:3002");
	expect("A1 CREATE \"Sent Mail\" (USE (\\Sent))\r\n",
	    "A1|CREATE|\"Sent Mail\"|(USE (\\Sent))");
	expect("a APPEND x (\\Seen) UTF8 (~{2+}\r\nhi)\r\n",
	    "a|APPEND|x|(\\Seen)|UTF8|(~{2:hi})");
	expect("A3 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
	    "A3|AUTHENTICATE|PLAIN|dGVzdAB0ZXN0AHRlc3Q=");
}

static void
test_fetch_atoms(void)
{
	expect("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
	    "A654|FETCH|2:4|(FLAGS BODY[HEADER.FIELDS (DATE FROM)])");
	expect("a FETCH 1 BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>\r\n",
	    "a|FETCH|1|BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>");
	expect("a FETCH 1 (BODY[] BINARY[1.2]<5.5>)\r\n",
	    "a|FETCH|1|(BODY[] BINARY[1.2]<5.5>)");
	expect("a FETCH 1 (BODY[1 (])\r\n", "a|FETCH|1|(BODY[1 (])");
	expect("a FETCH 1 BODY[HEADER\r\n", "ERR:a:Unterminated section");
	expect("a FETCH 1 BODY[\"]\"]\r\n", "a|FETCH|1|BODY[\"]\"]");
	/* header-fld-name as a literal (astring) joins the atom quoted. */
	expect("a FETCH 1 BODY[HEADER.FIELDS ({4}\r\nDate {2+}\r\nTo)]\r\n",
	    "a|FETCH|1|BODY[HEADER.FIELDS (\"Date\" \"To\")]");
	expect("a FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT ({3}\r\na\"\\)]<0.9> "
	       "FLAGS)\r\n",
	    "a|FETCH|1|(BODY.PEEK[HEADER.FIELDS.NOT (\"a\\\"\\\\\")]<0.9> "
	    "FLAGS)");
	expect("a FETCH 1 BODY[HEADER.FIELDS ({2}\r\na\nb)]\r\nb NOOP\r\n",
	    "ERR:a:Invalid header field name\nb|NOOP");
	expect("a FETCH 1 BODY[HEADER.FIELDS ({x}\r\nb NOOP\r\n",
	    "ERR:a:Invalid literal\nb|NOOP");
}

static void
test_literals(void)
{
	expect("A003 APPEND saved-messages (\\Seen) {22}\r\n"
	       "My message\r\nline two\r\n\r\n",
	    "A003|APPEND|saved-messages|(\\Seen)|{22:My message\r\n"
	    "line two\r\n}");
	expect("a LOGIN {5}\r\nsmith {6+}\r\nsesame\r\n",
	    "a|LOGIN|{5:smith}|{6:sesame}");
	expect("a X {0}\r\n\r\n", "a|X|{0:}");
	expect("a X ({1}\r\nz)\r\n", "a|X|({1:z})");
	expect("a X {1}\r\nzz\r\nb NOOP\r\n",
	    "ERR:a:Missing space between arguments\nb|NOOP");
	expect("a X {1x}\r\nb NOOP\r\n", "ERR:a:Invalid literal\nb|NOOP");
	expect("a X {}\r\n", "ERR:a:Invalid literal");
	expect("a X {99999999999999999999}\r\n",
	    "ERR:a:Literal size too large");
}

/* The literal with NUL needs an explicit length. */
static void
test_literal_nul(void)
{
	static const char in[] =
	    "a X {3}\r\na\0b\r\nb APPEND x ~{3}\r\na\0b\r\n";
	struct imap_parser *p = imap_parser_new(NULL, 0);
	char *got = run(p, in, sizeof(in) - 1, 0);

	CHECK_STR(got, "ERR:a:NUL in literal\nb|APPEND|x|~{3:a\\0b}");
	free(got);
	imap_parser_free(&p);
}

/* Every split position must give the same result as the whole input. */
static void
test_splits(void)
{
	static const char in[] =
	    "A003 APPEND saved (\\Seen) \"7-Feb-1994 21:52:25 -0800\" "
	    "{10}\r\n0123456789 {3+}\r\nabc\r\n"
	    "b FETCH 1:* (BODY.PEEK[HEADER.FIELDS (A \"B C\")]<0.10>)\r\n"
	    "c BAD ) {4+}\r\nzzzz d NOOP\r\ne LOGIN \"x\\\"\" ~{2}\r\n\0\1\r\n";
	size_t len = sizeof(in) - 1, k;
	struct imap_parser *p = imap_parser_new(NULL, 0);
	char *whole = run(p, in, len, 0), *got;

	CHECK(strstr(whole, "ERR:c:Invalid argument") != NULL);
	CHECK(strstr(whole, "d NOOP") == NULL);
	CHECK(strstr(whole, "e|LOGIN|\"x\"\"|~{2:") != NULL);
	for (k = 1; k < len; k++) {
		got = run(p, in, len, k);
		CHECK_STR(got, whole);
		free(got);
	}
	free(whole);
	imap_parser_free(&p);
}

static void
test_byte_by_byte(void)
{
	static const char in[] = "a X (b {2}\r\nhi \"c\")\r\n";
	struct imap_parser *p = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd = NULL;
	size_t i, used;
	int r = 0;
	char *d;

	for (i = 0; i < sizeof(in) - 1; i++) {
		r = imap_parser_feed(p, in + i, 1, &used, &cmd);
		CHECK_INT(used, 1);
		if (imap_parser_literal(p) != NULL) {
			CHECK_INT(imap_parser_literal(p)->size, 2);
			CHECK(imap_parser_literal(p)->sync);
			imap_parser_literal_accept(p);
		}
	}
	CHECK_INT(r, 1);
	d = dump(cmd);
	CHECK_STR(d, "a|X|(b {2:hi} \"c\")");
	free(d);
	imap_cmd_free(&cmd);
	imap_parser_free(&p);
}

/* The announcement is reported before any literal byte is consumed. */
static void
test_literal_decision(void)
{
	static const char in[] = "a APPEND box {5+}\r\nhello\r\n";
	struct imap_parser *p = imap_parser_new(NULL, 0);
	const struct imap_literal_info *li;
	struct imap_cmd *cmd;
	size_t used;

	CHECK_INT(imap_parser_feed(p, in, strlen(in), &used, &cmd), 0);
	CHECK_INT(used, strlen("a APPEND box {5+}\r\n"));
	li = imap_parser_literal(p);
	CHECK(li != NULL && li->size == 5 && !li->sync && !li->literal8);
	/* Without a decision nothing more is consumed. */
	CHECK_INT(imap_parser_feed(p, in + used, 3, &used, &cmd), 0);
	CHECK_INT(used, 0);
	CHECK_INT(imap_parser_literal_accept(p), 0);
	CHECK_INT(imap_parser_literal_accept(p), -1);
	imap_parser_free(&p);
}

/* A refused non-synchronising literal is skipped, then parsing resumes. */
static void
test_literal_refuse(void)
{
	static const char in[] =
	    "a APPEND box {5+}\r\nb NOO {3+}\r\nxyz\r\nc NOOP\r\n";
	struct imap_parser *p = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd = NULL;
	size_t used, off;
	char *d;

	CHECK_INT(imap_parser_feed(p, in, strlen(in), &used, &cmd), 0);
	CHECK_INT(imap_parser_literal_refuse(p), 0);
	CHECK_INT(imap_parser_error(p)->code, IMAP_PERR_REFUSED);
	CHECK_STR(imap_parser_error(p)->tag, "a");
	off = used;
	CHECK_INT(imap_parser_feed(p, in + off, strlen(in) - off, &used, &cmd),
	    1);
	d = dump(cmd);
	CHECK_STR(d, "c|NOOP");
	free(d);
	imap_cmd_free(&cmd);

	/* A refused synchronising literal: the client sends nothing more. */
	CHECK_INT(imap_parser_feed(p, "d X {9}\r\ne NOOP\r\n", 17, &used, &cmd),
	    0);
	CHECK_INT(imap_parser_literal_refuse(p), 0);
	CHECK_INT(imap_parser_feed(p, "e NOOP\r\n", 8, &used, &cmd), 1);
	CHECK_STR(cmd->tag, "e");
	imap_cmd_free(&cmd);
	imap_parser_free(&p);
}

static void
test_limits(void)
{
	struct imap_parser_limits lim = {0};
	struct imap_parser *p;
	char *got, line[200];

	lim.line_max = 40;
	lim.literal_max = 10;
	lim.skip_max = 100;
	lim.args_max = 5;
	lim.depth_max = 2;
	p = imap_parser_new(&lim, IMAP_PARSER_LITERAL_MINUS);
	got = run(p, "a X ((()))\r\nb X (())\r\n", 22, 0);
	CHECK_STR(got, "ERR:a:Lists nested too deeply\nb|X|(())");
	free(got);
	got = run(p, "a X 1 2 3 4 5 6\r\nb X 1 2 3 4 5\r\n", 32, 0);
	CHECK_STR(got, "ERR:a:Too many arguments\nb|X|1|2|3|4|5");
	free(got);
	memset(line, 'x', sizeof(line));
	memcpy(line, "a X ", 4);
	memcpy(line + 100, "\r\nb NOOP\r\n", 10);
	got = run(p, line, 110, 0);
	CHECK_STR(got, "ERR:a:Command line too long\nb|NOOP");
	free(got);
	/* Too big: synchronising ends the command, non-sync is skipped. */
	got = runs(p, "a X {11}\r\nb X {11+}\r\n01234567890\r\nc NOOP\r\n");
	CHECK_STR(got,
	    "ERR:a:Literal too big\nERR:b:Literal too big\n"
	    "c|NOOP");
	free(got);
	CHECK_INT(imap_parser_error(p)->code, IMAP_PERR_LITERAL_TOO_BIG);
	/* Beyond skip_max the error is fatal. */
	got = run(p, "a X {101+}\r\n", 12, 0);
	CHECK_STR(got, "ERR:a:Literal too big");
	free(got);
	CHECK(imap_parser_error(p)->fatal);
	imap_parser_free(&p);

	/* LITERAL-: non-synchronising literals only up to 4096 octets. */
	p = imap_parser_new(NULL, IMAP_PARSER_LITERAL_MINUS);
	got = run(p, "a X {4097+}\r\n", 13, 0);
	CHECK_STR(got, "ERR:a:Literal too big");
	CHECK_INT(imap_parser_error(p)->code, IMAP_PERR_LITERAL_TOO_BIG);
	CHECK(!imap_parser_error(p)->fatal);
	free(got);
	imap_parser_free(&p);
}

static void
test_errors(void)
{
	expect("* NOOP\r\na NOOP\r\n", "ERR:*:Invalid tag\na|NOOP");
	expect("+a NOOP\r\n", "ERR:*:Invalid tag");
	expect("a\r\n", "ERR:a:Missing command");
	expect("a \r\n", "ERR:a:Missing command");
	expect("a NOOP \r\n", "ERR:a:Missing argument");
	expect("a X  b\r\n", "ERR:a:Invalid argument");
	expect("a X (b\r\nc NOOP\r\n", "ERR:a:Unclosed list\nc|NOOP");
	expect("a X b)\r\n", "ERR:a:Unexpected ')'");
	expect("a X (b )\r\n", "ERR:a:Invalid argument");
	expect("a X \"b\r\nc NOOP\r\n",
	    "ERR:a:Invalid character in quoted string\nc|NOOP");
	expect("a X \"\\a\"\r\n", "ERR:a:Invalid escape in quoted string");
	expect("a X b\"c\r\n", "ERR:a:Invalid character in atom");
	expect("a X\rb\r\n", "ERR:a:CR without LF");
	expect("a X b\rc\r\n", "ERR:a:CR without LF");
	expect("a X (b)c\r\n", "ERR:a:Missing space between arguments");
	expect("a X \"\xff\"\r\n", "ERR:a:Invalid UTF-8 in quoted string");
	expect("a X \"caf\xc3\xa9\"\r\n", "a|X|\"caf\xc3\xa9\"");
}

static void
test_seven_bit(void)
{
	struct imap_parser *p = imap_parser_new(NULL, 0);
	char *got = run(p, "a X \"caf\xc3\xa9\"\r\n", 13, 0);

	CHECK_STR(got, "ERR:a:Invalid character in quoted string");
	free(got);
	imap_parser_set_flags(p, IMAP_PARSER_UTF8);
	got = run(p, "a X \"caf\xc3\xa9\"\r\n", 13, 0);
	CHECK_STR(got, "a|X|\"caf\xc3\xa9\"");
	free(got);
	imap_parser_free(&p);
}

static void
test_line(void)
{
	struct imap_parser *p = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd;
	char *line;
	size_t used;
	static const char in[] = "a IDLE\r\nDO";

	CHECK_INT(imap_parser_feed(p, in, strlen(in), &used, &cmd), 1);
	imap_cmd_free(&cmd);
	CHECK_INT(imap_parser_line(p, in + used, 2, &used, &line), 0);
	CHECK_INT(used, 2);
	CHECK_INT(imap_parser_line(p, "NE\r\nb NOOP\r\n", 12, &used, &line), 1);
	CHECK_INT(used, 4);
	CHECK_STR(line, "DONE");
	xfree_secret_str(line);
	CHECK_INT(imap_parser_feed(p, "b NOOP\r\n", 8, &used, &cmd), 1);
	CHECK_STR(cmd->name, "NOOP");
	imap_cmd_free(&cmd);
	CHECK_INT(imap_parser_line(p, "\r\n", 2, &used, &line), 1);
	CHECK_STR(line, "");
	free(line);
	imap_parser_free(&p);
}

static void
test_helpers(void)
{
	struct imap_parser *p = imap_parser_new(NULL, 0);
	struct imap_cmd *cmd;
	size_t used;

	CHECK_INT(imap_parser_feed(p, "a X nil \"s\" (l)\r\n", 17, &used, &cmd),
	    1);
	CHECK(imap_arg_atom_is(&cmd->args[0], "NIL"));
	CHECK_STR(imap_arg_astring(&cmd->args[0]), "nil");
	CHECK_STR(imap_arg_astring(&cmd->args[1]), "s");
	CHECK(!imap_arg_atom_is(&cmd->args[1], "s"));
	CHECK(imap_arg_astring(&cmd->args[2]) == NULL);
	imap_cmd_free(&cmd);
	CHECK(cmd == NULL);
	imap_parser_free(&p);
	CHECK(p == NULL);
	imap_parser_free(&p);
}

int
main(void)
{
	CHECK_RUN(test_basic);
	CHECK_RUN(test_rfc_examples);
	CHECK_RUN(test_fetch_atoms);
	CHECK_RUN(test_literals);
	CHECK_RUN(test_literal_nul);
	CHECK_RUN(test_splits);
	CHECK_RUN(test_byte_by_byte);
	CHECK_RUN(test_literal_decision);
	CHECK_RUN(test_literal_refuse);
	CHECK_RUN(test_limits);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_seven_bit);
	CHECK_RUN(test_line);
	CHECK_RUN(test_helpers);
	return check_summary();
}
