/*
 * CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 3501 sections
 * 6.3.3-6.3.7, RFC 9051 sections 6.3.4-6.3.8) with the ALREADYEXISTS,
 * NONEXISTENT, CANNOT and HASCHILDREN codes of RFC 5530. Names arrive in
 * modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "store/store_mailbox.h"

/* A mailbox command waiting for the store; input is paused. */
struct imap_mailbox_req {
	struct imap_async async; /* first */
	char *tag;
	const char *verb;
};

static void
imap_mailbox_done(enum store_mailbox_outcome status, void *arg)
{
	static const char *const text[] = {
	    [STORE_MAILBOX_OK] = "OK",
	    [STORE_MAILBOX_EXISTS] = "NO [ALREADYEXISTS] Mailbox exists",
	    [STORE_MAILBOX_NONEXISTENT] = "NO [NONEXISTENT] No such mailbox",
	    [STORE_MAILBOX_HASCHILDREN] =
	        "NO [HASCHILDREN] Mailbox has inferiors",
	    [STORE_MAILBOX_CANNOT] = "NO [CANNOT] Not possible for this "
	                             "mailbox",
	    [STORE_MAILBOX_IO] = "NO [UNAVAILABLE] Mailbox operation failed",
	};
	struct imap_mailbox_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		s->async = NULL;
		s->mailbox_op = 0;
		if (status == STORE_MAILBOX_OK)
			imap_session_printf(s, "%s OK %s completed", req->tag,
			    req->verb);
		else
			imap_session_printf(s, "%s %s", req->tag, text[status]);
		imap_session_idle(s);
	}
	free(req->tag);
	free(req);
}

/* Pauses input for a store call; the caller then makes it. */
static struct imap_mailbox_req *
imap_mailbox_req(struct imap_session *s, struct imap_cmd *cmd, const char *verb)
{
	struct imap_mailbox_req *req = xcalloc(1, sizeof(*req));

	req->async.s = s;
	req->tag = xstrdup(cmd->tag);
	req->verb = verb;
	s->async = &req->async;
	imap_session_busy(s);
	return req;
}

/*
 * Decodes argument i into a UTF-8 name; a trailing '/' is dropped when
 * strip is set (CREATE). Returns NULL after answering BAD or NO.
 */
static char *
imap_mailbox_name(struct imap_session *s, struct imap_cmd *cmd, size_t i,
    int strip)
{
	const char *in = imap_arg_astring(&cmd->args[i]);
	char *name = NULL;
	size_t len;

	if (in == NULL || cmd->args[i].type == IMAP_ARG_NIL) {
		imap_session_bad(s, cmd->tag, "Expected a mailbox name");
		return NULL;
	}
	if (imap_select_name_in(s, in, &name) < 0) {
		free(name);
		imap_session_printf(s, "%s NO [CANNOT] Invalid mailbox name",
		    cmd->tag);
		return NULL;
	}
	len = strlen(name);
	if (strip && len > 1 && name[len - 1] == '/')
		name[--len] = '\0';
	if (!imap_utf7_mailbox_valid(name, len)) {
		free(name);
		imap_session_printf(s, "%s NO [CANNOT] Invalid mailbox name",
		    cmd->tag);
		return NULL;
	}
	return name;
}

/* Checks the argument count; answers BAD when it is wrong. */
static int
imap_mailbox_args(struct imap_session *s, struct imap_cmd *cmd, size_t n)
{
	if (cmd->nargs == n)
		return 0;
	imap_session_bad(s, cmd->tag,
	    n == 1 ? "Expected one mailbox name" :
	             "Expected two mailbox names");
	return -1;
}

void
imap_mailbox_create(struct imap_session *s, struct imap_cmd *cmd)
{
	char *name;

	if (imap_mailbox_args(s, cmd, 1) < 0 ||
	    (name = imap_mailbox_name(s, cmd, 0, 1)) == NULL)
		return;
	store_mailbox_create(s->srv->env.store, s->user, name,
	    imap_mailbox_done, imap_mailbox_req(s, cmd, "CREATE"));
	free(name);
}

void
imap_mailbox_delete(struct imap_session *s, struct imap_cmd *cmd)
{
	char *name;

	if (imap_mailbox_args(s, cmd, 1) < 0 ||
	    (name = imap_mailbox_name(s, cmd, 0, 0)) == NULL)
		return;
	s->mailbox_op = 1;
	store_mailbox_delete(s->srv->env.store, s->user, name,
	    imap_mailbox_done, imap_mailbox_req(s, cmd, "DELETE"));
	free(name);
}

void
imap_mailbox_rename(struct imap_session *s, struct imap_cmd *cmd)
{
	char *from, *to;

	if (imap_mailbox_args(s, cmd, 2) < 0 ||
	    (from = imap_mailbox_name(s, cmd, 0, 0)) == NULL)
		return;
	if ((to = imap_mailbox_name(s, cmd, 1, 0)) == NULL) {
		free(from);
		return;
	}
	s->mailbox_op = 1;
	store_mailbox_rename(s->srv->env.store, s->user, from, to,
	    imap_mailbox_done, imap_mailbox_req(s, cmd, "RENAME"));
	free(from);
	free(to);
}

static void
imap_mailbox_sub(struct imap_session *s, struct imap_cmd *cmd, int on)
{
	char *name;

	if (imap_mailbox_args(s, cmd, 1) < 0 ||
	    (name = imap_mailbox_name(s, cmd, 0, 0)) == NULL)
		return;
	store_mailbox_subscribe(s->srv->env.store, s->user, name, on,
	    imap_mailbox_done,
	    imap_mailbox_req(s, cmd, on ? "SUBSCRIBE" : "UNSUBSCRIBE"));
	free(name);
}

void
imap_mailbox_subscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_mailbox_sub(s, cmd, 1);
}

void
imap_mailbox_unsubscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_mailbox_sub(s, cmd, 0);
}
