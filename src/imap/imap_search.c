/*
 * SEARCH and UID SEARCH (RFC 3501 / RFC 9051 section 6.4.4) with the
 * ESEARCH answer of RFC 4731 and RFC 9051 section 7.3.4. Keys the shared
 * view answers (flags, keywords, sets, MODSEQ of RFC 7162 section 3.1.5)
 * are tested on the loop thread; the others go to store_search() on the
 * I/O pool for just the messages they can still decide.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "imap/imap_searchkey.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "net/conn.h"
#include "store/store_flags.h"
#include "store/store_search.h"
#include "store/store_view.h"

/* Sequence and UID sets one program may hold. */
#define IMAP_SEARCH_MAX_SETS 64

/* A three-valued answer: the loop thread may not know yet. */
#define IMAP_SEARCH_NO 0
#define IMAP_SEARCH_YES 1
#define IMAP_SEARCH_MAYBE 2

/* A SEQSET or UID key resolved to the UIDs it names, ascending. */
struct imap_search_set {
	const struct imap_skey *key;
	uint32_t *uids;
	size_t n;
};

/* A program in flight; input is paused while the store works. */
struct imap_search_req {
	struct imap_async async; /* first */
	imap_search_done_cb cb;
	void *arg;
	struct imap_search prog;
	struct imap_search_set sets[IMAP_SEARCH_MAX_SETS];
	size_t nsets;
	const struct imap_skey *leaf[STORE_SEARCH_MAX_KEYS];
	struct store_search_key keys[STORE_SEARCH_MAX_KEYS];
	size_t nkeys;
	uint32_t *cand; /* UIDs the store must decide, ascending */
	size_t ncand, next;
	uint32_t *hits; /* matching UIDs, any order */
	size_t nhits;
};

static void
imap_search_req_free(struct imap_search_req *req)
{
	if (req->async.s != NULL && req->async.s->async == &req->async)
		req->async.s->async = NULL;
	for (size_t i = 0; i < req->nsets; i++)
		free(req->sets[i].uids);
	imap_searchkey_clear(&req->prog);
	free(req->cand);
	free(req->hits);
	free(req);
}

/* What a SEARCH command answers with once its program has run. */
struct imap_search_cmd {
	char *tag;
	int uid; /* UID SEARCH */
	int esearch;
	unsigned ret;
	int modseq; /* the program has a MODSEQ key: RFC 7162 section 3.1.5 */
};

/* ------------------------------------------------------------------ */
/* Preparing the program. */

/* The unix time of 00:00 UTC of a date. */
static int64_t
imap_search_day(const struct imap_search_date *d)
{
	struct tm tm = {0};

	tm.tm_year = d->year - 1900;
	tm.tm_mon = d->month - 1;
	tm.tm_mday = d->day;
	return (int64_t)timegm(&tm);
}

static enum store_search_cmp
imap_search_cmp(enum imap_skey_cmp cmp)
{
	switch (cmp) {
	case IMAP_SKEY_LT:
		return STORE_SEARCH_LT;
	case IMAP_SKEY_EQ:
		return STORE_SEARCH_EQ;
	case IMAP_SKEY_GE:
		return STORE_SEARCH_GE;
	case IMAP_SKEY_GT:
		break;
	}
	return STORE_SEARCH_GT;
}

/* Adds a key for the store; -1 when there are too many. */
static int
imap_search_add_key(struct imap_search_req *req, const struct imap_skey *k)
{
	struct store_search_key *sk = &req->keys[req->nkeys];

	if (req->nkeys == STORE_SEARCH_MAX_KEYS)
		return -1;
	memset(sk, 0, sizeof(*sk));
	sk->cmp = imap_search_cmp(k->cmp);
	sk->str = k->str != NULL ? k->str : "";
	sk->len = k->str != NULL ? k->len : 0;
	if (k->type == IMAP_SKEY_SIZE) {
		sk->kind = STORE_SEARCH_SIZE;
		sk->num = (int64_t)k->num;
	} else if (k->type == IMAP_SKEY_DATE || k->type == IMAP_SKEY_SENTDATE) {
		sk->kind = k->type == IMAP_SKEY_DATE ? STORE_SEARCH_DATE :
		                                       STORE_SEARCH_SENTDATE;
		sk->num = imap_search_day(&k->date);
	} else if (k->type == IMAP_SKEY_HEADER) {
		sk->kind = STORE_SEARCH_HEADER;
		sk->field = k->field;
	} else {
		sk->kind = k->type == IMAP_SKEY_BODY ? STORE_SEARCH_BODY :
		                                       STORE_SEARCH_TEXT;
	}
	req->leaf[req->nkeys++] = k;
	return 0;
}

/*
 * Walks the tree: resolves sets and collects the store's keys. Returns
 * NULL, or the text for BAD.
 */
static const char *
imap_search_prepare(struct imap_session *s, struct imap_search_req *req,
    const struct imap_skey *k)
{
	const char *err = NULL;
	struct imap_search_set *set;

	switch (k->type) {
	case IMAP_SKEY_AND:
	case IMAP_SKEY_OR:
	case IMAP_SKEY_NOT:
		for (size_t i = 0; i < k->nchild && err == NULL; i++)
			err = imap_search_prepare(s, req, &k->child[i]);
		return err;
	case IMAP_SKEY_SEQSET:
	case IMAP_SKEY_UID:
		if (req->nsets == IMAP_SEARCH_MAX_SETS)
			return "Too many sets in one SEARCH";
		set = &req->sets[req->nsets];
		if (imap_search_resolve(s, &k->set, k->type == IMAP_SKEY_UID,
		        &set->uids, &set->n) < 0)
			return "Invalid message number";
		set->key = k;
		req->nsets++;
		return NULL;
	case IMAP_SKEY_SIZE:
	case IMAP_SKEY_DATE:
	case IMAP_SKEY_SENTDATE:
	case IMAP_SKEY_HEADER:
	case IMAP_SKEY_BODY:
	case IMAP_SKEY_TEXT:
		if (imap_search_add_key(req, k) < 0)
			return "Too many keys in one SEARCH";
		return NULL;
	case IMAP_SKEY_MODSEQ:
		/* RFC 7162 section 3.1: a CONDSTORE enabling command. */
		imap_condstore_enable(s);
		return NULL;
	default:
		return NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Evaluating. */

/* \Recent for this session (the rule of imap_select.c). */
static int
imap_search_is_recent(const struct imap_selected *sel, uint32_t uid)
{
	return imap_select_is_recent(sel, uid);
}

/* FLAG: a system flag, \Recent, or a keyword (case-insensitive). */
static int
imap_search_flag(const struct imap_selected *sel, uint32_t i, const char *f)
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
	const struct store_view_msg *m = store_view_msg(sel->view, i);
	const uint32_t *kw;
	size_t nkw;

	for (size_t k = 0; k < sizeof(sys) / sizeof(sys[0]); k++)
		if (strcasecmp(f, sys[k].name) == 0)
			return (m->flags & sys[k].bit) != 0;
	if (strcasecmp(f, "\\Recent") == 0)
		return imap_search_is_recent(sel, m->uid);
	nkw = store_view_msg_keywords(sel->view, i, &kw);
	for (size_t k = 0; k < nkw; k++)
		if (strcasecmp(f, store_view_keyword(sel->view, kw[k])) == 0)
			return 1;
	return 0;
}

static int
imap_search_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
imap_search_in_set(const struct imap_search_req *req, const struct imap_skey *k,
    uint32_t uid)
{
	for (size_t i = 0; i < req->nsets; i++)
		if (req->sets[i].key == k)
			return bsearch(&uid, req->sets[i].uids, req->sets[i].n,
			           sizeof(uid), imap_search_u32_cmp) != NULL;
	return 0;
}

/* A store key: its bit when the store answered (match != NULL). */
static int
imap_search_leaf(const struct imap_search_req *req, const struct imap_skey *k,
    const uint64_t *match)
{
	if (match == NULL)
		return IMAP_SEARCH_MAYBE;
	for (size_t i = 0; i < req->nkeys; i++)
		if (req->leaf[i] == k)
			return (*match >> i) & 1;
	return IMAP_SEARCH_NO;
}

/* Three-valued logic: NO, YES, or MAYBE while the store has not spoken. */
static int
imap_search_eval(const struct imap_search_req *req,
    const struct imap_selected *sel, const struct imap_skey *k, uint32_t i,
    const uint64_t *match)
{
	int r = k->type == IMAP_SKEY_AND ? IMAP_SEARCH_YES : IMAP_SEARCH_NO;
	uint32_t uid = store_view_msg(sel->view, i)->uid;

	switch (k->type) {
	case IMAP_SKEY_AND:
	case IMAP_SKEY_OR:
		for (size_t c = 0; c < k->nchild; c++) {
			int x =
			    imap_search_eval(req, sel, &k->child[c], i, match);

			if (x ==
			    (k->type == IMAP_SKEY_AND ? IMAP_SEARCH_NO :
			                                IMAP_SEARCH_YES))
				return x;
			if (x == IMAP_SEARCH_MAYBE)
				r = x;
		}
		return r;
	case IMAP_SKEY_NOT:
		r = imap_search_eval(req, sel, &k->child[0], i, match);
		return r == IMAP_SEARCH_MAYBE ? r : !r;
	case IMAP_SKEY_ALL:
		return IMAP_SEARCH_YES;
	case IMAP_SKEY_SEQSET:
	case IMAP_SKEY_UID:
		return imap_search_in_set(req, k, uid);
	case IMAP_SKEY_FLAG:
		return imap_search_flag(sel, i, k->str);
	case IMAP_SKEY_MODSEQ:
		return store_view_msg(sel->view, i)->modseq >= k->num;
	default:
		return imap_search_leaf(req, k, match);
	}
}

static void
imap_search_hit(struct imap_search_req *req, uint32_t uid)
{
	/* Room for every message the client knows was made at the start. */
	req->hits[req->nhits++] = uid;
}

/* Tests the messages the client knows with what the view holds. */
static void
imap_search_view(struct imap_session *s, struct imap_search_req *req)
{
	const struct imap_selected *sel = s->sel;
	uint32_t count = store_view_count(sel->view);

	req->cand = xcalloc((size_t)count + 1, sizeof(*req->cand));
	req->hits = xcalloc((size_t)count + 1, sizeof(*req->hits));
	for (uint32_t i = 0; i < count; i++) {
		uint32_t uid = store_view_msg(sel->view, i)->uid;
		int r;

		if (uid >= sel->uidnext)
			break;
		r = imap_search_eval(req, sel, req->prog.root, i, NULL);
		if (r == IMAP_SEARCH_YES)
			imap_search_hit(req, uid);
		else if (r == IMAP_SEARCH_MAYBE)
			req->cand[req->ncand++] = uid;
	}
}

/* ------------------------------------------------------------------ */
/* Answering. */

/* The numbers the client gets, ascending: UIDs or sequence numbers. */
static uint32_t *
imap_search_numbers(struct imap_session *s, const struct imap_search_cmd *c,
    const uint32_t *uids, size_t n)
{
	uint32_t *nums = xcalloc(n + 1, sizeof(*nums));

	for (size_t i = 0; i < n; i++)
		nums[i] = c->uid ? uids[i] : imap_select_seq(s, uids[i]);
	return nums;
}

/* Whether a MODSEQ key is in the program (its depth is bounded). */
static int
imap_search_has_modseq(const struct imap_skey *k)
{
	if (k->type == IMAP_SKEY_MODSEQ)
		return 1;
	for (size_t i = 0; i < k->nchild; i++)
		if (imap_search_has_modseq(&k->child[i]))
			return 1;
	return 0;
}

/* The highest MODSEQ of the hits (RFC 7162 section 3.1.5), or 0. */
static uint64_t
imap_search_top_modseq(struct imap_session *s, const struct imap_search_cmd *c,
    const uint32_t *uids, size_t n)
{
	const struct store_view *v = s->sel->view;
	uint64_t top = 0;

	for (size_t i = 0; c->modseq && i < n; i++) {
		int64_t k = store_view_find(v, uids[i]);

		if (k >= 0 && store_view_msg(v, (uint32_t)k)->modseq > top)
			top = store_view_msg(v, (uint32_t)k)->modseq;
	}
	return top;
}

/* RFC 4731 section 3.1: only the items asked for; none but COUNT if empty. */
static void
imap_search_esearch(struct imap_session *s, const struct imap_search_cmd *c,
    const uint32_t *nums, size_t n, uint64_t top)
{
	struct evbuffer *out = conn_output(s->conn);
	unsigned ret = c->ret;
	struct imap_seqset set;
	char *all;

	/* RFC 5182 section 2.4: SAVE alone answers nothing untagged. */
	if ((ret & ~(unsigned)IMAP_SEARCH_RET_SAVE) == 0)
		return;
	evbuffer_add_printf(out, "* ESEARCH (TAG \"%s\")%s", c->tag,
	    c->uid ? " UID" : "");
	if ((ret & IMAP_SEARCH_RET_MIN) && n > 0)
		evbuffer_add_printf(out, " MIN %u", nums[0]);
	if ((ret & IMAP_SEARCH_RET_MAX) && n > 0)
		evbuffer_add_printf(out, " MAX %u", nums[n - 1]);
	if (ret & IMAP_SEARCH_RET_COUNT)
		evbuffer_add_printf(out, " COUNT %zu", n);
	if ((ret & IMAP_SEARCH_RET_ALL) && n > 0) {
		imap_seqset_from_array(nums, n, &set);
		all = imap_seqset_format(&set);
		evbuffer_add_printf(out, " ALL %s", all);
		free(all);
		imap_seqset_clear(&set);
	}
	if (top != 0)
		evbuffer_add_printf(out, " MODSEQ %llu",
		    (unsigned long long)top);
	imap_session_printf(s, "%s", "");
}

static void
imap_search_answer(struct imap_session *s, const struct imap_search_cmd *c,
    const uint32_t *uids, size_t n)
{
	uint32_t *nums = imap_search_numbers(s, c, uids, n);
	struct evbuffer *out = conn_output(s->conn);
	uint64_t top = imap_search_top_modseq(s, c, uids, n);

	if (c->esearch) {
		imap_search_esearch(s, c, nums, n, top);
	} else {
		evbuffer_add_printf(out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			evbuffer_add_printf(out, " %u", nums[i]);
		if (top != 0)
			evbuffer_add_printf(out, " (MODSEQ %llu)",
			    (unsigned long long)top);
		imap_session_printf(s, "%s", "");
	}
	free(nums);
	imap_session_printf(s, "%s OK %sSEARCH completed", c->tag,
	    c->uid ? "UID " : "");
}

/*
 * Ends the program: the callback gets the hits (or the failure), input
 * resumes unless the callback started another operation, the request
 * goes.
 */
static void
imap_search_finish(struct imap_search_req *req, const char *fail)
{
	struct imap_session *s = req->async.s;
	int alive = s != NULL && s->conn != NULL && s->sel != NULL;

	qsort(req->hits, req->nhits, sizeof(*req->hits), imap_search_u32_cmp);
	req->cb(alive ? s : NULL, req->hits, fail != NULL ? 0 : req->nhits,
	    fail, req->arg);
	if (s != NULL && s->conn != NULL && s->async == &req->async)
		imap_session_idle(s);
	imap_search_req_free(req);
}

static void imap_search_found(struct store_search_result *res, void *arg);

static void
imap_search_next(struct imap_session *s, struct imap_search_req *req)
{
	store_search(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->keys, req->nkeys,
	    req->cand + req->next, req->ncand - req->next, imap_search_found,
	    req);
}

/* A chunk came back: messages gone from the view are no longer asked. */
static void
imap_search_found(struct store_search_result *res, void *arg)
{
	struct imap_search_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || s->sel == NULL ||
	    res->status != STORE_VIEW_OK) {
		store_search_result_free(&res);
		imap_search_finish(req, "[UNAVAILABLE] Cannot search now");
		return;
	}
	for (size_t i = 0; i < res->n; i++) {
		const struct store_search_msg *m = &res->msgs[i];
		int64_t x = store_view_find(s->sel->view, m->uid);

		if (!m->missing && x >= 0 &&
		    imap_search_eval(req, s->sel, req->prog.root, (uint32_t)x,
		        &m->match) == IMAP_SEARCH_YES)
			imap_search_hit(req, m->uid);
	}
	req->next += res->n;
	if (res->n == 0)
		req->next = req->ncand;
	store_search_result_free(&res);
	if (req->next < req->ncand)
		imap_search_next(s, req);
	else
		imap_search_finish(req, NULL);
}

/* ------------------------------------------------------------------ */
/* SEARCHRES (RFC 5182). */

/*
 * RFC 5182 section 2.4: with MIN or MAX but neither ALL nor COUNT only
 * those are kept.
 */
static void
imap_search_save(struct imap_session *s, unsigned ret, const uint32_t *uids,
    size_t n)
{
	size_t k = 0;

	imap_search_forget(s);
	if (n == 0)
		return;
	s->saved = xmalloc(sizeof(*s->saved) + n * sizeof(uint32_t));
	if ((ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) != 0 ||
	    (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) == 0) {
		memcpy(s->saved->uids, uids, n * sizeof(uint32_t));
		k = n;
	} else {
		if (ret & IMAP_SEARCH_RET_MIN)
			s->saved->uids[k++] = uids[0];
		if ((ret & IMAP_SEARCH_RET_MAX) && (k == 0 || n > 1))
			s->saved->uids[k++] = uids[n - 1];
	}
	s->saved->n = k;
}

void
imap_search_forget(struct imap_session *s)
{
	free(s->saved);
	s->saved = NULL;
}

int
imap_search_resolve(struct imap_session *s, const struct imap_seqset *set,
    int uid, uint32_t **out, size_t *n)
{
	size_t have = s->saved != NULL ? s->saved->n : 0, k = 0;

	if (!set->saved)
		return imap_select_resolve(s, set, uid, out, n);
	*out = xcalloc(have + 1, sizeof(**out));
	for (size_t i = 0; i < have; i++) {
		uint32_t u = s->saved->uids[i];

		/* Expunged messages drop out; the UIDs stay saved. */
		if (u < s->sel->uidnext &&
		    store_view_find(s->sel->view, u) >= 0)
			(*out)[k++] = u;
	}
	*n = k;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Starting. */

int
imap_search_run(struct imap_session *s, const char *tag,
    struct imap_search *prog, imap_search_done_cb cb, void *arg)
{
	struct imap_search_req *req = xcalloc(1, sizeof(*req));
	const char *err;

	req->prog = *prog;
	memset(prog, 0, sizeof(*prog));
	req->cb = cb;
	req->arg = arg;
	err = imap_search_prepare(s, req, req->prog.root);
	if (err != NULL) {
		imap_session_bad(s, tag, err);
		imap_search_req_free(req);
		return -1;
	}
	imap_search_view(s, req);
	req->async.s = s;
	if (req->ncand == 0) {
		imap_search_finish(req, NULL);
		return 0;
	}
	s->async = &req->async;
	imap_session_busy(s);
	imap_search_next(s, req);
	return 0;
}

/* The SEARCH command's callback: saves, answers, and frees c. */
static void
imap_search_done(struct imap_session *s, const uint32_t *uids, size_t n,
    const char *fail, void *arg)
{
	struct imap_search_cmd *c = arg;

	/* RFC 5182 section 2.1: a failed SAVE leaves the result empty. */
	if (s != NULL && (c->ret & IMAP_SEARCH_RET_SAVE))
		imap_search_save(s, c->ret, uids, n);
	if (s != NULL && fail != NULL)
		imap_session_printf(s, "%s NO %s", c->tag, fail);
	else if (s != NULL)
		imap_search_answer(s, c, uids, n);
	free(c->tag);
	free(c);
}

/* Parses args into prog; answers BAD or NO and returns -1 on error. */
static int
imap_search_parse(struct imap_session *s, const char *tag,
    struct imap_search *prog, const struct imap_arg *args, size_t nargs)
{
	int rev2 = (s->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
	enum imap_search_err err;
	const char *text;

	if (imap_searchkey_parse(args, nargs, rev2 ? IMAP_SEARCH_REV2 : 0, prog,
	        &err, &text) < 0) {
		if (err == IMAP_SEARCH_ERR_BADCHARSET)
			imap_session_fail(s, tag,
			    "[BADCHARSET (US-ASCII UTF-8)] Unknown charset");
		else
			imap_session_bad(s, tag, text);
		return -1;
	}
	/* RFC 9051 section 6.4.4: SEARCH without RETURN is RETURN (ALL). */
	if (rev2 && !prog->esearch) {
		prog->esearch = 1;
		prog->ret = IMAP_SEARCH_RET_ALL;
	}
	return 0;
}

static void
imap_search_start(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int uid)
{
	struct imap_search prog = {0};
	struct imap_search_cmd *c;

	if (imap_search_parse(s, cmd->tag, &prog, args, nargs) < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->tag = xstrdup(cmd->tag);
	c->uid = uid;
	c->esearch = prog.esearch;
	c->ret = prog.ret;
	c->modseq = prog.root != NULL && imap_search_has_modseq(prog.root);
	if (imap_search_run(s, cmd->tag, &prog, imap_search_done, c) < 0) {
		if (c->ret & IMAP_SEARCH_RET_SAVE)
			imap_search_forget(s);
		free(c->tag);
		free(c);
	}
}

void
imap_search_search(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_search_start(s, cmd, cmd->args, cmd->nargs, 0);
}

void
imap_search_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs)
{
	imap_search_start(s, cmd, args, nargs, 1);
}
