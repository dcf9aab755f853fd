/*
 * check_token.c - the PKCS#11 token layer against a real SoftHSMv2 token.
 *
 * /token/open/...      PIN handling, URI selection, pool sizing, status
 * /token/keys/...      generation, attributes, signing + OpenSSL verification,
 *                      index persistence, destroy, concurrency, broken sessions
 * /token/init/...      provisioning a fresh token (ca-admin token init)
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"
#include <p11-kit/p11-kit.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "keytype.h"
#include "tca-error.h"
#include "testutil.h"
#include "token.h"

static struct test_token tt;

static void
setup_token(void)
{
	test_token_create(&tt, "tca-unit");
}

static void
setup_store(void)
{
	test_token_store_create(&tt);
}

static void
teardown(void)
{
	test_token_destroy(&tt);
}

static void
params_init(struct tca_token_params *p, unsigned int pool)
{
	memset(p, 0, sizeof(*p));
	p->module_path = test_softhsm_module();
	p->token_uri = tt.uri;
	p->pool_size = pool;
}

static tca_token *
open_ok(unsigned int pool)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	char err[256] = "";
	int r;

	params_init(&p, pool);
	r = tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "tca_token_open: %d %s", r, err);
	ck_assert_ptr_nonnull(tok);
	return tok;
}

/* 16-byte id like the engine's: SHA-256(name) truncated */
static void
make_id(const char *name, unsigned char id[16])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	ck_assert_int_eq(EVP_Digest(name, strlen(name), md, NULL, EVP_sha256(), NULL), 1);
	memcpy(id, md, 16);
}

/* The old argument order, for the init tests: a given SO PIN. */
static int
token_init(const char *module, const char *label, const char *so, size_t so_len,
    const char *pin, size_t pin_len, unsigned long *slot, char *err, size_t errlen)
{
	struct tca_token_init_params p;

	memset(&p, 0, sizeof(p));
	p.module_path = module;
	p.label = label;
	p.so_pin = so;
	p.so_pin_len = so_len;
	p.user_pin = pin;
	p.user_pin_len = pin_len;
	return tca_token_init(&p, slot, err, errlen);
}

static int
verify(EVP_PKEY *pub, enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = NULL;
	int ok;

	ck_assert_ptr_nonnull(ctx);
	if (alg == TCA_SIG_ECDSA_SHA256 || alg == TCA_SIG_RSA_PKCS1_SHA256)
		md = EVP_sha256();
	else if (alg == TCA_SIG_ECDSA_SHA384)
		md = EVP_sha384();
	ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---------------------------------------------------------------- open */

/* /token/open/good-pin */
START_TEST(test_open_good_pin)
{
	tca_token *tok = open_ok(3);
	struct tca_token_status st;

	ck_assert_uint_eq(tca_token_key_count(tok), 0);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_str_eq(st.label, "tca-unit");
	ck_assert_str_eq(st.manufacturer, "SoftHSM project");
	ck_assert_str_eq(st.model, "SoftHSM v2");
	ck_assert_uint_gt(strlen(st.serial), 0);
	ck_assert_ptr_null(strchr(st.serial, ' '));
	ck_assert_uint_eq(st.pool_size, 3);
	ck_assert_uint_eq(st.sessions_busy, 0);
	ck_assert_uint_eq(st.keys, 0);
	ck_assert_uint_eq(st.signatures, 0);
	tca_token_close(tok);
	tca_token_close(NULL);
}
END_TEST

/* /token/open/wrong-pin */
START_TEST(test_open_wrong_pin)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	char err[256] = "";

	params_init(&p, 2);
	ck_assert_int_eq(tca_token_open(&p, "98765", 5, &tok, err, sizeof(err)),
	    TCA_ERR_UNAUTHORIZED);
	ck_assert_ptr_null(tok);
	ck_assert_ptr_nonnull(strstr(err, "CKR_PIN_INCORRECT"));
	ck_assert_ptr_null(strstr(err, "98765"));
	/* the right PIN still works afterwards */
	tca_token_close(open_ok(1));
}
END_TEST

/* /token/open/uri-no-match */
START_TEST(test_open_uri_no_match)
{
	struct tca_token_params p;
	struct tca_token_status st;
	tca_token *tok = NULL;
	char err[256] = "", uri[64];

	params_init(&p, 1);
	p.token_uri = "pkcs11:token=no-such-token";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_ptr_null(tok);
	ck_assert_ptr_nonnull(strstr(err, "no token matches URI pkcs11:token=no-such-token"));

	p.token_uri = "pkcs11:manufacturer=Someone%20Else";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	p.token_uri = "https://example.com/";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	p.token_uri = "";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	/* matching on the module and the manufacturer works too */
	p.token_uri = "pkcs11:manufacturer=SoftHSM%20project;token=tca-unit";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_OK);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	tca_token_close(tok);
	tok = NULL;
	snprintf(uri, sizeof(uri), "pkcs11:slot-id=%lu", st.slot_id);
	p.token_uri = uri;
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_OK);
	tca_token_close(tok);
	tok = NULL;
	p.token_uri = "pkcs11:library-description=Not%20This%20Module;token=tca-unit";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	p.token_uri = "pkcs11:token=tca-unit;object=some-key";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "names more than a token"));
	p.module_path = "/nonexistent/libnothing.so";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_TOKEN_UNAVAILABLE);
	ck_assert_ptr_null(tok);
}
END_TEST

/* /token/open/pin-value-refused */
START_TEST(test_open_pin_value)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	char err[256] = "";

	params_init(&p, 1);
	p.token_uri = "pkcs11:token=tca-unit?pin-value=" TEST_PIN "4321";
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_ptr_null(tok);
	ck_assert_ptr_nonnull(strstr(err, "pin-value"));
	ck_assert_ptr_null(strstr(err, TEST_PIN "4321"));
}
END_TEST

/* /token/open/pool-capped */
START_TEST(test_open_pool_capped)
{
	struct tca_token_params p;
	struct tca_token_status st;
	tca_token *tok = NULL;
	char err[256] = "";

	params_init(&p, 8);
	p.quirks.max_sessions = 2;
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_OK);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_uint_eq(st.pool_size, 2);
	tca_token_close(tok);
	tok = NULL;
	params_init(&p, 0);
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
}
END_TEST

/* ---------------------------------------------------------------- keys */

struct type_case {
	enum tca_key_type type;
	enum tca_sig_alg alg;
	const char *evp_name;
	int bits;
	int iterations;
};

static const struct type_case type_cases[] = {
	{ TCA_KEY_EC_P256, TCA_SIG_ECDSA_SHA256, "EC", 256, 200 },
	{ TCA_KEY_EC_P384, TCA_SIG_ECDSA_SHA384, "EC", 384, 200 },
	{ TCA_KEY_RSA_3072, TCA_SIG_RSA_PKCS1_SHA256, "RSA", 3072, 5 },
	{ TCA_KEY_ED25519, TCA_SIG_ED25519, "ED25519", 256, 50 },
};

/* /token/keys/generate-sign-verify (one per key type) */
START_TEST(test_generate_sign_verify)
{
	const struct type_case *tc = &type_cases[_i];
	tca_token *tok = open_ok(2);
	struct tca_key_attrs ka;
	unsigned char id[16], msg[300], sig[512];
	size_t sig_len, min_len = SIZE_MAX, max_len = 0;
	enum tca_key_type kt = TCA_KEY_NONE;
	EVP_PKEY *pub = NULL;
	char name[48], label[64];
	int i;

	snprintf(name, sizeof(name), "gsv-%s", tca_key_type_name(tc->type));
	snprintf(label, sizeof(label), "tca-ca:%s", name);
	make_id(name, id);
	ck_assert_int_eq(tca_token_find_key(tok, id, sizeof(id), NULL), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(tca_token_generate_key(tok, tc->type, id, sizeof(id), label, &pub), TCA_OK);
	ck_assert_ptr_nonnull(pub);
	ck_assert_msg(EVP_PKEY_is_a(pub, tc->evp_name), "public key is not %s", tc->evp_name);
	ck_assert_int_eq(EVP_PKEY_get_bits(pub), tc->bits);
	ck_assert_int_eq(tca_token_find_key(tok, id, sizeof(id), &kt), TCA_OK);
	ck_assert_int_eq(kt, tc->type);
	ck_assert_uint_eq(tca_token_key_count(tok), 1);

	ck_assert_int_eq(tca_token_key_attrs(tok, id, sizeof(id), &ka), TCA_OK);
	ck_assert_int_eq(ka.token, 1);
	ck_assert_int_eq(ka.private_, 1);
	ck_assert_int_eq(ka.sensitive, 1);
	ck_assert_int_eq(ka.extractable, 0);
	ck_assert_int_eq(ka.sign, 1);
	ck_assert_int_eq(ka.always_sensitive, 1);
	ck_assert_int_eq(ka.never_extractable, 1);
	ck_assert_int_eq(ka.value_readable, 0);

	for (i = 0; i < tc->iterations; i++) {
		size_t msg_len = 1 + (size_t)i % sizeof(msg);

		memset(msg, 'a' + i % 26, msg_len);
		msg[0] = (unsigned char)i;
		sig_len = sizeof(sig);
		ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), tc->alg, msg, msg_len,
		    sig, &sig_len), TCA_OK);
		ck_assert_msg(verify(pub, tc->alg, msg, msg_len, sig, sig_len),
		    "signature %d (%zu bytes) does not verify", i, sig_len);
		if (sig_len < min_len)
			min_len = sig_len;
		if (sig_len > max_len)
			max_len = sig_len;
		/* a tampered message must not verify */
		if (i % 20 == 0) {
			msg[msg_len - 1] ^= 1;
			ck_assert(!verify(pub, tc->alg, msg, msg_len, sig, sig_len));
		}
	}
	/* a message of CRL size (100,000 entries are 4.7 MB): the token layer
	 * once refused anything above 64 KiB, so large CRLs could not be signed */
	{
		size_t big_len = 5 * 1024 * 1024;
		unsigned char *big = malloc(big_len);

		ck_assert_ptr_nonnull(big);
		ck_assert_int_eq(RAND_bytes(big, (int)big_len), 1);
		sig_len = sizeof(sig);
		ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), tc->alg, big, big_len,
		    sig, &sig_len), TCA_OK);
		ck_assert_msg(verify(pub, tc->alg, big, big_len, sig, sig_len),
		    "signature over 5 MiB does not verify");
		big[big_len / 2] ^= 1;
		ck_assert(!verify(pub, tc->alg, big, big_len, sig, sig_len));
		free(big);
	}
	switch (tc->alg) {
	case TCA_SIG_ECDSA_SHA256:
	case TCA_SIG_ECDSA_SHA384:
		/* DER lengths vary with the high bits of r and s */
		ck_assert_uint_lt(min_len, max_len);
		ck_assert_uint_le(max_len, tc->alg == TCA_SIG_ECDSA_SHA256 ? 72 : 104);
		break;
	case TCA_SIG_RSA_PKCS1_SHA256:
		ck_assert_uint_eq(min_len, 384);
		ck_assert_uint_eq(max_len, 384);
		break;
	default:
		ck_assert_uint_eq(min_len, 64);
		ck_assert_uint_eq(max_len, 64);
	}
	EVP_PKEY_free(pub);
	tca_token_close(tok);
}
END_TEST

/* /token/keys/duplicate-id */
START_TEST(test_generate_duplicate)
{
	tca_token *tok = open_ok(1);
	unsigned char id[16];
	unsigned long n = 0;
	EVP_PKEY *pub = NULL;

	make_id("dup", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:dup", &pub), TCA_OK);
	EVP_PKEY_free(pub);
	pub = NULL;
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P384, id, sizeof(id),
	    "tca-ca:dup", &pub), TCA_ERR_ALREADY_EXISTS);
	ck_assert_ptr_null(pub);
	ck_assert_int_eq(tca_token_count_objects(tok, id, sizeof(id), &n), TCA_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_NONE, id, 1, "x", &pub),
	    TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, 0, "x", &pub),
	    TCA_ERR_INVALID_ARG);
	tca_token_close(tok);
}
END_TEST

/* /token/keys/no-ed25519-quirk */
START_TEST(test_generate_no_ed25519)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	unsigned char id[16];
	unsigned long n = 1;
	EVP_PKEY *pub = NULL;
	char err[256];

	params_init(&p, 1);
	p.quirks.no_ed25519 = 1;
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_OK);
	make_id("noed", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_ED25519, id, sizeof(id),
	    "tca-ca:noed", &pub), TCA_ERR_POLICY_VIOLATION);
	ck_assert_ptr_null(pub);
	ck_assert_int_eq(tca_token_count_objects(tok, id, sizeof(id), &n), TCA_OK);
	ck_assert_uint_eq(n, 0);
	tca_token_close(tok);
}
END_TEST

struct seen {
	int n;
	int p256, ed;
};

static int
foreach_cb(void *ctx, const unsigned char *id, size_t id_len, const char *label,
    enum tca_key_type type)
{
	struct seen *s = ctx;

	s->n++;
	if (strcmp(label, "tca-ca:reopen-p256") == 0 && type == TCA_KEY_EC_P256 && id_len == 16)
		s->p256++;
	if (strcmp(label, "tca-ca:reopen-ed") == 0 && type == TCA_KEY_ED25519)
		s->ed++;
	return 0;
}

static int
stop_cb(void *ctx, const unsigned char *id, size_t id_len, const char *label,
    enum tca_key_type type)
{
	(*(int *)ctx)++;
	return 42;
}

/* /token/keys/index-survives-reopen */
START_TEST(test_index_reopen)
{
	static const struct {
		const char *name;
		enum tca_key_type type;
		enum tca_sig_alg alg;
	} keys[] = {
		{ "reopen-p256", TCA_KEY_EC_P256, TCA_SIG_ECDSA_SHA256 },
		{ "reopen-p384", TCA_KEY_EC_P384, TCA_SIG_ECDSA_SHA384 },
		{ "reopen-ed", TCA_KEY_ED25519, TCA_SIG_ED25519 },
		{ "reopen-rsa", TCA_KEY_RSA_3072, TCA_SIG_RSA_PKCS1_SHA256 },
	};
	EVP_PKEY *pubs[4] = { NULL, NULL, NULL, NULL };
	unsigned char id[16], sig[512];
	const unsigned char msg[] = "tbs certificate after restart";
	enum tca_key_type kt;
	struct seen seen;
	size_t i, sig_len;
	char label[64];
	int calls = 0;
	tca_token *tok = open_ok(2);

	for (i = 0; i < 4; i++) {
		make_id(keys[i].name, id);
		snprintf(label, sizeof(label), "tca-ca:%s", keys[i].name);
		ck_assert_int_eq(tca_token_generate_key(tok, keys[i].type, id, sizeof(id), label,
		    &pubs[i]), TCA_OK);
	}
	tca_token_close(tok);

	tok = open_ok(2);
	ck_assert_uint_eq(tca_token_key_count(tok), 4);
	for (i = 0; i < 4; i++) {
		make_id(keys[i].name, id);
		kt = TCA_KEY_NONE;
		ck_assert_int_eq(tca_token_find_key(tok, id, sizeof(id), &kt), TCA_OK);
		ck_assert_int_eq(kt, keys[i].type);
		sig_len = sizeof(sig);
		ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), keys[i].alg, msg,
		    sizeof(msg) - 1, sig, &sig_len), TCA_OK);
		ck_assert(verify(pubs[i], keys[i].alg, msg, sizeof(msg) - 1, sig, sig_len));
	}
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(tca_token_foreach_key(tok, foreach_cb, &seen), 0);
	ck_assert_int_eq(seen.n, 4);
	ck_assert_int_eq(seen.p256, 1);
	ck_assert_int_eq(seen.ed, 1);
	ck_assert_int_eq(tca_token_foreach_key(tok, stop_cb, &calls), 42);
	ck_assert_int_eq(calls, 1);
	for (i = 0; i < 4; i++)
		EVP_PKEY_free(pubs[i]);
	tca_token_close(tok);
}
END_TEST

/* /token/keys/destroy */
START_TEST(test_destroy)
{
	tca_token *tok = open_ok(1);
	unsigned char id[16], other[16], sig[128];
	unsigned long n = 0;
	size_t sig_len = sizeof(sig);
	EVP_PKEY *pub = NULL;

	make_id("destroy-me", id);
	make_id("keep-me", other);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:destroy-me", &pub), TCA_OK);
	EVP_PKEY_free(pub);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_ED25519, other, sizeof(other),
	    "tca-ca:keep-me", &pub), TCA_OK);
	EVP_PKEY_free(pub);
	ck_assert_int_eq(tca_token_count_objects(tok, id, sizeof(id), &n), TCA_OK);
	ck_assert_uint_eq(n, 2);

	n = 0;
	ck_assert_int_eq(tca_token_destroy_key(tok, id, sizeof(id), &n), TCA_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(tca_token_count_objects(tok, id, sizeof(id), &n), TCA_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(tca_token_find_key(tok, id, sizeof(id), NULL), TCA_ERR_NOT_FOUND);
	/* a CA whose key is gone is a token problem, never "no CA" (issue 10) */
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"x", 1, sig, &sig_len), TCA_ERR_TOKEN_UNAVAILABLE);
	ck_assert_int_eq(tca_token_check_key(tok, id, sizeof(id), NULL), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(tca_token_destroy_key(tok, id, sizeof(id), &n), TCA_ERR_NOT_FOUND);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(tca_token_key_attrs(tok, id, sizeof(id), &(struct tca_key_attrs){ 0 }),
	    TCA_ERR_NOT_FOUND);
	/* the other key is untouched */
	ck_assert_int_eq(tca_token_find_key(tok, other, sizeof(other), NULL), TCA_OK);
	ck_assert_int_eq(tca_token_count_objects(tok, other, sizeof(other), &n), TCA_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(tca_token_key_count(tok), 1);
	tca_token_close(tok);

	/* and it stays gone */
	tok = open_ok(1);
	ck_assert_int_eq(tca_token_find_key(tok, id, sizeof(id), NULL), TCA_ERR_NOT_FOUND);
	ck_assert_uint_eq(tca_token_key_count(tok), 1);
	tca_token_close(tok);
}
END_TEST

/* /token/keys/sign-argument-checks */
START_TEST(test_sign_bad_args)
{
	tca_token *tok = open_ok(1);
	unsigned char id[16], ed[16], sig[512];
	unsigned char *big = NULL;
	size_t sig_len;
	EVP_PKEY *pub = NULL;
	struct tca_token_status st;

	make_id("args-p256", id);
	make_id("args-ed", ed);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:args-p256", &pub), TCA_OK);
	EVP_PKEY_free(pub);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_ED25519, ed, sizeof(ed),
	    "tca-ca:args-ed", &pub), TCA_OK);
	EVP_PKEY_free(pub);
	/* algorithm must fit the key */
	sig_len = sizeof(sig);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA384,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_RSA_PKCS1_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ED25519,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_sign(tok, ed, sizeof(ed), TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_NONE,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	/* output buffer too small */
	sig_len = 40;
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	sig_len = 63;
	ck_assert_int_eq(tca_token_sign(tok, ed, sizeof(ed), TCA_SIG_ED25519,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	/* message bound */
	big = calloc(1, TCA_TOKEN_MAX_MSG + 1);
	ck_assert_ptr_nonnull(big);
	sig_len = sizeof(sig);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256, big,
	    TCA_TOKEN_MAX_MSG + 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	sig_len = sizeof(sig);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256, big,
	    TCA_TOKEN_MAX_MSG, sig, &sig_len), TCA_OK);
	free(big);
	/* none of the refusals reached the token */
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_uint_eq(st.signatures, 1);
	ck_assert_uint_eq(st.sign_errors, 0);
	ck_assert_int_eq(tca_token_sign(tok, id, 0, TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	tca_token_close(tok);
}
END_TEST

#define N_THREADS 8
#define SIGS_PER_THREAD 40

struct thread_arg {
	tca_token *tok;
	const unsigned char *id;
	EVP_PKEY *pub;
	int idx, ok, failed;
};

static void *
sign_thread(void *p)
{
	struct thread_arg *a = p;
	unsigned char msg[64], sig[128];
	size_t sig_len;
	int i;

	for (i = 0; i < SIGS_PER_THREAD; i++) {
		snprintf((char *)msg, sizeof(msg), "thread %d message %d", a->idx, i);
		sig_len = sizeof(sig);
		if (tca_token_sign(a->tok, a->id, 16, TCA_SIG_ECDSA_SHA256, msg,
		    strlen((char *)msg), sig, &sig_len) == TCA_OK &&
		    verify(a->pub, TCA_SIG_ECDSA_SHA256, msg, strlen((char *)msg), sig, sig_len))
			a->ok++;
		else
			a->failed++;
	}
	return NULL;
}

/* /token/keys/concurrent-signing */
START_TEST(test_concurrent_sign)
{
	tca_token *tok = open_ok(2);
	struct thread_arg args[N_THREADS];
	pthread_t th[N_THREADS];
	struct tca_token_status st;
	unsigned char id[16];
	EVP_PKEY *pub = NULL;
	int i, ok = 0, failed = 0;

	make_id("concurrent", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:concurrent", &pub), TCA_OK);
	for (i = 0; i < N_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].tok = tok;
		args[i].id = id;
		args[i].pub = pub;
		args[i].idx = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, sign_thread, &args[i]), 0);
	}
	for (i = 0; i < N_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ok += args[i].ok;
		failed += args[i].failed;
	}
	ck_assert_int_eq(failed, 0);
	ck_assert_int_eq(ok, N_THREADS * SIGS_PER_THREAD);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_uint_eq(st.pool_size, 2);
	ck_assert_uint_eq(st.sessions_busy, 0);
	ck_assert_uint_eq(st.signatures, N_THREADS * SIGS_PER_THREAD);
	ck_assert_uint_eq(st.sign_errors, 0);
	EVP_PKEY_free(pub);
	tca_token_close(tok);
}
END_TEST

/* /token/keys/concurrent-generate-and-sign */
START_TEST(test_concurrent_generate)
{
	tca_token *tok = open_ok(2);
	struct thread_arg args[2];
	pthread_t th[2];
	unsigned char id[16], gid[16];
	EVP_PKEY *pub = NULL, *gpub = NULL;
	char name[32];
	int i;

	make_id("cg-sign", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:cg-sign", &pub), TCA_OK);
	for (i = 0; i < 2; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].tok = tok;
		args[i].id = id;
		args[i].pub = pub;
		args[i].idx = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, sign_thread, &args[i]), 0);
	}
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "cg-gen-%d", i);
		make_id(name, gid);
		ck_assert_int_eq(tca_token_generate_key(tok, i % 2 ? TCA_KEY_ED25519 :
		    TCA_KEY_EC_P384, gid, sizeof(gid), name, &gpub), TCA_OK);
		EVP_PKEY_free(gpub);
		gpub = NULL;
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(args[i].failed, 0);
		ck_assert_int_eq(args[i].ok, SIGS_PER_THREAD);
	}
	ck_assert_uint_eq(tca_token_key_count(tok), 11);
	EVP_PKEY_free(pub);
	tca_token_close(tok);
}
END_TEST

/*
 * /token/keys/broken-session-replaced
 * Closes the pool's first session behind the token layer's back (same
 * process, same module instance); the next signature must notice
 * CKR_SESSION_HANDLE_INVALID, replace the session and succeed on the retry.
 */
START_TEST(test_broken_session)
{
	tca_token *tok = open_ok(2);
	CK_FUNCTION_LIST_PTR fl;
	struct tca_token_status st;
	unsigned char id[16], sig[128];
	const unsigned char msg[] = "after a session died";
	size_t sig_len;
	EVP_PKEY *pub = NULL;
	CK_SESSION_INFO si;
	CK_SESSION_HANDLE h;
	int i, closed = 0;

	make_id("broken", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:broken", &pub), TCA_OK);
	fl = p11_kit_module_load(test_softhsm_module(), P11_KIT_MODULE_UNMANAGED);
	ck_assert_ptr_nonnull(fl);
	/* SoftHSMv2 numbers sessions from 1: close the ones the pool opened */
	for (h = 1; h <= 2; h++) {
		if (fl->C_GetSessionInfo(h, &si) == CKR_OK) {
			ck_assert_int_eq(si.state, CKS_RW_USER_FUNCTIONS);
			if (h == 1) {
				ck_assert_int_eq(fl->C_CloseSession(h), CKR_OK);
				closed++;
			}
		}
	}
	ck_assert_int_eq(closed, 1);
	for (i = 0; i < 6; i++) {
		sig_len = sizeof(sig);
		ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256, msg,
		    sizeof(msg) - 1, sig, &sig_len), TCA_OK);
		ck_assert(verify(pub, TCA_SIG_ECDSA_SHA256, msg, sizeof(msg) - 1, sig, sig_len));
	}
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_uint_eq(st.signatures, 6);
	/* the dead session was replaced and the signature retried: no caller saw
	 * an error */
	ck_assert_uint_eq(st.sign_errors, 0);
	ck_assert_uint_eq(st.sessions_replaced, 1);
	ck_assert_str_eq(st.health, "ok");
	ck_assert_uint_eq(st.pool_size, 2);
	ck_assert_uint_eq(st.sessions_busy, 0);
	p11_kit_module_release(fl);
	EVP_PKEY_free(pub);
	tca_token_close(tok);
}
END_TEST

/* Generates a key pair behind the token layer's back (the session shares
 * the application's login). */
static void
raw_generate(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE h, CK_MECHANISM_TYPE m,
    CK_ULONG bits, const unsigned char *id, size_t id_len)
{
	static const unsigned char p256[] = {
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
	};
	static const unsigned char f4[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL t = CK_TRUE;
	CK_MECHANISM mech = { m, NULL, 0 };
	CK_ATTRIBUTE pub[4], priv[3];
	CK_ULONG npub = 0, npriv = 0;
	CK_OBJECT_HANDLE hp, hk;

	pub[npub].type = CKA_TOKEN; pub[npub].pValue = &t; pub[npub++].ulValueLen = 1;
	priv[npriv].type = CKA_TOKEN; priv[npriv].pValue = &t; priv[npriv++].ulValueLen = 1;
	priv[npriv].type = CKA_SIGN; priv[npriv].pValue = &t; priv[npriv++].ulValueLen = 1;
	if (m == CKM_EC_KEY_PAIR_GEN) {
		pub[npub].type = CKA_EC_PARAMS; pub[npub].pValue = (void *)p256;
		pub[npub++].ulValueLen = sizeof(p256);
	} else {
		pub[npub].type = CKA_MODULUS_BITS; pub[npub].pValue = &bits;
		pub[npub++].ulValueLen = sizeof(bits);
		pub[npub].type = CKA_PUBLIC_EXPONENT; pub[npub].pValue = (void *)f4;
		pub[npub++].ulValueLen = sizeof(f4);
	}
	if (id != NULL) {
		priv[npriv].type = CKA_ID; priv[npriv].pValue = (void *)id;
		priv[npriv++].ulValueLen = id_len;
	}
	ck_assert_int_eq(fl->C_GenerateKeyPair(h, &mech, pub, npub, priv, npriv, &hp, &hk),
	    CKR_OK);
}

/*
 * /token/keys/index-foreign-keys
 * Keys made by other tools: no CKA_ID (skipped), an over-long CKA_ID
 * (skipped), RSA-2048 (indexed as TCA_KEY_NONE: the id is taken but the key
 * cannot sign for us).
 */
START_TEST(test_index_foreign_keys)
{
	tca_token *tok = open_ok(1);
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CK_SESSION_HANDLE h;
	unsigned char rsa_id[3] = { 1, 2, 3 }, long_id[200], ec_id[16], sig[512];
	enum tca_key_type kt = TCA_KEY_EC_P256;
	size_t sig_len = sizeof(sig);
	struct tca_token_status st;

	memset(long_id, 7, sizeof(long_id));
	make_id("foreign-ec", ec_id);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	fl = p11_kit_module_load(test_softhsm_module(), P11_KIT_MODULE_UNMANAGED);
	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	ck_assert_int_eq(fl->C_OpenSession(st.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &h), CKR_OK);
	raw_generate(fl, h, CKM_EC_KEY_PAIR_GEN, 0, NULL, 0);
	raw_generate(fl, h, CKM_EC_KEY_PAIR_GEN, 0, long_id, sizeof(long_id));
	raw_generate(fl, h, CKM_EC_KEY_PAIR_GEN, 0, ec_id, sizeof(ec_id));
	raw_generate(fl, h, CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, rsa_id, sizeof(rsa_id));
	ck_assert_int_eq(fl->C_CloseSession(h), CKR_OK);
	p11_kit_module_release(fl);
	/* made behind our back: not in the index until the next open */
	ck_assert_uint_eq(tca_token_key_count(tok), 0);
	tca_token_close(tok);

	tok = open_ok(1);
	ck_assert_uint_eq(tca_token_key_count(tok), 2);
	ck_assert_int_eq(tca_token_find_key(tok, rsa_id, sizeof(rsa_id), &kt), TCA_OK);
	ck_assert_int_eq(kt, TCA_KEY_NONE);
	ck_assert_int_eq(tca_token_sign(tok, rsa_id, sizeof(rsa_id), TCA_SIG_RSA_PKCS1_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_token_find_key(tok, ec_id, sizeof(ec_id), &kt), TCA_OK);
	ck_assert_int_eq(kt, TCA_KEY_EC_P256);
	sig_len = sizeof(sig);
	ck_assert_int_eq(tca_token_sign(tok, ec_id, sizeof(ec_id), TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"m", 1, sig, &sig_len), TCA_OK);
	ck_assert_int_eq(tca_token_find_key(tok, long_id, 128, NULL), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(tca_token_find_key(tok, long_id, sizeof(long_id), NULL),
	    TCA_ERR_INVALID_ARG);
	tca_token_close(tok);
}
END_TEST

/* ---------------------------------------------------------------- init */

/* /token/init/fresh-then-open */
START_TEST(test_init_fresh)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	unsigned long slot = 0;
	unsigned char id[16], sig[128];
	size_t sig_len = sizeof(sig);
	EVP_PKEY *pub = NULL;
	struct tca_token_status st;
	char err[256] = "";
	int r;

	r = token_init(test_softhsm_module(), "tca-fresh", "so-secret", 9, "user-pin-1", 10,
	    &slot, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "tca_token_init: %d %s", r, err);
	ck_assert_uint_ne(slot, 0);

	memset(&p, 0, sizeof(p));
	p.module_path = test_softhsm_module();
	p.token_uri = "pkcs11:token=tca-fresh";
	p.pool_size = 2;
	ck_assert_int_eq(tca_token_open(&p, "wrong-pin", 9, &tok, err, sizeof(err)),
	    TCA_ERR_UNAUTHORIZED);
	r = tca_token_open(&p, "user-pin-1", 10, &tok, err, sizeof(err));
	ck_assert_msg(r == TCA_OK, "tca_token_open: %d %s", r, err);
	ck_assert_int_eq(tca_token_get_status(tok, &st), TCA_OK);
	ck_assert_str_eq(st.label, "tca-fresh");
	ck_assert_uint_eq(st.slot_id, slot);
	make_id("fresh", id);
	ck_assert_int_eq(tca_token_generate_key(tok, TCA_KEY_EC_P256, id, sizeof(id),
	    "tca-ca:fresh", &pub), TCA_OK);
	ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), TCA_SIG_ECDSA_SHA256,
	    (const unsigned char *)"hello", 5, sig, &sig_len), TCA_OK);
	ck_assert(verify(pub, TCA_SIG_ECDSA_SHA256, (const unsigned char *)"hello", 5, sig,
	    sig_len));
	EVP_PKEY_free(pub);
	tca_token_close(tok);
}
END_TEST

/* /token/init/same-label-twice */
START_TEST(test_init_twice)
{
	unsigned long slot = 0, slot2 = 0;
	char err[256] = "";

	ck_assert_int_eq(token_init(test_softhsm_module(), "tca-twice", "so-secret", 9,
	    "user-pin-1", 10, &slot, err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(token_init(test_softhsm_module(), "tca-twice", "so-secret", 9,
	    "user-pin-1", 10, &slot2, err, sizeof(err)), TCA_ERR_ALREADY_EXISTS);
	ck_assert_ptr_nonnull(strstr(err, "already"));
	ck_assert_ptr_null(strstr(err, "so-secret"));
	/* a different label still gets a slot of its own */
	ck_assert_int_eq(token_init(test_softhsm_module(), "tca-other", "so-secret", 9,
	    "user-pin-1", 10, &slot2, err, sizeof(err)), TCA_OK);
	ck_assert_uint_ne(slot, slot2);
	ck_assert_int_eq(token_init(test_softhsm_module(),
	    "a-label-that-is-longer-than-32-bytes", "so-secret", 9, "user-pin-1", 10, NULL,
	    err, sizeof(err)), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(token_init("/nonexistent/lib.so", "x", "so-secret", 9,
	    "user-pin-1", 10, NULL, err, sizeof(err)), TCA_ERR_TOKEN_UNAVAILABLE);
}
END_TEST

/* /token/init/ambiguous-uri */
START_TEST(test_open_ambiguous_uri)
{
	struct tca_token_params p;
	tca_token *tok = NULL;
	char err[256] = "";

	ck_assert_int_eq(token_init(test_softhsm_module(), "tca-a", "so-secret", 9,
	    "user-pin-1", 10, NULL, err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(token_init(test_softhsm_module(), "tca-b", "so-secret", 9,
	    "user-pin-1", 10, NULL, err, sizeof(err)), TCA_OK);
	memset(&p, 0, sizeof(p));
	p.module_path = test_softhsm_module();
	p.pool_size = 1;
	p.token_uri = "pkcs11:manufacturer=SoftHSM%20project";
	ck_assert_int_eq(tca_token_open(&p, "user-pin-1", 10, &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_ptr_null(tok);
	ck_assert_msg(strstr(err, "2 tokens match URI pkcs11:manufacturer=") != NULL, "%s", err);
	p.token_uri = "pkcs11:manufacturer=SoftHSM%20project;token=tca-b";
	ck_assert_int_eq(tca_token_open(&p, "user-pin-1", 10, &tok, err, sizeof(err)), TCA_OK);
	tca_token_close(tok);
}
END_TEST

/* /token/p11/classify: what each CK_RV makes the supervisor do */
START_TEST(test_p11_classify)
{
	CK_MECHANISM_TYPE m;
	CK_RV rv;

	ck_assert_int_eq(tca_p11_classify(CKR_OK), TCA_P11_OK);
	ck_assert_int_eq(tca_p11_classify(CKR_SESSION_HANDLE_INVALID), TCA_P11_NEW_SESSION);
	ck_assert_int_eq(tca_p11_classify(CKR_SESSION_CLOSED), TCA_P11_NEW_SESSION);
	ck_assert_int_eq(tca_p11_classify(CKR_USER_NOT_LOGGED_IN), TCA_P11_LOGIN);
	ck_assert_int_eq(tca_p11_classify(CKR_OBJECT_HANDLE_INVALID), TCA_P11_HANDLES);
	ck_assert_int_eq(tca_p11_classify(CKR_KEY_HANDLE_INVALID), TCA_P11_HANDLES);
	ck_assert_int_eq(tca_p11_classify(CKR_DEVICE_ERROR), TCA_P11_REINIT);
	ck_assert_int_eq(tca_p11_classify(CKR_DEVICE_REMOVED), TCA_P11_REINIT);
	ck_assert_int_eq(tca_p11_classify(CKR_TOKEN_NOT_PRESENT), TCA_P11_REINIT);
	ck_assert_int_eq(tca_p11_classify(CKR_CRYPTOKI_NOT_INITIALIZED), TCA_P11_REINIT);
	ck_assert_int_eq(tca_p11_classify(CKR_PIN_INCORRECT), TCA_P11_PIN);
	ck_assert_int_eq(tca_p11_classify(CKR_PIN_LOCKED), TCA_P11_PIN);
	ck_assert_int_eq(tca_p11_classify(CKR_TEMPLATE_INCONSISTENT), TCA_P11_CONFIG);
	ck_assert_int_eq(tca_p11_classify(CKR_MECHANISM_INVALID), TCA_P11_CONFIG);
	ck_assert_int_eq(tca_p11_classify(CKR_DEVICE_MEMORY), TCA_P11_FULL);
	ck_assert_int_eq(tca_p11_error(CKR_TEMPLATE_INCONSISTENT), TCA_ERR_TOKEN_REFUSED);
	ck_assert_int_eq(tca_p11_error(CKR_DEVICE_MEMORY), TCA_ERR_TOKEN_FULL);
	ck_assert_int_eq(tca_p11_error(CKR_PIN_INCORRECT), TCA_ERR_UNAUTHORIZED);
	ck_assert_int_eq(tca_p11_error(CKR_DEVICE_REMOVED), TCA_ERR_TOKEN_UNAVAILABLE);
	ck_assert_str_eq(tca_p11_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
	ck_assert_str_eq(tca_p11_rv_name(0x80001234UL), "CKR_0x80001234");
	ck_assert_int_eq(tca_p11_rv_from_name("CKR_KEY_HANDLE_INVALID", &rv), 0);
	ck_assert_uint_eq(rv, CKR_KEY_HANDLE_INVALID);
	ck_assert_int_eq(tca_p11_rv_from_name("0x30", &rv), 0);
	ck_assert_uint_eq(rv, CKR_DEVICE_ERROR);
	ck_assert_int_eq(tca_p11_rv_from_name("CKR_NOPE", &rv), -1);
	ck_assert_int_eq(tca_p11_mech_from_name("CKM_ECDSA_SHA256", &m), 0);
	ck_assert_uint_eq(m, CKM_ECDSA_SHA256);
	ck_assert_str_eq(tca_p11_mech_name(CKM_SHA256_RSA_PKCS), "CKM_SHA256_RSA_PKCS");
	ck_assert_int_eq(tca_p11_mech_from_name("", &m), -1);
	ck_assert_int_eq(tca_p11_mech_from_name("-1", &m), -1);
}
END_TEST

/* /token/keys/hash-on-token: a profile that prefers the token to hash gives
 * the same verifiable signatures as the raw mechanisms (SoftHSMv2 2.6.1 offers
 * CKM_SHA256_RSA_PKCS but no CKM_ECDSA_SHA256/384: EC stays raw) */
START_TEST(test_sign_hash_on_token)
{
	static const enum tca_key_type types[] = {
		TCA_KEY_EC_P256, TCA_KEY_EC_P384, TCA_KEY_RSA_3072,
	};
	struct tca_token_params p;
	const char *mechs[TCA_KEY_TYPE_COUNT + 1];
	const struct tca_key_desc *kd;
	tca_token *tok = NULL;
	unsigned char id[16], sig[512];
	const unsigned char msg[] = "the TBSCertificate, hashed by the token";
	char err[256], name[32];
	size_t i, sig_len;
	EVP_PKEY *pub = NULL;

	params_init(&p, 2);
	snprintf(p.quirks.prefer_mechanisms, sizeof(p.quirks.prefer_mechanisms),
	    "CKM_ECDSA_SHA256,CKM_ECDSA_SHA384 , CKM_SHA256_RSA_PKCS");
	ck_assert_msg(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)) ==
	    TCA_OK, "%s", err);
	(void)tca_token_key_types(tok, mechs);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		kd = tca_key_desc(types[i]);
		ck_assert_str_eq(mechs[types[i]], types[i] == TCA_KEY_RSA_3072 ?
		    "CKM_SHA256_RSA_PKCS" : "CKM_ECDSA");
		snprintf(name, sizeof(name), "hash-on-token-%zu", i);
		make_id(name, id);
		ck_assert_int_eq(tca_token_generate_key(tok, types[i], id, sizeof(id), name, &pub),
		    TCA_OK);
		sig_len = sizeof(sig);
		ck_assert_int_eq(tca_token_sign(tok, id, sizeof(id), kd->alg, msg, sizeof(msg) - 1,
		    sig, &sig_len), TCA_OK);
		ck_assert_msg(verify(pub, kd->alg, msg, sizeof(msg) - 1, sig, sig_len),
		    "%s signature made with %s does not verify", kd->name, mechs[types[i]]);
		/* and it is a signature over this message, not any */
		ck_assert(!verify(pub, kd->alg, msg, sizeof(msg) - 2, sig, sig_len));
		EVP_PKEY_free(pub);
		pub = NULL;
	}
	tca_token_close(tok);
}
END_TEST

/* /token/p11/ec-point: CKA_EC_POINT in DER or raw form, told apart by length */
START_TEST(test_p11_ec_point)
{
	const struct tca_key_desc *p256 = tca_key_desc(TCA_KEY_EC_P256);
	const struct tca_key_desc *p384 = tca_key_desc(TCA_KEY_EC_P384);
	const struct tca_key_desc *ed = tca_key_desc(TCA_KEY_ED25519);
	unsigned char buf[128];
	const unsigned char *pt = NULL;
	size_t len = 0;

	memset(buf, 0x11, sizeof(buf));
	/* P-256: raw 65 bytes 04||X||Y, DER 04 41 04||X||Y */
	buf[0] = 0x04;
	ck_assert_int_eq(tca_p11_ec_point(p256, buf, 65, &pt, &len), TCA_OK);
	ck_assert_ptr_eq(pt, buf);
	ck_assert_uint_eq(len, 65);
	buf[0] = 0x04; buf[1] = 0x41; buf[2] = 0x04;
	ck_assert_int_eq(tca_p11_ec_point(p256, buf, 67, &pt, &len), TCA_OK);
	ck_assert_ptr_eq(pt, buf + 2);
	ck_assert_uint_eq(len, 65);
	/* wrong lengths and forms */
	ck_assert_int_eq(tca_p11_ec_point(p256, buf, 66, &pt, &len), TCA_ERR_TOKEN_UNAVAILABLE);
	ck_assert_int_eq(tca_p11_ec_point(p384, buf, 67, &pt, &len), TCA_ERR_TOKEN_UNAVAILABLE);
	buf[0] = 0x02;
	ck_assert_int_eq(tca_p11_ec_point(p256, buf, 65, &pt, &len), TCA_ERR_TOKEN_UNAVAILABLE);
	/* P-384: DER with a long-form length 04 61 04.., raw 97 */
	buf[0] = 0x04; buf[1] = 0x61; buf[2] = 0x04;
	ck_assert_int_eq(tca_p11_ec_point(p384, buf, 99, &pt, &len), TCA_OK);
	ck_assert_uint_eq(len, 97);
	buf[0] = 0x04;
	ck_assert_int_eq(tca_p11_ec_point(p384, buf, 97, &pt, &len), TCA_OK);
	ck_assert_ptr_eq(pt, buf);
	/* Ed25519: raw 32 bytes, DER 04 20 .. */
	buf[0] = 0x55;
	ck_assert_int_eq(tca_p11_ec_point(ed, buf, 32, &pt, &len), TCA_OK);
	ck_assert_ptr_eq(pt, buf);
	buf[0] = 0x04; buf[1] = 0x20;
	ck_assert_int_eq(tca_p11_ec_point(ed, buf, 34, &pt, &len), TCA_OK);
	ck_assert_ptr_eq(pt, buf + 2);
	ck_assert_uint_eq(len, 32);
	buf[1] = 0x21;
	ck_assert_int_eq(tca_p11_ec_point(ed, buf, 34, &pt, &len), TCA_ERR_TOKEN_UNAVAILABLE);
}
END_TEST

/* /token/open/capabilities: what SoftHSMv2 offers, discovered; a profile's
 * no_ed25519 removes Ed25519 */
START_TEST(test_open_capabilities)
{
	struct tca_token_params p;
	const char *mechs[TCA_KEY_TYPE_COUNT + 1];
	tca_token *tok = NULL;
	char err[512];
	unsigned int mask;

	memset(&p, 0, sizeof(p));
	p.module_path = test_softhsm_module();
	p.token_uri = tt.uri;
	p.pool_size = 1;
	ck_assert_msg(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)) ==
	    TCA_OK, "%s", err);
	mask = tca_token_key_types(tok, mechs);
	ck_assert_uint_eq(mask, (1u << TCA_KEY_EC_P256) | (1u << TCA_KEY_EC_P384) |
	    (1u << TCA_KEY_RSA_3072) | (1u << TCA_KEY_ED25519));
	ck_assert_str_eq(mechs[TCA_KEY_EC_P256], "CKM_ECDSA");
	ck_assert_str_eq(mechs[TCA_KEY_RSA_3072], "CKM_RSA_PKCS");
	ck_assert_str_eq(mechs[TCA_KEY_ED25519], "CKM_EDDSA");
	ck_assert_ptr_null(mechs[TCA_KEY_NONE]);
	tca_token_close(tok);

	/* the profile prefers the token to hash */
	snprintf(p.quirks.prefer_mechanisms, sizeof(p.quirks.prefer_mechanisms),
	    "CKM_ECDSA_SHA256, CKM_SHA256_RSA_PKCS");
	p.quirks.no_ed25519 = 1;
	ck_assert_msg(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)) ==
	    TCA_OK, "%s", err);
	mask = tca_token_key_types(tok, mechs);
	ck_assert_uint_eq(mask & (1u << TCA_KEY_ED25519), 0);
	/* SoftHSMv2 2.6.1 has no CKM_ECDSA_SHA256: preferred, not offered, raw it is */
	ck_assert_str_eq(mechs[TCA_KEY_EC_P256], "CKM_ECDSA");
	ck_assert_str_eq(mechs[TCA_KEY_EC_P384], "CKM_ECDSA");
	ck_assert_str_eq(mechs[TCA_KEY_RSA_3072], "CKM_SHA256_RSA_PKCS");
	tca_token_close(tok);

	snprintf(p.quirks.prefer_mechanisms, sizeof(p.quirks.prefer_mechanisms), "CKM_NOPE");
	ck_assert_int_eq(tca_token_open(&p, TEST_PIN, strlen(TEST_PIN), &tok, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "CKM_NOPE") != NULL, "%s", err);
}
END_TEST

static Suite *
token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc;

	tc = tcase_create("p11");
	tcase_add_test(tc, test_p11_classify);
	tcase_add_test(tc, test_p11_ec_point);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_unchecked_fixture(tc, setup_token, teardown);
	tcase_add_test(tc, test_open_good_pin);
	tcase_add_test(tc, test_open_wrong_pin);
	tcase_add_test(tc, test_open_uri_no_match);
	tcase_add_test(tc, test_open_pin_value);
	tcase_add_test(tc, test_open_pool_capped);
	tcase_add_test(tc, test_open_capabilities);
	suite_add_tcase(s, tc);

	/* a fresh token for every test: key counts are exact */
	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, setup_token, teardown);
	tcase_add_loop_test(tc, test_generate_sign_verify, 0,
	    (int)(sizeof(type_cases) / sizeof(type_cases[0])));
	tcase_add_test(tc, test_generate_duplicate);
	tcase_add_test(tc, test_sign_hash_on_token);
	tcase_add_test(tc, test_generate_no_ed25519);
	tcase_add_test(tc, test_index_reopen);
	tcase_add_test(tc, test_destroy);
	tcase_add_test(tc, test_sign_bad_args);
	tcase_add_test(tc, test_concurrent_sign);
	tcase_add_test(tc, test_concurrent_generate);
	tcase_add_test(tc, test_broken_session);
	tcase_add_test(tc, test_index_foreign_keys);
	suite_add_tcase(s, tc);

	tc = tcase_create("init");
	tcase_add_checked_fixture(tc, setup_store, teardown);
	tcase_add_test(tc, test_init_fresh);
	tcase_add_test(tc, test_init_twice);
	tcase_add_test(tc, test_open_ambiguous_uri);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(token_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
