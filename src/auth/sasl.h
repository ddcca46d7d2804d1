/*
 * SASL mechanisms PLAIN (RFC 4616) and LOGIN, as the protocol sessions use
 * them: decoding of the base64 client responses into identities.
 */
#ifndef AUTH_SASL_H
#define AUTH_SASL_H

#include <stddef.h>

/*
 * Decodes a PLAIN response (base64 of authzid NUL authcid NUL passwd).
 * Returns 0 with three new strings the caller frees (password with
 * xfree_secret_str), or -1 when it is malformed (bad base64, wrong number
 * of NULs, empty authcid or password, overlong fields).
 */
int sasl_plain_decode(const char *b64, size_t len, char **authzid,
    char **authcid, char **password);

/* Decodes one base64 LOGIN step into a new string; -1 when malformed. */
int sasl_login_decode(const char *b64, size_t len, char **out);

#endif
