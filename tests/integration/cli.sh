#!/usr/bin/env bash
# cli.sh - ca-admin and tca-client as operators and scripts use them:
# --help everywhere, exit codes, --json output, PIN file checks, owner and
# mode of the files and directories the engine trusts, SIGHUP and the reload
# op, journal export.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

tca_setup

# --help everywhere exits 0 and prints usage
for args in "--help" "ca --help" "ca create --help" "journal --help" "token init --help" "status --help"; do
	# shellcheck disable=SC2086
	expect_rc 0 "ca-admin $args" "$CA_ADMIN" $args
	grep -qi usage "$WORK/out" || fail "ca-admin $args printed no usage"
done
for args in "--help" "issue --help" "reenroll --help" "cacerts --help" "status --help" \
	"crl --help" "ocsp --help" "csrattrs --help" "ops --help"; do
	# shellcheck disable=SC2086
	expect_rc 0 "tca-client $args" "$TCA_CLIENT" $args
done
expect_rc 0 "tca-engined --help" "$ENGINED" --help

# docs/rpc.md's operation index is the operation table, and every op has its
# own section under the role the table gives it
expect_rc 0 "ca-admin ops --markdown" "$CA_ADMIN" ops --markdown
sed -n '/<!-- ops-table:begin/,/<!-- ops-table:end/p' "$TCA_SRCDIR/docs/rpc.md" |
	sed '1d;$d' >"$WORK/ops-doc"
diff -u "$WORK/ops-doc" "$WORK/out" >&2 ||
	fail "docs/rpc.md operation index differs from ca-admin ops --markdown (regenerate it)"
"$CA_ADMIN" ops --markdown | sed -n 's/^| `\([a-z._]*\)` | \([a-z]*\) |.*/\1 \2/p' |
while read -r op role; do
	grep -q "^### 7\.[0-9]* \`$op\` ($role)\$" "$TCA_SRCDIR/docs/rpc.md" ||
		fail "docs/rpc.md has no section \"### 7.N \`$op\` ($role)\""
done
expect_rc 2 "tca-client ops with an argument" "$TCA_CLIENT" ops x
expect_rc 0 "tca-client ops" "$TCA_CLIENT" ops
grep -q '^issue (frontend)' "$WORK/out" || fail "tca-client ops does not list issue"
if grep -q '(admin)' "$WORK/out"; then fail "tca-client ops lists admin operations"; fi

# usage errors are 2, an unreachable engine is 3
expect_rc 2 "ca-admin without command" "$CA_ADMIN"
expect_rc 2 "unknown command" "$CA_ADMIN" frobnicate
expect_rc 2 "ca delete without --confirm" "$CA_ADMIN" ca delete t1
expect_rc 3 "no engine" "$CA_ADMIN" --socket "$WORK/nothing.sock" status
expect_rc 2 "tca-engined without --config" "$ENGINED"

# token init refuses a PIN file others can read, then works
chmod 0644 "$WORK/user.pin"
expect_rc 1 "world-readable PIN file" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-cli --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
grep -q "chmod 600" "$WORK/err" || fail "PIN file refusal does not say how to fix it"
chmod 0600 "$WORK/user.pin"
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-cli --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
expect_rc 1 "token init twice" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-cli --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"

tca_write_config tca-cli
expect_rc 0 "check-config" "$ENGINED" --config "$WORK/engine.conf" --check-config

# the engine refuses to start (and --check-config refuses) when a file it
# trusts, or a directory on its path, could be written by others or belongs
# to another user; the refusal names the path and the fix
variant() { # NAME SED-SCRIPT: $WORK/NAME.conf, engine.conf edited
	sed "$2" "$WORK/engine.conf" >"$WORK/$1.conf"
	chmod 0600 "$WORK/$1.conf"
}
refused_at_start() { # CONFIG WHAT NEEDLE...: refused, and the log says each NEEDLE
	local conf=$1 what=$2 needle
	shift 2
	expect_rc 1 "$what (--check-config)" "$ENGINED" --config "$conf" --check-config
	# timeout: an engine that accepted it would serve forever
	expect_rc 1 "$what" timeout 30 "$ENGINED" --config "$conf"
	for needle in "$@"; do
		grep -qF -- "$needle" "$WORK/err" ||
			{ cat "$WORK/err" >&2; fail "$what: the refusal does not say \"$needle\""; }
	done
}
mkdir "$WORK/etc" && chmod 0777 "$WORK/etc"
cp "$WORK/engine.conf" "$WORK/etc/engine.conf"
refused_at_start "$WORK/etc/engine.conf" "config in a world-writable directory" \
	"configuration file $WORK/etc/engine.conf: directory $WORK/etc is writable by group and others" \
	"fix: chmod go-w $WORK/etc"
chmod 0755 "$WORK/etc"
expect_rc 0 "config directory fixed" "$ENGINED" --config "$WORK/etc/engine.conf" --check-config
chmod o+w "$WORK/engine.conf"
refused_at_start "$WORK/engine.conf" "world-writable config" \
	"configuration file $WORK/engine.conf is writable by others (mode 0602)" \
	"fix: chmod o-w $WORK/engine.conf"
chmod 0600 "$WORK/engine.conf"
if [ "$(id -u)" = 0 ]; then
	chown nobody "$WORK/engine.conf"
	refused_at_start "$WORK/engine.conf" "config owned by another user" \
		"configuration file $WORK/engine.conf is owned by uid $(id -u nobody) (nobody)" \
		"fix: chown root $WORK/engine.conf"
	chown root "$WORK/engine.conf"
fi
variant store "s|^store.path = .*|store.path = $WORK/store/state.db|"
mkdir "$WORK/store" && chmod 0777 "$WORK/store"
refused_at_start "$WORK/store.conf" "store in a world-writable directory" \
	"store $WORK/store/state.db: directory $WORK/store is writable" "fix: chmod go-w $WORK/store"
[ ! -e "$WORK/store/state.db" ] || fail "the store was created in a world-writable directory"
# store.uri = sqlite:PATH is the same SQLite file, checked the same way
variant storeuri "s|^store.path = .*|store.uri = sqlite:$WORK/store/state.db|"
refused_at_start "$WORK/storeuri.conf" "sqlite: store.uri in a world-writable directory" \
	"store $WORK/store/state.db: directory $WORK/store is writable" "fix: chmod go-w $WORK/store"
chmod 0755 "$WORK/store"
expect_rc 0 "store directory fixed" "$ENGINED" --config "$WORK/store.conf" --check-config
expect_rc 0 "store directory fixed (store.uri)" "$ENGINED" --config "$WORK/storeuri.conf" --check-config
# store.path and store.uri together: refused, naming both
variant storeboth "\$a store.uri = sqlite:$WORK/other.db"
refused_at_start "$WORK/storeboth.conf" "store.path and store.uri both set" \
	"both store.uri and store.path are set"
# a PostgreSQL store in a build without libpq: refused at start, saying
# so, the password never shown; the SQLite file checks do not apply to it
if ! grep -q '^#define HAVE_LIBPQ 1' "$TCA_BUILDDIR/config.h" 2>/dev/null; then
	variant storepg "s|^store.path = .*|store.uri = postgresql://tca:s3cret@127.0.0.1:1/tca|"
	expect_rc 0 "postgresql store.uri (--check-config)" "$ENGINED" --config "$WORK/storepg.conf" --check-config
	expect_rc 1 "postgresql store.uri without libpq" timeout 30 "$ENGINED" --config "$WORK/storepg.conf"
	grep -qF "this build has no PostgreSQL support (configure found no libpq)" "$WORK/err" ||
		{ cat "$WORK/err" >&2; fail "postgresql store: no clear refusal"; }
	grep -qF "postgresql://tca:***@127.0.0.1:1/tca" "$WORK/err" ||
		{ cat "$WORK/err" >&2; fail "postgresql store: not named by its redacted URI"; }
	! grep -q s3cret "$WORK/err" || fail "postgresql store: the password was logged"
fi
variant run "s|^socket.path = .*|socket.path = $WORK/run/engine.sock|"
mkdir "$WORK/run" && chmod 0777 "$WORK/run"
refused_at_start "$WORK/run.conf" "socket in a world-writable directory" \
	"socket.path $WORK/run/engine.sock: directory $WORK/run is writable" "fix: chmod go-w $WORK/run"
# like /tmp: the sticky bit does not make it the engine's own
chmod 1777 "$WORK/run"
refused_at_start "$WORK/run.conf" "socket in a sticky world-writable directory" \
	"directory $WORK/run is writable by group and others (mode 1777)" "sticky bit"
[ ! -e "$WORK/run/engine.sock" ] || fail "a socket was created in a world-writable directory"
variant secret "s|^token.pin_file = .*|token.pin_file = $WORK/secret/user.pin|"
mkdir "$WORK/secret" && cp -p "$WORK/user.pin" "$WORK/secret/" && chmod 0777 "$WORK/secret"
refused_at_start "$WORK/secret.conf" "PIN file in a world-writable directory" \
	"PIN file $WORK/secret/user.pin: directory $WORK/secret is writable" "fix: chmod go-w $WORK/secret"
variant alert "\$a alert.command = $WORK/alert.sh"
printf '#!/bin/sh\nexit 0\n' >"$WORK/alert.sh" && chmod 0777 "$WORK/alert.sh"
refused_at_start "$WORK/alert.conf" "world-writable alert.command" \
	"alert.command $WORK/alert.sh is writable by group and others" "fix: chmod go-w $WORK/alert.sh"
chmod 0755 "$WORK/alert.sh"
expect_rc 0 "alert.command fixed" "$ENGINED" --config "$WORK/alert.conf" --check-config

# the engine refuses to start with a world-readable PIN file
chmod 0644 "$WORK/user.pin"
expect_rc 1 "engine with world-readable PIN" "$ENGINED" --config "$WORK/engine.conf"
grep -q "PIN file" "$WORK/err" || fail "engine did not explain the PIN file refusal"
chmod 0600 "$WORK/user.pin"
tca_start_engine
# the PIN never reaches the log
if grep -qF "$(cat "$WORK/user.pin")" "$WORK/engine.log"; then fail "PIN in the log"; fi

expect_rc 0 "ca create" "$CA_ADMIN" --json ca create t200 --key-type ec-p384
[ "$(jq -r .tenant "$WORK/out")" = t200 ] || fail "create --json: tenant"
[ "$(jq -r .key_type "$WORK/out")" = ec-p384 ] || fail "create --json: key_type"
expect_rc 1 "ca create twice" "$CA_ADMIN" ca create t200
grep -q ALREADY_EXISTS "$WORK/err" || fail "second create: no ALREADY_EXISTS"
expect_rc 1 "bad tenant id" "$CA_ADMIN" ca create 'bad tenant'
grep -q BAD_REQUEST "$WORK/err" || fail "bad tenant: no BAD_REQUEST"
expect_rc 0 "ca create t201" "$CA_ADMIN" ca create t201
expect_rc 0 "ca show --pem" "$CA_ADMIN" ca show t200 --pem
openssl x509 -in "$WORK/out" -noout -subject | grep -q "CN *= *t200" || fail "show --pem"
expect_rc 0 "ca list --json" "$CA_ADMIN" ca list --json
[ "$(jq length "$WORK/out")" = 2 ] || fail "list: expected 2 CAs"
expect_rc 0 "status --json" "$CA_ADMIN" status --json
# the store by its (redacted) URI and backend
[ "$(jq -r .store.uri "$WORK/out")" = "sqlite:$WORK/state.db" ] || fail "status: store.uri $(jq -c .store "$WORK/out")"
[ "$(jq -r .store.backend "$WORK/out")" = sqlite ] || fail "status: store.backend"
[ "$(jq -r .tenants.active "$WORK/out")" = 2 ] || fail "status: active tenants"
[ "$(jq -r .role "$WORK/out")" = admin ] || fail "status: role"

# tca-client: issue, refusal exit code 1 with the typed code on stderr
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/d.key" 2>/dev/null
openssl req -new -key "$WORK/d.key" -subj "/CN=dev-9/O=Thin Edge/OU=Device" -out "$WORK/d.csr"
expect_rc 0 "tca-client issue" "$TCA_CLIENT" issue --tenant t200 --device-id dev-9 --csr "$WORK/d.csr"
cp "$WORK/out" "$WORK/d.pem"
openssl x509 -in "$WORK/d.pem" -noout >/dev/null || fail "issue did not print a PEM certificate"
expect_rc 1 "CN mismatch" "$TCA_CLIENT" issue --tenant t200 --device-id dev-8 --csr "$WORK/d.csr"
grep -q POLICY_VIOLATION "$WORK/err" || fail "CN mismatch: no POLICY_VIOLATION"
expect_rc 0 "tca-client reenroll" "$TCA_CLIENT" reenroll --tenant t200 --device-id dev-9 \
	--csr "$WORK/d.csr" --current "$WORK/d.pem"
expect_rc 1 "reenroll under another tenant" "$TCA_CLIENT" reenroll --tenant t201 --device-id dev-9 \
	--csr "$WORK/d.csr" --current "$WORK/d.pem"
expect_rc 2 "tca-client usage" "$TCA_CLIENT" issue --tenant t200

# reload: the op and SIGHUP; a broken file is refused and the engine keeps running
expect_rc 0 "reload" "$CA_ADMIN" reload
cp "$WORK/engine.conf" "$WORK/engine.conf.good"
echo "bogus.key = 1" >>"$WORK/engine.conf"
expect_rc 1 "reload of a broken file" "$CA_ADMIN" reload
kill -HUP "$ENGINE_PID"
sleep 0.5
cp "$WORK/engine.conf.good" "$WORK/engine.conf"
expect_rc 0 "still serving after a bad SIGHUP" "$CA_ADMIN" status
grep -q "reload refused" "$WORK/engine.log" || fail "bad reload not logged"
# a file others can write is refused at reload too (it would have made uid
# 4242 admin); the running configuration stays
sed -i "s|^roles.admin_uids = .*|roles.admin_uids = 4242|" "$WORK/engine.conf"
chmod o+w "$WORK/engine.conf"
expect_rc 1 "reload of a world-writable file" "$CA_ADMIN" reload
grep -qF "configuration file $WORK/engine.conf is writable by others" "$WORK/err" ||
	fail "reload refusal does not name the file: $(cat "$WORK/err")"
grep -qF "chmod o-w $WORK/engine.conf" "$WORK/err" || fail "reload refusal does not say the fix"
kill -HUP "$ENGINE_PID"
sleep 0.5
grep -qF "reload refused, keeping the running configuration: configuration file $WORK/engine.conf is writable by others" \
	"$WORK/engine.log" || fail "SIGHUP of a world-writable file: no refusal in the log"
expect_rc 0 "status after refused reloads" "$CA_ADMIN" status --json
[ "$(jq -r .role "$WORK/out")" = admin ] || fail "a refused reload changed roles.admin_uids"
cp "$WORK/engine.conf.good" "$WORK/engine.conf"
chmod 0600 "$WORK/engine.conf"
expect_rc 0 "reload after the fix" "$CA_ADMIN" reload

expect_rc 2 "delete without confirm" "$CA_ADMIN" ca delete t201
expect_rc 0 "delete" "$CA_ADMIN" --json ca delete t201 --confirm
[ "$(jq -r .token_objects_destroyed "$WORK/out")" = 2 ] || fail "delete: objects destroyed"
expect_rc 1 "delete again" "$CA_ADMIN" ca delete t201 --confirm
grep -q NOT_FOUND "$WORK/err" || fail "second delete: no NOT_FOUND"
expect_rc 0 "list --all" "$CA_ADMIN" --json ca list --all
[ "$(jq '[.[] | select(.status == "deleted")] | length' "$WORK/out")" = 1 ] || fail "list --all: deleted CA"

tca_stop_engine || fail "engine did not exit 0 on SIGTERM"
[ ! -e "$WORK/engine.sock" ] || fail "socket left behind"

# journal: verify (by --config too), export as JSON lines
expect_rc 0 "journal verify" "$CA_ADMIN" journal verify --config "$WORK/engine.conf"
grep -q "journal OK: 7 records" "$WORK/out" || fail "journal verify: $(cat "$WORK/out")"
expect_rc 0 "journal export" "$CA_ADMIN" journal export --db "$WORK/state.db" --out "$WORK/journal.jsonl"
[ "$(wc -l <"$WORK/journal.jsonl")" = 7 ] || fail "export: 7 lines expected"
# each CA's first (empty) CRL is signed and journaled when it is created
jq -s -e 'map(.op) == ["ca-create","crl","ca-create","crl","issue","reenroll","ca-delete"]' "$WORK/journal.jsonl" >/dev/null \
	|| fail "export: ops $(jq -s -c 'map(.op)' "$WORK/journal.jsonl")"
[ "$(jq -r -s '.[1].prev_hash == .[0].hash' "$WORK/journal.jsonl")" = true ] || fail "chain link in export"
# the store named by URI (--store), and by store.uri of the configuration
expect_rc 0 "journal verify --store sqlite:" "$CA_ADMIN" journal verify --store "sqlite:$WORK/state.db"
grep -q "journal OK: 7 records" "$WORK/out" || fail "journal verify --store: $(cat "$WORK/out")"
expect_rc 0 "journal export --store sqlite:" "$CA_ADMIN" journal export --store "sqlite:$WORK/state.db" \
	--out "$WORK/journal2.jsonl"
cmp -s "$WORK/journal.jsonl" "$WORK/journal2.jsonl" || fail "export --store differs from export --db"
sed "s|^store.path = .*|store.uri = sqlite:$WORK/state.db|" "$WORK/engine.conf" >"$WORK/uri.conf"
expect_rc 0 "journal verify --config with store.uri" "$CA_ADMIN" journal verify --config "$WORK/uri.conf"
grep -q "journal OK: 7 records" "$WORK/out" || fail "journal verify store.uri: $(cat "$WORK/out")"
printf 'store.uri = sqlite:%s/other.db\n' "$WORK" >>"$WORK/engine.conf.both"
cat "$WORK/engine.conf" "$WORK/engine.conf.both" >"$WORK/both.conf"
expect_rc 1 "journal verify --config with store.uri and store.path" "$CA_ADMIN" journal verify --config "$WORK/both.conf"
grep -q "both store.uri and store.path" "$WORK/err" || fail "both keys: $(cat "$WORK/err")"
expect_rc 2 "journal verify --db and --store" "$CA_ADMIN" journal verify --db "$WORK/state.db" \
	--store "sqlite:$WORK/state.db"
expect_rc 1 "journal verify --store mysql://" "$CA_ADMIN" journal verify --store "mysql://tca:s3cret@db/tca"
grep -q 'unknown URI scheme "mysql"' "$WORK/err" || fail "unknown scheme: $(cat "$WORK/err")"
! grep -q s3cret "$WORK/err" || fail "ca-admin showed the store's password"

# issue 11: text that is not UTF-8 never goes on the wire as CBOR text (the
# engine would answer "malformed CBOR at offset N"): both tools refuse it
# before connecting (the socket does not exist), naming the argument
NOSOCK="$WORK/no-engine.sock"
utf8_refused() { # ARGUMENT-NAME PROG ARGS...
	local name=$1 prog
	shift
	prog=$(basename "$1")
	expect_rc 2 "$prog $* (not UTF-8)" "$@"
	grep -qxF "$prog: argument $name is not valid UTF-8" "$WORK/err" ||
		fail "$prog: refusal does not name $name: $(cat "$WORK/err")"
}
utf8_refused --device-id "$TCA_CLIENT" --socket "$NOSOCK" issue --tenant t200 \
	--device-id $'dev\xff' --csr "$WORK/d.csr"
utf8_refused --tenant "$TCA_CLIENT" --socket "$NOSOCK" reenroll --tenant $'t\xc0\xaf' \
	--device-id dev-9 --csr "$WORK/d.csr" --current "$WORK/d.pem"
utf8_refused --tenant "$TCA_CLIENT" --socket "$NOSOCK" cacerts --tenant $'t\xe2\x82'
utf8_refused --device-id "$CA_ADMIN" --socket "$NOSOCK" device register t200 $'dev\xff' --generate
utf8_refused --device-id "$CA_ADMIN" --socket "$NOSOCK" cert list t200 --device $'\xed\xa0\x80'
utf8_refused --tenant "$CA_ADMIN" --socket "$NOSOCK" ca show $'t\xff'
utf8_refused --set "$CA_ADMIN" --socket "$NOSOCK" policy set t200 $'o=\xff'
# valid UTF-8 (even a character the engine refuses) reaches the engine: exit 3 here
expect_rc 3 "UTF-8 device id goes on the wire" "$TCA_CLIENT" --socket "$NOSOCK" issue \
	--tenant t200 --device-id $'Ger\xc3\xa4t-\xe2\x80\xae' --csr "$WORK/d.csr"

echo "cli: all checks passed"
