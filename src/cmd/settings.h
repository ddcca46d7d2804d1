/*
 * pushmaild's settings: the configuration file (doc/config.md) turned into
 * values with defaults, so that no config at all runs on loopback ports
 * with data under ./pushmail-data.
 */
#ifndef CMD_SETTINGS_H
#define CMD_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "imap/imap_server.h"
#include "smtp/smtp_server.h"
#include "store/store.h"

enum settings_tls {
	SETTINGS_TLS_NONE,
	SETTINGS_TLS_STARTTLS,
	SETTINGS_TLS_IMPLICIT,
};

struct settings_listener {
	char *name;
	char *protocol;      /* "smtp", "submission", "lmtp" or "imap" */
	enum smtp_mode mode; /* for the SMTP family */
	int is_imap;
	char *address; /* "host:port", or a path for "unix:/path" */
	int is_unix;
	enum settings_tls tls;
};

struct settings {
	char *config_path; /* NULL when running on defaults */
	char *data_dir;
	char *hostname;
	enum log_level log_level;
	char *tls_cert;
	char *tls_key;
	char *users_file;
	char *aliases_file;
	char *postmaster;
	char *lmtp_socket; /* "" disables it */
	uint64_t default_quota;
	uint64_t max_message_size;
	uint64_t max_recipients;
	uint64_t max_bad_commands;
	uint64_t smtp_timeout;
	uint64_t smtp_data_timeout;
	int bare_lf_normalize;
	int auth_allow_plaintext;
	enum imap_plaintext imap_plaintext_auth;
	uint64_t io_threads;
	enum store_fsync_mode fsync_mode; /* how deliveries reach the disk */
	uint64_t auth_threads;
	uint64_t auth_queue;
	uint64_t imap_timeout;        /* seconds; 0: the server's default */
	uint64_t imap_timeout_login;  /* seconds; 0: the server's default */
	uint64_t imap_idle_keepalive; /* seconds */
	uint64_t imap_idle_hibernate; /* seconds */
	struct settings_listener *listeners;
	size_t nlisteners;
};

/*
 * Loads path (NULL: defaults only); data_dir, when not NULL, overrides the
 * file's. Returns 0, or -1 with "file:line: why" in err.
 */
int settings_load(struct settings *s, const char *path, const char *data_dir,
    char *err, size_t errlen);
void settings_deinit(struct settings *s);

#endif
