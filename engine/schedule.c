/* schedule.c - yearly re-issuance instants (see schedule.h). */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schedule.h"
#include "tca-error.h"

/*
 * The C library converts local time only for the process-wide TZ.  We switch
 * TZ under this lock and restore it; nothing else in the engine uses local
 * time (logs are UTC, certificates are UTC).
 */
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

void
tca_schedule_defaults(struct tca_schedule *s)
{
	memset(s, 0, sizeof(*s));
	s->month = 10;
	s->day = 2;
	s->hour = 2;
	s->minute = 0;
	snprintf(s->tz, sizeof(s->tz), "UTC");
}

int
tca_schedule_check(const struct tca_schedule *s, char *why, size_t whylen)
{
	char path[128];
	size_t i;

	if (s->month < 1 || s->month > 12 || s->day < 1 || s->day > 28 ||
	    s->hour < 0 || s->hour > 23 || s->minute < 0 || s->minute > 59) {
		snprintf(why, whylen, "schedule %02d-%02d %02d:%02d is out of range "
		    "(day 1..28 so every year has it)", s->month, s->day, s->hour, s->minute);
		return TCA_ERR_CONFIG;
	}
	if (s->tz[0] == '\0' || strstr(s->tz, "..") != NULL || s->tz[0] == '/') {
		snprintf(why, whylen, "time zone \"%s\" is not an IANA zone name", s->tz);
		return TCA_ERR_CONFIG;
	}
	for (i = 0; s->tz[i] != '\0'; i++) {
		char c = s->tz[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '/' || c == '_' || c == '-' || c == '+')) {
			snprintf(why, whylen, "time zone \"%s\" is not an IANA zone name", s->tz);
			return TCA_ERR_CONFIG;
		}
	}
	/* glibc silently falls back to UTC for unknown zones: check the database */
	if (strcmp(s->tz, "UTC") != 0) {
		snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", s->tz);
		if (access(path, R_OK) != 0) {
			snprintf(why, whylen, "time zone \"%s\" is not in /usr/share/zoneinfo "
			    "(install tzdata?)", s->tz);
			return TCA_ERR_CONFIG;
		}
	}
	return TCA_OK;
}

int
tca_schedule_instant(const struct tca_schedule *s, int year, time_t *instant_ptr)
{
	char why[160], *saved = NULL, *old;
	struct tm tm;
	time_t t;
	int tm_mon_want;

	if (tca_schedule_check(s, why, sizeof(why)) != TCA_OK || year < 1971 || year > 9999)
		return TCA_ERR_CONFIG;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = s->month - 1;
	tm.tm_mday = s->day;
	tm.tm_hour = s->hour;
	tm.tm_min = s->minute;
	tm.tm_isdst = -1;
	tm_mon_want = tm.tm_mon;

	pthread_mutex_lock(&tz_lock);
	if ((old = getenv("TZ")) != NULL && (saved = strdup(old)) == NULL) {
		pthread_mutex_unlock(&tz_lock);
		return TCA_ERR_NOMEM;
	}
	setenv("TZ", s->tz, 1);
	tzset();
	t = mktime(&tm);
	/*
	 * In a daylight-saving gap the scheduled wall time does not exist.  glibc
	 * resolves it forward (to the end of the gap, which is what we want);
	 * should a C library resolve it backwards, step to the first instant whose
	 * wall clock is at or after the scheduled one.  Gaps are at most an hour.
	 */
	if (t != (time_t)-1) {
		struct tm w;
		int i;

		for (i = 0; i < 120; i++) {
			localtime_r(&t, &w);
			if (w.tm_mon != tm_mon_want || w.tm_mday > s->day ||
			    (w.tm_mday == s->day && (w.tm_hour > s->hour ||
			    (w.tm_hour == s->hour && w.tm_min >= s->minute))))
				break;
			t += 60;
		}
	}
	if (saved != NULL) {
		setenv("TZ", saved, 1);
		free(saved);
	} else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	if (t == (time_t)-1)
		return TCA_ERR_CONFIG;
	*instant_ptr = t;
	return TCA_OK;
}

int
tca_schedule_due(const struct tca_schedule *s, time_t ca_not_before, time_t now,
    struct tca_due *due)
{
	struct tm tm;
	time_t this_year, last, next;
	int year, r;

	memset(due, 0, sizeof(*due));
	gmtime_r(&now, &tm);
	year = tm.tm_year + 1900;
	/* the zone can put this year's instant on either side of a UTC year end
	 * only for dates near 1 January; 2 October is far from it, but stay exact */
	if ((r = tca_schedule_instant(s, year, &this_year)) != TCA_OK)
		return r;
	if (now >= this_year) {
		last = this_year;
		if ((r = tca_schedule_instant(s, year + 1, &next)) != TCA_OK)
			return r;
	} else {
		next = this_year;
		if ((r = tca_schedule_instant(s, year - 1, &last)) != TCA_OK)
			return r;
	}
	due->next = next;
	if (ca_not_before < last) {
		due->due_now = 1;
		due->not_before = last;
	}
	return TCA_OK;
}
