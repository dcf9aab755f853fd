/* tca-error.c - error code names and descriptions. */
#include "config.h"

#include <string.h>

#include "tca-error.h"

struct err_name {
	int err;
	const char *wire;
	const char *text;
};

static const struct err_name err_names[] = {
	{ TCA_OK, "OK", "success" },
	{ TCA_ERR_BAD_REQUEST, "BAD_REQUEST", "malformed request" },
	{ TCA_ERR_UNAUTHORIZED, "UNAUTHORIZED", "peer is not authorized for this operation" },
	{ TCA_ERR_NOT_FOUND, "NOT_FOUND", "not found" },
	{ TCA_ERR_ALREADY_EXISTS, "ALREADY_EXISTS", "already exists" },
	{ TCA_ERR_POLICY_VIOLATION, "POLICY_VIOLATION", "request violates issuance policy" },
	{ TCA_ERR_TOKEN_UNAVAILABLE, "TOKEN_UNAVAILABLE", "PKCS#11 token unavailable or failed" },
	{ TCA_ERR_JOURNAL_UNAVAILABLE, "JOURNAL_UNAVAILABLE", "state store / audit journal could not commit" },
	{ TCA_ERR_INTERNAL, "INTERNAL", "internal error" },
	{ TCA_ERR_UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION", "unsupported protocol version" },
	{ TCA_ERR_FRAME_TOO_LARGE, "FRAME_TOO_LARGE", "frame exceeds the size limit" },
	{ TCA_ERR_UNKNOWN_OP, "UNKNOWN_OP", "unknown operation" },
	{ TCA_ERR_BUSY, "BUSY", "too many connections, try again later" },
	{ TCA_ERR_SHUTTING_DOWN, "SHUTTING_DOWN", "engine is shutting down" },
	{ TCA_ERR_REVOKED, "REVOKED", "the certificate was revoked" },
	{ TCA_ERR_TENANT_SUSPENDED, "TENANT_SUSPENDED", "the tenant is suspended: it issues nothing" },
	{ TCA_ERR_CREDENTIAL_REFUSED, "CREDENTIAL_REFUSED", "the device's one-time password was "
	    "missing, wrong, used, expired or locked" },
	{ TCA_ERR_NOMEM, "INTERNAL", "out of memory" },
	{ TCA_ERR_SYSTEM, "INTERNAL", "system call failed" },
	{ TCA_ERR_CONFIG, "INTERNAL", "configuration error" },
	{ TCA_ERR_TIMEOUT, "BAD_REQUEST", "timed out" },
	{ TCA_ERR_EOF, "BAD_REQUEST", "connection closed" },
	{ TCA_ERR_TRUNCATED, "BAD_REQUEST", "truncated frame" },
	{ TCA_ERR_INVALID_ARG, "INTERNAL", "invalid argument" },
	{ TCA_ERR_CRYPTO, "INTERNAL", "cryptographic library failure" },
	{ TCA_ERR_PROTOCOL, "INTERNAL", "protocol error" },
	{ TCA_ERR_TOKEN_REFUSED, "INTERNAL", "the token refused the template or mechanism "
	    "(token configuration or hsm-profile)" },
	{ TCA_ERR_TOKEN_FULL, "INTERNAL", "the token has no room for another key" },
	{ TCA_ERR_STALE, "BUSY", "another engine changed the tenant's CA or policy meanwhile; "
	    "try again" },
};

static const struct err_name *
lookup(int err)
{
	size_t i;

	for (i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++)
		if (err_names[i].err == err)
			return &err_names[i];
	return NULL;
}

const char *
tca_strerror(int err)
{
	const struct err_name *e = lookup(err);

	return e != NULL ? e->text : "unknown error";
}

const char *
tca_err_wire_code(int err)
{
	const struct err_name *e = lookup(err);

	return e != NULL ? e->wire : "INTERNAL";
}

int
tca_err_from_wire_code(const char *name)
{
	size_t i;

	if (name == NULL)
		return TCA_ERR_INTERNAL;
	/* wire codes are the entries from TCA_OK down to TCA_ERR_WIRE_LAST */
	for (i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++) {
		if (err_names[i].err < TCA_ERR_WIRE_LAST)
			break;
		if (strcmp(err_names[i].wire, name) == 0)
			return err_names[i].err;
	}
	return TCA_ERR_INTERNAL;
}
