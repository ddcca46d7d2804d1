/* Reads the configuration file into struct settings; see doc/config.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "base/xmalloc.h"
#include "cmd/settings.h"

#define SETTINGS_MAX_LISTENERS 64

static void
settings_defaults(struct settings *s)
{
	char host[HOST_NAME_MAX + 1];

	memset(s, 0, sizeof(*s));
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[HOST_NAME_MAX] = '\0';
	s->data_dir = xstrdup("pushmail-data");
	s->hostname = xstrdup(host);
	s->log_level = LOG_LEVEL_INFO;
	s->default_quota = 1024ULL * 1024 * 1024;
	s->max_message_size = 50ULL * 1024 * 1024;
	s->max_recipients = 100;
	s->max_bad_commands = 10;
	s->smtp_timeout = 300;
	s->smtp_data_timeout = 180;
	s->io_threads = 4;
	s->fsync_mode = STORE_FSYNC_FILE;
	s->auth_threads = 2;
	s->auth_queue = 1000;
	s->imap_plaintext_auth = IMAP_PLAINTEXT_LOOPBACK;
	s->imap_idle_keepalive = 4 * 60;
	s->imap_idle_hibernate = 30;
}

static void
settings_add_listener(struct settings *s, const char *name,
    const char *protocol, const char *address, enum settings_tls tls)
{
	struct settings_listener *l;

	s->listeners = xreallocarray(s->listeners, s->nlisteners + 1,
	    sizeof(*s->listeners));
	l = &s->listeners[s->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->name = xstrdup(name);
	l->protocol = xstrdup(protocol);
	l->address = xstrdup(address);
	l->tls = tls;
}

static int
settings_protocol(struct settings_listener *l)
{
	if (strcmp(l->protocol, "smtp") == 0)
		l->mode = SMTP_MODE_SMTP;
	else if (strcmp(l->protocol, "submission") == 0)
		l->mode = SMTP_MODE_SUBMISSION;
	else if (strcmp(l->protocol, "lmtp") == 0)
		l->mode = SMTP_MODE_LMTP;
	else if (strcmp(l->protocol, "imap") == 0)
		l->is_imap = 1;
	else
		return -1;
	return 0;
}

static void
settings_set_str(char **dst, struct config_section *sec, const char *key)
{
	struct config_entry *e = config_get(sec, key);

	if (e != NULL) {
		free(*dst);
		*dst = xstrdup(e->value);
	}
}

static int
settings_top_numbers(struct settings *s, struct config *cfg, char *err,
    size_t errlen)
{
	struct config_section *top = &cfg->sections[0];

	const struct {
		const char *key;
		uint64_t *dst;
		char kind; /* s: size, d: duration, n: number */
		uint64_t min, max;
	} nums[] = {
	    {"default_quota", &s->default_quota, 's', 0, 0},
	    {"max_message_size", &s->max_message_size, 's', 0, 0},
	    {"max_recipients", &s->max_recipients, 'n', 1, 100000},
	    {"max_bad_commands", &s->max_bad_commands, 'n', 1, 1000},
	    {"smtp_timeout", &s->smtp_timeout, 'd', 0, 0},
	    {"smtp_data_timeout", &s->smtp_data_timeout, 'd', 0, 0},
	    {"io_threads", &s->io_threads, 'n', 1, 64},
	    {"auth_threads", &s->auth_threads, 'n', 1, 64},
	    {"auth_queue", &s->auth_queue, 'n', 1, 1000000},
	    {"imap_timeout", &s->imap_timeout, 'd', 0, 0},
	    {"imap_timeout_login", &s->imap_timeout_login, 'd', 0, 0},
	    {"imap_idle_keepalive", &s->imap_idle_keepalive, 'd', 0, 0},
	    {"imap_idle_hibernate", &s->imap_idle_hibernate, 'd', 0, 0},
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		struct config_entry *e = config_get(top, nums[i].key);
		int r = 0;

		if (e == NULL)
			continue;
		if (nums[i].kind == 's')
			r = config_size(cfg, e, nums[i].dst, err, errlen);
		else if (nums[i].kind == 'd')
			r = config_duration(cfg, e, nums[i].dst, err, errlen);
		else
			r = config_uint(cfg, e, nums[i].min, nums[i].max,
			    nums[i].dst, err, errlen);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int
settings_fsync_mode(struct settings *s, struct config *cfg, char *err,
    size_t errlen)
{
	struct config_entry *e = config_get(&cfg->sections[0], "fsync_mode");

	if (e != NULL && store_fsync_mode_parse(e->value, &s->fsync_mode) < 0) {
		snprintf(err, errlen,
		    "%s:%d: fsync_mode: expected syncfs or file", cfg->path,
		    e->line);
		return -1;
	}
	return 0;
}

static int
settings_imap_plaintext(struct settings *s, struct config *cfg, char *err,
    size_t errlen)
{
	struct config_entry *e =
	    config_get(&cfg->sections[0], "imap_plaintext_auth");

	if (e == NULL)
		return 0;
	if (strcmp(e->value, "loopback") == 0)
		s->imap_plaintext_auth = IMAP_PLAINTEXT_LOOPBACK;
	else if (strcmp(e->value, "yes") == 0)
		s->imap_plaintext_auth = IMAP_PLAINTEXT_YES;
	else if (strcmp(e->value, "no") == 0)
		s->imap_plaintext_auth = IMAP_PLAINTEXT_NO;
	else {
		snprintf(err, errlen,
		    "%s:%d: imap_plaintext_auth: expected loopback, yes or no",
		    cfg->path, e->line);
		return -1;
	}
	return 0;
}

static int
settings_top(struct settings *s, struct config *cfg, char *err, size_t errlen)
{
	struct config_section *top = &cfg->sections[0];
	struct config_entry *e;

	settings_set_str(&s->data_dir, top, "data_dir");
	settings_set_str(&s->hostname, top, "hostname");
	settings_set_str(&s->tls_cert, top, "tls_cert");
	settings_set_str(&s->tls_key, top, "tls_key");
	settings_set_str(&s->users_file, top, "users_file");
	settings_set_str(&s->aliases_file, top, "aliases_file");
	settings_set_str(&s->postmaster, top, "postmaster");
	settings_set_str(&s->lmtp_socket, top, "lmtp_socket");
	if ((e = config_get(top, "log_level")) != NULL &&
	    log_level_parse(e->value, &s->log_level) < 0) {
		snprintf(err, errlen,
		    "%s:%d: log_level: expected debug, info, "
		    "warn or error",
		    cfg->path, e->line);
		return -1;
	}
	if ((e = config_get(top, "smtp_bare_lf")) != NULL) {
		if (strcmp(e->value, "normalize") == 0)
			s->bare_lf_normalize = 1;
		else if (strcmp(e->value, "reject") != 0) {
			snprintf(err, errlen,
			    "%s:%d: smtp_bare_lf: expected "
			    "reject or normalize",
			    cfg->path, e->line);
			return -1;
		}
	}
	if ((e = config_get(top, "auth_allow_plaintext")) != NULL &&
	    config_bool(cfg, e, &s->auth_allow_plaintext, err, errlen) < 0)
		return -1;
	if (settings_fsync_mode(s, cfg, err, errlen) < 0 ||
	    settings_imap_plaintext(s, cfg, err, errlen) < 0)
		return -1;
	return settings_top_numbers(s, cfg, err, errlen);
}

static int
settings_listener(struct settings *s, struct config *cfg,
    struct config_section *sec, char *err, size_t errlen)
{
	struct config_entry *proto = config_get(sec, "protocol");
	struct config_entry *addr = config_get(sec, "address");
	struct config_entry *tls = config_get(sec, "tls");
	enum settings_tls mode = SETTINGS_TLS_NONE;
	struct settings_listener *l;

	if (proto == NULL || addr == NULL) {
		snprintf(err, errlen,
		    "%s:%d: [listener %s] needs protocol and "
		    "address",
		    cfg->path, sec->line, sec->name);
		return -1;
	}
	if (tls != NULL && strcmp(tls->value, "starttls") == 0)
		mode = SETTINGS_TLS_STARTTLS;
	else if (tls != NULL && strcmp(tls->value, "implicit") == 0)
		mode = SETTINGS_TLS_IMPLICIT;
	else if (tls != NULL && strcmp(tls->value, "none") != 0) {
		snprintf(err, errlen,
		    "%s:%d: tls: expected none, starttls or "
		    "implicit",
		    cfg->path, tls->line);
		return -1;
	}
	settings_add_listener(s, sec->name, proto->value, addr->value, mode);
	l = &s->listeners[s->nlisteners - 1];
	if (settings_protocol(l) < 0) {
		snprintf(err, errlen,
		    "%s:%d: protocol: expected smtp, "
		    "submission, lmtp or imap",
		    cfg->path, proto->line);
		return -1;
	}
	return 0;
}

static int
settings_sections(struct settings *s, struct config *cfg, char *err,
    size_t errlen)
{
	for (size_t i = 1; i < cfg->nsections; i++) {
		struct config_section *sec = &cfg->sections[i];

		if (strcmp(sec->kind, "listener") != 0) {
			snprintf(err, errlen,
			    "%s:%d: unknown section kind "
			    "\"%s\"",
			    cfg->path, sec->line, sec->kind);
			return -1;
		}
		if (s->nlisteners == SETTINGS_MAX_LISTENERS) {
			snprintf(err, errlen, "%s:%d: too many listeners",
			    cfg->path, sec->line);
			return -1;
		}
		if (settings_listener(s, cfg, sec, err, errlen) < 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->nsections; i++) {
		struct config_entry *e = config_unused(&cfg->sections[i]);

		if (e != NULL) {
			snprintf(err, errlen, "%s:%d: unknown key \"%s\"",
			    cfg->path, e->line, e->key);
			return -1;
		}
	}
	return 0;
}

static void
settings_derive(struct settings *s)
{
	const char *d = s->data_dir;

	if (s->tls_cert == NULL)
		s->tls_cert = xasprintf("%s/tls/cert.pem", d);
	if (s->tls_key == NULL)
		s->tls_key = xasprintf("%s/tls/key.pem", d);
	if (s->users_file == NULL)
		s->users_file = xasprintf("%s/users", d);
	if (s->aliases_file == NULL)
		s->aliases_file = xasprintf("%s/aliases", d);
	if (s->lmtp_socket == NULL)
		s->lmtp_socket = xasprintf("%s/lmtp.sock", d);
	if (s->nlisteners == 0) {
		settings_add_listener(s, "smtp", "smtp", "127.0.0.1:2525",
		    SETTINGS_TLS_STARTTLS);
		settings_add_listener(s, "submission", "submission",
		    "127.0.0.1:2587", SETTINGS_TLS_STARTTLS);
		settings_add_listener(s, "submissions", "submission",
		    "127.0.0.1:2465", SETTINGS_TLS_IMPLICIT);
		settings_add_listener(s, "imap", "imap", "127.0.0.1:1143",
		    SETTINGS_TLS_STARTTLS);
		settings_add_listener(s, "imaps", "imap", "127.0.0.1:1993",
		    SETTINGS_TLS_IMPLICIT);
		for (size_t i = 0; i < s->nlisteners; i++)
			settings_protocol(&s->listeners[i]);
	}
	for (size_t i = 0; i < s->nlisteners; i++) {
		struct settings_listener *l = &s->listeners[i];

		if (strncmp(l->address, "unix:", 5) == 0) {
			char *path = xstrdup(l->address + 5);

			free(l->address);
			l->address = path;
			l->is_unix = 1;
		}
	}
}

int
settings_load(struct settings *s, const char *path, const char *data_dir,
    char *err, size_t errlen)
{
	struct config *cfg = NULL;
	int r = 0;

	settings_defaults(s);
	if (path != NULL) {
		s->config_path = xstrdup(path);
		cfg = config_load(path, err, errlen);
		if (cfg == NULL)
			return -1;
		r = settings_top(s, cfg, err, errlen);
		if (r == 0)
			r = settings_sections(s, cfg, err, errlen);
		config_free(&cfg);
	}
	if (data_dir != NULL) {
		free(s->data_dir);
		s->data_dir = xstrdup(data_dir);
	}
	if (r == 0)
		settings_derive(s);
	return r;
}

void
settings_deinit(struct settings *s)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		free(s->listeners[i].name);
		free(s->listeners[i].protocol);
		free(s->listeners[i].address);
	}
	free(s->listeners);
	free(s->config_path);
	free(s->data_dir);
	free(s->hostname);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->users_file);
	free(s->aliases_file);
	free(s->postmaster);
	free(s->lmtp_socket);
	memset(s, 0, sizeof(*s));
}
