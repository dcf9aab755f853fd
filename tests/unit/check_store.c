/*
 * check_store.c - the state store, the hash-chained journal and the group
 * committer.  No token: certificate facts are built by hand around random
 * bytes standing in for DER (tests/storetest.h, shared with check_store_pg.c).
 *
 * Two suites:
 *  - the conformance suite: every test that uses only the store.h interface,
 *    run once per backend of the backends[] table below (today "sqlite"),
 *    each test on a fresh, empty store from the backend's fresh_uri(), TCase
 *    names prefixed by the backend name ("sqlite/journal").  A new backend
 *    adds one table entry (e.g. "postgresql", whose fresh_uri creates a
 *    fresh database on a test cluster) and runs the same tests.
 *    A tampering test runs SQL through the backend's tamper hook.
 *  - the SQLite-only suite ("sqlite-only/..."): tests that read or edit the
 *    database file directly (raw sqlite3 edits of the journal, triggers and
 *    certificate rows, migrations from older schema versions, disk full via
 *    max_pages, busy timeout, files unlinked or replaced, the lock file,
 *    the file's mode).
 */
#include "config.h"

#include <sys/stat.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#if HAVE_LIBPQ
#include "pgtest.h"
#endif
#include "checkpoint.h"
#include "committer.h"
#include "store.h"
#include "store-migrate.h"
#include "store-sqlite.h"
#include "storetest.h"
#include "tca-error.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];	/* the test's own directory */
static char dbpath[PATH_MAX + 16];	/* SQLite: the file; "" for another backend */
static char store_uri[PATH_MAX + 32];	/* what open_store() opens */
static tca_store *st;

/* more change builders (tests/storetest.h has the common ones) */

static void
tc_ca_delete(struct tchange *t, const char *tenant)
{
	tc_base(t, TCA_CHANGE_CA_DELETE, "ca-delete", tenant);
}

static void
tc_renewal(struct tchange *t, const char *tenant,
    const struct tca_renewal_state *rs)
{
	tc_base(t, TCA_CHANGE_RENEWAL_STATE, NULL, tenant);
	t->rs = *rs;
	t->chg.renewal = &t->rs;
}

struct jcopy {
	int64_t want;
	int found;
	int64_t time_ms;
	char op[32], tenant[80], serial[64], subject[160], fp[80], details[160];
	uint32_t uid;
	int32_t pid;
	unsigned char prev_hash[32], hash[32];
};

static int
copy_cb(void *ctx, const struct tca_journal_record *rec)
{
	struct jcopy *j = ctx;

	if (rec->seq != j->want)
		return 0;
	j->found = 1;
	j->time_ms = rec->time_ms;
	snprintf(j->op, sizeof(j->op), "%s", rec->op);
	snprintf(j->tenant, sizeof(j->tenant), "%s", rec->tenant);
	snprintf(j->serial, sizeof(j->serial), "%s", rec->serial_hex);
	snprintf(j->subject, sizeof(j->subject), "%s", rec->subject);
	snprintf(j->fp, sizeof(j->fp), "%s", rec->fingerprint_hex);
	snprintf(j->details, sizeof(j->details), "%s", rec->details);
	j->uid = rec->uid;
	j->pid = rec->pid;
	memcpy(j->prev_hash, rec->prev_hash, 32);
	memcpy(j->hash, rec->hash, 32);
	return 1;		/* found: stop */
}

static void
journal_get(tca_store *s, int64_t seq, struct jcopy *j)
{
	int r;

	memset(j, 0, sizeof(*j));
	j->want = seq;
	r = s->ops->journal_foreach(s, seq, copy_cb, j);
	ck_assert_int_eq(r, 1);
	ck_assert_int_eq(j->found, 1);
}

struct cert_count {
	const char *kind;	/* NULL: any */
	int n;
};

static int
cert_count_cb(void *ctx, const struct tca_cert_row *row)
{
	struct cert_count *cc = ctx;

	if (cc->kind == NULL || strcmp(cc->kind, row->kind) == 0)
		cc->n++;
	return 0;
}

static int
cert_count(tca_store *s, const char *tenant, const char *kind)
{
	struct cert_count cc = { kind, 0 };

	ck_assert_int_eq(s->ops->cert_foreach(s, tenant, cert_count_cb, &cc), TCA_OK);
	return cc.n;
}

static void
raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
}

static void
verify_bad(tca_store *s, int64_t want_bad, uint64_t want_good,
    const char *want_why)
{
	uint64_t count = 0;
	int64_t bad = -1;
	char why[256] = "";

	ck_assert_int_eq(tca_journal_verify(s, &count, &bad, NULL, why,
	    sizeof(why)), TCA_ERR_POLICY_VIOLATION);
	ck_assert_int_eq(bad, want_bad);
	ck_assert_msg(strstr(why, want_why) != NULL, "why \"%s\", want \"%s\"",
	    why, want_why);
	/* records that verified before the break */
	ck_assert_uint_eq(count, want_good);
}

/*
 * A store backend under test.  fresh_uri fills out with the URI of a fresh,
 * empty store for one test (test: the TCase name; the per-test directory
 * tmpdir exists already; a backend on a server makes the name unique, e.g.
 * with the pid of the forked test) and returns 0, or -1 with why in out.
 */
struct store_backend {
	const char *name;
	int (*fresh_uri)(const char *test, char *out, size_t outlen);
	/*
	 * An attacker with full write access to the store's database: removes
	 * the journal's append-only guards (SQLite: its triggers) and runs
	 * sql, written with the table and column names every backend shares
	 * (journal.seq, ...).  0, or -1 with the database's error on stderr.
	 */
	int (*tamper)(const char *uri, const char *sql);
};

static int
sqlite_tamper(const char *uri, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	if (strncmp(uri, "sqlite:", 7) != 0 || sqlite3_open(uri + 7, &db) != SQLITE_OK) {
		fprintf(stderr, "tamper: cannot open %s\n", uri);
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	if ((rc = sqlite3_exec(db, "DROP TRIGGER IF EXISTS journal_no_update;"
	    "DROP TRIGGER IF EXISTS journal_no_delete", NULL, NULL, &msg)) == SQLITE_OK) {
		sqlite3_free(msg);
		msg = NULL;
		rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "tamper: %s: %s\n", sql, msg != NULL ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
sqlite_fresh_uri(const char *test, char *out, size_t outlen)
{
	(void)test;
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
	if ((size_t)snprintf(out, outlen, "sqlite:%s", dbpath) >= outlen) {
		snprintf(out, outlen, "path too long");
		return -1;
	}
	return 0;
}

static const struct store_backend sqlite_backend = {
	"sqlite", sqlite_fresh_uri, sqlite_tamper
};

#if HAVE_LIBPQ
/*
 * PostgreSQL: one throwaway cluster per run of this binary (tests/pgtest.h:
 * started in main() before the PostgreSQL runner, stopped however the
 * binary ends), a fresh database per test.
 */
static struct pgtest_cluster pg_cluster;
static int pg_started;

static int
pg_fresh_uri(const char *test, char *out, size_t outlen)
{
	static unsigned int n;
	char name[64];

	(void)test;
	/* Check forks each test: the pid keeps the names apart */
	snprintf(name, sizeof(name), "conf_%ld_%u", (long)getpid(), n++);
	if (pgtest_createdb(&pg_cluster, name, out, outlen) != 0) {
		snprintf(out, outlen, "CREATE DATABASE %s failed", name);
		return -1;
	}
	return 0;
}

/* as a superuser would: the user triggers off (append-only guards and
 * the head row's), then the edit */
static int
pg_tamper(const char *uri, const char *sql)
{
	char q[1024], err[512] = "";

	if ((size_t)snprintf(q, sizeof(q), "ALTER TABLE journal DISABLE TRIGGER USER;"
	    "ALTER TABLE journal_head DISABLE TRIGGER USER; %s", sql) >= sizeof(q))
		return -1;
	if (pgtest_exec(uri, q, err, sizeof(err)) != 0) {
		fprintf(stderr, "tamper: %s: %s\n", sql, err);
		return -1;
	}
	return 0;
}

static const struct store_backend pg_backend = {
	"postgresql", pg_fresh_uri, pg_tamper
};
#endif

/* every backend the conformance suite runs on */
static const struct store_backend *const backends[] = {
	&sqlite_backend,
#if HAVE_LIBPQ
	&pg_backend,
#endif
};

static const struct store_backend *be = &sqlite_backend;	/* under test */

static void
open_store(void)
{
	char err[256] = "";
	int r;

	r = tca_store_open(store_uri, 0, &st, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "open %s: %s", store_uri, err);
	ck_assert_ptr_nonnull(st);
	ck_assert_str_eq(st->ops->name, be->name);
}

static void
setup(void)
{
	const char *tc = tcase_name();

	tc_clock_ms = T_BASE_MS;
	test_mkdtemp(tmpdir, sizeof(tmpdir));
	dbpath[0] = '\0';
	ck_assert_msg(be->fresh_uri(tc != NULL ? tc : "?", store_uri,
	    sizeof(store_uri)) == 0, "%s: no fresh store: %s", be->name, store_uri);
	open_store();
}

/* the SQLite-only suite: whatever the conformance runs are on */
static void
setup_sqlite(void)
{
	be = &sqlite_backend;
	setup();
}

static void
teardown(void)
{
	if (st != NULL)
		st->ops->close(st);
	st = NULL;
	test_sh("rm -rf '%s'", tmpdir);
}

/* Fills a store with one CA and n-1 device certificates, batch at a time. */
static void
fill_journal(tca_store *s, int n, int batch)
{
	struct tchange *tc;
	struct tca_change **chgs;
	int *res, i, j, k;
	char cn[32];

	tc = calloc((size_t)batch, sizeof(*tc));
	chgs = calloc((size_t)batch, sizeof(*chgs));
	res = calloc((size_t)batch, sizeof(*res));
	ck_assert(tc != NULL && chgs != NULL && res != NULL);
	tc_ca_create(&tc[0], "acme");
	ck_assert_int_eq(commit1(s, &tc[0]), TCA_OK);
	for (i = 1; i < n; i += k) {
		k = n - i < batch ? n - i : batch;
		for (j = 0; j < k; j++) {
			snprintf(cn, sizeof(cn), "dev-%d", i + j);
			tc_issue(&tc[j], "acme", cn);
			chgs[j] = &tc[j].chg;
		}
		ck_assert_int_eq(s->ops->commit(s, chgs, (size_t)k, res), TCA_OK);
		for (j = 0; j < k; j++) {
			ck_assert_int_eq(res[j], TCA_OK);
			ck_assert_int_eq(tc[j].chg.journal_seq, i + j + 1);
		}
	}
	free(tc);
	free(chgs);
	free(res);
}

/* /store/ca/create-get */
START_TEST(test_ca_create_get)
{
	struct tchange tc;
	struct tca_ca_row row;
	struct jcopy j;
	char hex[80];

	tc_ca_create(&tc, "acme");
	ck_assert_int_eq(commit1(st, &tc), TCA_OK);
	ck_assert_int_eq(tc.chg.journal_seq, 1);

	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_str_eq(row.tenant, "acme");
	ck_assert_int_eq(row.status, TCA_CA_ACTIVE);
	ck_assert_str_eq(tca_ca_status_name(row.status), "active");
	ck_assert_str_eq(row.key_type, "ec-p256");
	ck_assert_uint_eq(row.key_id_len, sizeof(tc.key_id));
	ck_assert_mem_eq(row.key_id, tc.key_id, sizeof(tc.key_id));
	ck_assert_int_eq(row.created_at, tc.chg.time_ms / 1000);
	ck_assert_int_eq(row.deleted_at, 0);
	ck_assert_ptr_nonnull(row.cert_der);
	ck_assert_uint_eq(row.cert_der_len, sizeof(tc.der));
	ck_assert_mem_eq(row.cert_der, tc.der, sizeof(tc.der));
	ck_assert_ptr_null(row.prev_der);
	tca_ca_row_clear(&row);
	ck_assert_ptr_null(row.cert_der);
	ck_assert_int_eq(row.ca_id, 0);

	ck_assert_int_eq(st->ops->get_ca(st, "other", &row), TCA_ERR_NOT_FOUND);

	journal_get(st, 1, &j);
	ck_assert_str_eq(j.op, "ca-create");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.subject, "CN=acme");
	tca_hex(tc.ci.serial, tc.ci.serial_len, hex);
	ck_assert_str_eq(j.serial, hex);
	tca_hex(tc.ci.sha256, 32, hex);
	ck_assert_str_eq(j.fp, hex);
	ck_assert_str_eq(j.details, "");
	ck_assert_uint_eq(j.uid, 1000);
	ck_assert_int_eq(j.pid, 4242);
	ck_assert_int_eq(j.time_ms, tc.chg.time_ms);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 1);
	verify_ok(st, 1, NULL);
}
END_TEST

/* /sqlite-only/store/file-mode: the database file is created without group
 * or world access */
START_TEST(test_file_mode)
{
	struct tchange tc;
	struct stat sb;

	tc_ca_create(&tc, "acme");
	ck_assert_int_eq(commit1(st, &tc), TCA_OK);
	ck_assert_int_eq(stat(dbpath, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 077, 0);
}
END_TEST

/* /store/ca/second-active-refused */
START_TEST(test_ca_duplicate)
{
	struct tchange a, dup, beta;
	struct tca_change *chgs[2];
	struct tca_ca_row row;
	int res[2];

	tc_ca_create(&a, "acme");
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	tc_ca_create(&dup, "acme");
	tc_ca_create(&beta, "beta");
	chgs[0] = &dup.chg;
	chgs[1] = &beta.chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(dup.chg.journal_seq, 0);
	ck_assert_int_eq(beta.chg.journal_seq, 2);
	ck_assert_int_eq(journal_count(st), 2);
	/* the refused CA left no certificate row and did not replace the CA */
	ck_assert_int_eq(cert_count(st, "acme", NULL), 1);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_mem_eq(row.key_id, a.key_id, sizeof(a.key_id));
	tca_ca_row_clear(&row);
	verify_ok(st, 2, NULL);
}
END_TEST

static void
tc_reserve(struct tchange *t, enum tca_change_kind kind, const char *tenant,
    const char *holder, int64_t lease_ms)
{
	tc_base(t, kind, NULL, tenant);
	t->chg.holder = holder;
	t->chg.lease_until_ms = t->chg.time_ms + lease_ms;
}

/* /store/ca/reserve: a CA creation reserved before its key is made (issue
 * 13): another holder is refused until the reservation is released, used
 * by its CA_CREATE or lapsed; nothing of it is journaled */
START_TEST(test_ca_reserve)
{
	char err[256] = "", longh[TCA_HOLDER_MAX + 2];
	struct tchange a, b, c, rel;
	struct tca_ca_row row;
	tca_store *st2 = NULL;
	int64_t a_at;

	/* node-a reserves acme; node-b, on a handle of its own, is refused */
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "acme", "node-a", 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	a_at = a.chg.time_ms;
	ck_assert_msg(tca_store_open(store_uri, 0, &st2, err, sizeof(err)) == TCA_OK,
	    "second handle: %s", err);
	tc_reserve(&b, TCA_CHANGE_CA_RESERVE, "acme", "node-b", 600000);
	ck_assert_int_eq(commit1(st2, &b), TCA_ERR_ALREADY_EXISTS);
	ck_assert_str_eq(b.chg.reserved.by, "node-a");
	ck_assert_int_eq(b.chg.reserved.at_ms, a_at);
	ck_assert_int_eq(b.chg.reserved.until_ms, a_at + 600000);
	/* ... and so is its CA_CREATE, and one naming no holder */
	tc_ca_create(&c, "acme");
	c.chg.holder = "node-b";
	ck_assert_int_eq(commit1(st2, &c), TCA_ERR_ALREADY_EXISTS);
	ck_assert_str_eq(c.chg.reserved.by, "node-a");
	tc_ca_create(&c, "acme");
	ck_assert_int_eq(commit1(st2, &c), TCA_ERR_ALREADY_EXISTS);
	/* node-b cannot give back what it does not hold */
	tc_reserve(&rel, TCA_CHANGE_CA_RELEASE, "acme", "node-b", 0);
	ck_assert_int_eq(commit1(st2, &rel), TCA_ERR_NOT_FOUND);
	/* node-a may reserve again (renewal) */
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "acme", "node-a", 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	ck_assert_int_eq(journal_count(st), 0);

	/* node-a's CA_CREATE applies and takes the reservation with it */
	tc_ca_create(&c, "acme");
	c.chg.holder = "node-a";
	ck_assert_int_eq(commit1(st, &c), TCA_OK);
	ck_assert_int_eq(c.chg.journal_seq, 1);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_int_gt(c.chg.ca_id, 0);
	ck_assert_int_eq(c.chg.ca_id, row.ca_id);
	tca_ca_row_clear(&row);
	tc_reserve(&rel, TCA_CHANGE_CA_RELEASE, "acme", "node-a", 0);
	ck_assert_int_eq(commit1(st, &rel), TCA_ERR_NOT_FOUND);
	/* a tenant with a CA cannot be reserved: no holder named */
	tc_reserve(&b, TCA_CHANGE_CA_RESERVE, "acme", "node-b", 600000);
	ck_assert_int_eq(commit1(st2, &b), TCA_ERR_ALREADY_EXISTS);
	ck_assert_str_eq(b.chg.reserved.by, "");

	/* a lapsed reservation (its engine died) is taken over */
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "beta", "node-a", 1000);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	tc_clock_ms += 998;	/* the next change is 999 ms later: 1 ms left */
	tc_reserve(&b, TCA_CHANGE_CA_RESERVE, "beta", "node-b", 600000);
	ck_assert_int_eq(b.chg.time_ms, a.chg.time_ms + 999);
	ck_assert_int_eq(commit1(st2, &b), TCA_ERR_ALREADY_EXISTS);
	/* the next one is at the lease's end */
	tc_reserve(&b, TCA_CHANGE_CA_RESERVE, "beta", "node-b", 600000);
	ck_assert_int_eq(commit1(st2, &b), TCA_OK);
	tc_ca_create(&c, "beta");
	c.chg.holder = "node-a";
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	ck_assert_str_eq(c.chg.reserved.by, "node-b");
	/* released, the tenant is free for anyone */
	tc_reserve(&rel, TCA_CHANGE_CA_RELEASE, "beta", "node-b", 0);
	ck_assert_int_eq(commit1(st2, &rel), TCA_OK);
	tc_ca_create(&c, "beta");
	c.chg.holder = "node-a";
	ck_assert_int_eq(commit1(st, &c), TCA_OK);
	ck_assert_int_eq(journal_count(st), 2);

	/* malformed: no holder, an empty or too long one, a lease already over */
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "gamma", NULL, 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_INVALID_ARG);
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "gamma", "", 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_INVALID_ARG);
	memset(longh, 'h', sizeof(longh) - 1);
	longh[sizeof(longh) - 1] = '\0';
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "gamma", longh, 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_INVALID_ARG);
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "gamma", "node-a", 0);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_INVALID_ARG);
	tc_reserve(&rel, TCA_CHANGE_CA_RELEASE, "gamma", NULL, 0);
	ck_assert_int_eq(commit1(st, &rel), TCA_ERR_INVALID_ARG);
	tc_ca_create(&c, "gamma");
	c.chg.holder = longh;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	longh[TCA_HOLDER_MAX] = '\0';	/* the longest allowed */
	tc_reserve(&a, TCA_CHANGE_CA_RESERVE, "gamma", longh, 600000);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	st2->ops->close(st2);
	verify_ok(st, 2, NULL);
}
END_TEST

struct ca_list {
	int n;
	int64_t ca_id[8];
	int status[8];
	int64_t deleted_at[8];
	char tenant[8][TCA_TENANT_MAX + 1];
	int has_der[8];
};

static int
ca_list_cb(void *ctx, const struct tca_ca_row *row)
{
	struct ca_list *l = ctx;

	ck_assert_int_lt(l->n, 8);
	l->ca_id[l->n] = row->ca_id;
	l->status[l->n] = row->status;
	l->deleted_at[l->n] = row->deleted_at;
	snprintf(l->tenant[l->n], sizeof(l->tenant[0]), "%s", row->tenant);
	l->has_der[l->n] = row->cert_der != NULL && row->cert_der_len > 0;
	l->n++;
	return 0;
}

/* /store/ca/delete-keeps-history */
START_TEST(test_ca_delete)
{
	struct tchange create, dev, del, again, late;
	struct tca_ca_row row;
	struct ca_list l;
	struct jcopy j;
	int64_t first_id;

	tc_ca_create(&create, "acme");
	ck_assert_int_eq(commit1(st, &create), TCA_OK);
	tc_issue(&dev, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &dev), TCA_OK);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	first_id = row.ca_id;
	tca_ca_row_clear(&row);

	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	ck_assert_int_eq(del.chg.journal_seq, 3);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_ERR_NOT_FOUND);

	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(st->ops->foreach_ca(st, 0, ca_list_cb, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(st->ops->foreach_ca(st, 1, ca_list_cb, &l), TCA_OK);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_eq(l.status[0], TCA_CA_DELETED);
	ck_assert_str_eq(tca_ca_status_name(l.status[0]), "deleted");
	ck_assert_int_eq(l.deleted_at[0], del.chg.time_ms / 1000);
	ck_assert_int_eq(l.has_der[0], 1);

	/* history kept */
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 1);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "ca-delete");
	ck_assert_str_eq(j.serial, "");
	ck_assert_str_eq(j.fp, "");
	ck_assert_str_eq(j.subject, "CN=acme");

	/* nothing left to delete or issue from */
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_ERR_NOT_FOUND);
	tc_issue(&late, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &late), TCA_ERR_NOT_FOUND);

	/* a new CA for the same tenant */
	tc_ca_create(&again, "acme");
	ck_assert_int_eq(commit1(st, &again), TCA_OK);
	ck_assert_int_eq(again.chg.journal_seq, 4);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_int_ne(row.ca_id, first_id);
	ck_assert_mem_eq(row.cert_der, again.der, sizeof(again.der));
	tca_ca_row_clear(&row);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(st->ops->foreach_ca(st, 1, ca_list_cb, &l), TCA_OK);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.ca_id[0], first_id);
	ck_assert_int_eq(l.status[0], TCA_CA_DELETED);
	ck_assert_int_eq(l.status[1], TCA_CA_ACTIVE);
	ck_assert_int_eq(cert_count(st, NULL, NULL), 3);
	verify_ok(st, 4, NULL);
}
END_TEST

/* /store/ca/foreach-order */
START_TEST(test_foreach_order)
{
	struct tchange a, b, c;
	struct ca_list l;

	tc_ca_create(&c, "zulu");
	tc_ca_create(&a, "alpha");
	tc_ca_create(&b, "mike");
	ck_assert_int_eq(commit1(st, &c), TCA_OK);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	ck_assert_int_eq(commit1(st, &b), TCA_OK);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(st->ops->foreach_ca(st, 0, ca_list_cb, &l), TCA_OK);
	ck_assert_int_eq(l.n, 3);
	ck_assert_str_eq(l.tenant[0], "alpha");
	ck_assert_str_eq(l.tenant[1], "mike");
	ck_assert_str_eq(l.tenant[2], "zulu");
}
END_TEST

/* /store/cert/unknown-tenant */
START_TEST(test_unknown_tenant)
{
	struct tchange t;

	tc_issue(&t, "nobody", "dev-1");
	ck_assert_int_eq(commit1(st, &t), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(t.chg.journal_seq, 0);
	tc_ca_delete(&t, "nobody");
	ck_assert_int_eq(commit1(st, &t), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(journal_count(st), 0);
	ck_assert_int_eq(cert_count(st, NULL, NULL), 0);
}
END_TEST

/* /store/cert/duplicate-serial-alone-fails */
START_TEST(test_duplicate_serial_batch)
{
	struct tchange ca, a, b, dup_a, c, dup_c, bad, clash;
	struct tca_change *chgs[5];
	struct tca_ca_row row;
	int res[5];
	struct jcopy j;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&a, "acme", "dev-a");
	ck_assert_int_eq(commit1(st, &a), TCA_OK);

	tc_issue(&b, "acme", "dev-b");
	tc_issue(&dup_a, "acme", "dev-a-again");
	memcpy(dup_a.ci.serial, a.ci.serial, sizeof(a.ci.serial));
	tc_issue(&c, "acme", "dev-c");
	tc_issue(&dup_c, "acme", "dev-c-again");
	memcpy(dup_c.ci.serial, c.ci.serial, sizeof(c.ci.serial));
	tc_issue(&bad, "acme", "dev-bad");
	bad.ci.serial_len = 0;	/* malformed: refused alone */
	chgs[0] = &b.chg;
	chgs[1] = &dup_a.chg;
	chgs[2] = &c.chg;
	chgs[3] = &dup_c.chg;
	chgs[4] = &bad.chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 5, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(res[2], TCA_OK);
	ck_assert_int_eq(res[3], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(res[4], TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(b.chg.journal_seq, 3);
	ck_assert_int_eq(dup_a.chg.journal_seq, 0);
	ck_assert_int_eq(c.chg.journal_seq, 4);
	ck_assert_int_eq(dup_c.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 4);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 3);
	journal_get(st, 4, &j);
	ck_assert_str_eq(j.subject, "CN=dev-c");

	/* same serial under another issuer is fine */
	tc_ca_create(&clash, "beta");
	ck_assert_int_eq(commit1(st, &clash), TCA_OK);
	tc_issue(&dup_a, "beta", "dev-a-beta");
	memcpy(dup_a.ci.serial, a.ci.serial, sizeof(a.ci.serial));
	ck_assert_int_eq(commit1(st, &dup_a), TCA_OK);

	/* a CA certificate whose (issuer, serial) is taken: no CA row either */
	tc_ca_create(&clash, "gamma");
	memcpy(clash.ci.issuer_hash, a.ci.issuer_hash, 32);
	memcpy(clash.ci.serial, a.ci.serial, sizeof(a.ci.serial));
	ck_assert_int_eq(commit1(st, &clash), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(st->ops->get_ca(st, "gamma", &row), TCA_ERR_NOT_FOUND);
	verify_ok(st, 6, NULL);
}
END_TEST

/* /journal/hash/specification */
START_TEST(test_hash_spec)
{
	struct tca_journal_record rec;
	unsigned char buf[1024], want[32], got[32];
	size_t off = 0;
	const char *strs1[] = { "issue", "acme", "0a0b", "CN=dev" , "ffee" };
	size_t i, k;

	memset(&rec, 0, sizeof(rec));
	rec.seq = 0x0102030405060708LL;
	rec.time_ms = T_BASE_MS;
	rec.op = strs1[0];
	rec.tenant = strs1[1];
	rec.serial_hex = strs1[2];
	rec.subject = strs1[3];
	rec.fingerprint_hex = strs1[4];
	rec.uid = 0xa1b2c3d4;
	rec.pid = -2;
	rec.details = NULL;	/* encodes as "" */
	for (i = 0; i < 32; i++)
		rec.prev_hash[i] = (unsigned char)i;

	/* the canonical encoding, written out independently */
	memcpy(buf, "tca-journal-v1", 14);
	off = 14;
	memcpy(buf + off, rec.prev_hash, 32);
	off += 32;
	for (k = 0; k < 8; k++)
		buf[off++] = (unsigned char)((uint64_t)rec.seq >> (56 - 8 * k));
	for (k = 0; k < 8; k++)
		buf[off++] = (unsigned char)((uint64_t)rec.time_ms >> (56 - 8 * k));
	for (i = 0; i < 5; i++) {
		size_t len = strlen(strs1[i]);

		buf[off++] = 0;
		buf[off++] = 0;
		buf[off++] = 0;
		buf[off++] = (unsigned char)len;
		memcpy(buf + off, strs1[i], len);
		off += len;
	}
	buf[off++] = 0xa1;
	buf[off++] = 0xb2;
	buf[off++] = 0xc3;
	buf[off++] = 0xd4;
	buf[off++] = 0xff;
	buf[off++] = 0xff;
	buf[off++] = 0xff;
	buf[off++] = 0xfe;
	memset(buf + off, 0, 4);	/* lp("") */
	off += 4;
	sha256(buf, off, want);
	tca_journal_hash(&rec, got);
	ck_assert_mem_eq(got, want, 32);

	/* the stored hash is not an input */
	memset(rec.hash, 0xaa, 32);
	tca_journal_hash(&rec, got);
	ck_assert_mem_eq(got, want, 32);
	/* every field is */
	rec.details = "x";
	tca_journal_hash(&rec, got);
	ck_assert_int_ne(memcmp(got, want, 32), 0);
	rec.details = "";
	rec.pid = -3;
	tca_journal_hash(&rec, got);
	ck_assert_int_ne(memcmp(got, want, 32), 0);
	rec.pid = -2;
	rec.prev_hash[31] ^= 1;
	tca_journal_hash(&rec, got);
	ck_assert_int_ne(memcmp(got, want, 32), 0);
	rec.prev_hash[31] ^= 1;
	/* field boundaries matter: "ab"+"c" differs from "a"+"bc" */
	rec.op = "issuea";
	rec.tenant = "cme";
	tca_journal_hash(&rec, got);
	ck_assert_int_ne(memcmp(got, want, 32), 0);
}
END_TEST

/* /journal/verify/edited-record */
START_TEST(test_journal_edit)
{
	struct tca_journal_record rec;
	unsigned char head[32], h[32];
	struct jcopy j, last;
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char *msg = NULL;

	fill_journal(st, 500, 50);
	verify_ok(st, 500, head);
	journal_get(st, 500, &last);
	ck_assert_mem_eq(head, last.hash, 32);
	journal_get(st, 1, &j);
	memset(h, 0, sizeof(h));
	ck_assert_mem_eq(j.prev_hash, h, 32);

	/* the triggers refuse edits through SQL */
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_ne(sqlite3_exec(db, "UPDATE journal SET subject = 'CN=evil'"
	    " WHERE seq = 137", NULL, NULL, &msg), SQLITE_OK);
	ck_assert_ptr_nonnull(strstr(msg, "journal is append-only"));
	sqlite3_free(msg);
	msg = NULL;
	ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM journal WHERE seq = 500",
	    NULL, NULL, NULL), SQLITE_OK);
	verify_ok(st, 500, NULL);

	/* an attacker with the file drops them */
	ck_assert_int_eq(sqlite3_exec(db, "DROP TRIGGER journal_no_update;"
	    "UPDATE journal SET subject = 'CN=evil' WHERE seq = 137",
	    NULL, NULL, NULL), SQLITE_OK);
	verify_bad(st, 137, 136, "hash mismatch (record edited)");

	/* ... and recomputes the edited record's hash: the next link breaks */
	journal_get(st, 137, &j);
	memset(&rec, 0, sizeof(rec));
	rec.seq = 137;
	rec.time_ms = j.time_ms;
	rec.op = j.op;
	rec.tenant = j.tenant;
	rec.serial_hex = j.serial;
	rec.subject = j.subject;
	rec.fingerprint_hex = j.fp;
	rec.uid = j.uid;
	rec.pid = j.pid;
	rec.details = j.details;
	memcpy(rec.prev_hash, j.prev_hash, 32);
	tca_journal_hash(&rec, h);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE journal SET hash = ?1"
	    " WHERE seq = 137", -1, &stmt, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_blob(stmt, 1, h, 32, SQLITE_STATIC), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	verify_bad(st, 138, 137, "prev_hash does not match record 137");
}
END_TEST

/* /journal/verify/deleted-record */
START_TEST(test_journal_delete)
{
	fill_journal(st, 40, 7);
	verify_ok(st, 40, NULL);
	ck_assert_int_eq(be->tamper(store_uri, "DELETE FROM journal WHERE seq = 23"), 0);
	verify_bad(st, 24, 22, "sequence gap after 22");
	ck_assert_int_eq(journal_count(st), 39);
}
END_TEST

/* /journal/verify/deleted-first-record */
START_TEST(test_journal_delete_first)
{
	fill_journal(st, 5, 5);
	ck_assert_int_eq(be->tamper(store_uri, "DELETE FROM journal WHERE seq = 1"), 0);
	verify_bad(st, 2, 0, "sequence gap");
}
END_TEST

/* /journal/export/json-lines */
START_TEST(test_journal_export)
{
	struct tchange t;
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *mf;
	int64_t n = 0;
	char prefix[32];

	fill_journal(st, 30, 8);
	tc_issue(&t, "acme", "dev \"quoted\"\\back");
	t.chg.details = "line1\nline2\t\x01 bad-utf8:\xff ok-utf8:\xc3\xa9";
	ck_assert_int_eq(commit1(st, &t), TCA_OK);

	mf = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(mf);
	ck_assert_int_eq(tca_journal_export_json(st, mf), TCA_OK);
	ck_assert_int_eq(fclose(mf), 0);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(buf[len - 1], '\n');
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		size_t i;

		n++;
		snprintf(prefix, sizeof(prefix), "{\"seq\":%lld,", (long long)n);
		ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0,
		    "line %lld: %s", (long long)n, line);
		ck_assert_int_eq(line[strlen(line) - 1], '}');
		for (i = 0; line[i] != '\0'; i++)
			ck_assert_int_ge((unsigned char)line[i], 0x20);
		ck_assert_ptr_nonnull(strstr(line, "\"prev_hash\":\""));
		ck_assert_ptr_nonnull(strstr(line, "\"time\":\"2023-11-14T22:13:"));
	}
	ck_assert_int_eq(n, 31);
	free(buf);
	buf = NULL;

	/* first record: known time, zero prev_hash; last: escapes */
	mf = open_memstream(&buf, &len);
	ck_assert_int_eq(tca_journal_export_json(st, mf), TCA_OK);
	fclose(mf);
	ck_assert_ptr_nonnull(strstr(buf, "{\"seq\":1,\"time_ms\":1700000000123,"
	    "\"time\":\"2023-11-14T22:13:20.123Z\",\"op\":\"ca-create\","
	    "\"tenant\":\"acme\",\"serial\":\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"uid\":1000,\"pid\":4242,\"details\":\"\","
	    "\"prev_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"subject\":\"CN=dev \\\"quoted\\\"\\\\back\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"details\":\"line1\\nline2\\t\\u0001 "
	    "bad-utf8:\\ufffd ok-utf8:\xc3\xa9\""));
	free(buf);
}
END_TEST

/* /store/reopen/chain-continues */
START_TEST(test_reopen_continues)
{
	unsigned char head[32], head2[32];
	struct tchange t;
	struct jcopy j;

	fill_journal(st, 6, 3);
	verify_ok(st, 6, head);
	st->ops->close(st);
	st = NULL;
	open_store();
	verify_ok(st, 6, head2);
	ck_assert_mem_eq(head, head2, 32);
	tc_issue(&t, "acme", "after-reopen");
	ck_assert_int_eq(commit1(st, &t), TCA_OK);
	ck_assert_int_eq(t.chg.journal_seq, 7);
	journal_get(st, 7, &j);
	ck_assert_mem_eq(j.prev_hash, head, 32);
	verify_ok(st, 7, NULL);
}
END_TEST

static void
commit_batch_expect_unavailable(struct tchange *tc, size_t n)
{
	struct tca_change *chgs[8];
	int res[8];
	size_t i;

	ck_assert_uint_le(n, 8);
	for (i = 0; i < n; i++) {
		chgs[i] = &tc[i].chg;
		tc[i].chg.journal_seq = 99;
	}
	ck_assert_int_eq(st->ops->commit(st, chgs, n, res),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(res[i], TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_int_eq(tc[i].chg.journal_seq, 0);
	}
}

static void
commit_batch_expect_ok(struct tchange *tc, size_t n)
{
	struct tca_change *chgs[8];
	int res[8];
	size_t i;

	for (i = 0; i < n; i++)
		chgs[i] = &tc[i].chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, n, res), TCA_OK);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(res[i], TCA_OK);
}

/* /store/commit/disk-full */
START_TEST(test_commit_disk_full)
{
	static unsigned char big[6][16384];
	struct tchange tc[6];
	char cn[32];
	size_t i;

	fill_journal(st, 3, 2);
	for (i = 0; i < 6; i++) {
		snprintf(cn, sizeof(cn), "big-%zu", i);
		tc_issue(&tc[i], "acme", cn);
		ck_assert_int_eq(RAND_bytes(big[i], sizeof(big[i])), 1);
		tc[i].ci.der = big[i];
		tc[i].ci.der_len = sizeof(big[i]);
	}
	/* the first change is a small one that fits: it must not survive */
	tc[0].ci.der = tc[0].der;
	tc[0].ci.der_len = sizeof(tc[0].der);

	ck_assert_int_eq(tca_store_sqlite_set_max_pages(st, 1), TCA_OK);
	commit_batch_expect_unavailable(tc, 6);
	ck_assert_int_eq(journal_count(st), 3);
	ck_assert_int_eq(cert_count(st, NULL, NULL), 3);
	verify_ok(st, 3, NULL);
	/* the failure is not sticky: same batch again once space is back */
	ck_assert_int_eq(tca_store_sqlite_set_max_pages(st, 0), TCA_OK);
	commit_batch_expect_ok(tc, 6);
	ck_assert_int_eq(tc[0].chg.journal_seq, 4);
	ck_assert_int_eq(tc[5].chg.journal_seq, 9);
	ck_assert_int_eq(cert_count(st, NULL, NULL), 9);
	verify_ok(st, 9, NULL);
}
END_TEST

/* /store/commit/locked-by-another-process */
START_TEST(test_commit_busy)
{
	struct tchange tc[3];
	sqlite3 *db = NULL;
	size_t i;

	fill_journal(st, 2, 1);
	for (i = 0; i < 3; i++)
		tc_issue(&tc[i], "acme", "busy");
	ck_assert_int_eq(tca_store_sqlite_set_busy_timeout(st, 200), TCA_OK);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	commit_batch_expect_unavailable(tc, 3);
	/* readers are not blocked by the writer lock */
	ck_assert_int_eq(journal_count(st), 2);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	commit_batch_expect_ok(tc, 3);
	verify_ok(st, 5, NULL);
}
END_TEST

/* /store/open/newer-schema-refused */
START_TEST(test_open_newer_schema)
{
	char err[256] = "";
	tca_store *s2 = NULL;

	st->ops->close(st);
	st = NULL;
	raw_exec("PRAGMA user_version = 6");
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, 0, &s2, err, sizeof(err)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_ptr_null(s2);
	ck_assert_msg(strstr(err, "newer") != NULL, "err: %s", err);
	err[0] = '\0';
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &s2,
	    err, sizeof(err)), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(err, "newer") != NULL, "err: %s", err);
}
END_TEST

/* /store/open/foreign-database-refused */
START_TEST(test_open_foreign)
{
	char err[256] = "", path[PATH_MAX + 16];
	tca_store *s2 = NULL;
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/other.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE foo (x)", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(tca_store_open_sqlite(path, 0, &s2, err, sizeof(err)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(err, "not a tca state store") != NULL, "err: %s", err);
}
END_TEST

/* /store/open/read-only */
START_TEST(test_readonly)
{
	char err[256] = "", path[PATH_MAX + 16];
	struct tca_ca_row row;
	struct tchange t;
	struct tca_change *chg = &t.chg;
	tca_store *ro = NULL;
	int res = 0;

	fill_journal(st, 4, 4);
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(ro->ops->get_ca(ro, "acme", &row), TCA_OK);
	tca_ca_row_clear(&row);
	verify_ok(ro, 4, NULL);
	tc_issue(&t, "acme", "ro");
	ck_assert_int_eq(ro->ops->commit(ro, &chg, 1, &res),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	/* the writer's later commits are visible to the reader */
	ck_assert_int_eq(commit1(st, &t), TCA_OK);
	verify_ok(ro, 5, NULL);
	ro->ops->close(ro);
	/* an audit after the engine has stopped (no -wal/-shm left behind) */
	st->ops->close(st);
	st = NULL;
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	verify_ok(ro, 5, NULL);
	ro->ops->close(ro);

	snprintf(path, sizeof(path), "%s/missing.db", tmpdir);
	ck_assert_int_ne(tca_store_open_sqlite(path, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* ------------------------------------------------------ CA re-issuance */

static void
assert_renewal_eq(const struct tca_renewal_state *got,
    const struct tca_renewal_state *want)
{
	ck_assert_int_eq(got->failed, want->failed);
	ck_assert_str_eq(got->reason, want->reason);
	ck_assert_uint_eq(got->attempts, want->attempts);
	ck_assert_int_eq(got->failed_since, want->failed_since);
	ck_assert_int_eq(got->next_retry, want->next_retry);
	ck_assert_int_eq(got->alerted, want->alerted);
	ck_assert_int_eq(got->expiry_alerted, want->expiry_alerted);
}

static void
assert_renewal_clear(const struct tca_renewal_state *got)
{
	struct tca_renewal_state zero;

	memset(&zero, 0, sizeof(zero));
	assert_renewal_eq(got, &zero);
}

/* Asserts the active CA of tenant has cur (and prev, or no previous) DER. */
static void
assert_ca_certs(tca_store *s, const char *tenant, const struct tchange *cur,
    const struct tchange *prev)
{
	struct tca_ca_row row;

	ck_assert_int_eq(s->ops->get_ca(s, tenant, &row), TCA_OK);
	ck_assert_uint_eq(row.cert_der_len, cur->ci.der_len);
	ck_assert_mem_eq(row.cert_der, cur->ci.der, cur->ci.der_len);
	if (prev == NULL) {
		ck_assert_ptr_null(row.prev_der);
		ck_assert_uint_eq(row.prev_der_len, 0);
	} else {
		ck_assert_ptr_nonnull(row.prev_der);
		ck_assert_uint_eq(row.prev_der_len, prev->ci.der_len);
		ck_assert_mem_eq(row.prev_der, prev->ci.der, prev->ci.der_len);
	}
	tca_ca_row_clear(&row);
}

/* What foreach_ca saw of one tenant's active CA. */
struct ca_seen {
	const char *tenant;
	int n;
	size_t cert_len, prev_len;
	unsigned char cert[256], prev[256];
	struct tca_renewal_state rs;
};

static int
ca_seen_cb(void *ctx, const struct tca_ca_row *row)
{
	struct ca_seen *cs = ctx;

	if (strcmp(row->tenant, cs->tenant) != 0 || row->status != TCA_CA_ACTIVE)
		return 0;
	cs->n++;
	ck_assert_uint_le(row->cert_der_len, sizeof(cs->cert));
	ck_assert_uint_le(row->prev_der_len, sizeof(cs->prev));
	cs->cert_len = row->cert_der_len;
	if (row->cert_der != NULL)
		memcpy(cs->cert, row->cert_der, row->cert_der_len);
	cs->prev_len = row->prev_der_len;
	if (row->prev_der != NULL)
		memcpy(cs->prev, row->prev_der, row->prev_der_len);
	cs->rs = row->renewal;
	return 0;
}

static void
ca_seen(tca_store *s, const char *tenant, struct ca_seen *cs)
{
	memset(cs, 0, sizeof(*cs));
	cs->tenant = tenant;
	ck_assert_int_eq(s->ops->foreach_ca(s, 1, ca_seen_cb, cs), TCA_OK);
	ck_assert_int_eq(cs->n, 1);
}

/* /store/reissue/current-becomes-previous */
START_TEST(test_reissue_basic)
{
	struct tchange ca, dev, re, bad, late;
	struct ca_seen cs;
	struct jcopy j;
	char hex[80];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&dev, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &dev), TCA_OK);

	tc_reissue(&re, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &re), TCA_OK);
	ck_assert_int_eq(re.chg.journal_seq, 3);
	assert_ca_certs(st, "acme", &re, &ca);
	ca_seen(st, "acme", &cs);
	ck_assert_uint_eq(cs.cert_len, re.ci.der_len);
	ck_assert_mem_eq(cs.cert, re.ci.der, re.ci.der_len);
	ck_assert_uint_eq(cs.prev_len, ca.ci.der_len);
	ck_assert_mem_eq(cs.prev, ca.ci.der, ca.ci.der_len);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 2);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);

	/* exactly one journal record, describing the new certificate */
	ck_assert_int_eq(journal_count(st), 3);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "ca-reissue");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.subject, "CN=acme");
	tca_hex(re.ci.serial, re.ci.serial_len, hex);
	ck_assert_str_eq(j.serial, hex);
	tca_hex(re.ci.sha256, 32, hex);
	ck_assert_str_eq(j.fp, hex);
	ck_assert_str_eq(j.details, re.details);
	ck_assert_int_eq(j.time_ms, re.chg.time_ms);

	/* devices are still issued by the same CA row */
	tc_issue(&late, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &late), TCA_OK);
	ck_assert_int_eq(late.chg.journal_seq, 4);

	/* malformed: no expected fingerprint, no certificate */
	tc_reissue(&bad, "acme", re.ci.sha256, NULL, NULL);
	bad.chg.expect_current_sha256 = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_reissue(&bad, "acme", re.ci.sha256, NULL, NULL);
	bad.chg.cert = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	/* no active CA */
	tc_reissue(&bad, "nobody", re.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	tc_ca_delete(&bad, "acme");
	ck_assert_int_eq(commit1(st, &bad), TCA_OK);
	tc_reissue(&bad, "acme", re.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 2);
	verify_ok(st, 5, NULL);
}
END_TEST

/* /store/reissue/stale-expectation-refused */
START_TEST(test_reissue_stale)
{
	struct tchange ca, r1, stale, r2, r3;
	unsigned char zero[32];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_reissue(&r1, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &r1), TCA_OK);
	ck_assert_int_eq(r1.chg.journal_seq, 2);

	/* a second engine (or a restart) still believing ca is current */
	tc_reissue(&stale, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &stale), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(stale.chg.journal_seq, 0);
	memset(zero, 0, sizeof(zero));
	tc_reissue(&stale, "acme", zero, NULL, NULL);
	ck_assert_int_eq(commit1(st, &stale), TCA_ERR_ALREADY_EXISTS);
	/* nothing changed: no certificate row, no journal record, same CA */
	ck_assert_int_eq(journal_count(st), 2);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 2);
	assert_ca_certs(st, "acme", &r1, &ca);

	/* twice more in a row with the right expectations */
	tc_reissue(&r2, "acme", r1.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &r2), TCA_OK);
	ck_assert_int_eq(r2.chg.journal_seq, 3);
	assert_ca_certs(st, "acme", &r2, &r1);
	tc_reissue(&r3, "acme", r2.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &r3), TCA_OK);
	ck_assert_int_eq(r3.chg.journal_seq, 4);
	assert_ca_certs(st, "acme", &r3, &r2);
	/* the previous-but-one is no longer current: a late r1-based try fails */
	tc_reissue(&stale, "acme", r1.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &stale), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 4);
	verify_ok(st, 4, NULL);
}
END_TEST

/* /store/reissue/serial-keep-and-new */
START_TEST(test_reissue_serial_modes)
{
	struct tchange ca, dev, keep, fresh, d2, same, beta, clash;
	struct tca_ca_row row;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&dev, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &dev), TCA_OK);

	/* keep: the CA's own serial again is fine for its CA certificate */
	tc_reissue(&keep, "acme", ca.ci.sha256, &ca.ci, NULL);
	ck_assert_mem_eq(keep.ci.serial, ca.ci.serial, ca.ci.serial_len);
	ck_assert_int_eq(commit1(st, &keep), TCA_OK);
	assert_ca_certs(st, "acme", &keep, &ca);
	/* ... but a device certificate may still not reuse it */
	tc_issue(&d2, "acme", "dev-reuses-ca-serial");
	memcpy(d2.ci.serial, ca.ci.serial, sizeof(ca.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(d2.chg.journal_seq, 0);
	/* nor a device's serial be taken by a CA certificate */
	tc_reissue(&clash, "acme", keep.ci.sha256, &dev.ci, NULL);
	ck_assert_int_eq(commit1(st, &clash), TCA_ERR_ALREADY_EXISTS);
	/* an identical certificate is not a re-issuance */
	tc_reissue(&same, "acme", keep.ci.sha256, &keep.ci, NULL);
	memcpy(same.der, keep.der, sizeof(keep.der));
	memcpy(same.ci.sha256, keep.ci.sha256, 32);
	ck_assert_int_eq(commit1(st, &same), TCA_ERR_ALREADY_EXISTS);
	assert_ca_certs(st, "acme", &keep, &ca);

	/* new: a fresh serial, and devices may not reuse that one either */
	tc_reissue(&fresh, "acme", keep.ci.sha256, NULL, NULL);
	ck_assert_int_ne(memcmp(fresh.ci.serial, ca.ci.serial, 16), 0);
	ck_assert_int_eq(commit1(st, &fresh), TCA_OK);
	assert_ca_certs(st, "acme", &fresh, &keep);
	tc_issue(&d2, "acme", "dev-reuses-new-serial");
	memcpy(d2.ci.serial, fresh.ci.serial, sizeof(fresh.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	/* device serials stay strictly unique per issuer */
	tc_issue(&d2, "acme", "dev-reuses-device-serial");
	memcpy(d2.ci.serial, dev.ci.serial, sizeof(dev.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	/* the CA's kept serial under another issuer is someone else's business */
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_issue(&d2, "beta", "dev-beta");
	memcpy(d2.ci.serial, ca.ci.serial, sizeof(ca.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);

	/* keep is per CA: another CA cannot take acme's (issuer, serial) */
	tc_reissue(&clash, "beta", beta.ci.sha256, &ca.ci, NULL);
	memcpy(clash.ci.issuer_hash, ca.ci.issuer_hash, 32);
	ck_assert_int_eq(commit1(st, &clash), TCA_ERR_ALREADY_EXISTS);
	tc_ca_create(&clash, "gamma");
	memcpy(clash.ci.issuer_hash, ca.ci.issuer_hash, 32);
	memcpy(clash.ci.serial, ca.ci.serial, sizeof(ca.ci.serial));
	ck_assert_int_eq(commit1(st, &clash), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(st->ops->get_ca(st, "gamma", &row), TCA_ERR_NOT_FOUND);

	ck_assert_int_eq(cert_count(st, "acme", "ca"), 3);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	verify_ok(st, 6, NULL);
}
END_TEST

/* /store/renewal/state-round-trip */
START_TEST(test_renewal_state)
{
	struct tchange ca, rs1, rs2, bad, re;
	struct tca_renewal_state want;
	struct tca_ca_row row;
	struct ca_seen cs;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	assert_renewal_clear(&row.renewal);
	tca_ca_row_clear(&row);

	memset(&want, 0, sizeof(want));
	want.failed = 1;
	snprintf(want.reason, sizeof(want.reason), "token: CKR_DEVICE_ERROR "
	    "while signing \"CN=acme\"");
	want.attempts = 4000000000u;	/* beyond INT32_MAX */
	want.failed_since = 1700000000;
	want.next_retry = 1700003600;
	want.alerted = 1;
	want.expiry_alerted = 1;
	tc_renewal(&rs1, "acme", &want);
	ck_assert_int_eq(commit1(st, &rs1), TCA_OK);
	ck_assert_int_eq(rs1.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 1);	/* not journalled */
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &want);
	tca_ca_row_clear(&row);
	ca_seen(st, "acme", &cs);
	assert_renewal_eq(&cs.rs, &want);
	ck_assert_uint_eq(cs.prev_len, 0);

	/* a complete overwrite, not a merge */
	memset(&want, 0, sizeof(want));
	want.expiry_alerted = 1;
	want.next_retry = 42;
	tc_renewal(&rs2, "acme", &want);
	rs2.chg.op = "ignored";
	ck_assert_int_eq(commit1(st, &rs2), TCA_OK);
	ck_assert_int_eq(rs2.chg.journal_seq, 0);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &want);
	tca_ca_row_clear(&row);

	/* malformed / unknown tenant */
	tc_renewal(&bad, "acme", &want);
	bad.chg.renewal = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_renewal(&bad, "acme", &want);
	memset(bad.rs.reason, 'x', sizeof(bad.rs.reason));	/* unterminated */
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_renewal(&bad, "nobody", &want);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);

	/* a successful re-issuance ends the episode */
	want.failed = 1;
	want.attempts = 2;
	snprintf(want.reason, sizeof(want.reason), "busy");
	tc_renewal(&rs1, "acme", &want);
	ck_assert_int_eq(commit1(st, &rs1), TCA_OK);
	tc_reissue(&re, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &re), TCA_OK);
	ck_assert_int_eq(re.chg.journal_seq, 2);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	assert_renewal_clear(&row.renewal);
	tca_ca_row_clear(&row);
	ca_seen(st, "acme", &cs);
	assert_renewal_clear(&cs.rs);

	/* a deleted CA's state is not writable */
	tc_ca_delete(&bad, "acme");
	ck_assert_int_eq(commit1(st, &bad), TCA_OK);
	tc_renewal(&bad, "acme", &want);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	verify_ok(st, 3, NULL);
}
END_TEST

/* /store/commit/mixed-batch */
START_TEST(test_mixed_batch)
{
	struct tchange a, b, t[7];
	struct tca_change *chgs[7];
	struct tca_renewal_state rs_a, rs_b;
	struct tca_ca_row row;
	struct jcopy j;
	int res[7], i;

	tc_ca_create(&a, "acme");
	tc_ca_create(&b, "beta");
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	ck_assert_int_eq(commit1(st, &b), TCA_OK);

	memset(&rs_a, 0, sizeof(rs_a));
	rs_a.expiry_alerted = 1;
	memset(&rs_b, 0, sizeof(rs_b));
	rs_b.failed = 1;
	rs_b.attempts = 1;
	snprintf(rs_b.reason, sizeof(rs_b.reason), "signing failed");
	tc_issue(&t[0], "acme", "dev-1");
	tc_reissue(&t[1], "acme", a.ci.sha256, NULL, NULL);
	tc_renewal(&t[2], "acme", &rs_a);	/* after the re-issue: stays */
	tc_issue(&t[3], "acme", "dev-2");
	tc_reissue(&t[4], "beta", a.ci.sha256, NULL, NULL);	/* stale */
	tc_renewal(&t[5], "beta", &rs_b);
	tc_issue(&t[6], "nobody", "dev-3");
	for (i = 0; i < 7; i++)
		chgs[i] = &t[i].chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 7, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(res[2], TCA_OK);
	ck_assert_int_eq(res[3], TCA_OK);
	ck_assert_int_eq(res[4], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(res[5], TCA_OK);
	ck_assert_int_eq(res[6], TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(t[0].chg.journal_seq, 3);
	ck_assert_int_eq(t[1].chg.journal_seq, 4);
	ck_assert_int_eq(t[2].chg.journal_seq, 0);
	ck_assert_int_eq(t[3].chg.journal_seq, 5);
	ck_assert_int_eq(t[4].chg.journal_seq, 0);
	ck_assert_int_eq(t[5].chg.journal_seq, 0);
	ck_assert_int_eq(t[6].chg.journal_seq, 0);
	journal_get(st, 4, &j);
	ck_assert_str_eq(j.op, "ca-reissue");
	journal_get(st, 5, &j);
	ck_assert_str_eq(j.subject, "CN=dev-2");

	assert_ca_certs(st, "acme", &t[1], &a);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &rs_a);
	tca_ca_row_clear(&row);
	assert_ca_certs(st, "beta", &b, NULL);
	ck_assert_int_eq(st->ops->get_ca(st, "beta", &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &rs_b);
	tca_ca_row_clear(&row);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 2);
	ck_assert_int_eq(cert_count(st, "beta", "ca"), 1);
	verify_ok(st, 5, NULL);
}
END_TEST

/* ------------------------------------------------------ v1 -> v2 migration */

/* Schema version 1 exactly as the first release created it. */
static const char schema_v1_sql[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE cas ("
    " ca_id INTEGER PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('active', 'deleted')),"
    " key_type TEXT NOT NULL,"
    " key_id BLOB NOT NULL CHECK (length(key_id) BETWEEN 1 AND 32),"
    " created_at INTEGER NOT NULL,"
    " deleted_at INTEGER NOT NULL DEFAULT 0,"
    " current_cert_id INTEGER REFERENCES certificates(cert_id),"
    " previous_cert_id INTEGER REFERENCES certificates(cert_id));"
    "CREATE UNIQUE INDEX cas_one_active ON cas(tenant) WHERE status = 'active';"
    "CREATE TABLE certificates ("
    " cert_id INTEGER PRIMARY KEY,"
    " ca_id INTEGER NOT NULL REFERENCES cas(ca_id),"
    " tenant TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('ca', 'device')),"
    " issuer_hash BLOB NOT NULL CHECK (length(issuer_hash) = 32),"
    " serial BLOB NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),"
    " subject TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " der BLOB NOT NULL,"
    " UNIQUE (issuer_hash, serial));"
    "CREATE INDEX certificates_tenant ON certificates(tenant, cert_id);"
    "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
    " BEGIN SELECT RAISE(ABORT, 'certificate history is append-only'); END;"
    "CREATE TABLE journal ("
    " seq INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " op TEXT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " serial_hex TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " fingerprint_hex TEXT NOT NULL,"
    " uid INTEGER NOT NULL,"
    " pid INTEGER NOT NULL,"
    " details TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "PRAGMA application_id = 1413693745;"
    "PRAGMA user_version = 1;";

static long long
raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	long long v;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

/*
 * Turns the (closed) store at dbpath into a version 1 file holding the same
 * rows: a fresh file with the v1 schema, filled from the old one, moved over
 * it.  The rows were written by the real commit(), so the journal chain is
 * genuine.
 */
static void
downgrade_to_v1(void)
{
	char v1path[PATH_MAX + 32], sql[PATH_MAX + 512];
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	snprintf(v1path, sizeof(v1path), "%s/v1.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(v1path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, schema_v1_sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "v1 schema: %s", msg ? msg : "?");
	snprintf(sql, sizeof(sql), "ATTACH '%s' AS cur; BEGIN;"
	    "INSERT INTO cas SELECT ca_id, tenant, status, key_type, key_id,"
	    " created_at, deleted_at, current_cert_id, previous_cert_id"
	    " FROM cur.cas;"
	    "INSERT INTO certificates SELECT cert_id, ca_id, tenant, kind,"
	    " issuer_hash, serial, subject, fingerprint, not_before, not_after,"
	    " issued_at, der FROM cur.certificates;"
	    "INSERT INTO journal SELECT * FROM cur.journal;"
	    "COMMIT; DETACH cur;", dbpath);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "v1 copy: %s", msg ? msg : "?");
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	test_sh("rm -f '%s' '%s-wal' '%s-shm' && mv '%s' '%s'", dbpath,
	    dbpath, dbpath, v1path, dbpath);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'sqlite_autoindex_certificates_1'"), 1);
}

/* /store/migrate/v1-to-v2 */
START_TEST(test_migrate_v1)
{
	struct tchange ca, gone, beta, dev[3], keep, d2, rs;
	struct tca_renewal_state want;
	struct tca_ca_row row;
	struct ca_list l;
	struct ca_seen cs;
	unsigned char head[32], head2[32];
	char err[256] = "";
	tca_store *ro = NULL;
	struct tca_change *chg;
	int i, res = 0;

	tc_ca_create(&gone, "beta");
	ck_assert_int_eq(commit1(st, &gone), TCA_OK);
	tc_ca_delete(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	for (i = 0; i < 3; i++) {
		tc_issue(&dev[i], "acme", i == 0 ? "dev-0" : "dev-n");
		ck_assert_int_eq(commit1(st, &dev[i]), TCA_OK);
	}
	verify_ok(st, 7, head);
	st->ops->close(st);
	st = NULL;
	downgrade_to_v1();

	/* an audit reads a v1 file as it is, without migrating it */
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	verify_ok(ro, 7, head2);
	ck_assert_mem_eq(head, head2, 32);
	ck_assert_int_eq(ro->ops->get_ca(ro, "acme", &row), TCA_OK);
	ck_assert_mem_eq(row.cert_der, ca.der, sizeof(ca.der));
	ck_assert_ptr_null(row.prev_der);
	assert_renewal_clear(&row.renewal);
	tca_ca_row_clear(&row);
	ca_seen(ro, "beta", &cs);
	assert_renewal_clear(&cs.rs);
	ck_assert_int_eq(cert_count(ro, NULL, NULL), 6);
	tc_issue(&d2, "acme", "ro");
	chg = &d2.chg;
	ck_assert_int_eq(ro->ops->commit(ro, &chg, 1, &res),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ro->ops->close(ro);
	ro = NULL;
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 1);

	/* a read-write open migrates (through version 2 to the current one) */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'sqlite_autoindex_certificates_1'"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE type ="
	    " 'trigger' AND name IN ('certificates_serial_unique',"
	    " 'certificates_no_delete')"), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
	verify_ok(st, 7, head2);
	ck_assert_mem_eq(head, head2, 32);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_mem_eq(row.key_id, ca.key_id, sizeof(ca.key_id));
	ck_assert_mem_eq(row.cert_der, ca.der, sizeof(ca.der));
	assert_renewal_clear(&row.renewal);
	tca_ca_row_clear(&row);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(st->ops->foreach_ca(st, 1, ca_list_cb, &l), TCA_OK);
	ck_assert_int_eq(l.n, 3);
	ck_assert_str_eq(l.tenant[0], "acme");
	ck_assert_int_eq(l.status[1], TCA_CA_DELETED);
	ck_assert_int_eq(l.status[2], TCA_CA_ACTIVE);
	ck_assert_int_eq(l.has_der[1], 1);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 3);
	ck_assert_int_eq(cert_count(st, "beta", "ca"), 2);

	/* the migrated file enforces the v2 rules and continues the chain */
	tc_issue(&d2, "acme", "dup");
	memcpy(d2.ci.serial, dev[1].ci.serial, sizeof(dev[1].ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	tc_reissue(&keep, "acme", ca.ci.sha256, &ca.ci, NULL);
	ck_assert_int_eq(commit1(st, &keep), TCA_OK);
	ck_assert_int_eq(keep.chg.journal_seq, 8);
	assert_ca_certs(st, "acme", &keep, &ca);
	tc_issue(&d2, "acme", "reuses-ca-serial");
	memcpy(d2.ci.serial, ca.ci.serial, sizeof(ca.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	memset(&want, 0, sizeof(want));
	want.failed = 1;
	snprintf(want.reason, sizeof(want.reason), "after migration");
	tc_renewal(&rs, "beta", &want);
	ck_assert_int_eq(commit1(st, &rs), TCA_OK);
	verify_ok(st, 8, NULL);

	/* reopening a migrated file changes nothing */
	st->ops->close(st);
	st = NULL;
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	ca_seen(st, "beta", &cs);
	assert_renewal_eq(&cs.rs, &want);
	assert_ca_certs(st, "acme", &keep, &ca);
	verify_ok(st, 8, NULL);
}
END_TEST

/* /store/migrate/refused-when-inconsistent */
START_TEST(test_migrate_v1_dangling)
{
	struct tchange ca;
	char err[256] = "";
	tca_store *s2 = NULL;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	st->ops->close(st);
	st = NULL;
	downgrade_to_v1();
	/* a v1 file edited by hand: its CA points at no certificate */
	raw_exec("UPDATE cas SET previous_cert_id = 9999");
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, 0, &s2, err, sizeof(err)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_ptr_null(s2);
	ck_assert_msg(strstr(err, "dangling") != NULL, "err: %s", err);
	/* rolled back whole: still a readable v1 file */
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'sqlite_autoindex_certificates_1'"), 1);
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &s2,
	    err, sizeof(err)), TCA_OK);
	verify_ok(s2, 1, NULL);
	s2->ops->close(s2);
}
END_TEST

/* ============================================== schema version 3: revocation,
 * CRLs, tenant policy, certificate inventory */

static void
tc_crl_state(struct tchange *t, const char *tenant,
    const struct tca_renewal_state *rs)
{
	tc_base(t, TCA_CHANGE_CRL_STATE, NULL, tenant);
	t->rs = *rs;
	t->chg.renewal = &t->rs;
}

static void
tc_policy(struct tchange *t, const char *tenant, const char *policy)
{
	tc_base(t, TCA_CHANGE_POLICY_SET, "policy-set", tenant);
	t->chg.policy = policy;
}

/* Runs sql on a connection of its own; it must fail with want in the message. */
static void
raw_exec_fail(const char *sql, const char *want)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc != SQLITE_OK, "%s: succeeded", sql);
	ck_assert_msg(msg != NULL && strstr(msg, want) != NULL,
	    "%s: \"%s\", want \"%s\"", sql, msg ? msg : "?", want);
	sqlite3_free(msg);
	sqlite3_close(db);
}

/* What revoked_foreach / revoked_all listed. */
#define RL_MAX 16
struct rev_list {
	int n;
	int stop_after;		/* > 0: the callback stops the walk (77) then */
	char tenant[RL_MAX][TCA_TENANT_MAX + 1];
	char serial[RL_MAX][2 * TCA_SERIAL_MAX + 1];
	int64_t revoked_at[RL_MAX], not_after[RL_MAX];
	int reason[RL_MAX];
};

static int
rev_add(struct rev_list *l, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason, int64_t not_after)
{
	ck_assert_int_lt(l->n, RL_MAX);
	ck_assert_ptr_nonnull(serial);
	ck_assert_uint_ge(serial_len, 1);
	ck_assert_uint_le(serial_len, TCA_SERIAL_MAX);
	snprintf(l->tenant[l->n], sizeof(l->tenant[0]), "%s", tenant);
	tca_hex(serial, serial_len, l->serial[l->n]);
	l->revoked_at[l->n] = revoked_at;
	l->reason[l->n] = reason;
	l->not_after[l->n] = not_after;
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after ? 77 : 0;
}

static int
rev_cb(void *ctx, const unsigned char *serial, size_t serial_len,
    int64_t revoked_at, int reason, int64_t not_after)
{
	return rev_add(ctx, "", serial, serial_len, revoked_at, reason, not_after);
}

static int
rev_all_cb(void *ctx, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason)
{
	return rev_add(ctx, tenant, serial, serial_len, revoked_at, reason, -1);
}

/* revoked_foreach(tenant) or, with tenant NULL, revoked_all. */
static void
revoked_list(tca_store *s, const char *tenant, int64_t now, struct rev_list *l)
{
	memset(l, 0, sizeof(*l));
	if (tenant != NULL)
		ck_assert_int_eq(s->ops->revoked_foreach(s, tenant, now, rev_cb, l),
		    TCA_OK);
	else
		ck_assert_int_eq(s->ops->revoked_all(s, now, rev_all_cb, l), TCA_OK);
}

/* Index of ci's entry (of tenant, unless NULL) in l, or -1; listed once. */
static int
rev_find(const struct rev_list *l, const char *tenant,
    const struct tca_cert_info *ci)
{
	char hex[2 * TCA_SERIAL_MAX + 1];
	int i, found = -1;

	tca_hex(ci->serial, ci->serial_len, hex);
	for (i = 0; i < l->n; i++) {
		if (strcmp(l->serial[i], hex) != 0 ||
		    (tenant != NULL && strcmp(l->tenant[i], tenant) != 0))
			continue;
		ck_assert_msg(found == -1, "serial %s listed twice", hex);
		found = i;
	}
	return found;
}

/* What cert_list listed. */
#define CL_MAX 32
struct cert_list {
	int n;
	int stop_after;		/* > 0: the callback stops the walk (77) then */
	const char *tenant;	/* every row must be of this tenant */
	int64_t after;		/* every row must come after this cert_id */
	int64_t cert_id[CL_MAX], not_before[CL_MAX], not_after[CL_MAX];
	int64_t issued_at[CL_MAX], revoked_at[CL_MAX];
	int revoked[CL_MAX], reason[CL_MAX];
	char serial[CL_MAX][2 * TCA_SERIAL_MAX + 1];
	char fp[CL_MAX][65];
	char subject[CL_MAX][TCA_SUBJECT_MAX];
	char device_id[CL_MAX][TCA_SUBJECT_MAX];
};

static int
cert_list_cb(void *ctx, const struct tca_cert_row *row)
{
	struct cert_list *l = ctx;
	int i = l->n;

	ck_assert_int_lt(i, CL_MAX);
	ck_assert_str_eq(row->tenant, l->tenant);
	ck_assert_str_eq(row->kind, "device");
	ck_assert_ptr_null(row->der);
	ck_assert_uint_eq(row->der_len, 0);
	ck_assert_ptr_null(row->owned_);
	/* issue order, after the cursor */
	ck_assert_int_gt(row->cert_id, i > 0 ? l->cert_id[i - 1] : l->after);
	l->cert_id[i] = row->cert_id;
	l->not_before[i] = row->not_before;
	l->not_after[i] = row->not_after;
	l->issued_at[i] = row->issued_at;
	l->revoked[i] = row->revoked;
	l->revoked_at[i] = row->revoked_at;
	l->reason[i] = row->reason;
	if (!row->revoked) {
		ck_assert_int_eq(row->revoked_at, 0);
		ck_assert_int_eq(row->reason, 0);
	}
	snprintf(l->serial[i], sizeof(l->serial[0]), "%s", row->serial_hex);
	snprintf(l->fp[i], sizeof(l->fp[0]), "%s", row->fingerprint_hex);
	snprintf(l->subject[i], sizeof(l->subject[0]), "%s", row->subject);
	ck_assert_ptr_nonnull(row->device_id);
	snprintf(l->device_id[i], sizeof(l->device_id[0]), "%s", row->device_id);
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after ? 77 : 0;
}

static int
list_certs(tca_store *s, const char *tenant, const char *device_id,
    enum tca_cert_state state, int64_t now, int64_t after, size_t limit,
    struct cert_list *l)
{
	struct tca_cert_query q;

	memset(l, 0, sizeof(*l));
	l->tenant = tenant;
	l->after = after;
	memset(&q, 0, sizeof(q));
	q.tenant = tenant;
	q.device_id = device_id;
	q.state = state;
	q.now = now;
	q.after_cert_id = after;
	q.limit = limit;
	return s->ops->cert_list(s, &q, cert_list_cb, l);
}

/* Row i of l describes the certificate of t (issued by commit1). */
static void
assert_cl_row(const struct cert_list *l, int i, const struct tchange *t)
{
	char hex[80];

	ck_assert_int_lt(i, l->n);
	tca_hex(t->ci.serial, t->ci.serial_len, hex);
	ck_assert_str_eq(l->serial[i], hex);
	tca_hex(t->ci.sha256, 32, hex);
	ck_assert_str_eq(l->fp[i], hex);
	ck_assert_str_eq(l->subject[i], t->ci.subject);
	ck_assert_str_eq(l->device_id[i], t->chg.device_id != NULL ?
	    t->chg.device_id : "");
	ck_assert_int_eq(l->not_before[i], t->ci.not_before);
	ck_assert_int_eq(l->not_after[i], t->ci.not_after);
	ck_assert_int_eq(l->issued_at[i], t->chg.time_ms / 1000);
}

/* Asserts l lists exactly the certificates of want[0..n), in that order. */
static void
assert_cl(const struct cert_list *l, struct tchange *const *want, int n)
{
	int i;

	ck_assert_int_eq(l->n, n);
	for (i = 0; i < n; i++)
		assert_cl_row(l, i, want[i]);
}

/* A certificate of tenant's active CA by the serial of t; TCA_OK or not. */
static int
cert_get_of(tca_store *s, const char *tenant, const struct tchange *t,
    struct tca_cert_row *row)
{
	return s->ops->cert_get(s, tenant, t->ci.serial, t->ci.serial_len, row);
}

/* Whether the certificate of t is revoked; when it is, how. */
static int
is_revoked(tca_store *s, const char *tenant, const struct tchange *t,
    int64_t *at, int *reason)
{
	struct tca_cert_row row;
	int revoked;

	ck_assert_int_eq(cert_get_of(s, tenant, t, &row), TCA_OK);
	revoked = row.revoked;
	if (at != NULL)
		*at = row.revoked_at;
	if (reason != NULL)
		*reason = row.reason;
	tca_cert_row_clear(&row);
	return revoked;
}

static void
assert_counts(tca_store *s, int64_t now, uint64_t valid, uint64_t revoked,
    uint64_t expired)
{
	struct tca_cert_counts c;

	memset(&c, 0xab, sizeof(c));
	ck_assert_int_eq(s->ops->cert_counts(s, now, &c), TCA_OK);
	ck_assert_uint_eq(c.valid, valid);
	ck_assert_uint_eq(c.revoked, revoked);
	ck_assert_uint_eq(c.expired, expired);
}

/* ------------------------------------------------------------- revoke */

/* /store/revoke/journaled-once */
START_TEST(test_revoke)
{
	static const int bad_reasons[] = { 6, 7, 8, 10, 11, -1 };
	static const int good_reasons[] = { 0, 1, 2, 3, 4, 5, 9 };
	struct tchange acme, beta, a1, a2, b1, b2, r, again, bad, d;
	struct tca_change *chgs[2];
	struct jcopy j;
	char hex[80];
	int64_t at;
	int res[2], reason;
	size_t i;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_issue(&a1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &a1), TCA_OK);
	tc_issue(&a2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &a2), TCA_OK);
	tc_issue(&b1, "beta", "dev-1");
	ck_assert_int_eq(commit1(st, &b1), TCA_OK);
	/* b2 shares a2's serial: fine under another issuer */
	tc_issue(&b2, "beta", "dev-2");
	memcpy(b2.ci.serial, a2.ci.serial, sizeof(a2.ci.serial));
	ck_assert_int_eq(commit1(st, &b2), TCA_OK);
	ck_assert_int_eq(b2.chg.journal_seq, 6);

	tc_revoke(&r, "acme", &a1.ci, 1, T_NOW + 60);
	r.chg.details = "by=ops";
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	ck_assert_int_eq(r.chg.journal_seq, 7);
	ck_assert_int_eq(r.chg.revoked.revoked_at, T_NOW + 60);
	ck_assert_int_eq(r.chg.revoked.reason, 1);
	ck_assert_int_eq(r.chg.revoked.not_after, a1.ci.not_after);
	ck_assert_str_eq(r.chg.revoked.subject, "CN=dev-1");
	journal_get(st, 7, &j);
	ck_assert_str_eq(j.op, "revoke");
	ck_assert_str_eq(j.tenant, "acme");
	tca_hex(a1.ci.serial, a1.ci.serial_len, hex);
	ck_assert_str_eq(j.serial, hex);
	ck_assert_str_eq(j.subject, "CN=dev-1");
	tca_hex(a1.ci.sha256, 32, hex);
	ck_assert_str_eq(j.fp, hex);
	ck_assert_str_eq(j.details, "by=ops");
	ck_assert_int_eq(j.time_ms, r.chg.time_ms);
	ck_assert_uint_eq(j.uid, 1000);
	ck_assert_int_eq(j.pid, 4242);
	ck_assert_int_eq(is_revoked(st, "acme", &a1, &at, &reason), 1);
	ck_assert_int_eq(at, T_NOW + 60);
	ck_assert_int_eq(reason, 1);

	/* again: irreversible, so nothing changes; the first one is reported */
	tc_revoke(&again, "acme", &a1.ci, 4, T_NOW + 120);
	ck_assert_int_eq(commit1(st, &again), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(again.chg.journal_seq, 0);
	ck_assert_int_eq(again.chg.revoked.revoked_at, T_NOW + 60);
	ck_assert_int_eq(again.chg.revoked.reason, 1);
	ck_assert_int_eq(again.chg.revoked.not_after, a1.ci.not_after);
	ck_assert_str_eq(again.chg.revoked.subject, "CN=dev-1");
	ck_assert_int_eq(journal_count(st), 7);
	ck_assert_int_eq(is_revoked(st, "acme", &a1, &at, &reason), 1);
	ck_assert_int_eq(at, T_NOW + 60);
	ck_assert_int_eq(reason, 1);

	/* twice in one batch: the second one sees the first */
	tc_revoke(&r, "acme", &a2.ci, 0, T_NOW + 70);
	tc_revoke(&again, "acme", &a2.ci, 5, T_NOW + 80);
	chgs[0] = &r.chg;
	chgs[1] = &again.chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(r.chg.journal_seq, 8);
	ck_assert_int_eq(again.chg.journal_seq, 0);
	ck_assert_int_eq(again.chg.revoked.revoked_at, T_NOW + 70);
	ck_assert_int_eq(again.chg.revoked.reason, 0);
	ck_assert_str_eq(again.chg.revoked.subject, "CN=dev-2");
	/* beta's certificate with the same serial is another certificate */
	ck_assert_int_eq(is_revoked(st, "beta", &b2, NULL, NULL), 0);
	ck_assert_int_eq(is_revoked(st, "beta", &b1, NULL, NULL), 0);

	/* not found: unknown serial, another tenant's, the CA's own, a
	 * prefix of a serial, a tenant without a CA */
	tc_revoke(&bad, "acme", NULL, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	tc_revoke(&bad, "acme", &b1.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_revoke(&bad, "acme", &acme.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_revoke(&bad, "beta", &beta.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.serial_len = b1.ci.serial_len - 1;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_revoke(&bad, "nobody", &a1.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 8);

	/* malformed */
	for (i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
		tc_revoke(&bad, "beta", &b1.ci, bad_reasons[i], T_NOW);
		ck_assert_msg(commit1(st, &bad) == TCA_ERR_INVALID_ARG,
		    "reason %d accepted", bad_reasons[i]);
	}
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.serial_len = 0;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.serial = bad.der;	/* 21 readable bytes */
	bad.chg.serial_len = TCA_SERIAL_MAX + 1;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.serial = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.op = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_revoke(&bad, "beta", &b1.ci, 1, T_NOW);
	bad.chg.op = "";
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	ck_assert_int_eq(is_revoked(st, "beta", &b1, NULL, NULL), 0);
	ck_assert_int_eq(journal_count(st), 8);

	/* every reason the store takes (the table's CHECK agrees) */
	for (i = 0; i < sizeof(good_reasons) / sizeof(good_reasons[0]); i++) {
		tc_issue(&d, "beta", "dev-r");
		ck_assert_int_eq(commit1(st, &d), TCA_OK);
		tc_revoke(&r, "beta", &d.ci, good_reasons[i], T_NOW + (int64_t)i);
		ck_assert_msg(commit1(st, &r) == TCA_OK, "reason %d refused",
		    good_reasons[i]);
		ck_assert_int_eq(r.chg.revoked.reason, good_reasons[i]);
		ck_assert_int_eq(is_revoked(st, "beta", &d, &at, &reason), 1);
		ck_assert_int_eq(reason, good_reasons[i]);
		ck_assert_int_eq(at, T_NOW + (int64_t)i);
	}
	verify_ok(st, 8 + 2 * 7, NULL);
}
END_TEST

/* /store/revoke/irreversible-through-sql */
START_TEST(test_revoke_sql)
{
	struct tchange ca, d1, d2, r;
	char sql[512];
	int64_t at;
	int reason;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);
	tc_revoke(&r, "acme", &d1.ci, 1, T_NOW + 5);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);

	raw_exec_fail("UPDATE revocations SET reason = 0",
	    "revocation is irreversible");
	raw_exec_fail("UPDATE revocations SET revoked_at = revoked_at + 1",
	    "revocation is irreversible");
	raw_exec_fail("DELETE FROM revocations", "revocation is irreversible");
	/* the table takes no reason commit() refuses either */
	snprintf(sql, sizeof(sql), "INSERT INTO revocations (cert_id, ca_id,"
	    " revoked_at, reason, not_after) SELECT cert_id, ca_id, 1, 6,"
	    " not_after FROM certificates WHERE subject = 'CN=dev-2'");
	raw_exec_fail(sql, "CHECK constraint failed");
	ck_assert_int_eq(raw_int("SELECT count(*) FROM revocations"), 1);
	ck_assert_int_eq(is_revoked(st, "acme", &d1, &at, &reason), 1);
	ck_assert_int_eq(at, T_NOW + 5);
	ck_assert_int_eq(reason, 1);
	ck_assert_int_eq(is_revoked(st, "acme", &d2, NULL, NULL), 0);
	verify_ok(st, 4, NULL);
}
END_TEST

/* /store/revoke/only-the-active-ca */
START_TEST(test_revoke_deleted_ca)
{
	struct tchange ca, d1, d2, del, ca2, n1, r;
	struct tca_cert_row row;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);
	tc_revoke(&r, "acme", &d1.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);

	/* no active CA */
	tc_revoke(&r, "acme", &d2.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(r.chg.journal_seq, 0);

	/* the tenant's new CA did not issue the old certificates */
	tc_ca_create(&ca2, "acme");
	ck_assert_int_eq(commit1(st, &ca2), TCA_OK);
	tc_revoke(&r, "acme", &d2.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_ERR_NOT_FOUND);
	tc_revoke(&r, "acme", &d1.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "acme", &d1, &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "acme", &d2, &row), TCA_ERR_NOT_FOUND);
	tc_issue(&n1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &n1), TCA_OK);
	tc_revoke(&r, "acme", &n1.ci, 3, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	ck_assert_int_eq(r.chg.journal_seq, 8);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM revocations"), 2);
	verify_ok(st, 8, NULL);
}
END_TEST

/* /store/revoke/revoked-foreach-and-all */
START_TEST(test_revoked_foreach)
{
	struct tchange acme, beta, d0, d1, d2, d3, e0, r, del, acme2, f0;
	struct rev_list l;
	char hex[80];
	int i;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_issue(&d0, "acme", "dev-0");
	ck_assert_int_eq(commit1(st, &d0), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	d1.ci.not_after = T_NOW - 10;	/* expired before now */
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &d2), TCA_OK);
	tc_issue(&d3, "acme", "dev-3");
	ck_assert_int_eq(commit1(st, &d3), TCA_OK);
	tc_issue(&e0, "beta", "dev-0");
	ck_assert_int_eq(commit1(st, &e0), TCA_OK);

	/* nothing revoked yet */
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 0);
	revoked_list(st, NULL, T_NOW, &l);
	ck_assert_int_eq(l.n, 0);

	tc_revoke(&r, "acme", &d2.ci, 1, T_NOW + 5);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_revoke(&r, "acme", &d1.ci, 4, T_NOW + 6);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	/* the out field tells the caller it is out of the CRL already */
	ck_assert_int_eq(r.chg.revoked.not_after, T_NOW - 10);
	tc_revoke(&r, "acme", &d0.ci, 5, T_NOW + 7);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_revoke(&r, "beta", &e0.ci, 9, T_NOW + 8);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);

	/* unexpired ones of the tenant's active CA only */
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(rev_find(&l, NULL, &d1.ci), -1);
	ck_assert_int_eq(rev_find(&l, NULL, &d3.ci), -1);
	ck_assert_int_eq(rev_find(&l, NULL, &e0.ci), -1);
	i = rev_find(&l, NULL, &d0.ci);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(l.revoked_at[i], T_NOW + 7);
	ck_assert_int_eq(l.reason[i], 5);
	ck_assert_int_eq(l.not_after[i], d0.ci.not_after);
	i = rev_find(&l, NULL, &d2.ci);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(l.revoked_at[i], T_NOW + 5);
	ck_assert_int_eq(l.reason[i], 1);
	ck_assert_int_eq(l.not_after[i], d2.ci.not_after);
	tca_hex(d2.ci.serial, d2.ci.serial_len, hex);
	ck_assert_str_eq(l.serial[i], hex);
	/* earlier, d1 was still in force */
	revoked_list(st, "acme", T_NOW - 20, &l);
	ck_assert_int_eq(l.n, 3);
	i = rev_find(&l, NULL, &d1.ci);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(l.not_after[i], T_NOW - 10);
	ck_assert_int_eq(l.reason[i], 4);
	/* not_after == now still lists, one second later not */
	revoked_list(st, "acme", d0.ci.not_after, &l);
	ck_assert_int_eq(l.n, 2);
	revoked_list(st, "acme", d0.ci.not_after + 1, &l);
	ck_assert_int_eq(l.n, 0);
	revoked_list(st, "beta", T_NOW, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_ge(rev_find(&l, NULL, &e0.ci), 0);
	ck_assert_int_eq(l.reason[0], 9);
	revoked_list(st, "nobody", T_NOW, &l);
	ck_assert_int_eq(l.n, 0);

	/* across tenants */
	revoked_list(st, NULL, T_NOW, &l);
	ck_assert_int_eq(l.n, 3);
	i = rev_find(&l, "acme", &d0.ci);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(l.revoked_at[i], T_NOW + 7);
	ck_assert_int_eq(l.reason[i], 5);
	ck_assert_int_ge(rev_find(&l, "acme", &d2.ci), 0);
	i = rev_find(&l, "beta", &e0.ci);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(l.revoked_at[i], T_NOW + 8);
	ck_assert_int_eq(l.reason[i], 9);
	ck_assert_int_eq(rev_find(&l, NULL, &d1.ci), -1);
	revoked_list(st, NULL, T_NOW - 20, &l);
	ck_assert_int_eq(l.n, 4);

	/* a callback stops the walks */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	ck_assert_int_eq(st->ops->revoked_foreach(st, "acme", T_NOW, rev_cb, &l), 77);
	ck_assert_int_eq(l.n, 1);
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	ck_assert_int_eq(st->ops->revoked_all(st, T_NOW, rev_all_cb, &l), 77);
	ck_assert_int_eq(l.n, 2);

	/* a new CA of the tenant starts without the old CA's revocations */
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 0);
	tc_ca_create(&acme2, "acme");
	ck_assert_int_eq(commit1(st, &acme2), TCA_OK);
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 0);
	revoked_list(st, NULL, T_NOW, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_ge(rev_find(&l, "beta", &e0.ci), 0);
	tc_issue(&f0, "acme", "dev-0");
	ck_assert_int_eq(commit1(st, &f0), TCA_OK);
	tc_revoke(&r, "acme", &f0.ci, 0, T_NOW + 9);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_ge(rev_find(&l, NULL, &f0.ci), 0);
	revoked_list(st, NULL, T_NOW, &l);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_ge(rev_find(&l, "acme", &f0.ci), 0);
	ck_assert_int_ge(rev_find(&l, "beta", &e0.ci), 0);
	/* and a deleted CA's revocations leave revoked_all */
	tc_ca_delete(&del, "beta");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	revoked_list(st, NULL, T_NOW, &l);
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_ge(rev_find(&l, "acme", &f0.ci), 0);
	revoked_list(st, "beta", T_NOW, &l);
	ck_assert_int_eq(l.n, 0);
	verify_ok(st, 16, NULL);
}
END_TEST

/*
 * /store/revoke/revoked-foreach-in-issue-order
 *
 * store.h promises issue order (the CRL's entries follow it), whatever the
 * order of the revocations.
 */
START_TEST(test_revoked_order)
{
	struct tchange ca, d[3], r;
	struct rev_list l;
	int i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	for (i = 0; i < 3; i++) {
		tc_issue(&d[i], "acme", "dev");
		ck_assert_int_eq(commit1(st, &d[i]), TCA_OK);
	}
	/* revoked last-issued first */
	for (i = 2; i >= 0; i--) {
		tc_revoke(&r, "acme", &d[i].ci, 1, T_NOW + 10 * (3 - i));
		ck_assert_int_eq(commit1(st, &r), TCA_OK);
	}
	revoked_list(st, "acme", T_NOW, &l);
	ck_assert_int_eq(l.n, 3);
	ck_assert_msg(rev_find(&l, NULL, &d[0].ci) == 0 &&
	    rev_find(&l, NULL, &d[1].ci) == 1 && rev_find(&l, NULL, &d[2].ci) == 2,
	    "revoked_foreach is not in issue order");
}
END_TEST

/* -------------------------------------------------------------------- crl */

/* The tenant's current CRL is the one t published. */
static void
assert_crl(tca_store *s, const char *tenant, const struct tchange *t)
{
	struct tca_crl_row row;

	memset(&row, 0xab, sizeof(row));
	ck_assert_int_eq(s->ops->crl_get(s, tenant, &row), TCA_OK);
	ck_assert_uint_eq(row.crl_number, t->chg.crl_number);
	ck_assert_int_eq(row.this_update, t->chg.this_update);
	ck_assert_int_eq(row.next_update, t->chg.next_update);
	ck_assert_uint_eq(row.entries, t->chg.crl_entries);
	ck_assert_ptr_nonnull(row.der);
	ck_assert_uint_eq(row.der_len, t->chg.crl_len);
	ck_assert_mem_eq(row.der, t->chg.crl_der, t->chg.crl_len);
	tca_crl_row_clear(&row);
	ck_assert_ptr_null(row.der);
}

static void
assert_no_crl(tca_store *s, const char *tenant)
{
	struct tca_crl_row row;

	memset(&row, 0xab, sizeof(row));
	ck_assert_int_eq(s->ops->crl_get(s, tenant, &row), TCA_ERR_NOT_FOUND);
	ck_assert_ptr_null(row.der);
	tca_crl_row_clear(&row);
}

/* /store/crl/numbers-grow */
START_TEST(test_crl)
{
	struct tchange acme, beta, c1, c5, c, del, acme2, b1, cs[3];
	struct tca_change *chgs[3];
	struct jcopy j;
	int res[3];

	tc_crl(&c, "acme", 1, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_NOT_FOUND);
	assert_no_crl(st, "acme");
	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	assert_no_crl(st, "acme");

	tc_crl(&c1, "acme", 1, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &c1), TCA_OK);
	ck_assert_int_eq(c1.chg.journal_seq, 3);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "crl");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.subject, "CN=acme");
	ck_assert_str_eq(j.serial, "");
	ck_assert_str_eq(j.fp, "");
	ck_assert_str_eq(j.details, "crl-number=1");
	ck_assert_int_eq(j.time_ms, c1.chg.time_ms);
	assert_crl(st, "acme", &c1);
	assert_no_crl(st, "beta");

	/* the same or a lower number is in use */
	tc_crl(&c, "acme", 1, T_NOW + 60, 1);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(c.chg.journal_seq, 0);
	assert_crl(st, "acme", &c1);
	tc_crl(&c5, "acme", 5, T_NOW + 60, 2);
	ck_assert_int_eq(commit1(st, &c5), TCA_OK);
	ck_assert_int_eq(c5.chg.journal_seq, 4);
	assert_crl(st, "acme", &c5);
	tc_crl(&c, "acme", 3, T_NOW + 120, 2);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	tc_crl(&c, "acme", 5, T_NOW + 120, 2);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	assert_crl(st, "acme", &c5);
	ck_assert_int_eq(journal_count(st), 4);

	/* numbers are per tenant */
	tc_crl(&b1, "beta", 1, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &b1), TCA_OK);
	assert_crl(st, "beta", &b1);
	assert_crl(st, "acme", &c5);

	/* malformed */
	tc_crl(&c, "acme", 9, T_NOW, 0);
	c.chg.next_update = c.chg.this_update;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", 9, T_NOW, 0);
	c.chg.next_update = c.chg.this_update - 1;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", 0, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", (uint64_t)INT64_MAX + 1, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", 9, T_NOW, 0);
	c.chg.crl_der = NULL;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", 9, T_NOW, 0);
	c.chg.crl_len = 0;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	tc_crl(&c, "acme", 9, T_NOW, 0);
	c.chg.op = NULL;
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(c.chg.journal_seq, 0);
	assert_crl(st, "acme", &c5);

	/* in one batch: each sees the one before */
	tc_crl(&cs[0], "acme", 7, T_NOW + 200, 3);
	tc_crl(&cs[1], "acme", 8, T_NOW + 300, 4);
	tc_crl(&cs[2], "acme", 8, T_NOW + 400, 5);
	chgs[0] = &cs[0].chg;
	chgs[1] = &cs[1].chg;
	chgs[2] = &cs[2].chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 3, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(res[2], TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(cs[1].chg.journal_seq, 7);
	assert_crl(st, "acme", &cs[1]);

	/* through SQL: the number only grows, the row stays */
	raw_exec_fail("UPDATE crls SET crl_number = 4 WHERE tenant = 'acme'",
	    "CRL numbers only grow");
	raw_exec_fail("UPDATE crls SET crl_number = crl_number", "CRL numbers only grow");
	raw_exec_fail("UPDATE crls SET crl_number = 0", "CRL numbers only grow");
	raw_exec_fail("DELETE FROM crls", "CRLs are replaced, never deleted");
	assert_crl(st, "acme", &cs[1]);

	/* the tenant's next CA continues after its old CA's numbers */
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	assert_no_crl(st, "acme");
	tc_crl(&c, "acme", 9, T_NOW, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_NOT_FOUND);
	tc_ca_create(&acme2, "acme");
	ck_assert_int_eq(commit1(st, &acme2), TCA_OK);
	assert_no_crl(st, "acme");
	tc_crl(&c, "acme", 1, T_NOW + 500, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	tc_crl(&c, "acme", 8, T_NOW + 500, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_ERR_ALREADY_EXISTS);
	assert_no_crl(st, "acme");
	tc_crl(&c, "acme", 9, T_NOW + 500, 0);
	ck_assert_int_eq(commit1(st, &c), TCA_OK);
	ck_assert_int_eq(c.chg.journal_seq, 10);
	assert_crl(st, "acme", &c);
	journal_get(st, 10, &j);
	ck_assert_str_eq(j.op, "crl");
	ck_assert_str_eq(j.subject, "CN=acme");
	/* the old CA's CRL row is kept, the number unique for the tenant */
	ck_assert_int_eq(raw_int("SELECT count(*) FROM crls WHERE tenant = 'acme'"), 2);
	/* beta unaffected */
	assert_crl(st, "beta", &b1);
	verify_ok(st, 10, NULL);
}
END_TEST

/* ----------------------------------------------------------------- policy */

/* What foreach_ca and get_ca show of one tenant's active CA (v3 fields). */
struct ca_v3 {
	const char *tenant;
	int n;
	struct tca_renewal_state renewal, crl;
	int policy_null;
	char policy[16400];
};

static int
ca_v3_cb(void *ctx, const struct tca_ca_row *row)
{
	struct ca_v3 *cv = ctx;

	if (strcmp(row->tenant, cv->tenant) != 0 || row->status != TCA_CA_ACTIVE)
		return 0;
	cv->n++;
	cv->renewal = row->renewal;
	cv->crl = row->crl;
	cv->policy_null = row->policy == NULL;
	if (row->policy != NULL) {
		ck_assert_uint_lt(strlen(row->policy), sizeof(cv->policy));
		snprintf(cv->policy, sizeof(cv->policy), "%s", row->policy);
	}
	return 0;
}

/* Asserts get_ca and foreach_ca agree on tenant's CA; fills cv. */
static void
ca_v3(tca_store *s, const char *tenant, struct ca_v3 *cv)
{
	struct tca_ca_row row;

	memset(cv, 0, sizeof(*cv));
	cv->tenant = tenant;
	ck_assert_int_eq(s->ops->foreach_ca(s, 1, ca_v3_cb, cv), TCA_OK);
	ck_assert_int_eq(cv->n, 1);
	ck_assert_int_eq(s->ops->get_ca(s, tenant, &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &cv->renewal);
	assert_renewal_eq(&row.crl, &cv->crl);
	ck_assert_int_eq(row.policy == NULL, cv->policy_null);
	if (row.policy != NULL)
		ck_assert_str_eq(row.policy, cv->policy);
	tca_ca_row_clear(&row);
	ck_assert_ptr_null(row.policy);
}

struct jdetails {
	int64_t want;
	size_t len;
	char head[64];
};

static int
jdetails_cb(void *ctx, const struct tca_journal_record *rec)
{
	struct jdetails *jd = ctx;

	if (rec->seq != jd->want)
		return 0;
	jd->len = strlen(rec->details);
	snprintf(jd->head, sizeof(jd->head), "%s", rec->details);
	return 1;
}

/* /store/policy/set-journaled */
START_TEST(test_policy)
{
	static char big[16386];
	static const char text[] = "validity-days=30\nkey-types=ec-p256,ec-p384\n";
	struct tchange acme, beta, p, bad, re, del, acme2;
	struct tca_renewal_state rs;
	struct ca_v3 cv;
	struct jdetails jd;
	struct jcopy j;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	ca_v3(st, "acme", &cv);
	ck_assert_int_eq(cv.policy_null, 0);	/* "" = the defaults */
	ck_assert_str_eq(cv.policy, "");
	assert_renewal_clear(&cv.crl);

	tc_policy(&p, "acme", text);
	p.chg.details = "ignored: the text is the details";
	ck_assert_int_eq(commit1(st, &p), TCA_OK);
	ck_assert_int_eq(p.chg.journal_seq, 3);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "policy-set");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.subject, "CN=acme");
	ck_assert_str_eq(j.serial, "");
	ck_assert_str_eq(j.fp, "");
	ck_assert_str_eq(j.details, text);
	ck_assert_int_eq(j.time_ms, p.chg.time_ms);
	ca_v3(st, "acme", &cv);
	ck_assert_str_eq(cv.policy, text);
	ca_v3(st, "beta", &cv);
	ck_assert_str_eq(cv.policy, "");

	/* back to the defaults */
	tc_policy(&p, "acme", "");
	ck_assert_int_eq(commit1(st, &p), TCA_OK);
	ck_assert_int_eq(p.chg.journal_seq, 4);
	journal_get(st, 4, &j);
	ck_assert_str_eq(j.details, "");
	ca_v3(st, "acme", &cv);
	ck_assert_int_eq(cv.policy_null, 0);
	ck_assert_str_eq(cv.policy, "");

	/* malformed / no CA */
	tc_policy(&bad, "acme", NULL);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	memset(big, 'a', 16385);
	big[16385] = '\0';
	tc_policy(&bad, "acme", big);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_policy(&bad, "acme", text);
	bad.chg.op = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_policy(&bad, "nobody", text);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 4);

	/* the longest policy, whole in the row and the journal */
	big[16384] = '\0';
	tc_policy(&p, "acme", big);
	ck_assert_int_eq(commit1(st, &p), TCA_OK);
	ck_assert_int_eq(p.chg.journal_seq, 5);
	memset(&jd, 0, sizeof(jd));
	jd.want = 5;
	ck_assert_int_eq(st->ops->journal_foreach(st, 5, jdetails_cb, &jd), 1);
	ck_assert_uint_eq(jd.len, 16384);
	ca_v3(st, "acme", &cv);
	ck_assert_uint_eq(strlen(cv.policy), 16384);
	ck_assert_str_eq(cv.policy, big);

	/* kept across re-issuance and renewal bookkeeping */
	memset(&rs, 0, sizeof(rs));
	rs.failed = 1;
	tc_renewal(&p, "acme", &rs);
	ck_assert_int_eq(commit1(st, &p), TCA_OK);
	tc_reissue(&re, "acme", acme.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &re), TCA_OK);
	ca_v3(st, "acme", &cv);
	ck_assert_str_eq(cv.policy, big);

	/* a deleted CA's policy is gone with it; a new CA starts at "" */
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	tc_policy(&bad, "acme", text);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_ca_create(&acme2, "acme");
	ck_assert_int_eq(commit1(st, &acme2), TCA_OK);
	ca_v3(st, "acme", &cv);
	ck_assert_str_eq(cv.policy, "");
	verify_ok(st, 8, NULL);
}
END_TEST

/* /store/policy/crl-state-not-journaled */
START_TEST(test_crl_state)
{
	struct tchange ca, s1, bad, rn, del;
	struct tca_renewal_state want, ren, zero;
	struct ca_v3 cv;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	ca_v3(st, "acme", &cv);
	assert_renewal_clear(&cv.crl);

	memset(&want, 0, sizeof(want));
	want.failed = 1;
	snprintf(want.reason, sizeof(want.reason), "token: CKR_DEVICE_ERROR "
	    "while signing the CRL of \"CN=acme\"");
	want.attempts = 4000000000u;
	want.failed_since = T_NOW - 3600;
	want.next_retry = T_NOW + 600;
	want.alerted = 1;
	tc_crl_state(&s1, "acme", &want);
	s1.rs.expiry_alerted = 1;	/* not part of the CRL state: reads 0 */
	ck_assert_int_eq(commit1(st, &s1), TCA_OK);
	ck_assert_int_eq(s1.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 1);
	ca_v3(st, "acme", &cv);
	assert_renewal_eq(&cv.crl, &want);
	assert_renewal_clear(&cv.renewal);

	/* the two states are independent */
	memset(&ren, 0, sizeof(ren));
	ren.failed = 1;
	ren.attempts = 2;
	ren.expiry_alerted = 1;
	snprintf(ren.reason, sizeof(ren.reason), "renewal");
	tc_renewal(&rn, "acme", &ren);
	ck_assert_int_eq(commit1(st, &rn), TCA_OK);
	ca_v3(st, "acme", &cv);
	assert_renewal_eq(&cv.crl, &want);
	assert_renewal_eq(&cv.renewal, &ren);
	memset(&zero, 0, sizeof(zero));
	tc_crl_state(&s1, "acme", &zero);
	s1.chg.op = "ignored";
	ck_assert_int_eq(commit1(st, &s1), TCA_OK);
	ck_assert_int_eq(s1.chg.journal_seq, 0);
	ca_v3(st, "acme", &cv);
	assert_renewal_clear(&cv.crl);
	assert_renewal_eq(&cv.renewal, &ren);

	/* malformed / no CA */
	tc_crl_state(&bad, "acme", &want);
	bad.chg.renewal = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_crl_state(&bad, "acme", &want);
	memset(bad.rs.reason, 'x', sizeof(bad.rs.reason));
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_crl_state(&bad, "nobody", &want);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	tc_crl_state(&bad, "acme", &want);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	verify_ok(st, 2, NULL);
}
END_TEST

/* -------------------------------------------------------------- inventory */

/* /store/inventory/paging-and-device */
START_TEST(test_cert_list)
{
	static const char *const ids[7] = { "d-a", "d-b", "d-a", "d-c", "d-a",
	    "d-b", "d-c" };
	struct tchange acme, beta, a[7], b[7];
	struct tchange *want[7];
	struct cert_list l;
	struct tca_cert_query q;
	int64_t seen[8], after;
	int i, k, page, nseen;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	/* the tenants' certificates interleaved in issue order */
	for (i = 0; i < 7; i++) {
		tc_issue(&a[i], "acme", ids[i]);
		ck_assert_int_eq(commit1(st, &a[i]), TCA_OK);
		tc_issue(&b[i], "beta", "d-a");
		ck_assert_int_eq(commit1(st, &b[i]), TCA_OK);
		want[i] = &a[i];
	}

	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	assert_cl(&l, want, 7);
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(l.revoked[i], 0);
	ck_assert_int_eq(list_certs(st, "beta", NULL, TCA_CERT_ANY, T_NOW, 0,
	    SIZE_MAX, &l), TCA_OK);
	ck_assert_int_eq(l.n, 7);
	assert_cl_row(&l, 6, &b[6]);

	/* three pages over seven certificates: no duplicates, no gaps */
	nseen = 0;
	after = 0;
	for (page = 0; page < 4; page++) {
		ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW,
		    after, 3, &l), TCA_OK);
		ck_assert_int_eq(l.n, page < 2 ? 3 : page == 2 ? 1 : 0);
		for (k = 0; k < l.n; k++) {
			assert_cl_row(&l, k, want[nseen]);
			seen[nseen++] = l.cert_id[k];
		}
		if (l.n > 0)
			after = l.cert_id[l.n - 1];
	}
	ck_assert_int_eq(nseen, 7);
	for (k = 1; k < nseen; k++)
		ck_assert_int_gt(seen[k], seen[k - 1]);

	/* by device: exactly that id, paged as well */
	ck_assert_int_eq(list_certs(st, "acme", "d-a", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	want[0] = &a[0];
	want[1] = &a[2];
	want[2] = &a[4];
	assert_cl(&l, want, 3);
	ck_assert_int_eq(list_certs(st, "acme", "d-a", TCA_CERT_ANY, T_NOW, 0, 2,
	    &l), TCA_OK);
	assert_cl(&l, want, 2);
	ck_assert_int_eq(list_certs(st, "acme", "d-a", TCA_CERT_ANY, T_NOW,
	    l.cert_id[1], 2, &l), TCA_OK);
	assert_cl(&l, want + 2, 1);
	ck_assert_int_eq(list_certs(st, "acme", "d-c", TCA_CERT_ANY, T_NOW, 0, 1,
	    &l), TCA_OK);
	want[0] = &a[3];
	want[1] = &a[6];
	assert_cl(&l, want, 1);
	ck_assert_int_eq(list_certs(st, "acme", "d-c", TCA_CERT_ANY, T_NOW,
	    l.cert_id[0], 1, &l), TCA_OK);
	assert_cl(&l, want + 1, 1);
	ck_assert_int_eq(list_certs(st, "acme", "d-c", TCA_CERT_ANY, T_NOW,
	    l.cert_id[0], 1, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "beta", "d-a", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 7);
	ck_assert_int_eq(list_certs(st, "acme", "d-", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", "", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", "d-b", TCA_CERT_ANY, T_NOW,
	    a[6].chg.journal_seq + 100, 100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);

	/* a callback stops the walk */
	memset(&l, 0, sizeof(l));
	l.tenant = "acme";
	l.stop_after = 2;
	memset(&q, 0, sizeof(q));
	q.tenant = "acme";
	q.limit = 100;
	ck_assert_int_eq(st->ops->cert_list(st, &q, cert_list_cb, &l), 77);
	ck_assert_int_eq(l.n, 2);

	/* no active CA; bad queries */
	ck_assert_int_eq(list_certs(st, "nobody", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(list_certs(st, "nobody", "d-a", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 0,
	    &l), TCA_ERR_INVALID_ARG);
	memset(&q, 0, sizeof(q));
	q.limit = 10;
	ck_assert_int_eq(st->ops->cert_list(st, &q, cert_list_cb, &l),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->cert_list(st, NULL, cert_list_cb, &l),
	    TCA_ERR_INVALID_ARG);
	q.tenant = "acme";
	ck_assert_int_eq(st->ops->cert_list(st, &q, NULL, &l), TCA_ERR_INVALID_ARG);
}
END_TEST

/* /store/inventory/state-filters-and-counts */
START_TEST(test_cert_list_states)
{
	struct tchange acme, beta, v0, x0, r0, rx, v1, bv, bx, br, r, del;
	struct tchange *want[5];
	struct cert_list l;
	const int64_t now = T_NOW + 1000;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_issue(&v0, "acme", "dev-v");
	ck_assert_int_eq(commit1(st, &v0), TCA_OK);
	tc_issue(&x0, "acme", "dev-x");
	x0.ci.not_after = T_NOW + 100;
	ck_assert_int_eq(commit1(st, &x0), TCA_OK);
	tc_issue(&r0, "acme", "dev-r");
	ck_assert_int_eq(commit1(st, &r0), TCA_OK);
	tc_issue(&rx, "acme", "dev-r");
	rx.ci.not_after = T_NOW + 100;
	ck_assert_int_eq(commit1(st, &rx), TCA_OK);
	tc_issue(&v1, "acme", "dev-v");
	ck_assert_int_eq(commit1(st, &v1), TCA_OK);
	tc_issue(&bv, "beta", "dev-v");
	ck_assert_int_eq(commit1(st, &bv), TCA_OK);
	tc_issue(&bx, "beta", "dev-x");
	bx.ci.not_after = T_NOW + 100;
	ck_assert_int_eq(commit1(st, &bx), TCA_OK);
	tc_issue(&br, "beta", "dev-r");
	ck_assert_int_eq(commit1(st, &br), TCA_OK);
	tc_revoke(&r, "acme", &r0.ci, 1, T_NOW + 10);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_revoke(&r, "acme", &rx.ci, 4, T_NOW + 20);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_revoke(&r, "beta", &br.ci, 0, T_NOW + 30);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);

	/* now: after every not_before, after x0's and rx's not_after */
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_VALID, now, 0, 100,
	    &l), TCA_OK);
	want[0] = &v0;
	want[1] = &v1;
	assert_cl(&l, want, 2);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_EXPIRED, now, 0, 100,
	    &l), TCA_OK);
	want[0] = &x0;
	assert_cl(&l, want, 1);
	ck_assert_int_eq(l.revoked[0], 0);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_REVOKED, now, 0, 100,
	    &l), TCA_OK);
	want[0] = &r0;
	want[1] = &rx;
	assert_cl(&l, want, 2);
	ck_assert_int_eq(l.revoked[0], 1);
	ck_assert_int_eq(l.revoked_at[0], T_NOW + 10);
	ck_assert_int_eq(l.reason[0], 1);
	ck_assert_int_eq(l.revoked[1], 1);
	ck_assert_int_eq(l.revoked_at[1], T_NOW + 20);
	ck_assert_int_eq(l.reason[1], 4);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, now, 0, 100,
	    &l), TCA_OK);
	want[0] = &v0;
	want[1] = &x0;
	want[2] = &r0;
	want[3] = &rx;
	want[4] = &v1;
	assert_cl(&l, want, 5);
	ck_assert_int_eq(l.revoked[2], 1);
	ck_assert_int_eq(l.reason[3], 4);
	ck_assert_int_eq(l.revoked[4], 0);
	/* states with a device and a page */
	ck_assert_int_eq(list_certs(st, "acme", "dev-r", TCA_CERT_REVOKED, now, 0,
	    1, &l), TCA_OK);
	want[0] = &r0;
	want[1] = &rx;
	assert_cl(&l, want, 1);
	ck_assert_int_eq(list_certs(st, "acme", "dev-r", TCA_CERT_REVOKED, now,
	    l.cert_id[0], 1, &l), TCA_OK);
	assert_cl(&l, want + 1, 1);
	ck_assert_int_eq(list_certs(st, "acme", "dev-r", TCA_CERT_VALID, now, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", "dev-v", TCA_CERT_EXPIRED, now, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", "dev-x", TCA_CERT_EXPIRED, now, 0,
	    100, &l), TCA_OK);
	want[0] = &x0;
	assert_cl(&l, want, 1);
	ck_assert_int_eq(list_certs(st, "beta", NULL, TCA_CERT_REVOKED, now, 0,
	    100, &l), TCA_OK);
	want[0] = &br;
	assert_cl(&l, want, 1);
	/* earlier, x0 was valid; not_after == now is still valid */
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_VALID, T_NOW, 0, 100,
	    &l), TCA_OK);
	want[0] = &v0;
	want[1] = &x0;
	want[2] = &v1;
	assert_cl(&l, want, 3);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_VALID, T_NOW + 100,
	    0, 100, &l), TCA_OK);
	assert_cl(&l, want, 3);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_EXPIRED, T_NOW + 100,
	    0, 100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_EXPIRED, T_NOW + 101,
	    0, 100, &l), TCA_OK);
	want[0] = &x0;
	assert_cl(&l, want, 1);

	/* counts over every active CA; revoked ones count as revoked even
	 * once expired */
	assert_counts(st, now, 3, 3, 2);
	assert_counts(st, T_NOW, 5, 3, 0);
	tc_ca_delete(&del, "beta");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	assert_counts(st, now, 2, 2, 1);
	ck_assert_int_eq(list_certs(st, "beta", NULL, TCA_CERT_ANY, now, 0, 100,
	    &l), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(st->ops->cert_counts(st, now, NULL), TCA_ERR_INVALID_ARG);
	verify_ok(st, 14, NULL);
}
END_TEST

/* /store/inventory/only-the-active-ca */
START_TEST(test_cert_list_deleted_ca)
{
	struct tchange ca, o0, o1, r, del, ca2, n0, n1;
	struct tchange *want[2];
	struct tca_cert_row row;
	struct cert_list l;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&o0, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &o0), TCA_OK);
	tc_issue(&o1, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &o1), TCA_OK);
	tc_revoke(&r, "acme", &o1.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	assert_counts(st, T_NOW, 1, 1, 0);

	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "acme", &o0, &row), TCA_ERR_NOT_FOUND);
	assert_counts(st, T_NOW, 0, 0, 0);

	tc_ca_create(&ca2, "acme");
	ck_assert_int_eq(commit1(st, &ca2), TCA_OK);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", "dev-1", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_REVOKED, T_NOW, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	assert_counts(st, T_NOW, 0, 0, 0);

	tc_issue(&n0, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &n0), TCA_OK);
	tc_issue(&n1, "acme", "dev-3");
	ck_assert_int_eq(commit1(st, &n1), TCA_OK);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	want[0] = &n0;
	want[1] = &n1;
	assert_cl(&l, want, 2);
	ck_assert_int_eq(list_certs(st, "acme", "dev-1", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	assert_cl(&l, want, 1);
	ck_assert_int_eq(list_certs(st, "acme", "dev-2", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_REVOKED, T_NOW, 0,
	    100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(cert_get_of(st, "acme", &o0, &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "acme", &o1, &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "acme", &n0, &row), TCA_OK);
	tca_cert_row_clear(&row);
	assert_counts(st, T_NOW, 2, 0, 0);
	/* the history is all still there */
	ck_assert_int_eq(cert_count(st, "acme", "device"), 4);
}
END_TEST

/* /store/inventory/cert-get */
START_TEST(test_cert_get)
{
	struct tchange acme, beta, a0, b0, big, r;
	struct tca_cert_row row;
	char hex[80], long_id[300];
	int64_t cert_id;

	tc_ca_create(&acme, "acme");
	ck_assert_int_eq(commit1(st, &acme), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_issue(&a0, "acme", "dev-0");
	ck_assert_int_eq(commit1(st, &a0), TCA_OK);
	tc_issue(&b0, "beta", "dev-0");
	ck_assert_int_eq(commit1(st, &b0), TCA_OK);

	memset(&row, 0xab, sizeof(row));
	ck_assert_int_eq(cert_get_of(st, "acme", &a0, &row), TCA_OK);
	ck_assert_str_eq(row.tenant, "acme");
	ck_assert_str_eq(row.kind, "device");
	tca_hex(a0.ci.serial, a0.ci.serial_len, hex);
	ck_assert_str_eq(row.serial_hex, hex);
	tca_hex(a0.ci.sha256, 32, hex);
	ck_assert_str_eq(row.fingerprint_hex, hex);
	ck_assert_str_eq(row.subject, "CN=dev-0");
	ck_assert_str_eq(row.device_id, "dev-0");
	ck_assert_int_eq(row.not_before, a0.ci.not_before);
	ck_assert_int_eq(row.not_after, a0.ci.not_after);
	ck_assert_int_eq(row.issued_at, a0.chg.time_ms / 1000);
	ck_assert_int_gt(row.cert_id, 0);
	cert_id = row.cert_id;
	ck_assert_int_eq(row.revoked, 0);
	ck_assert_int_eq(row.revoked_at, 0);
	ck_assert_int_eq(row.reason, 0);
	ck_assert_ptr_nonnull(row.der);
	ck_assert_uint_eq(row.der_len, sizeof(a0.der));
	ck_assert_mem_eq(row.der, a0.der, sizeof(a0.der));
	ck_assert_ptr_nonnull(row.owned_);
	tca_cert_row_clear(&row);
	ck_assert_ptr_null(row.der);
	ck_assert_ptr_null(row.owned_);
	ck_assert_ptr_null(row.tenant);
	ck_assert_int_eq(row.cert_id, 0);
	tca_cert_row_clear(&row);	/* twice is harmless */
	tca_cert_row_clear(NULL);

	/* cert_list agrees on the cursor */
	{
		struct cert_list l;

		ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0,
		    10, &l), TCA_OK);
		ck_assert_int_eq(l.n, 1);
		ck_assert_int_eq(l.cert_id[0], cert_id);
	}

	tc_revoke(&r, "acme", &a0.ci, 3, T_NOW + 9);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	ck_assert_int_eq(cert_get_of(st, "acme", &a0, &row), TCA_OK);
	ck_assert_int_eq(row.revoked, 1);
	ck_assert_int_eq(row.revoked_at, T_NOW + 9);
	ck_assert_int_eq(row.reason, 3);
	ck_assert_mem_eq(row.der, a0.der, sizeof(a0.der));
	tca_cert_row_clear(&row);
	ck_assert_int_eq(cert_get_of(st, "beta", &b0, &row), TCA_OK);
	ck_assert_str_eq(row.tenant, "beta");
	ck_assert_int_eq(row.revoked, 0);
	ck_assert_mem_eq(row.der, b0.der, sizeof(b0.der));
	tca_cert_row_clear(&row);

	/* not found: another tenant's, the CA's own, no CA; row left empty */
	memset(&row, 0xab, sizeof(row));
	ck_assert_int_eq(cert_get_of(st, "acme", &b0, &row), TCA_ERR_NOT_FOUND);
	ck_assert_ptr_null(row.owned_);
	ck_assert_ptr_null(row.der);
	tca_cert_row_clear(&row);
	ck_assert_int_eq(cert_get_of(st, "acme", &acme, &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(cert_get_of(st, "nobody", &a0, &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(st->ops->cert_get(st, "acme", a0.ci.serial,
	    a0.ci.serial_len - 1, &row), TCA_ERR_NOT_FOUND);
	/* bad arguments */
	ck_assert_int_eq(st->ops->cert_get(st, "acme", a0.ci.serial, 0, &row),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->cert_get(st, "acme", a0.der, TCA_SERIAL_MAX + 1,
	    &row), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->cert_get(st, "acme", NULL, 16, &row),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->cert_get(st, NULL, a0.ci.serial, 16, &row),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->cert_get(st, "acme", a0.ci.serial, 16, NULL),
	    TCA_ERR_INVALID_ARG);

	/* the longest subject and a long device id come back whole */
	tc_issue(&big, "acme", "x");
	memset(big.ci.subject, 's', TCA_SUBJECT_MAX - 1);
	memcpy(big.ci.subject, "CN=", 3);
	big.ci.subject[TCA_SUBJECT_MAX - 1] = '\0';
	memset(long_id, 'i', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	big.chg.device_id = long_id;
	big.ci.serial_len = TCA_SERIAL_MAX;
	ck_assert_int_eq(RAND_bytes(big.ci.serial + 16, 4), 1);
	ck_assert_int_eq(commit1(st, &big), TCA_OK);
	ck_assert_int_eq(cert_get_of(st, "acme", &big, &row), TCA_OK);
	ck_assert_uint_eq(strlen(row.subject), TCA_SUBJECT_MAX - 1);
	ck_assert_str_eq(row.subject, big.ci.subject);
	ck_assert_str_eq(row.device_id, long_id);
	ck_assert_uint_eq(strlen(row.serial_hex), 2 * TCA_SERIAL_MAX);
	tca_hex(big.ci.sha256, 32, hex);
	ck_assert_str_eq(row.fingerprint_hex, hex);
	ck_assert_mem_eq(row.der, big.der, sizeof(big.der));
	tca_cert_row_clear(&row);
	verify_ok(st, 6, NULL);
}
END_TEST

/* EXPLAIN QUERY PLAN of sql through a connection of its own, one line per
 * step. */
static void
query_plan(const char *sql, char *out, size_t outlen)
{
	char eqp[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	size_t off = 0;
	int rc;

	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, eqp, -1, &stmt, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	out[0] = '\0';
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const unsigned char *d = sqlite3_column_text(stmt, 3);

		off += (size_t)snprintf(out + off, outlen - off, "%s\n",
		    d != NULL ? (const char *)d : "");
		ck_assert_uint_lt(off, outlen);
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

/* sq_cert_list's and sq_cert_get's queries, copied from store-sqlite.c */
#define T_CERT_ROW_COLS \
    "SELECT d.cert_id, d.tenant, d.serial, d.subject, d.fingerprint," \
    " d.not_before, d.not_after, d.issued_at, d.device_id, r.revoked_at," \
    " r.reason"
static const char t_sql_all[] = T_CERT_ROW_COLS
    " FROM cas c JOIN certificates d INDEXED BY certificates_tenant"
    "  ON d.tenant = c.tenant AND d.ca_id = c.ca_id AND d.kind = 'device'"
    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
    " WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3"
    " AND (?4 = 0 OR (?4 = 1 AND r.cert_id IS NULL AND d.not_after >= ?5)"
    "  OR (?4 = 2 AND r.cert_id IS NOT NULL)"
    "  OR (?4 = 3 AND r.cert_id IS NULL AND d.not_after < ?5))"
    " ORDER BY d.cert_id LIMIT ?6";
static const char t_sql_device[] = T_CERT_ROW_COLS
    " FROM cas c JOIN certificates d INDEXED BY certificates_device"
    "  ON d.tenant = c.tenant AND d.device_id = ?2 AND d.ca_id = c.ca_id"
    "  AND d.kind = 'device'"
    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
    " WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3"
    " AND (?4 = 0 OR (?4 = 1 AND r.cert_id IS NULL AND d.not_after >= ?5)"
    "  OR (?4 = 2 AND r.cert_id IS NOT NULL)"
    "  OR (?4 = 3 AND r.cert_id IS NULL AND d.not_after < ?5))"
    " ORDER BY d.cert_id LIMIT ?6";
static const char t_sql_get[] = T_CERT_ROW_COLS ", d.der"
    " FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id"
    " JOIN certificates d ON d.issuer_hash = cur.issuer_hash"
    "  AND d.serial = ?2 AND d.kind = 'device' AND d.ca_id = c.ca_id"
    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
    " WHERE c.tenant = ?1 AND c.status = 'active'";
static const char t_sql_revoked[] = "SELECT d.serial, r.revoked_at, r.reason,"
    " r.not_after FROM cas c JOIN revocations r ON r.ca_id = c.ca_id"
    " AND r.not_after >= ?2 JOIN certificates d ON d.cert_id = r.cert_id"
    " WHERE c.tenant = ?1 AND c.status = 'active' ORDER BY r.cert_id";

static void
check_plans(const char *when, int may_sort)
{
	char plan[4096];

	query_plan(t_sql_all, plan, sizeof(plan));
	ck_assert_msg(strstr(plan, "SEARCH d USING INDEX certificates_tenant "
	    "(tenant=? AND cert_id>?)") != NULL, "%s, plan:\n%s", when, plan);
	ck_assert_msg(strstr(plan, "SEARCH c USING INDEX cas_one_active") != NULL,
	    "%s, plan:\n%s", when, plan);
	ck_assert_msg(strstr(plan, "SCAN") == NULL, "%s, plan:\n%s", when, plan);
	ck_assert_msg(may_sort || strstr(plan, "TEMP B-TREE") == NULL, "%s, plan:\n%s", when, plan);

	query_plan(t_sql_device, plan, sizeof(plan));
	ck_assert_msg(strstr(plan, "SEARCH d USING INDEX certificates_device "
	    "(tenant=? AND device_id=? AND cert_id>?)") != NULL, "%s, plan:\n%s", when, plan);
	ck_assert_msg(strstr(plan, "SCAN") == NULL, "%s, plan:\n%s", when, plan);
	ck_assert_msg(may_sort || strstr(plan, "TEMP B-TREE") == NULL, "%s, plan:\n%s", when, plan);

	query_plan(t_sql_get, plan, sizeof(plan));
	ck_assert_msg(strstr(plan, "certificates_device_serial") != NULL,
	    "%s, plan:\n%s", when, plan);
	ck_assert_msg(strstr(plan, "SCAN") == NULL, "%s, plan:\n%s", when, plan);

	query_plan(t_sql_revoked, plan, sizeof(plan));
	ck_assert_msg(strstr(plan, "revocations_ca") != NULL, "%s, plan:\n%s", when, plan);
	ck_assert_msg(strstr(plan, "SCAN") == NULL, "%s, plan:\n%s", when, plan);
}

/* /store/inventory/indexed */
START_TEST(test_inventory_plan)
{
	fill_journal(st, 20, 10);
	/* as the store runs them: no statistics, the pages come in cert_id
	 * order straight off the index, no sorting */
	check_plans("no statistics", 0);
	/* statistics (should anybody run ANALYZE) keep the indexes; over a
	 * handful of rows the planner may prefer to sort them */
	raw_exec("ANALYZE");
	check_plans("after ANALYZE", 1);
}
END_TEST


/* ------------------------------------------------------ v2 -> v3 migration */

/* Schema version 2 exactly as store-sqlite.c's schema_v2 creates it. */
static const char schema_v2_sql[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE cas ("
    " ca_id INTEGER PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('active', 'deleted')),"
    " key_type TEXT NOT NULL,"
    " key_id BLOB NOT NULL CHECK (length(key_id) BETWEEN 1 AND 32),"
    " created_at INTEGER NOT NULL,"
    " deleted_at INTEGER NOT NULL DEFAULT 0,"
    " current_cert_id INTEGER REFERENCES certificates(cert_id),"
    " previous_cert_id INTEGER REFERENCES certificates(cert_id),"
    " renewal_failed INTEGER NOT NULL DEFAULT 0"
    "  CHECK (renewal_failed IN (0, 1)),"
    " renewal_reason TEXT NOT NULL DEFAULT '',"
    " renewal_attempts INTEGER NOT NULL DEFAULT 0"
    "  CHECK (renewal_attempts >= 0),"
    " renewal_failed_since INTEGER NOT NULL DEFAULT 0,"
    " renewal_next_retry INTEGER NOT NULL DEFAULT 0,"
    " renewal_alerted INTEGER NOT NULL DEFAULT 0"
    "  CHECK (renewal_alerted IN (0, 1)),"
    " expiry_alerted INTEGER NOT NULL DEFAULT 0"
    "  CHECK (expiry_alerted IN (0, 1)));"
    "CREATE UNIQUE INDEX cas_one_active ON cas(tenant) WHERE status = 'active';"
    "CREATE TABLE certificates ("
    " cert_id INTEGER PRIMARY KEY,"
    " ca_id INTEGER NOT NULL REFERENCES cas(ca_id),"
    " tenant TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('ca', 'device')),"
    " issuer_hash BLOB NOT NULL CHECK (length(issuer_hash) = 32),"
    " serial BLOB NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),"
    " subject TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " der BLOB NOT NULL);"
    "CREATE UNIQUE INDEX certificates_device_serial"
    " ON certificates(issuer_hash, serial) WHERE kind = 'device';"
    "CREATE INDEX certificates_ca_serial"
    " ON certificates(issuer_hash, serial) WHERE kind = 'ca';"
    "CREATE TRIGGER certificates_serial_unique BEFORE INSERT ON certificates"
    " WHEN EXISTS (SELECT 1 FROM certificates c WHERE c.kind = 'ca'"
    "  AND c.issuer_hash = NEW.issuer_hash AND c.serial = NEW.serial"
    "  AND (NEW.kind <> 'ca' OR c.ca_id <> NEW.ca_id"
    "  OR c.fingerprint = NEW.fingerprint))"
    " OR (NEW.kind = 'ca' AND EXISTS (SELECT 1 FROM certificates c"
    "  WHERE c.kind = 'device' AND c.issuer_hash = NEW.issuer_hash"
    "  AND c.serial = NEW.serial))"
    " BEGIN SELECT RAISE(ABORT, 'issuer and serial already recorded'); END;"
    "CREATE INDEX certificates_tenant ON certificates(tenant, cert_id);"
    "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
    " BEGIN SELECT RAISE(ABORT, 'certificate history is append-only'); END;"
    "CREATE TABLE journal ("
    " seq INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " op TEXT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " serial_hex TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " fingerprint_hex TEXT NOT NULL,"
    " uid INTEGER NOT NULL,"
    " pid INTEGER NOT NULL,"
    " details TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "PRAGMA application_id = 1413693745;"
    "PRAGMA user_version = 2;";

#define V2_CAS_COLS "ca_id, tenant, status, key_type, key_id, created_at," \
    " deleted_at, current_cert_id, previous_cert_id, renewal_failed," \
    " renewal_reason, renewal_attempts, renewal_failed_since," \
    " renewal_next_retry, renewal_alerted, expiry_alerted"
#define V2_CERT_COLS "cert_id, ca_id, tenant, kind, issuer_hash, serial," \
    " subject, fingerprint, not_before, not_after, issued_at, der"
#define V2_JOURNAL_COLS "seq, time_ms, op, tenant, serial_hex, subject," \
    " fingerprint_hex, uid, pid, details, prev_hash, hash"

/*
 * Turns the (closed) store at dbpath into a version 2 file holding the same
 * rows (what a v3 store adds is dropped), as downgrade_to_v1() does for v1.
 */
static void
downgrade_to_v2(void)
{
	char v2path[PATH_MAX + 32], sql[PATH_MAX + 2048];
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	snprintf(v2path, sizeof(v2path), "%s/v2.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(v2path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, schema_v2_sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "v2 schema: %s", msg ? msg : "?");
	snprintf(sql, sizeof(sql), "ATTACH '%s' AS cur; BEGIN;"
	    "INSERT INTO cas (" V2_CAS_COLS ") SELECT " V2_CAS_COLS " FROM cur.cas;"
	    "INSERT INTO certificates (" V2_CERT_COLS ") SELECT " V2_CERT_COLS
	    " FROM cur.certificates ORDER BY cert_id;"
	    "INSERT INTO journal (" V2_JOURNAL_COLS ") SELECT " V2_JOURNAL_COLS
	    " FROM cur.journal ORDER BY seq;"
	    "COMMIT; DETACH cur;", dbpath);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "v2 copy: %s", msg ? msg : "?");
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	test_sh("rm -f '%s' '%s-wal' '%s-shm' && mv '%s' '%s'", dbpath,
	    dbpath, dbpath, v2path, dbpath);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_table_info("
	    "'certificates') WHERE name = 'device_id'"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name IN"
	    " ('revocations', 'crls', 'certificates_device')"), 0);
}

enum real_name { NAME_CN_UTF8, NAME_CN_BMP, NAME_NO_CN };

/*
 * tc_issue with a real X.509 certificate: issuer CN=tenant, subject CN=cn
 * (a UTF8String, or a BMPString for NAME_CN_BMP; cn is UTF-8 of at most two
 * bytes a character) or only O=cn (NAME_NO_CN), signed with a fresh P-256
 * key.  ci describes that certificate like fill_cert(); *der_ptr is its DER
 * (OPENSSL_free()).
 */
static void
tc_issue_real(struct tchange *t, const char *tenant, const char *cn,
    enum real_name how, unsigned char **der_ptr)
{
	unsigned char bmp[256], *der = NULL;
	const unsigned char *p;
	size_t nbmp = 0;
	EVP_PKEY *pkey;
	X509 *x;
	X509_NAME *subj, *iss;
	BIGNUM *bn;
	unsigned int c;
	int len;

	tc_issue(t, tenant, cn);
	if (how == NAME_NO_CN) {
		snprintf(t->ci.subject, sizeof(t->ci.subject), "O=%s", cn);
		t->chg.device_id = "";
	}
	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	subj = X509_NAME_new();
	iss = X509_NAME_new();
	bn = BN_bin2bn(t->ci.serial, (int)t->ci.serial_len, NULL);
	ck_assert(pkey != NULL && x != NULL && subj != NULL && iss != NULL &&
	    bn != NULL);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x),
	    (time_t)t->ci.not_before));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x),
	    (time_t)t->ci.not_after));
	if (how == NAME_CN_BMP) {
		for (p = (const unsigned char *)cn; *p != '\0'; p++) {
			c = *p;
			if (c >= 0xc0 && p[1] != '\0')
				c = ((c & 0x1f) << 6) | (*++p & 0x3f);
			ck_assert_uint_lt(nbmp + 2, sizeof(bmp));
			bmp[nbmp++] = (unsigned char)(c >> 8);
			bmp[nbmp++] = (unsigned char)c;
		}
		ck_assert_int_eq(X509_NAME_add_entry_by_NID(subj, NID_commonName,
		    V_ASN1_BMPSTRING, bmp, (int)nbmp, -1, 0), 1);
	} else {
		ck_assert_int_eq(X509_NAME_add_entry_by_NID(subj, how == NAME_NO_CN ?
		    NID_organizationName : NID_commonName, MBSTRING_UTF8,
		    (const unsigned char *)cn, -1, -1, 0), 1);
	}
	ck_assert_int_eq(X509_NAME_add_entry_by_NID(iss, NID_commonName,
	    MBSTRING_UTF8, (const unsigned char *)tenant, -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_subject_name(x, subj), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, iss), 1);
	ck_assert_int_eq(X509_set_pubkey(x, pkey), 1);
	ck_assert_int_gt(X509_sign(x, pkey, EVP_sha256()), 0);
	len = i2d_X509(x, &der);
	ck_assert_int_gt(len, 0);
	t->ci.der = der;
	t->ci.der_len = (size_t)len;
	sha256(der, (size_t)len, t->ci.sha256);
	*der_ptr = der;
	BN_free(bn);
	X509_NAME_free(subj);
	X509_NAME_free(iss);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

/* What fill_v2() wrote before turning the store into a v2 file. */
struct v2_content {
	struct tchange beta_old, beta_del, beta, acme, rs;
	struct tchange dev0, sensor, utf8, bmp, nocn, bsensor;
	unsigned char *der[5];
	struct tca_renewal_state renewal;
	unsigned char head[32];
};
#define V2_RECORDS 10

/*
 * Fills the store with a deleted and an active CA for beta, an active CA
 * for acme with renewal state, device certificates of random bytes and of
 * real X.509 (CN "sensor-7", a UTF-8 CN, a BMPString CN, no CN), then closes
 * it and turns it into a version 2 file.
 */
static struct v2_content *
fill_v2(void)
{
	struct v2_content *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	tc_ca_create(&c->beta_old, "beta");
	ck_assert_int_eq(commit1(st, &c->beta_old), TCA_OK);
	tc_ca_delete(&c->beta_del, "beta");
	ck_assert_int_eq(commit1(st, &c->beta_del), TCA_OK);
	tc_ca_create(&c->beta, "beta");
	ck_assert_int_eq(commit1(st, &c->beta), TCA_OK);
	tc_ca_create(&c->acme, "acme");
	ck_assert_int_eq(commit1(st, &c->acme), TCA_OK);
	tc_issue(&c->dev0, "acme", "dev-0");
	ck_assert_int_eq(commit1(st, &c->dev0), TCA_OK);
	tc_issue_real(&c->sensor, "acme", "sensor-7", NAME_CN_UTF8, &c->der[0]);
	ck_assert_int_eq(commit1(st, &c->sensor), TCA_OK);
	tc_issue_real(&c->utf8, "acme", "capteur-\xc3\xa9", NAME_CN_UTF8,
	    &c->der[1]);
	ck_assert_int_eq(commit1(st, &c->utf8), TCA_OK);
	tc_issue_real(&c->bmp, "acme", "Z\xc3\xa4hler-9", NAME_CN_BMP, &c->der[2]);
	ck_assert_int_eq(commit1(st, &c->bmp), TCA_OK);
	tc_issue_real(&c->nocn, "acme", "no-cn", NAME_NO_CN, &c->der[3]);
	ck_assert_int_eq(commit1(st, &c->nocn), TCA_OK);
	tc_issue_real(&c->bsensor, "beta", "sensor-7", NAME_CN_UTF8, &c->der[4]);
	ck_assert_int_eq(commit1(st, &c->bsensor), TCA_OK);
	memset(&c->renewal, 0, sizeof(c->renewal));
	c->renewal.failed = 1;
	c->renewal.attempts = 3;
	c->renewal.expiry_alerted = 1;
	snprintf(c->renewal.reason, sizeof(c->renewal.reason), "before v3");
	tc_renewal(&c->rs, "acme", &c->renewal);
	ck_assert_int_eq(commit1(st, &c->rs), TCA_OK);
	verify_ok(st, V2_RECORDS, c->head);
	st->ops->close(st);
	st = NULL;
	downgrade_to_v2();
	return c;
}

static void
free_v2(struct v2_content *c)
{
	int i;

	for (i = 0; i < 5; i++)
		OPENSSL_free(c->der[i]);
	free(c);
}

/* /store/migrate/v2-to-v3 */
START_TEST(test_migrate_v2)
{
	struct v2_content *c = fill_v2();
	struct tchange *want[5], r, crl, late;
	struct tca_change *chg;
	struct tca_ca_row row;
	struct tca_cert_row crow;
	struct cert_list l;
	struct rev_list rl;
	struct ca_v3 cv;
	struct ca_list cl;
	struct jcopy j;
	unsigned char head2[32];
	char hex[80];
	int i, res;

	/* the CN parses out of the real certificates only */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_table_info("
	    "'certificates') WHERE name = 'device_id'"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE"
	    " (type = 'table' AND name IN ('revocations', 'crls')) OR"
	    " (type = 'index' AND name IN ('certificates_device',"
	    " 'revocations_ca', 'crls_tenant')) OR (type = 'trigger' AND name IN"
	    " ('revocations_no_update', 'revocations_no_delete',"
	    " 'crls_number_grows', 'crls_no_delete'))"), 9);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_table_info('cas')"
	    " WHERE name IN ('crl_failed', 'crl_reason', 'crl_attempts',"
	    " 'crl_failed_since', 'crl_next_retry', 'crl_alerted', 'policy')"), 7);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM certificates WHERE kind = 'ca'"
	    " AND device_id <> ''"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM certificates"), 9);

	/* the journal is untouched */
	verify_ok(st, V2_RECORDS, head2);
	ck_assert_mem_eq(head2, c->head, 32);

	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 5);
	ck_assert_str_eq(l.device_id[0], "");	/* random bytes: no CN */
	ck_assert_str_eq(l.device_id[1], "sensor-7");
	ck_assert_str_eq(l.device_id[2], "capteur-\xc3\xa9");
	ck_assert_str_eq(l.device_id[3], "Z\xc3\xa4hler-9");
	ck_assert_str_eq(l.device_id[4], "");	/* no CN */
	c->dev0.chg.device_id = "";
	want[0] = &c->dev0;
	want[1] = &c->sensor;
	want[2] = &c->utf8;
	want[3] = &c->bmp;
	want[4] = &c->nocn;
	assert_cl(&l, want, 5);
	ck_assert_int_eq(list_certs(st, "acme", "sensor-7", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	assert_cl(&l, want + 1, 1);
	ck_assert_int_eq(list_certs(st, "acme", "", TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 2);
	assert_cl_row(&l, 0, &c->dev0);
	assert_cl_row(&l, 1, &c->nocn);
	ck_assert_int_eq(list_certs(st, "beta", "sensor-7", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	assert_cl(&l, (struct tchange *[]){ &c->bsensor }, 1);
	ck_assert_int_eq(cert_get_of(st, "acme", &c->sensor, &crow), TCA_OK);
	ck_assert_str_eq(crow.device_id, "sensor-7");
	ck_assert_uint_eq(crow.der_len, c->sensor.ci.der_len);
	ck_assert_mem_eq(crow.der, c->der[0], crow.der_len);
	tca_cert_row_clear(&crow);

	/* CA rows: renewal state kept, the new columns at their defaults */
	ca_v3(st, "acme", &cv);
	assert_renewal_eq(&cv.renewal, &c->renewal);
	assert_renewal_clear(&cv.crl);
	ck_assert_int_eq(cv.policy_null, 0);
	ck_assert_str_eq(cv.policy, "");
	ca_v3(st, "beta", &cv);
	assert_renewal_clear(&cv.renewal);
	ck_assert_str_eq(cv.policy, "");
	memset(&cl, 0, sizeof(cl));
	ck_assert_int_eq(st->ops->foreach_ca(st, 1, ca_list_cb, &cl), TCA_OK);
	ck_assert_int_eq(cl.n, 3);
	ck_assert_int_eq(st->ops->get_ca(st, "acme", &row), TCA_OK);
	ck_assert_mem_eq(row.cert_der, c->acme.der, sizeof(c->acme.der));
	tca_ca_row_clear(&row);
	assert_no_crl(st, "acme");
	revoked_list(st, NULL, T_NOW, &rl);
	ck_assert_int_eq(rl.n, 0);
	assert_counts(st, T_NOW, 6, 0, 0);

	/* the migrated store takes v3 changes, continuing the chain */
	tc_revoke(&r, "acme", &c->sensor.ci, 1, T_NOW + 1);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	ck_assert_int_eq(r.chg.journal_seq, V2_RECORDS + 1);
	journal_get(st, V2_RECORDS + 1, &j);
	ck_assert_mem_eq(j.prev_hash, c->head, 32);
	tca_hex(c->sensor.ci.sha256, 32, hex);
	ck_assert_str_eq(j.fp, hex);
	ck_assert_str_eq(j.subject, "CN=sensor-7");
	tc_crl(&crl, "acme", 1, T_NOW, 1);
	ck_assert_int_eq(commit1(st, &crl), TCA_OK);
	assert_crl(st, "acme", &crl);
	tc_issue(&late, "acme", "dev-late");
	chg = &late.chg;
	ck_assert_int_eq(st->ops->commit(st, &chg, 1, &res), TCA_OK);
	ck_assert_int_eq(res, TCA_OK);
	ck_assert_int_eq(list_certs(st, "acme", "dev-late", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	assert_cl(&l, (struct tchange *[]){ &late }, 1);
	ck_assert_int_eq(list_certs(st, "acme", "sensor-7", TCA_CERT_REVOKED, T_NOW,
	    0, 100, &l), TCA_OK);
	ck_assert_int_eq(l.n, 1);
	assert_counts(st, T_NOW, 6, 1, 0);
	verify_ok(st, V2_RECORDS + 3, NULL);

	/* reopening changes nothing */
	st->ops->close(st);
	st = NULL;
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(list_certs(st, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_OK);
	ck_assert_int_eq(l.n, 6);
	for (i = 0; i < 5; i++)
		assert_cl_row(&l, i, want[i]);
	ck_assert_int_eq(l.revoked[1], 1);
	verify_ok(st, V2_RECORDS + 3, NULL);
	free_v2(c);
}
END_TEST

/* /store/migrate/v2-read-only-not-migrated */
START_TEST(test_migrate_v2_readonly)
{
	struct v2_content *c = fill_v2();
	struct tca_cert_counts counts;
	struct tca_cert_row crow;
	struct tca_ca_row row;
	struct cert_list l;
	struct rev_list rl;
	struct tchange d;
	struct tca_change *chg = &d.chg;
	unsigned char head2[32];
	char err[256] = "";
	tca_store *ro = NULL;
	int res = 0;

	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	verify_ok(ro, V2_RECORDS, head2);
	ck_assert_mem_eq(head2, c->head, 32);
	ck_assert_int_eq(ro->ops->get_ca(ro, "acme", &row), TCA_OK);
	assert_renewal_eq(&row.renewal, &c->renewal);
	assert_renewal_clear(&row.crl);
	ck_assert_msg(row.policy == NULL || row.policy[0] == '\0',
	    "policy \"%s\"", row.policy);
	tca_ca_row_clear(&row);
	ck_assert_int_eq(cert_count(ro, NULL, NULL), 9);

	/* nothing of v3 to read */
	ck_assert_int_eq(list_certs(ro, "acme", NULL, TCA_CERT_ANY, T_NOW, 0, 100,
	    &l), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(list_certs(ro, "acme", "sensor-7", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_ERR_NOT_FOUND);
	memset(&crow, 0xab, sizeof(crow));
	ck_assert_int_eq(cert_get_of(ro, "acme", &c->sensor, &crow),
	    TCA_ERR_NOT_FOUND);
	ck_assert_ptr_null(crow.owned_);
	tca_cert_row_clear(&crow);
	assert_no_crl(ro, "acme");
	revoked_list(ro, "acme", T_NOW, &rl);
	ck_assert_int_eq(rl.n, 0);
	revoked_list(ro, NULL, T_NOW, &rl);
	ck_assert_int_eq(rl.n, 0);
	memset(&counts, 0xab, sizeof(counts));
	ck_assert_int_eq(ro->ops->cert_counts(ro, T_NOW, &counts), TCA_OK);
	ck_assert_uint_eq(counts.valid, 0);
	ck_assert_uint_eq(counts.revoked, 0);
	ck_assert_uint_eq(counts.expired, 0);
	tc_revoke(&d, "acme", &c->sensor.ci, 1, T_NOW);
	ck_assert_int_eq(ro->ops->commit(ro, &chg, 1, &res),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ro->ops->close(ro);

	/* not migrated */
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 2);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM pragma_table_info("
	    "'certificates') WHERE name = 'device_id'"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'revocations'"), 0);

	/* a read-write open still migrates it afterwards */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	verify_ok(st, V2_RECORDS, head2);
	ck_assert_mem_eq(head2, c->head, 32);
	ck_assert_int_eq(list_certs(st, "acme", "sensor-7", TCA_CERT_ANY, T_NOW, 0,
	    100, &l), TCA_OK);
	assert_cl(&l, (struct tchange *[]){ &c->sensor }, 1);
	free_v2(c);
}
END_TEST

/*
 * The schema of the file at path: "type|name|tbl_name|sql" lines ordered by
 * name; normalise: whitespace runs as one space, none after '(' or before
 * ')', double quotes dropped (ALTER TABLE RENAME quotes the new name).
 */
static void
schema_dump(const char *path, int normalise, char *out, size_t outlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	const unsigned char *v;
	size_t off = 0, start;
	int rc, col;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, sql"
	    " FROM sqlite_schema ORDER BY name", -1, &stmt, NULL), SQLITE_OK);
	out[0] = '\0';
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		for (col = 0; col < 4; col++) {
			v = sqlite3_column_text(stmt, col);
			start = off;
			off += (size_t)snprintf(out + off, outlen - off, "%s%s",
			    v != NULL ? (const char *)v : "(null)", col < 3 ? "|" : "\n");
			ck_assert_uint_lt(off, outlen);
			if (normalise && col == 3) {
				size_t i, o = start;
				int space = 0;

				for (i = start; i < off; i++) {
					char ch = out[i];

					if (ch == '"')
						continue;
					if (ch == ' ' || ch == '\t' || ch == '\n') {
						space = 1;
						continue;
					}
					if (space && o > start && out[o - 1] != '(' &&
					    ch != ')' && ch != ',')
						out[o++] = ' ';
					space = 0;
					out[o++] = ch;
				}
				out[o++] = '\n';
				out[o] = '\0';
				off = o;
			}
		}
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

/* Both at path, "PRAGMA user_version" and "PRAGMA application_id". */
static void
assert_same_header(const char *path)
{
	char saved[sizeof(dbpath)];
	long long v, a;

	v = raw_int("PRAGMA user_version");
	a = raw_int("PRAGMA application_id");
	memcpy(saved, dbpath, sizeof(dbpath));
	snprintf(dbpath, sizeof(dbpath), "%s", path);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), v);
	ck_assert_int_eq(raw_int("PRAGMA application_id"), a);
	memcpy(dbpath, saved, sizeof(dbpath));
}

/* Reports line by line where two dumps differ; asserts they do not. */
static void
assert_same_schema(const char *what, const char *a, const char *b)
{
	if (strcmp(a, b) != 0) {
		const char *pa = a, *pb = b;

		while (*pa != '\0' || *pb != '\0') {
			size_t la = strcspn(pa, "\n"), lb = strcspn(pb, "\n");

			if (la != lb || memcmp(pa, pb, la) != 0)
				fprintf(stderr, "%s:\n  fresh:    %.*s\n  migrated: %.*s\n",
				    what, (int)la, pa, (int)lb, pb);
			pa += la + (pa[la] != '\0');
			pb += lb + (pb[lb] != '\0');
		}
	}
	ck_assert_msg(strcmp(a, b) == 0, "%s: schemas differ (see stderr)", what);
}

/* /store/migrate/same-schema-as-fresh */
START_TEST(test_migrate_same_schema)
{
	static char fresh[32768], migrated[32768];
	char path[PATH_MAX + 32], err[256] = "";
	struct v2_content *c;
	tca_store *s2 = NULL;

	/* the one in tests: a fresh store, never written */
	snprintf(path, sizeof(path), "%s/fresh.db", tmpdir);
	ck_assert_int_eq(tca_store_open_sqlite(path, 0, &s2, err, sizeof(err)),
	    TCA_OK);
	s2->ops->close(s2);
	schema_dump(path, 0, fresh, sizeof(fresh));

	/* from version 2 (the copy of schema_v2 above must be exact too) */
	c = fill_v2();
	open_store();
	st->ops->close(st);
	st = NULL;
	schema_dump(dbpath, 0, migrated, sizeof(migrated));
	assert_same_schema("from v2", fresh, migrated);
	assert_same_header(path);
	free_v2(c);

	/* from version 1: ALTER TABLE words some statements its own way */
	test_sh("rm -f '%s' '%s-wal' '%s-shm'", dbpath, dbpath, dbpath);
	open_store();
	fill_journal(st, 3, 3);
	st->ops->close(st);
	st = NULL;
	downgrade_to_v1();
	open_store();
	st->ops->close(st);
	st = NULL;
	schema_dump(path, 1, fresh, sizeof(fresh));
	schema_dump(dbpath, 1, migrated, sizeof(migrated));
	assert_same_schema("from v1 (normalised)", fresh, migrated);
	assert_same_header(path);
}
END_TEST

/* ------------------------------------------------------------ devices (v4) */

static void
tc_dev_register(struct tchange *t, const char *tenant, const char *device,
    const char *secret, int64_t expires_at)
{
	tc_base(t, TCA_CHANGE_DEVICE_REGISTER, "device-register", tenant);
	t->chg.device_id = device;
	t->chg.secret = secret;
	t->chg.expires_at = expires_at;
	snprintf(t->details, sizeof(t->details), "device_id=%s", device != NULL ? device : "");
	t->chg.details = t->details;
}

static void
tc_dev_unregister(struct tchange *t, const char *tenant, const char *device)
{
	tc_base(t, TCA_CHANGE_DEVICE_UNREGISTER, "device-unregister", tenant);
	t->chg.device_id = device;
	snprintf(t->details, sizeof(t->details), "device_id=%s", device != NULL ? device : "");
	t->chg.details = t->details;
}

/* DEVICE_ATTEMPT, DEVICE_FAILURE or DEVICE_RELEASE */
static void
tc_dev_count(struct tchange *t, enum tca_change_kind kind, const char *tenant,
    const char *device, unsigned int max_failures)
{
	tc_base(t, kind, kind == TCA_CHANGE_DEVICE_FAILURE ? "device-locked" : NULL, tenant);
	t->chg.device_id = device;
	t->chg.max_failures = max_failures;
	snprintf(t->details, sizeof(t->details), "device_id=%s", device != NULL ? device : "");
	t->chg.details = t->details;
}

#define tc_dev_failure(t, tenant, device, max) \
	tc_dev_count(t, TCA_CHANGE_DEVICE_FAILURE, tenant, device, max)

/* A wrong password as the engine records it: the attempt, then the failure.
 * Returns the attempt's result; *locked whether the failure locked. */
static int
dev_wrong(tca_store *s, const char *tenant, const char *device, unsigned int max,
    int *locked)
{
	struct tchange a, f;
	int r;

	*locked = 0;
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, tenant, device, max);
	if ((r = commit1(s, &a)) != TCA_OK)
		return r;
	tc_dev_failure(&f, tenant, device, max);
	ck_assert_int_eq(commit1(s, &f), TCA_OK);
	*locked = f.chg.device_locked;
	return TCA_OK;
}

/* A device certificate that uses up the registration holding secret. */
static void
tc_issue_consume(struct tchange *t, const char *tenant, const char *device,
    const char *secret)
{
	tc_issue(t, tenant, device);
	t->chg.consume_secret = secret;
}

static void
dev_get(tca_store *s, const char *tenant, const char *device,
    struct tca_device_row *row)
{
	int r = s->ops->device_get(s, tenant, device, row);

	ck_assert_msg(r == TCA_OK, "device_get %s/%s: %d", tenant, device, r);
	ck_assert_str_eq(row->tenant, tenant);
	ck_assert_str_eq(row->device_id, device);
}

static void
assert_dev_fresh(const struct tca_device_row *row, const char *secret,
    int64_t registered_at, int64_t expires_at)
{
	ck_assert_str_eq(row->secret, secret);
	ck_assert_int_eq(row->registered_at, registered_at);
	ck_assert_int_eq(row->expires_at, expires_at);
	ck_assert_uint_eq(row->failures, 0);
	ck_assert_int_eq(row->locked, 0);
	ck_assert_int_eq(row->consumed_at, 0);
	ck_assert_str_eq(row->consumed_serial_hex, "");
}

struct dev_list {
	size_t n, stop_at;	/* stop_at: the callback stops after that many (0: never) */
	char ids[64][260];
};

static int
dev_list_cb(void *ctx, const struct tca_device_row *row)
{
	struct dev_list *l = ctx;

	ck_assert_uint_lt(l->n, 64);
	snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", row->device_id);
	return l->stop_at != 0 && l->n == l->stop_at ? 7 : 0;
}

static int
dev_list(tca_store *s, const char *tenant, const char *after, size_t limit,
    struct dev_list *l)
{
	memset(l, 0, sizeof(*l));
	return s->ops->device_list(s, tenant, after, limit, dev_list_cb, l);
}

/* /store/devices/register-get-list */
START_TEST(test_device_register)
{
	static const char sa[] = "$scrypt$ln=14,r=8,p=1$c2FsdA==$aGFzaA==";
	char big[TCA_DEVICE_SECRET_MAX + 2], ids[25][16];
	struct tchange ca, beta, r1, bad, many[25];
	struct tca_change *chgs[25];
	struct tca_device_row row;
	struct dev_list l;
	struct jcopy j;
	int res[25], i;
	size_t k;

	/* a tenant without an active CA registers nothing */
	tc_dev_register(&bad, "acme", "dev-a", sa, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 0);

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_dev_register(&r1, "acme", "dev-a", sa, 0);
	ck_assert_int_eq(commit1(st, &r1), TCA_OK);
	ck_assert_int_eq(r1.chg.journal_seq, 3);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "device-register");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.details, "device_id=dev-a");
	ck_assert_str_eq(j.serial, "");
	ck_assert_str_eq(j.fp, "");
	ck_assert_int_eq(j.time_ms, r1.chg.time_ms);
	ck_assert_uint_eq(j.uid, 1000);
	dev_get(st, "acme", "dev-a", &row);
	assert_dev_fresh(&row, sa, r1.chg.time_ms / 1000, 0);

	/* unknown device, other tenant, unknown tenant */
	memset(&row, 0xab, sizeof(row));
	ck_assert_int_eq(st->ops->device_get(st, "acme", "dev-b", &row), TCA_ERR_NOT_FOUND);
	ck_assert_str_eq(row.device_id, "");
	ck_assert_int_eq(st->ops->device_get(st, "beta", "dev-a", &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(st->ops->device_get(st, "nobody", "dev-a", &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(st->ops->device_get(st, "acme", NULL, &row), TCA_ERR_INVALID_ARG);

	/* 25 in one batch, each journaled */
	for (i = 0; i < 25; i++) {
		snprintf(ids[i], sizeof(ids[i]), "dev-%02d", 24 - i);
		tc_dev_register(&many[i], "acme", ids[i], sa, T_BASE_MS / 1000 + 3600);
		chgs[i] = &many[i].chg;
	}
	ck_assert_int_eq(st->ops->commit(st, chgs, 25, res), TCA_OK);
	for (i = 0; i < 25; i++) {
		ck_assert_int_eq(res[i], TCA_OK);
		ck_assert_int_eq(many[i].chg.journal_seq, 4 + i);
	}
	ck_assert_int_eq(journal_count(st), 28);
	dev_get(st, "acme", "dev-07", &row);
	assert_dev_fresh(&row, sa, T_BASE_MS / 1000, T_BASE_MS / 1000 + 3600);

	/* listed by device id, paged with after */
	ck_assert_int_eq(dev_list(st, "acme", "", 100, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 26);
	ck_assert_str_eq(l.ids[0], "dev-00");
	ck_assert_str_eq(l.ids[24], "dev-24");
	ck_assert_str_eq(l.ids[25], "dev-a");
	{
		char after[260] = "";
		size_t seen = 0, pages = 0;

		for (;;) {
			ck_assert_int_eq(dev_list(st, "acme", after, 10, &l), TCA_OK);
			for (k = 0; k < l.n; k++, seen++) {
				if (seen < 25)
					ck_assert_str_eq(l.ids[k], ids[24 - seen]);
				else
					ck_assert_str_eq(l.ids[k], "dev-a");
			}
			pages++;
			if (l.n < 10)
				break;
			snprintf(after, sizeof(after), "%s", l.ids[l.n - 1]);
		}
		ck_assert_uint_eq(seen, 26);
		ck_assert_uint_eq(pages, 3);
	}
	/* the callback may stop the walk; its value comes back */
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	ck_assert_int_eq(st->ops->device_list(st, "acme", "", 100, dev_list_cb, &l), 7);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(dev_list(st, "acme", "dev-a", 100, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(dev_list(st, "beta", "", 100, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(dev_list(st, "nobody", "", 100, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(dev_list(st, "acme", "", 0, &l), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->device_list(st, "acme", NULL, 10, dev_list_cb, &l),
	    TCA_ERR_INVALID_ARG);

	/* malformed registrations are refused before the store */
	tc_dev_register(&bad, "acme", "dev-x", NULL, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_dev_register(&bad, "acme", "dev-x", "", 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	memset(big, 'h', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tc_dev_register(&bad, "acme", "dev-x", big, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	big[TCA_DEVICE_SECRET_MAX] = '\0';	/* the longest is fine */
	tc_dev_register(&bad, "acme", "dev-long", big, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_OK);
	dev_get(st, "acme", "dev-long", &row);
	ck_assert_str_eq(row.secret, big);
	tc_dev_register(&bad, "acme", "", sa, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_dev_register(&bad, "acme", NULL, sa, 0);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_dev_register(&bad, "acme", "dev-x", sa, -1);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_dev_register(&bad, "acme", "dev-x", sa, 0);
	bad.chg.op = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(st->ops->device_get(st, "acme", "dev-x", &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(journal_count(st), 29);
	verify_ok(st, 29, NULL);
}
END_TEST

/* /store/devices/re-register-clears-failures-lock-use */
START_TEST(test_device_reregister)
{
	static const char s1[] = "$scrypt$one", s2[] = "$scrypt$two", s3[] = "$scrypt$three";
	struct tchange ca, reg, f, is;
	struct tca_device_row row;
	char hex[2 * TCA_SERIAL_MAX + 1];
	int i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	/* locked after 3 wrong passwords */
	for (i = 1; i <= 3; i++) {
		int locked;

		ck_assert_int_eq(dev_wrong(st, "acme", "dev-1", 3, &locked), TCA_OK);
		ck_assert_int_eq(locked, i == 3);
	}
	(void)f;
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_uint_eq(row.failures, 3);
	ck_assert_int_eq(row.locked, 1);
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);

	/* re-registered: a new secret, failures and lock cleared */
	tc_clock_ms += 5000;
	tc_dev_register(&reg, "acme", "dev-1", s2, T_BASE_MS / 1000 + 86400);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	dev_get(st, "acme", "dev-1", &row);
	assert_dev_fresh(&row, s2, reg.chg.time_ms / 1000, T_BASE_MS / 1000 + 86400);
	ck_assert_int_gt(row.registered_at, T_BASE_MS / 1000);
	/* the old secret is gone */
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	tc_issue_consume(&is, "acme", "dev-1", s2);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_int_eq(row.consumed_at, is.chg.time_ms / 1000);
	tca_hex(is.ci.serial, is.ci.serial_len, hex);
	ck_assert_str_eq(row.consumed_serial_hex, hex);

	/* re-registering a used device makes it pending again; its certificate stays */
	tc_dev_register(&reg, "acme", "dev-1", s3, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	dev_get(st, "acme", "dev-1", &row);
	assert_dev_fresh(&row, s3, reg.chg.time_ms / 1000, 0);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	tc_issue_consume(&is, "acme", "dev-1", s3);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 2);
	/* CA, 3 registrations, 2 certificates; failures are not journaled */
	verify_ok(st, 7, NULL);	/* with the device-locked record */
}
END_TEST

/* /store/devices/unregister */
START_TEST(test_device_unregister)
{
	static const char s1[] = "$scrypt$one";
	struct tchange ca, reg, un, is, del;
	struct tca_device_row row;
	struct dev_list l;
	struct jcopy j;

	tc_dev_unregister(&un, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &un), TCA_ERR_NOT_FOUND);
	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_dev_unregister(&un, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &un), TCA_OK);
	ck_assert_int_eq(un.chg.journal_seq, 3);
	journal_get(st, 3, &j);
	ck_assert_str_eq(j.op, "device-unregister");
	ck_assert_str_eq(j.tenant, "acme");
	ck_assert_str_eq(j.details, "device_id=dev-1");
	ck_assert_int_eq(st->ops->device_get(st, "acme", "dev-1", &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(dev_list(st, "acme", "", 10, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	/* a second time: NOT_FOUND and no record */
	tc_dev_unregister(&un, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &un), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(un.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), 3);
	/* nothing left to use */
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	/* a used registration can be removed; its certificate stays */
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	tc_dev_unregister(&un, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &un), TCA_OK);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	/* malformed */
	tc_dev_unregister(&un, "acme", "");
	ck_assert_int_eq(commit1(st, &un), TCA_ERR_INVALID_ARG);
	/* without an active CA */
	tc_dev_register(&reg, "acme", "dev-2", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	tc_dev_unregister(&un, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &un), TCA_ERR_NOT_FOUND);
	verify_ok(st, 8, NULL);
}
END_TEST

/* /store/devices/failures-lock: attempts are counted before the check, so
 * parallel guesses cannot exceed the limit; a wrong one locks at the limit
 * (journaled), a right one takes its attempt back */
START_TEST(test_device_failure)
{
	static const char s1[] = "$scrypt$one";
	struct tchange ca, reg, a, f, rel, is;
	struct tca_device_row row;
	unsigned int i;
	int locked;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	/* three checks in flight at once (max 3): a fourth is refused before
	 * any hashing could start */
	for (i = 1; i <= 3; i++) {
		tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-1", 3);
		a.chg.device_failures = 99;
		ck_assert_int_eq(commit1(st, &a), TCA_OK);
		ck_assert_int_eq(a.chg.journal_seq, 0);
		ck_assert_uint_eq(a.chg.device_failures, i);
	}
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-1", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_uint_eq(row.failures, 3);
	ck_assert_int_eq(row.locked, 0);
	/* one of them had the right password: released, one attempt free again */
	tc_dev_count(&rel, TCA_CHANGE_DEVICE_RELEASE, "acme", "dev-1", 3);
	ck_assert_int_eq(commit1(st, &rel), TCA_OK);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_uint_eq(row.failures, 2);
	/* the others were wrong: the first failure finds failures (2) below the
	 * limit, no lock; a new attempt brings it to 3 and its failure locks */
	tc_dev_failure(&f, "acme", "dev-1", 3);
	ck_assert_int_eq(commit1(st, &f), TCA_OK);
	ck_assert_int_eq(f.chg.device_locked, 0);
	ck_assert_int_eq(f.chg.journal_seq, 0);
	ck_assert_int_eq(dev_wrong(st, "acme", "dev-1", 3, &locked), TCA_OK);
	ck_assert_int_eq(locked, 1);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_uint_eq(row.failures, 3);
	ck_assert_int_eq(row.locked, 1);
	/* the lock is journaled; attempts and releases are not */
	ck_assert_int_eq(journal_count(st), 3);
	/* locked: no attempt, and even the right secret is refused */
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-1", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 0);
	ck_assert_int_eq(journal_count(st), 3);

	/* max 1: the first wrong password locks */
	tc_dev_register(&reg, "acme", "dev-2", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	ck_assert_int_eq(dev_wrong(st, "acme", "dev-2", 1, &locked), TCA_OK);
	ck_assert_int_eq(locked, 1);

	/* unknown device or tenant: no attempt */
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-9", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "beta", "dev-1", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);

	/* using the password takes its attempt back; a used one gets no attempt */
	tc_dev_register(&reg, "acme", "dev-3", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-3", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-3", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	dev_get(st, "acme", "dev-3", &row);
	ck_assert_uint_eq(row.failures, 0);
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-3", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);

	/* an expired registration gets no attempt */
	tc_dev_register(&reg, "acme", "dev-4", s1, T_BASE_MS / 1000 - 10);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-4", 3);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_CREDENTIAL_REFUSED);

	/* malformed */
	tc_dev_failure(&f, "acme", "dev-1", 0);
	ck_assert_int_eq(commit1(st, &f), TCA_ERR_INVALID_ARG);
	tc_dev_failure(&f, "acme", NULL, 3);
	ck_assert_int_eq(commit1(st, &f), TCA_ERR_INVALID_ARG);
	tc_dev_count(&a, TCA_CHANGE_DEVICE_ATTEMPT, "acme", "dev-1", 0);
	ck_assert_int_eq(commit1(st, &a), TCA_ERR_INVALID_ARG);
	verify_ok(st, journal_count(st), NULL);
}
END_TEST

/* /store/devices/consume-once */
START_TEST(test_device_consume)
{
	static const char s1[] = "$scrypt$one", s2[] = "$scrypt$two", s3[] = "$scrypt$three";
	struct tchange ca, beta, reg, is, is2, plain, bad;
	struct tca_change *chgs[2];
	struct tca_device_row row;
	struct tca_cert_row crow;
	char hex[2 * TCA_SERIAL_MAX + 1];
	int64_t now_s = T_BASE_MS / 1000, n;
	int res[2];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(st, &beta), TCA_OK);
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);

	/* the right secret: the certificate, and the registration used by it */
	tc_issue_consume(&is, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	ck_assert_int_eq(is.chg.journal_seq, 4);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_int_eq(row.consumed_at, is.chg.time_ms / 1000);
	tca_hex(is.ci.serial, is.ci.serial_len, hex);
	ck_assert_str_eq(row.consumed_serial_hex, hex);
	ck_assert_int_eq(cert_get_of(st, "acme", &is, &crow), TCA_OK);
	tca_cert_row_clear(&crow);

	/* the same secret again: refused, no certificate, no record */
	n = journal_count(st);
	tc_issue_consume(&is2, "acme", "dev-1", s1);
	ck_assert_int_eq(commit1(st, &is2), TCA_ERR_CREDENTIAL_REFUSED);
	ck_assert_int_eq(is2.chg.journal_seq, 0);
	ck_assert_int_eq(cert_get_of(st, "acme", &is2, &crow), TCA_ERR_NOT_FOUND);
	tca_cert_row_clear(&crow);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	ck_assert_int_eq(journal_count(st), n);
	dev_get(st, "acme", "dev-1", &row);
	ck_assert_str_eq(row.consumed_serial_hex, hex);

	/* two in one batch: the first gets it, the second nothing */
	tc_dev_register(&reg, "acme", "dev-2", s2, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	n = journal_count(st);
	tc_issue_consume(&is, "acme", "dev-2", s2);
	tc_issue_consume(&is2, "acme", "dev-2", s2);
	chgs[0] = &is.chg;
	chgs[1] = &is2.chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 2, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_CREDENTIAL_REFUSED);
	ck_assert_int_eq(is.chg.journal_seq, n + 1);
	ck_assert_int_eq(is2.chg.journal_seq, 0);
	ck_assert_int_eq(journal_count(st), n + 1);
	ck_assert_int_eq(cert_get_of(st, "acme", &is2, &crow), TCA_ERR_NOT_FOUND);
	tca_cert_row_clear(&crow);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 2);
	dev_get(st, "acme", "dev-2", &row);
	tca_hex(is.ci.serial, is.ci.serial_len, hex);
	ck_assert_str_eq(row.consumed_serial_hex, hex);

	/* a wrong secret */
	tc_dev_register(&reg, "acme", "dev-3", s3, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-3", s2);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	dev_get(st, "acme", "dev-3", &row);
	ck_assert_int_eq(row.consumed_at, 0);

	/* expired before time_ms / 1000: refused; expiring at that second: fine */
	ck_assert_int_eq(tc_clock_ms / 1000, now_s);
	tc_dev_register(&reg, "acme", "dev-4", s1, now_s - 1);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-4", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	tc_dev_register(&reg, "acme", "dev-5", s1, now_s);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-5", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);

	/* another tenant's registration is not this tenant's */
	tc_dev_register(&reg, "beta", "dev-6", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-6", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);
	/* nor a device never registered */
	tc_issue_consume(&is, "acme", "dev-7", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_CREDENTIAL_REFUSED);

	/* without consume_secret (re-enrollment, registration not required) the
	 * registration is left alone */
	tc_issue(&plain, "beta", "dev-6");
	ck_assert_int_eq(commit1(st, &plain), TCA_OK);
	dev_get(st, "beta", "dev-6", &row);
	ck_assert_int_eq(row.consumed_at, 0);
	tc_issue_consume(&is, "beta", "dev-6", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);

	/* malformed: consume_secret without a device id, or empty */
	tc_issue_consume(&bad, "acme", "dev-8", s1);
	bad.chg.device_id = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_issue_consume(&bad, "acme", "dev-8", "");
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);

	/* CA 2, registrations 6, certificates 5 */
	verify_ok(st, 13, NULL);
}
END_TEST

/* /store/devices/migrate-v3 */
START_TEST(test_device_migrate_v3)
{
	static char fresh[32768], migrated[32768];
	static const char s1[] = "$scrypt$one";
	char path[PATH_MAX + 32], err[256] = "";
	struct tchange ca, is, reg;
	struct tca_device_row row;
	struct dev_list l;
	struct tca_change *chg = &reg.chg;
	tca_store *ro = NULL, *s2 = NULL;
	int res = 0;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&is, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	st->ops->close(st);
	st = NULL;
	/* what a version 3 file looks like: no devices table, no state index */
	raw_exec("DROP TABLE devices; DROP TABLE ca_reservations; DROP INDEX certificates_state; PRAGMA user_version = 3");
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE"
	    " '%devices%'"), 0);

	/* read-only: not migrated, no registrations to read */
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(ro->ops->device_get(ro, "acme", "dev-1", &row), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(dev_list(ro, "acme", "", 10, &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	tc_dev_register(&reg, "acme", "dev-1", s1, 0);
	ck_assert_int_eq(ro->ops->commit(ro, &chg, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	verify_ok(ro, 2, NULL);
	ro->ops->close(ro);
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 3);

	/* read-write: migrated to 4, the journal intact, registrations work */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
	    " AND name = 'devices'"), 1);
	verify_ok(st, 2, NULL);
	tc_dev_register(&reg, "acme", "dev-2", s1, 0);
	ck_assert_int_eq(commit1(st, &reg), TCA_OK);
	tc_issue_consume(&is, "acme", "dev-2", s1);
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	dev_get(st, "acme", "dev-2", &row);
	ck_assert_int_ne(row.consumed_at, 0);
	verify_ok(st, 4, NULL);
	st->ops->close(st);
	st = NULL;

	/* the same schema as a fresh store */
	snprintf(path, sizeof(path), "%s/fresh.db", tmpdir);
	ck_assert_int_eq(tca_store_open_sqlite(path, 0, &s2, err, sizeof(err)), TCA_OK);
	s2->ops->close(s2);
	schema_dump(path, 0, fresh, sizeof(fresh));
	schema_dump(dbpath, 0, migrated, sizeof(migrated));
	assert_same_schema("from v3", fresh, migrated);
	assert_same_header(path);
	/* a second open changes nothing */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 5);
}
END_TEST

/*
 * /store/revoke/replace-through-sql
 *
 * INSERT OR REPLACE removes the row in the way without firing DELETE
 * triggers (SQLite fires them only with recursive_triggers on) and the
 * replacement fires no UPDATE trigger: BEFORE INSERT triggers on
 * revocations and crls keep plain SQL from rewriting a revocation or
 * lowering a CRL number (found by this test; failed before them).
 */
START_TEST(test_revoke_replace_sql)
{
	struct tchange ca, d1, r, c5;
	sqlite3 *db = NULL;
	char *msg = NULL;
	int64_t at;
	int reason, rc, rc2;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &d1), TCA_OK);
	tc_revoke(&r, "acme", &d1.ci, 1, T_NOW + 5);
	ck_assert_int_eq(commit1(st, &r), TCA_OK);
	tc_crl(&c5, "acme", 5, T_NOW, 1);
	ck_assert_int_eq(commit1(st, &c5), TCA_OK);

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, "INSERT OR REPLACE INTO revocations (cert_id, ca_id,"
	    " revoked_at, reason, not_after) SELECT cert_id, ca_id, revoked_at + 1000,"
	    " 0, not_after FROM revocations", NULL, NULL, &msg);
	sqlite3_free(msg);
	msg = NULL;
	rc2 = sqlite3_exec(db, "INSERT OR REPLACE INTO crls (ca_id, tenant,"
	    " crl_number, this_update, next_update, entries, der) SELECT ca_id,"
	    " tenant, 1, this_update, next_update, entries, der FROM crls",
	    NULL, NULL, &msg);
	sqlite3_free(msg);
	sqlite3_close(db);
	ck_assert_int_eq(is_revoked(st, "acme", &d1, &at, &reason), 1);
	ck_assert_msg(rc != SQLITE_OK && at == T_NOW + 5 && reason == 1,
	    "INSERT OR REPLACE rewrote a revocation (now at %lld, "
	    "reason %d)", (long long)at, reason);
	ck_assert_msg(rc2 != SQLITE_OK, "INSERT OR REPLACE lowered the "
	    "CRL number");
	assert_crl(st, "acme", &c5);
}
END_TEST

/* ------------------------------------------------------------- committer */

#define N_THREADS 32
#define N_PER_THREAD 50

struct submitter {
	tca_committer *c;
	int id;
	int n;
	int failures;
	int64_t max_seq;
};

static void *
submit_main(void *arg)
{
	struct submitter *s = arg;
	struct tchange *t;
	char cn[64];
	int i;

	if ((t = malloc(sizeof(*t))) == NULL) {
		s->failures = s->n;
		return NULL;
	}
	for (i = 0; i < s->n; i++) {
		snprintf(cn, sizeof(cn), "dev-%d-%d", s->id, i);
		tc_issue(t, "acme", cn);
		if (tca_committer_submit(s->c, &t->chg) != TCA_OK ||
		    t->chg.journal_seq <= 0)
			s->failures++;
		else if (t->chg.journal_seq > s->max_seq)
			s->max_seq = t->chg.journal_seq;
	}
	free(t);
	return NULL;
}

/* /committer/concurrent/group-commit */
START_TEST(test_committer_concurrent)
{
	struct submitter sub[N_THREADS];
	pthread_t th[N_THREADS];
	struct tchange ca;
	tca_committer *c = NULL;
	unsigned long long commits = 0, changes = 0, failures = 0;
	int i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	ck_assert_int_eq(tca_committer_start(st, 64, &c), TCA_OK);
	for (i = 0; i < N_THREADS; i++) {
		memset(&sub[i], 0, sizeof(sub[i]));
		sub[i].c = c;
		sub[i].id = i;
		sub[i].n = N_PER_THREAD;
		ck_assert_int_eq(pthread_create(&th[i], NULL, submit_main, &sub[i]), 0);
	}
	for (i = 0; i < N_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(sub[i].failures, 0);
	}
	tca_committer_stats(c, &commits, &changes, &failures);
	ck_assert_uint_eq(changes, N_THREADS * N_PER_THREAD);
	ck_assert_uint_eq(failures, 0);
	ck_assert_uint_gt(commits, 0);
	ck_assert_msg(commits < changes, "no group commit: %llu commits for "
	    "%llu changes", commits, changes);
	tca_committer_stop(c);
	verify_ok(st, 1 + N_THREADS * N_PER_THREAD, NULL);
	ck_assert_int_eq(cert_count(st, "acme", "device"), N_THREADS * N_PER_THREAD);
}
END_TEST

/* A store that holds its first commit until released, to queue changes. */
struct gate_store {
	tca_store base;
	tca_store *inner;
	sem_t entered, release;
	pthread_mutex_t m;
	int calls;
	size_t max_n;
};

static int
gate_commit(tca_store *s, struct tca_change *const *changes, size_t n,
    int *results)
{
	struct gate_store *g = (struct gate_store *)s;
	int first;

	pthread_mutex_lock(&g->m);
	first = ++g->calls == 1;
	if (n > g->max_n)
		g->max_n = n;
	pthread_mutex_unlock(&g->m);
	if (first) {
		sem_post(&g->entered);
		while (sem_wait(&g->release) != 0)
			;
	}
	return g->inner->ops->commit(g->inner, changes, n, results);
}

static const struct tca_store_ops gate_ops = {
	.name = "gate",
	.commit = gate_commit,
};

static void *
stop_main(void *arg)
{
	tca_committer_stop(arg);
	return NULL;
}

/* /committer/stop/drains-queue */
START_TEST(test_committer_stop_drains)
{
	struct gate_store g;
	struct submitter sub[10];
	pthread_t th[10], stopper;
	struct tchange ca, late;
	tca_committer *c = NULL;
	int i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	memset(&g, 0, sizeof(g));
	g.base.ops = &gate_ops;
	g.inner = st;
	ck_assert_int_eq(sem_init(&g.entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&g.release, 0, 0), 0);
	ck_assert_int_eq(pthread_mutex_init(&g.m, NULL), 0);
	ck_assert_int_eq(tca_committer_start(&g.base, 4, &c), TCA_OK);

	for (i = 0; i < 10; i++) {
		memset(&sub[i], 0, sizeof(sub[i]));
		sub[i].c = c;
		sub[i].id = i;
		sub[i].n = 1;
		ck_assert_int_eq(pthread_create(&th[i], NULL, submit_main, &sub[i]), 0);
		if (i == 0)	/* the first batch is now held in commit */
			ck_assert_int_eq(sem_wait(&g.entered), 0);
	}
	usleep(300 * 1000);	/* let the other nine queue up */
	ck_assert_int_eq(pthread_create(&stopper, NULL, stop_main, c), 0);
	usleep(200 * 1000);	/* stop has begun; it waits for the thread */
	tc_issue(&late, "acme", "too-late");
	ck_assert_int_eq(tca_committer_submit(c, &late.chg), TCA_ERR_SHUTTING_DOWN);
	ck_assert_int_eq(sem_post(&g.release), 0);
	ck_assert_int_eq(pthread_join(stopper, NULL), 0);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(sub[i].failures, 0);
	}
	/* one held batch, then the nine queued in batches of at most 4 */
	ck_assert_uint_le(g.max_n, 4);
	ck_assert_int_ge(g.calls, 4);
	verify_ok(st, 11, NULL);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 10);
	sem_destroy(&g.entered);
	sem_destroy(&g.release);
	pthread_mutex_destroy(&g.m);
	tca_committer_stop(NULL);
}
END_TEST

/* /committer/failure-reported */
START_TEST(test_committer_failure)
{
	char err[256] = "";
	struct tchange t;
	tca_store *ro = NULL;
	tca_committer *c = NULL;
	unsigned long long commits = 9, changes = 9, failures = 0;

	fill_journal(st, 1, 1);
	ck_assert_msg(tca_store_open(store_uri, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_int_eq(tca_committer_start(ro, 0, &c), TCA_OK);
	tc_issue(&t, "acme", "dev");
	ck_assert_int_eq(tca_committer_submit(c, &t.chg), TCA_ERR_JOURNAL_UNAVAILABLE);
	tca_committer_stats(c, &commits, &changes, &failures);
	ck_assert_uint_eq(commits, 0);
	ck_assert_uint_eq(changes, 0);
	ck_assert_uint_eq(failures, 1);
	tca_committer_stop(c);
	ro->ops->close(ro);
	/* the writer still works */
	ck_assert_int_eq(commit1(st, &t), TCA_OK);
	verify_ok(st, 2, NULL);
}
END_TEST

/* ------------------------------------------------------------ integrity */

/* /store/integrity/exclusive-lock: a second engine open of a store in use is
 * refused naming the store and the holder's pid; read-only opens still
 * work; the lock goes with the close. */
START_TEST(test_exclusive_lock)
{
	tca_store *a = NULL, *b = NULL, *ro = NULL;
	char err[1024], want[64], lockpath[sizeof(dbpath) + 8];
	struct stat sb;

	st->ops->close(st);
	st = NULL;
	ck_assert_msg(tca_store_open_sqlite(dbpath, TCA_STORE_EXCLUSIVE, &a, err,
	    sizeof(err)) == TCA_OK, "%s", err);
	snprintf(lockpath, sizeof(lockpath), "%s.lock", dbpath);
	ck_assert_int_eq(stat(lockpath, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_EXCLUSIVE, &b, err,
	    sizeof(err)), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err, dbpath) != NULL, "%s", err);
	snprintf(want, sizeof(want), "pid %ld", (long)getpid());
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
	/* audit tools open read-only and take no lock */
	ck_assert_msg(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro, err,
	    sizeof(err)) == TCA_OK, "%s", err);
	ro->ops->close(ro);
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY |
	    TCA_STORE_EXCLUSIVE, &ro, err, sizeof(err)), TCA_ERR_INVALID_ARG);
	a->ops->close(a);
	ck_assert_msg(tca_store_open_sqlite(dbpath, TCA_STORE_EXCLUSIVE, &b, err,
	    sizeof(err)) == TCA_OK, "%s", err);
	b->ops->close(b);
	open_store();
}
END_TEST

/* /store/integrity/guards-restored: dropped, altered and added triggers and
 * a dropped unique index are put back as the schema has them at the next
 * read-write open; the data is untouched. */
START_TEST(test_guards_restored)
{
	struct tchange tc[2];

	tc_ca_create(&tc[0], "acme");
	ck_assert_int_eq(commit1(st, &tc[0]), TCA_OK);
	tc_issue(&tc[1], "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &tc[1]), TCA_OK);
	st->ops->close(st);
	st = NULL;
	raw_exec("DROP TRIGGER journal_no_delete;"
	    "DROP TRIGGER journal_no_update;"
	    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal"
	    " WHEN 0 BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
	    "DROP TRIGGER certificates_no_delete;"
	    "DROP TRIGGER revocations_no_replace;"
	    "DROP INDEX cas_one_active;"
	    "CREATE TRIGGER evil AFTER INSERT ON journal BEGIN"
	    " UPDATE cas SET status = 'deleted'; END;");
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name = 'evil'"), 1);
	open_store();
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name IN"
	    " ('journal_no_delete', 'journal_no_update', 'certificates_no_delete',"
	    " 'revocations_no_replace', 'cas_one_active')"), 5);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name = 'evil'"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'journal_no_update' AND sql LIKE '% WHEN 0 %'"), 0);
	raw_exec_fail("DELETE FROM journal WHERE seq = 2", "append-only");
	raw_exec_fail("UPDATE journal SET subject = 'x' WHERE seq = 2", "append-only");
	raw_exec_fail("DELETE FROM certificates", "append-only");
	verify_ok(st, 2, NULL);
	/* a healthy store is left alone */
	st->ops->close(st);
	st = NULL;
	open_store();
	verify_ok(st, 2, NULL);
}
END_TEST

/* /store/integrity/start-check: the engine's start check passes an intact
 * journal and names the first bad record of an edited one. */
START_TEST(test_start_check)
{
	char why[1024], want[64];
	int i;

	fill_journal(st, 5, 2);
	ck_assert_msg(tca_journal_check_start(st, dbpath, why, sizeof(why)) == TCA_OK,
	    "%s", why);
	st->ops->close(st);
	st = NULL;
	raw_exec("DROP TRIGGER journal_no_update;"
	    "UPDATE journal SET subject = 'CN=other' WHERE seq = 3;");
	open_store();
	ck_assert_int_eq(tca_journal_check_start(st, dbpath, why, sizeof(why)),
	    TCA_ERR_POLICY_VIOLATION);
	snprintf(want, sizeof(want), "broken at record 3 ");
	ck_assert_msg(strstr(why, want) != NULL, "%s", why);
	ck_assert_msg(strstr(why, dbpath) != NULL, "%s", why);
	ck_assert_msg(strstr(why, "hash mismatch") != NULL, "%s", why);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(tca_journal_check_start(st, dbpath, why,
		    sizeof(why)), TCA_ERR_POLICY_VIOLATION);
}
END_TEST

struct xc_report {
	char lines[16][512];
	int n;
};

static void
xc_report_cb(void *ctx, const char *line)
{
	struct xc_report *xr = ctx;

	if (xr->n < 16)
		snprintf(xr->lines[xr->n], sizeof(xr->lines[0]), "%s", line);
	xr->n++;
}

static int
xc_has(const struct xc_report *xr, const char *a, const char *b)
{
	int i;

	for (i = 0; i < xr->n && i < 16; i++)
		if (strstr(xr->lines[i], a) != NULL && (b == NULL ||
		    strstr(xr->lines[i], b) != NULL))
			return 1;
	return 0;
}

/* /store/integrity/crosscheck: certificates and revocations against the
 * journal: a clean store passes; a deleted, altered or added certificate
 * row and a deleted revocation row are each reported by serial. */
START_TEST(test_crosscheck)
{
	struct tchange ca, dev[4], rv;
	struct xc_report xr;
	uint64_t problems = 99, certs = 0;
	char sql[512], cn[4][16], s0[41], s1[41], s2[41], s3[41];
	int i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	for (i = 0; i < 4; i++) {
		snprintf(cn[i], sizeof(cn[i]), "dev-%d", i);
		tc_issue(&dev[i], "acme", cn[i]);
		ck_assert_int_eq(commit1(st, &dev[i]), TCA_OK);
	}
	tc_revoke(&rv, "acme", &dev[3].ci, 1, T_BASE_MS / 1000);
	ck_assert_int_eq(commit1(st, &rv), TCA_OK);
	memset(&xr, 0, sizeof(xr));
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, xc_report_cb, &xr, &problems,
	    &certs), TCA_OK);
	ck_assert_uint_eq(problems, 0);
	ck_assert_uint_eq(certs, 5);
	ck_assert_int_eq(xr.n, 0);

	tca_hex(dev[0].ci.serial, dev[0].ci.serial_len, s0);
	tca_hex(dev[1].ci.serial, dev[1].ci.serial_len, s1);
	tca_hex(dev[2].ci.serial, dev[2].ci.serial_len, s2);
	tca_hex(dev[3].ci.serial, dev[3].ci.serial_len, s3);
	/* what someone with the file can do once the guards are gone */
	snprintf(sql, sizeof(sql), "DROP TRIGGER certificates_no_delete;"
	    "DROP TRIGGER revocations_no_delete;"
	    "DELETE FROM certificates WHERE serial = x'%s';"
	    "UPDATE certificates SET subject = 'CN=forged' WHERE serial = x'%s';"
	    "UPDATE certificates SET der = x'3000' WHERE serial = x'%s';"
	    "DELETE FROM revocations;", s0, s1, s2);
	raw_exec(sql);
	memset(&xr, 0, sizeof(xr));
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, xc_report_cb, &xr, &problems,
	    &certs), TCA_ERR_POLICY_VIOLATION);
	ck_assert_uint_eq(certs, 4);
	ck_assert_uint_eq(problems, 4);
	ck_assert_msg(xc_has(&xr, s0, "has no row in the store (row deleted)"),
	    "%s", xr.lines[0]);
	ck_assert_msg(xc_has(&xr, s1, "differs from journal record 3"), "%s", xr.lines[0]);
	ck_assert_msg(xc_has(&xr, s2, "DER does not hash"), "%s", xr.lines[0]);
	ck_assert_msg(xc_has(&xr, s3, "revocation row deleted"), "%s", xr.lines[0]);
	/* NULL report: counted all the same */
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, NULL, NULL, &problems, &certs),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_uint_eq(problems, 4);
	/* without the DERs (the engine's start check) the altered DER goes
	 * unseen, the rest does not */
	memset(&xr, 0, sizeof(xr));
	ck_assert_int_eq(tca_journal_crosscheck(st, 0, xc_report_cb, &xr, &problems,
	    &certs), TCA_ERR_POLICY_VIOLATION);
	ck_assert_uint_eq(problems, 3);
	ck_assert(!xc_has(&xr, s2, NULL));
}
END_TEST

/* /store/integrity/crosscheck-added: a certificate row (or revocation)
 * added outside the engine has no journal record. */
START_TEST(test_crosscheck_added)
{
	struct tchange ca, dev;
	struct xc_report xr;
	uint64_t problems = 0, certs = 0;
	char sql[512];

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_issue(&dev, "acme", "dev-0");
	ck_assert_int_eq(commit1(st, &dev), TCA_OK);
	/* a consistent row (its fingerprint is its DER's SHA-256) that the
	 * engine never recorded */
	snprintf(sql, sizeof(sql), "INSERT INTO certificates (ca_id, tenant, kind,"
	    " issuer_hash, serial, subject, fingerprint, not_before, not_after,"
	    " issued_at, der, device_id) SELECT ca_id, tenant, kind, issuer_hash,"
	    " x'0badc0de', 'CN=ghost', x'%s', not_before, not_after, issued_at,"
	    " x'3001ff', 'ghost' FROM certificates WHERE kind = 'device'",
	    /* SHA-256 of 30 01 ff */
	    "160ccc62545ede1d999d8732e7186f6a1d225ce8ef31da02ddd66e16132d7041");
	raw_exec(sql);
	raw_exec("INSERT INTO revocations (cert_id, ca_id, revoked_at, reason, not_after)"
	    " SELECT cert_id, ca_id, 0, 1, not_after FROM certificates"
	    " WHERE serial <> x'0badc0de' AND kind = 'device'");
	memset(&xr, 0, sizeof(xr));
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, xc_report_cb, &xr, &problems,
	    &certs), TCA_ERR_POLICY_VIOLATION);
	ck_assert_uint_eq(certs, 3);
	ck_assert_msg(xc_has(&xr, "serial 0badc0de", "has no journal record"), "%s", xr.lines[0]);
	ck_assert_msg(xc_has(&xr, "revoked, but the journal has no revoke record", NULL),
	    "%s", xr.lines[0]);
}
END_TEST

/* The batch of one change is refused as a whole: nothing committed. */
static void
commit_refused(struct tchange *t)
{
	struct tca_change *chg = &t->chg;
	int res = 12345;

	ck_assert_int_eq(st->ops->commit(st, &chg, 1, &res), TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(res, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(chg->journal_seq, 0);
}

/* /store/integrity/unlinked: once the database files are unlinked under an
 * open store, no commit succeeds any more (it would go to the unlinked
 * files), and health says why. */
START_TEST(test_files_unlinked)
{
	struct tchange tc[3];
	char why[PATH_MAX + 256], p[sizeof(dbpath) + 8];

	tc_ca_create(&tc[0], "acme");
	ck_assert_int_eq(commit1(st, &tc[0]), TCA_OK);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)), TCA_OK);
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(unlink(dbpath), 0);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	ck_assert_int_eq(unlink(p), 0);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	ck_assert_int_eq(unlink(p), 0);
	tc_issue(&tc[1], "acme", "dev-1");
	commit_refused(&tc[1]);
	ck_assert_int_eq(tc[1].chg.journal_seq, 0);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(why, "was unlinked under the running engine") != NULL,
	    "%s", why);
	ck_assert_msg(strstr(why, dbpath) != NULL, "%s", why);
	/* for good, even once a file is back at the path */
	raw_exec("CREATE TABLE unrelated (x)");
	tc_issue(&tc[2], "acme", "dev-2");
	commit_refused(&tc[2]);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE name = 'unrelated'"), 1);
}
END_TEST

/* /store/integrity/replaced: a store file replaced by another (rename over
 * it) is noticed too; the -wal alone as well. */
START_TEST(test_files_replaced)
{
	struct tchange tc[3];
	char why[PATH_MAX + 256], p[sizeof(dbpath) + 8], q[sizeof(dbpath) + 8];

	tc_ca_create(&tc[0], "acme");
	ck_assert_int_eq(commit1(st, &tc[0]), TCA_OK);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	snprintf(q, sizeof(q), "%s-new", dbpath);
	test_sh("cp '%s' '%s'", p, q);
	ck_assert_int_eq(rename(q, p), 0);
	tc_issue(&tc[1], "acme", "dev-1");
	commit_refused(&tc[1]);
	ck_assert_int_eq(st->ops->health(st, why, sizeof(why)),
	    TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_msg(strstr(why, "-wal was replaced under the running engine") != NULL,
	    "%s", why);
}
END_TEST

/* /store/integrity/saved-head: a head saved earlier is found while the
 * journal grows; cutting off the newest records (which the chain alone
 * cannot show) or rewriting them is reported. */
START_TEST(test_saved_head)
{
	struct tchange tc;
	unsigned char head[32], other[32];
	char why[512];

	fill_journal(st, 6, 3);
	verify_ok(st, 6, head);
	ck_assert_int_eq(tca_journal_check_head(st, 6, head, why, sizeof(why)), TCA_OK);
	tc_ca_create(&tc, "other");	/* the journal grows to 7 */
	ck_assert_int_eq(commit1(st, &tc), TCA_OK);
	ck_assert_int_eq(tca_journal_check_head(st, 6, head, why, sizeof(why)), TCA_OK);
	memcpy(other, head, 32);
	other[0] ^= 1;
	ck_assert_int_eq(tca_journal_check_head(st, 6, other, why, sizeof(why)),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "record 6 has hash") != NULL, "%s", why);
	st->ops->close(st);
	st = NULL;
	ck_assert_int_eq(be->tamper(store_uri, "DELETE FROM journal WHERE seq >= 5"), 0);
	open_store();
	verify_ok(st, 4, NULL);	/* the chain alone cannot tell */
	ck_assert_int_eq(tca_journal_check_head(st, 6, head, why, sizeof(why)),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "the journal ends at record 4, before the saved "
	    "head 6") != NULL, "%s", why);
}
END_TEST

/* A checkpoint line signed here with a software key, the way the engine
 * signs with the token's audit key (checkpoint.h). */
static void
make_checkpoint(EVP_PKEY *key, int64_t seq, const unsigned char hash[32],
    char *line, size_t linelen)
{
	unsigned char *spki = NULL, fp[32], sig[160];
	char hash_hex[65], fp_hex[65], spki_b64[800], sig_b64[240];
	unsigned int fplen = 0;
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md;
	int spki_len, n;

	spki_len = i2d_PUBKEY(key, &spki);
	ck_assert_int_gt(spki_len, 0);
	ck_assert_int_eq(EVP_Digest(spki, (size_t)spki_len, fp, &fplen, EVP_sha256(), NULL), 1);
	tca_hex(fp, 32, fp_hex);
	tca_hex(hash, 32, hash_hex);
	n = snprintf(line, linelen, "tca-checkpoint-v1 seq=%lld hash=%s time=1790000000 key=%s",
	    (long long)seq, hash_hex, fp_hex);
	ck_assert((md = EVP_MD_CTX_new()) != NULL);
	ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)line,
	    (size_t)n), 1);
	EVP_MD_CTX_free(md);
	EVP_EncodeBlock((unsigned char *)spki_b64, spki, spki_len);
	EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)siglen);
	ck_assert_uint_lt(strlen(spki_b64) + strlen(sig_b64) + 12, linelen - (size_t)n);
	memcpy(line + n, " spki=", 6);
	n += 6;
	memcpy(line + n, spki_b64, strlen(spki_b64));
	n += (int)strlen(spki_b64);
	memcpy(line + n, " sig=", 5);
	n += 5;
	memcpy(line + n, sig_b64, strlen(sig_b64) + 1);
	OPENSSL_free(spki);
}

/* /store/integrity/checkpoint-line: the format, the key fingerprint, the
 * signature and the pinned key are all checked. */
START_TEST(test_checkpoint_line)
{
	EVP_PKEY *key = NULL, *other = NULL;
	unsigned char hash[32], got[32];
	char line[1024], bad[1024], fp[65], why[256], *p;
	int64_t seq = 0, t = 0;

	key = EVP_EC_gen("P-256");
	other = EVP_EC_gen("P-256");
	ck_assert(key != NULL && other != NULL);
	memset(hash, 0xab, sizeof(hash));
	make_checkpoint(key, 42, hash, line, sizeof(line));
	ck_assert_msg(tca_checkpoint_verify_line(line, NULL, &seq, got, &t, fp, why,
	    sizeof(why)) == TCA_OK, "%s", why);
	ck_assert_int_eq(seq, 42);
	ck_assert_int_eq(t, 1790000000);
	ck_assert_mem_eq(got, hash, 32);
	ck_assert_int_eq(tca_checkpoint_verify_line(line, key, &seq, got, &t, fp, why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_checkpoint_verify_line(line, other, &seq, got, &t, fp, why,
	    sizeof(why)), TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "another key") != NULL, "%s", why);
	/* an altered head */
	snprintf(bad, sizeof(bad), "%s", line);
	p = strstr(bad, " seq=42 ");
	ck_assert_ptr_nonnull(p);
	p[6] = '3';
	ck_assert_int_eq(tca_checkpoint_verify_line(bad, NULL, &seq, got, &t, fp, why,
	    sizeof(why)), TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "signature does not verify") != NULL, "%s", why);
	/* another key's spki under this key's fingerprint */
	make_checkpoint(other, 42, hash, bad, sizeof(bad));
	memcpy(strstr(bad, " key=") + 5, strstr(line, " key=") + 5, 64);
	ck_assert_int_eq(tca_checkpoint_verify_line(bad, NULL, &seq, got, &t, fp, why,
	    sizeof(why)), TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "key= is not the SHA-256") != NULL, "%s", why);
	/* not a checkpoint at all, or cut short */
	ck_assert_int_eq(tca_checkpoint_verify_line("hello", NULL, &seq, got, &t, fp,
	    why, sizeof(why)), TCA_ERR_INVALID_ARG);
	snprintf(bad, sizeof(bad), "%s", line);
	*strstr(bad, " sig=") = '\0';
	ck_assert_int_eq(tca_checkpoint_verify_line(bad, NULL, &seq, got, &t, fp, why,
	    sizeof(why)), TCA_ERR_INVALID_ARG);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}
END_TEST

/* One TCase of the suite: named "<prefix>/<name>" (the string lives as
 * long as the program). */

/* ------------------------------------------------------------ store migrate */

static void
dump_state(FILE *f, const struct tca_renewal_state *rs)
{
	fprintf(f, " %d %s %u %lld %lld %d %d", rs->failed, rs->reason, rs->attempts,
	    (long long)rs->failed_since, (long long)rs->next_retry, rs->alerted,
	    rs->expiry_alerted);
}

static int
dump_ca_cb(void *ctx, const struct tca_ca_row *r)
{
	FILE *f = ctx;

	fprintf(f, "C %lld %s %d %s ", (long long)r->ca_id, r->tenant, r->status,
	    r->key_type);
	hexf(f, r->key_id, r->key_id_len);
	fprintf(f, " %lld %lld ", (long long)r->created_at, (long long)r->deleted_at);
	hexf(f, r->cert_der, r->cert_der_len);
	fputc(' ', f);
	if (r->prev_der != NULL)
		hexf(f, r->prev_der, r->prev_der_len);
	dump_state(f, &r->renewal);
	dump_state(f, &r->crl);
	fprintf(f, " [%s] %llu %lld %lld\n", r->policy != NULL ? r->policy : "",
	    (unsigned long long)r->crl_number, (long long)r->crl_this_update,
	    (long long)r->crl_next_update);
	return 0;
}

static int
dump_cert_cb(void *ctx, const struct tca_cert_row *r)
{
	fprintf(ctx, "R %s %s %s %s %s %lld %lld %lld\n", r->tenant, r->kind,
	    r->serial_hex, r->subject, r->fingerprint_hex, (long long)r->not_before,
	    (long long)r->not_after, (long long)r->issued_at);
	return 0;
}

static int
dump_audit_cb(void *ctx, const struct tca_cert_audit_row *r)
{
	FILE *f = ctx;

	fprintf(f, "A %lld %s %s %s ", (long long)r->cert_id, r->tenant, r->kind,
	    r->subject);
	hexf(f, r->serial, r->serial_len);
	fputc(' ', f);
	hexf(f, r->fingerprint, r->fingerprint_len);
	fputc(' ', f);
	hexf(f, r->der, r->der_len);
	fprintf(f, " %d\n", r->revoked);
	return 0;
}

/* Runs sql on the store at uri as its owner would, guards left in place:
 * 0, or -1 when the database refused it. */
static int
raw_sql(const char *uri, const char *sql)
{
	sqlite3 *db = NULL;
	int rc;

	if (strncmp(uri, "sqlite:", 7) != 0) {
#if HAVE_LIBPQ
		char err[512] = "";

		return pgtest_exec(uri, sql, err, sizeof(err)) == 0 ? 0 : -1;
#else
		return -1;
#endif
	}
	if (sqlite3_open(uri + 7, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Every read op's answers on s, as text (free()). */
static char *
dump_store(tca_store *s)
{
	static const char *const tenants[] = { "acme", "beta", "gamma" };
	struct tca_crl_row crl;
	struct tca_cert_counts cc;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);
	int r;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(s->ops->journal_foreach(s, 1, dump_journal_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->foreach_ca(s, 1, dump_ca_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_foreach(s, NULL, dump_cert_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->cert_audit_foreach(s, 1, dump_audit_cb, f), TCA_OK);
	ck_assert_int_eq(s->ops->revoked_all(s, INT64_MIN, dump_revoked_cb, f), TCA_OK);
	for (i = 0; i < sizeof(tenants) / sizeof(tenants[0]); i++) {
		memset(&crl, 0, sizeof(crl));
		r = s->ops->crl_get(s, tenants[i], &crl);
		fprintf(f, "L %s %d %llu %llu %lld %lld %llu ", tenants[i], r,
		    (unsigned long long)crl.next_number,
		    (unsigned long long)crl.crl_number, (long long)crl.this_update,
		    (long long)crl.next_update, (unsigned long long)crl.entries);
		if (crl.der != NULL)
			hexf(f, crl.der, crl.der_len);
		fputc('\n', f);
		tca_crl_row_clear(&crl);
		ck_assert_int_eq(s->ops->device_list(s, tenants[i], "", 100,
		    dump_device_cb, f), TCA_OK);
	}
	memset(&cc, 0, sizeof(cc));
	ck_assert_int_eq(s->ops->cert_counts(s, T_BASE_MS / 1000 + 3600, &cc), TCA_OK);
	fprintf(f, "N %llu %llu %llu\n", (unsigned long long)cc.valid,
	    (unsigned long long)cc.revoked, (unsigned long long)cc.expired);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* A store with every change kind: CAs created, re-issued, deleted and
 * re-created, device certificates, revocations, CRLs, renewal and CRL
 * state, policy, device registrations failed, locked and used. */
static void
populate_all(tca_store *s)
{
	struct tchange ca, d1, d2, t, beta;
	struct tca_renewal_state rs;
	int locked;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(s, &ca), TCA_OK);
	tc_issue(&d1, "acme", "dev-1");
	ck_assert_int_eq(commit1(s, &d1), TCA_OK);
	tc_issue(&d2, "acme", "dev-2");
	ck_assert_int_eq(commit1(s, &d2), TCA_OK);
	tc_reissue(&t, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	memset(&rs, 0, sizeof(rs));
	rs.failed = 1;
	snprintf(rs.reason, sizeof(rs.reason), "token said no");
	rs.attempts = 3;
	rs.failed_since = 1000;
	rs.next_retry = 2000;
	rs.alerted = 1;
	tc_renewal(&t, "acme", &rs);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_revoke(&t, "acme", &d1.ci, 1, T_BASE_MS / 1000 + 5);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_crl(&t, "acme", 1, T_BASE_MS / 1000 + 6, 1);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	rs.attempts = 1;
	snprintf(rs.reason, sizeof(rs.reason), "crl: later");
	tc_crl_state(&t, "acme", &rs);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_policy(&t, "acme", "validity-days=30");
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_dev_register(&t, "acme", "dev-9", "hash$locked", 0);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	ck_assert_int_eq(dev_wrong(s, "acme", "dev-9", 1, &locked), TCA_OK);
	ck_assert_int_eq(locked, 1);
	tc_dev_register(&t, "acme", "dev-3", "hash$used", T_BASE_MS / 1000 + 86400);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_issue_consume(&t, "acme", "dev-3", "hash$used");
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_dev_register(&t, "acme", "dev-4", "hash$fresh", 0);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	/* a tenant deleted and re-created, with a CRL on each CA */
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(s, &beta), TCA_OK);
	tc_crl(&t, "beta", 1, T_BASE_MS / 1000 + 7, 0);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_ca_delete(&t, "beta");
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_ca_create(&beta, "beta");
	ck_assert_int_eq(commit1(s, &beta), TCA_OK);
	tc_crl(&t, "beta", 2, T_BASE_MS / 1000 + 8, 0);
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
	tc_issue(&t, "beta", "b-1");
	ck_assert_int_eq(commit1(s, &t), TCA_OK);
}

/* /store/migrate/in: a SQLite store with every change kind migrated into
 * the (empty) store under test: every read gives the same answers, the
 * chain goes on from the same head; a broken source and a non-empty target
 * are refused, leaving the target as it was. */
START_TEST(test_store_migrate_in)
{
	char src_path[PATH_MAX + 32], bad_path[PATH_MAX + 32], uri[PATH_MAX + 48];
	char err[512] = "", why[512] = "", *want, *got;
	unsigned char head[32], head2[32];
	struct tca_mig_stats stats;
	struct tchange t;
	tca_store *src = NULL;
	uint64_t count = 0, count2 = 0;
	int64_t bad = 0;
	int r;

	snprintf(src_path, sizeof(src_path), "%s/source.db", tmpdir);
	snprintf(bad_path, sizeof(bad_path), "%s/broken.db", tmpdir);
	snprintf(uri, sizeof(uri), "sqlite:%s", src_path);
	ck_assert_int_eq(tca_store_open(uri, 0, &src, err, sizeof(err)), TCA_OK);
	populate_all(src);
	src->ops->close(src);
	src = NULL;
	test_sh("cp '%s' '%s'", src_path, bad_path);
	snprintf(uri, sizeof(uri), "sqlite:%s", bad_path);
	ck_assert_int_eq(sqlite_tamper(uri, "UPDATE journal SET details = 'x' "
	    "WHERE seq = 3"), 0);

	/* a broken source: refused naming the record, nothing written */
	ck_assert_int_eq(tca_store_open(uri, TCA_STORE_READONLY, &src, err,
	    sizeof(err)), TCA_OK);
	r = tca_store_migrate(src, st, &stats, why, sizeof(why));
	ck_assert_int_eq(r, TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(why, "record 3") != NULL, "why: %s", why);
	/* the CAs and certificates copied before record 3 were rolled back */
	ck_assert_int_eq(journal_count(st), 0);
	got = dump_store(st);
	ck_assert_msg(strstr(got, "\nC ") == NULL && strncmp(got, "C ", 2) != 0 &&
	    strstr(got, "A ") == NULL, "the target is not empty: %s", got);
	free(got);
	src->ops->close(src);
	src = NULL;

	snprintf(uri, sizeof(uri), "sqlite:%s", src_path);
	ck_assert_int_eq(tca_store_open(uri, TCA_STORE_READONLY, &src, err,
	    sizeof(err)), TCA_OK);
	r = tca_store_migrate(src, st, &stats, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "migrate: %d %s", r, why);
	ck_assert_uint_eq(stats.rows[TCA_MIG_CAS], 3);
	ck_assert_uint_eq(stats.rows[TCA_MIG_DEVICES], 3);
	ck_assert_uint_eq(stats.rows[TCA_MIG_REVOCATIONS], 1);
	ck_assert_uint_eq(stats.rows[TCA_MIG_CRLS], 3);
	want = dump_store(src);
	got = dump_store(st);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
	ck_assert_int_eq(tca_journal_verify(src, &count, &bad, head, why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_journal_verify(st, &count2, &bad, head2, why,
	    sizeof(why)), TCA_OK);
	ck_assert_uint_eq(count, count2);
	ck_assert_uint_eq(count, stats.records);
	ck_assert_mem_eq(head, head2, 32);
	ck_assert_mem_eq(head, stats.head, 32);
	ck_assert_int_eq(tca_journal_crosscheck(st, TCA_XC_DER, NULL, NULL, NULL,
	    NULL), TCA_OK);

	/* a non-empty target: refused, naming what it holds */
	r = tca_store_migrate(src, st, &stats, why, sizeof(why));
	ck_assert_int_eq(r, TCA_ERR_ALREADY_EXISTS);
	ck_assert_msg(strstr(why, "not empty") != NULL &&
	    strstr(why, "3 cas") != NULL, "why: %s", why);
	ck_assert_uint_eq((uint64_t)journal_count(st), count);

	/* the chain goes on from the source's head */
	tc_issue(&t, "acme", "dev-after");
	ck_assert_int_eq(commit1(st, &t), TCA_OK);
	ck_assert_int_eq(t.chg.journal_seq, (int64_t)count + 1);
	ck_assert_int_eq(tca_journal_verify(st, &count2, &bad, head2, why,
	    sizeof(why)), TCA_OK);
	ck_assert_uint_eq(count2, count + 1);
	/* the target's append-only guards hold after the import */
	ck_assert_int_ne(raw_sql(store_uri, "UPDATE journal SET details = 'x' "
	    "WHERE seq = 2"), 0);
	ck_assert_int_ne(raw_sql(store_uri, "DELETE FROM journal WHERE seq = 1"), 0);
	ck_assert_int_eq(tca_journal_verify(st, &count2, &bad, head2, why,
	    sizeof(why)), TCA_OK);
	src->ops->close(src);
}
END_TEST


/* /store/migrate/out: the store under test, with every change kind,
 * migrated into a fresh SQLite file (postgresql->sqlite on PostgreSQL):
 * the same answers, the same head. */
START_TEST(test_store_migrate_out)
{
	char uri[PATH_MAX + 48], err[512] = "", why[512] = "", *want, *got;
	unsigned char head[32], head2[32];
	struct tca_mig_stats stats;
	tca_store *dst = NULL;
	uint64_t count = 0, count2 = 0;
	int64_t bad = 0;
	int r;

	populate_all(st);
	snprintf(uri, sizeof(uri), "sqlite:%s/out.db", tmpdir);
	ck_assert_int_eq(tca_store_open(uri, TCA_STORE_EXCLUSIVE, &dst, err,
	    sizeof(err)), TCA_OK);
	r = tca_store_migrate(st, dst, &stats, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "migrate: %d %s", r, why);
	want = dump_store(st);
	got = dump_store(dst);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
	ck_assert_int_eq(tca_journal_verify(st, &count, &bad, head, why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_journal_verify(dst, &count2, &bad, head2, why,
	    sizeof(why)), TCA_OK);
	ck_assert_uint_eq(count, count2);
	ck_assert_mem_eq(head, head2, 32);
	ck_assert_int_eq(tca_journal_crosscheck(dst, TCA_XC_DER, NULL, NULL, NULL,
	    NULL), TCA_OK);
	dst->ops->close(dst);
}
END_TEST

static TCase *
tcase_of(Suite *s, const char *prefix, const char *name, void (*fixture)(void))
{
	static char names[64][64];
	static size_t n;
	TCase *tc;

	if (n >= sizeof(names) / sizeof(names[0])) {	/* not in a test: no ck_assert */
		fprintf(stderr, "check_store: more than %zu TCases\n", n);
		exit(EXIT_FAILURE);
	}
	snprintf(names[n], sizeof(names[n]), "%s/%s", prefix, name);
	tc = tcase_create(names[n++]);
	tcase_add_checked_fixture(tc, fixture, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * The conformance suite on backend b: only the store.h interface (and
 * tca_store_open of the URI the backend made), so that every backend passes
 * the same tests.
 */
/*
 * /store/leader: the one handle on a store leads (SQLite: always; PostgreSQL:
 * no one else holds the role), stays the leader call after call, may lead
 * several roles; a role of no or too many bytes is refused; a read-only
 * handle leads nothing and takes nothing from the leader.
 */
/* /store/commit/expect: a certificate or policy change made from a cache
 * another engine made stale is refused (STALE), a re-enrollment of a
 * certificate revoked meanwhile too (REVOKED); nothing of them recorded */
START_TEST(test_commit_expect)
{
	struct tchange ca, ca2, is, pol, rev, del;
	unsigned char serial1[TCA_SERIAL_MAX], other[TCA_SERIAL_MAX];
	size_t serial1_len;
	int64_t id1, seqs;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	id1 = ca.chg.ca_id;
	ck_assert_int_gt(id1, 0);
	tc_issue(&is, "acme", "dev-1");
	is.chg.expect_ca_id = id1;
	is.chg.expect_policy = "";
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	memcpy(serial1, is.ci.serial, is.ci.serial_len);
	serial1_len = is.ci.serial_len;

	/* one engine sets the policy from "" ... */
	tc_policy(&pol, "acme", "max_days=30");
	pol.chg.expect_policy = "";
	ck_assert_int_eq(commit1(st, &pol), TCA_OK);
	seqs = journal_count(st);
	/* ... another, still holding "", can neither issue nor set it */
	tc_issue(&is, "acme", "dev-2");
	is.chg.expect_ca_id = id1;
	is.chg.expect_policy = "";
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_STALE);
	ck_assert_int_eq(is.chg.journal_seq, 0);
	tc_policy(&pol, "acme", "suspended=true");
	pol.chg.expect_policy = "";
	ck_assert_int_eq(commit1(st, &pol), TCA_ERR_STALE);
	ck_assert_int_eq(journal_count(st), seqs);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 1);
	/* read again, it can */
	tc_issue(&is, "acme", "dev-2");
	is.chg.expect_ca_id = id1;
	is.chg.expect_policy = "max_days=30";
	ck_assert_int_eq(commit1(st, &is), TCA_OK);

	/* a re-enrollment of dev-1: fine until dev-1 is revoked */
	tc_issue(&is, "acme", "dev-1");
	is.chg.op = "reenroll";
	is.chg.renews_serial = serial1;
	is.chg.renews_serial_len = serial1_len;
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	tc_revoke(&rev, "acme", NULL, 1, T_NOW);
	memcpy(rev.ci.serial, serial1, serial1_len);
	rev.ci.serial_len = serial1_len;
	rev.chg.serial_len = serial1_len;
	ck_assert_int_eq(commit1(st, &rev), TCA_OK);
	seqs = journal_count(st);
	tc_issue(&is, "acme", "dev-1");
	is.chg.op = "reenroll";
	is.chg.renews_serial = serial1;
	is.chg.renews_serial_len = serial1_len;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_REVOKED);
	ck_assert_int_eq(journal_count(st), seqs);
	/* a serial the CA never issued (a certificate of an earlier CA of
	 * the tenant): nothing to refuse */
	memset(other, 0x5a, sizeof(other));
	tc_issue(&is, "acme", "dev-1");
	is.chg.op = "reenroll";
	is.chg.renews_serial = other;
	is.chg.renews_serial_len = 12;
	ck_assert_int_eq(commit1(st, &is), TCA_OK);

	/* deleted and created anew: a commit expecting the old CA is stale */
	tc_ca_delete(&del, "acme");
	ck_assert_int_eq(commit1(st, &del), TCA_OK);
	tc_issue(&is, "acme", "dev-3");
	is.chg.expect_ca_id = id1;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_NOT_FOUND);
	tc_ca_create(&ca2, "acme");
	ck_assert_int_eq(commit1(st, &ca2), TCA_OK);
	ck_assert_int_ne(ca2.chg.ca_id, id1);
	tc_issue(&is, "acme", "dev-3");
	is.chg.expect_ca_id = id1;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_STALE);
	tc_issue(&is, "acme", "dev-3");
	is.chg.expect_ca_id = ca2.chg.ca_id;
	is.chg.expect_policy = "";
	ck_assert_int_eq(commit1(st, &is), TCA_OK);
	tc_issue(&is, "acme", "dev-4");	/* 0 and NULL: not checked */
	ck_assert_int_eq(commit1(st, &is), TCA_OK);

	/* malformed */
	tc_issue(&is, "acme", "dev-5");
	is.chg.renews_serial = serial1;
	is.chg.renews_serial_len = 0;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_INVALID_ARG);
	is.chg.renews_serial_len = TCA_SERIAL_MAX + 1;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_INVALID_ARG);
	tc_issue(&is, "acme", "dev-5");
	is.chg.expect_ca_id = -1;
	ck_assert_int_eq(commit1(st, &is), TCA_ERR_INVALID_ARG);
	verify_ok(st, journal_count(st), NULL);
}
END_TEST

/* /store/commit/expect-batch: the checks hold within one batch too (the
 * PostgreSQL backend reads the active CA once for a run of certificates of
 * one tenant: a policy change in the middle must be seen) */
START_TEST(test_commit_expect_batch)
{
	struct tchange ca, cb, t[5];
	struct tca_change *chgs[5];
	int res[5], i;

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);
	tc_ca_create(&cb, "beta");
	ck_assert_int_eq(commit1(st, &cb), TCA_OK);
	tc_issue(&t[0], "acme", "dev-1");
	t[0].chg.expect_policy = "";
	tc_issue(&t[1], "beta", "dev-1");
	t[1].chg.expect_policy = "";
	tc_issue(&t[2], "acme", "dev-2");
	t[2].chg.expect_policy = "";
	tc_policy(&t[3], "acme", "max_days=30");
	tc_issue(&t[4], "acme", "dev-3");
	t[4].chg.expect_policy = "";	/* made before the policy change */
	for (i = 0; i < 5; i++)
		chgs[i] = &t[i].chg;
	ck_assert_int_eq(st->ops->commit(st, chgs, 5, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_OK);
	ck_assert_int_eq(res[2], TCA_OK);
	ck_assert_int_eq(res[3], TCA_OK);
	ck_assert_int_eq(res[4], TCA_ERR_STALE);
	ck_assert_int_eq(t[4].chg.journal_seq, 0);
	ck_assert_int_eq(cert_count(st, "acme", "device"), 2);
	/* and the other way: a batch expecting the new policy */
	tc_issue(&t[0], "acme", "dev-4");
	t[0].chg.expect_policy = "max_days=30";
	tc_issue(&t[1], "acme", "dev-5");
	t[1].chg.expect_policy = "";
	tc_issue(&t[2], "acme", "dev-6");
	t[2].chg.expect_policy = "max_days=30";
	t[2].chg.expect_ca_id = ca.chg.ca_id;
	ck_assert_int_eq(st->ops->commit(st, chgs, 3, res), TCA_OK);
	ck_assert_int_eq(res[0], TCA_OK);
	ck_assert_int_eq(res[1], TCA_ERR_STALE);
	ck_assert_int_eq(res[2], TCA_OK);
	verify_ok(st, journal_count(st), NULL);
}
END_TEST

struct chg_list {
	int n, stop_at;
	int64_t seq[16];
	char op[16][16];
	char tenant[16][TCA_TENANT_MAX + 1];
	char serial[16][2 * TCA_SERIAL_MAX + 1];
};

static int
chg_list_cb(void *ctx, int64_t seq, const char *op, const char *tenant,
    const char *serial_hex)
{
	struct chg_list *l = ctx;

	ck_assert_int_lt(l->n, 16);
	l->seq[l->n] = seq;
	snprintf(l->op[l->n], sizeof(l->op[0]), "%s", op);
	snprintf(l->tenant[l->n], sizeof(l->tenant[0]), "%s", tenant);
	snprintf(l->serial[l->n], sizeof(l->serial[0]), "%s", serial_hex);
	l->n++;
	return l->n == l->stop_at ? 7 : 0;
}

static int
changes(int64_t after, size_t limit, int64_t *upto, struct chg_list *l)
{
	memset(l, 0, sizeof(*l));
	*upto = -1;
	return st->ops->changes_since(st, after, limit, upto, chg_list_cb, l);
}

/* /store/changes-since: the journal records other engines must re-read,
 * in order, in slices */
START_TEST(test_changes_since)
{
	static const char *const want[] = {
		"ca-create", "policy-set", "revoke", "crl", "ca-reissue", "ca-delete",
	};
	static const int64_t want_seq[] = { 1, 4, 5, 6, 8, 9 };
	struct tchange t, ca, is;
	struct chg_list l;
	char hex[2 * TCA_SERIAL_MAX + 1];
	int64_t upto;
	int i;

	ck_assert_ptr_nonnull(st->ops->changes_since);
	ck_assert_int_eq(changes(0, 10, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(upto, 0);

	tc_ca_create(&ca, "acme");
	ck_assert_int_eq(commit1(st, &ca), TCA_OK);			/* 1 */
	tc_issue(&is, "acme", "dev-1");
	ck_assert_int_eq(commit1(st, &is), TCA_OK);			/* 2 */
	tc_issue(&t, "acme", "dev-2");
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 3 */
	tc_policy(&t, "acme", "max_days=30");
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 4 */
	tc_revoke(&t, "acme", &is.ci, 1, T_NOW);
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 5 */
	tc_crl(&t, "acme", 1, T_NOW, 1);
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 6 */
	tc_dev_register(&t, "acme", "dev-9", "$scrypt$x", 0);
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 7 */
	tc_reissue(&t, "acme", ca.ci.sha256, NULL, NULL);
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 8 */
	tc_ca_delete(&t, "acme");
	ck_assert_int_eq(commit1(st, &t), TCA_OK);			/* 9 */
	ck_assert_int_eq(journal_count(st), 9);

	ck_assert_int_eq(changes(0, 100, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 6);
	ck_assert_int_eq(upto, 9);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(l.seq[i], want_seq[i]);
		ck_assert_str_eq(l.op[i], want[i]);
		ck_assert_str_eq(l.tenant[i], "acme");
	}
	tca_hex(is.ci.serial, is.ci.serial_len, hex);
	ck_assert_str_eq(l.serial[2], hex);
	tca_hex(ca.ci.serial, ca.ci.serial_len, hex);
	ck_assert_str_eq(l.serial[0], hex);	/* as journaled: the CA's */
	/* in slices: a full slice ends at its last record, the rest at the head */
	ck_assert_int_eq(changes(0, 2, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(upto, 4);
	ck_assert_int_eq(changes(upto, 2, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.seq[0], 5);
	ck_assert_int_eq(upto, 6);
	ck_assert_int_eq(changes(upto, 3, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.seq[1], 9);
	ck_assert_int_eq(upto, 9);
	ck_assert_int_eq(changes(4, 100, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 4);
	ck_assert_int_eq(l.seq[0], 5);
	/* nothing after the head; beyond it, the head */
	ck_assert_int_eq(changes(9, 100, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(upto, 9);
	ck_assert_int_eq(changes(INT64_MAX, 1, &upto, &l), TCA_OK);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(upto, 9);
	/* the callback's non-zero return stops the walk and is returned */
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	ck_assert_int_eq(st->ops->changes_since(st, 0, 100, &upto, chg_list_cb, &l), 7);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(st->ops->changes_since(st, 0, 0, &upto, chg_list_cb, &l),
	    TCA_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_leader)
{
	char role[TCA_LEADER_ROLE_MAX + 2], why[512], err[512] = "";
	tca_store *ro = NULL;
	int lead = -1, i;

	ck_assert_ptr_nonnull(st->ops->leader);
	for (i = 0; i < 3; i++) {
		lead = -1;
		ck_assert_int_eq(st->ops->leader(st, "scheduler", &lead, why, sizeof(why)),
		    TCA_OK);
		ck_assert_msg(lead == 1, "call %d: not the leader: %s", i, why);
	}
	lead = -1;
	ck_assert_int_eq(st->ops->leader(st, "other-role", &lead, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(lead, 1);
	lead = -1;
	ck_assert_int_eq(st->ops->leader(st, "", &lead, why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(lead, 0);
	ck_assert_int_eq(st->ops->leader(st, NULL, &lead, why, sizeof(why)), TCA_ERR_INVALID_ARG);
	memset(role, 'r', sizeof(role) - 1);
	role[sizeof(role) - 1] = '\0';
	lead = -1;
	ck_assert_int_eq(st->ops->leader(st, role, &lead, why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(lead, 0);
	ck_assert_ptr_nonnull(strstr(why, "role"));
	role[TCA_LEADER_ROLE_MAX] = '\0';	/* the longest allowed */
	ck_assert_int_eq(st->ops->leader(st, role, &lead, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(lead, 1);

	ck_assert_msg(tca_store_open(store_uri, TCA_STORE_READONLY, &ro, err,
	    sizeof(err)) == TCA_OK, "read-only open: %s", err);
	lead = -1;
	ck_assert_int_eq(ro->ops->leader(ro, "scheduler", &lead, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(lead, 0);
	ro->ops->close(ro);
	lead = -1;
	ck_assert_int_eq(st->ops->leader(st, "scheduler", &lead, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(lead, 1);
}
END_TEST

static Suite *
conformance_suite(const struct store_backend *b)
{
	static char sname[64];
	Suite *s;
	TCase *tc;

	snprintf(sname, sizeof(sname), "store-%s", b->name);
	s = suite_create(sname);

	tc = tcase_of(s, b->name, "store", setup);
	tcase_add_test(tc, test_ca_create_get);
	tcase_add_test(tc, test_ca_duplicate);
	tcase_add_test(tc, test_ca_reserve);
	tcase_add_test(tc, test_ca_delete);
	tcase_add_test(tc, test_foreach_order);
	tcase_add_test(tc, test_unknown_tenant);
	tcase_add_test(tc, test_duplicate_serial_batch);
	tcase_add_test(tc, test_reopen_continues);
	tcase_add_test(tc, test_leader);
	tcase_add_test(tc, test_commit_expect);
	tcase_add_test(tc, test_commit_expect_batch);
	tcase_add_test(tc, test_changes_since);

	tc = tcase_of(s, b->name, "reissue", setup);
	tcase_add_test(tc, test_reissue_basic);
	tcase_add_test(tc, test_reissue_stale);
	tcase_add_test(tc, test_reissue_serial_modes);
	tcase_add_test(tc, test_renewal_state);
	tcase_add_test(tc, test_mixed_batch);

	tc = tcase_of(s, b->name, "journal", setup);
	tcase_add_test(tc, test_hash_spec);
	tcase_add_test(tc, test_journal_delete);
	tcase_add_test(tc, test_journal_delete_first);
	tcase_add_test(tc, test_journal_export);

	tc = tcase_of(s, b->name, "revoke", setup);
	tcase_add_test(tc, test_revoke);
	tcase_add_test(tc, test_revoked_foreach);
	tcase_add_test(tc, test_revoked_order);

	tc = tcase_of(s, b->name, "policy", setup);
	tcase_add_test(tc, test_policy);
	tcase_add_test(tc, test_crl_state);

	tc = tcase_of(s, b->name, "inventory", setup);
	tcase_add_test(tc, test_cert_list);
	tcase_add_test(tc, test_cert_list_states);
	tcase_add_test(tc, test_cert_list_deleted_ca);
	tcase_add_test(tc, test_cert_get);

	tc = tcase_of(s, b->name, "devices", setup);
	tcase_add_test(tc, test_device_register);
	tcase_add_test(tc, test_device_reregister);
	tcase_add_test(tc, test_device_unregister);
	tcase_add_test(tc, test_device_failure);
	tcase_add_test(tc, test_device_consume);

	tc = tcase_of(s, b->name, "committer", setup);
	tcase_add_test(tc, test_committer_concurrent);
	tcase_add_test(tc, test_committer_stop_drains);
	tcase_add_test(tc, test_committer_failure);

	tc = tcase_of(s, b->name, "integrity", setup);
	tcase_add_test(tc, test_checkpoint_line);
	tcase_add_test(tc, test_saved_head);

	tc = tcase_of(s, b->name, "migrate", setup);
	tcase_add_test(tc, test_store_migrate_in);
	tcase_add_test(tc, test_store_migrate_out);
	return s;
}

/* Tests that read or edit the SQLite file directly, or use what only the
 * SQLite backend has (store-sqlite.h). */
static Suite *
sqlite_only_suite(void)
{
	Suite *s = suite_create("store-sqlite-only");
	TCase *tc;

	tc = tcase_of(s, "sqlite-only", "store", setup_sqlite);
	tcase_add_test(tc, test_file_mode);
	tcase_add_test(tc, test_commit_disk_full);
	tcase_add_test(tc, test_commit_busy);
	tcase_add_test(tc, test_open_newer_schema);
	tcase_add_test(tc, test_open_foreign);
	tcase_add_test(tc, test_readonly);

	tc = tcase_of(s, "sqlite-only", "reissue", setup_sqlite);
	tcase_add_test(tc, test_migrate_v1);
	tcase_add_test(tc, test_migrate_v1_dangling);

	tc = tcase_of(s, "sqlite-only", "journal", setup_sqlite);
	tcase_add_test(tc, test_journal_edit);

	tc = tcase_of(s, "sqlite-only", "revoke", setup_sqlite);
	tcase_add_test(tc, test_revoke_sql);
	tcase_add_test(tc, test_revoke_replace_sql);
	tcase_add_test(tc, test_revoke_deleted_ca);

	tc = tcase_of(s, "sqlite-only", "crl", setup_sqlite);
	tcase_add_test(tc, test_crl);

	tc = tcase_of(s, "sqlite-only", "inventory", setup_sqlite);
	tcase_add_test(tc, test_inventory_plan);

	tc = tcase_of(s, "sqlite-only", "migrate-v3", setup_sqlite);
	tcase_add_test(tc, test_migrate_v2);
	tcase_add_test(tc, test_migrate_v2_readonly);
	tcase_add_test(tc, test_migrate_same_schema);

	tc = tcase_of(s, "sqlite-only", "devices", setup_sqlite);
	tcase_add_test(tc, test_device_migrate_v3);

	tc = tcase_of(s, "sqlite-only", "integrity", setup_sqlite);
	tcase_add_test(tc, test_files_replaced);
	tcase_add_test(tc, test_files_unlinked);
	tcase_add_test(tc, test_crosscheck_added);
	tcase_add_test(tc, test_crosscheck);
	tcase_add_test(tc, test_start_check);
	tcase_add_test(tc, test_guards_restored);
	tcase_add_test(tc, test_exclusive_lock);
	return s;
}

/*
 * One runner per backend (the fixture reads `be`, set before the run; forked
 * tests inherit it); the SQLite-only suite runs with the SQLite backend's.
 */
/*
 * TCA_STORE_TEST_BACKENDS (a comma-separated list, e.g. "sqlite"): only
 * those backends' runs; unset or empty: all.  The valgrind stage of CI
 * runs SQLite only: the PostgreSQL backend's code runs under valgrind in
 * check_store_pg and its conformance under ASan (tools/run-sanitizers.sh).
 */
static int
backend_wanted(const char *name)
{
	const char *list = getenv("TCA_STORE_TEST_BACKENDS"), *p;
	size_t n = strlen(name);

	if (list == NULL || *list == '\0')
		return 1;
	for (p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
	return 0;
}

int
main(void)
{
	SRunner *sr;
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		be = backends[i];
		if (!backend_wanted(be->name))
			continue;
#if HAVE_LIBPQ
		if (be == &pg_backend && !pg_started) {
			pgtest_start(&pg_cluster);
			pg_started = 1;
		}
#endif
		sr = srunner_create(conformance_suite(be));
		if (be == &sqlite_backend)
			srunner_add_suite(sr, sqlite_only_suite());
		srunner_run_all(sr, CK_NORMAL);
		failed += srunner_ntests_failed(sr);
		srunner_free(sr);
	}
#if HAVE_LIBPQ
	if (pg_started)
		pgtest_stop(&pg_cluster);
#endif
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
