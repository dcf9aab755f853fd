/*
 * certs.h - certificate assembly and issuance policy.
 *
 * Certificates are assembled with OpenSSL 3's X509 API and signed by a
 * tca_signer: we build the TBSCertificate, DER-encode it, hand those bytes to
 * the signer (in the engine: the token's C_Sign through tca_token_sign) and
 * check the signature over the TBS against the issuer's public key, and
 * assemble Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue }
 * ourselves.  No private key ever exists in this process; no ENGINE API is
 * used.
 *
 * Everything here is pure computation on its inputs (time is passed in), so it
 * is unit-tested without a token.
 *
 * Return values: TCA_OK or TCA_ERR_*.  Policy refusals return
 * TCA_ERR_POLICY_VIOLATION (or TCA_ERR_BAD_REQUEST for undecodable input) with
 * a one-line reason for the peer in why/whylen.
 */
#ifndef TCA_CERTS_H
#define TCA_CERTS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "csr.h"
#include "issuer.h"
#include "keytype.h"
#include "store.h"
#include "tenant-policy.h"

#define TCA_SERIAL_LEN 16	/* random serial bytes; top bit cleared, never zero */

/* Signs tbs with the CA key as alg; writes the signatureValue content into sig
 * (capacity *sig_len in, length out).  Returns TCA_OK or TCA_ERR_*. */
struct tca_signer {
	enum tca_sig_alg alg;
	int (*sign)(void *ctx, const unsigned char *tbs, size_t tbs_len,
	    unsigned char *sig, size_t *sig_len);
	void *ctx;
};

/*
 * Signs the DER to-be-signed structure tbs with signer, checks the signature
 * over tbs against issuer_pub (a signer that returns garbage - wrong key,
 * wrong mechanism, a token fault - can never produce a signed object, and a
 * faulty RSA or EdDSA signature never leaves the process), and wraps tbs, the
 * DER AlgorithmIdentifier algder and BIT STRING(signature) into one
 * SEQUENCE: a Certificate, a CertificateList (CRL) or a BasicOCSPResponse
 * without certs all have this shape.  *der_ptr (OPENSSL_malloc'ed, caller
 * OPENSSL_free()s), *len_ptr.
 */
int tca_sign_assemble_der(const unsigned char *tbs, size_t tbslen,
    const unsigned char *algder, size_t alglen, const struct tca_signer *signer,
    EVP_PKEY *issuer_pub, unsigned char **der_ptr, size_t *len_ptr);

/* The DER signatureAlgorithm of alg: parameters absent for ECDSA and Ed25519
 * (RFC 5758 3.2, RFC 8410 3), NULL for sha256WithRSAEncryption (RFC 4055 5).
 * *der_ptr: caller OPENSSL_free()s. */
int tca_sig_alg_der(enum tca_sig_alg alg, unsigned char **der_ptr, size_t *len_ptr);

/* Fresh serial: TCA_SERIAL_LEN bytes from RAND_bytes, first byte's top bit
 * cleared and first byte made non-zero, so the DER INTEGER is positive and
 * exactly 16 bytes long. */
int tca_random_serial(unsigned char serial[TCA_SERIAL_LEN]);

struct tca_ca_params {
	const char *common_name;	/* tenant id */
	const char *organization;	/* O, may be NULL/"" to omit */
	const char *country;	/* C, two letters, may be NULL/"" to omit */
	time_t not_before;
	unsigned int days;	/* notAfter = notBefore + days * 86400 */
};

/*
 * Self-signed CA certificate for pub, signed by signer:
 * v3, random serial, subject = issuer = C, O, CN; basicConstraints critical
 * CA:TRUE; keyUsage critical keyCertSign, cRLSign; SKI = SHA-1 of the
 * subjectPublicKey BIT STRING (RFC 5280 4.2.1.2 method 1); AKI keyIdentifier =
 * SKI.  *cert_ptr: caller frees with X509_free().
 */
int tca_cert_build_ca(const struct tca_ca_params *p, EVP_PKEY *pub,
    const struct tca_signer *signer, X509 **cert_ptr);

struct tca_device_params {
	time_t now;		/* notBefore */
	unsigned int days;	/* requested validity; 0 = default_days */
	unsigned int default_days;	/* 365; also the maximum */
	enum tca_san_form san;	/* subjectAltName form; 0 = TCA_SAN_URI */
	const char *tenant;	/* tenant id (tenant.h); needed unless san is NONE */
	const char *device_id;	/* = the CSR's CN; needed unless san is NONE */
};

/*
 * Device certificate from a CSR that passed tca_csr_check() (csr.h): v3, random
 * serial, subject = CN/O/OU copied from the CSR (in the CSR's order), issuer =
 * CA subject (its DER, byte for byte), validity [now, now + min(days,
 * default_days)] capped at the CA's notAfter (TCA_ERR_POLICY_VIOLATION if the
 * CA is not valid at now), basicConstraints critical CA:FALSE, keyUsage
 * critical digitalSignature (+ keyEncipherment for RSA keys),
 * extendedKeyUsage clientAuth, subjectAltName (below), SKI (method 1), AKI
 * keyIdentifier = the CA's SKI, in this order.  Nothing else from the CSR is
 * copied (a SAN the CSR requests is ignored).
 *
 * subjectAltName, non-critical (the subject is never empty), per p->san:
 *  - TCA_SAN_URI (default): one uniformResourceIdentifier
 *        urn:tca:device:<tenant>:<device-id>
 *    where every byte of the tenant and device ids outside RFC 3986
 *    unreserved (A-Z a-z 0-9 - . _ ~) is percent-encoded as %XX (uppercase
 *    hex; UTF-8 bytes one by one), so ':' in an id never reads as the
 *    separator and the URI is ASCII (IA5String).  The form never changes:
 *    relying parties match on it.
 *  - TCA_SAN_DNS: one dNSName, the device id as it is, which must be an LDH
 *    host name (tca_dns_name_valid, tenant-policy.h); otherwise
 *    TCA_ERR_POLICY_VIOLATION "device id is not a DNS name (san=dns)".
 *  - TCA_SAN_NONE: no subjectAltName.
 * p->tenant and p->device_id NULL or empty (or longer than their 64-byte
 * maxima) with a form other than NONE, or an unknown form:
 * TCA_ERR_INVALID_ARG.
 *
 * The certificate is returned as DER in *der_ptr (caller OPENSSL_free()s) and,
 * if info is not NULL, described in *info (info->der points into *der_ptr).
 * It is never parsed back: its signature was checked over the TBS before
 * assembly.
 */
int tca_cert_issue_device(const struct tca_issuer *ca, const struct tca_signer *signer,
    const tca_csr *csr, const struct tca_device_params *p, struct tca_cert_info *info,
    unsigned char **der_ptr, char *why, size_t whylen);

/*
 * RFC 7030 4.2.2 re-enrollment check: current (DER or PEM) must parse, be
 * issued by one of the tenant's CA certificates in cas[0..n_cas) (signature
 * verifies, issuer name matches), and the CSR subject must equal current's
 * subject (X509_NAME_cmp).  Expiry of current is tolerated (a device renews
 * late).  Revocation is the engine's check (revocation.c), not this one's.
 */
int tca_reenroll_check(const struct tca_issuer *const *cas, size_t n_cas,
    const unsigned char *current, size_t current_len, const tca_csr *csr,
    char *why, size_t whylen);

/* ---- yearly CA re-issuance (issue 4) */

enum tca_serial_mode {
	TCA_SERIAL_NEW = 0,	/* default: fresh random serial (RFC 5280 issuer+serial uniqueness) */
	TCA_SERIAL_KEEP = 1,	/* reissue.serial = keep: literal "only validity changes" */
};

/*
 * Re-issues the self-signed CA certificate old (DER, old_len bytes) with the
 * same key, working on the DER of its TBSCertificate: every element is copied
 * byte for byte -
 * version, signature AlgorithmIdentifier, issuer, subject,
 * subjectPublicKeyInfo, unique ids, extensions - except validity
 * (notBefore = not_before, notAfter = not_before + days * 86400) and, unless
 * mode is KEEP, serialNumber (fresh, tca_random_serial).  Nothing is
 * recomputed from parsed structures, and no key goes through OpenSSL's
 * decoders.  Signed by signer, whose alg must match old's signature
 * algorithm; the signature is verified against old's public key before the
 * certificate is assembled.  *der_ptr (caller OPENSSL_free()s), *len_ptr.
 */
int tca_cert_reissue_ca(const unsigned char *old, size_t old_len, time_t not_before,
    unsigned int days, enum tca_serial_mode mode, const struct tca_signer *signer,
    unsigned char **der_ptr, size_t *len_ptr);

/* One differing TBSCertificate field. */
struct tca_tbs_diff {
	char field[64];		/* "serialNumber", "validity.notBefore", "extensions", ... */
	char old_value[256];	/* printable (hex for binary, RFC 2253 for names, ISO time) */
	char new_value[256];
};

/*
 * Compares the TBSCertificates of a and b element by element on their DER
 * (version, serialNumber, signature, issuer, validity.notBefore,
 * validity.notAfter, subject, subjectPublicKeyInfo, issuerUniqueID,
 * subjectUniqueID, extensions - and, for extensions, each extension by OID).
 * Fills diffs[0..max) and *n_ptr with the number of differing fields (which
 * may exceed max).  TCA_OK or TCA_ERR_BAD_REQUEST (unparsable).
 */
int tca_cert_tbs_diff(const unsigned char *a, size_t la, const unsigned char *b,
    size_t lb, struct tca_tbs_diff *diffs, size_t max, size_t *n_ptr);

/* Fills info from a DER certificate (not copied: info->der = der), read with
 * the DER reader, so no key is decoded.  info->serial is the serial's
 * magnitude (a leading 0x00 octet dropped). */
int tca_cert_info_from_der(const unsigned char *der, size_t len, struct tca_cert_info *info);

/* Fills info from cert; info->der points into *der_ptr, which the caller frees
 * with OPENSSL_free() after use.  */
int tca_cert_get_info(X509 *cert, struct tca_cert_info *info, unsigned char **der_ptr);

/* DER-encode cert; caller frees *der_ptr with OPENSSL_free(). */
int tca_cert_to_der(X509 *cert, unsigned char **der_ptr, size_t *len_ptr);

/* Parse one DER certificate (exactly, no trailing bytes). */
int tca_cert_from_der(const unsigned char *der, size_t len, X509 **cert_ptr);

#endif
