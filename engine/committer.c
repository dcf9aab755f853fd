/*
 * committer.c - group commit: one thread turns every change queued meanwhile
 * into one store transaction.
 *
 * A submitter's pending entry lives on its own stack; it stays queued (and
 * the submitter blocked) until the committer thread has written its result
 * and posted its semaphore, so no entry outlives its owner.  The committer
 * wakes exactly the submitters of the batch it finished, outside its mutex:
 * one shared, broadcast condition woke every waiting submitter after every
 * batch, and the herd fighting for the mutex was 70 % of the engine's futex
 * calls under 16 clients (docs/performance.md).  glibc's sem_post() does not
 * touch the semaphore once the waiter can return, so the owner may destroy
 * it right after sem_wait().  Stop
 * frees the committer only once every submitter has left submit(), since a
 * woken submitter still needs the mutex after its batch is done.
 */
#include "config.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "committer.h"
#include "log.h"
#include "tca-error.h"

#define DEFAULT_MAX_BATCH 128
#define MAX_MAX_BATCH 4096

struct pending {
	struct tca_change *chg;
	int result;
	sem_t done;		/* posted once, when result is final */
	struct pending *next;
};

struct tca_committer {
	tca_store *st;
	size_t max_batch;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* queue non-empty or stopping */
	pthread_cond_t left;	/* a submitter left submit() while stopping */
	struct pending *head, *tail;
	int stopping;
	size_t inside;		/* submitters inside submit() */
	pthread_t thread;
	/* the committer thread's batch, allocated once */
	struct pending **batch;
	struct tca_change **changes;
	int *results;
	/* stats, under lock */
	unsigned long long n_commits, n_changes, n_failures;
};

static void *
committer_main(void *arg)
{
	struct tca_committer *c = arg;
	size_t i, n, ok;
	int r;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->head == NULL && !c->stopping)
			pthread_cond_wait(&c->work, &c->lock);
		/* on stop, everything already queued is still committed */
		if (c->head == NULL)
			break;
		for (n = 0; n < c->max_batch && c->head != NULL; n++) {
			c->batch[n] = c->head;
			c->changes[n] = c->head->chg;
			c->head = c->head->next;
		}
		if (c->head == NULL)
			c->tail = NULL;
		pthread_mutex_unlock(&c->lock);

		r = c->st->ops->commit(c->st, c->changes, n, c->results);
		ok = 0;

		/* the owners are blocked in sem_wait() until their post: the
		 * entries are valid until then, and never touched after.  The
		 * counters are updated first, so a submitter that returns
		 * sees its own batch in tca_committer_stats(). */
		for (i = 0; i < n; i++) {
			c->batch[i]->result = r == TCA_OK ? c->results[i] :
			    TCA_ERR_JOURNAL_UNAVAILABLE;
			if (c->batch[i]->result == TCA_OK)
				ok++;
		}
		pthread_mutex_lock(&c->lock);
		if (r == TCA_OK)
			c->n_commits++;
		else
			c->n_failures++;
		c->n_changes += ok;
		pthread_mutex_unlock(&c->lock);
		for (i = 0; i < n; i++)
			sem_post(&c->batch[i]->done);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
committer_free(struct tca_committer *c)
{
	if (c == NULL)
		return;
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->left);
	pthread_mutex_destroy(&c->lock);
	free(c->batch);
	free(c->changes);
	free(c->results);
	free(c);
}

int
tca_committer_start(tca_store *st, size_t max_batch, tca_committer **c_ptr)
{
	struct tca_committer *c = NULL;
	sigset_t all, old;
	int err, r = TCA_ERR_INTERNAL;

	if (c_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*c_ptr = NULL;
	if (st == NULL || st->ops == NULL || st->ops->commit == NULL ||
	    max_batch > MAX_MAX_BATCH)
		return TCA_ERR_INVALID_ARG;
	if (max_batch == 0)
		max_batch = DEFAULT_MAX_BATCH;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TCA_ERR_NOMEM;
	c->st = st;
	c->max_batch = max_batch;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return TCA_ERR_SYSTEM;
	}
	if (pthread_cond_init(&c->work, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return TCA_ERR_SYSTEM;
	}
	if (pthread_cond_init(&c->left, NULL) != 0) {
		pthread_cond_destroy(&c->work);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return TCA_ERR_SYSTEM;
	}
	if ((c->batch = calloc(max_batch, sizeof(*c->batch))) == NULL ||
	    (c->changes = calloc(max_batch, sizeof(*c->changes))) == NULL ||
	    (c->results = calloc(max_batch, sizeof(*c->results))) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	/* signals belong to the main loop, never to the committer thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&c->thread, NULL, committer_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("committer: pthread_create: %s", strerror(err));
		r = TCA_ERR_SYSTEM;
		goto out;
	}
	*c_ptr = c;
	c = NULL;
	r = TCA_OK;
 out:
	committer_free(c);
	return r;
}

int
tca_committer_submit(tca_committer *c, struct tca_change *chg)
{
	struct pending p;

	if (c == NULL || chg == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&p, 0, sizeof(p));
	p.chg = chg;
	p.result = TCA_ERR_INTERNAL;
	if (sem_init(&p.done, 0, 0) != 0)
		return TCA_ERR_SYSTEM;
	pthread_mutex_lock(&c->lock);
	c->inside++;
	if (c->stopping) {
		p.result = TCA_ERR_SHUTTING_DOWN;
		goto out;
	}
	if (c->tail != NULL)
		c->tail->next = &p;
	else
		c->head = &p;
	c->tail = &p;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	while (sem_wait(&p.done) != 0)
		;	/* EINTR */
	pthread_mutex_lock(&c->lock);
 out:
	c->inside--;
	if (c->stopping && c->inside == 0)
		pthread_cond_broadcast(&c->left);
	pthread_mutex_unlock(&c->lock);
	sem_destroy(&p.done);
	return p.result;
}

void
tca_committer_stop(tca_committer *c)
{
	int err;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	if ((err = pthread_join(c->thread, NULL)) != 0) {
		/* freeing under a running thread would be worse than a leak */
		log_error("committer: pthread_join: %s", strerror(err));
		return;
	}
	pthread_mutex_lock(&c->lock);
	while (c->inside > 0)
		pthread_cond_wait(&c->left, &c->lock);
	pthread_mutex_unlock(&c->lock);
	log_debug("committer: stopped after %llu commits, %llu changes, "
	    "%llu failed batches", c->n_commits, c->n_changes, c->n_failures);
	committer_free(c);
}

void
tca_committer_stats(tca_committer *c, unsigned long long *commits,
    unsigned long long *changes, unsigned long long *failures)
{
	if (c == NULL) {
		if (commits != NULL)
			*commits = 0;
		if (changes != NULL)
			*changes = 0;
		if (failures != NULL)
			*failures = 0;
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (commits != NULL)
		*commits = c->n_commits;
	if (changes != NULL)
		*changes = c->n_changes;
	if (failures != NULL)
		*failures = c->n_failures;
	pthread_mutex_unlock(&c->lock);
}
