#!/usr/bin/env bash
# hsm-check.sh - `ca-admin hsm-check` against a throwaway SoftHSMv2 token:
# every check passes for all four key types and the token holds no object
# afterwards; a wrong PIN is tried exactly once; a URI matching no token, a
# missing module and a key type the profile rules out fail with a hint; a
# failing C_Sign still has its key destroyed, and a key that cannot be
# destroyed is reported as an orphan.  Faults come from tests/p11-faulty.c,
# whose log also counts the C_Login calls.
# The jq programs below use jq's own $variables:
# shellcheck disable=SC2016
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool jq
require_tool p11tool

PROFILE="$TCA_SRCDIR/hsm-profiles/softhsm2.conf"
FAULTY="$TCA_BUILDDIR/tests/.libs/p11-faulty.so"
URI=pkcs11:token=tca-hc

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

# jq -e over the last output, with a message on failure
check() { # description jq-filter [jq args...]
	local what=$1 filter=$2
	shift 2
	jq -e "$@" "$filter" "$WORK/out" >/dev/null || { cat "$WORK/out" >&2; fail "$what"; }
}

# a check's field by name
field() { # name field
	jq -r --arg n "$1" ".checks[] | select(.name == \$n) | .$2" "$WORK/out"
}

# objects on the token (any class), counted through SoftHSMv2 itself
objects() {
	GNUTLS_PIN=$(cat "$WORK/user.pin") p11tool --provider "$SOFTHSM_MODULE" --login \
		--list-all "$URI" 2>/dev/null | grep -c '^Object ' || true
}

no_pin_in() { # files...
	if grep -qF -- "$(cat "$WORK/user.pin")" "$@" || grep -qF -- wrong-pin-1234 "$@"; then
		fail "a PIN was printed: $*"
	fi
}

tca_setup
"$CA_ADMIN" token init --profile "$PROFILE" --label tca-hc --so-pin-file "$WORK/so.pin" \
	--pin-file "$WORK/user.pin" >/dev/null 2>&1 || fail "token init"
HC=("$CA_ADMIN" hsm-check --profile "$PROFILE" --uri "$URI" --pin-file "$WORK/user.pin")

# ---- 1. a good token: every check passes for all four key types
expect_rc 0 "hsm-check --json" "${HC[@]}" --json --seconds 0.2
no_pin_in "$WORK/out" "$WORK/err"
check "ok" '.ok == true'
check "no required check failed" '[.checks[] | select(.required and .status != "PASS")] | length == 0'
check "no check failed" '[.checks[] | select(.status == "FAIL")] | length == 0'
check "order" '[.checks[].name][0:4] == ["module", "token", "login", "mechanisms"]'
check "fields" '.checks | all(has("name") and has("status") and has("rv") and has("detail")
	and has("hint") and has("required"))'
check "token" '.token.label == "tca-hc" and .token.manufacturer == "SoftHSM project"
	and (.token.serial | length) > 0 and (.token.model | length) > 0'
check "profile and module" '.profile == "softhsm2" and .module == $m' --arg m "$SOFTHSM_MODULE"
check "key_types" '[.key_types[] | select(.checked and .ok) | .type] ==
	["ec-p256", "ec-p384", "rsa-3072", "ed25519"]'
for t in ec-p256 ec-p384 rsa-3072 ed25519; do
	for s in generate attributes sign destroy; do
		[ "$(field "$t/$s" status)" = PASS ] || fail "$t/$s: $(field "$t/$s" detail)"
	done
	check "$t/rate" '.signatures_per_s[$t] > 0' --arg t "$t"
done
for c in sessions capacity; do
	[ "$(field $c status)" = PASS ] || fail "$c: $(field $c detail)"
done
field sessions detail | grep -q '^16 read/write sessions' || fail "sessions: $(field sessions detail)"
field capacity detail | grep -q 'not reported' || fail "capacity: $(field capacity detail)"
[ "$(objects)" = 0 ] || fail "the check left $(objects) objects on the token"

# text output: one line per check, then the summary
expect_rc 0 "hsm-check text" "${HC[@]}" --key-types ec-p256 --seconds 0 --sessions 4
grep -q '^PASS  ec-p256/sign  *CKM_ECDSA signature' "$WORK/out" || fail "text: sign line"
grep -q '^SKIP  ec-p256/rate  *not measured' "$WORK/out" || fail "text: rate line"
grep -q '^PASS  sessions  *4 read/write' "$WORK/out" || fail "text: sessions"
grep -q '^hsm-check: OK' "$WORK/out" || fail "text: summary"
if grep -q '^[A-Z]*  *\(ec-p384\|rsa-3072\|ed25519\)/' "$WORK/out"; then
	fail "text: a type not asked for"
fi
[ "$(grep -cv '^\(PASS\|FAIL\|SKIP\)  \|^token \|^hsm-check: ' "$WORK/out")" = 0 ] || fail "text: stray lines"

# the engine configuration instead of the flags
tca_write_config tca-hc
expect_rc 0 "hsm-check --config" "$CA_ADMIN" hsm-check --config "$WORK/engine.conf" \
	--key-types ed25519 --seconds 0 --json
check "--config" '.ok and .profile == "softhsm2" and .token.label == "tca-hc"'
expect_rc 1 "--config with another --profile" "$CA_ADMIN" hsm-check --config "$WORK/engine.conf" \
	--profile "$WORK/other.conf"
grep -q "leave --profile out" "$WORK/err" || fail "--config/--profile: $(cat "$WORK/err")"
[ "$(objects)" = 0 ] || fail "objects left after the --config run"

# ---- 2. a wrong PIN: login FAIL, tried exactly once (p11-faulty logs every C_Login)
if [ ! -f "$FAULTY" ]; then
	[ -n "${CI:-}" ] && fail "$FAULTY is not built"
	echo "SKIP: $FAULTY not built (make check builds it)" >&2
	exit 77
fi
export TCA_FAULTY_MODULE="$SOFTHSM_MODULE" TCA_FAULTY_LOG="$WORK/faulty.log" \
	TCA_FAULTY_CTL="$WORK/faulty.ctl"
(umask 077; printf 'wrong-pin-1234\n' >"$WORK/bad.pin")
expect_rc 1 "wrong PIN" "$CA_ADMIN" hsm-check --profile "$PROFILE" --uri "$URI" \
	--pin-file "$WORK/bad.pin" --module "$FAULTY" --json
no_pin_in "$WORK/out" "$WORK/err" "$WORK/faulty.log"
check "wrong PIN: ok false" '.ok == false'
[ "$(field token status)" = PASS ] || fail "wrong PIN: token $(field token status)"
[ "$(field login status)" = FAIL ] || fail "wrong PIN: login $(field login status)"
[ "$(field login rv)" = CKR_PIN_INCORRECT ] || fail "wrong PIN: rv $(field login rv)"
field login hint | grep -q PIN || fail "wrong PIN: hint $(field login hint)"
[ "$(grep -c '^call C_Login' "$WORK/faulty.log")" = 1 ] ||
	fail "wrong PIN: $(grep -c '^call C_Login' "$WORK/faulty.log") C_Login calls, expected 1"
check "wrong PIN: nothing generated" '[.checks[] | select(.name | endswith("/generate"))] | length == 0'

# a PIN shorter than the profile's pin_min is not even sent
(umask 077; printf '12\n' >"$WORK/short.pin")
: >"$WORK/faulty.log"
expect_rc 1 "short PIN" "$CA_ADMIN" hsm-check --profile "$PROFILE" --uri "$URI" \
	--pin-file "$WORK/short.pin" --module "$FAULTY" --json
[ "$(field login status)" = FAIL ] || fail "short PIN: login $(field login status)"
field login detail | grep -q '4\.\.255' || fail "short PIN: $(field login detail)"
if grep -q '^call C_Login' "$WORK/faulty.log"; then fail "short PIN: C_Login was called"; fi

# ---- 3. a URI that matches no token: FAIL listing the tokens present
expect_rc 1 "no such token" "$CA_ADMIN" hsm-check --profile "$PROFILE" --uri pkcs11:token=no-such \
	--pin-file "$WORK/user.pin" --json
[ "$(field token status)" = FAIL ] || fail "no such token: token $(field token status)"
field token detail | grep -q '"tca-hc"' || fail "no such token: tokens not listed: $(field token detail)"
field token hint | grep -q 'token.uri' || fail "no such token: hint $(field token hint)"
[ "$(field login status)" = SKIP ] || fail "no such token: login $(field login status)"

# ---- 4. a module path that does not exist
expect_rc 1 "no module" "${HC[@]}" --module "$WORK/no-such-module.so" --json
[ "$(field module status)" = FAIL ] || fail "no module: module $(field module status)"
field module hint | grep -q 'install' || fail "no module: hint $(field module hint)"
check "no module: the rest skipped" '[.checks[1:][] | select(.status != "SKIP")] | length == 0'

# ---- 5. --key-types ed25519 with a profile that sets no_ed25519
sed -e 's/^no_ed25519 = false/no_ed25519 = true/' -e 's/^name = softhsm2/name = softhsm2-no-ed/' \
	"$PROFILE" >"$WORK/no-ed25519.conf"
grep -q '^no_ed25519 = true' "$WORK/no-ed25519.conf" || fail "profile edit"
expect_rc 1 "no_ed25519" "$CA_ADMIN" hsm-check --profile "$WORK/no-ed25519.conf" --uri "$URI" \
	--pin-file "$WORK/user.pin" --key-types ed25519 --json
[ "$(field mechanisms status)" = PASS ] || fail "no_ed25519: mechanisms"
[ "$(field ed25519/generate status)" = FAIL ] || fail "no_ed25519: $(field ed25519/generate status)"
field ed25519/generate hint | grep -q no_ed25519 || fail "no_ed25519: hint $(field ed25519/generate hint)"
check "no_ed25519: not offered" '[.key_types[].type] | index("ed25519") == null'

# ---- 6. C_Sign fails: FAIL with the CK_RV, and the key is destroyed all the same
printf 'fail C_Sign CKR_FUNCTION_FAILED count inf\n' >"$WORK/faulty.ctl"
expect_rc 1 "failing C_Sign" "${HC[@]}" --module "$FAULTY" --key-types ec-p256 --json
[ "$(field ec-p256/sign status)" = FAIL ] || fail "failing C_Sign: sign $(field ec-p256/sign status)"
[ "$(field ec-p256/sign rv)" = CKR_FUNCTION_FAILED ] || fail "failing C_Sign: rv $(field ec-p256/sign rv)"
[ "$(field ec-p256/destroy status)" = PASS ] || fail "failing C_Sign: destroy $(field ec-p256/destroy detail)"
[ "$(field ec-p256/rate status)" = SKIP ] || fail "failing C_Sign: rate"
[ "$(objects)" = 0 ] || fail "failing C_Sign: $(objects) objects left"

# ---- 7. C_DestroyObject fails: the orphan is reported, truthfully
printf 'fail C_DestroyObject CKR_FUNCTION_FAILED count inf\n' >"$WORK/faulty.ctl.new"
mv "$WORK/faulty.ctl.new" "$WORK/faulty.ctl"
expect_rc 1 "failing C_DestroyObject" "${HC[@]}" --module "$FAULTY" --key-types ec-p256 \
	--seconds 0 --json
[ "$(field ec-p256/sign status)" = PASS ] || fail "orphan: sign"
[ "$(field ec-p256/destroy status)" = FAIL ] || fail "orphan: destroy $(field ec-p256/destroy status)"
field ec-p256/destroy detail | grep -q 'orphan' || fail "orphan: $(field ec-p256/destroy detail)"
field ec-p256/destroy hint | grep -q 'delete-object' || fail "orphan: hint $(field ec-p256/destroy hint)"
[ "$(objects)" = 2 ] || fail "orphan: $(objects) objects on the token, the report says 2"
rm -f "$WORK/faulty.ctl"
# the reported CKA_ID is the orphan's: removing by it leaves the token empty
ID=$(field ec-p256/destroy detail | sed -n 's/.*CKA_ID \([0-9a-f]*\) .*/\1/p')
[ -n "$ID" ] || fail "orphan: no CKA_ID in $(field ec-p256/destroy detail)"
GNUTLS_PIN=$(cat "$WORK/user.pin") p11tool --provider "$SOFTHSM_MODULE" --login --batch \
	--delete "$URI;id=$(printf '%s' "$ID" | sed 's/../%&/g')" >/dev/null 2>&1 || fail "orphan: delete"
[ "$(objects)" = 0 ] || fail "orphan: $(objects) objects left after removing id $ID"

# ---- 8. interrupted (SIGINT while signing for the rate, a reader that went
# away): the keys are destroyed all the same
"${HC[@]}" --key-types ec-p256 --seconds 60 >"$WORK/out" 2>"$WORK/err" &
HC_PID=$!
for _ in $(seq 1 200); do
	grep -q '^PASS  ec-p256/sign' "$WORK/out" && break
	sleep 0.05
done
grep -q '^PASS  ec-p256/sign' "$WORK/out" || { kill -KILL "$HC_PID"; fail "SIGINT: no sign line"; }
kill -INT "$HC_PID"
rc=0
wait "$HC_PID" || rc=$?
[ "$rc" = 1 ] || fail "SIGINT: exit $rc, expected 1"
grep -q '^PASS  ec-p256/destroy' "$WORK/out" || fail "SIGINT: $(cat "$WORK/out")"
grep -q '^SKIP  ec-p256/rate  *interrupted' "$WORK/out" || fail "SIGINT: rate line"
[ "$(objects)" = 0 ] || fail "SIGINT: $(objects) objects left"
rc=0
"${HC[@]}" --key-types ec-p256,ed25519 --seconds 0 | head -n 1 >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "closed pipe: exit $rc (SIGPIPE is ignored during the run: expected 0)"
[ "$(objects)" = 0 ] || fail "closed pipe: $(objects) objects left"

# ---- 9. usage errors exit 2; an unreadable profile 1
expect_rc 2 "no profile" "$CA_ADMIN" hsm-check --uri "$URI" --pin-file "$WORK/user.pin"
expect_rc 2 "no URI" "$CA_ADMIN" hsm-check --profile "$PROFILE" --pin-file "$WORK/user.pin"
expect_rc 2 "unknown key type" "${HC[@]}" --key-types ec-p521
expect_rc 2 "bad --seconds" "${HC[@]}" --seconds 1.2345
expect_rc 2 "bad --sessions" "${HC[@]}" --sessions 0
expect_rc 2 "stray argument" "${HC[@]}" extra
expect_rc 0 "--help" "$CA_ADMIN" hsm-check --help
grep -q usage "$WORK/out" || fail "hsm-check --help printed no usage"
expect_rc 1 "missing profile" "$CA_ADMIN" hsm-check --profile "$WORK/none.conf" --uri "$URI" \
	--pin-file "$WORK/user.pin"
echo "hsm-check: all checks passed"
