#!/usr/bin/env bash
# store-migrate.sh - ca-admin store migrate from SQLite to PostgreSQL
# (issue 13), end to end: the real engine on SQLite issues, revokes, sets a
# policy, deletes and re-creates a tenant; migrate is refused while the
# engine holds the store (naming its pid), and for a broken source; with
# the engine stopped it copies everything to a throwaway cluster, refuses a
# second run (target not empty); the engine restarted on the PostgreSQL
# store.uri serves the same CAs (a certificate issued before verifies
# against cacerts after), issues, and journal verify --store on PostgreSQL
# still has the SQLite head (--head N:HASH) plus the new records.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool openssl
require_tool jq
require_tool sqlite3

pg_start tca2
URI="$DB"
URI2=$(pg_db tca2)

pg_token_init tca-mig
tca_write_config tca-mig
tca_start_engine

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
issue() { # tenant device -> $WORK/<device>.pem
	openssl req -new -key "$WORK/dev.key" -subj "/CN=$2" -out "$WORK/$2.csr"
	"$TCA_CLIENT" issue --tenant "$1" --device-id "$2" --csr "$WORK/$2.csr" --out "$WORK/$2.pem"
}
"$CA_ADMIN" ca create m1 >/dev/null
"$CA_ADMIN" ca create m2 --key-type ec-p384 >/dev/null
issue m1 dev-1 || fail "issue dev-1"
issue m1 dev-2 || fail "issue dev-2"
issue m2 dev-x || fail "issue dev-x"
serial2=$(openssl x509 -in "$WORK/dev-2.pem" -noout -serial | cut -d= -f2)
"$CA_ADMIN" cert revoke m1 "$serial2" --reason keyCompromise >/dev/null || fail "revoke dev-2"
"$CA_ADMIN" policy set m1 max_days=90 >/dev/null || fail "policy set"
"$CA_ADMIN" ca delete m2 --confirm >/dev/null || fail "ca delete m2"
"$CA_ADMIN" ca create m2 >/dev/null || fail "ca re-create m2"
"$TCA_CLIENT" cacerts --tenant m1 >"$WORK/ca-before.pem"
"$CA_ADMIN" --json ca list --all >"$WORK/cas-before.json"

# refused while the engine holds the store, naming its pid; nothing written
set +e
"$CA_ADMIN" store migrate --from "sqlite:$WORK/state.db" --to "$URI" 2>"$WORK/held.err"
rc=$?
set -e
[ "$rc" = 5 ] || fail "migrate while the engine runs: exit $rc, 5 expected: $(cat "$WORK/held.err")"
grep -q "pid $ENGINE_PID" "$WORK/held.err" || fail "the refusal does not name the engine's pid: $(cat "$WORK/held.err")"
grep -q "Stop the engine" "$WORK/held.err" || fail "the refusal does not say what to do"
[ "$(psql "$URI" -At -c "SELECT count(*) FROM pg_tables WHERE tablename = 'journal'")" = 0 ] ||
	fail "the refused migration created something in the target"

tca_stop_engine || fail "engine stop"
"$CA_ADMIN" --json journal verify --db "$WORK/state.db" >"$WORK/verify-sqlite.json" ||
	fail "journal verify on SQLite: $(cat "$WORK/verify-sqlite.json")"
n=$(jq -r .records "$WORK/verify-sqlite.json")
head=$(jq -r .head "$WORK/verify-sqlite.json")

# a broken source: refused naming the record, the target left empty
cp "$WORK/state.db" "$WORK/broken.db"
sqlite3 "$WORK/broken.db" "DROP TRIGGER journal_no_update; UPDATE journal SET details = 'x' WHERE seq = 3"
set +e
"$CA_ADMIN" store migrate --from "sqlite:$WORK/broken.db" --to "$URI2" >"$WORK/broken.out" 2>&1
rc=$?
set -e
[ "$rc" = 4 ] || fail "migrate of a broken source: exit $rc, 4 expected: $(cat "$WORK/broken.out")"
grep -q "record 3" "$WORK/broken.out" || fail "the refusal does not name record 3: $(cat "$WORK/broken.out")"
[ "$(psql "$URI2" -At -c "SELECT count(*) FROM pg_tables WHERE tablename = 'journal'")" = 0 ] ||
	fail "a broken source's migration created something in the target"

# the migration
"$CA_ADMIN" store migrate --from "sqlite:$WORK/state.db" --to "$URI" >"$WORK/migrate.out" 2>&1 ||
	fail "store migrate: $(cat "$WORK/migrate.out")"
grep -q "journal OK on the target: $n records, head seq $n hash $head" "$WORK/migrate.out" ||
	fail "migrate output: $(cat "$WORK/migrate.out")"
grep -Eq "^  certificates +6$" "$WORK/migrate.out" || fail "certificate count: $(cat "$WORK/migrate.out")"
grep -Eq "^  cas +3$" "$WORK/migrate.out" || fail "CA count: $(cat "$WORK/migrate.out")"
grep -Eq "^took [0-9.]+ s$" "$WORK/migrate.out" || fail "no time taken: $(cat "$WORK/migrate.out")"
# a second run: the target is not empty
set +e
"$CA_ADMIN" store migrate --from "sqlite:$WORK/state.db" --to "$URI" 2>"$WORK/again.err"
rc=$?
set -e
[ "$rc" = 5 ] || fail "a second migrate: exit $rc, 5 expected"
grep -q "not empty" "$WORK/again.err" || fail "second migrate: $(cat "$WORK/again.err")"

# the engine on the PostgreSQL store: same CAs, old certificates verify, new issuance
TCA_STORE_URI="$URI" tca_write_config tca-mig
tca_start_engine
"$CA_ADMIN" status --json >"$WORK/status.json"
[ "$(jq -r .store.backend "$WORK/status.json")" = postgresql ] || fail "store.backend after the switch"
"$CA_ADMIN" --json ca list --all >"$WORK/cas-after.json"
cmp -s "$WORK/cas-before.json" "$WORK/cas-after.json" ||
	fail "ca list differs: $(diff "$WORK/cas-before.json" "$WORK/cas-after.json")"
"$TCA_CLIENT" cacerts --tenant m1 >"$WORK/ca-after.pem"
cmp -s "$WORK/ca-before.pem" "$WORK/ca-after.pem" || fail "cacerts of m1 changed"
openssl verify -CAfile "$WORK/ca-after.pem" "$WORK/dev-1.pem" >/dev/null || fail "dev-1 does not verify after"
"$CA_ADMIN" --json cert show m1 "$serial2" >"$WORK/dev-2.json" || fail "cert show dev-2 after"
jq -e '[.. | objects | select(has("reason")) | .reason] | index("keyCompromise") != null' \
	"$WORK/dev-2.json" >/dev/null ||
	fail "dev-2 is not revoked after the migration"
"$CA_ADMIN" --json policy show m1 | grep -q max_days || fail "the policy was lost"
issue m1 dev-3 || fail "issue after the migration"
openssl verify -CAfile "$WORK/ca-after.pem" "$WORK/dev-3.pem" >/dev/null || fail "dev-3 does not verify"
issue m2 dev-y || fail "issue on the re-created tenant"
tca_stop_engine || fail "engine stop on PostgreSQL"

"$CA_ADMIN" --json journal verify --store "$URI" --head "$n:$head" >"$WORK/verify-pg.json" ||
	fail "journal verify --store on PostgreSQL: $(cat "$WORK/verify-pg.json")"
m=$(jq -r .records "$WORK/verify-pg.json")
[ "$m" -ge $((n + 2)) ] || fail "$m records on PostgreSQL, at least $((n + 2)) expected"
[ "$(jq -r .saved_head "$WORK/verify-pg.json")" = ok ] || fail "the SQLite head is not in the PostgreSQL journal"
echo "store-migrate: SQLite -> PostgreSQL, $n records, engine restarted on PostgreSQL OK"
