#!/usr/bin/env bash
# demo.sh - the README walkthrough, against a throwaway SoftHSMv2 token:
# provision a token, start the engine, create tenant t100's CA inside the
# token, register a device and issue its certificate from an openssl-made CSR
# with its one-time password, verify it, re-issue the CA, revoke a second
# device and check the CRL, stop cleanly.  Also run by `make check`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool certtool

step() { printf '\n==> %s\n' "$*"; }

tca_setup
step "1. Provision a throwaway SoftHSMv2 token in $WORK/tokens"
"$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" --label tca-demo \
	--so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"

step "2. Start tca-engined (socket $WORK/engine.sock, state store $WORK/state.db)"
export TCA_REGISTRATION=required	# devices need a registered one-time password
tca_write_config tca-demo
tca_start_engine
"$CA_ADMIN" status | sed -n '1,12p'

step "3. Create tenant t100's CA: EC P-256 key generated inside the token"
"$CA_ADMIN" ca create t100

step "4. A device makes its key and CSR (CN = device id, O=Thin Edge, OU=Device)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/device.key" 2>/dev/null
openssl req -new -key "$WORK/device.key" -subj "/CN=device-0001/O=Thin Edge/OU=Device" \
	-out "$WORK/device.csr"
echo "CSR: $(openssl req -in "$WORK/device.csr" -noout -subject)"

step "5. Register the device: the engine makes a one-time password, stores only its hash"
register() { # device: the generated password into $WORK/<device>.otp (mode 0600)
	"$CA_ADMIN" device register t100 "$1" --expires 7d >"$WORK/reg.out"
	(umask 077; sed -n 's/^one-time password: //p' "$WORK/reg.out" >"$WORK/$1.otp")
	grep -v "one-time password" "$WORK/reg.out" || true
	echo "(password written to $WORK/$1.otp for the device)"
}
register device-0001
"$CA_ADMIN" device show t100 device-0001

step "6. The EST front end asks the engine to issue (tca-client issue), with the password"
"$TCA_CLIENT" issue --tenant t100 --device-id device-0001 --csr "$WORK/device.csr" \
	--otp-file "$WORK/device-0001.otp" --out "$WORK/device.pem"
echo "the same password a second time is refused:"
if "$TCA_CLIENT" issue --tenant t100 --device-id device-0001 --csr "$WORK/device.csr" \
	--otp-file "$WORK/device-0001.otp" --out /dev/null; then
	echo "a one-time password was used twice" >&2
	exit 1
fi
"$TCA_CLIENT" cacerts --tenant t100 >"$WORK/ca.pem"

step "7. Verify the device certificate against the tenant CA"
openssl verify -x509_strict -purpose sslclient -CAfile "$WORK/ca.pem" "$WORK/device.pem"
cat "$WORK/device.pem" "$WORK/ca.pem" >"$WORK/chain.pem"
certtool --verify-chain --infile "$WORK/chain.pem" | grep 'Chain verification output'
openssl x509 -in "$WORK/device.pem" -noout -subject -issuer -dates -serial

step "8. The yearly re-issuance (normally 2 October 02:00), by hand: same key, new validity"
sleep 2	# a forced re-issuance starts its validity now: let "now" move visibly
"$CA_ADMIN" ca reissue t100 --dry-run
"$CA_ADMIN" ca reissue t100
"$CA_ADMIN" ca show t100 --pem >"$WORK/ca-new.pem"
echo "the device certificate issued before still verifies against the re-issued CA:"
openssl verify -x509_strict -purpose sslclient -CAfile "$WORK/ca-new.pem" "$WORK/device.pem"

step "9. A second device is lost: revoke it; the CRL (signed in the token) says so"
register device-0002
openssl req -new -key "$WORK/device.key" -subj "/CN=device-0002" -out "$WORK/device2.csr"
"$TCA_CLIENT" issue --tenant t100 --device-id device-0002 --csr "$WORK/device2.csr" \
	--otp-file "$WORK/device-0002.otp" --out "$WORK/device2.pem"
"$CA_ADMIN" cert revoke t100 --device device-0002 --reason keyCompromise
"$TCA_CLIENT" crl --tenant t100 --pem --out "$WORK/crl.pem"
openssl crl -in "$WORK/crl.pem" -noout -crlnumber -lastupdate -nextupdate
echo "device-0001 still verifies with CRL checking, device-0002 does not:"
openssl verify -crl_check -CAfile "$WORK/ca-new.pem" -CRLfile "$WORK/crl.pem" "$WORK/device.pem"
if openssl verify -crl_check -CAfile "$WORK/ca-new.pem" -CRLfile "$WORK/crl.pem" \
	"$WORK/device2.pem" 2>&1; then
	echo "a revoked certificate verified" >&2
	exit 1
fi
"$TCA_CLIENT" ocsp --tenant t100 --cert "$WORK/device2.pem" || true
"$CA_ADMIN" cert list t100

step "10. Stop the engine (SIGTERM: drain, log out, exit 0) and check the audit journal"
tca_stop_engine
"$CA_ADMIN" journal verify --db "$WORK/state.db"
echo
echo "demo complete: the CA key never left the token; the journal chain is intact."
