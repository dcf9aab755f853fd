/* conf.c - configuration and hsm-profile files. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "store.h"
#include "secret.h"
#include "log.h"
#include "renewal.h"
#include "tca-error.h"

#define MAX_LINE 4096
#define MAX_KEYS 64

void
tca_config_defaults(struct tca_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "/run/tca/engine.sock");
	cfg->socket_mode = 0660;
	cfg->socket_gid = -1;
	cfg->max_frame = 65536;
	cfg->frame_timeout_ms = 10000;
	cfg->idle_timeout_ms = 300000;
	cfg->max_connections = 256;
	cfg->max_connections_per_uid = 32;
	cfg->admin_reserved_connections = 8;
	cfg->admin_uids.n = 1;
	cfg->admin_uids.ids[0] = 0;	/* root */
	snprintf(cfg->profile, sizeof(cfg->profile), "softhsm2");
	/* profiles_dir stays empty: TCA_PROFILES_ETC_DIR, then TCA_PROFILES_DATA_DIR */
	cfg->pool_size = 4;
	cfg->recovery_wait_ms = TCA_TOKEN_DEFAULT_WAIT_MS;
	cfg->call_timeout_ms = TCA_TOKEN_DEFAULT_CALL_TIMEOUT_MS;
	cfg->isolation = TCA_ISOLATION_DEFAULT;
	snprintf(cfg->store_path, sizeof(cfg->store_path), "/var/lib/tca/state.db");
	snprintf(cfg->store_uri, sizeof(cfg->store_uri), "sqlite:/var/lib/tca/state.db");
	cfg->group_commit_max = 256;
	snprintf(cfg->ca_organization, sizeof(cfg->ca_organization), "Cumulocity");
	snprintf(cfg->ca_country, sizeof(cfg->ca_country), "US");
	cfg->ca_validity_days = 1095;
	cfg->ca_default_key_type = TCA_KEY_EC_P256;
	cfg->device_validity_days = 365;
	cfg->crl_validity_hours = 168;
	cfg->crl_refresh_percent = 50;
	cfg->ocsp_validity_s = 3600;
	cfg->registration_required = 1;
	cfg->otp_max_failures = 5;
	cfg->otp_expiry_days = 30;
	cfg->log_level = LOG_INFO;
	cfg->log_syslog = 0;
	cfg->schedule_enabled = 1;
	cfg->testing_follow = 1;
	tca_schedule_defaults(&cfg->schedule);
	cfg->reissue_serial = TCA_SERIAL_NEW;
	cfg->retry_min_s = 60;
	cfg->retry_max_s = 3600;
	cfg->reissue_workers = 2;
	cfg->reissue_rate = 250;
	cfg->alert_expiry_window_days = 30;
	cfg->alert_timeout_s = 60;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* The line parser of tca_kv_parse_file and tca_kv_parse_buffer; path names
 * the input in messages. */
static int
kv_parse_stream(FILE *f, const char *path, tca_kv_cb cb, void *ctx, char *err,
    size_t errlen)
{
	char line[MAX_LINE + 2], why[512];
	char seen[MAX_KEYS][64];
	size_t n_seen = 0, i;
	unsigned int lineno = 0;
	int r = TCA_OK;

	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *value;

		lineno++;
		if (strlen(line) > MAX_LINE) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			r = TCA_ERR_CONFIG;
			break;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
			r = TCA_ERR_CONFIG;
			break;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (*key == '\0' || strlen(key) >= sizeof(seen[0])) {
			snprintf(err, errlen, "%s:%u: bad key", path, lineno);
			r = TCA_ERR_CONFIG;
			break;
		}
		for (i = 0; i < n_seen; i++)
			if (strcmp(seen[i], key) == 0)
				break;
		if (i < n_seen) {
			snprintf(err, errlen, "%s:%u: %s is set twice", path, lineno, key);
			r = TCA_ERR_CONFIG;
			break;
		}
		if (n_seen < MAX_KEYS)
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", key);
		why[0] = '\0';
		if ((r = cb(ctx, key, value, why, sizeof(why))) != TCA_OK) {
			snprintf(err, errlen, "%s:%u: %s: %s", path, lineno, key,
			    why[0] != '\0' ? why : "invalid value");
			break;
		}
	}
	if (r == TCA_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		r = TCA_ERR_CONFIG;
	}
	return r;
}

int
tca_kv_parse_file(const char *path, tca_kv_cb cb, void *ctx, char *err, size_t errlen)
{
	FILE *f;
	int r;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return TCA_ERR_CONFIG;
	}
	r = kv_parse_stream(f, path, cb, ctx, err, errlen);
	fclose(f);
	return r;
}

int
tca_kv_parse_buffer(const char *name, const char *buf, size_t len, tca_kv_cb cb,
    void *ctx, char *err, size_t errlen)
{
	FILE *f;
	int r;

	if (len == 0)
		return TCA_OK;	/* as an empty file: nothing set */
	if ((f = fmemopen((void *)(uintptr_t)buf, len, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return TCA_ERR_CONFIG;
	}
	r = kv_parse_stream(f, name, cb, ctx, err, errlen);
	fclose(f);
	return r;
}

/* ---- value parsers */

static int
parse_uint(const char *v, unsigned long min, unsigned long max, int base,
    unsigned long *out, char *why, size_t whylen)
{
	char *end;
	unsigned long x;

	if (*v == '\0' || *v == '-' || *v == '+' || isspace((unsigned char)*v)) {
		snprintf(why, whylen, "expected a number");
		return TCA_ERR_CONFIG;
	}
	errno = 0;
	x = strtoul(v, &end, base);
	if (errno != 0 || *end != '\0') {
		snprintf(why, whylen, "expected a number");
		return TCA_ERR_CONFIG;
	}
	if (x < min || x > max) {
		snprintf(why, whylen, "must be between %lu and %lu", min, max);
		return TCA_ERR_CONFIG;
	}
	*out = x;
	return TCA_OK;
}

static int
parse_bool(const char *v, int *out, char *why, size_t whylen)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else {
		snprintf(why, whylen, "expected true or false");
		return TCA_ERR_CONFIG;
	}
	return TCA_OK;
}

static int
parse_str(const char *v, char *out, size_t outsz, int allow_empty, char *why, size_t whylen)
{
	if (!allow_empty && *v == '\0') {
		snprintf(why, whylen, "must not be empty");
		return TCA_ERR_CONFIG;
	}
	if (strlen(v) >= outsz) {
		snprintf(why, whylen, "longer than %zu characters", outsz - 1);
		return TCA_ERR_CONFIG;
	}
	memcpy(out, v, strlen(v) + 1);
	return TCA_OK;
}

int
tca_parse_id_list(const char *value, struct tca_id_list *list)
{
	char buf[MAX_LINE + 1], *tok, *save = NULL;
	unsigned long id;
	char why[64];

	list->n = 0;
	if (strlen(value) > MAX_LINE)
		return TCA_ERR_CONFIG;
	memcpy(buf, value, strlen(value) + 1);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (*tok == '\0')
			continue;
		if (parse_uint(tok, 0, 0xfffffffeUL, 10, &id, why, sizeof(why)) != TCA_OK)
			return TCA_ERR_CONFIG;
		if (list->n >= TCA_MAX_IDS)
			return TCA_ERR_CONFIG;
		list->ids[list->n++] = id;
	}
	return TCA_OK;
}

int
tca_id_list_contains(const struct tca_id_list *list, unsigned long id)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		if (list->ids[i] == id)
			return 1;
	return 0;
}

static int
parse_group(const char *v, long *gid, char *why, size_t whylen)
{
	unsigned long x;
	struct group *g;

	if (*v == '\0') {
		*gid = -1;
		return TCA_OK;
	}
	if (isdigit((unsigned char)*v))
		return parse_uint(v, 0, 0xfffffffeUL, 10, &x, why, whylen) == TCA_OK ?
		    (*gid = (long)x, TCA_OK) : TCA_ERR_CONFIG;
	if ((g = getgrnam(v)) == NULL) {
		snprintf(why, whylen, "no such group");
		return TCA_ERR_CONFIG;
	}
	*gid = (long)g->gr_gid;
	return TCA_OK;
}

/* ---- the engine configuration */

static int
config_kv(void *ctx, const char *k, const char *v, char *why, size_t whylen)
{
	struct tca_config *cfg = ctx;
	unsigned long x;
	int r;

#define UINT(key, field, min, max) \
	if (strcmp(k, key) == 0) { \
		if ((r = parse_uint(v, min, max, 10, &x, why, whylen)) == TCA_OK) \
			cfg->field = x; \
		return r; \
	}
#define STR(key, field, allow_empty) \
	if (strcmp(k, key) == 0) \
		return parse_str(v, cfg->field, sizeof(cfg->field), allow_empty, why, whylen);
#define IDS(key, field) \
	if (strcmp(k, key) == 0) { \
		if (tca_parse_id_list(v, &cfg->field) != TCA_OK) { \
			snprintf(why, whylen, "expected a comma-separated list of at most %d numeric ids", TCA_MAX_IDS); \
			return TCA_ERR_CONFIG; \
		} \
		return TCA_OK; \
	}

	STR("socket.path", socket_path, 0)
	if (strcmp(k, "socket.mode") == 0) {
		if ((r = parse_uint(v, 0, 0777, 8, &x, why, whylen)) != TCA_OK)
			return r;
		if ((x & 0007) != 0) {
			snprintf(why, whylen, "others must have no access (use 0660 or 0600)");
			return TCA_ERR_CONFIG;
		}
		cfg->socket_mode = (unsigned int)x;
		return TCA_OK;
	}
	if (strcmp(k, "socket.group") == 0)
		return parse_group(v, &cfg->socket_gid, why, whylen);
	UINT("rpc.max_frame", max_frame, 1024, 16 * 1024 * 1024)
	UINT("rpc.frame_timeout_ms", frame_timeout_ms, 10, 600000)
	UINT("rpc.idle_timeout_ms", idle_timeout_ms, 10, 86400000)
	UINT("rpc.max_connections", max_connections, 1, 4096)
	UINT("rpc.max_connections_per_uid", max_connections_per_uid, 0, 4096)
	UINT("rpc.admin_reserved_connections", admin_reserved_connections, 0, 4096)
	IDS("roles.frontend_uids", frontend_uids)
	IDS("roles.frontend_gids", frontend_gids)
	IDS("roles.admin_uids", admin_uids)
	IDS("roles.admin_gids", admin_gids)
	STR("token.profile", profile, 0)
	STR("token.profiles_dir", profiles_dir, 0)
	STR("token.module", module, 1)
	STR("token.uri", token_uri, 0)
	STR("token.pin_file", pin_file, 1)
	STR("token.pin_env", pin_env, 1)
	UINT("token.pool_size", pool_size, 1, 256)
	STR("token.init_args", init_args, 1)
	UINT("token.recovery_wait_ms", recovery_wait_ms, 100, 600000)
	if (strcmp(k, "token.call_timeout_ms") == 0) {
		if ((r = parse_uint(v, 0, 600000, 10, &x, why, whylen)) != TCA_OK)
			return r;
		if (x != 0 && x < 100) {
			snprintf(why, whylen, "must be 0 (unbounded) or at least 100");
			return TCA_ERR_CONFIG;
		}
		cfg->call_timeout_ms = (unsigned int)x;
		cfg->call_timeout_set = 1;
		return TCA_OK;
	}
	if (strcmp(k, "token.isolation") == 0) {
		if (strcmp(v, "process") == 0) {
			cfg->isolation = TCA_ISOLATION_PROCESS;
		} else if (strcmp(v, "none") == 0) {
			cfg->isolation = TCA_ISOLATION_NONE;
		} else {
			snprintf(why, whylen, "must be process (the module and the PIN in the "
			    "tca-tokend helper) or none (in the engine)");
			return TCA_ERR_CONFIG;
		}
		return TCA_OK;
	}
	if (strcmp(k, "token.helper") == 0) {
		if (v[0] != '/') {
			snprintf(why, whylen, "must be an absolute path (of tca-tokend)");
			return TCA_ERR_CONFIG;
		}
	}
	STR("token.helper", helper_path, 0)
	if (strcmp(k, "store.path") == 0) {
		cfg->store_path_set = 1;
		return parse_str(v, cfg->store_path, sizeof(cfg->store_path), 0, why, whylen);
	}
	if (strcmp(k, "store.uri") == 0) {
		cfg->store_uri_set = 1;
		return parse_str(v, cfg->store_uri, sizeof(cfg->store_uri), 0, why, whylen);
	}
	UINT("store.group_commit_max", group_commit_max, 1, 4096)
	STR("ca.organization", ca_organization, 1)
	if (strcmp(k, "ca.country") == 0) {
		if (*v != '\0' && (strlen(v) != 2 || !isupper((unsigned char)v[0]) ||
		    !isupper((unsigned char)v[1]))) {
			snprintf(why, whylen, "must be a two-letter ISO 3166 code such as US "
			    "(X.509 countryName is two letters)");
			return TCA_ERR_CONFIG;
		}
		memcpy(cfg->ca_country, v, strlen(v) + 1);
		return TCA_OK;
	}
	UINT("ca.validity_days", ca_validity_days, 1, 36500)
	if (strcmp(k, "ca.default_key_type") == 0) {
		if (tca_key_type_from_name(v, &cfg->ca_default_key_type) != TCA_OK) {
			snprintf(why, whylen, "expected ec-p256, ec-p384, rsa-3072 or ed25519");
			return TCA_ERR_CONFIG;
		}
		return TCA_OK;
	}
	UINT("device.validity_days", device_validity_days, 1, 3650)
	UINT("crl.validity_hours", crl_validity_hours, 1, 8760)
	UINT("crl.refresh_percent", crl_refresh_percent, 1, 90)
	UINT("ocsp.validity_s", ocsp_validity_s, 60, 604800)
	UINT("device.otp_max_failures", otp_max_failures, 1, 100)
	UINT("device.otp_expiry_days", otp_expiry_days, 0, 3650)
	UINT("device.min_validity_days", min_validity_days, 0, 3650)
	UINT("watchdog.token_down_s", watchdog_token_down_s, 0, 86400)
	if (strcmp(k, "device.registration") == 0) {
		if (strcmp(v, "required") == 0)
			cfg->registration_required = 1;
		else if (strcmp(v, "none") == 0)
			cfg->registration_required = 0;
		else {
			snprintf(why, whylen, "expected required or none");
			return TCA_ERR_CONFIG;
		}
		return TCA_OK;
	}
	if (strcmp(k, "log.level") == 0) {
		if ((cfg->log_level = tca_log_level_from_name(v)) < 0) {
			snprintf(why, whylen, "expected error, warning, notice, info or debug");
			return TCA_ERR_CONFIG;
		}
		return TCA_OK;
	}
	if (strcmp(k, "log.syslog") == 0)
		return parse_bool(v, &cfg->log_syslog, why, whylen);
	if (strcmp(k, "schedule.enabled") == 0)
		return parse_bool(v, &cfg->schedule_enabled, why, whylen);
	if (strcmp(k, "testing.follow_other_engines") == 0)
		return parse_bool(v, &cfg->testing_follow, why, whylen);
	if (strcmp(k, "schedule.at") == 0) {
		int mo, d, h, mi;
		char tail;

		if (sscanf(v, "%2d-%2dT%2d:%2d%c", &mo, &d, &h, &mi, &tail) != 4) {
			snprintf(why, whylen, "expected MM-DDTHH:MM, e.g. 10-02T02:00");
			return TCA_ERR_CONFIG;
		}
		cfg->schedule.month = mo;
		cfg->schedule.day = d;
		cfg->schedule.hour = h;
		cfg->schedule.minute = mi;
		return tca_schedule_check(&cfg->schedule, why, whylen);
	}
	if (strcmp(k, "schedule.tz") == 0) {
		if ((r = parse_str(v, cfg->schedule.tz, sizeof(cfg->schedule.tz), 0, why, whylen)) != TCA_OK)
			return r;
		return tca_schedule_check(&cfg->schedule, why, whylen);
	}
	if (strcmp(k, "reissue.serial") == 0) {
		if (strcmp(v, "new") == 0)
			cfg->reissue_serial = TCA_SERIAL_NEW;
		else if (strcmp(v, "keep") == 0)
			cfg->reissue_serial = TCA_SERIAL_KEEP;
		else {
			snprintf(why, whylen, "expected new or keep");
			return TCA_ERR_CONFIG;
		}
		return TCA_OK;
	}
	UINT("reissue.retry_min_s", retry_min_s, 1, 86400)
	UINT("reissue.retry_max_s", retry_max_s, 1, 7 * 86400)
	UINT("reissue.workers", reissue_workers, 1, TCA_RENEWAL_MAX_WORKERS)
	UINT("reissue.rate", reissue_rate, 0, 100000)
	STR("alert.command", alert_command, 1)
	UINT("alert.expiry_window_days", alert_expiry_window_days, 0, 3650)
	UINT("alert.timeout_s", alert_timeout_s, 1, 3600)
	UINT("journal.checkpoint_interval_s", checkpoint_interval_s, 0, 7 * 86400)
	STR("journal.checkpoint_command", checkpoint_command, 1)
	STR("journal.checkpoint_key_file", checkpoint_key_file, 1)
	STR("testing.clock_file", testing_clock_file, 1)
#undef UINT
#undef STR
#undef IDS
	snprintf(why, whylen, "unknown key");
	return TCA_ERR_CONFIG;
}

/* ---- hsm-profiles */

/*
 * A comma-separated list of attribute names, each one of the (up to three)
 * allowed ones, which are the only template attributes a profile can omit:
 * they do not protect the key.  CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_PRIVATE,
 * CKA_TOKEN and CKA_SIGN can never be omitted.
 */
static int
parse_omissions(const char *v, const char *a1, const char *a2, const char *a3,
    int *f1, int *f2, int *f3, char *why, size_t whylen)
{
	char buf[256], *tok, *save = NULL, *end;

	if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf)) {
		snprintf(why, whylen, "too long");
		return TCA_ERR_CONFIG;
	}
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (a1 != NULL && strcmp(tok, a1) == 0)
			*f1 = 1;
		else if (a2 != NULL && strcmp(tok, a2) == 0)
			*f2 = 1;
		else if (a3 != NULL && strcmp(tok, a3) == 0)
			*f3 = 1;
		else {
			snprintf(why, whylen, "%s cannot be omitted (only %s%s%s%s%s: attributes "
			    "that do not protect the key)", tok, a1, a2 != NULL ? ", " : "",
			    a2 != NULL ? a2 : "", a3 != NULL ? ", " : "", a3 != NULL ? a3 : "");
			return TCA_ERR_CONFIG;
		}
	}
	return TCA_OK;
}

void
tca_profile_apply_env(const struct tca_config *cfg)
{
	unsigned int i;

	for (i = 0; i < cfg->n_env; i++)
		(void)setenv(cfg->env[i].name, cfg->env[i].value, 0);
}

int
tca_profile_check_pin(const struct tca_config *cfg, size_t pin_len, const char *what,
    char *why, size_t whylen)
{
	if ((cfg->pin_min != 0 && pin_len < cfg->pin_min) ||
	    (cfg->pin_max != 0 && pin_len > cfg->pin_max)) {
		snprintf(why, whylen, "%s is %zu characters; the profile %s allows %u..%u "
		    "(the token would refuse it)", what, pin_len, cfg->profile_name,
		    cfg->pin_min, cfg->pin_max != 0 ? cfg->pin_max : TCA_SECRET_MAX);
		return TCA_ERR_CONFIG;
	}
	return TCA_OK;
}

struct profile_ctx {
	struct tca_config *cfg;
	char module[PATH_MAX];
	char init_args[1024];
	unsigned int call_timeout_ms;
	int call_timeout_given;
};

static int
profile_kv(void *ctx, const char *k, const char *v, char *why, size_t whylen)
{
	struct profile_ctx *pc = ctx;
	struct tca_config *cfg = pc->cfg;
	unsigned long x;
	int r;

	if (strcmp(k, "name") == 0)
		return parse_str(v, cfg->profile_name, sizeof(cfg->profile_name), 0, why, whylen);
	if (strcmp(k, "module") == 0)
		return parse_str(v, pc->module, sizeof(pc->module), 0, why, whylen);
	if (strcmp(k, "max_sessions") == 0) {
		if ((r = parse_uint(v, 0, 1UL << 20, 10, &x, why, whylen)) == TCA_OK)
			cfg->quirks.max_sessions = x;
		return r;
	}
	if (strcmp(k, "no_ed25519") == 0)
		return parse_bool(v, &cfg->quirks.no_ed25519, why, whylen);
	if (strcmp(k, "ec_point_raw") == 0) {
		/* obsolete: the CKA_EC_POINT form is told apart by its length */
		int ignored;

		return parse_bool(v, &ignored, why, whylen);
	}
	if (strcmp(k, "init_args") == 0)
		return parse_str(v, pc->init_args, sizeof(pc->init_args), 1, why, whylen);
	if (strcmp(k, "omit_public") == 0)
		return parse_omissions(v, "CKA_VERIFY", NULL, NULL, &cfg->quirks.omit_verify,
		    NULL, NULL, why, whylen);
	if (strcmp(k, "omit_private") == 0)
		return parse_omissions(v, "CKA_DECRYPT", "CKA_UNWRAP", "CKA_DERIVE",
		    &cfg->quirks.omit_decrypt, &cfg->quirks.omit_unwrap, &cfg->quirks.omit_derive,
		    why, whylen);
	if (strcmp(k, "prefer_mechanisms") == 0)
		return parse_str(v, cfg->quirks.prefer_mechanisms,
		    sizeof(cfg->quirks.prefer_mechanisms), 1, why, whylen);
	if (strcmp(k, "pin_min") == 0 || strcmp(k, "pin_max") == 0) {
		if ((r = parse_uint(v, 0, TCA_SECRET_MAX, 10, &x, why, whylen)) != TCA_OK)
			return r;
		if (k[4] == 'm' && k[5] == 'i')
			cfg->pin_min = (unsigned int)x;
		else
			cfg->pin_max = (unsigned int)x;
		return TCA_OK;
	}
	if (strcmp(k, "init_so_pin") == 0) {
		if (strcmp(v, "given") == 0 || strcmp(v, "current") == 0) {
			cfg->init_so_pin_current = strcmp(v, "current") == 0;
			return TCA_OK;
		}
		snprintf(why, whylen, "expected given or current");
		return TCA_ERR_CONFIG;
	}
	if (strcmp(k, "call_timeout_ms") == 0) {
		if ((r = parse_uint(v, 0, 600000, 10, &x, why, whylen)) != TCA_OK)
			return r;
		if (x != 0 && x < 100) {
			snprintf(why, whylen, "must be 0 (unbounded) or at least 100");
			return TCA_ERR_CONFIG;
		}
		pc->call_timeout_ms = (unsigned int)x;
		pc->call_timeout_given = 1;
		return TCA_OK;
	}
	if (strcmp(k, "idle_timeout_s") == 0) {
		if ((r = parse_uint(v, 0, 86400, 10, &x, why, whylen)) == TCA_OK)
			cfg->quirks.idle_timeout_ms = x * 1000;
		return r;
	}
	if (strcmp(k, "recovery") == 0) {
		if (strcmp(v, "reopen-sessions") == 0 || strcmp(v, "reinit") == 0) {
			cfg->quirks.reinit_on_session_loss = strcmp(v, "reinit") == 0;
			return TCA_OK;
		}
		snprintf(why, whylen, "expected reopen-sessions or reinit");
		return TCA_ERR_CONFIG;
	}
	if (strncmp(k, "env.", 4) == 0) {
		const char *name = k + 4;
		size_t i;

		if (*name == '\0' || strlen(name) >= sizeof(cfg->env[0].name) ||
		    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
		    strlen(name) || isdigit((unsigned char)*name)) {
			snprintf(why, whylen, "env.NAME: NAME must be an environment variable name");
			return TCA_ERR_CONFIG;
		}
		if (cfg->n_env >= TCA_PROFILE_MAX_ENV) {
			snprintf(why, whylen, "at most %d env.* keys", TCA_PROFILE_MAX_ENV);
			return TCA_ERR_CONFIG;
		}
		for (i = 0; i < cfg->n_env; i++)
			if (strcmp(cfg->env[i].name, name) == 0) {
				snprintf(why, whylen, "set twice");
				return TCA_ERR_CONFIG;
			}
		if ((r = parse_str(v, cfg->env[cfg->n_env].value, sizeof(cfg->env[0].value), 1,
		    why, whylen)) != TCA_OK)
			return r;
		snprintf(cfg->env[cfg->n_env].name, sizeof(cfg->env[0].name), "%s", name);
		cfg->n_env++;
		return TCA_OK;
	}
	snprintf(why, whylen, "unknown profile key");
	return TCA_ERR_CONFIG;
}

void
tca_profile_path_in(const char *etc_dir, const char *data_dir, const char *profile,
    char *out, size_t outsz)
{
	struct stat st;

	/* an administrator's profile of the same name replaces the shipped one;
	 * lstat: a dangling symlink there is still the administrator's choice,
	 * and loading it then fails naming it */
	snprintf(out, outsz, "%s/%s.conf", etc_dir, profile);
	if (lstat(out, &st) == 0)
		return;
	snprintf(out, outsz, "%s/%s.conf", data_dir, profile);
}

void
tca_profile_path(const struct tca_config *cfg, const char *profile, char *out, size_t outsz)
{
	if (strchr(profile, '/') != NULL)
		snprintf(out, outsz, "%s", profile);
	else if (cfg->profiles_dir[0] != '\0')
		snprintf(out, outsz, "%s/%s.conf", cfg->profiles_dir, profile);
	else
		tca_profile_path_in(TCA_PROFILES_ETC_DIR, TCA_PROFILES_DATA_DIR, profile,
		    out, outsz);
}

int
tca_profile_load(const char *path, struct tca_config *cfg, char *err, size_t errlen)
{
	struct profile_ctx pc;
	int r;

	memset(&pc, 0, sizeof(pc));
	pc.cfg = cfg;
	if ((r = tca_kv_parse_file(path, profile_kv, &pc, err, errlen)) != TCA_OK)
		return r;
	if (cfg->module[0] == '\0') {
		if (pc.module[0] == '\0') {
			snprintf(err, errlen, "%s: profile names no module", path);
			return TCA_ERR_CONFIG;
		}
		memcpy(cfg->module, pc.module, sizeof(cfg->module));
	}
	/* a deployment's own token.init_args (NSS: its configdir) wins */
	if (cfg->init_args[0] == '\0')
		memcpy(cfg->init_args, pc.init_args, sizeof(cfg->init_args));
	/* so does its token.call_timeout_ms */
	if (!cfg->call_timeout_set && pc.call_timeout_given)
		cfg->call_timeout_ms = pc.call_timeout_ms;
	return TCA_OK;
}

int
tca_config_checkpoint_key_file(const struct tca_config *cfg, char *out, size_t outlen)
{
	int n;

	if (cfg->checkpoint_key_file[0] != '\0')
		n = snprintf(out, outlen, "%s", cfg->checkpoint_key_file);
	else if (cfg->store_path[0] != '\0')
		n = snprintf(out, outlen, "%s.audit-key.pem", cfg->store_path);
	else
		n = snprintf(out, outlen, "%s", "");
	return n >= 0 && (size_t)n < outlen && out[0] != '\0' ? TCA_OK : TCA_ERR_CONFIG;
}

int
tca_config_store(struct tca_config *cfg, const char *path, char *err, size_t errlen)
{
	const char *backend, *file;
	char shown[1024];

	if (cfg->store_uri_set && cfg->store_path_set) {
		snprintf(err, errlen, "%s: both store.uri and store.path are set; keep "
		    "one (store.path = P means store.uri = sqlite:P)", path);
		return TCA_ERR_CONFIG;
	}
	if (!cfg->store_uri_set &&
	    (size_t)snprintf(cfg->store_uri, sizeof(cfg->store_uri), "sqlite:%s",
	    cfg->store_path) >= sizeof(cfg->store_uri)) {
		snprintf(err, errlen, "%s: store.path too long", path);
		return TCA_ERR_CONFIG;
	}
	tca_store_uri_redact(cfg->store_uri, shown, sizeof(shown));
	if ((backend = tca_store_uri_backend(cfg->store_uri, &file)) == NULL) {
		snprintf(err, errlen, "%s: store.uri %s: unknown URI scheme (accepted: "
		    "sqlite:PATH, a file path, postgresql://..., postgres://... or a "
		    "libpq key=value string)", path, shown);
		return TCA_ERR_CONFIG;
	}
	if (strcmp(backend, "sqlite") != 0) {
		cfg->store_path[0] = '\0';
		return TCA_OK;
	}
	if (*file == '\0') {
		snprintf(err, errlen, "%s: store.uri %s names no file", path, shown);
		return TCA_ERR_CONFIG;
	}
	if (strlen(file) >= sizeof(cfg->store_path)) {
		snprintf(err, errlen, "%s: store.uri: file path too long", path);
		return TCA_ERR_CONFIG;
	}
	memmove(cfg->store_path, file, strlen(file) + 1);
	return TCA_OK;
}

/* The checks across keys, after every line was read. */
static int
config_check(struct tca_config *cfg, const char *path, char *err, size_t errlen)
{
	int r;

	if (cfg->token_uri[0] == '\0') {
		snprintf(err, errlen, "%s: token.uri is required", path);
		return TCA_ERR_CONFIG;
	}
	if ((r = tca_config_store(cfg, path, err, errlen)) != TCA_OK)
		return r;
	if ((cfg->pin_file[0] == '\0') == (cfg->pin_env[0] == '\0')) {
		snprintf(err, errlen, "%s: set exactly one of token.pin_file and token.pin_env", path);
		return TCA_ERR_CONFIG;
	}
	/* a restarted helper must read the PIN again; the engine cannot hand
	 * it one without holding it */
	if (cfg->isolation == TCA_ISOLATION_PROCESS && cfg->pin_env[0] != '\0') {
		snprintf(err, errlen, "%s: token.isolation = process needs token.pin_file (a "
		    "restarted helper reads the PIN again); use a PIN file, or "
		    "token.isolation = none with token.pin_env", path);
		return TCA_ERR_CONFIG;
	}
	if (cfg->retry_max_s < cfg->retry_min_s) {
		snprintf(err, errlen, "%s: reissue.retry_max_s is below reissue.retry_min_s", path);
		return TCA_ERR_CONFIG;
	}
	if (cfg->admin_reserved_connections >= cfg->max_connections) {
		snprintf(err, errlen, "%s: rpc.admin_reserved_connections (%u) must be below "
		    "rpc.max_connections (%u)", path, cfg->admin_reserved_connections,
		    cfg->max_connections);
		return TCA_ERR_CONFIG;
	}
	if (cfg->alert_command[0] != '\0' && cfg->alert_command[0] != '/') {
		snprintf(err, errlen, "%s: alert.command must be an absolute path", path);
		return TCA_ERR_CONFIG;
	}
	if (cfg->checkpoint_key_file[0] != '\0' && cfg->checkpoint_key_file[0] != '/') {
		snprintf(err, errlen, "%s: journal.checkpoint_key_file must be an absolute path",
		    path);
		return TCA_ERR_CONFIG;
	}
	if (cfg->checkpoint_interval_s > 0 && cfg->store_path[0] == '\0' &&
	    cfg->checkpoint_key_file[0] == '\0') {
		snprintf(err, errlen, "%s: journal.checkpoint_interval_s with a store that "
		    "is not a SQLite file needs journal.checkpoint_key_file (where the "
		    "audit public key is written)", path);
		return TCA_ERR_CONFIG;
	}
	if (cfg->checkpoint_command[0] != '\0' && cfg->checkpoint_command[0] != '/') {
		snprintf(err, errlen, "%s: journal.checkpoint_command must be an absolute path",
		    path);
		return TCA_ERR_CONFIG;
	}
	return TCA_OK;
}

/* Defaults, path into cfg->path. */
static int
config_start(const char *path, struct tca_config *cfg, char *err, size_t errlen)
{
	tca_config_defaults(cfg);
	if (strlen(path) >= sizeof(cfg->path)) {
		snprintf(err, errlen, "configuration path too long");
		return TCA_ERR_CONFIG;
	}
	memcpy(cfg->path, path, strlen(path) + 1);
	return TCA_OK;
}

int
tca_config_parse_buffer(const char *name, const char *buf, size_t len,
    struct tca_config *cfg, char *err, size_t errlen)
{
	int r;

	if ((r = config_start(name, cfg, err, errlen)) != TCA_OK ||
	    (r = tca_kv_parse_buffer(name, buf, len, config_kv, cfg, err, errlen)) != TCA_OK)
		return r;
	return config_check(cfg, name, err, errlen);
}

int
tca_config_load(const char *path, struct tca_config *cfg, char *err, size_t errlen)
{
	char ppath[2 * PATH_MAX + 16];
	int r;

	if ((r = config_start(path, cfg, err, errlen)) != TCA_OK ||
	    (r = tca_kv_parse_file(path, config_kv, cfg, err, errlen)) != TCA_OK ||
	    (r = config_check(cfg, path, err, errlen)) != TCA_OK)
		return r;
	tca_profile_path(cfg, cfg->profile, ppath, sizeof(ppath));
	return tca_profile_load(ppath, cfg, err, errlen);
}
