/* token-pool.c - the session pool of the token layer (see token-int.h). */
#include "config.h"

#include "token-int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tca-error.h"
#include "text.h"

int
tok_rv_breaks_session(CK_RV rv)
{
	return tca_p11_classify(rv) == TCA_P11_NEW_SESSION || rv == CKR_DEVICE_ERROR;
}

int
tok_pool_open(tca_token *tok, unsigned int n, char *err, size_t errlen)
{
	unsigned int i;
	CK_RV rv;

	if ((tok->sessions = calloc(n, sizeof(*tok->sessions))) == NULL ||
	    (tok->free_idx = calloc(n, sizeof(*tok->free_idx))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		tok->sessions[i].h = CK_INVALID_HANDLE;
		rv = P11_CALL(tok->mod, C_OpenSession, tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL,
		    &tok->sessions[i].h);
		if (rv != CKR_OK) {
			tca_setf(err, errlen, "C_OpenSession on token \"%s\" failed: %s",
			    tok->label, tca_p11_rv_name(rv));
			return TCA_ERR_TOKEN_UNAVAILABLE;
		}
		tok->n_sessions++;
	}
	/* stack of free sessions; session 0 (the login session) on top */
	for (i = n; i > 0; i--)
		tok->free_idx[tok->n_free++] = i - 1;
	return TCA_OK;
}

void
tok_pool_close(tca_token *tok)
{
	unsigned int i;
	CK_RV rv;

	for (i = 0; tok->logged_in && i < tok->n_sessions; i++) {
		if (tok->sessions[i].broken)
			continue;
		rv = P11_CALL_QUIET(tok->mod, C_Logout, tok->sessions[i].h);
		if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
			tca_p11_result(tok->mod, "C_Logout", P11_LOG_ERROR, rv);
		break;
	}
	tok->logged_in = 0;
	for (i = 0; i < tok->n_sessions; i++)
		if (tok->sessions[i].h != CK_INVALID_HANDLE)
			(void)P11_CALL(tok->mod, C_CloseSession, tok->sessions[i].h);
	free(tok->sessions);
	free(tok->free_idx);
	tok->sessions = NULL;
	tok->free_idx = NULL;
	tok->n_sessions = tok->n_free = 0;
}

/*
 * Opens a new session for s before closing the old one: closing the last
 * session of an application logs it out, and we do not keep the PIN to log
 * in again.  Called by the borrower of s only.
 */
static int
session_replace(tca_token *tok, struct session *s)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_SESSION_INFO info;
	CK_RV rv;

	if (P11_CALL(tok->mod, C_OpenSession, tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL,
	    &h) != CKR_OK)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	memset(&info, 0, sizeof(info));
	if ((rv = P11_CALL(tok->mod, C_GetSessionInfo, h, &info)) != CKR_OK ||
	    info.state != CKS_RW_USER_FUNCTIONS) {
		if (rv == CKR_OK)
			log_error("token: replacement session is not logged in (state %lu); "
			    "the token lost the login, restart the engine", (unsigned long)info.state);
		(void)P11_CALL_QUIET(tok->mod, C_CloseSession, h);
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	if (s->h != CK_INVALID_HANDLE)
		(void)P11_CALL_QUIET(tok->mod, C_CloseSession, s->h);
	s->h = h;
	s->broken = 0;
	log_warn("token: replaced a broken session");
	return TCA_OK;
}

int
tok_pool_borrow(tca_token *tok, struct session **s_ptr)
{
	struct session *s;
	int r;

	*s_ptr = NULL;
	pthread_mutex_lock(&tok->pool_lock);
	while (tok->n_free == 0)
		pthread_cond_wait(&tok->pool_cond, &tok->pool_lock);
	s = &tok->sessions[tok->free_idx[--tok->n_free]];
	pthread_mutex_unlock(&tok->pool_lock);
	if (s->broken && (r = session_replace(tok, s)) != TCA_OK) {
		tok_pool_return(tok, s);
		return r;
	}
	*s_ptr = s;
	return TCA_OK;
}

void
tok_pool_return(tca_token *tok, struct session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&tok->pool_lock);
	tok->free_idx[tok->n_free++] = (unsigned int)(s - tok->sessions);
	pthread_cond_signal(&tok->pool_cond);
	pthread_mutex_unlock(&tok->pool_lock);
}

void
tok_session_failed(tca_token *tok, struct session *s, CK_RV rv)
{
	if (!tok_rv_breaks_session(rv))
		return;
	s->broken = 1;
	(void)session_replace(tok, s);
}
