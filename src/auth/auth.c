/*
 * Password verification: failure throttling per client address, hashing
 * with crypt(3) on a low-priority worker pool, and a cache of verified
 * credentials as HMAC-SHA256 values under a key made at start.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/worker.h"

/* Client addresses remembered for throttling; the oldest goes first. */
#define AUTH_PEERS_MAX 65536
#define AUTH_PEER_BUCKETS 16384
#define AUTH_CACHE_BUCKETS 4096
#define AUTH_MAC_LEN 32
/* A failure count higher than this adds no delay. */
#define AUTH_FAILURES_MAX 64

/* Failures from one client address. */
struct auth_peer {
	char ip[64];
	unsigned failures;
	unsigned inflight; /* hashes running for it */
	time_t last;       /* when failures last decayed or grew */
	struct auth_peer *next;
	TAILQ_ENTRY(auth_peer) lru;
};

/* A verified credential of one user. */
struct auth_cached {
	char *user;
	char *stored; /* the password field it was verified against */
	unsigned char mac[AUTH_MAC_LEN];
	struct auth_cached *next;
};

struct auth_request {
	struct auth *auth;
	auth_done_cb cb;
	void *arg;
	char *user;     /* canonical; NULL for an unknown user */
	char *password; /* wiped */
	char *stored;   /* the hash the worker checks */
	char ip[64];
	int match;     /* written by the worker */
	int hashing;   /* a worker job holds this request */
	int cancelled; /* the owner is gone: free it when the job ends */
	enum auth_result result;
	struct event *timer;
	TAILQ_ENTRY(auth_request) link;
};

TAILQ_HEAD(auth_peer_list, auth_peer);
TAILQ_HEAD(auth_request_list, auth_request);

struct auth {
	struct event_base *base;
	struct userdb *db;
	struct worker_pool *pool;
	unsigned char key[32];
	char *dummy;

	struct auth_peer **peers;
	struct auth_peer_list lru;
	size_t npeers;
	struct auth_cached **cache;
	struct auth_request_list requests;

	unsigned threshold;
	unsigned first_ms;
	unsigned max_ms;
	unsigned decay_s;
	struct auth_stats stats;
};

static time_t
auth_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* FNV-1a keyed with the process key, so clients cannot aim at a bucket. */
static size_t
auth_hash(struct auth *auth, const char *s, size_t buckets)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < 8; i++)
		h = (h ^ auth->key[i]) * 0x100000001b3ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (size_t)(h % buckets);
}

static void
auth_peer_unlink(struct auth *auth, struct auth_peer *p)
{
	struct auth_peer **pp =
	    &auth->peers[auth_hash(auth, p->ip, AUTH_PEER_BUCKETS)];

	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	TAILQ_REMOVE(&auth->lru, p, lru);
	auth->npeers--;
}

/* The entry of ip, made (evicting the oldest) when create is set. */
static struct auth_peer *
auth_peer_get(struct auth *auth, const char *ip, int create)
{
	size_t b = auth_hash(auth, ip, AUTH_PEER_BUCKETS);
	struct auth_peer *p;

	for (p = auth->peers[b]; p != NULL; p = p->next)
		if (strcmp(p->ip, ip) == 0)
			break;
	if (p == NULL && !create)
		return NULL;
	if (p == NULL) {
		if (auth->npeers >= AUTH_PEERS_MAX) {
			struct auth_peer *old = TAILQ_FIRST(&auth->lru);

			auth_peer_unlink(auth, old);
			free(old);
		}
		p = xcalloc(1, sizeof(*p));
		snprintf(p->ip, sizeof(p->ip), "%s", ip);
		p->last = auth_now();
		p->next = auth->peers[b];
		auth->peers[b] = p;
		auth->npeers++;
	} else {
		TAILQ_REMOVE(&auth->lru, p, lru);
	}
	TAILQ_INSERT_TAIL(&auth->lru, p, lru);
	return p;
}

/* Halves the failures of p once for every decay period gone by. */
static void
auth_peer_decay(struct auth *auth, struct auth_peer *p)
{
	time_t periods = (auth_now() - p->last) / (time_t)auth->decay_s;

	if (periods <= 0)
		return;
	p->failures = periods >= 32 ? 0 : p->failures >> periods;
	p->last += periods * (time_t)auth->decay_s;
}

/* The delay of a failure that follows failures earlier ones, in ms. */
static unsigned
auth_delay_ms(struct auth *auth, unsigned failures)
{
	unsigned shift;

	if (failures < auth->threshold)
		return 0;
	shift = failures - auth->threshold;
	if (shift >= 20 || auth->first_ms << shift > auth->max_ms)
		return auth->max_ms;
	return auth->first_ms << shift;
}

/* Counts a failure of ip; returns how long its reply waits. */
static unsigned
auth_peer_fail(struct auth *auth, const char *ip)
{
	struct auth_peer *p = auth_peer_get(auth, ip, 1);
	unsigned delay;

	auth_peer_decay(auth, p);
	delay = auth_delay_ms(auth, p->failures);
	if (p->failures < AUTH_FAILURES_MAX)
		p->failures++;
	p->last = auth_now();
	return delay;
}

static void
auth_mac(struct auth *auth, const char *user, const char *password,
    unsigned char mac[AUTH_MAC_LEN])
{
	size_t ulen = strlen(user), len = ulen + 1 + strlen(password);
	unsigned char *buf = xmalloc(len);
	unsigned maclen = AUTH_MAC_LEN;

	memcpy(buf, user, ulen + 1);
	memcpy(buf + ulen + 1, password, len - ulen - 1);
	HMAC(EVP_sha256(), auth->key, sizeof(auth->key), buf, len, mac,
	    &maclen);
	xfree_secret(buf, len);
}

static struct auth_cached **
auth_cache_find(struct auth *auth, const char *user)
{
	struct auth_cached **cp =
	    &auth->cache[auth_hash(auth, user, AUTH_CACHE_BUCKETS)];

	while (*cp != NULL && strcmp((*cp)->user, user) != 0)
		cp = &(*cp)->next;
	return cp;
}

static void
auth_cached_free(struct auth_cached *c)
{
	explicit_bzero(c->mac, sizeof(c->mac));
	free(c->user);
	free(c->stored);
	free(c);
}

/* 1 when user's password was verified before against the same hash. */
static int
auth_cache_hit(struct auth *auth, const char *user, const char *stored,
    const char *password)
{
	struct auth_cached *c = *auth_cache_find(auth, user);
	unsigned char mac[AUTH_MAC_LEN];
	int hit;

	if (c == NULL || strcmp(c->stored, stored) != 0)
		return 0;
	auth_mac(auth, user, password, mac);
	hit = CRYPTO_memcmp(mac, c->mac, sizeof(mac)) == 0;
	explicit_bzero(mac, sizeof(mac));
	return hit;
}

static void
auth_cache_store(struct auth *auth, const char *user, const char *stored,
    const char *password)
{
	struct auth_cached **cp = auth_cache_find(auth, user), *c = *cp;

	if (c == NULL) {
		c = *cp = xcalloc(1, sizeof(*c));
		c->user = xstrdup(user);
	}
	free(c->stored);
	c->stored = xstrdup(stored);
	auth_mac(auth, user, password, c->mac);
}

void
auth_forget(struct auth *auth, const char *user)
{
	for (size_t b = 0; user == NULL && b < AUTH_CACHE_BUCKETS; b++) {
		while (auth->cache[b] != NULL) {
			struct auth_cached *c = auth->cache[b];

			auth->cache[b] = c->next;
			auth_cached_free(c);
		}
	}
	if (user != NULL) {
		struct auth_cached **cp = auth_cache_find(auth, user), *c = *cp;

		if (c != NULL) {
			*cp = c->next;
			auth_cached_free(c);
		}
	}
}

static void
auth_request_free(struct auth_request *req)
{
	if (req->timer != NULL)
		event_free(req->timer);
	free(req->user);
	xfree_secret_str(req->password);
	free(req->stored);
	free(req);
}

/* Ends the request and runs its callback; touches nothing afterwards. */
static void
auth_request_reply(struct auth_request *req)
{
	auth_done_cb cb = req->cb;
	void *arg = req->arg;
	enum auth_result result = req->result;
	char *user = req->user;

	TAILQ_REMOVE(&req->auth->requests, req, link);
	req->user = NULL;
	auth_request_free(req);
	cb(result, result == AUTH_OK ? user : NULL, arg);
	free(user);
}

static void
auth_on_timer(evutil_socket_t fd, short what, void *arg)
{
	auth_request_reply(arg);
}

/*
 * Replies with result after delay_ms. With may_run_now and no delay the
 * callback runs at once; otherwise from a timer, never inside
 * auth_verify().
 */
static void
auth_request_finish(struct auth_request *req, enum auth_result result,
    unsigned delay_ms, int may_run_now)
{
	struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

	req->result = result;
	if (may_run_now && delay_ms == 0) {
		auth_request_reply(req);
		return;
	}
	/* Count the delay from now, not from the start of this loop turn. */
	event_base_update_cache_time(req->auth->base);
	req->timer = evtimer_new(req->auth->base, auth_on_timer, req);
	evtimer_add(req->timer, &tv);
}

/* Worker thread: touches only the request's own strings and match. */
static void
auth_hash_run(void *arg)
{
	struct auth_request *req = arg;

	req->match = auth_check_password(req->stored, req->password);
}

static void
auth_hash_done(void *arg)
{
	struct auth_request *req = arg;
	struct auth *auth = req->auth;
	struct auth_peer *p = auth_peer_get(auth, req->ip, 0);

	req->hashing = 0;
	if (p != NULL && p->inflight > 0)
		p->inflight--;
	if (req->cancelled) {
		auth_request_free(req);
		return;
	}
	if (req->match == 1 && req->user != NULL) {
		auth_cache_store(auth, req->user, req->stored, req->password);
		auth_request_finish(req, AUTH_OK, 0, 1);
	} else if (req->match < 0 && req->user != NULL) {
		log_warn("event=auth user=%s error=\"unusable password hash\"",
		    req->user);
		auth_request_finish(req, AUTH_TEMPFAIL, 0, 1);
	} else {
		auth_request_finish(req, AUTH_FAILED,
		    auth_peer_fail(auth, req->ip), 1);
	}
}

/* The canonical user authcid names (a user or a one-user address). */
static char *
auth_canonical(struct userdb *db, const char *authcid)
{
	const struct userdb_user *u = userdb_lookup(db, authcid);
	char **names, *user = NULL;
	size_t n;

	if (u != NULL)
		return xstrdup(u->name);
	if (userdb_resolve(db, authcid, &names, &n) != USERDB_LOCAL)
		return NULL;
	if (n == 1) {
		user = names[0];
		names[0] = NULL;
	}
	userdb_names_free(names, n);
	return user;
}

/* Tries the cache and the throttle; 1 when the request was answered. */
static int
auth_verify_fast(struct auth *auth, struct auth_request *req)
{
	struct auth_peer *p = auth_peer_get(auth, req->ip, 0);

	if (req->user != NULL &&
	    auth_cache_hit(auth, req->user, req->stored, req->password)) {
		auth->stats.cache_hits++;
		auth_request_finish(req, AUTH_OK, 0, 0);
		return 1;
	}
	if (p != NULL)
		auth_peer_decay(auth, p);
	if (p != NULL && p->failures >= auth->threshold && p->inflight > 0) {
		auth->stats.throttled++;
		auth_request_finish(req, AUTH_TEMPFAIL,
		    auth_delay_ms(auth, p->failures), 0);
		return 1;
	}
	return 0;
}

struct auth_request *
auth_verify(struct auth *auth, const char *authcid, const char *password,
    const char *client_ip, auth_done_cb cb, void *arg)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	const struct userdb_user *u;

	req->auth = auth;
	req->cb = cb;
	req->arg = arg;
	req->password = xstrdup(password);
	snprintf(req->ip, sizeof(req->ip), "%s", client_ip ? client_ip : "");
	req->user = auth_canonical(auth->db, authcid);
	u = req->user ? userdb_lookup(auth->db, req->user) : NULL;
	/* Unknown users cost a hash too, so timing does not tell. */
	req->stored = xstrdup(u ? u->password : auth->dummy);
	TAILQ_INSERT_TAIL(&auth->requests, req, link);
	if (auth_verify_fast(auth, req))
		return req;
	if (worker_pool_submit(auth->pool, auth_hash_run, auth_hash_done, req) <
	    0) {
		auth->stats.queue_full++;
		auth_request_finish(req, AUTH_TEMPFAIL, 0, 0);
		return req;
	}
	req->hashing = 1;
	auth->stats.hashes++;
	auth_peer_get(auth, req->ip, 1)->inflight++;
	return req;
}

void
auth_request_cancel(struct auth_request **reqp)
{
	struct auth_request *req = *reqp;

	if (req == NULL)
		return;
	*reqp = NULL;
	TAILQ_REMOVE(&req->auth->requests, req, link);
	/* A worker may be hashing right now; its completion frees req. */
	if (req->hashing)
		req->cancelled = 1;
	else
		auth_request_free(req);
}

struct auth *
auth_new(struct event_base *base, struct userdb *db, unsigned threads,
    size_t max_queue)
{
	struct auth *auth = xcalloc(1, sizeof(*auth));
	unsigned char noise[32];
	char pw[sizeof(noise) * 2 + 1];

	auth->base = base;
	auth->db = db;
	if (RAND_bytes(auth->key, sizeof(auth->key)) != 1 ||
	    RAND_bytes(noise, sizeof(noise)) != 1)
		log_fatal("event=auth error=\"no random bytes\"");
	for (size_t i = 0; i < sizeof(noise); i++)
		snprintf(pw + 2 * i, 3, "%02x", noise[i]);
	auth->dummy = auth_hash_password(pw);
	explicit_bzero(pw, sizeof(pw));
	if (auth->dummy == NULL)
		log_fatal("event=auth error=\"cannot make a yescrypt hash\"");
	auth->peers = xcalloc(AUTH_PEER_BUCKETS, sizeof(*auth->peers));
	auth->cache = xcalloc(AUTH_CACHE_BUCKETS, sizeof(*auth->cache));
	TAILQ_INIT(&auth->lru);
	TAILQ_INIT(&auth->requests);
	auth_set_throttle(auth, 3, 1000, 15000, 300);
	auth->pool = worker_pool_new(base, "auth", threads, 10, max_queue);
	return auth;
}

void
auth_free(struct auth **authp)
{
	struct auth *auth = *authp;
	struct auth_request *req;
	struct auth_peer *p;

	if (auth == NULL)
		return;
	/* Owners should have cancelled; their callbacks will not run. */
	while ((req = TAILQ_FIRST(&auth->requests)) != NULL)
		auth_request_cancel(&req);
	/* Runs the completions of running jobs, which free their requests. */
	worker_pool_free(&auth->pool);
	while ((p = TAILQ_FIRST(&auth->lru)) != NULL) {
		TAILQ_REMOVE(&auth->lru, p, lru);
		free(p);
	}
	auth_forget(auth, NULL);
	free(auth->peers);
	free(auth->cache);
	free(auth->dummy);
	explicit_bzero(auth->key, sizeof(auth->key));
	free(auth);
	*authp = NULL;
}

void
auth_set_throttle(struct auth *auth, unsigned threshold, unsigned first_ms,
    unsigned max_ms, unsigned decay_s)
{
	auth->threshold = threshold;
	auth->first_ms = first_ms;
	auth->max_ms = max_ms;
	auth->decay_s = decay_s ? decay_s : 1;
}

void
auth_get_stats(struct auth *auth, struct auth_stats *stats)
{
	*stats = auth->stats;
}

/* Runs crypt(3) on password with the hash as setting; 1, 0 or -1. */
static int
auth_crypt_equal(const char *hash, const char *password)
{
	void *data = NULL;
	int size = 0, r = -1;
	const char *out;

	if (*hash == '\0' || *hash == '!' || *hash == '*')
		return 0;
	out = crypt_ra(password, hash, &data, &size);
	if (out != NULL && *out != '*')
		r = strlen(out) == strlen(hash) &&
		    CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	xfree_secret(data, size > 0 ? (size_t)size : 0);
	return r;
}

/* Compares digests, so neither content nor length leaks by timing. */
static int
auth_plain_equal(const char *stored, const char *password)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned alen = 0, blen = 0;
	int r;

	if (!EVP_Digest(stored, strlen(stored), a, &alen, EVP_sha256(), NULL) ||
	    !EVP_Digest(password, strlen(password), b, &blen, EVP_sha256(),
	        NULL))
		return -1;
	r = CRYPTO_memcmp(a, b, alen) == 0 && *stored != '\0';
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
	return r;
}

int
auth_check_password(const char *hash, const char *password)
{
	static const char *const crypt_schemes[] = {"CRYPT", "SHA512-CRYPT",
	    "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT", "DES-CRYPT"};
	const char *end;
	size_t len;

	if (hash[0] != '{')
		return auth_crypt_equal(hash, password);
	end = strchr(hash, '}');
	if (end == NULL)
		return -1;
	len = (size_t)(end - hash - 1);
	if (len == 5 && strncasecmp(hash + 1, "PLAIN", 5) == 0)
		return auth_plain_equal(end + 1, password);
	for (size_t i = 0; i < sizeof(crypt_schemes) / sizeof(*crypt_schemes);
	     i++) {
		if (strlen(crypt_schemes[i]) == len &&
		    strncasecmp(hash + 1, crypt_schemes[i], len) == 0)
			return auth_crypt_equal(end + 1, password);
	}
	return -1;
}

char *
auth_hash_password(const char *password)
{
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0), *hash = NULL;
	void *data = NULL;
	int size = 0;
	const char *out;

	if (setting == NULL)
		return NULL;
	out = crypt_ra(password, setting, &data, &size);
	if (out != NULL && *out != '*')
		hash = xasprintf("{CRYPT}%s", out);
	free(setting);
	xfree_secret(data, size > 0 ? (size_t)size : 0);
	return hash;
}
