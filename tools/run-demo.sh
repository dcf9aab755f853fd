#!/bin/sh
# run-demo.sh - README command one: install what is missing, build, and run
# the walkthrough against a throwaway SoftHSMv2 token.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
[ -x configure ] || ./autogen.sh
[ -f Makefile ] || ./configure
make -j"$(nproc)"
make demo
