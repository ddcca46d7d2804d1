/*
 * Content-transfer decoding of MIME parts (RFC 2045 section 6.7
 * quoted-printable, 6.8 base64, identity for 7bit, 8bit and binary) for
 * FETCH BINARY (RFC 3516 section 4.2). Decoding is lenient, as readers
 * must be: what cannot be decoded is skipped or kept, never an error; only
 * an encoding we do not know is.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "mime/mime.h"
#include "mime/mime_decode.h"

enum mime_cte
mime_decode_cte(const char *value)
{
	static const struct {
		const char *name;
		enum mime_cte cte;
	} known[] = {
	    {"7bit", MIME_CTE_IDENTITY},
	    {"8bit", MIME_CTE_IDENTITY},
	    {"binary", MIME_CTE_IDENTITY},
	    {"base64", MIME_CTE_BASE64},
	    {"quoted-printable", MIME_CTE_QP},
	};

	size_t len;

	if (value == NULL)
		return MIME_CTE_IDENTITY;
	value += strspn(value, " \t\r\n");
	len = strcspn(value, " \t\r\n;(");
	if (len == 0)
		return MIME_CTE_IDENTITY;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == len &&
		    strncasecmp(value, known[i].name, len) == 0)
			return known[i].cte;
	return MIME_CTE_UNKNOWN;
}

void
mime_decode_base64(const char *in, size_t len, struct mime_buf *out)
{
	unsigned char chunk[256];
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len && in[i] != '='; i++) {
		int v = base64_value((unsigned char)in[i]);

		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits < 8)
			continue;
		bits -= 8;
		chunk[n++] = (unsigned char)((acc >> bits) & 0xff);
		if (n == sizeof(chunk)) {
			mime_buf_add(out, chunk, n);
			n = 0;
		}
	}
	if (n > 0)
		mime_buf_add(out, chunk, n);
}

static int
mime_decode_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The length of the line end at p (CRLF or bare LF), or 0. */
static size_t
mime_decode_eol(const char *p, size_t left)
{
	if (left >= 1 && p[0] == '\n')
		return 1;
	if (left >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	return 0;
}

/*
 * The "=" at in[i]: appends what it stands for and returns how many input
 * bytes it took.
 */
static size_t
mime_decode_qp_escape(const char *in, size_t len, size_t i,
    struct mime_buf *out)
{
	size_t j = i + 1;
	int hi, lo;

	/* A soft line break: "=", maybe blanks, then the line end. */
	while (j < len && (in[j] == ' ' || in[j] == '\t'))
		j++;
	if (j == len)
		return j - i;
	if (mime_decode_eol(in + j, len - j) > 0)
		return j - i + mime_decode_eol(in + j, len - j);
	hi = i + 2 < len ? mime_decode_hex((unsigned char)in[i + 1]) : -1;
	lo = i + 2 < len ? mime_decode_hex((unsigned char)in[i + 2]) : -1;
	if (hi < 0 || lo < 0) {
		mime_buf_addc(out, '=');
		return 1;
	}
	mime_buf_addc(out, (char)(hi << 4 | lo));
	return 3;
}

/* Bytes at p before the next "=", CR, LF, SP or TAB. */
static size_t
mime_decode_qp_run(const char *p, size_t left)
{
	size_t n = 0;

	while (n < left && (p[n] == '\0' || strchr("=\r\n \t", p[n]) == NULL))
		n++;
	return n;
}

void
mime_decode_qp(const char *in, size_t len, struct mime_buf *out)
{
	size_t i = 0;

	while (i < len) {
		size_t run = mime_decode_qp_run(in + i, len - i), n;

		mime_buf_add(out, in + i, run);
		i += run;
		if (i == len)
			break;
		if (in[i] == '=') {
			i += mime_decode_qp_escape(in, len, i, out);
		} else if (in[i] == ' ' || in[i] == '\t') {
			/* Blanks before a line end go (rule 3). */
			for (n = 0; i + n < len &&
			     (in[i + n] == ' ' || in[i + n] == '\t');)
				n++;
			if (i + n < len &&
			    mime_decode_eol(in + i + n, len - i - n) == 0)
				mime_buf_add(out, in + i, n);
			i += n;
		} else {
			/* A line end, kept as it is; a lone CR too. */
			n = mime_decode_eol(in + i, len - i);
			n = n > 0 ? n : 1;
			mime_buf_add(out, in + i, n);
			i += n;
		}
	}
}

/* Whether the part's Content-Type is multipart/ or message/. */
static int
mime_decode_composite(const char *hdr, size_t hlen)
{
	char *ct = mime_header_get(hdr, hlen, "Content-Type");
	struct mime_params params = {0};
	char *type = ct != NULL ? mime_param_parse(ct, &params) : NULL;
	int r = type != NULL &&
	    (strncasecmp(type, "multipart/", 10) == 0 ||
	        strncasecmp(type, "message/", 8) == 0);

	mime_param_deinit(&params);
	free(type);
	free(ct);
	return r;
}

int
mime_decode_part(const char *hdr, size_t hlen, const char *body, size_t blen,
    struct mime_buf *out)
{
	char *value = mime_header_get(hdr, hlen, "Content-Transfer-Encoding");
	enum mime_cte cte = mime_decode_cte(value);

	free(value);
	/* RFC 2045 section 6.4: composite types are never encoded. */
	if (mime_decode_composite(hdr, hlen))
		cte = MIME_CTE_IDENTITY;
	switch (cte) {
	case MIME_CTE_IDENTITY:
		mime_buf_add(out, body, blen);
		return 0;
	case MIME_CTE_BASE64:
		mime_decode_base64(body, blen, out);
		return 0;
	case MIME_CTE_QP:
		mime_decode_qp(body, blen, out);
		return 0;
	case MIME_CTE_UNKNOWN:
		break;
	}
	return -1;
}
