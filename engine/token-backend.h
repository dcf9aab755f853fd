/*
 * token-backend.h - the seam between token.h and its implementations
 * (internal to the token layer).
 *
 * A tca_token is a backend's object whose first member is struct tca_token,
 * naming the backend's table.  token-api.c implements every tca_token_*
 * function of token.h by a call through that table, so the rest of the
 * engine does not know where the module runs:
 *
 *   tok_local_ops   token.c: the module loaded into this process
 *   tok_remote_ops  token-remote.c: the module in the tca-tokend helper
 *                   process, reached over socketpairs (docs/architecture.md,
 *                   "Privilege separation")
 *
 * Each entry has the contract of the token.h function of the same name; the
 * token argument is never NULL (token-api.c checks).
 */
#ifndef TCA_TOKEN_BACKEND_H
#define TCA_TOKEN_BACKEND_H

#include <stddef.h>

#include "token.h"

struct tca_token_ops {
	const char *name;	/* "none" (in process) or "process" (helper) */
	int (*close)(tca_token *tok);	/* calls left inside the module */
	int (*retry)(tca_token *tok, const char *pin, size_t pin_len);
	size_t (*key_count)(tca_token *tok);
	int (*find_key)(tca_token *tok, const unsigned char *id, size_t id_len,
	    enum tca_key_type *type_ptr);
	unsigned int (*key_types)(tca_token *tok,
	    const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1]);
	int (*check_key)(tca_token *tok, const unsigned char *id, size_t id_len,
	    enum tca_key_type *type_ptr);
	int (*generate_key)(tca_token *tok, enum tca_key_type type,
	    const unsigned char *id, size_t id_len, const char *label, EVP_PKEY **pub_ptr);
	int (*sign)(tca_token *tok, const unsigned char *id, size_t id_len,
	    enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
	    unsigned char *sig, size_t *sig_len);
	int (*destroy_key)(tca_token *tok, const unsigned char *id, size_t id_len,
	    unsigned long *destroyed_ptr);
	int (*count_objects)(tca_token *tok, const unsigned char *id, size_t id_len,
	    unsigned long *count_ptr);
	int (*key_attrs)(tca_token *tok, const unsigned char *id, size_t id_len,
	    struct tca_key_attrs *attrs);
	int (*foreach_key)(tca_token *tok, tca_token_key_cb cb, void *ctx);
	int (*get_status)(tca_token *tok, struct tca_token_status *st);
};

struct tca_token {
	const struct tca_token_ops *ops;
};

#endif
