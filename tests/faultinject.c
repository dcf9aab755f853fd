/*
 * faultinject.c - LD_PRELOAD library for the store-failure tests.
 *
 * While the file named by $TCA_FI_TRIGGER exists, every write/pwrite/fsync on
 * a file descriptor whose path contains $TCA_FI_MATCH fails with errno
 * $TCA_FI_ERRNO ("ENOSPC", the default, simulates a full disk; "EROFS" a
 * read-only file system; "EIO" a failing disk).  The daemon under test sees
 * exactly what the kernel would return; nothing in the engine knows about it.
 * Test code only: never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
int fsync(int fd);
int fdatasync(int fd);

static int
fi_errno(void)
{
	const char *e = getenv("TCA_FI_ERRNO");

	if (e == NULL || strcmp(e, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(e, "EROFS") == 0)
		return EROFS;
	return EIO;
}

/* 1 if this fd must fail now */
static int
fi_hit(int fd)
{
	const char *trigger = getenv("TCA_FI_TRIGGER");
	const char *match = getenv("TCA_FI_MATCH");
	char link[64], path[4096];
	struct stat st;
	ssize_t n;

	if (trigger == NULL || match == NULL || stat(trigger, &st) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t
write(int fd, const void *buf, size_t n)
{
	if (fi_hit(fd)) {
		errno = fi_errno();
		return -1;
	}
	return NEXT(write)(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fi_hit(fd)) {
		errno = fi_errno();
		return -1;
	}
	return NEXT(pwrite)(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (fi_hit(fd)) {
		errno = fi_errno();
		return -1;
	}
	return NEXT(pwrite64)(fd, buf, n, off);
}

int
fsync(int fd)
{
	if (fi_hit(fd)) {
		errno = fi_errno();
		return -1;
	}
	return NEXT(fsync)(fd);
}

int
fdatasync(int fd)
{
	if (fi_hit(fd)) {
		errno = fi_errno();
		return -1;
	}
	return NEXT(fdatasync)(fd);
}
