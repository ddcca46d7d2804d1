/*
 * SEARCH program parsing: search-key of RFC 9051 section 9 (with the RFC 3501
 * keys RECENT, NEW, OLD and UNKEYWORD kept for IMAP4rev1), MODSEQ of
 * RFC 7162 section 3.1.5, ESEARCH RETURN options of RFC 4731 and SAVE of
 * RFC 5182. Recursion is bounded by IMAP_SEARCH_MAX_DEPTH.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "imap/imap_searchkey.h"

enum skey_kind {
	K_FLAG, /* a system flag test, maybe negated */
	K_ALL,
	K_NEW,
	K_STRING, /* HEADER-like with a fixed field, BODY, TEXT */
	K_HEADER,
	K_KEYWORD, /* maybe negated */
	K_DATE,
	K_SIZE,
	K_NOT,
	K_OR,
	K_UID,
	K_MODSEQ,
};

struct skey_def {
	const char *name;
	enum skey_kind kind;
	enum imap_skey_type type;
	const char *arg; /* the flag or the header field */
	enum imap_skey_cmp cmp;
	int negate;
	int rev1; /* only in IMAP4rev1 */
};

static const struct skey_def skey_defs[] = {
    {"ALL", K_ALL, IMAP_SKEY_ALL, NULL, 0, 0, 0},
    {"ANSWERED", K_FLAG, IMAP_SKEY_FLAG, "\\Answered", 0, 0, 0},
    {"DELETED", K_FLAG, IMAP_SKEY_FLAG, "\\Deleted", 0, 0, 0},
    {"DRAFT", K_FLAG, IMAP_SKEY_FLAG, "\\Draft", 0, 0, 0},
    {"FLAGGED", K_FLAG, IMAP_SKEY_FLAG, "\\Flagged", 0, 0, 0},
    {"SEEN", K_FLAG, IMAP_SKEY_FLAG, "\\Seen", 0, 0, 0},
    {"RECENT", K_FLAG, IMAP_SKEY_FLAG, "\\Recent", 0, 0, 1},
    {"OLD", K_FLAG, IMAP_SKEY_FLAG, "\\Recent", 0, 1, 1},
    {"NEW", K_NEW, IMAP_SKEY_AND, NULL, 0, 0, 1},
    {"UNANSWERED", K_FLAG, IMAP_SKEY_FLAG, "\\Answered", 0, 1, 0},
    {"UNDELETED", K_FLAG, IMAP_SKEY_FLAG, "\\Deleted", 0, 1, 0},
    {"UNDRAFT", K_FLAG, IMAP_SKEY_FLAG, "\\Draft", 0, 1, 0},
    {"UNFLAGGED", K_FLAG, IMAP_SKEY_FLAG, "\\Flagged", 0, 1, 0},
    {"UNSEEN", K_FLAG, IMAP_SKEY_FLAG, "\\Seen", 0, 1, 0},
    {"KEYWORD", K_KEYWORD, IMAP_SKEY_FLAG, NULL, 0, 0, 0},
    {"UNKEYWORD", K_KEYWORD, IMAP_SKEY_FLAG, NULL, 0, 1, 0},
    {"BCC", K_STRING, IMAP_SKEY_HEADER, "BCC", 0, 0, 0},
    {"CC", K_STRING, IMAP_SKEY_HEADER, "CC", 0, 0, 0},
    {"FROM", K_STRING, IMAP_SKEY_HEADER, "FROM", 0, 0, 0},
    {"SUBJECT", K_STRING, IMAP_SKEY_HEADER, "SUBJECT", 0, 0, 0},
    {"TO", K_STRING, IMAP_SKEY_HEADER, "TO", 0, 0, 0},
    {"BODY", K_STRING, IMAP_SKEY_BODY, NULL, 0, 0, 0},
    {"TEXT", K_STRING, IMAP_SKEY_TEXT, NULL, 0, 0, 0},
    {"HEADER", K_HEADER, IMAP_SKEY_HEADER, NULL, 0, 0, 0},
    {"BEFORE", K_DATE, IMAP_SKEY_DATE, NULL, IMAP_SKEY_LT, 0, 0},
    {"ON", K_DATE, IMAP_SKEY_DATE, NULL, IMAP_SKEY_EQ, 0, 0},
    {"SINCE", K_DATE, IMAP_SKEY_DATE, NULL, IMAP_SKEY_GE, 0, 0},
    {"SENTBEFORE", K_DATE, IMAP_SKEY_SENTDATE, NULL, IMAP_SKEY_LT, 0, 0},
    {"SENTON", K_DATE, IMAP_SKEY_SENTDATE, NULL, IMAP_SKEY_EQ, 0, 0},
    {"SENTSINCE", K_DATE, IMAP_SKEY_SENTDATE, NULL, IMAP_SKEY_GE, 0, 0},
    {"LARGER", K_SIZE, IMAP_SKEY_SIZE, NULL, IMAP_SKEY_GT, 0, 0},
    {"SMALLER", K_SIZE, IMAP_SKEY_SIZE, NULL, IMAP_SKEY_LT, 0, 0},
    {"NOT", K_NOT, IMAP_SKEY_NOT, NULL, 0, 0, 0},
    {"OR", K_OR, IMAP_SKEY_OR, NULL, 0, 0, 0},
    {"UID", K_UID, IMAP_SKEY_UID, NULL, 0, 0, 0},
    {"MODSEQ", K_MODSEQ, IMAP_SKEY_MODSEQ, NULL, 0, 0, 0},
};

/* The state of one parse. */
struct sctx {
	const struct imap_arg *args;
	size_t nargs;
	size_t i; /* the next argument of the current list */
	unsigned flags;
	size_t keys;
	enum imap_search_err err;
	const char *text;
};

static int skey_parse(struct sctx *c, unsigned depth, struct imap_skey *out);

static void
skey_clear(struct imap_skey *k)
{
	size_t i;

	for (i = 0; i < k->nchild; i++)
		skey_clear(&k->child[i]);
	free(k->child);
	free(k->str);
	free(k->field);
	imap_seqset_clear(&k->set);
	memset(k, 0, sizeof(*k));
}

static int
skey_fail(struct sctx *c, enum imap_search_err err, const char *text)
{
	if (c->err == IMAP_SEARCH_ERR_NONE) {
		c->err = err;
		c->text = text;
	}
	return -1;
}

/* Counts a node against IMAP_SEARCH_MAX_KEYS. */
static int
skey_count(struct sctx *c)
{
	if (++c->keys > IMAP_SEARCH_MAX_KEYS)
		return skey_fail(c, IMAP_SEARCH_ERR_TOO_COMPLEX,
		    "Search program too complex");
	return 0;
}

/* The next argument, or NULL at the end of the list. */
static const struct imap_arg *
skey_next(struct sctx *c)
{
	return c->i < c->nargs ? &c->args[c->i++] : NULL;
}

/* The next argument as an astring, copied into *out. */
static int
skey_astring(struct sctx *c, char **out, size_t *len)
{
	const struct imap_arg *a = skey_next(c);

	if (a == NULL || a->type == IMAP_ARG_LIST)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
		    "Missing search string");
	*out = xmalloc(a->len + 1);
	memcpy(*out, a->str, a->len + 1);
	if (len != NULL)
		*len = a->len;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* date-text: date-day "-" date-month "-" date-year (RFC 9051 section 9). */
static int
skey_date_text(const char *s, size_t len, struct imap_search_date *d)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	size_t i = 0, m;

	d->day = 0;
	while (i < len && i < 2 && s[i] >= '0' && s[i] <= '9')
		d->day = d->day * 10 + (s[i++] - '0');
	if (i == 0 || len != i + 9 || s[i] != '-' || s[i + 4] != '-')
		return -1;
	for (m = 0; m < 12; m++)
		if (strncasecmp(s + i + 1, months + 3 * m, 3) == 0)
			break;
	if (m == 12)
		return -1;
	d->month = (int)m + 1;
	d->year = 0;
	for (i += 5; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d->year = d->year * 10 + (s[i] - '0');
	}
	if (d->day < 1 || d->day > days_in_month(d->year, d->month))
		return -1;
	return 0;
}

static int
skey_date(struct sctx *c, struct imap_skey *k)
{
	const struct imap_arg *a = skey_next(c);

	if (a == NULL ||
	    (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) ||
	    skey_date_text(a->str, a->len, &k->date) < 0)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX, "Invalid date");
	return 0;
}

/* number (or number64) in an atom, at most max. */
static int
skey_number(const struct imap_arg *a, uint64_t max, int nz, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0)
		return -1;
	for (i = 0; i < a->len; i++) {
		if (a->str[i] < '0' || a->str[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(a->str[i] - '0');
		if (v > max)
			return -1;
	}
	if (nz && v == 0)
		return -1;
	*out = v;
	return 0;
}

/* A flag-keyword: an atom of ATOM-CHARs only (no backslash). */
static int
skey_keyword(struct sctx *c, struct imap_skey *k)
{
	const struct imap_arg *a = skey_next(c);
	size_t i;

	if (a == NULL || a->type != IMAP_ARG_ATOM)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX, "Invalid keyword");
	for (i = 0; i < a->len; i++)
		if (strchr("(){%*\"\\][", a->str[i]) != NULL)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Invalid keyword");
	k->str = xstrdup(a->str);
	k->len = a->len;
	return 0;
}

/*
 * MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer, where
 * entry-name is "/flags/" plus a flag, quoted (RFC 7162 section 7).
 */
static int
skey_modseq(struct sctx *c, struct imap_skey *k)
{
	const struct imap_arg *a = skey_next(c);

	if (a != NULL && a->type == IMAP_ARG_STRING) {
		const struct imap_arg *t = skey_next(c);

		if (strncasecmp(a->str, "/flags/", 7) != 0 || a->len < 8)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Invalid MODSEQ entry name");
		if (imap_arg_atom_is(t, "priv"))
			k->entry_type = IMAP_SKEY_ENTRY_PRIV;
		else if (imap_arg_atom_is(t, "shared"))
			k->entry_type = IMAP_SKEY_ENTRY_SHARED;
		else if (imap_arg_atom_is(t, "all"))
			k->entry_type = IMAP_SKEY_ENTRY_ALL;
		else
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Invalid MODSEQ entry type");
		k->field = xstrdup(a->str);
		a = skey_next(c);
	}
	if (skey_number(a, INT64_MAX, 0, &k->num) < 0)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX, "Invalid MODSEQ");
	return 0;
}

/* Fills a node with n children parsed from the arguments. */
static int
skey_children(struct sctx *c, unsigned depth, struct imap_skey *k, size_t n)
{
	size_t i;

	k->child = xcalloc(n, sizeof(*k->child));
	for (i = 0; i < n; i++) {
		k->nchild = i + 1;
		if (skey_parse(c, depth + 1, &k->child[i]) < 0)
			return -1;
	}
	return 0;
}

/* Makes k a NOT over a copy of what it holds now. */
static void
skey_negate(struct imap_skey *k)
{
	struct imap_skey *inner = xmalloc(sizeof(*inner));

	*inner = *k;
	memset(k, 0, sizeof(*k));
	k->type = IMAP_SKEY_NOT;
	k->child = inner;
	k->nchild = 1;
}

/* NEW: \Recent and not \Seen. */
static void
skey_new(struct imap_skey *k)
{
	k->type = IMAP_SKEY_AND;
	k->child = xcalloc(2, sizeof(*k->child));
	k->nchild = 2;
	k->child[0].type = k->child[1].type = IMAP_SKEY_FLAG;
	k->child[0].str = xstrdup("\\Recent");
	k->child[1].str = xstrdup("\\Seen");
	k->child[0].len = 7;
	k->child[1].len = 5;
	skey_negate(&k->child[1]);
}

/* The arguments of a keyword key. */
static int
skey_args(struct sctx *c, unsigned depth, const struct skey_def *d,
    struct imap_skey *k)
{
	const struct imap_arg *a;

	switch (d->kind) {
	case K_FLAG:
		k->str = xstrdup(d->arg);
		k->len = strlen(d->arg);
		return 0;
	case K_ALL:
		return 0;
	case K_NEW:
		skey_new(k);
		return 0;
	case K_STRING:
		if (d->arg != NULL)
			k->field = xstrdup(d->arg);
		return skey_astring(c, &k->str, &k->len);
	case K_HEADER:
		if (skey_astring(c, &k->field, NULL) < 0)
			return -1;
		return skey_astring(c, &k->str, &k->len);
	case K_KEYWORD:
		return skey_keyword(c, k);
	case K_DATE:
		return skey_date(c, k);
	case K_SIZE:
		if (skey_number(skey_next(c), INT64_MAX, 0, &k->num) < 0)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Invalid size");
		return 0;
	case K_NOT:
		return skey_children(c, depth, k, 1);
	case K_OR:
		return skey_children(c, depth, k, 2);
	case K_UID:
		a = skey_next(c);
		if (a == NULL || a->type != IMAP_ARG_ATOM ||
		    imap_seqset_parse(a->str, a->len, &k->set) < 0)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Invalid UID set");
		return 0;
	case K_MODSEQ:
		return skey_modseq(c, k);
	}
	return -1;
}

/* A parenthesised group: the keys of a list, as an AND node. */
static int
skey_group(struct sctx *c, unsigned depth, const struct imap_arg *list,
    struct imap_skey *k)
{
	struct sctx sub = *c;
	size_t cap = 0;

	k->type = IMAP_SKEY_AND;
	sub.args = list->list;
	sub.nargs = list->count;
	sub.i = 0;
	if (list->count == 0)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX, "Empty group");
	while (sub.i < sub.nargs) {
		if (k->nchild == cap) {
			cap = cap ? cap * 2 : 4;
			k->child =
			    xreallocarray(k->child, cap, sizeof(*k->child));
		}
		memset(&k->child[k->nchild], 0, sizeof(*k->child));
		k->nchild++;
		if (skey_parse(&sub, depth + 1, &k->child[k->nchild - 1]) < 0)
			break;
	}
	c->keys = sub.keys;
	c->err = sub.err;
	c->text = sub.text;
	return c->err == IMAP_SEARCH_ERR_NONE ? 0 : -1;
}

static const struct skey_def *
skey_find(const struct imap_arg *a)
{
	size_t i;

	if (a->type != IMAP_ARG_ATOM)
		return NULL;
	for (i = 0; i < sizeof(skey_defs) / sizeof(skey_defs[0]); i++)
		if (strcasecmp(a->str, skey_defs[i].name) == 0)
			return &skey_defs[i];
	return NULL;
}

/* One search-key into out (zeroed by the caller). */
static int
skey_parse(struct sctx *c, unsigned depth, struct imap_skey *out)
{
	const struct imap_arg *a = skey_next(c);
	const struct skey_def *d;

	if (depth > IMAP_SEARCH_MAX_DEPTH)
		return skey_fail(c, IMAP_SEARCH_ERR_TOO_COMPLEX,
		    "Search program nested too deeply");
	if (a == NULL)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
		    "Missing search key");
	if (skey_count(c) < 0)
		return -1;
	if (a->type == IMAP_ARG_LIST)
		return skey_group(c, depth, a, out);
	d = skey_find(a);
	if (d == NULL) {
		out->type = IMAP_SKEY_SEQSET;
		if (a->type != IMAP_ARG_ATOM ||
		    imap_seqset_parse(a->str, a->len, &out->set) < 0)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Unknown search key");
		return 0;
	}
	if (d->rev1 && (c->flags & IMAP_SEARCH_REV2))
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
		    "Search key not in IMAP4rev2");
	out->type = d->type;
	out->cmp = d->cmp;
	if (skey_args(c, depth, d, out) < 0)
		return -1;
	if (d->negate)
		skey_negate(out);
	return 0;
}

/* RETURN (opts), RFC 4731 section 3.1 and RFC 5182. */
static int
search_return(struct sctx *c, struct imap_search *out)
{
	static const char *const opts[] = {"MIN", "MAX", "ALL", "COUNT",
	    "SAVE"};
	const struct imap_arg *l = skey_next(c);
	size_t i, j;

	if (l == NULL || l->type != IMAP_ARG_LIST)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
		    "Invalid RETURN options");
	out->esearch = 1;
	for (i = 0; i < l->count; i++) {
		for (j = 0; j < 5; j++)
			if (imap_arg_atom_is(&l->list[i], opts[j]))
				break;
		if (j == 5)
			return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX,
			    "Unknown RETURN option");
		out->ret |= 1u << j;
	}
	if (out->ret == 0)
		out->ret = IMAP_SEARCH_RET_ALL;
	return 0;
}

/* The optional prefixes: RETURN first, then CHARSET. */
static int
search_prefix(struct sctx *c, struct imap_search *out)
{
	const struct imap_arg *cs;

	if (c->nargs > 0 && imap_arg_atom_is(&c->args[0], "RETURN")) {
		c->i = 1;
		if (search_return(c, out) < 0)
			return -1;
	}
	if (c->i >= c->nargs || !imap_arg_atom_is(&c->args[c->i], "CHARSET"))
		return 0;
	c->i++;
	cs = skey_next(c);
	if (cs == NULL || cs->type == IMAP_ARG_LIST)
		return skey_fail(c, IMAP_SEARCH_ERR_SYNTAX, "Missing charset");
	if (strcasecmp(cs->str, "UTF-8") == 0)
		out->utf8 = 1;
	else if (strcasecmp(cs->str, "US-ASCII") != 0)
		return skey_fail(c, IMAP_SEARCH_ERR_BADCHARSET,
		    "Unsupported charset");
	return 0;
}

int
imap_searchkey_parse(const struct imap_arg *args, size_t nargs, unsigned flags,
    struct imap_search *out, enum imap_search_err *err, const char **text)
{
	struct sctx c = {args, nargs, 0, flags, 0, IMAP_SEARCH_ERR_NONE, NULL};
	struct imap_arg program;

	memset(out, 0, sizeof(*out));
	out->root = xcalloc(1, sizeof(*out->root));
	if (search_prefix(&c, out) < 0)
		goto fail;
	/* The keys after the prefixes form one implicit group. */
	if (c.i >= nargs) {
		skey_fail(&c, IMAP_SEARCH_ERR_SYNTAX, "Missing search key");
		goto fail;
	}
	memset(&program, 0, sizeof(program));
	program.type = IMAP_ARG_LIST;
	program.list = (struct imap_arg *)args + c.i;
	program.count = nargs - c.i;
	if (skey_group(&c, 0, &program, out->root) < 0)
		goto fail;
	*err = IMAP_SEARCH_ERR_NONE;
	*text = NULL;
	return 0;
fail:
	*err = c.err;
	*text = c.text;
	imap_searchkey_clear(out);
	return -1;
}

void
imap_searchkey_clear(struct imap_search *out)
{
	if (out->root != NULL) {
		skey_clear(out->root);
		free(out->root);
	}
	memset(out, 0, sizeof(*out));
}
