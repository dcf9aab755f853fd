#!/bin/sh
# run-sanitizers.sh - the CI's fuzzing and sanitizer stages (tools/run-tests.sh
# runs it after make check and make distcheck; docs/security.md, "Fuzzing and
# sanitizers").  Run from a configured and built source tree:
#   1. fuzz:     make fuzz, then each target for FUZZ_SECONDS (60), all four
#                at once (FUZZ_JOBS); a crash fails the run and names the input
#   2. valgrind: the unit tests and the corpus replays under valgrind
#                memcheck, every error and definite/indirect leak fatal
#                (tests/valgrind.sh, tests/valgrind.supp)
#   3. asan:     the whole suite once more, built with ASan + UBSan in a
#                VPATH build of the distribution tree; every sanitizer
#                report of any process (the daemon, the CLIs, the tests)
#                is written under one directory and fails the run
# Stages: SANITIZER_STAGES="fuzz valgrind asan" (default: all three).
# Each stage prints its wall-clock time.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
stages=${SANITIZER_STAGES:-fuzz valgrind asan}
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] || jobs=2
# the suites that mostly wait run twice as many at once (tools/run-tests.sh)
check_jobs=$((jobs * 2))

stamp() { date +%s; }
took() { echo "== $1: $(( $(stamp) - $2 )) s"; }

show_failed_logs() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null || continue
		echo "==== $f"; tail -n 80 "$f"
	done
}

stage_fuzz() {
	t0=$(stamp)
	make fuzz
	# all four at once: each runs its 60 s, on half a core of this
	# two-core machine (about half the executions of a run of its own)
	FUZZ_JOBS="${FUZZ_JOBS:-4}" make fuzz-run FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
	took "fuzz (build + ${FUZZ_SECONDS:-60} s per target, ${FUZZ_JOBS:-4} at a time)" "$t0"
}

# the unit tests and the corpus replays: no daemon, so valgrind's slowdown
# stays bounded.  The longest under memcheck first (make check -j2 starts
# them in this order), so that none of them starts last and runs alone
VALGRIND_FIRST="tests/unit/check_store tests/unit/check_token tests/unit/check_certs tests/unit/check_revocation tests/unit/check_store_pg"
unit_tests() {
	all=$(make -s print-tests)
	for t in $VALGRIND_FIRST; do
		case " $all " in *" $t "*) echo "$t" ;; esac
	done
	for t in $all; do
		case " $VALGRIND_FIRST " in *" $t "*) continue ;; esac
		case "$t" in tests/unit/*|tests/fuzz/*) echo "$t" ;; esac
	done
}

# the tests that never load a PKCS#11 module: their allocation stacks need
# no slow unwinding (see stage_asan)
TOKEN_FREE="tests/unit/check_basics tests/unit/check_certs tests/unit/check_config \
tests/unit/check_policy tests/unit/check_revocation tests/unit/check_schedule \
tests/unit/check_store tests/unit/check_wire tests/fuzz/replay-frame tests/fuzz/replay-csr \
tests/fuzz/replay-reenroll tests/fuzz/replay-conf"

stage_valgrind() {
	t0=$(stamp)
	command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)"; exit 1; }
	vt=$(unit_tests | tr '\n' ' ')
	# check_store's PostgreSQL half is left to check_store_pg (valgrind)
	# and the asan stage: under memcheck it is mostly waiting for the server
	if ! TCA_STORE_TEST_BACKENDS=sqlite make -j"$jobs" check TESTS="$vt" \
	    LOG_COMPILER="$top/tests/valgrind.sh" CK_TIMEOUT_MULTIPLIER=10; then
		# shellcheck disable=SC2046,SC2086
		show_failed_logs $(for t in $vt; do echo "$t.log"; done)
		exit 1
	fi
	took "valgrind (unit tests and corpus replays under memcheck)" "$t0"
}

stage_asan() {
	t0=$(stamp)
	make distdir
	dist=$(sed -n 's/^PACKAGE_TARNAME = //p' Makefile)-$(sed -n 's/^PACKAGE_VERSION = //p' Makefile)
	reports="$top/$dist/_asan/sanitizer-reports"
	mkdir -p "$dist/_asan"
	(
		cd "$dist/_asan"
		# -Wformat-truncation and -Wmaybe-uninitialized: gcc's value-range
		# analysis at -O1 under -fsanitize gives false positives the normal
		# (-O2, -Werror) build does not; that build keeps both as errors
		../configure --enable-werror --with-postgresql=yes CFLAGS="-fsanitize=address,undefined \
-fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1 \
-Wno-format-truncation -Wno-maybe-uninitialized" >/dev/null
		make -j"$jobs" >/dev/null
		mkdir -p "$reports"
		chmod 1777 "$reports"	# clients run as nobody write their reports too
		# verify_asan_link_order=0: tests LD_PRELOAD tests/libfaultinject
		# into the daemon; log_path: every process's reports go to files,
		# whatever the test does with its stderr
		asan="detect_leaks=1:verify_asan_link_order=0:log_path=$reports/asan:log_exe_name=1"
		UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan:log_exe_name=1"
		LSAN_OPTIONS="suppressions=$top/$dist/tests/lsan.supp:print_suppressions=0"
		export UBSAN_OPTIONS LSAN_OPTIONS
		token_tests=""
		for t in $(make -s print-tests); do
			case " $TOKEN_FREE " in *" $t "*) ;; *) token_tests="$token_tests $t" ;; esac
		done
		rc=0
		# the tests that never load a module, with ASan's fast unwinder
		ASAN_OPTIONS=$asan make -j"$check_jobs" check TESTS="$TOKEN_FREE" || rc=$?
		# the rest, where SoftHSMv2 runs inside our processes:
		# fast_unwind_on_malloc=0 so that allocation stacks reach through
		# libcrypto (no frame pointers) to the module that called it, which
		# tests/lsan.supp names; ten times slower on OpenSSL-heavy code,
		# hence the split.  CK_TIMEOUT_MULTIPLIER: Check's per-test bound
		# (120 s) is the plain build's
		ASAN_OPTIONS="$asan:fast_unwind_on_malloc=0" make -j"$check_jobs" check \
		    TESTS="$token_tests" CK_TIMEOUT_MULTIPLIER=4 || rc=$?
		if [ "$rc" != 0 ]; then
			show_failed_logs tests/unit/*.log tests/integration/*.log tests/fuzz/*.log
		fi
		# UBSan (halt_on_error) ends the process; its report may go to
		# stderr rather than log_path: look for it in the tests' logs too
		if grep -l -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' \
		    tests/*/*.log >/dev/null 2>&1; then
			grep -l -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' tests/*/*.log
			rc=1
		fi
		if [ -n "$(ls -A "$reports")" ]; then
			for f in "$reports"/*; do echo "==== $f"; cat "$f"; done
			echo "sanitizer reports above (ASan/UBSan/LSan)"
			rc=1
		fi
		exit $rc
	)
	rm -rf "$dist"
	took "asan (ASan+UBSan build and the whole suite)" "$t0"
}

for s in $stages; do
	case "$s" in
	fuzz) stage_fuzz ;;
	valgrind) stage_valgrind ;;
	asan) stage_asan ;;
	*) echo "unknown stage $s" >&2; exit 2 ;;
	esac
done
