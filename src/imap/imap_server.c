/*
 * An IMAP listener's server: its settings with defaults filled in, the
 * accept entry point that wraps sockets into connections, and the list of
 * open sessions it closes at shutdown.
 */
#include <stdlib.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "imap/imap_server.h"
#include "imap/imap_session.h"
#include "net/conn.h"
#include "net/wheel.h"

static void
imap_server_defaults(struct imap_settings *set)
{
	if (set->timeout_login == 0)
		set->timeout_login = 60;
	/* RFC 9051 section 5.4: at least 30 minutes once logged in. */
	if (set->timeout == 0)
		set->timeout = 30 * 60;
	if (set->line_max == 0)
		set->line_max = 64 * 1024;
	if (set->literal_max == 0)
		set->literal_max = 64 * 1024 * 1024;
	if (set->literal_max_login == 0)
		set->literal_max_login = 8 * 1024;
	if (set->output_limit == 0)
		set->output_limit = 256 * 1024;
	if (set->max_bad_commands == 0)
		set->max_bad_commands = 10;
	/* Mobile carriers' NATs drop flows silent for 5 minutes or more. */
	if (set->idle_keepalive == 0)
		set->idle_keepalive = 4 * 60;
	if (set->idle_hibernate == 0)
		set->idle_hibernate = 30;
}

struct imap_server *
imap_server_new(struct event_base *base, const struct imap_settings *settings,
    const struct imap_env *env)
{
	struct imap_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->set = *settings;
	srv->set.name = xstrdup(settings->name ? settings->name : "imap");
	srv->set.hostname =
	    xstrdup(settings->hostname ? settings->hostname : "localhost");
	imap_server_defaults(&srv->set);
	srv->env = *env;
	srv->idle_wheel = wheel_new(base, imap_idle_on_timer, srv);
	return srv;
}

void
imap_server_accept(int fd, const struct sockaddr *peer, socklen_t peerlen,
    void *arg)
{
	struct imap_server *srv = arg;
	SSL_CTX *tls = srv->set.implicit_tls ? srv->set.tls : NULL;
	struct conn *conn = conn_new(srv->base, fd, tls, peer, peerlen);

	if (conn == NULL) {
		log_warn("event=accept listener=%s error=\"connection setup "
		         "failed\"",
		    srv->set.name);
		return;
	}
	imap_session_start(srv, conn);
}

size_t
imap_server_sessions(const struct imap_server *srv)
{
	return srv->nsessions;
}

void
imap_server_free(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;

	if (srv == NULL)
		return;
	while (srv->sessions != NULL)
		imap_session_close(srv->sessions);
	wheel_free(&srv->idle_wheel);
	free((char *)srv->set.name);
	free((char *)srv->set.hostname);
	free(srv);
	*srvp = NULL;
}
