/* storetest.c - helpers shared by the store's Check suites (storetest.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "storetest.h"
#include "tca-error.h"
#include "text.h"

int64_t tc_clock_ms = T_BASE_MS;

void
sha256(const void *in, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;

	ck_assert_int_eq(EVP_Digest(in, len, out, &outlen, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(outlen, 32);
}

void
issuer_hash_of(const char *tenant, unsigned char out[32])
{
	char name[128];

	snprintf(name, sizeof(name), "CN=%s", tenant);
	sha256(name, strlen(name), out);
}

void
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
	ci->not_before = T_NOW;
	ci->not_after = T_NOW + 86400;
}

void
tc_base(struct tchange *t, enum tca_change_kind kind, const char *op,
    const char *tenant)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
	t->chg.kind = kind;
	t->chg.op = op;
	t->chg.tenant = t->tenant;
	t->chg.time_ms = __atomic_fetch_add(&tc_clock_ms, 1, __ATOMIC_RELAXED);
	t->chg.who.uid = 1000;
	t->chg.who.gid = 1000;
	t->chg.who.pid = 4242;
}

void
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

void
tc_issue(struct tchange *t, const char *tenant, const char *cn)
{
	char subject[128];

	tc_base(t, TCA_CHANGE_CERT_ISSUE, "issue", tenant);
	ck_assert_msg(strlen(cn) < sizeof(t->device), "device id of %zu bytes", strlen(cn));
	snprintf(t->device, sizeof(t->device), "%s", cn);
	snprintf(subject, sizeof(subject), "CN=%s", cn);
	fill_cert(t, subject, tenant);
	t->chg.cert = &t->ci;
	t->chg.device_id = t->device;
	t->chg.details = "profile=device";
}

void
tc_reissue(struct tchange *t, const char *tenant, const unsigned char *expect_fp,
    const struct tca_cert_info *keep_serial, const char *details)
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
	if (details != NULL) {
		t->chg.details = details;
		return;
	}
	tca_hex(expect_fp, 32, old_fp);
	tca_hex(t->ci.sha256, 32, new_fp);
	snprintf(t->details, sizeof(t->details), "old=%.16s new=%.16s", old_fp,
	    new_fp);
	t->chg.details = t->details;
}

void
tc_revoke(struct tchange *t, const char *tenant, const struct tca_cert_info *ci,
    int reason, int64_t revoked_at)
{
	tc_base(t, TCA_CHANGE_CERT_REVOKE, "revoke", tenant);
	if (ci != NULL) {
		memcpy(t->ci.serial, ci->serial, ci->serial_len);
		t->ci.serial_len = ci->serial_len;
	} else {
		ck_assert_int_eq(RAND_bytes(t->ci.serial, 16), 1);
		t->ci.serial[0] = (t->ci.serial[0] & 0x7f) | 0x01;
		t->ci.serial_len = 16;
	}
	t->chg.serial = t->ci.serial;
	t->chg.serial_len = t->ci.serial_len;
	t->chg.reason = reason;
	t->chg.revoked_at = revoked_at;
}

void
tc_crl(struct tchange *t, const char *tenant, uint64_t number,
    int64_t this_update, uint64_t entries)
{
	tc_base(t, TCA_CHANGE_CRL_PUBLISH, "crl", tenant);
	ck_assert_int_eq(RAND_bytes(t->der, sizeof(t->der)), 1);
	t->der[0] = 0x30;
	t->chg.crl_der = t->der;
	t->chg.crl_len = sizeof(t->der);
	t->chg.crl_number = number;
	t->chg.this_update = this_update;
	t->chg.next_update = this_update + 7 * 86400;
	t->chg.crl_entries = entries;
	snprintf(t->details, sizeof(t->details), "crl-number=%llu",
	    (unsigned long long)number);
	t->chg.details = t->details;
}

int
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
	(void)rec;
	(*(int64_t *)ctx)++;
	return 0;
}

int64_t
journal_count(tca_store *s)
{
	int64_t n = 0;

	ck_assert_int_eq(s->ops->journal_foreach(s, 1, count_cb, &n), TCA_OK);
	return n;
}

int
journal_count_r(tca_store *s)
{
	int64_t n = 0;

	return s->ops->journal_foreach(s, 1, count_cb, &n);
}

void
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

void
hexf(FILE *f, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

int
dump_journal_cb(void *ctx, const struct tca_journal_record *r)
{
	FILE *f = ctx;

	fprintf(f, "J %lld %lld %s|%s|%s|%s|%s|%u|%d|%s|", (long long)r->seq,
	    (long long)r->time_ms, r->op, r->tenant, r->serial_hex, r->subject,
	    r->fingerprint_hex, r->uid, r->pid, r->details);
	hexf(f, r->prev_hash, 32);
	fputc('|', f);
	hexf(f, r->hash, 32);
	fputc('\n', f);
	return 0;
}

int
dump_revoked_cb(void *ctx, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason)
{
	FILE *f = ctx;

	fprintf(f, "V %s ", tenant);
	hexf(f, serial, serial_len);
	fprintf(f, " %lld %d\n", (long long)revoked_at, reason);
	return 0;
}

int
dump_device_cb(void *ctx, const struct tca_device_row *r)
{
	fprintf(ctx, "D %s %s %s %lld %lld %lld %u %d %s\n", r->tenant, r->device_id,
	    r->secret, (long long)r->registered_at, (long long)r->expires_at,
	    (long long)r->consumed_at, r->failures, r->locked, r->consumed_serial_hex);
	return 0;
}
