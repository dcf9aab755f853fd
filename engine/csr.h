/*
 * csr.h - device certificate requests (PKCS#10, RFC 2986): parsing and the
 * issuance policy.
 *
 * A CSR comes from an untrusted device through a front end.  It is read with
 * the strict DER reader (der.h), not d2i_X509_REQ: OpenSSL 3.0 decodes every
 * public key it parses through its decoder framework, which was a quarter of
 * the cost of a device certificate (docs/performance.md, fix F5).  The key is
 * built from the SubjectPublicKeyInfo with issuer.c's tca_spki_to_pkey, the
 * subject Name and the requested extensions with OpenSSL's d2i for those
 * types, and proof of possession is checked over the exact
 * CertificationRequestInfo bytes.  Signature algorithms without a plain
 * (digest, key type) mapping, such as RSASSA-PSS, are verified through
 * d2i_X509_REQ + X509_REQ_verify instead.
 *
 * DER only: a CSR in BER (indefinite or non-minimal lengths) is refused with
 * TCA_ERR_BAD_REQUEST; RFC 2986 signs the DER encoding.
 */
#ifndef TCA_CSR_H
#define TCA_CSR_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "der.h"

#define TCA_CSR_MAX_INPUT	(64 * 1024)	/* DER or PEM */

/* A parsed CSR.  Read-only after tca_csr_parse(); every pointer into der. */
typedef struct tca_csr {
	unsigned char *der;		/* the request's DER (owned) */
	size_t der_len;
	struct tca_der_tlv info;	/* CertificationRequestInfo: what was signed */
	struct tca_der_tlv sig_alg;	/* signatureAlgorithm */
	const unsigned char *sig;	/* signature BIT STRING contents */
	size_t sig_len;
	X509_NAME *subject;
	X509_ALGOR *key_alg;		/* SubjectPublicKeyInfo algorithm */
	const unsigned char *key;	/* subjectPublicKey BIT STRING contents */
	size_t key_len;
	EVP_PKEY *pkey;			/* NULL: the key is refused, see key_err */
	int key_err;			/* tca_spki_to_pkey's result */
	char key_why[96];		/* and its reason */
	STACK_OF(X509_EXTENSION) *exts;	/* requested extensions; NULL if none */
	int exts_malformed;		/* an extension request that does not decode */
} tca_csr;

/*
 * Parses a PKCS#10 CSR given as DER or PEM ("CERTIFICATE REQUEST" or the
 * legacy "NEW CERTIFICATE REQUEST").  TCA_ERR_BAD_REQUEST with a reason if it
 * is neither, has trailing bytes, or its structure is not a CSR.  A public
 * key that does not decode is not an error here (tca_csr_check refuses it).
 * *csr_ptr: caller frees with tca_csr_free().
 */
int tca_csr_parse(const unsigned char *data, size_t len, tca_csr **csr_ptr,
    char *why, size_t whylen);
void tca_csr_free(tca_csr *csr);

/*
 * Issuance policy for a device CSR (all checked, first failure reported):
 *  - the CSR's self-signature verifies (proof of possession);
 *  - subject holds exactly one CN, equal to device_id; only CN, O and OU
 *    attributes are accepted (others refused, naming the attribute);
 *  - key is EC P-256 or P-384, RSA >= 2048 bits (<= 8192), or Ed25519, and
 *    not one anyone can sign for (tca_spki_to_pkey: POLICY_VIOLATION);
 *  - no basicConstraints CA:TRUE in the requested extensions.
 * TCA_OK or TCA_ERR_POLICY_VIOLATION / TCA_ERR_BAD_REQUEST with why.
 */
int tca_csr_check(const tca_csr *csr, const char *device_id, char *why, size_t whylen);

#endif
