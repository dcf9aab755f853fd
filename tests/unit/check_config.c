/*
 * check_config.c - configuration and hsm-profile parsing.
 *
 * /config/defaults, /config/full, /config/errors/..., /config/profile,
 * /config/store (store.uri / store.path),
 * /config/profile_lookup (sysconfdir overrides datadir), /config/watchdog
 * /config/buffer: tca_config_parse_buffer (the fuzz target's entry point)
 * gives the file parser's result and message for the same bytes
 * /fileperm/...: owner and mode of the paths the engine trusts (fileperm.h),
 * in temp dirs under /tmp (sticky, root-owned: the case the checks must
 * accept); the foreign-owner cases chown to nobody and run only as root.
 */
#include "config.h"

#include <check.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fileperm.h"
#include "tca-error.h"
#include "testutil.h"

static char dir[PATH_MAX];
static char profile[PATH_MAX + 32];

static void
setup(void)
{
	static const char prof[] =
	    "# test profile\nname = testhsm\nmodule = /usr/lib/test.so\n"
	    "max_sessions = 16\nno_ed25519 = true\n";

	test_mkdtemp(dir, sizeof(dir));
	snprintf(profile, sizeof(profile), "%s/testhsm.conf", dir);
	ck_assert_int_eq(test_write_file(profile, prof, strlen(prof), 0644), 0);
}

static void
teardown(void)
{
	test_sh("rm -rf '%s'", dir);
}

/* loads text as a config file; returns tca_config_load's result */
static int
load(const char *text, struct tca_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], body[8192];

	snprintf(path, sizeof(path), "%s/engine.conf", dir);
	snprintf(body, sizeof(body), "token.profiles_dir = %s\ntoken.profile = testhsm\n%s", dir, text);
	ck_assert_int_eq(test_write_file(path, body, strlen(body), 0600), 0);
	err[0] = '\0';
	return tca_config_load(path, cfg, err, errlen);
}

/* /config/defaults */
START_TEST(test_defaults)
{
	struct tca_config cfg;

	tca_config_defaults(&cfg);
	ck_assert_uint_eq(cfg.max_frame, 65536);
	ck_assert_uint_eq(cfg.ca_validity_days, 1095);
	ck_assert_uint_eq(cfg.device_validity_days, 365);
	ck_assert_str_eq(cfg.ca_organization, "Cumulocity");
	ck_assert_str_eq(cfg.ca_country, "US");
	ck_assert_int_eq(cfg.ca_default_key_type, TCA_KEY_EC_P256);
	ck_assert_uint_eq(cfg.socket_mode, 0660);
	ck_assert(tca_id_list_contains(&cfg.admin_uids, 0));
	ck_assert_int_eq(cfg.schedule_enabled, 1);
	ck_assert_int_eq(cfg.schedule.month, 10);
	ck_assert_int_eq(cfg.schedule.day, 2);
	ck_assert_int_eq(cfg.schedule.hour, 2);
	ck_assert_str_eq(cfg.schedule.tz, "UTC");
	ck_assert_int_eq(cfg.reissue_serial, TCA_SERIAL_NEW);
	ck_assert_uint_eq(cfg.reissue_workers, 2);
	ck_assert_uint_eq(cfg.reissue_rate, 250);
}
END_TEST

/* /config/full: every key, and the profile's module and quirks */
START_TEST(test_full)
{
	struct tca_config cfg;
	char err[512];

	ck_assert_msg(load(
	    "socket.path = /tmp/x.sock\nsocket.mode = 0600\nsocket.group = 0\n"
	    "rpc.max_frame = 131072\nrpc.frame_timeout_ms = 500\nrpc.idle_timeout_ms = 1000\n"
	    "rpc.max_connections = 64\n"
	    "roles.frontend_uids = 1001, 1002\nroles.frontend_gids = 50\n"
	    "roles.admin_uids = 0\nroles.admin_gids =\n"
	    "token.uri = pkcs11:token=prod\ntoken.pin_file = /etc/tca/pin\n"
	    "token.pool_size = 8\nstore.path = /var/lib/tca/s.db\nstore.group_commit_max = 32\n"
	    "ca.organization = Example Corp\nca.country = DE\nca.validity_days = 730\n"
	    "ca.default_key_type = ec-p384\ndevice.validity_days = 90\n"
	    "log.level = debug\nlog.syslog = true\n"
	    "schedule.enabled = false\nschedule.at = 10-02T03:30\nschedule.tz = Europe/Berlin\n"
	    "reissue.serial = keep\nreissue.retry_min_s = 30\nreissue.retry_max_s = 900\n"
	    "reissue.workers = 8\nreissue.rate = 0\n"
	    "alert.command = /usr/local/bin/tca-alert\nalert.expiry_window_days = 45\n"
	    "alert.timeout_s = 10\n"
	    "journal.checkpoint_interval_s = 300\n"
	    "journal.checkpoint_command = /usr/local/bin/tca-publish-checkpoint\n",
	    &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_uint_eq(cfg.checkpoint_interval_s, 300);
	ck_assert_str_eq(cfg.checkpoint_command, "/usr/local/bin/tca-publish-checkpoint");
	ck_assert_int_eq(cfg.schedule_enabled, 0);
	ck_assert_int_eq(cfg.schedule.month, 10);
	ck_assert_int_eq(cfg.schedule.day, 2);
	ck_assert_int_eq(cfg.schedule.hour, 3);
	ck_assert_int_eq(cfg.schedule.minute, 30);
	ck_assert_str_eq(cfg.schedule.tz, "Europe/Berlin");
	ck_assert_int_eq(cfg.reissue_serial, TCA_SERIAL_KEEP);
	ck_assert_uint_eq(cfg.retry_min_s, 30);
	ck_assert_uint_eq(cfg.retry_max_s, 900);
	ck_assert_uint_eq(cfg.reissue_workers, 8);
	ck_assert_uint_eq(cfg.reissue_rate, 0);
	ck_assert_str_eq(cfg.alert_command, "/usr/local/bin/tca-alert");
	ck_assert_uint_eq(cfg.alert_expiry_window_days, 45);
	ck_assert_str_eq(cfg.socket_path, "/tmp/x.sock");
	ck_assert_uint_eq(cfg.socket_mode, 0600);
	ck_assert_int_eq(cfg.socket_gid, 0);
	ck_assert_uint_eq(cfg.max_frame, 131072);
	ck_assert_uint_eq(cfg.frontend_uids.n, 2);
	ck_assert_uint_eq(cfg.frontend_uids.ids[1], 1002);
	ck_assert_uint_eq(cfg.admin_gids.n, 0);
	ck_assert_str_eq(cfg.token_uri, "pkcs11:token=prod");
	ck_assert_uint_eq(cfg.pool_size, 8);
	ck_assert_str_eq(cfg.ca_organization, "Example Corp");
	ck_assert_str_eq(cfg.ca_country, "DE");
	ck_assert_int_eq(cfg.ca_default_key_type, TCA_KEY_EC_P384);
	ck_assert_uint_eq(cfg.device_validity_days, 90);
	ck_assert_int_eq(cfg.log_syslog, 1);
	ck_assert_str_eq(cfg.module, "/usr/lib/test.so");
	ck_assert_str_eq(cfg.profile_name, "testhsm");
	ck_assert_uint_eq(cfg.quirks.max_sessions, 16);
	ck_assert_int_eq(cfg.quirks.no_ed25519, 1);
}
END_TEST

/* /config/errors: each bad input names file, line and key */
START_TEST(test_errors)
{
	static const struct {
		const char *text;
		const char *expect;
	} bad[] = {
		{ "token.uri = x\ntoken.pin_file = /p\nbogus.key = 1\n", "unknown key" },
		{ "token.uri = x\ntoken.pin_file = /p\nsocket.mode = 0666\n", "others" },
		{ "token.uri = x\ntoken.pin_file = /p\nca.country = United States\n", "two-letter" },
		{ "token.uri = x\ntoken.pin_file = /p\nrpc.max_frame = 10\n", "between" },
		{ "token.uri = x\ntoken.pin_file = /p\ntoken.pool_size = -1\n", "number" },
		{ "token.uri = x\ntoken.pin_file = /p\ntoken.pool_size = 4x\n", "number" },
		{ "token.uri = x\ntoken.pin_file = /p\nlog.level = loud\n", "expected" },
		{ "token.uri = x\ntoken.pin_file = /p\nno equals sign\n", "key = value" },
		{ "token.uri = x\ntoken.pin_file = /p\ntoken.uri = y\n", "twice" },
		{ "token.pin_file = /p\n", "token.uri is required" },
		{ "token.uri = x\n", "exactly one" },
		{ "token.uri = x\ntoken.pin_file = /p\ntoken.pin_env = PIN\n", "exactly one" },
		{ "token.uri = x\ntoken.pin_file = /p\nca.default_key_type = dsa\n", "ec-p256" },
		{ "token.uri = x\ntoken.pin_file = /p\nroles.admin_uids = root\n", "numeric" },
		{ "token.uri = x\ntoken.pin_file = /p\nschedule.tz = Mars/Olympus\n", "zoneinfo" },
		{ "token.uri = x\ntoken.pin_file = /p\nschedule.at = 10-31T02:00\n", "out of range" },
		{ "token.uri = x\ntoken.pin_file = /p\nschedule.at = 2 October\n", "MM-DD" },
		{ "token.uri = x\ntoken.pin_file = /p\nreissue.serial = reuse\n", "new or keep" },
		{ "token.uri = x\ntoken.pin_file = /p\nalert.command = mail-me\n", "absolute" },
		{ "token.uri = x\ntoken.pin_file = /p\nreissue.retry_min_s = 100\nreissue.retry_max_s = 10\n", "below" },
		{ "token.uri = x\ntoken.pin_file = /p\nreissue.workers = 0\n", "between 1 and 16" },
		{ "token.uri = x\ntoken.pin_file = /p\nreissue.workers = 17\n", "between 1 and 16" },
		{ "token.uri = x\ntoken.pin_file = /p\nreissue.rate = -1\n", "number" },
	};
	struct tca_config cfg;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(load(bad[i].text, &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
		ck_assert_msg(strstr(err, bad[i].expect) != NULL, "case %zu: \"%s\" lacks \"%s\"",
		    i, err, bad[i].expect);
	}
	/* line numbers: the bad key is on line 5 (two lines are prepended) */
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\nbogus = 1\n", &cfg, err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, ":5:") != NULL, "%s", err);
}
END_TEST

/* /config/buffer: the buffer entry point agrees with the file parser on
 * every error case above, on a valid file, and on bytes a file may hold (a
 * NUL inside a line, no final newline, a line too long, nothing at all) */
START_TEST(test_buffer)
{
	static const char *const texts[] = {
		"token.uri = x\ntoken.pin_file = /p\nbogus.key = 1\n",
		"token.uri = x\ntoken.pin_file = /p\nsocket.mode = 0666\n",
		"token.uri = x\ntoken.pin_file = /p\ntoken.uri = y\n",
		"token.pin_file = /p\n",
		"token.uri = x\n",
		"token.uri = x\ntoken.pin_file = /p\nreissue.retry_min_s = 100\nreissue.retry_max_s = 10\n",
		"token.uri = x\ntoken.pin_file = /p\nalert.command = mail-me\n",
		"token.uri = x\ntoken.pin_file = /p\nno equals sign\n",
		"# comment\n\n  token.uri = pkcs11:token=a  \r\ntoken.pin_env = PIN\nlog.level = debug",
		"token.uri = x\ntoken.pin_env = PIN\nsocket.path = /tmp/a\0.sock\n",
		"",
	};
	struct tca_config fcfg, bcfg;
	char path[PATH_MAX + 32], ferr[512], berr[512], expect[600], *big;
	size_t i, len;
	int fr, br;

	snprintf(path, sizeof(path), "%s/buffer.conf", dir);
	for (i = 0; i <= sizeof(texts) / sizeof(texts[0]); i++) {
		const char *t;

		if (i < sizeof(texts) / sizeof(texts[0])) {
			t = texts[i];
			/* the NUL case: the file holds the bytes after it too */
			len = strlen(t) + (strstr(t, "/tmp/a") != NULL ? strlen(t + strlen(t) + 1) + 1 : 0);
			big = NULL;
		} else {
			/* a line longer than the parser's 4096 bytes */
			ck_assert_ptr_nonnull(big = malloc(9000));
			memset(big, 'a', 8999);
			big[8999] = '\0';
			t = big;
			len = 8999;
		}
		ck_assert_int_eq(test_write_file(path, t, len, 0600), 0);
		ferr[0] = berr[0] = '\0';
		/* the file path loads the profile too; compare before it: a missing
		 * profile is the only message the buffer cannot give */
		fr = tca_config_load(path, &fcfg, ferr, sizeof(ferr));
		br = tca_config_parse_buffer(path, t, len, &bcfg, berr, sizeof(berr));
		if (fr != TCA_OK && strstr(ferr, "testhsm") == NULL && strstr(ferr, "profile") == NULL &&
		    strstr(ferr, "softhsm2") == NULL) {
			ck_assert_msg(br == fr, "case %zu: buffer %d, file %d (%s)", i, br, fr, ferr);
			ck_assert_str_eq(berr, ferr);
		} else {
			ck_assert_msg(br == TCA_OK, "case %zu: %s", i, berr);
			ck_assert_str_eq(bcfg.token_uri, fcfg.token_uri);
			ck_assert_str_eq(bcfg.socket_path, fcfg.socket_path);
			ck_assert_int_eq(bcfg.log_level, fcfg.log_level);
		}
		free(big);
	}
	/* the NUL ends the value, as in the file */
	ck_assert_int_eq(tca_config_parse_buffer("b.conf", texts[9], strlen(texts[9]) + 7,
	    &bcfg, berr, sizeof(berr)), TCA_OK);
	ck_assert_str_eq(bcfg.socket_path, "/tmp/a");
	/* messages name the buffer as they would the file */
	snprintf(expect, sizeof(expect), "b.conf:3: bogus.key: unknown key");
	ck_assert_int_eq(tca_config_parse_buffer("b.conf", texts[0], strlen(texts[0]), &bcfg, berr,
	    sizeof(berr)), TCA_ERR_CONFIG);
	ck_assert_str_eq(berr, expect);
}
END_TEST

/* /config/profile-missing */
START_TEST(test_profile_missing)
{
	struct tca_config cfg;
	char err[512], path[PATH_MAX + 32];
	static const char body[] = "token.profile = nosuch\ntoken.uri = x\ntoken.pin_file = /p\n";

	snprintf(path, sizeof(path), "%s/engine2.conf", dir);
	ck_assert_int_eq(test_write_file(path, body, strlen(body), 0600), 0);
	ck_assert_int_eq(tca_config_load(path, &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "nosuch.conf") != NULL, "%s", err);
}
END_TEST

/* /config/shipped-profile: every profile in hsm-profiles/ parses, names a
 * module by absolute path, and the softhsm2 one is what the tests use */
START_TEST(test_shipped_profile)
{
	static const char *const names[] = {
		"softhsm2", "opencryptoki-sw", "tpm2-pkcs11", "nss-softokn", "thales-luna7",
		"entrust-nshield", "utimaco-cs", "yubihsm2", "aws-cloudhsm",
	};
	struct tca_config cfg;
	char err[512], path[PATH_MAX];
	const char *src = getenv("TCA_SRCDIR");
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/hsm-profiles/%s.conf", src != NULL ? src : ".",
		    names[i]);
		tca_config_defaults(&cfg);
		ck_assert_msg(tca_profile_load(path, &cfg, err, sizeof(err)) == TCA_OK, "%s: %s",
		    names[i], err);
		ck_assert_str_eq(cfg.profile_name, names[i]);
		ck_assert_msg(cfg.module[0] == '/', "%s: module %s", names[i], cfg.module);
	}
	snprintf(path, sizeof(path), "%s/hsm-profiles/softhsm2.conf", src != NULL ? src : ".");
	tca_config_defaults(&cfg);
	ck_assert_msg(tca_profile_load(path, &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_ptr_nonnull(strstr(cfg.module, "softhsm2"));
	ck_assert_uint_eq(cfg.pin_min, 4);
}
END_TEST

/* loads prof as the profile testhsm; returns tca_profile_load's result */
static int
load_profile(const char *prof, struct tca_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/p.conf", dir);
	ck_assert_int_eq(test_write_file(path, prof, strlen(prof), 0644), 0);
	tca_config_defaults(cfg);
	err[0] = '\0';
	return tca_profile_load(path, cfg, err, errlen);
}

/* /config/profile/real-hsm-keys: init arguments, environment, PIN bounds,
 * template omissions (never of a security attribute), mechanisms, recovery */
START_TEST(test_profile_hsm_keys)
{
	static const struct {
		const char *text;
		const char *expect;
	} bad[] = {
		{ "module = /m.so\nomit_private = CKA_SENSITIVE\n", "CKA_SENSITIVE cannot be omitted" },
		{ "module = /m.so\nomit_private = CKA_DECRYPT, CKA_EXTRACTABLE\n",
		    "CKA_EXTRACTABLE cannot be omitted" },
		{ "module = /m.so\nomit_public = CKA_TOKEN\n", "CKA_TOKEN cannot be omitted" },
		{ "module = /m.so\nomit_public = CKA_DECRYPT\n", "only CKA_VERIFY" },
		{ "module = /m.so\nenv.1X = y\n", "environment variable name" },
		{ "module = /m.so\nenv.A-B = y\n", "environment variable name" },
		{ "module = /m.so\nenv.A = 1\nenv.A = 2\n", "twice" },
		{ "module = /m.so\ninit_so_pin = maybe\n", "given or current" },
		{ "module = /m.so\nrecovery = pray\n", "reopen-sessions or reinit" },
		{ "module = /m.so\npin_max = 100000\n", "between" },
		{ "module = /m.so\nidle_timeout_s = -3\n", "number" },
		{ "module = /m.so\ncall_timeout_ms = 50\n", "at least 100" },
	};
	struct tca_config cfg;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(load_profile(bad[i].text, &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
		ck_assert_msg(strstr(err, bad[i].expect) != NULL, "case %zu: \"%s\" lacks \"%s\"",
		    i, err, bad[i].expect);
	}
	ck_assert_msg(load_profile("name = tpm\nmodule = /m.so\n"
	    "init_args = configdir='sql:/x' certPrefix=''\n"
	    "env.TPM2_PKCS11_TCTI = tabrmd:bus_type=session\nenv.TCA_TEST_ENV_B = b\n"
	    "pin_min = 4\npin_max = 8\nomit_public = CKA_VERIFY\n"
	    "omit_private = CKA_DECRYPT ,CKA_DERIVE\nprefer_mechanisms = CKM_ECDSA_SHA256\n"
	    "init_so_pin = current\nidle_timeout_s = 30\nrecovery = reinit\n"
	    "call_timeout_ms = 2500\n"
	    "ec_point_raw = true\n", &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.init_args, "configdir='sql:/x' certPrefix=''");
	ck_assert_uint_eq(cfg.n_env, 2);
	ck_assert_str_eq(cfg.env[0].name, "TPM2_PKCS11_TCTI");
	ck_assert_str_eq(cfg.env[0].value, "tabrmd:bus_type=session");
	ck_assert_uint_eq(cfg.pin_min, 4);
	ck_assert_uint_eq(cfg.pin_max, 8);
	ck_assert_int_eq(cfg.quirks.omit_verify, 1);
	ck_assert_int_eq(cfg.quirks.omit_decrypt, 1);
	ck_assert_int_eq(cfg.quirks.omit_unwrap, 0);
	ck_assert_int_eq(cfg.quirks.omit_derive, 1);
	ck_assert_str_eq(cfg.quirks.prefer_mechanisms, "CKM_ECDSA_SHA256");
	ck_assert_int_eq(cfg.init_so_pin_current, 1);
	ck_assert_uint_eq(cfg.quirks.idle_timeout_ms, 30000);
	ck_assert_int_eq(cfg.quirks.reinit_on_session_loss, 1);
	ck_assert_uint_eq(cfg.call_timeout_ms, 2500);
	/* PIN bounds */
	ck_assert_int_eq(tca_profile_check_pin(&cfg, 8, "the PIN", err, sizeof(err)), TCA_OK);
	ck_assert_int_eq(tca_profile_check_pin(&cfg, 32, "the PIN", err, sizeof(err)),
	    TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "4..8") != NULL, "%s", err);
	ck_assert_int_eq(tca_profile_check_pin(&cfg, 3, "the SO PIN", err, sizeof(err)),
	    TCA_ERR_CONFIG);
	/* environment: the profile's value, unless the environment has one */
	unsetenv("TCA_TEST_ENV_B");
	setenv("TPM2_PKCS11_TCTI", "from-the-service-manager", 1);
	tca_profile_apply_env(&cfg);
	ck_assert_str_eq(getenv("TPM2_PKCS11_TCTI"), "from-the-service-manager");
	ck_assert_str_eq(getenv("TCA_TEST_ENV_B"), "b");
	unsetenv("TPM2_PKCS11_TCTI");
	unsetenv("TCA_TEST_ENV_B");
}
END_TEST

/* /config/token-init-args: the engine's token.init_args wins over the profile's */
START_TEST(test_init_args_override)
{
	static const char prof[] = "name = nss\nmodule = /usr/lib/nss.so\n"
	    "init_args = configdir='sql:/profile/placeholder'\n";
	static const char netprof[] = "name = net\nmodule = /usr/lib/net.so\n"
	    "call_timeout_ms = 10000\n";
	struct tca_config cfg;
	char err[512];

	ck_assert_int_eq(test_write_file(profile, prof, strlen(prof), 0644), 0);
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n", &cfg, err, sizeof(err)) == TCA_OK,
	    "%s", err);
	ck_assert_str_eq(cfg.init_args, "configdir='sql:/profile/placeholder'");
	ck_assert_uint_eq(cfg.recovery_wait_ms, 5000);
	ck_assert_uint_eq(cfg.call_timeout_ms, 0);
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n"
	    "token.init_args = configdir='sql:/var/lib/tca/nssdb'\n"
	    "token.recovery_wait_ms = 250\n", &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.init_args, "configdir='sql:/var/lib/tca/nssdb'");
	ck_assert_uint_eq(cfg.recovery_wait_ms, 250);
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\ntoken.recovery_wait_ms = 5\n",
	    &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	/* a network HSM's profile bounds calls; the configuration can still say 0 */
	ck_assert_int_eq(test_write_file(profile, netprof, strlen(netprof), 0644), 0);
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n", &cfg, err, sizeof(err)) == TCA_OK,
	    "%s", err);
	ck_assert_uint_eq(cfg.call_timeout_ms, 10000);
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\ntoken.call_timeout_ms = 0\n", &cfg,
	    err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_uint_eq(cfg.call_timeout_ms, 0);
}
END_TEST

/* /config/token-isolation: none by default; process needs a PIN file (a
 * restarted helper reads it again); token.helper is an absolute path */
START_TEST(test_token_isolation)
{
	static const char prof[] = "name = s\nmodule = /usr/lib/s.so\n";
	struct tca_config cfg;
	char err[512];

	ck_assert_int_eq(test_write_file(profile, prof, strlen(prof), 0644), 0);
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n", &cfg, err, sizeof(err)) == TCA_OK,
	    "%s", err);
	ck_assert_int_eq(cfg.isolation, TCA_ISOLATION_NONE);
	ck_assert_str_eq(cfg.helper_path, "");
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\ntoken.isolation = process\n"
	    "token.helper = /usr/libexec/tca/tca-tokend\n", &cfg, err, sizeof(err)) == TCA_OK,
	    "%s", err);
	ck_assert_int_eq(cfg.isolation, TCA_ISOLATION_PROCESS);
	ck_assert_str_eq(cfg.helper_path, "/usr/libexec/tca/tca-tokend");
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\ntoken.isolation = yes\n",
	    &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "process") != NULL, "%s", err);
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\ntoken.helper = tca-tokend\n",
	    &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "absolute") != NULL, "%s", err);
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_env = TCA_PIN\ntoken.isolation = process\n",
	    &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "token.pin_file") != NULL, "%s", err);
	ck_assert_msg(load("token.uri = x\ntoken.pin_env = TCA_PIN\n", &cfg, err,
	    sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_int_eq(cfg.isolation, TCA_ISOLATION_NONE);
}
END_TEST

/* /config/id-list */
START_TEST(test_id_list)
{
	struct tca_id_list l;
	char many[1024] = "";
	int i;

	ck_assert_int_eq(tca_parse_id_list(" 1 ,2,,3 ", &l), TCA_OK);
	ck_assert_uint_eq(l.n, 3);
	ck_assert(tca_id_list_contains(&l, 3));
	ck_assert(!tca_id_list_contains(&l, 4));
	ck_assert_int_eq(tca_parse_id_list("", &l), TCA_OK);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(tca_parse_id_list("1,-2", &l), TCA_ERR_CONFIG);
	for (i = 0; i < TCA_MAX_IDS + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%d,", i);
	ck_assert_int_eq(tca_parse_id_list(many, &l), TCA_ERR_CONFIG);
}
END_TEST

/* ---- /fileperm */

/* snprintf into a char array, failing the test on truncation */
#define FP_PATH(buf, ...) \
	ck_assert_int_lt(snprintf(buf, sizeof(buf), __VA_ARGS__), (int)sizeof(buf))

static uid_t
nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");

	return pw != NULL ? pw->pw_uid : 65534;
}

/* dir/name, written with mode */
static void
fp_file(char *out, size_t outsz, const char *name, int mode)
{
	ck_assert_int_lt(snprintf(out, outsz, "%s/%s", dir, name), (int)outsz);
	ck_assert_int_eq(test_write_file(out, "x\n", 2, mode), 0);
}

/* dir/name as a directory with mode (chmod: mkdir's mode is under the umask) */
static void
fp_dir(char *out, size_t outsz, const char *name, mode_t mode)
{
	ck_assert_int_lt(snprintf(out, outsz, "%s/%s", dir, name), (int)outsz);
	ck_assert_int_eq(mkdir(out, 0700), 0);
	ck_assert_int_eq(chmod(out, mode), 0);
}

static int
fp_check(const char *path, enum tca_fileperm_kind kind, char *err, size_t errlen)
{
	err[0] = '\0';
	return tca_fileperm_check(path, kind, err, errlen);
}

#define ck_assert_refused(path, kind, needle1, needle2) do { \
	char e_[1024]; \
	ck_assert_int_eq(fp_check(path, kind, e_, sizeof(e_)), TCA_ERR_CONFIG); \
	ck_assert_msg(strstr(e_, needle1) != NULL && strstr(e_, needle2) != NULL, \
	    "%s: expected \"%s\" and \"%s\" in: %s", path, needle1, needle2, e_); \
} while (0)

#define ck_assert_trusted(path, kind) do { \
	char e_[1024]; \
	ck_assert_msg(fp_check(path, kind, e_, sizeof(e_)) == TCA_OK, "%s: %s", path, e_); \
} while (0)

/* /fileperm/good: a private temp dir under /tmp (itself sticky and
 * root-owned), files only the engine's user can write */
START_TEST(test_fileperm_good)
{
	char conf[PATH_MAX], pin[PATH_MAX], prog[PATH_MAX];
	char db[PATH_MAX], side[PATH_MAX], sock[PATH_MAX];
	char rel[PATH_MAX], cwd[PATH_MAX];

	chmod(dir, 0755);
	fp_file(conf, sizeof(conf), "engine.conf", 0644);	/* readable by others is fine */
	fp_file(pin, sizeof(pin), "user.pin", 0600);
	fp_file(prog, sizeof(prog), "alert.sh", 0755);
	FP_PATH(db, "%s/state.db", dir);
	FP_PATH(sock, "%s/engine.sock", dir);
	ck_assert_trusted(conf, TCA_FILEPERM_CONFIG);
	ck_assert_trusted(profile, TCA_FILEPERM_PROFILE);
	ck_assert_trusted(pin, TCA_FILEPERM_SECRET);
	ck_assert_trusted(prog, TCA_FILEPERM_PROGRAM);
	ck_assert_trusted(prog, TCA_FILEPERM_HELPER);
	ck_assert_trusted(sock, TCA_FILEPERM_SOCKET);
	ck_assert_trusted(db, TCA_FILEPERM_STORE);	/* not created yet */
	ck_assert_int_eq(test_write_file(db, "", 0, 0600), 0);
	FP_PATH(side, "%s-wal", db);
	ck_assert_int_eq(test_write_file(side, "", 0, 0600), 0);
	ck_assert_trusted(db, TCA_FILEPERM_STORE);
	/* a module that is not there is the token layer's to report */
	FP_PATH(rel, "%s/no/such/module.so", dir);
	ck_assert_trusted(rel, TCA_FILEPERM_MODULE);
	/* relative paths and dot-dot are walked like the kernel does */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_trusted("engine.conf", TCA_FILEPERM_CONFIG);
	ck_assert_trusted("./engine.sock", TCA_FILEPERM_SOCKET);
	FP_PATH(rel, "../%s/engine.conf", strrchr(dir, '/') + 1);
	ck_assert_trusted(rel, TCA_FILEPERM_CONFIG);
	ck_assert_int_eq(chdir(cwd), 0);
	/* a file that must be there */
	FP_PATH(rel, "%s/missing.conf", dir);
	ck_assert_refused(rel, TCA_FILEPERM_CONFIG, rel, "No such file");
	ck_assert_refused(rel, TCA_FILEPERM_SECRET, "PIN file", "No such file");
}
END_TEST

/* /fileperm/world-writable: a directory on the way or the file itself */
START_TEST(test_fileperm_writable)
{
	char sub[PATH_MAX], conf[PATH_MAX], pin[PATH_MAX], db[PATH_MAX];
	char sock[PATH_MAX], side[PATH_MAX], fix[PATH_MAX];

	chmod(dir, 0755);
	fp_dir(sub, sizeof(sub), "etc", 0777);
	FP_PATH(conf, "%s/engine.conf", sub);
	ck_assert_int_eq(test_write_file(conf, "x\n", 2, 0600), 0);
	FP_PATH(pin, "%s/user.pin", sub);
	ck_assert_int_eq(test_write_file(pin, "x\n", 2, 0600), 0);
	FP_PATH(db, "%s/state.db", sub);
	FP_PATH(sock, "%s/engine.sock", sub);
	FP_PATH(fix, "chmod go-w %s", sub);
	/* the message names the file, the culprit and the fix */
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, "configuration file ", fix);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, conf, "writable by group and others (mode 0777)");
	ck_assert_refused(pin, TCA_FILEPERM_SECRET, "PIN file ", fix);
	ck_assert_refused(db, TCA_FILEPERM_STORE, "store ", fix);
	ck_assert_refused(sock, TCA_FILEPERM_SOCKET, "socket.path ", fix);
	/* a directory further up: the same */
	FP_PATH(conf, "%s/etc/tca", dir);
	ck_assert_int_eq(mkdir(conf, 0755), 0);
	FP_PATH(conf, "%s/etc/tca/engine.conf", dir);
	ck_assert_int_eq(test_write_file(conf, "x\n", 2, 0600), 0);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, fix, "directory ");
	/* group-writable only */
	chmod(sub, 0775);
	FP_PATH(fix, "chmod g-w %s", sub);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, fix, "writable by group (mode 0775)");
	chmod(sub, 0755);
	ck_assert_trusted(conf, TCA_FILEPERM_CONFIG);
	/* the file itself */
	chmod(conf, 0602);
	FP_PATH(fix, "chmod o-w %s", conf);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, fix, "writable by others (mode 0602)");
	ck_assert_refused(conf, TCA_FILEPERM_PROFILE, "hsm-profile ", fix);
	ck_assert_refused(conf, TCA_FILEPERM_PROGRAM, "alert.command ", fix);
	ck_assert_refused(conf, TCA_FILEPERM_MODULE, "PKCS#11 module ", fix);
	ck_assert_refused(conf, TCA_FILEPERM_HELPER, "token helper ", fix);
	chmod(conf, 0620);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, "chmod g-w ", "writable by group");
	/* a PIN file: no group/other access at all */
	chmod(conf, 0640);
	ck_assert_trusted(conf, TCA_FILEPERM_CONFIG);
	FP_PATH(fix, "chmod 600 %s", conf);
	ck_assert_refused(conf, TCA_FILEPERM_SECRET, "has mode 0640", fix);
	/* the store and the SQLite files next to it */
	FP_PATH(db, "%s/state.db", sub);
	ck_assert_int_eq(test_write_file(db, "", 0, 0600), 0);
	ck_assert_trusted(db, TCA_FILEPERM_STORE);
	chmod(db, 0666);
	ck_assert_refused(db, TCA_FILEPERM_STORE, "chmod go-w ", db);
	chmod(db, 0600);
	FP_PATH(side, "%s-shm", db);
	ck_assert_int_eq(test_write_file(side, "", 0, 0606), 0);
	FP_PATH(fix, "chmod o-w %s", side);
	ck_assert_refused(db, TCA_FILEPERM_STORE, "store ", fix);
	unlink(side);
	ck_assert_int_eq(symlink("/etc/passwd", side), 0);
	ck_assert_refused(db, TCA_FILEPERM_STORE, side, "not a regular file");
	unlink(side);
	ck_assert_trusted(db, TCA_FILEPERM_STORE);
	/* not a regular file */
	ck_assert_refused(sub, TCA_FILEPERM_CONFIG, sub, "not a regular file");
}
END_TEST

/* /fileperm/sticky: a world-writable directory with the sticky bit (/tmp)
 * is fine on the way, not as the directory the engine creates files in */
START_TEST(test_fileperm_sticky)
{
	char tmp[PATH_MAX], conf[PATH_MAX], sock[PATH_MAX], db[PATH_MAX];
	char own[PATH_MAX];
	struct stat st;

	chmod(dir, 0755);
	/* the fixture's own dir is in the real /tmp (or $TMPDIR) */
	ck_assert_trusted(profile, TCA_FILEPERM_PROFILE);
	fp_dir(tmp, sizeof(tmp), "tmp", 01777);
	FP_PATH(conf, "%s/engine.conf", tmp);
	ck_assert_int_eq(test_write_file(conf, "x\n", 2, 0600), 0);
	ck_assert_trusted(conf, TCA_FILEPERM_CONFIG);
	ck_assert_trusted(conf, TCA_FILEPERM_SECRET);
	FP_PATH(own, "%s/tca", tmp);
	ck_assert_int_eq(mkdir(own, 0755), 0);
	FP_PATH(sock, "%s/tca/engine.sock", tmp);
	FP_PATH(db, "%s/tca/state.db", tmp);
	ck_assert_trusted(sock, TCA_FILEPERM_SOCKET);
	ck_assert_trusted(db, TCA_FILEPERM_STORE);
	/* but the socket or the store right in it: anyone could take the name */
	FP_PATH(sock, "%s/engine.sock", tmp);
	FP_PATH(db, "%s/state.db", tmp);
	ck_assert_refused(sock, TCA_FILEPERM_SOCKET, "sticky bit", "directory of its own");
	ck_assert_refused(db, TCA_FILEPERM_STORE, tmp, "(mode 1777)");
	/* the real /tmp likewise, when it is the usual sticky world-writable one */
	if (stat("/tmp", &st) == 0 && (st.st_mode & 01777) == 01777 && st.st_uid == 0)
		ck_assert_refused("/tmp/tca-engine.sock", TCA_FILEPERM_SOCKET, "directory /tmp ",
		    "sticky bit");
	/* without the sticky bit it is refused on the way too */
	chmod(tmp, 0777);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, "chmod go-w ", tmp);
	/* with it, what is ours in it must be ours: see /fileperm/owner */
}
END_TEST

/* /fileperm/owner: owned by another uid than the engine's or root (as root:
 * chown to nobody; an engine running as nobody via tca_fileperm_check_uid) */
START_TEST(test_fileperm_owner)
{
	char conf[PATH_MAX], sub[PATH_MAX], in[PATH_MAX], tmp[PATH_MAX];
	char fix[PATH_MAX], e[1024];
	uid_t nobody = nobody_uid();

	if (geteuid() != 0) {
		fprintf(stderr, "/fileperm/owner: not root, chown cases skipped\n");
		return;
	}
	chmod(dir, 0755);
	fp_file(conf, sizeof(conf), "engine.conf", 0600);
	ck_assert_int_eq(chown(conf, nobody, (gid_t)-1), 0);
	FP_PATH(fix, "chown root %s", conf);
	ck_assert_refused(conf, TCA_FILEPERM_CONFIG, "owned by uid ", fix);
	ck_assert_refused(conf, TCA_FILEPERM_SECRET, "PIN file ", "(nobody), not by root");
	/* an engine running as nobody trusts its own files and root's */
	ck_assert_int_eq(tca_fileperm_check_uid(conf, TCA_FILEPERM_CONFIG, nobody, e, sizeof(e)),
	    TCA_OK);
	ck_assert_int_eq(tca_fileperm_check_uid(profile, TCA_FILEPERM_CONFIG, nobody, e,
	    sizeof(e)), TCA_OK);
	/* and no one else's: the fix names the engine's user */
	ck_assert_int_eq(chown(conf, 12345, (gid_t)-1), 0);
	ck_assert_int_eq(tca_fileperm_check_uid(conf, TCA_FILEPERM_CONFIG, nobody, e, sizeof(e)),
	    TCA_ERR_CONFIG);
	ck_assert_msg(strstr(e, "the engine's user nobody") != NULL && strstr(e, "chown nobody ") != NULL,
	    "%s", e);
	/* a directory on the way */
	fp_dir(sub, sizeof(sub), "etc", 0755);
	FP_PATH(in, "%s/engine.conf", sub);
	ck_assert_int_eq(test_write_file(in, "x\n", 2, 0600), 0);
	ck_assert_trusted(in, TCA_FILEPERM_CONFIG);
	ck_assert_int_eq(chown(sub, nobody, (gid_t)-1), 0);
	FP_PATH(fix, "chown root %s", sub);
	ck_assert_refused(in, TCA_FILEPERM_CONFIG, "directory ", fix);
	FP_PATH(in, "%s/state.db", sub);
	ck_assert_refused(in, TCA_FILEPERM_STORE, "store ", fix);
	FP_PATH(in, "%s/engine.sock", sub);
	ck_assert_refused(in, TCA_FILEPERM_SOCKET, "socket.path ", fix);
	/* in a sticky directory: a file someone else put there */
	fp_dir(tmp, sizeof(tmp), "tmp", 01777);
	FP_PATH(in, "%s/engine.conf", tmp);
	ck_assert_int_eq(test_write_file(in, "x\n", 2, 0600), 0);
	ck_assert_trusted(in, TCA_FILEPERM_CONFIG);
	ck_assert_int_eq(chown(in, nobody, (gid_t)-1), 0);
	ck_assert_refused(in, TCA_FILEPERM_CONFIG, "owned by uid ", "chown root ");
	/* the store's neighbours */
	FP_PATH(in, "%s/state.db", dir);
	ck_assert_int_eq(test_write_file(in, "", 0, 0600), 0);
	FP_PATH(in, "%s/state.db-wal", dir);
	ck_assert_int_eq(test_write_file(in, "", 0, 0600), 0);
	ck_assert_int_eq(chown(in, nobody, (gid_t)-1), 0);
	FP_PATH(in, "%s/state.db", dir);
	ck_assert_refused(in, TCA_FILEPERM_STORE, "state.db-wal is owned by uid", "chown root ");
}
END_TEST

/* /fileperm/symlink: the place a symlink leads to is checked, and so is the
 * directory the symlink is in and the symlink's owner */
START_TEST(test_fileperm_symlink)
{
	char good[PATH_MAX], bad[PATH_MAX], target[PATH_MAX];
	char link[PATH_MAX], fix[PATH_MAX], db[PATH_MAX];

	chmod(dir, 0755);
	fp_dir(good, sizeof(good), "good", 0755);
	fp_dir(bad, sizeof(bad), "bad", 0777);
	FP_PATH(target, "%s/engine.conf", bad);
	ck_assert_int_eq(test_write_file(target, "x\n", 2, 0600), 0);
	FP_PATH(link, "%s/engine.conf", good);
	ck_assert_int_eq(symlink("../bad/engine.conf", link), 0);
	FP_PATH(fix, "chmod go-w %s", bad);
	ck_assert_refused(link, TCA_FILEPERM_CONFIG, link, fix);
	/* a symlinked directory on the way */
	FP_PATH(link, "%s/etc", good);
	ck_assert_int_eq(symlink(bad, link), 0);
	FP_PATH(link, "%s/etc/engine.conf", good);
	ck_assert_refused(link, TCA_FILEPERM_CONFIG, "directory ", fix);
	/* the store behind a symlink: its real directory is where SQLite writes */
	FP_PATH(link, "%s/state.db", good);
	FP_PATH(db, "%s/state.db", bad);
	ck_assert_int_eq(symlink(db, link), 0);
	ck_assert_refused(link, TCA_FILEPERM_STORE, "store ", fix);
	/* fixed: trusted through the symlinks */
	chmod(bad, 0755);
	FP_PATH(link, "%s/engine.conf", good);
	ck_assert_trusted(link, TCA_FILEPERM_CONFIG);
	FP_PATH(link, "%s/etc/engine.conf", good);
	ck_assert_trusted(link, TCA_FILEPERM_CONFIG);
	FP_PATH(link, "%s/state.db", good);
	ck_assert_trusted(link, TCA_FILEPERM_STORE);
	/* a symlink in a world-writable directory: anyone could re-point it */
	chmod(good, 0777);
	FP_PATH(link, "%s/engine.conf", good);
	FP_PATH(fix, "chmod go-w %s", good);
	ck_assert_refused(link, TCA_FILEPERM_CONFIG, "directory ", fix);
	chmod(good, 0755);
	/* a symlink someone else owns */
	if (geteuid() == 0) {
		ck_assert_int_eq(lchown(link, nobody_uid(), (gid_t)-1), 0);
		FP_PATH(fix, "chown -h root %s", link);
		ck_assert_refused(link, TCA_FILEPERM_CONFIG, "(symlink) is owned by", fix);
	}
	/* loops end */
	FP_PATH(link, "%s/loop", good);
	ck_assert_int_eq(symlink("loop", link), 0);
	ck_assert_refused(link, TCA_FILEPERM_CONFIG, link, "too many levels");
}
END_TEST

/* /fileperm/config: every path a loaded configuration names */
START_TEST(test_fileperm_config)
{
	struct tca_config cfg;
	char text[4096], err[1024], pin[PATH_MAX], prog[PATH_MAX], sub[PATH_MAX];

	chmod(dir, 0755);
	fp_file(pin, sizeof(pin), "user.pin", 0600);
	fp_file(prog, sizeof(prog), "alert.sh", 0755);
	fp_dir(sub, sizeof(sub), "run", 0755);
	FP_PATH(text,
	    "token.uri = pkcs11:token=x\ntoken.pin_file = %s\nalert.command = %s\n"
	    "socket.path = %s/engine.sock\nstore.path = %s/state.db\n", pin, prog, sub, dir);
	ck_assert_msg(load(text, &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_msg(tca_fileperm_check_config(&cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	/* the configuration file itself */
	chmod(cfg.path, 0606);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "configuration file ") != NULL && strstr(err, "chmod o-w") != NULL,
	    "%s", err);
	chmod(cfg.path, 0600);
	/* the hsm-profile (it names the module to load) */
	chmod(profile, 0666);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "hsm-profile ") != NULL && strstr(err, profile) != NULL, "%s", err);
	chmod(profile, 0644);
	/* alert.command runs as the engine */
	chmod(prog, 0777);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "alert.command ") != NULL, "%s", err);
	chmod(prog, 0755);
	/* the PIN file */
	chmod(pin, 0644);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "PIN file ") != NULL && strstr(err, "chmod 600") != NULL, "%s", err);
	chmod(pin, 0600);
	/* the socket's directory */
	chmod(sub, 0770);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "socket.path ") != NULL && strstr(err, "chmod g-w") != NULL, "%s", err);
	chmod(sub, 0755);
	/* the store's */
	chmod(dir, 0757);
	ck_assert_int_eq(tca_fileperm_check_config(&cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "chmod o-w") != NULL, "%s", err);
	chmod(dir, 0755);
	ck_assert_msg(tca_fileperm_check_config(&cfg, err, sizeof(err)) == TCA_OK, "%s", err);
}
END_TEST

/* /config/profile_lookup: a name is looked up in sysconfdir's hsm-profiles
 * first, then in datadir's (the shipped ones); token.profiles_dir, when set,
 * is the only place; a path is a path */
START_TEST(test_profile_lookup)
{
	static const char shipped[] = "name = x\nmodule = /usr/lib/shipped.so\n";
	static const char local[] = "name = x\nmodule = /usr/lib/local.so\n";
	struct tca_config cfg;
	char etc[PATH_MAX + 8], data[PATH_MAX + 8], p[PATH_MAX + 32], want[PATH_MAX + 32];
	char out[2 * PATH_MAX + 16], err[512];
	struct stat st;

	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	ck_assert_int_eq(mkdir(etc, 0755), 0);
	ck_assert_int_eq(mkdir(data, 0755), 0);
	snprintf(p, sizeof(p), "%s/x.conf", data);
	ck_assert_int_eq(test_write_file(p, shipped, strlen(shipped), 0644), 0);
	snprintf(p, sizeof(p), "%s/y.conf", data);
	ck_assert_int_eq(test_write_file(p, shipped, strlen(shipped), 0644), 0);

	/* only shipped: datadir's */
	tca_profile_path_in(etc, data, "x", out, sizeof(out));
	snprintf(want, sizeof(want), "%s/x.conf", data);
	ck_assert_str_eq(out, want);
	/* the administrator's of the same name wins, the other stays shipped */
	snprintf(p, sizeof(p), "%s/x.conf", etc);
	ck_assert_int_eq(test_write_file(p, local, strlen(local), 0644), 0);
	tca_profile_path_in(etc, data, "x", out, sizeof(out));
	ck_assert_str_eq(out, p);
	tca_config_defaults(&cfg);
	ck_assert_int_eq(tca_profile_load(out, &cfg, err, sizeof(err)), TCA_OK);
	ck_assert_str_eq(cfg.module, "/usr/lib/local.so");
	tca_profile_path_in(etc, data, "y", out, sizeof(out));
	snprintf(want, sizeof(want), "%s/y.conf", data);
	ck_assert_str_eq(out, want);
	/* a name found nowhere: the shipped path, which the error then names */
	tca_profile_path_in(etc, data, "z", out, sizeof(out));
	snprintf(want, sizeof(want), "%s/z.conf", data);
	ck_assert_str_eq(out, want);

	/* the default configuration searches the installed directories */
	tca_config_defaults(&cfg);
	ck_assert_str_eq(cfg.profiles_dir, "");
	tca_profile_path(&cfg, "softhsm2", out, sizeof(out));
	if (lstat(TCA_PROFILES_ETC_DIR "/softhsm2.conf", &st) == 0)
		ck_assert_str_eq(out, TCA_PROFILES_ETC_DIR "/softhsm2.conf");
	else
		ck_assert_str_eq(out, TCA_PROFILES_DATA_DIR "/softhsm2.conf");
	/* token.profiles_dir: only there, even when etc has one */
	ck_assert_uint_lt(strlen(data), sizeof(cfg.profiles_dir));
	memcpy(cfg.profiles_dir, data, strlen(data) + 1);
	tca_profile_path(&cfg, "x", out, sizeof(out));
	snprintf(want, sizeof(want), "%s/x.conf", data);
	ck_assert_str_eq(out, want);
	/* a path is a path */
	tca_profile_path(&cfg, "/opt/p/x.conf", out, sizeof(out));
	ck_assert_str_eq(out, "/opt/p/x.conf");
}
END_TEST

/* /config/watchdog: watchdog.token_down_s */
START_TEST(test_watchdog_key)
{
	struct tca_config cfg;
	char err[512];

	tca_config_defaults(&cfg);
	ck_assert_uint_eq(cfg.watchdog_token_down_s, 0);
	ck_assert_int_eq(load("token.uri = pkcs11:token=x\ntoken.pin_env = P\n"
	    "watchdog.token_down_s = 120\n", &cfg, err, sizeof(err)), TCA_OK);
	ck_assert_uint_eq(cfg.watchdog_token_down_s, 120);
	ck_assert_int_ne(load("token.uri = pkcs11:token=x\ntoken.pin_env = P\n"
	    "watchdog.token_down_s = 86401\n", &cfg, err, sizeof(err)), TCA_OK);
	ck_assert_ptr_nonnull(strstr(err, "watchdog.token_down_s"));
}
END_TEST

/* /config/store: store.uri, store.path meaning sqlite:PATH, not both */
START_TEST(test_store_keys)
{
	struct tca_config cfg;
	char err[512];

	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n", &cfg, err,
	    sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.store_uri, "sqlite:/var/lib/tca/state.db");
	ck_assert_str_eq(cfg.store_path, "/var/lib/tca/state.db");
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\nstore.path = /srv/s.db\n",
	    &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.store_uri, "sqlite:/srv/s.db");
	ck_assert_str_eq(cfg.store_path, "/srv/s.db");
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\nstore.uri = sqlite:/srv/u.db\n",
	    &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.store_uri, "sqlite:/srv/u.db");
	ck_assert_str_eq(cfg.store_path, "/srv/u.db");
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\nstore.uri = /srv/v.db\n",
	    &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.store_path, "/srv/v.db");
	/* another backend: no SQLite file (no file checks, no lock file) */
	ck_assert_msg(load("token.uri = x\ntoken.pin_file = /p\n"
	    "store.uri = postgresql://tca:s3cret@db/tca\n", &cfg, err, sizeof(err)) ==
	    TCA_OK, "%s", err);
	ck_assert_str_eq(cfg.store_uri, "postgresql://tca:s3cret@db/tca");
	ck_assert_str_eq(cfg.store_path, "");
	/* both keys, an unknown scheme (its password not shown), no file */
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\nstore.path = /a.db\n"
	    "store.uri = sqlite:/b.db\n", &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "store.uri") != NULL && strstr(err, "store.path") != NULL,
	    "%s", err);
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\n"
	    "store.uri = mysql://tca:s3cret@db/tca\n", &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "unknown URI scheme") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "s3cret") == NULL, "%s", err);
	ck_assert_int_eq(load("token.uri = x\ntoken.pin_file = /p\nstore.uri = sqlite:\n",
	    &cfg, err, sizeof(err)), TCA_ERR_CONFIG);
	ck_assert_msg(strstr(err, "names no file") != NULL, "%s", err);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_buffer);
	tcase_add_test(tc, test_profile_missing);
	tcase_add_test(tc, test_shipped_profile);
	tcase_add_test(tc, test_id_list);
	tcase_add_test(tc, test_profile_hsm_keys);
	tcase_add_test(tc, test_init_args_override);
	tcase_add_test(tc, test_profile_lookup);
	tcase_add_test(tc, test_watchdog_key);
	tcase_add_test(tc, test_token_isolation);
	tcase_add_test(tc, test_store_keys);
	suite_add_tcase(s, tc);
	tc = tcase_create("fileperm");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fileperm_good);
	tcase_add_test(tc, test_fileperm_writable);
	tcase_add_test(tc, test_fileperm_sticky);
	tcase_add_test(tc, test_fileperm_owner);
	tcase_add_test(tc, test_fileperm_symlink);
	tcase_add_test(tc, test_fileperm_config);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
