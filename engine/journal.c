/*
 * journal.c - the audit journal's hash chain (independent of the backend),
 * its verification and JSON Lines export, and small store.h helpers.
 */
#include "config.h"

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
