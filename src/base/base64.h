/* Base64 (RFC 4648 section 4) encoding and strict decoding. */
#ifndef BASE_BASE64_H
#define BASE_BASE64_H

#include <stddef.h>

/* Bytes needed to encode len bytes, with the terminating NUL. */
size_t base64_encoded_size(size_t len);

/* Encodes len bytes of in into out (base64_encoded_size(len) bytes). */
void base64_encode(const void *in, size_t len, char *out);

/*
 * Decodes len characters of in (padding required, no white space) into out,
 * which holds at least len / 4 * 3 + 1 bytes; NUL-terminates it. Returns the
 * decoded length, or -1 when in is not valid base64.
 */
long base64_decode(const char *in, size_t len, unsigned char *out);

/* The 6-bit value of c, or -1 when c is not in the base64 alphabet. */
int base64_value(unsigned char c);

#endif
