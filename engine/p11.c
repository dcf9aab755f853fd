/* p11.c - one PKCS#11 module: loading, the call wrapper, attributes (see p11.h). */
#include "config.h"

#include "p11.h"

#include <p11-kit/p11-kit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "text.h"

#define P11_FIND_BATCH	256	/* handles per C_FindObjects call */
#define P11_MAX_SLOTS	4096

/* ------------------------------------------------------------ names */

#define NAMED(x) { x, #x }
static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	NAMED(CKR_OK), NAMED(CKR_CANCEL), NAMED(CKR_HOST_MEMORY), NAMED(CKR_SLOT_ID_INVALID),
	NAMED(CKR_GENERAL_ERROR), NAMED(CKR_FUNCTION_FAILED), NAMED(CKR_ARGUMENTS_BAD),
	NAMED(CKR_NO_EVENT), NAMED(CKR_NEED_TO_CREATE_THREADS), NAMED(CKR_CANT_LOCK),
	NAMED(CKR_ATTRIBUTE_READ_ONLY), NAMED(CKR_ATTRIBUTE_SENSITIVE),
	NAMED(CKR_ATTRIBUTE_TYPE_INVALID), NAMED(CKR_ATTRIBUTE_VALUE_INVALID),
	NAMED(CKR_DATA_INVALID), NAMED(CKR_DATA_LEN_RANGE), NAMED(CKR_DEVICE_ERROR),
	NAMED(CKR_DEVICE_MEMORY), NAMED(CKR_DEVICE_REMOVED), NAMED(CKR_FUNCTION_CANCELED),
	NAMED(CKR_FUNCTION_NOT_PARALLEL), NAMED(CKR_FUNCTION_NOT_SUPPORTED),
	NAMED(CKR_KEY_HANDLE_INVALID), NAMED(CKR_KEY_SIZE_RANGE), NAMED(CKR_KEY_TYPE_INCONSISTENT),
	NAMED(CKR_KEY_FUNCTION_NOT_PERMITTED), NAMED(CKR_MECHANISM_INVALID),
	NAMED(CKR_MECHANISM_PARAM_INVALID), NAMED(CKR_OBJECT_HANDLE_INVALID),
	NAMED(CKR_OPERATION_ACTIVE), NAMED(CKR_OPERATION_NOT_INITIALIZED),
	NAMED(CKR_PIN_INCORRECT), NAMED(CKR_PIN_INVALID), NAMED(CKR_PIN_LEN_RANGE),
	NAMED(CKR_PIN_EXPIRED), NAMED(CKR_PIN_LOCKED), NAMED(CKR_SESSION_CLOSED),
	NAMED(CKR_SESSION_COUNT), NAMED(CKR_SESSION_HANDLE_INVALID),
	NAMED(CKR_SESSION_PARALLEL_NOT_SUPPORTED), NAMED(CKR_SESSION_READ_ONLY),
	NAMED(CKR_SESSION_EXISTS), NAMED(CKR_SESSION_READ_ONLY_EXISTS),
	NAMED(CKR_SESSION_READ_WRITE_SO_EXISTS), NAMED(CKR_SIGNATURE_INVALID),
	NAMED(CKR_SIGNATURE_LEN_RANGE), NAMED(CKR_TEMPLATE_INCOMPLETE),
	NAMED(CKR_TEMPLATE_INCONSISTENT), NAMED(CKR_TOKEN_NOT_PRESENT),
	NAMED(CKR_TOKEN_NOT_RECOGNIZED), NAMED(CKR_TOKEN_WRITE_PROTECTED),
	NAMED(CKR_USER_ALREADY_LOGGED_IN), NAMED(CKR_USER_NOT_LOGGED_IN),
	NAMED(CKR_USER_PIN_NOT_INITIALIZED), NAMED(CKR_USER_TYPE_INVALID),
	NAMED(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), NAMED(CKR_USER_TOO_MANY_TYPES),
	NAMED(CKR_DOMAIN_PARAMS_INVALID), NAMED(CKR_CURVE_NOT_SUPPORTED),
	NAMED(CKR_BUFFER_TOO_SMALL), NAMED(CKR_RANDOM_NO_RNG),
	NAMED(CKR_CRYPTOKI_NOT_INITIALIZED), NAMED(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	NAMED(CKR_MUTEX_BAD), NAMED(CKR_MUTEX_NOT_LOCKED),
	NAMED(CKR_FUNCTION_REJECTED), NAMED(CKR_PIN_TOO_WEAK), NAMED(CKR_ACTION_PROHIBITED),
};

static const struct {
	CK_MECHANISM_TYPE m;
	const char *name;
} mech_names[] = {
	NAMED(CKM_RSA_PKCS_KEY_PAIR_GEN), NAMED(CKM_RSA_PKCS), NAMED(CKM_RSA_X_509),
	NAMED(CKM_SHA256_RSA_PKCS), NAMED(CKM_SHA384_RSA_PKCS), NAMED(CKM_SHA512_RSA_PKCS),
	NAMED(CKM_RSA_PKCS_PSS), NAMED(CKM_SHA256_RSA_PKCS_PSS),
	NAMED(CKM_EC_KEY_PAIR_GEN), NAMED(CKM_ECDSA), NAMED(CKM_ECDSA_SHA1),
	NAMED(CKM_ECDSA_SHA256), NAMED(CKM_ECDSA_SHA384), NAMED(CKM_ECDSA_SHA512),
	NAMED(CKM_EC_EDWARDS_KEY_PAIR_GEN), NAMED(CKM_EDDSA),
	NAMED(CKM_SHA256), NAMED(CKM_SHA384), NAMED(CKM_SHA512),
};
#undef NAMED

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *
tca_p11_rv_name(CK_RV rv)
{
	static __thread char buf[32];
	size_t i;

	for (i = 0; i < N_ELEMS(rv_names); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "CKR_0x%08lx", (unsigned long)rv);
	return buf;
}

const char *
tca_p11_mech_name(CK_MECHANISM_TYPE m)
{
	static __thread char buf[32];
	size_t i;

	for (i = 0; i < N_ELEMS(mech_names); i++)
		if (mech_names[i].m == m)
			return mech_names[i].name;
	snprintf(buf, sizeof(buf), "CKM_0x%08lx", (unsigned long)m);
	return buf;
}

/* A number in C syntax (0x...), whole string, fitting an unsigned long. */
static int
parse_number(const char *s, unsigned long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (end == s || *end != '\0' || v > (unsigned long long)(unsigned long)-1)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

int
tca_p11_mech_from_name(const char *name, CK_MECHANISM_TYPE *m)
{
	unsigned long v;
	size_t i;

	for (i = 0; name != NULL && i < N_ELEMS(mech_names); i++) {
		if (strcmp(mech_names[i].name, name) == 0) {
			*m = mech_names[i].m;
			return 0;
		}
	}
	if (parse_number(name, &v) != 0)
		return -1;
	*m = v;
	return 0;
}

int
tca_p11_rv_from_name(const char *name, CK_RV *rv)
{
	unsigned long v;
	size_t i;

	for (i = 0; name != NULL && i < N_ELEMS(rv_names); i++) {
		if (strcmp(rv_names[i].name, name) == 0) {
			*rv = rv_names[i].rv;
			return 0;
		}
	}
	if (parse_number(name, &v) != 0)
		return -1;
	*rv = v;
	return 0;
}

/* ------------------------------------------------------------ classification */

enum tca_p11_action
tca_p11_classify(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return TCA_P11_OK;
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_OPERATION_ACTIVE:
	case CKR_OPERATION_NOT_INITIALIZED:
		return TCA_P11_NEW_SESSION;
	case CKR_USER_NOT_LOGGED_IN:
		return TCA_P11_LOGIN;
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return TCA_P11_HANDLES;
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_SLOT_ID_INVALID:
	case CKR_GENERAL_ERROR:
		return TCA_P11_REINIT;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_PIN_TOO_WEAK:		/* Utimaco: an initial PIN not yet changed */
	case CKR_USER_PIN_NOT_INITIALIZED:
		return TCA_P11_PIN;
	case CKR_ARGUMENTS_BAD:
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_SIZE_RANGE:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_DOMAIN_PARAMS_INVALID:
	case CKR_FUNCTION_NOT_SUPPORTED:
	case CKR_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
	case CKR_TOKEN_WRITE_PROTECTED:
	case CKR_SESSION_READ_ONLY:
	case CKR_USER_TYPE_INVALID:
	case CKR_ACTION_PROHIBITED:
		return TCA_P11_CONFIG;
	case CKR_DEVICE_MEMORY:
	case CKR_HOST_MEMORY:
	case CKR_SESSION_COUNT:
		return TCA_P11_FULL;
	default:
		return TCA_P11_FAILED;
	}
}

const char *
tca_p11_action_name(enum tca_p11_action a)
{
	switch (a) {
	case TCA_P11_OK:
		return "ok";
	case TCA_P11_NEW_SESSION:
		return "replace-session";
	case TCA_P11_LOGIN:
		return "login";
	case TCA_P11_HANDLES:
		return "refresh-handles";
	case TCA_P11_REINIT:
		return "reinitialize";
	case TCA_P11_PIN:
		return "pin-refused";
	case TCA_P11_CONFIG:
		return "configuration";
	case TCA_P11_FULL:
		return "full";
	default:
		return "failed";
	}
}

int
tca_p11_error(CK_RV rv)
{
	switch (tca_p11_classify(rv)) {
	case TCA_P11_OK:
		return TCA_OK;
	case TCA_P11_PIN:
		return TCA_ERR_UNAUTHORIZED;
	case TCA_P11_CONFIG:
		return TCA_ERR_TOKEN_REFUSED;
	case TCA_P11_FULL:
		return TCA_ERR_TOKEN_FULL;
	default:
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
}

CK_RV
tca_p11_result(struct tca_p11 *m, const char *fn, int level, CK_RV rv)
{
	if (rv == CKR_OK)
		return rv;
	if (level == P11_LOG_DEBUG) {
		log_debug("token: %s: %s", fn, tca_p11_rv_name(rv));
		return rv;
	}
	log_error("token: %s failed: %s", fn, tca_p11_rv_name(rv));
	if (m != NULL) {
		pthread_mutex_lock(&m->lock);
		m->last_rv = rv;
		m->last_fn = fn;
		m->last_time = (int64_t)time(NULL);
		m->failures++;
		pthread_mutex_unlock(&m->lock);
	}
	return rv;
}

int64_t
tca_p11_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tca_p11_last_error(struct tca_p11 *m, char *fn, size_t fnsz, CK_RV *rv_ptr,
    int64_t *time_ptr, unsigned long long *failures_ptr)
{
	pthread_mutex_lock(&m->lock);
	snprintf(fn, fnsz, "%s", m->last_fn != NULL ? m->last_fn : "");
	*rv_ptr = m->last_rv;
	*time_ptr = m->last_time;
	*failures_ptr = m->failures;
	pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------ registry */

#define MAX_MODULES 8
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	CK_C_Initialize init_fn;
	unsigned int refs;
	int foreign;		/* initialized by someone else: never finalize */
} mod_refs[MAX_MODULES];

static CK_RV
module_initialize(struct tca_p11 *m)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	/* PKCS#11 2.40 5.4: pReserved must be NULL, but NSS softokn reads its
	 * LibraryParameters ("configdir='sql:...' ...") from there */
	args.pReserved = m->init_args;
	return m->fl->C_Initialize(&args);
}

/* A hint for C_Initialize failures whose cause is outside the engine. */
static const char *
init_hint(CK_RV rv)
{
	switch (rv) {
	case CKR_HOST_MEMORY:
		return " (openCryptoki says this when pkcsslotd is not running)";
	case CKR_ARGUMENTS_BAD:
		return " (does the module need init arguments? hsm-profile init_args, "
		    "token.init_args)";
	default:
		return "";
	}
}

int
tca_p11_load(const char *path, const char *init_args, struct tca_p11 **m_ptr,
    char *err, size_t errlen)
{
	struct tca_p11 *m = NULL;
	size_t i, slot = MAX_MODULES;
	CK_RV rv;
	int locked = 0, r = TCA_ERR_TOKEN_UNAVAILABLE;

	*m_ptr = NULL;
	if (path == NULL || *path == '\0') {
		tca_setf(err, errlen, "no PKCS#11 module configured");
		return TCA_ERR_CONFIG;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->path = strdup(path)) == NULL ||
	    (init_args != NULL && *init_args != '\0' &&
	    (m->init_args = strdup(init_args)) == NULL)) {
		tca_setf(err, errlen, "out of memory");
		if (m != NULL)
			free(m->path);
		free(m);
		return TCA_ERR_NOMEM;
	}
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m->init_args);
		free(m->path);
		free(m);
		tca_setf(err, errlen, "pthread_mutex_init failed");
		return TCA_ERR_SYSTEM;
	}
	/* unmanaged: no p11-kit RPC/wrapping layer, we initialize it ourselves */
	if ((m->fl = p11_kit_module_load(path, P11_KIT_MODULE_UNMANAGED)) == NULL) {
		tca_setf(err, errlen, "cannot load PKCS#11 module %s: %s", path,
		    p11_kit_message() != NULL ? p11_kit_message() : "unknown error");
		log_error("token: %s", err != NULL ? err : "module load failed");
		goto out;
	}
	pthread_mutex_lock(&mod_lock);
	locked = 1;
	for (i = 0; i < MAX_MODULES; i++) {
		if (mod_refs[i].refs > 0 && mod_refs[i].init_fn == m->fl->C_Initialize) {
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
	rv = module_initialize(m);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		tca_p11_result(m, "C_Initialize", P11_LOG_ERROR, rv);
		tca_setf(err, errlen, "C_Initialize of %s failed: %s%s", path,
		    tca_p11_rv_name(rv), init_hint(rv));
		goto out;
	}
	mod_refs[slot].init_fn = m->fl->C_Initialize;
	mod_refs[slot].refs = 1;
	mod_refs[slot].foreign = rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	r = TCA_OK;
 out:
	if (locked)
		pthread_mutex_unlock(&mod_lock);
	if (r != TCA_OK) {
		if (m->fl != NULL)
			p11_kit_module_release(m->fl);
		m->fl = NULL;
		tca_p11_unload(m);
	} else
		*m_ptr = m;
	return r;
}

void
tca_p11_unload(struct tca_p11 *m)
{
	size_t i;

	if (m == NULL)
		return;
	if (m->fl != NULL) {
		pthread_mutex_lock(&mod_lock);
		for (i = 0; i < MAX_MODULES; i++) {
			if (mod_refs[i].refs > 0 && mod_refs[i].init_fn == m->fl->C_Initialize) {
				if (--mod_refs[i].refs == 0 && !mod_refs[i].foreign)
					(void)P11_CALL(m, C_Finalize, NULL);
				break;
			}
		}
		pthread_mutex_unlock(&mod_lock);
		p11_kit_module_release(m->fl);
	}
	pthread_mutex_destroy(&m->lock);
	free(m->init_args);
	free(m->path);
	free(m);
}

int
tca_p11_reinit(struct tca_p11 *m, char *err, size_t errlen)
{
	CK_RV rv;

	pthread_mutex_lock(&mod_lock);
	rv = P11_CALL_QUIET(m, C_Finalize, NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_NOT_INITIALIZED)
		log_warn("token: C_Finalize before re-initialising: %s", tca_p11_rv_name(rv));
	rv = module_initialize(m);
	pthread_mutex_unlock(&mod_lock);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		tca_p11_result(m, "C_Initialize", P11_LOG_ERROR, rv);
		tca_setf(err, errlen, "C_Initialize of %s failed: %s%s", m->path,
		    tca_p11_rv_name(rv), init_hint(rv));
		return tca_p11_error(rv) == TCA_ERR_TOKEN_REFUSED ? TCA_ERR_CONFIG :
		    TCA_ERR_TOKEN_UNAVAILABLE;
	}
	return TCA_OK;
}

CK_RV
tca_p11_slots(struct tca_p11 *m, CK_SLOT_ID **slots_ptr, CK_ULONG *n_ptr)
{
	CK_SLOT_ID *slots = NULL, *tmp;
	CK_ULONG n = 0;
	CK_RV rv = CKR_OK;
	int tries;

	*slots_ptr = NULL;
	*n_ptr = 0;
	for (tries = 0; tries < 4; tries++) {
		if ((rv = P11_CALL(m, C_GetSlotList, CK_TRUE, NULL, &n)) != CKR_OK)
			break;
		if (n == 0)
			break;
		if (n > P11_MAX_SLOTS) {
			rv = CKR_GENERAL_ERROR;
			break;
		}
		if ((tmp = realloc(slots, n * sizeof(*slots))) == NULL) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		slots = tmp;
		rv = P11_CALL_QUIET(m, C_GetSlotList, CK_TRUE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		free(slots);
		return rv;
	}
	*slots_ptr = slots;
	*n_ptr = n;
	return CKR_OK;
}

/* ------------------------------------------------------------ small helpers */

void
tca_p11_str(const CK_UTF8CHAR *in, size_t inlen, char *out, size_t outsz)
{
	size_t n = inlen;

	/* blank-padded per PKCS#11; tpm2-pkcs11 pads with NUL bytes */
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\0'))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

void
tca_p11_id_hex(const unsigned char *id, size_t id_len, char *out, size_t outsz)
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

CK_RV
tca_p11_get_attr(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type, void *buf, size_t bufsz, size_t *len_ptr)
{
	CK_ATTRIBUTE a;
	CK_RV rv;

	a.type = type;
	a.pValue = buf;
	a.ulValueLen = (CK_ULONG)bufsz;
	*len_ptr = 0;
	rv = P11_CALL_QUIET(m, C_GetAttributeValue, h, obj, &a, 1);
	if (rv == CKR_OK && (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > bufsz))
		rv = CKR_BUFFER_TOO_SMALL;
	if (rv == CKR_OK)
		*len_ptr = a.ulValueLen;
	return rv;
}

CK_RV
tca_p11_get_bool(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type, int *out)
{
	CK_BBOOL b = CK_FALSE;
	size_t len = 0;
	CK_RV rv;

	*out = 0;
	if ((rv = tca_p11_get_attr(m, h, obj, type, &b, sizeof(b), &len)) != CKR_OK)
		return rv;
	if (len != sizeof(b))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	*out = b == CK_TRUE;
	return CKR_OK;
}

CK_RV
tca_p11_find_all(struct tca_p11 *m, CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl,
    CK_ULONG n_tmpl, CK_OBJECT_HANDLE **objs_ptr, size_t *n_ptr)
{
	CK_OBJECT_HANDLE *objs = NULL, *tmp;
	size_t n = 0, cap = 0;
	CK_ULONG got = 0;
	CK_RV rv, rv2;

	*objs_ptr = NULL;
	*n_ptr = 0;
	if ((rv = P11_CALL(m, C_FindObjectsInit, h, tmpl, n_tmpl)) != CKR_OK)
		return rv;
	for (;;) {
		if (cap - n < P11_FIND_BATCH) {
			if (cap > SIZE_MAX / sizeof(*objs) / 2 - P11_FIND_BATCH) {
				rv = CKR_HOST_MEMORY;
				break;
			}
			cap = cap * 2 + P11_FIND_BATCH;
			if ((tmp = realloc(objs, cap * sizeof(*objs))) == NULL) {
				rv = CKR_HOST_MEMORY;
				break;
			}
			objs = tmp;
		}
		got = 0;
		rv = P11_CALL(m, C_FindObjects, h, objs + n, P11_FIND_BATCH, &got);
		if (rv != CKR_OK || got == 0)
			break;
		if (got > P11_FIND_BATCH) {
			rv = CKR_GENERAL_ERROR;
			break;
		}
		n += got;
	}
	rv2 = P11_CALL(m, C_FindObjectsFinal, h);
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

/*
 * The point inside CKA_EC_POINT.  PKCS#11 says a DER OCTET STRING wrapping the
 * point; some tokens return the bare point.  The two are told apart by length:
 * the bare point has exactly the length of kd's encoding (04||X||Y, or the 32
 * Ed25519 bytes), the wrapped one two or three bytes more.
 */
int
tca_p11_ec_point(const struct tca_key_desc *kd, const unsigned char *p, size_t len,
    const unsigned char **pt_ptr, size_t *pt_len)
{
	size_t want = kd->group != NULL ? 1 + 2 * kd->field_len : kd->field_len;
	size_t hdr, clen;

	if (len == want && (kd->group == NULL || p[0] == 0x04)) {
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
	if (hdr + clen != len || clen != want)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	*pt_ptr = p + hdr;
	*pt_len = clen;
	return TCA_OK;
}

