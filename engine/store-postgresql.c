/*
 * store-postgresql.c - the PostgreSQL backend of the state store (store.h,
 * store-postgresql.h; issue 13): several engines, one database.
 *
 * Same semantics as store-sqlite.c, change for change and result code for
 * result code (the store conformance suite runs one set of tests on both);
 * change validation and journal records come from store-change.c, so both
 * backends journal byte-identical records.  Data travels as parameters
 * (bytea in binary), never inside SQL text: PQexecParams, or for the
 * commit path PQexecPrepared on statements prepared once per writer
 * connection (about a third less time per batch); results are read in
 * binary.
 *
 * Schema, in the connection's current schema (the first of search_path that
 * exists), version SCHEMA_VERSION in tca_meta:
 *
 *   tca_meta      one row: application_id (0x54434131 "TCA1", as SQLite's
 *                 PRAGMA application_id) and schema_version.  Version 1 has
 *                 the semantics of SQLite schema version 4; later versions
 *                 are numbered steps in migrations[] below, each run once, in
 *                 order, in the transaction that opens the store.
 *   cas, certificates, revocations, crls, devices, journal
 *                 the SQLite tables column for column (INTEGER -> bigint,
 *                 BLOB -> bytea); ca_id and cert_id are the highest + 1,
 *                 assigned inside the batch transaction (which holds the
 *                 journal head lock), so they have no gaps and equal
 *                 SQLite's rowids for the same changes.  Same constraints:
 *     cas_one_active              UNIQUE (tenant) WHERE status = 'active'
 *     certificates_device_serial  UNIQUE (issuer_hash, serial) WHERE kind =
 *                                 'device', and the plpgsql trigger
 *                                 certificates_serial_unique for the CA
 *                                 rules (a CA certificate may reuse its own
 *                                 CA's serial, nothing else may), raising
 *                                 SQLSTATE TCA01 -> TCA_ERR_ALREADY_EXISTS;
 *     the journal append-only      BEFORE UPDATE / DELETE row triggers and
 *                                 a BEFORE TRUNCATE statement trigger, all
 *                                 raising SQLSTATE TCA02;
 *     certificates never deleted, revocations never updated or deleted,
 *     CRL numbers only grow, CRLs never deleted: triggers raising TCA02
 *     (TRUNCATE refused too).
 *   journal.subject and journal.details are bytea, not text: the journal
 *                 hash covers their bytes, which need not be valid in the
 *                 database's encoding (details is free text).  Other text
 *                 that the database cannot store (SQLSTATE class 22, e.g.
 *                 not UTF-8 in a UTF8 database) refuses its change alone
 *                 with TCA_ERR_INVALID_ARG, where SQLite would store it.
 *   journal_head  one row (seq, hash): the newest journal record, or 0 and
 *                 32 zero bytes.  A trigger lets it move only to a record
 *                 that is in the journal, one at a time forward.
 *   ca_reservations (version 2, SQLite version 5) tenant, holder,
 *                 reserved_at_ms, lease_until_ms: CA creations under way
 *                 (store.h, CA_RESERVE); short-lived, never journaled, not
 *                 copied by `store migrate`.
 *
 *   Text is ordered as SQLite orders it (COLLATE "C": bytes), whatever the
 *   database's collation.
 *
 * Creation and migration run in one transaction under
 * pg_advisory_xact_lock(ADVISORY_KEY), so two nodes opening an empty
 * database at once cannot both create the schema: the second waits and then
 * finds it.  At every read-write open the guards (the trigger functions,
 * the triggers - present, enabled, of the right kind - and the indexes,
 * unique where they must be) are checked in one transaction under the same
 * lock; one that is missing, disabled or altered is restored, and a trigger
 * our tables should not have is dropped, each with an ALERT line in the log,
 * as check_guards() does for SQLite (docs/security.md, Store integrity).
 *
 * Commit: one transaction per batch (the committer's group commit), a
 * SAVEPOINT per change so that a failing change rolls back alone.  The
 * journal stays ONE chain without forks when several engines commit at
 * once: every batch transaction starts with SELECT ... FROM journal_head FOR
 * UPDATE, which serialises journal appends across nodes (readers are not
 * blocked: they take no row locks), chains its records after what it finds
 * there (checked against the journal's newest record) and writes the new
 * head before COMMIT.  Because every write transaction holds that lock from
 * its first statement, the uniqueness triggers (which read other rows) see
 * every earlier commit: READ COMMITTED takes a new snapshot per statement,
 * after the lock was granted.
 *
 * Failures.  A transient failure - the connection lost (PQstatus not OK,
 * or an error without SQLSTATE), admin shutdown / crash / starting up
 * (57P01, 57P02, 57P03), connection exceptions (08xxx), a read-only server
 * after a failover (25006), serialization failure (40001) or deadlock
 * (40P01) - before COMMIT was sent leaves nothing committed: the
 * connection is reset and the batch is run again, up to `attempts` tries
 * with a doubling pause.  If it still fails, every result is
 * TCA_ERR_JOURNAL_UNAVAILABLE and nothing is returned as committed.
 *
 * The dangerous case is the connection lost DURING COMMIT: the outcome is
 * unknown, and running the batch again could commit it twice.  Instead,
 * commit() reconnects, takes the journal_head lock (which waits until the
 * old transaction has ended, committed or not: it held that lock) and
 *  - if the batch wrote journal records: looks for record last_seq with
 *    exactly the hash computed for the batch's last record.  Found: the
 *    batch committed, TCA_OK with the results computed; not found: it did
 *    not, and it is retried.
 *  - if it wrote none (bookkeeping only): RENEWAL_STATE and CRL_STATE
 *    replace the whole state and DEVICE_FAILURE that does not lock only sets
 *    a flag, so running them twice is running them once: retried.
 *    DEVICE_ATTEMPT (failures + 1) and DEVICE_RELEASE (failures - 1) are not
 *    idempotent: such a batch is answered JOURNAL_UNAVAILABLE.  For an
 *    attempt that errs on the side of counting - the engine refuses the
 *    password check, while the increment may have happened - and for a
 *    release on the side of keeping the attempt counted: both can only
 *    make a lock come sooner, never let a guess go uncounted.
 * health() is TCA_OK while the writer connection is up (no round trip);
 * after a failure it tries to reconnect and says why not.
 *
 * Leadership (store.h leader(); the scheduler's election): a third
 * connection of its own holds a session-level pg_try_advisory_lock per role,
 * in the two-int4 key space (LEADER_CLASS, hashtext(current_schema() || '/'
 * || role)), which never meets the one-bigint ADVISORY_KEY of the schema
 * check; the writer's and reader's resets never touch it.  While a role is
 * held, each call makes one round trip on that session: if it fails, the
 * session (and with it every lock) is gone, the role is reported lost, and
 * the next call reconnects and tries again.  The server releases the lock
 * the moment the session ends: the holder closes the store, its process
 * dies, or its connection is terminated; if the holder's network goes, the
 * server notices within about 25 s (server-side keepalives set on that
 * session: 10 s idle, 3 probes 5 s apart) and the holder within about 30 s
 * (tcp_user_timeout), so it may think itself the leader a few seconds
 * longer than it is - harmless for the scheduler (docs/architecture.md).
 *
 * Reading: a connection of its own, serialised by a recursive mutex
 * (callbacks may re-enter the store).  Single-statement reads run in
 * READ COMMITTED; a result is received whole before any callback runs.
 * The walks that may return millions of rows (journal_foreach,
 * cert_foreach, cert_audit_foreach, revoked_all) read through a cursor
 * (DECLARE ... CURSOR, FETCH 1000) in a READ ONLY transaction, so memory
 * stays bounded.  A read that finds its connection lost resets it and
 * tries once more (when nothing was handed to a callback yet).
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "store.h"
#include "store-change.h"
#include "store-migrate.h"
#include "store-postgresql.h"
#include "tca-error.h"
#include "text.h"

#define SCHEMA_VERSION 2
#define APPLICATION_ID 0x54434131	/* "TCA1" */
#define ADVISORY_KEY 0x5443413153544f52LL	/* "TCA1STOR" */
#define FETCH_ROWS "1000"
#define QP_MAX 16
#define DEFAULT_ATTEMPTS 5
#define DEFAULT_BACKOFF_MS 100
#define MAX_BACKOFF_MS 2000
/* How long a COMMIT whose reply was lost is resolved for (reconnecting, then
 * looking for its journal record) before it is answered as unknown: an
 * outage shorter than this costs no certificate that is committed but not
 * returned.  Commits wait behind it meanwhile. */
#define RESOLVE_WAIT_MS 30000
#define PREPARED_MAX 48
/* LISTEN/NOTIFY channel of changes other engines cache (wait_change) */
#define NOTIFY_CHANNEL "tca_changes"
/* Leadership locks: the two-int4 advisory key space (which does not overlap
 * the one-bigint space of ADVISORY_KEY), class LEADER_CLASS ("TCA1" as an
 * int4), object hashtext(current_schema() || '/' || role), computed by the
 * server, so the same for every node, and distinct per schema. */
#define LEADER_CLASS 0x54434131
#define LEADER_ROLES 8

/* ------------------------------------------------------------ schema */

/*
 * Bodies of the trigger functions, kept apart so that check_guards() can
 * compare them with pg_proc.prosrc.  Each function pins search_path to the
 * store's schema (SET search_path FROM CURRENT at creation).
 */
static const char fn_refuse_body[] =
    "\nBEGIN\n"
    "  RAISE EXCEPTION USING ERRCODE = 'TCA02', MESSAGE = TG_ARGV[0];\n"
    "END\n";

static const char fn_serial_body[] =
    "\nBEGIN\n"
    "  IF EXISTS (SELECT 1 FROM certificates c WHERE c.kind = 'ca'\n"
    "      AND c.issuer_hash = NEW.issuer_hash AND c.serial = NEW.serial\n"
    "      AND (NEW.kind <> 'ca' OR c.ca_id <> NEW.ca_id\n"
    "      OR c.fingerprint = NEW.fingerprint))\n"
    "    OR (NEW.kind = 'ca' AND EXISTS (SELECT 1 FROM certificates c\n"
    "      WHERE c.kind = 'device' AND c.issuer_hash = NEW.issuer_hash\n"
    "      AND c.serial = NEW.serial)) THEN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'TCA01',\n"
    "      MESSAGE = 'issuer and serial already recorded';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END\n";

static const char fn_crl_grows_body[] =
    "\nBEGIN\n"
    "  IF NEW.crl_number <= OLD.crl_number THEN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'TCA02', MESSAGE = 'CRL numbers only grow';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END\n";

static const char fn_crl_new_body[] =
    "\nBEGIN\n"
    "  IF EXISTS (SELECT 1 FROM crls WHERE tenant = NEW.tenant\n"
    "      AND crl_number >= NEW.crl_number) THEN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'TCA02', MESSAGE = 'CRL numbers only grow';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END\n";

static const char fn_head_body[] =
    "\nBEGIN\n"
    "  IF NEW.seq < OLD.seq OR (NEW.seq > 0 AND NOT EXISTS (SELECT 1 FROM journal\n"
    "      WHERE seq = NEW.seq AND hash = NEW.hash)) THEN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'TCA02',\n"
    "      MESSAGE = 'the journal head only moves to a journal record, forward';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END\n";

struct guard_fn {
	const char *name;
	const char *body;
};

static const struct guard_fn guard_fns[] = {
	{ "tca_refuse", fn_refuse_body },
	{ "tca_certificates_serial_unique", fn_serial_body },
	{ "tca_crls_number_grows", fn_crl_grows_body },
	{ "tca_crls_number_new", fn_crl_new_body },
	{ "tca_journal_head_guard", fn_head_body },
};
#define N_GUARD_FNS (sizeof(guard_fns) / sizeof(guard_fns[0]))

/* pg_trigger.tgtype bits */
#define TG_ROW 1
#define TG_BEFORE 2
#define TG_INSERT 4
#define TG_DELETE 8
#define TG_UPDATE 16
#define TG_TRUNCATE 32

struct guard_trigger {
	const char *name, *table, *fn;
	int tgtype;
	const char *sql;	/* CREATE TRIGGER */
};

static const struct guard_trigger guard_triggers[] = {
	{ "journal_no_update", "journal", "tca_refuse", TG_BEFORE | TG_ROW | TG_UPDATE,
	    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal FOR EACH ROW"
	    " EXECUTE FUNCTION tca_refuse('journal is append-only')" },
	{ "journal_no_delete", "journal", "tca_refuse", TG_BEFORE | TG_ROW | TG_DELETE,
	    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal FOR EACH ROW"
	    " EXECUTE FUNCTION tca_refuse('journal is append-only')" },
	{ "journal_no_truncate", "journal", "tca_refuse", TG_BEFORE | TG_TRUNCATE,
	    "CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal"
	    " FOR EACH STATEMENT EXECUTE FUNCTION tca_refuse('journal is append-only')" },
	{ "journal_head_guard", "journal_head", "tca_journal_head_guard",
	    TG_BEFORE | TG_ROW | TG_UPDATE,
	    "CREATE TRIGGER journal_head_guard BEFORE UPDATE ON journal_head"
	    " FOR EACH ROW EXECUTE FUNCTION tca_journal_head_guard()" },
	{ "journal_head_no_delete", "journal_head", "tca_refuse",
	    TG_BEFORE | TG_ROW | TG_DELETE,
	    "CREATE TRIGGER journal_head_no_delete BEFORE DELETE ON journal_head"
	    " FOR EACH ROW EXECUTE FUNCTION tca_refuse('the journal head is never deleted')" },
	{ "journal_head_no_truncate", "journal_head", "tca_refuse", TG_BEFORE | TG_TRUNCATE,
	    "CREATE TRIGGER journal_head_no_truncate BEFORE TRUNCATE ON journal_head"
	    " FOR EACH STATEMENT EXECUTE FUNCTION tca_refuse('the journal head is never deleted')" },
	{ "certificates_serial_unique", "certificates", "tca_certificates_serial_unique",
	    TG_BEFORE | TG_ROW | TG_INSERT,
	    "CREATE TRIGGER certificates_serial_unique BEFORE INSERT ON certificates"
	    " FOR EACH ROW EXECUTE FUNCTION tca_certificates_serial_unique()" },
	{ "certificates_no_delete", "certificates", "tca_refuse", TG_BEFORE | TG_ROW | TG_DELETE,
	    "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates"
	    " FOR EACH ROW EXECUTE FUNCTION tca_refuse('certificate history is append-only')" },
	{ "certificates_no_truncate", "certificates", "tca_refuse", TG_BEFORE | TG_TRUNCATE,
	    "CREATE TRIGGER certificates_no_truncate BEFORE TRUNCATE ON certificates"
	    " FOR EACH STATEMENT EXECUTE FUNCTION tca_refuse('certificate history is append-only')" },
	{ "revocations_no_update", "revocations", "tca_refuse", TG_BEFORE | TG_ROW | TG_UPDATE,
	    "CREATE TRIGGER revocations_no_update BEFORE UPDATE ON revocations"
	    " FOR EACH ROW EXECUTE FUNCTION tca_refuse('revocation is irreversible')" },
	{ "revocations_no_delete", "revocations", "tca_refuse", TG_BEFORE | TG_ROW | TG_DELETE,
	    "CREATE TRIGGER revocations_no_delete BEFORE DELETE ON revocations"
	    " FOR EACH ROW EXECUTE FUNCTION tca_refuse('revocation is irreversible')" },
	{ "revocations_no_truncate", "revocations", "tca_refuse", TG_BEFORE | TG_TRUNCATE,
	    "CREATE TRIGGER revocations_no_truncate BEFORE TRUNCATE ON revocations"
	    " FOR EACH STATEMENT EXECUTE FUNCTION tca_refuse('revocation is irreversible')" },
	{ "crls_number_grows", "crls", "tca_crls_number_grows", TG_BEFORE | TG_ROW | TG_UPDATE,
	    "CREATE TRIGGER crls_number_grows BEFORE UPDATE ON crls"
	    " FOR EACH ROW EXECUTE FUNCTION tca_crls_number_grows()" },
	{ "crls_number_new", "crls", "tca_crls_number_new", TG_BEFORE | TG_ROW | TG_INSERT,
	    "CREATE TRIGGER crls_number_new BEFORE INSERT ON crls"
	    " FOR EACH ROW EXECUTE FUNCTION tca_crls_number_new()" },
	{ "crls_no_delete", "crls", "tca_refuse", TG_BEFORE | TG_ROW | TG_DELETE,
	    "CREATE TRIGGER crls_no_delete BEFORE DELETE ON crls"
	    " FOR EACH ROW EXECUTE FUNCTION tca_refuse('CRLs are replaced, never deleted')" },
	{ "crls_no_truncate", "crls", "tca_refuse", TG_BEFORE | TG_TRUNCATE,
	    "CREATE TRIGGER crls_no_truncate BEFORE TRUNCATE ON crls"
	    " FOR EACH STATEMENT EXECUTE FUNCTION tca_refuse('CRLs are replaced, never deleted')" },
};
#define N_GUARD_TRIGGERS (sizeof(guard_triggers) / sizeof(guard_triggers[0]))

/* tables whose triggers are checked (an unknown trigger on one is dropped) */
static const char *const guarded_tables[] = {
	"cas", "certificates", "revocations", "crls", "devices", "journal", "journal_head",
};
#define N_GUARDED_TABLES (sizeof(guarded_tables) / sizeof(guarded_tables[0]))

struct guard_index {
	const char *name;
	int unique;
	const char *sql;
};

static const struct guard_index guard_indexes[] = {
	{ "cas_one_active", 1,
	    "CREATE UNIQUE INDEX cas_one_active ON cas (tenant) WHERE status = 'active'" },
	{ "certificates_device_serial", 1,
	    "CREATE UNIQUE INDEX certificates_device_serial"
	    " ON certificates (issuer_hash, serial) WHERE kind = 'device'" },
	{ "certificates_ca_serial", 0,
	    "CREATE INDEX certificates_ca_serial"
	    " ON certificates (issuer_hash, serial) WHERE kind = 'ca'" },
	{ "certificates_tenant", 0,
	    "CREATE INDEX certificates_tenant ON certificates (tenant, cert_id)" },
	{ "certificates_device", 0,
	    "CREATE INDEX certificates_device ON certificates (tenant, device_id, cert_id)"
	    " WHERE kind = 'device'" },
	{ "certificates_state", 0,
	    "CREATE INDEX certificates_state ON certificates (ca_id, not_after, kind)"
	    " WHERE kind = 'device'" },
	{ "revocations_ca", 0,
	    "CREATE INDEX revocations_ca ON revocations (ca_id, not_after)" },
	{ "crls_tenant", 0, "CREATE INDEX crls_tenant ON crls (tenant, crl_number)" },
};
#define N_GUARD_INDEXES (sizeof(guard_indexes) / sizeof(guard_indexes[0]))

/*
 * Version 1: the tables (the guards - trigger functions, triggers, indexes -
 * are created by check_guards() from the tables above, right after, in the
 * same transaction, so a fresh schema and a repaired one are made by the
 * same statements).
 */
static const char schema_v1[] =
    "CREATE TABLE tca_meta ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " application_id bigint NOT NULL,"
    " schema_version integer NOT NULL);"
    "CREATE TABLE cas ("
    " ca_id bigint PRIMARY KEY,"
    " tenant text NOT NULL,"
    " status text NOT NULL CHECK (status IN ('active', 'deleted')),"
    " key_type text NOT NULL,"
    " key_id bytea NOT NULL CHECK (length(key_id) BETWEEN 1 AND 32),"
    " created_at bigint NOT NULL,"
    " deleted_at bigint NOT NULL DEFAULT 0,"
    " current_cert_id bigint,"
    " previous_cert_id bigint,"
    " renewal_failed smallint NOT NULL DEFAULT 0 CHECK (renewal_failed IN (0, 1)),"
    " renewal_reason text NOT NULL DEFAULT '',"
    " renewal_attempts bigint NOT NULL DEFAULT 0 CHECK (renewal_attempts >= 0),"
    " renewal_failed_since bigint NOT NULL DEFAULT 0,"
    " renewal_next_retry bigint NOT NULL DEFAULT 0,"
    " renewal_alerted smallint NOT NULL DEFAULT 0 CHECK (renewal_alerted IN (0, 1)),"
    " expiry_alerted smallint NOT NULL DEFAULT 0 CHECK (expiry_alerted IN (0, 1)),"
    " crl_failed smallint NOT NULL DEFAULT 0 CHECK (crl_failed IN (0, 1)),"
    " crl_reason text NOT NULL DEFAULT '',"
    " crl_attempts bigint NOT NULL DEFAULT 0 CHECK (crl_attempts >= 0),"
    " crl_failed_since bigint NOT NULL DEFAULT 0,"
    " crl_next_retry bigint NOT NULL DEFAULT 0,"
    " crl_alerted smallint NOT NULL DEFAULT 0 CHECK (crl_alerted IN (0, 1)),"
    " policy text NOT NULL DEFAULT '');"
    "CREATE TABLE certificates ("
    " cert_id bigint PRIMARY KEY,"
    " ca_id bigint NOT NULL REFERENCES cas (ca_id),"
    " tenant text NOT NULL,"
    " kind text NOT NULL CHECK (kind IN ('ca', 'device')),"
    " issuer_hash bytea NOT NULL CHECK (length(issuer_hash) = 32),"
    " serial bytea NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),"
    " subject text NOT NULL,"
    " fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),"
    " not_before bigint NOT NULL,"
    " not_after bigint NOT NULL,"
    " issued_at bigint NOT NULL,"
    " der bytea NOT NULL,"
    " device_id text NOT NULL DEFAULT '');"
    "ALTER TABLE cas ADD CONSTRAINT cas_current_cert FOREIGN KEY (current_cert_id)"
    " REFERENCES certificates (cert_id);"
    "ALTER TABLE cas ADD CONSTRAINT cas_previous_cert FOREIGN KEY (previous_cert_id)"
    " REFERENCES certificates (cert_id);"
    "CREATE TABLE revocations ("
    " cert_id bigint PRIMARY KEY REFERENCES certificates (cert_id),"
    " ca_id bigint NOT NULL REFERENCES cas (ca_id),"
    " revoked_at bigint NOT NULL,"
    " reason integer NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9)),"
    " not_after bigint NOT NULL);"
    "CREATE TABLE crls ("
    " ca_id bigint PRIMARY KEY REFERENCES cas (ca_id),"
    " tenant text NOT NULL,"
    " crl_number bigint NOT NULL CHECK (crl_number > 0),"
    " this_update bigint NOT NULL,"
    " next_update bigint NOT NULL,"
    " entries bigint NOT NULL,"
    " der bytea NOT NULL);"
    "CREATE TABLE devices ("
    " tenant text NOT NULL,"
    " device_id text NOT NULL,"
    " secret text NOT NULL,"
    " registered_at bigint NOT NULL,"
    " expires_at bigint NOT NULL CHECK (expires_at >= 0),"
    " failures bigint NOT NULL DEFAULT 0 CHECK (failures >= 0),"
    " locked smallint NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
    " consumed_at bigint NOT NULL DEFAULT 0,"
    " consumed_cert_id bigint REFERENCES certificates (cert_id),"
    " PRIMARY KEY (tenant, device_id));"
    "CREATE TABLE journal ("
    " seq bigint PRIMARY KEY CHECK (seq > 0),"
    " time_ms bigint NOT NULL,"
    " op text NOT NULL,"
    " tenant text NOT NULL,"
    " serial_hex text NOT NULL,"
    " subject bytea NOT NULL,"
    " fingerprint_hex text NOT NULL,"
    " uid bigint NOT NULL,"
    " pid bigint NOT NULL,"
    " details bytea NOT NULL,"
    " prev_hash bytea NOT NULL,"
    " hash bytea NOT NULL);"
    "CREATE TABLE journal_head ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " seq bigint NOT NULL CHECK (seq >= 0),"
    " hash bytea NOT NULL CHECK (length(hash) = 32));"
    "INSERT INTO journal_head (singleton, seq, hash)"
    " VALUES (true, 0, decode(repeat('00', 32), 'hex'));"
    "INSERT INTO tca_meta (singleton, application_id, schema_version)"
    " VALUES (true, 1413693745, 1);";

/*
 * Numbered steps: migrations[v - 1] takes a store from version v - 1 to v
 * (version 0: an empty schema).  A step ends by setting
 * tca_meta.schema_version.  Later versions append here; a step never
 * changes once released.
 */
/* Version 2 (issue 13): CA creations reserved before the key is made. */
static const char schema_v2[] =
    "CREATE TABLE ca_reservations ("
    " tenant text PRIMARY KEY,"
    " holder text NOT NULL,"
    " reserved_at_ms bigint NOT NULL,"
    " lease_until_ms bigint NOT NULL);"
    "UPDATE tca_meta SET schema_version = 2;";

static const char *const migrations[SCHEMA_VERSION] = {
	schema_v1,
	schema_v2,
};

/* ------------------------------------------------------------ state */

struct pg_store {
	tca_store base;		/* first member: the engine sees only this */
	int readonly;
	char *conninfo;		/* as given: may hold a password; never logged */
	char desc[512];		/* host, port, dbname, user: for messages */
	pthread_mutex_t wlock;	/* writer connection */
	PGconn *wconn;
	pthread_mutex_t rlock;	/* recursive: callbacks may re-enter */
	PGconn *rconn;
	int rdepth;		/* nesting of reads holding a transaction open */
	int rtxn;		/* the reader is inside BEGIN (a cursor walk) */
	int wlock_init, rlock_init, hlock_init;
	pthread_mutex_t hlock;	/* healthy, why, retry knobs, fault */
	int healthy;
	char why[512];
	int attempts, backoff_ms;
	int resolve_wait_ms;
	int fault;		/* TCA_PG_FAULT_* for the next batch, one-shot */
	/* writer statements prepared on the current writer connection (by
	 * SQL text; forgotten whenever the connection is re-established) */
	const char *prepared[PREPARED_MAX];
	int nprepared;
	int guards_restored;
	/* a batch answered as unknown, checked once the writer is back
	 * (report_unresolved; wlock) */
	int64_t unresolved_seq;
	unsigned char unresolved_hash[32];
	char unresolved_what[512];
	/* leadership (pg_leader): a connection of its own holding the
	 * session-level advisory locks of the roles held */
	pthread_mutex_t llock;
	int llock_init;
	PGconn *lconn;
	/* wait_change: a connection of its own LISTENing on NOTIFY_CHANNEL */
	pthread_mutex_t nlock;
	int nlock_init;
	PGconn *nconn;
	struct {
		char role[TCA_LEADER_ROLE_MAX + 1];
		int held;
	} roles[LEADER_ROLES];
	int nroles;
};

static const struct tca_store_ops pg_ops;

/* ------------------------------------------------------------ helpers */

/* Query parameters: text for text and numbers, binary for bytea. */
struct qp {
	int n;
	const char *v[QP_MAX];
	int l[QP_MAX];
	int f[QP_MAX];
	char num[QP_MAX][24];
};

static void
qp_text(struct qp *q, const char *s)
{
	q->v[q->n] = s;
	q->l[q->n] = 0;
	q->f[q->n] = 0;
	q->n++;
}

static void
qp_int(struct qp *q, int64_t x)
{
	snprintf(q->num[q->n], sizeof(q->num[q->n]), "%lld", (long long)x);
	qp_text(q, q->num[q->n]);
}

static void
qp_bin(struct qp *q, const void *b, size_t len)
{
	q->v[q->n] = b;
	q->l[q->n] = (int)len;
	q->f[q->n] = 1;
	q->n++;
}

static void
qp_null(struct qp *q)
{
	qp_text(q, NULL);
}

static PGresult *
q_exec(PGconn *conn, const char *sql, const struct qp *q)
{
	return PQexecParams(conn, sql, q != NULL ? q->n : 0, NULL,
	    q != NULL ? q->v : NULL, q != NULL ? q->l : NULL,
	    q != NULL ? q->f : NULL, 1);
}

static int
res_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Binary result getters.  NULL reads as 0 / "" / no bytes. */
static int64_t
g_i64(const PGresult *res, int row, int col)
{
	const unsigned char *p;
	uint64_t v = 0;
	int len, i;

	if (PQgetisnull(res, row, col))
		return 0;
	p = (const unsigned char *)PQgetvalue(res, row, col);
	len = PQgetlength(res, row, col);
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return 0;
	if (len == 1)
		return p[0];
	for (i = 0; i < len; i++)
		v = (v << 8) | p[i];
	if (len == 2)
		return (int16_t)v;
	if (len == 4)
		return (int32_t)v;
	return (int64_t)v;
}

static const char *
g_text(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return "";
	return PQgetvalue(res, row, col);	/* libpq NUL-terminates */
}

static const unsigned char *
g_bin(const PGresult *res, int row, int col, size_t *len_ptr)
{
	*len_ptr = 0;
	if (PQgetisnull(res, row, col))
		return NULL;
	*len_ptr = (size_t)PQgetlength(res, row, col);
	return (const unsigned char *)PQgetvalue(res, row, col);
}

static int
g_isnull(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col);
}

/*
 * The server's message of res (or the connection's), one line.  Only the
 * primary message: CONTEXT and DETAIL may quote a parameter's value (with
 * log_parameter_max_length_on_error, or a key in a unique violation), and
 * data stays out of the log.
 */
static void
res_msg(PGconn *conn, const PGresult *res, char *out, size_t outlen)
{
	const char *m = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	size_t i;

	if ((m == NULL || *m == '\0') && res != NULL)
		m = PQresultErrorMessage(res);
	if (m == NULL || *m == '\0')
		m = conn != NULL ? PQerrorMessage(conn) : "no connection";
	snprintf(out, outlen, "%s", m != NULL && *m != '\0' ? m : "unknown error");
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '\n' || out[i] == '\t')
			out[i] = out[i + 1] == '\0' ? '\0' : ' ';
}

static const char *
res_state(const PGresult *res)
{
	const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s != NULL ? s : "";
}

/*
 * Whether a failure is transient (the batch may be tried again once the
 * connection is back): the connection lost, or SQLSTATE 40001 / 40P01 /
 * 57P01-03 / 08xxx / 25006.
 */
static int
transient(PGconn *conn, const char *state)
{
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK || state[0] == '\0')
		return 1;
	return strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	    strcmp(state, "57P03") == 0 || strncmp(state, "08", 2) == 0 ||
	    strcmp(state, "25006") == 0;
}

/* The connection is gone for good (not only this statement failed). */
static int
conn_lost(PGconn *conn, const char *state)
{
	return conn == NULL || PQstatus(conn) != CONNECTION_OK || state[0] == '\0' ||
	    strncmp(state, "57P0", 4) == 0 || strncmp(state, "08", 2) == 0 ||
	    strcmp(state, "25006") == 0;
}

/* Names the database without anything secret: host, port, dbname, user. */
static int
describe(const char *conninfo, char *out, size_t outlen)
{
	PQconninfoOption *opts, *o;
	char *perr = NULL;
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;

	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		/* the parser's message may quote the string: not passed on */
		PQfreemem(perr);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0 || (host == NULL &&
		    strcmp(o->keyword, "hostaddr") == 0))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
	}
	snprintf(out, outlen, "postgresql store (host=%s port=%s dbname=%s user=%s)",
	    host != NULL ? host : "(default)", port != NULL ? port : "(default)",
	    db != NULL ? db : "(default)", user != NULL ? user : "(default)");
	PQconninfoFree(opts);
	return 0;
}

/* libpq notice processor: one log line per server notice (a WARNING such
 * as a cancelled synchronous-replication wait), escaped like any text. */
static void
notice_to_log(void *arg, const char *message)
{
	const struct pg_store *s = arg;
	char line[512];
	size_t n;

	snprintf(line, sizeof(line), "%s", message != NULL ? message : "");
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warn("store: %s: the server says: %s", s->desc, line);
}

static PGconn *
connect_db(struct pg_store *s, char *err, size_t errlen)
{
	/*
	 * Ours first: the conninfo's own settings override them.  Over TCP a
	 * server that vanished without a word (a failover, a partition) is
	 * noticed within about half a minute, not at the kernel's TCP timeout
	 * (minutes), so a commit waiting on it fails and is retried elsewhere.
	 */
	static const char *const kw[] = {
		"connect_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "fallback_application_name",
		"dbname", NULL
	};
	const char *val[8];
	char msg[512];
	PGconn *conn;

	val[0] = "10";
	val[1] = "10";
	val[2] = "5";
	val[3] = "3";
	val[4] = "30000";
	val[5] = "tca";
	val[6] = s->conninfo;
	val[7] = NULL;
	conn = PQconnectdbParams(kw, val, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		res_msg(conn, NULL, msg, sizeof(msg));
		tca_setf(err, errlen, "%s: cannot connect: %s", s->desc, msg);
		PQfinish(conn);
		return NULL;
	}
	/* the server's notices and warnings go to our log, not raw to stderr */
	(void)PQsetNoticeProcessor(conn, notice_to_log, s);
	return conn;
}

/* Runs a statement without parameters that returns nothing we read. */
static int
exec_simple(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	char msg[512];
	int ok = res_ok(res);

	if (!ok) {
		res_msg(conn, res, msg, sizeof(msg));
		tca_setf(err, errlen, "%s: %s", what, msg);
	}
	PQclear(res);
	return ok ? TCA_OK : TCA_ERR_JOURNAL_UNAVAILABLE;
}

static void
set_health(struct pg_store *s, int healthy, const char *why)
{
	pthread_mutex_lock(&s->hlock);
	s->healthy = healthy;
	snprintf(s->why, sizeof(s->why), "%s", why != NULL ? why : "");
	pthread_mutex_unlock(&s->hlock);
}

static void
sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ open */

/* A single integer (or NULL -> *isnull) from sql with q. */
static int
query_i64(PGconn *conn, const char *sql, const struct qp *q, int64_t *val_ptr,
    int *isnull, char *err, size_t errlen)
{
	PGresult *res = q_exec(conn, sql, q);
	char msg[512];
	int r = TCA_ERR_JOURNAL_UNAVAILABLE;

	*val_ptr = 0;
	if (isnull != NULL)
		*isnull = 1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		res_msg(conn, res, msg, sizeof(msg));
		tca_setf(err, errlen, "%s", msg);
		goto out;
	}
	if (PQntuples(res) > 0 && !g_isnull(res, 0, 0)) {
		*val_ptr = g_i64(res, 0, 0);
		if (isnull != NULL)
			*isnull = 0;
	}
	r = TCA_OK;
 out:
	PQclear(res);
	return r;
}

static int
guard_alert_exec(struct pg_store *s, int fresh, const char *alert, const char *sql,
    const char *what, char *err, size_t errlen)
{
	char msg[512];

	if (!fresh && alert != NULL) {
		log_error("store: ALERT: %s: %s: restored. Someone with write access "
		    "to the database changed it, or it is damaged; check the journal "
		    "(ca-admin journal verify) and the database's roles", s->desc, alert);
		s->guards_restored++;
	}
	if (exec_simple(s->wconn, sql, what, msg, sizeof(msg)) != TCA_OK) {
		tca_setf(err, errlen, "%s: cannot restore %s: %s; the rows it guards "
		    "were changed: restore the store from a backup", s->desc, what, msg);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	return TCA_OK;
}

static const struct guard_trigger *
known_trigger(const char *table, const char *name)
{
	size_t i;

	for (i = 0; i < N_GUARD_TRIGGERS; i++)
		if (strcmp(guard_triggers[i].table, table) == 0 &&
		    strcmp(guard_triggers[i].name, name) == 0)
			return &guard_triggers[i];
	return NULL;
}

/*
 * The guards (see the header comment), inside the caller's transaction
 * under the advisory lock.  fresh: the schema was just created, nothing to
 * report.
 */
static int
check_guards(struct pg_store *s, int fresh, char *err, size_t errlen)
{
	static const char fn_sql[] = "SELECT p.prosrc FROM pg_proc p"
	    " JOIN pg_namespace n ON n.oid = p.pronamespace"
	    " WHERE n.nspname = current_schema() AND p.proname = $1";
	static const char trig_sql[] = "SELECT t.tgname::text, t.tgenabled::text,"
	    " t.tgtype::integer, p.proname::text FROM pg_trigger t"
	    " JOIN pg_proc p ON p.oid = t.tgfoid"
	    " WHERE NOT t.tgisinternal AND t.tgrelid = (SELECT c.oid FROM pg_class c"
	    "  JOIN pg_namespace n ON n.oid = c.relnamespace"
	    "  WHERE n.nspname = current_schema() AND c.relname = $1)";
	static const char idx_sql[] = "SELECT i.indisunique, i.indisvalid FROM pg_index i"
	    " JOIN pg_class c ON c.oid = i.indexrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname = current_schema() AND c.relname = $1";
	char sql[4096], alert[256], msg[512], *qname = NULL;
	int seen[N_GUARD_TRIGGERS];
	const struct guard_trigger *gt;
	const char *name, *enabled, *fn;
	PGresult *res = NULL;
	struct qp q;
	size_t i, k;
	int row, tgtype, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < N_GUARD_FNS; i++) {
		memset(&q, 0, sizeof(q));
		qp_text(&q, guard_fns[i].name);
		res = q_exec(s->wconn, fn_sql, &q);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto query_failed;
		if (PQntuples(res) == 1 && strcmp(g_text(res, 0, 0), guard_fns[i].body) == 0) {
			PQclear(res);
			res = NULL;
			continue;
		}
		snprintf(alert, sizeof(alert), "trigger function %s %s", guard_fns[i].name,
		    PQntuples(res) == 0 ? "was missing" : "had been altered");
		PQclear(res);
		res = NULL;
		snprintf(sql, sizeof(sql), "CREATE OR REPLACE FUNCTION %s() RETURNS trigger"
		    " LANGUAGE plpgsql SET search_path FROM CURRENT AS $tca$%s$tca$",
		    guard_fns[i].name, guard_fns[i].body);
		if (guard_alert_exec(s, fresh, alert, sql, guard_fns[i].name, err,
		    errlen) != TCA_OK)
			goto out;
	}
	for (k = 0; k < N_GUARDED_TABLES; k++) {
		memset(&q, 0, sizeof(q));
		qp_text(&q, guarded_tables[k]);
		res = q_exec(s->wconn, trig_sql, &q);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto query_failed;
		for (row = 0; row < PQntuples(res); row++) {
			name = g_text(res, row, 0);
			enabled = g_text(res, row, 1);
			tgtype = (int)g_i64(res, row, 2);
			fn = g_text(res, row, 3);
			PQfreemem(qname);
			if ((qname = PQescapeIdentifier(s->wconn, name, strlen(name))) == NULL)
				goto query_failed;
			gt = known_trigger(guarded_tables[k], name);
			if (gt == NULL) {
				log_error("store: ALERT: %s: table %s has trigger %s, which "
				    "the tca schema does not have: dropped. Someone with "
				    "write access to the database changed it; check the "
				    "journal (ca-admin journal verify) and the database's "
				    "roles", s->desc, guarded_tables[k], qname);
				s->guards_restored++;
				snprintf(sql, sizeof(sql), "DROP TRIGGER %s ON %s", qname,
				    guarded_tables[k]);
				if (guard_alert_exec(s, 1, NULL, sql, "dropping a trigger",
				    err, errlen) != TCA_OK)
					goto out;
				continue;
			}
			seen[gt - guard_triggers] = 1;
			if (tgtype != gt->tgtype || strcmp(fn, gt->fn) != 0) {
				snprintf(alert, sizeof(alert), "trigger %s on %s had been "
				    "altered", gt->name, gt->table);
				snprintf(sql, sizeof(sql), "DROP TRIGGER %s ON %s; %s",
				    gt->name, gt->table, gt->sql);
				if (guard_alert_exec(s, fresh, alert, sql, gt->name, err,
				    errlen) != TCA_OK)
					goto out;
			} else if (strcmp(enabled, "O") != 0 && strcmp(enabled, "A") != 0) {
				snprintf(alert, sizeof(alert), "trigger %s on %s had been "
				    "disabled", gt->name, gt->table);
				snprintf(sql, sizeof(sql), "ALTER TABLE %s ENABLE TRIGGER %s",
				    gt->table, gt->name);
				if (guard_alert_exec(s, fresh, alert, sql, gt->name, err,
				    errlen) != TCA_OK)
					goto out;
			}
		}
		PQclear(res);
		res = NULL;
	}
	for (i = 0; i < N_GUARD_TRIGGERS; i++) {
		if (seen[i])
			continue;
		snprintf(alert, sizeof(alert), "trigger %s on %s was missing",
		    guard_triggers[i].name, guard_triggers[i].table);
		if (guard_alert_exec(s, fresh, alert, guard_triggers[i].sql,
		    guard_triggers[i].name, err, errlen) != TCA_OK)
			goto out;
	}
	for (i = 0; i < N_GUARD_INDEXES; i++) {
		memset(&q, 0, sizeof(q));
		qp_text(&q, guard_indexes[i].name);
		res = q_exec(s->wconn, idx_sql, &q);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto query_failed;
		if (PQntuples(res) == 1 && g_i64(res, 0, 1) != 0 &&
		    (g_i64(res, 0, 0) != 0) == guard_indexes[i].unique) {
			PQclear(res);
			res = NULL;
			continue;
		}
		snprintf(alert, sizeof(alert), "index %s %s", guard_indexes[i].name,
		    PQntuples(res) == 0 ? "was missing" : "had been altered");
		snprintf(sql, sizeof(sql), "%s%s%s%s", PQntuples(res) == 0 ? "" :
		    "DROP INDEX ", PQntuples(res) == 0 ? "" : guard_indexes[i].name,
		    PQntuples(res) == 0 ? "" : "; ", guard_indexes[i].sql);
		PQclear(res);
		res = NULL;
		if (guard_alert_exec(s, fresh, alert, sql, guard_indexes[i].name, err,
		    errlen) != TCA_OK)
			goto out;
	}
	r = TCA_OK;
	goto out;
 query_failed:
	res_msg(s->wconn, res, msg, sizeof(msg));
	tca_setf(err, errlen, "%s: checking the schema's guards: %s", s->desc, msg);
 out:
	PQfreemem(qname);
	PQclear(res);
	return r;
}

/*
 * Checks the schema version of the current schema; with may_create (the
 * writer), creates or migrates it and checks its guards, all in one
 * transaction under the advisory lock.
 */
static int
check_schema(struct pg_store *s, PGconn *conn, int may_create, char *err, size_t errlen)
{
	static const char ours[] = "SELECT count(*) FROM pg_class c"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname = current_schema() AND c.relname = ANY ($1::text[])";
	char msg[512];
	PGresult *res = NULL;
	struct qp q;
	int64_t have_meta = 0, n_ours = 0, app_id = 0, version = 0, from;
	int in_txn = 0, isnull = 1, fresh = 0, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (PQserverVersion(conn) < 110000) {
		tca_setf(err, errlen, "%s: PostgreSQL %d is too old: 11 or newer needed",
		    s->desc, PQserverVersion(conn) / 10000);
		return r;
	}
	if (may_create) {
		if (exec_simple(conn, "BEGIN", "BEGIN", msg, sizeof(msg)) != TCA_OK)
			goto failed;
		in_txn = 1;
		memset(&q, 0, sizeof(q));
		qp_int(&q, ADVISORY_KEY);
		if (query_i64(conn, "SELECT 1 FROM pg_advisory_xact_lock($1::bigint)", &q,
		    &have_meta, NULL, msg, sizeof(msg)) != TCA_OK)
			goto failed;
	}
	res = PQexecParams(conn, "SELECT current_schema()", 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		res_msg(conn, res, msg, sizeof(msg));
		goto failed;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		tca_setf(err, errlen, "%s: no schema of the search_path exists: create "
		    "one (CREATE SCHEMA) or set search_path in the conninfo "
		    "(options=-csearch_path=NAME)", s->desc);
		goto out;
	}
	PQclear(res);
	res = NULL;
	memset(&q, 0, sizeof(q));
	qp_text(&q, "{tca_meta}");
	if (query_i64(conn, ours, &q, &have_meta, NULL, msg, sizeof(msg)) != TCA_OK)
		goto failed;
	memset(&q, 0, sizeof(q));
	qp_text(&q, "{cas,certificates,revocations,crls,devices,journal,journal_head}");
	if (query_i64(conn, ours, &q, &n_ours, NULL, msg, sizeof(msg)) != TCA_OK)
		goto failed;
	if (have_meta == 0) {
		if (n_ours != 0) {
			tca_setf(err, errlen, "%s: the current schema holds tables named "
			    "like the store's but no tca_meta: not a tca state store; use "
			    "another schema (options=-csearch_path=NAME)", s->desc);
			goto out;
		}
		if (!may_create) {
			tca_setf(err, errlen, "%s holds no tca state store", s->desc);
			goto out;
		}
	} else {
		if (query_i64(conn, "SELECT application_id FROM tca_meta", NULL, &app_id,
		    &isnull, msg, sizeof(msg)) != TCA_OK ||
		    query_i64(conn, "SELECT schema_version FROM tca_meta", NULL, &version,
		    &isnull, msg, sizeof(msg)) != TCA_OK)
			goto failed;
		if (isnull || app_id != APPLICATION_ID) {
			tca_setf(err, errlen, "%s is not a tca state store (tca_meta "
			    "application_id 0x%llx)", s->desc, (unsigned long long)app_id);
			goto out;
		}
		if (version > SCHEMA_VERSION) {
			tca_setf(err, errlen, "%s has schema version %lld, newer than the "
			    "%d this tca knows: upgrade tca, do not downgrade the store",
			    s->desc, (long long)version, SCHEMA_VERSION);
			goto out;
		}
		if (version < 1) {
			tca_setf(err, errlen, "%s is not a tca state store (schema "
			    "version %lld)", s->desc, (long long)version);
			goto out;
		}
	}
	if (may_create && version < SCHEMA_VERSION) {
		from = version;
		fresh = version == 0;
		for (; version < SCHEMA_VERSION; version++)
			if (exec_simple(conn, migrations[version], "creating the schema",
			    msg, sizeof(msg)) != TCA_OK)
				goto failed;
		if (fresh)
			log_info("store: created schema version %d in %s", SCHEMA_VERSION,
			    s->desc);
		else
			log_info("store: migrated %s from schema version %lld to %d",
			    s->desc, (long long)from, SCHEMA_VERSION);
	}
	if (may_create) {
		if (check_guards(s, fresh, err, errlen) != TCA_OK)
			goto out;
		if (exec_simple(conn, "COMMIT", "COMMIT", msg, sizeof(msg)) != TCA_OK)
			goto failed;
		in_txn = 0;
	}
	r = TCA_OK;
	goto out;
 failed:
	tca_setf(err, errlen, "%s: %s", s->desc, msg);
 out:
	PQclear(res);
	if (in_txn)
		PQclear(PQexec(conn, "ROLLBACK"));
	return r;
}

static void
pg_close(tca_store *st)
{
	struct pg_store *s = (struct pg_store *)st;

	if (s == NULL)
		return;
	PQfinish(s->wconn);
	PQfinish(s->rconn);
	PQfinish(s->lconn);	/* the server releases our leadership at once */
	PQfinish(s->nconn);
	if (s->llock_init)
		pthread_mutex_destroy(&s->llock);
	if (s->nlock_init)
		pthread_mutex_destroy(&s->nlock);
	if (s->wlock_init)
		pthread_mutex_destroy(&s->wlock);
	if (s->rlock_init)
		pthread_mutex_destroy(&s->rlock);
	if (s->hlock_init)
		pthread_mutex_destroy(&s->hlock);
	if (s->conninfo != NULL) {
		explicit_bzero(s->conninfo, strlen(s->conninfo));
		free(s->conninfo);
	}
	free(s);
}

int
tca_store_open_postgresql(const char *conninfo, int flags, tca_store **st_ptr,
    char *err, size_t errlen)
{
	struct pg_store *s = NULL;
	pthread_mutexattr_t attr;
	char msg[512];
	int r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (st_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*st_ptr = NULL;
	if (conninfo == NULL || *conninfo == '\0') {
		tca_setf(err, errlen, "no PostgreSQL conninfo");
		return TCA_ERR_INVALID_ARG;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	s->base.ops = &pg_ops;
	s->readonly = (flags & TCA_STORE_READONLY) != 0;
	s->attempts = DEFAULT_ATTEMPTS;
	s->resolve_wait_ms = RESOLVE_WAIT_MS;
	s->backoff_ms = DEFAULT_BACKOFF_MS;
	if (describe(conninfo, s->desc, sizeof(s->desc)) != 0) {
		tca_setf(err, errlen, "the PostgreSQL store's conninfo does not parse "
		    "(a postgresql:// URI or libpq key=value pairs; not shown here, "
		    "since it may hold a password)");
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if ((s->conninfo = strdup(conninfo)) == NULL) {
		tca_setf(err, errlen, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
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
	if (pthread_mutex_init(&s->llock, NULL) != 0) {
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	s->llock_init = 1;
	if (pthread_mutex_init(&s->nlock, NULL) != 0) {
		tca_setf(err, errlen, "mutex init failed");
		goto out;
	}
	s->nlock_init = 1;
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
	if (!s->readonly) {
		if ((s->wconn = connect_db(s, err, errlen)) == NULL ||
		    check_schema(s, s->wconn, 1, err, errlen) != TCA_OK)
			goto out;
	}
	if ((s->rconn = connect_db(s, err, errlen)) == NULL)
		goto out;
	if (s->readonly && check_schema(s, s->rconn, 0, err, errlen) != TCA_OK)
		goto out;
	/* the reader never writes, whatever a bug might send */
	if (exec_simple(s->rconn, "SET default_transaction_read_only = on",
	    "read-only reader", msg, sizeof(msg)) != TCA_OK) {
		tca_setf(err, errlen, "%s: %s", s->desc, msg);
		goto out;
	}
	s->healthy = 1;
	log_debug("store: opened %s%s", s->desc, s->readonly ? " read-only" : "");
	*st_ptr = &s->base;
	s = NULL;
	r = TCA_OK;
 out:
	pg_close(s ? &s->base : NULL);
	return r;
}

/* ------------------------------------------------------------ knobs */

int
tca_store_postgresql_set_retry(tca_store *st, int attempts, int backoff_ms)
{
	struct pg_store *s = (struct pg_store *)st;

	if (s == NULL || st->ops != &pg_ops || attempts < 1 || backoff_ms < 0)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->hlock);
	s->attempts = attempts;
	s->backoff_ms = backoff_ms;
	pthread_mutex_unlock(&s->hlock);
	return TCA_OK;
}

int
tca_store_postgresql_writer_pid(tca_store *st)
{
	struct pg_store *s = (struct pg_store *)st;
	int pid = 0;

	if (s == NULL || st->ops != &pg_ops)
		return 0;
	pthread_mutex_lock(&s->wlock);
	if (s->wconn != NULL && PQstatus(s->wconn) == CONNECTION_OK)
		pid = PQbackendPID(s->wconn);
	pthread_mutex_unlock(&s->wlock);
	return pid;
}

int
tca_store_postgresql_leader_pid(tca_store *st)
{
	struct pg_store *s = (struct pg_store *)st;
	int pid = 0;

	if (s == NULL || st->ops != &pg_ops)
		return 0;
	pthread_mutex_lock(&s->llock);
	if (s->lconn != NULL && PQstatus(s->lconn) == CONNECTION_OK)
		pid = PQbackendPID(s->lconn);
	pthread_mutex_unlock(&s->llock);
	return pid;
}

int
tca_store_postgresql_set_resolve_wait(tca_store *st, int ms)
{
	struct pg_store *s = (struct pg_store *)st;

	if (s == NULL || st->ops != &pg_ops || ms < 0)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->hlock);
	s->resolve_wait_ms = ms;
	pthread_mutex_unlock(&s->hlock);
	return TCA_OK;
}

int
tca_store_postgresql_set_fault(tca_store *st, int fault)
{
	struct pg_store *s = (struct pg_store *)st;

	if (s == NULL || st->ops != &pg_ops)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->hlock);
	s->fault = fault;
	pthread_mutex_unlock(&s->hlock);
	return TCA_OK;
}

/* Cuts the writer's connection under libpq, as a network failure would. */
static void
cut_connection(PGconn *conn)
{
	int fd = PQsocket(conn);

	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
}

/* PQreset of the writer: a new session, without our prepared statements. */
static void
w_reset(struct pg_store *s)
{
	s->nprepared = 0;
	PQreset(s->wconn);
}

/* Re-establishes the writer connection if it is down.  TCA_OK when up. */
static int
writer_up(struct pg_store *s, char *why, size_t whylen)
{
	if (s->wconn != NULL && PQstatus(s->wconn) == CONNECTION_OK)
		return TCA_OK;
	if (s->wconn != NULL) {
		w_reset(s);
		if (PQstatus(s->wconn) == CONNECTION_OK) {
			log_notice("store: %s: writer connection re-established", s->desc);
			return TCA_OK;
		}
		res_msg(s->wconn, NULL, why, whylen);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	s->nprepared = 0;
	if ((s->wconn = connect_db(s, why, whylen)) == NULL)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	return TCA_OK;
}

static int
pg_health(tca_store *st, char *why, size_t whylen)
{
	struct pg_store *s = (struct pg_store *)st;
	char msg[512];
	PGresult *res;
	int healthy, r, try;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (s == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->readonly)
		return TCA_OK;
	pthread_mutex_lock(&s->hlock);
	healthy = s->healthy;
	pthread_mutex_unlock(&s->hlock);
	/* a commit in progress owns the connection: its outcome will tell */
	if (pthread_mutex_trylock(&s->wlock) != 0) {
		if (healthy)
			return TCA_OK;
		pthread_mutex_lock(&s->hlock);
		tca_setf(why, whylen, "%s", s->why);
		pthread_mutex_unlock(&s->hlock);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	/* one round trip, whatever the last commit said: libpq learns that an
	 * idle connection died only when it is used, and an engine that
	 * commits nothing must not report a database that went away as ok */
	for (try = 0; try < 2; try++) {
		if ((r = writer_up(s, msg, sizeof(msg))) != TCA_OK)
			break;
		res = PQexec(s->wconn, "SELECT 1");
		if (res_ok(res)) {
			PQclear(res);
			break;
		}
		res_msg(s->wconn, res, msg, sizeof(msg));
		PQclear(res);
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		/* a connection the server dropped while idle (a restart):
		 * made again once before calling the database unreachable */
		if (PQstatus(s->wconn) == CONNECTION_OK)
			break;
	}
	pthread_mutex_unlock(&s->wlock);
	if (r == TCA_OK) {
		set_health(s, 1, NULL);
		return TCA_OK;
	}
	pthread_mutex_lock(&s->hlock);
	s->healthy = 0;
	tca_setf(s->why, sizeof(s->why), "%s: the database is unreachable: %s",
	    s->desc, msg);
	tca_setf(why, whylen, "%s", s->why);
	pthread_mutex_unlock(&s->hlock);
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/* ------------------------------------------------------------- commit */

/* Writer statements. */
#define SQL_HEAD_LOCK "SELECT seq, hash FROM journal_head FOR UPDATE"
#define SQL_LAST_JOURNAL "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
#define SQL_SET_HEAD "UPDATE journal_head SET seq = $1, hash = $2"
#define SQL_FIND_ACTIVE "SELECT c.ca_id, cert.subject, cert.fingerprint, c.policy FROM cas c" \
    " LEFT JOIN certificates cert ON cert.cert_id = c.current_cert_id" \
    " WHERE c.tenant = $1 AND c.status = 'active'"
/* ids are the highest + 1, as SQLite's rowids: no gaps from rolled-back
 * changes; safe because every writer holds the journal head lock */
#define SQL_INSERT_CA "INSERT INTO cas (ca_id, tenant, status, key_type, key_id," \
    " created_at, deleted_at) VALUES ((SELECT COALESCE(MAX(ca_id), 0) + 1 FROM cas)," \
    " $1, 'active', $2, $3, $4, 0) RETURNING ca_id"
#define SQL_INSERT_CERT "INSERT INTO certificates (cert_id, ca_id, tenant, kind," \
    " issuer_hash, serial, subject, fingerprint, not_before, not_after," \
    " issued_at, der, device_id) VALUES ((SELECT COALESCE(MAX(cert_id), 0) + 1" \
    " FROM certificates), $1, $2, $3, $4, $5, $6, $7, $8, $9," \
    " $10, $11, $12) RETURNING cert_id"
#define SQL_LINK_CERT "UPDATE cas SET current_cert_id = $2 WHERE ca_id = $1"
#define SQL_DELETE_CA "UPDATE cas SET status = 'deleted', deleted_at = $2" \
    " WHERE ca_id = $1 AND status = 'active'"
#define SQL_INSERT_JOURNAL "INSERT INTO journal (seq, time_ms, op, tenant," \
    " serial_hex, subject, fingerprint_hex, uid, pid, details, prev_hash, hash)" \
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
/* UPDATE evaluates every right-hand side on the old row */
#define SQL_REISSUE_CA "UPDATE cas SET previous_cert_id = current_cert_id," \
    " current_cert_id = $2, renewal_failed = 0, renewal_reason = ''," \
    " renewal_attempts = 0, renewal_failed_since = 0, renewal_next_retry = 0," \
    " renewal_alerted = 0, expiry_alerted = 0 WHERE ca_id = $1 AND status = 'active'"
#define SQL_SET_RENEWAL "UPDATE cas SET renewal_failed = $2, renewal_reason = $3," \
    " renewal_attempts = $4, renewal_failed_since = $5, renewal_next_retry = $6," \
    " renewal_alerted = $7, expiry_alerted = $8 WHERE ca_id = $1 AND status = 'active'"
#define SQL_SET_CRL_STATE "UPDATE cas SET crl_failed = $2, crl_reason = $3," \
    " crl_attempts = $4, crl_failed_since = $5, crl_next_retry = $6," \
    " crl_alerted = $7 WHERE ca_id = $1 AND status = 'active'"
#define SQL_FIND_DEVICE_CERT "SELECT d.cert_id, d.subject, d.fingerprint," \
    " d.not_after, r.revoked_at, r.reason" \
    " FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id" \
    " JOIN certificates d ON d.issuer_hash = cur.issuer_hash" \
    "  AND d.serial = $2 AND d.kind = 'device' AND d.ca_id = c.ca_id" \
    " LEFT JOIN revocations r ON r.cert_id = d.cert_id WHERE c.ca_id = $1"
#define SQL_INSERT_REVOCATION "INSERT INTO revocations (cert_id, ca_id," \
    " revoked_at, reason, not_after) VALUES ($1, $2, $3, $4, $5)"
#define SQL_CRL_MAX "SELECT COALESCE(MAX(crl_number), 0) FROM crls WHERE tenant = $1"
#define SQL_UPSERT_CRL "INSERT INTO crls (ca_id, tenant, crl_number," \
    " this_update, next_update, entries, der) VALUES ($1, $2, $3, $4, $5, $6, $7)" \
    " ON CONFLICT (ca_id) DO UPDATE SET crl_number = EXCLUDED.crl_number," \
    " this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update," \
    " entries = EXCLUDED.entries, der = EXCLUDED.der"
#define SQL_SET_POLICY "UPDATE cas SET policy = $2 WHERE ca_id = $1 AND status = 'active'"
#define SQL_DEVICE_UPSERT "INSERT INTO devices (tenant, device_id, secret," \
    " registered_at, expires_at) VALUES ($1, $2, $3, $4, $5)" \
    " ON CONFLICT (tenant, device_id) DO UPDATE SET secret = EXCLUDED.secret," \
    " registered_at = EXCLUDED.registered_at, expires_at = EXCLUDED.expires_at," \
    " failures = 0, locked = 0, consumed_at = 0, consumed_cert_id = NULL"
#define SQL_DEVICE_DELETE "DELETE FROM devices WHERE tenant = $1 AND device_id = $2"
#define SQL_DEVICE_ATTEMPT "UPDATE devices SET failures = failures + 1" \
    " WHERE tenant = $1 AND device_id = $2 AND consumed_at = 0 AND locked = 0" \
    " AND failures < $3 AND (expires_at = 0 OR expires_at >= $4) RETURNING failures"
#define SQL_DEVICE_FAIL "UPDATE devices SET locked = 1 WHERE tenant = $1" \
    " AND device_id = $2 AND consumed_at = 0 AND locked = 0 AND failures >= $3" \
    " RETURNING failures"
#define SQL_DEVICE_RELEASE "UPDATE devices SET failures = GREATEST(failures - 1, 0)" \
    " WHERE tenant = $1 AND device_id = $2 AND consumed_at = 0"
#define SQL_DEVICE_CONSUME "UPDATE devices SET consumed_at = $4, consumed_cert_id = $5," \
    " failures = GREATEST(failures - 1, 0)" \
    " WHERE tenant = $1 AND device_id = $2 AND secret = $3 AND consumed_at = 0" \
    " AND locked = 0 AND (expires_at = 0 OR expires_at >= $4)"
#define SQL_RESERVATION_GET "SELECT holder, reserved_at_ms, lease_until_ms" \
    " FROM ca_reservations WHERE tenant = $1"
#define SQL_RESERVATION_PUT "INSERT INTO ca_reservations (tenant, holder," \
    " reserved_at_ms, lease_until_ms) VALUES ($1, $2, $3, $4)" \
    " ON CONFLICT (tenant) DO UPDATE SET holder = excluded.holder," \
    " reserved_at_ms = excluded.reserved_at_ms, lease_until_ms = excluded.lease_until_ms"
#define SQL_RESERVATION_DROP "DELETE FROM ca_reservations WHERE tenant = $1"
#define SQL_RESERVATION_DROP_MINE "DELETE FROM ca_reservations WHERE tenant = $1" \
    " AND holder = $2"

/* How one try of a batch ended. */
enum batch_outcome {
	B_COMMITTED,	/* COMMIT succeeded */
	B_RETRY,	/* nothing committed; transient: try again */
	B_FAIL,		/* nothing committed; not worth trying again */
	B_UNKNOWN,	/* COMMIT sent and the connection lost: maybe committed */
	B_SAVEPOINTS,	/* nothing committed: a change failed on the fast path;
			 * run the batch again with a savepoint per change */
};

/* State of one try of a batch. */
struct txn {
	struct pg_store *s;
	int64_t last_seq;
	unsigned char last_hash[32];
	int journaled;		/* records this try appended */
	int lost;		/* the connection must be re-established */
	int is_transient;
	int data_error;		/* SQLSTATE class 22: this change's data, not the batch */
	int unresolved;		/* lost during COMMIT, outcome still unknown */
	char state[6];		/* SQLSTATE of the failure ("" if none) */
	char msg[512];
	/* the active CA looked up last in this transaction (find_active_x):
	 * a batch of certificates of one tenant reads it once; any change
	 * other than a certificate forgets it */
	int fa_valid;
	char fa_tenant[TCA_TENANT_MAX + 1];
	int64_t fa_ca_id;
	char fa_policy[4096 + 1];
};

/* Records the failure that aborts the whole batch. */
static int
txn_fail(struct txn *t, const PGresult *res, const char *what)
{
	char msg[400];

	res_msg(t->s->wconn, res, msg, sizeof(msg));
	snprintf(t->state, sizeof(t->state), "%s", res_state(res));
	snprintf(t->msg, sizeof(t->msg), "%s: %s", what, msg);
	t->lost = conn_lost(t->s->wconn, t->state);
	t->is_transient = transient(t->s->wconn, t->state);
	/* e.g. 22021: a string that is not valid in the database's encoding */
	t->data_error = !t->lost && strncmp(t->state, "22", 2) == 0;
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/* A failure found by us, not reported by the server: not transient. */
static int
txn_refuse(struct txn *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
	t->state[0] = '\0';
	t->is_transient = 0;
	t->data_error = 0;
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/*
 * Runs a writer statement of the commit path as a prepared statement
 * (parsed and planned once per connection, not per change): a batch is
 * several round trips per change, and the parse was a good part of each.
 * A failure to prepare is returned as the statement's failure.
 */
static PGresult *
w_exec(struct pg_store *s, const char *sql, const struct qp *q)
{
	char name[16];
	PGresult *res;
	int i;

	for (i = 0; i < s->nprepared; i++)
		if (s->prepared[i] == sql || strcmp(s->prepared[i], sql) == 0)
			break;
	if (i == s->nprepared) {
		if (i == PREPARED_MAX)
			return q_exec(s->wconn, sql, q);
		snprintf(name, sizeof(name), "tca_w%d", i);
		res = PQprepare(s->wconn, name, sql, 0, NULL);
		/* preparing parses, which locks the tables named: it may fail
		 * as the statement would (lock timeout, deadlock, connection
		 * lost), and then the transaction is aborted - that error is
		 * the statement's */
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		s->prepared[s->nprepared++] = sql;
	}
	snprintf(name, sizeof(name), "tca_w%d", i);
	return PQexecPrepared(s->wconn, name, q != NULL ? q->n : 0,
	    q != NULL ? q->v : NULL, q != NULL ? q->l : NULL,
	    q != NULL ? q->f : NULL, 1);
}

/* Runs a statement whose failure fails the batch.  *out (if given) owns
 * the result on TCA_OK. */
static int
w_run(struct txn *t, const char *sql, const struct qp *q, const char *what,
    PGresult **out)
{
	PGresult *res = w_exec(t->s, sql, q);

	if (out != NULL)
		*out = NULL;
	if (res_ok(res)) {
		if (out != NULL)
			*out = res;
		else
			PQclear(res);
		return TCA_OK;
	}
	txn_fail(t, res, what);
	PQclear(res);
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/*
 * Runs an insert that may break a uniqueness rule: a unique violation or
 * one of our triggers refusing it fails this change alone
 * (ALREADY_EXISTS), another constraint violation too (INTERNAL, logged),
 * anything else the batch.
 */
static int
w_insert(struct txn *t, const char *sql, const struct qp *q, const char *what,
    PGresult **out)
{
	PGresult *res = w_exec(t->s, sql, q);
	const char *state;
	char msg[400];

	if (out != NULL)
		*out = NULL;
	if (res_ok(res)) {
		if (out != NULL)
			*out = res;
		else
			PQclear(res);
		return TCA_OK;
	}
	state = res_state(res);
	if (PQstatus(t->s->wconn) == CONNECTION_OK &&
	    (strcmp(state, "23505") == 0 || strcmp(state, "TCA01") == 0 ||
	    strcmp(state, "TCA02") == 0)) {
		PQclear(res);
		return TCA_ERR_ALREADY_EXISTS;
	}
	if (PQstatus(t->s->wconn) == CONNECTION_OK && strncmp(state, "23", 2) == 0) {
		res_msg(t->s->wconn, res, msg, sizeof(msg));
		log_error("store: %s: %s", what, msg);
		PQclear(res);
		return TCA_ERR_INTERNAL;
	}
	txn_fail(t, res, what);
	PQclear(res);
	return TCA_ERR_JOURNAL_UNAVAILABLE;
}

/* Rows an UPDATE / DELETE touched. */
static long
cmd_rows(PGresult *res)
{
	const char *n = PQcmdTuples(res);

	return n != NULL && *n != '\0' ? strtol(n, NULL, 10) : 0;
}

/*
 * Locks the journal head (serialising every journal append across nodes)
 * and checks it against the journal's newest record.
 */
static int
lock_head(struct txn *t)
{
	PGresult *head = NULL, *last = NULL;
	const unsigned char *h, *lh;
	size_t hlen = 0, lhlen = 0;
	int64_t lseq = 0;
	int r = TCA_ERR_JOURNAL_UNAVAILABLE;

	t->last_seq = 0;
	memset(t->last_hash, 0, sizeof(t->last_hash));
	if (w_run(t, SQL_HEAD_LOCK, NULL, "locking the journal head", &head) != TCA_OK ||
	    w_run(t, SQL_LAST_JOURNAL, NULL, "reading the journal head", &last) != TCA_OK)
		goto out;
	if (PQntuples(head) != 1) {
		txn_refuse(t, "the journal_head row is missing: the store was altered; "
		    "check it with ca-admin journal verify");
		goto out;
	}
	t->last_seq = g_i64(head, 0, 0);
	h = g_bin(head, 0, 1, &hlen);
	if (PQntuples(last) == 1) {
		lseq = g_i64(last, 0, 0);
		lh = g_bin(last, 0, 1, &lhlen);
	} else {
		lh = NULL;
	}
	if (h == NULL || hlen != 32 || lseq != t->last_seq ||
	    (lseq > 0 && (lh == NULL || lhlen != 32 || memcmp(lh, h, 32) != 0))) {
		log_error("store: ALERT: %s: the journal head row (record %lld) does "
		    "not match the journal's newest record (%lld): the store was "
		    "altered; every commit is refused until the journal is verified "
		    "(ca-admin journal verify) and the head repaired", t->s->desc,
		    (long long)t->last_seq, (long long)lseq);
		txn_refuse(t, "the journal head does not match the journal");
		goto out;
	}
	memcpy(t->last_hash, h, 32);
	r = TCA_OK;
 out:
	PQclear(head);
	PQclear(last);
	return r;
}

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

/* 1 if the active CA (ca_id, policy) is what expect says the engine's
 * cache held (store.h: expect_ca_id, expect_policy; NULL: nothing
 * expected). */
static int
expect_matches(const struct tca_change *expect, int64_t ca_id, const char *policy)
{
	return expect == NULL || ((expect->expect_ca_id == 0 ||
	    expect->expect_ca_id == ca_id) && (expect->expect_policy == NULL ||
	    strcmp(policy, expect->expect_policy) == 0));
}

/* As find_active, and TCA_ERR_STALE when the active CA is not what expect
 * says the engine's cache held. */
static int
find_active_x(struct txn *t, const char *tenant, int64_t *ca_id_ptr,
    char *subject, size_t subjectlen, unsigned char fp[32],
    const struct tca_change *expect)
{
	PGresult *res = NULL;
	const unsigned char *cur_fp;
	size_t len;
	struct qp q;
	int r;

	const char *policy;

	if (subject != NULL && subjectlen > 0)
		subject[0] = '\0';
	if (fp != NULL)
		memset(fp, 0, 32);
	if (subject == NULL && fp == NULL && expect != NULL &&
	    expect->kind == TCA_CHANGE_CERT_ISSUE && t->fa_valid &&
	    strcmp(t->fa_tenant, tenant) == 0) {
		*ca_id_ptr = t->fa_ca_id;
		return expect_matches(expect, t->fa_ca_id, t->fa_policy) ? TCA_OK :
		    TCA_ERR_STALE;
	}
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	if ((r = w_run(t, SQL_FIND_ACTIVE, &q, "looking up the active CA", &res)) != TCA_OK)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return TCA_ERR_NOT_FOUND;
	}
	*ca_id_ptr = g_i64(res, 0, 0);
	if (subject != NULL)
		snprintf(subject, subjectlen, "%s", g_text(res, 0, 1));
	if (fp != NULL && (cur_fp = g_bin(res, 0, 2, &len)) != NULL && len == 32)
		memcpy(fp, cur_fp, 32);
	policy = g_text(res, 0, 3);
	r = expect_matches(expect, *ca_id_ptr, policy) ? TCA_OK : TCA_ERR_STALE;
	/* kept for the next certificate only when read for a certificate:
	 * any other change may alter the row right after reading it */
	t->fa_valid = expect != NULL && expect->kind == TCA_CHANGE_CERT_ISSUE &&
	    strlen(policy) < sizeof(t->fa_policy) && strlen(tenant) < sizeof(t->fa_tenant);
	if (t->fa_valid) {
		snprintf(t->fa_tenant, sizeof(t->fa_tenant), "%s", tenant);
		snprintf(t->fa_policy, sizeof(t->fa_policy), "%s", policy);
		t->fa_ca_id = *ca_id_ptr;
	}
	PQclear(res);
	return r;
}

static int
insert_cert(struct txn *t, const struct tca_change *chg, int64_t ca_id,
    const char *kind, int64_t *cert_id_ptr)
{
	const struct tca_cert_info *ci = chg->cert;
	PGresult *res = NULL;
	struct qp q;
	int r;

	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_text(&q, chg->tenant);
	qp_text(&q, kind);
	qp_bin(&q, ci->issuer_hash, sizeof(ci->issuer_hash));
	qp_bin(&q, ci->serial, ci->serial_len);
	qp_text(&q, ci->subject);
	qp_bin(&q, ci->sha256, sizeof(ci->sha256));
	qp_int(&q, ci->not_before);
	qp_int(&q, ci->not_after);
	qp_int(&q, chg->time_ms / 1000);
	qp_bin(&q, ci->der, ci->der_len);
	qp_text(&q, chg->device_id != NULL && strcmp(kind, "device") == 0 ?
	    chg->device_id : "");
	if ((r = w_insert(t, SQL_INSERT_CERT, &q, "recording the certificate",
	    &res)) != TCA_OK)
		return r;
	*cert_id_ptr = PQntuples(res) == 1 ? g_i64(res, 0, 0) : 0;
	PQclear(res);
	return TCA_OK;
}

/* Fails the batch when an UPDATE of the active CA row touched no row: it was
 * found a moment ago inside this same transaction. */
static int
update_one(struct txn *t, const char *sql, const struct qp *q, const char *what,
    int64_t ca_id, const char *tenant)
{
	PGresult *res = NULL;
	long rows;
	int r;

	if ((r = w_run(t, sql, q, what, &res)) != TCA_OK)
		return r;
	rows = cmd_rows(res);
	PQclear(res);
	if (rows == 1)
		return TCA_OK;
	return txn_refuse(t, "CA %lld of %s vanished", (long long)ca_id, tenant);
}

/*
 * ALREADY_EXISTS (chg->reserved filled) if another holder than chg->holder
 * (NULL: any holder) has a reservation of chg->tenant whose lease runs at
 * chg->time_ms, else TCA_OK.
 */
static int
reservation_check(struct txn *t, struct tca_change *chg)
{
	PGresult *res = NULL;
	const char *holder;
	struct qp q;
	int r;

	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	if ((r = w_run(t, SQL_RESERVATION_GET, &q, "reading the CA reservation",
	    &res)) != TCA_OK)
		return r;
	if (PQntuples(res) == 1) {
		holder = g_text(res, 0, 0);
		if ((chg->holder == NULL || strcmp(holder, chg->holder) != 0) &&
		    g_i64(res, 0, 2) > chg->time_ms) {
			snprintf(chg->reserved.by, sizeof(chg->reserved.by), "%s", holder);
			chg->reserved.at_ms = g_i64(res, 0, 1);
			chg->reserved.until_ms = g_i64(res, 0, 2);
			r = TCA_ERR_ALREADY_EXISTS;
		}
	}
	PQclear(res);
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
	struct qp q;
	int r;

	if ((r = creation_allowed(t, chg)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->holder);
	qp_int(&q, chg->time_ms);
	qp_int(&q, chg->lease_until_ms);
	return w_run(t, SQL_RESERVATION_PUT, &q, "reserving the CA creation", NULL);
}

/* mine: only chg->holder's reservation; TCA_OK or NOT_FOUND (none dropped) */
static int
reservation_drop(struct txn *t, const struct tca_change *chg, int mine)
{
	PGresult *res = NULL;
	struct qp q;
	long rows;
	int r;

	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	if (mine)
		qp_text(&q, chg->holder);
	if ((r = w_run(t, mine ? SQL_RESERVATION_DROP_MINE : SQL_RESERVATION_DROP, &q,
	    "removing the CA reservation", &res)) != TCA_OK)
		return r;
	rows = cmd_rows(res);
	PQclear(res);
	return rows > 0 ? TCA_OK : TCA_ERR_NOT_FOUND;
}

static int
apply_ca_create(struct txn *t, struct tca_change *chg)
{
	PGresult *res = NULL;
	int64_t ca_id = 0, cert_id = 0;
	struct qp q;
	int r;

	if ((r = creation_allowed(t, chg)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->key_type);
	qp_bin(&q, chg->key_id, chg->key_id_len);
	qp_int(&q, chg->time_ms / 1000);
	if ((r = w_insert(t, SQL_INSERT_CA, &q, "recording the CA", &res)) != TCA_OK)
		return r;
	ca_id = PQntuples(res) == 1 ? g_i64(res, 0, 0) : 0;
	PQclear(res);
	if ((r = insert_cert(t, chg, ca_id, "ca", &cert_id)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_int(&q, cert_id);
	if ((r = w_run(t, SQL_LINK_CERT, &q, "linking the CA certificate", NULL)) != TCA_OK)
		return r;
	if ((r = reservation_drop(t, chg, 0)) != TCA_OK && r != TCA_ERR_NOT_FOUND)
		return r;
	chg->ca_id = ca_id;
	return TCA_OK;
}

static int
apply_ca_delete(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	int64_t ca_id = 0;
	struct qp q;
	int r;

	if ((r = find_active(t, chg->tenant, &ca_id, subject, subjectlen, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_int(&q, chg->time_ms / 1000);
	return update_one(t, SQL_DELETE_CA, &q, "deleting the CA", ca_id, chg->tenant);
}

/* A re-enrollment: REVOKED if the certificate it renews, of CA ca_id, is
 * revoked (by another engine since this one's revocation set was read). */
static int
renewed_not_revoked(struct txn *t, const struct tca_change *chg, int64_t ca_id)
{
	PGresult *res = NULL;
	struct qp q;
	int r;

	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_bin(&q, chg->renews_serial, chg->renews_serial_len);
	if ((r = w_run(t, SQL_FIND_DEVICE_CERT, &q, "looking up the certificate renewed",
	    &res)) != TCA_OK)
		return r;
	if (PQntuples(res) == 1 && !g_isnull(res, 0, 4))
		r = TCA_ERR_REVOKED;
	PQclear(res);
	return r;
}

static int
apply_cert_issue(struct txn *t, const struct tca_change *chg)
{
	PGresult *res = NULL;
	int64_t ca_id = 0, cert_id = 0;
	struct qp q;
	long rows;
	int r;

	if ((r = find_active_x(t, chg->tenant, &ca_id, NULL, 0, NULL, chg)) != TCA_OK ||
	    (chg->renews_serial != NULL &&
	    (r = renewed_not_revoked(t, chg, ca_id)) != TCA_OK))
		return r;
	if ((r = insert_cert(t, chg, ca_id, "device", &cert_id)) != TCA_OK ||
	    chg->consume_secret == NULL)
		return r;
	/* the registration is used by this certificate, or nothing is recorded
	 * (the caller rolls the savepoint back) */
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->device_id);
	qp_text(&q, chg->consume_secret);
	qp_int(&q, chg->time_ms / 1000);
	qp_int(&q, cert_id);
	if ((r = w_run(t, SQL_DEVICE_CONSUME, &q, "using the device registration",
	    &res)) != TCA_OK)
		return r;
	rows = cmd_rows(res);
	PQclear(res);
	return rows == 1 ? TCA_OK : TCA_ERR_CREDENTIAL_REFUSED;
}

static int
apply_device_register(struct txn *t, const struct tca_change *chg)
{
	int64_t ca_id = 0;
	struct qp q;
	int r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->device_id);
	qp_text(&q, chg->secret);
	qp_int(&q, chg->time_ms / 1000);
	qp_int(&q, chg->expires_at);
	return w_run(t, SQL_DEVICE_UPSERT, &q, "registering the device", NULL);
}

static int
apply_device_unregister(struct txn *t, const struct tca_change *chg)
{
	PGresult *res = NULL;
	int64_t ca_id = 0;
	struct qp q;
	long rows;
	int r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->device_id);
	if ((r = w_run(t, SQL_DEVICE_DELETE, &q, "unregistering the device",
	    &res)) != TCA_OK)
		return r;
	rows = cmd_rows(res);
	PQclear(res);
	return rows == 1 ? TCA_OK : TCA_ERR_NOT_FOUND;
}

/*
 * DEVICE_ATTEMPT, DEVICE_FAILURE, DEVICE_RELEASE: one UPDATE each on the
 * device's row.  *hit: whether a row matched; for ATTEMPT and FAILURE the
 * row's failures after it.
 */
static int
device_update(struct txn *t, struct tca_change *chg, int *hit)
{
	const char *sql;
	PGresult *res = NULL;
	struct qp q;
	int64_t f;
	int r;

	*hit = 0;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	qp_text(&q, chg->device_id);
	if (chg->kind == TCA_CHANGE_DEVICE_RELEASE)
		sql = SQL_DEVICE_RELEASE;
	else if (chg->kind == TCA_CHANGE_DEVICE_ATTEMPT) {
		sql = SQL_DEVICE_ATTEMPT;
		qp_int(&q, chg->max_failures);
		qp_int(&q, chg->time_ms / 1000);
	} else {
		sql = SQL_DEVICE_FAIL;
		qp_int(&q, chg->max_failures);
	}
	if ((r = w_run(t, sql, &q, "updating the device's attempts", &res)) != TCA_OK)
		return r;
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (PQntuples(res) > 0) {
			*hit = 1;
			f = g_i64(res, 0, 0);
			chg->device_failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX :
			    (unsigned int)f;
		}
	} else
		*hit = cmd_rows(res) > 0;
	PQclear(res);
	return TCA_OK;
}

static int
apply_ca_reissue(struct txn *t, const struct tca_change *chg)
{
	unsigned char cur_fp[32];
	int64_t ca_id = 0, cert_id = 0;
	struct qp q;
	int r;

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
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_int(&q, cert_id);
	return update_one(t, SQL_REISSUE_CA, &q, "switching the CA certificate", ca_id,
	    chg->tenant);
}

/* The renewal-like state columns (renewal_* or crl_*) of the active CA. */
static int
apply_state(struct txn *t, const struct tca_change *chg, int renewal, const char *what)
{
	const struct tca_renewal_state *rs = chg->renewal;
	int64_t ca_id = 0;
	struct qp q;
	int r;

	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_int(&q, rs->failed != 0);
	qp_text(&q, rs->reason);
	qp_int(&q, rs->attempts);
	qp_int(&q, rs->failed_since);
	qp_int(&q, rs->next_retry);
	qp_int(&q, rs->alerted != 0);
	if (renewal)
		qp_int(&q, rs->expiry_alerted != 0);
	return update_one(t, renewal ? SQL_SET_RENEWAL : SQL_SET_CRL_STATE, &q, what,
	    ca_id, chg->tenant);
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
	PGresult *res = NULL;
	const unsigned char *fp;
	int64_t ca_id = 0, cert_id;
	size_t fplen;
	struct qp q;
	int r;

	memset(&chg->revoked, 0, sizeof(chg->revoked));
	if ((r = find_active(t, chg->tenant, &ca_id, NULL, 0, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_bin(&q, chg->serial, chg->serial_len);
	if ((r = w_run(t, SQL_FIND_DEVICE_CERT, &q, "looking up the certificate",
	    &res)) != TCA_OK)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return TCA_ERR_NOT_FOUND;
	}
	cert_id = g_i64(res, 0, 0);
	snprintf(subject, subjectlen, "%s", g_text(res, 0, 1));
	snprintf(chg->revoked.subject, sizeof(chg->revoked.subject), "%s", subject);
	if ((fp = g_bin(res, 0, 2, &fplen)) != NULL && fplen == 32)
		tca_hex(fp, 32, fp_hex);
	chg->revoked.not_after = g_i64(res, 0, 3);
	if (!g_isnull(res, 0, 4)) {
		chg->revoked.revoked_at = g_i64(res, 0, 4);
		chg->revoked.reason = (int)g_i64(res, 0, 5);
		PQclear(res);
		return TCA_ERR_ALREADY_EXISTS;
	}
	PQclear(res);
	memset(&q, 0, sizeof(q));
	qp_int(&q, cert_id);
	qp_int(&q, ca_id);
	qp_int(&q, chg->revoked_at);
	qp_int(&q, chg->reason);
	qp_int(&q, chg->revoked.not_after);
	if ((r = w_insert(t, SQL_INSERT_REVOCATION, &q, "recording the revocation",
	    NULL)) != TCA_OK)
		return r;
	chg->revoked.revoked_at = chg->revoked_at;
	chg->revoked.reason = chg->reason;
	return TCA_OK;
}

/* CRL_PUBLISH: replaces the active CA's CRL if crl_number is new for the
 * tenant.  subject: the CA's, for the journal. */
static int
apply_crl_publish(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	PGresult *res = NULL;
	int64_t ca_id = 0, max;
	struct qp q;
	int r;

	if ((r = find_active(t, chg->tenant, &ca_id, subject, subjectlen, NULL)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_text(&q, chg->tenant);
	if ((r = w_run(t, SQL_CRL_MAX, &q, "reading the CRL number", &res)) != TCA_OK)
		return r;
	max = PQntuples(res) == 1 ? g_i64(res, 0, 0) : 0;
	PQclear(res);
	if (max < 0 || chg->crl_number <= (uint64_t)max) {
		log_info("store: CRL %llu of %s not recorded: number %lld is in use",
		    (unsigned long long)chg->crl_number, chg->tenant, (long long)max);
		return TCA_ERR_ALREADY_EXISTS;
	}
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_text(&q, chg->tenant);
	qp_int(&q, (int64_t)chg->crl_number);
	qp_int(&q, chg->this_update);
	qp_int(&q, chg->next_update);
	qp_int(&q, (int64_t)chg->crl_entries);
	qp_bin(&q, chg->crl_der, chg->crl_len);
	return w_insert(t, SQL_UPSERT_CRL, &q, "recording the CRL", NULL);
}

static int
apply_policy_set(struct txn *t, const struct tca_change *chg, char *subject,
    size_t subjectlen)
{
	int64_t ca_id = 0;
	struct qp q;
	int r;

	if ((r = find_active_x(t, chg->tenant, &ca_id, subject, subjectlen, NULL,
	    chg)) != TCA_OK)
		return r;
	memset(&q, 0, sizeof(q));
	qp_int(&q, ca_id);
	qp_text(&q, chg->policy);
	return update_one(t, SQL_SET_POLICY, &q, "recording the tenant policy", ca_id,
	    chg->tenant);
}

static int
append_journal(struct txn *t, struct tca_change *chg, const char *subject,
    const char *fp_of_revoked)
{
	struct tca_journal_record rec;
	struct tca_change_hex hex;
	struct qp q;
	int r;

	if (tca_change_journal_record(chg, subject, fp_of_revoked, t->last_seq,
	    t->last_hash, &hex, &rec) != TCA_OK)
		return txn_refuse(t, "journal hash computation failed");
	memset(&q, 0, sizeof(q));
	qp_int(&q, rec.seq);
	qp_int(&q, rec.time_ms);
	qp_text(&q, rec.op);
	qp_text(&q, rec.tenant);
	qp_text(&q, rec.serial_hex);
	/* bytes, not text: hashed as they are, whatever their encoding */
	qp_bin(&q, rec.subject, strlen(rec.subject));
	qp_text(&q, rec.fingerprint_hex);
	qp_int(&q, rec.uid);
	qp_int(&q, rec.pid);
	qp_bin(&q, rec.details, strlen(rec.details));
	qp_bin(&q, rec.prev_hash, 32);
	qp_bin(&q, rec.hash, 32);
	/* a journal insert that fails is never this change's fault */
	if ((r = w_run(t, SQL_INSERT_JOURNAL, &q, "appending the journal record",
	    NULL)) != TCA_OK)
		return r;
	t->last_seq = rec.seq;
	memcpy(t->last_hash, rec.hash, 32);
	t->journaled++;
	chg->journal_seq = rec.seq;
	return TCA_OK;
}

/*
 * One change inside its savepoint.  TCA_OK (applied and journalled, except
 * the bookkeeping kinds), a per-change error (the caller rolls the savepoint
 * back), or TCA_ERR_JOURNAL_UNAVAILABLE (t says why: the whole batch fails).
 */
static int
apply_change(struct txn *t, struct tca_change *chg)
{
	char subject[TCA_SUBJECT_MAX] = "", fp_hex[2 * 32 + 1] = "";
	int r = TCA_ERR_INTERNAL, hit = 0;

	/* only certificates leave the active CA as it was */
	if (chg->kind != TCA_CHANGE_CERT_ISSUE)
		t->fa_valid = 0;
	switch (chg->kind) {
	case TCA_CHANGE_CA_CREATE:
		r = apply_ca_create(t, chg);
		break;
	case TCA_CHANGE_CA_RESERVE:
		return apply_ca_reserve(t, chg);
	case TCA_CHANGE_CA_RELEASE:
		return reservation_drop(t, chg, 1);
	case TCA_CHANGE_CA_DELETE:
		r = apply_ca_delete(t, chg, subject, sizeof(subject));
		break;
	case TCA_CHANGE_CERT_ISSUE:
		r = apply_cert_issue(t, chg);
		break;
	case TCA_CHANGE_CA_REISSUE:
		r = apply_ca_reissue(t, chg);
		break;
	case TCA_CHANGE_RENEWAL_STATE:
		return apply_state(t, chg, 1, "recording the renewal state");
	case TCA_CHANGE_CRL_STATE:
		return apply_state(t, chg, 0, "recording the CRL state");
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
		if ((r = device_update(t, chg, &hit)) != TCA_OK)
			return r;
		return hit ? TCA_OK : chg->kind == TCA_CHANGE_DEVICE_ATTEMPT ?
		    TCA_ERR_CREDENTIAL_REFUSED : TCA_ERR_NOT_FOUND;
	case TCA_CHANGE_DEVICE_FAILURE:
		chg->device_failures = 0;
		chg->device_locked = 0;
		if ((r = device_update(t, chg, &hit)) != TCA_OK || !hit)
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

/* Ends the writer's transaction after a failure, if the connection still
 * holds one. */
static void
w_rollback(struct pg_store *s)
{
	if (s->wconn != NULL && PQstatus(s->wconn) == CONNECTION_OK &&
	    PQtransactionStatus(s->wconn) != PQTRANS_IDLE)
		PQclear(PQexec(s->wconn, "ROLLBACK"));
}

/* One try of the batch. */
static enum batch_outcome
run_batch(struct txn *t, struct tca_change *const *changes, size_t n, int *results,
    int fault, int savepoints)
{
	struct pg_store *s = t->s;
	struct qp q;
	PGresult *res;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		results[i] = TCA_ERR_JOURNAL_UNAVAILABLE;
		if (changes[i] != NULL)
			changes[i]->journal_seq = 0;
	}
	if (w_run(t, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, "BEGIN", NULL) != TCA_OK ||
	    lock_head(t) != TCA_OK)
		goto failed;
	for (i = 0; i < n; i++) {
		if (!tca_change_valid(changes[i])) {
			log_error("store: commit: change %zu is malformed", i);
			results[i] = TCA_ERR_INVALID_ARG;
			continue;
		}
		if (savepoints && w_run(t, "SAVEPOINT chg", NULL, "SAVEPOINT", NULL) != TCA_OK)
			goto failed;
		t->data_error = 0;
		r = apply_change(t, changes[i]);
		if (!savepoints && r != TCA_OK && (r != TCA_ERR_JOURNAL_UNAVAILABLE ||
		    t->data_error)) {
			/* this change alone is refused: without a savepoint what
			 * it wrote cannot be undone alone, so the whole batch is
			 * run again, a savepoint around each change */
			w_rollback(s);
			return B_SAVEPOINTS;
		}
		if (r == TCA_ERR_JOURNAL_UNAVAILABLE && t->data_error) {
			/* the server refused this change's data (a text not valid
			 * in the database's encoding, a number out of range):
			 * refused alone, like a malformed change */
			log_error("store: %s: commit: change %zu refused: %s", s->desc, i,
			    t->msg);
			r = TCA_ERR_INVALID_ARG;
		}
		if (r == TCA_ERR_JOURNAL_UNAVAILABLE)
			goto failed;
		if (r != TCA_OK) {
			changes[i]->journal_seq = 0;
			if (w_run(t, "ROLLBACK TO SAVEPOINT chg", NULL, "ROLLBACK TO",
			    NULL) != TCA_OK)
				goto failed;
		}
		if (savepoints && w_run(t, "RELEASE SAVEPOINT chg", NULL, "RELEASE",
		    NULL) != TCA_OK)
			goto failed;
		results[i] = r;
	}
	if (t->journaled > 0) {
		memset(&q, 0, sizeof(q));
		qp_int(&q, t->last_seq);
		qp_bin(&q, t->last_hash, 32);
		if (w_run(t, SQL_SET_HEAD, &q, "moving the journal head", NULL) != TCA_OK)
			goto failed;
	}
	/* the other engines re-read what they cache once this commits
	 * (delivered at COMMIT, never for a rollback) */
	for (i = 0; i < n; i++)
		if (results[i] == TCA_OK && tca_change_is_cache_op(changes[i]->kind))
			break;
	if (i < n && w_run(t, "SELECT pg_notify('" NOTIFY_CHANNEL "', '')", NULL,
	    "notifying the other engines", NULL) != TCA_OK)
		goto failed;
	if (fault == TCA_PG_FAULT_CUT_BEFORE_COMMIT) {
		log_warn("store: test fault: cutting the connection before COMMIT");
		cut_connection(s->wconn);
	}
	res = PQexec(s->wconn, "COMMIT");
	if ((fault == TCA_PG_FAULT_LOSE_COMMIT_REPLY ||
	    fault == TCA_PG_FAULT_LOSE_COMMIT_REPLY_OFFLINE) && res_ok(res)) {
		log_warn("store: test fault: COMMIT ran; its reply is dropped");
		cut_connection(s->wconn);
		PQclear(res);
		res = NULL;
		/* what libpq reports when the reply never comes */
		snprintf(t->msg, sizeof(t->msg), "COMMIT: server closed the "
		    "connection unexpectedly (test fault)");
		t->state[0] = '\0';
		t->lost = t->is_transient = 1;
		return B_UNKNOWN;
	}
	if (res_ok(res)) {
		/* "COMMIT" on an aborted transaction answers ROLLBACK */
		if (strcmp(PQcmdStatus(res), "COMMIT") == 0) {
			PQclear(res);
			return B_COMMITTED;
		}
		txn_refuse(t, "COMMIT answered %s", PQcmdStatus(res));
		PQclear(res);
		return B_FAIL;
	}
	txn_fail(t, res, "COMMIT");
	PQclear(res);
	/* an error with an SQLSTATE is the server saying no: not committed */
	if (t->state[0] != '\0' && PQstatus(s->wconn) == CONNECTION_OK)
		return t->is_transient ? B_RETRY : B_FAIL;
	return B_UNKNOWN;
 failed:
	w_rollback(s);
	return t->is_transient ? B_RETRY : B_FAIL;
}

/* Whether the batch holds a change that must not run twice (see the
 * header comment) - only bookkeeping-only batches are asked. */
static int
has_counter_change(struct tca_change *const *changes, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (changes[i] != NULL && (changes[i]->kind == TCA_CHANGE_DEVICE_ATTEMPT ||
		    changes[i]->kind == TCA_CHANGE_DEVICE_RELEASE))
			return 1;
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remembers an unresolved batch: its last journal record and what it
 * recorded (the certificates' serials), for report_unresolved. */
static void
unresolved_note(struct pg_store *s, const struct txn *t, struct tca_change *const *changes,
    size_t n)
{
	char hex[2 * TCA_SERIAL_MAX + 1];
	size_t i, len = 0;
	int w;

	s->unresolved_seq = t->journaled > 0 ? t->last_seq : 0;
	memcpy(s->unresolved_hash, t->last_hash, 32);
	s->unresolved_what[0] = '\0';
	for (i = 0; i < n && len < sizeof(s->unresolved_what); i++) {
		if (changes[i] == NULL)
			continue;
		if (changes[i]->cert != NULL) {
			tca_hex(changes[i]->cert->serial, changes[i]->cert->serial_len, hex);
			w = snprintf(s->unresolved_what + len, sizeof(s->unresolved_what) - len,
			    "%s%s %s serial %s", len > 0 ? ", " : "", changes[i]->tenant,
			    changes[i]->op != NULL ? changes[i]->op : "?", hex);
		} else {
			w = snprintf(s->unresolved_what + len, sizeof(s->unresolved_what) - len,
			    "%s%s %s", len > 0 ? ", " : "", changes[i]->tenant,
			    changes[i]->op != NULL ? changes[i]->op : "bookkeeping");
		}
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/*
 * A batch answered as unknown (its COMMIT reply lost and the database gone
 * for RESOLVE_WAIT_MS): once the writer is back, says in the log whether it
 * committed after all (wlock held, writer up).
 */
static void
report_unresolved(struct pg_store *s)
{
	PGresult *res;
	struct qp q;

	if (s->unresolved_seq == 0)
		return;
	memset(&q, 0, sizeof(q));
	qp_int(&q, s->unresolved_seq);
	qp_bin(&q, s->unresolved_hash, 32);
	res = w_exec(s, "SELECT 1 FROM journal WHERE seq = $1 AND hash = $2", &q);
	if (!res_ok(res)) {
		PQclear(res);
		return;	/* asked again at the next commit */
	}
	if (PQntuples(res) == 1)
		log_warn("store: %s: the batch whose COMMIT outcome was unknown DID "
		    "commit (journal records up to %lld): its requests were answered "
		    "JOURNAL_UNAVAILABLE, so these changes are recorded but were not "
		    "returned: %s", s->desc, (long long)s->unresolved_seq,
		    s->unresolved_what);
	else
		log_notice("store: %s: the batch whose COMMIT outcome was unknown did "
		    "not commit (journal record %lld is not its): nothing of it is "
		    "recorded", s->desc, (long long)s->unresolved_seq);
	PQclear(res);
	s->unresolved_seq = 0;
}

/*
 * The connection was lost during COMMIT.  Reconnects, waits for the old
 * transaction to end by taking the journal head lock it held, and decides:
 * B_COMMITTED (the journal holds the batch's last record with its hash),
 * B_RETRY (it certainly did not commit, or it is idempotent bookkeeping),
 * B_FAIL (not idempotent, or still unknown after resolve_wait_ms without
 * the database: t->unresolved, answered as unknown).
 */
static enum batch_outcome
resolve_unknown(struct txn *t, struct tca_change *const *changes, size_t n,
    int attempts, int backoff_ms, int offline)
{
	struct pg_store *s = t->s;
	enum batch_outcome o = B_FAIL;
	struct txn c;
	PGresult *res = NULL;
	struct qp q;
	char why[512] = "";
	int64_t wait_ms, end;
	int i, pause = backoff_ms > 0 ? backoff_ms : 1;

	pthread_mutex_lock(&s->hlock);
	wait_ms = s->resolve_wait_ms;
	pthread_mutex_unlock(&s->hlock);
	end = mono_ms() + wait_ms;

	/* the database may be down for a while: the outcome is worth waiting
	 * for (at least `attempts` tries, for RESOLVE_WAIT_MS at most) */
	for (i = 0; ; i++) {
		if (offline)
			tca_setf(why, sizeof(why), "test fault: the database is unreachable");
		else if (s->wconn != NULL && PQstatus(s->wconn) == CONNECTION_OK)
			w_reset(s);	/* the old one is suspect */
		if (!offline && writer_up(s, why, sizeof(why)) == TCA_OK)
			break;
		if (i + 1 >= attempts && mono_ms() >= end) {
			log_error("store: %s: the connection was lost during COMMIT and "
			    "could not be re-established within %lld ms (%s): whether the "
			    "batch committed is unknown; it is answered as unknown, not "
			    "retried, and checked when the database is back", s->desc,
			    (long long)wait_ms, why);
			t->unresolved = 1;
			return B_FAIL;
		}
		sleep_ms(pause);
		pause = pause * 2 > 1000 ? 1000 : pause * 2;
	}
	memset(&c, 0, sizeof(c));
	c.s = s;
	if (w_run(&c, "BEGIN", NULL, "BEGIN", NULL) != TCA_OK ||
	    w_run(&c, "SET LOCAL lock_timeout = '30s'", NULL, "lock_timeout", NULL) != TCA_OK ||
	    w_run(&c, SQL_HEAD_LOCK, NULL, "waiting for the lost transaction", NULL) != TCA_OK)
		goto check_failed;
	if (t->journaled > 0) {
		memset(&q, 0, sizeof(q));
		qp_int(&q, t->last_seq);
		qp_bin(&q, t->last_hash, 32);
		if (w_run(&c, "SELECT 1 FROM journal WHERE seq = $1 AND hash = $2", &q,
		    "looking for the batch's last record", &res) != TCA_OK)
			goto check_failed;
		if (PQntuples(res) == 1) {
			log_notice("store: %s: the connection was lost during COMMIT; "
			    "journal record %lld carries the batch's hash: it committed",
			    s->desc, (long long)t->last_seq);
			o = B_COMMITTED;
		} else {
			log_warn("store: %s: the connection was lost during COMMIT; "
			    "journal record %lld does not carry the batch's hash: it did "
			    "not commit, trying again", s->desc, (long long)t->last_seq);
			o = B_RETRY;
		}
		PQclear(res);
	} else if (has_counter_change(changes, n)) {
		log_error("store: %s: the connection was lost during COMMIT of a "
		    "batch counting password attempts, which is not repeatable: "
		    "answered as unknown (the attempt may stay counted)",
		    s->desc);
		t->unresolved = 1;
		o = B_FAIL;
	} else {
		log_warn("store: %s: the connection was lost during COMMIT of "
		    "bookkeeping (repeatable): trying again", s->desc);
		o = B_RETRY;
	}
	w_rollback(s);
	return o;
 check_failed:
	w_rollback(s);
	log_error("store: %s: the connection was lost during COMMIT and the check "
	    "of its outcome failed (%s): answered as unknown, not retried",
	    s->desc, c.msg);
	tca_setf(t->msg, sizeof(t->msg), "outcome of COMMIT unknown: %s", c.msg);
	t->unresolved = 1;
	return B_FAIL;
}

static int
pg_commit(tca_store *st, struct tca_change *const *changes, size_t n, int *results)
{
	struct pg_store *s = (struct pg_store *)st;
	enum batch_outcome o = B_FAIL;
	struct txn t;
	char why[512];
	size_t i;
	int attempt, attempts, backoff, fault, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (s == NULL || (n > 0 && (changes == NULL || results == NULL)))
		return TCA_ERR_INVALID_ARG;
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
	pthread_mutex_lock(&s->hlock);
	attempts = s->attempts;
	backoff = s->backoff_ms;
	fault = s->fault;
	s->fault = 0;
	pthread_mutex_unlock(&s->hlock);
	pthread_mutex_lock(&s->wlock);
	memset(&t, 0, sizeof(t));
	for (attempt = 1; ; attempt++) {
		memset(&t, 0, sizeof(t));
		t.s = s;
		if (writer_up(s, why, sizeof(why)) != TCA_OK) {
			tca_setf(t.msg, sizeof(t.msg), "cannot connect: %s", why);
			o = B_RETRY;
		} else {
			report_unresolved(s);
			/* the common batch, every change applying, needs no
			 * savepoint: two round trips a change fewer under the
			 * journal head lock (docs/performance.md) */
			o = run_batch(&t, changes, n, results, attempt == 1 ? fault : 0, 0);
			if (o == B_SAVEPOINTS) {
				memset(&t, 0, sizeof(t));
				t.s = s;
				o = run_batch(&t, changes, n, results,
				    attempt == 1 ? fault : 0, 1);
			}
			if (o == B_UNKNOWN)
				o = resolve_unknown(&t, changes, n, attempts, backoff,
				    attempt == 1 &&
				    fault == TCA_PG_FAULT_LOSE_COMMIT_REPLY_OFFLINE);
		}
		if (o == B_COMMITTED || o == B_FAIL || attempt >= attempts)
			break;
		log_warn("store: %s: commit of %zu change(s) failed (%s%s%s); trying "
		    "again (%d of %d)", s->desc, n, t.msg, t.state[0] ? ", SQLSTATE " : "",
		    t.state, attempt + 1, attempts);
		if (t.lost && s->wconn != NULL)
			w_reset(s);
		sleep_ms(backoff);
		backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
	}
	if (o == B_COMMITTED) {
		r = TCA_OK;
		set_health(s, 1, NULL);
	} else if (t.unresolved) {
		/* never "nothing committed": the caller says it does not know */
		unresolved_note(s, &t, changes, n);
		log_error("store: %s: commit of %zu change(s): outcome unknown (%s); "
		    "answered JOURNAL_UNAVAILABLE as unknown: %s", s->desc, n, t.msg,
		    s->unresolved_what);
		for (i = 0; i < n; i++) {
			results[i] = TCA_ERR_JOURNAL_UNAVAILABLE;
			if (changes[i] != NULL) {
				changes[i]->journal_seq = 0;
				changes[i]->outcome_unknown = 1;
			}
		}
		tca_setf(why, sizeof(why), "%s: the last commit's outcome is unknown: %s",
		    s->desc, t.msg);
		set_health(s, 0, why);
	} else {
		log_error("store: %s: commit of %zu change(s) failed, nothing committed: "
		    "%s%s%s", s->desc, n, t.msg, t.state[0] ? "; SQLSTATE " : "", t.state);
		for (i = 0; i < n; i++) {
			results[i] = TCA_ERR_JOURNAL_UNAVAILABLE;
			if (changes[i] != NULL)
				changes[i]->journal_seq = 0;
		}
		tca_setf(why, sizeof(why), "%s: the last commit failed: %s", s->desc, t.msg);
		set_health(s, 0, why);
	}
	pthread_mutex_unlock(&s->wlock);
	return r;
}

/* -------------------------------------------------------------- reading */

/* The reader after PQreset: back to read-only. */
static int
reader_reset(struct pg_store *s)
{
	char msg[512];

	PQreset(s->rconn);
	if (PQstatus(s->rconn) != CONNECTION_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if (exec_simple(s->rconn, "SET default_transaction_read_only = on",
	    "read-only reader", msg, sizeof(msg)) != TCA_OK) {
		log_error("store: %s: %s", s->desc, msg);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	log_notice("store: %s: reader connection re-established", s->desc);
	return TCA_OK;
}

/*
 * Runs a read on the reader (rlock held).  A top-level read (not inside a
 * callback, not inside a cursor walk) whose connection was lost resets it
 * and tries once more.  NULL on failure (logged).
 */
/* A read that lost the database: status says so until a round trip
 * (pg_health, the next commit) finds it back. */
static void
read_unhealthy(struct pg_store *s, const char *msg)
{
	char why[512];

	if (s->readonly)
		return;
	tca_setf(why, sizeof(why), "%s: the database is unreachable: %s", s->desc, msg);
	set_health(s, 0, why);
}

static PGresult *
r_exec(struct pg_store *s, const char *sql, const struct qp *q, const char *what)
{
	PGresult *res;
	const char *state;
	char msg[512];
	int try, top = s->rdepth == 1 && !s->rtxn;

	for (try = 0; try < 2; try++) {
		if (top && PQstatus(s->rconn) != CONNECTION_OK &&
		    reader_reset(s) != TCA_OK)
			break;
		res = q_exec(s->rconn, sql, q);
		if (res_ok(res))
			return res;
		state = res_state(res);
		if (try == 0 && top && conn_lost(s->rconn, state)) {
			PQclear(res);
			if (reader_reset(s) != TCA_OK)
				break;
			continue;
		}
		res_msg(s->rconn, res, msg, sizeof(msg));
		log_error("store: %s: %s: %s%s%s", s->desc, what, msg,
		    *state ? "; SQLSTATE " : "", state);
		if (PQstatus(s->rconn) != CONNECTION_OK)
			read_unhealthy(s, msg);
		PQclear(res);
		return NULL;
	}
	res_msg(s->rconn, NULL, msg, sizeof(msg));
	log_error("store: %s: %s: %s", s->desc, what, msg);
	read_unhealthy(s, msg);
	return NULL;
}

static void
r_enter(struct pg_store *s)
{
	pthread_mutex_lock(&s->rlock);
	s->rdepth++;
}

static void
r_leave(struct pg_store *s)
{
	s->rdepth--;
	pthread_mutex_unlock(&s->rlock);
}

typedef int (*row_fn)(void *ctx, const PGresult *res, int row);

/*
 * Walks the rows of sql through a cursor, FETCH_ROWS at a time, inside a
 * READ ONLY transaction (the outermost walk's; a walk inside a callback of
 * another reuses it).  fn's non-zero return stops the walk and is returned.
 */
static int
cursor_walk(struct pg_store *s, const char *sql, const struct qp *q, const char *what,
    row_fn fn, void *ctx)
{
	char name[32], fetch[64], close_sql[48], *decl = NULL;
	PGresult *res = NULL;
	int own_txn = 0, row, rc, r = TCA_ERR_JOURNAL_UNAVAILABLE;
	size_t len;

	snprintf(name, sizeof(name), "tca_walk_%d", s->rdepth);
	if (!s->rtxn) {
		if ((res = r_exec(s, "BEGIN READ ONLY", NULL, what)) == NULL)
			goto out;
		PQclear(res);
		res = NULL;
		s->rtxn = own_txn = 1;
	}
	len = strlen(sql) + 64;
	if ((decl = malloc(len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	snprintf(decl, len, "DECLARE %s NO SCROLL CURSOR FOR %s", name, sql);
	if ((res = r_exec(s, decl, q, what)) == NULL)
		goto out;
	PQclear(res);
	res = NULL;
	snprintf(fetch, sizeof(fetch), "FETCH " FETCH_ROWS " FROM %s", name);
	for (;;) {
		if ((res = r_exec(s, fetch, NULL, what)) == NULL)
			goto out;
		if (PQntuples(res) == 0)
			break;
		for (row = 0; row < PQntuples(res); row++) {
			if ((rc = fn(ctx, res, row)) != 0) {
				r = rc;
				goto out;
			}
		}
		PQclear(res);
		res = NULL;
	}
	r = TCA_OK;
 out:
	PQclear(res);
	free(decl);
	if (PQstatus(s->rconn) == CONNECTION_OK &&
	    PQtransactionStatus(s->rconn) == PQTRANS_INTRANS && !own_txn) {
		snprintf(close_sql, sizeof(close_sql), "CLOSE %s", name);
		PQclear(PQexec(s->rconn, close_sql));
	}
	if (own_txn) {
		/* ends the cursor with the transaction */
		if (PQstatus(s->rconn) == CONNECTION_OK)
			PQclear(PQexec(s->rconn, r == TCA_OK ? "COMMIT" : "ROLLBACK"));
		s->rtxn = 0;
	}
	return r;
}

#define CA_SELECT \
	"SELECT c.ca_id, c.tenant, c.status, c.key_type, c.key_id," \
	" c.created_at, c.deleted_at, cur.der, prev.der, c.renewal_failed, c.renewal_reason," \
	" c.renewal_attempts, c.renewal_failed_since, c.renewal_next_retry," \
	" c.renewal_alerted, c.expiry_alerted, c.crl_failed, c.crl_reason," \
	" c.crl_attempts, c.crl_failed_since, c.crl_next_retry, c.crl_alerted," \
	" c.policy, k.crl_number, k.this_update, k.next_update" \
	" FROM cas c LEFT JOIN crls k ON k.ca_id = c.ca_id" \
	" LEFT JOIN certificates cur ON cur.cert_id = c.current_cert_id" \
	" LEFT JOIN certificates prev ON prev.cert_id = c.previous_cert_id"

static int
dup_bin(const PGresult *res, int row, int col, unsigned char **buf_ptr, size_t *len_ptr)
{
	const unsigned char *b;
	size_t len;

	*buf_ptr = NULL;
	*len_ptr = 0;
	if ((b = g_bin(res, row, col, &len)) == NULL || len == 0)
		return TCA_OK;
	if ((*buf_ptr = malloc(len)) == NULL)
		return TCA_ERR_NOMEM;
	memcpy(*buf_ptr, b, len);
	*len_ptr = len;
	return TCA_OK;
}

static void
fill_state(const PGresult *res, int row, int col, struct tca_renewal_state *rs,
    int with_expiry)
{
	int64_t attempts;

	memset(rs, 0, sizeof(*rs));
	rs->failed = g_i64(res, row, col) != 0;
	/* a longer reason than the struct holds is cut, never refused */
	snprintf(rs->reason, sizeof(rs->reason), "%s", g_text(res, row, col + 1));
	attempts = g_i64(res, row, col + 2);
	rs->attempts = attempts < 0 ? 0 : attempts > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)attempts;
	rs->failed_since = g_i64(res, row, col + 3);
	rs->next_retry = g_i64(res, row, col + 4);
	rs->alerted = g_i64(res, row, col + 5) != 0;
	if (with_expiry)
		rs->expiry_alerted = g_i64(res, row, col + 6) != 0;
}

static int
fill_ca_row(struct pg_store *s, const PGresult *res, int i, struct tca_ca_row *row)
{
	const char *tenant, *status, *key_type;
	const unsigned char *key_id;
	size_t key_id_len;
	int r = TCA_ERR_INTERNAL;

	memset(row, 0, sizeof(*row));
	tenant = g_text(res, i, 1);
	status = g_text(res, i, 2);
	key_type = g_text(res, i, 3);
	key_id = g_bin(res, i, 4, &key_id_len);
	if (strlen(tenant) > TCA_TENANT_MAX || strlen(key_type) >= sizeof(row->key_type) ||
	    key_id_len > TCA_KEY_ID_MAX) {
		log_error("store: %s: CA row %lld is malformed", s->desc,
		    (long long)g_i64(res, i, 0));
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	row->ca_id = g_i64(res, i, 0);
	snprintf(row->tenant, sizeof(row->tenant), "%s", tenant);
	if (strcmp(status, "active") == 0)
		row->status = TCA_CA_ACTIVE;
	else if (strcmp(status, "deleted") == 0)
		row->status = TCA_CA_DELETED;
	snprintf(row->key_type, sizeof(row->key_type), "%s", key_type);
	if (key_id != NULL && key_id_len > 0)
		memcpy(row->key_id, key_id, key_id_len);
	row->key_id_len = key_id_len;
	row->created_at = g_i64(res, i, 5);
	row->deleted_at = g_i64(res, i, 6);
	if ((r = dup_bin(res, i, 7, &row->cert_der, &row->cert_der_len)) != TCA_OK ||
	    (r = dup_bin(res, i, 8, &row->prev_der, &row->prev_der_len)) != TCA_OK)
		goto out;
	fill_state(res, i, 9, &row->renewal, 1);
	fill_state(res, i, 16, &row->crl, 0);
	if ((row->policy = strdup(g_text(res, i, 22))) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	row->crl_number = (uint64_t)g_i64(res, i, 23);
	row->crl_this_update = g_i64(res, i, 24);
	row->crl_next_update = g_i64(res, i, 25);
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		tca_ca_row_clear(row);
	return r;
}

static int
pg_get_ca(tca_store *st, const char *tenant, struct tca_ca_row *row)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res;
	struct qp q;
	int r;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	r_enter(s);
	if ((res = r_exec(s, CA_SELECT " WHERE c.tenant = $1 AND c.status = 'active'", &q,
	    "get_ca")) == NULL)
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	else if (PQntuples(res) == 0)
		r = TCA_ERR_NOT_FOUND;
	else
		r = fill_ca_row(s, res, 0, row);
	PQclear(res);
	r_leave(s);
	return r;
}

static int
pg_foreach_ca(tca_store *st, int include_deleted, tca_ca_cb cb, void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct tca_ca_row row;
	PGresult *res;
	struct qp q;
	int i, r = TCA_OK;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, include_deleted ? "true" : "false");
	r_enter(s);
	if ((res = r_exec(s, CA_SELECT " WHERE $1::boolean OR c.status = 'active'"
	    " ORDER BY c.tenant COLLATE \"C\", c.ca_id", &q, "foreach_ca")) == NULL)
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	for (i = 0; res != NULL && i < PQntuples(res); i++) {
		if ((r = fill_ca_row(s, res, i, &row)) != TCA_OK)
			break;
		r = cb(ctx, &row);
		tca_ca_row_clear(&row);
		if (r != 0)
			break;
	}
	PQclear(res);
	r_leave(s);
	return r;
}

/* A hash column of the wrong size is copied as far as it goes: verification
 * then reports the record rather than the walk stopping short. */
static void
col_hash(struct pg_store *s, const PGresult *res, int row, int col,
    unsigned char out[32], int64_t seq)
{
	const unsigned char *h;
	size_t len;

	memset(out, 0, 32);
	h = g_bin(res, row, col, &len);
	if (h == NULL || len != 32)
		log_warn("store: %s: journal record %lld: hash column %d is %zu "
		    "bytes, not 32", s->desc, (long long)seq, col, len);
	if (h != NULL && len > 0)
		memcpy(out, h, len < 32 ? len : 32);
}

struct journal_walk {
	struct pg_store *s;
	tca_journal_cb cb;
	void *ctx;
};

static int
journal_row(void *ctx, const PGresult *res, int i)
{
	struct journal_walk *w = ctx;
	struct tca_journal_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.seq = g_i64(res, i, 0);
	rec.time_ms = g_i64(res, i, 1);
	rec.op = g_text(res, i, 2);
	rec.tenant = g_text(res, i, 3);
	rec.serial_hex = g_text(res, i, 4);
	rec.subject = g_text(res, i, 5);
	rec.fingerprint_hex = g_text(res, i, 6);
	rec.uid = (uint32_t)g_i64(res, i, 7);
	rec.pid = (int32_t)g_i64(res, i, 8);
	rec.details = g_text(res, i, 9);
	col_hash(w->s, res, i, 10, rec.prev_hash, rec.seq);
	col_hash(w->s, res, i, 11, rec.hash, rec.seq);
	return w->cb(w->ctx, &rec);
}

static int
pg_journal_foreach(tca_store *st, int64_t from_seq, tca_journal_cb cb, void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct journal_walk w;
	struct qp q;
	int r;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	w.s = s;
	w.cb = cb;
	w.ctx = ctx;
	memset(&q, 0, sizeof(q));
	qp_int(&q, from_seq);
	r_enter(s);
	r = cursor_walk(s, "SELECT seq, time_ms, op, tenant, serial_hex, subject,"
	    " fingerprint_hex, uid, pid, details, prev_hash, hash FROM journal"
	    " WHERE seq >= $1::bigint ORDER BY seq", &q, "journal_foreach",
	    journal_row, &w);
	r_leave(s);
	return r;
}

static int
pg_changes_since(tca_store *st, int64_t after_seq, size_t limit, int64_t *upto_ptr,
    int (*cb)(void *ctx, int64_t seq, const char *op, const char *tenant,
    const char *serial_hex), void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res = NULL;
	int64_t head, last = 0;
	struct qp q;
	int i, n, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (s == NULL || cb == NULL || upto_ptr == NULL || limit == 0 || limit > INT32_MAX)
		return TCA_ERR_INVALID_ARG;
	*upto_ptr = 0;
	r_enter(s);
	/* the head first: whatever commits after it is read next time (seqs
	 * are taken under the head lock, so none below it can still come) */
	if ((res = r_exec(s, "SELECT seq FROM journal_head", NULL, "changes_since")) == NULL ||
	    PQntuples(res) != 1)
		goto out;
	head = g_i64(res, 0, 0);
	PQclear(res);
	memset(&q, 0, sizeof(q));
	qp_int(&q, after_seq);
	qp_int(&q, head);
	qp_int(&q, (int64_t)limit);
	if ((res = r_exec(s, "SELECT seq, op, tenant, serial_hex FROM journal"
	    " WHERE seq > $1::bigint AND seq <= $2::bigint AND op IN " TCA_CACHE_OPS_SQL
	    " ORDER BY seq LIMIT $3::bigint", &q, "changes_since")) == NULL)
		goto out;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		last = g_i64(res, i, 0);
		if ((r = cb(ctx, last, g_text(res, i, 1), g_text(res, i, 2),
		    g_text(res, i, 3))) != 0)
			goto out;
	}
	*upto_ptr = (size_t)n == limit ? last : head;
	r = TCA_OK;
 out:
	PQclear(res);
	r_leave(s);
	return r;
}

/* The LISTEN connection (nlock held): up, or made; NULL with why. */
static PGconn *
notify_conn(struct pg_store *s, char *why, size_t whylen)
{
	char msg[512];

	if (s->nconn != NULL && PQstatus(s->nconn) == CONNECTION_OK)
		return s->nconn;
	PQfinish(s->nconn);
	if ((s->nconn = connect_db(s, why, whylen)) == NULL)
		return NULL;
	if (exec_simple(s->nconn, "SET application_name = 'tca-listen'", "listen session",
	    msg, sizeof(msg)) != TCA_OK ||
	    exec_simple(s->nconn, "LISTEN " NOTIFY_CHANNEL, "LISTEN", msg,
	    sizeof(msg)) != TCA_OK ||
	    PQsetnonblocking(s->nconn, 1) != 0) {
		tca_setf(why, whylen, "%s: %s", s->desc, msg);
		PQfinish(s->nconn);
		s->nconn = NULL;
		return NULL;
	}
	return s->nconn;
}

/* Takes every notification that arrived; 1 if there was one. */
static int
notify_drain(PGconn *conn)
{
	PGnotify *nt;
	int got = 0;

	while ((nt = PQnotifies(conn)) != NULL) {
		got = 1;
		PQfreemem(nt);
	}
	return got;
}

static int
pg_wait_change(tca_store *st, int wake_fd, int timeout_ms, char *why, size_t whylen)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pollfd pfd[2];
	PGconn *conn;
	int nfd = 0, r = TCA_OK;

	if (s == NULL || timeout_ms < 0)
		return TCA_ERR_INVALID_ARG;
	pthread_mutex_lock(&s->nlock);
	if ((conn = notify_conn(s, why, whylen)) == NULL) {
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	} else {
		/* one that came in with an earlier read counts at once */
		if (PQconsumeInput(conn) == 1 && notify_drain(conn))
			goto out;
		pfd[nfd].fd = PQsocket(conn);
		pfd[nfd++].events = POLLIN;
	}
	if (wake_fd >= 0) {
		pfd[nfd].fd = wake_fd;
		pfd[nfd++].events = POLLIN;
	}
	if (poll(pfd, (nfds_t)nfd, timeout_ms) < 0 && errno != EINTR) {
		tca_setf(why, whylen, "poll: %s", strerror(errno));
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	if (conn != NULL && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
		if (PQconsumeInput(conn) != 1) {
			/* lost: the next call makes a new one; the caller reads
			 * changes_since anyway, so nothing missed meanwhile is lost */
			tca_setf(why, whylen, "%s: the LISTEN connection was lost: %s",
			    s->desc, PQerrorMessage(conn));
			PQfinish(s->nconn);
			s->nconn = NULL;
			r = TCA_ERR_JOURNAL_UNAVAILABLE;
			goto out;
		}
		(void)notify_drain(conn);
	}
 out:
	pthread_mutex_unlock(&s->nlock);
	return r;
}

struct cert_walk {
	int (*cb)(void *ctx, const struct tca_cert_row *row);
	int (*audit_cb)(void *ctx, const struct tca_cert_audit_row *row);
	void *ctx;
};

static void
hex_of(const PGresult *res, int row, int col, size_t want_max, char *out)
{
	const unsigned char *b;
	size_t len;

	out[0] = '\0';
	if ((b = g_bin(res, row, col, &len)) != NULL && len > 0 && len <= want_max)
		tca_hex(b, len, out);
}

static int
cert_row(void *ctx, const PGresult *res, int i)
{
	struct cert_walk *w = ctx;
	struct tca_cert_row row;
	char serial_hex[2 * TCA_SERIAL_MAX + 1], fp_hex[2 * 32 + 1];
	size_t len;

	hex_of(res, i, 2, TCA_SERIAL_MAX, serial_hex);
	fp_hex[0] = '\0';
	if (g_bin(res, i, 4, &len) != NULL && len == 32)
		hex_of(res, i, 4, 32, fp_hex);
	memset(&row, 0, sizeof(row));
	row.tenant = g_text(res, i, 0);
	row.kind = g_text(res, i, 1);
	row.serial_hex = serial_hex;
	row.subject = g_text(res, i, 3);
	row.fingerprint_hex = fp_hex;
	row.not_before = g_i64(res, i, 5);
	row.not_after = g_i64(res, i, 6);
	row.issued_at = g_i64(res, i, 7);
	return w->cb(w->ctx, &row);
}

static int
pg_cert_foreach(tca_store *st, const char *tenant,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct cert_walk w;
	struct qp q;
	int r;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&w, 0, sizeof(w));
	w.cb = cb;
	w.ctx = ctx;
	memset(&q, 0, sizeof(q));
	if (tenant != NULL)
		qp_text(&q, tenant);
	else
		qp_null(&q);
	r_enter(s);
	r = cursor_walk(s, "SELECT tenant, kind, serial, subject, fingerprint,"
	    " not_before, not_after, issued_at FROM certificates"
	    " WHERE $1::text IS NULL OR tenant = $1::text ORDER BY cert_id", &q,
	    "cert_foreach", cert_row, &w);
	r_leave(s);
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
fill_cert_row(const PGresult *res, int i, struct tca_cert_row *row, struct cert_hex *hex)
{
	size_t len;

	memset(row, 0, sizeof(*row));
	hex_of(res, i, 2, TCA_SERIAL_MAX, hex->serial);
	hex->fp[0] = '\0';
	if (g_bin(res, i, 4, &len) != NULL && len == 32)
		hex_of(res, i, 4, 32, hex->fp);
	row->cert_id = g_i64(res, i, 0);
	row->tenant = g_text(res, i, 1);
	row->kind = "device";
	row->serial_hex = hex->serial;
	row->subject = g_text(res, i, 3);
	row->fingerprint_hex = hex->fp;
	row->not_before = g_i64(res, i, 5);
	row->not_after = g_i64(res, i, 6);
	row->issued_at = g_i64(res, i, 7);
	row->device_id = g_text(res, i, 8);
	if (!g_isnull(res, i, 9)) {
		row->revoked = 1;
		row->revoked_at = g_i64(res, i, 9);
		row->reason = (int)g_i64(res, i, 10);
	}
}

/* Whether tenant has an active CA (TCA_OK / TCA_ERR_NOT_FOUND), on the reader. */
static int
reader_has_active(struct pg_store *s, const char *tenant)
{
	PGresult *res;
	struct qp q;
	int r;

	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	if ((res = r_exec(s, "SELECT 1 FROM cas WHERE tenant = $1 AND status = 'active'",
	    &q, "active CA")) == NULL)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	r = PQntuples(res) > 0 ? TCA_OK : TCA_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

static int
pg_cert_list(tca_store *st, const struct tca_cert_query *q,
    int (*cb)(void *ctx, const struct tca_cert_row *row), void *ctx)
{
#define CERT_LIST_WHERE \
	" WHERE c.tenant = $1 AND c.status = 'active' AND d.cert_id > $3::bigint" \
	" AND ($4::integer = 0 OR ($4 = 1 AND r.cert_id IS NULL AND d.not_after >= $5::bigint)" \
	"  OR ($4 = 2 AND r.cert_id IS NOT NULL)" \
	"  OR ($4 = 3 AND r.cert_id IS NULL AND d.not_after < $5::bigint))" \
	" ORDER BY d.cert_id LIMIT $6::bigint"
	static const char sql_all[] = CERT_ROW_COLS
	    " FROM cas c JOIN certificates d"
	    "  ON d.tenant = c.tenant AND d.ca_id = c.ca_id AND d.kind = 'device'"
	    "  AND $2::text IS NULL"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id" CERT_LIST_WHERE;
	static const char sql_device[] = CERT_ROW_COLS
	    " FROM cas c JOIN certificates d"
	    "  ON d.tenant = c.tenant AND d.device_id = $2::text AND d.ca_id = c.ca_id"
	    "  AND d.kind = 'device'"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id" CERT_LIST_WHERE;
#undef CERT_LIST_WHERE
	struct pg_store *s = (struct pg_store *)st;
	struct tca_cert_row row;
	struct cert_hex hex;
	PGresult *res = NULL;
	struct qp p;
	int i, r = TCA_OK;

	if (s == NULL || q == NULL || q->tenant == NULL || cb == NULL || q->limit == 0 ||
	    q->state < TCA_CERT_ANY || q->state > TCA_CERT_EXPIRED)
		return TCA_ERR_INVALID_ARG;
	memset(&p, 0, sizeof(p));
	qp_text(&p, q->tenant);
	if (q->device_id != NULL)
		qp_text(&p, q->device_id);
	else
		qp_null(&p);
	qp_int(&p, q->after_cert_id);
	qp_int(&p, (int64_t)q->state);
	qp_int(&p, q->now);
	qp_int(&p, q->limit > INT32_MAX ? INT32_MAX : (int64_t)q->limit);
	r_enter(s);
	if ((r = reader_has_active(s, q->tenant)) != TCA_OK)
		goto out;
	if ((res = r_exec(s, q->device_id != NULL ? sql_device : sql_all, &p,
	    "cert_list")) == NULL) {
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		fill_cert_row(res, i, &row, &hex);
		if ((r = cb(ctx, &row)) != 0)
			goto out;
	}
	r = TCA_OK;
 out:
	PQclear(res);
	r_leave(s);
	return r;
}

static int
pg_cert_get(tca_store *st, const char *tenant, const unsigned char *serial,
    size_t serial_len, struct tca_cert_row *row)
{
	static const char sql[] = CERT_ROW_COLS ", d.der"
	    " FROM cas c JOIN certificates cur ON cur.cert_id = c.current_cert_id"
	    " JOIN certificates d ON d.issuer_hash = cur.issuer_hash"
	    "  AND d.serial = $2 AND d.kind = 'device' AND d.ca_id = c.ca_id"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.tenant = $1 AND c.status = 'active'";
	struct pg_store *s = (struct pg_store *)st;
	struct tca_cert_row tmp;
	struct cert_hex hex;
	const unsigned char *der;
	PGresult *res = NULL;
	size_t n_text, off, der_len;
	struct qp q;
	char *buf;
	int r = TCA_ERR_INTERNAL;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || serial == NULL || serial_len == 0 ||
	    serial_len > TCA_SERIAL_MAX || row == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	qp_bin(&q, serial, serial_len);
	r_enter(s);
	if ((res = r_exec(s, sql, &q, "cert_get")) == NULL) {
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	if (PQntuples(res) == 0) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	fill_cert_row(res, 0, &tmp, &hex);
	if ((der = g_bin(res, 0, 11, &der_len)) == NULL || der_len == 0) {
		log_error("store: %s: cert_get: certificate without DER", s->desc);
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	/* one allocation: the strings, then the DER */
	n_text = strlen(tmp.tenant) + 1 + sizeof(hex) + strlen(tmp.subject) + 1 +
	    strlen(tmp.device_id) + 1;
	if ((buf = malloc(n_text + der_len)) == NULL) {
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
	memcpy(buf + off, der, der_len);
	row->der = (unsigned char *)buf + off;
	row->der_len = der_len;
	r = TCA_OK;
 out:
	PQclear(res);
	r_leave(s);
	return r;
}

static int
pg_revoked_foreach(tca_store *st, const char *tenant, int64_t now,
    tca_revoked_cb cb, void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	const unsigned char *serial;
	PGresult *res = NULL;
	size_t serial_len;
	struct qp q;
	int i, r = TCA_OK;

	if (s == NULL || tenant == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	qp_int(&q, now);
	r_enter(s);
	if ((res = r_exec(s, "SELECT d.serial, r.revoked_at, r.reason, r.not_after"
	    " FROM cas c JOIN revocations r ON r.ca_id = c.ca_id"
	    " AND r.not_after >= $2::bigint JOIN certificates d ON d.cert_id = r.cert_id"
	    " WHERE c.tenant = $1 AND c.status = 'active' ORDER BY r.cert_id", &q,
	    "revoked_foreach")) == NULL) {
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		serial = g_bin(res, i, 0, &serial_len);
		if (serial == NULL || serial_len == 0 || serial_len > TCA_SERIAL_MAX) {
			log_error("store: %s: revoked_foreach: bad serial", s->desc);
			r = TCA_ERR_JOURNAL_UNAVAILABLE;
			goto out;
		}
		if ((r = cb(ctx, serial, serial_len, g_i64(res, i, 1),
		    (int)g_i64(res, i, 2), g_i64(res, i, 3))) != 0)
			goto out;
	}
 out:
	PQclear(res);
	r_leave(s);
	return r;
}

struct revoked_walk {
	struct pg_store *s;
	int (*cb)(void *ctx, const char *tenant, const unsigned char *serial,
	    size_t serial_len, int64_t revoked_at, int reason);
	void *ctx;
};

static int
revoked_row(void *ctx, const PGresult *res, int i)
{
	struct revoked_walk *w = ctx;
	const unsigned char *serial;
	size_t serial_len;

	serial = g_bin(res, i, 1, &serial_len);
	if (serial == NULL || serial_len == 0 || serial_len > TCA_SERIAL_MAX) {
		log_error("store: %s: revoked_all: bad serial", w->s->desc);
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	return w->cb(w->ctx, g_text(res, i, 0), serial, serial_len, g_i64(res, i, 2),
	    (int)g_i64(res, i, 3));
}

static int
pg_revoked_all(tca_store *st, int64_t now,
    int (*cb)(void *ctx, const char *tenant, const unsigned char *serial,
    size_t serial_len, int64_t revoked_at, int reason), void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct revoked_walk w;
	struct qp q;
	int r;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	w.s = s;
	w.cb = cb;
	w.ctx = ctx;
	memset(&q, 0, sizeof(q));
	qp_int(&q, now);
	r_enter(s);
	r = cursor_walk(s, "SELECT c.tenant, d.serial, r.revoked_at, r.reason"
	    " FROM revocations r JOIN cas c ON c.ca_id = r.ca_id AND c.status = 'active'"
	    " JOIN certificates d ON d.cert_id = r.cert_id"
	    " WHERE r.not_after >= $1::bigint ORDER BY r.cert_id", &q, "revoked_all",
	    revoked_row, &w);
	r_leave(s);
	return r;
}

static int
pg_crl_get(tca_store *st, const char *tenant, struct tca_crl_row *row)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res = NULL;
	struct qp q;
	int r = TCA_ERR_INTERNAL;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	r_enter(s);
	if ((res = r_exec(s, "SELECT k.crl_number, k.this_update, k.next_update,"
	    " k.entries, k.der, (SELECT COALESCE(MAX(m.crl_number), 0) FROM crls m"
	    " WHERE m.tenant = $1) FROM cas c LEFT JOIN crls k ON k.ca_id = c.ca_id"
	    " WHERE c.tenant = $1 AND c.status = 'active'", &q, "crl_get")) == NULL) {
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	if (PQntuples(res) == 0) {
		r = TCA_ERR_NOT_FOUND;
		goto out;
	}
	row->next_number = (uint64_t)g_i64(res, 0, 5) + 1;
	if (g_isnull(res, 0, 0)) {
		r = TCA_ERR_NOT_FOUND;	/* an active CA without a CRL yet */
		goto out;
	}
	row->crl_number = (uint64_t)g_i64(res, 0, 0);
	row->this_update = g_i64(res, 0, 1);
	row->next_update = g_i64(res, 0, 2);
	row->entries = (uint64_t)g_i64(res, 0, 3);
	if ((r = dup_bin(res, 0, 4, &row->der, &row->der_len)) == TCA_OK &&
	    row->der == NULL) {
		log_error("store: %s: crl_get: CRL without DER", s->desc);
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	}
 out:
	PQclear(res);
	r_leave(s);
	return r;
}

/*
 * One statement on the reader; unlike SQLite's, the count does not hold a
 * lock the writer needs (PostgreSQL readers never block the writer), only
 * the reader's mutex for the statement's duration.
 */
static int
pg_cert_counts(tca_store *st, int64_t now, struct tca_cert_counts *out)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res;
	struct qp q;
	int r = TCA_OK;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (s == NULL || out == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_int(&q, now);
	r_enter(s);
	if ((res = r_exec(s, "SELECT"
	    " count(*) FILTER (WHERE r.cert_id IS NULL AND d.not_after >= $1::bigint),"
	    " count(r.cert_id),"
	    " count(*) FILTER (WHERE r.cert_id IS NULL AND d.not_after < $1::bigint)"
	    " FROM cas c JOIN certificates d ON d.ca_id = c.ca_id AND d.kind = 'device'"
	    " LEFT JOIN revocations r ON r.cert_id = d.cert_id"
	    " WHERE c.status = 'active'", &q, "cert_counts")) == NULL ||
	    PQntuples(res) != 1)
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	else {
		out->valid = (uint64_t)g_i64(res, 0, 0);
		out->revoked = (uint64_t)g_i64(res, 0, 1);
		out->expired = (uint64_t)g_i64(res, 0, 2);
	}
	PQclear(res);
	r_leave(s);
	return r;
}

/* ------------------------------------------------------------ devices */

#define DEVICE_COLS "SELECT d.tenant, d.device_id, d.secret, d.registered_at," \
    " d.expires_at, d.failures, d.locked, d.consumed_at, c.serial FROM devices d" \
    " LEFT JOIN certificates c ON c.cert_id = d.consumed_cert_id"

static void
fill_device_row(const PGresult *res, int i, struct tca_device_row *row)
{
	int64_t f = g_i64(res, i, 5);

	memset(row, 0, sizeof(*row));
	snprintf(row->tenant, sizeof(row->tenant), "%s", g_text(res, i, 0));
	snprintf(row->device_id, sizeof(row->device_id), "%s", g_text(res, i, 1));
	snprintf(row->secret, sizeof(row->secret), "%s", g_text(res, i, 2));
	row->registered_at = g_i64(res, i, 3);
	row->expires_at = g_i64(res, i, 4);
	row->failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (unsigned int)f;
	row->locked = g_i64(res, i, 6) != 0;
	row->consumed_at = g_i64(res, i, 7);
	hex_of(res, i, 8, TCA_SERIAL_MAX, row->consumed_serial_hex);
}

static int
pg_device_get(tca_store *st, const char *tenant, const char *device_id,
    struct tca_device_row *row)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res;
	struct qp q;
	int r;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (s == NULL || tenant == NULL || device_id == NULL || row == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	qp_text(&q, device_id);
	r_enter(s);
	if ((res = r_exec(s, DEVICE_COLS " WHERE d.tenant = $1 AND d.device_id = $2",
	    &q, "device_get")) == NULL)
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	else if (PQntuples(res) == 0)
		r = TCA_ERR_NOT_FOUND;
	else {
		fill_device_row(res, 0, row);
		r = TCA_OK;
	}
	PQclear(res);
	r_leave(s);
	return r;
}

static int
pg_device_list(tca_store *st, const char *tenant, const char *after, size_t limit,
    int (*cb)(void *ctx, const struct tca_device_row *row), void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct tca_device_row row;
	PGresult *res;
	struct qp q;
	int i, r = TCA_OK;

	if (s == NULL || tenant == NULL || after == NULL || cb == NULL || limit == 0)
		return TCA_ERR_INVALID_ARG;
	memset(&q, 0, sizeof(q));
	qp_text(&q, tenant);
	qp_text(&q, after);
	qp_int(&q, limit > INT32_MAX ? INT32_MAX : (int64_t)limit);
	r_enter(s);
	if ((res = r_exec(s, DEVICE_COLS " WHERE d.tenant = $1"
	    " AND d.device_id COLLATE \"C\" > $2::text ORDER BY d.device_id COLLATE \"C\""
	    " LIMIT $3::bigint", &q, "device_list")) == NULL)
		r = TCA_ERR_JOURNAL_UNAVAILABLE;
	for (i = 0; res != NULL && i < PQntuples(res); i++) {
		fill_device_row(res, i, &row);
		r = cb(ctx, &row);
		explicit_bzero(row.secret, sizeof(row.secret));
		if (r != 0)
			break;
	}
	PQclear(res);
	r_leave(s);
	return r;
}

static int
audit_row(void *ctx, const PGresult *res, int i)
{
	struct cert_walk *w = ctx;
	struct tca_cert_audit_row row;

	memset(&row, 0, sizeof(row));
	row.cert_id = g_i64(res, i, 0);
	row.tenant = g_text(res, i, 1);
	row.kind = g_text(res, i, 2);
	row.subject = g_text(res, i, 3);
	row.serial = g_bin(res, i, 4, &row.serial_len);
	row.fingerprint = g_bin(res, i, 5, &row.fingerprint_len);
	row.der = g_bin(res, i, 6, &row.der_len);
	row.revoked = g_i64(res, i, 7) != 0;
	return w->audit_cb(w->ctx, &row);
}

static int
pg_cert_audit_foreach(tca_store *st, int with_der,
    int (*cb)(void *ctx, const struct tca_cert_audit_row *row), void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct cert_walk w;
	int r;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&w, 0, sizeof(w));
	w.audit_cb = cb;
	w.ctx = ctx;
	r_enter(s);
	r = cursor_walk(s, with_der ?
	    "SELECT c.cert_id, c.tenant, c.kind, c.subject, c.serial, c.fingerprint,"
	    " c.der, r.cert_id IS NOT NULL FROM certificates c"
	    " LEFT JOIN revocations r ON r.cert_id = c.cert_id ORDER BY c.cert_id" :
	    "SELECT c.cert_id, c.tenant, c.kind, c.subject, c.serial, c.fingerprint,"
	    " NULL::bytea, r.cert_id IS NOT NULL FROM certificates c"
	    " LEFT JOIN revocations r ON r.cert_id = c.cert_id ORDER BY c.cert_id",
	    NULL, "cert_audit_foreach", audit_row, &w);
	r_leave(s);
	return r;
}

/* ------------------------------------------------------------ leadership */

/*
 * The leader connection: a session of its own (never the writer's or the
 * reader's, whose resets by the retry logic would silently drop or re-take
 * a lock behind the caller's back).  The server is asked to notice a
 * client that vanished as the client notices a server (connect_db): TCP
 * keepalives after 10 s idle, every 5 s, 3 lost = gone, and unacknowledged
 * data dropped after 30 s; it then ends the session and releases the lock.
 * Over a Unix socket these settings do nothing (and need not: a dead
 * process closes its socket).
 */
static PGconn *
leader_connect(struct pg_store *s, char *why, size_t whylen)
{
	char msg[512];
	PGconn *conn;

	if ((conn = connect_db(s, why, whylen)) == NULL)
		return NULL;
	if (exec_simple(conn, "SET application_name = 'tca-leader'", "leader session",
	    msg, sizeof(msg)) != TCA_OK ||
	    exec_simple(conn, "SET tcp_keepalives_idle = 10", "leader session",
	    msg, sizeof(msg)) != TCA_OK ||
	    exec_simple(conn, "SET tcp_keepalives_interval = 5", "leader session",
	    msg, sizeof(msg)) != TCA_OK ||
	    exec_simple(conn, "SET tcp_keepalives_count = 3", "leader session",
	    msg, sizeof(msg)) != TCA_OK ||
	    (PQserverVersion(conn) >= 120000 &&
	    exec_simple(conn, "SET tcp_user_timeout = 30000", "leader session",
	    msg, sizeof(msg)) != TCA_OK)) {
		tca_setf(why, whylen, "%s: %s", s->desc, msg);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Drops the leader connection: every role it held is lost. */
static void
leader_drop(struct pg_store *s)
{
	int i;

	PQfinish(s->lconn);
	s->lconn = NULL;
	for (i = 0; i < s->nroles; i++)
		s->roles[i].held = 0;
}

static int
pg_leader(tca_store *st, const char *role, int *is_leader_ptr, char *why, size_t whylen)
{
	struct pg_store *s = (struct pg_store *)st;
	char msg[512];
	PGresult *res = NULL;
	struct qp q;
	int i, slot = -1, any = 0, r = TCA_ERR_JOURNAL_UNAVAILABLE;

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
	if (s->readonly)
		return TCA_OK;	/* audit tools lead nothing */
	pthread_mutex_lock(&s->llock);
	for (i = 0; i < s->nroles; i++) {
		if (strcmp(s->roles[i].role, role) == 0)
			slot = i;
		any |= s->roles[i].held;
	}
	if (slot < 0) {
		if (s->nroles == LEADER_ROLES) {
			tca_setf(why, whylen, "leadership: more than %d roles", LEADER_ROLES);
			r = TCA_ERR_INVALID_ARG;
			goto out;
		}
		slot = s->nroles++;
		snprintf(s->roles[slot].role, sizeof(s->roles[slot].role), "%s", role);
		s->roles[slot].held = 0;
	}
	/*
	 * Holding something: is the session (and so every lock it holds) still
	 * there?  One round trip.  If not, the server has released our locks
	 * or will: lost now; the next call reconnects and tries again.
	 */
	if (s->lconn != NULL && !any && PQstatus(s->lconn) != CONNECTION_OK)
		leader_drop(s);	/* held nothing: nothing lost */
	if (s->lconn != NULL && any) {
		res = PQexec(s->lconn, "SELECT 1");
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    PQstatus(s->lconn) != CONNECTION_OK) {
			res_msg(s->lconn, res, msg, sizeof(msg));
			tca_setf(why, whylen, "%s: the leader session was lost: %s",
			    s->desc, msg);
			log_warn("store: %s: leadership lost with the session: %s",
			    s->desc, msg);
			PQclear(res);
			res = NULL;
			leader_drop(s);
			r = TCA_OK;
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if (s->roles[slot].held) {
		*is_leader_ptr = 1;
		r = TCA_OK;
		goto out;
	}
	if (s->lconn == NULL && (s->lconn = leader_connect(s, why, whylen)) == NULL)
		goto out;
	memset(&q, 0, sizeof(q));
	qp_int(&q, LEADER_CLASS);
	qp_text(&q, role);
	res = q_exec(s->lconn, "SELECT pg_try_advisory_lock($1::int4,"
	    " hashtext(current_schema() || '/' || $2::text))", &q);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
		res_msg(s->lconn, res, msg, sizeof(msg));
		tca_setf(why, whylen, "%s: leadership of %s: %s", s->desc, role, msg);
		if (PQstatus(s->lconn) != CONNECTION_OK)
			leader_drop(s);
		goto out;
	}
	s->roles[slot].held = g_i64(res, 0, 0) != 0;
	*is_leader_ptr = s->roles[slot].held;
	r = TCA_OK;
 out:
	PQclear(res);
	pthread_mutex_unlock(&s->llock);
	return r;
}

/* ------------------------------------------------------------ migration */

struct pg_export {
	enum tca_mig_table_id t;
	tca_mig_row_cb cb;
	void *ctx;
};

static int
export_row(void *ctx, const PGresult *res, int i)
{
	struct pg_export *e = ctx;
	const struct tca_mig_table *tb = &tca_mig_tables[e->t];
	struct tca_mig_row row;
	struct tca_mig_value *v;
	size_t c;

	memset(&row, 0, sizeof(row));
	row.table = e->t;
	row.ncols = tb->ncols;
	for (c = 0; c < tb->ncols; c++) {
		v = &row.v[c];
		if (g_isnull(res, i, (int)c)) {
			v->type = TCA_MIG_NULL;
			continue;
		}
		v->type = tb->cols[c].type;
		if (v->type == TCA_MIG_INT)
			v->i = g_i64(res, i, (int)c);
		else	/* binary results: text and bytea are their bytes,
			 * NUL-terminated by libpq */
			v->p = g_bin(res, i, (int)c, &v->len);
	}
	return e->cb(e->ctx, &row);
}

static int
pg_export_rows(tca_store *st, tca_mig_row_cb cb, void *ctx)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pg_export e;
	PGresult *res;
	char sql[1024];
	int t, r = TCA_ERR_JOURNAL_UNAVAILABLE;

	if (s == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	r_enter(s);
	if (s->rtxn) {
		r = TCA_ERR_INVALID_ARG;	/* not from inside another walk */
		goto out;
	}
	/* one snapshot for every table: the cursor walks below run inside it */
	if ((res = r_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    NULL, "export_rows")) == NULL)
		goto out;
	PQclear(res);
	s->rtxn = 1;
	e.cb = cb;
	e.ctx = ctx;
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		if (tca_mig_select_sql((enum tca_mig_table_id)t, sql, sizeof(sql)) != TCA_OK) {
			r = TCA_ERR_INTERNAL;
			break;
		}
		e.t = (enum tca_mig_table_id)t;
		if ((r = cursor_walk(s, sql, NULL, "export_rows", export_row, &e)) != TCA_OK)
			break;
	}
	if (PQstatus(s->rconn) == CONNECTION_OK)
		PQclear(PQexec(s->rconn, r == TCA_OK ? "COMMIT" : "ROLLBACK"));
	s->rtxn = 0;
 out:
	r_leave(s);
	return r;
}

struct pg_import {
	struct pg_store *s;
	int refused;
	char why[512];
	int64_t head_seq;
	unsigned char head[32];
};

static int
pg_import_row(void *ctx, const struct tca_mig_row *row)
{
	struct pg_import *im = ctx;
	const struct tca_mig_table *tb;
	const struct tca_mig_value *v;
	char name[32], msg[256];
	const char *vals[TCA_MIG_COLS_MAX];
	int lens[TCA_MIG_COLS_MAX], fmts[TCA_MIG_COLS_MAX];
	char num[TCA_MIG_COLS_MAX][24];
	PGresult *res;
	size_t i;
	int r = 0;

	if ((unsigned)row->table >= TCA_MIG_NTABLES || row->ncols > TCA_MIG_COLS_MAX)
		return TCA_ERR_INVALID_ARG;
	tb = &tca_mig_tables[row->table];
	for (i = 0; i < row->ncols; i++) {
		v = &row->v[i];
		lens[i] = 0;
		fmts[i] = 0;
		switch (v->type) {
		case TCA_MIG_INT:
			snprintf(num[i], sizeof(num[i]), "%lld", (long long)v->i);
			vals[i] = num[i];
			break;
		case TCA_MIG_TEXT:
		case TCA_MIG_BLOB:
			/* binary: text as its bytes (the server checks the
			 * encoding), bytea as is */
			vals[i] = v->p != NULL ? (const char *)v->p : "";
			lens[i] = (int)v->len;
			fmts[i] = 1;
			break;
		default:
			vals[i] = NULL;
			break;
		}
	}
	snprintf(name, sizeof(name), "tca_mig%d", (int)row->table);
	res = PQexecPrepared(im->s->wconn, name, (int)row->ncols, vals, lens, fmts, 1);
	if (!res_ok(res)) {
		res_msg(im->s->wconn, res, msg, sizeof(msg));
		im->refused = 1;
		if (row->v[0].type == TCA_MIG_INT)
			tca_setf(im->why, sizeof(im->why), "the target refused %s row "
			    "%s %lld: %s", tb->label, tb->cols[0].name,
			    (long long)row->v[0].i, msg);
		else
			tca_setf(im->why, sizeof(im->why), "the target refused %s row "
			    "%s \"%s\": %s", tb->label, tb->cols[0].name,
			    row->v[0].p != NULL ? (const char *)row->v[0].p : "", msg);
		r = PQstatus(im->s->wconn) == CONNECTION_OK ?
		    TCA_ERR_POLICY_VIOLATION : TCA_ERR_JOURNAL_UNAVAILABLE;
	} else if (tb->update && cmd_rows(res) != 1) {
		im->refused = 1;
		tca_setf(im->why, sizeof(im->why), "%s: no CA %lld to link",
		    tb->label, (long long)row->v[0].i);
		r = TCA_ERR_POLICY_VIOLATION;
	} else if (row->table == TCA_MIG_JOURNAL && row->v[11].len == 32) {
		im->head_seq = row->v[0].i;
		memcpy(im->head, row->v[11].p, 32);
	}
	PQclear(res);
	return r;
}

static int
pg_import_rows(tca_store *st,
    int (*walk)(void *wctx, tca_mig_row_cb sink, void *sink_ctx), void *wctx,
    char *why, size_t whylen)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pg_import im;
	struct qp q;
	PGresult *res = NULL;
	char sql[1024], name[32], held[512], msg[256];
	size_t off = 0;
	int64_t n;
	int t, r = TCA_ERR_JOURNAL_UNAVAILABLE, in_txn = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (s == NULL || walk == NULL)
		return TCA_ERR_INVALID_ARG;
	if (s->readonly) {
		tca_setf(why, whylen, "%s is open read-only", s->desc);
		return TCA_ERR_INVALID_ARG;
	}
	memset(&im, 0, sizeof(im));
	im.s = s;
	held[0] = '\0';
	pthread_mutex_lock(&s->wlock);
	if (writer_up(s, why, whylen) != TCA_OK)
		goto out;
	if (exec_simple(s->wconn, "BEGIN", "import", why, whylen) != TCA_OK)
		goto out;
	in_txn = 1;
	/* the head row locked: no engine commits while the store fills */
	if ((res = PQexecParams(s->wconn, SQL_HEAD_LOCK, 0, NULL, NULL, NULL, NULL,
	    1)) == NULL || !res_ok(res) || PQntuples(res) != 1) {
		res_msg(s->wconn, res, msg, sizeof(msg));
		tca_setf(why, whylen, "%s: locking journal_head: %s", s->desc, msg);
		goto out;
	}
	PQclear(res);
	res = NULL;
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		if (tca_mig_tables[t].update)
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
		    tca_mig_tables[t].sql_table);
		if (query_i64(s->wconn, sql, NULL, &n, NULL, why, whylen) != TCA_OK)
			goto out;
		if (n > 0 && off < sizeof(held))
			off += (size_t)snprintf(held + off, sizeof(held) - off, "%s%lld %s",
			    off > 0 ? ", " : "", (long long)n, tca_mig_tables[t].label);
	}
	if (off > 0) {
		tca_setf(why, whylen, "the target %s is not empty (%s): a migration "
		    "only fills an empty store", s->desc, held);
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	for (t = 0; t < TCA_MIG_NTABLES; t++) {
		if (tca_mig_write_sql((enum tca_mig_table_id)t, 1, sql,
		    sizeof(sql)) != TCA_OK) {
			r = TCA_ERR_INTERNAL;
			goto out;
		}
		snprintf(name, sizeof(name), "tca_mig%d", t);
		res = PQprepare(s->wconn, name, sql, 0, NULL);
		if (!res_ok(res)) {
			res_msg(s->wconn, res, msg, sizeof(msg));
			tca_setf(why, whylen, "%s: prepare %s: %s", s->desc,
			    tca_mig_tables[t].label, msg);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if ((r = walk(wctx, pg_import_row, &im)) != TCA_OK) {
		if (im.refused)
			tca_setf(why, whylen, "%s", im.why);
		goto out;
	}
	r = TCA_ERR_JOURNAL_UNAVAILABLE;
	if (query_i64(s->wconn, "SELECT count(*) FROM cas WHERE current_cert_id IS NULL",
	    NULL, &n, NULL, why, whylen) != TCA_OK)
		goto out;
	if (n > 0) {
		tca_setf(why, whylen, "%lld CA(s) without a current certificate "
		    "after the import", (long long)n);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	/* the head row ends at the last record (its guard checks that the
	 * record exists with this hash) */
	memset(&q, 0, sizeof(q));
	qp_int(&q, im.head_seq);
	qp_bin(&q, im.head, 32);
	res = q_exec(s->wconn, SQL_SET_HEAD, &q);
	if (!res_ok(res)) {
		res_msg(s->wconn, res, msg, sizeof(msg));
		tca_setf(why, whylen, "%s: moving journal_head to record %lld: %s",
		    s->desc, (long long)im.head_seq, msg);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (exec_simple(s->wconn, "COMMIT", "import", why, whylen) != TCA_OK)
		goto out;
	in_txn = 0;
	r = TCA_OK;
 out:
	PQclear(res);
	if (in_txn)
		w_rollback(s);
	if (s->wconn != NULL && PQstatus(s->wconn) == CONNECTION_OK) {
		/* our statements, and the writer's cache with them */
		PQclear(PQexec(s->wconn, "DEALLOCATE ALL"));
		s->nprepared = 0;
	}
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static const struct tca_store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.get_ca = pg_get_ca,
	.foreach_ca = pg_foreach_ca,
	.commit = pg_commit,
	.journal_foreach = pg_journal_foreach,
	.changes_since = pg_changes_since,
	.wait_change = pg_wait_change,
	.cert_foreach = pg_cert_foreach,
	.cert_list = pg_cert_list,
	.cert_get = pg_cert_get,
	.revoked_foreach = pg_revoked_foreach,
	.revoked_all = pg_revoked_all,
	.crl_get = pg_crl_get,
	.cert_counts = pg_cert_counts,
	.device_get = pg_device_get,
	.device_list = pg_device_list,
	.cert_audit_foreach = pg_cert_audit_foreach,
	.health = pg_health,
	.leader = pg_leader,
	.export_rows = pg_export_rows,
	.import_rows = pg_import_rows,
};
