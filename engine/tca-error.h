/*
 * tca-error.h - error codes shared by every part of the engine and the client library.
 *
 * All functions in this project return int: TCA_OK (0) on success or one of the
 * negative TCA_ERR_* values below.  The first block maps one-to-one onto the
 * error codes of the RPC protocol (docs/rpc.md); the rest are internal and are
 * mapped onto a wire code by tca_err_wire_code() when they reach a peer.
 * CK_RV values never leave the token layer; errno values are mapped to
 * TCA_ERR_SYSTEM (the caller logs strerror(errno) where it has it).
 */
#ifndef TCA_ERROR_H
#define TCA_ERROR_H

enum {
	TCA_OK = 0,
	/* wire codes */
	TCA_ERR_BAD_REQUEST = -1,
	TCA_ERR_UNAUTHORIZED = -2,
	TCA_ERR_NOT_FOUND = -3,
	TCA_ERR_ALREADY_EXISTS = -4,
	TCA_ERR_POLICY_VIOLATION = -5,
	TCA_ERR_TOKEN_UNAVAILABLE = -6,
	TCA_ERR_JOURNAL_UNAVAILABLE = -7,
	TCA_ERR_INTERNAL = -8,
	TCA_ERR_UNSUPPORTED_VERSION = -9,
	TCA_ERR_FRAME_TOO_LARGE = -10,
	TCA_ERR_UNKNOWN_OP = -11,
	TCA_ERR_BUSY = -12,
	TCA_ERR_SHUTTING_DOWN = -13,
	TCA_ERR_REVOKED = -14,		/* the certificate presented was revoked */
	TCA_ERR_TENANT_SUSPENDED = -15,	/* the tenant's policy suspends issuance */
	TCA_ERR_CREDENTIAL_REFUSED = -16,	/* the device's registration credential */
	TCA_ERR_WIRE_LAST = TCA_ERR_CREDENTIAL_REFUSED,	/* the last wire code */
	/* internal only */
	TCA_ERR_NOMEM = -100,
	TCA_ERR_SYSTEM = -101,	/* see errno */
	TCA_ERR_CONFIG = -102,
	TCA_ERR_TIMEOUT = -103,
	TCA_ERR_EOF = -104,	/* peer closed cleanly between frames */
	TCA_ERR_TRUNCATED = -105,	/* peer closed or timed out inside a frame */
	TCA_ERR_INVALID_ARG = -106,	/* programming error: NULL or out-of-range argument */
	TCA_ERR_CRYPTO = -107,	/* OpenSSL failure */
	TCA_ERR_PROTOCOL = -108,	/* peer answered something that is not our protocol */
	TCA_ERR_TOKEN_REFUSED = -109,	/* the token refused a template or mechanism: its
					 * configuration or profile, not an outage */
	TCA_ERR_TOKEN_FULL = -110,	/* the token has no room for another object */
	TCA_ERR_STALE = -111,	/* the store refused a change computed from a cached
				 * CA or policy that another engine changed since */
};

/* Human-readable description; never NULL. */
const char *tca_strerror(int err);

/* The RPC error code name for err ("BAD_REQUEST", ...).  Internal codes map to
 * the closest wire code (NOMEM/SYSTEM/CRYPTO -> "INTERNAL", TIMEOUT/TRUNCATED ->
 * "BAD_REQUEST").  Never NULL. */
const char *tca_err_wire_code(int err);

/* Inverse of tca_err_wire_code for the wire codes; unknown names give
 * TCA_ERR_INTERNAL. */
int tca_err_from_wire_code(const char *name);

#endif
