/*
 * SORT and THREAD keys (RFC 5256 section 3, RFC 5957 section 3) from the
 * index: dates, sizes, the decoded subject, first addresses, display names
 * out of the cached ENVELOPE, and the message-ID fields, read as a user
 * task on the I/O pool in bounded chunks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"
#include "store/store_sort.h"

struct store_sort_job {
	struct store_task task; /* first */
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	store_sort_cb cb;
	void *arg;
	struct store_sort_result *res;
};

/* ------------------------------------------------------------------ */
/* Reading the cached ENVELOPE. */

static void
store_sort_space(const char **p)
{
	while (**p == ' ')
		(*p)++;
}

/* Reads a quoted string at *p (past the quote) into *out; 0 or -1. */
static int
store_sort_quoted(const char **p, char **out)
{
	struct mime_buf b = {0};
	const char *s = *p;

	for (; *s != '"'; s++) {
		if (*s == '\0' || (*s == '\\' && s[1] == '\0')) {
			free(b.data);
			return -1;
		}
		if (*s == '\\')
			s++;
		mime_buf_addc(&b, *s);
	}
	*p = s + 1;
	*out = mime_buf_finish(&b);
	return 0;
}

/* Reads a literal "{n}\r\n..." at *p into *out; 0 or -1. */
static int
store_sort_literal(const char **p, char **out)
{
	char *end;
	unsigned long n = strtoul(*p + 1, &end, 10);

	if (end[0] != '}' || end[1] != '\r' || end[2] != '\n' ||
	    strnlen(end + 3, n) < n)
		return -1;
	*out = xmalloc(n + 1);
	memcpy(*out, end + 3, n);
	(*out)[n] = '\0';
	*p = end + 3 + n;
	return 0;
}

/* Reads an nstring: *out is a new string, or NULL for NIL; 0 or -1. */
static int
store_sort_nstring(const char **p, char **out)
{
	store_sort_space(p);
	*out = NULL;
	if (strncmp(*p, "NIL", 3) == 0) {
		*p += 3;
		return 0;
	}
	if (**p == '"') {
		(*p)++;
		return store_sort_quoted(p, out);
	}
	if (**p == '{')
		return store_sort_literal(p, out);
	return -1;
}

/* Skips one item: an nstring or a parenthesised list; 0 or -1. */
static int
store_sort_skip(const char **p)
{
	int depth = 0;
	char *s;

	do {
		store_sort_space(p);
		if (**p == '(' || **p == ')') {
			depth += **p == '(' ? 1 : -1;
			(*p)++;
			continue;
		}
		if (store_sort_nstring(p, &s) < 0)
			return -1;
		free(s);
	} while (depth > 0);
	return depth == 0 ? 0 : -1;
}

/* Reads one address "(name adl mailbox host)" into a[4]; 0 or -1. */
static int
store_sort_address(const char **p, char *a[4])
{
	store_sort_space(p);
	if (**p != '(')
		return -1;
	(*p)++;
	for (int i = 0; i < 4; i++)
		if (store_sort_nstring(p, &a[i]) < 0)
			return -1;
	store_sort_space(p);
	if (**p != ')')
		return -1;
	(*p)++;
	return 0;
}

/* The display value of an address; NULL for a group marker. */
static char *
store_sort_display_of(char *a[4])
{
	char *name;

	if (a[3] == NULL)
		return NULL;
	name = a[0] != NULL ? mime_rfc2047_decode(a[0], strlen(a[0])) : NULL;
	if (name != NULL && name[0] != '\0')
		return name;
	free(name);
	name = xasprintf("%s@%s", a[2] != NULL ? a[2] : "", a[3]);
	for (char *c = name; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return name;
}

char *
store_sort_display(const char *envelope, int field)
{
	const char *p = envelope;
	char *out = NULL;

	if (p == NULL || *p != '(')
		return NULL;
	p++;
	for (int i = 0; i < field; i++)
		if (store_sort_skip(&p) < 0)
			return NULL;
	store_sort_space(&p);
	if (*p != '(')
		return NULL;
	p++;
	while (out == NULL) {
		char *a[4] = {0};
		int r = store_sort_address(&p, a);

		if (r == 0)
			out = store_sort_display_of(a);
		for (int i = 0; i < 4; i++)
			free(a[i]);
		if (r < 0)
			break;
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* Rows, on the worker. */

/* The addr-mailbox of the first of comma-separated addr-specs. */
static char *
store_sort_mailbox(const char *specs)
{
	size_t len, local;

	if (specs == NULL)
		return xstrdup("");
	len = strcspn(specs, ",");
	local = len;
	for (size_t i = 0; i < len; i++)
		if (specs[i] == '@')
			local = i;
	return xstrndup(specs, local);
}

static char *
store_sort_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? xstrdup(s) : NULL;
}

static void
store_sort_row(sqlite3_stmt *st, struct store_sort_msg *m)
{
	const char *env = (const char *)sqlite3_column_text(st, 10);

	m->size = (uint64_t)sqlite3_column_int64(st, 0);
	m->internaldate = sqlite3_column_int64(st, 1);
	m->date = sqlite3_column_type(st, 2) != SQLITE_NULL ?
	    sqlite3_column_int64(st, 2) :
	    m->internaldate;
	m->subject = store_sort_text(st, 3);
	m->from = store_sort_mailbox((const char *)sqlite3_column_text(st, 4));
	m->to = store_sort_mailbox((const char *)sqlite3_column_text(st, 5));
	m->cc = store_sort_mailbox((const char *)sqlite3_column_text(st, 6));
	m->message_id = store_sort_text(st, 7);
	m->in_reply_to = store_sort_text(st, 8);
	m->references = store_sort_text(st, 9);
	m->display_from = store_sort_display(env, 2);
	m->display_to = store_sort_display(env, 5);
	if (m->display_from == NULL)
		m->display_from = xstrdup("");
	if (m->display_to == NULL)
		m->display_to = xstrdup("");
}

static int
store_sort_rows(struct store_sort_job *j, sqlite3 *db)
{
	struct store_sort_result *res = j->res;
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT size, internaldate, date_sent, subject, from_addr,"
	        " to_addr, cc_addr, message_id, in_reply_to, refs, envelope"
	        " FROM message WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	res->msgs = xcalloc(j->n ? j->n : 1, sizeof(*res->msgs));
	while (res->n < j->n) {
		struct store_sort_msg *m = &res->msgs[res->n];
		int r;

		m->uid = j->uids[res->n++];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, m->uid);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			store_sort_row(st, m);
		} else if (r == SQLITE_DONE) {
			m->missing = 1;
		} else {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* Worker: one read transaction, so the rows agree. */
static void
store_sort_run(struct store_task *t, sqlite3 *db)
{
	struct store_sort_job *j = (struct store_sort_job *)t;

	if (db == NULL ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (store_sort_rows(j, db) == 0)
		j->res->status = STORE_VIEW_OK;
	else
		log_error("event=store op=sort error=\"%s\"",
		    sqlite3_errmsg(db));
	store_index_rollback(db);
}

static void
store_sort_done(struct store_task *t)
{
	struct store_sort_job *j = (struct store_sort_job *)t;
	struct store_sort_result *res = j->res;

	if (res->status != STORE_VIEW_OK) {
		store_sort_result_free(&res);
		res = xcalloc(1, sizeof(*res));
		res->status = STORE_VIEW_IO;
	}
	j->cb(res, j->arg);
	free(j->uids);
	free(j);
}

void
store_sort(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, store_sort_cb cb, void *arg)
{
	struct store_sort_job *j = xcalloc(1, sizeof(*j));

	if (n > STORE_SORT_MAX_MSGS)
		n = STORE_SORT_MAX_MSGS;
	j->mailbox_id = mailbox_id;
	j->uids = xcalloc(n ? n : 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->cb = cb;
	j->arg = arg;
	j->res = xcalloc(1, sizeof(*j->res));
	j->res->status = STORE_VIEW_IO;
	j->task.run = store_sort_run;
	j->task.done = store_sort_done;
	store_task_submit(store, user, &j->task);
}

void
store_sort_msg_deinit(struct store_sort_msg *m)
{
	free(m->subject);
	free(m->from);
	free(m->to);
	free(m->cc);
	free(m->display_from);
	free(m->display_to);
	free(m->message_id);
	free(m->in_reply_to);
	free(m->references);
	memset(m, 0, sizeof(*m));
}

void
store_sort_result_free(struct store_sort_result **resp)
{
	struct store_sort_result *res = *resp;

	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++)
		store_sort_msg_deinit(&res->msgs[i]);
	free(res->msgs);
	free(res);
	*resp = NULL;
}
