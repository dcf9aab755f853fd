/* keytype.c - CA key type names and signature algorithm mapping. */
#include "config.h"

#include <string.h>

#include <openssl/obj_mac.h>

#include "keytype.h"
#include "tca-error.h"

static const struct {
	enum tca_key_type type;
	const char *name;
	enum tca_sig_alg alg;
} key_types[] = {
	{ TCA_KEY_EC_P256, "ec-p256", TCA_SIG_ECDSA_SHA256 },
	{ TCA_KEY_EC_P384, "ec-p384", TCA_SIG_ECDSA_SHA384 },
	{ TCA_KEY_RSA_3072, "rsa-3072", TCA_SIG_RSA_PKCS1_SHA256 },
	{ TCA_KEY_ED25519, "ed25519", TCA_SIG_ED25519 },
};

#define N_KEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

const char *
tca_key_type_name(enum tca_key_type type)
{
	size_t i;

	for (i = 0; i < N_KEY_TYPES; i++)
		if (key_types[i].type == type)
			return key_types[i].name;
	return "none";
}

int
tca_key_type_from_name(const char *name, enum tca_key_type *type_ptr)
{
	size_t i;

	if (name == NULL || type_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < N_KEY_TYPES; i++) {
		if (strcmp(key_types[i].name, name) == 0) {
			*type_ptr = key_types[i].type;
			return TCA_OK;
		}
	}
	return TCA_ERR_BAD_REQUEST;
}

enum tca_sig_alg
tca_key_type_sig_alg(enum tca_key_type type)
{
	size_t i;

	for (i = 0; i < N_KEY_TYPES; i++)
		if (key_types[i].type == type)
			return key_types[i].alg;
	return TCA_SIG_NONE;
}

int
tca_sig_alg_nid(enum tca_sig_alg alg)
{
	switch (alg) {
	case TCA_SIG_ECDSA_SHA256:
		return NID_ecdsa_with_SHA256;
	case TCA_SIG_ECDSA_SHA384:
		return NID_ecdsa_with_SHA384;
	case TCA_SIG_RSA_PKCS1_SHA256:
		return NID_sha256WithRSAEncryption;
	case TCA_SIG_ED25519:
		return NID_ED25519;
	default:
		return NID_undef;
	}
}
