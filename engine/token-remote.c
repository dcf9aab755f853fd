/*
 * token-remote.c - the token layer's helper backend (token.isolation =
 * process): token.h over connections to tca-tokend (tokend.c), which holds
 * the PKCS#11 module and the PIN (docs/architecture.md, "Privilege
 * separation").
 *
 * The engine never maps the module and never reads the PIN.  n socketpairs
 * join it to the helper: n - 1 carry requests, one request in flight each
 * (a request borrows a connection as a signature borrows a session), and
 * the last one carries status only, so status answers while every other
 * connection waits on the token.
 *
 * The helper failing - its connection at EOF (it died: a crashing module,
 * kill -9), an answer that is not the protocol, or no answer within the
 * call's bound (a hung module) - makes the supervisor thread kill it
 * (SIGKILL), wait for it, and start a new one, with backoff (100 ms to 5 s)
 * while starting fails.  Requests meanwhile wait up to token.recovery_wait_ms
 * for it, as for an in-process recovery, then fail with TOKEN_UNAVAILABLE;
 * a request that may run twice (all but key generation and destruction) is
 * sent again to the new helper.  A helper that cannot log in (the PIN
 * refused) is not restarted until tca_token_retry (ca-admin reload).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "log.h"
#include "tca-error.h"
#include "text.h"
#include "token-int.h"
#include "token-proto.h"
#include "wire.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define DEFAULT_CALL_MS	30000	/* a call's bound when token.call_timeout_ms is 0 */
#define ADMIN_MIN_MS	120000	/* key generation and token searches: at least this */
#define STATUS_MS	5000
#define START_MS	600000	/* login and the key index of a large token */
#define EXIT_WAIT_MS	5000	/* a closing helper logs out and finalizes */
#define SMALL_RESPONSE	65536
#define WATCH_MS	200	/* how often the supervisor looks whether the helper exited */

enum h_state {
	H_UP = 0,
	H_RESTARTING,
	H_PIN_REFUSED,
	H_STOPPING,
};

struct rconn {
	int fd;
	int busy;
};

typedef struct tok_remote {
	struct tca_token base;
	char *helper_path, *config_path;
	int syslog;
	unsigned int n;		/* connections; the last one is for status */
	unsigned int wait_ms, call_ms, admin_ms;

	pthread_condattr_t cattr;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a connection came back, or the state changed */
	pthread_cond_t sup_cond;	/* wakes the supervisor */
	struct rconn *c;
	unsigned int n_busy;
	enum h_state state;
	pid_t pid;
	unsigned long long gen;		/* bumped by each start */
	int restart_wanted, sup_stop, sup_started;
	pthread_t sup;
	unsigned long long restarts;
	char problem[200];
	int64_t problem_time;
	struct tca_token_status last;	/* for status while the helper is away */
	int have_last;
	unsigned int kt_mask;		/* the last key types, likewise */
	const char *kt_mech[TCA_KEY_TYPE_COUNT + 1];
	char kt_name[TCA_KEY_TYPE_COUNT + 1][65];	/* what kt_mech points to */
} tok_remote;

#define REMOTE(t) ((tok_remote *)(void *)(t))

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
abs_deadline(int64_t deadline_ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(deadline_ms / 1000);
	ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000;
}

/* under lock */
static void
set_problem(tok_remote *t, const char *why)
{
	tca_setf(t->problem, sizeof(t->problem), "%s", why);
	t->problem_time = (int64_t)time(NULL);
}

/* ---- starting and stopping the helper */

/*
 * Starts the helper with the child ends of n fresh socketpairs on
 * TOKP_FD_BASE.. and waits for its ready frame.  TCA_OK with fds[] and
 * *pid_ptr; else the failure (UNAUTHORIZED: the token refused the PIN) with
 * err set, and no process or descriptor left.
 */
static int
spawn(tok_remote *t, int *fds, pid_t *pid_ptr, char *err, size_t errlen)
{
	int child[TOKP_MAX_CONNS], moved[TOKP_MAX_CONNS], sv[2];
	char nbuf[16], why[TOKP_MAX_WHY];
	char *argv[8];
	sigset_t all, old;
	unsigned char *buf = NULL;
	size_t len = 0;
	cbor_item_t *item = NULL;
	const cbor_item_t *res;
	unsigned int i, made = 0;
	int argc = 0, r, rr, status;
	pid_t pid = -1;

	for (i = 0; i < t->n; i++)
		fds[i] = child[i] = -1;
	for (i = 0; i < t->n; i++, made++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			tca_setf(err, errlen, "socketpair for the token helper: %s",
			    strerror(errno));
			r = TCA_ERR_SYSTEM;
			goto fail;
		}
		fds[i] = sv[0];
		child[i] = sv[1];
	}
	snprintf(nbuf, sizeof(nbuf), "%u", t->n);
	argv[argc++] = t->helper_path;
	argv[argc++] = (char *)"--config";
	argv[argc++] = t->config_path;
	argv[argc++] = (char *)"--connections";
	argv[argc++] = nbuf;
	if (t->syslog)
		argv[argc++] = (char *)"--syslog";
	argv[argc] = NULL;

	/* no engine signal handler may run in the child before exec */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* only async-signal-safe calls from here to exec */
		int high = TOKP_FD_BASE + (int)t->n;
		sigset_t none;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (i = 0; i < t->n; i++)
			if ((moved[i] = fcntl(child[i], F_DUPFD, high)) < 0)
				_exit(126);
		for (i = 0; i < t->n; i++)
			if (dup2(moved[i], TOKP_FD_BASE + (int)i) < 0)
				_exit(126);
#ifdef SYS_close_range
		(void)syscall(SYS_close_range, (unsigned int)high, ~0U, 0);
#endif
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(t->helper_path, argv);
		_exit(127);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (i = 0; i < t->n; i++) {
		(void)close(child[i]);
		child[i] = -1;
	}
	if (pid < 0) {
		tca_setf(err, errlen, "starting the token helper %s: %s", t->helper_path,
		    strerror(errno));
		r = TCA_ERR_SYSTEM;
		goto fail;
	}

	/* its first frame says whether it opened the token */
	rr = tca_frame_read(fds[0], SMALL_RESPONSE, START_MS, START_MS, NULL, &buf, &len);
	if (rr != TCA_OK) {
		if (rr == TCA_ERR_TIMEOUT) {
			tca_setf(err, errlen, "the token helper %s did not open the token within "
			    "%d s", t->helper_path, START_MS / 1000);
			r = TCA_ERR_TOKEN_UNAVAILABLE;
		} else {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			pid = -1;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
				tca_setf(err, errlen, "the token helper %s could not be run "
				    "(missing? install tca-tokend, or set token.isolation = none)",
				    t->helper_path);
			else
				tca_setf(err, errlen, "the token helper %s ended before it was "
				    "ready (%s %d); its log lines say why", t->helper_path,
				    WIFSIGNALED(status) ? "signal" : "exit status",
				    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			r = TCA_ERR_TOKEN_UNAVAILABLE;
		}
		goto fail;
	}
	why[0] = '\0';
	if (tca_cbor_decode_map(buf, len, &item, why, sizeof(why)) != TCA_OK ||
	    tokp_response_check(TOKP_READY, item, &rr, &res, why, sizeof(why)) != TCA_OK) {
		tca_setf(err, errlen, "the token helper answered something else than its "
		    "protocol: %s", why);
		r = TCA_ERR_PROTOCOL;
		goto fail;
	}
	if (rr != TCA_OK) {
		/* its own words: "login to token ... failed: CKR_PIN_INCORRECT" */
		tca_setf(err, errlen, "%s", why[0] != '\0' ? why : tca_strerror(rr));
		r = rr;
		goto fail;
	}
	cbor_decref(&item);
	free(buf);
	*pid_ptr = pid;
	return TCA_OK;
 fail:
	if (item != NULL)
		cbor_decref(&item);
	free(buf);
	if (pid > 0) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
	}
	for (i = 0; i < made; i++) {
		if (fds[i] >= 0)
			(void)close(fds[i]);
		if (child[i] >= 0)
			(void)close(child[i]);
		fds[i] = -1;
	}
	return r;
}

/* Waits up to ms for pid to exit, then kills it.  Reaps it either way. */
static void
reap(pid_t pid, int ms)
{
	int64_t end = mono_ms() + ms;
	int status;

	if (pid <= 0)
		return;
	while (mono_ms() < end) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR))
			return;
		usleep(10000);
	}
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* The helper failed (seen by a request of generation gen): the supervisor
 * replaces it.  Called without the lock. */
static void
helper_failed(tok_remote *t, unsigned long long gen, const char *why)
{
	pthread_mutex_lock(&t->lock);
	if (gen == t->gen && t->state == H_UP) {
		t->state = H_RESTARTING;
		t->restart_wanted = 1;
		set_problem(t, why);
		log_error("token helper (pid %ld) failed: %s; restarting it", (long)t->pid, why);
		pthread_cond_signal(&t->sup_cond);
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
}

static void *
supervise(void *arg)
{
	tok_remote *t = arg;
	int fds[TOKP_MAX_CONNS];
	char err[512];
	int64_t backoff = BACKOFF_MIN_MS;
	struct timespec ts;
	pid_t pid, old;
	unsigned int i;
	int r;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->sup_stop && !t->restart_wanted) {
			int status;

			abs_deadline(mono_ms() + WATCH_MS, &ts);
			(void)pthread_cond_timedwait(&t->sup_cond, &t->lock, &ts);
			/* a helper that died between requests is replaced now, not
			 * at the next request */
			if (t->state == H_UP && t->pid > 0 &&
			    waitpid(t->pid, &status, WNOHANG) == t->pid) {
				char why[128];

				snprintf(why, sizeof(why), "the token helper (pid %ld) %s %d%s",
				    (long)t->pid, WIFSIGNALED(status) ? "was killed by signal" :
				    "exited with status", WIFSIGNALED(status) ? WTERMSIG(status) :
				    WEXITSTATUS(status), WIFSIGNALED(status) &&
				    WTERMSIG(status) != SIGKILL ? " (a crash in the module?)" : "");
				log_error("%s; restarting it", why);
				t->pid = -1;	/* reaped */
				t->state = H_RESTARTING;
				t->restart_wanted = 1;
				set_problem(t, why);
				pthread_cond_broadcast(&t->cond);
			}
		}
		if (t->sup_stop)
			break;
		t->state = H_RESTARTING;
		old = t->pid;
		t->pid = -1;
		pthread_mutex_unlock(&t->lock);
		/* a hung helper is killed; a dead one only reaped */
		if (old > 0) {
			(void)kill(old, SIGKILL);
			reap(old, EXIT_WAIT_MS);
		}
		pthread_mutex_lock(&t->lock);
		/* every request on the old connections gets EOF now and gives its
		 * connection back */
		while (t->n_busy > 0 && !t->sup_stop)
			pthread_cond_wait(&t->cond, &t->lock);
		for (i = 0; i < t->n; i++) {
			if (t->c[i].fd >= 0)
				(void)close(t->c[i].fd);
			t->c[i].fd = -1;
		}
		if (t->sup_stop)
			break;
		pthread_mutex_unlock(&t->lock);
		err[0] = '\0';
		r = spawn(t, fds, &pid, err, sizeof(err));
		pthread_mutex_lock(&t->lock);
		if (r == TCA_OK) {
			for (i = 0; i < t->n; i++)
				t->c[i].fd = fds[i];
			t->pid = pid;
			t->gen++;
			t->restarts++;
			t->state = H_UP;
			t->restart_wanted = 0;
			backoff = BACKOFF_MIN_MS;
			log_notice("token helper restarted (pid %ld, restart %llu)", (long)pid,
			    t->restarts);
			pthread_cond_broadcast(&t->cond);
			if (t->sup_stop)
				break;
			continue;
		}
		set_problem(t, err);
		if (r == TCA_ERR_UNAUTHORIZED) {
			/* never again by itself: it could lock the token */
			t->state = H_PIN_REFUSED;
			t->restart_wanted = 0;
			log_error("token helper: %s; the PIN stays refused until ca-admin "
			    "reload", err);
			pthread_cond_broadcast(&t->cond);
			continue;
		}
		log_error("token helper: %s; trying again in %lld ms", err, (long long)backoff);
		abs_deadline(mono_ms() + backoff, &ts);
		while (!t->sup_stop &&
		    pthread_cond_timedwait(&t->sup_cond, &t->lock, &ts) != ETIMEDOUT)
			;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* ---- one request */

struct call {
	enum tokp_op op;
	const cbor_item_t *args;	/* NULL = empty */
	unsigned int bound_ms;		/* the helper must answer within this */
	int again_ok;			/* may be sent again to a new helper */
	int no_wait;			/* fail at once while no helper is running */
	size_t max_response;
	/* out: the decoded response (caller frees with cbor_decref) */
	cbor_item_t *item;
	const cbor_item_t *res;
	char why[TOKP_MAX_WHY];
};

/* Borrows a connection of a running helper, waiting until deadline.  Under lock. */
static int
borrow(tok_remote *t, int status_conn, int no_wait, int64_t deadline, unsigned int *idx_ptr,
    unsigned long long *gen_ptr)
{
	struct timespec ts;
	unsigned int i, lo, hi;

	lo = status_conn ? t->n - 1 : 0;
	hi = status_conn ? t->n : t->n - 1;
	abs_deadline(deadline, &ts);
	for (;;) {
		if (t->state == H_PIN_REFUSED || t->state == H_STOPPING ||
		    (no_wait && t->state != H_UP))
			return TCA_ERR_TOKEN_UNAVAILABLE;
		if (t->state == H_UP) {
			for (i = lo; i < hi; i++) {
				if (!t->c[i].busy && t->c[i].fd >= 0) {
					t->c[i].busy = 1;
					t->n_busy++;
					*idx_ptr = i;
					*gen_ptr = t->gen;
					return TCA_OK;
				}
			}
		}
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT)
			return TCA_ERR_TOKEN_UNAVAILABLE;
	}
}

static void
give_back(tok_remote *t, unsigned int i)
{
	pthread_mutex_lock(&t->lock);
	t->c[i].busy = 0;
	t->n_busy--;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/*
 * Sends the request and reads the answer.  TCA_OK: the helper answered, its
 * result in *r_ptr and c->res.  Else the helper failed (it is being
 * replaced) or none was running within the wait: TOKEN_UNAVAILABLE.
 */
static int
call(tok_remote *t, struct call *c, int *r_ptr)
{
	int64_t deadline = mono_ms() + (c->no_wait ? c->bound_ms : t->wait_ms);
	unsigned char *req = NULL, *buf = NULL;
	size_t req_len = 0, len = 0;
	unsigned long long gen;
	unsigned int i;
	char why[TOKP_MAX_WHY + 64];
	int r, fd, sent;

	c->item = NULL;
	c->res = NULL;
	c->why[0] = '\0';
	if ((r = tokp_request_encode(c->op, c->args, &req, &req_len)) != TCA_OK)
		return r;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		r = borrow(t, c->op == TOKP_STATUS, c->no_wait, deadline, &i, &gen);
		fd = r == TCA_OK ? t->c[i].fd : -1;
		if (r != TCA_OK)
			snprintf(c->why, sizeof(c->why), "%s", t->state == H_PIN_REFUSED ?
			    "the token refused the PIN; ca-admin reload tries again" :
			    "the token helper is restarting");
		pthread_mutex_unlock(&t->lock);
		if (r != TCA_OK)
			break;
		sent = 0;
		why[0] = '\0';
		r = tca_frame_write(fd, req, req_len, (int)c->bound_ms);
		if (r == TCA_OK) {
			sent = 1;
			r = tca_frame_read(fd, c->max_response, (int)c->bound_ms,
			    (int)c->bound_ms, NULL, &buf, &len);
		}
		if (r == TCA_OK) {
			if (tca_cbor_decode_map(buf, len, &c->item, why, sizeof(why)) != TCA_OK ||
			    tokp_response_check(c->op, c->item, r_ptr, &c->res, c->why,
			    sizeof(c->why)) != TCA_OK) {
				if (why[0] == '\0')
					snprintf(why, sizeof(why), "%s", c->why);
				r = TCA_ERR_PROTOCOL;
				if (c->item != NULL)
					cbor_decref(&c->item);
				c->res = NULL;
			}
			free(buf);
			buf = NULL;
		}
		give_back(t, i);
		if (r == TCA_OK)
			break;
		{
			char what[TOKP_MAX_WHY + 128];

			if (r == TCA_ERR_TIMEOUT)
				snprintf(what, sizeof(what), "%s: no answer within %u ms (a hung "
				    "module?)", tokp_ops[c->op].name, c->bound_ms);
			else if (r == TCA_ERR_PROTOCOL)
				snprintf(what, sizeof(what), "%s: not the helper protocol: %s",
				    tokp_ops[c->op].name, why);
			else
				snprintf(what, sizeof(what), "%s: connection %s (the helper "
				    "died?)", tokp_ops[c->op].name, r == TCA_ERR_EOF ||
				    r == TCA_ERR_TRUNCATED ? "closed" : tca_strerror(r));
			helper_failed(t, gen, what);
			tca_setf(c->why, sizeof(c->why), "%s", what);
		}
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		if ((sent && !c->again_ok) || mono_ms() >= deadline)
			break;
	}
	free(req);
	return r;
}

static void
call_done(struct call *c)
{
	if (c->item != NULL)
		cbor_decref(&c->item);
	c->res = NULL;
}

/* Runs the op; returns the helper's result, or TOKEN_UNAVAILABLE. */
static int
run(tok_remote *t, struct call *c)
{
	int r = TCA_ERR_INTERNAL, rr;

	if ((rr = call(t, c, &r)) != TCA_OK) {
		log_error("token helper: %s: %s", tokp_ops[c->op].name, c->why);
		return rr;
	}
	return r;
}

static void
call_init(tok_remote *t, struct call *c, enum tokp_op op, const cbor_item_t *args,
    int admin)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->args = args;
	c->bound_ms = admin ? t->admin_ms : t->call_ms;
	c->again_ok = 1;
	c->max_response = SMALL_RESPONSE;
}

static cbor_item_t *
id_args(const unsigned char *id, size_t id_len)
{
	cbor_item_t *a;

	if ((a = cbor_new_definite_map(1)) == NULL)
		return NULL;
	if (tca_map_add_bytes(a, "id", id, id_len) != TCA_OK) {
		cbor_decref(&a);
		return NULL;
	}
	return a;
}

static int
id_ok(const unsigned char *id, size_t id_len)
{
	return id != NULL && id_len > 0 && id_len <= TOKP_MAX_ID;
}

/* ---- the backend table */

static int
r_close(tca_token *tt)
{
	tok_remote *t = REMOTE(tt);
	unsigned int i;
	pid_t pid;

	if (t->sup_started) {
		pthread_mutex_lock(&t->lock);
		t->sup_stop = 1;
		pthread_cond_signal(&t->sup_cond);
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->sup, NULL);
	}
	pthread_mutex_lock(&t->lock);
	t->state = H_STOPPING;
	pid = t->pid;
	t->pid = -1;
	/* EOF on its connections: the helper logs out, finalizes and exits */
	for (i = 0; i < t->n; i++) {
		if (t->c[i].fd >= 0)
			(void)close(t->c[i].fd);
		t->c[i].fd = -1;
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	reap(pid, EXIT_WAIT_MS);
	pthread_cond_destroy(&t->sup_cond);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	pthread_condattr_destroy(&t->cattr);
	free(t->c);
	free(t->helper_path);
	free(t->config_path);
	free(t);
	return 0;	/* a hung call dies with the helper */
}

static int
r_retry(tca_token *tt, const char *pin, size_t pin_len)
{
	tok_remote *t = REMOTE(tt);
	cbor_item_t *a = NULL;
	struct call c;
	int r;

	(void)pin;		/* the engine holds none: the helper reads its own */
	(void)pin_len;
	pthread_mutex_lock(&t->lock);
	if (t->state == H_PIN_REFUSED) {
		t->state = H_RESTARTING;
		t->restart_wanted = 1;
		pthread_cond_signal(&t->sup_cond);
		pthread_mutex_unlock(&t->lock);
		return TCA_OK;
	}
	pthread_mutex_unlock(&t->lock);
	if ((a = cbor_new_definite_map(1)) == NULL ||
	    tca_map_add_bool(a, "reread_pin", 1) != TCA_OK) {
		if (a != NULL)
			cbor_decref(&a);
		return TCA_ERR_NOMEM;
	}
	call_init(t, &c, TOKP_RETRY, a, 0);
	r = run(t, &c);
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static size_t
r_key_count(tca_token *tt)
{
	struct call c;
	uint64_t n = 0;

	call_init(REMOTE(tt), &c, TOKP_KEY_COUNT, NULL, 0);
	if (run(REMOTE(tt), &c) == TCA_OK)
		(void)tca_map_get_uint(c.res, "count", &n);
	call_done(&c);
	return (size_t)n;
}

static int
type_call(tok_remote *t, enum tokp_op op, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	cbor_item_t *a;
	struct call c;
	uint64_t type = 0;
	int r;

	if (!id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	if ((a = id_args(id, id_len)) == NULL)
		return TCA_ERR_NOMEM;
	call_init(t, &c, op, a, op == TOKP_CHECK_KEY);
	r = run(t, &c);
	if (r == TCA_OK) {
		(void)tca_map_get_uint(c.res, "type", &type);
		if (type < 1 || type > TCA_KEY_TYPE_COUNT)
			r = TCA_ERR_PROTOCOL;
		else if (type_ptr != NULL)
			*type_ptr = (enum tca_key_type)type;
	}
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static int
r_find_key(tca_token *tt, const unsigned char *id, size_t id_len, enum tca_key_type *type_ptr)
{
	return type_call(REMOTE(tt), TOKP_FIND_KEY, id, id_len, type_ptr);
}

static int
r_check_key(tca_token *tt, const unsigned char *id, size_t id_len, enum tca_key_type *type_ptr)
{
	return type_call(REMOTE(tt), TOKP_CHECK_KEY, id, id_len, type_ptr);
}

static unsigned int
r_key_types(tca_token *tt, const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1])
{
	struct call c;
	cbor_item_t *arr, *s;
	uint64_t mask = 0;
	unsigned int i;
	char name[65];

	tok_remote *t = REMOTE(tt);
	const char *mech[TCA_KEY_TYPE_COUNT + 1];
	unsigned int out;
	int up;

	memset(mech, 0, sizeof(mech));
	pthread_mutex_lock(&t->lock);
	up = t->state == H_UP;
	pthread_mutex_unlock(&t->lock);
	/* while the helper is away (status asks), the last answer */
	call_init(t, &c, TOKP_KEY_TYPES, NULL, 0);
	if (!up || run(t, &c) != TCA_OK) {
		call_done(&c);
		goto cached;
	}
	(void)tca_map_get_uint(c.res, "mask", &mask);
	arr = tca_map_get(c.res, "mechs");
	for (i = 0; arr != NULL && i < cbor_array_size(arr) && i <= TCA_KEY_TYPE_COUNT; i++) {
		size_t l;

		s = cbor_array_handle(arr)[i];
		l = cbor_string_length(s);
		if (l == 0 || l >= sizeof(name))
			continue;
		memcpy(name, cbor_string_handle(s), l);
		name[l] = '\0';
		mech[i] = name[0] != '\0' ? "" : NULL;
		/* kept here, and rewritten only when it changes (a module
		 * re-initialised with other mechanisms): callers hold the pointer */
		pthread_mutex_lock(&t->lock);
		if (strcmp(t->kt_name[i], name) != 0)
			memcpy(t->kt_name[i], name, l + 1);
		pthread_mutex_unlock(&t->lock);
	}
	call_done(&c);
	pthread_mutex_lock(&t->lock);
	t->kt_mask = (unsigned int)(mask & ((2u << TCA_KEY_TYPE_COUNT) - 1));
	for (i = 0; i <= TCA_KEY_TYPE_COUNT; i++)
		t->kt_mech[i] = mech[i] != NULL ? t->kt_name[i] : NULL;
	pthread_mutex_unlock(&t->lock);
 cached:
	pthread_mutex_lock(&t->lock);
	out = t->kt_mask;
	if (sign_mech_ptr != NULL)
		memcpy(sign_mech_ptr, t->kt_mech, sizeof(t->kt_mech));
	pthread_mutex_unlock(&t->lock);
	return out;
}

static int
r_generate_key(tca_token *tt, enum tca_key_type type, const unsigned char *id,
    size_t id_len, const char *label, EVP_PKEY **pub_ptr)
{
	tok_remote *t = REMOTE(tt);
	cbor_item_t *a = NULL;
	const unsigned char *der, *p;
	size_t der_len;
	struct call c;
	EVP_PKEY *pub;
	int r;

	if (pub_ptr == NULL || !id_ok(id, id_len) || label == NULL ||
	    strlen(label) > TOKP_MAX_LABEL)
		return TCA_ERR_INVALID_ARG;
	*pub_ptr = NULL;
	if ((a = cbor_new_definite_map(3)) == NULL ||
	    tca_map_add_uint(a, "type", (uint64_t)type) != TCA_OK ||
	    tca_map_add_bytes(a, "id", id, id_len) != TCA_OK ||
	    tca_map_add_text(a, "label", label) != TCA_OK) {
		if (a != NULL)
			cbor_decref(&a);
		return TCA_ERR_NOMEM;
	}
	call_init(t, &c, TOKP_GENERATE_KEY, a, 1);
	c.again_ok = 0;		/* the token may have made the key */
	r = run(t, &c);
	if (r == TCA_OK) {
		(void)tca_map_get_bytes(c.res, "pub", &der, &der_len);
		p = der;
		if ((pub = d2i_PUBKEY(NULL, &p, (long)der_len)) == NULL ||
		    p != der + der_len) {
			EVP_PKEY_free(pub);
			r = TCA_ERR_PROTOCOL;
		} else {
			*pub_ptr = pub;
		}
	}
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static int
r_sign(tca_token *tt, const unsigned char *id, size_t id_len, enum tca_sig_alg alg,
    const unsigned char *msg, size_t msg_len, unsigned char *sig, size_t *sig_len)
{
	tok_remote *t = REMOTE(tt);
	cbor_item_t *a = NULL;
	const unsigned char *s;
	size_t s_len;
	struct call c;
	int r;

	if (!id_ok(id, id_len) || msg == NULL || msg_len > TCA_TOKEN_MAX_MSG ||
	    sig == NULL || sig_len == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((a = cbor_new_definite_map(4)) == NULL ||
	    tca_map_add_bytes(a, "id", id, id_len) != TCA_OK ||
	    tca_map_add_uint(a, "alg", (uint64_t)alg) != TCA_OK ||
	    tca_map_add_bytes(a, "msg", msg, msg_len) != TCA_OK ||
	    tca_map_add_uint(a, "cap", (uint64_t)*sig_len) != TCA_OK) {
		if (a != NULL)
			cbor_decref(&a);
		return TCA_ERR_NOMEM;
	}
	call_init(t, &c, TOKP_SIGN, a, 0);
	r = run(t, &c);
	if (r == TCA_OK) {
		(void)tca_map_get_bytes(c.res, "sig", &s, &s_len);
		if (s_len == 0 || s_len > *sig_len) {
			r = TCA_ERR_PROTOCOL;
		} else {
			memcpy(sig, s, s_len);
			*sig_len = s_len;
		}
	}
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static int
count_call(tok_remote *t, enum tokp_op op, const unsigned char *id, size_t id_len,
    unsigned long *n_ptr)
{
	cbor_item_t *a;
	struct call c;
	uint64_t n = 0;
	int r;

	if (!id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	if ((a = id_args(id, id_len)) == NULL)
		return TCA_ERR_NOMEM;
	call_init(t, &c, op, a, 1);
	if (op == TOKP_DESTROY_KEY)
		c.again_ok = 0;
	r = run(t, &c);
	if (r == TCA_OK) {
		(void)tca_map_get_uint(c.res, "count", &n);
		if (n_ptr != NULL)
			*n_ptr = (unsigned long)n;
	}
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static int
r_destroy_key(tca_token *tt, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr)
{
	return count_call(REMOTE(tt), TOKP_DESTROY_KEY, id, id_len, destroyed_ptr);
}

static int
r_count_objects(tca_token *tt, const unsigned char *id, size_t id_len,
    unsigned long *count_ptr)
{
	if (count_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	return count_call(REMOTE(tt), TOKP_COUNT_OBJECTS, id, id_len, count_ptr);
}

static int
r_key_attrs(tca_token *tt, const unsigned char *id, size_t id_len,
    struct tca_key_attrs *attrs)
{
	tok_remote *t = REMOTE(tt);
	cbor_item_t *a;
	struct call c;
	int r;

	if (!id_ok(id, id_len) || attrs == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(attrs, 0, sizeof(*attrs));
	if ((a = id_args(id, id_len)) == NULL)
		return TCA_ERR_NOMEM;
	call_init(t, &c, TOKP_KEY_ATTRS, a, 1);
	r = run(t, &c);
	if (r == TCA_OK) {
		(void)tca_map_get_bool(c.res, "token", &attrs->token);
		(void)tca_map_get_bool(c.res, "private", &attrs->private_);
		(void)tca_map_get_bool(c.res, "sensitive", &attrs->sensitive);
		(void)tca_map_get_bool(c.res, "extractable", &attrs->extractable);
		(void)tca_map_get_bool(c.res, "sign", &attrs->sign);
		(void)tca_map_get_bool(c.res, "always_sensitive", &attrs->always_sensitive);
		(void)tca_map_get_bool(c.res, "never_extractable", &attrs->never_extractable);
		(void)tca_map_get_bool(c.res, "value_readable", &attrs->value_readable);
	}
	call_done(&c);
	cbor_decref(&a);
	return r;
}

static int
r_foreach_key(tca_token *tt, tca_token_key_cb cb, void *ctx)
{
	tok_remote *t = REMOTE(tt);
	struct call c;
	cbor_item_t *arr, *m;
	const unsigned char *id;
	size_t i, id_len;
	uint64_t type;
	char label[TOKP_MAX_LABEL + 1];
	int r;

	if (cb == NULL)
		return TCA_ERR_INVALID_ARG;
	call_init(t, &c, TOKP_LIST_KEYS, NULL, 0);
	c.max_response = TOKP_MAX_RESPONSE;
	if ((r = run(t, &c)) != TCA_OK) {
		call_done(&c);
		return r;
	}
	arr = tca_map_get(c.res, "keys");
	for (i = 0; arr != NULL && i < cbor_array_size(arr); i++) {
		m = cbor_array_handle(arr)[i];
		if (tca_map_get_bytes(m, "id", &id, &id_len) != TCA_OK || !id_ok(id, id_len) ||
		    tca_map_get_text(m, "label", label, sizeof(label)) != TCA_OK ||
		    tca_map_get_uint(m, "type", &type) != TCA_OK ||
		    type < 1 || type > TCA_KEY_TYPE_COUNT) {
			r = TCA_ERR_PROTOCOL;
			break;
		}
		if ((r = cb(ctx, id, id_len, label, (enum tca_key_type)type)) != 0)
			break;
	}
	call_done(&c);
	return r;
}

static void
get_text(const cbor_item_t *m, const char *k, char *out, size_t outsz)
{
	if (tca_map_get_text(m, k, out, outsz) != TCA_OK)
		out[0] = '\0';
}

static uint64_t
get_u(const cbor_item_t *m, const char *k)
{
	uint64_t v = 0;

	(void)tca_map_get_uint(m, k, &v);
	return v;
}

static int64_t
get_i(const cbor_item_t *m, const char *k)
{
	cbor_item_t *v = tca_map_get(m, k);
	uint64_t u;

	if (v == NULL)
		return 0;
	u = cbor_get_int(v);
	if (cbor_isa_negint(v))
		return u > (uint64_t)INT64_MAX ? INT64_MIN : -1 - (int64_t)u;
	return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
}

static int
r_get_status(tca_token *tt, struct tca_token_status *st)
{
	tok_remote *t = REMOTE(tt);
	struct tca_token_status s;
	struct call c;
	enum h_state state;
	int r = TCA_ERR_TOKEN_UNAVAILABLE;

	if (st == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&t->lock);
	state = t->state;
	pthread_mutex_unlock(&t->lock);
	memset(&s, 0, sizeof(s));
	if (state == H_UP) {
		call_init(t, &c, TOKP_STATUS, NULL, 0);
		c.bound_ms = STATUS_MS;
		c.again_ok = 0;
		c.no_wait = 1;		/* answered from memory while it is away */
		if (call(t, &c, &r) != TCA_OK)
			r = TCA_ERR_TOKEN_UNAVAILABLE;
		if (r == TCA_OK) {
			const cbor_item_t *m = c.res;

			get_text(m, "label", s.label, sizeof(s.label));
			get_text(m, "manufacturer", s.manufacturer, sizeof(s.manufacturer));
			get_text(m, "model", s.model, sizeof(s.model));
			get_text(m, "serial", s.serial, sizeof(s.serial));
			s.slot_id = (unsigned long)get_u(m, "slot");
			s.pool_size = (unsigned int)get_u(m, "pool_size");
			s.sessions_busy = (unsigned int)get_u(m, "sessions_busy");
			s.keys = (size_t)get_u(m, "keys");
			s.signatures = get_u(m, "signatures");
			s.sign_errors = get_u(m, "sign_errors");
			get_text(m, "health", s.health, sizeof(s.health));
			s.recoveries = get_u(m, "recoveries");
			s.relogins = get_u(m, "relogins");
			s.refreshes = get_u(m, "refreshes");
			s.sessions_replaced = get_u(m, "sessions_replaced");
			get_text(m, "problem", s.problem, sizeof(s.problem));
			s.problem_time = get_i(m, "problem_time");
			get_text(m, "last_error", s.last_error, sizeof(s.last_error));
			s.last_error_time = get_i(m, "last_error_time");
			s.call_failures = get_u(m, "call_failures");
		}
		call_done(&c);
	}
	pthread_mutex_lock(&t->lock);
	if (r == TCA_OK) {
		/* the helper's counters start again with each helper: the
		 * status says how often it was replaced */
		t->last = s;
		t->have_last = 1;
		if (s.problem[0] == '\0' && t->problem[0] != '\0') {
			snprintf(s.problem, sizeof(s.problem), "%s", t->problem);
			s.problem_time = t->problem_time;
		}
	} else {
		/* from memory: status answers while the helper is away */
		if (t->have_last)
			s = t->last;
		s.sessions_busy = 0;
		snprintf(s.health, sizeof(s.health), "%s",
		    t->state == H_PIN_REFUSED ? "pin-refused" : "recovering");
		snprintf(s.problem, sizeof(s.problem), "%s", t->problem);
		s.problem_time = t->problem_time;
	}
	snprintf(s.isolation, sizeof(s.isolation), "process");
	s.helper_restarts = t->restarts;
	s.helper_pid = t->state == H_UP ? (long)t->pid : 0;
	pthread_mutex_unlock(&t->lock);
	*st = s;
	return TCA_OK;
}

static const struct tca_token_ops tok_remote_ops = {
	.name = "process",
	.close = r_close,
	.retry = r_retry,
	.key_count = r_key_count,
	.find_key = r_find_key,
	.key_types = r_key_types,
	.check_key = r_check_key,
	.generate_key = r_generate_key,
	.sign = r_sign,
	.destroy_key = r_destroy_key,
	.count_objects = r_count_objects,
	.key_attrs = r_key_attrs,
	.foreach_key = r_foreach_key,
	.get_status = r_get_status,
};

int
tca_token_open_helper(const struct tca_token_params *params,
    const struct tca_token_helper_params *hp, tca_token **tok_ptr, char *err, size_t errlen)
{
	tok_remote *t = NULL;
	int fds[TOKP_MAX_CONNS];
	unsigned int i;
	int r = TCA_ERR_NOMEM, step = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (tok_ptr == NULL || params == NULL || hp == NULL || hp->helper_path == NULL ||
	    hp->config_path == NULL) {
		tca_setf(err, errlen, "invalid arguments");
		return TCA_ERR_INVALID_ARG;
	}
	*tok_ptr = NULL;
	if (params->pool_size < 1 || params->pool_size > TOKP_MAX_CONNS - 1) {
		tca_setf(err, errlen, "token pool_size must be 1..%d", TOKP_MAX_CONNS - 1);
		return TCA_ERR_CONFIG;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	t->base.ops = &tok_remote_ops;
	t->n = params->pool_size + 1;
	t->wait_ms = params->wait_ms != 0 ? params->wait_ms : TCA_TOKEN_DEFAULT_WAIT_MS;
	/* the helper waits up to wait_ms for a recovering token itself, then the
	 * call runs: past both, the module is taken for hung */
	t->call_ms = t->wait_ms + (params->call_timeout_ms != 0 ? params->call_timeout_ms :
	    DEFAULT_CALL_MS);
	t->admin_ms = t->call_ms > ADMIN_MIN_MS ? t->call_ms : ADMIN_MIN_MS;
	t->syslog = hp->syslog;
	t->pid = -1;
	if ((t->helper_path = strdup(hp->helper_path)) == NULL ||
	    (t->config_path = strdup(hp->config_path)) == NULL ||
	    (t->c = calloc(t->n, sizeof(*t->c))) == NULL)
		goto nomem;
	for (i = 0; i < t->n; i++)
		t->c[i].fd = -1;
	if (pthread_condattr_init(&t->cattr) != 0)
		goto sys;
	step = 1;
	if (pthread_condattr_setclock(&t->cattr, CLOCK_MONOTONIC) != 0 ||
	    pthread_mutex_init(&t->lock, NULL) != 0)
		goto sys;
	step = 2;
	if (pthread_cond_init(&t->cond, &t->cattr) != 0)
		goto sys;
	step = 3;
	if (pthread_cond_init(&t->sup_cond, &t->cattr) != 0)
		goto sys;
	step = 4;
	if ((r = spawn(t, fds, &t->pid, err, errlen)) != TCA_OK)
		goto fail;
	for (i = 0; i < t->n; i++)
		t->c[i].fd = fds[i];
	t->gen = 1;
	t->state = H_UP;
	if (pthread_create(&t->sup, NULL, supervise, t) != 0) {
		tca_setf(err, errlen, "starting the token helper's supervisor failed");
		r = TCA_ERR_SYSTEM;
		r_close(&t->base);
		return r;
	}
	t->sup_started = 1;
	log_info("token helper %s started (pid %ld, %u connections): the module runs "
	    "there, not in this process", t->helper_path, (long)t->pid, t->n);
	*tok_ptr = &t->base;
	return TCA_OK;
 nomem:
	tca_setf(err, errlen, "out of memory");
	r = TCA_ERR_NOMEM;
	goto fail;
 sys:
	tca_setf(err, errlen, "initialising the token helper's locks failed");
	r = TCA_ERR_SYSTEM;
 fail:
	if (t != NULL) {
		if (step >= 4)
			pthread_cond_destroy(&t->sup_cond);
		if (step >= 3)
			pthread_cond_destroy(&t->cond);
		if (step >= 2)
			pthread_mutex_destroy(&t->lock);
		if (step >= 1)
			pthread_condattr_destroy(&t->cattr);
		free(t->c);
		free(t->helper_path);
		free(t->config_path);
		free(t);
	}
	return r;
}
