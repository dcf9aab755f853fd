#!/usr/bin/env bash
# multinode-pg-lost-commit.sh - a COMMIT whose reply is lost, on a real
# PostgreSQL server (issue 13).  Its second half failed before the fix
# described at 2.
#
# How the reply is lost, deterministically: synchronous_standby_names names
# a standby that does not exist, so the server writes the engine's COMMIT
# locally and then waits for the standby (pg_stat_activity wait_event
# SyncRep); the engine's session is then ended, and PostgreSQL ends it with
# the transaction committed locally ("The transaction has already committed
# locally"): the engine sees its connection lost during COMMIT, the outcome
# unknown to it (engine/store-postgresql.c resolve_unknown()).
#
# 1. The session terminated (pg_terminate_backend), the database up: the
#    engine reconnects, finds the batch's last journal record with its hash
#    and answers the certificate - once in the store.  Works (a failure here
#    is a hard error, exit 99).
# 2. The database stopped (pg_ctl -m fast, which ends the session the same
#    way) and kept down until the engine has answered: the engine cannot
#    reconnect within its retries (about 3 s), answers JOURNAL_UNAVAILABLE -
#    "the certificate was not made" (docs/rpc.md 5.2) - and once the
#    database is back the certificate IS in the store: committed, journaled,
#    valid, never returned to anyone.  That was the bug (exit 1): an
#    answer for an outcome the engine does not know should not say it did
#    not happen.  Fixed: the engine keeps resolving for 30 s
#    (RESOLVE_WAIT_MS; the database here is down for under 10 s), then
#    answers the certificate; a longer outage is answered as unknown
#    (check_store_pg /store-pg/commit-unknown).
#
# Exit status: 0 when the engine answers the certificate it committed; 1
# for the bug; 99 when anything else goes wrong.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool openssl

# anything unexpected is a hard error (99), told apart from the bug (1)
set -E	# the ERR trap inside functions too: their failures are 99, not 1
trap 'echo "ERROR: unexpected failure at line $LINENO" >&2; exit 99' ERR
hard() {
	echo "ERROR (not the bug this shows): $*" >&2
	pg_log_tails 15 15
	exit 99
}
PG_FAIL=hard
pg_start

pg_token_init tca-lost
TCA_STORE_URI="$DB" tca_write_config tca-lost
tca_start_engine || hard "the engine did not start"
"$CA_ADMIN" ca create l1 >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
start_issue() { # device: tca-client in the background -> $CPID
	openssl req -new -key "$WORK/dev.key" -subj "/CN=$1" -out "$WORK/$1.csr" 2>/dev/null
	"$TCA_CLIENT" issue --tenant l1 --device-id "$1" --csr "$WORK/$1.csr" --der \
		--out "$WORK/$1.der" 2>"$WORK/$1.err" &
	CPID=$!
}
finish_issue() { # -> the client's exit status in $crc
	crc=0
	wait "$CPID" || crc=$?
	CPID=
}
stored() { sql "SELECT count(*) FROM certificates WHERE device_id = '$1'"; }
wait_syncrep() { # -> the engine's backend waiting for the standby, in $bpid
	local end=$((SECONDS + 30))
	while :; do
		bpid=$(sql "SELECT pid FROM pg_stat_activity WHERE datname = 'tca'
			AND wait_event = 'SyncRep'")
		[ -z "$bpid" ] || return 0
		kill -0 "$CPID" 2>/dev/null || hard "the client ended before its COMMIT waited: $(cat "$WORK"/*.err)"
		[ "$SECONDS" -lt "$end" ] || hard "no COMMIT waiting for the standby after 30 s"
		sleep 0.05
	done
}
start_issue d0
finish_issue
[ "$crc" = 0 ] || hard "issue d0 with the database up: $(cat "$WORK/d0.err")"

sql "ALTER SYSTEM SET synchronous_standby_names = 'tca_no_such_standby'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# 1. the session cut during COMMIT, the database up: resolved, answered
start_issue d1
wait_syncrep
sql "SELECT pg_terminate_backend($bpid)" >/dev/null
finish_issue
[ "$crc" = 0 ] || hard "d1: the engine refused a COMMIT it could resolve: $(cat "$WORK/d1.err")"
[ -s "$WORK/d1.der" ] || hard "d1: no certificate written"
[ "$(stored d1)" = 1 ] || hard "d1: $(stored d1) certificates in the store, 1 expected"
# the server's WARNING (the synchronous-replication wait cancelled) is one
# of the engine's log lines, not raw libpq output on its stderr
grep -q "the server says: WARNING:" "$WORK/engine.log" ||
	hard "the server's warning is not in the engine's log format"
if grep -v "^[0-9-]*T[0-9:.]*Z tca-engined\[" "$WORK/engine.log" | grep -q "WARNING:"; then
	hard "a raw server notice on the engine's stderr"
fi
grep -q "carries the batch's hash: it committed" "$WORK/engine.log" ||
	hard "d1: the engine did not log the resolved COMMIT"
echo "multinode-pg-lost-commit: a COMMIT cut with the database up: resolved as committed," \
	"the certificate answered, once in the store"

# 2. the same with the database stopped until the engine has answered (or
# 10 s have passed, should a fixed engine wait for it)
start_issue d2
wait_syncrep
sql "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null	# for the restart
"$PGSH" halt "$PGDIR" >/dev/null
end=$((SECONDS + 10))
while kill -0 "$CPID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
	sleep 0.05
done
"$PGSH" resume "$PGDIR" >/dev/null
finish_issue
n=$(stored d2)
"$CA_ADMIN" journal verify --store "$DB" >"$WORK/verify.out" 2>&1 ||
	hard "journal verify: $(cat "$WORK/verify.out")"
if [ "$crc" != 0 ]; then
	grep -q JOURNAL_UNAVAILABLE "$WORK/d2.err" || hard "d2: $(cat "$WORK/d2.err")"
	[ "$n" = 1 ] || hard "d2: refused and $n certificates in the store: the COMMIT did not happen, nothing shown"
	echo "BUG: d2 was answered '$(cat "$WORK/d2.err")'" \
		"but its certificate is in the store (committed before the connection" \
		"was lost; the engine could not reconnect to check while the database" \
		"was down): committed, never returned" >&2
	exit 1
fi
[ -s "$WORK/d2.der" ] || hard "d2: answered but no certificate written"
[ "$n" = 1 ] || hard "d2: answered and $n certificates in the store"
echo "PASS: a COMMIT cut with the database down: answered once it was back, once in the store"
