#!/bin/sh
# run-tests.sh - README command two (and CI): install what is missing, build
# with -Werror, run the whole test suite, `make distcheck`, then the fuzzing
# and sanitizer stages (tools/run-sanitizers.sh: each fuzz target for 60 s,
# the unit tests under valgrind, the whole suite under ASan + UBSan).
# TCA_SANITIZERS=0 skips those stages (a quick local run).
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
took() { echo "== $1: $(( $(date +%s) - t0 )) s"; t0=$(date +%s); }
tools/install-deps.sh
./autogen.sh
./configure --enable-werror --with-postgresql=yes
make -j"$(nproc)"
took "dependencies, configure and build"
# twice as many tests as cores at once: most integration tests spend their
# time waiting (a server, a token, a poll), and the suite is built to pass
# on a loaded machine (measured on 2 cores, quiet: 117 s with -j2, 82 s
# with -j4)
if ! make -j"$(( $(nproc) * 2 ))" check; then
	for f in tests/unit/*.log tests/integration/*.log; do
		[ -f "$f" ] || continue
		grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null || continue
		echo "==== $f"; tail -n 80 "$f"
	done
	exit 1
fi
took "make check"
if [ "${TCA_SANITIZERS:-1}" = 0 ]; then
	make distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror --with-postgresql=yes"
	exit 0
fi
# distcheck proves the tarball builds (VPATH, -Werror), installs and
# uninstalls; its test run is cut to the walkthrough, because the ASan stage
# below runs the whole suite from the same distribution tree (make distdir)
# in a VPATH build, which shows that the tarball holds all the tests need
make distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror --with-postgresql=yes" \
    TESTS="tests/integration/demo.sh"
took "make distcheck"
tools/run-sanitizers.sh
