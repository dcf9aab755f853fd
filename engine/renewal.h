/*
 * renewal.h - the yearly re-issuance scheduler and alert hook.
 *
 * One thread.  Each pass asks the pure schedule function (schedule.h) whether
 * each active CA is due at the engine's clock; due CAs are re-issued through
 * tca_engine_ca_reissue (the same code path as `ca-admin ca reissue`) by up
 * to `workers` threads, started at most `rate` per second, so issuance keeps
 * being served throughout: several workers let the group committer batch
 * their commits, the pacing bounds the CPU and token share the yearly run
 * takes from issuance (docs/performance.md).  A failure marks that tenant
 * "renewal-failed" with the reason, schedules a retry with exponential backoff
 * (retry_min_s doubling up to retry_max_s) and runs the alert command once per
 * failure episode; other tenants go on.  CAs within the alert window of their
 * notAfter trigger one "expiring" alert per certificate.  The same pass then
 * re-signs the CRLs that are due (tca_crl_due_at: crl.refresh_percent of
 * their validity passed, or none yet) with the same workers, pacing, retry
 * and failure bookkeeping ("crl-failed" alert once per episode); a failed
 * re-signing leaves the last CRL served.
 *
 * Election (several nodes on one PostgreSQL store, issue 13): every pass
 * first asks the store for leadership of the role "scheduler" (store.h
 * leader()); a node that is not the leader does nothing in that pass and
 * asks again at its next wake-up (at most poll_ms later).  The leader asks
 * again before each CA it takes from its due lists, and stops taking when it
 * lost the role (what is in flight completes: CA_REISSUE is conditional on
 * the certificate it replaces and CRL re-signing on the CRL number read, so
 * two nodes cannot both re-issue one CA for one year).  Changes of role are
 * logged at notice level.
 *
 * The alert command runs in its own process (posix_spawn) with a minimal
 * environment: TCA_ALERT_KIND (renewal-failed | expiring | crl-failed), TCA_ALERT_TENANT,
 * TCA_ALERT_REASON, TCA_ALERT_NOT_AFTER (ISO 8601 UTC), TCA_ALERT_ATTEMPTS.
 * A reaper thread waits for it, kills it after timeout_s, and logs failures;
 * the scheduler never waits for it.
 */
#ifndef TCA_RENEWAL_H
#define TCA_RENEWAL_H

#include <limits.h>

#include "certs.h"
#include "engine.h"
#include "schedule.h"

typedef struct tca_renewal tca_renewal;

struct tca_renewal_params {
	struct tca_schedule schedule;
	enum tca_serial_mode serial_mode;
	unsigned int retry_min_s, retry_max_s;
	char alert_command[PATH_MAX];	/* "" = none */
	unsigned int expiry_window_days;	/* 0 = no expiry alerts */
	unsigned int alert_timeout_s;
	unsigned int poll_ms;	/* longest sleep between passes (60000; tests less) */
	unsigned int workers;	/* re-issuing threads per pass, 1..TCA_RENEWAL_MAX_WORKERS */
	unsigned int rate;	/* re-issuances started per second at most; 0 = unpaced */
	/* where the scheduler is elected (store.h leader(), role "scheduler");
	 * borrowed; NULL: this node is always the leader */
	tca_store *store;
};

#define TCA_RENEWAL_MAX_WORKERS	16

/* Starts the scheduler thread.  e is borrowed. */
int tca_renewal_start(tca_engine *e, const struct tca_renewal_params *p,
    tca_renewal **r_ptr);

/* Replaces the alert settings (SIGHUP). */
void tca_renewal_update_alerts(tca_renewal *r, const char *command,
    unsigned int expiry_window_days, unsigned int timeout_s);

/* The scheduler's role on this node: "leader" or "standby" (before its
 * first pass: "standby"); r NULL: "disabled" (schedule.enabled = false). */
const char *tca_renewal_role(tca_renewal *r);

/* Wakes the scheduler for an immediate pass. */
void tca_renewal_kick(tca_renewal *r);

/* Stops the thread (a re-issuance in progress completes first), waits for
 * running alert commands up to their timeout, frees r.  NULL ok. */
void tca_renewal_stop(tca_renewal *r);

/* Backoff after `attempts` consecutive failures: min * 2^(attempts-1), capped. */
unsigned int tca_renewal_backoff(unsigned int attempts, unsigned int min_s, unsigned int max_s);

/* Runs one scheduler pass at the engine's clock (what the thread does each
 * wake-up); returns the next time anything is due.  Exposed for tests. */
time_t tca_renewal_pass(tca_renewal *r);

#endif
