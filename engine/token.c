/*
 * token.c - the PKCS#11 token layer: module, session pool, key index, signing.
 *
 * The p11-kit headers come first on purpose: in its compatibility mode
 * pkcs11.h #defines GNU-style member names (slot_id, value, count, ...) to the
 * standard ones, which renames struct tca_token_status.slot_id consistently
 * inside this file only; the layout is unchanged.
 */
#include "config.h"

#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "text.h"
#include "token.h"

#define TOKEN_MAX_ID		128	/* longest CKA_ID we index or accept */
#define TOKEN_MAX_LABEL		255	/* longest CKA_LABEL we keep */
#define TOKEN_FIND_BATCH	256	/* handles per C_FindObjects call */
#define TOKEN_MAX_SIG		512	/* raw token signature (RSA-4096 at most) */
#define TOKEN_MAX_POOL		256
#define TOKEN_INDEX_MIN_BUCKETS	1024
#define TOKEN_SESSION_FLAGS	(CKF_SERIAL_SESSION | CKF_RW_SESSION)

/* DER of the curve OIDs (CKA_EC_PARAMS is an ECParameters namedCurve) */
static const unsigned char oid_p256[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};
static const unsigned char oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
/* PKCS#11 3.0 also allows the curve name as a PrintableString */
static const unsigned char ps_edwards25519[] = {
	0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'
};
/* DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1) */
static const unsigned char digestinfo_sha256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};
static const unsigned char rsa_f4[] = { 0x01, 0x00, 0x01 };

/* ------------------------------------------------------------ CK_RV names */

static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
#define RV(x) { x, #x }
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD),
	RV(CKR_NO_EVENT), RV(CKR_NEED_TO_CREATE_THREADS), RV(CKR_CANT_LOCK),
	RV(CKR_ATTRIBUTE_READ_ONLY), RV(CKR_ATTRIBUTE_SENSITIVE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID),
	RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE), RV(CKR_DEVICE_ERROR),
	RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED), RV(CKR_FUNCTION_CANCELED),
	RV(CKR_FUNCTION_NOT_PARALLEL), RV(CKR_FUNCTION_NOT_SUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID), RV(CKR_KEY_SIZE_RANGE), RV(CKR_KEY_TYPE_INCONSISTENT),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED), RV(CKR_MECHANISM_INVALID),
	RV(CKR_MECHANISM_PARAM_INVALID), RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED),
	RV(CKR_PIN_INCORRECT), RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE),
	RV(CKR_PIN_EXPIRED), RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED),
	RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED), RV(CKR_SESSION_READ_ONLY),
	RV(CKR_SESSION_EXISTS), RV(CKR_SESSION_READ_ONLY_EXISTS),
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS), RV(CKR_SIGNATURE_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE), RV(CKR_TEMPLATE_INCOMPLETE),
	RV(CKR_TEMPLATE_INCONSISTENT), RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED), RV(CKR_TOKEN_WRITE_PROTECTED),
	RV(CKR_USER_ALREADY_LOGGED_IN), RV(CKR_USER_NOT_LOGGED_IN),
	RV(CKR_USER_PIN_NOT_INITIALIZED), RV(CKR_USER_TYPE_INVALID),
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), RV(CKR_USER_TOO_MANY_TYPES),
	RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED),
	RV(CKR_BUFFER_TOO_SMALL), RV(CKR_RANDOM_NO_RNG),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_MUTEX_BAD), RV(CKR_MUTEX_NOT_LOCKED),
	RV(CKR_FUNCTION_REJECTED),
#undef RV
};

static const char *
rv_name(CK_RV rv)
{
	static __thread char buf[32];
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "CKR_0x%08lx", (unsigned long)rv);
	return buf;
}

/* Logs a failed C_* call at error level; returns rv unchanged. */
static CK_RV
ck_check(CK_RV rv, const char *what)
{
	if (rv != CKR_OK)
		log_error("token: %s failed: %s", what, rv_name(rv));
	return rv;
}

static int
rv_is_pin_error(CK_RV rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE ||
	    rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_INVALID ||
	    rv == CKR_USER_PIN_NOT_INITIALIZED;
}

/* A session that returned one of these is useless; replace it. */
static int
rv_breaks_session(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_DEVICE_ERROR || rv == CKR_OPERATION_ACTIVE;
}


static void
id_hex(const unsigned char *id, size_t id_len, char *out, size_t outsz)
{
	static const char hexd[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < id_len && o + 3 <= outsz; i++) {
		out[o++] = hexd[id[i] >> 4];
		out[o++] = hexd[id[i] & 0xf];
	}
	if (outsz > 0)
		out[o < outsz ? o : outsz - 1] = '\0';
}

/* Copies a blank-padded PKCS#11 string field, trimmed, NUL-terminated. */
static void
ck_str(const CK_UTF8CHAR *in, size_t inlen, char *out, size_t outsz)
{
	size_t n = inlen;

	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\0'))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* ------------------------------------------------------- module registry */

/*
 * A PKCS#11 library is initialized once per process: a second C_Initialize
 * fails and a C_Finalize ends it for every user.  Opening two tokens of one
 * module (or token init while a token is open) therefore shares one
 * initialization, counted here and keyed by the library's C_Initialize.
 */
#define MAX_MODULES 8
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	CK_C_Initialize init_fn;
	unsigned int refs;
	int foreign;		/* initialized by someone else: never finalize */
} mod_refs[MAX_MODULES];

static int
module_load(const char *path, CK_FUNCTION_LIST_PTR *fl_ptr, char *err, size_t errlen)
{
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	size_t i, slot = MAX_MODULES;
	int r = TCA_ERR_TOKEN_UNAVAILABLE;

	*fl_ptr = NULL;
	if (path == NULL || *path == '\0') {
		tca_setf(err, errlen, "no PKCS#11 module configured");
		return TCA_ERR_CONFIG;
	}
	/* unmanaged: no p11-kit RPC/wrapping layer, we initialize it ourselves */
	if ((fl = p11_kit_module_load(path, P11_KIT_MODULE_UNMANAGED)) == NULL) {
		tca_setf(err, errlen, "cannot load PKCS#11 module %s: %s", path,
		    p11_kit_message() != NULL ? p11_kit_message() : "unknown error");
		log_error("token: %s", err != NULL ? err : "module load failed");
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	pthread_mutex_lock(&mod_lock);
	for (i = 0; i < MAX_MODULES; i++) {
		if (mod_refs[i].refs > 0 && mod_refs[i].init_fn == fl->C_Initialize) {
			mod_refs[i].refs++;
			r = TCA_OK;
			goto out;
		}
		if (mod_refs[i].refs == 0 && slot == MAX_MODULES)
			slot = i;
	}
	if (slot == MAX_MODULES) {
		tca_setf(err, errlen, "too many PKCS#11 modules loaded");
		r = TCA_ERR_INTERNAL;
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = fl->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ck_check(rv, "C_Initialize");
		tca_setf(err, errlen, "C_Initialize of %s failed: %s", path, rv_name(rv));
		goto out;
	}
	mod_refs[slot].init_fn = fl->C_Initialize;
	mod_refs[slot].refs = 1;
	mod_refs[slot].foreign = rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	r = TCA_OK;
 out:
	pthread_mutex_unlock(&mod_lock);
	if (r != TCA_OK)
		p11_kit_module_release(fl);
	else
		*fl_ptr = fl;
	return r;
}

static void
module_unload(CK_FUNCTION_LIST_PTR fl)
{
	size_t i;

	if (fl == NULL)
		return;
	pthread_mutex_lock(&mod_lock);
	for (i = 0; i < MAX_MODULES; i++) {
		if (mod_refs[i].refs > 0 && mod_refs[i].init_fn == fl->C_Initialize) {
			if (--mod_refs[i].refs == 0 && !mod_refs[i].foreign)
				(void)ck_check(fl->C_Finalize(NULL), "C_Finalize");
			break;
		}
	}
	pthread_mutex_unlock(&mod_lock);
	p11_kit_module_release(fl);
}

/* Present slots; *slots_ptr is malloc'ed (caller frees). */
static CK_RV
get_slots(CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID **slots_ptr, CK_ULONG *n_ptr)
{
	CK_SLOT_ID *slots = NULL, *tmp;
	CK_ULONG n = 0;
	CK_RV rv;
	int tries;

	*slots_ptr = NULL;
	*n_ptr = 0;
	for (tries = 0; tries < 4; tries++) {
		if ((rv = fl->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK)
			break;
		if (n == 0)
			break;
		if (n > 4096) {
			rv = CKR_GENERAL_ERROR;
			break;
		}
		if ((tmp = realloc(slots, n * sizeof(*slots))) == NULL) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		slots = tmp;
		rv = fl->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		free(slots);
		return ck_check(rv, "C_GetSlotList");
	}
	*slots_ptr = slots;
	*n_ptr = n;
	return CKR_OK;
}

/* ------------------------------------------------------------ structures */

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
	CK_FUNCTION_LIST_PTR fl;
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

/* ------------------------------------------------------------ key index */

static uint64_t
id_hash(const tca_token *tok, const unsigned char *id, size_t id_len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ tok->hash_seed;
	size_t i;

	/* FNV-1a; the seed keeps bucket placement unpredictable */
	for (i = 0; i < id_len; i++) {
		h ^= id[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static struct key_entry *
index_find_locked(const tca_token *tok, const unsigned char *id, size_t id_len)
{
	uint64_t h = id_hash(tok, id, id_len);
	struct key_entry *e;

	for (e = tok->buckets[h & (tok->n_buckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && e->id_len == id_len && memcmp(e->id, id, id_len) == 0)
			return e;
	return NULL;
}

static int
index_grow_locked(tca_token *tok)
{
	struct key_entry **nb, *e, *next;
	size_t n = tok->n_buckets * 2, i;

	if (n > SIZE_MAX / sizeof(*nb) || (nb = calloc(n, sizeof(*nb))) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < tok->n_buckets; i++) {
		for (e = tok->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(tok->buckets);
	tok->buckets = nb;
	tok->n_buckets = n;
	return TCA_OK;
}

/* Takes ownership of e.  TCA_ERR_ALREADY_EXISTS (e not consumed) on a duplicate. */
static int
index_insert_locked(tca_token *tok, struct key_entry *e)
{
	size_t b;

	e->hash = id_hash(tok, e->id, e->id_len);
	if (index_find_locked(tok, e->id, e->id_len) != NULL)
		return TCA_ERR_ALREADY_EXISTS;
	/* load factor 1; a failed grow only costs speed */
	if (tok->n_keys >= tok->n_buckets && index_grow_locked(tok) != TCA_OK)
		log_warn("token: key index could not grow (out of memory)");
	b = e->hash & (tok->n_buckets - 1);
	e->next = tok->buckets[b];
	tok->buckets[b] = e;
	tok->n_keys++;
	return TCA_OK;
}

static int
index_remove_locked(tca_token *tok, const unsigned char *id, size_t id_len)
{
	uint64_t h = id_hash(tok, id, id_len);
	struct key_entry **pp, *e;

	for (pp = &tok->buckets[h & (tok->n_buckets - 1)]; (e = *pp) != NULL; pp = &e->next) {
		if (e->hash == h && e->id_len == id_len && memcmp(e->id, id, id_len) == 0) {
			*pp = e->next;
			free(e);
			tok->n_keys--;
			return 1;
		}
	}
	return 0;
}

static struct key_entry *
entry_new(const unsigned char *id, size_t id_len, const char *label, size_t label_len,
    CK_OBJECT_HANDLE handle, enum tca_key_type type)
{
	struct key_entry *e;

	if (id_len == 0 || id_len > TOKEN_MAX_ID)
		return NULL;
	if (label_len > TOKEN_MAX_LABEL)
		label_len = TOKEN_MAX_LABEL;
	if ((e = calloc(1, sizeof(*e) + id_len + label_len + 1)) == NULL)
		return NULL;
	e->id = (unsigned char *)(e + 1);
	e->label = (char *)e->id + id_len;
	memcpy(e->id, id, id_len);
	if (label_len > 0)
		memcpy(e->label, label, label_len);
	e->label[label_len] = '\0';
	e->id_len = id_len;
	e->handle = handle;
	e->type = type;
	return e;
}

static void
index_free(tca_token *tok)
{
	struct key_entry *e, *next;
	size_t i;

	if (tok->buckets == NULL)
		return;
	for (i = 0; i < tok->n_buckets; i++) {
		for (e = tok->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(tok->buckets);
	tok->buckets = NULL;
	tok->n_keys = 0;
}

/* Copies handle and type out of the index: the entry may go away once the
 * lock is dropped. */
static int
index_lookup(tca_token *tok, const unsigned char *id, size_t id_len,
    CK_OBJECT_HANDLE *handle_ptr, enum tca_key_type *type_ptr)
{
	struct key_entry *e;
	int r = TCA_ERR_NOT_FOUND;

	pthread_rwlock_rdlock(&tok->index_lock);
	if ((e = index_find_locked(tok, id, id_len)) != NULL) {
		if (handle_ptr != NULL)
			*handle_ptr = e->handle;
		if (type_ptr != NULL)
			*type_ptr = e->type;
		r = TCA_OK;
	}
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

/* ------------------------------------------------------------ session pool */

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

	if (ck_check(tok->fl->C_OpenSession(tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL, &h),
	    "C_OpenSession (replacing a broken session)") != CKR_OK)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	memset(&info, 0, sizeof(info));
	if ((rv = ck_check(tok->fl->C_GetSessionInfo(h, &info), "C_GetSessionInfo")) != CKR_OK ||
	    info.state != CKS_RW_USER_FUNCTIONS) {
		if (rv == CKR_OK)
			log_error("token: replacement session is not logged in (state %lu); "
			    "the token lost the login, restart the engine", (unsigned long)info.state);
		(void)tok->fl->C_CloseSession(h);
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	if (s->h != CK_INVALID_HANDLE) {
		rv = tok->fl->C_CloseSession(s->h);
		if (rv != CKR_OK)
			log_debug("token: closing the broken session: %s", rv_name(rv));
	}
	s->h = h;
	s->broken = 0;
	log_warn("token: replaced a broken session");
	return TCA_OK;
}

/* Borrows a session, blocking while all are busy.  A broken session is
 * replaced first; TCA_ERR_TOKEN_UNAVAILABLE if that fails (it stays broken and
 * is returned to the pool). */
static int
pool_borrow(tca_token *tok, struct session **s_ptr)
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
		pthread_mutex_lock(&tok->pool_lock);
		tok->free_idx[tok->n_free++] = (unsigned int)(s - tok->sessions);
		pthread_cond_signal(&tok->pool_cond);
		pthread_mutex_unlock(&tok->pool_lock);
		return r;
	}
	*s_ptr = s;
	return TCA_OK;
}

static void
pool_return(tca_token *tok, struct session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&tok->pool_lock);
	tok->free_idx[tok->n_free++] = (unsigned int)(s - tok->sessions);
	pthread_cond_signal(&tok->pool_cond);
	pthread_mutex_unlock(&tok->pool_lock);
}

/* Marks s broken after rv and tries to replace it at once. */
static void
session_failed(tca_token *tok, struct session *s, CK_RV rv)
{
	if (!rv_breaks_session(rv))
		return;
	s->broken = 1;
	(void)session_replace(tok, s);
}

/* ------------------------------------------------------- attribute helpers */

/* Reads a variable-length attribute into buf (capacity bufsz).  CKR_OK and
 * *len_ptr, or the CK_RV (CKR_BUFFER_TOO_SMALL if it does not fit). */
static CK_RV
get_attr(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    void *buf, size_t bufsz, size_t *len_ptr)
{
	CK_ATTRIBUTE a;
	CK_RV rv;

	a.type = type;
	a.pValue = buf;
	a.ulValueLen = (CK_ULONG)bufsz;
	*len_ptr = 0;
	rv = tok->fl->C_GetAttributeValue(h, obj, &a, 1);
	if (rv == CKR_OK && (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > bufsz))
		rv = CKR_BUFFER_TOO_SMALL;
	if (rv == CKR_OK)
		*len_ptr = a.ulValueLen;
	return rv;
}

static CK_RV
get_bool_attr(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type, int *out)
{
	CK_BBOOL b = CK_FALSE;
	size_t len = 0;
	CK_RV rv;

	*out = 0;
	if ((rv = get_attr(tok, h, obj, type, &b, sizeof(b), &len)) != CKR_OK)
		return rv;
	if (len != sizeof(b))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	*out = b == CK_TRUE;
	return CKR_OK;
}

static enum tca_key_type
ec_params_type(const unsigned char *p, size_t len, CK_KEY_TYPE kt)
{
	if (kt == CKK_EC) {
		if (len == sizeof(oid_p256) && memcmp(p, oid_p256, len) == 0)
			return TCA_KEY_EC_P256;
		if (len == sizeof(oid_p384) && memcmp(p, oid_p384, len) == 0)
			return TCA_KEY_EC_P384;
	} else if (kt == CKK_EC_EDWARDS) {
		if ((len == sizeof(oid_ed25519) && memcmp(p, oid_ed25519, len) == 0) ||
		    (len == sizeof(ps_edwards25519) && memcmp(p, ps_edwards25519, len) == 0))
			return TCA_KEY_ED25519;
	}
	return TCA_KEY_NONE;
}

/* Works out the index type of a private key (TCA_KEY_NONE for keys we cannot
 * sign with, which are still indexed so their ids count as taken). */
static CK_RV
classify_key(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_KEY_TYPE kt,
    enum tca_key_type *type_ptr)
{
	unsigned char params[64];
	CK_ULONG bits = 0;
	CK_ATTRIBUTE a;
	size_t len = 0;
	CK_RV rv;

	*type_ptr = TCA_KEY_NONE;
	switch (kt) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		rv = get_attr(tok, h, obj, CKA_EC_PARAMS, params, sizeof(params), &len);
		if (rv == CKR_OK)
			*type_ptr = ec_params_type(params, len, kt);
		else if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID)
			rv = CKR_OK;	/* explicit curve parameters: not ours */
		return rv;
	case CKK_RSA:
		rv = get_attr(tok, h, obj, CKA_MODULUS_BITS, &bits, sizeof(bits), &len);
		if (rv != CKR_OK || len != sizeof(bits)) {
			/* private key objects often lack CKA_MODULUS_BITS */
			a.type = CKA_MODULUS;
			a.pValue = NULL;
			a.ulValueLen = 0;
			rv = tok->fl->C_GetAttributeValue(h, obj, &a, 1);
			if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
				return CKR_OK;
			if (rv != CKR_OK)
				return rv;
			if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 4096)
				return CKR_OK;
			bits = a.ulValueLen * 8;
		}
		if (bits == 3072)
			*type_ptr = TCA_KEY_RSA_3072;
		return CKR_OK;
	default:
		return CKR_OK;
	}
}

/* Collects the handles of every object matching tmpl (malloc'ed list). */
static CK_RV
find_all(tca_token *tok, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG n_tmpl,
    CK_OBJECT_HANDLE **objs_ptr, size_t *n_ptr)
{
	CK_OBJECT_HANDLE *objs = NULL, *tmp;
	size_t n = 0, cap = 0;
	CK_ULONG got = 0;
	CK_RV rv, rv2;

	*objs_ptr = NULL;
	*n_ptr = 0;
	if ((rv = ck_check(tok->fl->C_FindObjectsInit(h, tmpl, n_tmpl), "C_FindObjectsInit")) != CKR_OK)
		return rv;
	for (;;) {
		if (cap - n < TOKEN_FIND_BATCH) {
			if (cap > SIZE_MAX / sizeof(*objs) / 2 - TOKEN_FIND_BATCH) {
				rv = CKR_HOST_MEMORY;
				break;
			}
			cap = cap * 2 + TOKEN_FIND_BATCH;
			if ((tmp = realloc(objs, cap * sizeof(*objs))) == NULL) {
				rv = CKR_HOST_MEMORY;
				break;
			}
			objs = tmp;
		}
		got = 0;
		rv = ck_check(tok->fl->C_FindObjects(h, objs + n, TOKEN_FIND_BATCH, &got),
		    "C_FindObjects");
		if (rv != CKR_OK || got == 0)
			break;
		if (got > TOKEN_FIND_BATCH) {
			rv = CKR_GENERAL_ERROR;
			break;
		}
		n += got;
	}
	rv2 = ck_check(tok->fl->C_FindObjectsFinal(h), "C_FindObjectsFinal");
	if (rv == CKR_OK)
		rv = rv2;
	if (rv != CKR_OK) {
		free(objs);
		return rv;
	}
	*objs_ptr = objs;
	*n_ptr = n;
	return CKR_OK;
}

/* ------------------------------------------------------------ index build */

static int
index_add_object(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	unsigned char id[TOKEN_MAX_ID], params[64];
	char label[TOKEN_MAX_LABEL + 1];
	CK_KEY_TYPE kt = CKK_VENDOR_DEFINED;
	enum tca_key_type type = TCA_KEY_NONE;
	CK_ATTRIBUTE a[5];
	struct key_entry *e = NULL;
	size_t label_len = 0;
	char hex[2 * 16 + 1];
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	a[0].type = CKA_ID;
	a[0].pValue = id;
	a[0].ulValueLen = sizeof(id);
	a[1].type = CKA_LABEL;
	a[1].pValue = label;
	a[1].ulValueLen = sizeof(label) - 1;
	a[2].type = CKA_KEY_TYPE;
	a[2].pValue = &kt;
	a[2].ulValueLen = sizeof(kt);
	/* What classify_key() needs, in the same call (one C_GetAttributeValue
	 * per key: SoftHSM's file store re-reads the object file on every call,
	 * docs/performance.md F4).  Each key type lacks one of these, so the
	 * call returns CKR_ATTRIBUTE_TYPE_INVALID with that one marked
	 * unavailable and the others filled (PKCS#11 3.0 5.7). */
	a[3].type = CKA_EC_PARAMS;
	a[3].pValue = params;
	a[3].ulValueLen = sizeof(params);
	a[4].type = CKA_MODULUS;	/* its length only */
	a[4].pValue = NULL;
	a[4].ulValueLen = 0;
	rv = tok->fl->C_GetAttributeValue(h, obj, a, 5);
	if (rv == CKR_OBJECT_HANDLE_INVALID) {
		/* deleted by another application meanwhile */
		r = TCA_OK;
		goto out;
	}
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE) {
		ck_check(rv, "C_GetAttributeValue (key index)");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[0].ulValueLen > sizeof(id)) {
		log_warn("token: private key object %lu has no usable CKA_ID (longer than %d "
		    "bytes or unreadable); not indexed", (unsigned long)obj, TOKEN_MAX_ID);
		r = TCA_OK;
		goto out;
	}
	if (a[0].ulValueLen == 0) {
		log_debug("token: private key object %lu has an empty CKA_ID; not indexed",
		    (unsigned long)obj);
		r = TCA_OK;
		goto out;
	}
	if (a[2].ulValueLen != sizeof(kt)) {
		log_warn("token: private key object %lu has no readable CKA_KEY_TYPE; not indexed",
		    (unsigned long)obj);
		r = TCA_OK;
		goto out;
	}
	if (a[1].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[1].ulValueLen < sizeof(label))
		label_len = a[1].ulValueLen;
	if ((kt == CKK_EC || kt == CKK_EC_EDWARDS) &&
	    a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[3].ulValueLen <= sizeof(params)) {
		type = ec_params_type(params, a[3].ulValueLen, kt);
		rv = CKR_OK;
	} else if (kt == CKK_RSA && a[4].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
	    a[4].ulValueLen > 0 && a[4].ulValueLen <= 4096) {
		type = a[4].ulValueLen * 8 == 3072 ? TCA_KEY_RSA_3072 : TCA_KEY_NONE;
		rv = CKR_OK;
	} else	/* a token that stopped at the first invalid attribute, or odd keys */
		rv = classify_key(tok, h, obj, kt, &type);
	if (rv != CKR_OK) {
		ck_check(rv, "C_GetAttributeValue (key type details)");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((e = entry_new(id, a[0].ulValueLen, label, label_len, obj, type)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	pthread_rwlock_wrlock(&tok->index_lock);
	r = index_insert_locked(tok, e);
	pthread_rwlock_unlock(&tok->index_lock);
	if (r == TCA_ERR_ALREADY_EXISTS) {
		id_hex(id, a[0].ulValueLen > 16 ? 16 : a[0].ulValueLen, hex, sizeof(hex));
		log_warn("token: several private keys have CKA_ID %s; using the first", hex);
		r = TCA_OK;
		goto out;
	}
	if (r != TCA_OK)
		goto out;
	e = NULL;
	r = TCA_OK;
 out:
	free(e);
	return r;
}

/* One enumeration of the private keys; never repeated on the request path. */
static int
index_build(tca_token *tok, CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[1];
	CK_OBJECT_HANDLE *objs = NULL;
	size_t n = 0, i;
	int r = TCA_ERR_INTERNAL;

	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	if (find_all(tok, h, tmpl, 1, &objs, &n) != CKR_OK) {
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = index_add_object(tok, h, objs[i])) != TCA_OK)
			goto out;
	log_debug("token: indexed %zu of %zu private key objects", tok->n_keys, n);
	r = TCA_OK;
 out:
	free(objs);
	return r;
}

/* ------------------------------------------------------------ open/close */

/* Picks the one present token the URI matches. */
static int
select_token(tca_token *tok, const char *uri_str, CK_TOKEN_INFO *ti_ptr,
    char *err, size_t errlen)
{
	P11KitUri *uri = NULL;
	CK_SLOT_ID *slots = NULL, uri_slot;
	CK_ULONG n_slots = 0, i;
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	unsigned int matches = 0, uninit = 0;
	CK_RV rv;
	int rc, r = TCA_ERR_INTERNAL;

	if (uri_str == NULL || *uri_str == '\0') {
		tca_setf(err, errlen, "token.uri is not set");
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if ((uri = p11_kit_uri_new()) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	rc = p11_kit_uri_parse(uri_str, P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_SLOT |
	    P11_KIT_URI_FOR_MODULE, uri);
	if (rc != P11_KIT_URI_OK) {
		/* the URI is not echoed: it might carry a PIN */
		tca_setf(err, errlen, "token.uri is not a valid PKCS#11 URI: %s",
		    p11_kit_uri_message(rc));
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_get_pin_value(uri) != NULL) {
		tca_setf(err, errlen, "token.uri carries a pin-value; remove it and put the PIN "
		    "in a 0600 file (token.pin_file)");
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_any_unrecognized(uri)) {
		tca_setf(err, errlen, "token.uri %s names more than a token (object, id, type "
		    "or unknown attributes); use only token, slot and library attributes",
		    uri_str);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_get_pin_source(uri) != NULL)
		log_warn("token: ignoring pin-source in token.uri; the PIN comes from token.pin_file");
	if (ck_check(tok->fl->C_GetInfo(&info), "C_GetInfo") != CKR_OK) {
		tca_setf(err, errlen, "C_GetInfo failed");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((rv = get_slots(tok->fl, &slots, &n_slots)) != CKR_OK) {
		tca_setf(err, errlen, "C_GetSlotList failed: %s", rv_name(rv));
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	uri_slot = p11_kit_uri_get_slot_id(uri);	/* (CK_SLOT_ID)-1: not given */
	if (p11_kit_uri_match_module_info(uri, &info)) {
		for (i = 0; i < n_slots; i++) {
			if (ck_check(tok->fl->C_GetSlotInfo(slots[i], &si), "C_GetSlotInfo") != CKR_OK ||
			    ck_check(tok->fl->C_GetTokenInfo(slots[i], &ti), "C_GetTokenInfo") != CKR_OK)
				continue;
			/* p11_kit_uri_match_slot_info() does not look at slot-id */
			if ((uri_slot != (CK_SLOT_ID)-1 && uri_slot != slots[i]) ||
			    !p11_kit_uri_match_slot_info(uri, &si) ||
			    !p11_kit_uri_match_token_info(uri, &ti))
				continue;
			/* SoftHSMv2 always shows a blank token; it cannot be ours */
			if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
				uninit++;
				continue;
			}
			if (matches++ == 0) {
				tok->slot = slots[i];
				*ti_ptr = ti;
			}
		}
	}
	if (matches == 0 && uninit > 0) {
		tca_setf(err, errlen, "the only token matching URI %s is not initialized",
		    uri_str);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (matches == 0) {
		tca_setf(err, errlen, "no token matches URI %s (%lu tokens present)", uri_str,
		    (unsigned long)n_slots);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (matches > 1) {
		tca_setf(err, errlen, "%u tokens match URI %s; make it select exactly one "
		    "(add serial=...)", matches, uri_str);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	r = TCA_OK;
 out:
	free(slots);
	if (uri != NULL)
		p11_kit_uri_free(uri);
	return r;
}

static int
login_user(tca_token *tok, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
    char *err, size_t errlen)
{
	CK_RV rv;

	/* the caller's buffer goes straight to the token: no copy to wipe */
	rv = tok->fl->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		tok->logged_in = 1;
		return TCA_OK;
	}
	ck_check(rv, "C_Login(CKU_USER)");
	tca_setf(err, errlen, "login to token \"%s\" failed: %s", tok->label, rv_name(rv));
	return rv_is_pin_error(rv) ? TCA_ERR_UNAUTHORIZED : TCA_ERR_TOKEN_UNAVAILABLE;
}

int
tca_token_open(const struct tca_token_params *params, const char *pin, size_t pin_len,
    tca_token **tok_ptr, char *err, size_t errlen)
{
	tca_token *tok = NULL;
	CK_TOKEN_INFO ti;
	struct session *s = NULL;
	unsigned int n, i;
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (tok_ptr == NULL || params == NULL) {
		tca_setf(err, errlen, "invalid arguments");
		return TCA_ERR_INVALID_ARG;
	}
	*tok_ptr = NULL;
	if (params->pool_size < 1 || params->pool_size > TOKEN_MAX_POOL) {
		tca_setf(err, errlen, "token pool_size must be 1..%d", TOKEN_MAX_POOL);
		return TCA_ERR_CONFIG;
	}
	if (pin == NULL && pin_len != 0) {
		tca_setf(err, errlen, "invalid arguments");
		return TCA_ERR_INVALID_ARG;
	}
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	tok->quirks = params->quirks;
	if (pthread_mutex_init(&tok->pool_lock, NULL) != 0) {
		free(tok);
		tca_setf(err, errlen, "pthread_mutex_init failed");
		return TCA_ERR_SYSTEM;
	}
	if (pthread_cond_init(&tok->pool_cond, NULL) != 0) {
		pthread_mutex_destroy(&tok->pool_lock);
		free(tok);
		tca_setf(err, errlen, "pthread_cond_init failed");
		return TCA_ERR_SYSTEM;
	}
	if (pthread_rwlock_init(&tok->index_lock, NULL) != 0) {
		pthread_cond_destroy(&tok->pool_cond);
		pthread_mutex_destroy(&tok->pool_lock);
		free(tok);
		tca_setf(err, errlen, "pthread_rwlock_init failed");
		return TCA_ERR_SYSTEM;
	}
	if (pthread_mutex_init(&tok->admin_lock, NULL) != 0) {
		pthread_rwlock_destroy(&tok->index_lock);
		pthread_cond_destroy(&tok->pool_cond);
		pthread_mutex_destroy(&tok->pool_lock);
		free(tok);
		tca_setf(err, errlen, "pthread_mutex_init failed");
		return TCA_ERR_SYSTEM;
	}
	tok->locks_ok = 1;
	if (RAND_bytes((unsigned char *)&tok->hash_seed, sizeof(tok->hash_seed)) != 1)
		tok->hash_seed = (uint64_t)(uintptr_t)tok;	/* placement only, not security */
	tok->n_buckets = TOKEN_INDEX_MIN_BUCKETS;
	if ((tok->buckets = calloc(tok->n_buckets, sizeof(*tok->buckets))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = module_load(params->module_path, &tok->fl, err, errlen)) != TCA_OK)
		goto out;
	memset(&ti, 0, sizeof(ti));
	if ((r = select_token(tok, params->token_uri, &ti, err, errlen)) != TCA_OK)
		goto out;
	ck_str(ti.label, sizeof(ti.label), tok->label, sizeof(tok->label));
	ck_str(ti.manufacturerID, sizeof(ti.manufacturerID), tok->manufacturer,
	    sizeof(tok->manufacturer));
	ck_str(ti.model, sizeof(ti.model), tok->model, sizeof(tok->model));
	ck_str(ti.serialNumber, sizeof(ti.serialNumber), tok->serial, sizeof(tok->serial));

	n = params->pool_size;
	if (params->quirks.max_sessions != 0 && n > params->quirks.max_sessions) {
		log_info("token: pool_size %u capped to the profile's max_sessions %lu", n,
		    params->quirks.max_sessions);
		n = (unsigned int)params->quirks.max_sessions;
	}
	if (ti.ulMaxRwSessionCount != CK_EFFECTIVELY_INFINITE &&
	    ti.ulMaxRwSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    n > ti.ulMaxRwSessionCount) {
		log_info("token: pool_size %u capped to the token's %lu read/write sessions", n,
		    (unsigned long)ti.ulMaxRwSessionCount);
		n = (unsigned int)ti.ulMaxRwSessionCount;
	}
	if ((tok->sessions = calloc(n, sizeof(*tok->sessions))) == NULL ||
	    (tok->free_idx = calloc(n, sizeof(*tok->free_idx))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		tok->sessions[i].h = CK_INVALID_HANDLE;
		rv = tok->fl->C_OpenSession(tok->slot, TOKEN_SESSION_FLAGS, NULL, NULL,
		    &tok->sessions[i].h);
		if (ck_check(rv, "C_OpenSession") != CKR_OK) {
			tca_setf(err, errlen, "C_OpenSession on token \"%s\" failed: %s",
			    tok->label, rv_name(rv));
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		tok->n_sessions++;
	}
	/* stack of free sessions; session 0 (the login session) on top */
	for (i = n; i > 0; i--)
		tok->free_idx[tok->n_free++] = i - 1;
	if ((r = login_user(tok, tok->sessions[0].h, pin, pin_len, err, errlen)) != TCA_OK)
		goto out;
	if ((r = pool_borrow(tok, &s)) != TCA_OK) {
		tca_setf(err, errlen, "no usable session on token \"%s\"", tok->label);
		goto out;
	}
	r = index_build(tok, s->h);
	pool_return(tok, s);
	if (r != TCA_OK) {
		tca_setf(err, errlen, "building the key index of token \"%s\" failed (%s)",
		    tok->label, tca_strerror(r));
		goto out;
	}
	log_info("token: \"%s\" (%s %s, serial %s) slot %lu: %u sessions, %zu keys",
	    tok->label, tok->manufacturer, tok->model, tok->serial,
	    (unsigned long)tok->slot, tok->n_sessions, tok->n_keys);
	*tok_ptr = tok;
	tok = NULL;
	r = TCA_OK;
 out:
	tca_token_close(tok);
	return r;
}

void
tca_token_close(tca_token *tok)
{
	unsigned int i;

	if (tok == NULL)
		return;
	if (tok->fl != NULL) {
		for (i = 0; tok->logged_in && i < tok->n_sessions; i++) {
			CK_RV rv;

			if (tok->sessions[i].broken)
				continue;
			rv = tok->fl->C_Logout(tok->sessions[i].h);
			if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
				ck_check(rv, "C_Logout");
			break;
		}
		for (i = 0; i < tok->n_sessions; i++)
			if (tok->sessions[i].h != CK_INVALID_HANDLE)
				(void)ck_check(tok->fl->C_CloseSession(tok->sessions[i].h),
				    "C_CloseSession");
		module_unload(tok->fl);
	}
	free(tok->sessions);
	free(tok->free_idx);
	index_free(tok);
	if (tok->locks_ok) {
		pthread_mutex_destroy(&tok->admin_lock);
		pthread_rwlock_destroy(&tok->index_lock);
		pthread_cond_destroy(&tok->pool_cond);
		pthread_mutex_destroy(&tok->pool_lock);
	}
	free(tok);
}

size_t
tca_token_key_count(tca_token *tok)
{
	size_t n;

	if (tok == NULL)
		return 0;
	pthread_rwlock_rdlock(&tok->index_lock);
	n = tok->n_keys;
	pthread_rwlock_unlock(&tok->index_lock);
	return n;
}

static int
id_ok(const unsigned char *id, size_t id_len)
{
	return id != NULL && id_len > 0 && id_len <= TOKEN_MAX_ID;
}

int
tca_token_find_key(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	if (tok == NULL || !id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	return index_lookup(tok, id, id_len, NULL, type_ptr);
}

/* ------------------------------------------------------------ public keys */

/* The point inside CKA_EC_POINT: a DER OCTET STRING unless ec_point_raw. */
static int
ec_point_content(const tca_token *tok, const unsigned char *p, size_t len,
    const unsigned char **pt_ptr, size_t *pt_len)
{
	size_t hdr, clen;

	if (tok->quirks.ec_point_raw) {
		*pt_ptr = p;
		*pt_len = len;
		return TCA_OK;
	}
	if (len < 2 || p[0] != 0x04)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	if (p[1] < 0x80) {
		hdr = 2;
		clen = p[1];
	} else if (p[1] == 0x81 && len >= 3 && p[2] >= 0x80) {
		hdr = 3;
		clen = p[2];
	} else
		return TCA_ERR_TOKEN_UNAVAILABLE;
	if (hdr + clen != len)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	*pt_ptr = p + hdr;
	*pt_len = clen;
	return TCA_OK;
}

static int
pkey_from_params(const char *keytype, OSSL_PARAM_BLD *bld, EVP_PKEY **pkey_ptr)
{
	EVP_PKEY_CTX *cctx = NULL;
	EVP_PKEY *pkey = NULL;
	int r = TCA_ERR_CRYPTO;

	/* a freshly generated key is also checked as a public key */
	if (tca_pkey_fromdata(keytype, bld, &pkey) != TCA_OK ||
	    (cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(cctx) != 1)
		goto out;
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(cctx);
	return r;
}

/* Builds the EVP_PKEY of a generated key from its public key object. */
static int
read_public_key(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
    enum tca_key_type type, EVP_PKEY **pkey_ptr, CK_RV *rv_ptr)
{
	unsigned char buf[600], e_buf[16];
	const unsigned char *pt = NULL;
	size_t len = 0, pt_len = 0, e_len = 0;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	CK_RV rv = CKR_OK;
	int r = TCA_ERR_INTERNAL;

	*pkey_ptr = NULL;
	if (type == TCA_KEY_RSA_3072) {
		if ((rv = ck_check(get_attr(tok, h, pub, CKA_MODULUS, buf, sizeof(buf), &len),
		    "C_GetAttributeValue(CKA_MODULUS)")) != CKR_OK ||
		    (rv = ck_check(get_attr(tok, h, pub, CKA_PUBLIC_EXPONENT, e_buf, sizeof(e_buf),
		    &e_len), "C_GetAttributeValue(CKA_PUBLIC_EXPONENT)")) != CKR_OK) {
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		r = TCA_ERR_CRYPTO;
		if ((n = BN_bin2bn(buf, (int)len, NULL)) == NULL ||
		    (e = BN_bin2bn(e_buf, (int)e_len, NULL)) == NULL)
			goto out;
		if (BN_num_bits(n) != 3072) {
			log_error("token: generated RSA key has %d bits, not 3072", BN_num_bits(n));
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
		if ((r = pkey_from_params("RSA", bld, &pkey)) != TCA_OK)
			goto out;
	} else {
		if ((rv = ck_check(get_attr(tok, h, pub, CKA_EC_POINT, buf, sizeof(buf), &len),
		    "C_GetAttributeValue(CKA_EC_POINT)")) != CKR_OK) {
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		if ((r = ec_point_content(tok, buf, len, &pt, &pt_len)) != TCA_OK) {
			log_error("token: CKA_EC_POINT (%zu bytes) is not a DER OCTET STRING; "
			    "does the hsm-profile need ec_point_raw = true?", len);
			goto out;
		}
		r = TCA_ERR_CRYPTO;
		if (type == TCA_KEY_ED25519) {
			if (pt_len != 32) {
				log_error("token: Ed25519 public key is %zu bytes, not 32", pt_len);
				r = TCA_ERR_TOKEN_UNAVAILABLE;
				goto out;
			}
			if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt,
			    pt_len)) == NULL)
				goto out;
		} else {
			if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
			    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
			    type == TCA_KEY_EC_P256 ? "prime256v1" : "secp384r1", 0) ||
			    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
			    pt, pt_len))
				goto out;
			if ((r = pkey_from_params("EC", bld, &pkey)) != TCA_OK) {
				log_error("token: CKA_EC_POINT is not a valid point on the curve");
				goto out;
			}
		}
	}
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (rv_ptr != NULL)
		*rv_ptr = rv;
	EVP_PKEY_free(pkey);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

/* ------------------------------------------------------------ generate */

/* Removes a half-made key pair so no orphan stays on the token. */
static void
destroy_pair(tca_token *tok, struct session *s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
    const char *idhex)
{
	CK_OBJECT_HANDLE objs[2];
	CK_RV rv;
	int i, tries;

	objs[0] = priv;
	objs[1] = pub;
	for (i = 0; i < 2; i++) {
		if (objs[i] == CK_INVALID_HANDLE)
			continue;
		for (tries = 0; tries < 2; tries++) {
			rv = tok->fl->C_DestroyObject(s->h, objs[i]);
			if (rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID)
				break;
			ck_check(rv, "C_DestroyObject (cleanup)");
			if (!rv_breaks_session(rv) || tries > 0) {
				log_error("token: could not remove the half-made key pair %s; "
				    "it is an orphan now", idhex);
				break;
			}
			session_failed(tok, s, rv);
		}
	}
}

int
tca_token_generate_key(tca_token *tok, enum tca_key_type type,
    const unsigned char *id, size_t id_len, const char *label, EVP_PKEY **pub_ptr)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ULONG bits = 3072;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub_tmpl[8], priv_tmpl[12];
	CK_ULONG n_pub = 0, n_priv = 0;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	struct session *s = NULL;
	struct key_entry *e = NULL;
	EVP_PKEY *pkey = NULL;
	size_t label_len;
	char hex[2 * 16 + 1];
	CK_RV rv = CKR_OK;
	int admin_locked = 0, r = TCA_ERR_INTERNAL;

#define ATTR(arr, n, ty, p, l) do { \
	(arr)[n].type = (ty); (arr)[n].pValue = (void *)(p); (arr)[n].ulValueLen = (l); (n)++; \
} while (0)

	if (pub_ptr != NULL)
		*pub_ptr = NULL;
	if (tok == NULL || !id_ok(id, id_len) || label == NULL || pub_ptr == NULL ||
	    (label_len = strlen(label)) > TOKEN_MAX_LABEL)
		return TCA_ERR_INVALID_ARG;
	id_hex(id, id_len > 16 ? 16 : id_len, hex, sizeof(hex));
	switch (type) {
	case TCA_KEY_EC_P256:
		ATTR(pub_tmpl, n_pub, CKA_EC_PARAMS, oid_p256, sizeof(oid_p256));
		break;
	case TCA_KEY_EC_P384:
		ATTR(pub_tmpl, n_pub, CKA_EC_PARAMS, oid_p384, sizeof(oid_p384));
		break;
	case TCA_KEY_RSA_3072:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		ATTR(pub_tmpl, n_pub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ATTR(pub_tmpl, n_pub, CKA_PUBLIC_EXPONENT, rsa_f4, sizeof(rsa_f4));
		break;
	case TCA_KEY_ED25519:
		if (tok->quirks.no_ed25519)
			return TCA_ERR_POLICY_VIOLATION;
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		/* the RFC 8410 OID; SoftHSMv2 2.6.1 accepts it as well as the
		 * PrintableString "edwards25519", but stores the latter on the key */
		ATTR(pub_tmpl, n_pub, CKA_EC_PARAMS, oid_ed25519, sizeof(oid_ed25519));
		break;
	default:
		return TCA_ERR_INVALID_ARG;
	}
	ATTR(pub_tmpl, n_pub, CKA_TOKEN, &t, sizeof(t));
	ATTR(pub_tmpl, n_pub, CKA_VERIFY, &t, sizeof(t));
	ATTR(pub_tmpl, n_pub, CKA_ID, id, id_len);
	ATTR(pub_tmpl, n_pub, CKA_LABEL, label, label_len);

	ATTR(priv_tmpl, n_priv, CKA_TOKEN, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_PRIVATE, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_SENSITIVE, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_EXTRACTABLE, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_SIGN, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_DECRYPT, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_UNWRAP, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_DERIVE, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_ID, id, id_len);
	ATTR(priv_tmpl, n_priv, CKA_LABEL, label, label_len);
#undef ATTR

	pthread_mutex_lock(&tok->admin_lock);
	admin_locked = 1;
	if (index_lookup(tok, id, id_len, NULL, NULL) == TCA_OK) {
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	if ((e = entry_new(id, id_len, label, label_len, CK_INVALID_HANDLE, type)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = pool_borrow(tok, &s)) != TCA_OK)
		goto out;
	rv = tok->fl->C_GenerateKeyPair(s->h, &mech, pub_tmpl, n_pub, priv_tmpl, n_priv,
	    &pub, &priv);
	if (ck_check(rv, "C_GenerateKeyPair") != CKR_OK) {
		log_error("token: generating a %s key (id %s) failed", tca_key_type_name(type), hex);
		session_failed(tok, s, rv);
		/* a token that cannot make this kind of key: a policy matter */
		r = (rv == CKR_MECHANISM_INVALID || rv == CKR_CURVE_NOT_SUPPORTED ||
		    rv == CKR_DOMAIN_PARAMS_INVALID) ? TCA_ERR_POLICY_VIOLATION :
		    TCA_ERR_TOKEN_UNAVAILABLE;
		pub = priv = CK_INVALID_HANDLE;
		goto out;
	}
	if ((r = read_public_key(tok, s->h, pub, type, &pkey, &rv)) != TCA_OK) {
		session_failed(tok, s, rv);
		goto out;
	}
	e->handle = priv;
	pthread_rwlock_wrlock(&tok->index_lock);
	r = index_insert_locked(tok, e);
	pthread_rwlock_unlock(&tok->index_lock);
	if (r != TCA_OK)
		goto out;
	e = NULL;
	log_info("token: generated %s key, id %s", tca_key_type_name(type), hex);
	*pub_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK && s != NULL && (pub != CK_INVALID_HANDLE || priv != CK_INVALID_HANDLE))
		destroy_pair(tok, s, pub, priv, hex);
	pool_return(tok, s);
	if (admin_locked)
		pthread_mutex_unlock(&tok->admin_lock);
	EVP_PKEY_free(pkey);
	free(e);
	return r;
}

/* ------------------------------------------------------------ sign */

static void
count_sign(tca_token *tok, int ok)
{
	pthread_mutex_lock(&tok->pool_lock);
	if (ok)
		tok->signatures++;
	else
		tok->sign_errors++;
	pthread_mutex_unlock(&tok->pool_lock);
}

static CK_RV
sign_once(tca_token *tok, CK_SESSION_HANDLE h, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
	CK_MECHANISM mech = { m, NULL, 0 };
	CK_ULONG olen = (CK_ULONG)*out_len;
	CK_RV rv;

	if ((rv = ck_check(tok->fl->C_SignInit(h, &mech, key), "C_SignInit")) != CKR_OK)
		return rv;
	/* C_Sign ends the operation whatever it returns (except BUFFER_TOO_SMALL,
	 * which cannot happen: out holds any signature we accept) */
	rv = ck_check(tok->fl->C_Sign(h, (CK_BYTE_PTR)in, (CK_ULONG)in_len, out, &olen), "C_Sign");
	if (rv == CKR_OK)
		*out_len = olen;
	return rv;
}

/* Signs on a pooled session; one retry on a fresh session if the first one
 * turned out broken. */
static int
sign_pooled(tca_token *tok, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE key,
    const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
	struct session *s = NULL;
	size_t cap = *out_len;
	CK_RV rv = CKR_OK;
	int attempt, r = TCA_ERR_TOKEN_UNAVAILABLE;

	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = pool_borrow(tok, &s)) != TCA_OK) {
			count_sign(tok, 0);
			return r;
		}
		*out_len = cap;
		rv = sign_once(tok, s->h, m, key, in, in_len, out, out_len);
		if (rv == CKR_OK) {
			pool_return(tok, s);
			count_sign(tok, 1);
			return TCA_OK;
		}
		count_sign(tok, 0);
		session_failed(tok, s, rv);
		pool_return(tok, s);
		s = NULL;
		if (!rv_breaks_session(rv))
			break;
		log_warn("token: signature failed on a broken session (%s)%s", rv_name(rv),
		    attempt == 0 ? "; retrying once" : "");
	}
	if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)
		return TCA_ERR_NOT_FOUND;	/* destroyed while we signed */
	if (rv == CKR_USER_NOT_LOGGED_IN)
		log_error("token: the token lost the login; restart the engine");
	return TCA_ERR_TOKEN_UNAVAILABLE;
}

static int
alg_fits(enum tca_sig_alg alg, enum tca_key_type type)
{
	switch (alg) {
	case TCA_SIG_ECDSA_SHA256:
		return type == TCA_KEY_EC_P256;
	case TCA_SIG_ECDSA_SHA384:
		return type == TCA_KEY_EC_P384;
	case TCA_SIG_RSA_PKCS1_SHA256:
		return type == TCA_KEY_RSA_3072;
	case TCA_SIG_ED25519:
		return type == TCA_KEY_ED25519;
	default:
		return 0;
	}
}

/* r||s (each half field_len bytes) -> DER ECDSA-Sig-Value. */
static int
ecdsa_raw_to_der(const unsigned char *raw, size_t field_len, unsigned char *sig,
    size_t *sig_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p;
	int len, r = TCA_ERR_CRYPTO;

	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(raw, (int)field_len, NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + field_len, (int)field_len, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL;		/* owned by es now */
	if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0)
		goto out;
	if ((size_t)len > *sig_len) {
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	p = sig;
	if (i2d_ECDSA_SIG(es, &p) != len)
		goto out;
	*sig_len = (size_t)len;
	r = TCA_OK;
 out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

int
tca_token_sign(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
    unsigned char *sig, size_t *sig_len)
{
	unsigned char in[sizeof(digestinfo_sha256) + EVP_MAX_MD_SIZE];
	unsigned char raw[TOKEN_MAX_SIG];
	unsigned int md_len = 0;
	size_t in_len = 0, raw_len = sizeof(raw), want = 0, field = 0;
	const unsigned char *data = in;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_MECHANISM_TYPE m;
	enum tca_key_type type = TCA_KEY_NONE;
	int r = TCA_ERR_INTERNAL;

	if (tok == NULL || !id_ok(id, id_len) || (msg == NULL && msg_len != 0) ||
	    sig == NULL || sig_len == NULL || msg_len > TCA_TOKEN_MAX_MSG)
		return TCA_ERR_INVALID_ARG;
	if ((r = index_lookup(tok, id, id_len, &key, &type)) != TCA_OK)
		return r;
	if (!alg_fits(alg, type))
		return TCA_ERR_INVALID_ARG;
	switch (alg) {
	case TCA_SIG_ECDSA_SHA256:
	case TCA_SIG_ECDSA_SHA384:
		m = CKM_ECDSA;
		field = alg == TCA_SIG_ECDSA_SHA256 ? 32 : 48;
		want = 2 * field;
		/* largest DER ECDSA-Sig-Value: two INTEGERs with a sign byte */
		if (*sig_len < want + 8) {
			r = TCA_ERR_INVALID_ARG;
			goto out;
		}
		if (EVP_Digest(msg, msg_len, in, &md_len, alg == TCA_SIG_ECDSA_SHA256 ?
		    EVP_sha256() : EVP_sha384(), NULL) != 1) {
			r = TCA_ERR_CRYPTO;
			goto out;
		}
		in_len = md_len;
		break;
	case TCA_SIG_RSA_PKCS1_SHA256:
		m = CKM_RSA_PKCS;
		want = 3072 / 8;
		if (*sig_len < want) {
			r = TCA_ERR_INVALID_ARG;
			goto out;
		}
		memcpy(in, digestinfo_sha256, sizeof(digestinfo_sha256));
		if (EVP_Digest(msg, msg_len, in + sizeof(digestinfo_sha256), &md_len,
		    EVP_sha256(), NULL) != 1 || md_len != 32) {
			r = TCA_ERR_CRYPTO;
			goto out;
		}
		in_len = sizeof(digestinfo_sha256) + md_len;
		break;
	case TCA_SIG_ED25519:
		m = CKM_EDDSA;
		want = 64;
		if (*sig_len < want) {
			r = TCA_ERR_INVALID_ARG;
			goto out;
		}
		data = msg;
		in_len = msg_len;
		break;
	default:
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if ((r = sign_pooled(tok, m, key, data, in_len, raw, &raw_len)) != TCA_OK)
		goto out;
	if (raw_len != want) {
		log_error("token: %s signature is %zu bytes, expected %zu", tca_key_type_name(type),
		    raw_len, want);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (field != 0) {
		r = ecdsa_raw_to_der(raw, field, sig, sig_len);
		goto out;
	}
	memcpy(sig, raw, raw_len);
	*sig_len = raw_len;
	r = TCA_OK;
 out:
	OPENSSL_cleanse(in, sizeof(in));
	return r;
}

/* ------------------------------------------------------------ admin ops */

static int
find_by_id(tca_token *tok, struct session *s, const unsigned char *id, size_t id_len,
    CK_OBJECT_HANDLE **objs_ptr, size_t *n_ptr)
{
	CK_ATTRIBUTE tmpl[1];
	CK_RV rv;

	tmpl[0].type = CKA_ID;
	tmpl[0].pValue = (void *)id;
	tmpl[0].ulValueLen = (CK_ULONG)id_len;
	if ((rv = find_all(tok, s->h, tmpl, 1, objs_ptr, n_ptr)) != CKR_OK) {
		session_failed(tok, s, rv);
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	return TCA_OK;
}

int
tca_token_destroy_key(tca_token *tok, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr)
{
	CK_OBJECT_HANDLE *objs = NULL;
	struct session *s = NULL;
	size_t n = 0, i;
	unsigned long destroyed = 0;
	char hex[2 * 16 + 1];
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (destroyed_ptr != NULL)
		*destroyed_ptr = 0;
	if (tok == NULL || !id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	id_hex(id, id_len > 16 ? 16 : id_len, hex, sizeof(hex));
	pthread_mutex_lock(&tok->admin_lock);
	if ((r = pool_borrow(tok, &s)) != TCA_OK)
		goto out;
	if ((r = find_by_id(tok, s, id, id_len, &objs, &n)) != TCA_OK)
		goto out;
	for (i = 0; i < n; i++) {
		rv = tok->fl->C_DestroyObject(s->h, objs[i]);
		if (rv == CKR_OBJECT_HANDLE_INVALID)
			continue;
		if (ck_check(rv, "C_DestroyObject") != CKR_OK) {
			session_failed(tok, s, rv);
			log_error("token: destroying the objects of id %s stopped after %lu",
			    hex, destroyed);
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		destroyed++;
	}
	r = destroyed > 0 ? TCA_OK : TCA_ERR_NOT_FOUND;
 out:
	/* whatever happened, the key must not be used for signing any more */
	pthread_rwlock_wrlock(&tok->index_lock);
	(void)index_remove_locked(tok, id, id_len);
	pthread_rwlock_unlock(&tok->index_lock);
	pool_return(tok, s);
	pthread_mutex_unlock(&tok->admin_lock);
	if (destroyed > 0)
		log_info("token: destroyed %lu objects with id %s", destroyed, hex);
	if (destroyed_ptr != NULL)
		*destroyed_ptr = destroyed;
	free(objs);
	return r;
}

int
tca_token_count_objects(tca_token *tok, const unsigned char *id, size_t id_len,
    unsigned long *count_ptr)
{
	CK_OBJECT_HANDLE *objs = NULL;
	struct session *s = NULL;
	size_t n = 0;
	int r = TCA_ERR_INTERNAL;

	if (count_ptr != NULL)
		*count_ptr = 0;
	if (tok == NULL || !id_ok(id, id_len) || count_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = pool_borrow(tok, &s)) != TCA_OK)
		goto out;
	if ((r = find_by_id(tok, s, id, id_len, &objs, &n)) != TCA_OK)
		goto out;
	*count_ptr = (unsigned long)n;
	r = TCA_OK;
 out:
	pool_return(tok, s);
	free(objs);
	return r;
}

/* 1 if the token hands out the value of attribute type of obj. */
static int
attr_readable(tca_token *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type)
{
	unsigned char *buf = NULL;
	CK_ATTRIBUTE a;
	CK_ULONG len;
	int readable = 0;

	a.type = type;
	a.pValue = NULL;
	a.ulValueLen = 0;
	/* CKR_ATTRIBUTE_SENSITIVE / TYPE_INVALID: not readable */
	if (tok->fl->C_GetAttributeValue(h, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 ||
	    a.ulValueLen > 8192)
		return 0;
	len = a.ulValueLen;
	if ((buf = malloc(len)) == NULL)
		return 0;
	a.pValue = buf;
	if (tok->fl->C_GetAttributeValue(h, obj, &a, 1) == CKR_OK &&
	    a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > 0 && a.ulValueLen <= len)
		readable = 1;
	OPENSSL_cleanse(buf, len);
	free(buf);
	return readable;
}

int
tca_token_key_attrs(tca_token *tok, const unsigned char *id, size_t id_len,
    struct tca_key_attrs *attrs)
{
	static const CK_ATTRIBUTE_TYPE secret_parts[] = {
		CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
	};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	struct session *s = NULL;
	struct {
		CK_ATTRIBUTE_TYPE type;
		int *out;
	} bools[7];
	size_t i;
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (tok == NULL || !id_ok(id, id_len) || attrs == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(attrs, 0, sizeof(*attrs));
	if ((r = index_lookup(tok, id, id_len, &key, NULL)) != TCA_OK)
		return r;
	bools[0].type = CKA_TOKEN;		bools[0].out = &attrs->token;
	bools[1].type = CKA_PRIVATE;		bools[1].out = &attrs->private_;
	bools[2].type = CKA_SENSITIVE;		bools[2].out = &attrs->sensitive;
	bools[3].type = CKA_EXTRACTABLE;	bools[3].out = &attrs->extractable;
	bools[4].type = CKA_SIGN;		bools[4].out = &attrs->sign;
	bools[5].type = CKA_ALWAYS_SENSITIVE;	bools[5].out = &attrs->always_sensitive;
	bools[6].type = CKA_NEVER_EXTRACTABLE;	bools[6].out = &attrs->never_extractable;
	if ((r = pool_borrow(tok, &s)) != TCA_OK)
		goto out;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		/* one at a time: a token lacking one attribute fails the whole call */
		rv = get_bool_attr(tok, s->h, key, bools[i].type, bools[i].out);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
			continue;
		if (ck_check(rv, "C_GetAttributeValue (key attributes)") != CKR_OK) {
			session_failed(tok, s, rv);
			r = rv == CKR_OBJECT_HANDLE_INVALID ? TCA_ERR_NOT_FOUND :
			    TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
	}
	for (i = 0; i < sizeof(secret_parts) / sizeof(secret_parts[0]); i++)
		if (attr_readable(tok, s->h, key, secret_parts[i]))
			attrs->value_readable = 1;
	r = TCA_OK;
 out:
	pool_return(tok, s);
	return r;
}

int
tca_token_foreach_key(tca_token *tok, tca_token_key_cb cb, void *ctx)
{
	struct key_entry *e;
	size_t i;
	int r = TCA_OK;

	if (tok == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_rwlock_rdlock(&tok->index_lock);
	for (i = 0; i < tok->n_buckets && r == 0; i++)
		for (e = tok->buckets[i]; e != NULL && r == 0; e = e->next)
			r = cb(ctx, e->id, e->id_len, e->label, e->type);
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

int
tca_token_get_status(tca_token *tok, struct tca_token_status *st)
{
	CK_TOKEN_INFO ti;

	if (tok == NULL || st == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(st, 0, sizeof(*st));
	memset(&ti, 0, sizeof(ti));
	if (ck_check(tok->fl->C_GetTokenInfo(tok->slot, &ti), "C_GetTokenInfo") != CKR_OK)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	ck_str(ti.label, sizeof(ti.label), st->label, sizeof(st->label));
	ck_str(ti.manufacturerID, sizeof(ti.manufacturerID), st->manufacturer,
	    sizeof(st->manufacturer));
	ck_str(ti.model, sizeof(ti.model), st->model, sizeof(st->model));
	ck_str(ti.serialNumber, sizeof(ti.serialNumber), st->serial, sizeof(st->serial));
	st->slot_id = (unsigned long)tok->slot;
	pthread_mutex_lock(&tok->pool_lock);
	st->pool_size = tok->n_sessions;
	st->sessions_busy = tok->n_sessions - tok->n_free;
	st->signatures = tok->signatures;
	st->sign_errors = tok->sign_errors;
	pthread_mutex_unlock(&tok->pool_lock);
	st->keys = tca_token_key_count(tok);
	return TCA_OK;
}

/* ------------------------------------------------------------ token init */

int
tca_token_init(const char *module_path, const char *label,
    const char *so_pin, size_t so_pin_len,
    const char *user_pin, size_t user_pin_len,
    unsigned long *slot_ptr, char *err, size_t errlen)
{
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_SLOT_ID *slots = NULL, chosen = 0;
	CK_ULONG n_slots = 0, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_UTF8CHAR padded[32];
	char tlabel[33], serial[17], tserial[17];
	size_t label_len;
	int found = 0, so_logged_in = 0;
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (slot_ptr != NULL)
		*slot_ptr = 0;
	if (label == NULL || (label_len = strlen(label)) == 0 || label_len > 32) {
		tca_setf(err, errlen, "token label must be 1..32 bytes");
		return TCA_ERR_INVALID_ARG;
	}
	if (so_pin == NULL || so_pin_len == 0 || user_pin == NULL || user_pin_len == 0) {
		tca_setf(err, errlen, "SO PIN and user PIN are required");
		return TCA_ERR_INVALID_ARG;
	}
	if ((r = module_load(module_path, &fl, err, errlen)) != TCA_OK)
		return r;
	if ((rv = get_slots(fl, &slots, &n_slots)) != CKR_OK) {
		tca_setf(err, errlen, "C_GetSlotList failed: %s", rv_name(rv));
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < n_slots; i++) {
		if (ck_check(fl->C_GetTokenInfo(slots[i], &ti), "C_GetTokenInfo") != CKR_OK)
			continue;
		if (ti.flags & CKF_TOKEN_INITIALIZED) {
			ck_str(ti.label, sizeof(ti.label), tlabel, sizeof(tlabel));
			if (strcmp(tlabel, label) == 0) {
				tca_setf(err, errlen, "a token labelled \"%s\" is already "
				    "initialized (slot %lu)", label, (unsigned long)slots[i]);
				r = TCA_ERR_ALREADY_EXISTS;
				goto out;
			}
		} else if (!found) {
			chosen = slots[i];
			found = 1;
		}
	}
	if (!found) {
		tca_setf(err, errlen, "no slot with an uninitialized token in %s", module_path);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, label_len);
	rv = fl->C_InitToken(chosen, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)so_pin_len, padded);
	if (ck_check(rv, "C_InitToken") != CKR_OK) {
		tca_setf(err, errlen, "C_InitToken in slot %lu failed: %s", (unsigned long)chosen,
		    rv_name(rv));
		r = rv_is_pin_error(rv) ? TCA_ERR_UNAUTHORIZED : TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((rv = ck_check(fl->C_OpenSession(chosen, TOKEN_SESSION_FLAGS, NULL, NULL, &h),
	    "C_OpenSession")) != CKR_OK ||
	    (rv = ck_check(fl->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)so_pin_len),
	    "C_Login(CKU_SO)")) != CKR_OK) {
		tca_setf(err, errlen, "SO login to the new token failed: %s", rv_name(rv));
		r = rv_is_pin_error(rv) ? TCA_ERR_UNAUTHORIZED : TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	so_logged_in = 1;
	rv = fl->C_InitPIN(h, (CK_UTF8CHAR_PTR)user_pin, (CK_ULONG)user_pin_len);
	if (ck_check(rv, "C_InitPIN") != CKR_OK) {
		tca_setf(err, errlen, "setting the user PIN failed: %s", rv_name(rv));
		r = (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) ? TCA_ERR_CONFIG :
		    TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	memset(&ti, 0, sizeof(ti));
	if (ck_check(fl->C_GetTokenInfo(chosen, &ti), "C_GetTokenInfo") != CKR_OK) {
		tca_setf(err, errlen, "C_GetTokenInfo on the new token failed");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	ck_str(ti.serialNumber, sizeof(ti.serialNumber), serial, sizeof(serial));
	r = TCA_OK;
 out:
	if (so_logged_in)
		(void)ck_check(fl->C_Logout(h), "C_Logout");
	if (h != CK_INVALID_HANDLE)
		(void)ck_check(fl->C_CloseSession(h), "C_CloseSession");
	if (r == TCA_OK) {
		/*
		 * SoftHSMv2 derives slot ids from token serials when the library
		 * is initialized, so the new token's lasting slot id shows only
		 * after a fresh C_Initialize (which happens here unless another
		 * token of this module is open in the process).
		 */
		module_unload(fl);
		fl = NULL;
		free(slots);
		slots = NULL;
		if (module_load(module_path, &fl, NULL, 0) == TCA_OK &&
		    get_slots(fl, &slots, &n_slots) == CKR_OK) {
			for (i = 0; i < n_slots; i++) {
				if (fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
				    !(ti.flags & CKF_TOKEN_INITIALIZED))
					continue;
				ck_str(ti.serialNumber, sizeof(ti.serialNumber), tserial,
				    sizeof(tserial));
				ck_str(ti.label, sizeof(ti.label), tlabel, sizeof(tlabel));
				if (strcmp(tserial, serial) == 0 && strcmp(tlabel, label) == 0) {
					chosen = slots[i];
					break;
				}
			}
		}
		if (slot_ptr != NULL)
			*slot_ptr = (unsigned long)chosen;
		log_info("token: initialized token \"%s\" (serial %s) in slot %lu", label,
		    serial, (unsigned long)chosen);
	}
	free(slots);
	module_unload(fl);
	return r;
}
