/*
 * rpc-schema.h - the one table of RPC operations: name, role, argument
 * schema, result schema and a one-line summary.
 *
 * Shared by the engine (rpc-ops.c dispatches through it and checks every
 * request against the argument schema before a handler runs), libtca-client
 * (tca_client_call checks every result against the result schema) and the
 * CLIs (op names, `ca-admin ops`, which prints the table; docs/rpc.md's
 * operation index is that output, and a test keeps the two identical).
 *
 * Like p11-kit's rpc-message call table: adding an operation means one row
 * here and one handler in rpc-ops.c; tca_rpc_ops_selfcheck() refuses a row
 * without a handler and a handler without a row.
 *
 * Everything here is static const data; nothing is allocated.
 */
#ifndef TCA_RPC_SCHEMA_H
#define TCA_RPC_SCHEMA_H

#include <stddef.h>

#include "wire.h"

enum tca_role {
	TCA_ROLE_NONE = 0,
	TCA_ROLE_FRONTEND = 1,
	TCA_ROLE_ADMIN = 2,
};

/* "none", "frontend", "admin" */
const char *tca_role_name(enum tca_role role);

/* Operation names (the wire's "op"). */
#define TCA_OP_ISSUE		"issue"
#define TCA_OP_REENROLL		"reenroll"
#define TCA_OP_CACERTS		"cacerts"
#define TCA_OP_STATUS		"status"
#define TCA_OP_CA_CREATE	"ca.create"
#define TCA_OP_CA_SHOW		"ca.show"
#define TCA_OP_CA_LIST		"ca.list"
#define TCA_OP_CA_DELETE	"ca.delete"
#define TCA_OP_CA_REISSUE	"ca.reissue"
#define TCA_OP_RELOAD		"reload"
#define TCA_OP_CERT_REVOKE	"cert.revoke"
#define TCA_OP_CERT_REVOKE_DEVICE "cert.revoke_device"
#define TCA_OP_CERT_LIST	"cert.list"
#define TCA_OP_CERT_SHOW	"cert.show"
#define TCA_OP_CRL		"crl"
#define TCA_OP_CRL_SIGN		"crl.sign"
#define TCA_OP_OCSP		"ocsp"
#define TCA_OP_POLICY_SET	"policy.set"
#define TCA_OP_POLICY_SHOW	"policy.show"
#define TCA_OP_CA_SUSPEND	"ca.suspend"
#define TCA_OP_CA_RESUME	"ca.resume"
#define TCA_OP_CSRATTRS		"csrattrs"
#define TCA_OP_DEVICE_REGISTER	"device.register"
#define TCA_OP_DEVICE_UNREGISTER "device.unregister"
#define TCA_OP_DEVICE_SHOW	"device.show"
#define TCA_OP_DEVICE_LIST	"device.list"

struct tca_op_desc {
	const char *name;		/* TCA_OP_* */
	enum tca_role role;		/* the least role that may call it */
	const struct tca_arg_spec *args;	/* strict: tca_args_check */
	size_t n_args;
	const struct tca_arg_spec *result;	/* lenient: tca_result_check */
	size_t n_result;
	const char *summary;		/* one line, for help and docs */
};

/* The op called name, or NULL. */
const struct tca_op_desc *tca_op_find(const char *name);

/* The i-th op in table order (NULL past the end). */
const struct tca_op_desc *tca_op_at(size_t i);

/* "text (<= 64)", "bytes", "uint", "array of map", ... for listings. */
const char *tca_arg_type_name(enum tca_arg_type t);

#endif
