/*
 * Worker pools: a locked job queue served by threads, and an eventfd that
 * wakes the loop thread to run completions in the order jobs finished.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/worker.h"

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
	pthread_cond_t wake;
	struct worker_list queue; /* waiting for a thread */
	struct worker_list done;  /* finished, completion not yet run */
	size_t queued;
	size_t running;
	size_t max_queue;
	int stopping;
	int nice_incr;
	int efd;
	struct event *ev;
	pthread_t *threads;
	unsigned nthreads;
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
worker_list_take_all(struct worker_list *l)
{
	struct worker_job *head = l->head;

	l->head = l->tail = NULL;
	return head;
}

static void *
worker_main(void *arg)
{
	struct worker_pool *pool = arg;
	uint64_t one = 1;

	if (pool->nice_incr > 0)
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
		    pool->nice_incr);
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct worker_job *job;

		while (pool->queue.head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		job = pool->queue.head;
		if (job == NULL)
			break;
		pool->queue.head = job->next;
		if (pool->queue.head == NULL)
			pool->queue.tail = NULL;
		pool->queued--;
		pool->running++;
		pthread_mutex_unlock(&pool->lock);

		job->run(job->arg);

		pthread_mutex_lock(&pool->lock);
		pool->running--;
		worker_list_push(&pool->done, job);
		/* A write to an eventfd only fails if its counter overflows. */
		if (write(pool->efd, &one, sizeof(one)) < 0)
			log_error("event=worker pool=%s error=\"%s\"",
			    pool->name, strerror(errno));
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
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

	pool->name = xstrdup(name);
	pool->max_queue = max_queue;
	pool->nice_incr = nice_incr;
	pool->nthreads = nthreads ? nthreads : 1;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		log_fatal("event=worker pool=%s error=\"eventfd: %s\"", name,
		    strerror(errno));
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST,
	    worker_on_wake, pool);
	event_add(pool->ev, NULL);
	pool->threads = xcalloc(pool->nthreads, sizeof(*pool->threads));
	for (unsigned i = 0; i < pool->nthreads; i++) {
		int r =
		    pthread_create(&pool->threads[i], NULL, worker_main, pool);

		if (r != 0)
			log_fatal("event=worker pool=%s error=\"%s\"", name,
			    strerror(r));
	}
	return pool;
}

int
worker_pool_submit(struct worker_pool *pool, worker_run_cb run,
    worker_done_cb done, void *arg)
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
	worker_list_push(&pool->queue, job);
	pool->queued++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	return 0;
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
	pthread_mutex_unlock(&pool->lock);
	/* Threads drain the queue before they see stopping. */
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	worker_run_done(pool);
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	free(pool->threads);
	free(pool->name);
	free(pool);
	*poolp = NULL;
}
