/*
 * check_policy.c - per-tenant issuance policies (engine/tenant-policy.h).
 *
 * TCases, one per behaviour:
 *   text-round-trip         format(parse(x)) == x for canonical x; other
 *                           spellings come out canonical
 *   text-refusals           unknown keys, duplicates, bad values, bad lines
 *                           refused, the reason naming the key
 *   set-reset               one key at a time; "key=" resets; a refused
 *                           assignment changes nothing
 *   json                    `policy show --json` object, escaping
 *   rules-refuse-and-name   each rule refuses what it must and names itself
 *                           (suspended -> TENANT_SUSPENDED), rule order
 *   rules-accept            what the rules allow passes
 *   validity-capped         max_days capped by the tenant and the ceiling
 *   glob-semantics          literals, ?, *, classes, escapes, UTF-8, errors
 *                           naming the position
 *   glob-linear             pathological patterns take (tokens+1)*(chars+1)
 *                           steps at most
 *   csrattrs                the RFC 7030 CsrAttrs DER parses (OpenSSL
 *                           generic ASN.1 and `openssl asn1parse`) and holds
 *                           the expected OIDs and attributes
 *   bad-structures          hand-filled structures that set/parse never
 *                           produce are refused by format/json/check
 *   registration            the `registration` key (issue 14): required |
 *                           none | reset to the configuration's setting
 *   otp-hash-verify         engine/otp.c: hash string form, round trip,
 *                           fresh salts, wrong passwords, malformed and
 *                           tampered hash strings verify as 0
 *   otp-params-range        scrypt parameters outside ln 10..20, r 1..32,
 *                           p 1..16 verify as 0; hashes of other accepted
 *                           parameters (plain scrypt, derived in the test)
 *                           verify
 *   otp-generate            generated passwords: length, alphabet (no
 *                           0/O/1/I/L), uniqueness, acceptable
 *   otp-password-rules      tca_otp_check_password bounds and characters
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "csr.h"
#include "otp.h"
#include "tca-error.h"
#include "tenant-policy.h"
#include "testutil.h"

/* ------------------------------------------------------------ keys, CSRs */

/* Generated once in main() before the runner forks, since RSA is slow. */
static EVP_PKEY *k_p256, *k_p384, *k_rsa2048, *k_rsa3072, *k_ed25519;

static EVP_PKEY *
gen(const char *type, const char *curve, size_t bits)
{
	EVP_PKEY *k;

	if (curve != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	else if (bits != 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	if (k == NULL) {
		fprintf(stderr, "key generation %s failed\n", type);
		exit(EXIT_FAILURE);
	}
	return k;
}

/*
 * The engine's parse of a CSR for key with the subject given as pairs
 * ("CN", "dev-1", "O", "Acme", ..., NULL), UTF8String values, signed; the
 * global policy (tca_csr_check) accepts it for device id = the CN.
 * Caller frees with tca_csr_free().
 */
static tca_csr *
csr_make(EVP_PKEY *key, ...)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	tca_csr *csr = NULL;
	unsigned char *der = NULL;
	const char *field, *val, *cn = NULL;
	char why[256] = "";
	va_list ap;
	int len, id = EVP_PKEY_get_base_id(key);

	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(name);
	va_start(ap, key);
	while ((field = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		if (strcmp(field, "CN") == 0)
			cn = val;
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
		    (const unsigned char *)val, -1, -1, 0), 1);
	}
	va_end(ap);
	ck_assert_int_eq(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	ck_assert_int_eq(X509_REQ_set_subject_name(req, name), 1);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	ck_assert_int_gt(X509_REQ_sign(req, key, id == EVP_PKEY_ED25519 ? NULL :
	    EVP_sha256()), 0);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	ck_assert_msg(tca_csr_parse(der, (size_t)len, &csr, why, sizeof(why)) == TCA_OK,
	    "tca_csr_parse: %s", why);
	ck_assert_ptr_nonnull(cn);
	ck_assert_msg(tca_csr_check(csr, cn, why, sizeof(why)) == TCA_OK,
	    "tca_csr_check: %s", why);
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return csr;
}

/* A policy from its text form (must parse). */
static void
policy_of(struct tca_tenant_policy *tp, const char *text)
{
	char why[256] = "";

	ck_assert_msg(tca_tenant_policy_parse(text, tp, why, sizeof(why)) == TCA_OK,
	    "parse \"%s\": %s", text, why);
}

static const struct tca_policy_ceiling ceil365 = { 365, 0 };

/* tca_tenant_policy_check with the 365-day ceiling; rule and why out. */
static int
check(const char *text, const tca_csr *csr, const char *dev, char *rule,
    char *why)
{
	struct tca_tenant_policy tp;
	unsigned int days = 0;

	policy_of(&tp, text);
	rule[0] = why[0] = '\0';
	return tca_tenant_policy_check(&tp, &ceil365, csr, dev, &days, rule, 64,
	    why, 256);
}

/* Refused by rule want_rule with err; the reason starts with the rule's
 * name and contains want_why. */
static void
refused(const char *text, const tca_csr *csr, const char *dev, int err,
    const char *want_rule, const char *want_why)
{
	char rule[64], why[256], prefix[80];
	int r = check(text, csr, dev, rule, why);

	ck_assert_msg(r == err, "\"%s\" for %s: %s (%s)", text, dev,
	    tca_strerror(r), why);
	ck_assert_str_eq(rule, want_rule);
	snprintf(prefix, sizeof(prefix), "%s: ", want_rule);
	ck_assert_msg(strncmp(why, prefix, strlen(prefix)) == 0,
	    "why \"%s\" does not start with \"%s\"", why, prefix);
	ck_assert_msg(strstr(why, want_why) != NULL, "why \"%s\" lacks \"%s\"",
	    why, want_why);
}

static void
accepted(const char *text, const tca_csr *csr, const char *dev)
{
	char rule[64], why[256];
	int r = check(text, csr, dev, rule, why);

	ck_assert_msg(r == TCA_OK, "\"%s\" for %s: %s, rule %s (%s)", text, dev,
	    tca_strerror(r), rule, why);
	ck_assert_str_eq(rule, "");
}

/* ------------------------------------------------------------ text form */

START_TEST(test_round_trip)
{
	static const char *const canonical[] = {
		"",
		"suspended=true\n",
		"key_types=ec-p256\n",
		"key_types=ec-p256,ec-p384,rsa,ed25519\n",
		"key_types=rsa,ed25519\nrsa_min_bits=3072\n",
		"max_days=90\n",
		"o=Acme\no_required=true\n",
		"o_required=true\n",
		"o=Acme|Beta Corp|Gamma \xc3\xa4\n",
		"ou=Devices|Sensors\nou_required=true\n",
		"device_id_pattern=dev-[0-9a-f]*\n",
		"san=dns\n",
		"san=none\n",
		"registration=none\n",
		"registration=required\n",
		"max_days=30\nregistration=none\nsan=dns\n",
		"device_id_pattern=[!-]\\*?x=y\nkey_types=ec-p384\nmax_days=36600\n"
		    "o=A=B|C\no_required=true\nou=X\nou_required=true\n"
		    "registration=required\nrsa_min_bits=8192\nsan=none\nsuspended=true\n",
	};
	static const struct {
		const char *in, *out;
	} other[] = {
		/* any order, values sorted, defaults dropped, last '\n' optional */
		{ "suspended=true\nmax_days=30", "max_days=30\nsuspended=true\n" },
		{ "o=Gamma|Acme|Beta\n", "o=Acme|Beta|Gamma\n" },
		{ "key_types=ed25519,rsa,ec-p256\n", "key_types=ec-p256,rsa,ed25519\n" },
		{ "san=uri\nsuspended=false\nmax_days=0\nrsa_min_bits=0\n"
		    "o_required=false\nou=\nkey_types=\ndevice_id_pattern=\n", "" },
		{ "san=\n", "" },
		{ "registration=\n", "" },
		{ "san=dns\nregistration=none\n", "registration=none\nsan=dns\n" },
	};
	struct tca_tenant_policy tp;
	char out[TCA_TENANT_POLICY_TEXT_MAX], why[256];
	size_t i;

	for (i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		policy_of(&tp, canonical[i]);
		ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
		ck_assert_str_eq(out, canonical[i]);
		ck_assert_int_eq(tca_tenant_policy_is_default(&tp), canonical[i][0] == '\0');
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		policy_of(&tp, other[i].in);
		ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
		ck_assert_str_eq(out, other[i].out);
	}

	/* the largest policy fits TCA_TENANT_POLICY_TEXT_MAX, and round-trips */
	{
		char text[TCA_TENANT_POLICY_TEXT_MAX], v[TCA_POLICY_VALUE_MAX + 1];
		size_t o = 0, k;
		int j;

		o += (size_t)snprintf(text + o, sizeof(text) - o, "device_id_pattern=");
		for (k = 0; k < TCA_GLOB_MAX; k++)
			text[o++] = 'x';
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "\nkey_types=ec-p256,ec-p384,rsa,ed25519\nmax_days=36600\n");
		for (j = 0; j < 2; j++) {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s=",
			    j == 0 ? "o" : "ou");
			for (k = 0; k < TCA_POLICY_MAX_VALUES; k++) {
				memset(v, 'a', TCA_POLICY_VALUE_MAX);
				v[TCA_POLICY_VALUE_MAX] = '\0';
				v[0] = (char)('A' + k);
				o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s",
				    k > 0 ? "|" : "", v);
			}
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "\n%s_required=true\n", j == 0 ? "o" : "ou");
		}
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "rsa_min_bits=8192\nsan=none\nsuspended=true\n");
		ck_assert_uint_lt(o, sizeof(text));
		policy_of(&tp, text);
		ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
		ck_assert_str_eq(out, text);
		/* a buffer one byte short is refused, not truncated silently */
		ck_assert_int_eq(tca_tenant_policy_format(&tp, out, strlen(text)),
		    TCA_ERR_INVALID_ARG);
		ck_assert_str_eq(out, "");
		/* and its JSON, with every character escaped, fits too */
		for (k = 0; k < TCA_GLOB_MAX; k += 2)
			memcpy(tp.device_id_pattern + k, "\\\\", 2);
		for (k = 0; k < TCA_POLICY_MAX_VALUES; k++) {
			memset(tp.o.allowed[k] + 1, '"', TCA_POLICY_VALUE_MAX - 1);
			memset(tp.ou.allowed[k] + 1, '\\', TCA_POLICY_VALUE_MAX - 1);
		}
		{
			char json[TCA_TENANT_POLICY_JSON_MAX];

			ck_assert_int_eq(tca_tenant_policy_json(&tp, json,
			    sizeof(json)), TCA_OK);
			ck_assert_uint_gt(strlen(json), 4 * 1024);
		}
	}

	ck_assert_int_eq(tca_tenant_policy_parse(NULL, &tp, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_parse("", NULL, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_format(NULL, out, sizeof(out)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_format(&tp, NULL, 0), TCA_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_text_refusals)
{
	static const struct {
		const char *text, *why;	/* why: the whole reason, or its prefix + '*' */
	} c[] = {
		{ "colour=blue\n", "colour: unknown key*" },
		{ "Suspended=true\n", "Suspended: unknown key*" },
		{ "suspended=true\nsuspended=false\n", "suspended: given twice (line 2)" },
		{ "max_days=3\nmax_days=3\n", "max_days: given twice (line 2)" },
		{ "o=A\no=\n", "o: given twice (line 2)" },
		{ "suspended=yes\n", "suspended: \"yes\" is not true or false" },
		{ "o_required=1\n", "o_required: \"1\" is not true or false" },
		{ "ou_required=TRUE\n", "ou_required: \"TRUE\" is not true or false" },
		{ "max_days=-1\n", "max_days: \"-1\" is not a number of days*" },
		{ "max_days=036\n", "max_days: \"036\" is not a number of days*" },
		{ "max_days=36601\n", "max_days: \"36601\" is not a number of days*" },
		{ "max_days=99999999999\n", "max_days: \"99999999999\" is not a number*" },
		{ "max_days= 3\n", "max_days: \" 3\" is not a number of days*" },
		{ "rsa_min_bits=1024\n", "rsa_min_bits: \"1024\" is not a number of bits*" },
		{ "rsa_min_bits=16384\n", "rsa_min_bits: \"16384\" is not a number*" },
		{ "key_types=ec-p521\n", "key_types: unknown key type \"ec-p521\"*" },
		{ "key_types=rsa-3072\n", "key_types: unknown key type \"rsa-3072\"*" },
		{ "key_types=rsa,rsa\n", "key_types: rsa is listed twice" },
		{ "key_types=rsa,\n", "key_types: empty item in the list*" },
		{ "key_types=rsa, ed25519\n", "key_types: unknown key type \" ed25519\"*" },
		{ "san=DNS\n", "san: \"DNS\" is not uri, dns or none" },
		{ "san=ip\n", "san: \"ip\" is not uri, dns or none" },
		{ "registration=maybe\n", "registration: \"maybe\" is not required or none" },
		{ "registration=None\n", "registration: \"None\" is not required or none" },
		{ "registration=true\n", "registration: \"true\" is not required or none" },
		{ "registration=none\nregistration=required\n",
		    "registration: given twice (line 2)" },
		{ "o=A||B\n", "o: empty value in the list ('|'-separated)" },
		{ "o=A|\n", "o: empty value in the list ('|'-separated)" },
		{ "ou=A|B|A\n", "ou: value \"A\" is listed twice" },
		{ "o= Acme\n", "o: value \" Acme\" has leading or trailing spaces" },
		{ "o=Acme \n", "o: value \"Acme \" has leading or trailing spaces" },
		{ "o=A\tB\n", "o: value \"A?B\" contains a control character" },
		{ "o=A\rB\n", "o: value \"A?B\" contains a control character" },
		{ "o=\xff\n", "o: value \"?\" is not valid UTF-8" },
		{ "o=\xc0\xaf\n", "o: value \"??\" is not valid UTF-8" },
		{ "o=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		    "o: value \"aaaa*" },
		{ "o=a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q\n", "o: more than 16 values" },
		{ "device_id_pattern=dev-[0-9\n", "device_id_pattern: unterminated '[' at position 5" },
		{ "device_id_pattern=dev-\\\n", "device_id_pattern: '\\' at position 5 escapes nothing" },
		{ "device_id_pattern=[z-a]\n", "device_id_pattern: reversed range in '[' at position 2" },
		{ "device_id_pattern=ab\x01\n", "device_id_pattern: control character at position 3" },
		{ "device_id_pattern=a\xe2\x82\n", "device_id_pattern: invalid UTF-8 at position 2" },
		{ "suspended=true\n\nmax_days=3\n", "line 2: empty line" },
		{ "\n", "line 1: empty line" },
		{ "max_days=3\nsuspended\n", "line 2: \"suspended\" is not key=value" },
		{ "=3\n", "line 1: empty key before '='" },
	};
	struct tca_tenant_policy tp;
	char why[256], text[512];
	size_t i, n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&tp, 0x5a, sizeof(tp));
		why[0] = '\0';
		ck_assert_msg(tca_tenant_policy_parse(c[i].text, &tp, why, sizeof(why)) ==
		    TCA_ERR_BAD_REQUEST, "accepted: %s", c[i].text);
		n = strlen(c[i].why);
		if (c[i].why[n - 1] == '*')
			ck_assert_msg(strncmp(why, c[i].why, n - 1) == 0,
			    "\"%s\" for %s", why, c[i].text);
		else
			ck_assert_str_eq(why, c[i].why);
		/* the defaults on failure */
		ck_assert(tca_tenant_policy_is_default(&tp));
	}
	/* a pattern of 129 bytes */
	n = (size_t)snprintf(text, sizeof(text), "device_id_pattern=");
	memset(text + n, 'x', TCA_GLOB_MAX + 1);
	text[n + TCA_GLOB_MAX + 1] = '\0';
	ck_assert_int_eq(tca_tenant_policy_parse(text, &tp, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "device_id_pattern: longer than 128 bytes");
	/* a line longer than any policy */
	{
		char *big = malloc(TCA_TENANT_POLICY_TEXT_MAX + 16);

		ck_assert_ptr_nonnull(big);
		memcpy(big, "o=", 2);
		memset(big + 2, 'a', TCA_TENANT_POLICY_TEXT_MAX + 8);
		big[TCA_TENANT_POLICY_TEXT_MAX + 10] = '\0';
		ck_assert_int_eq(tca_tenant_policy_parse(big, &tp, why, sizeof(why)),
		    TCA_ERR_BAD_REQUEST);
		ck_assert_str_eq(why, "line 1: longer than 4095 bytes");
		free(big);
	}
}
END_TEST

START_TEST(test_set_reset)
{
	struct tca_tenant_policy tp, before;
	char out[TCA_TENANT_POLICY_TEXT_MAX], why[256];

	tca_tenant_policy_defaults(&tp);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "max_days=90", why, sizeof(why)), TCA_OK);
	ck_assert_uint_eq(tp.max_days, 90);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "key_types=ec-p256,rsa", why,
	    sizeof(why)), TCA_OK);
	ck_assert_uint_eq(tp.key_types, TCA_DEVKEY_EC_P256 | TCA_DEVKEY_RSA);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "o=Beta|Acme", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "o_required=true", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "device_id_pattern=dev-*", why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "san=dns", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tp.san, TCA_SAN_DNS);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "suspended=true", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "device_id_pattern=dev-*\nkey_types=ec-p256,rsa\n"
	    "max_days=90\no=Acme|Beta\no_required=true\nsan=dns\nsuspended=true\n");

	/* a value replaces the previous one (set is not parse: no "twice") */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "max_days=30", why, sizeof(why)), TCA_OK);
	ck_assert_uint_eq(tp.max_days, 30);

	/* refused: nothing changes, the reason names the key */
	before = tp;
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "max_days=forever", why,
	    sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert(strncmp(why, "max_days: ", 10) == 0);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "o=Acme|Acme", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "o: value \"Acme\" is listed twice");
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "colour=blue", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert(strncmp(why, "colour: unknown key", 19) == 0);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "suspended", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "assignment: \"suspended\" is not key=value");
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "device_id_pattern=[", why,
	    sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "device_id_pattern: unterminated '[' at position 1");
	ck_assert_mem_eq(&tp, &before, sizeof(tp));

	/* "key=" resets that key only; o= keeps o_required */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "o=", why, sizeof(why)), TCA_OK);
	ck_assert_uint_eq(tp.o.n, 0);
	ck_assert_int_eq(tp.o.required, 1);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "suspended=", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "san=", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "key_types=", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "device_id_pattern=", why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "max_days=30\no_required=true\n");
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "max_days=0", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "o_required=false", why,
	    sizeof(why)), TCA_OK);
	ck_assert(tca_tenant_policy_is_default(&tp));
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "");

	ck_assert_int_eq(tca_tenant_policy_set(NULL, "san=dns", why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, NULL, why, sizeof(why)),
	    TCA_ERR_INVALID_ARG);
	/* why may be NULL */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "san=x", NULL, 0), TCA_ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_json)
{
	struct tca_tenant_policy tp;
	char out[TCA_TENANT_POLICY_JSON_MAX], dir[1024], path[1100];

	tca_tenant_policy_defaults(&tp);
	ck_assert_int_eq(tca_tenant_policy_json(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "{\"device_id_pattern\":null,\"key_types\":null,"
	    "\"max_days\":null,\"o\":null,\"o_required\":false,\"ou\":null,"
	    "\"ou_required\":false,\"registration\":null,\"rsa_min_bits\":null,"
	    "\"san\":\"uri\",\"suspended\":false}");

	policy_of(&tp, "device_id_pattern=dev-\\\\\"*\nkey_types=ec-p384,rsa\n"
	    "max_days=7\no=Ac\"me|B\\\\x\nou_required=true\nregistration=none\n"
	    "rsa_min_bits=4096\nsan=dns\nsuspended=true\n");
	ck_assert_int_eq(tca_tenant_policy_json(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "{\"device_id_pattern\":\"dev-\\\\\\\\\\\"*\","
	    "\"key_types\":[\"ec-p384\",\"rsa\"],\"max_days\":7,"
	    "\"o\":[\"Ac\\\"me\",\"B\\\\\\\\x\"],\"o_required\":false,\"ou\":null,"
	    "\"ou_required\":true,\"registration\":\"none\",\"rsa_min_bits\":4096,"
	    "\"san\":\"dns\",\"suspended\":true}");
	/* it is JSON (where python3 is) */
	if (test_sh("command -v python3 >/dev/null 2>&1") == 0) {
		test_mkdtemp(dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/p.json", dir);
		ck_assert_int_eq(test_write_file(path, out, strlen(out), 0600), 0);
		ck_assert(test_sh("python3 -c 'import json,sys; "
		    "d = json.load(open(sys.argv[1])); "
		    "assert d[\"o\"] == [\"Ac\\\"me\", \"B\\\\\\\\x\"], d; "
		    "assert d[\"device_id_pattern\"] == \"dev-\\\\\\\\\\\"*\", d' '%s'",
		    path) == 0);
		ck_assert(test_sh("rm -rf '%s'", dir) == 0);
	}
	ck_assert_int_eq(tca_tenant_policy_json(&tp, out, 20), TCA_ERR_INVALID_ARG);
	ck_assert_str_eq(out, "");
}
END_TEST

/* ------------------------------------------------------------ rules */

START_TEST(test_rules_refuse)
{
	tca_csr *p256 = csr_make(k_p256, "CN", "dev-1", "O", "Acme", "OU", "Sensors", NULL);
	tca_csr *p384 = csr_make(k_p384, "CN", "dev-1", NULL);
	tca_csr *rsa = csr_make(k_rsa2048, "CN", "dev-1", NULL);
	tca_csr *ed = csr_make(k_ed25519, "CN", "dev-1", NULL);
	tca_csr *evil = csr_make(k_p256, "CN", "dev-1", "O", "Acme", "O",
	    "Evil \"Corp\"\n", NULL);
	tca_csr *bad_id = csr_make(k_p256, "CN", "printer\xc3\xa4_7", NULL);
	struct tca_tenant_policy tp;
	struct tca_policy_ceiling c = { 365, 3072 };
	unsigned int days = 5;
	char rule[64], why[256];

	/* suspended: its own error, before any other rule */
	refused("suspended=true\n", p256, "dev-1", TCA_ERR_TENANT_SUSPENDED,
	    "suspended", "suspended and issues no certificates");
	refused("suspended=true\nkey_types=rsa\n", p256, "dev-1",
	    TCA_ERR_TENANT_SUSPENDED, "suspended", "");

	/* key_types */
	refused("key_types=ec-p256\n", p384, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "key_types", "ec-p384 key not allowed by the tenant (allowed: ec-p256)");
	refused("key_types=ec-p384\n", p256, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "key_types", "ec-p256 key not allowed");
	refused("key_types=ec-p256,ec-p384,ed25519\n", rsa, "dev-1",
	    TCA_ERR_POLICY_VIOLATION, "key_types",
	    "rsa key not allowed by the tenant (allowed: ec-p256, ec-p384, ed25519)");
	refused("key_types=rsa\n", ed, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "key_types", "ed25519 key not allowed");

	/* rsa_min_bits: the tenant's, or a higher ceiling's */
	refused("rsa_min_bits=3072\n", rsa, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "rsa_min_bits", "RSA key of 2048 bits is below the tenant's minimum "
	    "of 3072 bits");
	policy_of(&tp, "");
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &c, rsa, "dev-1", &days, rule,
	    sizeof(rule), why, sizeof(why)), TCA_ERR_POLICY_VIOLATION);
	ck_assert_str_eq(rule, "rsa_min_bits");
	ck_assert_uint_eq(days, 5);	/* untouched on refusal */

	/* o and o_required */
	refused("o=Beta\n", p256, "dev-1", TCA_ERR_POLICY_VIOLATION, "o",
	    "CSR subject O \"Acme\" is not one of the tenant's allowed values");
	refused("o=Acme\n", evil, "dev-1", TCA_ERR_POLICY_VIOLATION, "o",
	    "O \"Evil ?Corp??\" is not one of");	/* sanitised */
	refused("o=acme\n", p256, "dev-1", TCA_ERR_POLICY_VIOLATION, "o", "Acme");
	refused("o_required=true\n", p384, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "o_required", "the tenant requires an O in the CSR subject, and it has none");
	refused("o=Acme\no_required=true\n", p384, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "o_required", "");

	/* ou and ou_required */
	refused("ou=Gateways|Meters\n", p256, "dev-1", TCA_ERR_POLICY_VIOLATION, "ou",
	    "CSR subject OU \"Sensors\" is not one of the tenant's allowed values");
	refused("ou_required=true\n", ed, "dev-1", TCA_ERR_POLICY_VIOLATION,
	    "ou_required", "requires an OU");

	/* device_id_pattern, with the id sanitised */
	refused("device_id_pattern=dev-[0-9][0-9]\n", p256, "dev-1",
	    TCA_ERR_POLICY_VIOLATION, "device_id_pattern",
	    "device id \"dev-1\" does not match the tenant's pattern \"dev-[0-9][0-9]\"");
	refused("device_id_pattern=printer-*\n", bad_id, "printer\xc3\xa4_7",
	    TCA_ERR_POLICY_VIOLATION, "device_id_pattern", "\"printer??_7\"");

	/* san=dns needs a host name */
	refused("san=dns\n", bad_id, "printer\xc3\xa4_7", TCA_ERR_POLICY_VIOLATION,
	    "san", "device id \"printer??_7\" is not a DNS host name");

	/* the first failing rule in the documented order is the one reported */
	refused("key_types=ec-p384\no=Beta\nou=X\ndevice_id_pattern=x\n", p256,
	    "dev-1", TCA_ERR_POLICY_VIOLATION, "key_types", "");
	refused("o=Beta\nou=X\ndevice_id_pattern=x\n", p256, "dev-1",
	    TCA_ERR_POLICY_VIOLATION, "o", "");
	refused("ou=X\ndevice_id_pattern=x\n", p256, "dev-1",
	    TCA_ERR_POLICY_VIOLATION, "ou", "");
	refused("device_id_pattern=x\nsan=dns\n", bad_id, "printer\xc3\xa4_7",
	    TCA_ERR_POLICY_VIOLATION, "device_id_pattern", "");

	/* rule may be NULL */
	policy_of(&tp, "suspended=true\n");
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil365, p256, "dev-1", &days,
	    NULL, 0, why, sizeof(why)), TCA_ERR_TENANT_SUSPENDED);
	/* and arguments */
	ck_assert_int_eq(tca_tenant_policy_check(NULL, &ceil365, p256, "dev-1", &days,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_check(&tp, NULL, p256, "dev-1", &days,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil365, NULL, "dev-1", &days,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil365, p256, NULL, &days,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil365, p256, "dev-1", NULL,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
	c.max_days = 0;
	ck_assert_int_eq(tca_tenant_policy_check(&tp, &c, p256, "dev-1", &days,
	    rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);

	tca_csr_free(p256);
	tca_csr_free(p384);
	tca_csr_free(rsa);
	tca_csr_free(ed);
	tca_csr_free(evil);
	tca_csr_free(bad_id);
}
END_TEST

START_TEST(test_rules_accept)
{
	tca_csr *p256 = csr_make(k_p256, "CN", "dev-17", "O", "Acme", "OU", "Sensors",
	    "OU", "Floor 2", NULL);
	tca_csr *p384 = csr_make(k_p384, "CN", "Gateway.example.com", NULL);
	tca_csr *rsa = csr_make(k_rsa3072, "CN", "dev-1", "O", "Beta", NULL);
	tca_csr *rsa2k = csr_make(k_rsa2048, "CN", "dev-1", NULL);
	tca_csr *ed = csr_make(k_ed25519, "CN", "ger\xc3\xa4t-1", "O", "G\xc3\xa4mma", NULL);

	accepted("", p256, "dev-17");
	accepted("", rsa2k, "dev-1");
	accepted("key_types=ec-p256\n", p256, "dev-17");
	accepted("key_types=ec-p384\nsan=dns\n", p384, "Gateway.example.com");
	accepted("key_types=rsa\nrsa_min_bits=3072\n", rsa, "dev-1");
	accepted("rsa_min_bits=3072\n", p256, "dev-17");	/* RSA only */
	accepted("key_types=ed25519\no=G\xc3\xa4mma\no_required=true\n", ed,
	    "ger\xc3\xa4t-1");
	accepted("o=Acme|Beta\no_required=true\n", p256, "dev-17");
	accepted("o=Acme|Beta\n", rsa, "dev-1");
	accepted("o=Acme\n", p384, "Gateway.example.com");	/* O not required */
	accepted("ou=Floor 2|Sensors\nou_required=true\n", p256, "dev-17");
	accepted("device_id_pattern=dev-[0-9]*\n", p256, "dev-17");
	accepted("device_id_pattern=ger?t-[!0]\n", ed, "ger\xc3\xa4t-1");
	accepted("san=none\n", ed, "ger\xc3\xa4t-1");
	accepted("san=uri\n", ed, "ger\xc3\xa4t-1");
	accepted("max_days=1\n", p256, "dev-17");

	tca_csr_free(p256);
	tca_csr_free(p384);
	tca_csr_free(rsa);
	tca_csr_free(rsa2k);
	tca_csr_free(ed);
}
END_TEST

START_TEST(test_validity_capped)
{
	static const struct {
		const char *policy;
		unsigned int ceiling, requested, want;
	} c[] = {
		{ "", 365, 0, 365 },
		{ "", 365, 30, 30 },
		{ "", 365, 365, 365 },
		{ "", 365, 1000, 365 },		/* the ceiling caps the request */
		{ "max_days=90\n", 365, 0, 90 },	/* the tenant's default */
		{ "max_days=90\n", 365, 30, 30 },
		{ "max_days=90\n", 365, 91, 90 },	/* the tenant caps the request */
		{ "max_days=90\n", 365, 1000, 90 },
		{ "max_days=400\n", 365, 0, 365 },	/* never above the ceiling */
		{ "max_days=400\n", 365, 399, 365 },
		{ "max_days=400\n", 500, 0, 400 },
		{ "max_days=1\n", 365, 0, 1 },
		{ "max_days=36600\n", 1, 0, 1 },
	};
	tca_csr *csr = csr_make(k_p256, "CN", "dev-1", NULL);
	struct tca_tenant_policy tp;
	struct tca_policy_ceiling ceil = { 0, 0 };
	char rule[64], why[256];
	unsigned int days;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		policy_of(&tp, c[i].policy);
		ceil.max_days = c[i].ceiling;
		days = c[i].requested;
		ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil, csr, "dev-1", &days,
		    rule, sizeof(rule), why, sizeof(why)), TCA_OK);
		ck_assert_msg(days == c[i].want, "%zu: %u days, want %u", i, days,
		    c[i].want);
	}
	tca_csr_free(csr);
}
END_TEST

/* ------------------------------------------------------------ glob */

START_TEST(test_glob_semantics)
{
	static const struct {
		const char *pat, *s;
		int want;
	} c[] = {
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "abc", "abc", 1 },
		{ "abc", "abcd", 0 },		/* whole string */
		{ "abc", "ab", 0 },
		{ "abc", "ABC", 0 },		/* case-sensitive */
		{ "a?c", "abc", 1 },
		{ "a?c", "ac", 0 },
		{ "a?c", "a\xc3\xa4" "c", 1 },	/* '?' is one UTF-8 character */
		{ "a??c", "a\xc3\xa4" "c", 0 },
		{ "*", "", 1 },
		{ "*", "anything", 1 },
		{ "**", "x", 1 },
		{ "a*", "a", 1 },
		{ "*a", "bba", 1 },
		{ "*a", "bab", 0 },
		{ "a*b*c", "aXbYc", 1 },
		{ "a*b*c", "aXcYb", 0 },
		{ "dev-*-gw", "dev-12-gw", 1 },
		{ "dev-*-gw", "dev--gw", 1 },
		{ "dev-*-gw", "dev-gw", 0 },
		{ "[abc]", "b", 1 },
		{ "[abc]", "d", 0 },
		{ "[a-z0-9_-]", "q", 1 },
		{ "[a-z0-9_-]", "7", 1 },
		{ "[a-z0-9_-]", "_", 1 },
		{ "[a-z0-9_-]", "-", 1 },
		{ "[a-z0-9_-]", "Q", 0 },
		{ "[-a]", "-", 1 },
		{ "[!a-z]", "Q", 1 },
		{ "[!a-z]", "q", 0 },
		{ "[!a-z]", "\xc3\xa4", 1 },	/* one character, not two bytes */
		{ "[]]", "]", 1 },		/* ']' first is a member */
		{ "[!]]", "]", 0 },
		{ "[!]]", "x", 1 },
		{ "[\\]x]", "]", 1 },
		{ "[a\\-z]", "-", 1 },		/* escaped '-' is no range */
		{ "[a\\-z]", "b", 0 },
		{ "[\xc3\xa0-\xc3\xbf]", "\xc3\xa4", 1 },	/* UTF-8 range */
		{ "[\xc3\xa0-\xc3\xbf]", "a", 0 },
		{ "\\*", "*", 1 },
		{ "\\*", "x", 0 },
		{ "\\?", "?", 1 },
		{ "\\[x]", "[x]", 1 },
		{ "\\\\", "\\", 1 },
		{ "a]b", "a]b", 1 },		/* ']' outside a class */
		{ "!x", "!x", 1 },
		{ "ger\xc3\xa4t-*", "ger\xc3\xa4t-7", 1 },
		{ "dev-?", "dev-\xff", 1 },	/* a non-UTF-8 byte is one character */
		{ "dev-\xc3\xbf", "dev-\xff", 0 },
		{ "sensor-[0-9][0-9][0-9]", "sensor-042", 1 },
		{ "sensor-[0-9][0-9][0-9]", "sensor-42", 0 },
	};
	static const struct {
		const char *pat, *why;
	} bad[] = {
		{ "[", "unterminated '[' at position 1" },
		{ "ab[cd", "unterminated '[' at position 3" },
		{ "[]", "unterminated '[' at position 1" },
		{ "[!]", "unterminated '[' at position 1" },
		{ "[a\\", "unterminated '[' at position 1" },
		{ "[a\\]", "unterminated '[' at position 1" },
		{ "x\\", "'\\' at position 2 escapes nothing" },
		{ "[a-cz-b]", "reversed range in '[' at position 5" },
		{ "a\tb", "control character at position 2" },
		{ "ab\x7f", "control character at position 3" },
		{ "a\xc3", "invalid UTF-8 at position 2" },
		{ "\xed\xa0\x80", "invalid UTF-8 at position 1" },	/* surrogate */
	};
	char why[128], longp[TCA_GLOB_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ck_assert_int_eq(tca_glob_valid(c[i].pat, why, sizeof(why)), TCA_OK);
		ck_assert_msg(tca_glob_match(c[i].pat, c[i].s) == c[i].want,
		    "\"%s\" vs \"%s\": want %d", c[i].pat, c[i].s, c[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		ck_assert_int_eq(tca_glob_valid(bad[i].pat, why, sizeof(why)),
		    TCA_ERR_BAD_REQUEST);
		ck_assert_str_eq(why, bad[i].why);
		ck_assert_int_eq(tca_glob_match(bad[i].pat, "x"), TCA_ERR_INVALID_ARG);
	}
	memset(longp, '*', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(tca_glob_valid(longp, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "pattern is longer than 128 bytes");
	longp[TCA_GLOB_MAX] = '\0';
	ck_assert_int_eq(tca_glob_valid(longp, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_glob_match(longp, "x"), 1);
	ck_assert_int_eq(tca_glob_valid(NULL, why, sizeof(why)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_glob_match(NULL, "x"), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_glob_match("x", NULL), TCA_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_glob_linear)
{
	static const char *const pats[] = {
		"*a*a*a*a*a*a*a*a*b",
		"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*"
		    "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
		"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*"
		    "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*[b]",
		"?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*"
		    "?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*!",
	};
	char s[257];
	unsigned long steps = 0, bound;
	size_t i;

	memset(s, 'a', 256);
	s[256] = '\0';
	for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		ck_assert_uint_le(strlen(pats[i]), TCA_GLOB_MAX);
		ck_assert_int_eq(tca_glob_match_counted(pats[i], s, &steps), 0);
		/* tokens <= pattern bytes */
		bound = (unsigned long)(strlen(pats[i]) + 1) * (256 + 1);
		ck_assert_msg(steps > 0 && steps <= bound, "%s: %lu steps > %lu",
		    pats[i], steps, bound);
	}
	/* the pair from the brief: 18 tokens (9 '*', 8 'a', 'b'), 256
	 * characters: 19 positions examined per character, 4864 steps, where
	 * backtracking would take ~256^8 */
	ck_assert_int_eq(tca_glob_match_counted(pats[0], s, &steps), 0);
	ck_assert_uint_eq(steps, 19UL * 256UL);
	/* and a match that needs the last character */
	s[255] = 'b';
	ck_assert_int_eq(tca_glob_match_counted(pats[0], s, &steps), 1);
	ck_assert_uint_eq(steps, 19UL * 256UL);
}
END_TEST

/* ------------------------------------------------------------ csrattrs */

/* Short name of obj, or its dotted form. */
static void
obj_name(const ASN1_OBJECT *obj, char *out, size_t outsz)
{
	int nid = OBJ_obj2nid(obj);

	if (nid != NID_undef)
		snprintf(out, outsz, "%s", OBJ_nid2sn(nid));
	else
		OBJ_obj2txt(out, (int)outsz, obj, 1);
}

/*
 * The CsrAttrs DER as text: each AttrOrOID as "name" (OID) or
 * "name{value,...}" (Attribute; OID values by name, INTEGER in decimal,
 * UTF8String quoted), space-separated.  Parsed with OpenSSL's generic
 * SEQUENCE OF ANY and X509_ATTRIBUTE, and re-encoded to check DER.
 */
static void
describe_csrattrs(const unsigned char *der, size_t len, char *out, size_t outsz)
{
	const unsigned char *p = der;
	STACK_OF(ASN1_TYPE) *seq;
	unsigned char *re = NULL;
	size_t o = 0;
	int i, j, relen;

	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
	ck_assert_ptr_nonnull(seq);
	ck_assert(p == der + len);
	relen = i2d_ASN1_SEQUENCE_ANY(seq, &re);
	ck_assert_int_eq(relen, (int)len);
	ck_assert_mem_eq(re, der, len);
	OPENSSL_free(re);
	out[0] = '\0';
	for (i = 0; i < sk_ASN1_TYPE_num(seq); i++) {
		const ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);
		char name[80];

		if (i > 0)
			o += (size_t)snprintf(out + o, outsz - o, " ");
		if (t->type == V_ASN1_OBJECT) {
			obj_name(t->value.object, name, sizeof(name));
			o += (size_t)snprintf(out + o, outsz - o, "%s", name);
		} else {
			const unsigned char *ap;
			X509_ATTRIBUTE *attr;

			ck_assert_int_eq(t->type, V_ASN1_SEQUENCE);
			ap = ASN1_STRING_get0_data(t->value.sequence);
			attr = d2i_X509_ATTRIBUTE(NULL, &ap,
			    ASN1_STRING_length(t->value.sequence));
			ck_assert_ptr_nonnull(attr);
			obj_name(X509_ATTRIBUTE_get0_object(attr), name, sizeof(name));
			o += (size_t)snprintf(out + o, outsz - o, "%s{", name);
			for (j = 0; j < X509_ATTRIBUTE_count(attr); j++) {
				ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(attr, j);

				if (j > 0)
					o += (size_t)snprintf(out + o, outsz - o, ",");
				if (v->type == V_ASN1_OBJECT) {
					obj_name(v->value.object, name, sizeof(name));
					o += (size_t)snprintf(out + o, outsz - o, "%s", name);
				} else if (v->type == V_ASN1_INTEGER) {
					o += (size_t)snprintf(out + o, outsz - o, "%ld",
					    ASN1_INTEGER_get(v->value.integer));
				} else {
					ck_assert_int_eq(v->type, V_ASN1_UTF8STRING);
					o += (size_t)snprintf(out + o, outsz - o, "\"%.*s\"",
					    ASN1_STRING_length(v->value.utf8string),
					    (const char *)ASN1_STRING_get0_data(
					    v->value.utf8string));
				}
			}
			o += (size_t)snprintf(out + o, outsz - o, "}");
			X509_ATTRIBUTE_free(attr);
		}
		ck_assert_uint_lt(o, outsz);
	}
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
}

START_TEST(test_csrattrs)
{
	static const struct {
		const char *policy, *want;
	} c[] = {
		{ "", "CN" },
		{ "key_types=ec-p256\n", "id-ecPublicKey{prime256v1} ecdsa-with-SHA256 CN" },
		{ "key_types=ec-p384\n", "id-ecPublicKey{secp384r1} ecdsa-with-SHA384 CN" },
		{ "key_types=ec-p256,ec-p384\n", "id-ecPublicKey CN" },
		{ "key_types=rsa\n", "rsaEncryption RSA-SHA256 CN" },
		{ "key_types=rsa\nrsa_min_bits=3072\n",
		    "rsaEncryption{3072} RSA-SHA256 CN" },
		{ "key_types=rsa\nrsa_min_bits=8192\n",
		    "rsaEncryption{8192} RSA-SHA256 CN" },
		{ "key_types=ed25519\n", "ED25519 CN" },
		{ "key_types=ec-p384,rsa,ed25519\nrsa_min_bits=4096\n",
		    "id-ecPublicKey{secp384r1} rsaEncryption{4096} ED25519 CN" },
		{ "key_types=ec-p256,ec-p384,rsa,ed25519\n", "CN" },
		{ "rsa_min_bits=4096\n", "CN" },	/* no key restriction to tell */
		{ "o=Acme\no_required=true\n", "CN O{\"Acme\"}" },
		{ "o=Acme|Beta\no_required=true\n", "CN O" },
		{ "o_required=true\n", "CN O" },
		{ "o=Acme\n", "CN" },			/* not required: nothing */
		{ "ou=Sensors\nou_required=true\no=G\xc3\xa4mma\no_required=true\n",
		    "CN O{\"G\xc3\xa4mma\"} OU{\"Sensors\"}" },
		{ "key_types=ec-p256\no_required=true\nou_required=true\n"
		    "device_id_pattern=x*\nmax_days=3\nsan=dns\nsuspended=true\n",
		    "id-ecPublicKey{prime256v1} ecdsa-with-SHA256 CN O OU" },
	};
	struct tca_tenant_policy tp;
	unsigned char *der = NULL;
	size_t len = 0, i;
	char desc[512], dir[1024], path[1100];

	test_mkdtemp(dir, sizeof(dir));
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		policy_of(&tp, c[i].policy);
		ck_assert_int_eq(tca_tenant_policy_csrattrs(&tp, &der, &len), TCA_OK);
		ck_assert_ptr_nonnull(der);
		describe_csrattrs(der, len, desc, sizeof(desc));
		ck_assert_msg(strcmp(desc, c[i].want) == 0, "\"%s\": \"%s\", want \"%s\"",
		    c[i].policy, desc, c[i].want);
		/* an independent parser agrees it is DER */
		snprintf(path, sizeof(path), "%s/a%zu.der", dir, i);
		ck_assert_int_eq(test_write_file(path, der, len, 0600), 0);
		ck_assert_msg(test_sh("openssl asn1parse -inform DER -in '%s' "
		    ">/dev/null", path) == 0, "asn1parse: %s", c[i].policy);
		OPENSSL_free(der);
		der = NULL;
	}
	/* the RFC 7030 example's curve attribute, byte for byte */
	policy_of(&tp, "key_types=ec-p384\n");
	ck_assert_int_eq(tca_tenant_policy_csrattrs(&tp, &der, &len), TCA_OK);
	{
		static const unsigned char want[] = {
			0x30, 0x23,
			0x30, 0x12, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
			0x31, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
			0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
			0x06, 0x03, 0x55, 0x04, 0x03,
		};

		ck_assert_uint_eq(len, sizeof(want));
		ck_assert_mem_eq(der, want, sizeof(want));
	}
	snprintf(path, sizeof(path), "%s/p384.der", dir);
	ck_assert_int_eq(test_write_file(path, der, len, 0600), 0);
	ck_assert(test_sh("openssl asn1parse -inform DER -in '%s' | "
	    "grep -q 'OBJECT *:secp384r1'", path) == 0);
	OPENSSL_free(der);
	der = NULL;
	ck_assert(test_sh("rm -rf '%s'", dir) == 0);

	ck_assert_int_eq(tca_tenant_policy_csrattrs(NULL, &der, &len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_csrattrs(&tp, NULL, &len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_tenant_policy_csrattrs(&tp, &der, NULL), TCA_ERR_INVALID_ARG);
	ck_assert_ptr_null(der);
}
END_TEST

/* Structures filled by hand with what set/parse never produce. */
START_TEST(test_bad_structures)
{
	tca_csr *csr = csr_make(k_p256, "CN", "dev-1", NULL);
	struct tca_tenant_policy tp;
	char out[TCA_TENANT_POLICY_JSON_MAX], rule[64], why[256];
	unsigned char *der = NULL;
	unsigned int days = 0;
	size_t len;
	int i;

	for (i = 0; i < 9; i++) {
		tca_tenant_policy_defaults(&tp);
		switch (i) {
		case 0: tp.key_types = 0x10; break;
		case 1: tp.rsa_min_bits = 1024; break;
		case 2: tp.max_days = TCA_POLICY_MAX_DAYS + 1; break;
		case 3: tp.o.n = TCA_POLICY_MAX_VALUES + 1; break;
		case 4: tp.ou.n = 2; snprintf(tp.ou.allowed[0], 65, "B");
			snprintf(tp.ou.allowed[1], 65, "A"); break;	/* unsorted */
		case 5: snprintf(tp.device_id_pattern, sizeof(tp.device_id_pattern), "[");
			break;
		case 6: tp.san = (enum tca_san_form)3; break;
		case 7: tp.suspended = 2; break;
		case 8: tp.registration = (enum tca_registration)3; break;
		}
		ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)),
		    TCA_ERR_INVALID_ARG);
		ck_assert_int_eq(tca_tenant_policy_json(&tp, out, sizeof(out)),
		    TCA_ERR_INVALID_ARG);
		ck_assert_int_eq(tca_tenant_policy_check(&tp, &ceil365, csr, "dev-1",
		    &days, rule, sizeof(rule), why, sizeof(why)), TCA_ERR_INVALID_ARG);
		ck_assert_int_eq(tca_tenant_policy_csrattrs(&tp, &der, &len),
		    TCA_ERR_INVALID_ARG);
	}
	tca_csr_free(csr);
}
END_TEST

/* ------------------------------------------------------------ registration */

START_TEST(test_registration_key)
{
	struct tca_tenant_policy tp, before;
	char out[TCA_TENANT_POLICY_TEXT_MAX], json[TCA_TENANT_POLICY_JSON_MAX], why[256];

	/* the default: the configuration's device.registration */
	tca_tenant_policy_defaults(&tp);
	ck_assert_int_eq(tp.registration, TCA_REG_GLOBAL);
	ck_assert(tca_tenant_policy_is_default(&tp));

	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=none", why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tp.registration, TCA_REG_NONE);
	ck_assert(!tca_tenant_policy_is_default(&tp));
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "registration=none\n");
	ck_assert_int_eq(tca_tenant_policy_json(&tp, json, sizeof(json)), TCA_OK);
	ck_assert_msg(strstr(json, "\"registration\":\"none\"") != NULL, "%s", json);
	/* round trip through the text form */
	policy_of(&before, out);
	ck_assert_int_eq(before.registration, TCA_REG_NONE);

	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=required", why,
	    sizeof(why)), TCA_OK);
	ck_assert_int_eq(tp.registration, TCA_REG_REQUIRED);
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "registration=required\n");
	ck_assert_int_eq(tca_tenant_policy_json(&tp, json, sizeof(json)), TCA_OK);
	ck_assert_msg(strstr(json, "\"registration\":\"required\"") != NULL, "%s", json);
	/* required is kept even though the configuration's default may say the
	 * same: the tenant then stays required when the configuration changes */
	ck_assert(!tca_tenant_policy_is_default(&tp));

	/* refused: nothing changes, the reason names the key */
	before = tp;
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=off", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "registration: \"off\" is not required or none");
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=REQUIRED", why,
	    sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert(strncmp(why, "registration: ", 14) == 0);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration= none", why,
	    sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert(strncmp(why, "registration: ", 14) == 0);
	ck_assert_mem_eq(&tp, &before, sizeof(tp));

	/* the unknown-key message lists it */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registered=none", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, "registration") != NULL, "%s", why);

	/* reset: back to the configuration's setting, the default policy */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=", why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tp.registration, TCA_REG_GLOBAL);
	ck_assert(tca_tenant_policy_is_default(&tp));
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(tca_tenant_policy_json(&tp, json, sizeof(json)), TCA_OK);
	ck_assert_msg(strstr(json, "\"registration\":null") != NULL, "%s", json);

	/* with other keys, in key order */
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "san=dns", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "registration=none", why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_set(&tp, "ou_required=true", why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tca_tenant_policy_format(&tp, out, sizeof(out)), TCA_OK);
	ck_assert_str_eq(out, "ou_required=true\nregistration=none\nsan=dns\n");
}
END_TEST

/* ------------------------------------------------------------ otp */

/* The hash string with one character at offset off replaced by c. */
static void
tampered(const char *hash, size_t off, char c, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s", hash);
	ck_assert_uint_lt(off, strlen(out));
	out[off] = c;
}

START_TEST(test_otp_hash_verify)
{
	static const char pw[] = "Correct-Horse-9";
	char h1[TCA_OTP_HASH_MAX], h2[TCA_OTP_HASH_MAX], bad[TCA_OTP_HASH_MAX + 64];
	char *salt, *hash;
	size_t n;
	unsigned int ln, r, p;
	int consumed = 0;

	ck_assert_int_eq(tca_otp_hash(pw, strlen(pw), h1, sizeof(h1)), TCA_OK);
	/* the documented form: $scrypt$ln=14,r=8,p=1$<salt>$<hash> */
	ck_assert_int_eq(sscanf(h1, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &consumed), 3);
	ck_assert_uint_eq(ln, 14);
	ck_assert_uint_eq(r, 8);
	ck_assert_uint_eq(p, 1);
	salt = h1 + consumed;
	ck_assert_ptr_nonnull(hash = strchr(salt, '$'));
	ck_assert_uint_eq((size_t)(hash - salt), 24);	/* 16 bytes, base64 */
	ck_assert_uint_eq(strlen(hash + 1), 44);	/* 32 bytes, base64 */
	ck_assert_ptr_null(strstr(h1, pw));
	ck_assert_uint_lt(strlen(h1), TCA_OTP_HASH_MAX);

	/* round trip; a fresh salt each time */
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), h1), 1);
	ck_assert_int_eq(tca_otp_hash(pw, strlen(pw), h2, sizeof(h2)), TCA_OK);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), h2), 1);

	/* wrong passwords: another, a prefix, one more character, case */
	ck_assert_int_eq(tca_otp_verify("Correct-Horse-8", 15, h1), 0);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw) - 1, h1), 0);
	ck_assert_int_eq(tca_otp_verify("Correct-Horse-9x", 16, h1), 0);
	ck_assert_int_eq(tca_otp_verify("correct-horse-9", 15, h1), 0);
	ck_assert_int_eq(tca_otp_verify("", 0, h1), 0);
	/* the length counts, not the NUL */
	ck_assert_int_eq(tca_otp_verify("Correct-Horse-9\0zz", 18, h1), 0);

	/* malformed or tampered strings verify as 0, never as 1 */
	{
		const char *const malformed[] = {
			"", "$scrypt$", "$scrypt$ln=14,r=8,p=1$", "$scrypt$ln=14,r=8,p=1$$",
			"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			"scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=14,r=8$AAAAAAAAAAAAAAAAAAAAAA==$"
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			pw,
		};
		size_t i;

		for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
			ck_assert_msg(tca_otp_verify(pw, strlen(pw), malformed[i]) == 0,
			    "accepted \"%s\"", malformed[i]);
	}
	/* the parameters are digits only: a sign, a space or a number that
	 * wraps must not be read as the right parameters (the rest of each
	 * string is h1's, which verifies under ln=14,r=8,p=1) */
	{
		static const char *const from[] = { "ln=14", "r=8", "p=1" };
		static const char *const to[] = { "ln=+14", "r= 8", "p=4294967297" };
		char odd[TCA_OTP_HASH_MAX + 32];
		const char *at;
		size_t i;

		for (i = 0; i < 3; i++) {
			at = strstr(h1, from[i]);
			ck_assert_ptr_nonnull(at);
			snprintf(odd, sizeof(odd), "%.*s%s%s", (int)(at - h1), h1, to[i],
			    at + strlen(from[i]));
			ck_assert_msg(tca_otp_verify(pw, strlen(pw), odd) == 0, "accepted \"%s\"",
			    odd);
		}
	}
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), NULL), 0);
	ck_assert_int_eq(tca_otp_verify(NULL, 0, h1), 0);
	n = strlen(h1);
	/* a changed hash byte, salt byte, truncation, trailing text */
	tampered(h1, n - 3, h1[n - 3] == 'A' ? 'B' : 'A', bad, sizeof(bad));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	tampered(h1, (size_t)(salt - h1) + 2, salt[2] == 'A' ? 'B' : 'A', bad, sizeof(bad));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	snprintf(bad, sizeof(bad), "%.*s", (int)(n - 4), h1);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	snprintf(bad, sizeof(bad), "%sAAAA", h1);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	snprintf(bad, sizeof(bad), "%s$", h1);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	/* a character outside base64 in the hash */
	tampered(h1, n - 5, '*', bad, sizeof(bad));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	/* the salt and hash swapped around */
	snprintf(bad, sizeof(bad), "$scrypt$ln=14,r=8,p=1$%s$%.*s", hash + 1,
	    (int)(hash - salt), salt);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
	/* the parameters are part of what is checked: other ones, other hash */
	snprintf(bad, sizeof(bad), "$scrypt$ln=13,r=8,p=1$%s", salt);
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), bad), 0);
}
END_TEST

/* "$scrypt$ln=..,r=..,p=..$salt$hash" for pw, derived here with OpenSSL's
 * SCRYPT KDF directly (not through otp.c). */
static void
scrypt_string(const char *pw, unsigned int ln, unsigned int r, unsigned int p,
    char *out, size_t outsz)
{
	unsigned char salt[16], hash[32];
	char salt64[25], hash64[45];
	uint64_t n = (uint64_t)1 << ln;
	uint32_t r32 = r, p32 = p;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[6];

	ck_assert_ptr_nonnull(ctx);
	memset(salt, 0x5a, sizeof(salt));
	salt[0] = (unsigned char)ln;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw,
	    strlen(pw));
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt));
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	params[5] = OSSL_PARAM_construct_end();
	ck_assert_int_eq(EVP_KDF_derive(ctx, hash, sizeof(hash), params), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	ck_assert_int_eq(EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt)), 24);
	ck_assert_int_eq(EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash)), 44);
	snprintf(out, outsz, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", ln, r, p, salt64, hash64);
}

START_TEST(test_otp_params_range)
{
	static const char pw[] = "Param-Check-1";
	static const char salt_hash[] = "$AAAAAAAAAAAAAAAAAAAAAA==$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	static const char *const params[] = {
		"ln=9,r=8,p=1", "ln=21,r=8,p=1", "ln=64,r=8,p=1", "ln=0,r=8,p=1",
		"ln=14,r=0,p=1", "ln=14,r=33,p=1", "ln=14,r=8,p=0", "ln=14,r=8,p=17",
		"ln=-1,r=8,p=1", "ln=x,r=8,p=1", "ln=14,p=1,r=8",
	};
	char s[TCA_OTP_HASH_MAX + 64], h[TCA_OTP_HASH_MAX];
	size_t i;

	/* out of range (or unparsable): 0 */
	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		snprintf(s, sizeof(s), "$scrypt$%s%s", params[i], salt_hash);
		ck_assert_msg(tca_otp_verify(pw, strlen(pw), s) == 0, "accepted %s", s);
	}
	/* a hash made with other accepted parameters (plain scrypt, derived
	 * here) verifies: the cost can change without invalidating earlier
	 * registrations, and the format is standard scrypt */
	scrypt_string(pw, 10, 1, 1, s, sizeof(s));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), s), 1);
	ck_assert_int_eq(tca_otp_verify("Param-Check-2", 13, s), 0);
	scrypt_string(pw, 14, 8, 1, s, sizeof(s));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), s), 1);
	scrypt_string(pw, 11, 2, 2, s, sizeof(s));
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), s), 1);
	/* the same hash under other parameters does not */
	scrypt_string(pw, 10, 1, 1, s, sizeof(s));
	ck_assert_int_eq(strncmp(s, "$scrypt$ln=10,", 14), 0);
	s[12] = '1';	/* ln=10 -> ln=11 */
	ck_assert_int_eq(tca_otp_verify(pw, strlen(pw), s), 0);

	/* the output buffer of tca_otp_hash must hold TCA_OTP_HASH_MAX */
	ck_assert_int_eq(tca_otp_hash(pw, strlen(pw), h, TCA_OTP_HASH_MAX - 1),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_otp_hash(NULL, 0, h, sizeof(h)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_otp_hash(pw, strlen(pw), NULL, sizeof(h)), TCA_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_otp_generate)
{
	static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
	char pw[64][TCA_OTP_GENERATED_LEN + 1], small[TCA_OTP_GENERATED_LEN], why[128];
	unsigned int seen[256];
	size_t i, j;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 64; i++) {
		ck_assert_int_eq(tca_otp_generate(pw[i], sizeof(pw[i])), TCA_OK);
		ck_assert_uint_eq(strlen(pw[i]), TCA_OTP_GENERATED_LEN);
		for (j = 0; j < TCA_OTP_GENERATED_LEN; j++) {
			ck_assert_msg(strchr(alphabet, pw[i][j]) != NULL,
			    "character '%c' outside the alphabet", pw[i][j]);
			seen[(unsigned char)pw[i][j]]++;
		}
		/* acceptable as a password */
		ck_assert_int_eq(tca_otp_check_password(pw[i], strlen(pw[i]), why,
		    sizeof(why)), TCA_OK);
		/* unique */
		for (j = 0; j < i; j++)
			ck_assert_str_ne(pw[i], pw[j]);
	}
	/* no ambiguous characters; over 1536 characters every letter shows up */
	ck_assert_uint_eq(seen['0'] + seen['1'] + seen['O'] + seen['I'] +
	    seen['o'] + seen['l'] + seen['a'], 0);
	for (j = 0; alphabet[j] != '\0'; j++)
		ck_assert_msg(seen[(unsigned char)alphabet[j]] > 0, "'%c' never generated",
		    alphabet[j]);
	/* a generated password verifies against its hash */
	{
		char h[TCA_OTP_HASH_MAX];

		ck_assert_int_eq(tca_otp_hash(pw[0], strlen(pw[0]), h, sizeof(h)), TCA_OK);
		ck_assert_int_eq(tca_otp_verify(pw[0], strlen(pw[0]), h), 1);
		ck_assert_int_eq(tca_otp_verify(pw[1], strlen(pw[1]), h), 0);
	}
	ck_assert_int_eq(tca_otp_generate(small, sizeof(small)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_otp_generate(NULL, 64), TCA_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_otp_password_rules)
{
	char pw[TCA_OTP_MAX + 2], why[160];

	memset(pw, 'a', sizeof(pw));
	/* TCA_OTP_MIN..TCA_OTP_MAX */
	ck_assert_int_eq(tca_otp_check_password(pw, TCA_OTP_MIN, why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_otp_check_password(pw, TCA_OTP_MAX, why, sizeof(why)), TCA_OK);
	why[0] = '\0';
	ck_assert_int_eq(tca_otp_check_password(pw, TCA_OTP_MIN - 1, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "a one-time password has 8..128 characters");
	ck_assert_int_eq(tca_otp_check_password(pw, TCA_OTP_MAX + 1, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(why, "a one-time password has 8..128 characters");
	ck_assert_int_eq(tca_otp_check_password(pw, 0, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password(NULL, 10, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	/* printable ASCII without spaces; the message names the position only */
	ck_assert_int_eq(tca_otp_check_password("!~abcdefXYZ09", 13, why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tca_otp_check_password("abcd efgh", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, "character 5") != NULL, "%s", why);
	ck_assert_ptr_null(strstr(why, "abcd"));
	ck_assert_int_eq(tca_otp_check_password(" abcdefgh", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password("abcdefgh ", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password("abcd\tefgh", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password("abcdefg\x7f", 8, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password("abcdefg\xc3\xa4", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_otp_check_password("abcd\0efgh", 9, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	/* why may be NULL */
	ck_assert_int_eq(tca_otp_check_password("short", 5, NULL, 0), TCA_ERR_BAD_REQUEST);
}
END_TEST

static Suite *
policy_suite(void)
{
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "text-round-trip", test_round_trip },
		{ "text-refusals", test_text_refusals },
		{ "set-reset", test_set_reset },
		{ "json", test_json },
		{ "rules-refuse-and-name", test_rules_refuse },
		{ "rules-accept", test_rules_accept },
		{ "validity-capped", test_validity_capped },
		{ "glob-semantics", test_glob_semantics },
		{ "glob-linear", test_glob_linear },
		{ "csrattrs", test_csrattrs },
		{ "bad-structures", test_bad_structures },
		{ "registration", test_registration_key },
		{ "otp-hash-verify", test_otp_hash_verify },
		{ "otp-params-range", test_otp_params_range },
		{ "otp-generate", test_otp_generate },
		{ "otp-password-rules", test_otp_password_rules },
	};
	Suite *s = suite_create("policy");
	TCase *tc;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tc = tcase_create(cases[i].name);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	test_require_tool("openssl");
	k_p256 = gen("EC", "P-256", 0);
	k_p384 = gen("EC", "P-384", 0);
	k_rsa2048 = gen("RSA", NULL, 2048);
	k_rsa3072 = gen("RSA", NULL, 3072);
	k_ed25519 = gen("ED25519", NULL, 0);
	sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	EVP_PKEY_free(k_p256);
	EVP_PKEY_free(k_p384);
	EVP_PKEY_free(k_rsa2048);
	EVP_PKEY_free(k_rsa3072);
	EVP_PKEY_free(k_ed25519);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
