/* sd-listen.c - systemd socket activation (LISTEN_FDS), see sd-listen.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd-listen.h"
#include "tca-error.h"

#define SD_LISTEN_FDS_START 3

/* a decimal environment value as a non-negative long; -1 if malformed */
static long
env_number(const char *v)
{
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		return -1;
	return n;
}

static void
unset_env(void)
{
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
}

static int
sockopt_int(int fd, int opt, int *val)
{
	socklen_t l = sizeof(*val);

	return getsockopt(fd, SOL_SOCKET, opt, val, &l) == 0 && l == sizeof(*val) ? 0 : -1;
}

/* fd is an AF_UNIX SOCK_STREAM socket listening on socket_path */
static int
check_socket(int fd, const char *socket_path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	socklen_t sl = sizeof(sun);
	struct stat st;
	int domain = -1, type = -1, acc = 0;
	size_t plen;

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "descriptor %d passed by systemd (LISTEN_FDS) is not a "
		    "socket; fix: tca-engined.socket must have one ListenStream=%s", fd,
		    socket_path);
		return TCA_ERR_CONFIG;
	}
	if (sockopt_int(fd, SO_DOMAIN, &domain) != 0 || domain != AF_UNIX ||
	    sockopt_int(fd, SO_TYPE, &type) != 0 || type != SOCK_STREAM) {
		snprintf(err, errlen, "the socket passed by systemd (LISTEN_FDS) is not a Unix "
		    "stream socket; fix: tca-engined.socket must have one ListenStream=%s "
		    "(a path, not a port)", socket_path);
		return TCA_ERR_CONFIG;
	}
	if (sockopt_int(fd, SO_ACCEPTCONN, &acc) != 0 || acc != 1) {
		snprintf(err, errlen, "the socket passed by systemd (LISTEN_FDS) is not "
		    "listening; fix: tca-engined.socket must not set Accept=yes");
		return TCA_ERR_CONFIG;
	}
	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &sl) != 0) {
		snprintf(err, errlen, "getsockname on the socket passed by systemd: %s",
		    strerror(errno));
		return TCA_ERR_SYSTEM;
	}
	plen = sl > offsetof(struct sockaddr_un, sun_path) ?
	    sl - offsetof(struct sockaddr_un, sun_path) : 0;
	if (plen >= sizeof(sun.sun_path))
		plen = sizeof(sun.sun_path) - 1;
	sun.sun_path[plen] = '\0';
	if (sun.sun_path[0] == '\0' || strcmp(sun.sun_path, socket_path) != 0) {
		snprintf(err, errlen, "the socket passed by systemd is bound to %s, but "
		    "socket.path is %s; fix: make ListenStream= in tca-engined.socket and "
		    "socket.path in the configuration the same path",
		    sun.sun_path[0] != '\0' ? sun.sun_path : "(an abstract or unnamed address)",
		    socket_path);
		return TCA_ERR_CONFIG;
	}
	/* what socket.mode guarantees when the engine binds it itself */
	if (stat(socket_path, &st) != 0) {
		snprintf(err, errlen, "the socket passed by systemd is bound to %s, which "
		    "cannot be found (%s); fix: restart tca-engined.socket", socket_path,
		    strerror(errno));
		return TCA_ERR_CONFIG;
	}
	if ((st.st_mode & 0007) != 0) {
		snprintf(err, errlen, "socket %s passed by systemd has mode %04o: others must "
		    "have no access, as with socket.mode; fix: SocketMode=0660 (or 0600) in "
		    "tca-engined.socket",
		    socket_path, (unsigned int)(st.st_mode & 07777));
		return TCA_ERR_CONFIG;
	}
	return TCA_OK;
}

int
tca_sd_listen_fd(const char *socket_path, int *fd, char *err, size_t errlen)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	long pid, n;
	int flags, r;

	*fd = -1;
	if (pid_s == NULL && fds_s == NULL)
		return TCA_OK;
	pid = env_number(pid_s);
	n = env_number(fds_s);
	/* meant for another process (e.g. inherited through a wrapper): not ours */
	if (pid_s != NULL && pid >= 0 && pid != (long)getpid()) {
		unset_env();
		return TCA_OK;
	}
	unset_env();
	if (pid_s == NULL || n < 0) {
		snprintf(err, errlen, "LISTEN_FDS=%s / LISTEN_PID=%s: socket activation "
		    "needs both, as numbers", fds_s != NULL ? fds_s : "(unset)",
		    pid_s != NULL ? pid_s : "(unset)");
		return TCA_ERR_CONFIG;
	}
	if (n == 0)
		return TCA_OK;
	if (n != 1) {
		snprintf(err, errlen, "systemd passed %ld sockets (LISTEN_FDS=%ld); the engine "
		    "serves exactly one; fix: one ListenStream=%s in tca-engined.socket",
		    n, n, socket_path);
		return TCA_ERR_CONFIG;
	}
	if ((r = check_socket(SD_LISTEN_FDS_START, socket_path, err, errlen)) != TCA_OK)
		return r;
	if ((flags = fcntl(SD_LISTEN_FDS_START, F_GETFD)) < 0 ||
	    fcntl(SD_LISTEN_FDS_START, F_SETFD, flags | FD_CLOEXEC) != 0) {
		snprintf(err, errlen, "fcntl on the socket passed by systemd: %s",
		    strerror(errno));
		return TCA_ERR_SYSTEM;
	}
	*fd = SD_LISTEN_FDS_START;
	return TCA_OK;
}
