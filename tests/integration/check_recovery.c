/*
 * check_recovery.c - the session supervisor against real token faults: the
 * real tca-engined on a throwaway SoftHSMv2 token, real sockets, real
 * processes; faults come from the token itself (its directory moved away)
 * or from tests/p11-faulty.c, a PKCS#11 module that wraps SoftHSMv2 and
 * fails, hangs or "removes the token" when the test says so.
 *
 * /recovery/softhsm/token-dir-moved   the reproduction from issue 10
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "harness.h"
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
	daemon_start(&d, &t, "token.recovery_wait_ms = 2000\n", NULL);
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

static Suite *
recovery_suite(void)
{
	Suite *s = suite_create("recovery");
	TCase *tc;

	tc = tcase_create("softhsm");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_token_dir_moved);
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
