#!/usr/bin/env bash
# scheduler-pg.sh - the yearly scheduler elected among three engines (issue
# 13): one SoftHSMv2 token, one PostgreSQL database (a throwaway cluster,
# tests/pg-cluster.sh), schedule.enabled on all three, 50 CAs due at the
# injected clock (testing.clock_file), the run paced (reissue.rate) so that
# the leader can be killed with kill -9 in the middle of it.  Another node
# must take over within the bound (the scheduler's poll interval - 200 ms
# with an injected clock - plus the lock release, immediate for a dead
# process) and finish: every CA re-issued exactly once for the year (one
# ca-reissue journal record per tenant), the journal records of the run from
# the old leader and then the new one, never interleaved, the chain
# verifying.  Synchronised on log lines and the database, never on sleeps.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool jq
require_tool psql

PGSH="$TCA_SRCDIR/tests/pg-cluster.sh"
N_CAS=50
tca_setup
PGDIR="$WORK/pg"
PIDS=("" "" "" "")
cleanup_all() {
	local i
	for i in 1 2 3; do
		if [ -n "${PIDS[$i]}" ] && kill -0 "${PIDS[$i]}" 2>/dev/null; then
			kill -KILL "${PIDS[$i]}" 2>/dev/null || true
			wait "${PIDS[$i]}" 2>/dev/null || true
		fi
	done
	"$PGSH" stop "$PGDIR" >/dev/null 2>&1 || true
	tca_cleanup
}
trap cleanup_all EXIT
fail() {
	local i
	echo "FAIL: $*" >&2
	for i in 1 2 3; do
		[ -f "$WORK/node$i.log" ] && { echo "--- node$i" >&2; tail -n 15 "$WORK/node$i.log" >&2; }
	done
	exit 1
}
now() { date +%s.%N; }
mkdir -p "$PGDIR"
# exits 77 (skip) only when the PostgreSQL programs are absent outside CI
conninfo=$("$PGSH" start "$PGDIR")
psql "$conninfo" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE tca" >/dev/null
DB="${conninfo/dbname=postgres/dbname=tca}"
sql() { psql "$DB" -At -v ON_ERROR_STOP=1 -c "$1"; }

set_clock() { # unix seconds; written aside and renamed (never seen empty)
	echo "$1" >"$WORK/clock.tmp"
	mv -f "$WORK/clock.tmp" "$WORK/clock"
}
set_clock "$(date -u -d 2026-09-01T00:00:00Z +%s)"
INSTANT=$(date -u -d 2026-10-02T02:00:00Z +%s)

"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" --label tca-sched \
	--so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin" >/dev/null
TCA_STORE_URI="$DB" tca_write_config tca-sched
for i in 1 2 3; do
	sed -e "s|^socket.path = .*|socket.path = $WORK/node$i.sock|" "$WORK/engine.conf" \
		>"$WORK/node$i.conf"
	cat >>"$WORK/node$i.conf" <<EOC
testing.clock_file = $WORK/clock
schedule.enabled = true
reissue.workers = 2
reissue.rate = 5
EOC
	chmod 0600 "$WORK/node$i.conf"
done

start_node() { # n
	"$ENGINED" --config "$WORK/node$1.conf" 2>>"$WORK/node$1.log" &
	PIDS[$1]=$!
	for _ in $(seq 1 400); do
		[ -S "$WORK/node$1.sock" ] && return 0
		kill -0 "${PIDS[$1]}" 2>/dev/null || fail "node$1 exited during start-up"
		sleep 0.05
	done
	fail "node$1 did not open its socket"
}
role() { # n -> leader | standby | disabled
	TCA_SOCKET="$WORK/node$1.sock" "$CA_ADMIN" status --json | jq -r .schedule.role
}
wait_log() { # n pattern count [tries of 50 ms]
	local i
	for i in $(seq 1 "${4:-1200}"); do
		[ "$(grep -c -- "$2" "$WORK/node$1.log" || true)" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

# all CAs through ONE node (CA creation across nodes is another step's);
# the others load them from the database at start and find their keys in
# the token by CKA_ID
start_node 1
wait_log 1 "scheduler: this node is now the leader" 1 || fail "node1 never led"
for t in $(seq -f "t%02g" 1 "$N_CAS"); do
	TCA_SOCKET="$WORK/node1.sock" "$CA_ADMIN" ca create "$t" >/dev/null || fail "ca create $t"
done
start_node 2
start_node 3
for i in 2 3; do
	wait_log "$i" "scheduler: another node is the leader; this one stands by" 1 ||
		fail "node$i does not stand by"
	[ "$(TCA_SOCKET="$WORK/node$i.sock" "$CA_ADMIN" status --json | jq -r .tenants.active)" = "$N_CAS" ] ||
		fail "node$i did not load the $N_CAS CAs"
done
[ "$(role 1)" = leader ] || fail "node1 is $(role 1)"
[ "$(role 2)" = standby ] || fail "node2 is $(role 2)"
[ "$(role 3)" = standby ] || fail "node3 is $(role 3)"

# 2 October: the leader starts re-issuing, 5 a second; killed after 10
set_clock $((INSTANT + 1))
wait_log 1 "CA re-issued" 10 || fail "node1 did not re-issue"
kill -KILL "${PIDS[1]}"
t_kill=$(now)
wait "${PIDS[1]}" 2>/dev/null || true
OLD_PID=${PIDS[1]}
PIDS[1]=
done_by_old=$(sql "SELECT count(*) FROM journal WHERE op = 'ca-reissue'")
[ "$done_by_old" -lt "$N_CAS" ] || fail "node1 finished all $N_CAS before it was killed"

# another node leads within the bound, and finishes
new=
for _ in $(seq 1 600); do
	for i in 2 3; do
		if grep -q "scheduler: this node is now the leader" "$WORK/node$i.log"; then
			new=$i
			break 2
		fi
	done
	sleep 0.01
done
t_lead=$(now)
[ -n "$new" ] || fail "no node took over within 6 s of the kill"
takeover=$(awk -v a="$t_lead" -v b="$t_kill" 'BEGIN { printf "%.3f", a - b }')
other=$((new == 2 ? 3 : 2))
for _ in $(seq 1 1200); do
	[ "$(sql "SELECT count(*) FROM journal WHERE op = 'ca-reissue'")" -ge "$N_CAS" ] && break
	sleep 0.05
done
t_done=$(now)
wait_log "$new" "re-issuance: pass over" 1 || fail "node$new did not finish its pass"
[ "$(role "$new")" = leader ] || fail "node$new is $(role "$new")"
[ "$(role "$other")" = standby ] || fail "node$other is $(role "$other")"
! grep -q "CA re-issued" "$WORK/node$other.log" || fail "the standby node$other re-issued"

# every CA once for the year; the run's records from the old leader, then
# the new one, never interleaved
[ "$(sql "SELECT count(DISTINCT tenant) FROM journal WHERE op = 'ca-reissue'")" = "$N_CAS" ] ||
	fail "not every tenant re-issued"
twice=$(sql "SELECT string_agg(tenant, ' ') FROM (SELECT tenant FROM journal
	WHERE op = 'ca-reissue' GROUP BY tenant HAVING count(*) <> 1) x")
[ -z "$twice" ] || fail "re-issued more than once: $twice"
runs=$(sql "SELECT string_agg(pid::text, ' ' ORDER BY first) FROM (SELECT pid, min(seq) AS first,
	max(seq) AS last FROM journal WHERE op = 'ca-reissue' GROUP BY pid) x")
new_pid=${PIDS[$new]}
[ "$runs" = "$OLD_PID $new_pid" ] || fail "re-issuing pids in order: '$runs', want '$OLD_PID $new_pid'"
overlap=$(sql "SELECT count(*) FROM journal WHERE op = 'ca-reissue' AND pid = $OLD_PID
	AND seq > (SELECT min(seq) FROM journal WHERE op = 'ca-reissue' AND pid = $new_pid)")
[ "$overlap" = 0 ] || fail "the old leader's records interleave with the new one's"

for i in 2 3; do
	kill -TERM "${PIDS[$i]}"
	wait "${PIDS[$i]}" || fail "node$i exit status"
	PIDS[$i]=
done
"$CA_ADMIN" journal verify --store "$DB" >"$WORK/verify.out" || fail "journal verify: $(cat "$WORK/verify.out")"
echo "scheduler-pg: $N_CAS CAs, node1 (leader) killed after $done_by_old re-issued;" \
	"node$new led $takeover s after the kill (bound: 0.2 s poll + lock release)," \
	"finished $(awk -v a="$t_done" -v b="$t_kill" 'BEGIN { printf "%.3f", a - b }') s after it; each CA once, journal verify OK"
