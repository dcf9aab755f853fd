/*
 * p11-faulty.c - a PKCS#11 module that wraps a real one and injects faults.
 *
 * The engine's recovery paths (hung network HSMs, pulled tokens, HSM-side
 * logouts, idle session expiry, restarted PKCS#11 proxies) cannot be tested
 * against SoftHSMv2, which never fails.  This module sits between the engine
 * and the real module: it dlopen()s the module named by $TCA_FAULTY_MODULE
 * (default SoftHSMv2), forwards every call to it and, when the control file
 * named by $TCA_FAULTY_CTL says so, fails, delays or invalidates instead.
 * The engine loads it like any module (p11_kit_module_load, unmanaged) and
 * cannot tell it from a misbehaving HSM.  Test code only: never installed.
 *
 * Control file (see p11-faulty.h for the full reference): one directive per
 * line, '#' comments, blank lines ignored.  FUNC is a function name or '*'
 * (all but C_GetFunctionList/C_Initialize/C_Finalize), RV a CKR_ name or a
 * number.
 *
 *   fail FUNC RV [count N|inf]   next N (default 1) calls return RV
 *   hang FUNC MS [count N|inf]   next N (default 1) calls sleep MS ms first
 *   latency FUNC MS              every call sleeps MS ms first
 *   crash FUNC [count N|inf]     next N (default 1) calls abort() the process
 *   remove                       token not present while the line is there
 *   invalidate-handles [N]       new N: all object handles become invalid
 *   logout [N]                   new N: the real module is logged out
 *   idle-timeout MS              sessions unused for MS ms die
 *   require-reinit [N]           new line: CKR_DEVICE_ERROR until
 *                                C_Finalize + C_Initialize
 *   generation N                 new N: re-arm all fail/hang counts
 *
 * The file is stat()ed on every call and re-read when (dev, ino, mtime,
 * size) changed, or when it was modified less than RECENT_MS ago (two writes
 * within one file system timestamp tick that reuse an inode would otherwise
 * look alike).  Parsing the same text twice changes nothing: rule counts are
 * kept by line text until the generation changes (also while a line is
 * absent, so that the outcome does not depend on which versions the module
 * happened to read), edge-triggered directives by their argument.
 *
 * Handles.  Every handle given to the application is (epoch << 32) | real
 * handle, with one epoch for sessions and one for objects; bumping an epoch
 * makes every older handle invalid without touching the real module.
 *
 * Logout.  SoftHSMv2 forgets the handles of private objects on C_Logout and
 * hands out new ones after the next login, so a real C_Logout alone makes
 * the engine see CKR_OBJECT_HANDLE_INVALID where an HSM that logged itself
 * out says CKR_USER_NOT_LOGGED_IN and, after a new login, accepts the old
 * handles again.  For `logout N` the module therefore records the class, id
 * and label of every private object handle it handed out, reports
 * CKR_USER_NOT_LOGGED_IN (C_SignInit etc.) or CKR_OBJECT_HANDLE_INVALID
 * (C_GetAttributeValue etc.) for those handles until the next C_Login, and
 * then finds the objects again and maps the old handles to the new ones.
 *
 * Injected errors end operations.  PKCS#11 says an error from C_Sign (and
 * every other call that can end an operation) ends the operation; a real
 * HSM's next C_SignInit on that session works.  A fail rule on such a
 * function therefore finishes the real operation into a scratch buffer and
 * throws the result away; the application's buffers are not written.
 *
 * The module keeps itself mapped until the process exits (RTLD_NODELETE):
 * the engine unloads and reloads a module whose C_Initialize failed, and
 * counts and triggers must survive that.  A new $TCA_FAULTY_CTL path at a
 * C_Initialize starts afresh, so test cases in one process stay apart.
 *
 * Not simulated: `remove` takes the tokens of all the real module's slots
 * away, not one; object handles inside templates and mechanism parameters
 * are not translated; C_WaitForSlotEvent says CKR_FUNCTION_NOT_SUPPORTED
 * and C_OpenSession's notify callback is not passed on; an injected error
 * in a dual-function call (C_SignEncryptUpdate...) does not end the real
 * operations; an idle session is found dead when it is next used (which
 * looks the same from outside); `logout` maps an old handle to a new one
 * only for a token object that class, id and label find exactly once.
 *
 * Locking.  One mutex protects all state.  It is never held while sleeping
 * or while calling the real module; work for the real module that a state
 * change requires (closing sessions, logging out) is collected under the
 * mutex and done after it is released.  A real session is only closed when
 * no call is using it: PKCS#11 does not define closing a session under a
 * running call.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "p11-faulty.h"

/* The handle layout needs room for a 32-bit epoch above a 32-bit handle. */
_Static_assert(sizeof(CK_ULONG) >= 8, "CK_ULONG must be 64 bits wide");
_Static_assert(sizeof(CK_SESSION_HANDLE) == sizeof(CK_ULONG), "handle size");
_Static_assert(sizeof(CK_OBJECT_HANDLE) == sizeof(CK_ULONG), "handle size");

#define LOW32		((CK_ULONG)0xffffffffUL)
#define WRAP(epoch, h)	(((CK_ULONG)(epoch) << 32) | ((CK_ULONG)(h) & LOW32))
#define EPOCH_OF(h)	((uint32_t)((CK_ULONG)(h) >> 32))

#define MAX_CTL_SIZE	(64 * 1024)	/* a longer control file is cut off */
#define MAX_WORDS	8
#define RECENT_MS	100		/* see "re-read" in the header comment */
#define SCRATCH_LEN	8192		/* output buffer for ending operations */
#define FP_MAX		128		/* longest CKA_ID / CKA_LABEL remembered */
#define OBJ_BUCKETS	64

/* ----------------------------------------------------------- functions */

/* Every PKCS#11 2.40 function, in CK_FUNCTION_LIST order. */
#define ALL_FUNCS \
	F(Initialize) F(Finalize) F(GetInfo) F(GetFunctionList) \
	F(GetSlotList) F(GetSlotInfo) F(GetTokenInfo) F(GetMechanismList) \
	F(GetMechanismInfo) F(InitToken) F(InitPIN) F(SetPIN) \
	F(OpenSession) F(CloseSession) F(CloseAllSessions) F(GetSessionInfo) \
	F(GetOperationState) F(SetOperationState) F(Login) F(Logout) \
	F(CreateObject) F(CopyObject) F(DestroyObject) F(GetObjectSize) \
	F(GetAttributeValue) F(SetAttributeValue) F(FindObjectsInit) \
	F(FindObjects) F(FindObjectsFinal) F(EncryptInit) F(Encrypt) \
	F(EncryptUpdate) F(EncryptFinal) F(DecryptInit) F(Decrypt) \
	F(DecryptUpdate) F(DecryptFinal) F(DigestInit) F(Digest) \
	F(DigestUpdate) F(DigestKey) F(DigestFinal) F(SignInit) F(Sign) \
	F(SignUpdate) F(SignFinal) F(SignRecoverInit) F(SignRecover) \
	F(VerifyInit) F(Verify) F(VerifyUpdate) F(VerifyFinal) \
	F(VerifyRecoverInit) F(VerifyRecover) F(DigestEncryptUpdate) \
	F(DecryptDigestUpdate) F(SignEncryptUpdate) F(DecryptVerifyUpdate) \
	F(GenerateKey) F(GenerateKeyPair) F(WrapKey) F(UnwrapKey) \
	F(DeriveKey) F(SeedRandom) F(GenerateRandom) F(GetFunctionStatus) \
	F(CancelFunction) F(WaitForSlotEvent)

enum fn {
#define F(n) FN_##n,
	ALL_FUNCS
#undef F
	FN_COUNT,
	FN_ANY = FN_COUNT	/* '*' in a rule */
};

static const char *const fn_names[FN_COUNT] = {
#define F(n) "C_" #n,
	ALL_FUNCS
#undef F
};

/* ------------------------------------------------------------ rv names */

#define RV(x) { x, #x }
static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD),
	RV(CKR_NO_EVENT), RV(CKR_NEED_TO_CREATE_THREADS), RV(CKR_CANT_LOCK),
	RV(CKR_ATTRIBUTE_READ_ONLY), RV(CKR_ATTRIBUTE_SENSITIVE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID),
	RV(CKR_ACTION_PROHIBITED), RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE),
	RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED),
	RV(CKR_ENCRYPTED_DATA_INVALID), RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
	RV(CKR_FUNCTION_CANCELED), RV(CKR_FUNCTION_NOT_PARALLEL),
	RV(CKR_FUNCTION_NOT_SUPPORTED), RV(CKR_KEY_HANDLE_INVALID),
	RV(CKR_KEY_SIZE_RANGE), RV(CKR_KEY_TYPE_INCONSISTENT),
	RV(CKR_KEY_NOT_NEEDED), RV(CKR_KEY_CHANGED), RV(CKR_KEY_NEEDED),
	RV(CKR_KEY_INDIGESTIBLE), RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
	RV(CKR_KEY_NOT_WRAPPABLE), RV(CKR_KEY_UNEXTRACTABLE),
	RV(CKR_MECHANISM_INVALID), RV(CKR_MECHANISM_PARAM_INVALID),
	RV(CKR_OBJECT_HANDLE_INVALID), RV(CKR_OPERATION_ACTIVE),
	RV(CKR_OPERATION_NOT_INITIALIZED), RV(CKR_PIN_INCORRECT),
	RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE), RV(CKR_PIN_EXPIRED),
	RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED), RV(CKR_SESSION_COUNT),
	RV(CKR_SESSION_HANDLE_INVALID), RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	RV(CKR_SESSION_READ_ONLY), RV(CKR_SESSION_EXISTS),
	RV(CKR_SESSION_READ_ONLY_EXISTS), RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
	RV(CKR_SIGNATURE_INVALID), RV(CKR_SIGNATURE_LEN_RANGE),
	RV(CKR_TEMPLATE_INCOMPLETE), RV(CKR_TEMPLATE_INCONSISTENT),
	RV(CKR_TOKEN_NOT_PRESENT), RV(CKR_TOKEN_NOT_RECOGNIZED),
	RV(CKR_TOKEN_WRITE_PROTECTED), RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
	RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_USER_PIN_NOT_INITIALIZED),
	RV(CKR_USER_TYPE_INVALID), RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	RV(CKR_USER_TOO_MANY_TYPES), RV(CKR_WRAPPED_KEY_INVALID),
	RV(CKR_WRAPPED_KEY_LEN_RANGE), RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
	RV(CKR_WRAPPING_KEY_SIZE_RANGE), RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_RANDOM_SEED_NOT_SUPPORTED), RV(CKR_RANDOM_NO_RNG),
	RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED),
	RV(CKR_BUFFER_TOO_SMALL), RV(CKR_SAVED_STATE_INVALID),
	RV(CKR_INFORMATION_SENSITIVE), RV(CKR_STATE_UNSAVEABLE),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_MUTEX_BAD), RV(CKR_MUTEX_NOT_LOCKED),
	RV(CKR_NEW_PIN_MODE), RV(CKR_NEXT_OTP),
	RV(CKR_EXCEEDED_MAX_ITERATIONS), RV(CKR_FIPS_SELF_TEST_FAILED),
	RV(CKR_LIBRARY_LOAD_FAILED), RV(CKR_PIN_TOO_WEAK),
	RV(CKR_PUBLIC_KEY_INVALID), RV(CKR_FUNCTION_REJECTED),
	RV(CKR_VENDOR_DEFINED),
};
#undef RV

/* ---------------------------------------------------------------- state */

enum rule_kind { RULE_FAIL, RULE_HANG, RULE_LATENCY, RULE_CRASH };

/*
 * The calls a fail or hang line has left.  Kept by line text (and, for
 * identical lines, by occurrence) for as long as the generation stays the
 * same, also while the line is absent from the file: whether a line comes
 * back re-armed must not depend on which versions of the file the module
 * happened to read in between.
 */
struct count {
	struct count *next;
	unsigned int occurrence;	/* n-th line with this text */
	long left;			/* -1 = no limit */
	char text[TCA_FAULTY_MAX_LINE + 1];
};

struct rule {
	struct rule *next;
	enum rule_kind kind;
	int fn;				/* enum fn or FN_ANY */
	CK_RV rv;			/* fail */
	unsigned long ms;		/* hang, latency */
	long count;			/* as written; -1 = inf (latency: -1) */
	struct count *cnt;		/* fail, hang: calls left, see above */
	char text[TCA_FAULTY_MAX_LINE + 1];	/* normalized line: identity */
};

/* What one version of the control file says. */
struct conf {
	struct rule *rules;		/* in file order */
	char *generation;
	int remove;
	unsigned long idle_ms;		/* 0 = no idle timeout */
	char *invalidate, *logout, *reinit;	/* line text, NULL if absent */
};

struct sess {
	struct sess *next;
	CK_SESSION_HANDLE wrapped;	/* what the application holds */
	CK_SESSION_HANDLE real;
	CK_SLOT_ID slot;
	uint64_t last_used;		/* ms, monotonic */
	unsigned int inflight;		/* calls using it right now */
	int expired;			/* idle timeout: every call fails */
	int dead;			/* gone for the application */
	int need_close;			/* dead, real session still open */
};

enum obj_state {
	OBJ_LIVE,			/* the real handle works */
	OBJ_PURGED,			/* `logout` made the real module forget it */
	OBJ_REMAPPED,			/* found again after login: use cur */
	OBJ_LOST			/* could not be found again */
};

/* An object handle handed out in the current object epoch. */
struct objrec {
	struct objrec *next;
	CK_OBJECT_HANDLE orig;		/* low half of the application's handle */
	CK_OBJECT_HANDLE cur;		/* OBJ_REMAPPED: real handle now */
	enum obj_state state;
	int have_fp;			/* class/id/label below are valid */
	CK_OBJECT_CLASS cls;
	CK_ULONG id_len, label_len;	/* CK_UNAVAILABLE_INFORMATION: none */
	unsigned char id[FP_MAX], label[FP_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The real module.  Set once, under the lock, by the first
 * C_GetFunctionList (p11-kit calls it while loading us, before anyone can
 * call anything else) and read-only afterwards; the real module is never
 * unloaded (see pin_self_locked).
 */
static CK_FUNCTION_LIST_PTR real;

/* Everything below is protected by lock. */
static char ctl_path[PATH_MAX], log_path[PATH_MAX];
static int initialized;

static struct {
	int have;			/* read at least once since reset */
	int exists;
	dev_t dev;
	ino_t ino;
	struct timespec mtim;
	off_t size;
	char *text;			/* raw content of the version in force */
	size_t len;
	struct conf conf;
} ctl;

static struct count *counts;		/* of the current generation */

/* Edge-triggered directives: the last argument acted upon. */
static char *seen_generation, *seen_invalidate, *seen_logout;
static char **seen_reinit;		/* every require-reinit line ever seen */
static size_t n_seen_reinit;

static int removed;
static int reinit_required, reinit_finalized;
static uint32_t sess_epoch, obj_epoch;
static uint64_t idle_since;		/* idle timeout counts from here */
static struct sess *sessions;
static unsigned int n_dead;		/* dead entries waiting for reap() */
static struct objrec *objs[OBJ_BUCKETS];

/* Real-module work decided under the lock, done after it is released. */
struct actions {
	struct sess *logout_on;		/* pinned session to C_Logout on */
	int logout_event;		/* `logout N`: remember private objects */
};

/* One call of the application into the module. */
struct call {
	int fn;
	struct sess *e;			/* pinned session (sess_end unpins) */
	CK_SESSION_HANDLE rs;		/* e's real handle */
	uint32_t obj_epoch;		/* object epoch at the start of the call */
	int injected;			/* rv comes from a fail rule */
	int terminate;			/* ... on a live session: end the real op */
};

/* -------------------------------------------------------------- helpers */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *
rv_name(CK_RV rv, char *buf, size_t bufsz)
{
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, bufsz, "0x%lx", (unsigned long)rv);
	return buf;
}

static void
lock_state(void)
{
	/* a failing mutex leaves nothing safe to do in a test module */
	if (pthread_mutex_lock(&lock) != 0)
		abort();
}

static void
unlock_state(void)
{
	if (pthread_mutex_unlock(&lock) != 0)
		abort();
}

static int
streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Appends one line to $TCA_FAULTY_LOG with a single O_APPEND write(2), so
 * that lines from concurrent threads and processes never interleave.
 * Caller holds lock (which also orders the lines of one process).
 */
static void __attribute__((format(printf, 1, 2)))
ev_log_locked(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int fd, n;

	if (log_path[0] == '\0')
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if ((fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return;
	/* nowhere to report a failed log write; tests notice missing lines */
	if (write(fd, line, (size_t)n) != n)
		n = -1;
	(void)close(fd);
}

#define ev_log(...) do {		\
	lock_state();			\
	ev_log_locked(__VA_ARGS__);	\
	unlock_state();			\
} while (0)

static void
conf_free(struct conf *cf)
{
	struct rule *r;

	while ((r = cf->rules) != NULL) {
		cf->rules = r->next;
		free(r);
	}
	free(cf->generation);
	free(cf->invalidate);
	free(cf->logout);
	free(cf->reinit);
	memset(cf, 0, sizeof(*cf));
}

/* Forgets everything about the control file. */
static void
ctl_reset_locked(void)
{
	struct count *k;
	size_t i;

	conf_free(&ctl.conf);
	free(ctl.text);
	memset(&ctl, 0, sizeof(ctl));
	while ((k = counts) != NULL) {
		counts = k->next;
		free(k);
	}
	free(seen_generation);
	free(seen_invalidate);
	free(seen_logout);
	seen_generation = seen_invalidate = seen_logout = NULL;
	for (i = 0; i < n_seen_reinit; i++)
		free(seen_reinit[i]);
	free(seen_reinit);
	seen_reinit = NULL;
	n_seen_reinit = 0;
	removed = reinit_required = reinit_finalized = 0;
}

/*
 * Reads the environment.  A test that runs several cases in one process
 * loads us again for each with a new control file: that starts afresh.
 */
static void
env_load_locked(void)
{
	const char *c = getenv(TCA_FAULTY_ENV_CTL);
	const char *l = getenv(TCA_FAULTY_ENV_LOG);
	char newctl[PATH_MAX];

	snprintf(newctl, sizeof(newctl), "%s", c != NULL ? c : "");
	snprintf(log_path, sizeof(log_path), "%s", l != NULL ? l : "");
	if (strcmp(newctl, ctl_path) == 0)
		return;
	ctl_reset_locked();
	memcpy(ctl_path, newctl, sizeof(ctl_path));
}

static int
fn_matches(int rule_fn, int fn)
{
	if (rule_fn == FN_ANY)
		return fn != FN_GetFunctionList && fn != FN_Initialize &&
		    fn != FN_Finalize;
	return rule_fn == fn;
}

static uint32_t
epoch_next(uint32_t e)
{
	/* 0 never appears, so a wrapped handle is never CK_INVALID_HANDLE */
	return e + 1 == 0 ? 1 : e + 1;
}

/* ------------------------------------------------------- object records */

static struct objrec **
obj_bucket(CK_OBJECT_HANDLE h)
{
	return &objs[(h ^ (h >> 7)) % OBJ_BUCKETS];
}

static struct objrec *
obj_find_locked(CK_OBJECT_HANDLE orig)
{
	struct objrec *o;

	for (o = *obj_bucket(orig); o != NULL; o = o->next)
		if (o->orig == orig)
			return o;
	return NULL;
}

static void
objs_clear_locked(void)
{
	struct objrec *o;
	size_t i;

	for (i = 0; i < OBJ_BUCKETS; i++) {
		while ((o = objs[i]) != NULL) {
			objs[i] = o->next;
			free(o);
		}
	}
}

static void
obj_epoch_bump_locked(void)
{
	obj_epoch = epoch_next(obj_epoch);
	objs_clear_locked();
}

/*
 * Wraps real object handles the real module just returned, in place.  They
 * get the epoch the call started in, so handles returned by a call that
 * overlapped an epoch bump are already stale.  Each is remembered (for
 * `logout`); the real module handing it out makes it live again.
 */
static CK_RV
obj_wrap_out(struct call *c, CK_OBJECT_HANDLE *h, CK_ULONG n)
{
	struct objrec *o, **b;
	CK_ULONG i;
	CK_RV rv = CKR_OK;

	lock_state();
	for (i = 0; i < n; i++) {
		if (h[i] > LOW32) {
			ev_log_locked("error real object handle 0x%lx does not fit",
			    (unsigned long)h[i]);
			rv = CKR_GENERAL_ERROR;
			goto out;
		}
		if (c->obj_epoch == obj_epoch) {
			if ((o = obj_find_locked(h[i])) != NULL) {
				o->state = OBJ_LIVE;
			} else if ((o = calloc(1, sizeof(*o))) != NULL) {
				/* without a record only `logout` remapping is lost */
				o->orig = h[i];
				o->state = OBJ_LIVE;
				b = obj_bucket(h[i]);
				o->next = *b;
				*b = o;
			}
		}
		h[i] = WRAP(c->obj_epoch, h[i]);
	}
 out:
	unlock_state();
	return rv;
}

/*
 * The real handle behind an application object handle.  is_key selects the
 * error PKCS#11 names for a bad key argument (C_SignInit's hKey).
 */
static CK_RV
obj_unwrap(struct call *c, CK_OBJECT_HANDLE h, int is_key, CK_OBJECT_HANDLE *real_h)
{
	CK_RV bad = is_key ? CKR_KEY_HANDLE_INVALID : CKR_OBJECT_HANDLE_INVALID;
	struct objrec *o;
	CK_RV rv = CKR_OK;

	*real_h = CK_INVALID_HANDLE;
	if (EPOCH_OF(h) != c->obj_epoch || (h & LOW32) == 0)
		return bad;
	lock_state();
	if (obj_epoch != c->obj_epoch) {
		rv = bad;
		goto out;
	}
	*real_h = h & LOW32;
	if ((o = obj_find_locked(*real_h)) == NULL)
		goto out;
	switch (o->state) {
	case OBJ_LIVE:
		break;
	case OBJ_PURGED:
		/* what an HSM that logged itself out says about a private key */
		rv = is_key ? CKR_USER_NOT_LOGGED_IN : CKR_OBJECT_HANDLE_INVALID;
		break;
	case OBJ_REMAPPED:
		*real_h = o->cur;
		break;
	case OBJ_LOST:
		rv = bad;
		break;
	}
 out:
	unlock_state();
	return rv;
}

/* Optional key argument (C_SetOperationState): 0 stays 0. */
static CK_RV
obj_unwrap_opt(struct call *c, CK_OBJECT_HANDLE h, CK_OBJECT_HANDLE *real_h)
{
	if (h == CK_INVALID_HANDLE) {
		*real_h = CK_INVALID_HANDLE;
		return CKR_OK;
	}
	return obj_unwrap(c, h, 1, real_h);
}

/* ------------------------------------------------------------- sessions */

static struct sess *
sess_find_locked(CK_SESSION_HANDLE wrapped)
{
	struct sess *e;

	for (e = sessions; e != NULL; e = e->next)
		if (e->wrapped == wrapped)
			return e;
	return NULL;
}

/*
 * Marks a session dead; close_real: its real session is still open and must
 * be closed.  Once the real session is known closed (C_Finalize,
 * C_CloseAllSessions) it stays so: its handle may belong to another by now.
 */
static void
sess_kill_locked(struct sess *e, int close_real)
{
	if (!e->dead) {
		n_dead++;
		e->dead = 1;
		e->need_close = close_real;
	} else if (!close_real)
		e->need_close = 0;
}

/*
 * Frees dead sessions no call is using, closing their real sessions.  The
 * entry is unlinked before the real close: the real handle stays open until
 * then, so the real module cannot hand it out again in between.
 */
static void
reap(void)
{
	struct sess *e, **pp;
	CK_SESSION_HANDLE rs;
	int close_real;

	for (;;) {
		lock_state();
		if (n_dead == 0) {
			unlock_state();
			return;
		}
		for (pp = &sessions; (e = *pp) != NULL; pp = &e->next)
			if (e->dead && e->inflight == 0)
				break;
		if (e == NULL) {
			unlock_state();
			return;
		}
		*pp = e->next;
		n_dead--;
		rs = e->real;
		close_real = e->need_close;
		free(e);
		unlock_state();
		if (close_real)
			(void)real->C_CloseSession(rs);
	}
}

static void
sess_unpin(struct sess *e)
{
	lock_state();
	e->inflight--;
	e->last_used = now_ms();
	unlock_state();
	reap();
}

/* A live session to log out on, pinned; NULL if none.  Caller holds lock. */
static struct sess *
sess_pick_locked(void)
{
	struct sess *e, *best = NULL;

	for (e = sessions; e != NULL; e = e->next) {
		if (e->dead)
			continue;
		/* prefer one no call is using: SoftHSMv2 is happier */
		if (best == NULL || (best->inflight > 0 && e->inflight == 0))
			best = e;
	}
	if (best != NULL)
		best->inflight++;
	return best;
}

/* -------------------------------------------------------- control file */

static int
parse_fn(const char *s)
{
	int i;

	if (strcmp(s, "*") == 0)
		return FN_ANY;
	for (i = 0; i < FN_COUNT; i++)
		if (strcmp(s, fn_names[i]) == 0)
			return i == FN_GetFunctionList ? -1 : i;
	return -1;
}

/* base 10, or 0 for an rv (0x30) */
static int
parse_ulong(const char *s, int base, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

static int
parse_rv(const char *s, CK_RV *out)
{
	unsigned long v;
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
		if (strcmp(s, rv_names[i].name) == 0) {
			*out = rv_names[i].rv;
			return 0;
		}
	}
	if (parse_ulong(s, 0, &v) != 0)
		return -1;
	*out = v;
	return 0;
}

/* "count N" / "count inf" at w[i]; absent = 1 */
static int
parse_count(char **w, int nw, int i, long *left)
{
	unsigned long n;

	*left = 1;
	if (nw == i)
		return 0;
	if (nw != i + 2 || strcmp(w[i], "count") != 0)
		return -1;
	if (strcmp(w[i + 1], "inf") == 0) {
		*left = -1;
		return 0;
	}
	if (parse_ulong(w[i + 1], 10, &n) != 0 || n > LONG_MAX)
		return -1;
	*left = (long)n;
	return 0;
}

/* Replaces *slot with a copy of s; -1 if out of memory. */
static int
set_str(char **slot, const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		return -1;
	free(*slot);
	*slot = d;
	return 0;
}

/* Parses one line, already split into words; text is the normalized line. */
static const char *
parse_line(struct conf *cf, struct rule ***tail, char **w, int nw, const char *text)
{
	struct rule *r = NULL;
	unsigned long v;
	const char *why = NULL;

	if (strcmp(w[0], "crash") == 0) {
		/* crash FUNC [count N|inf]: parsed as a fail line without an rv */
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return "out of memory";
		snprintf(r->text, sizeof(r->text), "%s", text);
		r->kind = RULE_CRASH;
		if (nw < 2)
			why = "missing arguments";
		else if ((r->fn = parse_fn(w[1])) < 0)
			why = "unknown function";
		else if (parse_count(w, nw, 2, &r->count) != 0)
			why = "bad count";
		if (why != NULL)
			goto out;
		**tail = r;
		*tail = &r->next;
		r = NULL;
	} else if (strcmp(w[0], "fail") == 0 || strcmp(w[0], "hang") == 0 ||
	    strcmp(w[0], "latency") == 0) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return "out of memory";
		snprintf(r->text, sizeof(r->text), "%s", text);
		r->kind = w[0][0] == 'f' ? RULE_FAIL :
		    w[0][0] == 'h' ? RULE_HANG : RULE_LATENCY;
		if (nw < 3) {
			why = "missing arguments";
			goto out;
		}
		if ((r->fn = parse_fn(w[1])) < 0) {
			why = "unknown function";
			goto out;
		}
		if (r->kind == RULE_FAIL) {
			if (parse_rv(w[2], &r->rv) != 0)
				why = "bad rv";
		} else if (parse_ulong(w[2], 10, &r->ms) != 0)
			why = "bad milliseconds";
		if (why != NULL)
			goto out;
		if (r->kind == RULE_LATENCY) {
			r->count = -1;
			if (nw != 3)
				why = "trailing words";
		} else if (parse_count(w, nw, 3, &r->count) != 0)
			why = "bad count";
		if (why != NULL)
			goto out;
		**tail = r;
		*tail = &r->next;
		r = NULL;
	} else if (strcmp(w[0], "remove") == 0) {
		if (nw != 1)
			return "trailing words";
		cf->remove = 1;
	} else if (strcmp(w[0], "idle-timeout") == 0) {
		if (nw != 2 || parse_ulong(w[1], 10, &v) != 0)
			return "bad milliseconds";
		cf->idle_ms = v;
	} else if (strcmp(w[0], "generation") == 0) {
		if (nw != 2)
			return "want one argument";
		if (set_str(&cf->generation, text) != 0)
			return "out of memory";
	} else if (strcmp(w[0], "invalidate-handles") == 0 ||
	    strcmp(w[0], "logout") == 0 || strcmp(w[0], "require-reinit") == 0) {
		if (nw > 2)
			return "at most one argument";
		if (set_str(w[0][0] == 'i' ? &cf->invalidate :
		    w[0][0] == 'l' ? &cf->logout : &cf->reinit, text) != 0)
			return "out of memory";
	} else
		return "unknown directive";
 out:
	free(r);
	return why;
}

/* Parses a whole control file; bad lines are logged and skipped. */
static void
conf_parse_locked(const char *buf, size_t len, struct conf *cf)
{
	struct rule **tail = &cf->rules;
	char line[TCA_FAULTY_MAX_LINE + 2], text[TCA_FAULTY_MAX_LINE + 1];
	char *w[MAX_WORDS], *p, *save = NULL;
	const char *why;
	size_t pos = 0, end, ll, tl;
	unsigned int lineno = 0;
	int nw;

	memset(cf, 0, sizeof(*cf));
	while (pos < len) {
		lineno++;
		for (end = pos; end < len && buf[end] != '\n'; end++)
			;
		ll = end - pos;
		if (ll > TCA_FAULTY_MAX_LINE) {
			ev_log_locked("ctl-error line %u: too long", lineno);
			pos = end + 1;
			continue;
		}
		memcpy(line, buf + pos, ll);
		line[ll] = '\0';
		pos = end + 1;
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		/* identity of a line: its words joined by single blanks */
		nw = 0;
		text[0] = '\0';
		tl = 0;
		for (p = strtok_r(line, " \t\r\v\f", &save); p != NULL;
		    p = strtok_r(NULL, " \t\r\v\f", &save)) {
			if (nw == MAX_WORDS) {
				nw++;
				break;
			}
			w[nw++] = p;
			tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s%s",
			    tl > 0 ? " " : "", p);
		}
		if (nw == 0)
			continue;
		if (nw > MAX_WORDS)
			why = "too many words";
		else
			why = parse_line(cf, &tail, w, nw, text);
		if (why != NULL)
			ev_log_locked("ctl-error line %u: %s", lineno, why);
	}
}

/*
 * Puts a newly read control file in force: carries rule counts over,
 * triggers edge directives and applies level ones.  Real-module work goes
 * into act.  Takes ownership of cf.
 */
static void
conf_apply_locked(struct conf *cf, struct actions *act)
{
	struct rule *r, *o, **rp;
	struct count *k;
	unsigned int occ;
	int baseline = !ctl.have, seen;
	struct sess *e;
	char **v;
	size_t i;

	/* a new generation re-arms every line (a missing line changes nothing) */
	if (cf->generation != NULL && !streq_null(cf->generation, seen_generation) &&
	    set_str(&seen_generation, cf->generation) == 0) {
		while ((k = counts) != NULL) {
			counts = k->next;
			free(k);
		}
	}
	for (rp = &cf->rules; (r = *rp) != NULL; ) {
		if (r->kind == RULE_LATENCY) {
			rp = &r->next;
			continue;
		}
		for (occ = 0, o = cf->rules; o != r; o = o->next)
			occ += strcmp(o->text, r->text) == 0;
		for (k = counts; k != NULL; k = k->next)
			if (k->occurrence == occ && strcmp(k->text, r->text) == 0)
				break;
		if (k == NULL && (k = calloc(1, sizeof(*k))) != NULL) {
			k->occurrence = occ;
			k->left = r->count;
			memcpy(k->text, r->text, sizeof(k->text));
			k->next = counts;
			counts = k;
		}
		if (k == NULL) {
			ev_log_locked("error out of memory: dropped \"%s\"", r->text);
			*rp = r->next;
			free(r);
			continue;
		}
		r->cnt = k;
		rp = &r->next;
	}

	if (cf->remove && !removed) {
		/* out of the slot: every session dies, the token forgets us */
		removed = 1;
		sess_epoch = epoch_next(sess_epoch);
		obj_epoch_bump_locked();
		ev_log_locked("%s", TCA_FAULTY_LOG_REMOVE);
		if (act->logout_on == NULL)
			act->logout_on = sess_pick_locked();
		for (e = sessions; e != NULL; e = e->next)
			sess_kill_locked(e, 1);
	} else if (!cf->remove && removed) {
		removed = 0;
		ev_log_locked("%s", TCA_FAULTY_LOG_RETURN);
	}

	if (cf->idle_ms != ctl.conf.idle_ms)
		idle_since = now_ms();

	if (cf->invalidate != NULL && !streq_null(cf->invalidate, seen_invalidate)) {
		if (set_str(&seen_invalidate, cf->invalidate) == 0 && !baseline) {
			obj_epoch_bump_locked();
			ev_log_locked("%s", TCA_FAULTY_LOG_INVALIDATE);
		}
	}

	if (cf->logout != NULL && !streq_null(cf->logout, seen_logout)) {
		if (set_str(&seen_logout, cf->logout) == 0 && !baseline &&
		    !removed && act->logout_on == NULL) {
			act->logout_on = sess_pick_locked();
			act->logout_event = 1;
			if (act->logout_on == NULL)
				ev_log_locked("logout-skipped no-session");
		}
	}

	if (cf->reinit != NULL) {
		for (seen = 0, i = 0; i < n_seen_reinit && !seen; i++)
			seen = strcmp(seen_reinit[i], cf->reinit) == 0;
		if (!seen && (v = reallocarray(seen_reinit, n_seen_reinit + 1,
		    sizeof(*v))) != NULL) {
			seen_reinit = v;
			if ((v[n_seen_reinit] = strdup(cf->reinit)) != NULL) {
				n_seen_reinit++;
				if (!baseline) {
					reinit_required = 1;
					reinit_finalized = 0;
					ev_log_locked("%s", TCA_FAULTY_LOG_REINIT_REQUIRED);
				}
			}
		}
	}

	conf_free(&ctl.conf);
	ctl.conf = *cf;
	memset(cf, 0, sizeof(*cf));
	ctl.have = 1;
}

/* Reads the control file; 0 and *buf_ptr = NULL if it does not exist. */
static int
ctl_read_locked(char **buf_ptr, size_t *len_ptr, struct stat *st)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r = -1;

	*buf_ptr = NULL;
	*len_ptr = 0;
	if ((fd = open(ctl_path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	/* the identity of what is read, not of what stat() saw before */
	if (fstat(fd, st) != 0)
		goto out;
	if ((buf = malloc(MAX_CTL_SIZE + 1)) == NULL)
		goto out;
	while (len < MAX_CTL_SIZE) {
		if ((n = read(fd, buf + len, MAX_CTL_SIZE - len)) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*buf_ptr = buf;
	*len_ptr = len;
	buf = NULL;
	r = 0;
 out:
	free(buf);
	(void)close(fd);
	return r;
}

static int
mtime_recent(const struct stat *st)
{
	struct timespec now;
	int64_t age;

	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		return 1;
	age = ((int64_t)now.tv_sec - st->st_mtim.tv_sec) * 1000 +
	    ((int64_t)now.tv_nsec - st->st_mtim.tv_nsec) / 1000000;
	return age < RECENT_MS;
}

/*
 * Logs out of the real module on a pinned session and unpins it.  For
 * `logout N` (remember) first records the private objects handed out, so
 * that their handles can work again after the next C_Login.
 */
static void
do_logout(struct sess *on, int remember)
{
	CK_ATTRIBUTE tmpl[5];
	CK_BBOOL priv, token;
	struct objrec *o, *snap = NULL;
	size_t n = 0, cap = 0, i;
	uint32_t ep = 0;
	char rvb[32];
	CK_RV rv;

	if (remember) {
		lock_state();
		ep = obj_epoch;
		for (i = 0; i < OBJ_BUCKETS; i++)
			for (o = objs[i]; o != NULL; o = o->next)
				if (o->state == OBJ_LIVE || o->state == OBJ_REMAPPED)
					cap++;
		if (cap > 0 && (snap = calloc(cap, sizeof(*snap))) != NULL) {
			for (i = 0; i < OBJ_BUCKETS; i++) {
				for (o = objs[i]; o != NULL && n < cap; o = o->next) {
					if (o->state != OBJ_LIVE && o->state != OBJ_REMAPPED)
						continue;
					snap[n].orig = o->orig;
					snap[n].cur = o->state == OBJ_REMAPPED ? o->cur : o->orig;
					n++;
				}
			}
		}
		unlock_state();
		/* read the fingerprints while the real module still knows them */
		for (i = 0; i < n; i++) {
			priv = token = CK_FALSE;
			tmpl[0] = (CK_ATTRIBUTE){ CKA_PRIVATE, &priv, sizeof(priv) };
			tmpl[1] = (CK_ATTRIBUTE){ CKA_TOKEN, &token, sizeof(token) };
			tmpl[2] = (CK_ATTRIBUTE){ CKA_CLASS, &snap[i].cls, sizeof(snap[i].cls) };
			tmpl[3] = (CK_ATTRIBUTE){ CKA_ID, snap[i].id, sizeof(snap[i].id) };
			tmpl[4] = (CK_ATTRIBUTE){ CKA_LABEL, snap[i].label, sizeof(snap[i].label) };
			rv = real->C_GetAttributeValue(on->real, snap[i].cur, tmpl, 5);
			if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
			    rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_BUFFER_TOO_SMALL)
				continue;
			/* state says private; have_fp says findable again */
			if (tmpl[0].ulValueLen != sizeof(priv) || priv != CK_TRUE)
				continue;
			snap[i].state = OBJ_PURGED;
			snap[i].have_fp = token == CK_TRUE &&
			    tmpl[1].ulValueLen == sizeof(token) &&
			    tmpl[2].ulValueLen == sizeof(snap[i].cls);
			snap[i].id_len = tmpl[3].ulValueLen;
			snap[i].label_len = tmpl[4].ulValueLen;
		}
	}

	rv = real->C_Logout(on->real);
	lock_state();
	/* the removal's logout is part of "remove", not a `logout` event */
	if (remember && rv == CKR_OK)
		ev_log_locked("%s", TCA_FAULTY_LOG_LOGOUT);
	else if (remember)
		ev_log_locked("%s rv=%s", TCA_FAULTY_LOG_LOGOUT, rv_name(rv, rvb, sizeof(rvb)));
	if (remember && rv == CKR_OK && obj_epoch == ep) {
		for (i = 0; i < n; i++) {
			if (snap[i].state != OBJ_PURGED ||
			    (o = obj_find_locked(snap[i].orig)) == NULL)
				continue;
			o->state = OBJ_PURGED;
			o->have_fp = snap[i].have_fp;
			o->cls = snap[i].cls;
			o->id_len = snap[i].id_len;
			o->label_len = snap[i].label_len;
			memcpy(o->id, snap[i].id, sizeof(o->id));
			memcpy(o->label, snap[i].label, sizeof(o->label));
		}
	}
	unlock_state();
	free(snap);
	sess_unpin(on);
}

/*
 * After a C_Login: finds the objects `logout` made the real module forget
 * (by class, id and label) and maps their old handles to the new ones.
 */
static void
relocate_purged(CK_SESSION_HANDLE rs)
{
	struct objrec *o, *snap = NULL;
	CK_OBJECT_HANDLE found[2];
	CK_ATTRIBUTE tmpl[4];
	CK_BBOOL token = CK_TRUE;
	CK_ULONG nfound, nt;
	size_t n = 0, cap = 0, i;
	uint32_t ep;
	CK_RV rv;

	lock_state();
	ep = obj_epoch;
	for (i = 0; i < OBJ_BUCKETS; i++)
		for (o = objs[i]; o != NULL; o = o->next)
			cap += o->state == OBJ_PURGED;
	if (cap > 0 && (snap = calloc(cap, sizeof(*snap))) != NULL) {
		for (i = 0; i < OBJ_BUCKETS; i++)
			for (o = objs[i]; o != NULL && n < cap; o = o->next)
				if (o->state == OBJ_PURGED)
					snap[n++] = *o;
	}
	unlock_state();
	if (cap > 0 && snap == NULL) {
		ev_log("error out of memory relocating objects");
		return;
	}
	for (i = 0; i < n; i++) {
		snap[i].state = OBJ_LOST;
		if (!snap[i].have_fp)
			continue;
		nt = 0;
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &snap[i].cls, sizeof(snap[i].cls) };
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_TOKEN, &token, sizeof(token) };
		if (snap[i].id_len <= FP_MAX)
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, snap[i].id, snap[i].id_len };
		if (snap[i].label_len <= FP_MAX)
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, snap[i].label, snap[i].label_len };
		if ((rv = real->C_FindObjectsInit(rs, tmpl, nt)) != CKR_OK)
			continue;
		nfound = 0;
		rv = real->C_FindObjects(rs, found, 2, &nfound);
		(void)real->C_FindObjectsFinal(rs);
		/* two matches: no way to tell which one the handle meant */
		if (rv == CKR_OK && nfound == 1 && found[0] <= LOW32) {
			snap[i].state = OBJ_REMAPPED;
			snap[i].cur = found[0];
		}
	}
	lock_state();
	for (i = 0; i < n && obj_epoch == ep; i++) {
		if ((o = obj_find_locked(snap[i].orig)) == NULL || o->state != OBJ_PURGED)
			continue;
		o->state = snap[i].state;
		o->cur = snap[i].cur;
	}
	unlock_state();
	free(snap);
}

/*
 * Re-reads the control file if it changed and does what the new version
 * asks of the real module.
 */
static void
ctl_refresh(void)
{
	struct actions act;
	struct conf cf;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int exists, changed;

	memset(&act, 0, sizeof(act));
	lock_state();
	if (ctl_path[0] == '\0')
		goto out;
	memset(&st, 0, sizeof(st));
	exists = stat(ctl_path, &st) == 0;
	changed = !ctl.have || exists != ctl.exists || (exists &&
	    (st.st_dev != ctl.dev || st.st_ino != ctl.ino || st.st_size != ctl.size ||
	    st.st_mtim.tv_sec != ctl.mtim.tv_sec || st.st_mtim.tv_nsec != ctl.mtim.tv_nsec));
	if (!changed && !(exists && mtime_recent(&st)))
		goto out;
	if (ctl_read_locked(&buf, &len, &st) != 0) {
		/* unreadable for a moment: keep the version in force */
		goto out;
	}
	ctl.exists = buf != NULL;
	ctl.dev = st.st_dev;
	ctl.ino = st.st_ino;
	ctl.size = st.st_size;
	ctl.mtim = st.st_mtim;
	if (ctl.have && len == ctl.len && (len == 0 || memcmp(buf, ctl.text, len) == 0))
		goto out;	/* same text: nothing to do */
	conf_parse_locked(buf != NULL ? buf : "", len, &cf);
	conf_apply_locked(&cf, &act);
	free(ctl.text);
	ctl.text = buf;
	ctl.len = len;
	buf = NULL;
 out:
	unlock_state();
	free(buf);
	if (act.logout_on != NULL)
		do_logout(act.logout_on, act.logout_event);
	reap();
}

/* 1 if a hang/latency rule with this text is still in force. */
static int
rule_present(const char *text)
{
	struct rule *r;
	int found = 0;

	lock_state();
	for (r = ctl.conf.rules; r != NULL && !found; r = r->next)
		found = r->kind != RULE_FAIL && strcmp(r->text, text) == 0;
	unlock_state();
	return found;
}

/*
 * Sleeps ms in slices, re-reading the control file after each; returns 1 if
 * the rule's line went away (the test ended the hang), else 0.
 */
static int
nap(const char *text, unsigned long ms)
{
	uint64_t end = now_ms() + ms, t;
	struct timespec ts;

	while ((t = now_ms()) < end) {
		t = end - t < TCA_FAULTY_SLICE_MS ? end - t : TCA_FAULTY_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)t * 1000000;
		/* EINTR only shortens one slice */
		(void)nanosleep(&ts, NULL);
		ctl_refresh();
		if (!rule_present(text))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------- the core */

static int
reinit_exempt(int fn)
{
	return fn == FN_Initialize || fn == FN_Finalize || fn == FN_GetInfo ||
	    fn == FN_GetFunctionList;
}

/* Whether the module is in a state to take the call at all. */
static CK_RV
state_check_locked(int fn)
{
	if (!initialized && fn != FN_Initialize)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (reinit_required && !reinit_exempt(fn))
		return CKR_DEVICE_ERROR;
	return CKR_OK;
}

/*
 * Start of every call: control file, fail/hang/latency rules, state.
 * CKR_OK: go on.  Else return the rv (c->injected says it was a fail rule).
 */
static CK_RV
call_begin(struct call *c, int fn)
{
	char hang_text[TCA_FAULTY_MAX_LINE + 1], lat_text[TCA_FAULTY_MAX_LINE + 1];
	unsigned long hang_ms = 0, lat_ms = 0;
	int hang = 0, lat = 0, cut;
	char rvb[32];
	struct rule *r;
	CK_RV rv;

	memset(c, 0, sizeof(*c));
	c->fn = fn;
	if (real == NULL)
		return CKR_GENERAL_ERROR;
	ctl_refresh();
	lock_state();
	if ((rv = state_check_locked(fn)) != CKR_OK)
		goto out;
	/* a crashing module takes its process with it (the logged line is
	 * written with write(2) before) */
	for (r = ctl.conf.rules; r != NULL; r = r->next) {
		if (r->kind != RULE_CRASH || !fn_matches(r->fn, fn) || r->cnt->left == 0)
			continue;
		if (r->cnt->left > 0)
			r->cnt->left--;
		ev_log_locked("crash %s", fn_names[fn]);
		abort();
	}
	/* a failing call fails at once: fail rules before any sleep */
	for (r = ctl.conf.rules; r != NULL; r = r->next) {
		if (r->kind != RULE_FAIL || !fn_matches(r->fn, fn) || r->cnt->left == 0)
			continue;
		if (r->cnt->left > 0)
			r->cnt->left--;
		c->injected = 1;
		rv = r->rv;
		ev_log_locked("fail %s %s", fn_names[fn], rv_name(rv, rvb, sizeof(rvb)));
		goto out;
	}
	for (r = ctl.conf.rules; r != NULL; r = r->next) {
		if (!fn_matches(r->fn, fn) || r->kind == RULE_FAIL || r->kind == RULE_CRASH ||
		    (r->kind == RULE_HANG && r->cnt->left == 0))
			continue;
		if (r->kind == RULE_HANG && !hang) {
			if (r->cnt->left > 0)
				r->cnt->left--;
			hang = 1;
			hang_ms = r->ms;
			memcpy(hang_text, r->text, sizeof(hang_text));
			ev_log_locked("hang %s %lu begin", fn_names[fn], hang_ms);
		} else if (r->kind == RULE_LATENCY && !lat) {
			lat = 1;
			lat_ms = r->ms;
			memcpy(lat_text, r->text, sizeof(lat_text));
		}
	}
	unlock_state();

	if (hang) {
		cut = nap(hang_text, hang_ms);
		ev_log("hang %s end%s", fn_names[fn], cut ? " interrupted" : "");
	}
	if (lat)
		(void)nap(lat_text, lat_ms);

	lock_state();
	/* the world may have changed while we slept */
	rv = state_check_locked(fn);
 out:
	c->obj_epoch = obj_epoch;
	unlock_state();
	return rv;
}

/* 1 if an error return from fn ends the session's active operation. */
static int
fn_ends_op(int fn)
{
	switch (fn) {
	case FN_Encrypt: case FN_EncryptUpdate: case FN_EncryptFinal:
	case FN_Decrypt: case FN_DecryptUpdate: case FN_DecryptFinal:
	case FN_Digest: case FN_DigestUpdate: case FN_DigestKey: case FN_DigestFinal:
	case FN_Sign: case FN_SignUpdate: case FN_SignFinal: case FN_SignRecover:
	case FN_Verify: case FN_VerifyUpdate: case FN_VerifyFinal: case FN_VerifyRecover:
		return 1;
	}
	return 0;
}

/*
 * Start of a call on a session: call_begin, then the session's own state.
 * On CKR_OK the session is pinned (c->e, real handle c->rs); sess_end()
 * must follow.  On an injected error from a call that ends operations the
 * session is pinned too, with c->terminate set.
 */
static CK_RV
sess_begin(struct call *c, int fn, CK_SESSION_HANDLE h)
{
	struct sess *e;
	uint64_t now, since;
	CK_RV rv;

	rv = call_begin(c, fn);
	if (rv != CKR_OK && !c->injected)
		return rv;
	lock_state();
	now = now_ms();
	e = sess_find_locked(h);
	if (c->injected) {
		/* spec: an error (but not CKR_BUFFER_TOO_SMALL) ends the op */
		if (e != NULL && !e->dead && !e->expired && !removed &&
		    fn_ends_op(fn) && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_OK) {
			e->inflight++;
			c->e = e;
			c->rs = e->real;
			c->terminate = 1;
		}
		goto out;
	}
	if (removed) {
		rv = CKR_DEVICE_REMOVED;
		goto out;
	}
	if (e == NULL || e->dead) {
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	since = e->last_used > idle_since ? e->last_used : idle_since;
	if (!e->expired && ctl.conf.idle_ms > 0 && now > since &&
	    now - since >= ctl.conf.idle_ms) {
		e->expired = 1;
		ev_log_locked("%s", TCA_FAULTY_LOG_IDLE);
	}
	if (e->expired) {
		/* the application lets go of it: now the real one can close */
		if (fn == FN_CloseSession)
			sess_kill_locked(e, 1);
		rv = CKR_SESSION_HANDLE_INVALID;
		goto out;
	}
	e->inflight++;
	e->last_used = now;
	c->e = e;
	c->rs = e->real;
 out:
	unlock_state();
	if (c->e == NULL)
		reap();
	return rv;
}

static CK_RV
sess_end(struct call *c, CK_RV rv)
{
	if (c->e != NULL) {
		sess_unpin(c->e);
		c->e = NULL;
	}
	return rv;
}

/*
 * An injected error ended the operation for the application; end it in the
 * real module too, so that the next C_*Init on the session works as on a
 * real HSM.  Single-part calls are finished with the application's input
 * (SoftHSMv2 does not end a single-part operation on C_*Final); results go
 * to a scratch buffer and are thrown away.
 */
static void
op_finish(struct call *c, CK_BYTE_PTR in, CK_ULONG in_len)
{
	CK_BYTE scratch[SCRATCH_LEN], *big = NULL, *out = scratch;
	CK_ULONG len = 0;
	CK_RV rv = CKR_OK;
	int tries;

	memset(scratch, 0, sizeof(scratch));
	for (tries = 0; tries < 2; tries++) {
		len = out == scratch ? sizeof(scratch) : len;
		switch (c->fn) {
		case FN_Sign:
			rv = real->C_Sign(c->rs, in, in_len, out, &len);
			break;
		case FN_SignUpdate: case FN_SignFinal:
			rv = real->C_SignFinal(c->rs, out, &len);
			break;
		case FN_SignRecover:
			rv = real->C_SignRecover(c->rs, in, in_len, out, &len);
			break;
		case FN_Verify:
			/* a 1-byte signature: wrong length, which ends it */
			rv = real->C_Verify(c->rs, in, in_len, scratch, 1);
			break;
		case FN_VerifyUpdate: case FN_VerifyFinal:
			rv = real->C_VerifyFinal(c->rs, scratch, 1);
			break;
		case FN_VerifyRecover:
			rv = real->C_VerifyRecover(c->rs, scratch, 1, out, &len);
			break;
		case FN_Digest:
			rv = real->C_Digest(c->rs, in, in_len, out, &len);
			break;
		case FN_DigestUpdate: case FN_DigestKey: case FN_DigestFinal:
			rv = real->C_DigestFinal(c->rs, out, &len);
			break;
		case FN_Encrypt:
			rv = real->C_Encrypt(c->rs, in, in_len, out, &len);
			break;
		case FN_EncryptUpdate: case FN_EncryptFinal:
			rv = real->C_EncryptFinal(c->rs, out, &len);
			break;
		case FN_Decrypt:
			rv = real->C_Decrypt(c->rs, in, in_len, out, &len);
			break;
		case FN_DecryptUpdate: case FN_DecryptFinal:
			rv = real->C_DecryptFinal(c->rs, out, &len);
			break;
		default:
			return;
		}
		/* too small does not end it: once more with the size it wants */
		if (rv != CKR_BUFFER_TOO_SMALL || big != NULL || len > 16 * 1024 * 1024 ||
		    (big = malloc(len)) == NULL)
			break;
		out = big;
	}
	free(big);
}

/* --------------------------------------------------- general functions */

static CK_RV
fc_Initialize(CK_VOID_PTR args)
{
	struct call c;
	char rvb[32];
	CK_RV rv;

	lock_state();
	env_load_locked();
	unlock_state();
	if ((rv = call_begin(&c, FN_Initialize)) != CKR_OK)
		goto out;
	if ((rv = real->C_Initialize(args)) != CKR_OK)
		goto out;
	lock_state();
	initialized = 1;
	/* nothing from before the real module's restart is valid */
	sess_epoch = epoch_next(sess_epoch);
	obj_epoch_bump_locked();
	if (reinit_required && reinit_finalized) {
		reinit_required = reinit_finalized = 0;
		ev_log_locked("%s", TCA_FAULTY_LOG_REINIT_DONE);
	}
	unlock_state();
 out:
	ev_log("call C_Initialize rv=%s", rv_name(rv, rvb, sizeof(rvb)));
	return rv;
}

static CK_RV
fc_Finalize(CK_VOID_PTR reserved)
{
	struct call c;
	struct sess *e;
	char rvb[32];
	CK_RV rv;

	if ((rv = call_begin(&c, FN_Finalize)) != CKR_OK)
		goto out;
	if ((rv = real->C_Finalize(reserved)) != CKR_OK)
		goto out;
	lock_state();
	initialized = 0;
	/* the real module closed them all */
	for (e = sessions; e != NULL; e = e->next)
		sess_kill_locked(e, 0);
	if (reinit_required)
		reinit_finalized = 1;
	unlock_state();
	reap();
 out:
	ev_log("call C_Finalize rv=%s", rv_name(rv, rvb, sizeof(rvb)));
	return rv;
}

static CK_RV
fc_GetInfo(CK_INFO_PTR info)
{
	struct call c;
	CK_RV rv;

	if ((rv = call_begin(&c, FN_GetInfo)) != CKR_OK)
		return rv;
	return real->C_GetInfo(info);
}

static CK_FUNCTION_LIST function_list;

/* ---------------------------------------------------- slots and tokens */

static int
is_removed(void)
{
	int r;

	lock_state();
	r = removed;
	unlock_state();
	return r;
}

static CK_RV
fc_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	struct call c;
	CK_RV rv;

	if ((rv = call_begin(&c, FN_GetSlotList)) != CKR_OK)
		return rv;
	if (present && is_removed()) {
		if (count == NULL)
			return CKR_ARGUMENTS_BAD;
		*count = 0;
		return CKR_OK;
	}
	return real->C_GetSlotList(present, list, count);
}

static CK_RV
fc_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	struct call c;
	CK_RV rv;

	if ((rv = call_begin(&c, FN_GetSlotInfo)) != CKR_OK)
		return rv;
	if ((rv = real->C_GetSlotInfo(slot, info)) == CKR_OK && is_removed())
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return rv;
}

/* call_begin for a call that needs the token in its slot */
static CK_RV
token_begin(struct call *c, int fn)
{
	CK_RV rv;

	if ((rv = call_begin(c, fn)) != CKR_OK)
		return rv;
	return is_removed() ? CKR_TOKEN_NOT_PRESENT : CKR_OK;
}

static CK_RV
fc_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	struct call c;
	CK_RV rv;

	if ((rv = token_begin(&c, FN_GetTokenInfo)) != CKR_OK)
		return rv;
	return real->C_GetTokenInfo(slot, info);
}

static CK_RV
fc_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	struct call c;
	CK_RV rv;

	if ((rv = token_begin(&c, FN_GetMechanismList)) != CKR_OK)
		return rv;
	return real->C_GetMechanismList(slot, list, count);
}

static CK_RV
fc_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	struct call c;
	CK_RV rv;

	if ((rv = token_begin(&c, FN_GetMechanismInfo)) != CKR_OK)
		return rv;
	return real->C_GetMechanismInfo(slot, type, info);
}

static CK_RV
fc_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
	struct call c;
	CK_RV rv;

	if ((rv = token_begin(&c, FN_InitToken)) != CKR_OK)
		return rv;
	return real->C_InitToken(slot, pin, pin_len, label);
}

static CK_RV
fc_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	/* slot events would have to follow `remove`; nothing here uses them */
	return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ------------------------------------------------------------ sessions */

static CK_RV
fc_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
    CK_SESSION_HANDLE_PTR out)
{
	struct call c;
	struct sess *e = NULL;
	CK_SESSION_HANDLE rs;
	uint32_t ep;
	CK_RV rv;

	if ((rv = token_begin(&c, FN_OpenSession)) != CKR_OK)
		return rv;
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	lock_state();
	ep = sess_epoch;
	unlock_state();
	/*
	 * No notify callback: it would be called with the real handle, and
	 * SoftHSMv2 never calls it anyway.
	 */
	if ((rv = real->C_OpenSession(slot, flags, NULL, NULL, &rs)) != CKR_OK)
		return rv;
	if (rs > LOW32 || (e = calloc(1, sizeof(*e))) == NULL) {
		(void)real->C_CloseSession(rs);
		return rs > LOW32 ? CKR_GENERAL_ERROR : CKR_HOST_MEMORY;
	}
	lock_state();
	if (ep != sess_epoch || removed || !initialized) {
		/* removed or restarted while the real call ran: it is gone */
		unlock_state();
		free(e);
		(void)real->C_CloseSession(rs);
		return CKR_DEVICE_REMOVED;
	}
	e->real = rs;
	e->slot = slot;
	e->wrapped = WRAP(sess_epoch, rs);
	e->last_used = now_ms();
	e->next = sessions;
	sessions = e;
	*out = e->wrapped;
	unlock_state();
	return CKR_OK;
}

static CK_RV
fc_CloseSession(CK_SESSION_HANDLE h)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_CloseSession, h)) != CKR_OK)
		return sess_end(&c, rv);
	/* closed for real once no other call uses it (see reap) */
	lock_state();
	sess_kill_locked(c.e, 1);
	unlock_state();
	return sess_end(&c, CKR_OK);
}

static CK_RV
fc_CloseAllSessions(CK_SLOT_ID slot)
{
	struct call c;
	struct sess *e;
	CK_RV rv;

	if ((rv = call_begin(&c, FN_CloseAllSessions)) != CKR_OK)
		return rv;
	if (is_removed())
		return CKR_TOKEN_NOT_PRESENT;	/* they died with the removal */
	if ((rv = real->C_CloseAllSessions(slot)) != CKR_OK)
		return rv;
	lock_state();
	for (e = sessions; e != NULL; e = e->next)
		if (e->slot == slot)
			sess_kill_locked(e, 0);
	unlock_state();
	reap();
	return CKR_OK;
}

static CK_RV
fc_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GetSessionInfo, h)) == CKR_OK)
		rv = real->C_GetSessionInfo(c.rs, info);
	return sess_end(&c, rv);
}

static CK_RV
fc_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG_PTR len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GetOperationState, h)) == CKR_OK)
		rv = real->C_GetOperationState(c.rs, state, len);
	return sess_end(&c, rv);
}

static CK_RV
fc_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG len,
    CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
	struct call c;
	CK_OBJECT_HANDLE ek, ak;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_SetOperationState, h)) == CKR_OK &&
	    (rv = obj_unwrap_opt(&c, enc_key, &ek)) == CKR_OK &&
	    (rv = obj_unwrap_opt(&c, auth_key, &ak)) == CKR_OK)
		rv = real->C_SetOperationState(c.rs, state, len, ek, ak);
	return sess_end(&c, rv);
}

static CK_RV
fc_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	struct call c;
	char rvb[32];
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_Login, h)) == CKR_OK) {
		rv = real->C_Login(c.rs, user, pin, pin_len);
		if (user == CKU_USER && (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN))
			relocate_purged(c.rs);
	}
	/* never the PIN */
	ev_log("call C_Login rv=%s", rv_name(rv, rvb, sizeof(rvb)));
	return sess_end(&c, rv);
}

static CK_RV
fc_Logout(CK_SESSION_HANDLE h)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_Logout, h)) == CKR_OK)
		rv = real->C_Logout(c.rs);
	return sess_end(&c, rv);
}

static CK_RV
fc_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_InitPIN, h)) == CKR_OK)
		rv = real->C_InitPIN(c.rs, pin, pin_len);
	return sess_end(&c, rv);
}

static CK_RV
fc_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
    CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_SetPIN, h)) == CKR_OK)
		rv = real->C_SetPIN(c.rs, old_pin, old_len, new_pin, new_len);
	return sess_end(&c, rv);
}

/* ------------------------------------------------------------- objects */

static CK_RV
fc_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR out)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_CreateObject, h)) == CKR_OK &&
	    (rv = real->C_CreateObject(c.rs, tmpl, n, out)) == CKR_OK)
		rv = obj_wrap_out(&c, out, 1);
	return sess_end(&c, rv);
}

static CK_RV
fc_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
	struct call c;
	CK_OBJECT_HANDLE ro;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_CopyObject, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, obj, 0, &ro)) == CKR_OK &&
	    (rv = real->C_CopyObject(c.rs, ro, tmpl, n, out)) == CKR_OK)
		rv = obj_wrap_out(&c, out, 1);
	return sess_end(&c, rv);
}

static CK_RV
fc_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	struct call c;
	CK_OBJECT_HANDLE ro;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_DestroyObject, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, obj, 0, &ro)) == CKR_OK)
		rv = real->C_DestroyObject(c.rs, ro);
	return sess_end(&c, rv);
}

static CK_RV
fc_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size)
{
	struct call c;
	CK_OBJECT_HANDLE ro;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GetObjectSize, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, obj, 0, &ro)) == CKR_OK)
		rv = real->C_GetObjectSize(c.rs, ro, size);
	return sess_end(&c, rv);
}

static CK_RV
fc_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n)
{
	struct call c;
	CK_OBJECT_HANDLE ro;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GetAttributeValue, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, obj, 0, &ro)) == CKR_OK)
		rv = real->C_GetAttributeValue(c.rs, ro, tmpl, n);
	return sess_end(&c, rv);
}

static CK_RV
fc_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n)
{
	struct call c;
	CK_OBJECT_HANDLE ro;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_SetAttributeValue, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, obj, 0, &ro)) == CKR_OK)
		rv = real->C_SetAttributeValue(c.rs, ro, tmpl, n);
	return sess_end(&c, rv);
}

static CK_RV
fc_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_FindObjectsInit, h)) == CKR_OK)
		rv = real->C_FindObjectsInit(c.rs, tmpl, n);
	return sess_end(&c, rv);
}

static CK_RV
fc_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
    CK_ULONG_PTR count)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_FindObjects, h)) == CKR_OK &&
	    (rv = real->C_FindObjects(c.rs, out, max, count)) == CKR_OK)
		rv = obj_wrap_out(&c, out, *count);
	return sess_end(&c, rv);
}

static CK_RV
fc_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_FindObjectsFinal, h)) == CKR_OK)
		rv = real->C_FindObjectsFinal(c.rs);
	return sess_end(&c, rv);
}

/* ------------------------------------------------- crypto: init with key */

/*
 * C_EncryptInit, C_DecryptInit, C_SignInit, C_SignRecoverInit,
 * C_VerifyInit, C_VerifyRecoverInit: a session, a mechanism and a key.
 */
static CK_RV
key_init(int fn, CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	struct call c;
	CK_OBJECT_HANDLE rk;
	CK_RV rv;

	if ((rv = sess_begin(&c, fn, h)) != CKR_OK ||
	    (rv = obj_unwrap(&c, key, 1, &rk)) != CKR_OK)
		return sess_end(&c, rv);
	switch (fn) {
	case FN_EncryptInit:
		rv = real->C_EncryptInit(c.rs, mech, rk);
		break;
	case FN_DecryptInit:
		rv = real->C_DecryptInit(c.rs, mech, rk);
		break;
	case FN_SignInit:
		rv = real->C_SignInit(c.rs, mech, rk);
		break;
	case FN_SignRecoverInit:
		rv = real->C_SignRecoverInit(c.rs, mech, rk);
		break;
	case FN_VerifyInit:
		rv = real->C_VerifyInit(c.rs, mech, rk);
		break;
	case FN_VerifyRecoverInit:
		rv = real->C_VerifyRecoverInit(c.rs, mech, rk);
		break;
	default:
		rv = CKR_GENERAL_ERROR;
		break;
	}
	return sess_end(&c, rv);
}

static CK_RV
fc_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_EncryptInit, h, m, k);
}

static CK_RV
fc_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_DecryptInit, h, m, k);
}

static CK_RV
fc_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_SignInit, h, m, k);
}

static CK_RV
fc_SignRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_SignRecoverInit, h, m, k);
}

static CK_RV
fc_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_VerifyInit, h, m, k);
}

static CK_RV
fc_VerifyRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return key_init(FN_VerifyRecoverInit, h, m, k);
}

static CK_RV
fc_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_DigestInit, h)) == CKR_OK)
		rv = real->C_DigestInit(c.rs, m);
	return sess_end(&c, rv);
}

static CK_RV
fc_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	struct call c;
	CK_OBJECT_HANDLE rk;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_DigestKey, h)) == CKR_OK) {
		if ((rv = obj_unwrap(&c, key, 1, &rk)) == CKR_OK)
			rv = real->C_DigestKey(c.rs, rk);
	} else if (c.terminate)
		op_finish(&c, NULL, 0);
	return sess_end(&c, rv);
}

/* -------------------------------------- crypto: in -> out, ends op on error */

/*
 * The single-part and Update calls that take input and produce output:
 * C_Encrypt, C_EncryptUpdate, C_Decrypt, C_DecryptUpdate, C_Digest,
 * C_Sign, C_SignRecover, C_VerifyRecover and the dual-function updates.
 */
static CK_RV
in_out(int fn, CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
    CK_ULONG_PTR out_len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, fn, h)) != CKR_OK) {
		if (c.terminate)
			op_finish(&c, in, in_len);
		return sess_end(&c, rv);
	}
	switch (fn) {
	case FN_Encrypt:
		rv = real->C_Encrypt(c.rs, in, in_len, out, out_len);
		break;
	case FN_EncryptUpdate:
		rv = real->C_EncryptUpdate(c.rs, in, in_len, out, out_len);
		break;
	case FN_Decrypt:
		rv = real->C_Decrypt(c.rs, in, in_len, out, out_len);
		break;
	case FN_DecryptUpdate:
		rv = real->C_DecryptUpdate(c.rs, in, in_len, out, out_len);
		break;
	case FN_Digest:
		rv = real->C_Digest(c.rs, in, in_len, out, out_len);
		break;
	case FN_Sign:
		rv = real->C_Sign(c.rs, in, in_len, out, out_len);
		break;
	case FN_SignRecover:
		rv = real->C_SignRecover(c.rs, in, in_len, out, out_len);
		break;
	case FN_VerifyRecover:
		rv = real->C_VerifyRecover(c.rs, in, in_len, out, out_len);
		break;
	case FN_DigestEncryptUpdate:
		rv = real->C_DigestEncryptUpdate(c.rs, in, in_len, out, out_len);
		break;
	case FN_DecryptDigestUpdate:
		rv = real->C_DecryptDigestUpdate(c.rs, in, in_len, out, out_len);
		break;
	case FN_SignEncryptUpdate:
		rv = real->C_SignEncryptUpdate(c.rs, in, in_len, out, out_len);
		break;
	case FN_DecryptVerifyUpdate:
		rv = real->C_DecryptVerifyUpdate(c.rs, in, in_len, out, out_len);
		break;
	default:
		rv = CKR_GENERAL_ERROR;
		break;
	}
	return sess_end(&c, rv);
}

/* C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal */
static CK_RV
out_only(int fn, CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, fn, h)) != CKR_OK) {
		if (c.terminate)
			op_finish(&c, NULL, 0);
		return sess_end(&c, rv);
	}
	switch (fn) {
	case FN_EncryptFinal:
		rv = real->C_EncryptFinal(c.rs, out, out_len);
		break;
	case FN_DecryptFinal:
		rv = real->C_DecryptFinal(c.rs, out, out_len);
		break;
	case FN_DigestFinal:
		rv = real->C_DigestFinal(c.rs, out, out_len);
		break;
	case FN_SignFinal:
		rv = real->C_SignFinal(c.rs, out, out_len);
		break;
	default:
		rv = CKR_GENERAL_ERROR;
		break;
	}
	return sess_end(&c, rv);
}

/* C_DigestUpdate, C_SignUpdate, C_VerifyUpdate, C_VerifyFinal, C_SeedRandom */
static CK_RV
in_only(int fn, CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, fn, h)) != CKR_OK) {
		if (c.terminate)
			op_finish(&c, in, in_len);
		return sess_end(&c, rv);
	}
	switch (fn) {
	case FN_DigestUpdate:
		rv = real->C_DigestUpdate(c.rs, in, in_len);
		break;
	case FN_SignUpdate:
		rv = real->C_SignUpdate(c.rs, in, in_len);
		break;
	case FN_VerifyUpdate:
		rv = real->C_VerifyUpdate(c.rs, in, in_len);
		break;
	case FN_VerifyFinal:
		rv = real->C_VerifyFinal(c.rs, in, in_len);
		break;
	case FN_SeedRandom:
		rv = real->C_SeedRandom(c.rs, in, in_len);
		break;
	default:
		rv = CKR_GENERAL_ERROR;
		break;
	}
	return sess_end(&c, rv);
}

static CK_RV
fc_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return in_out(FN_Encrypt, h, in, il, out, ol);
}

static CK_RV
fc_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_EncryptUpdate, h, in, il, out, ol);
}

static CK_RV
fc_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return out_only(FN_EncryptFinal, h, out, ol);
}

static CK_RV
fc_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return in_out(FN_Decrypt, h, in, il, out, ol);
}

static CK_RV
fc_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_DecryptUpdate, h, in, il, out, ol);
}

static CK_RV
fc_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return out_only(FN_DecryptFinal, h, out, ol);
}

static CK_RV
fc_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return in_out(FN_Digest, h, in, il, out, ol);
}

static CK_RV
fc_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il)
{
	return in_only(FN_DigestUpdate, h, in, il);
}

static CK_RV
fc_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return out_only(FN_DigestFinal, h, out, ol);
}

static CK_RV
fc_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return in_out(FN_Sign, h, in, il, out, ol);
}

static CK_RV
fc_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il)
{
	return in_only(FN_SignUpdate, h, in, il);
}

static CK_RV
fc_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	return out_only(FN_SignFinal, h, out, ol);
}

static CK_RV
fc_SignRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_SignRecover, h, in, il, out, ol);
}

static CK_RV
fc_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR sig, CK_ULONG sl)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_Verify, h)) == CKR_OK)
		rv = real->C_Verify(c.rs, in, il, sig, sl);
	else if (c.terminate)
		op_finish(&c, in, il);
	return sess_end(&c, rv);
}

static CK_RV
fc_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il)
{
	return in_only(FN_VerifyUpdate, h, in, il);
}

static CK_RV
fc_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sl)
{
	return in_only(FN_VerifyFinal, h, sig, sl);
}

static CK_RV
fc_VerifyRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sl, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_VerifyRecover, h, sig, sl, out, ol);
}

/* Injected errors in dual-function calls do not end the real operations. */
static CK_RV
fc_DigestEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_DigestEncryptUpdate, h, in, il, out, ol);
}

static CK_RV
fc_DecryptDigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_DecryptDigestUpdate, h, in, il, out, ol);
}

static CK_RV
fc_SignEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_SignEncryptUpdate, h, in, il, out, ol);
}

static CK_RV
fc_DecryptVerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
    CK_ULONG_PTR ol)
{
	return in_out(FN_DecryptVerifyUpdate, h, in, il, out, ol);
}

/* ---------------------------------------------------------------- keys */

static CK_RV
fc_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR out)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GenerateKey, h)) == CKR_OK &&
	    (rv = real->C_GenerateKey(c.rs, m, tmpl, n, out)) == CKR_OK)
		rv = obj_wrap_out(&c, out, 1);
	return sess_end(&c, rv);
}

static CK_RV
fc_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub_tmpl,
    CK_ULONG pub_n, CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_n,
    CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GenerateKeyPair, h)) == CKR_OK &&
	    (rv = real->C_GenerateKeyPair(c.rs, m, pub_tmpl, pub_n, priv_tmpl, priv_n,
	    pub, priv)) == CKR_OK &&
	    (rv = obj_wrap_out(&c, pub, 1)) == CKR_OK)
		rv = obj_wrap_out(&c, priv, 1);
	return sess_end(&c, rv);
}

static CK_RV
fc_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wrapping,
    CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct call c;
	CK_OBJECT_HANDLE rw, rk;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_WrapKey, h)) != CKR_OK)
		return sess_end(&c, rv);
	if ((rv = obj_unwrap(&c, wrapping, 1, &rw)) != CKR_OK)
		return sess_end(&c, rv == CKR_KEY_HANDLE_INVALID ?
		    CKR_WRAPPING_KEY_HANDLE_INVALID : rv);
	if ((rv = obj_unwrap(&c, key, 1, &rk)) == CKR_OK)
		rv = real->C_WrapKey(c.rs, m, rw, rk, out, out_len);
	return sess_end(&c, rv);
}

static CK_RV
fc_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE unwrapping,
    CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR out)
{
	struct call c;
	CK_OBJECT_HANDLE ru;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_UnwrapKey, h)) != CKR_OK)
		return sess_end(&c, rv);
	if ((rv = obj_unwrap(&c, unwrapping, 1, &ru)) != CKR_OK)
		return sess_end(&c, rv == CKR_KEY_HANDLE_INVALID ?
		    CKR_UNWRAPPING_KEY_HANDLE_INVALID : rv);
	if ((rv = real->C_UnwrapKey(c.rs, m, ru, wrapped, wrapped_len, tmpl, n, out)) == CKR_OK)
		rv = obj_wrap_out(&c, out, 1);
	return sess_end(&c, rv);
}

static CK_RV
fc_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE base,
    CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
	struct call c;
	CK_OBJECT_HANDLE rb;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_DeriveKey, h)) == CKR_OK &&
	    (rv = obj_unwrap(&c, base, 1, &rb)) == CKR_OK &&
	    (rv = real->C_DeriveKey(c.rs, m, rb, tmpl, n, out)) == CKR_OK)
		rv = obj_wrap_out(&c, out, 1);
	return sess_end(&c, rv);
}

/* --------------------------------------------------------------- misc */

static CK_RV
fc_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len)
{
	return in_only(FN_SeedRandom, h, seed, len);
}

static CK_RV
fc_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GenerateRandom, h)) == CKR_OK)
		rv = real->C_GenerateRandom(c.rs, out, len);
	return sess_end(&c, rv);
}

static CK_RV
fc_GetFunctionStatus(CK_SESSION_HANDLE h)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_GetFunctionStatus, h)) == CKR_OK)
		rv = real->C_GetFunctionStatus(c.rs);
	return sess_end(&c, rv);
}

static CK_RV
fc_CancelFunction(CK_SESSION_HANDLE h)
{
	struct call c;
	CK_RV rv;

	if ((rv = sess_begin(&c, FN_CancelFunction, h)) == CKR_OK)
		rv = real->C_CancelFunction(c.rs);
	return sess_end(&c, rv);
}

/* ------------------------------------------------------- loading, list */

static CK_RV fc_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR);

static CK_FUNCTION_LIST function_list = {
	.version = { 2, 40 },
	.C_Initialize = fc_Initialize,
	.C_Finalize = fc_Finalize,
	.C_GetInfo = fc_GetInfo,
	.C_GetFunctionList = fc_GetFunctionList,
	.C_GetSlotList = fc_GetSlotList,
	.C_GetSlotInfo = fc_GetSlotInfo,
	.C_GetTokenInfo = fc_GetTokenInfo,
	.C_GetMechanismList = fc_GetMechanismList,
	.C_GetMechanismInfo = fc_GetMechanismInfo,
	.C_InitToken = fc_InitToken,
	.C_InitPIN = fc_InitPIN,
	.C_SetPIN = fc_SetPIN,
	.C_OpenSession = fc_OpenSession,
	.C_CloseSession = fc_CloseSession,
	.C_CloseAllSessions = fc_CloseAllSessions,
	.C_GetSessionInfo = fc_GetSessionInfo,
	.C_GetOperationState = fc_GetOperationState,
	.C_SetOperationState = fc_SetOperationState,
	.C_Login = fc_Login,
	.C_Logout = fc_Logout,
	.C_CreateObject = fc_CreateObject,
	.C_CopyObject = fc_CopyObject,
	.C_DestroyObject = fc_DestroyObject,
	.C_GetObjectSize = fc_GetObjectSize,
	.C_GetAttributeValue = fc_GetAttributeValue,
	.C_SetAttributeValue = fc_SetAttributeValue,
	.C_FindObjectsInit = fc_FindObjectsInit,
	.C_FindObjects = fc_FindObjects,
	.C_FindObjectsFinal = fc_FindObjectsFinal,
	.C_EncryptInit = fc_EncryptInit,
	.C_Encrypt = fc_Encrypt,
	.C_EncryptUpdate = fc_EncryptUpdate,
	.C_EncryptFinal = fc_EncryptFinal,
	.C_DecryptInit = fc_DecryptInit,
	.C_Decrypt = fc_Decrypt,
	.C_DecryptUpdate = fc_DecryptUpdate,
	.C_DecryptFinal = fc_DecryptFinal,
	.C_DigestInit = fc_DigestInit,
	.C_Digest = fc_Digest,
	.C_DigestUpdate = fc_DigestUpdate,
	.C_DigestKey = fc_DigestKey,
	.C_DigestFinal = fc_DigestFinal,
	.C_SignInit = fc_SignInit,
	.C_Sign = fc_Sign,
	.C_SignUpdate = fc_SignUpdate,
	.C_SignFinal = fc_SignFinal,
	.C_SignRecoverInit = fc_SignRecoverInit,
	.C_SignRecover = fc_SignRecover,
	.C_VerifyInit = fc_VerifyInit,
	.C_Verify = fc_Verify,
	.C_VerifyUpdate = fc_VerifyUpdate,
	.C_VerifyFinal = fc_VerifyFinal,
	.C_VerifyRecoverInit = fc_VerifyRecoverInit,
	.C_VerifyRecover = fc_VerifyRecover,
	.C_DigestEncryptUpdate = fc_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = fc_DecryptDigestUpdate,
	.C_SignEncryptUpdate = fc_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = fc_DecryptVerifyUpdate,
	.C_GenerateKey = fc_GenerateKey,
	.C_GenerateKeyPair = fc_GenerateKeyPair,
	.C_WrapKey = fc_WrapKey,
	.C_UnwrapKey = fc_UnwrapKey,
	.C_DeriveKey = fc_DeriveKey,
	.C_SeedRandom = fc_SeedRandom,
	.C_GenerateRandom = fc_GenerateRandom,
	.C_GetFunctionStatus = fc_GetFunctionStatus,
	.C_CancelFunction = fc_CancelFunction,
	.C_WaitForSlotEvent = fc_WaitForSlotEvent,
};

/* Loads the real module; caller holds lock. */
static CK_RV
real_load_locked(void)
{
	const char *path = getenv(TCA_FAULTY_ENV_MODULE);
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR fl = NULL;
	void *dl;
	CK_RV rv;

	if (path == NULL || *path == '\0')
		path = TCA_FAULTY_DEFAULT_MODULE;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11-faulty: cannot load %s: %s\n", path, dlerror());
		return CKR_GENERAL_ERROR;
	}
	*(void **)&get_list = dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL) {
		fprintf(stderr, "p11-faulty: %s has no C_GetFunctionList\n", path);
		rv = CKR_GENERAL_ERROR;
		goto fail;
	}
	if ((rv = get_list(&fl)) != CKR_OK || fl == NULL) {
		fprintf(stderr, "p11-faulty: C_GetFunctionList of %s failed\n", path);
		rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
		goto fail;
	}
	/* our own file: forwarding to ourselves would never end */
	if (fl->C_Initialize == fc_Initialize) {
		fprintf(stderr, "p11-faulty: %s is p11-faulty itself\n", path);
		rv = CKR_GENERAL_ERROR;
		goto fail;
	}
	real = fl;
	return CKR_OK;
 fail:
	(void)dlclose(dl);
	return rv;
}

/*
 * Keeps this module mapped until the process exits.  The engine unloads a
 * module whose C_Initialize failed and loads it again; if that unmapped us,
 * every count would be forgotten and `fail C_Initialize ...` would fail
 * every retry.  p11-kit 0.24 happens to keep released modules mapped, but
 * nothing promises that (nor does a plain dlopen/dlclose user).  Caller
 * holds lock.
 */
static void
pin_self_locked(void)
{
	static int pinned;
	Dl_info info;

	if (pinned)
		return;
	if (dladdr((void *)&function_list, &info) == 0 || info.dli_fname == NULL ||
	    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL) {
		fprintf(stderr, "p11-faulty: cannot pin the module; state is lost "
		    "when it is unloaded\n");
		return;
	}
	pinned = 1;
}

static CK_RV
fc_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv = CKR_OK;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	lock_state();
	pin_self_locked();
	env_load_locked();
	if (real == NULL)
		rv = real_load_locked();
	unlock_state();
	if (rv == CKR_OK)
		*list = &function_list;
	return rv;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return fc_GetFunctionList(list);
}

/*
 * Process exit (pinned, we are never unloaded before): free our memory so
 * that leak checkers see only the real module's.  The real module stays
 * mapped: unmapping it from an exit-time destructor races its own.
 */
static void __attribute__((destructor))
faulty_unload(void)
{
	struct sess *e;

	lock_state();
	while ((e = sessions) != NULL) {
		sessions = e->next;
		free(e);
	}
	n_dead = 0;
	objs_clear_locked();
	ctl_reset_locked();
	ctl_path[0] = '\0';
	unlock_state();
}
