/*
 * APPEND (RFC 3501 section 6.3.11, RFC 9051 section 6.3.12) and
 * MULTIAPPEND (RFC 3502) with the APPENDUID response code of UIDPLUS (RFC
 * 4315 section 3), the TRYCREATE, OVERQUOTA and TOOBIG codes of RFC 5530,
 * literal8 messages (RFC 3516 section 4.4) and the UTF8 append data of RFC
 * 6855 section 4; and CHECK (RFC 3501 section 6.4.1). The messages arrive
 * as literals that the parser holds; the store makes them durable, all or
 * none.
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

/*
 * Bounds of one command: messages, keywords per message and a keyword's
 * length. Each literal is bounded by APPENDLIMIT and all of them together
 * by the parser's literal_total_max (imap_parser.h).
 */
#define IMAP_APPEND_MAX_MSGS 1000
#define IMAP_APPEND_MAX_KEYWORDS 64
#define IMAP_APPEND_KEYWORD_MAX 128

/* An APPEND waiting for the store; input is paused. */
struct imap_append_req {
	struct imap_async async; /* first */
	char *tag;
};

/* RFC 3501 section 9: a keyword is an atom (no atom-specials). */
static int
imap_append_keyword_ok(const char *p, size_t len)
{
	if (len == 0 || len > IMAP_APPEND_KEYWORD_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f ||
		    strchr("(){%*\"\\]", p[i]) != NULL)
			return 0;
	return 1;
}

/* One flag of the list into m; returns NULL, or the text for BAD. */
static const char *
imap_append_flag(const struct imap_arg *a, struct store_append_msg *m,
    const char **kw)
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
		return "Flags are atoms";
	if (a->str[0] != '\\') {
		if (!imap_append_keyword_ok(a->str, a->len))
			return "Invalid keyword";
		if (m->nkw == IMAP_APPEND_MAX_KEYWORDS)
			return "Too many keywords";
		kw[m->nkw++] = a->str;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (strcasecmp(a->str, sys[i].name) == 0) {
			m->flags |= sys[i].bit;
			return NULL;
		}
	}
	return "Invalid flag";
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

/*
 * The message data at args[*i]: a literal or literal8, or RFC 6855's
 * "UTF8 (literal8)". Returns the literal, or NULL.
 */
static const struct imap_arg *
imap_append_data(const struct imap_cmd *cmd, size_t *i)
{
	const struct imap_arg *a = &cmd->args[*i];

	if (a->type == IMAP_ARG_LITERAL) {
		(*i)++;
		return a;
	}
	if (imap_arg_atom_is(a, "UTF8") && *i + 1 < cmd->nargs &&
	    a[1].type == IMAP_ARG_LIST && a[1].count == 1 &&
	    a[1].list[0].type == IMAP_ARG_LITERAL) {
		*i += 2;
		return &a[1].list[0];
	}
	return NULL;
}

/*
 * One append-message at args[*i]: [flag-list] [date-time] data. Fills m
 * (its keywords point into cmd); returns NULL, or the text for BAD.
 */
static const char *
imap_append_message(const struct imap_cmd *cmd, size_t *i,
    struct store_append_msg *m)
{
	const struct imap_arg *a = &cmd->args[*i], *data;
	const char **kw = NULL;

	m->internaldate = time(NULL);
	if (a->type == IMAP_ARG_LIST) {
		kw = xcalloc(a->count ? a->count : 1, sizeof(*kw));
		m->keywords = kw;
		for (size_t k = 0; k < a->count; k++) {
			const char *err = imap_append_flag(&a->list[k], m, kw);

			if (err != NULL)
				return err;
		}
		a = &cmd->args[++*i];
	}
	if (*i < cmd->nargs && a->type == IMAP_ARG_STRING) {
		if (imap_append_date(a, &m->internaldate) < 0)
			return "Invalid date-time";
		++*i;
	}
	if (*i >= cmd->nargs || (data = imap_append_data(cmd, i)) == NULL)
		return "Expected the message as a literal";
	m->data = data->str;
	m->len = data->len;
	return NULL;
}

/*
 * Parses the messages after the mailbox into *msgs (the caller frees each
 * keywords array and the array); returns NULL, or the text for BAD.
 */
static const char *
imap_append_parse(const struct imap_cmd *cmd, struct store_append_msg **msgs,
    size_t *n)
{
	const char *err = NULL;
	size_t i = 1;

	*msgs = NULL;
	*n = 0;
	if (cmd->nargs < 2)
		return "Expected a mailbox and a message";
	*msgs = xcalloc(cmd->nargs - 1, sizeof(**msgs));
	while (i < cmd->nargs && err == NULL)
		err = imap_append_message(cmd, &i, &(*msgs)[(*n)++]);
	return err;
}

static void
imap_append_msgs_free(struct store_append_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)msgs[i].keywords);
	free(msgs);
}

/* "tag OK [APPENDUID v set]": the UIDs as ranges (RFC 4315 uid-set). */
static void
imap_append_ok(struct imap_session *s, const char *tag, uint32_t uidvalidity,
    const uint32_t *uids, size_t n)
{
	struct mime_buf set = {0};

	for (size_t i = 0; i < n;) {
		size_t k = i;

		while (k + 1 < n && uids[k + 1] == uids[k] + 1)
			k++;
		mime_buf_printf(&set, "%s%u", i > 0 ? "," : "", uids[i]);
		if (k > i)
			mime_buf_printf(&set, ":%u", uids[k]);
		i = k + 1;
	}
	imap_session_printf(s, "%s OK [APPENDUID %u %s] APPEND completed", tag,
	    uidvalidity, set.data != NULL ? set.data : "");
	free(set.data);
}

static void
imap_append_done(enum store_append_status status, uint32_t uidvalidity,
    const uint32_t *uids, size_t n, void *arg)
{
	struct imap_append_req *req = arg;
	struct imap_session *s = req->async.s;

	if (s != NULL && s->conn != NULL) {
		s->async = NULL;
		if (status == STORE_APPEND_OK)
			imap_append_ok(s, req->tag, uidvalidity, uids, n);
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

/*
 * Checks what the store would refuse anyway, before it is asked; returns
 * NULL, or the text for NO.
 */
static const char *
imap_append_refuse(const struct store_append_msg *msgs, size_t n)
{
	if (n > IMAP_APPEND_MAX_MSGS)
		return "[LIMIT] Too many messages in one APPEND";
	/* RFC 3502 section 6.3.11: an empty message cancels the command. */
	for (size_t i = 0; i < n; i++)
		if (msgs[i].len == 0)
			return "Empty message: APPEND cancelled";
	return NULL;
}

void
imap_append_append(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *mbox =
	    cmd->nargs > 0 ? imap_arg_astring(&cmd->args[0]) : NULL;
	struct store_append_msg *msgs;
	size_t n;
	const char *err = imap_append_parse(cmd, &msgs, &n);
	struct imap_append_req *req;
	char *name = NULL;

	if (err == NULL && (mbox == NULL || cmd->args[0].type == IMAP_ARG_NIL))
		err = "Invalid mailbox name";
	if (err != NULL) {
		imap_session_bad(s, cmd->tag, err);
		goto out;
	}
	if ((err = imap_append_refuse(msgs, n)) != NULL) {
		imap_session_printf(s, "%s NO %s", cmd->tag, err);
		goto out;
	}
	if (imap_select_name_in(s, mbox, &name) < 0 ||
	    !imap_utf7_mailbox_valid(name, strlen(name))) {
		/* No CREATE could make it: no TRYCREATE (RFC 9051 6.3.12). */
		imap_session_printf(s, "%s NO [CANNOT] Invalid mailbox name",
		    cmd->tag);
		goto out;
	}
	req = xcalloc(1, sizeof(*req));
	req->async.s = s;
	req->tag = xstrdup(cmd->tag);
	s->async = &req->async;
	imap_session_busy(s);
	store_append(s->srv->env.store, s->user, name, msgs, n,
	    imap_append_quota(s), imap_append_done, req);
out:
	free(name);
	imap_append_msgs_free(msgs, n);
}

/*
 * CHECK (RFC 3501 section 6.4.1): every command that changes a mailbox
 * answers only once the change is on disk, so there is nothing to do.
 */
void
imap_append_check(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_session_bad(s, cmd->tag, "CHECK takes no arguments");
		return;
	}
	imap_session_printf(s, "%s OK CHECK completed", cmd->tag);
}
