/*
 * Worker pools: jobs that may block (fsync, SQLite writes, password hashing)
 * run on threads of their own, and their completion runs back on the event
 * loop thread. The loop thread never waits for a job.
 */
#ifndef NET_WORKER_H
#define NET_WORKER_H

#include <stddef.h>

struct event_base;
struct worker_pool;

/* Runs on a worker thread; must not touch loop-owned state. */
typedef void (*worker_run_cb)(void *arg);
/* Runs on the loop thread after the matching worker_run_cb has returned. */
typedef void (*worker_done_cb)(void *arg);

/*
 * A pool of up to nthreads threads named name, started as work comes and
 * ended after some seconds without it. nice_incr > 0 lowers their scheduling
 * priority (the password pool uses it so hashing never delays deliveries).
 * max_queue bounds the jobs waiting for a thread (0: unbounded).
 * evthread_use_pthreads() must have been called before base was made.
 */
struct worker_pool *worker_pool_new(struct event_base *base, const char *name,
    unsigned nthreads, int nice_incr, size_t max_queue);

/*
 * Queues run(arg) on a worker, then done(arg) on the loop thread; done may be
 * NULL. done never runs before this returns. Returns 0, or -1 when the queue
 * is full (nothing was queued).
 */
int worker_pool_submit(struct worker_pool *pool, worker_run_cb run,
    worker_done_cb done, void *arg);

/*
 * From a job's run callback: queues done(arg) on the loop thread at once,
 * ahead of the job's own completion, so a job can hand over the part of
 * its work that is finished while it goes on with the rest.
 */
void worker_pool_post(struct worker_pool *pool, worker_done_cb done, void *arg);

/* Seconds a thread waits for work before it ends (default 10). */
void worker_pool_set_idle_exit(struct worker_pool *pool, unsigned seconds);

/*
 * Like worker_pool_submit(), but the job runs before every job queued
 * with worker_pool_submit() (in order among its kind): for work somebody
 * waits on at once, such as a delivery whose 250 and push are pending.
 */
int worker_pool_submit_first(struct worker_pool *pool, worker_run_cb run,
    worker_done_cb done, void *arg);

/* Threads alive now (they start with work and end when idle). */
unsigned worker_pool_threads(struct worker_pool *pool);

/* Jobs queued and running; for metrics and tests. */
size_t worker_pool_pending(struct worker_pool *pool);

/*
 * Lets queued and running jobs finish and their done callbacks run, then
 * stops the threads and frees the pool. Sets *pool to NULL.
 */
void worker_pool_free(struct worker_pool **pool);

#endif
