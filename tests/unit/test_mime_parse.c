/* Unit tests for mime_parse(): ENVELOPE, BODY, BODYSTRUCTURE, part map. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mime/mime.h"

static void
parse(const char *msg, struct mime_info *mi)
{
	mime_parse(msg, strlen(msg), mi);
}

static void
test_plain(void)
{
	struct mime_info mi;

	parse("Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
	      "From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
	      "Subject: afternoon meeting\r\n"
	      "To: mooch@owatagu.siam.edu\r\n"
	      "Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
	      "MIME-Version: 1.0\r\n"
	      "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	      "\r\n"
	      "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n",
	    &mi);
	CHECK_STR(mi.envelope,
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "
	    "((NIL NIL \"mooch\" \"owatagu.siam.edu\")) NIL NIL NIL "
	    "\"<B27397-0100000@Blurdybloop.COM>\")");
	CHECK_STR(mi.body,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") "
	    "NIL NIL \"7BIT\" 55 1)");
	CHECK_STR(mi.bodystructure,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
	    "55 1 NIL NIL NIL NIL)");
	CHECK_INT(mi.header_size, 255);
	CHECK_INT(mi.lines, 9);
	CHECK_INT(mi.date, 760686745);
	CHECK_STR(mi.subject, "afternoon meeting");
	CHECK_STR(mi.from, "foobar@blurdybloop.com");
	CHECK_STR(mi.to, "mooch@owatagu.siam.edu");
	CHECK(mi.cc == NULL);
	CHECK_STR(mi.message_id, "<B27397-0100000@Blurdybloop.COM>");
	CHECK_STR(mi.partmap, "0 0 255 310\n1 0 255 310\n");
	mime_info_deinit(&mi);
}

static void
test_alternative(void)
{
	struct mime_info mi;

	parse("Content-Type: multipart/alternative; boundary=\"=_b\"\r\n"
	      "\r\n"
	      "--=_b\r\n"
	      "Content-Type: text/plain; charset=utf-8\r\n"
	      "Content-Transfer-Encoding: quoted-printable\r\n"
	      "\r\n"
	      "one\r\ntwo\r\n"
	      "--=_b\r\n"
	      "Content-Type: text/html; charset=utf-8\r\n"
	      "\r\n"
	      "<p>one</p>\r\n"
	      "--=_b--\r\n",
	    &mi);
	CHECK_STR(mi.body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 8 1)(\"TEXT\" \"HTML\" (\"CHARSET\" "
	    "\"utf-8\") NIL NIL \"7BIT\" 10 0) \"ALTERNATIVE\")");
	CHECK_STR(mi.bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 8 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" "
	    "(\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL) "
	    "\"ALTERNATIVE\" (\"BOUNDARY\" \"=_b\") NIL NIL NIL)");
	CHECK_STR(mi.envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	mime_info_deinit(&mi);
}

static const char mixed_msg[] =
    "From: \"Doe, John\" <john@example.com>\r\n"
    "Content-Type: multipart/mixed; boundary=XX\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "hello\r\n"
    "--XX\r\n"
    "Content-Type: application/pdf; name*0=\"long\"; name*1=\"name.pdf\"\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename*=utf-8''%E2%82%AC.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-ID: <c1@x>\r\n"
    "Content-Description: the report\r\n"
    "Content-Language: en, de\r\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    "Content-Location: http://x/r.pdf\r\n"
    "\r\n"
    "AAAA\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

static void
test_mixed_attachment(void)
{
	struct mime_info mi;

	parse(mixed_msg, &mi);
	CHECK_STR(mi.body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 "
	    "0)(\"APPLICATION\" \"PDF\" (\"NAME\" \"longname.pdf\") "
	    "\"<c1@x>\" \"the report\" \"BASE64\" 4) \"MIXED\")");
	CHECK_STR(mi.bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 "
	    "0 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" "
	    "\"longname.pdf\") \"<c1@x>\" \"the report\" \"BASE64\" 4 "
	    "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME*\" "
	    "\"utf-8''%E2%82%AC.pdf\")) (\"en\" \"de\") \"http://x/r.pdf\") "
	    "\"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)");
	mime_info_deinit(&mi);
}

static const char nested_msg[] =
    "Subject: fwd\r\n"
    "Content-Type: multipart/mixed; boundary=a\r\n"
    "\r\n"
    "--a\r\n"
    "\r\n"
    "intro\r\n"
    "--a\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: x@y.z\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "plain\r\n"
    "--b\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>html</p>\r\n"
    "--b--\r\n"
    "\r\n"
    "--a--\r\n";

static void
test_nested_message(void)
{
	struct mime_info mi;

	parse(nested_msg, &mi);
	CHECK_STR(mi.body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "5 0)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 172 (NIL "
	    "\"inner\" ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) "
	    "((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL NIL) ((\"TEXT\" "
	    "\"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 "
	    "0)(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "11 0) \"ALTERNATIVE\") 13) \"MIXED\")");
	CHECK_STR(mi.bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "5 0 NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" "
	    "172 (NIL \"inner\" ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" "
	    "\"y.z\")) ((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL NIL) "
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "5 0 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" "
	    "\"us-ascii\") NIL NIL \"7BIT\" 11 0 NIL NIL NIL NIL) "
	    "\"ALTERNATIVE\" (\"BOUNDARY\" \"b\") NIL NIL NIL) 13 NIL NIL NIL "
	    "NIL) \"MIXED\" (\"BOUNDARY\" \"a\") NIL NIL NIL)");
	CHECK_STR(mi.partmap,
	    "0 0 59 291\n"
	    "1 64 66 71\n"
	    "2 78 110 282 190\n"
	    "2.1 195 223 228\n"
	    "2.2 235 262 273\n");
	mime_info_deinit(&mi);
}

static void
test_partmap_find(void)
{
	struct mime_info mi;
	size_t h, b, e;

	parse(nested_msg, &mi);
	CHECK(mime_partmap_find(mi.partmap, "", &h, &b, &e) == 0);
	CHECK(h == 0 && b == 59 && e == 291);
	CHECK(mime_partmap_find(mi.partmap, "1", &h, &b, &e) == 0);
	CHECK(memcmp(nested_msg + b, "intro", e - b) == 0 && e - b == 5);
	CHECK(mime_partmap_find(mi.partmap, "2.2", &h, &b, &e) == 0);
	CHECK(memcmp(nested_msg + h, "Content-Type: text/html\r\n\r\n",
	          b - h) == 0);
	CHECK(memcmp(nested_msg + b, "<p>html</p>", e - b) == 0);
	CHECK(mime_partmap_find_message(mi.partmap, "2", &h, &b, &e) == 0);
	CHECK(memcmp(nested_msg + h, "From: x@y.z\r\n", 13) == 0);
	CHECK(memcmp(nested_msg + b, "--b\r\n", 5) == 0);
	CHECK_INT(e, 282);
	CHECK(mime_partmap_find_message(mi.partmap, "1", &h, &b, &e) == -1);
	CHECK(mime_partmap_find(mi.partmap, "3", &h, &b, &e) == -1);
	CHECK(mime_partmap_find(mi.partmap, "2.", &h, &b, &e) == -1);
	CHECK(mime_partmap_find(mi.partmap, "0", &h, &b, &e) == -1);
	CHECK(mime_partmap_find(mi.partmap, "02", &h, &b, &e) == -1);
	CHECK(mime_partmap_find(mi.partmap, "2.1x", &h, &b, &e) == -1);
	mime_info_deinit(&mi);
}

static void
test_message_top(void)
{
	const char *msg = "Content-Type: message/rfc822\r\n\r\n"
	                  "Subject: in\r\n\r\nhi\r\n";
	struct mime_info mi;
	size_t h, b, e;

	parse(msg, &mi);
	CHECK_STR(mi.body,
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 19 (NIL \"in\" NIL "
	    "NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"us-ascii\") NIL NIL \"7BIT\" 4 1) 3)");
	CHECK(mime_partmap_find(mi.partmap, "1.1", &h, &b, &e) == 0);
	CHECK(memcmp(msg + b, "hi\r\n", 4) == 0 && e - b == 4);
	mime_info_deinit(&mi);
}

static void
test_truncated_multipart(void)
{
	struct mime_info mi;

	parse("Content-Type: multipart/mixed; boundary=q\r\n\r\n"
	      "--q\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
	      "--q\r\nContent-Type: text/plain\r\n\r\ntrunc",
	    &mi);
	CHECK_STR(mi.body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "5 0)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL "
	    "\"7BIT\" 5 0) \"MIXED\")");
	CHECK_STR(mi.partmap, "0 0 45 123\n1 50 78 83\n2 90 118 123\n");
	mime_info_deinit(&mi);

	/* No delimiter at all: one empty part stands in. */
	parse("Content-Type: multipart/mixed; boundary=q\r\n\r\nnone\r\n", &mi);
	CHECK_STR(mi.body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "0 0) \"MIXED\")");
	mime_info_deinit(&mi);

	/* Cut inside the header. */
	parse("Content-Type: multipart/mixed; bound", &mi);
	CHECK_STR(mi.body,
	    "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL "
	    "\"7BIT\" 0)");
	CHECK_INT(mi.header_size, 36);
	mime_info_deinit(&mi);
}

static void
test_no_headers(void)
{
	struct mime_info mi;

	parse("\r\nbody only\r\n", &mi);
	CHECK_STR(mi.envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_STR(mi.bodystructure,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" "
	    "11 1 NIL NIL NIL NIL)");
	CHECK_INT(mi.header_size, 2);
	CHECK_INT(mi.date, -1);
	CHECK(mi.subject == NULL && mi.from == NULL);
	mime_info_deinit(&mi);

	parse("", &mi);
	CHECK_STR(mi.body,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") "
	    "NIL NIL \"7BIT\" 0 0)");
	CHECK_INT(mi.header_size, 0);
	mime_info_deinit(&mi);
}

static void
test_digest_and_lf(void)
{
	struct mime_info mi;

	parse("Content-Type: multipart/digest; boundary=d\n\n"
	      "--d\n\nSubject: s\n\nx\n--d--\n",
	    &mi);
	CHECK_STR(mi.body,
	    "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 13 (NIL \"s\" NIL "
	    "NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"us-ascii\") NIL NIL \"7BIT\" 1 0) 2) \"DIGEST\")");
	mime_info_deinit(&mi);
}

static void
test_depth_limit(void)
{
	struct mime_buf b = {0};
	struct mime_info mi;
	int i;

	for (i = 0; i < 100; i++)
		mime_buf_adds(&b, "Content-Type: message/rfc822\r\n\r\n");
	mime_buf_adds(&b, "x\r\n");
	mime_parse(b.data, b.len, &mi);
	CHECK(strstr(mi.body, "\"APPLICATION\" \"OCTET-STREAM\"") != NULL);
	mime_info_deinit(&mi);
	free(b.data);
}

static void
test_parts_limit(void)
{
	struct mime_buf b = {0};
	struct mime_info mi;
	size_t h, bs, e;
	int i;

	mime_buf_adds(&b, "Content-Type: multipart/mixed; boundary=z\r\n\r\n");
	for (i = 0; i < 20000; i++)
		mime_buf_adds(&b, "--z\r\n\r\nx\r\n");
	mime_parse(b.data, b.len, &mi);
	CHECK(mime_partmap_find(mi.partmap, "9999", &h, &bs, &e) == 0);
	CHECK(mime_partmap_find(mi.partmap, "10001", &h, &bs, &e) == -1);
	mime_info_deinit(&mi);
	free(b.data);
}

int
main(void)
{
	CHECK_RUN(test_plain);
	CHECK_RUN(test_alternative);
	CHECK_RUN(test_mixed_attachment);
	CHECK_RUN(test_nested_message);
	CHECK_RUN(test_partmap_find);
	CHECK_RUN(test_message_top);
	CHECK_RUN(test_truncated_multipart);
	CHECK_RUN(test_no_headers);
	CHECK_RUN(test_digest_and_lf);
	CHECK_RUN(test_depth_limit);
	CHECK_RUN(test_parts_limit);
	return check_summary();
}
