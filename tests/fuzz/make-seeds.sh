#!/bin/sh
# make-seeds.sh - (re)writes the seed corpora in tests/fuzz/corpus/<target>:
# small valid inputs and near-valid variants of each.  The output is checked
# in; run this only to change the seeds (needs openssl and python3).
#   tests/fuzz/make-seeds.sh [CORPUS_DIR]
# Keys and certificates are made fresh each time (throwaway, in a temp dir).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-$here/corpus}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$corpus/frame" "$corpus/csr" "$corpus/reenroll" "$corpus/conf"
cd "$tmp"
ossl() { openssl "$@" 2>/dev/null; }

# ---- PKI objects: two tenant CAs, device keys and CSRs of every key type
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca1.key
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ca2.key
for n in 1 2; do
	ossl req -new -x509 -key ca$n.key -subj "/O=tca/CN=t100" -days 1095 \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign -outform DER -out ca$n.der
done
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
ossl genpkey -algorithm ED25519 -out ed.key
subj="/CN=device-0001/O=Thin Edge"
for k in p256 p384 rsa ed; do
	ossl req -new -key $k.key -subj "$subj/OU=Device" -outform DER -out csr-$k.der
done
ossl req -new -key p256.key -subj "$subj" -out csr-p256.pem
ossl req -new -key rsa.key -subj "$subj/OU=Gateway" -sigopt rsa_padding_mode:pss \
    -outform DER -out csr-pss.der
ossl req -new -key p256.key -subj "/CN=device-0001/O=Thin Edge/C=DE" -outform DER -out csr-c.der
ossl req -new -key p256.key -subj "/CN=Device_1/O=Thin Edge" \
    -addext basicConstraints=critical,CA:TRUE -addext subjectAltName=DNS:x.example \
    -outform DER -out csr-ca.der
ossl req -new -key p384.key -subj "/CN=gw-1/OU=Gateway/OU=Device" -outform DER -out csr-gw.der

# device certificates of CN=device-0001, O=Thin Edge (the reenroll target's
# fixed CSR subject) from each CA, one of another subject, one expired
ossl req -new -key p256.key -subj "$subj" -out dev.csr
for n in 1 2; do
	ossl x509 -req -in dev.csr -CA ca$n.der -CAform DER -CAkey ca$n.key -days 365 \
	    -set_serial 0x0102030405060708090a0b0c0d0e0f10 -outform DER -out dev$n.der
done
ossl x509 -req -in dev.csr -CA ca1.der -CAform DER -CAkey ca1.key -days 365 -out dev1.pem
ossl req -new -key p256.key -subj "/CN=device-0002/O=Thin Edge" -out other.csr
ossl x509 -req -in other.csr -CA ca1.der -CAform DER -CAkey ca1.key -days 30 \
    -outform DER -out other.der
ossl x509 -req -in dev.csr -signkey p256.key -days 30 -outform DER -out self.der

# ---- csr: the CSRs above, and near-valid ones
for f in csr-*.der csr-p256.pem; do cp "$f" "$corpus/csr/$f"; done
head -c 100 csr-p256.der > "$corpus/csr/truncated.der"
{ cat csr-p256.der; printf '\0'; } > "$corpus/csr/trailing.der"
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' csr-p256.pem > "$corpus/csr/legacy.pem"

# ---- reenroll: [u16 len][CA][u16 len][previous CA][presented certificate]
python3 - ca1.der ca2.der dev1.der dev2.der dev1.pem other.der self.der \
    "$corpus/reenroll" <<'PY'
import sys, struct
ca1, ca2, d1, d2, d1pem, other, selfc, out = sys.argv[1:]
rd = lambda p: open(p, 'rb').read()
c1, c2 = rd(ca1), rd(ca2)
L = lambda b: struct.pack('>H', len(b)) + b
seeds = {
  'one-ca-der': L(c1) + L(b'') + rd(d1),
  'one-ca-pem': L(c1) + L(b'') + rd(d1pem),
  'previous-ca': L(c1) + L(c2) + rd(d2),
  'wrong-ca': L(c2) + L(b'') + rd(d1),
  'other-subject': L(c1) + L(b'') + rd(other),
  'self-signed': L(c1) + L(b'') + rd(selfc),
  'truncated': L(c1) + L(b'') + rd(d1)[:150],
  'no-ca': L(b'') + L(b'') + rd(d1),
}
for k, v in seeds.items():
    open(out + '/' + k, 'wb').write(v)
PY

# ---- frame: request and response frames (4-byte length + CBOR map)
python3 - csr-p256.der dev1.der "$corpus/frame" <<'PY'
import sys, struct
csr, cur, out = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]
def head(major, n):
    if n < 24: return bytes([major << 5 | n])
    if n < 256: return bytes([major << 5 | 24, n])
    if n < 65536: return bytes([major << 5 | 25]) + struct.pack('>H', n)
    if n < 2**32: return bytes([major << 5 | 26]) + struct.pack('>I', n)
    return bytes([major << 5 | 27]) + struct.pack('>Q', n)
def enc(x):
    if isinstance(x, bool): return bytes([0xf5 if x else 0xf4])
    if isinstance(x, int): return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, bytes): return head(2, len(x)) + x
    if isinstance(x, str): b = x.encode(); return head(3, len(b)) + b
    if isinstance(x, list): return head(4, len(x)) + b''.join(enc(i) for i in x)
    if isinstance(x, dict): return head(5, len(x)) + b''.join(enc(k) + enc(v) for k, v in x.items())
    raise TypeError(x)
frame = lambda body: struct.pack('>I', len(body)) + body
req = lambda op, args, v=1, i=7: {'v': v, 'id': i, 'op': op, 'args': args}
seeds = {
  'status': frame(enc(req('status', {}))),
  'issue': frame(enc(req('issue', {'tenant': 't100', 'device_id': 'device-0001',
                                   'csr': csr, 'days': 30, 'otp': 'secret'}))),
  'reenroll': frame(enc(req('reenroll', {'tenant': 't100', 'device_id': 'device-0001',
                                         'csr': csr, 'current': cur}))),
  'device-register': frame(enc(req('device.register', {'tenant': 't100',
      'devices': [{'device_id': 'd1'}, {'device_id': 'd2', 'otp': 'pw'}], 'expires_in_s': 3600}))),
  'policy-set': frame(enc(req('policy.set', {'tenant': 't100', 'set': ['max_days=30', 'san=dns']}))),
  'ca-list': frame(enc(req('ca.list', {'all': True, 'after': 't1', 'limit': 10}))),
  'two-frames': frame(enc(req('status', {}))) + frame(enc(req('cacerts', {'tenant': 't100'}, i=8))),
  'bad-version': frame(enc(req('status', {}, v=9))),
  'unknown-op': frame(enc(req('no.such_op', {}))),
  'unknown-arg': frame(enc(req('status', {'x': -5}))),
  'zero-length': struct.pack('>I', 0),
  'too-large': struct.pack('>I', 1 << 20) + b'\xa0',
  'truncated': frame(enc(req('status', {})))[:-3],
  'trailing': frame(enc(req('status', {})) + b'\x00'),
  'indefinite': frame(b'\xbf' + enc('v') + enc(1) + b'\xff'),
  'tagged': frame(b'\xc0' + enc(req('status', {}))),
  'response-ok': frame(enc({'id': 7, 'result': {'version': '0.1.0', 'proto_min': 1,
      'proto_max': 1, 'role': 'admin', 'uptime_s': 5, 'issued': 0}})),
  'response-error': frame(enc({'id': 7, 'error': {'code': 'UNSUPPORTED_VERSION',
      'message': 'no', 'min_version': 1, 'max_version': 1}})),
}
for k, v in seeds.items():
    open(out + '/' + k, 'wb').write(v)
PY

# ---- conf: the shipped examples' shape, every section, and broken lines
cat > "$corpus/conf/minimal.conf" <<'C'
socket.path = /run/tca/engine.sock
token.uri = pkcs11:token=tca
token.pin_file = /etc/tca/user.pin
C
cat > "$corpus/conf/full.conf" <<'C'
# every section
socket.path = /run/tca/engine.sock
socket.mode = 0660
socket.group = root
rpc.max_frame = 65536
rpc.frame_timeout_ms = 5000
rpc.idle_timeout_ms = 60000
rpc.max_connections = 256
rpc.max_connections_per_uid = 32
rpc.admin_reserved_connections = 8
roles.admin_uids = 0, 1000
roles.frontend_uids = 998
roles.frontend_gids = 997,996
roles.admin_gids = 0
token.profile = softhsm2
token.profiles_dir = /etc/tca/hsm-profiles
token.uri = pkcs11:token=tca;slot-id=1
token.pin_env = TCA_PIN
token.module = /usr/lib/softhsm/libsofthsm2.so
token.init_args = configdir=/var/lib/nss
token.pool_size = 4
token.recovery_wait_ms = 2000
token.call_timeout_ms = 10000
store.path = /var/lib/tca/state.db
store.group_commit_max = 64
ca.organization = Example Org
ca.country = DE
ca.validity_days = 1095
ca.default_key_type = ec-p384
device.validity_days = 365
device.registration = none
device.otp_max_failures = 5
device.otp_expiry_days = 30
device.min_validity_days = 7
crl.validity_hours = 168
crl.refresh_percent = 50
ocsp.validity_s = 3600
log.level = debug
log.syslog = true
schedule.enabled = true
schedule.at = 10-02T02:00
schedule.tz = Europe/Berlin
reissue.serial = keep
reissue.retry_min_s = 60
reissue.retry_max_s = 3600
reissue.workers = 2
reissue.rate = 250
alert.command = /usr/local/bin/tca-alert
alert.expiry_window_days = 30
alert.timeout_s = 60
C
printf 'token.uri = pkcs11:token=tca\ntoken.pin_file = a\ntoken.pin_file = b\n' > "$corpus/conf/twice.conf"
printf 'token.uri = pkcs11:token=tca\r\n\ttoken.pin_env=PIN   \r\nno equals sign\n' > "$corpus/conf/crlf.conf"
printf 'token.uri = pkcs11:token=tca\ntoken.pin_env = PIN\nrpc.max_connections = 4\nrpc.admin_reserved_connections = 4\n' > "$corpus/conf/reserved.conf"
printf 'token.uri = x\ntoken.pin_env = P\nsocket.mode = 0999\nroles.admin_uids = 1,,2\n' > "$corpus/conf/bad-values.conf"
printf 'token.uri = x\ntoken.pin_env = P\nreissue.retry_min_s = 100\nreissue.retry_max_s = 99\nalert.command = relative\n' > "$corpus/conf/cross-checks.conf"
echo "seeds written to $corpus"
