#!/usr/bin/env bash
# run-bench.sh - `make bench` (docs/performance.md): how many certificates per
# second the engine issues over its socket, compared with ceilings the
# harness measures itself against the same SoftHSMv2 token and key type:
#   (a) raw signing: tca_token_sign() (our token layer) and a bare PKCS#11
#       C_Sign loop, N threads;
#   (b) the in-process crypto floor: CSR parse + check (signature
#       verification) + certificate assembly + C_Sign, no socket, no store;
#   (c) the naive alternative: one `openssl x509 -req -engine pkcs11` process
#       per certificate;
# and how issuance, start-up time and memory behave with 1, 1,000 and 10,000
# tenant CAs on the token.  Tokens holding many tenants are created once and
# cached ($TCA_BENCH_CACHE) for later runs.
#
# Results: one JSON object per measurement in $TCA_BENCH_RESULTS/bench-*.jsonl
# (also latest.jsonl), a summary document latest.json with the ratios, and the
# table (latest.txt, also printed).
#
# Environment (defaults in brackets):
#   TCA_BENCH_SECONDS   measurement window per point, seconds [5]
#   TCA_BENCH_WARMUP    unrecorded warm-up before each window, seconds [1]
#   TCA_BENCH_CLIENTS   concurrency levels [1 4 16 64]
#   TCA_BENCH_TENANTS   tenant counts for the scaling runs [1 1000 10000]
#   TCA_BENCH_SCALE_CLIENTS  clients for the scaling runs [16]
#   TCA_BENCH_SCALE_ROUNDS   rounds over the tenant counts, averaged [2]
#   TCA_BENCH_NAIVE_SCALED   openssl processes for (c) at the larger counts [3]
#   TCA_BENCH_POOL      token.pool_size of engine and in-process runs [4]
#   TCA_BENCH_NAIVE     openssl processes for (c) [50]
#   TCA_BENCH_CACHE     token/store cache [/var/tmp/tca-bench-cache]
#   TCA_BENCH_RESULTS   results directory [$TCA_BUILDDIR/tests/bench/results]
#   TCA_BENCH_MKCA_CONNECTIONS  parallel ca.create connections [4]
set -euo pipefail

: "${TCA_BUILDDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${TCA_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
SECS=${TCA_BENCH_SECONDS:-5}
WARMUP=${TCA_BENCH_WARMUP:-1}
CLIENTS=${TCA_BENCH_CLIENTS:-"1 4 16 64"}
SIZES=${TCA_BENCH_TENANTS:-"1 1000 10000"}
SCALE_CLIENTS=${TCA_BENCH_SCALE_CLIENTS:-16}
POOL=${TCA_BENCH_POOL:-4}
NAIVE=${TCA_BENCH_NAIVE:-50}
CACHE=${TCA_BENCH_CACHE:-/var/tmp/tca-bench-cache}
RESULTS=${TCA_BENCH_RESULTS:-$TCA_BUILDDIR/tests/bench/results}
MKCA_CONN=${TCA_BENCH_MKCA_CONNECTIONS:-4}
CACHE_VERSION=v1

ENGINED="$TCA_BUILDDIR/tca-engined"
CLIENT="$TCA_BUILDDIR/tests/bench/tca-bench-client"
INPROC="$TCA_BUILDDIR/tests/bench/tca-bench-inproc"
CA_ADMIN="$TCA_BUILDDIR/ca-admin"
TCA_CLIENT="$TCA_BUILDDIR/tca-client"
P11_ENGINE=${TCA_BENCH_P11_ENGINE:-/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}

for t in "$ENGINED" "$CLIENT" "$INPROC" "$CA_ADMIN" "$TCA_CLIENT"; do
	[ -x "$t" ] || { echo "run-bench: $t is missing: run \`make bench\`" >&2; exit 1; }
done
for t in openssl softhsm2-util jq; do
	command -v "$t" >/dev/null 2>&1 || { echo "run-bench: $t is required" >&2; exit 1; }
done
[ -f "$SOFTHSM_MODULE" ] || { echo "run-bench: no SoftHSMv2 module at $SOFTHSM_MODULE" >&2; exit 1; }

mkdir -p "$RESULTS" "$CACHE"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$RESULTS/bench-$STAMP.jsonl"
: >"$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tca-bench-XXXXXX")
ENGINE_PID=
cleanup() {
	if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
		kill -KILL "$ENGINE_PID" 2>/dev/null || true
		wait "$ENGINE_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
emit() { printf '%s\n' "$1" >>"$OUT"; }

# ------------------------------------------------------------ machine

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
emit "$(jq -cn --arg cpu "$cpu" --arg nproc "$(nproc)" --arg kernel "$(uname -r)" \
	--arg openssl "$(openssl version)" --arg softhsm "$(softhsm2-util --version)" \
	--arg mem "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
	--arg rev "$(git -C "$TCA_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg date "$STAMP" --arg secs "$SECS" --arg warmup "$WARMUP" --arg pool "$POOL" \
	'{kind: "machine", cpu: $cpu, nproc: ($nproc|tonumber), kernel: $kernel,
	  mem_kib: ($mem|tonumber), openssl: $openssl, softhsm: $softhsm, git: $rev,
	  date: $date, seconds: ($secs|tonumber), warmup: ($warmup|tonumber),
	  pool: ($pool|tonumber)}')"
log "results: $OUT"

# ------------------------------------------------------------ token cache

# cache_dir N: the directory of the cached token + store with N tenant CAs
cache_dir() { echo "$CACHE/$CACHE_VERSION-n$1"; }

write_config() {	# dir: engine.conf for the cached token, store in $WORK
	local dir=$1 db=$2
	cat >"$WORK/engine.conf" <<EOC
socket.path = $WORK/engine.sock
socket.mode = 0600
token.profiles_dir = $TCA_SRCDIR/hsm-profiles
token.profile = softhsm2
token.module = $SOFTHSM_MODULE
token.uri = pkcs11:token=$(cat "$dir/label")
token.pin_file = $dir/user.pin
token.pool_size = $POOL
store.path = $db
roles.admin_uids = $(id -u)
roles.frontend_uids = $(id -u)
log.level = warning
EOC
	chmod 0600 "$WORK/engine.conf"
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
}

# start_engine: sets ENGINE_PID and STARTUP_MS (exec until `status` answers)
start_engine() {
	local t0
	rm -f "$WORK/engine.sock"
	t0=$(date +%s%N)
	"$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" &
	ENGINE_PID=$!
	if ! STARTUP_MS=$("$CLIENT" ready --socket "$WORK/engine.sock" --since-ns "$t0" \
	    --timeout-ms 120000); then
		tail -n 20 "$WORK/engine.log" >&2
		return 1
	fi
	if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
		tail -n 20 "$WORK/engine.log" >&2
		return 1
	fi
}

stop_engine() {
	local rc=0
	kill -TERM "$ENGINE_PID"
	wait "$ENGINE_PID" || rc=$?
	ENGINE_PID=
	[ "$rc" -eq 0 ] || { tail -n 20 "$WORK/engine.log" >&2; log "engine exited $rc"; return 1; }
}

rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# make_cache N: provision a token, create N tenant CAs through the engine,
# keep token + store (state.db) under cache_dir N
make_cache() {
	local n=$1 dir tmp label t0 t1
	dir=$(cache_dir "$n")
	tmp="$dir.tmp"
	rm -rf "$dir" "$tmp"
	mkdir -p "$tmp/tokens"
	chmod 0700 "$tmp"
	label="tca-bench-$n"
	echo "$label" >"$tmp/label"
	cat >"$tmp/softhsm2.conf" <<EOC
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOC
	(umask 077; printf 'so-%s\n' "$RANDOM$RANDOM" >"$tmp/so.pin"
	 printf 'pin-%s\n' "$RANDOM$RANDOM" >"$tmp/user.pin")
	# the token directory must be at its final path: build in place
	mv "$tmp" "$dir"
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
	"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
		--label "$label" --so-pin-file "$dir/so.pin" --pin-file "$dir/user.pin" >/dev/null
	write_config "$dir" "$dir/state.db"
	start_engine
	log "creating $n tenant CAs in $dir ($MKCA_CONN connections)"
	t0=$(date +%s%N)
	"$CLIENT" mkca --socket "$WORK/engine.sock" --count "$n" --connections "$MKCA_CONN" \
		--out "$WORK/mkca.json"
	t1=$(date +%s%N)
	stop_engine
	jq -c --arg n "$n" '. + {tenants: ($n|tonumber)}' "$WORK/mkca.json" >"$dir/created.json"
	emit "$(cat "$dir/created.json")"
	rm -f "$WORK/mkca.json"
	touch "$dir/ready"
	log "created $n tenant CAs in $(( (t1 - t0) / 1000000 )) ms"
}

ensure_cache() {
	local dir
	dir=$(cache_dir "$1")
	if [ -f "$dir/ready" ] && [ -f "$dir/state.db" ]; then
		jq -c '. + {cached: true}' "$dir/created.json" >>"$OUT"
		return 0
	fi
	make_cache "$1"
}

# use_size N: fresh copy of the cached store (issuance grows it), same token
use_size() {
	local dir
	dir=$(cache_dir "$1")
	rm -f "$WORK"/state.db*
	cp "$dir/state.db" "$WORK/state.db"
	write_config "$dir" "$WORK/state.db"
	: >"$WORK/engine.log"
}

# engine_up N: start on the size-N cache and record start-up time and memory;
# rebuilds the cache once if the engine refuses it (e.g. an older schema)
engine_up() {
	local n=$1 label=$2
	use_size "$n"
	if ! start_engine; then
		log "the engine did not start on the cached $n-tenant store; rebuilding it"
		ENGINE_PID=
		make_cache "$n"
		use_size "$n"
		start_engine
	fi
	emit "$(jq -cn --arg n "$n" --arg ms "$STARTUP_MS" --arg rss "$(rss_kib "$ENGINE_PID" VmRSS)" \
		--arg hwm "$(rss_kib "$ENGINE_PID" VmHWM)" --arg lbl "$label" \
		'{kind: "startup", "label": $lbl, tenants: ($n|tonumber), startup_ms: ($ms|tonumber),
		  rss_kib: ($rss|tonumber), hwm_kib: ($hwm|tonumber)}')"
	log "engine up with $n tenants in $STARTUP_MS ms, RSS $(rss_kib "$ENGINE_PID" VmRSS) KiB"
}

memory_after() {
	emit "$(jq -cn --arg n "$1" --arg lbl "$2" --arg rss "$(rss_kib "$ENGINE_PID" VmRSS)" \
		--arg hwm "$(rss_kib "$ENGINE_PID" VmHWM)" \
		'{kind: "memory", "label": $lbl, tenants: ($n|tonumber),
		  rss_kib: ($rss|tonumber), hwm_kib: ($hwm|tonumber)}')"
}

load() {	# label tenants clients csr_type [rate]
	"$CLIENT" load --socket "$WORK/engine.sock" --label "$1" --tenants "$2" --clients "$3" \
		--csr-type "$4" ${5:+--rate "$5"} --seconds "$SECS" --warmup "$WARMUP" \
		--engine-pid "$ENGINE_PID" \
		--csr-cache "$CACHE/csrs" --out "$OUT" ||
		log "load $1 tenants=$2 clients=$3 $4: errors (see first_error in $OUT)"
}

for n in $SIZES; do ensure_cache "$n"; done
BASE=$(for n in $SIZES; do echo "$n"; done | sort -n | head -n 1)
BASE_DIR=$(cache_dir "$BASE")
TENANT=t00000

# ------------------------------------------------------------ engine over the socket
log "engine over the socket: $BASE tenant(s), clients $CLIENTS"
engine_up "$BASE" main
"$TCA_CLIENT" --socket "$WORK/engine.sock" cacerts --tenant "$TENANT" >"$WORK/ca.pem"
for csr in ec-p256 rsa-2048; do
	for c in $CLIENTS; do
		load main "$BASE" "$c" "$csr"
	done
done
# latency under a load below saturation: 64 connected clients offered half
# the closed-loop rate measured with 64 clients
sat=$(jq -s '[.[] | select(.kind == "engine" and .label == "main" and .csr_type == "ec-p256")]
	| max_by(.clients) | .rate' "$OUT")
half=$(jq -n --arg s "$sat" '($s|tonumber) / 2 | floor')
if [ "$half" -gt 0 ]; then
	load open50 "$BASE" 64 ec-p256 "$half"
fi
memory_after "$BASE" main
stop_engine

# ------------------------------------------------------------ (a), (b) in process
log "in-process ceilings (same token, key of $TENANT, pool $POOL)"
export SOFTHSM2_CONF="$BASE_DIR/softhsm2.conf"
URI="pkcs11:token=$(cat "$BASE_DIR/label")"
for c in $CLIENTS; do
	"$INPROC" sign --module "$SOFTHSM_MODULE" --uri "$URI" --pin-file "$BASE_DIR/user.pin" \
		--tenant "$TENANT" --threads "$c" --pool "$POOL" --seconds "$SECS" \
		--warmup "$WARMUP" --out "$OUT" || log "sign threads=$c: errors"
	"$INPROC" p11sign --module "$SOFTHSM_MODULE" --token-label "$(cat "$BASE_DIR/label")" \
		--pin-file "$BASE_DIR/user.pin" --tenant "$TENANT" --threads "$c" \
		--seconds "$SECS" --warmup "$WARMUP" --out "$OUT" || log "p11sign threads=$c: errors"
	for csr in ec-p256 rsa-2048; do
		"$INPROC" floor --module "$SOFTHSM_MODULE" --uri "$URI" \
			--pin-file "$BASE_DIR/user.pin" --tenant "$TENANT" --ca-pem "$WORK/ca.pem" \
			--csr-type "$csr" --csr-cache "$CACHE/csrs" --threads "$c" --pool "$POOL" \
			--seconds "$SECS" --warmup "$WARMUP" --out "$OUT" ||
			log "floor $csr threads=$c: errors"
	done
done

# ------------------------------------------------------------ (c) naive openssl
# naive N TENANTS CA_PEM LABEL: N sequential `openssl x509 -req` processes,
# the libp11 engine signing with the tenant's key on the size-TENANTS token
naive() {
	local n=$1 size=$2 capem=$3 label=$4 dir pin i t0 t1 csr
	dir=$(cache_dir "$size")
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
	pin=$(head -n 1 "$dir/user.pin")
	csr="$WORK/dev.csr"
	openssl req -inform DER -in "$CACHE/csrs/csr-ec-p256-000000.der" -out "$csr"
	: >"$WORK/naive.txt"
	for i in $(seq 1 "$n"); do
		t0=$(date +%s%N)
		PKCS11_MODULE_PATH="$SOFTHSM_MODULE" openssl x509 -req -engine pkcs11 \
			-CAkeyform engine \
			-CAkey "pkcs11:token=$(cat "$dir/label");object=tca-ca:$TENANT;type=private;pin-value=$pin" \
			-CA "$capem" -in "$csr" -out "$WORK/naive.pem" -days 365 \
			-set_serial "$((1000 + i))" >/dev/null 2>"$WORK/naive.err" || {
			cat "$WORK/naive.err" >&2
			log "naive openssl path failed"
			return 1
		}
		t1=$(date +%s%N)
		echo $(( t1 - t0 )) >>"$WORK/naive.txt"
	done
	openssl verify -CAfile "$capem" "$WORK/naive.pem" >/dev/null
	emit "$(sort -n "$WORK/naive.txt" | jq -sc --arg lbl "$label" --arg n "$size" '
		def pct(p): .[((p / 100 * length) | ceil) - 1] / 1e6;
		{kind: "naive", "label": $lbl, tenants: ($n|tonumber), ops: length,
		 seconds: (add / 1e9), rate: (length / (add / 1e9)),
		 p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: (.[-1] / 1e6),
		 mean_ms: (add / length / 1e6)}')"
}

if [ -f "$P11_ENGINE" ]; then
	log "naive path: $NAIVE x openssl x509 -req -engine pkcs11"
	naive "$NAIVE" "$BASE" "$WORK/ca.pem" main || true
else
	log "SKIP (c): $P11_ENGINE not found (Debian package libengine-pkcs11-openssl)"
	emit '{"kind":"skip","what":"naive","reason":"libengine-pkcs11-openssl not installed"}'
fi

# ------------------------------------------------------------ tenant scaling
# Rounds interleave the sizes so that drift in the machine's load (it may be
# shared) hits every size alike; the report averages the rounds.
ROUNDS=${TCA_BENCH_SCALE_ROUNDS:-2}
for n in $SIZES; do
	# the token's share: open alone (start-up, memory), signing spread over
	# the n keys with the same pool and threads
	dir=$(cache_dir "$n")
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
	"$INPROC" open --module "$SOFTHSM_MODULE" --uri "pkcs11:token=$(cat "$dir/label")" \
		--pin-file "$dir/user.pin" --pool "$POOL" --label scale --out "$OUT"
	"$INPROC" sign --module "$SOFTHSM_MODULE" --uri "pkcs11:token=$(cat "$dir/label")" \
		--pin-file "$dir/user.pin" --tenant "$TENANT" --tenants "$n" \
		--threads "$SCALE_CLIENTS" --pool "$POOL" --seconds "$SECS" --warmup "$WARMUP" \
		--label scale --out "$OUT" || log "sign tenants=$n: errors"
done
for round in $(seq 1 "$ROUNDS"); do
	for n in $SIZES; do
		log "tenant scaling, round $round/$ROUNDS: $n tenants, $SCALE_CLIENTS clients"
		engine_up "$n" scale
		load scale "$n" "$SCALE_CLIENTS" ec-p256
		memory_after "$n" scale
		[ -f "$WORK/ca-$n.pem" ] || "$TCA_CLIENT" --socket "$WORK/engine.sock" cacerts \
			--tenant "$TENANT" >"$WORK/ca-$n.pem"
		stop_engine
	done
done
# the naive path at the larger sizes: libp11 enumerates every key per process
if [ -f "$P11_ENGINE" ] && [ "${TCA_BENCH_NAIVE_SCALED:-3}" -gt 0 ]; then
	for n in $SIZES; do
		[ "$n" = "$BASE" ] && continue
		log "naive path at $n tenants: ${TCA_BENCH_NAIVE_SCALED:-3} processes"
		naive "${TCA_BENCH_NAIVE_SCALED:-3}" "$n" "$WORK/ca-$n.pem" scale || true
	done
fi

# ------------------------------------------------------------ re-issuance
# TODO(issue 5): time to re-issue 10,000 tenant CAs (ca-admin ca reissue --all
# or the scheduler with testing.clock_file) and issuance p99 while it runs.
# Re-issuance exists; this measurement step is not written yet.
emit '{"kind":"todo","what":"reissue","reason":"re-issuance at scale: harness step not written yet; not measured"}'
log "TODO: re-issuance at scale is not measured yet"

# ------------------------------------------------------------ summary
cp "$OUT" "$RESULTS/latest.jsonl"
bash "$(dirname "${BASH_SOURCE[0]}")/report.sh" "$OUT" "$RESULTS/latest.json" | tee "$RESULTS/latest.txt"
log "results: $OUT, $RESULTS/latest.json, $RESULTS/latest.txt"
