/* testutil.c - throwaway SoftHSMv2 tokens and small helpers for the tests. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static void
die(const char *what)
{
	fprintf(stderr, "testutil: %s: %s\n", what, strerror(errno));
	exit(99);		/* automake: hard error */
}

void
test_require_tool(const char *tool)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) == 0)
		return;
	if (getenv("CI") != NULL) {
		fprintf(stderr, "required tool %s is missing (CI: failing, not skipping)\n", tool);
		exit(1);
	}
	fprintf(stderr, "SKIP: %s not found\n", tool);
	exit(77);
}

const char *
test_softhsm_module(void)
{
	const char *m = getenv("SOFTHSM_MODULE");

	return (m != NULL && *m != '\0') ? m : TCA_SOFTHSM_MODULE;
}

void
test_mkdtemp(char *out, size_t outsz)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(out, outsz, "%s/tca-test-XXXXXX", tmp);
	if (mkdtemp(out) == NULL)
		die("mkdtemp");
}

int
test_sh(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (r < 0)
		die("vasprintf");
	r = system(cmd);
	free(cmd);
	if (r == -1 || !WIFEXITED(r))
		return -1;
	return WEXITSTATUS(r);
}

unsigned char *
test_read_file(const char *path, size_t *len_ptr)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	if (len_ptr != NULL)
		*len_ptr = (size_t)n;
	return buf;
}

int
test_write_file(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	if (fchmod(fd, (mode_t)mode) != 0 || close(fd) != 0 || w != (ssize_t)len)
		return -1;
	return 0;
}

time_t
test_utc(int year, int month, int day, int hour, int minute, int second)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = month - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = minute;
	tm.tm_sec = second;
	return timegm(&tm);
}

void
test_build_path(const char *rel, char *out, size_t outsz)
{
	const char *b = getenv("TCA_BUILDDIR");

	snprintf(out, outsz, "%s/%s", (b != NULL && *b != '\0') ? b : ".", rel);
}

void
test_token_store_create(struct test_token *t)
{
	char tokdir[1100], conf[1700];

	test_require_tool("softhsm2-util");
	memset(t, 0, sizeof(*t));
	test_mkdtemp(t->dir, sizeof(t->dir));
	snprintf(tokdir, sizeof(tokdir), "%s/tokens", t->dir);
	if (mkdir(tokdir, 0700) != 0)
		die("mkdir tokens");
	snprintf(t->conf, sizeof(t->conf), "%s/softhsm2.conf", t->dir);
	snprintf(conf, sizeof(conf),
	    "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n", tokdir);
	if (test_write_file(t->conf, conf, strlen(conf), 0600) != 0)
		die("write softhsm2.conf");
	if (setenv("SOFTHSM2_CONF", t->conf, 1) != 0)
		die("setenv");
	snprintf(t->pin_file, sizeof(t->pin_file), "%s/user.pin", t->dir);
	if (test_write_file(t->pin_file, TEST_PIN "\n", strlen(TEST_PIN) + 1, 0600) != 0)
		die("write pin file");
}

void
test_token_create(struct test_token *t, const char *label)
{
	test_token_store_create(t);
	snprintf(t->label, sizeof(t->label), "%s", label != NULL ? label : "tca-test");
	snprintf(t->uri, sizeof(t->uri), "pkcs11:token=%s", t->label);
	if (test_sh("softhsm2-util --init-token --free --label '%s' --pin %s --so-pin %s >/dev/null",
	    t->label, TEST_PIN, TEST_SO_PIN) != 0) {
		fprintf(stderr, "testutil: softhsm2-util --init-token failed\n");
		exit(99);
	}
}

void
test_token_destroy(struct test_token *t)
{
	if (t->dir[0] != '\0' && strncmp(t->dir, "/", 1) == 0 && strstr(t->dir, "tca-test-") != NULL)
		test_sh("rm -rf '%s'", t->dir);
	t->dir[0] = '\0';
}

unsigned int
test_repeat(unsigned int n)
{
	const char *d = getenv("TCA_TEST_REPEAT_DIVISOR");
	unsigned long div;
	char *end;

	if (d == NULL || *d == '\0')
		return n;
	div = strtoul(d, &end, 10);
	if (*end != '\0' || div < 1)
		div = 1;
	return n / div > 0 ? (unsigned int)(n / div) : 1;
}
