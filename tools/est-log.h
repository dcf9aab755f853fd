/*
 * est-log.h - tca-estd's log: stderr with UTC timestamps (default) or
 * syslog(3), one record per line, control characters neutralised.  Never
 * pass a password, a one-time password or key material.
 */
#ifndef TCA_EST_LOG_H
#define TCA_EST_LOG_H

#include <stdarg.h>
#include <syslog.h>

void est_log_init(const char *ident, int to_syslog, int level);
int est_log_enabled(int level);
void est_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void est_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
