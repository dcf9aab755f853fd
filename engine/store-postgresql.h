/*
 * store-postgresql.h - the PostgreSQL backend of the state store
 * (store-postgresql.c, built only when configure found libpq: HAVE_LIBPQ).
 * The backend-independent contract is store.h; tca_store_open() calls this
 * for "postgresql://...", "postgres://..." and libpq key=value strings.
 * A PostgreSQL store is shared by several engines by design:
 * TCA_STORE_EXCLUSIVE takes no lock here.
 */
#ifndef TCA_STORE_POSTGRESQL_H
#define TCA_STORE_POSTGRESQL_H

#include "store.h"

/*
 * Opens the PostgreSQL store at uri (a libpq connection URI or key=value
 * string, passed to libpq as is).  TCA_OK and *st_ptr, or
 * TCA_ERR_JOURNAL_UNAVAILABLE with a reason in err that names the store by
 * its redacted URI only (tca_store_uri_redact: never a password).
 */
int tca_store_open_postgresql(const char *uri, int flags, tca_store **st_ptr,
    char *err, size_t errlen);

#endif
