/*
 * check_schedule.c - the yearly re-issuance schedule, a pure function of
 * (notBefore, now): no waiting, every instant is passed in.
 *
 * /schedule/instant/zones, /schedule/instant/dst-gap, /schedule/leap-year,
 * /schedule/due/..., /schedule/check
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "renewal.h"
#include "schedule.h"
#include "tca-error.h"
#include "testutil.h"

static time_t
instant(const char *tz, int year)
{
	struct tca_schedule s;
	time_t t = 0;

	tca_schedule_defaults(&s);
	snprintf(s.tz, sizeof(s.tz), "%s", tz);
	ck_assert_int_eq(tca_schedule_instant(&s, year, &t), TCA_OK);
	return t;
}

/* /schedule/instant/zones: 2 October 02:00 local */
START_TEST(test_zones)
{
	ck_assert_int_eq(instant("UTC", 2026), test_utc(2026, 10, 2, 2, 0, 0));
	ck_assert_int_eq(instant("Europe/Berlin", 2026), test_utc(2026, 10, 2, 0, 0, 0));	/* CEST +2 */
	ck_assert_int_eq(instant("America/New_York", 2026), test_utc(2026, 10, 2, 6, 0, 0));	/* EDT -4 */
	ck_assert_int_eq(instant("Asia/Kolkata", 2026), test_utc(2026, 10, 1, 20, 30, 0));	/* +5:30 */
	ck_assert_int_eq(instant("Australia/Sydney", 2026), test_utc(2026, 10, 1, 16, 0, 0));	/* AEST +10 */
	/* the engine's own TZ is untouched */
	ck_assert_ptr_null(getenv("TZ"));
}
END_TEST

/* /schedule/instant/dst-gap: 2 Oct 2022 02:00 does not exist in Sydney (DST
 * started then); the instant is the end of the gap, 03:00 AEDT */
START_TEST(test_dst_gap)
{
	ck_assert_int_eq(instant("Australia/Sydney", 2022), test_utc(2022, 10, 1, 16, 0, 0));
}
END_TEST

/* /schedule/leap-year: instants around 29 Feb 2028 are 366 days apart */
START_TEST(test_leap_year)
{
	ck_assert_int_eq(instant("UTC", 2028) - instant("UTC", 2027), 366 * 86400);
	ck_assert_int_eq(instant("UTC", 2029) - instant("UTC", 2028), 365 * 86400);
}
END_TEST

/* /schedule/due/at-the-instant: not a second early, due at the instant, and
 * not again once re-issued */
START_TEST(test_due_instant)
{
	struct tca_schedule s;
	struct tca_due d;
	time_t i26 = test_utc(2026, 10, 2, 2, 0, 0), i27 = test_utc(2027, 10, 2, 2, 0, 0);
	time_t nb = test_utc(2026, 5, 1, 9, 0, 0);

	tca_schedule_defaults(&s);
	ck_assert_int_eq(tca_schedule_due(&s, nb, i26 - 1, &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 0);
	ck_assert_int_eq(d.next, i26);
	ck_assert_int_eq(tca_schedule_due(&s, nb, i26, &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 1);
	ck_assert_int_eq(d.not_before, i26);
	ck_assert_int_eq(d.next, i27);
	/* re-issued: notBefore is now the instant; a restart a second later */
	ck_assert_int_eq(tca_schedule_due(&s, i26, i26 + 1, &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 0);
	ck_assert_int_eq(d.next, i27);
}
END_TEST

/* /schedule/due/catch-up: down over two instants -> one re-issue, for the
 * latest year */
START_TEST(test_due_catch_up)
{
	struct tca_schedule s;
	struct tca_due d;

	tca_schedule_defaults(&s);
	ck_assert_int_eq(tca_schedule_due(&s, test_utc(2024, 3, 1, 0, 0, 0), test_utc(2026, 12, 1, 0, 0, 0), &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 1);
	ck_assert_int_eq(d.not_before, test_utc(2026, 10, 2, 2, 0, 0));
	/* before this year's instant, a CA last issued before last year's is due */
	ck_assert_int_eq(tca_schedule_due(&s, test_utc(2024, 3, 1, 0, 0, 0), test_utc(2026, 6, 1, 0, 0, 0), &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 1);
	ck_assert_int_eq(d.not_before, test_utc(2025, 10, 2, 2, 0, 0));
	ck_assert_int_eq(d.next, test_utc(2026, 10, 2, 2, 0, 0));
}
END_TEST

/* /schedule/due/created-after: a CA created after this year's instant waits
 * for next year */
START_TEST(test_due_created_after)
{
	struct tca_schedule s;
	struct tca_due d;

	tca_schedule_defaults(&s);
	ck_assert_int_eq(tca_schedule_due(&s, test_utc(2026, 10, 3, 0, 0, 0), test_utc(2026, 11, 1, 0, 0, 0), &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 0);
	ck_assert_int_eq(d.next, test_utc(2027, 10, 2, 2, 0, 0));
	/* created the day before: due the next day */
	ck_assert_int_eq(tca_schedule_due(&s, test_utc(2026, 10, 1, 0, 0, 0), test_utc(2026, 10, 1, 12, 0, 0), &d), TCA_OK);
	ck_assert_int_eq(d.due_now, 0);
	ck_assert_int_eq(d.next, test_utc(2026, 10, 2, 2, 0, 0));
}
END_TEST

/* /schedule/check: bad zones and dates refused */
START_TEST(test_check)
{
	struct tca_schedule s;
	char why[256];
	time_t t;

	tca_schedule_defaults(&s);
	ck_assert_int_eq(tca_schedule_check(&s, why, sizeof(why)), TCA_OK);
	snprintf(s.tz, sizeof(s.tz), "Mars/Olympus");
	ck_assert_int_eq(tca_schedule_check(&s, why, sizeof(why)), TCA_ERR_CONFIG);
	ck_assert_int_eq(tca_schedule_instant(&s, 2026, &t), TCA_ERR_CONFIG);
	snprintf(s.tz, sizeof(s.tz), "../../etc/passwd");
	ck_assert_int_eq(tca_schedule_check(&s, why, sizeof(why)), TCA_ERR_CONFIG);
	tca_schedule_defaults(&s);
	s.day = 29;
	ck_assert_int_eq(tca_schedule_check(&s, why, sizeof(why)), TCA_ERR_CONFIG);
}
END_TEST

/* /schedule/backoff: doubling from min, capped at max, no overflow */
START_TEST(test_backoff)
{
	ck_assert_uint_eq(tca_renewal_backoff(1, 60, 3600), 60);
	ck_assert_uint_eq(tca_renewal_backoff(2, 60, 3600), 120);
	ck_assert_uint_eq(tca_renewal_backoff(3, 60, 3600), 240);
	ck_assert_uint_eq(tca_renewal_backoff(6, 60, 3600), 1920);
	ck_assert_uint_eq(tca_renewal_backoff(7, 60, 3600), 3600);
	ck_assert_uint_eq(tca_renewal_backoff(1000000, 60, 3600), 3600);
	ck_assert_uint_eq(tca_renewal_backoff(0, 60, 3600), 60);
}
END_TEST

static Suite *
schedule_suite(void)
{
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_zones);
	tcase_add_test(tc, test_dst_gap);
	tcase_add_test(tc, test_leap_year);
	tcase_add_test(tc, test_due_instant);
	tcase_add_test(tc, test_due_catch_up);
	tcase_add_test(tc, test_due_created_after);
	tcase_add_test(tc, test_check);
	tcase_add_test(tc, test_backoff);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(schedule_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
