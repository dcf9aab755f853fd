# lib.sh - shared by the script tests and the demo: a throwaway SoftHSMv2
# token, an engine configuration and the engine process, all under one temp
# directory that is removed on exit.
# shellcheck shell=bash

: "${TCA_BUILDDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${TCA_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
ENGINED="$TCA_BUILDDIR/tca-engined"
CA_ADMIN="$TCA_BUILDDIR/ca-admin"
TCA_CLIENT="$TCA_BUILDDIR/tca-client"

require_tool() {
	if ! command -v "$1" >/dev/null 2>&1; then
		if [ -n "${CI:-}" ]; then
			echo "required tool $1 is missing (CI: failing, not skipping)" >&2
			exit 1
		fi
		echo "SKIP: $1 not found" >&2
		exit 77
	fi
}

# work dir, softhsm config pointing into it, PIN files
tca_setup() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/tca-demo-XXXXXX")
	chmod 0755 "$WORK"
	trap tca_cleanup EXIT
	mkdir -p "$WORK/tokens"
	cat >"$WORK/softhsm2.conf" <<EOC
directories.tokendir = $WORK/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOC
	export SOFTHSM2_CONF="$WORK/softhsm2.conf"
	(umask 077; printf '%s\n' "${TCA_DEMO_SO_PIN:-so-$RANDOM$RANDOM}" >"$WORK/so.pin"
	 printf '%s\n' "${TCA_DEMO_PIN:-pin-$RANDOM$RANDOM}" >"$WORK/user.pin")
	export TCA_SOCKET="$WORK/engine.sock"
}

tca_cleanup() {
	if [ -n "${ENGINE_PID:-}" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
		kill -KILL "$ENGINE_PID" 2>/dev/null
		wait "$ENGINE_PID" 2>/dev/null || true
	fi
	[ -n "${WORK:-}" ] && [ -d "$WORK" ] && rm -rf "$WORK"
}

# engine config for token label $1.  The engine refuses files others can
# write (engine/fileperm.c), hsm-profiles included: the tests use a copy in
# $WORK, whatever the checkout's owner and umask.
tca_write_config() {
	if [ ! -d "$WORK/hsm-profiles" ]; then
		cp -R "$TCA_SRCDIR/hsm-profiles" "$WORK/hsm-profiles"
		chmod -R go-w "$WORK/hsm-profiles"
	fi
	cat >"$WORK/engine.conf" <<EOC
socket.path = $WORK/engine.sock
socket.mode = 0660
token.profiles_dir = $WORK/hsm-profiles
token.profile = softhsm2
token.module = $SOFTHSM_MODULE
token.uri = pkcs11:token=$1
token.pin_file = $WORK/user.pin
token.pool_size = 2
$(if [ -n "${TCA_STORE_URI:-}" ]; then echo "store.uri = $TCA_STORE_URI"; else echo "store.path = $WORK/state.db"; fi)
roles.admin_uids = $(id -u)
roles.frontend_uids = $(id -u)
log.level = ${TCA_LOG_LEVEL:-info}
device.registration = ${TCA_REGISTRATION:-none}
EOC
	chmod 0600 "$WORK/engine.conf"
}

tca_start_engine() {
	"$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" &
	ENGINE_PID=$!
	for _ in $(seq 1 200); do
		[ -S "$WORK/engine.sock" ] && return 0
		if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
			cat "$WORK/engine.log" >&2
			echo "tca-engined exited during start-up" >&2
			return 1
		fi
		sleep 0.05
	done
	cat "$WORK/engine.log" >&2
	echo "tca-engined did not open its socket" >&2
	return 1
}

# SIGTERM, wait, return its exit status
tca_stop_engine() {
	local rc=0
	kill -TERM "$ENGINE_PID"
	wait "$ENGINE_PID" || rc=$?
	ENGINE_PID=
	return $rc
}

fail() {
	echo "FAIL: $*" >&2
	[ -f "$WORK/engine.log" ] && tail -n 30 "$WORK/engine.log" >&2
	exit 1
}
