/*
 * Password verification for SASL and USER/PASS: throttling per client
 * address before any hash is computed, hashing on a low-priority worker
 * pool, and a cache of verified credentials (a keyed hash, flushed when the
 * user changes) so a reconnect storm logs in without hashing again.
 */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stddef.h>

struct event_base;
struct userdb;
struct auth;
struct auth_request;

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,   /* unknown user or wrong password */
	AUTH_TEMPFAIL, /* hashing queue full or internal error */
};

/*
 * Runs on the loop thread. user is the canonical user name on AUTH_OK,
 * otherwise NULL; valid only during the callback. Never runs before
 * auth_verify() returns. A failure's callback is delayed by throttling.
 */
typedef void (
    *auth_done_cb)(enum auth_result result, const char *user, void *arg);

/*
 * threads: hashing threads (low priority); max_queue: hashes waiting before
 * AUTH_TEMPFAIL.
 */
struct auth *auth_new(struct event_base *base, struct userdb *db,
    unsigned threads, size_t max_queue);
void auth_free(struct auth **auth);

/*
 * Checks authcid (a user name or one of the user's addresses) and password
 * for a client at client_ip. The request must be cancelled if its owner
 * goes away first; after the callback it is gone by itself.
 */
struct auth_request *auth_verify(struct auth *auth, const char *authcid,
    const char *password, const char *client_ip, auth_done_cb cb, void *arg);
void auth_request_cancel(struct auth_request **req);

/* Forgets cached credentials of user (NULL: of everyone). */
void auth_forget(struct auth *auth, const char *user);

/*
 * Makes a crypt(3) hash of password with the strongest method libxcrypt
 * offers (yescrypt), as "{CRYPT}$y$...". Caller frees. NULL on failure.
 */
char *auth_hash_password(const char *password);

/* Compares password with a "{SCHEME}..." hash; 1 match, 0 not, -1 error. */
int auth_check_password(const char *hash, const char *password);

#endif
