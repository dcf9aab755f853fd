#!/usr/bin/env bash
# store-pg.sh - the engine on a PostgreSQL store (issue 13), end to end: a
# throwaway cluster (tests/pg-cluster.sh), the engine with store.uri naming
# it (a password in the URI never shown), CA and certificates, kill -9 and
# a restart that loads the CA from the database, the server restarted under
# the running engine (reconnected, nothing lost), the database down (typed
# errors and store.health, then recovery by itself), ca-admin journal verify
# --store on the database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool openssl
require_tool jq

pg_start
URI="$DB password=s3cret-not-to-show"

pg_token_init tca-pg
TCA_STORE_URI="$URI" tca_write_config tca-pg
tca_start_engine

"$CA_ADMIN" status --json >"$WORK/status.json"
[ "$(jq -r .store.backend "$WORK/status.json")" = postgresql ] || fail "store.backend"
[ "$(jq -r .store.health "$WORK/status.json")" = ok ] || fail "store.health"
jq -r .store.uri "$WORK/status.json" | grep -q 'password=\*\*\*' ||
	fail "status store.uri does not hide the password: $(jq -r .store.uri "$WORK/status.json")"

"$CA_ADMIN" ca create pg1 >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
issue() { # device id -> $WORK/<id>.pem
	openssl req -new -key "$WORK/dev.key" -subj "/CN=$1" -out "$WORK/$1.csr"
	"$TCA_CLIENT" issue --tenant pg1 --device-id "$1" --csr "$WORK/$1.csr" --out "$WORK/$1.pem"
}
issue dev-1 || fail "issue dev-1"
"$TCA_CLIENT" cacerts --tenant pg1 >"$WORK/ca.pem"
openssl verify -CAfile "$WORK/ca.pem" "$WORK/dev-1.pem" >/dev/null || fail "dev-1 does not verify"

# kill -9, start again: the CA comes from the database
kill -KILL "$ENGINE_PID"; wait "$ENGINE_PID" 2>/dev/null || true; ENGINE_PID=
rm -f "$WORK/engine.sock"
tca_start_engine
issue dev-2 || fail "issue dev-2 after kill -9"
openssl verify -CAfile "$WORK/ca.pem" "$WORK/dev-2.pem" >/dev/null || fail "dev-2 does not verify"

# the server restarted under the running engine: the next request reconnects
"$PGSH" restart "$PGDIR" >/dev/null
issue dev-3 || fail "issue dev-3 after the server restarted"

# the database down: a typed error, store.health says so; back by itself
"$PGSH" halt "$PGDIR" >/dev/null
set +e
openssl req -new -key "$WORK/dev.key" -subj "/CN=dev-4" -out "$WORK/dev-4.csr"
"$TCA_CLIENT" issue --tenant pg1 --device-id dev-4 --csr "$WORK/dev-4.csr" \
	--out "$WORK/dev-4.pem" 2>"$WORK/down.err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "issued while the database was down"
grep -q JOURNAL_UNAVAILABLE "$WORK/down.err" || fail "not JOURNAL_UNAVAILABLE: $(cat "$WORK/down.err")"
[ ! -s "$WORK/dev-4.pem" ] || fail "a certificate was written while the database was down"
"$CA_ADMIN" status --json >"$WORK/status.json"
[ "$(jq -r .store.health "$WORK/status.json")" = unavailable ] ||
	fail "store.health while down: $(jq -c .store "$WORK/status.json")"
"$PGSH" resume "$PGDIR" >/dev/null
issue dev-4 || fail "issue dev-4 after the database came back"
"$CA_ADMIN" status --json >"$WORK/status.json"
[ "$(jq -r .store.health "$WORK/status.json")" = ok ] || fail "store.health after recovery"

tca_stop_engine || fail "engine stop"
# each certificate once: the CA's and four devices
"$CA_ADMIN" journal verify --store "$URI" >"$WORK/verify.out" || fail "journal verify: $(cat "$WORK/verify.out")"
n=$(sql "SELECT count(*) FROM certificates WHERE kind = 'device'")
[ "$n" = 4 ] || fail "$n device certificates in the database, 4 expected"
# signed checkpoints on PostgreSQL: the audit public key needs a home
# (journal.checkpoint_key_file); without it the configuration is refused
cp "$WORK/engine.conf" "$WORK/engine-cp.conf"
printf 'journal.checkpoint_interval_s = 1\n' >>"$WORK/engine-cp.conf"
if "$ENGINED" --config "$WORK/engine-cp.conf" --check-config >"$WORK/cp.out" 2>&1; then
	fail "checkpoints on PostgreSQL without journal.checkpoint_key_file were accepted"
fi
grep -q "needs journal.checkpoint_key_file" "$WORK/cp.out" || fail "refusal: $(cat "$WORK/cp.out")"
printf 'journal.checkpoint_key_file = %s\n' "$WORK/audit-key.pem" >>"$WORK/engine.conf"
printf 'journal.checkpoint_interval_s = 1\n' >>"$WORK/engine.conf"
tca_start_engine
for _ in $(seq 1 200); do
	grep -q "journal checkpoint: tca-checkpoint-v1 " "$WORK/engine.log" && break
	sleep 0.1
done
grep -o "tca-checkpoint-v1 .*" "$WORK/engine.log" | tail -1 >"$WORK/cp-line.txt"
[ -s "$WORK/cp-line.txt" ] || fail "no checkpoint logged"
tca_stop_engine || fail "engine stop (checkpoints)"
[ -s "$WORK/audit-key.pem" ] || fail "no audit public key at journal.checkpoint_key_file"
"$CA_ADMIN" journal verify --config "$WORK/engine.conf" --checkpoint "$WORK/cp-line.txt" \
	>"$WORK/verify-cp.out" 2>&1 || fail "journal verify --checkpoint: $(cat "$WORK/verify-cp.out")"
grep -q "checkpoint OK" "$WORK/verify-cp.out" || fail "checkpoint: $(cat "$WORK/verify-cp.out")"
if grep -q "warning: no audit public key" "$WORK/verify-cp.out"; then
	fail "the key file of the configuration was not used"
fi
if grep -q s3cret "$WORK/engine.log" "$WORK/verify.out" "$WORK/down.err" "$WORK/verify-cp.out"; then
	fail "the store password was shown"
fi
echo "store-pg: engine on PostgreSQL - restart, server restart, outage and verify OK"
