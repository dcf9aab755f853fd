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
# verifying.  Then two more years: 2027 with the leader's database session
# terminated while its process lives (it notices, stops taking CAs; one
# node finishes, each CA once), 2028 with the leader killed again and a
# survivor whose CA cache predates the other nodes' re-issuances (it reloads
# them from the store).  Synchronised on log lines, status and the database,
# never on sleeps.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool jq

N_CAS=50
now() { date +%s.%N; }
pg_start

set_clock() { # unix seconds; written aside and renamed (never seen empty)
	echo "$1" >"$WORK/clock.tmp"
	mv -f "$WORK/clock.tmp" "$WORK/clock"
}
set_clock "$(date -u -d 2026-09-01T00:00:00Z +%s)"
INSTANT=$(date -u -d 2026-10-02T02:00:00Z +%s)

pg_token_init tca-sched
pg_node_configs 3 tca-sched "testing.clock_file = $WORK/clock" "schedule.enabled = true" \
	"reissue.workers = 2" "reissue.rate = 5"

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

echo "scheduler-pg: 2026: $N_CAS CAs, node1 (leader) killed after $done_by_old re-issued;" \
	"node$new led $takeover s after the kill (bound: 0.2 s poll + lock release)," \
	"finished $(awk -v a="$t_done" -v b="$t_kill" 'BEGIN { printf "%.3f", a - b }') s after it; each CA once"

# the year's ca-reissue records (their details name the new notBefore)
year_count() { sql "SELECT count(*) FROM journal WHERE op = 'ca-reissue'
	AND details LIKE '%not_before=$1-10-02T02:00:00Z%'"; }
check_year() { # year: every CA exactly once for it
	local n twice
	n=$(sql "SELECT count(DISTINCT tenant) FROM journal WHERE op = 'ca-reissue'
		AND details LIKE '%not_before=$1-10-02T02:00:00Z%'")
	[ "$n" = "$N_CAS" ] || fail "$1: $n of $N_CAS tenants re-issued"
	twice=$(sql "SELECT string_agg(tenant, ' ') FROM (SELECT tenant FROM journal
		WHERE op = 'ca-reissue' AND details LIKE '%not_before=$1-10-02T02:00:00Z%'
		GROUP BY tenant HAVING count(*) <> 1) x")
	[ -z "$twice" ] || fail "$1: re-issued more than once: $twice"
}
wait_year() { # year: all done (bounded)
	local _
	for _ in $(seq 1 1200); do
		[ "$(year_count "$1")" -ge "$N_CAS" ] && return 0
		sleep 0.05
	done
	fail "$1: only $(year_count "$1") of $N_CAS re-issued"
}
wait_roles() { # exactly one of nodes 2 and 3 leads, the other stands by -> $leader
	local _ r2 r3
	for _ in $(seq 1 200); do
		r2=$(role 2); r3=$(role 3)
		if [ "$r2.$r3" = leader.standby ]; then leader=2; return 0; fi
		if [ "$r2.$r3" = standby.leader ]; then leader=3; return 0; fi
		sleep 0.05
	done
	fail "roles: node2 $r2, node3 $r3"
}
wait_count() { # year n
	local _
	for _ in $(seq 1 1200); do
		[ "$(year_count "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "$1: fewer than $2 re-issued"
}

# 2027: the leader's database session is terminated while its process
# lives: it says it is no longer the leader and stops taking CAs; one of
# the two leads afterwards (it may be the same node again, reconnected) and
# the year completes, each CA once (only the re-issuances in flight - at
# most reissue.workers - may land after the other node's first)
set_clock $(($(date -u -d 2027-10-02T02:00:00Z +%s) + 1))
wait_count 2027 10
lost_before=$(grep -c "no longer the leader" "$WORK/node$new.log" || true)
[ "$(sql "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
	WHERE locktype = 'advisory' AND classid = 1413693745 AND objsubid = 2
	AND granted) x")" = 1 ] || fail "2027: no leader session to terminate"
wait_log "$new" "no longer the leader" $((lost_before + 1)) ||
	fail "2027: node$new did not notice it lost the leadership"
wait_log "$new" "stopped: leadership lost" 1 || fail "2027: node$new did not stop its pass"
wait_year 2027
wait_roles
check_year 2027
late=$(sql "SELECT count(*) FROM journal a WHERE a.op = 'ca-reissue'
	AND a.details LIKE '%not_before=2027-10-02T02:00:00Z%'
	AND EXISTS (SELECT 1 FROM journal b WHERE b.op = 'ca-reissue' AND b.pid <> a.pid
	AND b.details LIKE '%not_before=2027-10-02T02:00:00Z%' AND b.seq < a.seq
	AND EXISTS (SELECT 1 FROM journal c WHERE c.op = 'ca-reissue' AND c.pid = a.pid
	AND c.details LIKE '%not_before=2027-10-02T02:00:00Z%' AND c.seq < b.seq))")
[ "$late" -le 2 ] || fail "2027: $late records interleaved (at most 2 in flight)"
echo "scheduler-pg: 2027: node$new's session terminated mid-run; node$leader led after," \
	"each CA once ($late in flight after the switch)"

# 2028: the leader killed again; the survivor - whose cache still holds
# certificates another node re-issued since it started - finishes the year
set_clock $(($(date -u -d 2028-10-02T02:00:00Z +%s) + 1))
wait_count 2028 10
survivor=$((leader == 2 ? 3 : 2))
led_before=$(grep -c "this node is now the leader" "$WORK/node$survivor.log" || true)
kill -KILL "${PIDS[$leader]}"
wait "${PIDS[$leader]}" 2>/dev/null || true
PIDS[$leader]=
wait_log "$survivor" "this node is now the leader" $((led_before + 1)) ||
	fail "2028: node$survivor did not take over"
wait_year 2028
check_year 2028
reloaded=$(grep -c "CA reloaded from the store" "$WORK/node$survivor.log" || true)
echo "scheduler-pg: 2028: node$leader killed, node$survivor finished" \
	"($reloaded CAs reloaded from the store), each CA once"

kill -TERM "${PIDS[$survivor]}"
wait "${PIDS[$survivor]}" || fail "node$survivor exit status"
PIDS[$survivor]=
"$CA_ADMIN" journal verify --store "$DB" >"$WORK/verify.out" || fail "journal verify: $(cat "$WORK/verify.out")"
echo "scheduler-pg: journal verify OK"
