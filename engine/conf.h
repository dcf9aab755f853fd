/*
 * conf.h - the engine configuration file and hsm-profiles.
 *
 * Format (both): one "key = value" per line; '#' starts a comment line;
 * blank lines ignored; keys are dotted names; values are taken verbatim after
 * trimming surrounding blanks (no quoting).  Unknown keys, repeated keys and
 * malformed values are errors naming file and line.  Every key, its default
 * and whether SIGHUP re-reads it is listed in docs/configuration.md.
 */
#ifndef TCA_CONF_H
#define TCA_CONF_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "certs.h"
#include "keytype.h"
#include "schedule.h"
#include "token.h"

#define TCA_MAX_IDS 64

struct tca_id_list {
	size_t n;
	unsigned long ids[TCA_MAX_IDS];
};

#define TCA_PROFILE_MAX_ENV 8

#define TCA_ISOLATION_NONE	0
#define TCA_ISOLATION_PROCESS	1
/* none: the helper costs about a quarter of the issuance rate on SoftHSMv2
 * (docs/performance.md, "Privilege separation"), outside the targets */
#define TCA_ISOLATION_DEFAULT	TCA_ISOLATION_NONE

struct tca_config {
	char path[PATH_MAX];	/* the file this was loaded from */
	/* socket */
	char socket_path[108];
	unsigned int socket_mode;	/* default 0660 */
	long socket_gid;		/* -1 = leave as created */
	/* rpc */
	size_t max_frame;		/* 65536 */
	int frame_timeout_ms;		/* reload: yes */
	int idle_timeout_ms;		/* reload: yes */
	unsigned int max_connections;
	unsigned int max_connections_per_uid;	/* 32; 0 = no per-uid bound */
	unsigned int admin_reserved_connections;	/* 8: slots only admin peers may take */
	/* roles (reload: yes) */
	struct tca_id_list frontend_uids, frontend_gids, admin_uids, admin_gids;
	/* token */
	char profile[PATH_MAX];		/* name or path */
	char profiles_dir[PATH_MAX];
	char module[PATH_MAX];		/* from the profile unless set */
	char token_uri[1024];
	char pin_file[PATH_MAX];
	char pin_env[64];
	unsigned int pool_size;
	char init_args[1024];		/* C_Initialize pReserved; from the profile unless set */
	unsigned int recovery_wait_ms;	/* requests wait this long for a recovering token */
	/* a hung signature call fails the request; 0 = unbounded.  From the
	 * profile (network HSMs bound it) unless the configuration sets it. */
	unsigned int call_timeout_ms;
	int call_timeout_set;		/* token.call_timeout_ms was given */
	/* token.isolation: the module and the PIN in the tca-tokend helper
	 * process (TCA_ISOLATION_PROCESS) or in the engine (NONE) */
	int isolation;
	char helper_path[PATH_MAX];	/* token.helper; "" = beside tca-engined,
					 * else $(pkglibexecdir)/tca-tokend */
	struct tca_token_quirks quirks;	/* from the profile */
	char profile_name[64];
	/* from the profile: PIN length bounds (0 = none), how C_InitToken takes
	 * the SO PIN, environment the module needs */
	unsigned int pin_min, pin_max;
	int init_so_pin_current;	/* C_InitToken wants the module's current SO PIN */
	unsigned int n_env;
	struct {
		char name[64];
		char value[512];
	} env[TCA_PROFILE_MAX_ENV];
	/* store: store.uri, or store.path P meaning store.uri = sqlite:P (not
	 * both).  store_uri is the effective URI (tca_store_open); store_path
	 * the SQLite file it names, "" for another backend - the file checks,
	 * the lock and the audit key file beside it are SQLite-store matters. */
	char store_uri[1024];
	char store_path[PATH_MAX];
	int store_uri_set, store_path_set;	/* which of the two keys were given */
	unsigned int group_commit_max;
	/* CA and device policy (reload: yes, applies to new CAs/certificates) */
	char ca_organization[65];
	char ca_country[3];
	unsigned int ca_validity_days;
	enum tca_key_type ca_default_key_type;
	unsigned int device_validity_days;
	/* CRLs and OCSP (reload: yes) */
	unsigned int crl_validity_hours;	/* 168 */
	unsigned int crl_refresh_percent;	/* 50 */
	unsigned int ocsp_validity_s;		/* 3600 */
	/* device registration (reload: yes) */
	int registration_required;		/* device.registration: required (1) | none (0) */
	unsigned int otp_max_failures;		/* 5 */
	unsigned int otp_expiry_days;		/* 30; 0 = registrations do not expire */
	unsigned int min_validity_days;		/* device.min_validity_days: 0 = off */
	/* logging (reload: yes) */
	int log_level;
	int log_syslog;
	/* yearly re-issuance (restart) */
	int schedule_enabled;
	struct tca_schedule schedule;
	enum tca_serial_mode reissue_serial;
	unsigned int retry_min_s, retry_max_s;
	unsigned int reissue_workers;	/* threads re-issuing during a pass */
	unsigned int reissue_rate;	/* re-issuances started per second; 0 = unpaced */
	/* alerts (reload: yes) */
	char alert_command[PATH_MAX];
	unsigned int alert_expiry_window_days;
	unsigned int alert_timeout_s;
	/* systemd watchdog (restart): withhold it once the token has not been
	 * ok for this long; 0 = never (sd-notify.h) */
	unsigned int watchdog_token_down_s;
	/* signed journal checkpoints (restart only; checkpoint.h) */
	unsigned int checkpoint_interval_s;	/* 0 = off */
	char checkpoint_command[PATH_MAX];	/* "" = log only */
	char checkpoint_key_file[PATH_MAX];	/* the audit public key; "": beside a
						 * SQLite store (tca_config_checkpoint_key_file) */
	/* test hook: read "now" (unix seconds) from this file instead of the clock */
	char testing_clock_file[PATH_MAX];
	/* test hook: 0 = no thread following other engines' changes (the
	 * store's own checks and the cache-miss sync remain; engine-sync.c) */
	int testing_follow;
};

/* Fills cfg with the defaults. */
void tca_config_defaults(struct tca_config *cfg);

/* Defaults, then path, then the hsm-profile it names (module, quirks).
 * TCA_OK or TCA_ERR_CONFIG with "file:line: reason" in err. */
int tca_config_load(const char *path, struct tca_config *cfg, char *err, size_t errlen);

/*
 * The store keys of cfg as read from the file path (named in messages):
 * refuses store.uri and store.path both set, or a store.uri of no known
 * form; sets store_uri (store.path P: "sqlite:P") and store_path (the
 * SQLite file, "" for another backend).  Called by tca_config_load and
 * tca_config_parse_buffer.
 */
int tca_config_store(struct tca_config *cfg, const char *path, char *err, size_t errlen);

/*
 * Where the journal audit key's public key lives: journal.checkpoint_key_file,
 * else beside a SQLite store (store.path + ".audit-key.pem").  TCA_OK, or
 * TCA_ERR_CONFIG when neither applies (another backend and no key file) or
 * the path does not fit (out is then "").
 */
int tca_config_checkpoint_key_file(const struct tca_config *cfg, char *out, size_t outlen);

/*
 * As tca_config_load on the configuration held in buf[0..len) (name stands
 * for the file in messages and cfg->path), except that the hsm-profile it
 * names is not read: defaults, every line, and the checks across keys.  The
 * same parser and the same messages as a file; for the fuzz target
 * (tests/fuzz/fuzz-conf.c) and tests.
 */
int tca_config_parse_buffer(const char *name, const char *buf, size_t len,
    struct tca_config *cfg, char *err, size_t errlen);

/* Reads one hsm-profile file into cfg (module unless already set, quirks,
 * profile_name). */
int tca_profile_load(const char *path, struct tca_config *cfg, char *err, size_t errlen);

/* Puts the profile's env.NAME values into the environment, except where the
 * environment already has NAME (the service manager's word wins).  Call before
 * loading the module. */
void tca_profile_apply_env(const struct tca_config *cfg);

/* TCA_OK if pin_len is within the profile's pin_min..pin_max, else
 * TCA_ERR_CONFIG with the bounds in why. */
int tca_profile_check_pin(const struct tca_config *cfg, size_t pin_len, const char *what,
    char *why, size_t whylen);

/*
 * Resolves an hsm-profile name ("softhsm2") to a file: a value containing '/'
 * is a path and taken as is; with token.profiles_dir set (profiles_dir
 * non-empty) it is profiles_dir/name.conf; otherwise the administrator's
 * TCA_SYSCONFDIR/tca/hsm-profiles/name.conf if that exists, else the shipped
 * TCA_DATADIR/tca/hsm-profiles/name.conf.
 */
void tca_profile_path(const struct tca_config *cfg, const char *profile,
    char *out, size_t outsz);

/* The lookup of tca_profile_path without token.profiles_dir, in the
 * directories given (tests): etc_dir/name.conf if it exists (lstat), else
 * data_dir/name.conf. */
void tca_profile_path_in(const char *etc_dir, const char *data_dir, const char *profile,
    char *out, size_t outsz);

/* The two directories tca_profile_path searches by default (Makefile.am
 * passes sysconfdir and datadir). */
#ifndef TCA_SYSCONFDIR
#define TCA_SYSCONFDIR "/etc"
#endif
#ifndef TCA_DATADIR
#define TCA_DATADIR "/usr/share"
#endif
#define TCA_PROFILES_ETC_DIR TCA_SYSCONFDIR "/tca/hsm-profiles"
#define TCA_PROFILES_DATA_DIR TCA_DATADIR "/tca/hsm-profiles"

/* Parses "1, 2,3" into list.  TCA_OK or TCA_ERR_CONFIG. */
int tca_parse_id_list(const char *value, struct tca_id_list *list);
int tca_id_list_contains(const struct tca_id_list *list, unsigned long id);

/* Generic line parser used by both file kinds: calls cb(ctx, key, value,
 * lineno, err, errlen) for every setting; stops at the first non-zero return. */
typedef int (*tca_kv_cb)(void *ctx, const char *key, const char *value,
    char *err, size_t errlen);
int tca_kv_parse_file(const char *path, tca_kv_cb cb, void *ctx, char *err, size_t errlen);
/* The same on buf[0..len) (a NUL inside a line ends it there, as in a file);
 * name stands for the file in messages. */
int tca_kv_parse_buffer(const char *name, const char *buf, size_t len, tca_kv_cb cb,
    void *ctx, char *err, size_t errlen);

#endif
