/*
 * log.h - logging to stderr (default, with timestamps) or syslog.
 *
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG).  Thread-safe.  Never pass a PIN,
 * a private key or any other secret to these functions.
 * The _f variants prefix the calling function's name, OpenSSH style.
 */
#ifndef TCA_LOG_H
#define TCA_LOG_H

#include <syslog.h>

/* ident: program name; to_syslog: 1 = syslog(3), 0 = stderr; level: maximum
 * level logged (LOG_INFO default). Safe to call again (e.g. on SIGHUP). */
void tca_log_init(const char *ident, int to_syslog, int level);
void tca_log_set_level(int level);
int tca_log_get_level(void);

/* "error", "warning", "notice", "info", "debug" -> LOG_*; -1 if unknown. */
int tca_log_level_from_name(const char *name);

void tca_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs OpenSSL's queued errors at debug level as "what: error" (nothing if
 * what is NULL) and empties the queue, so a failure does not leak stale
 * errors into the next, unrelated OpenSSL call of this thread. */
void tca_log_ossl_errors(const char *what);

#define log_error(...) tca_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) tca_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) tca_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) tca_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) tca_log(LOG_DEBUG, __VA_ARGS__)
#define log_error_f(fmt, ...) tca_log(LOG_ERR, "%s: " fmt, __func__, ##__VA_ARGS__)
#define log_warn_f(fmt, ...) tca_log(LOG_WARNING, "%s: " fmt, __func__, ##__VA_ARGS__)
#define log_debug_f(fmt, ...) tca_log(LOG_DEBUG, "%s: " fmt, __func__, ##__VA_ARGS__)

#endif
