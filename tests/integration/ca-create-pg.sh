#!/usr/bin/env bash
# ca-create-pg.sh - one tenant created on two engines at once (issue 13): two
# engines share one SoftHSMv2 token and one PostgreSQL database (a throwaway
# cluster, tests/pg-cluster.sh); for each of N tenants, `ca-admin ca create`
# is sent to both engines at the same moment.  The creation is reserved in
# the store before the key is generated, so for every tenant exactly one
# engine creates the CA and the other answers ALREADY_EXISTS, the token holds
# exactly one key per tenant (no stray second key under the same CKA_ID, and
# the winner's key not destroyed by the loser's clean-up), the store one CA
# and no reservation left, and the CA issues.  Synchronised on the socket
# and on the processes' exits, never on sleeps.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool jq
require_tool p11tool

N=12
pg_start

pg_token_init tca-race
pg_node_configs 2 tca-race
private_keys() {
	GNUTLS_PIN=$(cat "$WORK/user.pin") p11tool --provider "$SOFTHSM_MODULE" --login \
		--list-all-privkeys "pkcs11:token=tca-race" 2>/dev/null | grep -c '^Object ' || true
}
start_node 1
start_node 2

# both engines at once, per tenant; each answer kept
for t in $(seq -f "race%02g" 1 "$N"); do
	for i in 1 2; do
		TCA_SOCKET="$WORK/node$i.sock" "$CA_ADMIN" ca create "$t" \
			>"$WORK/$t.$i.out" 2>&1 &
		eval "p$i=\$!"
	done
	rc1=0; rc2=0
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	echo "$rc1" >"$WORK/$t.1.rc"
	echo "$rc2" >"$WORK/$t.2.rc"
done

won=(0 0 0)
for t in $(seq -f "race%02g" 1 "$N"); do
	ok=0
	for i in 1 2; do
		if [ "$(cat "$WORK/$t.$i.rc")" = 0 ]; then
			ok=$((ok + 1))
			winner=$i
		else
			grep -q ALREADY_EXISTS "$WORK/$t.$i.out" ||
				fail "$t on node$i: not ALREADY_EXISTS: $(cat "$WORK/$t.$i.out")"
			loser_why=$(cat "$WORK/$t.$i.out")
		fi
	done
	[ "$ok" = 1 ] || fail "$t: $ok engines created it (want exactly 1)"
	won[$winner]=$((won[winner] + 1))
	echo "$t: node$winner created it; the other said: $loser_why"
	# the winner's CA issues: its key is in the token
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$t.key" 2>/dev/null
	openssl req -new -key "$WORK/$t.key" -subj "/CN=dev-$t" -out "$WORK/$t.csr"
	TCA_SOCKET="$WORK/node$winner.sock" "$TCA_CLIENT" issue --tenant "$t" --device-id "dev-$t" \
		--csr "$WORK/$t.csr" --out "$WORK/$t.pem" || fail "$t: node$winner cannot issue"
	TCA_SOCKET="$WORK/node$winner.sock" "$TCA_CLIENT" cacerts --tenant "$t" >"$WORK/$t.ca.pem"
	openssl verify -CAfile "$WORK/$t.ca.pem" "$WORK/$t.pem" >/dev/null || fail "$t: does not verify"
done
echo "node1 created ${won[1]}, node2 ${won[2]} of $N"

[ "$(sql "SELECT count(*) FROM cas WHERE status = 'active'")" = "$N" ] || fail "active CAs"
[ "$(sql "SELECT count(*) FROM journal WHERE op = 'ca-create'")" = "$N" ] || fail "ca-create records"
[ "$(sql "SELECT count(*) FROM ca_reservations")" = 0 ] || fail "reservations left: $(sql "TABLE ca_reservations")"
keys=$(private_keys)
[ "$keys" = "$N" ] || fail "the token holds $keys private keys, not $N (one per tenant)"

# a loser answering "already has a CA" serves that CA from then on
for t in $(seq -f "race%02g" 1 "$N"); do
	for i in 1 2; do
		if grep -q "already has a CA" "$WORK/$t.$i.out"; then
			TCA_SOCKET="$WORK/node$i.sock" "$CA_ADMIN" ca show "$t" >/dev/null ||
				fail "$t: node$i said it has a CA but does not show it"
		fi
	done
done
"$CA_ADMIN" journal verify --store "$DB" >/dev/null || fail "journal verify"
echo "PASS: $N tenants created on two engines at once: one CA and one key each"
