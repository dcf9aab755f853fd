/*
 * server.h - the Unix-socket RPC server.
 *
 * One listening socket; each accepted connection is served by its own thread
 * (a slow or stuck client only ever holds its own thread; idle and in-frame
 * timeouts bound how long).  The peer's uid/gid come from SO_PEERCRED at
 * accept and decide its role; peers with no role are answered UNAUTHORIZED,
 * logged and disconnected.
 *
 * Connection slots (docs/rpc.md 6): at most max_connections at once.  A peer
 * that is not admin gets BUSY once max_connections - admin_reserved are open
 * (those last slots are for admins) or once its uid holds
 * max_connections_per_uid (0: no per-uid bound); admins are bound by
 * max_connections only.  Refusals are logged at most once a second per
 * reason, with a count of the ones not logged.
 *
 * Idle deadline: a connection is closed idle_timeout_ms after it was accepted
 * or after its last request for an operation other than "status" that its
 * role may call; status requests (and frames naming no such operation) are
 * answered but do not move the deadline.
 *
 * Shutdown (tca_server_run returns when *stop is set): the listening socket is
 * closed and unlinked first, idle connections are closed, requests in flight
 * run to completion and their responses are written, then run returns.
 */
#ifndef TCA_SERVER_H
#define TCA_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "rpc-ops.h"

typedef struct tca_server tca_server;

struct tca_server_params {
	const char *socket_path;
	unsigned int mode;		/* e.g. 0660 */
	long gid;			/* -1: keep */
	size_t max_frame;
	int frame_timeout_ms;
	int idle_timeout_ms;
	unsigned int max_connections;
	unsigned int max_connections_per_uid;	/* non-admin peers; 0 = no bound */
	unsigned int admin_reserved_connections;	/* of max_connections */
	struct tca_roles roles;
	/* > 2: a listening socket systemd passed (sd-listen.h), used as it is:
	 * not bound, chmod-ed or unlinked by the server, only closed.
	 * 0 (memset): the server creates socket_path itself. */
	int listen_fd;
	/* called from the accept loop at least every 200 ms (the systemd
	 * watchdog, sd-notify.h); NULL: none */
	void (*tick)(void *ctx);
	void *tick_ctx;
};

/* File descriptors kept free beyond max_connections for the store, the token
 * module, logs and the listening socket. */
#define TCA_SERVER_FD_MARGIN 64

/*
 * TCA_OK when the soft RLIMIT_NOFILE holds max_connections +
 * TCA_SERVER_FD_MARGIN descriptors; else TCA_ERR_CONFIG with err naming both
 * numbers and the fix (LimitNOFILE / ulimit -n, or a lower
 * rpc.max_connections).  tca_server_open checks it too.
 */
int tca_server_check_nofile(unsigned int max_connections, char *err, size_t errlen);

/*
 * With p->listen_fd > 2 takes that socket over (after the RLIMIT_NOFILE
 * check); otherwise creates and binds the socket (mode applied atomically through umask, then
 * chmod/chown).  A stale socket file left by a crashed engine is replaced; a
 * live one (something accepts connections on it) is an error, as is any
 * non-socket file at the path; so is a soft RLIMIT_NOFILE below
 * max_connections + TCA_SERVER_FD_MARGIN.  TCA_OK or TCA_ERR_SYSTEM/CONFIG
 * with err.
 */
int tca_server_open(const struct tca_server_params *p, tca_server **s_ptr,
    char *err, size_t errlen);

/* Replaces roles and timeouts (SIGHUP); connections accepted later use them. */
void tca_server_update(tca_server *s, const struct tca_roles *roles,
    int frame_timeout_ms, int idle_timeout_ms);

/*
 * Serves until *stop becomes non-zero.  base is copied into each
 * connection's context (who and role filled per connection).  When *reload is
 * non-zero, clears it and calls on_reload(reload_ctx) from the accept thread.
 * Returns TCA_OK after a clean drain.
 */
int tca_server_run(tca_server *s, const struct tca_rpc_ctx *base,
    volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
    void (*on_reload)(void *ctx), void *reload_ctx);

/* Closes and unlinks the socket if still open (an inherited one is closed,
 * not unlinked), frees s.  NULL ok. */
void tca_server_close(tca_server *s);

#endif
