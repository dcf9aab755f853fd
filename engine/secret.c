/* secret.c - PIN files and variables, wiped after use. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "secret.h"
#include "tca-error.h"

static int
secret_dup(const char *src, size_t len, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen)
{
	char *s;

	if (len == 0) {
		snprintf(err, errlen, "secret is empty");
		return TCA_ERR_CONFIG;
	}
	if (len > TCA_SECRET_MAX) {
		snprintf(err, errlen, "secret is longer than %d bytes", TCA_SECRET_MAX);
		return TCA_ERR_CONFIG;
	}
	if ((s = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	s[len] = '\0';
	(void)mlock(s, len + 1);	/* best effort: keep it out of swap */
	memcpy(s, src, len);
	*secret_ptr = s;
	*len_ptr = len;
	return TCA_OK;
}

int
tca_secret_copy(const char *src, size_t len, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen)
{
	*secret_ptr = NULL;
	*len_ptr = 0;
	return secret_dup(src, len, secret_ptr, len_ptr, err, errlen);
}

int
tca_secret_read_file(const char *path, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen)
{
	char buf[TCA_SECRET_MAX + 3];
	struct stat st;
	ssize_t n;
	size_t len, total = 0;
	int fd = -1, r = TCA_ERR_CONFIG;

	*secret_ptr = NULL;
	*len_ptr = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open PIN file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat PIN file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "PIN file %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "PIN file %s has mode %04o; it must not be "
		    "accessible by group or others (chmod 600)", path,
		    (unsigned int)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "PIN file %s is owned by uid %u, not by uid %u or root",
		    path, (unsigned int)st.st_uid, (unsigned int)geteuid());
		goto out;
	}
	while (total < sizeof(buf)) {
		n = read(fd, buf + total, sizeof(buf) - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read PIN file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	for (len = 0; len < total && buf[len] != '\n' && buf[len] != '\r'; len++)
		;
	if (len == total && total == sizeof(buf)) {
		snprintf(err, errlen, "PIN file %s: PIN longer than %d bytes", path, TCA_SECRET_MAX);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "PIN file %s contains a NUL byte", path);
		goto out;
	}
	r = secret_dup(buf, len, secret_ptr, len_ptr, err, errlen);
	if (r == TCA_ERR_CONFIG)
		snprintf(err, errlen, "PIN file %s holds no PIN on its first line", path);
 out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return r;
}

int
tca_secret_take_env(const char *var, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen)
{
	char *v;
	size_t len;
	int r;

	*secret_ptr = NULL;
	*len_ptr = 0;
	if ((v = getenv(var)) == NULL) {
		snprintf(err, errlen, "environment variable %s is not set", var);
		return TCA_ERR_CONFIG;
	}
	len = strlen(v);
	r = secret_dup(v, len, secret_ptr, len_ptr, err, errlen);
	if (r == TCA_ERR_CONFIG && len == 0)
		snprintf(err, errlen, "environment variable %s is empty", var);
	OPENSSL_cleanse(v, len);	/* the environment block itself */
	unsetenv(var);
	return r;
}

void
tca_secret_free(char *secret, size_t len)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, len + 1);
	(void)munlock(secret, len + 1);
	free(secret);
}
