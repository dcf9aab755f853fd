#!/usr/bin/env bash
# multinode-pg.sh - three engines on one SoftHSMv2 token and one PostgreSQL
# database (a throwaway cluster, tests/pg-cluster.sh) under concurrent
# issuance (issue 13).
#
# Phase 1: several tenants, their CAs created through node 1 before nodes 2
# and 3 start (an engine loads its CA cache at start); many tca-client
# processes spread over the three sockets issue at once.  Then: every
# certificate a client received is in the store exactly once and nothing is
# in the store that no client received (compared by tenant, device id and
# SHA-256 fingerprint of the DER), serials unique, one journal record per
# certificate, `ca-admin journal verify` on the shared store (one chain, no
# fork: each record's prev_hash is its predecessor's hash and the head row
# points at the newest), every engine's `issued` counter equal to what its
# clients received, and each device certificate verifying with
# `openssl verify` against its own tenant's CA (and not against another's).
#
# Phase 2: the clients keep issuing on the three engines while the database
# is restarted (`pg-cluster.sh restart`, pg_ctl -m fast), restarted as after
# a crash (`pg-cluster.sh crash`, -m immediate), has the engines' sessions
# terminated (pg_terminate_backend), and is halted until every engine has
# answered JOURNAL_UNAVAILABLE and says so in `status` (store.health
# "unavailable"; no node claims the scheduler's leadership meanwhile), then
# resumed; each step waits until every engine has issued again.  Clients see only
# JOURNAL_UNAVAILABLE (docs/rpc.md 5.2: the store could not commit, nothing
# was issued; engine/store-postgresql.c answers every store failure with
# it), never another code, a dropped connection or a written file; every
# engine issues again without being restarted and its store.health is back
# to "ok", one node leads the scheduler again; nothing lost: every certificate returned to a client is committed
# exactly once, and nothing is committed that was not returned (each
# attempt has a device id of its own, so a committed row for a refused
# attempt would show).
#
# Synchronised on the clients' result logs, `status` and the database, never
# on sleeps: the polls below are bounded waits for an event.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool openssl
require_tool jq

TENANTS=(m1 m2 m3 m4)
NT=${#TENANTS[@]}
CLIENTS=12		# client i talks to node i % 3 + 1
PER_CLIENT=8		# phase 1: certificates per client
t_start=$(date +%s.%N)
pg_start

pg_token_init tca-multi
date +%s >"$WORK/clock"
# an injected clock (the time the test began, never moved) for the
# scheduler's 200 ms wake-up: its leader election is watched below
pg_node_configs 3 tca-multi "testing.clock_file = $WORK/clock"
status() { # n -> status JSON of node n
	TCA_SOCKET="$WORK/node$1.sock" "$CA_ADMIN" status --json
}
# the three nodes' scheduler roles, sorted: "leader standby standby"
roles() {
	local i
	for i in 1 2 3; do status "$i" | jq -r .schedule.role; done | LC_ALL=C sort | tr '\n' ' ' |
		sed -e 's/ $//'
}
wait_roles() { # want what: bounded (the scheduler wakes every 200 ms here)
	local r end=$((SECONDS + 30))
	while :; do
		r=$(roles)
		[ "$r" != "$1" ] || return 0
		[ "$SECONDS" -lt "$end" ] || fail "$2: scheduler roles '$r' after 30 s, want '$1'"
		sleep 0.1
	done
}

# the tenants' CAs through node 1, before the others start (an engine reads
# its CA cache at start; cross-node cache sync is a later step of issue 13)
start_node 1
for t in "${TENANTS[@]}"; do
	kt=ec-p256
	[ "$t" != m4 ] || kt=ec-p384
	TCA_SOCKET="$WORK/node1.sock" "$CA_ADMIN" ca create "$t" --key-type "$kt" >/dev/null ||
		fail "ca create $t"
	TCA_SOCKET="$WORK/node1.sock" "$TCA_CLIENT" cacerts --tenant "$t" >"$WORK/ca-$t.pem" ||
		fail "cacerts $t"
done
start_node 2
start_node 3
for i in 2 3; do
	[ "$(status "$i" | jq -r .tenants.active)" = "$NT" ] || fail "node$i did not load the $NT CAs"
done
wait_roles "leader standby standby" "at start"
t_ready=$(date +%s.%N)

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
CERTS="$WORK/certs"
CDIR="$WORK/clients"
mkdir -p "$CERTS" "$CDIR"
for t in "${TENANTS[@]}"; do mkdir -p "$CERTS/$t"; done
set_epoch() { # written aside and renamed: a client never reads it empty
	echo "$1" >"$WORK/epoch.tmp"
	mv -f "$WORK/epoch.tmp" "$WORK/epoch"
}
set_epoch 0

# one client: certificates one after the other on node i % 3 + 1, tenants
# in turn, each attempt a device id of its own; a line per attempt in
# $CDIR/<phase>-<i>.log: "epoch node OK|ERR<exit> code tenant device".
# The epoch is the test's step when the attempt began (read before it).
# limit > 0: that many attempts; 0: until $WORK/stop exists.
client() { # phase i limit
	local phase=$1 i=$2 limit=$3 node=$(($2 % 3 + 1)) n=0 t dev ep rc code
	while :; do
		if [ "$limit" -gt 0 ]; then
			[ "$n" -lt "$limit" ] || break
		elif [ -e "$WORK/stop" ]; then
			break
		fi
		n=$((n + 1))
		t=${TENANTS[$(((i + n) % NT))]}
		dev="p$phase-c$i-$n"
		read -r ep <"$WORK/epoch"
		openssl req -new -key "$WORK/dev.key" -subj "/CN=$dev" -out "$CDIR/$dev.csr" 2>/dev/null ||
			{ echo "$ep $node CSR none $t $dev" >>"$CDIR/$phase-$i.log"; continue; }
		rc=0
		"$TCA_CLIENT" --socket "$WORK/node$node.sock" issue --tenant "$t" --device-id "$dev" \
			--csr "$CDIR/$dev.csr" --der --out "$CERTS/$t/$dev.der" 2>"$CDIR/$dev.err" || rc=$?
		if [ "$rc" = 0 ]; then
			echo "$ep $node OK - $t $dev" >>"$CDIR/$phase-$i.log"
		else
			code=$(sed -n 's/^tca-client: \([A-Z_]*\): .*/\1/p' "$CDIR/$dev.err" | head -n 1)
			echo "$ep $node ERR$rc ${code:-none} $t $dev" >>"$CDIR/$phase-$i.log"
		fi
	done
}
start_clients() { # phase limit
	local i
	CPIDS=()
	for i in $(seq 1 "$CLIENTS"); do
		client "$1" "$i" "$2" &
		CPIDS+=($!)
	done
}
wait_clients() {
	local p
	for p in "${CPIDS[@]}"; do
		wait "$p" || fail "a client loop failed (exit $?)"
	done
	CPIDS=()
}
results() { cat "$CDIR"/*-*.log 2>/dev/null || true; }

# what clients received: "tenant device fingerprint", sorted
received() {
	local t
	for t in "${TENANTS[@]}"; do
		(cd "$CERTS/$t" && find . -name '*.der' -size +0 -print0 | xargs -0 -r sha256sum) |
			sed -e "s|^\([0-9a-f]*\)  \./\(.*\)\.der$|$t \2 \1|"
	done | LC_ALL=C sort
}
# what the store holds, the same way
stored() {
	sql "SELECT tenant || ' ' || device_id || ' ' || encode(fingerprint, 'hex')
		FROM certificates WHERE kind = 'device'" | LC_ALL=C sort
}

# checks of the store against what the clients saw (both phases so far)
check_store() { # label
	local ok n_ok n_db
	results | awk '$3 == "OK" { print $5, $6 }' | LC_ALL=C sort >"$WORK/ok.txt"
	received >"$WORK/received.txt"
	stored >"$WORK/stored.txt"
	# a client reported success exactly when it holds a certificate
	diff <(awk '{ print $1, $2 }' "$WORK/received.txt") "$WORK/ok.txt" >"$WORK/diff.txt" ||
		fail "$1: certificates held by clients and successes reported differ: $(head -n 5 "$WORK/diff.txt")"
	n_ok=$(wc -l <"$WORK/ok.txt")
	n_db=$(wc -l <"$WORK/stored.txt")
	# received == stored, each once: lines compared whole, duplicates kept
	if ! diff "$WORK/received.txt" "$WORK/stored.txt" >"$WORK/diff.txt"; then
		echo "< received by a client, not in the store; > in the store, received by none" >&2
		head -n 20 "$WORK/diff.txt" >&2
		fail "$1: $n_ok certificates received, $n_db in the store, not the same ones"
	fi
	[ "$(uniq -d "$WORK/stored.txt" | wc -l)" = 0 ] || fail "$1: a certificate is in the store twice"
	# serials unique (per issuer, as the store demands, and overall)
	[ "$(sql "SELECT count(*) - count(DISTINCT serial) FROM certificates WHERE kind = 'device'")" = 0 ] ||
		fail "$1: device serials not unique"
	# each certificate's CA is its tenant's
	[ "$(sql "SELECT count(*) FROM certificates d JOIN cas c ON c.ca_id = d.ca_id
		WHERE d.kind = 'device' AND c.tenant <> d.tenant")" = 0 ] ||
		fail "$1: a certificate is filed under another tenant's CA"
	# one journal record per certificate, with its fingerprint
	[ "$(sql "SELECT count(*) FROM journal WHERE op = 'issue'")" = "$n_db" ] ||
		fail "$1: $(sql "SELECT count(*) FROM journal WHERE op = 'issue'") issue records for $n_db certificates"
	[ "$(sql "SELECT count(*) FROM certificates d WHERE d.kind = 'device' AND NOT EXISTS
		(SELECT 1 FROM journal j WHERE j.op = 'issue' AND j.tenant = d.tenant
		AND j.fingerprint_hex = encode(d.fingerprint, 'hex'))")" = 0 ] ||
		fail "$1: a certificate without its journal record"
	# one chain: every record after its predecessor, the head on the newest
	[ "$(sql "SELECT count(*) FROM journal a JOIN journal b ON b.seq = a.seq + 1
		WHERE b.prev_hash <> a.hash")" = 0 ] || fail "$1: the journal forks"
	[ "$(sql "SELECT (SELECT count(*) FROM journal) = (SELECT max(seq) FROM journal)
		AND (SELECT seq FROM journal_head) = (SELECT max(seq) FROM journal)
		AND (SELECT hash FROM journal_head) =
		(SELECT hash FROM journal WHERE seq = (SELECT max(seq) FROM journal))")" = t ] ||
		fail "$1: journal seq has gaps or the head is not on the newest record"
	"$CA_ADMIN" journal verify --store "$DB" >"$WORK/verify.out" 2>&1 ||
		fail "$1: journal verify: $(cat "$WORK/verify.out")"
	# each device certificate against its tenant's CA (one openssl per tenant)
	for t in "${TENANTS[@]}"; do
		ls "$CERTS/$t"/*.der >/dev/null 2>&1 || continue
		openssl verify -CAfile "$WORK/ca-$t.pem" "$CERTS/$t"/*.der >"$WORK/ov.out" 2>&1 ||
			fail "$1: openssl verify for tenant $t: $(grep -v ': OK$' "$WORK/ov.out" | head -n 5)"
	done
	# ... and not against another tenant's (the CAs are distinct)
	if openssl verify -CAfile "$WORK/ca-m2.pem" "$(ls "$CERTS/m1"/*.der | head -n 1)" >/dev/null 2>&1; then
		fail "$1: a certificate of m1 verifies against m2's CA"
	fi
	echo "$n_db"
}

# ------------------------------------------------------------ phase 1
start_clients 1 "$PER_CLIENT"
wait_clients
t_p1=$(date +%s.%N)
results >"$WORK/p1.txt"
bad=$(awk '$3 != "OK"' "$WORK/p1.txt")
[ -z "$bad" ] || fail "phase 1: refused with the database up: $(echo "$bad" | head -n 5)"
want=$((CLIENTS * PER_CLIENT))
n1=$(check_store "phase 1")
[ "$n1" = "$want" ] || fail "phase 1: $n1 certificates, $want expected"
# the one chain holds every engine's records: which node issued each
# record (its fingerprint -> device -> the client's node), in seq order
sql "SELECT fingerprint_hex FROM journal WHERE op = 'issue' ORDER BY seq" >"$WORK/seq.txt"
awk 'FNR == NR { node[$6] = $2; next } FILENAME ~ /received/ { dev[$3] = $2; next }
	{ print node[dev[$1]] }' "$WORK/p1.txt" "$WORK/received.txt" "$WORK/seq.txt" >"$WORK/nodes.txt"
[ "$(LC_ALL=C sort -u "$WORK/nodes.txt" | tr -d '\n')" = 123 ] ||
	fail "phase 1: the chain's issue records are not from nodes 1, 2 and 3: $(sort -u "$WORK/nodes.txt" | tr '\n' ' ')"
switches=$(awk 'NR > 1 && $1 != prev { n++ } { prev = $1 } END { print n + 0 }' "$WORK/nodes.txt")
# each engine's counter says what its clients received
for i in 1 2 3; do
	s=$(status "$i")
	got=$(awk -v n="$i" '$2 == n && $3 == "OK"' "$WORK/p1.txt" | wc -l)
	[ "$(jq -r .issued <<<"$s")" = "$got" ] || fail "phase 1: node$i issued $(jq -r .issued <<<"$s"), its clients got $got"
	[ "$(jq -r .refused <<<"$s")" = 0 ] || fail "phase 1: node$i refused $(jq -r .refused <<<"$s")"
	[ "$(jq -r .store.health <<<"$s")" = ok ] || fail "phase 1: node$i store $(jq -c .store <<<"$s")"
done
echo "multinode-pg: phase 1: $CLIENTS clients on 3 engines, $NT tenants: $n1 certificates" \
	"in $(awk -v a="$t_p1" -v b="$t_ready" 'BEGIN { printf "%.1f", a - b }') s, each once" \
	"in the store, one chain ($switches switches between engines), all verify"

# ------------------------------------------------------------ phase 2
# wait until every engine has had n successes in epoch e or later (bounded)
wait_ok_each_node() { # epoch count what
	local i end=$((SECONDS + 60))
	while :; do
		for i in 1 2 3; do
			kill -0 "${PIDS[$i]}" 2>/dev/null || fail "$3: node$i died"
		done
		for i in 1 2 3; do
			[ "$(results | awk -v e="$1" -v n="$i" '$1 >= e && $2 == n && $3 == "OK"' | wc -l)" -ge "$2" ] ||
				break
			[ "$i" != 3 ] || return 0
		done
		[ "$SECONDS" -lt "$end" ] || fail "$3: not every engine issued $2 certificate(s) within 60 s"
		sleep 0.05
	done
}
# seconds since $1, one decimal
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
set_epoch 1
start_clients 2 0
wait_ok_each_node 1 3 "phase 2 warm-up"

# the server restarted under load (pg_ctl -m fast: sessions terminated,
# a shutdown checkpoint); then stopped as if it crashed (-m immediate:
# crash recovery at start); then every engine's sessions terminated from
# SQL (a connection cut inside a transaction)
t0=$(date +%s.%N)
"$PGSH" restart "$PGDIR" >/dev/null
t_restart=$(since "$t0")
set_epoch 2
wait_ok_each_node 2 1 "after the restart"
t0=$(date +%s.%N)
"$PGSH" crash "$PGDIR" >/dev/null
t_crash=$(since "$t0")
set_epoch 3
wait_ok_each_node 3 1 "after the crash restart"
n_term=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE datname = 'tca' AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
set_epoch 4
wait_ok_each_node 4 1 "after the engines' sessions were terminated"

# a longer outage: down until every engine has refused a request with
# JOURNAL_UNAVAILABLE and says so in status
unavail() { # node: JOURNAL_UNAVAILABLE answers to attempts begun after the halt
	results | awk -v n="$1" '$1 >= 5 && $2 == n && $4 == "JOURNAL_UNAVAILABLE"' | wc -l
}
"$PGSH" halt "$PGDIR" >/dev/null
t_halt=$(date +%s.%N)
set_epoch 5
end=$((SECONDS + 60))
while [ "$SECONDS" -lt "$end" ]; do
	[ "$(unavail 1)" -ge 1 ] && [ "$(unavail 2)" -ge 1 ] && [ "$(unavail 3)" -ge 1 ] && break
	sleep 0.05
done
for i in 1 2 3; do
	[ "$(unavail "$i")" -ge 1 ] ||
		fail "node$i did not answer JOURNAL_UNAVAILABLE within 60 s of the halt"
	s=$(status "$i")
	[ "$(jq -r .store.health <<<"$s")" = unavailable ] ||
		fail "node$i store while the database is down: $(jq -c .store <<<"$s")"
	[ -n "$(jq -r .store.problem <<<"$s")" ] || fail "node$i: no store.problem while down"
done
# no node leads the scheduler while the database is down
wait_roles "standby standby standby" "database down"
# nothing is returned as issued while the database is down
ok_down=$(results | awk '$1 == 5 && $3 == "OK"' | wc -l)
[ "$ok_down" = 0 ] || fail "$ok_down certificates returned for requests begun while the database was down"
"$PGSH" resume "$PGDIR" >/dev/null
t_down=$(since "$t_halt")
set_epoch 6
# recovery without restarting an engine: each issues again, health ok
# (a successful commit sets it), reads work again
wait_ok_each_node 6 2 "after the database came back"
for i in 1 2 3; do
	kill -0 "${PIDS[$i]}" 2>/dev/null || fail "node$i died"
	s=$(status "$i")
	[ "$(jq -r .store.health <<<"$s")" = ok ] ||
		fail "node$i store after recovery: $(jq -c .store <<<"$s")"
	[ "$(jq -r .store.problem <<<"$s")" = "" ] || fail "node$i store.problem after recovery: $(jq -c .store <<<"$s")"
	TCA_SOCKET="$WORK/node$i.sock" "$CA_ADMIN" cert list m1 --limit 1 >/dev/null 2>"$WORK/list.err" ||
		fail "node$i cannot read the store after recovery: $(cat "$WORK/list.err")"
done
# one of them leads again (the old leader's lock died with the server)
wait_roles "leader standby standby" "after recovery"
touch "$WORK/stop"
wait_clients
t_p2=$(date +%s.%N)

results >"$WORK/all.txt"
awk '$0 ~ / p2-/' "$WORK/all.txt" >"$WORK/p2.txt"
# only typed errors: JOURNAL_UNAVAILABLE (exit 1, the engine's answer);
# never another code, a lost connection (exit 3) or no answer
bad=$(awk '$3 != "OK" && !($3 == "ERR1" && $4 == "JOURNAL_UNAVAILABLE")' "$WORK/p2.txt")
if [ -n "$bad" ]; then
	echo "$bad" | head -n 5 | while read -r _ _ _ _ _ dev; do
		echo "$dev: $(cat "$CDIR/$dev.err")" >&2
	done
	fail "phase 2: errors other than JOURNAL_UNAVAILABLE: $(echo "$bad" | head -n 5)"
fi
# nothing written, nothing stored for a refused attempt
for dev in $(awk '$3 != "OK" { print $5 "/" $6 }' "$WORK/p2.txt"); do
	[ ! -s "$CERTS/$dev.der" ] || fail "phase 2: a certificate was written for refused $dev"
done
n_err=$(awk '$3 != "OK"' "$WORK/p2.txt" | wc -l)
n_ok2=$(awk '$3 == "OK"' "$WORK/p2.txt" | wc -l)
n_all=$(check_store "phase 2")
[ "$n_all" = $((n1 + n_ok2)) ] || fail "phase 2: $n_all certificates in the store, $((n1 + n_ok2)) received"
for i in 1 2 3; do
	s=$(status "$i")
	got=$(awk -v n="$i" '$2 == n && $3 == "OK"' "$WORK/all.txt" | wc -l)
	ref=$(awk -v n="$i" '$2 == n && $3 != "OK"' "$WORK/all.txt" | wc -l)
	[ "$(jq -r .issued <<<"$s")" = "$got" ] || fail "phase 2: node$i issued $(jq -r .issued <<<"$s"), its clients got $got"
	[ "$(jq -r .refused <<<"$s")" = "$ref" ] || fail "phase 2: node$i refused $(jq -r .refused <<<"$s"), its clients saw $ref"
	[ "$(jq -r .store.health <<<"$s")" = ok ] || fail "phase 2: node$i store $(jq -c .store <<<"$s")"
done
retries=$(cat "$WORK"/node[123].log | grep -c "trying again" || true)
echo "multinode-pg: phase 2: $((n_ok2 + n_err)) attempts in" \
	"$(awk -v a="$t_p2" -v b="$t_p1" 'BEGIN { printf "%.1f", a - b }') s: restart" \
	"($t_restart s), crash restart ($t_crash s), $n_term sessions terminated and a halt" \
	"of $t_down s under load; $n_ok2 issued, $n_err JOURNAL_UNAVAILABLE, no other error, $retries commit retries" \
	"logged; every engine recovered without a restart; store == received ($n_all), each once"

for i in 1 2 3; do
	kill -TERM "${PIDS[$i]}"
	rc=0
	wait "${PIDS[$i]}" || rc=$?
	PIDS[$i]=
	[ "$rc" = 0 ] || fail "node$i exit status $rc"
done
"$CA_ADMIN" journal verify --store "$DB" >"$WORK/verify.out" 2>&1 || fail "journal verify: $(cat "$WORK/verify.out")"
echo "multinode-pg: journal verify OK; $(since "$t_start") s in all"
