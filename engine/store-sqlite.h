/*
 * store-sqlite.h - the SQLite backend of the state store (store-sqlite.c):
 * what only this backend has.  The backend-independent contract is store.h;
 * callers open a store with tca_store_open("sqlite:PATH") and use these only
 * where they mean SQLite (ca-admin's file checks, tests, benchmarks).
 *
 * One database file, WAL mode, synchronous=FULL.  TCA_STORE_EXCLUSIVE is
 * an exclusive advisory lock (flock(2)) on "<path>.lock", held until close,
 * so that a second engine cannot open a store in use - it would serve stale
 * CA rows and interleave its journal.  A second EXCLUSIVE open of the same
 * file, from this or another process, fails with
 * TCA_ERR_JOURNAL_UNAVAILABLE and an error naming the store and the pid
 * recorded in the lock file.  READONLY opens take no lock and keep working
 * while the engine runs.  The lock is a separate file because SQLite uses
 * fcntl(2) byte-range locks on the database file itself (and POSIX locks on
 * a file are dropped when ANY descriptor of the process on it is closed).
 */
#ifndef TCA_STORE_SQLITE_H
#define TCA_STORE_SQLITE_H

#include "store.h"

/*
 * Opens (creating if needed, unless READONLY) the SQLite store at path (a
 * file path, no "sqlite:" prefix).  TCA_OK and *st_ptr, or
 * TCA_ERR_JOURNAL_UNAVAILABLE with a reason in err.
 */
int tca_store_open_sqlite(const char *path, int flags, tca_store **st_ptr,
    char *err, size_t errlen);

/*
 * The engine's lock of the store at path, taken alone (what
 * TCA_STORE_EXCLUSIVE takes): ca-admin store migrate holds it while it
 * reads a source opened READONLY, so that no engine runs on the store
 * meanwhile.  TCA_OK and *fd_ptr (close() releases the lock), or
 * TCA_ERR_JOURNAL_UNAVAILABLE with err naming the pid holding it.
 */
int tca_store_sqlite_lock(const char *path, int *fd_ptr, char *err, size_t errlen);

/*
 * Operational caps, also used for testing and fault simulation.  Both act on
 * the writer connection of a store from tca_store_open_sqlite() and return
 * TCA_OK, or TCA_ERR_INVALID_ARG for another backend.
 *
 * tca_store_sqlite_set_max_pages: caps the database file at max_pages pages
 * (PRAGMA max_page_count; never below its current size).  A commit that
 * would grow it further fails as on a full disk (TCA_ERR_JOURNAL_UNAVAILABLE,
 * nothing committed).  max_pages <= 0 restores SQLite's default.
 *
 * tca_store_sqlite_set_busy_timeout: how long a commit waits for a write lock
 * held by another process before failing with TCA_ERR_JOURNAL_UNAVAILABLE
 * (default 5000 ms).
 */
int tca_store_sqlite_set_max_pages(tca_store *st, long max_pages);
int tca_store_sqlite_set_busy_timeout(tca_store *st, int ms);

#endif
