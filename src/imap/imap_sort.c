/*
 * SORT, THREAD and their UID forms (RFC 5256 sections 3 and 4, with
 * DISPLAYFROM and DISPLAYTO of RFC 5957): the search program runs on the
 * shared engine (imap_search_run()), the keys of the matches come from
 * the index (store_sort()), then they are ordered or threaded
 * (imap_thread.h) and answered.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_searchkey.h"
#include "imap/imap_session.h"
#include "imap/imap_thread.h"
#include "net/conn.h"
#include "store/store_sort.h"
#include "store/store_view.h"

/* Criteria one SORT may list. */
#define IMAP_SORT_MAX_CRIT 16

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

static const char *const imap_sort_names[] = {"ARRIVAL", "CC", "DATE", "FROM",
    "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"};

struct imap_sort_crit {
	enum imap_sort_key key;
	int reverse;
};

/* A SORT or THREAD in flight; input is paused while the store reads. */
struct imap_sort_req {
	struct imap_async async; /* first */
	char *tag;
	int uid;    /* UID SORT / UID THREAD */
	int thread; /* THREAD; else SORT */
	int refs;   /* THREAD=REFERENCES; else ORDEREDSUBJECT */
	struct imap_sort_crit crit[IMAP_SORT_MAX_CRIT];
	size_t ncrit;
	uint32_t *uids; /* the matches, ascending */
	size_t n, next;
	struct store_sort_msg *msgs; /* their keys, ascending UID */
	size_t nmsgs;
	char **base; /* SORT SUBJECT: base subject per message */
};

static void
imap_sort_req_free(struct imap_sort_req *req)
{
	if (req->async.s != NULL && req->async.s->async == &req->async)
		req->async.s->async = NULL;
	for (size_t i = 0; i < req->nmsgs; i++) {
		store_sort_msg_deinit(&req->msgs[i]);
		if (req->base != NULL)
			free(req->base[i]);
	}
	free(req->base);
	free(req->msgs);
	free(req->uids);
	free(req->tag);
	free(req);
}

/* ------------------------------------------------------------------ */
/* Ordering. */

static int
imap_sort_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* One criterion, ascending. Strings are lower case or base subjects. */
static int
imap_sort_key_cmp(const struct imap_sort_req *req, enum imap_sort_key key,
    size_t a, size_t b)
{
	const struct store_sort_msg *x = &req->msgs[a], *y = &req->msgs[b];

	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return imap_sort_i64(x->internaldate, y->internaldate);
	case IMAP_SORT_CC:
		return strcmp(x->cc, y->cc);
	case IMAP_SORT_DATE:
		return imap_sort_i64(x->date, y->date);
	case IMAP_SORT_FROM:
		return strcmp(x->from, y->from);
	case IMAP_SORT_SIZE:
		return imap_sort_i64((int64_t)x->size, (int64_t)y->size);
	case IMAP_SORT_SUBJECT:
		return strcmp(req->base[a], req->base[b]);
	case IMAP_SORT_TO:
		return strcmp(x->to, y->to);
	case IMAP_SORT_DISPLAYFROM:
		return strcasecmp(x->display_from, y->display_from);
	case IMAP_SORT_DISPLAYTO:
		return strcasecmp(x->display_to, y->display_to);
	}
	return 0;
}

/* RFC 5256 section 3: criteria in turn, then the sequence number. */
static int
imap_sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_req *req = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	for (size_t i = 0; i < req->ncrit; i++) {
		int r = imap_sort_key_cmp(req, req->crit[i].key, a, b);

		if (r != 0)
			return req->crit[i].reverse ? -r : r;
	}
	return imap_sort_i64(req->msgs[a].uid, req->msgs[b].uid);
}

/* The number the client gets for message i: its UID or sequence number. */
static uint32_t
imap_sort_number(struct imap_session *s, const struct imap_sort_req *req,
    size_t i)
{
	return req->uid ? req->msgs[i].uid :
	                  imap_select_seq(s, req->msgs[i].uid);
}

static void
imap_sort_subjects(struct imap_sort_req *req)
{
	req->base = xcalloc(req->nmsgs + 1, sizeof(*req->base));
	for (size_t i = 0; i < req->nmsgs; i++)
		req->base[i] =
		    imap_thread_base_subject(req->msgs[i].subject, NULL);
}

/*
 * TODO(sort-loop): the ordering and threading run on the loop thread;
 * for a mailbox of a few hundred thousand messages that is tens of
 * milliseconds every other session waits. Move them to the I/O pool.
 */
static void
imap_sort_answer_sort(struct imap_session *s, struct imap_sort_req *req)
{
	struct evbuffer *out = conn_output(s->conn);
	size_t *order = xcalloc(req->nmsgs + 1, sizeof(*order));

	for (size_t i = 0; i < req->nmsgs; i++)
		order[i] = i;
	for (size_t i = 0; i < req->ncrit; i++)
		if (req->crit[i].key == IMAP_SORT_SUBJECT && req->base == NULL)
			imap_sort_subjects(req);
	qsort_r(order, req->nmsgs, sizeof(*order), imap_sort_cmp, req);
	evbuffer_add_printf(out, "* SORT");
	for (size_t i = 0; i < req->nmsgs; i++)
		evbuffer_add_printf(out, " %u",
		    imap_sort_number(s, req, order[i]));
	imap_session_printf(s, "%s", "");
	free(order);
}

static void
imap_sort_answer_thread(struct imap_session *s, struct imap_sort_req *req)
{
	struct imap_thread_msg *t = xcalloc(req->nmsgs + 1, sizeof(*t));
	char *list;

	for (size_t i = 0; i < req->nmsgs; i++) {
		const struct store_sort_msg *m = &req->msgs[i];

		t[i].id = imap_sort_number(s, req, i);
		t[i].message_id = m->message_id;
		t[i].references = m->references;
		t[i].in_reply_to = m->in_reply_to;
		t[i].subject = m->subject;
		t[i].date = m->date;
	}
	list = req->refs ? imap_thread_references(t, req->nmsgs) :
	                   imap_thread_orderedsubject(t, req->nmsgs);
	imap_session_printf(s, "* THREAD%s%s", list[0] != '\0' ? " " : "",
	    list);
	free(list);
	free(t);
}

/* Ends the command: the answer or NO, input resumed, the request freed. */
static void
imap_sort_finish(struct imap_sort_req *req, const char *fail)
{
	struct imap_session *s = req->async.s;
	const char *name = req->thread ? "THREAD" : "SORT";

	if (s != NULL && s->conn != NULL && s->sel != NULL) {
		if (fail != NULL) {
			imap_session_printf(s, "%s NO %s", req->tag, fail);
		} else {
			if (req->thread)
				imap_sort_answer_thread(s, req);
			else
				imap_sort_answer_sort(s, req);
			imap_session_printf(s, "%s OK %s%s completed", req->tag,
			    req->uid ? "UID " : "", name);
		}
	}
	if (s != NULL && s->conn != NULL && s->async == &req->async)
		imap_session_idle(s);
	imap_sort_req_free(req);
}

/* ------------------------------------------------------------------ */
/* Reading the keys. */

static void imap_sort_keys(struct store_sort_result *res, void *arg);

static void
imap_sort_next(struct imap_session *s, struct imap_sort_req *req)
{
	store_sort(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->uids + req->next,
	    req->n - req->next, imap_sort_keys, req);
}

/* A chunk came back: its messages move into the request. */
static void
imap_sort_keys(struct store_sort_result *res, void *arg)
{
	struct imap_sort_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || s->sel == NULL ||
	    res->status != STORE_VIEW_OK) {
		store_sort_result_free(&res);
		imap_sort_finish(req, "[UNAVAILABLE] Cannot sort now");
		return;
	}
	/* A message expunged meanwhile has no keys; it is left out. */
	for (size_t i = 0; i < res->n; i++)
		if (!res->msgs[i].missing)
			req->msgs[req->nmsgs++] = res->msgs[i];
	req->next += res->n;
	if (res->n == 0)
		req->next = req->n;
	res->n = 0;
	store_sort_result_free(&res);
	if (req->next < req->n)
		imap_sort_next(s, req);
	else
		imap_sort_finish(req, NULL);
}

/* The search engine answered: read the keys of the matches. */
static void
imap_sort_matched(struct imap_session *s, const uint32_t *uids, size_t n,
    const char *fail, void *arg)
{
	struct imap_sort_req *req = arg;

	req->async.s = s;
	if (s == NULL || fail != NULL || n == 0) {
		imap_sort_finish(req, fail);
		return;
	}
	req->uids = xcalloc(n, sizeof(*req->uids));
	memcpy(req->uids, uids, n * sizeof(*uids));
	req->n = n;
	req->msgs = xcalloc(n, sizeof(*req->msgs));
	s->async = &req->async;
	imap_session_busy(s);
	imap_sort_next(s, req);
}

/* ------------------------------------------------------------------ */
/* Parsing. */

/* The sort criteria list (RFC 5256 section 5); NULL or the BAD text. */
static const char *
imap_sort_criteria(struct imap_sort_req *req, const struct imap_arg *list)
{
	size_t nkeys = sizeof(imap_sort_names) / sizeof(imap_sort_names[0]);
	int reverse = 0;

	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return "Expected a list of sort criteria";
	for (size_t i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];
		size_t k = 0;

		if (imap_arg_atom_is(a, "REVERSE") && !reverse) {
			reverse = 1;
			continue;
		}
		while (k < nkeys && !imap_arg_atom_is(a, imap_sort_names[k]))
			k++;
		if (k == nkeys || req->ncrit == IMAP_SORT_MAX_CRIT)
			return "Invalid sort criterion";
		req->crit[req->ncrit].key = (enum imap_sort_key)k;
		req->crit[req->ncrit++].reverse = reverse;
		reverse = 0;
	}
	return reverse ? "REVERSE must precede a sort key" : NULL;
}

/* RFC 5256 section 3: UTF-8 and US-ASCII; 0, or -1 after NO or BAD. */
static int
imap_sort_charset(struct imap_session *s, const char *tag,
    const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) {
		imap_session_bad(s, tag, "Expected a charset");
		return -1;
	}
	if (strcasecmp(a->str, "UTF-8") == 0 ||
	    strcasecmp(a->str, "US-ASCII") == 0)
		return 0;
	imap_session_fail(s, tag,
	    "[BADCHARSET (UTF-8 US-ASCII)] "
	    "Unknown charset");
	return -1;
}

/* The search program after the charset; 0, or -1 after NO or BAD. */
static int
imap_sort_program(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t nargs, struct imap_search *prog)
{
	int rev2 = (s->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
	enum imap_search_err err;
	const char *text;

	if (nargs == 0) {
		imap_session_bad(s, tag, "Expected search keys");
		return -1;
	}
	if (imap_searchkey_parse(args, nargs, rev2 ? IMAP_SEARCH_REV2 : 0, prog,
	        &err, &text) < 0) {
		if (err == IMAP_SEARCH_ERR_BADCHARSET)
			imap_session_fail(s, tag,
			    "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset");
		else
			imap_session_bad(s, tag, text);
		return -1;
	}
	if (prog->esearch) {
		/* RETURN belongs to ESORT (RFC 5267), which we lack. */
		imap_searchkey_clear(prog);
		imap_session_bad(s, tag, "RETURN is not supported here");
		return -1;
	}
	return 0;
}

/* The first argument: criteria (SORT) or algorithm (THREAD). */
static const char *
imap_sort_first(struct imap_sort_req *req, const struct imap_arg *a)
{
	if (!req->thread)
		return imap_sort_criteria(req, a);
	if (imap_arg_atom_is(a, "REFERENCES"))
		req->refs = 1;
	else if (!imap_arg_atom_is(a, "ORDEREDSUBJECT"))
		return "Unknown threading algorithm";
	return NULL;
}

static void
imap_sort_start(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t nargs, int uid, int thread)
{
	struct imap_sort_req *req = xcalloc(1, sizeof(*req));
	struct imap_search prog = {0};
	const char *err = "Expected arguments";

	req->tag = xstrdup(tag);
	req->uid = uid;
	req->thread = thread;
	if (nargs < 2 || (err = imap_sort_first(req, &args[0])) != NULL) {
		imap_session_bad(s, tag, err);
		imap_sort_req_free(req);
		return;
	}
	if (imap_sort_charset(s, tag, &args[1]) < 0 ||
	    imap_sort_program(s, tag, args + 2, nargs - 2, &prog) < 0 ||
	    imap_search_run(s, tag, &prog, imap_sort_matched, req) < 0)
		imap_sort_req_free(req);
}

void
imap_sort_sort(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_sort_start(s, cmd->tag, cmd->args, cmd->nargs, 0, 0);
}

void
imap_sort_thread(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_sort_start(s, cmd->tag, cmd->args, cmd->nargs, 0, 1);
}

void
imap_sort_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int thread)
{
	imap_sort_start(s, cmd->tag, args, nargs, 1, thread);
}
