#!/bin/sh
# run-tests.sh - README command two (and CI): install what is missing, build
# with -Werror, run the whole test suite, then `make distcheck`.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
./autogen.sh
./configure --enable-werror
make -j"$(nproc)"
if ! make -j"$(nproc)" check; then
	for f in tests/unit/*.log tests/integration/*.log; do
		[ -f "$f" ] || continue
		grep -q -E '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null || continue
		echo "==== $f"; tail -n 80 "$f"
	done
	exit 1
fi
make distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror
