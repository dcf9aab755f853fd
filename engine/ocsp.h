/*
 * ocsp.h - OCSP responder of a tenant CA (RFC 6960), and the client side of
 * `tca-client ocsp`.
 *
 * The responder is the CA itself: responses are signed with the CA key
 * through a tca_signer (certs.h), exactly as certificates and CRLs are, and
 * carry no certificates (RFC 6960 4.2.2.2: the CA that issued the
 * certificate in question may sign).  Requests come from anyone through a
 * front end, so they are read with the strict DER reader (der.h) with fixed
 * bounds, never with d2i_OCSP_REQUEST; the response is written with the DER
 * writer.  The revocation state comes from the caller through a lookup
 * callback, so this module has no store and no token: time is passed in.
 *
 * The client functions use OpenSSL's OCSP API: they run in the tools, on
 * the engine's own answers.
 *
 * Return values: TCA_OK or TCA_ERR_* (tca-error.h).
 */
#ifndef TCA_OCSP_H
#define TCA_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include "certs.h"
#include "issuer.h"

#define TCA_OCSP_MAX_REQUEST	(64 * 1024)	/* DER OCSPRequest octets */
#define TCA_OCSP_MAX_NONCE	128	/* nonce octets (RFC 8954 asks for 1..32) */
#define TCA_OCSP_DEFAULT_MAX_REQUESTS	16

enum tca_ocsp_status {
	TCA_OCSP_GOOD = 0,
	TCA_OCSP_REVOKED = 1,
	TCA_OCSP_UNKNOWN = 2,
};

struct tca_ocsp_cert_status {
	enum tca_ocsp_status status;
	int64_t revoked_at;	/* REVOKED: revocationTime, unix seconds */
	int reason;		/* REVOKED: enum tca_crl_reason (crl.h) */
};

/*
 * Called once per requested certificate whose CertID names the CA (issuer
 * hashes match): TCA_OK with *out filled (status, and for REVOKED the time
 * and a reason tca_crl_reason_name() knows), or an error that aborts the
 * response (e.g. TCA_ERR_JOURNAL_UNAVAILABLE).  serial is the magnitude: the
 * INTEGER's contents with a leading 0x00 stripped, 1..20 octets (longer and
 * negative serials are answered unknown without a lookup).  *out is preset
 * to { TCA_OCSP_UNKNOWN, 0, 0 }, so a lookup that does not fill it in
 * answers unknown, never good.
 */
typedef int (*tca_ocsp_lookup_fn)(void *ctx, const unsigned char *serial,
    size_t serial_len, struct tca_ocsp_cert_status *out);

struct tca_ocsp_params {
	int64_t now;		/* producedAt and thisUpdate */
	int64_t next_update;	/* 0: omitted; else must be > now */
	size_t max_requests;	/* Request entries per OCSPRequest; 0 = 16 */
};

/*
 * Answers one DER OCSPRequest for ca: *resp_ptr is a DER OCSPResponse
 * (caller OPENSSL_free()s), *resp_len_ptr its length.
 *
 *  - The request is read with the der.h reader (DER only, at most
 *    TCA_OCSP_MAX_REQUEST octets, at most max_requests Request entries, a
 *    nonce of 1..TCA_OCSP_MAX_NONCE octets, only version v1).  A request
 *    that does not parse, has an empty requestList or too many entries gets
 *    TCA_OK and an unsigned OCSPResponse with status malformedRequest (1),
 *    which the caller sends back as is; *status_ptr says "malformed".  The
 *    optionalSignature of a signed request and every request extension but
 *    the nonce are ignored.
 *  - A CertID with hashAlgorithm SHA-1 or SHA-256 whose issuerNameHash is
 *    the hash of the CA's subject Name DER and whose issuerKeyHash is the
 *    hash of its subjectPublicKey BIT STRING contents (without the
 *    unused-bits octet) gets the status lookup reports; any other CertID is
 *    answered unknown without a lookup.  Each CertID is echoed byte for byte.
 *  - BasicOCSPResponse: version v1 (omitted), responderID byKey (SHA-1 of
 *    the CA's subjectPublicKey), producedAt = now, one SingleResponse per
 *    Request in request order (thisUpdate = now, nextUpdate when
 *    next_update != 0, revocationReason when revoked and the reason is not
 *    unspecified), the request's nonce extension echoed byte for byte, all
 *    times GeneralizedTime; signed by signer (whose alg must be the CA key's)
 *    and checked against the CA key (tca_sign_assemble_der), no certs.
 *    *status_ptr says "successful".
 *
 * *status_ptr may be NULL; it points to a static string, and is NULL unless
 * TCA_OK.  Other returns (no response): TCA_ERR_INVALID_ARG (bad arguments,
 * a status from lookup that cannot be encoded), the lookup's error, or the
 * signer's / TCA_ERR_CRYPTO when the signature does not verify; the caller
 * then answers with an engine error, not an OCSP one.
 */
int tca_ocsp_respond(const struct tca_issuer *ca, const struct tca_signer *signer,
    const unsigned char *req, size_t req_len, const struct tca_ocsp_params *p,
    tca_ocsp_lookup_fn lookup, void *lookup_ctx, unsigned char **resp_ptr,
    size_t *resp_len_ptr, const char **status_ptr);

/*
 * For `tca-client ocsp` and tests: a DER OCSPRequest for cert issued by
 * issuer (both DER certificates), with a SHA-1 CertID and, if nonce is not
 * NULL and nonce_len > 0, a nonce extension holding those octets
 * (TCA_ERR_INVALID_ARG above TCA_OCSP_MAX_NONCE).  *req_ptr: caller
 * OPENSSL_free()s.  TCA_ERR_BAD_REQUEST if a certificate does not parse.
 */
int tca_ocsp_request_build(const unsigned char *cert, size_t cert_len,
    const unsigned char *issuer, size_t issuer_len, const unsigned char *nonce,
    size_t nonce_len, unsigned char **req_ptr, size_t *req_len_ptr);

/*
 * Checks a DER OCSPResponse about cert (issued by issuer) and reports the
 * certificate's status in *out:
 *  - responseStatus successful, a BasicOCSPResponse whose signature verifies
 *    with the issuer certificate's key and whose responderID names that key
 *    or its subject (OCSP_basic_verify with the issuer as the only, trusted,
 *    signer: OCSP_TRUSTOTHER | OCSP_NOINTERN), so a certificate carried in
 *    the response is never used;
 *  - the nonce extension equal to nonce, when nonce is given;
 *  - a SingleResponse for cert's CertID (SHA-1 or SHA-256);
 *  - when now != 0: thisUpdate not after now + 5 minutes and nextUpdate, if
 *    present, not before now - 5 minutes (OCSP_check_validity's slack).
 * out->reason is TCA_REASON_UNSPECIFIED when the response has none.
 * TCA_ERR_PROTOCOL with why for a response that fails any check,
 * TCA_ERR_BAD_REQUEST if cert or issuer does not parse.
 */
int tca_ocsp_response_check(const unsigned char *resp, size_t resp_len,
    const unsigned char *cert, size_t cert_len, const unsigned char *issuer,
    size_t issuer_len, const unsigned char *nonce, size_t nonce_len, int64_t now,
    struct tca_ocsp_cert_status *out, char *why, size_t whylen);

#endif
