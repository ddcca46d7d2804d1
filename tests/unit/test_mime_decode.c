/*
 * Unit tests for content-transfer decoding (mime_decode.c): encoding
 * names, base64, quoted-printable soft breaks, escapes and trailing blanks,
 * and whole parts as FETCH BINARY decodes them.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mime/mime_decode.h"

/* Runs fn over in and compares the bytes (which may hold NUL) with want. */
static int
decoded_is(void (*fn)(const char *, size_t, struct mime_buf *), const char *in,
    const char *want, size_t want_len)
{
	struct mime_buf b = {0};
	int ok;

	fn(in, strlen(in), &b);
	ok = b.len == want_len &&
	    (want_len == 0 || memcmp(b.data, want, want_len) == 0);
	if (!ok)
		fprintf(stderr, "decoded %zu bytes \"%.*s\"\n", b.len,
		    (int)b.len, b.data != NULL ? b.data : "");
	free(b.data);
	return ok;
}

static void
test_cte_names(void)
{
	CHECK_INT(mime_decode_cte(NULL), MIME_CTE_IDENTITY);
	CHECK_INT(mime_decode_cte(""), MIME_CTE_IDENTITY);
	CHECK_INT(mime_decode_cte("7BIT"), MIME_CTE_IDENTITY);
	CHECK_INT(mime_decode_cte(" 8bit "), MIME_CTE_IDENTITY);
	CHECK_INT(mime_decode_cte("Binary"), MIME_CTE_IDENTITY);
	CHECK_INT(mime_decode_cte("BASE64"), MIME_CTE_BASE64);
	CHECK_INT(mime_decode_cte("base64 (comment)"), MIME_CTE_BASE64);
	CHECK_INT(mime_decode_cte("Quoted-Printable"), MIME_CTE_QP);
	CHECK_INT(mime_decode_cte("x-uuencode"), MIME_CTE_UNKNOWN);
	CHECK_INT(mime_decode_cte("base6"), MIME_CTE_UNKNOWN);
}

static void
test_base64(void)
{
	CHECK(decoded_is(mime_decode_base64, "aGVsbG8gd29ybGQ=", "hello world",
	    11));
	/* Line breaks and junk are skipped; the "=" ends the data. */
	CHECK(decoded_is(mime_decode_base64, "aGVs\r\nbG8g\r\nd29y*bGQ=\r\n",
	    "hello world", 11));
	CHECK(decoded_is(mime_decode_base64, "AAEC/w==", "\0\1\2\377", 4));
	CHECK(decoded_is(mime_decode_base64, "", "", 0));
	/* Without padding, the whole bytes that arrived. */
	CHECK(decoded_is(mime_decode_base64, "aGk", "hi", 2));
	CHECK(decoded_is(mime_decode_base64, "Zm9v=YmFy", "foo", 3));
}

static void
test_qp(void)
{
	CHECK(decoded_is(mime_decode_qp, "caf=C3=A9 ok", "caf\xc3\xa9 ok", 8));
	CHECK(decoded_is(mime_decode_qp, "lower =c3=a9", "lower \xc3\xa9", 8));
	/* Soft line breaks, with or without blanks after the "=". */
	CHECK(decoded_is(mime_decode_qp, "one =\r\ntwo= \t\r\nthree=\nfour",
	    "one twothreefour", 16));
	/* Hard line ends stay; blanks before them go. */
	CHECK(decoded_is(mime_decode_qp, "a  \r\nb\t\nc d", "a\r\nb\nc d", 8));
	/* Blanks at the very end go too; a lone CR stays. */
	CHECK(decoded_is(mime_decode_qp, "x \t", "x", 1));
	CHECK(decoded_is(mime_decode_qp, "x\ry", "x\ry", 3));
	/* Malformed escapes stay as they are. */
	CHECK(decoded_is(mime_decode_qp, "=G1 =4", "=G1 =4", 6));
	CHECK(decoded_is(mime_decode_qp, "a=00b", "a\0b", 3));
	CHECK(decoded_is(mime_decode_qp, "end=", "end", 3));
}

static void
test_part(void)
{
	const char *b64 = "Content-Type: application/octet-stream\r\n"
	                  "Content-Transfer-Encoding: base64\r\n\r\n";
	const char *multi = "Content-Type: multipart/mixed; boundary=x\r\n"
	                    "Content-Transfer-Encoding: base64\r\n\r\n";
	const char *odd = "Content-Transfer-Encoding: x-gzip\r\n\r\n";
	struct mime_buf b = {0};

	CHECK_INT(mime_decode_part(b64, strlen(b64), "AGE=\r\n", 6, &b), 0);
	CHECK(b.len == 2 && b.data[0] == '\0' && b.data[1] == 'a');
	free(b.data);
	memset(&b, 0, sizeof(b));
	/* A composite part is never decoded, whatever it claims. */
	CHECK_INT(mime_decode_part(multi, strlen(multi), "AGE=", 4, &b), 0);
	CHECK(b.len == 4 && memcmp(b.data, "AGE=", 4) == 0);
	free(b.data);
	memset(&b, 0, sizeof(b));
	CHECK_INT(mime_decode_part(odd, strlen(odd), "zz", 2, &b), -1);
	CHECK(b.len == 0);
	/* No header at all: 7bit, as it stands. */
	CHECK_INT(mime_decode_part("", 0, "text=41", 7, &b), 0);
	CHECK_STR(b.data, "text=41");
	free(b.data);
}

int
main(void)
{
	CHECK_RUN(test_cte_names);
	CHECK_RUN(test_base64);
	CHECK_RUN(test_qp);
	CHECK_RUN(test_part);
	return check_summary();
}
