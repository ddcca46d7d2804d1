/*
 * CONDSTORE and QRESYNC helpers (RFC 7162): the SELECT parameters and
 * STORE modifiers of section 7, the enabling rule of section 3.1, VANISHED
 * of section 3.2.10, and the expunges since a MODSEQ (section 3.2.5) read
 * from the view's window or, beyond it, from the index's tombstones.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"

/* An atom of 1*DIGIT no greater than max; 0 or -1. */
static int
imap_condstore_number(const struct imap_arg *a, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 20)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		unsigned d = (unsigned)(a->str[i] - '0');

		if (d > 9 || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* A sequence-set without "*" or "$", resolved into out; 0 or -1. */
static int
imap_condstore_set(const struct imap_arg *a, struct imap_seqset *out)
{
	struct imap_seqset set = {0};
	int r = -1;

	if (a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(a->str, a->len, &set) < 0 || set.saved)
		goto out;
	for (size_t i = 0; i < set.n; i++)
		if (set.r[i].first == 0 || set.r[i].last == 0)
			goto out;
	r = imap_seqset_resolve(&set, UINT32_MAX, 1, out);
out:
	imap_seqset_clear(&set);
	return r;
}

/* seq-match-data: "(" known-sequence-set SP known-uid-set ")". */
static int
imap_condstore_seq_match(const struct imap_arg *a)
{
	struct imap_seqset seqs = {0}, uids = {0};
	int r = -1;

	if (a->type == IMAP_ARG_LIST && a->count == 2 &&
	    imap_condstore_set(&a->list[0], &seqs) == 0 &&
	    imap_condstore_set(&a->list[1], &uids) == 0 &&
	    imap_seqset_count(&seqs) == imap_seqset_count(&uids))
		r = 0;
	imap_seqset_clear(&seqs);
	imap_seqset_clear(&uids);
	return r;
}

/* The QRESYNC parameter's list; 0 or -1. */
static int
imap_condstore_qresync(const struct imap_arg *a,
    struct imap_condstore_select *out)
{
	const struct imap_arg *l = a->list;
	uint64_t v;
	size_t i = 2;

	if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 4 ||
	    imap_condstore_number(&l[0], UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	out->uidvalidity = (uint32_t)v;
	if (imap_condstore_number(&l[1], IMAP_CONDSTORE_MODSEQ_MAX,
	        &out->modseq) < 0 ||
	    out->modseq == 0)
		return -1;
	if (i < a->count && l[i].type == IMAP_ARG_ATOM) {
		if (imap_condstore_set(&l[i], &out->known) < 0)
			return -1;
		out->has_known = 1;
		i++;
	}
	if (i < a->count && imap_condstore_seq_match(&l[i++]) < 0)
		return -1;
	return i == a->count ? 0 : -1;
}

int
imap_condstore_select_parse(const struct imap_arg *a,
    struct imap_condstore_select *out, const char **error)
{
	memset(out, 0, sizeof(*out));
	*error = "Invalid SELECT parameters";
	if (a == NULL)
		return 0;
	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return -1;
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *p = &a->list[i];

		if (imap_arg_atom_is(p, "CONDSTORE")) {
			out->condstore = 1;
			continue;
		}
		if (!imap_arg_atom_is(p, "QRESYNC") || out->qresync ||
		    i + 1 == a->count ||
		    imap_condstore_qresync(&a->list[++i], out) < 0) {
			*error = "Invalid QRESYNC or unknown SELECT parameter";
			imap_condstore_select_clear(out);
			return -1;
		}
		out->qresync = 1;
	}
	return 0;
}

void
imap_condstore_select_clear(struct imap_condstore_select *p)
{
	imap_seqset_clear(&p->known);
	memset(p, 0, sizeof(*p));
}

int
imap_condstore_store_modifiers(const struct imap_arg *a,
    uint64_t *unchangedsince, const char **error)
{
	*error = "Expected (UNCHANGEDSINCE n)";
	if (a->type != IMAP_ARG_LIST || a->count != 2 ||
	    !imap_arg_atom_is(&a->list[0], "UNCHANGEDSINCE") ||
	    imap_condstore_number(&a->list[1], IMAP_CONDSTORE_MODSEQ_MAX,
	        unchangedsince) < 0)
		return -1;
	return 0;
}

void
imap_condstore_enable(struct imap_session *s)
{
	if (s->enabled & IMAP_ENABLED_CONDSTORE)
		return;
	s->enabled |= IMAP_ENABLED_CONDSTORE;
	if (s->sel != NULL)
		imap_session_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
		    (unsigned long long)store_view_highestmodseq(s->sel->view));
}

void
imap_condstore_put_vanished(struct imap_session *s, int earlier, uint32_t *uids,
    size_t n)
{
	struct imap_seqset set = {0};
	char *text;

	if (n == 0)
		return;
	imap_seqset_from_array(uids, n, &set);
	text = imap_seqset_format(&set);
	imap_session_printf(s, "* VANISHED %s%s", earlier ? "(EARLIER) " : "",
	    text);
	free(text);
	imap_seqset_clear(&set);
}

struct imap_condstore_walk {
	struct store_expunge *list;
	size_t n, cap;
};

static void
imap_condstore_collect(const struct store_expunge *e, void *arg)
{
	struct imap_condstore_walk *w = arg;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->list = xreallocarray(w->list, w->cap, sizeof(*w->list));
	}
	w->list[w->n++] = *e;
}

void
imap_condstore_expunged(struct store *store, const char *user,
    const struct store_view *view, uint64_t modseq, store_expunged_cb cb,
    void *arg)
{
	struct imap_condstore_walk w = {0};

	if (store_view_expunged_since(view, modseq, imap_condstore_collect,
	        &w) < 0) {
		store_expunged_since(store, user, store_view_mailbox_id(view),
		    modseq, cb, arg);
		return;
	}
	cb(w.list, w.n, STORE_VIEW_OK, arg);
	free(w.list);
}
