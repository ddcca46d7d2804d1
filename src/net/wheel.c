/*
 * A timing wheel of WHEEL_SLOTS one-second slots. A timer sits in the slot
 * of its due second modulo the size; each tick walks the slots passed
 * since the last one and fires what is due there, leaving timers that are
 * a whole turn or more away for a later turn.
 */
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/wheel.h"

#define WHEEL_SLOTS 256 /* a power of two */

LIST_HEAD(wheel_list, wheel_timer);

struct wheel {
	struct event *tick;
	wheel_cb cb;
	void *arg;
	size_t n;
	uint32_t done; /* the last second whose slot was walked */
	time_t epoch;  /* the monotonic second that is wheel second 0 */
	struct wheel_list slots[WHEEL_SLOTS];
};

static uint32_t
wheel_now(const struct wheel *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec - w->epoch);
}

/* Fires the due timers of one slot; callbacks may add and delete any. */
static void
wheel_walk(struct wheel *w, uint32_t sec, uint32_t now)
{
	struct wheel_list *slot = &w->slots[sec & (WHEEL_SLOTS - 1)];
	struct wheel_list due = LIST_HEAD_INITIALIZER(due);
	struct wheel_timer *t, *next;

	for (t = LIST_FIRST(slot); t != NULL; t = next) {
		next = LIST_NEXT(t, link);
		if (t->due > now)
			continue;
		LIST_REMOVE(t, link);
		LIST_INSERT_HEAD(&due, t, link);
	}
	while ((t = LIST_FIRST(&due)) != NULL) {
		LIST_REMOVE(t, link);
		t->armed = 0;
		w->n--;
		w->cb(t, w->arg);
	}
}

static void
wheel_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct wheel *w = arg;
	uint32_t now = wheel_now(w);

	/* After a long stall one turn covers every slot. */
	if (now - w->done > WHEEL_SLOTS)
		w->done = now - WHEEL_SLOTS;
	while (w->done != now && w->n > 0)
		wheel_walk(w, ++w->done, now);
	w->done = now;
	if (w->n == 0)
		evtimer_del(w->tick);
}

struct wheel *
wheel_new(struct event_base *base, wheel_cb cb, void *arg)
{
	struct wheel *w = xcalloc(1, sizeof(*w));
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->epoch = ts.tv_sec;
	w->cb = cb;
	w->arg = arg;
	for (size_t i = 0; i < WHEEL_SLOTS; i++)
		LIST_INIT(&w->slots[i]);
	w->tick = event_new(base, -1, EV_PERSIST, wheel_on_tick, w);
	if (w->tick == NULL)
		log_fatal("event=wheel error=\"cannot make the tick event\"");
	return w;
}

void
wheel_free(struct wheel **wp)
{
	struct wheel *w = *wp;

	if (w == NULL)
		return;
	for (size_t i = 0; i < WHEEL_SLOTS; i++) {
		struct wheel_timer *t;

		while ((t = LIST_FIRST(&w->slots[i])) != NULL) {
			LIST_REMOVE(t, link);
			t->armed = 0;
		}
	}
	event_free(w->tick);
	free(w);
	*wp = NULL;
}

void
wheel_add(struct wheel *w, struct wheel_timer *t, unsigned seconds)
{
	uint32_t now = wheel_now(w);

	wheel_del(w, t);
	if (w->n == 0) {
		struct timeval sec = {1, 0};

		w->done = now;
		evtimer_add(w->tick, &sec);
	}
	/* A slot at or before the last walked one would wait a turn. */
	t->due = (now > w->done ? now : w->done) + (seconds > 0 ? seconds : 1);
	LIST_INSERT_HEAD(&w->slots[t->due & (WHEEL_SLOTS - 1)], t, link);
	t->armed = 1;
	w->n++;
}

void
wheel_del(struct wheel *w, struct wheel_timer *t)
{
	if (!t->armed)
		return;
	LIST_REMOVE(t, link);
	t->armed = 0;
	w->n--;
	if (w->n == 0)
		evtimer_del(w->tick);
}

size_t
wheel_count(const struct wheel *w)
{
	return w->n;
}
