/*
 * engine-sync.c - engines sharing one store see each other's changes
 * (issue 13; docs/architecture.md, Cache coherence across engines).
 *
 * Every engine caches the tenants' CAs (with their policies and CRL state)
 * and the set of revoked certificates.  What another engine changes reaches
 * this one two ways:
 *  - the journal: every such change is a journal record (store.h,
 *    changes_since), and a sync round reads the records after the last one
 *    it read and re-reads what they name - the CA of each tenant named
 *    (tca_engine_ca_refresh: loaded, replaced or dropped) and each revoked
 *    certificate (tca_revset_note);
 *  - the rounds run when the store says something changed (PostgreSQL
 *    LISTEN/NOTIFY, sent by the committing transaction), at least every
 *    SYNC_POLL_MS whatever happens (a lost notification costs that much),
 *    and on every cache miss (a tenant created elsewhere a moment ago).
 * What is still in flight when a round has not yet run is caught by the
 * store itself: a certificate's commit names the CA and policy it was made
 * from (expect_ca_id, expect_policy) and a re-enrollment the certificate it
 * renews, and the store refuses them when another engine changed those
 * (TCA_ERR_STALE, TCA_ERR_REVOKED).  So a cache may lag by a round, but
 * nothing is committed from a stale one.
 *
 * A store that only one engine opens (SQLite: wait_change NULL) needs none
 * of it: no thread runs, and a cache miss is a miss.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "engine-int.h"
#include "log.h"
#include "store.h"
#include "tca-error.h"
#include "text.h"

#define SYNC_POLL_MS 1000	/* a round at least this often */
#define SYNC_POLL_MAX_MS 8000	/* ... or this, while rounds fail */
#define SYNC_BATCH 1000		/* journal records per read */

struct sync_item {
	char tenant[TCA_TENANT_MAX + 1];
	char serial_hex[2 * TCA_SERIAL_MAX + 1];	/* "" : the CA itself */
};

struct sync_read {
	struct sync_item *items;
	size_t n, cap;
	size_t records;		/* read, before merging */
	int r;
};

static int
read_cb(void *ctx, int64_t seq, const char *op, const char *tenant, const char *serial_hex)
{
	struct sync_read *sr = ctx;
	struct sync_item *it, *grown;
	int revoke = strcmp(op, "revoke") == 0;
	size_t i;

	sr->records++;
	if (strlen(tenant) > TCA_TENANT_MAX || (revoke && strlen(serial_hex) > 2 * TCA_SERIAL_MAX)) {
		log_warn("sync: journal record %lld names a tenant or serial too long; "
		    "ignored", (long long)seq);
		return 0;
	}
	/* once per tenant (or revoked serial) and round */
	for (i = 0; i < sr->n; i++)
		if (strcmp(sr->items[i].tenant, tenant) == 0 &&
		    strcmp(sr->items[i].serial_hex, revoke ? serial_hex : "") == 0)
			return 0;
	if (sr->n == sr->cap) {
		sr->cap = sr->cap == 0 ? 16 : sr->cap * 2;
		if ((grown = reallocarray(sr->items, sr->cap, sizeof(*grown))) == NULL) {
			sr->r = TCA_ERR_NOMEM;
			return 1;
		}
		sr->items = grown;
	}
	it = &sr->items[sr->n++];
	snprintf(it->tenant, sizeof(it->tenant), "%s", tenant);
	snprintf(it->serial_hex, sizeof(it->serial_hex), "%s", revoke ? serial_hex : "");
	return 0;
}

/* One round (sync_lock held).  e->synced_seq moves only past what applied. */
static int
sync_round(tca_engine *e)
{
	struct sync_read sr;
	int64_t upto = 0;
	size_t i;
	int r;

	memset(&sr, 0, sizeof(sr));
	for (;;) {
		sr.n = sr.records = 0;
		sr.r = TCA_OK;
		r = e->st->ops->changes_since(e->st, e->synced_seq, SYNC_BATCH, &upto,
		    read_cb, &sr);
		if (r == 1 && sr.r != TCA_OK)
			r = sr.r;
		if (r != TCA_OK)
			break;
		for (i = 0; i < sr.n && r == TCA_OK; i++)
			r = sr.items[i].serial_hex[0] != '\0' ?
			    tca_revset_note(e, sr.items[i].tenant, sr.items[i].serial_hex) :
			    tca_engine_ca_refresh(e, sr.items[i].tenant);
		if (r != TCA_OK)
			break;
		if (upto > e->synced_seq)
			e->synced_seq = upto;
		if (sr.records < SYNC_BATCH)
			break;	/* upto is the head */
	}
	free(sr.items);
	return r;
}

int
tca_engine_sync(tca_engine *e)
{
	uint64_t asked, id;
	int r = TCA_OK;

	if (e->st->ops->changes_since == NULL)
		return TCA_OK;
	asked = __atomic_load_n(&e->sync_started, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&e->sync_lock);
	/* a round that started after this call did has completed meanwhile */
	if (__atomic_load_n(&e->sync_done, __ATOMIC_ACQUIRE) > asked)
		goto out;
	id = __atomic_add_fetch(&e->sync_started, 1, __ATOMIC_ACQ_REL);
	r = sync_round(e);
	if (r == TCA_OK)
		__atomic_store_n(&e->sync_done, id, __ATOMIC_RELEASE);
	if (r != TCA_OK && !e->sync_failing)
		log_warn("sync: reading what other engines changed failed (%s); "
		    "retrying (the store still refuses commits made from a stale "
		    "cache)", tca_strerror(r));
	else if (r == TCA_OK && e->sync_failing)
		log_notice("sync: reading what other engines changed works again "
		    "(journal read up to record %lld)", (long long)e->synced_seq);
	e->sync_failing = r != TCA_OK;
 out:
	pthread_mutex_unlock(&e->sync_lock);
	return r;
}

static int
head_cb(void *ctx, int64_t seq, const char *op, const char *tenant, const char *serial_hex)
{
	(void)ctx;
	(void)seq;
	(void)op;
	(void)tenant;
	(void)serial_hex;
	return 0;
}

int
tca_engine_sync_init(tca_engine *e, char *err, size_t errlen)
{
	int64_t head = 0;
	int r;

	e->shared = e->st->ops->wait_change != NULL;
	if (e->st->ops->changes_since == NULL)
		return TCA_OK;
	/* beyond any record: nothing read, the head returned */
	if ((r = e->st->ops->changes_since(e->st, INT64_MAX, 1, &head, head_cb, NULL)) !=
	    TCA_OK) {
		tca_setf(err, errlen, "reading the journal head: %s", tca_strerror(r));
		return r;
	}
	e->synced_seq = head;
	return TCA_OK;
}

static void *
sync_main(void *arg)
{
	tca_engine *e = arg;
	char why[512], last[512] = "";
	char c;
	int r, wait_ms = SYNC_POLL_MS;

	for (;;) {
		why[0] = '\0';
		r = e->st->ops->wait_change(e->st, e->sync_pipe[0], wait_ms, why,
		    sizeof(why));
		if (read(e->sync_pipe[0], &c, 1) == 1)
			break;	/* stop */
		if (r != TCA_OK && strcmp(why, last) != 0)
			log_warn("sync: not notified of other engines' changes (%s); "
			    "reading the journal every %d ms", why, SYNC_POLL_MS);
		else if (r == TCA_OK && last[0] != '\0')
			log_notice("sync: notified of other engines' changes again");
		snprintf(last, sizeof(last), "%s", r != TCA_OK ? why : "");
		/* while the store cannot be read, fewer tries (and log lines):
		 * the store still refuses commits made from a stale cache */
		if (tca_engine_sync(e) == TCA_OK)
			wait_ms = SYNC_POLL_MS;
		else if ((wait_ms *= 2) > SYNC_POLL_MAX_MS)
			wait_ms = SYNC_POLL_MAX_MS;
	}
	return NULL;
}

int
tca_engine_follow(tca_engine *e, char *err, size_t errlen)
{
	if (!e->shared)
		return TCA_OK;
	if (pipe2(e->sync_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		tca_setf(err, errlen, "pipe: %s", strerror(errno));
		e->sync_pipe[0] = e->sync_pipe[1] = -1;
		return TCA_ERR_SYSTEM;
	}
	if (pthread_create(&e->sync_thread, NULL, sync_main, e) != 0) {
		tca_setf(err, errlen, "cannot start the sync thread");
		return TCA_ERR_SYSTEM;
	}
	e->sync_thread_running = 1;
	log_info("sync: following the other engines sharing the store (notified, "
	    "and at least every %d ms)", SYNC_POLL_MS);
	return TCA_OK;
}

void
tca_engine_sync_stop(tca_engine *e)
{
	if (e->sync_thread_running) {
		if (write(e->sync_pipe[1], "x", 1) != 1)
			log_error("sync: cannot signal the sync thread to stop: %s",
			    strerror(errno));
		pthread_join(e->sync_thread, NULL);
		e->sync_thread_running = 0;
	}
	if (e->sync_pipe[0] >= 0)
		close(e->sync_pipe[0]);
	if (e->sync_pipe[1] >= 0)
		close(e->sync_pipe[1]);
	e->sync_pipe[0] = e->sync_pipe[1] = -1;
}
