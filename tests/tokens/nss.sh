#!/bin/bash
# nss.sh - a throwaway NSS softokn token (an NSS sql: database), for tests.
#
#   nss.sh start DIR LABEL USER_PIN SO_PIN   prints `export ...` lines to eval
#   nss.sh run DIR -- COMMAND [ARG...]       runs COMMAND with the token's env
#   nss.sh stop DIR                          stops commands started with run
#
# The token is the key database DIR/nss/db/key4.db (with cert9.db and
# pkcs11.txt beside it), created with the vendor tool, as a security team
# would:
#   certutil -N -d sql:DIR/nss/db -f PINFILE     (PINFILE: the user PIN, mode 0600)
# softokn has no daemon and no global state: everything is in that
# directory, which the module only finds through C_Initialize's
# CK_C_INITIALIZE_ARGS.pReserved string (without it C_Initialize returns
# CKR_ARGUMENTS_BAD; with a missing directory, vendor code 0xce534351).
# start exports it as INIT_ARGS:
#   configdir='sql:DIR/nss/db' certPrefix='' keyPrefix='' secmod='secmod.db'
#   dbTokenDescription='LABEL'
# dbTokenDescription names the key-database token (slot "NSS User Private
# Key and Certificate Services"); without it the token is "NSS Certificate
# DB".  The label lives only in that string, not in the database: certutil
# and modutil still show "NSS Certificate DB".  The other slot, "NSS
# Internal Cryptographic Services" / token "NSS Generic Crypto Services",
# has no login and no persistent objects.
#
# NSS has no SO PIN: SO_PIN is accepted for the common interface and
# ignored (C_InitToken takes any SO PIN and wipes the database; afterwards
# only C_Login(CKU_SO) with an EMPTY PIN works, to set the user PIN).
#
# start prints MODULE, INIT_ARGS, TOKEN_URI and TOKEN_RUN.
# Exit status: 0; 77 if libnss3 is missing and CI is unset; 1 on any other
# problem (message on stderr).
# mkdir -p -m: only the last directory needs the mode (the rest exist)
# shellcheck disable=SC2174
set -eu
TOK_NAME=nss.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
	echo "usage: $0 start DIR LABEL USER_PIN SO_PIN | run DIR -- COMMAND... | stop DIR" >&2
	exit 2
}

find_module() {
	MODULE=$(tok_first /usr/lib/*/libsoftokn3.so /usr/lib/*/nss/libsoftokn3.so)
	[ -n "$MODULE" ] || tok_missing_module libsoftokn3.so libnss3
}

provision() {	# USER_PIN
	local out
	mkdir -p -m 0700 "$S/db"
	(umask 077 && printf '%s\n' "$1" >"$S/pin")
	certutil -N -d "sql:$S/db" -f "$S/pin" >>"$S/certutil.log" 2>&1 ||
	    { tail -n 20 "$S/certutil.log" >&2; tok_die "certutil -N failed"; }
	# a login with the new PIN: "no keys found" (status 255) means it worked
	out=$(certutil -K -d "sql:$S/db" -f "$S/pin" 2>&1) || true
	printf '%s\n' "$out" >>"$S/certutil.log"
	case $out in
	*"no keys found"*) ;;
	*) tok_die "login with the new PIN failed: $out" ;;
	esac
	rm -f "$S/pin"
}

print_env() {	# LABEL
	{
		tok_export MODULE "$MODULE"
		tok_export INIT_ARGS "configdir='sql:$S/db' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='$1'"
		tok_export TOKEN_URI "pkcs11:token=$(tok_pct "$1")"
		tok_export TOKEN_RUN "$SELF run $DIR --"
	} | tok_publish_env "$S/env"
}

cmd_start() {
	[ $# -eq 4 ] || usage
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/nss
	local label=$2 upin=$3
	find_module
	tok_need certutil libnss3-tools
	tok_check_text LABEL "$label" 1 32
	case $label in
	*[\'\"\\]*) tok_die "LABEL must not contain quotes or backslashes (it goes into the NSS parameter string)" ;;
	esac
	# softokn reports ulMinPinLen 0, ulMaxPinLen 500; an empty PIN means "no
	# login required", which the engine does not expect
	tok_check_text USER_PIN "$upin" 1 500
	mkdir -p -m 0700 "$S"
	if [ -f "$S/label" ]; then
		[ "$(cat "$S/label")" = "$label" ] ||
			tok_die "$DIR already holds the token '$(cat "$S/label")'; use a fresh DIR"
		[ -f "$S/db/key4.db" ] || tok_die "$S/db/key4.db is gone"
	else
		[ ! -e "$S/db/key4.db" ] || tok_die "$S/db already holds a key database; use a fresh DIR"
		provision "$upin"
		echo "$label" >"$S/label"
	fi
	print_env "$label"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	[ -d "$1" ] || return 0
	DIR=$(tok_abs_dir "$1")
	tok_lock "$DIR"
	S=$DIR/nss
	[ -d "$S" ] || return 0
	tok_kill_recorded "$S/run.pids" || tok_die "could not stop commands started with run"
}

cmd_run() {
	if [ $# -lt 3 ] || [ "$2" != -- ]; then usage; fi
	DIR=$(tok_abs_dir "$1")
	S=$DIR/nss
	shift 2
	[ -f "$S/env" ] || tok_die "no token in $DIR: run start first"
	# shellcheck disable=SC1091
	. "$S/env"
	tok_record "$S/run.pids" "$$" run || true
	exec "$@"
}

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
tok_main "$@"
