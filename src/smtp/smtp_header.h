/*
 * Reading the From: header field of a submitted message (RFC 5322 sections
 * 3.4 and 3.6.2), so submission can check that its addresses belong to the
 * authenticated user. Pure.
 */
#ifndef SMTP_SMTP_HEADER_H
#define SMTP_SMTP_HEADER_H

#include <stddef.h>

/* At most this many addresses are taken from one From: field. */
#define SMTP_HEADER_FROM_MAX 32

/*
 * Finds the single From: field in the header of msg (len bytes, up to the
 * first empty line), unfolds it and collects its addr-specs (the part in
 * angle brackets, or the bare address; display names, comments and groups
 * skipped). Returns 0 with *addrs, a new array of *n new strings the caller
 * frees with smtp_header_addrs_free(), or -1 when there is no From: field,
 * more than one, or an address without "@".
 */
int smtp_header_from(const char *msg, size_t len, char ***addrs, size_t *n);

void smtp_header_addrs_free(char **addrs, size_t n);

#endif
