/*
 * The hub: a hash table of topics (user, mailbox id), each with a list of
 * subscriptions. Publishing walks at most two topics; subscriptions dropped
 * while a fan-out runs are only unlinked once it is over. Each timed
 * fan-out adds its latency to a histogram.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hist.h"
#include "base/xmalloc.h"
#include "push/hub.h"
#include "store/store.h"

#define HUB_MIN_BUCKETS 64

struct hub_topic {
	struct hub *hub;
	char *user;
	int64_t mailbox_id;
	uint32_t hash;
	struct hub_topic *next; /* in its bucket */
	struct hub_sub *subs;
};

struct hub_sub {
	struct hub_topic *topic;
	hub_cb cb; /* NULL once dropped during a fan-out */
	void *arg;
	uint64_t gen; /* the publication under way when it was made */
	struct hub_sub *next, *prev;
	struct hub_sub *next_dead;
};

struct hub {
	struct hub_topic **buckets;
	size_t nbuckets;
	size_t ntopics;
	size_t nsubs;
	uint64_t published;
	uint64_t gen;         /* publications started */
	unsigned depth;       /* fan-outs under way */
	struct hub_sub *dead; /* dropped during a fan-out, to free */
	struct hist latency;  /* committed_ns to the last callback's return */
};

static uint32_t
hub_hash(const char *user, int64_t mailbox_id)
{
	/* FNV-1a over the user, then the id's bytes. */
	uint32_t h = 2166136261u;
	uint64_t id = (uint64_t)mailbox_id;

	for (const unsigned char *p = (const void *)user; *p; p++)
		h = (h ^ *p) * 16777619u;
	for (int i = 0; i < 8; i++, id >>= 8)
		h = (h ^ (id & 0xff)) * 16777619u;
	return h;
}

struct hub *
hub_new(void)
{
	struct hub *hub = xcalloc(1, sizeof(*hub));

	hub->nbuckets = HUB_MIN_BUCKETS;
	hub->buckets = xcalloc(hub->nbuckets, sizeof(*hub->buckets));
	return hub;
}

void
hub_free(struct hub **hubp)
{
	struct hub *hub = *hubp;

	if (hub == NULL)
		return;
	/* Subscriptions left over are the owners' leak; free topics anyway. */
	for (size_t i = 0; i < hub->nbuckets; i++) {
		struct hub_topic *t, *next;

		for (t = hub->buckets[i]; t != NULL; t = next) {
			next = t->next;
			while (t->subs != NULL) {
				struct hub_sub *s = t->subs;

				t->subs = s->next;
				free(s);
			}
			free(t->user);
			free(t);
		}
	}
	free(hub->buckets);
	free(hub);
	*hubp = NULL;
}

static struct hub_topic *
hub_find(struct hub *hub, const char *user, int64_t mailbox_id, uint32_t h)
{
	struct hub_topic *t = hub->buckets[h & (hub->nbuckets - 1)];

	for (; t != NULL; t = t->next) {
		if (t->hash == h && t->mailbox_id == mailbox_id &&
		    strcmp(t->user, user) == 0)
			return t;
	}
	return NULL;
}

static void
hub_grow(struct hub *hub)
{
	size_t n = hub->nbuckets * 2;
	struct hub_topic **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < hub->nbuckets; i++) {
		struct hub_topic *t, *next;

		for (t = hub->buckets[i]; t != NULL; t = next) {
			next = t->next;
			t->next = b[t->hash & (n - 1)];
			b[t->hash & (n - 1)] = t;
		}
	}
	free(hub->buckets);
	hub->buckets = b;
	hub->nbuckets = n;
}

static struct hub_topic *
hub_topic_get(struct hub *hub, const char *user, int64_t mailbox_id)
{
	uint32_t h = hub_hash(user, mailbox_id);
	struct hub_topic *t = hub_find(hub, user, mailbox_id, h);
	struct hub_topic **bucket;

	if (t != NULL)
		return t;
	if (hub->ntopics >= hub->nbuckets && hub->depth == 0)
		hub_grow(hub);
	t = xcalloc(1, sizeof(*t));
	t->hub = hub;
	t->user = xstrdup(user);
	t->mailbox_id = mailbox_id;
	t->hash = h;
	bucket = &hub->buckets[h & (hub->nbuckets - 1)];
	t->next = *bucket;
	*bucket = t;
	hub->ntopics++;
	return t;
}

static void
hub_topic_drop(struct hub *hub, struct hub_topic *t)
{
	struct hub_topic **p = &hub->buckets[t->hash & (hub->nbuckets - 1)];

	while (*p != t)
		p = &(*p)->next;
	*p = t->next;
	hub->ntopics--;
	free(t->user);
	free(t);
}

/* Unlinks s from its topic, and the topic from the table when empty. */
static void
hub_sub_unlink(struct hub *hub, struct hub_sub *s)
{
	struct hub_topic *t = s->topic;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->subs = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (t->subs == NULL)
		hub_topic_drop(hub, t);
	free(s);
}

struct hub_sub *
hub_subscribe(struct hub *hub, const char *user, int64_t mailbox_id, hub_cb cb,
    void *arg)
{
	struct hub_topic *t = hub_topic_get(hub, user, mailbox_id);
	struct hub_sub *s = xcalloc(1, sizeof(*s));

	s->topic = t;
	s->cb = cb;
	s->arg = arg;
	s->gen = hub->depth > 0 ? hub->gen : 0;
	s->next = t->subs;
	if (t->subs != NULL)
		t->subs->prev = s;
	t->subs = s;
	hub->nsubs++;
	return s;
}

void
hub_unsubscribe(struct hub_sub **subp)
{
	struct hub_sub *s = *subp;
	struct hub *hub;

	if (s == NULL)
		return;
	*subp = NULL;
	hub = s->topic->hub;
	hub->nsubs--;
	if (hub->depth > 0) {
		/* A fan-out may be standing on it: unlink once it is over. */
		s->cb = NULL;
		s->next_dead = hub->dead;
		hub->dead = s;
		return;
	}
	hub_sub_unlink(hub, s);
}

/* Returns the number of subscribers called. */
static size_t
hub_fan_out(struct hub *hub, const struct store_change *c, int64_t id,
    uint64_t gen)
{
	uint32_t h = hub_hash(c->user, id);
	struct hub_topic *t = hub_find(hub, c->user, id, h);
	size_t called = 0;

	if (t == NULL)
		return 0;
	/* Dropped subscriptions stay linked until the fan-out ends. */
	for (struct hub_sub *s = t->subs; s != NULL; s = s->next) {
		if (s->cb != NULL && s->gen != gen) {
			s->cb(c, s->arg);
			called++;
		}
	}
	return called;
}

static void
hub_record(struct hub *hub, uint64_t committed_ns)
{
	uint64_t now = hist_now_ns();

	/* A clock read out of order on another CPU counts as zero. */
	hist_add(&hub->latency, now > committed_ns ? now - committed_ns : 0);
}

void
hub_publish(const struct store_change *change, void *arg)
{
	struct hub *hub = arg;
	uint64_t gen = ++hub->gen;
	size_t called;

	hub->published++;
	hub->depth++;
	called = hub_fan_out(hub, change, change->mailbox_id, gen);
	if (change->mailbox_id != HUB_ALL_MAILBOXES)
		called += hub_fan_out(hub, change, HUB_ALL_MAILBOXES, gen);
	if (called > 0 && change->committed_ns != 0)
		hub_record(hub, change->committed_ns);
	if (--hub->depth > 0)
		return;
	while (hub->dead != NULL) {
		struct hub_sub *s = hub->dead;

		hub->dead = s->next_dead;
		hub_sub_unlink(hub, s);
	}
}

size_t
hub_subscriptions(const struct hub *hub)
{
	return hub->nsubs;
}

uint64_t
hub_published(const struct hub *hub)
{
	return hub->published;
}

const struct hist *
hub_latency(const struct hub *hub)
{
	return &hub->latency;
}
