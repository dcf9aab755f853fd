#!/usr/bin/env bash
# revocation.sh - revocation as a relying party sees it, with other people's
# tools: OpenSSL `verify -crl_check` against the current and the previous
# (pre-re-issuance) CA certificate, GnuTLS `certtool --verify-crl`, NSS
# `crlutil`, `openssl ocsp` (good, revoked, unknown, nonce); CRL numbers
# across revocations, a restart and re-issuance; re-enrollment of a revoked
# certificate refused; the inventory; the journal.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq
require_tool certtool
require_tool crlutil
require_tool certutil

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

# issue TENANT DEVICE NAME: key, CSR, certificate in $WORK/NAME.{key,csr,pem}
issue() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$3.key" 2>/dev/null
	openssl req -new -key "$WORK/$3.key" -subj "/CN=$2" -out "$WORK/$3.csr"
	expect_rc 0 "issue $3" "$TCA_CLIENT" issue --tenant "$1" --device-id "$2" \
		--csr "$WORK/$3.csr" --out "$WORK/$3.pem"
}

serial_of() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

crl_number() { # CRL file (PEM) -> its CRL number, decimal ("crlNumber=0x04")
	printf '%d\n' "$(openssl crl -in "$1" -noout -crlnumber | cut -d= -f2)"
}

fetch_crl() { # tenant -> $WORK/crl.pem and $WORK/crl.der
	expect_rc 0 "crl $1" "$TCA_CLIENT" crl --tenant "$1" --pem --out "$WORK/crl.pem"
	expect_rc 0 "crl $1 (DER)" "$TCA_CLIENT" crl --tenant "$1" --out "$WORK/crl.der"
	openssl crl -in "$WORK/crl.pem" -noout 2>"$WORK/err" || fail "CRL does not parse: $(cat "$WORK/err")"
}

verify_with() { # CA-file cert-name -> exit status of openssl verify -crl_check
	openssl verify -crl_check -CAfile "$1" -CRLfile "$WORK/crl.pem" "$WORK/$2.pem" >"$WORK/vout" 2>&1
}

tca_setup
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-rev --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
tca_write_config tca-rev
tca_start_engine

expect_rc 0 "ca create t1" "$CA_ADMIN" ca create t1
expect_rc 0 "ca create t2" "$CA_ADMIN" ca create t2
expect_rc 0 "ca show t1" "$CA_ADMIN" ca show t1 --pem
cp "$WORK/out" "$WORK/ca-old.pem"
issue t1 dev-a a
issue t1 dev-b b1
issue t1 dev-b b2
issue t1 dev-c c
issue t2 dev-x x

# the first CRL exists from creation: number 1, empty, v2, AKI = the CA's SKI
fetch_crl t1
[ "$(crl_number "$WORK/crl.pem")" = 1 ] || fail "first CRL number: $(crl_number "$WORK/crl.pem")"
openssl crl -in "$WORK/crl.pem" -noout -text >"$WORK/crl.txt"
grep -q "Version 2" "$WORK/crl.txt" || fail "CRL is not v2"
grep -q "No Revoked Certificates" "$WORK/crl.txt" || fail "first CRL not empty"
ski=$(openssl x509 -in "$WORK/ca-old.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')
grep -A1 "Authority Key Identifier" "$WORK/crl.txt" | tail -1 | tr -d ' ' | sed 's/^keyid://' |
	grep -qx "$ski" || fail "CRL AKI is not the CA's SKI $ski"
verify_with "$WORK/ca-old.pem" a || fail "dev-a before revocation: $(cat "$WORK/vout")"

# revoke one certificate: the CRL is re-signed at once
sa=$(serial_of a)
expect_rc 0 "revoke dev-a" "$CA_ADMIN" --json cert revoke t1 "$sa" --reason keyCompromise
[ "$(jq -r .already "$WORK/out")" = false ] || fail "first revoke: already"
[ "$(jq -r .reason "$WORK/out")" = keyCompromise ] || fail "revoke: reason"
[ "$(jq -r .crl.number "$WORK/out")" = 2 ] || fail "revoke: CRL number $(jq -c .crl "$WORK/out")"
# twice: idempotent, and says so; the first revocation's reason stays
expect_rc 0 "revoke dev-a again" "$CA_ADMIN" --json cert revoke t1 "$sa" --reason superseded
[ "$(jq -r .already "$WORK/out")" = true ] || fail "second revoke: not marked already"
[ "$(jq -r .reason "$WORK/out")" = keyCompromise ] || fail "second revoke changed the reason"
[ "$(jq -r '.crl // empty' "$WORK/out")" = "" ] || fail "second revoke re-signed the CRL"
expect_rc 0 "revoke dev-a again (text)" "$CA_ADMIN" cert revoke t1 "$sa"
grep -q "already revoked" "$WORK/out" || fail "text output does not say already revoked"
# typed refusals
expect_rc 1 "unknown serial" "$CA_ADMIN" cert revoke t1 0badc0ffee
grep -q NOT_FOUND "$WORK/err" || fail "unknown serial: $(cat "$WORK/err")"
expect_rc 1 "foreign serial" "$CA_ADMIN" cert revoke t1 "$(serial_of x)"
grep -q NOT_FOUND "$WORK/err" || fail "foreign serial: $(cat "$WORK/err")"
expect_rc 1 "certificateHold" "$CA_ADMIN" cert revoke t1 "$(serial_of c)" --reason certificateHold
grep -q "irreversible" "$WORK/err" || fail "certificateHold: $(cat "$WORK/err")"
expect_rc 1 "bad reason" "$CA_ADMIN" cert revoke t1 "$(serial_of c)" --reason sunspots
grep -q BAD_REQUEST "$WORK/err" || fail "bad reason: $(cat "$WORK/err")"

# revoke a device: both of its certificates, one CRL
expect_rc 0 "revoke device dev-b" "$CA_ADMIN" --json cert revoke t1 --device dev-b --reason cessationOfOperation
[ "$(jq '.revoked | length' "$WORK/out")" = 2 ] || fail "device revoke: $(jq -c . "$WORK/out")"
[ "$(jq -r .crl.number "$WORK/out")" = 3 ] || fail "device revoke: CRL number"
expect_rc 1 "revoke unknown device" "$CA_ADMIN" cert revoke t1 --device dev-nobody
grep -q NOT_FOUND "$WORK/err" || fail "unknown device: $(cat "$WORK/err")"

# OpenSSL as relying party: revoked ones refused, the others accepted
fetch_crl t1
[ "$(crl_number "$WORK/crl.pem")" = 3 ] || fail "CRL number after two revocations"
openssl crl -in "$WORK/crl.pem" -noout -text >"$WORK/crl.txt"
grep -q "Key Compromise" "$WORK/crl.txt" || fail "reasonCode keyCompromise missing"
grep -q "Cessation Of Operation" "$WORK/crl.txt" || fail "reasonCode cessationOfOperation missing"
for n in a b1 b2; do
	if verify_with "$WORK/ca-old.pem" $n; then fail "revoked $n verified with -crl_check"; fi
	grep -q "certificate revoked" "$WORK/vout" || fail "$n: $(cat "$WORK/vout")"
done
verify_with "$WORK/ca-old.pem" c || fail "dev-c: $(cat "$WORK/vout")"

# GnuTLS and NSS accept the CRL's signature
certtool --verify-crl --load-ca-certificate "$WORK/ca-old.pem" --infile "$WORK/crl.pem" >"$WORK/gt" 2>&1 ||
	fail "certtool --verify-crl: $(cat "$WORK/gt")"
grep -qi "verified" "$WORK/gt" || fail "certtool: $(cat "$WORK/gt")"
mkdir "$WORK/nssdb"
certutil -N -d "sql:$WORK/nssdb" --empty-password
certutil -A -d "sql:$WORK/nssdb" -n t1-ca -t "CT,C,C" -i "$WORK/ca-old.pem"
# import checks the signature against the issuer in the database (no -B)
crlutil -I -d "sql:$WORK/nssdb" -i "$WORK/crl.der" -t 1 >"$WORK/nss" 2>&1 ||
	fail "crlutil import: $(cat "$WORK/nss")"
crlutil -L -d "sql:$WORK/nssdb" >"$WORK/nss" 2>&1 || fail "crlutil -L: $(cat "$WORK/nss")"
grep -q "^t1-ca *CRL" "$WORK/nss" || fail "crlutil does not list the CRL: $(cat "$WORK/nss")"
# and refuses one whose signature does not verify (a byte of the signature
# flipped), so the import above was a real check
cp "$WORK/crl.der" "$WORK/bad.der"
printf '\x00' | dd of="$WORK/bad.der" bs=1 seek=$(($(stat -c %s "$WORK/bad.der") - 3)) conv=notrunc 2>/dev/null
mkdir "$WORK/nssdb2"
certutil -N -d "sql:$WORK/nssdb2" --empty-password
certutil -A -d "sql:$WORK/nssdb2" -n t1-ca -t "CT,C,C" -i "$WORK/ca-old.pem"
if crlutil -I -d "sql:$WORK/nssdb2" -i "$WORK/bad.der" -t 1 >"$WORK/nss" 2>&1; then
	fail "crlutil imported a CRL with a broken signature"
fi

# OCSP: revoked, good, unknown, through tca-client and openssl ocsp
expect_rc 1 "ocsp revoked" "$TCA_CLIENT" ocsp --tenant t1 --cert "$WORK/a.pem"
grep -q "revoked at .*(keyCompromise)" "$WORK/out" || fail "ocsp revoked: $(cat "$WORK/out")"
expect_rc 0 "ocsp good" "$TCA_CLIENT" ocsp --tenant t1 --cert "$WORK/c.pem" \
	--out "$WORK/resp.der" --reqout "$WORK/req.der"
grep -q ": good" "$WORK/out" || fail "ocsp good: $(cat "$WORK/out")"
# -reqin with -respin: openssl checks the signature and the nonce against the
# request tca-client sent (-cert would add a second request and nonce)
openssl ocsp -reqin "$WORK/req.der" -respin "$WORK/resp.der" -CAfile "$WORK/ca-old.pem" -verify_other "$WORK/ca-old.pem" \
	-resp_text >"$WORK/os" 2>&1 || fail "openssl ocsp: $(cat "$WORK/os")"
grep -q "Response verify OK" "$WORK/os" || fail "openssl ocsp verify: $(cat "$WORK/os")"
grep -q "Cert Status: good" "$WORK/os" || fail "openssl ocsp status: $(cat "$WORK/os")"
grep -q "OCSP Nonce" "$WORK/os" || fail "openssl ocsp: no nonce in the response"
if grep -qi "nonce verify error" "$WORK/os"; then fail "openssl ocsp: $(cat "$WORK/os")"; fi
# and the other way round: openssl's own request (SHA-1 CertID, its nonce)
openssl ocsp -issuer "$WORK/ca-old.pem" -cert "$WORK/c.pem" -reqout "$WORK/req2.der" -no_nonce \
	>/dev/null 2>&1 || true
openssl ocsp -issuer "$WORK/ca-old.pem" -cert "$WORK/c.pem" -sha256 -reqout "$WORK/req3.der" \
	>/dev/null 2>&1 || true
expect_rc 1 "ocsp revoked (openssl)" "$TCA_CLIENT" ocsp --tenant t1 --cert "$WORK/b1.pem" \
	--out "$WORK/resp.der" --reqout "$WORK/req.der"
openssl ocsp -reqin "$WORK/req.der" -respin "$WORK/resp.der" -CAfile "$WORK/ca-old.pem" -verify_other "$WORK/ca-old.pem" \
	-resp_text >"$WORK/os" 2>&1 || fail "openssl ocsp: $(cat "$WORK/os")"
grep -q "Response verify OK" "$WORK/os" || fail "openssl ocsp verify (revoked): $(cat "$WORK/os")"
grep -q "Cert Status: revoked" "$WORK/os" || fail "openssl ocsp revoked: $(cat "$WORK/os")"
grep -q "Revocation Reason: cessationOfOperation" "$WORK/os" || fail "openssl ocsp reason: $(cat "$WORK/os")"
# another tenant's certificate asked of t1: unknown
expect_rc 1 "ocsp unknown" "$TCA_CLIENT" ocsp --tenant t1 --cert "$WORK/x.pem"
grep -q ": unknown" "$WORK/out" || fail "ocsp unknown: $(cat "$WORK/out")"

# re-enrollment: refused for a revoked certificate, fine for a good one
openssl req -new -key "$WORK/a.key" -subj "/CN=dev-a" -out "$WORK/a2.csr"
expect_rc 1 "reenroll revoked" "$TCA_CLIENT" reenroll --tenant t1 --device-id dev-a \
	--csr "$WORK/a2.csr" --current "$WORK/a.pem"
grep -q "REVOKED" "$WORK/err" || fail "reenroll revoked: $(cat "$WORK/err")"
openssl req -new -key "$WORK/c.key" -subj "/CN=dev-c" -out "$WORK/c2.csr"
expect_rc 0 "reenroll good" "$TCA_CLIENT" reenroll --tenant t1 --device-id dev-c \
	--csr "$WORK/c2.csr" --current "$WORK/c.pem" --out "$WORK/c2.pem"

# inventory
expect_rc 0 "cert list revoked" "$CA_ADMIN" --json cert list t1 --status revoked
[ "$(jq length "$WORK/out")" = 3 ] || fail "cert list --status revoked: $(jq -c . "$WORK/out")"
expect_rc 0 "cert list device" "$CA_ADMIN" --json cert list t1 --device dev-b
[ "$(jq '[.[] | select(.status == "revoked")] | length' "$WORK/out")" = 2 ] || fail "cert list --device"
expect_rc 0 "cert list valid" "$CA_ADMIN" --json cert list t1 --status valid
[ "$(jq -r '[.[].device_id] | sort | join(",")' "$WORK/out")" = "dev-c,dev-c" ] ||
	fail "cert list --status valid: $(jq -c '[.[].device_id]' "$WORK/out")"
expect_rc 0 "cert list paged" "$CA_ADMIN" --json cert list t1 --limit 2
[ "$(jq length "$WORK/out")" = 2 ] || fail "cert list --limit 2"
expect_rc 0 "cert list all" "$CA_ADMIN" --json cert list t1
[ "$(jq length "$WORK/out")" = 5 ] || fail "cert list: expected 5, got $(jq length "$WORK/out")"
expect_rc 0 "cert show" "$CA_ADMIN" --json cert show t1 "$sa"
[ "$(jq -r .status "$WORK/out")" = revoked ] || fail "cert show: status"
[ "$(jq -r .device_id "$WORK/out")" = dev-a ] || fail "cert show: device_id"
expect_rc 0 "cert show --pem" "$CA_ADMIN" cert show t1 "$sa" --pem
cmp <(openssl x509 -in "$WORK/out" -outform DER) <(openssl x509 -in "$WORK/a.pem" -outform DER) ||
	fail "cert show --pem is not the issued certificate"
expect_rc 0 "status" "$CA_ADMIN" --json status
[ "$(jq -r .certificates.revoked "$WORK/out")" = 3 ] || fail "status: revoked count"
[ "$(jq -r .certificates.valid "$WORK/out")" = 3 ] || fail "status: valid count"

# CRL numbers survive a restart and the CA's re-issuance, and the CRL
# verifies against the old and the new CA certificate alike
tca_stop_engine || fail "engine did not stop cleanly"
tca_start_engine
expect_rc 1 "reenroll revoked after restart" "$TCA_CLIENT" reenroll --tenant t1 --device-id dev-a \
	--csr "$WORK/a2.csr" --current "$WORK/a.pem"
grep -q "REVOKED" "$WORK/err" || fail "reenroll revoked after restart: $(cat "$WORK/err")"
expect_rc 0 "ca reissue" "$CA_ADMIN" ca reissue t1
expect_rc 0 "ca show new" "$CA_ADMIN" ca show t1 --pem
cp "$WORK/out" "$WORK/ca-new.pem"
cmp -s "$WORK/ca-old.pem" "$WORK/ca-new.pem" && fail "re-issuance did not change the CA certificate"
expect_rc 0 "crl sign" "$CA_ADMIN" --json crl sign t1
[ "$(jq -r .number "$WORK/out")" = 4 ] || fail "crl sign after restart and re-issuance: $(jq -c . "$WORK/out")"
fetch_crl t1
[ "$(crl_number "$WORK/crl.pem")" = 4 ] || fail "served CRL number"
for ca in ca-old ca-new; do
	for n in a b1 b2; do
		if verify_with "$WORK/$ca.pem" $n; then fail "$ca: revoked $n verified"; fi
		grep -q "certificate revoked" "$WORK/vout" || fail "$ca/$n: $(cat "$WORK/vout")"
	done
	verify_with "$WORK/$ca.pem" c || fail "$ca: dev-c: $(cat "$WORK/vout")"
	certtool --verify-crl --load-ca-certificate "$WORK/$ca.pem" --infile "$WORK/crl.pem" >"$WORK/gt" 2>&1 ||
		fail "certtool with $ca: $(cat "$WORK/gt")"
done
expect_rc 1 "ocsp revoked after re-issuance" "$TCA_CLIENT" ocsp --tenant t1 --cert "$WORK/a.pem"
grep -q "revoked" "$WORK/out" || fail "ocsp after re-issuance: $(cat "$WORK/out")"

# a deleted and re-created tenant continues the numbers (never reused for
# the same issuer name)
expect_rc 0 "delete t2" "$CA_ADMIN" ca delete t2 --confirm
expect_rc 0 "re-create t2" "$CA_ADMIN" ca create t2
fetch_crl t2
[ "$(crl_number "$WORK/crl.pem")" = 2 ] || fail "re-created t2's first CRL number: $(crl_number "$WORK/crl.pem")"

# a revoked certificate stays refused after its notAfter: re-enrollment
# tolerates an expired current certificate, a revoked one it never accepts,
# also when it had expired before the engine started.  Tenant t3 lives 800
# days in the past (injected clock): its certificate expired long ago.
tca_stop_engine || fail "engine did not stop cleanly"
echo $(( $(date +%s) - 800 * 86400 )) >"$WORK/clock"
cp "$WORK/engine.conf" "$WORK/engine.conf.real"
echo "testing.clock_file = $WORK/clock" >>"$WORK/engine.conf"
tca_start_engine
expect_rc 0 "ca create t3 (past)" "$CA_ADMIN" ca create t3
issue t3 dev-e e
issue t3 dev-f f
expect_rc 0 "revoke dev-e (past)" "$CA_ADMIN" cert revoke t3 "$(serial_of e)" --reason superseded
tca_stop_engine || fail "engine did not stop cleanly"
cp "$WORK/engine.conf.real" "$WORK/engine.conf"
tca_start_engine
openssl req -new -key "$WORK/e.key" -subj "/CN=dev-e" -out "$WORK/e2.csr"
expect_rc 1 "reenroll expired revoked" "$TCA_CLIENT" reenroll --tenant t3 --device-id dev-e \
	--csr "$WORK/e2.csr" --current "$WORK/e.pem"
grep -q "REVOKED" "$WORK/err" || fail "expired revoked certificate re-enrolled: $(cat "$WORK/err")"
openssl req -new -key "$WORK/f.key" -subj "/CN=dev-f" -out "$WORK/f2.csr"
expect_rc 0 "reenroll expired good" "$TCA_CLIENT" reenroll --tenant t3 --device-id dev-f \
	--csr "$WORK/f2.csr" --current "$WORK/f.pem"
# the expired revoked certificate has left the CRL
expect_rc 0 "crl sign t3" "$CA_ADMIN" --json crl sign t3
[ "$(jq -r .entries "$WORK/out")" = 0 ] || fail "expired entry still on the CRL: $(jq -c . "$WORK/out")"

tca_stop_engine || fail "engine did not stop cleanly"
expect_rc 0 "journal verify" "$CA_ADMIN" journal verify --db "$WORK/state.db"
expect_rc 0 "journal export" "$CA_ADMIN" journal export --db "$WORK/state.db" --out "$WORK/j.jsonl"
[ "$(jq -s '[.[] | select(.op == "revoke")] | length' "$WORK/j.jsonl")" = 4 ] || fail "journal: revoke records"
jq -s -e --arg s "$sa" '[.[] | select(.op == "revoke" and .serial == $s)][0].details == "reason=keyCompromise"' \
	"$WORK/j.jsonl" >/dev/null || { jq -c "select(.op == \"revoke\")" "$WORK/j.jsonl"; fail "journal: revoke details $sa"; }
echo "revocation: all checks passed"
