/*
 * check_store_pg.c - the PostgreSQL store backend (store-postgresql.c)
 * against a real, throwaway PostgreSQL cluster (tests/pgtest.h): schema
 * creation and guards, every change kind with the same results and the
 * same journal bytes as the SQLite backend, the uniqueness rules, the
 * append-only journal enforced by the database, two "nodes" committing at
 * once into one chain, and connection loss before, during and after COMMIT.
 *
 * One cluster per run of this binary (started in main), one fresh database
 * per test (the checked fixture, in the test's own process).  No token:
 * certificate facts are built by hand around random bytes standing in for
 * DER, with the helpers check_store.c uses too (tests/storetest.h).
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pgtest.h"
#include "store.h"
#include "store-postgresql.h"
#include "store-sqlite.h"
#include "storetest.h"
#include "tca-error.h"
#include "testutil.h"

static struct pgtest_cluster cluster;
static char conninfo[PATH_MAX + 128];	/* this test's database */
static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 16];
static tca_store *st;		/* PostgreSQL */
static tca_store *sq;		/* SQLite, for comparisons */
static int db_counter;
static double createdb_s;

/* ------------------------------------------------ changes (and storetest.h) */

static void
tc_state(struct tchange *t, enum tca_change_kind kind, const char *tenant,
    const char *reason, uint32_t attempts)
{
	tc_base(t, kind, NULL, tenant);
	t->rs.failed = 1;
	snprintf(t->rs.reason, sizeof(t->rs.reason), "%s", reason);
	t->rs.attempts = attempts;
	t->rs.failed_since = T_NOW + 5;
	t->rs.next_retry = T_NOW + 3600;
	t->rs.alerted = 1;
	t->rs.expiry_alerted = kind == TCA_CHANGE_RENEWAL_STATE;
	t->chg.renewal = &t->rs;
}

static void
tc_dev(struct tchange *t, enum tca_change_kind kind, const char *op, const char *tenant,
    const char *device)
{
	tc_base(t, kind, op, tenant);
	snprintf(t->device, sizeof(t->device), "%s", device);
	t->chg.device_id = t->device;
	snprintf(t->details, sizeof(t->details), "device_id=%s", device);
	t->chg.details = t->details;
}

/* ------------------------------------------------------------ helpers */

static int
commit_n(tca_store *s, struct tchange *const *tc, size_t n, int *res)
{
	struct tca_change *chgs[64];
	size_t i;

	ck_assert_uint_le(n, 64);
	for (i = 0; i < n; i++)
		chgs[i] = &tc[i]->chg;
	return s->ops->commit(s, chgs, n, res);
}

/* Commits one change on both backends; both must give the same result. */
static int
both1(struct tchange *t)
{
	int a, b;

	b = commit1(sq, t);
	a = commit1(st, t);
	ck_assert_msg(a == b, "kind %d: postgresql %d, sqlite %d", t->chg.kind, a, b);
	return a;
}

static void
open_pg(tca_store **s, int flags)
{
	char err[512] = "";
	int r;

	r = tca_store_open_postgresql(conninfo, flags, s, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "open: %s", err);
	ck_assert_ptr_nonnull(*s);
}

static void
sql_ok(const char *sql)
{
	char err[512];

	ck_assert_msg(pgtest_exec(conninfo, sql, err, sizeof(err)) == 0, "%s: %s", sql, err);
}

static void
sql_fails(const char *sql, const char *want)
{
	char err[512];

	ck_assert_msg(pgtest_exec(conninfo, sql, err, sizeof(err)) != 0, "%s succeeded", sql);
	ck_assert_msg(strstr(err, want) != NULL, "%s: \"%s\", want \"%s\"", sql, err, want);
}

static void
setup(void)
{
	char name[64], err[256] = "";
	double t0;

	tc_clock_ms = T_BASE_MS;
	/* a test that failed while the server was down left it down */
	ck_assert_int_eq(pgtest_resume(&cluster), 0);
	snprintf(name, sizeof(name), "t_%ld_%d", (long)getpid(), db_counter++);
	t0 = pgtest_now();
	ck_assert_int_eq(pgtest_createdb(&cluster, name, conninfo, sizeof(conninfo)), 0);
	createdb_s = pgtest_now() - t0;
	open_pg(&st, 0);
	test_mkdtemp(tmpdir, sizeof(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
	ck_assert_msg(tca_store_open_sqlite(dbpath, 0, &sq, err, sizeof(err)) == TCA_OK,
	    "sqlite: %s", err);
}

static void
teardown(void)
{
	if (st != NULL)
		st->ops->close(st);
	if (sq != NULL)
		sq->ops->close(sq);
	st = sq = NULL;
	test_sh("rm -rf '%s'", tmpdir);
}

/* ------------------------------------------------ dumping a store */

static int
dump_ca_cb(void *ctx, const struct tca_ca_row *r)
{
	FILE *f = ctx;

	fprintf(f, "CA %lld %s %d %s ", (long long)r->ca_id, r->tenant, r->status, r->key_type);
	hexf(f, r->key_id, r->key_id_len);
	fprintf(f, " %lld %lld cur=", (long long)r->created_at, (long long)r->deleted_at);
	hexf(f, r->cert_der, r->cert_der_len > 8 ? 8 : r->cert_der_len);
	fprintf(f, " prev=");
	if (r->prev_der != NULL)
		hexf(f, r->prev_der, r->prev_der_len > 8 ? 8 : r->prev_der_len);
	fprintf(f, " ren=%d,%s,%u,%lld,%lld,%d,%d crl=%d,%s,%u,%lld,%lld,%d pol=%s "
	    "crl#%llu %lld %lld\n", r->renewal.failed, r->renewal.reason,
	    r->renewal.attempts, (long long)r->renewal.failed_since,
	    (long long)r->renewal.next_retry, r->renewal.alerted,
	    r->renewal.expiry_alerted, r->crl.failed, r->crl.reason, r->crl.attempts,
	    (long long)r->crl.failed_since, (long long)r->crl.next_retry, r->crl.alerted,
	    r->policy, (unsigned long long)r->crl_number, (long long)r->crl_this_update,
	    (long long)r->crl_next_update);
	return 0;
}

static int
dump_cert_cb(void *ctx, const struct tca_cert_row *r)
{
	fprintf(ctx, "C %s %s %s %s %s %lld %lld %lld\n", r->tenant, r->kind, r->serial_hex,
	    r->subject, r->fingerprint_hex, (long long)r->not_before,
	    (long long)r->not_after, (long long)r->issued_at);
	return 0;
}

static int
dump_list_cb(void *ctx, const struct tca_cert_row *r)
{
	fprintf(ctx, "L %lld %s %s %s %s %d %lld %d\n", (long long)r->cert_id, r->tenant,
	    r->serial_hex, r->device_id, r->fingerprint_hex, r->revoked,
	    (long long)r->revoked_at, r->reason);
	return 0;
}

static int
dump_audit_cb(void *ctx, const struct tca_cert_audit_row *r)
{
	FILE *f = ctx;

	fprintf(f, "A %lld %s %s %s ", (long long)r->cert_id, r->tenant, r->kind, r->subject);
	hexf(f, r->serial, r->serial_len);
	fprintf(f, " ");
	hexf(f, r->fingerprint, r->fingerprint_len);
	fprintf(f, " %zu %d\n", r->der_len, r->revoked);
	return 0;
}

static int
dump_rev_cb(void *ctx, const unsigned char *serial, size_t serial_len,
    int64_t revoked_at, int reason, int64_t not_after)
{
	FILE *f = ctx;

	fprintf(f, "R ");
	hexf(f, serial, serial_len);
	fprintf(f, " %lld %d %lld\n", (long long)revoked_at, reason, (long long)not_after);
	return 0;
}

/* Everything the store's read operations say about tenants[]; malloc'ed. */
static char *
dump_store(tca_store *s, const char *const *tenants, size_t ntenants)
{
	struct tca_cert_query q;
	struct tca_cert_counts cc;
	struct tca_crl_row crl;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f;
	int r;

	ck_assert_ptr_nonnull(f = open_memstream(&buf, &len));
	ck_assert_int_eq(s->ops->journal_foreach(s, 1, dump_journal_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->foreach_ca(s, 1, dump_ca_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_foreach(s, NULL, dump_cert_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_audit_foreach(s, 1, dump_audit_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_audit_foreach(s, 0, dump_audit_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->revoked_all(s, INT64_MIN, dump_revoked_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_counts(s, T_NOW + 10, &cc), TCA_OK);
	fprintf(f, "N %llu %llu %llu\n", (unsigned long long)cc.valid,
	    (unsigned long long)cc.revoked, (unsigned long long)cc.expired);
	ck_assert_int_eq(s->ops->cert_counts(s, T_NOW + 2 * 86400, &cc), TCA_OK);
	fprintf(f, "N %llu %llu %llu\n", (unsigned long long)cc.valid,
	    (unsigned long long)cc.revoked, (unsigned long long)cc.expired);
	for (i = 0; i < ntenants; i++) {
		fprintf(f, "T %s\n", tenants[i]);
		ck_assert_int_eq(s->ops->cert_foreach(s, tenants[i], dump_cert_cb, f), TCA_OK);
		memset(&q, 0, sizeof(q));
		q.tenant = tenants[i];
		q.limit = 100;
		q.now = T_NOW + 10;
		for (q.state = TCA_CERT_ANY; q.state <= TCA_CERT_EXPIRED; q.state++) {
			r = s->ops->cert_list(s, &q, dump_list_cb, f);
			fprintf(f, "cert_list %d -> %d\n", q.state, r);
		}
		q.state = TCA_CERT_ANY;
		q.device_id = "dev-1";
		fprintf(f, "cert_list dev-1 -> %d\n", s->ops->cert_list(s, &q, dump_list_cb, f));
		fprintf(f, "revoked -> %d\n", s->ops->revoked_foreach(s, tenants[i],
		    T_NOW, dump_rev_cb, f));
		r = s->ops->crl_get(s, tenants[i], &crl);
		fprintf(f, "crl %d %llu %llu %lld %lld %llu %zu\n", r,
		    (unsigned long long)crl.next_number, (unsigned long long)crl.crl_number,
		    (long long)crl.this_update, (long long)crl.next_update,
		    (unsigned long long)crl.entries, crl.der_len);
		tca_crl_row_clear(&crl);
		fprintf(f, "devices -> %d\n", s->ops->device_list(s, tenants[i], "", 100,
		    dump_device_cb, f));
	}
	fclose(f);
	return buf;
}

static void
assert_same_stores(const char *const *tenants, size_t n)
{
	char *a = dump_store(st, tenants, n), *b = dump_store(sq, tenants, n);

	if (strcmp(a, b) != 0) {
		fprintf(stderr, "---- postgresql\n%s---- sqlite\n%s----\n", a, b);
		ck_abort_msg("the PostgreSQL and SQLite stores differ (see above)");
	}
	free(a);
	free(b);
}

/* ------------------------------------------------------------ tests */

/* /store-pg/schema: created once, versioned, reopened, read-only */
START_TEST(test_schema)
{
	tca_store *ro = NULL, *again = NULL;
	struct tchange ca;
	struct tca_change *chg = &ca.chg;
	char err[512];
	int res;

	ck_assert_int_eq(pgtest_int(conninfo, "SELECT schema_version FROM tca_meta"), 2);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT application_id FROM tca_meta"),
	    0x54434131);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT seq FROM journal_head"), 0);
	ck_assert_str_eq(st->ops->name, "postgresql");
	/* a second open finds it, guards intact: nothing to restore */
	open_pg(&again, TCA_STORE_EXCLUSIVE);
	open_pg(&ro, TCA_STORE_READONLY);
	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(again, &ca), TCA_OK);
	verify_ok(ro, 1, NULL);
	res = 0;
	ck_assert_int_eq(ro->ops->commit(ro, &chg, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(ro->ops->health(ro, err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(st->ops->health(st, err, sizeof(err)), TCA_OK);
	ro->ops->close(ro);
	again->ops->close(again);
	/* a newer schema is refused, read-write and read-only */
	sql_ok("UPDATE tca_meta SET schema_version = 3");
	ck_assert_int_eq(tca_store_open_postgresql(conninfo, 0, &again, err, sizeof(err)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(err, "newer") != NULL, "%s", err);
	ck_assert_int_eq(tca_store_open_postgresql(conninfo, TCA_STORE_READONLY, &again,
	    err, sizeof(err)), TCA_ERR_JOURNAL_UNAVAILABLE);
	/* a version 1 store (no CA reservations) is migrated by a read-write
	 * open, its CA and journal kept */
	sql_ok("DROP TABLE ca_reservations; UPDATE tca_meta SET schema_version = 1");
	open_pg(&again, 0);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT schema_version FROM tca_meta"), 2);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM ca_reservations"), 0);
	verify_ok(again, 1, NULL);
	again->ops->close(again);
	/* a schema holding other tables of these names is not taken over */
	sql_ok("CREATE SCHEMA other; CREATE TABLE other.journal (x int)");
	{
		char ci[PATH_MAX + 200];

		snprintf(ci, sizeof(ci), "%s options=-csearch_path=other", conninfo);
		ck_assert_int_eq(tca_store_open_postgresql(ci, 0, &again, err, sizeof(err)),
		    TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_msg(strstr(err, "not a tca state store") != NULL, "%s", err);
		/* an empty schema of its own: a second, independent store */
		sql_ok("CREATE SCHEMA second");
		snprintf(ci, sizeof(ci), "%s options=-csearch_path=second", conninfo);
		ck_assert_int_eq(tca_store_open_postgresql(ci, 0, &again, err, sizeof(err)),
		    TCA_OK);
		ck_assert_int_eq(journal_count(again), 0);
		again->ops->close(again);
		/* read-only on an empty schema: no store there */
		sql_ok("CREATE SCHEMA third");
		snprintf(ci, sizeof(ci), "%s options=-csearch_path=third", conninfo);
		ck_assert_int_eq(tca_store_open_postgresql(ci, TCA_STORE_READONLY, &again,
		    err, sizeof(err)), TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM pg_tables"
		    " WHERE schemaname = 'third'"), 0);
	}
}
END_TEST

struct opener {
	pthread_t th;
	tca_store *s;
	int r;
	char err[512];
};

static void *
opener_main(void *arg)
{
	struct opener *o = arg;

	o->r = tca_store_open_postgresql(conninfo, 0, &o->s, o->err, sizeof(o->err));
	return NULL;
}

/* /store-pg/schema-race: four opens of an empty database at once: one
 * creates the schema, the others find it */
START_TEST(test_schema_race)
{
	struct opener o[4];
	char name[64];
	int i;

	snprintf(name, sizeof(name), "race_%ld", (long)getpid());
	ck_assert_int_eq(pgtest_createdb(&cluster, name, conninfo, sizeof(conninfo)), 0);
	for (i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		ck_assert_int_eq(pthread_create(&o[i].th, NULL, opener_main, &o[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(o[i].th, NULL), 0);
		ck_assert_msg(o[i].r == TCA_OK, "open %d: %s", i, o[i].err);
		o[i].s->ops->close(o[i].s);
	}
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM tca_meta"), 1);
}
END_TEST

/* /store-pg/no-password-in-errors */
START_TEST(test_no_password_in_errors)
{
	tca_store *s = NULL;
	char err[1024] = "";
	int r;

	r = tca_store_open_postgresql("host=/nonexistent-dir port=5999 dbname=x user=u "
	    "password=Sekr1tPw", 0, &s, err, sizeof(err));
	ck_assert_int_eq(r, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(err, "Sekr1tPw") == NULL, "%s", err);
	ck_assert_msg(strstr(err, "host=/nonexistent-dir port=5999 dbname=x user=u") != NULL,
	    "%s", err);
	r = tca_store_open_postgresql("postgresql://u:Sekr1tPw@/x?host=/nonexistent-dir",
	    0, &s, err, sizeof(err));
	ck_assert_int_eq(r, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(err, "Sekr1tPw") == NULL, "%s", err);
	r = tca_store_open_postgresql("host=x password='Sekr1tPw", 0, &s, err, sizeof(err));
	ck_assert_int_eq(r, TCA_ERR_INVALID_ARG);
	ck_assert_msg(strstr(err, "Sekr1tPw") == NULL, "%s", err);
}
END_TEST

/*
 * /store-pg/every-kind: each change kind (and its refusals) committed to
 * both backends with the same time: the same results, the same journal
 * bytes and hashes, the same answers from every read operation.
 */
START_TEST(test_every_kind)
{
	static const char *const tenants[] = { "acme", "beta", "gone" };
	static const char secret[] = "$scrypt$ln=14,r=8,p=1$c2FsdA==$aGFzaA==";
	struct tchange ca, cb, cg, i1, i2, i3, re, rn, rv, rv2, crl, crl_old, cs, pol, del,
	    reg, att, fail, reg2, att2, rel, cons, unreg, unreg2, dup, noca, bad, ren_none;
	struct tchange *batch[4];
	int res[4], res2[4];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(both1(&ca), TCA_OK);
	tc_ca_create(&cb, "beta");
	ck_assert_int_eq(both1(&cb), TCA_OK);
	tc_ca_create(&cg, "gone");
	ck_assert_int_eq(both1(&cg), TCA_OK);
	tc_issue(&i1, "acme", "dev-1");
	ck_assert_int_eq(both1(&i1), TCA_OK);
	tc_issue(&i2, "acme", "dev-2");
	ck_assert_int_eq(both1(&i2), TCA_OK);
	tc_issue(&i3, "beta", "dev-1");
	ck_assert_int_eq(both1(&i3), TCA_OK);
	tc_reissue(&re, "acme", ca.ci.sha256, &ca.ci, "reissue");
	ck_assert_int_eq(both1(&re), TCA_OK);
	/* the same expectation again: re-issued meanwhile */
	tc_reissue(&rn, "acme", ca.ci.sha256, NULL, "reissue");
	ck_assert_int_eq(both1(&rn), TCA_ERR_ALREADY_EXISTS);
	tc_state(&rn, TCA_CHANGE_RENEWAL_STATE, "acme", "token away", 3);
	ck_assert_int_eq(both1(&rn), TCA_OK);
	tc_state(&ren_none, TCA_CHANGE_RENEWAL_STATE, "nobody", "x", 1);
	ck_assert_int_eq(both1(&ren_none), TCA_ERR_NOT_FOUND);
	tc_revoke(&rv, "acme", &i1.ci, 1, T_NOW + 60);
	ck_assert_int_eq(both1(&rv), TCA_OK);
	ck_assert_str_eq(rv.chg.revoked.subject, "CN=dev-1");
	tc_revoke(&rv2, "acme", &i1.ci, 4, T_NOW + 60);
	ck_assert_int_eq(both1(&rv2), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(rv2.chg.revoked.reason, 1);
	tc_revoke(&rv2, "beta", &i1.ci, 1, T_NOW + 60);
	ck_assert_int_eq(both1(&rv2), TCA_ERR_NOT_FOUND);
	tc_crl(&crl, "acme", 5, T_NOW, 1);
	ck_assert_int_eq(both1(&crl), TCA_OK);
	tc_crl(&crl_old, "acme", 5, T_NOW, 1);
	ck_assert_int_eq(both1(&crl_old), TCA_ERR_ALREADY_EXISTS);
	tc_crl(&crl_old, "acme", 6, T_NOW, 1);
	ck_assert_int_eq(both1(&crl_old), TCA_OK);
	tc_state(&cs, TCA_CHANGE_CRL_STATE, "acme", "signing failed", 2);
	ck_assert_int_eq(both1(&cs), TCA_OK);
	tc_base(&pol, TCA_CHANGE_POLICY_SET, "policy-set", "beta");
	pol.chg.policy = "max_validity_days=30\n";
	ck_assert_int_eq(both1(&pol), TCA_OK);
	/* devices */
	tc_dev(&reg, TCA_CHANGE_DEVICE_REGISTER, "device-register", "beta", "dev-9");
	reg.chg.secret = secret;
	reg.chg.expires_at = T_NOW + 86400;
	ck_assert_int_eq(both1(&reg), TCA_OK);
	tc_dev(&att, TCA_CHANGE_DEVICE_ATTEMPT, NULL, "beta", "dev-9");
	att.chg.max_failures = 1;
	ck_assert_int_eq(both1(&att), TCA_OK);
	ck_assert_uint_eq(att.chg.device_failures, 1);
	tc_dev(&fail, TCA_CHANGE_DEVICE_FAILURE, "device-locked", "beta", "dev-9");
	fail.chg.max_failures = 1;
	ck_assert_int_eq(both1(&fail), TCA_OK);
	ck_assert_int_eq(fail.chg.device_locked, 1);
	ck_assert_int_eq(both1(&att), TCA_ERR_CREDENTIAL_REFUSED);
	tc_dev(&reg2, TCA_CHANGE_DEVICE_REGISTER, "device-register", "beta", "dev-8");
	reg2.chg.secret = secret;
	ck_assert_int_eq(both1(&reg2), TCA_OK);
	tc_dev(&att2, TCA_CHANGE_DEVICE_ATTEMPT, NULL, "beta", "dev-8");
	att2.chg.max_failures = 3;
	ck_assert_int_eq(both1(&att2), TCA_OK);
	tc_dev(&rel, TCA_CHANGE_DEVICE_RELEASE, NULL, "beta", "dev-8");
	ck_assert_int_eq(both1(&rel), TCA_OK);
	ck_assert_int_eq(both1(&att2), TCA_OK);
	tc_issue(&cons, "beta", "dev-8");
	cons.chg.consume_secret = "wrong";
	ck_assert_int_eq(both1(&cons), TCA_ERR_CREDENTIAL_REFUSED);
	tc_issue(&cons, "beta", "dev-8");
	cons.chg.consume_secret = secret;
	ck_assert_int_eq(both1(&cons), TCA_OK);
	ck_assert_int_eq(both1(&cons), TCA_ERR_ALREADY_EXISTS);
	tc_dev(&unreg, TCA_CHANGE_DEVICE_UNREGISTER, "device-unregister", "beta", "dev-9");
	ck_assert_int_eq(both1(&unreg), TCA_OK);
	tc_dev(&unreg2, TCA_CHANGE_DEVICE_UNREGISTER, "device-unregister", "beta", "dev-9");
	ck_assert_int_eq(both1(&unreg2), TCA_ERR_NOT_FOUND);
	/* a batch mixing a good change, a duplicate, a missing CA and a
	 * malformed change: each fails alone (savepoints) */
	tc_issue(&i1, "beta", "dev-3");
	tc_ca_create(&dup, "beta");
	tc_issue(&noca, "nobody", "dev-4");
	tc_issue(&bad, "beta", "dev-5");
	bad.ci.serial_len = 0;
	batch[0] = &i1;
	batch[1] = &dup;
	batch[2] = &noca;
	batch[3] = &bad;
	ck_assert_int_eq(commit_n(sq, batch, 4, res2), TCA_OK);
	ck_assert_int_eq(commit_n(st, batch, 4, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(res[2], TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(res[3], TCA_ERR_INVALID_ARG);
	ck_assert_mem_eq(res, res2, sizeof(res));
	tc_base(&del, TCA_CHANGE_CA_DELETE, "ca-delete", "gone");
	ck_assert_int_eq(both1(&del), TCA_OK);
	ck_assert_int_eq(both1(&del), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(journal_count(st), journal_count(sq));
	verify_ok(st, (uint64_t)journal_count(sq), NULL);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT seq FROM journal_head"),
	    journal_count(sq));
	assert_same_stores(tenants, 3);
	{
		uint64_t problems = 1, certs = 0, sq_problems = 1, sq_certs = 0;
		char why[512] = "";

		ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, NULL, NULL,
		    &problems, &certs), TCA_OK);
		ck_assert_int_eq(tca_journal_crosscheck(sq, TCA_XC_DER, NULL, NULL,
		    &sq_problems, &sq_certs), TCA_OK);
		ck_assert_uint_eq(problems, 0);
		ck_assert_uint_eq(certs, 9);	/* 4 CA certificates, 5 devices */
		ck_assert_uint_eq(certs, sq_certs);
		ck_assert_msg(tca_journal_check_start(st, "pg", why, sizeof(why)) == TCA_OK,
		    "%s", why);
	}
}
END_TEST

/* /store-pg/uniqueness: one active CA per tenant; (issuer, serial) unique
 * with the CA re-issue exception - as on SQLite */
START_TEST(test_uniqueness)
{
	static const char *const tenants[] = { "acme", "beta" };
	struct tchange a1, a2, b1, d1, d2, r1, r2, c2;
	struct tchange *batch[2];
	int res[2];

	tc_ca_create(&a1, "acme");
	tc_ca_create(&a2, "acme");
	batch[0] = &a1;
	batch[1] = &a2;
	ck_assert_int_eq(commit_n(st, batch, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(commit_n(sq, batch, 2, res), TCA_OK);
	/* the database itself refuses a second active CA */
	sql_fails("INSERT INTO cas (ca_id, tenant, status, key_type, key_id, created_at)"
	    " VALUES (99, 'acme', 'active', 'x', '\\x01', 0)", "cas_one_active");
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(both1(&d1), TCA_OK);
	/* the same device serial again */
	tc_issue(&d2, "acme", "dev-2");
	memcpy(d2.ci.serial, d1.ci.serial, d1.ci.serial_len);
	ck_assert_int_eq(both1(&d2), TCA_ERR_ALREADY_EXISTS);
	/* a device certificate reusing the CA certificate's serial */
	tc_issue(&d2, "acme", "dev-2");
	memcpy(d2.ci.serial, a1.ci.serial, a1.ci.serial_len);
	ck_assert_int_eq(both1(&d2), TCA_ERR_ALREADY_EXISTS);
	/* a re-issue keeping the serial is fine; the identical one is not */
	tc_reissue(&r1, "acme", a1.ci.sha256, &a1.ci, "reissue");
	ck_assert_int_eq(both1(&r1), TCA_OK);
	tc_reissue(&r2, "acme", r1.ci.sha256, &a1.ci, "reissue");
	memcpy(r2.der, r1.der, sizeof(r1.der));
	memcpy(r2.ci.sha256, r1.ci.sha256, 32);
	ck_assert_int_eq(both1(&r2), TCA_ERR_ALREADY_EXISTS);
	/* a re-issue reusing a device's serial */
	tc_reissue(&r2, "acme", r1.ci.sha256, &d1.ci, "reissue");
	ck_assert_int_eq(both1(&r2), TCA_ERR_ALREADY_EXISTS);
	/* another CA under the same issuer name with the first one's serial */
	tc_base(&c2, TCA_CHANGE_CA_DELETE, "ca-delete", "acme");
	ck_assert_int_eq(both1(&c2), TCA_OK);
	tc_ca_create(&b1, "acme");
	memcpy(b1.ci.serial, a1.ci.serial, a1.ci.serial_len);
	ck_assert_int_eq(both1(&b1), TCA_ERR_ALREADY_EXISTS);
	tc_ca_create(&b1, "acme");
	ck_assert_int_eq(both1(&b1), TCA_OK);
	tc_ca_create(&b1, "beta");
	ck_assert_int_eq(both1(&b1), TCA_OK);
	verify_ok(st, (uint64_t)journal_count(sq), NULL);
	assert_same_stores(tenants, 2);
}
END_TEST

/* /store-pg/append-only: the database refuses UPDATE, DELETE and TRUNCATE
 * of the journal, certificates and revocations, and a head that does not
 * match the journal */
START_TEST(test_append_only)
{
	struct tchange ca, d1, rv;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_revoke(&rv, "acme", &d1.ci, 1, T_NOW + 60);
	ck_assert_int_eq(commit1(st, &rv), TCA_OK);
	sql_fails("UPDATE journal SET details = 'x' WHERE seq = 1", "journal is append-only");
	sql_fails("DELETE FROM journal WHERE seq = 3", "journal is append-only");
	sql_fails("TRUNCATE journal", "journal is append-only");
	sql_fails("TRUNCATE journal CASCADE", "append-only");
	sql_fails("DELETE FROM certificates", "certificate history is append-only");
	sql_fails("TRUNCATE certificates CASCADE", "append-only");
	sql_fails("UPDATE revocations SET reason = 0", "revocation is irreversible");
	sql_fails("DELETE FROM revocations", "revocation is irreversible");
	sql_fails("UPDATE journal_head SET seq = 2", "journal head");
	sql_fails("UPDATE journal_head SET seq = 3, hash = decode(repeat('00', 32), 'hex')",
	    "journal head");
	sql_fails("DELETE FROM journal_head", "never deleted");
	ck_assert_int_eq(journal_count(st), 3);
	verify_ok(st, 3, NULL);
}
END_TEST

/* /store-pg/bad-encoding: journal text is stored as bytes (any details
 * round-trip and hash as given); other text the database cannot store (not
 * UTF-8) refuses its change alone (INVALID_ARG); the batch commits */
START_TEST(test_bad_encoding)
{
	struct tchange ca, d1, d2, *batch[2];
	int res[2];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	/* a device id in Latin-1, not UTF-8: the certificates table's text */
	snprintf(d1.device, sizeof(d1.device), "caf\xe9");
	tc_issue(&d2, "acme", "dev-2");
	/* journal text is bytes: any details are recorded as they are */
	d2.chg.details = "line1\nline2\t\x01 bad-utf8:\xff ok-utf8:\xc3\xa9";
	batch[0] = &d1;
	batch[1] = &d2;
	ck_assert_int_eq(commit_n(st, batch, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(d1.chg.journal_seq, 0);
	ck_assert_int_eq(d2.chg.journal_seq, 2);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 2);
	verify_ok(st, 2, NULL);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM journal WHERE details ="
	    " '\\x6c696e65310a6c696e65320901206261642d757466383aff206f6b2d757466383ac3a9'"), 1);
}
END_TEST

/* /store-pg/guards-restored: a dropped, a disabled and an altered trigger
 * and an unknown one are repaired at the next read-write open */
START_TEST(test_guards_restored)
{
	tca_store *again = NULL;
	struct tchange ca;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	sql_ok("DROP TRIGGER journal_no_update ON journal;"
	    "ALTER TABLE journal DISABLE TRIGGER journal_no_delete;"
	    "DROP INDEX cas_one_active;"
	    "CREATE OR REPLACE FUNCTION tca_refuse() RETURNS trigger LANGUAGE plpgsql"
	    " AS $$ BEGIN RETURN NULL; END $$;"
	    "CREATE FUNCTION evil() RETURNS trigger LANGUAGE plpgsql"
	    " AS $$ BEGIN RETURN NEW; END $$;"
	    "CREATE TRIGGER evil BEFORE INSERT ON journal FOR EACH ROW"
	    " EXECUTE FUNCTION evil()");
	/* unguarded now: the journal can be edited */
	sql_ok("UPDATE journal SET details = details WHERE seq = 1");
	open_pg(&again, 0);
	again->ops->close(again);
	sql_fails("UPDATE journal SET details = 'x' WHERE seq = 1", "journal is append-only");
	sql_fails("DELETE FROM journal", "journal is append-only");
	sql_fails("TRUNCATE certificates CASCADE", "append-only");
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM pg_trigger"
	    " WHERE tgname = 'evil'"), 0);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM pg_indexes"
	    " WHERE indexname = 'cas_one_active'"), 1);
	verify_ok(st, 1, NULL);
}
END_TEST

/* /store-pg/tamper-detected: what the guards cannot stop (a superuser
 * disabling the triggers) the chain and the cross-check find, and the next
 * read-write open restores the guards */
START_TEST(test_tamper_detected)
{
	struct tchange ca, d1, d2;
	uint64_t count = 0, problems = 0, certs = 0;
	int64_t bad = 0;
	tca_store *again = NULL;
	char why[256];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);
	sql_ok("ALTER TABLE journal DISABLE TRIGGER USER;"
	    "ALTER TABLE certificates DISABLE TRIGGER USER;"
	    "UPDATE journal SET subject = 'CN=evil'::bytea WHERE seq = 2;"
	    "DELETE FROM certificates WHERE cert_id = 3");
	ck_assert_int_eq(tca_journal_verify(st, &count, &bad, NULL, why, sizeof(why)),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_int_eq(bad, 2);
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, NULL, NULL, &problems,
	    &certs), TCA_ERR_POLICY_VIOLATION);
	ck_assert_uint_ge(problems, 1);
	open_pg(&again, 0);
	again->ops->close(again);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM pg_trigger t"
	    " JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname IN ('journal',"
	    " 'certificates') AND NOT t.tgisinternal AND t.tgenabled = 'O'"), 6);
	sql_fails("DELETE FROM journal", "journal is append-only");
}
END_TEST

/* /store-pg/large-walk: the cursor walks go past one FETCH, and a callback
 * may call the store */
struct walk_check {
	tca_store *s;
	int64_t n, next;
};

static int
walk_cb(void *ctx, const struct tca_journal_record *rec)
{
	struct walk_check *w = ctx;
	struct tca_ca_row row;

	ck_assert_int_eq(rec->seq, w->next);
	w->next++;
	w->n++;
	if (rec->seq % 997 == 0) {
		ck_assert_int_eq(w->s->ops->get_ca(w->s, "acme", &row), TCA_OK);
		tca_ca_row_clear(&row);
		ck_assert_int_eq(journal_count(w->s) >= rec->seq, 1);
	}
	return 0;
}

START_TEST(test_large_walk)
{
	struct tchange *tc, *batch[50];
	struct walk_check w;
	double t0, t_pg = 0, t_sq = 0;
	int res[50], i, b;

	ck_assert_ptr_nonnull(tc = calloc(2500, sizeof(*tc)));
	tc_ca_create(&tc[0], "acme");
	ck_assert_int_eq(commit1(st, &tc[0]), TCA_OK);
	ck_assert_int_eq(commit1(sq, &tc[0]), TCA_OK);
	for (b = 0; b < 50; b++) {
		for (i = 0; i < 50; i++) {
			if (b * 50 + i == 0)
				tc_issue(&tc[2499], "acme", "dev-x");
			tc_issue(&tc[b * 50 + i], "acme", "dev");
			batch[i] = &tc[b * 50 + i];
		}
		if (b == 0)
			batch[0] = &tc[2499];
		t0 = pgtest_now();
		ck_assert_int_eq(commit_n(st, batch, 50, res), TCA_OK);
		t_pg += pgtest_now() - t0;
		for (i = 0; i < 50; i++)
			ck_assert_int_eq(res[i], TCA_OK);
		t0 = pgtest_now();
		ck_assert_int_eq(commit_n(sq, batch, 50, res), TCA_OK);
		t_sq += pgtest_now() - t0;
	}
	/* a measurement for the log, not asserted */
	fprintf(stderr, "check_store_pg: 2500 certificates in 50 batches of 50: "
	    "PostgreSQL %.3f s (%.1f ms a batch), SQLite %.3f s (%.1f ms a batch)\n",
	    t_pg, t_pg * 1000 / 50, t_sq, t_sq * 1000 / 50);
	w.s = st;
	w.n = 0;
	w.next = 1;
	ck_assert_int_eq(st->ops->journal_foreach(st, 1, walk_cb, &w), TCA_OK);
	ck_assert_int_eq(w.n, 2501);
	w.n = 0;
	w.next = 2000;
	ck_assert_int_eq(st->ops->journal_foreach(st, 2000, walk_cb, &w), TCA_OK);
	ck_assert_int_eq(w.n, 502);
	verify_ok(st, 2501, NULL);
	free(tc);
}
END_TEST

/* /store-pg/two-nodes: two store handles ("nodes") committing at once from
 * two threads: one chain, every record once, no fork */
#define NODE_BATCHES 40
#define NODE_BATCH 5

struct node {
	pthread_t th;
	tca_store *s;
	const char *tenant;
	int ok;
};

static void *
node_main(void *arg)
{
	struct node *n = arg;
	struct tchange *tc = calloc(NODE_BATCHES * NODE_BATCH, sizeof(*tc));
	struct tchange *batch[NODE_BATCH];
	int res[NODE_BATCH], b, i;

	if (tc == NULL)
		return NULL;
	for (b = 0; b < NODE_BATCHES; b++) {
		for (i = 0; i < NODE_BATCH; i++) {
			tc_issue(&tc[b * NODE_BATCH + i], n->tenant, "dev");
			batch[i] = &tc[b * NODE_BATCH + i];
		}
		if (commit_n(n->s, batch, NODE_BATCH, res) != TCA_OK)
			break;
		for (i = 0; i < NODE_BATCH; i++)
			if (res[i] == TCA_OK)
				n->ok++;
	}
	free(tc);
	return NULL;
}

START_TEST(test_two_nodes)
{
	struct node nodes[2];
	struct tchange ca1, ca2;
	int i;

	tc_ca_create(&ca1, "acme");
	ck_assert_int_eq(commit1(st, &ca1), TCA_OK);
	tc_ca_create(&ca2, "beta");
	ck_assert_int_eq(commit1(st, &ca2), TCA_OK);
	for (i = 0; i < 2; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		open_pg(&nodes[i].s, TCA_STORE_EXCLUSIVE);
		nodes[i].tenant = i == 0 ? "acme" : "beta";
	}
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&nodes[i].th, NULL, node_main, &nodes[i]), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(nodes[i].th, NULL), 0);
		ck_assert_int_eq(nodes[i].ok, NODE_BATCHES * NODE_BATCH);
		nodes[i].s->ops->close(nodes[i].s);
	}
	verify_ok(st, 2 + 2 * NODE_BATCHES * NODE_BATCH, NULL);
	/* every certificate once, every record once, the two interleaved */
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(DISTINCT fingerprint_hex)"
	    " FROM journal WHERE op = 'issue'"), 2 * NODE_BATCHES * NODE_BATCH);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"
	    " WHERE kind = 'device'"), 2 * NODE_BATCHES * NODE_BATCH);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT max(seq) FROM journal"),
	    2 + 2 * NODE_BATCHES * NODE_BATCH);
}
END_TEST

/* Terminates the writer's server process from another connection. */
static void
kill_writer(tca_store *s)
{
	char sql[128];
	int pid = tca_store_postgresql_writer_pid(s);

	ck_assert_int_gt(pid, 0);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	sql_ok(sql);
}

/* /store-pg/terminated: the writer's connection killed between batches:
 * the next batch reconnects and commits transparently, once; with retries
 * off it is refused, typed, and the store works again after */
START_TEST(test_terminated)
{
	struct tchange ca, d1, d2, d3;
	char why[512];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	kill_writer(st);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	ck_assert_int_eq(d1.chg.journal_seq, 2);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_OK);
	/* one try only: refused, every result typed */
	ck_assert_int_eq(tca_store_postgresql_set_retry(st, 1, 0), TCA_OK);
	kill_writer(st);
	tc_issue(&d2, "acme", "dev-2");
	{
		struct tca_change *c = &d2.chg;
		int res = 0;

		ck_assert_int_eq(st->ops->commit(st, &c, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_int_eq(d2.chg.journal_seq, 0);
	}
	/* the last call failed: health looks (and reconnects) */
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_OK);
	tc_issue(&d3, "acme", "dev-3");
	ck_assert_int_eq(commit1(st, &d3), TCA_OK);
	ck_assert_int_eq(journal_count(st), 3);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 3);
	verify_ok(st, 3, NULL);
}
END_TEST

/* /store-pg/database-down: with the server stopped, commits and reads
 * fail typed (JOURNAL_UNAVAILABLE, every result), health says why; once it
 * is back, the same store works again and nothing was lost or doubled */
START_TEST(test_database_down)
{
	struct tchange ca, d1, d2;
	struct tca_ca_row row;
	struct tca_change *c;
	char why[512] = "";
	int res = 0;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	ck_assert_int_eq(tca_store_postgresql_set_retry(st, 2, 10), TCA_OK);
	ck_assert_int_eq(pgtest_halt(&cluster), 0);
	tc_issue(&d1, "acme", "dev-1");
	c = &d1.chg;
	ck_assert_int_eq(st->ops->commit(st, &c, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(d1.chg.journal_seq, 0);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(why, "unreachable") != NULL && strstr(why, "dbname=") != NULL,
	    "%s", why);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(journal_count_r(st), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(pgtest_resume(&cluster), 0);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	tca_ca_row_clear(&row);
	/* the refused change is sent again, as the engine's client would */
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);
	ck_assert_int_eq(d2.chg.journal_seq, 3);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 3);
	verify_ok(st, 3, NULL);
}
END_TEST

/* /store-pg/commit-reply-lost: COMMIT ran but its reply was lost: the
 * outcome check finds the batch's last record and answers TCA_OK; nothing
 * is committed twice */
START_TEST(test_commit_reply_lost)
{
	struct tchange ca, d[3], *batch[3];
	int res[3], i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	for (i = 0; i < 3; i++) {
		tc_issue(&d[i], "acme", "dev");
		batch[i] = &d[i];
	}
	ck_assert_int_eq(tca_store_postgresql_set_fault(st, TCA_PG_FAULT_LOSE_COMMIT_REPLY),
	    TCA_OK);
	ck_assert_int_eq(commit_n(st, batch, 3, res), TCA_OK);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(res[i], TCA_OK);
		ck_assert_int_eq(d[i].chg.journal_seq, 2 + i);
	}
	ck_assert_int_eq(journal_count(st), 4);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 4);
	verify_ok(st, 4, NULL);
}
END_TEST

/* Reads a whole small file into buf (NUL-terminated). */
static void
slurp(const char *path, char *buf, size_t buflen)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(fp);
	n = fread(buf, 1, buflen - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

/* /store-pg/commit-unknown: COMMIT ran, its reply was lost and the
 * database stays unreachable for the whole wait: the batch is answered
 * JOURNAL_UNAVAILABLE marked outcome_unknown (never "nothing committed"),
 * and once the database is back the next commit logs that it did commit */
START_TEST(test_commit_unknown)
{
	struct tchange ca, d, e2;
	char logpath[PATH_MAX + 16], log[8192];
	struct tchange *pe2 = &e2, *pd;
	int saved, fd, r, res = 0;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d, "acme", "dev-1");
	ck_assert_int_eq(tca_store_postgresql_set_resolve_wait(st, 200), TCA_OK);
	ck_assert_int_eq(tca_store_postgresql_set_fault(st,
	    TCA_PG_FAULT_LOSE_COMMIT_REPLY_OFFLINE), TCA_OK);
	pd = &d;
	res = 0;
	ck_assert_int_eq(commit_n(st, &pd, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(d.chg.outcome_unknown, 1);
	ck_assert_int_eq(d.chg.journal_seq, 0);
	/* it did commit: recorded, not returned */
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 2);

	/* the next commit finds out, and says so */
	snprintf(logpath, sizeof(logpath), "%s/stderr.log", tmpdir);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)), 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
	tc_issue(&e2, "acme", "dev-2");
	r = commit_n(st, &pe2, 1, &res);
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	slurp(logpath, log, sizeof(log));
	ck_assert_msg(r == TCA_OK && res == TCA_OK, "commit %d/%d; log: %s", r, res, log);
	ck_assert_int_eq(e2.chg.outcome_unknown, 0);
	ck_assert_int_eq(e2.chg.journal_seq, 3);
	ck_assert_msg(strstr(log, "DID commit") != NULL && strstr(log, "serial") != NULL,
	    "log: %s", log);
	/* and only once */
	tc_issue(&e2, "acme", "dev-3");
	ck_assert_int_eq(commit1(st, &e2), TCA_OK);

	/* a lost reply the check resolves is not unknown */
	tc_issue(&d, "acme", "dev-4");
	ck_assert_int_eq(tca_store_postgresql_set_fault(st, TCA_PG_FAULT_LOSE_COMMIT_REPLY),
	    TCA_OK);
	ck_assert_int_eq(commit1(st, &d), TCA_OK);
	ck_assert_int_eq(d.chg.outcome_unknown, 0);
	verify_ok(st, 5, NULL);
}
END_TEST

/* /store-pg/cut-before-commit: the connection cut before COMMIT: the check
 * finds the batch not committed and it is run again, committed once */
START_TEST(test_cut_before_commit)
{
	struct tchange ca, d[2], *batch[2];
	int res[2];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d[0], "acme", "dev-1");
	tc_issue(&d[1], "acme", "dev-2");
	batch[0] = &d[0];
	batch[1] = &d[1];
	ck_assert_int_eq(tca_store_postgresql_set_fault(st, TCA_PG_FAULT_CUT_BEFORE_COMMIT),
	    TCA_OK);
	ck_assert_int_eq(commit_n(st, batch, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(d[1].chg.journal_seq, 3);
	ck_assert_int_eq(journal_count(st), 3);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 3);
	verify_ok(st, 3, NULL);
}
END_TEST

/* /store-pg/bookkeeping-unknown: a lost COMMIT reply of bookkeeping only:
 * renewal state (repeatable) is retried and applied; a password attempt
 * (counting, not repeatable) is answered JOURNAL_UNAVAILABLE - and stays
 * counted */
START_TEST(test_bookkeeping_unknown)
{
	struct tchange ca, rs, reg, att;
	struct tca_device_row row;
	struct tca_ca_row car;
	struct tca_change *c;
	int res;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_state(&rs, TCA_CHANGE_RENEWAL_STATE, "acme", "token away", 4);
	ck_assert_int_eq(tca_store_postgresql_set_fault(st, TCA_PG_FAULT_LOSE_COMMIT_REPLY),
	    TCA_OK);
	ck_assert_int_eq(commit1(st, &rs), TCA_OK);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &car), TCA_OK);
	ck_assert_uint_eq(car.renewal.attempts, 4);
	tca_ca_row_clear(&car);
	tc_dev(&reg, TCA_CHANGE_DEVICE_REGISTER, "device-register", "acme", "dev-1");
	reg.chg.secret = "$s$x";
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_dev(&att, TCA_CHANGE_DEVICE_ATTEMPT, NULL, "acme", "dev-1");
	att.chg.max_failures = 5;
	ck_assert_int_eq(tca_store_postgresql_set_fault(st, TCA_PG_FAULT_LOSE_COMMIT_REPLY),
	    TCA_OK);
	c = &att.chg;
	ck_assert_int_eq(st->ops->commit(st, &c, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(st->ops->device_get(st, "acme", "dev-1", &row), TCA_OK);
	ck_assert_uint_eq(row.failures, 1);
	/* and the store goes on */
	ck_assert_int_eq(commit1(st, &att), TCA_OK);
	ck_assert_uint_eq(att.chg.device_failures, 2);
	verify_ok(st, 2, NULL);
}
END_TEST

/* /store-pg/server-restart: the server restarted between batches (every
 * connection dropped): commits and reads recover without the caller
 * noticing */
START_TEST(test_server_restart)
{
	struct tchange ca, d1;
	struct tca_ca_row row;
	char why[512];
	double t0;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	tca_ca_row_clear(&row);
	t0 = pgtest_now();
	ck_assert_int_eq(pgtest_restart(&cluster), 0);
	fprintf(stderr, "check_store_pg: pg_ctl restart took %.3f s\n", pgtest_now() - t0);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	tca_ca_row_clear(&row);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_OK);
	verify_ok(st, 2, NULL);
}
END_TEST

/*
 * Mid-batch faults, deterministic: a third connection holds an ACCESS
 * EXCLUSIVE lock on devices, so the writer stops inside its batch at the
 * change that registers a device - after 30 certificates were written in
 * the same transaction, while it holds the journal head.  Once the writer
 * is seen waiting for that lock, it is terminated (or the whole server
 * restarted), then the lock is let go.
 */
struct blocker {
	pthread_t th;
	PGconn *conn;
	int writer_pid;
	int restart;		/* restart the server instead of terminating */
	int deadlock;		/* close a lock cycle instead of terminating */
	int hit;		/* the writer was caught waiting and hit */
};

static long long
conn_int(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	long long v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void *
blocker_main(void *arg)
{
	struct blocker *b = arg;
	char sql[256];
	int i;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d"
	    " AND wait_event_type = 'Lock'", b->writer_pid);
	/* generous: up to 60 s for the writer to reach the lock */
	for (i = 0; i < 6000; i++) {
		if (conn_int(b->conn, sql) == 1)
			break;
		usleep(10000);
	}
	if (i == 6000)
		return NULL;
	if (b->deadlock) {
		/* the writer holds journal_head and waits for devices, which we
		 * hold: wanting journal_head closes the cycle.  Our detector
		 * waits 60 s, the writer's 1 s: the writer is the one aborted
		 * (40P01), and we get the head once it rolled back */
		b->hit = conn_int(b->conn, "SELECT seq FROM journal_head FOR UPDATE") >= 0;
		PQclear(PQexec(b->conn, "COMMIT"));
		return NULL;
	}
	if (b->restart) {
		/* drops every session, ours (and its lock) included */
		b->hit = pgtest_restart(&cluster) == 0;
		return NULL;
	}
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)::int", b->writer_pid);
	b->hit = conn_int(b->conn, sql) == 1;
	PQclear(PQexec(b->conn, "COMMIT"));
	return NULL;
}

static void
mid_batch(int restart, int deadlock)
{
	struct tchange ca, *d, *batch[61];
	struct blocker b;
	PGresult *res;
	int results[61], i, r;

	ck_assert_ptr_nonnull(d = calloc(61, sizeof(*d)));
	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	for (i = 0; i < 61; i++) {
		if (i == 30) {
			tc_dev(&d[i], TCA_CHANGE_DEVICE_REGISTER, "device-register", "acme",
			    "dev-reg");
			d[i].chg.secret = "$s$x";
		} else
			tc_issue(&d[i], "acme", "dev");
		batch[i] = &d[i];
	}
	/* a restart may take a while under load: try for up to ~30 s */
	ck_assert_int_eq(tca_store_postgresql_set_retry(st, 20, 100), TCA_OK);
	memset(&b, 0, sizeof(b));
	b.restart = restart;
	b.deadlock = deadlock;
	b.writer_pid = tca_store_postgresql_writer_pid(st);
	ck_assert_int_gt(b.writer_pid, 0);
	b.conn = PQconnectdb(conninfo);
	ck_assert_int_eq(PQstatus(b.conn), CONNECTION_OK);
	res = PQexec(b.conn, "SET deadlock_timeout = '60s'; BEGIN;"
	    " LOCK TABLE devices IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	ck_assert_int_eq(pthread_create(&b.th, NULL, blocker_main, &b), 0);
	r = commit_n(st, batch, 61, results);
	ck_assert_int_eq(pthread_join(b.th, NULL), 0);
	PQfinish(b.conn);
	ck_assert_msg(b.hit, "the writer was never seen waiting inside its batch");
	/* retried transparently: everything once */
	ck_assert_int_eq(r, TCA_OK);
	for (i = 0; i < 61; i++)
		ck_assert_int_eq(results[i], TCA_OK);
	ck_assert_int_eq(d[60].chg.journal_seq, 62);
	ck_assert_int_eq(journal_count(st), 62);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM certificates"), 61);
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM devices"), 1);
	verify_ok(st, 62, NULL);
	if (deadlock)
		ck_assert_int_ge(pgtest_int(conninfo, "SELECT deadlocks FROM pg_stat_database"
		    " WHERE datname = current_database()"), 1);
	free(d);
}

/* /store-pg/kill-mid-batch: the writer terminated inside its batch */
START_TEST(test_kill_mid_batch)
{
	mid_batch(0, 0);
}
END_TEST

/* /store-pg/restart-mid-batch: the server restarted under a batch */
START_TEST(test_restart_mid_batch)
{
	mid_batch(1, 0);
}

/* /store-pg/deadlock: the writer chosen as a deadlock's victim (40P01)
 * inside its batch: retried, everything once */
START_TEST(test_deadlock)
{
	mid_batch(0, 1);
}
END_TEST

/*
 * /store-pg/failover: a streaming standby promoted after the primary
 * stopped; the store's conninfo names both (target_session_attrs =
 * read-write): the next batch lands on the new primary, the chain goes on
 * there without a fork, nothing lost or doubled.
 */
START_TEST(test_failover)
{
	struct pgtest_cluster sb;
	struct tchange ca, d[3];
	char ci[3 * PATH_MAX], sql[256], sb_ci[PATH_MAX + 128], *dbname;
	char lsn[64] = "";
	tca_store *fo = NULL;
	double t0;
	PGresult *res;
	PGconn *p;
	int i;

	/* the test's database, on the primary and (copied) on the standby */
	dbname = strstr(conninfo, "dbname=");
	ck_assert_ptr_nonnull(dbname);
	pgtest_start_standby(&sb, &cluster);
	snprintf(ci, sizeof(ci), "host=%s,%s port=5432,5432 %.*s user=postgres"
	    " target_session_attrs=read-write", cluster.dir, sb.dir,
	    (int)strcspn(dbname, " "), dbname);
	snprintf(sb_ci, sizeof(sb_ci), "host=%s port=5432 %.*s user=postgres", sb.dir,
	    (int)strcspn(dbname, " "), dbname);
	{
		char err[512];

		ck_assert_msg(tca_store_open_postgresql(ci, 0, &fo, err, sizeof(err)) ==
		    TCA_OK, "%s", err);
	}
	ck_assert_int_eq(tca_store_postgresql_set_retry(fo, 20, 100), TCA_OK);
	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(fo, &ca), TCA_OK);
	tc_issue(&d[0], "acme", "dev-0");
	ck_assert_int_eq(commit1(fo, &d[0]), TCA_OK);
	/* wait until the standby has replayed all of it (bounded) */
	p = PQconnectdb(conninfo);
	ck_assert_int_eq(PQstatus(p), CONNECTION_OK);
	res = PQexec(p, "SELECT pg_current_wal_lsn()::text");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	snprintf(lsn, sizeof(lsn), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(p);
	snprintf(sql, sizeof(sql), "SELECT (pg_last_wal_replay_lsn() >= '%s')::int", lsn);
	for (i = 0; i < 600 && pgtest_int(sb_ci, sql) != 1; i++)
		usleep(100000);
	ck_assert_int_lt(i, 600);
	ck_assert_int_eq(pgtest_int(sb_ci, "SELECT count(*) FROM journal"), 2);
	/* the primary goes away, the standby takes over */
	ck_assert_int_eq(pgtest_halt(&cluster), 0);
	ck_assert_int_eq(pgtest_promote(&sb), 0);
	t0 = pgtest_now();
	tc_issue(&d[1], "acme", "dev-1");
	ck_assert_int_eq(commit1(fo, &d[1]), TCA_OK);
	fprintf(stderr, "check_store_pg: standby made in %.3f s; the first commit "
	    "after the failover took %.3f s\n", sb.start_s, pgtest_now() - t0);
	ck_assert_int_eq(d[1].chg.journal_seq, 3);
	tc_issue(&d[2], "acme", "dev-2");
	ck_assert_int_eq(commit1(fo, &d[2]), TCA_OK);
	verify_ok(fo, 4, NULL);
	ck_assert_int_eq(pgtest_int(sb_ci, "SELECT count(*) FROM certificates"), 4);
	ck_assert_int_eq(pgtest_int(sb_ci, "SELECT seq FROM journal_head"), 4);
	fo->ops->close(fo);
	pgtest_stop(&sb);
	/* the old primary comes back on its own (the next test's setup would
	 * too) */
	ck_assert_int_eq(pgtest_resume(&cluster), 0);
}
END_TEST

/* /store-pg/timings: what a cluster and a database cost (CI budget) */
START_TEST(test_timings)
{
	fprintf(stderr, "check_store_pg: cluster start (initdb + pg_ctl start) %.3f s, "
	    "CREATE DATABASE for this test %.3f s\n", cluster.start_s, createdb_s);
}
END_TEST

/* ------------------------------------------------ leadership */

static int
lead1(tca_store *s, char *why, size_t whylen)
{
	int lead = -1;

	ck_assert_int_eq(s->ops->leader(s, "scheduler", &lead, why, whylen), TCA_OK);
	ck_assert(lead == 0 || lead == 1);
	return lead;
}

/* Polls s for leadership of "scheduler" for up to 20 s (the server ends a
 * closed or terminated session asynchronously). */
static int
wait_lead(tca_store *s, double *waited_ptr)
{
	char why[512];
	double t0 = pgtest_now();
	int i;

	for (i = 0; i < 400; i++) {
		if (lead1(s, why, sizeof(why))) {
			if (waited_ptr != NULL)
				*waited_ptr = pgtest_now() - t0;
			return 1;
		}
		usleep(50000);
	}
	return 0;
}

/*
 * /store-pg/leader-two: of two handles on one database one leads, the other
 * does not, call after call; opening a store meanwhile (the schema check's
 * advisory transaction lock) is not blocked by the leader's lock; the
 * leader's handle closed, the other leads on a next call.
 */
START_TEST(test_leader_two)
{
	tca_store *b = NULL, *c = NULL;
	char why[512];
	double waited = 0;
	int i;

	open_pg(&b, TCA_STORE_EXCLUSIVE);
	ck_assert_int_eq(lead1(st, why, sizeof(why)), 1);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(lead1(b, why, sizeof(why)), 0);
		ck_assert_int_eq(lead1(st, why, sizeof(why)), 1);
	}
	ck_assert_int_gt(tca_store_postgresql_leader_pid(st), 0);
	/* one session lock, in the two-int4 key space, held by st's session */
	ck_assert_int_eq(pgtest_int(conninfo, "SELECT count(*) FROM pg_locks"
	    " WHERE locktype = 'advisory' AND granted AND objsubid = 2"
	    " AND classid = 1413693745"), 1);
	open_pg(&c, 0);	/* the schema check's lock is another key */
	ck_assert_int_eq(lead1(c, why, sizeof(why)), 0);
	c->ops->close(c);
	st->ops->close(st);
	st = NULL;
	ck_assert_msg(wait_lead(b, &waited), "the other handle never led");
	fprintf(stderr, "leader-two: the other handle led %.3f s after the close\n", waited);
	ck_assert_int_eq(lead1(b, why, sizeof(why)), 1);
	b->ops->close(b);
}
END_TEST

/*
 * /store-pg/leader-terminated: the leader's session terminated by the
 * server (pg_terminate_backend): the other handle takes over; the old
 * leader's next call says it is no longer the leader (and why), the call
 * after reconnects and stays a standby; the writer was not touched.
 */
START_TEST(test_leader_terminated)
{
	tca_store *b = NULL;
	char sql[128], why[512];
	double waited = 0;
	int pid, wpid;

	open_pg(&b, TCA_STORE_EXCLUSIVE);
	ck_assert_int_eq(lead1(st, why, sizeof(why)), 1);
	ck_assert_int_eq(lead1(b, why, sizeof(why)), 0);
	pid = tca_store_postgresql_leader_pid(st);
	wpid = tca_store_postgresql_writer_pid(st);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_ne(pid, wpid);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	sql_ok(sql);
	ck_assert_msg(wait_lead(b, &waited), "the other handle never took over");
	fprintf(stderr, "leader-terminated: taken over %.3f s after the kill\n", waited);
	why[0] = '\0';
	ck_assert_int_eq(lead1(st, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "lost") != NULL, "why: \"%s\"", why);
	ck_assert_int_eq(tca_store_postgresql_leader_pid(st), 0);
	ck_assert_int_eq(lead1(st, why, sizeof(why)), 0);	/* reconnected: standby */
	ck_assert_int_gt(tca_store_postgresql_leader_pid(st), 0);
	ck_assert_int_ne(tca_store_postgresql_leader_pid(st), pid);
	ck_assert_int_eq(lead1(b, why, sizeof(why)), 1);
	ck_assert_int_eq(tca_store_postgresql_writer_pid(st), wpid);
	/* and back when b goes */
	b->ops->close(b);
	ck_assert_msg(wait_lead(st, NULL), "the old leader never led again");
}
END_TEST

static Suite *
pg_suite(void)
{
	Suite *s = suite_create("store-postgresql");
	TCase *tc;

	tc = tcase_create("schema");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_timings);
	tcase_add_test(tc, test_schema);
	tcase_add_test(tc, test_schema_race);
	tcase_add_test(tc, test_no_password_in_errors);
	tcase_add_test(tc, test_append_only);
	tcase_add_test(tc, test_guards_restored);
	tcase_add_test(tc, test_tamper_detected);
	suite_add_tcase(s, tc);

	tc = tcase_create("semantics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_every_kind);
	tcase_add_test(tc, test_uniqueness);
	tcase_add_test(tc, test_bad_encoding);
	tcase_add_test(tc, test_large_walk);
	tcase_add_test(tc, test_two_nodes);
	tcase_add_test(tc, test_leader_two);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_terminated);
	tcase_add_test(tc, test_database_down);
	tcase_add_test(tc, test_commit_reply_lost);
	tcase_add_test(tc, test_cut_before_commit);
	tcase_add_test(tc, test_commit_unknown);
	tcase_add_test(tc, test_bookkeeping_unknown);
	tcase_add_test(tc, test_kill_mid_batch);
	tcase_add_test(tc, test_restart_mid_batch);
	tcase_add_test(tc, test_deadlock);
	tcase_add_test(tc, test_server_restart);
	tcase_add_test(tc, test_failover);
	tcase_add_test(tc, test_leader_terminated);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	double t0;
	int failed;

	pgtest_start(&cluster);
	fprintf(stderr, "check_store_pg: cluster started in %.3f s\n", cluster.start_s);
	sr = srunner_create(pg_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	t0 = pgtest_now();
	pgtest_stop(&cluster);
	fprintf(stderr, "check_store_pg: cluster stopped in %.3f s\n", pgtest_now() - t0);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
