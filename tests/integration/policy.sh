#!/usr/bin/env bash
# policy.sh - each tenant's own legitimacy checks through the real daemon:
# every rule refuses what it must and names itself, a policy change is seen
# by the very next request and survives a restart, a suspended tenant issues
# nothing, the subjectAltName forms, csrattrs, and the journal.
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

key() { # name algorithm-options...
	local name=$1
	shift
	openssl genpkey "$@" -out "$WORK/$name.key" 2>/dev/null
}

csr() { # key subject -> $WORK/req.csr
	openssl req -new -key "$WORK/$1.key" -subj "$2" -out "$WORK/req.csr"
}

issue_ok() { # tenant device what
	expect_rc 0 "$3" "$TCA_CLIENT" issue --tenant "$1" --device-id "$2" --csr "$WORK/req.csr" \
		--out "$WORK/cert.pem"
}

issue_refused() { # tenant device code rule what
	expect_rc 1 "$5" "$TCA_CLIENT" issue --tenant "$1" --device-id "$2" --csr "$WORK/req.csr"
	grep -q "$3" "$WORK/err" || fail "$5: no $3: $(cat "$WORK/err")"
	[ -z "$4" ] || grep -q "$4" "$WORK/err" || fail "$5: refusal does not name rule $4: $(cat "$WORK/err")"
}

tca_setup
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-pol --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
tca_write_config tca-pol
tca_start_engine
expect_rc 0 "ca create" "$CA_ADMIN" ca create t1
expect_rc 0 "ca create t2" "$CA_ADMIN" ca create t2
key p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
key p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
key rsa2k -algorithm RSA -pkeyopt rsa_keygen_bits:2048

expect_rc 0 "policy show" "$CA_ADMIN" policy show t1
grep -q "global policy" "$WORK/out" || fail "policy show of a fresh tenant: $(cat "$WORK/out")"

# default subjectAltName: a URI naming tenant and device
csr p256 "/CN=dev-1"
issue_ok t1 dev-1 "issue with the global policy"
openssl x509 -in "$WORK/cert.pem" -noout -ext subjectAltName >"$WORK/san"
grep -q "URI:urn:tca:device:t1:dev-1" "$WORK/san" || fail "default SAN: $(cat "$WORK/san")"

# key_types: the next request sees the change
expect_rc 0 "policy set key_types" "$CA_ADMIN" policy set t1 key_types=ec-p384
issue_refused t1 dev-1 POLICY_VIOLATION "POLICY_VIOLATION: key_types: " "P-256 key refused"
csr p384 "/CN=dev-1"
issue_ok t1 dev-1 "P-384 key accepted"
# other tenants are not affected
csr p256 "/CN=dev-1"
issue_ok t2 dev-1 "t2 keeps the global policy"

# rsa_min_bits
expect_rc 0 "policy rsa" "$CA_ADMIN" policy set t1 key_types=rsa rsa_min_bits=3072
csr rsa2k "/CN=dev-1"
issue_refused t1 dev-1 POLICY_VIOLATION "POLICY_VIOLATION: rsa_min_bits: " "RSA-2048 refused"

# max_days caps the validity
expect_rc 0 "policy max_days" "$CA_ADMIN" policy set t1 key_types= rsa_min_bits= max_days=30
csr p256 "/CN=dev-1"
issue_ok t1 dev-1 "issue with max_days"
nb=$(date -d "$(openssl x509 -in "$WORK/cert.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$WORK/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $((na - nb)) = $((30 * 86400)) ] || fail "max_days=30 gave $(((na - nb) / 86400)) days"

# O: required and allowed values
expect_rc 0 "policy o" "$CA_ADMIN" policy set t1 "o=Acme Corp|Beta" o_required=true
csr p256 "/CN=dev-1"
issue_refused t1 dev-1 POLICY_VIOLATION "POLICY_VIOLATION: o_required: " "no O"
csr p256 "/CN=dev-1/O=Other"
issue_refused t1 dev-1 POLICY_VIOLATION "POLICY_VIOLATION: o: " "O not allowed"
grep -q "Other" "$WORK/err" || fail "the O refusal does not say what was found"
csr p256 "/CN=dev-1/O=Acme Corp"
issue_ok t1 dev-1 "allowed O"

# OU
expect_rc 0 "policy ou" "$CA_ADMIN" policy set t1 o= o_required= ou=Sensors ou_required=true
csr p256 "/CN=dev-1/OU=Pumps"
issue_refused t1 dev-1 POLICY_VIOLATION "POLICY_VIOLATION: ou: " "OU not allowed"
csr p256 "/CN=dev-1/OU=Sensors"
issue_ok t1 dev-1 "allowed OU"

# device id pattern
expect_rc 0 "policy pattern" "$CA_ADMIN" policy set t1 ou= ou_required= 'device_id_pattern=sensor-[0-9]*'
csr p256 "/CN=pump-1"
issue_refused t1 pump-1 POLICY_VIOLATION "POLICY_VIOLATION: device_id_pattern: " "device id not matching"
csr p256 "/CN=sensor-42"
issue_ok t1 sensor-42 "device id matching"
expect_rc 1 "bad pattern" "$CA_ADMIN" policy set t1 'device_id_pattern=[a-'
grep -q "device_id_pattern" "$WORK/err" || fail "bad pattern: $(cat "$WORK/err")"

# SAN forms
expect_rc 0 "policy san=dns" "$CA_ADMIN" policy set t1 device_id_pattern= san=dns
csr p256 "/CN=sensor-7.example.com"
issue_ok t1 sensor-7.example.com "san=dns"
openssl x509 -in "$WORK/cert.pem" -noout -ext subjectAltName >"$WORK/san"
grep -q "DNS:sensor-7.example.com" "$WORK/san" || fail "san=dns: $(cat "$WORK/san")"
csr p256 "/CN=not a host name"
issue_refused t1 "not a host name" POLICY_VIOLATION "POLICY_VIOLATION: san: " "san=dns with a non-host-name id"
expect_rc 0 "policy san=none" "$CA_ADMIN" policy set t1 san=none
csr p256 "/CN=dev-1"
issue_ok t1 dev-1 "san=none"
if openssl x509 -in "$WORK/cert.pem" -noout -ext subjectAltName 2>/dev/null | grep -q "URI\|DNS"; then
	fail "san=none still has a subjectAltName"
fi

# invalid assignments are refused as a whole, naming the key
expect_rc 1 "bad key" "$CA_ADMIN" policy set t1 colour=blue
grep -q "colour" "$WORK/err" || fail "unknown key: $(cat "$WORK/err")"
expect_rc 1 "bad value" "$CA_ADMIN" policy set t1 max_days=0x10 san=uri
grep -q "max_days" "$WORK/err" || fail "bad value: $(cat "$WORK/err")"
expect_rc 0 "policy show --json" "$CA_ADMIN" --json policy show t1
[ "$(jq -r .san "$WORK/out")" = none ] || fail "a refused set changed the policy: $(cat "$WORK/out")"
[ "$(jq -r .max_days "$WORK/out")" = 30 ] || fail "policy show --json: max_days"

# suspension: issue and reenroll refused, typed; resume
csr p256 "/CN=dev-1"
issue_ok t1 dev-1 "before suspension"
cp "$WORK/cert.pem" "$WORK/current.pem"
expect_rc 0 "suspend" "$CA_ADMIN" ca suspend t1
issue_refused t1 dev-1 TENANT_SUSPENDED "" "issue while suspended"
expect_rc 1 "reenroll while suspended" "$TCA_CLIENT" reenroll --tenant t1 --device-id dev-1 \
	--csr "$WORK/req.csr" --current "$WORK/current.pem"
grep -q TENANT_SUSPENDED "$WORK/err" || fail "reenroll while suspended: $(cat "$WORK/err")"
expect_rc 0 "ca show suspended" "$CA_ADMIN" --json ca show t1
[ "$(jq -r .suspended "$WORK/out")" = true ] || fail "ca show: not marked suspended"

# the policy survives a restart
tca_stop_engine || fail "engine did not stop cleanly"
tca_start_engine
issue_refused t1 dev-1 TENANT_SUSPENDED "" "suspended after restart"
expect_rc 0 "resume" "$CA_ADMIN" ca resume t1
issue_ok t1 dev-1 "issue after resume"

# csrattrs from the policy
expect_rc 0 "policy for csrattrs" "$CA_ADMIN" policy set t1 key_types=ec-p384 o=Acme o_required=true san=
expect_rc 0 "csrattrs" "$TCA_CLIENT" csrattrs --tenant t1 --out "$WORK/ca.der"
openssl asn1parse -inform DER -in "$WORK/ca.der" >"$WORK/asn1" || fail "csrattrs does not parse"
for want in id-ecPublicKey secp384r1 ecdsa-with-SHA384 commonName organizationName Acme; do
	grep -q "$want" "$WORK/asn1" || fail "csrattrs lacks $want: $(cat "$WORK/asn1")"
done
expect_rc 1 "csrattrs unknown tenant" "$TCA_CLIENT" csrattrs --tenant nobody --out "$WORK/x.der"
grep -q NOT_FOUND "$WORK/err" || fail "csrattrs of an unknown tenant: $(cat "$WORK/err")"

tca_stop_engine || fail "engine did not stop cleanly"
expect_rc 0 "journal verify" "$CA_ADMIN" journal verify --db "$WORK/state.db"
expect_rc 0 "journal export" "$CA_ADMIN" journal export --db "$WORK/state.db" --out "$WORK/j.jsonl"
n=$(jq -s '[.[] | select(.op == "policy-set")] | length' "$WORK/j.jsonl")
[ "$n" = 11 ] || fail "journal: $n policy-set records, expected 11"
jq -s -e '[.[] | select(.op == "policy-set")][0].details == "key_types=ec-p384\n"' "$WORK/j.jsonl" \
	>/dev/null || fail "journal: first policy-set details"
echo "policy: all checks passed"
