/*
 * `pushmaild serve`: opens the store, users and listeners named by the
 * settings and runs the event loop until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "base/hist.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "cmd/cmd.h"
#include "imap/imap_server.h"
#include "net/listener.h"
#include "net/tls.h"
#include "net/worker.h"
#include "push/hub.h"
#include "smtp/smtp_server.h"
#include "store/store.h"

#define SERVE_BACKLOG 4096
#define SERVE_LATENCY_LOG_SECONDS 60

struct serve {
	struct settings *s;
	struct event_base *base;
	struct worker_pool *io;
	struct store *store;
	struct hub *hub;
	struct userdb *userdb;
	struct auth *auth;
	SSL_CTX *tls;
	struct smtp_server **servers;
	struct imap_server **imap_servers; /* parallel to servers */
	struct listener **listeners;
	size_t nlisteners;
	struct event *sigs[4];
	struct event *latency_timer;
	uint64_t latency_logged; /* samples when push_latency was last logged */
	struct event *release_timer; /* SIGUSR1 waiting for busy handles */
	unsigned release_tries;
};

static void
serve_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	log_info("event=limits open_files=%llu",
	    (unsigned long long)rl.rlim_cur);
}

/*
 * Client connections stop at the open file limit less what the store may
 * need, so a reconnect storm cannot starve SELECTs and deliveries of index
 * handles (they would fail with "unable to open database file").
 */
static void
serve_conn_ceiling(struct serve *sv)
{
	struct rlimit rl;
	size_t reserve = store_fd_reserve(sv->store), ceiling;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	ceiling = (size_t)rl.rlim_cur > 2 * reserve ?
	    (size_t)rl.rlim_cur - reserve :
	    (size_t)rl.rlim_cur / 2;
	listener_set_ceiling(ceiling);
	log_info("event=limits connections=%zu fd_reserve=%zu", ceiling,
	    reserve);
}

static int
serve_needs_tls(const struct settings *s)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].tls != SETTINGS_TLS_NONE)
			return 1;
	}
	return 0;
}

static int
serve_tls(struct serve *sv)
{
	struct settings *s = sv->s;
	char err[512], *dir;
	int r;

	if (!serve_needs_tls(s))
		return 0;
	dir = xasprintf("%s/tls", s->data_dir);
	mkdir(dir, 0700);
	free(dir);
	r = tls_selfsigned_ensure(s->tls_cert, s->tls_key, s->hostname, err,
	    sizeof(err));
	if (r < 0) {
		log_error("event=tls error=\"%s\"", err);
		return -1;
	}
	if (r == 1)
		log_info("event=tls made=self-signed cert=%s host=%s",
		    s->tls_cert, s->hostname);
	sv->tls = tls_server_ctx_new(s->tls_cert, s->tls_key, err, sizeof(err));
	if (sv->tls == NULL) {
		log_error("event=tls error=\"%s\"", err);
		return -1;
	}
	return 0;
}

static void
serve_on_user_change(const char *user, void *arg)
{
	struct serve *sv = arg;

	if (sv->auth != NULL)
		auth_forget(sv->auth, user);
	log_info("event=users changed=%s", user ? user : "*");
}

static int
serve_users(struct serve *sv)
{
	struct settings *s = sv->s;
	char err[512];
	int fd;

	/* A missing users file is an empty one; make it so the watch works. */
	fd = open(s->users_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	sv->userdb = userdb_open(s->users_file, s->aliases_file, s->postmaster,
	    s->default_quota, err, sizeof(err));
	if (sv->userdb == NULL) {
		log_error("event=users error=\"%s\"", err);
		return -1;
	}
	if (userdb_watch(sv->userdb, sv->base, serve_on_user_change, sv) < 0)
		log_warn("event=users error=\"cannot watch %s for changes\"",
		    s->users_file);
	sv->auth = auth_new(sv->base, sv->userdb, (unsigned)s->auth_threads,
	    s->auth_queue);
	return 0;
}

/*
 * Logs the hub's push latency histogram since start: per delivered message
 * someone watched, from its durable commit (I/O thread) to the return of
 * the last watcher's callback, which queued the output; the kernel write
 * follows in the same pass of the loop.
 */
static void
serve_log_latency(struct serve *sv)
{
	const struct hist *h = hub_latency(sv->hub);

	sv->latency_logged = h->count;
	log_info("event=push_latency n=%llu p50_us=%.1f p90_us=%.1f "
	         "p99_us=%.1f max_us=%.1f",
	    (unsigned long long)h->count, hist_percentile(h, 0.5) / 1e3,
	    hist_percentile(h, 0.9) / 1e3, hist_percentile(h, 0.99) / 1e3,
	    h->max_ns / 1e3);
}

/* Every SERVE_LATENCY_LOG_SECONDS, if pushes happened since the last line. */
static void
serve_on_latency_timer(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;

	if (hub_latency(sv->hub)->count != sv->latency_logged)
		serve_log_latency(sv);
}

static void
serve_latency_timer(struct serve *sv)
{
	struct timeval tv = {SERVE_LATENCY_LOG_SECONDS, 0};

	sv->latency_timer =
	    event_new(sv->base, -1, EV_PERSIST, serve_on_latency_timer, sv);
	event_add(sv->latency_timer, &tv);
}

static int
serve_store(struct serve *sv)
{
	char err[512], *dir;

	sv->io =
	    worker_pool_new(sv->base, "io", (unsigned)sv->s->io_threads, 0, 0);
	dir = xasprintf("%s/mail", sv->s->data_dir);
	sv->store = store_new(sv->base, sv->io, dir, err, sizeof(err));
	free(dir);
	if (sv->store == NULL || store_recover(sv->store, err, sizeof(err))) {
		log_error("event=store error=\"%s\"", err);
		return -1;
	}
	store_set_fsync_mode(sv->store, sv->s->fsync_mode);
	/* Every commit reaches the hub, which tells whoever watches. */
	sv->hub = hub_new();
	store_set_change_cb(sv->store, hub_publish, sv->hub);
	serve_latency_timer(sv);
	return 0;
}

static void
serve_smtp_settings(struct serve *sv, const struct settings_listener *l,
    struct smtp_settings *ss)
{
	const struct settings *s = sv->s;

	memset(ss, 0, sizeof(*ss));
	ss->mode = l->mode;
	ss->name = l->name;
	ss->hostname = s->hostname;
	ss->tls = l->tls != SETTINGS_TLS_NONE ? sv->tls : NULL;
	ss->implicit_tls = l->tls == SETTINGS_TLS_IMPLICIT;
	ss->auth_plaintext = s->auth_allow_plaintext;
	ss->max_message_size = s->max_message_size;
	ss->max_recipients = (unsigned)s->max_recipients;
	ss->max_bad_commands = (unsigned)s->max_bad_commands;
	ss->timeout = (unsigned)s->smtp_timeout;
	ss->data_timeout = (unsigned)s->smtp_data_timeout;
	ss->bare_lf_normalize = s->bare_lf_normalize;
}

static void
serve_imap_server(struct serve *sv, const struct settings_listener *l)
{
	struct imap_env env = {sv->store, sv->userdb, sv->auth, sv->hub};
	struct imap_settings is;

	memset(&is, 0, sizeof(is));
	is.name = l->name;
	is.hostname = sv->s->hostname;
	is.tls = l->tls != SETTINGS_TLS_NONE ? sv->tls : NULL;
	is.implicit_tls = l->tls == SETTINGS_TLS_IMPLICIT;
	is.plaintext_auth = sv->s->imap_plaintext_auth;
	is.max_bad_commands = (unsigned)sv->s->max_bad_commands;
	is.timeout = (unsigned)sv->s->imap_timeout;
	is.timeout_login = (unsigned)sv->s->imap_timeout_login;
	is.idle_keepalive = (unsigned)sv->s->imap_idle_keepalive;
	is.idle_hibernate = (unsigned)sv->s->imap_idle_hibernate;
	sv->imap_servers[sv->nlisteners] = imap_server_new(sv->base, &is, &env);
}

static void
serve_smtp_server(struct serve *sv, const struct settings_listener *l)
{
	struct smtp_env env = {sv->store, sv->userdb, sv->auth};
	struct smtp_settings ss;

	serve_smtp_settings(sv, l, &ss);
	if (l->mode == SMTP_MODE_LMTP)
		env.auth = NULL;
	sv->servers[sv->nlisteners] = smtp_server_new(sv->base, &ss, &env);
}

static int
serve_listen_one(struct serve *sv, const struct settings_listener *l)
{
	listener_accept_cb accept = smtp_server_accept;
	struct listener *lis;
	char err[512];
	size_t i = sv->nlisteners;
	void *srv;

	if (l->is_imap) {
		serve_imap_server(sv, l);
		accept = imap_server_accept;
		srv = sv->imap_servers[i];
	} else {
		serve_smtp_server(sv, l);
		srv = sv->servers[i];
	}
	if (l->is_unix)
		lis = listener_new_unix(sv->base, l->address, 0660, accept, srv,
		    err, sizeof(err));
	else
		lis = listener_new_tcp(sv->base, l->address, SERVE_BACKLOG,
		    accept, srv, err, sizeof(err));
	if (lis == NULL) {
		log_error("event=listen name=%s error=\"%s\"", l->name, err);
		smtp_server_free(&sv->servers[i]);
		imap_server_free(&sv->imap_servers[i]);
		return -1;
	}
	sv->listeners[i] = lis;
	sv->nlisteners++;
	if (l->is_unix)
		log_info("event=listen name=%s proto=%s addr=unix:%s", l->name,
		    l->protocol, l->address);
	else
		log_info("event=listen name=%s proto=%s addr=%s port=%d tls=%s",
		    l->name, l->protocol, l->address, listener_port(lis),
		    l->tls == SETTINGS_TLS_IMPLICIT     ? "implicit" :
		        l->tls == SETTINGS_TLS_STARTTLS ? "starttls" :
		                                          "none");
	return 0;
}

static int
serve_listen(struct serve *sv)
{
	struct settings *s = sv->s;
	struct settings_listener lmtp = {.name = "lmtp-local",
	    .protocol = "lmtp",
	    .mode = SMTP_MODE_LMTP,
	    .address = s->lmtp_socket,
	    .is_unix = 1};
	size_t n = s->nlisteners + 1;

	sv->servers = xcalloc(n, sizeof(*sv->servers));
	sv->imap_servers = xcalloc(n, sizeof(*sv->imap_servers));
	sv->listeners = xcalloc(n, sizeof(*sv->listeners));
	for (size_t i = 0; i < s->nlisteners; i++) {
		if (serve_listen_one(sv, &s->listeners[i]) < 0)
			return -1;
	}
	if (s->lmtp_socket[0] != '\0' && serve_listen_one(sv, &lmtp) < 0)
		return -1;
	return 0;
}

/* Tries SERVE_RELEASE_TRIES times, SERVE_RELEASE_WAIT_US apart. */
#define SERVE_RELEASE_TRIES 500
#define SERVE_RELEASE_WAIT_US 10000

/*
 * The indexes are locked while open: SIGUSR1 frees them for sqlite3 or a
 * backup until sessions use them again. A handle a job is using closes
 * once the job ends, so this retries until none is left (jobs take
 * milliseconds), for 5 s at most.
 */
static void
serve_release(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;
	struct timeval later = {0, SERVE_RELEASE_WAIT_US};
	size_t busy = store_release_handles(sv->store);

	if (busy > 0 && ++sv->release_tries < SERVE_RELEASE_TRIES) {
		event_add(sv->release_timer, &later);
		return;
	}
	if (busy > 0)
		log_warn("event=store action=release_handles busy=%zu", busy);
	else
		log_info("event=store action=release_handles");
}

static void
serve_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;

	if (sig == SIGHUP) {
		log_info("event=reload what=users");
		userdb_reload(sv->userdb);
		return;
	}
	if (sig == SIGUSR1) {
		sv->release_tries = 0;
		if (!event_pending(sv->release_timer, EV_TIMEOUT, NULL))
			serve_release(-1, 0, sv);
		return;
	}
	log_info("event=stop signal=%d", (int)sig);
	event_base_loopexit(sv->base, NULL);
}

/*
 * The event base, with two priorities: the worker pools' completions (a
 * delivery's push, a login's verdict) run before the client I/O that is
 * ready in the same pass of the loop.
 */
static struct event_base *
serve_base(void)
{
	struct event_base *base = event_base_new();

	if (base == NULL || event_base_priority_init(base, 2) < 0)
		log_fatal("event=start error=\"cannot create the event loop\"");
	return base;
}

static void
serve_signals(struct serve *sv)
{
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sv->sigs[i] =
		    evsignal_new(sv->base, sigs[i], serve_on_signal, sv);
		event_add(sv->sigs[i], NULL);
	}
	sv->release_timer = evtimer_new(sv->base, serve_release, sv);
}

static void
serve_cleanup(struct serve *sv)
{
	for (size_t i = 0; i < sv->nlisteners; i++) {
		listener_free(&sv->listeners[i]);
		smtp_server_free(&sv->servers[i]);
		imap_server_free(&sv->imap_servers[i]);
	}
	free(sv->listeners);
	free(sv->servers);
	free(sv->imap_servers);
	for (size_t i = 0; i < sizeof(sv->sigs) / sizeof(sv->sigs[0]); i++) {
		if (sv->sigs[i] != NULL)
			event_free(sv->sigs[i]);
	}
	if (sv->latency_timer != NULL)
		event_free(sv->latency_timer);
	if (sv->release_timer != NULL)
		event_free(sv->release_timer);
	/* The store waits for deliveries in flight before it goes. */
	store_free(&sv->store);
	if (sv->hub != NULL)
		serve_log_latency(sv);
	hub_free(&sv->hub);
	auth_free(&sv->auth);
	userdb_free(&sv->userdb);
	worker_pool_free(&sv->io);
	if (sv->tls != NULL)
		SSL_CTX_free(sv->tls);
	event_base_free(sv->base);
}

static void
serve_hint(struct serve *sv)
{
	size_t n = userdb_count(sv->userdb);

	if (n > 0) {
		log_info("event=ready users=%zu", n);
		return;
	}
	log_info("event=ready users=0 hint=\"add a user: pushmaild%s%s "
	         "user add alice@example.org\"",
	    sv->s->config_path ? " -c " : "",
	    sv->s->config_path ? sv->s->config_path : "");
}

int
cmd_serve(struct settings *s)
{
	struct serve sv = {.s = s};
	char err[512];
	int lock, r = 1;

	lock = cmd_lock_data_dir(s, 0, err, sizeof(err));
	if (lock < 0) {
		log_error("event=start error=\"%s\"", err);
		return 1;
	}
	serve_raise_nofile();
	evthread_use_pthreads();
	sv.base = serve_base();
	serve_signals(&sv);
	if (serve_tls(&sv) == 0 && serve_store(&sv) == 0 &&
	    serve_users(&sv) == 0 && serve_listen(&sv) == 0) {
		serve_conn_ceiling(&sv);
		serve_hint(&sv);
		event_base_dispatch(sv.base);
		r = 0;
	}
	serve_cleanup(&sv);
	close(lock);
	log_info("event=exit status=%d", r);
	return r;
}
