/*
 * The users file and aliases: who the local users are, which domains are
 * local, where an address is delivered, and each user's password hash and
 * quota. The users file is Dovecot passwd-file compatible:
 *   user@domain:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]
 * with SCHEME CRYPT (crypt(3): yescrypt $y$, SHA-512 $6$) or PLAIN; extra
 * fields are space-separated key=value, of which quota=SIZE is read.
 * The aliases file has lines "alias@domain: user@domain[, user@domain...]".
 * In both files blank lines and lines starting with '#' are ignored.
 * Names are lower-cased on load and must be local@domain: a local part of
 * at most 64 bytes without white space, control bytes, ':', '/', '\\',
 * quotes, ',', '<', '>', '(', ')', '[', ']', ';' or '@', not starting or
 * ending with '.' and without "..", and a domain of LDH labels. The local
 * domains are the domains of the users. An empty password field is allowed
 * (the user receives mail but cannot log in).
 */
#ifndef AUTH_USERDB_H
#define AUTH_USERDB_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct userdb;

struct userdb_user {
	char *name;     /* canonical, as in the users file, lower case */
	char *password; /* "{SCHEME}..." as in the file */
	uint64_t quota; /* bytes, 0 for none */
};

enum userdb_resolve {
	USERDB_LOCAL,        /* delivered to the users in *users */
	USERDB_NO_SUCH_USER, /* a local domain, but nobody there: 550 5.1.1 */
	USERDB_NOT_LOCAL,    /* not one of our domains: 550 5.7.1 */
};

/* A user was added, removed or changed its password (NULL: all of them). */
typedef void (*userdb_change_cb)(const char *user, void *arg);

/*
 * Loads users_path and aliases_path (aliases_path may be NULL or name a
 * missing file: no aliases). postmaster is the user that postmaster@ every
 * local domain reaches when no alias says otherwise (NULL: the first user
 * in the file); it must be in the users file at open (after a reload that
 * removed it, the first user takes its place). default_quota applies to
 * users without quota=. Returns NULL with "file:line: why" in err.
 */
struct userdb *userdb_open(const char *users_path, const char *aliases_path,
    const char *postmaster, uint64_t default_quota, char *err, size_t errlen);
void userdb_free(struct userdb **db);

/*
 * Watches the directories of both files with inotify on base and reloads
 * when either file is renamed into place, closed after writing, created or
 * deleted (a bad file is logged and the previous contents kept). Only an
 * atomic rename is safe: a file rewritten in place may be read half
 * written. After each reload, cb runs (on the loop thread) once for every
 * user added, removed or whose password changed; callers wire it to
 * auth_forget(). Returns 0, or -1 (already watching, or inotify failed).
 */
int userdb_watch(struct userdb *db, struct event_base *base,
    userdb_change_cb cb, void *arg);

/*
 * Rereads both files now; same rules as the watch (the change callback, if
 * one is set, runs before this returns). Returns 0 or -1.
 */
int userdb_reload(struct userdb *db);

/*
 * Resolves a recipient address (local part matched without regard to case,
 * domain case-insensitive; postmaster@ any local domain and bare
 * "postmaster" always resolve). An alias wins over a user of the same name
 * unless the alias reaches itself, which then means the user's mailbox;
 * aliases nest up to 8 deep and the users are deduplicated. When the full
 * address is unknown, "local+detail@domain" resolves as "local@domain".
 * Postmaster: alias, else a user of that name, else the configured
 * postmaster, else the first user. On USERDB_LOCAL, *users is a new array
 * of *nusers canonical user names the caller frees with userdb_names_free();
 * otherwise *users is NULL and *nusers 0.
 */
enum userdb_resolve userdb_resolve(struct userdb *db, const char *address,
    char ***users, size_t *nusers);
void userdb_names_free(char **names, size_t n);

/*
 * The user by canonical or differently-cased name; NULL if none. The entry
 * belongs to db and stays valid until the next reload: copy what you keep
 * past the current loop turn.
 */
const struct userdb_user *userdb_lookup(struct userdb *db, const char *name);

/*
 * 1 when user may send as address: it is the user's own address or an
 * alias that resolves to the user alone. Otherwise 0.
 */
int userdb_may_send_as(struct userdb *db, const char *user,
    const char *address);

/* Number of users, for log lines. */
size_t userdb_count(struct userdb *db);

/* 1 when name is a valid lower-case or mixed-case user@domain name. */
int userdb_name_valid(const char *name);

/*
 * Parses len bytes of text as a users file (aliases == 0) or an aliases
 * file without touching the disk; for check-config and fuzzing. Returns 0,
 * or -1 with "users:line: why" (or "aliases:...") in err.
 */
int userdb_check_text(const char *text, size_t len, int aliases, char *err,
    size_t errlen);

#endif
