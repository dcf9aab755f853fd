/* est-log.c - tca-estd's stderr/syslog log (see est-log.h). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "est-log.h"
#include "text.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_syslog;
static int log_level = LOG_INFO;
static char log_ident[32] = "tca-estd";

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
est_log_init(const char *ident, int to_syslog, int level)
{
	pthread_mutex_lock(&log_lock);
	if (ident != NULL)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_syslog = to_syslog;
	if (level >= LOG_EMERG && level <= LOG_DEBUG)
		log_level = level;
	if (to_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	pthread_mutex_unlock(&log_lock);
}

int
est_log_enabled(int level)
{
	int on;

	pthread_mutex_lock(&log_lock);
	on = level <= log_level;
	pthread_mutex_unlock(&log_lock);
	return on;
}

void
est_vlog(int level, const char *fmt, va_list ap)
{
	char raw[2048], msg[4096], ts[32];
	struct timeval tv;
	struct tm tm;
	size_t len;

	if (!est_log_enabled(level))
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	len = strlen(raw);
	while (len > 0 && raw[len - 1] == '\n')	/* libmicrohttpd ends its own */
		raw[--len] = '\0';
	/* peer text (paths, device ids, user names) in the engine's one escaped
	 * form: controls, bidi overrides, NEL and U+2028 as \u{XXXX}, bytes that
	 * are not UTF-8 as \x{XX}; one record stays one line */
	tca_escape((const unsigned char *)raw, len, msg, sizeof(msg));
	pthread_mutex_lock(&log_lock);
	if (log_syslog) {
		syslog(level, "%s", msg);
	} else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%s]: %s\n", ts, (long)(tv.tv_usec / 1000),
		    log_ident, level >= 0 && level <= LOG_DEBUG ? level_names[level] : "?", msg);
		fflush(stderr);
	}
	pthread_mutex_unlock(&log_lock);
}

void
est_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	est_vlog(level, fmt, ap);
	va_end(ap);
}
