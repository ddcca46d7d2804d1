/*
 * APPEND (RFC 3501 section 6.3.11, APPENDUID of RFC 4315 section 3) as a
 * user task: the file is written to the folder's tmp/ and fdatasynced, the
 * row commits with synchronous=FULL, the file is renamed into cur/ (or
 * new/ without flags) and the directory fsynced, then the new message is
 * announced like a delivery.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_append.h"
#include "store/store_int.h"

struct store_append_job {
	struct store_task task; /* first */
	char *mailbox;
	char *data;
	size_t len;
	unsigned flags;
	time_t internaldate;
	uint64_t quota;
	char *unique;
	struct store_mailbox mb;
	struct store_msg msg;
	enum store_append_status status;
	store_append_cb cb;
	void *arg;
};

/* <user>/<folder>/<sub>[/<name>]. */
static char *
store_append_path(struct store_append_job *j, const char *sub, const char *name)
{
	const char *dir = j->mb.dir;

	return xasprintf("%s/%s%s%s%s%s", j->task.user->dir, dir,
	    dir[0] != '\0' ? "/" : "", sub, name != NULL ? "/" : "",
	    name != NULL ? name : "");
}

/* Worker: the row, in one synchronous=FULL transaction. */
static int
store_append_row(struct store_append_job *j, sqlite3 *db,
    struct mime_info *mime)
{
	j->msg.mailbox_id = j->mb.id;
	j->msg.unique = j->unique;
	j->msg.in_cur = j->flags != 0;
	j->msg.flags = j->flags;
	j->msg.size = j->len;
	j->msg.internaldate = j->internaldate;
	j->msg.mime = mime;
	if (store_index_begin(db) < 0)
		return -1;
	if (store_index_message_add(db, &j->msg) < 0 ||
	    store_index_commit(db) < 0) {
		store_index_rollback(db);
		return -1;
	}
	return 0;
}

/* Worker: renames the staged file into place and syncs its directory. */
static void
store_append_place(struct store_append_job *j, const char *tmp)
{
	char letters[8], *name, *to, *dir;
	const char *sub = j->msg.in_cur ? "cur" : "new";

	store_maildir_flag_letters(j->flags, letters);
	name = xasprintf("%s%s%s", j->msg.file, j->msg.in_cur ? ":2," : "",
	    j->msg.in_cur ? letters : "");
	to = store_append_path(j, sub, name);
	dir = store_append_path(j, sub, NULL);
	/* The row is the truth: store_recover() finishes a failed rename. */
	if (rename(tmp, to) < 0 || store_maildir_fsync_dir(dir) < 0) {
		log_error("event=append user=%s op=place error=\"%s\"",
		    j->task.user->name, strerror(errno));
		j->status = STORE_APPEND_IO;
	}
	free(name);
	free(to);
	free(dir);
}

/* Worker: quota, then file, row and rename. */
static void
store_append_store(struct store_append_job *j, sqlite3 *db)
{
	struct mime_info mime = {0};
	uint64_t usage = 0;
	char *tmp;

	if (store_index_usage(db, &usage) < 0)
		return;
	if (j->quota > 0 && usage + j->len > j->quota) {
		j->status = STORE_APPEND_QUOTA;
		return;
	}
	tmp = store_append_path(j, "tmp", j->unique);
	if (store_maildir_write(tmp, "", j->data, j->len, 1) < 0) {
		log_error("event=append user=%s op=write error=\"%s\"",
		    j->task.user->name, strerror(errno));
		free(tmp);
		return;
	}
	mime_parse(j->data, j->len, &mime);
	if (store_append_row(j, db, &mime) < 0) {
		log_error("event=append user=%s op=commit error=\"%s\"",
		    j->task.user->name, sqlite3_errmsg(db));
		unlink(tmp);
	} else {
		j->status = STORE_APPEND_OK;
		store_append_place(j, tmp);
	}
	mime_info_deinit(&mime);
	free(tmp);
}

static void
store_append_run(struct store_task *t, sqlite3 *db)
{
	struct store_append_job *j = (struct store_append_job *)t;
	int r;

	if (db == NULL)
		return;
	r = store_index_mailbox_find(db, j->mailbox, &j->mb);
	if (r != 0 || j->mb.dir == NULL) {
		j->status = STORE_APPEND_NOMAILBOX;
		return;
	}
	store_append_store(j, db);
}

/* Loop thread: announces the message as a delivery would. */
static void
store_append_announce(struct store_append_job *j)
{
	struct store *store = j->task.store;
	struct store_change c = {
	    .kind = STORE_CHANGE_NEW,
	    .user = j->task.user->name,
	    .mailbox = j->mailbox,
	    .mailbox_id = j->mb.id,
	    .uidvalidity = j->mb.uidvalidity,
	    .uid = j->msg.uid,
	    .modseq = j->msg.modseq,
	    .flags = j->flags,
	    .size = j->len,
	};

	store_view_apply(store, &c, NULL);
	if (store->change_cb != NULL)
		store->change_cb(&c, store->change_arg);
}

static void
store_append_done(struct store_task *t)
{
	struct store_append_job *j = (struct store_append_job *)t;

	/* A committed row is announced even when its rename failed. */
	if (j->msg.uid != 0)
		store_append_announce(j);
	j->cb(j->status, j->mb.uidvalidity, j->msg.uid, j->arg);
	store_index_mailbox_deinit(&j->mb);
	free(j->msg.file);
	free(j->unique);
	free(j->data);
	free(j->mailbox);
	free(j);
}

void
store_append(struct store *store, const char *user, const char *mailbox,
    const char *data, size_t len, unsigned flags, time_t internaldate,
    uint64_t quota, store_append_cb cb, void *arg)
{
	struct store_append_job *j = xcalloc(1, sizeof(*j));

	j->mailbox = xstrdup(mailbox);
	j->data = xmalloc(len ? len : 1);
	memcpy(j->data, data, len);
	j->len = len;
	j->flags = flags;
	j->internaldate = internaldate;
	j->quota = quota;
	j->unique = store_maildir_unique(store);
	j->status = STORE_APPEND_IO;
	j->cb = cb;
	j->arg = arg;
	j->task.run = store_append_run;
	j->task.done = store_append_done;
	store_task_submit(store, user, &j->task);
}
