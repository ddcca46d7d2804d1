/*
 * The selected state: SELECT and EXAMINE (RFC 3501 section 6.3.1, RFC 9051
 * section 6.3.2), CLOSE and UNSELECT (RFC 3691), and the untagged EXISTS,
 * RECENT, FETCH and EXPUNGE updates of RFC 3501 sections 7.3, 7.4 and 7.4.1,
 * computed from the shared store view when the client may hear them, and
 * the session's own message numbering while an EXPUNGE is withheld; with
 * RFC 7162: HIGHESTMODSEQ, the CONDSTORE and QRESYNC parameters (sections
 * 3.1.2 and 3.2.5), VANISHED in place of EXPUNGE (section 3.2.10), and the
 * index's tombstones for a session behind the view's expunge window.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "net/conn.h"
#include "push/hub.h"
#include "store/store_view.h"

/* A SELECT or EXAMINE waiting for its view and its \Recent claim. */
struct imap_select_req {
	struct imap_async async; /* first */
	char *tag;
	struct store_view *view;
	int readonly;
	struct imap_condstore_select params;
};

/* A read of the tombstones for a session behind the expunge window. */
struct imap_catchup {
	struct imap_async async;   /* first; s set only while input waits */
	struct imap_selected *sel; /* NULL once the selection is gone */
	uint64_t modseq;           /* sel->modseq when it started */
};

#define UTF8_ON(s) \
	(((s)->enabled & (IMAP_ENABLED_UTF8 | IMAP_ENABLED_IMAP4REV2)) != 0)
#define REV2(s) (((s)->enabled & IMAP_ENABLED_IMAP4REV2) != 0)

static void
imap_select_put(struct imap_session *s, const char *text, size_t len)
{
	if (s->conn != NULL)
		conn_write(s->conn, text, len);
}

void
imap_select_put_name(struct imap_session *s, const char *name)
{
	char *enc = NULL;
	const char *p;

	if (!UTF8_ON(s) && imap_utf7_encode(name, strlen(name), &enc) == 0)
		name = enc;
	/* Names hold no control characters, so a quoted string fits all. */
	imap_select_put(s, "\"", 1);
	for (p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			imap_select_put(s, "\\", 1);
		imap_select_put(s, p, 1);
	}
	imap_select_put(s, "\"", 1);
	free(enc);
}

int
imap_select_name_in(struct imap_session *s, const char *in, char **out)
{
	size_t len = strlen(in);

	if (UTF8_ON(s)) {
		if (!imap_utf7_valid_utf8((const unsigned char *)in, len))
			return -1;
		*out = xstrdup(in);
	} else if (imap_utf7_decode(in, len, out) < 0)
		return -1;
	/* RFC 3501 section 5.1: INBOX in any case is INBOX. */
	if (strncasecmp(*out, "INBOX", 5) == 0 &&
	    ((*out)[5] == '\0' || (*out)[5] == '/'))
		memcpy(*out, "INBOX", 5);
	return 0;
}

/*
 * The index of the first message with a UID of at least uid; also on a
 * hibernated view, which is all an idle session's news need.
 */
static uint32_t
imap_select_lower(const struct store_view *v, uint32_t uid)
{
	return store_view_lower(v, uid);
}

/*
 * While this session's claim is the newest (store_view_claim_gen()), the
 * messages it is told of now are \Recent for it alone.
 */
static void
imap_select_take_recent(struct imap_selected *sel)
{
	if (sel->readonly || sel->recent_gen != store_view_claim_gen(sel->view))
		return;
	sel->recent_hi = store_view_uidnext(sel->view);
	store_view_recent_given(sel->view, sel->recent_hi);
}

/*
 * Messages \Recent for this session: from recent_lo to below recent_hi.
 * EXAMINE claims nothing and shows the messages still \Recent for the
 * next SELECT, as they stand now.
 */
static uint32_t
imap_select_recent(const struct imap_selected *sel)
{
	const struct store_view *v = sel->view;

	if (sel->readonly)
		return store_view_count(v) -
		    imap_select_lower(v, store_view_first_recent_uid(v));
	return imap_select_lower(v, sel->recent_hi) -
	    imap_select_lower(v, sel->recent_lo);
}

int
imap_select_is_recent(const struct imap_selected *sel, uint32_t uid)
{
	if (sel->readonly)
		return uid >= store_view_first_recent_uid(sel->view);
	return uid >= sel->recent_lo && uid < sel->recent_hi;
}

/* ------------------------------------------------------------------ */
/* Untagged updates. */

/*
 * RFC 3501 section 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH (nor
 * their UID forms), since the client could not tell which message a
 * sequence number in their answer meant. The one place that rule lives.
 */
int
imap_select_expunge_ok(const char *command)
{
	static const char *const no[] = {"FETCH", "STORE", "SEARCH", "UID",
	    "SORT", "THREAD"};

	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(command, no[i]) == 0)
			return 0;
	return 1;
}

struct imap_expunge_walk {
	struct imap_session *s;
	struct store_expunge *list;
	size_t n, cap;
};

static void
imap_select_expunge_collect(const struct store_expunge *e, void *arg)
{
	struct imap_expunge_walk *w = arg;

	/* Messages the client never heard of need no EXPUNGE. */
	if (e->uid >= w->s->sel->uidnext)
		return;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->list = xreallocarray(w->list, w->cap, sizeof(*w->list));
	}
	w->list[w->n++] = *e;
}

/*
 * The expunges the client has not heard of yet, in the order they
 * happened (w->list, freed by the caller). Returns -1 when the view's
 * window no longer reaches back to what the client last heard.
 */
static int
imap_select_withheld(struct imap_session *s, struct imap_expunge_walk *w)
{
	struct imap_selected *sel = s->sel;
	uint64_t from = sel->behind != NULL ? sel->behind_modseq : sel->modseq;

	memset(w, 0, sizeof(*w));
	w->s = s;
	/* The index's list, then what the window saw after it was read. */
	for (size_t k = 0; k < sel->nbehind; k++)
		imap_select_expunge_collect(&sel->behind[k], w);
	if (store_view_expunged_since(sel->view, from,
	        imap_select_expunge_collect, w) == 0)
		return 0;
	free(w->list);
	memset(w, 0, sizeof(*w));
	return -1;
}

static void
imap_select_behind_free(struct imap_selected *sel)
{
	free(sel->behind);
	sel->behind = NULL;
	sel->nbehind = 0;
}

/*
 * The client's sequence number of expunge k: the messages still in the
 * view below its UID, plus the later expunges below it not yet reported.
 */
static uint32_t
imap_select_expunge_seq(struct imap_expunge_walk *w, size_t k)
{
	const struct store_view *v = w->s->sel->view;
	uint32_t n = imap_select_lower(v, w->list[k].uid) + 1;

	for (size_t j = k + 1; j < w->n; j++)
		if (w->list[j].uid < w->list[k].uid)
			n++;
	return n;
}

/* RFC 7162 section 3.2.10: one VANISHED for them all. */
static void
imap_select_vanished(struct imap_session *s, struct imap_expunge_walk *w)
{
	uint32_t *uids = xcalloc(w->n + 1, sizeof(*uids));

	for (size_t k = 0; k < w->n; k++)
		uids[k] = w->list[k].uid;
	imap_condstore_put_vanished(s, 0, uids, w->n);
	s->sel->exists -= (uint32_t)w->n;
	free(uids);
}

/* Returns 1 when expunges wait that may not be sent now, else 0. */
static int
imap_select_expunges(struct imap_session *s, int expunge_ok)
{
	struct imap_expunge_walk w;
	struct imap_selected *sel = s->sel;

	if (imap_select_withheld(s, &w) < 0) {
		/*
		 * TODO(expunge): the tombstones are read when the session falls
		 * behind (imap_select_catch_up()); a command that comes before
		 * that read returns, or a failed read, still ends the session.
		 */
		imap_session_bye(s, "expunge", "Too many changes; reselect");
		return 1;
	}
	if (w.n > 0 && !expunge_ok) {
		free(w.list);
		return 1;
	}
	if (s->enabled & IMAP_ENABLED_QRESYNC)
		imap_select_vanished(s, &w);
	for (size_t k = 0; k < w.n && !(s->enabled & IMAP_ENABLED_QRESYNC);
	     k++) {
		imap_session_printf(s, "* %u EXPUNGE",
		    imap_select_expunge_seq(&w, k));
		sel->exists--;
	}
	free(w.list);
	imap_select_behind_free(sel);
	return 0;
}

/*
 * The client's sequence number of uid, a message it knows of: the
 * messages below it in the view plus the withheld expunges below it.
 */
uint32_t
imap_select_seq(struct imap_session *s, uint32_t uid)
{
	struct imap_expunge_walk w;
	uint32_t n = imap_select_lower(s->sel->view, uid) + 1;

	(void)imap_select_withheld(s, &w);
	for (size_t k = 0; k < w.n; k++)
		if (w.list[k].uid < uid)
			n++;
	free(w.list);
	return n;
}

static int
imap_select_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The message list as the client knows it, ascending: the view's
 * messages it heard of and the expunged ones it has not heard gone.
 */
static uint32_t *
imap_select_known(struct imap_session *s, size_t *n)
{
	const struct store_view *v = s->sel->view;
	uint32_t known = imap_select_lower(v, s->sel->uidnext);
	struct imap_expunge_walk w;
	uint32_t *all;

	(void)imap_select_withheld(s, &w);
	all = xcalloc((size_t)known + w.n + 1, sizeof(*all));
	for (uint32_t i = 0; i < known; i++)
		all[i] = store_view_msg(v, i)->uid;
	for (size_t k = 0; k < w.n; k++)
		all[known + k] = w.list[k].uid;
	*n = known + w.n;
	qsort(all, *n, sizeof(*all), imap_select_u32_cmp);
	free(w.list);
	return all;
}

int
imap_select_resolve(struct imap_session *s, const struct imap_seqset *set,
    int uid, uint32_t **out, size_t *nout)
{
	size_t n, k = 0;
	uint32_t *all = imap_select_known(s, &n), seq;
	struct imap_seqset r = {0};
	struct imap_seqset_iter it = {0};
	uint32_t max = uid ? (n > 0 ? all[n - 1] : 0) : (uint32_t)n;

	if (imap_seqset_resolve(set, max, uid, &r) < 0) {
		free(all);
		return -1;
	}
	*out = xcalloc(n + 1, sizeof(**out));
	if (!uid) {
		while (imap_seqset_next(&r, &it, &seq) == 1)
			if (store_view_find(s->sel->view, all[seq - 1]) >= 0)
				(*out)[k++] = all[seq - 1];
	} else {
		for (size_t i = 0; i < n; i++)
			if (imap_seqset_contains(&r, all[i]) &&
			    store_view_find(s->sel->view, all[i]) >= 0)
				(*out)[k++] = all[i];
	}
	*nout = k;
	imap_seqset_clear(&r);
	free(all);
	return 0;
}

/*
 * "* seq FETCH ([UID n ]FLAGS (...)[ MODSEQ (m)]": the message's flags as
 * the view has them. RFC 7162 section 3.2.4: once CONDSTORE is on, every
 * such FETCH carries UID and MODSEQ. The caller closes the parenthesis.
 */
static void
imap_select_put_flags(struct imap_session *s, uint32_t seq, uint32_t i,
    int with_uid)
{
	static const char *const sys[] = {"\\Seen", "\\Answered", "\\Flagged",
	    "\\Deleted", "\\Draft"};
	const struct store_view *v = s->sel->view;
	const struct store_view_msg *m = store_view_msg(v, i);
	struct evbuffer *out = conn_output(s->conn);
	const uint32_t *kw;
	size_t nkw = store_view_msg_keywords(v, i, &kw);
	const char *sep = "";

	evbuffer_add_printf(out, "* %u FETCH (", seq);
	if (with_uid || (s->enabled & IMAP_ENABLED_CONDSTORE))
		evbuffer_add_printf(out, "UID %u ", m->uid);
	evbuffer_add_printf(out, "FLAGS (");
	for (unsigned b = 0; b < 5; b++) {
		if ((m->flags & (1u << b)) == 0)
			continue;
		evbuffer_add_printf(out, "%s%s", sep, sys[b]);
		sep = " ";
	}
	for (size_t k = 0; k < nkw; k++, sep = " ")
		evbuffer_add_printf(out, "%s%s", sep,
		    store_view_keyword(v, kw[k]));
	if (!REV2(s) && imap_select_is_recent(s->sel, m->uid))
		evbuffer_add_printf(out, "%s\\Recent", sep);
	evbuffer_add(out, ")", 1);
	if (s->enabled & IMAP_ENABLED_CONDSTORE)
		evbuffer_add_printf(out, " MODSEQ (%llu)",
		    (unsigned long long)m->modseq);
}

void
imap_select_fetch_flags(struct imap_session *s, uint32_t uid, int with_uid)
{
	int64_t i;

	if (s->sel == NULL || s->conn == NULL ||
	    (i = store_view_find(s->sel->view, uid)) < 0)
		return;
	imap_select_put_flags(s, imap_select_seq(s, uid), (uint32_t)i,
	    with_uid);
	imap_session_printf(s, ")");
}

/* FETCH FLAGS for messages the client knows whose MODSEQ moved on. */
static void
imap_select_flag_updates(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	const struct store_view *v = sel->view;
	uint32_t known = imap_select_lower(v, sel->uidnext);

	/* A hibernated view has had no flag change: those wake it. */
	if (store_view_highestmodseq(v) <= sel->modseq || !store_view_full(v))
		return;
	for (uint32_t i = 0; i < known; i++)
		if (store_view_msg(v, i)->modseq > sel->modseq) {
			imap_select_put_flags(s, i + 1, i, 0);
			imap_session_printf(s, ")");
		}
}

void
imap_select_updates(struct imap_session *s, int expunge_ok)
{
	struct imap_selected *sel = s->sel;
	uint32_t count, recent;

	if (sel == NULL || s->conn == NULL)
		return;
	if (imap_select_expunges(s, expunge_ok))
		return;
	imap_select_flag_updates(s);
	sel->modseq = store_view_highestmodseq(sel->view);
	count = store_view_count(sel->view);
	if (count != sel->exists) {
		imap_session_printf(s, "* %u EXISTS", count);
		sel->exists = count;
	}
	sel->uidnext = store_view_uidnext(sel->view);
	imap_select_take_recent(sel);
	recent = imap_select_recent(sel);
	if (!REV2(s) && recent != sel->recent)
		imap_session_printf(s, "* %u RECENT", recent);
	sel->recent = recent;
}

void
imap_select_uid_updates(struct imap_session *s)
{
	if (s->enabled & IMAP_ENABLED_QRESYNC)
		imap_select_updates(s, 1);
}

/* ------------------------------------------------------------------ */
/* A session behind the expunge window. */

static void
imap_select_ignore(const struct store_expunge *e, void *arg)
{
}

/* The tombstones are in: kept until the client hears them. */
static void
imap_select_caught_up(const struct store_expunge *list, size_t n,
    enum store_view_status status, void *arg)
{
	struct imap_catchup *req = arg;
	struct imap_selected *sel = req->sel;
	struct imap_session *s = req->async.s;

	if (sel != NULL) {
		sel->catchup = NULL;
		if (status == STORE_VIEW_OK && sel->modseq == req->modseq) {
			imap_select_behind_free(sel);
			sel->behind = xcalloc(n + 1, sizeof(*sel->behind));
			if (n > 0)
				memcpy(sel->behind, list, n * sizeof(*list));
			sel->nbehind = n;
			sel->behind_modseq =
			    store_view_highestmodseq(sel->view);
		}
	}
	if (s != NULL) {
		s->async = NULL;
		imap_session_idle(s);
	}
	free(req);
}

/*
 * An expunge arrived while the client cannot hear it. When the view's
 * window no longer reaches back to what the client last heard, the
 * index's tombstones are read now, while the expunges wait; input pauses
 * for it when the session is between commands.
 */
static void
imap_select_catch_up(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	uint64_t from = sel->behind != NULL ? sel->behind_modseq : sel->modseq;
	struct imap_catchup *req;

	if (sel->catchup != NULL ||
	    store_view_expunged_since(sel->view, from, imap_select_ignore,
	        NULL) == 0)
		return;
	req = xcalloc(1, sizeof(*req));
	req->sel = sel;
	req->modseq = sel->modseq;
	sel->catchup = req;
	if (s->async == NULL && s->phase == IMAP_PHASE_CMD && s->conn != NULL) {
		req->async.s = s;
		s->async = &req->async;
		imap_session_busy(s);
	}
	store_expunged_since(s->srv->env.store, s->user,
	    store_view_mailbox_id(sel->view), sel->modseq,
	    imap_select_caught_up, req);
}

/* ------------------------------------------------------------------ */
/* SELECT, EXAMINE, CLOSE, UNSELECT. */

static void imap_select_leave(struct imap_session *s);

/*
 * The selected mailbox was deleted or renamed. The session that did it
 * leaves the mailbox quietly; any other cannot go on with it and is
 * closed, as a client that finds its mailbox gone reconnects anyway.
 */
static void
imap_select_gone(struct imap_session *s)
{
	if (s->mailbox_op) {
		imap_select_leave(s);
		return;
	}
	log_info("sid=" LOG_SID_FMT " proto=imap event=mailbox_gone", s->sid);
	imap_session_bye(s, "mailbox_gone",
	    "Selected mailbox was deleted or renamed");
}

/*
 * A change of the selected mailbox. Only an IDLE client hears it now;
 * any other finds out before its next command's tagged reply.
 */
static void
imap_select_on_change(const struct store_change *change, void *arg)
{
	struct imap_session *s = arg;

	if (s->sel == NULL)
		return;
	if (change->kind == STORE_CHANGE_MAILBOX_GONE) {
		imap_select_gone(s);
		return;
	}
	if (s->phase == IMAP_PHASE_IDLE && store_view_waking(s->sel->view)) {
		imap_idle_wait_view(s);
	} else if (s->phase == IMAP_PHASE_IDLE && s->conn != NULL) {
		/* A sleeping connection hears it without waking. */
		conn_gather(s->conn);
		imap_select_updates(s, 1);
		if (s->conn != NULL)
			conn_flush(s->conn);
	} else if (change->kind == STORE_CHANGE_EXPUNGE)
		imap_select_catch_up(s);
}

void
imap_select_clear(struct imap_session *s)
{
	if (s->sel == NULL)
		return;
	hub_unsubscribe(&s->sel->sub);
	store_view_unref(&s->sel->view);
	if (s->sel->catchup != NULL)
		s->sel->catchup->sel = NULL;
	imap_select_behind_free(s->sel);
	free(s->sel);
	s->sel = NULL;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

static void
imap_select_req_free(struct imap_select_req *req)
{
	if (req->async.s != NULL)
		req->async.s->async = NULL;
	store_view_unref(&req->view);
	imap_condstore_select_clear(&req->params);
	free(req->tag);
	free(req);
}

static void
imap_select_flags_line(struct imap_session *s, int readonly)
{
	const struct store_view *v = s->sel->view;
	struct evbuffer *out = conn_output(s->conn);
	size_t nkw = store_view_keyword_count(v);

	evbuffer_add_printf(out,
	    "* FLAGS (\\Answered \\Flagged \\Deleted "
	    "\\Seen \\Draft");
	for (size_t k = 0; k < nkw; k++)
		evbuffer_add_printf(out, " %s", store_view_keyword(v, k));
	imap_session_printf(s, ")");
	if (readonly) {
		imap_session_printf(s, "* OK [PERMANENTFLAGS ()] Read-only");
		return;
	}
	evbuffer_add_printf(out,
	    "* OK [PERMANENTFLAGS (\\Answered \\Flagged "
	    "\\Deleted \\Seen \\Draft");
	for (size_t k = 0; k < nkw; k++)
		evbuffer_add_printf(out, " %s", store_view_keyword(v, k));
	imap_session_printf(s, " \\*)] Flags permitted");
}

/* The first unseen message's sequence number, or 0. */
static uint32_t
imap_select_first_unseen(const struct store_view *v)
{
	uint32_t n = store_view_count(v);

	for (uint32_t i = 0; i < n; i++)
		if ((store_view_msg(v, i)->flags & STORE_FLAG_SEEN) == 0)
			return i + 1;
	return 0;
}

/* The untagged responses of RFC 3501 6.3.1 / RFC 9051 6.3.2. */
static void
imap_select_announce(struct imap_session *s, int readonly)
{
	struct imap_selected *sel = s->sel;
	const struct store_view *v = sel->view;
	uint32_t unseen = imap_select_first_unseen(v);

	imap_select_flags_line(s, readonly);
	imap_session_printf(s, "* %u EXISTS", sel->exists);
	if (!REV2(s)) {
		imap_session_printf(s, "* %u RECENT", sel->recent);
		if (unseen != 0)
			imap_session_printf(s, "* OK [UNSEEN %u] First unseen",
			    unseen);
	} else {
		imap_select_put(s, "* LIST () \"/\" ", 14);
		imap_select_put_name(s, store_view_name(v));
		imap_select_put(s, "\r\n", 2);
	}
	imap_session_printf(s, "* OK [UIDVALIDITY %u] UIDs valid",
	    store_view_uidvalidity(v));
	imap_session_printf(s, "* OK [UIDNEXT %u] Predicted next UID",
	    sel->uidnext);
	/* RFC 7162 section 3.1.2.1; every mailbox of ours has MODSEQ. */
	if (s->enabled & IMAP_ENABLED_CONDSTORE)
		imap_session_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
		    (unsigned long long)sel->modseq);
}

/* Ends a SELECT: answered, input resumed, the request freed. */
static void
imap_select_done(struct imap_select_req *req, const char *fail)
{
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		if (fail != NULL)
			imap_session_printf(s, "%s NO %s", req->tag, fail);
		else
			imap_session_printf(s, "%s OK [%s] %s completed",
			    req->tag,
			    req->readonly ? "READ-ONLY" : "READ-WRITE",
			    req->readonly ? "EXAMINE" : "SELECT");
	}
	if (s != NULL)
		imap_session_idle(s);
	imap_select_req_free(req);
}

/*
 * RFC 7162 section 3.2.5.1: the FETCH of each message the client knew of
 * that changed since its MODSEQ (and is among its known UIDs).
 */
static void
imap_select_resync_flags(struct imap_session *s,
    const struct imap_condstore_select *p)
{
	const struct store_view *v = s->sel->view;
	uint32_t known = imap_select_lower(v, s->sel->uidnext);

	for (uint32_t i = 0; i < known; i++) {
		const struct store_view_msg *m = store_view_msg(v, i);

		if (m->modseq <= p->modseq ||
		    (p->has_known && !imap_seqset_contains(&p->known, m->uid)))
			continue;
		imap_select_put_flags(s, imap_select_seq(s, m->uid), i, 1);
		imap_session_printf(s, ")");
	}
}

/*
 * The expunges since the client's MODSEQ: those before the EXISTS it was
 * told go out as VANISHED (EARLIER); later ones follow as updates.
 */
static void
imap_select_resynced(const struct store_expunge *list, size_t n,
    enum store_view_status status, void *arg)
{
	struct imap_select_req *req = arg;
	struct imap_session *s = req->async.s;
	const struct imap_condstore_select *p = &req->params;
	uint32_t *uids;
	size_t k = 0;

	if (s == NULL || s->sel == NULL || s->conn == NULL) {
		imap_select_done(req, NULL);
		return;
	}
	if (status != STORE_VIEW_OK) {
		imap_select_clear(s);
		imap_select_done(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		if (list[i].modseq <= s->sel->modseq &&
		    (!p->has_known ||
		        imap_seqset_contains(&p->known, list[i].uid)))
			uids[k++] = list[i].uid;
	imap_condstore_put_vanished(s, 1, uids, k);
	free(uids);
	imap_select_resync_flags(s, p);
	imap_select_done(req, NULL);
}

/*
 * After the untagged data: with QRESYNC and a matching UIDVALIDITY, what
 * changed since the client's MODSEQ (RFC 7162 section 3.2.5); then the
 * tagged OK.
 */
static void
imap_select_resync(struct imap_select_req *req)
{
	struct imap_session *s = req->async.s;

	if (!req->params.qresync ||
	    req->params.uidvalidity != store_view_uidvalidity(s->sel->view)) {
		imap_select_done(req, NULL);
		return;
	}
	imap_condstore_expunged(s->srv->env.store, s->user, s->sel->view,
	    req->params.modseq, imap_select_resynced, req);
}

/* The view is open and \Recent claimed (SELECT) or not (EXAMINE). */
static void
imap_select_finish(struct imap_select_req *req, uint32_t first_recent)
{
	struct imap_session *s = req->async.s;
	struct imap_selected *sel = xcalloc(1, sizeof(*sel));
	struct store_view *v = req->view;
	char q[128];

	req->view = NULL;
	sel->view = v;
	sel->readonly = req->readonly;
	sel->exists = store_view_count(v);
	sel->uidnext = store_view_uidnext(v);
	sel->modseq = store_view_highestmodseq(v);
	sel->recent_lo =
	    req->readonly ? store_view_first_recent_uid(v) : first_recent;
	sel->recent_hi = req->readonly ? 0 : store_view_first_recent_uid(v);
	sel->recent_gen = store_view_claim_gen(v);
	imap_select_take_recent(sel);
	s->sel = sel;
	s->state = IMAP_STATE_SELECTED;
	/* EXAMINE reports the \Recent messages as they stand; no news. */
	sel->recent = imap_select_recent(sel);
	sel->sub = hub_subscribe(s->srv->env.hub, s->user,
	    store_view_mailbox_id(v), imap_select_on_change, s);
	imap_select_announce(s, req->readonly);
	log_info("sid=" LOG_SID_FMT " proto=imap event=select mailbox=%s "
	         "exists=%u readonly=%d qresync=%d",
	    s->sid,
	    log_quote(q, sizeof(q), store_view_name(v),
	        strlen(store_view_name(v))),
	    sel->exists, req->readonly, req->params.qresync);
	imap_select_resync(req);
}

static void
imap_select_claimed(struct store_view *view, uint32_t first_recent,
    enum store_view_status status, void *arg)
{
	struct imap_select_req *req = arg;

	if (req->async.s == NULL || status != STORE_VIEW_OK) {
		imap_select_done(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	imap_select_finish(req, first_recent);
}

static void
imap_select_opened(struct store_view *view, enum store_view_status status,
    void *arg)
{
	struct imap_select_req *req = arg;

	req->view = view;
	if (req->async.s == NULL || status == STORE_VIEW_IO) {
		imap_select_done(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	if (status == STORE_VIEW_NOMAILBOX) {
		imap_select_done(req, "[NONEXISTENT] No such mailbox");
		return;
	}
	if (req->readonly) {
		imap_select_finish(req, 0);
		return;
	}
	store_view_claim_recent(view, imap_select_claimed, req);
}

/* Drops the selection; [CLOSED] for clients that expect it. */
static void
imap_select_leave(struct imap_session *s)
{
	if (s->sel == NULL)
		return;
	imap_select_clear(s);
	/* RFC 9051 section 7.1 and RFC 7162 section 3.2.11. */
	if (s->enabled & (IMAP_ENABLED_IMAP4REV2 | IMAP_ENABLED_QRESYNC))
		imap_session_printf(s, "* OK [CLOSED] Previous mailbox closed");
}

void
imap_select_select(struct imap_session *s, struct imap_cmd *cmd)
{
	int readonly = strcmp(cmd->name, "EXAMINE") == 0;
	const char *arg = cmd->nargs == 1 || cmd->nargs == 2 ?
	    imap_arg_astring(&cmd->args[0]) :
	    NULL;
	struct imap_condstore_select params;
	const char *err = "Expected a mailbox name and parameters";
	struct imap_select_req *req;
	char *name = NULL;

	if (arg == NULL || cmd->args[0].type == IMAP_ARG_NIL ||
	    imap_condstore_select_parse(cmd->nargs == 2 ? &cmd->args[1] : NULL,
	        &params, &err) < 0) {
		imap_session_bad(s, cmd->tag, err);
		return;
	}
	/* RFC 7162 section 3.2.5: QRESYNC must have been enabled first. */
	if (params.qresync && !(s->enabled & IMAP_ENABLED_QRESYNC)) {
		imap_condstore_select_clear(&params);
		imap_session_bad(s, cmd->tag, "ENABLE QRESYNC first");
		return;
	}
	/* RFC 3501: a failed SELECT leaves no mailbox selected either. */
	imap_select_leave(s);
	if (params.condstore)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	if (imap_select_name_in(s, arg, &name) < 0 ||
	    !imap_utf7_mailbox_valid(name, strlen(name))) {
		free(name);
		imap_condstore_select_clear(&params);
		imap_session_printf(s, "%s NO [NONEXISTENT] No such mailbox",
		    cmd->tag);
		return;
	}
	req = xcalloc(1, sizeof(*req));
	req->async.s = s;
	req->tag = xstrdup(cmd->tag);
	req->readonly = readonly;
	req->params = params;
	s->async = &req->async;
	imap_session_busy(s);
	store_view_open(s->srv->env.store, s->user, name, imap_select_opened,
	    req);
	free(name);
}

/*
 * RFC 3501 section 6.4.2: CLOSE of a read-write mailbox expunges its
 * \Deleted messages without a word (imap_store.c).
 */
void
imap_select_close(struct imap_session *s, struct imap_cmd *cmd)
{
	if (!s->sel->readonly) {
		imap_store_close(s, cmd);
		return;
	}
	imap_select_clear(s);
	imap_session_printf(s, "%s OK CLOSE completed", cmd->tag);
}

void
imap_select_unselect(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_select_clear(s);
	imap_session_printf(s, "%s OK UNSELECT completed", cmd->tag);
}
