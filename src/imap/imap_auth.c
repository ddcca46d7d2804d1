/*
 * LOGIN (RFC 9051 section 6.2.3) and AUTHENTICATE PLAIN (section 6.2.2,
 * RFC 4616) with an initial response (SASL-IR, RFC 4959); credentials are
 * checked off the loop by auth/, which also throttles failures.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_session.h"
#include "net/conn.h"

void
imap_auth_clear(struct imap_session *s)
{
	free(s->tag);
	s->tag = NULL;
	if (s->auth_req != NULL)
		auth_request_cancel(&s->auth_req);
}

static const char *
imap_auth_result_word(enum auth_result result)
{
	switch (result) {
	case AUTH_OK:
		return "ok";
	case AUTH_FAILED:
		return "fail";
	case AUTH_TEMPFAIL:
		return "tempfail";
	}
	return "fail";
}

/* Logged in: the state changes, and the tagged OK tells the new list. */
static void
imap_auth_ok(struct imap_session *s, const char *user)
{
	char *prefix = xasprintf("%s OK [", s->tag);

	s->state = IMAP_STATE_AUTH;
	s->user = xstrdup(user);
	imap_session_capability(s, prefix, "] Logged in");
	free(prefix);
}

static void
imap_auth_done(enum auth_result result, const char *user, void *arg)
{
	struct imap_session *s = arg;

	s->auth_req = NULL;
	s->in_run = 1;
	log_info("sid=" LOG_SID_FMT " proto=imap event=auth result=%s%s%s",
	    s->sid, imap_auth_result_word(result), user != NULL ? " user=" : "",
	    user != NULL ? user : "");
	if (result == AUTH_OK)
		imap_auth_ok(s, user);
	else if (result == AUTH_FAILED)
		imap_session_fail(s, s->tag,
		    "[AUTHENTICATIONFAILED] Authentication failed");
	else
		imap_session_printf(s,
		    "%s NO [UNAVAILABLE] Temporary authentication failure",
		    s->tag);
	free(s->tag);
	s->tag = NULL;
	if (s->phase == IMAP_PHASE_BUSY && !s->dead)
		imap_session_idle(s);
	s->in_run = 0;
	if (s->dead)
		imap_session_free(s);
}

/* Checks the credentials on the auth pool; input waits meanwhile. */
static void
imap_auth_verify(struct imap_session *s, const char *tag, const char *authcid,
    const char *password)
{
	char ipbuf[CONN_IP_LEN];
	free(s->tag);
	s->tag = xstrdup(tag);
	imap_session_busy(s);
	s->auth_req = auth_verify(s->srv->env.auth, authcid, password,
	    conn_peer_ip(s->conn, ipbuf), imap_auth_done, s);
}

/* 1 when a login may go on; otherwise answers and returns 0. */
static int
imap_auth_allowed(struct imap_session *s, const char *tag)
{
	if (s->srv->env.auth == NULL) {
		imap_session_printf(s, "%s NO [UNAVAILABLE] No user database",
		    tag);
		return 0;
	}
	if (!imap_session_plaintext_ok(s)) {
		imap_session_printf(s,
		    "%s NO [PRIVACYREQUIRED] Use STARTTLS or TLS first", tag);
		return 0;
	}
	return 1;
}

void
imap_auth_login(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *user, *pass;

	if (cmd->nargs != 2 ||
	    (user = imap_arg_astring(&cmd->args[0])) == NULL ||
	    (pass = imap_arg_astring(&cmd->args[1])) == NULL) {
		imap_session_bad(s, cmd->tag, "LOGIN needs user and password");
		return;
	}
	if (imap_auth_allowed(s, cmd->tag))
		imap_auth_verify(s, cmd->tag, user, pass);
	/* The password leaves no copy behind in freed memory. */
	xfree_secret(cmd->args[1].str, cmd->args[1].len);
	cmd->args[1].str = NULL;
}

/* A PLAIN response (base64), from SASL-IR or from the line after "+ ". */
static void
imap_auth_plain(struct imap_session *s, const char *tag, const char *b64)
{
	char *authzid, *authcid, *password;
	size_t len = strlen(b64);

	/* RFC 4959 section 3: "=" is an empty initial response. */
	if (len == 1 && b64[0] == '=')
		len = 0;
	if (sasl_plain_decode(b64, len, &authzid, &authcid, &password) < 0) {
		imap_session_bad(s, tag, "Malformed PLAIN response");
		return;
	}
	/* Acting as someone else is not supported. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0)
		imap_session_fail(s, tag,
		    "[AUTHORIZATIONFAILED] Cannot act as another user");
	else
		imap_auth_verify(s, tag, authcid, password);
	free(authzid);
	free(authcid);
	xfree_secret_str(password);
}

void
imap_auth_response(struct imap_session *s, const char *line)
{
	char *tag = s->tag;

	s->tag = NULL;
	if (strcmp(line, "*") == 0)
		imap_session_bad(s, tag, "Authentication cancelled");
	else
		imap_auth_plain(s, tag, line);
	free(tag);
}

void
imap_auth_authenticate(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *ir = NULL;

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->nargs == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_session_bad(s, cmd->tag, "AUTHENTICATE needs a mechanism");
		return;
	}
	if (!imap_arg_atom_is(&cmd->args[0], "PLAIN")) {
		imap_session_printf(s, "%s NO [CANNOT] Unsupported mechanism",
		    cmd->tag);
		return;
	}
	if (!imap_auth_allowed(s, cmd->tag))
		return;
	if (cmd->nargs == 2)
		ir = cmd->args[1].str;
	if (ir != NULL) {
		imap_auth_plain(s, cmd->tag, ir);
		xfree_secret(cmd->args[1].str, cmd->args[1].len);
		cmd->args[1].str = NULL;
		return;
	}
	free(s->tag);
	s->tag = xstrdup(cmd->tag);
	s->phase = IMAP_PHASE_AUTH;
	imap_session_printf(s, "+ ");
}
