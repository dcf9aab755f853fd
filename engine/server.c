/* server.c - Unix-socket accept loop and per-connection threads. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct tca_server {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t lock;	/* params (roles, timeouts), active */
	pthread_cond_t idle;
	struct tca_server_params params;
	unsigned int active;
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
	if (strlen(p->socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", p->socket_path);
		return TCA_ERR_CONFIG;
	}
	if (lstat(p->socket_path, &st) == 0) {
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
	s->fd = -1;
	s->params = *p;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	memcpy(s->path, p->socket_path, strlen(p->socket_path) + 1);
	s->params.socket_path = s->path;

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

	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->lock);
	s->active--;
	if (s->active == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	unsigned char *frame = NULL, *resp = NULL;
	size_t len = 0, resp_len = 0;
	char msg[128];
	int r;

	for (;;) {
		/* draining: the request in flight was answered; take no new one */
		if (__atomic_load_n(&c->s->stopping, __ATOMIC_ACQUIRE))
			break;
		r = tca_frame_read(c->fd, c->max_frame, c->idle_timeout_ms,
		    c->frame_timeout_ms, &c->s->stopping, &frame, &len);
		if (r == TCA_ERR_EOF || r == TCA_ERR_SHUTTING_DOWN)
			break;
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
			if (r == TCA_ERR_TIMEOUT)
				send_error(c->fd, 0, TCA_ERR_BAD_REQUEST, "read timed out");
			break;
		}
		if (r != TCA_OK)
			break;
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
	enum tca_role role;
	int fd, busy;

	if ((fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE)
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
	busy = s->active >= s->params.max_connections;
	if (role != TCA_ROLE_NONE && !busy)
		s->active++;
	s->accepted++;
	if (role == TCA_ROLE_NONE)
		s->refused++;
	pthread_mutex_unlock(&s->lock);
	if (role == TCA_ROLE_NONE) {
		log_warn("refused connection from uid %u gid %u pid %d: no role",
		    (unsigned int)cred.uid, (unsigned int)cred.gid, (int)cred.pid);
		send_error(fd, 0, TCA_ERR_UNAUTHORIZED, "this uid/gid has no role on this engine");
		close(fd);
		return;
	}
	if (busy) {
		log_warn("refused connection from uid %u: %u connections open",
		    (unsigned int)cred.uid, s->params.max_connections);
		send_error(fd, 0, TCA_ERR_BUSY, "too many connections");
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
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 200) > 0 && (pfd.revents & POLLIN))
			accept_one(s, base);
	}

	/* stop accepting: the socket disappears first, so front ends fail fast */
	log_notice("shutting down: closing %s, finishing requests in flight", s->path);
	close(s->fd);
	s->fd = -1;
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
	free(s);
}
