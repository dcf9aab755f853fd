#!/bin/bash
# tpm2.sh - a throwaway tpm2-pkcs11 token on a software TPM, for tests.
#
#   tpm2.sh start DIR LABEL USER_PIN SO_PIN   prints `export ...` lines to eval
#   tpm2.sh run DIR -- COMMAND [ARG...]       runs COMMAND with the token's env
#   tpm2.sh stop DIR                          stops everything start started
#
# Everything lives under DIR/tpm2 (DIR is the caller's temp dir):
#   state/   swtpm's TPM state (its own EK/SRK seeds; nothing else uses it)
#   store/   the tpm2-pkcs11 store (tpm2_pkcs11.sqlite3), mode 0700
#   bus      a private D-Bus session bus (dbus-daemon --config-file=dbus.conf)
#   *.log    daemon logs; pids = "PID STARTTIME NAME" of every process started
# Daemons: swtpm (TCP, 127.0.0.1 only, on a free port pair P/P+1 as the swtpm
# TCTI requires), dbus-daemon on a unix socket in DIR, tpm2-abrmd --session
# (the resource manager: without one tpm2-pkcs11 runs out of TPM object
# slots, see hsm-profiles/tpm2-pkcs11.conf).  No system bus, no /dev/tpm*, no
# /etc/tpm2_pkcs11 is used.
#
# The token is provisioned with the vendor tool, as a security team would:
#   tpm2_ptool init --path STORE            (persistent primary key in the TPM)
#   tpm2_ptool addtoken --pid N --label LABEL --sopin SO_PIN --userpin USER_PIN
#
# start prints MODULE, INIT_ARGS (empty), TOKEN_URI, TPM2_PKCS11_STORE,
# TPM2_PKCS11_TCTI, TPM2TOOLS_TCTI, DBUS_SESSION_BUS_ADDRESS and TOKEN_RUN
# (a command prefix that runs a command with that environment).  The engine
# process needs TPM2_PKCS11_STORE, TPM2_PKCS11_TCTI and
# DBUS_SESSION_BUS_ADDRESS in its environment.
#
# A resource manager is not optional: straight on swtpm (TCTI swtpm:...)
# `tpm2_ptool addtoken` already fails with "out of memory for object
# contexts" and the module generates one key per C_Initialize.  tpm2-abrmd
# runs with --max-transients=100 (its maximum; default 27): tpm2-pkcs11 1.9
# keeps every key it generated or signed with loaded until C_Logout /
# C_Finalize, so one login can sign with about 100 keys and generate about
# 50 (each generation holds two handles).  TPM2_SH_MAX_TRANSIENTS=N (1..100)
# lowers it, for reproducing the failure.
# Dictionary-attack protection of the throwaway TPM is switched off (swtpm's
# default locks every key for 1000 s after 3 wrong PINs or unorderly stops;
# TPM2_SH_KEEP_DA=1 keeps it), and stop sends TPM2_Shutdown before killing.
# Exit status: 0; 77 if libtpm2-pkcs11-1 is missing and CI is unset; 1 on
# any other problem (message on stderr).
# mkdir -p -m: only the last directory needs the mode (the rest exist)
# shellcheck disable=SC2174
set -eu
TOK_NAME=tpm2.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
	echo "usage: $0 start DIR LABEL USER_PIN SO_PIN | run DIR -- COMMAND... | stop DIR" >&2
	exit 2
}

find_module() {
	MODULE=$(tok_first /usr/lib/*/pkcs11/libtpm2_pkcs11.so /usr/lib/pkcs11/libtpm2_pkcs11.so)
	[ -n "$MODULE" ] || tok_missing_module libtpm2_pkcs11.so libtpm2-pkcs11-1
}

check_tools() {
	local tcti_dir
	tok_need tpm2_ptool libtpm2-pkcs11-tools
	tok_need tpm2_getcap tpm2-tools
	tok_need swtpm swtpm
	tok_need python3 python3
	tcti_dir=$(dirname "$(dirname "$MODULE")")
	[ -e "$tcti_dir/libtss2-tcti-swtpm.so.0" ] ||
		tok_die "$tcti_dir/libtss2-tcti-swtpm.so.0 not found: install the Debian package libtss2-tcti-swtpm0"
	tok_need tpm2-abrmd tpm2-abrmd
	tok_need dbus-daemon dbus-daemon
	tok_need dbus-send dbus-bin
	# not a dependency of tpm2-abrmd in Debian 12, but the client side needs it
	[ -e "$tcti_dir/libtss2-tcti-tabrmd.so.0" ] ||
		tok_die "$tcti_dir/libtss2-tcti-tabrmd.so.0 not found: install the Debian package libtss2-tcti-tabrmd0"
}

# picks P such that P and P+1 are free on 127.0.0.1 (swtpm binds them next;
# a lost race makes swtpm exit 1 and start_swtpm tries another pair)
free_port_pair() {
	python3 - <<'EOF'
import random, socket, sys
for _ in range(500):
    p = random.randint(20000, 60000)
    ok = True
    for q in (p, p + 1):
        s = socket.socket()
        try:
            s.bind(('127.0.0.1', q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        sys.exit(0)
sys.exit("no free port pair on 127.0.0.1")
EOF
}

start_swtpm() {
	local _try port pid
	mkdir -p -m 0700 "$S/state"
	for _try in 1 2 3 4 5 6 7 8; do
		port=$(free_port_pair) || tok_die "cannot find free ports on 127.0.0.1"
		rm -f "$S/swtpm.pid"
		# --daemon returns only after both sockets are bound (exit 1 if a port is taken)
		if swtpm socket --tpm2 --tpmstate "dir=$S/state,mode=0600" \
		    --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		    --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
		    --flags not-need-init,startup-clear \
		    --pid "file=$S/swtpm.pid" --log "file=$S/swtpm.log" \
		    --daemon </dev/null >>"$S/swtpm.log" 2>&1 9>&-; then
			tok_wait 10 test -s "$S/swtpm.pid" || tok_die "swtpm wrote no pid file ($S/swtpm.log)"
			pid=$(cat "$S/swtpm.pid")
			tok_record "$S/pids" "$pid" swtpm || tok_die "swtpm exited at once ($S/swtpm.log)"
			echo "$port" >"$S/port"
			return 0
		fi
	done
	tok_die "swtpm did not start ($S/swtpm.log)"
}

start_dbus() {
	cat >"$S/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- private session bus for one throwaway tpm2-abrmd; only this uid may connect -->
<busconfig>
  <type>session</type>
  <listen>unix:path=$S/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
	rm -f "$S/bus" "$S/dbus.pid"
	# --fork returns once the bus listens; the pid goes to fd 3
	dbus-daemon --config-file="$S/dbus.conf" --fork --nopidfile --print-pid=3 \
	    3>"$S/dbus.pid" </dev/null >>"$S/dbus.log" 2>&1 9>&- || tok_die "dbus-daemon failed ($S/dbus.log)"
	tok_record "$S/pids" "$(cat "$S/dbus.pid")" dbus-daemon || tok_die "dbus-daemon exited at once"
	tok_wait 10 test -S "$S/bus" || tok_die "dbus-daemon did not create $S/bus"
}

abrmd_ready() {
	dbus-send --session --print-reply --reply-timeout=2000 --dest=org.freedesktop.DBus \
	    /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
	    string:com.intel.tss2.Tabrmd 2>/dev/null | grep -q 'boolean true'
}

abrmd_up() {	# ready, or dead (then tok_wait stops polling)
	abrmd_ready || ! tok_alive "$ABRMD_PID"
}

start_abrmd() {
	local pid root_flag=""
	[ "$(id -u)" != 0 ] || root_flag=--allow-root
	tpm2-abrmd --session $root_flag --logger=stdout --max-transients="$MAX_TRANSIENTS" \
	    --tcti="swtpm:host=127.0.0.1,port=$(cat "$S/port")" </dev/null >>"$S/abrmd.log" 2>&1 9>&- &
	pid=$!
	tok_record "$S/pids" "$pid" tpm2-abrmd || tok_die "tpm2-abrmd exited at once ($S/abrmd.log)"
	ABRMD_PID=$pid
	if ! tok_wait 20 abrmd_up || ! abrmd_ready; then
		tail -n 20 "$S/abrmd.log" >&2
		tok_alive "$pid" || tok_die "tpm2-abrmd exited ($S/abrmd.log)"
		tok_die "tpm2-abrmd did not register on the private bus within 20 s"
	fi
}

# swtpm ships with dictionary-attack protection at 3 failures / 1000 s:
# three wrong user PINs (or three unorderly swtpm stops) lock every key of
# every token in this TPM for 17 minutes ("TPM is in DA lockout mode").  For
# a test TPM: clear it and switch it off (recovery time 0), unless
# TPM2_SH_KEEP_DA=1.  Lockout auth is empty on a fresh swtpm.
setup_da() {
	[ -z "${TPM2_SH_KEEP_DA:-}" ] || return 0
	tpm2_dictionarylockout --clear-lockout >>"$S/ptool.log" 2>&1 ||
	    tok_die "tpm2_dictionarylockout --clear-lockout failed ($S/ptool.log)"
	tpm2_dictionarylockout --setup-parameters --max-tries=1000 --recovery-time=0 \
	    --lockout-recovery-time=0 >>"$S/ptool.log" 2>&1 ||
	    tok_die "tpm2_dictionarylockout --setup-parameters failed ($S/ptool.log)"
}

set_env() {
	export DBUS_SESSION_BUS_ADDRESS="unix:path=$S/bus"
	export TPM2_PKCS11_STORE="$S/store"
	export TPM2_PKCS11_TCTI=tabrmd:bus_type=session TPM2TOOLS_TCTI=tabrmd:bus_type=session
}

token_listed() {	# LABEL: is it in the store?
	local pid
	for pid in $(tpm2_ptool listprimaries --path "$S/store" 2>/dev/null | sed -n 's/^[ -]*id: *//p'); do
		tpm2_ptool listtokens --pid "$pid" --path "$S/store" 2>/dev/null |
		    grep -qxF "  label: $1" && return 0
	done
	return 1
}

provision() {	# LABEL USER_PIN SO_PIN
	local out pid
	mkdir -p -m 0700 "$S/store"
	out=$(tpm2_ptool init --path "$S/store" 2>>"$S/ptool.log") ||
	    { tail -n 20 "$S/ptool.log" >&2; tok_die "tpm2_ptool init failed"; }
	pid=$(printf '%s\n' "$out" | sed -n 's/^id: *//p')
	[ -n "$pid" ] || tok_die "tpm2_ptool init printed no primary id: $out"
	tpm2_ptool addtoken --pid "$pid" --label "$1" --userpin "$2" --sopin "$3" \
	    --path "$S/store" >>"$S/ptool.log" 2>&1 ||
	    { tail -n 20 "$S/ptool.log" >&2; tok_die "tpm2_ptool addtoken failed"; }
	tpm2_ptool verify --label "$1" --userpin "$2" --sopin "$3" --path "$S/store" \
	    >>"$S/ptool.log" 2>&1 ||
	    { tail -n 20 "$S/ptool.log" >&2; tok_die "tpm2_ptool verify of the new token failed"; }
	chmod 0600 "$S/store"/* 2>/dev/null || true
}

print_env() {	# LABEL
	{
		tok_export MODULE "$MODULE"
		tok_export INIT_ARGS ""
		tok_export TOKEN_URI "pkcs11:token=$(tok_pct "$1")"
		tok_export TPM2_PKCS11_STORE "$TPM2_PKCS11_STORE"
		tok_export TPM2_PKCS11_TCTI "$TPM2_PKCS11_TCTI"
		tok_export TPM2TOOLS_TCTI "$TPM2TOOLS_TCTI"
		tok_export DBUS_SESSION_BUS_ADDRESS "$DBUS_SESSION_BUS_ADDRESS"
		tok_export TOKEN_RUN "$SELF run $DIR --"
	} | tok_publish_env "$S/env"
}

cmd_start() {
	[ $# -eq 4 ] || usage
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/tpm2
	local label=$2 upin=$3 sopin=$4
	MAX_TRANSIENTS=${TPM2_SH_MAX_TRANSIENTS:-100}
	case $MAX_TRANSIENTS in
	[1-9] | [1-9][0-9] | 100) ;;
	*) tok_die "TPM2_SH_MAX_TRANSIENTS must be 1..100 (tpm2-abrmd's range)" ;;
	esac
	find_module
	check_tools
	tok_check_text LABEL "$label" 1 32
	# tpm2-pkcs11 1.9 reports ulMinPinLen 0, ulMaxPinLen 128
	tok_check_text USER_PIN "$upin" 1 128
	tok_check_text SO_PIN "$sopin" 1 128
	mkdir -p -m 0700 "$S"
	if [ -f "$S/label" ] && [ "$(cat "$S/label")" != "$label" ]; then
		tok_die "$DIR already holds the token '$(cat "$S/label")'; use a fresh DIR"
	fi
	if tok_all_recorded_alive "$S/pids" && [ -f "$S/env" ] && [ -f "$S/label" ]; then
		cat "$S/env"	# already running: idempotent
		return 0
	fi
	# half-started or stale: stop what is left, then (re)start; the TPM state
	# and the store are kept, so an existing token survives
	tok_kill_recorded "$S/pids" || tok_die "cannot stop the old processes"
	trap 'tok_note "start failed; stopping what it started"; tok_kill_recorded "$S/pids" || true' EXIT
	start_swtpm
	set_env
	start_dbus
	start_abrmd
	setup_da
	if [ -f "$S/label" ]; then
		token_listed "$label" || tok_die "the store in $S/store lost token '$label'"
	else
		provision "$label" "$upin" "$sopin"
		echo "$label" >"$S/label"
	fi
	trap - EXIT
	print_env "$label"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	[ -d "$1" ] || return 0
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/tpm2
	[ -d "$S" ] || return 0
	# commands started with `run` first, then an orderly TPM2_Shutdown (an
	# unorderly stop counts as a dictionary-attack failure), then abrmd,
	# dbus, swtpm (reverse order)
	tok_kill_recorded "$S/run.pids" || tok_die "could not stop commands started with run"
	if tok_all_recorded_alive "$S/pids" && [ -f "$S/port" ]; then
		set_env
		timeout 10 tpm2_shutdown >>"$S/ptool.log" 2>&1 || tok_note "tpm2_shutdown failed (ignored)"
	fi
	tok_kill_recorded "$S/pids" || tok_die "could not stop the daemons"
	rm -f "$S/bus" "$S/swtpm.pid" "$S/dbus.pid"
}

cmd_run() {
	if [ $# -lt 3 ] || [ "$2" != -- ]; then usage; fi
	DIR=$(tok_abs_dir "$1")
	S=$DIR/tpm2
	shift 2
	[ -f "$S/env" ] || tok_die "no token in $DIR: run start first"
	tok_all_recorded_alive "$S/pids" || tok_die "the daemons for $DIR are not running: run start again"
	# shellcheck disable=SC1091
	. "$S/env"
	tok_record "$S/run.pids" "$$" run || true
	exec "$@"
}

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
tok_main "$@"
