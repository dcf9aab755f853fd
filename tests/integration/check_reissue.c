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
 */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "certs.h"
#include "harness.h"
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
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld\n", (long long)t);
	ck_assert_int_eq(test_write_file(g->clock, buf, strlen(buf), 0644), 0);
}

/* token + clock file + alert script; extra config appended */
static void
rig_start(struct rig *g, const char *label, time_t now, const char *extra)
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
	daemon_start(&g->d, &g->t, g->extra, NULL);
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
	usleep(600000);
	res = ca_show(g.d.socket, "bad", &err);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(tca_map_get_text(res, "status", status, sizeof(status)), TCA_OK);
	ck_assert_str_eq(status, "key-missing");
	cbor_decref(&res);
	ck_assert_int_eq(count_lines(g.alerts, "renewal-failed bad"), 1);
	/* retried with backoff: 60 s later, a second attempt, no second alert */
	set_clock(&g, INSTANT_2026 + 10 + 61);
	usleep(800000);
	set_clock(&g, INSTANT_2026 + 10 + 61 + 121);
	usleep(800000);
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

	/* a window longer than the validity: alerted at once, once */
	rig_start(&g, "tca-rs-expiry", test_utc(2026, 9, 1, 0, 0, 0), "alert.expiry_window_days = 1100\n");
	ck_assert_int_eq(ca_create(g.d.socket, "te", NULL, &err), TCA_OK);
	usleep(800000);
	ck_assert_int_eq(count_lines(g.alerts, "expiring te"), 1);
	ck_assert_int_eq(daemon_stop(&g.d), 0);
	daemon_exec(&g.d, NULL);
	usleep(800000);
	ck_assert_int_eq(count_lines(g.alerts, "expiring te"), 1);
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
