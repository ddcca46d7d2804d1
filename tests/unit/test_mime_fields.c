/*
 * Unit tests for the mime helpers: IMAP string quoting, header fields,
 * RFC 2047 decoding, dates, address lists and RFC 2231 parameters.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mime/mime.h"

static char *
addresses(const char *value, char **specs)
{
	struct mime_buf env = {0}, sp = {0};

	mime_envelope_addresses(value, strlen(value), &env, &sp);
	*specs = mime_buf_finish(&sp);
	return mime_buf_finish(&env);
}

static void
test_quoting(void)
{
	struct mime_buf b = {0};
	char *s;

	mime_buf_add_string(&b, "a\"b\\c", 5);
	mime_buf_addc(&b, ' ');
	mime_buf_add_string(&b, "x\0y\xc3\xa9", 5);
	mime_buf_addc(&b, ' ');
	mime_buf_add_nstring(&b, NULL);
	s = mime_buf_finish(&b);
	CHECK_STR(s, "\"a\\\"b\\\\c\" {4}\r\nxy\xc3\xa9 NIL");
	free(s);
}

static void
test_header(void)
{
	const char *h = "Subject: one\r\n two\r\nX-A:\tv \r\nbroken line\r\n"
	                "subject: second\r\n\r\nbody";
	char *v;

	CHECK_INT(mime_header_size(h, strlen(h)), strlen(h) - 4);
	v = mime_header_get(h, strlen(h), "SUBJECT");
	CHECK_STR(v, "one two");
	free(v);
	v = mime_header_get(h, strlen(h), "x-a");
	CHECK_STR(v, "v");
	free(v);
	CHECK(mime_header_get(h, strlen(h), "broken line") == NULL);
}

static void
test_rfc2047(void)
{
	const char *cases[][2] = {
	    {"=?UTF-8?B?w6TDtsO8?= =?ISO-8859-1?Q?_caf=E9?= plain",
	        "\xc3\xa4\xc3\xb6\xc3\xbc caf\xc3\xa9 plain"},
	    {"a =?utf-8?q?b?=\r\n =?utf-8?q?c?= d", "a bc d"},
	    /* A character split across two words. */
	    {"=?utf-8?b?ww==?= =?utf-8?b?pA==?=", "\xc3\xa4"},
	    {"=?utf-8*en?Q?x_y?=", "x y"},
	    {"=?bogus-charset?Q?ok?=", "ok"},
	    {"bad \xff byte", "bad \xef\xbf\xbd byte"},
	    {"=?iso-2022-jp?B?GyRCJEgbKEI=?=", "\xe3\x81\xa8"},
	    {"not =?encoded", "not =?encoded"},
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		s = mime_rfc2047_decode(cases[i][0], strlen(cases[i][0]));
		CHECK_STR(s, cases[i][1]);
		free(s);
	}
}

static void
test_date(void)
{
	time_t t;
	int tz;

	CHECK(mime_date_parse("Mon, 7 Feb 1994 21:52:25 -0800", &t, &tz) == 0);
	CHECK_INT(t, 760686745);
	CHECK_INT(tz, -480);
	CHECK(mime_date_parse(" 1 Jan 70 00:00 GMT", &t, NULL) == 0);
	CHECK_INT(t, 0);
	CHECK(mime_date_parse("Thu (x), 01 Jan 2004 10:00:00 EDT (y)", &t,
	          &tz) == 0);
	CHECK_INT(t, 1072965600);
	CHECK_INT(tz, -240);
	CHECK(mime_date_parse("1 jan 103 00:00:00 +0000", &t, NULL) == 0);
	CHECK_INT(t, 1041379200);
	CHECK(mime_date_parse("29 Feb 2024 23:59:60 +0130", &t, NULL) == 0);
	CHECK_INT(t, 1709245800);
	CHECK(mime_date_parse("yesterday", &t, NULL) == -1);
	CHECK(mime_date_parse("32 Jan 2000 00:00 +0000", &t, NULL) == -1);
	CHECK(mime_date_parse("1 Foo 2000 00:00 +0000", &t, NULL) == -1);
	CHECK(mime_date_parse("1 Jan 2000 25:00 +0000", &t, NULL) == -1);
	CHECK(mime_date_parse("1 Jan 2000 10:00 +99", &t, NULL) == -1);
}

static void
test_addresses(void)
{
	char *env, *specs;

	env = addresses("\"Doe, John\" <John@Example.COM>, =?utf-8?q?J?= "
	                "<j@x.de> (c)",
	    &specs);
	CHECK_STR(env,
	    "((\"Doe, John\" NIL \"John\" \"Example.COM\")"
	    "(\"=?utf-8?q?J?=\" NIL \"j\" \"x.de\"))");
	CHECK_STR(specs, "john@example.com,j@x.de");
	free(env);
	free(specs);

	env = addresses("team: a@b.c, \"Bob\" <bob@d.e>;, carol@f.g (Carol)",
	    &specs);
	CHECK_STR(env,
	    "((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"b.c\")"
	    "(\"Bob\" NIL \"bob\" \"d.e\")(NIL NIL NIL NIL)"
	    "(\"Carol\" NIL \"carol\" \"f.g\"))");
	CHECK_STR(specs, "a@b.c,bob@d.e,carol@f.g");
	free(env);
	free(specs);

	env = addresses("undisclosed-recipients:;", &specs);
	CHECK_STR(env,
	    "((NIL NIL \"undisclosed-recipients\" NIL)"
	    "(NIL NIL NIL NIL))");
	CHECK_STR(specs, "");
	free(env);
	free(specs);

	env = addresses("<@r1,@r2:\"a b\"@[1.2.3.4]>, root", &specs);
	CHECK_STR(env,
	    "((NIL \"@r1,@r2\" \"\\\"a b\\\"\" \"[1.2.3.4]\")"
	    "(NIL NIL \"root\" \"MISSING_DOMAIN\"))");
	free(env);
	free(specs);

	env = addresses("  ", &specs);
	CHECK_STR(env, "NIL");
	free(env);
	free(specs);
}

static void
test_envelope_defaults(void)
{
	const char *h = "From: a@b.c\r\nReply-To: r@b.c\r\nSender:\r\n"
	                "Subject: =?utf-8?q?x?=\r\nIn-Reply-To: <p@q>\r\n\r\n";
	struct mime_buf env = {0};
	char *s;

	mime_envelope_build(h, strlen(h), &env);
	s = mime_buf_finish(&env);
	CHECK_STR(s,
	    "(NIL \"=?utf-8?q?x?=\" ((NIL NIL \"a\" \"b.c\")) "
	    "((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"r\" \"b.c\")) NIL "
	    "NIL NIL \"<p@q>\" NIL)");
	free(s);
}

static void
test_params(void)
{
	struct mime_params p;
	char *main_part;

	main_part = mime_param_parse(
	    " text / plain (c) ; Charset = \"utf-8\" ; title*1*=%20b; "
	    "title*0*=us-ascii'en'a; name*1=\"x y\"; name*0=n; bare; e=",
	    &p);
	CHECK_STR(main_part, "text/plain");
	CHECK_INT(p.n, 4);
	if (p.n == 4) {
		CHECK_STR(p.v[0].name, "CHARSET");
		CHECK_STR(p.v[0].value, "utf-8");
		CHECK_STR(p.v[1].name, "TITLE*");
		CHECK_STR(p.v[1].value, "us-ascii'en'a%20b");
		CHECK_STR(p.v[2].name, "NAME");
		CHECK_STR(p.v[2].value, "nx y");
		CHECK_STR(p.v[3].name, "E");
		CHECK_STR(p.v[3].value, "");
	}
	CHECK_STR(mime_param_get(&p, "NAME"), "nx y");
	mime_param_deinit(&p);
	free(main_part);

	/* A plain segment inside an extended value gets percent-encoded. */
	main_part = mime_param_parse("a; f*0*=utf-8''%41; f*1=\"b c\"", &p);
	CHECK_STR(p.n == 1 ? p.v[0].value : NULL, "utf-8''%41b%20c");
	mime_param_deinit(&p);
	free(main_part);
}

int
main(void)
{
	CHECK_RUN(test_quoting);
	CHECK_RUN(test_header);
	CHECK_RUN(test_rfc2047);
	CHECK_RUN(test_date);
	CHECK_RUN(test_addresses);
	CHECK_RUN(test_envelope_defaults);
	CHECK_RUN(test_params);
	return check_summary();
}
