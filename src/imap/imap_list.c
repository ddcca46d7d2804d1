/*
 * LIST and LSUB (RFC 3501 sections 6.3.8-6.3.9, RFC 9051 section 6.3.9,
 * with the selection and return options of LIST-EXTENDED, RFC 5258,
 * SPECIAL-USE, RFC 6154, and LIST-STATUS, RFC 5819) and STATUS (RFC 9051
 * section 6.3.11, STATUS=SIZE of RFC 8438, HIGHESTMODSEQ of RFC 7162
 * section 3.1.6), answered from the store's
 * mailbox listing read on the I/O pool.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "net/conn.h"
#include "store/store_view.h"

/* Selection options (RFC 5258 section 3.1); REMOTE is accepted, a no-op. */
#define LIST_SEL_SUBSCRIBED 0x1
#define LIST_SEL_SPECIAL 0x2
#define LIST_SEL_RECURSIVE 0x4

/* Return options (RFC 5258 section 3.2, RFC 6154, RFC 5819). */
#define LIST_RET_SUBSCRIBED 0x1
#define LIST_RET_CHILDREN 0x2
#define LIST_RET_SPECIAL 0x4
#define LIST_RET_STATUS 0x8

/* STATUS items, in the order they are written. */
#define STATUS_MESSAGES 0x01
#define STATUS_RECENT 0x02
#define STATUS_UIDNEXT 0x04
#define STATUS_UIDVALIDITY 0x08
#define STATUS_UNSEEN 0x10
#define STATUS_SIZE 0x20
#define STATUS_DELETED 0x40
#define STATUS_HIGHESTMODSEQ 0x80

enum imap_list_kind {
	LIST_LIST,
	LIST_LSUB,
	LIST_STATUS
};

/* A LIST, LSUB or STATUS waiting for the listing. */
struct imap_list_req {
	struct imap_async async; /* first */
	char *tag;
	enum imap_list_kind kind;
	unsigned sel, ret, items;
	char **patterns; /* UTF-8, reference joined; STATUS: the name */
	size_t npatterns;
};

static void
imap_list_req_free(struct imap_list_req *req)
{
	if (req->async.s != NULL)
		req->async.s->async = NULL;
	for (size_t i = 0; i < req->npatterns; i++)
		free(req->patterns[i]);
	free(req->patterns);
	free(req->tag);
	free(req);
}

/*
 * Whether name matches pattern, where "*" matches anything and "%"
 * anything but the delimiter: a dynamic program over the name, its cost
 * bounded by the product of the lengths, so no pattern can blow up.
 */
static int
imap_list_match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	unsigned char *dp = xcalloc(n + 1, 1);
	int r;

	dp[0] = 1;
	for (; *pat != '\0'; pat++) {
		if (*pat == '*' || *pat == '%') {
			for (size_t j = 1; j <= n; j++)
				dp[j] = dp[j] ||
				    (dp[j - 1] &&
				        (*pat == '*' || name[j - 1] != '/'));
			continue;
		}
		for (size_t j = n; j > 0; j--)
			dp[j] = dp[j - 1] && name[j - 1] == *pat;
		dp[0] = 0;
	}
	r = dp[n];
	free(dp);
	return r;
}

static int
imap_list_matches(const struct imap_list_req *req, const char *name)
{
	for (size_t i = 0; i < req->npatterns; i++)
		if (imap_list_match(req->patterns[i], name))
			return 1;
	return 0;
}

static void
imap_list_put_status(struct imap_session *s, unsigned items,
    const struct store_mailbox_info *mi)
{
	struct evbuffer *out = conn_output(s->conn);
	const char *sep = "";

	evbuffer_add_printf(out, "* STATUS ");
	imap_select_put_name(s, mi->name);
	evbuffer_add_printf(out, " (");
#define ITEM(bit, fmt, val)                                   \
	if (items & (bit)) {                                  \
		evbuffer_add_printf(out, "%s" fmt, sep, val); \
		sep = " ";                                    \
	}
	ITEM(STATUS_MESSAGES, "MESSAGES %u", mi->messages)
	ITEM(STATUS_RECENT, "RECENT %u", mi->recent)
	ITEM(STATUS_UIDNEXT, "UIDNEXT %u", mi->uidnext)
	ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY %u", mi->uidvalidity)
	ITEM(STATUS_UNSEEN, "UNSEEN %u", mi->unseen)
	ITEM(STATUS_SIZE, "SIZE %llu", (unsigned long long)mi->bytes)
	ITEM(STATUS_DELETED, "DELETED %u", mi->deleted)
	ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	    (unsigned long long)mi->highestmodseq)
#undef ITEM
	imap_session_printf(s, ")");
}

/*
 * One name a LIST or LSUB may answer: a mailbox, a subscription, or a
 * level of the hierarchy above one of them that is neither.
 */
struct imap_list_ent {
	const char *name;
	char *own; /* name, when it is an ancestor's only */
	const struct store_mailbox_info *mi; /* NULL: an ancestor only */
	unsigned meets : 1;                  /* meets the selection criteria */
	unsigned desc_meets : 1;             /* a descendant does (CHILDINFO) */
	unsigned children : 1;               /* a descendant exists */
};

/* Whether mi meets the selection criteria (RFC 5258 section 3.1). */
static int
imap_list_meets(const struct imap_list_req *req,
    const struct store_mailbox_info *mi)
{
	if ((req->sel & LIST_SEL_SUBSCRIBED) || req->kind == LIST_LSUB) {
		if (!mi->subscribed)
			return 0;
	} else if (!mi->exists)
		return 0;
	return !(req->sel & LIST_SEL_SPECIAL) || mi->special_use != NULL;
}

/*
 * Whether name matches a pattern whose last character is "%": the levels
 * of hierarchy such a pattern reaches are listed even where they hold no
 * mailbox (RFC 3501 section 6.3.8, and section 6.3.9 for LSUB).
 */
static int
imap_list_matches_level(const struct imap_list_req *req, const char *name)
{
	for (size_t i = 0; i < req->npatterns; i++) {
		const char *p = req->patterns[i];
		size_t len = strlen(p);

		if (len > 0 && p[len - 1] == '%' && imap_list_match(p, name))
			return 1;
	}
	return 0;
}

static int
imap_list_ent_cmp(const void *a, const void *b)
{
	const struct imap_list_ent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static struct imap_list_ent *
imap_list_ent_find(struct imap_list_ent *e, size_t n, const char *name)
{
	struct imap_list_ent key = {.name = name};

	return bsearch(&key, e, n, sizeof(*e), imap_list_ent_cmp);
}

/*
 * The names to consider, sorted and unique: every item of l and every
 * level above one, each knowing whether it or a descendant meets the
 * selection criteria and whether a mailbox exists below it.
 */
static struct imap_list_ent *
imap_list_ents(const struct imap_list_req *req,
    const struct store_mailbox_list *l, size_t *np)
{
	struct imap_list_ent *e = NULL;
	size_t n = 0, cap = 0, k = 0;

	for (size_t i = 0; i < l->n; i++) {
		const char *name = l->items[i].name;

		for (const char *c = name;; c++) {
			if (*c != '/' && *c != '\0')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				e = xreallocarray(e, cap, sizeof(*e));
			}
			memset(&e[n], 0, sizeof(e[n]));
			if (*c == '\0') {
				e[n].name = name;
				e[n++].mi = &l->items[i];
				break;
			}
			e[n].own = xstrndup(name, (size_t)(c - name));
			e[n].name = e[n].own;
			n++;
		}
	}
	if (n == 0) {
		*np = 0;
		return e;
	}
	qsort(e, n, sizeof(*e), imap_list_ent_cmp);
	/* One entry per name, the item's own where there is one. */
	for (size_t i = 1; i < n; i++) {
		if (strcmp(e[i].name, e[k].name) != 0) {
			e[++k] = e[i];
			continue;
		}
		if (e[i].mi != NULL) {
			free(e[k].own);
			e[k] = e[i];
		} else
			free(e[i].own);
	}
	n = k + 1;
	for (size_t i = 0; i < n; i++) {
		const struct store_mailbox_info *mi = e[i].mi;
		char *up;

		if (mi == NULL)
			continue;
		e[i].meets = imap_list_meets(req, mi);
		if (!e[i].meets && !mi->exists)
			continue;
		up = xstrdup(mi->name);
		for (char *c = strrchr(up, '/'); c != NULL;
		     c = strrchr(up, '/')) {
			struct imap_list_ent *a;

			*c = '\0';
			if ((a = imap_list_ent_find(e, n, up)) == NULL)
				continue;
			a->desc_meets |= e[i].meets;
			a->children |= mi->exists != 0;
		}
		free(up);
	}
	*np = n;
	return e;
}

static void
imap_list_ents_free(struct imap_list_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].own);
	free(e);
}

/*
 * Whether the entry is answered: it meets the criteria, or (RECURSIVEMATCH)
 * a descendant does, or it is a level a trailing "%" reaches above names
 * that do, in a LIST without selection options or an LSUB.
 */
static int
imap_list_answered(const struct imap_list_req *req,
    const struct imap_list_ent *e)
{
	if (!e->meets && !e->desc_meets)
		return 0;
	if (!imap_list_matches(req, e->name))
		return 0;
	if (e->meets || (req->sel & LIST_SEL_RECURSIVE))
		return 1;
	return req->sel == 0 && imap_list_matches_level(req, e->name);
}

/* The attributes of one LIST or LSUB line, without the parentheses. */
static void
imap_list_put_attrs(struct imap_session *s, const struct imap_list_req *req,
    const struct imap_list_ent *e)
{
	const struct store_mailbox_info *mi = e->mi;
	struct evbuffer *out = conn_output(s->conn);
	int exists = mi != NULL && mi->exists;
	/* Extended LISTs and IMAP4rev2 know \NonExistent (RFC 5258). */
	int ext = req->sel != 0 || req->ret != 0 ||
	    (s->enabled & IMAP_ENABLED_IMAP4REV2);
	const char *sep = "";

	if (req->kind == LIST_LSUB) {
		if (!exists || !e->meets)
			evbuffer_add_printf(out, "\\Noselect");
		return;
	}
	if (!exists) {
		evbuffer_add_printf(out, "%s",
		    ext ? "\\NonExistent" : "\\Noselect");
		sep = " ";
	}
	if (exists || e->children) {
		evbuffer_add_printf(out, "%s%s", sep,
		    e->children ? "\\HasChildren" : "\\HasNoChildren");
		sep = " ";
	}
	if (exists && mi->special_use != NULL) {
		evbuffer_add_printf(out, "%s%s", sep, mi->special_use);
		sep = " ";
	}
	if (mi != NULL && mi->subscribed &&
	    (req->ret & LIST_RET_SUBSCRIBED || req->sel & LIST_SEL_SUBSCRIBED))
		evbuffer_add_printf(out, "%s\\Subscribed", sep);
}

/* RFC 5258 section 3.5: which criteria a descendant met. */
static void
imap_list_put_childinfo(struct imap_session *s, const struct imap_list_req *req)
{
	struct evbuffer *out = conn_output(s->conn);
	const char *sep = "";

	evbuffer_add_printf(out, " (\"CHILDINFO\" (");
	if (req->sel & LIST_SEL_SUBSCRIBED) {
		evbuffer_add_printf(out, "\"SUBSCRIBED\"");
		sep = " ";
	}
	if (req->sel & LIST_SEL_SPECIAL)
		evbuffer_add_printf(out, "%s\"SPECIAL-USE\"", sep);
	evbuffer_add_printf(out, "))");
}

static void
imap_list_write(struct imap_session *s, const struct imap_list_req *req,
    const struct store_mailbox_list *l)
{
	struct evbuffer *out = conn_output(s->conn);
	size_t n;
	struct imap_list_ent *e = imap_list_ents(req, l, &n);

	for (size_t i = 0; i < n; i++) {
		if (!imap_list_answered(req, &e[i]))
			continue;
		evbuffer_add_printf(out, "* %s (",
		    req->kind == LIST_LSUB ? "LSUB" : "LIST");
		imap_list_put_attrs(s, req, &e[i]);
		evbuffer_add_printf(out, ") \"/\" ");
		imap_select_put_name(s, e[i].name);
		if ((req->sel & LIST_SEL_RECURSIVE) && e[i].desc_meets)
			imap_list_put_childinfo(s, req);
		imap_session_printf(s, "%s", "");
		if ((req->ret & LIST_RET_STATUS) && e[i].mi != NULL &&
		    e[i].mi->exists)
			imap_list_put_status(s, req->items, e[i].mi);
	}
	imap_list_ents_free(e, n);
}

static const struct store_mailbox_info *
imap_list_find(const struct store_mailbox_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].exists && strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	return NULL;
}

static void
imap_list_listed(struct store_mailbox_list *l, enum store_view_status status,
    void *arg)
{
	struct imap_list_req *req = arg;
	struct imap_session *s = req->async.s;
	const struct store_mailbox_info *mi;
	static const char *const names[] = {"LIST", "LSUB", "STATUS"};

	if (s == NULL || s->conn == NULL)
		goto out;
	if (status != STORE_VIEW_OK)
		imap_session_printf(s,
		    "%s NO [UNAVAILABLE] Cannot read the "
		    "mailbox list",
		    req->tag);
	else if (req->kind != LIST_STATUS) {
		imap_list_write(s, req, l);
		imap_session_printf(s, "%s OK %s completed", req->tag,
		    names[req->kind]);
	} else if ((mi = imap_list_find(l, req->patterns[0])) == NULL)
		imap_session_printf(s, "%s NO [NONEXISTENT] No such mailbox",
		    req->tag);
	else {
		imap_list_put_status(s, req->items, mi);
		imap_session_printf(s, "%s OK STATUS completed", req->tag);
	}
	imap_session_idle(s);
out:
	store_mailbox_list_free(&l);
	imap_list_req_free(req);
}

/* Hands req to the store; input waits until the answer is written. */
static void
imap_list_start(struct imap_session *s, struct imap_list_req *req)
{
	req->async.s = s;
	s->async = &req->async;
	imap_session_busy(s);
	store_mailbox_list(s->srv->env.store, s->user,
	    (req->items & STATUS_DELETED) ? STORE_LIST_DELETED : 0,
	    imap_list_listed, req);
}

/* ------------------------------------------------------------------ */
/* Parsing the arguments. */

/* The bit of one STATUS item, or 0 for one we do not know. */
static unsigned
imap_list_status_item(struct imap_session *s, const struct imap_arg *a)
{
	static const struct {
		const char *name;
		unsigned bit;
	} items[] = {
	    {"MESSAGES", STATUS_MESSAGES},
	    {"RECENT", STATUS_RECENT},
	    {"UIDNEXT", STATUS_UIDNEXT},
	    {"UIDVALIDITY", STATUS_UIDVALIDITY},
	    {"UNSEEN", STATUS_UNSEEN},
	    {"SIZE", STATUS_SIZE},
	    {"DELETED", STATUS_DELETED},
	    {"HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ},
	};

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (!imap_arg_atom_is(a, items[i].name))
			continue;
		/* RFC 9051 dropped RECENT. */
		if (items[i].bit == STATUS_RECENT &&
		    (s->enabled & IMAP_ENABLED_IMAP4REV2))
			return 0;
		return items[i].bit;
	}
	return 0;
}

/* The items of a STATUS list; 0 when any is unknown or none is given. */
static unsigned
imap_list_status_items(struct imap_session *s, const struct imap_arg *a)
{
	unsigned items = 0;

	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return 0;
	for (size_t i = 0; i < a->count; i++) {
		unsigned bit = imap_list_status_item(s, &a->list[i]);

		if (bit == 0)
			return 0;
		items |= bit;
	}
	/* RFC 7162 section 3.1: a CONDSTORE enabling command. */
	if (items & STATUS_HIGHESTMODSEQ)
		imap_condstore_enable(s);
	return items;
}

/* Adds reference + pattern, decoded; -1 when either is no valid name. */
static int
imap_list_add_pattern(struct imap_session *s, struct imap_list_req *req,
    const char *ref, const struct imap_arg *a)
{
	const char *pat = imap_arg_astring(a);
	char *joined, *name;
	int r;

	if (pat == NULL || a->type == IMAP_ARG_NIL)
		return -1;
	joined = xasprintf("%s%s", ref, pat);
	r = imap_select_name_in(s, joined, &name);
	free(joined);
	if (r < 0)
		return -1;
	req->patterns = xreallocarray(req->patterns, req->npatterns + 1,
	    sizeof(*req->patterns));
	req->patterns[req->npatterns++] = name;
	return 0;
}

static int
imap_list_patterns(struct imap_session *s, struct imap_list_req *req,
    const struct imap_arg *ref, const struct imap_arg *pat)
{
	const char *r = imap_arg_astring(ref);

	if (r == NULL || ref->type == IMAP_ARG_NIL)
		return -1;
	if (pat->type != IMAP_ARG_LIST)
		return imap_list_add_pattern(s, req, r, pat);
	if (pat->count == 0)
		return -1;
	for (size_t i = 0; i < pat->count; i++)
		if (imap_list_add_pattern(s, req, r, &pat->list[i]) < 0)
			return -1;
	return 0;
}

static int
imap_list_sel_options(struct imap_list_req *req, const struct imap_arg *a)
{
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *o = &a->list[i];

		if (imap_arg_atom_is(o, "SUBSCRIBED"))
			req->sel |= LIST_SEL_SUBSCRIBED;
		else if (imap_arg_atom_is(o, "SPECIAL-USE"))
			req->sel |= LIST_SEL_SPECIAL;
		else if (imap_arg_atom_is(o, "RECURSIVEMATCH"))
			req->sel |= LIST_SEL_RECURSIVE;
		else if (!imap_arg_atom_is(o, "REMOTE"))
			return -1;
	}
	/* RFC 5258 section 3.1: RECURSIVEMATCH needs another option. */
	if (req->sel == LIST_SEL_RECURSIVE)
		return -1;
	return 0;
}

static int
imap_list_ret_options(struct imap_session *s, struct imap_list_req *req,
    const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *o = &a->list[i];

		if (imap_arg_atom_is(o, "SUBSCRIBED"))
			req->ret |= LIST_RET_SUBSCRIBED;
		else if (imap_arg_atom_is(o, "CHILDREN"))
			req->ret |= LIST_RET_CHILDREN;
		else if (imap_arg_atom_is(o, "SPECIAL-USE"))
			req->ret |= LIST_RET_SPECIAL;
		else if (imap_arg_atom_is(o, "STATUS") && i + 1 < a->count) {
			req->items = imap_list_status_items(s, &a->list[++i]);
			if (req->items == 0)
				return -1;
			req->ret |= LIST_RET_STATUS;
		} else
			return -1;
	}
	return 0;
}

/* LIST [(sel)] ref pattern(s) [RETURN (ret)]; -1 for a syntax error. */
static int
imap_list_parse(struct imap_session *s, struct imap_list_req *req,
    struct imap_cmd *cmd)
{
	size_t i = 0;

	if (cmd->nargs > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		if (imap_list_sel_options(req, &cmd->args[0]) < 0)
			return -1;
		i = 1;
	}
	if (cmd->nargs < i + 2 ||
	    imap_list_patterns(s, req, &cmd->args[i], &cmd->args[i + 1]) < 0)
		return -1;
	i += 2;
	if (i == cmd->nargs)
		return 0;
	if (cmd->nargs != i + 2 || !imap_arg_atom_is(&cmd->args[i], "RETURN"))
		return -1;
	return imap_list_ret_options(s, req, &cmd->args[i + 1]);
}

static struct imap_list_req *
imap_list_req_new(struct imap_cmd *cmd, enum imap_list_kind kind)
{
	struct imap_list_req *req = xcalloc(1, sizeof(*req));

	req->tag = xstrdup(cmd->tag);
	req->kind = kind;
	return req;
}

/* RFC 3501 section 6.3.8: an empty pattern asks for the delimiter. */
static int
imap_list_delimiter_only(struct imap_cmd *cmd)
{
	const struct imap_arg *p = &cmd->args[1];

	return cmd->nargs == 2 && p->type != IMAP_ARG_LIST &&
	    p->type != IMAP_ARG_NIL && p->len == 0;
}

void
imap_list_list(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_list_req *req;

	if (imap_list_delimiter_only(cmd)) {
		imap_session_printf(s, "* LIST (\\Noselect) \"/\" \"\"");
		imap_session_printf(s, "%s OK LIST completed", cmd->tag);
		return;
	}
	req = imap_list_req_new(cmd, LIST_LIST);
	if (imap_list_parse(s, req, cmd) < 0) {
		imap_list_req_free(req);
		imap_session_bad(s, cmd->tag, "Invalid LIST arguments");
		return;
	}
	imap_list_start(s, req);
}

void
imap_list_lsub(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_list_req *req = imap_list_req_new(cmd, LIST_LSUB);

	if (cmd->nargs != 2 ||
	    imap_list_patterns(s, req, &cmd->args[0], &cmd->args[1]) < 0 ||
	    cmd->args[1].type == IMAP_ARG_LIST) {
		imap_list_req_free(req);
		imap_session_bad(s, cmd->tag, "Invalid LSUB arguments");
		return;
	}
	imap_list_start(s, req);
}

void
imap_list_status(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_list_req *req = imap_list_req_new(cmd, LIST_STATUS);
	const char *name =
	    cmd->nargs == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
	char *decoded = NULL;

	req->items =
	    cmd->nargs == 2 ? imap_list_status_items(s, &cmd->args[1]) : 0;
	if (name == NULL || cmd->args[0].type == IMAP_ARG_NIL ||
	    req->items == 0) {
		imap_list_req_free(req);
		imap_session_bad(s, cmd->tag, "Invalid STATUS arguments");
		return;
	}
	if (imap_select_name_in(s, name, &decoded) < 0) {
		imap_list_req_free(req);
		imap_session_printf(s, "%s NO [NONEXISTENT] No such mailbox",
		    cmd->tag);
		return;
	}
	req->patterns = xcalloc(1, sizeof(*req->patterns));
	req->patterns[0] = decoded;
	req->npatterns = 1;
	imap_list_start(s, req);
}
