/*
 * store.h - the state store: CA rows, every certificate issued, and the
 * hash-chained audit journal.
 *
 * The token holds key pairs only; everything else lives here.  The engine only
 * talks to a store through struct tca_store_ops, and opens one with
 * tca_store_open(uri), which picks the backend from the URI:
 *  - "sqlite:PATH" (or a plain PATH): store-sqlite.c, one database file, WAL
 *    mode, synchronous=FULL (a commit is durable when commit() returns);
 *    its own knobs are in store-sqlite.h;
 *  - "postgresql://..." / "postgres://..." or a libpq key=value string:
 *    store-postgresql.c (store-postgresql.h), built only with libpq
 *    (HAVE_LIBPQ); a PostgreSQL store is shared by several engines by design.
 * Every backend validates changes and builds journal records with the shared
 * store-change.c, and passes the same conformance suite
 * (tests/unit/check_store.c).
 *
 * Invariants every backend enforces itself (not the engine):
 *  - at most one CA with status "active" per tenant;
 *  - (issuer, serial) unique over all certificates ever recorded, CA
 *    certificates included (issuer = SHA-256 of the issuer Name DER), with
 *    one exception: the CA certificates of one CA may share a serial
 *    (CA_REISSUE with reissue.serial = keep) as long as they differ; no
 *    device certificate may reuse a CA certificate's (issuer, serial);
 *  - the journal is append-only, sequence numbers start at 1 without gaps, and
 *    record n carries prev_hash = hash of record n-1 (32 zero bytes for n = 1);
 *    hashes are computed by tca_journal_hash() inside the commit transaction.
 *
 * Ownership: strings and buffers passed in are borrowed for the duration of the
 * call.  Rows returned to the caller own their buffers and are released with
 * tca_ca_row_clear().
 *
 * Thread-safety: a tca_store may be used from several threads; backends
 * serialise internally.  Durable writes go through commit() only; the engine
 * calls it from the committer thread (committer.h), which batches concurrent
 * requests into one transaction (group commit).
 */
#ifndef TCA_STORE_H
#define TCA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "text.h"

#define TCA_TENANT_MAX 64
#define TCA_SUBJECT_MAX 512
#define TCA_SERIAL_MAX 20
#define TCA_KEY_ID_MAX 32

typedef struct tca_store tca_store;

enum tca_ca_status {
	TCA_CA_ACTIVE = 1,
	TCA_CA_DELETED = 2,
};

/* "active" / "deleted" */
const char *tca_ca_status_name(int status);

/* Facts about one certificate, as recorded in the store and the journal.
 * Filled from a parsed certificate by tca_cert_get_info() (certs.h). */
struct tca_cert_info {
	const unsigned char *der;	/* borrowed */
	size_t der_len;
	unsigned char serial[TCA_SERIAL_MAX];	/* big-endian magnitude, as encoded */
	size_t serial_len;
	char subject[TCA_SUBJECT_MAX];	/* RFC 2253 one-line */
	char issuer[TCA_SUBJECT_MAX];
	unsigned char issuer_hash[32];	/* SHA-256 of the issuer Name DER */
	unsigned char sha256[32];	/* fingerprint: SHA-256 of der */
	int64_t not_before, not_after;	/* unix seconds */
};

/*
 * Re-issuance bookkeeping of one CA (issue 4).  All zero means "fine".  A
 * failure episode starts at the first failed re-issuance and ends with the
 * next successful one (CA_REISSUE clears this state).
 */
struct tca_renewal_state {
	int failed;		/* 1: the last attempt failed; status "renewal-failed" */
	char reason[256];	/* why the last attempt failed */
	uint32_t attempts;	/* consecutive failed attempts in this episode */
	int64_t failed_since;	/* unix s: first failure of this episode */
	int64_t next_retry;	/* unix s: earliest next attempt */
	int alerted;		/* the alert hook ran for this failure episode */
	int expiry_alerted;	/* the near-expiry alert ran for the current certificate */
};

/* A tenant CA as stored. */
struct tca_ca_row {
	int64_t ca_id;
	char tenant[TCA_TENANT_MAX + 1];
	int status;		/* enum tca_ca_status */
	char key_type[16];	/* tca_key_type_name() */
	unsigned char key_id[TCA_KEY_ID_MAX];	/* CKA_ID of the token key */
	size_t key_id_len;
	int64_t created_at, deleted_at;	/* unix seconds; deleted_at 0 if active */
	unsigned char *cert_der;	/* current CA certificate; owned */
	size_t cert_der_len;
	unsigned char *prev_der;	/* previous CA certificate or NULL; owned */
	size_t prev_der_len;
	struct tca_renewal_state renewal;	/* yearly re-issuance state */
	/* v3: the CRL's re-signing state (same bookkeeping as renewal: the
	 * scheduler retries and alerts alike) and the tenant policy text
	 * (tenant-policy.h canonical form; "" = the global defaults; owned) */
	struct tca_renewal_state crl;
	char *policy;
	/* v3: the current CRL (0 when the CA has none yet) */
	uint64_t crl_number;
	int64_t crl_this_update, crl_next_update;
};

void tca_ca_row_clear(struct tca_ca_row *row);

/* Who asked (SO_PEERCRED of the RPC peer; the engine's own uid/pid for
 * engine-initiated changes). */
struct tca_requester {
	uint32_t uid;
	uint32_t gid;
	int32_t pid;
};

enum tca_change_kind {
	TCA_CHANGE_CA_CREATE = 1,	/* new active CA row + its certificate */
	TCA_CHANGE_CA_DELETE = 2,	/* active CA row -> deleted */
	TCA_CHANGE_CERT_ISSUE = 3,	/* device certificate row */
	TCA_CHANGE_CA_REISSUE = 4,	/* new current CA certificate, same key (journaled) */
	TCA_CHANGE_RENEWAL_STATE = 5,	/* renewal bookkeeping only (not journaled) */
	TCA_CHANGE_CERT_REVOKE = 6,	/* a device certificate of the active CA revoked */
	TCA_CHANGE_CRL_PUBLISH = 7,	/* the active CA's current CRL replaced */
	TCA_CHANGE_CRL_STATE = 8,	/* CRL re-signing bookkeeping (not journaled) */
	TCA_CHANGE_POLICY_SET = 9,	/* the tenant policy text of the active CA */
	TCA_CHANGE_DEVICE_REGISTER = 10,	/* (re-)register a device's one-time password */
	TCA_CHANGE_DEVICE_UNREGISTER = 11,	/* remove a device's registration */
	TCA_CHANGE_DEVICE_ATTEMPT = 12,	/* a password about to be checked (not journaled) */
	TCA_CHANGE_DEVICE_FAILURE = 13,	/* it was wrong: lock at the limit (journaled if so) */
	TCA_CHANGE_DEVICE_RELEASE = 14,	/* it was right, but no certificate came of it */
	TCA_CHANGE_CA_RESERVE = 15,	/* a CA creation about to start (not journaled) */
	TCA_CHANGE_CA_RELEASE = 16,	/* ... given up (not journaled) */
};

/* The longest reservation holder name (an engine's node id). */
#define TCA_HOLDER_MAX 127

/*
 * One durable change and its journal record.  commit() applies all of a
 * batch's changes in one transaction; each change either applies wholly (row
 * plus journal record) or not at all.
 */
struct tca_change {
	enum tca_change_kind kind;
	const char *op;		/* journal op: "ca-create", "ca-delete", "issue", "reenroll", "ca-reissue" */
	const char *tenant;
	int64_t time_ms;	/* unix milliseconds, recorded in the journal */
	struct tca_requester who;
	/* CA_CREATE */
	const char *key_type;
	const unsigned char *key_id;
	size_t key_id_len;
	/* CA_CREATE, CERT_ISSUE, CA_REISSUE: the certificate (CA or device) */
	const struct tca_cert_info *cert;
	/* CA_REISSUE: SHA-256 of the certificate being replaced; the change is
	 * refused with TCA_ERR_ALREADY_EXISTS if the active CA's current
	 * certificate is no longer that one (re-issued meanwhile: idempotence
	 * across restarts and nodes).  On success the replaced certificate becomes
	 * the previous one and the renewal state is cleared. */
	const unsigned char *expect_current_sha256;
	/* RENEWAL_STATE: the complete new state of the tenant's active CA (NOT_FOUND
	 * if none); no journal record is written for this kind. */
	const struct tca_renewal_state *renewal;
	/* CERT_ISSUE: the device id (the CN), recorded for inventory and
	 * revocation by device (NULL = "") */
	const char *device_id;
	/*
	 * CERT_REVOKE: the device certificate of the tenant's active CA with
	 * this serial (magnitude) is revoked at revoked_at (unix s) for reason
	 * (RFC 5280 CRLReason, crl.h).  NOT_FOUND if the active CA issued no
	 * device certificate with this serial (a CA certificate's serial, or
	 * another tenant's, is not found either); ALREADY_EXISTS, without a
	 * journal record, if it is revoked already - revocation is
	 * irreversible, so revoking twice changes nothing.  Either way the
	 * out fields below describe the revocation in force.
	 */
	const unsigned char *serial;
	size_t serial_len;
	int reason;
	int64_t revoked_at;
	/*
	 * CRL_PUBLISH: the CRL DER signed for the active CA with crl_number,
	 * which must exceed every CRL number recorded for the tenant (all its
	 * CAs, deleted ones included, so numbers never repeat for one issuer
	 * name), else ALREADY_EXISTS.  Journaled as op "crl".
	 */
	const unsigned char *crl_der;
	size_t crl_len;
	uint64_t crl_number;
	int64_t this_update, next_update;
	uint64_t crl_entries;
	/* CRL_STATE: the complete new re-signing state (renewal is reused) */
	/* POLICY_SET: the canonical policy text ("" = defaults), journaled as
	 * op "policy-set" with the text as details */
	const char *policy;
	/*
	 * v4, devices (tenant + device_id name one registration; the tenant
	 * needs an active CA, else NOT_FOUND):
	 * DEVICE_REGISTER: secret (the one-time password's hash string,
	 * otp.h) and expires_at (unix s, 0 = never) replace any earlier
	 * registration, which also clears its failures, lock and use.
	 * Journaled as "device-register".
	 * DEVICE_UNREGISTER: NOT_FOUND if none.  Journaled as
	 * "device-unregister".
	 * Wrong passwords are limited even when guesses arrive in parallel:
	 * every check is counted BEFORE the slow hash runs.
	 * DEVICE_ATTEMPT: failures + 1 if the registration is unused,
	 * unlocked, unexpired at time_ms and below max_failures; else
	 * CREDENTIAL_REFUSED.  out: device_failures.  Not journaled.
	 * DEVICE_FAILURE (the attempt's password was wrong; it stays
	 * counted): locked once failures >= max_failures; out: device_locked.
	 * Journaled ("device-locked") only when it locks.
	 * DEVICE_RELEASE (the password was right but no certificate
	 * resulted): failures - 1.  Not journaled.
	 * A CERT_ISSUE that uses the registration takes its attempt back too.
	 * CERT_ISSUE with consume_secret: the device's registration must be
	 * unused, unlocked, unexpired at time_ms and hold exactly this secret
	 * (what the engine verified the password against); it is marked used
	 * by this certificate in the same transaction.  Otherwise
	 * CREDENTIAL_REFUSED and nothing is recorded: one password yields at
	 * most one certificate, also when two requests race.
	 */
	const char *secret;
	int64_t expires_at;
	unsigned int max_failures;
	const char *consume_secret;
	unsigned int device_failures;	/* out */
	int device_locked;		/* out */
	/*
	 * v5, CA creation by several engines sharing one store (issue 13):
	 * the tenant is reserved in the store BEFORE its key is generated,
	 * so two engines creating one tenant at once give one CA and one
	 * ALREADY_EXISTS, and no second key in the token.
	 * CA_RESERVE: tenant reserved for holder (the engine's node id,
	 * 1..TCA_HOLDER_MAX bytes) until lease_until_ms (unix ms, after
	 * time_ms).  ALREADY_EXISTS if the tenant has an active CA (then
	 * reserved.by is ""), or a reservation of another holder whose lease
	 * has not ended at time_ms (reserved.* describe it).  Another
	 * holder's ended lease is taken over (its engine died mid-create);
	 * the holder's own is renewed.
	 * CA_RELEASE: the holder's reservation of tenant removed (the create
	 * failed before its CA_CREATE); NOT_FOUND if it holds none.
	 * CA_CREATE: ALREADY_EXISTS also while another holder's lease runs
	 * (holder NULL: any holder's); when it applies, the tenant's
	 * reservation is removed in the same transaction.
	 * None of these three writes a journal record for the reservation;
	 * the ca-create record is the one that counts.
	 */
	const char *holder;
	int64_t lease_until_ms;
	struct {
		char by[TCA_HOLDER_MAX + 1];
		int64_t at_ms, until_ms;
	} reserved;		/* out, CA_RESERVE / CA_CREATE refused */
	int64_t ca_id;		/* out, CA_CREATE: the new CA's id */
	/*
	 * CERT_ISSUE and POLICY_SET: what the engine's cache held when it
	 * decided, checked in the commit, so that no engine commits from a
	 * cache another engine made stale (issue 13).  TCA_ERR_STALE, nothing
	 * recorded, when the tenant's active CA is not expect_ca_id (0: not
	 * checked; deleted, or deleted and created anew) or its policy text
	 * is not expect_policy (NULL: not checked; "" = the defaults).
	 * CERT_ISSUE with renews_serial (a re-enrollment: the serial of the
	 * certificate presented): TCA_ERR_REVOKED, nothing recorded, when the
	 * active CA's device certificate with that serial is revoked.
	 */
	int64_t expect_ca_id;
	const char *expect_policy;
	const unsigned char *renews_serial;
	size_t renews_serial_len;
	/* optional free text recorded in the journal record (NULL = "") */
	const char *details;
	/* out, set by commit() when the change applied */
	int64_t journal_seq;
	/* out: commit() answered JOURNAL_UNAVAILABLE without knowing whether the
	 * batch committed (PostgreSQL: the COMMIT's reply lost and the
	 * database gone for longer than the backend waits to find out); the
	 * backend logs the outcome once it can tell */
	int outcome_unknown;
	/* out, CERT_REVOKE (TCA_OK or ALREADY_EXISTS): the revoked certificate */
	struct {
		int64_t revoked_at;
		int reason;
		int64_t not_after;
		char subject[TCA_SUBJECT_MAX];
	} revoked;
};

/* One journal record as read back.  Strings are owned by the store and valid
 * only during the callback. */
struct tca_journal_record {
	int64_t seq;
	int64_t time_ms;
	const char *op, *tenant, *serial_hex, *subject, *fingerprint_hex, *details;
	uint32_t uid;
	int32_t pid;
	unsigned char prev_hash[32];
	unsigned char hash[32];
};
/* Iteration callbacks (foreach_ca, journal_foreach, cert_foreach) return 0 to
 * go on; any other value stops the walk and is returned by the foreach. */
typedef int (*tca_journal_cb)(void *ctx, const struct tca_journal_record *rec);
typedef int (*tca_ca_cb)(void *ctx, const struct tca_ca_row *row);

/* A device (or CA) certificate row as read back; strings valid during the
 * callback (or, from cert_get, until tca_cert_row_clear). */
struct tca_cert_row {
	const char *tenant;
	const char *kind;	/* "ca" or "device" */
	const char *serial_hex, *subject, *fingerprint_hex;
	int64_t not_before, not_after, issued_at;
	/* v3 (cert_list and cert_get; zero/"" elsewhere) */
	int64_t cert_id;	/* issue order; the paging cursor of cert_list */
	const char *device_id;
	int revoked;		/* 1: revoked_at and reason are set */
	int64_t revoked_at;
	int reason;
	const unsigned char *der;	/* cert_get only */
	size_t der_len;
	void *owned_;		/* cert_get: what tca_cert_row_clear frees */
};
void tca_cert_row_clear(struct tca_cert_row *row);

/* cert_list filter: device certificates of one tenant's active CA. */
enum tca_cert_state {
	TCA_CERT_ANY = 0,
	TCA_CERT_VALID = 1,	/* not revoked, not_after >= now */
	TCA_CERT_REVOKED = 2,
	TCA_CERT_EXPIRED = 3,	/* not revoked, not_after < now */
};
struct tca_cert_query {
	const char *tenant;
	const char *device_id;	/* NULL: every device */
	enum tca_cert_state state;
	int64_t now;
	int64_t after_cert_id;	/* 0: from the start */
	size_t limit;		/* rows at most */
};
struct tca_cert_counts {
	uint64_t valid, revoked, expired;
};

/* A device registration as stored (v4); strings owned by the row. */
#define TCA_DEVICE_SECRET_MAX 255
struct tca_device_row {
	char tenant[TCA_TENANT_MAX + 1];
	char device_id[256 + 1];	/* tenant.h TCA_DEVICE_ID_MAX bytes in practice */
	char secret[TCA_DEVICE_SECRET_MAX + 1];	/* the password's hash string */
	int64_t registered_at, expires_at, consumed_at;	/* unix s; 0: never / not yet */
	unsigned int failures;
	int locked;
	char consumed_serial_hex[2 * TCA_SERIAL_MAX + 1];	/* the certificate it yielded */
};

/* The active CA's current CRL as stored; der owned (free()). */
struct tca_crl_row {
	uint64_t next_number;	/* set even with NOT_FOUND: 1 + the highest CRL
				 * number of any CA the tenant had */
	uint64_t crl_number;
	int64_t this_update, next_update;
	uint64_t entries;
	unsigned char *der;
	size_t der_len;
};

/* One entry for the CRL: a revoked certificate not yet expired. */
typedef int (*tca_revoked_cb)(void *ctx, const unsigned char *serial, size_t serial_len,
    int64_t revoked_at, int reason, int64_t not_after);

/* Every certificate row as stored, for the journal cross-check
 * (tca_journal_crosscheck); valid during the callback only. */
struct tca_cert_audit_row {
	int64_t cert_id;
	const char *tenant, *kind, *subject;
	const unsigned char *serial;	/* as stored (1..20 bytes expected) */
	size_t serial_len;
	const unsigned char *fingerprint;	/* as stored (32 bytes expected) */
	size_t fingerprint_len;
	const unsigned char *der;
	size_t der_len;
	int revoked;		/* a revocation row exists for it */
};

struct tca_mig_row;	/* store-migrate.h */
typedef int (*tca_mig_row_cb)(void *ctx, const struct tca_mig_row *row);

struct tca_store_ops {
	const char *name;	/* "sqlite", "postgresql" */
	void (*close)(tca_store *st);
	/* The active CA of tenant.  TCA_OK, TCA_ERR_NOT_FOUND, TCA_ERR_JOURNAL_UNAVAILABLE. */
	int (*get_ca)(tca_store *st, const char *tenant, struct tca_ca_row *row);
	/* Every CA row (deleted ones too if include_deleted), ordered by tenant then
	 * ca_id.  The row is valid only during the callback. */
	int (*foreach_ca)(tca_store *st, int include_deleted, tca_ca_cb cb, void *ctx);
	/*
	 * Applies changes[0..n) in ONE durable transaction and writes results[i]:
	 *   TCA_OK; TCA_ERR_ALREADY_EXISTS (CA_CREATE while an active CA exists,
	 *   a certificate whose (issuer, serial) is already recorded, or
	 *   CA_REISSUE whose expect_current_sha256 is no longer current);
	 *   TCA_ERR_NOT_FOUND (CA_DELETE / CERT_ISSUE / CA_REISSUE /
	 *   RENEWAL_STATE for a tenant with no active CA);
	 *   TCA_ERR_INVALID_ARG (malformed change: missing field, bad length).
	 * A change that fails is rolled back alone (savepoint) and gets no journal
	 * record.  Returns TCA_OK when the transaction committed (check results[]),
	 * or TCA_ERR_JOURNAL_UNAVAILABLE when nothing was committed (I/O error, disk
	 * full, read-only database); then every results[i] is that too.
	 */
	int (*commit)(tca_store *st, struct tca_change *const *changes, size_t n, int *results);
	/* Journal records with seq >= from_seq in order. */
	int (*journal_foreach)(tca_store *st, int64_t from_seq, tca_journal_cb cb, void *ctx);
	/* Certificates of tenant (NULL = all) in issue order. */
	int (*cert_foreach)(tca_store *st, const char *tenant, int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx);
	/*
	 * v3.  Device certificates of the tenant's active CA matching q, in
	 * issue order after q->after_cert_id, at most q->limit (indexed by
	 * tenant, device id and issue order).  NOT_FOUND if the tenant has no
	 * active CA.
	 */
	int (*cert_list)(tca_store *st, const struct tca_cert_query *q,
	    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx);
	/* The device certificate with serial (magnitude) of the tenant's active
	 * CA, with its DER; NOT_FOUND.  *row: tca_cert_row_clear(). */
	int (*cert_get)(tca_store *st, const char *tenant, const unsigned char *serial,
	    size_t serial_len, struct tca_cert_row *row);
	/* Revoked certificates of the tenant's active CA whose not_after >= now
	 * (what its CRL lists), in issue order. */
	int (*revoked_foreach)(tca_store *st, const char *tenant, int64_t now,
	    tca_revoked_cb cb, void *ctx);
	/* Every revoked certificate of every active CA whose not_after >= now
	 * (INT64_MIN: all; the engine's in-memory revocation set is loaded from
	 * this at start). */
	int (*revoked_all)(tca_store *st, int64_t now,
	    int (*cb)(void *ctx, const char *tenant, const unsigned char *serial,
	    size_t serial_len, int64_t revoked_at, int reason), void *ctx);
	/* The tenant's active CA's current CRL; NOT_FOUND if none was made yet
	 * (row->next_number is set then too, unless the tenant has no CA). */
	int (*crl_get)(tca_store *st, const char *tenant, struct tca_crl_row *row);
	/* Device certificates of all active CAs by state at now. */
	int (*cert_counts)(tca_store *st, int64_t now, struct tca_cert_counts *out);
	/* v4.  The device's registration; NOT_FOUND. */
	int (*device_get)(tca_store *st, const char *tenant, const char *device_id,
	    struct tca_device_row *row);
	/* The tenant's registrations by device id after `after` ("" = from the
	 * start), at most limit. */
	int (*device_list)(tca_store *st, const char *tenant, const char *after, size_t limit,
	    int (*cb)(void *ctx, const struct tca_device_row *row), void *ctx);
	/* Every certificate row (CA and device, of every CA ever), with its
	 * DER if with_der (else der NULL: a much shorter read) and whether it
	 * is revoked, in issue order: what the journal cross-check compares
	 * with the journal. */
	int (*cert_audit_foreach)(tca_store *st, int with_der,
	    int (*cb)(void *ctx, const struct tca_cert_audit_row *row), void *ctx);
	/*
	 * Whether the store can still take commits: TCA_OK, or
	 * TCA_ERR_JOURNAL_UNAVAILABLE with why (status shows it).  SQLite:
	 * the database, -wal and -shm paths must still name the files opened
	 * (st_dev/st_ino compared before and after every commit batch and on
	 * every call here); once they do not, the store is lost for good -
	 * every commit fails with JOURNAL_UNAVAILABLE, a batch committed to
	 * files unlinked meanwhile included - and the log says what to do.
	 */
	int (*health)(tca_store *st, char *why, size_t whylen);
	/*
	 * Leadership of role (e.g. "scheduler"; at most TCA_LEADER_ROLE_MAX
	 * bytes): tries to become, or to stay, the one holder of role among
	 * every handle open on this store, and sets *is_leader_ptr to 1 if
	 * this handle holds it now, else 0.  Never blocks waiting for another
	 * holder.  Call it again before each piece of work: a holder can lose
	 * the role (its database session died) and learns it on its next call.
	 * TCA_OK (also when not the leader), TCA_ERR_INVALID_ARG (role), or
	 * TCA_ERR_JOURNAL_UNAVAILABLE with why (the store cannot tell: then
	 * *is_leader_ptr is 0 too).
	 *  - SQLite: always the leader (one engine per store: the flock of
	 *    TCA_STORE_EXCLUSIVE sees to that).
	 *  - PostgreSQL: a session-level advisory lock held on a connection of
	 *    its own (store-postgresql.c says which key); released at once when
	 *    the holder closes the store or its process dies, and by the server
	 *    after the TCP keepalive / tcp_user_timeout bound when its network
	 *    goes (docs/architecture.md, Scheduler election).
	 */
	int (*leader)(tca_store *st, const char *role, int *is_leader_ptr,
	    char *why, size_t whylen);
	/*
	 * Migration (store-migrate.h: the backend-neutral rows, and
	 * tca_store_migrate() which pairs the two).
	 * export_rows: every row of every table, table by table in the
	 * order of tca_mig_tables[], each in key order, from one consistent
	 * snapshot, streamed (one row in memory at a time).  cb's non-zero
	 * return stops the walk and is returned.
	 * import_rows: into an EMPTY store (TCA_ERR_ALREADY_EXISTS otherwise,
	 * why naming what it holds), in ONE transaction: begins it, runs
	 * walk(wctx, sink, sink_ctx), which feeds every row to sink, then
	 * finishes what the backend keeps beside the rows (PostgreSQL: the
	 * journal_head row moved to the last record) and commits.  Rows go
	 * through the store's own constraints and triggers.  If walk or a
	 * row fails, nothing is written (why set when the store refused a
	 * row: TCA_ERR_POLICY_VIOLATION naming the table and key; left
	 * empty when walk failed by itself).  A READONLY store refuses.
	 */
	/*
	 * Engines sharing one store see each other's changes (issue 13;
	 * docs/architecture.md, Cache coherence across engines).
	 * changes_since: the journal records with seq > after_seq whose op
	 * changes what an engine caches - TCA_CACHE_OPS: ca-create,
	 * ca-delete, ca-reissue, policy-set, crl, revoke - in order, at most
	 * limit of them, each passed to cb (strings valid during the call;
	 * serial_hex as journaled: the revoked certificate's for revoke).  *upto_ptr: how far the journal was
	 * read - its head if fewer than limit were found (also when after_seq
	 * lies beyond the head), else the seq of the last one passed.
	 * wait_change: NULL in a backend whose store only one engine opens
	 * (SQLite).  Blocks until a change of those ops is committed through
	 * any handle (PostgreSQL: LISTEN/NOTIFY on a connection of its own),
	 * wake_fd becomes readable, or timeout_ms passes; TCA_OK either way
	 * (then call changes_since), or TCA_ERR_JOURNAL_UNAVAILABLE with why
	 * after waiting timeout_ms (it cannot listen: poll changes_since).
	 */
	int (*changes_since)(tca_store *st, int64_t after_seq, size_t limit,
	    int64_t *upto_ptr, int (*cb)(void *ctx, int64_t seq, const char *op,
	    const char *tenant, const char *serial_hex), void *ctx);
	int (*wait_change)(tca_store *st, int wake_fd, int timeout_ms, char *why,
	    size_t whylen);
	int (*export_rows)(tca_store *st, tca_mig_row_cb cb, void *ctx);
	int (*import_rows)(tca_store *st,
	    int (*walk)(void *wctx, tca_mig_row_cb sink, void *sink_ctx), void *wctx,
	    char *why, size_t whylen);
};

#define TCA_LEADER_ROLE_MAX 64

/* The journal ops changes_since() reports, as an SQL list. */
#define TCA_CACHE_OPS_SQL "('ca-create', 'ca-delete', 'ca-reissue', 'policy-set', 'crl', 'revoke')"
/* 1 if a change of this kind, applied, is one changes_since() reports. */
int tca_change_is_cache_op(enum tca_change_kind kind);

struct tca_store {
	const struct tca_store_ops *ops;
};

#define TCA_STORE_READONLY 0x1	/* open for audit tools: no writes, no schema creation */
/*
 * The engine's own open (tca-engined): one engine per store, for a backend
 * that cannot be shared.  This is a SQLite-backend matter: there it is an
 * exclusive flock(2) on "<path>.lock", held until close (store-sqlite.h
 * says how; a second EXCLUSIVE open fails with TCA_ERR_JOURNAL_UNAVAILABLE
 * naming the store and the pid holding it).  READONLY opens (ca-admin
 * journal verify/export) take no lock.  A PostgreSQL store is shared by
 * several engines by design and ignores this flag.
 */
#define TCA_STORE_EXCLUSIVE 0x2

/*
 * Opens the store named by uri with the backend its form names:
 *   "sqlite:PATH", or a PATH with no scheme   -> SQLite file (store-sqlite.h)
 *   "postgresql://..." / "postgres://...", or a libpq "key=value ..." string
 *   (contains '=' and no scheme)              -> PostgreSQL (store-postgresql.h),
 *     if this build has libpq; else refused, saying so.
 * Any other "scheme:" is refused naming the scheme and the accepted forms.
 * flags: TCA_STORE_READONLY, TCA_STORE_EXCLUSIVE.  TCA_OK and *st_ptr
 * (st->ops->close() frees it), or TCA_ERR_JOURNAL_UNAVAILABLE (the store
 * could not be opened) / TCA_ERR_INVALID_ARG (uri of no known form) with a
 * reason in err that names the store by its redacted URI only.
 */
int tca_store_open(const char *uri, int flags, tca_store **st_ptr,
    char *err, size_t errlen);

/*
 * Which backend uri names, without opening it: "sqlite", "postgresql", or
 * NULL (unknown scheme).  For SQLite, *path_ptr (if non-NULL) points into
 * uri at the file path (after "sqlite:"), else it is set to NULL.
 */
const char *tca_store_uri_backend(const char *uri, const char **path_ptr);

/*
 * Copies uri to out (always NUL-terminated, truncated to outlen) with any
 * password hidden as "***": the password of a postgresql:// or postgres://
 * URI's userinfo ("user:secret@host" -> "user:***@host"; so for any
 * "scheme://" URI, even one no backend takes), its "password=" query
 * parameter, and the value of a "password" key of a libpq key=value
 * string (quoted values included).  Nothing else is altered.  Every message
 * or log line naming a store uses this.
 */
void tca_store_uri_redact(const char *uri, char *out, size_t outlen);

void tca_crl_row_clear(struct tca_crl_row *row);

/*
 * Journal hash: SHA-256 over a canonical encoding of the record (documented in
 * docs/security.md): "tca-journal-v1" || prev_hash || be64(seq) || be64(time_ms)
 * || lp(op) || lp(tenant) || lp(serial_hex) || lp(subject) || lp(fingerprint_hex)
 * || be32(uid) || be32(pid) || lp(details), lp(s) = be32(strlen(s)) || s.
 * "tca-journal-v1" is the 14 ASCII bytes without a terminator; a NULL string
 * field encodes as "".  Should the digest itself fail, out is 32 zero bytes
 * (never recorded: commit() refuses it).
 */
void tca_journal_hash(const struct tca_journal_record *rec, unsigned char out[32]);

/*
 * Walks the whole journal recomputing the chain.  Returns TCA_OK when intact
 * (*count_ptr = number of records, head hash in head[32] if non-NULL), or
 * TCA_ERR_POLICY_VIOLATION with *bad_seq_ptr = the first broken record and a
 * reason in why (hash mismatch, prev_hash mismatch, sequence gap).
 */
int tca_journal_verify(tca_store *st, uint64_t *count_ptr, int64_t *bad_seq_ptr,
    unsigned char head[32], char *why, size_t whylen);

/*
 * Whether the journal still holds record seq with this hash: a head saved
 * elsewhere earlier (ca-admin journal verify --json prints records and
 * head; --head N:HASH checks them).  Run after tca_journal_verify() passed,
 * so that every record before seq is intact too.  TCA_OK, or
 * TCA_ERR_POLICY_VIOLATION with why: the journal ends before seq (its newest
 * records were cut off) or record seq has another hash; or a read error.
 */
int tca_journal_check_head(tca_store *st, int64_t seq, const unsigned char hash[32],
    char *why, size_t whylen);

/*
 * The engine's integrity check at start (tca-engined, after the store is
 * open): the whole journal chain is recomputed (tca_journal_verify), then
 * the certificates are cross-checked against it (tca_journal_crosscheck;
 * the first 20 problems are logged).  TCA_OK (logs counts, head and time
 * taken), or TCA_ERR_POLICY_VIOLATION with why naming the first bad record
 * (or the number of certificate problems) and what to do (the engine then
 * refuses to start), or the store's read error.
 * name names the store in messages (a redacted URI: tca_store_uri_redact).
 */
int tca_journal_check_start(tca_store *st, const char *name, char *why, size_t whylen);

/*
 * Cross-checks the certificates table against the journal: every
 * certificate row must have the journal record that recorded it (same
 * fingerprint, serial, tenant and subject; its DER must hash to the
 * fingerprint) and every certificate record of the journal (ops other than
 * "revoke" that carry a fingerprint: ca-create, issue, reenroll,
 * ca-reissue) its row; every revoked certificate its "revoke" record and
 * every "revoke" record a revoked row.  TCA_XC_DER also reads every DER
 * and checks that it hashes to the row's fingerprint (an altered DER with
 * its fingerprint left alone); without it the check reads no DER (about a
 * fifth of the time at 1,000,000 certificates: docs/performance.md).
 * Each mismatch is passed to report
 * (one line naming the serial and the journal record; may be NULL) and
 * counted.  TCA_OK with no problem, TCA_ERR_POLICY_VIOLATION with
 * *problems_ptr > 0, or a read error / TCA_ERR_NOMEM.  Memory: about 80
 * bytes per journal certificate record.  *certs_ptr: rows checked.
 */
#define TCA_XC_DER 0x1
int tca_journal_crosscheck(tca_store *st, int flags,
    void (*report)(void *ctx, const char *line), void *ctx,
    uint64_t *problems_ptr, uint64_t *certs_ptr);

/* Writes every record as one JSON object per line (JSON Lines). */
int tca_journal_export_json(tca_store *st, FILE *out);


#endif
