/*
 * check_faulty.c - the fault-injecting PKCS#11 module (tests/p11-faulty.c)
 * against a throwaway SoftHSMv2 token.
 *
 * The module is what other tests use to prove the engine survives HSM
 * failures, so these tests prove each fault really happens, and only when
 * asked: every directive of the control language, with the module's log as
 * evidence, plus plain forwarding and concurrency.
 *
 * /faulty/forward/...     no control file: a transparent module
 * /faulty/ctl/...         control file parsing
 * /faulty/fail/...        fail FUNC RV [count N|inf], generation
 * /faulty/hang/...        hang (interrupted by the test), latency
 * /faulty/remove/...      token removal and re-insertion
 * /faulty/invalidate      invalidate-handles
 * /faulty/logout          logout
 * /faulty/idle-timeout    idle-timeout
 * /faulty/reinit          require-reinit
 * /faulty/reload          state survives unloading and loading the module
 * /faulty/concurrency/... fail rules re-armed under 8 signing threads
 *
 * Waits are on events (log lines, a thread's flag) and bounded; the only
 * time assertions are lower bounds and generous upper bounds.
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>

#include "p11-faulty.h"
#include "testutil.h"

#define TOKEN_LABEL	"faulty"
#define KEY_ID		"faulty-key"
#define WAIT_MS		30000		/* bound of every wait for an event */
#define HELD_FILES	8

static struct test_token tt;
static CK_FUNCTION_LIST_PTR fl;
static CK_SLOT_ID slot;
static char ctl_file[PATH_MAX], log_file[PATH_MAX];
static int held[HELD_FILES], n_writes;

/* DER of OID 1.2.840.10045.3.1.7 (prime256v1) */
static const CK_BYTE p256_oid[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};

/* ---------------------------------------------------------- helpers */

static long long
now_ms(void)
{
	struct timespec ts;

	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void
module_path(char *out, size_t outsz)
{
	const char *so = getenv("TCA_FAULTY_SO");

	if (so != NULL && *so != '\0')
		snprintf(out, outsz, "%s", so);
	else
		test_build_path("tests/.libs/p11-faulty.so", out, outsz);
}

/*
 * Replaces the control file atomically, as tests must.  The last few
 * versions stay open so that the file system cannot hand a new version the
 * inode of one the module may still remember.
 */
static void __attribute__((format(printf, 1, 2)))
ctl_write(const char *fmt, ...)
{
	char tmp[PATH_MAX + 8], *text = NULL;
	va_list ap;
	int n, slot_i;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", ctl_file);
	ck_assert_int_eq(test_write_file(tmp, text, (size_t)n, 0600), 0);
	free(text);
	ck_assert_int_eq(rename(tmp, ctl_file), 0);
	slot_i = n_writes++ % HELD_FILES;
	if (held[slot_i] >= 0)
		close(held[slot_i]);
	held[slot_i] = open(ctl_file, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(held[slot_i], 0);
}

/* Lines of the module's log equal to line (exact) or starting with it. */
static int
log_count(const char *line, int prefix)
{
	unsigned char *buf = test_read_file(log_file, NULL);
	char *p, *nl;
	size_t ll = strlen(line);
	int n = 0;

	if (buf == NULL)
		return 0;
	for (p = (char *)buf; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;	/* never half a line: the module writes whole ones */
		if (strncmp(p, line, ll) == 0 && (prefix || p + ll == nl))
			n++;
	}
	free(buf);
	return n;
}

/* Waits (bounded) until the log has at least n such lines; returns count. */
static int
wait_log(const char *line, int prefix, int n)
{
	long long end = now_ms() + WAIT_MS;
	int c;

	while ((c = log_count(line, prefix)) < n && now_ms() < end)
		sleep_ms(5);
	return c;
}

static void
init_module(void)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	ck_assert_uint_eq(fl->C_Initialize(&args), CKR_OK);
}

/* The slot holding our token; 0 if it is not present. */
static int
find_slot(CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[16];
	CK_TOKEN_INFO ti;
	CK_ULONG n = 16, i;
	char label[33];

	ck_assert_uint_eq(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	snprintf(label, sizeof(label), "%-32s", TOKEN_LABEL);
	for (i = 0; i < n; i++) {
		if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, label, 32) == 0) {
			*out = slots[i];
			return 1;
		}
	}
	return 0;
}

static void
setup(void)
{
	char so[PATH_MAX];
	int i;

	for (i = 0; i < HELD_FILES; i++)
		held[i] = -1;
	n_writes = 0;
	test_token_create(&tt, TOKEN_LABEL);
	snprintf(ctl_file, sizeof(ctl_file), "%s/faulty.ctl", tt.dir);
	snprintf(log_file, sizeof(log_file), "%s/faulty.log", tt.dir);
	ck_assert_int_eq(setenv(TCA_FAULTY_ENV_MODULE, test_softhsm_module(), 1), 0);
	ck_assert_int_eq(setenv(TCA_FAULTY_ENV_CTL, ctl_file, 1), 0);
	ck_assert_int_eq(setenv(TCA_FAULTY_ENV_LOG, log_file, 1), 0);
	module_path(so, sizeof(so));
	fl = p11_kit_module_load(so, P11_KIT_MODULE_UNMANAGED);
	ck_assert_msg(fl != NULL, "cannot load %s: %s", so,
	    p11_kit_message() != NULL ? p11_kit_message() : "?");
	init_module();
	ck_assert_msg(find_slot(&slot), "token %s not found", TOKEN_LABEL);
}

static void
teardown(void)
{
	int i;

	if (fl != NULL) {
		(void)fl->C_Finalize(NULL);
		p11_kit_module_release(fl);
		fl = NULL;
	}
	for (i = 0; i < HELD_FILES; i++) {
		if (held[i] >= 0)
			close(held[i]);
		held[i] = -1;
	}
	test_token_destroy(&tt);
	unsetenv(TCA_FAULTY_ENV_CTL);
	unsetenv(TCA_FAULTY_ENV_LOG);
	unsetenv(TCA_FAULTY_ENV_MODULE);
}

static CK_SESSION_HANDLE
open_session(void)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

	ck_assert_uint_eq(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &s), CKR_OK);
	return s;
}

static CK_RV
login(CK_SESSION_HANDLE s)
{
	return fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)TEST_PIN, strlen(TEST_PIN));
}

static CK_SESSION_HANDLE
open_login(void)
{
	CK_SESSION_HANDLE s = open_session();

	ck_assert_uint_eq(login(s), CKR_OK);
	return s;
}

static void
gen_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE pt[] = {
		{ CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ID, KEY_ID, strlen(KEY_ID) },
	};
	CK_ATTRIBUTE kt[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_ID, KEY_ID, strlen(KEY_ID) },
	};

	ck_assert_uint_eq(fl->C_GenerateKeyPair(s, &mech, pt, 4, kt, 5, pub, priv), CKR_OK);
	/* what the application sees carries the module's epoch */
	ck_assert_uint_ne(TCA_FAULTY_HANDLE_EPOCH(*priv), 0);
}

/* The one object of class cls with our CKA_ID. */
static CK_OBJECT_HANDLE
find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, KEY_ID, strlen(KEY_ID) },
	};
	CK_OBJECT_HANDLE h[2] = { 0, 0 };
	CK_ULONG n = 0;

	ck_assert_uint_eq(fl->C_FindObjectsInit(s, t, 2), CKR_OK);
	ck_assert_uint_eq(fl->C_FindObjects(s, h, 2, &n), CKR_OK);
	ck_assert_uint_eq(fl->C_FindObjectsFinal(s), CKR_OK);
	ck_assert_uint_eq(n, 1);
	return h[0];
}

/* SignInit + Sign over a fixed digest; the first rv that is not CKR_OK. */
static CK_RV
sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE *sig, CK_ULONG *sig_len)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32];
	CK_ULONG dummy = 128;
	CK_BYTE buf[128];
	CK_RV rv;

	memset(digest, 0x5a, sizeof(digest));
	if (sig == NULL) {
		sig = buf;
		sig_len = &dummy;
	}
	if ((rv = fl->C_SignInit(s, &mech, key)) != CKR_OK)
		return rv;
	return fl->C_Sign(s, digest, sizeof(digest), sig, sig_len);
}

static CK_RV
verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE *sig, CK_ULONG sig_len)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32];
	CK_RV rv;

	memset(digest, 0x5a, sizeof(digest));
	if ((rv = fl->C_VerifyInit(s, &mech, key)) != CKR_OK)
		return rv;
	return fl->C_Verify(s, digest, sizeof(digest), sig, sig_len);
}

static void
sign_verify_ok(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	CK_BYTE sig[128];
	CK_ULONG sig_len = sizeof(sig);

	ck_assert_uint_eq(sign(s, priv, sig, &sig_len), CKR_OK);
	ck_assert_uint_eq(sig_len, 64);
	ck_assert_uint_eq(verify(s, pub, sig, sig_len), CKR_OK);
}

static CK_STATE
session_state(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;

	ck_assert_uint_eq(fl->C_GetSessionInfo(s, &si), CKR_OK);
	return si.state;
}

/* -------------------------------------------------------------- tests */

/* /faulty/forward/basic: without a control file the module is transparent */
START_TEST(test_forward_basic)
{
	CK_MECHANISM dmech = { CKM_SHA256, NULL, 0 };
	static const CK_BYTE abc_sha256[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde,
		0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
	};
	CK_MECHANISM_TYPE mechs[256];
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s;
	CK_SLOT_INFO si;
	CK_INFO info;
	CK_BYTE out[64];
	CK_ULONG n, i;
	int have_ecdsa = 0;

	ck_assert_uint_eq(fl->C_GetInfo(&info), CKR_OK);
	ck_assert_msg(memcmp(info.manufacturerID, "SoftHSM", 7) == 0, "real module's info");
	ck_assert_uint_eq(fl->C_GetSlotInfo(slot, &si), CKR_OK);
	ck_assert(si.flags & CKF_TOKEN_PRESENT);
	n = 256;
	ck_assert_uint_eq(fl->C_GetMechanismList(slot, mechs, &n), CKR_OK);
	for (i = 0; i < n; i++)
		have_ecdsa |= mechs[i] == CKM_ECDSA;
	ck_assert(have_ecdsa);

	s = open_session();
	ck_assert_uint_ne(TCA_FAULTY_HANDLE_EPOCH(s), 0);
	ck_assert_uint_eq(session_state(s), CKS_RW_PUBLIC_SESSION);
	ck_assert_uint_eq(login(s), CKR_OK);
	ck_assert_uint_eq(session_state(s), CKS_RW_USER_FUNCTIONS);
	gen_key(s, &pub, &priv);
	sign_verify_ok(s, priv, pub);
	ck_assert_uint_eq(find_key(s, CKO_PRIVATE_KEY), priv);

	ck_assert_uint_eq(fl->C_GenerateRandom(s, out, 32), CKR_OK);
	ck_assert_uint_eq(fl->C_DigestInit(s, &dmech), CKR_OK);
	n = sizeof(out);
	ck_assert_uint_eq(fl->C_Digest(s, (CK_BYTE_PTR)"abc", 3, out, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_mem_eq(out, abc_sha256, 32);

	ck_assert_uint_eq(fl->C_CloseSession(s), CKR_OK);
	ck_assert_uint_eq(fl->C_GetSessionInfo(s, &(CK_SESSION_INFO){ 0 }),
	    CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(fl->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL),
	    CKR_FUNCTION_NOT_SUPPORTED);

	ck_assert_int_eq(log_count("call C_Initialize rv=CKR_OK", 0), 1);
	ck_assert_int_eq(log_count("call C_Login rv=CKR_OK", 0), 1);
	ck_assert_int_eq(log_count("fail ", 1), 0);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_CTL_ERROR, 1), 0);
}
END_TEST

/* /faulty/ctl/errors: bad lines are logged and skipped, good ones apply */
START_TEST(test_ctl_errors)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login();

	gen_key(s, &pub, &priv);
	ctl_write("# comment only\n"
	    "bogus directive\n"
	    "fail C_Nope CKR_DEVICE_ERROR\n"
	    "fail C_Sign CKR_NOPE\n"
	    "fail C_GetFunctionList CKR_DEVICE_ERROR\n"
	    "hang C_Sign soon\n"
	    "fail C_Sign CKR_DEVICE_ERROR count\n"
	    "\n"
	    "   fail\tC_GenerateRandom   CKR_DEVICE_MEMORY   # spaces, tab\n");
	sign_verify_ok(s, priv, pub);
	ck_assert_uint_eq(fl->C_GenerateRandom(s, (CK_BYTE[8]){ 0 }, 8), CKR_DEVICE_MEMORY);
	ck_assert_uint_eq(fl->C_GenerateRandom(s, (CK_BYTE[8]){ 0 }, 8), CKR_OK);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_CTL_ERROR " line ", 1), 6);
	ck_assert_int_eq(log_count("ctl-error line 2: unknown directive", 0), 1);
	ck_assert_int_eq(log_count("fail C_GenerateRandom CKR_DEVICE_MEMORY", 0), 1);
}
END_TEST

/* /faulty/fail/count: count 1, no re-arm on rewrite, generation re-arms */
START_TEST(test_fail_count)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login();
	int i;

	gen_key(s, &pub, &priv);
	ctl_write("fail C_Sign CKR_DEVICE_ERROR\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_ERROR);
	/* the error ended the real operation: the same session signs again */
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count("fail C_Sign CKR_DEVICE_ERROR", 0), 1);

	/* the same rule, rewritten (new inode, other spacing): not re-armed */
	ctl_write("# rewritten\nfail  C_Sign\tCKR_DEVICE_ERROR   # same rule\n");
	sign_verify_ok(s, priv, pub);
	ctl_write("fail C_Sign CKR_DEVICE_ERROR\n");
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count("fail C_Sign CKR_DEVICE_ERROR", 0), 1);

	/* a new generation re-arms it */
	ctl_write("generation 2\nfail C_Sign CKR_DEVICE_ERROR\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_ERROR);
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count("fail C_Sign CKR_DEVICE_ERROR", 0), 2);

	/* count 3, rv as a number */
	ctl_write("generation 3\nfail C_Sign 0x30 count 3\n");
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_ERROR);
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count("fail C_Sign CKR_DEVICE_ERROR", 0), 5);

	/* injected C_Login failure: logged like every C_Login, never the PIN */
	ck_assert_uint_eq(fl->C_Logout(s), CKR_OK);
	ctl_write("fail C_Login CKR_PIN_INCORRECT\n");
	ck_assert_uint_eq(login(s), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(login(s), CKR_OK);
	ck_assert_int_eq(log_count("call C_Login rv=CKR_PIN_INCORRECT", 0), 1);
	ck_assert_int_eq(log_count("call C_Login rv=CKR_OK", 0), 2);
	ck_assert_int_eq(log_count(TEST_PIN, 1), 0);
}
END_TEST

/* /faulty/fail/inf: count inf, '*', and a multi-part operation ended */
START_TEST(test_fail_inf)
{
	CK_MECHANISM dmech = { CKM_SHA256, NULL, 0 };
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login();
	CK_BYTE out[64];
	CK_ULONG n = 16;
	int i;

	gen_key(s, &pub, &priv);
	ctl_write("fail C_SignInit CKR_DEVICE_MEMORY count inf\n");
	for (i = 0; i < 10; i++)
		ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_MEMORY);
	ck_assert_int_eq(log_count("fail C_SignInit CKR_DEVICE_MEMORY", 0), 10);
	ck_assert_int_eq(unlink(ctl_file), 0);
	sign_verify_ok(s, priv, pub);

	/* '*': any function but C_Initialize/C_Finalize/C_GetFunctionList */
	ctl_write("fail * CKR_DEVICE_ERROR count 2\n");
	ck_assert_uint_eq(fl->C_GetSlotList(CK_TRUE, NULL, &n), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_GetSessionInfo(s, &(CK_SESSION_INFO){ 0 }), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(session_state(s), CKS_RW_USER_FUNCTIONS);

	/* an error in C_DigestUpdate ends the digest in the real module too */
	ctl_write("fail C_DigestUpdate CKR_DEVICE_ERROR\n");
	ck_assert_uint_eq(fl->C_DigestInit(s, &dmech), CKR_OK);
	ck_assert_uint_eq(fl->C_DigestUpdate(s, (CK_BYTE_PTR)"abc", 3), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_DigestInit(s, &dmech), CKR_OK);
	ck_assert_uint_eq(fl->C_DigestUpdate(s, (CK_BYTE_PTR)"abc", 3), CKR_OK);
	n = sizeof(out);
	ck_assert_uint_eq(fl->C_DigestFinal(s, out, &n), CKR_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_uint_eq(out[0], 0xba);
}
END_TEST

struct hang_arg {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	long long t0, t1;
	CK_RV rv;
	int done;		/* atomic */
};

static void *
hang_thread(void *p)
{
	struct hang_arg *a = p;

	a->t0 = now_ms();
	a->rv = sign(a->s, a->key, NULL, NULL);
	a->t1 = now_ms();
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* /faulty/hang/interrupt: a 60 s hang ends when the test removes its line */
START_TEST(test_hang_interrupt)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login(), s2 = open_session();
	struct hang_arg a;
	pthread_t th;
	long long t_rewrite;
	CK_BYTE rnd[16];

	gen_key(s, &pub, &priv);
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.key = priv;
	ctl_write("hang C_Sign 60000\n");
	ck_assert_int_eq(pthread_create(&th, NULL, hang_thread, &a), 0);
	ck_assert_int_eq(wait_log("hang C_Sign 60000 begin", 0, 1), 1);

	/* the hang holds no lock: other calls go on meanwhile */
	ck_assert_uint_eq(fl->C_GenerateRandom(s2, rnd, sizeof(rnd)), CKR_OK);
	ck_assert_uint_eq(fl->C_GetSessionInfo(s2, &(CK_SESSION_INFO){ 0 }), CKR_OK);

	/* a deliberate pause: the call must still be blocked after it */
	sleep_ms(300);
	ck_assert_int_eq(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);
	t_rewrite = now_ms();
	ctl_write("# the network is back\n");
	ck_assert_int_eq(pthread_join(th, NULL), 0);

	ck_assert_uint_eq(a.rv, CKR_OK);
	ck_assert_int_ge(a.t1, t_rewrite);
	ck_assert_int_ge(a.t1 - a.t0, 300);
	ck_assert_int_lt(a.t1 - a.t0, 50000);	/* far from the full 60 s */
	ck_assert_int_eq(log_count("hang C_Sign end interrupted", 0), 1);
	ck_assert_int_eq(log_count("hang C_Sign end", 0), 0);
	/* count 1 (default): used up, even if the line came back */
	ctl_write("hang C_Sign 60000\n");
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count("hang C_Sign 60000 begin", 0), 1);
}
END_TEST

/* /faulty/hang/count-latency: short hangs run out; latency delays every call */
START_TEST(test_hang_count_latency)
{
	CK_SESSION_HANDLE s = open_session();
	CK_BYTE rnd[8];
	long long t;
	int i;

	ctl_write("hang C_GenerateRandom 150 count 2\n");
	for (i = 0; i < 2; i++) {
		t = now_ms();
		ck_assert_uint_eq(fl->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_OK);
		ck_assert_int_ge(now_ms() - t, 150);
	}
	ck_assert_uint_eq(fl->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_OK);
	ck_assert_int_eq(log_count("hang C_GenerateRandom 150 begin", 0), 2);
	ck_assert_int_eq(log_count("hang C_GenerateRandom end", 0), 2);

	ctl_write("latency C_GenerateRandom 100\n");
	for (i = 0; i < 3; i++) {
		t = now_ms();
		ck_assert_uint_eq(fl->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_OK);
		ck_assert_int_ge(now_ms() - t, 100);
	}
	ck_assert_int_eq(log_count("hang ", 1), 4);	/* latency is not logged */
}
END_TEST

/* /faulty/remove/gone: a removed token, seen from old sessions and slots */
START_TEST(test_remove_gone)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login(), s2;
	CK_SLOT_ID slots[16];
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG n, i;
	int seen = 0;

	gen_key(s, &pub, &priv);
	sign_verify_ok(s, priv, pub);
	ctl_write("remove\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_REMOVED);
	ck_assert_uint_eq(fl->C_GetSessionInfo(s, &(CK_SESSION_INFO){ 0 }), CKR_DEVICE_REMOVED);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REMOVE, 0), 1);

	n = 16;
	ck_assert_uint_eq(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	ck_assert_uint_eq(n, 0);
	n = 16;
	ck_assert_uint_eq(fl->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK);
	for (i = 0; i < n; i++)
		seen |= slots[i] == slot;
	ck_assert(seen);
	ck_assert_uint_eq(fl->C_GetSlotInfo(slot, &si), CKR_OK);
	ck_assert_uint_eq(si.flags & CKF_TOKEN_PRESENT, 0);
	ck_assert_uint_eq(fl->C_GetTokenInfo(slot, &ti), CKR_TOKEN_NOT_PRESENT);
	ck_assert_uint_eq(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2),
	    CKR_TOKEN_NOT_PRESENT);
	ck_assert_uint_eq(fl->C_CloseSession(s), CKR_DEVICE_REMOVED);
	/* rewriting the file with the line still there changes nothing */
	ctl_write("remove   # still out\n");
	ck_assert_uint_eq(fl->C_GetTokenInfo(slot, &ti), CKR_TOKEN_NOT_PRESENT);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REMOVE, 0), 1);
}
END_TEST

/* /faulty/remove/return: re-inserted: old handles dead, logged out */
START_TEST(test_remove_return)
{
	CK_OBJECT_HANDLE pub, priv, priv2, pub2;
	CK_SESSION_HANDLE s = open_login(), s2, s3;
	CK_ATTRIBUTE a;
	CK_BYTE id[64];
	CK_SLOT_ID again;

	gen_key(s, &pub, &priv);
	sign_verify_ok(s, priv, pub);
	ctl_write("remove\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_REMOVED);
	ctl_write("# back in\n");
	ck_assert_int_eq(find_slot(&again), 1);
	ck_assert_uint_eq(again, slot);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_RETURN, 0), 1);

	/* the old session died with the removal */
	ck_assert_uint_eq(fl->C_GetSessionInfo(s, &(CK_SESSION_INFO){ 0 }),
	    CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(fl->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);

	/* a new session: the real module forgot the login */
	s2 = open_session();
	ck_assert_uint_ne(s2, s);
	ck_assert_uint_eq(session_state(s2), CKS_RW_PUBLIC_SESSION);
	ck_assert_uint_eq(sign(s2, priv, NULL, NULL), CKR_KEY_HANDLE_INVALID);
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	ck_assert_uint_eq(fl->C_GetAttributeValue(s2, priv, &a, 1), CKR_OBJECT_HANDLE_INVALID);
	ck_assert_uint_eq(fl->C_GetAttributeValue(s2, pub, &a, 1), CKR_OBJECT_HANDLE_INVALID);

	ck_assert_uint_eq(login(s2), CKR_OK);
	ck_assert_uint_eq(session_state(s2), CKS_RW_USER_FUNCTIONS);
	priv2 = find_key(s2, CKO_PRIVATE_KEY);
	pub2 = find_key(s2, CKO_PUBLIC_KEY);
	ck_assert_uint_ne(priv2, priv);
	ck_assert_uint_eq(sign(s2, priv, NULL, NULL), CKR_KEY_HANDLE_INVALID);
	sign_verify_ok(s2, priv2, pub2);
	s3 = open_session();
	sign_verify_ok(s3, priv2, pub2);
	ck_assert_uint_eq(fl->C_CloseSession(s3), CKR_OK);
	ck_assert_uint_eq(fl->C_CloseAllSessions(slot), CKR_OK);
	ck_assert_uint_eq(fl->C_GetSessionInfo(s2, &(CK_SESSION_INFO){ 0 }),
	    CKR_SESSION_HANDLE_INVALID);
}
END_TEST

/* /faulty/invalidate: object handles die, sessions and login stay */
START_TEST(test_invalidate)
{
	CK_OBJECT_HANDLE pub, priv, priv2, pub2, priv3;
	CK_SESSION_HANDLE s = open_login();
	CK_ATTRIBUTE a;
	CK_BYTE id[64];

	gen_key(s, &pub, &priv);
	ctl_write("invalidate-handles 1\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_KEY_HANDLE_INVALID);
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	ck_assert_uint_eq(fl->C_GetAttributeValue(s, priv, &a, 1), CKR_OBJECT_HANDLE_INVALID);
	ck_assert_uint_eq(session_state(s), CKS_RW_USER_FUNCTIONS);
	priv2 = find_key(s, CKO_PRIVATE_KEY);
	pub2 = find_key(s, CKO_PUBLIC_KEY);
	ck_assert_uint_ne(priv2, priv);
	sign_verify_ok(s, priv2, pub2);
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	ck_assert_uint_eq(fl->C_GetAttributeValue(s, priv2, &a, 1), CKR_OK);
	ck_assert_uint_eq(a.ulValueLen, strlen(KEY_ID));

	/* the same argument again: nothing happens */
	ctl_write("# unchanged\ninvalidate-handles 1\n");
	sign_verify_ok(s, priv2, pub2);
	/* a new one: again */
	ctl_write("invalidate-handles 2\n");
	ck_assert_uint_eq(sign(s, priv2, NULL, NULL), CKR_KEY_HANDLE_INVALID);
	priv3 = find_key(s, CKO_PRIVATE_KEY);
	ck_assert_uint_ne(priv3, priv2);
	ck_assert_uint_eq(sign(s, priv3, NULL, NULL), CKR_OK);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_INVALIDATE, 0), 2);
}
END_TEST

/* /faulty/logout: the HSM logs us out; a new C_Login makes old handles work */
START_TEST(test_logout)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login(), s2 = open_session();
	CK_ATTRIBUTE a;
	CK_BYTE id[64];

	gen_key(s, &pub, &priv);
	sign_verify_ok(s2, priv, pub);
	ctl_write("logout 1\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(sign(s2, priv, NULL, NULL), CKR_USER_NOT_LOGGED_IN);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_LOGOUT, 0), 1);
	ck_assert_uint_eq(session_state(s), CKS_RW_PUBLIC_SESSION);
	ck_assert_uint_eq(session_state(s2), CKS_RW_PUBLIC_SESSION);
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	ck_assert_uint_eq(fl->C_GetAttributeValue(s, priv, &a, 1), CKR_OBJECT_HANDLE_INVALID);
	/* public objects stay usable */
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	ck_assert_uint_eq(fl->C_GetAttributeValue(s, pub, &a, 1), CKR_OK);

	ck_assert_uint_eq(login(s2), CKR_OK);
	ck_assert_uint_eq(session_state(s), CKS_RW_USER_FUNCTIONS);
	sign_verify_ok(s, priv, pub);
	sign_verify_ok(s2, priv, pub);

	/* same line again: no second logout; a new argument: logged out again */
	ctl_write("logout 1   # unchanged\n");
	sign_verify_ok(s, priv, pub);
	ctl_write("logout 2\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(login(s), CKR_OK);
	sign_verify_ok(s, priv, pub);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_LOGOUT, 0), 2);
}
END_TEST

/* /faulty/idle-timeout: an unused session dies, a used one lives */
START_TEST(test_idle_timeout)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE busy = open_login(), idle = open_session(), s3;
	CK_BYTE rnd[8];
	long long t_ref;

	gen_key(busy, &pub, &priv);
	ck_assert_uint_eq(fl->C_GenerateRandom(idle, rnd, sizeof(rnd)), CKR_OK);
	ctl_write("idle-timeout 500\n");
	/* this call makes the module read the rule; idleness counts from here */
	ck_assert_uint_eq(fl->C_GenerateRandom(busy, rnd, sizeof(rnd)), CKR_OK);
	t_ref = now_ms();
	/* keep one session busy, well inside the timeout, for over twice it */
	while (now_ms() - t_ref < 1200) {
		ck_assert_uint_eq(fl->C_GenerateRandom(busy, rnd, sizeof(rnd)), CKR_OK);
		sleep_ms(20);
	}
	ck_assert_uint_eq(fl->C_GenerateRandom(idle, rnd, sizeof(rnd)), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(fl->C_GetSessionInfo(idle, &(CK_SESSION_INFO){ 0 }),
	    CKR_SESSION_HANDLE_INVALID);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_IDLE, 0), 1);
	ck_assert_uint_eq(fl->C_CloseSession(idle), CKR_SESSION_HANDLE_INVALID);
	sign_verify_ok(busy, priv, pub);

	/* a new session works; without the rule nothing expires */
	s3 = open_session();
	ck_assert_uint_eq(session_state(s3), CKS_RW_USER_FUNCTIONS);
	ctl_write("# no timeout\n");
	ck_assert_uint_eq(fl->C_GenerateRandom(s3, rnd, sizeof(rnd)), CKR_OK);
	sleep_ms(700);
	ck_assert_uint_eq(fl->C_GenerateRandom(s3, rnd, sizeof(rnd)), CKR_OK);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_IDLE, 0), 1);
}
END_TEST

/* /faulty/reinit: nothing works until C_Finalize + C_Initialize */
START_TEST(test_reinit)
{
	CK_OBJECT_HANDLE pub, priv, priv2, pub2;
	CK_SESSION_HANDLE s = open_login(), s2;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID again;
	CK_ULONG n = 0;
	CK_INFO info;

	gen_key(s, &pub, &priv);
	ctl_write("require-reinit 1\n");
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_GetSlotList(CK_TRUE, NULL, &n), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2),
	    CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_GetInfo(&info), CKR_OK);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REINIT_REQUIRED, 0), 1);

	/* C_Initialize alone does not help */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	ck_assert_uint_eq(fl->C_Initialize(&args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_DEVICE_ERROR);

	ck_assert_uint_eq(fl->C_Finalize(NULL), CKR_OK);
	init_module();
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REINIT_DONE, 0), 1);
	ck_assert_int_eq(log_count("call C_Finalize rv=CKR_OK", 0), 1);
	ck_assert_int_eq(log_count("call C_Initialize rv=", 1), 3);

	/* the line is still there but has had its effect */
	ck_assert_int_eq(find_slot(&again), 1);
	ck_assert_uint_eq(sign(s, priv, NULL, NULL), CKR_SESSION_HANDLE_INVALID);
	s2 = open_session();
	ck_assert_uint_eq(session_state(s2), CKS_RW_PUBLIC_SESSION);
	ck_assert_uint_eq(login(s2), CKR_OK);
	ck_assert_uint_eq(sign(s2, priv, NULL, NULL), CKR_KEY_HANDLE_INVALID);
	priv2 = find_key(s2, CKO_PRIVATE_KEY);
	pub2 = find_key(s2, CKO_PUBLIC_KEY);
	sign_verify_ok(s2, priv2, pub2);
	ctl_write("# rewritten\nrequire-reinit 1\n");
	sign_verify_ok(s2, priv2, pub2);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REINIT_REQUIRED, 0), 1);

	/* a new line: once more */
	ctl_write("require-reinit 2\n");
	ck_assert_uint_eq(sign(s2, priv2, NULL, NULL), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(fl->C_Finalize(NULL), CKR_OK);
	init_module();
	s2 = open_login();
	sign_verify_ok(s2, find_key(s2, CKO_PRIVATE_KEY), find_key(s2, CKO_PUBLIC_KEY));
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REINIT_REQUIRED, 0), 2);
	ck_assert_int_eq(log_count(TCA_FAULTY_LOG_REINIT_DONE, 0), 2);
}
END_TEST

/* /faulty/reload: state survives the unload + load the engine does on failure */
START_TEST(test_reload)
{
	CK_C_INITIALIZE_ARGS args;
	CK_SESSION_HANDLE s;
	char so[PATH_MAX];
	int i;

	ck_assert_uint_eq(fl->C_Finalize(NULL), CKR_OK);
	ctl_write("fail C_Initialize CKR_DEVICE_ERROR\nfail C_GetTokenInfo CKR_DEVICE_ERROR\n");
	module_path(so, sizeof(so));
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	/* what engine/token.c's module_load does until C_Initialize works */
	for (i = 0; i < 2; i++) {
		p11_kit_module_release(fl);
		fl = p11_kit_module_load(so, P11_KIT_MODULE_UNMANAGED);
		ck_assert_ptr_nonnull(fl);
		if (fl->C_Initialize(&args) == CKR_OK)
			break;
	}
	ck_assert_int_eq(i, 1);
	ck_assert_int_eq(log_count("fail C_Initialize CKR_DEVICE_ERROR", 0), 1);
	ck_assert_int_eq(log_count("call C_Initialize rv=CKR_DEVICE_ERROR", 0), 1);
	ck_assert_uint_eq(fl->C_GetTokenInfo(slot, &(CK_TOKEN_INFO){ 0 }), CKR_DEVICE_ERROR);
	ck_assert_int_eq(find_slot(&slot), 1);
	s = open_login();
	ck_assert_uint_eq(session_state(s), CKS_RW_USER_FUNCTIONS);
}
END_TEST

#define N_WORKERS	8
#define SIGNS_EACH	200
#define FAIL_PER_GEN	5

struct worker {
	CK_OBJECT_HANDLE priv, pub;
	int ok, injected, other, verified;
	CK_RV other_rv;
};

static int injected_total;	/* atomic */
static int workers_left;	/* atomic */

static void *
worker_thread(void *p)
{
	struct worker *w = p;
	CK_SESSION_HANDLE s;
	CK_BYTE sig[128];
	CK_ULONG sig_len;
	CK_RV rv;
	int i;

	if ((rv = fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &s)) != CKR_OK) {
		w->other = SIGNS_EACH;
		w->other_rv = rv;
		goto out;
	}
	for (i = 0; i < SIGNS_EACH; i++) {
		sig_len = sizeof(sig);
		rv = sign(s, w->priv, sig, &sig_len);
		if (rv == CKR_OK) {
			w->ok++;
			if (i % 50 == 0 && verify(s, w->pub, sig, sig_len) == CKR_OK)
				w->verified++;
		} else if (rv == CKR_DEVICE_ERROR) {
			w->injected++;
			__atomic_add_fetch(&injected_total, 1, __ATOMIC_SEQ_CST);
		} else {
			w->other++;
			w->other_rv = rv;
		}
	}
	(void)fl->C_CloseSession(s);
 out:
	__atomic_sub_fetch(&workers_left, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* /faulty/concurrency/toggle: fail generations while 8 threads sign */
START_TEST(test_concurrency_toggle)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s = open_login();
	struct worker w[N_WORKERS];
	pthread_t th[N_WORKERS];
	int i, gen = 1, ok = 0, injected = 0, other = 0, verified = 0;
	long long end;

	gen_key(s, &pub, &priv);
	__atomic_store_n(&injected_total, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&workers_left, N_WORKERS, __ATOMIC_SEQ_CST);
	/* the first generation is armed before anyone signs */
	ctl_write("generation %d\nfail C_Sign CKR_DEVICE_ERROR count %d\n", gen, FAIL_PER_GEN);
	for (i = 0; i < N_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].priv = priv;
		w[i].pub = pub;
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_thread, &w[i]), 0);
	}
	/* re-arm whenever the previous generation is used up */
	end = now_ms() + 10 * WAIT_MS;
	while (__atomic_load_n(&workers_left, __ATOMIC_SEQ_CST) > 0 && now_ms() < end) {
		if (__atomic_load_n(&injected_total, __ATOMIC_SEQ_CST) >= gen * FAIL_PER_GEN) {
			gen++;
			ctl_write("generation %d\nfail C_Sign CKR_DEVICE_ERROR count %d\n",
			    gen, FAIL_PER_GEN);
		} else
			sleep_ms(1);
	}
	for (i = 0; i < N_WORKERS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_msg(w[i].other == 0, "worker %d: %d unexpected, rv 0x%lx", i,
		    w[i].other, (unsigned long)w[i].other_rv);
		ok += w[i].ok;
		injected += w[i].injected;
		other += w[i].other;
		verified += w[i].verified;
	}
	ck_assert_int_eq(other, 0);
	ck_assert_int_eq(ok + injected, N_WORKERS * SIGNS_EACH);
	ck_assert_int_gt(verified, 0);
	/* exactly the failures the log owns up to; all but the last gen used up */
	ck_assert_int_eq(log_count("fail C_Sign CKR_DEVICE_ERROR", 0), injected);
	ck_assert_int_le(injected, gen * FAIL_PER_GEN);
	ck_assert_int_ge(injected, (gen - 1) * FAIL_PER_GEN);
	ck_assert_int_ge(injected, FAIL_PER_GEN);
	ck_assert_int_eq(log_count("fail ", 1), injected);
	/* nothing broke for later callers (the last generation may have some left) */
	ctl_write("# done\n");
	sign_verify_ok(s, priv, pub);
}
END_TEST

static Suite *
faulty_suite(void)
{
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "/faulty/forward/basic", test_forward_basic },
		{ "/faulty/ctl/errors", test_ctl_errors },
		{ "/faulty/fail/count", test_fail_count },
		{ "/faulty/fail/inf", test_fail_inf },
		{ "/faulty/hang/interrupt", test_hang_interrupt },
		{ "/faulty/hang/count-latency", test_hang_count_latency },
		{ "/faulty/remove/gone", test_remove_gone },
		{ "/faulty/remove/return", test_remove_return },
		{ "/faulty/invalidate", test_invalidate },
		{ "/faulty/logout", test_logout },
		{ "/faulty/idle-timeout", test_idle_timeout },
		{ "/faulty/reinit", test_reinit },
		{ "/faulty/reload", test_reload },
		{ "/faulty/concurrency/toggle", test_concurrency_toggle },
	};
	Suite *s = suite_create("faulty");
	TCase *tc;
	size_t i;

	/* one case per test, named by path, each with a fresh token */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(faulty_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
