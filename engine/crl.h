/*
 * crl.h - certificate revocation lists of a tenant CA (RFC 5280 5).
 *
 * A CRL is written with the DER writer of der.h straight from the revocation
 * entries, not through OpenSSL's X509_CRL API: a tenant may have 100,000
 * revoked devices, and X509_CRL builds an object per entry and sorts them.
 * Sizes are computed first and the TBSCertList is written into one
 * allocation.  It is signed like a certificate: through a tca_signer
 * (certs.h), with the signature checked against the CA public key before the
 * CRL is assembled (tca_sign_assemble_der), so no private key exists in this
 * process and a faulty signer never produces a CRL.
 *
 * Everything here is pure computation on its inputs (time is passed in).
 *
 * Return values: TCA_OK or TCA_ERR_* (tca-error.h).
 */
#ifndef TCA_CRL_H
#define TCA_CRL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "certs.h"
#include "issuer.h"

/*
 * RFC 5280 5.3.1 reason codes the engine accepts.  certificateHold (6) and
 * removeFromCRL (8) are refused (revocation is irreversible), aACompromise
 * (10) does not apply (no attribute certificates), 7 is unused.
 */
enum tca_crl_reason {
	TCA_REASON_UNSPECIFIED = 0,
	TCA_REASON_KEY_COMPROMISE = 1,
	TCA_REASON_CA_COMPROMISE = 2,
	TCA_REASON_AFFILIATION_CHANGED = 3,
	TCA_REASON_SUPERSEDED = 4,
	TCA_REASON_CESSATION_OF_OPERATION = 5,
	TCA_REASON_PRIVILEGE_WITHDRAWN = 9,
};

/* "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
 * "superseded", "cessationOfOperation", "privilegeWithdrawn" (the RFC 5280
 * names); NULL for anything else, including 6, 8 and 10.  Static strings. */
const char *tca_crl_reason_name(int reason);

/*
 * Parses a reason name: the RFC names above case-insensitively, and the
 * kebab forms "key-compromise", "ca-compromise", "affiliation-changed",
 * "cessation-of-operation", "privilege-withdrawn".  TCA_OK, or
 * TCA_ERR_BAD_REQUEST with why naming the accepted values;
 * "certificateHold"/"certificate-hold" and "removeFromCRL"/"remove-from-crl"
 * get a specific why ("certificateHold is refused: revocation is
 * irreversible"), as does "aACompromise".  *reason_ptr is set only on TCA_OK.
 */
int tca_crl_reason_parse(const char *name, int *reason_ptr, char *why, size_t whylen);

#define TCA_CRL_MAX_SERIAL	20	/* RFC 5280 4.1.2.2; store.h's TCA_SERIAL_MAX */
#define TCA_CRL_MAX_ENTRIES	(10U * 1000U * 1000U)	/* keeps the DER below 4 GiB */

/* One revoked certificate.  serial is not copied. */
struct tca_crl_entry {
	const unsigned char *serial;	/* big-endian magnitude, 1..20 octets, as */
	size_t serial_len;		/* store.h keeps serials */
	int64_t revoked_at;		/* revocationDate, unix seconds */
	int reason;			/* enum tca_crl_reason */
};

struct tca_crl_params {
	uint64_t crl_number;		/* cRLNumber (RFC 5280 5.2.3) */
	int64_t this_update, next_update;	/* unix seconds */
};

/*
 * The v2 CRL of ca, signed by signer, whose alg must be the one for the CA's
 * key (TCA_ERR_INVALID_ARG otherwise, e.g. ECDSA-SHA384 for a P-256 key).
 *
 * TBSCertList: version v2, signature = tca_sig_alg_der(signer->alg),
 * issuer = the CA certificate's subject Name copied byte for byte,
 * thisUpdate, nextUpdate (UTCTime through 2049, GeneralizedTime from 2050),
 * revokedCertificates in the order given and omitted when n == 0 (RFC 5280
 * 5.1.2.6), each { userCertificate (the magnitude as a minimal positive
 * INTEGER), revocationDate, crlEntryExtensions { reasonCode } only when the
 * reason is not unspecified (5.3.1: SHOULD be absent then) }, crlExtensions
 * { authorityKeyIdentifier { keyIdentifier = ca->ski }, cRLNumber }, both
 * non-critical.
 *
 * TCA_ERR_INVALID_ARG for bad parameters: next_update <= this_update, a time
 * outside 1950..9999, a serial_len of 0 or more than 20, a reason that
 * tca_crl_reason_name() does not know, n > TCA_CRL_MAX_ENTRIES.  Duplicate
 * serials are not looked for (the store keeps one revocation per serial).
 * The signature is checked against the CA key before the CRL is assembled.
 * *der_ptr (caller OPENSSL_free()s), *len_ptr.
 */
int tca_crl_build(const struct tca_issuer *ca, const struct tca_signer *signer,
    const struct tca_crl_params *p, const struct tca_crl_entry *entries, size_t n,
    unsigned char **der_ptr, size_t *len_ptr);

/*
 * Reads back the cRLNumber, thisUpdate, nextUpdate (0 if absent) and the
 * number of revokedCertificates entries of a DER CRL (exactly len octets)
 * with the DER reader, for status output and tests.  The signature is not
 * checked.  Every out pointer may be NULL.  TCA_ERR_BAD_REQUEST if the DER
 * is not a CertificateList, has no cRLNumber or one above 2^64-1.
 */
int tca_crl_info(const unsigned char *der, size_t len, uint64_t *number_ptr,
    int64_t *this_update_ptr, int64_t *next_update_ptr, size_t *n_entries_ptr);

/*
 * Shared by crl.c and ocsp.c: TCA_OK if alg is the signature algorithm for
 * pub's key type (and, for EC keys, its curve), else TCA_ERR_INVALID_ARG.
 */
int tca_signer_alg_check(enum tca_sig_alg alg, EVP_PKEY *pub);

#endif
