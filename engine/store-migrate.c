/*
 * store-migrate.c - the backend-neutral rows of a whole-store copy and the
 * copy itself (store-migrate.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "store-migrate.h"
#include "tca-error.h"
#include "text.h"

#define I TCA_MIG_INT
#define T TCA_MIG_TEXT
#define B TCA_MIG_BLOB

static const struct tca_mig_column cas_cols[] = {
	{ "ca_id", I, 0 }, { "tenant", T, 0 }, { "status", T, 0 },
	{ "key_type", T, 0 }, { "key_id", B, 0 }, { "created_at", I, 0 },
	{ "deleted_at", I, 0 }, { "renewal_failed", I, 0 },
	{ "renewal_reason", T, 0 }, { "renewal_attempts", I, 0 },
	{ "renewal_failed_since", I, 0 }, { "renewal_next_retry", I, 0 },
	{ "renewal_alerted", I, 0 }, { "expiry_alerted", I, 0 },
	{ "crl_failed", I, 0 }, { "crl_reason", T, 0 }, { "crl_attempts", I, 0 },
	{ "crl_failed_since", I, 0 }, { "crl_next_retry", I, 0 },
	{ "crl_alerted", I, 0 }, { "policy", T, 0 },
};
static const struct tca_mig_column cert_cols[] = {
	{ "cert_id", I, 0 }, { "ca_id", I, 0 }, { "tenant", T, 0 },
	{ "kind", T, 0 }, { "issuer_hash", B, 0 }, { "serial", B, 0 },
	{ "subject", T, 0 }, { "fingerprint", B, 0 }, { "not_before", I, 0 },
	{ "not_after", I, 0 }, { "issued_at", I, 0 }, { "der", B, 0 },
	{ "device_id", T, 0 },
};
static const struct tca_mig_column link_cols[] = {
	{ "ca_id", I, 0 }, { "current_cert_id", I, 1 }, { "previous_cert_id", I, 1 },
};
static const struct tca_mig_column revocation_cols[] = {
	{ "cert_id", I, 0 }, { "ca_id", I, 0 }, { "revoked_at", I, 0 },
	{ "reason", I, 0 }, { "not_after", I, 0 },
};
static const struct tca_mig_column crl_cols[] = {
	{ "ca_id", I, 0 }, { "tenant", T, 0 }, { "crl_number", I, 0 },
	{ "this_update", I, 0 }, { "next_update", I, 0 }, { "entries", I, 0 },
	{ "der", B, 0 },
};
static const struct tca_mig_column device_cols[] = {
	{ "tenant", T, 0 }, { "device_id", T, 0 }, { "secret", T, 0 },
	{ "registered_at", I, 0 }, { "expires_at", I, 0 }, { "failures", I, 0 },
	{ "locked", I, 0 }, { "consumed_at", I, 0 }, { "consumed_cert_id", I, 1 },
};
/* subject and details: text in the neutral form (their bytes are hashed;
 * SQLite keeps them as TEXT, PostgreSQL as bytea) */
static const struct tca_mig_column journal_cols[] = {
	{ "seq", I, 0 }, { "time_ms", I, 0 }, { "op", T, 0 }, { "tenant", T, 0 },
	{ "serial_hex", T, 0 }, { "subject", T, 0 }, { "fingerprint_hex", T, 0 },
	{ "uid", I, 0 }, { "pid", I, 0 }, { "details", T, 0 },
	{ "prev_hash", B, 0 }, { "hash", B, 0 },
};
#undef I
#undef T
#undef B

#define N(a) (sizeof(a) / sizeof((a)[0]))
const struct tca_mig_table tca_mig_tables[TCA_MIG_NTABLES] = {
	{ "cas", "cas", "ca_id", 0, N(cas_cols), cas_cols },
	{ "certificates", "certificates", "cert_id", 0, N(cert_cols), cert_cols },
	{ "ca-links", "cas", "ca_id", 1, N(link_cols), link_cols },
	{ "revocations", "revocations", "cert_id", 0, N(revocation_cols), revocation_cols },
	{ "crls", "crls", "ca_id", 0, N(crl_cols), crl_cols },
	{ "devices", "devices", "tenant, device_id", 0, N(device_cols), device_cols },
	{ "journal", "journal", "seq", 0, N(journal_cols), journal_cols },
};

/* Appends s to buf at *off; 0, or -1 when it does not fit. */
static int
put(char *buf, size_t buflen, size_t *off, const char *s)
{
	size_t len = strlen(s);

	if (*off + len >= buflen)
		return -1;
	memcpy(buf + *off, s, len + 1);
	*off += len;
	return 0;
}

int
tca_mig_select_sql(enum tca_mig_table_id t, char *buf, size_t buflen)
{
	const struct tca_mig_table *tb;
	size_t off = 0, i;

	if ((unsigned)t >= TCA_MIG_NTABLES || buf == NULL || buflen == 0)
		return TCA_ERR_INVALID_ARG;
	tb = &tca_mig_tables[t];
	if (put(buf, buflen, &off, "SELECT ") != 0)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < tb->ncols; i++)
		if ((i > 0 && put(buf, buflen, &off, ", ") != 0) ||
		    put(buf, buflen, &off, tb->cols[i].name) != 0)
			return TCA_ERR_INVALID_ARG;
	if (put(buf, buflen, &off, " FROM ") != 0 ||
	    put(buf, buflen, &off, tb->sql_table) != 0 ||
	    put(buf, buflen, &off, " ORDER BY ") != 0 ||
	    put(buf, buflen, &off, tb->key) != 0)
		return TCA_ERR_INVALID_ARG;
	return TCA_OK;
}

int
tca_mig_write_sql(enum tca_mig_table_id t, int dollar, char *buf, size_t buflen)
{
	const struct tca_mig_table *tb;
	char ph[40];
	size_t off = 0, i;

	if ((unsigned)t >= TCA_MIG_NTABLES || buf == NULL || buflen == 0)
		return TCA_ERR_INVALID_ARG;
	tb = &tca_mig_tables[t];
	if (tb->update) {
		/* UPDATE t SET c2 = ?2, ... WHERE c1 = ?1 */
		if (put(buf, buflen, &off, "UPDATE ") != 0 ||
		    put(buf, buflen, &off, tb->sql_table) != 0 ||
		    put(buf, buflen, &off, " SET ") != 0)
			return TCA_ERR_INVALID_ARG;
		for (i = 1; i < tb->ncols; i++) {
			snprintf(ph, sizeof(ph), " = %c%zu", dollar ? '$' : '?', i + 1);
			if ((i > 1 && put(buf, buflen, &off, ", ") != 0) ||
			    put(buf, buflen, &off, tb->cols[i].name) != 0 ||
			    put(buf, buflen, &off, ph) != 0)
				return TCA_ERR_INVALID_ARG;
		}
		snprintf(ph, sizeof(ph), " = %c1", dollar ? '$' : '?');
		if (put(buf, buflen, &off, " WHERE ") != 0 ||
		    put(buf, buflen, &off, tb->cols[0].name) != 0 ||
		    put(buf, buflen, &off, ph) != 0)
			return TCA_ERR_INVALID_ARG;
		return TCA_OK;
	}
	if (put(buf, buflen, &off, "INSERT INTO ") != 0 ||
	    put(buf, buflen, &off, tb->sql_table) != 0 ||
	    put(buf, buflen, &off, " (") != 0)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < tb->ncols; i++)
		if ((i > 0 && put(buf, buflen, &off, ", ") != 0) ||
		    put(buf, buflen, &off, tb->cols[i].name) != 0)
			return TCA_ERR_INVALID_ARG;
	if (put(buf, buflen, &off, ") VALUES (") != 0)
		return TCA_ERR_INVALID_ARG;
	for (i = 0; i < tb->ncols; i++) {
		snprintf(ph, sizeof(ph), "%s%c%zu", i > 0 ? ", " : "",
		    dollar ? '$' : '?', i + 1);
		if (put(buf, buflen, &off, ph) != 0)
			return TCA_ERR_INVALID_ARG;
	}
	if (put(buf, buflen, &off, ")") != 0)
		return TCA_ERR_INVALID_ARG;
	return TCA_OK;
}

/* ------------------------------------------------------------ the copy */

struct mig {
	tca_store *src;
	tca_mig_row_cb sink;
	void *sink_ctx;
	struct tca_mig_stats *stats;
	int64_t last_seq;
	unsigned char last_hash[32];
	int failed;		/* why below is ours */
	char why[512];
};

static const char *
text_of(const struct tca_mig_value *v)
{
	return v->type == TCA_MIG_TEXT && v->p != NULL ? (const char *)v->p : "";
}

/* The checks of the neutral form every row gets, and the journal chain. */
static int
check_row(struct mig *m, const struct tca_mig_row *row)
{
	const struct tca_mig_table *tb;
	struct tca_journal_record rec;
	unsigned char h[32];
	size_t i;

	if ((unsigned)row->table >= TCA_MIG_NTABLES)
		goto bad;
	tb = &tca_mig_tables[row->table];
	if (row->ncols != tb->ncols)
		goto bad;
	for (i = 0; i < tb->ncols; i++) {
		const struct tca_mig_value *v = &row->v[i];

		if (v->type == TCA_MIG_NULL && tb->cols[i].nullable)
			continue;
		if (v->type != tb->cols[i].type) {
			tca_setf(m->why, sizeof(m->why), "%s row %" PRIu64 ": column %s "
			    "is %s, not of its type", tb->label,
			    m->stats->rows[row->table] + 1, tb->cols[i].name,
			    v->type == TCA_MIG_NULL ? "NULL" : "of another type");
			return TCA_ERR_POLICY_VIOLATION;
		}
		if (v->type == TCA_MIG_TEXT && (v->p == NULL ||
		    strlen((const char *)v->p) != v->len)) {
			tca_setf(m->why, sizeof(m->why), "%s row %" PRIu64 ": column %s "
			    "holds a NUL byte", tb->label,
			    m->stats->rows[row->table] + 1, tb->cols[i].name);
			return TCA_ERR_POLICY_VIOLATION;
		}
	}
	if (row->table != TCA_MIG_JOURNAL)
		return TCA_OK;
	memset(&rec, 0, sizeof(rec));
	rec.seq = row->v[0].i;
	rec.time_ms = row->v[1].i;
	rec.op = text_of(&row->v[2]);
	rec.tenant = text_of(&row->v[3]);
	rec.serial_hex = text_of(&row->v[4]);
	rec.subject = text_of(&row->v[5]);
	rec.fingerprint_hex = text_of(&row->v[6]);
	rec.uid = (uint32_t)row->v[7].i;
	rec.pid = (int32_t)row->v[8].i;
	rec.details = text_of(&row->v[9]);
	if (rec.seq != m->last_seq + 1) {
		tca_setf(m->why, sizeof(m->why), "journal record %lld follows record "
		    "%lld: sequence gap", (long long)rec.seq, (long long)m->last_seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	if (row->v[10].len != 32 || row->v[11].len != 32) {
		tca_setf(m->why, sizeof(m->why), "journal record %lld: a hash is not "
		    "32 bytes", (long long)rec.seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	memcpy(rec.prev_hash, row->v[10].p, 32);
	memcpy(rec.hash, row->v[11].p, 32);
	if (memcmp(rec.prev_hash, m->last_hash, 32) != 0) {
		tca_setf(m->why, sizeof(m->why), "journal record %lld: prev_hash is "
		    "not the hash of record %lld (chain broken)", (long long)rec.seq,
		    (long long)m->last_seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	tca_journal_hash(&rec, h);
	if (memcmp(h, rec.hash, 32) != 0) {
		tca_setf(m->why, sizeof(m->why), "journal record %lld: hash mismatch "
		    "(the record was altered)", (long long)rec.seq);
		return TCA_ERR_POLICY_VIOLATION;
	}
	m->last_seq = rec.seq;
	memcpy(m->last_hash, rec.hash, 32);
	return TCA_OK;
 bad:
	tca_setf(m->why, sizeof(m->why), "malformed row from the source");
	return TCA_ERR_INTERNAL;
}

static int
forward_row(void *ctx, const struct tca_mig_row *row)
{
	struct mig *m = ctx;
	int r;

	if ((r = check_row(m, row)) != TCA_OK) {
		m->failed = 1;
		return r;
	}
	if ((r = m->sink(m->sink_ctx, row)) != 0)
		return r;
	m->stats->rows[row->table]++;
	return 0;
}

/* The walk import_rows() runs inside its transaction. */
static int
walk_source(void *wctx, tca_mig_row_cb cb, void *cbctx)
{
	struct mig *m = wctx;
	int r;

	m->sink = cb;
	m->sink_ctx = cbctx;
	r = m->src->ops->export_rows(m->src, forward_row, m);
	if (r != TCA_OK && !m->failed) {
		/* the source's own read error (logged by it), unless the sink
		 * failed: then import_rows says why */
		tca_setf(m->why, sizeof(m->why), "reading the source failed "
		    "(see the log above)");
	}
	return r;
}

int
tca_store_migrate(tca_store *src, tca_store *dst, struct tca_mig_stats *stats,
    char *why, size_t whylen)
{
	struct mig m;
	int r;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (src == NULL || dst == NULL || stats == NULL ||
	    src->ops->export_rows == NULL || dst->ops->import_rows == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(stats, 0, sizeof(*stats));
	memset(&m, 0, sizeof(m));
	m.src = src;
	m.stats = stats;
	r = dst->ops->import_rows(dst, walk_source, &m, why, whylen);
	if (r != TCA_OK) {
		if (m.failed || (why != NULL && whylen > 0 && why[0] == '\0'))
			tca_setf(why, whylen, "%s", m.why[0] ? m.why : "import failed");
		memset(stats, 0, sizeof(*stats));
		return r;
	}
	stats->records = (uint64_t)m.last_seq;
	stats->head_seq = m.last_seq;
	memcpy(stats->head, m.last_hash, 32);
	return TCA_OK;
}
