/*
 * An SMTP, submission or LMTP listener's server: its settings, the accept
 * entry point that wraps sockets into connections, and the list of open
 * sessions it closes at shutdown.
 */
#include <stdlib.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/conn.h"
#include "smtp/smtp_server.h"
#include "smtp/smtp_session.h"

struct smtp_server *
smtp_server_new(struct event_base *base, const struct smtp_settings *settings,
    const struct smtp_env *env)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->set = *settings;
	srv->set.name = xstrdup(settings->name ? settings->name : "smtp");
	srv->set.hostname =
	    xstrdup(settings->hostname ? settings->hostname : "localhost");
	srv->env = *env;
	return srv;
}

void
smtp_server_accept(int fd, const struct sockaddr *peer, socklen_t peerlen,
    void *arg)
{
	struct smtp_server *srv = arg;
	SSL_CTX *tls = srv->set.implicit_tls ? srv->set.tls : NULL;
	struct conn *conn = conn_new(srv->base, fd, tls, peer, peerlen);

	if (conn == NULL) {
		log_warn("event=accept listener=%s error=\"connection setup "
		         "failed\"",
		    srv->set.name);
		return;
	}
	smtp_session_start(srv, conn);
}

size_t
smtp_server_sessions(const struct smtp_server *srv)
{
	return srv->nsessions;
}

void
smtp_server_free(struct smtp_server **srvp)
{
	struct smtp_server *srv = *srvp;

	if (srv == NULL)
		return;
	while (srv->sessions != NULL)
		smtp_session_close(srv->sessions);
	free((char *)srv->set.name);
	free((char *)srv->set.hostname);
	free(srv);
	*srvp = NULL;
}
