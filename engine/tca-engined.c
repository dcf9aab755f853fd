/*
 * tca-engined - the multi-tenant CA signing engine daemon.
 *
 * Start-up order: configuration and hsm-profile -> owner and mode of every
 * file and directory they name (fileperm.h) -> PIN (file or environment,
 * wiped right after login) -> token (session pool, login, key index) -> state
 * store -> group committer -> engine (CA cache) -> socket.  A socket passed by
 * systemd (sd-listen.h) is checked right after the configuration, before the
 * PIN.  Shutdown runs the other way round after the server has drained.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "committer.h"
#include "conf.h"
#include "engine.h"
#include "fileperm.h"
#include "log.h"
#include "renewal.h"
#include "rpc-ops.h"
#include "sd-listen.h"
#include "sd-notify.h"
#include "secret.h"
#include "server.h"
#include "checkpoint.h"
#include "store.h"
#include "tca-error.h"
#include "token.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void
on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void
on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
}

struct daemon {
	struct tca_config cfg;
	tca_token *tok;
	tca_store *st;
	tca_committer *cm;
	tca_engine *engine;
	tca_server *server;
	tca_renewal *renewal;
	tca_sd_watch *watch;		/* systemd notifications; NULL without */
	tca_checkpointer *checkpoints;	/* journal.checkpoint_interval_s > 0 */
	pthread_mutex_t reload_lock;
};

/*
 * Test hook (testing.clock_file): "now" is the unix time written in that
 * file, so tests can move the engine through 2 October without waiting.
 * Unreadable contents fall back to the real clock.
 */
static time_t
file_clock(void *ctx)
{
	const char *path = ctx;
	char buf[32];
	FILE *f;
	long long v;

	if ((f = fopen(path, "re")) == NULL)
		return time(NULL);
	if (fgets(buf, sizeof(buf), f) == NULL || sscanf(buf, "%lld", &v) != 1 || v <= 0) {
		fclose(f);
		return time(NULL);
	}
	fclose(f);
	return (time_t)v;
}

static void
policy_from_config(const struct tca_config *cfg, struct tca_policy *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->ca_organization, sizeof(p->ca_organization), "%s", cfg->ca_organization);
	snprintf(p->ca_country, sizeof(p->ca_country), "%s", cfg->ca_country);
	p->ca_validity_days = cfg->ca_validity_days;
	p->ca_default_key_type = cfg->ca_default_key_type;
	p->device_validity_days = cfg->device_validity_days;
	p->crl_validity_hours = cfg->crl_validity_hours;
	p->crl_refresh_percent = cfg->crl_refresh_percent;
	p->ocsp_validity_s = cfg->ocsp_validity_s;
	p->registration_required = cfg->registration_required;
	p->otp_max_failures = cfg->otp_max_failures;
	p->otp_expiry_days = cfg->otp_expiry_days;
	p->device_min_validity_days = cfg->min_validity_days;
	p->ca_expiry_window_days = cfg->alert_expiry_window_days;
}

static void
roles_from_config(const struct tca_config *cfg, struct tca_roles *roles)
{
	roles->frontend_uids = cfg->frontend_uids;
	roles->frontend_gids = cfg->frontend_gids;
	roles->admin_uids = cfg->admin_uids;
	roles->admin_gids = cfg->admin_gids;
}

static void
append(char *buf, size_t bufsz, const char *what)
{
	size_t l = strlen(buf);

	snprintf(buf + l, bufsz - l, "%s%s", l > 0 ? "," : "", what);
}

/*
 * After the token refused the PIN the engine waits for an operator: reload
 * re-reads token.pin_file (the PIN from token.pin_env was taken at start and
 * is reused) and has the supervisor log in again.
 */
static void
retry_refused_pin(struct daemon *d, char *what, size_t whatlen)
{
	struct tca_token_status ts;
	char err[256], *pin = NULL;
	size_t pin_len = 0;

	if (tca_token_get_status(d->tok, &ts) != TCA_OK || strcmp(ts.health, "pin-refused") != 0)
		return;
	/* with the helper, the engine never reads the PIN: the helper does */
	if (strcmp(ts.isolation, "process") != 0 && d->cfg.pin_file[0] != '\0' &&
	    tca_secret_read_file(d->cfg.pin_file, &pin, &pin_len, err, sizeof(err)) != TCA_OK) {
		log_error("reload: PIN: %s; the token stays without login", err);
		return;
	}
	if (tca_token_retry(d->tok, pin, pin_len) == TCA_OK)
		append(what, whatlen, "token login retried");
	tca_secret_free(pin, pin_len);
}

/*
 * Re-reads the configuration file.  Applied: roles, rpc timeouts, log level,
 * CA/device policy for new certificates.  Everything else (socket, token,
 * store, pool, frame cap) needs a restart: a change there is reported and
 * ignored, so a bad edit cannot take a running engine off its token.  A file
 * that does not parse, or one that names (or is) a path others could write
 * (tca_fileperm_check_config), is refused as a whole.
 */
static int
reload_config(void *vctx, char *what, size_t whatlen, char *why, size_t whylen)
{
	struct daemon *d = vctx;
	struct tca_config *ncfg;
	struct tca_roles roles;
	struct tca_policy pol;
	char err[1024] = "";
	int r;

	if ((ncfg = malloc(sizeof(*ncfg))) == NULL)
		return TCA_ERR_NOMEM;
	pthread_mutex_lock(&d->reload_lock);
	if ((r = tca_config_load(d->cfg.path, ncfg, err, sizeof(err))) != TCA_OK ||
	    (r = tca_fileperm_check_config(ncfg, err, sizeof(err))) != TCA_OK) {
		log_error("reload refused, keeping the running configuration: %s", err);
		snprintf(why, whylen, "configuration not reloaded: %s", err);
		goto out;
	}
#define RESTART_ONLY(field, name) \
	if (memcmp(&ncfg->field, &d->cfg.field, sizeof(ncfg->field)) != 0) \
		log_warn("reload: %s changed; it takes effect only after a restart", name);
	RESTART_ONLY(socket_path, "socket.path")
	RESTART_ONLY(socket_mode, "socket.mode")
	RESTART_ONLY(token_uri, "token.uri")
	RESTART_ONLY(module, "token.module/profile")
	RESTART_ONLY(pin_file, "token.pin_file")
	RESTART_ONLY(pool_size, "token.pool_size")
	RESTART_ONLY(isolation, "token.isolation")
	RESTART_ONLY(helper_path, "token.helper")
	RESTART_ONLY(store_uri, "store.uri/store.path")
	RESTART_ONLY(max_frame, "rpc.max_frame")
	RESTART_ONLY(max_connections, "rpc.max_connections")
	RESTART_ONLY(max_connections_per_uid, "rpc.max_connections_per_uid")
	RESTART_ONLY(admin_reserved_connections, "rpc.admin_reserved_connections")
	RESTART_ONLY(schedule_enabled, "schedule.enabled")
	RESTART_ONLY(schedule, "schedule.at/schedule.tz")
	RESTART_ONLY(reissue_serial, "reissue.serial")
	RESTART_ONLY(reissue_workers, "reissue.workers")
	RESTART_ONLY(reissue_rate, "reissue.rate")
	RESTART_ONLY(watchdog_token_down_s, "watchdog.token_down_s")
	RESTART_ONLY(checkpoint_interval_s, "journal.checkpoint_interval_s")
	RESTART_ONLY(checkpoint_command, "journal.checkpoint_command")
	RESTART_ONLY(checkpoint_key_file, "journal.checkpoint_key_file")
#undef RESTART_ONLY
	what[0] = '\0';
	roles_from_config(ncfg, &roles);
	tca_server_update(d->server, &roles, ncfg->frame_timeout_ms, ncfg->idle_timeout_ms);
	append(what, whatlen, "roles");
	append(what, whatlen, "rpc timeouts");
	tca_log_set_level(ncfg->log_level);
	append(what, whatlen, "log.level");
	policy_from_config(ncfg, &pol);
	tca_engine_set_policy(d->engine, &pol);
	append(what, whatlen, "ca and device policy");
	tca_renewal_update_alerts(d->renewal, ncfg->alert_command,
	    ncfg->alert_expiry_window_days, ncfg->alert_timeout_s);
	append(what, whatlen, "alerts");
	retry_refused_pin(d, what, whatlen);
	/* keep the restart-only values as they are running */
	d->cfg.frontend_uids = ncfg->frontend_uids;
	d->cfg.frontend_gids = ncfg->frontend_gids;
	d->cfg.admin_uids = ncfg->admin_uids;
	d->cfg.admin_gids = ncfg->admin_gids;
	d->cfg.frame_timeout_ms = ncfg->frame_timeout_ms;
	d->cfg.idle_timeout_ms = ncfg->idle_timeout_ms;
	d->cfg.log_level = ncfg->log_level;
	log_notice("configuration reloaded: %s", what);
 out:
	pthread_mutex_unlock(&d->reload_lock);
	free(ncfg);
	return r;
}

static void
on_reload(void *vctx)
{
	char what[512], why[1024];

	(void)reload_config(vctx, what, sizeof(what), why, sizeof(why));
}

/* token.helper, else tca-tokend beside this program (a build tree), else
 * the installed one */
static void
helper_path(const struct tca_config *cfg, char *out, size_t outsz)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (cfg->helper_path[0] != '\0') {
		snprintf(out, outsz, "%s", cfg->helper_path);
		return;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(out, outsz, "%s/tca-tokend", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, outsz, "%s/tca-tokend", TCA_PKGLIBEXECDIR);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tca-engined --config FILE [--check-config] [--syslog]\n"
	    "\n"
	    "Multi-tenant CA signing engine: tenant CA keys in a PKCS#11 token,\n"
	    "device certificates over a Unix-socket RPC.  Runs in the foreground.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (docs/configuration.md)\n"
	    "  -t, --check-config  load and check the configuration and profile, then exit\n"
	    "  -s, --syslog        log to syslog instead of stderr\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the configuration.\n"
	    "Under systemd: takes the listening socket of tca-engined.socket (LISTEN_FDS),\n"
	    "notifies readiness and feeds the watchdog (NOTIFY_SOCKET, WATCHDOG_USEC).\n"
	    "hsm-profiles by name: %s, then %s.\n",
	    TCA_PROFILES_ETC_DIR, TCA_PROFILES_DATA_DIR);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "syslog", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	struct tca_token_params tp;
	struct tca_server_params sp;
	struct tca_rpc_ctx base;
	struct tca_policy pol;
	struct sigaction sa;
	const char *config_path = NULL;
	char err[1024] = "", *pin = NULL;
	char store_name[1024];
	size_t pin_len = 0;
	int ch, check_only = 0, force_syslog = 0, listen_fd = -1, hung, r, rc = 1;

	memset(&d, 0, sizeof(d));
	pthread_mutex_init(&d.reload_lock, NULL);
	while ((ch = getopt_long(argc, argv, "c:tsh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		case 's':
			force_syslog = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	tca_log_init("tca-engined", 0, LOG_INFO);
	/* systemd's environment, taken (and removed) before anything could fork */
	if (tca_sd_notify_init(err, sizeof(err)) != TCA_OK) {
		log_error("systemd: %s", err);
		return 1;
	}
	if (tca_rpc_ops_selfcheck(err, sizeof(err)) != TCA_OK) {
		log_error("operation table: %s", err);
		return 1;
	}
	if (tca_config_load(config_path, &d.cfg, err, sizeof(err)) != TCA_OK) {
		log_error("configuration: %s", err);
		return 1;
	}
	/* owner and mode of every file and directory the configuration names */
	if (tca_fileperm_check_config(&d.cfg, err, sizeof(err)) != TCA_OK) {
		log_error("configuration: %s", err);
		return 1;
	}
	tca_log_init("tca-engined", force_syslog || d.cfg.log_syslog, d.cfg.log_level);
	if (check_only) {
		printf("configuration OK: %s (profile %s, module %s)\n", config_path,
		    d.cfg.profile_name, d.cfg.module);
		return 0;
	}

	/* before the token: a descriptor limit that cannot hold the connections
	 * would otherwise show only as accept errors under load */
	if (tca_server_check_nofile(d.cfg.max_connections, err, sizeof(err)) != TCA_OK) {
		log_error("%s", err);
		return 1;
	}
	/* socket activation: the socket of tca-engined.socket, if it checks out
	 * (before the token: a unit that does not match the configuration fails
	 * at once) */
	if (tca_sd_listen_fd(d.cfg.socket_path, &listen_fd, err, sizeof(err)) != TCA_OK) {
		log_error("socket: %s", err);
		(void)tca_sd_notify("STOPPING=1");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	memset(&tp, 0, sizeof(tp));
	tp.module_path = d.cfg.module;
	tp.init_args = d.cfg.init_args[0] != '\0' ? d.cfg.init_args : NULL;
	tp.token_uri = d.cfg.token_uri;
	tp.pool_size = d.cfg.pool_size;
	tp.wait_ms = d.cfg.recovery_wait_ms;
	tp.call_timeout_ms = d.cfg.call_timeout_ms;
	tp.quirks = d.cfg.quirks;
	if (d.cfg.isolation == TCA_ISOLATION_PROCESS) {
		/* the helper loads the module and reads the PIN; this process
		 * does neither (docs/security.md) */
		struct tca_token_helper_params hp;
		char hpath[PATH_MAX + 16];

		helper_path(&d.cfg, hpath, sizeof(hpath));
		/* token.helper was checked with the configuration; the default too */
		if ((r = tca_fileperm_check(hpath, TCA_FILEPERM_HELPER, err, sizeof(err))) != TCA_OK)
			goto opened;
		memset(&hp, 0, sizeof(hp));
		hp.helper_path = hpath;
		hp.config_path = d.cfg.path;
		hp.syslog = force_syslog || d.cfg.log_syslog;
		r = tca_token_open_helper(&tp, &hp, &d.tok, err, sizeof(err));
		goto opened;
	}
	/* PIN: read, log in, wipe - it lives only for tca_token_open */
	r = d.cfg.pin_file[0] != '\0' ?
	    tca_secret_read_file(d.cfg.pin_file, &pin, &pin_len, err, sizeof(err)) :
	    tca_secret_take_env(d.cfg.pin_env, &pin, &pin_len, err, sizeof(err));
	if (r != TCA_OK) {
		log_error("PIN: %s", err);
		goto out;
	}
	if ((r = tca_profile_check_pin(&d.cfg, pin_len, "the PIN", err, sizeof(err))) != TCA_OK) {
		log_error("PIN: %s", err);
		goto out;
	}
	tca_profile_apply_env(&d.cfg);
	r = tca_token_open(&tp, pin, pin_len, &d.tok, err, sizeof(err));
	tca_secret_free(pin, pin_len);
	pin = NULL;
 opened:
	if (r != TCA_OK) {
		log_error("token: %s", err);
		goto out;
	}
	log_info("token open: %s via %s (%zu keys indexed, %u sessions, isolation %s)",
	    d.cfg.token_uri, d.cfg.module, tca_token_key_count(d.tok), d.cfg.pool_size,
	    tca_token_isolation(d.tok));
	/* TCA_STORE_EXCLUSIVE: the lock file of a SQLite store; a PostgreSQL
	 * store is shared by several engines and takes no lock */
	tca_store_uri_redact(d.cfg.store_uri, store_name, sizeof(store_name));
	if ((r = tca_store_open(d.cfg.store_uri, TCA_STORE_EXCLUSIVE, &d.st, err, sizeof(err))) != TCA_OK) {
		log_error("store: %s", err);
		goto out;
	}
	log_info("store open: %s (backend %s)", store_name, d.st->ops->name);
	/* journal chain (and certificates against it) before anything is served */
	if ((r = tca_journal_check_start(d.st, store_name, err, sizeof(err))) != TCA_OK) {
		log_error("store: %s", err);
		goto out;
	}
	if (d.cfg.checkpoint_interval_s > 0) {
		struct tca_checkpoint_params cp;

		memset(&cp, 0, sizeof(cp));
		/* journal.checkpoint_key_file, or beside a SQLite store (the
		 * configuration check refused another backend without it) */
		if ((r = tca_config_checkpoint_key_file(&d.cfg, cp.key_file,
		    sizeof(cp.key_file))) != TCA_OK) {
			log_error("journal checkpoints: no place for the audit public "
			    "key: set journal.checkpoint_key_file");
			goto out;
		}
		cp.interval_s = d.cfg.checkpoint_interval_s;
		snprintf(cp.command, sizeof(cp.command), "%s", d.cfg.checkpoint_command);
		cp.timeout_s = d.cfg.alert_timeout_s;
		if ((r = tca_checkpoint_start(d.tok, d.st, &cp, &d.checkpoints, err,
		    sizeof(err))) != TCA_OK) {
			log_error("journal checkpoints: %s", err);
			goto out;
		}
	}
	if ((r = tca_committer_start(d.st, d.cfg.group_commit_max, &d.cm)) != TCA_OK) {
		log_error("committer: %s", tca_strerror(r));
		goto out;
	}
	policy_from_config(&d.cfg, &pol);
	if ((r = tca_engine_new(d.tok, d.st, d.cm, &pol, &d.engine, err, sizeof(err))) != TCA_OK) {
		log_error("engine: %s", err);
		goto out;
	}
	/* engines sharing the store: follow what the others change */
	if (!d.cfg.testing_follow)
		log_warn("testing.follow_other_engines = false: this engine does not "
		    "follow other engines' changes. This is a test hook; never use it "
		    "in production.");
	else if ((r = tca_engine_follow(d.engine, err, sizeof(err))) != TCA_OK) {
		log_error("engine: %s", err);
		goto out;
	}
	if (d.cfg.testing_clock_file[0] != '\0') {
		log_warn("testing.clock_file is set: the engine's clock is read from %s. "
		    "This is a test hook; never use it in production.", d.cfg.testing_clock_file);
		tca_engine_set_clock(d.engine, file_clock, d.cfg.testing_clock_file);
	}
	if (d.cfg.schedule_enabled) {
		struct tca_renewal_params rp;

		memset(&rp, 0, sizeof(rp));
		rp.schedule = d.cfg.schedule;
		rp.serial_mode = d.cfg.reissue_serial;
		rp.retry_min_s = d.cfg.retry_min_s;
		rp.retry_max_s = d.cfg.retry_max_s;
		rp.workers = d.cfg.reissue_workers;
		rp.rate = d.cfg.reissue_rate;
		snprintf(rp.alert_command, sizeof(rp.alert_command), "%s", d.cfg.alert_command);
		rp.expiry_window_days = d.cfg.alert_expiry_window_days;
		rp.alert_timeout_s = d.cfg.alert_timeout_s;
		rp.poll_ms = d.cfg.testing_clock_file[0] != '\0' ? 200 : 60000;
		rp.store = d.st;	/* elected there: one leader among the nodes */
		if ((r = tca_renewal_start(d.engine, &rp, &d.renewal)) != TCA_OK) {
			log_error("re-issuance scheduler: %s", tca_strerror(r));
			goto out;
		}
	} else {
		log_notice("schedule.enabled = false: this node neither re-issues CAs nor "
		    "re-signs CRLs by itself (ca-admin ca reissue / crl sign do)");
		/* nor alerts: say once which CAs are expired or expiring */
		(void)tca_engine_warn_expiry(d.engine);
	}
	d.watch = tca_sd_watch_new(d.tok, d.cfg.watchdog_token_down_s);
	memset(&sp, 0, sizeof(sp));
	sp.listen_fd = listen_fd;
	sp.tick = tca_sd_watch_tick;
	sp.tick_ctx = d.watch;
	sp.socket_path = d.cfg.socket_path;
	sp.mode = d.cfg.socket_mode;
	sp.gid = d.cfg.socket_gid;
	sp.max_frame = d.cfg.max_frame;
	sp.frame_timeout_ms = d.cfg.frame_timeout_ms;
	sp.idle_timeout_ms = d.cfg.idle_timeout_ms;
	sp.max_connections = d.cfg.max_connections;
	sp.max_connections_per_uid = d.cfg.max_connections_per_uid;
	sp.admin_reserved_connections = d.cfg.admin_reserved_connections;
	roles_from_config(&d.cfg, &sp.roles);
	if ((r = tca_server_open(&sp, &d.server, err, sizeof(err))) != TCA_OK) {
		log_error("socket: %s", err);
		goto out;
	}
	listen_fd = -1;	/* the server's now */
	if (sp.listen_fd > 2)
		log_notice("socket activation: serving on the socket systemd passed (%s)",
		    d.cfg.socket_path);
	memset(&base, 0, sizeof(base));
	base.engine = d.engine;
	base.tok = d.tok;
	base.cm = d.cm;
	base.st = d.st;
	base.store_name = store_name;
	base.started = time(NULL);
	base.reload = reload_config;
	base.reload_ctx = &d;
	base.serial_mode = d.cfg.reissue_serial;
	base.schedule = d.cfg.schedule;
	base.renewal = d.renewal;
	log_notice("tca-engined %s ready", PACKAGE_VERSION);
	(void)tca_sd_notify("READY=1\nSTATUS=serving");
	r = tca_server_run(d.server, &base, &stop_flag, &reload_flag, on_reload, &d);
	rc = r == TCA_OK ? 0 : 1;
 out:
	(void)tca_sd_notify("STOPPING=1");
	if (listen_fd >= 0)
		close(listen_fd);
	tca_server_close(d.server);
	/* a re-issuance in progress completes (it goes through the committer) */
	tca_renewal_stop(d.renewal);
	/* the committer drains its queue: every answered request is durable */
	tca_committer_stop(d.cm);
	tca_checkpoint_stop(d.checkpoints);
	tca_engine_free(d.engine);
	if (d.st != NULL)
		d.st->ops->close(d.st);
	tca_sd_watch_free(d.watch);
	hung = tca_token_close(d.tok);
	if (pin != NULL)
		tca_secret_free(pin, pin_len);
	if (hung > 0) {
		/* a thread is still inside the module: exit() would run the
		 * module's exit handlers (SoftHSMv2's destructors) under it and
		 * crash there.  Everything of ours is closed and durable. */
		log_notice("tca-engined stopped (exit %d), leaving %d hung PKCS#11 calls to "
		    "the kernel", rc, hung);
		fflush(NULL);
		_exit(rc);
	}
	log_notice("tca-engined stopped (exit %d)", rc);
	return rc;
}
