/*
 * check_reissue.c - the yearly 2 October re-issuance, driven through the real
 * daemon by an injected clock (testing.clock_file), never by waiting for a date.
 *
 * /reissue/scheduled        at the instant, not a second before; same key,
 *                           only validity and serial change; old and new device
 *                           certificates verify (OpenSSL, GnuTLS, NSS)
 * /reissue/restart          no second re-issue for the same year after restart
 * /reissue/catch-up         engine down at the instant: re-issued on start
 * /reissue/kill9            kill -9 during a run of 50 tenants, restart: every
 *                           tenant re-issued exactly once, none without a cert
 * /reissue/paced           reissue.workers / reissue.rate: the pace is kept,
 *                           every CA re-issued exactly once with 4 workers
 * /reissue/token-error      one tenant fails: others renewed, it is retried with
 *                           backoff, reported, alerted exactly once
 * /reissue/manual           ca.reissue --dry-run and forced, serial keep mode
 * /reissue/expiry-alert     one "expiring" alert per certificate
 * /reissue/min-validity     device.min_validity_days: a CA with less left
 *                           issues nothing (POLICY_VIOLATION), not a
 *                           certificate cut to what it has left
 * /reissue/expiry-status    ca show / ca list / status: expiring, expired;
 *                           warned at start when schedule.enabled = false
 *
 * TCase "crl" (crl.validity_hours = 10, crl.refresh_percent = 50 unless said):
 * /reissue/crl-refresh        a new CA has CRL 1; not re-signed 1 min before
 *                             50 % of its validity, re-signed 1 min after it
 *                             (thisUpdate = now, nextUpdate = now + 10 h);
 *                             numbers go on across a restart (crl.sign)
 * /reissue/crl-token-error    C_Sign fails (p11-faulty): the last CRL stays
 *                             served, status shows crl_failed with reason and
 *                             attempts, one "crl-failed" alert, retried with
 *                             backoff, also across a restart; healed: next
 *                             number, failure cleared
 * /reissue/crl-after-revocation  cert.revoke re-signs at once: number + 1,
 *                             the serial listed with its reason code
 */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "harness.h"
#include "p11-faulty.h"
#include "store.h"
#include "tca-client.h"
#include "tca-error.h"
#include "tenant.h"
#include "testutil.h"
#include "token.h"
#include "wire.h"

#define INSTANT_2026 (test_utc(2026, 10, 2, 2, 0, 0))

struct rig {
	struct test_token t;
	struct daemon d;
	char clock[1100], alerts[1100], alert_cmd[1100], extra[4096];
};

static void
set_clock(struct rig *g, time_t t)
{
	char buf[32], tmp[PATH_MAX];

	/* written aside and renamed: the engine reads the file at any moment,
	 * and an empty (truncated) file would make it fall back to the real clock */
	snprintf(buf, sizeof(buf), "%lld\n", (long long)t);
	ck_assert_int_lt(snprintf(tmp, sizeof(tmp), "%s.tmp", g->clock), (int)sizeof(tmp));
	ck_assert_int_eq(test_write_file(tmp, buf, strlen(buf), 0644), 0);
	ck_assert_int_eq(rename(tmp, g->clock), 0);
}

/* token + clock file + alert script; extra config appended; module: a
 * PKCS#11 module to use instead of SoftHSMv2 (tests/p11-faulty.c), or NULL */
static void
rig_start_module(struct rig *g, const char *label, time_t now, const char *extra,
    const char *module)
{
	char script[2048];

	memset(g, 0, sizeof(*g));
	test_token_create(&g->t, label);
	snprintf(g->clock, sizeof(g->clock), "%s/clock", g->t.dir);
	snprintf(g->alerts, sizeof(g->alerts), "%s/alerts.log", g->t.dir);
	snprintf(g->alert_cmd, sizeof(g->alert_cmd), "%s/alert.sh", g->t.dir);
	snprintf(script, sizeof(script),
	    "#!/bin/sh\necho \"$TCA_ALERT_KIND $TCA_ALERT_TENANT $TCA_ALERT_ATTEMPTS $TCA_ALERT_NOT_AFTER\" >> '%s'\n",
	    g->alerts);
	ck_assert_int_eq(test_write_file(g->alert_cmd, script, strlen(script), 0755), 0);
	set_clock(g, now);
	snprintf(g->extra, sizeof(g->extra),
	    "testing.clock_file = %s\nalert.command = %s\n%s", g->clock, g->alert_cmd,
	    extra != NULL ? extra : "");
	if (module != NULL)
		daemon_start_module(&g->d, &g->t, module, "softhsm2", g->extra, NULL);
	else
		daemon_start(&g->d, &g->t, g->extra, NULL);
}

static void
rig_start(struct rig *g, const char *label, time_t now, const char *extra)
{
	rig_start_module(g, label, now, extra, NULL);
}

static void
rig_stop(struct rig *g)
{
	ck_assert_int_eq(daemon_stop(&g->d), 0);
	daemon_cleanup(&g->d);
	test_token_destroy(&g->t);
}

static void
fingerprint(const char *sock, const char *tenant, char *out, size_t outsz)
{
	struct tca_client_error err;
	cbor_item_t *res = ca_show(sock, tenant, &err);

	ck_assert_msg(res != NULL, "ca.show %s: %s", tenant, err.message);
	ck_assert_int_eq(tca_map_get_text(res, "fingerprint", out, outsz), TCA_OK);
	cbor_decref(&res);
}

/* waits until tenant's fingerprint differs from old; 0 on success */
static int
wait_reissued(const char *sock, const char *tenant, const char *old, int max_ms)
{
	char fp[80];
	int waited;

	for (waited = 0; waited <= max_ms; waited += 50) {
		fingerprint(sock, tenant, fp, sizeof(fp));
		if (strcmp(fp, old) != 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int
count_lines(const char *path, const char *needle)
{
	char line[512];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

/* sqlite3 query printing one integer */
static long
db_long(const char *db, const char *sql)
{
	char cmd[4096], buf[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"%s\"", db, sql);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	if (fgets(buf, sizeof(buf), p) == NULL)
		buf[0] = '\0';
	pclose(p);
	return strtol(buf, NULL, 10);
}

static void
nss_verify(const char *dir, X509 *ca, const unsigned char *der, size_t len)
{
	char ca_pem[1200], dev_pem[1200];

	snprintf(ca_pem, sizeof(ca_pem), "%s/nss-ca.pem", dir);
	snprintf(dev_pem, sizeof(dev_pem), "%s/nss-dev.pem", dir);
	write_pem(ca_pem, ca, 0);
	write_pem_der(dev_pem, der, len, 0);
	ck_assert_int_eq(test_sh("rm -rf '%s/nssdb' && mkdir '%s/nssdb' && "
	    "certutil -N -d 'sql:%s/nssdb' --empty-password && "
	    "certutil -A -d 'sql:%s/nssdb' -n ca -t CT,C,C -a -i '%s'",
	    dir, dir, dir, dir, ca_pem), 0);
	ck_assert_msg(test_sh("vfychain -d 'sql:%s/nssdb' -u 0 -a '%s' >'%s/vfy.out' 2>&1 && "
	    "grep -q 'Chain is good' '%s/vfy.out'", dir, dev_pem, dir, dir) == 0,
	    "NSS vfychain did not verify the device certificate");
}

/* ------------------------------------------------------------ CRL helpers */

/* A CRL as the `crl` op served it; the DER is parsed and must agree with
 * the result's number, thisUpdate and nextUpdate. */
struct crl_got {
	uint64_t number, entries;
	time_t this_update, next_update;
	unsigned char *der;
	size_t len;
	X509_CRL *x;
};

static void
crl_got_clear(struct crl_got *g)
{
	free(g->der);
	X509_CRL_free(g->x);
	memset(g, 0, sizeof(*g));
}

static time_t
asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

/* The CRL number extension of x (must be there, non-critical). */
static uint64_t
crl_der_number(X509_CRL *x)
{
	ASN1_INTEGER *n;
	uint64_t v = 0;
	int crit = -2;

	n = X509_CRL_get_ext_d2i(x, NID_crl_number, &crit, NULL);
	ck_assert_msg(n != NULL, "the CRL has no CRL number extension");
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(ASN1_INTEGER_get_uint64(&v, n), 1);
	ASN1_INTEGER_free(n);
	return v;
}

/* `crl` for tenant through tca_client_call; 0 with the result parsed into
 * *out, else the engine's error (err filled). */
static int
crl_get(const char *sock, const char *tenant, struct crl_got *out, struct tca_client_error *err)
{
	tca_client *c = connect_or_die(sock);
	cbor_item_t *args = cbor_new_definite_map(1), *res = NULL;
	const unsigned char *der, *p;
	size_t len;
	uint64_t tu = 0, nu = 0;
	int r;

	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(tca_map_add_text(args, "tenant", tenant), TCA_OK);
	memset(err, 0, sizeof(*err));
	r = tca_client_call(c, "crl", args, &res, err);
	cbor_decref(&args);
	tca_client_close(c);
	if (r != TCA_OK)
		return r;
	ck_assert_int_eq(tca_map_get_bytes(res, "crl", &der, &len), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(res, "number", &out->number), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(res, "this_update", &tu), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(res, "next_update", &nu), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(res, "entries", &out->entries), TCA_OK);
	out->this_update = (time_t)tu;
	out->next_update = (time_t)nu;
	ck_assert_ptr_nonnull(out->der = malloc(len));
	memcpy(out->der, der, len);
	out->len = len;
	cbor_decref(&res);
	p = out->der;
	out->x = d2i_X509_CRL(NULL, &p, (long)out->len);
	ck_assert_msg(out->x != NULL, "the served CRL of %s does not parse", tenant);
	ck_assert_msg(p == out->der + out->len, "trailing bytes after the CRL");
	ck_assert_int_eq(X509_CRL_get_version(out->x), 1);	/* v2 */
	ck_assert_uint_eq(crl_der_number(out->x), out->number);
	ck_assert_int_eq(asn1_time_unix(X509_CRL_get0_lastUpdate(out->x)), out->this_update);
	ck_assert_int_eq(asn1_time_unix(X509_CRL_get0_nextUpdate(out->x)), out->next_update);
	/* an empty CRL has no revokedCertificates at all */
	ck_assert_uint_eq(X509_CRL_get_REVOKED(out->x) != NULL ?
	    (uint64_t)sk_X509_REVOKED_num(X509_CRL_get_REVOKED(out->x)) : 0, out->entries);
	return TCA_OK;
}

static void
crl_fetch(const char *sock, const char *tenant, struct crl_got *out)
{
	struct tca_client_error err;

	ck_assert_msg(crl_get(sock, tenant, out, &err) == TCA_OK, "crl %s: %s: %s", tenant,
	    err.code, err.message);
}

/* The CRL is signed by the tenant's current CA key and names it as issuer. */
static void
crl_check_signed_by_ca(const char *sock, const char *tenant, const struct crl_got *g)
{
	X509 *ca = ca_cert(sock, tenant);

	ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(g->x), X509_get_subject_name(ca)), 0);
	ck_assert_msg(X509_CRL_verify(g->x, X509_get0_pubkey(ca)) == 1,
	    "the CRL of %s does not verify with its CA's key", tenant);
	X509_free(ca);
}

/* Polls `crl` until its number is at least want (max_ms); the last number. */
static uint64_t
wait_crl_number(const char *sock, const char *tenant, uint64_t want, int max_ms)
{
	struct crl_got g;
	uint64_t n = 0;
	int waited;

	for (waited = 0; waited <= max_ms; waited += 50) {
		crl_fetch(sock, tenant, &g);
		n = g.number;
		crl_got_clear(&g);
		if (n >= want)
			break;
		usleep(50000);
	}
	return n;
}

/* The CRL part of `status`: tenants.crl_failed, and tenant's crl_failed[]
 * entry (*found 0 if it has none). */
struct crl_banner {
	uint64_t count;		/* tenants.crl_failed */
	size_t listed;		/* elements of crl_failed[] */
	int found;
	char reason[256];
	uint64_t attempts, next_update, next_retry_at;
};

static void
crl_status(const char *sock, const char *tenant, struct crl_banner *b)
{
	struct tca_client_error err;
	cbor_item_t *res = NULL, *arr, *el;
	tca_client *c = connect_or_die(sock);
	char name[80];
	size_t i;

	memset(b, 0, sizeof(*b));
	ck_assert_msg(tca_client_call(c, "status", NULL, &res, &err) == TCA_OK, "status: %s",
	    err.message);
	tca_client_close(c);
	ck_assert_int_eq(tca_map_get_uint(tca_map_get(res, "tenants"), "crl_failed", &b->count),
	    TCA_OK);
	arr = tca_map_get(res, "crl_failed");
	ck_assert_msg(arr != NULL && cbor_isa_array(arr), "status has no crl_failed array");
	b->listed = cbor_array_size(arr);
	for (i = 0; i < b->listed; i++) {
		el = cbor_array_get(arr, i);
		ck_assert_int_eq(tca_map_get_text(el, "tenant", name, sizeof(name)), TCA_OK);
		if (strcmp(name, tenant) == 0) {
			b->found = 1;
			ck_assert_int_eq(tca_map_get_text(el, "reason", b->reason,
			    sizeof(b->reason)), TCA_OK);
			ck_assert_int_eq(tca_map_get_uint(el, "attempts", &b->attempts), TCA_OK);
			ck_assert_int_eq(tca_map_get_uint(el, "next_update", &b->next_update),
			    TCA_OK);
			ck_assert_int_eq(tca_map_get_uint(el, "next_retry_at", &b->next_retry_at),
			    TCA_OK);
		}
		cbor_decref(&el);
	}
	cbor_decref(&res);
}

/* Polls status until tenant's CRL failure shows at least `attempts` attempts
 * (attempts 0: until no CRL failure is shown at all); 0 on success. */
static int
wait_crl_attempts(const char *sock, const char *tenant, uint64_t attempts, int max_ms)
{
	struct crl_banner b;
	int waited;

	for (waited = 0; waited <= max_ms; waited += 50) {
		crl_status(sock, tenant, &b);
		if (attempts == 0 ? b.count == 0 && b.listed == 0 :
		    b.found && b.attempts >= attempts)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* Waits (bounded) until path has at least n lines containing needle. */
static int
wait_lines(const char *path, const char *needle, int n, int max_ms)
{
	int waited;

	for (waited = 0; waited <= max_ms; waited += 25) {
		if (count_lines(path, needle) >= n)
			return 0;
		usleep(25000);
	}
	return -1;
}

/* Replaces the p11-faulty control file atomically, as the module wants it. */
static void
faulty_ctl(const char *ctl, const char *text)
{
	char tmp[1200];

	snprintf(tmp, sizeof(tmp), "%s.new", ctl);
	ck_assert_int_eq(test_write_file(tmp, text, strlen(text), 0600), 0);
	ck_assert_int_eq(rename(tmp, ctl), 0);
}

/* cert.revoke; the result (caller decrefs) */
static cbor_item_t *
cert_revoke(const char *sock, const char *tenant, const char *serial, const char *reason)
{
	struct tca_client_error err;
	tca_client *c = connect_or_die(sock);
	cbor_item_t *args = cbor_new_definite_map(3), *res = NULL;

	ck_assert_int_eq(tca_map_add_text(args, "tenant", tenant), TCA_OK);
	ck_assert_int_eq(tca_map_add_text(args, "serial", serial), TCA_OK);
	if (reason != NULL)
		ck_assert_int_eq(tca_map_add_text(args, "reason", reason), TCA_OK);
	ck_assert_msg(tca_client_call(c, "cert.revoke", args, &res, &err) == TCA_OK,
	    "cert.revoke %s %s: %s: %s", tenant, serial, err.code, err.message);
	cbor_decref(&args);
	tca_client_close(c);
	return res;
}

/* ------------------------------------------------------------ tests */

START_TEST(test_scheduled)
{
	struct rig g;
	struct tca_client_error err;
	unsigned char *old_dev = NULL, *new_dev = NULL, **certs = NULL;
	size_t old_len = 0, new_len = 0, *lens = NULL, n = 0, nd = 0;
	char fp0[80], fp1[80];
	struct tca_tbs_diff diff[16];
	X509 *old_ca, *new_ca, *prev;
	cbor_item_t *res;
	tca_client *c;
	int pday = 0, psec = 0;

	rig_start(&g, "tca-rs-sched", test_utc(2026, 9, 1, 12, 0, 0), NULL);
	ck_assert_int_eq(ca_create(g.d.socket, "t1", NULL, &err), TCA_OK);
	old_ca = ca_cert(g.d.socket, "t1");
	fingerprint(g.d.socket, "t1", fp0, sizeof(fp0));
	ck_assert_int_eq(issue(g.d.socket, "t1", "dev-old", "ec-p256", &old_dev, &old_len, &err), TCA_OK);

	/* one second before the instant: nothing happens */
	set_clock(&g, INSTANT_2026 - 1);
	ck_assert_int_ne(wait_reissued(g.d.socket, "t1", fp0, 1000), 0);
	/* at the instant */
	set_clock(&g, INSTANT_2026);
	ck_assert_msg(wait_reissued(g.d.socket, "t1", fp0, 10000) == 0, "not re-issued at the instant");
	new_ca = ca_cert(g.d.socket, "t1");
	fingerprint(g.d.socket, "t1", fp1, sizeof(fp1));

	/* same key, notBefore = the instant exactly, 1095 days, only validity and serial differ */
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(old_ca), X509_get0_pubkey(new_ca)), 1);
	{
		struct tm tm;

		ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notBefore(new_ca), &tm), 1);
		ck_assert_int_eq(timegm(&tm), INSTANT_2026);
	}
	ck_assert_int_eq(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(new_ca), X509_get0_notAfter(new_ca)), 1);
	ck_assert_int_eq(pday, 1095);
	ck_assert_int_eq(psec, 0);
	{
		unsigned char *od = NULL, *ndr = NULL;
		int ol = i2d_X509(old_ca, &od), nl = i2d_X509(new_ca, &ndr);

		ck_assert_int_gt(ol, 0);
		ck_assert_int_gt(nl, 0);
		ck_assert_int_eq(tca_cert_tbs_diff(od, (size_t)ol, ndr, (size_t)nl, diff, 16, &nd),
		    TCA_OK);
		OPENSSL_free(od);
		OPENSSL_free(ndr);
	}
	ck_assert_uint_eq(nd, 3);
	ck_assert_str_eq(diff[0].field, "serialNumber");
	ck_assert_str_eq(diff[1].field, "validity.notBefore");
	ck_assert_str_eq(diff[2].field, "validity.notAfter");

	/* the previous certificate stays available */
	res = ca_show(g.d.socket, "t1", &err);
	{
		int hp = 0;

		ck_assert_int_eq(tca_map_get_bool(res, "has_previous", &hp), TCA_OK);
		ck_assert_int_eq(hp, 1);
	}
	cbor_decref(&res);
	c = connect_or_die(g.d.socket);
	{
		cbor_item_t *args = cbor_new_definite_map(2), *r2 = NULL, *der;
		const unsigned char *p;

		tca_map_add_text(args, "tenant", "t1");
		tca_map_add_bool(args, "previous", 1);
		ck_assert_int_eq(tca_client_call(c, "ca.show", args, &r2, &err), TCA_OK);
		der = tca_map_get(r2, "certificate");
		p = cbor_bytestring_handle(der);
		prev = d2i_X509(NULL, &p, (long)cbor_bytestring_length(der));
		ck_assert_int_eq(X509_cmp(prev, old_ca), 0);
		X509_free(prev);
		cbor_decref(&r2);
		cbor_decref(&args);
	}
	/* cacerts: the new one first, then the previous one (still valid) */
	ck_assert_int_eq(tca_client_cacerts(c, "t1", &certs, &lens, &n, &err), TCA_OK);
	ck_assert_uint_eq(n, 2);
	{
		unsigned char *der = NULL;
		int dl = i2d_X509(new_ca, &der);

		ck_assert_uint_eq(lens[0], (size_t)dl);
		ck_assert_int_eq(memcmp(certs[0], der, (size_t)dl), 0);
		OPENSSL_free(der);
	}
	tca_client_free_certs(certs, lens, n);
	tca_client_close(c);

	/* device certificates: the old one verifies against the new CA, and new ones too */
	verify_with_openssl_and_gnutls(g.t.dir, new_ca, old_dev, old_len);
	nss_verify(g.t.dir, new_ca, old_dev, old_len);
	ck_assert_int_eq(issue(g.d.socket, "t1", "dev-new", "ec-p256", &new_dev, &new_len, &err), TCA_OK);
	verify_with_openssl_and_gnutls(g.t.dir, new_ca, new_dev, new_len);
	nss_verify(g.t.dir, new_ca, new_dev, new_len);

	/* one journal record with both fingerprints */
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	{
		char sql[512];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM journal WHERE op='ca-reissue' AND tenant='t1' "
		    "AND fingerprint_hex='%s' AND details LIKE '%%old_fingerprint=%s%%'", fp1, fp0);
		ck_assert_int_eq(db_long(g.d.db, sql), 1);
	}
	free(old_dev);
	free(new_dev);
	X509_free(old_ca);
	X509_free(new_ca);
	daemon_cleanup(&g.d);
	test_token_destroy(&g.t);
}
END_TEST

START_TEST(test_restart_no_double)
{
	struct rig g;
	struct tca_client_error err;
	char fp0[80], fp1[80], fp2[80];

	rig_start(&g, "tca-rs-restart", test_utc(2026, 9, 1, 0, 0, 0), NULL);
	ck_assert_int_eq(ca_create(g.d.socket, "t2", NULL, &err), TCA_OK);
	fingerprint(g.d.socket, "t2", fp0, sizeof(fp0));
	set_clock(&g, INSTANT_2026 + 5);
	ck_assert_int_eq(wait_reissued(g.d.socket, "t2", fp0, 10000), 0);
	fingerprint(g.d.socket, "t2", fp1, sizeof(fp1));
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	set_clock(&g, INSTANT_2026 + 3600);
	daemon_exec(&g.d, NULL);
	usleep(1000000);	/* several scheduler passes at 200 ms */
	fingerprint(g.d.socket, "t2", fp2, sizeof(fp2));
	ck_assert_str_eq(fp1, fp2);
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	ck_assert_int_eq(db_long(g.d.db, "SELECT count(*) FROM journal WHERE op='ca-reissue'"), 1);
	daemon_cleanup(&g.d);
	test_token_destroy(&g.t);
}
END_TEST

START_TEST(test_catch_up)
{
	struct rig g;
	struct tca_client_error err;
	char fp0[80];
	X509 *x;
	struct tm tm;

	rig_start(&g, "tca-rs-catchup", test_utc(2026, 9, 1, 0, 0, 0), NULL);
	ck_assert_int_eq(ca_create(g.d.socket, "t3", NULL, &err), TCA_OK);
	fingerprint(g.d.socket, "t3", fp0, sizeof(fp0));
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	/* down over the instant; back on 5 October */
	set_clock(&g, test_utc(2026, 10, 5, 9, 0, 0));
	daemon_exec(&g.d, NULL);
	ck_assert_int_eq(wait_reissued(g.d.socket, "t3", fp0, 10000), 0);
	x = ca_cert(g.d.socket, "t3");
	ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
	ck_assert_int_eq(timegm(&tm), INSTANT_2026);	/* the missed instant, not "now" */
	X509_free(x);
	rig_stop(&g);
}
END_TEST

/* /reissue/paced: reissue.workers and reissue.rate: 30 due CAs at 20/s take
 * at least 29/20 s, with 4 workers each is still re-issued exactly once */
START_TEST(test_paced)
{
	struct rig g;
	struct tca_client_error err;
	struct timespec t0, t1;
	char tenant[32], sql[512];
	double secs;
	int i;

	rig_start(&g, "tca-rs-paced", test_utc(2026, 9, 1, 0, 0, 0),
	    "reissue.workers = 4\nreissue.rate = 20\n");
	for (i = 0; i < 30; i++) {
		snprintf(tenant, sizeof(tenant), "p%02d", i);
		ck_assert_int_eq(ca_create(g.d.socket, tenant, NULL, &err), TCA_OK);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	set_clock(&g, INSTANT_2026 + 1);
	for (i = 0; i < 400 && count_lines(g.d.log, "CA re-issued") < 30; i++)
		usleep(25000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "paced: 30 re-issued in %.2f s at reissue.rate = 20\n", secs);
	ck_assert_int_eq(count_lines(g.d.log, "CA re-issued"), 30);
	ck_assert_msg(secs >= 29.0 / 20.0 - 0.05, "30 re-issuances at 20/s took only %.2f s", secs);
	ck_assert_int_eq(count_lines(g.d.log, "re-issuance: 30 CAs due; 4 workers, paced"), 1);
	usleep(500000);	/* more passes: nothing more to do */
	ck_assert_int_eq(count_lines(g.d.log, "CA re-issued"), 30);
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM cas c JOIN certificates x ON "
	    "x.cert_id = c.current_cert_id WHERE c.status='active' AND x.not_before=%lld",
	    (long long)INSTANT_2026);
	ck_assert_int_eq(db_long(g.d.db, sql), 30);
	ck_assert_int_eq(db_long(g.d.db, "SELECT count(*) FROM journal WHERE op='ca-reissue'"), 30);
	daemon_cleanup(&g.d);
	test_token_destroy(&g.t);
}
END_TEST

START_TEST(test_kill9_fifty)
{
	struct rig g;
	struct tca_client_error err;
	char tenant[32], sql[512], admin[1100];
	int i, st;

	rig_start(&g, "tca-rs-kill9", test_utc(2026, 9, 1, 0, 0, 0), NULL);
	for (i = 0; i < 50; i++) {
		snprintf(tenant, sizeof(tenant), "k%02d", i);
		ck_assert_int_eq(ca_create(g.d.socket, tenant, NULL, &err), TCA_OK);
	}
	set_clock(&g, INSTANT_2026 + 60);
	/* kill -9 as soon as the run has started */
	for (i = 0; i < 2000; i++) {
		if (count_lines(g.d.log, "CA re-issued") > 0)
			break;
		usleep(2000);
	}
	kill(g.d.pid, SIGKILL);
	waitpid(g.d.pid, &st, 0);
	g.d.pid = 0;
	fprintf(stderr, "kill9: %d of 50 re-issued before SIGKILL\n", count_lines(g.d.log, "CA re-issued"));
	daemon_exec(&g.d, NULL);
	for (i = 0; i < 200; i++) {
		if (count_lines(g.d.log, "CA re-issued") >= 50)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	/* every tenant: exactly one certificate for this year's instant, and it is current */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM certificates WHERE kind='ca' AND not_before=%lld",
	    (long long)INSTANT_2026);
	ck_assert_int_eq(db_long(g.d.db, sql), 50);
	ck_assert_int_eq(db_long(g.d.db, "SELECT count(*) FROM journal WHERE op='ca-reissue'"), 50);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM cas c JOIN certificates x ON x.cert_id = c.current_cert_id "
	    "WHERE c.status='active' AND x.not_before=%lld", (long long)INSTANT_2026);
	ck_assert_int_eq(db_long(g.d.db, sql), 50);
	test_build_path("ca-admin", admin, sizeof(admin));
	ck_assert_int_eq(test_sh("'%s' journal verify --db '%s' >/dev/null", admin, g.d.db), 0);
	daemon_cleanup(&g.d);
	test_token_destroy(&g.t);
}
END_TEST

/* renewal_failed[0].attempts from status (0 if none failed yet) */
static uint64_t
failed_attempts(const char *sock)
{
	struct tca_client_error err;
	cbor_item_t *res = NULL, *ren;
	uint64_t attempts = 0;
	tca_client *c = connect_or_die(sock);

	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_OK);
	ren = cbor_array_get(tca_map_get(res, "renewal_failed"), 0);
	if (ren != NULL) {
		ck_assert_int_eq(tca_map_get_uint(ren, "attempts", &attempts), TCA_OK);
		cbor_decref(&ren);
	}
	cbor_decref(&res);
	tca_client_close(c);
	return attempts;
}

/* waits (up to 30 s) until the scheduler has made `want` attempts */
static void
wait_attempts(const char *sock, uint64_t want)
{
	uint64_t got = 0;
	int i;

	for (i = 0; i < 600 && (got = failed_attempts(sock)) < want; i++)
		usleep(50000);
	ck_assert_msg(got == want, "%llu re-issuance attempts, expected %llu",
	    (unsigned long long)got, (unsigned long long)want);
}

START_TEST(test_token_error)
{
	struct rig g;
	struct tca_client_error err;
	struct tca_token_params tp;
	tca_token *tk = NULL;
	unsigned char id[TCA_KEY_ID_LEN];
	char fpg[80], fpb[80], msg[256], status[32];
	cbor_item_t *res, *ren;
	uint64_t attempts = 0, nfailed = 0;
	tca_client *c;

	rig_start(&g, "tca-rs-tokerr", test_utc(2026, 9, 1, 0, 0, 0),
	    "reissue.retry_min_s = 60\nreissue.retry_max_s = 600\n");
	ck_assert_int_eq(ca_create(g.d.socket, "good", NULL, &err), TCA_OK);
	ck_assert_int_eq(ca_create(g.d.socket, "bad", NULL, &err), TCA_OK);
	fingerprint(g.d.socket, "good", fpg, sizeof(fpg));
	fingerprint(g.d.socket, "bad", fpb, sizeof(fpb));
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	/* the bad tenant's key disappears from the token */
	memset(&tp, 0, sizeof(tp));
	tp.module_path = test_softhsm_module();
	tp.token_uri = g.t.uri;
	tp.pool_size = 1;
	ck_assert_int_eq(tca_token_open(&tp, TEST_PIN, strlen(TEST_PIN), &tk, msg, sizeof(msg)), TCA_OK);
	tca_tenant_key_id("bad", id);
	ck_assert_int_eq(tca_token_destroy_key(tk, id, sizeof(id), NULL), TCA_OK);
	tca_token_close(tk);

	set_clock(&g, INSTANT_2026 + 10);
	daemon_exec(&g.d, NULL);
	ck_assert_int_eq(wait_reissued(g.d.socket, "good", fpg, 10000), 0);
	wait_attempts(g.d.socket, 1);
	res = ca_show(g.d.socket, "bad", &err);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(tca_map_get_text(res, "status", status, sizeof(status)), TCA_OK);
	ck_assert_str_eq(status, "key-missing");
	cbor_decref(&res);
	ck_assert_msg(wait_lines(g.alerts, "renewal-failed bad", 1, 10000) == 0,
	    "no \"renewal-failed bad\" alert");
	ck_assert_int_eq(count_lines(g.alerts, "renewal-failed bad"), 1);
	/* retried with backoff: 60 s later, a second attempt, no second alert */
	set_clock(&g, INSTANT_2026 + 10 + 61);
	wait_attempts(g.d.socket, 2);
	set_clock(&g, INSTANT_2026 + 10 + 61 + 121);
	wait_attempts(g.d.socket, 3);
	c = connect_or_die(g.d.socket);
	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(tca_map_get(res, "tenants"), "renewal_failed", &nfailed), TCA_OK);
	ck_assert_uint_eq(nfailed, 1);
	ren = cbor_array_get(tca_map_get(res, "renewal_failed"), 0);
	ck_assert_ptr_nonnull(ren);
	ck_assert_int_eq(tca_map_get_text(ren, "reason", msg, sizeof(msg)), TCA_OK);
	ck_assert_msg(strstr(msg, "not on the token") != NULL, "reason: %s", msg);
	ck_assert_int_eq(tca_map_get_uint(ren, "attempts", &attempts), TCA_OK);
	ck_assert_uint_eq(attempts, 3);
	cbor_decref(&ren);
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_int_eq(count_lines(g.alerts, "renewal-failed bad"), 1);
	ck_assert_int_eq(count_lines(g.alerts, "renewal-failed good"), 0);
	{
		char fpb2[80];

		fingerprint(g.d.socket, "bad", fpb2, sizeof(fpb2));
		ck_assert_str_eq(fpb, fpb2);
	}
	rig_stop(&g);
}
END_TEST

START_TEST(test_manual)
{
	struct rig g;
	struct tca_client_error err;
	char fp0[80], fp1[80], admin[1100];
	X509 *a, *b;

	rig_start(&g, "tca-rs-manual", test_utc(2026, 9, 1, 0, 0, 0), "reissue.serial = keep\nschedule.enabled = false\n");
	ck_assert_int_eq(ca_create(g.d.socket, "tm", NULL, &err), TCA_OK);
	fingerprint(g.d.socket, "tm", fp0, sizeof(fp0));
	a = ca_cert(g.d.socket, "tm");
	test_build_path("ca-admin", admin, sizeof(admin));
	/* dry run an hour later (not due: forced, notBefore = now): validity
	 * changes, the serial is kept, nothing is signed */
	set_clock(&g, test_utc(2026, 9, 1, 1, 0, 0));
	ck_assert_int_eq(test_sh("'%s' --socket '%s' ca reissue tm --dry-run > '%s/dry.out'",
	    admin, g.d.socket, g.t.dir), 0);
	ck_assert_int_eq(test_sh("grep -q 'dry run' '%s/dry.out' && "
	    "grep -q 'validity.notBefore .*2026-09-01T00:00:00Z -> 2026-09-01T01:00:00Z' '%s/dry.out' && "
	    "! grep -q serialNumber '%s/dry.out'", g.t.dir, g.t.dir, g.t.dir), 0);
	fingerprint(g.d.socket, "tm", fp1, sizeof(fp1));
	ck_assert_str_eq(fp0, fp1);
	/* schedule disabled on this node: the instant passes, nothing happens */
	set_clock(&g, INSTANT_2026 + 60);
	ck_assert_int_ne(wait_reissued(g.d.socket, "tm", fp0, 800), 0);
	/* the operator re-issues: due, so notBefore = the instant; serial kept */
	ck_assert_int_eq(test_sh("'%s' --socket '%s' ca reissue tm > '%s/re.out'", admin, g.d.socket, g.t.dir), 0);
	b = ca_cert(g.d.socket, "tm");
	ck_assert_int_eq(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
	ck_assert_int_ne(X509_cmp(a, b), 0);
	{
		struct tm tm;

		ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notBefore(b), &tm), 1);
		ck_assert_int_eq(timegm(&tm), INSTANT_2026);
	}
	/* --all goes through the same path; a second one is forced (now) */
	ck_assert_int_eq(test_sh("'%s' --socket '%s' ca reissue --all > '%s/all.out'", admin, g.d.socket, g.t.dir), 0);
	ck_assert_int_eq(test_sh("grep -q '1 CAs, 0 failed' '%s/all.out'", g.t.dir), 0);
	ck_assert_int_eq(test_sh("'%s' --socket '%s' ca reissue nosuch >/dev/null 2>&1", admin, g.d.socket), 1);
	X509_free(a);
	X509_free(b);
	rig_stop(&g);
}
END_TEST

START_TEST(test_expiry_alert)
{
	struct rig g;
	struct tca_client_error err;
	int i;

	/* a window longer than the validity: alerted at once, once */
	rig_start(&g, "tca-rs-expiry", test_utc(2026, 9, 1, 0, 0, 0), "alert.expiry_window_days = 1100\n");
	ck_assert_int_eq(ca_create(g.d.socket, "te", NULL, &err), TCA_OK);
	for (i = 0; i < 400 && count_lines(g.alerts, "expiring te") < 1; i++)
		usleep(25000);
	ck_assert_int_eq(count_lines(g.alerts, "expiring te"), 1);
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	daemon_exec(&g.d, NULL);
	usleep(800000);	/* several scheduler passes at 200 ms: no second alert */
	ck_assert_int_eq(count_lines(g.alerts, "expiring te"), 1);
	rig_stop(&g);
}
END_TEST

/* ------------------------------------------------------------ CA expiry (issue 11) */

/* the CA's current notAfter, from ca.show */
static time_t
ca_not_after(const char *sock, const char *tenant)
{
	struct tca_client_error err;
	cbor_item_t *res = ca_show(sock, tenant, &err);
	uint64_t na = 0;

	ck_assert_msg(res != NULL, "ca.show %s: %s", tenant, err.message);
	ck_assert_int_eq(tca_map_get_uint(res, "not_after", &na), TCA_OK);
	cbor_decref(&res);
	return (time_t)na;
}

/* the tenant's status in ca.show and in ca.list, which must agree */
static void
ca_status(const char *sock, const char *tenant, char *out, size_t outsz)
{
	struct tca_client_error err;
	cbor_item_t *res = ca_show(sock, tenant, &err), *args, *cas, *el;
	tca_client *c;
	char name[80], listed[32] = "";
	size_t i;

	ck_assert_msg(res != NULL, "ca.show %s: %s", tenant, err.message);
	ck_assert_int_eq(tca_map_get_text(res, "status", out, outsz), TCA_OK);
	cbor_decref(&res);
	c = connect_or_die(sock);
	args = cbor_new_definite_map(0);
	ck_assert_msg(tca_client_call(c, "ca.list", args, &res, &err) == TCA_OK, "ca.list: %s",
	    err.message);
	cbor_decref(&args);
	tca_client_close(c);
	ck_assert_ptr_nonnull(cas = tca_map_get(res, "cas"));
	for (i = 0; i < cbor_array_size(cas); i++) {
		el = cbor_array_get(cas, i);
		ck_assert_int_eq(tca_map_get_text(el, "tenant", name, sizeof(name)), TCA_OK);
		if (strcmp(name, tenant) == 0)
			ck_assert_int_eq(tca_map_get_text(el, "status", listed, sizeof(listed)),
			    TCA_OK);
		cbor_decref(&el);
	}
	cbor_decref(&res);
	ck_assert_msg(strcmp(listed, out) == 0, "%s: ca.show says %s, ca.list %s", tenant, out,
	    listed);
}

/* status: tenants.expired and tenants.expiring */
static void
expiry_counts(const char *sock, uint64_t *expired, uint64_t *expiring)
{
	struct tca_client_error err;
	cbor_item_t *res = NULL, *ten;
	tca_client *c = connect_or_die(sock);

	ck_assert_msg(tca_client_call(c, "status", NULL, &res, &err) == TCA_OK, "status: %s",
	    err.message);
	tca_client_close(c);
	ck_assert_ptr_nonnull(ten = tca_map_get(res, "tenants"));
	ck_assert_int_eq(tca_map_get_uint(ten, "expired", expired), TCA_OK);
	ck_assert_int_eq(tca_map_get_uint(ten, "expiring", expiring), TCA_OK);
	cbor_decref(&res);
}

#define DAY 86400

/*
 * /reissue/min-validity: device.min_validity_days = 365 (the platform's rule:
 * no certificates from a CA with less than a year left).  A year and a day
 * left: issued for the full 365 days.  364 days, and one second, left:
 * POLICY_VIOLATION naming the setting and the CA's notAfter - before, the
 * certificate was silently cut to what the CA had left (one second).
 */
START_TEST(test_min_validity)
{
	struct rig g;
	struct tca_client_error err;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	char st[32], iso[32];
	time_t na, now;
	X509 *x;
	struct tm tm;

	rig_start(&g, "tca-rs-minval", test_utc(2026, 9, 1, 0, 0, 0),
	    "device.min_validity_days = 365\nschedule.enabled = false\n"
	    "alert.expiry_window_days = 0\n");
	ck_assert_int_eq(ca_create(g.d.socket, "tv", NULL, &err), TCA_OK);
	na = ca_not_after(g.d.socket, "tv");
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &tm));

	now = na - 366 * DAY;
	set_clock(&g, now);
	ck_assert_msg(issue(g.d.socket, "tv", "dev-1", "ec-p256", &der, &len, &err) == TCA_OK,
	    "%s: %s", err.code, err.message);
	p = der;
	ck_assert_ptr_nonnull(x = d2i_X509(NULL, &p, (long)len));
	ck_assert_int_eq(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
	ck_assert_int_eq(timegm(&tm), now + 365 * DAY);
	X509_free(x);
	free(der);
	der = NULL;

	set_clock(&g, na - 364 * DAY);
	ck_assert_int_eq(issue(g.d.socket, "tv", "dev-2", "ec-p256", &der, &len, &err),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_str_eq(err.code, "POLICY_VIOLATION");
	ck_assert_msg(strstr(err.message, "device.min_validity_days") != NULL &&
	    strstr(err.message, iso) != NULL && strstr(err.message, "365") != NULL,
	    "%s", err.message);
	ck_assert_ptr_null(der);

	set_clock(&g, na - 1);
	ck_assert_int_eq(issue(g.d.socket, "tv", "dev-3", "ec-p256", &der, &len, &err),
	    TCA_ERR_POLICY_VIOLATION);
	ck_assert_msg(strstr(err.message, "device.min_validity_days") != NULL, "%s",
	    err.message);
	ck_assert_ptr_null(der);
	/* alert.expiry_window_days = 0 (no alerts): "expiring" 30 days out */
	ca_status(g.d.socket, "tv", st, sizeof(st));
	ck_assert_str_eq(st, "expiring");
	set_clock(&g, na - 31 * DAY);
	ca_status(g.d.socket, "tv", st, sizeof(st));
	ck_assert_str_eq(st, "active");
	set_clock(&g, na - 29 * DAY);
	ca_status(g.d.socket, "tv", st, sizeof(st));
	ck_assert_str_eq(st, "expiring");
	rig_stop(&g);
}
END_TEST

/*
 * /reissue/expiry-status: with schedule.enabled = false nothing re-issues or
 * alerts, so ca.show, ca.list and status say it: "active" until
 * alert.expiry_window_days (60) before notAfter, then "expiring", "expired"
 * from notAfter on (before: "active" for an expired CA); status counts
 * tenants.expired and tenants.expiring; a start logs one warning per such CA.
 */
START_TEST(test_expiry_status)
{
	struct rig g;
	struct tca_client_error err;
	uint64_t expired = 9, expiring = 9;
	char st[32];
	time_t t0 = test_utc(2026, 9, 1, 0, 0, 0), na_a, na_b;

	rig_start(&g, "tca-rs-expst", t0, "schedule.enabled = false\n"
	    "alert.expiry_window_days = 60\n");
	ck_assert_int_eq(ca_create(g.d.socket, "ta", NULL, &err), TCA_OK);
	set_clock(&g, t0 + 400 * DAY);
	ck_assert_int_eq(ca_create(g.d.socket, "tb", NULL, &err), TCA_OK);
	na_a = ca_not_after(g.d.socket, "ta");
	na_b = ca_not_after(g.d.socket, "tb");
	ck_assert_int_eq(na_b - na_a, 400 * DAY);
	ca_status(g.d.socket, "ta", st, sizeof(st));
	ck_assert_str_eq(st, "active");
	expiry_counts(g.d.socket, &expired, &expiring);
	ck_assert_uint_eq(expired, 0);
	ck_assert_uint_eq(expiring, 0);

	set_clock(&g, na_a - 61 * DAY);
	ca_status(g.d.socket, "ta", st, sizeof(st));
	ck_assert_str_eq(st, "active");
	set_clock(&g, na_a - 59 * DAY);
	ca_status(g.d.socket, "ta", st, sizeof(st));
	ck_assert_str_eq(st, "expiring");
	ca_status(g.d.socket, "tb", st, sizeof(st));
	ck_assert_str_eq(st, "active");
	expiry_counts(g.d.socket, &expired, &expiring);
	ck_assert_uint_eq(expired, 0);
	ck_assert_uint_eq(expiring, 1);

	set_clock(&g, na_a);
	ca_status(g.d.socket, "ta", st, sizeof(st));
	ck_assert_str_eq(st, "expired");
	expiry_counts(g.d.socket, &expired, &expiring);
	ck_assert_uint_eq(expired, 1);
	ck_assert_uint_eq(expiring, 0);

	/* a start with both: one warning each, naming the tenant and notAfter */
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	set_clock(&g, na_b - 10 * DAY);
	daemon_exec(&g.d, NULL);
	ca_status(g.d.socket, "ta", st, sizeof(st));
	ck_assert_str_eq(st, "expired");
	ca_status(g.d.socket, "tb", st, sizeof(st));
	ck_assert_str_eq(st, "expiring");
	expiry_counts(g.d.socket, &expired, &expiring);
	ck_assert_uint_eq(expired, 1);
	ck_assert_uint_eq(expiring, 1);
	ck_assert_int_eq(count_lines(g.d.log, "tenant ta: the CA certificate expired at"), 1);
	ck_assert_int_eq(count_lines(g.d.log, "tenant tb: the CA certificate expires at"), 1);
	rig_stop(&g);
}
END_TEST

/* ------------------------------------------------------------ CRLs */

#define CRL_T0		(test_utc(2026, 3, 2, 8, 0, 0))
#define CRL_CONF	"crl.validity_hours = 10\ncrl.refresh_percent = 50\n"

/*
 * /reissue/crl-refresh: with a 10 h validity and refresh at 50 %, a CRL is
 * re-signed 5 h after its thisUpdate, not before.  A second tenant whose CRL
 * is 2 min older is the witness that a scheduler pass ran at the injected
 * time: its re-signing proves the pass saw the new time, and that same pass
 * judged the first tenant's CRL not due.
 */
START_TEST(test_crl_refresh)
{
	struct rig g;
	struct tca_client_error err;
	struct crl_got c1, w, c2, cx, c3;
	const time_t early = CRL_T0 + 4 * 3600 + 59 * 60, late = CRL_T0 + 5 * 3600 + 60;
	unsigned char *raw = NULL;
	size_t raw_len = 0;
	uint64_t n = 0;
	cbor_item_t *res, *args;
	tca_client *c;

	rig_start(&g, "tca-rs-crlref", CRL_T0 - 120, CRL_CONF);
	ck_assert_int_eq(ca_create(g.d.socket, "witness", NULL, &err), TCA_OK);
	set_clock(&g, CRL_T0);
	ck_assert_int_eq(ca_create(g.d.socket, "cr", NULL, &err), TCA_OK);

	/* a new CA has CRL 1, empty, signed by its key at creation */
	crl_fetch(g.d.socket, "cr", &c1);
	ck_assert_uint_eq(c1.number, 1);
	ck_assert_uint_eq(c1.entries, 0);
	ck_assert_int_eq(c1.this_update, CRL_T0);
	ck_assert_int_eq(c1.next_update, CRL_T0 + 10 * 3600);
	crl_check_signed_by_ca(g.d.socket, "cr", &c1);
	crl_fetch(g.d.socket, "witness", &w);
	ck_assert_uint_eq(w.number, 1);
	ck_assert_int_eq(w.this_update, CRL_T0 - 120);
	crl_got_clear(&w);
	/* tca_client_crl serves the same bytes */
	c = connect_or_die(g.d.socket);
	ck_assert_int_eq(tca_client_crl(c, "cr", &raw, &raw_len, &err), TCA_OK);
	ck_assert_uint_eq(raw_len, c1.len);
	ck_assert_int_eq(memcmp(raw, c1.der, raw_len), 0);
	free(raw);
	raw = NULL;
	tca_client_close(c);
	/* ca.show tells the CRL number and nextUpdate */
	res = ca_show(g.d.socket, "cr", &err);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(tca_map_get_uint(res, "crl_number", &n), TCA_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_null(tca_map_get(res, "crl_renewal"));
	cbor_decref(&res);

	/* 4 h 59 min after thisUpdate: the witness (due at 4 h 58 min) is
	 * re-signed, so a pass ran at this time; "cr" was not due in it */
	set_clock(&g, early);
	ck_assert_msg(wait_crl_number(g.d.socket, "witness", 2, 10000) == 2,
	    "the witness CRL was not re-signed at its refresh point");
	/* and a few more passes (200 ms apart) change nothing */
	ck_assert_uint_eq(wait_crl_number(g.d.socket, "cr", 2, 600), 1);
	crl_fetch(g.d.socket, "cr", &cx);
	ck_assert_uint_eq(cx.number, 1);
	ck_assert_uint_eq(cx.len, c1.len);
	ck_assert_int_eq(memcmp(cx.der, c1.der, c1.len), 0);
	crl_got_clear(&cx);

	/* 5 h 1 min after: CRL 2, thisUpdate = now, nextUpdate = now + 10 h */
	set_clock(&g, late);
	ck_assert_msg(wait_crl_number(g.d.socket, "cr", 2, 10000) == 2,
	    "CRL not re-signed past 50 %% of its validity");
	crl_fetch(g.d.socket, "cr", &c2);
	ck_assert_uint_eq(c2.number, 2);
	ck_assert_int_eq(c2.this_update, late);
	ck_assert_int_eq(c2.next_update, late + 10 * 3600);
	ck_assert_uint_eq(c2.entries, 0);
	crl_check_signed_by_ca(g.d.socket, "cr", &c2);
	ck_assert_int_eq(count_lines(g.d.log, "tenant cr: CRL 2 signed"), 1);
	ck_assert_int_eq(count_lines(g.d.log, "tenant cr: CRL 3 signed"), 0);

	/* restart: the same CRL is served, and the next number follows it */
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	daemon_exec(&g.d, NULL);
	crl_fetch(g.d.socket, "cr", &cx);
	ck_assert_uint_eq(cx.number, 2);
	ck_assert_uint_eq(cx.len, c2.len);
	ck_assert_int_eq(memcmp(cx.der, c2.der, c2.len), 0);
	crl_got_clear(&cx);
	set_clock(&g, late + 60);
	c = connect_or_die(g.d.socket);
	args = cbor_new_definite_map(1);
	ck_assert_int_eq(tca_map_add_text(args, "tenant", "cr"), TCA_OK);
	res = NULL;
	ck_assert_msg(tca_client_call(c, "crl.sign", args, &res, &err) == TCA_OK, "crl.sign: %s",
	    err.message);
	ck_assert_int_eq(tca_map_get_uint(res, "number", &n), TCA_OK);
	ck_assert_uint_eq(n, c2.number + 1);
	ck_assert_int_eq(tca_map_get_uint(res, "this_update", &n), TCA_OK);
	ck_assert_uint_eq(n, (uint64_t)(late + 60));
	ck_assert_int_eq(tca_map_get_uint(res, "next_update", &n), TCA_OK);
	ck_assert_uint_eq(n, (uint64_t)(late + 60 + 10 * 3600));
	cbor_decref(&res);
	cbor_decref(&args);
	tca_client_close(c);
	crl_fetch(g.d.socket, "cr", &c3);
	ck_assert_uint_eq(c3.number, 3);
	ck_assert_int_eq(c3.this_update, late + 60);
	crl_check_signed_by_ca(g.d.socket, "cr", &c3);

	ck_assert_int_eq(daemon_stop(&g.d), 0);
	/* three CRLs of cr in the journal, no more */
	ck_assert_int_eq(db_long(g.d.db, "SELECT count(*) FROM journal WHERE op='crl' AND tenant='cr'"), 3);
	crl_got_clear(&c1);
	crl_got_clear(&c2);
	crl_got_clear(&c3);
	daemon_cleanup(&g.d);
	test_token_destroy(&g.t);
}
END_TEST

/*
 * /reissue/crl-first-once: a CA's first CRL is signed once.  ca.create
 * puts the CA in service, then signs its first CRL; a scheduler pass that
 * read the CA in between (no CRL yet: due at once) used to sign a second
 * one right after - CRL 2 where one CRL was due (seen as a flaky
 * /reissue/crl-token-error under ASan).  C_Sign made slow (2.5 s a call)
 * keeps the window open for many 200 ms passes; the pass that took the CA
 * must now find CRL 1 published and skip.
 */
START_TEST(test_crl_first_once)
{
	struct rig g;
	struct tca_client_error err;
	struct crl_got c;
	char rel[1100], so[PATH_MAX], fdir[256], ctl[512], flog[512];

	test_build_path("tests/.libs/p11-faulty.so", rel, sizeof(rel));
	ck_assert_msg(realpath(rel, so) != NULL && access(so, R_OK) == 0,
	    "%s missing (make check builds it)", rel);
	test_mkdtemp(fdir, sizeof(fdir));
	snprintf(ctl, sizeof(ctl), "%s/faulty.ctl", fdir);
	snprintf(flog, sizeof(flog), "%s/faulty.log", fdir);
	faulty_ctl(ctl, "");
	setenv(TCA_FAULTY_ENV_MODULE, test_softhsm_module(), 1);
	setenv(TCA_FAULTY_ENV_CTL, ctl, 1);
	setenv(TCA_FAULTY_ENV_LOG, flog, 1);
	rig_start_module(&g, "tca-rs-crl1", CRL_T0, CRL_CONF, so);
	faulty_ctl(ctl, "latency C_Sign 2500\n");
	ck_assert_int_eq(ca_create(g.d.socket, "c1", NULL, &err), TCA_OK);
	faulty_ctl(ctl, "");
	ck_assert_int_eq(count_lines(g.d.log, "tenant c1: CRL 1 signed"), 1);
	/* the pass that collected c1 while its first CRL was being signed */
	ck_assert_msg(wait_lines(g.d.log, "tenant c1: CRL re-signing skipped: CRL 1 "
	    "was published since this pass began", 1, 20000) == 0,
	    "no scheduler pass skipped c1's first CRL (CRL 2 signed: %d)",
	    count_lines(g.d.log, "tenant c1: CRL 2 signed"));
	ck_assert_int_eq(count_lines(g.d.log, "tenant c1: CRL 2 signed"), 0);
	crl_fetch(g.d.socket, "c1", &c);
	ck_assert_uint_eq(c.number, 1);
	crl_got_clear(&c);
	rig_stop(&g);
	unsetenv(TCA_FAULTY_ENV_MODULE);
	unsetenv(TCA_FAULTY_ENV_CTL);
	unsetenv(TCA_FAULTY_ENV_LOG);
}
END_TEST

/*
 * /reissue/crl-token-error: every C_Sign fails (p11-faulty "fail C_Sign
 * CKR_FUNCTION_FAILED count inf": an error the session supervisor does not
 * recover from, so it keeps failing; nothing else of the token is touched).
 * The module and its control file are this test's only: the daemon inherits
 * TCA_FAULTY_* from this (forked) test process.  Retry backoff 60 s doubling:
 * attempt 1 at t1, 2 at t1 + 60, (restart), 3 at t2 + 120, healed at t3 + 240.
 */
START_TEST(test_crl_token_error)
{
	struct rig g;
	struct tca_client_error err;
	struct crl_got c1, cx, c2;
	struct crl_banner b;
	char rel[1100], so[PATH_MAX], fdir[256], ctl[512], flog[512];
	const time_t t1 = CRL_T0 + 5 * 3600 + 60, t2 = t1 + 61, t3 = t2 + 121, t4 = t3 + 241;
	cbor_item_t *res, *cr;
	uint64_t v = 0;
	int failed = 0;

	/* an absolute path: p11-kit looks a relative one up in its module dir */
	test_build_path("tests/.libs/p11-faulty.so", rel, sizeof(rel));
	ck_assert_msg(realpath(rel, so) != NULL && access(so, R_OK) == 0,
	    "%s missing (make check builds it)", rel);
	test_mkdtemp(fdir, sizeof(fdir));
	snprintf(ctl, sizeof(ctl), "%s/faulty.ctl", fdir);
	snprintf(flog, sizeof(flog), "%s/faulty.log", fdir);
	faulty_ctl(ctl, "");
	setenv(TCA_FAULTY_ENV_MODULE, test_softhsm_module(), 1);
	setenv(TCA_FAULTY_ENV_CTL, ctl, 1);
	setenv(TCA_FAULTY_ENV_LOG, flog, 1);
	rig_start_module(&g, "tca-rs-crlerr", CRL_T0, CRL_CONF
	    "reissue.retry_min_s = 60\nreissue.retry_max_s = 600\n", so);
	ck_assert_int_eq(ca_create(g.d.socket, "cf", NULL, &err), TCA_OK);
	crl_fetch(g.d.socket, "cf", &c1);
	ck_assert_uint_eq(c1.number, 1);

	/* the token stops signing; the refresh point passes */
	faulty_ctl(ctl, "fail C_Sign CKR_FUNCTION_FAILED count inf\n");
	set_clock(&g, t1);
	ck_assert_msg(wait_crl_attempts(g.d.socket, "cf", 1, 10000) == 0,
	    "no CRL failure shown in status after the refresh point");
	ck_assert_int_ge(count_lines(flog, "fail C_Sign CKR_FUNCTION_FAILED"), 1);
	crl_status(g.d.socket, "cf", &b);
	ck_assert_uint_eq(b.count, 1);
	ck_assert_uint_eq(b.listed, 1);
	ck_assert_int_eq(b.found, 1);
	ck_assert_uint_eq(b.attempts, 1);
	ck_assert_msg(b.reason[0] != '\0' && strstr(b.reason, "token") != NULL,
	    "crl_failed reason: \"%s\"", b.reason);
	ck_assert_uint_eq(b.next_update, (uint64_t)c1.next_update);
	ck_assert_uint_eq(b.next_retry_at, (uint64_t)(t1 + 60));
	/* the last CRL is still served, byte for byte */
	crl_fetch(g.d.socket, "cf", &cx);
	ck_assert_uint_eq(cx.number, c1.number);
	ck_assert_uint_eq(cx.len, c1.len);
	ck_assert_int_eq(memcmp(cx.der, c1.der, c1.len), 0);
	crl_got_clear(&cx);
	/* ca.show carries the failure state */
	res = ca_show(g.d.socket, "cf", &err);
	ck_assert_ptr_nonnull(res);
	cr = tca_map_get(res, "crl_renewal");
	ck_assert_msg(cr != NULL, "ca.show has no crl_renewal while the CRL is failing");
	ck_assert_int_eq(tca_map_get_bool(cr, "failed", &failed), TCA_OK);
	ck_assert_int_eq(failed, 1);
	ck_assert_int_eq(tca_map_get_uint(cr, "attempts", &v), TCA_OK);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(tca_map_get_uint(res, "crl_number", &v), TCA_OK);
	ck_assert_uint_eq(v, 1);
	cbor_decref(&res);
	/* one alert; the ALERT log line is written before the state is recorded */
	ck_assert_int_eq(count_lines(g.d.log, "ALERT crl-failed: tenant cf"), 1);
	ck_assert_msg(wait_lines(g.alerts, "crl-failed cf ", 1, 10000) == 0,
	    "no \"crl-failed cf\" alert");
	ck_assert_int_eq(count_lines(g.alerts, "crl-failed"), 1);
	{
		/* TCA_ALERT_ATTEMPTS 1, TCA_ALERT_NOT_AFTER: the served CRL's nextUpdate */
		char want[96];
		struct tm tm;
		time_t nu = c1.next_update;

		gmtime_r(&nu, &tm);
		strftime(want, sizeof(want), "crl-failed cf 1 %Y-%m-%dT%H:%M:%SZ", &tm);
		ck_assert_msg(count_lines(g.alerts, want) == 1, "no alert line \"%s\"", want);
	}

	/* before the retry time nothing is tried again */
	set_clock(&g, t1 + 59);
	ck_assert_int_ne(wait_crl_attempts(g.d.socket, "cf", 2, 600), 0);
	/* after it: attempt 2 (backoff doubles), still the one alert */
	set_clock(&g, t2);
	ck_assert_msg(wait_crl_attempts(g.d.socket, "cf", 2, 10000) == 0,
	    "the CRL was not retried after reissue.retry_min_s");
	crl_status(g.d.socket, "cf", &b);
	ck_assert_uint_eq(b.count, 1);
	ck_assert_uint_eq(b.attempts, 2);
	ck_assert_uint_eq(b.next_retry_at, (uint64_t)(t2 + 120));
	ck_assert_int_eq(count_lines(flog, "fail C_Sign CKR_FUNCTION_FAILED"), 2);
	ck_assert_int_eq(count_lines(g.d.log, "ALERT crl-failed"), 1);
	ck_assert_int_eq(wait_lines(g.d.log, "alert command for crl-failed/cf done", 1, 10000), 0);
	ck_assert_int_eq(count_lines(g.alerts, "crl-failed"), 1);
	crl_fetch(g.d.socket, "cf", &cx);
	ck_assert_uint_eq(cx.number, c1.number);
	ck_assert_int_eq(memcmp(cx.der, c1.der, c1.len), 0);
	crl_got_clear(&cx);

	/* a restart within the episode: the state is kept, no second alert and
	 * no attempt before the retry time (the token still fails) */
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	daemon_exec(&g.d, NULL);
	crl_status(g.d.socket, "cf", &b);
	ck_assert_uint_eq(b.count, 1);
	ck_assert_int_eq(b.found, 1);
	ck_assert_uint_eq(b.attempts, 2);
	ck_assert_uint_eq(b.next_retry_at, (uint64_t)(t2 + 120));
	ck_assert_int_ne(wait_crl_attempts(g.d.socket, "cf", 3, 600), 0);
	crl_fetch(g.d.socket, "cf", &cx);
	ck_assert_uint_eq(cx.number, c1.number);
	ck_assert_int_eq(memcmp(cx.der, c1.der, c1.len), 0);
	crl_got_clear(&cx);
	ck_assert_int_eq(count_lines(g.d.log, "ALERT crl-failed"), 1);
	ck_assert_int_eq(count_lines(g.alerts, "crl-failed"), 1);
	ck_assert_int_eq(count_lines(flog, "fail C_Sign"), 2);
	/* the restarted engine's first attempt (3) fails too: still one alert */
	set_clock(&g, t3);
	ck_assert_msg(wait_crl_attempts(g.d.socket, "cf", 3, 10000) == 0,
	    "the CRL was not retried after the restart");
	crl_status(g.d.socket, "cf", &b);
	ck_assert_uint_eq(b.attempts, 3);
	ck_assert_uint_eq(b.next_retry_at, (uint64_t)(t3 + 240));
	ck_assert_int_eq(count_lines(flog, "fail C_Sign"), 3);
	ck_assert_int_eq(count_lines(g.d.log, "ALERT crl-failed"), 1);
	ck_assert_int_eq(count_lines(g.alerts, "crl-failed"), 1);

	/* the token signs again: at the next retry a new CRL, failure over */
	faulty_ctl(ctl, "");
	set_clock(&g, t4);
	ck_assert_msg(wait_crl_number(g.d.socket, "cf", 2, 10000) == 2,
	    "no new CRL after the token healed");
	crl_fetch(g.d.socket, "cf", &c2);
	ck_assert_uint_eq(c2.number, c1.number + 1);
	ck_assert_int_eq(c2.this_update, t4);
	ck_assert_int_eq(c2.next_update, t4 + 10 * 3600);
	crl_check_signed_by_ca(g.d.socket, "cf", &c2);
	ck_assert_msg(wait_crl_attempts(g.d.socket, "cf", 0, 5000) == 0,
	    "status still shows the CRL failure after a CRL was signed");
	crl_status(g.d.socket, "cf", &b);
	ck_assert_uint_eq(b.count, 0);
	ck_assert_uint_eq(b.listed, 0);
	res = ca_show(g.d.socket, "cf", &err);
	ck_assert_ptr_nonnull(res);
	ck_assert_msg(tca_map_get(res, "crl_renewal") == NULL,
	    "ca.show still has a crl_renewal map");
	ck_assert_int_eq(tca_map_get_uint(res, "crl_number", &v), TCA_OK);
	ck_assert_uint_eq(v, 2);
	cbor_decref(&res);
	ck_assert_int_eq(count_lines(g.alerts, "crl-failed"), 1);
	ck_assert_int_eq(count_lines(flog, "fail C_Sign"), 3);

	crl_got_clear(&c1);
	crl_got_clear(&c2);
	rig_stop(&g);
	unsetenv(TCA_FAULTY_ENV_MODULE);
	unsetenv(TCA_FAULTY_ENV_CTL);
	unsetenv(TCA_FAULTY_ENV_LOG);
	test_sh("rm -rf '%s'", fdir);
}
END_TEST

/* The revoked entry of serial (a device certificate's) in x, or NULL. */
static X509_REVOKED *
crl_entry(X509_CRL *x, const unsigned char *cert_der, size_t cert_len)
{
	const unsigned char *p = cert_der;
	X509 *cert = d2i_X509(NULL, &p, (long)cert_len);
	X509_REVOKED *rv = NULL;

	ck_assert_ptr_nonnull(cert);
	if (X509_CRL_get0_by_serial(x, &rv, X509_get0_serialNumber(cert)) != 1)
		rv = NULL;
	X509_free(cert);
	return rv;
}

/* The reasonCode of an entry; -1 if it has none. */
static long
entry_reason(X509_REVOKED *rv)
{
	ASN1_ENUMERATED *e;
	long v;
	int crit = -2;

	if ((e = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, &crit, NULL)) == NULL)
		return -1;
	ck_assert_int_eq(crit, 0);
	v = ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return v;
}

/* /reissue/crl-after-revocation: cert.revoke re-signs the CRL at once. */
START_TEST(test_crl_after_revocation)
{
	struct rig g;
	struct tca_client_error err;
	struct crl_got c1, c2, c3;
	unsigned char *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;
	char sa[33], sb[33], text[64];
	const time_t tr = CRL_T0 + 600, tr2 = CRL_T0 + 900;
	cbor_item_t *res, *crl;
	X509_REVOKED *rv;
	uint64_t v = 0;
	int already = -1;

	rig_start(&g, "tca-rs-crlrev", CRL_T0, NULL);
	ck_assert_int_eq(ca_create(g.d.socket, "rv", NULL, &err), TCA_OK);
	ck_assert_int_eq(issue(g.d.socket, "rv", "dev-a", "ec-p256", &da, &la, &err), TCA_OK);
	ck_assert_int_eq(issue(g.d.socket, "rv", "dev-b", "ec-p256", &db, &lb, &err), TCA_OK);
	cert_serial_hex(da, la, sa);
	cert_serial_hex(db, lb, sb);
	ck_assert_str_ne(sa, "");
	crl_fetch(g.d.socket, "rv", &c1);
	ck_assert_uint_eq(c1.entries, 0);
	ck_assert_ptr_null(crl_entry(c1.x, da, la));

	/* revoked with keyCompromise: CRL number + 1, signed now, listing it */
	set_clock(&g, tr);
	res = cert_revoke(g.d.socket, "rv", sa, "keyCompromise");
	ck_assert_int_eq(tca_map_get_bool(res, "already", &already), TCA_OK);
	ck_assert_int_eq(already, 0);
	ck_assert_int_eq(tca_map_get_text(res, "reason", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "keyCompromise");
	ck_assert_int_eq(tca_map_get_uint(res, "revoked_at", &v), TCA_OK);
	ck_assert_uint_eq(v, (uint64_t)tr);
	ck_assert_ptr_null(tca_map_get(res, "crl_error"));
	crl = tca_map_get(res, "crl");
	ck_assert_msg(crl != NULL, "cert.revoke result has no crl");
	ck_assert_int_eq(tca_map_get_uint(crl, "number", &v), TCA_OK);
	ck_assert_uint_eq(v, c1.number + 1);
	ck_assert_int_eq(tca_map_get_uint(crl, "entries", &v), TCA_OK);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(tca_map_get_uint(crl, "this_update", &v), TCA_OK);
	ck_assert_uint_eq(v, (uint64_t)tr);
	cbor_decref(&res);
	/* served at once, no scheduler involved */
	crl_fetch(g.d.socket, "rv", &c2);
	ck_assert_uint_eq(c2.number, c1.number + 1);
	ck_assert_int_eq(c2.this_update, tr);
	ck_assert_uint_eq(c2.entries, 1);
	crl_check_signed_by_ca(g.d.socket, "rv", &c2);
	ck_assert_ptr_nonnull(rv = crl_entry(c2.x, da, la));
	ck_assert_int_eq(asn1_time_unix(X509_REVOKED_get0_revocationDate(rv)), tr);
	ck_assert_int_eq(entry_reason(rv), CRL_REASON_KEY_COMPROMISE);
	ck_assert_ptr_null(crl_entry(c2.x, db, lb));

	/* revoking it again changes nothing: no new CRL */
	res = cert_revoke(g.d.socket, "rv", sa, "superseded");
	ck_assert_int_eq(tca_map_get_bool(res, "already", &already), TCA_OK);
	ck_assert_int_eq(already, 1);
	ck_assert_int_eq(tca_map_get_text(res, "reason", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "keyCompromise");
	ck_assert_ptr_null(tca_map_get(res, "crl"));
	cbor_decref(&res);
	crl_fetch(g.d.socket, "rv", &c3);
	ck_assert_uint_eq(c3.number, c2.number);
	crl_got_clear(&c3);

	/* unspecified (the default): listed without a reasonCode */
	set_clock(&g, tr2);
	res = cert_revoke(g.d.socket, "rv", sb, NULL);
	crl = tca_map_get(res, "crl");
	ck_assert_ptr_nonnull(crl);
	ck_assert_int_eq(tca_map_get_uint(crl, "number", &v), TCA_OK);
	ck_assert_uint_eq(v, c2.number + 1);
	cbor_decref(&res);
	crl_fetch(g.d.socket, "rv", &c3);
	ck_assert_uint_eq(c3.number, c2.number + 1);
	ck_assert_uint_eq(c3.entries, 2);
	ck_assert_int_eq(c3.this_update, tr2);
	ck_assert_ptr_nonnull(rv = crl_entry(c3.x, da, la));
	ck_assert_int_eq(entry_reason(rv), CRL_REASON_KEY_COMPROMISE);
	ck_assert_ptr_nonnull(rv = crl_entry(c3.x, db, lb));
	ck_assert_int_eq(asn1_time_unix(X509_REVOKED_get0_revocationDate(rv)), tr2);
	ck_assert_int_eq(entry_reason(rv), -1);
	crl_check_signed_by_ca(g.d.socket, "rv", &c3);
	/* no CRL failure anywhere */
	{
		struct crl_banner b;

		crl_status(g.d.socket, "rv", &b);
		ck_assert_uint_eq(b.count, 0);
	}
	free(da);
	free(db);
	crl_got_clear(&c1);
	crl_got_clear(&c2);
	crl_got_clear(&c3);
	rig_stop(&g);
}
END_TEST

static Suite *
reissue_suite(void)
{
	Suite *s = suite_create("reissue");
	TCase *tc = tcase_create("daemon");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_scheduled);
	tcase_add_test(tc, test_restart_no_double);
	tcase_add_test(tc, test_catch_up);
	tcase_add_test(tc, test_kill9_fifty);
	tcase_add_test(tc, test_paced);
	tcase_add_test(tc, test_token_error);
	tcase_add_test(tc, test_manual);
	tcase_add_test(tc, test_expiry_alert);
	tcase_add_test(tc, test_min_validity);
	tcase_add_test(tc, test_expiry_status);
	suite_add_tcase(s, tc);

	tc = tcase_create("crl");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_crl_refresh);
	tcase_add_test(tc, test_crl_token_error);
	tcase_add_test(tc, test_crl_first_once);
	tcase_add_test(tc, test_crl_after_revocation);
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
	test_require_tool("vfychain");
	test_require_tool("certutil");
	test_require_tool("sqlite3");
	sr = srunner_create(reissue_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
