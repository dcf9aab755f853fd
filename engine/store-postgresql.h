/*
 * store-postgresql.h - the PostgreSQL backend of the state store (store.h;
 * issue 13), for several engines sharing one database.  Built only with
 * libpq (configure --with-postgresql, HAVE_LIBPQ).  How it works: the header
 * comment of store-postgresql.c and docs/architecture.md.  tca_store_open()
 * (store.h) calls tca_store_open_postgresql for "postgresql://...",
 * "postgres://..." and libpq key=value strings.
 */
#ifndef TCA_STORE_POSTGRESQL_H
#define TCA_STORE_POSTGRESQL_H

#include <stddef.h>

#include "store.h"

/*
 * Opens the store in the current schema (search_path) of the database
 * conninfo names: a postgresql:// (or postgres://) URI or a libpq
 * key=value string.  A read-write open creates the schema in an empty
 * schema, migrates an older one and restores missing guard triggers (ALERT
 * in the log); TCA_STORE_READONLY does none of that and refuses writes.
 * TCA_STORE_EXCLUSIVE is ignored: a PostgreSQL store is shared by several
 * engines by design.  TCA_OK and *st_ptr, or TCA_ERR_JOURNAL_UNAVAILABLE
 * (TCA_ERR_INVALID_ARG for a conninfo that does not parse) with a reason
 * in err.  Messages name host, port, dbname and user only, never the
 * conninfo as given (it may hold a password).
 */
int tca_store_open_postgresql(const char *conninfo, int flags, tca_store **st_ptr,
    char *err, size_t errlen);

/*
 * Test and operations knobs.  Each returns TCA_OK, or TCA_ERR_INVALID_ARG
 * for a store of another backend.
 *
 * tca_store_postgresql_set_retry: how often commit() tries a batch that
 * failed for a transient reason (connection lost, failover, serialization
 * failure, deadlock) and the first pause between tries (doubling, at most
 * 2 s).  Defaults: 5 tries, 100 ms.
 */
int tca_store_postgresql_set_retry(tca_store *st, int attempts, int backoff_ms);

/* The server process id of the writer connection (pg_backend_pid()), 0 if
 * it is down: a test terminates it with pg_terminate_backend(). */
int tca_store_postgresql_writer_pid(tca_store *st);
/* The server process id of the leader session (store.h leader()), 0 if
 * there is none (never asked, or lost): a test terminates it. */
int tca_store_postgresql_leader_pid(tca_store *st);

/*
 * One-shot faults for the tests, applied to the next commit batch:
 *  TCA_PG_FAULT_LOSE_COMMIT_REPLY: COMMIT runs, then the connection is cut
 *      as if its reply had been lost: the outcome check must find the batch
 *      committed (and answer TCA_OK without committing it again);
 *  TCA_PG_FAULT_CUT_BEFORE_COMMIT: the connection is cut just before COMMIT
 *      is sent: the outcome is unknown to commit(), the check finds the
 *      batch not committed, and it is retried;
 *  TCA_PG_FAULT_LOSE_COMMIT_REPLY_OFFLINE: as LOSE_COMMIT_REPLY, and the
 *      database then seems unreachable to the outcome check for its whole
 *      wait: the batch is answered JOURNAL_UNAVAILABLE with outcome_unknown
 *      (store.h), and the next commit logs that it did commit.
 */
#define TCA_PG_FAULT_LOSE_COMMIT_REPLY 1
#define TCA_PG_FAULT_CUT_BEFORE_COMMIT 2
#define TCA_PG_FAULT_LOSE_COMMIT_REPLY_OFFLINE 3
int tca_store_postgresql_set_fault(tca_store *st, int fault);

/* How long a COMMIT whose reply was lost is resolved for before it is
 * answered as unknown (default 30000 ms). */
int tca_store_postgresql_set_resolve_wait(tca_store *st, int ms);

#endif
