/*
 * fuzz.h - the libFuzzer entry points every target in tests/fuzz defines.
 *
 * A target is built twice:
 *  - by `make fuzz` with clang -fsanitize=fuzzer,address,undefined, linked
 *    with libFuzzer's main (tests/fuzz/build.sh);
 *  - by `make check` with the normal compiler, linked with replay.c, which
 *    runs every file of tests/fuzz/corpus/<target> and
 *    tests/fuzz/crashes/<target> through LLVMFuzzerTestOneInput once, so the
 *    seed corpus and every crash found so far are replayed by every
 *    `make check` (and under ASan and valgrind in CI).
 *
 * A target never calls exit() or abort() on a refused input: refusing is
 * what the code under test must do.  It aborts (FUZZ_ASSERT) only when an
 * invariant of the code under test is broken.
 */
#ifndef TCA_FUZZ_H
#define TCA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
