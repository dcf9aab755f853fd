/*
 * sd-launch - starts a program the way systemd starts tca-engined.service
 * with tca-engined.socket, for tests/integration/install.sh.
 *
 *   sd-launch [--listen PATH [--mode OCTAL]] [--fds N] [--notify PATH]
 *             [--watchdog-usec N] [--log FILE] [--mdwe] -- PROGRAM ARGS...
 *
 * --listen: creates a listening AF_UNIX stream socket at PATH (mode through
 * the umask) and passes it as descriptor 3 with LISTEN_FDS=1 and LISTEN_PID
 * = the child's pid (--fds N passes it N times, to test refusals).
 * --notify: binds an AF_UNIX datagram socket at PATH, sets NOTIFY_SOCKET (and
 * with --watchdog-usec WATCHDOG_USEC and WATCHDOG_PID) for the child, and
 * appends every notification it receives to --log, one "KEY=value" per
 * line, flushed at once.  SIGTERM and SIGINT are passed on to the child.
 * --mdwe: the child runs with PR_SET_MDWE (PR_MDWE_REFUSE_EXEC_GAIN, Linux
 * 6.3+), the kernel's form of systemd's MemoryDenyWriteExecute=yes: no
 * mapping may become writable and executable; exit 77 if the kernel lacks it.
 * Exits with the child's exit status (128 + signal if it was killed).
 * A test helper, never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

static int
unix_socket(const char *path, int type, mode_t mode)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "sd-launch: %s: path too long\n", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, type, 0)) < 0) {
		perror("sd-launch: socket");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	old = umask(0777 & ~mode);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "sd-launch: bind %s: %s\n", path, strerror(errno));
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (type == SOCK_STREAM && listen(fd, 16) != 0) {
		perror("sd-launch: listen");
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	const char *listen_path = NULL, *notify_path = NULL, *log_path = NULL;
	const char *wd_usec = NULL;
	unsigned long mode = 0660;
	int i, nfds = 1, lfd = -1, nfd = -1, status = 0, mdwe = 0;
	FILE *log = NULL;
	struct sigaction sa;
	pid_t child;
	char buf[4096], num[32];

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--mdwe") == 0) {
			mdwe = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "sd-launch: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--listen") == 0)
			listen_path = argv[++i];
		else if (strcmp(argv[i], "--mode") == 0)
			mode = strtoul(argv[++i], NULL, 8);
		else if (strcmp(argv[i], "--fds") == 0)
			nfds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--notify") == 0)
			notify_path = argv[++i];
		else if (strcmp(argv[i], "--watchdog-usec") == 0)
			wd_usec = argv[++i];
		else if (strcmp(argv[i], "--log") == 0)
			log_path = argv[++i];
		else {
			fprintf(stderr, "sd-launch: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc || nfds < 1 || nfds > 4) {
		fprintf(stderr, "usage: sd-launch [--listen PATH [--mode OCTAL]] [--fds N] "
		    "[--notify PATH] [--watchdog-usec N] [--log FILE] [--mdwe] -- PROGRAM ARGS...\n");
		return 2;
	}
	if (mdwe && prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0L, 0L, 0L) != 0) {
		fprintf(stderr, "sd-launch: PR_SET_MDWE: %s\n", strerror(errno));
		return 77;
	}
	if (listen_path != NULL && (lfd = unix_socket(listen_path, SOCK_STREAM, (mode_t)mode)) < 0)
		return 1;
	if (notify_path != NULL) {
		if ((nfd = unix_socket(notify_path, SOCK_DGRAM, 0600)) < 0)
			return 1;
		if ((log = fopen(log_path != NULL ? log_path : "/dev/stdout", "a")) == NULL) {
			perror("sd-launch: log");
			return 1;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((child = fork()) < 0) {
		perror("sd-launch: fork");
		return 1;
	}
	if (child == 0) {
		int k;

		if (lfd >= 0) {
			for (k = 0; k < nfds; k++)
				if (dup2(lfd, 3 + k) < 0)
					_exit(127);
			if (lfd >= 3 + nfds)
				close(lfd);
			snprintf(num, sizeof(num), "%d", nfds);
			setenv("LISTEN_FDS", num, 1);
			snprintf(num, sizeof(num), "%ld", (long)getpid());
			setenv("LISTEN_PID", num, 1);
		}
		if (nfd >= 0) {
			if (nfd >= 3 + nfds || lfd < 0)
				close(nfd);
			setenv("NOTIFY_SOCKET", notify_path, 1);
			if (wd_usec != NULL) {
				setenv("WATCHDOG_USEC", wd_usec, 1);
				snprintf(num, sizeof(num), "%ld", (long)getpid());
				setenv("WATCHDOG_PID", num, 1);
			}
		}
		execvp(argv[i], argv + i);
		fprintf(stderr, "sd-launch: exec %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	if (lfd >= 0)
		close(lfd);	/* the child has it; like systemd we keep no accept */
	for (;;) {
		struct pollfd pfd = { .fd = nfd, .events = POLLIN, .revents = 0 };
		pid_t w;

		if (got_signal) {
			kill(child, got_signal);
			got_signal = 0;
		}
		if ((w = waitpid(child, &status, WNOHANG)) == child)
			break;
		if (nfd < 0) {
			usleep(50000);
			continue;
		}
		if (poll(&pfd, 1, 100) > 0 && (pfd.revents & POLLIN)) {
			ssize_t n = recv(nfd, buf, sizeof(buf) - 1, 0);

			if (n > 0) {
				buf[n] = '\0';
				fprintf(log, "%s\n", buf);
				fflush(log);
			}
		}
	}
	/* what was sent before the child exited */
	if (nfd >= 0) {
		ssize_t n;

		while ((n = recv(nfd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[n] = '\0';
			fprintf(log, "%s\n", buf);
		}
		fclose(log);
		close(nfd);
		unlink(notify_path);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
