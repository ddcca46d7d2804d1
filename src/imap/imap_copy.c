/*
 * COPY and UID COPY (RFC 3501 section 6.4.7) with the COPYUID response
 * code of UIDPLUS (RFC 4315 section 3), MOVE and UID MOVE (RFC 6851), and
 * the TRYCREATE and OVERQUOTA codes of RFC 5530. The store copies; MOVE
 * then expunges the sources and reports it as EXPUNGE does.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "store/store_copy.h"
#include "store/store_flags.h"
#include "store/store_view.h"

/* Expunges per store call, as imap_store.c does: inside the window. */
#define IMAP_COPY_EXPUNGE_CHUNK 64

/* A COPY or MOVE waiting for the store; input is paused. */
struct imap_copy_req {
	struct imap_async async; /* first */
	char *tag;
	const char *cmdname;
	int move;
	uint32_t *uids; /* MOVE: the copied sources, to expunge */
	size_t n, next;
};

static void
imap_copy_req_free(struct imap_copy_req *req)
{
	if (req->async.s != NULL)
		req->async.s->async = NULL;
	free(req->uids);
	free(req->tag);
	free(req);
}

/* Ends the command: the tagged reply, input resumed, the request freed. */
static void
imap_copy_finish(struct imap_copy_req *req, const char *code, const char *fail)
{
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		if (fail != NULL)
			imap_session_printf(s, "%s NO %s", req->tag, fail);
		else
			imap_session_printf(s, "%s OK %s%s completed", req->tag,
			    code != NULL ? code : "", req->cmdname);
		imap_copy_req_free(req);
		imap_session_idle(s);
		return;
	}
	imap_copy_req_free(req);
}

static void imap_copy_expunged(const uint32_t *uids, size_t n,
    enum store_view_status status, void *arg);

/* MOVE: expunges the next chunk of the copied sources. */
static void
imap_copy_expunge_next(struct imap_copy_req *req)
{
	struct imap_session *s = req->async.s;
	size_t k = req->n - req->next;

	if (k > IMAP_COPY_EXPUNGE_CHUNK)
		k = IMAP_COPY_EXPUNGE_CHUNK;
	store_flags_expunge(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), req->uids + req->next, k,
	    imap_copy_expunged, req);
	req->next += k;
}

static void
imap_copy_expunged(const uint32_t *uids, size_t n,
    enum store_view_status status, void *arg)
{
	struct imap_copy_req *req = arg;
	struct imap_session *s = req->async.s;

	(void)uids;
	(void)n;
	if (s == NULL || s->conn == NULL || s->sel == NULL) {
		imap_copy_finish(req, NULL, NULL);
		return;
	}
	if (status != STORE_VIEW_OK) {
		imap_copy_finish(req, NULL,
		    "[UNAVAILABLE] Copied, but cannot expunge the sources");
		return;
	}
	/* "* n EXPUNGE" for these and any other, as the client counts. */
	imap_select_updates(s, 1);
	if (req->next < req->n)
		imap_copy_expunge_next(req);
	else
		imap_copy_finish(req, NULL, NULL);
}

/* The failure text of a copy that did not happen. */
static const char *
imap_copy_failure(enum store_copy_status status)
{
	switch (status) {
	case STORE_COPY_NOMAILBOX:
		return "[TRYCREATE] No such mailbox";
	case STORE_COPY_QUOTA:
		return "[OVERQUOTA] Quota exceeded";
	default:
		return "[UNAVAILABLE] Cannot copy the messages";
	}
}

static void
imap_copy_done(enum store_copy_status status, uint32_t uidvalidity,
    const uint32_t *src, const uint32_t *dst, size_t n, void *arg)
{
	struct imap_copy_req *req = arg;
	struct imap_session *s = req->async.s;
	char *code, *a, *b;

	if (s == NULL || s->conn == NULL || s->sel == NULL ||
	    status != STORE_COPY_OK || n == 0) {
		imap_copy_finish(req, NULL,
		    status != STORE_COPY_OK ? imap_copy_failure(status) : NULL);
		return;
	}
	a = imap_seqset_format_array(src, n);
	b = imap_seqset_format_array(dst, n);
	code = xasprintf("[COPYUID %u %s %s] ", uidvalidity, a, b);
	free(a);
	free(b);
	if (!req->move) {
		imap_copy_finish(req, code, NULL);
		free(code);
		return;
	}
	/* RFC 6851 section 4.3: COPYUID goes untagged, before the EXPUNGEs. */
	imap_session_printf(s, "* OK %sMoved", code);
	free(code);
	free(req->uids);
	req->uids = xcalloc(n, sizeof(*req->uids));
	memcpy(req->uids, src, n * sizeof(*src));
	req->n = n;
	imap_copy_expunge_next(req);
}

/* The user's quota in bytes, 0 for none. */
static uint64_t
imap_copy_quota(struct imap_session *s)
{
	const struct userdb_user *u = s->srv->env.userdb != NULL ?
	    userdb_lookup(s->srv->env.userdb, s->user) :
	    NULL;

	return u != NULL ? u->quota : 0;
}

/* Resolves the set argument into UIDs; -1 after answering BAD. */
static int
imap_copy_set(struct imap_session *s, const char *tag,
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

/* Checks the arguments and names the destination; -1 after answering. */
static int
imap_copy_args(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int move, char **name)
{
	const char *mbox = nargs == 2 ? imap_arg_astring(&args[1]) : NULL;

	if (mbox == NULL || args[1].type == IMAP_ARG_NIL) {
		imap_session_bad(s, cmd->tag,
		    "Expected a message set and a mailbox");
		return -1;
	}
	if (move && s->sel->readonly) {
		imap_session_printf(s, "%s NO [READ-ONLY] Mailbox is read-only",
		    cmd->tag);
		return -1;
	}
	if (imap_select_name_in(s, mbox, name) < 0 ||
	    !imap_utf7_mailbox_valid(*name, strlen(*name))) {
		free(*name);
		*name = NULL;
		/* No CREATE could make it: no TRYCREATE (RFC 9051 6.4.7). */
		imap_session_printf(s, "%s NO [CANNOT] Invalid mailbox name",
		    cmd->tag);
		return -1;
	}
	return 0;
}

/* COPY, MOVE and their UID forms; args start at the message set. */
static void
imap_copy_start(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int uid, int move)
{
	static const char *const names[2][2] = {{"COPY", "MOVE"},
	    {"UID COPY", "UID MOVE"}};
	struct imap_copy_req *req;
	char *name = NULL;
	uint32_t *uids = NULL;
	size_t n = 0;

	if (imap_copy_args(s, cmd, args, nargs, move, &name) < 0)
		return;
	if (imap_copy_set(s, cmd->tag, &args[0], uid, &uids, &n) < 0) {
		free(name);
		return;
	}
	req = xcalloc(1, sizeof(*req));
	req->async.s = s;
	req->tag = xstrdup(cmd->tag);
	req->cmdname = names[uid != 0][move != 0];
	req->move = move;
	s->async = &req->async;
	imap_session_busy(s);
	store_copy(s->srv->env.store, s->user,
	    store_view_mailbox_id(s->sel->view), uids, n, name,
	    imap_copy_quota(s), imap_copy_done, req);
	free(uids);
	free(name);
}

void
imap_copy_copy(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_copy_start(s, cmd, cmd->args, cmd->nargs, 0, 0);
}

void
imap_copy_move(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_copy_start(s, cmd, cmd->args, cmd->nargs, 0, 1);
}

void
imap_copy_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int move)
{
	imap_copy_start(s, cmd, args, nargs, 1, move);
}
