#!/usr/bin/env bash
# watchdog.sh - the systemd watchdog and the token (issue 11, engine/sd-notify.c).
# The engine runs as tca-engined.service would run it (tests/sd-launch:
# socket activation, NOTIFY_SOCKET, WATCHDOG_USEC = 1 s) on p11-faulty over
# SoftHSMv2, and the token is "removed" from its slot:
#  - default (watchdog.token_down_s = 0): the watchdog goes on being fed
#    while the token is away, and STATUS= says the token is recovering;
#  - watchdog.token_down_s = 1: the engine stops feeding it (and says so),
#    and feeds it again once the token is back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
SD_LAUNCH="$TCA_BUILDDIR/tests/sd-launch"
FAULTY="$TCA_BUILDDIR/tests/.libs/p11-faulty.so"
[ -f "$FAULTY" ] || fail "$FAULTY is not built (make check builds it)"

tca_setup
softhsm2-util --init-token --free --label tca-wd --so-pin "$(cat "$WORK/so.pin")" \
	--pin "$(cat "$WORK/user.pin")" >/dev/null
tca_write_config tca-wd
mkdir -m 0755 "$WORK/run"
SOCK="$WORK/run/engine.sock"
sed -i -e "s|^socket.path = .*|socket.path = $SOCK|" \
	-e "s|^token.module = .*|token.module = $FAULTY|" \
	-e "s|^token.pool_size = .*|token.pool_size = 1|" "$WORK/engine.conf"
printf 'token.recovery_wait_ms = 200\n' >>"$WORK/engine.conf"
export TCA_FAULTY_MODULE="$SOFTHSM_MODULE" TCA_FAULTY_CTL="$WORK/faulty.ctl"
export TCA_FAULTY_LOG="$WORK/faulty.log"
set_ctl() { printf '%s\n' "$1" >"$WORK/faulty.ctl.tmp" && mv "$WORK/faulty.ctl.tmp" "$WORK/faulty.ctl"; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/d.key" \
	-subj "/CN=dev-1" -out "$WORK/d.csr" 2>/dev/null

start() {
	: >"$WORK/notify.log"
	"$SD_LAUNCH" --listen "$SOCK" --mode 0660 --notify "$WORK/notify.sock" \
		--watchdog-usec 1000000 --log "$WORK/notify.log" \
		-- "$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" &
	ENGINE_PID=$!
	wait_for "$WORK/notify.log" '^READY=1$' "READY=1"
}
stop() {
	local rc=0
	kill -TERM "$ENGINE_PID"
	wait "$ENGINE_PID" || rc=$?
	ENGINE_PID=
	[ "$rc" = 0 ] || fail "the engine exited $rc"
}
wait_for() { # file pattern what: polls for up to 60 s
	local _
	for _ in $(seq 1 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$ENGINE_PID" 2>/dev/null || fail "$3: the engine exited"
		sleep 0.1
	done
	fail "$3: no '$2' in $1 after 60 s"
}
fed() { grep -c '^WATCHDOG=1$' "$WORK/notify.log" || true; }
wait_fed() { # n what: until n more WATCHDOG=1 than now arrived
	local want=$(($(fed) + $1)) _
	for _ in $(seq 1 600); do
		[ "$(fed)" -ge "$want" ] && return 0
		sleep 0.1
	done
	fail "$2: the watchdog was not fed $1 more times in 60 s"
}
# the token goes: a signature meets it and the supervisor starts recovering
token_away() {
	set_ctl remove
	"$TCA_CLIENT" --socket "$SOCK" issue --tenant t1 --device-id dev-1 --csr "$WORK/d.csr" \
		>/dev/null 2>"$WORK/issue.err" && fail "issue succeeded with the token removed"
	grep -q TOKEN_UNAVAILABLE "$WORK/issue.err" || { cat "$WORK/issue.err" >&2; fail "issue: not TOKEN_UNAVAILABLE"; }
	wait_for "$WORK/notify.log" '^STATUS=serving; token recovering' "STATUS= recovering"
}
token_back() {
	set_ctl ""
	wait_for "$WORK/notify.log" '^STATUS=serving; token ok$' "STATUS= token ok"
}

# ---- default: the watchdog does not depend on the token
: >"$WORK/engine.log"
start
"$CA_ADMIN" --socket "$SOCK" ca create t1 >/dev/null || fail "ca create"
wait_fed 2 "token present"
token_away
# still fed while the token stays away: several times after STATUS said so
wait_fed 3 "token away, watchdog.token_down_s = 0"
grep -q "no longer feeding" "$WORK/engine.log" && fail "watchdog withheld with watchdog.token_down_s = 0"
token_back
stop
grep -q '^STOPPING=1$' "$WORK/notify.log" || fail "no STOPPING=1"

# ---- watchdog.token_down_s = 1: withheld while the token is away
printf 'watchdog.token_down_s = 1\n' >>"$WORK/engine.conf"
start
wait_fed 2 "token present (token_down_s = 1)"
token_away
wait_for "$WORK/engine.log" "the token has not been ok for 1 s (watchdog.token_down_s): no longer feeding" \
	"withholding logged"
wait_for "$WORK/notify.log" '^STATUS=token down: watchdog withheld' "STATUS= withheld"
# after that notification (datagrams keep their order), nothing for 3 s:
# three times WATCHDOG_USEC, in which the engine would have fed it 6 times
sleep 3
after=$(sed -n '/^STATUS=token down: watchdog withheld/,$p' "$WORK/notify.log" | grep -c '^WATCHDOG=1$' || true)
[ "$after" = 0 ] || fail "the watchdog was fed $after times after the engine said it stopped feeding it"
token_back
wait_for "$WORK/engine.log" "the token is ok again: feeding the systemd watchdog again" "feeding again logged"
wait_fed 1 "token back"
"$TCA_CLIENT" --socket "$SOCK" issue --tenant t1 --device-id dev-1 --csr "$WORK/d.csr" \
	--out "$WORK/d.pem" || fail "issue after the token came back"
stop
echo "watchdog: OK"
