/*
 * From: field extraction for submission (RFC 5322 sections 3.4 and 3.6.2):
 * unfolding, then a small scanner over the address list that skips quoted
 * display names, comments and group syntax and keeps the addr-specs.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "smtp/smtp_header.h"

/* The longest From: field we read, unfolded. */
#define SMTP_HEADER_FIELD_MAX 8192

struct smtp_addr_list {
	char **addrs;
	size_t n;
	int bad;
};

/* The end of the header line starting at p (at its LF, or at end). */
static const char *
smtp_header_eol(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return lf != NULL ? lf : end;
}

/*
 * Copies the value of the From: field starting at p (after "From:") with
 * its continuation lines into out, line ends removed. Returns the position
 * after the field.
 */
static const char *
smtp_header_unfold(const char *p, const char *end, char *out, size_t *outlen)
{
	size_t n = 0;

	for (;;) {
		const char *eol = smtp_header_eol(p, end);
		const char *stop = eol > p && eol[-1] == '\r' ? eol - 1 : eol;

		while (p < stop && n < SMTP_HEADER_FIELD_MAX)
			out[n++] = *p++;
		p = eol < end ? eol + 1 : end;
		if (p == end || (*p != ' ' && *p != '\t'))
			break;
	}
	*outlen = n;
	return p;
}

static void
smtp_addr_add(struct smtp_addr_list *l, const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return;
	if (memchr(s, '@', n) == NULL || l->n == SMTP_HEADER_FROM_MAX) {
		l->bad = 1;
		return;
	}
	l->addrs = xreallocarray(l->addrs, l->n + 1, sizeof(*l->addrs));
	l->addrs[l->n++] = xstrndup(s, n);
}

/* Skips a quoted string or a (nested) comment starting at s[i]. */
static size_t
smtp_skip_special(const char *s, size_t n, size_t i, char *acc, size_t *alen)
{
	char open = s[i];
	int depth = 0;
	size_t start = i;

	for (; i < n; i++) {
		if (s[i] == '\\') {
			i++;
			continue;
		}
		if (open == '"' && s[i] == '"' && i > start)
			break;
		if (open == '(' && s[i] == '(')
			depth++;
		if (open == '(' && s[i] == ')' && --depth == 0)
			break;
	}
	if (i >= n)
		i = n - 1;
	/* A quoted local part belongs to a bare address. */
	if (open == '"' && acc != NULL) {
		memcpy(acc + *alen, s + start, i - start + 1);
		*alen += i - start + 1;
	}
	return i + 1;
}

/* Scans an unfolded address list into l. */
static void
smtp_header_scan(const char *s, size_t n, struct smtp_addr_list *l)
{
	char acc[SMTP_HEADER_FIELD_MAX], angle[SMTP_HEADER_FIELD_MAX];
	size_t alen = 0, glen = 0, i = 0;
	int have_angle = 0;

	while (i <= n) {
		char c = i < n ? s[i] : ',';

		if (c == '"' || c == '(') {
			i = smtp_skip_special(s, n, i, acc, &alen);
			continue;
		}
		if (c == '<') {
			const char *gt = memchr(s + i, '>', n - i);
			size_t end = gt != NULL ? (size_t)(gt - s) : n;
			const char *colon;

			glen = end - i - 1;
			memcpy(angle, s + i + 1, glen);
			/* An obsolete route "@a,@b:" comes before the address. */
			colon = memchr(angle, ':', glen);
			if (glen > 0 && angle[0] == '@' && colon != NULL) {
				glen -= (size_t)(colon + 1 - angle);
				memmove(angle, colon + 1, glen);
			}
			have_angle = 1;
			i = end + 1;
			continue;
		}
		if (c == ',' || c == ';') {
			if (have_angle)
				smtp_addr_add(l, angle, glen);
			else
				smtp_addr_add(l, acc, alen);
			alen = glen = 0;
			have_angle = 0;
		} else if (c == ':') {
			/* A group's display name. */
			alen = 0;
		} else {
			acc[alen++] = c;
		}
		i++;
	}
}

int
smtp_header_from(const char *msg, size_t len, char ***addrs, size_t *n)
{
	const char *p = msg, *end = msg + len;
	char *value = xmalloc(SMTP_HEADER_FIELD_MAX);
	struct smtp_addr_list l = {NULL, 0, 0};
	size_t vlen = 0;
	int found = 0;

	while (p < end && *p != '\r' && *p != '\n') {
		if ((size_t)(end - p) >= 5 && strncasecmp(p, "From:", 5) == 0) {
			p = smtp_header_unfold(p + 5, end, value, &vlen);
			found++;
			continue;
		}
		p = smtp_header_eol(p, end);
		p = p < end ? p + 1 : end;
	}
	if (found == 1)
		smtp_header_scan(value, vlen, &l);
	free(value);
	if (found != 1 || l.bad || l.n == 0) {
		smtp_header_addrs_free(l.addrs, l.n);
		return -1;
	}
	*addrs = l.addrs;
	*n = l.n;
	return 0;
}

void
smtp_header_addrs_free(char **addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}
