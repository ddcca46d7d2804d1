/*
 * STORE and UID STORE (RFC 3501 section 6.4.6, RFC 9051 section 6.4.6),
 * EXPUNGE (RFC 3501 section 6.4.3), UID EXPUNGE (RFC 4315 section 2.1)
 * and the silent expunge of CLOSE (RFC 3501 section 6.4.2). The store
 * commits; the answers are read from the shared view and numbered as the
 * client knows the list (RFC 3501 section 7.4.1, RFC 2180 section 4).
 * STORE takes UNCHANGEDSINCE and reports MODIFIED (RFC 7162 section
 * 3.1.3).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "store/store_flags.h"
#include "store/store_view.h"

/* Keywords one STORE may name, and the longest keyword. */
#define IMAP_STORE_MAX_KEYWORDS 64
#define IMAP_STORE_KEYWORD_MAX 128
/* Expunges per store call: well inside the view's expunge window. */
#define IMAP_STORE_EXPUNGE_CHUNK 64

/* A STORE or an expunge waiting for the store; input is paused. */
struct imap_store_req {
	struct imap_async async; /* first */
	char *tag;
	const char *cmdname; /* for the tagged OK */
	int uid;             /* UID STORE: FETCH carries UID */
	int silent;          /* .SILENT */
	int close;           /* CLOSE: no EXPUNGE responses, then leave */
	uint32_t *uids;      /* the messages, ascending */
	size_t n, next;
	uint64_t base; /* the view's MODSEQ when the STORE started */
};

/* What a STORE asks for. */
struct imap_store_args {
	enum store_flags_mode mode;
	int silent;
	unsigned flags;
	const char *kw[IMAP_STORE_MAX_KEYWORDS];
	size_t nkw;
	int cond; /* UNCHANGEDSINCE given */
	uint64_t unchangedsince;
};

static void
imap_store_req_free(struct imap_store_req *req)
{
	if (req->async.s != NULL)
		req->async.s->async = NULL;
	free(req->uids);
	free(req->tag);
	free(req);
}

static struct imap_store_req *
imap_store_req_new(struct imap_session *s, const char *tag, const char *cmdname)
{
	struct imap_store_req *req = xcalloc(1, sizeof(*req));

	req->tag = xstrdup(tag);
	req->cmdname = cmdname;
	req->async.s = s;
	return req;
}

/* Ends the command: the tagged reply, input resumed, the request freed. */
static void
imap_store_finish(struct imap_store_req *req, const char *fail)
{
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		if (fail != NULL) {
			imap_session_printf(s, "%s NO %s", req->tag, fail);
		} else {
			if (req->close)
				imap_select_clear(s);
			imap_session_printf(s, "%s OK %s completed", req->tag,
			    req->cmdname);
		}
		imap_session_idle(s);
	}
	imap_store_req_free(req);
}

/* ------------------------------------------------------------------ */
/* Parsing STORE. */

/* FLAGS, +FLAGS or -FLAGS, each with an optional .SILENT. */
static int
imap_store_item(const struct imap_arg *a, struct imap_store_args *sa)
{
	const char *p = a->str;

	if (a->type != IMAP_ARG_ATOM)
		return -1;
	sa->mode = STORE_FLAGS_SET;
	if (*p == '+' || *p == '-')
		sa->mode = *p++ == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
	if (strncasecmp(p, "FLAGS", 5) != 0)
		return -1;
	p += 5;
	sa->silent = strcasecmp(p, ".SILENT") == 0;
	return sa->silent || *p == '\0' ? 0 : -1;
}

/* RFC 3501 section 9: a keyword is an atom (no atom-specials). */
static int
imap_store_keyword_ok(const char *p, size_t len)
{
	if (len == 0 || len > IMAP_STORE_KEYWORD_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f ||
		    strchr("(){%*\"\\]", p[i]) != NULL)
			return 0;
	return 1;
}

/* Adds one flag; returns NULL, or the text for BAD. */
static const char *
imap_store_flag(const struct imap_arg *a, struct imap_store_args *sa)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
	    {"\\Seen", STORE_FLAG_SEEN},
	    {"\\Answered", STORE_FLAG_ANSWERED},
	    {"\\Flagged", STORE_FLAG_FLAGGED},
	    {"\\Deleted", STORE_FLAG_DELETED},
	    {"\\Draft", STORE_FLAG_DRAFT},
	};

	if (a->type != IMAP_ARG_ATOM)
		return "Flags are atoms";
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
			if (strcasecmp(a->str, sys[i].name) == 0) {
				sa->flags |= sys[i].bit;
				return NULL;
			}
		}
		if (strcasecmp(a->str, "\\Recent") == 0)
			return "\\Recent cannot be stored";
		return "Unknown system flag";
	}
	if (!imap_store_keyword_ok(a->str, a->len))
		return "Invalid keyword";
	if (sa->nkw == IMAP_STORE_MAX_KEYWORDS)
		return "Too many keywords";
	sa->kw[sa->nkw++] = a->str;
	return NULL;
}

/*
 * Parses "item flags" at args: the flags are one parenthesised list or
 * one or more flags. Returns NULL, or the text for BAD.
 */
static const char *
imap_store_parse(const struct imap_arg *args, size_t nargs,
    struct imap_store_args *sa)
{
	const struct imap_arg *flags;
	size_t n;
	const char *err = NULL;

	if (nargs >= 1 && args[0].type == IMAP_ARG_LIST) {
		const char *merr;

		if (imap_condstore_store_modifiers(&args[0],
		        &sa->unchangedsince, &merr) < 0)
			return merr;
		sa->cond = 1;
		args++;
		nargs--;
	}
	flags = args + 1;
	n = nargs - 1;
	if (nargs < 2 || imap_store_item(&args[0], sa) < 0)
		return "Expected FLAGS, +FLAGS or -FLAGS and flags";
	if (n == 1 && flags[0].type == IMAP_ARG_LIST) {
		n = flags[0].count;
		flags = flags[0].list;
	}
	for (size_t i = 0; i < n && err == NULL; i++)
		err = imap_store_flag(&flags[i], sa);
	return err;
}

/* Resolves args[0], a sequence set; returns 0, or -1 after BAD. */
static int
imap_store_set(struct imap_session *s, const char *tag,
    const struct imap_arg *arg, int uid, uint32_t **uids, size_t *n)
{
	struct imap_seqset set = {0};
	int r = -1;

	if (arg->type == IMAP_ARG_ATOM &&
	    imap_seqset_parse(arg->str, arg->len, &set) == 0)
		r = imap_search_resolve(s, &set, uid, uids, n);
	imap_seqset_clear(&set);
	if (r < 0)
		imap_session_bad(s, tag, "Invalid message number");
	return r;
}

/* ------------------------------------------------------------------ */
/* STORE. */

/*
 * RFC 7162 section 3.1.3: .SILENT still tells a CONDSTORE client the new
 * MODSEQ of each message it changed.
 */
static void
imap_store_put_modseq(struct imap_session *s, struct imap_store_req *req,
    const struct store_flags_update *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (store_view_find(s->sel->view, list[i].uid) >= 0)
			imap_session_printf(s,
			    "* %u FETCH (UID %u MODSEQ (%llu))",
			    imap_select_seq(s, list[i].uid), list[i].uid,
			    (unsigned long long)list[i].modseq);
}

/* The tagged OK, with [MODIFIED set] for the messages refused. */
static void
imap_store_modified(struct imap_store_req *req, const uint32_t *modified,
    size_t nmodified)
{
	struct imap_session *s = req->async.s;
	uint32_t *nums = xcalloc(nmodified + 1, sizeof(*nums));
	struct imap_seqset set = {0};
	char *text;

	for (size_t i = 0; i < nmodified; i++)
		nums[i] =
		    req->uid ? modified[i] : imap_select_seq(s, modified[i]);
	imap_seqset_from_array(nums, nmodified, &set);
	text = imap_seqset_format(&set);
	imap_session_printf(s, "%s OK [MODIFIED %s] Conditional %s failed",
	    req->tag, text, req->cmdname);
	free(text);
	imap_seqset_clear(&set);
	free(nums);
	imap_session_idle(s);
	imap_store_req_free(req);
}

/* Whether uid is among the n ascending UIDs of list. */
static int
imap_store_listed(const uint32_t *list, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list[mid] == uid)
			return 1;
		if (list[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static void
imap_store_stored(const struct store_flags_update *list, size_t n,
    const uint32_t *modified, size_t nmodified, enum store_view_status status,
    void *arg)
{
	struct imap_store_req *req = arg;
	struct imap_session *s = req->async.s;
	uint64_t now;

	if (s == NULL || s->conn == NULL || s->sel == NULL) {
		imap_store_finish(req, NULL);
		return;
	}
	if (status != STORE_VIEW_OK) {
		imap_store_finish(req, "[UNAVAILABLE] Cannot store the flags");
		return;
	}
	/* RFC 3501 section 6.4.6: the new flags of every message stored. */
	for (size_t i = 0; i < req->n && !req->silent; i++)
		if (!imap_store_listed(modified, nmodified, req->uids[i]))
			imap_select_fetch_flags(s, req->uids[i], req->uid);
	if (req->silent && (s->enabled & IMAP_ENABLED_CONDSTORE))
		imap_store_put_modseq(s, req, list, n);
	/*
	 * The client knows what it set: when every MODSEQ since the start
	 * is ours, it is current and needs no FETCH of them again.
	 */
	now = store_view_highestmodseq(s->sel->view);
	if (s->sel->modseq == req->base && now == req->base + n)
		s->sel->modseq = now;
	if (nmodified > 0)
		imap_store_modified(req, modified, nmodified);
	else
		imap_store_finish(req, NULL);
}

static void
imap_store_start(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int uid)
{
	struct imap_store_args sa = {0};
	const char *err = nargs < 1 ?
	    "Expected a sequence set" :
	    imap_store_parse(args + 1, nargs - 1, &sa);
	struct imap_store_req *req;

	if (err != NULL) {
		imap_session_bad(s, cmd->tag, err);
		return;
	}
	if (s->sel->readonly) {
		imap_session_printf(s, "%s NO [READ-ONLY] Mailbox is read-only",
		    cmd->tag);
		return;
	}
	/* RFC 7162 section 3.1: UNCHANGEDSINCE turns CONDSTORE on. */
	if (sa.cond)
		imap_condstore_enable(s);
	req = imap_store_req_new(s, cmd->tag, uid ? "UID STORE" : "STORE");
	req->uid = uid;
	req->silent = sa.silent;
	if (imap_store_set(s, cmd->tag, &args[0], uid, &req->uids, &req->n) <
	    0) {
		req->async.s = NULL;
		imap_store_req_free(req);
		return;
	}
	req->base = store_view_highestmodseq(s->sel->view);
	s->async = &req->async;
	imap_session_busy(s);
	store_flags_store_cond(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->uids, req->n,
	    sa.cond ? sa.unchangedsince : UINT64_MAX, sa.mode, sa.flags, sa.kw,
	    sa.nkw, imap_store_stored, req);
}

void
imap_store_store(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_store_start(s, cmd, cmd->args, cmd->nargs, 0);
}

void
imap_store_uid_store(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs)
{
	imap_store_start(s, cmd, args, nargs, 1);
}

/* ------------------------------------------------------------------ */
/* EXPUNGE, UID EXPUNGE, CLOSE. */

static void imap_store_expunged(const uint32_t *uids, size_t n,
    enum store_view_status status, void *arg);

/* Expunges the next chunk of the request's messages. */
static void
imap_store_expunge_next(struct imap_store_req *req)
{
	struct imap_session *s = req->async.s;
	size_t k = req->n - req->next;

	if (k > IMAP_STORE_EXPUNGE_CHUNK)
		k = IMAP_STORE_EXPUNGE_CHUNK;
	store_flags_expunge(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->uids + req->next, k,
	    imap_store_expunged, req);
	req->next += k;
}

static void
imap_store_expunged(const uint32_t *uids, size_t n,
    enum store_view_status status, void *arg)
{
	struct imap_store_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || s->sel == NULL) {
		imap_store_finish(req, NULL);
		return;
	}
	if (status != STORE_VIEW_OK) {
		imap_store_finish(req, "[UNAVAILABLE] Cannot expunge");
		return;
	}
	/* "* n EXPUNGE" for these and any other, as the client counts. */
	if (!req->close)
		imap_select_updates(s, 1);
	if (req->next < req->n)
		imap_store_expunge_next(req);
	else
		imap_store_finish(req, NULL);
}

/*
 * Keeps the \Deleted messages among uids[0..n) (all of the view's when
 * uids is NULL) in req->uids.
 */
static void
imap_store_deleted(struct imap_session *s, struct imap_store_req *req,
    const uint32_t *uids, size_t n)
{
	const struct store_view *v = s->sel->view;
	size_t count = uids != NULL ? n : store_view_count(v);

	req->uids = xcalloc(count + 1, sizeof(*req->uids));
	for (size_t i = 0; i < count; i++) {
		int64_t x =
		    uids != NULL ? store_view_find(v, uids[i]) : (int64_t)i;

		if (x >= 0 &&
		    (store_view_msg(v, (uint32_t)x)->flags &
		        STORE_FLAG_DELETED) != 0)
			req->uids[req->n++] =
			    store_view_msg(v, (uint32_t)x)->uid;
	}
}

/* Runs an expunge of req's messages, or answers at once for none. */
static void
imap_store_expunge_run(struct imap_session *s, struct imap_store_req *req)
{
	if (req->n == 0) {
		if (!req->close)
			imap_select_updates(s, 1);
		imap_store_finish(req, NULL);
		return;
	}
	s->async = &req->async;
	imap_session_busy(s);
	imap_store_expunge_next(req);
}

static int
imap_store_writable(struct imap_session *s, const char *tag)
{
	if (!s->sel->readonly)
		return 1;
	imap_session_printf(s, "%s NO [READ-ONLY] Mailbox is read-only", tag);
	return 0;
}

void
imap_store_expunge(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_store_req *req;

	if (cmd->nargs != 0) {
		imap_session_bad(s, cmd->tag, "EXPUNGE takes no arguments");
		return;
	}
	if (!imap_store_writable(s, cmd->tag))
		return;
	req = imap_store_req_new(s, cmd->tag, "EXPUNGE");
	imap_store_deleted(s, req, NULL, 0);
	imap_store_expunge_run(s, req);
}

/* RFC 4315 section 2.1: only the named UIDs that are \Deleted go. */
void
imap_store_uid_expunge(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs)
{
	struct imap_store_req *req;
	uint32_t *uids;
	size_t n;

	if (nargs != 1) {
		imap_session_bad(s, cmd->tag, "Expected one UID set");
		return;
	}
	if (!imap_store_writable(s, cmd->tag) ||
	    imap_store_set(s, cmd->tag, &args[0], 1, &uids, &n) < 0)
		return;
	req = imap_store_req_new(s, cmd->tag, "UID EXPUNGE");
	imap_store_deleted(s, req, uids, n);
	free(uids);
	imap_store_expunge_run(s, req);
}

void
imap_store_close(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_store_req *req = imap_store_req_new(s, cmd->tag, "CLOSE");

	req->close = 1;
	imap_store_deleted(s, req, NULL, 0);
	imap_store_expunge_run(s, req);
}
