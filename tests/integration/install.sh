#!/usr/bin/env bash
# install.sh - the installed service (issue 11): `make install` into a staging
# directory, then
#  - the staged layout: programs, man pages, the sample engine.conf, the
#    hsm-profiles under datadir with an empty override directory under
#    sysconfdir, systemd units, sysusers.d and tmpfiles.d entries;
#  - `systemd-analyze verify` on the installed units (no systemd needs to run);
#  - every man page is clean for `man --warnings` and lists every option the
#    program's --help prints; the sample engine.conf and engine.conf(5) name
#    exactly the keys docs/configuration.md documents, and the engine knows
#    each of them;
#  - the *installed* engine, configured from the installed sample, started and
#    used through the installed ca-admin and tca-client (status, ca create,
#    issue), with an hsm-profile by name from the installed profiles;
#  - socket activation as systemd does it (tests/sd-launch: LISTEN_FDS,
#    LISTEN_PID, NOTIFY_SOCKET, WATCHDOG_USEC): READY=1 and WATCHDOG=1 seen,
#    the socket systemd holds survives the engine's stop; a passed socket
#    that is not socket.path, has mode 0666 or comes twice is refused; the
#    same through systemd's own systemd-socket-activate; where the kernel has
#    PR_SET_MDWE, under MemoryDenyWriteExecute's rule (no W+X mappings).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq
require_tool systemd-analyze
require_tool man
require_tool systemd-socket-activate
SD_LAUNCH="$TCA_BUILDDIR/tests/sd-launch"
MAKE_CMD=${MAKE:-make}

tca_setup
STAGE="$WORK/stage"

# ---------------------------------------------------------------- install
"$MAKE_CMD" -s -C "$TCA_BUILDDIR" install DESTDIR="$STAGE" >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log" >&2; fail "make install DESTDIR=$STAGE failed"; }
# the directories configure chose, as the installed engine prints them
find_one() { # name: the single installed regular file called name
	local f
	f=$(find "$STAGE" -name "$1" -type f)
	[ -n "$f" ] && [ "$(printf '%s\n' "$f" | wc -l)" = 1 ] || fail "installed $1: found '${f}'"
	printf '%s\n' "$f"
}
I_ENGINED=$(find_one tca-engined)
I_CA_ADMIN=$(find_one ca-admin)
I_TCA_CLIENT=$(find_one tca-client)
I_ESTD=$(find_one tca-estd)
I_TOKEND=$(find_one tca-tokend)
I_LIBDIR=$(dirname "$(find_one 'libtca-client.so.*')")
export LD_LIBRARY_PATH="$I_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# the installed programs must not run the build tree's library
ldd "$I_CA_ADMIN" >"$WORK/ldd.out" 2>&1 || true
grep -q "$I_LIBDIR/libtca-client" "$WORK/ldd.out" || { cat "$WORK/ldd.out" >&2; fail "installed ca-admin does not use the installed libtca-client"; }

"$I_ENGINED" --help >"$WORK/engined.help"
dirs=$(sed -n 's/^hsm-profiles by name: \(.*\), then \(.*\)\.$/\1 \2/p' "$WORK/engined.help")
read -r ETC_PROFILES DATA_PROFILES <<<"$dirs"
[ -n "${DATA_PROFILES:-}" ] || fail "tca-engined --help names no hsm-profile directories"
SYSCONFDIR=${ETC_PROFILES%/tca/hsm-profiles}
for p in "$TCA_SRCDIR"/hsm-profiles/*.conf; do
	cmp -s "$p" "$STAGE$DATA_PROFILES/$(basename "$p")" ||
		fail "hsm-profile $(basename "$p") is not installed in $DATA_PROFILES"
done
[ -d "$STAGE$ETC_PROFILES" ] || fail "the override directory $ETC_PROFILES is not installed"
[ -z "$(ls -A "$STAGE$ETC_PROFILES")" ] || fail "$ETC_PROFILES is not empty after install"
SAMPLE="$STAGE$SYSCONFDIR/tca/engine.conf.sample"
[ -f "$SAMPLE" ] || fail "no sample configuration at $SYSCONFDIR/tca/engine.conf.sample"
grep -q "^token.pin_file = $SYSCONFDIR/tca/user.pin\$" "$SAMPLE" ||
	fail "the sample's token.pin_file is not under the installed sysconfdir $SYSCONFDIR"
grep -q "^#token.helper = ${I_TOKEND#"$STAGE"}\$" "$SAMPLE" ||
	fail "the sample's token.helper is not where tca-tokend was installed (${I_TOKEND#"$STAGE"})"
for m in man1/tca-client.1 man5/engine.conf.5 man8/tca-engined.8 man8/ca-admin.8 man8/tca-estd.8; do
	[ "$(find "$STAGE" -path "*/man/$m" -type f | wc -l)" = 1 ] || fail "man page $m not installed"
done
U_SERVICE=$(find_one tca-engined.service)
U_SOCKET=$(find_one tca-engined.socket)
U_ESTD=$(find_one tca-estd.service)
SYSUSERS=$(find "$STAGE" -path '*/sysusers.d/tca.conf' -type f)
TMPFILES=$(find "$STAGE" -path '*/tmpfiles.d/tca.conf' -type f)
[ -n "$SYSUSERS" ] && [ -n "$TMPFILES" ] || fail "sysusers.d or tmpfiles.d entry not installed"
grep -q '^u tca ' "$SYSUSERS" || fail "sysusers.d does not create the user tca"
grep -q '^d /var/lib/tca 0700 tca tca' "$TMPFILES" || fail "tmpfiles.d does not make /var/lib/tca"
grep -q '^d /run/tca 0755 tca tca' "$TMPFILES" || fail "tmpfiles.d does not make /run/tca"
grep -qx "ExecStart=${I_ENGINED#"$STAGE"} --config $SYSCONFDIR/tca/engine.conf" "$U_SERVICE" ||
	fail "tca-engined.service does not start the installed engine with $SYSCONFDIR/tca/engine.conf"
grep -q "ExecStart=${I_ESTD#"$STAGE"} " "$U_ESTD" || fail "tca-estd.service does not start the installed tca-estd"
for d in Type=notify User=tca NoNewPrivileges=yes ProtectSystem=strict RestrictAddressFamilies=AF_UNIX \
	MemoryDenyWriteExecute=yes WatchdogSec=30s CapabilityBoundingSet= UMask=0077 StateDirectory=tca \
	RuntimeDirectory=tca LockPersonality=yes SystemCallFilter=@system-service PrivateTmp=yes \
	ProtectHome=yes ProtectKernelTunables=yes ProtectKernelModules=yes; do
	grep -qx "$d" "$U_SERVICE" || fail "tca-engined.service lacks $d"
done
SOCK_PATH=$(sed -n 's/^ListenStream=//p' "$U_SOCKET")
grep -qx "socket.path = $SOCK_PATH" "$SAMPLE" || fail "the sample's socket.path is not the socket unit's $SOCK_PATH"

# ------------------------------------------------------ systemd-analyze
# verify loads the units from a copy whose programs point into the stage
# (it checks that ExecStart= is executable); nothing needs systemd running.
mkdir "$WORK/units"
prefix_root=$(dirname "$(dirname "${I_ENGINED#"$STAGE"}")")
for u in "$U_SERVICE" "$U_SOCKET" "$U_ESTD"; do
	sed "s|=$prefix_root/|=$STAGE$prefix_root/|" "$u" >"$WORK/units/$(basename "$u")"
done
verify() {
	(cd "$WORK/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$@")
}
verify tca-engined.socket tca-engined.service tca-estd.service >"$WORK/verify.out" 2>&1 ||
	{ cat "$WORK/verify.out" >&2; fail "systemd-analyze verify failed on the installed units"; }
[ ! -s "$WORK/verify.out" ] || { cat "$WORK/verify.out" >&2; fail "systemd-analyze verify warned"; }
# and it does catch a broken unit
sed 's/^ProtectSystem=strict/ProtectSystem=strikt/' "$WORK/units/tca-engined.service" >"$WORK/units/broken.service"
verify broken.service >"$WORK/verify.out" 2>&1 || true
grep -q "broken.service:[0-9]*: Failed to parse protect system value" "$WORK/verify.out" ||
	fail "systemd-analyze verify did not notice a bad ProtectSystem= (the check above relies on its output)"
rm "$WORK/units/broken.service"
if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
	(cd "$WORK/units" && systemd-analyze security --offline=yes tca-engined.service) >"$WORK/security.out" 2>&1 || true
	grep -q "Overall exposure level for tca-engined.service: [0-2]\.[0-9] OK" "$WORK/security.out" ||
		{ tail -n 3 "$WORK/security.out" >&2; fail "systemd-analyze security: exposure above 2.9"; }
	sed -n 's/^.*Overall exposure level/exposure level/p' "$WORK/security.out"
fi

# ------------------------------------------------------------- man pages
# the installed page: a staging prefix makes long paths, so a wide page
man_warnings() {
	LC_ALL=C.UTF-8 MANWIDTH=400 man --warnings -l "$1" 2>"$WORK/manwarn" >/dev/null || true
	[ ! -s "$WORK/manwarn" ] || { cat "$WORK/manwarn" >&2; fail "man --warnings: $(basename "$1")"; }
	! grep -n '@[a-zA-Z_]*@' "$1" >&2 || fail "$(basename "$1"): a placeholder was not filled in"
}
# and every page as a --prefix=/usr --sysconfdir=/etc build has it, 80 wide
for src in "$TCA_SRCDIR"/man/*.in; do
	sed -e 's|@sysconfdir@|/etc|g; s|@datadir@|/usr/share|g; s|@docdir@|/usr/share/doc/tca|g' \
	    -e 's|@systemdsystemunitdir@|/lib/systemd/system|g; s|@sysusersdir@|/usr/lib/sysusers.d|g' \
	    -e 's|@tmpfilesdir@|/usr/lib/tmpfiles.d|g; s|@PACKAGE_VERSION@|0.1.0|g' \
	    -e 's|@sbindir@|/usr/sbin|g; s|@bindir@|/usr/bin|g' "$src" >"$WORK/page"
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$WORK/page" 2>"$WORK/manwarn" >/dev/null || true
	[ ! -s "$WORK/manwarn" ] || { cat "$WORK/manwarn" >&2; fail "man --warnings at 80 columns: $(basename "$src")"; }
done
man_text() { MANWIDTH=200 man -l "$1" 2>/dev/null | sed 's/.\x08//g'; }
check_man() { # page help-command...
	local page=$1 opt
	shift
	man_warnings "$page"
	man_text "$page" >"$WORK/man.txt"
	"$@" >"$WORK/help.txt" 2>&1 || true
	for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' "$WORK/help.txt" | sort -u); do
		grep -qF -- "$opt" "$WORK/man.txt" ||
			fail "$(basename "$page") does not document $opt (printed by: $*)"
	done
}
MANDIR=$(dirname "$(dirname "$(find "$STAGE" -path '*/man8/tca-engined.8')")")
check_man "$MANDIR/man8/tca-engined.8" "$I_ENGINED" --help
check_man "$MANDIR/man8/tca-estd.8" "$I_ESTD" --help
for c in "" issue reenroll cacerts status crl ocsp csrattrs; do
	# shellcheck disable=SC2086
	check_man "$MANDIR/man1/tca-client.1" "$I_TCA_CLIENT" $c --help
done
for c in "" ca cert device policy crl journal store "token init" hsm-check status reload ops; do
	# shellcheck disable=SC2086
	check_man "$MANDIR/man8/ca-admin.8" "$I_CA_ADMIN" $c --help
done
man_warnings "$MANDIR/man5/engine.conf.5"

# ------------------------------------- configuration keys: docs, sample, man
sed -n 's/^| `\([a-z_]*\.[a-z_]*\)` |.*/\1/p' "$TCA_SRCDIR/docs/configuration.md" | sort -u >"$WORK/keys.doc"
[ "$(wc -l <"$WORK/keys.doc")" -ge 50 ] || fail "found only $(wc -l <"$WORK/keys.doc") keys in docs/configuration.md"
sed -n 's/^#\{0,1\}\([a-z_]*\.[a-z_]*\) =.*/\1/p' "$SAMPLE" | sort >"$WORK/keys.sample"
[ -z "$(uniq -d "$WORK/keys.sample")" ] || fail "the sample names a key twice: $(uniq -d "$WORK/keys.sample")"
diff -u "$WORK/keys.doc" "$WORK/keys.sample" >&2 ||
	fail "the sample engine.conf and docs/configuration.md name different keys (- docs, + sample)"
man_text "$MANDIR/man5/engine.conf.5" >"$WORK/conf5.txt"
while read -r k; do
	grep -qE "^ {7}$k\$" "$WORK/conf5.txt" || fail "engine.conf(5) does not describe $k"
	# a key the engine does not know stops it: "unknown key"
	printf '%s = x\n' "$k" >"$WORK/one.conf"
	chmod 0600 "$WORK/one.conf"
	"$I_ENGINED" --config "$WORK/one.conf" --check-config >/dev/null 2>"$WORK/one.err" || true
	if grep -q "unknown key" "$WORK/one.err"; then fail "documented key $k is unknown to the engine"; fi
done <"$WORK/keys.doc"
printf 'no.such_key = 1\n' >"$WORK/one.conf"
"$I_ENGINED" --config "$WORK/one.conf" --check-config >/dev/null 2>"$WORK/one.err" || true
grep -q "unknown key" "$WORK/one.err" || { cat "$WORK/one.err" >&2; fail "an unknown key was not refused as unknown"; }

# --------------------------------------------- the installed engine, running
softhsm2-util --init-token --free --label tca-inst --so-pin "$(cat "$WORK/so.pin")" \
	--pin "$(cat "$WORK/user.pin")" >/dev/null
# the configuration: the installed sample with the test's values in place of
# its own lines (a key set twice would stop the engine)
set_key() { # key value: replaces the line (commented or not) of key
	sed -i "s|^#\{0,1\}$1 =.*|$1 = $2|" "$WORK/engine.conf"
	grep -qx "$1 = $2" "$WORK/engine.conf" || fail "the sample has no line for $1"
}
write_installed_config() { # socket path
	cp "$SAMPLE" "$WORK/engine.conf"
	chmod 0600 "$WORK/engine.conf"
	set_key socket.path "$1"
	set_key token.profiles_dir "$STAGE$DATA_PROFILES"
	set_key token.profile softhsm2
	set_key token.module "$SOFTHSM_MODULE"
	set_key token.uri "pkcs11:token=tca-inst"
	set_key token.pin_file "$WORK/user.pin"
	set_key token.pool_size 2
	set_key store.path "$WORK/state.db"
	set_key roles.admin_uids "$(id -u)"
	set_key roles.frontend_uids "$(id -u)"
	set_key device.registration none
}
write_installed_config "$WORK/engine.sock"
"$I_ENGINED" --config "$WORK/engine.conf" --check-config >"$WORK/out" 2>&1 ||
	{ cat "$WORK/out" >&2; fail "the installed engine refuses the installed sample"; }
grep -q "profile softhsm2" "$WORK/out" || fail "check-config did not load the installed softhsm2 profile"

# shellcheck disable=SC2034 # tca_start_engine (lib.sh) runs $ENGINED
ENGINED=$I_ENGINED
tca_start_engine
"$I_CA_ADMIN" --socket "$WORK/engine.sock" --json status >"$WORK/status.json" || fail "installed ca-admin status"
jq -e '.token.label == "tca-inst"' "$WORK/status.json" >/dev/null || fail "status names another token"
"$I_CA_ADMIN" --socket "$WORK/engine.sock" ca create t1 >/dev/null || fail "installed ca-admin ca create"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/d.key" \
	-subj "/CN=dev-1" -out "$WORK/d.csr" 2>/dev/null
"$I_TCA_CLIENT" --socket "$WORK/engine.sock" issue --tenant t1 --device-id dev-1 --csr "$WORK/d.csr" \
	--out "$WORK/d.pem" || fail "installed tca-client issue"
"$I_TCA_CLIENT" --socket "$WORK/engine.sock" cacerts --tenant t1 --out "$WORK/ca.pem" || fail "cacerts"
openssl verify -CAfile "$WORK/ca.pem" "$WORK/d.pem" >/dev/null || fail "the issued certificate does not verify"
tca_stop_engine || fail "the installed engine did not stop cleanly"
[ ! -e "$WORK/engine.sock" ] || fail "the engine left its own socket behind"

# -------------------------------------------------- socket activation
# as systemd runs tca-engined.socket + .service: the socket made by the
# launcher (mode 0660), passed as descriptor 3, NOTIFY_SOCKET and a
# WatchdogSec of 2 s (the engine feeds it every second)
SOCK="$WORK/run/engine.sock"
mkdir -m 0755 "$WORK/run"
# and, where the kernel has PR_SET_MDWE (Linux 6.3+), under the kernel's form
# of MemoryDenyWriteExecute=yes: the engine with SoftHSMv2 must not need a
# writable and executable mapping
MDWE=--mdwe
if ! "$SD_LAUNCH" --mdwe -- true 2>/dev/null; then
	MDWE=
	echo "note: this kernel has no PR_SET_MDWE; the engine runs without MemoryDenyWriteExecute here"
fi
write_installed_config "$SOCK"
launch() { # log-file extra-sd-launch-args...: starts the engine under sd-launch
	local log=$1
	shift
	: >"$WORK/notify.log"
	"$SD_LAUNCH" "$@" --notify "$WORK/notify.sock" --watchdog-usec 2000000 --log "$WORK/notify.log" \
		-- "$I_ENGINED" --config "$WORK/engine.conf" 2>>"$log" &
	ENGINE_PID=$!
}
wait_line() { # file pattern what
	local _
	for _ in $(seq 1 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$ENGINE_PID" 2>/dev/null || { cat "$WORK/engine.log" >&2; fail "$3: the engine exited"; }
		sleep 0.1
	done
	fail "$3: no '$2' in $1 after 60 s"
}
: >"$WORK/engine.log"
# shellcheck disable=SC2086
launch "$WORK/engine.log" --listen "$SOCK" --mode 0660 $MDWE
wait_line "$WORK/notify.log" '^READY=1$' "READY=1"
grep -q "socket activation: serving on the socket systemd passed ($SOCK)" "$WORK/engine.log" ||
	fail "the engine did not take the passed socket"
grep -q '^STATUS=serving' "$WORK/notify.log" || fail "no STATUS= sent"
wait_line "$WORK/notify.log" '^WATCHDOG=1$' "WATCHDOG=1"
# more than one: it is fed, not sent once (the second comes ~1 s later)
for _ in $(seq 1 100); do
	[ "$(grep -c '^WATCHDOG=1$' "$WORK/notify.log")" -ge 2 ] && break
	sleep 0.1
done
[ "$(grep -c '^WATCHDOG=1$' "$WORK/notify.log")" -ge 2 ] || fail "the watchdog was fed only once in 10 s"
"$I_CA_ADMIN" --socket "$SOCK" status >/dev/null || fail "ca-admin through the passed socket"
"$I_TCA_CLIENT" --socket "$SOCK" issue --tenant t1 --device-id dev-1 --csr "$WORK/d.csr" \
	--out "$WORK/d2.pem" || fail "issue through the passed socket"
kill -TERM "$ENGINE_PID"
rc=0; wait "$ENGINE_PID" || rc=$?
ENGINE_PID=
[ "$rc" = 0 ] || { tail -n 20 "$WORK/engine.log" >&2; fail "socket-activated engine exited $rc"; }
grep -q '^STOPPING=1$' "$WORK/notify.log" || fail "no STOPPING=1 sent"
# the socket is systemd's: the engine closes it but leaves the file
[ -S "$SOCK" ] || fail "the engine removed the socket systemd holds"

# refusals: each exits 1 naming the fix, before serving anything
refuse() { # what pattern sd-launch-args...
	local what=$1 pat=$2 rc=0
	shift 2
	: >"$WORK/refuse.log"
	"$SD_LAUNCH" "$@" -- "$I_ENGINED" --config "$WORK/engine.conf" 2>"$WORK/refuse.log" || rc=$?
	[ "$rc" = 1 ] || { cat "$WORK/refuse.log" >&2; fail "$what: exit $rc, expected 1"; }
	grep -q "$pat" "$WORK/refuse.log" || { cat "$WORK/refuse.log" >&2; fail "$what: no '$pat'"; }
}
refuse "another path" "bound to $WORK/run/other.sock, but socket.path is $SOCK" \
	--listen "$WORK/run/other.sock" --mode 0660
refuse "mode 0666" "has mode 0666: others must have no access.*fix: SocketMode=0660" --listen "$SOCK" --mode 0666
refuse "two sockets" "systemd passed 2 sockets" --listen "$SOCK" --mode 0660 --fds 2

# the same through systemd's own launcher, which starts the engine at the
# first connection; ca-admin's request waits in the backlog meanwhile
rm -f "$SOCK"
(umask 0007; exec "$SD_LAUNCH" --notify "$WORK/notify2.sock" --log "$WORK/notify2.log" \
	-- systemd-socket-activate -l "$SOCK" -E NOTIFY_SOCKET -E SOFTHSM2_CONF \
	"$I_ENGINED" --config "$WORK/engine.conf") 2>>"$WORK/engine.log" &
ENGINE_PID=$!
for _ in $(seq 1 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fail "systemd-socket-activate did not listen on $SOCK"
chmod 0660 "$SOCK"	# SocketMode=; systemd-socket-activate makes it 0644
"$I_CA_ADMIN" --socket "$SOCK" --json status >"$WORK/status.json" || fail "status through systemd-socket-activate"
jq -e '.token.label == "tca-inst"' "$WORK/status.json" >/dev/null || fail "status through systemd-socket-activate"
grep -q '^READY=1$' "$WORK/notify2.log" || fail "no READY=1 under systemd-socket-activate"
kill -TERM "$ENGINE_PID"
rc=0; wait "$ENGINE_PID" || rc=$?
ENGINE_PID=
[ "$rc" = 0 ] || fail "engine under systemd-socket-activate exited $rc"

echo "install: OK (staged in $STAGE, units verified, installed engine served directly and socket-activated)"
