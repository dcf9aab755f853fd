/*
 * token-supervisor.c - keeps the token usable through token faults.
 *
 * Every operation on a pooled session runs through tok_run(), which looks at
 * the CK_RV the way tca_p11_classify() sorts it:
 *
 *   replace-session   (SESSION_HANDLE_INVALID, SESSION_CLOSED, ...): the
 *                     session is marked broken and replaced at its next
 *                     borrow; the operation is retried on another session.
 *   login             (USER_NOT_LOGGED_IN: the token forgot the login, e.g.
 *                     after its own restart): C_Login with the kept PIN, retry.
 *   refresh-handles   (OBJECT_HANDLE_INVALID, KEY_HANDLE_INVALID): the key is
 *                     looked up on the token again (one C_FindObjects by
 *                     CKA_ID), retry.  A key no longer on the token fails with
 *                     TOKEN_UNAVAILABLE - never NOT_FOUND, which the RPC
 *                     reserves for "tenant has no CA".
 *   reinitialize      (DEVICE_ERROR, DEVICE_REMOVED, TOKEN_NOT_PRESENT,
 *                     CRYPTOKI_NOT_INITIALIZED, GENERAL_ERROR, no session can
 *                     be opened): the supervisor thread waits for every session
 *                     to come back, then C_Finalize, C_Initialize, finds the
 *                     token again by its URI, opens the pool, logs in, rebuilds
 *                     the key index; on failure it tries again with exponential
 *                     backoff (100 ms .. 5 s) for as long as it takes.  Only
 *                     C_Finalize/C_Initialize revives some modules (YubiHSM 2
 *                     after an idle timeout, a restarted pkcs11-proxy).
 *   pin-refused       never retried (it would lock the token): requests fail at
 *                     once until an operator runs `ca-admin reload`, which
 *                     re-reads the PIN file and calls tca_token_retry().
 *   configuration, full, failed: reported, not retried.
 *
 * Requests wait for a recovering token up to tok->wait_ms
 * (token.recovery_wait_ms), then fail with TOKEN_UNAVAILABLE.  The engine never
 * exits because the token went away.
 */
#include "config.h"

#include "token-int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "secret.h"
#include "tca-error.h"
#include "text.h"

#define SUP_BACKOFF_MIN_MS	100
#define SUP_BACKOFF_MAX_MS	5000
#define TOK_ATTEMPTS		4	/* tries of one operation */

static void
problem_locked(tok_local *tok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem_locked(tok_local *tok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tok->problem, sizeof(tok->problem), fmt, ap);
	va_end(ap);
	tok->problem_time = (int64_t)time(NULL);
}

void
tok_request_reinit(tok_local *tok, const char *why)
{
	pthread_mutex_lock(&tok->pool_lock);
	if (tok->health == TOK_OK) {
		tok->health = TOK_RECOVERING;
		tok->reinit_wanted = 1;
		problem_locked(tok, "%s", why);
		log_error("token: %s; re-initialising the PKCS#11 module, requests wait up "
		    "to %u ms meanwhile", why, tok->wait_ms);
		pthread_cond_signal(&tok->sup_cond);
	}
	pthread_mutex_unlock(&tok->pool_lock);
}

void
tok_pin_refused(tok_local *tok, const char *during)
{
	pthread_mutex_lock(&tok->pool_lock);
	if (tok->health != TOK_PIN_REFUSED) {
		tok->health = TOK_PIN_REFUSED;
		tok->reinit_wanted = 0;
		problem_locked(tok, "the token refused the PIN (%s); fix token.pin_file and "
		    "run `ca-admin reload`", during);
		log_error("token: %s", tok->problem);
		pthread_cond_broadcast(&tok->pool_cond);
	}
	pthread_mutex_unlock(&tok->pool_lock);
}

/* Runs with every session returned and health TOK_RECOVERING: nobody else
 * touches the module meanwhile. */
static int
reopen(tok_local *tok, char *err, size_t errlen)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int r;

	tok_pool_drop_sessions(tok);
	if ((r = tca_p11_reinit(tok->mod, err, errlen)) != TCA_OK)
		return r;
	memset(&ti, 0, sizeof(ti));
	if ((r = tok_select(tok, tok->uri, &ti, err, errlen)) != TCA_OK)
		return r;
	if ((r = tok_pool_reopen(tok, err, errlen)) != TCA_OK)
		return r;
	if ((rv = tok_login(tok, tok->sessions[0].h)) != CKR_OK) {
		tca_setf(err, errlen, "login failed: %s", tca_p11_rv_name(rv));
		return tca_p11_error(rv) == TCA_ERR_UNAUTHORIZED ? TCA_ERR_UNAUTHORIZED :
		    TCA_ERR_TOKEN_UNAVAILABLE;
	}
	if ((r = tok_index_build(tok, tok->sessions[0].h)) != TCA_OK) {
		tca_setf(err, errlen, "rebuilding the key index failed (%s)", tca_strerror(r));
		return r;
	}
	/* the same token may come back with other firmware */
	return tok_discover(tok, err, errlen);
}

/*
 * C_Finalize while another thread is inside the module is undefined, so a
 * re-initialisation first gives calls abandoned by token.call_timeout_ms a
 * while to come back; a module that keeps one hanging for good is
 * re-initialised regardless (the alternative is never recovering).
 */
static void
wait_for_hung_calls(tok_local *tok)
{
	int64_t until = tca_p11_now_ms() + 2 * (int64_t)tok->call_timeout_ms;
	struct timespec ts = { 0, 50 * 1000000L };
	int n;

	/* polled: the stuck executors signal nobody the supervisor listens to */
	while ((n = tok_exec_hung(tok)) > 0) {
		if (tca_p11_now_ms() >= until) {
			log_warn("token: re-initialising although %d PKCS#11 calls still hang", n);
			return;
		}
		(void)nanosleep(&ts, NULL);
	}
}

static void *
supervisor_main(void *arg)
{
	tok_local *tok = arg;
	int64_t delay = SUP_BACKOFF_MIN_MS, until;
	struct timespec ts;
	char err[256];
	int r;

	pthread_mutex_lock(&tok->pool_lock);
	for (;;) {
		while (!tok->sup_stop &&
		    !(tok->reinit_wanted && tok->n_free == tok->n_sessions))
			pthread_cond_wait(&tok->sup_cond, &tok->pool_lock);
		if (tok->sup_stop)
			break;
		pthread_mutex_unlock(&tok->pool_lock);
		wait_for_hung_calls(tok);
		err[0] = '\0';
		r = reopen(tok, err, sizeof(err));
		pthread_mutex_lock(&tok->pool_lock);
		if (r == TCA_OK) {
			tok->health = TOK_OK;
			tok->reinit_wanted = 0;
			tok->recoveries++;
			tok->generation++;
			delay = SUP_BACKOFF_MIN_MS;
			log_notice("token: recovered: module re-initialised, token \"%s\" found "
			    "again, %u sessions, %zu keys", tok->label, tok->n_sessions,
			    tok_index_count(tok));
			pthread_cond_broadcast(&tok->pool_cond);
			continue;
		}
		if (r == TCA_ERR_UNAUTHORIZED) {
			pthread_mutex_unlock(&tok->pool_lock);
			tok_pin_refused(tok, "after re-initialising the module");
			pthread_mutex_lock(&tok->pool_lock);
			continue;
		}
		problem_locked(tok, "recovery: %s", err);
		log_warn("token: recovery failed (%s); next attempt in %lld ms", err,
		    (long long)delay);
		until = tca_p11_now_ms() + delay;
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000L;
		while (!tok->sup_stop && tca_p11_now_ms() < until)
			if (pthread_cond_timedwait(&tok->sup_cond, &tok->pool_lock, &ts) == ETIMEDOUT)
				break;
		delay = delay * 2 > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : delay * 2;
	}
	pthread_mutex_unlock(&tok->pool_lock);
	return NULL;
}

int
tok_supervisor_start(tok_local *tok)
{
	if (pthread_create(&tok->sup_thread, NULL, supervisor_main, tok) != 0)
		return TCA_ERR_SYSTEM;
	tok->sup_started = 1;
	return TCA_OK;
}

void
tok_supervisor_stop(tok_local *tok)
{
	if (!tok->sup_started)
		return;
	pthread_mutex_lock(&tok->pool_lock);
	tok->sup_stop = 1;
	pthread_cond_broadcast(&tok->sup_cond);
	pthread_cond_broadcast(&tok->pool_cond);
	pthread_mutex_unlock(&tok->pool_lock);
	pthread_join(tok->sup_thread, NULL);
	tok->sup_started = 0;
}

int
tok_local_retry(tok_local *tok, const char *pin, size_t pin_len)
{
	char *copy = NULL;
	size_t copy_len = 0;
	char err[128];
	int r = TCA_OK;

	if (tok == NULL || (pin == NULL && pin_len != 0))
		return TCA_ERR_INVALID_ARG;
	if (pin != NULL && (r = tca_secret_copy(pin, pin_len, &copy, &copy_len, err,
	    sizeof(err))) != TCA_OK)
		return r;
	pthread_mutex_lock(&tok->pool_lock);
	if (tok->health == TOK_PIN_REFUSED) {
		if (copy != NULL) {
			/* swap under the lock: the supervisor is idle in this state */
			tca_secret_free(tok->pin, tok->pin_len);
			tok->pin = copy;
			tok->pin_len = copy_len;
			copy = NULL;
		}
		tok->health = TOK_RECOVERING;
		tok->reinit_wanted = 1;
		problem_locked(tok, "operator asked to retry after a refused PIN");
		log_notice("token: retrying the login the operator asked for");
		pthread_cond_signal(&tok->sup_cond);
	} else
		r = TCA_ERR_ALREADY_EXISTS;	/* nothing to retry */
	pthread_mutex_unlock(&tok->pool_lock);
	if (copy != NULL)
		tca_secret_free(copy, copy_len);
	return r;
}

/* The key op->id on s, looked up in the index or (refresh, or an index miss
 * not searched for lately) on the token. */
static int
op_key(tok_local *tok, struct session *s, struct tok_op *op, int refresh, CK_RV *rv_ptr)
{
	char hex[2 * 16 + 1];
	int64_t searched = 0;
	int r;

	*rv_ptr = CKR_OK;
	if (!refresh && tok_index_lookup(tok, op->id, op->id_len, &op->key, &op->type,
	    &searched) == TCA_OK)
		return TCA_OK;
	tca_p11_id_hex(op->id, op->id_len > 16 ? 16 : op->id_len, hex, sizeof(hex));
	if (!refresh && searched != 0 && tca_p11_now_ms() - searched < TOK_RESEARCH_MS) {
		log_debug("token: key %s was not on the token %lld ms ago", hex,
		    (long long)(tca_p11_now_ms() - searched));
		return TCA_ERR_NOT_FOUND;
	}
	pthread_mutex_lock(&tok->pool_lock);
	tok->refreshes++;
	pthread_mutex_unlock(&tok->pool_lock);
	if ((r = tok_index_refresh(tok, s->h, op->id, op->id_len, rv_ptr)) == TCA_OK &&
	    (r = tok_index_lookup(tok, op->id, op->id_len, &op->key, &op->type, NULL)) == TCA_OK) {
		log_notice("token: key %s found on the token (new handle)", hex);
		return TCA_OK;
	}
	if (r == TCA_ERR_NOT_FOUND) {
		if (op->absent_ok)
			log_debug("token: no private key with CKA_ID %s on the token", hex);
		else
			log_error("token: no private key with CKA_ID %s on the token", hex);
	}
	return r;
}

int
tok_recover(tok_local *tok, struct session *s, CK_RV rv, const char *what)
{
	char why[160];

	switch (tca_p11_classify(rv)) {
	case TCA_P11_OK:
	case TCA_P11_HANDLES:	/* the caller looks the key up again */
		return TCA_OK;
	case TCA_P11_NEW_SESSION:
		s->broken = 1;
		if (tok->quirks.reinit_on_session_loss) {
			/* the profile says only a re-initialisation revives it */
			snprintf(why, sizeof(why), "%s returned %s (profile: recovery = reinit)",
			    what, tca_p11_rv_name(rv));
			tok_request_reinit(tok, why);
		}
		return TCA_OK;
	case TCA_P11_LOGIN:
		if ((rv = tok_login(tok, s->h)) == CKR_OK) {
			pthread_mutex_lock(&tok->pool_lock);
			tok->relogins++;
			tok->generation++;
			pthread_mutex_unlock(&tok->pool_lock);
			log_warn("token: the token had lost the login; logged in again");
			return TCA_OK;
		}
		if (tca_p11_classify(rv) == TCA_P11_PIN) {
			tok_pin_refused(tok, "logging in again after USER_NOT_LOGGED_IN");
			return TCA_ERR_TOKEN_UNAVAILABLE;
		}
		s->broken = 1;
		return TCA_OK;
	case TCA_P11_REINIT:
		s->broken = 1;
		snprintf(why, sizeof(why), "%s returned %s", what, tca_p11_rv_name(rv));
		/* the supervisor starts once s is back in the pool */
		tok_request_reinit(tok, why);
		return TCA_OK;
	default:
		return tca_p11_error(rv);
	}
}

int
tok_run(tok_local *tok, tok_op_fn fn, struct tok_op *op, void *ctx)
{
	int64_t deadline = tca_p11_now_ms() + tok->wait_ms;
	struct session *s = NULL;
	enum tca_p11_action act;
	int attempt, refresh = 0, reinit_tried = 0, r = TCA_ERR_TOKEN_UNAVAILABLE;
	CK_RV rv = CKR_OK;

	op->r = TCA_OK;
	op->key_missing = 0;
	for (attempt = 0; attempt < TOK_ATTEMPTS; attempt++) {
		if ((r = tok_pool_borrow(tok, deadline, &s)) != TCA_OK)
			return r;
		rv = CKR_OK;
		if (op->id != NULL && (r = op_key(tok, s, op, refresh, &rv)) != TCA_OK) {
			if (r == TCA_ERR_NOT_FOUND && refresh && !reinit_tried) {
				/* a key we held vanished: the token may have restarted
				 * under us (SoftHSMv2 forgets a token whose directory
				 * went away until it is re-initialised); look again
				 * after a re-initialisation, once */
				tok_pool_return(tok, s);
				s = NULL;
				reinit_tried = 1;
				refresh = 0;
				tok_request_reinit(tok, "a key the engine held vanished from the token");
				continue;
			}
			if (r == TCA_ERR_NOT_FOUND) {
				tok_pool_return(tok, s);
				op->key_missing = 1;
				return TCA_ERR_TOKEN_UNAVAILABLE;
			}
			if (rv == CKR_OK) {
				tok_pool_return(tok, s);
				return r;
			}
		} else if (fn != NULL && op->bounded && tok->call_timeout_ms != 0) {
			int timed_out = 0;

			rv = tok_exec_call(tok, s, fn, op, ctx, &timed_out);
			if (timed_out) {
				/* a hung call: no retry, the request fails now */
				tok_pool_return(tok, s);
				return op->r;
			}
		} else if (fn != NULL)
			rv = fn(tok, s, op, ctx);
		if (rv == TOK_RV_ENGINE) {
			tok_pool_return(tok, s);
			return op->r;
		}
		if ((act = tca_p11_classify(rv)) == TCA_P11_OK) {
			tok_pool_return(tok, s);
			return TCA_OK;
		}
		if (act == TCA_P11_HANDLES)
			refresh = 1;
		r = tok_recover(tok, s, rv, op->what);
		tok_pool_return(tok, s);
		s = NULL;
		if (r != TCA_OK)
			return r;
		log_warn("token: %s: %s (%s); retrying", op->what, tca_p11_rv_name(rv),
		    tca_p11_action_name(act));
	}
	return TCA_ERR_TOKEN_UNAVAILABLE;
}
