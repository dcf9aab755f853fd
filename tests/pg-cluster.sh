#!/bin/sh
# pg-cluster.sh - a throwaway PostgreSQL cluster for the tests (issue 13):
# Debian's postgresql package, initdb + pg_ctl in a directory of the
# caller's, never a mock and never the system cluster.
#
#   pg-cluster.sh start DIR    initdb DIR/data, start the server; prints the
#                              conninfo on stdout (libpq key=value)
#   pg-cluster.sh stop DIR     stop it (fast, then immediate); DIR is left
#                              for the caller to remove
#   pg-cluster.sh restart DIR  pg_ctl restart -m fast, waits until it is up
#   pg-cluster.sh crash DIR    pg_ctl restart -m immediate: the server stops
#                              without a shutdown checkpoint, as after a crash,
#                              and recovers from its WAL at start; waits
#                              until it is up
#   pg-cluster.sh standby PRIMARY DIR
#                              a streaming standby of the cluster in PRIMARY
#                              (pg_basebackup -R), started; prints its conninfo
#   pg-cluster.sh promote DIR  the standby in DIR becomes a primary (failover)
#   pg-cluster.sh halt DIR     stop the server, keep the cluster (a database
#                              that is down)
#   pg-cluster.sh resume DIR   start it again (nothing to do if it runs)
#   pg-cluster.sh bindir       prints the directory of initdb/pg_ctl
#
# The PostgreSQL programs are found with `pg_config --bindir`, else in the
# newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH), or exactly
# where TCA_PG_BINDIR says (no search then).
#
# The server listens on no TCP address (listen_addresses = ''): its Unix
# socket is DIR/.s.PGSQL.5432, trust authentication for that socket only.
# PostgreSQL refuses to run as root, so as root initdb and pg_ctl run as the
# `postgres` system user (made by the Debian package) through setpriv, and DIR
# is handed to that user.  Durability settings are relaxed (fsync = off):
# a crash of the host is not what these tests test; a server killed or
# restarted still loses nothing committed (the page cache keeps it).
#
# Exit 77 when the PostgreSQL programs are absent (skip), except under CI
# (CI set), where that is a failure (exit 1): CI installs them
# (tools/install-deps.sh).  The server's log is DIR/server.log.
set -eu

die() {
	echo "pg-cluster.sh: $*" >&2
	exit 1
}

find_bindir() {
	d=""
	if [ -n "${TCA_PG_BINDIR:-}" ]; then
		# given: used as it is, no search
		[ -x "$TCA_PG_BINDIR/initdb" ] && [ -x "$TCA_PG_BINDIR/pg_ctl" ] &&
			d=$TCA_PG_BINDIR
	elif command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
	fi
	if [ -z "${TCA_PG_BINDIR:-}" ] &&
	    { [ -z "$d" ] || [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; }; then
		d=""
		# the newest installed major version
		for c in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
			[ -x "$c/initdb" ] && [ -x "$c/pg_ctl" ] && d=$c
		done
	fi
	if [ -z "$d" ]; then
		if [ -n "${CI:-}" ]; then
			echo "pg-cluster.sh: PostgreSQL (initdb, pg_ctl) is missing (CI: failing, not skipping); tools/install-deps.sh installs it" >&2
			exit 1
		fi
		echo "SKIP: PostgreSQL server programs not found (apt-get install postgresql)" >&2
		exit 77
	fi
	echo "$d"
}

# runs "$@" as the cluster's owner: ourselves, or postgres when root
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		"$@"
	fi
}

[ $# -ge 1 ] || die "usage: pg-cluster.sh start|stop|restart|crash|halt|resume|promote DIR, standby PRIMARY DIR, or bindir"
cmd=$1
if [ "$cmd" = bindir ]; then
	find_bindir
	exit 0
fi
primary=""
if [ "$cmd" = standby ]; then
	[ $# -eq 3 ] || die "usage: pg-cluster.sh standby PRIMARY DIR"
	primary=$2
	shift
fi
[ $# -eq 2 ] || die "usage: pg-cluster.sh $cmd DIR"
dir=$2
case "$dir" in
/*) ;;
*) die "DIR must be absolute: $dir" ;;
esac
# nothing to stop where no cluster was made (and no programs needed for it)
[ "$cmd" = stop ] && [ ! -d "$dir/data" ] && exit 0
bindir=$(find_bindir) || exit $?

case "$cmd" in
start)
	[ -d "$dir" ] || mkdir -p "$dir"
	[ ! -e "$dir/data" ] || die "$dir/data exists already: a cluster is there"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 ||
			die "running as root and there is no postgres user (the postgresql package makes it)"
		chown postgres:postgres "$dir"
	fi
	chmod 0700 "$dir"
	if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust \
	    -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed in $dir/data"
	fi
	cat >>"$dir/data/postgresql.conf" <<EOF
# pg-cluster.sh: a throwaway test cluster
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
EOF
	printf 'local all all trust\nlocal replication all trust\n' >"$dir/data/pg_hba.conf"
	if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
	    -w -t 60 start >/dev/null 2>&1; then
		tail -n 30 "$dir/server.log" >&2 2>/dev/null || true
		die "pg_ctl start failed (log: $dir/server.log)"
	fi
	echo "host=$dir port=5432 dbname=postgres user=postgres"
	;;
stop)
	if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 \
	    stop >/dev/null 2>&1; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 \
		    stop >/dev/null 2>&1 || true
	fi
	;;
standby)
	[ -d "$dir" ] || mkdir -p "$dir"
	[ ! -e "$dir/data" ] || die "$dir/data exists already: a cluster is there"
	[ "$(id -u)" != 0 ] || chown postgres:postgres "$dir"
	chmod 0700 "$dir"
	if ! as_owner "$bindir/pg_basebackup" -h "$primary" -p 5432 -U postgres \
	    -D "$dir/data" -R -X stream --checkpoint=fast --no-sync \
	    >"$dir/basebackup.log" 2>&1; then
		cat "$dir/basebackup.log" >&2
		die "pg_basebackup from $primary failed"
	fi
	# later lines win: its own socket, not the primary's
	printf "unix_socket_directories = '%s'\n" "$dir" >>"$dir/data/postgresql.conf"
	if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
	    -w -t 60 start >/dev/null 2>&1; then
		tail -n 30 "$dir/server.log" >&2 2>/dev/null || true
		die "pg_ctl start of the standby failed (log: $dir/server.log)"
	fi
	echo "host=$dir port=5432 dbname=postgres user=postgres"
	;;
promote)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null 2>&1 ||
		die "pg_ctl promote failed (log: $dir/server.log)"
	;;
halt)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
		die "pg_ctl stop failed (log: $dir/server.log)"
	;;
resume)
	as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && exit 0
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	    start >/dev/null 2>&1 || die "pg_ctl start failed (log: $dir/server.log)"
	;;
restart)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
	    -m fast -w -t 60 restart >/dev/null 2>&1 ||
		die "pg_ctl restart failed (log: $dir/server.log)"
	;;
crash)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
	    -m immediate -w -t 60 restart >/dev/null 2>&1 ||
		die "pg_ctl restart -m immediate failed (log: $dir/server.log)"
	;;
*)
	die "unknown command $cmd: start|stop|restart|crash|halt|resume|promote DIR, standby PRIMARY DIR, or bindir"
	;;
esac
