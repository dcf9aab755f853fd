/*
 * check_revocation.c - CRLs (engine/crl.h) and the OCSP responder
 * (engine/ocsp.h), checked with OpenSSL as the independent parser.
 *
 * reason-names                 tca_crl_reason_name / tca_crl_reason_parse:
 *                              RFC and kebab names, refused reasons
 * der-writers                  the der.h helpers the two modules added
 * crl-parses-in-openssl        per CA key type: d2i_X509_CRL, X509_CRL_verify,
 *                              v2, issuer bytes, AKI, cRLNumber, entries and
 *                              their reason codes, tca_crl_info
 * crl-revokes-in-x509-store    per CA key type: X509_V_FLAG_CRL_CHECK rejects
 *                              the revoked device certificate, accepts another
 * crl-empty                    no revokedCertificates element at all
 * crl-times-and-numbers        UTCTime/GeneralizedTime switch, cRLNumber 0 and
 *                              2^64-1
 * crl-refuses-bad-input        bad parameters, entries, signers; tca_crl_info
 *                              on broken DER
 * crl-100k-entries             per CA key type: 100,000 entries build, parse,
 *                              verify and revoke (timings printed, not
 *                              asserted)
 * crl-survives-ca-reissue      per CA key type: one CRL verifies and revokes
 *                              under the CA certificate and its same-key
 *                              re-issue
 * ocsp-answers-status          per CA key type: good, revoked (time and
 *                              reason), unknown serial; response structure
 * ocsp-foreign-issuer-unknown  CertIDs of another CA answer unknown, no lookup
 * ocsp-nonce-echoed            nonce extension byte for byte; client checks
 * ocsp-certid-variants         SHA-256 (OpenSSL's), absent parameters,
 *                              unsupported hash, negative and long serials,
 *                              several CertIDs in order, echoed byte for byte
 * ocsp-malformed-requests      garbage, BER, trailing bytes, empty list, bad
 *                              version, too many requests, oversized nonce
 * ocsp-signed-request-accepted an OpenSSL-signed request is answered
 * ocsp-refuses-to-answer       wrong signatures, signer and lookup failures,
 *                              bad parameters: an error and no response
 * ocsp-client-checks           tca_ocsp_response_check refuses a foreign
 *                              signer, tampering, stale and future responses
 * openssl-cli-accepts          per CA key type: `openssl crl`, `openssl
 *                              verify -crl_check`, `openssl ocsp -respin`,
 *                              `certtool --verify-crl` accept what we made
 *                              (set TCA_REVOCATION_OUT=dir to keep the files)
 *
 * The CA signer is a TEST DOUBLE (as in check_certs.c): an EVP_PKEY made
 * in this process, signing into what the token layer returns.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "crl.h"
#include "csr.h"
#include "der.h"
#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "ocsp.h"
#include "store.h"
#include "tca-error.h"
#include "testutil.h"

#define DAY 86400
#define NKEYS 4

/* ------------------------------------------------------------ keys */

static EVP_PKEY *ca_keys[NKEYS];	/* P-256, P-384, RSA-3072, Ed25519 */
static EVP_PKEY *dev_key;		/* P-256 */
static EVP_PKEY *foreign_key;		/* P-256, another tenant's CA */

static const enum tca_sig_alg ca_algs[NKEYS] = {
	TCA_SIG_ECDSA_SHA256, TCA_SIG_ECDSA_SHA384,
	TCA_SIG_RSA_PKCS1_SHA256, TCA_SIG_ED25519,
};
static const int ca_alg_nids[NKEYS] = {
	NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384,
	NID_sha256WithRSAEncryption, NID_ED25519,
};
static const char *const key_names[NKEYS] = { "ec-p256", "ec-p384", "rsa-3072", "ed25519" };

static EVP_PKEY *
gen_key(const char *type, const char *curve, unsigned int bits)
{
	EVP_PKEY *k;

	if (curve != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	else if (bits != 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	if (k == NULL) {
		fprintf(stderr, "key generation %s failed\n", type);
		exit(EXIT_FAILURE);
	}
	return k;
}

/* ------------------------------------------------------------ test signer */

enum soft_mode { SOFT_OK, SOFT_GARBAGE, SOFT_WRONG_KEY, SOFT_FAIL };

struct soft_signer {
	EVP_PKEY *key;
	enum tca_sig_alg alg;
	enum soft_mode mode;
	int calls;
};

static int
soft_sign(void *ctx, const unsigned char *tbs, size_t tbs_len,
    unsigned char *sig, size_t *sig_len)
{
	struct soft_signer *s = ctx;
	EVP_MD_CTX *mctx = NULL;
	const EVP_MD *md = NULL;
	EVP_PKEY *key = s->key;
	size_t i;
	int r = TCA_ERR_CRYPTO;

	s->calls++;
	switch (s->mode) {
	case SOFT_FAIL:
		return TCA_ERR_TOKEN_UNAVAILABLE;
	case SOFT_GARBAGE:
		for (i = 0; i < 72 && i < *sig_len; i++)
			sig[i] = (unsigned char)(0x30 + i * 7);
		*sig_len = i;
		return TCA_OK;
	case SOFT_WRONG_KEY:
		key = foreign_key;	/* a valid signature, by the wrong key */
		break;
	case SOFT_OK:
		break;
	}
	switch (s->alg) {
	case TCA_SIG_ECDSA_SHA256:
	case TCA_SIG_RSA_PKCS1_SHA256:
		md = EVP_sha256();
		break;
	case TCA_SIG_ECDSA_SHA384:
		md = EVP_sha384();
		break;
	case TCA_SIG_ED25519:
		md = NULL;
		break;
	default:
		return TCA_ERR_INVALID_ARG;
	}
	if (s->mode == SOFT_WRONG_KEY && md == NULL)
		md = EVP_sha256();
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestSign(mctx, sig, sig_len, tbs, tbs_len) != 1)
		goto out;
	r = TCA_OK;
 out:
	EVP_MD_CTX_free(mctx);
	return r;
}

static void
signer_init(struct tca_signer *sg, struct soft_signer *s, EVP_PKEY *key,
    enum tca_sig_alg alg)
{
	memset(s, 0, sizeof(*s));
	s->key = key;
	s->alg = alg;
	s->mode = SOFT_OK;
	sg->alg = alg;
	sg->sign = soft_sign;
	sg->ctx = s;
}

/* ------------------------------------------------------------ CA, devices */

static X509 *
make_ca(EVP_PKEY *key, enum tca_sig_alg alg, const char *cn, time_t nb)
{
	struct tca_ca_params p;
	struct tca_signer sg;
	struct soft_signer ss;
	X509 *x = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	p.common_name = cn;
	p.organization = "Cumulocity";
	p.country = "US";
	p.not_before = nb;
	p.days = 3650;
	signer_init(&sg, &ss, key, alg);
	r = tca_cert_build_ca(&p, key, &sg, &x);
	ck_assert_msg(r == TCA_OK, "tca_cert_build_ca: %s", tca_strerror(r));
	return x;
}

static unsigned char *
der_of(X509 *x, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return der;
}

static struct tca_issuer *
issuer_of(X509 *ca)
{
	struct tca_issuer *iss = NULL;
	unsigned char *der;
	size_t len;

	der = der_of(ca, &len);
	ck_assert_int_eq(tca_issuer_new(der, len, &iss), TCA_OK);
	OPENSSL_free(der);
	return iss;
}

static X509 *
x509_of(const unsigned char *der, size_t len)
{
	X509 *x = NULL;

	ck_assert_int_eq(tca_cert_from_der(der, len, &x), TCA_OK);
	return x;
}

/* A device certificate for CN=cn under iss, valid from now. */
struct dev {
	unsigned char *der;
	size_t len;
	struct tca_cert_info info;	/* serial: the magnitude */
	X509 *x;
};

static void
dev_issue(struct dev *d, const struct tca_issuer *iss, const struct tca_signer *sg,
    const char *cn, time_t now)
{
	struct tca_device_params dp;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	tca_csr *csr = NULL;
	unsigned char *rd = NULL;
	char why[256] = "";
	int n, r;

	memset(d, 0, sizeof(*d));
	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(name);
	ck_assert_int_eq(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	ck_assert_int_eq(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	ck_assert_int_eq(X509_REQ_set_subject_name(req, name), 1);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, dev_key), 1);
	ck_assert_int_gt(X509_REQ_sign(req, dev_key, EVP_sha256()), 0);
	n = i2d_X509_REQ(req, &rd);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(tca_csr_parse(rd, (size_t)n, &csr, why, sizeof(why)), TCA_OK);
	memset(&dp, 0, sizeof(dp));
	dp.now = now;
	dp.default_days = 365;
	dp.san = TCA_SAN_URI;
	dp.tenant = "t100";
	dp.device_id = cn;
	r = tca_cert_issue_device(iss, sg, csr, &dp, &d->info, &d->der, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "issue: %s %s", tca_strerror(r), why);
	d->len = d->info.der_len;
	d->x = x509_of(d->der, d->len);
	tca_csr_free(csr);
	OPENSSL_free(rd);
	X509_NAME_free(name);
	X509_REQ_free(req);
}

static void
dev_free(struct dev *d)
{
	X509_free(d->x);
	OPENSSL_free(d->der);
	memset(d, 0, sizeof(*d));
}

/* One tenant CA of key type k with three device certificates. */
struct fx {
	int k;
	time_t now;
	X509 *ca_x;
	unsigned char *ca_der;
	size_t ca_len;
	struct tca_issuer *ca;
	struct soft_signer ss;
	struct tca_signer sg;
	struct dev revoked, good, unlisted;
};

static void
fx_init(struct fx *f, int k, time_t now)
{
	memset(f, 0, sizeof(*f));
	f->k = k;
	f->now = now;
	f->ca_x = make_ca(ca_keys[k], ca_algs[k], "t100", now - DAY);
	f->ca_der = der_of(f->ca_x, &f->ca_len);
	f->ca = issuer_of(f->ca_x);
	signer_init(&f->sg, &f->ss, ca_keys[k], ca_algs[k]);
	dev_issue(&f->revoked, f->ca, &f->sg, "dev-revoked", now);
	dev_issue(&f->good, f->ca, &f->sg, "dev-good", now);
	dev_issue(&f->unlisted, f->ca, &f->sg, "dev-unlisted", now);
	f->ss.calls = 0;
}

static void
fx_free(struct fx *f)
{
	dev_free(&f->revoked);
	dev_free(&f->good);
	dev_free(&f->unlisted);
	tca_issuer_free(f->ca);
	OPENSSL_free(f->ca_der);
	X509_free(f->ca_x);
}

/* ------------------------------------------------------------ OpenSSL views */

static int64_t
asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

static X509_CRL *
crl_parse(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	ck_assert_msg(crl != NULL, "d2i_X509_CRL failed");
	ck_assert_ptr_eq(p, der + len);
	return crl;
}

/* The serial's magnitude as OpenSSL reads it; never negative. */
static int
serial_is(const ASN1_INTEGER *ai, const unsigned char *mag, size_t len)
{
	unsigned char buf[64];
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	int n, ok;

	ck_assert_ptr_nonnull(bn);
	ck_assert_int_eq(BN_is_negative(bn), 0);
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	while (len > 1 && mag[0] == 0) {
		mag++;
		len--;
	}
	if (n == 0)	/* BN_bn2bin writes nothing for zero */
		return len == 1 && mag[0] == 0;
	ok = (size_t)n == len && memcmp(buf, mag, len) == 0;
	return ok;
}

/* X509_verify_cert of leaf against the CA certificates (trusted) and crl,
 * with X509_V_FLAG_CRL_CHECK, at time at: X509_V_OK or the error. */
static int
store_verify(X509 *const *cas, size_t ncas, X509_CRL *crl, X509 *leaf, time_t at)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	size_t i;
	int rc, err;

	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(ctx);
	for (i = 0; i < ncas; i++)
		ck_assert_int_eq(X509_STORE_add_cert(st, cas[i]), 1);
	ck_assert_int_eq(X509_STORE_add_crl(st, crl), 1);
	ck_assert_int_eq(X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
	X509_STORE_CTX_set_time(ctx, 0, at);
	rc = X509_verify_cert(ctx);
	err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return rc == 1 ? X509_V_OK : err;
}

/* The TBS of a signed DER object (Certificate, CertificateList, ...). */
static void
tbs_of(const unsigned char *der, size_t len, struct tca_der_tlv *tbs)
{
	struct tca_der_tlv outer;
	size_t pos = 0;

	ck_assert_int_eq(tca_der_get_tag(der, len, &pos, 0x30, &outer), TCA_OK);
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(outer.val, outer.vlen, &pos, 0x30, tbs), TCA_OK);
}

/* ------------------------------------------------------------ reasons */

START_TEST(test_reason_names)
{
	static const struct { const char *name; int code; } ok[] = {
		{ "unspecified", 0 }, { "keyCompromise", 1 }, { "cACompromise", 2 },
		{ "affiliationChanged", 3 }, { "superseded", 4 },
		{ "cessationOfOperation", 5 }, { "privilegeWithdrawn", 9 },
		{ "key-compromise", 1 }, { "ca-compromise", 2 },
		{ "affiliation-changed", 3 }, { "cessation-of-operation", 5 },
		{ "privilege-withdrawn", 9 }, { "KEYCOMPROMISE", 1 },
		{ "cacompromise", 2 }, { "Key-Compromise", 1 }, { "SUPERSEDED", 4 },
		{ "Unspecified", 0 },
	};
	char why[256];
	size_t i;
	int v, c;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		why[0] = '\0';
		ck_assert_msg(tca_crl_reason_parse(ok[i].name, &v, why, sizeof(why)) ==
		    TCA_OK, "%s: %s", ok[i].name, why);
		ck_assert_int_eq(v, ok[i].code);
	}
	ck_assert_str_eq(tca_crl_reason_name(0), "unspecified");
	ck_assert_str_eq(tca_crl_reason_name(1), "keyCompromise");
	ck_assert_str_eq(tca_crl_reason_name(2), "cACompromise");
	ck_assert_str_eq(tca_crl_reason_name(3), "affiliationChanged");
	ck_assert_str_eq(tca_crl_reason_name(4), "superseded");
	ck_assert_str_eq(tca_crl_reason_name(5), "cessationOfOperation");
	ck_assert_str_eq(tca_crl_reason_name(9), "privilegeWithdrawn");
	for (c = -2; c < 20; c++) {
		if (c == 0 || (c >= 1 && c <= 5) || c == 9)
			continue;
		ck_assert_ptr_null(tca_crl_reason_name(c));
	}
	/* every name round-trips */
	for (c = 0; c < 10; c++) {
		if (tca_crl_reason_name(c) == NULL)
			continue;
		ck_assert_int_eq(tca_crl_reason_parse(tca_crl_reason_name(c), &v, NULL, 0),
		    TCA_OK);
		ck_assert_int_eq(v, c);
	}

	v = 77;
	ck_assert_int_eq(tca_crl_reason_parse("certificateHold", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "certificateHold is refused: revocation is irreversible");
	ck_assert_int_eq(v, 77);
	ck_assert_int_eq(tca_crl_reason_parse("certificate-hold", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "certificateHold is refused: revocation is irreversible");
	ck_assert_int_eq(tca_crl_reason_parse("CERTIFICATEHOLD", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "certificateHold is refused: revocation is irreversible");
	ck_assert_int_eq(tca_crl_reason_parse("removeFromCRL", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "removeFromCRL is refused: revocation is irreversible");
	ck_assert_int_eq(tca_crl_reason_parse("remove-from-crl", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "removeFromCRL is refused: revocation is irreversible");
	ck_assert_int_eq(tca_crl_reason_parse("aACompromise", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(why, "does not apply"));
	ck_assert_int_eq(v, 77);

	ck_assert_int_eq(tca_crl_reason_parse("stolen", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(why, "\"stolen\""));
	ck_assert_ptr_nonnull(strstr(why, "key-compromise"));
	ck_assert_ptr_nonnull(strstr(why, "privilege-withdrawn"));
	ck_assert_int_eq(tca_crl_reason_parse("", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_crl_reason_parse("1", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_crl_reason_parse("key_compromise", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_crl_reason_parse("keyCompromise ", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	/* a peer's bytes are sanitized in the reason */
	ck_assert_int_eq(tca_crl_reason_parse("a\nb\"c", &v, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_null(strchr(why, '\n'));
	ck_assert_int_eq(tca_crl_reason_parse("stolen", &v, NULL, 0), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_crl_reason_parse(NULL, &v, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_reason_parse("superseded", NULL, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(v, 77);
}
END_TEST

/* ------------------------------------------------------------ der.h */

static void
check_gentime(int64_t t, const char *want)
{
	unsigned char buf[32];
	size_t pos = 0;
	struct tca_der_tlv tlv;
	int64_t back = 0;

	ck_assert_int_eq(tca_der_put_gentime(buf, sizeof(buf), &pos, t), TCA_OK);
	ck_assert_uint_eq(pos, 17);
	ck_assert_int_eq(buf[0], 0x18);
	ck_assert_int_eq(buf[1], 15);
	ck_assert_int_eq(memcmp(buf + 2, want, 15), 0);
	pos = 0;
	ck_assert_int_eq(tca_der_get(buf, 17, &pos, &tlv), TCA_OK);
	ck_assert_int_eq(tca_der_get_time(&tlv, &back), TCA_OK);
	ck_assert_int_eq(back, t);
}

/* INTEGER of mag, compared with want and with OpenSSL's reading. */
static void
check_uint(const unsigned char *mag, size_t len, const unsigned char *want,
    size_t wlen)
{
	unsigned char buf[64];
	const unsigned char *p = buf;
	ASN1_INTEGER *ai;
	size_t pos = 0;

	ck_assert_uint_eq(tca_der_uint_len(mag, len), wlen);
	ck_assert_int_eq(tca_der_put_uint(buf, sizeof(buf), &pos, mag, len), TCA_OK);
	ck_assert_uint_eq(pos, wlen);
	ck_assert_int_eq(memcmp(buf, want, wlen), 0);
	ai = d2i_ASN1_INTEGER(NULL, &p, (long)pos);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(serial_is(ai, mag, len), 1);
	ASN1_INTEGER_free(ai);
}

START_TEST(test_der_writers)
{
	static const unsigned char twenty[20] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
	};
	unsigned char want[32], mag[8], buf[32];
	size_t pos;
	uint64_t got;
	ASN1_INTEGER *ai;
	const unsigned char *p;

	/* time lengths follow tca_der_put_time's choice */
	ck_assert_uint_eq(tca_der_time_len(0), 15);
	ck_assert_uint_eq(tca_der_time_len(INT64_C(-631152000)), 15);	/* 1950 */
	ck_assert_uint_eq(tca_der_time_len(INT64_C(-631152001)), 0);
	ck_assert_uint_eq(tca_der_time_len(INT64_C(2524607999)), 15);	/* 2049 */
	ck_assert_uint_eq(tca_der_time_len(INT64_C(2524608000)), 17);	/* 2050 */
	ck_assert_uint_eq(tca_der_time_len(INT64_C(253402300799)), 17);	/* 9999 */
	ck_assert_uint_eq(tca_der_time_len(INT64_C(253402300800)), 0);
	pos = 0;
	ck_assert_int_eq(tca_der_put_time(buf, sizeof(buf), &pos, INT64_C(2524607999)),
	    TCA_OK);
	ck_assert_uint_eq(pos, 15);
	pos = 0;
	ck_assert_int_eq(tca_der_put_time(buf, sizeof(buf), &pos, INT64_C(2524608000)),
	    TCA_OK);
	ck_assert_uint_eq(pos, 17);

	check_gentime(0, "19700101000000Z");
	check_gentime(INT64_C(951782400), "20000229000000Z");
	check_gentime(INT64_C(2524607999), "20491231235959Z");
	check_gentime(INT64_C(2524608000), "20500101000000Z");
	check_gentime(INT64_C(-631152000), "19500101000000Z");
	check_gentime(INT64_C(253402300799), "99991231235959Z");
	pos = 0;
	ck_assert_int_eq(tca_der_put_gentime(buf, sizeof(buf), &pos,
	    INT64_C(-631152001)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_der_put_gentime(buf, sizeof(buf), &pos,
	    INT64_C(253402300800)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_der_put_gentime(buf, 16, &pos, 0), TCA_ERR_INTERNAL);

	check_uint((const unsigned char *)"\x00", 1, (const unsigned char *)"\x02\x01\x00", 3);
	check_uint((const unsigned char *)"\x01", 1, (const unsigned char *)"\x02\x01\x01", 3);
	check_uint((const unsigned char *)"\x7f", 1, (const unsigned char *)"\x02\x01\x7f", 3);
	check_uint((const unsigned char *)"\x80", 1,
	    (const unsigned char *)"\x02\x02\x00\x80", 4);
	check_uint((const unsigned char *)"\x00\x00\x7f", 3,
	    (const unsigned char *)"\x02\x01\x7f", 3);
	check_uint((const unsigned char *)"\x00\x80", 2,
	    (const unsigned char *)"\x02\x02\x00\x80", 4);
	check_uint((const unsigned char *)"\x00\x00", 2, (const unsigned char *)"\x02\x01\x00", 3);
	check_uint((const unsigned char *)"\x12\x34", 2,
	    (const unsigned char *)"\x02\x02\x12\x34", 4);
	want[0] = 0x02;
	want[1] = 21;
	want[2] = 0x00;
	memcpy(want + 3, twenty, 20);
	check_uint(twenty, 20, want, 23);
	ck_assert_uint_eq(tca_der_uint_len(NULL, 1), 0);
	ck_assert_uint_eq(tca_der_uint_len(twenty, 0), 0);
	pos = 0;
	ck_assert_int_eq(tca_der_put_uint(buf, 3, &pos, (const unsigned char *)"\x80", 1),
	    TCA_ERR_INTERNAL);

	tca_der_u64_mag(0, mag);
	check_uint(mag, 8, (const unsigned char *)"\x02\x01\x00", 3);
	tca_der_u64_mag(UINT64_C(0x0102030405060708), mag);
	ck_assert_int_eq(memcmp(mag, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), 0);
	tca_der_u64_mag(UINT64_MAX, mag);
	pos = 0;
	ck_assert_int_eq(tca_der_put_uint(buf, sizeof(buf), &pos, mag, 8), TCA_OK);
	ck_assert_uint_eq(pos, 11);
	p = buf;
	ai = d2i_ASN1_INTEGER(NULL, &p, (long)pos);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ASN1_INTEGER_get_uint64(&got, ai), 1);
	ck_assert(got == UINT64_MAX);
	ASN1_INTEGER_free(ai);
}
END_TEST

/* ------------------------------------------------------------ CRLs */

static const unsigned char big_serial[20] = {
	0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19
};

/* Entries for f: the revoked device (keyCompromise) and a mix of serial
 * shapes and reasons; the good and unlisted devices are not on it. */
static size_t
fx_entries(const struct fx *f, struct tca_crl_entry *e)
{
	size_t n = 0;

	memset(e, 0, 6 * sizeof(*e));
	e[n].serial = f->revoked.info.serial;
	e[n].serial_len = f->revoked.info.serial_len;
	e[n].revoked_at = f->now + 60;
	e[n++].reason = TCA_REASON_KEY_COMPROMISE;
	e[n].serial = (const unsigned char *)"\x01";	/* unspecified: no extension */
	e[n].serial_len = 1;
	e[n].revoked_at = f->now - 2 * DAY;
	e[n++].reason = TCA_REASON_UNSPECIFIED;
	e[n].serial = (const unsigned char *)"\x80\x01";	/* needs a 0x00 */
	e[n].serial_len = 2;
	e[n].revoked_at = f->now - DAY;
	e[n++].reason = TCA_REASON_SUPERSEDED;
	e[n].serial = big_serial;
	e[n].serial_len = sizeof(big_serial);
	e[n].revoked_at = f->now - 3600;
	e[n++].reason = TCA_REASON_PRIVILEGE_WITHDRAWN;
	e[n].serial = (const unsigned char *)"\x00\x42";	/* leading zero dropped */
	e[n].serial_len = 2;
	e[n].revoked_at = f->now - 7200;
	e[n++].reason = TCA_REASON_CESSATION_OF_OPERATION;
	e[n].serial = (const unsigned char *)"\x7f\xff\x00";
	e[n].serial_len = 3;
	e[n].revoked_at = f->now - 10;
	e[n++].reason = TCA_REASON_CA_COMPROMISE;
	return n;
}

static void
crl_make(const struct fx *f, const struct tca_crl_entry *e, size_t n, uint64_t number,
    unsigned char **der, size_t *len)
{
	struct tca_crl_params p;
	int r;

	memset(&p, 0, sizeof(p));
	p.crl_number = number;
	p.this_update = f->now;
	p.next_update = f->now + 7 * DAY;
	r = tca_crl_build(f->ca, &f->sg, &p, e, n, der, len);
	ck_assert_msg(r == TCA_OK, "tca_crl_build: %s", tca_strerror(r));
	ck_assert_ptr_nonnull(*der);
}

START_TEST(test_crl_openssl)
{
	struct fx f;
	struct tca_crl_entry e[6];
	unsigned char *der = NULL, *nd = NULL;
	size_t len = 0, n, i;
	X509_CRL *crl;
	EVP_PKEY *pub;
	STACK_OF(X509_REVOKED) *revs;
	X509_REVOKED *rev;
	ASN1_INTEGER *num;
	ASN1_ENUMERATED *why;
	AUTHORITY_KEYID *aki;
	const ASN1_OCTET_STRING *ski;
	uint64_t number, got_number = 0;
	int64_t tu = 0, nu = 0;
	size_t got_n = 0;
	int crit, nlen;
	struct tca_der_tlv tbs, t;
	size_t pos;

	fx_init(&f, _i, time(NULL));
	n = fx_entries(&f, e);
	number = 42;
	crl_make(&f, e, n, number, &der, &len);
	ck_assert_int_eq(f.ss.calls, 1);

	crl = crl_parse(der, len);
	pub = X509_get0_pubkey(f.ca_x);
	ck_assert_int_eq(X509_CRL_verify(crl, pub), 1);
	ck_assert_int_eq(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	ck_assert_int_eq(X509_CRL_get_signature_nid(crl), ca_alg_nids[_i]);
	ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(f.ca_x)), 0);
	nlen = i2d_X509_NAME(X509_CRL_get_issuer(crl), &nd);
	ck_assert_uint_eq((size_t)nlen, f.ca->subject.len);
	ck_assert_int_eq(memcmp(nd, f.ca->subject.p, f.ca->subject.len), 0);
	OPENSSL_free(nd);
	ck_assert_int_eq(asn1_unix(X509_CRL_get0_lastUpdate(crl)), f.now);
	ck_assert_int_eq(asn1_unix(X509_CRL_get0_nextUpdate(crl)), f.now + 7 * DAY);

	/* crlExtensions: exactly AKI and cRLNumber, non-critical */
	ck_assert_int_eq(X509_CRL_get_ext_count(crl), 2);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	ck_assert_ptr_nonnull(num);
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(ASN1_INTEGER_get_uint64(&got_number, num), 1);
	ck_assert(got_number == number);
	ASN1_INTEGER_free(num);
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
	ck_assert_ptr_nonnull(aki);
	ck_assert_int_eq(crit, 0);
	ski = X509_get0_subject_key_id(f.ca_x);
	ck_assert_ptr_nonnull(ski);
	ck_assert_ptr_nonnull(aki->keyid);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);
	ck_assert_ptr_null(aki->issuer);
	ck_assert_ptr_null(aki->serial);
	AUTHORITY_KEYID_free(aki);

	/* entries, in order, with their reasons */
	revs = X509_CRL_get_REVOKED(crl);
	ck_assert_ptr_nonnull(revs);
	ck_assert_int_eq(sk_X509_REVOKED_num(revs), (int)n);
	for (i = 0; i < n; i++) {
		rev = sk_X509_REVOKED_value(revs, (int)i);
		ck_assert_msg(serial_is(X509_REVOKED_get0_serialNumber(rev), e[i].serial,
		    e[i].serial_len), "entry %zu serial", i);
		ck_assert_int_eq(asn1_unix(X509_REVOKED_get0_revocationDate(rev)),
		    e[i].revoked_at);
		why = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
		if (e[i].reason == TCA_REASON_UNSPECIFIED) {
			ck_assert_ptr_null(why);
			ck_assert_int_eq(crit, -1);
			ck_assert_int_eq(X509_REVOKED_get_ext_count(rev), 0);
		} else {
			ck_assert_ptr_nonnull(why);
			ck_assert_int_eq(crit, 0);
			ck_assert_int_eq(ASN1_ENUMERATED_get(why), e[i].reason);
			ck_assert_int_eq(X509_REVOKED_get_ext_count(rev), 1);
			ASN1_ENUMERATED_free(why);
		}
	}
	/* the serial that needs a 0x00 octet is encoded with one */
	ck_assert_ptr_nonnull(memmem(der, len, "\x02\x03\x00\x80\x01", 5));
	ck_assert_ptr_nonnull(memmem(der, len, "\x02\x01\x42\x17", 4));

	/* the TBS names the same algorithm as the outer signatureAlgorithm
	 * (OpenSSL checks that) and starts with version v2 */
	tbs_of(der, len, &tbs);
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(tbs.val, tbs.vlen, &pos, 0x02, &t), TCA_OK);
	ck_assert_uint_eq(t.vlen, 1);
	ck_assert_int_eq(t.val[0], 1);

	ck_assert_int_eq(tca_crl_info(der, len, &got_number, &tu, &nu, &got_n), TCA_OK);
	ck_assert(got_number == number);
	ck_assert_int_eq(tu, f.now);
	ck_assert_int_eq(nu, f.now + 7 * DAY);
	ck_assert_uint_eq(got_n, n);
	ck_assert_int_eq(tca_crl_info(der, len, NULL, NULL, NULL, NULL), TCA_OK);

	X509_CRL_free(crl);
	OPENSSL_free(der);
	fx_free(&f);
}
END_TEST

START_TEST(test_crl_store)
{
	struct fx f;
	struct tca_crl_entry e[6];
	unsigned char *der = NULL;
	size_t len = 0, n;
	X509_CRL *crl;
	time_t at;

	fx_init(&f, _i, time(NULL));
	n = fx_entries(&f, e);
	crl_make(&f, e, n, 7, &der, &len);
	crl = crl_parse(der, len);
	at = f.now + 3600;
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.revoked.x, at),
	    X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.good.x, at), X509_V_OK);
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.unlisted.x, at), X509_V_OK);
	/* past nextUpdate OpenSSL calls the CRL expired: it is checked */
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.good.x, f.now + 8 * DAY),
	    X509_V_ERR_CRL_HAS_EXPIRED);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	fx_free(&f);
}
END_TEST

START_TEST(test_crl_empty)
{
	struct fx f;
	unsigned char *der = NULL;
	size_t len = 0, pos, got_n = 99;
	X509_CRL *crl;
	struct tca_der_tlv tbs, t;
	int j, k;

	for (k = 0; k < NKEYS; k++) {
		fx_init(&f, k, time(NULL));
		crl_make(&f, NULL, 0, 1, &der, &len);
		crl = crl_parse(der, len);
		ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(f.ca_x)), 1);
		ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0, 1);
		ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.revoked.x, f.now + 60),
		    X509_V_OK);
		/* version, signature, issuer, thisUpdate, nextUpdate, then [0]:
		 * no empty revokedCertificates SEQUENCE (RFC 5280 5.1.2.6) */
		tbs_of(der, len, &tbs);
		pos = 0;
		for (j = 0; j < 5; j++)
			ck_assert_int_eq(tca_der_get(tbs.val, tbs.vlen, &pos, &t), TCA_OK);
		ck_assert_int_eq(tca_der_get(tbs.val, tbs.vlen, &pos, &t), TCA_OK);
		ck_assert_int_eq(t.tag, 0xa0);
		ck_assert_uint_eq(pos, tbs.vlen);
		ck_assert_int_eq(tca_crl_info(der, len, NULL, NULL, NULL, &got_n), TCA_OK);
		ck_assert_uint_eq(got_n, 0);
		X509_CRL_free(crl);
		OPENSSL_free(der);
		fx_free(&f);
	}
}
END_TEST

START_TEST(test_crl_times_numbers)
{
	struct fx f;
	struct tca_crl_params p;
	struct tca_crl_entry e;
	unsigned char *der = NULL;
	size_t len = 0, got_n;
	uint64_t got = 1;
	int64_t tu, nu;
	X509_CRL *crl;
	ASN1_INTEGER *num;
	X509_REVOKED *rev;

	fx_init(&f, 0, time(NULL));
	memset(&p, 0, sizeof(p));
	memset(&e, 0, sizeof(e));
	/* thisUpdate the last second of 2049, nextUpdate in 2050 */
	p.this_update = test_utc(2049, 12, 31, 23, 59, 59);
	p.next_update = test_utc(2050, 1, 8, 0, 0, 0);
	p.crl_number = UINT64_MAX;
	e.serial = f.revoked.info.serial;
	e.serial_len = f.revoked.info.serial_len;
	e.revoked_at = test_utc(2051, 2, 3, 4, 5, 6);
	e.reason = TCA_REASON_AFFILIATION_CHANGED;
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, &e, 1, &der, &len), TCA_OK);
	crl = crl_parse(der, len);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(f.ca_x)), 1);
	ck_assert_int_eq(ASN1_STRING_type(X509_CRL_get0_lastUpdate(crl)), V_ASN1_UTCTIME);
	ck_assert_int_eq(ASN1_STRING_type(X509_CRL_get0_nextUpdate(crl)),
	    V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(asn1_unix(X509_CRL_get0_lastUpdate(crl)), p.this_update);
	ck_assert_int_eq(asn1_unix(X509_CRL_get0_nextUpdate(crl)), p.next_update);
	rev = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), 0);
	ck_assert_int_eq(ASN1_STRING_type(X509_REVOKED_get0_revocationDate(rev)),
	    V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(asn1_unix(X509_REVOKED_get0_revocationDate(rev)), e.revoked_at);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	ck_assert_ptr_nonnull(num);
	ck_assert_int_eq(ASN1_INTEGER_get_uint64(&got, num), 1);
	ck_assert(got == UINT64_MAX);
	ASN1_INTEGER_free(num);
	ck_assert_int_eq(tca_crl_info(der, len, &got, &tu, &nu, &got_n), TCA_OK);
	ck_assert(got == UINT64_MAX);
	ck_assert_int_eq(tu, p.this_update);
	ck_assert_int_eq(nu, p.next_update);
	ck_assert_uint_eq(got_n, 1);
	X509_CRL_free(crl);
	OPENSSL_free(der);

	/* cRLNumber 0, and one that needs a 0x00 octet */
	p.this_update = f.now;
	p.next_update = f.now + 1;
	p.crl_number = 0;
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, NULL, 0, &der, &len), TCA_OK);
	ck_assert_int_eq(tca_crl_info(der, len, &got, NULL, NULL, NULL), TCA_OK);
	ck_assert(got == 0);
	crl = crl_parse(der, len);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	ck_assert_int_eq(ASN1_INTEGER_get_uint64(&got, num), 1);
	ck_assert(got == 0);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	OPENSSL_free(der);
	p.crl_number = 0x80;
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, NULL, 0, &der, &len), TCA_OK);
	ck_assert_int_eq(tca_crl_info(der, len, &got, NULL, NULL, NULL), TCA_OK);
	ck_assert(got == 0x80);
	ck_assert_ptr_nonnull(memmem(der, len, "\x04\x04\x02\x02\x00\x80", 6));
	OPENSSL_free(der);
	fx_free(&f);
}
END_TEST

START_TEST(test_crl_refusals)
{
	struct fx f;
	struct tca_crl_params p;
	struct tca_crl_entry e;
	struct tca_signer sg;
	struct soft_signer ss;
	unsigned char *der = (unsigned char *)"x", *good = NULL, *bad;
	size_t len = 5, glen = 0, i;
	static const unsigned char serial21[21] = { 1 };
	static const int bad_reasons[] = { 6, 7, 8, 10, 11, -1, 255 };

	fx_init(&f, 0, time(NULL));
	memset(&p, 0, sizeof(p));
	p.this_update = f.now;
	p.next_update = f.now + DAY;
	memset(&e, 0, sizeof(e));
	e.serial = f.revoked.info.serial;
	e.serial_len = f.revoked.info.serial_len;
	e.revoked_at = f.now;

#define REFUSED(expect) do {						\
	der = (unsigned char *)"x";					\
	len = 5;							\
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, &e, 1, &der, &len),	\
	    (expect));							\
	ck_assert_ptr_null(der);					\
	ck_assert_uint_eq(len, 0);					\
} while (0)

	p.next_update = p.this_update;
	REFUSED(TCA_ERR_INVALID_ARG);
	p.next_update = p.this_update - 1;
	REFUSED(TCA_ERR_INVALID_ARG);
	p.this_update = test_utc(1949, 12, 31, 23, 59, 59);
	p.next_update = f.now;
	REFUSED(TCA_ERR_INVALID_ARG);
	p.this_update = f.now;
	p.next_update = test_utc(10000, 1, 1, 0, 0, 0);
	REFUSED(TCA_ERR_INVALID_ARG);
	p.next_update = f.now + DAY;

	e.serial_len = 0;
	REFUSED(TCA_ERR_INVALID_ARG);
	e.serial = serial21;
	e.serial_len = sizeof(serial21);
	REFUSED(TCA_ERR_INVALID_ARG);
	e.serial = NULL;
	e.serial_len = 1;
	REFUSED(TCA_ERR_INVALID_ARG);
	e.serial = f.revoked.info.serial;
	e.serial_len = f.revoked.info.serial_len;
	for (i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
		e.reason = bad_reasons[i];
		REFUSED(TCA_ERR_INVALID_ARG);
	}
	e.reason = TCA_REASON_KEY_COMPROMISE;
	e.revoked_at = test_utc(1900, 1, 1, 0, 0, 0);
	REFUSED(TCA_ERR_INVALID_ARG);
	e.revoked_at = f.now;
	ck_assert_int_eq(f.ss.calls, 0);

	/* NULL arguments */
	ck_assert_int_eq(tca_crl_build(NULL, &f.sg, &p, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_build(f.ca, NULL, &p, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, NULL, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, NULL, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, &e, 1, NULL, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, &e, 1, &der, NULL),
	    TCA_ERR_INVALID_ARG);

	/* a signer whose algorithm is not the CA key's: refused before
	 * signing (ECDSA-SHA384 with a P-256 key would verify) */
	signer_init(&sg, &ss, ca_keys[0], TCA_SIG_ECDSA_SHA384);
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(ss.calls, 0);
	signer_init(&sg, &ss, ca_keys[0], TCA_SIG_ED25519);
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	signer_init(&sg, &ss, ca_keys[0], TCA_SIG_NONE);
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(ss.calls, 0);

	/* signers that return a wrong signature or fail: no CRL */
	signer_init(&sg, &ss, ca_keys[0], TCA_SIG_ECDSA_SHA256);
	ss.mode = SOFT_GARBAGE;
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len), TCA_ERR_CRYPTO);
	ck_assert_ptr_null(der);
	ck_assert_int_eq(ss.calls, 1);
	ss.mode = SOFT_WRONG_KEY;
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len), TCA_ERR_CRYPTO);
	ck_assert_ptr_null(der);
	ss.mode = SOFT_FAIL;
	ck_assert_int_eq(tca_crl_build(f.ca, &sg, &p, &e, 1, &der, &len),
	    TCA_ERR_TOKEN_UNAVAILABLE);
	ck_assert_ptr_null(der);

	/* tca_crl_info on broken DER */
	crl_make(&f, &e, 1, 5, &good, &glen);
	ck_assert_int_eq(tca_crl_info(good, glen, NULL, NULL, NULL, NULL), TCA_OK);
	for (i = 0; i < glen; i += 1 + i / 8)
		ck_assert_int_eq(tca_crl_info(good, i, NULL, NULL, NULL, NULL),
		    TCA_ERR_BAD_REQUEST);
	bad = malloc(glen + 1);
	ck_assert_ptr_nonnull(bad);
	memcpy(bad, good, glen);
	bad[glen] = 0;
	ck_assert_int_eq(tca_crl_info(bad, glen + 1, NULL, NULL, NULL, NULL),
	    TCA_ERR_BAD_REQUEST);
	free(bad);
	ck_assert_int_eq(tca_crl_info(NULL, 10, NULL, NULL, NULL, NULL),
	    TCA_ERR_BAD_REQUEST);
	/* a certificate is not a CRL */
	ck_assert_int_eq(tca_crl_info(f.ca_der, f.ca_len, NULL, NULL, NULL, NULL),
	    TCA_ERR_BAD_REQUEST);
	OPENSSL_free(good);
	fx_free(&f);
#undef REFUSED
}
END_TEST

static double
secs_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

#define BIG_N 100000

START_TEST(test_crl_100k)
{
	static const int cycle[] = { 0, 1, 3, 4, 5, 9 };
	struct fx f;
	struct tca_crl_entry *e;
	unsigned char (*serials)[TCA_SERIAL_LEN];
	unsigned char *der = NULL;
	size_t len = 0, i, got_n = 0;
	struct timespec t0;
	double t_build, t_parse, t_verify, t_store;
	/* 100,000 entries (10,000 under valgrind: tests/testutil.h test_repeat) */
	const size_t big_n = test_repeat(BIG_N);
	X509_CRL *crl;
	STACK_OF(X509_REVOKED) *revs;
	X509_REVOKED *rev;
	ASN1_ENUMERATED *why;
	int rc;

	fx_init(&f, _i, time(NULL));
	e = calloc(big_n, sizeof(*e));
	serials = calloc(big_n, sizeof(*serials));
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(serials);
	for (i = 0; i < big_n; i++) {
		if (i == big_n / 2) {
			e[i].serial = f.revoked.info.serial;
			e[i].serial_len = f.revoked.info.serial_len;
		} else {
			ck_assert_int_eq(tca_random_serial(serials[i]), TCA_OK);
			e[i].serial = serials[i];
			e[i].serial_len = TCA_SERIAL_LEN;
		}
		e[i].revoked_at = f.now - (int64_t)i;
		e[i].reason = cycle[i % 6];
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	crl_make(&f, e, big_n, 100000, &der, &len);
	t_build = secs_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	crl = crl_parse(der, len);
	t_parse = secs_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(f.ca_x)), 1);
	t_verify = secs_since(&t0);
	revs = X509_CRL_get_REVOKED(crl);
	ck_assert_int_eq(sk_X509_REVOKED_num(revs), (int)big_n);
	for (i = 0; i < big_n; i += 9973) {
		rev = sk_X509_REVOKED_value(revs, (int)i);
		ck_assert(serial_is(X509_REVOKED_get0_serialNumber(rev), e[i].serial,
		    e[i].serial_len));
		ck_assert_int_eq(asn1_unix(X509_REVOKED_get0_revocationDate(rev)),
		    e[i].revoked_at);
		why = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
		if (e[i].reason == 0)
			ck_assert_ptr_null(why);
		else {
			ck_assert_ptr_nonnull(why);
			ck_assert_int_eq(ASN1_ENUMERATED_get(why), e[i].reason);
		}
		ASN1_ENUMERATED_free(why);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = store_verify(&f.ca_x, 1, crl, f.revoked.x, f.now + 60);
	t_store = secs_since(&t0);
	ck_assert_int_eq(rc, X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.good.x, f.now + 60), X509_V_OK);
	ck_assert_int_eq(tca_crl_info(der, len, NULL, NULL, NULL, &got_n), TCA_OK);
	ck_assert_uint_eq(got_n, big_n);

	fprintf(stderr, "crl-%zu-entries %s: %zu octets; tca_crl_build %.1f ms; "
	    "OpenSSL d2i_X509_CRL %.1f ms, X509_CRL_verify %.1f ms, "
	    "X509_verify_cert with CRL check %.1f ms\n", big_n, key_names[_i], len,
	    t_build * 1e3, t_parse * 1e3, t_verify * 1e3, t_store * 1e3);

	X509_CRL_free(crl);
	OPENSSL_free(der);
	free(serials);
	free(e);
	fx_free(&f);
}
END_TEST

START_TEST(test_crl_reissue)
{
	struct fx f;
	struct tca_crl_entry e[6];
	struct tca_issuer *iss2;
	struct tca_der_tlv tbs1, tbs2;
	unsigned char *der1 = NULL, *der2 = NULL, *ca2_der = NULL;
	size_t len1 = 0, len2 = 0, ca2_len = 0, n;
	struct tca_crl_params p;
	X509 *ca2;
	X509_CRL *crl;
	time_t at;
	int r;

	fx_init(&f, _i, time(NULL));
	r = tca_cert_reissue_ca(f.ca_der, f.ca_len, f.now - 3600, 3650, TCA_SERIAL_NEW,
	    &f.sg, &ca2_der, &ca2_len);
	ck_assert_msg(r == TCA_OK, "reissue: %s", tca_strerror(r));
	ca2 = x509_of(ca2_der, ca2_len);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca2),
	    X509_get0_serialNumber(f.ca_x)), 0);
	ck_assert_int_eq(tca_issuer_new(ca2_der, ca2_len, &iss2), TCA_OK);

	/* signed once, under the re-issued CA certificate */
	n = fx_entries(&f, e);
	memset(&p, 0, sizeof(p));
	p.crl_number = 3;
	p.this_update = f.now;
	p.next_update = f.now + DAY;
	ck_assert_int_eq(tca_crl_build(iss2, &f.sg, &p, e, n, &der2, &len2), TCA_OK);
	crl = crl_parse(der2, len2);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(f.ca_x)), 1);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ca2)), 1);
	at = f.now + 60;
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.revoked.x, at),
	    X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(store_verify(&ca2, 1, crl, f.revoked.x, at),
	    X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(store_verify(&f.ca_x, 1, crl, f.good.x, at), X509_V_OK);
	ck_assert_int_eq(store_verify(&ca2, 1, crl, f.good.x, at), X509_V_OK);

	/* the same TBSCertList whichever certificate of the key is used */
	ck_assert_int_eq(tca_crl_build(f.ca, &f.sg, &p, e, n, &der1, &len1), TCA_OK);
	tbs_of(der1, len1, &tbs1);
	tbs_of(der2, len2, &tbs2);
	ck_assert_int_eq(tca_der_eq(&tbs1, &tbs2), 1);

	X509_CRL_free(crl);
	OPENSSL_free(der1);
	OPENSSL_free(der2);
	tca_issuer_free(iss2);
	X509_free(ca2);
	OPENSSL_free(ca2_der);
	fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------ OCSP */

struct lk_row {
	const unsigned char *serial;
	size_t len;
	struct tca_ocsp_cert_status st;
};

struct lk {
	struct lk_row rows[4];
	size_t n;
	int calls;
	int fail;		/* returned instead of an answer */
	int bad_status;		/* answer REVOKED with certificateHold */
	int no_fill;		/* TCA_OK without touching *out */
};

static int
lk_fn(void *ctx, const unsigned char *serial, size_t len, struct tca_ocsp_cert_status *out)
{
	struct lk *l = ctx;
	size_t i;

	l->calls++;
	ck_assert_int_ge(len, 1);
	ck_assert_int_le(len, 20);
	if (l->fail != 0)
		return l->fail;
	if (l->no_fill)
		return TCA_OK;
	if (l->bad_status) {
		out->status = TCA_OCSP_REVOKED;
		out->revoked_at = 1;
		out->reason = 6;
		return TCA_OK;
	}
	for (i = 0; i < l->n; i++) {
		if (l->rows[i].len == len && memcmp(l->rows[i].serial, serial, len) == 0) {
			*out = l->rows[i].st;
			return TCA_OK;
		}
	}
	out->status = TCA_OCSP_UNKNOWN;
	return TCA_OK;
}

/* good: f->good; revoked: f->revoked at now - 100, keyCompromise; the
 * unlisted device is unknown to the lookup */
static void
lk_init(struct lk *l, const struct fx *f)
{
	memset(l, 0, sizeof(*l));
	l->rows[0].serial = f->good.info.serial;
	l->rows[0].len = f->good.info.serial_len;
	l->rows[0].st.status = TCA_OCSP_GOOD;
	l->rows[1].serial = f->revoked.info.serial;
	l->rows[1].len = f->revoked.info.serial_len;
	l->rows[1].st.status = TCA_OCSP_REVOKED;
	l->rows[1].st.revoked_at = f->now - 100;
	l->rows[1].st.reason = TCA_REASON_KEY_COMPROMISE;
	l->n = 2;
}

static void
params_init(struct tca_ocsp_params *p, const struct fx *f)
{
	memset(p, 0, sizeof(*p));
	p->now = f->now;
	p->next_update = f->now + 3600;
}

/* tca_ocsp_respond that must succeed with status "successful" */
static void
respond_ok(struct fx *f, struct lk *l, const struct tca_ocsp_params *p,
    const unsigned char *req, size_t req_len, unsigned char **resp, size_t *resp_len)
{
	const char *status = NULL;
	int r;

	r = tca_ocsp_respond(f->ca, &f->sg, req, req_len, p, lk_fn, l, resp, resp_len,
	    &status);
	ck_assert_msg(r == TCA_OK, "tca_ocsp_respond: %s", tca_strerror(r));
	ck_assert_ptr_nonnull(*resp);
	ck_assert_ptr_nonnull(status);
	ck_assert_str_eq(status, "successful");
}

/* request for d (SHA-1 CertID, optional nonce) -> respond -> check */
static int
roundtrip(struct fx *f, struct lk *l, const struct tca_ocsp_params *p,
    const struct dev *d, const unsigned char *nonce, size_t nonce_len,
    struct tca_ocsp_cert_status *out, char *why, size_t whylen)
{
	unsigned char *req = NULL, *resp = NULL;
	size_t req_len = 0, resp_len = 0;
	int r;

	ck_assert_int_eq(tca_ocsp_request_build(d->der, d->len, f->ca_der, f->ca_len,
	    nonce, nonce_len, &req, &req_len), TCA_OK);
	respond_ok(f, l, p, req, req_len, &resp, &resp_len);
	r = tca_ocsp_response_check(resp, resp_len, d->der, d->len, f->ca_der, f->ca_len,
	    nonce, nonce_len, p->now + 10, out, why, whylen);
	OPENSSL_free(req);
	OPENSSL_free(resp);
	return r;
}

static OCSP_BASICRESP *
basic_of(const unsigned char *resp, size_t len)
{
	const unsigned char *p = resp;
	OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs;

	ck_assert_ptr_nonnull(rsp);
	ck_assert_ptr_eq(p, resp + len);
	ck_assert_int_eq(OCSP_response_status(rsp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(rsp);
	ck_assert_ptr_nonnull(bs);
	OCSP_RESPONSE_free(rsp);
	return bs;
}

/* OpenSSL's status for (cert, issuer, md) in bs; -1 if none */
static int
ossl_status(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer, const EVP_MD *md,
    int *reason, ASN1_GENERALIZEDTIME **rev)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, cert, issuer);
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
	int status = -1, rs = -1;

	ck_assert_ptr_nonnull(id);
	if (OCSP_resp_find_status(bs, id, &status, &rs, rev, &thisupd, &nextupd) != 1)
		status = -1;
	OCSP_CERTID_free(id);
	if (reason != NULL)
		*reason = rs;
	return status;
}

static int
malformed_is(const unsigned char *resp, size_t len)
{
	const unsigned char *p = resp;
	OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	int ok;

	ck_assert_ptr_nonnull(rsp);
	ok = p == resp + len &&
	    OCSP_response_status(rsp) == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST &&
	    OCSP_response_get1_basic(rsp) == NULL;
	OCSP_RESPONSE_free(rsp);
	ERR_clear_error();
	return ok;
}

START_TEST(test_ocsp_status)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_ocsp_cert_status st;
	unsigned char *req = NULL, *resp = NULL, keyhash[20];
	size_t req_len = 0, resp_len = 0, pos;
	unsigned int khl = sizeof(keyhash);
	char why[256] = "";
	OCSP_BASICRESP *bs;
	OCSP_SINGLERESP *single;
	const ASN1_OCTET_STRING *rid = NULL;
	const X509_NAME *rname = NULL;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *obj;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	struct tca_der_tlv outer, t, rb, basic, rd;
	int reason, r;

	fx_init(&f, _i, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);

	r = roundtrip(&f, &l, &p, &f.good, NULL, 0, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "good: %s", why);
	ck_assert_int_eq(st.status, TCA_OCSP_GOOD);
	ck_assert_int_eq(l.calls, 1);
	ck_assert_int_eq(f.ss.calls, 1);

	r = roundtrip(&f, &l, &p, &f.revoked, NULL, 0, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "revoked: %s", why);
	ck_assert_int_eq(st.status, TCA_OCSP_REVOKED);
	ck_assert_int_eq(st.revoked_at, f.now - 100);
	ck_assert_int_eq(st.reason, TCA_REASON_KEY_COMPROMISE);

	r = roundtrip(&f, &l, &p, &f.unlisted, NULL, 0, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "unknown: %s", why);
	ck_assert_int_eq(st.status, TCA_OCSP_UNKNOWN);
	ck_assert_int_eq(l.calls, 3);

	/* a lookup that answers nothing leaves the preset unknown, not good */
	l.no_fill = 1;
	r = roundtrip(&f, &l, &p, &f.good, NULL, 0, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "no fill: %s", why);
	ck_assert_int_eq(st.status, TCA_OCSP_UNKNOWN);
	ck_assert_int_eq(l.calls, 4);
	l.no_fill = 0;

	/* revoked, reason unspecified: no revocationReason at all */
	l.rows[1].st.reason = TCA_REASON_UNSPECIFIED;
	ck_assert_int_eq(tca_ocsp_request_build(f.revoked.der, f.revoked.len, f.ca_der,
	    f.ca_len, NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(ossl_status(bs, f.revoked.x, f.ca_x, EVP_sha1(), &reason, &rev),
	    V_OCSP_CERTSTATUS_REVOKED);
	ck_assert_int_eq(reason, OCSP_REVOKED_STATUS_NOSTATUS);
	ck_assert_int_eq(asn1_unix(rev), f.now - 100);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(st.reason, TCA_REASON_UNSPECIFIED);

	/* the response, as OpenSSL reads it */
	ck_assert_int_eq(OCSP_resp_count(bs), 1);
	ck_assert_int_eq(OCSP_resp_get0_id(bs, &rid, &rname), 1);
	ck_assert_ptr_null(rname);
	ck_assert_ptr_nonnull(rid);
	ck_assert_int_eq(X509_pubkey_digest(f.ca_x, EVP_sha1(), keyhash, &khl), 1);
	ck_assert_int_eq(ASN1_STRING_length(rid), 20);
	ck_assert_int_eq(memcmp(ASN1_STRING_get0_data(rid), keyhash, 20), 0);
	ck_assert_int_eq(asn1_unix(OCSP_resp_get0_produced_at(bs)), f.now);
	ck_assert_int_le(sk_X509_num(OCSP_resp_get0_certs(bs)), 0);
	alg = OCSP_resp_get0_tbs_sigalg(bs);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	ck_assert_int_eq(OBJ_obj2nid(obj), ca_alg_nids[_i]);
	single = OCSP_resp_get0(bs, 0);
	ck_assert_int_eq(OCSP_single_get0_status(single, &reason, &rev, &thisupd,
	    &nextupd), V_OCSP_CERTSTATUS_REVOKED);
	ck_assert_int_eq(asn1_unix(thisupd), f.now);
	ck_assert_int_eq(asn1_unix(nextupd), f.now + 3600);
	ck_assert_int_eq(ASN1_STRING_type(thisupd), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(ASN1_STRING_type(rev), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(OCSP_BASICRESP_get_ext_count(bs), 0);
	ck_assert_int_eq(OCSP_SINGLERESP_get_ext_count(single), 0);
	OCSP_BASICRESP_free(bs);

	/* ResponseData starts with responderID: version v1 is omitted */
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(resp, resp_len, &pos, 0x30, &outer), TCA_OK);
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(outer.val, outer.vlen, &pos, 0x0a, &t), TCA_OK);
	ck_assert_int_eq(tca_der_get_tag(outer.val, outer.vlen, &pos, 0xa0, &rb), TCA_OK);
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(rb.val, rb.vlen, &pos, 0x30, &t), TCA_OK);
	rb = t;
	pos = 0;
	ck_assert_int_eq(tca_der_get_tag(rb.val, rb.vlen, &pos, 0x06, &t), TCA_OK);
	ck_assert_int_eq(tca_der_get_tag(rb.val, rb.vlen, &pos, 0x04, &basic), TCA_OK);
	tbs_of(basic.val, basic.vlen, &rd);
	ck_assert_int_eq(rd.val[0], 0xa2);
	OPENSSL_free(resp);
	OPENSSL_free(req);

	/* nextUpdate omitted when next_update is 0 */
	p.next_update = 0;
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	bs = basic_of(resp, resp_len);
	single = OCSP_resp_get0(bs, 0);
	nextupd = (ASN1_GENERALIZEDTIME *)1;
	ck_assert_int_eq(OCSP_single_get0_status(single, NULL, NULL, &thisupd, &nextupd),
	    V_OCSP_CERTSTATUS_GOOD);
	ck_assert_ptr_null(nextupd);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der,
	    f.good.len, f.ca_der, f.ca_len, NULL, 0, f.now + 365 * DAY, &st, why,
	    sizeof(why)), TCA_OK);
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	OPENSSL_free(req);
	fx_free(&f);
}
END_TEST

START_TEST(test_ocsp_foreign)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_ocsp_cert_status st;
	struct tca_signer fsg;
	struct soft_signer fss;
	struct tca_issuer *fiss;
	struct dev fdev;
	X509 *fca;
	unsigned char *fca_der, *req = NULL, *resp = NULL;
	size_t fca_len, req_len = 0, resp_len = 0;
	char why[256] = "";
	OCSP_BASICRESP *bs;
	STACK_OF(X509) *sk;
	X509_STORE *store;

	fx_init(&f, _i, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	/* another tenant's CA, with the same subject Name: only the key
	 * hash tells them apart */
	fca = make_ca(foreign_key, TCA_SIG_ECDSA_SHA256, "t100", f.now - DAY);
	fca_der = der_of(fca, &fca_len);
	fiss = issuer_of(fca);
	signer_init(&fsg, &fss, foreign_key, TCA_SIG_ECDSA_SHA256);
	dev_issue(&fdev, fiss, &fsg, "dev-foreign", f.now);

	ck_assert_int_eq(tca_ocsp_request_build(fdev.der, fdev.len, fca_der, fca_len,
	    NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	ck_assert_int_eq(l.calls, 0);
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(ossl_status(bs, fdev.x, fca, EVP_sha1(), NULL, NULL),
	    V_OCSP_CERTSTATUS_UNKNOWN);
	/* signed by our CA, which OpenSSL confirms */
	sk = sk_X509_new_null();
	store = X509_STORE_new();
	ck_assert_int_gt(sk_X509_push(sk, f.ca_x), 0);
	ck_assert_int_eq(OCSP_basic_verify(bs, sk, store, OCSP_TRUSTOTHER), 1);
	sk_X509_free(sk);
	X509_STORE_free(store);
	/* and the client refuses it: not signed by the foreign issuer */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, fdev.der, fdev.len,
	    fca_der, fca_len, NULL, 0, f.now, &st, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "not signed by the issuer"));
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	OPENSSL_free(req);

	/* our device certificate named with the foreign CA's hashes */
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, fca_der, fca_len,
	    NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	ck_assert_int_eq(l.calls, 0);
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(ossl_status(bs, f.good.x, fca, EVP_sha1(), NULL, NULL),
	    V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	OPENSSL_free(req);

	dev_free(&fdev);
	tca_issuer_free(fiss);
	OPENSSL_free(fca_der);
	X509_free(fca);
	fx_free(&f);
}
END_TEST

/* The DER of bs's or req's nonce extension. */
static size_t
resp_nonce_der(OCSP_BASICRESP *bs, unsigned char **out)
{
	int idx = OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1);
	int n;

	*out = NULL;
	if (idx < 0)
		return 0;
	n = i2d_X509_EXTENSION(OCSP_BASICRESP_get_ext(bs, idx), out);
	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

START_TEST(test_ocsp_nonce)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_ocsp_cert_status st;
	unsigned char nonce[TCA_OCSP_MAX_NONCE + 1], other[16];
	unsigned char *req = NULL, *resp = NULL, *ext = NULL;
	size_t req_len = 0, resp_len = 0, extlen;
	char why[256] = "";
	OCSP_BASICRESP *bs;
	const char *status;
	int r;

	fx_init(&f, 0, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	ck_assert_int_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
	memcpy(other, nonce, sizeof(other));
	other[5] ^= 1;

	r = roundtrip(&f, &l, &p, &f.good, nonce, 16, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "%s", why);
	ck_assert_int_eq(st.status, TCA_OCSP_GOOD);
	r = roundtrip(&f, &l, &p, &f.good, nonce, TCA_OCSP_MAX_NONCE, &st, why,
	    sizeof(why));
	ck_assert_msg(r == TCA_OK, "%s", why);
	r = roundtrip(&f, &l, &p, &f.good, nonce, 1, &st, why, sizeof(why));
	ck_assert_msg(r == TCA_OK, "%s", why);

	/* the extension comes back byte for byte */
	ck_assert_int_eq(tca_ocsp_request_build(f.revoked.der, f.revoked.len, f.ca_der,
	    f.ca_len, nonce, 32, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	bs = basic_of(resp, resp_len);
	extlen = resp_nonce_der(bs, &ext);
	ck_assert_uint_gt(extlen, 32);
	ck_assert_ptr_nonnull(memmem(req, req_len, ext, extlen));
	OPENSSL_free(ext);
	OCSP_BASICRESP_free(bs);
	/* the client refuses another nonce */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, other, sizeof(other), f.now, &st, why,
	    sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "nonce differs"));
	ck_assert_int_eq(st.status, TCA_OCSP_GOOD);	/* zeroed */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, nonce, 32, f.now, &st, why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(st.status, TCA_OCSP_REVOKED);
	/* without a nonce the check does not look for one */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why,
	    sizeof(why)), TCA_OK);
	OPENSSL_free(resp);
	OPENSSL_free(req);

	/* no nonce asked, none answered; a client that wants one refuses */
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	bs = basic_of(resp, resp_len);
	ck_assert_uint_eq(resp_nonce_der(bs, &ext), 0);
	OCSP_BASICRESP_free(bs);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der,
	    f.good.len, f.ca_der, f.ca_len, nonce, 16, f.now, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "no nonce"));
	OPENSSL_free(resp);
	OPENSSL_free(req);

	/* the request builder keeps to the responder's limit */
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, nonce, TCA_OCSP_MAX_NONCE + 1, &req, &req_len),
	    TCA_ERR_INVALID_ARG);
	ck_assert_ptr_null(req);

	/* a longer nonce from another client: malformed */
	{
		OCSP_REQUEST *oreq = OCSP_REQUEST_new();
		OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), f.good.x, f.ca_x);
		int n;

		ck_assert_ptr_nonnull(OCSP_request_add0_id(oreq, id));
		ck_assert_int_eq(OCSP_request_add1_nonce(oreq, nonce,
		    TCA_OCSP_MAX_NONCE + 1), 1);
		n = i2d_OCSP_REQUEST(oreq, &req);
		ck_assert_int_gt(n, 0);
		l.calls = 0;
		ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, req, (size_t)n, &p,
		    lk_fn, &l, &resp, &resp_len, &status), TCA_OK);
		ck_assert_str_eq(status, "malformed");
		ck_assert(malformed_is(resp, resp_len));
		ck_assert_int_eq(l.calls, 0);
		OPENSSL_free(resp);
		OPENSSL_free(req);
		OCSP_REQUEST_free(oreq);
	}
	fx_free(&f);
}
END_TEST

/* ---- hand-made requests */

struct dbuf {
	unsigned char *p;
	size_t n;
};

static void
db_put(struct dbuf *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	ck_assert_ptr_nonnull(b->p);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
db_tlv(struct dbuf *b, unsigned char tag, const void *c, size_t n)
{
	unsigned char hdr[8];
	size_t pos = 0;

	ck_assert_int_eq(tca_der_put_hdr(hdr, sizeof(hdr), &pos, tag, n), TCA_OK);
	db_put(b, hdr, pos);
	db_put(b, c, n);
}

static void
db_free(struct dbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = 0;
}

static const unsigned char oid_sha1[] = { 0x2b, 0x0e, 0x03, 0x02, 0x1a };
static const unsigned char oid_sha256[] = {
	0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01
};
static const unsigned char oid_sha384[] = {
	0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02
};

/* CertID for ca's key and name with md, the given serial INTEGER contents */
static void
certid_raw(struct dbuf *out, X509 *ca, const unsigned char *oid, size_t oidlen,
    const EVP_MD *md, int null_params, const unsigned char *serial, size_t sl)
{
	struct dbuf alg = { 0 }, c = { 0 };
	unsigned char nh[64], kh[64];
	unsigned int nhl = sizeof(nh), khl = sizeof(kh);

	ck_assert_int_eq(X509_NAME_digest(X509_get_subject_name(ca), md, nh, &nhl), 1);
	ck_assert_int_eq(X509_pubkey_digest(ca, md, kh, &khl), 1);
	db_tlv(&alg, 0x06, oid, oidlen);
	if (null_params)
		db_put(&alg, "\x05\x00", 2);
	db_tlv(&c, 0x30, alg.p, alg.n);
	db_tlv(&c, 0x04, nh, nhl);
	db_tlv(&c, 0x04, kh, khl);
	db_tlv(&c, 0x02, serial, sl);
	db_tlv(out, 0x30, c.p, c.n);
	db_free(&alg);
	db_free(&c);
}

/* OCSPRequest { TBSRequest { pre, requestList { Request { id } ... },
 * [2] exts } } */
static void
request_raw(struct dbuf *out, const void *pre, size_t prel, const struct dbuf *ids,
    size_t n, const void *exts, size_t extl)
{
	struct dbuf list = { 0 }, r = { 0 }, tbs = { 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		db_tlv(&r, 0x30, ids[i].p, ids[i].n);
		db_put(&list, r.p, r.n);
		db_free(&r);
	}
	if (prel > 0)
		db_put(&tbs, pre, prel);
	db_tlv(&tbs, 0x30, list.p, list.n);
	if (extl > 0)
		db_tlv(&tbs, 0xa2, exts, extl);
	db_tlv(&r, 0x30, tbs.p, tbs.n);		/* TBSRequest */
	db_tlv(out, 0x30, r.p, r.n);		/* OCSPRequest */
	db_free(&r);
	db_free(&list);
	db_free(&tbs);
}

static void
serial_int(const struct dev *d, unsigned char *out, size_t *len)
{
	size_t k = 0;

	if (d->info.serial[0] & 0x80)
		out[k++] = 0;
	memcpy(out + k, d->info.serial, d->info.serial_len);
	*len = k + d->info.serial_len;
}

START_TEST(test_ocsp_certid_variants)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_ocsp_cert_status st;
	struct dbuf ids[6], req = { 0 };
	unsigned char *resp = NULL, *oreq_der = NULL, *idder = NULL, sn[24];
	unsigned char neg[2] = { 0xff, 0x01 }, long21[21];
	size_t resp_len = 0, sl, i;
	char why[256] = "";
	OCSP_REQUEST *oreq;
	OCSP_CERTID *id;
	OCSP_BASICRESP *bs;
	OCSP_SINGLERESP *single;
	ASN1_GENERALIZEDTIME *rev = NULL;
	int n, idlen, reason;

	fx_init(&f, _i, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	memset(ids, 0, sizeof(ids));

	/* SHA-256 CertID made by OpenSSL (NULL parameters) */
	oreq = OCSP_REQUEST_new();
	id = OCSP_cert_to_id(EVP_sha256(), f.revoked.x, f.ca_x);
	ck_assert_ptr_nonnull(id);
	idlen = i2d_OCSP_CERTID(id, &idder);
	ck_assert_int_gt(idlen, 0);
	ck_assert_ptr_nonnull(OCSP_request_add0_id(oreq, id));
	n = i2d_OCSP_REQUEST(oreq, &oreq_der);
	ck_assert_int_gt(n, 0);
	respond_ok(&f, &l, &p, oreq_der, (size_t)n, &resp, &resp_len);
	ck_assert_int_eq(l.calls, 1);
	ck_assert_ptr_nonnull(memmem(resp, resp_len, idder, (size_t)idlen));
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(ossl_status(bs, f.revoked.x, f.ca_x, EVP_sha256(), &reason, &rev),
	    V_OCSP_CERTSTATUS_REVOKED);
	ck_assert_int_eq(reason, TCA_REASON_KEY_COMPROMISE);
	ck_assert_int_eq(asn1_unix(rev), f.now - 100);
	/* tca_ocsp_response_check finds the SHA-256 CertID too */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(st.status, TCA_OCSP_REVOKED);
	ck_assert_int_eq(st.reason, TCA_REASON_KEY_COMPROMISE);
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	OPENSSL_free(oreq_der);
	OPENSSL_free(idder);
	OCSP_REQUEST_free(oreq);

	/* six CertIDs in one request, answered in order and echoed byte for
	 * byte: SHA-256 without parameters (good), SHA-1 (revoked), SHA-384
	 * (unsupported: unknown), a negative serial and a 21-octet one
	 * (unknown, no lookup), SHA-1 of the unlisted device (unknown) */
	l.calls = 0;
	serial_int(&f.good, sn, &sl);
	certid_raw(&ids[0], f.ca_x, oid_sha256, sizeof(oid_sha256), EVP_sha256(), 0, sn, sl);
	serial_int(&f.revoked, sn, &sl);
	certid_raw(&ids[1], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, sn, sl);
	certid_raw(&ids[2], f.ca_x, oid_sha384, sizeof(oid_sha384), EVP_sha384(), 1, sn, sl);
	certid_raw(&ids[3], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, neg,
	    sizeof(neg));
	memset(long21, 0x11, sizeof(long21));
	certid_raw(&ids[4], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, long21,
	    sizeof(long21));
	serial_int(&f.unlisted, sn, &sl);
	certid_raw(&ids[5], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 0, sn, sl);
	request_raw(&req, NULL, 0, ids, 6, NULL, 0);
	respond_ok(&f, &l, &p, req.p, req.n, &resp, &resp_len);
	ck_assert_int_eq(l.calls, 3);
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(OCSP_resp_count(bs), 6);
	{
		static const int want[6] = {
			V_OCSP_CERTSTATUS_GOOD, V_OCSP_CERTSTATUS_REVOKED,
			V_OCSP_CERTSTATUS_UNKNOWN, V_OCSP_CERTSTATUS_UNKNOWN,
			V_OCSP_CERTSTATUS_UNKNOWN, V_OCSP_CERTSTATUS_UNKNOWN,
		};
		const unsigned char *q = resp;
		const unsigned char *end = resp + resp_len;

		for (i = 0; i < 6; i++) {
			single = OCSP_resp_get0(bs, (int)i);
			ck_assert_int_eq(OCSP_single_get0_status(single, NULL, NULL, NULL,
			    NULL), want[i]);
			/* each CertID appears, in request order */
			q = memmem(q, (size_t)(end - q), ids[i].p, ids[i].n);
			ck_assert_msg(q != NULL, "CertID %zu not echoed in order", i);
			q += ids[i].n;
		}
	}
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	db_free(&req);
	for (i = 0; i < 6; i++)
		db_free(&ids[i]);

	/* an explicit version v1, requestorName and singleRequestExtensions
	 * are accepted */
	{
		static const unsigned char pre[] = {
			0xa0, 0x03, 0x02, 0x01, 0x00,			/* v1 */
			0xa1, 0x0b, 0x82, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'
		};
		struct dbuf one = { 0 }, r = { 0 }, list = { 0 }, tbs = { 0 }, tr = { 0 };

		serial_int(&f.good, sn, &sl);
		certid_raw(&one, f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, sn, sl);
		/* Request { CertID, [0] { SEQUENCE {} } } */
		db_put(&one, "\xa0\x02\x30\x00", 4);
		db_tlv(&r, 0x30, one.p, one.n);
		db_tlv(&list, 0x30, r.p, r.n);
		db_put(&tbs, pre, sizeof(pre));
		db_put(&tbs, list.p, list.n);
		db_tlv(&tr, 0x30, tbs.p, tbs.n);	/* TBSRequest */
		db_tlv(&req, 0x30, tr.p, tr.n);
		respond_ok(&f, &l, &p, req.p, req.n, &resp, &resp_len);
		bs = basic_of(resp, resp_len);
		ck_assert_int_eq(ossl_status(bs, f.good.x, f.ca_x, EVP_sha1(), NULL, NULL),
		    V_OCSP_CERTSTATUS_GOOD);
		OCSP_BASICRESP_free(bs);
		OPENSSL_free(resp);
		db_free(&req);
		db_free(&one);
		db_free(&r);
		db_free(&list);
		db_free(&tbs);
		db_free(&tr);
	}
	fx_free(&f);
}
END_TEST

static void
expect_malformed(struct fx *f, const struct tca_ocsp_params *p, const void *req,
    size_t len, const char *what)
{
	struct lk l;
	unsigned char *resp = (unsigned char *)"x";
	size_t resp_len = 0;
	const char *status = NULL;
	char why[256] = "";
	struct tca_ocsp_cert_status st;
	int r;

	lk_init(&l, f);
	f->ss.calls = 0;
	r = tca_ocsp_respond(f->ca, &f->sg, req, len, p, lk_fn, &l, &resp, &resp_len,
	    &status);
	ck_assert_msg(r == TCA_OK, "%s: %s", what, tca_strerror(r));
	ck_assert_msg(status != NULL && strcmp(status, "malformed") == 0,
	    "%s: status %s", what, status ? status : "(null)");
	ck_assert_uint_eq(resp_len, 5);
	ck_assert_int_eq(memcmp(resp, "\x30\x03\x0a\x01\x01", 5), 0);
	ck_assert_msg(malformed_is(resp, resp_len), "%s", what);
	ck_assert_int_eq(l.calls, 0);
	ck_assert_int_eq(f->ss.calls, 0);
	/* the client reports it */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f->good.der,
	    f->good.len, f->ca_der, f->ca_len, NULL, 0, 0, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "malformedrequest"));
	OPENSSL_free(resp);
}

START_TEST(test_ocsp_malformed)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct dbuf ids[17], req = { 0 };
	unsigned char *good = NULL, *bad, *resp = NULL, sn[24];
	size_t good_len = 0, resp_len, sl, i;
	const char *status;
	static const unsigned char v2[] = { 0xa0, 0x03, 0x02, 0x01, 0x01 };
	static const unsigned char v1_long[] = { 0xa0, 0x04, 0x02, 0x02, 0x00, 0x00 };

	fx_init(&f, 0, time(NULL));
	params_init(&p, &f);
	memset(ids, 0, sizeof(ids));

	expect_malformed(&f, &p, "", 0, "empty");
	expect_malformed(&f, &p, "garbage!", 8, "garbage");
	expect_malformed(&f, &p, "\x30\x00", 2, "empty SEQUENCE");
	expect_malformed(&f, &p, "\x30\x04\x30\x02\x30\x00", 6, "empty requestList");
	expect_malformed(&f, &p, "\x30\x80\x30\x02\x30\x00\x00\x00", 8, "BER indefinite");

	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, (const unsigned char *)"0123456789abcdef", 16, &good, &good_len),
	    TCA_OK);
	bad = malloc(good_len + 8);
	ck_assert_ptr_nonnull(bad);
	for (i = 1; i < good_len; i += 1 + i / 4)
		expect_malformed(&f, &p, good, i, "truncated");
	memcpy(bad, good, good_len);
	bad[good_len] = 0;
	expect_malformed(&f, &p, bad, good_len + 1, "trailing octet");
	/* a non-minimal length octet */
	bad[0] = 0x30;
	bad[1] = 0x81;
	bad[2] = good[1];
	memcpy(bad + 3, good + 2, good_len - 2);
	if (good[1] < 0x80)
		expect_malformed(&f, &p, bad, good_len + 1, "non-minimal length");
	free(bad);

	/* version other than v1, or v1 in a non-minimal INTEGER */
	serial_int(&f.good, sn, &sl);
	certid_raw(&ids[0], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, sn, sl);
	request_raw(&req, v2, sizeof(v2), ids, 1, NULL, 0);
	expect_malformed(&f, &p, req.p, req.n, "version v2");
	db_free(&req);
	request_raw(&req, v1_long, sizeof(v1_long), ids, 1, NULL, 0);
	expect_malformed(&f, &p, req.p, req.n, "version 00 00");
	db_free(&req);
	/* non-minimal serial INTEGER */
	{
		unsigned char nm[3] = { 0x00, 0x01, 0x02 };
		struct dbuf id = { 0 };

		certid_raw(&id, f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, nm, 3);
		request_raw(&req, NULL, 0, &id, 1, NULL, 0);
		expect_malformed(&f, &p, req.p, req.n, "non-minimal serial");
		db_free(&req);
		db_free(&id);
	}
	/* two nonces; an empty nonce; a bad extension */
	{
		static const unsigned char n1[] = {
			0x30, 0x11, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30,
			0x01, 0x02, 0x04, 0x04, 0x04, 0x02, 0xaa, 0xbb
		};
		static const unsigned char empty[] = {
			0x30, 0x0f, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30,
			0x01, 0x02, 0x04, 0x02, 0x04, 0x00
		};
		static const unsigned char badext[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
		struct dbuf ex = { 0 }, seq = { 0 };

		db_put(&seq, n1, sizeof(n1));
		db_tlv(&ex, 0x30, seq.p, seq.n);
		request_raw(&req, NULL, 0, ids, 1, ex.p, ex.n);
		lk_init(&l, &f);
		respond_ok(&f, &l, &p, req.p, req.n, &resp, &resp_len);	/* one: fine */
		ck_assert_ptr_nonnull(memmem(resp, resp_len, n1, sizeof(n1)));
		OPENSSL_free(resp);
		db_free(&req);
		db_free(&ex);
		db_put(&seq, n1, sizeof(n1));
		db_tlv(&ex, 0x30, seq.p, seq.n);
		request_raw(&req, NULL, 0, ids, 1, ex.p, ex.n);
		expect_malformed(&f, &p, req.p, req.n, "two nonces");
		db_free(&req);
		db_free(&ex);
		db_free(&seq);
		db_put(&seq, empty, sizeof(empty));
		db_tlv(&ex, 0x30, seq.p, seq.n);
		request_raw(&req, NULL, 0, ids, 1, ex.p, ex.n);
		expect_malformed(&f, &p, req.p, req.n, "empty nonce");
		db_free(&req);
		db_free(&ex);
		db_free(&seq);
		db_put(&seq, badext, sizeof(badext));
		db_tlv(&ex, 0x30, seq.p, seq.n);
		request_raw(&req, NULL, 0, ids, 1, ex.p, ex.n);
		expect_malformed(&f, &p, req.p, req.n, "bad extension");
		db_free(&req);
		db_free(&ex);
		db_free(&seq);
	}

	/* more than max_requests: 17 with the default of 16, 3 with 2 */
	for (i = 1; i < 17; i++)
		certid_raw(&ids[i], f.ca_x, oid_sha1, sizeof(oid_sha1), EVP_sha1(), 1, sn,
		    sl);
	request_raw(&req, NULL, 0, ids, 17, NULL, 0);
	expect_malformed(&f, &p, req.p, req.n, "17 requests");
	db_free(&req);
	request_raw(&req, NULL, 0, ids, 16, NULL, 0);
	lk_init(&l, &f);
	respond_ok(&f, &l, &p, req.p, req.n, &resp, &resp_len);
	ck_assert_int_eq(l.calls, 16);
	{
		OCSP_BASICRESP *bs = basic_of(resp, resp_len);

		ck_assert_int_eq(OCSP_resp_count(bs), 16);
		OCSP_BASICRESP_free(bs);
	}
	OPENSSL_free(resp);
	db_free(&req);
	p.max_requests = 2;
	request_raw(&req, NULL, 0, ids, 3, NULL, 0);
	expect_malformed(&f, &p, req.p, req.n, "3 requests, max 2");
	db_free(&req);
	request_raw(&req, NULL, 0, ids, 2, NULL, 0);
	lk_init(&l, &f);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, req.p, req.n, &p, lk_fn, &l,
	    &resp, &resp_len, &status), TCA_OK);
	ck_assert_str_eq(status, "successful");
	OPENSSL_free(resp);
	db_free(&req);
	p.max_requests = 0;

	/* larger than 64 KiB */
	bad = calloc(1, TCA_OCSP_MAX_REQUEST + 1);
	ck_assert_ptr_nonnull(bad);
	memcpy(bad, good, good_len);
	expect_malformed(&f, &p, bad, TCA_OCSP_MAX_REQUEST + 1, "over 64 KiB");
	free(bad);

	/* a malformed answer is sent with a NULL status pointer too */
	lk_init(&l, &f);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, (const unsigned char *)"x", 1, &p,
	    lk_fn, &l, &resp, &resp_len, NULL), TCA_OK);
	ck_assert(malformed_is(resp, resp_len));
	OPENSSL_free(resp);

	for (i = 0; i < 17; i++)
		db_free(&ids[i]);
	OPENSSL_free(good);
	fx_free(&f);
}
END_TEST

START_TEST(test_ocsp_signed_request)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	unsigned char *req = NULL, *resp = NULL, nonce[16];
	size_t resp_len = 0;
	OCSP_REQUEST *oreq;
	OCSP_BASICRESP *bs;
	int n;

	fx_init(&f, 0, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	oreq = OCSP_REQUEST_new();
	ck_assert_ptr_nonnull(OCSP_request_add0_id(oreq,
	    OCSP_cert_to_id(EVP_sha1(), f.revoked.x, f.ca_x)));
	ck_assert_int_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
	ck_assert_int_eq(OCSP_request_add1_nonce(oreq, nonce, sizeof(nonce)), 1);
	/* requestorName + optionalSignature with a certificate */
	ck_assert_int_eq(OCSP_request_sign(oreq, f.good.x, dev_key, EVP_sha256(), NULL,
	    0), 1);
	n = i2d_OCSP_REQUEST(oreq, &req);
	ck_assert_int_gt(n, 0);
	respond_ok(&f, &l, &p, req, (size_t)n, &resp, &resp_len);
	bs = basic_of(resp, resp_len);
	ck_assert_int_eq(ossl_status(bs, f.revoked.x, f.ca_x, EVP_sha1(), NULL, NULL),
	    V_OCSP_CERTSTATUS_REVOKED);
	ck_assert_int_eq(OCSP_check_nonce(oreq, bs), 1);
	OCSP_BASICRESP_free(bs);
	OPENSSL_free(resp);
	OPENSSL_free(req);
	OCSP_REQUEST_free(oreq);
	fx_free(&f);
}
END_TEST

START_TEST(test_ocsp_refusals)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_signer sg;
	struct soft_signer ss;
	unsigned char *req = NULL, *resp;
	size_t req_len = 0, resp_len;
	const char *status;

	fx_init(&f, _i, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, NULL, 0, &req, &req_len), TCA_OK);

#define NO_RESPONSE(sgp, lp, expect) do {				\
	resp = (unsigned char *)"x";					\
	resp_len = 7;							\
	status = "x";							\
	ck_assert_int_eq(tca_ocsp_respond(f.ca, (sgp), req, req_len, &p,	\
	    lk_fn, (lp), &resp, &resp_len, &status), (expect));		\
	ck_assert_ptr_null(resp);					\
	ck_assert_uint_eq(resp_len, 0);					\
	ck_assert_ptr_null(status);					\
} while (0)

	/* a signer returning a wrong signature: an error, no response */
	signer_init(&sg, &ss, ca_keys[_i], ca_algs[_i]);
	ss.mode = SOFT_GARBAGE;
	NO_RESPONSE(&sg, &l, TCA_ERR_CRYPTO);
	ck_assert_int_eq(ss.calls, 1);
	ss.mode = SOFT_WRONG_KEY;
	NO_RESPONSE(&sg, &l, TCA_ERR_CRYPTO);
	ss.mode = SOFT_FAIL;
	NO_RESPONSE(&sg, &l, TCA_ERR_TOKEN_UNAVAILABLE);
	/* the wrong algorithm for the key: refused before any lookup */
	signer_init(&sg, &ss, ca_keys[_i],
	    ca_algs[_i] == TCA_SIG_ECDSA_SHA256 ? TCA_SIG_ECDSA_SHA384 :
	    TCA_SIG_ECDSA_SHA256);
	l.calls = 0;
	NO_RESPONSE(&sg, &l, TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(ss.calls, 0);
	ck_assert_int_eq(l.calls, 0);

	/* lookup failures abort, before signing */
	f.ss.calls = 0;
	l.fail = TCA_ERR_JOURNAL_UNAVAILABLE;
	NO_RESPONSE(&f.sg, &l, TCA_ERR_JOURNAL_UNAVAILABLE);
	ck_assert_int_eq(f.ss.calls, 0);
	l.fail = 0;
	l.bad_status = 1;	/* certificateHold cannot be encoded by us */
	NO_RESPONSE(&f.sg, &l, TCA_ERR_INVALID_ARG);
	l.bad_status = 0;

	/* bad parameters */
	p.next_update = p.now;
	NO_RESPONSE(&f.sg, &l, TCA_ERR_INVALID_ARG);
	p.next_update = p.now - 1;
	NO_RESPONSE(&f.sg, &l, TCA_ERR_INVALID_ARG);
	p.next_update = 0;
	p.now = test_utc(1949, 1, 1, 0, 0, 0);
	NO_RESPONSE(&f.sg, &l, TCA_ERR_INVALID_ARG);
	params_init(&p, &f);
	ck_assert_int_eq(f.ss.calls, 0);
	ck_assert_int_eq(tca_ocsp_respond(NULL, &f.sg, req, req_len, &p, lk_fn, &l,
	    &resp, &resp_len, &status), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, NULL, req, req_len, &p, lk_fn, &l,
	    &resp, &resp_len, &status), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, req, req_len, NULL, lk_fn, &l,
	    &resp, &resp_len, &status), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, req, req_len, &p, NULL, &l,
	    &resp, &resp_len, &status), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, req, req_len, &p, lk_fn, &l,
	    NULL, &resp_len, &status), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_ocsp_respond(f.ca, &f.sg, NULL, 5, &p, lk_fn, &l,
	    &resp, &resp_len, &status), TCA_ERR_INVALID_ARG);
#undef NO_RESPONSE

	/* the request builder's inputs */
	ck_assert_int_eq(tca_ocsp_request_build((const unsigned char *)"xx", 2, f.ca_der,
	    f.ca_len, NULL, 0, &resp, &resp_len), TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_null(resp);
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, NULL, 0, NULL, 0,
	    &resp, &resp_len), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, NULL, 0, NULL, &resp_len), TCA_ERR_INVALID_ARG);
	OPENSSL_free(req);
	fx_free(&f);
}
END_TEST

START_TEST(test_ocsp_client_checks)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_ocsp_cert_status st;
	unsigned char *req = NULL, *resp = NULL, *bad;
	size_t req_len = 0, resp_len = 0;
	char why[256] = "";
	X509 *other;
	unsigned char *other_der;
	size_t other_len;

	fx_init(&f, 0, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	ck_assert_int_eq(tca_ocsp_request_build(f.good.der, f.good.len, f.ca_der,
	    f.ca_len, NULL, 0, &req, &req_len), TCA_OK);
	respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)), TCA_OK);

	/* time: within the skew, too early, expired; 0 skips the check */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now - 200, &st, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now - 400, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "not valid yet"));
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now + 3600 + 400, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "expired"));
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, 0, &st, why, sizeof(why)), TCA_OK);

	/* another certificate: no status for it */
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.revoked.der,
	    f.revoked.len, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "no status"));

	/* another CA with the same name but a different key */
	other = make_ca(foreign_key, TCA_SIG_ECDSA_SHA256, "t100", f.now - DAY);
	other_der = der_of(other, &other_len);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    other_der, other_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "not signed by the issuer"));
	OPENSSL_free(other_der);
	X509_free(other);

	/* a flipped octet in the signature, in the certStatus; trailing bytes */
	bad = malloc(resp_len + 1);
	ck_assert_ptr_nonnull(bad);
	memcpy(bad, resp, resp_len);
	bad[resp_len - 3] ^= 0x01;
	ck_assert_int_eq(tca_ocsp_response_check(bad, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)), TCA_ERR_PROTOCOL);
	memcpy(bad, resp, resp_len);
	{
		unsigned char *g = memmem(bad, resp_len, "\x80\x00\x18\x0f", 4);

		ck_assert_ptr_nonnull(g);
		g[0] = 0x82;	/* good -> unknown */
	}
	ck_assert_int_eq(tca_ocsp_response_check(bad, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "not signed by the issuer"));
	memcpy(bad, resp, resp_len);
	bad[resp_len] = 0;
	ck_assert_int_eq(tca_ocsp_response_check(bad, resp_len + 1, f.good.der,
	    f.good.len, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(why, "not a DER OCSPResponse"));
	free(bad);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, (const unsigned char *)"x",
	    1, f.ca_der, f.ca_len, NULL, 0, f.now, &st, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_ocsp_response_check(resp, resp_len, f.good.der, f.good.len,
	    f.ca_der, f.ca_len, NULL, 0, f.now, NULL, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);

	OPENSSL_free(resp);
	OPENSSL_free(req);
	fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------ external tools */

static void
write_pem_cert(const char *path, X509 *x)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(PEM_write_X509(fp, x), 1);
	ck_assert_int_eq(fclose(fp), 0);
}

START_TEST(test_openssl_cli)
{
	struct fx f;
	struct lk l;
	struct tca_ocsp_params p;
	struct tca_crl_entry e[6];
	unsigned char *crl = NULL, *req = NULL, *resp = NULL, nonce[16];
	size_t crl_len = 0, req_len = 0, resp_len = 0, n;
	char dir[1024], path[1200];
	const char *keep = getenv("TCA_REVOCATION_OUT");
	const struct dev *devs[3];
	static const char *const dev_names[3] = { "revoked", "good", "unlisted" };
	int i;

	fx_init(&f, _i, time(NULL));
	lk_init(&l, &f);
	params_init(&p, &f);
	if (keep != NULL && *keep != '\0') {
		snprintf(dir, sizeof(dir), "%s/%s", keep, key_names[_i]);
		ck_assert_int_eq(test_sh("mkdir -p '%s'", dir), 0);
	} else
		test_mkdtemp(dir, sizeof(dir));

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	write_pem_cert(path, f.ca_x);
	n = fx_entries(&f, e);
	crl_make(&f, e, n, 1234, &crl, &crl_len);
	snprintf(path, sizeof(path), "%s/crl.der", dir);
	ck_assert_int_eq(test_write_file(path, crl, crl_len, 0644), 0);

	ck_assert_int_eq(test_sh("cd '%s' && openssl crl -inform DER -in crl.der -text "
	    "-noout >crl.txt 2>&1", dir), 0);
	ck_assert_int_eq(test_sh("cd '%s' && grep -q 'X509v3 CRL Number: *$' crl.txt && "
	    "grep -q '1234' crl.txt && grep -q 'Key Compromise' crl.txt && "
	    "grep -q 'Version 2' crl.txt", dir), 0);
	ck_assert_int_eq(test_sh("cd '%s' && openssl crl -inform DER -in crl.der "
	    "-CAfile ca.pem -noout 2>&1 | grep -q 'verify OK'", dir), 0);
	ck_assert_int_eq(test_sh("cd '%s' && openssl crl -inform DER -in crl.der "
	    "-out crl.pem", dir), 0);
	ck_assert_int_eq(test_sh("cd '%s' && certtool --verify-crl "
	    "--load-ca-certificate ca.pem --infile crl.pem >certtool.txt 2>&1", dir), 0);

	devs[0] = &f.revoked;
	devs[1] = &f.good;
	devs[2] = &f.unlisted;
	ck_assert_int_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", dir, dev_names[i]);
		write_pem_cert(path, devs[i]->x);
		ck_assert_int_eq(tca_ocsp_request_build(devs[i]->der, devs[i]->len,
		    f.ca_der, f.ca_len, nonce, sizeof(nonce), &req, &req_len), TCA_OK);
		respond_ok(&f, &l, &p, req, req_len, &resp, &resp_len);
		snprintf(path, sizeof(path), "%s/%s-req.der", dir, dev_names[i]);
		ck_assert_int_eq(test_write_file(path, req, req_len, 0644), 0);
		snprintf(path, sizeof(path), "%s/%s-resp.der", dir, dev_names[i]);
		ck_assert_int_eq(test_write_file(path, resp, resp_len, 0644), 0);
		OPENSSL_free(req);
		OPENSSL_free(resp);
		/* openssl ocsp: signature (issuer as trusted responder), nonce,
		 * validity, status */
		/* signature (the issuer as trusted responder), validity and
		 * status; then the nonce against our request */
		ck_assert_msg(test_sh("cd '%s' && openssl ocsp -respin %s-resp.der "
		    "-resp_text -CAfile ca.pem -issuer ca.pem -no_nonce -cert %s.pem "
		    ">%s-ocsp.txt 2>&1 && grep -q 'Response verify OK' %s-ocsp.txt && "
		    "grep -q '^%s.pem: %s$' %s-ocsp.txt", dir, dev_names[i],
		    dev_names[i], dev_names[i], dev_names[i], dev_names[i],
		    i == 0 ? "revoked" : i == 1 ? "good" : "unknown",
		    dev_names[i]) == 0, "openssl ocsp %s: see %s/%s-ocsp.txt",
		    dev_names[i], dir, dev_names[i]);
		ck_assert_msg(test_sh("cd '%s' && openssl ocsp -reqin %s-req.der "
		    "-respin %s-resp.der -CAfile ca.pem -issuer ca.pem "
		    ">%s-nonce.txt 2>&1 && grep -q 'Response verify OK' %s-nonce.txt && "
		    "! grep -qi 'nonce' %s-nonce.txt", dir, dev_names[i], dev_names[i],
		    dev_names[i], dev_names[i], dev_names[i]) == 0,
		    "openssl ocsp -reqin %s: see %s/%s-nonce.txt", dev_names[i], dir,
		    dev_names[i]);
		ck_assert_int_eq(test_sh("cd '%s' && openssl ocsp -reqin %s-req.der "
		    "-req_text -noverify >/dev/null 2>&1", dir, dev_names[i]), 0);
	}
	ck_assert_int_eq(test_sh("cd '%s' && grep -q 'Reason: keyCompromise' "
	    "revoked-ocsp.txt && grep -q 'OCSP Nonce' revoked-ocsp.txt", dir), 0);

	/* openssl verify with the CRL */
	ck_assert_int_eq(test_sh("cd '%s' && openssl verify -crl_check -CAfile ca.pem "
	    "-CRLfile crl.pem good.pem >/dev/null 2>&1", dir), 0);
	ck_assert_int_ne(test_sh("cd '%s' && openssl verify -crl_check -CAfile ca.pem "
	    "-CRLfile crl.pem revoked.pem >verify.txt 2>&1", dir), 0);
	ck_assert_int_eq(test_sh("cd '%s' && grep -q 'certificate revoked' verify.txt",
	    dir), 0);

	if (keep == NULL || *keep == '\0')
		ck_assert_int_eq(test_sh("rm -rf '%s'", dir), 0);
	OPENSSL_free(crl);
	fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------ suite */

static TCase *
tc_new(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *
revocation_suite(void)
{
	Suite *s = suite_create("revocation");

	tcase_add_test(tc_new(s, "reason-names", 30), test_reason_names);
	tcase_add_test(tc_new(s, "der-writers", 30), test_der_writers);
	tcase_add_loop_test(tc_new(s, "crl-parses-in-openssl", 60), test_crl_openssl,
	    0, NKEYS);
	tcase_add_loop_test(tc_new(s, "crl-revokes-in-x509-store", 60), test_crl_store,
	    0, NKEYS);
	tcase_add_test(tc_new(s, "crl-empty", 60), test_crl_empty);
	tcase_add_test(tc_new(s, "crl-times-and-numbers", 60), test_crl_times_numbers);
	tcase_add_test(tc_new(s, "crl-refuses-bad-input", 60), test_crl_refusals);
	tcase_add_loop_test(tc_new(s, "crl-100k-entries", 600), test_crl_100k, 0,
	    NKEYS);
	tcase_add_loop_test(tc_new(s, "crl-survives-ca-reissue", 60), test_crl_reissue,
	    0, NKEYS);
	tcase_add_loop_test(tc_new(s, "ocsp-answers-status", 60), test_ocsp_status,
	    0, NKEYS);
	tcase_add_loop_test(tc_new(s, "ocsp-foreign-issuer-unknown", 60),
	    test_ocsp_foreign, 0, NKEYS);
	tcase_add_test(tc_new(s, "ocsp-nonce-echoed", 60), test_ocsp_nonce);
	tcase_add_loop_test(tc_new(s, "ocsp-certid-variants", 60),
	    test_ocsp_certid_variants, 0, NKEYS);
	tcase_add_test(tc_new(s, "ocsp-malformed-requests", 120), test_ocsp_malformed);
	tcase_add_test(tc_new(s, "ocsp-signed-request-accepted", 60),
	    test_ocsp_signed_request);
	tcase_add_loop_test(tc_new(s, "ocsp-refuses-to-answer", 60), test_ocsp_refusals,
	    0, NKEYS);
	tcase_add_test(tc_new(s, "ocsp-client-checks", 60), test_ocsp_client_checks);
	tcase_add_loop_test(tc_new(s, "openssl-cli-accepts", 120), test_openssl_cli,
	    0, NKEYS);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed, i;

	/* here, not in a forked test: a missing tool skips (exit 77) */
	test_require_tool("openssl");
	test_require_tool("certtool");
	if (getenv("TCA_TEST_DEBUG") != NULL)
		tca_log_set_level(LOG_DEBUG);
	ca_keys[0] = gen_key("EC", "P-256", 0);
	ca_keys[1] = gen_key("EC", "P-384", 0);
	ca_keys[2] = gen_key("RSA", NULL, 3072);
	ca_keys[3] = gen_key("ED25519", NULL, 0);
	dev_key = gen_key("EC", "P-256", 0);
	foreign_key = gen_key("EC", "P-256", 0);
	sr = srunner_create(revocation_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	for (i = 0; i < NKEYS; i++)
		EVP_PKEY_free(ca_keys[i]);
	EVP_PKEY_free(dev_key);
	EVP_PKEY_free(foreign_key);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
