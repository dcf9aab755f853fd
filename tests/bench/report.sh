#!/usr/bin/env bash
# report.sh RESULTS.jsonl [SUMMARY.json] - the benchmark table from the JSON
# lines run-bench.sh wrote: ratios (engine / ceiling) first, absolute figures
# second.  With SUMMARY.json, also writes one JSON document holding the
# machine, the headline ratios with their targets and whether each target is
# met (null: not measured), and every measurement.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: report.sh RESULTS.jsonl [SUMMARY.json]" >&2; exit 2; }
command -v jq >/dev/null 2>&1 || { echo "report.sh: jq is required" >&2; exit 1; }

summary=$(jq -s '
	def one(f): [.[] | select(f)] | first;
	def rate(f): (one(f) // {rate: null}).rate;
	def ratio(a; b): if a == null or b == null or b == 0 then null else a / b end;
	. as $all
	| (one(.kind == "machine")) as $m
	| ([.[] | select(.kind == "engine" and .label == "main") | .clients] | unique) as $cl
	| ([.[] | select(.kind == "engine" and .label == "main" and .csr_type == "ec-p256") | .rate]
	   | max) as $eng_peak
	| def unpaired: (.label // "") | startswith("paired") | not;
	  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	  ([.[] | select(.kind == "floor" and .csr_type == "ec-p256" and unpaired) | .rate] | max) as $floor_peak
	| ([.[] | select(.kind == "sign" and .label != "scale") | .rate] | max) as $sign_peak
	| ([.[] | select(.kind == "p11sign") | .rate] | max) as $p11_peak
	| (rate(.kind == "naive" and .label == "main")) as $naive
	| def avg_by_tenants(k): [.[] | select(.kind == k and .label == "scale")]
	    | group_by(.tenants) | map(. as $g | reduce ($g[0] | keys_unsorted[]) as $f ($g[0];
	        if ($g[0][$f] | type) == "number" and $f != "tenants" and $f != "clients"
	        then .[$f] = ([$g[][$f]] | add / length) else . end) + {rounds: ($g | length)});
	  (avg_by_tenants("engine")) as $sc
	| (avg_by_tenants("startup")) as $su
	| (avg_by_tenants("memory")) as $mem
	| (one(.kind == "engine" and .label == "main" and .csr_type == "ec-p256" and .clients == 64))
	  as $c64
	| (one(.kind == "engine" and .label == "open50")) as $open
	| ([.[] | select(.kind == "engine" and .label == "main" and .csr_type == "ec-p256")
	   | .cpu_ms_per_op // empty] | min) as $eng_cpu
	| ([.[] | select(.kind == "floor" and .csr_type == "ec-p256" and unpaired) | .cpu_ms_per_op // empty]
	   | min) as $floor_cpu
	| ([.[] | select(.kind == "reissue")]) as $ri
	| (one(.kind == "reissue" and .label == "idle")) as $ri_idle
	| (one(.kind == "reissue" and .label == "load")) as $ri_load
	| (one(.kind == "engine" and .label == "reissue-base")) as $ri_base
	| (one(.kind == "engine" and .label == "reissue-during")) as $ri_during
	| ([range(1; 100) as $r
	    | {floor: rate(.kind == "floor" and .label == "paired-floor-\($r)"),
	       disk: rate(.kind == "engine" and .label == "paired-disk-\($r)"),
	       tmpfs: rate(.kind == "engine" and .label == "paired-tmpfs-\($r)")}
	    | select(.floor != null and .floor > 0 and .disk != null)
	    | {disk: (.disk / .floor), tmpfs: (if .tmpfs == null then null else .tmpfs / .floor end)}])
	  as $pr
	| ([.[] | select(.kind == "startup" and .label == "revocation") | .revoked] | unique) as $rev_ns
	| ([$rev_ns[] as $n
	    | (one(.kind == "crl" and .label == "crl-engine-\($n)")) as $ce
	    | (one(.kind == "crl" and .label == "crl-fetch-\($n)")) as $cf
	    | (one(.kind == "crlparts" and .label == "crl-parts-\($n)")) as $cp
	    | (one(.kind == "crl_openssl" and .label == "crl-openssl-\($n)")) as $co
	    | (one(.kind == "startup" and .label == "revocation" and .revoked == $n)) as $su
	    | (($cf // $ce) // {}) as $fe
	    | {revoked: $n, startup_ms: $su.startup_ms, rss_kib: $su.rss_kib,
	       sign_requested: $ce.sign_requested, signed: $ce.signed, sign_ms: $ce.sign_ms,
	       sign_ms_median: $ce.sign_ms_median, sign_engine_cpu_ms: $ce.sign_engine_cpu_ms,
	       sign_error: $ce.first_error, sign_failed_ms: $ce.sign_failed_ms,
	       fetched: (if $cf != null then "signed in process (crlparts)" else "signed by crl.sign" end),
	       fetch_ms: $fe.fetch_ms, fetch_ms_median: $fe.fetch_ms_median,
	       entries: $fe.entries, bytes: $fe.bytes, verified: ($fe.verified == 1),
	       verify_error: $fe.verify_error, parts: $cp, openssl: $co}]) as $rev_crl
	| ([range(1; 100) as $r
	    | {round: $r, issue: one(.kind == "engine" and .label == "rev-issue-\($r)"),
	       ocsp: one(.kind == "engine" and .label == "rev-ocsp-\($r)")}
	    | select(.issue != null and .ocsp != null)
	    | {round, clients: .issue.clients, issue_rate: .issue.rate, ocsp_rate: .ocsp.rate,
	       ratio: ratio(.ocsp.rate; .issue.rate),
	       issue_p50_ms: .issue.p50_ms, issue_p99_ms: .issue.p99_ms,
	       ocsp_p50_ms: .ocsp.p50_ms, ocsp_p99_ms: .ocsp.p99_ms,
	       issue_cpu_ms: .issue.cpu_ms_per_op, ocsp_cpu_ms: .ocsp.cpu_ms_per_op,
	       issue_client_cpu_ms: .issue.client_cpu_ms_per_op, ocsp_client_cpu_ms: .ocsp.client_cpu_ms_per_op,
	       issue_errors: .issue.errors, ocsp_errors: .ocsp.errors,
	       pool: .ocsp.pool, pool_revoked: .ocsp.pool_revoked,
	       checked: ((.ocsp.checked_before // 0) + (.ocsp.checked_window // 0)),
	       checked_failed: ((.ocsp.checked_before_failed // 0) + (.ocsp.checked_window_failed // 0)),
	       check_error: .ocsp.check_error,
	       status_field_mismatch: .ocsp.status_field_mismatch,
	       status_field_example: .ocsp.status_field_example}]) as $rev_ocsp
	| ([.[] | select(.kind == "inventory")]) as $inv_rounds
	| (if ($inv_rounds | length) == 0 and one(.kind == "invpop") == null then null else {
	    build: one(.kind == "invpop"),
	    section: one(.kind == "inventory_section"),
	    startup: [.[] | select(.kind == "startup" and .label == "inventory")],
	    ready: [.[] | select(.kind == "ready" and ((.label // "") | startswith("inventory")))],
	    rounds: $inv_rounds,
	    parts: one(.kind == "invparts"),
	    plans: [.[] | select(.kind == "inventory_plan")],
	    sql: [.[] | select(.kind == "inventory_sql")],
	    index: one(.kind == "inventory_index")} end) as $inv
	| {
	  machine: $m,
	  headline: {
	    engine_vs_floor: (if ($pr | length) > 0 then ($pr | map(.disk) | median) else ratio($eng_peak; $floor_peak) end),
	    engine_vs_floor_rounds: ($pr | map(.disk)),
	    engine_tmpfs_vs_floor: ($pr | map(.tmpfs // empty) | median),
	    engine_tmpfs_vs_floor_rounds: ($pr | map(.tmpfs // empty)),
	    paired_clients: (one(.kind == "engine" and .label == "paired-disk-1") // {}).clients,
	    engine_vs_floor_peak: ratio($eng_peak; $floor_peak),
	    engine_vs_floor_by_clients: [ $cl[] as $c | {clients: $c,
	      ratio: ratio(rate(.kind == "engine" and .label == "main" and .csr_type == "ec-p256"
	        and .clients == $c); rate(.kind == "floor" and .csr_type == "ec-p256" and .threads == $c and unpaired))} ],
	    floor_vs_engine_cpu_per_cert: ratio($floor_cpu; $eng_cpu),
	    engine_vs_naive: ratio($eng_peak; $naive),
	    engine_vs_token_sign_peak: ratio($eng_peak; $sign_peak),
	    engine_vs_bare_csign_peak: ratio($eng_peak; $p11_peak),
	    p99_ms_64_clients_closed: ($c64 // {}).p99_ms,
	    p99_ms_64_clients_open: ($open // {}).p99_ms,
	    open_offered_rate: ($open // {}).offered_rate,
	    scaling_rate_ratio: (if ($sc | length) >= 2 then ratio($sc[-1].rate; $sc[0].rate) else null end),
	    scaling_max_tenants: (if ($sc | length) > 0 then $sc[-1].tenants else null end),
	    startup_ms_max_tenants: (if ($su | length) > 0 then $su[-1].startup_ms else null end),
	    rss_mib_max_tenants: (if ($mem | length) > 0 then ([$mem[-1].rss_kib, $mem[-1].hwm_kib] | max) / 1024 else null end),
	    reissue_tenants: (($ri_load // $ri_idle) // {}).tenants,
	    reissue_seconds_idle: ($ri_idle // {}).seconds,
	    reissue_seconds_load: ($ri_load // {}).seconds,
	    reissue_offered_rate: ($ri_load // {}).offered_rate,
	    reissue_p99_ms_base: ($ri_base // {}).p99_ms,
	    reissue_p99_ms_during: ($ri_during // {}).p99_ms,
	    reissue_p99_ratio: ratio(($ri_during // {}).p99_ms; ($ri_base // {}).p99_ms),
	    reissue_checks_ok: (if ($ri | length) == 0 then null else all($ri[]; .ok) end),
	    ocsp_vs_issue: ($rev_ocsp | map(.ratio // empty) | median),
	    ocsp_vs_issue_rounds: ($rev_ocsp | map(.ratio)),
	    crl_revoked_max: ($rev_crl | map(.revoked) | max),
	    crl_sign_ms_max_revoked: (($rev_crl | max_by(.revoked)) // {}).sign_ms_median,
	    inventory_certificates: ($inv // {} | .build // {} | .certificates),
	    inventory_list100_ms: ([$inv_rounds[].list100_ms[]?] | median),
	    inventory_show_ms: ([$inv_rounds[].show_ms[]?] | median),
	    inventory_status_uncached_ms: ([$inv_rounds[].status_first_ms // empty] | median),
	    inventory_status_cached_ms: ([$inv_rounds[].status_cached_ms[]?] | median)
	  },
	  targets: {
	    engine_vs_floor: ">= 0.70", engine_vs_naive: ">= 100",
	    p99_ms_64_clients_closed: "<= 10", scaling_rate_ratio: ">= 0.95",
	    startup_ms_max_tenants: "<= 2000", rss_mib_max_tenants: "<= 64",
	    reissue_seconds_idle: "<= 60", reissue_seconds_load: "<= 60",
	    reissue_p99_ratio: "<= 2"
	  },
	  peaks: {engine: $eng_peak, floor: $floor_peak, token_sign: $sign_peak,
	    bare_csign: $p11_peak, naive: $naive},
	  cpu_ms_per_cert: {engine: $eng_cpu, floor: $floor_cpu},
	  revocation: {crl: $rev_crl, ocsp: $rev_ocsp},
	  inventory: $inv,
	  scaling: {engine: $sc, startup: $su, memory: $mem,
	    token_open: [.[] | select(.kind == "token_open")],
	    token_sign: [.[] | select(.kind == "sign" and .label == "scale")]},
	  results: [ $all[] | select(.kind != "machine") ]
	}
	| .headline as $h
	| def met(v; ok): if v == null then null else ok end;
	  .met = {
	    engine_vs_floor: met($h.engine_vs_floor; $h.engine_vs_floor >= 0.70),
	    engine_vs_naive: met($h.engine_vs_naive; $h.engine_vs_naive >= 100),
	    p99_ms_64_clients_closed: met($h.p99_ms_64_clients_closed; $h.p99_ms_64_clients_closed <= 10),
	    scaling_rate_ratio: met($h.scaling_rate_ratio; $h.scaling_rate_ratio >= 0.95),
	    startup_ms_max_tenants: met($h.startup_ms_max_tenants; $h.startup_ms_max_tenants <= 2000),
	    rss_mib_max_tenants: met($h.rss_mib_max_tenants; $h.rss_mib_max_tenants <= 64),
	    reissue_seconds_idle: met($h.reissue_seconds_idle; $h.reissue_seconds_idle <= 60),
	    reissue_seconds_load: met($h.reissue_seconds_load; $h.reissue_seconds_load <= 60),
	    reissue_p99_ratio: met($h.reissue_p99_ratio; $h.reissue_p99_ratio <= 2)
	  }' "$1")

if [ $# -ge 2 ]; then
	printf '%s\n' "$summary" >"$2"
fi

printf '%s\n' "$summary" | jq -r '
	def f0: if . == null then "-" else (. * 1 | round | tostring) end;
	def f1: if . == null then "-" else ((. * 10 | round) / 10 | tostring) end;
	def f2: if . == null then "-" else ((. * 100 | round) / 100 | tostring) end;
	def pct: if . == null then "-" else ((. * 100 | round | tostring) + " %") end;
	def pad(n): tostring | if length >= n then . else . + (" " * (n - length)) end;
	def lpad(n): tostring | if length >= n then . else (" " * (n - length)) + . end;
	def met(v; ok): if v == null then "-" elif ok then "yes" else "NO" end;
	.machine as $m | .headline as $h | .results as $r
	| def rate(f): ([$r[] | select(f)] | first // {rate: null}).rate;
	  def row(f): ([$r[] | select(f)] | first // {});
	([
	"tca benchmark, \($m.date): \($m.cpu), \($m.nproc) CPUs, \($m.openssl), SoftHSM \($m.softhsm)",
	"token.pool_size \($m.pool), \($m.seconds) s per point after \($m.warmup) s warm-up, git \($m.git)\(if $m.only != null then ", sections: \($m.only) (TCA_BENCH_ONLY)" else "" end)",
	"",
	"Headline: engine / ceiling                                   measured    target     met",
	"  issuance over socket / in-process crypto floor           \($h.engine_vs_floor | pct | lpad(9))    >= 70 %    \(met($h.engine_vs_floor; $h.engine_vs_floor >= 0.70))",
	(if ($h.engine_vs_floor_rounds | length) > 0 then
	"    median of \($h.engine_vs_floor_rounds | length) paired rounds at \($h.paired_clients) clients: \($h.engine_vs_floor_rounds | map(pct) | join(", "))" else
	"    (no paired rounds: peak vs peak)" end),
	"  same, store on tmpfs (not durable; comparison only)      \($h.engine_tmpfs_vs_floor | pct | lpad(9))",
	"  same, peak vs peak over the client sweep                 \($h.engine_vs_floor_peak | pct | lpad(9))",
	"  CPU per certificate: floor / engine (best of each)       \($h.floor_vs_engine_cpu_per_cert | pct | lpad(9))",
	"  issuance over socket / naive openssl + libp11            \($h.engine_vs_naive | if . == null then "-" else (f0 + "x") end | lpad(9))    >= 100x    \(met($h.engine_vs_naive; $h.engine_vs_naive >= 100))",
	"  issuance over socket / token signing, our layer (peak)   \($h.engine_vs_token_sign_peak | pct | lpad(9))",
	"  issuance over socket / bare C_Sign loop (peak)           \($h.engine_vs_bare_csign_peak | pct | lpad(9))",
	"  p99 latency, 64 clients, closed loop                     \($h.p99_ms_64_clients_closed | if . == null then "-" else (f1 + " ms") end | lpad(9))    <= 10 ms   \(met($h.p99_ms_64_clients_closed; $h.p99_ms_64_clients_closed <= 10))",
	"  p99 latency, 64 clients offered \($h.open_offered_rate | f0)/s (open loop)  \($h.p99_ms_64_clients_open | if . == null then "-" else (f1 + " ms") end | lpad(9))",
	"  rate at \($h.scaling_max_tenants) tenants / rate at 1 tenant              \($h.scaling_rate_ratio | pct | lpad(9))    >= 95 %    \(met($h.scaling_rate_ratio; $h.scaling_rate_ratio >= 0.95))",
	"  start-up with \($h.scaling_max_tenants) tenants                              \($h.startup_ms_max_tenants | if . == null then "-" else (f0 + " ms") end | lpad(9))    <= 2000 ms \(met($h.startup_ms_max_tenants; $h.startup_ms_max_tenants <= 2000))",
	"  RSS with \($h.scaling_max_tenants) tenants (max of VmRSS, VmHWM after load)  \($h.rss_mib_max_tenants | if . == null then "-" else (f1 + " MiB") end | lpad(9))    <= 64 MiB  \(met($h.rss_mib_max_tenants; $h.rss_mib_max_tenants <= 64))",
	"",
	"Throughput per second by concurrency (1 tenant; P-256 CA key; device CSRs P-256 / RSA-2048)",
	"  clients  engine-P256  engine-RSA  floor-P256  floor-RSA  token-sign  bare-C_Sign  engine/floor",
	( [$r[] | select(.kind == "engine" and .label == "main") | .clients] | unique | .[] as $c |
	  "  \($c | lpad(7))  \(rate(.kind == "engine" and .label == "main" and .csr_type == "ec-p256" and .clients == $c) | f0 | lpad(11))  \(rate(.kind == "engine" and .label == "main" and .csr_type == "rsa-2048" and .clients == $c) | f0 | lpad(10))  \(rate(.kind == "floor" and .csr_type == "ec-p256" and .threads == $c) | f0 | lpad(10))  \(rate(.kind == "floor" and .csr_type == "rsa-2048" and .threads == $c) | f0 | lpad(9))  \(rate(.kind == "sign" and .label != "scale" and .threads == $c) | f0 | lpad(10))  \(rate(.kind == "p11sign" and .threads == $c) | f0 | lpad(11))  \(($h.engine_vs_floor_by_clients[] | select(.clients == $c) | .ratio) | pct | lpad(12))" ),
	"",
	"Latency over the socket, ms (closed loop: each client sends when answered)",
	"  clients  csr        certs/s     p50     p90     p99     max  errors  engine-CPU-ms/cert",
	( $r[] | select(.kind == "engine" and (.label == "main" or .label == "open50")) |
	  "  \(.clients | lpad(7))  \(.csr_type | pad(9))  \(.rate | f0 | lpad(7))  \(.p50_ms | f2 | lpad(6))  \(.p90_ms | f2 | lpad(6))  \(.p99_ms | f2 | lpad(6))  \(.max_ms | f2 | lpad(6))  \(.errors | lpad(6))  \(.cpu_ms_per_op | f2 | lpad(18))\(if .label == "open50" then "  (open loop, offered \(.offered_rate | f0)/s)" else "" end)" ),
	"",
	"Naive path: one `openssl x509 -req -engine pkcs11` process per certificate",
	( $r[] | select(.kind == "naive") |
	  "  \(.tenants | lpad(6)) tenant(s): \(.ops) certificates, \(.rate | f1)/s, mean \(.mean_ms | f1) ms, p99 \(.p99_ms | f1) ms" ),
	( $r[] | select(.kind == "skip") | "  SKIPPED: \(.reason)" ),
	"",
	"Tenant scaling (P-256 CSRs, tenants picked uniformly per request; mean of \(.scaling.engine[0].rounds // 0) round(s))",
	"  tenants  clients  certs/s   vs-min     p99  start-up  RSS-idle  RSS-after  HWM (MiB)",
	( .scaling as $S | $S.engine[] | . as $e |
	  ($S.startup | map(select(.tenants == $e.tenants)) | first // {}) as $s |
	  ($S.memory | map(select(.tenants == $e.tenants)) | first // {}) as $mm |
	  "  \($e.tenants | lpad(7))  \($e.clients | lpad(7))  \($e.rate | f0 | lpad(7))  \(($e.rate / $S.engine[0].rate) | pct | lpad(7))  \($e.p99_ms | f1 | lpad(6))  \($s.startup_ms | if . == null then "-" else (f0 + " ms") end | lpad(8))  \(($s.rss_kib // null) | if . == null then "-" else (. / 1024 | f1) end | lpad(8))  \(($mm.rss_kib // null) | if . == null then "-" else (. / 1024 | f1) end | lpad(9))  \(($mm.hwm_kib // null) | if . == null then "-" else (. / 1024 | f1) end | lpad(5))" ),
	"  token share (in process, same token):",
	"  tenants  token-open  token-RSS  signatures/s over all keys",
	( .scaling as $S | $S.token_open[] | . as $o |
	  ($S.token_sign | map(select(.tenants == $o.keys)) | first // {}) as $g |
	  "  \($o.keys | lpad(7))  \($o.open_ms | f0 | lpad(7)) ms  \($o.rss_kib / 1024 | f1 | lpad(5)) MiB  \($g.rate | f0 | lpad(8)) (\($g.threads // "-") threads)" ),
	"",
	( [$r[] | select(.kind == "reissue")] as $ri | .met as $mt |
	  if ($ri | length) == 0 then empty else
	  ($ri | map(select(.label == "load")) | first // {}) as $ld |
	  ($h.reissue_tenants) as $n |
	  "Re-issuance at scale: the scheduler re-issues all \($n) tenant CAs (testing.clock_file",
	  "moved past \($ri[0].instant_iso); time from the move to the last CA committed)",
	  "                                                             measured    target     met",
	  "  \("time to re-issue \($n) CAs, nothing else running" | pad(55))  \($h.reissue_seconds_idle | if . == null then "-" else (f1 + " s") end | lpad(9))    <= 60 s    \(met($h.reissue_seconds_idle; $mt.reissue_seconds_idle))",
	  "  \("time to re-issue \($n) CAs, under \($ld.offered_rate | f0)/s issuance" | pad(55))  \($h.reissue_seconds_load | if . == null then "-" else (f1 + " s") end | lpad(9))    <= 60 s    \(met($h.reissue_seconds_load; $mt.reissue_seconds_load))",
	  "  \("issuance p99 during / before the re-issuance" | pad(55))  \($h.reissue_p99_ratio | if . == null then "-" else (f2 + "x") end | lpad(9))    <= 2x      \(met($h.reissue_p99_ratio; $mt.reissue_p99_ratio))",
	  "  run   CAs re-issued  seconds  first after  CAs/s  checks",
	  ( $ri[] | "  \(.label | pad(4))  \("\(.reissued)/\(.tenants)" | lpad(12))  \(.seconds | f1 | lpad(7))  \(.first_s | if . == null then "-" else (f2 + " s") end | lpad(11))  \(.rate | f0 | lpad(5))  \(if .ok then "ok" else "FAILED" end)" ),
	  "  issuance, \($ld.offered_rate | f0)/s offered (open loop, \($ld.clients) clients, tenants drawn from all \($n)), ms:",
	  "  window                  seconds  certs/s     p50     p90     p99     max  errors",
	  ( $r[] | select(.kind == "engine" and (.label == "reissue-base" or .label == "reissue-during")) |
	    "  \(if .label == "reissue-base" then "before the re-issuance" else "during the re-issuance" end | pad(22))  \(.seconds | f1 | lpad(7))  \(.rate | f0 | lpad(7))  \(.p50_ms | f2 | lpad(6))  \(.p90_ms | f2 | lpad(6))  \(.p99_ms | f2 | lpad(6))  \(.max_ms | f2 | lpad(6))  \(.errors | lpad(6))" ),
	  ( $ri[] | select(.ok | not) | .label as $l | .problems[] | "  CHECK FAILED (\($l)): \(.)" ),
	  ""
	  end ),
	( [$r[] | select(.kind == "module")] as $mods |
	  if ($mods | length) == 0 then empty else
	  "Per PKCS#11 module (1 tenant, \([$r[] | select(.kind == "engine" and (.label | startswith("module-"))) | .clients] | first // "-") clients, P-256 device CSRs; the token signs)",
	  "  module        token                         CA key    mechanism             certs/s     p99  errors",
	  ( $mods[] | . as $m |
	    ([$r[] | select(.kind == "engine" and .label == "module-\($m.module)")] | first // {}) as $e |
	    "  \($m.module | pad(12))  \($m.token | pad(28))  \($m.ca_key_type | pad(8))  \($m.mechanism | pad(20))  \($e.rate | if . == null then "-" else f0 end | lpad(7))  \($e.p99_ms | if . == null then "-" else f1 end | lpad(6))  \($e.errors // "-" | lpad(6))" ),
	  ""
	  end ),
	( .revocation as $rv |
	  if ($rv.crl | length) == 0 and ($rv.ocsp | length) == 0 then empty else
	  "Revocation: CRL signing and OCSP (tenant \u0027t00000\u0027, P-256 CA key in the token)",
	  ( if ($rv.crl | length) == 0 then empty else
	    "  CRL with N revoked certificates (written into the store), crl.sign over the socket, ms per call:",
	    "  revoked  start-up  crl.sign (each call)           entries     octets  fetch-ms  checked (openssl)",
	    ( $rv.crl[] |
	      "  \(.revoked | lpad(7))  \(.startup_ms | if . == null then "-" else (f0 + " ms") end | lpad(8))  \(if (.signed // 0) > 0 then ((.sign_ms | map(f1) | join(", ")) + " (median " + (.sign_ms_median | f1) + ")") else "FAILED" end | pad(29))  \(.entries // "-" | lpad(7))  \(.bytes // "-" | lpad(9))  \(.fetch_ms_median | f2 | lpad(8))  \(if .verified then "ok" else "NO" end) (\(.openssl.entries // "-") entries, \(.openssl.verify // "-"))",
	      ( if (.signed // 0) < (.sign_requested // 0) then
	        "           crl.sign failed \((.sign_requested // 0) - (.signed // 0)) of \(.sign_requested) times, after \(.sign_failed_ms // [] | map(f1) | join(", ")) ms: \(.sign_error // "-")" else empty end ),
	      ( if .fetched != "signed by crl.sign" then
	        "           (the CRL fetched and checked is the one crlparts signed in process with the same key)" else empty end ) ),
	    "  the engine\u0027s signing path in process (crlparts: same store copy and token), median of \([$rv.crl[].parts.rounds // 0] | max) rounds, ms:",
	    "  revoked  crl_get  revoked_foreach  build  (signer)  commit    total  signer",
	    ( $rv.crl[] | select(.parts != null) | .parts as $p |
	      "  \(.revoked | lpad(7))  \($p.crl_get_ms_median | f1 | lpad(7))  \($p.read_ms_median | f1 | lpad(15))  \($p.build_ms_median | f1 | lpad(5))  \($p.signer_ms_median | f1 | lpad(8))  \($p.commit_ms_median | f1 | lpad(6))  \($p.total_ms_median | f1 | lpad(7))  \(if $p.signer == "token" then "token layer (the engine\u0027s)" else "C_Sign on the digest: the token layer refused \($p.token_refused_octets) octets (max \($p.token_max_msg))" end)" )
	    end ),
	  ( if ($rv.ocsp | length) == 0 then empty else
	    "  OCSP next to issuance, same engine, back to back, \($rv.ocsp[0].clients) clients (pool \($rv.ocsp[0].pool) certificates, \($rv.ocsp[0].pool_revoked) revoked):",
	    "  (CPU-ms: engine CPU per certificate / response; client: the load generator\u0027s, same machine)",
	    "  round  certs/s  p50-ms  p99-ms  CPU-ms  client   OCSP/s  p50-ms  p99-ms  CPU-ms  client  OCSP/issuance",
	    ( $rv.ocsp[] |
	      "  \(.round | lpad(5))  \(.issue_rate | f0 | lpad(7))  \(.issue_p50_ms | f2 | lpad(6))  \(.issue_p99_ms | f2 | lpad(6))  \(.issue_cpu_ms | f2 | lpad(6))  \(.issue_client_cpu_ms | f2 | lpad(6))  \(.ocsp_rate | f0 | lpad(7))  \(.ocsp_p50_ms | f2 | lpad(6))  \(.ocsp_p99_ms | f2 | lpad(6))  \(.ocsp_cpu_ms | f2 | lpad(6))  \(.ocsp_client_cpu_ms | f2 | lpad(6))  \(.ratio | if . == null then "-" else (f2 + "x") end | lpad(13))" ),
	    "  OCSP / issuance, median of the rounds: \($h.ocsp_vs_issue | if . == null then "-" else (f2 + "x") end)",
	    "  OCSP responses checked in full (signature, nonce, status): \([$rv.ocsp[].checked] | add), wrong: \([$rv.ocsp[].checked_failed] | add); errors in the windows: \([$rv.ocsp[].ocsp_errors] | add)",
	    ( [$rv.ocsp[].status_field_mismatch // 0] | add | if . > 0 then
	      "  the RPC status field disagreed with the response\u0027s certStatus in \(.) answers (e.g. \"\([$rv.ocsp[].status_field_example // empty] | first)\")" else empty end )
	    end ),
	  ""
	  end ),
	( .inventory as $iv |
	  if $iv == null then empty else
	  def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	  def pool(k): [$iv.rounds[] | .[k + "_ms"][]?];
	  def mib: if . == null then "-" else ((. / 1048576 * 10 | round) / 10 | tostring) + " MiB" end;
	  def rows(k): ($iv.rounds | map(.[k + "_rows"] // empty) | unique | map(tostring) | join("/")) | if . == "" then "-" else . end;
	  ($iv.build // {}) as $b | ($iv.parts // {}) as $p | ($iv.rounds[0] // {}) as $r0 |
	  def line(lbl; k; pk):
	    "  \(lbl | pad(40))  \(rows(k) | lpad(5))  \(pool(k) | med | f2 | lpad(7))  \(pool(k) | max | f2 | lpad(7))  \(if pk == null then "" else ($p[pk + "_ms_median"] | f2 | lpad(9)) end)";
	  "Certificate inventory: \($b.tenants // "-") tenants x \($b.per_tenant // "-") device certificates (\($b.revoked_per_tenant // "-") revoked each), tenant \($r0.tenant // "-")",
	  "  store: \($b.certificates // "-") device certificates (\($b.valid // "-") valid, \($b.expired // "-") expired, \($b.revoked // "-") revoked when written, \($b.order // "-")); SQLite file \(($iv.section // {}).db_bytes // $b.db_bytes_final | mib)",
	  "  built by invpop in \($b.build_seconds // $b.seconds | f1) s (\($b.rate | f0) certificates/s, \($b.commits // "-") commits of \($b.batch // "-"))\(if $b.cached then ", cached" else "" end)",
	  "  engine start-up (exec until the first status answers; that status computes the counts):",
	  ( $iv.startup[] as $s | ([$iv.ready[] | select(.label == "inventory-ready-\($s.round)")] | first // {}) as $rd |
	    "    \(if $s.round == 0 then "without the inventory (same token)" else "round \($s.round)" end): \($s.startup_ms | f0) ms, of which that status \($rd.status_ms | f0) ms; RSS \($s.rss_kib / 1024 | f1) MiB" ),
	  "  over the socket, \($iv.rounds | length) round(s) x \($r0.repeat // "-") calls, ms         rows   median      max  store call alone (median, in process)",
	  line("cert.list first page, limit 100"; "list100"; "list100"),
	  line("cert.list first page, limit 500"; "list500"; "list500"),
	  line("cert.list --status revoked"; "list_revoked"; "list_revoked"),
	  line("cert.list --status valid"; "list_valid"; "list_valid"),
	  line("cert.list --status expired"; "list_expired"; "list_expired"),
	  line("cert.list --device \($r0.device // "-")"; "list_device"; "list_device"),
	  line("cert.show SERIAL"; "show"; "get"),
	  line("whole tenant, \($r0.page_limit // "-") per page, \($r0.pages // "-") pages"; "page_all"; null),
	  "  \("status, first after the cache expired" | pad(40))  \("-" | lpad(5))  \([$iv.rounds[].status_first_ms // empty] | med | f1 | lpad(7))  \([$iv.rounds[].status_first_ms // empty] | max | f1 | lpad(7))  \($p.counts_ms_median | f1 | lpad(9))  (cert_counts)",
	  line("status, cached"; "status_cached"; null),
	  "  first status per round, ms: \([$iv.rounds[].status_first_ms // empty] | map(f1) | join(", ")) (engine CPU \([$iv.rounds[].status_first_engine_cpu_ms // empty] | map(f0) | join(", ")) ms); cert_counts in process: \($p.counts_ms // [] | map(f1) | join(", "))",
	  "  cert.show on a 2nd connection meanwhile: max \([$iv.rounds[].probe_during_ms_max // empty] | map(f1) | join(", ")) ms (\([$iv.rounds[].probe_during_calls // empty] | map(tostring) | join(", ")) calls); before: median \([$iv.rounds[].probe_before_ms_median // empty] | map(f2) | join(", ")), max \([$iv.rounds[].probe_before_ms_max // empty] | map(f1) | join(", "))",
	  "  status counts: valid \($r0.valid // "-"), revoked \($r0.revoked // "-"), expired \($r0.expired // "-"); errors: \([$iv.rounds[].errors] | add)\(([$iv.rounds[].first_error // empty] | first) as $e | if $e == null then "" else " (" + $e + ")" end)",
	  "  query plans (sqlite3 EXPLAIN QUERY PLAN of the engine\u0027s statements):",
	  ( $iv.plans[] | "    \(.name):", (.plan | split("\n") | map(select(. != "QUERY PLAN")) | .[] | "      " + .) ),
	  "  counts query in sqlite3 (s, 3 runs):",
	  ( $iv.sql[] | "    \(.name | pad(20)) \(.seconds | map(tostring) | join(", ")) -> \(.row)" ),
	  ( $iv.index // empty | "    index for the suggestion: created in \(.create_ms | f0) ms, file \(.db_bytes_before | mib) -> \(.db_bytes_after | mib)" ),
	  "  section: \(($iv.section // {}).seconds | f0) s",
	  ""
	  end ),
	( [$r[] | select(.kind == "est")] as $e | if ($e | length) == 0 then empty else
	  "EST through tca-estd next to the raw socket (\($e[0].clients) clients, P-256 CSRs, TLS 1.3; est-bench.sh)",
	  "  ka: connections kept alive; new: a new TLS connection per enrollment. CPU in ms per enrollment",
	  "  round  mode  enroll/s  p50-ms  p99-ms  engine-CPU  estd-CPU  client-CPU  raw enroll/s  vs raw",
	  ( $e[] | "  \(.round | lpad(5))  \(.mode | pad(4)) \(.rate | f0 | lpad(9)) \(.p50_ms | f2 | lpad(7)) \(.p99_ms | f2 | lpad(7)) \(.engine_cpu_ms | f2 | lpad(11)) \(.estd_cpu_ms | f2 | lpad(9)) \(.client_cpu_ms | f2 | lpad(11)) \(.raw_rate | f0 | lpad(13)) \(.vs_raw | f2 | lpad(7))" ),
	  "" end ),
	( [$r[] | select(.kind == "pg_run")] as $pr | ([$r[] | select(.kind == "skip" and .what == "pg")] | first) as $skip |
	  if $skip != null then "PostgreSQL store: skipped (\($skip.reason))", "" elif ($pr | length) == 0 and ([$r[] | select(.kind == "pg_reissue")] | length) == 0 then empty else
	  (([$r[] | select(.kind == "pg_setup")] | first) // {}) as $su |
	  "PostgreSQL store (issue 13): server \($su.server_version // "-"), \($su.settings // "-")",
	  "  issuance, 1 tenant, P-256 CSRs, closed loop; clients are the total, split evenly over the nodes; p50/p99: the worst node\u0027s",
	  "  (batch: changes per group commit, from status; db-CPU: the PostgreSQL server\u0027s CPU per certificate, all its processes)",
	  "  clients  round  store    nodes  certs/s  vs-SQLite    p50-ms    p99-ms  batch  engine-CPU-ms/cert  db-CPU  errors",
	  ( $pr | sort_by(.clients, .round) | .[] as $x
	    | ([$pr[] | select(.config == "sqlite" and .clients == $x.clients and .round == $x.round)] | first // {rate: null}) as $sq
	    | "  \($x.clients | lpad(7))  \($x.round | lpad(5))  \($x.config | pad(7))  \($x.nodes | lpad(5))  \($x.rate | f0 | lpad(7))  \(if $x.config == "sqlite" or $sq.rate == null then "" else ($x.rate / $sq.rate | pct) end | lpad(9))  \($x.p50_ms | f2 | lpad(8))  \($x.p99_ms | f2 | lpad(8))  \($x.batch | f1 | lpad(5))  \($x.cpu_ms_per_op | f2 | lpad(18))  \($x.server_cpu_ms_per_op | f2 | lpad(6))  \($x.errors | lpad(6))\(if $x.nodes > 1 then "  nodes: \($x.node_rates | map(f0) | join(" + "))/s, p99 \($x.node_p99_ms | map(f1) | join(", ")) ms" else "" end)" ),
	  ( [$pr[] | .clients] | unique | .[] as $c
	    | def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	      ([$pr[] | select(.clients == $c and .config == "sqlite")] | map({key: (.round | tostring), value: .rate}) | from_entries) as $sqr
	    | ([$pr[] | select(.clients == $c and .config != "sqlite") | .config] | unique | .[] as $cf
	      | [$pr[] | select(.clients == $c and .config == $cf) | select($sqr[.round | tostring] != null) | .rate / $sqr[.round | tostring]] as $rs
	      | "  \($c) clients: \($cf) / SQLite, per round: \($rs | map(pct) | join(", ")) (median \($rs | med | pct))") ),
	  ( $r[] | select(.kind == "pg_check") |
	    "  \(.nodes) nodes, \(.clients) clients, round \(.round): \(.committed) certificates committed, \(.device_certificates) in the database; journal verify \(if .journal_verify_exit == 0 then "OK (\(.journal_records) records, one chain)" else "FAILED (exit \(.journal_verify_exit))" end)\(if .ok then "" else "  CHECK FAILED" end)" ),
	  "  the store\u0027s commit alone (tca-bench-client commits, engines stopped): commit() of a batch of device certificate issues",
	  "  backend     committers  batch  commits/s  changes/s  p50-ms  p99-ms",
	  ( $r[] | select(.kind == "commits") |
	    "  \(.backend | pad(10))  \(.committers | lpad(10))  \(.batch | lpad(5))  \(.rate | f0 | lpad(9))  \(.changes_per_s | f0 | lpad(9))  \(.p50_ms | f2 | lpad(6))  \(.p99_ms | f2 | lpad(6))\(if .committers > 1 then "  per committer: \(.commits_per_committer | map(tostring) | join(", "))" else "" end)\(if .errors > 0 then "  errors: \(.errors) (\(.first_error))" else "" end)" ),
	  ( [$r[] | select(.kind == "pg_reissue")] as $ri | if ($ri | length) == 0 then empty else
	    "  re-issuance of \($ri[0].tenants) CAs on PostgreSQL (store migrated from the cached SQLite one; no issuance load; after the first pass\u0027s CRL re-signing)",
	    "  run   nodes  re-issued  seconds  first after  CAs/s  by node        CRL pass  migrate  checks",
	    ( $ri[] as $x | (([$r[] | select(.kind == "pg_migrate" and .label == "reissue-\($x.label)")] | first) // {}) as $m |
	      "  \($x.label | pad(5)) \($x.nodes | lpad(5))  \("\($x.reissued)/\($x.tenants)" | lpad(9))  \($x.seconds | f1 | lpad(7))  \($x.first_s | f2 | lpad(9)) s  \($x.rate | f0 | lpad(5))  \($x.by_node | map(tostring) | join(" ") | pad(12))  \(if $x.crl_pass_s == null then "-" else "\($x.crl_pass_s) s" end | lpad(8))  \($m.seconds | f1 | lpad(5)) s  \(if $x.ok then "ok" else "FAILED: " + ($x.problems | join("; ")) end)" ) end ),
	  ( [$r[] | select(.kind == "pg_section")] | first // empty | "  section: \(.seconds | f0) s" ),
	  "" end ),
	"Token cache (tenant CAs created through ca.create)",
	( $r[] | select(.kind == "mkca") |
	  "  \(.tenants | lpad(6)) tenants: \(if .cached then "cached; " else "" end)created in \(.seconds | f0) s (\(.rate | f1)/s, \(.connections) connections)" ),
	"",
	( $r[] | select(.kind == "todo") | "TODO: \(.what): \(.reason)" )
	] | .[])'
