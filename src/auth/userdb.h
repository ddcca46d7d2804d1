/*
 * The users file and aliases: who the local users are, which domains are
 * local, where an address is delivered, and each user's password hash and
 * quota. The users file is Dovecot passwd-file compatible:
 *   user@domain:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]
 * with SCHEME CRYPT (crypt(3): yescrypt $y$, SHA-512 $6$) or PLAIN; extra
 * fields are space-separated key=value, of which quota=SIZE is read.
 * The aliases file has lines "alias@domain: user@domain[, user@domain...]".
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
 * Loads users_path and aliases_path (which may be missing: no aliases).
 * postmaster is the user that postmaster@ every local domain reaches when
 * no alias says otherwise (NULL: the first user in the file). default_quota
 * applies to users without quota=. Returns NULL with "file:line: why" in err.
 */
struct userdb *userdb_open(const char *users_path, const char *aliases_path,
    const char *postmaster, uint64_t default_quota, char *err, size_t errlen);
void userdb_free(struct userdb **db);

/*
 * Watches both files with inotify on base and reloads them when they
 * change (a bad file is logged and the previous contents kept); cb hears
 * of every user whose entry changed.
 */
int userdb_watch(struct userdb *db, struct event_base *base,
    userdb_change_cb cb, void *arg);

/* Rereads both files now; same rules as the watch. Returns 0 or -1. */
int userdb_reload(struct userdb *db);

/*
 * Resolves a recipient address (local part matched without regard to case,
 * domain case-insensitive; postmaster@ any local domain and bare
 * "postmaster" always resolve). On USERDB_LOCAL, *users is a new array of
 * *nusers canonical user names the caller frees with userdb_names_free().
 */
enum userdb_resolve userdb_resolve(struct userdb *db, const char *address,
    char ***users, size_t *nusers);
void userdb_names_free(char **names, size_t n);

/* The user by canonical or differently-cased name; NULL if none. */
const struct userdb_user *userdb_lookup(struct userdb *db, const char *name);

/*
 * 1 when user may send as address: it is the user's own address or an
 * alias that resolves to the user alone. Otherwise 0.
 */
int userdb_may_send_as(struct userdb *db, const char *user,
    const char *address);

/* Number of users, and the domains for log lines. */
size_t userdb_count(struct userdb *db);

#endif
