# pg-nodes.sh - shared by the script tests of engines on a PostgreSQL store
# (issue 13): a throwaway PostgreSQL cluster (tests/pg-cluster.sh) holding
# the database "tca", and up to a few engines ("nodes") on one SoftHSMv2
# token and that database, each with its own configuration, socket and log
# in $WORK.  Sourced after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/pg-nodes.sh"
#
# Variables it sets: PGSH (pg-cluster.sh), PGDIR (the cluster's directory,
# $WORK/pg), conninfo (the cluster's, dbname=postgres), DB (the conninfo of
# the database "tca"), PG_NODES (how many nodes pg_node_configs wrote),
# PIDS (PIDS[i]: node i's pid while it runs, "" otherwise), CPIDS=() and
# CPID= (a script that runs clients in the background keeps their pids in
# the array CPIDS or in CPID: cleanup_all kills them too).
#
# PG_FAIL names the function called when a step here fails: "fail" (exit 1,
# the default) or a script's own, e.g. "hard" in a script whose exit 1 means
# "the bug this test shows" and whose other failures exit 99.  The steps
# here check every command themselves: a script's ERR trap does not reach
# into functions (bash without errtrace).
#
# Sourcing it requires softhsm2-util and psql (lib.sh's require_tool: a
# skip outside CI when absent); a script requires the other tools it uses.
# shellcheck shell=bash

require_tool softhsm2-util
require_tool psql
PGSH="$TCA_SRCDIR/tests/pg-cluster.sh"
PG_NODES=0
PIDS=("")
CPIDS=()
CPID=
: "${PG_FAIL:=fail}"

# pg_start [DATABASE...]: tca_setup, cleanup_all on exit, then the cluster
# in $PGDIR with the database "tca" (and each DATABASE named) created; sets
# conninfo and DB.  Exits 77 (skip) when the PostgreSQL programs are absent
# outside CI (pg-cluster.sh decides); any other failure goes to $PG_FAIL.
pg_start() {
	local rc=0 db
	tca_setup
	PGDIR="$WORK/pg"
	trap cleanup_all EXIT
	mkdir -p "$PGDIR" || "$PG_FAIL" "mkdir $PGDIR"
	conninfo=$("$PGSH" start "$PGDIR") || rc=$?
	[ "$rc" != 77 ] || exit 77
	[ "$rc" = 0 ] || "$PG_FAIL" "pg-cluster.sh start $PGDIR: exit $rc"
	for db in tca "$@"; do
		psql "$conninfo" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null ||
			"$PG_FAIL" "CREATE DATABASE $db"
	done
	DB=$(pg_db tca)
}

# pg_db NAME: the conninfo of database NAME on the cluster
pg_db() {
	echo "${conninfo/dbname=postgres/dbname=$1}"
}

# sql STATEMENT: run on the database "tca", rows unaligned (psql -At);
# fails when the statement fails
sql() {
	psql "$DB" -At -v ON_ERROR_STOP=1 -c "$1"
}

# pg_token_init LABEL: a fresh token LABEL with the PINs of $WORK
pg_token_init() {
	"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" --label "$1" \
		--so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin" >/dev/null ||
		"$PG_FAIL" "token init $1"
}

# pg_node_configs N LABEL [LINE...]: $WORK/node1.conf .. nodeN.conf, each
# tca_write_config's for token LABEL on the database "tca" with its own
# socket ($WORK/node$i.sock) and every LINE appended; mode 0600 (a script
# may append more to one of them afterwards).  Leaves $WORK/engine.conf.
pg_node_configs() {
	local n=$1 label=$2 i
	shift 2
	TCA_STORE_URI="$DB" tca_write_config "$label" || "$PG_FAIL" "tca_write_config $label"
	for i in $(seq 1 "$n"); do
		if ! {
			sed -e "s|^socket.path = .*|socket.path = $WORK/node$i.sock|" \
				"$WORK/engine.conf" && { [ $# = 0 ] || printf '%s\n' "$@"; }
		} >"$WORK/node$i.conf" || ! chmod 0600 "$WORK/node$i.conf"; then
			"$PG_FAIL" "cannot write $WORK/node$i.conf"
		fi
		PIDS[i]=
	done
	PG_NODES=$n
}

# start_node N: tca-engined with node N's configuration in the background
# (stderr to $WORK/nodeN.log), its pid in PIDS[N]; returns once its socket
# exists (bounded: 20 s); $PG_FAIL if it exits before or never opens it
start_node() {
	"$ENGINED" --config "$WORK/node$1.conf" 2>>"$WORK/node$1.log" &
	PIDS[$1]=$!
	for _ in $(seq 1 400); do
		[ -S "$WORK/node$1.sock" ] && return 0
		kill -0 "${PIDS[$1]}" 2>/dev/null || "$PG_FAIL" "node$1 exited during start-up"
		sleep 0.05
	done
	"$PG_FAIL" "node$1 did not open its socket"
}

# cleanup_all: the EXIT trap pg_start sets - kills the clients (CPIDS,
# CPID) and the nodes still running (kill -9), stops the cluster, then
# tca_cleanup (the engine of tca_start_engine, $WORK)
cleanup_all() {
	local i
	for i in "${CPIDS[@]}" ${CPID:+"$CPID"}; do
		kill -KILL "$i" 2>/dev/null || true
	done
	for i in $(seq 1 "$PG_NODES"); do
		if [ -n "${PIDS[$i]}" ] && kill -0 "${PIDS[$i]}" 2>/dev/null; then
			kill -KILL "${PIDS[$i]}" 2>/dev/null || true
			wait "${PIDS[$i]}" 2>/dev/null || true
		fi
	done
	"$PGSH" stop "$PGDIR" >/dev/null 2>&1 || true
	tca_cleanup
}

# pg_log_tails NODE_LINES ENGINE_LINES: on stderr, the last NODE_LINES of
# each node's log (headed "--- nodeN") and the last ENGINE_LINES of
# $WORK/engine.log (tca_start_engine's), those that exist
pg_log_tails() {
	local i
	for i in $(seq 1 "$PG_NODES"); do
		[ -f "$WORK/node$i.log" ] && { echo "--- node$i" >&2; tail -n "$1" "$WORK/node$i.log" >&2; }
	done
	[ ! -f "$WORK/engine.log" ] || tail -n "$2" "$WORK/engine.log" >&2
}

# fail MESSAGE: replaces lib.sh's - FAIL, the logs' tails (15 lines a node;
# 30 of engine.log, as lib.sh), exit 1
fail() {
	echo "FAIL: $*" >&2
	pg_log_tails 15 30
	exit 1
}
