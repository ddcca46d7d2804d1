/*
 * Allocation wrappers that stop the process on out-of-memory, so callers never
 * handle a NULL from them, and helpers to wipe secrets before they are freed.
 */
#ifndef BASE_XMALLOC_H
#define BASE_XMALLOC_H

#include <stddef.h>

/* Each returns valid memory or aborts; sizes of zero are allowed. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array to at least n elements of size each, doubling. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipes len bytes at p (which may be NULL) and frees p. */
void xfree_secret(void *p, size_t len);
/* Wipes the NUL-terminated string s (which may be NULL) and frees it. */
void xfree_secret_str(char *s);

#endif
