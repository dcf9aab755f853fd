/*
 * est-pkix.h - what tca-estd does with bytes: RFC 8951 base64 bodies, the
 * certs-only PKCS#7 of /cacerts and the enrollment responses, CSR and client
 * certificate inspection.  OpenSSL only; no keys anywhere.
 */
#ifndef TCA_EST_PKIX_H
#define TCA_EST_PKIX_H

#include <stddef.h>

/*
 * Base64 (RFC 4648 alphabet, '=' padding required) ignoring whitespace (space,
 * tab, CR, LF) anywhere, as RFC 8951 asks of EST bodies.  0 with *out_ptr
 * (malloc, caller frees) and *out_len_ptr, or -1 (not base64, or empty).
 */
int est_b64_decode(const char *in, size_t len, unsigned char **out_ptr, size_t *out_len_ptr);

/* Base64 in lines of 64 characters, each ended by "\n".  0 with *out_ptr
 * (malloc, NUL-terminated, caller frees) and *out_len_ptr, or -1. */
int est_b64_encode(const unsigned char *in, size_t len, char **out_ptr, size_t *out_len_ptr);

/* A degenerate PKCS#7 SignedData ("certs-only": no content, no signers)
 * holding the n DER certificates in order.  0 with *der_ptr (OPENSSL_malloc'd
 * copy turned into malloc: caller free()s) and *der_len_ptr, or -1 (a
 * certificate does not parse, or out of memory). */
int est_certs_only(const unsigned char *const *certs, const size_t *lens, size_t n,
    unsigned char **der_ptr, size_t *der_len_ptr);

/*
 * Parses a DER PKCS#10 request (exactly len bytes) and copies its subject's
 * commonName (UTF-8; "" if it has none, or more than one) to cn.  0, or -1 with a
 * short reason in why.
 */
int est_csr_parse(const unsigned char *der, size_t len, char *cn, size_t cnlen,
    char *why, size_t whylen);

/* The commonName of a DER certificate as for est_csr_parse.  0 or -1. */
int est_cert_cn(const unsigned char *der, size_t len, char *cn, size_t cnlen);

/*
 * 1 if the DER certificate cert names one of the n DER CA certificates as
 * its issuer and its signature verifies with that CA's key (validity dates are
 * not checked: the engine re-enrolls an expired certificate); 0 if none; -1 if
 * cert does not parse.
 */
int est_cert_issued_by_any(const unsigned char *cert, size_t cert_len,
    const unsigned char *const *cas, const size_t *ca_lens, size_t n);

/* Checks that the PEM private key in key (len bytes) is one and belongs to the
 * first certificate of the PEM chain in cert.  0, or -1 with why. */
int est_check_key_pair(const char *cert, size_t cert_len, const char *key, size_t key_len,
    char *why, size_t whylen);

#endif
