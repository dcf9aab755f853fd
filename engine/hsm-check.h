/*
 * hsm-check.h - is this PKCS#11 slot fit for the engine?  (ca-admin hsm-check)
 *
 * Runs, against an already provisioned token, the checks a security team
 * wants answered before the engine is pointed at a new HSM, in this order:
 *
 *   module       the module loads and C_Initialize accepts the init arguments
 *   token        exactly one token matches the URI
 *   login        the user PIN is accepted (tried once, never retried)
 *   mechanisms   the key types the token can generate and sign with
 *   TYPE/generate, TYPE/attributes, TYPE/sign, TYPE/destroy
 *                per key type: a throwaway key pair generated in the token,
 *                its security attributes read back, a signature made and
 *                verified with OpenSSL, the key destroyed and 0 objects left
 *   sessions     how many read/write sessions the token allows at once
 *   capacity     session and memory limits, where the token reports them
 *   TYPE/rate    signatures per second, one thread (informational)
 *
 * The logic lives here so that ca-admin only parses arguments and prints.
 * Every key a run makes is destroyed again, also when a check fails or the
 * run is stopped; a key that could not be removed is reported as an orphan
 * in the TYPE/destroy result.  The PIN is read from its file (or the
 * configuration's token.pin_env), passed to the token once, wiped, and never
 * logged or reported.
 */
#ifndef TCA_HSM_CHECK_H
#define TCA_HSM_CHECK_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>

#include "keytype.h"

#define TCA_HSM_CHECK_SESSIONS	16	/* sessions tried without profile or --sessions */
#define TCA_HSM_CHECK_RATE_MS	2000	/* signing time per key type (ca-admin default) */
#define TCA_HSM_CHECK_MAX_SESSIONS 1024	/* most sessions a run opens */

struct tca_hsm_check_params {
	/* the engine configuration (token.uri, token.pin_file or token.pin_env,
	 * token.profile, token.module, token.init_args), or NULL */
	const char *config_path;
	/* hsm-profile name or path (tca_profile_path); with config_path it must
	 * name the configuration's profile, or be NULL */
	const char *profile;
	const char *profiles_dir;	/* for a profile name; NULL: the default */
	/* overrides of the configuration and profile; NULL = not given.
	 * Without config_path, uri and pin_file are required. */
	const char *module, *init_args, *uri, *pin_file;
	/* bit (1 << type) per key type to check; 0: every type the token offers.
	 * A type asked for that the token cannot make fails its check. */
	unsigned int key_types;
	/* sessions to open at once, at most TCA_HSM_CHECK_MAX_SESSIONS; 0: the
	 * profile's max_sessions (capped likewise), else TCA_HSM_CHECK_SESSIONS */
	unsigned int sessions;
	/* signing time per key type for the rate; 0: not measured */
	unsigned int rate_ms;
	/* set (by a signal handler) to stop early: remaining checks are
	 * skipped, keys already made are still destroyed.  May be NULL. */
	const volatile sig_atomic_t *stop;
};

enum tca_hsm_check_status {
	TCA_HSM_PASS = 0,
	TCA_HSM_FAIL = 1,
	TCA_HSM_SKIP = 2,
};

/* One result.  The strings belong to the run and are valid only during the
 * callback; copy what you keep. */
struct tca_hsm_check_result {
	const char *name;	/* "module", "ec-p256/sign", ... */
	enum tca_hsm_check_status status;
	const char *rv;		/* the PKCS#11 return value's name ("CKR_PIN_INCORRECT"),
				 * or NULL where none is involved */
	const char *detail;	/* what was found; never NULL */
	const char *hint;	/* what to change (profile key, package, daemon, PIN,
				 * ...); NULL if there is nothing to change */
	int required;		/* the token is unfit for the engine unless this passes */
};

typedef void (*tca_hsm_check_cb)(void *ctx, const struct tca_hsm_check_result *res);

/* What a run found, for the report around the results. */
struct tca_hsm_check_summary {
	char profile[64];		/* the profile's name (or path if it has none) */
	char module[PATH_MAX];
	char label[33], manufacturer[33], model[17], serial[17];	/* "" if unknown */
	unsigned int key_types;		/* bit (1 << type): the token offers it */
	unsigned int checked;		/* bit (1 << type): checked, whatever the result */
	unsigned int passed;		/* bit (1 << type): every check of the type passed */
	char mechanism[TCA_KEY_TYPE_COUNT + 1][32];	/* sign mechanism by type
							 * ("CKM_ECDSA"); "" if not offered */
	double signatures_per_s[TCA_KEY_TYPE_COUNT + 1];	/* < 0: not measured */
	unsigned int results, required_failed;	/* required_failed counts FAIL and SKIP */
	int ok;				/* every required check passed */
};

/*
 * Runs the checks, calling report(ctx, result) once per result in the order
 * above, and fills *sum.  Returns TCA_OK when the checks ran, whatever they
 * found (sum->ok says that); TCA_ERR_CONFIG with a one-line reason in err
 * when they could not start (configuration or profile unreadable or
 * inconsistent, no URI or PIN source) - no result is reported then;
 * TCA_ERR_NOMEM or TCA_ERR_INVALID_ARG.
 * Loads the PKCS#11 module into this process: not for use inside the engine.
 */
int tca_hsm_check_run(const struct tca_hsm_check_params *params, tca_hsm_check_cb report,
    void *ctx, struct tca_hsm_check_summary *sum, char *err, size_t errlen);

/* "PASS", "FAIL", "SKIP". */
const char *tca_hsm_check_status_name(enum tca_hsm_check_status st);

#endif
