/*
 * hsm-check.c - ca-admin hsm-check: is a provisioned slot fit for the engine?
 * (hsm-check.h lists the checks.)
 *
 * The token is driven through token.h, the way the engine drives it, so a
 * pass means the engine's own code paths work on this token.  What token.h
 * does not answer is asked of the module directly, through a handle of our
 * own (tca_p11_load and P11_CALL, hence p11.h): the module's description, how
 * many sessions the token allows (tca_token_open fails as a whole when one
 * session cannot be opened, so it cannot count them), C_GetTokenInfo's limits,
 * and which mechanism is missing for a key type the token does not offer.
 * p11.c counts a module's users, so our handle and the token's share one
 * C_Initialize, and ours keeps the module initialised after the token is
 * closed.
 */
#include "config.h"

#include "p11.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "conf.h"
#include "hsm-check.h"
#include "keytype.h"
#include "log.h"
#include "secret.h"
#include "tca-error.h"
#include "text.h"
#include "token.h"

/* Throwaway key ids: this prefix and random bytes, 22 bytes in all, so they
 * can never be one of the 16-byte ids the engine gives tenant keys
 * (docs/hsm-provisioning.md, "Key names"). */
#define ID_PREFIX	"tca-hsm-check/"
#define ID_PREFIX_LEN	(sizeof(ID_PREFIX) - 1)
#define ID_RANDOM	8
#define ID_LEN		(ID_PREFIX_LEN + ID_RANDOM)
#define LABEL_PREFIX	"tca-hsm-check:"
#define SIGN_MSG_LEN	512	/* about the size of a TBSCertificate */
#define MAX_SIG		1024

#define PASS	TCA_HSM_PASS
#define FAIL	TCA_HSM_FAIL
#define SKIP	TCA_HSM_SKIP

struct run {
	const struct tca_hsm_check_params *p;
	tca_hsm_check_cb cb;
	void *ctx;
	struct tca_hsm_check_summary *sum;
	struct tca_config *cfg;
	struct tca_p11 *mod;		/* our own handle on the module */
	tca_token *tok;
	CK_SLOT_ID slot;		/* the token's slot, once it was opened */
	int have_slot;
	char *pin;			/* until the one login attempt */
	size_t pin_len;
	char pin_source[PATH_MAX + 8];	/* the PIN file, or $VARIABLE */
	char pin_problem[512];		/* why there is no usable PIN; "" if there is one */
	const char *pin_hint;
	unsigned char msg[SIGN_MSG_LEN];	/* what the sign checks sign */
	char rate_note[TCA_KEY_TYPE_COUNT + 1][160];	/* why a rate is missing */
	unsigned long rate_count[TCA_KEY_TYPE_COUNT + 1];
	double rate_secs[TCA_KEY_TYPE_COUNT + 1];
};

const char *
tca_hsm_check_status_name(enum tca_hsm_check_status st)
{
	switch (st) {
	case TCA_HSM_PASS:
		return "PASS";
	case TCA_HSM_FAIL:
		return "FAIL";
	default:
		return "SKIP";
	}
}

/* Hands one result to the caller and counts it. */
static void __attribute__((format(printf, 7, 8)))
emit(struct run *run, const char *name, enum tca_hsm_check_status st, int required,
    const char *rv, const char *hint, const char *fmt, ...)
{
	struct tca_hsm_check_result res;
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	memset(&res, 0, sizeof(res));
	res.name = name;
	res.status = st;
	res.rv = rv;
	res.detail = detail;
	res.hint = hint;
	res.required = required;
	run->sum->results++;
	if (required && st != PASS)
		run->sum->required_failed++;
	if (run->cb != NULL)
		run->cb(run->ctx, &res);
}

static int
stopped(const struct run *run)
{
	return run->p->stop != NULL && *run->p->stop != 0;
}

static double
now_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The first CKR_ name in a message of the token layer, copied into buf; NULL
 * if there is none.  token.h reports failures as text, not as CK_RV. */
static const char *
rv_in_text(const char *s, char *buf, size_t bufsz)
{
	const char *p;
	size_t n;

	if (s == NULL || (p = strstr(s, "CKR_")) == NULL)
		return NULL;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_abcdefx");
	if (n >= bufsz)
		n = bufsz - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

/* Failures the token layer has recorded so far (every failed C_ call). */
static unsigned long long
call_failures(tca_token *tok)
{
	struct tca_token_status st;

	return tca_token_get_status(tok, &st) == TCA_OK ? st.call_failures : 0;
}

/*
 * The C_ call that failed since the count was "before": " (C_Sign:
 * CKR_...)" into call, the CKR_ name into rvbuf and returned; NULL (call "")
 * if none failed.
 */
static const char *
failed_call(struct run *run, unsigned long long before, char *call, size_t callsz,
    char *rvbuf, size_t rvsz)
{
	struct tca_token_status st;

	call[0] = '\0';
	if (tca_token_get_status(run->tok, &st) != TCA_OK || st.call_failures <= before ||
	    st.last_error[0] == '\0')
		return NULL;
	snprintf(call, callsz, " (%s)", st.last_error);
	return rv_in_text(st.last_error, rvbuf, rvsz);
}

static const char *
init_args_of(const struct tca_config *cfg)
{
	return cfg->init_args[0] != '\0' ? cfg->init_args : NULL;
}

/* ------------------------------------------------------------ set-up */

static int
set_str(char *dst, size_t dstsz, const char *v, const char *what, char *err, size_t errlen)
{
	size_t len = strlen(v);

	if (len >= dstsz) {
		tca_setf(err, errlen, "%s is too long", what);
		return TCA_ERR_CONFIG;
	}
	memcpy(dst, v, len + 1);
	return TCA_OK;
}

/* 1 if a and b are the same file (the same string where either is missing). */
static int
same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (realpath(a, ra) == NULL || realpath(b, rb) == NULL)
		return strcmp(a, b) == 0;
	return strcmp(ra, rb) == 0;
}

/* The configuration the checks run with: the engine's file and its profile,
 * or the profile and the explicit values; explicit values win. */
static int
load_config(const struct tca_hsm_check_params *p, struct tca_config *cfg, char *err,
    size_t errlen)
{
	char want[2 * PATH_MAX + 16], have[2 * PATH_MAX + 16];
	int r;

	if (p->config_path != NULL) {
		if ((r = tca_config_load(p->config_path, cfg, err, errlen)) != TCA_OK)
			return r;
		if (p->module != NULL && (r = set_str(cfg->module, sizeof(cfg->module),
		    p->module, "--module", err, errlen)) != TCA_OK)
			return r;
		if (p->init_args != NULL && (r = set_str(cfg->init_args, sizeof(cfg->init_args),
		    p->init_args, "--init-args", err, errlen)) != TCA_OK)
			return r;
		if (p->profile != NULL) {
			/* checking another profile than the engine's would pass a
			 * configuration the engine does not run with */
			tca_profile_path(cfg, cfg->profile, have, sizeof(have));
			tca_profile_path(cfg, p->profile, want, sizeof(want));
			if (!same_file(have, want)) {
				tca_setf(err, errlen, "--profile %s is not the profile %s names "
				    "(%s); leave --profile out to check the configuration as it is",
				    want, p->config_path, have);
				return TCA_ERR_CONFIG;
			}
		}
	} else {
		if (p->profile == NULL) {
			tca_setf(err, errlen, "no hsm-profile: give --profile or --config");
			return TCA_ERR_CONFIG;
		}
		if (p->uri == NULL || p->pin_file == NULL) {
			tca_setf(err, errlen, "without --config, --uri and --pin-file are required");
			return TCA_ERR_CONFIG;
		}
		tca_config_defaults(cfg);
		if (p->profiles_dir != NULL && (r = set_str(cfg->profiles_dir,
		    sizeof(cfg->profiles_dir), p->profiles_dir, "--profiles-dir", err, errlen)) != TCA_OK)
			return r;
		/* set before the profile is read, which fills only what is unset
		 * (and needs a module from somewhere) */
		if (p->module != NULL && (r = set_str(cfg->module, sizeof(cfg->module), p->module,
		    "--module", err, errlen)) != TCA_OK)
			return r;
		if (p->init_args != NULL && (r = set_str(cfg->init_args, sizeof(cfg->init_args),
		    p->init_args, "--init-args", err, errlen)) != TCA_OK)
			return r;
		tca_profile_path(cfg, p->profile, want, sizeof(want));
		if ((r = tca_profile_load(want, cfg, err, errlen)) != TCA_OK)
			return r;
	}
	if (p->uri != NULL && (r = set_str(cfg->token_uri, sizeof(cfg->token_uri), p->uri,
	    "--uri", err, errlen)) != TCA_OK)
		return r;
	if (p->pin_file != NULL) {
		if ((r = set_str(cfg->pin_file, sizeof(cfg->pin_file), p->pin_file, "--pin-file",
		    err, errlen)) != TCA_OK)
			return r;
		cfg->pin_env[0] = '\0';
	}
	return TCA_OK;
}

/* Reads the PIN and checks its length against the profile.  A PIN that
 * cannot be used is the login check's failure, not a set-up error: the
 * other checks still tell the operator something. */
static void
read_pin(struct run *run)
{
	const struct tca_config *cfg = run->cfg;
	char why[512] = "";
	int r;

	if (cfg->pin_file[0] != '\0') {
		snprintf(run->pin_source, sizeof(run->pin_source), "%s", cfg->pin_file);
		r = tca_secret_read_file(cfg->pin_file, &run->pin, &run->pin_len, why, sizeof(why));
	} else {
		snprintf(run->pin_source, sizeof(run->pin_source), "$%s", cfg->pin_env);
		r = tca_secret_take_env(cfg->pin_env, &run->pin, &run->pin_len, why, sizeof(why));
	}
	if (r != TCA_OK) {
		snprintf(run->pin_problem, sizeof(run->pin_problem), "no PIN: %s", why);
		run->pin_hint = "the PIN file must be a regular file of the user running the "
		    "check, mode 0600 or 0400 (chmod 600 FILE), with the user PIN on its first line";
		return;
	}
	/* never send a PIN the token would refuse: a refusal may count
	 * towards its lockout */
	if (tca_profile_check_pin(cfg, run->pin_len, "the PIN", why, sizeof(why)) != TCA_OK) {
		snprintf(run->pin_problem, sizeof(run->pin_problem), "not tried: %s", why);
		run->pin_hint = "put the token's user PIN in the file; if the token really takes "
		    "PINs of this length, correct pin_min/pin_max in the hsm-profile";
		tca_secret_free(run->pin, run->pin_len);
		run->pin = NULL;
		run->pin_len = 0;
	}
}

/* ------------------------------------------------------------ 1. module */

static int
check_module(struct run *run)
{
	const struct tca_config *cfg = run->cfg;
	char err[1024] = "", rvbuf[48], desc[33], manuf[33];
	const char *rv, *hint;
	CK_INFO info;

	if (tca_p11_load(cfg->module, init_args_of(cfg), &run->mod, err, sizeof(err)) != TCA_OK) {
		rv = rv_in_text(err, rvbuf, sizeof(rvbuf));
		if (rv == NULL && cfg->module[0] != '/')
			hint = "give the module's absolute path: p11-kit looks a relative name "
			    "up in its own module directory, not in the current one";
		else if (rv == NULL && access(cfg->module, F_OK) != 0)
			hint = "no such file: install the module's package (SoftHSMv2: apt-get "
			    "install softhsm2; an HSM: the vendor's PKCS#11 client), or correct "
			    "module in the hsm-profile (token.module, --module)";
		else if (rv == NULL)
			hint = "the file does not load as a PKCS#11 module: wrong architecture or "
			    "a missing shared library (ldd MODULE)";
		else if (strcmp(rv, "CKR_HOST_MEMORY") == 0)
			hint = "openCryptoki answers this when pkcsslotd is not running: start it "
			    "(systemctl start pkcsslotd) and put the user in the pkcs11 group";
		else if (strcmp(rv, "CKR_ARGUMENTS_BAD") == 0)
			hint = "the module wants init arguments: set init_args in the hsm-profile, "
			    "or token.init_args (--init-args); NSS softokn: configdir='sql:DIR' "
			    "certPrefix='' keyPrefix='' secmod='secmod.db'";
		else
			hint = "C_Initialize failed: check the module's own configuration "
			    "(SoftHSMv2: SOFTHSM2_CONF; an HSM: the vendor client's configuration "
			    "and connection) and the profile's env.* settings";
		emit(run, "module", FAIL, 1, rv, hint, "%s", err);
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (P11_CALL(run->mod, C_GetInfo, &info) != CKR_OK) {
		emit(run, "module", PASS, 1, NULL, NULL, "%s loaded, C_Initialize%s accepted "
		    "(C_GetInfo failed)", cfg->module, init_args_of(cfg) != NULL ?
		    " with the init arguments" : "");
		return 0;
	}
	tca_p11_str(info.libraryDescription, sizeof(info.libraryDescription), desc, sizeof(desc));
	tca_p11_str(info.manufacturerID, sizeof(info.manufacturerID), manuf, sizeof(manuf));
	emit(run, "module", PASS, 1, NULL, NULL, "%s: \"%s\" by \"%s\", library %u.%u, "
	    "Cryptoki %u.%u; C_Initialize%s accepted", cfg->module, desc, manuf,
	    info.libraryVersion.major, info.libraryVersion.minor, info.cryptokiVersion.major,
	    info.cryptokiVersion.minor, init_args_of(cfg) != NULL ? " with the init arguments" : "");
	return 0;
}

/* ------------------------------------------------------------ 2., 3. token, login */

static const char *
login_hint(const char *rv)
{
	if (rv == NULL)
		return "check the token's state and the vendor's logs";
	if (strcmp(rv, "CKR_PIN_INCORRECT") == 0)
		return "the file does not hold the token's user PIN: correct it before the "
		    "next try (the token locks the PIN after a few refusals)";
	if (strcmp(rv, "CKR_PIN_LOCKED") == 0)
		return "the user PIN is locked: the security officer must unlock or reset it "
		    "with the vendor's tool";
	if (strcmp(rv, "CKR_PIN_LEN_RANGE") == 0)
		return "the token refuses a PIN of this length: correct the PIN, and "
		    "pin_min/pin_max in the hsm-profile";
	if (strcmp(rv, "CKR_PIN_EXPIRED") == 0)
		return "the PIN has expired: set a new one with the vendor's tool (C_SetPIN)";
	if (strcmp(rv, "CKR_USER_PIN_NOT_INITIALIZED") == 0)
		return "the user PIN was never set: the security officer must initialise it "
		    "(C_InitPIN; docs/hsm-provisioning.md)";
	return "check the token's state and the vendor's logs";
}

/* Opens the token with one session and logs in: one try, never repeated. */
static void
check_token(struct run *run)
{
	const struct tca_config *cfg = run->cfg;
	struct tca_token_params tp;
	struct tca_token_status st;
	char err[1024] = "", rvbuf[48];
	const char *rv, *hint;
	int r;

	if (run->pin_problem[0] != '\0') {
		emit(run, "token", SKIP, 1, NULL, NULL, "not opened: there is no usable PIN "
		    "(see login), and the token is opened together with the login");
		emit(run, "login", FAIL, 1, NULL, run->pin_hint, "%s", run->pin_problem);
		return;
	}
	memset(&tp, 0, sizeof(tp));
	tp.module_path = cfg->module;
	tp.init_args = init_args_of(cfg);
	tp.token_uri = cfg->token_uri;
	tp.pool_size = 1;	/* the session limit is the sessions check's business */
	tp.call_timeout_ms = cfg->call_timeout_ms;	/* a hung C_Sign as the engine sees it */
	tp.quirks = cfg->quirks;
	r = tca_token_open(&tp, run->pin, run->pin_len, &run->tok, err, sizeof(err));
	/* tried once; hsm-check never logs in again */
	tca_secret_free(run->pin, run->pin_len);
	run->pin = NULL;
	run->pin_len = 0;
	if (r == TCA_OK) {
		if (tca_token_get_status(run->tok, &st) == TCA_OK) {
			snprintf(run->sum->label, sizeof(run->sum->label), "%s", st.label);
			snprintf(run->sum->manufacturer, sizeof(run->sum->manufacturer), "%s",
			    st.manufacturer);
			snprintf(run->sum->model, sizeof(run->sum->model), "%s", st.model);
			snprintf(run->sum->serial, sizeof(run->sum->serial), "%s", st.serial);
			run->slot = (CK_SLOT_ID)st.slot_id;
			run->have_slot = 1;
		}
		emit(run, "token", PASS, 1, NULL, NULL, "%s matches \"%s\" (%s %s, serial %s) "
		    "in slot %lu; private keys already on it: %zu", cfg->token_uri, run->sum->label,
		    run->sum->manufacturer, run->sum->model, run->sum->serial,
		    (unsigned long)run->slot, tca_token_key_count(run->tok));
		emit(run, "login", PASS, 1, NULL, NULL, "the token accepted the user PIN from %s",
		    run->pin_source);
		return;
	}
	rv = rv_in_text(err, rvbuf, sizeof(rvbuf));
	if (r == TCA_ERR_UNAUTHORIZED || strstr(err, "login to token") != NULL) {
		emit(run, "token", PASS, 1, NULL, NULL, "%s matches a token (opening it reached "
		    "the login)", cfg->token_uri);
		emit(run, "login", FAIL, 1, rv, login_hint(rv), "%s (PIN from %s; tried once, "
		    "not retried: every refusal counts towards the token's lockout)", err,
		    run->pin_source);
		return;
	}
	if (r == TCA_ERR_CONFIG)
		hint = "make token.uri (--uri) select exactly one of the tokens listed, e.g. "
		    "pkcs11:token=LABEL, with serial=... if labels repeat";
	else if (strstr(err, "not initialized") != NULL)
		hint = "the slot is not provisioned: initialise the token and its user PIN "
		    "first (docs/hsm-provisioning.md)";
	else
		hint = "the module cannot use the token: check the HSM, its connection and the "
		    "vendor client's logs";
	emit(run, "token", FAIL, 1, rv, hint, "%s", err);
	emit(run, "login", SKIP, 1, NULL, NULL, "not tried: the token was not opened");
}

/* ------------------------------------------------------------ 4. mechanisms */

static void
check_mechanisms(struct run *run)
{
	const char *mech[TCA_KEY_TYPE_COUNT + 1];
	const struct tca_key_desc *kd;
	char have[512] = "", lack[256] = "";
	unsigned int mask;
	size_t i, oh = 0, ol = 0;

	mask = tca_token_key_types(run->tok, mech);
	run->sum->key_types = mask;
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (mask & (1u << kd->type)) {
			snprintf(run->sum->mechanism[kd->type], sizeof(run->sum->mechanism[0]), "%s",
			    mech[kd->type] != NULL ? mech[kd->type] : "?");
			if (oh < sizeof(have))
				oh += (size_t)snprintf(have + oh, sizeof(have) - oh, "%s%s (%s)",
				    oh > 0 ? ", " : "", kd->name, run->sum->mechanism[kd->type]);
		} else if (ol < sizeof(lack))
			ol += (size_t)snprintf(lack + ol, sizeof(lack) - ol, "%s%s",
			    ol > 0 ? ", " : "", kd->name);
	}
	if (mask == 0) {
		emit(run, "mechanisms", FAIL, 1, NULL, "the engine needs a generation and a "
		    "signing mechanism of one key type (CKM_EC_KEY_PAIR_GEN + CKM_ECDSA, "
		    "CKM_RSA_PKCS_KEY_PAIR_GEN + CKM_RSA_PKCS, CKM_EC_EDWARDS_KEY_PAIR_GEN + "
		    "CKM_EDDSA): check the slot, firmware and licence (pkcs11-tool --module "
		    "MODULE -M)", "the token offers no key type the engine can use");
		return;
	}
	emit(run, "mechanisms", PASS, 1, NULL, NULL, "generates and signs: %s%s%s", have,
	    lack[0] != '\0' ? "; not offered: " : "", lack);
}

/* 1 if m is in the list. */
static int
mech_listed(const CK_MECHANISM_TYPE *mechs, CK_ULONG n, CK_MECHANISM_TYPE m)
{
	CK_ULONG i;

	for (i = 0; m != 0 && i < n; i++)
		if (mechs[i] == m)
			return 1;
	return 0;
}

/* Why the token layer does not offer kd, for the operator. */
static void
why_not_offered(struct run *run, const struct tca_key_desc *kd, char *why, size_t whylen,
    const char **hint_ptr)
{
	CK_MECHANISM_TYPE *mechs = NULL;
	CK_ULONG n = 0;

	if (kd->type == TCA_KEY_ED25519 && run->cfg->quirks.no_ed25519) {
		tca_setf(why, whylen, "ed25519 is not offered: the hsm-profile sets no_ed25519");
		*hint_ptr = "remove no_ed25519 from the hsm-profile if the token's Ed25519 "
		    "support is sound, or leave ed25519 out of --key-types";
		return;
	}
	*hint_ptr = "enable the mechanisms on the HSM (firmware, licence, FIPS or partition "
	    "policy), or leave this type out of --key-types";
	if (run->mod == NULL || !run->have_slot)
		goto unknown;
	if (P11_CALL(run->mod, C_GetMechanismList, run->slot, NULL, &n) != CKR_OK ||
	    n == 0 || n > 4096 || (mechs = calloc(n, sizeof(*mechs))) == NULL ||
	    P11_CALL(run->mod, C_GetMechanismList, run->slot, mechs, &n) != CKR_OK)
		goto unknown;
	if (!mech_listed(mechs, n, kd->gen_mech))
		tca_setf(why, whylen, "%s is not offered: the token has no %s", kd->name,
		    tca_p11_mech_name(kd->gen_mech));
	else if (!mech_listed(mechs, n, kd->raw_mech) && !mech_listed(mechs, n, kd->hash_mech))
		tca_setf(why, whylen, "%s is not offered: the token has no signing mechanism "
		    "for it (%s%s%s)", kd->name, tca_p11_mech_name(kd->raw_mech),
		    kd->hash_mech != 0 ? " or " : "",
		    kd->hash_mech != 0 ? tca_p11_mech_name(kd->hash_mech) : "");
	else
		tca_setf(why, whylen, "%s is not offered: the token's %s or signing mechanism "
		    "does not allow it (C_GetMechanismInfo: flags or key size range)", kd->name,
		    tca_p11_mech_name(kd->gen_mech));
	free(mechs);
	return;
 unknown:
	free(mechs);
	tca_setf(why, whylen, "%s is not offered: the token lacks its generation or signing "
	    "mechanism", kd->name);
}

/* ------------------------------------------------------------ 5. key types */

/* 1 if sig is pub's signature over msg as kd signs, 0 if not, -1 on error. */
static int
verify(EVP_PKEY *pub, const struct tca_key_desc *kd, const unsigned char *msg,
    size_t msg_len, const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *mctx;
	int v, r = -1;

	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	/* kd->md NULL: Ed25519 signs the message itself */
	if (EVP_DigestVerifyInit_ex(mctx, NULL, kd->md, NULL, NULL, pub, NULL) == 1) {
		v = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len);
		r = v == 1 ? 1 : v == 0 ? 0 : -1;
	}
	EVP_MD_CTX_free(mctx);
	/* a refused signature leaves errors queued; do not leak them onwards */
	tca_log_ossl_errors("hsm-check: verify");
	return r;
}

static const char *
generate_hint(int r)
{
	switch (r) {
	case TCA_ERR_POLICY_VIOLATION:
		return "the token cannot make this key type (mechanism or curve missing): "
		    "enable it on the HSM, or leave it out of --key-types";
	case TCA_ERR_TOKEN_REFUSED:
		return "the token refused the key template, or made a key that could leave it "
		    "(stderr says which): set omit_public/omit_private in the hsm-profile for "
		    "attributes that do not protect the key, or change the partition's key "
		    "policy (docs/hsm-provisioning.md)";
	case TCA_ERR_TOKEN_FULL:
		return "the token has no room for another key pair: free objects or enlarge "
		    "the partition";
	default:
		return "the token failed while generating: check the HSM, its connection and "
		    "the vendor's logs";
	}
}

/* Signs in a loop for rate_ms on one thread (check 8 reports it). */
static void
measure_rate(struct run *run, const struct tca_key_desc *kd, const unsigned char *id)
{
	unsigned char sig[MAX_SIG];
	unsigned long n = 0;
	double t0, end, t;
	size_t sig_len;
	int r = TCA_OK;

	if (run->p->rate_ms == 0) {
		snprintf(run->rate_note[kd->type], sizeof(run->rate_note[0]),
		    "not measured (--seconds 0)");
		return;
	}
	t0 = now_s();
	end = t0 + run->p->rate_ms / 1000.0;
	do {
		if (stopped(run)) {
			snprintf(run->rate_note[kd->type], sizeof(run->rate_note[0]),
			    "interrupted");
			return;
		}
		sig_len = sizeof(sig);
		if ((r = tca_token_sign(run->tok, id, ID_LEN, kd->alg, run->msg,
		    sizeof(run->msg), sig, &sig_len)) != TCA_OK)
			break;
		n++;
	} while (now_s() < end);
	t = now_s() - t0;
	if (r != TCA_OK || n == 0 || t <= 0) {
		snprintf(run->rate_note[kd->type], sizeof(run->rate_note[0]),
		    "signing failed after %lu signatures: %s", n, tca_strerror(r));
		return;
	}
	run->rate_count[kd->type] = n;
	run->rate_secs[kd->type] = t;
	run->sum->signatures_per_s[kd->type] = (double)n / t;
}

/* Reads the private key's security attributes back.  1 if they pass. */
static int
check_attributes(struct run *run, const struct tca_key_desc *kd, const unsigned char *id)
{
	struct tca_key_attrs a;
	char name[64], wrong[512] = "", call[128], rvbuf[48];
	const char *rv;
	unsigned long long before;
	size_t o = 0;
	int r;

	snprintf(name, sizeof(name), "%s/attributes", kd->name);
	before = call_failures(run->tok);
	if ((r = tca_token_key_attrs(run->tok, id, ID_LEN, &a)) != TCA_OK) {
		rv = failed_call(run, before, call, sizeof(call), rvbuf, sizeof(rvbuf));
		emit(run, name, FAIL, 1, rv, "the token does not answer C_GetAttributeValue on "
		    "the key: check the vendor's logs", "reading the key's attributes failed: "
		    "%s%s", tca_strerror(r), call);
		return 0;
	}
#define WRONG(cond, what) do { \
	if ((cond) && o < sizeof(wrong)) \
		o += (size_t)snprintf(wrong + o, sizeof(wrong) - o, "%s%s", o > 0 ? ", " : "", what); \
} while (0)
	WRONG(!a.token, "CKA_TOKEN is not TRUE");
	WRONG(!a.private_, "CKA_PRIVATE is not TRUE");
	WRONG(!a.sensitive, "CKA_SENSITIVE is not TRUE");
	WRONG(a.extractable, "CKA_EXTRACTABLE is TRUE");
	WRONG(!a.always_sensitive, "CKA_ALWAYS_SENSITIVE is not TRUE");
	WRONG(!a.never_extractable, "CKA_NEVER_EXTRACTABLE is not TRUE");
	WRONG(a.value_readable, "the private key value can be read");
	WRONG(!a.sign, "CKA_SIGN is not TRUE");
#undef WRONG
	if (o > 0) {
		emit(run, name, FAIL, 1, NULL, "the token makes keys that could leave it: "
		    "enforce the key policy on the partition (docs/hsm-provisioning.md); do not "
		    "use this slot", "%s", wrong);
		return 0;
	}
	emit(run, name, PASS, 1, NULL, NULL, "CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, "
	    "CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SIGN TRUE; CKA_EXTRACTABLE "
	    "FALSE; the private value is not readable");
	return 1;
}

/* Signs with the token, verifies with OpenSSL.  1 if it passes. */
static int
check_sign(struct run *run, const struct tca_key_desc *kd, const unsigned char *id,
    EVP_PKEY *pub)
{
	unsigned char sig[MAX_SIG], bad[SIGN_MSG_LEN];
	char name[64], call[128], rvbuf[48];
	const char *rv;
	unsigned long long before;
	size_t sig_len = sizeof(sig);
	int r, good, forged;

	snprintf(name, sizeof(name), "%s/sign", kd->name);
	before = call_failures(run->tok);
	if ((r = tca_token_sign(run->tok, id, ID_LEN, kd->alg, run->msg, sizeof(run->msg),
	    sig, &sig_len)) != TCA_OK) {
		rv = failed_call(run, before, call, sizeof(call), rvbuf, sizeof(rvbuf));
		emit(run, name, FAIL, 1, rv, r == TCA_ERR_TOKEN_REFUSED ? "the token refuses "
		    "this signing mechanism with the key: check prefer_mechanisms in the "
		    "hsm-profile" : "the token failed while signing: check the HSM and the "
		    "vendor's logs", "signing failed: %s%s", tca_strerror(r), call);
		return 0;
	}
	good = verify(pub, kd, run->msg, sizeof(run->msg), sig, sig_len);
	/* and a signature must not verify for another message */
	memcpy(bad, run->msg, sizeof(bad));
	bad[0] ^= 0x01;
	forged = verify(pub, kd, bad, sizeof(bad), sig, sig_len);
	if (good != 1 || forged != 0) {
		emit(run, name, FAIL, 1, NULL, "the token's signatures do not match the public "
		    "key it returns: do not use this token; report it to the vendor",
		    "the %zu-byte %s signature %s", sig_len, run->sum->mechanism[kd->type],
		    good != 1 ? "does not verify with OpenSSL against the public key read back" :
		    "also verifies for a different message");
		return 0;
	}
	emit(run, name, PASS, 1, NULL, NULL, "%s signature (%zu bytes) over %zu bytes verified "
	    "by OpenSSL against the public key read back", run->sum->mechanism[kd->type],
	    sig_len, sizeof(run->msg));
	return 1;
}

/* Destroys every object with the key's id and counts what is left.
 * 1 if nothing is. */
static int
check_destroy(struct run *run, const struct tca_key_desc *kd, const unsigned char *id,
    const char *label, int generated)
{
	char name[64], hex[2 * ID_LEN + 1], hint[PATH_MAX + 256], call[128], rvbuf[48];
	const char *rv;
	unsigned long destroyed = 0, left = 0;
	unsigned long long before;
	int rd, rc;

	snprintf(name, sizeof(name), "%s/destroy", kd->name);
	tca_hex(id, ID_LEN, hex);
	before = call_failures(run->tok);
	rd = tca_token_destroy_key(run->tok, id, ID_LEN, &destroyed);
	rc = tca_token_count_objects(run->tok, id, ID_LEN, &left);
	/* what counts is that nothing is left, however the destroy went */
	if (rc == TCA_OK && left == 0) {
		if (generated)
			emit(run, name, PASS, 1, NULL, NULL, "%lu objects destroyed; no object with "
			    "the key's CKA_ID is left", destroyed);
		else
			emit(run, name, PASS, 1, NULL, NULL, "the failed generation left nothing "
			    "behind (%lu objects removed, none left)", destroyed);
		return 1;
	}
	rv = failed_call(run, before, call, sizeof(call), rvbuf, sizeof(rvbuf));
	snprintf(hint, sizeof(hint), "remove them with the vendor's tool, or: pkcs11-tool "
	    "--module %s --login --delete-object --type privkey --id %s (then --type pubkey); "
	    "ca-admin status lists the key as an orphan until then", run->cfg->module, hex);
	if (rc == TCA_OK)
		emit(run, name, FAIL, 1, rv, hint, "%lu objects with CKA_ID %s (CKA_LABEL %s) "
		    "could not be removed and stay on the token as orphans: %s%s", left, hex,
		    label, rd != TCA_OK ? tca_strerror(rd) : "destroyed, yet still found", call);
	else
		emit(run, name, FAIL, 1, rv, hint, "could not confirm the removal (%s%s): the key "
		    "pair with CKA_ID %s (CKA_LABEL %s) may stay on the token as an orphan",
		    tca_strerror(rc != TCA_OK ? rc : rd), call, hex, label);
	return 0;
}

static void
check_type(struct run *run, const struct tca_key_desc *kd)
{
	unsigned char id[ID_LEN];
	char name[64], label[sizeof(LABEL_PREFIX) + 2 * ID_RANDOM], rnd[2 * ID_RANDOM + 1];
	char call[128], rvbuf[48];
	const char *rv;
	EVP_PKEY *pub = NULL;
	unsigned long long before;
	double t0;
	int r, ok = 0;

	run->sum->checked |= 1u << kd->type;
	snprintf(run->rate_note[kd->type], sizeof(run->rate_note[0]),
	    "not measured: no key to sign with");
	snprintf(name, sizeof(name), "%s/generate", kd->name);
	if (stopped(run)) {
		emit(run, name, SKIP, 1, NULL, NULL, "interrupted");
		return;
	}
	memcpy(id, ID_PREFIX, ID_PREFIX_LEN);
	if (RAND_bytes(id + ID_PREFIX_LEN, ID_RANDOM) != 1) {
		tca_log_ossl_errors("hsm-check: RAND_bytes");
		emit(run, name, FAIL, 1, NULL, NULL, "no random bytes for a key id (OpenSSL)");
		return;
	}
	tca_hex(id + ID_PREFIX_LEN, ID_RANDOM, rnd);
	snprintf(label, sizeof(label), "%s%s", LABEL_PREFIX, rnd);

	before = call_failures(run->tok);
	t0 = now_s();
	r = tca_token_generate_key(run->tok, kd->type, id, ID_LEN, label, &pub);
	if (r != TCA_OK) {
		rv = failed_call(run, before, call, sizeof(call), rvbuf, sizeof(rvbuf));
		emit(run, name, FAIL, 1, rv, generate_hint(r), "generating the %s key pair in "
		    "the token failed: %s%s", kd->name, tca_strerror(r), call);
		snprintf(name, sizeof(name), "%s/attributes", kd->name);
		emit(run, name, SKIP, 1, NULL, NULL, "no key");
		snprintf(name, sizeof(name), "%s/sign", kd->name);
		emit(run, name, SKIP, 1, NULL, NULL, "no key");
		/* an id already taken is someone else's key: never destroy it */
		if (r != TCA_ERR_ALREADY_EXISTS)
			(void)check_destroy(run, kd, id, label, 0);
		return;
	}
	emit(run, name, PASS, 1, NULL, NULL, "key pair generated inside the token in %.2f s "
	    "(CKA_LABEL %s)", now_s() - t0, label);
	ok = check_attributes(run, kd, id);
	snprintf(name, sizeof(name), "%s/sign", kd->name);
	if (stopped(run))
		emit(run, name, SKIP, 1, NULL, NULL, "interrupted");
	else if (check_sign(run, kd, id, pub))
		measure_rate(run, kd, id);
	else
		ok = 0;
	if (stopped(run))
		ok = 0;
	EVP_PKEY_free(pub);
	/* always, whatever failed above or whether the run was stopped */
	if (check_destroy(run, kd, id, label, 1) && ok)
		run->sum->passed |= 1u << kd->type;
}

/* ------------------------------------------------------------ 6., 7. sessions, capacity */

/* A session count field: "not reported", "no limit" or the number. */
static const char *
fmt_count(CK_ULONG v, char *buf, size_t bufsz)
{
	if (v == CK_UNAVAILABLE_INFORMATION)
		return "not reported";
	if (v == CK_EFFECTIVELY_INFINITE)
		return "no limit";
	snprintf(buf, bufsz, "%lu", (unsigned long)v);
	return buf;
}

/* A memory pair: "F free of T bytes", or "not reported". */
static const char *
fmt_memory(CK_ULONG free_, CK_ULONG total, char *buf, size_t bufsz)
{
	char f[32], t[32];

	if (free_ == CK_UNAVAILABLE_INFORMATION && total == CK_UNAVAILABLE_INFORMATION)
		return "not reported";
	snprintf(f, sizeof(f), free_ == CK_UNAVAILABLE_INFORMATION ? "?" : "%lu",
	    (unsigned long)free_);
	snprintf(t, sizeof(t), total == CK_UNAVAILABLE_INFORMATION ? "?" : "%lu",
	    (unsigned long)total);
	snprintf(buf, bufsz, "%s free of %s bytes", f, t);
	return buf;
}

/* A count that may be CK_UNAVAILABLE_INFORMATION: "not reported" or the number. */
static const char *
fmt_num(CK_ULONG v, char *buf, size_t bufsz)
{
	if (v == CK_UNAVAILABLE_INFORMATION)
		return "not reported";
	snprintf(buf, bufsz, "%lu", (unsigned long)v);
	return buf;
}

/* Opens read/write sessions (the kind the engine's pool uses) until the
 * target or the token's refusal, all at once, then closes them. */
static void
check_sessions(struct run *run)
{
	CK_SESSION_HANDLE *h = NULL;
	CK_TOKEN_INFO ti;
	char hint[256], buf[32], rvbuf[48];
	const char *from, *maxrw;
	unsigned long want;
	unsigned int i, opened = 0;
	CK_RV crv = CKR_OK;

	if (stopped(run)) {
		emit(run, "sessions", SKIP, 1, NULL, NULL, "interrupted");
		return;
	}
	if (run->mod == NULL || !run->have_slot) {
		emit(run, "sessions", SKIP, 1, NULL, NULL, "not tried: the token was not opened");
		return;
	}
	if (run->p->sessions != 0) {
		want = run->p->sessions;
		from = "--sessions";
	} else if (run->cfg->quirks.max_sessions != 0) {
		want = run->cfg->quirks.max_sessions;
		from = "the profile's max_sessions";
	} else {
		want = TCA_HSM_CHECK_SESSIONS;
		from = "default";
	}
	if (want > TCA_HSM_CHECK_MAX_SESSIONS)
		want = TCA_HSM_CHECK_MAX_SESSIONS;
	if ((h = calloc(want, sizeof(*h))) == NULL) {
		emit(run, "sessions", FAIL, 1, NULL, NULL, "out of memory");
		return;
	}
	for (i = 0; i < want; i++) {
		/* quiet: the token's refusal is the answer we are looking for */
		crv = P11_CALL_QUIET(run->mod, C_OpenSession, run->slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h[i]);
		if (crv != CKR_OK)
			break;
		opened++;
	}
	for (i = 0; i < opened; i++)
		(void)P11_CALL_QUIET(run->mod, C_CloseSession, h[i]);
	free(h);
	memset(&ti, 0, sizeof(ti));
	if (P11_CALL(run->mod, C_GetTokenInfo, run->slot, &ti) != CKR_OK)
		ti.ulMaxRwSessionCount = CK_UNAVAILABLE_INFORMATION;
	maxrw = fmt_count(ti.ulMaxRwSessionCount, buf, sizeof(buf));
	if (opened == want) {
		emit(run, "sessions", PASS, 1, NULL, NULL, "%u read/write sessions open at once "
		    "(asked for %lu: %s; the token reports at most: %s)", opened, want, from,
		    maxrw);
		return;
	}
	snprintf(rvbuf, sizeof(rvbuf), "%s", tca_p11_rv_name(crv));
	if (opened == 0)
		snprintf(hint, sizeof(hint), "the token opens no session at all: check the "
		    "HSM, its daemon or connection, and the vendor's logs");
	else if (run->cfg->quirks.max_sessions != 0)
		snprintf(hint, sizeof(hint), "lower max_sessions in the hsm-profile to %u "
		    "(token.pool_size is capped to it)", opened);
	else
		snprintf(hint, sizeof(hint), "set max_sessions = %u in the hsm-profile "
		    "(token.pool_size is capped to it), or a smaller token.pool_size", opened);
	emit(run, "sessions", FAIL, 1, rvbuf, hint, "the token allowed %u of %lu read/write "
	    "sessions at once (asked for %lu: %s; the token reports at most: %s)", opened,
	    want, want, from, maxrw);
}

static void
check_capacity(struct run *run)
{
	CK_TOKEN_INFO ti;
	char a[32], b[32], c[32], d[32], pub[96], priv[96], pins[128] = "";
	CK_RV crv;

	if (stopped(run)) {
		emit(run, "capacity", SKIP, 0, NULL, NULL, "interrupted");
		return;
	}
	if (run->mod == NULL || !run->have_slot) {
		emit(run, "capacity", SKIP, 0, NULL, NULL, "not tried: the token was not opened");
		return;
	}
	memset(&ti, 0, sizeof(ti));
	if ((crv = P11_CALL(run->mod, C_GetTokenInfo, run->slot, &ti)) != CKR_OK) {
		emit(run, "capacity", FAIL, 0, tca_p11_rv_name(crv), NULL, "C_GetTokenInfo failed");
		return;
	}
	/* the profile's PIN bounds should be the token's */
	if (ti.ulMinPinLen != CK_UNAVAILABLE_INFORMATION &&
	    ti.ulMaxPinLen != CK_UNAVAILABLE_INFORMATION &&
	    (run->cfg->pin_min != ti.ulMinPinLen || run->cfg->pin_max != ti.ulMaxPinLen))
		snprintf(pins, sizeof(pins), "; PIN length %lu..%lu (the profile says %u..%u)",
		    (unsigned long)ti.ulMinPinLen, (unsigned long)ti.ulMaxPinLen,
		    run->cfg->pin_min, run->cfg->pin_max);
	emit(run, "capacity", PASS, 0, NULL, NULL, "session limit: %s (read/write: %s); "
	    "sessions open: %s (read/write: %s); public memory: %s; private memory: %s%s; "
	    "each tenant CA takes two objects", fmt_count(ti.ulMaxSessionCount, a, sizeof(a)),
	    fmt_count(ti.ulMaxRwSessionCount, b, sizeof(b)),
	    fmt_num(ti.ulSessionCount, c, sizeof(c)), fmt_num(ti.ulRwSessionCount, d, sizeof(d)),
	    fmt_memory(ti.ulFreePublicMemory, ti.ulTotalPublicMemory, pub, sizeof(pub)),
	    fmt_memory(ti.ulFreePrivateMemory, ti.ulTotalPrivateMemory, priv, sizeof(priv)),
	    pins);
}

/* ------------------------------------------------------------ 8. rates */

static void
report_rates(struct run *run)
{
	const struct tca_key_desc *kd;
	char name[64];
	size_t i;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (!(run->sum->checked & (1u << kd->type)))
			continue;
		snprintf(name, sizeof(name), "%s/rate", kd->name);
		if (run->sum->signatures_per_s[kd->type] < 0)
			emit(run, name, SKIP, 0, NULL, NULL, "%s", run->rate_note[kd->type]);
		else
			emit(run, name, PASS, 0, NULL, NULL, "%.0f signatures/s (%lu in %.2f s, "
			    "one thread, %s)", run->sum->signatures_per_s[kd->type],
			    run->rate_count[kd->type], run->rate_secs[kd->type],
			    run->sum->mechanism[kd->type]);
	}
}

/* ------------------------------------------------------------ the run */

int
tca_hsm_check_run(const struct tca_hsm_check_params *p, tca_hsm_check_cb cb, void *ctx,
    struct tca_hsm_check_summary *sum, char *err, size_t errlen)
{
	const struct tca_key_desc *kd;
	struct run run;
	char why[256];
	unsigned int bit, all = 0;
	size_t i;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (p == NULL || sum == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(sum, 0, sizeof(*sum));
	for (i = 0; i <= TCA_KEY_TYPE_COUNT; i++)
		sum->signatures_per_s[i] = -1;
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++)
		all |= 1u << kd->type;
	if ((p->key_types & ~all) != 0) {
		tca_setf(err, errlen, "unknown key type in the list");
		return TCA_ERR_INVALID_ARG;
	}
	memset(&run, 0, sizeof(run));
	run.p = p;
	run.cb = cb;
	run.ctx = ctx;
	run.sum = sum;
	if ((run.cfg = calloc(1, sizeof(*run.cfg))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	if ((r = load_config(p, run.cfg, err, errlen)) != TCA_OK)
		goto out;
	/* a profile without a name is shown by its path, truncated if it must */
	tca_setf(sum->profile, sizeof(sum->profile), "%s", run.cfg->profile_name[0] != '\0' ?
	    run.cfg->profile_name : p->profile != NULL ? p->profile : run.cfg->profile);
	snprintf(sum->module, sizeof(sum->module), "%s", run.cfg->module);
	if (RAND_bytes(run.msg, sizeof(run.msg)) != 1) {
		tca_log_ossl_errors("hsm-check: RAND_bytes");
		tca_setf(err, errlen, "OpenSSL has no random bytes");
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	read_pin(&run);
	/* the module reads its environment when it is loaded */
	tca_profile_apply_env(run.cfg);

	/* 1.-3. */
	if (check_module(&run) == 0)
		check_token(&run);
	else {
		emit(&run, "token", SKIP, 1, NULL, NULL, "not tried: the module did not load");
		emit(&run, "login", SKIP, 1, NULL, NULL, "not tried: the module did not load");
	}
	/* the PIN was tried or is unusable: wipe it now, whatever happened */
	tca_secret_free(run.pin, run.pin_len);
	run.pin = NULL;
	run.pin_len = 0;

	/* 4., 5. */
	if (run.tok != NULL)
		check_mechanisms(&run);
	else
		emit(&run, "mechanisms", SKIP, 1, NULL, NULL, "not tried: the token was not opened");
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		const char *hint = NULL;
		char name[64];

		bit = 1u << kd->type;
		snprintf(name, sizeof(name), "%s/generate", kd->name);
		if (run.tok == NULL) {
			if (p->key_types & bit)
				emit(&run, name, SKIP, 1, NULL, NULL, "not tried: the token was not "
				    "opened");
			continue;
		}
		if (p->key_types != 0 && !(p->key_types & bit))
			continue;
		if (!(sum->key_types & bit)) {
			why_not_offered(&run, kd, why, sizeof(why), &hint);
			/* asked for by name: the token is unfit for this deployment */
			if (p->key_types & bit)
				emit(&run, name, FAIL, 1, NULL, hint, "%s", why);
			else
				emit(&run, name, SKIP, 0, NULL, NULL, "%s", why);
			continue;
		}
		check_type(&run, kd);
	}

	/* 6., 7.: on our own handle; the token's sessions are closed first so
	 * that only ours count */
	tca_token_close(run.tok);
	run.tok = NULL;
	check_sessions(&run);
	check_capacity(&run);

	/* 8. measured while each key existed (one key pair per type and run:
	 * RSA-3072 generation is slow), reported here */
	report_rates(&run);
	sum->ok = sum->required_failed == 0;
	r = TCA_OK;
 out:
	tca_token_close(run.tok);
	tca_p11_unload(run.mod);
	tca_secret_free(run.pin, run.pin_len);
	free(run.cfg);
	return r;
}
