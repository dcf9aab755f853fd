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

#define TOKEN_MAX_ID		128	/* longest CKA_ID we index or accept */
#define TOKEN_MAX_LABEL		255	/* longest CKA_LABEL we keep */
#define TOKEN_MAX_POOL		256
#define TOKEN_SESSION_FLAGS	(CKF_SERIAL_SESSION | CKF_RW_SESSION)

struct key_entry {
	struct key_entry *next;		/* hash chain */
	uint64_t hash;
	CK_OBJECT_HANDLE handle;	/* the private key */
	enum tca_key_type type;
	size_t id_len;
	unsigned char *id;		/* points into the same allocation */
	char *label;			/* likewise, NUL-terminated */
};

struct session {
	CK_SESSION_HANDLE h;
	int broken;		/* returned a session-killing CK_RV; replace before use */
};

struct tca_token {
	struct tca_p11 *mod;
	CK_SLOT_ID slot;
	struct tca_token_quirks quirks;
	char label[33], manufacturer[33], model[17], serial[17];
	int logged_in;

	/* session pool: free is a stack of indices into sessions */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct session *sessions;
	unsigned int n_sessions, n_free;
	unsigned int *free_idx;
	unsigned long long signatures, sign_errors;	/* under pool_lock */

	/* key index: CKA_ID -> private key handle */
	pthread_rwlock_t index_lock;
	struct key_entry **buckets;
	size_t n_buckets, n_keys;
	uint64_t hash_seed;

	/* serializes generate/destroy so an id cannot be generated twice */
	pthread_mutex_t admin_lock;
	int locks_ok;
};

/* ---- token-pool.c */

/* Opens n sessions on tok->slot.  TCA_OK or TOKEN_UNAVAILABLE (err set). */
int tok_pool_open(tca_token *tok, unsigned int n, char *err, size_t errlen);

/* Closes every session (after logging out once if logged in).  Frees the pool. */
void tok_pool_close(tca_token *tok);

/* Borrows a session, blocking while all are busy.  A broken session is
 * replaced first; TCA_ERR_TOKEN_UNAVAILABLE if that fails. */
int tok_pool_borrow(tca_token *tok, struct session **s_ptr);

/* Gives s back (NULL ok). */
void tok_pool_return(tca_token *tok, struct session *s);

/* Marks s broken after rv if rv kills sessions, and replaces it at once. */
void tok_session_failed(tca_token *tok, struct session *s, CK_RV rv);

/* 1 if rv means the session is useless. */
int tok_rv_breaks_session(CK_RV rv);

/* ---- token-index.c */

int tok_index_init(tca_token *tok);
void tok_index_free(tca_token *tok);

/* A new entry (not in the index); NULL if id is empty/too long or no memory. */
struct key_entry *tok_entry_new(const unsigned char *id, size_t id_len, const char *label,
    size_t label_len, CK_OBJECT_HANDLE handle, enum tca_key_type type);

/* Takes ownership of e.  TCA_ERR_ALREADY_EXISTS (e not consumed) on a duplicate. */
int tok_index_insert(tca_token *tok, struct key_entry *e);

/* 1 if an entry was removed. */
int tok_index_remove(tca_token *tok, const unsigned char *id, size_t id_len);

/* Copies handle and type out of the index (either pointer may be NULL).
 * TCA_OK or TCA_ERR_NOT_FOUND. */
int tok_index_lookup(tca_token *tok, const unsigned char *id, size_t id_len,
    CK_OBJECT_HANDLE *handle_ptr, enum tca_key_type *type_ptr);

/* One enumeration of the token's private keys into the index. */
int tok_index_build(tca_token *tok, CK_SESSION_HANDLE h);

/* The index type of an EC or Edwards key from its CKA_EC_PARAMS. */
enum tca_key_type tok_ec_params_type(const unsigned char *p, size_t len, CK_KEY_TYPE kt);

#endif
