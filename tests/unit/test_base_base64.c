/* Unit tests for base64: RFC 4648 section 10 vectors and strict decoding. */
#include <stdlib.h>

#include "base/base64.h"
#include "check.h"

static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void
test_rfc_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(*vectors); i++) {
		const char *plain = vectors[i][0], *enc = vectors[i][1];
		char out[16];
		unsigned char dec[16];

		CHECK_INT(base64_encoded_size(strlen(plain)), strlen(enc) + 1);
		base64_encode(plain, strlen(plain), out);
		CHECK_STR(out, enc);
		CHECK_INT(base64_decode(enc, strlen(enc), dec), strlen(plain));
		CHECK_STR((char *)dec, plain);
	}
}

static void
test_binary_round_trip(void)
{
	unsigned char in[256], dec[256 / 3 * 4];
	char enc[400];

	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= 256; len += 17) {
		base64_encode(in, len, enc);
		CHECK_INT(base64_decode(enc, strlen(enc), dec), len);
		CHECK(memcmp(in, dec, len) == 0);
	}
}

static void
test_rejects(void)
{
	static const char *const bad[] = {
	    "Zg=",      /* length not a multiple of 4 */
	    "Zg",       /* padding missing */
	    "Z===",     /* too much padding */
	    "Zg=a",     /* data after padding */
	    "Zg==Zm8=", /* padding before the end */
	    "Zh==",     /* non-zero pad bits */
	    "Zm9=",     /* non-zero pad bits */
	    "Zm 9",     /* white space */
	    "Zm9v\r\n", /* line end */
	    "Zm9-",     /* base64url alphabet */
	    "====",     /* padding only */
	    "Zm\x80v",  /* non-ASCII */
	};
	unsigned char out[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (base64_decode(bad[i], strlen(bad[i]), out) != -1)
			CHECK_FAIL("accepted \"%s\"", bad[i]);
	}
	/* An embedded NUL is not part of the alphabet either. */
	CHECK_INT(base64_decode("Zm\0v", 4, out), -1);
}

int
main(void)
{
	CHECK_RUN(test_rfc_vectors);
	CHECK_RUN(test_binary_round_trip);
	CHECK_RUN(test_rejects);
	return check_summary();
}
