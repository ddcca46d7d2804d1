/*
 * SEARCH tests that need the index or the message (RFC 3501 / RFC 9051
 * section 6.4.4): LARGER/SMALLER, the INTERNALDATE and Date: keys, header
 * fields (RFC 2047 decoded) and body text (RFC 2045 section 6 encodings
 * undone), as a user task on the I/O pool in bounded chunks.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_search.h"

struct store_search_job {
	struct store_task task; /* first */
	int64_t mailbox_id;
	struct store_search_key keys[STORE_SEARCH_MAX_KEYS];
	size_t nkeys;
	int need_file;
	uint32_t *uids;
	size_t n;
	store_search_cb cb;
	void *arg;
	struct store_search_result *res;
};

int
store_search_contains(const char *hay, size_t hlen, const char *needle,
    size_t nlen)
{
	if (nlen == 0)
		return 1;
	for (size_t i = 0; i + nlen <= hlen; i++) {
		size_t k = 0;

		while (k < nlen &&
		    tolower((unsigned char)hay[i + k]) ==
		        tolower((unsigned char)needle[k]))
			k++;
		if (k == nlen)
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Header fields. */

/* Whether field (the raw value) decodes to something holding key's str. */
static int
store_search_value(const struct store_search_key *k,
    const struct mime_header_field *f)
{
	char *unfolded = mime_header_unfold(f->value, f->value_len);
	char *dec = mime_rfc2047_decode(unfolded, strlen(unfolded));
	int r = store_search_contains(dec, strlen(dec), k->str, k->len);

	free(unfolded);
	free(dec);
	return r;
}

/* HEADER: any field of that name; TEXT (field NULL): any field at all. */
static int
store_search_header(const struct store_search_key *k, const char *hdr,
    size_t len)
{
	struct mime_header_field f;
	size_t pos = 0;

	while (mime_header_next(hdr, len, &pos, &f) == 1) {
		if (k->field == NULL) {
			if (store_search_contains(f.name, f.name_len, k->str,
			        k->len) ||
			    store_search_value(k, &f))
				return 1;
			continue;
		}
		if (f.name_len == strlen(k->field) &&
		    strncasecmp(f.name, k->field, f.name_len) == 0 &&
		    store_search_value(k, &f))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Body text. */

static int
store_search_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 2045 section 6.7, leniently: bad escapes stay as they are. */
static void
store_search_qp(const char *p, size_t len, struct mime_buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] != '=') {
			mime_buf_addc(out, p[i]);
			continue;
		}
		if (i + 1 < len && (p[i + 1] == '\r' || p[i + 1] == '\n')) {
			i += p[i + 1] == '\r' && i + 2 < len &&
			        p[i + 2] == '\n' ?
			    2 :
			    1;
			continue;
		}
		hi = i + 2 < len ? store_search_hex((unsigned char)p[i + 1]) :
		                   -1;
		lo = i + 2 < len ? store_search_hex((unsigned char)p[i + 2]) :
		                   -1;
		if (hi < 0 || lo < 0) {
			mime_buf_addc(out, '=');
			continue;
		}
		mime_buf_addc(out, (char)(hi << 4 | lo));
		i += 2;
	}
}

/* RFC 2045 section 6.8, leniently: characters outside the alphabet skip. */
static void
store_search_b64(const char *p, size_t len, struct mime_buf *out)
{
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len && p[i] != '='; i++) {
		int v = base64_value((unsigned char)p[i]);

		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			mime_buf_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
}

/*
 * Whether the part whose MIME header is hdr holds text we search, and
 * its encoding: 'q', 'b' or 0 (as is).
 */
static int
store_search_part_kind(const char *hdr, size_t len, int *enc)
{
	char *ct = mime_header_get(hdr, len, "Content-Type");
	char *cte = mime_header_get(hdr, len, "Content-Transfer-Encoding");
	struct mime_params params = {0};
	char *type = ct != NULL ? mime_param_parse(ct, &params) : NULL;
	int text = type == NULL || type[0] == '\0' ||
	    strncasecmp(type, "text/", 5) == 0;

	*enc = 0;
	if (cte != NULL && strcasecmp(cte, "quoted-printable") == 0)
		*enc = 'q';
	else if (cte != NULL && strcasecmp(cte, "base64") == 0)
		*enc = 'b';
	mime_param_deinit(&params);
	free(type);
	free(ct);
	free(cte);
	return text;
}

/*
 * Whether one leaf part's decoded text holds key's str.
 * TODO(search-charset): text in a charset other than UTF-8 or US-ASCII is
 * compared as raw bytes, so a UTF-8 search for a word with an umlaut misses
 * it in an ISO-8859-1 part; convert the part to UTF-8 (iconv, as mime_rfc2047
 * does) before comparing.
 */
static int
store_search_part(const struct store_search_key *k, const char *msg, size_t hdr,
    size_t body, size_t end)
{
	struct mime_buf buf = {0};
	int enc, r;

	if (!store_search_part_kind(msg + hdr, body - hdr, &enc))
		return 0;
	if (enc == 0)
		return store_search_contains(msg + body, end - body, k->str,
		    k->len);
	if (enc == 'q')
		store_search_qp(msg + body, end - body, &buf);
	else
		store_search_b64(msg + body, end - body, &buf);
	r = store_search_contains(buf.data != NULL ? buf.data : "", buf.len,
	    k->str, k->len);
	free(buf.data);
	return r;
}

/* BODY: walks the part map's entities, skipping the whole message ("0"). */
static int
store_search_body(const struct store_search_key *k, const char *msg, size_t len,
    const char *partmap)
{
	const char *line = partmap;

	while (line != NULL && *line != '\0') {
		char section[64];
		size_t hdr, body, end;

		if (sscanf(line, "%63s %zu %zu %zu", section, &hdr, &body,
		        &end) == 4 &&
		    strcmp(section, "0") != 0 && hdr <= body && body <= end &&
		    end <= len && store_search_part(k, msg, hdr, body, end))
			return 1;
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return 0;
}

uint64_t
store_search_message(const struct store_search_key *keys, size_t nkeys,
    const char *msg, size_t len, const char *partmap)
{
	size_t hlen = mime_header_size(msg, len);
	uint64_t bits = 0;

	for (size_t i = 0; i < nkeys && i < STORE_SEARCH_MAX_KEYS; i++) {
		const struct store_search_key *k = &keys[i];
		int r = 0;

		if (k->kind == STORE_SEARCH_HEADER)
			r = store_search_header(k, msg, hlen);
		else if (k->kind == STORE_SEARCH_BODY)
			r = store_search_body(k, msg, len, partmap);
		else if (k->kind == STORE_SEARCH_TEXT)
			r = store_search_header(k, msg, hlen) ||
			    store_search_body(k, msg, len, partmap);
		if (r)
			bits |= (uint64_t)1 << i;
	}
	return bits;
}

/* ------------------------------------------------------------------ */
/* Rows and files, on the worker. */

/* value vs a day starting at day (unix time), or bytes for SIZE. */
static int
store_search_cmp(enum store_search_cmp cmp, int64_t value, int64_t num, int day)
{
	switch (cmp) {
	case STORE_SEARCH_LT:
		return value < num;
	case STORE_SEARCH_EQ:
		return value >= num && value < num + 86400;
	case STORE_SEARCH_GE:
		return value >= num;
	case STORE_SEARCH_GT:
		return day ? value >= num + 86400 : value > num;
	}
	return 0;
}

/* The bits of the keys the row alone answers. */
static uint64_t
store_search_row(struct store_search_job *j, sqlite3_stmt *st)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < j->nkeys; i++) {
		const struct store_search_key *k = &j->keys[i];
		int r = 0;

		if (k->kind == STORE_SEARCH_SIZE)
			r = store_search_cmp(k->cmp,
			    sqlite3_column_int64(st, 3), k->num, 0);
		else if (k->kind == STORE_SEARCH_DATE)
			r = store_search_cmp(k->cmp,
			    sqlite3_column_int64(st, 4), k->num, 1);
		else if (k->kind == STORE_SEARCH_SENTDATE &&
		    sqlite3_column_type(st, 7) != SQLITE_NULL)
			r = store_search_cmp(k->cmp,
			    sqlite3_column_int64(st, 7), k->num, 1);
		if (r)
			bits |= (uint64_t)1 << i;
	}
	return bits;
}

/* Tests the message file of the row; returns its size, or -1. */
static long
store_search_file(struct store_search_job *j, const char *folder,
    sqlite3_stmt *st, struct store_search_msg *m)
{
	const char *file = (const char *)sqlite3_column_text(st, 0);
	const char *partmap = (const char *)sqlite3_column_text(st, 6);
	size_t prefix = (size_t)sqlite3_column_int64(st, 5);
	int in_cur = sqlite3_column_int(st, 1);
	char letters[8], *path, *data = NULL;
	size_t len = 0;
	int r;

	store_maildir_flag_letters((unsigned)sqlite3_column_int(st, 2),
	    letters);
	path = xasprintf("%s/%s%s%s/%s%s%s", j->task.user->dir, folder,
	    folder[0] != '\0' ? "/" : "", in_cur ? "cur" : "new",
	    file != NULL ? file : "", in_cur ? ":2," : "",
	    in_cur ? letters : "");
	r = store_maildir_read(path, &data, &len);
	if (r < 0)
		log_warn("event=store op=search uid=%u error=\"%s\"", m->uid,
		    strerror(errno));
	else if (prefix <= len)
		m->match |=
		    store_search_message(j->keys, j->nkeys, data + prefix,
		        len - prefix, partmap != NULL ? partmap : "");
	free(path);
	free(data);
	return r < 0 ? -1 : (long)len;
}

/* The folder of the mailbox, relative to the user's directory. */
static char *
store_search_folder(sqlite3 *db, int64_t mailbox_id)
{
	sqlite3_stmt *st;
	char *dir = NULL;

	if (sqlite3_prepare_v2(db, "SELECT dir FROM mailbox WHERE id = ?", -1,
	        &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		dir = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return dir;
}

/* Tests one message; returns the file bytes read, or -1 on an index error. */
static long
store_search_one(struct store_search_job *j, const char *folder,
    sqlite3_stmt *st, struct store_search_msg *m)
{
	long got;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, m->uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		m->missing = 1;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return -1;
	m->match = store_search_row(j, st);
	if (!j->need_file)
		return 0;
	got = store_search_file(j, folder, st, m);
	m->missing = got < 0;
	return got < 0 ? 0 : got;
}

static int
store_search_rows(struct store_search_job *j, sqlite3 *db, const char *folder)
{
	struct store_search_result *res = j->res;
	size_t bytes = 0;
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT file, in_cur, flags, size, internaldate, prefix_size,"
	        " partmap, date_sent FROM message"
	        " WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	res->msgs = xcalloc(j->n ? j->n : 1, sizeof(*res->msgs));
	while (res->n < j->n && res->n < STORE_SEARCH_MAX_MSGS &&
	    bytes < STORE_SEARCH_MAX_BYTES) {
		struct store_search_msg *m = &res->msgs[res->n];
		long got;

		m->uid = j->uids[res->n++];
		got = store_search_one(j, folder, st, m);
		if (got < 0) {
			rc = -1;
			break;
		}
		bytes += (size_t)got;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Worker: one read transaction, so the rows agree. */
static void
store_search_run(struct store_task *t, sqlite3 *db)
{
	struct store_search_job *j = (struct store_search_job *)t;
	char *folder;

	if (db == NULL ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return;
	folder = store_search_folder(db, j->mailbox_id);
	if (folder != NULL && store_search_rows(j, db, folder) == 0)
		j->res->status = STORE_VIEW_OK;
	else
		log_error("event=store op=search error=\"%s\"",
		    sqlite3_errmsg(db));
	free(folder);
	store_index_rollback(db);
}

static void
store_search_job_free(struct store_search_job *j)
{
	for (size_t i = 0; i < j->nkeys; i++) {
		free((char *)j->keys[i].field);
		free((char *)j->keys[i].str);
	}
	free(j->uids);
	free(j);
}

static void
store_search_done(struct store_task *t)
{
	struct store_search_job *j = (struct store_search_job *)t;
	struct store_search_result *res = j->res;

	if (res->status != STORE_VIEW_OK) {
		store_search_result_free(&res);
		res = xcalloc(1, sizeof(*res));
		res->status = STORE_VIEW_IO;
	}
	j->cb(res, j->arg);
	store_search_job_free(j);
}

/* Copies a key; strings may hold NUL, so they are copied by length. */
static void
store_search_key_copy(struct store_search_key *dst,
    const struct store_search_key *src)
{
	char *s = xmalloc(src->len + 1);

	*dst = *src;
	if (src->len > 0)
		memcpy(s, src->str, src->len);
	s[src->len] = '\0';
	dst->str = s;
	dst->field = src->field != NULL ? xstrdup(src->field) : NULL;
}

void
store_search(struct store *store, const char *user, int64_t mailbox_id,
    const struct store_search_key *keys, size_t nkeys, const uint32_t *uids,
    size_t n, store_search_cb cb, void *arg)
{
	struct store_search_job *j = xcalloc(1, sizeof(*j));

	if (nkeys > STORE_SEARCH_MAX_KEYS)
		nkeys = STORE_SEARCH_MAX_KEYS;
	if (n > STORE_SEARCH_MAX_MSGS)
		n = STORE_SEARCH_MAX_MSGS;
	for (size_t i = 0; i < nkeys; i++) {
		store_search_key_copy(&j->keys[i], &keys[i]);
		if (keys[i].kind >= STORE_SEARCH_HEADER)
			j->need_file = 1;
	}
	j->nkeys = nkeys;
	j->mailbox_id = mailbox_id;
	j->uids = xcalloc(n ? n : 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->cb = cb;
	j->arg = arg;
	j->res = xcalloc(1, sizeof(*j->res));
	j->res->status = STORE_VIEW_IO;
	j->task.run = store_search_run;
	j->task.done = store_search_done;
	store_task_submit(store, user, &j->task);
}

void
store_search_result_free(struct store_search_result **resp)
{
	struct store_search_result *res = *resp;

	if (res == NULL)
		return;
	free(res->msgs);
	free(res);
	*resp = NULL;
}
