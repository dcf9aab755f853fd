#!/usr/bin/env bash
# ab.sh - compare engine builds or settings on a noisy machine: rounds that
# each run every variant and then the in-process crypto floor back to back,
# on the 1-tenant token `make bench` cached, and the medians over the rounds.
# A ratio between runs minutes apart is worth little on a machine whose speed
# drifts by 20 % (docs/performance.md, "Paired rounds"); one within a round is.
#
# usage: tests/bench/ab.sh NAME=ENGINED[,tmpfs][,conf=FILE] ...
#   NAME      a label for the variant
#   ENGINED   a tca-engined binary, e.g. built in another git worktree
#   tmpfs     the variant's store goes to /dev/shm (nothing it answers is
#             durable: a comparison, not a way to run the engine)
#   conf=FILE extra engine configuration lines, appended to the variant's
# environment (defaults in brackets):
#   AB_ROUNDS [4], AB_SECONDS [5], AB_WARMUP [1], AB_CLIENTS [16], AB_POOL [4]
#   AB_OUT [a new file in $TMPDIR]: every measurement as JSON lines
#   TCA_BUILDDIR [the tree this script is in], TCA_SRCDIR [same],
#   TCA_BENCH_CACHE [/var/tmp/tca-bench-cache], SOFTHSM_MODULE
# Run `make bench` once first: it creates the cached token.
#
# Example, the store experiment of docs/performance.md:
#   tests/bench/ab.sh disk=./tca-engined shm=./tca-engined,tmpfs
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TCA_BUILDDIR=${TCA_BUILDDIR:-$(cd "$HERE/../.." && pwd)}
TCA_SRCDIR=${TCA_SRCDIR:-$TCA_BUILDDIR}
CACHE=${TCA_BENCH_CACHE:-/var/tmp/tca-bench-cache}
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ROUNDS=${AB_ROUNDS:-4}
SECS=${AB_SECONDS:-5}
WARMUP=${AB_WARMUP:-1}
CLIENTS=${AB_CLIENTS:-16}
POOL=${AB_POOL:-4}
CLIENT="$TCA_BUILDDIR/tests/bench/tca-bench-client"
INPROC="$TCA_BUILDDIR/tests/bench/tca-bench-inproc"
TCA_CLIENT="$TCA_BUILDDIR/tca-client"
DIR="$CACHE/v1-n1"
TENANT=t00000

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
for tool in jq "$CLIENT" "$INPROC" "$TCA_CLIENT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "ab.sh: $tool not found (build first)" >&2; exit 1; }
done
[ -f "$DIR/state.db" ] && [ -f "$DIR/label" ] ||
	{ echo "ab.sh: no cached 1-tenant token in $DIR: run make bench once" >&2; exit 1; }

NAMES=() BINS=() TMPFS=() CONFS=()
for v in "$@"; do
	[[ "$v" == *=* ]] || usage
	name=${v%%=*} rest=${v#*=} bin=${rest%%,*} opts=
	[[ "$rest" == *,* ]] && opts=${rest#*,}
	[ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 1; }
	tmpfs=0 conf=
	IFS=, read -r -a o <<<"$opts"
	for x in "${o[@]}"; do
		case $x in
		tmpfs) tmpfs=1 ;;
		conf=*) conf=${x#conf=}; [ -r "$conf" ] || { echo "ab.sh: cannot read $conf" >&2; exit 1; } ;;
		'') ;;
		*) usage ;;
		esac
	done
	NAMES+=("$name") BINS+=("$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")")
	TMPFS+=("$tmpfs") CONFS+=("$conf")
done

OUT=${AB_OUT:-$(mktemp "${TMPDIR:-/tmp}/tca-ab-XXXXXX.jsonl")}
: >"$OUT"	# rounds are read back by position
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tca-ab-XXXXXX")
SHM=
PID=
cleanup() {
	[ -z "$PID" ] || { kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
	rm -rf "$WORK"
	[ -z "$SHM" ] || rm -rf "$SHM"
}
trap cleanup EXIT
export SOFTHSM2_CONF="$DIR/softhsm2.conf"
URI="pkcs11:token=$(cat "$DIR/label")"

# run_variant I: start variant I on a fresh copy of the store and load it
run_variant() {
	local i=$1 db=$WORK t0
	if [ "${TMPFS[$i]}" = 1 ]; then
		[ -n "$SHM" ] || SHM=$(mktemp -d /dev/shm/tca-ab-XXXXXX)
		db=$SHM
	fi
	rm -f "$db"/state.db*
	cp "$DIR/state.db" "$db/state.db"
	cat >"$WORK/engine.conf" <<EOC
socket.path = $WORK/engine.sock
socket.mode = 0600
token.profiles_dir = $TCA_SRCDIR/hsm-profiles
token.profile = softhsm2
token.module = $SOFTHSM_MODULE
token.uri = $URI
token.pin_file = $DIR/user.pin
token.pool_size = $POOL
store.path = $db/state.db
roles.admin_uids = $(id -u)
roles.frontend_uids = $(id -u)
log.level = warning
schedule.enabled = false
# the benchmark's clients present no one-time passwords
device.registration = none
EOC
	[ -z "${CONFS[$i]}" ] || cat "${CONFS[$i]}" >>"$WORK/engine.conf"
	chmod 0600 "$WORK/engine.conf"
	sync
	rm -f "$WORK/engine.sock"
	t0=$(date +%s%N)
	"${BINS[$i]}" --config "$WORK/engine.conf" 2>>"$WORK/engine-${NAMES[$i]}.log" &
	PID=$!
	if ! "$CLIENT" ready --socket "$WORK/engine.sock" --since-ns "$t0" --timeout-ms 60000 >/dev/null; then
		tail -n 5 "$WORK/engine-${NAMES[$i]}.log" >&2
		echo "ab.sh: ${NAMES[$i]} did not start" >&2
		exit 1
	fi
	[ -s "$WORK/ca.pem" ] ||
		"$TCA_CLIENT" --socket "$WORK/engine.sock" cacerts --tenant "$TENANT" >"$WORK/ca.pem"
	"$CLIENT" load --socket "$WORK/engine.sock" --label "${NAMES[$i]}" --tenants 1 \
		--clients "$CLIENTS" --csr-type ec-p256 --seconds "$SECS" --warmup "$WARMUP" \
		--csr-cache "$CACHE/csrs" --engine-pid "$PID" --out "$OUT" 2>&1 | tail -n 1 >&2
	kill -TERM "$PID"
	wait "$PID" || { echo "ab.sh: ${NAMES[$i]} exited $?" >&2; exit 1; }
	PID=
}

for r in $(seq "$ROUNDS"); do
	echo "round $r of $ROUNDS" >&2
	for i in "${!NAMES[@]}"; do
		run_variant "$i"
	done
	"$INPROC" floor --module "$SOFTHSM_MODULE" --uri "$URI" --pin-file "$DIR/user.pin" \
		--tenant "$TENANT" --ca-pem "$WORK/ca.pem" --csr-type ec-p256 \
		--csr-cache "$CACHE/csrs" --threads "$CLIENTS" --pool "$POOL" --seconds "$SECS" \
		--warmup "$WARMUP" --label floor --out "$OUT" 2>&1 | tail -n 1 >&2
done

# every round is: one line per variant, then the floor's
{
printf 'variant\trounds\tcerts/s\tengine-CPU-ms/cert\tp50-ms\tp99-ms\tvs-floor\tper round\n'
jq -rs --argjson nv "${#NAMES[@]}" '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def num: if type == "number" then (. * 1000 | round / 1000 | tostring) else "-" end;
	[ .[] | select(.kind == "engine" or .kind == "floor") ] as $m
	| [ range(0; $m | length; $nv + 1) as $o | $m[$o:$o + $nv + 1] ] as $rounds
	| ($rounds | map(.[$nv].rate)) as $floor
	| range(0; $nv + 1) as $i
	| [ $rounds[] | .[$i] ] as $v
	| [ range(0; $v | length) as $k | $v[$k].rate / $floor[$k] ] as $ratio
	| [ $v[0].label, ($v | length | tostring), ($v | map(.rate) | median | round | tostring),
	    ($v | map(.cpu_ms_per_op // empty) | median | num),
	    ($v | map(.p50_ms // empty) | median | num), ($v | map(.p99_ms // empty) | median | num),
	    (($ratio | median) * 100 | round | tostring) + " %",
	    ($ratio | map(. * 100 | round | tostring + " %") | join(", ")) ]
	| @tsv' "$OUT"
} | column -t -s "$(printf '\t')"
echo "measurements: $OUT" >&2
