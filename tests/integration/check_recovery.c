/*
 * check_recovery.c - the session supervisor against real token faults: the
 * real tca-engined on a throwaway SoftHSMv2 token, real sockets, real
 * processes; faults come from the token itself (its directory moved away)
 * or from tests/p11-faulty.c, a PKCS#11 module that wraps SoftHSMv2 and
 * fails, hangs or "removes the token" when the test says so.
 *
 * /recovery/softhsm/token-dir-moved   the reproduction from issue 10
 * /recovery/faulty/...                 each fault class through p11-faulty:
 *                                      recovered without a restart, with no
 *                                      certificate lost or duplicated under
 *                                      16 issuing clients; a refused PIN is
 *                                      not retried; a hung call is bounded
 *
 * The faulty cases drive the in-process token layer (token.isolation =
 * none): the supervisor's own recovery, which runs the same way inside the
 * tca-tokend helper.
 *
 * /recovery/privsep/...                the helper (token.isolation = process):
 *                                      the engine maps no module and holds no
 *                                      PIN; a helper killed, crashing in the
 *                                      module or hung in it is replaced under
 *                                      16 issuing clients, without a restart
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "harness.h"
#include "p11-faulty.h"
#include "wire.h"
#include "tca-client.h"
#include "tca-error.h"
#include "testutil.h"

/*
 * Issues until it works or timeout_s pass; every failure on the way must be
 * TOKEN_UNAVAILABLE (the engine is recovering, it never says the tenant has no
 * CA).  TCA_OK or the last error.
 */
static int
issue_until_ok(const char *sock, const char *tenant, const char *device, int timeout_s)
{
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	time_t end = time(NULL) + timeout_s;
	int r;

	for (;;) {
		r = issue(sock, tenant, device, "ec-p256", &der, &len, &err);
		free(der);
		der = NULL;
		if (r == TCA_OK)
			return r;
		ck_assert_msg(strcmp(err.code, "TOKEN_UNAVAILABLE") == 0,
		    "while recovering: %s: %s", err.code, err.message);
		if (time(NULL) > end)
			return r;
		/* the engine's own retry interval is 1 s; ask again soon */
		usleep(50 * 1000);
	}
}

/*
 * /recovery/softhsm/token-dir-moved: the token's directory goes away for a
 * moment and comes back (issue 10).  While it is away, issuance fails with
 * TOKEN_UNAVAILABLE - never NOT_FOUND, which means "tenant has no CA" - and
 * once it is back the engine issues again, creates and deletes CAs, without a
 * restart.
 */
START_TEST(test_token_dir_moved)
{
	struct test_token t;
	struct daemon d;
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	char tokdir[PATH_MAX], away[PATH_MAX + 8];

	test_token_create(&t, "tca-rec-dir");
	daemon_start(&d, &t, "token.isolation = none\ntoken.recovery_wait_ms = 2000\n", NULL);
	ck_assert_int_eq(ca_create(d.socket, "t-moved", NULL, &err), TCA_OK);
	ck_assert_msg(issue(d.socket, "t-moved", "dev-1", "ec-p256", &der, &len, &err) == TCA_OK,
	    "%s", err.message);
	free(der);
	der = NULL;

	snprintf(tokdir, sizeof(tokdir), "%s/tokens", t.dir);
	snprintf(away, sizeof(away), "%s.away", tokdir);
	ck_assert_int_eq(rename(tokdir, away), 0);
	ck_assert_int_eq(mkdir(tokdir, 0700), 0);
	ck_assert_int_ne(issue(d.socket, "t-moved", "dev-2", "ec-p256", &der, &len, &err), TCA_OK);
	ck_assert_msg(strcmp(err.code, "TOKEN_UNAVAILABLE") == 0, "while the token is away: %s: %s",
	    err.code, err.message);
	ck_assert_ptr_null(der);

	ck_assert_int_eq(rmdir(tokdir), 0);
	ck_assert_int_eq(rename(away, tokdir), 0);
	/* a key found missing is looked for again at most once a second */
	ck_assert_msg(issue_until_ok(d.socket, "t-moved", "dev-3", 10) == TCA_OK,
	    "no certificate within 10 s after the token came back");
	free(der);
	der = NULL;
	ck_assert_msg(ca_create(d.socket, "t-after", NULL, &err) == TCA_OK, "%s", err.message);
	ck_assert_msg(issue(d.socket, "t-after", "dev-4", "ec-p256", &der, &len, &err) == TCA_OK,
	    "%s", err.message);
	free(der);
	ck_assert_int_eq(daemon_stop(&d), 0);
	daemon_cleanup(&d);
	test_token_destroy(&t);
}
END_TEST

/* ------------------------------------------------------------ p11-faulty */

struct faulty {
	struct test_token t;
	struct daemon d;
	char ctl[PATH_MAX], log[PATH_MAX];
};

/* Replaces the control file atomically, as the module wants it. */
static void
ctl_write(struct faulty *f, const char *text)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.new", f->ctl);
	ck_assert_int_eq(test_write_file(tmp, text, strlen(text), 0600), 0);
	ck_assert_int_eq(rename(tmp, f->ctl), 0);
}

/* Lines of the module's event log that start with prefix. */
static int
log_count(const struct faulty *f, const char *prefix)
{
	char line[512];
	FILE *fp = fopen(f->log, "r");
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			n++;
	fclose(fp);
	return n;
}

/* Waits (bounded) until the module's log has at least n lines with prefix. */
static void
log_wait(const struct faulty *f, const char *prefix, int n, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (log_count(f, prefix) < n) {
		ck_assert_msg(time(NULL) <= end, "no \"%s\" in the p11-faulty log within %d s",
		    prefix, timeout_s);
		usleep(10 * 1000);
	}
}

/* A throwaway token, the engine on p11-faulty over it (token.isolation =
 * iso), one CA. */
static void
faulty_start_iso(struct faulty *f, const char *label, const char *profile, const char *extra,
    const char *iso)
{
	char so[PATH_MAX], conf[1024];
	struct tca_client_error err;

	memset(f, 0, sizeof(*f));
	snprintf(conf, sizeof(conf), "token.isolation = %s\n%s", iso, extra != NULL ? extra : "");
	test_build_path("tests/.libs/p11-faulty.so", so, sizeof(so));
	ck_assert_msg(access(so, R_OK) == 0, "%s missing (make check builds it)", so);
	test_token_create(&f->t, label);
	snprintf(f->ctl, sizeof(f->ctl), "%s/faulty.ctl", f->t.dir);
	snprintf(f->log, sizeof(f->log), "%s/faulty.log", f->t.dir);
	setenv(TCA_FAULTY_ENV_MODULE, test_softhsm_module(), 1);
	setenv(TCA_FAULTY_ENV_CTL, f->ctl, 1);
	setenv(TCA_FAULTY_ENV_LOG, f->log, 1);
	ctl_write(f, "");
	daemon_start_module(&f->d, &f->t, so, profile != NULL ? profile : "softhsm2", conf, NULL);
	ck_assert_msg(ca_create(f->d.socket, "t-fault", NULL, &err) == TCA_OK, "%s", err.message);
}

static void
faulty_start(struct faulty *f, const char *label, const char *profile, const char *extra)
{
	faulty_start_iso(f, label, profile, extra, "none");
}

static void
faulty_stop(struct faulty *f)
{
	ck_assert_int_eq(daemon_stop(&f->d), 0);
	daemon_cleanup(&f->d);
	test_token_destroy(&f->t);
	unsetenv(TCA_FAULTY_ENV_MODULE);
	unsetenv(TCA_FAULTY_ENV_CTL);
	unsetenv(TCA_FAULTY_ENV_LOG);
}

/* The token map of the engine's status: text or number of key. */
static void
token_status(const char *sock, const char *key, char *text, size_t textsz, uint64_t *num)
{
	struct tca_client_error err;
	cbor_item_t *res = NULL, *tok;
	tca_client *c = connect_or_die(sock);

	ck_assert_msg(tca_client_call(c, "status", NULL, &res, &err) == TCA_OK, "%s", err.message);
	tok = tca_map_get(res, "token");
	ck_assert_ptr_nonnull(tok);
	if (text != NULL)
		ck_assert_int_eq(tca_map_get_text(tok, key, text, textsz), TCA_OK);
	if (num != NULL)
		ck_assert_int_eq(tca_map_get_uint(tok, key, num), TCA_OK);
	cbor_decref(&res);
	tca_client_close(c);
}

static uint64_t
token_counter(const char *sock, const char *key)
{
	uint64_t v = 0;

	token_status(sock, key, NULL, 0, &v);
	return v;
}

/* Issues once; the error code (or "" for success) in code. */
static int
issue_once(const char *sock, char *code, size_t codesz)
{
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	int r = issue(sock, "t-fault", "dev-fault", "ec-p256", &der, &len, &err);

	free(der);
	snprintf(code, codesz, "%s", r == TCA_OK ? "" : err.code);
	return r;
}

/* 16 clients, each issuing until it has `want` certificates or the deadline
 * passes; every failure must be TOKEN_UNAVAILABLE. */
#define LOAD_CLIENTS 16
struct load {
	const char *sock;
	int want, ok, failed, wrong;
	char wrong_code[32];
	time_t deadline;
	char (*serials)[33];
	int *total_ok;		/* shared, __atomic */
};

static void *
load_main(void *arg)
{
	struct load *l = arg;
	struct tca_client_error err;
	EVP_PKEY *k = gen_key("ec-p256");
	unsigned char *csr, *der;
	size_t csr_len, len;
	tca_client *c;

	csr = make_csr(k, "dev-load", 0, 0, &csr_len);
	while (l->ok < l->want && time(NULL) < l->deadline) {
		der = NULL;
		if (tca_client_connect(l->sock, 60000, &c, &err) != TCA_CLIENT_OK) {
			l->wrong++;
			break;
		}
		if (tca_client_issue(c, "t-fault", "dev-load", csr, csr_len, 0, &der, &len,
		    &err) == TCA_OK) {
			cert_serial_hex(der, len, l->serials[l->ok]);
			l->ok++;
			__atomic_add_fetch(l->total_ok, 1, __ATOMIC_RELAXED);
		} else if (strcmp(err.code, "TOKEN_UNAVAILABLE") == 0) {
			l->failed++;
		} else {
			l->wrong++;
			snprintf(l->wrong_code, sizeof(l->wrong_code), "%s", err.code);
		}
		tca_client_close(c);
		free(der);
	}
	OPENSSL_free(csr);
	EVP_PKEY_free(k);
	return NULL;
}

/*
 * Runs 16 clients; when `before` certificates have been issued, writes fault
 * to the control file, waits for the module's log to show `event`, then
 * writes heal (NULL: leave the fault).  Then every client must get its
 * certificates, only TOKEN_UNAVAILABLE may have been seen meanwhile, and the
 * journal must hold every certificate returned, once, and no other.
 */
struct ctl_fault {
	const char *fault, *event, *heal;
};

static void
ctl_fault(struct faulty *f, const void *arg)
{
	const struct ctl_fault *cf = arg;

	ctl_write(f, cf->fault);
	log_wait(f, cf->event, 1, 30);
	if (cf->heal != NULL)
		ctl_write(f, cf->heal);
}

/* As load_through_fault, with what happens after 32 certificates in act. */
static void
load_through(struct faulty *f, void (*act)(struct faulty *, const void *), const void *arg)
{
	struct load *l = calloc(LOAD_CLIENTS, sizeof(*l));
	pthread_t th[LOAD_CLIENTS];
	struct serial_set set;
	int i, j, total = 0, returned = 0, unavailable = 0;
	size_t k, hits;
	time_t end;

	ck_assert_ptr_nonnull(l);
	for (i = 0; i < LOAD_CLIENTS; i++) {
		l[i].sock = f->d.socket;
		l[i].want = 12;
		l[i].deadline = time(NULL) + 90;
		l[i].serials = calloc(64, sizeof(*l[i].serials));
		l[i].total_ok = &total;
		ck_assert_int_eq(pthread_create(&th[i], NULL, load_main, &l[i]), 0);
	}
	end = time(NULL) + 60;
	while (__atomic_load_n(&total, __ATOMIC_RELAXED) < 32 && time(NULL) < end)
		usleep(5 * 1000);
	act(f, arg);
	for (i = 0; i < LOAD_CLIENTS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(l[i].wrong == 0, "client %d saw %s, not TOKEN_UNAVAILABLE", i,
		    l[i].wrong_code);
		ck_assert_msg(l[i].ok == l[i].want, "client %d got %d of %d certificates", i,
		    l[i].ok, l[i].want);
		returned += l[i].ok;
		unavailable += l[i].failed;
	}
	journal_issue_serials(f->d.db, &set);
	for (i = 0; i < LOAD_CLIENTS; i++) {
		for (j = 0; j < l[i].ok; j++) {
			for (k = 0, hits = 0; k < set.n; k++)
				hits += strcmp(set.s[k], l[i].serials[j]) == 0;
			ck_assert_msg(hits == 1, "certificate %s: %zu journal records",
			    l[i].serials[j], hits);
		}
		free(l[i].serials);
	}
	/* nothing committed that no client received */
	ck_assert_uint_eq(set.n, (size_t)returned);
	fprintf(stderr, "%s: %d certificates, %d TOKEN_UNAVAILABLE meanwhile\n",
	    f->t.label, returned, unavailable);
	free(set.s);
	free(l);
}

static void
load_through_fault(struct faulty *f, const char *fault, const char *event, const char *heal)
{
	struct ctl_fault cf = { fault, event, heal };

	load_through(f, ctl_fault, &cf);
}

/* /recovery/faulty/device-error: everything fails with CKR_DEVICE_ERROR until
 * the module is re-initialised (a restarted pkcs11-proxy or HSM) */
START_TEST(test_faulty_reinit)
{
	struct faulty f;
	char health[16];

	faulty_start(&f, "tca-f-reinit", NULL, NULL);
	load_through_fault(&f, "require-reinit 1\n", TCA_FAULTY_LOG_REINIT_DONE, NULL);
	ck_assert_uint_ge(token_counter(f.d.socket, "recoveries"), 1);
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "ok");
	ck_assert_int_ge(log_count(&f, "call C_Finalize"), 1);
	faulty_stop(&f);
}
END_TEST

/* Pulls the token and puts it back only once the engine has seen it gone
 * (its token health left "ok"): put back at once, no call may have met the
 * removal, and there would be nothing to recover from. */
static void
remove_seen_return(struct faulty *f, const void *arg)
{
	char health[16];
	time_t end = time(NULL) + 30;

	(void)arg;
	ctl_write(f, "remove\n");
	log_wait(f, TCA_FAULTY_LOG_REMOVE, 1, 30);
	for (;;) {
		token_status(f->d.socket, "health", health, sizeof(health), NULL);
		if (strcmp(health, "ok") != 0)
			break;
		ck_assert_msg(time(NULL) <= end, "the engine did not see the removal in 30 s");
		usleep(5 * 1000);
	}
	ctl_write(f, "");
}

/* /recovery/faulty/removed-returned: the token is pulled and put back under
 * load */
START_TEST(test_faulty_remove_under_load)
{
	struct faulty f;

	faulty_start(&f, "tca-f-remove", NULL, "token.recovery_wait_ms = 300\n");
	load_through(&f, remove_seen_return, NULL);
	ck_assert_uint_ge(token_counter(f.d.socket, "recoveries"), 1);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/under-load: the other fault classes under 16 issuing
 * clients, each on a fresh engine: lost login, stale handles, dead sessions,
 * and (with token.call_timeout_ms) a hung C_Sign; no certificate lost or
 * duplicated, nothing but TOKEN_UNAVAILABLE seen */
START_TEST(test_faulty_under_load)
{
	static const struct {
		const char *fault, *event, *heal, *extra, *counter;
	} cases[] = {
		{ "logout 1\n", TCA_FAULTY_LOG_LOGOUT, NULL, NULL, "relogins" },
		{ "invalidate-handles 1\n", TCA_FAULTY_LOG_INVALIDATE, NULL, NULL, "key_refreshes" },
		{ "fail C_SignInit CKR_SESSION_HANDLE_INVALID count 6\n",
		    "fail C_SignInit CKR_SESSION_HANDLE_INVALID", NULL, NULL, "sessions_replaced" },
		{ "hang C_Sign 60000 count 1\n", "hang C_Sign 60000 begin", NULL,
		    "token.call_timeout_ms = 300\n", "sessions_replaced" },
	};
	struct faulty f;
	char label[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(label, sizeof(label), "tca-f-load-%zu", i);
		faulty_start(&f, label, NULL, cases[i].extra);
		load_through_fault(&f, cases[i].fault, cases[i].event, cases[i].heal);
		ck_assert_msg(token_counter(f.d.socket, cases[i].counter) >= 1,
		    "%s: no %s after the fault", cases[i].event, cases[i].counter);
		/* a hung call still inside the module: let it go before stopping */
		ctl_write(&f, "");
		faulty_stop(&f);
	}
}
END_TEST

/* /recovery/faulty/outage-bounded: while the token is away a request fails
 * with TOKEN_UNAVAILABLE within token.recovery_wait_ms (plus slack), status
 * says so, and the engine serves again once it is back */
START_TEST(test_faulty_outage_bounded)
{
	struct faulty f;
	char code[32], health[16], problem[200];
	struct timespec a, b;
	double ms;

	faulty_start(&f, "tca-f-outage", NULL, "token.recovery_wait_ms = 400\n");
	ctl_write(&f, "remove\n");
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	ck_assert_msg(ms < 10000, "the request took %.0f ms", ms);
	/* status answers from memory while the token is away */
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "recovering");
	token_status(f.d.socket, "problem", problem, sizeof(problem), NULL);
	ck_assert_msg(problem[0] != '\0', "status says nothing about the outage");
	ctl_write(&f, "");
	ck_assert_int_eq(issue_until_ok(f.d.socket, "t-fault", "dev-back", 20), TCA_OK);
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "ok");
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/logout: the token forgets the login (HSM restart, login
 * timeout): logged in again with the kept PIN; no client sees an error */
START_TEST(test_faulty_logout)
{
	struct faulty f;
	char code[32];
	int logins;

	faulty_start(&f, "tca-f-logout", NULL, NULL);
	logins = log_count(&f, "call C_Login rv=CKR_OK");
	ctl_write(&f, "logout 1\n");
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	log_wait(&f, TCA_FAULTY_LOG_LOGOUT, 1, 10);
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ck_assert_int_gt(log_count(&f, "call C_Login rv=CKR_OK"), logins);
	ck_assert_uint_ge(token_counter(f.d.socket, "relogins"), 1);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/stale-handles: object handles go stale (the key is found
 * again with one search); no client sees an error */
START_TEST(test_faulty_stale_handles)
{
	struct faulty f;
	char code[32];

	faulty_start(&f, "tca-f-handles", NULL, NULL);
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ctl_write(&f, "invalidate-handles 1\n");
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	log_wait(&f, TCA_FAULTY_LOG_INVALIDATE, 1, 10);
	ck_assert_uint_ge(token_counter(f.d.socket, "key_refreshes"), 1);
	ck_assert_uint_eq(token_counter(f.d.socket, "recoveries"), 0);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/session-lost: sessions die under a request: replaced,
 * retried; no client sees an error */
START_TEST(test_faulty_session_lost)
{
	struct faulty f;
	char code[32];

	faulty_start(&f, "tca-f-session", NULL, NULL);
	ctl_write(&f, "fail C_SignInit CKR_SESSION_HANDLE_INVALID count 2\n");
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ck_assert_int_eq(log_count(&f, "fail C_SignInit CKR_SESSION_HANDLE_INVALID"), 2);
	ck_assert_uint_ge(token_counter(f.d.socket, "sessions_replaced"), 2);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/pin-refused: after the token lost the login it refuses the
 * PIN: tried once, never again by itself (it would lock the token); requests
 * fail at once; `reload` tries again */
START_TEST(test_faulty_pin_refused)
{
	struct faulty f;
	struct tca_client_error err;
	cbor_item_t *res = NULL;
	char code[32], health[16];
	tca_client *c;
	int i;

	faulty_start(&f, "tca-f-pin", NULL, NULL);
	ctl_write(&f, "logout 1\nfail C_Login CKR_PIN_INCORRECT count inf\n");
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "pin-refused");
	for (i = 0; i < 5; i++) {
		ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
		ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	}
	/* one attempt with the refused PIN, whatever the requests did */
	ck_assert_int_eq(log_count(&f, "call C_Login rv=CKR_PIN_INCORRECT"), 1);

	/* the operator fixes the token, then reloads */
	ctl_write(&f, "logout 1\n");
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	c = connect_or_die(f.d.socket);
	ck_assert_msg(tca_client_call(c, "reload", NULL, &res, &err) == TCA_OK, "%s", err.message);
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_int_eq(issue_until_ok(f.d.socket, "t-fault", "dev-pin", 20), TCA_OK);
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "ok");
	ck_assert_int_eq(log_count(&f, "call C_Login rv=CKR_PIN_INCORRECT"), 1);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/stop-while-hung: the engine stops (SIGTERM) while a
 * C_Sign it gave up on is still inside the module.  It must not finalize or
 * unload the module under that call, nor run the module's exit handlers
 * (SoftHSMv2's destructors) under it: once seen in CI as a SEGV inside
 * SoftHSMv2's C_Sign at exit.  It leaves with _exit and says so. */
START_TEST(test_faulty_stop_while_hung)
{
	struct faulty f;
	char code[32];

	faulty_start(&f, "tca-f-stophang", NULL, "token.call_timeout_ms = 300\n");
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ctl_write(&f, "hang C_Sign 120000 count 1\n");
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	ck_assert_int_eq(log_count(&f, "hang C_Sign 120000 begin"), 1);
	/* the call still hangs (the rule stays) while the engine stops */
	ck_assert_int_eq(daemon_stop(&f.d), 0);
	ck_assert_int_eq(log_count(&f, "hang C_Sign end"), 0);
	ck_assert_int_eq(test_sh("grep -q 'leaving 1 hung PKCS#11 calls' '%s'", f.d.log), 0);
	ctl_write(&f, "");
	daemon_cleanup(&f.d);
	test_token_destroy(&f.t);
	unsetenv(TCA_FAULTY_ENV_MODULE);
	unsetenv(TCA_FAULTY_ENV_CTL);
	unsetenv(TCA_FAULTY_ENV_LOG);
}
END_TEST

/* /recovery/faulty/hung-call: a C_Sign that never returns fails its request
 * after token.call_timeout_ms and retires the session; the others go on */
START_TEST(test_faulty_hung_call)
{
	struct faulty f;
	char code[32];
	struct timespec a, b;
	double ms;
	int i;

	faulty_start(&f, "tca-f-hang", NULL, "token.call_timeout_ms = 500\n");
	ctl_write(&f, "hang C_Sign 120000 count 1\n");
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	ck_assert_msg(ms >= 450 && ms < 10000, "the hung request took %.0f ms", ms);
	ck_assert_int_eq(log_count(&f, "hang C_Sign 120000 begin"), 1);
	/* the call is still hanging; the engine serves on other sessions */
	for (i = 0; i < 8; i++)
		ck_assert_msg(issue_once(f.d.socket, code, sizeof(code)) == TCA_OK, "%s", code);
	ck_assert_int_eq(log_count(&f, "hang C_Sign end"), 0);
	/* let it return: the stuck executor ends, nothing breaks */
	ctl_write(&f, "");
	log_wait(&f, "hang C_Sign end", 1, 10);
	for (i = 0; i < 4; i++)
		ck_assert_msg(issue_once(f.d.socket, code, sizeof(code)) == TCA_OK, "%s", code);
	ck_assert_uint_ge(token_counter(f.d.socket, "sessions_replaced"), 1);
	faulty_stop(&f);
}
END_TEST

/* The tenants map of the engine's status: number of key. */
static uint64_t
tenants_counter(const char *sock, const char *key)
{
	struct tca_client_error err;
	cbor_item_t *res = NULL, *m;
	tca_client *c = connect_or_die(sock);
	uint64_t v = 0;

	ck_assert_msg(tca_client_call(c, "status", NULL, &res, &err) == TCA_OK, "%s", err.message);
	m = tca_map_get(res, "tenants");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(tca_map_get_uint(m, key, &v), TCA_OK);
	cbor_decref(&res);
	tca_client_close(c);
	return v;
}

/* /recovery/faulty/orphan-after-failed-create: a create fails after the key
 * was generated and the key cannot be removed either (as on tpm2-pkcs11 after
 * a failed C_Sign): the key stays indexed as an orphan that status counts and
 * `ca delete` removes - no restart - after which the tenant can be created */
START_TEST(test_faulty_orphan)
{
	struct faulty f;
	struct tca_client_error err;
	cbor_item_t *args, *res = NULL;
	uint64_t destroyed = 0;
	tca_client *c;

	faulty_start(&f, "tca-f-orphan", NULL, NULL);
	ck_assert_uint_eq(tenants_counter(f.d.socket, "orphan_keys"), 0);
	/* the attribute read-back after generation fails, then so does clean-up */
	ctl_write(&f, "fail C_GetAttributeValue CKR_FUNCTION_FAILED count 1\n"
	    "fail C_DestroyObject CKR_DEVICE_ERROR count 2\n");
	ck_assert_int_ne(ca_create(f.d.socket, "t-orphan", NULL, &err), TCA_OK);
	ck_assert_int_eq(log_count(&f, "fail C_DestroyObject"), 2);
	ck_assert_uint_eq(tenants_counter(f.d.socket, "orphan_keys"), 1);
	/* the create is refused while the orphan is there */
	ck_assert_int_eq(ca_create(f.d.socket, "t-orphan", NULL, &err), TCA_ERR_ALREADY_EXISTS);
	ck_assert_msg(strstr(err.message, "ca delete") != NULL, "%s", err.message);
	/* ca delete removes it, without a restart */
	c = connect_or_die(f.d.socket);
	args = cbor_new_definite_map(2);
	tca_map_add_text(args, "tenant", "t-orphan");
	tca_map_add_bool(args, "confirm", 1);
	ck_assert_msg(tca_client_call(c, "ca.delete", args, &res, &err) == TCA_OK, "%s", err.message);
	ck_assert_int_eq(tca_map_get_uint(res, "token_objects_destroyed", &destroyed), TCA_OK);
	ck_assert_uint_eq(destroyed, 2);
	cbor_decref(&args);
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_uint_eq(tenants_counter(f.d.socket, "orphan_keys"), 0);
	ck_assert_msg(ca_create(f.d.socket, "t-orphan", NULL, &err) == TCA_OK, "%s", err.message);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/hung-calls-all-sessions: as many hung calls as the pool
 * has sessions; each is replaced by a fresh session and executor, so the
 * engine still serves */
START_TEST(test_faulty_hung_every_session)
{
	struct faulty f;
	char code[32];
	int i;

	faulty_start(&f, "tca-f-hang4", NULL, "token.call_timeout_ms = 300\n");
	ctl_write(&f, "hang C_Sign 60000 count 4\n");
	for (i = 0; i < 4; i++) {
		ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
		ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	}
	ck_assert_int_eq(log_count(&f, "hang C_Sign 60000 begin"), 4);
	/* four calls still hang, the pool has four sessions: served all the same */
	for (i = 0; i < 8; i++)
		ck_assert_msg(issue_once(f.d.socket, code, sizeof(code)) == TCA_OK, "%s", code);
	ck_assert_int_eq(log_count(&f, "hang C_Sign end"), 0);
	ctl_write(&f, "");
	log_wait(&f, "hang C_Sign end", 4, 10);
	for (i = 0; i < 4; i++)
		ck_assert_msg(issue_once(f.d.socket, code, sizeof(code)) == TCA_OK, "%s", code);
	faulty_stop(&f);
}
END_TEST

/* /recovery/faulty/idle-timeout: a token that kills idle sessions (YubiHSM 2:
 * 30 s); the profile's idle_timeout_s makes the engine replace them before
 * use, so no request meets a dead session */
START_TEST(test_faulty_idle_timeout)
{
	struct faulty f;
	char code[32], prof[PATH_MAX + 16], pdir[1024];
	static const char body[] = "name = idle-test\nmodule = /nonexistent\nidle_timeout_s = 1\n";
	uint64_t before;

	test_mkdtemp(pdir, sizeof(pdir));
	snprintf(prof, sizeof(prof), "%s/idle.conf", pdir);
	ck_assert_int_eq(test_write_file(prof, body, strlen(body), 0644), 0);
	faulty_start(&f, "tca-f-idle", prof, NULL);
	ctl_write(&f, "idle-timeout 900\n");
	ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	before = token_counter(f.d.socket, "sessions_replaced");
	/* what is tested is idleness itself: let the sessions go idle */
	usleep(1300 * 1000);
	ck_assert_msg(issue_once(f.d.socket, code, sizeof(code)) == TCA_OK, "%s", code);
	ck_assert_uint_gt(token_counter(f.d.socket, "sessions_replaced"), before);
	ck_assert_uint_eq(token_counter(f.d.socket, "sign_errors"), 0);
	faulty_stop(&f);
	test_sh("rm -rf '%s'", pdir);
}
END_TEST

/* ------------------------------------------------------------ privsep */

/* The token helper's pid from the engine's status (0: none running). */
static pid_t
helper_pid(const char *sock)
{
	return (pid_t)token_counter(sock, "helper_pid");
}

/* Waits (bounded) until status counts at least n helper restarts. */
static void
restarts_wait(const char *sock, uint64_t n, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (token_counter(sock, "helper_restarts") < n) {
		ck_assert_msg(time(NULL) <= end, "no helper restart within %d s", timeout_s);
		usleep(20 * 1000);
	}
}

/* 1 if a line of /proc/pid/maps names a file containing what. */
static int
maps_contain(pid_t pid, const char *what)
{
	char path[64], line[1024];
	FILE *fp;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL)
		found |= strstr(line, what) != NULL;
	fclose(fp);
	return found;
}

/* 1 if the process's readable memory holds needle (read through
 * /proc/pid/mem, as root). */
static int
mem_contains(pid_t pid, const char *needle)
{
	char path[64], line[1024], perms[8];
	unsigned long lo, hi;
	size_t nl = strlen(needle), cap = 0, n;
	unsigned char *buf = NULL;
	FILE *maps;
	int fd, found = 0;
	ssize_t got;

	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	maps = fopen(path, "r");
	ck_assert_msg(maps != NULL, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar") != NULL || hi - lo > (1ul << 30))
			continue;
		n = hi - lo;
		if (n > cap) {
			free(buf);
			cap = n;
			buf = malloc(cap);
			ck_assert_ptr_nonnull(buf);
		}
		if ((got = pread(fd, buf, n, (off_t)lo)) <= 0)
			continue;
		found = memmem(buf, (size_t)got, needle, nl) != NULL;
	}
	close(fd);
	fclose(maps);
	free(buf);
	return found;
}

/* Descriptors of pid that are sockets. */
static int
count_sockets(pid_t pid)
{
	char dir[64], path[PATH_MAX], link[256];
	struct dirent *de;
	DIR *d;
	ssize_t n;
	int sockets = 0;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
	d = opendir(dir);
	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		sockets += strncmp(link, "socket:", 7) == 0;
	}
	closedir(d);
	return sockets;
}

/*
 * /recovery/privsep/separated: with token.isolation = process the engine
 * has not mapped the PKCS#11 module and its memory does not hold
 * the PIN; the helper has both (which shows the checks can see them).
 */
START_TEST(test_privsep_separated)
{
	static const char pin[] = "tca-privsep-7f3a9c2e51d8";
	struct test_token t;
	struct daemon d;
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	char iso[16];
	pid_t hp;

	test_token_store_create(&t);
	snprintf(t.label, sizeof(t.label), "tca-privsep");
	snprintf(t.uri, sizeof(t.uri), "pkcs11:token=%s", t.label);
	ck_assert_int_eq(test_sh("softhsm2-util --init-token --free --label '%s' --pin %s "
	    "--so-pin %s >/dev/null", t.label, pin, TEST_SO_PIN), 0);
	ck_assert_int_eq(test_write_file(t.pin_file, pin, strlen(pin), 0600), 0);
	daemon_start(&d, &t, "token.isolation = process\n", NULL);
	ck_assert_msg(ca_create(d.socket, "t-sep", NULL, &err) == TCA_OK, "%s", err.message);
	ck_assert_msg(issue(d.socket, "t-sep", "dev-1", "ec-p256", &der, &len, &err) == TCA_OK,
	    "%s", err.message);
	free(der);
	token_status(d.socket, "isolation", iso, sizeof(iso), NULL);
	ck_assert_str_eq(iso, "process");
	hp = helper_pid(d.socket);
	ck_assert_msg(hp > 0 && hp != d.pid, "helper pid %ld", (long)hp);
	ck_assert_msg(maps_contain(hp, "libsofthsm2"), "the helper has not mapped the module");
	ck_assert_msg(!maps_contain(d.pid, "libsofthsm2"), "the engine has mapped the module");
	ck_assert_msg(mem_contains(hp, pin), "the PIN is not in the helper's memory");
	ck_assert_msg(!mem_contains(d.pid, pin), "the PIN is in the engine's memory");
	/* the helper's only sockets are its connections: pool_size + 1 */
	ck_assert_int_eq(count_sockets(hp), 5);
	ck_assert_int_eq(daemon_stop(&d), 0);
	/* the engine waited for its helper */
	ck_assert_int_ne(kill(hp, 0), 0);
	daemon_cleanup(&d);
	test_token_destroy(&t);
}
END_TEST

static void
kill_helper(struct faulty *f, const void *arg)
{
	pid_t hp = helper_pid(f->d.socket);

	(void)arg;
	ck_assert_int_gt(hp, 0);
	ck_assert_int_eq(kill(hp, SIGKILL), 0);
	restarts_wait(f->d.socket, 1, 30);
}

/* The module crashes inside C_Sign (abort) until the helper was replaced. */
static void
crash_module(struct faulty *f, const void *arg)
{
	(void)arg;
	ctl_write(f, "crash C_Sign\n");
	log_wait(f, "crash C_Sign", 1, 30);
	restarts_wait(f->d.socket, 1, 30);
	ctl_write(f, "");
}

/* A C_Sign hangs (each new helper's first, while the line is there) until the
 * engine took it for hung and replaced the helper. */
static void
hang_module(struct faulty *f, const void *arg)
{
	(void)arg;
	ctl_write(f, "hang C_Sign 60000\n");
	log_wait(f, "hang C_Sign 60000 begin", 1, 30);
	restarts_wait(f->d.socket, 1, 30);
	ctl_write(f, "");
}

/*
 * /recovery/privsep/helper-fails-under-load: the helper killed (kill -9),
 * the module crashing in C_Sign, the module hanging in C_Sign: each time the
 * engine replaces the helper, the 16 clients get all their certificates
 * (meanwhile only TOKEN_UNAVAILABLE), nothing is lost or duplicated, the
 * engine process is the same, and status counts the restart.
 */
START_TEST(test_privsep_helper_fails_under_load)
{
	static const struct {
		const char *label;
		void (*act)(struct faulty *, const void *);
	} cases[] = {
		{ "tca-ps-kill", kill_helper },
		{ "tca-ps-crash", crash_module },
		{ "tca-ps-hang", hang_module },
	};
	struct faulty f;
	char code[32], health[16];
	pid_t engine, hp;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		faulty_start_iso(&f, cases[i].label, NULL,
		    "token.call_timeout_ms = 500\ntoken.recovery_wait_ms = 1000\n", "process");
		engine = f.d.pid;
		hp = helper_pid(f.d.socket);
		ck_assert_int_gt(hp, 0);
		ck_assert_msg(!maps_contain(engine, "p11-faulty"), "the engine has mapped the module");
		load_through(&f, cases[i].act, NULL);
		ck_assert_uint_ge(token_counter(f.d.socket, "helper_restarts"), 1);
		ck_assert_int_ne(helper_pid(f.d.socket), hp);
		ck_assert_int_eq(kill(engine, 0), 0);
		ck_assert_int_eq(f.d.pid, engine);
		ck_assert_int_eq(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
		token_status(f.d.socket, "health", health, sizeof(health), NULL);
		ck_assert_str_eq(health, "ok");
		faulty_stop(&f);
	}
}
END_TEST

/* /recovery/privsep/hung-request-bounded: a request whose C_Sign hangs fails
 * with TOKEN_UNAVAILABLE within token.recovery_wait_ms + call_timeout_ms
 * (plus slack); the helper is replaced and the next request works */
START_TEST(test_privsep_hung_request_bounded)
{
	struct faulty f;
	struct timespec t0, t1;
	char code[32];
	double ms;

	faulty_start_iso(&f, "tca-ps-hang1", NULL,
	    "token.call_timeout_ms = 500\ntoken.recovery_wait_ms = 1000\n", "process");
	ctl_write(&f, "hang C_Sign 60000\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1000 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ck_assert_msg(ms < 15000, "the hung request took %.0f ms", ms);
	restarts_wait(f.d.socket, 1, 30);
	ctl_write(&f, "");
	ck_assert_int_eq(issue_until_ok(f.d.socket, "t-fault", "dev-after", 20), TCA_OK);
	faulty_stop(&f);
}
END_TEST

/* /recovery/privsep/pin-refused: a new helper whose login the token refuses
 * is not started again by itself (that could lock the token); requests fail
 * with TOKEN_UNAVAILABLE, status says pin-refused, and ca-admin reload
 * starts one that logs in */
START_TEST(test_privsep_pin_refused)
{
	struct faulty f;
	struct tca_client_error err;
	cbor_item_t *res = NULL;
	tca_client *c;
	char code[32], health[16];
	time_t end;
	int i;

	faulty_start_iso(&f, "tca-ps-pin", NULL, "token.recovery_wait_ms = 500\n", "process");
	ctl_write(&f, "fail C_Login CKR_PIN_INCORRECT count inf\n");
	ck_assert_int_eq(kill(helper_pid(f.d.socket), SIGKILL), 0);
	log_wait(&f, "call C_Login rv=CKR_PIN_INCORRECT", 1, 30);
	end = time(NULL) + 30;
	for (;;) {
		token_status(f.d.socket, "health", health, sizeof(health), NULL);
		if (strcmp(health, "pin-refused") == 0)
			break;
		ck_assert_msg(time(NULL) <= end, "health %s, not pin-refused", health);
		usleep(20 * 1000);
	}
	for (i = 0; i < 3; i++) {
		ck_assert_int_ne(issue_once(f.d.socket, code, sizeof(code)), TCA_OK);
		ck_assert_str_eq(code, "TOKEN_UNAVAILABLE");
	}
	ck_assert_int_eq(log_count(&f, "call C_Login rv=CKR_PIN_INCORRECT"), 1);
	ck_assert_uint_eq(helper_pid(f.d.socket), 0);
	ctl_write(&f, "");
	c = connect_or_die(f.d.socket);
	ck_assert_msg(tca_client_call(c, "reload", NULL, &res, &err) == TCA_OK, "%s", err.message);
	cbor_decref(&res);
	tca_client_close(c);
	ck_assert_int_eq(issue_until_ok(f.d.socket, "t-fault", "dev-pin", 20), TCA_OK);
	token_status(f.d.socket, "health", health, sizeof(health), NULL);
	ck_assert_str_eq(health, "ok");
	ck_assert_uint_ge(token_counter(f.d.socket, "helper_restarts"), 1);
	ck_assert_int_eq(log_count(&f, "call C_Login rv=CKR_PIN_INCORRECT"), 1);
	faulty_stop(&f);
}
END_TEST

static Suite *
recovery_suite(void)
{
	Suite *s = suite_create("recovery");
	TCase *tc;

	tc = tcase_create("softhsm");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_token_dir_moved);
	suite_add_tcase(s, tc);

	tc = tcase_create("faulty");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_faulty_reinit);
	tcase_add_test(tc, test_faulty_remove_under_load);
	tcase_add_test(tc, test_faulty_under_load);
	tcase_add_test(tc, test_faulty_outage_bounded);
	tcase_add_test(tc, test_faulty_logout);
	tcase_add_test(tc, test_faulty_stale_handles);
	tcase_add_test(tc, test_faulty_session_lost);
	tcase_add_test(tc, test_faulty_pin_refused);
	tcase_add_test(tc, test_faulty_hung_call);
	tcase_add_test(tc, test_faulty_stop_while_hung);
	tcase_add_test(tc, test_faulty_hung_every_session);
	tcase_add_test(tc, test_faulty_idle_timeout);
	tcase_add_test(tc, test_faulty_orphan);
	suite_add_tcase(s, tc);

	tc = tcase_create("privsep");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_privsep_separated);
	tcase_add_test(tc, test_privsep_helper_fails_under_load);
	tcase_add_test(tc, test_privsep_hung_request_bounded);
	tcase_add_test(tc, test_privsep_pin_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(recovery_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
