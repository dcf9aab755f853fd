/*
 * token-pool.c - the session pool of the token layer (see token-int.h).
 *
 * A fixed number of sessions, opened at start and logged in once (login state
 * is per application).  A borrower that sees a session-killing CK_RV marks the
 * session broken; it is replaced at its next borrow, before anyone uses it.
 * While the supervisor re-initialises the module (token.c), borrowers wait on
 * pool_cond up to their deadline.
 */
#include "config.h"

#include "token-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tca-error.h"
#include "text.h"

int
tok_rv_breaks_session(CK_RV rv)
{
	return tca_p11_classify(rv) == TCA_P11_NEW_SESSION || rv == CKR_DEVICE_ERROR ||
	    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT;
}

CK_RV
tok_login(tok_local *tok, CK_SESSION_HANDLE h)
{
	CK_RV rv;

	/* the kept PIN goes straight to the token: no copy to wipe */
	rv = P11_CALL_QUIET(tok->mod, C_Login, h, CKU_USER, (CK_UTF8CHAR_PTR)tok->pin,
	    (CK_ULONG)tok->pin_len);
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	if (rv != CKR_OK)
		tca_p11_result(tok->mod, "C_Login(CKU_USER)", P11_LOG_ERROR, rv);
	else
		tok->logged_in = 1;
	return rv;
}

static int
pool_open_sessions(tok_local *tok, char *err, size_t errlen)
{
	unsigned int i;
	CK_RV rv;

	for (i = 0; i < tok->n_sessions; i++) {
		tok->sessions[i].h = CK_INVALID_HANDLE;
		tok->sessions[i].broken = 0;
		rv = P11_CALL(tok->mod, C_OpenSession, tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL,
		    &tok->sessions[i].h);
		if (rv != CKR_OK) {
			tca_setf(err, errlen, "C_OpenSession on token \"%s\" failed: %s",
			    tok->label, tca_p11_rv_name(rv));
			return tca_p11_error(rv) == TCA_ERR_TOKEN_FULL ? TCA_ERR_TOKEN_FULL :
			    TCA_ERR_TOKEN_UNAVAILABLE;
		}
	}
	/* stack of free sessions; session 0 (the login session) on top */
	tok->n_free = 0;
	for (i = tok->n_sessions; i > 0; i--)
		tok->free_idx[tok->n_free++] = i - 1;
	return TCA_OK;
}

int
tok_pool_open(tok_local *tok, unsigned int n, char *err, size_t errlen)
{
	if ((tok->sessions = calloc(n, sizeof(*tok->sessions))) == NULL ||
	    (tok->free_idx = calloc(n, sizeof(*tok->free_idx))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	tok->n_sessions = n;
	return pool_open_sessions(tok, err, errlen);
}

int
tok_pool_reopen(tok_local *tok, char *err, size_t errlen)
{
	return pool_open_sessions(tok, err, errlen);
}

void
tok_pool_drop_sessions(tok_local *tok)
{
	unsigned int i;

	for (i = 0; i < tok->n_sessions; i++) {
		if (tok->sessions[i].h != CK_INVALID_HANDLE)
			(void)P11_CALL_QUIET(tok->mod, C_CloseSession, tok->sessions[i].h);
		tok->sessions[i].h = CK_INVALID_HANDLE;
		tok->sessions[i].broken = 1;
	}
	tok->logged_in = 0;
}

void
tok_pool_close(tok_local *tok)
{
	unsigned int i;
	CK_RV rv;

	for (i = 0; tok->logged_in && i < tok->n_sessions; i++) {
		if (tok->sessions[i].broken || tok->sessions[i].h == CK_INVALID_HANDLE)
			continue;
		rv = P11_CALL_QUIET(tok->mod, C_Logout, tok->sessions[i].h);
		if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
			tca_p11_result(tok->mod, "C_Logout", P11_LOG_ERROR, rv);
		break;
	}
	tok->logged_in = 0;
	for (i = 0; tok->sessions != NULL && i < tok->n_sessions; i++)
		if (tok->sessions[i].h != CK_INVALID_HANDLE)
			(void)P11_CALL_QUIET(tok->mod, C_CloseSession, tok->sessions[i].h);
	free(tok->sessions);
	free(tok->free_idx);
	tok->sessions = NULL;
	tok->free_idx = NULL;
	tok->n_sessions = tok->n_free = 0;
}

/*
 * Opens a new session for s before closing the old one: closing the last
 * session of an application logs it out.  A new session that is not logged
 * in (the token lost the login) is logged in with the kept PIN.  Called by the
 * borrower of s only.
 */
static int
session_replace(tok_local *tok, struct session *s)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_SESSION_INFO info;
	CK_RV rv;

	if ((rv = P11_CALL(tok->mod, C_OpenSession, tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL,
	    &h)) != CKR_OK)
		return tca_p11_error(rv) == TCA_ERR_TOKEN_FULL ? TCA_ERR_TOKEN_FULL :
		    TCA_ERR_TOKEN_UNAVAILABLE;
	memset(&info, 0, sizeof(info));
	if ((rv = P11_CALL(tok->mod, C_GetSessionInfo, h, &info)) != CKR_OK)
		goto fail;
	if (info.state != CKS_RW_USER_FUNCTIONS) {
		log_warn("token: a new session is not logged in (state %lu); logging in again",
		    (unsigned long)info.state);
		if ((rv = tok_login(tok, h)) != CKR_OK)
			goto fail;
		pthread_mutex_lock(&tok->pool_lock);
		tok->relogins++;
		tok->generation++;
		pthread_mutex_unlock(&tok->pool_lock);
	}
	if (s->h != CK_INVALID_HANDLE)
		(void)P11_CALL_QUIET(tok->mod, C_CloseSession, s->h);
	s->h = h;
	s->broken = 0;
	pthread_mutex_lock(&tok->pool_lock);
	tok->replaced++;
	pthread_mutex_unlock(&tok->pool_lock);
	log_warn("token: replaced a broken session");
	return TCA_OK;
 fail:
	(void)P11_CALL_QUIET(tok->mod, C_CloseSession, h);
	return tca_p11_error(rv) == TCA_ERR_UNAUTHORIZED ? TCA_ERR_UNAUTHORIZED :
	    TCA_ERR_TOKEN_UNAVAILABLE;
}

static void
ms_to_timespec(int64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

int
tok_pool_borrow(tok_local *tok, int64_t deadline_ms, struct session **s_ptr)
{
	struct session *s;
	struct timespec ts;
	int r;

	*s_ptr = NULL;
	ms_to_timespec(deadline_ms, &ts);
	for (;;) {
		pthread_mutex_lock(&tok->pool_lock);
		while (tok->health != TOK_OK || tok->n_free == 0) {
			if (tok->health == TOK_PIN_REFUSED || tok->sup_stop) {
				pthread_mutex_unlock(&tok->pool_lock);
				return TCA_ERR_TOKEN_UNAVAILABLE;
			}
			if (pthread_cond_timedwait(&tok->pool_cond, &tok->pool_lock, &ts) ==
			    ETIMEDOUT && (tok->health != TOK_OK || tok->n_free == 0)) {
				pthread_mutex_unlock(&tok->pool_lock);
				return TCA_ERR_TOKEN_UNAVAILABLE;
			}
		}
		s = &tok->sessions[tok->free_idx[--tok->n_free]];
		pthread_mutex_unlock(&tok->pool_lock);
		/* a token that expires idle sessions (YubiHSM 2: 30 s) has killed
		 * this one already: replace it before anyone finds out the hard way */
		if (!s->broken && tok->quirks.idle_timeout_ms != 0 && s->last_used_ms != 0 &&
		    tca_p11_now_ms() - s->last_used_ms >= (int64_t)tok->quirks.idle_timeout_ms) {
			log_info("token: session idle for %lld ms (profile idle_timeout_s); "
			    "replacing it", (long long)(tca_p11_now_ms() - s->last_used_ms));
			s->broken = 1;
		}
		if (!s->broken) {
			*s_ptr = s;
			return TCA_OK;
		}
		if ((r = session_replace(tok, s)) == TCA_OK) {
			*s_ptr = s;
			return TCA_OK;
		}
		tok_pool_return(tok, s);
		if (r == TCA_ERR_UNAUTHORIZED) {
			tok_pin_refused(tok, "logging in a replacement session");
			return TCA_ERR_TOKEN_UNAVAILABLE;
		}
		if (r == TCA_ERR_TOKEN_FULL)
			return r;
		/* no new session can be opened: the module or token is gone */
		tok_request_reinit(tok, "no session could be opened");
	}
}

void
tok_pool_return(tok_local *tok, struct session *s)
{
	if (s == NULL)
		return;
	s->last_used_ms = tok->quirks.idle_timeout_ms != 0 ? tca_p11_now_ms() : 0;
	pthread_mutex_lock(&tok->pool_lock);
	tok->free_idx[tok->n_free++] = (unsigned int)(s - tok->sessions);
	pthread_cond_signal(&tok->pool_cond);
	/* the supervisor waits for every session before re-initialising */
	if (tok->health == TOK_RECOVERING && tok->n_free == tok->n_sessions)
		pthread_cond_signal(&tok->sup_cond);
	pthread_mutex_unlock(&tok->pool_lock);
}

void
tok_session_failed(tok_local *tok, struct session *s, CK_RV rv)
{
	(void)tok;
	if (tok_rv_breaks_session(rv))
		s->broken = 1;
}
