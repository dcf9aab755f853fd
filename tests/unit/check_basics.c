/*
 * check_basics.c - error codes, key types, identifiers, PIN files, roles.
 *
 * /basics/error/...   wire code mapping round-trips
 * /basics/tenant/...  tenant and device id validation, key naming
 * /basics/secret/...  PIN file mode checks, wiping, env handling
 * /basics/roles/...   SO_PEERCRED role decision
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

#include "keytype.h"
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
