/* Unit tests for the hub: fan-out by mailbox, and changes during it. */
#include <stdlib.h>

#include "check.h"
#include "push/hub.h"
#include "store/store.h"

struct rec {
	struct hub *hub;
	int calls;
	uint32_t last_uid;
	struct hub_sub *self;   /* dropped by its own callback when set */
	struct hub_sub **other; /* dropped by this callback when set */
	struct hub_sub *added;  /* subscribed by this callback */
	struct rec *added_rec;
};

static void
on_change(const struct store_change *c, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	r->last_uid = c->uid;
	if (r->self != NULL)
		hub_unsubscribe(&r->self);
	if (r->other != NULL)
		hub_unsubscribe(r->other);
	if (r->added_rec != NULL && r->added == NULL)
		r->added =
		    hub_subscribe(r->hub, "alice", 1, on_change, r->added_rec);
}

static struct store_change
change(const char *user, int64_t mailbox_id, uint32_t uid)
{
	struct store_change c = {.kind = STORE_CHANGE_NEW,
	    .user = user,
	    .mailbox = "INBOX",
	    .mailbox_id = mailbox_id,
	    .uid = uid};

	return c;
}

static void
test_fan_out_by_mailbox(void)
{
	struct hub *hub = hub_new();
	struct rec a = {0}, b = {0}, all = {0}, bob = {0};
	struct hub_sub *sa = hub_subscribe(hub, "alice", 1, on_change, &a);
	struct hub_sub *sb = hub_subscribe(hub, "alice", 2, on_change, &b);
	struct hub_sub *sall =
	    hub_subscribe(hub, "alice", HUB_ALL_MAILBOXES, on_change, &all);
	struct hub_sub *sbob = hub_subscribe(hub, "bob", 1, on_change, &bob);
	struct store_change c = change("alice", 1, 7);

	CHECK_INT(hub_subscriptions(hub), 4);
	hub_publish(&c, hub);
	CHECK_INT(a.calls, 1);
	CHECK_INT(a.last_uid, 7);
	CHECK_INT(b.calls, 0);
	CHECK_INT(all.calls, 1);
	CHECK_INT(bob.calls, 0);
	c = change("alice", 2, 8);
	hub_publish(&c, hub);
	CHECK_INT(b.calls, 1);
	CHECK_INT(all.calls, 2);
	hub_unsubscribe(&sa);
	CHECK(sa == NULL);
	c = change("alice", 1, 9);
	hub_publish(&c, hub);
	CHECK_INT(a.calls, 1);
	CHECK_INT(hub_published(hub), 3);
	hub_unsubscribe(&sb);
	hub_unsubscribe(&sall);
	hub_unsubscribe(&sbob);
	CHECK_INT(hub_subscriptions(hub), 0);
	hub_free(&hub);
}

static void
test_changes_during_fan_out(void)
{
	struct hub *hub = hub_new();
	struct rec first = {.hub = hub}, second = {0}, late = {0};
	struct hub_sub *s2;
	struct store_change c = change("alice", 1, 1);

	/* Subscribed last, called first (list head); it drops the other. */
	s2 = hub_subscribe(hub, "alice", 1, on_change, &second);
	first.self = hub_subscribe(hub, "alice", 1, on_change, &first);
	first.other = &s2;
	first.added_rec = &late;
	hub_publish(&c, hub);
	CHECK_INT(first.calls, 1);
	CHECK_INT(second.calls, 0); /* dropped before its turn */
	CHECK_INT(late.calls, 0);   /* added during this change */
	CHECK(first.self == NULL && s2 == NULL);
	hub_publish(&c, hub);
	CHECK_INT(first.calls, 1);
	CHECK_INT(late.calls, 1);
	hub_unsubscribe(&first.added);
	CHECK_INT(hub_subscriptions(hub), 0);
	hub_free(&hub);
}

static void
test_many_topics(void)
{
	struct hub *hub = hub_new();
	struct hub_sub *subs[1000];
	struct rec r = {0};
	char name[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		subs[i] = hub_subscribe(hub, name, i % 7, on_change, &r);
	}
	for (int i = 0; i < 1000; i++) {
		struct store_change c;

		snprintf(name, sizeof(name), "user%d", i);
		c = change(name, i % 7, (uint32_t)i);
		hub_publish(&c, hub);
		CHECK_INT(r.last_uid, i);
	}
	CHECK_INT(r.calls, 1000);
	for (int i = 0; i < 1000; i++)
		hub_unsubscribe(&subs[i]);
	hub_free(&hub);
}

int
main(void)
{
	CHECK_RUN(test_fan_out_by_mailbox);
	CHECK_RUN(test_changes_during_fan_out);
	CHECK_RUN(test_many_topics);
	return check_summary();
}
