/* log.c - stderr/syslog logging. */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

#include <openssl/err.h>

#include "log.h"
#include "text.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_to_syslog;
static int log_level = LOG_INFO;
static char log_ident[64] = "tca";

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
tca_log_init(const char *ident, int to_syslog, int level)
{
	pthread_mutex_lock(&log_lock);
	if (ident != NULL)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	if (log_to_syslog && !to_syslog)
		closelog();
	log_to_syslog = to_syslog;
	if (level >= LOG_EMERG && level <= LOG_DEBUG)
		log_level = level;
	if (to_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	pthread_mutex_unlock(&log_lock);
}

void
tca_log_set_level(int level)
{
	pthread_mutex_lock(&log_lock);
	if (level >= LOG_EMERG && level <= LOG_DEBUG)
		log_level = level;
	pthread_mutex_unlock(&log_lock);
}

int
tca_log_get_level(void)
{
	int l;

	pthread_mutex_lock(&log_lock);
	l = log_level;
	pthread_mutex_unlock(&log_lock);
	return l;
}

int
tca_log_level_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(level_names[i], name) == 0)
			return i;
	return -1;
}

void
tca_log(int level, const char *fmt, ...)
{
	char raw[1024], msg[2048], ts[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	size_t len;
	int n;

	if (level > tca_log_get_level())
		return;
	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* one record per line, shown as it is: peer text (device ids, CSR
	 * fields, paths) may carry line breaks, bidi overrides or invisible
	 * characters; they are escaped as \u{XXXX}, bytes that are not UTF-8 as
	 * \x{XX} (text.h tca_escape, docs/security.md "Text from peers") */
	if ((len = (size_t)n) >= sizeof(raw)) {
		/* cut: drop a character vsnprintf may have split */
		len = sizeof(raw) - 1;
		while (len > 0 && ((unsigned char)raw[len - 1] & 0xc0) == 0x80)
			len--;
		if (len > 0 && (unsigned char)raw[len - 1] >= 0xc0)
			len--;
	}
	(void)tca_escape((const unsigned char *)raw, len, msg, sizeof(msg));

	pthread_mutex_lock(&log_lock);
	if (log_to_syslog) {
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

/* Logs and drops OpenSSL's error queue, so a failure here does not leak stale
 * errors into the next, unrelated OpenSSL call of this thread. */
void
tca_log_ossl_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		if (what != NULL) {
			ERR_error_string_n(e, buf, sizeof(buf));
			log_debug("%s: %s", what, buf);
		}
	}
}
