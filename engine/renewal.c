/* renewal.c - yearly re-issuance scheduler and alert hook (see renewal.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"
#include "log.h"
#include "renewal.h"
#include "tca-error.h"
#include "text.h"

struct tca_renewal {
	tca_engine *e;
	pthread_t thread;
	pthread_mutex_t lock;	/* everything below */
	pthread_cond_t wake;
	struct tca_renewal_params p;
	int stop, kicked;
	tca_hooks *hooks;	/* alert commands */
	int leader;		/* -1: not asked yet; 0: standby; 1: the leader */
};

unsigned int
tca_renewal_backoff(unsigned int attempts, unsigned int min_s, unsigned int max_s)
{
	unsigned long long d = min_s;
	unsigned int i;

	for (i = 1; i < attempts && d < max_s; i++)
		d *= 2;
	return d > max_s ? max_s : (unsigned int)d;
}

/* Starts the alert command; never waits for it.  Returns TCA_OK if it was
 * started (or none is configured: then it only logs). */
static int
run_alert(tca_renewal *r, const char *kind, const char *tenant, const char *reason,
    int64_t not_after, unsigned int attempts)
{
	char cmd[PATH_MAX], e_kind[64], e_tenant[128], e_reason[600], e_na[64], e_att[48];
	char *envp[7], what[160];
	unsigned int timeout_s;
	char na[32];

	pthread_mutex_lock(&r->lock);
	snprintf(cmd, sizeof(cmd), "%s", r->p.alert_command);
	timeout_s = r->p.alert_timeout_s;
	pthread_mutex_unlock(&r->lock);
	tca_iso_time(not_after, na, sizeof(na));
	log_warn("ALERT %s: tenant %s, %s %s: %s", kind, tenant,
	    strcmp(kind, "crl-failed") == 0 ? "the CRL still served expires" :
	    "CA certificate expires", na, reason);
	if (cmd[0] == '\0')
		return TCA_OK;
	snprintf(e_kind, sizeof(e_kind), "TCA_ALERT_KIND=%s", kind);
	snprintf(e_tenant, sizeof(e_tenant), "TCA_ALERT_TENANT=%s", tenant);
	snprintf(e_reason, sizeof(e_reason), "TCA_ALERT_REASON=%s", reason);
	snprintf(e_na, sizeof(e_na), "TCA_ALERT_NOT_AFTER=%s", na);
	snprintf(e_att, sizeof(e_att), "TCA_ALERT_ATTEMPTS=%u", attempts);
	envp[0] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	envp[1] = e_kind;
	envp[2] = e_tenant;
	envp[3] = e_reason;
	envp[4] = e_na;
	envp[5] = e_att;
	envp[6] = NULL;
	snprintf(what, sizeof(what), "%s/%s", kind, tenant);
	return tca_hooks_spawn(r->hooks, "alert", what, cmd, envp, timeout_s);
}

struct pass_ctx {
	tca_renewal *r;
	struct tca_renewal_params p;
	time_t now, last_instant, next_instant;
	struct tca_requester self;
	pthread_mutex_t lock;	/* the fields below, shared by the workers */
	time_t next;
	struct tca_ca_brief *due;	/* CAs to re-issue this pass */
	size_t n_due, cap_due, taken;
	struct tca_ca_brief *crl_due;	/* CAs whose CRL to re-sign this pass */
	size_t n_crl, cap_crl;
	struct tca_policy pol;		/* CRL validity and refresh point */
	/* what the workers do with pc->due (re-issue, then re-sign CRLs) */
	void (*work)(struct pass_ctx *pc, const struct tca_ca_brief *b);
	const char *what;
	uint64_t slot_ns;	/* pacing: monotonic time of the next start */
	int lost;		/* leadership lost during this pass: take no more */
};

static void
note_next(struct pass_ctx *pc, time_t t)
{
	pthread_mutex_lock(&pc->lock);
	if (t > pc->now && t < pc->next)
		pc->next = t;
	pthread_mutex_unlock(&pc->lock);
}

/* Appends b to a growing array of briefs. */
static int
brief_push(struct tca_ca_brief **arr, size_t *n, size_t *cap, const struct tca_ca_brief *b)
{
	struct tca_ca_brief *tmp;
	size_t ncap;

	if (*n == *cap) {
		ncap = *cap == 0 ? 64 : *cap * 2;
		if (ncap > SIZE_MAX / sizeof(*tmp) ||
		    (tmp = realloc(*arr, ncap * sizeof(*tmp))) == NULL)
			return TCA_ERR_NOMEM;
		*arr = tmp;
		*cap = ncap;
	}
	(*arr)[(*n)++] = *b;
	return TCA_OK;
}

/* One more failed attempt in st (re-issuance or CRL): a new episode starts
 * at the first; the retry backs off. */
static void
failure_step(struct pass_ctx *pc, struct tca_renewal_state *st, const char *why)
{
	if (!st->failed) {
		/* a new failure episode */
		st->failed = 1;
		st->failed_since = pc->now;
		st->attempts = 0;
		st->alerted = 0;
	}
	st->attempts++;
	tca_setf(st->reason, sizeof(st->reason), "%s", why);	/* cut if longer */
	st->next_retry = pc->now + tca_renewal_backoff(st->attempts, pc->p.retry_min_s,
	    pc->p.retry_max_s);
}

static void
renewal_failed(struct pass_ctx *pc, const struct tca_ca_brief *b, const char *why)
{
	struct tca_renewal_state st = b->renewal;

	failure_step(pc, &st, why);
	log_error("tenant %s: CA re-issuance failed (attempt %u): %s; retry at +%lld s",
	    b->tenant, st.attempts, why, (long long)(st.next_retry - pc->now));
	if (!st.alerted && run_alert(pc->r, "renewal-failed", b->tenant, why, b->not_after,
	    st.attempts) == TCA_OK)
		st.alerted = 1;
	if (tca_engine_set_renewal(pc->r->e, b->tenant, &st) != TCA_OK)
		log_error("tenant %s: recording the renewal failure failed", b->tenant);
	note_next(pc, st.next_retry);
}

static void
check_expiry(struct pass_ctx *pc, const struct tca_ca_brief *b)
{
	struct tca_renewal_state st = b->renewal;
	char reason[200];

	if (pc->p.expiry_window_days == 0 || st.expiry_alerted ||
	    b->not_after - pc->now > (int64_t)pc->p.expiry_window_days * 86400)
		return;
	snprintf(reason, sizeof(reason), "CA certificate expires in less than %u days%s",
	    pc->p.expiry_window_days, st.failed ? " and its re-issuance is failing" : "");
	if (run_alert(pc->r, "expiring", b->tenant, reason, b->not_after, st.attempts) != TCA_OK)
		return;
	st.expiry_alerted = 1;
	if (tca_engine_set_renewal(pc->r->e, b->tenant, &st) != TCA_OK)
		log_error("tenant %s: recording the expiry alert failed", b->tenant);
}

static void
crl_failed(struct pass_ctx *pc, const struct tca_ca_brief *b, const char *why)
{
	struct tca_renewal_state st = b->crl;

	failure_step(pc, &st, why);
	log_error("tenant %s: CRL re-signing failed (attempt %u): %s; the last CRL "
	    "stays served; retry at +%lld s", b->tenant, st.attempts, why,
	    (long long)(st.next_retry - pc->now));
	if (!st.alerted && run_alert(pc->r, "crl-failed", b->tenant, why,
	    b->crl_next_update, st.attempts) == TCA_OK)
		st.alerted = 1;
	if (tca_engine_set_crl_state(pc->r->e, b->tenant, &st) != TCA_OK)
		log_error("tenant %s: recording the CRL failure failed", b->tenant);
	note_next(pc, st.next_retry);
}

static void
crl_one(struct pass_ctx *pc, const struct tca_ca_brief *b)
{
	struct tca_crl_published ci;
	char why[512] = "";
	int rc;

	/* only if no one published a CRL since this pass read the CA: its
	 * first CRL, signed by ca.create while the pass was collecting, must
	 * not be followed at once by a second */
	rc = tca_engine_crl_refresh(pc->r->e, b->tenant, &pc->self, b->crl_number,
	    &ci, why, sizeof(why));
	if (rc == TCA_OK && ci.superseded) {
		log_info("tenant %s: CRL re-signing skipped: CRL %llu was published "
		    "since this pass began", b->tenant, (unsigned long long)ci.number);
		/* maybe by another node: the next pass works from the store's */
		(void)tca_engine_ca_reload(pc->r->e, b->tenant, NULL);
	}
	if (rc == TCA_OK) {
		note_next(pc, ci.this_update + (ci.next_update - ci.this_update) *
		    (int64_t)pc->pol.crl_refresh_percent / 100);
		return;
	}
	if (rc == TCA_ERR_NOT_FOUND) {
		log_info("tenant %s: CRL re-signing skipped: %s", b->tenant, why);
		return;
	}
	crl_failed(pc, b, why[0] != '\0' ? why : tca_strerror(rc));
}

/* Appends b to the pass's CRL list when its CRL is due, else notes when. */
static int
collect_crl(struct pass_ctx *pc, const struct tca_ca_brief *b)
{
	time_t due = tca_crl_due_at(b, &pc->pol);

	if (due > pc->now) {
		note_next(pc, due);
		return 0;
	}
	if (brief_push(&pc->crl_due, &pc->n_crl, &pc->cap_crl, b) != TCA_OK) {
		log_error("CRLs: out of memory collecting due CRLs; the rest "
		    "waits for the next pass");
		return 1;
	}
	return 0;
}

static int
stopping(tca_renewal *r)
{
	int stop;

	pthread_mutex_lock(&r->lock);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

/*
 * Asks the store whether this node is (still) the scheduler's leader and
 * logs a change of role.  1: lead; 0: stand by (another node leads, or the
 * store cannot tell: doing nothing is the safe side).
 */
static int
lead(tca_renewal *r)
{
	char why[512] = "";
	int is_leader = 0, rc, was;

	if (r->p.store == NULL || r->p.store->ops->leader == NULL)
		is_leader = 1;
	else if ((rc = r->p.store->ops->leader(r->p.store, "scheduler", &is_leader,
	    why, sizeof(why))) != TCA_OK) {
		is_leader = 0;
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s", tca_strerror(rc));
	}
	pthread_mutex_lock(&r->lock);
	was = r->leader;
	r->leader = is_leader;
	pthread_mutex_unlock(&r->lock);
	if (is_leader && was != 1)
		log_notice("scheduler: this node is now the leader");
	else if (!is_leader && was == 1)
		log_notice("scheduler: this node is no longer the leader%s%s",
		    why[0] != '\0' ? ": " : "", why);
	else if (!is_leader && was == -1)
		log_notice("scheduler: another node is the leader; this one stands by%s%s",
		    why[0] != '\0' ? " (" : "", why[0] != '\0' ? why : "");
	return is_leader;
}

const char *
tca_renewal_role(tca_renewal *r)
{
	int l;

	if (r == NULL)
		return "disabled";
	pthread_mutex_lock(&r->lock);
	l = r->leader;
	pthread_mutex_unlock(&r->lock);
	return l == 1 ? "leader" : "standby";
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Collects the due CAs; the others only get their expiry check. */
static int
pass_collect(void *ctx, const struct tca_ca_brief *b)
{
	struct pass_ctx *pc = ctx;

	if (stopping(pc->r))
		return 1;	/* stopping: the rest waits for the next start */
	if (collect_crl(pc, b) != 0)
		return 1;
	/* due when notBefore lies before the latest passed instant (schedule.h) */
	if (b->not_before >= pc->last_instant) {
		check_expiry(pc, b);
		return 0;
	}
	if (b->renewal.failed && pc->now < b->renewal.next_retry) {
		note_next(pc, b->renewal.next_retry);
		check_expiry(pc, b);
		return 0;
	}
	if (brief_push(&pc->due, &pc->n_due, &pc->cap_due, b) != TCA_OK) {
		log_error("re-issuance: out of memory collecting due CAs; "
		    "the rest waits for the next pass");
		return 1;
	}
	return 0;
}

/* Waits for this worker's pacing slot (reissue.rate). */
static void
pace(struct pass_ctx *pc)
{
	uint64_t now, slot;
	struct timespec d;

	if (pc->p.rate == 0)
		return;
	pthread_mutex_lock(&pc->lock);
	now = mono_ns();
	slot = pc->slot_ns > now ? pc->slot_ns : now;
	pc->slot_ns = slot + 1000000000ULL / pc->p.rate;
	pthread_mutex_unlock(&pc->lock);
	if (slot > now) {
		d.tv_sec = (time_t)((slot - now) / 1000000000ULL);
		d.tv_nsec = (long)((slot - now) % 1000000000ULL);
		while (nanosleep(&d, &d) != 0 && errno == EINTR)
			;
	}
}

static void
reissue_one(struct pass_ctx *pc, const struct tca_ca_brief *b)
{
	struct tca_reissue_result res;
	char why[512] = "";
	int64_t nb = 0;
	int rc;

	rc = tca_engine_ca_reissue(pc->r->e, b->tenant, pc->last_instant, pc->p.serial_mode,
	    0, &pc->self, &res, why, sizeof(why));
	/*
	 * Refused because the current certificate is no longer the one this
	 * node's cache holds: another node re-issued the CA since this one
	 * loaded it.  If that was for this year, it is done; if for an earlier
	 * year (a leader elected after another one worked), it is still due:
	 * once more from the certificate the store holds.
	 */
	if (rc == TCA_ERR_ALREADY_EXISTS &&
	    tca_engine_ca_reload(pc->r->e, b->tenant, &nb) == TCA_OK &&
	    nb < pc->last_instant) {
		why[0] = '\0';
		rc = tca_engine_ca_reissue(pc->r->e, b->tenant, pc->last_instant,
		    pc->p.serial_mode, 0, &pc->self, &res, why, sizeof(why));
	}
	if (rc == TCA_OK || rc == TCA_ERR_ALREADY_EXISTS || rc == TCA_ERR_NOT_FOUND) {
		/* done, done by someone else meanwhile, or deleted meanwhile */
		if (rc != TCA_OK)
			log_info("tenant %s: re-issuance skipped: %s", b->tenant, why);
		return;
	}
	renewal_failed(pc, b, why[0] != '\0' ? why : tca_strerror(rc));
	check_expiry(pc, b);
}

/* A worker: takes the next due CA until none is left or the engine stops. */
static void *
reissue_worker(void *arg)
{
	struct pass_ctx *pc = arg;
	size_t i;

	for (;;) {
		if (stopping(pc->r))
			break;
		pthread_mutex_lock(&pc->lock);
		i = pc->lost || pc->taken >= pc->n_due;
		pthread_mutex_unlock(&pc->lock);
		if (i)
			break;	/* nothing left: no pacing slot to wait for */
		pace(pc);
		/* still the leader?  (one round trip; asked under pc->lock, so
		 * that no worker takes a CA after another saw the role lost) */
		pthread_mutex_lock(&pc->lock);
		if (!pc->lost && pc->taken < pc->n_due && !lead(pc->r))
			pc->lost = 1;
		i = !pc->lost && pc->taken < pc->n_due ? pc->taken++ : pc->n_due;
		pthread_mutex_unlock(&pc->lock);
		if (i >= pc->n_due)
			break;
		pc->work(pc, &pc->due[i]);
	}
	return NULL;
}

/* Re-issues the collected CAs with up to p.workers threads (this one
 * included), paced to p.rate per second. */
static void
reissue_due(struct pass_ctx *pc)
{
	pthread_t th[TCA_RENEWAL_MAX_WORKERS];
	unsigned int i, n = pc->p.workers, started = 0;
	uint64_t t0 = mono_ns();

	if (pc->n_due == 0)
		return;
	if (n == 0)
		n = 1;
	if (n > TCA_RENEWAL_MAX_WORKERS)
		n = TCA_RENEWAL_MAX_WORKERS;
	if ((size_t)n > pc->n_due)
		n = (unsigned int)pc->n_due;
	log_notice("%s: %zu CA%s due; %u worker%s, %s", pc->what, pc->n_due,
	    pc->n_due == 1 ? "" : "s", n, n == 1 ? "" : "s",
	    pc->p.rate == 0 ? "unpaced" : "paced");
	for (i = 1; i < n; i++) {
		if (pthread_create(&th[started], NULL, reissue_worker, pc) != 0) {
			log_warn("%s: could not start worker %u; going on with %u",
			    pc->what, i + 1, started + 1);
			break;
		}
		started++;
	}
	(void)reissue_worker(pc);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	log_notice("%s: pass over %zu CA%s took %.1f s%s", pc->what, pc->taken,
	    pc->taken == 1 ? "" : "s", (double)(mono_ns() - t0) / 1e9,
	    pc->lost ? "; stopped: leadership lost, the new leader does the rest" : "");
}

time_t
tca_renewal_pass(tca_renewal *r)
{
	struct pass_ctx pc;
	struct tca_due d;

	memset(&pc, 0, sizeof(pc));
	pc.r = r;
	pthread_mutex_lock(&r->lock);
	pc.p = r->p;
	pthread_mutex_unlock(&r->lock);
	pc.now = tca_engine_now(r->e);
	/* a standby does nothing and asks again at its next wake-up */
	if (!lead(r))
		return pc.now + 3600;
	pc.self.uid = (uint32_t)getuid();
	pc.self.gid = (uint32_t)getgid();
	pc.self.pid = (int32_t)getpid();
	/* the two instants around now, computed once per pass (schedule.h: a CA is
	 * due iff its notBefore lies before the latest passed instant) */
	if (tca_schedule_due(&pc.p.schedule, 0, pc.now, &d) != TCA_OK) {
		log_error("re-issuance schedule cannot be evaluated; next try in an hour");
		return pc.now + 3600;
	}
	pc.last_instant = d.not_before;
	pc.next_instant = d.next;
	pc.next = d.next;
	tca_engine_get_policy(r->e, &pc.pol);
	pthread_mutex_init(&pc.lock, NULL);
	(void)tca_engine_foreach_brief(r->e, pass_collect, &pc);
	pc.work = reissue_one;
	pc.what = "re-issuance";
	reissue_due(&pc);
	/* then the CRLs, by the same workers and pacing (re-issuance keeps the
	 * key and name, so a CRL stays valid across it) */
	free(pc.due);
	pc.due = pc.crl_due;
	pc.n_due = pc.n_crl;
	pc.cap_due = pc.cap_crl;
	pc.crl_due = NULL;
	pc.taken = 0;
	pc.work = crl_one;
	pc.what = "CRLs";
	if (!stopping(r) && !pc.lost)
		reissue_due(&pc);
	pthread_mutex_destroy(&pc.lock);
	free(pc.due);
	free(pc.crl_due);
	return pc.next;
}

static void *
renewal_main(void *arg)
{
	tca_renewal *r = arg;
	struct timespec until;
	time_t next, now;
	unsigned long long wait_ms;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		r->kicked = 0;
		pthread_mutex_unlock(&r->lock);

		next = tca_renewal_pass(r);
		now = tca_engine_now(r->e);
		wait_ms = next > now ? (unsigned long long)(next - now) * 1000 : 0;
		if (wait_ms > r->p.poll_ms)
			wait_ms = r->p.poll_ms;	/* the clock may jump (NTP, suspend, tests) */

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(wait_ms / 1000);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&r->lock);
		while (!r->stop && !r->kicked &&
		    pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

int
tca_renewal_start(tca_engine *e, const struct tca_renewal_params *p, tca_renewal **r_ptr)
{
	tca_renewal *r;
	char why[256];

	*r_ptr = NULL;
	if (tca_schedule_check(&p->schedule, why, sizeof(why)) != TCA_OK) {
		log_error("re-issuance schedule: %s", why);
		return TCA_ERR_CONFIG;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TCA_ERR_NOMEM;
	r->e = e;
	r->p = *p;
	r->leader = -1;
	if (r->p.poll_ms == 0)
		r->p.poll_ms = 60000;
	if (tca_hooks_new(&r->hooks) != TCA_OK) {
		free(r);
		return TCA_ERR_NOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	if (pthread_create(&r->thread, NULL, renewal_main, r) != 0) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		tca_hooks_free(r->hooks);
		free(r);
		return TCA_ERR_SYSTEM;
	}
	log_info("re-issuance scheduler: every year on %02d-%02d at %02d:%02d %s, serial %s",
	    p->schedule.month, p->schedule.day, p->schedule.hour, p->schedule.minute,
	    p->schedule.tz, p->serial_mode == TCA_SERIAL_KEEP ? "kept" : "new");
	*r_ptr = r;
	return TCA_OK;
}

void
tca_renewal_update_alerts(tca_renewal *r, const char *command,
    unsigned int expiry_window_days, unsigned int timeout_s)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	snprintf(r->p.alert_command, sizeof(r->p.alert_command), "%s", command);
	r->p.expiry_window_days = expiry_window_days;
	r->p.alert_timeout_s = timeout_s;
	pthread_mutex_unlock(&r->lock);
}

void
tca_renewal_kick(tca_renewal *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicked = 1;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

void
tca_renewal_stop(tca_renewal *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	/* alert reapers kill their command at its timeout, so this ends */
	tca_hooks_free(r->hooks);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
