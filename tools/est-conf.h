/*
 * est-conf.h - tca-estd's configuration: a "key = value" file (docs/est.md),
 * parsed here and nowhere else.  The same syntax as the engine's file, but its
 * own small parser: tca-estd links nothing of the engine.
 */
#ifndef TCA_EST_CONF_H
#define TCA_EST_CONF_H

#include <stddef.h>

#define EST_TENANT_MAX 64	/* docs/rpc.md section 7: tenant names */
#define EST_HOSTNAME_MAX 253
#define EST_HOSTS_MAX 1024	/* tenant.host.* lines */
#define EST_PATH_MAX 4096

enum est_auth {
	EST_AUTH_OTP = 0,	/* simpleenroll: HTTP Basic, device id + one-time password */
	EST_AUTH_NONE = 1,	/* simpleenroll: no credential (the engine's tenant
				 * policy says registration=none) */
};

struct est_host {
	char host[EST_HOSTNAME_MAX + 1];	/* lower case */
	char tenant[EST_TENANT_MAX + 1];
};

struct est_config {
	char listen_address[64];	/* numeric IPv4 or IPv6 */
	unsigned int listen_port;	/* 0: any free port (see --port-file) */
	unsigned int listen_backlog;
	char tls_cert_file[EST_PATH_MAX];
	char tls_key_file[EST_PATH_MAX];
	char tls_priorities[512];	/* GnuTLS priority string */
	char engine_socket[108];
	unsigned int engine_timeout_ms;	/* per engine call */
	unsigned int engine_max_connections;	/* concurrent engine connections */
	unsigned int engine_wait_ms;	/* wait for a free one, then 503 */
	enum est_auth auth;
	char realm[64];
	size_t max_body;		/* request body cap (base64 CSR) */
	size_t max_discard;		/* larger bodies up to this are read and dropped */
	unsigned int max_connections;	/* HTTP connections (one thread each) */
	unsigned int max_connections_per_ip;	/* 0: no per-address limit */
	unsigned int timeout_s;		/* idle / slow connection timeout */
	unsigned int retry_after_s;	/* Retry-After of a 503 */
	char default_tenant[EST_TENANT_MAX + 1];	/* "" = none */
	char host_suffix[EST_HOSTNAME_MAX + 1];	/* "" = none; lower case */
	struct est_host *hosts;
	size_t n_hosts;
	int log_level;			/* LOG_INFO or LOG_DEBUG */
	int log_syslog;
};

/* Defaults (docs/est.md).  Free with est_config_free(). */
void est_config_defaults(struct est_config *cfg);
void est_config_free(struct est_config *cfg);

/* Reads path over the defaults: 0, or -1 with "path:line: key: why" in err.
 * Unknown keys, keys set twice and missing required keys (tls.cert_file,
 * tls.key_file) are errors. */
int est_config_load(const char *path, struct est_config *cfg, char *err, size_t errlen);

/* 1 if s is a valid tenant name (1..64 of A-Z a-z 0-9 . _ -, first a letter
 * or digit), else 0. */
int est_tenant_valid(const char *s, size_t len);

/* The tenant for a request without a label in its path: Host header value
 * host (may carry ":port"; NULL if absent) through tenant.host.*, then
 * tenant.host_suffix, then tenant.default.  0 with out filled, or -1. */
int est_config_tenant_for_host(const struct est_config *cfg, const char *host,
    char *out, size_t outsz);

#endif
