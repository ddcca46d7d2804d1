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

/* Whether an existing mailbox lies below item i in the hierarchy. */
static int
imap_list_has_children(const struct store_mailbox_list *l, size_t i)
{
	size_t len = strlen(l->items[i].name);

	for (size_t j = 0; j < l->n; j++)
		if (l->items[j].exists &&
		    strncmp(l->items[j].name, l->items[i].name, len) == 0 &&
		    l->items[j].name[len] == '/')
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
	/* No STORE can set \Deleted yet, so no message carries it. */
	ITEM(STATUS_DELETED, "DELETED %u", 0u)
	ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	    (unsigned long long)mi->highestmodseq)
#undef ITEM
	imap_session_printf(s, ")");
}

/* The attributes of one LIST or LSUB line, without the parentheses. */
static void
imap_list_put_attrs(struct imap_session *s, const struct imap_list_req *req,
    const struct store_mailbox_list *l, size_t i)
{
	const struct store_mailbox_info *mi = &l->items[i];
	struct evbuffer *out = conn_output(s->conn);
	const char *sep = "";

	if (!mi->exists) {
		evbuffer_add_printf(out, "%s",
		    req->kind == LIST_LSUB ? "\\Noselect" : "\\NonExistent");
		sep = " ";
	} else if (req->kind == LIST_LIST) {
		evbuffer_add_printf(out, "%s",
		    imap_list_has_children(l, i) ? "\\HasChildren" :
		                                   "\\HasNoChildren");
		sep = " ";
	}
	if (mi->exists && mi->special_use != NULL && req->kind == LIST_LIST) {
		evbuffer_add_printf(out, "%s%s", sep, mi->special_use);
		sep = " ";
	}
	if (mi->subscribed && req->kind == LIST_LIST &&
	    (req->ret & LIST_RET_SUBSCRIBED || req->sel & LIST_SEL_SUBSCRIBED))
		evbuffer_add_printf(out, "%s\\Subscribed", sep);
}

/* Whether item i is listed at all under the selection options. */
static int
imap_list_selected(const struct imap_list_req *req,
    const struct store_mailbox_info *mi)
{
	if ((req->sel & LIST_SEL_SUBSCRIBED) || req->kind == LIST_LSUB) {
		if (!mi->subscribed)
			return 0;
	} else if (!mi->exists)
		return 0;
	if ((req->sel & LIST_SEL_SPECIAL) && mi->special_use == NULL)
		return 0;
	return imap_list_matches(req, mi->name);
}

static void
imap_list_write(struct imap_session *s, const struct imap_list_req *req,
    const struct store_mailbox_list *l)
{
	struct evbuffer *out = conn_output(s->conn);

	for (size_t i = 0; i < l->n; i++) {
		const struct store_mailbox_info *mi = &l->items[i];

		if (!imap_list_selected(req, mi))
			continue;
		evbuffer_add_printf(out, "* %s (",
		    req->kind == LIST_LSUB ? "LSUB" : "LIST");
		imap_list_put_attrs(s, req, l, i);
		evbuffer_add_printf(out, ") \"/\" ");
		imap_select_put_name(s, mi->name);
		imap_session_printf(s, "%s", "");
		if ((req->ret & LIST_RET_STATUS) && mi->exists)
			imap_list_put_status(s, req->items, mi);
	}
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
	store_mailbox_list(s->srv->env.store, s->user, imap_list_listed, req);
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
	/* TODO(list-recursive): CHILDINFO for RECURSIVEMATCH parents. */
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
