/*
 * token-int.h - what the parts of the token layer share (internal).
 *
 *   p11.c          the module: loading, init arguments, the call wrapper
 *   token-pool.c   the session pool
 *   token-index.c  the key index (CKA_ID -> private key handle)
 *   token.c        opening the token and the operations
 *   token-init.c   development provisioning (ca-admin token init)
 *
 * Nothing outside engine/token*.c includes this header.
 */
#ifndef TCA_TOKEN_INT_H
#define TCA_TOKEN_INT_H

#include "p11.h"

#include <pthread.h>
#include <stdint.h>

#include "keytype.h"
#include "token.h"
#include "token-backend.h"

#define TOKEN_MAX_ID		128	/* longest CKA_ID we index or accept */
#define TOKEN_MAX_LABEL		255	/* longest CKA_LABEL we keep */
#define TOKEN_MAX_POOL		256
#define TOKEN_SESSION_FLAGS	(CKF_SERIAL_SESSION | CKF_RW_SESSION)

struct key_entry {
	struct key_entry *next;		/* hash chain */
	uint64_t hash;
	CK_OBJECT_HANDLE handle;	/* the private key; CK_INVALID_HANDLE: searched, absent */
	enum tca_key_type type;
	int64_t searched_at;		/* ms: last token search for it (absent keys) */
	size_t id_len;
	unsigned char *id;		/* points into the same allocation */
	char *label;			/* likewise, NUL-terminated */
};

struct key_index;

struct session {
	CK_SESSION_HANDLE h;
	int broken;		/* returned a session-killing CK_RV; replace before use */
	int64_t last_used_ms;	/* when it was last given back */
};

/* The supervisor's view of the token (token.c). */
enum tok_health {
	TOK_OK = 0,
	TOK_RECOVERING,		/* re-initialising; requests wait up to wait_ms */
	TOK_PIN_REFUSED,	/* the token refused the PIN: waits for an operator */
};

/* The in-process backend: the module is loaded into this process. */
typedef struct tok_local tok_local;
struct tok_local {
	struct tca_token base;	/* first: a tca_token * of this backend is a tok_local * */
	struct tca_p11 *mod;
	CK_SLOT_ID slot;
	struct tca_token_quirks quirks;
	char label[33], manufacturer[33], model[17], serial[17];
	char *uri;		/* to find the token again after a re-initialisation */
	char *pin;		/* mlock()ed copy for logging in again; wiped on close */
	size_t pin_len;
	unsigned int wait_ms;	/* how long a request waits for a recovering token */
	/* capabilities, discovered (tok_discover); under pool_lock after open */
	unsigned int gen_mask, sign_mask;	/* bit (1 << type) */
	CK_MECHANISM_TYPE sign_mech[TCA_KEY_TYPE_COUNT + 1];	/* by type */
	int hash_on_token[TCA_KEY_TYPE_COUNT + 1];	/* sign_mech hashes the message */
	int logged_in;

	/* session pool: free is a stack of indices into sessions.  pool_lock
	 * also guards the supervisor state below. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;	/* a session came back, or health changed */
	struct session *sessions;
	unsigned int n_sessions, n_free;
	unsigned int *free_idx;
	unsigned long long signatures, sign_errors;

	/* supervisor (token.c) */
	enum tok_health health;
	int reinit_wanted, sup_stop, sup_started;
	pthread_cond_t sup_cond;	/* wakes the supervisor thread */
	pthread_t sup_thread;
	unsigned long long generation;	/* bumped by each login and re-initialisation */
	unsigned long long recoveries, relogins, refreshes, replaced;
	char problem[200];		/* what the supervisor last saw go wrong */
	int64_t problem_time;

	/* executor threads for calls with a time bound (token-exec.c) */
	unsigned int call_timeout_ms;	/* 0: calls run on the requester's thread */
	pthread_condattr_t cond_attr;	/* CLOCK_MONOTONIC */
	pthread_mutex_t exec_lock;
	pthread_cond_t exec_cond;	/* work queued, or an executor left */
	struct tok_job *exec_head, *exec_tail;
	unsigned int exec_workers, exec_want, exec_hung;
	int exec_stop;

	/* key index: CKA_ID -> private key handle; replaced whole on rebuild */
	pthread_rwlock_t index_lock;
	struct key_index *idx;

	/* serializes generate/destroy so an id cannot be generated twice */
	pthread_mutex_t admin_lock;
	int locks_ok;
};

/* ---- token.c: the in-process implementation of token.h, one function per
 * entry of the backend table (tok_local_ops) */
extern const struct tca_token_ops tok_local_ops;
int tok_local_open(const struct tca_token_params *params, const char *pin,
    size_t pin_len, tok_local **tok_ptr, char *err, size_t errlen);
int tok_local_close(tok_local *tok);	/* token.h: tca_token_close */
int tok_local_retry(tok_local *tok, const char *pin, size_t pin_len);
size_t tok_local_key_count(tok_local *tok);

/* ---- token-pool.c */

/* Opens n sessions on tok->slot.  TCA_OK or TOKEN_UNAVAILABLE (err set). */
int tok_pool_open(tok_local *tok, unsigned int n, char *err, size_t errlen);

/* Closes every session (after logging out once if logged in).  Frees the pool. */
void tok_pool_close(tok_local *tok);

/* Closes every session handle without logging out (the module is about to be
 * re-initialised, or already was); keeps the pool's arrays. */
void tok_pool_drop_sessions(tok_local *tok);

/* Opens a session for every slot of the pool again (after a re-initialisation). */
int tok_pool_reopen(tok_local *tok, char *err, size_t errlen);

/*
 * Borrows a session, waiting while all are busy or the token is recovering,
 * until deadline_ms (tca_p11_now_ms() clock).  A broken session is replaced
 * first.  TCA_ERR_TOKEN_UNAVAILABLE on timeout, when the PIN was refused, or
 * when no replacement session can be opened.
 */
int tok_pool_borrow(tok_local *tok, int64_t deadline_ms, struct session **s_ptr);

/* Gives s back (NULL ok). */
void tok_pool_return(tok_local *tok, struct session *s);

/* Marks s broken if rv kills sessions; it is replaced at its next borrow. */
void tok_session_failed(tok_local *tok, struct session *s, CK_RV rv);

/* 1 if rv means the session is useless. */
int tok_rv_breaks_session(CK_RV rv);

/* Logs the application in on h with the kept PIN.  CKR_OK (also if it already
 * was), or the CK_RV. */
CK_RV tok_login(tok_local *tok, CK_SESSION_HANDLE h);

/* ---- token.c */

/* Picks the one present, initialised token uri_str matches; sets tok->slot and
 * *ti_ptr.  TCA_ERR_CONFIG (bad URI, no or several matches: err lists the
 * tokens present) or TOKEN_UNAVAILABLE. */
int tok_select(tok_local *tok, const char *uri_str, CK_TOKEN_INFO *ti_ptr,
    char *err, size_t errlen);

/* Reads the token's mechanisms and works out which key types it can
 * generate and sign with, and by which mechanism.  TCA_OK or the failure. */
int tok_discover(tok_local *tok, char *err, size_t errlen);

/* ---- token-supervisor.c */

#define TOK_RESEARCH_MS	1000	/* a missing key is searched for at most this often */

/* An operation on a borrowed session, run by tok_run(). */
struct tok_op {
	const char *what;		/* for the log: "C_Sign", "destroy", ... */
	const unsigned char *id;	/* the key the operation needs, or NULL */
	size_t id_len;
	CK_OBJECT_HANDLE key;		/* set by tok_run before each attempt */
	enum tca_key_type type;
	int absent_ok;			/* a missing key is an answer, not an error */
	int key_missing;		/* out: no key with this id on the token */
	int r;				/* the result when fn returns TOK_RV_ENGINE */
	int bounded;			/* run on an executor, within call_timeout_ms;
					 * ctx must then be a struct tok_ref */
};
/* fn returned a result of its own in op->r (not a token failure) */
#define TOK_RV_ENGINE	((CK_RV)(CKR_VENDOR_DEFINED | 0x7ca0001UL))
typedef CK_RV (*tok_op_fn)(tok_local *tok, struct session *s, struct tok_op *op, void *ctx);

/*
 * Runs fn on a borrowed session until it succeeds, a failure that recovery
 * cannot help, TOK_ATTEMPTS tries, or tok->wait_ms pass; carries out what each
 * CK_RV calls for in between (see token-supervisor.c).  TCA_OK, op->r, or the
 * TCA_ERR_* of the failure (TOKEN_UNAVAILABLE for outages and missing keys).
 * fn must be safe to run again after a failure (no key generation).
 */
int tok_run(tok_local *tok, tok_op_fn fn, struct tok_op *op, void *ctx);

/*
 * Does what a failed call's rv calls for on the borrowed session s: marks it
 * broken, logs in again (a refused PIN puts the token in pin-refused), or asks
 * for a re-initialisation (which starts once s is returned).  TCA_OK if the
 * operation may be tried again (a stale handle: after looking the key up),
 * else the TCA_ERR_* to report.  what names the operation for the log.
 */
int tok_recover(tok_local *tok, struct session *s, CK_RV rv, const char *what);

int tok_supervisor_start(tok_local *tok);
void tok_supervisor_stop(tok_local *tok);


/* Asks the supervisor thread to re-initialise the module; from now on borrowers
 * wait (health TOK_RECOVERING).  why goes to the log and status. */
void tok_request_reinit(tok_local *tok, const char *why);

/* The token refused the kept PIN: no automatic retry (it would lock the
 * token); requests fail at once until an operator reloads. */
void tok_pin_refused(tok_local *tok, const char *during);

/* ---- token-index.c */

int tok_index_init(tok_local *tok);
void tok_index_free(tok_local *tok);

/* A new entry (not in the index); NULL if id is empty/too long or no memory. */
struct key_entry *tok_entry_new(const unsigned char *id, size_t id_len, const char *label,
    size_t label_len, CK_OBJECT_HANDLE handle, enum tca_key_type type);

/* Takes ownership of e.  TCA_ERR_ALREADY_EXISTS (e not consumed) if a key with
 * e's id is indexed. */
int tok_index_insert(tok_local *tok, struct key_entry *e);

/* Like insert, but an entry with e's id takes over e's handle and type. */
int tok_index_update(tok_local *tok, struct key_entry *e);

/* 1 if a key (an entry with a handle) was removed. */
int tok_index_remove(tok_local *tok, const unsigned char *id, size_t id_len);

/* Copies handle and type of the key with this id out of the index (any
 * pointer may be NULL).  TCA_OK, or TCA_ERR_NOT_FOUND if no key is indexed;
 * *searched_ptr is then the time (ms) the token was last searched for it, 0 if
 * never. */
int tok_index_lookup(tok_local *tok, const unsigned char *id, size_t id_len,
    CK_OBJECT_HANDLE *handle_ptr, enum tca_key_type *type_ptr, int64_t *searched_ptr);

/* Keys indexed; and a walk over them under the read lock. */
size_t tok_index_count(tok_local *tok);
int tok_index_foreach(tok_local *tok, tca_token_key_cb cb, void *ctx);

/* One enumeration of the token's private keys into a new index, which then
 * replaces the old one (every handle is new after a re-initialisation). */
int tok_index_build(tok_local *tok, CK_SESSION_HANDLE h);

/* One C_FindObjects for the private key with this id (a stale handle, or a key
 * another engine sharing the token made): TCA_OK and the index updated, or
 * TCA_ERR_NOT_FOUND (the search time is remembered), or TOKEN_UNAVAILABLE
 * with the CK_RV in *rv_ptr. */
int tok_index_refresh(tok_local *tok, CK_SESSION_HANDLE h, const unsigned char *id,
    size_t id_len, CK_RV *rv_ptr);

/* The index type of an EC or Edwards key from its CKA_EC_PARAMS. */
enum tca_key_type tok_ec_params_type(const unsigned char *p, size_t len, CK_KEY_TYPE kt);

/* ---- token-exec.c */

/* A reference-counted context for a call that may outlive its requester. */
struct tok_ref {
	unsigned int refs;
	void (*free_fn)(struct tok_ref *);
};
void tok_ref_get(struct tok_ref *r);
void tok_ref_put(struct tok_ref *r);	/* NULL ok */

struct tok_job;

/* Starts n executor threads. */
int tok_exec_start(tok_local *tok, unsigned int n);
/* Stops the idle executors; a stuck one is left to finish by itself. */
void tok_exec_stop(tok_local *tok);
/* Calls abandoned and still inside the module. */
int tok_exec_hung(tok_local *tok);

/*
 * Runs fn(tok, copy of s, copy of op, ctx) on an executor thread and waits up
 * to tok->call_timeout_ms.  Returns fn's CK_RV (op->key/type/r copied back),
 * or, on timeout, TOK_RV_ENGINE with op->r = TOKEN_UNAVAILABLE and
 * *timed_out set; a call that had started is abandoned and s retired (its
 * handle belongs to the stuck executor now; s is broken).
 */
CK_RV tok_exec_call(tok_local *tok, struct session *s, tok_op_fn fn, struct tok_op *op,
    struct tok_ref *ctx, int *timed_out);

#endif
