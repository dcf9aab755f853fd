/* est-engine.c - bounded engine connections, enrollment calls and the
 * engine-answer-to-HTTP mapping of tca-estd (see est-engine.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "est-engine.h"

int
est_engine_init(struct est_engine *e, const char *socket, unsigned int timeout_ms,
    unsigned int max, unsigned int wait_ms)
{
	pthread_condattr_t ca;

	memset(e, 0, sizeof(*e));
	snprintf(e->socket, sizeof(e->socket), "%s", socket);
	e->timeout_ms = (int)timeout_ms;
	e->max = max > 0 ? max : 1;
	e->wait_ms = wait_ms;
	if (pthread_mutex_init(&e->lock, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&e->cond, &ca) != 0) {
		pthread_mutex_destroy(&e->lock);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	return 0;
}

void
est_engine_destroy(struct est_engine *e)
{
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
}

static int
slot_take(struct est_engine *e)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += e->wait_ms / 1000;
	until.tv_nsec += (long)(e->wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&e->lock);
	while (e->in_use >= e->max && rc == 0)
		rc = pthread_cond_timedwait(&e->cond, &e->lock, &until);
	if (e->in_use < e->max) {
		e->in_use++;
		rc = 0;
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static void
slot_give(struct est_engine *e)
{
	pthread_mutex_lock(&e->lock);
	if (e->in_use > 0)
		e->in_use--;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

int
est_engine_open(struct est_engine *e, tca_client **c_ptr, struct tca_client_error *err)
{
	int r;

	*c_ptr = NULL;
	if (slot_take(e) != 0) {
		memset(err, 0, sizeof(*err));
		err->err = TCA_ERR_BUSY;
		snprintf(err->message, sizeof(err->message),
		    "all %u engine connections are in use", e->max);
		return TCA_ERR_BUSY;
	}
	if ((r = tca_client_connect(e->socket, e->timeout_ms, c_ptr, err)) != TCA_CLIENT_OK) {
		slot_give(e);
		return r;
	}
	return TCA_CLIENT_OK;
}

void
est_engine_close(struct est_engine *e, tca_client *c)
{
	if (c == NULL)
		return;
	tca_client_close(c);
	slot_give(e);
}

static int
add_pair(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k;
	bool ok;

	if (value == NULL)
		return -1;
	if ((k = cbor_build_string(key)) == NULL) {
		cbor_decref(&value);
		return -1;
	}
	ok = cbor_map_add(map, (struct cbor_pair){ .key = k, .value = value });
	cbor_decref(&k);
	cbor_decref(&value);
	return ok ? 0 : -1;
}

static int
local_error(struct tca_client_error *err, int code, const char *msg)
{
	memset(err, 0, sizeof(*err));
	err->err = code;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return code;
}

int
est_engine_enroll(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, const char *otp,
    const unsigned char *current, size_t current_len,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err)
{
	cbor_item_t *args = NULL, *res = NULL, *otp_item = NULL, *it;
	size_t n = 3 + (current != NULL) + (otp != NULL);
	unsigned char *copy;
	int r;

	*cert_ptr = NULL;
	*cert_len_ptr = 0;
	if ((args = cbor_new_definite_map(n)) == NULL ||
	    add_pair(args, "tenant", cbor_build_string(tenant)) != 0 ||
	    add_pair(args, "device_id", cbor_build_string(device_id)) != 0 ||
	    add_pair(args, "csr", cbor_build_bytestring(csr, csr_len)) != 0 ||
	    (current != NULL &&
	    add_pair(args, "current", cbor_build_bytestring(current, current_len)) != 0)) {
		r = local_error(err, TCA_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (otp != NULL) {
		/* keep a reference so the copy can be wiped after the call */
		if ((otp_item = cbor_build_string(otp)) == NULL ||
		    add_pair(args, "otp", cbor_incref(otp_item)) != 0) {
			r = local_error(err, TCA_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	r = tca_client_call(c, current != NULL ? "reenroll" : "issue", args, &res, err);
	if (r != TCA_CLIENT_OK)
		goto out;
	/* the library checked the result against the op's schema */
	it = NULL;
	{
		struct cbor_pair *pairs = cbor_map_handle(res);
		size_t i, m = cbor_map_size(res);

		for (i = 0; i < m; i++)
			if (cbor_isa_string(pairs[i].key) && cbor_string_is_definite(pairs[i].key) &&
			    cbor_string_length(pairs[i].key) == strlen("certificate") &&
			    memcmp(cbor_string_handle(pairs[i].key), "certificate",
			    strlen("certificate")) == 0)
				it = pairs[i].value;
	}
	if (it == NULL || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it) ||
	    cbor_bytestring_length(it) == 0) {
		r = local_error(err, TCA_ERR_PROTOCOL, "the engine's answer has no certificate");
		goto out;
	}
	if ((copy = malloc(cbor_bytestring_length(it))) == NULL) {
		r = local_error(err, TCA_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(copy, cbor_bytestring_handle(it), cbor_bytestring_length(it));
	*cert_ptr = copy;
	*cert_len_ptr = cbor_bytestring_length(it);
	r = TCA_CLIENT_OK;
 out:
	if (otp_item != NULL) {
		OPENSSL_cleanse(cbor_string_handle(otp_item), cbor_string_length(otp_item));
		cbor_decref(&otp_item);
	}
	if (args != NULL)
		cbor_decref(&args);
	if (res != NULL)
		cbor_decref(&res);
	return r;
}

const char *
est_engine_code(const struct tca_client_error *err)
{
	if (err->code[0] != '\0')
		return err->code;
	switch (err->err) {
	case TCA_ERR_BUSY:
		return "NO_SLOT";
	case TCA_ERR_SYSTEM:
		return "UNREACHABLE";
	case TCA_ERR_TIMEOUT:
		return "TIMEOUT";
	case TCA_ERR_EOF:
	case TCA_ERR_TRUNCATED:
		return "EOF";
	case TCA_ERR_PROTOCOL:
		return "PROTOCOL";
	case TCA_ERR_NOMEM:
		return "NOMEM";
	default:
		return "LOCAL";
	}
}

unsigned int
est_engine_http_status(const struct tca_client_error *err, int *show_message)
{
	*show_message = 0;
	switch (err->err) {
	case TCA_ERR_BAD_REQUEST:
	case TCA_ERR_POLICY_VIOLATION:
		/* the message names what is wrong with the request or the rule
		 * that refused it; never a secret (docs/rpc.md 4.2) */
		*show_message = err->code[0] != '\0';
		return 400;
	case TCA_ERR_CREDENTIAL_REFUSED:
		/* generic text: whether a device id is registered, used or
		 * locked is not the caller's business */
		return 401;
	case TCA_ERR_REVOKED:
	case TCA_ERR_TENANT_SUSPENDED:
		*show_message = err->code[0] != '\0';
		return 403;
	case TCA_ERR_NOT_FOUND:
		return 404;
	case TCA_ERR_BUSY:
	case TCA_ERR_TOKEN_UNAVAILABLE:
	case TCA_ERR_JOURNAL_UNAVAILABLE:
	case TCA_ERR_SHUTTING_DOWN:
	case TCA_ERR_SYSTEM:	/* connect or I/O on the socket failed */
	case TCA_ERR_TIMEOUT:
	case TCA_ERR_EOF:
	case TCA_ERR_TRUNCATED:
		return 503;
	default:
		/* INTERNAL, UNAUTHORIZED (the engine refuses this front end:
		 * its configuration, not the device), PROTOCOL, codes this
		 * build does not know (the library maps them to INTERNAL) */
		return 500;
	}
}
