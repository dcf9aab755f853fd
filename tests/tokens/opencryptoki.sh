#!/bin/bash
# opencryptoki.sh - a throwaway openCryptoki soft token (swtok), for tests.
#
#   opencryptoki.sh start DIR LABEL USER_PIN SO_PIN   prints `export ...` lines to eval
#   opencryptoki.sh run DIR -- COMMAND [ARG...]       runs COMMAND next to the token
#   opencryptoki.sh stop DIR                          stops everything start started
#
# Design.  openCryptoki 3.8.1 has its paths compiled in: the slot daemon and
# the library read /etc/opencryptoki/opencryptoki.conf, keep tokens in
# /var/lib/opencryptoki/swtok, lock files in /var/lock/opencryptoki (=
# /run/lock/...), talk over /run/pkcsslotd.socket, and share state through
# SysV shared memory (pkcsslotd) and POSIX shm (/dev/shm/var.lib.opencryptoki.
# swtok).  No environment variable moves any of them.  So the token lives in
# a private mount + IPC namespace (unshare --mount --ipc, root only):
#   DIR/ock/etc  -> /etc/opencryptoki       (one slot: slot 0 = libpkcs11_sw.so)
#   DIR/ock/lib  -> /var/lib/opencryptoki   (the token: swtok/NVTOK.DAT, TOK_OBJ/)
#   DIR/ock/run  -> /run                    (pkcsslotd.socket, .pid, lock/opencryptoki)
#   tmpfs        -> /dev/shm
# The machine's own /etc/opencryptoki, /var/lib/opencryptoki and slot daemon
# (if any) are never touched, and several DIRs can run side by side.  A
# holder process (sleep) keeps the namespace; pkcsslotd runs inside it.  Any
# program that uses the token - the engine, pkcs11-tool, p11tool - must run
# inside too: use `opencryptoki.sh run DIR -- COMMAND` (nsenter into the
# namespace, keeping the environment and the working directory), or the
# exported TOKEN_RUN prefix.  Everything outside /etc/opencryptoki,
# /var/lib/opencryptoki, /run and /dev/shm (e.g. /tmp, the build tree) is
# the same inside and outside.
#
# The token is provisioned with the vendor tool, as a security team would
# (pkcsconf reads PINs and the label from stdin):
#   pkcsconf -c 0 -I -S 87654321            (C_InitToken needs the CURRENT SO PIN;
#                                            87654321 is the shipped default)
#   pkcsconf -c 0 -P -S 87654321            (new SO PIN, twice on stdin)
#   pkcsconf -c 0 -u -S SO_PIN              (C_InitPIN: user PIN, twice on stdin)
# pkcsconf exits 0 even when some of these fail (e.g. CKR_PIN_LEN_RANGE), so
# the script checks the token flags afterwards, and logs in with p11tool when
# gnutls-bin is installed.  PINs must be 4..8 characters (ulMinPinLen 4,
# ulMaxPinLen 8; longer ones fail with CKR_PIN_LEN_RANGE).
#
# start prints MODULE, INIT_ARGS (empty), TOKEN_URI and TOKEN_RUN.
# Exit status: 0; 77 if opencryptoki is missing and CI is unset; 1 on any
# other problem (message on stderr).  Needs root (mount namespaces).
# mkdir -p -m: only the last directory needs the mode (the rest exist)
# shellcheck disable=SC2174
set -eu
TOK_NAME=opencryptoki.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OCK_DEFAULT_SO_PIN=87654321

usage() {
	echo "usage: $0 start DIR LABEL USER_PIN SO_PIN | run DIR -- COMMAND... | stop DIR" >&2
	exit 2
}

find_module() {
	MODULE=$(tok_first /usr/lib/*/pkcs11/libopencryptoki.so /usr/lib/pkcs11/libopencryptoki.so)
	[ -n "$MODULE" ] || tok_missing_module libopencryptoki.so opencryptoki
	[ -x /usr/sbin/pkcsslotd ] || tok_missing_module /usr/sbin/pkcsslotd opencryptoki
	STDLL=$(tok_first /usr/lib/*/opencryptoki/stdll/libpkcs11_sw.so)
	[ -n "$STDLL" ] || tok_missing_module libpkcs11_sw.so opencryptoki
}

check_tools() {
	tok_need pkcsconf opencryptoki
	tok_need unshare util-linux
	tok_need nsenter util-linux
	[ "$(id -u)" = 0 ] || tok_die "needs root: the token lives in a private mount namespace"
	getent group pkcs11 >/dev/null || tok_die "group pkcs11 missing (created by the opencryptoki package)"
}

# the namespace's processes are recorded in $S/pids; the first is the holder
holder_pid() {
	local pid st name
	[ -f "$S/pids" ] || return 1
	read -r pid st name <"$S/pids" || return 1
	[ "$name" = holder ] && tok_alive "$pid" "$st" || return 1
	# still the namespace we made?
	[ "$(readlink "/proc/$pid/ns/mnt")" = "$(cat "$S/mntns" 2>/dev/null)" ] || return 1
	printf '%s\n' "$pid"
}

nsx() {	# runs a command inside the namespace
	nsenter --target "$HOLDER" --mount --ipc -- "$@"
}

start_namespace() {
	local pid
	rm -rf "${S:?}/run" "${S:?}/etc"
	mkdir -p "$S/etc" "$S/lib/swtok/TOK_OBJ" "$S/run/lock/opencryptoki/swtok"
	cat >"$S/etc/opencryptoki.conf" <<EOF
version opencryptoki-3.1

# tests/tokens/opencryptoki.sh: one software token, nothing else
slot 0
{
stdll = libpkcs11_sw.so
description = "tca test soft token"
manufacturer = "openCryptoki swtok"
}
EOF
	chgrp -R pkcs11 "$S/lib" "$S/run/lock/opencryptoki"
	chmod 0770 "$S/lib" "$S/lib/swtok" "$S/lib/swtok/TOK_OBJ" \
	    "$S/run/lock/opencryptoki" "$S/run/lock/opencryptoki/swtok"
	chmod 1777 "$S/run/lock"
	cat >"$S/ns-init.sh" <<'EOF'
# runs inside the new namespace: private mounts, then keep the namespace alive
set -eu
S=$1
mount --bind "$S/etc" /etc/opencryptoki
mount --bind "$S/lib" /var/lib/opencryptoki
mount --bind "$S/run" /run
mount -t tmpfs -o mode=1777,size=64m tca-ock-shm /dev/shm
echo $$ >/run/holder.pid
exec sleep infinity
EOF
	rm -f "$S/run/holder.pid"
	unshare --mount --ipc --propagation private -- /bin/sh "$S/ns-init.sh" "$S" \
	    </dev/null >>"$S/ns.log" 2>&1 9>&- &
	pid=$!
	if ! tok_wait 10 test -s "$S/run/holder.pid"; then
		cat "$S/ns.log" >&2
		tok_die "could not set up the namespace"
	fi
	[ "$(cat "$S/run/holder.pid")" = "$pid" ] || tok_die "namespace holder pid mismatch"
	: >"$S/pids"
	tok_record "$S/pids" "$pid" holder || tok_die "namespace holder exited ($S/ns.log)"
	readlink "/proc/$pid/ns/mnt" >"$S/mntns"
	HOLDER=$pid
}

slotd_ready() {
	[ -S "$S/run/pkcsslotd.socket" ] && [ -s "$S/run/pkcsslotd.pid" ]
}

start_slotd() {
	local pid
	rm -f "$S/run/pkcsslotd.pid" "$S/run/pkcsslotd.socket"
	# pkcsslotd forks into the background once its socket and shm are set up
	nsx /usr/sbin/pkcsslotd </dev/null >>"$S/pkcsslotd.log" 2>&1 9>&- ||
	    tok_die "pkcsslotd failed to start ($S/pkcsslotd.log)"
	tok_wait 10 slotd_ready || tok_die "pkcsslotd did not create its socket within 10 s"
	pid=$(cat "$S/run/pkcsslotd.pid")
	tok_record "$S/pids" "$pid" pkcsslotd || tok_die "pkcsslotd exited at once"
}

token_flags() {	# prints the token's flags line from pkcsconf -t
	nsx pkcsconf -c 0 -t 2>&1 | sed -n 's/^[[:space:]]*Flags: *//p'
}

token_label() {
	nsx pkcsconf -c 0 -t 2>&1 | sed -n 's/^[[:space:]]*Label: *//p' | sed 's/[[:space:]]*$//'
}

provision() {	# LABEL USER_PIN SO_PIN
	local flags out rc=0
	printf '%s\n' "$1" | nsx pkcsconf -c 0 -I -S "$OCK_DEFAULT_SO_PIN" >>"$S/pkcsconf.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || tok_die "pkcsconf -I (C_InitToken) failed with status $rc ($S/pkcsconf.log)"
	if [ "$3" != "$OCK_DEFAULT_SO_PIN" ]; then
		printf '%s\n%s\n' "$3" "$3" | nsx pkcsconf -c 0 -P -S "$OCK_DEFAULT_SO_PIN" \
		    >>"$S/pkcsconf.log" 2>&1 || rc=$?
		[ "$rc" = 0 ] || tok_die "pkcsconf -P (SO PIN) failed with status $rc ($S/pkcsconf.log)"
	fi
	printf '%s\n%s\n' "$2" "$2" | nsx pkcsconf -c 0 -u -S "$3" >>"$S/pkcsconf.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || tok_die "pkcsconf -u (C_InitPIN) failed with status $rc ($S/pkcsconf.log)"
	if grep -q 'Error\|Incorrect' "$S/pkcsconf.log"; then
		cat "$S/pkcsconf.log" >&2
		tok_die "pkcsconf reported an error"
	fi
	flags=$(token_flags)
	case $flags in
	*TOKEN_INITIALIZED*USER_PIN_INITIALIZED* | *USER_PIN_INITIALIZED*TOKEN_INITIALIZED*) ;;
	*) tok_die "token not initialized after pkcsconf: flags $flags" ;;
	esac
	case $flags in
	*PIN_TO_BE_CHANGED* | *LOCKED*) tok_die "unexpected token flags after provisioning: $flags" ;;
	esac
	[ "$(token_label)" = "$1" ] || tok_die "token label is '$(token_label)', not '$1'"
	if command -v p11tool >/dev/null 2>&1; then
		# a user login, as the engine will do it; on an empty token p11tool
		# exits 2 with "No matching objects found" after a good login
		out=$(GNUTLS_PIN=$2 nsx p11tool --provider "$MODULE" --login --list-privkeys \
		    "pkcs11:token=$(tok_pct "$1")" 2>&1) || rc=$?
		printf '%s\n' "$out" >>"$S/pkcsconf.log"
		case $rc:$out in
		0:* | 2:"No matching objects found") ;;
		*) tok_die "user login with the new PIN failed (p11tool: $out)" ;;
		esac
	fi
}

print_env() {	# LABEL
	{
		tok_export MODULE "$MODULE"
		tok_export INIT_ARGS ""
		tok_export TOKEN_URI "pkcs11:token=$(tok_pct "$1")"
		tok_export TOKEN_RUN "$SELF run $DIR --"
	} | tok_publish_env "$S/env"
}

cmd_start() {
	[ $# -eq 4 ] || usage
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/ock
	local label=$2 upin=$3 sopin=$4
	find_module
	check_tools
	tok_check_text LABEL "$label" 1 32
	tok_check_text USER_PIN "$upin" 4 8
	tok_check_text SO_PIN "$sopin" 4 8
	mkdir -p -m 0700 "$S"
	if [ -f "$S/label" ] && [ "$(cat "$S/label")" != "$label" ]; then
		tok_die "$DIR already holds the token '$(cat "$S/label")'; use a fresh DIR"
	fi
	if HOLDER=$(holder_pid) && tok_all_recorded_alive "$S/pids" && [ -f "$S/env" ] &&
	    [ -f "$S/label" ]; then
		cat "$S/env"	# already running: idempotent
		return 0
	fi
	# half-started or stale: stop what is left, then (re)start; the token
	# files in $S/lib are kept, so an existing token survives
	stop_all || tok_die "cannot stop the old processes"
	trap 'tok_note "start failed; stopping what it started"; stop_all || true' EXIT
	start_namespace
	start_slotd
	if [ -f "$S/label" ]; then
		[ "$(token_label)" = "$label" ] || tok_die "the token in $S/lib is not '$label'"
	else
		provision "$label" "$upin" "$sopin"
		echo "$label" >"$S/label"
	fi
	trap - EXIT
	print_env "$label"
}

# every process in our namespace (the holder, pkcsslotd, commands started
# with run and their children), identified by namespace and only while a
# recorded process proves the namespace is still ours
ns_members() {
	local ns p
	HOLDER=$(holder_pid) || return 0
	ns=$(cat "$S/mntns")
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" != "$$" ] || continue
		[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
		tok_alive "$p" && printf '%s %s ns-member\n' "$p" "$(tok_starttime "$p")"
	done
}

stop_all() {
	local f=$S/stop.pids
	# members first (found while the holder still proves the namespace), then
	# anything recorded that is still alive (e.g. pkcsslotd if the holder died)
	ns_members >"$f" || true
	cat "$S/run.pids" "$S/pids" >>"$f" 2>/dev/null || true
	tok_kill_recorded "$f" || return 1
	rm -f "$S/pids" "$S/run.pids" "$S/mntns"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	[ -d "$1" ] || return 0
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/ock
	[ -d "$S" ] || return 0
	stop_all || tok_die "could not stop every process of $DIR"
}

cmd_run() {
	if [ $# -lt 3 ] || [ "$2" != -- ]; then usage; fi
	DIR=$(tok_abs_dir "$1")
	S=$DIR/ock
	shift 2
	[ -f "$S/env" ] || tok_die "no token in $DIR: run start first"
	HOLDER=$(holder_pid) || tok_die "the namespace of $DIR is gone: run start again"
	# shellcheck disable=SC1091
	. "$S/env"
	tok_record "$S/run.pids" "$$" run || true
	exec nsenter --target "$HOLDER" --mount --ipc --wd="$PWD" -- "$@"
}

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
tok_main "$@"
