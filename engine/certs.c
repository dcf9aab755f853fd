/*
 * certs.c - certificate assembly and issuance policy (certs.h).
 *
 * The TBSCertificate is built with OpenSSL's X509 API, but OpenSSL never
 * signs: the CA key lives on the token.  We set the TBS signature
 * AlgorithmIdentifier by hand, re-encode the TBS, pass its bytes to the
 * tca_signer and wrap tbs + AlgorithmIdentifier + BIT STRING(signature) in the
 * outer SEQUENCE with a tiny DER writer.  The result is parsed back and its
 * signature checked against the issuer key, so a signer that returns garbage
 * (wrong key, wrong mechanism, token fault) can never produce a certificate.
 *
 * Everything a CSR or a "current certificate" contains comes from an untrusted
 * device through a front end: sizes are bounded before parsing, parsing must
 * consume every byte, and strings echoed in a refusal reason are sanitized.
 *
 * CA re-issuance is the exception to "build with the X509 API": it splits the
 * old certificate's DER and reassembles the TBSCertificate from the old bytes
 * plus a new validity (and serial), because any re-encoding risks a changed
 * SKI, name or extension - and with it every device certificate that chains
 * to the old CA (cf. hashicorp/vault#16461).
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "csr.h"
#include "der.h"
#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "store.h"
#include "tca-error.h"
#include "tenant-policy.h"
#include "tenant.h"
#include "text.h"

#define CERTS_MAX_INPUT	(64 * 1024)	/* a current certificate, DER or PEM */
#define CERTS_MAX_SIG	1024		/* RSA-8192 signature = 1024 bytes */
#define CERTS_MAX_DAYS	(100U * 366U)	/* sanity bound on validity periods */
#define SECS_PER_DAY	86400

/* ------------------------------------------------------------ helpers */

/* Truncating snprintf: for refusal reasons, and for diff values where
 * truncation is intended (and -Wformat-truncation would object). */


/* Device-chosen bytes echoed in a reason: printable ASCII only, so the message
 * stays valid UTF-8 and harmless in logs. */

/* RFC 5280 4.2.1.2 method 1: SHA-1 over the subjectPublicKey BIT STRING
 * contents.  Computed here rather than via the "hash" config value so the
 * result does not depend on OpenSSL's defaults. */
static int
key_id_of(X509_PUBKEY *xpk, ASN1_OCTET_STRING **out)
{
	const unsigned char *bits = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ASN1_OCTET_STRING *os = NULL;
	int bitslen = 0, r = TCA_ERR_CRYPTO;

	*out = NULL;
	if (xpk == NULL ||
	    X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) != 1 ||
	    bits == NULL || bitslen <= 0)
		goto out;
	if (EVP_Digest(bits, (size_t)bitslen, md, &mdlen, EVP_sha1(), NULL) != 1)
		goto out;
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, md, (int)mdlen) != 1)
		goto out;
	*out = os;
	os = NULL;
	r = TCA_OK;
 out:
	ASN1_OCTET_STRING_free(os);
	return r;
}

/* ------------------------------------------------------------ serials */

int
tca_random_serial(unsigned char serial[TCA_SERIAL_LEN])
{
	int i;

	if (serial == NULL)
		return TCA_ERR_INVALID_ARG;
	if (RAND_bytes(serial, TCA_SERIAL_LEN) != 1) {
		tca_log_ossl_errors("RAND_bytes");
		return TCA_ERR_CRYPTO;
	}
	/* Redraw a zero first byte instead of forcing it, so the first byte
	 * stays uniform over 0x01..0x7f. */
	serial[0] &= 0x7f;
	for (i = 0; serial[0] == 0 && i < 64; i++) {
		if (RAND_bytes(serial, 1) != 1) {
			tca_log_ossl_errors("RAND_bytes");
			return TCA_ERR_CRYPTO;
		}
		serial[0] &= 0x7f;
	}
	if (serial[0] == 0)
		serial[0] = 0x01;
	return TCA_OK;
}

static int
set_random_serial(X509 *x)
{
	unsigned char serial[TCA_SERIAL_LEN];
	ASN1_INTEGER *ai = NULL;
	int r = TCA_ERR_INTERNAL;

	if ((r = tca_random_serial(serial)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	/* The magnitude is stored as is: its first byte is 0x01..0x7f, so it
	 * is already the minimal, positive DER content. */
	if ((ai = ASN1_INTEGER_new()) == NULL ||
	    ASN1_STRING_set(ai, serial, TCA_SERIAL_LEN) != 1 ||
	    X509_set_serialNumber(x, ai) != 1)
		goto out;
	r = TCA_OK;
 out:
	ASN1_INTEGER_free(ai);
	return r;
}

/* ------------------------------------------------------------ DER assembly */

/* The signatureAlgorithm of alg: parameters absent for ECDSA and Ed25519
 * (RFC 5758 3.2, RFC 8410 3), NULL for sha256WithRSAEncryption (RFC 4055 5). */
static int
sig_alg_set(X509_ALGOR *alg, enum tca_sig_alg sa)
{
	const struct tca_key_desc *kd = tca_key_desc_by_alg(sa);
	ASN1_OBJECT *obj;

	if (kd == NULL || (obj = OBJ_nid2obj(kd->sig_nid)) == NULL)
		return TCA_ERR_INVALID_ARG;
	if (X509_ALGOR_set0(alg, obj, kd->sig_params_null ? V_ASN1_NULL : V_ASN1_UNDEF,
	    NULL) != 1)
		return TCA_ERR_CRYPTO;
	return TCA_OK;
}

int
tca_sig_alg_der(enum tca_sig_alg alg, unsigned char **der_ptr, size_t *len_ptr)
{
	X509_ALGOR *a = NULL;
	unsigned char *der = NULL;
	int len, r;

	*der_ptr = NULL;
	*len_ptr = 0;
	if ((a = X509_ALGOR_new()) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = sig_alg_set(a, alg)) != TCA_OK)
		goto out;
	if ((len = i2d_X509_ALGOR(a, &der)) <= 0) {
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	*der_ptr = der;
	*len_ptr = (size_t)len;
	r = TCA_OK;
 out:
	X509_ALGOR_free(a);
	return r;
}

/* 1 if sig is alg's signature over msg under pub.  The key must be of alg's
 * type: OpenSSL would otherwise pick a default digest (an ECDSA signature
 * declared as Ed25519 would verify). */
static int
sig_verifies(EVP_PKEY *pub, enum tca_sig_alg alg, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen)
{
	const struct tca_key_desc *kd = tca_key_desc_by_alg(alg);

	/* Ed25519 has no digest (md NULL): it signs the message itself */
	if (kd == NULL || !EVP_PKEY_is_a(pub, kd->pkey_type))
		return 0;
	return tca_sig_verify(pub, kd->md, msg, msglen, sig, siglen);
}

/*
 * (certs.h)  Used for certificates here; crl.c and ocsp.c use it for CRLs
 * and OCSP responses, which have the same shape.
 *
 * The certificate is not parsed back: the verification covers the signed
 * bytes, and the DER writer around them is fixed code (unit tests parse
 * every kind of certificate it makes).  Parsing back cost 19 % of a device
 * certificate (docs/performance.md, fix F2).
 */
int
tca_sign_assemble_der(const unsigned char *tbs, size_t tbslen,
    const unsigned char *algder, size_t alglen, const struct tca_signer *signer,
    EVP_PKEY *issuer_pub, unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char sig[CERTS_MAX_SIG];
	unsigned char *der = NULL;
	size_t siglen = sizeof(sig), content, total, pos = 0;
	int r = TCA_ERR_INTERNAL;

	*der_ptr = NULL;
	*len_ptr = 0;
	if (signer == NULL || signer->sign == NULL || issuer_pub == NULL ||
	    tbs == NULL || tbslen == 0 || algder == NULL || alglen == 0)
		return TCA_ERR_INVALID_ARG;

	if ((r = signer->sign(signer->ctx, tbs, tbslen, sig, &siglen)) != TCA_OK) {
		log_error_f("signer failed: %s", tca_strerror(r));
		goto out;
	}
	if (siglen == 0 || siglen > sizeof(sig)) {
		log_error_f("signer returned %zu signature bytes", siglen);
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	if (!sig_verifies(issuer_pub, signer->alg, tbs, tbslen, sig, siglen)) {
		log_error_f("signature from the CA key does not verify; "
		    "refusing to return the certificate");
		r = TCA_ERR_CRYPTO;
		goto out;
	}

	r = TCA_ERR_INTERNAL;
	if (tbslen > 0xffffffffUL || alglen > 0xffffffffUL)
		goto out;
	/* BIT STRING content = unused-bits octet (0) + signature */
	content = tbslen + alglen + tca_der_hdr_len(siglen + 1) + siglen + 1;
	total = tca_der_hdr_len(content) + content;
	if (content > 0xffffffffUL || total > LONG_MAX)
		goto out;
	if ((der = OPENSSL_malloc(total)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if (tca_der_put_hdr(der, total, &pos, 0x30, content) != TCA_OK ||
	    tca_der_put(der, total, &pos, tbs, tbslen) != TCA_OK ||
	    tca_der_put(der, total, &pos, algder, alglen) != TCA_OK ||
	    tca_der_put_hdr(der, total, &pos, 0x03, siglen + 1) != TCA_OK ||
	    tca_der_put(der, total, &pos, "", 1) != TCA_OK ||
	    tca_der_put(der, total, &pos, sig, siglen) != TCA_OK ||
	    pos != total)
		goto out;
	*der_ptr = der;
	*len_ptr = total;
	der = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	OPENSSL_free(der);
	OPENSSL_cleanse(sig, sizeof(sig));
	return r;
}

/* The certificate tca_sign_assemble_der() made, as an X509 (for the CA paths,
 * whose callers want one). */
static int
der_to_x509(unsigned char *der, size_t len, X509 **out)
{
	int r = tca_cert_from_der(der, len, out);

	OPENSSL_free(der);
	if (r != TCA_OK) {
		log_error_f("assembled certificate does not parse back");
		return TCA_ERR_CRYPTO;
	}
	return TCA_OK;
}

/*
 * Signs x's TBSCertificate with signer: the certificate's DER in *der_ptr
 * (caller OPENSSL_free()s) and *len_ptr.  x must be complete except for the
 * signature.
 */
static int
sign_and_assemble(X509 *x, const struct tca_signer *signer,
    EVP_PKEY *issuer_pub, unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char *tbs = NULL, *algder = NULL;
	X509_ALGOR *tbsalg, *alg = NULL;
	int tbslen, alglen, r = TCA_ERR_INTERNAL;

	*der_ptr = NULL;
	*len_ptr = 0;
	if (signer == NULL || signer->sign == NULL || issuer_pub == NULL)
		return TCA_ERR_INVALID_ARG;

	/* OpenSSL only exposes the TBS AlgorithmIdentifier as const because
	 * it expects to fill it in X509_sign(); we sign elsewhere, and
	 * i2d_re_X509_tbs() below re-encodes whatever it holds. */
	tbsalg = (X509_ALGOR *)(uintptr_t)X509_get0_tbs_sigalg(x);
	if ((r = sig_alg_set(tbsalg, signer->alg)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	if ((alg = X509_ALGOR_new()) == NULL)
		goto out;
	if ((r = sig_alg_set(alg, signer->alg)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	if ((tbslen = i2d_re_X509_tbs(x, &tbs)) <= 0 ||
	    (alglen = i2d_X509_ALGOR(alg, &algder)) <= 0)
		goto out;
	r = tca_sign_assemble_der(tbs, (size_t)tbslen, algder, (size_t)alglen,
	    signer, issuer_pub, der_ptr, len_ptr);
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	X509_ALGOR_free(alg);
	OPENSSL_free(tbs);
	OPENSSL_free(algder);
	return r;
}

/* ------------------------------------------------------------ extensions */

static int
add_basic_constraints(X509 *x, int ca)
{
	BASIC_CONSTRAINTS *bc = NULL;
	int r = TCA_ERR_CRYPTO;

	/* ca = 0 is the DEFAULT FALSE, omitted: the value is an empty
	 * SEQUENCE, as DER requires. No pathLenConstraint. */
	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		goto out;
	bc->ca = ca ? 0xff : 0;
	if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = TCA_OK;
 out:
	BASIC_CONSTRAINTS_free(bc);
	return r;
}

/* bits: KU bit numbers of RFC 5280 4.2.1.3 (0 = digitalSignature). */
static int
add_key_usage(X509 *x, const int *bits, size_t nbits)
{
	ASN1_BIT_STRING *ku = NULL;
	size_t i;
	int r = TCA_ERR_CRYPTO;

	if ((ku = ASN1_BIT_STRING_new()) == NULL)
		goto out;
	for (i = 0; i < nbits; i++)
		if (ASN1_BIT_STRING_set_bit(ku, bits[i], 1) != 1)
			goto out;
	if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = TCA_OK;
 out:
	ASN1_BIT_STRING_free(ku);
	return r;
}

static int
add_eku_client_auth(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *obj = NULL;
	int r = TCA_ERR_CRYPTO;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL ||
	    (obj = OBJ_nid2obj(NID_client_auth)) == NULL ||
	    sk_ASN1_OBJECT_push(eku, obj) <= 0)
		goto out;
	if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = TCA_OK;
 out:
	/* OBJ_nid2obj() objects are static: ASN1_OBJECT_free() is a no-op */
	EXTENDED_KEY_USAGE_free(eku);
	return r;
}

/*
 * Copies the CSR's SubjectPublicKeyInfo into x as it is (algorithm OID, its
 * parameters, key bits).  X509_set_pubkey() would re-encode the key and decode
 * it again through OpenSSL 3.0's decoder framework, which was 27 % of the cost
 * of a certificate (docs/performance.md, fix F1); the bytes are the same.
 */
static int
copy_spki(X509 *x, const tca_csr *csr)
{
	X509_PUBKEY *dst = X509_get_X509_PUBKEY(x);
	const ASN1_OBJECT *aobj = NULL;
	const void *pval = NULL;
	ASN1_OBJECT *obj = NULL;
	unsigned char *copy = NULL;
	void *pv = NULL;
	int ptype = V_ASN1_UNDEF;

	if (dst == NULL || csr->key_alg == NULL || csr->key == NULL ||
	    csr->key_len == 0 || csr->key_len > INT_MAX)
		return TCA_ERR_CRYPTO;
	X509_ALGOR_get0(&aobj, &ptype, &pval, csr->key_alg);
	if ((obj = OBJ_dup(aobj)) == NULL)
		goto fail;
	if (ptype == V_ASN1_OBJECT) {
		if ((pv = OBJ_dup(pval)) == NULL)
			goto fail;
	} else if (ptype == V_ASN1_SEQUENCE) {
		if ((pv = ASN1_STRING_dup(pval)) == NULL)
			goto fail;
	} else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
		goto fail;	/* parameters of a kind no accepted key type has */
	if ((copy = OPENSSL_memdup(csr->key, csr->key_len)) == NULL ||
	    X509_PUBKEY_set0_param(dst, obj, ptype, pv, copy, (int)csr->key_len) != 1)
		goto fail;
	return TCA_OK;
 fail:
	ASN1_OBJECT_free(obj);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pv);
	else if (ptype == V_ASN1_SEQUENCE)
		ASN1_STRING_free(pv);
	OPENSSL_free(copy);
	tca_log_ossl_errors(__func__);
	return TCA_ERR_CRYPTO;
}

/* SKI of x's own key, then AKI keyIdentifier = aki (or the SKI itself when
 * aki is NULL: self-signed). */
static int
add_key_ids(X509 *x, const ASN1_OCTET_STRING *aki)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	int r = TCA_ERR_INTERNAL;

	if ((r = key_id_of(X509_get_X509_PUBKEY(x), &ski)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(aki != NULL ? aki : ski)) == NULL)
		goto out;
	if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = TCA_OK;
 out:
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return r;
}

/* ------------------------------------------------------------ CA cert */

static int
country_valid(const char *c)
{
	return strlen(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' &&
	    c[1] >= 'A' && c[1] <= 'Z';
}

int
tca_cert_build_ca(const struct tca_ca_params *p, EVP_PKEY *pub,
    const struct tca_signer *signer, X509 **cert_ptr)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	time_t nb;
	int r = TCA_ERR_INTERNAL;
	static const int ku_bits[] = { 5 /* keyCertSign */, 6 /* cRLSign */ };

	if (cert_ptr != NULL)
		*cert_ptr = NULL;
	if (p == NULL || pub == NULL || signer == NULL || cert_ptr == NULL ||
	    p->common_name == NULL || *p->common_name == '\0' ||
	    p->days == 0 || p->days > CERTS_MAX_DAYS)
		return TCA_ERR_INVALID_ARG;
	if (p->country != NULL && *p->country != '\0' &&
	    !country_valid(p->country)) {
		log_error_f("country \"%s\" is not two letters A-Z", p->country);
		return TCA_ERR_INVALID_ARG;
	}

	r = TCA_ERR_CRYPTO;
	if ((x = X509_new()) == NULL || (name = X509_NAME_new()) == NULL)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto out;
	if ((r = set_random_serial(x)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;

	if (p->country != NULL && *p->country != '\0' &&
	    X509_NAME_add_entry_by_NID(name, NID_countryName,
	    V_ASN1_PRINTABLESTRING, (const unsigned char *)p->country, 2,
	    -1, 0) != 1)
		goto out;
	if (p->organization != NULL && *p->organization != '\0' &&
	    X509_NAME_add_entry_by_NID(name, NID_organizationName,
	    MBSTRING_UTF8, (const unsigned char *)p->organization, -1,
	    -1, 0) != 1) {
		log_error_f("organization is not valid UTF-8 of 1..64 characters");
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)p->common_name, -1, -1, 0) != 1) {
		log_error_f("common name is not valid UTF-8 of 1..64 characters");
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if (X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto out;

	nb = p->not_before;
	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, &nb) == NULL)
		goto out;
	if (X509_set_pubkey(x, pub) != 1)
		goto out;

	if ((r = add_basic_constraints(x, 1)) != TCA_OK ||
	    (r = add_key_usage(x, ku_bits, 2)) != TCA_OK ||
	    (r = add_key_ids(x, NULL)) != TCA_OK)
		goto out;

	if ((r = sign_and_assemble(x, signer, pub, &der, &der_len)) == TCA_OK)
		r = der_to_x509(der, der_len, cert_ptr);
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

/* ------------------------------------------------------------ device cert */

/* CN, O and OU of the CSR subject in order, multi-valued RDNs kept, string
 * types kept.  Anything else is dropped (tca_csr_check refuses it anyway). */
static int
device_subject(const X509_NAME *src, X509_NAME **out)
{
	const X509_NAME_ENTRY *ne;
	const ASN1_STRING *val;
	X509_NAME *name = NULL;
	int i, n, nid, set, prev_set = -1, added = 0, r = TCA_ERR_CRYPTO;

	*out = NULL;
	if ((name = X509_NAME_new()) == NULL)
		goto out;
	n = X509_NAME_entry_count(src);
	for (i = 0; i < n; i++) {
		ne = X509_NAME_get_entry(src, i);
		nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne));
		if (nid != NID_commonName && nid != NID_organizationName &&
		    nid != NID_organizationalUnitName)
			continue;
		val = X509_NAME_ENTRY_get_data(ne);
		set = X509_NAME_ENTRY_set(ne);
		/* set -1: join the previous RDN; 0: start a new one */
		if (X509_NAME_add_entry_by_NID(name, nid, ASN1_STRING_type(val),
		    ASN1_STRING_get0_data(val), ASN1_STRING_length(val), -1,
		    (added > 0 && set == prev_set) ? -1 : 0) != 1)
			goto out;
		prev_set = set;
		added++;
	}
	if (added == 0) {
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	*out = name;
	name = NULL;
	r = TCA_OK;
 out:
	X509_NAME_free(name);
	return r;
}

/* Appends s percent-encoded (RFC 3986 2.1: every byte outside unreserved as
 * %XX, uppercase) to out at *pos; 0 if it does not fit. */
static int
pct_encode(const char *s, char *out, size_t outsz, size_t *pos)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = (const unsigned char *)s;

	for (; *u != '\0'; u++) {
		if ((*u >= 'A' && *u <= 'Z') || (*u >= 'a' && *u <= 'z') ||
		    (*u >= '0' && *u <= '9') || *u == '-' || *u == '.' ||
		    *u == '_' || *u == '~') {
			if (*pos + 1 >= outsz)
				return 0;
			out[(*pos)++] = (char)*u;
		} else {
			if (*pos + 3 >= outsz)
				return 0;
			out[(*pos)++] = '%';
			out[(*pos)++] = hex[*u >> 4];
			out[(*pos)++] = hex[*u & 0x0f];
		}
	}
	out[*pos] = '\0';
	return 1;
}

#define SAN_URI_PREFIX	"urn:tca:device:"
/* prefix + 3 * 64 (tenant) + ':' + 3 * 64 (device id) + NUL */
#define SAN_URI_MAX	(sizeof(SAN_URI_PREFIX) + 3 * TCA_TENANT_MAX + 1 + \
	3 * TCA_DEVICE_ID_MAX + 1)

/* urn:tca:device:<tenant>:<device-id>, both percent-encoded (certs.h). */
static int
san_uri(const char *tenant, const char *device_id, char *out, size_t outsz)
{
	size_t pos = sizeof(SAN_URI_PREFIX) - 1;

	if (outsz < SAN_URI_MAX)
		return TCA_ERR_INTERNAL;
	memcpy(out, SAN_URI_PREFIX, pos);
	if (!pct_encode(tenant, out, outsz, &pos) || pos + 1 >= outsz)
		return TCA_ERR_INTERNAL;
	out[pos++] = ':';
	if (!pct_encode(device_id, out, outsz, &pos))
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* The device's subjectAltName (certs.h), non-critical; nothing for NONE. */
static int
add_subject_alt_name(X509 *x, const struct tca_device_params *p)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	char uri[SAN_URI_MAX];
	const char *val;
	int r = TCA_ERR_CRYPTO;

	if (p->san == TCA_SAN_NONE)
		return TCA_OK;
	if (p->san == TCA_SAN_URI) {
		if ((r = san_uri(p->tenant, p->device_id, uri, sizeof(uri))) != TCA_OK)
			goto out;
		r = TCA_ERR_CRYPTO;
		val = uri;
	} else
		val = p->device_id;
	if ((gens = GENERAL_NAMES_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, val, (int)strlen(val)) != 1 ||
	    (gn = GENERAL_NAME_new()) == NULL)
		goto out;
	GENERAL_NAME_set0_value(gn, p->san == TCA_SAN_URI ? GEN_URI : GEN_DNS, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, gn) <= 0)
		goto out;
	gn = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = TCA_OK;
 out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return r;
}

/* The SAN arguments: TCA_OK, TCA_ERR_INVALID_ARG, or the dNSName refusal. */
static int
san_params_check(const struct tca_device_params *p, char *why, size_t whylen)
{
	if (p->san == TCA_SAN_NONE)
		return TCA_OK;
	if (p->san != TCA_SAN_URI && p->san != TCA_SAN_DNS)
		return TCA_ERR_INVALID_ARG;
	if (p->tenant == NULL || p->device_id == NULL || *p->tenant == '\0' ||
	    *p->device_id == '\0' || strlen(p->tenant) > TCA_TENANT_MAX ||
	    strlen(p->device_id) > TCA_DEVICE_ID_MAX)
		return TCA_ERR_INVALID_ARG;
	if (p->san == TCA_SAN_DNS && !tca_dns_name_valid(p->device_id)) {
		tca_setf(why, whylen, "device id is not a DNS name (san=dns)");
		return TCA_ERR_POLICY_VIOLATION;
	}
	return TCA_OK;
}

int
tca_cert_issue_device(const struct tca_issuer *ca, const struct tca_signer *signer,
    const tca_csr *csr, const struct tca_device_params *p, struct tca_cert_info *info,
    unsigned char **der_ptr, char *why, size_t whylen)
{
	X509 *x = NULL;
	X509_NAME *subj = NULL, *issuer = NULL;
	EVP_PKEY *dev_pub, *ca_pub = NULL;
	ASN1_OCTET_STRING *ca_ski = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	int64_t na;
	unsigned int days;
	time_t t_nb, t_na;
	int ku_bits[2], nku = 0, r = TCA_ERR_INTERNAL;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (ca == NULL || signer == NULL || csr == NULL || p == NULL ||
	    der_ptr == NULL || p->default_days == 0 ||
	    p->default_days > CERTS_MAX_DAYS)
		return TCA_ERR_INVALID_ARG;
	if ((dev_pub = csr->pkey) == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = san_params_check(p, why, whylen)) != TCA_OK)
		return r;

	if (ca->not_before > (int64_t)p->now || ca->not_after <= (int64_t)p->now) {
		tca_setf(why, whylen, "tenant CA certificate is not valid at issuance time");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	/* The engine never issues for longer than its policy allows, whatever
	 * the front end asks for. */
	days = p->days == 0 ? p->default_days : p->days;
	if (days > p->default_days)
		days = p->default_days;
	na = (int64_t)p->now + (int64_t)days * SECS_PER_DAY;
	if (na > ca->not_after)
		na = ca->not_after;
	t_nb = p->now;
	t_na = (time_t)na;

	if ((r = tca_issuer_pubkey(ca, &ca_pub)) != TCA_OK ||
	    (r = tca_issuer_name(ca, &issuer)) != TCA_OK) {
		log_error_f("tenant CA certificate's key or name does not decode");
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	r = TCA_ERR_CRYPTO;
	if ((x = X509_new()) == NULL)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto out;
	if ((r = set_random_serial(x)) != TCA_OK)
		goto out;
	if ((r = device_subject(csr->subject, &subj)) != TCA_OK) {
		tca_setf(why, whylen, "CSR subject has no CN, O or OU");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	r = TCA_ERR_CRYPTO;
	if (X509_set_subject_name(x, subj) != 1 ||
	    X509_set_issuer_name(x, issuer) != 1)
		goto out;
	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &t_nb) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &t_na) == NULL)
		goto out;
	if (copy_spki(x, csr) != TCA_OK)
		goto out;

	ku_bits[nku++] = 0;	/* digitalSignature */
	if (EVP_PKEY_get_base_id(dev_pub) == EVP_PKEY_RSA)
		ku_bits[nku++] = 2;	/* keyEncipherment (RSA key transport) */

	if ((ca_ski = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(ca_ski, ca->ski, (int)ca->ski_len) != 1)
		goto out;
	if ((r = add_basic_constraints(x, 0)) != TCA_OK ||
	    (r = add_key_usage(x, ku_bits, (size_t)nku)) != TCA_OK ||
	    (r = add_eku_client_auth(x)) != TCA_OK ||
	    (r = add_subject_alt_name(x, p)) != TCA_OK ||
	    (r = add_key_ids(x, ca_ski)) != TCA_OK)
		goto out;

	if ((r = sign_and_assemble(x, signer, ca_pub, &der, &der_len)) != TCA_OK ||
	    (info != NULL && (r = tca_cert_info_from_der(der, der_len, info)) != TCA_OK))
		goto out;
	*der_ptr = der;
	der = NULL;
 out:
	if (r != TCA_OK) {
		tca_log_ossl_errors(__func__);
		if (info != NULL)
			memset(info, 0, sizeof(*info));
	}
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(ca_ski);
	EVP_PKEY_free(ca_pub);
	X509_NAME_free(issuer);
	X509_NAME_free(subj);
	X509_free(x);
	return r;
}

/* ------------------------------------------------------------ re-enrollment */

static int
cert_parse_any(const unsigned char *data, size_t len, X509 **out)
{
	BIO *bio = NULL;
	X509 *x = NULL;
	int r = TCA_ERR_BAD_REQUEST;

	*out = NULL;
	if (data == NULL || len == 0 || len > CERTS_MAX_INPUT)
		return TCA_ERR_BAD_REQUEST;
	if (data[0] == 0x30 && tca_cert_from_der(data, len, &x) == TCA_OK)
		goto done;
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto out;
 done:
	*out = x;
	x = NULL;
	r = TCA_OK;
 out:
	tca_log_ossl_errors(NULL);
	BIO_free(bio);
	X509_free(x);
	return r;
}

int
tca_reenroll_check(const struct tca_issuer *const *cas, size_t n_cas,
    const unsigned char *current, size_t current_len, const tca_csr *csr,
    char *why, size_t whylen)
{
	X509 *cur = NULL;
	X509_NAME *name = NULL;
	EVP_PKEY *pub = NULL;
	size_t i;
	int found = 0, r = TCA_ERR_INTERNAL;

	if ((cas == NULL && n_cas > 0) || csr == NULL)
		return TCA_ERR_INVALID_ARG;
	if (current_len > CERTS_MAX_INPUT) {
		tca_setf(why, whylen, "current certificate is larger than %d bytes",
		    CERTS_MAX_INPUT);
		return TCA_ERR_BAD_REQUEST;
	}
	if ((r = cert_parse_any(current, current_len, &cur)) != TCA_OK) {
		if (r == TCA_ERR_BAD_REQUEST)
			tca_setf(why, whylen, "current certificate is neither a DER "
			    "nor a PEM X.509 certificate");
		goto out;
	}
	for (i = 0; i < n_cas && !found; i++) {
		X509_NAME_free(name);
		name = NULL;
		EVP_PKEY_free(pub);
		pub = NULL;
		if (cas[i] == NULL ||
		    tca_issuer_name(cas[i], &name) != TCA_OK ||
		    X509_NAME_cmp(name, X509_get_issuer_name(cur)) != 0 ||
		    tca_issuer_pubkey(cas[i], &pub) != TCA_OK)
			continue;
		if (X509_verify(cur, pub) == 1)
			found = 1;
	}
	ERR_clear_error();
	if (!found) {
		tca_setf(why, whylen, "current certificate was not issued by this "
		    "tenant's CA");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if (X509_NAME_cmp(csr->subject, X509_get_subject_name(cur)) != 0) {
		tca_setf(why, whylen, "CSR subject differs from the current "
		    "certificate's subject (RFC 7030 4.2.2)");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	r = TCA_OK;
 out:
	EVP_PKEY_free(pub);
	X509_NAME_free(name);
	X509_free(cur);
	return r;
}

/* ------------------------------------------------------------ info, DER */

/* RFC 2253 one-line form; an oversized name (a device may send many OUs) is
 * cut with a visible "..." rather than failing after issuance. */
static int
name_rfc2253(const X509_NAME *name, char *out, size_t outsz)
{
	BIO *bio = NULL;
	char *p = NULL;
	long n;
	size_t len;
	int r = TCA_ERR_CRYPTO;

	out[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
		goto out;
	if ((n = BIO_get_mem_data(bio, &p)) < 0 || (n > 0 && p == NULL))
		goto out;
	len = (size_t)n;
	if (len >= outsz) {
		log_warn_f("name of %zu characters truncated", len);
		memcpy(out, p, outsz - 1);
		out[outsz - 1] = '\0';
		if (outsz > 4)
			memcpy(out + outsz - 4, "...", 3);
	} else {
		if (len > 0)
			memcpy(out, p, len);
		out[len] = '\0';
	}
	r = TCA_OK;
 out:
	BIO_free(bio);
	return r;
}

/* RFC 2253 form of the DER Name t. */
static int
name_der_rfc2253(const struct tca_der_tlv *t, char *out, size_t outsz)
{
	const unsigned char *p = t->p;
	X509_NAME *name;
	int r;

	if ((name = d2i_X509_NAME(NULL, &p, (long)t->len)) == NULL ||
	    p != t->p + t->len) {
		X509_NAME_free(name);
		return TCA_ERR_BAD_REQUEST;
	}
	r = name_rfc2253(name, out, outsz);
	X509_NAME_free(name);
	return r;
}

int
tca_cert_info_from_der(const unsigned char *der, size_t len, struct tca_cert_info *info)
{
	struct tca_cert_parts c;
	const unsigned char *sp;
	unsigned int mdlen;
	size_t sl;
	int r = TCA_ERR_INTERNAL;

	if (der == NULL || info == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(info, 0, sizeof(*info));
	if (tca_der_cert_split(der, len, &c) != TCA_OK) {
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	/* the magnitude: the INTEGER's contents without a leading 0x00 */
	sp = c.serial.val;
	sl = c.serial.vlen;
	if (sl > 1 && sp[0] == 0x00) {
		sp++;
		sl--;
	}
	if (sl > sizeof(info->serial)) {
		log_error_f("serial number of %zu bytes", sl);
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	memcpy(info->serial, sp, sl);
	info->serial_len = sl;
	if ((r = tca_der_get_time(&c.not_before, &info->not_before)) != TCA_OK ||
	    (r = tca_der_get_time(&c.not_after, &info->not_after)) != TCA_OK ||
	    (r = name_der_rfc2253(&c.subject, info->subject,
	    sizeof(info->subject))) != TCA_OK ||
	    (r = name_der_rfc2253(&c.issuer, info->issuer,
	    sizeof(info->issuer))) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	mdlen = sizeof(info->issuer_hash);
	if (EVP_Digest(c.issuer.p, c.issuer.len, info->issuer_hash, &mdlen,
	    EVP_sha256(), NULL) != 1 || mdlen != sizeof(info->issuer_hash))
		goto out;
	mdlen = sizeof(info->sha256);
	if (EVP_Digest(der, len, info->sha256, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(info->sha256))
		goto out;
	info->der = der;
	info->der_len = len;
	r = TCA_OK;
 out:
	if (r != TCA_OK) {
		tca_log_ossl_errors(__func__);
		memset(info, 0, sizeof(*info));
	}
	return r;
}

int
tca_cert_get_info(X509 *cert, struct tca_cert_info *info, unsigned char **der_ptr)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	int r;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (cert == NULL || info == NULL || der_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = tca_cert_to_der(cert, &der, &der_len)) != TCA_OK ||
	    (r = tca_cert_info_from_der(der, der_len, info)) != TCA_OK) {
		OPENSSL_free(der);
		return r;
	}
	*der_ptr = der;
	return TCA_OK;
}

int
tca_cert_to_der(X509 *cert, unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char *der = NULL;
	int n;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (cert == NULL || der_ptr == NULL || len_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*len_ptr = 0;
	if ((n = i2d_X509(cert, &der)) <= 0) {
		tca_log_ossl_errors(__func__);
		return TCA_ERR_CRYPTO;
	}
	*der_ptr = der;
	*len_ptr = (size_t)n;
	return TCA_OK;
}

int
tca_cert_from_der(const unsigned char *der, size_t len, X509 **cert_ptr)
{
	const unsigned char *p = der;
	X509 *x = NULL;

	if (cert_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*cert_ptr = NULL;
	if (der == NULL || len == 0 || len > LONG_MAX)
		return TCA_ERR_BAD_REQUEST;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		X509_free(x);
		tca_log_ossl_errors(NULL);
		return TCA_ERR_BAD_REQUEST;
	}
	*cert_ptr = x;
	return TCA_OK;
}

/* ------------------------------------------------------------ re-issuance */

/* Validity ::= SEQUENCE { notBefore, notAfter } into buf (>= 36 bytes). */
static int
der_validity(int64_t nb, int64_t na, unsigned char *buf, size_t cap,
    size_t *len_ptr)
{
	unsigned char tmp[64];
	size_t tl = 0, pos = 0;
	int r;

	if ((r = tca_der_put_time(tmp, sizeof(tmp), &tl, nb)) != TCA_OK ||
	    (r = tca_der_put_time(tmp, sizeof(tmp), &tl, na)) != TCA_OK)
		return r;
	if (tca_der_put_hdr(buf, cap, &pos, 0x30, tl) != TCA_OK ||
	    tca_der_put(buf, cap, &pos, tmp, tl) != TCA_OK)
		return TCA_ERR_INTERNAL;
	*len_ptr = pos;
	return TCA_OK;
}

int
tca_cert_reissue_ca(const unsigned char *old, size_t old_len, time_t not_before,
    unsigned int days, enum tca_serial_mode mode, const struct tca_signer *signer,
    unsigned char **der_ptr, size_t *len_ptr)
{
	struct tca_cert_parts c;
	unsigned char serial[TCA_SERIAL_LEN];
	unsigned char ser[2 + TCA_SERIAL_LEN], val[64];
	const unsigned char *ser_p, *ap;
	unsigned char *tbs = NULL;
	size_t ser_len, val_len = 0, content, total, pos = 0;
	int64_t nb = (int64_t)not_before, na;
	X509_ALGOR *old_alg = NULL;
	EVP_PKEY *pub = NULL;
	int nid, old_nid, i, r = TCA_ERR_INTERNAL;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (len_ptr != NULL)
		*len_ptr = 0;
	if (old == NULL || old_len == 0 || signer == NULL || signer->sign == NULL ||
	    der_ptr == NULL || len_ptr == NULL || days == 0 || days > CERTS_MAX_DAYS ||
	    (mode != TCA_SERIAL_NEW && mode != TCA_SERIAL_KEEP))
		return TCA_ERR_INVALID_ARG;
	if ((nid = tca_sig_alg_nid(signer->alg)) == NID_undef)
		return TCA_ERR_INVALID_ARG;
	if (nb > INT64_MAX - (int64_t)days * SECS_PER_DAY)
		return TCA_ERR_INVALID_ARG;
	na = nb + (int64_t)days * SECS_PER_DAY;

	if ((r = tca_der_cert_split(old, old_len, &c)) != TCA_OK) {
		log_error_f("CA certificate is not DER this reader accepts");
		goto out;
	}
	/* RFC 5280 4.1.1.2: both AlgorithmIdentifiers are the same; the new
	 * certificate carries them byte for byte. */
	if (!tca_der_eq(&c.sigalg, &c.outer_alg)) {
		log_error_f("CA certificate's TBS and outer signature "
		    "algorithms differ");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	ap = c.outer_alg.p;
	if ((old_alg = d2i_X509_ALGOR(NULL, &ap, (long)c.outer_alg.len)) == NULL ||
	    ap != c.outer_alg.p + c.outer_alg.len) {
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if ((old_nid = OBJ_obj2nid(old_alg->algorithm)) != nid) {
		log_error_f("signer algorithm %s does not match the CA "
		    "certificate's %s", OBJ_nid2sn(nid),
		    old_nid == NID_undef ? "(unknown)" : OBJ_nid2sn(old_nid));
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if (!tca_der_eq(&c.issuer, &c.subject)) {
		log_error_f("CA certificate is not self-issued");
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if (tca_spki_to_pkey(c.spki.p, c.spki.len, &pub, NULL, 0) != TCA_OK) {
		log_error_f("CA certificate's public key is not usable");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}

	if (mode == TCA_SERIAL_KEEP) {
		ser_p = c.serial.p;
		ser_len = c.serial.len;
	} else {
		/* a collision with the old serial is 2^-127; redraw anyway so
		 * NEW always means a different issuer+serial */
		for (i = 0; i < 4; i++) {
			if ((r = tca_random_serial(serial)) != TCA_OK)
				goto out;
			if (c.serial.vlen != TCA_SERIAL_LEN ||
			    memcmp(c.serial.val, serial, TCA_SERIAL_LEN) != 0)
				break;
		}
		if (i == 4) {
			r = TCA_ERR_CRYPTO;
			goto out;
		}
		ser[0] = 0x02;
		ser[1] = TCA_SERIAL_LEN;
		memcpy(ser + 2, serial, TCA_SERIAL_LEN);
		ser_p = ser;
		ser_len = sizeof(ser);
	}
	if ((r = der_validity(nb, na, val, sizeof(val), &val_len)) != TCA_OK) {
		log_error_f("validity %lld..%lld cannot be encoded",
		    (long long)nb, (long long)na);
		goto out;
	}

	r = TCA_ERR_INTERNAL;
	content = c.version.len + ser_len + c.sigalg.len + c.issuer.len +
	    val_len + c.subject.len + c.spki.len + c.rest_len;
	total = tca_der_hdr_len(content) + content;
	if (content > 0xffffffffUL)
		goto out;
	if ((tbs = OPENSSL_malloc(total)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if (tca_der_put_hdr(tbs, total, &pos, 0x30, content) != TCA_OK ||
	    (c.version.p != NULL &&
	    tca_der_put(tbs, total, &pos, c.version.p, c.version.len) != TCA_OK) ||
	    tca_der_put(tbs, total, &pos, ser_p, ser_len) != TCA_OK ||
	    tca_der_put(tbs, total, &pos, c.sigalg.p, c.sigalg.len) != TCA_OK ||
	    tca_der_put(tbs, total, &pos, c.issuer.p, c.issuer.len) != TCA_OK ||
	    tca_der_put(tbs, total, &pos, val, val_len) != TCA_OK ||
	    tca_der_put(tbs, total, &pos, c.subject.p, c.subject.len) != TCA_OK ||
	    tca_der_put(tbs, total, &pos, c.spki.p, c.spki.len) != TCA_OK ||
	    (c.rest_len > 0 &&
	    tca_der_put(tbs, total, &pos, c.rest, c.rest_len) != TCA_OK) ||
	    pos != total)
		goto out;

	r = tca_sign_assemble_der(tbs, total, c.outer_alg.p, c.outer_alg.len, signer, pub,
	    der_ptr, len_ptr);
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	OPENSSL_cleanse(serial, sizeof(serial));
	OPENSSL_free(tbs);
	X509_ALGOR_free(old_alg);
	EVP_PKEY_free(pub);
	return r;
}

/* ------------------------------------------------------------ TBS diff */

enum diff_kind {
	DK_VERSION, DK_SERIAL, DK_ALGID, DK_NAME, DK_TIME, DK_SPKI, DK_BINARY
};

static void
hex_into(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	static const char digits[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n && o + 2 < outsz; i++) {
		out[o++] = digits[p[i] >> 4];
		out[o++] = digits[p[i] & 0x0f];
	}
	if (outsz > 0)
		out[o] = '\0';
}

/* Short enough: all of it in hex.  Longer (keys, big extensions): the
 * length and a SHA-256, since a hex prefix of two keys or two DER
 * structures is mostly the same header. */
static void
print_binary(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);
	char hex[2 * sizeof(md) + 1];

	if (n <= 48 && 2 * n < outsz) {
		hex_into(p, n, out, outsz);
		return;
	}
	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md)) {
		tca_log_ossl_errors(__func__);
		snprintf(out, outsz, "%zu bytes", n);
		return;
	}
	hex_into(md, mdlen, hex, sizeof(hex));
	snprintf(out, outsz, "%zu bytes, sha256 %s", n, hex);
}

/* Short name of the OBJECT IDENTIFIER TLV t, or its dotted form. */
static void
oid_name(const struct tca_der_tlv *t, char *out, size_t outsz)
{
	const unsigned char *p = t->p;
	ASN1_OBJECT *obj = NULL;
	int nid;

	out[0] = '\0';
	if (t->tag == 0x06 && t->len <= LONG_MAX &&
	    (obj = d2i_ASN1_OBJECT(NULL, &p, (long)t->len)) != NULL &&
	    p == t->p + t->len) {
		if ((nid = OBJ_obj2nid(obj)) != NID_undef &&
		    OBJ_nid2sn(nid) != NULL)
			snprintf(out, outsz, "%s", OBJ_nid2sn(nid));
		else if (OBJ_obj2txt(out, (int)outsz, obj, 1) <= 0)
			out[0] = '\0';
	}
	ASN1_OBJECT_free(obj);
	tca_log_ossl_errors(NULL);
	if (out[0] == '\0')
		print_binary(t->p, t->len, out, outsz);
}

/* "alg" or "alg params": an AlgorithmIdentifier, also the one inside an
 * SPKI (params of id-ecPublicKey name the curve). */
static void
print_algid(const struct tca_der_tlv *t, char *out, size_t outsz)
{
	struct tca_der_tlv oid, par;
	char name[128], pv[160];
	size_t q = 0;

	if (t->tag != 0x30 ||
	    tca_der_get_tag(t->val, t->vlen, &q, 0x06, &oid) != TCA_OK) {
		print_binary(t->p, t->len, out, outsz);
		return;
	}
	oid_name(&oid, name, sizeof(name));
	if (q == t->vlen) {
		snprintf(out, outsz, "%s", name);
		return;
	}
	if (tca_der_get(t->val, t->vlen, &q, &par) == TCA_OK && q == t->vlen) {
		if (par.tag == 0x06)
			oid_name(&par, pv, sizeof(pv));
		else if (par.tag == 0x05 && par.vlen == 0)
			snprintf(pv, sizeof(pv), "NULL");
		else
			print_binary(par.p, par.len, pv, sizeof(pv));
	} else
		print_binary(t->val + q, t->vlen - q, pv, sizeof(pv));
	tca_setf(out, outsz, "%s %s", name, pv);
}

static void
print_elem(enum diff_kind kind, const struct tca_der_tlv *t, char *out,
    size_t outsz)
{
	const unsigned char *p;
	X509_NAME *name = NULL;
	ASN1_TIME *tm_a = NULL;
	struct tca_der_tlv alg;
	struct tm tm;
	char a[160], h[80];
	size_t q = 0;

	if (t->p == NULL) {
		snprintf(out, outsz, "%s", kind == DK_VERSION ?
		    "v1 (absent)" : "(absent)");
		return;
	}
	switch (kind) {
	case DK_VERSION:
		/* tca_der_cert_split() checked: [0] { INTEGER (1 octet) } */
		snprintf(out, outsz, "v%d", (int)t->p[t->len - 1] + 1);
		return;
	case DK_SERIAL:
		/* as the store and tca_hex print it: the magnitude */
		if (t->vlen > 1 && t->val[0] == 0 && (t->val[1] & 0x80))
			print_binary(t->val + 1, t->vlen - 1, out, outsz);
		else if (t->val[0] & 0x80) {
			print_binary(t->val, t->vlen, h, sizeof(h));
			tca_setf(out, outsz, "negative %s", h);
		} else
			print_binary(t->val, t->vlen, out, outsz);
		return;
	case DK_ALGID:
		print_algid(t, out, outsz);
		return;
	case DK_NAME:
		p = t->p;
		if (t->len <= LONG_MAX &&
		    (name = d2i_X509_NAME(NULL, &p, (long)t->len)) != NULL &&
		    p == t->p + t->len &&
		    name_rfc2253(name, out, outsz) == TCA_OK) {
			if (out[0] == '\0')
				snprintf(out, outsz, "(empty)");
		} else
			print_binary(t->p, t->len, out, outsz);
		X509_NAME_free(name);
		tca_log_ossl_errors(NULL);
		return;
	case DK_TIME:
		p = t->p;
		memset(&tm, 0, sizeof(tm));
		if (t->len <= LONG_MAX &&
		    (tm_a = d2i_ASN1_TIME(NULL, &p, (long)t->len)) != NULL &&
		    p == t->p + t->len && ASN1_TIME_to_tm(tm_a, &tm) == 1)
			snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ",
			    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			    tm.tm_hour, tm.tm_min, tm.tm_sec);
		else
			print_binary(t->p, t->len, out, outsz);
		ASN1_TIME_free(tm_a);
		tca_log_ossl_errors(NULL);
		return;
	case DK_SPKI:
		if (t->tag == 0x30 &&
		    tca_der_get_tag(t->val, t->vlen, &q, 0x30, &alg) == TCA_OK) {
			print_algid(&alg, a, sizeof(a));
			print_binary(t->p, t->len, h, sizeof(h));
			tca_setf(out, outsz, "%s, %s", a, h);
		} else
			print_binary(t->p, t->len, out, outsz);
		return;
	case DK_BINARY:
		print_binary(t->p, t->len, out, outsz);
		return;
	}
}

struct diff_acc {
	struct tca_tbs_diff *d;
	size_t max, n;
};

/* Counts one difference and fills its slot if there is one; returns the
 * slot or NULL. */
static struct tca_tbs_diff *
diff_slot(struct diff_acc *acc, const char *field)
{
	struct tca_tbs_diff *d = NULL;

	if (acc->n < acc->max && acc->d != NULL) {
		d = &acc->d[acc->n];
		memset(d, 0, sizeof(*d));
		tca_setf(d->field, sizeof(d->field), "%s", field);
	}
	acc->n++;
	return d;
}

static void
diff_elem(struct diff_acc *acc, const char *field, enum diff_kind kind,
    const struct tca_der_tlv *a, const struct tca_der_tlv *b)
{
	struct tca_tbs_diff *d;

	if (tca_der_eq(a, b) || (d = diff_slot(acc, field)) == NULL)
		return;
	print_elem(kind, a, d->old_value, sizeof(d->old_value));
	print_elem(kind, b, d->new_value, sizeof(d->new_value));
	/* same printable form, different bytes (UTCTime vs GeneralizedTime,
	 * PrintableString vs UTF8String): show the bytes */
	if (strcmp(d->old_value, d->new_value) == 0) {
		if (a->p != NULL)
			print_binary(a->p, a->len, d->old_value,
			    sizeof(d->old_value));
		if (b->p != NULL)
			print_binary(b->p, b->len, d->new_value,
			    sizeof(d->new_value));
	}
}

/* One extension, absent if ext is NULL. */
static void
print_ext(const struct tca_der_tlv *ext, char *out, size_t outsz)
{
	struct tca_der_tlv oid, val;
	char h[200];
	int crit = 0;

	if (ext == NULL) {
		snprintf(out, outsz, "(absent)");
		return;
	}
	if (tca_der_ext_split(ext, &oid, &crit, &val) != TCA_OK) {
		print_binary(ext->p, ext->len, out, outsz);
		return;
	}
	print_binary(val.val, val.vlen, h, sizeof(h));
	tca_setf(out, outsz, "%s%s", crit ? "critical, " : "", h);
}

static void
diff_ext(struct diff_acc *acc, const struct tca_der_tlv *oid,
    const struct tca_der_tlv *a, const struct tca_der_tlv *b)
{
	struct tca_tbs_diff *d;
	char name[64], field[96];

	oid_name(oid, name, sizeof(name));
	tca_setf(field, sizeof(field), "extensions.%s", name);
	if ((d = diff_slot(acc, field)) == NULL)
		return;
	print_ext(a, d->old_value, sizeof(d->old_value));
	print_ext(b, d->new_value, sizeof(d->new_value));
	/* e.g. critical FALSE encoded against omitted (not DER) */
	if (a != NULL && b != NULL &&
	    strcmp(d->old_value, d->new_value) == 0) {
		print_binary(a->p, a->len, d->old_value, sizeof(d->old_value));
		print_binary(b->p, b->len, d->new_value, sizeof(d->new_value));
	}
}

/* Index of the k-th (0-based) extension with OID oid in seq, or -1. */
static long
ext_find(const unsigned char *seq, size_t seq_len, size_t n,
    const struct tca_der_tlv *oid, size_t k)
{
	struct tca_der_tlv e, o, v;
	size_t i;
	int crit;

	for (i = 0; i < n; i++) {
		tca_der_ext_at(seq, seq_len, i, &e, &o, &crit, &v);
		if (tca_der_eq(&o, oid) && k-- == 0)
			return (long)i;
	}
	return -1;
}

/* Occurrence number of extension idx among those with the same OID. */
static size_t
ext_occurrence(const unsigned char *seq, size_t seq_len, size_t idx,
    const struct tca_der_tlv *oid)
{
	struct tca_der_tlv e, o, v;
	size_t i, k = 0;
	int crit;

	for (i = 0; i < idx; i++) {
		tca_der_ext_at(seq, seq_len, i, &e, &o, &crit, &v);
		if (tca_der_eq(&o, oid))
			k++;
	}
	return k;
}

static void
ext_order(const unsigned char *seq, size_t seq_len, size_t n, int present,
    char *out, size_t outsz)
{
	struct tca_der_tlv e, o, v;
	char name[64];
	size_t i, l;
	int crit;

	if (!present) {
		snprintf(out, outsz, "(absent)");
		return;
	}
	snprintf(out, outsz, "%s", n == 0 ? "(none)" : "");
	for (i = 0; i < n; i++) {
		tca_der_ext_at(seq, seq_len, i, &e, &o, &crit, &v);
		oid_name(&o, name, sizeof(name));
		l = strlen(out);
		tca_setf(out + l, outsz - l, "%s%s", i > 0 ? "," : "", name);
	}
}

/* Per extension, matched by OID (and occurrence, should one repeat), then
 * the order if nothing else explains a byte difference. */
static void
diff_exts(struct diff_acc *acc, const struct tca_der_tlv *ea,
    const struct tca_der_tlv *eb, const unsigned char *sa, size_t la, size_t na,
    const unsigned char *sb, size_t lb, size_t nb)
{
	struct tca_tbs_diff *d;
	struct tca_der_tlv xa, oa, va, xb, ob, vb;
	size_t i, before = acc->n;
	long j;
	int ca = 0, cb = 0;

	if (tca_der_eq(ea, eb))
		return;
	for (i = 0; i < na; i++) {
		tca_der_ext_at(sa, la, i, &xa, &oa, &ca, &va);
		j = ext_find(sb, lb, nb, &oa, ext_occurrence(sa, la, i, &oa));
		if (j < 0) {
			diff_ext(acc, &oa, &xa, NULL);
			continue;
		}
		tca_der_ext_at(sb, lb, (size_t)j, &xb, &ob, &cb, &vb);
		if (!tca_der_eq(&xa, &xb))
			diff_ext(acc, &oa, &xa, &xb);
	}
	for (i = 0; i < nb; i++) {
		tca_der_ext_at(sb, lb, i, &xb, &ob, &cb, &vb);
		if (ext_find(sa, la, na, &ob, ext_occurrence(sb, lb, i, &ob)) < 0)
			diff_ext(acc, &ob, NULL, &xb);
	}
	if (acc->n != before)
		return;
	/* the same extensions in another order, or an empty list against
	 * none */
	if ((d = diff_slot(acc, "extensions")) == NULL)
		return;
	ext_order(sa, la, na, ea->p != NULL, d->old_value, sizeof(d->old_value));
	ext_order(sb, lb, nb, eb->p != NULL, d->new_value, sizeof(d->new_value));
}

int
tca_cert_tbs_diff(const unsigned char *a, size_t la, const unsigned char *b, size_t lb,
    struct tca_tbs_diff *diffs, size_t max, size_t *n_ptr)
{
	struct tca_cert_parts ca, cb;
	struct diff_acc acc;
	const unsigned char *sa, *sb;
	size_t sla, slb, na, nb;
	int r = TCA_ERR_INTERNAL;

	if (n_ptr != NULL)
		*n_ptr = 0;
	if (a == NULL || b == NULL || n_ptr == NULL ||
	    (diffs == NULL && max > 0))
		return TCA_ERR_INVALID_ARG;
	if ((r = tca_der_cert_split(a, la, &ca)) != TCA_OK ||
	    (r = tca_der_cert_split(b, lb, &cb)) != TCA_OK ||
	    (r = tca_der_exts(&ca.exts, &sa, &sla, &na)) != TCA_OK ||
	    (r = tca_der_exts(&cb.exts, &sb, &slb, &nb)) != TCA_OK)
		goto out;

	memset(&acc, 0, sizeof(acc));
	acc.d = diffs;
	acc.max = max;
	diff_elem(&acc, "version", DK_VERSION, &ca.version, &cb.version);
	diff_elem(&acc, "serialNumber", DK_SERIAL, &ca.serial, &cb.serial);
	diff_elem(&acc, "signature", DK_ALGID, &ca.sigalg, &cb.sigalg);
	diff_elem(&acc, "issuer", DK_NAME, &ca.issuer, &cb.issuer);
	diff_elem(&acc, "validity.notBefore", DK_TIME, &ca.not_before,
	    &cb.not_before);
	diff_elem(&acc, "validity.notAfter", DK_TIME, &ca.not_after,
	    &cb.not_after);
	diff_elem(&acc, "subject", DK_NAME, &ca.subject, &cb.subject);
	diff_elem(&acc, "subjectPublicKeyInfo", DK_SPKI, &ca.spki, &cb.spki);
	diff_elem(&acc, "issuerUniqueID", DK_BINARY, &ca.iuid, &cb.iuid);
	diff_elem(&acc, "subjectUniqueID", DK_BINARY, &ca.suid, &cb.suid);
	diff_exts(&acc, &ca.exts, &cb.exts, sa, sla, na, sb, slb, nb);
	*n_ptr = acc.n;
	r = TCA_OK;
 out:
	return r;
}
