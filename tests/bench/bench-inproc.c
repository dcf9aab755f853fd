/*
 * bench-inproc.c - tca-bench-inproc: the ceilings the engine is compared
 * with, measured in-process against the same token and key.
 *
 *   tca-bench-inproc sign    --module M --uri U --pin-file F --tenant T
 *                            --threads N --seconds S [--pool P] [--tenants N]
 *       (a) the token's signing rate through our token layer: N threads
 *       calling tca_token_sign() (SHA-256 in software, CKM_ECDSA on the
 *       32-byte digest) with the tenant's CA key, pool of P sessions - the
 *       same path and pool the engine uses.  --tenants N: each signature
 *       with the key of a tenant t00000..t<N-1> picked at random (the token's
 *       share of the tenant-scaling result).
 *   tca-bench-inproc p11sign --module M --token-label L --pin-file F --tenant T
 *                            --threads N --seconds S
 *       (a') bare PKCS#11: one session per thread, C_SignInit + C_Sign
 *       (CKM_ECDSA) on a 32-byte digest in a loop; no layer of ours at all.
 *   tca-bench-inproc floor   --module M --uri U --pin-file F --tenant T
 *                            --ca-pem FILE --threads N --seconds S
 *                            --csr-type T [--pool P] [--csrs N] [--csr-cache DIR]
 *       (b) the crypto floor: per certificate tca_csr_parse + tca_csr_check
 *       (CSR signature verification, policy) + tca_cert_issue_device with the
 *       token signer (certificate assembly, C_Sign, verification of the result)
 *       + DER encoding.  No socket, no store, no journal.
 *
 *   tca-bench-inproc open    --module M --uri U --pin-file F [--pool P]
 *       start-up attribution: wall time and resident memory of
 *       tca_token_open() alone (module load, C_Initialize, login, key index),
 *       i.e. the token's share of the engine's start-up.
 *
 * Every operation's latency is recorded, and the process's CPU time per
 * operation during the window; one JSON line per run.
 */
#include "config.h"

#include <dlfcn.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "bench-util.h"
#include "certs.h"
#include "engine.h"
#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "tenant.h"
#include "token.h"

const char *bench_progname = "tca-bench-inproc";

struct opts {
	const char *mode;
	const char *module;
	const char *uri;
	const char *token_label;
	const char *pin_file;
	const char *tenant;
	const char *ca_pem;
	const char *csr_type;
	const char *csr_cache;
	const char *label;
	const char *out;
	unsigned int threads;
	unsigned int tenants;	/* sign: spread over t00000..; 0 = --tenant only */
	unsigned int pool;
	unsigned int ncsrs;
	double seconds;
	double warmup;
};

struct shared {
	const struct opts *o;
	struct bench_clock clk;
	pthread_barrier_t barrier;
	/* sign, floor */
	tca_token *tok;
	unsigned char key_id[TCA_KEY_ID_LEN];
	unsigned char (*key_ids)[TCA_KEY_ID_LEN];	/* sign --tenants */
	struct tca_issuer *ca;
	const struct bench_csr *csrs;
	size_t ncsrs;
	/* p11sign */
	CK_FUNCTION_LIST_PTR p11;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	pthread_mutex_t err_lock;
	char first_error[256];
};

struct worker {
	struct shared *sh;
	unsigned int idx;
	pthread_t th;
	struct bench_lat lat;
	uint64_t errors;
};

static void
note_error(struct shared *sh, const char *what, const char *detail)
{
	pthread_mutex_lock(&sh->err_lock);
	if (sh->first_error[0] == '\0')
		snprintf(sh->first_error, sizeof(sh->first_error), "%s: %s", what, detail);
	pthread_mutex_unlock(&sh->err_lock);
}

static void
record(struct worker *w, uint64_t t0, uint64_t t1, int ok)
{
	if (t1 < w->sh->clk.window_ns || t1 > w->sh->clk.end_ns)
		return;
	if (ok)
		bench_lat_add(&w->lat, t1 - t0);
	else
		w->errors++;
}

/* ------------------------------------------------------------ (a) sign */

/* about the size of a device certificate's TBSCertificate */
static unsigned char tbs_like[420];

static void *
sign_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	unsigned char sig[256];
	const unsigned char *id = sh->key_id;
	uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(w->idx + 1) * 0xD1B54A32D192ED03ULL);
	size_t sig_len;
	uint64_t t0, t1;
	int r;

	pthread_barrier_wait(&sh->barrier);
	for (;;) {
		if (sh->key_ids != NULL)
			id = sh->key_ids[bench_rand_next(&rng) % sh->o->tenants];
		t0 = bench_now_ns();
		if (t0 >= sh->clk.end_ns)
			break;
		sig_len = sizeof(sig);
		r = tca_token_sign(sh->tok, id, TCA_KEY_ID_LEN, TCA_SIG_ECDSA_SHA256,
		    tbs_like, sizeof(tbs_like), sig, &sig_len);
		t1 = bench_now_ns();
		if (r != TCA_OK)
			note_error(sh, "tca_token_sign", tca_strerror(r));
		record(w, t0, t1, r == TCA_OK);
	}
	return NULL;
}

/* ------------------------------------------------------------ (b) floor */

static int
floor_one(struct shared *sh, const struct bench_csr *in, const struct tca_signer *signer)
{
	struct tca_device_params dp;
	tca_csr *csr = NULL;
	unsigned char *der = NULL;
	char why[256];
	int r;

	why[0] = '\0';
	memset(&dp, 0, sizeof(dp));
	dp.now = time(NULL);
	dp.default_days = 365;
	/* as the engine: a URI subjectAltName naming tenant and device */
	dp.tenant = "t-bench";
	dp.device_id = in->device_id;
	if ((r = tca_csr_parse(in->der, in->len, &csr, why, sizeof(why))) != TCA_OK ||
	    (r = tca_csr_check(csr, in->device_id, why, sizeof(why))) != TCA_OK ||
	    (r = tca_cert_issue_device(sh->ca, signer, csr, &dp, NULL, &der, why,
	    sizeof(why))) != TCA_OK)
		note_error(sh, "issue", why[0] != '\0' ? why : tca_strerror(r));
	OPENSSL_free(der);
	tca_csr_free(csr);
	return r;
}

static void *
floor_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct tca_token_signer sctx;
	struct tca_signer signer;
	size_t k = w->idx;
	uint64_t t0, t1;
	int r;

	/* exactly the engine's signer */
	tca_token_signer_init(&sctx, sh->tok, sh->key_id, TCA_SIG_ECDSA_SHA256, &signer);
	pthread_barrier_wait(&sh->barrier);
	for (;;) {
		t0 = bench_now_ns();
		if (t0 >= sh->clk.end_ns)
			break;
		r = floor_one(sh, &sh->csrs[k % sh->ncsrs], &signer);
		k += sh->o->threads;
		t1 = bench_now_ns();
		record(w, t0, t1, r == TCA_OK);
	}
	return NULL;
}

/* ------------------------------------------------------------ (a') p11sign */

static const char *
ckr(CK_RV rv)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "CKR 0x%lx", (unsigned long)rv);
	return buf;
}

static void
p11_setup(struct shared *sh, const char *pin)
{
	const struct opts *o = sh->o;
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS ia;
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64, i, n = 0;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2];
	char label[33];
	size_t ll;
	void *h;
	CK_RV rv;

	if ((h = dlopen(o->module, RTLD_NOW | RTLD_LOCAL)) == NULL)
		bench_die("dlopen %s: %s", o->module, dlerror());
	if ((gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL ||
	    gfl(&sh->p11) != CKR_OK)
		bench_die("%s: no C_GetFunctionList", o->module);
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	if ((rv = sh->p11->C_Initialize(&ia)) != CKR_OK)
		bench_die("C_Initialize: %s", ckr(rv));
	if ((rv = sh->p11->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK)
		bench_die("C_GetSlotList: %s", ckr(rv));
	for (i = 0; i < nslots; i++) {
		if (sh->p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(label, ti.label, 32);
		label[32] = '\0';
		for (ll = 32; ll > 0 && label[ll - 1] == ' '; ll--)
			label[ll - 1] = '\0';
		if (strcmp(label, o->token_label) == 0) {
			sh->slot = slots[i];
			n++;
		}
	}
	if (n != 1)
		bench_die("%lu tokens labelled %s", (unsigned long)n, o->token_label);
	if ((rv = sh->p11->C_OpenSession(sh->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK ||
	    (rv = sh->p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin,
	    (CK_ULONG)strlen(pin))) != CKR_OK)
		bench_die("open/login: %s", ckr(rv));
	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	tmpl[1].type = CKA_ID;
	tmpl[1].pValue = sh->key_id;
	tmpl[1].ulValueLen = TCA_KEY_ID_LEN;
	n = 0;
	if ((rv = sh->p11->C_FindObjectsInit(s, tmpl, 2)) != CKR_OK ||
	    (rv = sh->p11->C_FindObjects(s, &sh->key, 1, &n)) != CKR_OK ||
	    (rv = sh->p11->C_FindObjectsFinal(s)) != CKR_OK || n != 1)
		bench_die("finding the key of tenant %s: %s, %lu found", o->tenant, ckr(rv),
		    (unsigned long)n);
	/* the login session stays open: login state lives as long as one does */
}

static void *
p11sign_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s;
	unsigned char digest[32], sig[132];
	CK_ULONG sig_len;
	uint64_t t0, t1;
	CK_RV rv;
	int ok;

	memset(digest, 0x5a, sizeof(digest));
	if ((rv = sh->p11->C_OpenSession(sh->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
		bench_die("C_OpenSession: %s", ckr(rv));
	pthread_barrier_wait(&sh->barrier);
	for (;;) {
		t0 = bench_now_ns();
		if (t0 >= sh->clk.end_ns)
			break;
		sig_len = sizeof(sig);
		ok = (rv = sh->p11->C_SignInit(s, &m, sh->key)) == CKR_OK &&
		    (rv = sh->p11->C_Sign(s, digest, sizeof(digest), sig, &sig_len)) == CKR_OK;
		t1 = bench_now_ns();
		if (!ok)
			note_error(sh, "C_Sign", ckr(rv));
		record(w, t0, t1, ok);
	}
	sh->p11->C_CloseSession(s);
	return NULL;
}

/* ------------------------------------------------------------ main */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: tca-bench-inproc sign|floor --module M --uri U --pin-file F --tenant T\n"
	    "                        --threads N --seconds S [--pool P] [--warmup S] [--tenants N]\n"
	    "                        [--ca-pem FILE --csr-type T --csrs N --csr-cache DIR]\n"
	    "       tca-bench-inproc open --module M --uri U --pin-file F [--pool P]\n"
	    "       tca-bench-inproc p11sign --module M --token-label L --pin-file F --tenant T\n"
	    "                        --threads N --seconds S\n"
	    "       common: [--label L] [--out FILE]\n");
	exit(2);
}

static long
self_kib(const char *field)
{
	char line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int
cmd_open(const struct opts *o, const char *pin)
{
	struct tca_token_params tp;
	tca_token *tok = NULL;
	char err[256];
	long rss0;
	uint64_t t0, t1;
	FILE *f;

	memset(&tp, 0, sizeof(tp));
	tp.module_path = o->module;
	tp.token_uri = o->uri;
	tp.pool_size = o->pool;
	rss0 = self_kib("VmRSS");
	t0 = bench_now_ns();
	if (tca_token_open(&tp, pin, strlen(pin), &tok, err, sizeof(err)) != TCA_OK)
		bench_die("token: %s", err);
	t1 = bench_now_ns();
	f = bench_results_open(o->out);
	bench_json_begin(f, "token_open");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_int(f, "keys", (long long)tca_token_key_count(tok));
	bench_json_num(f, "open_ms", (double)(t1 - t0) / 1e6);
	bench_json_int(f, "rss_before_kib", rss0);
	bench_json_int(f, "rss_kib", self_kib("VmRSS"));
	bench_json_int(f, "hwm_kib", self_kib("VmHWM"));
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: token open with %zu keys: %.1f ms, RSS %ld KiB\n", bench_progname,
	    tca_token_key_count(tok), (double)(t1 - t0) / 1e6, self_kib("VmRSS"));
	tca_token_close(tok);
	return 0;
}

/* The CA as the engine holds it (issuer.h). */
static struct tca_issuer *
read_ca(const char *path)
{
	FILE *f = fopen(path, "r");
	struct tca_issuer *iss = NULL;
	unsigned char *der = NULL;
	X509 *x;
	int len;

	if (f == NULL)
		bench_die("%s: cannot open", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		bench_die("%s: not a PEM certificate", path);
	if ((len = i2d_X509(x, &der)) <= 0 ||
	    tca_issuer_new(der, (size_t)len, &iss) != TCA_OK)
		bench_die("%s: the engine cannot read this certificate", path);
	OPENSSL_free(der);
	X509_free(x);
	return iss;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "uri", required_argument, NULL, 'u' },
		{ "token-label", required_argument, NULL, 'L' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "tenant", required_argument, NULL, 'T' },
		{ "ca-pem", required_argument, NULL, 'a' },
		{ "csr-type", required_argument, NULL, 't' },
		{ "csr-cache", required_argument, NULL, 'C' },
		{ "csrs", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 'c' },
		{ "tenants", required_argument, NULL, 'N' },
		{ "pool", required_argument, NULL, 'P' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "label", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	struct tca_token_params tp;
	struct shared sh;
	struct worker *ws;
	struct bench_lat *lats;
	struct bench_summary s;
	struct opts o;
	void *(*fn)(void *) = NULL;
	char pin[256], err[256];
	unsigned int i;
	uint64_t cpu0, cpu1;
	FILE *f;
	int ch, r;

	memset(&o, 0, sizeof(o));
	o.csr_type = "ec-p256";
	o.pool = 4;
	o.ncsrs = 256;
	o.warmup = 1.0;
	if (argc < 2)
		usage();
	o.mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'm': o.module = optarg; break;
		case 'u': o.uri = optarg; break;
		case 'L': o.token_label = optarg; break;
		case 'p': o.pin_file = optarg; break;
		case 'T': o.tenant = optarg; break;
		case 'a': o.ca_pem = optarg; break;
		case 't': o.csr_type = optarg; break;
		case 'C': o.csr_cache = optarg; break;
		case 'n': o.ncsrs = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'c': o.threads = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'N': o.tenants = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'P': o.pool = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'S': o.seconds = strtod(optarg, NULL); break;
		case 'w': o.warmup = strtod(optarg, NULL); break;
		case 'l': o.label = optarg; break;
		case 'o': o.out = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || o.module == NULL || o.pin_file == NULL || o.pool == 0)
		usage();
	tca_log_init(bench_progname, 0, LOG_WARNING);
	if (strcmp(o.mode, "open") == 0) {
		if (o.uri == NULL)
			usage();
		bench_read_pin(o.pin_file, pin, sizeof(pin));
		r = cmd_open(&o, pin);
		OPENSSL_cleanse(pin, sizeof(pin));
		return r;
	}
	if (o.tenant == NULL || o.threads == 0 || o.seconds <= 0 || o.ncsrs == 0)
		usage();
	memset(&sh, 0, sizeof(sh));
	sh.o = &o;
	pthread_mutex_init(&sh.err_lock, NULL);
	tca_tenant_key_id(o.tenant, sh.key_id);
	memset(tbs_like, 0xa5, sizeof(tbs_like));
	bench_read_pin(o.pin_file, pin, sizeof(pin));
	if (strcmp(o.mode, "p11sign") == 0) {
		if (o.token_label == NULL)
			usage();
		p11_setup(&sh, pin);
		fn = p11sign_main;
	} else if (strcmp(o.mode, "sign") == 0 || strcmp(o.mode, "floor") == 0) {
		if (o.uri == NULL)
			usage();
		memset(&tp, 0, sizeof(tp));
		tp.module_path = o.module;
		tp.token_uri = o.uri;
		tp.pool_size = o.pool;
		if ((r = tca_token_open(&tp, pin, strlen(pin), &sh.tok, err, sizeof(err))) != TCA_OK)
			bench_die("token: %s", err);
		if (tca_token_find_key(sh.tok, sh.key_id, TCA_KEY_ID_LEN, NULL) != TCA_OK)
			bench_die("tenant %s has no key on the token", o.tenant);
		if (o.tenants > 1) {
			char t[16];

			sh.key_ids = bench_xcalloc(o.tenants, sizeof(*sh.key_ids));
			for (i = 0; i < o.tenants; i++) {
				bench_tenant_name(i, t, sizeof(t));
				tca_tenant_key_id(t, sh.key_ids[i]);
				if (tca_token_find_key(sh.tok, sh.key_ids[i], TCA_KEY_ID_LEN,
				    NULL) != TCA_OK)
					bench_die("tenant %s has no key on the token", t);
			}
		}
		fn = sign_main;
		if (strcmp(o.mode, "floor") == 0) {
			if (o.ca_pem == NULL)
				usage();
			sh.ca = read_ca(o.ca_pem);
			fprintf(stderr, "%s: preparing %u %s CSRs\n", bench_progname, o.ncsrs,
			    o.csr_type);
			sh.csrs = bench_csrs_make(o.csr_type, o.ncsrs, o.csr_cache);
			sh.ncsrs = o.ncsrs;
			fn = floor_main;
		}
	} else
		usage();
	OPENSSL_cleanse(pin, sizeof(pin));

	if (pthread_barrier_init(&sh.barrier, NULL, o.threads + 1) != 0)
		bench_die("pthread_barrier_init failed");
	ws = bench_xcalloc(o.threads, sizeof(*ws));
	for (i = 0; i < o.threads; i++) {
		ws[i].sh = &sh;
		ws[i].idx = i;
		if (pthread_create(&ws[i].th, NULL, fn, &ws[i]) != 0)
			bench_die("pthread_create failed");
	}
	bench_clock_set(&sh.clk, o.warmup, o.seconds);
	pthread_barrier_wait(&sh.barrier);
	memset(&s, 0, sizeof(s));
	bench_sleep_until(sh.clk.window_ns);
	cpu0 = bench_cpu_ns(0);
	bench_sleep_until(sh.clk.end_ns);
	cpu1 = bench_cpu_ns(0);
	lats = bench_xcalloc(o.threads, sizeof(*lats));
	for (i = 0; i < o.threads; i++) {
		pthread_join(ws[i].th, NULL);
		lats[i] = ws[i].lat;
		s.errors += ws[i].errors;
	}
	s.seconds = o.seconds;
	bench_summarize(lats, o.threads, &s);
	s.cpu_ms_per_op = s.ops > 0 ? (double)(cpu1 - cpu0) / 1e6 / (double)s.ops : -1.0;

	f = bench_results_open(o.out);
	bench_json_begin(f, o.mode);
	bench_json_str(f, "label", o.label != NULL ? o.label : "");
	if (strcmp(o.mode, "floor") == 0)
		bench_json_str(f, "csr_type", o.csr_type);
	bench_json_int(f, "threads", o.threads);
	if (strcmp(o.mode, "p11sign") != 0)
		bench_json_int(f, "pool", o.pool);
	if (strcmp(o.mode, "sign") == 0)
		bench_json_int(f, "tenants", o.tenants > 1 ? o.tenants : 1);
	bench_json_summary(f, &s);
	if (sh.first_error[0] != '\0')
		bench_json_str(f, "first_error", sh.first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: %s%s%s threads=%u: %.1f ops/s, p50 %.2f p99 %.2f max %.2f ms, "
	    "%llu errors\n", bench_progname, o.mode, strcmp(o.mode, "floor") == 0 ? " " : "",
	    strcmp(o.mode, "floor") == 0 ? o.csr_type : "", o.threads, s.rate, s.p50_ms,
	    s.p99_ms, s.max_ms, (unsigned long long)s.errors);
	if (sh.first_error[0] != '\0')
		fprintf(stderr, "%s: first error: %s\n", bench_progname, sh.first_error);

	for (i = 0; i < o.threads; i++)
		bench_lat_free(&ws[i].lat);
	free(lats);
	free(ws);
	free(sh.key_ids);
	bench_csrs_free((struct bench_csr *)sh.csrs, sh.ncsrs);
	tca_issuer_free(sh.ca);
	tca_token_close(sh.tok);
	if (sh.p11 != NULL)
		sh.p11->C_Finalize(NULL);
	pthread_barrier_destroy(&sh.barrier);
	pthread_mutex_destroy(&sh.err_lock);
	return s.errors > 0 || s.ops == 0;
}
