/*
 * FETCH and UID FETCH (RFC 3501 sections 6.4.5, 6.4.8 and 7.4.2, RFC 9051
 * sections 6.4.5 and 7.5.2): the set is resolved against the session's
 * view, the store reads the messages in chunks on the I/O pool, and each
 * chunk is written once the connection's output has drained, so a large
 * FETCH holds at most one chunk in memory beyond the output bound. A FETCH
 * of only UID, FLAGS and MODSEQ is answered from the view in slices.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_condstore.h"
#include "imap/imap_fetchatt.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "mime/mime.h"
#include "net/conn.h"
#include "store/store_fetch.h"
#include "store/store_view.h"

/* Items that need the message file. */
#define FETCH_DATA_ITEMS \
	(IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_HEADER | IMAP_FETCH_RFC822_TEXT)

/* Items the shared view holds: a FETCH of only these skips the store. */
#define FETCH_FAST_ITEMS (IMAP_FETCH_FLAGS | IMAP_FETCH_UID | IMAP_FETCH_MODSEQ)

/* Messages the fast path writes per loop turn. */
#define FETCH_FAST_SLICE 2000

/* The system flags by STORE_FLAG_* bit. */
static const char *const imap_fetch_sysflags[] = {"\\Seen", "\\Answered",
    "\\Flagged", "\\Deleted", "\\Draft"};

/* A FETCH in progress: input is paused until it ends. */
struct imap_fetch_req {
	struct imap_async async; /* first */
	char *tag;
	const char *cmdname; /* "FETCH" or "UID FETCH" */
	struct imap_fetchatt att;
	unsigned what;  /* STORE_FETCH_* */
	uint32_t *uids; /* the messages to send, ascending */
	size_t n, next;
	int missing;          /* some message could not be read */
	int unknown_cte;      /* a BINARY part had an unknown encoding */
	char **binary;        /* per section: the BINARY part path, or NULL */
	int seen;             /* an item sets \Seen (not EXAMINE) */
	size_t seen_next;     /* \Seen was set below this index */
	uint64_t seen_base;   /* the view's MODSEQ before setting it */
	size_t seen_count;    /* messages it was set on */
	struct evbuffer *out; /* the conn's, while waiting for a drain */
	struct event *watch;  /* notices a session gone while waiting */
	struct imap_seqset vanished; /* VANISHED: the UID set asked */
	int fast;           /* answered from the view (FETCH_FAST_ITEMS) */
	struct event *turn; /* fast: the next slice, on the next loop turn */
};

static void imap_fetch_next(struct imap_fetch_req *req);
static void imap_fetch_fast_later(struct imap_fetch_req *req, long usec);
static void imap_fetch_on_output(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg);

/*
 * The output buffer dies with the conn, and its callbacks with it, so the
 * callback is removed only while the conn lives.
 */
static void
imap_fetch_unwatch_output(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;

	if (req->out != NULL && s != NULL && s->conn != NULL)
		evbuffer_remove_cb(req->out, imap_fetch_on_output, req);
	req->out = NULL;
}

static void
imap_fetch_req_free(struct imap_fetch_req *req)
{
	imap_fetch_unwatch_output(req);
	if (req->async.s != NULL)
		req->async.s->async = NULL;
	if (req->watch != NULL)
		event_free(req->watch);
	if (req->turn != NULL)
		event_free(req->turn);
	for (size_t k = 0; req->binary != NULL && k < req->att.nsections; k++)
		free(req->binary[k]);
	free(req->binary);
	imap_fetchatt_clear(&req->att);
	imap_seqset_clear(&req->vanished);
	free(req->uids);
	free(req->tag);
	free(req);
}

/* Ends the FETCH: the tagged reply, input resumed, the request freed. */
static void
imap_fetch_finish(struct imap_fetch_req *req, const char *fail)
{
	struct imap_session *s = req->async.s;

	/* After a BYE (the mailbox went away) nothing more is said. */
	if (s != NULL && s->conn != NULL && s->phase != IMAP_PHASE_CLOSING) {
		if (fail != NULL)
			imap_session_printf(s, "%s NO %s", req->tag, fail);
		else if (req->unknown_cte)
			imap_session_printf(s,
			    "%s NO [UNKNOWN-CTE] Cannot decode a part",
			    req->tag);
		else if (req->missing)
			imap_session_printf(s,
			    "%s NO Some messages could not be read", req->tag);
		else
			imap_session_printf(s, "%s OK %s completed", req->tag,
			    req->cmdname);
		imap_session_idle(s);
	}
	imap_fetch_req_free(req);
}

/* ------------------------------------------------------------------ */
/* Writing one message. */

/* \Recent for this session (the rule of imap_select.c). */
static int
imap_fetch_is_recent(const struct imap_selected *sel, uint32_t uid)
{
	return imap_select_is_recent(sel, uid);
}

static void
imap_fetch_put_flags(struct imap_session *s, struct evbuffer *out, uint32_t i)
{
	const struct store_view *v = s->sel->view;
	const struct store_view_msg *m = store_view_msg(v, i);
	const uint32_t *kw;
	size_t nkw = store_view_msg_keywords(v, i, &kw);
	const char *sep = "";

	evbuffer_add_printf(out, " FLAGS (");
	for (unsigned b = 0; b < 5; b++) {
		if ((m->flags & (1u << b)) == 0)
			continue;
		evbuffer_add_printf(out, "%s%s", sep, imap_fetch_sysflags[b]);
		sep = " ";
	}
	for (size_t k = 0; k < nkw; k++, sep = " ")
		evbuffer_add_printf(out, "%s%s", sep,
		    store_view_keyword(v, kw[k]));
	if ((s->enabled & IMAP_ENABLED_IMAP4REV2) == 0 &&
	    imap_fetch_is_recent(s->sel, m->uid))
		evbuffer_add_printf(out, "%s\\Recent", sep);
	evbuffer_add(out, ")", 1);
}

/* INTERNALDATE as date-time, in UTC. */
static void
imap_fetch_put_date(struct evbuffer *out, time_t t)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	evbuffer_add_printf(out,
	    " INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* " name {n}\r\n" and the bytes. */
static void
imap_fetch_put_literal(struct evbuffer *out, const char *name, const char *p,
    size_t len)
{
	evbuffer_add_printf(out, " %s {%zu}\r\n", name, len);
	evbuffer_add(out, p, len);
}

/* Whether the field name (len bytes) is one of sec's fields. */
static int
imap_fetch_field_listed(const struct imap_fetch_section *sec, const char *name,
    size_t len)
{
	for (size_t i = 0; i < sec->nfields; i++)
		if (strlen(sec->fields[i]) == len &&
		    strncasecmp(sec->fields[i], name, len) == 0)
			return 1;
	return 0;
}

/*
 * HEADER.FIELDS and HEADER.FIELDS.NOT: the matching fields of hdr as they
 * stand, each with its line end, then the empty line (RFC 3501 6.4.5).
 */
static void
imap_fetch_fields(const struct imap_fetch_section *sec, const char *hdr,
    size_t len, struct mime_buf *b)
{
	int not = sec->text == IMAP_SECTION_HEADER_FIELDS_NOT;
	struct mime_header_field f;
	size_t pos = 0;

	while (mime_header_next(hdr, len, &pos, &f) == 1) {
		size_t start = (size_t)(f.name - hdr);
		size_t end = (size_t)(f.value - hdr) + f.value_len;

		if (imap_fetch_field_listed(sec, f.name, f.name_len) == not )
			continue;
		mime_buf_add(b, hdr + start, end - start);
		mime_buf_add(b, "\r\n", 2);
	}
	mime_buf_add(b, "\r\n", 2);
}

/* "1.2.3" for the part numbers of sec. */
static void
imap_fetch_part_name(const struct imap_fetch_section *sec, char *buf,
    size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sec->nparts && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%u",
		    i > 0 ? "." : "", sec->parts[i]);
}

/*
 * Finds the bytes of sec in m: sets *start and *end (file offsets) and
 * returns 0, or -1 when the message has no such part (an empty string
 * is sent then).
 */
static int
imap_fetch_locate(const struct imap_fetch_section *sec,
    const struct store_fetch_msg *m, size_t *start, size_t *end)
{
	size_t h, b, e, p = m->prefix_size;
	char part[IMAP_SECTION_MAX_PARTS * 11 + 1];
	int r;

	imap_fetch_part_name(sec, part, sizeof(part));
	if (sec->text == IMAP_SECTION_ALL || sec->text == IMAP_SECTION_MIME) {
		if (sec->nparts == 0) {
			*start = 0, *end = m->len;
			return 0;
		}
		r = m->partmap != NULL ?
		    mime_partmap_find(m->partmap, part, &h, &b, &e) :
		    -1;
		*start = p + (sec->text == IMAP_SECTION_MIME ? h : b);
		*end = p + (sec->text == IMAP_SECTION_MIME ? b : e);
		return r;
	}
	if (sec->nparts == 0) {
		*start = sec->text == IMAP_SECTION_TEXT ? m->header_size : 0;
		*end = sec->text == IMAP_SECTION_TEXT ? m->len : m->header_size;
		return 0;
	}
	r = m->partmap != NULL ?
	    mime_partmap_find_message(m->partmap, part, &h, &b, &e) :
	    -1;
	*start = p + (sec->text == IMAP_SECTION_TEXT ? b : h);
	*end = p + (sec->text == IMAP_SECTION_TEXT ? e : b);
	return r;
}

/* One BODY[section]<partial> item. */
static void
imap_fetch_put_section(struct evbuffer *out,
    const struct imap_fetch_section *sec, const struct store_fetch_msg *m)
{
	struct mime_buf b = {0};
	size_t start = 0, end = 0;
	const char *base = m->data != NULL ? m->data : "";

	if (imap_fetch_locate(sec, m, &start, &end) < 0 || end > m->len ||
	    start > end)
		start = end = 0;
	if (sec->text == IMAP_SECTION_HEADER_FIELDS ||
	    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		imap_fetch_fields(sec, base + start, end - start, &b);
		base = b.data;
		start = 0, end = b.len;
	}
	if (sec->partial) {
		uint64_t len = end - start;
		uint64_t o = sec->origin < len ? sec->origin : len;

		start += o;
		if (sec->length < len - o)
			end = start + sec->length;
	}
	imap_fetch_put_literal(out, sec->name, base + start, end - start);
	free(b.data);
}

/*
 * One BINARY[section]<partial> or BINARY.SIZE[section] item (RFC 3516
 * section 4.2) from the bytes the store decoded: a literal8 when they
 * hold NUL. A part with an unknown encoding is left out and the FETCH
 * ends with NO [UNKNOWN-CTE].
 */
static void
imap_fetch_put_binary(struct imap_fetch_req *req, struct evbuffer *out,
    const struct imap_fetch_section *sec, const struct store_fetch_binary *b)
{
	const char *p = b->data != NULL ? b->data : "";
	size_t start = 0, len = b->len;

	if (b->status == STORE_FETCH_BINARY_UNKNOWN_CTE) {
		req->unknown_cte = 1;
		return;
	}
	if (sec->kind == IMAP_FETCH_KIND_BINARY_SIZE) {
		evbuffer_add_printf(out, " %s %zu", sec->name, len);
		return;
	}
	if (sec->partial) {
		start = sec->origin < len ? (size_t)sec->origin : len;
		len -= start;
		if (sec->length < len)
			len = (size_t)sec->length;
	}
	evbuffer_add_printf(out, " %s %s{%zu}\r\n", sec->name,
	    memchr(p + start, '\0', len) != NULL ? "~" : "", len);
	evbuffer_add(out, p + start, len);
}

/* The literal items of RFC822, RFC822.HEADER and RFC822.TEXT. */
static void
imap_fetch_put_rfc822(struct evbuffer *out, unsigned flags,
    const struct store_fetch_msg *m)
{
	size_t hs = m->header_size < m->len ? m->header_size : m->len;

	if (flags & IMAP_FETCH_RFC822_HEADER)
		imap_fetch_put_literal(out, "RFC822.HEADER", m->data, hs);
	if (flags & IMAP_FETCH_RFC822_TEXT)
		imap_fetch_put_literal(out, "RFC822.TEXT", m->data + hs,
		    m->len - hs);
	if (flags & IMAP_FETCH_RFC822)
		imap_fetch_put_literal(out, "RFC822", m->data, m->len);
}

static void
imap_fetch_put_cached(struct evbuffer *out, const char *name, const char *v)
{
	evbuffer_add_printf(out, " %s %s", name, v != NULL ? v : "NIL");
}

/*
 * "* n FETCH (...)" for one message; UID first, then the simple items,
 * then the sections in the order asked.
 */
static void
imap_fetch_put_msg(struct imap_fetch_req *req, const struct store_fetch_msg *m)
{
	struct imap_session *s = req->async.s;
	struct evbuffer *out = conn_output(s->conn);
	/* A message that got \Seen reports it (RFC 3501 section 6.4.5). */
	unsigned f = req->att.flags | (req->seen ? IMAP_FETCH_FLAGS : 0);
	int64_t i = store_view_find(s->sel->view, m->uid);

	if (i < 0)
		return; /* expunged meanwhile; EXPUNGE comes later */
	evbuffer_add_printf(out, "* %u FETCH (UID %u",
	    imap_select_seq(s, m->uid), m->uid);
	if (f & IMAP_FETCH_FLAGS)
		imap_fetch_put_flags(s, out, (uint32_t)i);
	if (f & IMAP_FETCH_MODSEQ)
		evbuffer_add_printf(out, " MODSEQ (%llu)",
		    (unsigned long long)store_view_msg(s->sel->view,
		        (uint32_t)i)
		        ->modseq);
	if (f & IMAP_FETCH_INTERNALDATE)
		imap_fetch_put_date(out, m->internaldate);
	if (f & IMAP_FETCH_RFC822_SIZE)
		evbuffer_add_printf(out, " RFC822.SIZE %llu",
		    (unsigned long long)m->size);
	if (f & IMAP_FETCH_ENVELOPE)
		imap_fetch_put_cached(out, "ENVELOPE", m->envelope);
	if (f & IMAP_FETCH_BODY)
		imap_fetch_put_cached(out, "BODY", m->body);
	if (f & IMAP_FETCH_BODYSTRUCTURE)
		imap_fetch_put_cached(out, "BODYSTRUCTURE", m->bodystructure);
	imap_fetch_put_rfc822(out, f, m);
	for (size_t k = 0; k < req->att.nsections; k++) {
		if (req->binary != NULL && req->binary[k] != NULL)
			imap_fetch_put_binary(req, out, &req->att.sections[k],
			    &m->binary[k]);
		else
			imap_fetch_put_section(out, &req->att.sections[k], m);
	}
	evbuffer_add(out, ")\r\n", 3);
}

/* ------------------------------------------------------------------ */
/* The chunk loop. */

static int
imap_fetch_over_limit(struct imap_session *s)
{
	size_t limit = s->srv->set.output_limit;

	return limit > 0 &&
	    evbuffer_get_length(conn_output(s->conn)) > limit / 2;
}

/* Stops waiting for a drain. */
static void
imap_fetch_unwait(struct imap_fetch_req *req)
{
	imap_fetch_unwatch_output(req);
	event_del(req->watch);
}

/* The output changed: go on once it has drained. */
static void
imap_fetch_on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct imap_fetch_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || info->n_deleted == 0 ||
	    imap_fetch_over_limit(s))
		return;
	imap_fetch_unwait(req);
	/* The fast path writes; not from inside this buffer's callback. */
	if (req->fast)
		imap_fetch_fast_later(req, 0);
	else
		imap_fetch_next(req);
}

/*
 * While waiting for a drain no store call is in flight, so a session that
 * ends would never tell us; this timer looks once a second.
 */
static void
imap_fetch_on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct imap_fetch_req *req = arg;

	if (req->async.s == NULL || req->async.s->conn == NULL)
		imap_fetch_finish(req, NULL);
}

static void
imap_fetch_wait(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;
	struct timeval sec = {1, 0};

	req->out = conn_output(s->conn);
	evbuffer_add_cb(req->out, imap_fetch_on_output, req);
	if (req->watch == NULL)
		req->watch = event_new(s->srv->base, -1, EV_PERSIST,
		    imap_fetch_on_watch, req);
	event_add(req->watch, &sec);
}

/* ------------------------------------------------------------------ */
/* The fast path: UID, FLAGS and MODSEQ from the view, on the loop. */

/* The lines of one slice, added to the output at once. */
struct imap_fetch_buf {
	char *p;
	size_t len, cap;
};

/* One message of a slice: its UID, view index and sequence number. */
struct imap_fetch_fast_msg {
	uint32_t uid, i, seq;
};

static void
imap_fetch_buf_add(struct imap_fetch_buf *b, const char *p, size_t len)
{
	if (b->cap - b->len < len) {
		while (b->cap - b->len < len)
			b->cap = b->cap > 0 ? b->cap * 2 : 64 * 1024;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void
imap_fetch_buf_str(struct imap_fetch_buf *b, const char *str)
{
	imap_fetch_buf_add(b, str, strlen(str));
}

/* v in decimal; a printf per item costs more than the rest together. */
static void
imap_fetch_buf_num(struct imap_fetch_buf *b, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	imap_fetch_buf_add(b, tmp + sizeof(tmp) - n, n);
}

/* " FLAGS (...)" of message i, byte for byte as imap_fetch_put_flags(). */
static void
imap_fetch_fast_flags(struct imap_session *s, struct imap_fetch_buf *b,
    uint32_t i)
{
	const struct store_view *v = s->sel->view;
	const struct store_view_msg *m = store_view_msg(v, i);
	const uint32_t *kw;
	size_t nkw = store_view_msg_keywords(v, i, &kw);
	int first = 1;

	imap_fetch_buf_str(b, " FLAGS (");
	for (unsigned f = 0; f < 5; f++) {
		if ((m->flags & (1u << f)) == 0)
			continue;
		imap_fetch_buf_str(b, first ? "" : " ");
		imap_fetch_buf_str(b, imap_fetch_sysflags[f]);
		first = 0;
	}
	for (size_t k = 0; k < nkw; k++, first = 0) {
		imap_fetch_buf_str(b, first ? "" : " ");
		imap_fetch_buf_str(b, store_view_keyword(v, kw[k]));
	}
	if ((s->enabled & IMAP_ENABLED_IMAP4REV2) == 0 &&
	    imap_select_is_recent(s->sel, m->uid))
		imap_fetch_buf_str(b, first ? "\\Recent" : " \\Recent");
	imap_fetch_buf_add(b, ")", 1);
}

/* The line of one message: the items in imap_fetch_put_msg()'s order. */
static void
imap_fetch_fast_line(struct imap_fetch_req *req, struct imap_fetch_buf *b,
    const struct imap_fetch_fast_msg *fm)
{
	struct imap_session *s = req->async.s;

	imap_fetch_buf_str(b, "* ");
	imap_fetch_buf_num(b, fm->seq);
	imap_fetch_buf_str(b, " FETCH (UID ");
	imap_fetch_buf_num(b, fm->uid);
	if (req->att.flags & IMAP_FETCH_FLAGS)
		imap_fetch_fast_flags(s, b, fm->i);
	if (req->att.flags & IMAP_FETCH_MODSEQ) {
		imap_fetch_buf_str(b, " MODSEQ (");
		imap_fetch_buf_num(b,
		    store_view_msg(s->sel->view, fm->i)->modseq);
		imap_fetch_buf_add(b, ")", 1);
	}
	imap_fetch_buf_add(b, ")\r\n", 3);
}

/*
 * The expunges withheld from the client below fm's UID: its sequence
 * number less the view's. It never falls as the UID grows.
 */
static uint32_t
imap_fetch_fast_gap(struct imap_session *s,
    const struct imap_fetch_fast_msg *fm)
{
	return imap_select_seq(s, fm->uid) - fm->i - 1;
}

/*
 * Sets the sequence numbers of msgs[lo..hi], whose ends have the gaps glo
 * and ghi. imap_select_seq() walks the expunge window, so it is asked only
 * where the gap changes, found by halving: twice per slice when no expunge
 * is withheld.
 */
static void
imap_fetch_fast_seqs(struct imap_session *s, struct imap_fetch_fast_msg *msgs,
    size_t lo, size_t hi, uint32_t glo, uint32_t ghi)
{
	size_t mid = lo + (hi - lo) / 2;
	uint32_t gmid;

	if (glo == ghi || hi - lo <= 1) {
		for (size_t k = lo; k <= hi; k++)
			msgs[k].seq = msgs[k].i + 1 + (k == hi ? ghi : glo);
		return;
	}
	gmid = imap_fetch_fast_gap(s, &msgs[mid]);
	imap_fetch_fast_seqs(s, msgs, lo, mid, glo, gmid);
	imap_fetch_fast_seqs(s, msgs, mid, hi, gmid, ghi);
}

/*
 * The messages of the slice still in the view, looked up afresh: a
 * message expunged since the FETCH began is left out (RFC 2180 section
 * 4.1.3 lets a server omit it; its EXPUNGE comes after the FETCH).
 */
static size_t
imap_fetch_fast_collect(struct imap_fetch_req *req, size_t end,
    struct imap_fetch_fast_msg *msgs)
{
	const struct store_view *v = req->async.s->sel->view;
	size_t k = 0;

	for (size_t j = req->next; j < end; j++) {
		int64_t x = store_view_find(v, req->uids[j]);

		if (x < 0)
			continue;
		msgs[k].uid = req->uids[j];
		msgs[k].i = (uint32_t)x;
		k++;
	}
	if (k > 0)
		imap_fetch_fast_seqs(req->async.s, msgs, 0, k - 1,
		    imap_fetch_fast_gap(req->async.s, &msgs[0]),
		    imap_fetch_fast_gap(req->async.s, &msgs[k - 1]));
	return k;
}

static void
imap_fetch_on_turn(evutil_socket_t fd, short what, void *arg)
{
	imap_fetch_next(arg);
}

/*
 * The next slice runs on the next loop turn, after the loop has polled,
 * so other connections are served in between.
 */
static void
imap_fetch_fast_later(struct imap_fetch_req *req, long usec)
{
	struct timeval tv = {0, usec};

	if (req->turn == NULL)
		req->turn = evtimer_new(req->async.s->srv->base,
		    imap_fetch_on_turn, req);
	evtimer_add(req->turn, &tv);
}

/*
 * Writes up to FETCH_FAST_SLICE messages with one evbuffer_add(), then
 * ends, waits for the output to drain, or goes on next turn.
 */
static void
imap_fetch_fast_slice(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;
	size_t end = req->n - req->next > FETCH_FAST_SLICE ?
	    req->next + FETCH_FAST_SLICE :
	    req->n;
	struct imap_fetch_fast_msg *msgs;
	struct imap_fetch_buf b = {0};
	size_t k;

	if (s->sel == NULL || !store_view_full(s->sel->view)) {
		imap_fetch_finish(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	/*
	 * While the index's tombstones are read (imap_select.c), the
	 * withheld expunges are not known, nor the client's numbers.
	 */
	if (s->sel->catchup != NULL) {
		imap_fetch_fast_later(req, 1000);
		return;
	}
	msgs = xcalloc(end - req->next, sizeof(*msgs));
	k = imap_fetch_fast_collect(req, end, msgs);
	for (size_t j = 0; j < k; j++)
		imap_fetch_fast_line(req, &b, &msgs[j]);
	if (b.len > 0)
		evbuffer_add(conn_output(s->conn), b.p, b.len);
	free(b.p);
	free(msgs);
	req->next = end;
	if (req->next >= req->n)
		imap_fetch_finish(req, NULL);
	else if (imap_fetch_over_limit(s))
		imap_fetch_wait(req);
	else
		imap_fetch_fast_later(req, 0);
}

static void
imap_fetch_got(struct store_fetch_result *res, void *arg)
{
	struct imap_fetch_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || res->status != STORE_VIEW_OK) {
		store_fetch_result_free(&res);
		imap_fetch_finish(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	for (size_t i = 0; i < res->n; i++) {
		if (res->msgs[i].missing)
			req->missing = 1;
		else
			imap_fetch_put_msg(req, &res->msgs[i]);
	}
	req->next += res->n;
	store_fetch_result_free(&res);
	if (req->next < req->n && imap_fetch_over_limit(s)) {
		imap_fetch_wait(req);
		return;
	}
	imap_fetch_next(req);
}

/* Reads the next chunk. */
static void
imap_fetch_read(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;

	store_fetch_sections(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->uids + req->next,
	    req->n - req->next, req->what, (const char *const *)req->binary,
	    req->binary != NULL ? req->att.nsections : 0, imap_fetch_got, req);
}

/*
 * This FETCH reports the flags it set, so the session need not hear them
 * again as updates: when the client was current and every MODSEQ since
 * is ours, it is current still.
 */
static void
imap_fetch_seen_known(struct imap_fetch_req *req)
{
	struct imap_selected *sel = req->async.s->sel;
	uint64_t now = store_view_highestmodseq(sel->view);

	if (sel->modseq == req->seen_base &&
	    now == req->seen_base + req->seen_count)
		sel->modseq = now;
}

static void
imap_fetch_seen_done(enum store_view_status status, void *arg)
{
	struct imap_fetch_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s == NULL || s->conn == NULL || status != STORE_VIEW_OK) {
		imap_fetch_finish(req, "[UNAVAILABLE] Cannot set \\Seen");
		return;
	}
	imap_fetch_seen_known(req);
	imap_fetch_read(req);
}

/*
 * RFC 3501 section 6.4.5: BODY[] without .PEEK sets \Seen. It is set for
 * the next chunk's messages before they are read, so their FETCH carries
 * the new flags. Returns 1 when a store call is in flight, else 0.
 */
static int
imap_fetch_set_seen(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;
	const struct store_view *v = s->sel->view;
	size_t end = req->n - req->next < STORE_FETCH_MAX_MSGS ?
	    req->n :
	    req->next + STORE_FETCH_MAX_MSGS;
	uint32_t *uids;
	size_t k = 0;

	if (!req->seen || req->seen_next > req->next)
		return 0;
	uids = xcalloc(end - req->next, sizeof(*uids));
	for (size_t i = req->next; i < end; i++) {
		int64_t x = store_view_find(v, req->uids[i]);

		if (x >= 0 &&
		    (store_view_msg(v, (uint32_t)x)->flags & STORE_FLAG_SEEN) ==
		        0)
			uids[k++] = req->uids[i];
	}
	req->seen_next = end;
	req->seen_base = store_view_highestmodseq(v);
	req->seen_count = k;
	if (k > 0)
		store_flags_set_seen(s->srv->env.store, s->user,
		    store_view_mailbox_id(v), uids, k, imap_fetch_seen_done,
		    req);
	free(uids);
	return k > 0;
}

static void
imap_fetch_next(struct imap_fetch_req *req)
{
	struct imap_session *s = req->async.s;

	if (req->next >= req->n || s == NULL || s->conn == NULL ||
	    s->phase == IMAP_PHASE_CLOSING) {
		imap_fetch_finish(req, NULL);
		return;
	}
	if (req->fast)
		imap_fetch_fast_slice(req);
	else if (!imap_fetch_set_seen(req))
		imap_fetch_read(req);
}

/* ------------------------------------------------------------------ */
/* Parsing and resolving the command. */

/* The store columns the items need. */
static unsigned
imap_fetch_what(const struct imap_fetchatt *att)
{
	unsigned what = 0;

	if (att->flags & IMAP_FETCH_ENVELOPE)
		what |= STORE_FETCH_ENVELOPE;
	if (att->flags & IMAP_FETCH_BODY)
		what |= STORE_FETCH_BODY;
	if (att->flags & IMAP_FETCH_BODYSTRUCTURE)
		what |= STORE_FETCH_BODYSTRUCTURE;
	if (att->flags & FETCH_DATA_ITEMS)
		what |= STORE_FETCH_DATA;
	if (att->nsections > 0)
		what |= STORE_FETCH_DATA | STORE_FETCH_PARTMAP;
	return what;
}

/*
 * The part path of each BINARY section ("" for the whole message) and
 * NULL for the others, for store_fetch_sections(); NULL when none is.
 */
static char **
imap_fetch_binary_parts(const struct imap_fetchatt *att)
{
	char **parts = NULL;

	for (size_t k = 0; k < att->nsections; k++) {
		const struct imap_fetch_section *sec = &att->sections[k];
		char path[IMAP_SECTION_MAX_PARTS * 11 + 1];

		if (sec->kind == IMAP_FETCH_KIND_BODY)
			continue;
		if (parts == NULL)
			parts = xcalloc(att->nsections, sizeof(*parts));
		imap_fetch_part_name(sec, path, sizeof(path));
		parts[k] = xstrdup(path);
	}
	return parts;
}

/* Whether an item sets \Seen: RFC822, RFC822.TEXT, BODY[...]. */
static int
imap_fetch_sets_seen(const struct imap_fetchatt *att)
{
	if (att->flags & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
		return 1;
	for (size_t k = 0; k < att->nsections; k++)
		if (!att->sections[k].peek &&
		    att->sections[k].kind != IMAP_FETCH_KIND_BINARY_SIZE)
			return 1;
	return 0;
}

/*
 * Resolves the set into the UIDs to send, against the message list the
 * client knows (imap_select_resolve()), keeping those CHANGEDSINCE lets
 * through. Returns 0, or -1 for a bad set (BAD).
 */
static int
imap_fetch_resolve(struct imap_session *s, struct imap_fetch_req *req,
    const struct imap_seqset *set, int uid)
{
	const struct store_view *v = s->sel->view;
	size_t n;

	if (imap_search_resolve(s, set, uid, &req->uids, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int64_t x = store_view_find(v, req->uids[i]);

		if (req->att.changedsince &&
		    store_view_msg(v, (uint32_t)x)->modseq <= req->att.modseq)
			continue;
		req->uids[req->n++] = req->uids[i];
	}
	return 0;
}

/* Checks the parsed items; NULL, or the text for BAD. */
static const char *
imap_fetch_check(struct imap_session *s, const struct imap_fetchatt *att,
    int uid)
{
	/* RFC 7162 section 3.2.6: UID FETCH only, once QRESYNC is on. */
	if (att->vanished && (!uid || !(s->enabled & IMAP_ENABLED_QRESYNC)))
		return "VANISHED needs UID FETCH and QRESYNC";
	return NULL;
}

/* Parses "set items..." at args; 0 with req filled, or -1 after BAD. */
static int
imap_fetch_parse(struct imap_session *s, const char *tag,
    struct imap_fetch_req *req, const struct imap_arg *args, size_t nargs,
    int uid)
{
	struct imap_seqset set = {0};
	const char *err = "Expected a sequence set and items";
	int r = -1;

	if (nargs < 2 || args[0].type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(args[0].str, args[0].len, &set) < 0)
		goto out;
	if (imap_fetchatt_parse(args + 1, nargs - 1, &req->att, &err) < 0 ||
	    (err = imap_fetch_check(s, &req->att, uid)) != NULL)
		goto out;
	err = "Invalid message number";
	if (imap_fetch_resolve(s, req, &set, uid) < 0 ||
	    (req->att.vanished &&
	        imap_seqset_resolve(&set, store_view_uidnext(s->sel->view) - 1,
	            1, &req->vanished) < 0))
		goto out;
	/* RFC 7162 section 3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE. */
	if (req->att.flags & IMAP_FETCH_MODSEQ)
		imap_condstore_enable(s);
	r = 0;
out:
	if (r < 0)
		imap_session_bad(s, tag, err);
	imap_seqset_clear(&set);
	return r;
}

/*
 * RFC 7162 section 3.2.6: the UIDs of the set expunged since CHANGEDSINCE,
 * before the FETCH responses.
 */
static void
imap_fetch_vanished(const struct store_expunge *list, size_t n,
    enum store_view_status status, void *arg)
{
	struct imap_fetch_req *req = arg;
	struct imap_session *s = req->async.s;
	uint32_t *uids;
	size_t k = 0;

	if (s == NULL || s->conn == NULL || s->sel == NULL ||
	    status != STORE_VIEW_OK) {
		imap_fetch_finish(req, "[UNAVAILABLE] Cannot read the mailbox");
		return;
	}
	uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		if (imap_seqset_contains(&req->vanished, list[i].uid))
			uids[k++] = list[i].uid;
	imap_condstore_put_vanished(s, 1, uids, k);
	free(uids);
	imap_fetch_next(req);
}

static void
imap_fetch_start(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int uid)
{
	struct imap_fetch_req *req = xcalloc(1, sizeof(*req));

	req->tag = xstrdup(cmd->tag);
	req->cmdname = uid ? "UID FETCH" : "FETCH";
	if (imap_fetch_parse(s, cmd->tag, req, args, nargs, uid) < 0) {
		imap_fetch_req_free(req);
		return;
	}
	req->fast = (req->att.flags & ~FETCH_FAST_ITEMS) == 0 &&
	    req->att.nsections == 0;
	req->what = imap_fetch_what(&req->att);
	req->binary = imap_fetch_binary_parts(&req->att);
	req->seen = !s->sel->readonly && imap_fetch_sets_seen(&req->att);
	req->async.s = s;
	s->async = &req->async;
	imap_session_busy(s);
	if (req->att.vanished)
		imap_condstore_expunged(s->srv->env.store, s->user,
		    s->sel->view, req->att.modseq, imap_fetch_vanished, req);
	else
		imap_fetch_next(req);
}

void
imap_fetch_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_fetch_start(s, cmd, cmd->args, cmd->nargs, 0);
}

/*
 * UID FETCH here; UID STORE and UID EXPUNGE in imap_store.c, UID COPY and
 * UID MOVE in imap_copy.c.
 */
void
imap_fetch_uid(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *a = cmd->args;

	imap_select_uid_updates(s);
	if (cmd->nargs >= 1 && imap_arg_atom_is(a, "FETCH")) {
		imap_fetch_start(s, cmd, a + 1, cmd->nargs - 1, 1);
		return;
	}
	if (cmd->nargs >= 1 && imap_arg_atom_is(a, "STORE")) {
		imap_store_uid_store(s, cmd, a + 1, cmd->nargs - 1);
		return;
	}
	if (cmd->nargs >= 1 && imap_arg_atom_is(a, "SEARCH")) {
		imap_search_uid(s, cmd, a + 1, cmd->nargs - 1);
		return;
	}
	if (cmd->nargs >= 1 && imap_arg_atom_is(a, "EXPUNGE")) {
		imap_store_uid_expunge(s, cmd, a + 1, cmd->nargs - 1);
		return;
	}
	if (cmd->nargs >= 1 &&
	    (imap_arg_atom_is(a, "COPY") || imap_arg_atom_is(a, "MOVE"))) {
		imap_copy_uid(s, cmd, a + 1, cmd->nargs - 1,
		    imap_arg_atom_is(a, "MOVE"));
		return;
	}
	if (cmd->nargs >= 1 &&
	    (imap_arg_atom_is(a, "SORT") || imap_arg_atom_is(a, "THREAD"))) {
		imap_sort_uid(s, cmd, a + 1, cmd->nargs - 1,
		    imap_arg_atom_is(a, "THREAD"));
		return;
	}
	imap_session_bad(s, cmd->tag, "Unknown UID command");
}
