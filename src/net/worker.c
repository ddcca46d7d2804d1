/*
 * Worker pools: a locked job queue served by threads, and an eventfd that
 * wakes the loop thread to run completions in the order jobs finished.
 *
 * Threads start when jobs outnumber the waiting threads (up to the pool's
 * size) and end after idle_exit seconds without work: a thread that
 * ends hands its malloc cache back (glibc keeps up to a few hundred freed
 * chunks per thread, each pinning a page), so a quiet server costs what it
 * holds, not what its busiest minute left behind.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/worker.h"

/* Seconds a thread waits for work before it ends, by default. */
#define WORKER_IDLE_EXIT 10

struct worker_job {
	worker_run_cb run;
	worker_done_cb done;
	void *arg;
	struct worker_job *next;
};

struct worker_list {
	struct worker_job *head;
	struct worker_job *tail;
};

struct worker_pool {
	char *name;
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* work queued, or stopping */
	pthread_cond_t gone;      /* a thread ended */
	struct worker_list first; /* waiting, taken before queue */
	struct worker_list queue; /* waiting for a thread */
	struct worker_list done;  /* finished, completion not yet run */
	size_t queued;
	size_t running;
	size_t max_queue;
	int stopping;
	int nice_incr;
	int efd;
	struct event *ev;
	unsigned nthreads;  /* at most */
	unsigned live;      /* started and not ended */
	unsigned waiting;   /* live and waiting for work */
	unsigned idle_exit; /* seconds without work before a thread ends */
};

static void
worker_list_push(struct worker_list *l, struct worker_job *job)
{
	job->next = NULL;
	if (l->tail != NULL)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
}

static struct worker_job *
worker_list_pop(struct worker_list *l)
{
	struct worker_job *job = l->head;

	if (job != NULL) {
		l->head = job->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return job;
}

static struct worker_job *
worker_list_take_all(struct worker_list *l)
{
	struct worker_job *head = l->head;

	l->head = l->tail = NULL;
	return head;
}

/*
 * Waits for work until idle_exit seconds have passed or the pool
 * stops; returns the next job, or NULL when the thread is to end. Called
 * and returns with the lock held.
 */
static struct worker_job *
worker_next(struct worker_pool *pool)
{
	struct timespec until;
	struct worker_job *job;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += pool->idle_exit;
	while (pool->first.head == NULL && pool->queue.head == NULL &&
	    !pool->stopping) {
		int r;

		pool->waiting++;
		r = pthread_cond_timedwait(&pool->wake, &pool->lock, &until);
		pool->waiting--;
		if (r == ETIMEDOUT && pool->first.head == NULL &&
		    pool->queue.head == NULL)
			return NULL;
	}
	job = worker_list_pop(&pool->first);
	if (job == NULL)
		job = worker_list_pop(&pool->queue);
	if (job != NULL)
		pool->queued--;
	return job;
}

/* Queues job's completion and wakes the loop. Called with the lock held. */
static void
worker_finished(struct worker_pool *pool, struct worker_job *job)
{
	uint64_t one = 1;

	worker_list_push(&pool->done, job);
	/* A write to an eventfd only fails if its counter overflows. */
	if (write(pool->efd, &one, sizeof(one)) < 0)
		log_error("event=worker pool=%s error=\"%s\"", pool->name,
		    strerror(errno));
}

static void *
worker_main(void *arg)
{
	struct worker_pool *pool = arg;
	struct worker_job *job;

	if (pool->nice_incr > 0)
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
		    pool->nice_incr);
	pthread_mutex_lock(&pool->lock);
	while ((job = worker_next(pool)) != NULL) {
		pool->running++;
		pthread_mutex_unlock(&pool->lock);

		job->run(job->arg);

		pthread_mutex_lock(&pool->lock);
		pool->running--;
		worker_finished(pool, job);
	}
	/* After this unlock the pool may be freed: touch nothing of it. */
	pool->live--;
	pthread_cond_signal(&pool->gone);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/*
 * Starts a thread when the jobs waiting outnumber the threads waiting and
 * the pool has room. Called with the lock held.
 */
static void
worker_spawn(struct worker_pool *pool)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (pool->queued <= pool->waiting || pool->live >= pool->nthreads)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, worker_main, pool);
	pthread_attr_destroy(&attr);
	if (r == 0) {
		pool->live++;
		return;
	}
	/* With one thread left the jobs still run, later. */
	if (pool->live == 0)
		log_fatal("event=worker pool=%s error=\"%s\"", pool->name,
		    strerror(r));
	log_error("event=worker pool=%s error=\"%s\"", pool->name, strerror(r));
}

static void
worker_run_done(struct worker_pool *pool)
{
	struct worker_job *job;

	pthread_mutex_lock(&pool->lock);
	job = worker_list_take_all(&pool->done);
	pthread_mutex_unlock(&pool->lock);
	while (job != NULL) {
		struct worker_job *next = job->next;

		if (job->done != NULL)
			job->done(job->arg);
		free(job);
		job = next;
	}
}

static void
worker_on_wake(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error("event=worker error=\"%s\"", strerror(errno));
	worker_run_done(arg);
}

struct worker_pool *
worker_pool_new(struct event_base *base, const char *name, unsigned nthreads,
    int nice_incr, size_t max_queue)
{
	struct worker_pool *pool = xcalloc(1, sizeof(*pool));
	pthread_condattr_t ca;

	pool->name = xstrdup(name);
	pool->max_queue = max_queue;
	pool->nice_incr = nice_incr;
	pool->nthreads = nthreads ? nthreads : 1;
	pool->idle_exit = WORKER_IDLE_EXIT;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&pool->gone, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		log_fatal("event=worker pool=%s error=\"eventfd: %s\"", name,
		    strerror(errno));
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST,
	    worker_on_wake, pool);
	/* Ahead of client I/O where the base has priorities (cmd_serve). */
	if (event_base_get_npriorities(base) > 1)
		event_priority_set(pool->ev, 0);
	event_add(pool->ev, NULL);
	return pool;
}

static int
worker_pool_queue(struct worker_pool *pool, struct worker_list *list,
    worker_run_cb run, worker_done_cb done, void *arg)
{
	struct worker_job *job;

	pthread_mutex_lock(&pool->lock);
	if (pool->max_queue && pool->queued >= pool->max_queue) {
		pthread_mutex_unlock(&pool->lock);
		return -1;
	}
	job = xmalloc(sizeof(*job));
	job->run = run;
	job->done = done;
	job->arg = arg;
	worker_list_push(list, job);
	pool->queued++;
	worker_spawn(pool);
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

int
worker_pool_submit(struct worker_pool *pool, worker_run_cb run,
    worker_done_cb done, void *arg)
{
	return worker_pool_queue(pool, &pool->queue, run, done, arg);
}

int
worker_pool_submit_first(struct worker_pool *pool, worker_run_cb run,
    worker_done_cb done, void *arg)
{
	return worker_pool_queue(pool, &pool->first, run, done, arg);
}

void
worker_pool_post(struct worker_pool *pool, worker_done_cb done, void *arg)
{
	struct worker_job *job = xmalloc(sizeof(*job));

	job->run = NULL;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&pool->lock);
	worker_finished(pool, job);
	pthread_mutex_unlock(&pool->lock);
	/*
	 * The kernel tends to wake the loop thread on this CPU, where it
	 * would wait for the rest of this job; on two CPUs that was most of
	 * a push's latency (70 to 100 us). Let it run first.
	 */
	sched_yield();
}

void
worker_pool_set_idle_exit(struct worker_pool *pool, unsigned seconds)
{
	pthread_mutex_lock(&pool->lock);
	pool->idle_exit = seconds > 0 ? seconds : 1;
	pthread_mutex_unlock(&pool->lock);
}

unsigned
worker_pool_threads(struct worker_pool *pool)
{
	unsigned n;

	pthread_mutex_lock(&pool->lock);
	n = pool->live;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

size_t
worker_pool_pending(struct worker_pool *pool)
{
	size_t n;

	pthread_mutex_lock(&pool->lock);
	n = pool->queued + pool->running;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

void
worker_pool_free(struct worker_pool **poolp)
{
	struct worker_pool *pool = *poolp;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
	pthread_cond_broadcast(&pool->wake);
	/* Threads drain the queue before they see stopping. */
	while (pool->live > 0)
		pthread_cond_wait(&pool->gone, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	worker_run_done(pool);
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->gone);
	free(pool->name);
	free(pool);
	*poolp = NULL;
}
