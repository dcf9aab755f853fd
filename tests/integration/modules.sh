#!/bin/bash
# modules.sh - the engine on real PKCS#11 modules other than SoftHSMv2, each on
# a throwaway token made with the vendor's own tool (tests/tokens/*.sh):
# openCryptoki's soft token (with pkcsslotd), tpm2-pkcs11 on swtpm (with
# tpm2-abrmd) and NSS softokn (init arguments).  For every key type a token
# offers (discovered by the engine, shown by `ca-admin status`): ca create,
# issue a device certificate, verify it with OpenSSL, re-issue the CA, verify
# the old device certificate against the new CA certificate, delete the CA
# and check its key objects are gone.  Every type it does not offer is
# refused up front, naming what it offers.
#
# usage: modules.sh [MODULE...]   (default: opencryptoki tpm2 nss)
# A module whose package is missing is skipped (exit 77) unless CI is set.
set -eu
. "$(dirname "$0")/lib.sh"
# In the ASan run of the suite (tools/run-sanitizers.sh) these modules' own
# leaks cannot be suppressed by name: openCryptoki's come from a library it
# dlopen()s and unloads again before the engine exits, so LeakSanitizer
# names no module.  Leak detection is off here only; ASan and UBSan still
# check every memory access and the SoftHSMv2 runs check leaks.
if [ -n "${ASAN_OPTIONS:-}" ]; then
	ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
	export ASAN_OPTIONS
fi
require_tool openssl
require_tool jq

ALL_TYPES="ec-p256 ec-p384 rsa-3072 ed25519"
TOKENS="$TCA_SRCDIR/tests/tokens"
skipped=0 ran=0

# profile name for a token script
profile_of() {
	case $1 in
	opencryptoki) echo opencryptoki-sw ;;
	tpm2) echo tpm2-pkcs11 ;;
	nss) echo nss-softokn ;;
	*) echo "modules.sh: unknown module $1" >&2; exit 2 ;;
	esac
}

# run_module NAME: one token, one engine, every key type
run_module() {
	local mod=$1 profile tokdir pin so rc types t out n
	profile=$(profile_of "$mod")
	tokdir="$WORK/$mod"
	mkdir -p "$tokdir"
	# openCryptoki: PINs of 4..8 characters (its profile: pin_min, pin_max)
	pin=$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
	so=$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
	rc=0
	out=$("$TOKENS/$mod.sh" start "$tokdir" "tca-$mod" "$pin" "$so") || rc=$?
	if [ "$rc" = 77 ]; then
		echo "SKIP: $mod (module not installed)"
		skipped=$((skipped + 1))
		return 0
	fi
	[ "$rc" = 0 ] || fail "$mod: token start failed ($rc)"
	MODULE= INIT_ARGS= TOKEN_URI= TOKEN_RUN=
	eval "$out"
	TOKDIRS="$TOKDIRS $mod:$tokdir"
	(umask 077; printf '%s\n' "$pin" >"$WORK/$mod.pin")
	cat >"$WORK/$mod.conf" <<EOC
socket.path = $WORK/$mod.sock
socket.mode = 0660
token.profiles_dir = $WORK/hsm-profiles
token.profile = $profile
token.module = $MODULE
token.uri = $TOKEN_URI
token.pin_file = $WORK/$mod.pin
token.pool_size = 2
store.path = $WORK/$mod.db
roles.admin_uids = $(id -u)
roles.frontend_uids = $(id -u)
device.registration = none
schedule.enabled = false
log.level = debug
EOC
	[ -n "$INIT_ARGS" ] && printf 'token.init_args = %s\n' "$INIT_ARGS" >>"$WORK/$mod.conf"
	chmod 0600 "$WORK/$mod.conf"
	# TOKEN_RUN: the module's environment (openCryptoki: its namespace)
	# shellcheck disable=SC2086
	$TOKEN_RUN "$ENGINED" --config "$WORK/$mod.conf" 2>>"$WORK/$mod.log" &
	ENGINE_PID=$!
	for _ in $(seq 1 400); do
		[ -S "$WORK/$mod.sock" ] && break
		kill -0 "$ENGINE_PID" 2>/dev/null || { cat "$WORK/$mod.log" >&2; fail "$mod: engine exited"; }
		sleep 0.05
	done
	[ -S "$WORK/$mod.sock" ] || fail "$mod: engine did not open its socket"
	export TCA_SOCKET="$WORK/$mod.sock"

	"$CA_ADMIN" --json status >"$WORK/$mod.status" || fail "$mod: status"
	types=$(jq -r '.token.key_types[].type' "$WORK/$mod.status" | tr '\n' ' ')
	[ -n "$types" ] || fail "$mod: the engine found no usable key type"
	echo "$mod: $(jq -r '.token.manufacturer + " " + .token.model' "$WORK/$mod.status"):" \
	    "$(jq -r '[.token.key_types[] | .type + " (" + .mechanism + ")"] | join(", ")' "$WORK/$mod.status")"
	for t in $ALL_TYPES; do
		case " $types " in
		*" $t "*) key_type_roundtrip "$mod" "$t" ;;
		*)
			if "$CA_ADMIN" ca create "t-$t" --key-type "$t" >"$WORK/out" 2>&1; then
				fail "$mod: ca create --key-type $t succeeded on a token that does not offer it"
			fi
			grep -q "POLICY_VIOLATION" "$WORK/out" && grep -q "offers" "$WORK/out" ||
			    { cat "$WORK/out" >&2; fail "$mod: $t refused without naming what the token offers"; }
			echo "$mod: $t refused as expected"
			;;
		esac
	done
	grep -q "CKR_" "$WORK/$mod.log" || true
	tca_stop_engine || fail "$mod: engine exit status"
	"$TOKENS/$mod.sh" stop "$tokdir" || fail "$mod: token stop"
	TOKDIRS=${TOKDIRS/ $mod:$tokdir/}
	ran=$((ran + 1))
}

# key_type_roundtrip MODULE TYPE
key_type_roundtrip() {
	local mod=$1 t=$2 d="$WORK/$1-$2" destroyed
	mkdir -p "$d"
	"$CA_ADMIN" ca create "t-$t" --key-type "$t" >"$d/create" 2>&1 ||
	    { cat "$d/create" >&2; fail "$mod: ca create --key-type $t"; }
	"$CA_ADMIN" ca show "t-$t" --pem >"$d/ca1.pem" || fail "$mod/$t: ca show"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/dev.key" 2>/dev/null
	openssl req -new -key "$d/dev.key" -subj "/CN=dev-$t" -out "$d/dev.csr"
	"$TCA_CLIENT" issue --tenant "t-$t" --device-id "dev-$t" --csr "$d/dev.csr" \
	    --out "$d/dev.pem" >/dev/null || fail "$mod/$t: issue"
	openssl verify -x509_strict -CAfile "$d/ca1.pem" "$d/dev.pem" >/dev/null ||
	    fail "$mod/$t: the device certificate does not verify"
	"$CA_ADMIN" ca reissue "t-$t" >/dev/null || fail "$mod/$t: ca reissue"
	"$CA_ADMIN" ca show "t-$t" --pem >"$d/ca2.pem" || fail "$mod/$t: ca show after reissue"
	cmp -s "$d/ca1.pem" "$d/ca2.pem" && fail "$mod/$t: re-issue did not change the certificate"
	openssl verify -x509_strict -CAfile "$d/ca2.pem" "$d/dev.pem" >/dev/null ||
	    fail "$mod/$t: the old device certificate does not verify against the re-issued CA"
	"$CA_ADMIN" --json ca delete "t-$t" --confirm >"$d/delete" || fail "$mod/$t: ca delete"
	destroyed=$(jq -r '.destroyed // .token_objects_destroyed // empty' "$d/delete")
	[ -n "$destroyed" ] && [ "$destroyed" -ge 1 ] ||
	    { cat "$d/delete" >&2; fail "$mod/$t: ca delete destroyed no token object"; }
	"$CA_ADMIN" --json status >"$d/status" || fail "$mod/$t: status"
	[ "$(jq -r '.tenants.orphan_keys' "$d/status")" = 0 ] || fail "$mod/$t: orphan keys left"
	echo "$mod: $t: create, issue, verify, re-issue, verify, delete ($destroyed objects) OK"
}

TOKDIRS=""
stop_tokens() {
	local e
	for e in $TOKDIRS; do
		"$TOKENS/${e%%:*}.sh" stop "${e#*:}" >/dev/null 2>&1 || true
	done
	tca_cleanup
}
tca_setup
# the engine refuses profiles others can write (engine/fileperm.c)
cp -R "$TCA_SRCDIR/hsm-profiles" "$WORK/hsm-profiles"
chmod -R go-w "$WORK/hsm-profiles"
trap stop_tokens EXIT
for m in ${*:-opencryptoki tpm2 nss}; do
	run_module "$m"
done
echo "modules.sh: $ran modules tested, $skipped skipped"
[ "$ran" -gt 0 ] || exit 77
