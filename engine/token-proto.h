/*
 * token-proto.h - the protocol between the engine and its token helper,
 * tca-tokend (docs/architecture.md, "Privilege separation").
 *
 * Framing is the RPC's (wire.h: 4-byte length, one CBOR map), over
 * socketpairs the engine made; one request in flight per connection.
 *
 *   request:  { "op": text, "args": map }      engine -> helper
 *   response: { "r": int, "why": text, "res": map }
 *             r is TCA_OK or a TCA_ERR_* code; "res" (the op's result map)
 *             only with TCA_OK; "why" optional, a one-line reason.
 *
 * The first frame on connection 0 comes from the helper, unasked: the
 * result of opening the token, { "r": int, "why": text } (op TOKP_READY).
 *
 * Each op is one function of token.h and carries exactly its arguments and
 * results; nothing else crosses.  Both sides check every frame against the
 * op's schema (tca_args_check: strict, every length bounded) before using
 * it, and the reader of a frame bounds its length before allocating
 * (TOKP_MAX_REQUEST, TOKP_MAX_RESPONSE).
 */
#ifndef TCA_TOKEN_PROTO_H
#define TCA_TOKEN_PROTO_H

#include <stddef.h>

#include <cbor.h>

#include "token.h"
#include "wire.h"

enum tokp_op {
	TOKP_READY = 0,		/* helper -> engine, once */
	TOKP_RETRY,
	TOKP_KEY_COUNT,
	TOKP_FIND_KEY,
	TOKP_KEY_TYPES,
	TOKP_CHECK_KEY,
	TOKP_GENERATE_KEY,
	TOKP_SIGN,
	TOKP_DESTROY_KEY,
	TOKP_COUNT_OBJECTS,
	TOKP_KEY_ATTRS,
	TOKP_LIST_KEYS,
	TOKP_STATUS,
	TOKP_COUNT
};

/* The helper's descriptors: connection i is fd TOKP_FD_BASE + i. */
#define TOKP_FD_BASE	3
#define TOKP_MAX_CONNS	257	/* TOKEN_MAX_POOL + the status connection */

#define TOKP_MAX_ID	128		/* TOKEN_MAX_ID */
#define TOKP_MAX_LABEL	255		/* TOKEN_MAX_LABEL */
#define TOKP_MAX_SIG	1024		/* RSA-8192 is 1024 bytes */
#define TOKP_MAX_PUB	4096		/* SubjectPublicKeyInfo, DER */
#define TOKP_MAX_WHY	512
/* a request is at most one message to sign and its small fields */
#define TOKP_MAX_REQUEST	(TCA_TOKEN_MAX_MSG + 4096)
/* a response is at most the key list: ~400 bytes per key */
#define TOKP_MAX_RESPONSE	(64u * 1024 * 1024)
#define TOKP_MAX_KEYS	(TOKP_MAX_RESPONSE / 512)
/* CBOR items in a request (the pre-check refuses more before decoding) */
#define TOKP_MAX_REQUEST_ITEMS	64

struct tokp_op_desc {
	const char *name;
	const struct tca_arg_spec *args;	/* schema of "args" */
	size_t n_args;
	const struct tca_arg_spec *res;		/* schema of "res" */
	size_t n_res;
};
extern const struct tokp_op_desc tokp_ops[TOKP_COUNT];

/* The op named name, or -1. */
int tokp_find(const char *name);

/*
 * Checks a whole request map against the schema of its op: TCA_OK and *op
 * and *args_ptr (borrowed from req) set, or TCA_ERR_BAD_REQUEST with why.
 */
int tokp_request_check(const cbor_item_t *req, enum tokp_op *op,
    const cbor_item_t **args_ptr, char *why, size_t whylen);

/*
 * Checks a whole response map for op: "r" present, within the TCA_ERR_*
 * range; with TCA_OK a "res" that fits the op's result schema.  TCA_OK
 * with *r_ptr, *res_ptr (borrowed, NULL unless *r_ptr is TCA_OK) and
 * why (may be "") set, or TCA_ERR_PROTOCOL with why.
 */
int tokp_response_check(enum tokp_op op, const cbor_item_t *resp, int *r_ptr,
    const cbor_item_t **res_ptr, char *why, size_t whylen);

/* Builds {"op", "args"} (args borrowed, NULL = empty) and serialises it. */
int tokp_request_encode(enum tokp_op op, const cbor_item_t *args,
    unsigned char **buf_ptr, size_t *len_ptr);
/* Builds {"r", "why"?, "res"?} (res borrowed; only sent with TCA_OK). */
int tokp_response_encode(int r, const char *why, const cbor_item_t *res,
    unsigned char **buf_ptr, size_t *len_ptr);

#endif
