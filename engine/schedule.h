/*
 * schedule.h - the yearly CA re-issuance schedule as a pure function of
 * (the CA's current notBefore, now).  No clock, no state: the caller passes
 * both, so tests drive it with any instant (Knot DNS key-events model).
 *
 * The instant of year Y is month/day hour:minute:00 local time in the zone tz
 * (default 2 October 02:00 UTC).  A CA is due when its current certificate's
 * notBefore lies before the most recent instant that has passed; it is then
 * re-issued with notBefore = that instant (catch-up after downtime re-issues
 * once, for the latest missed year, never once per missed year).  After
 * re-issuance notBefore equals the instant, so the CA is not due again until
 * the next year's instant: re-issuing twice for one year cannot happen.
 */
#ifndef TCA_SCHEDULE_H
#define TCA_SCHEDULE_H

#include <time.h>

struct tca_schedule {
	int month;		/* 1..12 (10) */
	int day;		/* 1..28 (2): a day every month has */
	int hour;		/* 0..23 (2) */
	int minute;		/* 0..59 (0) */
	char tz[64];		/* IANA zone name ("UTC") */
};

void tca_schedule_defaults(struct tca_schedule *s);

/* TCA_OK if s is valid and its zone exists in the system's zoneinfo, else
 * TCA_ERR_CONFIG with a reason in why. */
int tca_schedule_check(const struct tca_schedule *s, char *why, size_t whylen);

/*
 * The instant of year `year`.  A local time that does not exist (daylight
 * saving gap, e.g. 2 October 2022 02:00 in Australia/Sydney) maps to the first
 * instant after the gap; an ambiguous one to its first occurrence.
 * TCA_OK or TCA_ERR_CONFIG.
 */
int tca_schedule_instant(const struct tca_schedule *s, int year, time_t *instant_ptr);

struct tca_due {
	int due_now;		/* 1: re-issue now, with not_before below */
	time_t not_before;	/* the instant to use as the new notBefore (due_now) */
	time_t next;		/* when to look again: the next instant after now */
};

/* TCA_OK and *due, or TCA_ERR_CONFIG. */
int tca_schedule_due(const struct tca_schedule *s, time_t ca_not_before, time_t now,
    struct tca_due *due);

#endif
