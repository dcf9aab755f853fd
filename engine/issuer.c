/*
 * issuer.c - a tenant CA as issuer, read from its DER (issuer.h).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "der.h"
#include "issuer.h"
#include "tca-error.h"

/* Content octets of the OBJECT IDENTIFIERs we recognise. */
static const unsigned char oid_ec_public_key[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const unsigned char oid_prime256v1[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char oid_secp384r1[] = { 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char oid_rsa_encryption[] = {
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
};
static const unsigned char oid_ed25519[] = { 0x2b, 0x65, 0x70 };
static const unsigned char oid_subject_key_id[] = { 0x55, 0x1d, 0x0e };

static int
oid_is(const struct tca_der_tlv *t, const unsigned char *oid, size_t len)
{
	return t->p != NULL && t->tag == 0x06 && t->vlen == len &&
	    memcmp(t->val, oid, len) == 0;
}

/* The key octets of a SubjectPublicKeyInfo: the BIT STRING contents after
 * its unused-bits octet, which must be 0. */
static int
spki_split(const unsigned char *spki, size_t len, struct tca_der_tlv *alg_oid,
    struct tca_der_tlv *params, const unsigned char **key, size_t *key_len)
{
	struct tca_der_tlv seq, alg, bits;
	size_t pos = 0, q = 0;

	if (tca_der_get_tag(spki, len, &pos, 0x30, &seq) != TCA_OK || pos != len)
		return TCA_ERR_BAD_REQUEST;
	pos = 0;
	if (tca_der_get_tag(seq.val, seq.vlen, &pos, 0x30, &alg) != TCA_OK ||
	    tca_der_get_tag(seq.val, seq.vlen, &pos, 0x03, &bits) != TCA_OK ||
	    pos != seq.vlen)
		return TCA_ERR_BAD_REQUEST;
	if (tca_der_get_tag(alg.val, alg.vlen, &q, 0x06, alg_oid) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	memset(params, 0, sizeof(*params));
	if (q < alg.vlen && (tca_der_get(alg.val, alg.vlen, &q, params) != TCA_OK ||
	    q != alg.vlen))
		return TCA_ERR_BAD_REQUEST;
	if (bits.vlen < 2 || bits.val[0] != 0)
		return TCA_ERR_BAD_REQUEST;
	*key = bits.val + 1;
	*key_len = bits.vlen - 1;
	return TCA_OK;
}

int
tca_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **pkey_ptr)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int r = TCA_ERR_CRYPTO;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, pkey_ptr, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	r = TCA_OK;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
static int
rsa_params(const unsigned char *key, size_t len, OSSL_PARAM_BLD *bld, BIGNUM **n,
    BIGNUM **e)
{
	struct tca_der_tlv seq, tn, te;
	size_t pos = 0;

	if (tca_der_get_tag(key, len, &pos, 0x30, &seq) != TCA_OK || pos != len)
		return TCA_ERR_BAD_REQUEST;
	pos = 0;
	if (tca_der_get_tag(seq.val, seq.vlen, &pos, 0x02, &tn) != TCA_OK ||
	    tca_der_get_tag(seq.val, seq.vlen, &pos, 0x02, &te) != TCA_OK ||
	    pos != seq.vlen || tn.vlen == 0 || te.vlen == 0 ||
	    tn.vlen > INT_MAX || te.vlen > INT_MAX ||
	    (tn.val[0] & 0x80) != 0 || (te.val[0] & 0x80) != 0)	/* negative */
		return TCA_ERR_BAD_REQUEST;
	if ((*n = BN_bin2bn(tn.val, (int)tn.vlen, NULL)) == NULL ||
	    (*e = BN_bin2bn(te.val, (int)te.vlen, NULL)) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, *n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, *e))
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

int
tca_spki_to_pkey(const unsigned char *spki, size_t len, EVP_PKEY **pkey_ptr)
{
	struct tca_der_tlv oid, params;
	const unsigned char *key = NULL, *p;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	const char *group = NULL;
	size_t key_len = 0;
	int r = TCA_ERR_BAD_REQUEST;

	if (pkey_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*pkey_ptr = NULL;
	if (spki == NULL || len == 0 || len > LONG_MAX ||
	    spki_split(spki, len, &oid, &params, &key, &key_len) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;

	if (oid_is(&oid, oid_ed25519, sizeof(oid_ed25519)) && params.p == NULL) {
		if (key_len != 32 || (pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
		    NULL, key, key_len)) == NULL)
			goto out;
		goto done;
	}
	if (oid_is(&oid, oid_ec_public_key, sizeof(oid_ec_public_key))) {
		if (oid_is(&params, oid_prime256v1, sizeof(oid_prime256v1)))
			group = "prime256v1";
		else if (oid_is(&params, oid_secp384r1, sizeof(oid_secp384r1)))
			group = "secp384r1";
	}
	if (group != NULL) {
		r = TCA_ERR_NOMEM;
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, key, key_len))
			goto out;
		/* the import decodes the point and refuses one off the curve */
		r = TCA_ERR_BAD_REQUEST;
		if (tca_pkey_fromdata("EC", bld, &pkey) != TCA_OK)
			goto out;
		goto done;
	}
	if (oid_is(&oid, oid_rsa_encryption, sizeof(oid_rsa_encryption))) {
		r = TCA_ERR_NOMEM;
		if ((bld = OSSL_PARAM_BLD_new()) == NULL)
			goto out;
		if ((r = rsa_params(key, key_len, bld, &n, &e)) != TCA_OK)
			goto out;
		r = TCA_ERR_BAD_REQUEST;
		if (tca_pkey_fromdata("RSA", bld, &pkey) != TCA_OK)
			goto out;
		goto done;
	}
	/* anything else: OpenSSL's decoders */
	p = spki;
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len)
		goto out;
 done:
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		ERR_clear_error();
	EVP_PKEY_free(pkey);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

/* The SubjectKeyIdentifier extension's key id, if the certificate has one
 * (*found = 0 if not). */
static int
find_ski(const struct tca_cert_parts *c, unsigned char *ski, size_t *ski_len, int *found)
{
	struct tca_der_tlv ext, oid, val, kid;
	const unsigned char *seq;
	size_t seq_len, n, i, q;
	int crit, r;

	*found = 0;
	if ((r = tca_der_exts(&c->exts, &seq, &seq_len, &n)) != TCA_OK)
		return r;
	for (i = 0; i < n; i++) {
		tca_der_ext_at(seq, seq_len, i, &ext, &oid, &crit, &val);
		if (!oid_is(&oid, oid_subject_key_id, sizeof(oid_subject_key_id)))
			continue;
		/* extnValue wraps SubjectKeyIdentifier ::= OCTET STRING */
		q = 0;
		if (tca_der_get_tag(val.val, val.vlen, &q, 0x04, &kid) != TCA_OK ||
		    q != val.vlen || kid.vlen == 0 || kid.vlen > TCA_ISSUER_MAX_SKI)
			return TCA_ERR_BAD_REQUEST;
		memcpy(ski, kid.val, kid.vlen);
		*ski_len = kid.vlen;
		*found = 1;
		return TCA_OK;
	}
	return TCA_OK;
}

int
tca_issuer_new(const unsigned char *der, size_t len, struct tca_issuer **iss_ptr)
{
	struct tca_cert_parts c;
	struct tca_der_tlv oid, params;
	struct tca_issuer *iss = NULL;
	const unsigned char *key;
	size_t key_len;
	unsigned int mdlen;
	int found = 0, r = TCA_ERR_BAD_REQUEST;

	if (iss_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*iss_ptr = NULL;
	if (der == NULL || len == 0 || len > LONG_MAX)
		return TCA_ERR_BAD_REQUEST;
	if ((iss = calloc(1, sizeof(*iss))) == NULL ||
	    (iss->der = malloc(len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	memcpy(iss->der, der, len);
	iss->der_len = len;
	/* every pointer below is into iss->der */
	if (tca_der_cert_split(iss->der, len, &c) != TCA_OK ||
	    tca_der_get_time(&c.not_before, &iss->not_before) != TCA_OK ||
	    tca_der_get_time(&c.not_after, &iss->not_after) != TCA_OK ||
	    spki_split(c.spki.p, c.spki.len, &oid, &params, &key, &key_len) != TCA_OK ||
	    find_ski(&c, iss->ski, &iss->ski_len, &found) != TCA_OK)
		goto out;
	iss->subject = c.subject;
	iss->spki = c.spki;
	r = TCA_ERR_CRYPTO;
	if (!found) {
		/* RFC 5280 4.2.1.2 method 1, as certs.c computes it for AKIs */
		mdlen = sizeof(iss->ski);
		if (EVP_Digest(key, key_len, iss->ski, &mdlen, EVP_sha1(), NULL) != 1)
			goto out;
		iss->ski_len = mdlen;
	}
	mdlen = sizeof(iss->sha256);
	if (EVP_Digest(iss->der, len, iss->sha256, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(iss->sha256))
		goto out;
	*iss_ptr = iss;
	iss = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		ERR_clear_error();
	tca_issuer_free(iss);
	return r;
}

void
tca_issuer_free(struct tca_issuer *iss)
{
	if (iss == NULL)
		return;
	free(iss->der);
	free(iss);
}

int
tca_issuer_pubkey(const struct tca_issuer *iss, EVP_PKEY **pkey_ptr)
{
	if (iss == NULL || pkey_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	return tca_spki_to_pkey(iss->spki.p, iss->spki.len, pkey_ptr);
}

int
tca_issuer_name(const struct tca_issuer *iss, X509_NAME **name_ptr)
{
	const unsigned char *p;
	X509_NAME *name;

	if (iss == NULL || name_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*name_ptr = NULL;
	p = iss->subject.p;
	if ((name = d2i_X509_NAME(NULL, &p, (long)iss->subject.len)) == NULL ||
	    p != iss->subject.p + iss->subject.len) {
		X509_NAME_free(name);
		ERR_clear_error();
		return TCA_ERR_BAD_REQUEST;
	}
	*name_ptr = name;
	return TCA_OK;
}

int
tca_sig_verify(EVP_PKEY *pub, const char *mdname, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md;
	int ok = 0;

	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit_ex(md, NULL, mdname, NULL, NULL, pub, NULL) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, msg, msglen) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	return ok;
}
