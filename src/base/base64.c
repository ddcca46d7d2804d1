/*
 * Base64 as RFC 4648 section 4 defines it: encoding with padding, and a
 * strict decoder that rejects white space, characters outside the
 * alphabet, misplaced or missing padding and non-zero pad bits (3.5).
 */
#include <stdint.h>

#include "base/base64.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encoded_size(size_t len)
{
	return (len + 2) / 3 * 4 + 1;
}

void
base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v =
		    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*out++ = base64_alphabet[v >> 18];
		*out++ = base64_alphabet[(v >> 12) & 63];
		*out++ = base64_alphabet[(v >> 6) & 63];
		*out++ = base64_alphabet[v & 63];
	}
	if (len - i == 1) {
		*out++ = base64_alphabet[p[i] >> 2];
		*out++ = base64_alphabet[(p[i] & 3) << 4];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];

		*out++ = base64_alphabet[v >> 10];
		*out++ = base64_alphabet[(v >> 4) & 63];
		*out++ = base64_alphabet[(v & 15) << 2];
		*out++ = '=';
	}
	*out = '\0';
}

int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes the 4 characters at in; only the last quantum may end in one or
 * two '='. Returns the bytes written to out (always room for 3), or -1.
 */
static int
base64_quantum(const char *in, int last, unsigned char *out)
{
	uint32_t v = 0;
	int pad = 0;

	if (last && in[3] == '=')
		pad = in[2] == '=' ? 2 : 1;
	for (int i = 0; i < 4; i++) {
		int d = i < 4 - pad ? base64_value((unsigned char)in[i]) : 0;

		if (d < 0)
			return -1;
		v = v << 6 | (uint32_t)d;
	}
	/* Canonical encodings only: the bits under the padding are zero. */
	if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
		return -1;
	out[0] = (unsigned char)(v >> 16);
	out[1] = (unsigned char)(v >> 8);
	out[2] = (unsigned char)v;
	return 3 - pad;
}

long
base64_decode(const char *in, size_t len, unsigned char *out)
{
	long n = 0;

	if (len % 4 != 0) {
		out[0] = '\0';
		return -1;
	}
	for (size_t i = 0; i < len; i += 4) {
		int r = base64_quantum(in + i, i + 4 == len, out + n);

		if (r < 0) {
			out[n] = '\0';
			return -1;
		}
		n += r;
	}
	out[n] = '\0';
	return n;
}
