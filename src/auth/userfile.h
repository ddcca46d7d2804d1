/*
 * Editing the users file for the `pushmaild user` commands: each change
 * rewrites the file atomically under a lock, keeping every other line
 * (comments, other users, extra fields) byte for byte.
 */
#ifndef AUTH_USERFILE_H
#define AUTH_USERFILE_H

#include <stddef.h>

/*
 * Each editing call takes an exclusive flock on "<path>.lock" (created
 * beside the file), reads the file, writes the new contents to a temporary
 * file in the same directory with mode 0600 (keeping the owner when it
 * may), fsyncs it, renames it over path and fsyncs the directory. user is
 * matched without regard to case and stored lower case; hash is the
 * password field as the users file holds it ("{CRYPT}$y$...", see
 * auth_hash_password()) and may not hold ':' or control bytes. Each
 * returns 0, or -1 with a message in err and the file untouched.
 */

/* Appends user; creates the file if missing; fails if user is present. */
int userfile_add(const char *path, const char *user, const char *hash,
    char *err, size_t errlen);

/* Replaces user's password field, keeping its other fields. */
int userfile_passwd(const char *path, const char *user, const char *hash,
    char *err, size_t errlen);

/* Removes user's line. */
int userfile_del(const char *path, const char *user, char *err, size_t errlen);

/*
 * Sets *names to a new array of the *n user names in file order (lower
 * case), freed with userdb_names_free(). Reads without the lock: writers
 * only ever rename a whole file into place.
 */
int userfile_list(const char *path, char ***names, size_t *n, char *err,
    size_t errlen);

#endif
