/*
 * FETCH reads (RFC 3501 / RFC 9051 section 6.4.5): the cached columns of
 * message rows and the Maildir files themselves, as a user task on the
 * I/O pool, bounded per call so that one large FETCH never starves other
 * users' work. RFC 2180 section 4.1.3: a vanished file is reported, not
 * guessed at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "mime/mime_decode.h"
#include "store/store_fetch.h"
#include "store/store_int.h"

struct store_fetch_job {
	struct store_task task; /* first */
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	unsigned what;
	char **binary; /* part paths to decode, NULL entries skipped */
	size_t nbinary;
	store_fetch_cb cb;
	void *arg;
	struct store_fetch_result *res;
};

static char *
store_fetch_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? xstrdup(s) : NULL;
}

/* The file of a row: <user>/<folder>/{new,cur}/<file>[:2,<letters>]. */
static char *
store_fetch_path(struct store_fetch_job *j, const char *folder,
    sqlite3_stmt *st)
{
	const char *file = (const char *)sqlite3_column_text(st, 0);
	int in_cur = sqlite3_column_int(st, 1);
	char letters[8];

	store_maildir_flag_letters((unsigned)sqlite3_column_int(st, 2),
	    letters);
	return xasprintf("%s/%s%s%s/%s%s%s", j->task.user->dir, folder,
	    folder[0] != '\0' ? "/" : "", in_cur ? "cur" : "new",
	    file != NULL ? file : "", in_cur ? ":2," : "",
	    in_cur ? letters : "");
}

/* Fills m from the current row of st; -1 when the file is gone. */
static int
store_fetch_row(struct store_fetch_job *j, const char *folder, sqlite3_stmt *st,
    struct store_fetch_msg *m)
{
	m->size = (uint64_t)sqlite3_column_int64(st, 3);
	m->internaldate = (time_t)sqlite3_column_int64(st, 4);
	m->prefix_size = (size_t)sqlite3_column_int64(st, 5);
	m->header_size = (size_t)sqlite3_column_int64(st, 6);
	if (j->what & STORE_FETCH_ENVELOPE)
		m->envelope = store_fetch_text(st, 7);
	if (j->what & STORE_FETCH_BODY)
		m->body = store_fetch_text(st, 8);
	if (j->what & STORE_FETCH_BODYSTRUCTURE)
		m->bodystructure = store_fetch_text(st, 9);
	if (j->what & STORE_FETCH_PARTMAP)
		m->partmap = store_fetch_text(st, 10);
	if (j->what & STORE_FETCH_DATA) {
		char *path = store_fetch_path(j, folder, st);
		int r = store_maildir_read(path, &m->data, &m->len);

		if (r < 0)
			log_warn("event=store op=fetch uid=%u error=\"%s\"",
			    m->uid, strerror(errno));
		free(path);
		return r;
	}
	return 0;
}

/* Decodes one part of m into out; sets out->status. */
static void
store_fetch_decode(const char *part, const struct store_fetch_msg *m,
    struct store_fetch_binary *out)
{
	const char *msg = m->data + m->prefix_size;
	size_t len = m->len - m->prefix_size, h, b, e;
	struct mime_buf buf = {0};

	if (part[0] == '\0') {
		/* RFC 3516: the whole message is sent as it stands. */
		mime_buf_add(&buf, msg, len);
	} else if (m->partmap == NULL ||
	    mime_partmap_find(m->partmap, part, &h, &b, &e) < 0 || h > b ||
	    b > e || e > len) {
		out->status = STORE_FETCH_BINARY_NOPART;
		return;
	} else if (mime_decode_part(msg + h, b - h, msg + b, e - b, &buf) < 0) {
		out->status = STORE_FETCH_BINARY_UNKNOWN_CTE;
		return;
	}
	out->data = buf.data;
	out->len = buf.len;
	if (out->len == 0) {
		free(out->data);
		out->data = NULL;
	}
}

/* Worker: the BINARY sections of a message read whole; their bytes. */
static size_t
store_fetch_binaries(struct store_fetch_job *j, struct store_fetch_msg *m)
{
	size_t bytes = 0;

	m->binary = xcalloc(j->nbinary, sizeof(*m->binary));
	if (m->data == NULL || m->prefix_size > m->len)
		return 0;
	for (size_t i = 0; i < j->nbinary; i++) {
		if (j->binary[i] == NULL)
			continue;
		store_fetch_decode(j->binary[i], m, &m->binary[i]);
		bytes += m->binary[i].len;
	}
	return bytes;
}

/* The folder of the mailbox, relative to the user's directory. */
static char *
store_fetch_folder(sqlite3 *db, int64_t mailbox_id)
{
	sqlite3_stmt *st;
	char *dir = NULL;

	if (sqlite3_prepare_v2(db, "SELECT dir FROM mailbox WHERE id = ?", -1,
	        &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		dir = store_fetch_text(st, 0);
	sqlite3_finalize(st);
	return dir;
}

/* Reads rows one UID at a time until a bound is reached. */
static int
store_fetch_rows(struct store_fetch_job *j, sqlite3 *db, const char *folder)
{
	struct store_fetch_result *res = j->res;
	size_t bytes = 0;
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT file, in_cur, flags, size, internaldate, prefix_size,"
	        " header_size, envelope, body, bodystructure, partmap"
	        " FROM message WHERE mailbox_id = ?1 AND uid = ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	res->msgs = xcalloc(j->n, sizeof(*res->msgs));
	while (res->n < j->n && res->n < STORE_FETCH_MAX_MSGS &&
	    bytes < STORE_FETCH_MAX_BYTES) {
		struct store_fetch_msg *m = &res->msgs[res->n++];

		m->uid = j->uids[res->n - 1];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, m->uid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			m->missing = store_fetch_row(j, folder, st, m) < 0;
		else if (rc == SQLITE_DONE)
			m->missing = 1;
		else
			break;
		if (j->nbinary > 0 && !m->missing)
			bytes += store_fetch_binaries(j, m);
		bytes += m->len;
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc == 0 ? 0 : -1;
}

/* Worker: the reads share one read transaction, so the rows agree. */
static void
store_fetch_run(struct store_task *t, sqlite3 *db)
{
	struct store_fetch_job *j = (struct store_fetch_job *)t;
	char *folder;

	if (db == NULL ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return;
	folder = store_fetch_folder(db, j->mailbox_id);
	if (folder != NULL && store_fetch_rows(j, db, folder) == 0)
		j->res->status = STORE_VIEW_OK;
	else
		log_error("event=store op=fetch error=\"%s\"",
		    sqlite3_errmsg(db));
	free(folder);
	store_index_rollback(db);
}

static void
store_fetch_done(struct store_task *t)
{
	struct store_fetch_job *j = (struct store_fetch_job *)t;
	struct store_fetch_result *res = j->res;

	if (res->status != STORE_VIEW_OK) {
		store_fetch_result_free(&res);
		res = xcalloc(1, sizeof(*res));
		res->status = STORE_VIEW_IO;
	}
	res->nbinary = j->nbinary;
	j->cb(res, j->arg);
	for (size_t i = 0; i < j->nbinary; i++)
		free(j->binary[i]);
	free(j->binary);
	free(j->uids);
	free(j);
}

void
store_fetch(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, unsigned what, store_fetch_cb cb, void *arg)
{
	store_fetch_sections(store, user, mailbox_id, uids, n, what, NULL, 0,
	    cb, arg);
}

void
store_fetch_sections(struct store *store, const char *user, int64_t mailbox_id,
    const uint32_t *uids, size_t n, unsigned what, const char *const *binary,
    size_t nbinary, store_fetch_cb cb, void *arg)
{
	struct store_fetch_job *j = xcalloc(1, sizeof(*j));

	if (nbinary > 0) {
		what |= STORE_FETCH_DATA | STORE_FETCH_PARTMAP;
		j->binary = xcalloc(nbinary, sizeof(*j->binary));
		for (size_t i = 0; i < nbinary; i++)
			j->binary[i] =
			    binary[i] != NULL ? xstrdup(binary[i]) : NULL;
		j->nbinary = nbinary;
	}

	if (n > STORE_FETCH_MAX_MSGS)
		n = STORE_FETCH_MAX_MSGS;
	j->mailbox_id = mailbox_id;
	j->uids = xcalloc(n ? n : 1, sizeof(*j->uids));
	if (n > 0)
		memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->what = what;
	j->cb = cb;
	j->arg = arg;
	j->res = xcalloc(1, sizeof(*j->res));
	j->res->status = STORE_VIEW_IO;
	j->task.run = store_fetch_run;
	j->task.done = store_fetch_done;
	store_task_submit(store, user, &j->task);
}

void
store_fetch_result_free(struct store_fetch_result **resp)
{
	struct store_fetch_result *res = *resp;

	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++) {
		struct store_fetch_msg *m = &res->msgs[i];

		free(m->envelope);
		free(m->body);
		free(m->bodystructure);
		free(m->partmap);
		free(m->data);
		for (size_t k = 0; m->binary != NULL && k < res->nbinary; k++)
			free(m->binary[k].data);
		free(m->binary);
	}
	free(res->msgs);
	free(res);
	*resp = NULL;
}
