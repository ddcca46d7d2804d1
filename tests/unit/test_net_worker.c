/* Unit tests for the worker pool: jobs run off the loop, completions on it. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "net/worker.h"

struct job {
	pthread_t loop_thread;
	int ran_off_loop;
	int done_on_loop;
	int *completed;
	struct event_base *base;
	int total;
};

static void
job_run(void *arg)
{
	struct job *j = arg;

	j->ran_off_loop = !pthread_equal(pthread_self(), j->loop_thread);
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done_on_loop = pthread_equal(pthread_self(), j->loop_thread);
	if (++*j->completed == j->total)
		event_base_loopbreak(j->base);
}

static void
test_jobs_complete_on_loop(void)
{
	struct event_base *base = event_base_new();
	struct worker_pool *pool = worker_pool_new(base, "t", 3, 0, 0);
	struct job jobs[50];
	int completed = 0;

	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct job){.loop_thread = pthread_self(),
		    .completed = &completed,
		    .base = base,
		    .total = 50};
		CHECK_INT(worker_pool_submit(pool, job_run, job_done, &jobs[i]),
		    0);
	}
	/* No completion may run before the loop does. */
	CHECK_INT(completed, 0);
	event_base_dispatch(base);
	CHECK_INT(completed, 50);
	for (int i = 0; i < 50; i++)
		CHECK(jobs[i].ran_off_loop && jobs[i].done_on_loop);
	worker_pool_free(&pool);
	CHECK(pool == NULL);
	event_base_free(base);
}

static void
block_run(void *arg)
{
	pthread_mutex_t *m = arg;

	pthread_mutex_lock(m);
	pthread_mutex_unlock(m);
}

static void
test_queue_bound(void)
{
	struct event_base *base = event_base_new();
	struct worker_pool *pool = worker_pool_new(base, "t", 1, 0, 2);
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int refused = 0;

	pthread_mutex_lock(&m);
	/* One job may be taken by the thread; at most two more wait. */
	for (int i = 0; i < 5; i++)
		refused += worker_pool_submit(pool, block_run, NULL, &m) < 0;
	CHECK(refused >= 2 && refused <= 3);
	pthread_mutex_unlock(&m);
	worker_pool_free(&pool);
	event_base_free(base);
}

/* Jobs that return only once all of them run at the same time. */
struct meet {
	pthread_mutex_t m;
	pthread_cond_t c;
	int arrived, want, all_met;
	int *completed;
	struct event_base *base;
};

static void
meet_run(void *arg)
{
	struct meet *mt = arg;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&mt->m);
	if (++mt->arrived == mt->want) {
		mt->all_met = 1;
		pthread_cond_broadcast(&mt->c);
	}
	while (
	    !mt->all_met && pthread_cond_timedwait(&mt->c, &mt->m, &until) == 0)
		;
	pthread_mutex_unlock(&mt->m);
}

static void
meet_done(void *arg)
{
	struct meet *mt = arg;

	if (++*mt->completed == mt->want)
		event_base_loopbreak(mt->base);
}

/* Threads start for waiting work, up to the size, and end when idle. */
static void
test_threads_come_and_go(void)
{
	struct event_base *base = event_base_new();
	struct worker_pool *pool = worker_pool_new(base, "t", 3, 0, 0);
	struct meet mt = {.m = PTHREAD_MUTEX_INITIALIZER,
	    .c = PTHREAD_COND_INITIALIZER,
	    .want = 3,
	    .base = base};
	int completed = 0;

	mt.completed = &completed;
	worker_pool_set_idle_exit(pool, 1);
	CHECK_INT(worker_pool_threads(pool), 0);
	for (int round = 0; round < 2; round++) {
		completed = 0;
		mt.arrived = mt.all_met = 0;
		for (int i = 0; i < 3; i++)
			CHECK_INT(worker_pool_submit(pool, meet_run, meet_done,
			              &mt),
			    0);
		CHECK_INT(worker_pool_threads(pool), 3);
		event_base_dispatch(base);
		CHECK_INT(completed, 3);
		/* The three jobs ran side by side, one per thread. */
		CHECK(mt.all_met);
		for (int i = 0; i < 40 && worker_pool_threads(pool) > 0; i++)
			usleep(100 * 1000);
		CHECK_INT(worker_pool_threads(pool), 0);
	}
	worker_pool_free(&pool);
	event_base_free(base);
}

/* Records the order jobs ran in; the first one waits for a mutex. */
struct ordered {
	pthread_mutex_t *gate;
	int *started; /* set by the gated job before it waits */
	int id;
	int *order, *n;
	int total;
	struct event_base *base;
};

static void
ordered_run(void *arg)
{
	struct ordered *o = arg;

	if (o->gate != NULL) {
		__atomic_store_n(o->started, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(o->gate);
		pthread_mutex_unlock(o->gate);
	}
	/* One thread: no lock needed for the record. */
	o->order[(*o->n)++] = o->id;
}

static void
ordered_done(void *arg)
{
	struct ordered *o = arg;

	if (*o->n == o->total)
		event_base_loopbreak(o->base);
}

/* Jobs queued first run before those queued earlier the usual way. */
static void
test_submit_first(void)
{
	struct event_base *base = event_base_new();
	struct worker_pool *pool = worker_pool_new(base, "t", 1, 0, 0);
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	int order[5], n = 0, started = 0;
	struct ordered jobs[5];

	for (int i = 0; i < 5; i++)
		jobs[i] = (struct ordered){.id = i,
		    .order = order,
		    .n = &n,
		    .total = 5,
		    .base = base};
	jobs[0].gate = &gate;
	jobs[0].started = &started;
	pthread_mutex_lock(&gate);
	CHECK_INT(worker_pool_submit(pool, ordered_run, ordered_done, &jobs[0]),
	    0);
	/* Wait until the one thread holds job 0. */
	for (int i = 0;
	     i < 1000 && !__atomic_load_n(&started, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	CHECK(started);
	CHECK_INT(worker_pool_submit(pool, ordered_run, ordered_done, &jobs[1]),
	    0);
	CHECK_INT(worker_pool_submit(pool, ordered_run, ordered_done, &jobs[2]),
	    0);
	CHECK_INT(worker_pool_submit_first(pool, ordered_run, ordered_done,
	              &jobs[3]),
	    0);
	CHECK_INT(worker_pool_submit_first(pool, ordered_run, ordered_done,
	              &jobs[4]),
	    0);
	pthread_mutex_unlock(&gate);
	event_base_dispatch(base);
	CHECK_INT(n, 5);
	CHECK_INT(order[0], 0);
	CHECK_INT(order[1], 3);
	CHECK_INT(order[2], 4);
	CHECK_INT(order[3], 1);
	CHECK_INT(order[4], 2);
	worker_pool_free(&pool);
	event_base_free(base);
}

/* A job that hands part of its work over, then waits to be let go. */
struct post {
	struct worker_pool *pool;
	struct event_base *base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int released; /* the loop saw the handover; the job may end */
	char order[4];
	int n;
};

static void
post_handed(void *arg)
{
	struct post *p = arg;

	p->order[p->n++] = 'h';
	pthread_mutex_lock(&p->lock);
	p->released = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void
post_run(void *arg)
{
	struct post *p = arg;

	worker_pool_post(p->pool, post_handed, p);
	/* The handover runs on the loop while this job still runs. */
	pthread_mutex_lock(&p->lock);
	while (!p->released)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static void
post_done(void *arg)
{
	struct post *p = arg;

	p->order[p->n++] = 'd';
	event_base_loopbreak(p->base);
}

static void
test_post(void)
{
	struct event_base *base = event_base_new();
	struct post p = {.base = base};

	p.pool = worker_pool_new(base, "t", 1, 0, 0);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	CHECK_INT(worker_pool_submit(p.pool, post_run, post_done, &p), 0);
	event_base_dispatch(base);
	CHECK_INT(p.n, 2);
	CHECK(p.order[0] == 'h' && p.order[1] == 'd');
	worker_pool_free(&p.pool);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	event_base_free(base);
}

int
main(void)
{
	CHECK_RUN(test_post);
	CHECK_RUN(test_submit_first);
	CHECK_RUN(test_threads_come_and_go);
	CHECK_RUN(test_jobs_complete_on_loop);
	CHECK_RUN(test_queue_bound);
	return check_summary();
}
