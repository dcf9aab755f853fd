/*
 * storetest.h - helpers shared by the store's Check suites: the conformance
 * suite run on every backend (tests/unit/check_store.c) and the
 * PostgreSQL-only suite (tests/unit/check_store_pg.c).  No token:
 * certificate facts are built by hand around random bytes standing in for
 * DER.
 *
 * A struct tchange is one store change together with everything it points
 * to, so that it can be built, kept in an array and committed later (the
 * multi-threaded PostgreSQL tests build batches in loops); the tc_*
 * builders fill it, every one starting with tc_base(), which clears it.
 * Strings passed in are copied into it, except the details string of
 * tc_reissue() (a constant).  Nothing here allocates.
 *
 * Every helper asserts with Check (ck_assert): for use inside a test or its
 * fixture only.
 */
#ifndef TCA_STORETEST_H
#define TCA_STORETEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define T_BASE_MS 1700000000123LL	/* 2023-11-14T22:13:20.123Z */
#define T_NOW (T_BASE_MS / 1000)	/* fill_cert(): not_before = T_NOW */

/*
 * The change time of the next tc_base() (incremented atomically by each,
 * so that threads building changes at once get distinct times).  A suite
 * resets it to T_BASE_MS in its fixture and may move it forward.
 */
extern int64_t tc_clock_ms;

struct tchange {
	struct tca_change chg;
	struct tca_cert_info ci;
	unsigned char der[256];	/* certificate or CRL bytes */
	unsigned char key_id[20];
	char tenant[TCA_TENANT_MAX + 1];
	unsigned char expect[32];	/* CA_REISSUE: fingerprint replaced */
	struct tca_renewal_state rs;	/* RENEWAL_STATE, CRL_STATE */
	char details[160];
	char device[256 + 1];	/* CERT_ISSUE: the device id (store.h's row size) */
};

/* SHA-256 of in. */
void sha256(const void *in, size_t len, unsigned char out[32]);

/* The issuer hash fill_cert() gives a certificate of tenant: SHA-256 of
 * "CN=<tenant>". */
void issuer_hash_of(const char *tenant, unsigned char out[32]);

/*
 * t->ci: a certificate of random DER bytes (starting 0x30), a random
 * positive 16-byte serial, subject, issuer "CN=<issuer_tenant>", valid
 * from T_NOW for a day.
 */
void fill_cert(struct tchange *t, const char *subject, const char *issuer_tenant);

/* Clears t; a change of kind, op (NULL: not journaled) and tenant at the
 * time tc_clock_ms (then incremented), by uid/gid 1000, pid 4242. */
void tc_base(struct tchange *t, enum tca_change_kind kind, const char *op,
    const char *tenant);

/* CA_CREATE of tenant: a CA certificate "CN=<tenant>", a random key id, ec-p256. */
void tc_ca_create(struct tchange *t, const char *tenant);

/* CERT_ISSUE of a device certificate "CN=<cn>" for device id cn (copied:
 * at most 256 bytes) by tenant's CA; details "profile=device". */
void tc_issue(struct tchange *t, const char *tenant, const char *cn);

/*
 * CA_REISSUE: a re-issued CA certificate for tenant, a year later,
 * replacing the certificate whose fingerprint is expect_fp; keep_serial: the
 * serial to keep (NULL: fresh).  details: the journal details (a string
 * that outlives t), or NULL for "old=<16 hex of expect_fp> new=<16 hex of
 * the new fingerprint>".  The two suites had their own copies of this
 * builder, which differed only here: check_store.c passes NULL,
 * check_store_pg.c "reissue".  No test reads the text back; each suite
 * keeps the journal records it always wrote (and hashed).
 */
void tc_reissue(struct tchange *t, const char *tenant, const unsigned char *expect_fp,
    const struct tca_cert_info *keep_serial, const char *details);

/* CERT_REVOKE of the certificate ci describes (NULL: a random unknown
 * serial) for reason, at revoked_at. */
void tc_revoke(struct tchange *t, const char *tenant, const struct tca_cert_info *ci,
    int reason, int64_t revoked_at);

/* CRL_PUBLISH number of random bytes (starting 0x30) standing in for a CRL
 * of entries entries, valid for a week from this_update. */
void tc_crl(struct tchange *t, const char *tenant, uint64_t number,
    int64_t this_update, uint64_t entries);

/* Commits one change in its own batch (the commit itself must return
 * TCA_OK); returns the change's result. */
int commit1(tca_store *s, struct tchange *t);

/* The journal's records, counted with journal_foreach from seq 1 (which
 * must succeed). */
int64_t journal_count(tca_store *s);

/* journal_foreach's own result for that walk (which may fail). */
int journal_count_r(tca_store *s);

/* tca_journal_verify() must succeed with want_count records; head, if not
 * NULL, receives the head hash. */
void verify_ok(tca_store *s, uint64_t want_count, unsigned char head[32]);

/* n bytes as lowercase hex on f. */
void hexf(FILE *f, const unsigned char *p, size_t n);

/*
 * For dumping a store to text (ctx: the FILE *), one line each: a journal
 * record (every field, hashes in hex; "J ..."), a revoked certificate of
 * revoked_all ("V tenant serial revoked_at reason") and a device
 * registration row ("D ...").  (check_store_pg.c tagged its revoked_all
 * lines "RA"; both of its dumps use the same callback, so only the tag
 * changed.)
 */
int dump_journal_cb(void *ctx, const struct tca_journal_record *r);
int dump_revoked_cb(void *ctx, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason);
int dump_device_cb(void *ctx, const struct tca_device_row *r);

#endif
