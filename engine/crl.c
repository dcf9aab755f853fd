/*
 * crl.c - certificate revocation lists (crl.h).
 *
 * The TBSCertList is written in two passes over the entries: the first adds
 * up the encoded sizes (every element's length is known from its input: a
 * serial's magnitude, a time's year, whether a reason is present), the second
 * writes into one buffer of exactly that size.  Nothing is allocated per
 * entry, so 100,000 entries cost a few milliseconds plus the signature.
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signature }
 *   TBSCertList ::= SEQUENCE {
 *     version INTEGER (v2 = 1), signature AlgorithmIdentifier, issuer Name,
 *     thisUpdate Time, nextUpdate Time,
 *     revokedCertificates SEQUENCE OF SEQUENCE {
 *       userCertificate INTEGER, revocationDate Time,
 *       crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
 *     crlExtensions [0] EXPLICIT Extensions }
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "certs.h"
#include "crl.h"
#include "der.h"
#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "text.h"

/* Content octets of the extension OIDs (RFC 5280 4.2.1.1, 5.2.3, 5.3.1). */
static const unsigned char oid_aki[] = { 0x55, 0x1d, 0x23 };
static const unsigned char oid_crl_number[] = { 0x55, 0x1d, 0x14 };

/* crlEntryExtensions with one non-critical reasonCode; the last octet is the
 * ENUMERATED value. */
static const unsigned char reason_exts[] = {
	0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15,
	0x04, 0x03, 0x0a, 0x01, 0x00
};

/* ------------------------------------------------------------ reasons */

static const struct {
	int code;
	const char *rfc;	/* RFC 5280 5.3.1 name */
	const char *kebab;	/* the engine's command-line spelling */
} reasons[] = {
	{ TCA_REASON_UNSPECIFIED, "unspecified", "unspecified" },
	{ TCA_REASON_KEY_COMPROMISE, "keyCompromise", "key-compromise" },
	{ TCA_REASON_CA_COMPROMISE, "cACompromise", "ca-compromise" },
	{ TCA_REASON_AFFILIATION_CHANGED, "affiliationChanged", "affiliation-changed" },
	{ TCA_REASON_SUPERSEDED, "superseded", "superseded" },
	{ TCA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation",
	    "cessation-of-operation" },
	{ TCA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn", "privilege-withdrawn" },
};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

/* The RFC 5280 reasons the engine refuses, and why. */
static const struct {
	const char *rfc, *kebab, *why;
} refused[] = {
	{ "certificateHold", "certificate-hold",
	    "certificateHold is refused: revocation is irreversible" },
	{ "removeFromCRL", "remove-from-crl",
	    "removeFromCRL is refused: revocation is irreversible" },
	{ "aACompromise", "aa-compromise",
	    "aACompromise does not apply: the engine issues no attribute certificates" },
};
#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

const char *
tca_crl_reason_name(int reason)
{
	size_t i;

	for (i = 0; i < NREASONS; i++)
		if (reasons[i].code == reason)
			return reasons[i].rfc;
	return NULL;
}

int
tca_crl_reason_parse(const char *name, int *reason_ptr, char *why, size_t whylen)
{
	char shown[64];
	size_t i;

	if (name == NULL || reason_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < NREASONS; i++) {
		if (strcasecmp(name, reasons[i].rfc) == 0 ||
		    strcasecmp(name, reasons[i].kebab) == 0) {
			*reason_ptr = reasons[i].code;
			return TCA_OK;
		}
	}
	for (i = 0; i < NREFUSED; i++) {
		if (strcasecmp(name, refused[i].rfc) == 0 ||
		    strcasecmp(name, refused[i].kebab) == 0) {
			tca_setf(why, whylen, "%s", refused[i].why);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	tca_sanitize((const unsigned char *)name, strlen(name), shown, sizeof(shown));
	tca_setf(why, whylen, "unknown revocation reason \"%s\" (accepted: "
	    "unspecified, key-compromise, ca-compromise, affiliation-changed, "
	    "superseded, cessation-of-operation, privilege-withdrawn, or their "
	    "RFC 5280 names)", shown);
	return TCA_ERR_BAD_REQUEST;
}

/* ------------------------------------------------------------ signer */

int
tca_signer_alg_check(enum tca_sig_alg alg, EVP_PKEY *pub)
{
	const struct tca_key_desc *kd = tca_key_desc_by_alg(alg);
	char group[64];
	size_t glen = 0;

	if (kd == NULL || pub == NULL || !EVP_PKEY_is_a(pub, kd->pkey_type))
		return TCA_ERR_INVALID_ARG;
	if (kd->group == NULL)
		return TCA_OK;
	memset(group, 0, sizeof(group));
	if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &glen) != 1) {
		ERR_clear_error();
		return TCA_ERR_INVALID_ARG;
	}
	if (strcmp(group, kd->group) == 0 ||
	    (kd->nist_name != NULL && strcmp(group, kd->nist_name) == 0))
		return TCA_OK;
	return TCA_ERR_INVALID_ARG;
}

/* ------------------------------------------------------------ building */

/* Content length of one revokedCertificates entry; 0 if it is invalid. */
static size_t
entry_content_len(const struct tca_crl_entry *e)
{
	size_t tl;

	if (e->serial == NULL || e->serial_len == 0 ||
	    e->serial_len > TCA_CRL_MAX_SERIAL ||
	    tca_crl_reason_name(e->reason) == NULL ||
	    (tl = tca_der_time_len(e->revoked_at)) == 0)
		return 0;
	return tca_der_uint_len(e->serial, e->serial_len) + tl +
	    (e->reason != TCA_REASON_UNSPECIFIED ? sizeof(reason_exts) : 0);
}

static int
put_entry(unsigned char *b, size_t cap, size_t *pos, const struct tca_crl_entry *e)
{
	if (tca_der_put_hdr(b, cap, pos, 0x30, entry_content_len(e)) != TCA_OK ||
	    tca_der_put_uint(b, cap, pos, e->serial, e->serial_len) != TCA_OK ||
	    tca_der_put_time(b, cap, pos, e->revoked_at) != TCA_OK)
		return TCA_ERR_INTERNAL;
	if (e->reason != TCA_REASON_UNSPECIFIED) {
		if (tca_der_put(b, cap, pos, reason_exts, sizeof(reason_exts)) != TCA_OK)
			return TCA_ERR_INTERNAL;
		b[*pos - 1] = (unsigned char)e->reason;
	}
	return TCA_OK;
}

/* The extension SEQUENCE { extnID, extnValue OCTET STRING } around a value
 * of vlen octets (non-critical: the BOOLEAN is omitted, DER). */
static size_t
ext_len(size_t oidlen, size_t vlen)
{
	size_t c = tca_der_hdr_len(oidlen) + oidlen + tca_der_hdr_len(vlen) + vlen;

	return tca_der_hdr_len(c) + c;
}

static int
put_ext_hdr(unsigned char *b, size_t cap, size_t *pos, const unsigned char *oid,
    size_t oidlen, size_t vlen)
{
	size_t c = tca_der_hdr_len(oidlen) + oidlen + tca_der_hdr_len(vlen) + vlen;

	if (tca_der_put_hdr(b, cap, pos, 0x30, c) != TCA_OK ||
	    tca_der_put_hdr(b, cap, pos, 0x06, oidlen) != TCA_OK ||
	    tca_der_put(b, cap, pos, oid, oidlen) != TCA_OK ||
	    tca_der_put_hdr(b, cap, pos, 0x04, vlen) != TCA_OK)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

int
tca_crl_build(const struct tca_issuer *ca, const struct tca_signer *signer,
    const struct tca_crl_params *p, const struct tca_crl_entry *entries, size_t n,
    unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char num[8];
	unsigned char *algder = NULL, *tbs = NULL;
	EVP_PKEY *pub = NULL;
	size_t alglen = 0, tl_this, tl_next, revoked = 0, el, i;
	size_t kid, akiv, numl, extseq, exts, tbs_content, tbslen = 0, pos = 0;
	int r = TCA_ERR_INVALID_ARG;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (len_ptr != NULL)
		*len_ptr = 0;
	if (ca == NULL || signer == NULL || p == NULL || der_ptr == NULL ||
	    len_ptr == NULL || (entries == NULL && n > 0) ||
	    n > TCA_CRL_MAX_ENTRIES || ca->subject.p == NULL ||
	    ca->ski_len == 0 || ca->ski_len > TCA_ISSUER_MAX_SKI)
		return TCA_ERR_INVALID_ARG;
	if (p->next_update <= p->this_update ||
	    (tl_this = tca_der_time_len(p->this_update)) == 0 ||
	    (tl_next = tca_der_time_len(p->next_update)) == 0) {
		log_error_f("bad CRL validity %lld..%lld", (long long)p->this_update,
		    (long long)p->next_update);
		return TCA_ERR_INVALID_ARG;
	}

	/* pass 1: sizes */
	for (i = 0; i < n; i++) {
		if ((el = entry_content_len(&entries[i])) == 0) {
			log_error_f("CRL entry %zu: bad serial, time or reason %d", i,
			    entries[i].reason);
			return TCA_ERR_INVALID_ARG;
		}
		revoked += tca_der_hdr_len(el) + el;
	}
	tca_der_u64_mag(p->crl_number, num);
	kid = tca_der_hdr_len(ca->ski_len) + ca->ski_len;	/* [0] keyIdentifier */
	akiv = tca_der_hdr_len(kid) + kid;			/* AuthorityKeyIdentifier */
	numl = tca_der_uint_len(num, sizeof(num));
	extseq = ext_len(sizeof(oid_aki), akiv) + ext_len(sizeof(oid_crl_number), numl);
	exts = tca_der_hdr_len(extseq) + extseq;		/* SEQUENCE OF */

	if ((r = tca_issuer_pubkey(ca, &pub)) != TCA_OK) {
		log_error_f("tenant CA key does not decode: %s", tca_strerror(r));
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	if ((r = tca_signer_alg_check(signer->alg, pub)) != TCA_OK) {
		log_error_f("signer algorithm %d is not the CA key's", (int)signer->alg);
		goto out;
	}
	if ((r = tca_sig_alg_der(signer->alg, &algder, &alglen)) != TCA_OK)
		goto out;

	r = TCA_ERR_INTERNAL;
	tbs_content = 3 + alglen + ca->subject.len + tl_this + tl_next +
	    (n > 0 ? tca_der_hdr_len(revoked) + revoked : 0) +
	    tca_der_hdr_len(exts) + exts;
	tbslen = tca_der_hdr_len(tbs_content) + tbs_content;
	if (revoked > 0xffffffffUL || tbs_content > 0xffffffffUL)
		goto out;
	if ((tbs = OPENSSL_malloc(tbslen)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}

	/* pass 2: the TBSCertList */
	if (tca_der_put_hdr(tbs, tbslen, &pos, 0x30, tbs_content) != TCA_OK ||
	    tca_der_put(tbs, tbslen, &pos, "\x02\x01\x01", 3) != TCA_OK ||
	    tca_der_put(tbs, tbslen, &pos, algder, alglen) != TCA_OK ||
	    tca_der_put(tbs, tbslen, &pos, ca->subject.p, ca->subject.len) != TCA_OK ||
	    tca_der_put_time(tbs, tbslen, &pos, p->this_update) != TCA_OK ||
	    tca_der_put_time(tbs, tbslen, &pos, p->next_update) != TCA_OK)
		goto out;
	if (n > 0) {
		if (tca_der_put_hdr(tbs, tbslen, &pos, 0x30, revoked) != TCA_OK)
			goto out;
		for (i = 0; i < n; i++)
			if (put_entry(tbs, tbslen, &pos, &entries[i]) != TCA_OK)
				goto out;
	}
	/* crlExtensions: authorityKeyIdentifier, cRLNumber */
	if (tca_der_put_hdr(tbs, tbslen, &pos, 0xa0, exts) != TCA_OK ||
	    tca_der_put_hdr(tbs, tbslen, &pos, 0x30, extseq) != TCA_OK ||
	    put_ext_hdr(tbs, tbslen, &pos, oid_aki, sizeof(oid_aki), akiv) != TCA_OK ||
	    tca_der_put_hdr(tbs, tbslen, &pos, 0x30, kid) != TCA_OK ||
	    tca_der_put_hdr(tbs, tbslen, &pos, 0x80, ca->ski_len) != TCA_OK ||
	    tca_der_put(tbs, tbslen, &pos, ca->ski, ca->ski_len) != TCA_OK ||
	    put_ext_hdr(tbs, tbslen, &pos, oid_crl_number, sizeof(oid_crl_number),
	    numl) != TCA_OK ||
	    tca_der_put_uint(tbs, tbslen, &pos, num, sizeof(num)) != TCA_OK ||
	    pos != tbslen) {
		log_error_f("CRL writer: %zu of %zu octets", pos, tbslen);
		goto out;
	}

	r = tca_sign_assemble_der(tbs, tbslen, algder, alglen, signer, pub,
	    der_ptr, len_ptr);
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	OPENSSL_free(tbs);
	OPENSSL_free(algder);
	EVP_PKEY_free(pub);
	return r;
}

/* ------------------------------------------------------------ reading */

static int
oid_is(const struct tca_der_tlv *t, const unsigned char *oid, size_t len)
{
	return t->p != NULL && t->tag == 0x06 && t->vlen == len &&
	    memcmp(t->val, oid, len) == 0;
}

/* The value of a DER INTEGER (exactly the contents of value) that must fit
 * in 64 bits and not be negative. */
static int
get_u64(const struct tca_der_tlv *value, uint64_t *out)
{
	struct tca_der_tlv in;
	const unsigned char *v;
	size_t q = 0, vl, i;
	uint64_t x = 0;

	if (tca_der_get_tag(value->val, value->vlen, &q, 0x02, &in) != TCA_OK ||
	    q != value->vlen || in.vlen == 0 || (in.val[0] & 0x80) != 0)
		return TCA_ERR_BAD_REQUEST;
	v = in.val;
	vl = in.vlen;
	if (vl > 1 && v[0] == 0) {
		v++;
		vl--;
	}
	if (vl > 8)
		return TCA_ERR_BAD_REQUEST;
	for (i = 0; i < vl; i++)
		x = (x << 8) | v[i];
	*out = x;
	return TCA_OK;
}

/* revokedCertificates: each entry { INTEGER, Time, Extensions OPTIONAL } */
static int
count_entries(const struct tca_der_tlv *rc, size_t *n_ptr)
{
	struct tca_der_tlv e, serial, t, ex;
	size_t q = 0, k, n = 0;
	int64_t v;

	while (q < rc->vlen) {
		k = 0;
		if (tca_der_get_tag(rc->val, rc->vlen, &q, 0x30, &e) != TCA_OK ||
		    tca_der_get_tag(e.val, e.vlen, &k, 0x02, &serial) != TCA_OK ||
		    serial.vlen == 0 ||
		    tca_der_get(e.val, e.vlen, &k, &t) != TCA_OK ||
		    tca_der_get_time(&t, &v) != TCA_OK ||
		    tca_der_get_opt(e.val, e.vlen, &k, 0x30, &ex) != TCA_OK ||
		    k != e.vlen)
			return TCA_ERR_BAD_REQUEST;
		n++;
	}
	*n_ptr = n;
	return TCA_OK;
}

int
tca_crl_info(const unsigned char *der, size_t len, uint64_t *number_ptr,
    int64_t *this_update_ptr, int64_t *next_update_ptr, size_t *n_entries_ptr)
{
	struct tca_der_tlv crl, tbs, alg, sig, ver, sa, iss, tu, nu, rc, ex, seq;
	struct tca_der_tlv ext, oid, value;
	size_t pos = 0, q, n = 0;
	int64_t this_update = 0, next_update = 0;
	uint64_t number = 0;
	int crit, have_number = 0;

	if (der == NULL ||
	    tca_der_get_tag(der, len, &pos, 0x30, &crl) != TCA_OK || pos != len)
		return TCA_ERR_BAD_REQUEST;
	pos = 0;
	if (tca_der_get_tag(crl.val, crl.vlen, &pos, 0x30, &tbs) != TCA_OK ||
	    tca_der_get_tag(crl.val, crl.vlen, &pos, 0x30, &alg) != TCA_OK ||
	    tca_der_get_tag(crl.val, crl.vlen, &pos, 0x03, &sig) != TCA_OK ||
	    pos != crl.vlen)
		return TCA_ERR_BAD_REQUEST;

	pos = 0;
	if (tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0x02, &ver) != TCA_OK ||
	    (ver.p != NULL && (ver.vlen != 1 || ver.val[0] != 1)) ||
	    tca_der_get_tag(tbs.val, tbs.vlen, &pos, 0x30, &sa) != TCA_OK ||
	    tca_der_get_tag(tbs.val, tbs.vlen, &pos, 0x30, &iss) != TCA_OK ||
	    tca_der_get(tbs.val, tbs.vlen, &pos, &tu) != TCA_OK ||
	    tca_der_get_time(&tu, &this_update) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	memset(&nu, 0, sizeof(nu));
	if (pos < tbs.vlen && (tbs.val[pos] == 0x17 || tbs.val[pos] == 0x18) &&
	    (tca_der_get(tbs.val, tbs.vlen, &pos, &nu) != TCA_OK ||
	    tca_der_get_time(&nu, &next_update) != TCA_OK))
		return TCA_ERR_BAD_REQUEST;
	if (tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0x30, &rc) != TCA_OK ||
	    (rc.p != NULL && count_entries(&rc, &n) != TCA_OK) ||
	    tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0xa0, &ex) != TCA_OK ||
	    pos != tbs.vlen || ex.p == NULL)
		return TCA_ERR_BAD_REQUEST;

	/* [0] EXPLICIT Extensions: exactly one SEQUENCE */
	q = 0;
	if (tca_der_get_tag(ex.val, ex.vlen, &q, 0x30, &seq) != TCA_OK ||
	    q != ex.vlen)
		return TCA_ERR_BAD_REQUEST;
	for (q = 0; q < seq.vlen; ) {
		if (tca_der_get(seq.val, seq.vlen, &q, &ext) != TCA_OK ||
		    tca_der_ext_split(&ext, &oid, &crit, &value) != TCA_OK)
			return TCA_ERR_BAD_REQUEST;
		if (!oid_is(&oid, oid_crl_number, sizeof(oid_crl_number)))
			continue;
		if (have_number || get_u64(&value, &number) != TCA_OK)
			return TCA_ERR_BAD_REQUEST;
		have_number = 1;
	}
	if (!have_number)
		return TCA_ERR_BAD_REQUEST;

	if (number_ptr != NULL)
		*number_ptr = number;
	if (this_update_ptr != NULL)
		*this_update_ptr = this_update;
	if (next_update_ptr != NULL)
		*next_update_ptr = next_update;
	if (n_entries_ptr != NULL)
		*n_entries_ptr = n;
	return TCA_OK;
}
