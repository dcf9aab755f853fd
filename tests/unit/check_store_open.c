/*
 * check_store_open.c - opening a store by URI (store.c): which backend each
 * form names, refusals of unknown schemes and, in a build without libpq, of
 * PostgreSQL, and the redaction of passwords in every message naming a store.
 *
 * /store-open/dispatch, /store-open/refused, /store-open/redact
 */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "tca-error.h"
#include "testutil.h"

static char dir[PATH_MAX];

static void
setup(void)
{
	test_mkdtemp(dir, sizeof(dir));
}

static void
teardown(void)
{
	test_sh("rm -rf '%s'", dir);
}

static void
open_sqlite(const char *uri, const char *file)
{
	tca_store *st = NULL;
	struct stat sb;
	char err[512];

	ck_assert_msg(tca_store_open(uri, 0, &st, err, sizeof(err)) == TCA_OK,
	    "%s: %s", uri, err);
	ck_assert_ptr_nonnull(st);
	ck_assert_str_eq(st->ops->name, "sqlite");
	st->ops->close(st);
	ck_assert_msg(stat(file, &sb) == 0, "%s not created for %s", file, uri);
}

/* /store-open/dispatch: sqlite:PATH and a plain path open the SQLite file */
START_TEST(test_dispatch)
{
	char uri[PATH_MAX + 32], file[PATH_MAX + 16];
	const char *path;

	snprintf(file, sizeof(file), "%s/a.db", dir);
	snprintf(uri, sizeof(uri), "sqlite:%s", file);
	open_sqlite(uri, file);
	snprintf(file, sizeof(file), "%s/b.db", dir);
	open_sqlite(file, file);

	ck_assert_str_eq(tca_store_uri_backend("sqlite:/x/s.db", &path), "sqlite");
	ck_assert_str_eq(path, "/x/s.db");
	ck_assert_str_eq(tca_store_uri_backend("/x/s.db", &path), "sqlite");
	ck_assert_str_eq(path, "/x/s.db");
	ck_assert_str_eq(tca_store_uri_backend("state.db", &path), "sqlite");
	ck_assert_str_eq(path, "state.db");
	ck_assert_str_eq(tca_store_uri_backend("./a:b.db", &path), "sqlite");
	ck_assert_str_eq(tca_store_uri_backend("postgresql://h/db", &path), "postgresql");
	ck_assert_ptr_null(path);
	ck_assert_str_eq(tca_store_uri_backend("postgres://h/db", NULL), "postgresql");
	ck_assert_str_eq(tca_store_uri_backend("host=/run/pg dbname=tca", NULL),
	    "postgresql");
	ck_assert_ptr_null(tca_store_uri_backend("mysql://h/db", &path));
	ck_assert_ptr_null(path);
	ck_assert_ptr_null(tca_store_uri_backend("file:/x.db", NULL));
	ck_assert_ptr_null(tca_store_uri_backend("", NULL));
}
END_TEST

static void
refused(const char *uri, int expect, const char *needle1, const char *needle2)
{
	tca_store *st = (tca_store *)1;
	char err[1024];

	ck_assert_int_eq(tca_store_open(uri, 0, &st, err, sizeof(err)), expect);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err, needle1) != NULL, "%s: \"%s\" lacks \"%s\"", uri,
	    err, needle1);
	ck_assert_msg(needle2 == NULL || strstr(err, needle2) != NULL,
	    "%s: \"%s\" lacks \"%s\"", uri, err, needle2);
	ck_assert_msg(strstr(err, "s3cret") == NULL, "password shown: %s", err);
}

/* /store-open/refused: unknown schemes name the scheme and the accepted
 * forms; PostgreSQL, in a build without libpq, says so; never a password */
START_TEST(test_refused)
{
	refused("mysql://tca:s3cret@db.example/tca", TCA_ERR_CONFIG,
	    "unknown URI scheme \"mysql\"", "sqlite:PATH");
	refused("mysql://tca:s3cret@db.example/tca", TCA_ERR_CONFIG,
	    "postgresql://", "key=value");
	refused("file:/var/lib/x.db", TCA_ERR_CONFIG, "\"file\"", "sqlite:PATH");
	refused("", TCA_ERR_CONFIG, "no store", "sqlite:PATH");
	refused("sqlite:", TCA_ERR_INVALID_ARG, "no store path", NULL);
#if !HAVE_LIBPQ
	refused("postgresql://tca:s3cret@db.example:5432/tca", TCA_ERR_CONFIG,
	    "this build has no PostgreSQL support (configure found no libpq)",
	    "postgresql://tca:***@db.example:5432/tca");
	refused("postgres://tca:s3cret@db.example/tca?sslmode=require",
	    TCA_ERR_CONFIG, "no PostgreSQL support", "sslmode=require");
	refused("host=db.example dbname=tca user=tca password=s3cret",
	    TCA_ERR_CONFIG, "no PostgreSQL support", "password=***");
#endif
}
END_TEST

/* /store-open/redact: the password hidden in URI and key=value forms,
 * nothing else altered */
START_TEST(test_redact)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "sqlite:/var/lib/tca/state.db", "sqlite:/var/lib/tca/state.db" },
		{ "/var/lib/tca/state.db", "/var/lib/tca/state.db" },
		{ "postgresql://tca:s3cret@db.example:5432/tca",
		  "postgresql://tca:***@db.example:5432/tca" },
		{ "postgres://tca:s3cret@db.example/tca", "postgres://tca:***@db.example/tca" },
		{ "postgresql://tca@db.example/tca", "postgresql://tca@db.example/tca" },
		{ "postgresql://db.example:5432/tca", "postgresql://db.example:5432/tca" },
		{ "postgresql:///tca?host=/run/postgresql", "postgresql:///tca?host=/run/postgresql" },
		/* a raw '@' or '/' in the password is hidden too */
		{ "postgresql://tca:s3c@r/et@db.example/tca", "postgresql://tca:***@db.example/tca" },
		{ "postgresql://tca@db.example/tca?password=s3cret&sslmode=require",
		  "postgresql://tca@db.example/tca?password=***&sslmode=require" },
		{ "postgresql://db/tca?sslmode=require&password=s3cret",
		  "postgresql://db/tca?sslmode=require&password=***" },
		{ "postgresql://u:s3cret@db/tca?application_name=x&passfile=/p",
		  "postgresql://u:***@db/tca?application_name=x&passfile=/p" },
		{ "mysql://tca:s3cret@db/tca", "mysql://tca:***@db/tca" },
		{ "host=db.example dbname=tca user=tca password=s3cret",
		  "host=db.example dbname=tca user=tca password=***" },
		{ "password=s3cret host=db", "password=*** host=db" },
		{ "host=db  password = 's3 c\\'ret'  dbname=tca",
		  "host=db  password = ***  dbname=tca" },
		{ "host=db passfile=/etc/tca/pgpass dbname=tca",
		  "host=db passfile=/etc/tca/pgpass dbname=tca" },
	};
	char out[256], small[20];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tca_store_uri_redact(cases[i].in, out, sizeof(out));
		ck_assert_msg(strcmp(out, cases[i].out) == 0, "case %zu: %s -> %s, "
		    "expected %s", i, cases[i].in, out, cases[i].out);
		ck_assert_msg(strstr(out, "s3") == NULL, "case %zu: %s", i, out);
	}
	/* truncated, still terminated, and the password not half-shown */
	tca_store_uri_redact("postgresql://tca:s3cret@db.example/tca", small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_ptr_null(strstr(small, "s3"));
	tca_store_uri_redact(NULL, out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

static Suite *
store_open_suite(void)
{
	Suite *s = suite_create("store-open");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dispatch);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_redact);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_open_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
