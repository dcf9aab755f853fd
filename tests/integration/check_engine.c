/*
 * check_engine.c - integration tests: the real tca-engined on a real
 * SoftHSMv2 token (throwaway, per run), a real Unix socket, real processes.
 *
 * /engine/ca/...        CA lifecycle through the RPC (ca.create/show/delete)
 * /engine/issue/...     device issuance, verification with OpenSSL and GnuTLS
 * /engine/policy/...    every refusal, typed
 * /engine/rpc/...       malformed frames: typed errors, the daemon keeps serving
 * /engine/auth/...      SO_PEERCRED roles (clients run under other uids)
 * /engine/journal/...   hash chain verify and tamper detection
 * /engine/store/...     disk full / read-only store: no certificate leaves
 * /engine/load/...      32 concurrent clients; SIGTERM under load
 * /engine/text/...      device ids with Cc/Cf/Zl/Zp characters refused, never
 *                       logged raw; status.refused counts every refusal
 * /engine/limits/...    per-uid and admin-reserved connections, the idle
 *                       deadline status does not extend, RLIMIT_NOFILE at
 *                       start, decoded items per frame (engine peak RSS)
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "store.h"
#include "tca-client.h"
#include "tca-error.h"
#include "tenant.h"
#include "testutil.h"
#include "harness.h"
#include "ocsp.h"
#include "token.h"
#include "wire.h"

static struct test_token tok;	/* shared token for the suite's main daemon */
static struct daemon shared;

static void
shared_setup(void)
{
	test_token_create(&tok, "tca-engine-test");
	daemon_start(&shared, &tok, NULL, NULL);
}

static void
shared_teardown(void)
{
	int st = daemon_stop(&shared);

	/* an unchecked fixture's failed assert exits without a summary: say why
	 * first, and clean up either way */
	if (st != 0) {
		fprintf(stderr, "shared daemon exited with status %d; its log:\n", st);
		test_sh("cat '%s' >&2", shared.log);
	}
	daemon_cleanup(&shared);
	test_token_destroy(&tok);
	ck_assert_int_eq(st, 0);
}

/* ------------------------------------------------------------ /engine/ca */

/* /engine/ca/create: fields and extensions of the CA certificate */
START_TEST(test_ca_fields)
{
	struct tca_client_error err;
	X509 *x;
	const ASN1_INTEGER *serial;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	const ASN1_OCTET_STRING *ski;
	const ASN1_OCTET_STRING *aki;
	int crit = -1, pday = 0, psec = 0;
	char buf[256];

	ck_assert_msg(ca_create(shared.socket, "t100", NULL, &err) == TCA_OK, "%s", err.message);
	x = ca_cert(shared.socket, "t100");
	ck_assert_int_eq(X509_get_version(x), 2);
	X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
	ck_assert_str_eq(buf, "/C=US/O=Cumulocity/CN=t100");
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	serial = X509_get0_serialNumber(x);
	ck_assert_int_eq(ASN1_STRING_length(serial), 16);
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);	/* positive */
	ck_assert_int_eq(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	ck_assert_int_eq(pday, 1095);
	ck_assert_int_eq(psec, 0);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(crit, 1);
	ck_assert_int_ne(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	ck_assert_ptr_nonnull(ku);
	ck_assert_int_eq(crit, 1);
	ck_assert_uint_eq(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ASN1_BIT_STRING_free(ku);
	ski = X509_get0_subject_key_id(x);
	aki = X509_get0_authority_key_id(x);
	ck_assert_ptr_nonnull(ski);
	ck_assert_ptr_nonnull(aki);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(ski, aki), 0);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(x)), 1);
	ck_assert_int_eq(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_EC);
	X509_free(x);
}
END_TEST

/* /engine/ca/create-twice: ALREADY_EXISTS naming the existing fingerprint */
START_TEST(test_ca_create_twice)
{
	struct tca_client_error err;
	cbor_item_t *res;
	char fp[80];

	ck_assert_int_eq(ca_create(shared.socket, "t-twice", NULL, &err), TCA_OK);
	res = ca_show(shared.socket, "t-twice", &err);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(tca_map_get_text(res, "fingerprint", fp, sizeof(fp)), TCA_OK);
	cbor_decref(&res);
	ck_assert_int_eq(ca_create(shared.socket, "t-twice", NULL, &err), TCA_ERR_ALREADY_EXISTS);
	ck_assert_str_eq(err.code, "ALREADY_EXISTS");
	ck_assert_msg(strstr(err.message, fp) != NULL, "message lacks fingerprint: %s", err.message);
}
END_TEST

/* /engine/ca/bad-tenant-id */
START_TEST(test_ca_bad_tenant)
{
	struct tca_client_error err;

	ck_assert_int_eq(ca_create(shared.socket, "../etc", NULL, &err), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(ca_create(shared.socket, "", NULL, &err), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(ca_create(shared.socket, "a b", NULL, &err), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(ca_create(shared.socket,
	    "t0123456789012345678901234567890123456789012345678901234567890123", NULL, &err),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(ca_create(shared.socket, "t-kt", "dsa-1024", &err), TCA_ERR_BAD_REQUEST);
}
END_TEST

/* /engine/ca/key-types: P-384, RSA-3072, Ed25519 CAs issue verifiable certificates */
START_TEST(test_ca_key_types)
{
	static const char *const types[] = { "ec-p384", "rsa-3072", "ed25519" };
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0, i;
	char tenant[32], dir[PATH_MAX];

	test_mkdtemp(dir, sizeof(dir));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		X509 *ca;

		snprintf(tenant, sizeof(tenant), "t-%s", types[i]);
		ck_assert_msg(ca_create(shared.socket, tenant, types[i], &err) == TCA_OK,
		    "%s: %s", types[i], err.message);
		ca = ca_cert(shared.socket, tenant);
		ck_assert_msg(issue(shared.socket, tenant, "dev-kt", "ec-p256", &der, &len, &err) == TCA_OK,
		    "%s issue: %s", types[i], err.message);
		verify_with_openssl_and_gnutls(dir, ca, der, len);
		free(der);
		X509_free(ca);
	}
	test_sh("rm -rf '%s'", dir);
}
END_TEST

/* ------------------------------------------------------------ /engine/issue */

/* /engine/issue/verify: P-256, P-384, RSA-2048, Ed25519 device keys */
START_TEST(test_issue_verify)
{
	static const char *const kinds[] = { "ec-p256", "ec-p384", "rsa-2048", "ed25519" };
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0, i;
	char dir[PATH_MAX], buf[256];
	X509 *ca, *x;
	const unsigned char *p;
	int pday = 0, psec = 0, crit = -1;
	EXTENDED_KEY_USAGE *eku;

	(void)ca_create(shared.socket, "t-issue", NULL, &err);
	ca = ca_cert(shared.socket, "t-issue");
	test_mkdtemp(dir, sizeof(dir));
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		ck_assert_msg(issue(shared.socket, "t-issue", "dev-1", kinds[i], &der, &len, &err) == TCA_OK,
		    "%s: %s", kinds[i], err.message);
		verify_with_openssl_and_gnutls(dir, ca, der, len);
		p = der;
		x = d2i_X509(NULL, &p, (long)len);
		ck_assert_ptr_nonnull(x);
		X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
		ck_assert_str_eq(buf, "/CN=dev-1/O=Thin Edge/OU=Device");
		ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
		ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
		    X509_get0_subject_key_id(ca)), 0);
		ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
		ck_assert_int_eq(ASN1_STRING_length(X509_get0_serialNumber(x)), 16);
		ck_assert_int_eq(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x),
		    X509_get0_notAfter(x)), 1);
		ck_assert_int_eq(pday, 365);
		ck_assert_int_eq(X509_check_ca(x), 0);
		ck_assert_uint_eq(X509_get_key_usage(x), strcmp(kinds[i], "rsa-2048") == 0 ?
		    (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) : KU_DIGITAL_SIGNATURE);
		eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
		ck_assert_ptr_nonnull(eku);
		ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), 1);
		ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
		EXTENDED_KEY_USAGE_free(eku);
		X509_free(x);
		free(der);
	}
	X509_free(ca);
	test_sh("rm -rf '%s'", dir);
}
END_TEST

/* /engine/ocsp/status-field: the ocsp op's "status" names the certificate's
 * state (good, revoked, unknown), not the response's (once "successful") */
START_TEST(test_ocsp_status)
{
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256");
	unsigned char *csr, *der = NULL, *req = NULL, *resp = NULL, **cas = NULL;
	size_t csr_len, len = 0, req_len = 0, resp_len = 0, *lens = NULL, n = 0;
	char status[32], serial[64];
	cbor_item_t *args, *res = NULL;
	tca_client *c;

	(void)ca_create(shared.socket, "t-ocsp", NULL, &err);
	csr = make_csr(k, "dev-ocsp", 0, 0, &csr_len);
	c = connect_or_die(shared.socket);
	ck_assert_int_eq(tca_client_issue(c, "t-ocsp", "dev-ocsp", csr, csr_len, 0, &der,
	    &len, &err), TCA_OK);
	ck_assert_int_eq(tca_client_cacerts(c, "t-ocsp", &cas, &lens, &n, &err), TCA_OK);
	ck_assert_int_eq(tca_ocsp_request_build(der, len, cas[0], lens[0], NULL, 0, &req,
	    &req_len), TCA_OK);
	ck_assert_int_eq(tca_client_ocsp(c, "t-ocsp", req, req_len, &resp, &resp_len, status,
	    sizeof(status), &err), TCA_OK);
	ck_assert_str_eq(status, "good");
	free(resp);
	/* revoked */
	cert_serial_hex(der, len, serial);
	args = cbor_new_definite_map(2);
	ck_assert_int_eq(tca_map_add_text(args, "tenant", "t-ocsp"), TCA_OK);
	ck_assert_int_eq(tca_map_add_text(args, "serial", serial), TCA_OK);
	ck_assert_int_eq(tca_client_call(c, "cert.revoke", args, &res, &err), TCA_OK);
	cbor_decref(&args);
	cbor_decref(&res);
	ck_assert_int_eq(tca_client_ocsp(c, "t-ocsp", req, req_len, &resp, &resp_len, status,
	    sizeof(status), &err), TCA_OK);
	ck_assert_str_eq(status, "revoked");
	free(resp);
	/* garbage: an unsigned malformedRequest, said so */
	ck_assert_int_eq(tca_client_ocsp(c, "t-ocsp", (const unsigned char *)"\x30\x00", 2,
	    &resp, &resp_len, status, sizeof(status), &err), TCA_OK);
	ck_assert_str_eq(status, "malformed");
	free(resp);
	OPENSSL_free(req);
	tca_client_free_certs(cas, lens, n);
	tca_client_close(c);
	free(der);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

/* /engine/issue/days: a shorter requested validity is honoured, a longer one is not */
START_TEST(test_issue_days)
{
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256");
	unsigned char *csr, *der = NULL;
	size_t csr_len, len = 0;
	const unsigned char *p;
	tca_client *c;
	X509 *x;
	int pday = 0, psec = 0;

	(void)ca_create(shared.socket, "t-days", NULL, &err);
	csr = make_csr(k, "dev-days", 0, 0, &csr_len);
	c = connect_or_die(shared.socket);
	ck_assert_int_eq(tca_client_issue(c, "t-days", "dev-days", csr, csr_len, 30, &der, &len, &err), TCA_OK);
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x), X509_get0_notAfter(x));
	ck_assert_int_eq(pday, 30);
	X509_free(x);
	free(der);
	ck_assert_int_eq(tca_client_issue(c, "t-days", "dev-days", csr, csr_len, 1000, &der, &len, &err), TCA_OK);
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x), X509_get0_notAfter(x));
	ck_assert_int_eq(pday, 365);
	X509_free(x);
	free(der);
	tca_client_close(c);
	OPENSSL_free(csr);
	EVP_PKEY_free(k);
}
END_TEST

/* /engine/issue/cacerts */
START_TEST(test_cacerts)
{
	struct tca_client_error err;
	unsigned char **certs = NULL;
	size_t *lens = NULL, n = 0;
	tca_client *c;
	X509 *ca;
	unsigned char *der = NULL;
	int dlen;

	(void)ca_create(shared.socket, "t-cacerts", NULL, &err);
	ca = ca_cert(shared.socket, "t-cacerts");
	dlen = i2d_X509(ca, &der);
	c = connect_or_die(shared.socket);
	ck_assert_int_eq(tca_client_cacerts(c, "t-cacerts", &certs, &lens, &n, &err), TCA_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(lens[0], (size_t)dlen);
	ck_assert_int_eq(memcmp(certs[0], der, (size_t)dlen), 0);
	tca_client_free_certs(certs, lens, n);
	ck_assert_int_eq(tca_client_cacerts(c, "t-none", &certs, &lens, &n, &err), TCA_ERR_NOT_FOUND);
	tca_client_close(c);
	OPENSSL_free(der);
	X509_free(ca);
}
END_TEST

/* ------------------------------------------------------------ /engine/policy */

static int
issue_csr(const char *tenant, const char *device, const unsigned char *csr, size_t csr_len,
    struct tca_client_error *err)
{
	tca_client *c = connect_or_die(shared.socket);
	unsigned char *der = NULL;
	size_t len = 0;
	int r;

	memset(err, 0, sizeof(*err));
	r = tca_client_issue(c, tenant, device, csr, csr_len, 0, &der, &len, err);
	free(der);
	tca_client_close(c);
	return r;
}

/* /engine/policy/refusals: CN mismatch, bad signature, RSA-1024, CA:TRUE,
 * unknown curve, unknown tenant, garbage CSR */
START_TEST(test_policy_refusals)
{
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256"), *rsa1024 = gen_key("rsa-1024"), *k1 = gen_key("secp256k1");
	unsigned char *csr;
	size_t len;

	(void)ca_create(shared.socket, "t-policy", NULL, &err);
	csr = make_csr(k, "dev-2", 0, 0, &len);
	ck_assert_int_eq(issue_csr("t-policy", "dev-1", csr, len, &err), TCA_ERR_POLICY_VIOLATION);
	ck_assert_str_eq(err.code, "POLICY_VIOLATION");
	ck_assert_msg(strstr(err.message, "dev-1") != NULL, "%s", err.message);
	OPENSSL_free(csr);

	csr = make_csr(k, "dev-1", 0, 1, &len);
	ck_assert_int_eq(issue_csr("t-policy", "dev-1", csr, len, &err), TCA_ERR_POLICY_VIOLATION);
	OPENSSL_free(csr);

	csr = make_csr(rsa1024, "dev-1", 0, 0, &len);
	ck_assert_int_eq(issue_csr("t-policy", "dev-1", csr, len, &err), TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(err.message, "1024") != NULL, "%s", err.message);
	OPENSSL_free(csr);

	csr = make_csr(k, "dev-1", 1, 0, &len);
	ck_assert_int_eq(issue_csr("t-policy", "dev-1", csr, len, &err), TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(err.message, "CA") != NULL, "%s", err.message);
	OPENSSL_free(csr);

	csr = make_csr(k1, "dev-1", 0, 0, &len);
	ck_assert_int_eq(issue_csr("t-policy", "dev-1", csr, len, &err), TCA_ERR_POLICY_VIOLATION);
	OPENSSL_free(csr);

	csr = make_csr(k, "dev-1", 0, 0, &len);
	ck_assert_int_eq(issue_csr("t-unknown", "dev-1", csr, len, &err), TCA_ERR_NOT_FOUND);
	ck_assert_str_eq(err.code, "NOT_FOUND");
	OPENSSL_free(csr);

	ck_assert_int_eq(issue_csr("t-policy", "dev-1", (const unsigned char *)"garbage", 7, &err),
	    TCA_ERR_BAD_REQUEST);
	EVP_PKEY_free(k);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(k1);
}
END_TEST

/* /engine/policy/reenroll: own certificate OK; other subject and foreign CA refused */
START_TEST(test_reenroll)
{
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256"), *k2 = gen_key("ec-p256");
	unsigned char *csr, *cur = NULL, *foreign = NULL, *der = NULL, *csr_other;
	size_t csr_len, cur_len = 0, foreign_len = 0, len = 0, other_len;
	tca_client *c;

	(void)ca_create(shared.socket, "t-re", NULL, &err);
	(void)ca_create(shared.socket, "t-re-other", NULL, &err);
	ck_assert_int_eq(issue(shared.socket, "t-re", "dev-r", "ec-p256", &cur, &cur_len, &err), TCA_OK);
	ck_assert_int_eq(issue(shared.socket, "t-re-other", "dev-r", "ec-p256", &foreign, &foreign_len, &err), TCA_OK);
	csr = make_csr(k, "dev-r", 0, 0, &csr_len);
	c = connect_or_die(shared.socket);
	ck_assert_msg(tca_client_reenroll(c, "t-re", "dev-r", csr, csr_len, cur, cur_len, 0,
	    &der, &len, &err) == TCA_OK, "%s", err.message);
	free(der);
	der = NULL;
	/* the same subject, but issued by another tenant's CA */
	ck_assert_int_eq(tca_client_reenroll(c, "t-re", "dev-r", csr, csr_len, foreign, foreign_len, 0,
	    &der, &len, &err), TCA_ERR_POLICY_VIOLATION);
	/* subject differs from the current certificate's */
	csr_other = make_csr(k2, "dev-s", 0, 0, &other_len);
	ck_assert_int_eq(tca_client_reenroll(c, "t-re", "dev-s", csr_other, other_len, cur, cur_len, 0,
	    &der, &len, &err), TCA_ERR_POLICY_VIOLATION);
	tca_client_close(c);
	OPENSSL_free(csr);
	OPENSSL_free(csr_other);
	free(cur);
	free(foreign);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}
END_TEST

/* ------------------------------------------------------------ /engine/rpc */

static int
raw_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
raw_send(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* frame around body */
static void
raw_send_frame(int fd, const unsigned char *body, size_t len)
{
	uint32_t be = htonl((uint32_t)len);

	raw_send(fd, &be, 4);
	raw_send(fd, body, len);
}

/* reads one response; returns its wire code ("OK" for a result) */
static void
raw_expect(int fd, const char *code)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct tca_response resp;

	ck_assert_int_eq(tca_frame_read(fd, 1 << 20, 10000, 10000, NULL, &buf, &len), TCA_OK);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_msg(strcmp(resp.err == TCA_OK ? "OK" : resp.code, code) == 0,
	    "expected %s, got %s (%s)", code, resp.err == TCA_OK ? "OK" : resp.code, resp.message);
	tca_response_clear(&resp);
	free(buf);
}

static void
assert_still_serving(void)
{
	struct tca_client_error err;
	tca_client *c = connect_or_die(shared.socket);
	cbor_item_t *res = NULL;

	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_OK);
	cbor_decref(&res);
	tca_client_close(c);
}

static void
encode_request(uint64_t v, const char *op, unsigned char **buf, size_t *len)
{
	cbor_item_t *args = cbor_new_definite_map(0);

	ck_assert_int_eq(tca_request_encode(v, 7, op, args, buf, len), TCA_OK);
	cbor_decref(&args);
}

/* /engine/rpc/malformed: each malformed input gets its typed error and the
 * daemon keeps serving others */
START_TEST(test_rpc_malformed)
{
	unsigned char *buf = NULL, junk[8];
	size_t len = 0;
	uint32_t be;
	int fd;

	/* oversize frame: FRAME_TOO_LARGE before any allocation, then closed */
	fd = raw_connect(shared.socket);
	be = htonl(64 * 1024 * 1024);
	raw_send(fd, &be, 4);
	raw_expect(fd, "FRAME_TOO_LARGE");
	ck_assert_int_eq(recv(fd, junk, sizeof(junk), 0), 0);	/* closed */
	close(fd);
	assert_still_serving();

	/* trailing bytes after the CBOR map inside the frame */
	encode_request(1, "status", &buf, &len);
	buf = realloc(buf, len + 1);
	buf[len] = 0x00;
	fd = raw_connect(shared.socket);
	raw_send_frame(fd, buf, len + 1);
	raw_expect(fd, "BAD_REQUEST");
	/* the connection stays usable after a decodable-frame error */
	raw_send_frame(fd, buf, len);
	raw_expect(fd, "OK");
	free(buf);

	/* wrong CBOR types: op as an integer, args as an array */
	{
		static const unsigned char wrong_op[] = {
			0xa4, 0x61, 'v', 0x01, 0x62, 'i', 'd', 0x01,
			0x62, 'o', 'p', 0x05, 0x64, 'a', 'r', 'g', 's', 0xa0 };
		static const unsigned char wrong_args[] = {
			0xa4, 0x61, 'v', 0x01, 0x62, 'i', 'd', 0x01,
			0x62, 'o', 'p', 0x66, 's', 't', 'a', 't', 'u', 's',
			0x64, 'a', 'r', 'g', 's', 0x80 };
		static const unsigned char not_cbor[] = { 0xff, 0xff, 0xff };

		raw_send_frame(fd, wrong_op, sizeof(wrong_op));
		raw_expect(fd, "BAD_REQUEST");
		raw_send_frame(fd, wrong_args, sizeof(wrong_args));
		raw_expect(fd, "BAD_REQUEST");
		raw_send_frame(fd, not_cbor, sizeof(not_cbor));
		raw_expect(fd, "BAD_REQUEST");
	}
	/* unknown op, unknown version */
	encode_request(1, "no.such.op", &buf, &len);
	raw_send_frame(fd, buf, len);
	raw_expect(fd, "UNKNOWN_OP");
	free(buf);
	encode_request(99, "status", &buf, &len);
	raw_send_frame(fd, buf, len);
	raw_expect(fd, "UNSUPPORTED_VERSION");
	free(buf);
	/* arguments that do not match the op's schema */
	{
		cbor_item_t *args = cbor_new_definite_map(2);

		tca_map_add_text(args, "tenant", "t100");
		tca_map_add_uint(args, "bogus", 1);
		ck_assert_int_eq(tca_request_encode(1, 8, "cacerts", args, &buf, &len), TCA_OK);
		cbor_decref(&args);
		raw_send_frame(fd, buf, len);
		raw_expect(fd, "BAD_REQUEST");
		free(buf);
	}
	close(fd);

	/* truncated frame: half a body, then silence past the frame timeout */
	fd = raw_connect(shared.socket);
	be = htonl(100);
	raw_send(fd, &be, 4);
	raw_send(fd, "abc", 3);
	raw_expect(fd, "BAD_REQUEST");	/* read timed out */
	ck_assert_int_eq(recv(fd, junk, sizeof(junk), 0), 0);
	close(fd);

	/* truncated then closed by the peer */
	fd = raw_connect(shared.socket);
	raw_send(fd, &be, 2);
	close(fd);
	assert_still_serving();
}
END_TEST

/* /engine/rpc/slow-client: a stuck client does not block others */
START_TEST(test_rpc_slow_client)
{
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	uint32_t be = htonl(1000);
	struct timespec t0, t1;
	int fd;

	(void)ca_create(shared.socket, "t-slow", NULL, &err);
	fd = raw_connect(shared.socket);
	raw_send(fd, &be, 4);	/* and then nothing */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(issue(shared.socket, "t-slow", "dev-slow", "ec-p256", &der, &len, &err), TCA_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* served while the stuck frame's 2 s timeout is still running */
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);
	free(der);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------ /engine/auth */

/* runs fn in a child process with uid/gid; returns its exit status */
static int
as_user(uid_t uid, gid_t gid, int (*fn)(void))
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
			_exit(100);
		_exit(fn());
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* exit 0 if the engine answers status with UNAUTHORIZED */
static int
child_status_unauthorized(void)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	cbor_item_t *res = NULL;
	int r;

	if (tca_client_connect(shared.socket, 10000, &c, &err) != TCA_CLIENT_OK)
		return 10;
	r = tca_client_call(c, "status", NULL, &res, &err);
	tca_client_close(c);
	return r == TCA_ERR_UNAUTHORIZED && strcmp(err.code, "UNAUTHORIZED") == 0 ? 0 : 11;
}

/* exit 0 if a frontend may issue and status but not ca.create */
static int
child_frontend(void)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	cbor_item_t *args, *res = NULL;
	int r;

	if (tca_client_connect(shared.socket, 10000, &c, &err) != TCA_CLIENT_OK)
		return 10;
	if (tca_client_call(c, "status", NULL, &res, &err) != TCA_OK)
		return 11;
	cbor_decref(&res);
	args = cbor_new_definite_map(1);
	tca_map_add_text(args, "tenant", "t-evil");
	r = tca_client_call(c, "ca.create", args, &res, &err);
	cbor_decref(&args);
	tca_client_close(c);
	return r == TCA_ERR_UNAUTHORIZED ? 0 : 12;
}

/* /engine/auth/peercred: no role -> UNAUTHORIZED; frontend cannot administer */
START_TEST(test_auth)
{
	if (geteuid() != 0) {
		/* the role check itself is unit-tested in check_basics; this case needs
		 * root to run clients under other uids */
		if (getenv("CI") != NULL)
			ck_abort_msg("CI runs as root; this test must not be skipped");
		return;
	}
	ck_assert_int_eq(as_user(NO_ROLE_UID, NOBODY, child_status_unauthorized), 0);
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_frontend), 0);
	assert_still_serving();
	ck_assert_int_eq(test_sh("grep -q 'refused connection from uid %d' '%s'", NO_ROLE_UID,
	    shared.log), 0);
}
END_TEST

/* ------------------------------------------------------------ /engine/journal */

/* /engine/journal/verify-and-tamper */
START_TEST(test_journal)
{
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	char admin[PATH_MAX], copy[PATH_MAX + 32];

	(void)ca_create(shared.socket, "t-journal", NULL, &err);
	ck_assert_int_eq(issue(shared.socket, "t-journal", "dev-j", "ec-p256", &der, &len, &err), TCA_OK);
	free(der);
	test_build_path("ca-admin", admin, sizeof(admin));
	ck_assert_int_eq(test_sh("'%s' journal verify --db '%s' >/dev/null", admin, shared.db), 0);
	/* tamper with a copy, as an attacker with the file would */
	snprintf(copy, sizeof(copy), "%s/tampered.db", shared.dir);
	ck_assert_int_eq(test_sh("sqlite3 '%s' \".backup '%s'\"", shared.db, copy), 0);
	ck_assert_int_eq(test_sh("sqlite3 '%s' \"SELECT name FROM sqlite_master WHERE type='trigger'\" "
	    "| while read t; do sqlite3 '%s' \"DROP TRIGGER \\\"$t\\\"\"; done; "
	    "sqlite3 '%s' \"UPDATE journal SET subject='CN=forged' WHERE seq=2\"",
	    copy, copy, copy), 0);
	ck_assert_int_eq(test_sh("'%s' journal verify --db '%s' > '%s.out'", admin, copy, copy), 4);
	ck_assert_msg(test_sh("grep -q 'record 2:' '%s.out'", copy) == 0, "verify did not name record 2");
}
END_TEST

/* ------------------------------------------------------------ /engine/ca/delete */

/* /engine/ca/delete: key objects leave the token, history stays */
START_TEST(test_ca_delete)
{
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	tca_client *c;
	cbor_item_t *args, *res = NULL;
	uint64_t destroyed = 0;

	ck_assert_int_eq(ca_create(shared.socket, "t-del", NULL, &err), TCA_OK);
	c = connect_or_die(shared.socket);
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-del");
	tca_map_add_bool(args, "confirm", 0);
	ck_assert_int_eq(tca_client_call(c, "ca.delete", args, &res, &err), TCA_ERR_BAD_REQUEST);
	cbor_decref(&args);
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-del");
	tca_map_add_bool(args, "confirm", 1);
	ck_assert_msg(tca_client_call(c, "ca.delete", args, &res, &err) == TCA_OK, "%s", err.message);
	cbor_decref(&args);
	ck_assert_int_eq(tca_map_get_uint(res, "token_objects_destroyed", &destroyed), TCA_OK);
	ck_assert_uint_eq(destroyed, 2);	/* private and public key */
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_int_eq(issue(shared.socket, "t-del", "dev-d", "ec-p256", &der, &len, &err), TCA_ERR_NOT_FOUND);
	ck_assert_ptr_null(ca_show(shared.socket, "t-del", &err));
	/* and re-creating the tenant works (new key, new CA) */
	ck_assert_int_eq(ca_create(shared.socket, "t-del", NULL, &err), TCA_OK);
	ck_assert_int_eq(issue(shared.socket, "t-del", "dev-d", "ec-p256", &der, &len, &err), TCA_OK);
	free(der);
}
END_TEST

/* ------------------------------------------------------------ own daemons */

/* /engine/ca/key-attributes: the key the engine generated is sensitive and
 * never extractable, named by the documented scheme; delete removes it */
START_TEST(test_key_attributes)
{
	struct test_token t;
	struct daemon d;
	struct tca_client_error err;
	struct tca_token_params tp;
	struct tca_key_attrs attrs;
	tca_token *tk = NULL;
	unsigned char id[TCA_KEY_ID_LEN];
	unsigned long count = 99;
	enum tca_key_type type;
	char msg[256];
	tca_client *c;
	cbor_item_t *args, *res = NULL;

	test_token_create(&t, "tca-attr-test");
	daemon_start(&d, &t, NULL, NULL);
	ck_assert_int_eq(ca_create(d.socket, "t-attr", NULL, &err), TCA_OK);
	ck_assert_int_eq(daemon_stop(&d), 0);

	memset(&tp, 0, sizeof(tp));
	tp.module_path = test_softhsm_module();
	tp.token_uri = t.uri;
	tp.pool_size = 1;
	ck_assert_msg(tca_token_open(&tp, TEST_PIN, strlen(TEST_PIN), &tk, msg, sizeof(msg)) == TCA_OK, "%s", msg);
	tca_tenant_key_id("t-attr", id);
	ck_assert_int_eq(tca_token_find_key(tk, id, sizeof(id), &type), TCA_OK);
	ck_assert_int_eq(type, TCA_KEY_EC_P256);
	ck_assert_int_eq(tca_token_key_attrs(tk, id, sizeof(id), &attrs), TCA_OK);
	ck_assert_int_eq(attrs.sensitive, 1);
	ck_assert_int_eq(attrs.extractable, 0);
	ck_assert_int_eq(attrs.value_readable, 0);
	ck_assert_int_eq(attrs.private_, 1);
	ck_assert_int_eq(attrs.token, 1);
	ck_assert_int_eq(attrs.sign, 1);
	tca_token_close(tk);
	tk = NULL;

	/* restart: the CA is loaded from the store, its key found in the index */
	daemon_exec(&d, NULL);
	{
		X509 *x = ca_cert(d.socket, "t-attr");

		X509_free(x);
	}
	c = connect_or_die(d.socket);
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-attr");
	tca_map_add_bool(args, "confirm", 1);
	ck_assert_msg(tca_client_call(c, "ca.delete", args, &res, &err) == TCA_OK, "%s", err.message);
	cbor_decref(&args);
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_int_eq(daemon_stop(&d), 0);
	ck_assert_int_eq(tca_token_open(&tp, TEST_PIN, strlen(TEST_PIN), &tk, msg, sizeof(msg)), TCA_OK);
	ck_assert_int_eq(tca_token_count_objects(tk, id, sizeof(id), &count), TCA_OK);
	ck_assert_uint_eq(count, 0);
	ck_assert_int_eq(tca_token_find_key(tk, id, sizeof(id), NULL), TCA_ERR_NOT_FOUND);
	tca_token_close(tk);
	daemon_cleanup(&d);
	test_token_destroy(&t);
}
END_TEST

/* /engine/store/unwritable: disk full and read-only store -> JOURNAL_UNAVAILABLE,
 * no certificate; the engine recovers once the store is writable again */
START_TEST(test_store_unwritable)
{
	static const char *const errnos[] = { "ENOSPC", "EROFS" };
	struct test_token t;
	struct daemon d;
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0, i;
	char fi[PATH_MAX], trigger[PATH_MAX + 16], admin[PATH_MAX];

	test_build_path("tests/.libs/libfaultinject.so", fi, sizeof(fi));
	ck_assert_msg(access(fi, R_OK) == 0, "fault injection library %s missing", fi);
	test_token_create(&t, "tca-fi-test");
	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		snprintf(trigger, sizeof(trigger), "%s/fail-now", t.dir);
		setenv("TCA_FI_TRIGGER", trigger, 1);
		setenv("TCA_FI_MATCH", "state.db", 1);
		setenv("TCA_FI_ERRNO", errnos[i], 1);
		daemon_start(&d, &t, NULL, fi);
		ck_assert_int_eq(ca_create(d.socket, i == 0 ? "t-fi0" : "t-fi1", NULL, &err), TCA_OK);
		ck_assert_int_eq(issue(d.socket, i == 0 ? "t-fi0" : "t-fi1", "dev-ok", "ec-p256", &der, &len, &err), TCA_OK);
		free(der);
		der = NULL;
		ck_assert_int_eq(test_sh("touch '%s'", trigger), 0);
		ck_assert_int_eq(issue(d.socket, i == 0 ? "t-fi0" : "t-fi1", "dev-fail", "ec-p256", &der, &len, &err),
		    TCA_ERR_JOURNAL_UNAVAILABLE);
		ck_assert_str_eq(err.code, "JOURNAL_UNAVAILABLE");
		ck_assert_ptr_null(der);
		ck_assert_int_eq(ca_create(d.socket, "t-fi-never", NULL, &err), TCA_ERR_JOURNAL_UNAVAILABLE);
		unlink(trigger);
		ck_assert_msg(issue(d.socket, i == 0 ? "t-fi0" : "t-fi1", "dev-after", "ec-p256", &der, &len, &err) == TCA_OK,
		    "after recovery: %s", err.message);
		free(der);
		der = NULL;
		ck_assert_int_eq(daemon_stop(&d), 0);
		/* the failed requests left no trace; the chain is intact */
		test_build_path("ca-admin", admin, sizeof(admin));
		ck_assert_int_eq(test_sh("'%s' journal verify --db '%s' >/dev/null", admin, d.db), 0);
		ck_assert_int_eq(test_sh("test \"$(sqlite3 '%s' \"SELECT count(*) FROM journal WHERE subject LIKE '%%dev-fail%%'\")\" = 0", d.db), 0);
		/* ca-create, its first CRL, the two issues that worked */
		ck_assert_int_eq(test_sh("test \"$(sqlite3 '%s' \"SELECT group_concat(op) FROM journal\")\" = "
		    "ca-create,crl,issue,issue", d.db), 0);
		daemon_cleanup(&d);
	}
	unsetenv("TCA_FI_TRIGGER");
	test_token_destroy(&t);
}
END_TEST

/* ------------------------------------------------------------ /engine/load */

struct load_arg {
	const char *socket;
	const char *tenant;
	int n;			/* certificates to issue; 0 = until error */
	int ok, failed;
	char serials[4096][33];
};

static void *
load_thread(void *arg)
{
	struct load_arg *a = arg;
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256");
	unsigned char *csr, *der;
	size_t csr_len, len;
	tca_client *c = NULL;
	int i;

	csr = make_csr(k, "dev-load", 0, 0, &csr_len);
	if (tca_client_connect(a->socket, 60000, &c, &err) != TCA_CLIENT_OK) {
		a->failed++;
		goto out;
	}
	for (i = 0; a->n == 0 || i < a->n; i++) {
		der = NULL;
		if (tca_client_issue(c, a->tenant, "dev-load", csr, csr_len, 0, &der, &len, &err) != TCA_OK) {
			a->failed++;
			break;
		}
		if (a->ok < 4096)
			cert_serial_hex(der, len, a->serials[a->ok]);
		a->ok++;
		free(der);
	}
 out:
	tca_client_close(c);
	OPENSSL_free(csr);
	EVP_PKEY_free(k);
	return NULL;
}

/* /engine/load/concurrent: 32 clients issuing at once all succeed */
START_TEST(test_concurrent)
{
	struct tca_client_error err;
	struct load_arg *args;
	pthread_t th[32];
	int i, total = 0;

	(void)ca_create(shared.socket, "t-load", NULL, &err);
	args = calloc(32, sizeof(*args));
	for (i = 0; i < 32; i++) {
		args[i].socket = shared.socket;
		args[i].tenant = "t-load";
		args[i].n = 10;
		ck_assert_int_eq(pthread_create(&th[i], NULL, load_thread, &args[i]), 0);
	}
	for (i = 0; i < 32; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].failed, 0);
		total += args[i].ok;
	}
	ck_assert_int_eq(total, 320);
	free(args);
}
END_TEST

/* /engine/load/sigterm: SIGTERM under load; exit 0 and every certificate a
 * client received has its journal record */
START_TEST(test_sigterm_under_load)
{
	struct test_token t;
	struct daemon d;
	struct tca_client_error err;
	struct load_arg *args;
	struct serial_set set;
	pthread_t th[8];
	int i, j, received = 0;
	size_t k;

	test_token_create(&t, "tca-term-test");
	daemon_start(&d, &t, NULL, NULL);
	ck_assert_int_eq(ca_create(d.socket, "t-term", NULL, &err), TCA_OK);
	args = calloc(8, sizeof(*args));
	for (i = 0; i < 8; i++) {
		args[i].socket = d.socket;
		args[i].tenant = "t-term";
		args[i].n = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, load_thread, &args[i]), 0);
	}
	usleep(1500000);
	ck_assert_int_eq(daemon_stop(&d), 0);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		received += args[i].ok;
	}
	ck_assert_int_gt(received, 8);
	journal_issue_serials(d.db, &set);
	ck_assert_int_ge((int)set.n, received);
	for (i = 0; i < 8; i++) {
		for (j = 0; j < args[i].ok && j < 4096; j++) {
			for (k = 0; k < set.n; k++)
				if (strcmp(set.s[k], args[i].serials[j]) == 0)
					break;
			ck_assert_msg(k < set.n, "certificate %s was returned but not journaled",
			    args[i].serials[j]);
		}
	}
	free(set.s);
	free(args);
	daemon_cleanup(&d);
	test_token_destroy(&t);
}
END_TEST

/* ------------------------------------------------------------ /engine/limits */

/* Issue 11, "Local DoS": per-uid and admin-reserved connection slots, an idle
 * deadline that status does not extend, RLIMIT_NOFILE checked at start,
 * rate-limited refusal logging, and a bound on decoded items per frame.
 * Each test runs its own daemon with the limits it needs. */

static struct test_token lim_tok;
static struct daemon lim;

static void
limits_start(const char *extra)
{
	test_token_create(&lim_tok, "tca-limits-test");
	daemon_start(&lim, &lim_tok, extra, NULL);
}

static void
limits_stop(void)
{
	int st = daemon_stop(&lim);

	if (st != 0)
		test_sh("cat '%s' >&2", lim.log);
	daemon_cleanup(&lim);
	test_token_destroy(&lim_tok);
	ck_assert_int_eq(st, 0);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_until_ms(int64_t t)
{
	int64_t now = mono_ms();

	if (t > now)
		usleep((useconds_t)(t - now) * 1000);
}

/* Connects and calls status: TCA_OK with the connection kept in *c_ptr, else
 * the engine's refusal in err (the connection is closed). */
static int
open_status(const char *sock, tca_client **c_ptr, struct tca_client_error *err)
{
	cbor_item_t *res = NULL;
	int r;

	*c_ptr = NULL;
	memset(err, 0, sizeof(*err));
	if ((r = tca_client_connect(sock, 10000, c_ptr, err)) != TCA_CLIENT_OK)
		return r;
	if ((r = tca_client_call(*c_ptr, "status", NULL, &res, err)) == TCA_OK) {
		cbor_decref(&res);
		return TCA_OK;
	}
	tca_client_close(*c_ptr);
	*c_ptr = NULL;
	return r;
}

static void
assert_serving(const char *sock)
{
	struct tca_client_error err;
	tca_client *c = NULL;

	ck_assert_msg(open_status(sock, &c, &err) == TCA_OK, "status: %s", err.message);
	tca_client_close(c);
}

/* lines of the daemon's log containing needle */
static int
log_count(const struct daemon *d, const char *needle)
{
	char cmd[PATH_MAX + 128], line[64];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "grep -c -F '%s' '%s'", needle, d->log);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (fgets(line, sizeof(line), p) != NULL)
		n = atoi(line);
	pclose(p);
	return n;
}

/* A child process running as uid that opens connections (fn's job) and keeps
 * them open until released, so the parent can test the engine meanwhile. */
struct holder {
	pid_t pid;
	int res_fd, go_fd;
};

static void
hold_start(struct holder *h, uid_t uid, int (*fn)(void))
{
	int res[2], go[2];

	ck_assert_int_eq(pipe(res), 0);
	ck_assert_int_eq(pipe(go), 0);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		unsigned char code, x;

		close(res[0]);
		close(go[1]);
		if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
			code = 100;
		else
			code = (unsigned char)fn();
		if (write(res[1], &code, 1) != 1)
			_exit(1);
		(void)!read(go[0], &x, 1);	/* connections stay open until released */
		_exit(0);
	}
	close(res[1]);
	close(go[0]);
	h->res_fd = res[0];
	h->go_fd = go[1];
}

static int
hold_result(struct holder *h)
{
	unsigned char code = 255;

	ck_assert_int_eq(read(h->res_fd, &code, 1), 1);
	return code;
}

static void
hold_release(struct holder *h)
{
	int st;

	close(h->go_fd);
	ck_assert_int_eq(waitpid(h->pid, &st, 0), h->pid);
	close(h->res_fd);
}

static tca_client *held[64];

/* as NOBODY: 4 connections, then BUSY naming the per-uid limit (20 times) */
static int
child_per_uid(void)
{
	struct tca_client_error err;
	tca_client *c;
	int i, r;

	for (i = 0; i < 4; i++)
		if (open_status(lim.socket, &held[i], &err) != TCA_OK)
			return 10 + i;
	for (i = 0; i < 20; i++) {
		if ((r = open_status(lim.socket, &c, &err)) == TCA_OK)
			return 20;
		if (r != TCA_ERR_BUSY || strcmp(err.code, "BUSY") != 0)
			return 21;
		if (strstr(err.message, "rpc.max_connections_per_uid") == NULL ||
		    strstr(err.message, "4") == NULL) {
			fprintf(stderr, "BUSY message: %s\n", err.message);
			return 22;
		}
	}
	/* closing one gives this uid a slot again */
	tca_client_close(held[0]);
	for (i = 0; i < 200; i++) {
		if (open_status(lim.socket, &held[0], &err) == TCA_OK)
			return 0;
		usleep(50000);
	}
	return 23;
}

/* as NOBODY: one status connection, once the engine has seen the holder's
 * connections close (their slots are freed by the connection threads when
 * they read EOF: BUSY until then, for up to 10 s) */
static int
child_one_status(void)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	int i, r = TCA_ERR_BUSY;

	for (i = 0; i < 200 && r == TCA_ERR_BUSY; i++) {
		if ((r = open_status(lim.socket, &c, &err)) == TCA_ERR_BUSY)
			usleep(50000);
	}
	tca_client_close(c);
	return r == TCA_OK ? 0 : 30;
}

/* as a uid without a role: 20 refusals in a row */
static int
child_no_role_flood(void)
{
	struct tca_client_error err;
	tca_client *c;
	int i;

	for (i = 0; i < 20; i++)
		if (open_status(lim.socket, &c, &err) != TCA_ERR_UNAUTHORIZED)
			return 40;
	return 0;
}

/* /engine/limits/per-uid: a front-end uid gets at most
 * rpc.max_connections_per_uid connections; admins are not bound by it;
 * the refusals are logged at most once a second */
START_TEST(test_limit_per_uid)
{
	struct holder h;
	struct tca_client_error err;
	tca_client *mine[6];
	int64_t t0;
	int i, max_lines;

	if (geteuid() != 0) {
		if (getenv("CI") != NULL)
			ck_abort_msg("CI runs as root; this test must not be skipped");
		return;
	}
	limits_start("rpc.max_connections = 16\nrpc.max_connections_per_uid = 4\n"
	    "rpc.admin_reserved_connections = 2\n");
	t0 = mono_ms();
	hold_start(&h, NOBODY, child_per_uid);
	ck_assert_int_eq(hold_result(&h), 0);
	/* the front end holds 4; an admin opens 6 (more than the per-uid 4) */
	for (i = 0; i < 6; i++)
		ck_assert_msg(open_status(lim.socket, &mine[i], &err) == TCA_OK,
		    "admin connection %d: %s", i, err.message);
	hold_release(&h);
	for (i = 0; i < 6; i++)
		tca_client_close(mine[i]);
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_one_status), 0);
	ck_assert_int_eq(as_user(NO_ROLE_UID, NOBODY, child_no_role_flood), 0);
	/* 20 refusals of each kind: at most one line per kind and second of
	 * the flood, then a count of the ones not logged (written once the
	 * burst is over: waited for, not slept for) */
	max_lines = 2 + (int)((mono_ms() - t0) / 1000);
	for (i = 0; i < 200 && log_count(&lim, "suppressed") < 1; i++)
		usleep(50000);
	ck_assert_int_ge(log_count(&lim, "suppressed"), 1);
	ck_assert_int_ge(log_count(&lim, "refused connection from uid 65533"), 1);
	ck_assert_msg(log_count(&lim, "refused connection from uid 65533") <= max_lines,
	    "%d no-role lines logged", log_count(&lim, "refused connection from uid 65533"));
	ck_assert_int_ge(log_count(&lim, "refused connection from uid 65534"), 1);
	ck_assert_msg(log_count(&lim, "refused connection from uid 65534") <= max_lines,
	    "%d refusal lines logged", log_count(&lim, "refused connection from uid 65534"));
	limits_stop();
}
END_TEST

/* as NOBODY: the 6 slots front ends may take, then BUSY naming the reserve */
static int
child_reserve(void)
{
	struct tca_client_error err;
	tca_client *c;
	int i, r;

	for (i = 0; i < 6; i++)
		if (open_status(lim.socket, &held[i], &err) != TCA_OK)
			return 10 + i;
	if ((r = open_status(lim.socket, &c, &err)) == TCA_OK)
		return 20;
	if (r != TCA_ERR_BUSY)
		return 21;
	if (strstr(err.message, "rpc.admin_reserved_connections") == NULL) {
		fprintf(stderr, "BUSY message: %s\n", err.message);
		return 22;
	}
	return 0;
}

/* /engine/limits/admin-reserve: front ends cannot take the last
 * rpc.admin_reserved_connections slots; admins can, up to rpc.max_connections */
START_TEST(test_limit_admin_reserve)
{
	struct holder h;
	struct tca_client_error err;
	tca_client *mine[3];
	int i;

	if (geteuid() != 0) {
		if (getenv("CI") != NULL)
			ck_abort_msg("CI runs as root; this test must not be skipped");
		return;
	}
	limits_start("rpc.max_connections = 8\nrpc.admin_reserved_connections = 2\n"
	    "rpc.max_connections_per_uid = 0\n");
	hold_start(&h, NOBODY, child_reserve);
	ck_assert_int_eq(hold_result(&h), 0);
	for (i = 0; i < 2; i++)
		ck_assert_msg(open_status(lim.socket, &mine[i], &err) == TCA_OK,
		    "admin connection %d in the reserve: %s", i, err.message);
	/* all 8 in use: admins get BUSY too */
	ck_assert_int_eq(open_status(lim.socket, &mine[2], &err), TCA_ERR_BUSY);
	ck_assert_msg(strstr(err.message, "rpc.max_connections") != NULL, "%s", err.message);
	hold_release(&h);
	for (i = 0; i < 2; i++)
		tca_client_close(mine[i]);
	limits_stop();
}
END_TEST

/* /engine/limits/idle-status: status does not extend the idle deadline;
 * other operations do.  Bounds from events, not from a schedule: the close
 * comes no sooner than rpc.idle_timeout_ms after the work request was sent
 * (proof that work moved the deadline past accept + 2 s), and it comes at
 * all while status is sent every 250 ms (proof that status does not). */
START_TEST(test_limit_idle_status)
{
	struct tca_client_error err;
	cbor_item_t *args, *res = NULL;
	tca_client *c;
	int64_t t0, work_sent, failed_at = -1;
	int r;

	limits_start("rpc.idle_timeout_ms = 2000\n");
	c = connect_or_die(lim.socket);
	t0 = mono_ms();
	sleep_until_ms(t0 + 800);
	args = cbor_new_definite_map(1);
	ck_assert_int_eq(tca_map_add_text(args, "tenant", "t-none"), TCA_OK);
	work_sent = mono_ms();
	ck_assert_msg(work_sent - t0 < 2000, "the machine stalled %lld ms before the work request",
	    (long long)(work_sent - t0));
	ck_assert_int_eq(tca_client_call(c, "cacerts", args, &res, &err), TCA_ERR_NOT_FOUND);
	cbor_decref(&args);
	/* from now on only status: closed once the deadline passes */
	while (mono_ms() - t0 < 30000) {
		usleep(250000);
		if ((r = tca_client_call(c, "status", NULL, &res, &err)) != TCA_OK) {
			failed_at = mono_ms();
			break;
		}
		cbor_decref(&res);
	}
	tca_client_close(c);
	ck_assert_msg(failed_at >= 0, "a connection sending only status was open after 30 s "
	    "with rpc.idle_timeout_ms = 2000");
	ck_assert_msg(failed_at - work_sent >= 2000, "closed %lld ms after the work request, "
	    "before rpc.idle_timeout_ms", (long long)(failed_at - work_sent));
	ck_assert_msg(strstr(err.message, "idle") != NULL, "%s: %s", err.code, err.message);
	limits_stop();
}
END_TEST

/* /engine/limits/nofile: a soft RLIMIT_NOFILE that cannot hold
 * rpc.max_connections + 64 stops the start, naming both numbers */
START_TEST(test_limit_nofile)
{
	char engined[PATH_MAX], out[PATH_MAX];
	struct rlimit rl;
	int st;

	limits_start("rpc.max_connections = 256\n");
	ck_assert_int_eq(daemon_stop(&lim), 0);
	test_build_path("tca-engined", engined, sizeof(engined));
	snprintf(out, sizeof(out), "%s/nofile.err", lim.dir);
	st = test_sh("ulimit -S -n 200 && exec timeout 10 '%s' --config '%s' 2>'%s'",
	    engined, lim.config, out);
	if (st != 1)
		test_sh("cat '%s' >&2", out);
	ck_assert_msg(st == 1, "tca-engined with 200 descriptors for 256 connections: exit %d", st);
	ck_assert_int_eq(test_sh("grep -q 'RLIMIT_NOFILE' '%s' && grep -q '200' '%s' && "
	    "grep -q '320' '%s' && grep -q 'rpc.max_connections' '%s'", out, out, out, out), 0);
	/* exactly max_connections + 64 is enough */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = 320;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	daemon_exec(&lim, NULL);
	assert_serving(lim.socket);
	limits_stop();
}
END_TEST

static long
vm_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* /engine/limits/items: 50 parallel 64 KiB frames of 65,000 one-byte items
 * are refused before libcbor builds them; the engine's peak RSS stays put */
START_TEST(test_limit_items_memory)
{
	enum { CONNS = 50, N = 65000 };
	static const unsigned char head[] = {
		0xa4, 0x61, 'v', 0x01, 0x62, 'i', 'd', 0x01,
		0x62, 'o', 'p', 0x66, 's', 't', 'a', 't', 'u', 's',
		0x64, 'a', 'r', 'g', 's', 0xa1, 0x61, 'x',
		0x9a, (N >> 24) & 0xff, (N >> 16) & 0xff, (N >> 8) & 0xff, N & 0xff };
	unsigned char *body;
	size_t len = sizeof(head) + N;
	long hwm0, hwm1;
	int fds[CONNS], i, named = 0;

	limits_start(NULL);
	assert_serving(lim.socket);
	body = malloc(len);
	ck_assert_ptr_nonnull(body);
	memcpy(body, head, sizeof(head));
	memset(body + sizeof(head), 0x01, N);
	ck_assert_uint_le(len, 65536);
	hwm0 = vm_hwm_kib(lim.pid);
	for (i = 0; i < CONNS; i++)
		fds[i] = raw_connect(lim.socket);
	for (i = 0; i < CONNS; i++)
		raw_send_frame(fds[i], body, len);
	for (i = 0; i < CONNS; i++) {
		unsigned char *rb = NULL;
		size_t rl = 0;
		struct tca_response resp;

		ck_assert_int_eq(tca_frame_read(fds[i], 1 << 20, 30000, 30000, NULL, &rb, &rl),
		    TCA_OK);
		ck_assert_int_eq(tca_response_decode(rb, rl, &resp), TCA_OK);
		ck_assert_int_eq(resp.err, TCA_ERR_BAD_REQUEST);
		if (strstr(resp.message, "4096") != NULL)
			named++;
		tca_response_clear(&resp);
		free(rb);
	}
	hwm1 = vm_hwm_kib(lim.pid);
	fprintf(stderr, "limits/items: engine VmHWM %ld kB -> %ld kB (+%ld kB) for %d frames "
	    "of %zu bytes\n", hwm0, hwm1, hwm1 - hwm0, CONNS, len);
	/* the connections stay usable */
	free(body);
	encode_request(1, "status", &body, &len);
	raw_send_frame(fds[0], body, len);
	raw_expect(fds[0], "OK");
	for (i = 0; i < CONNS; i++)
		close(fds[i]);
	free(body);
	ck_assert_msg(hwm1 - hwm0 < 32 * 1024, "VmHWM grew by %ld kB", hwm1 - hwm0);
	ck_assert_msg(named == CONNS, "%d of %d refusals name the limit of 4096 items",
	    named, CONNS);
	limits_stop();
}
END_TEST

/* ------------------------------------------------------------ /engine/text */

/* Issue 11, text from peers: device ids with control, format or separator
 * characters are refused and never reach the log raw; every refusal is
 * counted in status.refused, also those made before an op's handler runs.
 * Own daemon (the counters of the shared one move with the other tests). */

static struct test_token text_tok;
static struct daemon text_d;

static void
text_setup(void)
{
	test_token_create(&text_tok, "tca-text-test");
	daemon_start(&text_d, &text_tok, NULL, NULL);
}

static void
text_teardown(void)
{
	int st = daemon_stop(&text_d);

	if (st != 0)
		test_sh("cat '%s' >&2", text_d.log);
	daemon_cleanup(&text_d);
	test_token_destroy(&text_tok);
	ck_assert_int_eq(st, 0);
}

static uint64_t
text_refused(void)
{
	struct tca_client_error err;
	tca_client *c = connect_or_die(text_d.socket);
	cbor_item_t *res = NULL;
	uint64_t n = 0;

	ck_assert_msg(tca_client_call(c, "status", NULL, &res, &err) == TCA_OK, "status: %s",
	    err.message);
	tca_client_close(c);
	ck_assert_int_eq(tca_map_get_uint(res, "refused", &n), TCA_OK);
	cbor_decref(&res);
	return n;
}

/* exit 0 if the engine refuses this frontend's ca.create (role) */
static int
child_text_frontend(void)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	cbor_item_t *args, *res = NULL;
	int r;

	if (tca_client_connect(text_d.socket, 10000, &c, &err) != TCA_CLIENT_OK)
		return 10;
	args = cbor_new_definite_map(1);
	tca_map_add_text(args, "tenant", "t-role");
	r = tca_client_call(c, "ca.create", args, &res, &err);
	cbor_decref(&args);
	tca_client_close(c);
	return r == TCA_ERR_UNAUTHORIZED ? 0 : 11;
}

/* /engine/text/device-ids: NEL, U+2028, U+202E in a device id: BAD_REQUEST
 * naming the code point, for issue and device.register alike; the log
 * never holds them raw */
START_TEST(test_text_device_ids)
{
	static const char *const ids[] = {
		"dev\xc2\x85" "1",		/* U+0085 NEL */
		"dev\xe2\x80\xa8" "1",	/* U+2028 LINE SEPARATOR */
		"dev-\xe2\x80\xae" "1gpj",	/* U+202E RIGHT-TO-LEFT OVERRIDE */
	};
	static const char *const named[] = { "U+0085", "U+2028", "U+202E" };
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256");
	unsigned char *csr, *der = NULL;
	size_t len, der_len = 0, i;
	tca_client *c;
	cbor_item_t *args, *devs, *one, *res = NULL;

	ck_assert_int_eq(ca_create(text_d.socket, "t-text", NULL, &err), TCA_OK);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		csr = make_csr(k, ids[i], 0, 0, &len);
		c = connect_or_die(text_d.socket);
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(tca_client_issue(c, "t-text", ids[i], csr, len, 0, &der,
		    &der_len, &err), TCA_ERR_BAD_REQUEST);
		ck_assert_str_eq(err.code, "BAD_REQUEST");
		ck_assert_msg(strstr(err.message, named[i]) != NULL, "%s", err.message);
		ck_assert_ptr_null(der);

		args = cbor_new_definite_map(2);
		devs = cbor_new_definite_array(1);
		one = cbor_new_definite_map(2);
		ck_assert_int_eq(tca_map_add_text(one, "device_id", ids[i]), TCA_OK);
		ck_assert_int_eq(tca_map_add_text(one, "otp", "correct-horse-42"), TCA_OK);
		ck_assert(cbor_array_push(devs, one));
		cbor_decref(&one);
		ck_assert_int_eq(tca_map_add_text(args, "tenant", "t-text"), TCA_OK);
		ck_assert_int_eq(tca_map_add_item(args, "devices", devs), TCA_OK);
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(tca_client_call(c, "device.register", args, &res, &err),
		    TCA_ERR_BAD_REQUEST);
		ck_assert_msg(strstr(err.message, named[i]) != NULL, "%s", err.message);
		cbor_decref(&args);
		tca_client_close(c);
		OPENSSL_free(csr);
	}
	/* nothing of it in the log (debug level: refusals are logged) */
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		ck_assert_msg(test_sh("grep -qF '%s' '%s'", ids[i], text_d.log) != 0,
		    "device id %zu written raw to the log", i);
	ck_assert_int_eq(test_sh("grep -q 'U+202E' '%s'", text_d.log), 0);
	EVP_PKEY_free(k);
}
END_TEST

/* /engine/text/refused-counted: status.refused counts refusals at every
 * level - undecodable frame, protocol version, unknown op, role, argument
 * schema, an issue's arguments - as well as the engine's own */
START_TEST(test_text_refused_counted)
{
	static const unsigned char not_cbor[] = { 0xff, 0xff, 0xff };
	struct tca_client_error err;
	unsigned char *buf = NULL;
	size_t len = 0;
	uint64_t before, after, expect = 0;
	tca_client *c;
	cbor_item_t *args, *res = NULL;
	int fd;

	before = text_refused();
	/* schema: an argument cacerts does not have */
	c = connect_or_die(text_d.socket);
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-text");
	tca_map_add_uint(args, "bogus", 1);
	ck_assert_int_eq(tca_client_call(c, "cacerts", args, &res, &err), TCA_ERR_BAD_REQUEST);
	cbor_decref(&args);
	expect++;
	ck_assert_uint_eq(text_refused(), before + expect);
	/* schema: issue without its csr */
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-text");
	tca_map_add_text(args, "device_id", "dev-1");
	ck_assert_int_eq(tca_client_call(c, "issue", args, &res, &err), TCA_ERR_BAD_REQUEST);
	cbor_decref(&args);
	expect++;
	/* the engine's own: an unknown tenant */
	args = cbor_new_definite_map(3);
	tca_map_add_text(args, "tenant", "t-nosuch");
	tca_map_add_text(args, "device_id", "dev-1");
	tca_map_add_bytes(args, "csr", (const unsigned char *)"x", 1);
	ck_assert_int_ne(tca_client_call(c, "issue", args, &res, &err), TCA_OK);
	cbor_decref(&args);
	expect++;
	tca_client_close(c);
	/* undecodable, unknown op, unsupported version */
	fd = raw_connect(text_d.socket);
	raw_send_frame(fd, not_cbor, sizeof(not_cbor));
	raw_expect(fd, "BAD_REQUEST");
	expect++;
	encode_request(1, "no.such.op", &buf, &len);
	raw_send_frame(fd, buf, len);
	raw_expect(fd, "UNKNOWN_OP");
	free(buf);
	expect++;
	encode_request(99, "status", &buf, &len);
	raw_send_frame(fd, buf, len);
	raw_expect(fd, "UNSUPPORTED_VERSION");
	free(buf);
	expect++;
	close(fd);
	/* role: a frontend may not create CAs */
	if (geteuid() == 0) {
		ck_assert_int_eq(as_user(NOBODY, NOBODY, child_text_frontend), 0);
		expect++;
	}
	after = text_refused();
	ck_assert_msg(after == before + expect, "status.refused went from %llu to %llu, "
	    "expected +%llu", (unsigned long long)before, (unsigned long long)after,
	    (unsigned long long)expect);
}
END_TEST

static Suite *
engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("shared-daemon");
	TCase *own = tcase_create("own-daemon");
	TCase *limits = tcase_create("limits");

	tcase_add_unchecked_fixture(tc, shared_setup, shared_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_ca_fields);
	tcase_add_test(tc, test_ca_create_twice);
	tcase_add_test(tc, test_ca_bad_tenant);
	tcase_add_test(tc, test_ca_key_types);
	tcase_add_test(tc, test_issue_verify);
	tcase_add_test(tc, test_issue_days);
	tcase_add_test(tc, test_ocsp_status);
	tcase_add_test(tc, test_cacerts);
	tcase_add_test(tc, test_policy_refusals);
	tcase_add_test(tc, test_reenroll);
	tcase_add_test(tc, test_rpc_malformed);
	tcase_add_test(tc, test_rpc_slow_client);
	tcase_add_test(tc, test_auth);
	tcase_add_test(tc, test_journal);
	tcase_add_test(tc, test_ca_delete);
	tcase_add_test(tc, test_concurrent);
	suite_add_tcase(s, tc);

	tcase_set_timeout(own, 300);
	tcase_add_test(own, test_key_attributes);
	tcase_add_test(own, test_store_unwritable);
	tcase_add_test(own, test_sigterm_under_load);
	suite_add_tcase(s, own);

	tcase_set_timeout(limits, 120);
	tcase_add_test(limits, test_limit_per_uid);
	tcase_add_test(limits, test_limit_admin_reserve);
	tcase_add_test(limits, test_limit_idle_status);
	tcase_add_test(limits, test_limit_nofile);
	tcase_add_test(limits, test_limit_items_memory);
	suite_add_tcase(s, limits);

	/* issue 11: text from peers, refusals counted */
	tc = tcase_create("text");
	tcase_add_unchecked_fixture(tc, text_setup, text_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_text_device_ids);
	tcase_add_test(tc, test_text_refused_counted);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	test_require_tool("softhsm2-util");
	test_require_tool("openssl");
	test_require_tool("certtool");
	test_require_tool("sqlite3");
	sr = srunner_create(engine_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
