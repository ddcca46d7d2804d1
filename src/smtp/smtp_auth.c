/*
 * AUTH on submission sessions (RFC 4954) with the PLAIN (RFC 4616) and
 * LOGIN mechanisms; credentials are checked off the loop by auth/.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "smtp/smtp_parser.h"
#include "smtp/smtp_session.h"

void
smtp_auth_clear(struct smtp_session *s)
{
	s->auth_step = AUTH_NONE;
	xfree_secret_str(s->auth_login_user);
	s->auth_login_user = NULL;
	if (s->auth_req != NULL)
		auth_request_cancel(&s->auth_req);
}

static void
smtp_session_on_auth(enum auth_result result, const char *user, void *arg)
{
	struct smtp_session *s = arg;

	s->auth_req = NULL;
	s->in_run = 1;
	log_info("sid=" LOG_SID_FMT " proto=%s event=auth result=%s%s%s",
	    s->sid, smtp_session_proto(s->mode),
	    result == AUTH_OK         ? "ok" :
	        result == AUTH_FAILED ? "fail" :
	                                "tempfail",
	    user != NULL ? " user=" : "", user != NULL ? user : "");
	if (result == AUTH_OK) {
		s->user = xstrdup(user);
		smtp_session_reply(s, "235 2.7.0 Authentication successful");
	} else if (result == AUTH_FAILED) {
		smtp_session_bad(s,
		    "535 5.7.8 Authentication credentials invalid");
	} else {
		smtp_session_reply(s,
		    "454 4.7.0 Temporary authentication failure");
	}
	if (s->phase == PH_BUSY && !s->dead)
		smtp_session_idle(s);
	s->in_run = 0;
	if (s->dead)
		smtp_session_free(s);
}

/* Checks the credentials on the auth pool; input waits meanwhile. */
static void
smtp_session_verify(struct smtp_session *s, const char *authcid,
    const char *password)
{
	char ipbuf[CONN_IP_LEN];
	smtp_session_busy(s);
	s->auth_step = AUTH_NONE;
	s->auth_req = auth_verify(s->srv->env.auth, authcid, password,
	    conn_peer_ip(s->conn, ipbuf), smtp_session_on_auth, s);
}

static void
smtp_session_auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	char *authzid, *authcid, *password;

	if (sasl_plain_decode(b64, len, &authzid, &authcid, &password) < 0) {
		s->auth_step = AUTH_NONE;
		smtp_session_bad(s, "501 5.5.2 Cannot decode response");
		return;
	}
	/* Acting as someone else is not supported. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		s->auth_step = AUTH_NONE;
		smtp_session_bad(s,
		    "535 5.7.8 Authentication credentials invalid");
	} else {
		smtp_session_verify(s, authcid, password);
	}
	free(authzid);
	free(authcid);
	xfree_secret_str(password);
}

static void
smtp_session_auth_login(struct smtp_session *s, const char *b64, size_t len)
{
	char *value;

	if (sasl_login_decode(b64, len, &value) < 0) {
		smtp_auth_clear(s);
		smtp_session_bad(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth_step == AUTH_LOGIN_USER) {
		s->auth_login_user = value;
		s->auth_step = AUTH_LOGIN_PASS;
		smtp_session_reply(s, "334 UGFzc3dvcmQ6");
		s->phase = PH_AUTH;
		return;
	}
	smtp_session_verify(s, s->auth_login_user, value);
	xfree_secret_str(value);
	xfree_secret_str(s->auth_login_user);
	s->auth_login_user = NULL;
}

/* One client response to a 334 challenge ("=" is an empty one). */
void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	s->phase = PH_CMD;
	if (len == 1 && line[0] == '*') {
		smtp_auth_clear(s);
		smtp_session_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (len == 1 && line[0] == '=')
		len = 0;
	if (s->auth_step == AUTH_PLAIN_WAIT)
		smtp_session_auth_plain(s, line, len);
	else
		smtp_session_auth_login(s, line, len);
}

void
smtp_auth_cmd(struct smtp_session *s, struct smtp_cmd *cmd)
{
	int plain = strcmp(cmd->arg, "PLAIN") == 0;

	if (s->mode != SMTP_MODE_SUBMISSION || s->srv->env.auth == NULL) {
		smtp_session_bad(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (s->helo == NULL || s->user != NULL || s->mail_from != NULL) {
		smtp_session_reply(s,
		    s->user != NULL ? "503 5.5.1 Already authenticated" :
		                      "503 5.5.1 Bad sequence of commands");
		return;
	}
	if (!conn_is_tls(s->conn) && !s->srv->set.auth_plaintext) {
		smtp_session_reply(s,
		    "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (!plain && strcmp(cmd->arg, "LOGIN") != 0) {
		smtp_session_reply(s,
		    "504 5.5.4 Unrecognized authentication type");
		return;
	}
	s->auth_step = plain ? AUTH_PLAIN_WAIT : AUTH_LOGIN_USER;
	if (cmd->initial != NULL) {
		smtp_auth_response(s, cmd->initial, strlen(cmd->initial));
		return;
	}
	smtp_session_reply(s, plain ? "334 " : "334 VXNlcm5hbWU6");
	s->phase = PH_AUTH;
}
