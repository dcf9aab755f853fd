/*
 * replay.c - runs files through a fuzz target without libFuzzer (fuzz.h).
 *
 * Usage: replay-TARGET [FILE|DIR]...
 * Without arguments it runs $TCA_SRCDIR/tests/fuzz/corpus/TARGET and
 * $TCA_SRCDIR/tests/fuzz/crashes/TARGET (the latter may be absent), which is
 * what `make check` does.  Exit 0 when every input ran (a crash aborts the
 * process, so the test fails), 1 if an input could not be read or no input
 * was found at all (an empty corpus is a packaging mistake, not a pass).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET=\"name\""
#endif

#define REPLAY_MAX_INPUT (1024 * 1024)

static unsigned long n_run;

static int
run_file(const char *path)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay-%s: %s: %s\n", FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(REPLAY_MAX_INPUT)) == NULL) {
		fprintf(stderr, "replay-%s: out of memory\n", FUZZ_TARGET);
		goto out;
	}
	len = fread(buf, 1, REPLAY_MAX_INPUT, f);
	if (ferror(f) || !feof(f)) {
		fprintf(stderr, "replay-%s: %s: read error or larger than %d bytes\n",
		    FUZZ_TARGET, path, REPLAY_MAX_INPUT);
		goto out;
	}
	(void)LLVMFuzzerTestOneInput(buf, len);
	n_run++;
	r = 0;
 out:
	free(buf);
	fclose(f);
	return r;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs path (a file, or every regular file of a directory in name order).
 * missing_ok: a missing directory is not an error. */
static int
run_path(const char *path, int missing_ok)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL, child[PATH_MAX];
	size_t n = 0, cap = 0, i;
	DIR *d;
	int r = 0;

	if (stat(path, &st) != 0) {
		if (missing_ok && errno == ENOENT)
			return 0;
		fprintf(stderr, "replay-%s: %s: %s\n", FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay-%s: %s: %s\n", FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char **nn;

		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((nn = realloc(names, cap * sizeof(*names))) == NULL) {
				r = -1;
				goto out;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			r = -1;
			goto out;
		}
		n++;
	}
	if (n > 0)	/* an empty directory: names is NULL, which qsort may not get */
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n && r == 0; i++) {
		if (snprintf(child, sizeof(child), "%s/%s", path, names[i]) >= (int)sizeof(child)) {
			fprintf(stderr, "replay-%s: %s/%s: path too long\n", FUZZ_TARGET,
			    path, names[i]);
			r = -1;
			break;
		}
		if (stat(child, &st) == 0 && S_ISREG(st.st_mode))
			r = run_file(child);
	}
 out:
	if (r != 0 && errno == ENOMEM)
		fprintf(stderr, "replay-%s: out of memory\n", FUZZ_TARGET);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

int
main(int argc, char **argv)
{
	char corpus[PATH_MAX], crashes[PATH_MAX];
	const char *src;
	int i, r = 0;

	if (LLVMFuzzerInitialize(&argc, &argv) != 0) {
		fprintf(stderr, "replay-%s: initialisation failed\n", FUZZ_TARGET);
		return 1;
	}
	if (argc > 1) {
		for (i = 1; i < argc && r == 0; i++)
			r = run_path(argv[i], 0);
	} else {
		if ((src = getenv("TCA_SRCDIR")) == NULL)
			src = ".";
		snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", src, FUZZ_TARGET);
		snprintf(crashes, sizeof(crashes), "%s/tests/fuzz/crashes/%s", src, FUZZ_TARGET);
		if ((r = run_path(corpus, 0)) == 0)
			r = run_path(crashes, 1);
	}
	if (r == 0 && n_run == 0) {
		fprintf(stderr, "replay-%s: no input found\n", FUZZ_TARGET);
		r = -1;
	}
	if (r == 0)
		printf("replay-%s: %lu inputs ran\n", FUZZ_TARGET, n_run);
	return r == 0 ? 0 : 1;
}
