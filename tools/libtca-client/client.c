/*
 * client.c - libtca-client: one Unix-socket connection to the engine,
 * synchronous calls, strict parsing of what comes back (docs/rpc.md).
 *
 * Only the tca_client_* functions are exported; wire.c and tca-error.c are
 * linked in as internal code.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tca-client.h"
#include "tca-error.h"
#include "rpc-schema.h"
#include "wire.h"

/* Responses are not bound by the engine's request cap (rpc.max_frame): a
 * page of ca.list is larger than 64 KiB.  This only bounds what a broken or
 * hostile peer can make us allocate. */
#define CLIENT_MAX_RESPONSE (16 * 1024 * 1024)
#define CLIENT_DEFAULT_TIMEOUT_MS 30000
/* after the engine closed on us, how long to look for the error it sent */
#define CLIENT_LATE_ERROR_MS 1000
#define CLIENT_CERTS_MAX 64

struct tca_client {
	int fd;
	int timeout_ms;
	uint64_t last_id;
	int broken;		/* a transport error happened: no further calls */
};

static void
set_err(struct tca_client_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct tca_client_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
	err->err = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static void
clear_err(struct tca_client_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

const char *
tca_client_strerror(int err)
{
	return tca_strerror(err);
}

int
tca_client_connect(const char *socket_path, int timeout_ms,
    tca_client **c_ptr, struct tca_client_error *err)
{
	struct sockaddr_un sun;
	struct timeval tv;
	tca_client *c = NULL;
	size_t plen;
	int r = TCA_ERR_INTERNAL;

	clear_err(err);
	if (c_ptr == NULL) {
		set_err(err, TCA_ERR_INVALID_ARG, "no place for the connection");
		return TCA_ERR_INVALID_ARG;
	}
	*c_ptr = NULL;
	if (socket_path == NULL)
		socket_path = TCA_CLIENT_DEFAULT_SOCKET;
	memset(&sun, 0, sizeof(sun));
	plen = strlen(socket_path);
	if (plen == 0 || plen >= sizeof(sun.sun_path)) {
		set_err(err, TCA_ERR_INVALID_ARG, "socket path must be 1..%zu bytes",
		    sizeof(sun.sun_path) - 1);
		return TCA_ERR_INVALID_ARG;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, plen);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		return TCA_ERR_NOMEM;
	}
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		set_err(err, TCA_ERR_SYSTEM, "socket: %s", strerror(errno));
		r = TCA_ERR_SYSTEM;
		goto out;
	}
	/* Linux bounds a Unix-socket connect() by the send timeout: this is what
	 * keeps a client from hanging on an engine whose backlog is full.  Later
	 * I/O is non-blocking (wire.c), so the option has no other effect. */
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		set_err(err, TCA_ERR_SYSTEM, "setsockopt: %s", strerror(errno));
		r = TCA_ERR_SYSTEM;
		goto out;
	}
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS) {
			set_err(err, TCA_ERR_TIMEOUT, "connect to %s: timed out", socket_path);
			r = TCA_ERR_TIMEOUT;
		} else {
			set_err(err, TCA_ERR_SYSTEM, "connect to %s: %s", socket_path,
			    strerror(errno));
			r = TCA_ERR_SYSTEM;
		}
		goto out;
	}
	*c_ptr = c;
	c = NULL;
	r = TCA_CLIENT_OK;
 out:
	tca_client_close(c);
	return r;
}

void
tca_client_close(tca_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Reads and decodes one response frame within timeout_ms. */
static int
read_response(tca_client *c, int timeout_ms, struct tca_response *resp,
    struct tca_client_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r = TCA_ERR_INTERNAL;

	r = tca_frame_read(c->fd, CLIENT_MAX_RESPONSE, timeout_ms, timeout_ms, NULL,
	    &buf, &len);
	switch (r) {
	case TCA_OK:
		break;
	case TCA_ERR_EOF:
	case TCA_ERR_TRUNCATED:
		set_err(err, TCA_ERR_EOF, "the engine closed the connection%s",
		    r == TCA_ERR_TRUNCATED ? " inside a response" : "");
		r = TCA_ERR_EOF;
		goto out;
	case TCA_ERR_TIMEOUT:
		set_err(err, r, "no answer from the engine within %d ms", timeout_ms);
		goto out;
	case TCA_ERR_FRAME_TOO_LARGE:
		set_err(err, TCA_ERR_PROTOCOL, "response of %zu bytes exceeds %d bytes",
		    len, CLIENT_MAX_RESPONSE);
		r = TCA_ERR_PROTOCOL;
		goto out;
	case TCA_ERR_BAD_REQUEST:
		set_err(err, TCA_ERR_PROTOCOL, "empty response frame");
		r = TCA_ERR_PROTOCOL;
		goto out;
	case TCA_ERR_SYSTEM:
		set_err(err, r, "receive: %s", strerror(errno));
		goto out;
	default:
		set_err(err, r, "receive: %s", tca_strerror(r));
		goto out;
	}
	if ((r = tca_response_decode(buf, len, resp)) != TCA_OK) {
		set_err(err, TCA_ERR_PROTOCOL, "the engine's answer is not a valid response");
		r = TCA_ERR_PROTOCOL;
		goto out;
	}
	r = TCA_OK;
 out:
	if (buf != NULL)
		explicit_bzero(buf, len);	/* may hold a generated password */
	free(buf);
	return r;
}

/* The engine refused: its code and message go to the caller. */
static int
engine_error(tca_client *c, const struct tca_response *resp, struct tca_client_error *err)
{
	/* id 0: a refusal not tied to our request (framing, UNAUTHORIZED, BUSY);
	 * the engine closes the connection after those */
	if (resp->id == 0)
		c->broken = 1;
	if (err != NULL) {
		memset(err, 0, sizeof(*err));
		err->err = resp->err;
		snprintf(err->code, sizeof(err->code), "%s", resp->code);
		snprintf(err->message, sizeof(err->message), "%s", resp->message);
	}
	return resp->err;
}

int
tca_client_call(tca_client *c, const char *op, const cbor_item_t *args,
    cbor_item_t **result_ptr, struct tca_client_error *err)
{
	const struct tca_op_desc *desc;
	struct tca_response resp;
	unsigned char *buf = NULL;
	char why[192];
	size_t len = 0;
	uint64_t id;
	int saved, r = TCA_ERR_INTERNAL;

	memset(&resp, 0, sizeof(resp));
	clear_err(err);
	if (result_ptr != NULL)
		*result_ptr = NULL;
	if (c == NULL || op == NULL || result_ptr == NULL) {
		set_err(err, TCA_ERR_INVALID_ARG, "invalid argument");
		return TCA_ERR_INVALID_ARG;
	}
	if (c->broken) {
		set_err(err, TCA_ERR_SYSTEM, "connection unusable after an earlier error; reconnect");
		return TCA_ERR_SYSTEM;
	}
	/* 0 is reserved for errors the engine cannot attribute to a request */
	id = ++c->last_id;
	if ((r = tca_request_encode(TCA_PROTO_VERSION_MAX, id, op, args, &buf, &len)) != TCA_OK) {
		set_err(err, r, "cannot encode %s request: %s", op, tca_strerror(r));
		goto out;
	}
	if ((r = tca_frame_write(c->fd, buf, len, c->timeout_ms)) != TCA_OK) {
		saved = errno;
		c->broken = 1;
		/* an engine that refused the connection (UNAUTHORIZED, BUSY) has
		 * sent its reason and closed: show that rather than EPIPE */
		if (r == TCA_ERR_SYSTEM && (saved == EPIPE || saved == ECONNRESET) &&
		    read_response(c, CLIENT_LATE_ERROR_MS, &resp, NULL) == TCA_OK &&
		    resp.id == 0 && resp.err != TCA_OK) {
			r = engine_error(c, &resp, err);
			goto out;
		}
		if (r == TCA_ERR_TIMEOUT)
			set_err(err, r, "send: timed out after %d ms", c->timeout_ms);
		else
			set_err(err, r, "send: %s", r == TCA_ERR_SYSTEM ? strerror(saved) :
			    tca_strerror(r));
		goto out;
	}
	if ((r = read_response(c, c->timeout_ms, &resp, err)) != TCA_OK) {
		c->broken = 1;
		goto out;
	}
	if (resp.id != id && !(resp.id == 0 && resp.err != TCA_OK)) {
		c->broken = 1;
		set_err(err, TCA_ERR_PROTOCOL, "response id %llu does not match request id %llu",
		    (unsigned long long)resp.id, (unsigned long long)id);
		r = TCA_ERR_PROTOCOL;
		goto out;
	}
	if (resp.err != TCA_OK) {
		r = engine_error(c, &resp, err);
		goto out;
	}
	/* the result against the op's schema (rpc-schema.c): a field this
	 * library knows is there and of its type; unknown fields are allowed */
	if ((desc = tca_op_find(op)) != NULL &&
	    tca_result_check(resp.result, desc->result, desc->n_result, why,
	    sizeof(why)) != TCA_OK) {
		set_err(err, TCA_ERR_PROTOCOL, "the engine's %s result does not match "
		    "its schema: %s", op, why);
		r = TCA_ERR_PROTOCOL;
		goto out;
	}
	*result_ptr = cbor_incref(resp.result);
	r = TCA_CLIENT_OK;
 out:
	tca_response_clear(&resp);
	/* requests and answers may carry one-time passwords (issue,
	 * device.register): no copy is left in freed memory */
	if (buf != NULL)
		explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* ------------------------------------------------------------ typed calls */

static int
bad_result(struct tca_client_error *err, const char *op, const char *what)
{
	set_err(err, TCA_ERR_PROTOCOL, "the engine's %s result has no valid %s", op, what);
	return TCA_ERR_PROTOCOL;
}

static int
is_text(const cbor_item_t *it)
{
	return it != NULL && cbor_isa_string(it) && cbor_string_is_definite(it);
}

static int
is_integer(const cbor_item_t *it)
{
	return it != NULL && (cbor_isa_uint(it) || cbor_isa_negint(it));
}

/* Wipes the text value of key in map (a password in a request) in place. */
static void
wipe_text(cbor_item_t *map, const char *key)
{
	cbor_item_t *v = map != NULL ? tca_map_get(map, key) : NULL;

	if (v != NULL && cbor_isa_string(v) && cbor_string_is_definite(v) &&
	    cbor_string_handle(v) != NULL)
		explicit_bzero(cbor_string_handle(v), cbor_string_length(v));
}

static int
issue_common(tca_client *c, const char *op, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days, const char *otp,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err)
{
	cbor_item_t *args = NULL, *res = NULL;
	const unsigned char *der = NULL;
	unsigned char *copy = NULL;
	size_t n, der_len = 0;
	int r = TCA_ERR_INTERNAL;

	clear_err(err);
	if (cert_ptr != NULL)
		*cert_ptr = NULL;
	if (cert_len_ptr != NULL)
		*cert_len_ptr = 0;
	if (c == NULL || tenant == NULL || device_id == NULL || csr == NULL || csr_len == 0 ||
	    (current != NULL && current_len == 0) || cert_ptr == NULL || cert_len_ptr == NULL) {
		set_err(err, TCA_ERR_INVALID_ARG, "invalid argument");
		return TCA_ERR_INVALID_ARG;
	}
	if (otp != NULL && otp[0] == '\0')
		otp = NULL;
	n = 3 + (current != NULL) + (days != 0) + (otp != NULL);
	if ((args = cbor_new_definite_map(n)) == NULL ||
	    tca_map_add_text(args, "tenant", tenant) != TCA_OK ||
	    tca_map_add_text(args, "device_id", device_id) != TCA_OK ||
	    tca_map_add_bytes(args, "csr", csr, csr_len) != TCA_OK ||
	    (current != NULL &&
	    tca_map_add_bytes(args, "current", current, current_len) != TCA_OK) ||
	    (days != 0 && tca_map_add_uint(args, "days", days) != TCA_OK) ||
	    (otp != NULL && tca_map_add_text(args, "otp", otp) != TCA_OK)) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_client_call(c, op, args, &res, err)) != TCA_CLIENT_OK)
		goto out;
	/* all five fields, typed as docs/rpc.md says; extra keys are ignored */
	if (tca_map_get_bytes(res, "certificate", &der, &der_len) != TCA_OK || der_len == 0) {
		r = bad_result(err, op, "certificate");
		goto out;
	}
	if (!is_text(tca_map_get(res, "serial"))) {
		r = bad_result(err, op, "serial");
		goto out;
	}
	if (!is_text(tca_map_get(res, "fingerprint"))) {
		r = bad_result(err, op, "fingerprint");
		goto out;
	}
	if (!is_integer(tca_map_get(res, "not_before")) ||
	    !is_integer(tca_map_get(res, "not_after"))) {
		r = bad_result(err, op, "validity");
		goto out;
	}
	if ((copy = malloc(der_len)) == NULL) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	memcpy(copy, der, der_len);
	*cert_ptr = copy;
	*cert_len_ptr = der_len;
	copy = NULL;
	r = TCA_CLIENT_OK;
 out:
	free(copy);
	if (args != NULL) {
		wipe_text(args, "otp");
		cbor_decref(&args);
	}
	if (res != NULL)
		cbor_decref(&res);
	return r;
}

int
tca_client_issue(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, unsigned int days,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err)
{
	return issue_common(c, TCA_OP_ISSUE, tenant, device_id, csr, csr_len, NULL, 0, days,
	    NULL, cert_ptr, cert_len_ptr, err);
}

int
tca_client_issue_otp(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len, unsigned int days, const char *otp,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err)
{
	return issue_common(c, TCA_OP_ISSUE, tenant, device_id, csr, csr_len, NULL, 0, days,
	    otp, cert_ptr, cert_len_ptr, err);
}

int
tca_client_reenroll(tca_client *c, const char *tenant, const char *device_id,
    const unsigned char *csr, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days,
    unsigned char **cert_ptr, size_t *cert_len_ptr, struct tca_client_error *err)
{
	if (current == NULL) {
		clear_err(err);
		set_err(err, TCA_ERR_INVALID_ARG, "reenroll needs the current certificate");
		return TCA_ERR_INVALID_ARG;
	}
	return issue_common(c, TCA_OP_REENROLL, tenant, device_id, csr, csr_len, current,
	    current_len, days, NULL, cert_ptr, cert_len_ptr, err);
}

int
tca_client_cacerts(tca_client *c, const char *tenant,
    unsigned char ***certs_ptr, size_t **lens_ptr, size_t *n_ptr,
    struct tca_client_error *err)
{
	cbor_item_t *args = NULL, *res = NULL, *arr, *b;
	unsigned char **certs = NULL;
	size_t *lens = NULL, i, n = 0;
	int r = TCA_ERR_INTERNAL;

	clear_err(err);
	if (certs_ptr != NULL)
		*certs_ptr = NULL;
	if (lens_ptr != NULL)
		*lens_ptr = NULL;
	if (n_ptr != NULL)
		*n_ptr = 0;
	if (c == NULL || tenant == NULL || certs_ptr == NULL || lens_ptr == NULL || n_ptr == NULL) {
		set_err(err, TCA_ERR_INVALID_ARG, "invalid argument");
		return TCA_ERR_INVALID_ARG;
	}
	if ((args = cbor_new_definite_map(1)) == NULL ||
	    tca_map_add_text(args, "tenant", tenant) != TCA_OK) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_client_call(c, TCA_OP_CACERTS, args, &res, err)) != TCA_CLIENT_OK)
		goto out;
	arr = tca_map_get(res, "certificates");
	if (arr == NULL || !cbor_isa_array(arr) || !cbor_array_is_definite(arr) ||
	    (n = cbor_array_size(arr)) == 0 || n > CLIENT_CERTS_MAX) {
		r = bad_result(err, TCA_OP_CACERTS, "certificates");
		goto out;
	}
	if ((certs = calloc(n, sizeof(*certs))) == NULL ||
	    (lens = calloc(n, sizeof(*lens))) == NULL) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		b = cbor_array_handle(arr)[i];
		if (!cbor_isa_bytestring(b) || !cbor_bytestring_is_definite(b) ||
		    cbor_bytestring_length(b) == 0) {
			r = bad_result(err, TCA_OP_CACERTS, "certificates");
			goto out;
		}
		if ((certs[i] = malloc(cbor_bytestring_length(b))) == NULL) {
			set_err(err, TCA_ERR_NOMEM, "out of memory");
			r = TCA_ERR_NOMEM;
			goto out;
		}
		memcpy(certs[i], cbor_bytestring_handle(b), cbor_bytestring_length(b));
		lens[i] = cbor_bytestring_length(b);
	}
	*certs_ptr = certs;
	*lens_ptr = lens;
	*n_ptr = n;
	certs = NULL;
	lens = NULL;
	r = TCA_CLIENT_OK;
 out:
	tca_client_free_certs(certs, lens, n);
	if (args != NULL)
		cbor_decref(&args);
	if (res != NULL)
		cbor_decref(&res);
	return r;
}

void
tca_client_free_certs(unsigned char **certs, size_t *lens, size_t n)
{
	size_t i;

	if (certs != NULL)
		for (i = 0; i < n; i++)
			free(certs[i]);
	free(certs);
	free(lens);
}

/* The bytes under key of res, copied (malloc). */
static int
take_bytes(const cbor_item_t *res, const char *op, const char *key,
    unsigned char **out_ptr, size_t *len_ptr, struct tca_client_error *err)
{
	const unsigned char *p;
	size_t len;

	if (tca_map_get_bytes(res, key, &p, &len) != TCA_OK || len == 0)
		return bad_result(err, op, key);
	if ((*out_ptr = malloc(len)) == NULL) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		return TCA_ERR_NOMEM;
	}
	memcpy(*out_ptr, p, len);
	*len_ptr = len;
	return TCA_CLIENT_OK;
}

/* op with {tenant} whose result holds bytes under key, copied. */
static int
tenant_bytes(tca_client *c, const char *op, const char *tenant, const char *key,
    unsigned char **out_ptr, size_t *len_ptr, struct tca_client_error *err)
{
	cbor_item_t *args = NULL, *res = NULL;
	int r;

	clear_err(err);
	if (out_ptr == NULL || len_ptr == NULL || tenant == NULL) {
		set_err(err, TCA_ERR_INVALID_ARG, "invalid argument");
		return TCA_ERR_INVALID_ARG;
	}
	*out_ptr = NULL;
	*len_ptr = 0;
	if ((args = cbor_new_definite_map(1)) == NULL ||
	    tca_map_add_text(args, "tenant", tenant) != TCA_OK) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_client_call(c, op, args, &res, err)) != TCA_CLIENT_OK)
		goto out;
	r = take_bytes(res, op, key, out_ptr, len_ptr, err);
 out:
	if (args != NULL)
		cbor_decref(&args);
	if (res != NULL)
		cbor_decref(&res);
	return r;
}

int
tca_client_csrattrs(tca_client *c, const char *tenant, unsigned char **der_ptr,
    size_t *der_len_ptr, struct tca_client_error *err)
{
	return tenant_bytes(c, TCA_OP_CSRATTRS, tenant, "csrattrs", der_ptr, der_len_ptr, err);
}

int
tca_client_crl(tca_client *c, const char *tenant, unsigned char **crl_ptr,
    size_t *crl_len_ptr, struct tca_client_error *err)
{
	return tenant_bytes(c, TCA_OP_CRL, tenant, "crl", crl_ptr, crl_len_ptr, err);
}

int
tca_client_ocsp(tca_client *c, const char *tenant, const unsigned char *req,
    size_t req_len, unsigned char **resp_ptr, size_t *resp_len_ptr, char *status,
    size_t statuslen, struct tca_client_error *err)
{
	cbor_item_t *args = NULL, *res = NULL;
	int r;

	clear_err(err);
	if (resp_ptr == NULL || resp_len_ptr == NULL || tenant == NULL || req == NULL ||
	    req_len == 0) {
		set_err(err, TCA_ERR_INVALID_ARG, "invalid argument");
		return TCA_ERR_INVALID_ARG;
	}
	*resp_ptr = NULL;
	*resp_len_ptr = 0;
	if (status != NULL && statuslen > 0)
		status[0] = '\0';
	if ((args = cbor_new_definite_map(2)) == NULL ||
	    tca_map_add_text(args, "tenant", tenant) != TCA_OK ||
	    tca_map_add_bytes(args, "request", req, req_len) != TCA_OK) {
		set_err(err, TCA_ERR_NOMEM, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_client_call(c, TCA_OP_OCSP, args, &res, err)) != TCA_CLIENT_OK)
		goto out;
	if ((r = take_bytes(res, TCA_OP_OCSP, "response", resp_ptr, resp_len_ptr,
	    err)) != TCA_CLIENT_OK)
		goto out;
	if (status != NULL && statuslen > 0)
		(void)tca_map_get_text(res, "status", status, statuslen);
 out:
	if (args != NULL)
		cbor_decref(&args);
	if (res != NULL)
		cbor_decref(&res);
	return r;
}
