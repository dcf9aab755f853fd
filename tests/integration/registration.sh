#!/usr/bin/env bash
# registration.sh - device registration (issue 14) through the real daemon
# with device.registration = required: one-time passwords from a file and
# generated; a first certificate needs the right, unused, unexpired,
# unlocked password and uses it up (also when two requests race for it);
# wrong passwords are counted and lock the device until it is registered
# again; re-enrollment needs none; a tenant's policy can waive it; the bulk
# CSV import is all or nothing and names bad lines; registrations are
# journaled and no password or hash shows in the journal or the log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

# a fresh password (also remembered, to look for leaks at the end)
newpw() {
	local p
	p="Pw-$(openssl rand -hex 10)"
	printf '%s\n' "$p" >>"$WORK/passwords"
	printf '%s' "$p"
}

# password $2 into $WORK/$1.otp, mode 0600
otpfile() {
	(umask 077; printf '%s\n' "$2" >"$WORK/$1.otp")
}

csr() { # device -> $WORK/<device>.csr (one key for all: only the CN matters here)
	openssl req -new -key "$WORK/dev.key" -subj "/CN=$1" -out "$WORK/$1.csr" 2>/dev/null
}

issue() { # tenant device [tca-client options...]: exit status in $rc, output in out/err
	local t=$1 d=$2
	shift 2
	[ -f "$WORK/$d.csr" ] || csr "$d"
	rc=0
	"$TCA_CLIENT" issue --tenant "$t" --device-id "$d" --csr "$WORK/$d.csr" \
		--out "$WORK/$d.pem" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
}

issue_ok() { # tenant device what [options...]
	local what=$3 t=$1 d=$2
	shift 3
	issue "$t" "$d" "$@"
	[ "$rc" = 0 ] || { cat "$WORK/err" >&2; fail "$what: exit $rc"; }
	openssl x509 -in "$WORK/$d.pem" -noout 2>/dev/null || fail "$what: no certificate"
}

issue_refused() { # tenant device words what [options...]: CREDENTIAL_REFUSED naming words
	local t=$1 d=$2 words=$3 what=$4
	shift 4
	issue "$t" "$d" "$@"
	[ "$rc" = 1 ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected 1"; }
	grep -q CREDENTIAL_REFUSED "$WORK/err" || fail "$what: not CREDENTIAL_REFUSED: $(cat "$WORK/err")"
	[ -z "$words" ] || grep -q "$words" "$WORK/err" || fail "$what: message lacks \"$words\": $(cat "$WORK/err")"
}

show() { # tenant device field
	"$CA_ADMIN" --json device show "$1" "$2" | jq -r ".$3"
}

serial_of() { # pem -> lower-case hex serial as the engine prints it
	openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'
}

registered=0	# device-register journal records expected

tca_setup
: >"$WORK/passwords"
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-reg --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
export TCA_REGISTRATION=required
tca_write_config tca-reg
# the engine's clock, moved below to expire a password without waiting
date +%s >"$WORK/clock"
echo "testing.clock_file = $WORK/clock" >>"$WORK/engine.conf"
tca_start_engine
expect_rc 0 "ca create t1" "$CA_ADMIN" ca create t1
expect_rc 0 "ca create t2" "$CA_ADMIN" ca create t2
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null

# ---- usage
expect_rc 0 "device --help" "$CA_ADMIN" device --help
grep -q "ENROLLMENT_OTP" "$WORK/out" || fail "device --help does not describe the CSV"
grep -q "EXTERNAL_ID" "$WORK/out" || fail "device --help does not name the id columns"
expect_rc 2 "device without subcommand" "$CA_ADMIN" device
expect_rc 2 "register without device" "$CA_ADMIN" device register t1
expect_rc 2 "--otp-file and --generate" "$CA_ADMIN" device register t1 d --otp-file x --generate
expect_rc 2 "bad --expires" "$CA_ADMIN" device register t1 d --expires 5y
expect_rc 2 "--expires too long" "$CA_ADMIN" device register t1 d --expires 4000d
expect_rc 0 "tca-client issue --help" "$TCA_CLIENT" issue --help
grep -q -- "--otp-file" "$WORK/out" || fail "tca-client issue --help lacks --otp-file"
expect_rc 2 "reenroll --otp-file" "$TCA_CLIENT" reenroll --tenant t1 --device-id d --csr x \
	--current y --otp-file z

# ---- register with --otp-file; a first certificate needs the password, once
p1=$(newpw)
otpfile dev-1 "$p1"
chmod 0640 "$WORK/dev-1.otp"
expect_rc 1 "group-readable --otp-file" "$CA_ADMIN" device register t1 dev-1 --otp-file "$WORK/dev-1.otp"
grep -q "chmod 600" "$WORK/err" || fail "otp file refusal does not say how to fix it: $(cat "$WORK/err")"
chmod 0600 "$WORK/dev-1.otp"
printf 'short\n' >"$WORK/short.otp"; chmod 0600 "$WORK/short.otp"
expect_rc 1 "too short a password" "$CA_ADMIN" device register t1 dev-1 --otp-file "$WORK/short.otp"
grep -q "8\.\.128" "$WORK/err" || fail "short password refusal: $(cat "$WORK/err")"
expect_rc 0 "register dev-1" "$CA_ADMIN" device register t1 dev-1 --otp-file "$WORK/dev-1.otp" \
	--expires 30d
registered=$((registered + 1))
grep -q "registered" "$WORK/out" || fail "register says nothing: $(cat "$WORK/out")"
if grep -qF "$p1" "$WORK/out" "$WORK/err"; then fail "register printed the password from the file"; fi
[ "$(show t1 dev-1 state)" = pending ] || fail "dev-1 not pending"
[ "$(show t1 dev-1 failures)" = 0 ] || fail "dev-1 failures"
exp=$(show t1 dev-1 expires_at)
now=$(cat "$WORK/clock")
if [ "$exp" -lt $((now + 30 * 86400 - 5)) ] || [ "$exp" -gt $((now + 30 * 86400 + 5)) ]; then
	fail "dev-1 expires_at $exp, expected about now + 30 d"
fi
expect_rc 1 "register for a tenant without CA" "$CA_ADMIN" device register nobody dev-1 \
	--otp-file "$WORK/dev-1.otp"
grep -q NOT_FOUND "$WORK/err" || fail "register for nobody: $(cat "$WORK/err")"

issue_refused t1 dev-1 "must present" "issue without a password"
issue_refused t1 nobody-registered "not registered" "issue of an unregistered device" \
	--otp-file "$WORK/dev-1.otp"
issue_ok t1 dev-1 "issue with the password" --otp-file "$WORK/dev-1.otp"
cp "$WORK/dev-1.pem" "$WORK/dev-1.first.pem"
issue_refused t1 dev-1 "used already" "the same password again" --otp-file "$WORK/dev-1.otp"
[ "$(show t1 dev-1 state)" = used ] || fail "dev-1 not used"
[ "$(show t1 dev-1 certificate_serial)" = "$(serial_of "$WORK/dev-1.first.pem")" ] ||
	fail "dev-1's registration names another certificate"
[ "$(show t1 dev-1 used_at)" -gt 0 ] || fail "dev-1 used_at"
# re-enrollment needs no password
openssl req -new -key "$WORK/dev.key" -subj "/CN=dev-1" -out "$WORK/dev-1.re.csr" 2>/dev/null
expect_rc 0 "reenroll without a password" "$TCA_CLIENT" reenroll --tenant t1 --device-id dev-1 \
	--csr "$WORK/dev-1.re.csr" --current "$WORK/dev-1.first.pem" --out "$WORK/dev-1.re.pem"
expect_rc 0 "cert list dev-1" "$CA_ADMIN" --json cert list t1 --device dev-1
[ "$(jq length "$WORK/out")" = 2 ] || fail "dev-1 should have 2 certificates: $(cat "$WORK/out")"

# the password from stdin, on both sides
p1b=$(newpw)
expect_rc 0 "register dev-1b from stdin" "$CA_ADMIN" device register t1 dev-1b --otp-file - \
	<<<"$p1b"
registered=$((registered + 1))
issue_ok t1 dev-1b "issue with the password from stdin" --otp-file - <<<"$p1b"

# ---- --generate (and the default): shown once
expect_rc 0 "register dev-2 --generate --json" "$CA_ADMIN" --json device register t1 dev-2 --generate
registered=$((registered + 1))
p2=$(jq -r '.registered[0].otp' "$WORK/out")
[ "${#p2}" = 24 ] || fail "generated password: \"$p2\""
printf '%s\n' "$p2" >>"$WORK/passwords"
[ "$(jq -r '.registered[0].device_id' "$WORK/out")" = dev-2 ] || fail "register --json device_id"
otpfile dev-2 "$p2"
expect_rc 0 "register dev-3 (generated by default)" "$CA_ADMIN" device register t1 dev-3 --expires never
registered=$((registered + 1))
p3=$(sed -n 's/^one-time password: //p' "$WORK/out")
[ "${#p3}" = 24 ] || fail "generated password not printed clearly: $(cat "$WORK/out")"
printf '%s\n' "$p3" >>"$WORK/passwords"
[ "$(show t1 dev-3 expires_at)" = 0 ] || fail "--expires never: $(show t1 dev-3 expires_at)"
expect_rc 0 "device show dev-3 (text)" "$CA_ADMIN" device show t1 dev-3
grep -q "expires_at *never" "$WORK/out" || fail "device show: $(cat "$WORK/out")"
if grep -qF "$p3" "$WORK/out"; then fail "device show printed the password"; fi
issue_ok t1 dev-2 "issue with the generated password" --otp-file "$WORK/dev-2.otp"

# ---- wrong passwords: counted, then the device is locked until re-registered
p4=$(newpw)
otpfile dev-4 "$p4"
otpfile wrong "Wrong-password-123"
expect_rc 0 "register dev-4" "$CA_ADMIN" device register t1 dev-4 --otp-file "$WORK/dev-4.otp"
registered=$((registered + 1))
issue_refused t1 dev-4 "wrong one-time password" "a wrong password" --otp-file "$WORK/wrong.otp"
[ "$(show t1 dev-4 failures)" = 1 ] || fail "wrong password not counted: $(show t1 dev-4 failures)"
[ "$(show t1 dev-4 state)" = pending ] || fail "dev-4 locked after one failure"
for i in 2 3 4 5; do
	issue_refused t1 dev-4 "wrong" "wrong password $i" --otp-file "$WORK/wrong.otp"
done
grep -q "now locked" "$WORK/err" || fail "the fifth wrong password does not say locked: $(cat "$WORK/err")"
[ "$(show t1 dev-4 state)" = locked ] || fail "dev-4 not locked after 5 failures"
[ "$(show t1 dev-4 failures)" = 5 ] || fail "dev-4 failures: $(show t1 dev-4 failures)"
issue_refused t1 dev-4 "locked" "the right password on a locked device" --otp-file "$WORK/dev-4.otp"
expect_rc 0 "cert list dev-4" "$CA_ADMIN" --json cert list t1 --device dev-4
[ "$(jq length "$WORK/out")" = 0 ] || fail "a locked device got a certificate"
# parallel guessing cannot get past the limit: every check is counted before
# the slow hash runs, so of 30 wrong guesses started at once at most 5 are
# checked, the rest are refused before hashing, and the device ends locked
# (this failed before: all 30 were checked and counted)
p6=$(newpw)
otpfile dev-6 "$p6"
expect_rc 0 "register dev-6" "$CA_ADMIN" device register t1 dev-6 --otp-file "$WORK/dev-6.otp"
registered=$((registered + 1))
csr dev-6
guesses=()
for i in $(seq 1 30); do
	"$TCA_CLIENT" issue --tenant t1 --device-id dev-6 --csr "$WORK/dev-6.csr" \
		--otp-file "$WORK/wrong.otp" >/dev/null 2>"$WORK/guess.$i" &
	guesses+=($!)
done
for pid in "${guesses[@]}"; do wait "$pid" || true; done
[ "$(grep -l CREDENTIAL_REFUSED "$WORK"/guess.* | wc -l)" = 30 ] ||
	fail "parallel guesses: not all refused: $(cat "$WORK"/guess.* | sort | uniq -c)"
[ "$(show t1 dev-6 state)" = locked ] || fail "dev-6 not locked after 30 parallel guesses"
f6=$(show t1 dev-6 failures)
[ "$f6" -le 5 ] || fail "parallel guesses: $f6 checked and counted, more than the limit of 5"
issue_refused t1 dev-6 "locked" "the right password after parallel guessing" --otp-file "$WORK/dev-6.otp"

# re-registering clears failures and lock
p4=$(newpw)
otpfile dev-4 "$p4"
expect_rc 0 "re-register dev-4" "$CA_ADMIN" device register t1 dev-4 --otp-file "$WORK/dev-4.otp"
registered=$((registered + 1))
[ "$(show t1 dev-4 state)" = pending ] || fail "re-registered dev-4 not pending"
[ "$(show t1 dev-4 failures)" = 0 ] || fail "re-registration did not clear failures"
issue_ok t1 dev-4 "issue after re-registration" --otp-file "$WORK/dev-4.otp"
# re-registering a used device gives it a new first certificate
p1=$(newpw)
otpfile dev-1 "$p1"
expect_rc 0 "re-register used dev-1" "$CA_ADMIN" device register t1 dev-1 --otp-file "$WORK/dev-1.otp"
registered=$((registered + 1))
[ "$(show t1 dev-1 state)" = pending ] || fail "re-registered dev-1 not pending"
issue_ok t1 dev-1 "issue after re-registering a used device" --otp-file "$WORK/dev-1.otp"

# ---- the tenant's policy decides: t2 waives registration, t1 still requires it
issue_refused t2 dev-p "" "t2 requires registration by default"
expect_rc 0 "policy registration=none" "$CA_ADMIN" policy set t2 registration=none
grep -q "registration=none" "$WORK/out" || fail "policy set: $(cat "$WORK/out")"
issue_ok t2 dev-p "issue without password where the tenant waives registration"
issue_refused t1 dev-p "must present" "t1 still requires registration"
expect_rc 0 "policy registration= (reset)" "$CA_ADMIN" policy set t2 registration=
rm -f "$WORK/dev-p2.csr"
issue_refused t2 dev-p2 "" "t2 back to the global setting"
expect_rc 1 "policy registration=maybe" "$CA_ADMIN" policy set t2 registration=maybe
grep -q "registration" "$WORK/err" || fail "bad registration value does not name the key"

# ---- race: two requests with one password yield exactly one certificate
late=0
for i in $(seq 1 10); do
	d=race-$i
	pr=$(newpw)
	otpfile "$d" "$pr"
	expect_rc 0 "register $d" "$CA_ADMIN" device register t1 "$d" --otp-file "$WORK/$d.otp"
	registered=$((registered + 1))
	csr "$d"
	for side in a b; do
		( rc=0
		  "$TCA_CLIENT" issue --tenant t1 --device-id "$d" --csr "$WORK/$d.csr" \
			--otp-file "$WORK/$d.otp" --out "$WORK/$d.$side.pem" \
			>"$WORK/$d.$side.out" 2>"$WORK/$d.$side.err" || rc=$?
		  echo "$rc" >"$WORK/$d.$side.rc" ) &
		eval "pid_$side=\$!"
	done
	# shellcheck disable=SC2154
	wait "$pid_a" "$pid_b"
	ra=$(cat "$WORK/$d.a.rc")
	rb=$(cat "$WORK/$d.b.rc")
	if [ "$ra" = 0 ] && [ "$rb" = 1 ]; then loser=b
	elif [ "$ra" = 1 ] && [ "$rb" = 0 ]; then loser=a
	else
		cat "$WORK/$d".?.err >&2
		fail "race $i: exit codes $ra and $rb, expected one 0 and one 1"
	fi
	grep -q CREDENTIAL_REFUSED "$WORK/$d.$loser.err" ||
		fail "race $i: the loser was not CREDENTIAL_REFUSED: $(cat "$WORK/$d.$loser.err")"
	grep -q "no longer valid" "$WORK/$d.$loser.err" && late=$((late + 1))
	expect_rc 0 "cert list $d" "$CA_ADMIN" --json cert list t1 --device "$d"
	[ "$(jq length "$WORK/out")" = 1 ] || fail "race $i: $(jq length "$WORK/out") certificates for one password"
	[ "$(show t1 "$d" state)" = used ] || fail "race $i: registration not used"
done
echo "race: 10 rounds, exactly one certificate each ($late refused at commit, the rest at the check)"

# ---- bulk import
expect_rc 0 "device list before import" "$CA_ADMIN" --json device list t1
before=$(jq length "$WORK/out")
pa=$(newpw); pb=$(newpw); pc=$(newpw)
printf 'ID;ENROLLMENT_OTP;NAME\nimp-a;%s;Sensor A\nimp-b;%s;Sensor B\nimp-c;%s;Sensor C\n' \
	"$pa" "$pb" "$pc" >"$WORK/good.csv"
expect_rc 0 "import good.csv" "$CA_ADMIN" device import t1 "$WORK/good.csv"
registered=$((registered + 3))
grep -q "3 devices registered" "$WORK/out" || fail "import summary: $(cat "$WORK/out")"
for p in "$pa" "$pb" "$pc"; do
	if grep -qF "$p" "$WORK/out" "$WORK/err"; then fail "import printed a password"; fi
done
expect_rc 0 "device list after import" "$CA_ADMIN" --json device list t1
[ "$(jq length "$WORK/out")" = $((before + 3)) ] || fail "import did not register 3 devices"
[ "$(jq -r '[.[] | select(.device_id | startswith("imp-"))] | map(.state) | join(",")' "$WORK/out")" = \
	pending,pending,pending ] || fail "imported devices: $(jq -c . "$WORK/out")"
otpfile imp-b "$pb"
issue_ok t1 imp-b "issue with an imported password" --otp-file "$WORK/imp-b.otp"

# a bad row on line 4: nothing from that file is stored, every bad line named
expect_rc 0 "device list before bad import" "$CA_ADMIN" --json device list t1
cp "$WORK/out" "$WORK/list-before"
q1=$(newpw); q2=$(newpw); q3=$(newpw)
printf 'ID;ENROLLMENT_OTP;NAME\nbad-a;%s;A\n\nbad-b;%s;B\nbad-c;short;C\nbad-d;%s;D\n' \
	"$q1" "$q2" "$q3" >"$WORK/bad.csv"
expect_rc 1 "import with a short password on line 5" "$CA_ADMIN" device import t1 "$WORK/bad.csv"
grep -q "line 5:.*8\.\.128" "$WORK/err" || fail "bad import does not name line 5: $(cat "$WORK/err")"
grep -q "nothing was registered" "$WORK/err" || fail "bad import: $(cat "$WORK/err")"
printf 'ID;ENROLLMENT_OTP;NAME\nbad-a;%s;A\nbad-b;%s;B\nbad-c;short;C\n' "$q1" "$q2" >"$WORK/bad4.csv"
expect_rc 1 "import with a short password on line 4" "$CA_ADMIN" device import t1 "$WORK/bad4.csv"
grep -q "line 4:" "$WORK/err" || fail "bad import does not name line 4: $(cat "$WORK/err")"
for p in "$q1" "$q2" "$q3"; do
	if grep -qF "$p" "$WORK/out" "$WORK/err"; then fail "bad import printed a password"; fi
done
# several problems at once, all reported
printf 'DEVICE_ID;ENROLLMENT_OTP\nok-1;%s\nbad-e;\nok-1;%s\nbad id\001;%s\nbad-f;%s;extra\n' \
	"$q1" "$q2" "$q3" "$q3" >"$WORK/bad-many.csv"
expect_rc 1 "import with many bad lines" "$CA_ADMIN" --json device import t1 "$WORK/bad-many.csv"
for want in "line 3: device bad-e: ENROLLMENT_OTP is empty" \
	"line 4: device ok-1 is listed twice (first on line 2)" \
	"line 5: device id contains a control character" \
	"line 6: 3 fields, the header (line 1) has 2"; do
	grep -qF "$want" "$WORK/err" || fail "import errors lack \"$want\": $(cat "$WORK/err")"
done
[ "$(jq '.errors | length' "$WORK/out")" = 4 ] || fail "import --json errors: $(cat "$WORK/out")"
[ "$(jq -c '[.errors[].line]' "$WORK/out")" = "[3,4,5,6]" ] || fail "import --json lines: $(cat "$WORK/out")"
printf 'NAME;OTP\nx;y\n' >"$WORK/no-columns.csv"
expect_rc 1 "import without the columns" "$CA_ADMIN" device import t1 "$WORK/no-columns.csv"
grep -q "line 1: the header must name" "$WORK/err" || fail "header refusal: $(cat "$WORK/err")"
printf 'ID;Device_Id;ENROLLMENT_OTP\na;b;%s\n' "$q1" >"$WORK/two-ids.csv"
expect_rc 1 "import with two id columns" "$CA_ADMIN" device import t1 "$WORK/two-ids.csv"
grep -q "two device id columns" "$WORK/err" || fail "two id columns: $(cat "$WORK/err")"
printf 'ID;ENROLLMENT_OTP\n"bad-g;%s\n' "$q1" >"$WORK/open-quote.csv"
expect_rc 1 "import with an open quote" "$CA_ADMIN" device import t1 "$WORK/open-quote.csv"
grep -q "line 2: a quoted field is not closed" "$WORK/err" || fail "open quote: $(cat "$WORK/err")"
expect_rc 0 "device list after bad imports" "$CA_ADMIN" --json device list t1
cmp -s "$WORK/out" "$WORK/list-before" || fail "a refused import registered something"

# comma-separated, quoted fields with "" and separators inside, CRLF, a BOM,
# EXTERNAL_ID in lower case, the password column last; --json per device
pd=$(newpw); pe=$(newpw)
printf '\357\273\277external_id,NAME,"ENROLLMENT_OTP"\r\n"imp,d","Sensor ""D"", hall 1",%s\r\n\r\n  imp-e ,Sensor E,"%s"\r\n' \
	"$pd" "$pe" >"$WORK/comma.csv"
expect_rc 0 "import comma.csv --json" "$CA_ADMIN" --json device import t1 "$WORK/comma.csv" --expires 2h
registered=$((registered + 2))
[ "$(jq -r '.ok' "$WORK/out")" = true ] || fail "import --json: $(cat "$WORK/out")"
[ "$(jq -c '[.devices[] | [.line, .device_id, .registered]]' "$WORK/out")" = \
	'[[2,"imp,d",true],[4,"imp-e",true]]' ] || fail "import --json devices: $(cat "$WORK/out")"
for p in "$pd" "$pe"; do
	if grep -qF "$p" "$WORK/out" "$WORK/err"; then fail "import --json printed a password"; fi
done
otpfile imp-e "$pe"
issue_ok t1 imp-e "issue with a password from the comma CSV" --otp-file "$WORK/imp-e.otp"
[ "$(show t1 'imp,d' state)" = pending ] || fail "imp,d not registered"
# more than one request's worth (200 per request)
{
	echo "ID;ENROLLMENT_OTP"
	for i in $(seq 1 230); do printf 'bulk-%03d;Bulk-password-%03d\n' "$i" "$i"; done
} >"$WORK/bulk.csv"
expect_rc 0 "import 230 devices" "$CA_ADMIN" device import t1 "$WORK/bulk.csv" --expires 1d
registered=$((registered + 230))
grep -q "230 devices registered" "$WORK/out" || fail "bulk import: $(cat "$WORK/out")"
expect_rc 0 "device list (paged)" "$CA_ADMIN" --json device list t1
[ "$(jq '[.[] | select(.device_id | startswith("bulk-"))] | length' "$WORK/out")" = 230 ] ||
	fail "bulk import: not 230 devices listed"
expect_rc 0 "device list (text)" "$CA_ADMIN" device list t1
grep -q "^DEVICE .*STATE" "$WORK/out" || fail "device list header: $(head -2 "$WORK/out")"

# ---- unregister
expect_rc 0 "unregister dev-3" "$CA_ADMIN" device unregister t1 dev-3
expect_rc 1 "unregister dev-3 again" "$CA_ADMIN" device unregister t1 dev-3
grep -q NOT_FOUND "$WORK/err" || fail "second unregister: $(cat "$WORK/err")"
otpfile dev-3 "$p3"
issue_refused t1 dev-3 "not registered" "issue of an unregistered device" --otp-file "$WORK/dev-3.otp"
expect_rc 1 "show unregistered" "$CA_ADMIN" device show t1 dev-3
grep -q NOT_FOUND "$WORK/err" || fail "show of an unregistered device: $(cat "$WORK/err")"

# ---- expiry, on the engine's clock
p5=$(newpw)
otpfile dev-5 "$p5"
expect_rc 0 "register dev-5 for an hour" "$CA_ADMIN" device register t1 dev-5 \
	--otp-file "$WORK/dev-5.otp" --expires 1h
registered=$((registered + 1))
p6=$(newpw)
otpfile dev-6 "$p6"
expect_rc 0 "register dev-6 for a day" "$CA_ADMIN" device register t1 dev-6 \
	--otp-file "$WORK/dev-6.otp" --expires 1d
registered=$((registered + 1))
echo $(( $(cat "$WORK/clock") + 7200 )) >"$WORK/clock.tmp" && mv "$WORK/clock.tmp" "$WORK/clock"
[ "$(show t1 dev-5 state)" = expired ] || fail "dev-5 not expired after 2 h"
issue_refused t1 dev-5 "expired" "an expired password" --otp-file "$WORK/dev-5.otp"
[ "$(show t1 dev-5 failures)" = 0 ] || fail "an expired password counted as wrong"
issue_ok t1 dev-6 "a password that has not expired yet" --otp-file "$WORK/dev-6.otp"

# ---- the journal: registrations recorded, passwords and hashes nowhere
tca_stop_engine || fail "engine did not stop cleanly"
expect_rc 0 "journal verify" "$CA_ADMIN" journal verify --db "$WORK/state.db"
expect_rc 0 "journal export" "$CA_ADMIN" journal export --db "$WORK/state.db" --out "$WORK/j.jsonl"
n=$(jq -s '[.[] | select(.op == "device-register")] | length' "$WORK/j.jsonl")
[ "$n" = "$registered" ] || fail "journal: $n device-register records, expected $registered"
n=$(jq -s '[.[] | select(.op == "device-unregister")] | length' "$WORK/j.jsonl")
[ "$n" = 1 ] || fail "journal: $n device-unregister records, expected 1"
jq -s -e '[.[] | select(.op == "device-unregister")][0] | .tenant == "t1" and
	(.details | test("device_id=dev-3"))' "$WORK/j.jsonl" >/dev/null ||
	fail "journal: device-unregister record: $(jq -c 'select(.op == "device-unregister")' "$WORK/j.jsonl")"
jq -s -e '[.[] | select(.op == "device-register" and (.details | test("device_id=dev-3 expires=never")))]
	| length == 1' "$WORK/j.jsonl" >/dev/null || fail "journal: dev-3's registration details"
# shellcheck disable=SC2016
if grep -qF '$scrypt$' "$WORK/j.jsonl" "$WORK/engine.log"; then
	fail "a password hash is in the journal or the engine log"
fi
while read -r p; do
	if grep -qF "$p" "$WORK/j.jsonl" "$WORK/engine.log" "$WORK"/state.db*; then
		fail "a password is in the journal, the engine log or the store"
	fi
done <"$WORK/passwords"
for i in $(seq 1 230); do printf 'Bulk-password-%03d\n' "$i"; done >"$WORK/bulk-passwords"
if grep -qF -f "$WORK/bulk-passwords" "$WORK/j.jsonl" "$WORK/engine.log" "$WORK"/state.db*; then
	fail "a bulk password is in the journal, the engine log or the store"
fi
echo "registration: all checks passed"
