/* keytype.c - the key-type table (see keytype.h). */
#include "config.h"

#include <p11-kit/pkcs11.h>

#include <stdio.h>
#include <string.h>

#include <openssl/obj_mac.h>

#include "keytype.h"
#include "tca-error.h"

/* CKA_EC_PARAMS: ECParameters namedCurve, the DER OID (RFC 5480, RFC 8410) */
static const unsigned char params_p256[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};
static const unsigned char params_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char params_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const unsigned char name_edwards25519[] = {
	0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'
};
/* DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1) */
static const unsigned char digestinfo_sha256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

static const struct tca_key_desc key_descs[TCA_KEY_TYPE_COUNT] = {
	{
		.type = TCA_KEY_EC_P256, .name = "ec-p256",
		.ckk = CKK_EC, .gen_mech = CKM_EC_KEY_PAIR_GEN,
		.raw_mech = CKM_ECDSA, .hash_mech = CKM_ECDSA_SHA256,
		.ec_params = params_p256, .ec_params_len = sizeof(params_p256),
		.curve_oid = params_p256 + 2, .curve_oid_len = sizeof(params_p256) - 2,
		.pkey_type = "EC", .group = "prime256v1", .nist_name = "P-256",
		.field_len = 32, .sig_len = 64, .sig_form = TCA_SIG_FORM_ECDSA_RS,
		.md = "SHA256", .alg = TCA_SIG_ECDSA_SHA256,
		.sig_nid = NID_ecdsa_with_SHA256,
	},
	{
		.type = TCA_KEY_EC_P384, .name = "ec-p384",
		.ckk = CKK_EC, .gen_mech = CKM_EC_KEY_PAIR_GEN,
		.raw_mech = CKM_ECDSA, .hash_mech = CKM_ECDSA_SHA384,
		.ec_params = params_p384, .ec_params_len = sizeof(params_p384),
		.curve_oid = params_p384 + 2, .curve_oid_len = sizeof(params_p384) - 2,
		.pkey_type = "EC", .group = "secp384r1", .nist_name = "P-384",
		.field_len = 48, .sig_len = 96, .sig_form = TCA_SIG_FORM_ECDSA_RS,
		.md = "SHA384", .alg = TCA_SIG_ECDSA_SHA384,
		.sig_nid = NID_ecdsa_with_SHA384,
	},
	{
		.type = TCA_KEY_RSA_3072, .name = "rsa-3072",
		.ckk = CKK_RSA, .gen_mech = CKM_RSA_PKCS_KEY_PAIR_GEN,
		.raw_mech = CKM_RSA_PKCS, .hash_mech = CKM_SHA256_RSA_PKCS,
		.rsa_bits = 3072, .pkey_type = "RSA",
		.sig_len = 384, .sig_form = TCA_SIG_FORM_AS_IS,
		.md = "SHA256", .digest_info = digestinfo_sha256,
		.digest_info_len = sizeof(digestinfo_sha256),
		.alg = TCA_SIG_RSA_PKCS1_SHA256,
		.sig_nid = NID_sha256WithRSAEncryption, .sig_params_null = 1,
	},
	{
		.type = TCA_KEY_ED25519, .name = "ed25519",
		.ckk = CKK_EC_EDWARDS, .gen_mech = CKM_EC_EDWARDS_KEY_PAIR_GEN,
		.raw_mech = CKM_EDDSA, .hash_mech = 0,
		.ec_params = params_ed25519, .ec_params_len = sizeof(params_ed25519),
		.ec_params_name = name_edwards25519,
		.ec_params_name_len = sizeof(name_edwards25519),
		.curve_oid = params_ed25519 + 2, .curve_oid_len = sizeof(params_ed25519) - 2,
		.pkey_type = "ED25519", .field_len = 32, .sig_len = 64,
		.sig_form = TCA_SIG_FORM_AS_IS, .md = NULL, .alg = TCA_SIG_ED25519,
		.sig_nid = NID_ED25519,
	},
};

const struct tca_key_desc *
tca_key_desc(enum tca_key_type type)
{
	size_t i;

	for (i = 0; i < TCA_KEY_TYPE_COUNT; i++)
		if (key_descs[i].type == type)
			return &key_descs[i];
	return NULL;
}

const struct tca_key_desc *
tca_key_desc_by_alg(enum tca_sig_alg alg)
{
	size_t i;

	for (i = 0; i < TCA_KEY_TYPE_COUNT; i++)
		if (key_descs[i].alg == alg)
			return &key_descs[i];
	return NULL;
}

const struct tca_key_desc *
tca_key_desc_at(size_t i)
{
	return i < TCA_KEY_TYPE_COUNT ? &key_descs[i] : NULL;
}

const char *
tca_key_type_name(enum tca_key_type type)
{
	const struct tca_key_desc *d = tca_key_desc(type);

	return d != NULL ? d->name : "none";
}

int
tca_key_type_from_name(const char *name, enum tca_key_type *type_ptr)
{
	size_t i;

	if (name == NULL || type_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < TCA_KEY_TYPE_COUNT; i++) {
		if (strcmp(key_descs[i].name, name) == 0) {
			*type_ptr = key_descs[i].type;
			return TCA_OK;
		}
	}
	return TCA_ERR_BAD_REQUEST;
}

enum tca_sig_alg
tca_key_type_sig_alg(enum tca_key_type type)
{
	const struct tca_key_desc *d = tca_key_desc(type);

	return d != NULL ? d->alg : TCA_SIG_NONE;
}

int
tca_sig_alg_nid(enum tca_sig_alg alg)
{
	const struct tca_key_desc *d = tca_key_desc_by_alg(alg);

	return d != NULL ? d->sig_nid : NID_undef;
}

void
tca_key_types_format(unsigned int mask, char *out, size_t outsz)
{
	size_t i, o = 0;
	int n;

	if (outsz == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < TCA_KEY_TYPE_COUNT; i++) {
		if (!(mask & (1u << key_descs[i].type)))
			continue;
		n = snprintf(out + o, outsz - o, "%s%s", o > 0 ? ", " : "", key_descs[i].name);
		if (n < 0 || (size_t)n >= outsz - o)
			break;
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(out, outsz, "none");
}
