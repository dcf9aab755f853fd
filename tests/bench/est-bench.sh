#!/usr/bin/env bash
# est-bench.sh - enrollments per second through tca-estd (EST over TLS) next
# to the engine's raw socket rate, against one engine on one SoftHSMv2 token,
# in one run (issue 14): what HTTPS and the front end cost.
#
#   raw     tca-bench-client load over the Unix socket (the engine's rate)
#   est-ka  wrk POSTing /simpleenroll over HTTPS, connections kept alive
#           (the TLS handshake amortised: what HTTP + base64 + PKCS#7 cost)
#   est-new wrk with "Connection: close": a new TLS 1.3 connection and
#           handshake for every enrollment (what a fleet of devices, each
#           enrolling once, costs)
#
# Each at TCA_BENCH_EST_CLIENTS (16) for TCA_BENCH_SECONDS (5) after a
# warm-up, the three back to back, TCA_BENCH_EST_ROUNDS (2) rounds; tca-estd
# with auth = none (the tenant's registration is off for the benchmark:
# a one-time password can be used once, and this measures issuance through
# the front end, not the password hash - that one costs about 40 ms of one
# core per first enrollment, measured in the unit tests' scrypt runs).
# Engine and tca-estd CPU per enrollment from /proc.  Results: JSON lines
# appended to $1 (default ./est-bench.jsonl) and a block on stdout.
set -euo pipefail
: "${TCA_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${TCA_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
export TCA_BUILDDIR TCA_SRCDIR
. "$TCA_SRCDIR/tests/integration/lib.sh"
require_tool wrk
require_tool openssl
require_tool jq

OUT=${1:-$PWD/est-bench.jsonl}
SECS=${TCA_BENCH_SECONDS:-5}
WARM=${TCA_BENCH_WARMUP:-1}
CLIENTS=${TCA_BENCH_EST_CLIENTS:-16}
ROUNDS=${TCA_BENCH_EST_ROUNDS:-2}
CLIENT="$TCA_BUILDDIR/tests/bench/tca-bench-client"
ESTD="$TCA_BUILDDIR/tca-estd"

cpu_ticks() { # pid -> utime+stime in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}

children_cpu_s() { # a saved `times` output -> CPU seconds of the finished children
	awk 'NR == 2 { split($1, u, /m|s/); split($2, s, /m|s/);
		printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}

tca_setup
"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" --label tca-estb \
	--so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin" >/dev/null
TCA_LOG_LEVEL=warning tca_write_config tca-estb
sed -i 's/^token.pool_size = 2$/token.pool_size = 4/' "$WORK/engine.conf"
tca_start_engine
"$CA_ADMIN" ca create t00000 >/dev/null

# the device CSR (P-256, CN = the device id tca-estd passes with auth = none)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/d.key" 2>/dev/null
openssl req -new -key "$WORK/d.key" -subj "/CN=dev-est-bench" -outform DER -out "$WORK/d.der"
base64 -w 64 "$WORK/d.der" >"$WORK/d.b64"

(umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$WORK/tls.key" -out "$WORK/tls.pem" -days 2 -subj "/CN=tca-estd bench" \
	-addext "subjectAltName=IP:127.0.0.1" 2>/dev/null)
cat >"$WORK/estd.conf" <<EOC
listen.address = 127.0.0.1
listen.port = 0
tls.cert_file = $WORK/tls.pem
tls.key_file = $WORK/tls.key
engine.socket = $WORK/engine.sock
auth = none
tenant.default = t00000
log.level = warning
EOC
"$ESTD" --config "$WORK/estd.conf" --port-file "$WORK/estd.port" 2>>"$WORK/estd.log" &
ESTD_PID=$!
for _ in $(seq 1 200); do [ -s "$WORK/estd.port" ] && break; sleep 0.05; done
[ -s "$WORK/estd.port" ] || { cat "$WORK/estd.log" >&2; echo "tca-estd did not start" >&2; exit 1; }
URL="https://127.0.0.1:$(cat "$WORK/estd.port")/.well-known/est/t00000/simpleenroll"
trap 'kill "$ESTD_PID" 2>/dev/null || true; tca_cleanup' EXIT

# one enrollment by curl first: the path works and answers a certificate
curl -sS --cacert "$WORK/tls.pem" -H "Content-Type: application/pkcs10" \
	--data-binary @"$WORK/d.b64" -o "$WORK/one.b64" -w '%{http_code}' "$URL" >"$WORK/code"
[ "$(cat "$WORK/code")" = 200 ] || { cat "$WORK/estd.log" >&2; echo "EST check: HTTP $(cat "$WORK/code")" >&2; exit 1; }
base64 -d "$WORK/one.b64" | openssl pkcs7 -inform DER -print_certs -noout >/dev/null

cat >"$WORK/ka.lua" <<EOL
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/pkcs10"
local f = io.open("$WORK/d.b64", "r")
wrk.body = f:read("*a")
f:close()
local codes = {}
response = function(status, headers, body)
	codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
	io.write(string.format("WRK %d %d %d %.3f %.3f %.3f\\n", summary.requests,
		summary.errors.status + summary.errors.connect + summary.errors.read +
		summary.errors.write + summary.errors.timeout, summary.duration,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		latency.max / 1000))
end
EOL
sed 's/^wrk.method = "POST"$/wrk.method = "POST"\nwrk.headers["Connection"] = "close"/' \
	"$WORK/ka.lua" >"$WORK/new.lua"

# est MODE: one wrk window; prints "rate p50 p99 errors engine-ms estd-ms"
est() {
	local lua="$WORK/$1.lua" e0 e1 s0 s1 c0 c1 line n errs us p50 p99 max
	wrk -t 2 -c "$CLIENTS" -d "${WARM}s" -s "$lua" "$URL" >/dev/null 2>&1 || true
	# `times` in this shell (not in a $(...) of its own): wrk is its child
	e0=$(cpu_ticks "$ENGINE_PID"); s0=$(cpu_ticks "$ESTD_PID"); times >"$WORK/times0"
	wrk -t 2 -c "$CLIENTS" -d "${SECS}s" -s "$lua" "$URL" >"$WORK/wrk.out" 2>&1
	e1=$(cpu_ticks "$ENGINE_PID"); s1=$(cpu_ticks "$ESTD_PID"); times >"$WORK/times1"
	c0=$(children_cpu_s "$WORK/times0"); c1=$(children_cpu_s "$WORK/times1")
	line=$(grep '^WRK ' "$WORK/wrk.out")
	read -r _ n errs us p50 p99 max <<<"$line"
	awk -v n="$n" -v errs="$errs" -v us="$us" -v p50="$p50" -v p99="$p99" \
	    -v e="$((e1 - e0))" -v s="$((s1 - s0))" -v c0="$c0" -v c1="$c1" \
	    -v hz="$(getconf CLK_TCK)" 'BEGIN {
		ok = n - errs; rate = ok / (us / 1e6);
		ecpu = 0; scpu = 0; ccpu = 0;
		if (ok > 0) { ecpu = e * 1000 / hz / ok; scpu = s * 1000 / hz / ok;
			ccpu = (c1 - c0) * 1000 / ok }
		printf "%.0f %.2f %.2f %d %.3f %.3f %.3f\n", rate, p50, p99, errs, ecpu, scpu, ccpu }'
}

# raw: the engine over its socket, the same CSR type and concurrency
raw() {
	"$CLIENT" load --socket "$WORK/engine.sock" --label est-bench-raw --tenants 1 \
		--clients "$CLIENTS" --csr-type ec-p256 --seconds "$SECS" --warmup "$WARM" \
		--engine-pid "$ENGINE_PID" --out "$WORK/raw.jsonl" >/dev/null
	jq -r -s 'last | "\(.rate|round) \(.p50_ms) \(.p99_ms) \(.errors) \(.cpu_ms_per_op) \(.client_cpu_ms_per_op // "-")"' \
		"$WORK/raw.jsonl"
}

printf 'EST through tca-estd next to the raw socket (%d clients, P-256 CSRs, TLS 1.3, %ss windows)\n' \
	"$CLIENTS" "$SECS"
printf '  round  mode                        enroll/s  p50-ms  p99-ms  errors  engine-CPU-ms  estd-CPU-ms  client-CPU-ms  vs raw\n'
for r in $(seq 1 "$ROUNDS"); do
	read -r raw_rate raw_p50 raw_p99 raw_err raw_cpu raw_client <<<"$(raw)"
	printf '  %5d  %-26s %9s %7s %7s %7s %14s %12s %14s %7s\n' "$r" "raw socket" "$raw_rate" \
		"$raw_p50" "$raw_p99" "$raw_err" "$raw_cpu" "-" "$raw_client" "1.00"
	for mode in ka new; do
		read -r rate p50 p99 errs ecpu scpu ccpu <<<"$(est "$mode")"
		label=$([ "$mode" = ka ] && echo "EST, kept-alive TLS" || echo "EST, TLS handshake each")
		ratio=$(awk -v a="$rate" -v b="$raw_rate" 'BEGIN { r = 0; if (b > 0) r = a / b; printf "%.2f", r }')
		printf '  %5d  %-26s %9s %7s %7s %7s %14s %12s %14s %7s\n' "$r" "$label" "$rate" "$p50" \
			"$p99" "$errs" "$ecpu" "$scpu" "$ccpu" "$ratio"
		jq -n -c --arg mode "$mode" --argjson round "$r" --argjson clients "$CLIENTS" \
			--argjson rate "$rate" --argjson p50 "$p50" --argjson p99 "$p99" \
			--argjson errors "$errs" --argjson engine_cpu "$ecpu" --argjson estd_cpu "$scpu" \
			--argjson client_cpu "$ccpu" \
			--argjson raw "$raw_rate" \
			'{kind: "est", mode: $mode, round: $round, clients: $clients, rate: $rate,
			  p50_ms: $p50, p99_ms: $p99, errors: $errors, engine_cpu_ms: $engine_cpu,
			  estd_cpu_ms: $estd_cpu, client_cpu_ms: $client_cpu, raw_rate: $raw,
			  vs_raw: ($rate / $raw)}' >>"$OUT"
	done
done
