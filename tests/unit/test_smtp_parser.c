/* Unit tests for the SMTP command-line parser. */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parser.h"
#include "check.h"

/* Parses s; returns smtp_parse()'s result and leaves the command in cmd. */
static int
parse(const char *s, struct smtp_cmd *cmd)
{
	return smtp_parse(s, strlen(s), cmd);
}

/* The reply code of a failed parse as a number, 0 when it succeeded. */
static int
code(const char *s)
{
	struct smtp_cmd cmd;
	int r = parse(s, &cmd);
	int c = r == 0 ? 0 : atoi(cmd.error);

	smtp_cmd_clear(&cmd);
	return c;
}

/* The path of a MAIL or RCPT line that parses, or NULL. */
static char *
path_of(const char *s)
{
	struct smtp_cmd cmd;
	char *p = NULL;

	if (parse(s, &cmd) == 0) {
		p = cmd.path;
		cmd.path = NULL;
	}
	smtp_cmd_clear(&cmd);
	return p;
}

static void
check_path(const char *line, const char *want)
{
	char *p = path_of(line);

	if (want == NULL && p != NULL)
		CHECK_FAIL("%s: parsed as \"%s\"", line, p);
	else if (want != NULL)
		CHECK_STR(p, want);
	free(p);
}

static void
test_verbs(void)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
	} t[] = {
	    {"HELO a.example", SMTP_CMD_HELO},
	    {"ehlo a.example", SMTP_CMD_EHLO},
	    {"LhLo a.example", SMTP_CMD_LHLO},
	    {"DATA", SMTP_CMD_DATA},
	    {"rset", SMTP_CMD_RSET},
	    {"NOOP", SMTP_CMD_NOOP},
	    {"NOOP anything at all", SMTP_CMD_NOOP},
	    {"QUIT", SMTP_CMD_QUIT},
	    {"quit  ", SMTP_CMD_QUIT},
	    {"VRFY bob", SMTP_CMD_VRFY},
	    {"EXPN list", SMTP_CMD_EXPN},
	    {"HELP", SMTP_CMD_HELP},
	    {"HELP MAIL", SMTP_CMD_HELP},
	    {"StartTLS", SMTP_CMD_STARTTLS},
	    {"AUTH PLAIN", SMTP_CMD_AUTH},
	    {"BDAT 10", SMTP_CMD_BDAT},
	};
	struct smtp_cmd cmd;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK_INT(parse(t[i].line, &cmd), 0);
		CHECK_INT(cmd.verb, t[i].verb);
		smtp_cmd_clear(&cmd);
	}
	CHECK_INT(parse("EHLO  mx.example.org ", &cmd), 0);
	CHECK_STR(cmd.arg, "mx.example.org");
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("HELP mail", &cmd), 0);
	CHECK_STR(cmd.arg, "mail");
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("EHLO [192.0.2.1]\r", &cmd), 0);
	CHECK_STR(cmd.arg, "[192.0.2.1]");
	smtp_cmd_clear(&cmd);
}

static void
test_bad_verbs(void)
{
	struct smtp_cmd cmd;

	CHECK_INT(code("FOO"), 500);
	CHECK_INT(code(""), 500);
	CHECK_INT(code(" MAIL FROM:<a@b>"), 500);
	CHECK_INT(code("DATAX"), 500);
	CHECK_INT(code("GET / HTTP/1.1"), 500);
	CHECK_INT(parse("XYZZY", &cmd), -1);
	CHECK_INT(cmd.verb, SMTP_CMD_UNKNOWN);
	CHECK_STR(cmd.error, "500 5.5.1 Command unrecognized");
	smtp_cmd_clear(&cmd);
	CHECK_INT(code("DATA now"), 501);
	CHECK_INT(code("RSET x"), 501);
	CHECK_INT(code("QUIT x"), 501);
	CHECK_INT(code("STARTTLS x"), 501);
	CHECK_INT(code("EHLO"), 501);
	CHECK_INT(code("HELO "), 501);
	CHECK_INT(code("EHLO a\tb\x01"), 501);
	CHECK_INT(code("VRFY"), 501);
	CHECK_INT(smtp_parse("NOOP \0x", 7, &cmd), -1);
	CHECK_INT(atoi(cmd.error), 500);
	CHECK_INT(cmd.verb, SMTP_CMD_NOOP);
	smtp_cmd_clear(&cmd);
}

static void
test_mail(void)
{
	struct smtp_cmd cmd;

	CHECK_INT(parse("MAIL FROM:<alice@example.org>", &cmd), 0);
	CHECK_INT(cmd.verb, SMTP_CMD_MAIL);
	CHECK_STR(cmd.path, "alice@example.org");
	CHECK_INT(cmd.has_size, 0);
	CHECK_INT(cmd.body, SMTP_BODY_NONE);
	CHECK_INT(cmd.smtputf8, 0);
	smtp_cmd_clear(&cmd);

	CHECK_INT(parse("mail from:<>", &cmd), 0);
	CHECK_STR(cmd.path, "");
	smtp_cmd_clear(&cmd);

	CHECK_INT(parse("MAIL FROM: <a@b.c> SIZE=12345 body=8bitmime SMTPUTF8",
	              &cmd),
	    0);
	CHECK_STR(cmd.path, "a@b.c");
	CHECK_INT(cmd.has_size, 1);
	CHECK_INT(cmd.size, 12345);
	CHECK_INT(cmd.body, SMTP_BODY_8BITMIME);
	CHECK_INT(cmd.smtputf8, 1);
	smtp_cmd_clear(&cmd);

	CHECK_INT(parse("MAIL FROM:<a@b.c> BODY=7BIT", &cmd), 0);
	CHECK_INT(cmd.body, SMTP_BODY_7BIT);
	smtp_cmd_clear(&cmd);

	CHECK_INT(parse("MAIL FROM:<a@b.c> SIZE=18446744073709551615", &cmd),
	    0);
	CHECK(cmd.size == UINT64_MAX);
	smtp_cmd_clear(&cmd);
}

static void
test_mail_params(void)
{
	CHECK_INT(code("MAIL FROM:<a@b.c> RET=FULL"), 555);
	CHECK_INT(code("MAIL FROM:<a@b.c> ENVID=x"), 555);
	CHECK_INT(code("MAIL FROM:<a@b.c> BODY=BINARYMIME"), 555);
	CHECK_INT(code("MAIL FROM:<a@b.c> BODY"), 555);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE=x1"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE=-1"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE=18446744073709551616"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE=1 SIZE=2"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SMTPUTF8=yes"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> SIZE="), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> =1"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c> -X"), 501);
	CHECK_INT(code("MAIL FROM:<a@b.c>SIZE=1"), 501);
	CHECK_INT(code("RCPT TO:<a@b.c> NOTIFY=NEVER"), 555);
	CHECK_INT(code("MAIL FROM:<a@b.c>   "), 0);
	CHECK_INT(code("MAIL FROM:<a@b.c>  SIZE=1  "), 0);
}

static void
test_rcpt(void)
{
	struct smtp_cmd cmd;

	CHECK_INT(parse("RCPT TO:<bob@example.org>", &cmd), 0);
	CHECK_INT(cmd.verb, SMTP_CMD_RCPT);
	CHECK_STR(cmd.path, "bob@example.org");
	smtp_cmd_clear(&cmd);
	check_path("RCPT TO:<Postmaster>", "postmaster");
	check_path("rcpt to:<POSTMASTER>", "postmaster");
	check_path("RCPT TO:<postmaster@example.org>",
	    "postmaster@example.org");
	check_path("RCPT TO:<>", NULL);
	check_path("MAIL FROM:<postmaster>", NULL);
	CHECK_INT(code("RCPT TO:<>"), 501);
	CHECK_INT(code("RCPT TO:"), 501);
	CHECK_INT(code("RCPT TO"), 501);
	CHECK_INT(code("RCPT FROM:<a@b>"), 501);
	CHECK_INT(code("RCPT"), 501);
	CHECK_INT(code("MAIL TO:<a@b>"), 501);
	CHECK_INT(code("MAIL FROM:a@b"), 501);
	CHECK_INT(code("MAIL FROM:<a@b"), 501);
	CHECK_INT(code("MAIL FROM:<a@b>x"), 501);
}

static void
test_mailboxes(void)
{
	check_path("RCPT TO:<a.b+c@d-e.f.example>", "a.b+c@d-e.f.example");
	check_path("RCPT TO:<!#$%&'*+-/=?^_`{|}~@x>", "!#$%&'*+-/=?^_`{|}~@x");
	check_path("RCPT TO:<a@localhost>", "a@localhost");
	check_path("RCPT TO:<a@123.example>", "a@123.example");
	check_path("RCPT TO:<\"john\"@x.org>", "john@x.org");
	check_path("RCPT TO:<\"j.o.hn\"@x.org>", "j.o.hn@x.org");
	check_path("RCPT TO:<\"john smith\"@x.org>", "\"john smith\"@x.org");
	check_path("RCPT TO:<\"a\\\"b\"@x.org>", "\"a\\\"b\"@x.org");
	check_path("RCPT TO:<\"\"@x.org>", "\"\"@x.org");
	check_path("RCPT TO:<\"a..b\"@x.org>", "\"a..b\"@x.org");
	check_path("RCPT TO:<a@[192.0.2.1]>", "a@[192.0.2.1]");
	check_path("RCPT TO:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]");
	check_path("RCPT TO:<a@[x-tag:anything]>", "a@[x-tag:anything]");
	check_path("RCPT TO:<@relay.example:a@b.c>", "a@b.c");
	check_path("RCPT TO:<@r1.example,@r2.example:a@b.c>", "a@b.c");

	check_path("RCPT TO:<a..b@x>", NULL);
	check_path("RCPT TO:<.a@x>", NULL);
	check_path("RCPT TO:<a.@x>", NULL);
	check_path("RCPT TO:<a b@x>", NULL);
	check_path("RCPT TO:<a@>", NULL);
	check_path("RCPT TO:<@x>", NULL);
	check_path("RCPT TO:<a>", NULL);
	check_path("RCPT TO:<a@b@c>", NULL);
	check_path("RCPT TO:<a@-b.c>", NULL);
	check_path("RCPT TO:<a@b-.c>", NULL);
	check_path("RCPT TO:<a@b..c>", NULL);
	check_path("RCPT TO:<a@b.c.>", NULL);
	check_path("RCPT TO:<a@.b>", NULL);
	check_path("RCPT TO:<a@b_c>", NULL);
	check_path("RCPT TO:<a@[192.0.2.256]>", NULL);
	check_path("RCPT TO:<a@[IPv6:zz::1]>", NULL);
	check_path("RCPT TO:<a@[1.2.3.4>", NULL);
	check_path("RCPT TO:<a@[]>", NULL);
	check_path("RCPT TO:<a@[tag:]>", NULL);
	check_path("RCPT TO:<\"unterminated@x>", NULL);
	check_path("RCPT TO:<\"a\tb\"@x>", NULL);
	check_path("RCPT TO:<a(comment)@x>", NULL);
	check_path("RCPT TO:<@r1:>", NULL);
	check_path("RCPT TO:<@r1,b@c>", NULL);
	check_path("RCPT TO:<@r1 a@b>", NULL);
}

static void
test_long_local_parts(void)
{
	char line[1024], local[300];

	memset(local, 'x', 64);
	local[64] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<%s@example.org>", local);
	CHECK_INT(code(line), 0);
	snprintf(line, sizeof(line), "RCPT TO:<\"%s\"@example.org>", local);
	CHECK_INT(code(line), 0);
	memset(local, 'x', 65);
	local[65] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<%s@example.org>", local);
	CHECK_INT(code(line), 501);
	snprintf(line, sizeof(line), "MAIL FROM:<%s@example.org>", local);
	CHECK_INT(code(line), 501);
	snprintf(line, sizeof(line), "RCPT TO:<\"%s\"@example.org>", local);
	CHECK_INT(code(line), 501);

	/* A path over 256 octets is too long, however it is split. */
	memset(local, 'd', 253);
	local[253] = '\0';
	for (int i = 60; i < 253; i += 61)
		local[i] = '.';
	snprintf(line, sizeof(line), "RCPT TO:<abc@%s>", local);
	CHECK_INT(code(line), 501);
	local[240] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<abc@%s>", local);
	CHECK_INT(code(line), 0);
}

static void
test_utf8(void)
{
	struct smtp_cmd cmd;

	/* "jürgen@bücher.example", UTF-8. */
	CHECK_INT(parse("MAIL FROM:<j\xc3\xbcrgen@b\xc3\xbc"
	                "cher.example> SMTPUTF8",
	              &cmd),
	    0);
	CHECK_INT(cmd.path_utf8, 1);
	smtp_cmd_clear(&cmd);
	CHECK_INT(code("MAIL FROM:<j\xc3\xbcrgen@x.example>"), 553);
	CHECK_INT(parse("RCPT TO:<\xe7\x94\xb0\xe4\xb8\xad@x.example>", &cmd),
	    0);
	CHECK_INT(cmd.path_utf8, 1);
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("RCPT TO:<\"\xc3\xa9 t\"@x.example>", &cmd), 0);
	CHECK_INT(cmd.path_utf8, 1);
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("RCPT TO:<plain@x.example>", &cmd), 0);
	CHECK_INT(cmd.path_utf8, 0);
	smtp_cmd_clear(&cmd);

	/* Malformed UTF-8 is refused with or without SMTPUTF8. */
	CHECK_INT(code("MAIL FROM:<j\xfcrgen@x.example> SMTPUTF8"), 553);
	CHECK_INT(code("RCPT TO:<\xc0\xaf@x.example>"), 553);
	CHECK_INT(code("RCPT TO:<\xed\xa0\x80@x.example>"), 553);
	CHECK_INT(code("RCPT TO:<\xe2\x82@x.example>"), 553);
	CHECK_INT(code("EHLO \xff"), 500);

	CHECK(smtp_utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80", 4));
	CHECK(smtp_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xf8\x88\x80\x80", 4));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\x80", 1));
}

static void
test_bdat(void)
{
	struct smtp_cmd cmd;

	CHECK_INT(parse("BDAT 0 LAST", &cmd), 0);
	CHECK_INT(cmd.size, 0);
	CHECK_INT(cmd.last, 1);
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("bdat 1000 last", &cmd), 0);
	CHECK_INT(cmd.size, 1000);
	CHECK_INT(cmd.last, 1);
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("BDAT 42", &cmd), 0);
	CHECK_INT(cmd.size, 42);
	CHECK_INT(cmd.last, 0);
	smtp_cmd_clear(&cmd);
	CHECK_INT(code("BDAT"), 501);
	CHECK_INT(code("BDAT x"), 501);
	CHECK_INT(code("BDAT -1"), 501);
	CHECK_INT(code("BDAT 10 FIRST"), 501);
	CHECK_INT(code("BDAT 10 LAST x"), 501);
	CHECK_INT(code("BDAT 99999999999999999999999"), 501);
}

static void
test_auth(void)
{
	struct smtp_cmd cmd;

	CHECK_INT(parse("AUTH plain", &cmd), 0);
	CHECK_STR(cmd.arg, "PLAIN");
	CHECK(cmd.initial == NULL);
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("AUTH PLAIN AGFsaWNlAHNlY3JldA==", &cmd), 0);
	CHECK_STR(cmd.arg, "PLAIN");
	CHECK_STR(cmd.initial, "AGFsaWNlAHNlY3JldA==");
	smtp_cmd_clear(&cmd);
	CHECK_INT(parse("AUTH LOGIN =", &cmd), 0);
	CHECK_STR(cmd.initial, "=");
	smtp_cmd_clear(&cmd);
	CHECK_INT(code("AUTH"), 501);
	CHECK_INT(code("AUTH PL@IN"), 501);
	CHECK_INT(code("AUTH PLAIN a b"), 501);
	CHECK_INT(code("AUTH ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 501);
}

int
main(void)
{
	CHECK_RUN(test_verbs);
	CHECK_RUN(test_bad_verbs);
	CHECK_RUN(test_mail);
	CHECK_RUN(test_mail_params);
	CHECK_RUN(test_rcpt);
	CHECK_RUN(test_mailboxes);
	CHECK_RUN(test_long_local_parts);
	CHECK_RUN(test_utf8);
	CHECK_RUN(test_bdat);
	CHECK_RUN(test_auth);
	return check_summary();
}
