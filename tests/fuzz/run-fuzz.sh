#!/bin/sh
# run-fuzz.sh - `make fuzz-run`: runs the fuzz targets built by `make fuzz`,
# two at a time (FUZZ_JOBS), each for SECONDS (or, with FUZZ_RUNS=N, for N
# executions), starting from the checked-in seed corpus and the recorded
# crashes (tests/fuzz/corpus/T, tests/fuzz/crashes/T; both read-only here:
# new inputs go to a scratch corpus).
#   tests/fuzz/run-fuzz.sh SECONDS TARGET...
# Environment: TCA_SRCDIR, TCA_BUILDDIR (default .), FUZZ_JOBS (2),
# FUZZ_RUNS, FUZZ_WORKDIR (default: a fresh temp dir, removed unless a
# target failed).
# Prints one line per target: executions, exec/s, coverage (edges of the
# instrumented engine code), features, corpus size.  Exit 1 if a target
# crashed, leaked, timed out or broke an invariant: its log and the input
# (crash-*, leak-*, timeout-*) are kept and named, and the input goes into
# tests/fuzz/crashes/T as a regression test once the bug is fixed.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 SECONDS TARGET..." >&2; exit 2; }
secs=$1
shift
src=${TCA_SRCDIR:-.}
build=${TCA_BUILDDIR:-.}
jobs=${FUZZ_JOBS:-2}
for t in "$@"; do
	[ -x "$build/tests/fuzz/fuzz-$t" ] || {
		echo "run-fuzz: $build/tests/fuzz/fuzz-$t is missing: run make fuzz" >&2; exit 2; }
done
if [ -n "${FUZZ_WORKDIR:-}" ]; then
	work=$FUZZ_WORKDIR
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/tca-fuzz.XXXXXX")
fi

run_one() {
	t=$1
	mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/$t/artifacts/"
	[ -n "${FUZZ_RUNS:-}" ] && set -- "$@" -runs="$FUZZ_RUNS"
	dirs="$src/tests/fuzz/corpus/$t"
	[ -d "$src/tests/fuzz/crashes/$t" ] && dirs="$dirs $src/tests/fuzz/crashes/$t"
	# shellcheck disable=SC2086
	if "$build/tests/fuzz/fuzz-$t" "$@" "$work/$t/corpus" $dirs >"$work/$t/log" 2>&1; then
		echo ok > "$work/$t/status"
	else
		echo failed > "$work/$t/status"
	fi
}

# at most $jobs at once
running=0
for t in "$@"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait

rc=0
for t in "$@"; do
	log="$work/$t/log"
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
	execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
	rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
	cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$done_line" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
	if [ "$(cat "$work/$t/status")" = ok ]; then
		printf 'fuzz-%-9s ok      %s executions, %s exec/s, cov %s, ft %s, corpus %s\n' \
		    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
	else
		rc=1
		printf 'fuzz-%-9s FAILED  after %s executions; log %s\n' "$t" "${execs:-?}" "$log"
		grep -E 'ERROR|SUMMARY|invariant broken|^    #[0-9]' "$log" | head -n 25 | sed 's/^/    /'
		for a in "$work/$t/artifacts"/*; do
			[ -f "$a" ] && echo "    input: $a ($(wc -c < "$a") bytes; replay: tests/fuzz/replay-$t $a)"
		done
	fi
done
if [ "$rc" = 0 ] && [ -z "${FUZZ_WORKDIR:-}" ]; then
	rm -rf "$work"
fi
exit $rc
