/*
 * The hub: in-process subscriptions to store changes, by user and mailbox.
 * The store calls hub_publish() after every commit (it is a store_change_cb);
 * every subscriber of that mailbox, and every subscriber to all of that
 * user's mailboxes, hears of the change in the same loop turn.
 */
#ifndef PUSH_HUB_H
#define PUSH_HUB_H

#include <stddef.h>
#include <stdint.h>

struct hist;
struct store_change;
struct hub;
struct hub_sub;

/* Runs on the loop thread; change is valid only during the call. */
typedef void (*hub_cb)(const struct store_change *change, void *arg);

/* Pass to hub_subscribe() to hear of every mailbox of the user. */
#define HUB_ALL_MAILBOXES (-1)

struct hub *hub_new(void);

/* Frees the hub; every subscription must have been dropped before. */
void hub_free(struct hub **hub);

/*
 * Hands change to every subscriber of (change->user, change->mailbox_id)
 * and of (change->user, HUB_ALL_MAILBOXES). A callback may subscribe or
 * unsubscribe anything, itself included: a subscription dropped during
 * the fan-out is not called afterwards, one added is not called for this
 * change. The signature matches store_change_cb, with the hub as arg.
 * When change->committed_ns is set and at least one subscriber was called,
 * the time from it to the return of the last callback goes into the
 * latency histogram (see hub_latency()).
 */
void hub_publish(const struct store_change *change, void *hub);

/*
 * Subscribes to the changes of one mailbox of user (by store mailbox id)
 * or, with HUB_ALL_MAILBOXES, of all of them. The subscription stays until
 * hub_unsubscribe(). Never fails.
 */
struct hub_sub *hub_subscribe(struct hub *hub, const char *user,
    int64_t mailbox_id, hub_cb cb, void *arg);

/* Drops a subscription (NULL is fine) and sets *sub to NULL. */
void hub_unsubscribe(struct hub_sub **sub);

/* Subscriptions now held, and changes published so far, for metrics. */
size_t hub_subscriptions(const struct hub *hub);
uint64_t hub_published(const struct hub *hub);

/*
 * Push latency since hub_new(): per timed change that had a subscriber,
 * from the store's durable commit (store_change.committed_ns, taken on the
 * I/O thread) to the return of the last subscriber's callback. Callbacks
 * only queue their lines (e.g. "* n EXISTS") in the sessions' output
 * buffers; the kernel write follows when the loop next polls, within the
 * same pass of the event loop, and is not in this figure. Owned by the
 * hub; read it on the loop thread.
 */
const struct hist *hub_latency(const struct hub *hub);

#endif
