/*
 * committer.h - group commit in front of a store.
 *
 * Request threads hand a change to the committer and block until it is
 * durable.  One committer thread takes every change queued so far (up to
 * max_batch) and applies them with ONE store commit, so N concurrent requests
 * cost one fsync instead of N.  Nothing is returned to a client before its
 * change is committed.
 */
#ifndef TCA_COMMITTER_H
#define TCA_COMMITTER_H

#include <stddef.h>

#include "store.h"

typedef struct tca_committer tca_committer;

/* Starts the committer thread.  st is borrowed and must outlive the committer. */
int tca_committer_start(tca_store *st, size_t max_batch, tca_committer **c_ptr);

/*
 * Queues chg and waits until the batch holding it has been committed.
 * Returns the change's own result (TCA_OK, TCA_ERR_ALREADY_EXISTS,
 * TCA_ERR_NOT_FOUND) or TCA_ERR_JOURNAL_UNAVAILABLE if its batch could not be
 * committed, or TCA_ERR_SHUTTING_DOWN if the committer is stopping.
 * chg and everything it points to must stay valid until this returns.
 */
int tca_committer_submit(tca_committer *c, struct tca_change *chg);

/* Commits what is queued, stops the thread, waits for every submitter to
 * return, frees c.  Submits racing with stop get TCA_ERR_SHUTTING_DOWN; none
 * may start once stop has returned.  NULL ok. */
void tca_committer_stop(tca_committer *c);

/* Counters for status: commits (transactions committed), changes committed
 * (results TCA_OK) and failures (batches the store could not commit). */
void tca_committer_stats(tca_committer *c, unsigned long long *commits,
    unsigned long long *changes, unsigned long long *failures);

#endif
