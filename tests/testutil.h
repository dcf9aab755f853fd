/*
 * testutil.h - helpers shared by the Check suites.
 *
 * test_token_create() makes a throwaway SoftHSMv2 token store in a fresh
 * temporary directory, points SOFTHSM2_CONF at it (never the system token
 * store) and initializes one token with user PIN TEST_PIN and SO PIN
 * TEST_SO_PIN, with a 0600 PIN file beside it.
 */
#ifndef TCA_TESTUTIL_H
#define TCA_TESTUTIL_H

#include <limits.h>
#include <stddef.h>
#include <time.h>

#define TEST_PIN "1234"
#define TEST_SO_PIN "5678"

struct test_token {
	char dir[1024];		/* temp dir, removed by test_token_destroy */
	char conf[PATH_MAX];	/* softhsm2.conf, exported as SOFTHSM2_CONF */
	char pin_file[PATH_MAX];	/* mode 0600, holds TEST_PIN */
	char uri[256];		/* pkcs11:token=<label> */
	char label[33];
};

/* Exits 77 (skip) if tool is not on PATH, except under CI (env CI set), where
 * a missing tool is a failure (exit 1). */
void test_require_tool(const char *tool);

/* The SoftHSMv2 module (env SOFTHSM_MODULE, else the Debian path). */
const char *test_softhsm_module(void);

/* Creates temp dir + token store + one initialized token.  Aborts the test
 * process on failure.  label may be NULL ("tca-test"). */
void test_token_create(struct test_token *t, const char *label);

/* Creates the token store only (no token initialized): for `token init` tests. */
void test_token_store_create(struct test_token *t);

/* rm -rf t->dir. */
void test_token_destroy(struct test_token *t);

/* Makes a fresh temp directory (mkdtemp under $TMPDIR or /tmp); aborts on failure. */
void test_mkdtemp(char *out, size_t outsz);

/* Runs a shell command built from fmt; returns its exit status (or -1). */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file; returns malloc'ed buffer (NUL-terminated) or NULL. */
unsigned char *test_read_file(const char *path, size_t *len_ptr);

/* Writes a whole file with mode; returns 0 or -1. */
int test_write_file(const char *path, const void *data, size_t len, int mode);

/* Unix time of a UTC calendar date (timegm). */
time_t test_utc(int year, int month, int day, int hour, int minute, int second);

/* Path of a built program/library: $TCA_BUILDDIR/rel (or ./rel). */
void test_build_path(const char *rel, char *out, size_t outsz);

/*
 * How many times a repetition loop (mutations, threads hammering one
 * function) runs: n, divided by $TCA_TEST_REPEAT_DIVISOR when set (at
 * least 1).  tests/valgrind.sh sets it: under memcheck what matters is that
 * every path runs, not how often; the plain and ASan runs do all n.
 * Assertions about counts must scale with the result.
 */
unsigned int test_repeat(unsigned int n);

#endif
