#!/usr/bin/env bash
# est-java.sh - a second, independent EST client against tca-estd:
# BouncyCastle's EST client (org.bouncycastle.est, Debian's libbcpkix-java)
# on the JDK's TLS, driven by tests/java/EstClientTest.java, in front of the
# real engine on a throwaway SoftHSMv2 token: /cacerts, /csrattrs,
# /simpleenroll with HTTP Basic (the device id and its registered one-time
# password; a wrong one and a used one are 401), /simplereenroll with the
# certificate as TLS client certificate over TLS 1.3 and 1.2 (none is 401).
# The script compiles the program with javac into the work directory and
# checks what it wrote with openssl, ca-admin and tca-estd's log.
#
# Skips (77) only when java, javac or the BouncyCastle jars are absent, and
# never under CI (lib.sh's require_tool). BC_JARS (colon-separated) names
# other jars than Debian's /usr/share/java/{bcpkix,bcutil,bcprov}.jar.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool java
require_tool javac

ESTD="${TCA_ESTD:-$TCA_BUILDDIR/tca-estd}"
BC_JARS="${BC_JARS:-/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar:/usr/share/java/bcprov.jar}"
JAVA_SRC="$TCA_SRCDIR/tests/java/EstClientTest.java"
TENANT=jt
DEVICE=dev-java-1

IFS=: read -r -a jars <<<"$BC_JARS"
for j in "${jars[@]}"; do
	if [ ! -r "$j" ]; then
		if [ -n "${CI:-}" ]; then
			echo "required jar $j is missing (CI: failing, not skipping; tools/install-deps.sh)" >&2
			exit 1
		fi
		echo "SKIP: $j not found (libbcpkix-java, libbcutil-java, libbcprov-java)" >&2
		exit 77
	fi
done

fail() {
	local f
	echo "FAIL: $*" >&2
	for f in "$WORK"/estd.log "$WORK"/java.out "$WORK"/java.err; do
		[ -s "$f" ] || continue
		echo "--- $f" >&2
		tail -n 40 "$f" >&2
	done
	[ -f "$WORK/engine.log" ] && tail -n 30 "$WORK/engine.log" >&2
	exit 1
}

est_cleanup() {
	set +e
	if [ -f "$WORK/estd.pid" ]; then
		kill -KILL "$(cat "$WORK/estd.pid")" 2>/dev/null
	fi
	tca_cleanup
}

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

fpr() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

tca_setup
trap est_cleanup EXIT

# ---- the Java program, compiled against the jars (their manifests name
# optional jars that Debian does not ship: -Xlint:-path)
mkdir "$WORK/classes" "$WORK/out.d"
javac -Xlint:all,-path -Werror -encoding UTF-8 -cp "$BC_JARS" -d "$WORK/classes" "$JAVA_SRC" \
	>"$WORK/javac.log" 2>&1 || { cat "$WORK/javac.log" >&2; fail "javac $JAVA_SRC"; }

# ---- the engine: tenant jt requires a registered one-time password
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-estj --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
tca_write_config tca-estj
tca_start_engine
expect_rc 0 "ca create $TENANT" "$CA_ADMIN" ca create "$TENANT"
expect_rc 0 "$TENANT registration=required" "$CA_ADMIN" policy set "$TENANT" registration=required
expect_rc 0 "ca show $TENANT" "$CA_ADMIN" ca show "$TENANT" --pem
cp "$WORK/out" "$WORK/ca.pem"
OTP="java-$(openssl rand -hex 12)"
(umask 077; printf '%s\n' "$OTP" >"$WORK/device.otp")
expect_rc 0 "register $DEVICE" "$CA_ADMIN" device register "$TENANT" "$DEVICE" --otp-file "$WORK/device.otp"

# ---- tca-estd (auth = otp) with a self-signed TLS certificate for 127.0.0.1
(umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$WORK/tls.key" -out "$WORK/tls.pem" -days 2 -subj "/CN=tca-estd java test" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null)
cat >"$WORK/estd.conf" <<EOC
listen.address = 127.0.0.1
listen.port = 0
tls.cert_file = $WORK/tls.pem
tls.key_file = $WORK/tls.key
engine.socket = $WORK/engine.sock
auth = otp
log.level = debug
EOC
"$ESTD" --config "$WORK/estd.conf" --port-file "$WORK/estd.port" 2>>"$WORK/estd.log" &
echo $! >"$WORK/estd.pid"
for _ in $(seq 1 200); do
	[ -s "$WORK/estd.port" ] && break
	kill -0 "$(cat "$WORK/estd.pid")" 2>/dev/null || fail "tca-estd exited during start-up"
	sleep 0.05
done
[ -s "$WORK/estd.port" ] || fail "tca-estd wrote no port file"
URL="https://127.0.0.1:$(cat "$WORK/estd.port")/.well-known/est/$TENANT"

# ---- the Java client: every step, its own checks
rc=0
java -cp "$WORK/classes:$BC_JARS" EstClientTest "$URL" "$WORK/tls.pem" "$DEVICE" \
	"$WORK/device.otp" "$WORK/out.d" >"$WORK/java.out" 2>"$WORK/java.err" || rc=$?
cat "$WORK/java.out"
[ "$rc" = 0 ] || fail "EstClientTest exited $rc"
grep -q "all steps passed" "$WORK/java.out" || fail "EstClientTest did not finish"
# BouncyCastle ran unmodified: neither shim of the program had to step in
grep -q "shims: 0 answer(s) given Content-Transfer-Encoding: base64 (RFC 8951), 0 401 challenge body(ies) kept from HttpAuth" \
	"$WORK/java.out" || fail "BouncyCastle needed a shim: $(grep shims "$WORK/java.out")"

# ---- and openssl's view of what it got
O="$WORK/out.d"
for f in cacerts.pem enrolled.pem enrolled.key reenrolled.pem reenrolled.key reenrolled2.pem reenrolled2.key; do
	[ -s "$O/$f" ] || fail "EstClientTest wrote no $f"
done
[ "$(fpr "$O/cacerts.pem")" = "$(fpr "$WORK/ca.pem")" ] || fail "cacerts is not $TENANT's CA certificate"
for c in enrolled reenrolled reenrolled2; do
	openssl verify -CAfile "$WORK/ca.pem" "$O/$c.pem" >"$WORK/v" 2>&1 || fail "$c.pem: $(cat "$WORK/v")"
	openssl x509 -in "$O/$c.pem" -noout -subject | grep -q "CN *= *$DEVICE\$" ||
		fail "$c.pem subject: $(openssl x509 -in "$O/$c.pem" -noout -subject)"
	cmp -s <(openssl x509 -in "$O/$c.pem" -noout -pubkey) <(openssl pkey -in "$O/$c.key" -pubout) ||
		fail "$c.pem does not carry $c.key's public key"
done
for c in enrolled reenrolled reenrolled2; do serial_of "$O/$c.pem"; done >"$WORK/serials"
[ "$(sort -u "$WORK/serials" | wc -l)" = 3 ] || fail "re-enrollment returned an old certificate"
# the engine's record: the device's three certificates, no more (the wrong
# and the used password issued nothing)
expect_rc 0 "cert list $DEVICE" "$CA_ADMIN" --json cert list "$TENANT" --device "$DEVICE"
while read -r sn; do
	grep -qi "$sn" "$WORK/out" || fail "cert list lacks serial $sn: $(cat "$WORK/out")"
done <"$WORK/serials"
[ "$(grep -o '"serial"' "$WORK/out" | wc -l)" = 3 ] || fail "cert list: not 3 certificates: $(cat "$WORK/out")"
# tca-estd's log: what the client did, as the server saw it
for want in "path=/.well-known/est/$TENANT/cacerts tenant=$TENANT device=- status=200" \
	"path=/.well-known/est/$TENANT/csrattrs tenant=$TENANT device=- status=200" \
	"path=/.well-known/est/$TENANT/simpleenroll tenant=$TENANT device=$DEVICE status=401 engine=CREDENTIAL_REFUSED" \
	"path=/.well-known/est/$TENANT/simpleenroll tenant=$TENANT device=$DEVICE status=200 engine=OK" \
	"path=/.well-known/est/$TENANT/simplereenroll tenant=$TENANT device=- status=401 engine=-" \
	"path=/.well-known/est/$TENANT/simplereenroll tenant=$TENANT device=$DEVICE status=200 engine=OK"; do
	grep -q "request method=[A-Z]* $want" "$WORK/estd.log" || fail "tca-estd logged no \"$want\""
done
if grep -qF -- "$OTP" "$WORK/estd.log" "$WORK/java.out" "$WORK/java.err"; then
	fail "the one-time password reached a log"
fi

# ---- a clean stop
pid=$(cat "$WORK/estd.pid")
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
rm -f "$WORK/estd.pid"
[ "$rc" = 0 ] || fail "tca-estd exited $rc on SIGTERM"
tca_stop_engine || fail "engine did not stop cleanly"
echo "est-java: all checks passed"
