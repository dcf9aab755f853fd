#!/usr/bin/env bash
# store-integrity.sh - the state store against a second engine and against
# tampering (issue 11): one engine per store (exclusive lock, read-only
# audits still work), the checks at start (journal chain, guard triggers,
# certificates against the journal), and a store whose files are unlinked
# under the running engine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq
require_tool sqlite3

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

# issue TENANT DEVICE NAME [expected-rc]: key, CSR, certificate in $WORK/NAME.{key,csr,pem}
issue() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$3.key" 2>/dev/null
	openssl req -new -key "$WORK/$3.key" -subj "/CN=$2" -out "$WORK/$3.csr"
	expect_rc "${4:-0}" "issue $3" "$TCA_CLIENT" issue --tenant "$1" --device-id "$2" \
		--csr "$WORK/$3.csr" --out "$WORK/$3.pem"
}

serial_of() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

# a second engine on the same configuration but its own socket and log;
# waits for it to exit (bounded) and returns its exit status
second_engine() {
	local rc=0
	sed "s|^socket.path = .*|socket.path = $WORK/second.sock|" "$WORK/engine.conf" >"$WORK/second.conf"
	chmod 0600 "$WORK/second.conf"
	: >"$WORK/second.log"
	timeout 60 "$ENGINED" --config "$WORK/second.conf" 2>>"$WORK/second.log" || rc=$?
	return $rc
}

tca_setup
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-store --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
tca_write_config tca-store
tca_start_engine

expect_rc 0 "ca create t1" "$CA_ADMIN" ca create t1
issue t1 dev-a a

# --- 1. one engine per store ---------------------------------------------
rc=0
second_engine || rc=$?
[ "$rc" != 0 ] || fail "a second engine started on a store in use"
[ "$rc" != 124 ] || fail "the second engine neither served nor exited"
grep -q "store $WORK/state.db is in use by another engine (pid $ENGINE_PID" "$WORK/second.log" ||
	{ cat "$WORK/second.log" >&2; fail "the refusal does not name the store and the holder's pid"; }
[ ! -e "$WORK/second.sock" ] || fail "the refused engine opened a socket"
kill -0 "$ENGINE_PID" || fail "the first engine died"
# the audit commands open the store read-only and keep working meanwhile
expect_rc 0 "journal verify while the engine runs" "$CA_ADMIN" journal verify --config "$WORK/engine.conf"
grep -q "journal OK: 3 records" "$WORK/out" || fail "journal verify: $(cat "$WORK/out")"
expect_rc 0 "journal export while the engine runs" "$CA_ADMIN" journal export --db "$WORK/state.db"
[ "$(wc -l <"$WORK/out")" = 3 ] || fail "journal export: $(cat "$WORK/out")"
# the first engine still serves, and after it stops another may take the store
issue t1 dev-b b
tca_stop_engine || fail "engine exit status"
tca_start_engine
expect_rc 0 "ca show t1 after restart" "$CA_ADMIN" ca show t1

echo "store-integrity: all checks passed"
