/* rpc-ops.c - request dispatch and the operation handlers. */
#include "config.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crl.h"
#include "otp.h"
#include "tenant-policy.h"
#include "log.h"
#include "rpc-ops.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"
#include "wire.h"

#define LIST_PAGE_DEFAULT 500
#define LIST_PAGE_MAX 1000

typedef int (*op_fn)(struct tca_rpc_ctx *ctx, const cbor_item_t *args,
    cbor_item_t **result, char *why, size_t whylen);

enum tca_role
tca_role_of(const struct tca_roles *roles, uid_t uid, gid_t gid)
{
	if (tca_id_list_contains(&roles->admin_uids, uid) ||
	    tca_id_list_contains(&roles->admin_gids, gid))
		return TCA_ROLE_ADMIN;
	if (tca_id_list_contains(&roles->frontend_uids, uid) ||
	    tca_id_list_contains(&roles->frontend_gids, gid))
		return TCA_ROLE_FRONTEND;
	return TCA_ROLE_NONE;
}

/* ------------------------------------------------------------ results */

static cbor_item_t *
issued_map(const struct tca_issued *is)
{
	cbor_item_t *m = cbor_new_definite_map(5);

	if (m == NULL)
		return NULL;
	if (tca_map_add_bytes(m, "certificate", is->der, is->der_len) != TCA_OK ||
	    tca_map_add_text(m, "serial", is->serial_hex) != TCA_OK ||
	    tca_map_add_int(m, "not_before", is->not_before) != TCA_OK ||
	    tca_map_add_int(m, "not_after", is->not_after) != TCA_OK ||
	    tca_map_add_text(m, "fingerprint", is->fingerprint_hex) != TCA_OK) {
		cbor_decref(&m);
		return NULL;
	}
	return m;
}

static cbor_item_t *
renewal_map(const struct tca_renewal_state *rs)
{
	cbor_item_t *m = cbor_new_definite_map(5);

	if (m == NULL)
		return NULL;
	if (tca_map_add_bool(m, "failed", rs->failed) != TCA_OK ||
	    tca_map_add_text(m, "reason", rs->reason) != TCA_OK ||
	    tca_map_add_uint(m, "attempts", rs->attempts) != TCA_OK ||
	    tca_map_add_int(m, "failed_since", rs->failed_since) != TCA_OK ||
	    tca_map_add_int(m, "next_retry_at", rs->next_retry) != TCA_OK) {
		cbor_decref(&m);
		return NULL;
	}
	return m;
}

static cbor_item_t *
ca_map(const struct tca_ca_desc *d, int with_cert)
{
	size_t n = 12 + (d->deleted_at != 0) + (with_cert != 0) + (d->renewal.failed != 0) +
	    (d->crl_number != 0 ? 2 : 0) + (d->crl.failed != 0) + (d->suspended != 0);
	cbor_item_t *m = cbor_new_definite_map(n), *rm;

	if (m == NULL)
		return NULL;
	if (tca_map_add_text(m, "tenant", d->tenant) != TCA_OK ||
	    tca_map_add_text(m, "status", d->status) != TCA_OK ||
	    tca_map_add_text(m, "key_type", d->key_type) != TCA_OK ||
	    tca_map_add_text(m, "subject", d->subject) != TCA_OK ||
	    tca_map_add_text(m, "issuer", d->issuer) != TCA_OK ||
	    tca_map_add_text(m, "serial", d->serial_hex) != TCA_OK ||
	    tca_map_add_int(m, "not_before", d->not_before) != TCA_OK ||
	    tca_map_add_int(m, "not_after", d->not_after) != TCA_OK ||
	    tca_map_add_text(m, "fingerprint", d->fingerprint_hex) != TCA_OK ||
	    tca_map_add_text(m, "key_id", d->key_id_hex) != TCA_OK ||
	    tca_map_add_int(m, "created_at", d->created_at) != TCA_OK ||
	    tca_map_add_bool(m, "has_previous", d->has_previous) != TCA_OK ||
	    (d->deleted_at != 0 && tca_map_add_int(m, "deleted_at", d->deleted_at) != TCA_OK) ||
	    (with_cert && tca_map_add_bytes(m, "certificate", d->cert_der, d->cert_der_len) != TCA_OK))
		goto fail;
	if (d->renewal.failed) {
		if ((rm = renewal_map(&d->renewal)) == NULL)
			goto fail;
		if (tca_map_add_item(m, "renewal", rm) != TCA_OK) {
			cbor_decref(&rm);
			goto fail;
		}
	}
	if (d->crl_number != 0 &&
	    (tca_map_add_uint(m, "crl_number", d->crl_number) != TCA_OK ||
	    tca_map_add_int(m, "crl_next_update", d->crl_next_update) != TCA_OK))
		goto fail;
	if (d->crl.failed) {
		if ((rm = renewal_map(&d->crl)) == NULL)
			goto fail;
		if (tca_map_add_item(m, "crl_renewal", rm) != TCA_OK) {
			cbor_decref(&rm);
			goto fail;
		}
	}
	if (d->suspended && tca_map_add_bool(m, "suspended", 1) != TCA_OK)
		goto fail;
	return m;
 fail:
	cbor_decref(&m);
	return NULL;
}

/* ------------------------------------------------------------ handlers */

static int
do_issue_common(struct tca_rpc_ctx *ctx, const cbor_item_t *args, int reenroll,
    cbor_item_t **result, char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], device_id[257], otp[TCA_OTP_MAX + 1] = "";
	const unsigned char *csr, *current = NULL;
	size_t csr_len, current_len = 0;
	struct tca_issued is;
	uint64_t days = 0;
	int r;

	memset(&is, 0, sizeof(is));
	/* refusals here are counted as tca_engine_issue counts its own */
	if ((r = tca_map_get_text(args, "tenant", tenant, sizeof(tenant))) != TCA_OK ||
	    (r = tca_map_get_text(args, "device_id", device_id, sizeof(device_id))) != TCA_OK ||
	    (r = tca_map_get_bytes(args, "csr", &csr, &csr_len)) != TCA_OK ||
	    (reenroll && (r = tca_map_get_bytes(args, "current", &current, &current_len)) != TCA_OK)) {
		snprintf(why, whylen, "bad arguments");
		goto refused;
	}
	if ((r = tca_map_get_uint(args, "days", &days)) != TCA_OK && r != TCA_ERR_NOT_FOUND)
		goto refused;
	if (days > 36500) {
		snprintf(why, whylen, "days out of range");
		goto refused;
	}
	if ((r = tca_map_get_text(args, "otp", otp, sizeof(otp))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND)
		goto refused;
	r = tca_engine_issue(ctx->engine, tenant, device_id, csr, csr_len, current,
	    current_len, (unsigned int)days, otp[0] != '\0' ? otp : NULL, &ctx->who, &is,
	    why, whylen);
	OPENSSL_cleanse(otp, sizeof(otp));
	if (r != TCA_OK)
		return r;
	*result = issued_map(&is);
	tca_issued_clear(&is);
	return *result != NULL ? TCA_OK : TCA_ERR_NOMEM;
 refused:
	OPENSSL_cleanse(otp, sizeof(otp));
	tca_engine_count_refused(ctx->engine);
	return TCA_ERR_BAD_REQUEST;
}

static int
op_issue(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	return do_issue_common(ctx, args, 0, result, why, whylen);
}

static int
op_reenroll(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	return do_issue_common(ctx, args, 1, result, why, whylen);
}

static int
add_der(void *vctx, const unsigned char *der, size_t len)
{
	cbor_item_t *arr = vctx, *b;

	if ((b = cbor_build_bytestring(der, len)) == NULL)
		return TCA_ERR_NOMEM;
	if (!cbor_array_push(arr, b)) {
		cbor_decref(&b);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&b);
	return TCA_OK;
}

static int
op_cacerts(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	cbor_item_t *arr = NULL, *m = NULL;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((arr = cbor_new_definite_array(2)) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = tca_engine_cacerts(ctx->engine, tenant, add_der, arr, why, whylen)) != TCA_OK)
		goto out;
	if ((m = cbor_new_definite_map(1)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_map_add_item(m, "certificates", arr)) != TCA_OK)
		goto out;
	arr = NULL;
	*result = m;
	m = NULL;
 out:
	if (arr != NULL)
		cbor_decref(&arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

/* status: CAs whose renewal or CRL re-signing is failing, for a UI banner
 * (first 100 of each) */
struct banner {
	cbor_item_t *arr, *crl_arr;
	size_t count, crl_count;
};

static int
crl_banner(struct banner *bn, const struct tca_ca_brief *b)
{
	cbor_item_t *m;

	bn->crl_count++;
	if (cbor_array_size(bn->crl_arr) >= 100)
		return 0;
	if ((m = cbor_new_definite_map(5)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", b->tenant) != TCA_OK ||
	    tca_map_add_text(m, "reason", b->crl.reason) != TCA_OK ||
	    tca_map_add_uint(m, "attempts", b->crl.attempts) != TCA_OK ||
	    tca_map_add_int(m, "next_update", b->crl_next_update) != TCA_OK ||
	    tca_map_add_int(m, "next_retry_at", b->crl.next_retry) != TCA_OK ||
	    !cbor_array_push(bn->crl_arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	return 0;
}

static int
banner_cb(void *vctx, const struct tca_ca_brief *b)
{
	struct banner *bn = vctx;
	cbor_item_t *m;
	int r;

	if (b->crl.failed && (r = crl_banner(bn, b)) != 0)
		return r;
	if (!b->renewal.failed)
		return 0;
	bn->count++;
	if (cbor_array_size(bn->arr) >= 100)
		return 0;
	if ((m = cbor_new_definite_map(5)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", b->tenant) != TCA_OK ||
	    tca_map_add_text(m, "reason", b->renewal.reason) != TCA_OK ||
	    tca_map_add_uint(m, "attempts", b->renewal.attempts) != TCA_OK ||
	    tca_map_add_int(m, "not_after", b->not_after) != TCA_OK ||
	    tca_map_add_int(m, "next_retry_at", b->renewal.next_retry) != TCA_OK ||
	    !cbor_array_push(bn->arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	return 0;
}

/* "key_types": [{"type": "ec-p256", "mechanism": "CKM_ECDSA"}, ...], what the
 * token can generate and sign with, discovered from its mechanism list */
static int
add_key_types(cbor_item_t *m, tca_token *tok)
{
	const char *mechs[TCA_KEY_TYPE_COUNT + 1];
	const struct tca_key_desc *kd;
	cbor_item_t *arr = NULL, *one = NULL;
	unsigned int mask = tca_token_key_types(tok, mechs);
	size_t i, n = 0;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++)
		n += (mask & (1u << kd->type)) != 0;
	if ((arr = cbor_new_definite_array(n)) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (!(mask & (1u << kd->type)))
			continue;
		if ((one = cbor_new_definite_map(2)) == NULL ||
		    tca_map_add_text(one, "type", kd->name) != TCA_OK ||
		    tca_map_add_text(one, "mechanism", mechs[kd->type]) != TCA_OK ||
		    !cbor_array_push(arr, one)) {
			cbor_decref(&one);
			cbor_decref(&arr);
			return TCA_ERR_NOMEM;
		}
		cbor_decref(&one);
	}
	if (tca_map_add_item(m, "key_types", arr) != TCA_OK) {
		cbor_decref(&arr);	/* not taken over on failure */
		return TCA_ERR_NOMEM;
	}
	return TCA_OK;
}

static int
op_status(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	struct tca_token_status ts;
	struct tca_engine_status es;
	unsigned long long commits = 0, changes = 0, failures = 0;
	char store_why[PATH_MAX + 200] = "";
	int store_ok;
	cbor_item_t *m = NULL, *tok = NULL, *store = NULL, *ten = NULL, *certs = NULL;
	cbor_item_t *sched = NULL;
	struct tca_cert_counts counts;
	struct banner bn;
	int r = TCA_ERR_NOMEM;

	memset(&bn, 0, sizeof(bn));
	memset(&counts, 0, sizeof(counts));

	memset(&ts, 0, sizeof(ts));
	if ((r = tca_token_get_status(ctx->tok, &ts)) != TCA_OK) {
		snprintf(why, whylen, "token status unavailable");
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	tca_engine_status(ctx->engine, &es);
	tca_committer_stats(ctx->cm, &commits, &changes, &failures);
	store_ok = ctx->st->ops->health == NULL ||
	    ctx->st->ops->health(ctx->st, store_why, sizeof(store_why)) == TCA_OK;
	r = TCA_ERR_NOMEM;
	if ((bn.arr = cbor_new_definite_array(100)) == NULL ||
	    (bn.crl_arr = cbor_new_definite_array(100)) == NULL ||
	    tca_engine_foreach_brief(ctx->engine, banner_cb, &bn) != TCA_OK)
		goto out;
	if (tca_engine_cert_counts(ctx->engine, &counts) != TCA_OK)
		log_warn("status: certificate counts unavailable");
	if ((m = cbor_new_definite_map(14)) == NULL ||
	    (sched = cbor_new_definite_map(1)) == NULL ||
	    (tok = cbor_new_definite_map(23)) == NULL ||
	    (store = cbor_new_definite_map(10)) == NULL ||
	    (ten = cbor_new_definite_map(7)) == NULL ||
	    (certs = cbor_new_definite_map(3)) == NULL)
		goto out;
	if (tca_map_add_text(tok, "label", ts.label) != TCA_OK ||
	    tca_map_add_text(tok, "manufacturer", ts.manufacturer) != TCA_OK ||
	    tca_map_add_text(tok, "model", ts.model) != TCA_OK ||
	    tca_map_add_text(tok, "serial", ts.serial) != TCA_OK ||
	    tca_map_add_uint(tok, "slot", ts.slot_id) != TCA_OK ||
	    tca_map_add_uint(tok, "pool_size", ts.pool_size) != TCA_OK ||
	    tca_map_add_uint(tok, "sessions_busy", ts.sessions_busy) != TCA_OK ||
	    tca_map_add_uint(tok, "keys", ts.keys) != TCA_OK ||
	    tca_map_add_uint(tok, "signatures", ts.signatures) != TCA_OK ||
	    tca_map_add_uint(tok, "sign_errors", ts.sign_errors) != TCA_OK ||
	    tca_map_add_text(tok, "health", ts.health) != TCA_OK ||
	    add_key_types(tok, ctx->tok) != TCA_OK ||
	    tca_map_add_uint(tok, "recoveries", ts.recoveries) != TCA_OK ||
	    tca_map_add_uint(tok, "relogins", ts.relogins) != TCA_OK ||
	    tca_map_add_uint(tok, "key_refreshes", ts.refreshes) != TCA_OK ||
	    tca_map_add_uint(tok, "sessions_replaced", ts.sessions_replaced) != TCA_OK ||
	    tca_map_add_text(tok, "problem", ts.problem) != TCA_OK ||
	    tca_map_add_uint(tok, "problem_time", (uint64_t)ts.problem_time) != TCA_OK ||
	    tca_map_add_text(tok, "last_error", ts.last_error) != TCA_OK ||
	    tca_map_add_uint(tok, "last_error_time", (uint64_t)ts.last_error_time) != TCA_OK ||
	    tca_map_add_text(tok, "isolation", ts.isolation) != TCA_OK ||
	    tca_map_add_uint(tok, "helper_restarts", ts.helper_restarts) != TCA_OK ||
	    tca_map_add_uint(tok, "helper_pid", ts.helper_pid > 0 ? (uint64_t)ts.helper_pid : 0) != TCA_OK ||
	    tca_map_add_text(store, "backend", ctx->st->ops->name) != TCA_OK ||
	    tca_map_add_text(store, "uri", ctx->store_name != NULL ?
	    ctx->store_name : "") != TCA_OK ||
	    tca_map_add_uint(store, "commits", commits) != TCA_OK ||
	    tca_map_add_uint(store, "changes", changes) != TCA_OK ||
	    tca_map_add_uint(store, "failures", failures) != TCA_OK ||
	    tca_map_add_text(store, "health", store_ok ? "ok" :
	    strcmp(ctx->st->ops->name, "sqlite") == 0 ? "lost" : "unavailable") != TCA_OK ||
	    tca_map_add_text(store, "problem", store_why) != TCA_OK ||
	    tca_map_add_text(store, "node", tca_engine_node_id(ctx->engine)) != TCA_OK ||
	    tca_map_add_text(store, "sync", es.sync) != TCA_OK ||
	    tca_map_add_uint(store, "synced_seq", (uint64_t)es.synced_seq) != TCA_OK ||
	    tca_map_add_uint(ten, "active", es.active_cas) != TCA_OK ||
	    tca_map_add_uint(ten, "missing_keys", es.missing_keys) != TCA_OK ||
	    tca_map_add_uint(ten, "orphan_keys", es.orphan_keys) != TCA_OK ||
	    tca_map_add_uint(ten, "renewal_failed", bn.count) != TCA_OK ||
	    tca_map_add_uint(ten, "crl_failed", bn.crl_count) != TCA_OK ||
	    tca_map_add_uint(ten, "expired", es.expired) != TCA_OK ||
	    tca_map_add_uint(ten, "expiring", es.expiring) != TCA_OK ||
	    tca_map_add_uint(certs, "valid", counts.valid) != TCA_OK ||
	    tca_map_add_uint(certs, "revoked", counts.revoked) != TCA_OK ||
	    tca_map_add_uint(certs, "expired", counts.expired) != TCA_OK ||
	    tca_map_add_text(sched, "role", tca_renewal_role(ctx->renewal)) != TCA_OK)
		goto out;
	if (tca_map_add_text(m, "version", PACKAGE_VERSION) != TCA_OK ||
	    tca_map_add_uint(m, "proto_min", TCA_PROTO_VERSION_MIN) != TCA_OK ||
	    tca_map_add_uint(m, "proto_max", TCA_PROTO_VERSION_MAX) != TCA_OK ||
	    tca_map_add_text(m, "role", tca_role_name(ctx->role)) != TCA_OK ||
	    tca_map_add_uint(m, "uptime_s", (uint64_t)(time(NULL) - es.started)) != TCA_OK ||
	    tca_map_add_uint(m, "issued", es.issued) != TCA_OK ||
	    tca_map_add_uint(m, "refused", es.refused) != TCA_OK)
		goto out;
	if (tca_map_add_item(m, "token", tok) != TCA_OK)
		goto out;
	tok = NULL;
	if (tca_map_add_item(m, "store", store) != TCA_OK)
		goto out;
	store = NULL;
	if (tca_map_add_item(m, "tenants", ten) != TCA_OK)
		goto out;
	ten = NULL;
	if (tca_map_add_item(m, "renewal_failed", bn.arr) != TCA_OK)
		goto out;
	bn.arr = NULL;
	if (tca_map_add_item(m, "certificates", certs) != TCA_OK)
		goto out;
	certs = NULL;
	if (tca_map_add_item(m, "crl_failed", bn.crl_arr) != TCA_OK)
		goto out;
	bn.crl_arr = NULL;
	if (tca_map_add_item(m, "schedule", sched) != TCA_OK)
		goto out;
	sched = NULL;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (m != NULL)
		cbor_decref(&m);
	if (tok != NULL)
		cbor_decref(&tok);
	if (store != NULL)
		cbor_decref(&store);
	if (ten != NULL)
		cbor_decref(&ten);
	if (sched != NULL)
		cbor_decref(&sched);
	if (bn.arr != NULL)
		cbor_decref(&bn.arr);
	if (bn.crl_arr != NULL)
		cbor_decref(&bn.crl_arr);
	if (certs != NULL)
		cbor_decref(&certs);
	return r;
}

static int
op_ca_create(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], key_type[17] = "";
	struct tca_ca_desc d;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_map_get_text(args, "key_type", key_type, sizeof(key_type))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_ca_create(ctx->engine, tenant, key_type, &ctx->who, &d,
	    why, whylen)) != TCA_OK)
		return r;
	*result = ca_map(&d, 1);
	tca_ca_desc_clear(&d);
	return *result != NULL ? TCA_OK : TCA_ERR_NOMEM;
}

static int
op_ca_show(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	struct tca_ca_desc d;
	int previous = 0, r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    ((r = tca_map_get_bool(args, "previous", &previous)) != TCA_OK && r != TCA_ERR_NOT_FOUND))
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_ca_show(ctx->engine, tenant, previous, &d, why, whylen)) != TCA_OK)
		return r;
	*result = ca_map(&d, 1);
	tca_ca_desc_clear(&d);
	return *result != NULL ? TCA_OK : TCA_ERR_NOMEM;
}

struct page {
	cbor_item_t *arr;
	char after[TCA_TENANT_MAX + 1];
	char last[TCA_TENANT_MAX + 1];
	size_t limit;
	int more;
};

static int
list_cb(void *vctx, const struct tca_ca_desc *d)
{
	struct page *pg = vctx;
	cbor_item_t *m;

	/* the store lists by tenant then CA id; a page resumes after `after` */
	if (pg->after[0] != '\0' && strcmp(d->tenant, pg->after) <= 0)
		return 0;
	if (cbor_array_size(pg->arr) >= pg->limit) {
		/* stop only between tenants so a tenant's rows stay on one page */
		if (strcmp(d->tenant, pg->last) != 0) {
			pg->more = 1;
			return 1;
		}
	}
	if ((m = ca_map(d, 0)) == NULL)
		return TCA_ERR_NOMEM;
	if (!cbor_array_push(pg->arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	snprintf(pg->last, sizeof(pg->last), "%s", d->tenant);
	return 0;
}

static int
op_ca_list(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	struct page pg;
	cbor_item_t *m = NULL;
	uint64_t limit = LIST_PAGE_DEFAULT, v = 0;
	int all = 0, r;

	memset(&pg, 0, sizeof(pg));
	if (((r = tca_map_get_bool(args, "all", &all)) != TCA_OK && r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_text(args, "after", pg.after, sizeof(pg.after))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_uint(args, "limit", &v)) != TCA_OK && r != TCA_ERR_NOT_FOUND))
		return TCA_ERR_BAD_REQUEST;
	if (r == TCA_OK)
		limit = v;
	if (limit == 0 || limit > LIST_PAGE_MAX) {
		snprintf(why, whylen, "limit must be 1..%d", LIST_PAGE_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	pg.limit = (size_t)limit;
	/* one extra slot: a tenant's deleted rows may overflow the page */
	if ((pg.arr = cbor_new_definite_array(pg.limit + 64)) == NULL)
		return TCA_ERR_NOMEM;
	r = tca_engine_ca_list(ctx->engine, all, list_cb, &pg);
	if (r == 1 && pg.more)
		r = TCA_OK;
	if (r != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(pg.more ? 2 : 1)) == NULL)
		goto out;
	if (tca_map_add_item(m, "cas", pg.arr) != TCA_OK)
		goto out;
	pg.arr = NULL;
	if (pg.more && tca_map_add_text(m, "next", pg.last) != TCA_OK)
		goto out;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (pg.arr != NULL)
		cbor_decref(&pg.arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

static int
op_ca_delete(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	unsigned long destroyed = 0;
	cbor_item_t *m;
	int confirm = 0, r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_bool(args, "confirm", &confirm) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if (!confirm) {
		snprintf(why, whylen, "deleting a CA destroys its key: confirm must be true");
		return TCA_ERR_BAD_REQUEST;
	}
	if ((r = tca_engine_ca_delete(ctx->engine, tenant, &ctx->who, &destroyed,
	    why, whylen)) != TCA_OK)
		return r;
	if ((m = cbor_new_definite_map(3)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    tca_map_add_text(m, "status", "deleted") != TCA_OK ||
	    tca_map_add_uint(m, "token_objects_destroyed", destroyed) != TCA_OK) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	*result = m;
	return TCA_OK;
}

static int
op_reload(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char what[512] = "", *item, *save = NULL;
	cbor_item_t *m = NULL, *arr = NULL, *s;
	int r;

	if (ctx->reload == NULL) {
		snprintf(why, whylen, "reload is not available");
		return TCA_ERR_INTERNAL;
	}
	if ((r = ctx->reload(ctx->reload_ctx, what, sizeof(what), why, whylen)) != TCA_OK)
		return r == TCA_ERR_CONFIG ? TCA_ERR_BAD_REQUEST : r;
	r = TCA_ERR_NOMEM;
	if ((arr = cbor_new_definite_array(16)) == NULL)
		goto out;
	for (item = strtok_r(what, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		if ((s = cbor_build_string(item)) == NULL)
			goto out;
		if (!cbor_array_push(arr, s)) {
			cbor_decref(&s);
			goto out;
		}
		cbor_decref(&s);
	}
	if ((m = cbor_new_definite_map(1)) == NULL || tca_map_add_item(m, "reloaded", arr) != TCA_OK)
		goto out;
	arr = NULL;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (arr != NULL)
		cbor_decref(&arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

/* ---- ca.reissue */

struct reissue_ctx {
	struct tca_rpc_ctx *rpc;
	cbor_item_t *arr;
	int dry_run, with_diff;
	size_t failed;
};

static cbor_item_t *
reissue_map(const struct tca_reissue_result *res, int with_diff)
{
	cbor_item_t *m = cbor_new_definite_map(with_diff ? 9 : 8), *diff = NULL, *dm;
	size_t i, n = res->n_diff < 8 ? res->n_diff : 8;

	if (m == NULL)
		return NULL;
	if (tca_map_add_text(m, "tenant", res->tenant) != TCA_OK ||
	    tca_map_add_bool(m, "ok", 1) != TCA_OK ||
	    tca_map_add_text(m, "old_fingerprint", res->old_fingerprint) != TCA_OK ||
	    tca_map_add_text(m, "new_fingerprint", res->new_fingerprint) != TCA_OK ||
	    tca_map_add_text(m, "old_serial", res->old_serial) != TCA_OK ||
	    tca_map_add_text(m, "new_serial", res->new_serial) != TCA_OK ||
	    tca_map_add_int(m, "not_before", res->not_before) != TCA_OK ||
	    tca_map_add_int(m, "not_after", res->not_after) != TCA_OK)
		goto fail;
	if (with_diff) {
		if ((diff = cbor_new_definite_array(n)) == NULL)
			goto fail;
		for (i = 0; i < n; i++) {
			if ((dm = cbor_new_definite_map(3)) == NULL)
				goto fail;
			if (tca_map_add_text(dm, "field", res->diff[i].field) != TCA_OK ||
			    tca_map_add_text(dm, "old", res->diff[i].old_value) != TCA_OK ||
			    tca_map_add_text(dm, "new", res->diff[i].new_value) != TCA_OK ||
			    !cbor_array_push(diff, dm)) {
				cbor_decref(&dm);
				goto fail;
			}
			cbor_decref(&dm);
		}
		if (tca_map_add_item(m, "diff", diff) != TCA_OK)
			goto fail;
		diff = NULL;
	}
	return m;
 fail:
	if (diff != NULL)
		cbor_decref(&diff);
	cbor_decref(&m);
	return NULL;
}

static int
reissue_one(void *vctx, const struct tca_ca_brief *b)
{
	struct reissue_ctx *rc = vctx;
	struct tca_reissue_result res;
	struct tca_due due;
	char why[512] = "";
	cbor_item_t *m = NULL;
	time_t now = tca_engine_now(rc->rpc->engine), nb = now;
	int r;

	/* the same code path as the scheduler: a CA that is due gets the
	 * scheduled instant as notBefore; forcing one that is not due uses now */
	if (tca_schedule_due(&rc->rpc->schedule, b->not_before, now, &due) == TCA_OK && due.due_now)
		nb = due.not_before;
	r = tca_engine_ca_reissue(rc->rpc->engine, b->tenant, nb, rc->rpc->serial_mode,
	    rc->dry_run, &rc->rpc->who, &res, why, sizeof(why));
	if (r == TCA_OK) {
		m = reissue_map(&res, rc->with_diff);
	} else {
		rc->failed++;
		if ((m = cbor_new_definite_map(4)) != NULL &&
		    (tca_map_add_text(m, "tenant", b->tenant) != TCA_OK ||
		    tca_map_add_bool(m, "ok", 0) != TCA_OK ||
		    tca_map_add_text(m, "code", tca_err_wire_code(r)) != TCA_OK ||
		    tca_map_add_text(m, "message", why[0] != '\0' ? why : tca_strerror(r)) != TCA_OK))
			cbor_decref(&m);
	}
	if (m == NULL)
		return TCA_ERR_NOMEM;
	if (!cbor_array_push(rc->arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	return TCA_OK;
}

static int
op_ca_reissue(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1] = "";
	struct reissue_ctx rc;
	struct tca_ca_desc d;
	struct tca_engine_status es;
	struct tca_ca_brief b;
	cbor_item_t *m = NULL;
	int all = 0, r, rt;

	memset(&rc, 0, sizeof(rc));
	rc.rpc = ctx;
	rt = tca_map_get_text(args, "tenant", tenant, sizeof(tenant));
	if ((rt != TCA_OK && rt != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_bool(args, "all", &all)) != TCA_OK && r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_bool(args, "dry_run", &rc.dry_run)) != TCA_OK && r != TCA_ERR_NOT_FOUND))
		return TCA_ERR_BAD_REQUEST;
	if ((rt == TCA_OK) == (all != 0)) {
		snprintf(why, whylen, "give either tenant or all = true");
		return TCA_ERR_BAD_REQUEST;
	}
	tca_engine_status(ctx->engine, &es);
	if ((rc.arr = cbor_new_definite_array(all ? es.active_cas + 16 : 1)) == NULL)
		return TCA_ERR_NOMEM;
	if (all) {
		/* results only: a field diff per tenant would not fit a frame at 10k tenants */
		rc.with_diff = rc.dry_run;
		r = tca_engine_foreach_brief(ctx->engine, reissue_one, &rc);
	} else {
		rc.with_diff = 1;
		if ((r = tca_engine_ca_show(ctx->engine, tenant, 0, &d, why, whylen)) != TCA_OK)
			goto out;
		memset(&b, 0, sizeof(b));
		snprintf(b.tenant, sizeof(b.tenant), "%s", tenant);
		b.not_before = d.not_before;
		tca_ca_desc_clear(&d);
		r = reissue_one(&rc, &b);
		if (r == TCA_OK && rc.failed) {
			/* one tenant: its error is the op's error */
			cbor_item_t *res0 = cbor_array_get(rc.arr, 0);
			char code[32] = "", msg[512] = "";

			(void)tca_map_get_text(res0, "code", code, sizeof(code));
			(void)tca_map_get_text(res0, "message", msg, sizeof(msg));
			cbor_decref(&res0);
			snprintf(why, whylen, "%s", msg);
			r = tca_err_from_wire_code(code);
			goto out;
		}
	}
	if (r != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(3)) == NULL ||
	    tca_map_add_bool(m, "dry_run", rc.dry_run) != TCA_OK ||
	    tca_map_add_uint(m, "failed", rc.failed) != TCA_OK ||
	    tca_map_add_item(m, "results", rc.arr) != TCA_OK)
		goto out;
	rc.arr = NULL;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (rc.arr != NULL)
		cbor_decref(&rc.arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

/* ---- revocation, CRLs, OCSP, inventory */

static int
reason_arg(const cbor_item_t *args, int *reason, char *why, size_t whylen)
{
	char name[33] = "";
	int r;

	*reason = TCA_REASON_UNSPECIFIED;
	if ((r = tca_map_get_text(args, "reason", name, sizeof(name))) == TCA_ERR_NOT_FOUND)
		return TCA_OK;
	if (r != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	return tca_crl_reason_parse(name, reason, why, whylen);
}

/* number, this_update, next_update, entries: a CRL as the results show it */
static int
crl_fields(cbor_item_t *m, uint64_t number, int64_t this_update, int64_t next_update,
    uint64_t entries)
{
	if (tca_map_add_uint(m, "number", number) != TCA_OK ||
	    tca_map_add_int(m, "this_update", this_update) != TCA_OK ||
	    tca_map_add_int(m, "next_update", next_update) != TCA_OK ||
	    tca_map_add_uint(m, "entries", entries) != TCA_OK)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

/* "crl": the CRL signed after a revocation, or "crl_error" */
static int
add_crl_info(cbor_item_t *m, const struct tca_crl_published *ci, const char *crl_why)
{
	cbor_item_t *c;

	if (ci->number == 0)
		return crl_why[0] != '\0' ? tca_map_add_text(m, "crl_error", crl_why) : TCA_OK;
	if ((c = cbor_new_definite_map(4)) == NULL)
		return TCA_ERR_NOMEM;
	if (crl_fields(c, ci->number, ci->this_update, ci->next_update, ci->entries) != TCA_OK ||
	    tca_map_add_item(m, "crl", c) != TCA_OK) {
		cbor_decref(&c);
		return TCA_ERR_NOMEM;
	}
	return TCA_OK;
}

static int
add_revoked_fields(cbor_item_t *m, const struct tca_revoked *rv)
{
	const char *rn = tca_crl_reason_name(rv->reason);

	if (tca_map_add_text(m, "serial", rv->serial_hex) != TCA_OK ||
	    tca_map_add_text(m, "subject", rv->subject) != TCA_OK ||
	    tca_map_add_int(m, "revoked_at", rv->revoked_at) != TCA_OK ||
	    tca_map_add_text(m, "reason", rn != NULL ? rn : "unspecified") != TCA_OK ||
	    tca_map_add_int(m, "not_after", rv->not_after) != TCA_OK ||
	    tca_map_add_bool(m, "already", rv->already) != TCA_OK)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

static int
op_cert_revoke(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], serial[65], crl_why[256] = "";
	struct tca_crl_published ci;
	struct tca_revoked rv;
	cbor_item_t *m;
	int reason, r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_text(args, "serial", serial, sizeof(serial)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = reason_arg(args, &reason, why, whylen)) != TCA_OK)
		return r;
	if ((r = tca_engine_revoke(ctx->engine, tenant, serial, reason, &ctx->who, &rv,
	    &ci, crl_why, sizeof(crl_why), why, whylen)) != TCA_OK)
		return r;
	if ((m = cbor_new_definite_map(9)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    add_revoked_fields(m, &rv) != TCA_OK ||
	    add_crl_info(m, &ci, crl_why) != TCA_OK) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	*result = m;
	return TCA_OK;
}

static int
revoked_push(void *vctx, const struct tca_revoked *rv)
{
	cbor_item_t *arr = vctx, *m;

	if ((m = cbor_new_definite_map(6)) == NULL)
		return TCA_ERR_NOMEM;
	if (add_revoked_fields(m, rv) != TCA_OK || !cbor_array_push(arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	return TCA_OK;
}

/* The wire takes definite lengths only: a copy of the indefinite array *arr
 * as a definite one replaces it. */
static int
array_make_definite(cbor_item_t **arr)
{
	cbor_item_t *d, *it;
	size_t i, n = cbor_array_size(*arr);

	if ((d = cbor_new_definite_array(n)) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		it = cbor_array_get(*arr, i);
		if (!cbor_array_push(d, it)) {
			cbor_decref(&it);
			cbor_decref(&d);
			return TCA_ERR_NOMEM;
		}
		cbor_decref(&it);
	}
	cbor_decref(arr);
	*arr = d;
	return TCA_OK;
}

static int
op_cert_revoke_device(struct tca_rpc_ctx *ctx, const cbor_item_t *args,
    cbor_item_t **result, char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], device_id[257], crl_why[256] = "";
	struct tca_crl_published ci;
	cbor_item_t *m = NULL, *arr = NULL;
	int reason, r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_text(args, "device_id", device_id, sizeof(device_id)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = reason_arg(args, &reason, why, whylen)) != TCA_OK)
		return r;
	if ((arr = cbor_new_indefinite_array()) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = tca_engine_revoke_device(ctx->engine, tenant, device_id, reason, &ctx->who,
	    revoked_push, arr, &ci, crl_why, sizeof(crl_why), why, whylen)) != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if (array_make_definite(&arr) != TCA_OK ||
	    (m = cbor_new_definite_map(5)) == NULL ||
	    tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    tca_map_add_text(m, "device_id", device_id) != TCA_OK ||
	    add_crl_info(m, &ci, crl_why) != TCA_OK)
		goto out;
	if (tca_map_add_item(m, "revoked", arr) != TCA_OK)
		goto out;
	arr = NULL;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (arr != NULL)
		cbor_decref(&arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

static const char *
cert_status_name(const struct tca_cert_row *row, int64_t now)
{
	return row->revoked ? "revoked" : row->not_after < now ? "expired" : "valid";
}

static int
cert_fields(cbor_item_t *m, const struct tca_cert_row *row, int64_t now)
{
	const char *rn = tca_crl_reason_name(row->reason);

	if (tca_map_add_text(m, "serial", row->serial_hex) != TCA_OK ||
	    tca_map_add_text(m, "device_id", row->device_id) != TCA_OK ||
	    tca_map_add_text(m, "subject", row->subject) != TCA_OK ||
	    tca_map_add_text(m, "status", cert_status_name(row, now)) != TCA_OK ||
	    tca_map_add_int(m, "not_before", row->not_before) != TCA_OK ||
	    tca_map_add_int(m, "not_after", row->not_after) != TCA_OK ||
	    tca_map_add_int(m, "issued_at", row->issued_at) != TCA_OK ||
	    tca_map_add_text(m, "fingerprint", row->fingerprint_hex) != TCA_OK ||
	    (row->revoked &&
	    (tca_map_add_int(m, "revoked_at", row->revoked_at) != TCA_OK ||
	    tca_map_add_text(m, "reason", rn != NULL ? rn : "unspecified") != TCA_OK)))
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

struct cert_page {
	cbor_item_t *arr;
	int64_t now, last_id;
	size_t n, limit;
	int more;
};

static int
cert_page_cb(void *vctx, const struct tca_cert_row *row)
{
	struct cert_page *pg = vctx;
	cbor_item_t *m;

	if (pg->n == pg->limit) {
		/* the store was asked for one row more than the page holds */
		pg->more = 1;
		return 1;
	}
	if ((m = cbor_new_definite_map(row->revoked ? 10 : 8)) == NULL)
		return TCA_ERR_NOMEM;
	if (cert_fields(m, row, pg->now) != TCA_OK || !cbor_array_push(pg->arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	pg->last_id = row->cert_id;
	pg->n++;
	return 0;
}

static int
op_cert_list(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], device_id[257], status[17] = "", after[21] = "";
	char next[24], *end;
	struct tca_cert_query q;
	struct cert_page pg;
	cbor_item_t *m = NULL;
	uint64_t limit = LIST_PAGE_DEFAULT, v = 0;
	int has_device, r;

	memset(&q, 0, sizeof(q));
	memset(&pg, 0, sizeof(pg));
	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_map_get_text(args, "device_id", device_id, sizeof(device_id))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND)
		return TCA_ERR_BAD_REQUEST;
	has_device = r == TCA_OK;
	if (((r = tca_map_get_text(args, "status", status, sizeof(status))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_text(args, "after", after, sizeof(after))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_uint(args, "limit", &v)) != TCA_OK && r != TCA_ERR_NOT_FOUND))
		return TCA_ERR_BAD_REQUEST;
	if (r == TCA_OK)
		limit = v;
	if (limit == 0 || limit > LIST_PAGE_MAX) {
		snprintf(why, whylen, "limit must be 1..%d", LIST_PAGE_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	if (status[0] == '\0')
		q.state = TCA_CERT_ANY;
	else if (strcmp(status, "valid") == 0)
		q.state = TCA_CERT_VALID;
	else if (strcmp(status, "revoked") == 0)
		q.state = TCA_CERT_REVOKED;
	else if (strcmp(status, "expired") == 0)
		q.state = TCA_CERT_EXPIRED;
	else {
		snprintf(why, whylen, "status must be valid, revoked or expired");
		return TCA_ERR_BAD_REQUEST;
	}
	if (after[0] != '\0') {
		errno = 0;
		q.after_cert_id = strtoll(after, &end, 10);
		if (errno != 0 || *end != '\0' || q.after_cert_id < 0 || after[0] == '-' ||
		    after[0] == '+') {
			snprintf(why, whylen, "after must be the \"next\" of an earlier page");
			return TCA_ERR_BAD_REQUEST;
		}
	}
	q.tenant = tenant;
	q.device_id = has_device ? device_id : NULL;
	q.limit = (size_t)limit + 1;	/* one more tells whether there is a next page */
	pg.limit = (size_t)limit;
	if ((pg.arr = cbor_new_definite_array((size_t)limit)) == NULL)
		return TCA_ERR_NOMEM;
	pg.now = tca_engine_now(ctx->engine);
	r = tca_engine_cert_list(ctx->engine, &q, cert_page_cb, &pg, why, whylen);
	if (r == 1 && pg.more)
		r = TCA_OK;
	if (r != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(pg.more ? 2 : 1)) == NULL)
		goto out;
	if (tca_map_add_item(m, "certificates", pg.arr) != TCA_OK)
		goto out;
	pg.arr = NULL;
	if (pg.more) {
		snprintf(next, sizeof(next), "%lld", (long long)pg.last_id);
		if (tca_map_add_text(m, "next", next) != TCA_OK)
			goto out;
	}
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (pg.arr != NULL)
		cbor_decref(&pg.arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

static int
op_cert_show(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], serial[65];
	struct tca_cert_row row;
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_text(args, "serial", serial, sizeof(serial)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_cert_show(ctx->engine, tenant, serial, &row, why, whylen)) != TCA_OK)
		return r;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(row.revoked ? 11 : 9)) != NULL) {
		if (cert_fields(m, &row, tca_engine_now(ctx->engine)) == TCA_OK &&
		    tca_map_add_bytes(m, "certificate", row.der, row.der_len) == TCA_OK) {
			*result = m;
			r = TCA_OK;
		} else
			cbor_decref(&m);
	}
	tca_cert_row_clear(&row);
	return r;
}

static int
op_crl(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	struct tca_crl_row row;
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_crl_get(ctx->engine, tenant, &row, why, whylen)) != TCA_OK)
		return r;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(5)) != NULL) {
		if (tca_map_add_bytes(m, "crl", row.der, row.der_len) == TCA_OK &&
		    crl_fields(m, row.crl_number, row.this_update, row.next_update,
		    row.entries) == TCA_OK) {
			*result = m;
			r = TCA_OK;
		} else
			cbor_decref(&m);
	}
	tca_crl_row_clear(&row);
	return r;
}

static int
op_crl_sign(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	struct tca_crl_published ci;
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_engine_crl_sign(ctx->engine, tenant, &ctx->who, &ci, why, whylen)) != TCA_OK)
		return r;
	if ((m = cbor_new_definite_map(5)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    crl_fields(m, ci.number, ci.this_update, ci.next_update, ci.entries) != TCA_OK) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	*result = m;
	return TCA_OK;
}

static int
op_ocsp(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	const unsigned char *req;
	unsigned char *resp = NULL;
	const char *status = "";
	size_t req_len, resp_len = 0;
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_bytes(args, "request", &req, &req_len) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_ocsp(ctx->engine, tenant, req, req_len, &resp, &resp_len,
	    &status, why, whylen)) != TCA_OK)
		return r;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(2)) != NULL) {
		if (tca_map_add_bytes(m, "response", resp, resp_len) == TCA_OK &&
		    tca_map_add_text(m, "status", status != NULL ? status : "") == TCA_OK) {
			*result = m;
			r = TCA_OK;
		} else
			cbor_decref(&m);
	}
	free(resp);
	return r;
}

/* ---- each tenant's own policy */

static int
policy_result(const char *tenant, const struct tca_tenant_policy *tp, cbor_item_t **result)
{
	char text[TCA_TENANT_POLICY_TEXT_MAX];
	cbor_item_t *m;

	if (tca_tenant_policy_format(tp, text, sizeof(text)) != TCA_OK)
		return TCA_ERR_INTERNAL;
	if ((m = cbor_new_definite_map(2)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    tca_map_add_text(m, "policy", text) != TCA_OK) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	*result = m;
	return TCA_OK;
}

static int
policy_change(struct tca_rpc_ctx *ctx, const char *tenant, const char *const *set,
    size_t n, cbor_item_t **result, char *why, size_t whylen)
{
	struct tca_tenant_policy tp;
	int r;

	if ((r = tca_engine_policy_set(ctx->engine, tenant, set, n, &ctx->who, &tp,
	    why, whylen)) != TCA_OK)
		return r;
	return policy_result(tenant, &tp, result);
}

static int
op_policy_set(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	const char *set[32];
	char *bufs[32];
	cbor_item_t *arr = tca_map_get(args, "set");
	size_t i, n, l;
	int r = TCA_ERR_NOMEM;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    arr == NULL || (n = cbor_array_size(arr)) > 32)
		return TCA_ERR_BAD_REQUEST;
	memset(bufs, 0, sizeof(bufs));
	/* the schema checked each element: text, UTF-8, no NUL, <= 2048 bytes */
	for (i = 0; i < n; i++) {
		cbor_item_t *it = cbor_array_handle(arr)[i];

		l = cbor_string_length(it);
		if ((bufs[i] = malloc(l + 1)) == NULL)
			goto out;
		memcpy(bufs[i], cbor_string_handle(it), l);
		bufs[i][l] = '\0';
		set[i] = bufs[i];
	}
	r = policy_change(ctx, tenant, set, n, result, why, whylen);
 out:
	for (i = 0; i < n; i++)
		free(bufs[i]);
	return r;
}

static int
op_policy_show(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	struct tca_tenant_policy tp;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_policy_get(ctx->engine, tenant, &tp, why, whylen)) != TCA_OK)
		return r;
	return policy_result(tenant, &tp, result);
}

static int
op_ca_suspend_resume(struct tca_rpc_ctx *ctx, const cbor_item_t *args, int suspend,
    cbor_item_t **result, char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	const char *set[1];

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	set[0] = suspend ? "suspended=true" : "suspended=";
	return policy_change(ctx, tenant, set, 1, result, why, whylen);
}

static int
op_ca_suspend(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	return op_ca_suspend_resume(ctx, args, 1, result, why, whylen);
}

static int
op_ca_resume(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	return op_ca_suspend_resume(ctx, args, 0, result, why, whylen);
}

static int
op_csrattrs(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	unsigned char *der = NULL;
	size_t len = 0;
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_csrattrs(ctx->engine, tenant, &der, &len, why, whylen)) != TCA_OK)
		return r;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(1)) != NULL) {
		if (tca_map_add_bytes(m, "csrattrs", der, len) == TCA_OK) {
			*result = m;
			r = TCA_OK;
		} else
			cbor_decref(&m);
	}
	free(der);
	return r;
}

/* ---- device registration */

static int
op_device_register(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1];
	char (*ids)[257] = NULL, (*otps)[TCA_OTP_MAX + 1] = NULL, (*gen)[24 + 1] = NULL;
	struct tca_device_new *devs = NULL;
	struct tca_policy pol;
	cbor_item_t *arr = tca_map_get(args, "devices"), *m = NULL, *out = NULL, *one;
	uint64_t exp_s = 0;
	int64_t expires_at = 0;
	size_t i, n;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK || arr == NULL)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_map_get_uint(args, "expires_in_s", &exp_s)) == TCA_ERR_NOT_FOUND) {
		tca_engine_get_policy(ctx->engine, &pol);
		exp_s = (uint64_t)pol.otp_expiry_days * 86400;
	} else if (r != TCA_OK || exp_s > (uint64_t)10 * 366 * 86400) {
		snprintf(why, whylen, "expires_in_s must be 0..%d", 10 * 366 * 86400);
		return TCA_ERR_BAD_REQUEST;
	}
	if (exp_s != 0)
		expires_at = (int64_t)tca_engine_now(ctx->engine) + (int64_t)exp_s;
	n = cbor_array_size(arr);	/* the schema bounded it (200) */
	r = TCA_ERR_NOMEM;
	if (n == 0 || (ids = calloc(n, sizeof(*ids))) == NULL ||
	    (otps = calloc(n, sizeof(*otps))) == NULL || (gen = calloc(n, sizeof(*gen))) == NULL ||
	    (devs = calloc(n, sizeof(*devs))) == NULL) {
		if (n == 0) {
			snprintf(why, whylen, "no device given");
			r = TCA_ERR_BAD_REQUEST;
		}
		goto out;
	}
	for (i = 0; i < n; i++) {
		one = cbor_array_handle(arr)[i];
		if (tca_map_get_text(one, "device_id", ids[i], sizeof(ids[i])) != TCA_OK) {
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
		devs[i].device_id = ids[i];
		if ((r = tca_map_get_text(one, "otp", otps[i], sizeof(otps[i]))) == TCA_OK)
			devs[i].otp = otps[i];
		else if (r != TCA_ERR_NOT_FOUND) {
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
	}
	if ((r = tca_engine_device_register(ctx->engine, tenant, devs, n, expires_at, &ctx->who,
	    gen, why, whylen)) != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((out = cbor_new_definite_array(n)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if ((m = cbor_new_definite_map(gen[i][0] != '\0' ? 2 : 1)) == NULL ||
		    tca_map_add_text(m, "device_id", ids[i]) != TCA_OK ||
		    (gen[i][0] != '\0' && tca_map_add_text(m, "otp", gen[i]) != TCA_OK) ||
		    !cbor_array_push(out, m))
			goto out;
		cbor_decref(&m);
	}
	if ((m = cbor_new_definite_map(3)) == NULL ||
	    tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    tca_map_add_int(m, "expires_at", expires_at) != TCA_OK ||
	    tca_map_add_item(m, "registered", out) != TCA_OK)
		goto out;
	out = NULL;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (m != NULL)
		cbor_decref(&m);
	if (out != NULL)
		cbor_decref(&out);
	if (otps != NULL)
		OPENSSL_cleanse(otps, n * sizeof(*otps));
	if (gen != NULL)
		OPENSSL_cleanse(gen, n * sizeof(*gen));
	free(ids);
	free(otps);
	free(gen);
	free(devs);
	return r;
}

static int
op_device_unregister(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], device_id[257];
	cbor_item_t *m;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_text(args, "device_id", device_id, sizeof(device_id)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_device_unregister(ctx->engine, tenant, device_id, &ctx->who,
	    why, whylen)) != TCA_OK)
		return r;
	if ((m = cbor_new_definite_map(2)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_text(m, "tenant", tenant) != TCA_OK ||
	    tca_map_add_text(m, "device_id", device_id) != TCA_OK) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	*result = m;
	return TCA_OK;
}

static cbor_item_t *
device_map(const struct tca_device_row *row, int64_t now)
{
	int used = row->consumed_at != 0;
	cbor_item_t *m = cbor_new_definite_map(used ? 7 : 5);

	if (m == NULL)
		return NULL;
	if (tca_map_add_text(m, "device_id", row->device_id) != TCA_OK ||
	    tca_map_add_text(m, "state", tca_device_state(row, now)) != TCA_OK ||
	    tca_map_add_int(m, "registered_at", row->registered_at) != TCA_OK ||
	    tca_map_add_int(m, "expires_at", row->expires_at) != TCA_OK ||
	    tca_map_add_uint(m, "failures", row->failures) != TCA_OK ||
	    (used && (tca_map_add_int(m, "used_at", row->consumed_at) != TCA_OK ||
	    tca_map_add_text(m, "certificate_serial", row->consumed_serial_hex) != TCA_OK))) {
		cbor_decref(&m);
		return NULL;
	}
	return m;
}

static int
op_device_show(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], device_id[257];
	struct tca_device_row row;
	int r;

	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    tca_map_get_text(args, "device_id", device_id, sizeof(device_id)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_engine_device_show(ctx->engine, tenant, device_id, &row, why,
	    whylen)) != TCA_OK)
		return r;
	*result = device_map(&row, tca_engine_now(ctx->engine));
	return *result != NULL ? TCA_OK : TCA_ERR_NOMEM;
}

struct device_page {
	cbor_item_t *arr;
	int64_t now;
	size_t n, limit;
	int more;
	char last[257];
};

static int
device_page_cb(void *vctx, const struct tca_device_row *row)
{
	struct device_page *pg = vctx;
	cbor_item_t *m;

	if (pg->n == pg->limit) {
		pg->more = 1;
		return 1;
	}
	if ((m = device_map(row, pg->now)) == NULL)
		return TCA_ERR_NOMEM;
	if (!cbor_array_push(pg->arr, m)) {
		cbor_decref(&m);
		return TCA_ERR_NOMEM;
	}
	cbor_decref(&m);
	snprintf(pg->last, sizeof(pg->last), "%s", row->device_id);
	pg->n++;
	return 0;
}

static int
op_device_list(struct tca_rpc_ctx *ctx, const cbor_item_t *args, cbor_item_t **result,
    char *why, size_t whylen)
{
	char tenant[TCA_TENANT_MAX + 1], after[257] = "";
	struct device_page pg;
	cbor_item_t *m = NULL;
	uint64_t limit = LIST_PAGE_DEFAULT, v = 0;
	int r;

	memset(&pg, 0, sizeof(pg));
	if (tca_map_get_text(args, "tenant", tenant, sizeof(tenant)) != TCA_OK ||
	    ((r = tca_map_get_text(args, "after", after, sizeof(after))) != TCA_OK &&
	    r != TCA_ERR_NOT_FOUND) ||
	    ((r = tca_map_get_uint(args, "limit", &v)) != TCA_OK && r != TCA_ERR_NOT_FOUND))
		return TCA_ERR_BAD_REQUEST;
	if (r == TCA_OK)
		limit = v;
	if (limit == 0 || limit > LIST_PAGE_MAX) {
		snprintf(why, whylen, "limit must be 1..%d", LIST_PAGE_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	pg.limit = (size_t)limit;
	pg.now = tca_engine_now(ctx->engine);
	if ((pg.arr = cbor_new_definite_array((size_t)limit)) == NULL)
		return TCA_ERR_NOMEM;
	r = tca_engine_device_list(ctx->engine, tenant, after, (size_t)limit + 1,
	    device_page_cb, &pg, why, whylen);
	if (r == 1 && pg.more)
		r = TCA_OK;
	if (r != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(pg.more ? 2 : 1)) == NULL ||
	    tca_map_add_item(m, "devices", pg.arr) != TCA_OK)
		goto out;
	pg.arr = NULL;
	if (pg.more && tca_map_add_text(m, "next", pg.last) != TCA_OK)
		goto out;
	*result = m;
	m = NULL;
	r = TCA_OK;
 out:
	if (pg.arr != NULL)
		cbor_decref(&pg.arr);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

/* The handlers; names, roles and schemas are in rpc-schema.c. */
static const struct handler {
	const char *op;
	op_fn fn;
} handlers[] = {
	{ TCA_OP_ISSUE, op_issue },
	{ TCA_OP_REENROLL, op_reenroll },
	{ TCA_OP_CACERTS, op_cacerts },
	{ TCA_OP_STATUS, op_status },
	{ TCA_OP_CA_CREATE, op_ca_create },
	{ TCA_OP_CA_SHOW, op_ca_show },
	{ TCA_OP_CA_REISSUE, op_ca_reissue },
	{ TCA_OP_CA_LIST, op_ca_list },
	{ TCA_OP_CA_DELETE, op_ca_delete },
	{ TCA_OP_RELOAD, op_reload },
	{ TCA_OP_CERT_REVOKE, op_cert_revoke },
	{ TCA_OP_CERT_REVOKE_DEVICE, op_cert_revoke_device },
	{ TCA_OP_CERT_LIST, op_cert_list },
	{ TCA_OP_CERT_SHOW, op_cert_show },
	{ TCA_OP_CRL, op_crl },
	{ TCA_OP_CRL_SIGN, op_crl_sign },
	{ TCA_OP_OCSP, op_ocsp },
	{ TCA_OP_POLICY_SET, op_policy_set },
	{ TCA_OP_POLICY_SHOW, op_policy_show },
	{ TCA_OP_CA_SUSPEND, op_ca_suspend },
	{ TCA_OP_CA_RESUME, op_ca_resume },
	{ TCA_OP_CSRATTRS, op_csrattrs },
	{ TCA_OP_DEVICE_REGISTER, op_device_register },
	{ TCA_OP_DEVICE_UNREGISTER, op_device_unregister },
	{ TCA_OP_DEVICE_SHOW, op_device_show },
	{ TCA_OP_DEVICE_LIST, op_device_list },
};
#define N_HANDLERS (sizeof(handlers) / sizeof(handlers[0]))

static op_fn
handler_of(const char *name)
{
	size_t i;

	for (i = 0; i < N_HANDLERS; i++)
		if (strcmp(handlers[i].op, name) == 0)
			return handlers[i].fn;
	return NULL;
}

int
tca_rpc_ops_selfcheck(char *why, size_t whylen)
{
	const struct tca_op_desc *d;
	size_t i;

	for (i = 0; (d = tca_op_at(i)) != NULL; i++) {
		if (handler_of(d->name) == NULL) {
			snprintf(why, whylen, "operation %s has no handler", d->name);
			return TCA_ERR_INTERNAL;
		}
	}
	for (i = 0; i < N_HANDLERS; i++) {
		if (tca_op_find(handlers[i].op) == NULL) {
			snprintf(why, whylen, "handler %s is not in the operation table",
			    handlers[i].op);
			return TCA_ERR_INTERNAL;
		}
	}
	return TCA_OK;
}

int
tca_rpc_handle(struct tca_rpc_ctx *ctx, const unsigned char *frame, size_t len,
    unsigned char **resp_ptr, size_t *resp_len_ptr)
{
	struct tca_request req;
	const struct tca_op_desc *op = NULL;
	op_fn fn = NULL;
	cbor_item_t *result = NULL;
	char why[512] = "";
	int r, handled = 0;

	memset(&req, 0, sizeof(req));
	*resp_ptr = NULL;
	*resp_len_ptr = 0;
	if ((r = tca_request_decode(frame, len, &req, why, sizeof(why))) != TCA_OK)
		goto respond;
	if ((op = tca_op_find(req.op)) == NULL || (fn = handler_of(op->name)) == NULL) {
		snprintf(why, sizeof(why), "unknown operation \"%s\"", req.op);
		r = TCA_ERR_UNKNOWN_OP;
		goto respond;
	}
	if (ctx->role < op->role) {
		snprintf(why, sizeof(why), "operation %s needs the %s role; peer uid %u has %s",
		    op->name, tca_role_name(op->role), (unsigned int)ctx->who.uid,
		    tca_role_name(ctx->role));
		log_warn("refused %s from uid %u pid %d (role %s)", op->name,
		    (unsigned int)ctx->who.uid, (int)ctx->who.pid, tca_role_name(ctx->role));
		r = TCA_ERR_UNAUTHORIZED;
		goto respond;
	}
	if ((r = tca_args_check(req.args, op->args, op->n_args, why, sizeof(why))) != TCA_OK)
		goto respond;
	/* from here on the handler (and the engine) count what they refuse */
	handled = 1;
	r = fn(ctx, req.args, &result, why, sizeof(why));
	if (r != TCA_OK && why[0] == '\0')
		snprintf(why, sizeof(why), "%s", tca_strerror(r));
 respond:
	/* status.refused: every request refused before its handler ran -
	 * undecodable, protocol version, unknown op, role, argument schema -
	 * whatever its op (it may be unknown); NOMEM is the engine's failure */
	if (r != TCA_OK && !handled && r != TCA_ERR_NOMEM && ctx->engine != NULL)
		tca_engine_count_refused(ctx->engine);
	if (r == TCA_OK) {
		r = tca_response_encode_result(req.id, result, resp_ptr, resp_len_ptr);
	} else {
		/* a message may quote what the peer sent (a device id, a policy
		 * value): it goes back, and to the log, with control, format and
		 * separator characters escaped, and always as UTF-8 */
		char safe[sizeof(why) + 64];

		(void)tca_escape((const unsigned char *)why, strlen(why), safe, sizeof(safe));
		if (op != NULL && r != TCA_ERR_UNAUTHORIZED)
			log_debug("%s from uid %u: %s: %s", op->name, (unsigned int)ctx->who.uid,
			    tca_err_wire_code(r), safe);
		r = tca_response_encode_error(req.id, r, safe, resp_ptr, resp_len_ptr);
	}
	if (result != NULL)
		cbor_decref(&result);
	tca_request_clear(&req);
	return r == TCA_OK ? TCA_OK : TCA_ERR_NOMEM;
}
