# common.sh - shared by tests/tokens/{opencryptoki,tpm2,nss}.sh (sourced, not run).
#
# Each of those scripts builds a throwaway PKCS#11 token under a caller-owned
# temporary directory DIR, starts the daemons the module needs, and prints
# `export NAME='value'` lines for the caller to eval.  Every process a script
# starts is recorded in DIR as "PID STARTTIME NAME" (STARTTIME is field 22 of
# /proc/PID/stat), so `stop` only ever signals those exact processes, never a
# recycled PID and never anything found by name.
# shellcheck shell=bash disable=SC2174

: "${TOK_NAME:=tokens}"

tok_die() {
	printf '%s: error: %s\n' "$TOK_NAME" "$*" >&2
	exit 1
}

tok_note() {
	printf '%s: %s\n' "$TOK_NAME" "$*" >&2
}

# The module's own package is missing: skip the test (77), unless CI is set.
tok_missing_module() {	# PATH PACKAGE
	if [ -n "${CI:-}" ]; then
		tok_die "$1 not found: install the Debian package $2 (CI is set: failing, not skipping)"
	fi
	printf '%s: SKIP: %s not found: install the Debian package %s\n' "$TOK_NAME" "$1" "$2" >&2
	exit 77
}

# Any other missing program or file: always a failure.
tok_need() {	# COMMAND-or-/ABS/PATH PACKAGE
	case $1 in
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac || tok_die "$1 not found: install the Debian package $2"
}

# First existing path among the arguments (globs already expanded), or "".
tok_first() {
	local p
	for p in "$@"; do
		if [ -e "$p" ]; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 0
}

tok_q() {	# single-quote for sh
	local s=$1
	printf "'%s'" "${s//\'/\'\\\'\'}"
}

tok_export() {	# NAME VALUE
	printf 'export %s=%s\n' "$1" "$(tok_q "$2")"
}

# Percent-encodes a PKCS#11 URI attribute value (RFC 7512): everything but
# unreserved characters.
tok_pct() {
	local LC_ALL=C s=$1 out="" c
	while [ -n "$s" ]; do
		c=${s:0:1}
		s=${s:1}
		case $c in
		[A-Za-z0-9._~-]) out=$out$c ;;
		*) out=$out$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s\n' "$out"
}

tok_abs_dir() {	# DIR -> absolute path, created (0700) if missing
	local d=$1
	[ -n "$d" ] || tok_die "no directory given"
	case $d in
	*$'\n'* | *' '*) tok_die "directory '$d' contains blanks; use a plain temp dir" ;;
	esac
	if [ ! -d "$d" ]; then
		mkdir -p -m 0700 "$d" || tok_die "cannot create $d"
	fi
	(cd "$d" && pwd -P)
}

tok_check_text() {	# WHAT VALUE MIN MAX : length in bytes, no newline
	local LC_ALL=C n=${#2}
	case $2 in
	*$'\n'*) tok_die "$1 contains a newline" ;;
	esac
	if [ "$n" -lt "$3" ] || [ "$n" -gt "$4" ]; then
		tok_die "$1 must be $3..$4 characters for this module, got $n"
	fi
}

# Serialises start/stop on one DIR (flock on DIR/.tokens.lock, 60 s at most).
tok_lock() {	# DIR
	exec 9>>"$1/.tokens.lock"
	flock -w 60 9 || tok_die "$1 is locked by another start/stop for over 60 s"
}

# ------------------------------------------------------------ processes

tok_starttime() {	# PID -> starttime, or fails if gone
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	# after "pid (comm) ": $1 is field 3 (state), ${20} is field 22 (starttime)
	# shellcheck disable=SC2086 # numbers and one state letter: split on purpose
	set -- $s
	[ "$1" != Z ] && [ "$1" != X ] || return 1
	printf '%s\n' "${20}"
}

tok_alive() {	# PID [STARTTIME]: running (not a zombie) and, if given, the same process
	local st
	st=$(tok_starttime "$1") || return 1
	[ -z "${2:-}" ] || [ "$st" = "$2" ]
}

tok_record() {	# PIDFILE PID NAME
	local st
	st=$(tok_starttime "$2") || return 1
	printf '%s %s %s\n' "$2" "$st" "$3" >>"$1"
}

# Polls CMD every 50 ms for at most SECONDS; returns its last status.
tok_wait() {	# SECONDS CMD...
	local i n=$(( $1 * 20 ))
	shift
	for (( i = 0; i < n; i++ )); do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

tok_none_alive() {	# PID STARTTIME pairs
	while [ $# -ge 2 ]; do
		tok_alive "$1" "$2" && return 1
		shift 2
	done
	return 0
}

# Sends TERM to the recorded processes still alive (last recorded first),
# waits up to 10 s, then KILLs what is left and waits 5 s more.
tok_kill_recorded() {	# PIDFILE
	local f=$1 pairs=() pid st _name
	[ -f "$f" ] || return 0
	while read -r pid st _name; do
		[ -n "$pid" ] || continue
		if tok_alive "$pid" "$st"; then
			pairs=("$pid" "$st" "${pairs[@]}")
		fi
	done <"$f"
	[ ${#pairs[@]} -gt 0 ] || { rm -f "$f"; return 0; }
	tok_signal TERM "${pairs[@]}"
	if ! tok_wait 10 tok_none_alive "${pairs[@]}"; then
		tok_signal KILL "${pairs[@]}"
		tok_wait 5 tok_none_alive "${pairs[@]}" || {
			tok_note "processes still alive after SIGKILL: ${pairs[*]}"
			return 1
		}
	fi
	rm -f "$f"
}

tok_signal() {	# SIG PID STARTTIME...
	local sig=$1
	shift
	while [ $# -ge 2 ]; do
		if tok_alive "$1" "$2"; then
			kill "-$sig" "$1" 2>/dev/null || true
		fi
		shift 2
	done
}

tok_all_recorded_alive() {	# PIDFILE: every recorded process is alive
	local pid st _name n=0
	[ -f "$1" ] || return 1
	while read -r pid st _name; do
		[ -n "$pid" ] || continue
		tok_alive "$pid" "$st" || return 1
		n=$((n + 1))
	done <"$1"
	[ "$n" -gt 0 ]
}

# Writes the export lines on stdin to FILE atomically (what `run` sources),
# then prints them for `start`'s caller to eval.
tok_publish_env() {	# FILE
	cat >"$1.new"
	mv "$1.new" "$1"
	cat "$1"
}

# The subcommands every token script has: cmd_start, cmd_stop, cmd_run.
tok_main() {
	[ $# -ge 1 ] || usage
	local cmd=$1
	shift
	case $cmd in
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	run) cmd_run "$@" ;;
	*) usage ;;
	esac
}
