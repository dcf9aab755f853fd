/*
 * engine-int.h - the engine's internals shared by its files: engine.c (CA
 * lifecycle, issuance, re-issuance) and revocation.c (revocation, CRLs,
 * OCSP, certificate inventory).  Not for other modules: they use engine.h.
 */
#ifndef TCA_ENGINE_INT_H
#define TCA_ENGINE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "engine.h"
#include "issuer.h"
#include "tenant.h"
#include "tenant-policy.h"

#define N_BUCKETS 16384		/* 10k+ tenants at load < 1; no resizing needed */

/* Immutable once published; freed when the last reference goes. */
struct ca_entry {
	unsigned int refs;
	int64_t ca_id;			/* the store's id of this CA */
	char tenant[TCA_TENANT_MAX + 1];
	unsigned char key_id[TCA_KEY_ID_LEN];
	enum tca_key_type key_type;
	int key_present;
	struct tca_issuer *cur;		/* current certificate */
	struct tca_issuer *prev;	/* previous, or NULL */
	int64_t created_at;
	struct tca_renewal_state renewal;
	/* the current CRL (crl_number 0: none yet) and its re-signing state */
	uint64_t crl_number;
	int64_t crl_this_update, crl_next_update;
	struct tca_renewal_state crl;
	/* the tenant's own policy; NULL: the global one (most tenants) */
	struct tca_tenant_policy *policy;
	/* ... as the store holds it (NULL: ""): what a commit made from this
	 * entry expects (store.h expect_policy) */
	char *policy_text;
};

struct node {
	struct ca_entry *ent;
	struct node *next;
};

struct pending {
	char tenant[TCA_TENANT_MAX + 1];
	struct pending *next;
};

/*
 * How long a CA creation's reservation in the store (store.h, CA_RESERVE)
 * keeps other engines from creating the tenant: far beyond a key
 * generation and a commit, so that only an engine that died mid-create
 * lets it lapse, and another engine then takes it over.
 */
#define TCA_CA_RESERVE_LEASE_MS (10 * 60 * 1000)

struct tca_engine {
	tca_token *tok;
	/* this engine among those sharing the store: "host:pid:random" (the
	 * holder of its CA reservations) */
	char node_id[TCA_HOLDER_MAX + 1];
	tca_store *st;
	tca_committer *cm;
	pthread_rwlock_t lock;	/* buckets, pending, policy, clock */
	struct node *buckets[N_BUCKETS];
	size_t n_active, n_missing, n_orphans;
	struct pending *pending;
	struct tca_policy policy;
	tca_clock_fn clock;
	void *clock_ctx;
	unsigned long long issued, refused;	/* __atomic */
	time_t started;
	/* revocation.c */
	pthread_rwlock_t rev_lock;	/* revset */
	struct revset *revset;
	pthread_mutex_t crl_lock;	/* one CRL signed at a time */
	pthread_mutex_t counts_lock;	/* counts, counts_at */
	struct tca_cert_counts counts;
	time_t counts_at;
	/* engine-sync.c: what other engines sharing the store changed */
	uint64_t cache_gen;		/* __atomic; + 1 at every cache change */
	pthread_mutex_t sync_lock;	/* one sync at a time; the fields below */
	int64_t synced_seq;		/* journal read up to here */
	uint64_t sync_started, sync_done;	/* rounds (__atomic reads) */
	int sync_failing;		/* the last round failed (logged once) */
	int shared;			/* the store is shared (wait_change) */
	pthread_t sync_thread;
	int sync_thread_running;
	int sync_pipe[2];		/* written to stop the thread */
};


/* ---- cache (engine.c) */

/* A referenced entry (caller entry_unref()s) or NULL. */
struct ca_entry *tca_engine_cache_get(tca_engine *e, const char *tenant);
/* The tenant's CA, referenced, or NULL with *r_ptr = NOT_FOUND and why. */
struct ca_entry *tca_engine_ca_lookup(tca_engine *e, const char *tenant, int *r_ptr,
    char *why, size_t whylen);
void tca_engine_entry_unref(struct ca_entry *ent);
/* A copy of ent (refs 1) with copies of its certificates, to replace it. */
struct ca_entry *tca_engine_entry_clone(const struct ca_entry *ent);
/* Replaces tenant's entry by a clone changed by fn (under the write lock);
 * nothing if the tenant has no entry.  TCA_OK or TCA_ERR_NOMEM. */
int tca_engine_entry_update(tca_engine *e, const char *tenant,
    void (*fn)(struct ca_entry *nent, void *ctx), void *ctx);
/* TCA_OK if ent's key is usable, else TOKEN_UNAVAILABLE with why. */
int tca_engine_key_usable(tca_engine *e, const struct ca_entry *ent, char *why,
    size_t whylen);

/*
 * Brings tenant's cache entry in line with the store: loaded or replaced if
 * the store's active CA differs from it (another engine created, re-issued
 * or changed it), dropped if the store has none (deleted).  TCA_OK, a read
 * error, or TCA_ERR_BUSY if the cache kept changing under it (try later).
 */
int tca_engine_ca_refresh(tca_engine *e, const char *tenant);

/* ---- engines sharing a store (engine-sync.c) */

/* Reads the journal head, before the cache is loaded (tca_engine_new).
 * TCA_OK or the store's error with err. */
int tca_engine_sync_init(tca_engine *e, char *err, size_t errlen);
/* Stops the listener thread (tca_engine_free, before anything else). */
void tca_engine_sync_stop(tca_engine *e);
/*
 * Applies what the journal records since the last round that engines cache
 * (store.h changes_since): CAs created, deleted, re-issued, policies, CRLs
 * refreshed, revocations added to the set.  A round that started after
 * this call did is enough: concurrent callers share it.  TCA_OK or the
 * store's error (the next round reads the same records again).
 */
int tca_engine_sync(tca_engine *e);

/* ---- helpers (engine.c) */

int64_t tca_engine_now_ms(tca_engine *e);
void tca_engine_policy_snapshot(tca_engine *e, struct tca_policy *p);
void tca_engine_signer_for(tca_engine *e, const struct ca_entry *ent,
    struct tca_token_signer *sctx, struct tca_signer *signer);
void tca_engine_sign_failure_why(int r, char *why, size_t whylen);
void tca_engine_change_init(tca_engine *e, struct tca_change *chg,
    enum tca_change_kind kind, const char *op, const char *tenant,
    const struct tca_requester *who);

/* ---- registration (engine-device.c) */

/* 1 if the tenant's first certificates need a registered password. */
int tca_engine_registration_required(tca_engine *e, const struct ca_entry *ent);
/* Checks otp against device_id's registration; on TCA_OK the stored hash
 * is in secret (for the commit to use it up).  CREDENTIAL_REFUSED with why
 * (a wrong password is counted, the device locked at the limit). */
int tca_engine_device_check(tca_engine *e, const char *tenant, const char *device_id,
    const char *otp, char *secret, size_t secretlen, char *why, size_t whylen);
/* After a TCA_OK check whose certificate was not recorded: takes the counted
 * attempt back (the commit that uses the password does that itself). */
int tca_engine_device_release(tca_engine *e, const char *tenant, const char *device_id);

/* ---- revocation (revocation.c) */

/* The in-memory set of revoked certificates of active CAs (expired ones
 * too), loaded at start. */
int tca_revset_load(tca_engine *e);
void tca_revset_free(tca_engine *e);
/* TCA_OK, or TCA_ERR_REVOKED with why when the certificate current (DER or
 * PEM) is revoked (re-enrollment). */
int tca_engine_check_not_revoked(tca_engine *e, const char *tenant,
    const unsigned char *current, size_t current_len, char *why, size_t whylen);
/* 1 and the revocation if (tenant, serial) is revoked. */
int tca_revset_find(tca_engine *e, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t *revoked_at_ptr, int *reason_ptr);
/* The serial (magnitude) of a certificate in DER or PEM; BAD_REQUEST. */
int tca_cert_serial_of(const unsigned char *cert, size_t len,
    unsigned char out[TCA_SERIAL_MAX], size_t *len_ptr);
/* A revocation another engine recorded: looked up in the store (tenant's
 * active CA, serial in hex) and added to the set.  TCA_OK (also when the
 * store no longer has it revoked under an active CA: nothing to add). */
int tca_revset_note(tca_engine *e, const char *tenant, const char *serial_hex);

#endif
