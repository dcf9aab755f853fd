/*
 * est-engine.h - tca-estd's way to the engine: a bounded number of
 * libtca-client connections (one per request in flight, opened for it and
 * closed after it), the enrollment calls, and the one table that turns an
 * engine answer into an HTTP status (docs/est.md, "Errors").
 */
#ifndef TCA_EST_ENGINE_H
#define TCA_EST_ENGINE_H

#include <pthread.h>
#include <stddef.h>

#include "tca-client.h"

struct est_engine {
	char socket[108];
	int timeout_ms;			/* per call */
	unsigned int max;		/* connections at once */
	unsigned int wait_ms;		/* for a free one */
	unsigned int in_use;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC */
};

int est_engine_init(struct est_engine *e, const char *socket, unsigned int timeout_ms,
    unsigned int max, unsigned int wait_ms);
void est_engine_destroy(struct est_engine *e);

/*
 * Waits up to wait_ms for one of the max connection slots, then connects.
 * TCA_CLIENT_OK with *c_ptr (give it back with est_engine_close()), or an
 * error in err: TCA_ERR_BUSY with an empty code when no slot came free, the
 * library's transport error when the engine cannot be reached.
 */
int est_engine_open(struct est_engine *e, tca_client **c_ptr, struct tca_client_error *err);
void est_engine_close(struct est_engine *e, tca_client *c);

/*
 * `issue` (current == NULL) or `reenroll` with {tenant, device_id, csr,
 * current?, otp?}; otp (NULL: not sent) is wiped from memory this process
 * owns after the call.  TCA_CLIENT_OK with *cert_ptr (DER, caller free()s).
 */
int est_engine_enroll(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, const char *otp,
    const unsigned char *current, size_t current_len,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err);

/* For the request log: the engine's code ("POLICY_VIOLATION"), or a local
 * name for what happened on the way ("UNREACHABLE", "TIMEOUT", "NO_SLOT",
 * "PROTOCOL", ...). */
const char *est_engine_code(const struct tca_client_error *err);

/*
 * The HTTP status for a failed engine call (docs/est.md):
 * BAD_REQUEST, POLICY_VIOLATION -> 400; CREDENTIAL_REFUSED -> 401;
 * REVOKED, TENANT_SUSPENDED -> 403; NOT_FOUND -> 404; BUSY,
 * TOKEN_UNAVAILABLE, JOURNAL_UNAVAILABLE, SHUTTING_DOWN and an engine that
 * cannot be reached or does not answer in time -> 503; anything else
 * (INTERNAL, UNAUTHORIZED - this front end's own role -, unknown codes) -> 500.
 * *show_message: 1 if the engine's message may go to the HTTP client (it
 * names the policy rule that refused), 0 for a generic text.
 */
unsigned int est_engine_http_status(const struct tca_client_error *err, int *show_message);

#endif
