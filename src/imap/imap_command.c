/*
 * The command table and the commands valid before a mailbox is selected:
 * CAPABILITY, NOOP, LOGOUT and STARTTLS (RFC 9051 sections 6.1 and 6.2.1),
 * ENABLE (RFC 5161), ID (RFC 2971) and NAMESPACE (RFC 2342); the mailbox
 * commands live in imap_select.c, imap_list.c, imap_idle.c, imap_fetch.c,
 * imap_store.c, imap_search.c, imap_append.c and
 * imap_mailbox.c. Commands of RFC 9051 and the
 * extensions we will offer that do not work yet answer NO [CANNOT] in their
 * state, so clients fail clearly.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "net/conn.h"

#define ANY (IMAP_STATE_NOAUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)

typedef void (*imap_command_cb)(struct imap_session *s, struct imap_cmd *cmd);

struct imap_command {
	const char *name;
	unsigned states;     /* IMAP_STATE_* bits where it is valid */
	imap_command_cb run; /* NULL: not available yet */
};

static void
imap_cmd_capability(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_session_bad(s, cmd->tag, "CAPABILITY takes no arguments");
		return;
	}
	imap_session_capability(s, "* ", "");
	imap_session_printf(s, "%s OK CAPABILITY completed", cmd->tag);
}

static void
imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "%s OK NOOP completed", cmd->tag);
}

static void
imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "* BYE Logging out");
	imap_session_printf(s, "%s OK LOGOUT completed", cmd->tag);
	s->phase = IMAP_PHASE_CLOSING;
	conn_shutdown(s->conn);
}

static void
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd)
{
	if (s->srv->set.tls == NULL || conn_is_tls(s->conn)) {
		imap_session_bad(s, cmd->tag, "STARTTLS not available");
		return;
	}
	imap_session_printf(s, "%s OK Begin TLS negotiation now", cmd->tag);
	/* RFC 9051 section 6.2.1: input sent before the handshake is lost. */
	conn_starttls(s->conn, s->srv->set.tls);
	log_info("sid=" LOG_SID_FMT " proto=imap event=tls action=starttls",
	    s->sid);
}

/* RFC 2971: our identity; the client's is not needed. */
static void
imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->nargs != 1 ||
	    (cmd->args[0].type != IMAP_ARG_NIL &&
	        cmd->args[0].type != IMAP_ARG_LIST)) {
		imap_session_bad(s, cmd->tag, "ID needs a list or NIL");
		return;
	}
	imap_session_printf(s,
	    "* ID (\"name\" \"pushmail\" \"vendor\" "
	    "\"pushmail\")");
	imap_session_printf(s, "%s OK ID completed", cmd->tag);
}

static void
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_session_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_session_printf(s, "%s OK NAMESPACE completed", cmd->tag);
}

/* The ENABLE bit of one capability name, or 0 for names we ignore. */
static unsigned
imap_enable_bit(const struct imap_arg *arg)
{
	static const struct {
		const char *name;
		unsigned bit;
	} known[] = {
	    {"IMAP4rev2", IMAP_ENABLED_IMAP4REV2},
	    {"CONDSTORE", IMAP_ENABLED_CONDSTORE},
	    {"QRESYNC", IMAP_ENABLED_QRESYNC},
	    {"UTF8=ACCEPT", IMAP_ENABLED_UTF8},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (imap_arg_atom_is(arg, known[i].name))
			return known[i].bit;
	return 0;
}

/* RFC 5161 section 3.1: ENABLED lists only what this command turned on. */
static void
imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd)
{
	char list[128] = "";

	if (cmd->nargs == 0) {
		imap_session_bad(s, cmd->tag, "ENABLE needs capability names");
		return;
	}
	for (size_t i = 0; i < cmd->nargs; i++) {
		unsigned bit = imap_enable_bit(&cmd->args[i]);

		if (bit == 0 || (s->enabled & bit) != 0)
			continue;
		s->enabled |= bit;
		strcat(list, " ");
		strcat(list, cmd->args[i].str);
	}
	/* RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE. */
	if (s->enabled & IMAP_ENABLED_QRESYNC)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	imap_session_printf(s, "* ENABLED%s", list);
	imap_session_printf(s, "%s OK ENABLE completed", cmd->tag);
}

/*
 * Every command name we know. Those with a NULL handler exist in RFC 9051
 * or an extension we will offer and answer NO [CANNOT] for now.
 */
static const struct imap_command imap_commands[] = {
    {"CAPABILITY", ANY, imap_cmd_capability},
    {"NOOP", ANY, imap_cmd_noop},
    {"LOGOUT", ANY, imap_cmd_logout},
    {"ID", ANY, imap_cmd_id},
    {"STARTTLS", IMAP_STATE_NOAUTH, imap_cmd_starttls},
    {"LOGIN", IMAP_STATE_NOAUTH, imap_auth_login},
    {"AUTHENTICATE", IMAP_STATE_NOAUTH, imap_auth_authenticate},
    {"ENABLE", IMAP_STATE_AUTH, imap_cmd_enable},
    {"NAMESPACE", AUTHED, imap_cmd_namespace},
    {"SELECT", AUTHED, imap_select_select},
    {"EXAMINE", AUTHED, imap_select_select},
    {"CREATE", AUTHED, imap_mailbox_create},
    {"DELETE", AUTHED, imap_mailbox_delete},
    {"RENAME", AUTHED, imap_mailbox_rename},
    {"SUBSCRIBE", AUTHED, imap_mailbox_subscribe},
    {"UNSUBSCRIBE", AUTHED, imap_mailbox_unsubscribe},
    {"LIST", AUTHED, imap_list_list},
    {"LSUB", AUTHED, imap_list_lsub},
    {"STATUS", AUTHED, imap_list_status},
    {"APPEND", AUTHED, imap_append_append},
    {"IDLE", AUTHED, imap_idle_start},
    {"NOTIFY", AUTHED, NULL},
    {"GETQUOTA", AUTHED, NULL},
    {"GETQUOTAROOT", AUTHED, NULL},
    {"SETQUOTA", AUTHED, NULL},
    {"GETMETADATA", AUTHED, NULL},
    {"SETMETADATA", AUTHED, NULL},
    {"COMPRESS", AUTHED, NULL},
    {"UNAUTHENTICATE", AUTHED, NULL},
    {"CHECK", IMAP_STATE_SELECTED, imap_append_check},
    {"CLOSE", IMAP_STATE_SELECTED, imap_select_close},
    {"UNSELECT", IMAP_STATE_SELECTED, imap_select_unselect},
    {"EXPUNGE", IMAP_STATE_SELECTED, imap_store_expunge},
    {"SEARCH", IMAP_STATE_SELECTED, imap_search_search},
    {"FETCH", IMAP_STATE_SELECTED, imap_fetch_fetch},
    {"STORE", IMAP_STATE_SELECTED, imap_store_store},
    {"COPY", IMAP_STATE_SELECTED, imap_copy_copy},
    {"MOVE", IMAP_STATE_SELECTED, imap_copy_move},
    {"UID", IMAP_STATE_SELECTED, imap_fetch_uid},
    {"SORT", IMAP_STATE_SELECTED, imap_sort_sort},
    {"THREAD", IMAP_STATE_SELECTED, imap_sort_thread},
    {"REPLACE", IMAP_STATE_SELECTED, NULL},
};

static const struct imap_command *
imap_command_find(const char *name)
{
	size_t n = sizeof(imap_commands) / sizeof(imap_commands[0]);

	for (size_t i = 0; i < n; i++)
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return &imap_commands[i];
	return NULL;
}

static const char *
imap_command_state_error(const struct imap_session *s)
{
	if (s->state == IMAP_STATE_NOAUTH)
		return "Log in first";
	if (s->state == IMAP_STATE_AUTH)
		return "No mailbox selected";
	return "Not valid in this state";
}

void
imap_command_run(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_command *c = imap_command_find(cmd->name);
	unsigned nbad = s->nbad;

	if (c == NULL) {
		imap_session_bad(s, cmd->tag, "Unknown command");
		return;
	}
	if ((c->states & s->state) == 0) {
		if (s->state != IMAP_STATE_NOAUTH &&
		    (c->states & IMAP_STATE_NOAUTH) != 0)
			imap_session_bad(s, cmd->tag, "Already logged in");
		else
			imap_session_bad(s, cmd->tag,
			    imap_command_state_error(s));
		return;
	}
	if (c->run == NULL) {
		imap_session_printf(s, "%s NO [CANNOT] Not available yet",
		    cmd->tag);
		s->nbad = 0;
		return;
	}
	/* RFC 3501 section 7: news of the mailbox precede the tagged reply. */
	imap_select_updates(s, imap_select_expunge_ok(cmd->name));
	/* RFC 5182 section 2.1: "$" does not outlive the selection. */
	if (c->run == imap_select_select || c->run == imap_select_close ||
	    c->run == imap_select_unselect)
		imap_search_forget(s);
	c->run(s, cmd);
	/* Only consecutive errors end the session. */
	if (s->nbad == nbad)
		s->nbad = 0;
}
