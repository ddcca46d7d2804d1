/* Unit tests for the timing wheel: timers fire once, in time, in order. */
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "check.h"
#include "net/wheel.h"

struct owner {
	struct wheel_timer t; /* first */
	int id;
	double fired_at;
	int fired;
	int readd; /* seconds to arm again from the callback, once */
};

struct run {
	struct event_base *base;
	struct wheel *w;
	double t0;
	int order[8];
	int norder;
	struct owner *kill; /* deleted by the first callback */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_fire(struct wheel_timer *t, void *arg)
{
	struct run *r = arg;
	struct owner *o = (struct owner *)t;

	CHECK(!t->armed);
	o->fired++;
	o->fired_at = now_s() - r->t0;
	r->order[r->norder++] = o->id;
	if (r->kill != NULL) {
		wheel_del(r->w, &r->kill->t);
		r->kill = NULL;
	}
	if (o->readd > 0) {
		wheel_add(r->w, t, (unsigned)o->readd);
		o->readd = 0;
	}
	if (wheel_count(r->w) == 0)
		event_base_loopbreak(r->base);
}

static void
test_fires_in_order(void)
{
	struct run r = {.base = event_base_new()};
	struct owner a = {.id = 1}, b = {.id = 2, .readd = 1}, c = {.id = 3},
	             d = {.id = 4}, e = {.id = 5};
	struct timeval limit = {8, 0};

	r.w = wheel_new(r.base, on_fire, &r);
	r.t0 = now_s();
	wheel_add(r.w, &c.t, 3);
	wheel_add(r.w, &a.t, 0); /* at least a second */
	wheel_add(r.w, &b.t, 2);
	wheel_add(r.w, &d.t, 2);
	wheel_add(r.w, &e.t, 200);
	wheel_del(r.w, &e.t);
	wheel_del(r.w, &e.t); /* twice is harmless */
	r.kill = &d;          /* a's callback deletes d before it is due */
	CHECK_INT((int)wheel_count(r.w), 4);
	/* Moving an armed timer keeps one entry. */
	wheel_add(r.w, &c.t, 3);
	CHECK_INT((int)wheel_count(r.w), 4);
	event_base_loopexit(r.base, &limit);
	event_base_dispatch(r.base);
	CHECK_INT((int)wheel_count(r.w), 0);
	CHECK_INT(a.fired, 1);
	CHECK_INT(b.fired, 2);
	CHECK_INT(c.fired, 1);
	CHECK_INT(d.fired, 0);
	CHECK_INT(e.fired, 0);
	CHECK_INT(r.norder, 4);
	CHECK_INT(r.order[0], 1);
	CHECK_INT(r.order[1], 2);
	/* c (due at 3) and b again (2 + 1) share a second. */
	CHECK((r.order[2] == 3 && r.order[3] == 2) ||
	    (r.order[2] == 2 && r.order[3] == 3));
	CHECK(a.fired_at >= 0.0 && a.fired_at < 2.2);
	CHECK(c.fired_at >= 2.0 && c.fired_at < 4.2);
	CHECK(b.fired_at >= 2.0 && b.fired_at < 4.2);
	wheel_free(&r.w);
	CHECK(r.w == NULL);
	event_base_free(r.base);
}

static void
test_free_with_armed_timers(void)
{
	struct run r = {.base = event_base_new()};
	struct owner a = {.id = 1};

	r.w = wheel_new(r.base, on_fire, &r);
	wheel_add(r.w, &a.t, 30);
	wheel_free(&r.w);
	CHECK(!a.t.armed);
	event_base_free(r.base);
}

int
main(void)
{
	CHECK_RUN(test_fires_in_order);
	CHECK_RUN(test_free_with_armed_timers);
	return check_summary();
}
