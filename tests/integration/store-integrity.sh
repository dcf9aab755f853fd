#!/usr/bin/env bash
# store-integrity.sh - the state store against a second engine and against
# tampering (issue 11): one engine per store (exclusive lock, read-only
# audits still work), the checks at start (journal chain, guard triggers,
# certificates against the journal), and a store whose files are unlinked
# under the running engine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_tool softhsm2-util
require_tool openssl
require_tool jq
require_tool sqlite3

expect_rc() { # expected-rc description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}

# issue TENANT DEVICE NAME [expected-rc]: key, CSR, certificate in $WORK/NAME.{key,csr,pem}
issue() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$3.key" 2>/dev/null
	openssl req -new -key "$WORK/$3.key" -subj "/CN=$2" -out "$WORK/$3.csr"
	expect_rc "${4:-0}" "issue $3" "$TCA_CLIENT" issue --tenant "$1" --device-id "$2" \
		--csr "$WORK/$3.csr" --out "$WORK/$3.pem"
}

serial_of() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

# a second engine on the same configuration but its own socket and log;
# waits for it to exit (bounded) and returns its exit status
second_engine() {
	local rc=0
	sed "s|^socket.path = .*|socket.path = $WORK/second.sock|" "$WORK/engine.conf" >"$WORK/second.conf"
	chmod 0600 "$WORK/second.conf"
	: >"$WORK/second.log"
	timeout 60 "$ENGINED" --config "$WORK/second.conf" 2>>"$WORK/second.log" || rc=$?
	return $rc
}

tca_setup
expect_rc 0 "token init" "$CA_ADMIN" token init --profile "$TCA_SRCDIR/hsm-profiles/softhsm2.conf" \
	--label tca-store --so-pin-file "$WORK/so.pin" --pin-file "$WORK/user.pin"
tca_write_config tca-store
tca_start_engine

expect_rc 0 "ca create t1" "$CA_ADMIN" ca create t1
issue t1 dev-a a

# --- 1. one engine per store ---------------------------------------------
rc=0
second_engine || rc=$?
[ "$rc" != 0 ] || fail "a second engine started on a store in use"
[ "$rc" != 124 ] || fail "the second engine neither served nor exited"
grep -q "store $WORK/state.db is in use by another engine (pid $ENGINE_PID" "$WORK/second.log" ||
	{ cat "$WORK/second.log" >&2; fail "the refusal does not name the store and the holder's pid"; }
[ ! -e "$WORK/second.sock" ] || fail "the refused engine opened a socket"
kill -0 "$ENGINE_PID" || fail "the first engine died"
# the audit commands open the store read-only and keep working meanwhile
expect_rc 0 "journal verify while the engine runs" "$CA_ADMIN" journal verify --config "$WORK/engine.conf"
grep -q "journal OK: 3 records" "$WORK/out" || fail "journal verify: $(cat "$WORK/out")"
expect_rc 0 "journal export while the engine runs" "$CA_ADMIN" journal export --db "$WORK/state.db"
[ "$(wc -l <"$WORK/out")" = 3 ] || fail "journal export: $(cat "$WORK/out")"
# the first engine still serves, and after it stops another may take the store
issue t1 dev-b b
tca_stop_engine || fail "engine exit status"
tca_start_engine
expect_rc 0 "ca show t1 after restart" "$CA_ADMIN" ca show t1

# --- 2. checks at start ---------------------------------------------------
tca_stop_engine || fail "engine exit status"
sqlite3 "$WORK/state.db" ".backup '$WORK/good.db'"
# dropped and altered guard triggers are restored, each with an ALERT
sqlite3 "$WORK/state.db" "DROP TRIGGER journal_no_delete; DROP TRIGGER revocations_no_delete;
	DROP TRIGGER journal_no_update; CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
	WHEN 0 BEGIN SELECT 1; END;"
tca_start_engine
grep -q "ALERT: trigger journal_no_delete of $WORK/state.db was missing: restored" "$WORK/engine.log" ||
	fail "no ALERT for the dropped journal_no_delete"
grep -q "ALERT: trigger journal_no_update of $WORK/state.db had been altered: restored" "$WORK/engine.log" ||
	fail "no ALERT for the altered journal_no_update"
grep -q "ALERT: trigger revocations_no_delete of $WORK/state.db was missing: restored" "$WORK/engine.log" ||
	fail "no ALERT for the dropped revocations_no_delete"
if sqlite3 "$WORK/state.db" "DELETE FROM journal WHERE seq = 1" 2>"$WORK/err"; then
	fail "the journal accepts DELETE after a restart"
fi
grep -q "append-only" "$WORK/err" || fail "DELETE refused, but not by the trigger: $(cat "$WORK/err")"
grep -q "journal of sqlite:$WORK/state.db verified at start: 4 records" "$WORK/engine.log" ||
	fail "no journal verification at start"
issue t1 dev-c c
tca_stop_engine || fail "engine exit status"
# an edited journal record: the engine refuses to start, naming it
sqlite3 "$WORK/state.db" "DROP TRIGGER journal_no_update;
	UPDATE journal SET subject = 'CN=someone-else' WHERE seq = 3;"
: >"$WORK/engine.log"
rc=0
timeout 120 "$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" || rc=$?
[ "$rc" = 1 ] || fail "engine on an edited journal: exit $rc, expected 1"
grep -q "the journal of sqlite:$WORK/state.db is broken at record 3 (hash mismatch" "$WORK/engine.log" ||
	fail "the refusal does not name record 3"
[ ! -e "$WORK/engine.sock" ] || fail "the refused engine left a socket"
# back to the copy taken before the tampering
cp "$WORK/good.db" "$WORK/state.db"
rm -f "$WORK/state.db-wal" "$WORK/state.db-shm"
tca_start_engine

# --- 3. certificates against the journal ----------------------------------
issue t1 dev-d d
issue t1 dev-e e
sd=$(serial_of d)
se=$(serial_of e)
expect_rc 0 "revoke dev-e" "$CA_ADMIN" cert revoke t1 "$se" --reason keyCompromise
expect_rc 0 "journal verify, intact" "$CA_ADMIN" journal verify --db "$WORK/state.db"
grep -q "certificates OK: 5 rows match the journal" "$WORK/out" || fail "journal verify: $(cat "$WORK/out")"
tca_stop_engine || fail "engine exit status"
sqlite3 "$WORK/state.db" ".backup '$WORK/good.db'"
# a deleted certificate row and a deleted revocation, guards dropped first
sqlite3 "$WORK/state.db" "DROP TRIGGER certificates_no_delete; DROP TRIGGER revocations_no_delete;
	DELETE FROM revocations; DELETE FROM certificates WHERE serial = x'$sd';"
expect_rc 4 "journal verify, certificate row deleted" "$CA_ADMIN" journal verify --db "$WORK/state.db"
grep -q "journal OK" "$WORK/out" || fail "the chain itself is intact: $(cat "$WORK/out")"
grep -q "certificates DO NOT MATCH the journal: 2 problem(s)" "$WORK/out" || fail "journal verify: $(cat "$WORK/out")"
grep -q "certificate serial $sd recorded by journal record [0-9]* has no row in the store (row deleted)" "$WORK/out" ||
	fail "the deleted row is not named: $(cat "$WORK/out")"
grep -q "certificate serial $se of tenant t1: journal record [0-9]* revoked it, but the store does not show it revoked" "$WORK/out" ||
	fail "the deleted revocation is not named: $(cat "$WORK/out")"
expect_rc 4 "journal verify --json" "$CA_ADMIN" --json journal verify --db "$WORK/state.db"
[ "$(jq -r .ok "$WORK/out")" = false ] || fail "--json ok"
[ "$(jq -r .certificate_problems "$WORK/out")" = 2 ] || fail "--json problems: $(cat "$WORK/out")"
# an altered DER (its fingerprint left alone): journal verify reads every DER
cp "$WORK/good.db" "$WORK/state.db"
sqlite3 "$WORK/state.db" "UPDATE certificates SET der = x'3003020101' WHERE serial = x'$sd';"
expect_rc 4 "journal verify, DER altered" "$CA_ADMIN" journal verify --db "$WORK/state.db"
grep -q "certificate serial $sd of tenant t1 (row [0-9]*): its DER does not hash to its fingerprint" "$WORK/out" ||
	fail "the altered DER is not named: $(cat "$WORK/out")"
# the engine's start check refuses a deleted row, naming it
cp "$WORK/good.db" "$WORK/state.db"
sqlite3 "$WORK/state.db" "DROP TRIGGER certificates_no_delete; DELETE FROM certificates WHERE serial = x'$sd';"
: >"$WORK/engine.log"
rc=0
timeout 120 "$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" || rc=$?
[ "$rc" = 1 ] || fail "engine on a store with a deleted certificate: exit $rc, expected 1"
grep -q "certificate serial $sd recorded by journal record [0-9]* has no row in the store" "$WORK/engine.log" ||
	fail "the engine does not name the deleted certificate"
grep -q "1 certificate(s) of sqlite:$WORK/state.db do not match the journal" "$WORK/engine.log" ||
	fail "the engine's refusal does not say why"
cp "$WORK/good.db" "$WORK/state.db"
rm -f "$WORK/state.db-wal" "$WORK/state.db-shm"
tca_start_engine
grep -q "certificates of sqlite:$WORK/state.db match the journal: 5 rows" "$WORK/engine.log" ||
	fail "no cross-check at start"

# --- 3b. the newest records cut off: only a head saved elsewhere shows it ---
expect_rc 0 "journal verify --json" "$CA_ADMIN" --json journal verify --db "$WORK/state.db"
saved="$(jq -r .records "$WORK/out"):$(jq -r .head "$WORK/out")"
issue t1 dev-k k
expect_rc 0 "journal verify --head, grown" "$CA_ADMIN" journal verify --db "$WORK/state.db" --head "$saved"
grep -q "saved head OK: record ${saved%%:*} is still there" "$WORK/out" || fail "--head: $(cat "$WORK/out")"
tca_stop_engine || fail "engine exit status"
sqlite3 "$WORK/state.db" ".backup '$WORK/good.db'"
# the newest records (from the saved head on) and the certificate row of
# dev-k removed, consistently
sk=$(serial_of k)
n=${saved%%:*}
sqlite3 "$WORK/state.db" "DROP TRIGGER journal_no_delete; DROP TRIGGER certificates_no_delete;
	DELETE FROM journal WHERE seq >= $n; DELETE FROM certificates WHERE serial = x'$sk';"
expect_rc 0 "journal verify without a saved head: cannot tell" "$CA_ADMIN" journal verify --db "$WORK/state.db"
expect_rc 4 "journal verify --head, truncated" "$CA_ADMIN" journal verify --db "$WORK/state.db" --head "$saved"
grep -q "saved head MISSING: the journal ends at record $((n - 1)), before the saved head $n" "$WORK/out" ||
	fail "--head after truncation: $(cat "$WORK/out")"
expect_rc 4 "journal verify --head --json" "$CA_ADMIN" --json journal verify --db "$WORK/state.db" --head "$saved"
[ "$(jq -r .ok "$WORK/out")" = false ] || fail "--json ok"
jq -r .saved_head "$WORK/out" | grep -q "newest records were removed" || fail "--json saved_head: $(cat "$WORK/out")"
expect_rc 2 "journal verify --head, malformed" "$CA_ADMIN" journal verify --db "$WORK/state.db" --head "7:abc"
cp "$WORK/good.db" "$WORK/state.db"
rm -f "$WORK/state.db-wal" "$WORK/state.db-shm"
tca_start_engine

# --- 4. store files unlinked or replaced under the running engine ---------
# (the outside testers' reproduction: certificates were returned after the
# files were gone, and lost with them)
issue t1 dev-f f
expect_rc 0 "status before" "$CA_ADMIN" --json status
[ "$(jq -r .store.health "$WORK/out")" = ok ] || fail "store health before: $(jq -c .store "$WORK/out")"
rm -f "$WORK/state.db" "$WORK/state.db-wal" "$WORK/state.db-shm"
issue t1 dev-g g 1
grep -q "JOURNAL_UNAVAILABLE" "$WORK/err" || fail "issue after unlink: $(cat "$WORK/out" "$WORK/err")"
[ ! -s "$WORK/g.pem" ] || fail "a certificate was returned after its store was unlinked"
grep -q "store: $WORK/state.db was unlinked under the running engine" "$WORK/engine.log" ||
	fail "the log does not say what happened"
expect_rc 0 "status after" "$CA_ADMIN" --json status
[ "$(jq -r .store.health "$WORK/out")" = lost ] || fail "store health after: $(jq -c .store "$WORK/out")"
jq -r .store.problem "$WORK/out" | grep -q "state.db was unlinked" || fail "status problem: $(jq -c .store "$WORK/out")"
# it stays refused (no commit may go to the unlinked file), also for admin changes
issue t1 dev-h h 1
grep -q "JOURNAL_UNAVAILABLE" "$WORK/err" || fail "second issue after unlink: $(cat "$WORK/err")"
expect_rc 1 "ca create after unlink" "$CA_ADMIN" ca create t9
# what was committed before the unlink is recovered through /proc, as the
# log says (docs/operations.md): the database and its -wal
fd_of() { # name -> the engine's descriptor of the deleted file
	ls -l "/proc/$ENGINE_PID/fd" | awk -v n="$WORK/$1" '$(NF-1) == n && $NF == "(deleted)" { print $9; exit }'
}
dbfd=$(fd_of state.db)
walfd=$(fd_of state.db-wal)
[ -n "$dbfd" ] && [ -n "$walfd" ] || fail "no deleted store files open: $(ls -l "/proc/$ENGINE_PID/fd")"
cp "/proc/$ENGINE_PID/fd/$dbfd" "$WORK/recovered.db"
cp "/proc/$ENGINE_PID/fd/$walfd" "$WORK/recovered.db-wal"
tca_stop_engine || true
[ ! -e "$WORK/state.db-wal" ] || fail "something recreated the store at the path"
expect_rc 0 "journal verify of the recovered store" "$CA_ADMIN" journal verify --db "$WORK/recovered.db"
sqlite3 "$WORK/recovered.db" "SELECT lower(hex(serial)) FROM certificates" >"$WORK/serials"
grep -qx "$(serial_of f)" "$WORK/serials" || fail "dev-f, issued before the unlink, is not in the recovered store"

# a store replaced by another file under the running engine
rm -f "$WORK/state.db" "$WORK/state.db-wal" "$WORK/state.db-shm"
cp "$WORK/good.db" "$WORK/state.db"
tca_start_engine
issue t1 dev-i i
sqlite3 "$WORK/state.db" ".backup '$WORK/other.db'"
mv "$WORK/other.db" "$WORK/state.db"
issue t1 dev-j j 1
grep -q "JOURNAL_UNAVAILABLE" "$WORK/err" || fail "issue after replace: $(cat "$WORK/err")"
grep -q "store: $WORK/state.db was replaced under the running engine" "$WORK/engine.log" ||
	fail "the log does not say the store was replaced"
tca_stop_engine || true

# --- 5. signed checkpoints ------------------------------------------------
rm -f "$WORK/state.db" "$WORK/state.db-wal" "$WORK/state.db-shm"
cp "$WORK/good.db" "$WORK/state.db"
cat >"$WORK/checkpoint.sh" <<'EOS'
#!/bin/sh
printf '%s\n' "$TCA_CHECKPOINT" >>"$(dirname "$0")/checkpoints.txt"
EOS
chmod 0755 "$WORK/checkpoint.sh"
printf 'journal.checkpoint_interval_s = 1\njournal.checkpoint_command = %s\n' \
	"$WORK/checkpoint.sh" >>"$WORK/engine.conf"
: >"$WORK/engine.log"
tca_start_engine
grep -q "journal checkpoints: generated the audit key in the token (CKA_ID \"tca-journal-audit-v1\"" \
	"$WORK/engine.log" || fail "no audit key generated"
[ -s "$WORK/state.db.audit-key.pem" ] || fail "no public key file"
openssl pkey -pubin -in "$WORK/state.db.audit-key.pem" -noout || fail "the public key file does not parse"
# the first checkpoint is made at start; later ones carry new records
issue t1 dev-l l
last=$(sqlite3 "$WORK/state.db" "SELECT max(seq) FROM journal")
ok=
for _ in $(seq 1 300); do
	if [ -f "$WORK/checkpoints.txt" ] && grep -q "^tca-checkpoint-v1 seq=$last " "$WORK/checkpoints.txt"; then
		ok=1
		break
	fi
	sleep 0.1
done
[ -n "$ok" ] || fail "no checkpoint of record $last: $(cat "$WORK/checkpoints.txt" 2>/dev/null)"
grep -q "journal checkpoint: tca-checkpoint-v1 seq=$last " "$WORK/engine.log" || fail "checkpoint not logged"
grep "^tca-checkpoint-v1 seq=$last " "$WORK/checkpoints.txt" | tail -1 >"$WORK/cp-last.txt"
expect_rc 0 "journal verify --checkpoint" "$CA_ADMIN" journal verify --db "$WORK/state.db" \
	--checkpoint "$WORK/cp-last.txt" --pubkey "$WORK/state.db.audit-key.pem"
grep -q "checkpoint OK: record $last is still there, unchanged (signed " "$WORK/out" || fail "--checkpoint: $(cat "$WORK/out")"
tca_stop_engine || fail "engine exit status"
# the same key at the next start: not generated again
: >"$WORK/engine.log"
tca_start_engine
if grep -q "generated the audit key" "$WORK/engine.log"; then fail "the audit key was generated again"; fi
grep -q "journal checkpoint: tca-checkpoint-v1 seq=$last " "$WORK/engine.log" || fail "no checkpoint at the second start"
tca_stop_engine || fail "engine exit status"
# an altered line, and another key, are refused
sed 's/ seq=[0-9]* / seq=1 /' "$WORK/cp-last.txt" >"$WORK/cp-bad.txt"
expect_rc 4 "journal verify --checkpoint, line altered" "$CA_ADMIN" journal verify --db "$WORK/state.db" \
	--checkpoint "$WORK/cp-bad.txt"
grep -q "checkpoint INVALID: the signature does not verify" "$WORK/out" || fail "altered line: $(cat "$WORK/out")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout >"$WORK/other.pem"
expect_rc 4 "journal verify --checkpoint, other key" "$CA_ADMIN" journal verify --db "$WORK/state.db" \
	--checkpoint "$WORK/cp-last.txt" --pubkey "$WORK/other.pem"
grep -q "checkpoint INVALID: signed by another key" "$WORK/out" || fail "other key: $(cat "$WORK/out")"
# without --pubkey the key is pinned by the file beside the store: the
# same line against another key there is refused, and with it back passes
cp "$WORK/state.db.audit-key.pem" "$WORK/audit-key.saved"
cp "$WORK/other.pem" "$WORK/state.db.audit-key.pem"
expect_rc 4 "journal verify --checkpoint, another key beside the store" "$CA_ADMIN" journal verify \
	--db "$WORK/state.db" --checkpoint "$WORK/cp-last.txt"
grep -q "checkpoint INVALID: signed by another key" "$WORK/out" || fail "default pin: $(cat "$WORK/out")"
cp "$WORK/audit-key.saved" "$WORK/state.db.audit-key.pem"
expect_rc 0 "journal verify --checkpoint, key beside the store" "$CA_ADMIN" journal verify \
	--db "$WORK/state.db" --checkpoint "$WORK/cp-last.txt"
# journal.checkpoint_key_file names it for --config
cp "$WORK/engine.conf" "$WORK/engine-kf.conf"
printf 'journal.checkpoint_key_file = %s\n' "$WORK/other.pem" >>"$WORK/engine-kf.conf"
expect_rc 4 "journal verify --config --checkpoint, checkpoint_key_file" "$CA_ADMIN" journal verify \
	--config "$WORK/engine-kf.conf" --checkpoint "$WORK/cp-last.txt"
grep -q "checkpoint INVALID: signed by another key" "$WORK/out" || fail "key file: $(cat "$WORK/out")"
# the newest records cut off, consistently: the checkpoint shows it
sl=$(serial_of l)
sqlite3 "$WORK/state.db" "DROP TRIGGER journal_no_delete; DROP TRIGGER certificates_no_delete;
	DELETE FROM journal WHERE seq >= $last; DELETE FROM certificates WHERE serial = x'$sl';"
expect_rc 0 "journal verify, truncated, without the checkpoint" "$CA_ADMIN" journal verify --db "$WORK/state.db"
expect_rc 4 "journal verify --checkpoint, truncated" "$CA_ADMIN" journal verify --db "$WORK/state.db" \
	--checkpoint "$WORK/checkpoints.txt" --pubkey "$WORK/state.db.audit-key.pem"
grep -q "checkpoint MISSING: the journal ends at record $((last - 1)), before the saved head $last" "$WORK/out" ||
	fail "truncation: $(cat "$WORK/out")"
# the key on the token without its public key file: start refused, saying how to fix it
mv "$WORK/state.db.audit-key.pem" "$WORK/saved-key.pem"
: >"$WORK/engine.log"
rc=0
timeout 120 "$ENGINED" --config "$WORK/engine.conf" 2>>"$WORK/engine.log" || rc=$?
[ "$rc" = 1 ] || fail "engine without the audit public key: exit $rc, expected 1"
grep -q "journal checkpoints: the journal audit key (CKA_ID \"tca-journal-audit-v1\") is on the token, but its public key $WORK/state.db.audit-key.pem cannot be read" \
	"$WORK/engine.log" || fail "no reason for the refusal"

echo "store-integrity: all checks passed"
