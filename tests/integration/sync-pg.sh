#!/usr/bin/env bash
# sync-pg.sh - engines sharing one PostgreSQL store and one token see each
# other's changes (issue 13): no stale cache serves a deleted or re-issued
# CA, a revoked certificate or an old tenant policy.
#
# node1 makes every change (ca-admin).  node2 runs with
# testing.follow_other_engines = false: it never hears of them, so what it
# refuses is refused by the store's own checks in the commit (a certificate
# names the CA and policy it was made from, a re-enrollment the certificate
# it renews) and what it finds it finds by reading the store on a cache
# miss.  node3 follows (LISTEN/NOTIFY, and a journal read every second):
# its caches - read paths such as cacerts and OCSP, which commit nothing -
# catch up without any request of its own.  Synchronised on exits, the
# database and bounded polls of node3's answers, never on sleeps alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-nodes.sh"
require_tool jq

pg_start

pg_token_init tca-sync
pg_node_configs 3 tca-sync "schedule.enabled = false"
echo "testing.follow_other_engines = false" >>"$WORK/node2.conf"
admin() { # node args...
	local n=$1
	shift
	TCA_SOCKET="$WORK/node$n.sock" "$CA_ADMIN" "$@"
}
client() { # node args...
	local n=$1
	shift
	TCA_SOCKET="$WORK/node$n.sock" "$TCA_CLIENT" "$@"
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dev.key" 2>/dev/null
csr() { # cn
	[ -f "$WORK/$1.csr" ] || openssl req -new -key "$WORK/dev.key" -subj "/CN=$1" -out "$WORK/$1.csr"
}
issue() { # node tenant device -> $WORK/<device>.pem; the engine's answer in $WORK/err
	csr "$3"
	client "$1" issue --tenant "$2" --device-id "$3" --csr "$WORK/$3.csr" \
		--out "$WORK/$3.pem" 2>"$WORK/err"
}
expect_refused() { # code what cmd...
	local code=$1 what=$2
	shift 2
	if "$@"; then
		fail "$what: succeeded, expected $code"
	fi
	grep -q "$code" "$WORK/err" || fail "$what: not $code: $(cat "$WORK/err")"
}
until_ok() { # what cmd... : node3 catches up by itself within 10 s
	local what=$1
	shift
	for _ in $(seq 1 200); do
		"$@" && return 0
		sleep 0.05
	done
	fail "node3 did not catch up: $what"
}

start_node 1
start_node 2
start_node 3

# a CA created on node1 issues on node2 at once: the cache miss reads it
admin 1 ca create acme >/dev/null || fail "ca create acme"
issue 2 acme dev-a || fail "node2 cannot issue for a CA node1 just created: $(cat "$WORK/err")"
grep -q "cache refreshed from the store: CA new" "$WORK/node2.log" || fail "node2 did not read the new CA"
issue 3 acme dev-b || fail "node3: $(cat "$WORK/err")"
client 1 cacerts --tenant acme >"$WORK/ca1.pem"
openssl verify -CAfile "$WORK/ca1.pem" "$WORK/dev-a.pem" >/dev/null || fail "dev-a does not verify"

# a policy node1 sets binds node2's next certificate, although node2's
# cache still has the old one: the store refuses the commit made from it,
# node2 reads the policy and decides again
admin 1 ca suspend acme >/dev/null || fail "ca suspend"
expect_refused TENANT_SUSPENDED "node2 issuing for a suspended tenant" issue 2 acme dev-c
grep -q "changed through another engine while issuing" "$WORK/node2.log" ||
	fail "node2 was not refused by the store (stale policy)"
admin 1 ca resume acme >/dev/null || fail "ca resume"
issue 2 acme dev-c || fail "node2 after resume: $(cat "$WORK/err")"
# a policy set on node2 from its stale cache does not undo node1's change
admin 1 policy set acme max_days=30 >/dev/null || fail "policy set on node1"
admin 2 policy set acme key_types=ec-p256 >/dev/null || fail "policy set on node2"
sql "SELECT policy FROM cas WHERE tenant = 'acme' AND status = 'active'" >"$WORK/policy.txt"
grep -q "max_days" "$WORK/policy.txt" && grep -q "key_types" "$WORK/policy.txt" ||
	fail "a policy change was lost: $(cat "$WORK/policy.txt")"
grep -q "policy changed through another engine meanwhile" "$WORK/node2.log" ||
	fail "node2's policy set was not refused by the store first"
until_ok "policy show" sh -c "TCA_SOCKET='$WORK/node3.sock' '$CA_ADMIN' policy show acme |
	grep -q key_types"

# a certificate node1 revokes cannot be re-enrolled on node2
serial_a=$(openssl x509 -in "$WORK/dev-a.pem" -noout -serial | cut -d= -f2)
admin 1 cert revoke acme "$serial_a" >/dev/null || fail "revoke dev-a"
reenroll() { # node device
	client "$1" reenroll --tenant acme --device-id "$2" --csr "$WORK/$2.csr" \
		--current "$WORK/$2.pem" --out "$WORK/$2.renewed.pem" 2>"$WORK/err"
}
expect_refused REVOKED "node2 re-enrolling a certificate node1 revoked" reenroll 2 dev-a
grep -q "revoked (through another engine" "$WORK/err" ||
	fail "node2's own revocation set refused it, not the store: $(cat "$WORK/err")"
# node3, following, answers OCSP from its own revocation set
until_ok "OCSP revoked" sh -c "TCA_SOCKET='$WORK/node3.sock' '$TCA_CLIENT' ocsp --tenant acme \
	--cert '$WORK/dev-a.pem' 2>/dev/null | grep -q revoked"

# a CA node1 re-issues: node3's cacerts serves the new certificate
old_fp=$(openssl x509 -in "$WORK/ca1.pem" -noout -fingerprint -sha256)
admin 1 ca reissue acme >/dev/null || fail "ca reissue"
client 1 cacerts --tenant acme | openssl x509 -noout -fingerprint -sha256 >"$WORK/new.fp"
[ "$(cat "$WORK/new.fp")" != "$old_fp" ] || fail "the CA was not re-issued"
until_ok "cacerts after re-issue" sh -c "TCA_SOCKET='$WORK/node3.sock' '$TCA_CLIENT' cacerts \
	--tenant acme | openssl x509 -noout -fingerprint -sha256 | cmp -s - '$WORK/new.fp'"

# a CA node1 deletes issues nothing on node2 (its cache still has it) ...
admin 1 ca delete acme --confirm >/dev/null || fail "ca delete"
expect_refused NOT_FOUND "node2 issuing for a deleted CA" issue 2 acme dev-d
until_ok "ca show after delete" sh -c "! TCA_SOCKET='$WORK/node3.sock' '$CA_ADMIN' ca show acme \
	>/dev/null 2>&1"
# ... and created anew, node2 issues from the new CA, never the old key
admin 1 ca create acme >/dev/null || fail "ca create acme again"
client 1 cacerts --tenant acme >"$WORK/ca2.pem"
# (node2 looked for the old key a moment ago and found it gone: the token
# layer does not search for a key id again within a second, so node2 may
# answer TOKEN_UNAVAILABLE that long - and nothing else)
for _ in $(seq 1 100); do
	issue 2 acme dev-e && break
	grep -q TOKEN_UNAVAILABLE "$WORK/err" || fail "node2 after re-create: $(cat "$WORK/err")"
	sleep 0.05
done
[ -s "$WORK/dev-e.pem" ] || fail "node2 did not issue from the new CA within 5 s"
openssl verify -CAfile "$WORK/ca2.pem" "$WORK/dev-e.pem" >/dev/null ||
	fail "node2's certificate does not verify against the new CA"

# a CA node1 created, deleted through node2 (which never cached it): a CA
# deletion - journaled, the CA row deleted - not an "orphan key" destroyed
# under a CA that stays active
admin 1 ca create gamma >/dev/null || fail "ca create gamma"
admin 2 ca delete gamma --confirm >"$WORK/del.out" 2>&1 || fail "node2 ca delete gamma: $(cat "$WORK/del.out")"
[ "$(sql "SELECT count(*) FROM cas WHERE tenant = 'gamma' AND status = 'active'")" = 0 ] ||
	fail "node2 destroyed gamma's key as an orphan: the CA is still active"
[ "$(sql "SELECT count(*) FROM journal WHERE tenant = 'gamma' AND op = 'ca-delete'")" = 1 ] ||
	fail "gamma's deletion is not journaled"

# status: who follows, and how far node3 has read the journal
[ "$(admin 3 status --json | jq -r .store.sync)" = following ] || fail "node3 sync"
[ "$(admin 2 status --json | jq -r .store.sync)" = not-following ] || fail "node2 sync"
head=$(sql "SELECT seq FROM journal_head")
until_ok "synced_seq" sh -c "TCA_SOCKET='$WORK/node3.sock' '$CA_ADMIN' status --json |
	jq -e '.store.synced_seq >= $head' >/dev/null"
admin 3 status --json | jq -r .store.node | grep -q ':' || fail "node3 has no node id"

n_issue=$(sql "SELECT count(*) FROM journal WHERE op IN ('issue', 'reenroll')")
[ "$n_issue" = 4 ] || fail "$n_issue certificates journaled, 4 expected (dev-a, b, c, e)"
"$CA_ADMIN" journal verify --store "$DB" >/dev/null || fail "journal verify"
echo "PASS: changes made on one engine bind the others at once"
