/*
 * check_basics.c - error codes, key types, identifiers, PIN files, roles.
 *
 * /basics/error/...   wire code mapping round-trips
 * /basics/tenant/...  tenant and device id validation, key naming
 * /basics/secret/...  PIN file mode checks, wiping, env handling
 * /basics/roles/...   SO_PEERCRED role decision
 * /basics/text/...    JSON strings, sanitizing, hex, UTF-8; the Unicode
 *                     categories ids refuse (Cc, Cf, Zl, Zp) and their escape
 * /basics/ca-expiry   when a CA certificate is expired or expiring
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "engine.h"
#include "keytype.h"
#include "log.h"
#include "rpc-ops.h"
#include "secret.h"
#include "tca-error.h"
#include "tenant.h"
#include "testutil.h"
#include "text.h"

/* /basics/error/wire-codes */
START_TEST(test_error_codes)
{
	static const int wire[] = {
		TCA_ERR_BAD_REQUEST, TCA_ERR_UNAUTHORIZED, TCA_ERR_NOT_FOUND,
		TCA_ERR_ALREADY_EXISTS, TCA_ERR_POLICY_VIOLATION, TCA_ERR_TOKEN_UNAVAILABLE,
		TCA_ERR_JOURNAL_UNAVAILABLE, TCA_ERR_INTERNAL, TCA_ERR_UNSUPPORTED_VERSION,
		TCA_ERR_FRAME_TOO_LARGE, TCA_ERR_UNKNOWN_OP, TCA_ERR_BUSY, TCA_ERR_SHUTTING_DOWN,
		TCA_ERR_REVOKED, TCA_ERR_TENANT_SUSPENDED, TCA_ERR_CREDENTIAL_REFUSED,
	};
	size_t i;

	for (i = 0; i < sizeof(wire) / sizeof(wire[0]); i++)
		ck_assert_int_eq(tca_err_from_wire_code(tca_err_wire_code(wire[i])), wire[i]);
	ck_assert_str_eq(tca_err_wire_code(TCA_ERR_NOMEM), "INTERNAL");
	ck_assert_str_eq(tca_err_wire_code(TCA_ERR_TRUNCATED), "BAD_REQUEST");
	ck_assert_str_eq(tca_err_wire_code(12345), "INTERNAL");
	ck_assert_int_eq(tca_err_from_wire_code("NOPE"), TCA_ERR_INTERNAL);
	ck_assert_str_eq(tca_strerror(-9999), "unknown error");
}
END_TEST

/* /basics/keytype/names */
START_TEST(test_key_types)
{
	enum tca_key_type t;

	ck_assert_int_eq(tca_key_type_from_name("ec-p256", &t), TCA_OK);
	ck_assert_int_eq(t, TCA_KEY_EC_P256);
	ck_assert_int_eq(tca_key_type_sig_alg(t), TCA_SIG_ECDSA_SHA256);
	ck_assert_int_eq(tca_key_type_from_name("ec-p384", &t), TCA_OK);
	ck_assert_int_eq(tca_key_type_sig_alg(t), TCA_SIG_ECDSA_SHA384);
	ck_assert_int_eq(tca_key_type_from_name("rsa-3072", &t), TCA_OK);
	ck_assert_int_eq(tca_key_type_sig_alg(t), TCA_SIG_RSA_PKCS1_SHA256);
	ck_assert_int_eq(tca_key_type_from_name("ed25519", &t), TCA_OK);
	ck_assert_str_eq(tca_key_type_name(t), "ed25519");
	ck_assert_int_eq(tca_key_type_from_name("rsa-1024", &t), TCA_ERR_BAD_REQUEST);
	ck_assert_str_eq(tca_key_type_name(TCA_KEY_NONE), "none");
}
END_TEST

/*
 * /basics/keytype/table: every row agrees with OpenSSL (the oracle): the curve
 * OID names the group, the signature NID is the digest-with-key pair, the
 * DigestInfo prefix is the one OpenSSL writes, the raw signature length fits
 * the key size; and an unknown type has no row.
 */
START_TEST(test_key_table)
{
	const struct tca_key_desc *kd;
	unsigned char di[64], *p;
	ASN1_OBJECT *obj;
	int md_nid, pk_nid, n;
	size_t i, seen = 0;
	char buf[128];

	ck_assert_ptr_null(tca_key_desc(TCA_KEY_NONE));
	ck_assert_ptr_null(tca_key_desc((enum tca_key_type)99));
	ck_assert_ptr_null(tca_key_desc_by_alg(TCA_SIG_NONE));
	ck_assert_int_eq(tca_sig_alg_nid(TCA_SIG_NONE), NID_undef);
	ck_assert_ptr_null(tca_key_desc_at(TCA_KEY_TYPE_COUNT));
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		seen++;
		ck_assert_ptr_eq(tca_key_desc(kd->type), kd);
		ck_assert_ptr_eq(tca_key_desc_by_alg(kd->alg), kd);
		ck_assert_int_eq(tca_sig_alg_nid(kd->alg), kd->sig_nid);
		ck_assert_int_eq(OBJ_find_sigid_algs(kd->sig_nid, &md_nid, &pk_nid), 1);
		if (kd->md != NULL)
			ck_assert_int_eq(md_nid, OBJ_txt2nid(kd->md));
		else
			ck_assert_int_eq(md_nid, NID_undef);
		ck_assert_int_eq(pk_nid, strcmp(kd->pkey_type, "EC") == 0 ?
		    NID_X9_62_id_ecPublicKey : strcmp(kd->pkey_type, "RSA") == 0 ?
		    NID_rsaEncryption : NID_ED25519);
		ck_assert_uint_ne(kd->raw_mech, 0);
		if (kd->ec_params != NULL) {
			const unsigned char *q = kd->ec_params;

			ck_assert_int_eq(kd->ec_params[0], 0x06);
			ck_assert_ptr_eq(kd->curve_oid, kd->ec_params + 2);
			obj = d2i_ASN1_OBJECT(NULL, &q, (long)kd->ec_params_len);
			ck_assert_ptr_nonnull(obj);
			ck_assert_ptr_eq(q, kd->ec_params + kd->ec_params_len);
			n = OBJ_obj2nid(obj);
			ASN1_OBJECT_free(obj);
			if (kd->group != NULL) {
				ck_assert_int_eq(n, OBJ_txt2nid(kd->group));
				ck_assert_uint_eq(kd->sig_len, 2 * kd->field_len);
				ck_assert_int_eq(kd->sig_form, TCA_SIG_FORM_ECDSA_RS);
			} else {
				ck_assert_int_eq(n, NID_ED25519);
				ck_assert_uint_eq(kd->sig_len, 64);
			}
		} else {
			ck_assert_uint_eq(kd->sig_len, kd->rsa_bits / 8);
			ck_assert_ptr_nonnull(kd->digest_info);
			/* the DigestInfo OpenSSL encodes for an all-zero digest */
			{
				X509_SIG *xs = X509_SIG_new();
				X509_ALGOR *alg;
				ASN1_OCTET_STRING *dg;
				unsigned char zero[64] = { 0 };
				int len;

				ck_assert_ptr_nonnull(xs);
				X509_SIG_getm(xs, &alg, &dg);
				ck_assert_int_eq(X509_ALGOR_set0(alg, OBJ_nid2obj(md_nid),
				    V_ASN1_NULL, NULL), 1);
				ck_assert_int_eq(ASN1_OCTET_STRING_set(dg, zero,
				    EVP_MD_get_size(EVP_get_digestbynid(md_nid))), 1);
				p = di;
				len = i2d_X509_SIG(xs, NULL);
				ck_assert_int_gt(len, 0);
				ck_assert_int_le(len, (int)sizeof(di));
				ck_assert_int_eq(i2d_X509_SIG(xs, &p), len);
				ck_assert_uint_eq(kd->digest_info_len,
				    (size_t)len - (size_t)EVP_MD_get_size(EVP_get_digestbynid(md_nid)));
				ck_assert_mem_eq(kd->digest_info, di, kd->digest_info_len);
				X509_SIG_free(xs);
			}
		}
	}
	ck_assert_uint_eq(seen, TCA_KEY_TYPE_COUNT);
	tca_key_types_format((1u << TCA_KEY_EC_P256) | (1u << TCA_KEY_ED25519), buf, sizeof(buf));
	ck_assert_str_eq(buf, "ec-p256, ed25519");
	tca_key_types_format(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "none");
}
END_TEST

/* /basics/tenant/validate */
START_TEST(test_tenant_ids)
{
	char why[256], long_id[80];

	ck_assert_int_eq(tca_tenant_validate("t100", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_validate("management", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_validate("a.b_c-9", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_tenant_validate("", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate("-t", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate(".hidden", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate("t/../x", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate("t 1", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate("t\xc3\xa9", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	ck_assert_int_eq(tca_tenant_validate(long_id, why, sizeof(why)), TCA_OK);
	long_id[64] = 'a';
	long_id[65] = '\0';
	ck_assert_int_eq(tca_tenant_validate(long_id, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(why, "64"));
}
END_TEST

/* /basics/tenant/device-id */
START_TEST(test_device_ids)
{
	char why[256];

	ck_assert_int_eq(tca_device_id_validate("dev-1", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_device_id_validate("Gerät 7", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_device_id_validate("", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_device_id_validate("a\nb", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_device_id_validate("\xc0\xaf", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_device_id_validate("\xed\xa0\x80", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_device_id_validate("\xe2\x82", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	/* issue 11: no control, format or separator character (Cc, Cf, Zl, Zp),
	 * each named by code point, never echoed */
	{
		static const struct {
			const char *id, *named;
		} bad[] = {
			{ "a\xc2\x85" "b", "control character (U+0085 at byte 2)" },	/* NEL */
			{ "a\xe2\x80\xa8" "b", "line separator character (U+2028 at byte 2)" },
			{ "a\xe2\x80\xa9" "b", "paragraph separator character (U+2029" },
			{ "dev-\xe2\x80\xae" "1gpj", "format character (U+202E at byte 5)" },
			{ "a\xe2\x80\x8b" "b", "U+200B" },		/* zero width space */
			{ "\xef\xbb\xbf" "dev", "U+FEFF at byte 1" },	/* BOM */
			{ "a\xc2\xad" "b", "U+00AD" },		/* soft hyphen */
			{ "a\xe2\x81\xa6" "b", "U+2066" },		/* LRI */
			{ "a\xd8\x9c" "b", "U+061C" },		/* ALM */
			{ "a\xf3\xa0\x81\x81", "U+E0041" },	/* TAG LATIN CAPITAL A */
			{ "a\xf0\x93\x90\xb9", "U+13439" },	/* Cf since Unicode 15.0 */
			{ "a\x7f" "b", "control character (U+007F" },
			{ "a\tb", "control character (U+0009" },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			why[0] = '\0';
			ck_assert_msg(tca_device_id_validate(bad[i].id, why, sizeof(why)) ==
			    TCA_ERR_BAD_REQUEST, "device id %zu accepted", i);
			ck_assert_msg(strstr(why, bad[i].named) != NULL, "%zu: %s", i, why);
			ck_assert_msg(strstr(why, bad[i].id) == NULL, "%zu: echoed: %s", i, why);
		}
	}
	/* other spaces, letters, symbols stay allowed */
	ck_assert_int_eq(tca_device_id_validate("a\xc2\xa0" "b", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_device_id_validate("\xe3\x80\x80\xe6\x9d\xb1", why, sizeof(why)),
	    TCA_OK);
	ck_assert_int_eq(tca_device_id_validate("cam-\xf0\x9f\x93\xb7", why, sizeof(why)), TCA_OK);
	ck_assert_int_eq(tca_device_id_validate("a\xf0\x93\x91\x80", why, sizeof(why)), TCA_OK);
	/* tenant ids are ASCII: none of them gets in there either */
	ck_assert_int_eq(tca_tenant_validate("t\xe2\x80\xae", why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_tenant_validate("t\xc2\x85", why, sizeof(why)), TCA_ERR_BAD_REQUEST);
}
END_TEST

/* /basics/text/categories: Cc, Cf, Zl, Zp of Unicode 15.0, exactly */
START_TEST(test_text_categories)
{
	/* the Unicode 15.0 list, written out independently of text.c's table */
	static const struct {
		uint32_t lo, hi;
		const char *cat;
	} want[] = {
		{ 0x0000, 0x001F, "Cc" }, { 0x007F, 0x009F, "Cc" },
		{ 0x00AD, 0x00AD, "Cf" }, { 0x0600, 0x0605, "Cf" }, { 0x061C, 0x061C, "Cf" },
		{ 0x06DD, 0x06DD, "Cf" }, { 0x070F, 0x070F, "Cf" }, { 0x0890, 0x0891, "Cf" },
		{ 0x08E2, 0x08E2, "Cf" }, { 0x180E, 0x180E, "Cf" }, { 0x200B, 0x200F, "Cf" },
		{ 0x202A, 0x202E, "Cf" }, { 0x2060, 0x2064, "Cf" }, { 0x2066, 0x206F, "Cf" },
		{ 0xFEFF, 0xFEFF, "Cf" }, { 0xFFF9, 0xFFFB, "Cf" }, { 0x110BD, 0x110BD, "Cf" },
		{ 0x110CD, 0x110CD, "Cf" }, { 0x13430, 0x1343F, "Cf" }, { 0x1BCA0, 0x1BCA3, "Cf" },
		{ 0x1D173, 0x1D17A, "Cf" }, { 0xE0001, 0xE0001, "Cf" }, { 0xE0020, 0xE007F, "Cf" },
		{ 0x2028, 0x2028, "Zl" }, { 0x2029, 0x2029, "Zp" },
	};
	size_t i, n, count = 0, total = 0;
	uint32_t cp;
	const char *cat;
	char out[64];

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		total += want[i].hi - want[i].lo + 1;
	ck_assert_uint_eq(total, 65 + 170 + 2);	/* Cc 65, Cf 170, Zl 1, Zp 1 */
	for (cp = 0; cp <= 0x10FFFF; cp++) {
		const char *exp = NULL;

		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (cp >= want[i].lo && cp <= want[i].hi)
				exp = want[i].cat;
		cat = tca_unicode_hidden(cp);
		if (exp == NULL)
			ck_assert_msg(cat == NULL, "U+%04X is not %s", (unsigned int)cp, cat);
		else {
			ck_assert_msg(cat != NULL && strcmp(cat, exp) == 0, "U+%04X: %s, want %s",
			    (unsigned int)cp, cat != NULL ? cat : "(none)", exp);
			count++;
		}
	}
	ck_assert_uint_eq(count, total);

	/* decoding */
	ck_assert_uint_eq(tca_utf8_decode((const unsigned char *)"\xc2\x85", 2, &cp), 2);
	ck_assert_uint_eq(cp, 0x85);
	ck_assert_uint_eq(tca_utf8_decode((const unsigned char *)"\xf3\xa0\x81\x81", 4, &cp), 4);
	ck_assert_uint_eq(cp, 0xE0041);
	ck_assert_uint_eq(tca_utf8_decode((const unsigned char *)"\xc0\x80", 2, &cp), 0);

	/* escaping for the log and the journal */
	n = tca_escape((const unsigned char *)"dev\xc2\x85x", 6, out, sizeof(out));
	ck_assert_str_eq(out, "dev\\u{0085}x");
	ck_assert_uint_eq(n, strlen(out));
	tca_escape((const unsigned char *)"a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, out, sizeof(out));
	ck_assert_str_eq(out, "a\\u{2028}b\\u{2029}");
	tca_escape((const unsigned char *)"\xe2\x80\xae" "exe.txt", 10, out, sizeof(out));
	ck_assert_str_eq(out, "\\u{202E}exe.txt");
	tca_escape((const unsigned char *)"a\nb\x7f\xff\xf3\xa0\x81\x81", 9, out, sizeof(out));
	ck_assert_str_eq(out, "a\\u{000A}b\\u{007F}\\x{FF}\\u{E0041}");
	tca_escape((const unsigned char *)"Ger\xc3\xa4t 7 \\ \xc2\xa0", 13, out, sizeof(out));
	ck_assert_str_eq(out, "Ger\xc3\xa4t 7 \\ \xc2\xa0");	/* as it is */
	/* cut between characters, never inside an escape or a sequence */
	tca_escape((const unsigned char *)"abcdef", 6, out, 6);
	ck_assert_str_eq(out, "ab...");
	tca_escape((const unsigned char *)"abc", 3, out, 4);
	ck_assert_str_eq(out, "abc");
	tca_escape((const unsigned char *)"ab\xe2\x80\xae" "c", 6, out, 10);
	ck_assert_str_eq(out, "ab...");
	tca_escape((const unsigned char *)"\xc3\xa4\xc3\xa4\xc3\xa4", 6, out, 6);
	ck_assert_str_eq(out, "\xc3\xa4...");
	tca_escape((const unsigned char *)"\xc3\xa4\xc3\xa4\xc3\xa4", 6, out, 5);
	ck_assert_str_eq(out, "...");
}
END_TEST

/* /basics/tenant/key-naming: the documented scheme, fixed forever */
START_TEST(test_key_naming)
{
	/* SHA-256("tca/v1/ca-key/t100")[0..16), computed with `printf %s
	 * tca/v1/ca-key/t100 | sha256sum` */
	unsigned char id[TCA_KEY_ID_LEN], id2[TCA_KEY_ID_LEN];
	char label[80], hex[64];
	size_t i;

	tca_tenant_key_id("t100", id);
	for (i = 0; i < sizeof(id); i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	ck_assert_int_eq(test_sh("test \"$(printf %%s tca/v1/ca-key/t100 | sha256sum | cut -c1-32)\" = %s", hex), 0);
	tca_tenant_key_id("t101", id2);
	ck_assert_int_ne(memcmp(id, id2, sizeof(id)), 0);
	tca_tenant_key_label("t100", label, sizeof(label));
	ck_assert_str_eq(label, "tca-ca:t100");
}
END_TEST

/* /basics/secret/pin-file */
START_TEST(test_secret_file)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], err[512];
	char *s = NULL;
	size_t len = 0;

	test_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/pin", dir);
	ck_assert_int_eq(test_write_file(path, "1234\n", 5, 0600), 0);
	ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_OK);
	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(s, "1234");
	tca_secret_free(s, len);

	ck_assert_int_eq(test_write_file(path, "abcd\r\nsecond line\n", 18, 0400), 0);
	ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_OK);
	ck_assert_str_eq(s, "abcd");
	tca_secret_free(s, len);

	/* group- or world-readable: refused, and the message says why without the PIN */
	ck_assert_int_eq(test_write_file(path, "9876\n", 5, 0644), 0);
	ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(err, "0644"));
	ck_assert_ptr_null(strstr(err, "9876"));
	ck_assert_int_eq(test_write_file(path, "9876\n", 5, 0640), 0);
	ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);

	ck_assert_int_eq(test_write_file(path, "\n", 1, 0600), 0);
	ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_int_eq(tca_secret_read_file(dir, &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_int_eq(tca_secret_read_file("/nonexistent/pin", &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
	{
		char big[400];

		memset(big, 'x', sizeof(big));
		ck_assert_int_eq(test_write_file(path, big, sizeof(big), 0600), 0);
		ck_assert_int_eq(tca_secret_read_file(path, &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
	}
	test_sh("rm -rf '%s'", dir);
}
END_TEST

/* /basics/secret/env: value taken, wiped in the environment, unset */
START_TEST(test_secret_env)
{
	char err[256], *s = NULL, *raw;
	size_t len = 0;

	setenv("TCA_TEST_PIN", "5555", 1);
	raw = getenv("TCA_TEST_PIN");
	ck_assert_int_eq(tca_secret_take_env("TCA_TEST_PIN", &s, &len, err, sizeof(err)), TCA_OK);
	ck_assert_str_eq(s, "5555");
	ck_assert_ptr_null(getenv("TCA_TEST_PIN"));
	ck_assert_int_ne(memcmp(raw, "5555", 4), 0);	/* the old value was wiped */
	tca_secret_free(s, len);
	ck_assert_int_eq(tca_secret_take_env("TCA_TEST_PIN", &s, &len, err, sizeof(err)), TCA_ERR_CONFIG);
}
END_TEST

/* /basics/roles/peercred */
START_TEST(test_roles)
{
	struct tca_roles roles;

	memset(&roles, 0, sizeof(roles));
	roles.admin_uids.n = 1;
	roles.admin_uids.ids[0] = 0;
	roles.frontend_uids.n = 2;
	roles.frontend_uids.ids[0] = 1001;
	roles.frontend_uids.ids[1] = 1002;
	roles.frontend_gids.n = 1;
	roles.frontend_gids.ids[0] = 500;
	roles.admin_gids.n = 1;
	roles.admin_gids.ids[0] = 600;
	ck_assert_int_eq(tca_role_of(&roles, 0, 0), TCA_ROLE_ADMIN);
	ck_assert_int_eq(tca_role_of(&roles, 1001, 100), TCA_ROLE_FRONTEND);
	ck_assert_int_eq(tca_role_of(&roles, 4000, 500), TCA_ROLE_FRONTEND);
	ck_assert_int_eq(tca_role_of(&roles, 1001, 600), TCA_ROLE_ADMIN);
	ck_assert_int_eq(tca_role_of(&roles, 4000, 4000), TCA_ROLE_NONE);
	ck_assert_str_eq(tca_role_name(TCA_ROLE_NONE), "none");
}
END_TEST

/* /basics/text: JSON strings always parse, sanitizing, hex */
START_TEST(test_text)
{
	static const unsigned char in[] = "a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z";
	char *buf = NULL, out[16], hex[9];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	tca_json_string(f, in, sizeof(in) - 1);
	fclose(f);
	/* quote, backslash, newline and control escaped; é kept; 0xff and the
	 * encoded surrogate replaced */
	ck_assert_str_eq(buf, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffdz\"");
	free(buf);
	tca_sanitize((const unsigned char *)"dev\n\"1\"", 7, out, sizeof(out));
	ck_assert_str_eq(out, "dev??1?");
	tca_sanitize((const unsigned char *)"0123456789abcdefghij", 20, out, sizeof(out));
	ck_assert_str_eq(out, "0123456789ab...");
	tca_hex((const unsigned char *)"\x00\x7f\x80\xff", 4, hex);
	ck_assert_str_eq(hex, "007f80ff");
	ck_assert_int_eq(tca_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 1);
	ck_assert_int_eq(tca_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
	ck_assert_int_eq(tca_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3), 0);
	{
		char ts[32];

		tca_iso_time(1790906400, ts, sizeof(ts));
		ck_assert_str_eq(ts, "2026-10-02T02:00:00Z");
		tca_iso_time(0, ts, sizeof(ts));
		ck_assert_str_eq(ts, "1970-01-01T00:00:00Z");
	}
}
END_TEST

/* /basics/text/log: a log record is one line; peer text in it is escaped */
START_TEST(test_log_escape)
{
	char path[] = "/tmp/tca-log-XXXXXX", buf[512];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	FILE *f;
	size_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(saved, 0);
	tca_log_init("check_basics", 0, LOG_INFO);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	log_info("tenant t1: issue device %s serial 01", "dev-\xe2\x80\xae" "1gpj\xc2\x85"
	    "x\xe2\x80\xa8y\nz\xff");
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	ck_assert_ptr_nonnull(f = fdopen(fd, "r"));
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	ck_assert_msg(strstr(buf, "issue device dev-\\u{202E}1gpj\\u{0085}x\\u{2028}y"
	    "\\u{000A}z\\x{FF} serial 01\n") != NULL, "%s", buf);
	ck_assert_ptr_null(strstr(buf, "\xe2\x80"));
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);	/* one line */
}
END_TEST

/* /basics/ca-expiry: expired at notAfter, expiring within the window (0: 30 days) */
START_TEST(test_ca_expiry)
{
	const time_t now = 1790906400;

	ck_assert_int_eq(tca_ca_expiry_of(now - 1, now, 30), TCA_CA_EXPIRED);
	ck_assert_int_eq(tca_ca_expiry_of(now, now, 30), TCA_CA_EXPIRED);
	ck_assert_int_eq(tca_ca_expiry_of(now + 1, now, 30), TCA_CA_EXPIRING);
	ck_assert_int_eq(tca_ca_expiry_of(now + 30 * 86400, now, 30), TCA_CA_EXPIRING);
	ck_assert_int_eq(tca_ca_expiry_of(now + 30 * 86400 + 1, now, 30), TCA_CA_VALID);
	ck_assert_int_eq(tca_ca_expiry_of(now + 30 * 86400, now, 0), TCA_CA_EXPIRING);
	ck_assert_int_eq(tca_ca_expiry_of(now + 30 * 86400 + 1, now, 0), TCA_CA_VALID);
	ck_assert_int_eq(tca_ca_expiry_of(now + 59 * 86400, now, 60), TCA_CA_EXPIRING);
	ck_assert_int_eq(tca_ca_expiry_of(now + 1095LL * 86400, now, 3650), TCA_CA_EXPIRING);
}
END_TEST

static Suite *
basics_suite(void)
{
	Suite *s = suite_create("basics");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_error_codes);
	tcase_add_test(tc, test_key_types);
	tcase_add_test(tc, test_key_table);
	tcase_add_test(tc, test_tenant_ids);
	tcase_add_test(tc, test_device_ids);
	tcase_add_test(tc, test_key_naming);
	tcase_add_test(tc, test_secret_file);
	tcase_add_test(tc, test_secret_env);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_text_categories);
	tcase_add_test(tc, test_log_escape);
	tcase_add_test(tc, test_ca_expiry);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(basics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
