/*
 * issuer.h - a tenant CA in its role as issuer of device certificates.
 *
 * The engine keeps one of these per active CA certificate (current and
 * previous) instead of an OpenSSL X509.  It holds the certificate's DER and
 * the few fields issuance needs, read straight from the DER (der.h) rather
 * than through d2i_X509: with 10,000 tenants d2i_X509 cost 1.4 s of engine
 * start-up and about 5 KiB per CA, most of it OpenSSL 3.0 decoding every
 * public key through its decoder framework (docs/performance.md, fix F3).
 *
 * The public key and the subject Name are built when a request needs them
 * (tca_issuer_pubkey: about 4 us for P-256, see tca_spki_to_pkey, against
 * about 90 us through the decoders) and freed afterwards, so what stays in
 * memory per CA is its DER plus this struct.
 *
 * A tca_issuer is immutable once built and may be shared between threads.
 */
#ifndef TCA_ISSUER_H
#define TCA_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "der.h"

#define TCA_ISSUER_MAX_SKI	64	/* longest SubjectKeyIdentifier accepted */

struct tca_issuer {
	unsigned char *der;		/* the CA certificate (owned) */
	size_t der_len;
	struct tca_der_tlv subject;	/* Name, pointing into der */
	struct tca_der_tlv spki;	/* SubjectPublicKeyInfo, pointing into der */
	unsigned char ski[TCA_ISSUER_MAX_SKI];	/* SKI extension, or RFC 5280 */
	size_t ski_len;			/* 4.2.1.2 method 1 if it has none */
	int64_t not_before, not_after;	/* unix seconds */
	unsigned char sha256[32];	/* fingerprint of der */
};

/*
 * Builds an issuer from one DER certificate (exactly len bytes; copied).
 * TCA_ERR_BAD_REQUEST if the DER does not split as a certificate, its times
 * are not in the RFC 5280 form or its SKI is longer than TCA_ISSUER_MAX_SKI.
 * The signature is not checked here: the engine only loads certificates it
 * verified when it made them.  *iss_ptr: caller frees with tca_issuer_free().
 */
int tca_issuer_new(const unsigned char *der, size_t len, struct tca_issuer **iss_ptr);
void tca_issuer_free(struct tca_issuer *iss);

/* The CA's public key.  *pkey_ptr: caller frees with EVP_PKEY_free(). */
int tca_issuer_pubkey(const struct tca_issuer *iss, EVP_PKEY **pkey_ptr);

/* The CA's subject Name.  *name_ptr: caller frees with X509_NAME_free(). */
int tca_issuer_name(const struct tca_issuer *iss, X509_NAME **name_ptr);

/*
 * EVP_PKEY of a DER SubjectPublicKeyInfo.  P-256 and P-384 (named curves)
 * keys are copies of a parameters-only key with the point set, RSA keys are
 * built with EVP_PKEY_fromdata and Ed25519 keys with the raw-key API;
 * anything else goes through d2i_PUBKEY.  *pkey_ptr: caller EVP_PKEY_free()s.
 * TCA_ERR_BAD_REQUEST if the encoding or the key is not valid;
 * TCA_ERR_POLICY_VIOLATION for a key that decodes but for which anyone can
 * make signatures: the EC point at infinity (and the hybrid point forms RFC
 * 5480 does not allow), Ed25519 points of small order, RSA keys with an even
 * exponent, exponent 1, an even modulus or a prime factor below 752 (CA/B
 * Baseline Requirements 6.1.6).  OpenSSL 3.0 verifies forged signatures
 * under the first three.  why (may be NULL) says which.
 */
int tca_spki_to_pkey(const unsigned char *spki, size_t len, EVP_PKEY **pkey_ptr,
    char *why, size_t whylen);

/* ---- public-key helpers shared by certs.c, csr.c and token.c */

/* A public key of type ("EC", "RSA", ...) from the parameters in bld
 * (EVP_PKEY_fromdata).  TCA_OK or TCA_ERR_CRYPTO; *pkey_ptr: caller frees. */
int tca_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **pkey_ptr);

/* 1 if sig is pub's signature over msg with digest mdname (NULL for EdDSA,
 * which signs msg itself), else 0.  The caller checks that pub is of the key
 * type the signature algorithm names: with a NULL digest OpenSSL would
 * otherwise use a key type's default. */
int tca_sig_verify(EVP_PKEY *pub, const char *mdname, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen);

#endif
