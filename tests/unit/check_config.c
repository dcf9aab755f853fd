/*
 * check_config.c - configuration and hsm-profile parsing.
 *
 * /config/defaults, /config/full, /config/errors/..., /config/profile
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
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
	    "alert.timeout_s = 10\n", &cfg, err, sizeof(err)) == TCA_OK, "%s", err);
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

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_profile_missing);
	tcase_add_test(tc, test_shipped_profile);
	tcase_add_test(tc, test_id_list);
	tcase_add_test(tc, test_profile_hsm_keys);
	tcase_add_test(tc, test_init_args_override);
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
