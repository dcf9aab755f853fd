/*
 * store-sqlite.c - the SQLite backend of the state store (store.h).
 *
 * One database file in WAL mode with synchronous=FULL: commit() returns only
 * after the transaction is on stable storage.  The file is created mode 0600.
 * Two connections: the writer (commit() only, serialised by wlock) and the
 * reader (everything else, serialised by a recursive rlock so that callbacks
 * may call back into the store).  WAL lets the reader work while a commit is
 * in progress.  Every statement is bound, never formatted from data.
 *
 * Schema (PRAGMA application_id = 0x54434131 "TCA1", PRAGMA user_version =
 * SCHEMA_VERSION): version 2 as described here, then what the v2 -> v3,
 * v3 -> v4 and v4 -> v5 migrations (further down) add.  A fresh store is created by
 * running schema_v2 and those migrations in one transaction, so a fresh and
 * a migrated store cannot differ.  Version 2:
 *
 *   cas            one row per tenant CA ever created
 *     ca_id            INTEGER PRIMARY KEY
 *     tenant           TEXT NOT NULL
 *     status           TEXT NOT NULL, 'active' | 'deleted'
 *     key_type         TEXT NOT NULL (tca_key_type_name())
 *     key_id           BLOB NOT NULL, CKA_ID of the token key (1..32 bytes)
 *     created_at       INTEGER NOT NULL, unix seconds
 *     deleted_at       INTEGER NOT NULL, unix seconds, 0 while active
 *     current_cert_id  INTEGER -> certificates, the CA certificate in use
 *     previous_cert_id INTEGER -> certificates, NULL until CA re-issuance,
 *                      then the certificate the last re-issuance replaced
 *     renewal_failed, renewal_reason, renewal_attempts, renewal_failed_since,
 *     renewal_next_retry, renewal_alerted, expiry_alerted
 *                      NOT NULL, default 0 / '': struct tca_renewal_state
 *                      (v2; written by RENEWAL_STATE, cleared by CA_REISSUE)
 *   UNIQUE INDEX cas_one_active ON cas(tenant) WHERE status = 'active'
 *
 *   certificates   every certificate ever recorded (CA and device); rows are
 *                  never deleted (trigger)
 *     cert_id      INTEGER PRIMARY KEY (issue order)
 *     ca_id        INTEGER NOT NULL -> cas, the CA it belongs to / was issued by
 *     tenant       TEXT NOT NULL
 *     kind         TEXT NOT NULL, 'ca' | 'device'
 *     issuer_hash  BLOB NOT NULL, SHA-256 of the issuer Name DER (32 bytes)
 *     serial       BLOB NOT NULL, big-endian magnitude (1..20 bytes)
 *     subject      TEXT NOT NULL, RFC 2253
 *     fingerprint  BLOB NOT NULL, SHA-256 of der (32 bytes)
 *     not_before, not_after, issued_at  INTEGER NOT NULL, unix seconds
 *     der          BLOB NOT NULL
 *   INDEX certificates_tenant ON certificates(tenant, cert_id)
 *
 *   (issuer_hash, serial) names one certificate, with one exception: the CA
 *   certificates of ONE CA may share a serial, because a re-issuance with
 *   reissue.serial = keep changes nothing but the validity (and signature).
 *   So:
 *     UNIQUE INDEX certificates_device_serial (issuer_hash, serial)
 *                  WHERE kind = 'device'    - devices strictly unique;
 *     INDEX certificates_ca_serial (issuer_hash, serial) WHERE kind = 'ca';
 *     TRIGGER certificates_serial_unique (BEFORE INSERT) refuses a device
 *                  certificate reusing a CA certificate's (issuer, serial),
 *                  a CA certificate reusing a device's, a CA certificate
 *                  reusing another CA's, and a CA certificate identical
 *                  (same fingerprint) to one already recorded for its CA.
 *   commit() reports every one of these as TCA_ERR_ALREADY_EXISTS.
 *
 *   journal        the hash-chained audit journal; append-only through SQL
 *                  (triggers raise 'journal is append-only' on UPDATE and
 *                  DELETE).  Whoever holds the file can still edit it; the
 *                  hash chain (tca_journal_verify()) detects that.
 *     seq              INTEGER PRIMARY KEY, 1, 2, 3, ... without gaps
 *     time_ms          INTEGER NOT NULL, unix milliseconds
 *     op, tenant, serial_hex, subject, fingerprint_hex, details
 *                      TEXT NOT NULL ("" when not applicable)
 *     uid, pid         INTEGER NOT NULL, the requester
 *     prev_hash, hash  BLOB NOT NULL, 32 bytes each (tca_journal_hash())
 *
 * Version 1 differs in two points: no renewal_* / expiry_alerted columns, and
 * a table constraint UNIQUE (issuer_hash, serial) on certificates instead of
 * the index/trigger pair above.  A read-write open migrates it in one
 * transaction (certificates rebuilt with cert_id kept, cas columns added,
 * user_version = 2; journal untouched, so its chain still verifies).  A
 * read-only open (audit) never migrates: renewal state then reads as zero.
 * A version newer than SCHEMA_VERSION is refused either way.
 *
 * Chain state is never cached: each commit reads the last journal record
 * inside its own BEGIN IMMEDIATE transaction, so a failed commit (disk full,
 * I/O error, lock held by another process) leaves nothing behind and the next
 * one continues the chain from what is really on disk.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "log.h"
#include "store.h"
#include "store-change.h"
#include "store-migrate.h"
#include "store-sqlite.h"
#include "tca-error.h"
#include "text.h"

#define SCHEMA_VERSION 5
#define APPLICATION_ID 0x54434131	/* "TCA1" */
#define BUSY_TIMEOUT_MS 5000

/*
 * The certificates table and everything hanging off it, shared by a fresh
 * schema and the v1 -> v2 migration so both end up identical.
 */
#define CERTIFICATES_COLUMNS \
    " cert_id INTEGER PRIMARY KEY," \
    " ca_id INTEGER NOT NULL REFERENCES cas(ca_id)," \
    " tenant TEXT NOT NULL," \
    " kind TEXT NOT NULL CHECK (kind IN ('ca', 'device'))," \
    " issuer_hash BLOB NOT NULL CHECK (length(issuer_hash) = 32)," \
    " serial BLOB NOT NULL CHECK (length(serial) BETWEEN 1 AND 20)," \
    " subject TEXT NOT NULL," \
    " fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32)," \
    " not_before INTEGER NOT NULL," \
    " not_after INTEGER NOT NULL," \
    " issued_at INTEGER NOT NULL," \
    " der BLOB NOT NULL"

#define CERTIFICATES_EXTRAS \
    "CREATE UNIQUE INDEX certificates_device_serial" \
    " ON certificates(issuer_hash, serial) WHERE kind = 'device';" \
    "CREATE INDEX certificates_ca_serial" \
    " ON certificates(issuer_hash, serial) WHERE kind = 'ca';" \
    "CREATE TRIGGER certificates_serial_unique BEFORE INSERT ON certificates" \
    " WHEN EXISTS (SELECT 1 FROM certificates c WHERE c.kind = 'ca'" \
    "  AND c.issuer_hash = NEW.issuer_hash AND c.serial = NEW.serial" \
    "  AND (NEW.kind <> 'ca' OR c.ca_id <> NEW.ca_id" \
    "  OR c.fingerprint = NEW.fingerprint))" \
    " OR (NEW.kind = 'ca' AND EXISTS (SELECT 1 FROM certificates c" \
    "  WHERE c.kind = 'device' AND c.issuer_hash = NEW.issuer_hash" \
    "  AND c.serial = NEW.serial))" \
    " BEGIN SELECT RAISE(ABORT, 'issuer and serial already recorded'); END;" \
    "CREATE INDEX certificates_tenant ON certificates(tenant, cert_id);" \
    "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates" \
    " BEGIN SELECT RAISE(ABORT, 'certificate history is append-only'); END;"

/* Added to cas by schema version 2; a fresh schema has them at the same
 * place (the end), so fresh and migrated tables look alike. */
#define CAS_RENEWAL_COLUMNS(sep) \
    " renewal_failed INTEGER NOT NULL DEFAULT 0" \
    "  CHECK (renewal_failed IN (0, 1))" sep \
    " renewal_reason TEXT NOT NULL DEFAULT ''" sep \
    " renewal_attempts INTEGER NOT NULL DEFAULT 0" \
    "  CHECK (renewal_attempts >= 0)" sep \
    " renewal_failed_since INTEGER NOT NULL DEFAULT 0" sep \
    " renewal_next_retry INTEGER NOT NULL DEFAULT 0" sep \
    " renewal_alerted INTEGER NOT NULL DEFAULT 0" \
    "  CHECK (renewal_alerted IN (0, 1))" sep \
    " expiry_alerted INTEGER NOT NULL DEFAULT 0" \
    "  CHECK (expiry_alerted IN (0, 1))"

static const char schema_v2[] =
    "CREATE TABLE cas ("
    " ca_id INTEGER PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('active', 'deleted')),"
    " key_type TEXT NOT NULL,"
    " key_id BLOB NOT NULL CHECK (length(key_id) BETWEEN 1 AND 32),"
    " created_at INTEGER NOT NULL,"
    " deleted_at INTEGER NOT NULL DEFAULT 0,"
    " current_cert_id INTEGER REFERENCES certificates(cert_id),"
    " previous_cert_id INTEGER REFERENCES certificates(cert_id),"
    CAS_RENEWAL_COLUMNS(",") ");"
    "CREATE UNIQUE INDEX cas_one_active ON cas(tenant) WHERE status = 'active';"
    "CREATE TABLE certificates (" CERTIFICATES_COLUMNS ");"
    CERTIFICATES_EXTRAS
    "CREATE TABLE journal ("
    " seq INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " op TEXT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " serial_hex TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " fingerprint_hex TEXT NOT NULL,"
    " uid INTEGER NOT NULL,"
    " pid INTEGER NOT NULL,"
    " details TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;"
    "PRAGMA application_id = 1413693745;"	/* APPLICATION_ID */
    "PRAGMA user_version = 2;";		/* SCHEMA_VERSION */

/*
 * v1 -> v2.  The v1 table constraint UNIQUE (issuer_hash, serial) cannot be
 * dropped in place, so certificates is rebuilt (SQLite's documented
 * create-copy-drop-rename procedure; cert_id values are kept, so the cas
 * references stay valid).  Runs with foreign keys off, inside the caller's
 * transaction, which then checks foreign keys before committing.  The
 * journal is not touched.
 */
static const char migrate_v1_v2[] =
    "CREATE TABLE certificates_v2 (" CERTIFICATES_COLUMNS ");"
    "INSERT INTO certificates_v2 (cert_id, ca_id, tenant, kind, issuer_hash,"
    " serial, subject, fingerprint, not_before, not_after, issued_at, der)"
    " SELECT cert_id, ca_id, tenant, kind, issuer_hash, serial, subject,"
    " fingerprint, not_before, not_after, issued_at, der FROM certificates"
    " ORDER BY cert_id;"
    "DROP TABLE certificates;"
    "ALTER TABLE certificates_v2 RENAME TO certificates;"
    CERTIFICATES_EXTRAS
    "ALTER TABLE cas ADD COLUMN"
    CAS_RENEWAL_COLUMNS("; ALTER TABLE cas ADD COLUMN") ";"
    "PRAGMA user_version = 2;";

/*
 * v2 -> v3 (issue 12: revocation, CRLs, tenant policy, inventory):
 *   certificates.device_id  TEXT NOT NULL, the device id (CN) of device
 *                 certificates, "" for CA certificates; filled for existing
 *                 rows from each certificate's subject CN (tca_subject_cn(),
 *                 an SQL function of the writer connection)
 *   INDEX certificates_device ON certificates(tenant, device_id, cert_id)
 *                 WHERE kind = 'device' - inventory and revocation by device
 *   revocations   one row per revoked certificate, never updated, deleted or
 *                 replaced (triggers: revocation is irreversible)
 *     cert_id     INTEGER PRIMARY KEY -> certificates
 *     ca_id       INTEGER NOT NULL -> cas
 *     revoked_at  INTEGER NOT NULL, unix seconds
 *     reason      INTEGER NOT NULL, RFC 5280 CRLReason (0-5, 9)
 *     not_after   INTEGER NOT NULL, the certificate's (the CRL drops the
 *                 entry after it)
 *   INDEX revocations_ca ON revocations(ca_id, not_after)
 *   crls          the current CRL of each CA: one row per CA, replaced on
 *                 re-signing; crl_number may only grow, also through INSERT
 *                 OR REPLACE (triggers), and a new
 *                 CA's first number continues after its tenant's earlier CAs
 *                 (commit() checks)
 *     ca_id, tenant, crl_number, this_update, next_update, entries, der
 *   cas.crl_failed .. crl_alerted   CRL re-signing state, as renewal_*
 *   cas.policy    TEXT NOT NULL, the tenant policy (tenant-policy.h), ""
 *                 = global defaults
 */
#define CAS_CRL_COLUMNS(sep) \
    " crl_failed INTEGER NOT NULL DEFAULT 0 CHECK (crl_failed IN (0, 1))" sep \
    " crl_reason TEXT NOT NULL DEFAULT ''" sep \
    " crl_attempts INTEGER NOT NULL DEFAULT 0 CHECK (crl_attempts >= 0)" sep \
    " crl_failed_since INTEGER NOT NULL DEFAULT 0" sep \
    " crl_next_retry INTEGER NOT NULL DEFAULT 0" sep \
    " crl_alerted INTEGER NOT NULL DEFAULT 0 CHECK (crl_alerted IN (0, 1))" sep \
    " policy TEXT NOT NULL DEFAULT ''"

static const char migrate_v2_v3[] =
    "ALTER TABLE certificates ADD COLUMN device_id TEXT NOT NULL DEFAULT '';"
    "UPDATE certificates SET device_id = tca_subject_cn(der) WHERE kind = 'device';"
    "CREATE INDEX certificates_device"
    " ON certificates(tenant, device_id, cert_id) WHERE kind = 'device';"
    "CREATE TABLE revocations ("
    " cert_id INTEGER PRIMARY KEY REFERENCES certificates(cert_id),"
    " ca_id INTEGER NOT NULL REFERENCES cas(ca_id),"
    " revoked_at INTEGER NOT NULL,"
    " reason INTEGER NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9)),"
    " not_after INTEGER NOT NULL);"
    "CREATE INDEX revocations_ca ON revocations(ca_id, not_after);"
    "CREATE TRIGGER revocations_no_update BEFORE UPDATE ON revocations"
    " BEGIN SELECT RAISE(ABORT, 'revocation is irreversible'); END;"
    "CREATE TRIGGER revocations_no_delete BEFORE DELETE ON revocations"
    " BEGIN SELECT RAISE(ABORT, 'revocation is irreversible'); END;"
    /* INSERT OR REPLACE deletes without firing DELETE triggers */
    "CREATE TRIGGER revocations_no_replace BEFORE INSERT ON revocations"
    " WHEN EXISTS (SELECT 1 FROM revocations WHERE cert_id = NEW.cert_id)"
    " BEGIN SELECT RAISE(ABORT, 'revocation is irreversible'); END;"
    "CREATE TABLE crls ("
    " ca_id INTEGER PRIMARY KEY REFERENCES cas(ca_id),"
    " tenant TEXT NOT NULL,"
    " crl_number INTEGER NOT NULL CHECK (crl_number > 0),"
    " this_update INTEGER NOT NULL,"
    " next_update INTEGER NOT NULL,"
    " entries INTEGER NOT NULL,"
    " der BLOB NOT NULL);"
    "CREATE INDEX crls_tenant ON crls(tenant, crl_number);"
    "CREATE TRIGGER crls_number_grows BEFORE UPDATE ON crls"
    " WHEN NEW.crl_number <= OLD.crl_number"
    " BEGIN SELECT RAISE(ABORT, 'CRL numbers only grow'); END;"
    "CREATE TRIGGER crls_no_delete BEFORE DELETE ON crls"
    " BEGIN SELECT RAISE(ABORT, 'CRLs are replaced, never deleted'); END;"
    "CREATE TRIGGER crls_number_new BEFORE INSERT ON crls"
    " WHEN EXISTS (SELECT 1 FROM crls WHERE tenant = NEW.tenant"
    "  AND crl_number >= NEW.crl_number)"
    " BEGIN SELECT RAISE(ABORT, 'CRL numbers only grow'); END;"
    "ALTER TABLE cas ADD COLUMN" CAS_CRL_COLUMNS("; ALTER TABLE cas ADD COLUMN") ";"
    "PRAGMA user_version = 3;";

/*
 * v3 -> v4 (issue 14: device registration):
 *   devices       one row per registered device of a tenant
 *     tenant, device_id    PRIMARY KEY
 *     secret       TEXT NOT NULL, the one-time password's salted slow hash
 *                  (otp.h), never the password
 *     registered_at, expires_at (0 = never)   INTEGER NOT NULL
 *     failures     INTEGER NOT NULL, wrong passwords since registration
 *     locked       INTEGER NOT NULL, 1 after too many (until re-registered)
 *     consumed_at  INTEGER NOT NULL, 0 until the password yielded its
 *                  certificate; consumed_cert_id -> certificates
 *   A registration is replaced (UPDATE) by a new one and deleted by
 *   unregistering; both are journaled.
 *   INDEX certificates_state ON certificates(ca_id, not_after, kind) WHERE
 *   kind = 'device': the certificate counts of `status` from the index only.
 */
static const char migrate_v3_v4[] =
    "CREATE TABLE devices ("
    " tenant TEXT NOT NULL,"
    " device_id TEXT NOT NULL,"
    " secret TEXT NOT NULL,"
    " registered_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL CHECK (expires_at >= 0),"
    " failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),"
    " locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
    " consumed_at INTEGER NOT NULL DEFAULT 0,"
    " consumed_cert_id INTEGER REFERENCES certificates(cert_id),"
    " PRIMARY KEY (tenant, device_id));"
    /* cert_counts (status) answers from this index alone: without it the
     * count read every certificate row (about 1 s at 1,000,000, under the
     * reader's lock; docs/performance.md, the inventory at scale) */
    "CREATE INDEX certificates_state ON certificates(ca_id, not_after, kind)"
    " WHERE kind = 'device';"
    "PRAGMA user_version = 4;";

/*
 * v4 -> v5 (issue 13: CA creation reserved before the key is made):
 *   ca_reservations   one row per tenant whose CA is being created
 *     tenant          PRIMARY KEY
 *     holder          TEXT NOT NULL, the creating engine's node id
 *     reserved_at_ms, lease_until_ms   INTEGER NOT NULL (unix ms); after
 *                     lease_until_ms another engine may take it over
 *   Rows are short-lived (CA_CREATE removes its tenant's, CA_RELEASE the
 *   holder's) and never journaled; `store migrate` does not copy them.
 */
static const char migrate_v4_v5[] =
    "CREATE TABLE ca_reservations ("
    " tenant TEXT PRIMARY KEY,"
    " holder TEXT NOT NULL,"
    " reserved_at_ms INTEGER NOT NULL,"
    " lease_until_ms INTEGER NOT NULL);"
    "PRAGMA user_version = 5;";

/* tca_subject_cn(der): the subject CN of a DER certificate as UTF-8, "" if
 * it has none or does not parse.  Registered on the writer for the v2 -> v3
 * migration only. */
static void
sql_subject_cn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *p;
	unsigned char *utf8 = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	int idx, len, n;

	if (argc != 1 || sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
		return;
	}
	p = sqlite3_value_blob(argv[0]);
	n = sqlite3_value_bytes(argv[0]);
	if (p == NULL || n <= 0 || (x = d2i_X509(NULL, &p, n)) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    (idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (len = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)))) < 0)
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
	else
		sqlite3_result_text(ctx, (const char *)utf8, len, SQLITE_TRANSIENT);
	OPENSSL_free(utf8);
	X509_free(x);
}

/* Writer statements, prepared once at open. */
enum wstmt {
	W_BEGIN, W_COMMIT, W_ROLLBACK, W_SAVEPOINT, W_RELEASE, W_ROLLBACK_TO,
	W_LAST_JOURNAL, W_FIND_ACTIVE, W_INSERT_CA, W_INSERT_CERT, W_LINK_CERT,
	W_DELETE_CA, W_INSERT_JOURNAL, W_REISSUE_CA, W_SET_RENEWAL,
	W_FIND_DEVICE_CERT, W_INSERT_REVOCATION, W_CRL_MAX, W_UPSERT_CRL,
	W_SET_CRL_STATE, W_SET_POLICY,
	W_DEVICE_UPSERT, W_DEVICE_DELETE, W_DEVICE_ATTEMPT, W_DEVICE_FAIL,
	W_DEVICE_RELEASE, W_DEVICE_CONSUME,
	W_RESERVATION_GET, W_RESERVATION_PUT, W_RESERVATION_DROP, W_RESERVATION_DROP_MINE,
	W_NSTMT
};

static const char *const wsql[W_NSTMT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_SAVEPOINT] = "SAVEPOINT chg",
	[W_RELEASE] = "RELEASE chg",
	[W_ROLLBACK_TO] = "ROLLBACK TO chg",
	[W_LAST_JOURNAL] = "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1",
	[W_FIND_ACTIVE] = "SELECT c.ca_id, cert.subject, cert.fingerprint, c.policy"
	    " FROM cas c"
	    " LEFT JOIN certificates cert ON cert.cert_id = c.current_cert_id"
	    " WHERE c.tenant = ?1 AND c.status = 'active'",
	[W_INSERT_CA] = "INSERT INTO cas (tenant, status, key_type, key_id,"
	    " created_at, deleted_at) VALUES (?1, 'active', ?2, ?3, ?4, 0)",
	[W_INSERT_CERT] = "INSERT INTO certificates (ca_id, tenant, kind,"
	    " issuer_hash, serial, subject, fingerprint, not_before, not_after,"
	    " issued_at, der, device_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
	    " ?9, ?10, ?11, ?12)",
	[W_LINK_CERT] = "UPDATE cas SET current_cert_id = ?2 WHERE ca_id = ?1",
	[W_DELETE_CA] = "UPDATE cas SET status = 'deleted', deleted_at = ?2"
	    " WHERE ca_id = ?1 AND status = 'active'",
	[W_INSERT_JOURNAL] = "INSERT INTO journal (seq, time_ms, op, tenant,"
	    " serial_hex, subject, fingerprint_hex, uid, pid, details,"
	    " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
	    " ?11, ?12)",
	/* UPDATE evaluates every right-hand side on the old row */
	[W_REISSUE_CA] = "UPDATE cas SET previous_cert_id = current_cert_id,"
	    " current_cert_id = ?2, renewal_failed = 0, renewal_reason = '',"
	    " renewal_attempts = 0, renewal_failed_since = 0,"
	    " renewal_next_retry = 0, renewal_alerted = 0, expiry_alerted = 0"
	    " WHERE ca_id = ?1 AND status = 'active'",
	[W_SET_RENEWAL] = "UPDATE cas SET renewal_failed = ?2,"
	    " renewal_reason = ?3, renewal_attempts = ?4,"
	    " renewal_failed_since = ?5, renewal_next_retry = ?6,"
	    " renewal_alerted = ?7, expiry_alerted = ?8"
	    " WHERE ca_id = ?1 AND status = 'active'",
	/* a device certificate of CA ?1 by serial, through the (issuer_hash,
	 * serial) index: the issuer hash of the CA's current certificate is the
	 * one its device certificates carry (re-issuance keeps the name) */
	[W_FIND_DEVICE_CERT] = "SELECT d.cert_id, d.subject, d.fingerprint,"
	    " d.not_after, r.revoked_at, r.reason"
	    " FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id"
	    " JOIN certificates d ON d.issuer_hash = cur.issuer_hash"
	    "  AND d.serial = ?2 AND d.kind = 'device' AND d.ca_id = c.ca_id"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.ca_id = ?1",
	[W_INSERT_REVOCATION] = "INSERT INTO revocations (cert_id, ca_id,"
	    " revoked_at, reason, not_after) VALUES (?1, ?2, ?3, ?4, ?5)",
	[W_CRL_MAX] = "SELECT COALESCE(MAX(crl_number), 0) FROM crls WHERE tenant = ?1",
	[W_UPSERT_CRL] = "INSERT INTO crls (ca_id, tenant, crl_number,"
	    " this_update, next_update, entries, der)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT (ca_id) DO UPDATE SET crl_number = excluded.crl_number,"
	    " this_update = excluded.this_update, next_update = excluded.next_update,"
	    " entries = excluded.entries, der = excluded.der",
	[W_SET_CRL_STATE] = "UPDATE cas SET crl_failed = ?2, crl_reason = ?3,"
	    " crl_attempts = ?4, crl_failed_since = ?5, crl_next_retry = ?6,"
	    " crl_alerted = ?7 WHERE ca_id = ?1 AND status = 'active'",
	[W_SET_POLICY] = "UPDATE cas SET policy = ?2"
	    " WHERE ca_id = ?1 AND status = 'active'",
	[W_DEVICE_UPSERT] = "INSERT INTO devices (tenant, device_id, secret,"
	    " registered_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (tenant, device_id) DO UPDATE SET secret = excluded.secret,"
	    " registered_at = excluded.registered_at, expires_at = excluded.expires_at,"
	    " failures = 0, locked = 0, consumed_at = 0, consumed_cert_id = NULL",
	[W_DEVICE_DELETE] = "DELETE FROM devices WHERE tenant = ?1 AND device_id = ?2",
	[W_DEVICE_ATTEMPT] = "UPDATE devices SET failures = failures + 1"
	    " WHERE tenant = ?1 AND device_id = ?2 AND consumed_at = 0 AND locked = 0"
	    " AND failures < ?3 AND (expires_at = 0 OR expires_at >= ?4)"
	    " RETURNING failures",
	[W_DEVICE_FAIL] = "UPDATE devices SET locked = 1 WHERE tenant = ?1"
	    " AND device_id = ?2 AND consumed_at = 0 AND locked = 0 AND failures >= ?3"
	    " RETURNING failures",
	[W_DEVICE_RELEASE] = "UPDATE devices SET failures = max(failures - 1, 0)"
	    " WHERE tenant = ?1 AND device_id = ?2 AND consumed_at = 0",
	[W_DEVICE_CONSUME] = "UPDATE devices SET consumed_at = ?4, consumed_cert_id = ?5,"
	    " failures = max(failures - 1, 0)"
	    " WHERE tenant = ?1 AND device_id = ?2 AND secret = ?3 AND consumed_at = 0"
	    " AND locked = 0 AND (expires_at = 0 OR expires_at >= ?4)",
	[W_RESERVATION_GET] = "SELECT holder, reserved_at_ms, lease_until_ms"
	    " FROM ca_reservations WHERE tenant = ?1",
	[W_RESERVATION_PUT] = "INSERT INTO ca_reservations (tenant, holder,"
	    " reserved_at_ms, lease_until_ms) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (tenant) DO UPDATE SET holder = excluded.holder,"
	    " reserved_at_ms = excluded.reserved_at_ms,"
	    " lease_until_ms = excluded.lease_until_ms",
	[W_RESERVATION_DROP] = "DELETE FROM ca_reservations WHERE tenant = ?1",
	[W_RESERVATION_DROP_MINE] = "DELETE FROM ca_reservations WHERE tenant = ?1"
	    " AND holder = ?2",
};

/*
 * CA rows as fill_ca_row() reads them.  A version 1 file opened read-only
 * (an audit, never migrated) has no renewal columns: they read as zero.
 */
#define CA_SELECT_COLS(renewal) \
	"SELECT c.ca_id, c.tenant, c.status, c.key_type, c.key_id," \
	" c.created_at, c.deleted_at, cur.der, prev.der, " renewal " FROM cas c" \
	" LEFT JOIN certificates cur ON cur.cert_id = c.current_cert_id" \
	" LEFT JOIN certificates prev ON prev.cert_id = c.previous_cert_id"
#define CA_SELECT_V2 CA_SELECT_COLS("c.renewal_failed, c.renewal_reason," \
	" c.renewal_attempts, c.renewal_failed_since, c.renewal_next_retry," \
	" c.renewal_alerted, c.expiry_alerted")
#define CA_SELECT_V1 CA_SELECT_COLS("0, '', 0, 0, 0, 0, 0")
#define CA_SELECT_V3 \
	"SELECT c.ca_id, c.tenant, c.status, c.key_type, c.key_id," \
	" c.created_at, c.deleted_at, cur.der, prev.der, c.renewal_failed, c.renewal_reason," \
	" c.renewal_attempts, c.renewal_failed_since, c.renewal_next_retry," \
	" c.renewal_alerted, c.expiry_alerted, c.crl_failed, c.crl_reason," \
	" c.crl_attempts, c.crl_failed_since, c.crl_next_retry, c.crl_alerted," \
	" c.policy, k.crl_number, k.this_update, k.next_update" \
	" FROM cas c LEFT JOIN crls k ON k.ca_id = c.ca_id" \
	" LEFT JOIN certificates cur ON cur.cert_id = c.current_cert_id" \
	" LEFT JOIN certificates prev ON prev.cert_id = c.previous_cert_id"
#define CA_WHERE_TENANT " WHERE c.tenant = ?1 AND c.status = 'active'"
#define CA_WHERE_ALL \
	" WHERE ?1 OR c.status = 'active' ORDER BY c.tenant, c.ca_id"

struct sqlite_store {
	tca_store base;		/* first member: the engine sees only this */
	int readonly;
	pthread_mutex_t wlock;	/* writer connection and its statements */
	sqlite3 *wdb;
	sqlite3_stmt *ws[W_NSTMT];
	long default_max_pages;
	pthread_mutex_t rlock;	/* recursive: callbacks may re-enter */
	sqlite3 *rdb;
	sqlite3_stmt *get_ca_stmt;
	const char *foreach_ca_sql;	/* matches the schema version */
	long long schema_version;
	int wlock_init, rlock_init;
	char path[PATH_MAX];	/* for connections of their own (cert_counts) */
	int lock_fd;		/* TCA_STORE_EXCLUSIVE: "<path>.lock", flock()ed; -1 */
	int guards_restored;	/* triggers/indexes check_guards() repaired at open */
	/* read-write opens: the files as they were at open (the database, its
	 * -wal and -shm), compared with what the path names now before and
	 * after every commit (watch_check()) */
	struct {
		dev_t dev;
		ino_t ino;
		int have;
	} watch[3];
	pthread_mutex_t hlock;	/* lost, lost_why */
	int hlock_init;
	int lost;		/* the files were unlinked or replaced: nothing more */
	char lost_why[PATH_MAX + 200];
};

static const char *const watch_suffix[3] = { "", "-wal", "-shm" };

static const struct tca_store_ops sqlite_ops;

static const char *col_text(sqlite3_stmt *stmt, int col);


/* ------------------------------------------------------------------ open */

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc;

	if ((rc = sqlite3_exec(db, sql, NULL, NULL, &msg)) != SQLITE_OK) {
		tca_setf(err, errlen, "%s", msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	return TCA_OK;
}

/* Runs a single-value query (a PRAGMA or a count). */
static int
query_int(sqlite3 *db, const char *sql, long long *val_ptr, char *err,
    size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	int rc, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL)) != SQLITE_OK) {
		tca_setf(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
		goto out;
	}
	if ((rc = sqlite3_step(stmt)) != SQLITE_ROW) {
		tca_setf(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
		goto out;
	}
	*val_ptr = sqlite3_column_int64(stmt, 0);
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	return r;
}

static int
open_conn(const char *path, int oflags, sqlite3 **db_ptr, char *err,
    size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;

	*db_ptr = NULL;
	rc = sqlite3_open_v2(path, &db, oflags | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		tca_setf(err, errlen, "cannot open %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	*db_ptr = db;
	return TCA_OK;
}

/*
 * Checks the schema version; with may_create, creates the current schema in
 * an empty database or migrates an older one.  Runs inside BEGIN IMMEDIATE
 * so two processes opening a fresh or old file at once cannot both create or
 * migrate it; the loser sees the winner's version.  Foreign keys must be off
 * (a migration rebuilds a referenced table); the caller turns them on after.
 * A read-only open never migrates: *version_ptr tells the reader which
 * columns exist.
 */
static int
check_schema(sqlite3 *db, int may_create, const char *path,
    long long *version_ptr, char *err, size_t errlen)
{
	long long version = 0, app_id = 0, ntables = 0, fk_bad = 0, from;
	int in_txn = 0, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	*version_ptr = 0;
	if (may_create) {
		if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen) != TCA_OK)
			goto out;
		in_txn = 1;
	}
	if (query_int(db, "PRAGMA user_version", &version, err, errlen) != TCA_OK ||
	    query_int(db, "PRAGMA application_id", &app_id, err, errlen) != TCA_OK ||
	    query_int(db, "SELECT count(*) FROM sqlite_schema", &ntables,
	    err, errlen) != TCA_OK)
		goto out;
	if (app_id != 0 && app_id != APPLICATION_ID) {
		tca_setf(err, errlen, "%s is not a tca state store "
		    "(application_id 0x%llx)", path, (unsigned long long)app_id);
		goto out;
	}
	if (version > SCHEMA_VERSION) {
		tca_setf(err, errlen, "%s has schema version %lld, newer than the "
		    "%d this tca knows: upgrade tca, do not downgrade the store",
		    path, version, SCHEMA_VERSION);
		goto out;
	}
	if (version < 0 || (version == 0 && ntables != 0)) {
		tca_setf(err, errlen, "%s is not a tca state store "
		    "(schema version %lld with %lld schema objects)",
		    path, version, ntables);
		goto out;
	}
	if (version == 0) {
		if (!may_create) {
			tca_setf(err, errlen, "%s holds no tca state store", path);
			goto out;
		}
		/* a fresh store is made the way an old one is migrated, so
		 * the two cannot differ */
		if (exec_sql(db, schema_v2, err, errlen) != TCA_OK ||
		    exec_sql(db, migrate_v2_v3, err, errlen) != TCA_OK ||
		    exec_sql(db, migrate_v3_v4, err, errlen) != TCA_OK ||
		    exec_sql(db, migrate_v4_v5, err, errlen) != TCA_OK)
			goto out;
		log_info("store: created schema version %d in %s",
		    SCHEMA_VERSION, path);
		version = SCHEMA_VERSION;
	} else if (version < SCHEMA_VERSION && may_create) {
		from = version;
		if ((version == 1 &&
		    exec_sql(db, migrate_v1_v2, err, errlen) != TCA_OK) ||
		    (version <= 2 &&
		    exec_sql(db, migrate_v2_v3, err, errlen) != TCA_OK) ||
		    (version <= 3 &&
		    exec_sql(db, migrate_v3_v4, err, errlen) != TCA_OK) ||
		    exec_sql(db, migrate_v4_v5, err, errlen) != TCA_OK ||
		    query_int(db, "SELECT count(*) FROM pragma_foreign_key_check",
		    &fk_bad, err, errlen) != TCA_OK)
			goto out;
		if (fk_bad != 0) {
			tca_setf(err, errlen, "%s: migration to schema version %d "
			    "left %lld dangling reference(s); not migrated",
			    path, SCHEMA_VERSION, fk_bad);
			goto out;
		}
		log_info("store: migrated %s from schema version %lld to %d",
		    path, from, SCHEMA_VERSION);
		version = SCHEMA_VERSION;
	}
	if (in_txn) {
		if (exec_sql(db, "COMMIT", err, errlen) != TCA_OK)
			goto out;
		in_txn = 0;
	}
	*version_ptr = version;
	r = TCA_OK;
 out:
	if (in_txn)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * The guards of the schema - every trigger (append-only journal and
 * certificate history, irreversible revocations, growing CRL numbers,
 * unique serials) and every index, the unique ones among them - are
 * compared, by their SQL text as SQLite keeps it in sqlite_schema, with
 * those of a fresh schema built in memory by the same statements.  One that
 * is missing or differs is (re)created and a trigger the schema does not
 * have is dropped, each logged as an ALERT: someone with write access to the
 * file changed it, or the store is damaged.  Restoring rather than refusing
 * (docs/security.md, Store integrity): a guard is schema, not data; the
 * data checks at start (journal chain, certificates against the journal)
 * decide whether the data can be trusted.  An index that cannot be
 * recreated (a unique one over rows that are no longer unique) refuses the
 * open.  Runs in one transaction; *restored_ptr = how many were repaired.
 */
#define GUARD_EXTRA_MAX 64

static int
check_guards(struct sqlite_store *s, const char *path, int *restored_ptr,
    char *err, size_t errlen)
{
	sqlite3 *mem = NULL;
	sqlite3_stmt *exp = NULL, *cur = NULL, *known = NULL, *all = NULL;
	char *extra[GUARD_EXTRA_MAX], drop[160];
	const char *type, *name, *sql, *have;
	size_t nextra = 0, i;
	int rc, krc = SQLITE_DONE, in_txn = 0, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	*restored_ptr = 0;
	if ((rc = sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_MEMORY, NULL)) != SQLITE_OK) {
		tca_setf(err, errlen, "checking the guards of %s: %s", path,
		    sqlite3_errstr(rc));
		goto out;
	}
	if (sqlite3_create_function(mem, "tca_subject_cn", 1,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_subject_cn, NULL,
	    NULL) != SQLITE_OK ||
	    exec_sql(mem, schema_v2, err, errlen) != TCA_OK ||
	    exec_sql(mem, migrate_v2_v3, err, errlen) != TCA_OK ||
	    exec_sql(mem, migrate_v3_v4, err, errlen) != TCA_OK ||
	    exec_sql(mem, migrate_v4_v5, err, errlen) != TCA_OK)
		goto out;
	if (exec_sql(s->wdb, "BEGIN IMMEDIATE", err, errlen) != TCA_OK)
		goto out;
	in_txn = 1;
	if (sqlite3_prepare_v2(mem, "SELECT type, name, sql FROM sqlite_schema"
	    " WHERE type IN ('trigger', 'index') AND sql IS NOT NULL"
	    " ORDER BY name", -1, &exp, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(mem, "SELECT 1 FROM sqlite_schema WHERE"
	    " type = 'trigger' AND name = ?1", -1, &known, NULL) != SQLITE_OK) {
		tca_setf(err, errlen, "checking the guards of %s: %s", path,
		    sqlite3_errmsg(mem));
		goto out;
	}
	if (sqlite3_prepare_v2(s->wdb, "SELECT sql FROM sqlite_schema WHERE"
	    " type = ?1 AND name = ?2", -1, &cur, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "SELECT name FROM sqlite_schema WHERE"
	    " type = 'trigger'", -1, &all, NULL) != SQLITE_OK) {
		tca_setf(err, errlen, "checking the guards of %s: %s", path,
		    sqlite3_errmsg(s->wdb));
		goto out;
	}
	/* triggers the schema does not have: collected, then dropped (not
	 * while reading sqlite_schema) */
	while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
		name = col_text(all, 0);
		sqlite3_reset(known);
		if (sqlite3_bind_text(known, 1, name, -1, SQLITE_TRANSIENT) !=
		    SQLITE_OK || (krc = sqlite3_step(known)) == SQLITE_ROW)
			continue;
		if (krc != SQLITE_DONE) {
			tca_setf(err, errlen, "checking the guards of %s: %s",
			    path, sqlite3_errmsg(mem));
			goto out;
		}
		if (nextra == GUARD_EXTRA_MAX ||
		    (extra[nextra] = strdup(name)) == NULL) {
			tca_setf(err, errlen, "%s: too many unknown triggers",
			    path);
			goto out;
		}
		nextra++;
	}
	if (rc != SQLITE_DONE) {
		tca_setf(err, errlen, "checking the guards of %s: %s", path,
		    sqlite3_errmsg(s->wdb));
		goto out;
	}
	sqlite3_finalize(all);
	all = NULL;
	for (i = 0; i < nextra; i++) {
		/* names in sqlite_schema cannot hold a NUL; double any quote */
		if (strchr(extra[i], '"') != NULL || strlen(extra[i]) > 100) {
			tca_setf(err, errlen, "%s: a trigger the schema does not "
			    "have, with an unusual name, is in the store: "
			    "investigate with sqlite3 (.schema)", path);
			goto out;
		}
		log_error("store: ALERT: %s holds trigger \"%s\", which the tca "
		    "schema does not have: dropped. Someone with write access "
		    "to the store changed it, or it is damaged; check the "
		    "journal (ca-admin journal verify) and the host", path,
		    extra[i]);
		snprintf(drop, sizeof(drop), "DROP TRIGGER \"%s\"", extra[i]);
		if (exec_sql(s->wdb, drop, err, errlen) != TCA_OK)
			goto out;
		(*restored_ptr)++;
	}
	while ((rc = sqlite3_step(exp)) == SQLITE_ROW) {
		type = col_text(exp, 0);
		name = col_text(exp, 1);
		sql = col_text(exp, 2);
		sqlite3_reset(cur);
		if (sqlite3_bind_text(cur, 1, type, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		    sqlite3_bind_text(cur, 2, name, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
			tca_setf(err, errlen, "checking the guards of %s: bind",
			    path);
			goto out;
		}
		rc = sqlite3_step(cur);
		have = rc == SQLITE_ROW ? col_text(cur, 0) : NULL;
		if (have != NULL && strcmp(have, sql) == 0)
			continue;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			tca_setf(err, errlen, "checking the guards of %s: %s",
			    path, sqlite3_errmsg(s->wdb));
			goto out;
		}
		log_error("store: ALERT: %s %s of %s %s: restored. Someone with "
		    "write access to the store changed it, or it is damaged; "
		    "check the journal (ca-admin journal verify) and the host",
		    type, name, path, have == NULL ? "was missing" :
		    "had been altered");
		sqlite3_reset(cur);
		if (have != NULL) {
			snprintf(drop, sizeof(drop), "DROP %s \"%s\"",
			    strcmp(type, "index") == 0 ? "INDEX" : "TRIGGER", name);
			if (exec_sql(s->wdb, drop, err, errlen) != TCA_OK)
				goto out;
		}
		if (exec_sql(s->wdb, sql, err, errlen) != TCA_OK) {
			char why[256];

			snprintf(why, sizeof(why), "%s", err);
			tca_setf(err, errlen, "%s: cannot restore %s %s: %s; the "
			    "rows it guards were changed: restore the store from a "
			    "backup", path, type, name, why);
			goto out;
		}
		(*restored_ptr)++;
	}
	if (rc != SQLITE_DONE) {
		tca_setf(err, errlen, "checking the guards of %s: %s", path,
		    sqlite3_errmsg(mem));
		goto out;
	}
	sqlite3_finalize(cur);
	cur = NULL;
	if (exec_sql(s->wdb, "COMMIT", err, errlen) != TCA_OK)
		goto out;
	in_txn = 0;
	r = TCA_OK;
 out:
	for (i = 0; i < nextra; i++)
		free(extra[i]);
	sqlite3_finalize(exp);
	sqlite3_finalize(cur);
	sqlite3_finalize(known);
	sqlite3_finalize(all);
	if (in_txn)
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(mem);
	return r;
}

static int
setup_writer(struct sqlite_store *s, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	long long fk = 0, maxpages = 0;
	int fd, i, rc, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	/* the store is not secret but its integrity matters: no world access */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 && errno != EEXIST) {
		tca_setf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	if (fd != -1)
		close(fd);
	if (open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    &s->wdb, err, errlen) != TCA_OK)
		goto out;
	if ((rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode = WAL", -1,
	    &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_step(stmt)) != SQLITE_ROW) {
		tca_setf(err, errlen, "%s: journal_mode=WAL: %s", path,
		    sqlite3_errmsg(s->wdb));
		goto out;
	}
	mode = sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		tca_setf(err, errlen, "%s: cannot switch to WAL mode (got %s)",
		    path, mode != NULL ? (const char *)mode : "nothing");
		goto out;
	}
	/* a statement left open would make the schema COMMIT fail */
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (sqlite3_create_function(s->wdb, "tca_subject_cn", 1,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_subject_cn, NULL,
	    NULL) != SQLITE_OK) {
		tca_setf(err, errlen, "%s: registering tca_subject_cn: %s", path,
		    sqlite3_errmsg(s->wdb));
		goto out;
	}
	/* foreign keys stay off while check_schema() may migrate */
	if (exec_sql(s->wdb, "PRAGMA synchronous = FULL; "
	    "PRAGMA foreign_keys = OFF", err, errlen) != TCA_OK ||
	    check_schema(s->wdb, 1, path, &s->schema_version, err,
	    errlen) != TCA_OK ||
	    /* an index added to version 4 after some stores were made: created
	     * where it is missing (idempotent, no version change) */
	    exec_sql(s->wdb, "CREATE INDEX IF NOT EXISTS certificates_state ON"
	    " certificates(ca_id, not_after, kind) WHERE kind = 'device'", err,
	    errlen) != TCA_OK ||
	    check_guards(s, path, &s->guards_restored, err, errlen) != TCA_OK ||
	    exec_sql(s->wdb, "PRAGMA foreign_keys = ON", err, errlen) != TCA_OK ||
	    query_int(s->wdb, "PRAGMA foreign_keys", &fk, err, errlen) != TCA_OK)
		goto out;
	if (fk != 1) {
		tca_setf(err, errlen, "SQLite library lacks foreign key support");
		goto out;
	}
	if (query_int(s->wdb, "PRAGMA max_page_count", &maxpages,
	    err, errlen) != TCA_OK)
		goto out;
	s->default_max_pages = (long)maxpages;
	for (i = 0; i < W_NSTMT; i++) {
		if (sqlite3_prepare_v3(s->wdb, wsql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->ws[i], NULL) != SQLITE_OK) {
			tca_setf(err, errlen, "prepare \"%s\": %s", wsql[i],
			    sqlite3_errmsg(s->wdb));
			goto out;
		}
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	return r;
}

static int
setup_reader(struct sqlite_store *s, const char *path, char *err, size_t errlen)
{
	int oflags;

	oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	if (open_conn(path, oflags, &s->rdb, err, errlen) != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	/* the writer already checked (and migrated) the schema in read-write
	 * mode */
	if (s->readonly && check_schema(s->rdb, 0, path, &s->schema_version,
	    err, errlen) != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if (exec_sql(s->rdb, "PRAGMA query_only = ON", err, errlen) != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	s->foreach_ca_sql = s->schema_version >= 3 ? CA_SELECT_V3 CA_WHERE_ALL :
	    s->schema_version >= 2 ? CA_SELECT_V2 CA_WHERE_ALL : CA_SELECT_V1 CA_WHERE_ALL;
	if (sqlite3_prepare_v3(s->rdb, s->schema_version >= 3 ?
	    CA_SELECT_V3 CA_WHERE_TENANT : s->schema_version >= 2 ?
	    CA_SELECT_V2 CA_WHERE_TENANT : CA_SELECT_V1 CA_WHERE_TENANT, -1,
	    SQLITE_PREPARE_PERSISTENT, &s->get_ca_stmt, NULL) != SQLITE_OK) {
		tca_setf(err, errlen, "prepare: %s", sqlite3_errmsg(s->rdb));
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	return TCA_OK;
}

/*
 * TCA_STORE_EXCLUSIVE: flock(LOCK_EX | LOCK_NB) on "<path>.lock" (created
 * 0600 and left in place: removing a lock file races with the next taker).
 * The holder writes its pid into the file so that a refused start can name
 * it.  flock() locks belong to the open file description, so a second open
 * in the same process is refused too, and they never interact with SQLite's
 * fcntl() locks on the database file (on Linux NFS, flock() is emulated with
 * a byte-range lock, still on this separate file).
 */
int
tca_store_sqlite_lock(const char *path, int *fd_ptr, char *err, size_t errlen)
{
	char lpath[PATH_MAX + 8], buf[32];
	ssize_t n;
	long pid = 0;
	int fd, len;

	if ((size_t)snprintf(lpath, sizeof(lpath), "%s.lock", path) >= sizeof(lpath)) {
		tca_setf(err, errlen, "store path too long");
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		tca_setf(err, errlen, "cannot open the store lock %s: %s",
		    lpath, strerror(errno));
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK && errno != EAGAIN) {
			tca_setf(err, errlen, "cannot lock %s: %s", lpath,
			    strerror(errno));
			close(fd);
			return TCA_ERR_JOURNAL_UNAVAILABLE;
		}
		memset(buf, 0, sizeof(buf));
		if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) > 0)
			pid = strtol(buf, NULL, 10);
		close(fd);
		if (pid > 0)
			tca_setf(err, errlen, "store %s is in use by another engine "
			    "(pid %ld holds %s): one tca-engined per store; stop "
			    "the other one or give this one its own store",
			    path, pid, lpath);
		else
			tca_setf(err, errlen, "store %s is in use by another engine "
			    "(%s is locked): one tca-engined per store; stop the "
			    "other one or give this one its own store",
			    path, lpath);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)len, 0) != len)
		log_warn("store: cannot record the pid in %s: %s", lpath,
		    strerror(errno));
	*fd_ptr = fd;
	return TCA_OK;
}

static int
take_lock(struct sqlite_store *s, const char *path, char *err, size_t errlen)
{
	return tca_store_sqlite_lock(path, &s->lock_fd, err, errlen);
}

/* ----------------------------------------------------- files under us */

/*
 * Records st_dev/st_ino of the database, -wal and -shm paths right after
 * the connections opened them.  SQLite keeps the -wal and -shm files for as
 * long as a connection is open (our writer and reader stay open), and the
 * open descriptors keep the inodes alive, so an inode number cannot be
 * reused for another file while we run: a different st_ino at the path
 * means another file.
 */
static void
watch_init(struct sqlite_store *s)
{
	char p[PATH_MAX + 8];
	struct stat sb;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", s->path, watch_suffix[i]);
		if (stat(p, &sb) == 0) {
			s->watch[i].dev = sb.st_dev;
			s->watch[i].ino = sb.st_ino;
			s->watch[i].have = 1;
		}
	}
}

static int
is_lost(struct sqlite_store *s, char *why, size_t whylen)
{
	int lost;

	pthread_mutex_lock(&s->hlock);
	lost = s->lost;
	if (lost && why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", s->lost_why);
	pthread_mutex_unlock(&s->hlock);
	return lost;
}

/*
 * TCA_OK while the path still names the files the engine has open; else
 * TCA_ERR_JOURNAL_UNAVAILABLE, for good: the store is marked lost (every
 * later commit is refused, status shows it) and the log says what
 * happened and what to do, once.  A commit that went to an unlinked file is
 * lost with it, so the committer checks before and after each batch and
 * answers a batch whose files vanished meanwhile with
 * JOURNAL_UNAVAILABLE instead of its certificates.
 */
static int
watch_check(struct sqlite_store *s)
{
	char p[PATH_MAX + 8], what[PATH_MAX + 160];
	struct stat sb;
	int i, gone = 0;

	if (s->readonly)
		return TCA_OK;
	if (is_lost(s, NULL, 0))
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	for (i = 0; i < 3 && !gone; i++) {
		snprintf(p, sizeof(p), "%s%s", s->path, watch_suffix[i]);
		if (stat(p, &sb) == -1) {
			if (errno != ENOENT && errno != ENOTDIR)
				continue;	/* not a verdict about the file */
			if (!s->watch[i].have)
				continue;
			snprintf(what, sizeof(what), "%s was unlinked under the "
			    "running engine", p);
			gone = 1;
		} else if (!s->watch[i].have) {
			/* appeared after the open: watched from now on */
			s->watch[i].dev = sb.st_dev;
			s->watch[i].ino = sb.st_ino;
			s->watch[i].have = 1;
		} else if (sb.st_dev != s->watch[i].dev ||
		    sb.st_ino != s->watch[i].ino) {
			snprintf(what, sizeof(what), "%s was replaced under the "
			    "running engine (inode %llu, now %llu)", p,
			    (unsigned long long)s->watch[i].ino,
			    (unsigned long long)sb.st_ino);
			gone = 1;
		}
	}
	if (!gone)
		return TCA_OK;
	pthread_mutex_lock(&s->hlock);
	if (!s->lost) {
		s->lost = 1;
		snprintf(s->lost_why, sizeof(s->lost_why), "%s", what);
		log_error("store: %s: every change is refused from now on "
		    "(JOURNAL_UNAVAILABLE), since it would be committed to a file "
		    "that is no longer the store. What the engine committed so far "
		    "is in the files it still has open: while it runs they can be "
		    "copied from /proc/%ld/fd (ls -l shows them as \"(deleted)\"; "
		    "copy the database and its -wal to a new name pair before "
		    "stopping the engine). Then stop the engine, find out what "
		    "removed or replaced the store, and start it on the recovered "
		    "or the newest backed-up store (docs/operations.md, \"Store "
		    "files removed under the engine\")", what, (long)getpid());
	}
	pthread_mutex_unlock(&s->hlock);
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/*
 * Connections of a lost store are never closed (sq_close says why); they are
 * kept here until the process exits, so that they stay reachable - an
 * intentional keep, not a leak for valgrind or LeakSanitizer to report.
 * If the list node cannot be allocated the connection is dropped anyway.
 */
struct parked_conn {
	sqlite3 *db;
	struct parked_conn *next;
};
static struct parked_conn *parked_conns;
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;

static void
park_conn(sqlite3 *db)
{
	struct parked_conn *p;

	if (db == NULL || (p = malloc(sizeof(*p))) == NULL)
		return;
	p->db = db;
	pthread_mutex_lock(&parked_lock);
	p->next = parked_conns;
	parked_conns = p;
	pthread_mutex_unlock(&parked_lock);
}

static int
sq_health(tca_store *st, char *why, size_t whylen)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	int r;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (s == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->readonly)
		return TCA_OK;
	/* serialised with commits: watch[] is the writer's */
	pthread_mutex_lock(&s->wlock);
	r = watch_check(s);
	pthread_mutex_unlock(&s->wlock);
	if (r != TCA_OK)
		(void)is_lost(s, why, whylen);
	return r;
}

/* One engine per SQLite store (the flock of TCA_STORE_EXCLUSIVE): that
 * engine is the leader of every role; a read-only handle of none. */
static int
sq_leader(tca_store *st, const char *role, int *is_leader_ptr, char *why, size_t whylen)
{
	struct sqlite_store *s = (struct sqlite_store *)st;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (is_leader_ptr != NULL)
		*is_leader_ptr = 0;
	if (s == NULL || is_leader_ptr == NULL || role == NULL || *role == '\0' ||
	    strlen(role) > TCA_LEADER_ROLE_MAX) {
		tca_setf(why, whylen, "leadership: a role of 1 to %d bytes is needed",
		    TCA_LEADER_ROLE_MAX);
		return TCA_ERR_INVALID_ARG;
	}
	*is_leader_ptr = !s->readonly;
	return TCA_OK;
}

static void
sq_close(tca_store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < W_NSTMT; i++)
		sqlite3_finalize(s->ws[i]);
	sqlite3_finalize(s->get_ca_stmt);
	if (s->lost) {
		/* SQLite's last close deletes the -wal and -shm BY NAME: what is
		 * at those paths now is not ours (a restored store, perhaps).
		 * The connections are left to the process exit. */
		log_warn("store: %s: not closing the database connections, the "
		    "files at that path are no longer the ones they use", s->path);
		park_conn(s->rdb);
		park_conn(s->wdb);
		s->rdb = s->wdb = NULL;
	}
	if (s->rdb != NULL && sqlite3_close(s->rdb) != SQLITE_OK)
		log_warn("store: closing reader: %s", sqlite3_errmsg(s->rdb));
	/* last close of the writer checkpoints the WAL into the database */
	if (s->wdb != NULL && sqlite3_close(s->wdb) != SQLITE_OK)
		log_warn("store: closing writer: %s", sqlite3_errmsg(s->wdb));
	if (s->wlock_init)
		pthread_mutex_destroy(&s->wlock);
	if (s->rlock_init)
		pthread_mutex_destroy(&s->rlock);
	if (s->hlock_init)
		pthread_mutex_destroy(&s->hlock);
	/* last: the database is closed, another engine may take it now */
	if (s->lock_fd != -1)
		close(s->lock_fd);
	free(s);
}

int
tca_store_open_sqlite(const char *path, int flags, tca_store **st_ptr,
    char *err, size_t errlen)
{
	struct sqlite_store *s = NULL;
	pthread_mutexattr_t attr;
	int r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (st_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*st_ptr = NULL;
	if (path == NULL || *path == '\0') {
		tca_setf(err, errlen, "no store path");
		return TCA_ERR_INVALID_ARG;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	s->base.ops = &sqlite_ops;
	s->lock_fd = -1;
	s->readonly = (flags & TCA_STORE_READONLY) != 0;
	if (s->readonly && (flags & TCA_STORE_EXCLUSIVE)) {
		tca_setf(err, errlen, "a read-only store open takes no lock");
		free(s);
		return TCA_ERR_INVALID_ARG;
	}
	if (strlen(path) >= sizeof(s->path)) {
		tca_setf(err, errlen, "store path too long");
		goto out;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (pthread_mutex_init(&s->wlock, NULL) != 0) {
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	s->wlock_init = 1;
	if (pthread_mutex_init(&s->hlock, NULL) != 0) {
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	s->hlock_init = 1;
	if (pthread_mutexattr_init(&attr) != 0) {
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	if (pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) != 0 ||
	    pthread_mutex_init(&s->rlock, &attr) != 0) {
		pthread_mutexattr_destroy(&attr);
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	pthread_mutexattr_destroy(&attr);
	s->rlock_init = 1;
	if ((flags & TCA_STORE_EXCLUSIVE) && take_lock(s, path, err, errlen) != TCA_OK)
		goto out;
	if (!s->readonly && setup_writer(s, path, err, errlen) != TCA_OK)
		goto out;
	if (setup_reader(s, path, err, errlen) != TCA_OK)
		goto out;
	if (!s->readonly)
		watch_init(s);
	log_debug("store: opened %s%s", path, s->readonly ? " read-only" : "");
	*st_ptr = &s->base;
	s = NULL;
	r = TCA_OK;
 out:
	sq_close(s ? &s->base : NULL);
	return r;
}

/* ------------------------------------------------------------- commit */

static const char *
col_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return t != NULL ? (const char *)t : "";
}

static void
copy_text(char *dst, size_t dstlen, const unsigned char *src)
{
	snprintf(dst, dstlen, "%s", src != NULL ? (const char *)src : "");
}


/* State of one commit transaction. */
struct txn {
	struct sqlite_store *s;
	int64_t last_seq;
	unsigned char last_hash[32];
	int rc;			/* SQLite code of the failure that stops the batch */
	char msg[256];		/* its message, captured before ROLLBACK clears it */
};

/* Records a failure that aborts the whole transaction. */
static int
txn_fail(struct txn *t, int rc, const char *what)
{
	t->rc = rc;
	snprintf(t->msg, sizeof(t->msg), "%s: %s", what,
	    sqlite3_errmsg(t->s->wdb));
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/* Steps a statement that returns no rows, then resets it for reuse. */
static int
step_done(sqlite3_stmt *stmt)
{
	int rc;

	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
run_w(struct txn *t, enum wstmt which)
{
	int rc;

	if ((rc = step_done(t->s->ws[which])) != SQLITE_OK)
		return txn_fail(t, rc, wsql[which]);
	return TCA_OK;
}

static int
read_head(struct txn *t)
{
	sqlite3_stmt *stmt = t->s->ws[W_LAST_JOURNAL];
	const void *h;
	int rc, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	t->last_seq = 0;
	memset(t->last_hash, 0, sizeof(t->last_hash));
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		t->last_seq = sqlite3_column_int64(stmt, 0);
		h = sqlite3_column_blob(stmt, 1);
		if (h == NULL || sqlite3_column_bytes(stmt, 1) != 32) {
			t->rc = SQLITE_CORRUPT;
			snprintf(t->msg, sizeof(t->msg), "journal record %lld "
			    "has no valid hash", (long long)t->last_seq);
			goto out;
		}
		memcpy(t->last_hash, h, 32);
	} else if (rc != SQLITE_DONE) {
		r = txn_fail(t, rc, "reading the journal head");
		goto out;
	}
	r = TCA_OK;
 out:
	sqlite3_reset(stmt);
	return r;
}

/*
 * Maps the result of a row insert that may violate a uniqueness rule: a
 * constraint violation fails this change alone, anything else the batch.
 * A trigger raising counts as a duplicate: the only INSERT trigger is
 * certificates_serial_unique.
 */
static int
insert_result(struct txn *t, int rc, const char *what)
{
	if (rc == SQLITE_OK)
		return TCA_OK;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
	    rc == SQLITE_CONSTRAINT_TRIGGER)
		return TCA_ERR_ALREADY_EXISTS;
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		log_error("store: %s: %s", what, sqlite3_errmsg(t->s->wdb));
		return TCA_ERR_INTERNAL;
	}
	return txn_fail(t, rc, what);
}

/*
 * Active CA of tenant: ca_id, and optionally the subject and the fingerprint
 * of its current certificate (fp all zero if it has none).
 */
static int
find_active_x(struct txn *t, const char *tenant, int64_t *ca_id_ptr,
    char *subject, size_t subjectlen, unsigned char fp[32],
    const struct tca_change *expect);

static int
find_active(struct txn *t, const char *tenant, int64_t *ca_id_ptr,
    char *subject, size_t subjectlen, unsigned char fp[32])
{
	return find_active_x(t, tenant, ca_id_ptr, subject, subjectlen, fp, NULL);
}

/* As find_active, and TCA_ERR_STALE when the active CA is not what expect
 * says the engine's cache held (store.h: expect_ca_id, expect_policy). */
static int
find_active_x(struct txn *t, const char *tenant, int64_t *ca_id_ptr,
    char *subject, size_t subjectlen, unsigned char fp[32],
    const struct tca_change *expect)
{
	sqlite3_stmt *stmt = t->s->ws[W_FIND_ACTIVE];
	const unsigned char *subj;
	const void *cur_fp;
	int rc, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (subject != NULL && subjectlen > 0)
		subject[0] = '\0';
	if (fp != NULL)
		memset(fp, 0, 32);
	if ((rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		r = txn_fail(t, rc, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = txn_fail(t, rc, "looking up the active CA");
		goto out;
	}
	*ca_id_ptr = sqlite3_column_int64(stmt, 0);
	if (subject != NULL && (subj = sqlite3_column_text(stmt, 1)) != NULL)
		snprintf(subject, subjectlen, "%s", (const char *)subj);
	if (fp != NULL && (cur_fp = sqlite3_column_blob(stmt, 2)) != NULL &&
	    sqlite3_column_bytes(stmt, 2) == 32)
		memcpy(fp, cur_fp, 32);
	r = TCA_OK;
	if (expect != NULL && ((expect->expect_ca_id != 0 &&
	    expect->expect_ca_id != *ca_id_ptr) || (expect->expect_policy != NULL &&
	    strcmp(col_text(stmt, 3), expect->expect_policy) != 0)))
		r = TCA_ERR_STALE;
 out:
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

static int
insert_cert(struct txn *t, const struct tca_change *chg, int64_t ca_id,
    const char *kind, int64_t *cert_id_ptr)
{
	sqlite3_stmt *stmt = t->s->ws[W_INSERT_CERT];
	const struct tca_cert_info *ci = chg->cert;
	int rc;

	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 3, kind, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 4, ci->issuer_hash,
	    sizeof(ci->issuer_hash), SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 5, ci->serial, (int)ci->serial_len,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 6, ci->subject, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 7, ci->sha256, sizeof(ci->sha256),
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 8, ci->not_before)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 9, ci->not_after)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 10, chg->time_ms / 1000)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 11, ci->der, (int)ci->der_len,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 12, chg->device_id != NULL &&
	    strcmp(kind, "device") == 0 ? chg->device_id : "", -1,
	    SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	rc = step_done(stmt);
	if (rc == SQLITE_OK)
		*cert_id_ptr = sqlite3_last_insert_rowid(t->s->wdb);
	return insert_result(t, rc, "recording the certificate");
}

/* Fails the batch when an UPDATE of the active CA row touched no row: it was
 * found a moment ago inside this same transaction. */
static int
expect_one_change(struct txn *t, int64_t ca_id, const char *tenant)
{
	if (sqlite3_changes(t->s->wdb) == 1)
		return TCA_OK;
	t->rc = SQLITE_INTERNAL;
	snprintf(t->msg, sizeof(t->msg), "CA %lld of %s vanished",
	    (long long)ca_id, tenant);
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/*
 * ALREADY_EXISTS (chg->reserved filled) if another holder than chg->holder
 * (NULL: any holder) has a reservation of chg->tenant whose lease runs at
 * chg->time_ms, else TCA_OK.
 */
static int
reservation_check(struct txn *t, struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_RESERVATION_GET];
	const char *holder;
	int rc, r = TCA_OK;

	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		holder = col_text(stmt, 0);
		if ((chg->holder == NULL || strcmp(holder, chg->holder) != 0) &&
		    sqlite3_column_int64(stmt, 2) > chg->time_ms) {
			snprintf(chg->reserved.by, sizeof(chg->reserved.by), "%s", holder);
			chg->reserved.at_ms = sqlite3_column_int64(stmt, 1);
			chg->reserved.until_ms = sqlite3_column_int64(stmt, 2);
			r = TCA_ERR_ALREADY_EXISTS;
		}
	} else if (rc != SQLITE_DONE) {
		r = txn_fail(t, rc, "reading the CA reservation");
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

/* TCA_OK if chg->tenant may get a CA now: none active, no other holder's
 * reservation running (else ALREADY_EXISTS), or the batch's error. */
static int
creation_allowed(struct txn *t, struct tca_change *chg)
{
	int64_t ca_id = 0;
	int r;

	r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL);
	if (r == TCA_OK)
		return TCA_ERR_ALREADY_EXISTS;
	if (r != TCA_ERR_NOT_FOUND)
		return r;
	return reservation_check(t, chg);
}

static int
apply_ca_reserve(struct txn *t, struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_RESERVATION_PUT];
	int rc, r;

	if ((r = creation_allowed(t, chg)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->holder, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, chg->time_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, chg->lease_until_ms)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "reserving the CA creation");
	return TCA_OK;
}

/* mine: only chg->holder's reservation; TCA_OK or NOT_FOUND (none dropped) */
static int
reservation_drop(struct txn *t, const struct tca_change *chg, int mine)
{
	sqlite3_stmt *stmt = t->s->ws[mine ? W_RESERVATION_DROP_MINE : W_RESERVATION_DROP];
	int rc;

	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (mine && (rc = sqlite3_bind_text(stmt, 2, chg->holder, -1,
	    SQLITE_STATIC)) != SQLITE_OK)) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "removing the CA reservation");
	return sqlite3_changes(t->s->wdb) > 0 ? TCA_OK : TCA_ERR_NOT_FOUND;
}

static int
apply_ca_create(struct txn *t, struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_INSERT_CA];
	int64_t ca_id = 0, cert_id = 0;
	int rc, r;

	if ((r = creation_allowed(t, chg)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->key_type, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 3, chg->key_id, (int)chg->key_id_len,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, chg->time_ms / 1000)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((r = insert_result(t, step_done(stmt), "recording the CA")) != TCA_OK)
		return r;
	ca_id = sqlite3_last_insert_rowid(t->s->wdb);
	if ((r = insert_cert(t, chg, ca_id, "ca", &cert_id)) != TCA_OK)
		return r;
	stmt = t->s->ws[W_LINK_CERT];
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, cert_id)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "linking the CA certificate");
	if ((r = reservation_drop(t, chg, 0)) != TCA_OK && r != TCA_ERR_NOT_FOUND)
		return r;
	chg->ca_id = ca_id;
	return TCA_OK;
}

static int
apply_ca_delete(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	sqlite3_stmt *stmt = t->s->ws[W_DELETE_CA];
	int64_t ca_id = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, subject, subjectlen,
	    NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, chg->time_ms / 1000)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "deleting the CA");
	return expect_one_change(t, ca_id, chg->tenant);
}

/* A re-enrollment: REVOKED if the certificate it renews, of CA ca_id, is
 * revoked (by another engine since this one's revocation set was read). */
static int
renewed_not_revoked(struct txn *t, const struct tca_change *chg, int64_t ca_id)
{
	sqlite3_stmt *stmt = t->s->ws[W_FIND_DEVICE_CERT];
	int rc, r = TCA_OK;

	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 2, chg->renews_serial,
	    (int)chg->renews_serial_len, SQLITE_STATIC)) != SQLITE_OK) {
		r = txn_fail(t, rc, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 4) != SQLITE_NULL)
		r = TCA_ERR_REVOKED;
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = txn_fail(t, rc, "looking up the certificate renewed");
 out:
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

static int
apply_cert_issue(struct txn *t, const struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_DEVICE_CONSUME];
	int64_t ca_id = 0, cert_id = 0;
	int rc, r;

	if ((r = find_active_x(t, chg->tenant, &ca_id, NULL, 0, NULL, chg)) != TCA_OK ||
	    (chg->renews_serial != NULL &&
	    (r = renewed_not_revoked(t, chg, ca_id)) != TCA_OK))
		return r;
	if ((r = insert_cert(t, chg, ca_id, "device", &cert_id)) != TCA_OK ||
	    chg->consume_secret == NULL)
		return r;
	/* the registration is used by this certificate, or nothing is recorded
	 * (the caller rolls the savepoint back) */
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->device_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 3, chg->consume_secret, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, chg->time_ms / 1000)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, cert_id)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "using the device registration");
	return sqlite3_changes(t->s->wdb) == 1 ? TCA_OK : TCA_ERR_CREDENTIAL_REFUSED;
}

static int
apply_device_register(struct txn *t, const struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_DEVICE_UPSERT];
	int64_t ca_id = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->device_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 3, chg->secret, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, chg->time_ms / 1000)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, chg->expires_at)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "registering the device");
	return TCA_OK;
}

static int
apply_device_unregister(struct txn *t, const struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_DEVICE_DELETE];
	int64_t ca_id = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->device_id, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "unregistering the device");
	return sqlite3_changes(t->s->wdb) == 1 ? TCA_OK : TCA_ERR_NOT_FOUND;
}

/*
 * DEVICE_ATTEMPT, DEVICE_FAILURE, DEVICE_RELEASE: one UPDATE each on the
 * device's row.  *hit: whether a row matched; for ATTEMPT and FAILURE the
 * row's failures after it.
 */
static int
device_update(struct txn *t, struct tca_change *chg, enum wstmt which, int *hit)
{
	sqlite3_stmt *stmt = t->s->ws[which];
	int64_t f;
	int rc, r;

	*hit = 0;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->device_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (which != W_DEVICE_RELEASE &&
	    (rc = sqlite3_bind_int64(stmt, 3, chg->max_failures)) != SQLITE_OK) ||
	    (which == W_DEVICE_ATTEMPT &&
	    (rc = sqlite3_bind_int64(stmt, 4, chg->time_ms / 1000)) != SQLITE_OK)) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*hit = 1;
		f = sqlite3_column_int64(stmt, 0);
		chg->device_failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (unsigned int)f;
		rc = sqlite3_step(stmt);
	} else if (rc == SQLITE_DONE && which == W_DEVICE_RELEASE)
		*hit = sqlite3_changes(t->s->wdb) > 0;
	r = rc == SQLITE_DONE ? TCA_OK : txn_fail(t, rc, "updating the device's attempts");
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

static int
apply_ca_reissue(struct txn *t, const struct tca_change *chg)
{
	sqlite3_stmt *stmt = t->s->ws[W_REISSUE_CA];
	unsigned char cur_fp[32];
	int64_t ca_id = 0, cert_id = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, cur_fp)) != TCA_OK)
		return r;
	/* compare-and-swap: a restarted engine or another node got there first */
	if (memcmp(cur_fp, chg->expect_current_sha256, sizeof(cur_fp)) != 0) {
		log_info("store: CA of %s was re-issued meanwhile; re-issuance "
		    "not recorded", chg->tenant);
		return TCA_ERR_ALREADY_EXISTS;
	}
	if ((r = insert_cert(t, chg, ca_id, "ca", &cert_id)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, cert_id)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "switching the CA certificate");
	return expect_one_change(t, ca_id, chg->tenant);
}

/* The renewal-like state columns (renewal_* or crl_*) of the active CA. */
static int
apply_state(struct txn *t, const struct tca_change *chg, enum wstmt which,
    const char *what)
{
	sqlite3_stmt *stmt = t->s->ws[which];
	const struct tca_renewal_state *rs = chg->renewal;
	int64_t ca_id = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 2, rs->failed != 0)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 3, rs->reason, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, rs->attempts)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, rs->failed_since)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 6, rs->next_retry)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 7, rs->alerted != 0)) != SQLITE_OK ||
	    (which == W_SET_RENEWAL &&
	    (rc = sqlite3_bind_int(stmt, 8, rs->expiry_alerted != 0)) != SQLITE_OK)) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, what);
	return expect_one_change(t, ca_id, chg->tenant);
}

/*
 * CERT_REVOKE.  Fills the journal fields (serial, subject, fingerprint of
 * the revoked certificate) and chg->revoked.  ALREADY_EXISTS when revoked
 * before: the earlier revocation stays, nothing is written.
 */
static int
apply_cert_revoke(struct txn *t, struct tca_change *chg, char *subject,
    size_t subjectlen, char *fp_hex)
{
	sqlite3_stmt *stmt = t->s->ws[W_FIND_DEVICE_CERT];
	int64_t ca_id = 0, cert_id;
	const void *fp;
	int rc, r;

	memset(&chg->revoked, 0, sizeof(chg->revoked));
	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 2, chg->serial, (int)chg->serial_len,
	    SQLITE_STATIC)) != SQLITE_OK) {
		r = txn_fail(t, rc, "bind");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = txn_fail(t, rc, "looking up the certificate");
		goto out;
	}
	cert_id = sqlite3_column_int64(stmt, 0);
	copy_text(subject, subjectlen, sqlite3_column_text(stmt, 1));
	snprintf(chg->revoked.subject, sizeof(chg->revoked.subject), "%s", subject);
	fp = sqlite3_column_blob(stmt, 2);
	if (fp != NULL && sqlite3_column_bytes(stmt, 2) == 32)
		tca_hex(fp, 32, fp_hex);
	chg->revoked.not_after = sqlite3_column_int64(stmt, 3);
	if (sqlite3_column_type(stmt, 4) != SQLITE_NULL) {
		chg->revoked.revoked_at = sqlite3_column_int64(stmt, 4);
		chg->revoked.reason = (int)sqlite3_column_int64(stmt, 5);
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	stmt = t->s->ws[W_INSERT_REVOCATION];
	if ((rc = sqlite3_bind_int64(stmt, 1, cert_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, chg->revoked_at)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 4, chg->reason)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, chg->revoked.not_after)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((r = insert_result(t, step_done(stmt), "recording the revocation")) != TCA_OK)
		return r;
	chg->revoked.revoked_at = chg->revoked_at;
	chg->revoked.reason = chg->reason;
	return TCA_OK;
 out:
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

/* CRL_PUBLISH: replaces the active CA's CRL if crl_number is new for the
 * tenant.  subject: the CA's, for the journal. */
static int
apply_crl_publish(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	sqlite3_stmt *stmt = t->s->ws[W_CRL_MAX];
	int64_t ca_id = 0, max = 0;
	int rc, r;

	if ((r = find_active(t, chg->tenant, &ca_id, subject, subjectlen, NULL)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_text(stmt, 1, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		max = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_ROW)
		return txn_fail(t, rc, "reading the CRL number");
	if (max < 0 || chg->crl_number <= (uint64_t)max) {
		log_info("store: CRL %llu of %s not recorded: number %lld is in use",
		    (unsigned long long)chg->crl_number, chg->tenant, (long long)max);
		return TCA_ERR_ALREADY_EXISTS;
	}
	stmt = t->s->ws[W_UPSERT_CRL];
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, (int64_t)chg->crl_number)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 4, chg->this_update)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, chg->next_update)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 6, (int64_t)chg->crl_entries)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 7, chg->crl_der, (int)chg->crl_len,
	    SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	return insert_result(t, step_done(stmt), "recording the CRL");
}

static int
apply_policy_set(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	sqlite3_stmt *stmt = t->s->ws[W_SET_POLICY];
	int64_t ca_id = 0;
	int rc, r;

	if ((r = find_active_x(t, chg->tenant, &ca_id, subject, subjectlen, NULL,
	    chg)) != TCA_OK)
		return r;
	if ((rc = sqlite3_bind_int64(stmt, 1, ca_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, chg->policy, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "recording the tenant policy");
	return expect_one_change(t, ca_id, chg->tenant);
}

static int
append_journal(struct txn *t, struct tca_change *chg, const char *subject,
    const char *fp_of_revoked)
{
	sqlite3_stmt *stmt = t->s->ws[W_INSERT_JOURNAL];
	struct tca_journal_record rec;
	struct tca_change_hex hex;
	int rc;

	if (tca_change_journal_record(chg, subject, fp_of_revoked, t->last_seq,
	    t->last_hash, &hex, &rec) != TCA_OK) {
		t->rc = SQLITE_INTERNAL;
		snprintf(t->msg, sizeof(t->msg), "journal hash computation failed");
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	if ((rc = sqlite3_bind_int64(stmt, 1, rec.seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, rec.time_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 3, rec.op, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 4, rec.tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 5, rec.serial_hex, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 6, rec.subject, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 7, rec.fingerprint_hex, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 8, rec.uid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 9, rec.pid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 10, rec.details, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 11, rec.prev_hash, 32, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 12, rec.hash, 32, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_clear_bindings(stmt);
		return txn_fail(t, rc, "bind");
	}
	/* a journal insert that fails is never this change's fault */
	if ((rc = step_done(stmt)) != SQLITE_OK)
		return txn_fail(t, rc, "appending the journal record");
	t->last_seq = rec.seq;
	memcpy(t->last_hash, rec.hash, 32);
	chg->journal_seq = rec.seq;
	return TCA_OK;
}

/*
 * One change inside its savepoint.  TCA_OK (applied and journalled, except
 * RENEWAL_STATE, which is bookkeeping and never journalled), a per-change
 * error (the caller rolls the savepoint back), or
 * TCA_ERR_JOURNAL_UNAVAILABLE (t->rc set: the whole batch fails).
 */
static int
apply_change(struct txn *t, struct tca_change *chg)
{
	char subject[TCA_SUBJECT_MAX] = "", fp_hex[2 * 32 + 1] = "";
	int r = TCA_ERR_INTERNAL, hit = 0;

	switch (chg->kind) {
	case TCA_CHANGE_CA_CREATE:
		r = apply_ca_create(t, chg);
		break;
	case TCA_CHANGE_CA_RESERVE:
		return apply_ca_reserve(t, chg);
	case TCA_CHANGE_CA_RELEASE:
		return reservation_drop(t, chg, 1);
	case TCA_CHANGE_CA_DELETE:
		/* journal the subject of the CA certificate being retired */
		r = apply_ca_delete(t, chg, subject, sizeof(subject));
		break;
	case TCA_CHANGE_CERT_ISSUE:
		r = apply_cert_issue(t, chg);
		break;
	case TCA_CHANGE_CA_REISSUE:
		r = apply_ca_reissue(t, chg);
		break;
	case TCA_CHANGE_RENEWAL_STATE:
		return apply_state(t, chg, W_SET_RENEWAL, "recording the renewal state");
	case TCA_CHANGE_CRL_STATE:
		return apply_state(t, chg, W_SET_CRL_STATE, "recording the CRL state");
	case TCA_CHANGE_CERT_REVOKE:
		r = apply_cert_revoke(t, chg, subject, sizeof(subject), fp_hex);
		break;
	case TCA_CHANGE_CRL_PUBLISH:
		r = apply_crl_publish(t, chg, subject, sizeof(subject));
		break;
	case TCA_CHANGE_POLICY_SET:
		r = apply_policy_set(t, chg, subject, sizeof(subject));
		break;
	case TCA_CHANGE_DEVICE_REGISTER:
		r = apply_device_register(t, chg);
		break;
	case TCA_CHANGE_DEVICE_UNREGISTER:
		r = apply_device_unregister(t, chg);
		break;
	case TCA_CHANGE_DEVICE_ATTEMPT:
	case TCA_CHANGE_DEVICE_RELEASE:
		chg->device_failures = 0;
		chg->device_locked = 0;
		if ((r = device_update(t, chg, chg->kind == TCA_CHANGE_DEVICE_ATTEMPT ?
		    W_DEVICE_ATTEMPT : W_DEVICE_RELEASE, &hit)) != TCA_OK)
			return r;
		return hit ? TCA_OK : chg->kind == TCA_CHANGE_DEVICE_ATTEMPT ?
		    TCA_ERR_CREDENTIAL_REFUSED : TCA_ERR_NOT_FOUND;
	case TCA_CHANGE_DEVICE_FAILURE:
		chg->device_failures = 0;
		chg->device_locked = 0;
		if ((r = device_update(t, chg, W_DEVICE_FAIL, &hit)) != TCA_OK || !hit)
			return r;
		/* it locked: that is journaled */
		chg->device_locked = 1;
		r = TCA_OK;
		break;
	}
	if (r != TCA_OK)
		return r;
	/* the certificate kinds journal chg->cert's subject */
	return append_journal(t, chg, subject, fp_hex);
}

static int
sq_commit(tca_store *st, struct tca_change *const *changes, size_t n,
    int *results)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct txn t;
	size_t i;
	int r = TCA_ERR_JOURNAL_UNAVAILABLE, res, locked = 0;

	if (s == NULL || (n > 0 && (changes == NULL || results == NULL)))
		return TCA_ERR_INVALID_ARG;
	memset(&t, 0, sizeof(t));
	t.s = s;
	for (i = 0; i < n; i++) {
		results[i] = TCA_ERR_JOURNAL_UNAVAILABLE;
		if (changes[i] != NULL)
			changes[i]->journal_seq = 0;
	}
	if (s->readonly) {
		log_error("store: commit on a store opened read-only");
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	if (n == 0)
		return TCA_OK;
	pthread_mutex_lock(&s->wlock);
	locked = 1;
	if (watch_check(s) != TCA_OK) {
		snprintf(t.msg, sizeof(t.msg), "the store files were unlinked or "
		    "replaced under the engine");
		t.rc = SQLITE_OK;	/* not SQLite's error */
		goto out;
	}
	if (run_w(&t, W_BEGIN) != TCA_OK || read_head(&t) != TCA_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (!tca_change_valid(changes[i])) {
			log_error("store: commit: change %zu is malformed", i);
			results[i] = TCA_ERR_INVALID_ARG;
			continue;
		}
		if (run_w(&t, W_SAVEPOINT) != TCA_OK)
			goto out;
		res = apply_change(&t, changes[i]);
		if (res == TCA_ERR_JOURNAL_UNAVAILABLE)
			goto out;
		if (res != TCA_OK) {
			changes[i]->journal_seq = 0;
			if (run_w(&t, W_ROLLBACK_TO) != TCA_OK)
				goto out;
		}
		if (run_w(&t, W_RELEASE) != TCA_OK)
			goto out;
		results[i] = res;
	}
	if (run_w(&t, W_COMMIT) != TCA_OK)
		goto out;
	/* committed - but to the store, or to a file unlinked meanwhile?  In
	 * the latter case it is lost with that file: answer as not committed,
	 * so that no certificate of it leaves the engine */
	if (watch_check(s) != TCA_OK) {
		snprintf(t.msg, sizeof(t.msg), "the store files were unlinked or "
		    "replaced under the engine during the commit: it went to the "
		    "old files and is lost with them; answered as not committed");
		t.rc = SQLITE_OK;
		goto out;
	}
	r = TCA_OK;
 out:
	if (r != TCA_OK) {
		if (t.rc == SQLITE_OK)
			log_error("store: commit of %zu change(s) refused: %s", n,
			    t.msg);
		else
			log_error("store: commit of %zu change(s) failed, nothing "
			    "committed: %s (%s)", n, t.msg, sqlite3_errstr(t.rc));
		/* an I/O error or SQLITE_FULL may already have rolled back */
		if (!sqlite3_get_autocommit(s->wdb) &&
		    step_done(s->ws[W_ROLLBACK]) != SQLITE_OK)
			log_error("store: rollback: %s", sqlite3_errmsg(s->wdb));
		for (i = 0; i < n; i++) {
			results[i] = TCA_ERR_JOURNAL_UNAVAILABLE;
			if (changes[i] != NULL)
				changes[i]->journal_seq = 0;
		}
	}
	if (locked)
		pthread_mutex_unlock(&s->wlock);
	return r;
}

/* -------------------------------------------------------------- reading */


static int
dup_blob(sqlite3_stmt *stmt, int col, unsigned char **buf_ptr, size_t *len_ptr)
{
	const void *blob;
	int len;

	*buf_ptr = NULL;
	*len_ptr = 0;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return TCA_OK;
	blob = sqlite3_column_blob(stmt, col);
	len = sqlite3_column_bytes(stmt, col);
	if (blob == NULL || len <= 0)
		return TCA_OK;
	if ((*buf_ptr = malloc((size_t)len)) == NULL)
		return TCA_ERR_NOMEM;
	memcpy(*buf_ptr, blob, (size_t)len);
	*len_ptr = (size_t)len;
	return TCA_OK;
}

/* The seven renewal columns starting at col (CA_SELECT_V1/V2 order). */
static void
fill_renewal(sqlite3_stmt *stmt, int col, struct tca_renewal_state *rs)
{
	int64_t attempts;

	memset(rs, 0, sizeof(*rs));
	rs->failed = sqlite3_column_int64(stmt, col) != 0;
	/* a longer reason than the struct holds is cut, never refused */
	copy_text(rs->reason, sizeof(rs->reason),
	    sqlite3_column_text(stmt, col + 1));
	attempts = sqlite3_column_int64(stmt, col + 2);
	rs->attempts = attempts < 0 ? 0 :
	    attempts > UINT32_MAX ? UINT32_MAX : (uint32_t)attempts;
	rs->failed_since = sqlite3_column_int64(stmt, col + 3);
	rs->next_retry = sqlite3_column_int64(stmt, col + 4);
	rs->alerted = sqlite3_column_int64(stmt, col + 5) != 0;
	if (col + 6 < sqlite3_column_count(stmt) &&
	    sqlite3_column_type(stmt, col + 6) == SQLITE_INTEGER)
		rs->expiry_alerted = sqlite3_column_int64(stmt, col + 6) != 0;
}

/* Fills row from a CA_SELECT_V1/V2 result row; row owns its buffers after. */
static int
fill_ca_row(sqlite3_stmt *stmt, struct tca_ca_row *row)
{
	const unsigned char *tenant, *status, *key_type;
	const void *key_id;
	int key_id_len, r = TCA_ERR_INTERNAL;

	memset(row, 0, sizeof(*row));
	tenant = sqlite3_column_text(stmt, 1);
	status = sqlite3_column_text(stmt, 2);
	key_type = sqlite3_column_text(stmt, 3);
	key_id = sqlite3_column_blob(stmt, 4);
	key_id_len = sqlite3_column_bytes(stmt, 4);
	if (tenant == NULL || strlen((const char *)tenant) > TCA_TENANT_MAX ||
	    status == NULL || key_type == NULL ||
	    strlen((const char *)key_type) >= sizeof(row->key_type) ||
	    key_id_len < 0 || key_id_len > TCA_KEY_ID_MAX) {
		log_error("store: CA row %lld is malformed",
		    (long long)sqlite3_column_int64(stmt, 0));
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	row->ca_id = sqlite3_column_int64(stmt, 0);
	copy_text(row->tenant, sizeof(row->tenant), tenant);
	if (strcmp((const char *)status, "active") == 0)
		row->status = TCA_CA_ACTIVE;
	else if (strcmp((const char *)status, "deleted") == 0)
		row->status = TCA_CA_DELETED;
	copy_text(row->key_type, sizeof(row->key_type), key_type);
	if (key_id != NULL && key_id_len > 0)
		memcpy(row->key_id, key_id, (size_t)key_id_len);
	row->key_id_len = (size_t)key_id_len;
	row->created_at = sqlite3_column_int64(stmt, 5);
	row->deleted_at = sqlite3_column_int64(stmt, 6);
	if ((r = dup_blob(stmt, 7, &row->cert_der, &row->cert_der_len)) != TCA_OK ||
	    (r = dup_blob(stmt, 8, &row->prev_der, &row->prev_der_len)) != TCA_OK)
		goto out;
	fill_renewal(stmt, 9, &row->renewal);
	if (sqlite3_column_count(stmt) <= 16) {
		/* an older file read for an audit: no policy, no CRL */
		if ((row->policy = strdup("")) == NULL) {
			r = TCA_ERR_NOMEM;
			goto out;
		}
	} else {
		/* v3: the CRL state has the renewal layout minus expiry_alerted */
		fill_renewal(stmt, 16, &row->crl);
		row->crl.expiry_alerted = 0;
		if ((row->policy = strdup(col_text(stmt, 22))) == NULL) {
			r = TCA_ERR_NOMEM;
			goto out;
		}
		row->crl_number = (uint64_t)sqlite3_column_int64(stmt, 23);
		row->crl_this_update = sqlite3_column_int64(stmt, 24);
		row->crl_next_update = sqlite3_column_int64(stmt, 25);
	}
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		tca_ca_row_clear(row);
	return r;
}

static int
read_error(struct sqlite_store *s, int rc, const char *what)
{
	log_error("store: %s: %s (%s)", what, sqlite3_errmsg(s->rdb),
	    sqlite3_errstr(rc));
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

static int
sq_get_ca(tca_store *st, const char *tenant, struct tca_ca_row *row)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt;
	int rc, r = TCA_ERR_INTERNAL;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	stmt = s->get_ca_stmt;
	if ((rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		r = read_error(s, rc, "get_ca");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		r = TCA_ERR_NOT_FOUND;
	else if (rc == SQLITE_ROW)
		r = fill_ca_row(stmt, row);
	else
		r = read_error(s, rc, "get_ca");
 out:
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

/*
 * Iteration helpers prepare their statement per call (not cached) so that a
 * callback may run another query on the same connection.
 */
static int
sq_foreach_ca(tca_store *st, int include_deleted, tca_ca_cb cb, void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	struct tca_ca_row row;
	int rc, r = TCA_ERR_INTERNAL;

	memset(&row, 0, sizeof(row));
	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, s->foreach_ca_sql, -1, &stmt,
	    NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 1, include_deleted != 0)) != SQLITE_OK) {
		r = read_error(s, rc, "foreach_ca");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if ((r = fill_ca_row(stmt, &row)) != TCA_OK)
			goto out;
		r = cb(ctx, &row);
		tca_ca_row_clear(&row);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = read_error(s, rc, "foreach_ca");
		goto out;
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}


/* A hash column of the wrong size is copied as far as it goes: verification
 * then reports the record rather than the walk stopping short. */
static void
col_hash(sqlite3_stmt *stmt, int col, unsigned char out[32], int64_t seq)
{
	const void *h = sqlite3_column_blob(stmt, col);
	int len = sqlite3_column_bytes(stmt, col);

	memset(out, 0, 32);
	if (h == NULL || len != 32)
		log_warn("store: journal record %lld: hash column %d is %d "
		    "bytes, not 32", (long long)seq, col, len);
	if (h != NULL && len > 0)
		memcpy(out, h, len < 32 ? (size_t)len : 32);
}

static int
sq_journal_foreach(tca_store *st, int64_t from_seq, tca_journal_cb cb, void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	struct tca_journal_record rec;
	int rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT seq, time_ms, op, tenant,"
	    " serial_hex, subject, fingerprint_hex, uid, pid, details,"
	    " prev_hash, hash FROM journal WHERE seq >= ?1 ORDER BY seq",
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 1, from_seq)) != SQLITE_OK) {
		r = read_error(s, rc, "journal_foreach");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		rec.seq = sqlite3_column_int64(stmt, 0);
		rec.time_ms = sqlite3_column_int64(stmt, 1);
		rec.op = col_text(stmt, 2);
		rec.tenant = col_text(stmt, 3);
		rec.serial_hex = col_text(stmt, 4);
		rec.subject = col_text(stmt, 5);
		rec.fingerprint_hex = col_text(stmt, 6);
		rec.uid = (uint32_t)sqlite3_column_int64(stmt, 7);
		rec.pid = (int32_t)sqlite3_column_int64(stmt, 8);
		rec.details = col_text(stmt, 9);
		col_hash(stmt, 10, rec.prev_hash, rec.seq);
		col_hash(stmt, 11, rec.hash, rec.seq);
		if ((r = cb(ctx, &rec)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = read_error(s, rc, "journal_foreach");
		goto out;
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_changes_since(tca_store *st, int64_t after_seq, size_t limit, int64_t *upto_ptr,
    int (*cb)(void *ctx, int64_t seq, const char *op, const char *tenant,
    const char *serial_hex), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	int64_t head = 0, last = 0;
	size_t n = 0;
	int rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || cb == NULL || upto_ptr == NULL || limit == 0 ||
	    limit > INT32_MAX)
		return TCA_ERR_INVALID_ARG;
	*upto_ptr = 0;
	pthread_mutex_lock(&s->rlock);
	/* the head first: whatever commits after it is read next time */
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT COALESCE(MAX(seq), 0) FROM journal",
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_step(stmt)) != SQLITE_ROW) {
		r = read_error(s, rc, "changes_since");
		goto out;
	}
	head = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT seq, op, tenant, serial_hex"
	    " FROM journal WHERE seq > ?1 AND seq <= ?2 AND op IN " TCA_CACHE_OPS_SQL
	    " ORDER BY seq LIMIT ?3", -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 1, after_seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, head)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, (int64_t)limit)) != SQLITE_OK) {
		r = read_error(s, rc, "changes_since");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		last = sqlite3_column_int64(stmt, 0);
		n++;
		if ((r = cb(ctx, last, col_text(stmt, 1), col_text(stmt, 2),
		    col_text(stmt, 3))) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = read_error(s, rc, "changes_since");
		goto out;
	}
	*upto_ptr = n == limit ? last : head;
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_cert_foreach(tca_store *st, const char *tenant,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	struct tca_cert_row row;
	char serial_hex[2 * TCA_SERIAL_MAX + 1], fp_hex[2 * 32 + 1];
	const void *serial, *fp;
	int serial_len, fp_len, rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT tenant, kind, serial,"
	    " subject, fingerprint, not_before, not_after, issued_at"
	    " FROM certificates WHERE ?1 IS NULL OR tenant = ?1 ORDER BY cert_id",
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = (tenant != NULL ?
	    sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC) :
	    sqlite3_bind_null(stmt, 1))) != SQLITE_OK) {
		r = read_error(s, rc, "cert_foreach");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		serial = sqlite3_column_blob(stmt, 2);
		serial_len = sqlite3_column_bytes(stmt, 2);
		fp = sqlite3_column_blob(stmt, 4);
		fp_len = sqlite3_column_bytes(stmt, 4);
		serial_hex[0] = fp_hex[0] = '\0';
		if (serial != NULL && serial_len > 0 && serial_len <= TCA_SERIAL_MAX)
			tca_hex(serial, (size_t)serial_len, serial_hex);
		if (fp != NULL && fp_len == 32)
			tca_hex(fp, 32, fp_hex);
		memset(&row, 0, sizeof(row));
		row.tenant = col_text(stmt, 0);
		row.kind = col_text(stmt, 1);
		row.serial_hex = serial_hex;
		row.subject = col_text(stmt, 3);
		row.fingerprint_hex = fp_hex;
		row.not_before = sqlite3_column_int64(stmt, 5);
		row.not_after = sqlite3_column_int64(stmt, 6);
		row.issued_at = sqlite3_column_int64(stmt, 7);
		if ((r = cb(ctx, &row)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = read_error(s, rc, "cert_foreach");
		goto out;
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

/* ------------------------------------------------ inventory and revocation */

/* Columns read by fill_cert_row: cert_id, tenant, serial, subject,
 * fingerprint, not_before, not_after, issued_at, device_id, revoked_at,
 * reason (NULL when not revoked), der (cert_get only). */
#define CERT_ROW_COLS \
    "SELECT d.cert_id, d.tenant, d.serial, d.subject, d.fingerprint," \
    " d.not_before, d.not_after, d.issued_at, d.device_id, r.revoked_at," \
    " r.reason"

struct cert_hex {
	char serial[2 * TCA_SERIAL_MAX + 1];
	char fp[2 * 32 + 1];
};

static void
fill_cert_row(sqlite3_stmt *stmt, struct tca_cert_row *row, struct cert_hex *hex)
{
	const void *serial = sqlite3_column_blob(stmt, 2), *fp = sqlite3_column_blob(stmt, 4);
	int serial_len = sqlite3_column_bytes(stmt, 2), fp_len = sqlite3_column_bytes(stmt, 4);

	memset(row, 0, sizeof(*row));
	hex->serial[0] = hex->fp[0] = '\0';
	if (serial != NULL && serial_len > 0 && serial_len <= TCA_SERIAL_MAX)
		tca_hex(serial, (size_t)serial_len, hex->serial);
	if (fp != NULL && fp_len == 32)
		tca_hex(fp, 32, hex->fp);
	row->cert_id = sqlite3_column_int64(stmt, 0);
	row->tenant = col_text(stmt, 1);
	row->kind = "device";
	row->serial_hex = hex->serial;
	row->subject = col_text(stmt, 3);
	row->fingerprint_hex = hex->fp;
	row->not_before = sqlite3_column_int64(stmt, 5);
	row->not_after = sqlite3_column_int64(stmt, 6);
	row->issued_at = sqlite3_column_int64(stmt, 7);
	row->device_id = col_text(stmt, 8);
	if (sqlite3_column_type(stmt, 9) != SQLITE_NULL) {
		row->revoked = 1;
		row->revoked_at = sqlite3_column_int64(stmt, 9);
		row->reason = (int)sqlite3_column_int64(stmt, 10);
	}
}

/* Whether tenant has an active CA (TCA_OK / TCA_ERR_NOT_FOUND), on the reader. */
static int
reader_has_active(struct sqlite_store *s, const char *tenant)
{
	sqlite3_stmt *stmt = NULL;
	int rc, r;

	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT 1 FROM cas WHERE tenant = ?1"
	    " AND status = 'active'", -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		r = read_error(s, rc, "active CA");
		goto out;
	}
	rc = sqlite3_step(stmt);
	r = rc == SQLITE_ROW ? TCA_OK : rc == SQLITE_DONE ? TCA_ERR_NOT_FOUND :
	    read_error(s, rc, "active CA");
 out:
	sqlite3_finalize(stmt);
	return r;
}

static int
sq_cert_list(tca_store *st, const struct tca_cert_query *q,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx)
{
	static const char sql_all[] = CERT_ROW_COLS
	    " FROM cas c JOIN certificates d INDEXED BY certificates_tenant"
	    "  ON d.tenant = c.tenant AND d.ca_id = c.ca_id AND d.kind = 'device'"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3"
	    " AND (?4 = 0 OR (?4 = 1 AND r.cert_id IS NULL AND d.not_after >= ?5)"
	    "  OR (?4 = 2 AND r.cert_id IS NOT NULL)"
	    "  OR (?4 = 3 AND r.cert_id IS NULL AND d.not_after < ?5))"
	    " ORDER BY d.cert_id LIMIT ?6";
	static const char sql_device[] = CERT_ROW_COLS
	    " FROM cas c JOIN certificates d INDEXED BY certificates_device"
	    "  ON d.tenant = c.tenant AND d.device_id = ?2 AND d.ca_id = c.ca_id"
	    "  AND d.kind = 'device'"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.tenant = ?1 AND c.status = 'active' AND d.cert_id > ?3"
	    " AND (?4 = 0 OR (?4 = 1 AND r.cert_id IS NULL AND d.not_after >= ?5)"
	    "  OR (?4 = 2 AND r.cert_id IS NOT NULL)"
	    "  OR (?4 = 3 AND r.cert_id IS NULL AND d.not_after < ?5))"
	    " ORDER BY d.cert_id LIMIT ?6";
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	struct tca_cert_row row;
	struct cert_hex hex;
	int rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || q == NULL || q->tenant == NULL || cb == NULL || q->limit == 0 ||
	    q->state < TCA_CERT_ANY || q->state > TCA_CERT_EXPIRED)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->rlock);
	if ((r = reader_has_active(s, q->tenant)) != TCA_OK)
		goto out;
	if ((rc = sqlite3_prepare_v2(s->rdb, q->device_id != NULL ? sql_device : sql_all,
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, q->tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (q->device_id != NULL &&
	    (rc = sqlite3_bind_text(stmt, 2, q->device_id, -1, SQLITE_STATIC)) != SQLITE_OK) ||
	    (rc = sqlite3_bind_int64(stmt, 3, q->after_cert_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(stmt, 4, (int)q->state)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 5, q->now)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 6, q->limit > INT32_MAX ? INT32_MAX :
	    (int64_t)q->limit)) != SQLITE_OK) {
		r = read_error(s, rc, "cert_list");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		fill_cert_row(stmt, &row, &hex);
		if ((r = cb(ctx, &row)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? TCA_OK : read_error(s, rc, "cert_list");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_cert_get(tca_store *st, const char *tenant, const unsigned char *serial,
    size_t serial_len, struct tca_cert_row *row)
{
	static const char sql[] = CERT_ROW_COLS ", d.der"
	    " FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id"
	    " JOIN certificates d ON d.issuer_hash = cur.issuer_hash"
	    "  AND d.serial = ?2 AND d.kind = 'device' AND d.ca_id = c.ca_id"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.tenant = ?1 AND c.status = 'active'";
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	struct tca_cert_row tmp;
	struct cert_hex hex;
	const void *der;
	size_t n_text, off;
	char *buf;
	int der_len, rc, r = TCA_ERR_INTERNAL;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || serial == NULL || serial_len == 0 ||
	    serial_len > TCA_SERIAL_MAX || row == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, sql, -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(stmt, 2, serial, (int)serial_len,
	    SQLITE_STATIC)) != SQLITE_OK) {
		r = read_error(s, rc, "cert_get");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = read_error(s, rc, "cert_get");
		goto out;
	}
	fill_cert_row(stmt, &tmp, &hex);
	der = sqlite3_column_blob(stmt, 11);
	der_len = sqlite3_column_bytes(stmt, 11);
	if (der == NULL || der_len <= 0) {
		r = read_error(s, SQLITE_CORRUPT, "cert_get: certificate without DER");
		goto out;
	}
	/* one allocation: the strings, then the DER */
	n_text = strlen(tmp.tenant) + 1 + sizeof(hex) + strlen(tmp.subject) + 1 +
	    strlen(tmp.device_id) + 1;
	if ((buf = malloc(n_text + (size_t)der_len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	*row = tmp;
	row->owned_ = buf;
	off = 0;
#define TAKE(field, src) do { size_t l_ = strlen(src) + 1; memcpy(buf + off, src, l_); \
	row->field = buf + off; off += l_; } while (0)
	TAKE(tenant, tmp.tenant);
	TAKE(serial_hex, hex.serial);
	TAKE(fingerprint_hex, hex.fp);
	TAKE(subject, tmp.subject);
	TAKE(device_id, tmp.device_id);
#undef TAKE
	memcpy(buf + off, der, (size_t)der_len);
	row->der = (unsigned char *)buf + off;
	row->der_len = (size_t)der_len;
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_revoked_foreach(tca_store *st, const char *tenant, int64_t now,
    tca_revoked_cb cb, void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	const void *serial;
	int serial_len, rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || tenant == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_OK;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT d.serial, r.revoked_at, r.reason,"
	    " r.not_after FROM cas c JOIN revocations r ON r.ca_id = c.ca_id"
	    " AND r.not_after >= ?2 JOIN certificates d ON d.cert_id = r.cert_id"
	    " WHERE c.tenant = ?1 AND c.status = 'active' ORDER BY r.cert_id",
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 2, now)) != SQLITE_OK) {
		r = read_error(s, rc, "revoked_foreach");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		serial = sqlite3_column_blob(stmt, 0);
		serial_len = sqlite3_column_bytes(stmt, 0);
		if (serial == NULL || serial_len <= 0 || serial_len > TCA_SERIAL_MAX) {
			r = read_error(s, SQLITE_CORRUPT, "revoked_foreach: bad serial");
			goto out;
		}
		if ((r = cb(ctx, serial, (size_t)serial_len, sqlite3_column_int64(stmt, 1),
		    (int)sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3))) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? TCA_OK : read_error(s, rc, "revoked_foreach");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_revoked_all(tca_store *st, int64_t now,
    int (*cb)(void *ctx, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	const void *serial;
	int serial_len, rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_OK;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT c.tenant, d.serial, r.revoked_at,"
	    " r.reason FROM revocations r JOIN cas c ON c.ca_id = r.ca_id"
	    " AND c.status = 'active' JOIN certificates d ON d.cert_id = r.cert_id"
	    " WHERE r.not_after >= ?1", -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 1, now)) != SQLITE_OK) {
		r = read_error(s, rc, "revoked_all");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		serial = sqlite3_column_blob(stmt, 1);
		serial_len = sqlite3_column_bytes(stmt, 1);
		if (serial == NULL || serial_len <= 0 || serial_len > TCA_SERIAL_MAX) {
			r = read_error(s, SQLITE_CORRUPT, "revoked_all: bad serial");
			goto out;
		}
		if ((r = cb(ctx, col_text(stmt, 0), serial, (size_t)serial_len,
		    sqlite3_column_int64(stmt, 2), (int)sqlite3_column_int64(stmt, 3))) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? TCA_OK : read_error(s, rc, "revoked_all");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_crl_get(tca_store *st, const char *tenant, struct tca_crl_row *row)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	int rc, r = TCA_ERR_INTERNAL;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, "SELECT k.crl_number, k.this_update,"
	    " k.next_update, k.entries, k.der, (SELECT COALESCE(MAX(m.crl_number), 0)"
	    " FROM crls m WHERE m.tenant = ?1) FROM cas c LEFT JOIN crls k"
	    " ON k.ca_id = c.ca_id WHERE c.tenant = ?1 AND c.status = 'active'",
	    -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK) {
		r = read_error(s, rc, "crl_get");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = read_error(s, rc, "crl_get");
		goto out;
	}
	row->next_number = (uint64_t)sqlite3_column_int64(stmt, 5) + 1;
	if (sqlite3_column_type(stmt, 0) == SQLITE_NULL) {
		r = TCA_ERR_NOT_FOUND;	/* an active CA without a CRL yet */
		goto out;
	}
	row->crl_number = (uint64_t)sqlite3_column_int64(stmt, 0);
	row->this_update = sqlite3_column_int64(stmt, 1);
	row->next_update = sqlite3_column_int64(stmt, 2);
	row->entries = (uint64_t)sqlite3_column_int64(stmt, 3);
	if ((r = dup_blob(stmt, 4, &row->der, &row->der_len)) == TCA_OK && row->der == NULL)
		r = read_error(s, SQLITE_CORRUPT, "crl_get: CRL without DER");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

/*
 * Counts on a connection of its own, opened for the call: the scan of the
 * certificates index takes a while at a million rows, and must not hold the
 * reader's lock that every other read (OCSP, CRL, inventory) waits for.
 */
static int
sq_cert_counts(tca_store *st, int64_t now, struct tca_cert_counts *out)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;
	char err[256];
	int rc, r = TCA_ERR_INTERNAL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL || out == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 3)
		return TCA_OK;
	/* this connection opens the path: not ours once the store is lost */
	if (is_lost(s, NULL, 0))
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if (open_conn(s->path, SQLITE_OPEN_READONLY, &db, err, sizeof(err)) != TCA_OK) {
		log_error("store: cert_counts: %s", err);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	/* valid = all - expired - unexpired revoked; revoked ones carry the
	 * certificate's not_after, so neither count reads a certificate row */
	if ((rc = sqlite3_prepare_v2(db, "SELECT n - n_exp - (rv - rv_exp), rv, n_exp - rv_exp"
	    " FROM (SELECT count(*) n, COALESCE(SUM(d.not_after < ?1), 0) n_exp"
	    "  FROM cas c JOIN certificates d ON d.ca_id = c.ca_id AND d.kind = 'device'"
	    "  WHERE c.status = 'active'),"
	    " (SELECT count(*) rv, COALESCE(SUM(v.not_after < ?1), 0) rv_exp"
	    "  FROM cas c JOIN revocations v ON v.ca_id = c.ca_id"
	    "  WHERE c.status = 'active')", -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 1, now)) != SQLITE_OK ||
	    (rc = sqlite3_step(stmt)) != SQLITE_ROW) {
		log_error("store: cert_counts: %s (%s)", sqlite3_errmsg(db), sqlite3_errstr(rc));
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	out->valid = (uint64_t)sqlite3_column_int64(stmt, 0);
	out->revoked = (uint64_t)sqlite3_column_int64(stmt, 1);
	out->expired = (uint64_t)sqlite3_column_int64(stmt, 2);
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return r;
}

/* ------------------------------------------------------------ devices */

#define DEVICE_COLS "SELECT d.tenant, d.device_id, d.secret, d.registered_at," \
    " d.expires_at, d.failures, d.locked, d.consumed_at, c.serial FROM devices d" \
    " LEFT JOIN certificates c ON c.cert_id = d.consumed_cert_id"

static void
fill_device_row(sqlite3_stmt *stmt, struct tca_device_row *row)
{
	const void *serial = sqlite3_column_blob(stmt, 8);
	int serial_len = sqlite3_column_bytes(stmt, 8);
	int64_t f = sqlite3_column_int64(stmt, 5);

	memset(row, 0, sizeof(*row));
	copy_text(row->tenant, sizeof(row->tenant), sqlite3_column_text(stmt, 0));
	copy_text(row->device_id, sizeof(row->device_id), sqlite3_column_text(stmt, 1));
	copy_text(row->secret, sizeof(row->secret), sqlite3_column_text(stmt, 2));
	row->registered_at = sqlite3_column_int64(stmt, 3);
	row->expires_at = sqlite3_column_int64(stmt, 4);
	row->failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (unsigned int)f;
	row->locked = sqlite3_column_int64(stmt, 6) != 0;
	row->consumed_at = sqlite3_column_int64(stmt, 7);
	if (serial != NULL && serial_len > 0 && serial_len <= TCA_SERIAL_MAX)
		tca_hex(serial, (size_t)serial_len, row->consumed_serial_hex);
}

static int
sq_device_get(tca_store *st, const char *tenant, const char *device_id,
    struct tca_device_row *row)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = NULL;
	int rc, r;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || device_id == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 4)
		return TCA_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, DEVICE_COLS " WHERE d.tenant = ?1"
	    " AND d.device_id = ?2", -1, &stmt, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, device_id, -1, SQLITE_STATIC)) != SQLITE_OK) {
		r = read_error(s, rc, "device_get");
		goto out;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		fill_device_row(stmt, row);
		r = TCA_OK;
	} else
		r = rc == SQLITE_DONE ? TCA_ERR_NOT_FOUND : read_error(s, rc, "device_get");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

static int
sq_device_list(tca_store *st, const char *tenant, const char *after, size_t limit,
    int (*cb)(void *ctx, const struct tca_device_row *row), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct tca_device_row row;
	sqlite3_stmt *stmt = NULL;
	int rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || tenant == NULL || after == NULL || cb == NULL || limit == 0)
		return TCA_ERR_INVALID_ARG;
	if (s->schema_version < 4)
		return TCA_OK;
	pthread_mutex_lock(&s->rlock);
	if ((rc = sqlite3_prepare_v2(s->rdb, DEVICE_COLS " WHERE d.tenant = ?1"
	    " AND d.device_id > ?2 ORDER BY d.device_id LIMIT ?3", -1, &stmt,
	    NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(stmt, 2, after, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(stmt, 3, limit > INT32_MAX ? INT32_MAX :
	    (int64_t)limit)) != SQLITE_OK) {
		r = read_error(s, rc, "device_list");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		fill_device_row(stmt, &row);
		r = cb(ctx, &row);
		explicit_bzero(row.secret, sizeof(row.secret));
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? TCA_OK : read_error(s, rc, "device_list");
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

/* ------------------------------------------------- caps and fault simulation */

int
tca_store_sqlite_set_max_pages(tca_store *st, long max_pages)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	char sql[64];
	long long now = 0;
	int r;

	if (s == NULL || st->ops != &sqlite_ops)
		return TCA_ERR_INVALID_ARG;
	if (s->readonly)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if (max_pages <= 0)
		max_pages = s->default_max_pages;
	/* PRAGMA arguments cannot be bound; this is a number we formatted */
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %ld", max_pages);
	pthread_mutex_lock(&s->wlock);
	r = query_int(s->wdb, sql, &now, NULL, 0);
	pthread_mutex_unlock(&s->wlock);
	if (r != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	log_info("store: database size capped at %lld pages", now);
	return TCA_OK;
}

int
tca_store_sqlite_set_busy_timeout(tca_store *st, int ms)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	int rc = SQLITE_OK;

	if (s == NULL || st->ops != &sqlite_ops || ms < 0)
		return TCA_ERR_INVALID_ARG;
	if (s->wdb != NULL) {
		pthread_mutex_lock(&s->wlock);
		rc = sqlite3_busy_timeout(s->wdb, ms);
		pthread_mutex_unlock(&s->wlock);
	}
	return rc == SQLITE_OK ? TCA_OK : TCA_ERR_JOURNAL_UNAVAILABLE;
}

static int
sq_cert_audit_foreach(tca_store *st, int with_der,
    int (*cb)(void *ctx, const struct tca_cert_audit_row *row), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct tca_cert_audit_row row;
	sqlite3_stmt *stmt = NULL;
	int rc, r = TCA_ERR_INTERNAL;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	/* schema versions 1 and 2 (read-only opens) have no revocations */
	/* the der column comes last in each row, so skipping it skips its
	 * overflow pages */
	if ((rc = sqlite3_prepare_v2(s->rdb, s->schema_version >= 3 ? (with_der ?
	    "SELECT c.cert_id, c.tenant, c.kind, c.subject, c.serial,"
	    " c.fingerprint, c.der, r.cert_id IS NOT NULL FROM certificates c"
	    " LEFT JOIN revocations r ON r.cert_id = c.cert_id ORDER BY c.cert_id" :
	    "SELECT c.cert_id, c.tenant, c.kind, c.subject, c.serial,"
	    " c.fingerprint, NULL, r.cert_id IS NOT NULL FROM certificates c"
	    " LEFT JOIN revocations r ON r.cert_id = c.cert_id ORDER BY c.cert_id") :
	    with_der ? "SELECT cert_id, tenant, kind, subject, serial, fingerprint,"
	    " der, 0 FROM certificates ORDER BY cert_id" :
	    "SELECT cert_id, tenant, kind, subject, serial, fingerprint, NULL, 0"
	    " FROM certificates ORDER BY cert_id", -1, &stmt, NULL)) != SQLITE_OK) {
		r = read_error(s, rc, "cert_audit_foreach");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		row.cert_id = sqlite3_column_int64(stmt, 0);
		row.tenant = col_text(stmt, 1);
		row.kind = col_text(stmt, 2);
		row.subject = col_text(stmt, 3);
		row.serial = sqlite3_column_blob(stmt, 4);
		row.serial_len = (size_t)sqlite3_column_bytes(stmt, 4);
		row.fingerprint = sqlite3_column_blob(stmt, 5);
		row.fingerprint_len = (size_t)sqlite3_column_bytes(stmt, 5);
		row.der = sqlite3_column_blob(stmt, 6);
		row.der_len = (size_t)sqlite3_column_bytes(stmt, 6);
		row.revoked = sqlite3_column_int(stmt, 7) != 0;
		if (row.serial == NULL)
			row.serial_len = 0;
		if (row.fingerprint == NULL)
			row.fingerprint_len = 0;
		if (row.der == NULL)
			row.der_len = 0;
		if ((r = cb(ctx, &row)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = read_error(s, rc, "cert_audit_foreach");
		goto out;
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&s->rlock);
	return r;
}


/* ------------------------------------------------------------ migration */

/* Fills the neutral value of column col (store-migrate.h) from stmt. */
static void
mig_value(sqlite3_stmt *stmt, int col, enum tca_mig_type type,
    struct tca_mig_value *v)
{
	memset(v, 0, sizeof(*v));
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
		v->type = TCA_MIG_NULL;
		return;
	}
	v->type = type;
	switch (type) {
	case TCA_MIG_INT:
		v->i = sqlite3_column_int64(stmt, col);
		break;
	case TCA_MIG_TEXT:
		v->p = sqlite3_column_text(stmt, col);
		v->len = (size_t)sqlite3_column_bytes(stmt, col);
		if (v->p == NULL) {
			v->p = (const unsigned char *)"";
			v->len = 0;
		}
		break;
	case TCA_MIG_BLOB:
		v->p = sqlite3_column_blob(stmt, col);
		v->len = (size_t)sqlite3_column_bytes(stmt, col);
		break;
	default:
		break;
	}
}

static int
sq_export_rows(tca_store *st, tca_mig_row_cb cb, void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	const struct tca_mig_table *tb;
	sqlite3_stmt *stmt = NULL;
	struct tca_mig_row row;
	char sql[1024];
	int t, rc, r = TCA_ERR_INTERNAL, in_txn = 0;
	size_t i;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->rlock);
	if (s->schema_version != SCHEMA_VERSION) {
		log_error("store: %s: schema version %lld, not %d: open it read-write "
		    "once (start the engine on it) to bring it up to date, then "
		    "migrate", s->path, s->schema_version, SCHEMA_VERSION);
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	/* one read transaction: every table from the same snapshot */
	if ((rc = sqlite3_exec(s->rdb, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK) {
		r = read_error(s, rc, "export_rows");
		goto out;
	}
	in_txn = 1;
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		tb = &tca_mig_tables[t];
		if (tca_mig_select_sql((enum tca_mig_table_id)t, sql, sizeof(sql)) != TCA_OK)
			goto out;
		if ((rc = sqlite3_prepare_v2(s->rdb, sql, -1, &stmt, NULL)) != SQLITE_OK) {
			r = read_error(s, rc, "export_rows");
			goto out;
		}
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			memset(&row, 0, sizeof(row));
			row.table = (enum tca_mig_table_id)t;
			row.ncols = tb->ncols;
			for (i = 0; i < tb->ncols; i++)
				mig_value(stmt, (int)i, tb->cols[i].type, &row.v[i]);
			if ((r = cb(ctx, &row)) != 0)
				goto out;
		}
		if (rc != SQLITE_DONE) {
			r = read_error(s, rc, "export_rows");
			goto out;
		}
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	if (in_txn)
		(void)sqlite3_exec(s->rdb, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->rlock);
	return r;
}

struct sq_import {
	struct sqlite_store *s;
	sqlite3_stmt *ins[TCA_MIG_NTABLES];
	int refused;
	char why[512];
};

static int
sq_import_row(void *ctx, const struct tca_mig_row *row)
{
	struct sq_import *im = ctx;
	const struct tca_mig_table *tb;
	sqlite3_stmt *stmt;
	const struct tca_mig_value *v;
	int rc = SQLITE_OK, col;
	size_t i;

	if ((unsigned)row->table >= TCA_MIG_NTABLES)
		return TCA_ERR_INVALID_ARG;
	tb = &tca_mig_tables[row->table];
	stmt = im->ins[row->table];
	for (i = 0; i < row->ncols && i < tb->ncols && rc == SQLITE_OK; i++) {
		v = &row->v[i];
		col = (int)i + 1;
		switch (v->type) {
		case TCA_MIG_INT:
			rc = sqlite3_bind_int64(stmt, col, v->i);
			break;
		case TCA_MIG_TEXT:
			rc = sqlite3_bind_text(stmt, col, v->p != NULL ?
			    (const char *)v->p : "", (int)v->len, SQLITE_TRANSIENT);
			break;
		case TCA_MIG_BLOB:
			/* a NULL pointer would bind NULL, not an empty blob */
			rc = v->len == 0 ? sqlite3_bind_zeroblob(stmt, col, 0) :
			    sqlite3_bind_blob(stmt, col, v->p, (int)v->len,
			    SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_null(stmt, col);
			break;
		}
	}
	if (rc == SQLITE_OK)
		rc = step_done(stmt);
	else {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	}
	if (rc == SQLITE_OK && tb->update && sqlite3_changes(im->s->wdb) != 1) {
		tca_setf(im->why, sizeof(im->why), "%s: no CA %lld to link",
		    tb->label, (long long)row->v[0].i);
		im->refused = 1;
		return TCA_ERR_POLICY_VIOLATION;
	}
	if (rc != SQLITE_OK) {
		im->refused = 1;
		if (row->v[0].type == TCA_MIG_INT)
			tca_setf(im->why, sizeof(im->why), "the target refused %s row "
			    "%s %lld: %s", tb->label, tb->cols[0].name,
			    (long long)row->v[0].i, sqlite3_errmsg(im->s->wdb));
		else
			tca_setf(im->why, sizeof(im->why), "the target refused %s row "
			    "%s \"%s\": %s", tb->label, tb->cols[0].name,
			    row->v[0].p != NULL ? (const char *)row->v[0].p : "",
			    sqlite3_errmsg(im->s->wdb));
		return (rc & 0xff) == SQLITE_CONSTRAINT ? TCA_ERR_POLICY_VIOLATION :
		    TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	return 0;
}

static int
sq_import_rows(tca_store *st,
    int (*walk)(void *wctx, tca_mig_row_cb sink, void *sink_ctx), void *wctx,
    char *why, size_t whylen)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct sq_import im;
	sqlite3_stmt *stmt = NULL;
	char sql[1024], held[512];
	size_t off = 0;
	int t, rc, r = TCA_ERR_JOURNAL_UNAVAILABLE, in_txn = 0;
	long long n;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (s == NULL || walk == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->readonly) {
		tca_setf(why, whylen, "%s is open read-only", s->path);
		return TCA_ERR_INVALID_ARG;
	}
	memset(&im, 0, sizeof(im));
	im.s = s;
	held[0] = '\0';
	pthread_mutex_lock(&s->wlock);
	if (exec_sql(s->wdb, "BEGIN IMMEDIATE", why, whylen) != TCA_OK)
		goto out;
	in_txn = 1;
	/* empty, or refused naming what it holds */
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		if (tca_mig_tables[t].update)
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
		    tca_mig_tables[t].sql_table);
		if (query_int(s->wdb, sql, &n, why, whylen) != TCA_OK)
			goto out;
		if (n > 0 && off < sizeof(held))
			off += (size_t)snprintf(held + off, sizeof(held) - off, "%s%lld %s",
			    off > 0 ? ", " : "", n, tca_mig_tables[t].label);
	}
	if (off > 0) {
		tca_setf(why, whylen, "the target %s is not empty (%s): a migration "
		    "only fills an empty store", s->path, held);
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		if (tca_mig_write_sql((enum tca_mig_table_id)t, 0, sql,
		    sizeof(sql)) != TCA_OK) {
			r = TCA_ERR_INTERNAL;
			goto out;
		}
		if (sqlite3_prepare_v2(s->wdb, sql, -1, &im.ins[t], NULL) != SQLITE_OK) {
			tca_setf(why, whylen, "prepare \"%s\": %s", sql,
			    sqlite3_errmsg(s->wdb));
			goto out;
		}
	}
	if ((r = walk(wctx, sq_import_row, &im)) != TCA_OK) {
		if (im.refused)
			tca_setf(why, whylen, "%s", im.why);
		goto out;
	}
	r = TCA_ERR_JOURNAL_UNAVAILABLE;
	/* what the constraints do not check row by row: every CA links its
	 * current certificate, and the foreign keys hold */
	if (query_int(s->wdb, "SELECT count(*) FROM cas WHERE current_cert_id IS NULL",
	    &n, why, whylen) != TCA_OK)
		goto out;
	if (n > 0) {
		tca_setf(why, whylen, "%lld CA(s) without a current certificate "
		    "after the import", n);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if ((rc = sqlite3_prepare_v2(s->wdb, "PRAGMA foreign_key_check", -1,
	    &stmt, NULL)) != SQLITE_OK) {
		tca_setf(why, whylen, "foreign_key_check: %s", sqlite3_errmsg(s->wdb));
		goto out;
	}
	if ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		tca_setf(why, whylen, "a foreign key does not hold in table %s",
		    col_text(stmt, 0));
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (exec_sql(s->wdb, "COMMIT", why, whylen) != TCA_OK)
		goto out;
	in_txn = 0;
	r = TCA_OK;
 out:
	sqlite3_finalize(stmt);
	for (t = 0; t < TCA_MIG_NTABLES; t++)
		sqlite3_finalize(im.ins[t]);
	if (in_txn && !sqlite3_get_autocommit(s->wdb))
		(void)sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static const struct tca_store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.get_ca = sq_get_ca,
	.foreach_ca = sq_foreach_ca,
	.commit = sq_commit,
	.journal_foreach = sq_journal_foreach,
	.changes_since = sq_changes_since,
	.cert_foreach = sq_cert_foreach,
	.cert_list = sq_cert_list,
	.cert_get = sq_cert_get,
	.revoked_foreach = sq_revoked_foreach,
	.revoked_all = sq_revoked_all,
	.crl_get = sq_crl_get,
	.cert_counts = sq_cert_counts,
	.device_get = sq_device_get,
	.device_list = sq_device_list,
	.cert_audit_foreach = sq_cert_audit_foreach,
	.health = sq_health,
	.leader = sq_leader,
	.export_rows = sq_export_rows,
	.import_rows = sq_import_rows,
};
