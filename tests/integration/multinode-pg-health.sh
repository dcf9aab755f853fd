#!/usr/bin/env bash
# multinode-pg-health.sh - store.health of an engine that is idle while its
# PostgreSQL database is down (issue 13).  It failed before the fix: the
# bug is described below.
#
# docs/rpc.md 7.4 says `status` shows store.health "unavailable" on a
# PostgreSQL store "while the database cannot be reached".  Two engines on
# one token and one database (a throwaway cluster, tests/pg-cluster.sh);
# the database is halted; node 1 gets an issue request (JOURNAL_UNAVAILABLE,
# its health "unavailable": as documented); node 2 gets no issue request,
# only reads, which fail with JOURNAL_UNAVAILABLE - and its status keeps
# saying store.health "ok", for as long as nothing commits through it
# (engine/store-postgresql.c pg_health(): "ok" while the writer connection's
# PQstatus is CONNECTION_OK, which libpq only changes when the connection is
# next used; a failed read does not touch the health either).  A load
# balancer or monitor that asks an idle node's `status` is told the store is
# fine while the database is down.  Fixed: pg_health() makes one round trip
# at every call, and a read that loses the database marks the store
# unavailable.
#
# Exit status: 0 when node 2 reports "unavailable" within 5 s of its first
# failed read and "ok" again after recovery; 1 for the bug; 99 when
# anything else goes wrong.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool openssl
require_tool jq

# anything unexpected is a hard error (99), told apart from the bug (1)
set -E	# the ERR trap inside functions too: their failures are 99, not 1
trap 'echo "ERROR: unexpected failure at line $LINENO" >&2; exit 99' ERR
hard() {
	echo "ERROR (not the bug this shows): $*" >&2
	pg_log_tails 10 10
	exit 99
}
PG_FAIL=hard
pg_start

pg_token_init tca-health
pg_node_configs 2 tca-health
health() { # n -> store.health of node n
	TCA_SOCKET="$WORK/node$1.sock" "$CA_ADMIN" status --json | jq -r .store.health
}
issue() { # n device -> 0 issued, else the error code on stdout
	openssl req -new -key "$WORK/dev.key" -subj "/CN=$2" -out "$WORK/$2.csr" 2>/dev/null
	if "$TCA_CLIENT" --socket "$WORK/node$1.sock" issue --tenant h1 --device-id "$2" \
	    --csr "$WORK/$2.csr" --out "$WORK/$2.pem" 2>"$WORK/$2.err"; then
		return 0
	fi
	sed -n 's/^tca-client: \([A-Z_]*\): .*/\1/p' "$WORK/$2.err"
	return 1
}

# the CA through node 1 before node 2 starts (CA caches load at start)
start_node 1
TCA_SOCKET="$WORK/node1.sock" "$CA_ADMIN" ca create h1 >/dev/null
start_node 2
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
issue 1 d1 >/dev/null || hard "node1 could not issue with the database up"
issue 2 d2 >/dev/null || hard "node2 could not issue with the database up"
[ "$(health 1).$(health 2)" = ok.ok ] || hard "store.health with the database up: $(health 1), $(health 2)"

"$PGSH" halt "$PGDIR" >/dev/null
# node 1 commits: refused, and says so (as documented)
code=$(issue 1 d3) && hard "node1 issued while the database was down"
[ "$code" = JOURNAL_UNAVAILABLE ] || hard "node1 answered ${code:-no code}, not JOURNAL_UNAVAILABLE"
[ "$(health 1)" = unavailable ] || hard "node1 store.health after a refused commit: $(health 1)"
# node 2 only reads: refused too
if TCA_SOCKET="$WORK/node2.sock" "$CA_ADMIN" cert list h1 >/dev/null 2>"$WORK/list.err"; then
	hard "node2 listed certificates while the database was down"
fi
grep -q "JOURNAL_UNAVAILABLE" "$WORK/list.err" || hard "node2 cert list: $(cat "$WORK/list.err")"
# ... and its status?  Polled (status and a read each time) for 5 s
h2=
end=$((SECONDS + 5))
while [ "$SECONDS" -lt "$end" ]; do
	h2=$(health 2)
	[ "$h2" != unavailable ] || break
	TCA_SOCKET="$WORK/node2.sock" "$CA_ADMIN" cert list h1 >/dev/null 2>&1 &&
		hard "node2 listed certificates while the database was down"
	sleep 0.1
done
if [ "$h2" != unavailable ]; then
	echo "BUG: the database is down - node1 says store.health" \
		"unavailable after its refused commit, node2 (reads refused with" \
		"JOURNAL_UNAVAILABLE, no commit tried) still says store.health '$h2'" \
		"after 5 s; docs/rpc.md 7.4 promises \"unavailable\" while the database" \
		"cannot be reached" >&2
	exit 1
fi
"$PGSH" resume "$PGDIR" >/dev/null
issue 2 d4 >/dev/null || hard "node2 could not issue after the database came back"
[ "$(health 2)" = ok ] || hard "node2 store.health after recovery: $(health 2)"
echo "PASS: an idle node reports store.health unavailable while the database is down"
