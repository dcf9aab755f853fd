/* est-conf.c - tca-estd's configuration file (see est-conf.h, docs/est.md). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "est-conf.h"
#include "tca-client.h"

#define MAX_LINE 4096

/* AEAD suites with ECDHE only, TLS 1.3 and 1.2 (docs/est.md) */
#define DEFAULT_PRIORITIES "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

void
est_config_defaults(struct est_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_address, sizeof(cfg->listen_address), "0.0.0.0");
	cfg->listen_port = 8443;
	cfg->listen_backlog = 128;
	snprintf(cfg->tls_priorities, sizeof(cfg->tls_priorities), "%s", DEFAULT_PRIORITIES);
	snprintf(cfg->engine_socket, sizeof(cfg->engine_socket), "%s", TCA_CLIENT_DEFAULT_SOCKET);
	cfg->engine_timeout_ms = 30000;
	cfg->engine_max_connections = 16;
	cfg->engine_wait_ms = 5000;
	cfg->auth = EST_AUTH_OTP;
	snprintf(cfg->realm, sizeof(cfg->realm), "est");
	cfg->max_body = 16384;
	cfg->max_discard = 1024 * 1024;
	cfg->max_connections = 64;
	cfg->max_connections_per_ip = 32;
	cfg->timeout_s = 30;
	cfg->retry_after_s = 30;
	cfg->log_level = LOG_INFO;
}

void
est_config_free(struct est_config *cfg)
{
	free(cfg->hosts);
	cfg->hosts = NULL;
	cfg->n_hosts = 0;
}

int
est_tenant_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > EST_TENANT_MAX || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c < 0x80 && (isalnum(c) || c == '.' || c == '_' || c == '-')))
			return 0;
	}
	return 1;
}

/* a DNS name (or a suffix starting with '.'), lower-cased into out */
static int
hostname_norm(const char *v, int suffix, char *out, size_t outsz, char *why, size_t whylen)
{
	size_t i, len = strlen(v);

	if (len == 0 || len > EST_HOSTNAME_MAX || len >= outsz) {
		snprintf(why, whylen, "a host name of 1..%d characters", EST_HOSTNAME_MAX);
		return -1;
	}
	if (suffix && v[0] != '.') {
		snprintf(why, whylen, "a suffix starts with '.' (e.g. .est.example.com)");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!(c < 0x80 && (isalnum(c) || c == '.' || c == '-'))) {
			snprintf(why, whylen, "host names are letters, digits, '.' and '-'");
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
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

static int
parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out,
    char *why, size_t whylen)
{
	char *end;
	unsigned long x;

	if (*v < '0' || *v > '9') {
		snprintf(why, whylen, "expected a number");
		return -1;
	}
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0') {
		snprintf(why, whylen, "expected a number");
		return -1;
	}
	if (x < min || x > max) {
		snprintf(why, whylen, "must be between %lu and %lu", min, max);
		return -1;
	}
	*out = x;
	return 0;
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
		return -1;
	}
	return 0;
}

static int
parse_str(const char *v, char *out, size_t outsz, char *why, size_t whylen)
{
	if (*v == '\0') {
		snprintf(why, whylen, "must not be empty");
		return -1;
	}
	if (strlen(v) >= outsz) {
		snprintf(why, whylen, "longer than %zu characters", outsz - 1);
		return -1;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
parse_tenant(const char *v, char *out, size_t outsz, char *why, size_t whylen)
{
	if (!est_tenant_valid(v, strlen(v)) || strlen(v) >= outsz) {
		snprintf(why, whylen, "a tenant name: 1..%d of A-Z a-z 0-9 . _ -, "
		    "starting with a letter or digit", EST_TENANT_MAX);
		return -1;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

/* The scalar keys; each may appear once. */
enum key_id {
	K_LISTEN_ADDRESS, K_LISTEN_PORT, K_LISTEN_BACKLOG, K_TLS_CERT, K_TLS_KEY,
	K_TLS_PRIORITIES, K_ENGINE_SOCKET, K_ENGINE_TIMEOUT, K_ENGINE_MAXCONN,
	K_ENGINE_WAIT, K_AUTH, K_REALM, K_MAX_BODY, K_MAX_DISCARD, K_MAX_CONN,
	K_MAX_CONN_IP, K_TIMEOUT, K_RETRY_AFTER, K_DEFAULT_TENANT, K_HOST_SUFFIX,
	K_LOG_LEVEL, K_LOG_SYSLOG, K_COUNT
};

static const char *const key_names[K_COUNT] = {
	[K_LISTEN_ADDRESS] = "listen.address",
	[K_LISTEN_PORT] = "listen.port",
	[K_LISTEN_BACKLOG] = "listen.backlog",
	[K_TLS_CERT] = "tls.cert_file",
	[K_TLS_KEY] = "tls.key_file",
	[K_TLS_PRIORITIES] = "tls.priorities",
	[K_ENGINE_SOCKET] = "engine.socket",
	[K_ENGINE_TIMEOUT] = "engine.timeout_ms",
	[K_ENGINE_MAXCONN] = "engine.max_connections",
	[K_ENGINE_WAIT] = "engine.wait_ms",
	[K_AUTH] = "auth",
	[K_REALM] = "http.realm",
	[K_MAX_BODY] = "http.max_body",
	[K_MAX_DISCARD] = "http.max_discard",
	[K_MAX_CONN] = "http.max_connections",
	[K_MAX_CONN_IP] = "http.max_connections_per_ip",
	[K_TIMEOUT] = "http.timeout_s",
	[K_RETRY_AFTER] = "http.retry_after_s",
	[K_DEFAULT_TENANT] = "tenant.default",
	[K_HOST_SUFFIX] = "tenant.host_suffix",
	[K_LOG_LEVEL] = "log.level",
	[K_LOG_SYSLOG] = "log.syslog",
};

#define HOST_PREFIX "tenant.host."

static int
add_host(struct est_config *cfg, const char *name, const char *v, char *why, size_t whylen)
{
	struct est_host h, *nh;
	size_t i;

	if (hostname_norm(name, 0, h.host, sizeof(h.host), why, whylen) != 0 ||
	    parse_tenant(v, h.tenant, sizeof(h.tenant), why, whylen) != 0)
		return -1;
	for (i = 0; i < cfg->n_hosts; i++)
		if (strcmp(cfg->hosts[i].host, h.host) == 0) {
			snprintf(why, whylen, "host %s is mapped twice", h.host);
			return -1;
		}
	if (cfg->n_hosts >= EST_HOSTS_MAX) {
		snprintf(why, whylen, "more than %d host mappings", EST_HOSTS_MAX);
		return -1;
	}
	if ((nh = realloc(cfg->hosts, (cfg->n_hosts + 1) * sizeof(*nh))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	cfg->hosts = nh;
	cfg->hosts[cfg->n_hosts++] = h;
	return 0;
}

static int
set_key(struct est_config *cfg, enum key_id k, const char *v, char *why, size_t whylen)
{
	unsigned long n;
	int b;

	switch (k) {
	case K_LISTEN_ADDRESS:
		return parse_str(v, cfg->listen_address, sizeof(cfg->listen_address), why, whylen);
	case K_LISTEN_PORT:
		if (parse_uint(v, 0, 65535, &n, why, whylen) != 0)
			return -1;
		cfg->listen_port = (unsigned int)n;
		return 0;
	case K_LISTEN_BACKLOG:
		if (parse_uint(v, 1, 65535, &n, why, whylen) != 0)
			return -1;
		cfg->listen_backlog = (unsigned int)n;
		return 0;
	case K_TLS_CERT:
		return parse_str(v, cfg->tls_cert_file, sizeof(cfg->tls_cert_file), why, whylen);
	case K_TLS_KEY:
		return parse_str(v, cfg->tls_key_file, sizeof(cfg->tls_key_file), why, whylen);
	case K_TLS_PRIORITIES:
		return parse_str(v, cfg->tls_priorities, sizeof(cfg->tls_priorities), why, whylen);
	case K_ENGINE_SOCKET:
		return parse_str(v, cfg->engine_socket, sizeof(cfg->engine_socket), why, whylen);
	case K_ENGINE_TIMEOUT:
		if (parse_uint(v, 100, 600000, &n, why, whylen) != 0)
			return -1;
		cfg->engine_timeout_ms = (unsigned int)n;
		return 0;
	case K_ENGINE_MAXCONN:
		if (parse_uint(v, 1, 1024, &n, why, whylen) != 0)
			return -1;
		cfg->engine_max_connections = (unsigned int)n;
		return 0;
	case K_ENGINE_WAIT:
		if (parse_uint(v, 0, 600000, &n, why, whylen) != 0)
			return -1;
		cfg->engine_wait_ms = (unsigned int)n;
		return 0;
	case K_AUTH:
		if (strcmp(v, "otp") == 0)
			cfg->auth = EST_AUTH_OTP;
		else if (strcmp(v, "none") == 0)
			cfg->auth = EST_AUTH_NONE;
		else {
			snprintf(why, whylen, "expected otp or none");
			return -1;
		}
		return 0;
	case K_REALM:
		if (strchr(v, '"') != NULL || strchr(v, '\\') != NULL) {
			snprintf(why, whylen, "no quotes or backslashes");
			return -1;
		}
		return parse_str(v, cfg->realm, sizeof(cfg->realm), why, whylen);
	case K_MAX_BODY:
		if (parse_uint(v, 1024, 1024 * 1024, &n, why, whylen) != 0)
			return -1;
		cfg->max_body = n;
		return 0;
	case K_MAX_DISCARD:
		if (parse_uint(v, 0, 64 * 1024 * 1024, &n, why, whylen) != 0)
			return -1;
		cfg->max_discard = n;
		return 0;
	case K_MAX_CONN:
		if (parse_uint(v, 1, 10000, &n, why, whylen) != 0)
			return -1;
		cfg->max_connections = (unsigned int)n;
		return 0;
	case K_MAX_CONN_IP:
		if (parse_uint(v, 0, 10000, &n, why, whylen) != 0)
			return -1;
		cfg->max_connections_per_ip = (unsigned int)n;
		return 0;
	case K_TIMEOUT:
		if (parse_uint(v, 1, 3600, &n, why, whylen) != 0)
			return -1;
		cfg->timeout_s = (unsigned int)n;
		return 0;
	case K_RETRY_AFTER:
		if (parse_uint(v, 1, 86400, &n, why, whylen) != 0)
			return -1;
		cfg->retry_after_s = (unsigned int)n;
		return 0;
	case K_DEFAULT_TENANT:
		return parse_tenant(v, cfg->default_tenant, sizeof(cfg->default_tenant), why, whylen);
	case K_HOST_SUFFIX:
		return hostname_norm(v, 1, cfg->host_suffix, sizeof(cfg->host_suffix), why, whylen);
	case K_LOG_LEVEL:
		if (strcmp(v, "info") == 0)
			cfg->log_level = LOG_INFO;
		else if (strcmp(v, "debug") == 0)
			cfg->log_level = LOG_DEBUG;
		else if (strcmp(v, "warning") == 0)
			cfg->log_level = LOG_WARNING;
		else {
			snprintf(why, whylen, "expected warning, info or debug");
			return -1;
		}
		return 0;
	case K_LOG_SYSLOG:
		if (parse_bool(v, &b, why, whylen) != 0)
			return -1;
		cfg->log_syslog = b;
		return 0;
	case K_COUNT:
		break;
	}
	return -1;
}

int
est_config_load(const char *path, struct est_config *cfg, char *err, size_t errlen)
{
	char line[MAX_LINE + 2], why[512];
	unsigned char seen[K_COUNT];
	unsigned int lineno = 0;
	FILE *f;
	int r = 0;

	memset(seen, 0, sizeof(seen));
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *value;
		size_t k;

		lineno++;
		if (strlen(line) > MAX_LINE) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			r = -1;
			break;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
			r = -1;
			break;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		why[0] = '\0';
		if (strncmp(key, HOST_PREFIX, strlen(HOST_PREFIX)) == 0) {
			if (add_host(cfg, key + strlen(HOST_PREFIX), value, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s:%u: %s: %s", path, lineno, key, why);
				r = -1;
			}
			continue;
		}
		for (k = 0; k < K_COUNT; k++)
			if (strcmp(key_names[k], key) == 0)
				break;
		if (k == K_COUNT) {
			snprintf(err, errlen, "%s:%u: unknown key \"%.64s\"", path, lineno, key);
			r = -1;
		} else if (seen[k]) {
			snprintf(err, errlen, "%s:%u: %s is set twice", path, lineno, key);
			r = -1;
		} else {
			seen[k] = 1;
			if (set_key(cfg, (enum key_id)k, value, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s:%u: %s: %s", path, lineno, key,
				    why[0] != '\0' ? why : "invalid value");
				r = -1;
			}
		}
	}
	if (r == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		r = -1;
	}
	fclose(f);
	if (r != 0)
		return r;
	if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
		snprintf(err, errlen, "%s: tls.cert_file and tls.key_file are required", path);
		return -1;
	}
	if (cfg->max_discard != 0 && cfg->max_discard < cfg->max_body) {
		snprintf(err, errlen, "%s: http.max_discard must be 0 or at least http.max_body",
		    path);
		return -1;
	}
	return 0;
}

int
est_config_tenant_for_host(const struct est_config *cfg, const char *host,
    char *out, size_t outsz)
{
	char h[EST_HOSTNAME_MAX + 1];
	const char *end;
	size_t i, len, slen;

	if (host != NULL && host[0] != '[') {	/* an IPv6 literal maps by default only */
		end = strchr(host, ':');
		len = end != NULL ? (size_t)(end - host) : strlen(host);
		if (len > 0 && host[len - 1] == '.')	/* "est.example.com." */
			len--;
		if (len > 0 && len < sizeof(h)) {
			for (i = 0; i < len; i++)
				h[i] = (char)tolower((unsigned char)host[i]);
			h[len] = '\0';
			for (i = 0; i < cfg->n_hosts; i++)
				if (strcmp(cfg->hosts[i].host, h) == 0) {
					snprintf(out, outsz, "%s", cfg->hosts[i].tenant);
					return 0;
				}
			slen = strlen(cfg->host_suffix);
			/* one DNS label in front of the suffix: acme.est.example.com */
			if (slen > 0 && len > slen && strcmp(h + len - slen, cfg->host_suffix) == 0 &&
			    memchr(h, '.', len - slen) == NULL &&
			    est_tenant_valid(h, len - slen) && len - slen < outsz) {
				memcpy(out, h, len - slen);
				out[len - slen] = '\0';
				return 0;
			}
		}
	}
	if (cfg->default_tenant[0] != '\0') {
		snprintf(out, outsz, "%s", cfg->default_tenant);
		return 0;
	}
	return -1;
}
