/*
 * APPEND (RFC 3501 section 6.3.11, RFC 9051 section 6.3.12) with the
 * APPENDUID response code of UIDPLUS (RFC 4315 section 3) and the
 * TRYCREATE, OVERQUOTA and TOOBIG codes of RFC 5530. The message arrives
 * as one literal that the parser holds; the store makes it durable.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/userdb.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "mime/mime.h"
#include "store/store.h"
#include "store/store_append.h"

/* An APPEND waiting for the store; input is paused. */
struct imap_append_req {
	struct imap_async async; /* first */
	char *tag;
};

/* One flag of the list; returns 0, or -1 for BAD. */
static int
imap_append_flag(const struct imap_arg *a, unsigned *flags)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
	    {"\\Seen", STORE_FLAG_SEEN},
	    {"\\Answered", STORE_FLAG_ANSWERED},
	    {"\\Flagged", STORE_FLAG_FLAGGED},
	    {"\\Deleted", STORE_FLAG_DELETED},
	    {"\\Draft", STORE_FLAG_DRAFT},
	};

	if (a->type != IMAP_ARG_ATOM)
		return -1;
	if (a->str[0] != '\\')
		return 0; /* TODO(append-keywords): keywords are dropped. */
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (strcasecmp(a->str, sys[i].name) == 0) {
			*flags |= sys[i].bit;
			return 0;
		}
	}
	return -1;
}

/*
 * RFC 3501 section 9 date-time, "dd-Mon-yyyy hh:mm:ss +zzzz" (the day
 * may be " d"): with the dashes as spaces it is an RFC 5322 date.
 */
static int
imap_append_date(const struct imap_arg *a, time_t *out)
{
	char buf[40];

	if (a->type != IMAP_ARG_STRING || a->len < 25 || a->len > 26 ||
	    a->str[a->len - 24] != '-' || a->str[a->len - 20] != '-')
		return -1;
	memcpy(buf, a->str, a->len + 1);
	buf[a->len - 24] = ' ';
	buf[a->len - 20] = ' ';
	return mime_date_parse(buf, out, NULL);
}

/* Parses the arguments after the mailbox; returns NULL, or text for BAD. */
static const char *
imap_append_parse(const struct imap_cmd *cmd, unsigned *flags, time_t *date,
    const struct imap_arg **msg)
{
	size_t i = 1;

	if (cmd->nargs < 2)
		return "Expected a mailbox and a message";
	if (cmd->args[i].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < cmd->args[i].count; k++)
			if (imap_append_flag(&cmd->args[i].list[k], flags) < 0)
				return "Invalid flag";
		i++;
	}
	if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_STRING) {
		if (imap_append_date(&cmd->args[i], date) < 0)
			return "Invalid date-time";
		i++;
	}
	if (i + 1 != cmd->nargs || cmd->args[i].type != IMAP_ARG_LITERAL)
		return "Expected the message as a literal";
	*msg = &cmd->args[i];
	return NULL;
}

static void
imap_append_done(enum store_append_status status, uint32_t uidvalidity,
    uint32_t uid, void *arg)
{
	struct imap_append_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		s->async = NULL;
		if (status == STORE_APPEND_OK)
			imap_session_printf(s,
			    "%s OK [APPENDUID %u %u] APPEND completed",
			    req->tag, uidvalidity, uid);
		else if (status == STORE_APPEND_NOMAILBOX)
			imap_session_printf(s,
			    "%s NO [TRYCREATE] No such mailbox", req->tag);
		else if (status == STORE_APPEND_QUOTA)
			imap_session_printf(s,
			    "%s NO [OVERQUOTA] Quota exceeded", req->tag);
		else
			imap_session_printf(s,
			    "%s NO [UNAVAILABLE] Cannot store the message",
			    req->tag);
		imap_session_idle(s);
	}
	free(req->tag);
	free(req);
}

/* The user's quota in bytes, 0 for none. */
static uint64_t
imap_append_quota(struct imap_session *s)
{
	const struct userdb_user *u = s->srv->env.userdb != NULL ?
	    userdb_lookup(s->srv->env.userdb, s->user) :
	    NULL;

	return u != NULL ? u->quota : 0;
}

void
imap_append_append(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *msg = NULL;
	const char *mbox =
	    cmd->nargs > 0 ? imap_arg_astring(&cmd->args[0]) : NULL;
	unsigned flags = 0;
	time_t date = time(NULL);
	const char *err = imap_append_parse(cmd, &flags, &date, &msg);
	struct imap_append_req *req;
	char *name = NULL;

	if (err == NULL && (mbox == NULL || cmd->args[0].type == IMAP_ARG_NIL))
		err = "Invalid mailbox name";
	if (err != NULL) {
		imap_session_bad(s, cmd->tag, err);
		return;
	}
	if (imap_select_name_in(s, mbox, &name) < 0 ||
	    !imap_utf7_mailbox_valid(name, strlen(name))) {
		free(name);
		imap_session_printf(s, "%s NO [TRYCREATE] No such mailbox",
		    cmd->tag);
		return;
	}
	req = xcalloc(1, sizeof(*req));
	req->async.s = s;
	req->tag = xstrdup(cmd->tag);
	s->async = &req->async;
	imap_session_busy(s);
	store_append(s->srv->env.store, s->user, name, msg->str, msg->len,
	    flags, date, imap_append_quota(s), imap_append_done, req);
	free(name);
}
