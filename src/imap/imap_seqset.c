/*
 * Sequence sets: the RFC 9051 section 9 "sequence-set" grammar with RFC 5182
 * "$", resolution against a mailbox (RFC 9051 section 6.4 on "*" and
 * ranges), membership and compact formatting.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "mime/mime.h"
#include "imap/imap_seqset.h"

/* Reads "*" or a nz-number at s[*i]; 0 stands for "*". -1 on error. */
static int
seq_number(const char *s, size_t len, size_t *i, uint32_t *out)
{
	uint64_t v = 0;
	size_t start = *i;

	if (*i < len && s[*i] == '*') {
		(*i)++;
		*out = 0;
		return 0;
	}
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		v = v * 10 + (uint64_t)(s[*i] - '0');
		if (v > UINT32_MAX)
			return -1;
		(*i)++;
	}
	if (*i == start || v == 0 || s[start] == '0')
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void
seqset_add(struct imap_seqset *set, size_t *cap, uint32_t a, uint32_t b)
{
	if (set->n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		set->r = xreallocarray(set->r, *cap, sizeof(*set->r));
	}
	set->r[set->n].first = a;
	set->r[set->n].last = b;
	set->n++;
}

int
imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set)
{
	size_t i = 0, cap = 0;
	uint32_t a, b;

	memset(set, 0, sizeof(*set));
	if (len == 1 && s[0] == '$') {
		set->saved = 1;
		return 0;
	}
	for (;;) {
		if (seq_number(s, len, &i, &a) < 0)
			goto fail;
		b = a;
		if (i < len && s[i] == ':') {
			i++;
			if (seq_number(s, len, &i, &b) < 0)
				goto fail;
		}
		if (set->n >= IMAP_SEQSET_MAX_RANGES)
			goto fail;
		seqset_add(set, &cap, a, b);
		if (i == len)
			return 0;
		if (s[i++] != ',')
			goto fail;
	}
fail:
	imap_seqset_clear(set);
	return -1;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->last < y->last ? -1 : x->last > y->last;
}

/* Sorts and merges overlapping or adjacent ranges in place. */
static void
seqset_normalise(struct imap_seqset *set)
{
	size_t i, j = 0;

	if (set->n == 0)
		return;
	qsort(set->r, set->n, sizeof(*set->r), range_cmp);
	for (i = 1; i < set->n; i++) {
		if ((uint64_t)set->r[i].first <= (uint64_t)set->r[j].last + 1) {
			if (set->r[i].last > set->r[j].last)
				set->r[j].last = set->r[i].last;
		} else {
			set->r[++j] = set->r[i];
		}
	}
	set->n = j + 1;
}

int
imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, int uid,
    struct imap_seqset *out)
{
	size_t i, cap = 0;
	uint32_t a, b, t;

	memset(out, 0, sizeof(*out));
	if (in->saved)
		return -1;
	for (i = 0; i < in->n; i++) {
		a = in->r[i].first ? in->r[i].first : max;
		b = in->r[i].last ? in->r[i].last : max;
		if (a > b)
			t = a, a = b, b = t;
		if (!uid && (a == 0 || b > max)) {
			imap_seqset_clear(out);
			return -1;
		}
		if (b > max)
			b = max;
		if (a == 0)
			a = 1;
		if (a <= b)
			seqset_add(out, &cap, a, b);
	}
	seqset_normalise(out);
	return 0;
}

void
imap_seqset_from_array(const uint32_t *nums, size_t n, struct imap_seqset *out)
{
	size_t i, cap = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++)
		if (nums[i] != 0)
			seqset_add(out, &cap, nums[i], nums[i]);
	seqset_normalise(out);
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (n < set->r[mid].first)
			hi = mid;
		else if (n > set->r[mid].last)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

uint64_t
imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < set->n; i++)
		c += (uint64_t)set->r[i].last - set->r[i].first + 1;
	return c;
}

int
imap_seqset_next(const struct imap_seqset *set, struct imap_seqset_iter *it,
    uint32_t *n)
{
	while (it->range < set->n) {
		if (it->next < set->r[it->range].first)
			it->next = set->r[it->range].first;
		if (it->next <= set->r[it->range].last) {
			*n = (uint32_t)it->next++;
			return 1;
		}
		it->range++;
	}
	return 0;
}

static void
seqset_put(struct mime_buf *b, uint32_t first, uint32_t last)
{
	if (b->len > 0)
		mime_buf_addc(b, ',');
	if (first == last)
		mime_buf_printf(b, "%u", first);
	else
		mime_buf_printf(b, "%u:%u", first, last);
}

char *
imap_seqset_format(const struct imap_seqset *set)
{
	struct mime_buf b = {0};
	size_t i;

	for (i = 0; i < set->n; i++)
		seqset_put(&b, set->r[i].first, set->r[i].last);
	return mime_buf_finish(&b);
}

char *
imap_seqset_format_array(const uint32_t *nums, size_t n)
{
	struct mime_buf b = {0};
	size_t i = 0, j;

	while (i < n) {
		j = i;
		while (j + 1 < n && nums[j] != UINT32_MAX &&
		    nums[j + 1] == nums[j] + 1)
			j++;
		seqset_put(&b, nums[i], nums[j]);
		i = j + 1;
	}
	return mime_buf_finish(&b);
}

void
imap_seqset_clear(struct imap_seqset *set)
{
	free(set->r);
	memset(set, 0, sizeof(*set));
}
