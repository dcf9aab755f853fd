#!/bin/sh
# valgrind.sh - LOG_COMPILER for `make check` under valgrind memcheck
# (tools/run-sanitizers.sh): every error and every definitely or indirectly
# lost block fails the test.  Programs are run through libtool so that the
# binary, not its wrapper script, is checked; programs they exec (openssl,
# certtool, ...) run natively.  SoftHSMv2's own leaks are suppressed by name
# in tests/valgrind.supp, nothing of ours.
set -eu
# repetition loops run a tenth of their rounds (tests/testutil.h
# test_repeat): every path still runs, under a tenth of the time
TCA_TEST_REPEAT_DIVISOR=${TCA_TEST_REPEAT_DIVISOR:-10}
export TCA_TEST_REPEAT_DIVISOR
: "${TCA_BUILDDIR:=.}"
: "${TCA_SRCDIR:=.}"
exec "$TCA_BUILDDIR/libtool" --mode=execute valgrind --quiet --tool=memcheck \
    --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    --error-exitcode=1 --num-callers=30 \
    --suppressions="$TCA_SRCDIR/tests/valgrind.supp" "$@"
