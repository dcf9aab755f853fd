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

#endif
