#!/bin/sh
# build.sh - `make fuzz`: builds the libFuzzer targets (tests/fuzz/fuzz-*.c)
# with clang, -fsanitize=fuzzer,address,undefined, against the engine's core
# sources compiled with the same instrumentation (coverage-guided fuzzing
# needs the code under test instrumented, not only the target).
#
# Called by the Makefile, which passes (environment):
#   FUZZ_CC      clang (configure's choice, or `make fuzz FUZZ_CC=clang-14`)
#   FUZZ_CPPFLAGS  -D and -I flags of the normal build
#   FUZZ_WARN    the normal build's warning flags (-Werror dropped: clang
#                warns about other things than gcc)
#   FUZZ_LIBS    the libraries the engine core links with
#   FUZZ_SOURCES the engine core's sources (libtca_core_la_SOURCES)
#   FUZZ_TARGETS target names: tests/fuzz/fuzz-NAME.c -> tests/fuzz/fuzz-NAME
#   srcdir, builddir
# Output: $builddir/tests/fuzz/fuzz-NAME, objects in $builddir/tests/fuzz/obj.
set -eu

: "${FUZZ_CC:=clang}" "${srcdir:?}" "${builddir:?}"
out="$builddir/tests/fuzz"
obj="$out/obj"
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -fno-omit-frame-pointer -pthread $(echo "$FUZZ_WARN" | sed 's/-Werror//g')"

need() {
	echo "make fuzz: $1" >&2
	echo "make fuzz needs clang with libFuzzer and the sanitizer runtimes" \
	    "(Debian 12: apt-get install clang; another compiler: make fuzz FUZZ_CC=clang-14)" >&2
	exit 1
}
command -v "$FUZZ_CC" >/dev/null 2>&1 || need "compiler '$FUZZ_CC' not found"
mkdir -p "$obj"
probe="$obj/probe"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    > "$probe.c"
"$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" >"$probe.log" 2>&1 ||
    need "'$FUZZ_CC' cannot build a libFuzzer program: $(tail -n 3 "$probe.log")"
rm -f "$probe" "$probe.c" "$probe.log"

# the core, instrumented for coverage but without libFuzzer's main
jobs=$(nproc 2>/dev/null || echo 2)
objs=""
list="$obj/sources"
: > "$list"
for s in $FUZZ_SOURCES; do
	case "$s" in *.c) ;; *) continue ;; esac
	o="$obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"
	objs="$objs $o"
	printf '%s %s\n' "$srcdir/$s" "$o" >> "$list"
done
export FUZZ_CC FUZZ_CPPFLAGS cflags san
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 sh -c 'echo "  FUZZCC   $1"; exec $FUZZ_CC $FUZZ_CPPFLAGS $cflags $san \
    -fsanitize=fuzzer-no-link -c "$0" -o "$1"' < "$list"
rm -f "$obj/libtca-fuzz.a"
# shellcheck disable=SC2086
ar rcs "$obj/libtca-fuzz.a" $objs

for t in $FUZZ_TARGETS; do
	echo "  FUZZLD   tests/fuzz/fuzz-$t"
	# shellcheck disable=SC2086
	$FUZZ_CC $FUZZ_CPPFLAGS $cflags $san -fsanitize=fuzzer \
	    -I"$srcdir/tests/fuzz" "$srcdir/tests/fuzz/fuzz-$t.c" "$obj/libtca-fuzz.a" \
	    $FUZZ_LIBS -o "$out/fuzz-$t"
done
echo "make fuzz: built$(for t in $FUZZ_TARGETS; do printf ' tests/fuzz/fuzz-%s' "$t"; done)"
