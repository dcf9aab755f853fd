/* pgtest.c - a throwaway PostgreSQL cluster for the Check suites (pgtest.h). */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgtest.h"
#include "testutil.h"

static int watchdog_fd = -1;	/* the running cluster's, for the skip path */

static void
fatal(const char *what)
{
	fprintf(stderr, "pgtest: %s\n", what);
	exit(99);		/* automake: hard error */
}

double
pgtest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
script_path(char *out, size_t outlen)
{
	const char *src = getenv("TCA_SRCDIR");

	snprintf(out, outlen, "%s/tests/pg-cluster.sh",
	    src != NULL && *src != '\0' ? src : ".");
}

/* Runs pg-cluster.sh cmd dir; exits 77/1 as the script says when the
 * PostgreSQL programs are absent. */
static int
cluster_cmd2(const char *cmd, const char *primary, const char *dir, char *out,
    size_t outlen)
{
	char script[PATH_MAX], line[3 * PATH_MAX], *nl;
	FILE *p;
	int st;

	script_path(script, sizeof(script));
	if (primary != NULL)
		snprintf(line, sizeof(line), "sh '%s' %s '%s' '%s'", script, cmd,
		    primary, dir);
	else
		snprintf(line, sizeof(line), "sh '%s' %s '%s'", script, cmd, dir);
	if ((p = popen(line, "r")) == NULL)
		return -1;
	if (out != NULL && outlen > 0) {
		out[0] = '\0';
		if (fgets(out, (int)outlen, p) != NULL &&
		    (nl = strchr(out, '\n')) != NULL)
			*nl = '\0';
	}
	while (fgets(line, sizeof(line), p) != NULL)
		;
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	if (WEXITSTATUS(st) == 77 && (strcmp(cmd, "start") == 0 ||
	    strcmp(cmd, "standby") == 0)) {
		/* skipped: no server was started, the watchdog has nothing to do */
		test_sh("rm -rf '%s'", dir);
		if (watchdog_fd != -1 && write(watchdog_fd, "s", 1) != 1)
			fprintf(stderr, "pgtest: telling the watchdog: %s\n", strerror(errno));
		exit(77);
	}
	return WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int
cluster_cmd(const char *cmd, const char *dir, char *out, size_t outlen)
{
	return cluster_cmd2(cmd, NULL, dir, out, outlen);
}

/*
 * The watchdog: waits for EOF on rfd (every holder of the write end gone:
 * the test binary ended) and then stops the cluster; a byte 's' first
 * means pgtest_stop() did it already.
 */
static void
watchdog_main(int rfd, const char *dir)
{
	char b = 0;
	ssize_t n;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	(void)setpgid(0, 0);
	do
		n = read(rfd, &b, 1);
	while (n == -1 && errno == EINTR);
	if (n == 1 && b == 's')
		_exit(0);
	fprintf(stderr, "pgtest: the test binary ended without stopping its "
	    "PostgreSQL cluster: stopping %s\n", dir);
	(void)cluster_cmd("stop", dir, NULL, 0);
	test_sh("rm -rf '%s'", dir);
	_exit(0);
}

static void
start_cluster(struct pgtest_cluster *c, const struct pgtest_cluster *primary)
{
	const char *tmp = getenv("TMPDIR");
	int fds[2];
	double t0;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->wfd = -1;
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(c->dir, sizeof(c->dir), "%s/tca-pg-XXXXXX", tmp);
	if (mkdtemp(c->dir) == NULL)
		fatal("mkdtemp for the cluster failed");
	/* the socket path must fit sockaddr_un.sun_path (108 bytes) */
	if (strlen(c->dir) + sizeof("/.s.PGSQL.5432") > 107)
		fatal("TMPDIR is too long for a Unix socket path");
	if (pipe2(fds, O_CLOEXEC) == -1)
		fatal("pipe2 failed");
	fflush(NULL);
	if ((pid = fork()) == -1)
		fatal("fork failed");
	if (pid == 0) {
		close(fds[1]);
		watchdog_main(fds[0], c->dir);
	}
	close(fds[0]);
	c->watchdog = pid;
	c->wfd = watchdog_fd = fds[1];
	t0 = pgtest_now();
	if (cluster_cmd2(primary != NULL ? "standby" : "start",
	    primary != NULL ? primary->dir : NULL, c->dir, c->conninfo,
	    sizeof(c->conninfo)) != 0 || c->conninfo[0] == '\0')
		fatal("pg-cluster.sh start failed (see above)");
	c->start_s = pgtest_now() - t0;
}

void
pgtest_start(struct pgtest_cluster *c)
{
	start_cluster(c, NULL);
}

void
pgtest_start_standby(struct pgtest_cluster *c, const struct pgtest_cluster *primary)
{
	start_cluster(c, primary);
}

int
pgtest_promote(const struct pgtest_cluster *c)
{
	return cluster_cmd("promote", c->dir, NULL, 0);
}

void
pgtest_stop(struct pgtest_cluster *c)
{
	if (c->wfd == -1)
		return;
	if (cluster_cmd("stop", c->dir, NULL, 0) != 0)
		fprintf(stderr, "pgtest: stopping the cluster in %s failed\n", c->dir);
	test_sh("rm -rf '%s'", c->dir);
	if (write(c->wfd, "s", 1) != 1)
		fprintf(stderr, "pgtest: telling the watchdog: %s\n", strerror(errno));
	close(c->wfd);
	if (watchdog_fd == c->wfd)
		watchdog_fd = -1;
	c->wfd = -1;
	if (c->watchdog > 0)
		(void)waitpid(c->watchdog, NULL, 0);
	c->watchdog = 0;
}

int
pgtest_restart(const struct pgtest_cluster *c)
{
	return cluster_cmd("restart", c->dir, NULL, 0);
}

int
pgtest_halt(const struct pgtest_cluster *c)
{
	return cluster_cmd("halt", c->dir, NULL, 0);
}

int
pgtest_resume(const struct pgtest_cluster *c)
{
	return cluster_cmd("resume", c->dir, NULL, 0);
}

int
pgtest_exec(const char *conninfo, const char *sql, char *err, size_t errlen)
{
	PGconn *conn;
	PGresult *res = NULL;
	int r = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		if (err != NULL)
			snprintf(err, errlen, "%s", PQerrorMessage(conn));
		goto out;
	}
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK)
		r = 0;
	else if (err != NULL)
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
 out:
	PQclear(res);
	PQfinish(conn);
	return r;
}

long long
pgtest_int(const char *conninfo, const char *sql)
{
	PGconn *conn;
	PGresult *res = NULL;
	long long v = -1;

	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: %s", PQerrorMessage(conn));
		goto out;
	}
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(conn));
 out:
	PQclear(res);
	PQfinish(conn);
	return v;
}

int
pgtest_createdb(const struct pgtest_cluster *c, const char *name, char *out,
    size_t outlen)
{
	char sql[160], err[512];
	const char *p;

	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return -1;
	if (strlen(name) > 60)
		return -1;
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (pgtest_exec(c->conninfo, sql, err, sizeof(err)) != 0) {
		fprintf(stderr, "pgtest: %s: %s", sql, err);
		return -1;
	}
	snprintf(out, outlen, "host=%s port=5432 dbname=%s user=postgres", c->dir, name);
	return 0;
}
