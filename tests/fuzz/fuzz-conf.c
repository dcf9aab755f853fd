/*
 * fuzz-conf.c - fuzz target "conf": the engine's configuration parser
 * (engine/conf.c), through tca_config_parse_buffer: the same line parser,
 * value parsers and checks across keys as tca_config_load, on a buffer
 * (the hsm-profile the configuration names is not read).
 *
 * The input is a configuration file's bytes.  Inputs longer than 64 KiB are
 * skipped (a configuration is a few hundred bytes; the parser bounds lines at
 * 4096 bytes anyway).
 *
 * Invariants checked: every string field of an accepted configuration is
 * NUL-terminated within its buffer, the id lists within TCA_MAX_IDS, and
 * the keys the checks across keys require are there.
 */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "fuzz.h"
#include "tca-error.h"

#define CONF_FUZZ_MAX_INPUT (64 * 1024)

static struct tca_config cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

#define TERMINATED(field) FUZZ_ASSERT(memchr(cfg.field, '\0', sizeof(cfg.field)) != NULL)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	unsigned int i;

	if (size > CONF_FUZZ_MAX_INPUT)
		return 0;
	err[0] = '\0';
	if (tca_config_parse_buffer("fuzz.conf", (const char *)data, size, &cfg, err,
	    sizeof(err)) != TCA_OK) {
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	TERMINATED(path);
	TERMINATED(socket_path);
	TERMINATED(profile);
	TERMINATED(profiles_dir);
	TERMINATED(module);
	TERMINATED(token_uri);
	TERMINATED(pin_file);
	TERMINATED(pin_env);
	TERMINATED(init_args);
	TERMINATED(store_path);
	TERMINATED(ca_organization);
	TERMINATED(ca_country);
	TERMINATED(alert_command);
	TERMINATED(testing_clock_file);
	FUZZ_ASSERT(cfg.token_uri[0] != '\0');
	FUZZ_ASSERT((cfg.pin_file[0] == '\0') != (cfg.pin_env[0] == '\0'));
	FUZZ_ASSERT(cfg.retry_min_s <= cfg.retry_max_s);
	FUZZ_ASSERT(cfg.admin_reserved_connections < cfg.max_connections);
	FUZZ_ASSERT(cfg.frontend_uids.n <= TCA_MAX_IDS && cfg.frontend_gids.n <= TCA_MAX_IDS &&
	    cfg.admin_uids.n <= TCA_MAX_IDS && cfg.admin_gids.n <= TCA_MAX_IDS);
	FUZZ_ASSERT(cfg.n_env <= TCA_PROFILE_MAX_ENV);
	for (i = 0; i < cfg.n_env; i++)
		FUZZ_ASSERT(memchr(cfg.env[i].value, '\0', sizeof(cfg.env[i].value)) != NULL);
	return 0;
}
