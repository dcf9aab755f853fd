/*
 * tca-client.h - client library for the tca engine's Unix-socket RPC.
 *
 * Link with -ltca-client (pkg-config tca-client).  One tca_client is one
 * connection; use it from one thread at a time (open one per thread).
 * Calls are synchronous.  Every function returns TCA_CLIENT_OK (0) or a
 * negative TCA_ERR_* code (tca-error.h values, repeated here so front ends need
 * only this header); engine refusals also fill *err with the wire code name and
 * the engine's message.
 */
#ifndef TCA_CLIENT_H
#define TCA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "tca-error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TCA_CLIENT_OK 0
#define TCA_CLIENT_DEFAULT_SOCKET "/run/tca/engine.sock"

typedef struct tca_client tca_client;

struct tca_client_error {
	int err;		/* TCA_ERR_* */
	char code[32];		/* "POLICY_VIOLATION", ... ("" for local errors) */
	char message[256];	/* engine's or local explanation */
};

/* Connects to socket_path (NULL = TCA_CLIENT_DEFAULT_SOCKET).  timeout_ms
 * bounds every later call's wait for the answer (<= 0: 30 s).
 * *c_ptr: free with tca_client_close(). */
int tca_client_connect(const char *socket_path, int timeout_ms,
    tca_client **c_ptr, struct tca_client_error *err);
void tca_client_close(tca_client *c);

/*
 * Generic call: sends op with args (borrowed; NULL = empty map) and waits for
 * the answer.  On TCA_CLIENT_OK *result_ptr is the result map; caller
 * cbor_decref()s it.  On an engine error returns err->err.  After a transport
 * error (TCA_ERR_SYSTEM, TCA_ERR_TIMEOUT, TCA_ERR_PROTOCOL, TCA_ERR_EOF), or a
 * refusal of the connection itself (response id 0: FRAME_TOO_LARGE,
 * UNAUTHORIZED, BUSY), the connection is unusable: close it.
 */
int tca_client_call(tca_client *c, const char *op, const cbor_item_t *args,
    cbor_item_t **result_ptr, struct tca_client_error *err);

/* Issue a device certificate.  csr is DER or PEM.  days 0 = engine default.
 * *cert_ptr: DER, caller free()s. */
int tca_client_issue(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, unsigned int days,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err);

/* As tca_client_issue, presenting the device's registered one-time password
 * otp (NUL-terminated; NULL or "" = none), which a tenant requiring device
 * registration wants for a device's first certificate; a refusal is
 * TCA_ERR_CREDENTIAL_REFUSED (docs/rpc.md 7.1).  The library's copies of otp
 * are wiped after the call; the caller wipes its own. */
int tca_client_issue_otp(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, unsigned int days, const char *otp,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err);

/* Re-enroll: as issue, plus the device's current certificate (DER or PEM). */
int tca_client_reenroll(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err);

/* The tenant's CA certificates, current first.  *certs_ptr is an array of
 * *n_ptr DER buffers with lengths in *lens_ptr; free with
 * tca_client_free_certs(). */
int tca_client_cacerts(tca_client *c, const char *tenant,
    unsigned char ***certs_ptr, size_t **lens_ptr, size_t *n_ptr,
    struct tca_client_error *err);
void tca_client_free_certs(unsigned char **certs, size_t *lens, size_t n);

/* The tenant's current CRL (DER, from the engine's store; the engine never
 * signs on this path).  *crl_ptr: caller free()s. */
int tca_client_crl(tca_client *c, const char *tenant, unsigned char **crl_ptr,
    size_t *crl_len_ptr, struct tca_client_error *err);

/* Answers a DER OCSPRequest for the tenant (what an OCSP HTTP front end
 * forwards).  *resp_ptr: the DER OCSPResponse, caller free()s; status (may be
 * NULL, statuslen bytes): "good", "revoked", "unknown" or "malformed" for the
 * first certificate asked about. */
int tca_client_ocsp(tca_client *c, const char *tenant, const unsigned char *req,
    size_t req_len, unsigned char **resp_ptr, size_t *resp_len_ptr, char *status,
    size_t statuslen, struct tca_client_error *err);

/* The tenant's RFC 7030 CSR attributes (DER CsrAttrs, from its policy),
 * what an EST front end serves at /csrattrs.  *der_ptr: caller free()s. */
int tca_client_csrattrs(tca_client *c, const char *tenant, unsigned char **der_ptr,
    size_t *der_len_ptr, struct tca_client_error *err);

/* Description of a TCA_ERR_* code. */
const char *tca_client_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
