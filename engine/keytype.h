/*
 * keytype.h - CA key types and the signature algorithm each one uses.
 */
#ifndef TCA_KEYTYPE_H
#define TCA_KEYTYPE_H

enum tca_key_type {
	TCA_KEY_NONE = 0,
	TCA_KEY_EC_P256 = 1,	/* default */
	TCA_KEY_EC_P384 = 2,
	TCA_KEY_RSA_3072 = 3,
	TCA_KEY_ED25519 = 4,
};

enum tca_sig_alg {
	TCA_SIG_NONE = 0,
	TCA_SIG_ECDSA_SHA256 = 1,	/* ecdsa-with-SHA256, CKM_ECDSA over SHA-256(tbs) */
	TCA_SIG_ECDSA_SHA384 = 2,	/* ecdsa-with-SHA384, CKM_ECDSA over SHA-384(tbs) */
	TCA_SIG_RSA_PKCS1_SHA256 = 3,	/* sha256WithRSAEncryption, CKM_RSA_PKCS over DigestInfo */
	TCA_SIG_ED25519 = 4,	/* id-Ed25519, CKM_EDDSA over tbs itself */
};

/* "ec-p256", "ec-p384", "rsa-3072", "ed25519"; "none" for anything else. */
const char *tca_key_type_name(enum tca_key_type type);

/* Parses the names above. TCA_OK or TCA_ERR_BAD_REQUEST. */
int tca_key_type_from_name(const char *name, enum tca_key_type *type_ptr);

/* The signature algorithm a CA key of this type signs certificates with. */
enum tca_sig_alg tca_key_type_sig_alg(enum tca_key_type type);

/* OpenSSL NID of the X.509 signature algorithm (NID_ecdsa_with_SHA256, ...). */
int tca_sig_alg_nid(enum tca_sig_alg alg);

#endif
