/*
 * token-exec.c - PKCS#11 calls with a time bound.
 *
 * A network HSM can leave a call hanging for minutes.  A request must not hang
 * with it, so signing runs on executor threads: the requester hands the work
 * over and waits up to token.call_timeout_ms.  If the call has not returned
 * by then, the requester gives up (TOKEN_UNAVAILABLE), its session is retired
 * (the pool opens a fresh one at the next borrow) and a new executor thread
 * takes the stuck one's place.  The stuck thread finishes whenever the module
 * lets it, closes the retired session if the module was not re-initialised
 * meanwhile (its handle could then name someone else's session), and exits.
 *
 * Everything a call touches lives in the job and in a reference-counted
 * context: the requester's stack may be gone when a stuck call returns.
 */
#include "config.h"

#include "token-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tca-error.h"

struct tok_job {
	struct tok_job *next;		/* queue */
	unsigned int refs;		/* requester and executor; under exec_lock */
	tok_op_fn fn;
	struct tok_op op;		/* a copy; key and type copied back */
	struct tok_ref *ctx;		/* a reference held by the job */
	struct session sess;		/* a copy of the borrowed session */
	unsigned long long generation;	/* tok->generation when submitted */
	CK_RV rv;
	int started, done, abandoned;
	pthread_cond_t cond;		/* done; waited on by the requester */
};

void
tok_ref_get(struct tok_ref *r)
{
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
}

void
tok_ref_put(struct tok_ref *r)
{
	if (r != NULL && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0)
		r->free_fn(r);
}

/* Drops one reference; caller holds exec_lock. */
static void
job_put_locked(struct tok_job *j)
{
	if (--j->refs > 0)
		return;
	tok_ref_put(j->ctx);
	pthread_cond_destroy(&j->cond);
	free(j);
}

static void *
executor_main(void *arg)
{
	tok_local *tok = arg;
	struct tok_job *j;
	CK_SESSION_HANDLE stale;
	int close_it;
	CK_RV rv;

	pthread_mutex_lock(&tok->exec_lock);
	for (;;) {
		/* the stuck executors (exec_hung) are counted in exec_workers but
		 * serve nobody: only a surplus of live ones leaves */
		while (tok->exec_head == NULL && !tok->exec_stop &&
		    tok->exec_workers - tok->exec_hung <= tok->exec_want)
			pthread_cond_wait(&tok->exec_cond, &tok->exec_lock);
		if (tok->exec_stop || tok->exec_workers - tok->exec_hung > tok->exec_want)
			break;
		j = tok->exec_head;
		tok->exec_head = j->next;
		if (tok->exec_head == NULL)
			tok->exec_tail = NULL;
		j->next = NULL;
		j->started = 1;
		pthread_mutex_unlock(&tok->exec_lock);

		rv = j->fn(tok, &j->sess, &j->op, j->ctx);

		pthread_mutex_lock(&tok->exec_lock);
		j->rv = rv;
		j->done = 1;
		stale = CK_INVALID_HANDLE;
		close_it = 0;
		if (j->abandoned) {
			/* the requester gave up and this thread was replaced */
			stale = j->sess.h;
			pthread_mutex_lock(&tok->pool_lock);
			close_it = j->generation == tok->generation;
			pthread_mutex_unlock(&tok->pool_lock);
			log_warn("token: a %s call that hung returned after all (%s)",
			    j->op.what, tca_p11_rv_name(rv));
			pthread_cond_signal(&j->cond);
			job_put_locked(j);
			pthread_mutex_unlock(&tok->exec_lock);
			if (close_it && stale != CK_INVALID_HANDLE)
				(void)P11_CALL_QUIET(tok->mod, C_CloseSession, stale);
			/* only now is this thread out of the module: until then it is
			 * counted hung, so neither the supervisor (re-initialising)
			 * nor tca_token_close (finalizing, unloading) pulls the
			 * module from under the C_CloseSession above */
			pthread_mutex_lock(&tok->exec_lock);
			tok->exec_hung--;
			tok->exec_workers--;
			pthread_cond_broadcast(&tok->exec_cond);
			pthread_mutex_unlock(&tok->exec_lock);
			return NULL;
		}
		pthread_cond_signal(&j->cond);
		job_put_locked(j);
	}
	tok->exec_workers--;
	pthread_cond_broadcast(&tok->exec_cond);
	pthread_mutex_unlock(&tok->exec_lock);
	return NULL;
}

/* Starts one executor thread; caller holds exec_lock. */
static int
executor_spawn_locked(tok_local *tok)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return TCA_ERR_SYSTEM;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, executor_main, tok);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return TCA_ERR_SYSTEM;
	tok->exec_workers++;
	return TCA_OK;
}

int
tok_exec_start(tok_local *tok, unsigned int n)
{
	unsigned int i;
	int r = TCA_OK;

	pthread_mutex_lock(&tok->exec_lock);
	tok->exec_want = n;
	for (i = 0; i < n && r == TCA_OK; i++)
		r = executor_spawn_locked(tok);
	pthread_mutex_unlock(&tok->exec_lock);
	return r;
}

void
tok_exec_stop(tok_local *tok)
{
	struct timespec ts;
	int64_t until;

	pthread_mutex_lock(&tok->exec_lock);
	tok->exec_stop = 1;
	pthread_cond_broadcast(&tok->exec_cond);
	/* idle executors leave at once; a stuck one is waited for a little and
	 * then left behind (it holds its own references) */
	until = tca_p11_now_ms() + 2000;
	ts.tv_sec = (time_t)(until / 1000);
	ts.tv_nsec = (long)(until % 1000) * 1000000L;
	while (tok->exec_workers > tok->exec_hung)
		if (pthread_cond_timedwait(&tok->exec_cond, &tok->exec_lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&tok->exec_lock);
}

int
tok_exec_hung(tok_local *tok)
{
	int n;

	pthread_mutex_lock(&tok->exec_lock);
	n = (int)tok->exec_hung;
	pthread_mutex_unlock(&tok->exec_lock);
	return n;
}

CK_RV
tok_exec_call(tok_local *tok, struct session *s, tok_op_fn fn, struct tok_op *op,
    struct tok_ref *ctx, int *timed_out)
{
	struct tok_job *j;
	struct timespec ts;
	int64_t until;
	CK_RV rv;

	*timed_out = 0;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		op->r = TCA_ERR_NOMEM;
		return TOK_RV_ENGINE;
	}
	if (pthread_cond_init(&j->cond, &tok->cond_attr) != 0) {
		free(j);
		op->r = TCA_ERR_SYSTEM;
		return TOK_RV_ENGINE;
	}
	j->refs = 2;
	j->fn = fn;
	j->op = *op;
	j->ctx = ctx;
	tok_ref_get(ctx);
	j->sess = *s;
	pthread_mutex_lock(&tok->pool_lock);
	j->generation = tok->generation;
	pthread_mutex_unlock(&tok->pool_lock);
	until = tca_p11_now_ms() + tok->call_timeout_ms;
	ts.tv_sec = (time_t)(until / 1000);
	ts.tv_nsec = (long)(until % 1000) * 1000000L;

	pthread_mutex_lock(&tok->exec_lock);
	if (tok->exec_tail != NULL)
		tok->exec_tail->next = j;
	else
		tok->exec_head = j;
	tok->exec_tail = j;
	pthread_cond_signal(&tok->exec_cond);
	while (!j->done)
		if (pthread_cond_timedwait(&j->cond, &tok->exec_lock, &ts) == ETIMEDOUT &&
		    !j->done)
			break;
	if (j->done) {
		rv = j->rv;
		op->key = j->op.key;
		op->type = j->op.type;
		op->r = j->op.r;
		job_put_locked(j);
		pthread_mutex_unlock(&tok->exec_lock);
		return rv;
	}
	*timed_out = 1;
	op->r = TCA_ERR_TOKEN_UNAVAILABLE;
	if (!j->started) {
		/* still queued (every executor is busy or stuck): take it out; the
		 * session was never used */
		struct tok_job **pp, *t;

		for (pp = &tok->exec_head; *pp != NULL && *pp != j; pp = &(*pp)->next)
			;
		if (*pp == j)
			*pp = j->next;
		tok->exec_tail = NULL;
		for (t = tok->exec_head; t != NULL; t = t->next)
			tok->exec_tail = t;
		j->refs--;	/* the executor's: it will never see the job */
		job_put_locked(j);
		pthread_mutex_unlock(&tok->exec_lock);
		log_error("token: no executor took a %s call within %u ms (all stuck?)",
		    op->what, tok->call_timeout_ms);
		return TOK_RV_ENGINE;
	}
	/* running and stuck: abandon it, retire its session, replace the thread */
	j->abandoned = 1;
	tok->exec_hung++;
	if (executor_spawn_locked(tok) != TCA_OK)
		log_error("token: could not start a replacement executor thread");
	job_put_locked(j);
	pthread_mutex_unlock(&tok->exec_lock);
	log_error("token: a %s call has not returned after %u ms; the request fails and "
	    "the session is retired (token.call_timeout_ms)", op->what, tok->call_timeout_ms);
	s->h = CK_INVALID_HANDLE;	/* the stuck executor owns the old handle now */
	s->broken = 1;
	return TOK_RV_ENGINE;
}
