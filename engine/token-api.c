/*
 * token-api.c - the token.h functions, dispatched through the token's
 * backend table (token-backend.h): in process (token.c) or in the
 * tca-tokend helper (token-remote.c).  Contracts: token.h.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tca-error.h"
#include "token.h"
#include "token-int.h"

int
tca_token_open(const struct tca_token_params *params, const char *pin, size_t pin_len,
    tca_token **tok_ptr, char *err, size_t errlen)
{
	tok_local *tok = NULL;
	int r;

	if (tok_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*tok_ptr = NULL;
	if ((r = tok_local_open(params, pin, pin_len, &tok, err, errlen)) != TCA_OK)
		return r;
	*tok_ptr = &tok->base;
	return TCA_OK;
}

int
tca_token_close(tca_token *tok)
{
	return tok != NULL ? tok->ops->close(tok) : 0;
}

int
tca_token_retry(tca_token *tok, const char *pin, size_t pin_len)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->retry(tok, pin, pin_len);
}

size_t
tca_token_key_count(tca_token *tok)
{
	return tok != NULL ? tok->ops->key_count(tok) : 0;
}

int
tca_token_find_key(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->find_key(tok, id, id_len, type_ptr);
}

unsigned int
tca_token_key_types(tca_token *tok, const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1])
{
	if (tok == NULL)
		return 0;
	return tok->ops->key_types(tok, sign_mech_ptr);
}

int
tca_token_check_key(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->check_key(tok, id, id_len, type_ptr);
}

int
tca_token_generate_key(tca_token *tok, enum tca_key_type type,
    const unsigned char *id, size_t id_len, const char *label, EVP_PKEY **pub_ptr)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->generate_key(tok, type, id, id_len, label, pub_ptr);
}

int
tca_token_sign(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
    unsigned char *sig, size_t *sig_len)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->sign(tok, id, id_len, alg, msg, msg_len, sig, sig_len);
}

int
tca_token_destroy_key(tca_token *tok, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->destroy_key(tok, id, id_len, destroyed_ptr);
}

int
tca_token_count_objects(tca_token *tok, const unsigned char *id, size_t id_len,
    unsigned long *count_ptr)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->count_objects(tok, id, id_len, count_ptr);
}

int
tca_token_key_attrs(tca_token *tok, const unsigned char *id, size_t id_len,
    struct tca_key_attrs *attrs)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->key_attrs(tok, id, id_len, attrs);
}

int
tca_token_foreach_key(tca_token *tok, tca_token_key_cb cb, void *ctx)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->foreach_key(tok, cb, ctx);
}

int
tca_token_get_status(tca_token *tok, struct tca_token_status *st)
{
	if (tok == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok->ops->get_status(tok, st);
}

const char *
tca_token_isolation(tca_token *tok)
{
	return tok != NULL ? tok->ops->name : "none";
}
