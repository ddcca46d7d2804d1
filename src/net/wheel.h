/*
 * Coarse timers for many long waits (IMAP IDLE keepalives): a timer is
 * 24 bytes inside its owner instead of a libevent event of its own, due to
 * the second, and one event per wheel ticks once a second while any timer
 * is armed. A wheel fires the one callback it was made with; the owner
 * finds itself from the timer it embeds.
 */
#ifndef NET_WHEEL_H
#define NET_WHEEL_H

#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct wheel;

struct wheel_timer {
	LIST_ENTRY(wheel_timer) link;
	uint32_t due;   /* wheel seconds */
	uint32_t armed; /* on the wheel */
};

/* Runs on the loop thread with the timer already disarmed. */
typedef void (*wheel_cb)(struct wheel_timer *t, void *arg);

struct wheel *wheel_new(struct event_base *base, wheel_cb cb, void *arg);

/* Frees the wheel; armed timers are forgotten, never fired. */
void wheel_free(struct wheel **w);

/*
 * Arms t to fire in seconds (at least 1; a timer already armed moves).
 * The timer must be zeroed before its first use.
 */
void wheel_add(struct wheel *w, struct wheel_timer *t, unsigned seconds);

/* Disarms t; nothing happens when it is not armed. */
void wheel_del(struct wheel *w, struct wheel_timer *t);

/* Timers armed; for tests. */
size_t wheel_count(const struct wheel *w);

#endif
