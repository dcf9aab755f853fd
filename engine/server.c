/* server.c - Unix-socket accept loop and per-connection threads. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "tca-error.h"
#include "wire.h"

#define DRAIN_MAX_MS 60000	/* longest wait for in-flight requests at shutdown */
#define WRITE_TIMEOUT_MS 10000
#define LOG_INTERVAL_MS 1000	/* at most one refusal line per reason per second */

/* Why a connection was refused (or accept failed): each has its own log
 * rate limit. */
enum refusal {
	REFUSE_NONE = -1,
	REFUSE_NO_ROLE = 0,
	REFUSE_FULL,		/* rpc.max_connections */
	REFUSE_RESERVED,	/* the admin-reserved slots */
	REFUSE_PER_UID,		/* rpc.max_connections_per_uid */
	REFUSE_ACCEPT,		/* accept() failed */
	REFUSE_N
};

static const char *const refusal_what[REFUSE_N] = {
	"refused connections (no role)",
	"refused connections (rpc.max_connections)",
	"refused connections (rpc.admin_reserved_connections)",
	"refused connections (rpc.max_connections_per_uid)",
	"accept errors",
};

struct ratelimit {
	int64_t last_ms;	/* when the last line was logged */
	int logged;
	unsigned long suppressed;	/* events since then that were not */
};

struct uid_slots {
	uid_t uid;
	unsigned int n;		/* connections open */
};

struct tca_server {
	int fd;
	int inherited;		/* fd came from systemd: never unlink path */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t lock;	/* params (roles, timeouts), active, uids */
	pthread_cond_t idle;
	struct tca_server_params params;
	unsigned int active;
	/* one entry per peer uid with connections open; every entry holds at
	 * least one of the active connections, so max_connections entries do */
	struct uid_slots *uids;
	size_t n_uids;
	struct ratelimit rl[REFUSE_N];	/* accept thread only */
	volatile sig_atomic_t stopping;
	unsigned long long accepted, refused;
};

struct conn {
	tca_server *s;
	int fd;
	struct tca_rpc_ctx ctx;
	size_t max_frame;
	int frame_timeout_ms, idle_timeout_ms;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tca_server_check_nofile(unsigned int max_connections, char *err, size_t errlen)
{
	unsigned long long need = (unsigned long long)max_connections + TCA_SERVER_FD_MARGIN;
	unsigned long long cur;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return TCA_ERR_SYSTEM;
	}
	if (rl.rlim_cur == RLIM_INFINITY || (unsigned long long)rl.rlim_cur >= need)
		return TCA_OK;
	cur = (unsigned long long)rl.rlim_cur;
	if (cur > TCA_SERVER_FD_MARGIN)
		snprintf(err, errlen, "the open-file limit (soft RLIMIT_NOFILE) is %llu, but "
		    "rpc.max_connections = %u needs %llu (%u connections + %d for the store, "
		    "token and logs): raise it (systemd: LimitNOFILE=%llu or more; shell: "
		    "ulimit -n %llu) or lower rpc.max_connections to %llu or less",
		    cur, max_connections, need, max_connections, TCA_SERVER_FD_MARGIN, need,
		    need, cur - TCA_SERVER_FD_MARGIN);
	else
		snprintf(err, errlen, "the open-file limit (soft RLIMIT_NOFILE) is %llu, but "
		    "rpc.max_connections = %u needs %llu (%u connections + %d for the store, "
		    "token and logs): raise it (systemd: LimitNOFILE=%llu or more; shell: "
		    "ulimit -n %llu)", cur, max_connections, need, max_connections,
		    TCA_SERVER_FD_MARGIN, need, need);
	return TCA_ERR_CONFIG;
}

/* s->lock held */
static struct uid_slots *
uid_find(tca_server *s, uid_t uid)
{
	size_t i;

	for (i = 0; i < s->n_uids; i++)
		if (s->uids[i].uid == uid)
			return &s->uids[i];
	return NULL;
}

/* s->lock held; called with active already counting the connection */
static void
uid_add(tca_server *s, uid_t uid)
{
	struct uid_slots *u = uid_find(s, uid);

	if (u != NULL) {
		u->n++;
		return;
	}
	/* n_uids < active <= max_connections = the table's size */
	s->uids[s->n_uids].uid = uid;
	s->uids[s->n_uids].n = 1;
	s->n_uids++;
}

/* s->lock held */
static void
uid_del(tca_server *s, uid_t uid)
{
	struct uid_slots *u = uid_find(s, uid);

	if (u != NULL && --u->n == 0)
		*u = s->uids[--s->n_uids];
}

/* 1 if an event of this kind may be logged now; *suppressed: how many were
 * not logged since the last line */
static int
rl_allow(tca_server *s, enum refusal why, unsigned long *suppressed)
{
	struct ratelimit *rl = &s->rl[why];
	int64_t now = mono_ms();

	*suppressed = 0;
	if (rl->logged && now - rl->last_ms < LOG_INTERVAL_MS) {
		rl->suppressed++;
		return 0;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->logged = 1;
	rl->last_ms = now;
	return 1;
}

/* From the accept loop: reports what a burst left unlogged once it is over. */
static void
rl_flush(tca_server *s)
{
	int64_t now = mono_ms();
	int i;

	for (i = 0; i < REFUSE_N; i++) {
		struct ratelimit *rl = &s->rl[i];

		if (rl->suppressed == 0 || now - rl->last_ms < LOG_INTERVAL_MS)
			continue;
		log_warn("%s: %lu more suppressed in the last %lld ms (at most one line per "
		    "second each)", refusal_what[i], rl->suppressed, (long long)(now - rl->last_ms));
		rl->suppressed = 0;
		rl->last_ms = now;
	}
}

static void
suppressed_note(char *buf, size_t buflen, unsigned long n)
{
	buf[0] = '\0';
	if (n > 0)
		snprintf(buf, buflen, " (%lu more like this suppressed)", n);
}

static int
socket_is_live(const char *path)
{
	struct sockaddr_un sun;
	int fd, live;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return live;
}

int
tca_server_open(const struct tca_server_params *p, tca_server **s_ptr,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	tca_server *s = NULL;
	mode_t old_umask;
	int r = TCA_ERR_SYSTEM, fd = -1, bound = 0;

	*s_ptr = NULL;
	if ((r = tca_server_check_nofile(p->max_connections, err, errlen)) != TCA_OK)
		return r;
	r = TCA_ERR_SYSTEM;
	if (strlen(p->socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", p->socket_path);
		return TCA_ERR_CONFIG;
	}
	if (p->listen_fd <= 2 && lstat(p->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", p->socket_path);
			return TCA_ERR_CONFIG;
		}
		if (socket_is_live(p->socket_path)) {
			snprintf(err, errlen, "another engine is serving on %s", p->socket_path);
			return TCA_ERR_CONFIG;
		}
		if (unlink(p->socket_path) != 0) {
			snprintf(err, errlen, "cannot remove stale socket %s: %s", p->socket_path,
			    strerror(errno));
			return TCA_ERR_SYSTEM;
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TCA_ERR_NOMEM;
	if ((s->uids = calloc(p->max_connections > 0 ? p->max_connections : 1,
	    sizeof(*s->uids))) == NULL) {
		free(s);
		return TCA_ERR_NOMEM;
	}
	s->fd = -1;
	s->params = *p;
	/* the reserve leaves front ends at least one slot (conf.c checks it too) */
	if (s->params.admin_reserved_connections >= s->params.max_connections)
		s->params.admin_reserved_connections = s->params.max_connections > 0 ?
		    s->params.max_connections - 1 : 0;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	memcpy(s->path, p->socket_path, strlen(p->socket_path) + 1);
	s->params.socket_path = s->path;
	if (p->listen_fd > 2) {
		/* socket activation: sd-listen.c checked what it is */
		s->fd = p->listen_fd;
		s->inherited = 1;
		*s_ptr = s;
		return TCA_OK;
	}

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, s->path, strlen(s->path) + 1);
	/* never let the socket exist with looser permissions, even briefly */
	old_umask = umask(0777 & ~(mode_t)p->mode);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (r != 0) {
		r = TCA_ERR_SYSTEM;
		snprintf(err, errlen, "bind %s: %s", s->path, strerror(errno));
		goto out;
	}
	bound = 1;
	r = TCA_ERR_SYSTEM;
	if (chmod(s->path, (mode_t)p->mode) != 0 ||
	    (p->gid >= 0 && chown(s->path, (uid_t)-1, (gid_t)p->gid) != 0)) {
		snprintf(err, errlen, "setting mode/group of %s: %s", s->path, strerror(errno));
		goto out;
	}
	if (listen(fd, 128) != 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		goto out;
	}
	s->fd = fd;
	fd = -1;
	*s_ptr = s;
	s = NULL;
	r = TCA_OK;
 out:
	if (fd >= 0)
		close(fd);
	if (s != NULL) {
		if (bound)
			unlink(s->path);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->idle);
		free(s->uids);
		free(s);
	}
	return r;
}

void
tca_server_update(tca_server *s, const struct tca_roles *roles,
    int frame_timeout_ms, int idle_timeout_ms)
{
	pthread_mutex_lock(&s->lock);
	s->params.roles = *roles;
	s->params.frame_timeout_ms = frame_timeout_ms;
	s->params.idle_timeout_ms = idle_timeout_ms;
	pthread_mutex_unlock(&s->lock);
}

static void
send_error(int fd, uint64_t id, int err, const char *msg)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	if (tca_response_encode_error(id, err, msg, &buf, &len) == TCA_OK)
		(void)tca_frame_write(fd, buf, len, WRITE_TIMEOUT_MS);
	free(buf);
}

static void
conn_done(struct conn *c)
{
	tca_server *s = c->s;
	uid_t uid = c->ctx.who.uid;

	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->lock);
	s->active--;
	uid_del(s, uid);
	if (s->active == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Whether a request moves the connection's idle deadline: one for an
 * operation other than status that the peer's role may call.  status (cheap,
 * and what a peer holding slots would send) and frames naming no such
 * operation do not, so a connection doing nothing else is closed
 * idle_timeout_ms after its last real request.
 */
static int
is_activity(const struct conn *c, const unsigned char *frame, size_t len)
{
	const struct tca_op_desc *d;
	char op[TCA_OP_MAX + 1];

	if (tca_request_peek_op(frame, len, op, sizeof(op)) != TCA_OK ||
	    strcmp(op, TCA_OP_STATUS) == 0)
		return 0;
	return (d = tca_op_find(op)) != NULL && c->ctx.role >= d->role;
}

static void
close_idle(struct conn *c)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "read timed out: no request other than status within "
	    "rpc.idle_timeout_ms (%d ms); idle connection closed", c->idle_timeout_ms);
	log_info("uid %u pid %d: connection closed: idle for %d ms (status does not count)",
	    (unsigned int)c->ctx.who.uid, (int)c->ctx.who.pid, c->idle_timeout_ms);
	send_error(c->fd, 0, TCA_ERR_BAD_REQUEST, msg);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	unsigned char *frame = NULL, *resp = NULL;
	size_t len = 0, resp_len = 0;
	char msg[128];
	int64_t deadline, left;
	int r, idle, idle_ms, activity;

	deadline = c->idle_timeout_ms < 0 ? -1 : mono_ms() + c->idle_timeout_ms;
	for (;;) {
		/* draining: the request in flight was answered; take no new one */
		if (__atomic_load_n(&c->s->stopping, __ATOMIC_ACQUIRE))
			break;
		idle_ms = -1;
		if (deadline >= 0) {
			if ((left = deadline - mono_ms()) <= 0) {
				close_idle(c);
				break;
			}
			idle_ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		r = tca_frame_read_ex(c->fd, c->max_frame, idle_ms, c->frame_timeout_ms,
		    &c->s->stopping, &frame, &len, &idle);
		if (r == TCA_ERR_EOF || r == TCA_ERR_SHUTTING_DOWN)
			break;
		if (r == TCA_ERR_TIMEOUT && idle) {
			close_idle(c);
			break;
		}
		if (r == TCA_ERR_FRAME_TOO_LARGE) {
			/* the body is still in the socket: answer and drop the connection */
			snprintf(msg, sizeof(msg), "frame of %zu bytes exceeds the limit of %zu bytes",
			    len, c->max_frame);
			log_warn("uid %u pid %d: %s", (unsigned int)c->ctx.who.uid,
			    (int)c->ctx.who.pid, msg);
			send_error(c->fd, 0, TCA_ERR_FRAME_TOO_LARGE, msg);
			break;
		}
		if (r == TCA_ERR_BAD_REQUEST) {
			send_error(c->fd, 0, TCA_ERR_BAD_REQUEST, "zero-length frame");
			break;
		}
		if (r == TCA_ERR_TIMEOUT || r == TCA_ERR_TRUNCATED) {
			log_info("uid %u pid %d: connection closed: %s", (unsigned int)c->ctx.who.uid,
			    (int)c->ctx.who.pid, tca_strerror(r));
			if (r == TCA_ERR_TIMEOUT) {
				snprintf(msg, sizeof(msg), "read timed out: frame not complete within "
				    "rpc.frame_timeout_ms (%d ms)", c->frame_timeout_ms);
				send_error(c->fd, 0, TCA_ERR_BAD_REQUEST, msg);
			}
			break;
		}
		if (r != TCA_OK)
			break;
		activity = is_activity(c, frame, len);
		r = tca_rpc_handle(&c->ctx, frame, len, &resp, &resp_len);
		free(frame);
		frame = NULL;
		if (r != TCA_OK)
			break;
		r = tca_frame_write(c->fd, resp, resp_len, WRITE_TIMEOUT_MS);
		free(resp);
		resp = NULL;
		if (r != TCA_OK)
			break;
		/* idle time counts from the answer to the last real request */
		if (activity && deadline >= 0)
			deadline = mono_ms() + c->idle_timeout_ms;
	}
	free(frame);
	free(resp);
	conn_done(c);
	return NULL;
}

static void
accept_one(tca_server *s, const struct tca_rpc_ctx *base)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;
	struct conn *c = NULL;
	struct uid_slots *u;
	enum tca_role role;
	enum refusal why = REFUSE_NONE;
	unsigned int max, reserved, per_uid, open_all, open_uid;
	unsigned long sup;
	char note[64], msg[256];
	int fd, e;

	if ((fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		e = errno;
		if (e != EINTR && e != EAGAIN && e != ECONNABORTED &&
		    rl_allow(s, REFUSE_ACCEPT, &sup)) {
			suppressed_note(note, sizeof(note), sup);
			log_warn("accept: %s%s", strerror(e), note);
		}
		if (e == EMFILE || e == ENFILE)
			usleep(100000);	/* let connections finish instead of spinning */
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
		log_error("SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return;
	}
	pthread_mutex_lock(&s->lock);
	role = tca_role_of(&s->params.roles, cred.uid, cred.gid);
	max = s->params.max_connections;
	reserved = s->params.admin_reserved_connections;
	per_uid = s->params.max_connections_per_uid;
	open_all = s->active;
	u = uid_find(s, cred.uid);
	open_uid = u != NULL ? u->n : 0;
	/* admins: max_connections only; everyone else also leaves the reserve
	 * alone and stays within the per-uid bound */
	if (role == TCA_ROLE_NONE)
		why = REFUSE_NO_ROLE;
	else if (open_all >= max)
		why = REFUSE_FULL;
	else if (role != TCA_ROLE_ADMIN && open_all >= max - reserved)
		why = REFUSE_RESERVED;
	else if (role != TCA_ROLE_ADMIN && per_uid != 0 && open_uid >= per_uid)
		why = REFUSE_PER_UID;
	else {
		s->active++;
		uid_add(s, cred.uid);
	}
	s->accepted++;
	if (why != REFUSE_NONE)
		s->refused++;
	pthread_mutex_unlock(&s->lock);
	if (why != REFUSE_NONE) {
		int log_it = rl_allow(s, why, &sup);

		suppressed_note(note, sizeof(note), sup);
		switch (why) {
		case REFUSE_NO_ROLE:
			if (log_it)
				log_warn("refused connection from uid %u gid %u pid %d: no role%s",
				    (unsigned int)cred.uid, (unsigned int)cred.gid, (int)cred.pid, note);
			send_error(fd, 0, TCA_ERR_UNAUTHORIZED,
			    "this uid/gid has no role on this engine");
			break;
		case REFUSE_FULL:
			if (log_it)
				log_warn("refused connection from uid %u pid %d: all %u connections "
				    "in use (rpc.max_connections)%s", (unsigned int)cred.uid,
				    (int)cred.pid, max, note);
			snprintf(msg, sizeof(msg), "too many connections: all %u are in use "
			    "(rpc.max_connections); retry later", max);
			send_error(fd, 0, TCA_ERR_BUSY, msg);
			break;
		case REFUSE_RESERVED:
			if (log_it)
				log_warn("refused connection from uid %u pid %d: %u of %u connections "
				    "open, the other %u are reserved for admins "
				    "(rpc.admin_reserved_connections)%s", (unsigned int)cred.uid,
				    (int)cred.pid, open_all, max, reserved, note);
			snprintf(msg, sizeof(msg), "too many connections: the %u open to front ends "
			    "are in use; the last %u of rpc.max_connections = %u are reserved for "
			    "admins (rpc.admin_reserved_connections); retry later", max - reserved,
			    reserved, max);
			send_error(fd, 0, TCA_ERR_BUSY, msg);
			break;
		default:
			if (log_it)
				log_warn("refused connection from uid %u pid %d: this uid has %u "
				    "connections open (rpc.max_connections_per_uid = %u)%s",
				    (unsigned int)cred.uid, (int)cred.pid, open_uid, per_uid, note);
			snprintf(msg, sizeof(msg), "too many connections: uid %u already has %u "
			    "open, the limit per uid (rpc.max_connections_per_uid) is %u; retry later",
			    (unsigned int)cred.uid, open_uid, per_uid);
			send_error(fd, 0, TCA_ERR_BUSY, msg);
			break;
		}
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->s = s;
	c->fd = fd;
	c->ctx = *base;
	c->ctx.who.uid = cred.uid;
	c->ctx.who.gid = cred.gid;
	c->ctx.who.pid = cred.pid;
	c->ctx.role = role;
	pthread_mutex_lock(&s->lock);
	c->max_frame = s->params.max_frame;
	c->frame_timeout_ms = s->params.frame_timeout_ms;
	c->idle_timeout_ms = s->params.idle_timeout_ms;
	pthread_mutex_unlock(&s->lock);
	log_debug("connection from uid %u pid %d as %s", (unsigned int)cred.uid,
	    (int)cred.pid, tca_role_name(role));
	/* signals go to the accept thread only */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, conn_main, c) != 0) {
		pthread_attr_destroy(&attr);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		log_error("pthread_create failed");
		goto fail;
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return;
 fail:
	free(c);
	send_error(fd, 0, TCA_ERR_INTERNAL, "cannot serve this connection");
	close(fd);
	pthread_mutex_lock(&s->lock);
	s->active--;
	uid_del(s, cred.uid);
	if (s->active == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

int
tca_server_run(tca_server *s, const struct tca_rpc_ctx *base,
    volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
    void (*on_reload)(void *ctx), void *reload_ctx)
{
	struct pollfd pfd;
	struct timespec deadline;
	int r = TCA_OK;

	log_notice("serving on %s", s->path);
	while (!*stop) {
		if (reload != NULL && *reload) {
			*reload = 0;
			if (on_reload != NULL)
				on_reload(reload_ctx);
		}
		if (s->params.tick != NULL)
			s->params.tick(s->params.tick_ctx);
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 200) > 0 && (pfd.revents & POLLIN))
			accept_one(s, base);
		rl_flush(s);
	}

	/* stop accepting: the socket disappears first, so front ends fail fast */
	log_notice("shutting down: closing %s, finishing requests in flight", s->path);
	close(s->fd);
	s->fd = -1;
	/* an inherited socket stays systemd's: it queues connections for the
	 * next start */
	if (!s->inherited)
		unlink(s->path);
	/* read by every connection thread (TSan: a plain store raced them) */
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DRAIN_MAX_MS / 1000;
	pthread_mutex_lock(&s->lock);
	while (s->active > 0) {
		if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == ETIMEDOUT) {
			log_error("%u connections still busy after %d s; exiting anyway",
			    s->active, DRAIN_MAX_MS / 1000);
			r = TCA_ERR_TIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
tca_server_close(tca_server *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0) {
		close(s->fd);
		if (!s->inherited)
			unlink(s->path);
	}
	/* connection threads hold s; only free it once they are gone */
	pthread_mutex_lock(&s->lock);
	if (s->active > 0) {
		pthread_mutex_unlock(&s->lock);
		return;		/* leaked deliberately: exiting process */
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s->uids);
	free(s);
}
