/*
 * store-migrate.h - copying a whole store to another backend (ca-admin
 * store migrate): the backend-neutral row form both backends export and
 * import (struct tca_store_ops export_rows / import_rows, store.h), and
 * tca_store_migrate(), which streams one store into another while checking
 * the journal chain record by record.
 *
 * The neutral form is the logical schema the backends share (same tables,
 * same columns, same meaning; docs/architecture.md): one table list below,
 * in the order rows must be imported (foreign keys point backwards):
 *   cas            every CA with all its state, WITHOUT the certificate links
 *   certificates   every certificate, cert_id kept
 *   ca-links       (ca_id, current_cert_id, previous_cert_id): an UPDATE of
 *                  cas once the certificates exist (the two tables reference
 *                  each other)
 *   revocations, crls, devices, journal (seq, prev_hash, hash kept byte for
 *                  byte: the chain verifies identically on the target)
 * Rows of one table come in primary-key order.  A value is NULL, an integer,
 * text (bytes, NUL-terminated at p[len], no NUL inside) or a blob; it points
 * into the exporter's buffers and is valid during the callback only, so a
 * migration holds one row at a time whatever the store's size.
 */
#ifndef TCA_STORE_MIGRATE_H
#define TCA_STORE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum tca_mig_type {
	TCA_MIG_NULL = 0,	/* only as a value */
	TCA_MIG_INT = 1,
	TCA_MIG_TEXT = 2,
	TCA_MIG_BLOB = 3,
};

enum tca_mig_table_id {
	TCA_MIG_CAS = 0,
	TCA_MIG_CERTIFICATES,
	TCA_MIG_CA_LINKS,
	TCA_MIG_REVOCATIONS,
	TCA_MIG_CRLS,
	TCA_MIG_DEVICES,
	TCA_MIG_JOURNAL,
	TCA_MIG_NTABLES
};

#define TCA_MIG_COLS_MAX 24

struct tca_mig_column {
	const char *name;
	enum tca_mig_type type;
	int nullable;
};

struct tca_mig_table {
	const char *label;	/* for messages and counts: "ca-links" */
	const char *sql_table;	/* the table in both schemas */
	const char *key;	/* ORDER BY of the export */
	int update;		/* 1: imported as UPDATE ... WHERE <first column> = */
	size_t ncols;
	const struct tca_mig_column *cols;
};

extern const struct tca_mig_table tca_mig_tables[TCA_MIG_NTABLES];

struct tca_mig_value {
	enum tca_mig_type type;
	int64_t i;
	const unsigned char *p;	/* TEXT, BLOB */
	size_t len;
};

struct tca_mig_row {
	enum tca_mig_table_id table;
	size_t ncols;		/* == tca_mig_tables[table].ncols */
	struct tca_mig_value v[TCA_MIG_COLS_MAX];
};

/*
 * SQL the backends share.  SELECT of one table's columns in key order; the
 * INSERT (or ca-links UPDATE) with placeholders "?N" (sqlite) or "$N"
 * (postgresql, dollar != 0).  TCA_OK, or TCA_ERR_INVALID_ARG if buf is short.
 */
int tca_mig_select_sql(enum tca_mig_table_id t, char *buf, size_t buflen);
int tca_mig_write_sql(enum tca_mig_table_id t, int dollar, char *buf, size_t buflen);

/*
 * What a migration moved and found: rows per table, the journal's record
 * count and head (seq, hash; 0 and zeros for an empty journal).
 */
struct tca_mig_stats {
	uint64_t rows[TCA_MIG_NTABLES];
	uint64_t records;
	int64_t head_seq;
	unsigned char head[32];
};

/*
 * Copies every row of src into dst (which must be empty: import_rows
 * refuses otherwise) in ONE transaction of dst.  Every journal row is
 * checked on the way (seq 1, 2, ... without gaps, prev_hash = the previous
 * hash, hash = tca_journal_hash() of the row): a broken chain stops the
 * copy and nothing is written.  The target's own constraints and triggers
 * check everything else.  TCA_OK and *stats; else the error with why:
 * TCA_ERR_ALREADY_EXISTS (dst not empty), TCA_ERR_POLICY_VIOLATION (a row
 * refused: broken chain, constraint), TCA_ERR_JOURNAL_UNAVAILABLE (I/O),
 * TCA_ERR_NOMEM; dst is then as before (empty).
 */
int tca_store_migrate(tca_store *src, tca_store *dst, struct tca_mig_stats *stats,
    char *why, size_t whylen);

#endif
