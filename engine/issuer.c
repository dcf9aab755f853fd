/*
 * issuer.c - a tenant CA as issuer, read from its DER (issuer.h).
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
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
#include "keytype.h"
#include "tca-error.h"
#include "text.h"

/* Content octets of the OBJECT IDENTIFIERs we recognise. */
static const unsigned char oid_ec_public_key[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
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

/*
 * Keys that decode but must never be certified: keys for which anyone can
 * make a signature that verifies, so the CSR's proof of possession proves
 * nothing and the certificate would let anyone act as the device.  OpenSSL
 * 3.0 accepts all of these in EVP_DigestVerify (tests/unit/check_certs.c,
 * /certs/csr/forgeable-keys, forges a CSR for each).  The RSA rules are the
 * CA/Browser Forum Baseline Requirements' 6.1.6.
 */

/* The odd primes below 752 (BR 6.1.6: no factor smaller than 752). */
static const unsigned short small_primes[] = {
	3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
	73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151,
	157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233,
	239, 241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307, 311, 313, 317,
	331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389, 397, 401, 409, 419,
	421, 431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499, 503,
	509, 521, 523, 541, 547, 557, 563, 569, 571, 577, 587, 593, 599, 601, 607,
	613, 617, 619, 631, 641, 643, 647, 653, 659, 661, 673, 677, 683, 691, 701,
	709, 719, 727, 733, 739, 743, 751
};

static const char *
rsa_weakness(const BIGNUM *n, const BIGNUM *e)
{
	BN_ULONG prod, rem;
	size_t i, j;

	if (!BN_is_odd(n))
		return "RSA modulus is even";
	if (!BN_is_odd(e) || BN_is_one(e))
		return "RSA public exponent is not an odd number of at least 3";
	if (BN_cmp(e, n) >= 0)
		return "RSA public exponent is not smaller than the modulus";
	/* one BN division per group of primes whose product fits a word */
	for (i = 0; i < sizeof(small_primes) / sizeof(small_primes[0]); i = j) {
		prod = 1;
		for (j = i; j < sizeof(small_primes) / sizeof(small_primes[0]) &&
		    prod <= (BN_ULONG)-1 / small_primes[j]; j++)
			prod *= small_primes[j];
		if ((rem = BN_mod_word(n, prod)) == (BN_ULONG)-1)
			return "RSA modulus cannot be checked";
		for (; i < j; i++)
			if (rem % small_primes[i] == 0)
				return "RSA modulus has a prime factor smaller than 752";
	}
	return NULL;
}

/* n and e of an RSA EVP_PKEY decoded by OpenSSL (RSASSA-PSS keys). */
static const char *
rsa_pkey_weakness(const EVP_PKEY *pkey)
{
	BIGNUM *n = NULL, *e = NULL;
	const char *w;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
		w = "RSA key without modulus or exponent";
	else
		w = rsa_weakness(n, e);
	BN_free(n);
	BN_free(e);
	return w;
}

/*
 * The Ed25519 points of small order (1, 2, 4, 8), including non-canonical
 * encodings of y (y >= p), as in libsodium's ge25519_has_small_order(); the
 * last octet's top bit (the sign of x) is ignored.  With such a key, R = the
 * neutral point and S = 0 verify for every message.
 */
static const unsigned char ed25519_small_order[][32] = {
	/* 0 (order 4) */
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
	/* 1 (order 1, the neutral point) */
	{ 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
	/* order 8 */
	{ 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
	  0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
	  0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05 },
	/* order 8 */
	{ 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
	  0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
	  0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a },
	/* p - 1 (order 2) */
	{ 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	/* p, non-canonical 0 (order 4) */
	{ 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	/* p + 1, non-canonical 1 (order 1) */
	{ 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

static int
ed25519_small_order_point(const unsigned char *key)
{
	size_t i;

	for (i = 0; i < sizeof(ed25519_small_order) / sizeof(ed25519_small_order[0]); i++)
		if (memcmp(key, ed25519_small_order[i], 31) == 0 &&
		    (key[31] & 0x7f) == ed25519_small_order[i][31])
			return 1;
	return 0;
}

/*
 * RFC 5480 2.2: an EC public key is the uncompressed (0x04 || x || y) or the
 * compressed (0x02/0x03 || x) point.  Refused: 0x00, the point at infinity,
 * which OpenSSL decodes and for which (r, s) = (x(kG), h/k) verifies for any
 * k; and the hybrid forms 0x06/0x07.  The import checks the point is on the
 * curve; P-256 and P-384 have cofactor 1, so that makes it a valid key.
 */
static const char *
ec_point_weakness(const unsigned char *key, size_t key_len, size_t field_len)
{
	if (key_len == 1 && key[0] == 0x00)
		return "EC public key is the point at infinity";
	if ((key[0] == 0x04 && key_len == 1 + 2 * field_len) ||
	    ((key[0] == 0x02 || key[0] == 0x03) && key_len == 1 + field_len))
		return NULL;
	return "EC public key is not an uncompressed or compressed point (RFC 5480)";
}

/*
 * EC public keys are made by copying a parameters-only key of their curve and
 * setting the point (EVP_PKEY_dup + EVP_PKEY_set1_encoded_public_key): about
 * 4 us for P-256, against 17 us for EVP_PKEY_fromdata, which builds the
 * curve's group from its name each time; every request makes two EC keys
 * (docs/performance.md, F8).  Both decode the point with EC_POINT_oct2point,
 * which refuses a point off the curve; /certs/issuer/ec-template compares
 * them.  The templates are made on first use and never change afterwards;
 * EVP_PKEY_dup only reads them, from any thread.  If one cannot be made,
 * EVP_PKEY_fromdata is used.
 */
/* The curves are the key-type table's EC rows (keytype.h); a template per row. */
static EVP_PKEY *ec_templates[TCA_KEY_TYPE_COUNT];
static pthread_once_t ec_templates_once = PTHREAD_ONCE_INIT;

static void
ec_templates_init(void)
{
	const struct tca_key_desc *kd;
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *ctx;
	size_t i;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (kd->group == NULL)
			continue;
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
		    (char *)(uintptr_t)kd->group, 0);
		params[1] = OSSL_PARAM_construct_end();
		if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
		    EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &ec_templates[i], EVP_PKEY_KEY_PARAMETERS,
		    params) != 1) {
			ec_templates[i] = NULL;
			ERR_clear_error();
		}
		EVP_PKEY_CTX_free(ctx);
	}
}

/* The parameters-only key of the key-type table's row i, or NULL. */
static EVP_PKEY *
ec_template(size_t i)
{
	if (pthread_once(&ec_templates_once, ec_templates_init) != 0)
		return NULL;
	return ec_templates[i];
}

int
tca_spki_to_pkey(const unsigned char *spki, size_t len, EVP_PKEY **pkey_ptr,
    char *why, size_t whylen)
{
	struct tca_der_tlv oid, params;
	const unsigned char *key = NULL, *p;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const struct tca_key_desc *curve = NULL, *kd;
	size_t curve_row = 0;
	EVP_PKEY *pkey = NULL, *tmpl;
	const char *weak = NULL;
	size_t key_len = 0, i;
	int r = TCA_ERR_BAD_REQUEST;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (pkey_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*pkey_ptr = NULL;
	if (spki == NULL || len == 0 || len > LONG_MAX ||
	    spki_split(spki, len, &oid, &params, &key, &key_len) != TCA_OK) {
		tca_setf(why, whylen, "malformed SubjectPublicKeyInfo");
		return TCA_ERR_BAD_REQUEST;
	}

	if (oid_is(&oid, oid_ed25519, sizeof(oid_ed25519)) && params.p == NULL) {
		if (key_len != 32)
			goto out;
		if (ed25519_small_order_point(key)) {
			weak = "Ed25519 public key is a point of small order";
			goto out;
		}
		if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key,
		    key_len)) == NULL)
			goto out;
		goto done;
	}
	if (oid_is(&oid, oid_ec_public_key, sizeof(oid_ec_public_key)))
		for (i = 0; curve == NULL && (kd = tca_key_desc_at(i)) != NULL; i++)
			if (kd->group != NULL &&
			    oid_is(&params, kd->curve_oid, kd->curve_oid_len)) {
				curve = kd;
				curve_row = i;
			}
	if (curve != NULL) {
		if ((weak = ec_point_weakness(key, key_len, curve->field_len)) != NULL)
			goto out;
		if ((tmpl = ec_template(curve_row)) != NULL) {
			/* the point is decoded and checked on the curve */
			if ((pkey = EVP_PKEY_dup(tmpl)) == NULL) {
				r = TCA_ERR_NOMEM;
				goto out;
			}
			if (EVP_PKEY_set1_encoded_public_key(pkey, key, key_len) != 1)
				goto out;
			goto done;
		}
		r = TCA_ERR_NOMEM;
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    curve->group, 0) ||
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
		if ((weak = rsa_weakness(n, e)) != NULL ||
		    tca_pkey_fromdata("RSA", bld, &pkey) != TCA_OK)
			goto out;
		goto done;
	}
	/* anything else: OpenSSL's decoders */
	p = spki;
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len)
		goto out;
	if (EVP_PKEY_is_a(pkey, "RSA-PSS") && (weak = rsa_pkey_weakness(pkey)) != NULL)
		goto out;
 done:
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK) {
		ERR_clear_error();
		if (weak != NULL) {
			r = TCA_ERR_POLICY_VIOLATION;
			tca_setf(why, whylen, "%s", weak);
		} else if (r == TCA_ERR_BAD_REQUEST)
			tca_setf(why, whylen, "public key does not decode or is of an "
			    "unsupported type");
	}
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
	return tca_spki_to_pkey(iss->spki.p, iss->spki.len, pkey_ptr, NULL, 0);
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
