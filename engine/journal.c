/*
 * journal.c - the audit journal's hash chain (independent of the backend),
 * its verification and JSON Lines export, and small store.h helpers.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "store.h"
#include "text.h"
#include "tca-error.h"

#define JOURNAL_HASH_TAG "tca-journal-v1"

const char *
tca_ca_status_name(int status)
{
	switch (status) {
	case TCA_CA_ACTIVE:
		return "active";
	case TCA_CA_DELETED:
		return "deleted";
	default:
		return "unknown";
	}
}

void
tca_ca_row_clear(struct tca_ca_row *row)
{
	if (row == NULL)
		return;
	free(row->cert_der);
	free(row->prev_der);
	free(row->policy);
	memset(row, 0, sizeof(*row));
}

void
tca_cert_row_clear(struct tca_cert_row *row)
{
	if (row == NULL)
		return;
	free(row->owned_);
	memset(row, 0, sizeof(*row));
}

void
tca_crl_row_clear(struct tca_crl_row *row)
{
	if (row == NULL)
		return;
	free(row->der);
	memset(row, 0, sizeof(*row));
}


/* ------------------------------------------------------------------ hash */

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static int
digest_u32(EVP_MD_CTX *md, uint32_t v)
{
	unsigned char b[4];

	put_be32(b, v);
	return EVP_DigestUpdate(md, b, sizeof(b));
}

static int
digest_u64(EVP_MD_CTX *md, uint64_t v)
{
	unsigned char b[8];

	put_be64(b, v);
	return EVP_DigestUpdate(md, b, sizeof(b));
}

/* lp(s) = be32(strlen(s)) || s; NULL is "" */
static int
digest_lp(EVP_MD_CTX *md, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len > UINT32_MAX)
		return 0;
	return digest_u32(md, (uint32_t)len) &&
	    (len == 0 || EVP_DigestUpdate(md, s, len));
}

/*
 * The encoding is the specification in store.h; keep it byte-for-byte, every
 * journal ever written depends on it.  A digest failure yields 32 zero bytes,
 * which commit() refuses to record.
 */
void
tca_journal_hash(const struct tca_journal_record *rec, unsigned char out[32])
{
	EVP_MD_CTX *md = NULL;
	unsigned int outlen = 0;
	int ok = 0;

	memset(out, 0, 32);
	if (rec == NULL || (md = EVP_MD_CTX_new()) == NULL)
		goto out;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(md, JOURNAL_HASH_TAG, strlen(JOURNAL_HASH_TAG)) &&
	    EVP_DigestUpdate(md, rec->prev_hash, 32) &&
	    digest_u64(md, (uint64_t)rec->seq) &&
	    digest_u64(md, (uint64_t)rec->time_ms) &&
	    digest_lp(md, rec->op) &&
	    digest_lp(md, rec->tenant) &&
	    digest_lp(md, rec->serial_hex) &&
	    digest_lp(md, rec->subject) &&
	    digest_lp(md, rec->fingerprint_hex) &&
	    digest_u32(md, rec->uid) &&
	    digest_u32(md, (uint32_t)rec->pid) &&
	    digest_lp(md, rec->details) &&
	    EVP_DigestFinal_ex(md, out, &outlen) && outlen == 32;
 out:
	if (!ok) {
		log_error("journal: SHA-256 computation failed");
		memset(out, 0, 32);
	}
	EVP_MD_CTX_free(md);
}

/* ---------------------------------------------------------------- verify */

struct verify_ctx {
	uint64_t count;
	int64_t last_seq;
	unsigned char last_hash[32];
	int64_t bad_seq;
	char why[128];
};

static int
verify_cb(void *arg, const struct tca_journal_record *rec)
{
	struct verify_ctx *v = arg;
	unsigned char h[32];

	if (rec->seq != v->last_seq + 1) {
		v->bad_seq = rec->seq;
		if (v->last_seq == 0)
			snprintf(v->why, sizeof(v->why), "sequence gap: the "
			    "journal starts at %lld, not 1", (long long)rec->seq);
		else
			snprintf(v->why, sizeof(v->why), "sequence gap after %lld",
			    (long long)v->last_seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	if (CRYPTO_memcmp(rec->prev_hash, v->last_hash, 32) != 0) {
		v->bad_seq = rec->seq;
		if (v->last_seq == 0)
			snprintf(v->why, sizeof(v->why), "prev_hash of the first "
			    "record is not all zero");
		else
			snprintf(v->why, sizeof(v->why), "prev_hash does not "
			    "match record %lld", (long long)v->last_seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	tca_journal_hash(rec, h);
	if (CRYPTO_memcmp(h, rec->hash, 32) != 0) {
		v->bad_seq = rec->seq;
		snprintf(v->why, sizeof(v->why), "hash mismatch (record edited)");
		return TCA_ERR_POLICY_VIOLATION;
	}
	v->count++;
	v->last_seq = rec->seq;
	memcpy(v->last_hash, rec->hash, 32);
	return 0;
}

int
tca_journal_verify(tca_store *st, uint64_t *count_ptr, int64_t *bad_seq_ptr,
    unsigned char head[32], char *why, size_t whylen)
{
	struct verify_ctx v;
	int r = TCA_ERR_INTERNAL;

	memset(&v, 0, sizeof(v));
	if (count_ptr != NULL)
		*count_ptr = 0;
	if (bad_seq_ptr != NULL)
		*bad_seq_ptr = 0;
	if (head != NULL)
		memset(head, 0, 32);
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (st == NULL || st->ops == NULL || st->ops->journal_foreach == NULL)
		return TCA_ERR_INVALID_ARG;
	r = st->ops->journal_foreach(st, 1, verify_cb, &v);
	if (r == TCA_ERR_POLICY_VIOLATION) {
		if (bad_seq_ptr != NULL)
			*bad_seq_ptr = v.bad_seq;
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s", v.why);
		if (count_ptr != NULL)
			*count_ptr = v.count;
		return r;
	}
	if (r != TCA_OK) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "cannot read the journal: %s",
			    tca_strerror(r));
		return r;
	}
	if (count_ptr != NULL)
		*count_ptr = v.count;
	if (head != NULL)
		memcpy(head, v.last_hash, 32);
	return TCA_OK;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define START_REPORT_MAX 20

static void
start_report(void *ctx, const char *line)
{
	unsigned int *shown = ctx;

	if (*shown < START_REPORT_MAX)
		log_error("store: %s", line);
	else if (*shown == START_REPORT_MAX)
		log_error("store: (more certificate problems not shown here)");
	(*shown)++;
}

int
tca_journal_check_start(tca_store *st, const char *name, char *why, size_t whylen)
{
	char reason[160] = "", headhex[65];
	unsigned char head[32];
	unsigned int shown = 0;
	uint64_t count = 0, problems = 0, certs = 0;
	int64_t bad = 0, t0;
	int r;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	t0 = mono_ms();
	r = tca_journal_verify(st, &count, &bad, head, reason, sizeof(reason));
	if (r == TCA_ERR_POLICY_VIOLATION) {
		tca_setf(why, whylen, "the journal of %s is broken at record %lld "
		    "(%s): the engine does not start on a store whose history was "
		    "changed. Find out what happened (ca-admin journal verify --store "
		    "%s; journal export), then restore the store from a backup "
		    "whose journal verifies", name, (long long)bad, reason, name);
		return r;
	}
	if (r != TCA_OK) {
		tca_setf(why, whylen, "verifying the journal of %s: %s", name,
		    reason);
		return r;
	}
	tca_hex(head, sizeof(head), headhex);
	log_info("store: journal of %s verified at start: %llu records, head %s "
	    "(%lld ms)", name, (unsigned long long)count, count > 0 ? headhex :
	    "(empty)", (long long)(mono_ms() - t0));
	t0 = mono_ms();
	r = tca_journal_crosscheck(st, 0, start_report, &shown, &problems, &certs);
	if (r == TCA_ERR_POLICY_VIOLATION) {
		tca_setf(why, whylen, "%llu certificate(s) of %s do not match the "
		    "journal (the first are logged above): the engine does not start "
		    "on a store whose certificates were changed. Find out what "
		    "happened (ca-admin journal verify --store %s lists them all), then "
		    "restore the store from a backup that verifies",
		    (unsigned long long)problems, name, name);
		return r;
	}
	if (r != TCA_OK) {
		tca_setf(why, whylen, "cross-checking the certificates of %s "
		    "against the journal: %s", name, tca_strerror(r));
		return r;
	}
	log_info("store: certificates of %s match the journal: %llu rows (%lld ms)",
	    name, (unsigned long long)certs, (long long)(mono_ms() - t0));
	return TCA_OK;
}

/* ------------------------------------------------------------ saved head */

struct head_ctx {
	int64_t seq;
	unsigned char hash[32];
	int found;
};

static int
head_cb(void *arg, const struct tca_journal_record *rec)
{
	struct head_ctx *h = arg;

	if (rec->seq != h->seq)
		return 0;
	memcpy(h->hash, rec->hash, 32);
	h->found = 1;
	return 1;	/* stop */
}

static int
last_cb(void *arg, const struct tca_journal_record *rec)
{
	*(int64_t *)arg = rec->seq;
	return 0;
}

int
tca_journal_check_head(tca_store *st, int64_t seq, const unsigned char hash[32],
    char *why, size_t whylen)
{
	struct head_ctx h;
	char want[65], got[65];
	int64_t last = 0;
	int r;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (st == NULL || st->ops == NULL || hash == NULL || seq < 1)
		return TCA_ERR_INVALID_ARG;
	memset(&h, 0, sizeof(h));
	h.seq = seq;
	r = st->ops->journal_foreach(st, seq, head_cb, &h);
	if (r != TCA_OK && r != 1)
		return r;
	tca_hex(hash, 32, want);
	if (!h.found) {
		/* the newest record: the walk from seq found nothing, so this
		 * reads from the start only when the journal is short anyway */
		if ((r = st->ops->journal_foreach(st, 1, last_cb, &last)) != TCA_OK)
			return r;
		tca_setf(why, whylen, "the journal ends at record %lld, before the "
		    "saved head %lld (%.16s...): its newest records were removed",
		    (long long)last, (long long)seq, want);
		return TCA_ERR_POLICY_VIOLATION;
	}
	if (CRYPTO_memcmp(h.hash, hash, 32) != 0) {
		tca_hex(h.hash, 32, got);
		tca_setf(why, whylen, "record %lld has hash %s, the saved head %s: "
		    "the journal was rewritten from there on", (long long)seq, got,
		    want);
		return TCA_ERR_POLICY_VIOLATION;
	}
	return TCA_OK;
}

/* ------------------------------------------------------------ cross-check */

#define JOURNAL_OP_REVOKE "revoke"

/* One journal record that recorded (or revoked) a certificate. */
struct xc_entry {
	unsigned char fp[32];
	unsigned char serial[TCA_SERIAL_MAX];
	uint8_t serial_len;
	uint8_t seen;
	uint64_t name_hash;	/* FNV-1a of tenant NUL subject */
	int64_t seq;
};

struct xc_set {
	struct xc_entry *v;
	size_t n, cap;
};

struct xc_ctx {
	struct xc_set certs, revokes;
	void (*report)(void *ctx, const char *line);
	void *report_ctx;
	uint64_t problems, rows;
	int nomem, der;
};

static uint64_t
fnv1a(uint64_t h, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
name_hash(const char *tenant, const char *subject)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (tenant == NULL)
		tenant = "";
	if (subject == NULL)
		subject = "";
	h = fnv1a(h, tenant, strlen(tenant) + 1);
	return fnv1a(h, subject, strlen(subject));
}

static int
unhex(const char *hex, unsigned char *out, size_t max, size_t *len_ptr)
{
	size_t n = strlen(hex), i;
	int hi, lo;

	if (n == 0 || n % 2 != 0 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*len_ptr = n / 2;
	return 0;
}

static void
xc_problem(struct xc_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
xc_problem(struct xc_ctx *x, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	x->problems++;
	if (x->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	x->report(x->report_ctx, line);
}

static struct xc_entry *
xc_add(struct xc_ctx *x, struct xc_set *set)
{
	struct xc_entry *nv;
	size_t cap;

	if (set->n == set->cap) {
		cap = set->cap == 0 ? 1024 : set->cap * 2;
		if (cap > SIZE_MAX / sizeof(*nv) ||
		    (nv = realloc(set->v, cap * sizeof(*nv))) == NULL) {
			x->nomem = 1;
			return NULL;
		}
		set->v = nv;
		set->cap = cap;
	}
	memset(&set->v[set->n], 0, sizeof(set->v[0]));
	return &set->v[set->n++];
}

static int
xc_journal_cb(void *arg, const struct tca_journal_record *rec)
{
	struct xc_ctx *x = arg;
	struct xc_entry *e;
	unsigned char fp[32];
	size_t len = 0, slen = 0;
	int revoke;

	if (rec->fingerprint_hex == NULL || rec->fingerprint_hex[0] == '\0')
		return 0;
	revoke = rec->op != NULL && strcmp(rec->op, JOURNAL_OP_REVOKE) == 0;
	if (unhex(rec->fingerprint_hex, fp, sizeof(fp), &len) != 0 || len != 32) {
		xc_problem(x, "journal record %lld (%s, tenant %s, serial %s): "
		    "its fingerprint is not 64 hex digits", (long long)rec->seq,
		    rec->op, rec->tenant, rec->serial_hex);
		return 0;
	}
	if ((e = xc_add(x, revoke ? &x->revokes : &x->certs)) == NULL)
		return TCA_ERR_NOMEM;
	memcpy(e->fp, fp, 32);
	e->seq = rec->seq;
	e->name_hash = name_hash(rec->tenant, rec->subject);
	if (rec->serial_hex != NULL && unhex(rec->serial_hex, e->serial,
	    sizeof(e->serial), &slen) == 0)
		e->serial_len = (uint8_t)slen;
	return 0;
}

static int
xc_cmp(const void *a, const void *b)
{
	return memcmp(((const struct xc_entry *)a)->fp,
	    ((const struct xc_entry *)b)->fp, 32);
}

static int
xc_cmp_seq(const void *a, const void *b)
{
	int64_t x = ((const struct xc_entry *)a)->seq, y = ((const struct xc_entry *)b)->seq;

	return x < y ? -1 : x > y;
}

static struct xc_entry *
xc_find(struct xc_set *set, const unsigned char fp[32])
{
	struct xc_entry key;

	if (set->n == 0)
		return NULL;
	memcpy(key.fp, fp, 32);
	return bsearch(&key, set->v, set->n, sizeof(key), xc_cmp);
}

static int
xc_cert_cb(void *arg, const struct tca_cert_audit_row *row)
{
	struct xc_ctx *x = arg;
	struct xc_entry *e, *rv;
	unsigned char h[32];
	unsigned int hlen = 0;
	char serial[2 * TCA_SERIAL_MAX + 1] = "?";

	x->rows++;
	if (row->serial_len > 0 && row->serial_len <= TCA_SERIAL_MAX)
		tca_hex(row->serial, row->serial_len, serial);
	if (row->fingerprint_len != 32) {
		xc_problem(x, "certificate serial %s of tenant %s (row %lld): "
		    "its fingerprint is %zu bytes, not 32 (row altered)", serial,
		    row->tenant, (long long)row->cert_id, row->fingerprint_len);
		return 0;
	}
	if (x->der && (EVP_Digest(row->der, row->der_len, h, &hlen, EVP_sha256(),
	    NULL) != 1 || hlen != 32))
		return TCA_ERR_CRYPTO;
	if (x->der && CRYPTO_memcmp(h, row->fingerprint, 32) != 0)
		xc_problem(x, "certificate serial %s of tenant %s (row %lld): "
		    "its DER does not hash to its fingerprint (row altered)",
		    serial, row->tenant, (long long)row->cert_id);
	if ((e = xc_find(&x->certs, row->fingerprint)) == NULL) {
		xc_problem(x, "certificate serial %s of tenant %s (row %lld, %s) "
		    "has no journal record (row added or altered outside the "
		    "engine)", serial, row->tenant, (long long)row->cert_id,
		    row->kind);
		return 0;
	}
	if (e->seen)
		xc_problem(x, "certificate serial %s of tenant %s (row %lld): a "
		    "second row for journal record %lld", serial, row->tenant,
		    (long long)row->cert_id, (long long)e->seq);
	e->seen = 1;
	if (e->serial_len != row->serial_len ||
	    memcmp(e->serial, row->serial, row->serial_len) != 0 ||
	    e->name_hash != name_hash(row->tenant, row->subject))
		xc_problem(x, "certificate serial %s of tenant %s (row %lld) "
		    "differs from journal record %lld in serial, tenant or "
		    "subject (row altered)", serial, row->tenant,
		    (long long)row->cert_id, (long long)e->seq);
	rv = xc_find(&x->revokes, row->fingerprint);
	if (row->revoked && rv == NULL)
		xc_problem(x, "certificate serial %s of tenant %s is revoked, but "
		    "the journal has no revoke record for it (revocation added "
		    "outside the engine)", serial, row->tenant);
	else if (rv != NULL && !row->revoked)
		xc_problem(x, "certificate serial %s of tenant %s: journal record "
		    "%lld revoked it, but the store does not show it revoked "
		    "(revocation row deleted)", serial, row->tenant,
		    (long long)rv->seq);
	if (rv != NULL)
		rv->seen = 1;
	return 0;
}

int
tca_journal_crosscheck(tca_store *st, int flags,
    void (*report)(void *ctx, const char *line), void *ctx,
    uint64_t *problems_ptr, uint64_t *certs_ptr)
{
	struct xc_ctx x;
	char serial[2 * TCA_SERIAL_MAX + 1];
	size_t i;
	int r;

	memset(&x, 0, sizeof(x));
	x.report = report;
	x.report_ctx = ctx;
	x.der = (flags & TCA_XC_DER) != 0;
	if (problems_ptr != NULL)
		*problems_ptr = 0;
	if (certs_ptr != NULL)
		*certs_ptr = 0;
	if (st == NULL || st->ops == NULL || st->ops->journal_foreach == NULL ||
	    st->ops->cert_audit_foreach == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = st->ops->journal_foreach(st, 1, xc_journal_cb, &x)) != TCA_OK)
		goto out;
	/* an empty set has no array: qsort(NULL, 0, ...) is undefined */
	if (x.certs.n > 0)
		qsort(x.certs.v, x.certs.n, sizeof(x.certs.v[0]), xc_cmp);
	if (x.revokes.n > 0)
		qsort(x.revokes.v, x.revokes.n, sizeof(x.revokes.v[0]), xc_cmp);
	if ((r = st->ops->cert_audit_foreach(st, x.der, xc_cert_cb, &x)) != TCA_OK)
		goto out;
	/* what is left, in journal order (sorted only when something is) */
	for (i = 0; i < x.certs.n && x.certs.v[i].seen; i++)
		;
	if (i < x.certs.n)
		qsort(x.certs.v, x.certs.n, sizeof(x.certs.v[0]), xc_cmp_seq);
	for (i = 0; i < x.revokes.n && x.revokes.v[i].seen; i++)
		;
	if (i < x.revokes.n)
		qsort(x.revokes.v, x.revokes.n, sizeof(x.revokes.v[0]), xc_cmp_seq);
	for (i = 0; i < x.certs.n; i++) {
		if (x.certs.v[i].seen)
			continue;
		tca_hex(x.certs.v[i].serial, x.certs.v[i].serial_len, serial);
		xc_problem(&x, "certificate serial %s recorded by journal record "
		    "%lld has no row in the store (row deleted)", serial,
		    (long long)x.certs.v[i].seq);
	}
	for (i = 0; i < x.revokes.n; i++) {
		if (x.revokes.v[i].seen)
			continue;
		tca_hex(x.revokes.v[i].serial, x.revokes.v[i].serial_len, serial);
		xc_problem(&x, "certificate serial %s revoked by journal record "
		    "%lld has no row in the store (row deleted)", serial,
		    (long long)x.revokes.v[i].seq);
	}
	r = x.problems > 0 ? TCA_ERR_POLICY_VIOLATION : TCA_OK;
 out:
	if (x.nomem && r != TCA_OK && r != TCA_ERR_POLICY_VIOLATION)
		r = TCA_ERR_NOMEM;
	if (problems_ptr != NULL)
		*problems_ptr = x.problems;
	if (certs_ptr != NULL)
		*certs_ptr = x.rows;
	free(x.certs.v);
	free(x.revokes.v);
	return r;
}

/* ---------------------------------------------------------------- export */

static void
json_str(FILE *out, const char *s)
{
	if (s == NULL)
		s = "";
	tca_json_string(out, (const unsigned char *)s, strlen(s));
}



static void
rfc3339_utc(int64_t time_ms, char *buf, size_t buflen)
{
	struct tm tm;
	time_t secs;
	int64_t ms;

	/* floor division so times before 1970 still print correctly */
	ms = time_ms % 1000;
	secs = (time_t)(time_ms / 1000);
	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, buflen, "invalid");
		return;
	}
	snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)ms);
}

static int
export_cb(void *arg, const struct tca_journal_record *rec)
{
	FILE *out = arg;
	char prev_hex[65], hash_hex[65], when[96];

	tca_hex(rec->prev_hash, 32, prev_hex);
	tca_hex(rec->hash, 32, hash_hex);
	rfc3339_utc(rec->time_ms, when, sizeof(when));
	fprintf(out, "{\"seq\":%lld,\"time_ms\":%lld,\"time\":\"%s\",\"op\":",
	    (long long)rec->seq, (long long)rec->time_ms, when);
	json_str(out, rec->op);
	fputs(",\"tenant\":", out);
	json_str(out, rec->tenant);
	fputs(",\"serial\":", out);
	json_str(out, rec->serial_hex);
	fputs(",\"subject\":", out);
	json_str(out, rec->subject);
	fputs(",\"fingerprint\":", out);
	json_str(out, rec->fingerprint_hex);
	fprintf(out, ",\"uid\":%lu,\"pid\":%ld,\"details\":",
	    (unsigned long)rec->uid, (long)rec->pid);
	json_str(out, rec->details);
	fprintf(out, ",\"prev_hash\":\"%s\",\"hash\":\"%s\"}\n",
	    prev_hex, hash_hex);
	return ferror(out) ? TCA_ERR_SYSTEM : 0;
}

int
tca_journal_export_json(tca_store *st, FILE *out)
{
	int r;

	if (st == NULL || st->ops == NULL || out == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = st->ops->journal_foreach(st, 1, export_cb, out)) != TCA_OK)
		return r;
	if (fflush(out) != 0 || ferror(out))
		return TCA_ERR_SYSTEM;
	return TCA_OK;
}
