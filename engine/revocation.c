/*
 * revocation.c - revocation, CRLs, OCSP and the certificate inventory
 * (engine.h).
 *
 * Revocations live in the store (durable, journaled, irreversible).  The
 * engine keeps every revoked certificate of the active CAs in memory (revset;
 * expired ones too, since re-enrollment accepts an expired current
 * certificate) so that re-enrollment refuses a revoked certificate without a
 * store read.  A CRL is signed in the token by the tenant CA's key (crl.c
 * builds it, tca_sign_assemble_der checks the signature), recorded in the
 * store with its journal record, and served from the store: the `crl`
 * operation never signs.  CRL numbers come from the store (one more than
 * the highest the tenant ever had), and the store refuses a number that is
 * not new, so they never repeat, across restarts, re-issuance and deleted
 * and re-created CAs alike.  One CRL is signed at a time (crl_lock).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs.h"
#include "crl.h"
#include "engine-int.h"
#include "log.h"
#include "ocsp.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"

#define REVSET_MIN_BUCKETS	1024
#define COUNTS_MAX_AGE_S	30
#define CRL_SIGN_ATTEMPTS	3

/* ------------------------------------------------------------ revset */

struct rev {
	struct rev *next;
	char tenant[TCA_TENANT_MAX + 1];
	unsigned char serial[TCA_SERIAL_MAX];
	size_t serial_len;
	int64_t revoked_at;
	int reason;
};

struct revset {
	struct rev **buckets;
	size_t n_buckets, n;
};

static uint64_t
rev_hash(const char *tenant, const unsigned char *serial, size_t len)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a 64 */
	size_t i;

	for (; *tenant != '\0'; tenant++) {
		h ^= (unsigned char)*tenant;
		h *= 1099511628211ULL;
	}
	h ^= 0xff;	/* separator: no tenant byte is 0xff */
	h *= 1099511628211ULL;
	for (i = 0; i < len; i++) {
		h ^= serial[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct rev *
revset_lookup(const struct revset *rs, const char *tenant, const unsigned char *serial,
    size_t len)
{
	struct rev *v;

	if (rs == NULL || rs->n_buckets == 0)
		return NULL;
	for (v = rs->buckets[rev_hash(tenant, serial, len) % rs->n_buckets]; v != NULL;
	    v = v->next)
		if (v->serial_len == len && memcmp(v->serial, serial, len) == 0 &&
		    strcmp(v->tenant, tenant) == 0)
			return v;
	return NULL;
}

static int
revset_grow(struct revset *rs)
{
	struct rev **nb, *v, *next;
	size_t n = rs->n_buckets == 0 ? REVSET_MIN_BUCKETS : rs->n_buckets * 2, i, h;

	if (n > SIZE_MAX / sizeof(*nb) || (nb = calloc(n, sizeof(*nb))) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < rs->n_buckets; i++) {
		for (v = rs->buckets[i]; v != NULL; v = next) {
			next = v->next;
			h = rev_hash(v->tenant, v->serial, v->serial_len) % n;
			v->next = nb[h];
			nb[h] = v;
		}
	}
	free(rs->buckets);
	rs->buckets = nb;
	rs->n_buckets = n;
	return TCA_OK;
}

/* Adds (tenant, serial) unless present.  Caller holds rev_lock for writing. */
static int
revset_add_locked(tca_engine *e, const char *tenant, const unsigned char *serial,
    size_t len, int64_t revoked_at, int reason)
{
	struct revset *rs = e->revset;
	struct rev *v;
	size_t h;
	int r;

	if (len == 0 || len > TCA_SERIAL_MAX || strlen(tenant) > TCA_TENANT_MAX)
		return TCA_ERR_INVALID_ARG;
	if (rs == NULL) {
		if ((rs = calloc(1, sizeof(*rs))) == NULL)
			return TCA_ERR_NOMEM;
		e->revset = rs;
	}
	if (revset_lookup(rs, tenant, serial, len) != NULL)
		return TCA_OK;
	if (rs->n >= rs->n_buckets && (r = revset_grow(rs)) != TCA_OK)
		return r;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return TCA_ERR_NOMEM;
	snprintf(v->tenant, sizeof(v->tenant), "%s", tenant);
	memcpy(v->serial, serial, len);
	v->serial_len = len;
	v->revoked_at = revoked_at;
	v->reason = reason;
	h = rev_hash(tenant, serial, len) % rs->n_buckets;
	v->next = rs->buckets[h];
	rs->buckets[h] = v;
	rs->n++;
	return TCA_OK;
}

static int
revset_add(tca_engine *e, const char *tenant, const unsigned char *serial, size_t len,
    int64_t revoked_at, int reason)
{
	int r;

	pthread_rwlock_wrlock(&e->rev_lock);
	r = revset_add_locked(e, tenant, serial, len, revoked_at, reason);
	pthread_rwlock_unlock(&e->rev_lock);
	return r;
}

static int
load_one(void *ctx, const char *tenant, const unsigned char *serial, size_t len,
    int64_t revoked_at, int reason)
{
	return revset_add_locked(ctx, tenant, serial, len, revoked_at, reason);
}

int
tca_revset_load(tca_engine *e)
{
	int r;

	pthread_rwlock_wrlock(&e->rev_lock);
	/* expired ones too: re-enrollment tolerates an expired current
	 * certificate (a device renews late), so a revoked one must stay
	 * refused after its notAfter */
	r = e->st->ops->revoked_all(e->st, INT64_MIN, load_one, e);
	if (r == TCA_OK && e->revset != NULL && e->revset->n > 0)
		log_info("revocation: %zu revoked certificates loaded", e->revset->n);
	pthread_rwlock_unlock(&e->rev_lock);
	return r;
}

void
tca_revset_free(tca_engine *e)
{
	struct revset *rs = e->revset;
	struct rev *v, *next;
	size_t i;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->n_buckets; i++) {
		for (v = rs->buckets[i]; v != NULL; v = next) {
			next = v->next;
			free(v);
		}
	}
	free(rs->buckets);
	free(rs);
	e->revset = NULL;
}

int
tca_revset_note(tca_engine *e, const char *tenant, const char *serial_hex)
{
	unsigned char serial[TCA_SERIAL_MAX];
	struct tca_cert_row row;
	size_t len;
	char why[128];
	int r;

	if (tca_serial_parse_hex(serial_hex, serial, &len, why, sizeof(why)) != TCA_OK) {
		log_warn("tenant %s: journal revocation record with serial \"%s\" "
		    "ignored: %s", tenant, serial_hex, why);
		return TCA_OK;
	}
	memset(&row, 0, sizeof(row));
	r = e->st->ops->cert_get(e->st, tenant, serial, len, &row);
	if (r == TCA_OK && row.revoked)
		r = revset_add(e, tenant, serial, len, row.revoked_at, row.reason);
	else if (r == TCA_ERR_NOT_FOUND)
		r = TCA_OK;	/* its CA was deleted since */
	tca_cert_row_clear(&row);
	return r;
}

int
tca_revset_find(tca_engine *e, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t *revoked_at_ptr, int *reason_ptr)
{
	struct rev *v;
	int found = 0;

	pthread_rwlock_rdlock(&e->rev_lock);
	if ((v = revset_lookup(e->revset, tenant, serial, serial_len)) != NULL) {
		found = 1;
		if (revoked_at_ptr != NULL)
			*revoked_at_ptr = v->revoked_at;
		if (reason_ptr != NULL)
			*reason_ptr = v->reason;
	}
	pthread_rwlock_unlock(&e->rev_lock);
	return found;
}

/* ------------------------------------------------------------ helpers */

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tca_serial_parse_hex(const char *hex, unsigned char out[TCA_SERIAL_MAX],
    size_t *len_ptr, char *why, size_t whylen)
{
	unsigned char mag[TCA_SERIAL_MAX];
	size_t ndig = 0, k = 0;
	const char *p;
	int v, half = 0, acc = 0;

	*len_ptr = 0;
	for (p = hex; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (hex_val(*p) < 0) {
			tca_setf(why, whylen, "serial must be hexadecimal (colons allowed)");
			return TCA_ERR_BAD_REQUEST;
		}
		ndig++;
	}
	if (ndig == 0) {
		tca_setf(why, whylen, "serial is empty");
		return TCA_ERR_BAD_REQUEST;
	}
	/* an odd digit count reads as if it had a leading 0; leading zero
	 * octets are dropped (the store keeps the magnitude) */
	half = ndig % 2;
	for (p = hex; *p != '\0'; p++) {
		if ((v = hex_val(*p)) < 0)
			continue;
		acc = acc << 4 | v;
		if (++half < 2)
			continue;
		half = 0;
		if (k == 0 && acc == 0) {
			acc = 0;
			continue;
		}
		if (k == sizeof(mag)) {
			tca_setf(why, whylen, "serial is longer than %d octets", TCA_SERIAL_MAX);
			return TCA_ERR_BAD_REQUEST;
		}
		mag[k++] = (unsigned char)acc;
		acc = 0;
	}
	if (k == 0) {
		tca_setf(why, whylen, "serial 0 is not a certificate's");
		return TCA_ERR_BAD_REQUEST;
	}
	memcpy(out, mag, k);
	*len_ptr = k;
	return TCA_OK;
}

/* The serial (magnitude) of a certificate given as DER or PEM. */
int
tca_cert_serial_of(const unsigned char *cert, size_t len, unsigned char out[TCA_SERIAL_MAX],
    size_t *len_ptr)
{
	struct tca_cert_info info;
	const ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	int n, r = TCA_ERR_BAD_REQUEST;

	*len_ptr = 0;
	if (tca_cert_info_from_der(cert, len, &info) == TCA_OK) {
		memcpy(out, info.serial, info.serial_len);
		*len_ptr = info.serial_len;
		return TCA_OK;
	}
	if (len > INT32_MAX || (bio = BIO_new_mem_buf(cert, (int)len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (ai = X509_get0_serialNumber(x)) == NULL ||
	    (bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL ||
	    (n = BN_num_bytes(bn)) <= 0 || n > TCA_SERIAL_MAX ||
	    BN_bn2bin(bn, out) != n)
		goto out;
	*len_ptr = (size_t)n;
	r = TCA_OK;
 out:
	BN_free(bn);
	X509_free(x);
	BIO_free(bio);
	return r;
}

int
tca_engine_check_not_revoked(tca_engine *e, const char *tenant,
    const unsigned char *current, size_t current_len, char *why, size_t whylen)
{
	unsigned char serial[TCA_SERIAL_MAX];
	char hex[2 * TCA_SERIAL_MAX + 1], when[32];
	size_t len;
	int64_t at = 0;
	int reason = 0;

	/* the re-enrollment check already parsed it; a failure here is ours */
	if (tca_cert_serial_of(current, current_len, serial, &len) != TCA_OK) {
		tca_setf(why, whylen, "the current certificate's serial could not be read");
		return TCA_ERR_BAD_REQUEST;
	}
	if (!tca_revset_find(e, tenant, serial, len, &at, &reason))
		return TCA_OK;
	tca_hex(serial, len, hex);
	tca_iso_time(at, when, sizeof(when));
	tca_setf(why, whylen, "certificate %s of tenant %s was revoked at %s (%s); "
	    "enroll anew", hex, tenant, when, tca_crl_reason_name(reason) != NULL ?
	    tca_crl_reason_name(reason) : "unspecified");
	return TCA_ERR_REVOKED;
}

/* ------------------------------------------------------------ CRLs */

struct entries {
	struct tca_crl_entry *v;
	unsigned char (*serials)[TCA_SERIAL_MAX];
	size_t n, cap;
};

static int
collect_entry(void *ctx, const unsigned char *serial, size_t serial_len,
    int64_t revoked_at, int reason, int64_t not_after)
{
	struct entries *es = ctx;
	size_t cap, i;
	void *nv, *ns;

	(void)not_after;
	if (es->n == es->cap) {
		cap = es->cap == 0 ? 64 : es->cap * 2;
		if (cap > SIZE_MAX / sizeof(*es->v) || cap > SIZE_MAX / TCA_SERIAL_MAX)
			return TCA_ERR_NOMEM;
		if ((nv = realloc(es->v, cap * sizeof(*es->v))) == NULL)
			return TCA_ERR_NOMEM;
		es->v = nv;
		if ((ns = realloc(es->serials, cap * TCA_SERIAL_MAX)) == NULL)
			return TCA_ERR_NOMEM;
		es->serials = ns;
		es->cap = cap;
		/* the serial pointers moved with the array */
		for (i = 0; i < es->n; i++)
			es->v[i].serial = es->serials[i];
	}
	memcpy(es->serials[es->n], serial, serial_len);
	es->v[es->n].serial = es->serials[es->n];
	es->v[es->n].serial_len = serial_len;
	es->v[es->n].revoked_at = revoked_at;
	es->v[es->n].reason = reason;
	es->n++;
	return 0;
}

struct crl_update {
	const struct tca_crl_published *info;
	const struct tca_renewal_state *state;
};

static void
apply_crl_update(struct ca_entry *nent, void *ctx)
{
	const struct crl_update *u = ctx;

	if (u->info != NULL) {
		nent->crl_number = u->info->number;
		nent->crl_this_update = u->info->this_update;
		nent->crl_next_update = u->info->next_update;
	}
	if (u->state != NULL)
		nent->crl = *u->state;
}

/* One attempt: sign with the next number and publish.  ALREADY_EXISTS when
 * another signer took that number meanwhile.  seen (may be NULL): sign only
 * if the current CRL is still number *seen (0: none), else TCA_OK with
 * out->superseded and out describing the current one. */
static int
crl_sign_once(tca_engine *e, struct ca_entry *ent, const struct tca_requester *who,
    const uint64_t *seen, struct tca_crl_published *out, char *why, size_t whylen)
{
	struct tca_token_signer sctx;
	struct tca_signer signer;
	struct tca_crl_params cp;
	struct tca_crl_row row;
	struct tca_change chg;
	struct tca_policy pol;
	struct entries es;
	unsigned char *der = NULL;
	char details[160], next_iso[32];
	size_t der_len = 0;
	time_t now = tca_engine_now(e);
	int r;

	memset(&es, 0, sizeof(es));
	memset(&row, 0, sizeof(row));
	tca_engine_policy_snapshot(e, &pol);
	r = e->st->ops->crl_get(e->st, ent->tenant, &row);
	if (r == TCA_ERR_NOT_FOUND && row.next_number == 0) {
		tca_setf(why, whylen, "tenant %s has no CA", ent->tenant);
		goto out;
	}
	if (r != TCA_OK && r != TCA_ERR_NOT_FOUND) {
		tca_setf(why, whylen, "the store could not be read (%s)", tca_strerror(r));
		goto out;
	}
	if (seen != NULL && (r == TCA_OK ? row.crl_number : 0) != *seen) {
		out->number = row.crl_number;
		out->this_update = row.this_update;
		out->next_update = row.next_update;
		out->entries = row.entries;
		out->superseded = 1;
		r = TCA_OK;
		goto out;
	}
	if ((r = e->st->ops->revoked_foreach(e->st, ent->tenant, now, collect_entry,
	    &es)) != TCA_OK) {
		tca_setf(why, whylen, "the revocations could not be read (%s)", tca_strerror(r));
		goto out;
	}
	memset(&cp, 0, sizeof(cp));
	cp.crl_number = row.next_number;
	cp.this_update = now;
	cp.next_update = now + (int64_t)pol.crl_validity_hours * 3600;
	tca_engine_signer_for(e, ent, &sctx, &signer);
	if ((r = tca_crl_build(ent->cur, &signer, &cp, es.v, es.n, &der, &der_len)) != TCA_OK) {
		tca_engine_sign_failure_why(r, why, whylen);
		if (why[0] == '\0')
			tca_setf(why, whylen, "signing the CRL failed (%s)", tca_strerror(r));
		goto out;
	}
	tca_iso_time(cp.next_update, next_iso, sizeof(next_iso));
	snprintf(details, sizeof(details), "crl_number=%llu entries=%zu next_update=%s",
	    (unsigned long long)cp.crl_number, es.n, next_iso);
	tca_engine_change_init(e, &chg, TCA_CHANGE_CRL_PUBLISH, "crl", ent->tenant, who);
	chg.crl_der = der;
	chg.crl_len = der_len;
	chg.crl_number = cp.crl_number;
	chg.this_update = cp.this_update;
	chg.next_update = cp.next_update;
	chg.crl_entries = es.n;
	chg.details = details;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK) {
		if (r == TCA_ERR_ALREADY_EXISTS)
			tca_setf(why, whylen, "CRL number %llu was taken meanwhile",
			    (unsigned long long)cp.crl_number);
		else
			tca_setf(why, whylen, "the CRL could not be recorded (%s)",
			    tca_strerror(r));
		goto out;
	}
	out->number = cp.crl_number;
	out->this_update = cp.this_update;
	out->next_update = cp.next_update;
	out->entries = es.n;
	log_info("tenant %s: CRL %llu signed (%zu entries, next update %s)", ent->tenant,
	    (unsigned long long)cp.crl_number, es.n, next_iso);
 out:
	OPENSSL_free(der);
	free(es.v);
	free(es.serials);
	tca_crl_row_clear(&row);
	return r;
}

static int
crl_sign(tca_engine *e, const char *tenant, const struct tca_requester *who,
    const uint64_t *seen, struct tca_crl_published *out, char *why, size_t whylen)
{
	static const struct tca_renewal_state clear;
	struct crl_update u;
	struct ca_entry *ent;
	int r, attempt;

	memset(out, 0, sizeof(*out));
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	if ((r = tca_engine_key_usable(e, ent, why, whylen)) != TCA_OK)
		goto out;
	pthread_mutex_lock(&e->crl_lock);
	for (attempt = 0; attempt < CRL_SIGN_ATTEMPTS; attempt++) {
		why[0] = '\0';
		if ((r = crl_sign_once(e, ent, who, seen, out, why, whylen)) !=
		    TCA_ERR_ALREADY_EXISTS)
			break;
	}
	pthread_mutex_unlock(&e->crl_lock);
	if (r != TCA_OK || out->superseded)
		goto out;
	memset(&u, 0, sizeof(u));
	u.info = out;
	/* a successful signature ends a failure episode */
	if (ent->crl.failed) {
		if (tca_engine_set_crl_state(e, tenant, &clear) != TCA_OK)
			log_warn("tenant %s: clearing the CRL failure state failed", tenant);
	}
	(void)tca_engine_entry_update(e, tenant, apply_crl_update, &u);
 out:
	tca_engine_entry_unref(ent);
	return r;
}

int
tca_engine_crl_sign(tca_engine *e, const char *tenant, const struct tca_requester *who,
    struct tca_crl_published *out, char *why, size_t whylen)
{
	return crl_sign(e, tenant, who, NULL, out, why, whylen);
}

int
tca_engine_crl_refresh(tca_engine *e, const char *tenant,
    const struct tca_requester *who, uint64_t seen_number,
    struct tca_crl_published *out, char *why, size_t whylen)
{
	return crl_sign(e, tenant, who, &seen_number, out, why, whylen);
}

int
tca_engine_set_crl_state(tca_engine *e, const char *tenant,
    const struct tca_renewal_state *state)
{
	struct tca_change chg;
	struct crl_update u;
	int r;

	tca_engine_change_init(e, &chg, TCA_CHANGE_CRL_STATE, "crl-state", tenant, NULL);
	chg.renewal = state;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK)
		return r;
	memset(&u, 0, sizeof(u));
	u.state = state;
	return tca_engine_entry_update(e, tenant, apply_crl_update, &u);
}

int
tca_engine_crl_get(tca_engine *e, const char *tenant, struct tca_crl_row *row,
    char *why, size_t whylen)
{
	int r;

	memset(row, 0, sizeof(*row));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	r = e->st->ops->crl_get(e->st, tenant, row);
	if (r == TCA_ERR_NOT_FOUND)
		tca_setf(why, whylen, row->next_number > 0 ? "tenant %s has no CRL yet "
		    "(the scheduler makes one; `ca-admin crl sign %s` does it now)" :
		    "tenant %s has no CA", tenant, tenant);
	else if (r != TCA_OK)
		tca_setf(why, whylen, "the store could not be read (%s)", tca_strerror(r));
	if (r != TCA_OK)
		tca_crl_row_clear(row);
	return r;
}

time_t
tca_crl_due_at(const struct tca_ca_brief *b, const struct tca_policy *p)
{
	int64_t span, due;

	if (b->crl.failed)
		return (time_t)b->crl.next_retry;
	if (b->crl_number == 0)
		return 0;	/* none yet: at once */
	span = b->crl_next_update - b->crl_this_update;
	if (span <= 0)
		return 0;
	due = b->crl_this_update + span * (int64_t)p->crl_refresh_percent / 100;
	/* a shorter validity configured since: never later than it allows */
	if (due > b->crl_this_update + (int64_t)p->crl_validity_hours * 3600)
		due = b->crl_this_update + (int64_t)p->crl_validity_hours * 3600 *
		    (int64_t)p->crl_refresh_percent / 100;
	return (time_t)due;
}

/* ------------------------------------------------------------ revoking */

static int
revoke_serial(tca_engine *e, const char *tenant, const unsigned char *serial,
    size_t serial_len, int reason, const struct tca_requester *who,
    struct tca_revoked *out, char *why, size_t whylen)
{
	struct tca_change chg;
	char details[64];
	int r;

	memset(out, 0, sizeof(*out));
	tca_hex(serial, serial_len, out->serial_hex);
	snprintf(details, sizeof(details), "reason=%s",
	    tca_crl_reason_name(reason) != NULL ? tca_crl_reason_name(reason) : "?");
	tca_engine_change_init(e, &chg, TCA_CHANGE_CERT_REVOKE, "revoke", tenant, who);
	chg.serial = serial;
	chg.serial_len = serial_len;
	chg.reason = reason;
	chg.revoked_at = tca_engine_now(e);
	chg.details = details;
	r = tca_committer_submit(e->cm, &chg);
	if (r == TCA_ERR_ALREADY_EXISTS) {
		out->already = 1;
		r = TCA_OK;
	}
	if (r == TCA_ERR_NOT_FOUND) {
		tca_setf(why, whylen, "serial %s is not a device certificate of tenant %s",
		    out->serial_hex, tenant);
		return r;
	}
	if (r != TCA_OK) {
		tca_setf(why, whylen, "the revocation could not be recorded (%s); "
		    "nothing was revoked", tca_strerror(r));
		return r;
	}
	out->revoked_at = chg.revoked.revoked_at;
	out->reason = chg.revoked.reason;
	out->not_after = chg.revoked.not_after;
	snprintf(out->subject, sizeof(out->subject), "%s", chg.revoked.subject);
	if ((r = revset_add(e, tenant, serial, serial_len, out->revoked_at,
	    out->reason)) != TCA_OK)
		log_error("tenant %s: revocation of %s recorded, but not in memory (%s): "
		    "re-enrollment may accept it until restart", tenant, out->serial_hex,
		    tca_strerror(r));
	if (!out->already)
		log_notice("tenant %s: certificate %s revoked (%s, uid %u pid %d)", tenant,
		    out->serial_hex, details + strlen("reason="), (unsigned int)chg.who.uid,
		    (int)chg.who.pid);
	return TCA_OK;
}

/* After revocations: a fresh CRL now; a failure is recorded for the
 * scheduler to retry and reported, but the revocations stand. */
static void
resign_after_revocation(tca_engine *e, const char *tenant, const struct tca_requester *who,
    struct tca_crl_published *crl, char *crl_why, size_t crl_whylen)
{
	struct tca_renewal_state st;
	struct ca_entry *ent;
	int r;

	memset(crl, 0, sizeof(*crl));
	if ((r = tca_engine_crl_sign(e, tenant, who, crl, crl_why, crl_whylen)) == TCA_OK)
		return;
	log_error("tenant %s: re-signing the CRL after a revocation failed: %s", tenant,
	    crl_why);
	if ((ent = tca_engine_cache_get(e, tenant)) == NULL)
		return;
	st = ent->crl;
	tca_engine_entry_unref(ent);
	if (!st.failed) {
		st.failed = 1;
		st.failed_since = tca_engine_now(e);
		st.attempts = 0;
		st.alerted = 0;
	}
	st.attempts++;
	tca_setf(st.reason, sizeof(st.reason), "%s", crl_why);
	st.next_retry = tca_engine_now(e);	/* the scheduler's next pass */
	(void)tca_engine_set_crl_state(e, tenant, &st);
}

int
tca_engine_revoke(tca_engine *e, const char *tenant, const char *serial_hex,
    int reason, const struct tca_requester *who, struct tca_revoked *out,
    struct tca_crl_published *crl, char *crl_why, size_t crl_whylen, char *why, size_t whylen)
{
	unsigned char serial[TCA_SERIAL_MAX];
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	memset(crl, 0, sizeof(*crl));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_serial_parse_hex(serial_hex, serial, &len, why, whylen)) != TCA_OK)
		return r;
	if (tca_crl_reason_name(reason) == NULL) {
		tca_setf(why, whylen, "reason %d is not accepted", reason);
		return TCA_ERR_BAD_REQUEST;
	}
	if ((r = revoke_serial(e, tenant, serial, len, reason, who, out, why, whylen)) != TCA_OK)
		return r;
	if (!out->already)
		resign_after_revocation(e, tenant, who, crl, crl_why, crl_whylen);
	return TCA_OK;
}

struct device_certs {
	unsigned char (*serials)[TCA_SERIAL_MAX];
	size_t *lens, n, cap, seen;
	int64_t last_id, now;
};

static int
collect_device(void *ctx, const struct tca_cert_row *row)
{
	struct device_certs *dc = ctx;
	unsigned char s[TCA_SERIAL_MAX];
	size_t len;
	void *p;

	dc->last_id = row->cert_id;
	dc->seen++;
	if (row->not_after < dc->now)
		return 0;	/* expired: no longer needs revoking */
	if (tca_serial_parse_hex(row->serial_hex, s, &len, NULL, 0) != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if (dc->n == dc->cap) {
		size_t cap = dc->cap == 0 ? 8 : dc->cap * 2;

		if ((p = realloc(dc->serials, cap * TCA_SERIAL_MAX)) == NULL)
			return TCA_ERR_NOMEM;
		dc->serials = p;
		if ((p = realloc(dc->lens, cap * sizeof(*dc->lens))) == NULL)
			return TCA_ERR_NOMEM;
		dc->lens = p;
		dc->cap = cap;
	}
	memcpy(dc->serials[dc->n], s, len);
	dc->lens[dc->n++] = len;
	return 0;
}

int
tca_engine_revoke_device(tca_engine *e, const char *tenant, const char *device_id,
    int reason, const struct tca_requester *who,
    int (*cb)(void *ctx, const struct tca_revoked *rv), void *ctx,
    struct tca_crl_published *crl, char *crl_why, size_t crl_whylen, char *why, size_t whylen)
{
	struct tca_cert_query q;
	struct device_certs dc;
	struct tca_revoked rv;
	size_t i, newly = 0, before;
	int r;

	memset(&dc, 0, sizeof(dc));
	memset(crl, 0, sizeof(*crl));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_device_id_validate(device_id, why, whylen)) != TCA_OK)
		return r;
	if (tca_crl_reason_name(reason) == NULL) {
		tca_setf(why, whylen, "reason %d is not accepted", reason);
		return TCA_ERR_BAD_REQUEST;
	}
	/* every unexpired certificate of the device, revoked ones included (so
	 * the answer lists them as already revoked) */
	memset(&q, 0, sizeof(q));
	q.tenant = tenant;
	q.device_id = device_id;
	q.now = dc.now = tca_engine_now(e);
	q.limit = 1000;
	do {
		before = dc.seen;
		q.after_cert_id = dc.last_id;
		if ((r = e->st->ops->cert_list(e->st, &q, collect_device, &dc)) != TCA_OK) {
			tca_setf(why, whylen, r == TCA_ERR_NOT_FOUND ? "tenant %s has no CA" :
			    "the store could not be read (%s)", r == TCA_ERR_NOT_FOUND ?
			    tenant : tca_strerror(r));
			goto out;
		}
	} while (dc.seen - before == q.limit);
	if (dc.n == 0) {
		tca_setf(why, whylen, "device %s of tenant %s has no unexpired certificate",
		    device_id, tenant);
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	for (i = 0; i < dc.n; i++) {
		if ((r = revoke_serial(e, tenant, dc.serials[i], dc.lens[i], reason, who,
		    &rv, why, whylen)) != TCA_OK)
			goto out;
		newly += !rv.already;
		if (cb != NULL && (r = cb(ctx, &rv)) != TCA_OK)
			goto out;
	}
	r = TCA_OK;
 out:
	if (newly > 0)
		resign_after_revocation(e, tenant, who, crl, crl_why, crl_whylen);
	free(dc.serials);
	free(dc.lens);
	return r;
}

/* ------------------------------------------------------------ OCSP */

struct ocsp_ctx {
	tca_engine *e;
	const char *tenant;
	const char *first;	/* the first certificate's status, for the result */
};

static const char *
ocsp_status_name(enum tca_ocsp_status st)
{
	return st == TCA_OCSP_GOOD ? "good" : st == TCA_OCSP_REVOKED ? "revoked" : "unknown";
}

static int
ocsp_lookup(void *vctx, const unsigned char *serial, size_t serial_len,
    struct tca_ocsp_cert_status *out)
{
	struct ocsp_ctx *oc = vctx;
	struct tca_cert_row row;
	int r;

	memset(out, 0, sizeof(*out));
	if (serial_len == 0 || serial_len > TCA_SERIAL_MAX) {
		out->status = TCA_OCSP_UNKNOWN;
		return TCA_OK;
	}
	r = oc->e->st->ops->cert_get(oc->e->st, oc->tenant, serial, serial_len, &row);
	if (r == TCA_ERR_NOT_FOUND) {
		out->status = TCA_OCSP_UNKNOWN;
		if (oc->first == NULL)
			oc->first = "unknown";
		return TCA_OK;
	}
	if (r != TCA_OK)
		return r;
	if (row.revoked) {
		out->status = TCA_OCSP_REVOKED;
		out->revoked_at = row.revoked_at;
		out->reason = row.reason;
	} else
		out->status = TCA_OCSP_GOOD;
	tca_cert_row_clear(&row);
	if (oc->first == NULL)
		oc->first = ocsp_status_name(out->status);
	return TCA_OK;
}

int
tca_engine_ocsp(tca_engine *e, const char *tenant, const unsigned char *req,
    size_t req_len, unsigned char **resp_ptr, size_t *resp_len_ptr, const char **status,
    char *why, size_t whylen)
{
	struct tca_token_signer sctx;
	struct tca_ocsp_params op;
	struct tca_signer signer;
	struct tca_policy pol;
	struct ocsp_ctx oc;
	const char *rstatus = NULL;
	struct ca_entry *ent = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	int r;

	*resp_ptr = NULL;
	*resp_len_ptr = 0;
	if (status != NULL)
		*status = "";
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	if ((r = tca_engine_key_usable(e, ent, why, whylen)) != TCA_OK)
		goto out;
	tca_engine_policy_snapshot(e, &pol);
	memset(&op, 0, sizeof(op));
	op.now = tca_engine_now(e);
	op.next_update = op.now + pol.ocsp_validity_s;
	oc.e = e;
	oc.tenant = tenant;
	oc.first = NULL;
	tca_engine_signer_for(e, ent, &sctx, &signer);
	if ((r = tca_ocsp_respond(ent->cur, &signer, req, req_len, &op, ocsp_lookup, &oc,
	    &der, &der_len, &rstatus)) != TCA_OK) {
		tca_engine_sign_failure_why(r, why, whylen);
		if (why[0] == '\0')
			tca_setf(why, whylen, "the OCSP response could not be made (%s)",
			    tca_strerror(r));
		goto out;
	}
	if ((*resp_ptr = malloc(der_len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	memcpy(*resp_ptr, der, der_len);
	*resp_len_ptr = der_len;
	/* the first certificate's status; a CertID naming another issuer is
	 * answered unknown without a lookup */
	if (status != NULL)
		*status = rstatus != NULL && strcmp(rstatus, "malformed") == 0 ? "malformed" :
		    oc.first != NULL ? oc.first : "unknown";
 out:
	OPENSSL_free(der);
	tca_engine_entry_unref(ent);
	return r;
}

/* ------------------------------------------------------------ inventory */

int
tca_engine_cert_list(tca_engine *e, struct tca_cert_query *q,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx,
    char *why, size_t whylen)
{
	int r;

	if ((r = tca_tenant_validate(q->tenant, why, whylen)) != TCA_OK ||
	    (q->device_id != NULL &&
	    (r = tca_device_id_validate(q->device_id, why, whylen)) != TCA_OK))
		return r;
	q->now = tca_engine_now(e);
	r = e->st->ops->cert_list(e->st, q, cb, ctx);
	if (r == TCA_ERR_NOT_FOUND)
		tca_setf(why, whylen, "tenant %s has no CA", q->tenant);
	else if (r == TCA_ERR_JOURNAL_UNAVAILABLE)
		tca_setf(why, whylen, "the store could not be read");
	return r;
}

int
tca_engine_cert_show(tca_engine *e, const char *tenant, const char *serial_hex,
    struct tca_cert_row *row, char *why, size_t whylen)
{
	unsigned char serial[TCA_SERIAL_MAX];
	size_t len;
	int r;

	memset(row, 0, sizeof(*row));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_serial_parse_hex(serial_hex, serial, &len, why, whylen)) != TCA_OK)
		return r;
	r = e->st->ops->cert_get(e->st, tenant, serial, len, row);
	if (r == TCA_ERR_NOT_FOUND)
		tca_setf(why, whylen, "serial %s is not a device certificate of tenant %s",
		    serial_hex, tenant);
	else if (r == TCA_ERR_JOURNAL_UNAVAILABLE)
		tca_setf(why, whylen, "the store could not be read");
	return r;
}

int
tca_engine_cert_counts(tca_engine *e, struct tca_cert_counts *out)
{
	time_t now = time(NULL);
	int r = TCA_OK;

	pthread_mutex_lock(&e->counts_lock);
	if (e->counts_at == 0 || now - e->counts_at >= COUNTS_MAX_AGE_S || now < e->counts_at) {
		if ((r = e->st->ops->cert_counts(e->st, tca_engine_now(e), &e->counts)) == TCA_OK)
			e->counts_at = now;
	}
	*out = e->counts;
	pthread_mutex_unlock(&e->counts_lock);
	return r;
}
