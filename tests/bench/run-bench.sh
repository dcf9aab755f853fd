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
# how issuance, start-up time and memory behave with 1, 1,000 and 10,000
# tenant CAs on the token; and how long the yearly scheduler takes to re-issue
# every tenant CA of the largest token, alone and under issuance load, with
# the issuance p99 before and during it; how long signing a CRL with 100,000
# revoked certificates takes (and where that time goes), and how many OCSP
# responses per second the engine gives next to its issuance rate; and how
# fast the certificate inventory (cert.list, cert.show, the per-state counts
# of `status`) answers with 10,000 tenants x 100 device certificates (about
# 1.5 minutes once its store is cached; building that store from the cached
# 10,000-tenant one adds about a minute once); and the same issuance and
# re-issuance on PostgreSQL with one and three engines next to SQLite, with
# the cost of the store's commit alone (about 5 minutes; skipped when the
# PostgreSQL programs are absent).  Tokens and stores holding
# many tenants, revocations or certificates are created once and cached
# ($TCA_BENCH_CACHE) for later runs.
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
#   TCA_BENCH_PAIRED_ROUNDS  rounds of (engine, floor, engine with its store
#                       on tmpfs) back to back for the headline ratio [3]
#   TCA_BENCH_NAIVE     openssl processes for (c) [50]
#   TCA_BENCH_CACHE     token/store cache [/var/tmp/tca-bench-cache]
#   TCA_BENCH_RESULTS   results directory [$TCA_BUILDDIR/tests/bench/results]
#   TCA_BENCH_MKCA_CONNECTIONS  parallel ca.create connections [4]
#   TCA_BENCH_REISSUE_RATE  certificates/s offered (open loop) during the
#                       re-issuance [half the closed-loop rate of the scaling
#                       runs at the largest tenant count; 300 when this run
#                       has none]
#   TCA_BENCH_REISSUE_TIMEOUT  seconds to wait for all re-issuances [300]
#   TCA_BENCH_REISSUE_BASE_SECONDS  the issuance window before the
#                       re-issuance, the p99 it is compared with [30]
#   TCA_BENCH_REISSUE_BASE_WARMUP  unrecorded load before that window [15]
#   TCA_BENCH_REISSUE_RUNS  which re-issuance runs: idle (nothing else
#                       running) and/or load (under issuance) [idle load]
#   TCA_BENCH_ENGINE_CONF  extra lines for every engine configuration, e.g.
#                       $'reissue.rate = 100\nreissue.workers = 1' to measure
#                       other settings [none]
#   TCA_BENCH_ONLY      run only these sections (space-separated): main
#                       (engine over the socket, in-process ceilings, naive
#                       path), scale (tenant scaling), reissue (re-issuance
#                       at scale), modules (one row per tested PKCS#11
#                       module: openCryptoki, tpm2-pkcs11, NSS softokn,
#                       SoftHSMv2), revocation (CRL signing with many
#                       revoked certificates, OCSP responses/s next to
#                       issuance), inventory (cert.list / cert.show /
#                       status counts at 10,000 tenants x 100 devices),
#                       est (enrollments/s through tca-estd over TLS next
#                       to the raw socket: est-bench.sh), pg (issuance on
#                       PostgreSQL with one and three engines next to
#                       SQLite, the store's commit alone, the re-issuance
#                       of the largest token's CAs on PostgreSQL; skipped
#                       when the PostgreSQL programs or libpq are absent)
#                       [all]; e.g. TCA_BENCH_ONLY=reissue
#   TCA_BENCH_MODULES   which modules [softhsm2 opencryptoki tpm2 nss]
#   TCA_BENCH_REVOKED   revoked certificates of the CRL benchmark, one
#                       store (cached) per count ["1000 100000"]
#   TCA_BENCH_CRL_SIGNS crl.sign calls timed, one after the other [3]
#   TCA_BENCH_REV_CLIENTS  clients of the OCSP and issuance runs [16]
#   TCA_BENCH_REV_ROUNDS   rounds of (issuance, OCSP) back to back [2]
#   TCA_BENCH_OCSP_POOL    certificates the OCSP requests ask about [200]
#   TCA_BENCH_OCSP_REVOKED ... of which revoked [50]
#   TCA_BENCH_INV_TENANTS  tenants of the inventory store; their token and
#                       store are the scale section's cache of that size [10000]
#   TCA_BENCH_INV_PER_TENANT  device certificates per tenant [100]
#   TCA_BENCH_INV_REVOKED  of which revoked [5]
#   TCA_BENCH_INV_BATCH    certificates written per commit [10000]
#   TCA_BENCH_INV_REPEAT   calls of each inventory operation per round [5]
#   TCA_BENCH_INV_ROUNDS   engine starts on the populated store; each waits
#                       31 s for the cached counts to go stale [2]
#   TCA_BENCH_PG_ROUNDS    rounds of (SQLite, PostgreSQL 1 node, N nodes)
#                       back to back per client count; 0: none [2]
#   TCA_BENCH_PG_CLIENTS   clients in total over the nodes ["15 48"]
#   TCA_BENCH_PG_NODES     engines of the several-node runs [3]
#   TCA_BENCH_PG_REISSUE   re-issuance runs on PostgreSQL: pg1 (one
#                       engine), pg3 (TCA_BENCH_PG_NODES engines) ["pg1 pg3"];
#                       empty: none
#   TCA_BENCH_PG_COMMIT_SECONDS  window of each `commits` run; 0: none [3]
#
# Exit status 1 (after the report) when a re-issuance correctness check
# failed; the checks and what failed are in the "reissue" results.
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
REISSUE_TIMEOUT=${TCA_BENCH_REISSUE_TIMEOUT:-300}
ONLY=${TCA_BENCH_ONLY:-}
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
for s in $ONLY; do
	case $s in
	main|scale|reissue|modules|revocation|inventory|est|pg) ;;
	*) echo "run-bench: TCA_BENCH_ONLY: unknown section $s (main, scale, reissue, modules, revocation, inventory, est, pg)" >&2; exit 2 ;;
	esac
done
for t in openssl softhsm2-util jq sqlite3; do
	command -v "$t" >/dev/null 2>&1 || { echo "run-bench: $t is required" >&2; exit 1; }
done
[ -f "$SOFTHSM_MODULE" ] || { echo "run-bench: no SoftHSMv2 module at $SOFTHSM_MODULE" >&2; exit 1; }

mkdir -p "$RESULTS" "$CACHE"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$RESULTS/bench-$STAMP.jsonl"
: >"$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tca-bench-XXXXXX")
ENGINE_PID=
LOAD_PID=
TMPFS_DB=
PG_PIDS=()
PGDIR=
cleanup() {
	local i
	for i in "${!PG_PIDS[@]}"; do
		if [ -n "${PG_PIDS[$i]}" ] && kill -0 "${PG_PIDS[$i]}" 2>/dev/null; then
			kill -KILL "${PG_PIDS[$i]}" 2>/dev/null || true
			wait "${PG_PIDS[$i]}" 2>/dev/null || true
		fi
	done
	if [ -n "$PGDIR" ]; then
		"$TCA_SRCDIR/tests/pg-cluster.sh" stop "$PGDIR/c" >/dev/null 2>&1 || true
		rm -rf "$PGDIR"
	fi
	if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
		kill -TERM "$LOAD_PID" 2>/dev/null || true
		wait "$LOAD_PID" 2>/dev/null || true
	fi
	if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
		kill -KILL "$ENGINE_PID" 2>/dev/null || true
		wait "$ENGINE_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
	[ -z "$TMPFS_DB" ] || rm -rf "$TMPFS_DB"
}
trap cleanup EXIT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
emit() { printf '%s\n' "$1" >>"$OUT"; }
# section NAME: whether TCA_BENCH_ONLY selects it (unset: every section)
section() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# ------------------------------------------------------------ machine

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
emit "$(jq -cn --arg cpu "$cpu" --arg nproc "$(nproc)" --arg kernel "$(uname -r)" \
	--arg openssl "$(openssl version)" --arg softhsm "$(softhsm2-util --version)" \
	--arg mem "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
	--arg rev "$(git -C "$TCA_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg date "$STAMP" --arg secs "$SECS" --arg warmup "$WARMUP" --arg pool "$POOL" \
	--arg only "$ONLY" \
	'{kind: "machine", cpu: $cpu, nproc: ($nproc|tonumber), kernel: $kernel,
	  mem_kib: ($mem|tonumber), openssl: $openssl, softhsm: $softhsm, git: $rev,
	  date: $date, seconds: ($secs|tonumber), warmup: ($warmup|tonumber),
	  pool: ($pool|tonumber), only: (if $only == "" then null else $only end)}')"
log "results: $OUT"

# ------------------------------------------------------------ token cache

# cache_dir N: the directory of the cached token + store with N tenant CAs
cache_dir() { echo "$CACHE/$CACHE_VERSION-n$1"; }

# write_config DIR DB [LOG_LEVEL [SCHEDULE]]: engine.conf for the cached token.
# The yearly scheduler stays off unless SCHEDULE is "on" (the re-issuance
# runs): the cached CAs fall due on the real clock's next 2 October, and the
# other measurements must not re-issue them meanwhile.
write_config() {
	local dir=$1 db=$2 level=${3:-warning} sched=false
	[ "${4:-off}" = on ] && sched=true
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
log.level = $level
schedule.enabled = $sched
device.registration = none
${TCA_BENCH_ENGINE_CONF:-}
EOC
	chmod 0600 "$WORK/engine.conf"
	export SOFTHSM2_CONF="$dir/softhsm2.conf"
}

# start_engine [READY-ARGS...]: sets ENGINE_PID and STARTUP_MS (exec until
# `status` answers); READY-ARGS go to `tca-bench-client ready` (--label L
# --out F: also a "ready" record of that first status call).
# Writes back what earlier steps left dirty first (store copies of up to
# ~50 MB each, WAL files), so a measurement does not pay for the previous
# one's I/O.  Suspected (not proven) cause of the seconds-long issuance
# stalls two full runs showed during the re-issuance run: the kernel flushing
# that data while the engine waits in fdatasync (docs/performance.md).
start_engine() {
	local t0
	sync
	rm -f "$WORK/engine.sock"
	t0=$(date +%s%N)
	"$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" &
	ENGINE_PID=$!
	if ! STARTUP_MS=$("$CLIENT" ready --socket "$WORK/engine.sock" --since-ns "$t0" \
	    --timeout-ms 120000 "$@"); then
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

# provision_token DIR LABEL: a fresh SoftHSMv2 token (softhsm2.conf, PINs,
# label) in DIR, and SOFTHSM2_CONF pointing at it
provision_token() {
	local dir=$1 label=$2 tmp
	tmp="$dir.tmp"
	rm -rf "$dir" "$tmp"
	mkdir -p "$tmp/tokens"
	chmod 0700 "$tmp"
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
}

# make_cache N: provision a token, create N tenant CAs through the engine,
# keep token + store (state.db) under cache_dir N
make_cache() {
	local n=$1 dir t0 t1
	dir=$(cache_dir "$n")
	provision_token "$dir" "tca-bench-$n"
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

ENSURED=" "
ensure_cache() {
	local dir
	# once per size and run (the inventory section may ask again)
	[[ $ENSURED == *" $1 "* ]] && return 0
	ENSURED="$ENSURED$1 "
	dir=$(cache_dir "$1")
	if [ -f "$dir/ready" ] && [ -f "$dir/state.db" ]; then
		jq -c '. + {cached: true}' "$dir/created.json" >>"$OUT"
		return 0
	fi
	make_cache "$1"
}

# use_size N [log.level [schedule]]: fresh copy of the cached store (issuance and
# re-issuance change it), same token
use_size() {
	local dir
	dir=$(cache_dir "$1")
	rm -f "$WORK"/state.db*
	cp "$dir/state.db" "$WORK/state.db"
	write_config "$dir" "$WORK/state.db" "${2:-warning}" "${3:-off}"
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

BASE=$(for n in $SIZES; do echo "$n"; done | sort -n | head -n 1)
MAX=$(for n in $SIZES; do echo "$n"; done | sort -n | tail -n 1)
BASE_DIR=$(cache_dir "$BASE")
TENANT=t00000
for n in $SIZES; do
	if section scale || { section main && [ "$n" = "$BASE" ]; } ||
	    { section revocation && [ "$n" = "$BASE" ]; } ||
	    { section pg && [ "$n" = "$BASE" ]; } ||
	    { section reissue && [ "$n" = "$MAX" ]; }; then
		ensure_cache "$n"
	fi
done

if section main; then
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

# ------------------------------------------------------------ paired rounds
# This machine's speed drifts by 20 % within minutes, so single points taken
# minutes apart make a poor ratio.  The headline ratio is the median over
# rounds that each run, back to back at the client count where the engine's
# sweep peaked: the engine as shipped (its store in $WORK, under TMPDIR, on
# disk unless TMPDIR is a tmpfs), the floor, and the engine with its store
# on tmpfs.  The tmpfs run is not a way to run the engine (nothing would be
# durable); it shows what the durable commits cost on this disk
# (docs/performance.md).
PAIRED=${TCA_BENCH_PAIRED_ROUNDS:-3}
peak_c=$(jq -s '[.[] | select(.kind == "engine" and .label == "main" and .csr_type == "ec-p256")]
	| max_by(.rate) | .clients' "$OUT")
if [ "$PAIRED" -gt 0 ] && [ "$peak_c" != null ]; then
	TMPFS_DB=
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		TMPFS_DB=$(mktemp -d /dev/shm/tca-bench-XXXXXX)
	else
		log "paired rounds: /dev/shm is not writable; no tmpfs comparison"
	fi
	log "paired rounds: $PAIRED x (engine, floor, engine with store on tmpfs) at $peak_c clients"
	for r in $(seq "$PAIRED"); do
		use_size "$BASE"
		if start_engine; then
			load "paired-disk-$r" "$BASE" "$peak_c" ec-p256
			stop_engine
		fi
		"$INPROC" floor --module "$SOFTHSM_MODULE" --uri "$URI" \
			--pin-file "$BASE_DIR/user.pin" --tenant "$TENANT" --ca-pem "$WORK/ca.pem" \
			--csr-type ec-p256 --csr-cache "$CACHE/csrs" --threads "$peak_c" --pool "$POOL" \
			--seconds "$SECS" --warmup "$WARMUP" --label "paired-floor-$r" --out "$OUT" ||
			log "paired floor round $r: errors"
		if [ -n "$TMPFS_DB" ]; then
			rm -f "$TMPFS_DB"/state.db*
			cp "$BASE_DIR/state.db" "$TMPFS_DB/state.db"
			write_config "$BASE_DIR" "$TMPFS_DB/state.db"
			if start_engine; then
				load "paired-tmpfs-$r" "$BASE" "$peak_c" ec-p256
				stop_engine
			fi
		fi
	done
	[ -z "$TMPFS_DB" ] || rm -rf "$TMPFS_DB"
	TMPFS_DB=
fi

# ------------------------------------------------------------ (c) naive openssl
if [ -f "$P11_ENGINE" ]; then
	log "naive path: $NAIVE x openssl x509 -req -engine pkcs11"
	naive "$NAIVE" "$BASE" "$WORK/ca.pem" main || true
else
	log "SKIP (c): $P11_ENGINE not found (Debian package libengine-pkcs11-openssl)"
	emit '{"kind":"skip","what":"naive","reason":"libengine-pkcs11-openssl not installed"}'
fi
fi	# section main

if section scale; then
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
fi	# section scale

# ------------------------------------------------------------ re-issuance at scale
# The yearly scheduler re-issues every tenant CA of the largest configured
# token ($MAX tenants: 10,000 by default), driven by testing.clock_file.
#  - The instant T: the first 10-02T02:00 UTC (schedule.at / schedule.tz, set
#    in the configuration) strictly after the newest notBefore of the CAs'
#    current certificates in the store.  The engine starts with its clock
#    file at T - 600 (nothing due); the flip renames a file holding T + 1 over
#    it (atomic; the engine reads the file on every call).  With the hook set,
#    the scheduler looks every 200 ms.
#  - seconds: from the flip (wall clock just before the rename) to the
#    timestamp of the last "CA re-issued" line of the engine's log (notice
#    level, written once that CA's record is committed): 1 ms resolution.  It
#    includes the scheduler noticing the flip (at most one 200 ms poll;
#    first_s, flip to the first re-issuance, shows it).  The harness counts
#    those lines every 100 ms to know when all are done; that only delays the
#    end of the concurrent load's window, not the figure.
#  - label "idle": nothing else runs.  Label "load": a fresh engine and store
#    copy; $SCALE_CLIENTS clients offer R certificates/s (open loop, tenants
#    drawn uniformly from all $MAX) for 30 s after 15 s of warm-up before the flip (engine
#    result reissue-base), then again from the flip until every CA is
#    re-issued (reissue-during: its window opens at the flip and ends when the
#    harness creates the stop file, at most ~0.1 s after the last one).
#    R: TCA_BENCH_REISSUE_RATE, else half the closed-loop rate of this run's
#    scaling runs at $MAX tenants, else 300.
#  - Checks after each run: exactly $MAX "CA re-issued" lines and no error
#    line in the log; `status`: every CA active, none with failing
#    re-issuance, no token signing error, no failed commit, nothing refused;
#    `ca list`: every CA's current certificate has notBefore T and a previous
#    one; t00000's new certificate has the old key and subject, a new serial
#    and a valid self-signature (openssl); in the store: $MAX ca-reissue
#    journal records and $MAX current certificates with notBefore T, and
#    `ca-admin journal verify` passes; the load had no errors.  A failed check
#    is logged, recorded in the "reissue" result (ok false, problems) and
#    makes the script exit 1 after the report.
REISSUE_FAILED=0
# The p99 before the re-issuance is the reference for the p99 during it: its
# window is of comparable length (a short window misses the rare slow
# requests a 40 s one catches), and it follows a warm-up long enough for a
# freshly started engine on a fresh store copy to settle (in one run a 40 s
# window starting 1 s after start-up had a p99 of 151 ms, against 14 ms
# after 15 s of warm-up).
REISSUE_BASE_SECS=${TCA_BENCH_REISSUE_BASE_SECONDS:-30}
REISSUE_BASE_WARMUP=${TCA_BENCH_REISSUE_BASE_WARMUP:-15}

set_clock() {	# unix seconds: the engine's clock file, replaced atomically
	printf '%s\n' "$1" >"$WORK/clock.tmp"
	mv -f "$WORK/clock.tmp" "$WORK/clock"
}

# reissue_instant: T for the store copy in $WORK (see above)
reissue_instant() {
	local nb y t
	nb=$(sqlite3 "$WORK/state.db" "SELECT max(c.not_before) FROM cas a
		JOIN certificates c ON c.cert_id = a.current_cert_id WHERE a.status = 'active'")
	if ! [[ $nb =~ ^[0-9]+$ ]]; then
		log "re-issuance: no active CA in $WORK/state.db"
		return 1
	fi
	y=$(date -u -d "@$nb" +%Y)
	t=$(date -u -d "$y-10-02T02:00:00Z" +%s)
	[ "$t" -gt "$nb" ] || t=$(date -u -d "$((y + 1))-10-02T02:00:00Z" +%s)
	echo "$t"
}

# reissue_setup N: fresh store copy, configuration with the scheduler on the
# file clock and a notice-level log, clock at T - 600; sets RT (= T)
reissue_setup() {
	use_size "$1" notice on
	cat >>"$WORK/engine.conf" <<EOC
schedule.at = 10-02T02:00
schedule.tz = UTC
testing.clock_file = $WORK/clock
EOC
	RT=$(reissue_instant)
	set_clock $((RT - 600))
}

reissue_engine() {	# N: as engine_up, for the re-issuance runs
	reissue_setup "$1"
	if ! start_engine; then
		log "the engine did not start on the cached $1-tenant store; rebuilding it"
		ENGINE_PID=
		make_cache "$1"
		reissue_setup "$1"
		start_engine
	fi
}

problem() {	# what: a failed re-issuance check
	printf '%s\n' "$*" >>"$WORK/problems"
	log "re-issuance check FAILED: $*"
}

reissue_count() { grep -c 'CA re-issued' "$WORK/engine.log" || true; }

# reissue_log_ms first|last: ms since the epoch of the first / last
# "CA re-issued" line (empty when there is none)
reissue_log_ms() {
	local ts
	if [ "$1" = first ]; then
		ts=$(grep -m 1 'CA re-issued' "$WORK/engine.log" | cut -d ' ' -f 1 || true)
	else
		ts=$(grep 'CA re-issued' "$WORK/engine.log" | tail -n 1 | cut -d ' ' -f 1 || true)
	fi
	[ -z "$ts" ] || date -u -d "$ts" +%s%3N
}

# reissue_checks: while the engine still runs, then in its store (see above)
reissue_checks() {
	local n=$RN s old new k e q a
	sleep 1		# a few more scheduler passes: nothing more may be re-issued
	if "$CA_ADMIN" --socket "$WORK/engine.sock" --json status >"$WORK/status.json" &&
	    jq -r --argjson n "$n" '
		(if .tenants.active != $n then "status: \(.tenants.active) active CAs, expected \($n)" else empty end),
		(if .tenants.renewal_failed != 0 then "status: \(.tenants.renewal_failed) CAs with failing re-issuance, e.g. \(.renewal_failed[0])" else empty end),
		(if .token.sign_errors != 0 then "status: \(.token.sign_errors) token signing errors" else empty end),
		(if .store.failures != 0 then "status: \(.store.failures) failed store commits" else empty end),
		(if .refused != 0 then "status: \(.refused) issuance requests refused" else empty end)' \
	    "$WORK/status.json" >"$WORK/chk"; then
		while IFS= read -r s; do problem "$s"; done <"$WORK/chk"
	else
		problem "ca-admin status failed"
	fi
	if "$CA_ADMIN" --socket "$WORK/engine.sock" --json ca list >"$WORK/cas.json" &&
	    jq -r --argjson n "$n" --argjson t "$RT" '
		(if length != $n then "ca list: \(length) CAs, expected \($n)" else empty end),
		(if ([.[].tenant] | unique | length) != length then "ca list: a tenant listed twice" else empty end),
		([.[] | select(.not_before != $t)] | if length > 0 then
		  "ca list: \(length) CAs with notBefore other than \($t), e.g. \(.[0].tenant): \(.[0].not_before)" else empty end),
		([.[] | select(.has_previous != true)] | if length > 0 then
		  "ca list: \(length) CAs without a previous certificate, e.g. \(.[0].tenant)" else empty end),
		([.[] | select(.status != "active" or has("renewal"))] | if length > 0 then
		  "ca list: \(length) CAs not plainly active, e.g. \(.[0].tenant): \(.[0].status)" else empty end)' \
	    "$WORK/cas.json" >"$WORK/chk"; then
		while IFS= read -r s; do problem "$s"; done <"$WORK/chk"
	else
		problem "ca-admin ca list failed"
	fi
	# one certificate in full: same key and subject, new serial, notBefore T,
	# self-signature valid
	new="$WORK/ca-new.pem"
	old="$WORK/ca-old.pem"
	if "$CA_ADMIN" --socket "$WORK/engine.sock" ca show "$TENANT" --pem >"$new" &&
	    "$CA_ADMIN" --socket "$WORK/engine.sock" ca show "$TENANT" --previous --pem >"$old"; then
		openssl verify -attime $((RT + 1)) -check_ss_sig -CAfile "$new" "$new" >/dev/null 2>&1 ||
			problem "$TENANT: the re-issued CA certificate does not verify"
		[ "$(openssl x509 -in "$new" -noout -pubkey)" = "$(openssl x509 -in "$old" -noout -pubkey)" ] ||
			problem "$TENANT: the re-issued CA certificate has another key"
		[ "$(openssl x509 -in "$new" -noout -subject -nameopt RFC2253)" = \
		    "$(openssl x509 -in "$old" -noout -subject -nameopt RFC2253)" ] ||
			problem "$TENANT: the re-issued CA certificate has another subject"
		[ "$(openssl x509 -in "$new" -noout -serial)" != "$(openssl x509 -in "$old" -noout -serial)" ] ||
			problem "$TENANT: the re-issued CA certificate kept the serial (reissue.serial = new)"
		a=$(openssl x509 -in "$new" -noout -startdate)
		[ "$(date -u -d "${a#notBefore=}" +%s)" = "$RT" ] ||
			problem "$TENANT: the re-issued CA certificate has ${a}, expected $(date -u -d "@$RT")"
	else
		problem "ca-admin ca show $TENANT failed"
	fi
	k=$(reissue_count)
	[ "$k" -eq "$n" ] || problem "log: $k \"CA re-issued\" lines, expected $n"
	e=$(grep -c '\[error\]' "$WORK/engine.log" || true)
	[ "$e" -eq 0 ] ||
		problem "log: $e error lines, first: $(grep -m 1 '\[error\]' "$WORK/engine.log")"
	stop_engine || problem "the engine did not stop cleanly"
	q=$(sqlite3 "$WORK/state.db" "SELECT (SELECT count(*) FROM journal WHERE op = 'ca-reissue')
		|| ' ' || (SELECT count(*) FROM cas a JOIN certificates c ON c.cert_id = a.current_cert_id
		WHERE a.status = 'active' AND a.previous_cert_id IS NOT NULL AND c.not_before = $RT)") ||
		q="(query failed)"
	[ "$q" = "$n $n" ] || problem "store: ca-reissue journal records and current certificates" \
		"with notBefore T: $q, expected $n $n"
	if "$CA_ADMIN" --json journal verify --db "$WORK/state.db" >"$WORK/journal.json"; then
		JOURNAL_RECORDS=$(jq '.records' "$WORK/journal.json")
	else
		problem "ca-admin journal verify failed: $(cat "$WORK/journal.json")"
	fi
}

# wait_crl_pass LOG...: the scheduler's first pass, at start, re-signs every
# CRL that is due by the engine's clock: with the clock file a year past the
# cached CRLs' next update, all of them (10,000 CRLs at reissue.rate 250/s
# take 40 s), and the re-issuance would wait behind it.  Waits until one of
# the logs shows the leader, then, if that pass found CRLs due ("CRLs: N CAs
# due", logged at once), until it ended ("CRLs: pass over"); sets
# CRL_PASS_S (seconds the pass took, from its log line; empty when none).
wait_crl_pass() {
	local i deadline
	CRL_PASS_S=
	deadline=$((SECONDS + REISSUE_TIMEOUT))
	until cat "$@" | grep -q 'scheduler: this node is now the leader'; do
		[ "$SECONDS" -lt "$deadline" ] || { log "no node became the scheduler's leader"; return 1; }
		sleep 0.05
	done
	# the pass collects the due CAs right after: 2 s is ample to see it say so
	for i in $(seq 40); do
		cat "$@" | grep -q 'CRLs: [0-9]* CAs\? due' && break
		sleep 0.05
	done
	cat "$@" | grep -q 'CRLs: [0-9]* CAs\? due' || return 0
	log "the scheduler's first pass re-signs $(cat "$@" | grep -o 'CRLs: [0-9]* CAs\? due' | head -n 1 | cut -d ' ' -f 2) due CRLs; waiting for it"
	until cat "$@" | grep -q 'CRLs: pass over'; do
		[ "$SECONDS" -lt "$deadline" ] || { log "the CRL pass did not end"; return 1; }
		sleep 0.1
	done
	CRL_PASS_S=$(cat "$@" | grep -o 'CRLs: pass over [0-9]* CAs\? took [0-9.]* s' | head -n 1 |
		awk '{print $(NF - 1)}')
}

# reissue_run LABEL RATE: re-issue all $RN CAs through the scheduler, with
# an open-loop issuance load of RATE/s (0: none; see above)
reissue_run() {
	local label=$1 rate=$2 clients=0 flip k first_ms last_ms done_ok=0 rc deadline said
	local what="no other load"
	: >"$WORK/problems"
	JOURNAL_RECORDS=
	reissue_engine "$RN"
	wait_crl_pass "$WORK/engine.log" || problem "the scheduler's first pass did not end"
	[ "$rate" -eq 0 ] || what="$rate/s offered by $SCALE_CLIENTS clients"
	log "re-issuance ($label): $RN CAs due at $(date -u -d "@$RT" +%FT%TZ), $what"
	if [ "$rate" -gt 0 ]; then
		clients=$SCALE_CLIENTS
		"$CLIENT" load --socket "$WORK/engine.sock" --label reissue-base --tenants "$RN" --timeline \
			--clients "$clients" --csr-type ec-p256 --rate "$rate" --seconds "$REISSUE_BASE_SECS" \
			--warmup "$REISSUE_BASE_WARMUP" --engine-pid "$ENGINE_PID" --csr-cache "$CACHE/csrs" \
			--out "$OUT" ||
			problem "the load before the re-issuance had errors (see first_error in $OUT)"
		rm -f "$WORK/window" "$WORK/stop"
		"$CLIENT" load --socket "$WORK/engine.sock" --label reissue-during --tenants "$RN" --timeline \
			--clients "$clients" --csr-type ec-p256 --rate "$rate" \
			--seconds "$REISSUE_TIMEOUT" --warmup "$WARMUP" --engine-pid "$ENGINE_PID" \
			--csr-cache "$CACHE/csrs" --window-file "$WORK/window" \
			--stop-file "$WORK/stop" --out "$OUT" &
		LOAD_PID=$!
		while [ ! -e "$WORK/window" ] && kill -0 "$LOAD_PID" 2>/dev/null; do
			sleep 0.01
		done
	fi
	flip=$(($(date +%s%N) / 1000000))	# ms
	set_clock $((RT + 1))
	deadline=$((SECONDS + REISSUE_TIMEOUT))
	said=$SECONDS
	while :; do
		k=$(reissue_count)
		if [ "$k" -ge "$RN" ]; then
			done_ok=1
			break
		fi
		if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
			problem "the engine exited during the re-issuance ($k of $RN done)"
			tail -n 20 "$WORK/engine.log" >&2
			wait "$ENGINE_PID" || true
			ENGINE_PID=
			break
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			problem "only $k of $RN CAs re-issued within $REISSUE_TIMEOUT s"
			break
		fi
		if [ $((SECONDS - said)) -ge 10 ]; then
			log "re-issuance ($label): $k of $RN done"
			said=$SECONDS
		fi
		sleep 0.1
	done
	if [ -n "$LOAD_PID" ]; then
		touch "$WORK/stop"
		rc=0
		wait "$LOAD_PID" || rc=$?
		LOAD_PID=
		[ "$rc" -eq 0 ] ||
			problem "the load during the re-issuance failed or had errors (exit $rc; see first_error in $OUT)"
		[ "$(jq -s '[.[] | select(.kind == "engine" and .label == "reissue-during")]
		    | last | .stopped_by_file // 0' "$OUT")" = 1 ] ||
			problem "the load during the re-issuance was not ended by the harness"
	fi
	first_ms=$(reissue_log_ms first)
	last_ms=$(reissue_log_ms last)
	k=$(reissue_count)
	if [ -n "$ENGINE_PID" ]; then
		reissue_checks
	fi
	emit "$(jq -cn --arg lbl "$label" --arg n "$RN" --arg k "$k" --arg t "$RT" \
		--arg flip "$flip" --arg first "$first_ms" --arg last "$last_ms" \
		--arg complete "$done_ok" --arg rate "$rate" --arg clients "$clients" \
		--arg src "$RATE_SRC" --arg records "$JOURNAL_RECORDS" --arg crlpass "$CRL_PASS_S" \
		--rawfile problems "$WORK/problems" '
		def num: if . == "" then null else tonumber end;
		($flip | tonumber) as $f
		| (if $complete == "1" then (($last | tonumber) - $f) / 1000 else null end) as $s
		| ($problems | split("\n") | map(select(. != ""))) as $p
		| {kind: "reissue", "label": $lbl, tenants: ($n | tonumber), reissued: ($k | tonumber),
		   instant: ($t | tonumber), instant_iso: ($t | tonumber | todate),
		   seconds: $s, first_s: (if $first == "" then null else (($first | tonumber) - $f) / 1000 end),
		   rate: (if $s == null or $s <= 0 then null else ($n | tonumber) / $s end),
		   offered_rate: ($rate | tonumber), clients: ($clients | tonumber),
		   rate_source: (if $lbl == "idle" then null else $src end),
		   journal_records: ($records | num), ok: ($p | length == 0), problems: $p,
		   crl_pass_s: ($crlpass | num)}')"
	if [ -s "$WORK/problems" ]; then
		REISSUE_FAILED=1
	fi
	what="checks passed"
	[ ! -s "$WORK/problems" ] || what="checks FAILED"
	if [ "$done_ok" = 1 ]; then
		what="in $((last_ms - flip)) ms (the first after $((first_ms - flip)) ms); $what"
	fi
	log "re-issuance ($label): $k of $RN CAs re-issued $what"
}

if section reissue; then
	RN=$MAX
	if [ -n "${TCA_BENCH_REISSUE_RATE:-}" ]; then
		RRATE=$TCA_BENCH_REISSUE_RATE
		RATE_SRC="TCA_BENCH_REISSUE_RATE"
		if ! [[ $RRATE =~ ^[1-9][0-9]*$ ]]; then
			log "TCA_BENCH_REISSUE_RATE must be a positive integer"
			exit 2
		fi
	else
		RRATE=$(jq -s --arg n "$RN" '[.[] | select(.kind == "engine" and .label == "scale"
			and .tenants == ($n | tonumber)) | .rate]
			| if length > 0 then add / length / 2 | floor else 0 end' "$OUT")
		RATE_SRC="half the closed-loop rate of the scaling runs at $RN tenants"
		if [ "$RRATE" -le 0 ]; then
			RRATE=300
			RATE_SRC="default (no scaling result at $RN tenants in this run)"
		fi
	fi
	log "re-issuance at scale: $RN tenants; offered load $RRATE/s: $RATE_SRC"
	for run in ${TCA_BENCH_REISSUE_RUNS:-idle load}; do
		case $run in
		idle) reissue_run idle 0 ;;
		load) reissue_run load "$RRATE" ;;
		*) log "TCA_BENCH_REISSUE_RUNS: unknown run $run (idle, load)" ;;
		esac
	done
fi

if section modules; then
# ------------------------------------------------------------ per module
# One row per PKCS#11 module the tests run on: a throwaway token made by
# tests/tokens/*.sh (SoftHSMv2: here), one tenant CA of the first key type the
# token offers among ec-p256 and rsa-3072, 16 clients with P-256 device CSRs.
# Rates differ by the token's own signing speed, not by the engine.
MOD_CLIENTS=${TCA_BENCH_MODULE_CLIENTS:-16}
for mod in ${TCA_BENCH_MODULES:-softhsm2 opencryptoki tpm2 nss}; do
	mdir="$WORK/mod-$mod"
	rm -rf "$mdir"
	mkdir -p "$mdir"
	chmod 0700 "$mdir"
	mpin=$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
	mso=$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
	(umask 077; printf '%s\n' "$mpin" >"$mdir/user.pin"; printf '%s\n' "$mso" >"$mdir/so.pin")
	MODULE= INIT_ARGS= TOKEN_URI= TOKEN_RUN= MPROFILE=
	case $mod in
	softhsm2)
		mkdir -p "$mdir/tokens"
		printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		    "$mdir" >"$mdir/softhsm2.conf"
		export SOFTHSM2_CONF="$mdir/softhsm2.conf"
		"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
		    --label tca-bench-mod --so-pin-file "$mdir/so.pin" --pin-file "$mdir/user.pin" >/dev/null
		MODULE=$SOFTHSM_MODULE TOKEN_URI=pkcs11:token=tca-bench-mod MPROFILE=softhsm2 ;;
	opencryptoki|tpm2|nss)
		case $mod in
		opencryptoki) MPROFILE=opencryptoki-sw ;;
		tpm2) MPROFILE=tpm2-pkcs11 ;;
		nss) MPROFILE=nss-softokn ;;
		esac
		rc=0
		out=$("$TCA_SRCDIR/tests/tokens/$mod.sh" start "$mdir/token" tca-bench-mod "$mpin" "$mso") || rc=$?
		if [ "$rc" != 0 ]; then
			log "module $mod: no token ($rc); skipped"
			emit "$(jq -cn --arg m "$mod" '{kind: "skip", reason: ("module " + $m + ": no token")}')"
			continue
		fi
		eval "$out" ;;
	*) log "TCA_BENCH_MODULES: unknown module $mod"; continue ;;
	esac
	cat >"$WORK/engine.conf" <<EOC
socket.path = $WORK/engine.sock
socket.mode = 0600
token.profiles_dir = $TCA_SRCDIR/hsm-profiles
token.profile = $MPROFILE
token.module = $MODULE
token.uri = $TOKEN_URI
token.pin_file = $mdir/user.pin
token.pool_size = $POOL
store.path = $mdir/state.db
roles.admin_uids = $(id -u)
roles.frontend_uids = $(id -u)
log.level = warning
schedule.enabled = false
device.registration = none
${TCA_BENCH_ENGINE_CONF:-}
EOC
	[ -n "$INIT_ARGS" ] && printf 'token.init_args = %s\n' "$INIT_ARGS" >>"$WORK/engine.conf"
	chmod 0600 "$WORK/engine.conf"
	: >"$WORK/engine.log"
	sync
	rm -f "$WORK/engine.sock"
	# shellcheck disable=SC2086
	$TOKEN_RUN "$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" &
	ENGINE_PID=$!
	if ! "$CLIENT" ready --socket "$WORK/engine.sock" --since-ns "$(date +%s%N)" \
	    --timeout-ms 60000 >/dev/null; then
		tail -n 20 "$WORK/engine.log" >&2
		log "module $mod: the engine did not start; skipped"
		kill -KILL "$ENGINE_PID" 2>/dev/null || true
		wait "$ENGINE_PID" 2>/dev/null || true
		ENGINE_PID=
		[ "$mod" = softhsm2 ] || "$TCA_SRCDIR/tests/tokens/$mod.sh" stop "$mdir/token" || true
		continue
	fi
	TCA_SOCKET="$WORK/engine.sock" "$CA_ADMIN" --json status >"$mdir/status.json"
	mtype=$(jq -r '[.token.key_types[].type] | if index("ec-p256") then "ec-p256"
		elif index("rsa-3072") then "rsa-3072" else (.[0] // "") end' "$mdir/status.json")
	mmech=$(jq -r --arg t "$mtype" '.token.key_types[] | select(.type == $t) | .mechanism' \
		"$mdir/status.json")
	TCA_SOCKET="$WORK/engine.sock" "$CA_ADMIN" ca create "$TENANT" --key-type "$mtype" >/dev/null
	log "module $mod: $(jq -r '.token.manufacturer + " " + .token.model' "$mdir/status.json"), CA $mtype ($mmech)"
	emit "$(jq -cn --arg m "$mod" --arg t "$mtype" --arg mech "$mmech" \
		--arg manuf "$(jq -r '.token.manufacturer + " " + .token.model' "$mdir/status.json")" \
		'{kind: "module", module: $m, ca_key_type: $t, mechanism: $mech, token: $manuf}')"
	load "module-$mod" 1 "$MOD_CLIENTS" ec-p256
	stop_engine || true
	[ "$mod" = softhsm2 ] || "$TCA_SRCDIR/tests/tokens/$mod.sh" stop "$mdir/token" || true
done
fi

if section revocation; then
# ------------------------------------------------------------ revocation
# (a) CRL at scale: one tenant CA ($TENANT, created through ca.create) with
#     N revoked device certificates, for each N in $REVOKED.  Revoking them
#     through the socket would re-sign the CRL after each one, so
#     `tca-bench-client revpop` writes them into the stopped engine's store
#     (batches of 1000 issue + 1000 revoke changes per commit, journaled as
#     the engine would); token + store are cached under $CACHE.  On a fresh
#     copy of that store: the engine's start-up (it loads every revocation
#     into memory), then `tca-bench-client crl`: $CRL_SIGNS x crl.sign over
#     the socket, one after the other (wall time and engine CPU per call), 3
#     fetches of the CRL (`crl`, tca_client_crl) and checks of the CRL
#     fetched (parses, signature verifies with the CA certificate, lists N
#     entries); then, the engine stopped, `tca-bench-client crlparts` takes
#     the engine's signing path apart in process on that store and token
#     (crl_get, revoked_foreach, tca_crl_build with the signer timed alone,
#     the CRL_PUBLISH commit), 3 rounds.  Should crl.sign fail, the CRL
#     crlparts committed (signed by the same CA key) is fetched through the
#     engine instead, so the fetch is still measured on an N-entry CRL.
#     Finally openssl counts the entries of the CRL fetched last and
#     verifies its signature.
# (b) OCSP next to issuance: on the $BASE-tenant store, one engine, rounds
#     of (issuance at $REV_CLIENTS clients, OCSP at $REV_CLIENTS clients)
#     back to back; the OCSP run first issues a pool of $OCSP_POOL
#     certificates and revokes $OCSP_REVOKED of them through the socket.
REVOKED=${TCA_BENCH_REVOKED:-"1000 100000"}
CRL_SIGNS=${TCA_BENCH_CRL_SIGNS:-3}
REV_CLIENTS=${TCA_BENCH_REV_CLIENTS:-16}
REV_ROUNDS=${TCA_BENCH_REV_ROUNDS:-2}
OCSP_POOL=${TCA_BENCH_OCSP_POOL:-200}
OCSP_REVOKED=${TCA_BENCH_OCSP_REVOKED:-50}

rev_cache_dir() { echo "$CACHE/$CACHE_VERSION-rev$1"; }

# make_rev_cache N: token, one tenant CA through the engine, N revoked
# device certificates written into its store
make_rev_cache() {
	local n=$1 dir
	dir=$(rev_cache_dir "$n")
	provision_token "$dir" "tca-bench-rev$n"
	write_config "$dir" "$dir/state.db"
	start_engine
	"$CLIENT" mkca --socket "$WORK/engine.sock" --count 1 --connections 1 --out "$WORK/mkca.json"
	stop_engine
	rm -f "$WORK/mkca.json"
	log "writing $n revoked certificates of $TENANT into $dir/state.db"
	"$CLIENT" revpop --db "$dir/state.db" --tenant "$TENANT" --count "$n" --batch 1000 \
		--out "$dir/revpop.json"
	emit "$(cat "$dir/revpop.json")"
	touch "$dir/ready"
}

# rev_up N: the engine on a fresh copy of the size-N revocation store
rev_up() {
	local dir
	dir=$(rev_cache_dir "$1")
	rm -f "$WORK"/state.db*
	cp "$dir/state.db" "$WORK/state.db"
	write_config "$dir" "$WORK/state.db"
	: >"$WORK/engine.log"
	start_engine
}

# rev_crl N: (a) above for N revoked certificates; results labelled -N
rev_crl() {
	local n=$1 dir ok ossl_n ossl_v
	dir=$(rev_cache_dir "$n")
	if [ -f "$dir/ready" ] && [ -f "$dir/state.db" ]; then
		jq -c '. + {cached: true}' "$dir/revpop.json" >>"$OUT"
	else
		make_rev_cache "$n"
	fi
	if ! rev_up "$n"; then
		log "the engine did not start on the cached revocation store; rebuilding it"
		ENGINE_PID=
		make_rev_cache "$n"
		rev_up "$n"
	fi
	emit "$(jq -cn --arg n "$n" --arg ms "$STARTUP_MS" --arg rss "$(rss_kib "$ENGINE_PID" VmRSS)" \
		--arg hwm "$(rss_kib "$ENGINE_PID" VmHWM)" \
		'{kind: "startup", "label": "revocation", tenants: 1, revoked: ($n|tonumber),
		  startup_ms: ($ms|tonumber), rss_kib: ($rss|tonumber), hwm_kib: ($hwm|tonumber)}')"
	log "engine up with $n revoked certificates in $STARTUP_MS ms, RSS $(rss_kib "$ENGINE_PID" VmRSS) KiB"
	"$TCA_CLIENT" --socket "$WORK/engine.sock" cacerts --tenant "$TENANT" >"$WORK/rev-ca.pem"
	rm -f "$WORK/crl.der"
	log "crl.sign x $CRL_SIGNS with $n revoked certificates"
	"$CLIENT" crl --socket "$WORK/engine.sock" --tenant "$TENANT" --repeat "$CRL_SIGNS" --fetch 3 \
		--expect "$n" --crl-out "$WORK/crl.der" --engine-pid "$ENGINE_PID" \
		--label "crl-engine-$n" --out "$OUT" || log "crl.sign / crl: errors (see first_error in $OUT)"
	stop_engine || true
	ok=$(jq -s --arg l "crl-engine-$n" '[.[] | select(.kind == "crl" and .label == $l)] | last
		| (.signed > 0 and .verified == 1)' "$OUT")
	log "the engine's signing path taken apart in process (same store copy and token)"
	"$CLIENT" crlparts --db "$WORK/state.db" --module "$SOFTHSM_MODULE" \
		--uri "pkcs11:token=$(cat "$dir/label")" --pin-file "$dir/user.pin" --tenant "$TENANT" \
		--repeat 3 --label "crl-parts-$n" --out "$OUT" || log "crlparts: errors"
	if [ "$ok" != true ]; then
		log "crl.sign did not produce the CRL: fetching the one crlparts signed, through the engine"
		if start_engine; then
			"$CLIENT" crl --socket "$WORK/engine.sock" --tenant "$TENANT" --repeat 0 --fetch 3 \
				--expect "$n" --crl-out "$WORK/crl.der" --label "crl-fetch-$n" --out "$OUT" ||
				log "crl fetch: errors"
			stop_engine || true
		fi
	fi
	if [ -s "$WORK/crl.der" ]; then
		ossl_n=$(openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -c 'Serial Number' || true)
		ossl_v=$(openssl crl -inform DER -in "$WORK/crl.der" -CAfile "$WORK/rev-ca.pem" -noout 2>&1 || true)
		emit "$(jq -cn --arg n "$ossl_n" --arg want "$n" --arg v "$ossl_v" \
			--arg bytes "$(stat -c %s "$WORK/crl.der")" --arg lbl "crl-openssl-$n" \
			'{kind: "crl_openssl", "label": $lbl, entries: ($n|tonumber), expected: ($want|tonumber),
			  bytes: ($bytes|tonumber), verify: $v, ok: (($n|tonumber) == ($want|tonumber)
			  and ($v | test("verify OK")))}')"
		log "openssl: $ossl_n entries in the CRL fetched ($n expected); $ossl_v"
	fi
}

for n in $REVOKED; do
	rev_crl "$n"
done

log "OCSP next to issuance: $REV_ROUNDS round(s) at $REV_CLIENTS clients, $BASE tenant(s)"
engine_up "$BASE" revocation-pair
for r in $(seq "$REV_ROUNDS"); do
	load "rev-issue-$r" "$BASE" "$REV_CLIENTS" ec-p256
	"$CLIENT" load --op ocsp --socket "$WORK/engine.sock" --label "rev-ocsp-$r" \
		--clients "$REV_CLIENTS" --ocsp-pool "$OCSP_POOL" --ocsp-revoked "$OCSP_REVOKED" \
		--seconds "$SECS" --warmup "$WARMUP" --engine-pid "$ENGINE_PID" \
		--csr-cache "$CACHE/csrs" --out "$OUT" ||
		log "load --op ocsp round $r: errors (see first_error / check_error in $OUT)"
done
memory_after "$BASE" revocation-pair
stop_engine
fi	# section revocation

if section inventory; then
# ------------------------------------------------------------ certificate inventory
# Issue 12: the inventory (cert.list, cert.show) is paged from the store with
# an index, fast at 10,000 tenants x 100 devices; `status` counts device
# certificates per state (store op cert_counts, cached 30 s by the engine).
#  - Store: a copy of the cached $INV_N-tenant store (the scale section's,
#    created through ca.create), the engine stopped, then `tca-bench-client
#    invpop` writes $INV_PER device certificates per tenant (dev-000..,
#    issued round-robin over the tenants, notBefore spread over 420 days
#    with a year of validity: about 13 % expired when written) and revokes
#    $INV_REV of each tenant's, $INV_BATCH issues (plus their revocations)
#    per commit through the store API, journaled as the engine would.
#    Cached as $CACHE/$CACHE_VERSION-inv<N>x<P>r<R> (rebuilt when the
#    $INV_N-tenant cache it came from was); build time and size recorded.
#  - Start-up on the $INV_N-tenant store before the inventory was written,
#    for comparison.  Then over the socket, on a fresh copy of the
#    populated store, $INV_ROUNDS engine start(s): the first `status` (from
#    `ready`, start-up) computes the counts; then
#    `tca-bench-client inventory` on tenant $INV_TENANT (the middle one):
#    cert.list first page (limit 100, 500), filtered pages (revoked, valid,
#    expired, device dev-042), cert.show, paging through the tenant 10 at a
#    time, each $INV_REPEAT times; then it waits until the cached counts are
#    stale (31 s after that first status) and times one uncached `status`
#    while a second connection calls cert.show in a loop (how long the
#    counts hold the store's reader), then $INV_REPEAT cached ones.
#  - In process on the same copy, the engine stopped: `tca-bench-client
#    invparts` times the store calls alone (cert_counts, cert_list,
#    cert_get); sqlite3 shows the query plans of the engine's statements
#    (copied from engine/store-sqlite.c) and times the counts query, then
#    the index and query suggested for it (docs/performance.md).
INV_N=${TCA_BENCH_INV_TENANTS:-10000}
INV_PER=${TCA_BENCH_INV_PER_TENANT:-100}
INV_REV=${TCA_BENCH_INV_REVOKED:-5}
INV_BATCH=${TCA_BENCH_INV_BATCH:-10000}
INV_REPEAT=${TCA_BENCH_INV_REPEAT:-5}
INV_ROUNDS=${TCA_BENCH_INV_ROUNDS:-2}
INV_TENANT=$(printf 't%05d' $((INV_N / 2)))
INV_SRC=$(cache_dir "$INV_N")
INV_DIR="$CACHE/$CACHE_VERSION-inv${INV_N}x${INV_PER}r${INV_REV}"
inv_t0=$(date +%s%N)

# make_inv_cache: the populated store under $INV_DIR (see above)
make_inv_cache() {
	local t0 t1
	rm -rf "$INV_DIR" "$INV_DIR.tmp"
	mkdir -p "$INV_DIR.tmp"
	chmod 0700 "$INV_DIR.tmp"
	log "inventory: writing $INV_PER device certificates for each of $INV_N tenants into a copy of $INV_SRC/state.db"
	t0=$(date +%s%N)
	cp "$INV_SRC/state.db" "$INV_DIR.tmp/state.db"
	"$CLIENT" invpop --db "$INV_DIR.tmp/state.db" --count "$INV_N" --per-tenant "$INV_PER" \
		--revoked-per-tenant "$INV_REV" --batch "$INV_BATCH" --out "$INV_DIR.tmp/invpop.raw"
	sync
	t1=$(date +%s%N)
	jq -c --arg ms "$(( (t1 - t0) / 1000000 ))" --arg db "$(stat -c %s "$INV_DIR.tmp/state.db")" \
		'. + {build_seconds: (($ms|tonumber) / 1000), db_bytes_final: ($db|tonumber)}' \
		"$INV_DIR.tmp/invpop.raw" >"$INV_DIR.tmp/invpop.json"
	rm -f "$INV_DIR.tmp/invpop.raw"
	cp "$INV_SRC/created.json" "$INV_DIR.tmp/source.json"
	mv "$INV_DIR.tmp" "$INV_DIR"
	touch "$INV_DIR/ready"
	emit "$(cat "$INV_DIR/invpop.json")"
	log "inventory: store built in $(( (t1 - t0) / 1000000 )) ms, $(stat -c %s "$INV_DIR/state.db") bytes"
}

# the engine's statements (engine/store-sqlite.c: sq_cert_list, sq_cert_get,
# sq_cert_counts), for EXPLAIN QUERY PLAN and the sqlite3 timings
INV_COLS="SELECT d.cert_id, d.tenant, d.serial, d.subject, d.fingerprint, d.not_before,
 d.not_after, d.issued_at, d.device_id, r.revoked_at, r.reason"
INV_STATE="AND (?4 = 0 OR (?4 = 1 AND r.cert_id IS NULL AND d.not_after >= ?5)
 OR (?4 = 2 AND r.cert_id IS NOT NULL) OR (?4 = 3 AND r.cert_id IS NULL AND d.not_after < ?5))
 ORDER BY d.cert_id LIMIT ?6"
INV_SQL_LIST="$INV_COLS FROM cas c JOIN certificates d INDEXED BY certificates_tenant
 ON d.tenant = c.tenant AND d.ca_id = c.ca_id AND d.kind = 'device'
 LEFT JOIN revocations r ON r.cert_id = d.cert_id
 WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3 $INV_STATE"
INV_SQL_LIST_DEVICE="$INV_COLS FROM cas c JOIN certificates d INDEXED BY certificates_device
 ON d.tenant = c.tenant AND d.device_id = ?2 AND d.ca_id = c.ca_id AND d.kind = 'device'
 LEFT JOIN revocations r ON r.cert_id = d.cert_id
 WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3 $INV_STATE"
INV_SQL_GET="$INV_COLS, d.der FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id
 JOIN certificates d ON d.issuer_hash = cur.issuer_hash AND d.serial = ?2
 AND d.kind = 'device' AND d.ca_id = c.ca_id
 LEFT JOIN revocations r ON r.cert_id = d.cert_id
 WHERE c.tenant = ?1 AND c.status = 'active'"
INV_SQL_COUNTS="SELECT COALESCE(SUM(r.cert_id IS NULL AND d.not_after >= ?5), 0),
 COALESCE(SUM(r.cert_id IS NOT NULL), 0), COALESCE(SUM(r.cert_id IS NULL AND d.not_after < ?5), 0)
 FROM certificates d JOIN cas c ON c.ca_id = d.ca_id AND c.status = 'active'
 LEFT JOIN revocations r ON r.cert_id = d.cert_id WHERE d.kind = 'device'"
# the suggestion: a covering partial index for the counts, and the counts
# taken from it and from revocations (whose not_after is the certificate's)
INV_SQL_INDEX="CREATE INDEX certificates_state ON certificates(ca_id, not_after, kind)
 WHERE kind = 'device'"
INV_SQL_COUNTS_NEW="SELECT n - n_exp - (rv - rv_exp), rv, n_exp - rv_exp FROM
 (SELECT count(*) AS n, COALESCE(SUM(d.not_after < ?5), 0) AS n_exp
  FROM cas c JOIN certificates d ON d.ca_id = c.ca_id AND d.kind = 'device'
  WHERE c.status = 'active'),
 (SELECT count(*) AS rv, COALESCE(SUM(r.not_after < ?5), 0) AS rv_exp
  FROM cas c JOIN revocations r ON r.ca_id = c.ca_id WHERE c.status = 'active')"

# inv_sqlite SQL-SCRIPT: runs it on the store copy with the parameters of
# the measured tenant bound (?1 tenant, ?2 device id or serial, ?5 now)
inv_sqlite() {
	local p2=$1
	shift
	{
		printf '.parameter init\n'
		printf ".parameter set ?1 '%s'\n.parameter set ?2 %s\n" "$INV_TENANT" "$p2"
		printf '.parameter set ?3 0\n.parameter set ?4 0\n.parameter set ?5 %s\n.parameter set ?6 101\n' \
			"$(date +%s)"
		printf '%s\n' "$@"
	} | sqlite3 "$WORK/state.db"
}

# inv_plan NAME P2 SQL: EXPLAIN QUERY PLAN, one "inventory_plan" record
inv_plan() {
	local plan
	plan=$(inv_sqlite "$2" "EXPLAIN QUERY PLAN $3;" 2>&1) || true
	emit "$(jq -cn --arg n "$1" --arg p "$plan" --arg sql "$(printf '%s' "$3" | tr -s ' \n' '  ')" \
		'{kind: "inventory_plan", name: $n, plan: $p, sql: $sql}')"
	printf '%s (%s):\n%s\n' "$1" "$(printf '%s' "$3" | head -c 60 | tr '\n' ' ')..." "$plan" >&2
}

# inv_time NAME P2 SQL: sqlite3 .timer of SQL, 3 times; one "inventory_sql"
# record (wall seconds and the first row)
inv_time() {
	local out
	out=$(inv_sqlite "$2" ".timer on" "$3;" "$3;" "$3;" 2>&1) || true
	emit "$(jq -cn --arg n "$1" --arg o "$out" '
		($o | split("\n")) as $l
		| {kind: "inventory_sql", name: $n,
		   seconds: [$l[] | select(startswith("Run Time:")) | capture("real (?<s>[0-9.]+)").s | tonumber],
		   row: ([$l[] | select(startswith("Run Time:") | not)] | first // "")}')"
	printf '%s: %s\n' "$1" "$(printf '%s' "$out" | tr '\n' ' ')" >&2
}

ensure_cache "$INV_N"
if [ -f "$INV_DIR/ready" ] && [ -f "$INV_DIR/state.db" ] &&
    cmp -s "$INV_DIR/source.json" "$INV_SRC/created.json"; then
	jq -c '. + {cached: true}' "$INV_DIR/invpop.json" >>"$OUT"
else
	make_inv_cache
fi
# for comparison: start-up on the same token with the store before the
# inventory was written (its first status counts nothing)
use_size "$INV_N"
if start_engine --label inventory-ready-0 --out "$OUT"; then
	emit "$(jq -cn --arg ms "$STARTUP_MS" --arg rss "$(rss_kib "$ENGINE_PID" VmRSS)" \
		--arg hwm "$(rss_kib "$ENGINE_PID" VmHWM)" --arg n "$INV_N" \
		'{kind: "startup", "label": "inventory", round: 0, tenants: ($n|tonumber),
		  certificates: 0, startup_ms: ($ms|tonumber), rss_kib: ($rss|tonumber),
		  hwm_kib: ($hwm|tonumber)}')"
	log "inventory: engine up on the store without the inventory in $STARTUP_MS ms"
	stop_engine || true
else
	ENGINE_PID=
fi
rm -f "$WORK"/state.db*
t0=$(date +%s%N)
cp "$INV_DIR/state.db" "$WORK/state.db"
sync
t1=$(date +%s%N)
INV_DB_BYTES=$(stat -c %s "$WORK/state.db")
log "inventory: store copy ($INV_DB_BYTES bytes) in $(( (t1 - t0) / 1000000 )) ms (with sync)"
write_config "$INV_SRC" "$WORK/state.db"
: >"$WORK/engine.log"
for r in $(seq "$INV_ROUNDS"); do
	if ! start_engine --label "inventory-ready-$r" --out "$OUT"; then
		log "inventory: the engine did not start on the populated store"
		ENGINE_PID=
		break
	fi
	emit "$(jq -cn --arg ms "$STARTUP_MS" --arg rss "$(rss_kib "$ENGINE_PID" VmRSS)" \
		--arg hwm "$(rss_kib "$ENGINE_PID" VmHWM)" --arg n "$INV_N" --arg r "$r" \
		--arg c "$((INV_N * INV_PER))" \
		'{kind: "startup", "label": "inventory", round: ($r|tonumber), tenants: ($n|tonumber),
		  certificates: ($c|tonumber), startup_ms: ($ms|tonumber), rss_kib: ($rss|tonumber),
		  hwm_kib: ($hwm|tonumber)}')"
	answered=$(jq -rs --arg l "inventory-ready-$r" \
		'[.[] | select(.kind == "ready" and .label == $l)] | last | .answered_ns' "$OUT")
	log "inventory, round $r/$INV_ROUNDS: engine up in $STARTUP_MS ms (its first status: $(jq -rs --arg l "inventory-ready-$r" '[.[] | select(.kind == "ready" and .label == $l)] | last | .status_ms' "$OUT") ms); tenant $INV_TENANT"
	"$CLIENT" inventory --socket "$WORK/engine.sock" --tenant "$INV_TENANT" --repeat "$INV_REPEAT" \
		--since-ns "$answered" --engine-pid "$ENGINE_PID" --label "inventory-$r" --out "$OUT" ||
		log "inventory round $r: errors (see first_error in $OUT)"
	memory_after "$INV_N" inventory
	stop_engine || true
done
log "inventory: the store calls in process (invparts), query plans, the counts query in sqlite3"
"$CLIENT" invparts --db "$WORK/state.db" --tenant "$INV_TENANT" --repeat "$INV_REPEAT" \
	--label inventory --out "$OUT" || log "invparts: errors"
INV_SERIAL=$(jq -rs '[.[] | select(.kind == "inventory")] | last | .serial // ""' "$OUT")
inv_plan list "'dev-042'" "$INV_SQL_LIST"
inv_plan list_device "'dev-042'" "$INV_SQL_LIST_DEVICE"
inv_plan show "x'${INV_SERIAL:-00}'" "$INV_SQL_GET"
inv_plan counts "''" "$INV_SQL_COUNTS"
inv_time counts "''" "$INV_SQL_COUNTS"
# the suggestion, on this throw-away copy
t0=$(date +%s%N)
sqlite3 "$WORK/state.db" "$INV_SQL_INDEX;" || log "inventory: CREATE INDEX failed"
t1=$(date +%s%N)
emit "$(jq -cn --arg ms "$(( (t1 - t0) / 1000000 ))" --arg db "$(stat -c %s "$WORK/state.db")" \
	--arg before "$INV_DB_BYTES" --arg sql "$(printf '%s' "$INV_SQL_INDEX" | tr -s ' \n' '  ')" \
	'{kind: "inventory_index", sql: $sql, create_ms: ($ms|tonumber),
	  db_bytes_before: ($before|tonumber), db_bytes_after: ($db|tonumber)}')"
inv_plan counts_with_index "''" "$INV_SQL_COUNTS"
inv_time counts_with_index "''" "$INV_SQL_COUNTS"
inv_plan counts_suggested "''" "$INV_SQL_COUNTS_NEW"
inv_time counts_suggested "''" "$INV_SQL_COUNTS_NEW"
inv_t1=$(date +%s%N)
emit "$(jq -cn --arg s "$(( (inv_t1 - inv_t0) / 1000000 ))" --arg db "$INV_DB_BYTES" \
	--arg n "$INV_N" --arg p "$INV_PER" --arg rv "$INV_REV" --arg t "$INV_TENANT" \
	'{kind: "inventory_section", seconds: (($s|tonumber) / 1000), db_bytes: ($db|tonumber),
	  tenants: ($n|tonumber), per_tenant: ($p|tonumber), revoked_per_tenant: ($rv|tonumber),
	  tenant: $t}')"
rm -f "$WORK"/state.db*
log "inventory: section took $(( (inv_t1 - inv_t0) / 1000000000 )) s"
fi	# section inventory

# ------------------------------------------------------------ est
# enrollments per second through tca-estd over TLS next to the raw socket,
# one engine, back to back (tests/bench/est-bench.sh has the method)
if section est; then
	log "est: tca-estd (EST over TLS) next to the raw socket"
	est_rc=0
	TCA_BENCH_SECONDS="$SECS" TCA_BENCH_WARMUP="$WARMUP" \
		bash "$(dirname "${BASH_SOURCE[0]}")/est-bench.sh" "$OUT" || est_rc=$?
	[ "$est_rc" = 0 ] || log "est: est-bench.sh exited $est_rc (77: wrk missing)"
fi

if section pg; then
# ------------------------------------------------------------ PostgreSQL
# Issue 13: the store on PostgreSQL, one node and three nodes on this
# machine, next to SQLite, and the yearly re-issuance of the largest
# token's CAs on PostgreSQL (docs/performance.md, "PostgreSQL").
#  - A throwaway cluster (tests/pg-cluster.sh: initdb + pg_ctl in a
#    temporary directory, Unix socket only), made durable for the bench:
#    the test clusters run with fsync = off; here fsync, full_page_writes
#    and synchronous_commit are on (PostgreSQL's defaults), so a commit
#    waits for its WAL flush as SQLite's waits for its fdatasync, and
#    shared_buffers is 128 MB.  Skipped, with a message and a "skip"
#    record, only when the PostgreSQL programs (initdb, pg_ctl, psql) are
#    absent.
#  - Issuance: rounds ($PG_ROUNDS) x client counts ($PG_CLIENTS, the total
#    over all nodes), each running back to back on the $BASE-tenant token:
#    the engine on SQLite (a fresh copy of the cached store), one engine on
#    a fresh PostgreSQL database (the same store migrated into it with
#    `ca-admin store migrate`), and three engines on another fresh database
#    and the same token, each sent a third of the clients by its own load
#    generator, all three started together; every CA exists before the
#    engines start (a node does not yet see CAs created by another one
#    after its start).  Per run: rate (summed over nodes), p50 / p99
#    (three nodes: each node's, and the worst), the engine's CPU per
#    certificate, and the group-commit batch size from `status` (changes /
#    commits during the load, warm-up included).  After the three-node
#    run: the device certificates in the database equal the changes the
#    nodes committed, and `ca-admin journal verify --store` passes (one
#    chain under three committers).
#  - The store's commit alone: `tca-bench-client commits` on the
#    PostgreSQL database (engines stopped), batches of 1, 8 and 32 issues
#    with one committer, then 2 and 3 committers (each its own connection,
#    as 2 or 3 engines) with batches of 8; the same with one committer on
#    the SQLite copy.  ms per batch: what the journal_head lock is held for.
#  - Re-issuance: the $MAX-tenant store (upgraded by one engine start)
#    migrated into a fresh database (timed), the scheduler on, the clock
#    file moved past the instant as in the SQLite runs (no issuance load):
#    one engine ("pg1"), then three engines on another fresh copy ("pg3"),
#    which elect one leader that does the work.  Checks: exactly $MAX "CA
#    re-issued" lines over the nodes, status of every node clean (no
#    failed commit, no renewal failure, no signing error), in the database
#    $MAX ca-reissue journal records and $MAX current certificates with
#    notBefore T, journal verify passes.  A failed check fails the run as
#    the SQLite re-issuance checks do.
PG_ROUNDS=${TCA_BENCH_PG_ROUNDS:-2}
PG_CLIENTS=${TCA_BENCH_PG_CLIENTS:-"15 48"}
PG_NODES=${TCA_BENCH_PG_NODES:-3}
PG_REISSUE=${TCA_BENCH_PG_REISSUE-"pg1 pg3"}
PG_COMMIT_SECS=${TCA_BENCH_PG_COMMIT_SECONDS:-3}
PGSH="$TCA_SRCDIR/tests/pg-cluster.sh"
pg_t0=$(date +%s%N)
pg_rc=0
PG_BIN=$("$PGSH" bindir 2>"$WORK/pg-bindir.err") || pg_rc=$?
if [ "$pg_rc" = 0 ] && ! command -v psql >/dev/null 2>&1; then
	pg_rc=77
	echo "psql not found (apt-get install postgresql-client)" >"$WORK/pg-bindir.err"
fi
if ! grep -q '^#define HAVE_LIBPQ 1' "$TCA_BUILDDIR/config.h" 2>/dev/null; then
	pg_rc=77
	echo "this build has no PostgreSQL store (libpq-dev, then ./configure --with-postgresql=yes)" \
		>"$WORK/pg-bindir.err"
fi
if [ "$pg_rc" != 0 ]; then
	pg_why=$(sed -e 's/^SKIP: //' "$WORK/pg-bindir.err" | head -n 1)
	log "SKIP pg: the PostgreSQL section needs a build with libpq, the server programs and psql: $pg_why"
	emit "$(jq -cn --arg r "$pg_why" '{kind: "skip", what: "pg", reason: $r}')"
else
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/tca-bench-pg-XXXXXX")
chmod 0755 "$PGDIR"
log "pg: a throwaway PostgreSQL cluster ($PG_BIN) in $PGDIR"
PG_CONN=$("$PGSH" start "$PGDIR/c")
cat >>"$PGDIR/c/data/postgresql.conf" <<EOC
# run-bench.sh: durable, as a deployment would run it
fsync = on
full_page_writes = on
synchronous_commit = on
shared_buffers = 128MB
EOC
"$PGSH" restart "$PGDIR/c"
psql_q() { psql "$1" -X -At -v ON_ERROR_STOP=1 -c "$2"; }
emit "$(jq -cn --arg v "$(psql_q "$PG_CONN" 'SHOW server_version')" \
	--arg s "$(psql_q "$PG_CONN" "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
		'shared_buffers', 'commit_delay', 'wal_level')")" \
	'{kind: "pg_setup", server_version: $v, settings: $s}')"
PG_DBN=0
# pg_newdb: a fresh database tca<n>; sets PG_DB (its conninfo), PG_DBNAME
pg_newdb() {
	PG_DBN=$((PG_DBN + 1))
	PG_DBNAME=tca$PG_DBN
	psql_q "$PG_CONN" "CREATE DATABASE $PG_DBNAME" >/dev/null
	PG_DB="${PG_CONN/dbname=postgres/dbname=$PG_DBNAME}"
}
# pg_migrate SRC-SQLITE-FILE CONNINFO LABEL: ca-admin store migrate, timed
pg_migrate() {
	local t0 t1
	t0=$(date +%s%N)
	if ! "$CA_ADMIN" store migrate --from "sqlite:$1" --to "$2" >"$WORK/migrate.out" 2>&1; then
		cat "$WORK/migrate.out" >&2
		log "pg: store migrate into $2 failed"
		return 1
	fi
	t1=$(date +%s%N)
	emit "$(jq -cn --arg l "$3" --arg ms "$(( (t1 - t0) / 1000000 ))" \
		--arg cas "$(awk '$1 == "cas" {print $2}' "$WORK/migrate.out")" \
		--arg j "$(awk '$1 == "journal" && $2 ~ /^[0-9]+$/ {print $2}' "$WORK/migrate.out")" \
		'{kind: "pg_migrate", label: $l, seconds: (($ms|tonumber) / 1000),
		  cas: ($cas|tonumber? // null), journal: ($j|tonumber? // null)}')"
}
# pg_upgraded N FILE: a copy of the size-N cached store opened once by the
# engine (which brings an older schema up to date; migrate wants the current
# one), stopped, at FILE
pg_upgraded() {
	use_size "$1"
	start_engine
	stop_engine
	rm -f "$2"
	"$CA_ADMIN" journal verify --db "$WORK/state.db" >/dev/null ||
		{ log "pg: the upgraded $1-tenant store does not verify"; return 1; }
	sqlite3 "$WORK/state.db" ".backup '$2'"
}
# PostgreSQL nodes: configuration $WORK/pgnodeI.conf (that of write_config
# with its own socket and the store URI), log $WORK/pgnodeI.log
PG_PIDS=()
pg_node_conf() {	# I CONNINFO [EXTRA-LINES]
	sed -e "s|^socket.path = .*|socket.path = $WORK/pgnode$1.sock|" \
	    -e "s|^store.path = .*|store.uri = $2|" "$WORK/engine.conf" >"$WORK/pgnode$1.conf"
	[ -z "${3:-}" ] || printf '%s\n' "$3" >>"$WORK/pgnode$1.conf"
	chmod 0600 "$WORK/pgnode$1.conf"
	: >"$WORK/pgnode$1.log"
}
pg_node_start() {	# I: one at a time (SoftHSMv2 engines starting together on one token have failed to find it)
	local t0
	sync
	rm -f "$WORK/pgnode$1.sock"
	t0=$(date +%s%N)
	"$ENGINED" --config "$WORK/pgnode$1.conf" 2>>"$WORK/pgnode$1.log" &
	PG_PIDS[$1]=$!
	if ! "$CLIENT" ready --socket "$WORK/pgnode$1.sock" --since-ns "$t0" --timeout-ms 120000 \
	    >/dev/null; then
		tail -n 20 "$WORK/pgnode$1.log" >&2
		return 1
	fi
}
pg_nodes_stop() {
	local i rc=0
	for i in "${!PG_PIDS[@]}"; do
		[ -n "${PG_PIDS[$i]}" ] || continue
		kill -TERM "${PG_PIDS[$i]}" 2>/dev/null || true
		wait "${PG_PIDS[$i]}" || rc=1
		PG_PIDS[$i]=
	done
	PG_PIDS=()
	return $rc
}
# pg_server_ticks: CPU clock ticks (user + system) of the cluster's processes
# so far - the postmaster and its children (backends, WAL writer,
# checkpointer...) - for the database's CPU per certificate; the ticks of
# a backend that ended meanwhile are lost (the engines' connections last).
pg_server_ticks() {
	local pm
	pm=$(head -n 1 "$PGDIR/c/data/postmaster.pid")
	{ echo "$pm"; pgrep -P "$pm"; } | while read -r p; do
		# the fields after "(comm)": utime is the 12th, stime the 13th
		sed -e 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}'
	done | awk '{s += $1} END {print s + 0}'
}
pg_store_counts() {	# SOCKET: "commits changes" of the engine's status
	"$CA_ADMIN" --socket "$1" --json status | jq -r '"\(.store.commits) \(.store.changes)"'
}
# pg_load CONFIG CLIENTS ROUND NODES: NODES engines already running on
# sockets $WORK/pgnode1.sock.. (CONFIG sqlite: the engine of start_engine),
# CLIENTS split over them; one pg_run record
pg_load() {
	local cfg=$1 c=$2 r=$3 nodes=$4 i per lbl socks=() pids=() b0=() lp=() rc=0 k
	per=$((c / nodes))
	[ "$per" -ge 1 ] || per=1
	for i in $(seq "$nodes"); do
		if [ "$cfg" = sqlite ]; then
			socks[$i]="$WORK/engine.sock"
			pids[$i]=$ENGINE_PID
		else
			socks[$i]="$WORK/pgnode$i.sock"
			pids[$i]=${PG_PIDS[$i]}
		fi
		b0[$i]=$(pg_store_counts "${socks[$i]}")
	done
	PG_TICKS0=$(pg_server_ticks)
	PG_T0=$(date +%s%N)
	for i in $(seq "$nodes"); do
		lbl="pg-$cfg-c$c-r$r-n$i"
		"$CLIENT" load --socket "${socks[$i]}" --label "$lbl" --tenants "$BASE" --clients "$per" \
			--csr-type ec-p256 --seconds "$SECS" --warmup "$WARMUP" --engine-pid "${pids[$i]}" \
			--csr-cache "$CACHE/csrs" --out "$OUT" &
		lp[$i]=$!
	done
	for i in $(seq "$nodes"); do
		wait "${lp[$i]}" || { rc=1; log "pg: load $cfg node $i: errors (see first_error in $OUT)"; }
	done
	PG_TICKS1=$(pg_server_ticks)
	PG_T1=$(date +%s%N)
	: >"$WORK/pg-batches"
	for i in $(seq "$nodes"); do
		printf '%s %s\n' "${b0[$i]}" "$(pg_store_counts "${socks[$i]}")" >>"$WORK/pg-batches"
	done
	emit "$(jq -cs --arg cfg "$cfg" --arg c "$c" --arg r "$r" --arg n "$nodes" \
		--rawfile b "$WORK/pg-batches" --arg ticks "$((PG_TICKS1 - PG_TICKS0))" \
		--arg hz "$(getconf CLK_TCK)" --arg el "$(( (PG_T1 - PG_T0) / 1000000 ))" '
		[.[] | select(.kind == "engine" and (.label | startswith("pg-\($cfg)-c\($c)-r\($r)-n")))] as $e
		| ($b | split("\n") | map(select(. != "") | split(" ") | map(tonumber)
		    | {commits: (.[2] - .[0]), changes: (.[3] - .[1])})) as $bt
		| {kind: "pg_run", config: $cfg, clients: ($c|tonumber), round: ($r|tonumber),
		   nodes: ($n|tonumber), rate: ([$e[].rate] | add),
		   p50_ms: ([$e[].p50_ms] | max), p99_ms: ([$e[].p99_ms] | max),
		   node_rates: [$e[].rate], node_p50_ms: [$e[].p50_ms], node_p99_ms: [$e[].p99_ms],
		   cpu_ms_per_op: ([$e[].cpu_ms_per_op // empty] | if length > 0 then add / length else null end),
		   errors: ([$e[].errors] | add),
		   commits: ([$bt[].commits] | add), changes: ([$bt[].changes] | add),
		   batch: (([$bt[].changes] | add) / ([$bt[].commits] | add | if . == 0 then 1 else . end)),
		   node_batch: [$bt[] | .changes / (if .commits == 0 then 1 else .commits end)],
		   server_cpu_ms_per_op: (if $cfg == "sqlite" or ([$bt[].changes] | add) == 0 then null
		     else ($ticks|tonumber) * 1000 / ($hz|tonumber) / ([$bt[].changes] | add) end),
		   server_cpu_share: (if $cfg == "sqlite" then null
		     else ($ticks|tonumber) / ($hz|tonumber) / (($el|tonumber) / 1000) end)}' "$OUT")"
	k=$(jq -rs '.[-1] | "\(.config) \(.clients) clients: \(.rate | floor)/s, p99 \(.p99_ms) ms, batch \((.batch * 10 | floor) / 10)"' "$OUT")
	log "pg: round $r: $k"
	return $rc
}

log "pg: issuance, $PG_ROUNDS round(s) x clients $PG_CLIENTS: SQLite, PostgreSQL 1 node, $PG_NODES nodes"
pg_upgraded "$BASE" "$WORK/pg-base.db"
for r in $(seq "$PG_ROUNDS"); do
	for c in $PG_CLIENTS; do
		# SQLite, as the main section runs it
		use_size "$BASE"
		if start_engine; then
			pg_load sqlite "$c" "$r" 1 || true
			stop_engine || true
		fi
		# PostgreSQL, one node
		pg_newdb
		db=$PG_DB
		pg_migrate "$WORK/pg-base.db" "$db" "issue-1-c$c-r$r"
		write_config "$BASE_DIR" "$WORK/unused.db"
		pg_node_conf 1 "$db"
		if pg_node_start 1; then
			pg_load pg1 "$c" "$r" 1 || true
		fi
		pg_nodes_stop || log "pg: a node did not stop cleanly"
		# PostgreSQL, $PG_NODES nodes on one database and one token
		pg_newdb
		db=$PG_DB
		pg_migrate "$WORK/pg-base.db" "$db" "issue-$PG_NODES-c$c-r$r"
		ok=1
		for i in $(seq "$PG_NODES"); do
			pg_node_conf "$i" "$db"
			pg_node_start "$i" || { ok=0; break; }
		done
		if [ "$ok" = 1 ]; then
			pg_load "pg$PG_NODES" "$c" "$r" "$PG_NODES" || true
		fi
		pg_nodes_stop || log "pg: a node did not stop cleanly"
		if [ "$ok" = 1 ]; then
			# one chain under several committers; every committed
			# certificate in the database once
			want=$(jq -s '.[-1].changes' "$OUT")
			have=$(psql_q "$db" "SELECT count(*) FROM certificates WHERE kind = 'device'")
			vrc=0
			"$CA_ADMIN" --json journal verify --store "$db" >"$WORK/pg-verify.json" 2>&1 || vrc=$?
			emit "$(jq -cn --arg want "$want" --arg have "$have" --arg vrc "$vrc" \
				--arg c "$c" --arg r "$r" --arg n "$PG_NODES" \
				--arg rec "$(jq -r '.records // empty' "$WORK/pg-verify.json" 2>/dev/null)" '
				{kind: "pg_check", clients: ($c|tonumber), round: ($r|tonumber), nodes: ($n|tonumber),
				 committed: ($want|tonumber), device_certificates: ($have|tonumber),
				 journal_records: ($rec|tonumber? // null), journal_verify_exit: ($vrc|tonumber),
				 ok: (($want == $have) and $vrc == "0")}')"
			if [ "$want" != "$have" ] || [ "$vrc" != 0 ]; then
				log "pg: CHECK FAILED after $PG_NODES nodes: $have device certificates in the database, $want committed; journal verify exit $vrc"
				REISSUE_FAILED=1
			else
				log "pg: $PG_NODES nodes: $have certificates committed, each once; journal verifies ($(jq -r .records "$WORK/pg-verify.json") records)"
			fi
		fi
		psql_q "$PG_CONN" "DROP DATABASE $PG_DBNAME" >/dev/null 2>&1 || true
	done
done

# the commit alone (engines stopped), on a fresh database and on SQLite
if [ "$PG_COMMIT_SECS" != 0 ]; then
log "pg: the store's commit alone (tca-bench-client commits)"
pg_newdb
db=$PG_DB
pg_migrate "$WORK/pg-base.db" "$db" commits
for b in 1 8 32; do
	"$CLIENT" commits --db "$db" --tenant "$TENANT" --batch "$b" --seconds "$PG_COMMIT_SECS" \
		--label "commits-pg-b$b" --out "$OUT" || log "pg: commits batch $b: errors"
done
for k in 2 3; do
	"$CLIENT" commits --db "$db" --tenant "$TENANT" --batch 8 --clients "$k" \
		--seconds "$PG_COMMIT_SECS" --label "commits-pg-b8-k$k" --out "$OUT" ||
		log "pg: commits batch 8, $k committers: errors"
done
cp "$WORK/pg-base.db" "$WORK/pg-commits.db"
for b in 1 8 32; do
	"$CLIENT" commits --db "sqlite:$WORK/pg-commits.db" --tenant "$TENANT" --batch "$b" \
		--seconds "$PG_COMMIT_SECS" --label "commits-sqlite-b$b" --out "$OUT" ||
		log "pg: commits on SQLite, batch $b: errors"
done
rm -f "$WORK"/pg-commits.db*
fi

# re-issuance of the $MAX-tenant store on PostgreSQL
pg_reissue() {	# LABEL NODES
	local label=$1 nodes=$2 db i flip k first_ms last_ms done_ok=0 deadline said ts
	local counts
	: >"$WORK/problems"
	pg_newdb
	db=$PG_DB
	pg_migrate "$WORK/pg-big.db" "$db" "reissue-$label" || { problem "migrate failed"; return 1; }
	set_clock $((RT - 600))
	write_config "$(cache_dir "$MAX")" "$WORK/unused.db" notice on
	for i in $(seq "$nodes"); do
		pg_node_conf "$i" "$db" "schedule.at = 10-02T02:00
schedule.tz = UTC
testing.clock_file = $WORK/clock"
		pg_node_start "$i" || { problem "node $i did not start"; pg_nodes_stop || true; return 1; }
	done
	wait_crl_pass "$WORK"/pgnode*.log || problem "the scheduler's first pass did not end"
	log "pg re-issuance ($label): $MAX CAs due at $(date -u -d "@$RT" +%FT%TZ), $nodes node(s)"
	flip=$(($(date +%s%N) / 1000000))
	set_clock $((RT + 1))
	deadline=$((SECONDS + REISSUE_TIMEOUT))
	said=$SECONDS
	while :; do
		k=$(cat "$WORK"/pgnode*.log | grep -c 'CA re-issued' || true)
		if [ "$k" -ge "$MAX" ]; then
			done_ok=1
			break
		fi
		for i in $(seq "$nodes"); do
			kill -0 "${PG_PIDS[$i]}" 2>/dev/null || { problem "node $i exited ($k of $MAX done)"; break 2; }
		done
		if [ "$SECONDS" -ge "$deadline" ]; then
			problem "only $k of $MAX CAs re-issued within $REISSUE_TIMEOUT s"
			break
		fi
		if [ $((SECONDS - said)) -ge 10 ]; then
			log "pg re-issuance ($label): $k of $MAX done"
			said=$SECONDS
		fi
		sleep 0.1
	done
	ts=$(cat "$WORK"/pgnode*.log | grep 'CA re-issued' | cut -d ' ' -f 1 | sort)
	first_ms=$(date -u -d "$(printf '%s\n' "$ts" | head -n 1)" +%s%3N 2>/dev/null || true)
	last_ms=$(date -u -d "$(printf '%s\n' "$ts" | tail -n 1)" +%s%3N 2>/dev/null || true)
	sleep 1		# a few more scheduler passes: nothing more may be re-issued
	counts=""
	for i in $(seq "$nodes"); do
		counts="$counts $(grep -c 'CA re-issued' "$WORK/pgnode$i.log" || true)"
		if "$CA_ADMIN" --socket "$WORK/pgnode$i.sock" --json status >"$WORK/status.json"; then
			jq -r --arg i "$i" '
			(if .tenants.renewal_failed != 0 then "node \($i): \(.tenants.renewal_failed) CAs with failing re-issuance" else empty end),
			(if .token.sign_errors != 0 then "node \($i): \(.token.sign_errors) token signing errors" else empty end),
			(if .store.failures != 0 then "node \($i): \(.store.failures) failed store commits" else empty end),
			(if .store.health != "ok" then "node \($i): store \(.store.health): \(.store.problem)" else empty end)' \
			    "$WORK/status.json" >"$WORK/chk"
			while IFS= read -r s; do problem "$s"; done <"$WORK/chk"
		else
			problem "node $i: status failed"
		fi
		e=$(grep -c '\[error\]' "$WORK/pgnode$i.log" || true)
		[ "$e" -eq 0 ] || problem "node $i log: $e error lines, first: $(grep -m 1 '\[error\]' "$WORK/pgnode$i.log")"
	done
	k=$(cat "$WORK"/pgnode*.log | grep -c 'CA re-issued' || true)
	[ "$k" -eq "$MAX" ] || problem "logs: $k \"CA re-issued\" lines, expected $MAX"
	pg_nodes_stop || problem "a node did not stop cleanly"
	q=$(psql_q "$db" "SELECT (SELECT count(*) FROM journal WHERE op = 'ca-reissue')
		|| ' ' || (SELECT count(*) FROM cas a JOIN certificates c ON c.cert_id = a.current_cert_id
		WHERE a.status = 'active' AND a.previous_cert_id IS NOT NULL AND c.not_before = $RT)") ||
		q="(query failed)"
	[ "$q" = "$MAX $MAX" ] || problem "store: ca-reissue journal records and current certificates" \
		"with notBefore T: $q, expected $MAX $MAX"
	JOURNAL_RECORDS=
	if "$CA_ADMIN" --json journal verify --store "$db" >"$WORK/journal.json"; then
		JOURNAL_RECORDS=$(jq '.records' "$WORK/journal.json")
	else
		problem "ca-admin journal verify failed: $(cat "$WORK/journal.json")"
	fi
	emit "$(jq -cn --arg lbl "$label" --arg n "$MAX" --arg k "$k" --arg t "$RT" --arg nodes "$nodes" \
		--arg flip "$flip" --arg first "$first_ms" --arg last "$last_ms" --arg complete "$done_ok" \
		--arg counts "$counts" --arg records "$JOURNAL_RECORDS" --arg crlpass "$CRL_PASS_S" \
		--rawfile problems "$WORK/problems" '
		def num: if . == "" then null else tonumber end;
		($flip | tonumber) as $f
		| (if $complete == "1" and $last != "" then (($last | tonumber) - $f) / 1000 else null end) as $s
		| ($problems | split("\n") | map(select(. != ""))) as $p
		| {kind: "pg_reissue", label: $lbl, nodes: ($nodes | tonumber), tenants: ($n | tonumber),
		   reissued: ($k | tonumber), instant: ($t | tonumber), seconds: $s,
		   first_s: (if $first == "" then null else (($first | tonumber) - $f) / 1000 end),
		   rate: (if $s == null or $s <= 0 then null else ($n | tonumber) / $s end),
		   by_node: ($counts | split(" ") | map(select(. != "") | tonumber)),
		   journal_records: ($records | num), crl_pass_s: ($crlpass | num),
		   ok: ($p | length == 0), problems: $p}')"
	if [ -s "$WORK/problems" ]; then
		REISSUE_FAILED=1
		log "pg re-issuance ($label): checks FAILED"
	else
		log "pg re-issuance ($label): $k of $MAX in $(( last_ms - flip )) ms, by node:$counts; checks passed"
	fi
	psql_q "$PG_CONN" "DROP DATABASE $PG_DBNAME" >/dev/null 2>&1 || true
}
if [ -n "$PG_REISSUE" ]; then
	ensure_cache "$MAX"
	log "pg: re-issuance of $MAX CAs: upgrading a copy of the cached store"
	pg_upgraded "$MAX" "$WORK/pg-big.db"
	RT=$(reissue_instant)
	for run in $PG_REISSUE; do
		case $run in
		pg1) pg_reissue pg1 1 || true ;;
		pg3) pg_reissue "pg$PG_NODES" "$PG_NODES" || true ;;
		*) log "TCA_BENCH_PG_REISSUE: unknown run $run (pg1, pg3)" ;;
		esac
	done
	rm -f "$WORK"/pg-big.db*
fi
pg_t1=$(date +%s%N)
emit "$(jq -cn --arg s "$(( (pg_t1 - pg_t0) / 1000000 ))" '{kind: "pg_section", seconds: (($s|tonumber) / 1000)}')"
log "pg: section took $(( (pg_t1 - pg_t0) / 1000000000 )) s"
"$PGSH" stop "$PGDIR/c" || true
rm -rf "$PGDIR"
PGDIR=
fi	# PostgreSQL present
fi	# section pg

# ------------------------------------------------------------ summary
cp "$OUT" "$RESULTS/latest.jsonl"
bash "$(dirname "${BASH_SOURCE[0]}")/report.sh" "$OUT" "$RESULTS/latest.json" | tee "$RESULTS/latest.txt"
log "results: $OUT, $RESULTS/latest.json, $RESULTS/latest.txt"
if [ "$REISSUE_FAILED" -ne 0 ]; then
	log "re-issuance at scale: checks FAILED (\"problems\" of the reissue results)"
	exit 1
fi
