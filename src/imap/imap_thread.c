/*
 * Base subjects (RFC 5256 section 2.1) and the ORDEREDSUBJECT and
 * REFERENCES threading algorithms (RFC 5256 sections 3 and 4), over plain
 * records: the caller reads the fields from the index. Trees live in one
 * array linked by index and every walk is iterative, so a hostile
 * References chain costs memory, never stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "imap/imap_thread.h"
#include "mime/mime.h"

/* ------------------------------------------------------------------ */
/* Base subject. */

static int
imap_thread_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Step 1: white space runs become one space, ASCII letters upper case. */
static char *
imap_thread_fold(const char *s)
{
	char *out = xmalloc(strlen(s) + 1);
	size_t k = 0;
	int sp = 0;

	for (; *s != '\0'; s++) {
		if (imap_thread_wsp(*s)) {
			if (!sp)
				out[k++] = ' ';
			sp = 1;
			continue;
		}
		out[k++] = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		sp = 0;
	}
	out[k] = '\0';
	return out;
}

/* The length of a subj-blob ("[...]" and trailing space) at p, or 0. */
static size_t
imap_thread_blob(const char *p, size_t len)
{
	size_t i = 1;

	if (len == 0 || p[0] != '[')
		return 0;
	while (i < len && p[i] != ']' && p[i] != '[')
		i++;
	if (i == len || p[i] != ']')
		return 0;
	for (i++; i < len && p[i] == ' '; i++)
		;
	return i;
}

/* The length of a subj-refwd ("Re", "Fw" or "Fwd" ... ":") at p, or 0. */
static size_t
imap_thread_refwd(const char *p, size_t len)
{
	size_t i;

	if (len >= 3 && memcmp(p, "FWD", 3) == 0)
		i = 3;
	else if (len >= 2 &&
	    (memcmp(p, "RE", 2) == 0 || memcmp(p, "FW", 2) == 0))
		i = 2;
	else
		return 0;
	while (i < len && p[i] == ' ')
		i++;
	i += imap_thread_blob(p + i, len - i);
	return i < len && p[i] == ':' ? i + 1 : 0;
}

/* The length of a subj-leader at p (space, or blobs then refwd), or 0. */
static size_t
imap_thread_leader(const char *p, size_t len, int *reply)
{
	size_t i = 0, b;

	if (len > 0 && p[0] == ' ')
		return 1;
	while ((b = imap_thread_blob(p + i, len - i)) > 0)
		i += b;
	b = imap_thread_refwd(p + i, len - i);
	if (b == 0)
		return 0;
	*reply = 1;
	return i + b;
}

/* Step 2: trailing "(fwd)" and white space; returns the new end. */
static size_t
imap_thread_trailer(const char *s, size_t start, size_t end, int *reply)
{
	for (;;) {
		if (end > start && s[end - 1] == ' ') {
			end--;
		} else if (end - start >= 5 &&
		    memcmp(s + end - 5, "(FWD)", 5) == 0) {
			end -= 5;
			*reply = 1;
		} else {
			return end;
		}
	}
}

/* Steps 3 to 5: leaders, and blobs that leave something behind. */
static size_t
imap_thread_leaders(const char *s, size_t start, size_t end, int *reply)
{
	for (;;) {
		size_t n = imap_thread_leader(s + start, end - start, reply);

		if (n == 0) {
			n = imap_thread_blob(s + start, end - start);
			if (n == 0 || start + n >= end)
				return start;
		}
		start += n;
	}
}

char *
imap_thread_base_subject(const char *subject, int *reply)
{
	char *s = imap_thread_fold(subject != NULL ? subject : "");
	size_t start = 0, end = strlen(s);
	int r = 0;

	for (;;) {
		end = imap_thread_trailer(s, start, end, &r);
		start = imap_thread_leaders(s, start, end, &r);
		/* Step 6: "[Fwd: ...]" wraps a forwarded subject. */
		if (end - start < 6 || memcmp(s + start, "[FWD:", 5) != 0 ||
		    s[end - 1] != ']')
			break;
		start += 5;
		end--;
		r = 1;
	}
	memmove(s, s + start, end - start);
	s[end - start] = '\0';
	if (reply != NULL)
		*reply = r;
	return s;
}

/* ------------------------------------------------------------------ */
/* Trees. */

#define IMAP_THREAD_NONE (-1)
#define IMAP_THREAD_ROOT 0 /* the node above every thread */

/* A container (RFC 5256 section 4): a message, or a dummy when msg < 0. */
struct imap_thread_node {
	int32_t msg;
	int32_t parent, child, next, prev;
	uint32_t nchild;
	int64_t date; /* the sort key: the message's, or its first child's */
	uint32_t id;
};

/* One Message-ID in the table. */
struct imap_thread_slot {
	char *key;
	int32_t node;
};

struct imap_thread_ctx {
	const struct imap_thread_msg *msgs;
	size_t n;
	char **base; /* base subject per message */
	int *reply;  /* reply or forward per message */
	struct imap_thread_node *node;
	size_t nnode, cap;
	struct imap_thread_slot *tab;
	size_t ntab, tabcap; /* tabcap: a power of two */
};

static int32_t
imap_thread_node_new(struct imap_thread_ctx *c, int32_t msg)
{
	struct imap_thread_node *x;

	if (c->nnode == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->node = xreallocarray(c->node, c->cap, sizeof(*c->node));
	}
	x = &c->node[c->nnode];
	memset(x, 0, sizeof(*x));
	x->msg = msg;
	x->parent = x->child = x->next = x->prev = IMAP_THREAD_NONE;
	if (msg >= 0) {
		x->date = c->msgs[msg].date;
		x->id = c->msgs[msg].id;
	}
	return (int32_t)c->nnode++;
}

static void
imap_thread_unlink(struct imap_thread_ctx *c, int32_t x)
{
	struct imap_thread_node *n = &c->node[x];

	if (n->parent == IMAP_THREAD_NONE)
		return;
	if (n->prev != IMAP_THREAD_NONE)
		c->node[n->prev].next = n->next;
	else
		c->node[n->parent].child = n->next;
	if (n->next != IMAP_THREAD_NONE)
		c->node[n->next].prev = n->prev;
	c->node[n->parent].nchild--;
	n->parent = n->next = n->prev = IMAP_THREAD_NONE;
}

/* Makes x the first child of p, leaving its old parent. */
static void
imap_thread_link(struct imap_thread_ctx *c, int32_t p, int32_t x)
{
	struct imap_thread_node *n = &c->node[x];

	imap_thread_unlink(c, x);
	n->parent = p;
	n->next = c->node[p].child;
	if (n->next != IMAP_THREAD_NONE)
		c->node[n->next].prev = x;
	c->node[p].child = x;
	c->node[p].nchild++;
}

/* Whether making x a child of p would close a loop: p is x or below x. */
static int
imap_thread_loops(const struct imap_thread_ctx *c, int32_t p, int32_t x)
{
	for (; p != IMAP_THREAD_NONE; p = c->node[p].parent)
		if (p == x)
			return 1;
	return 0;
}

static int
imap_thread_node_cmp(const struct imap_thread_node *a,
    const struct imap_thread_node *b)
{
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
imap_thread_idx_cmp(const void *a, const void *b, void *arg)
{
	const struct imap_thread_node *node = arg;

	return imap_thread_node_cmp(&node[*(const int32_t *)a],
	    &node[*(const int32_t *)b]);
}

/* Orders p's children by sent date, then id (RFC 5256 section 2.2). */
static void
imap_thread_sort_children(struct imap_thread_ctx *c, int32_t p, int32_t *tmp)
{
	size_t k = 0;

	if (c->node[p].nchild < 2)
		return;
	for (int32_t x = c->node[p].child; x != IMAP_THREAD_NONE;
	     x = c->node[x].next)
		tmp[k++] = x;
	qsort_r(tmp, k, sizeof(*tmp), imap_thread_idx_cmp, c->node);
	while (k > 0)
		imap_thread_link(c, p, tmp[--k]);
}

/*
 * Sorts every sibling list; a dummy sorts by its first child, so the
 * lists below the root go first.
 */
static void
imap_thread_sort(struct imap_thread_ctx *c)
{
	int32_t *tmp = xcalloc(c->nnode + 1, sizeof(*tmp));

	for (size_t i = 1; i < c->nnode; i++)
		imap_thread_sort_children(c, (int32_t)i, tmp);
	for (size_t i = 1; i < c->nnode; i++) {
		struct imap_thread_node *x = &c->node[i];

		if (x->msg < 0 && x->child != IMAP_THREAD_NONE) {
			x->date = c->node[x->child].date;
			x->id = c->node[x->child].id;
		}
	}
	imap_thread_sort_children(c, IMAP_THREAD_ROOT, tmp);
	free(tmp);
}

/* ------------------------------------------------------------------ */
/* Writing the thread-list. */

static int
imap_thread_grouped(const struct imap_thread_ctx *c, int32_t x)
{
	int32_t p = c->node[x].parent;

	return p == IMAP_THREAD_ROOT || c->node[p].nchild > 1;
}

static void
imap_thread_put(struct mime_buf *b, const char *s)
{
	if (b->len > 0 && b->data[b->len - 1] >= '0' &&
	    b->data[b->len - 1] <= '9')
		mime_buf_addc(b, ' ');
	mime_buf_adds(b, s);
}

static void
imap_thread_enter(const struct imap_thread_ctx *c, struct mime_buf *b,
    int32_t x)
{
	char num[16];

	if (imap_thread_grouped(c, x))
		imap_thread_put(b, "(");
	if (c->node[x].msg >= 0) {
		snprintf(num, sizeof(num), "%u", c->node[x].id);
		imap_thread_put(b, num);
	}
}

/* RFC 5256 section 5: chains flat, branches parenthesised; no recursion. */
static char *
imap_thread_write(const struct imap_thread_ctx *c)
{
	struct mime_buf b = {0};
	int32_t x = c->node[IMAP_THREAD_ROOT].child;

	while (x != IMAP_THREAD_NONE) {
		imap_thread_enter(c, &b, x);
		if (c->node[x].child != IMAP_THREAD_NONE) {
			x = c->node[x].child;
			continue;
		}
		for (;;) {
			if (imap_thread_grouped(c, x))
				mime_buf_addc(&b, ')');
			if (c->node[x].next != IMAP_THREAD_NONE) {
				x = c->node[x].next;
				break;
			}
			x = c->node[x].parent;
			if (x == IMAP_THREAD_ROOT) {
				x = IMAP_THREAD_NONE;
				break;
			}
		}
	}
	return mime_buf_finish(&b);
}

/* ------------------------------------------------------------------ */
/* Context. */

static void
imap_thread_init(struct imap_thread_ctx *c, const struct imap_thread_msg *msgs,
    size_t n)
{
	memset(c, 0, sizeof(*c));
	c->msgs = msgs;
	c->n = n;
	c->base = xcalloc(n + 1, sizeof(*c->base));
	c->reply = xcalloc(n + 1, sizeof(*c->reply));
	for (size_t i = 0; i < n; i++)
		c->base[i] =
		    imap_thread_base_subject(msgs[i].subject, &c->reply[i]);
	imap_thread_node_new(c, -2);
}

static void
imap_thread_deinit(struct imap_thread_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->base[i]);
	for (size_t i = 0; i < c->tabcap; i++)
		free(c->tab[i].key);
	free(c->base);
	free(c->reply);
	free(c->node);
	free(c->tab);
}

/* ------------------------------------------------------------------ */
/* ORDEREDSUBJECT. */

static int
imap_thread_subject_cmp(const void *a, const void *b, void *arg)
{
	const struct imap_thread_ctx *c = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	int r = strcmp(c->base[c->node[x].msg], c->base[c->node[y].msg]);

	return r != 0 ? r : imap_thread_node_cmp(&c->node[x], &c->node[y]);
}

char *
imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n)
{
	struct imap_thread_ctx c;
	int32_t *order = xcalloc(n + 1, sizeof(*order)), head = 0;
	char *out;

	imap_thread_init(&c, msgs, n);
	for (size_t i = 0; i < n; i++)
		order[i] = imap_thread_node_new(&c, (int32_t)i);
	qsort_r(order, n, sizeof(*order), imap_thread_subject_cmp, &c);
	/* The first of each subject starts a thread; the rest are its
	 * children. */
	for (size_t i = 0; i < n; i++) {
		if (i == 0 ||
		    strcmp(c.base[c.node[order[i]].msg],
		        c.base[c.node[head].msg]) != 0) {
			head = order[i];
			imap_thread_link(&c, IMAP_THREAD_ROOT, head);
		} else {
			imap_thread_link(&c, head, order[i]);
		}
	}
	imap_thread_sort(&c);
	out = imap_thread_write(&c);
	free(order);
	imap_thread_deinit(&c);
	return out;
}

/* ------------------------------------------------------------------ */
/* The Message-ID table. */

static uint64_t
imap_thread_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct imap_thread_slot *
imap_thread_slot(struct imap_thread_ctx *c, const char *key)
{
	size_t i = imap_thread_hash(key) & (c->tabcap - 1);

	while (c->tab[i].key != NULL && strcmp(c->tab[i].key, key) != 0)
		i = (i + 1) & (c->tabcap - 1);
	return &c->tab[i];
}

static void
imap_thread_grow(struct imap_thread_ctx *c)
{
	struct imap_thread_slot *old = c->tab;
	size_t oldcap = c->tabcap;

	c->tabcap = oldcap ? oldcap * 2 : 64;
	c->tab = xcalloc(c->tabcap, sizeof(*c->tab));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			*imap_thread_slot(c, old[i].key) = old[i];
	free(old);
}

/* The container of id (taken over), made as a dummy when it is new. */
static int32_t
imap_thread_lookup(struct imap_thread_ctx *c, char *id)
{
	struct imap_thread_slot *s;

	if ((c->ntab + 1) * 2 > c->tabcap)
		imap_thread_grow(c);
	s = imap_thread_slot(c, id);
	if (s->key != NULL) {
		free(id);
		return s->node;
	}
	s->key = id;
	s->node = imap_thread_node_new(c, -1);
	c->ntab++;
	return s->node;
}

/*
 * The next msg-id ("<...>", white space dropped, not empty) in p: returns
 * it as a new string and moves *p past it, or NULL at the end.
 */
static char *
imap_thread_next_id(const char **p)
{
	while (*p != NULL && (*p = strchr(*p, '<')) != NULL) {
		const char *end = strchr(*p + 1, '>');
		char *id;
		size_t k = 0;

		if (end == NULL)
			break;
		id = xmalloc((size_t)(end - *p));
		for (const char *q = *p + 1; q < end; q++)
			if (!imap_thread_wsp(*q) && *q != '<')
				id[k++] = *q;
		id[k] = '\0';
		*p = end + 1;
		if (k > 0)
			return id;
		free(id);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* REFERENCES, step 1: containers and links. */

/* Step 1A: links the references in order; returns the last, or NONE. */
static int32_t
imap_thread_chain(struct imap_thread_ctx *c, const char *refs)
{
	int32_t prev = IMAP_THREAD_NONE;
	char *id;

	while ((id = imap_thread_next_id(&refs)) != NULL) {
		int32_t r = imap_thread_lookup(c, id);

		/* Links that exist stay; none may close a loop. */
		if (prev != IMAP_THREAD_NONE && prev != r &&
		    c->node[r].parent == IMAP_THREAD_NONE &&
		    !imap_thread_loops(c, prev, r))
			imap_thread_link(c, prev, r);
		prev = r;
	}
	return prev;
}

/* The references of message i: References, else In-Reply-To's first. */
static int32_t
imap_thread_refs(struct imap_thread_ctx *c, size_t i)
{
	const char *p = c->msgs[i].references;
	char *id = imap_thread_next_id(&p);

	if (id != NULL) {
		free(id);
		return imap_thread_chain(c, c->msgs[i].references);
	}
	p = c->msgs[i].in_reply_to;
	id = imap_thread_next_id(&p);
	return id != NULL ? imap_thread_lookup(c, id) : IMAP_THREAD_NONE;
}

/* The container of message i; a duplicate or missing ID gets its own. */
static int32_t
imap_thread_own(struct imap_thread_ctx *c, size_t i)
{
	const char *p = c->msgs[i].message_id;
	char *id = imap_thread_next_id(&p);
	int32_t x = IMAP_THREAD_NONE;

	if (id != NULL)
		x = imap_thread_lookup(c, id);
	if (x == IMAP_THREAD_NONE || c->node[x].msg >= 0)
		x = imap_thread_node_new(c, (int32_t)i);
	c->node[x].msg = (int32_t)i;
	c->node[x].date = c->msgs[i].date;
	c->node[x].id = c->msgs[i].id;
	return x;
}

static void
imap_thread_link_all(struct imap_thread_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		int32_t x = imap_thread_own(c, i);
		int32_t last = imap_thread_refs(c, i);

		/* Step 1B: our own link wins over one the others implied. */
		if (last == IMAP_THREAD_NONE)
			imap_thread_unlink(c, x);
		else if (last != x && !imap_thread_loops(c, last, x))
			imap_thread_link(c, last, x);
	}
	/* Step 2: the parentless containers are the root set. */
	for (size_t i = 1; i < c->nnode; i++)
		if (c->node[i].parent == IMAP_THREAD_NONE)
			imap_thread_link(c, IMAP_THREAD_ROOT, (int32_t)i);
}

/* ------------------------------------------------------------------ */
/* REFERENCES, step 3: pruning dummies. */

/*
 * The nearest ancestor of x that stays: a message, or a container at the
 * root level. up[] memoises it, so the whole pass is linear.
 */
static int32_t
imap_thread_keeper(const struct imap_thread_ctx *c, int32_t *up, int32_t x)
{
	int32_t top = c->node[x].parent, p;

	while (
	    c->node[top].msg < 0 && c->node[top].parent != IMAP_THREAD_ROOT) {
		if (up[top] != IMAP_THREAD_NONE) {
			top = up[top];
			break;
		}
		top = c->node[top].parent;
	}
	/* Memoise the dummies passed on the way. */
	for (p = c->node[x].parent; p != top && up[p] == IMAP_THREAD_NONE;
	     p = c->node[p].parent)
		up[p] = top;
	return top;
}

static void
imap_thread_prune(struct imap_thread_ctx *c)
{
	int32_t *up = xcalloc(c->nnode, sizeof(*up));
	size_t n = c->nnode;

	for (size_t i = 0; i < n; i++)
		up[i] = IMAP_THREAD_NONE;
	/* Every message or root container hangs from its nearest keeper. */
	for (size_t i = 1; i < n; i++) {
		struct imap_thread_node *x = &c->node[i];

		if (x->parent != IMAP_THREAD_ROOT && x->msg >= 0)
			up[i] = imap_thread_keeper(c, up, (int32_t)i);
	}
	for (size_t i = 1; i < n; i++)
		if (c->node[i].msg >= 0 &&
		    c->node[i].parent != IMAP_THREAD_ROOT)
			imap_thread_link(c, up[i], (int32_t)i);
	/* Dummies below the root now hold nothing; drop them. */
	for (size_t i = 1; i < n; i++)
		if (c->node[i].msg < 0 && c->node[i].parent != IMAP_THREAD_ROOT)
			imap_thread_unlink(c, (int32_t)i);
	free(up);
}

/*
 * Step 3 at the root: an empty dummy goes, one with a single child gives
 * its place to it; a dummy with more children stays.
 */
static void
imap_thread_prune_root(struct imap_thread_ctx *c)
{
	for (size_t i = 1; i < c->nnode; i++) {
		struct imap_thread_node *x = &c->node[i];

		if (x->msg >= 0 || x->parent != IMAP_THREAD_ROOT)
			continue;
		if (x->nchild == 1)
			imap_thread_link(c, IMAP_THREAD_ROOT, x->child);
		if (x->nchild == 0)
			imap_thread_unlink(c, (int32_t)i);
	}
}

/* ------------------------------------------------------------------ */
/* REFERENCES, step 5: threads with the same base subject. */

/* The message that gives root container x its subject, or -1. */
static int32_t
imap_thread_subject_msg(const struct imap_thread_ctx *c, int32_t x)
{
	if (c->node[x].msg >= 0)
		return c->node[x].msg;
	x = c->node[x].child;
	return x != IMAP_THREAD_NONE ? c->node[x].msg : -1;
}

/* Step 5B: which container the table holds for a base subject. */
static int
imap_thread_better(const struct imap_thread_ctx *c, int32_t cur, int32_t old)
{
	int32_t cm = imap_thread_subject_msg(c, cur);
	int32_t om = imap_thread_subject_msg(c, old);

	if (c->node[cur].msg < 0 && c->node[old].msg >= 0)
		return 1;
	return c->node[old].msg >= 0 && c->node[cur].msg >= 0 && c->reply[om] &&
	    !c->reply[cm];
}

/* Step 5C: merges root container x into t, which holds its subject. */
static int32_t
imap_thread_merge(struct imap_thread_ctx *c, int32_t t, int32_t x)
{
	int32_t d;

	if (c->node[x].msg < 0 && c->node[t].msg >= 0) {
		imap_thread_link(c, x, t);
		return x;
	}
	if (c->node[t].msg < 0 && c->node[x].msg < 0) {
		while (c->node[x].child != IMAP_THREAD_NONE)
			imap_thread_link(c, t, c->node[x].child);
		imap_thread_unlink(c, x);
		return t;
	}
	if (c->node[t].msg < 0 ||
	    (c->reply[c->node[x].msg] && !c->reply[c->node[t].msg])) {
		imap_thread_link(c, t, x);
		return t;
	}
	d = imap_thread_node_new(c, -1);
	imap_thread_link(c, IMAP_THREAD_ROOT, d);
	imap_thread_link(c, d, t);
	imap_thread_link(c, d, x);
	return d;
}

/* The subject table: base subject -> container, in the Message-ID table's
 * shape but kept apart from it. */
static void
imap_thread_by_subject(struct imap_thread_ctx *c)
{
	struct imap_thread_ctx subj = {0};
	size_t nroot = c->node[IMAP_THREAD_ROOT].nchild, k = 0;
	int32_t *roots = xcalloc(nroot + 1, sizeof(*roots));

	for (int32_t x = c->node[IMAP_THREAD_ROOT].child; x != IMAP_THREAD_NONE;
	     x = c->node[x].next)
		roots[k++] = x;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < k; i++) {
			int32_t m = imap_thread_subject_msg(c, roots[i]);
			struct imap_thread_slot *s;

			if (m < 0 || c->base[m][0] == '\0' ||
			    c->node[roots[i]].parent != IMAP_THREAD_ROOT)
				continue;
			if ((subj.ntab + 1) * 2 > subj.tabcap)
				imap_thread_grow(&subj);
			s = imap_thread_slot(&subj, c->base[m]);
			if (s->key == NULL) {
				s->key = xstrdup(c->base[m]);
				s->node = roots[i];
				subj.ntab++;
			} else if (pass == 0 &&
			    imap_thread_better(c, roots[i], s->node)) {
				s->node = roots[i];
			} else if (pass == 1 && s->node != roots[i]) {
				s->node =
				    imap_thread_merge(c, s->node, roots[i]);
			}
		}
	}
	for (size_t i = 0; i < subj.tabcap; i++)
		free(subj.tab[i].key);
	free(subj.tab);
	free(roots);
}

char *
imap_thread_references(const struct imap_thread_msg *msgs, size_t n)
{
	struct imap_thread_ctx c;
	char *out;

	imap_thread_init(&c, msgs, n);
	imap_thread_link_all(&c);
	imap_thread_prune(&c);
	imap_thread_prune_root(&c);
	/* Step 4: the root set in date order, so step 5 sees the earliest
	 * first; step 6 sorts everything once merged. */
	imap_thread_sort(&c);
	imap_thread_by_subject(&c);
	imap_thread_sort(&c);
	out = imap_thread_write(&c);
	imap_thread_deinit(&c);
	return out;
}
