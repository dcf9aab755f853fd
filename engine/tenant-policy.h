/*
 * tenant-policy.h - each tenant's own issuance policy: which device requests
 * its CA signs, for how long, and what subjectAltName the certificates carry.
 *
 * The global configuration (csr.h tca_csr_check, device.validity_days) is
 * the default and the ceiling: a tenant policy can only narrow it.  Every
 * field's zero value is "the global default", so a zeroed structure (or
 * tca_tenant_policy_defaults) is a tenant without a policy of its own.
 *
 * This module is pure: no store, no clock, no token.  The store keeps the
 * text form (tca_tenant_policy_format), the journal records it, the engine
 * runs tca_tenant_policy_check after tca_csr_check, and EST front ends serve
 * tca_tenant_policy_csrattrs.
 *
 * Text form: one "key=value" line per key that differs from its default,
 * each '\n'-terminated, sorted by key (so equal policies have equal text and
 * "" is the default policy).  Keys:
 *   device_id_pattern  a glob (tca_glob_valid below), 1..128 bytes
 *   key_types          comma list of ec-p256, ec-p384, rsa, ed25519 (written
 *                      in that order, each at most once)
 *   max_days           1..36600
 *   o, ou              allowed values, '|'-separated, sorted, no duplicates;
 *                      each 1..64 bytes of UTF-8 without control characters,
 *                      '|', or leading/trailing spaces; at most 16
 *   o_required, ou_required   true | false
 *   registration       required | none (default: device.registration)
 *   rsa_min_bits       2048..8192
 *   san                uri | dns | none
 *   suspended          true | false
 * Values are taken verbatim (no trimming, no quoting).  A value equal to the
 * default ("key=", "max_days=0", "o_required=false", "san=uri", ...) is
 * accepted and means the default; the canonical form omits it.
 */
#ifndef TCA_TENANT_POLICY_H
#define TCA_TENANT_POLICY_H

#include <stddef.h>

#include "csr.h"

/* Device key types (bits of tca_tenant_policy.key_types).  Not the CA key
 * types of keytype.h: a device RSA key is any size the policy allows. */
#define TCA_DEVKEY_EC_P256	0x01u
#define TCA_DEVKEY_EC_P384	0x02u
#define TCA_DEVKEY_RSA		0x04u
#define TCA_DEVKEY_ED25519	0x08u
#define TCA_DEVKEY_ALL		0x0fu

#define TCA_POLICY_MAX_VALUES	16	/* allowed O (or OU) values */
#define TCA_POLICY_VALUE_MAX	64	/* bytes of one value (ub-organization-name) */
#define TCA_GLOB_MAX		128	/* bytes of device_id_pattern */
#define TCA_POLICY_MAX_DAYS	36600U	/* sanity bound on max_days */
#define TCA_POLICY_RSA_FLOOR	2048U	/* the global minimum; rsa_min_bits >= it */
#define TCA_POLICY_RSA_CEIL	8192U	/* the global maximum RSA key size */

/* Buffer sizes that always suffice for the text and JSON forms. */
#define TCA_TENANT_POLICY_TEXT_MAX	4096
#define TCA_TENANT_POLICY_JSON_MAX	8192

/* The form of the subjectAltName of device certificates (certs.h). */
enum tca_san_form {
	TCA_SAN_URI = 0,	/* default: urn:tca:device:TENANT:DEVICE-ID */
	TCA_SAN_DNS = 1,	/* dNSName = device id (must be an LDH host name) */
	TCA_SAN_NONE = 2,	/* no subjectAltName */
};

/* Whether a device's first certificate needs its registered one-time
 * password (issue 14). */
enum tca_registration {
	TCA_REG_GLOBAL = 0,	/* default: the configuration's device.registration */
	TCA_REG_REQUIRED = 1,
	TCA_REG_NONE = 2,	/* the front end authenticates devices itself */
};

/* Allowed values of one subject attribute (O or OU). */
struct tca_name_rule {
	unsigned int n;		/* values in allowed[]; 0: any value */
	char allowed[TCA_POLICY_MAX_VALUES][TCA_POLICY_VALUE_MAX + 1];	/* sorted */
	int required;		/* the CSR subject must carry at least one */
};

struct tca_tenant_policy {
	unsigned int key_types;	/* TCA_DEVKEY_* bits; 0: every type the global policy allows */
	unsigned int rsa_min_bits;	/* 0: the global minimum (2048) */
	unsigned int max_days;	/* 0: the global device.validity_days; never above it */
	struct tca_name_rule o, ou;
	char device_id_pattern[TCA_GLOB_MAX + 1];	/* "": any device id */
	enum tca_san_form san;
	enum tca_registration registration;
	int suspended;		/* 1: the tenant issues nothing */
};

/* The default policy (all zero: every rule inherits the global one). */
void tca_tenant_policy_defaults(struct tca_tenant_policy *tp);

/* 1 if tp is the default policy (its text form is ""). */
int tca_tenant_policy_is_default(const struct tca_tenant_policy *tp);

/*
 * The canonical text form into out (NUL-terminated; "" for the default
 * policy).  TCA_OK, or TCA_ERR_INVALID_ARG if tp holds a value set/parse
 * would refuse or out is too small (TCA_TENANT_POLICY_TEXT_MAX always
 * suffices).
 */
int tca_tenant_policy_format(const struct tca_tenant_policy *tp, char *out, size_t outsz);

/*
 * Parses a text form into *tp (the defaults plus every line).  Lines may come
 * in any order; the last may lack its '\n'.  Refuses, with
 * TCA_ERR_BAD_REQUEST and a reason that starts with the key ("max_days: ..."
 * or "line 3: ..." when there is no key), empty lines, lines without '=',
 * unknown keys, a key given twice, and every value tca_tenant_policy_set
 * refuses.  On failure *tp is the default policy.
 */
int tca_tenant_policy_parse(const char *text, struct tca_tenant_policy *tp,
    char *why, size_t whylen);

/*
 * Applies one "key=value" assignment to *tp (what `ca-admin policy set
 * TENANT key=value ...` sends, one at a time); "key=" resets that key to its
 * default.  TCA_OK, or TCA_ERR_BAD_REQUEST with a reason that starts with
 * the key name; *tp is unchanged on failure.
 */
int tca_tenant_policy_set(struct tca_tenant_policy *tp, const char *assignment,
    char *why, size_t whylen);

/*
 * The policy as one JSON object (for `policy show --json`), every key
 * present:
 *   {"device_id_pattern":null|"...","key_types":null|["ec-p256",...],
 *    "max_days":null|N,"o":null|["..."],"o_required":false|true,
 *    "ou":null|["..."],"ou_required":false|true,"rsa_min_bits":null|N,
 *    "san":"uri"|"dns"|"none","suspended":false|true}
 * null: not set, the global policy applies (any value, for o/ou and
 * device_id_pattern).  No trailing newline.  TCA_OK or TCA_ERR_INVALID_ARG
 * as for tca_tenant_policy_format (TCA_TENANT_POLICY_JSON_MAX suffices).
 */
int tca_tenant_policy_json(const struct tca_tenant_policy *tp, char *out, size_t outsz);

/* The global policy the tenant policies narrow. */
struct tca_policy_ceiling {
	unsigned int max_days;	/* device.validity_days (> 0) */
	unsigned int rsa_min_bits;	/* 0: 2048 */
};

/*
 * Checks a device request against the tenant policy.  Runs AFTER
 * tca_csr_check (the global policy) accepted csr for device_id.  Rules, in
 * this order, the first that refuses reported:
 *   suspended          -> TCA_ERR_TENANT_SUSPENDED
 *   key_types          the CSR key's type (ec-p256, ec-p384, rsa, ed25519)
 *   rsa_min_bits       RSA modulus >= max(tenant, ceiling) minimum
 *   o                  every O of the subject is an allowed value
 *   o_required         the subject carries an O
 *   ou, ou_required    likewise for OU
 *   device_id_pattern  device_id matches the glob
 *   san                san=dns: device_id is an LDH host name
 *                      (tca_dns_name_valid), as issuance will require
 * each -> TCA_ERR_POLICY_VIOLATION.  Values compare byte for byte (UTF-8,
 * case-sensitive).
 *
 * rule (may be NULL) receives the refusing rule's name, which is exactly its
 * text-form key ("" on success); why a one-line reason starting with that
 * name, device-chosen bytes sanitised (text.h).
 *
 * *days_ptr in: the requested validity in days (0: the default); out, on
 * success only: the validity to issue, min(requested or ceiling, tenant
 * max_days, ceiling).  TCA_ERR_INVALID_ARG for NULL arguments or a ceiling
 * of 0 days.
 */
int tca_tenant_policy_check(const struct tca_tenant_policy *tp,
    const struct tca_policy_ceiling *ceil, const tca_csr *csr, const char *device_id,
    unsigned int *days_ptr, char *rule, size_t rulelen, char *why, size_t whylen);

/*
 * The RFC 7030 section 4.5.2 CSR attributes (CsrAttrs ::= SEQUENCE OF
 * AttrOrOID) derived from the policy, as DER.  Only bare OIDs and
 * Attributes of the forms RFC 7030 and RFC 9908's examples use, in this
 * order:
 *   key types (only if tp restricts them; none if every type is allowed):
 *     ec-p256 or ec-p384 alone among the EC types:
 *         Attribute { id-ecPublicKey, SET { secp256r1 | secp384r1 } }
 *     both EC curves:  OID id-ecPublicKey
 *     rsa:  Attribute { rsaEncryption, SET { INTEGER rsa_min_bits } } if
 *           rsa_min_bits is set, else OID rsaEncryption
 *     ed25519:  OID id-Ed25519
 *   signature algorithm, only when exactly one key type is allowed:
 *     OID ecdsa-with-SHA256 (ec-p256), ecdsa-with-SHA384 (ec-p384),
 *     sha256WithRSAEncryption (rsa); none for ed25519 (id-Ed25519 is both)
 *   subject attributes:
 *     OID commonName, always (the global policy requires CN = device id)
 *     O (OU) required with exactly one allowed value:
 *         Attribute { id-at-organizationName, SET { UTF8String value } }
 *     O (OU) required otherwise:  OID id-at-organizationName
 * The default policy gives SEQUENCE { OID commonName }.
 * *der_ptr: caller OPENSSL_free()s; *len_ptr its length.
 */
int tca_tenant_policy_csrattrs(const struct tca_tenant_policy *tp,
    unsigned char **der_ptr, size_t *len_ptr);

/*
 * device_id_pattern globs.  Whole-string match, case-sensitive, character by
 * character (UTF-8; a byte that is not UTF-8 in the string is one character
 * that only '?', '*' and negated classes match):
 *   ?        one character
 *   *        any run of characters, also none
 *   [...]    one character of the class: characters and ranges "a-z"; '!'
 *            first negates; ']' first (after '!') is a member; '-' first or
 *            last is a member; '\' escapes the next character
 *   \c       the character c itself
 *   other    itself
 * A pattern is 0..128 bytes of UTF-8 without control characters.
 * Matching simulates the set of pattern positions (no backtracking):
 * O(len(pattern) * len(s)) time, O(len(pattern)) memory.
 */

/* TCA_OK, or TCA_ERR_BAD_REQUEST with a reason naming the 1-based byte
 * position of the fault ("unterminated '[' at position 5"). */
int tca_glob_valid(const char *pattern, char *why, size_t whylen);

/* 1 if s matches pattern, 0 if not, TCA_ERR_INVALID_ARG if either is NULL
 * or the pattern is not valid.  "" matches only "". */
int tca_glob_match(const char *pattern, const char *s);

/* tca_glob_match, also counting in *steps (if not NULL) the (pattern
 * position, character) pairs examined: at most (tokens + 1) * (characters +
 * 1), tokens <= 128.  For tests. */
int tca_glob_match_counted(const char *pattern, const char *s, unsigned long *steps);

/* 1 if s is an LDH host name usable as a dNSName (RFC 1123, RFC 5280
 * 4.2.1.6): labels of 1..63 letters, digits and '-', not starting or ending
 * with '-', total <= 253 bytes, no trailing dot, last label not all digits
 * (it would read as an IPv4 address).  Either case. */
int tca_dns_name_valid(const char *s);

#endif
