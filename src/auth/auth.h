/*
 * Password verification for SASL and USER/PASS: throttling per client
 * address before any hash is computed, hashing on a low-priority worker
 * pool, and a cache of verified credentials (a keyed hash, flushed when the
 * user changes) so a reconnect storm logs in without hashing again.
 */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

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
 * AUTH_TEMPFAIL. db must outlive the auth. Needs evthread_use_pthreads()
 * before base was made (see net/worker.h). Computes one hash on the calling
 * thread (the dummy that unknown users are checked against).
 */
struct auth *auth_new(struct event_base *base, struct userdb *db,
    unsigned threads, size_t max_queue);
void auth_free(struct auth **auth);

/*
 * Checks authcid (a user name or one of the user's addresses) and password
 * for a client at client_ip (NULL for local clients). The request must be
 * cancelled if its owner goes away first; after the callback it is gone by
 * itself (the callback must not cancel it). Once a client address has
 * failed 3 times (failures decay by half every 5 minutes), each further
 * failure is answered 1 s, 2 s, 4 s ... (at most 15 s) late, and while such
 * an address has a hash running, more attempts from it get AUTH_TEMPFAIL
 * without hashing. Successes are never delayed. A credential verified
 * before is accepted without hashing until auth_forget(). Never NULL.
 */
struct auth_request *auth_verify(struct auth *auth, const char *authcid,
    const char *password, const char *client_ip, auth_done_cb cb, void *arg);
void auth_request_cancel(struct auth_request **req);

/* Forgets cached credentials of user (NULL: of everyone). */
void auth_forget(struct auth *auth, const char *user);

/*
 * Changes the failure throttling: the failure after threshold failures
 * waits first_ms, doubling each time up to max_ms; failures halve every
 * decay_s seconds. Defaults 3, 1000, 15000, 300. For tests and config.
 */
void auth_set_throttle(struct auth *auth, unsigned threshold, unsigned first_ms,
    unsigned max_ms, unsigned decay_s);

struct auth_stats {
	uint64_t hashes;     /* password hashes computed (dummy ones too) */
	uint64_t cache_hits; /* verified from the cache, without hashing */
	uint64_t throttled;  /* refused without hashing by throttling */
	uint64_t queue_full; /* refused because the hashing queue was full */
};

/* Counters since auth_new(), for metrics and tests. */
void auth_get_stats(struct auth *auth, struct auth_stats *stats);

/*
 * Makes a crypt(3) hash of password with the strongest method libxcrypt
 * offers (yescrypt), as "{CRYPT}$y$...". Caller frees. NULL on failure.
 */
char *auth_hash_password(const char *password);

/*
 * Compares password with a "{SCHEME}..." hash in constant time; 1 match, 0
 * not, -1 error (unknown scheme, a hash crypt(3) cannot read). Schemes:
 * CRYPT and Dovecot's SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT and
 * DES-CRYPT (any method libxcrypt knows), PLAIN; no "{SCHEME}" means CRYPT.
 * An empty hash, or one starting with '!' or '*', never matches. Thread
 * safe; costs a full hash, so never call it on the loop thread.
 */
int auth_check_password(const char *hash, const char *password);

#endif
