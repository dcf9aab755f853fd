/* token-proto.c - the engine <-> tca-tokend protocol (token-proto.h). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tca-error.h"
#include "token-proto.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define F(n, t, req, max)	{ n, TCA_ARG_##t, req, max, NULL, 0, NULL }
#define F_MAP(n, req, sub)	{ n, TCA_ARG_MAP, req, 0, sub, NELEM(sub), NULL }
#define F_ARRAY(n, req, max, elem) { n, TCA_ARG_ARRAY, req, max, elem, 1, NULL }
#define S(s) s, NELEM(s)
#define NONE NULL, 0

/* ---- arguments */

static const struct tca_arg_spec retry_args[] = {
	F("reread_pin", BOOL, 1, 0),
};
static const struct tca_arg_spec id_args[] = {
	F("id", BYTES, 1, TOKP_MAX_ID),
};
static const struct tca_arg_spec generate_args[] = {
	F("type", UINT, 1, 0),
	F("id", BYTES, 1, TOKP_MAX_ID),
	F("label", TEXT, 1, TOKP_MAX_LABEL),
};
static const struct tca_arg_spec sign_args[] = {
	F("id", BYTES, 1, TOKP_MAX_ID),
	F("alg", UINT, 1, 0),
	F("msg", BYTES, 1, TCA_TOKEN_MAX_MSG),
	F("cap", UINT, 1, 0),		/* the caller's signature buffer */
};

/* ---- results */

static const struct tca_arg_spec ready_res[] = {
	F("pid", UINT, 1, 0),
};
static const struct tca_arg_spec count_res[] = {
	F("count", UINT, 1, 0),
};
static const struct tca_arg_spec type_res[] = {
	F("type", UINT, 1, 0),
};
static const struct tca_arg_spec mech_elem[] = {
	F("mech", TEXT, 1, 64),
};
static const struct tca_arg_spec key_types_res[] = {
	F("mask", UINT, 1, 0),
	F_ARRAY("mechs", 1, TCA_KEY_TYPE_COUNT + 1, mech_elem),
};
static const struct tca_arg_spec generate_res[] = {
	F("pub", BYTES, 1, TOKP_MAX_PUB),
};
static const struct tca_arg_spec sign_res[] = {
	F("sig", BYTES, 1, TOKP_MAX_SIG),
};
static const struct tca_arg_spec attrs_res[] = {
	F("token", BOOL, 1, 0),
	F("private", BOOL, 1, 0),
	F("sensitive", BOOL, 1, 0),
	F("extractable", BOOL, 1, 0),
	F("sign", BOOL, 1, 0),
	F("always_sensitive", BOOL, 1, 0),
	F("never_extractable", BOOL, 1, 0),
	F("value_readable", BOOL, 1, 0),
};
static const struct tca_arg_spec key_fields[] = {
	F("id", BYTES, 1, TOKP_MAX_ID),
	F("label", TEXT, 1, TOKP_MAX_LABEL),
	F("type", UINT, 1, 0),
};
static const struct tca_arg_spec key_elem[] = {
	F_MAP("key", 1, key_fields),
};
static const struct tca_arg_spec list_res[] = {
	F_ARRAY("keys", 1, TOKP_MAX_KEYS, key_elem),
};
static const struct tca_arg_spec status_res[] = {
	F("label", TEXT, 1, 32),
	F("manufacturer", TEXT, 1, 32),
	F("model", TEXT, 1, 16),
	F("serial", TEXT, 1, 16),
	F("slot", UINT, 1, 0),
	F("pool_size", UINT, 1, 0),
	F("sessions_busy", UINT, 1, 0),
	F("keys", UINT, 1, 0),
	F("signatures", UINT, 1, 0),
	F("sign_errors", UINT, 1, 0),
	F("health", TEXT, 1, 15),
	F("recoveries", UINT, 1, 0),
	F("relogins", UINT, 1, 0),
	F("refreshes", UINT, 1, 0),
	F("sessions_replaced", UINT, 1, 0),
	F("problem", TEXT, 1, 199),
	F("problem_time", INT, 1, 0),
	F("last_error", TEXT, 1, 95),
	F("last_error_time", INT, 1, 0),
	F("call_failures", UINT, 1, 0),
};

const struct tokp_op_desc tokp_ops[TOKP_COUNT] = {
	[TOKP_READY] = { "ready", NONE, S(ready_res) },
	[TOKP_RETRY] = { "retry", S(retry_args), NONE },
	[TOKP_KEY_COUNT] = { "key_count", NONE, S(count_res) },
	[TOKP_FIND_KEY] = { "find_key", S(id_args), S(type_res) },
	[TOKP_KEY_TYPES] = { "key_types", NONE, S(key_types_res) },
	[TOKP_CHECK_KEY] = { "check_key", S(id_args), S(type_res) },
	[TOKP_GENERATE_KEY] = { "generate_key", S(generate_args), S(generate_res) },
	[TOKP_SIGN] = { "sign", S(sign_args), S(sign_res) },
	[TOKP_DESTROY_KEY] = { "destroy_key", S(id_args), S(count_res) },
	[TOKP_COUNT_OBJECTS] = { "count_objects", S(id_args), S(count_res) },
	[TOKP_KEY_ATTRS] = { "key_attrs", S(id_args), S(attrs_res) },
	[TOKP_LIST_KEYS] = { "list_keys", NONE, S(list_res) },
	[TOKP_STATUS] = { "status", NONE, S(status_res) },
};

int
tokp_find(const char *name)
{
	int i;

	for (i = 0; i < TOKP_COUNT; i++)
		if (strcmp(tokp_ops[i].name, name) == 0)
			return i;
	return -1;
}

int
tokp_request_check(const cbor_item_t *req, enum tokp_op *op,
    const cbor_item_t **args_ptr, char *why, size_t whylen)
{
	static const struct tca_arg_spec top0[] = {
		F("op", TEXT, 1, 32),
		{ "args", TCA_ARG_MAP, 1, 0, NULL, 0, NULL },
	};
	struct tca_arg_spec top[2];
	char name[33];
	int i, r;

	if (!cbor_isa_map(req) ||
	    tca_map_get_text(req, "op", name, sizeof(name)) != TCA_OK ||
	    (i = tokp_find(name)) < 0 || i == TOKP_READY) {
		snprintf(why, whylen, "no known \"op\"");
		return TCA_ERR_BAD_REQUEST;
	}
	memcpy(top, top0, sizeof(top));
	top[1].sub = tokp_ops[i].args;
	top[1].n_sub = tokp_ops[i].n_args;
	if ((r = tca_args_check(req, top, NELEM(top), why, whylen)) != TCA_OK)
		return r;
	*op = (enum tokp_op)i;
	*args_ptr = tca_map_get(req, "args");
	return TCA_OK;
}

/* A CBOR integer within int range, or -1 with *v unchanged. */
static int
get_int(const cbor_item_t *item, int *v)
{
	uint64_t u;

	if (item == NULL)
		return -1;
	if (cbor_isa_uint(item)) {
		if ((u = cbor_get_int(item)) != 0)
			return -1;		/* TCA_OK is the only non-negative code */
		*v = 0;
		return 0;
	}
	if (cbor_isa_negint(item)) {
		/* CBOR negint n means -1 - n */
		if ((u = cbor_get_int(item)) > 1000)
			return -1;
		*v = -1 - (int)u;
		return 0;
	}
	return -1;
}

int
tokp_response_check(enum tokp_op op, const cbor_item_t *resp, int *r_ptr,
    const cbor_item_t **res_ptr, char *why, size_t whylen)
{
	static const struct tca_arg_spec top0[] = {
		F("r", INT, 1, 0),
		F("why", TEXT, 0, TOKP_MAX_WHY),
		{ "res", TCA_ARG_MAP, 0, 0, NULL, 0, NULL },
	};
	struct tca_arg_spec top[3];
	const cbor_item_t *res;
	int r, rr;

	*res_ptr = NULL;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	memcpy(top, top0, sizeof(top));
	top[2].sub = tokp_ops[op].res;
	top[2].n_sub = tokp_ops[op].n_res;
	if ((rr = tca_args_check(resp, top, NELEM(top), why, whylen)) != TCA_OK)
		return TCA_ERR_PROTOCOL;
	if (get_int(tca_map_get(resp, "r"), &r) != 0) {
		snprintf(why, whylen, "\"r\" is not a result code");
		return TCA_ERR_PROTOCOL;
	}
	res = tca_map_get(resp, "res");
	if ((r == TCA_OK) != (res != NULL)) {
		snprintf(why, whylen, "\"res\" must come with r = 0 and only then");
		return TCA_ERR_PROTOCOL;
	}
	if (tca_map_get(resp, "why") != NULL)
		(void)tca_map_get_text(resp, "why", why, whylen);
	*r_ptr = r;
	*res_ptr = res;
	return TCA_OK;
}

int
tokp_request_encode(enum tokp_op op, const cbor_item_t *args,
    unsigned char **buf_ptr, size_t *len_ptr)
{
	cbor_item_t *m = NULL, *a = NULL;
	int r = TCA_ERR_NOMEM;

	if ((m = cbor_new_definite_map(2)) == NULL ||
	    tca_map_add_text(m, "op", tokp_ops[op].name) != TCA_OK)
		goto out;
	if (args != NULL)
		a = cbor_incref((cbor_item_t *)(uintptr_t)args);
	else if ((a = cbor_new_definite_map(0)) == NULL)
		goto out;
	if (tca_map_add_item(m, "args", a) != TCA_OK)
		goto out;
	a = NULL;
	r = tca_cbor_serialize(m, buf_ptr, len_ptr);
 out:
	if (a != NULL)
		cbor_decref(&a);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

int
tokp_response_encode(int r, const char *why, const cbor_item_t *res,
    unsigned char **buf_ptr, size_t *len_ptr)
{
	cbor_item_t *m = NULL, *a = NULL;
	int rr = TCA_ERR_NOMEM;

	if ((m = cbor_new_definite_map(3)) == NULL ||
	    tca_map_add_int(m, "r", r) != TCA_OK)
		goto out;
	if (why != NULL && why[0] != '\0') {
		char w[TOKP_MAX_WHY + 1];
		size_t n = strlen(why);

		/* cut at a character boundary: the reader wants valid UTF-8 */
		if (n > TOKP_MAX_WHY) {
			n = TOKP_MAX_WHY;
			while (n > 0 && ((unsigned char)why[n] & 0xc0) == 0x80)
				n--;
		}
		memcpy(w, why, n);
		w[n] = '\0';
		if (tca_map_add_text(m, "why", w) != TCA_OK)
			goto out;
	}
	if (r == TCA_OK) {
		if (res != NULL)
			a = cbor_incref((cbor_item_t *)(uintptr_t)res);
		else if ((a = cbor_new_definite_map(0)) == NULL)
			goto out;
		if (tca_map_add_item(m, "res", a) != TCA_OK)
			goto out;
		a = NULL;
	}
	rr = tca_cbor_serialize(m, buf_ptr, len_ptr);
 out:
	if (a != NULL)
		cbor_decref(&a);
	if (m != NULL)
		cbor_decref(&m);
	return rr;
}
