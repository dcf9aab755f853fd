/*
 * pgtest.h - a throwaway PostgreSQL cluster for the Check suites (issue 13),
 * on Debian's postgresql package: tests/pg-cluster.sh does the initdb and
 * pg_ctl work (Unix socket only, trust on that socket, as the postgres
 * user when root), this file starts it once per test binary, makes a fresh
 * database per test and makes sure the server is stopped when the binary
 * ends, however it ends.
 *
 * Cleanup: pgtest_start() forks a watchdog process holding the read end of
 * a close-on-exec pipe whose write end stays in the test binary (and in the
 * children Check forks for each test).  When the binary exits - normally,
 * by an assertion, or killed with SIGKILL - the pipe reaches EOF and the
 * watchdog stops the cluster (pg_ctl stop -m fast, then immediate) and
 * removes its directory.  The watchdog ignores SIGINT, SIGTERM and SIGHUP so
 * that a ^C or a harness killing the process group still gets the cleanup.
 * The postmaster is not a child of the binary (pg_ctl detaches it), so only
 * a SIGKILL of the watchdog itself can leave a server behind; its directory
 * is then $TMPDIR/tca-pg-* and `pg-cluster.sh stop DIR` stops it.
 *
 * As root, $TMPDIR must be traversable by the postgres user (/tmp is).
 *
 * Everything here aborts the test binary (exit 99, automake's hard error)
 * when the cluster cannot be set up, and exits 77 (skip) when the server
 * programs are absent outside CI (CI set: exit 1).
 */
#ifndef TCA_PGTEST_H
#define TCA_PGTEST_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct pgtest_cluster {
	char dir[PATH_MAX];	/* the cluster's temp dir (data, socket, log) */
	char conninfo[PATH_MAX + 64];	/* libpq key=value, dbname=postgres */
	pid_t watchdog;
	int wfd;		/* write end of the watchdog's pipe */
	double start_s;		/* how long the start took (initdb + start) */
};

/* Starts a cluster in a fresh $TMPDIR/tca-pg-XXXXXX. */
void pgtest_start(struct pgtest_cluster *c);

/* A streaming standby of primary in a fresh directory, started, with a
 * watchdog of its own (pg_basebackup -R; pgtest_stop() ends it). */
void pgtest_start_standby(struct pgtest_cluster *c, const struct pgtest_cluster *primary);

/* The standby becomes a primary (pg_ctl promote).  0 or -1. */
int pgtest_promote(const struct pgtest_cluster *c);

/* Stops it and removes its directory (the watchdog is told and exits). */
void pgtest_stop(struct pgtest_cluster *c);

/* pg_ctl restart -m fast: every connection is dropped; returns when the
 * server accepts connections again.  0 or -1. */
int pgtest_restart(const struct pgtest_cluster *c);

/* The server stopped, the cluster kept (a database that is down), and
 * started again; resume does nothing if it runs.  0 or -1. */
int pgtest_halt(const struct pgtest_cluster *c);
int pgtest_resume(const struct pgtest_cluster *c);

/*
 * Creates database name (letters, digits, '_') and writes its conninfo
 * to out.  0, or -1 with the server's message on stderr.
 */
int pgtest_createdb(const struct pgtest_cluster *c, const char *name, char *out,
    size_t outlen);

/* Runs sql on a connection of its own.  0 if it succeeded; else -1 and, if
 * err is given, the server's message in err. */
int pgtest_exec(const char *conninfo, const char *sql, char *err, size_t errlen);

/* The first column of the first row of sql as an integer (-1 on error). */
long long pgtest_int(const char *conninfo, const char *sql);

/* Seconds on CLOCK_MONOTONIC. */
double pgtest_now(void);

#endif
