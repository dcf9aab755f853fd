#!/bin/sh
# install-deps.sh - Debian 12 packages needed to build, test and demo tca.
# The second group are the real PKCS#11 modules the tests run the engine on
# (tests/integration/modules.sh): openCryptoki's soft token, tpm2-pkcs11 on
# swtpm with tpm2-abrmd, NSS softokn.  The third: what the installed-service
# test needs (tests/integration/install.sh): systemd-analyze and
# systemd-socket-activate, man.  The fourth: the fuzzing and sanitizer
# stages of CI (tools/run-sanitizers.sh): clang with libFuzzer,
# llvm-symbolizer, valgrind.  The fifth: the PostgreSQL store backend
# (libpq-dev) and the server its tests start throwaway clusters of
# (postgresql: Debian 12 ships 15, its programs in /usr/lib/postgresql/15/bin).
# Installs only what is missing; uses sudo when not root.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config
libssl-dev libcbor-dev libsqlite3-dev libp11-kit-dev check
softhsm2 openssl gnutls-bin sqlite3 jq libnss3-tools tzdata
libengine-pkcs11-openssl
libmicrohttpd-dev libgnutls28-dev curl wrk
default-jdk-headless libbcpkix-java libbcutil-java libbcprov-java
opencryptoki libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-tools tpm2-abrmd
libtss2-tcti-tabrmd0 libtss2-tcti-swtpm0 swtpm dbus-daemon dbus-bin libnss3 util-linux
systemd man-db groff-base
clang libclang-rt-14-dev llvm valgrind
libpq-dev postgresql"
missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
