/*
 * engine.h - the signing engine: tenant CA lifecycle and device issuance.
 *
 * Ties the token (keys), certs (assembly and policy), the store (state and
 * journal, through the group committer) together.  Transport-agnostic: the RPC
 * layer (rpc-ops.c) and tests call these functions.
 *
 * Tenant CAs are cached in memory (loaded from the store once at start): a
 * request never reads the store or searches the token.  Cache entries are
 * immutable and reference-counted, so issuance holds no lock while it signs
 * and commits.
 *
 * Every function is thread-safe.  Refusals come back as TCA_ERR_* with a
 * one-line reason for the peer in why/whylen.
 */
#ifndef TCA_ENGINE_H
#define TCA_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "certs.h"
#include "committer.h"
#include "keytype.h"
#include "store.h"
#include "token.h"

typedef struct tca_engine tca_engine;

/* What SIGHUP may change for new CAs and certificates. */
struct tca_policy {
	char ca_organization[65];
	char ca_country[3];
	unsigned int ca_validity_days;
	enum tca_key_type ca_default_key_type;
	unsigned int device_validity_days;
	/* CRLs and OCSP (issue 12) */
	unsigned int crl_validity_hours;	/* nextUpdate - thisUpdate (168) */
	unsigned int crl_refresh_percent;	/* re-signed when this % of it passed (50) */
	unsigned int ocsp_validity_s;		/* OCSP nextUpdate - thisUpdate (3600) */
	/* device registration (issue 14) */
	int registration_required;		/* device.registration = required (default) */
	unsigned int otp_max_failures;		/* wrong passwords before the lock (5) */
	unsigned int otp_expiry_days;		/* default validity of a registration (30; 0 = none) */
	/* issue 11 */
	unsigned int device_min_validity_days;	/* device.min_validity_days: refuse issuance
						 * when the CA has less left (0 = off) */
	unsigned int ca_expiry_window_days;	/* alert.expiry_window_days: a CA this close
						 * to its notAfter is "expiring" (0: 30) */
};

/* A CA as shown to operators; owns cert_der (tca_ca_desc_clear frees). */
struct tca_ca_desc {
	char tenant[TCA_TENANT_MAX + 1];
	char status[16];	/* "active", "expiring", "expired", "deleted", "key-missing",
				 * "renewal-failed", "previous" (tca_engine_ca_show) */
	char key_type[16];
	char subject[TCA_SUBJECT_MAX], issuer[TCA_SUBJECT_MAX];
	char serial_hex[2 * TCA_SERIAL_MAX + 1];
	char fingerprint_hex[65];
	char key_id_hex[2 * TCA_KEY_ID_MAX + 1];
	int64_t not_before, not_after, created_at, deleted_at;
	unsigned char *cert_der;
	size_t cert_der_len;
	int has_previous;	/* a previous (pre-re-issuance) certificate exists */
	struct tca_renewal_state renewal;
	uint64_t crl_number;	/* the current CRL (0: none yet) */
	int64_t crl_next_update;
	struct tca_renewal_state crl;	/* CRL re-signing state */
	int suspended;		/* the tenant's policy suspends issuance */
};
void tca_ca_desc_clear(struct tca_ca_desc *d);

/* An issued certificate; owns der (tca_issued_clear frees). */
struct tca_issued {
	unsigned char *der;
	size_t der_len;
	char serial_hex[2 * TCA_SERIAL_MAX + 1];
	char fingerprint_hex[65];
	int64_t not_before, not_after;
};
void tca_issued_clear(struct tca_issued *is);

struct tca_engine_status {
	size_t active_cas, missing_keys, orphan_keys;
	size_t expired, expiring;	/* active CAs by tca_ca_expiry_of */
	unsigned long long issued, refused;
	time_t started;
	/* engines sharing the store (engine-sync.c) */
	const char *sync;	/* "off" (a store of one engine), "following",
				 * "not-following" (testing hook), "failing" */
	int64_t synced_seq;	/* the journal read up to this record */
};

/*
 * The signer the engine uses: the token signs, as alg, with the private key
 * whose CKA_ID is key_id (TCA_KEY_ID_LEN bytes).  This is the only path by
 * which anything is signed with a CA key.  ctx, tok and key_id must outlive
 * signer.  (Public for the benchmarks' in-process floor.)
 */
struct tca_token_signer {
	tca_token *tok;
	const unsigned char *key_id;
	enum tca_sig_alg alg;
};
void tca_token_signer_init(struct tca_token_signer *ctx, tca_token *tok,
    const unsigned char *key_id, enum tca_sig_alg alg, struct tca_signer *signer);

/* Clock, injectable for tests.  Default: time(NULL). */
typedef time_t (*tca_clock_fn)(void *ctx);

/*
 * Loads every active CA from st, checks its key is in tok's index (CAs whose
 * key is missing are kept with status "key-missing" and refuse issuance with
 * TOKEN_UNAVAILABLE), logs token keys named "tca-ca:*" that no active CA owns
 * (orphans; never destroyed automatically - the store may be a restored
 * backup).  tok, st, cm are borrowed and must outlive the engine.
 */
int tca_engine_new(tca_token *tok, tca_store *st, tca_committer *cm,
    const struct tca_policy *policy, tca_engine **e_ptr, char *err, size_t errlen);
void tca_engine_free(tca_engine *e);

void tca_engine_set_policy(tca_engine *e, const struct tca_policy *policy);
void tca_engine_get_policy(tca_engine *e, struct tca_policy *policy);
void tca_engine_set_clock(tca_engine *e, tca_clock_fn fn, void *ctx);

/*
 * Creates tenant's CA: key pair generated in the token (key_type NULL = policy
 * default), self-signed certificate, committed with its journal record.
 * ALREADY_EXISTS (naming the existing CA's SHA-256 fingerprint) if the tenant
 * has an active CA or one is being created, or if the token already holds a
 * key under this tenant's CKA_ID that no CA owns (an orphan: remove it with
 * ca delete --confirm first).  On any failure after key generation the key is
 * destroyed again.  out may be NULL.
 */
int tca_engine_ca_create(tca_engine *e, const char *tenant, const char *key_type,
    const struct tca_requester *who, struct tca_ca_desc *out, char *why, size_t whylen);

/* previous: describe the previous certificate instead of the current one
 * (NOT_FOUND if there is none). */
int tca_engine_ca_show(tca_engine *e, const char *tenant, int previous,
    struct tca_ca_desc *out, char *why, size_t whylen);

/* Active CAs (and deleted ones from the store if include_deleted), by tenant. */
typedef int (*tca_ca_desc_cb)(void *ctx, const struct tca_ca_desc *d);
int tca_engine_ca_list(tca_engine *e, int include_deleted, tca_ca_desc_cb cb, void *ctx);

/*
 * Deletes tenant's CA: marks it deleted in the store with a journal record
 * (history stays), removes it from service, then destroys its key objects in
 * the token.  With no active CA but an orphan key under the tenant's CKA_ID,
 * destroys the orphan.  NOT_FOUND if neither exists.  *destroyed_ptr: token
 * objects destroyed.
 */
int tca_engine_ca_delete(tca_engine *e, const char *tenant,
    const struct tca_requester *who, unsigned long *destroyed_ptr,
    char *why, size_t whylen);

/*
 * Issues a device certificate (current == NULL) or re-enrolls one (current =
 * the device's certificate, DER or PEM).  days 0 = policy default.  When the
 * tenant requires registration (engine-device.c), a first certificate needs
 * otp, the device's registered one-time password, which the certificate's
 * commit uses up (CREDENTIAL_REFUSED otherwise); re-enrollment ignores otp.
 * A CA with less than policy device_min_validity_days left before its
 * notAfter refuses with POLICY_VIOLATION (checked before the password).  The
 * certificate and its journal record are durable before this returns TCA_OK;
 * if they cannot be committed the result is JOURNAL_UNAVAILABLE and no
 * certificate is returned.
 */
int tca_engine_issue(tca_engine *e, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days,
    const char *otp, const struct tca_requester *who, struct tca_issued *out,
    char *why, size_t whylen);

/* The tenant's CA certificates in DER, current first: calls cb for each. */
typedef int (*tca_der_cb)(void *ctx, const unsigned char *der, size_t len);
int tca_engine_cacerts(tca_engine *e, const char *tenant, tca_der_cb cb, void *ctx,
    char *why, size_t whylen);

void tca_engine_status(tca_engine *e, struct tca_engine_status *st);

/* Counts one refused request in status.refused: the RPC layer's refusals
 * before an op's handler runs (undecodable frame, protocol version, unknown
 * op, role, argument schema) and issue/reenroll arguments its handler
 * refuses; tca_engine_issue counts its own refusals. */
void tca_engine_count_refused(tca_engine *e);

/* ---- CA certificate expiry (issue 11) */

enum tca_ca_expiry {
	TCA_CA_VALID = 0,
	TCA_CA_EXPIRING,	/* notAfter within the window */
	TCA_CA_EXPIRED,		/* notAfter <= now: signs nothing any more */
};
#define TCA_CA_EXPIRY_WINDOW_DEFAULT 30	/* days, when alert.expiry_window_days is 0 */

/* Pure: a CA certificate's expiry state at now; window_days 0 means
 * TCA_CA_EXPIRY_WINDOW_DEFAULT. */
enum tca_ca_expiry tca_ca_expiry_of(int64_t not_after, time_t now, unsigned int window_days);

/* Logs one warning per active CA whose current certificate has expired or
 * is expiring (engine.log), for nodes that run no scheduler (schedule.enabled
 * = false: no re-issuance and no expiry alerts).  Returns how many. */
size_t tca_engine_warn_expiry(tca_engine *e);

/* ---- yearly re-issuance (renewal.c drives these) */

/* Result of one re-issuance (or dry run): what changed. */
struct tca_reissue_result {
	char tenant[TCA_TENANT_MAX + 1];
	char old_fingerprint[65], new_fingerprint[65];	/* new: "" on dry run */
	char old_serial[2 * TCA_SERIAL_MAX + 1], new_serial[2 * TCA_SERIAL_MAX + 1];
	int64_t old_not_before, old_not_after, not_before, not_after;
	struct tca_tbs_diff diff[8];	/* the TBS fields that differ */
	size_t n_diff;
};

/*
 * Re-issues tenant's CA certificate with the same key (certs.c
 * tca_cert_reissue_ca): notBefore = not_before, notAfter = + policy
 * ca_validity_days, serial per mode.  The new certificate, the old one moving
 * to "previous" and the journal record are committed in one transaction,
 * guarded by the old certificate's fingerprint, so a concurrent or repeated
 * re-issuance fails with ALREADY_EXISTS instead of issuing twice.  Only the
 * one C_Sign touches the token.  dry_run: computes what would change without
 * signing or committing (new serial shown as "(new random serial)").
 */
int tca_engine_ca_reissue(tca_engine *e, const char *tenant, time_t not_before,
    enum tca_serial_mode mode, int dry_run, const struct tca_requester *who,
    struct tca_reissue_result *out, char *why, size_t whylen);

/* Replaces the tenant's renewal bookkeeping (store, then cache). */
int tca_engine_set_renewal(tca_engine *e, const char *tenant,
    const struct tca_renewal_state *state);

/* A snapshot of one active CA for the scheduler. */
struct tca_ca_brief {
	char tenant[TCA_TENANT_MAX + 1];
	int64_t not_before, not_after;
	int key_present;
	struct tca_renewal_state renewal;
	/* the current CRL (crl_number 0: none yet) and its re-signing state */
	uint64_t crl_number;
	int64_t crl_this_update, crl_next_update;
	struct tca_renewal_state crl;
};
typedef int (*tca_ca_brief_cb)(void *ctx, const struct tca_ca_brief *b);
/* Calls cb for every active CA (from a snapshot: cb may call back into e). */
int tca_engine_foreach_brief(tca_engine *e, tca_ca_brief_cb cb, void *ctx);

/*
 * Re-reads tenant's active CA from the store into the cache (its current and
 * previous certificate, renewal and CRL state, policy): for the scheduler
 * when the store refused work computed from the cache because another node
 * changed the CA since this one loaded it (issue 13: a leader elected after
 * another one worked).  *not_before_ptr (may be NULL): the current
 * certificate's notBefore.  TCA_OK; TCA_ERR_NOT_FOUND (no active CA in the
 * store: the cache is left alone); a read error.
 */
int tca_engine_ca_reload(tca_engine *e, const char *tenant, int64_t *not_before_ptr);

/*
 * Starts following the other engines sharing the store (engine-sync.c): a
 * thread applies what they change to this engine's caches as soon as the
 * store notifies it, and at least every second.  Nothing to do for a store
 * only one engine opens (SQLite).  Without it the store still refuses
 * commits made from a stale cache, and a cache miss still reads the store.
 * Call once, after tca_engine_new.  TCA_OK or TCA_ERR_SYSTEM with err.
 */
int tca_engine_follow(tca_engine *e, char *err, size_t errlen);

/* This engine's name among the engines sharing its store ("host:pid:random";
 * the holder of its CA reservations).  Owned by e. */
const char *tca_engine_node_id(const tca_engine *e);

/* The engine's clock (the injected one if set). */
time_t tca_engine_now(tca_engine *e);

/* ---- each tenant's own policy (engine-policy.c, tenant-policy.h) */

struct tca_tenant_policy;

/* The tenant's policy (the defaults if it has none of its own). */
int tca_engine_policy_get(tca_engine *e, const char *tenant, struct tca_tenant_policy *out,
    char *why, size_t whylen);

/*
 * Applies assignments[0..n) ("key=value"; "key=" resets) to the tenant's
 * policy, all or none: the new policy is journaled (op "policy-set", the
 * canonical text as details), stored with the CA and in effect for the next
 * request.  BAD_REQUEST naming the key for an invalid one.  out may be NULL.
 */
int tca_engine_policy_set(tca_engine *e, const char *tenant, const char *const *assignments,
    size_t n, const struct tca_requester *who, struct tca_tenant_policy *out,
    char *why, size_t whylen);

/* RFC 7030 CsrAttrs DER of the tenant's policy.  *der_ptr: free(). */
int tca_engine_csrattrs(tca_engine *e, const char *tenant, unsigned char **der_ptr,
    size_t *len_ptr, char *why, size_t whylen);

/* ---- device registration (engine-device.c) */

struct tca_device_new {
	const char *device_id;
	const char *otp;	/* NULL: generate one */
};

/*
 * Registers (or re-registers: a new password, failures and lock cleared)
 * devs[0..n) for the tenant, all validated before any is stored; each is
 * journaled ("device-register").  Passwords are stored as scrypt hashes only.
 * generated[i] receives the password made for an entry without one ("" for
 * the others); the caller wipes it after handing it out.  expires_at: unix
 * s, 0 = never.
 */
int tca_engine_device_register(tca_engine *e, const char *tenant,
    const struct tca_device_new *devs, size_t n, int64_t expires_at,
    const struct tca_requester *who, char (*generated)[24 + 1],
    char *why, size_t whylen);
int tca_engine_device_unregister(tca_engine *e, const char *tenant, const char *device_id,
    const struct tca_requester *who, char *why, size_t whylen);
/* The registration (row->secret wiped). */
int tca_engine_device_show(tca_engine *e, const char *tenant, const char *device_id,
    struct tca_device_row *row, char *why, size_t whylen);
int tca_engine_device_list(tca_engine *e, const char *tenant, const char *after, size_t limit,
    int (*cb)(void *ctx, const struct tca_device_row *row), void *ctx,
    char *why, size_t whylen);
/* "pending", "used", "locked", "expired" */
const char *tca_device_state(const struct tca_device_row *row, int64_t now);

/* ---- revocation, CRLs, OCSP and the certificate inventory (revocation.c) */

/* One revocation in force. */
struct tca_revoked {
	char serial_hex[2 * TCA_SERIAL_MAX + 1];
	char subject[TCA_SUBJECT_MAX];
	int64_t revoked_at, not_after;
	int reason;		/* RFC 5280 CRLReason (crl.h) */
	int already;		/* revoked before this call: nothing changed */
};

/* A CRL as published. */
struct tca_crl_published {
	uint64_t number;
	int64_t this_update, next_update;
	uint64_t entries;
	int superseded;		/* tca_engine_crl_refresh: not signed, the CRL
				 * above was published since seen_number */
};

/*
 * Revokes the tenant's device certificate with serial_hex (hex, colons
 * allowed) for reason (crl.h; certificateHold is refused before this).  The
 * revocation and its journal record are durable before TCA_OK; then the CRL
 * is re-signed at once (*crl: the new CRL; crl->number 0 and crl_why set if
 * that failed: the revocation stands, the scheduler retries the CRL and
 * `status` shows the tenant).  Revoking twice is TCA_OK with out->already
 * set and the first revocation's time and reason.  NOT_FOUND if the serial
 * is not a device certificate of the tenant's CA.
 */
int tca_engine_revoke(tca_engine *e, const char *tenant, const char *serial_hex,
    int reason, const struct tca_requester *who, struct tca_revoked *out,
    struct tca_crl_published *crl, char *crl_why, size_t crl_whylen, char *why, size_t whylen);

/* Revokes every unexpired certificate of device_id (cb per certificate,
 * already-revoked ones with already set), then re-signs the CRL once.
 * NOT_FOUND if the device has no unexpired certificate. */
int tca_engine_revoke_device(tca_engine *e, const char *tenant, const char *device_id,
    int reason, const struct tca_requester *who,
    int (*cb)(void *ctx, const struct tca_revoked *rv), void *ctx,
    struct tca_crl_published *crl, char *crl_why, size_t crl_whylen, char *why, size_t whylen);

/* Signs and publishes a new CRL for the tenant now (the scheduler's and
 * revocation's path); who is journaled (NULL: the engine itself).
 * TOKEN_UNAVAILABLE, JOURNAL_UNAVAILABLE, NOT_FOUND. */
int tca_engine_crl_sign(tca_engine *e, const char *tenant, const struct tca_requester *who,
    struct tca_crl_published *out, char *why, size_t whylen);

/*
 * The scheduler's re-signing: as tca_engine_crl_sign, but only if the
 * tenant's current CRL is still the one numbered seen_number (0: none)
 * when its turn comes (checked in the store under the CRL lock).  If
 * another signer published one meanwhile - the CA's first CRL, signed by
 * ca.create while the pass was collecting, a revocation, `ca-admin crl
 * sign` - nothing is signed: TCA_OK with out->superseded set and out
 * describing that CRL.
 */
int tca_engine_crl_refresh(tca_engine *e, const char *tenant,
    const struct tca_requester *who, uint64_t seen_number,
    struct tca_crl_published *out, char *why, size_t whylen);

/* The tenant's current CRL from the store (no signing).  *row: caller
 * tca_crl_row_clear()s.  NOT_FOUND if the tenant has no CA or no CRL yet. */
int tca_engine_crl_get(tca_engine *e, const char *tenant, struct tca_crl_row *row,
    char *why, size_t whylen);

/* When the tenant's CRL is next due for re-signing (pure: from the brief,
 * the policy and now).  A CA without a CRL is due at once; a failing one at
 * its next retry. */
time_t tca_crl_due_at(const struct tca_ca_brief *b, const struct tca_policy *p);

/* Replaces the tenant's CRL re-signing bookkeeping (store, then cache). */
int tca_engine_set_crl_state(tca_engine *e, const char *tenant,
    const struct tca_renewal_state *state);

/*
 * Answers a DER OCSPRequest for the tenant's CA (ocsp.h): the response is
 * signed by the CA key in the token.  *resp_ptr: caller free()s.  *status
 * (may be NULL): "good", "revoked", "unknown", "malformed" of the first
 * certificate asked about.
 */
int tca_engine_ocsp(tca_engine *e, const char *tenant, const unsigned char *req,
    size_t req_len, unsigned char **resp_ptr, size_t *resp_len_ptr, const char **status,
    char *why, size_t whylen);

/* Device certificates of the tenant (store.h struct tca_cert_query; q->now
 * is set here). */
int tca_engine_cert_list(tca_engine *e, struct tca_cert_query *q,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx,
    char *why, size_t whylen);

/* One device certificate by serial (hex).  *row: tca_cert_row_clear(). */
int tca_engine_cert_show(tca_engine *e, const char *tenant, const char *serial_hex,
    struct tca_cert_row *row, char *why, size_t whylen);

/* Device certificates by state across active CAs; recounted at most every
 * 30 s (the count scans the certificates table). */
int tca_engine_cert_counts(tca_engine *e, struct tca_cert_counts *out);

/* Magnitude bytes of a serial written in hex (colons allowed, leading zero
 * octets dropped).  TCA_ERR_BAD_REQUEST with why. */
int tca_serial_parse_hex(const char *hex, unsigned char out[TCA_SERIAL_MAX],
    size_t *len_ptr, char *why, size_t whylen);

#endif
