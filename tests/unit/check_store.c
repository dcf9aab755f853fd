/*
 * check_store.c - the SQLite state store, the hash-chained journal and the
 * group committer.  No token: certificate facts are built by hand around
 * random bytes standing in for DER.
 */
#include "config.h"

#include <sys/stat.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "committer.h"
#include "store.h"
#include "tca-error.h"
#include "testutil.h"

#define T_BASE_MS 1700000000123LL	/* 2023-11-14T22:13:20.123Z */

static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 16];
static tca_store *st;
static int64_t clock_ms = T_BASE_MS;

/* A change together with everything it points to. */
struct tchange {
	struct tca_change chg;
	struct tca_cert_info ci;
	unsigned char der[256];
	unsigned char key_id[20];
	char tenant[TCA_TENANT_MAX + 1];
	unsigned char expect[32];	/* CA_REISSUE: fingerprint replaced */
	struct tca_renewal_state rs;	/* RENEWAL_STATE */
	char details[160];
};

static void
sha256(const void *in, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;

	ck_assert_int_eq(EVP_Digest(in, len, out, &outlen, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(outlen, 32);
}

static void
issuer_hash_of(const char *tenant, unsigned char out[32])
{
	char name[128];

	snprintf(name, sizeof(name), "CN=%s", tenant);
	sha256(name, strlen(name), out);
}

static void
fill_cert(struct tchange *t, const char *subject, const char *issuer_tenant)
{
	struct tca_cert_info *ci = &t->ci;

	memset(ci, 0, sizeof(*ci));
	ck_assert_int_eq(RAND_bytes(t->der, sizeof(t->der)), 1);
	t->der[0] = 0x30;
	ci->der = t->der;
	ci->der_len = sizeof(t->der);
	ck_assert_int_eq(RAND_bytes(ci->serial, 16), 1);
	ci->serial[0] = (ci->serial[0] & 0x7f) | 0x01;
	ci->serial_len = 16;
	snprintf(ci->subject, sizeof(ci->subject), "%s", subject);
	snprintf(ci->issuer, sizeof(ci->issuer), "CN=%s", issuer_tenant);
	issuer_hash_of(issuer_tenant, ci->issuer_hash);
	sha256(t->der, sizeof(t->der), ci->sha256);
	ci->not_before = T_BASE_MS / 1000;
	ci->not_after = T_BASE_MS / 1000 + 86400;
}

static void
tc_base(struct tchange *t, enum tca_change_kind kind, const char *op,
    const char *tenant)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
	t->chg.kind = kind;
	t->chg.op = op;
	t->chg.tenant = t->tenant;
	t->chg.time_ms = __atomic_fetch_add(&clock_ms, 1, __ATOMIC_RELAXED);
	t->chg.who.uid = 1000;
	t->chg.who.gid = 1000;
	t->chg.who.pid = 4242;
}

static void
tc_ca_create(struct tchange *t, const char *tenant)
{
	char subject[128];

	tc_base(t, TCA_CHANGE_CA_CREATE, "ca-create", tenant);
	snprintf(subject, sizeof(subject), "CN=%s", tenant);
	fill_cert(t, subject, tenant);
	ck_assert_int_eq(RAND_bytes(t->key_id, sizeof(t->key_id)), 1);
	t->chg.key_type = "ec-p256";
	t->chg.key_id = t->key_id;
	t->chg.key_id_len = sizeof(t->key_id);
	t->chg.cert = &t->ci;
}

static void
tc_ca_delete(struct tchange *t, const char *tenant)
{
	tc_base(t, TCA_CHANGE_CA_DELETE, "ca-delete", tenant);
}

static void
tc_issue(struct tchange *t, const char *tenant, const char *cn)
{
	char subject[128];

	tc_base(t, TCA_CHANGE_CERT_ISSUE, "issue", tenant);
	snprintf(subject, sizeof(subject), "CN=%s", cn);
	fill_cert(t, subject, tenant);
	t->chg.cert = &t->ci;
	t->chg.details = "profile=device";
}

/*
 * A re-issued CA certificate for tenant replacing the certificate whose
 * fingerprint is expect_fp; keep_serial: the serial to keep (NULL: fresh).
 */
static void
tc_reissue(struct tchange *t, const char *tenant, const unsigned char *expect_fp,
    const struct tca_cert_info *keep_serial)
{
	char subject[128], old_fp[65], new_fp[65];

	tc_base(t, TCA_CHANGE_CA_REISSUE, "ca-reissue", tenant);
	snprintf(subject, sizeof(subject), "CN=%s", tenant);
	fill_cert(t, subject, tenant);
	if (keep_serial != NULL) {
		memcpy(t->ci.serial, keep_serial->serial, keep_serial->serial_len);
		t->ci.serial_len = keep_serial->serial_len;
	}
	t->ci.not_before += 365 * 86400;
	t->ci.not_after += 365 * 86400;
	memcpy(t->expect, expect_fp, 32);
	t->chg.expect_current_sha256 = t->expect;
	t->chg.cert = &t->ci;
	tca_hex(expect_fp, 32, old_fp);
	tca_hex(t->ci.sha256, 32, new_fp);
	snprintf(t->details, sizeof(t->details), "old=%.16s new=%.16s", old_fp,
	    new_fp);
	t->chg.details = t->details;
}

static void
tc_renewal(struct tchange *t, const char *tenant,
    const struct tca_renewal_state *rs)
{
	tc_base(t, TCA_CHANGE_RENEWAL_STATE, NULL, tenant);
	t->rs = *rs;
	t->chg.renewal = &t->rs;
}

/* Commits one change in its own batch; returns its result. */
static int
commit1(tca_store *s, struct tchange *t)
{
	struct tca_change *chg = &t->chg;
	int res = 12345;

	ck_assert_int_eq(s->ops->commit(s, &chg, 1, &res), TCA_OK);
	return res;
}

static int
count_cb(void *ctx, const struct tca_journal_record *rec)
{
	(*(int64_t *)ctx)++;
	return 0;
}

static int64_t
journal_count(tca_store *s)
{
	int64_t n = 0;

	ck_assert_int_eq(s->ops->journal_foreach(s, 1, count_cb, &n), TCA_OK);
	return n;
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
verify_ok(tca_store *s, uint64_t want_count, unsigned char head[32])
{
	uint64_t count = 0;
	int64_t bad = -1;
	char why[256] = "";
	int r;

	r = tca_journal_verify(s, &count, &bad, head, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "verify: %d at %lld: %s", r, (long long)bad, why);
	ck_assert_uint_eq(count, want_count);
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

static void
open_store(void)
{
	char err[256] = "";
	int r;

	r = tca_store_open_sqlite(dbpath, 0, &st, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "open: %s", err);
	ck_assert_ptr_nonnull(st);
}

static void
setup(void)
{
	clock_ms = T_BASE_MS;
	test_mkdtemp(tmpdir, sizeof(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
	open_store();
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
	struct stat sb;
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
	/* created without group or world access */
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
	raw_exec("DROP TRIGGER journal_no_delete; DELETE FROM journal WHERE seq = 23");
	verify_bad(st, 24, 22, "sequence gap after 22");
	ck_assert_int_eq(journal_count(st), 39);
}
END_TEST

/* /journal/verify/deleted-first-record */
START_TEST(test_journal_delete_first)
{
	fill_journal(st, 5, 5);
	raw_exec("DROP TRIGGER journal_no_delete; DELETE FROM journal WHERE seq = 1");
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
	raw_exec("PRAGMA user_version = 3");
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

	tc_reissue(&re, "acme", ca.ci.sha256, NULL);
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
	tc_reissue(&bad, "acme", re.ci.sha256, NULL);
	bad.chg.expect_current_sha256 = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	tc_reissue(&bad, "acme", re.ci.sha256, NULL);
	bad.chg.cert = NULL;
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_INVALID_ARG);
	/* no active CA */
	tc_reissue(&bad, "nobody", re.ci.sha256, NULL);
	ck_assert_int_eq(commit1(st, &bad), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(bad.chg.journal_seq, 0);
	tc_ca_delete(&bad, "acme");
	ck_assert_int_eq(commit1(st, &bad), TCA_OK);
	tc_reissue(&bad, "acme", re.ci.sha256, NULL);
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
	tc_reissue(&r1, "acme", ca.ci.sha256, NULL);
	ck_assert_int_eq(commit1(st, &r1), TCA_OK);
	ck_assert_int_eq(r1.chg.journal_seq, 2);

	/* a second engine (or a restart) still believing ca is current */
	tc_reissue(&stale, "acme", ca.ci.sha256, NULL);
	ck_assert_int_eq(commit1(st, &stale), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(stale.chg.journal_seq, 0);
	memset(zero, 0, sizeof(zero));
	tc_reissue(&stale, "acme", zero, NULL);
	ck_assert_int_eq(commit1(st, &stale), TCA_ERR_ALREADY_EXISTS);
	/* nothing changed: no certificate row, no journal record, same CA */
	ck_assert_int_eq(journal_count(st), 2);
	ck_assert_int_eq(cert_count(st, "acme", "ca"), 2);
	assert_ca_certs(st, "acme", &r1, &ca);

	/* twice more in a row with the right expectations */
	tc_reissue(&r2, "acme", r1.ci.sha256, NULL);
	ck_assert_int_eq(commit1(st, &r2), TCA_OK);
	ck_assert_int_eq(r2.chg.journal_seq, 3);
	assert_ca_certs(st, "acme", &r2, &r1);
	tc_reissue(&r3, "acme", r2.ci.sha256, NULL);
	ck_assert_int_eq(commit1(st, &r3), TCA_OK);
	ck_assert_int_eq(r3.chg.journal_seq, 4);
	assert_ca_certs(st, "acme", &r3, &r2);
	/* the previous-but-one is no longer current: a late r1-based try fails */
	tc_reissue(&stale, "acme", r1.ci.sha256, NULL);
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
	tc_reissue(&keep, "acme", ca.ci.sha256, &ca.ci);
	ck_assert_mem_eq(keep.ci.serial, ca.ci.serial, ca.ci.serial_len);
	ck_assert_int_eq(commit1(st, &keep), TCA_OK);
	assert_ca_certs(st, "acme", &keep, &ca);
	/* ... but a device certificate may still not reuse it */
	tc_issue(&d2, "acme", "dev-reuses-ca-serial");
	memcpy(d2.ci.serial, ca.ci.serial, sizeof(ca.ci.serial));
	ck_assert_int_eq(commit1(st, &d2), TCA_ERR_ALREADY_EXISTS);
	ck_assert_int_eq(d2.chg.journal_seq, 0);
	/* nor a device's serial be taken by a CA certificate */
	tc_reissue(&clash, "acme", keep.ci.sha256, &dev.ci);
	ck_assert_int_eq(commit1(st, &clash), TCA_ERR_ALREADY_EXISTS);
	/* an identical certificate is not a re-issuance */
	tc_reissue(&same, "acme", keep.ci.sha256, &keep.ci);
	memcpy(same.der, keep.der, sizeof(keep.der));
	memcpy(same.ci.sha256, keep.ci.sha256, 32);
	ck_assert_int_eq(commit1(st, &same), TCA_ERR_ALREADY_EXISTS);
	assert_ca_certs(st, "acme", &keep, &ca);

	/* new: a fresh serial, and devices may not reuse that one either */
	tc_reissue(&fresh, "acme", keep.ci.sha256, NULL);
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
	tc_reissue(&clash, "beta", beta.ci.sha256, &ca.ci);
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
	tc_reissue(&re, "acme", ca.ci.sha256, NULL);
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
	tc_reissue(&t[1], "acme", a.ci.sha256, NULL);
	tc_renewal(&t[2], "acme", &rs_a);	/* after the re-issue: stays */
	tc_issue(&t[3], "acme", "dev-2");
	tc_reissue(&t[4], "beta", a.ci.sha256, NULL);	/* stale */
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
	    "INSERT INTO certificates SELECT * FROM cur.certificates;"
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

	/* a read-write open migrates */
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 2);
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
	tc_reissue(&keep, "acme", ca.ci.sha256, &ca.ci);
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

	/* reopening a v2 file changes nothing */
	st->ops->close(st);
	st = NULL;
	open_store();
	ck_assert_int_eq(raw_int("PRAGMA user_version"), 2);
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
	ck_assert_int_eq(tca_store_open_sqlite(dbpath, TCA_STORE_READONLY, &ro,
	    err, sizeof(err)), TCA_OK);
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

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ca_create_get);
	tcase_add_test(tc, test_ca_duplicate);
	tcase_add_test(tc, test_ca_delete);
	tcase_add_test(tc, test_foreach_order);
	tcase_add_test(tc, test_unknown_tenant);
	tcase_add_test(tc, test_duplicate_serial_batch);
	tcase_add_test(tc, test_reopen_continues);
	tcase_add_test(tc, test_commit_disk_full);
	tcase_add_test(tc, test_commit_busy);
	tcase_add_test(tc, test_open_newer_schema);
	tcase_add_test(tc, test_open_foreign);
	tcase_add_test(tc, test_readonly);
	suite_add_tcase(s, tc);

	tc = tcase_create("reissue");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reissue_basic);
	tcase_add_test(tc, test_reissue_stale);
	tcase_add_test(tc, test_reissue_serial_modes);
	tcase_add_test(tc, test_renewal_state);
	tcase_add_test(tc, test_mixed_batch);
	tcase_add_test(tc, test_migrate_v1);
	tcase_add_test(tc, test_migrate_v1_dangling);
	suite_add_tcase(s, tc);

	tc = tcase_create("journal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hash_spec);
	tcase_add_test(tc, test_journal_edit);
	tcase_add_test(tc, test_journal_delete);
	tcase_add_test(tc, test_journal_delete_first);
	tcase_add_test(tc, test_journal_export);
	suite_add_tcase(s, tc);

	tc = tcase_create("committer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_committer_concurrent);
	tcase_add_test(tc, test_committer_stop_drains);
	tcase_add_test(tc, test_committer_failure);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
