/*
 * p11.h - the lowest part of the token layer: one PKCS#11 module.
 *
 * Internal to the token layer (engine/token*.c, engine/p11.c) and
 * engine/hsm-check.c, which probes a token below the token layer's API:
 * nothing else includes pkcs11.h, and CK_RV never leaves these files.
 *
 * - Every C_* call of the token layer goes through P11_CALL (or
 *   P11_CALL_QUIET for calls whose failure is an expected answer), which logs a
 *   failure with the function's name and the CK_RV's name and records it as the
 *   module's last error.  tca_p11_classify() says what a CK_RV means for the
 *   caller: carry on, replace the session, log in again, refresh key handles,
 *   re-initialise the module, or give up without retrying (PIN, template,
 *   mechanism).
 * - A PKCS#11 library is initialised once per process (a second C_Initialize
 *   fails and one C_Finalize ends it for every user), so modules are counted in
 *   a registry keyed by the library's C_Initialize.  Init arguments (the
 *   pReserved string some modules need, e.g. NSS softokn's configdir) are
 *   passed to C_Initialize.
 * - The attribute helpers read bounded values: no length from the token is
 *   used before it is checked against the caller's buffer.
 *
 * The p11-kit headers come first on purpose: in its compatibility mode
 * pkcs11.h #defines GNU-style member names (slot_id, value, count, ...) to the
 * standard ones, which renames struct tca_token_status.slot_id consistently in
 * every file that includes this header; the layout is unchanged.
 */
#ifndef TCA_P11_H
#define TCA_P11_H

#include <p11-kit/pkcs11.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct tca_p11 {
	CK_FUNCTION_LIST_PTR fl;
	char *path;
	char *init_args;		/* pReserved string, or NULL */
	pthread_mutex_t lock;		/* the fields below */
	CK_RV last_rv;			/* last failure that was not an expected answer */
	const char *last_fn;		/* a string literal */
	int64_t last_time;		/* Unix time of it */
	unsigned long long failures;
};

/* What a CK_RV means to the caller. */
enum tca_p11_action {
	TCA_P11_OK = 0,
	TCA_P11_NEW_SESSION,	/* the session is dead: replace it, retry */
	TCA_P11_LOGIN,		/* the application lost its login: log in again, retry */
	TCA_P11_HANDLES,	/* object handle stale: find the key again, retry */
	TCA_P11_REINIT,		/* the module or token is gone: re-initialise with backoff */
	TCA_P11_PIN,		/* the PIN was refused: never retried automatically */
	TCA_P11_CONFIG,		/* template, mechanism, arguments: never retried */
	TCA_P11_FULL,		/* no room for another object or session */
	TCA_P11_FAILED,		/* the operation failed; nothing to recover */
};

/* Name of a CK_RV ("CKR_DEVICE_ERROR", or "CKR_0x..." for unknown values). */
const char *tca_p11_rv_name(CK_RV rv);

/* Name of a CKM_ value ("CKM_ECDSA", or "CKM_0x..." in a thread-local
 * buffer that the next call for an unnamed value overwrites). */
const char *tca_p11_mech_name(CK_MECHANISM_TYPE m);

/* Parses a CKM_ name or number; 0 and *m set, or -1. */
int tca_p11_mech_from_name(const char *name, CK_MECHANISM_TYPE *m);

/* Parses a CKR_ name or number; 0 and *rv set, or -1. */
int tca_p11_rv_from_name(const char *name, CK_RV *rv);

enum tca_p11_action tca_p11_classify(CK_RV rv);
const char *tca_p11_action_name(enum tca_p11_action a);

/* The TCA_ERR_* a failure of this kind is reported as when nothing more can
 * be done: TOKEN_UNAVAILABLE (outage), UNAUTHORIZED (PIN), TOKEN_REFUSED
 * (configuration), TOKEN_FULL. */
int tca_p11_error(CK_RV rv);

#define P11_LOG_ERROR	0
#define P11_LOG_DEBUG	1	/* an expected answer (attribute absent, ...) */

/* Records and logs the result of C_<fn>; returns rv unchanged. */
CK_RV tca_p11_result(struct tca_p11 *m, const char *fn, int level, CK_RV rv);

#define P11_CALL(m, fn, ...) \
	tca_p11_result((m), #fn, P11_LOG_ERROR, (m)->fl->fn(__VA_ARGS__))
#define P11_CALL_QUIET(m, fn, ...) \
	tca_p11_result((m), #fn, P11_LOG_DEBUG, (m)->fl->fn(__VA_ARGS__))

/*
 * Loads path (unmanaged: no p11-kit wrapping), initialises it with
 * CKF_OS_LOCKING_OK and init_args (may be NULL) as pReserved, and returns a
 * handle the caller frees with tca_p11_unload().  On failure a one-line reason
 * in err: TCA_ERR_CONFIG (no path), TCA_ERR_TOKEN_UNAVAILABLE (load or
 * C_Initialize failed; CKR_HOST_MEMORY and CKR_ARGUMENTS_BAD carry a hint).
 */
int tca_p11_load(const char *path, const char *init_args, struct tca_p11 **m_ptr,
    char *err, size_t errlen);

/* Finalises the module if this was its last user, frees m.  NULL ok. */
void tca_p11_unload(struct tca_p11 *m);

/*
 * C_Finalize then C_Initialize, whoever else uses the module in this process:
 * every session and handle of the module is dead afterwards.  For the session
 * supervisor's recovery; the caller makes sure no call is under way.
 */
int tca_p11_reinit(struct tca_p11 *m, char *err, size_t errlen);

/* Slots with a token present; *slots_ptr malloc'ed (caller frees). */
CK_RV tca_p11_slots(struct tca_p11 *m, CK_SLOT_ID **slots_ptr, CK_ULONG *n_ptr);

/* Copies a blank- or NUL-padded PKCS#11 string field, trimmed, NUL-terminated. */
void tca_p11_str(const CK_UTF8CHAR *in, size_t inlen, char *out, size_t outsz);

/* Lower-case hex of the first bytes of id, for logs. */
void tca_p11_id_hex(const unsigned char *id, size_t id_len, char *out, size_t outsz);

/* Reads a variable-length attribute into buf.  CKR_OK and *len_ptr, or the
 * CK_RV (CKR_BUFFER_TOO_SMALL if it does not fit).  Quiet: the caller decides
 * whether a missing attribute is an error. */
CK_RV tca_p11_get_attr(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type, void *buf, size_t bufsz, size_t *len_ptr);
CK_RV tca_p11_get_bool(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type, int *out);

/* Handles of every object matching tmpl; *objs_ptr malloc'ed (caller frees). */
CK_RV tca_p11_find_all(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl,
    CK_ULONG n_tmpl, CK_OBJECT_HANDLE **objs_ptr, size_t *n_ptr);

struct tca_key_desc;

/* The point inside a CKA_EC_POINT value of a kd key: a DER OCTET STRING (as
 * PKCS#11 says) or the bare point (as some tokens return it), told apart by
 * length.  TCA_OK with *pt_ptr pointing into p, or TCA_ERR_TOKEN_UNAVAILABLE. */
int tca_p11_ec_point(const struct tca_key_desc *kd, const unsigned char *p, size_t len,
    const unsigned char **pt_ptr, size_t *pt_len);

/* Milliseconds on the monotonic clock. */
int64_t tca_p11_now_ms(void);

/* The module's last recorded failure (fn "" if none). */
void tca_p11_last_error(struct tca_p11 *m, char *fn, size_t fnsz, CK_RV *rv_ptr,
    int64_t *time_ptr, unsigned long long *failures_ptr);

#endif
