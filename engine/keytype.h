/*
 * keytype.h - every fact about a CA key type, in one table.
 *
 * One row per key type: its name, how the token makes it (key type,
 * generation mechanism, CKA_EC_PARAMS), how the token signs with it (the raw
 * mechanism over a digest or DigestInfo, or the hash-on-token mechanism), and
 * what the certificate says about it (signature algorithm, digest, OpenSSL key
 * type and group).  The token layer, certificates, the issuer cache and the CSR
 * policy read this table; an unknown type is an error everywhere (NULL from
 * the lookups), never a silent default.
 *
 * The PKCS#11 numbers are stored as unsigned long so this header does not pull
 * pkcs11.h into every file; keytype.c fills them from the CKK_/CKM_ constants.
 */
#ifndef TCA_KEYTYPE_H
#define TCA_KEYTYPE_H

#include <stddef.h>

enum tca_key_type {
	TCA_KEY_NONE = 0,
	TCA_KEY_EC_P256 = 1,	/* default */
	TCA_KEY_EC_P384 = 2,
	TCA_KEY_RSA_3072 = 3,
	TCA_KEY_ED25519 = 4,
};
#define TCA_KEY_TYPE_COUNT 4	/* rows in the table; types are 1..COUNT */

enum tca_sig_alg {
	TCA_SIG_NONE = 0,
	TCA_SIG_ECDSA_SHA256 = 1,	/* ecdsa-with-SHA256 */
	TCA_SIG_ECDSA_SHA384 = 2,	/* ecdsa-with-SHA384 */
	TCA_SIG_RSA_PKCS1_SHA256 = 3,	/* sha256WithRSAEncryption */
	TCA_SIG_ED25519 = 4,	/* id-Ed25519 */
};

/* How the token's raw output becomes the certificate's signatureValue. */
enum tca_sig_form {
	TCA_SIG_FORM_ECDSA_RS = 1,	/* r||s, field_len each: converted to DER */
	TCA_SIG_FORM_AS_IS = 2,		/* PKCS#1 v1.5 and EdDSA: used as returned */
};

struct tca_key_desc {
	enum tca_key_type type;
	const char *name;		/* "ec-p256" (configuration, RPC, store) */
	unsigned long ckk;		/* CKK_EC, CKK_RSA, CKK_EC_EDWARDS */
	unsigned long gen_mech;		/* CKM_EC_KEY_PAIR_GEN, ... */
	/* raw_mech signs what the engine prepared: the digest (ECDSA), a
	 * DigestInfo (RSA PKCS#1 v1.5) or the message itself (EdDSA).
	 * hash_mech signs the message and hashes on the token; 0 if none. */
	unsigned long raw_mech, hash_mech;
	const unsigned char *ec_params;	/* CKA_EC_PARAMS (DER OID); NULL for RSA */
	size_t ec_params_len;
	/* the same as a PrintableString curve name (PKCS#11 3.0, Edwards curves
	 * only): some tokens take or report only this form; NULL if none */
	const unsigned char *ec_params_name;
	size_t ec_params_name_len;
	const unsigned char *curve_oid;	/* the OID's content octets (SPKI parameters) */
	size_t curve_oid_len;
	unsigned int rsa_bits;		/* modulus size; 0 for EC types */
	const char *pkey_type;		/* OpenSSL key type: "EC", "RSA", "ED25519" */
	const char *group;		/* OpenSSL group name; NULL unless EC */
	const char *nist_name;		/* "P-256"; NULL unless a NIST curve */
	size_t field_len;		/* octets of a coordinate (EC), 32 for Ed25519 */
	size_t sig_len;			/* raw token signature length */
	enum tca_sig_form sig_form;
	const char *md;			/* digest of the TBS; NULL: signs the message */
	const unsigned char *digest_info;	/* DigestInfo prefix (raw RSA); NULL */
	size_t digest_info_len;
	enum tca_sig_alg alg;
	int sig_nid;			/* NID of the X.509 signature algorithm */
	int sig_params_null;		/* signatureAlgorithm parameters: NULL, else absent */
};

/* The row of type, or NULL for TCA_KEY_NONE and unknown values. */
const struct tca_key_desc *tca_key_desc(enum tca_key_type type);

/* The row whose signature algorithm is alg, or NULL. */
const struct tca_key_desc *tca_key_desc_by_alg(enum tca_sig_alg alg);

/* The row at index i (0..TCA_KEY_TYPE_COUNT-1), for listing; NULL past the end. */
const struct tca_key_desc *tca_key_desc_at(size_t i);

/* "ec-p256", "ec-p384", "rsa-3072", "ed25519"; "none" for anything else. */
const char *tca_key_type_name(enum tca_key_type type);

/* Parses the names above. TCA_OK or TCA_ERR_BAD_REQUEST. */
int tca_key_type_from_name(const char *name, enum tca_key_type *type_ptr);

/* The signature algorithm a CA key of this type signs certificates with. */
enum tca_sig_alg tca_key_type_sig_alg(enum tca_key_type type);

/* OpenSSL NID of the X.509 signature algorithm (NID_ecdsa_with_SHA256, ...);
 * NID_undef for an unknown algorithm. */
int tca_sig_alg_nid(enum tca_sig_alg alg);

/* Writes the names of the types whose bit (1 << type) is set in mask,
 * comma-separated ("ec-p256, rsa-3072"), or "none". */
void tca_key_types_format(unsigned int mask, char *out, size_t outsz);

#endif
