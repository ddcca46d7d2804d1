/*
 * Crash recovery at start-up: brings each user's Maildir and index back in
 * step. Committed rows whose file is still in tmp/ are put in place, tmp/
 * files without a row are removed, foreign files in new/ or cur/ get a UID,
 * and rows whose file vanished are expunged with a tombstone (RFC 7162).
 * Renames a committed RENAME still owes the disk are made first. When the
 * index itself was lost, the UIDs in the file names are kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"

struct store_row {
	uint32_t uid;
	char *file;
	int in_cur;
	int found;
};

struct store_foreign {
	char *name; /* as found in new/ or cur/ */
	int in_cur;
	uint32_t hint; /* the U= in its name, 0 if none */
};

/* What recovery of one folder works with. */
struct store_rec {
	sqlite3 *db;
	const char *userdir;
	char *folder; /* absolute */
	struct store_mailbox mb;
	int rebuild; /* the index was created just now */
	struct store_row *rows;
	size_t nrows;
	struct store_foreign *foreign;
	size_t nforeign;
	char **renames; /* pairs: from, to; done after the commit */
	size_t nrenames;
};

static int
store_recover_cmp_row(const void *a, const void *b)
{
	return strcmp(((const struct store_row *)a)->file,
	    ((const struct store_row *)b)->file);
}

static int
store_recover_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the names in a directory that do not begin with '.', sorted. */
static char **
store_recover_list(const char *path, size_t *n)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	char **names = NULL;

	*n = 0;
	if (dir == NULL)
		return NULL;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xreallocarray(names, *n + 1, sizeof(*names));
		names[(*n)++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (*n > 0)
		qsort(names, *n, sizeof(*names), store_recover_cmp_str);
	return names;
}

static void
store_recover_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
store_recover_load_rows(struct store_rec *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db,
	        "SELECT uid, file, in_cur FROM message WHERE mailbox_id = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, r->mb.id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row *row;

		r->rows = xreallocarray(r->rows, r->nrows + 1, sizeof(*row));
		row = &r->rows[r->nrows++];
		row->uid = (uint32_t)sqlite3_column_int64(st, 0);
		row->file = xstrdup((const char *)sqlite3_column_text(st, 1));
		row->in_cur = sqlite3_column_int(st, 2);
		row->found = 0;
	}
	sqlite3_finalize(st);
	if (r->nrows > 0)
		qsort(r->rows, r->nrows, sizeof(*r->rows),
		    store_recover_cmp_row);
	return rc == SQLITE_DONE ? 0 : -1;
}

static struct store_row *
store_recover_find(struct store_rec *r, const char *file)
{
	struct store_row key = {.file = (char *)file};

	if (r->nrows == 0)
		return NULL;
	return bsearch(&key, r->rows, r->nrows, sizeof(*r->rows),
	    store_recover_cmp_row);
}

static void
store_recover_rename_later(struct store_rec *r, char *from, char *to)
{
	r->renames =
	    xreallocarray(r->renames, r->nrenames + 2, sizeof(*r->renames));
	r->renames[r->nrenames++] = from;
	r->renames[r->nrenames++] = to;
}

static uint32_t
store_recover_uid_hint(const char *name)
{
	const char *u = strstr(name, ",U=");
	unsigned long v;

	if (u == NULL)
		return 0;
	v = strtoul(u + 3, NULL, 10);
	return v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* Matches the files of new/ (in_cur 0) or cur/ (1) against the rows. */
static int
store_recover_scan(struct store_rec *r, int in_cur)
{
	char *path = xasprintf("%s/%s", r->folder, in_cur ? "cur" : "new");
	size_t n;
	char **names = store_recover_list(path, &n);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		char *base = xstrdup(names[i]);
		char *info = strstr(base, ":2,");
		struct store_row *row;

		if (info != NULL)
			*info = '\0';
		row = store_recover_find(r, base);
		if (row != NULL && !row->found) {
			row->found = 1;
			if (row->in_cur != in_cur)
				rc = store_index_message_set_file(r->db,
				    r->mb.id, row->uid, row->file, in_cur);
		} else {
			struct store_foreign *f;

			r->foreign = xreallocarray(r->foreign, r->nforeign + 1,
			    sizeof(*r->foreign));
			f = &r->foreign[r->nforeign++];
			f->name = xstrdup(names[i]);
			f->in_cur = in_cur;
			f->hint = store_recover_uid_hint(base);
		}
		free(base);
	}
	store_recover_list_free(names, n);
	free(path);
	return rc;
}

/* A tmp/ file whose row is committed and whose file is not in place. */
static struct store_row *
store_recover_tmp_row(struct store_rec *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->nrows; i++) {
		struct store_row *row = &r->rows[i];

		if (!row->found && strncmp(row->file, name, len) == 0 &&
		    strncmp(row->file + len, ",U=", 3) == 0)
			return row;
	}
	return NULL;
}

static void
store_recover_tmp(struct store_rec *r)
{
	char *path = xasprintf("%s/tmp", r->folder);
	size_t n;
	char **names = store_recover_list(path, &n);

	for (size_t i = 0; i < n; i++) {
		struct store_row *row = store_recover_tmp_row(r, names[i]);
		char *from = xasprintf("%s/%s", path, names[i]);

		if (row != NULL) {
			row->found = 1;
			store_recover_rename_later(r, from,
			    xasprintf("%s/%s/%s", r->folder,
			        row->in_cur ? "cur" : "new", row->file));
			continue;
		}
		if (unlink(from) < 0)
			log_warn("event=recover op=unlink error=\"%s\"",
			    strerror(errno));
		free(from);
	}
	store_recover_list_free(names, n);
	free(path);
}

/* Reads a whole file for parsing; NULL on failure. */
static char *
store_recover_read(const char *path, size_t *len, time_t *mtime)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t off = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		buf = xmalloc((size_t)st.st_size + 1);
		while (off < (size_t)st.st_size) {
			ssize_t k =
			    read(fd, buf + off, (size_t)st.st_size - off);

			if (k <= 0)
				break;
			off += (size_t)k;
		}
		*len = off;
		*mtime = st.st_mtime;
	}
	close(fd);
	return buf;
}

static int
store_recover_set_uidnext(struct store_rec *r, uint32_t uidnext)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db,
	        "UPDATE mailbox SET uidnext = ?2 WHERE id = ?1 AND uidnext < ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, r->mb.id);
	sqlite3_bind_int64(st, 2, uidnext);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Gives a foreign file a row and schedules its rename to carry the UID. */
static int
store_recover_adopt(struct store_rec *r, struct store_foreign *f)
{
	const char *sub = f->in_cur ? "cur" : "new";
	char *path = xasprintf("%s/%s/%s", r->folder, sub, f->name);
	char *unique = xstrndup(f->name, strcspn(f->name, ",:"));
	struct store_msg m = {.mailbox_id = r->mb.id, .unique = unique};
	struct mime_info mi;
	char letters[8];
	size_t len = 0;
	char *data = store_recover_read(path, &len, &m.internaldate);
	int rc = -1;

	if (data == NULL) {
		log_warn("event=recover op=read error=\"%s\"", strerror(errno));
		free(path);
		free(unique);
		return 0;
	}
	mime_parse(data, len, &mi);
	m.in_cur = f->in_cur;
	m.flags = f->in_cur ? store_maildir_flags_parse(f->name) : 0;
	m.size = len;
	m.mime = &mi;
	if ((r->rebuild && f->hint > 0 ? store_recover_set_uidnext(r, f->hint) :
	                                 0) == 0 &&
	    store_index_message_add(r->db, &m) == 0) {
		store_maildir_flag_letters(m.flags, letters);
		store_recover_rename_later(r, path,
		    xasprintf("%s/%s/%s%s%s", r->folder, sub, m.file,
		        f->in_cur ? ":2," : "", f->in_cur ? letters : ""));
		path = NULL;
		rc = 0;
	}
	mime_info_deinit(&mi);
	free(data);
	free(m.file);
	free(unique);
	free(path);
	return rc;
}

static int
store_recover_cmp_foreign(const void *a, const void *b)
{
	const struct store_foreign *x = a, *y = b;

	/* Files with a UID hint come first, by UID; the rest keep order. */
	if ((x->hint == 0) != (y->hint == 0))
		return x->hint == 0 ? 1 : -1;
	return x->hint < y->hint ? -1 : x->hint > y->hint;
}

/* Rows, foreign files and vanished files, in one transaction. */
static int
store_recover_apply(struct store_rec *r)
{
	if (r->nforeign > 0)
		qsort(r->foreign, r->nforeign, sizeof(*r->foreign),
		    store_recover_cmp_foreign);
	for (size_t i = 0; i < r->nforeign; i++)
		if (store_recover_adopt(r, &r->foreign[i]) < 0)
			return -1;
	for (size_t i = 0; i < r->nrows; i++) {
		if (r->rows[i].found)
			continue;
		log_info("event=recover user_dir=%s folder=%s uid=%u "
		         "action=expunge",
		    r->userdir, r->mb.dir, r->rows[i].uid);
		if (store_index_message_expunge(r->db, r->mb.id,
		        r->rows[i].uid) < 0)
			return -1;
	}
	return 0;
}

static void
store_recover_renames(struct store_rec *r)
{
	for (size_t i = 0; i < r->nrenames; i += 2)
		if (rename(r->renames[i], r->renames[i + 1]) < 0)
			log_error("event=recover op=rename error=\"%s\"",
			    strerror(errno));
	if (r->nrenames > 0) {
		char *newdir = xasprintf("%s/new", r->folder);
		char *curdir = xasprintf("%s/cur", r->folder);

		if (store_maildir_fsync_dir(newdir) < 0 ||
		    store_maildir_fsync_dir(curdir) < 0)
			log_error("event=recover op=fsync error=\"%s\"",
			    strerror(errno));
		free(newdir);
		free(curdir);
	}
}

static void
store_recover_rec_deinit(struct store_rec *r)
{
	for (size_t i = 0; i < r->nrows; i++)
		free(r->rows[i].file);
	for (size_t i = 0; i < r->nforeign; i++)
		free(r->foreign[i].name);
	for (size_t i = 0; i < r->nrenames; i++)
		free(r->renames[i]);
	free(r->rows);
	free(r->foreign);
	free(r->renames);
	free(r->folder);
	store_index_mailbox_deinit(&r->mb);
}

static int
store_recover_mailbox(sqlite3 *db, const char *userdir, const char *name,
    int rebuild)
{
	struct store_rec r = {.db = db, .userdir = userdir, .rebuild = rebuild};
	int rc = -1;

	if (store_index_mailbox_find(db, name, &r.mb) < 0)
		return -1;
	r.folder = xasprintf("%s/%s", userdir, r.mb.dir);
	if (store_index_begin(db) < 0)
		goto out;
	if (store_recover_load_rows(&r) < 0 || store_recover_scan(&r, 0) < 0 ||
	    store_recover_scan(&r, 1) < 0)
		goto out;
	store_recover_tmp(&r);
	if (store_recover_apply(&r) < 0 || store_index_commit(db) < 0)
		goto out;
	store_recover_renames(&r);
	rc = 0;
out:
	store_index_rollback(db);
	store_recover_rec_deinit(&r);
	return rc;
}

/* With a lost index, folders found on disk get their mailbox back. */
static int
store_recover_folders(sqlite3 *db, const char *userdir)
{
	DIR *dir = opendir(userdir);
	struct dirent *de;
	int rc = 0;

	if (dir == NULL)
		return -1;
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		char *name = store_maildir_folder_name(de->d_name);
		struct store_mailbox mb;

		if (name == NULL || de->d_name[0] != '.') {
			free(name);
			continue;
		}
		if (store_index_mailbox_find(db, name, &mb) == 0)
			store_index_mailbox_deinit(&mb);
		else if (store_index_begin(db) < 0 ||
		    store_index_mailbox_create(db, userdir, name, NULL) < 0 ||
		    store_index_commit(db) < 0)
			rc = -1;
		store_index_rollback(db);
		free(name);
	}
	closedir(dir);
	return rc;
}

static char **
store_recover_mailbox_names(sqlite3 *db, size_t *n)
{
	sqlite3_stmt *st;
	char **names = NULL;

	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT name FROM mailbox ORDER BY id", -1,
	        &st, NULL) != SQLITE_OK)
		return NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xreallocarray(names, *n + 1, sizeof(*names));
		names[(*n)++] =
		    xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return names;
}

static int
store_recover_user(struct store *store, const char *user)
{
	char *userdir = xasprintf("%s/%s", store->dir, user);
	char *index = xasprintf("%s/" STORE_INDEX_FILE, userdir);
	int rebuild = access(index, F_OK) < 0;
	sqlite3 *db = NULL;
	char **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (rebuild)
		log_warn("event=recover user=%s action=rebuild", user);
	/*
	 * Renames a committed RENAME still owed come first: until they are
	 * made, its folders and files are not where the rows say, and the
	 * scans below would expunge those rows and adopt the files anew.
	 */
	if (store_user_open(userdir, &db) < 0 ||
	    store_mailbox_redo(db, userdir) < 0 ||
	    (rebuild && store_recover_folders(db, userdir) < 0))
		goto out;
	names = store_recover_mailbox_names(db, &n);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_recover_mailbox(db, userdir, names[i], rebuild);
out:
	store_recover_list_free(names, n);
	store_index_close(&db);
	free(index);
	free(userdir);
	return rc;
}

int
store_recover(struct store *store, char *err, size_t errlen)
{
	size_t n;
	char **users = store_recover_list(store->dir, &n);
	int rc = 0;

	/* Jobs may still hold handles (a delivery is done before its job). */
	while (store_release_handles(store) > 0)
		event_base_loop(store->base, EVLOOP_ONCE);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", store->dir, users[i]);
		struct stat st;

		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    store_maildir_user_ok(users[i]) &&
		    store_recover_user(store, users[i]) < 0) {
			snprintf(err, errlen, "recovery of user %s failed",
			    users[i]);
			rc = -1;
		}
		free(path);
	}
	store_recover_list_free(users, n);
	return rc;
}
