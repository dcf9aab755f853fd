/* engine.c - tenant CA lifecycle and device issuance (see engine.h). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certs.h"
#include "engine.h"
#include "engine-int.h"
#include "issuer.h"
#include "log.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"

#define CSR_MAX 65536

/* ------------------------------------------------------------ cache */

static uint32_t
hash_tenant(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % N_BUCKETS;
}

void
tca_engine_entry_unref(struct ca_entry *ent)
{
	if (ent == NULL)
		return;
	if (__atomic_sub_fetch(&ent->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	tca_issuer_free(ent->cur);
	tca_issuer_free(ent->prev);
	free(ent->policy);
	free(ent->policy_text);
	free(ent);
}

static struct ca_entry *
cache_get_locked(tca_engine *e, const char *tenant)
{
	struct node *n;

	for (n = e->buckets[hash_tenant(tenant)]; n != NULL; n = n->next)
		if (strcmp(n->ent->tenant, tenant) == 0)
			return n->ent;
	return NULL;
}

/* A referenced entry (caller tca_engine_entry_unref()s) or NULL. */
struct ca_entry *
tca_engine_cache_get(tca_engine *e, const char *tenant)
{
	struct ca_entry *ent;

	pthread_rwlock_rdlock(&e->lock);
	if ((ent = cache_get_locked(e, tenant)) != NULL)
		__atomic_add_fetch(&ent->refs, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&e->lock);
	return ent;
}

/* The tenant's CA, referenced (caller tca_engine_entry_unref()s), or NULL with
 * *r_ptr = TCA_ERR_NOT_FOUND and the reason in why. */
struct ca_entry *
tca_engine_ca_lookup(tca_engine *e, const char *tenant, int *r_ptr, char *why, size_t whylen)
{
	struct ca_entry *ent = tca_engine_cache_get(e, tenant);

	/* a CA another engine sharing the store created since this one last
	 * looked: one sync round (usually nothing to read) finds it */
	if (ent == NULL && e->shared && tca_engine_sync(e) == TCA_OK)
		ent = tca_engine_cache_get(e, tenant);
	if (ent == NULL) {
		snprintf(why, whylen, "tenant %s has no CA", tenant);
		*r_ptr = TCA_ERR_NOT_FOUND;
	}
	return ent;
}

/* TCA_OK if ent's key is on the token, else TOKEN_UNAVAILABLE.  A key missing
 * at start-up is looked for on the token again (at most once a second): it
 * may have come back, or another engine sharing the token made it. */
int
tca_engine_key_usable(tca_engine *e, const struct ca_entry *ent, char *why, size_t whylen)
{
	int r;

	if (ent->key_present)
		return TCA_OK;
	if ((r = tca_token_check_key(e->tok, ent->key_id, TCA_KEY_ID_LEN, NULL)) == TCA_OK)
		return TCA_OK;
	if (r == TCA_ERR_NOT_FOUND)
		snprintf(why, whylen, "the CA key of tenant %s is not on the token", ent->tenant);
	else
		snprintf(why, whylen, "the token is unavailable (%s)", tca_strerror(r));
	return TCA_ERR_TOKEN_UNAVAILABLE;
}

/* A reason for a signing failure the token layer only logged. */
void
tca_engine_sign_failure_why(int r, char *why, size_t whylen)
{
	if (why[0] != '\0')
		return;
	if (r == TCA_ERR_TOKEN_UNAVAILABLE)
		snprintf(why, whylen, "the token could not sign: it is unavailable or "
		    "recovering (see `ca-admin status` and the engine log)");
	else if (r == TCA_ERR_TOKEN_REFUSED)
		snprintf(why, whylen, "the token refused to sign: %s", tca_strerror(r));
}

/* Inserts or replaces; takes over the caller's reference to ent.  Caller holds
 * the write lock. */
static int
cache_put_locked(tca_engine *e, struct ca_entry *ent)
{
	struct node *n, **head = &e->buckets[hash_tenant(ent->tenant)];

	__atomic_add_fetch(&e->cache_gen, 1, __ATOMIC_RELEASE);
	for (n = *head; n != NULL; n = n->next) {
		if (strcmp(n->ent->tenant, ent->tenant) == 0) {
			if (!n->ent->key_present)
				e->n_missing--;
			if (!ent->key_present)
				e->n_missing++;
			tca_engine_entry_unref(n->ent);
			n->ent = ent;
			return TCA_OK;
		}
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return TCA_ERR_NOMEM;
	n->ent = ent;
	n->next = *head;
	*head = n;
	e->n_active++;
	if (!ent->key_present)
		e->n_missing++;
	return TCA_OK;
}

/* Caller holds the write lock.  1 if tenant had an entry. */
static int
cache_remove_locked(tca_engine *e, const char *tenant)
{
	struct node *n, **pp;

	for (pp = &e->buckets[hash_tenant(tenant)]; (n = *pp) != NULL; pp = &n->next) {
		if (strcmp(n->ent->tenant, tenant) == 0) {
			*pp = n->next;
			e->n_active--;
			if (!n->ent->key_present)
				e->n_missing--;
			tca_engine_entry_unref(n->ent);
			free(n);
			__atomic_add_fetch(&e->cache_gen, 1, __ATOMIC_RELEASE);
			return 1;
		}
	}
	return 0;
}

static void
cache_remove(tca_engine *e, const char *tenant)
{
	pthread_rwlock_wrlock(&e->lock);
	(void)cache_remove_locked(e, tenant);
	pthread_rwlock_unlock(&e->lock);
}

int
tca_engine_entry_update(tca_engine *e, const char *tenant,
    void (*fn)(struct ca_entry *nent, void *ctx), void *ctx)
{
	struct ca_entry *ent, *nent;
	int r = TCA_OK;

	pthread_rwlock_wrlock(&e->lock);
	if ((ent = cache_get_locked(e, tenant)) != NULL) {
		if ((nent = tca_engine_entry_clone(ent)) == NULL) {
			r = TCA_ERR_NOMEM;
		} else {
			fn(nent, ctx);
			if ((r = cache_put_locked(e, nent)) != TCA_OK)
				tca_engine_entry_unref(nent);
		}
	}
	pthread_rwlock_unlock(&e->lock);
	return r;
}

/* New entry with one reference and no certificate yet. */
static struct ca_entry *
entry_new(const char *tenant, const unsigned char *key_id, enum tca_key_type type,
    int key_present, int64_t created_at)
{
	struct ca_entry *ent;

	if ((ent = calloc(1, sizeof(*ent))) == NULL)
		return NULL;
	ent->refs = 1;
	snprintf(ent->tenant, sizeof(ent->tenant), "%s", tenant);
	memcpy(ent->key_id, key_id, TCA_KEY_ID_LEN);
	ent->key_type = type;
	ent->key_present = key_present;
	ent->created_at = created_at;
	return ent;
}

/* A copy of ent with copies of its certificates (to replace it in the
 * cache; the old entry stays valid for requests still holding it). */
struct ca_entry *
tca_engine_entry_clone(const struct ca_entry *ent)
{
	struct ca_entry *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *ent;
	c->refs = 1;
	c->cur = c->prev = NULL;
	c->policy = NULL;
	c->policy_text = NULL;
	if (ent->policy_text != NULL && (c->policy_text = strdup(ent->policy_text)) == NULL) {
		free(c);
		return NULL;
	}
	if (ent->policy != NULL) {
		if ((c->policy = malloc(sizeof(*c->policy))) == NULL) {
			free(c->policy_text);
			free(c);
			return NULL;
		}
		*c->policy = *ent->policy;
	}
	if ((ent->cur != NULL &&
	    tca_issuer_new(ent->cur->der, ent->cur->der_len, &c->cur) != TCA_OK) ||
	    (ent->prev != NULL &&
	    tca_issuer_new(ent->prev->der, ent->prev->der_len, &c->prev) != TCA_OK)) {
		tca_engine_entry_unref(c);
		return NULL;
	}
	return c;
}

/* ------------------------------------------------------------ helpers */

/* The injected clock (tests, the re-issuance scheduler) or NULL. */
static tca_clock_fn
engine_clock(tca_engine *e, void **ctx_ptr)
{
	tca_clock_fn fn;

	pthread_rwlock_rdlock(&e->lock);
	fn = e->clock;
	*ctx_ptr = e->clock_ctx;
	pthread_rwlock_unlock(&e->lock);
	return fn;
}

static time_t
engine_now(tca_engine *e)
{
	void *ctx;
	tca_clock_fn fn = engine_clock(e, &ctx);

	return fn != NULL ? fn(ctx) : time(NULL);
}

int64_t
tca_engine_now_ms(tca_engine *e)
{
	struct timeval tv;
	void *ctx;
	tca_clock_fn fn = engine_clock(e, &ctx);

	if (fn != NULL)
		return (int64_t)fn(ctx) * 1000;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void
tca_engine_policy_snapshot(tca_engine *e, struct tca_policy *p)
{
	pthread_rwlock_rdlock(&e->lock);
	*p = e->policy;
	pthread_rwlock_unlock(&e->lock);
}

/* tca_signer callback: the token signs the TBSCertificate certs.c assembled */
static int
token_sign(void *ctx, const unsigned char *tbs, size_t tbs_len,
    unsigned char *sig, size_t *sig_len)
{
	struct tca_token_signer *c = ctx;

	return tca_token_sign(c->tok, c->key_id, TCA_KEY_ID_LEN, c->alg,
	    tbs, tbs_len, sig, sig_len);
}

void
tca_token_signer_init(struct tca_token_signer *ctx, tca_token *tok,
    const unsigned char *key_id, enum tca_sig_alg alg, struct tca_signer *signer)
{
	ctx->tok = tok;
	ctx->key_id = key_id;
	ctx->alg = alg;
	signer->alg = alg;
	signer->sign = token_sign;
	signer->ctx = ctx;
}

void
tca_engine_signer_for(tca_engine *e, const struct ca_entry *ent, struct tca_token_signer *sctx,
    struct tca_signer *signer)
{
	tca_token_signer_init(sctx, e->tok, ent->key_id, tca_key_type_sig_alg(ent->key_type),
	    signer);
}

/* A change with its journal header filled in (who may be NULL). */
void
tca_engine_change_init(tca_engine *e, struct tca_change *chg, enum tca_change_kind kind,
    const char *op, const char *tenant, const struct tca_requester *who)
{
	memset(chg, 0, sizeof(*chg));
	chg->kind = kind;
	chg->op = op;
	chg->tenant = tenant;
	chg->time_ms = tca_engine_now_ms(e);
	if (who != NULL)
		chg->who = *who;
}

/* Fills d's certificate fields from a DER certificate (copied). */
static int
desc_from_der(const unsigned char *der, size_t len, struct tca_ca_desc *d)
{
	struct tca_cert_info info;
	int r;

	if ((r = tca_cert_info_from_der(der, len, &info)) != TCA_OK)
		return r;
	snprintf(d->subject, sizeof(d->subject), "%s", info.subject);
	snprintf(d->issuer, sizeof(d->issuer), "%s", info.issuer);
	tca_hex(info.serial, info.serial_len, d->serial_hex);
	tca_hex(info.sha256, sizeof(info.sha256), d->fingerprint_hex);
	d->not_before = info.not_before;
	d->not_after = info.not_after;
	if ((d->cert_der = malloc(info.der_len)) == NULL)
		return TCA_ERR_NOMEM;
	memcpy(d->cert_der, info.der, info.der_len);
	d->cert_der_len = info.der_len;
	return TCA_OK;
}

enum tca_ca_expiry
tca_ca_expiry_of(int64_t not_after, time_t now, unsigned int window_days)
{
	if (window_days == 0)
		window_days = TCA_CA_EXPIRY_WINDOW_DEFAULT;
	if (not_after <= (int64_t)now)
		return TCA_CA_EXPIRED;	/* as certs.c: no longer valid at notAfter */
	if (not_after - (int64_t)now <= (int64_t)window_days * 86400)
		return TCA_CA_EXPIRING;	/* as renewal.c's "expiring" alert */
	return TCA_CA_VALID;
}

/*
 * An active CA's status, the most pressing first: key-missing (nothing can
 * be signed, not even the re-issuance that would cure an expiry), expired
 * (the certificate is no longer valid), renewal-failed (the re-issuance
 * that should have prevented expiry fails; `renewal` says why), expiring
 * (within the window), active.
 */
static const char *
entry_status(const struct ca_entry *ent, time_t now, unsigned int window_days)
{
	enum tca_ca_expiry x = tca_ca_expiry_of(ent->cur->not_after, now, window_days);

	return !ent->key_present ? "key-missing" : x == TCA_CA_EXPIRED ? "expired" :
	    ent->renewal.failed ? "renewal-failed" : x == TCA_CA_EXPIRING ? "expiring" :
	    "active";
}

static int
desc_from_entry(tca_engine *e, const struct ca_entry *ent, struct tca_ca_desc *d)
{
	struct tca_policy pol;

	tca_engine_policy_snapshot(e, &pol);
	memset(d, 0, sizeof(*d));
	snprintf(d->tenant, sizeof(d->tenant), "%s", ent->tenant);
	snprintf(d->status, sizeof(d->status), "%s", entry_status(ent, engine_now(e),
	    pol.ca_expiry_window_days));
	d->has_previous = ent->prev != NULL;
	d->renewal = ent->renewal;
	d->crl_number = ent->crl_number;
	d->crl_next_update = ent->crl_next_update;
	d->crl = ent->crl;
	d->suspended = ent->policy != NULL && ent->policy->suspended;
	snprintf(d->key_type, sizeof(d->key_type), "%s", tca_key_type_name(ent->key_type));
	tca_hex(ent->key_id, TCA_KEY_ID_LEN, d->key_id_hex);
	d->created_at = ent->created_at;
	return desc_from_der(ent->cur->der, ent->cur->der_len, d);
}

/* The engine's clock, for modules outside this file. */
time_t
tca_engine_now(tca_engine *e)
{
	return engine_now(e);
}

void
tca_ca_desc_clear(struct tca_ca_desc *d)
{
	if (d == NULL)
		return;
	free(d->cert_der);
	memset(d, 0, sizeof(*d));
}

void
tca_issued_clear(struct tca_issued *is)
{
	if (is == NULL)
		return;
	free(is->der);
	memset(is, 0, sizeof(*is));
}

/* ------------------------------------------------------------ start-up */

struct load_ctx {
	tca_engine *e;
	int r;
	char *err;
	size_t errlen;
};

static int
load_ca_row(void *ctx, const struct tca_ca_row *row)
{
	struct load_ctx *lc = ctx;
	tca_engine *e = lc->e;
	struct ca_entry *ent = NULL;
	enum tca_key_type type;
	struct tca_issuer *cur = NULL;
	int present;

	if (row->status != TCA_CA_ACTIVE)
		return 0;
	if (tca_key_type_from_name(row->key_type, &type) != TCA_OK ||
	    row->key_id_len != TCA_KEY_ID_LEN ||
	    tca_issuer_new(row->cert_der, row->cert_der_len, &cur) != TCA_OK) {
		snprintf(lc->err, lc->errlen, "store: CA of tenant %s is unreadable "
		    "(key type, key id or certificate)", row->tenant);
		lc->r = TCA_ERR_JOURNAL_UNAVAILABLE;
		return 1;
	}
	present = tca_token_find_key(e->tok, row->key_id, row->key_id_len, NULL) == TCA_OK;
	if (!present)
		log_error("tenant %s: CA key (CKA_ID %02x%02x...) is not on the token; "
		    "issuance for this tenant will fail with TOKEN_UNAVAILABLE",
		    row->tenant, row->key_id[0], row->key_id[1]);
	if ((ent = entry_new(row->tenant, row->key_id, type, present, row->created_at)) == NULL) {
		tca_issuer_free(cur);
		lc->r = TCA_ERR_NOMEM;
		return 1;
	}
	ent->cur = cur;
	ent->ca_id = row->ca_id;
	if (row->prev_der != NULL &&
	    tca_issuer_new(row->prev_der, row->prev_der_len, &ent->prev) != TCA_OK)
		log_warn("tenant %s: previous CA certificate unreadable; ignored", row->tenant);
	ent->renewal = row->renewal;
	ent->crl = row->crl;
	if (row->policy != NULL && row->policy[0] != '\0') {
		char pwhy[256];

		if ((ent->policy_text = strdup(row->policy)) == NULL) {
			tca_engine_entry_unref(ent);
			lc->r = TCA_ERR_NOMEM;
			return 1;
		}

		if ((ent->policy = malloc(sizeof(*ent->policy))) == NULL) {
			tca_engine_entry_unref(ent);
			lc->r = TCA_ERR_NOMEM;
			return 1;
		}
		if (tca_tenant_policy_parse(row->policy, ent->policy, pwhy,
		    sizeof(pwhy)) != TCA_OK) {
			/* refusing to issue beats issuing under a policy we cannot read */
			snprintf(lc->err, lc->errlen, "store: the policy of tenant %s does "
			    "not parse: %s", row->tenant, pwhy);
			tca_engine_entry_unref(ent);
			lc->r = TCA_ERR_JOURNAL_UNAVAILABLE;
			return 1;
		}
	}
	ent->crl_number = row->crl_number;
	ent->crl_this_update = row->crl_this_update;
	ent->crl_next_update = row->crl_next_update;
	if ((lc->r = cache_put_locked(e, ent)) != TCA_OK) {
		tca_engine_entry_unref(ent);
		return 1;
	}
	return 0;
}

/* 1 if the token key (id, label) is one of ours that no active CA owns.
 * Caller holds e->lock. */
static int
key_is_orphan_locked(tca_engine *e, const unsigned char *id, size_t id_len, const char *label)
{
	struct ca_entry *ent;

	if (strncmp(label, TCA_KEY_LABEL_PREFIX, strlen(TCA_KEY_LABEL_PREFIX)) != 0)
		return 0;
	ent = cache_get_locked(e, label + strlen(TCA_KEY_LABEL_PREFIX));
	return ent == NULL || id_len != TCA_KEY_ID_LEN || memcmp(ent->key_id, id, id_len) != 0;
}

static int
count_orphan(void *ctx, const unsigned char *id, size_t id_len, const char *label,
    enum tca_key_type type)
{
	tca_engine *e = ctx;

	(void)type;
	if (key_is_orphan_locked(e, id, id_len, label)) {
		e->n_orphans++;
		log_warn("token key \"%s\" belongs to no active CA (interrupted create or "
		    "delete, or a restored store); remove it with `ca-admin ca delete %s "
		    "--confirm` if it is not needed", label, label + strlen(TCA_KEY_LABEL_PREFIX));
	}
	return 0;
}

struct orphan_count {
	tca_engine *e;
	size_t n;
};

static int
orphan_cb(void *ctx, const unsigned char *id, size_t id_len, const char *label,
    enum tca_key_type type)
{
	struct orphan_count *oc = ctx;

	(void)type;
	if (key_is_orphan_locked(oc->e, id, id_len, label))
		oc->n++;
	return 0;
}

/* "host:pid:random": names this engine among those sharing a store (the
 * random part tells a restarted engine from the one that died). */
static void
node_id_init(char *out, size_t outlen)
{
	char host[65] = "";
	unsigned char rnd[4];
	char hex[2 * sizeof(rnd) + 1];

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "unknown");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	tca_hex(rnd, sizeof(rnd), hex);
	snprintf(out, outlen, "%s:%ld:%s", host, (long)getpid(), hex);
}

const char *
tca_engine_node_id(const tca_engine *e)
{
	return e->node_id;
}

int
tca_engine_new(tca_token *tok, tca_store *st, tca_committer *cm,
    const struct tca_policy *policy, tca_engine **e_ptr, char *err, size_t errlen)
{
	struct load_ctx lc;
	tca_engine *e;
	int r;

	*e_ptr = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return TCA_ERR_NOMEM;
	e->tok = tok;
	e->st = st;
	e->cm = cm;
	e->policy = *policy;
	e->started = time(NULL);
	node_id_init(e->node_id, sizeof(e->node_id));
	if (pthread_rwlock_init(&e->lock, NULL) != 0) {
		free(e);
		return TCA_ERR_SYSTEM;
	}
	if (pthread_rwlock_init(&e->rev_lock, NULL) != 0 ||
	    pthread_mutex_init(&e->crl_lock, NULL) != 0 ||
	    pthread_mutex_init(&e->counts_lock, NULL) != 0 ||
	    pthread_mutex_init(&e->sync_lock, NULL) != 0)
		abort();	/* cannot fail with default attributes on Linux */
	e->sync_pipe[0] = e->sync_pipe[1] = -1;
	/* the journal head before the cache is read: a change committed while
	 * it loads is applied again by the first sync round, never missed */
	if ((r = tca_engine_sync_init(e, err, errlen)) != TCA_OK) {
		tca_engine_free(e);
		return r;
	}
	memset(&lc, 0, sizeof(lc));
	lc.e = e;
	lc.err = err;
	lc.errlen = errlen;
	r = st->ops->foreach_ca(st, 0, load_ca_row, &lc);
	if (lc.r != TCA_OK)
		r = lc.r;
	if (r != TCA_OK) {
		if (err[0] == '\0')
			snprintf(err, errlen, "loading CAs from the store: %s", tca_strerror(r));
		tca_engine_free(e);
		return r;
	}
	if ((r = tca_revset_load(e)) != TCA_OK) {
		snprintf(err, errlen, "loading revocations from the store: %s", tca_strerror(r));
		tca_engine_free(e);
		return r;
	}
	(void)tca_token_foreach_key(tok, count_orphan, e);
	log_info("engine: %zu active tenant CAs loaded, %zu with missing keys, %zu orphan keys",
	    e->n_active, e->n_missing, e->n_orphans);
	*e_ptr = e;
	return TCA_OK;
}

int
tca_engine_ca_reload(tca_engine *e, const char *tenant, int64_t *not_before_ptr)
{
	struct tca_cert_info info;
	struct tca_ca_row row;
	struct load_ctx lc;
	char err[256] = "";
	int r;

	memset(&row, 0, sizeof(row));
	if ((r = e->st->ops->get_ca(e->st, tenant, &row)) != TCA_OK)
		goto out;
	if ((r = tca_cert_info_from_der(row.cert_der, row.cert_der_len, &info)) != TCA_OK) {
		log_error("tenant %s: the CA certificate in the store is unreadable", tenant);
		goto out;
	}
	memset(&lc, 0, sizeof(lc));
	lc.e = e;
	lc.err = err;
	lc.errlen = sizeof(err);
	pthread_rwlock_wrlock(&e->lock);
	(void)load_ca_row(&lc, &row);
	pthread_rwlock_unlock(&e->lock);
	if ((r = lc.r) != TCA_OK) {
		log_error("tenant %s: reloading the CA from the store failed: %s", tenant,
		    err[0] != '\0' ? err : tca_strerror(r));
		goto out;
	}
	log_info("tenant %s: CA reloaded from the store (changed since this node read it)", tenant);
	if (not_before_ptr != NULL)
		*not_before_ptr = info.not_before;
 out:
	tca_ca_row_clear(&row);
	return r;
}

/* Same DER (both absent counts as the same). */
static int
same_der(const struct tca_issuer *is, const unsigned char *der, size_t len)
{
	if (is == NULL || der == NULL)
		return is == NULL && der == NULL;
	return is->der_len == len && memcmp(is->der, der, len) == 0;
}

/* 1 if ent serves what row holds (the fields requests and the schedule
 * read; renewal bookkeeping is the scheduler's and reloaded by it). */
static int
entry_matches(const struct ca_entry *ent, const struct tca_ca_row *row)
{
	const char *text = ent->policy_text != NULL ? ent->policy_text : "";

	return ent->ca_id == row->ca_id &&
	    same_der(ent->cur, row->cert_der, row->cert_der_len) &&
	    same_der(ent->prev, row->prev_der, row->prev_der_len) &&
	    ent->crl_number == row->crl_number &&
	    strcmp(text, row->policy != NULL ? row->policy : "") == 0;
}

int
tca_engine_ca_refresh(tca_engine *e, const char *tenant)
{
	struct tca_ca_row row;
	struct ca_entry *ent;
	struct load_ctx lc;
	char err[256] = "";
	uint64_t gen;
	int r, tries;

	for (tries = 0; tries < 3; tries++) {
		gen = __atomic_load_n(&e->cache_gen, __ATOMIC_ACQUIRE);
		memset(&row, 0, sizeof(row));
		r = e->st->ops->get_ca(e->st, tenant, &row);
		if (r != TCA_OK && r != TCA_ERR_NOT_FOUND)
			return r;
		/* a key another engine made: looked for on the token once, here,
		 * not under the cache lock (load_ca_row reads the index only) */
		if (r == TCA_OK && row.key_id_len == TCA_KEY_ID_LEN &&
		    tca_token_find_key(e->tok, row.key_id, row.key_id_len, NULL) != TCA_OK)
			(void)tca_token_check_key(e->tok, row.key_id, row.key_id_len, NULL);
		pthread_rwlock_wrlock(&e->lock);
		if (__atomic_load_n(&e->cache_gen, __ATOMIC_ACQUIRE) != gen) {
			/* this engine changed its cache meanwhile: what was read
			 * may be older than what it holds now; read again */
			pthread_rwlock_unlock(&e->lock);
			tca_ca_row_clear(&row);
			continue;
		}
		ent = cache_get_locked(e, tenant);
		memset(&lc, 0, sizeof(lc));
		lc.e = e;
		lc.err = err;
		lc.errlen = sizeof(err);
		if (r == TCA_ERR_NOT_FOUND) {
			if (ent != NULL && cache_remove_locked(e, tenant))
				log_notice("tenant %s: cache refreshed from the store: CA "
				    "deleted, no longer served", tenant);
		} else if (ent == NULL || !entry_matches(ent, &row)) {
			(void)load_ca_row(&lc, &row);
			if (lc.r == TCA_OK)
				log_info("tenant %s: cache refreshed from the store: CA %s",
				    tenant, ent == NULL ? "new" : "changed");
		}
		pthread_rwlock_unlock(&e->lock);
		tca_ca_row_clear(&row);
		if (lc.r != TCA_OK)
			log_error("tenant %s: reading the CA from the store failed: %s",
			    tenant, err[0] != '\0' ? err : tca_strerror(lc.r));
		return lc.r;
	}
	return TCA_ERR_BUSY;
}

void
tca_engine_free(tca_engine *e)
{
	struct node *n, *next;
	struct pending *p, *pn;
	size_t i;

	if (e == NULL)
		return;
	tca_engine_sync_stop(e);
	for (i = 0; i < N_BUCKETS; i++) {
		for (n = e->buckets[i]; n != NULL; n = next) {
			next = n->next;
			tca_engine_entry_unref(n->ent);
			free(n);
		}
	}
	for (p = e->pending; p != NULL; p = pn) {
		pn = p->next;
		free(p);
	}
	tca_revset_free(e);
	pthread_rwlock_destroy(&e->rev_lock);
	pthread_mutex_destroy(&e->crl_lock);
	pthread_mutex_destroy(&e->counts_lock);
	pthread_mutex_destroy(&e->sync_lock);
	pthread_rwlock_destroy(&e->lock);
	free(e);
}

void
tca_engine_set_policy(tca_engine *e, const struct tca_policy *policy)
{
	pthread_rwlock_wrlock(&e->lock);
	e->policy = *policy;
	pthread_rwlock_unlock(&e->lock);
}

void
tca_engine_get_policy(tca_engine *e, struct tca_policy *policy)
{
	tca_engine_policy_snapshot(e, policy);
}

void
tca_engine_set_clock(tca_engine *e, tca_clock_fn fn, void *ctx)
{
	pthread_rwlock_wrlock(&e->lock);
	e->clock = fn;
	e->clock_ctx = ctx;
	pthread_rwlock_unlock(&e->lock);
}

/* ------------------------------------------------------------ CA lifecycle */

static int
pending_add_locked(tca_engine *e, const char *tenant)
{
	struct pending *p;

	for (p = e->pending; p != NULL; p = p->next)
		if (strcmp(p->tenant, tenant) == 0)
			return TCA_ERR_ALREADY_EXISTS;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TCA_ERR_NOMEM;
	snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
	p->next = e->pending;
	e->pending = p;
	return TCA_OK;
}

static void
pending_remove(tca_engine *e, const char *tenant)
{
	struct pending *p, **pp;

	pthread_rwlock_wrlock(&e->lock);
	for (pp = &e->pending; (p = *pp) != NULL; pp = &p->next) {
		if (strcmp(p->tenant, tenant) == 0) {
			*pp = p->next;
			free(p);
			break;
		}
	}
	pthread_rwlock_unlock(&e->lock);
}

/*
 * Reserves tenant's CA creation in the store for this engine, before its key
 * is made (store.h, CA_RESERVE): the other engines sharing the store then
 * refuse to create it too.  TCA_OK, or ALREADY_EXISTS / the store's error
 * with why.
 */
static int
ca_reserve(tca_engine *e, const char *tenant, const struct tca_requester *who,
    char *why, size_t whylen)
{
	struct tca_change chg;
	char since[32], until[32];
	int r;

	tca_engine_change_init(e, &chg, TCA_CHANGE_CA_RESERVE, "ca-reserve", tenant, who);
	chg.holder = e->node_id;
	chg.lease_until_ms = chg.time_ms + TCA_CA_RESERVE_LEASE_MS;
	if ((r = tca_committer_submit(e->cm, &chg)) == TCA_OK)
		return TCA_OK;
	if (r == TCA_ERR_ALREADY_EXISTS && chg.reserved.by[0] != '\0') {
		tca_iso_time(chg.reserved.at_ms / 1000, since, sizeof(since));
		tca_iso_time(chg.reserved.until_ms / 1000, until, sizeof(until));
		snprintf(why, whylen, "a CA for tenant %s is being created by engine %s "
		    "(since %s; should that engine have died, its reservation lapses at "
		    "%s)", tenant, chg.reserved.by, since, until);
	} else if (r == TCA_ERR_ALREADY_EXISTS) {
		snprintf(why, whylen, "tenant %s already has a CA (created by another "
		    "engine sharing the store)", tenant);
		/* serve it from now on */
		(void)tca_engine_ca_reload(e, tenant, NULL);
	} else {
		snprintf(why, whylen, "the state store could not reserve the CA "
		    "creation (%s)", tca_strerror(r));
	}
	return r;
}

/* Gives a reservation back after a create that committed nothing. */
static void
ca_release(tca_engine *e, const char *tenant, const struct tca_requester *who)
{
	struct tca_change chg;
	int r;

	tca_engine_change_init(e, &chg, TCA_CHANGE_CA_RELEASE, "ca-release", tenant, who);
	chg.holder = e->node_id;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK && r != TCA_ERR_NOT_FOUND)
		log_warn("tenant %s: giving back the CA reservation failed (%s); it "
		    "lapses by itself within %d minutes", tenant, tca_strerror(r),
		    TCA_CA_RESERVE_LEASE_MS / 60000);
}

int
tca_engine_ca_create(tca_engine *e, const char *tenant, const char *key_type,
    const struct tca_requester *who, struct tca_ca_desc *out, char *why, size_t whylen)
{
	unsigned char key_id[TCA_KEY_ID_LEN], *der = NULL;
	char label[sizeof(TCA_KEY_LABEL_PREFIX) + TCA_TENANT_MAX], fp[65], details[64];
	char offered[96];
	unsigned int mask;
	struct tca_token_signer sctx;
	struct tca_ca_params params;
	struct tca_cert_info info;
	struct tca_change chg;
	struct tca_signer signer;
	struct tca_policy pol;
	struct ca_entry *ent = NULL;
	enum tca_key_type type;
	EVP_PKEY *pub = NULL;
	X509 *cert = NULL;
	int r, generated = 0, committed = 0, pending = 0, reserved = 0;
	time_t now;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	memset(&chg, 0, sizeof(chg));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	tca_engine_policy_snapshot(e, &pol);
	type = pol.ca_default_key_type;
	if (key_type != NULL && *key_type != '\0' &&
	    tca_key_type_from_name(key_type, &type) != TCA_OK) {
		snprintf(why, whylen, "unknown key type \"%s\" (ec-p256, ec-p384, rsa-3072, ed25519)",
		    key_type);
		return TCA_ERR_BAD_REQUEST;
	}

	/* refused up front, naming what the token offers */
	if (!((mask = tca_token_key_types(e->tok, NULL)) & (1u << type))) {
		tca_key_types_format(mask, offered, sizeof(offered));
		snprintf(why, whylen, "this token cannot generate and sign with %s keys; it "
		    "offers: %s", tca_key_type_name(type), offered);
		return TCA_ERR_POLICY_VIOLATION;
	}

	pthread_rwlock_wrlock(&e->lock);
	if ((ent = cache_get_locked(e, tenant)) != NULL) {
		tca_hex(ent->cur->sha256, sizeof(ent->cur->sha256), fp);
		snprintf(why, whylen, "tenant %s already has a CA (SHA-256 fingerprint %s)", tenant, fp);
		ent = NULL;
		r = TCA_ERR_ALREADY_EXISTS;
	} else if ((r = pending_add_locked(e, tenant)) == TCA_ERR_ALREADY_EXISTS) {
		snprintf(why, whylen, "a CA for tenant %s is being created right now", tenant);
	}
	pthread_rwlock_unlock(&e->lock);
	if (r != TCA_OK)
		return r;
	pending = 1;
	if ((r = ca_reserve(e, tenant, who, why, whylen)) != TCA_OK)
		goto out;
	reserved = 1;

	tca_tenant_key_id(tenant, key_id);
	tca_tenant_key_label(tenant, label, sizeof(label));
	/* the index, or the token itself once (a key another engine made) */
	if ((r = tca_token_check_key(e->tok, key_id, sizeof(key_id), NULL)) != TCA_ERR_NOT_FOUND) {
		if (r != TCA_OK) {
			snprintf(why, whylen, "the token is unavailable (%s)", tca_strerror(r));
			goto out;
		}
		snprintf(why, whylen, "the token already holds a key for tenant %s that no CA "
		    "owns (interrupted create/delete or restored store); inspect it and remove "
		    "it with `ca-admin ca delete %s --confirm`", tenant, tenant);
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	if ((r = tca_token_generate_key(e->tok, type, key_id, sizeof(key_id), label, &pub)) != TCA_OK) {
		snprintf(why, whylen, r == TCA_ERR_POLICY_VIOLATION ?
		    "this token cannot generate %s keys" : "key generation in the token failed (%s)",
		    r == TCA_ERR_POLICY_VIOLATION ? tca_key_type_name(type) : tca_strerror(r));
		goto out;
	}
	generated = 1;

	now = engine_now(e);
	memset(&params, 0, sizeof(params));
	params.common_name = tenant;
	params.organization = pol.ca_organization;
	params.country = pol.ca_country;
	params.not_before = now;
	params.days = pol.ca_validity_days;
	if ((ent = entry_new(tenant, key_id, type, 1, (int64_t)now)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	tca_engine_signer_for(e, ent, &sctx, &signer);
	if ((r = tca_cert_build_ca(&params, pub, &signer, &cert)) != TCA_OK) {
		snprintf(why, whylen, "building the CA certificate failed (%s)", tca_strerror(r));
		goto out;
	}
	if ((r = tca_cert_get_info(cert, &info, &der)) != TCA_OK ||
	    (r = tca_issuer_new(der, info.der_len, &ent->cur)) != TCA_OK)
		goto out;

	snprintf(details, sizeof(details), "key_type=%s", tca_key_type_name(type));
	tca_engine_change_init(e, &chg, TCA_CHANGE_CA_CREATE, "ca-create", tenant, who);
	chg.key_type = tca_key_type_name(type);
	chg.key_id = key_id;
	chg.key_id_len = sizeof(key_id);
	chg.cert = &info;
	chg.details = details;
	chg.holder = e->node_id;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK) {
		snprintf(why, whylen, r == TCA_ERR_ALREADY_EXISTS ?
		    "the store already has an active CA for this tenant, or another "
		    "engine took over its reservation" :
		    "the state store could not commit the new CA (%s)", tca_strerror(r));
		goto out;
	}
	committed = 1;
	ent->ca_id = chg.ca_id;
	if (out != NULL && (r = desc_from_entry(e, ent, out)) != TCA_OK)
		log_error("tenant %s: describing the new CA failed", tenant);
	pthread_rwlock_wrlock(&e->lock);
	r = cache_put_locked(e, ent);
	pthread_rwlock_unlock(&e->lock);
	if (r != TCA_OK) {
		/* committed but not in service: a restart loads it */
		log_error("tenant %s: CA committed but not cached (%s); restart the engine",
		    tenant, tca_strerror(r));
		goto out;
	}
	ent = NULL;
	log_notice("tenant %s: CA created (%s, fingerprint %s, uid %u pid %d)", tenant,
	    tca_key_type_name(type), out != NULL ? out->fingerprint_hex : "-",
	    (unsigned int)who->uid, (int)who->pid);
	/* its first (empty) CRL at once; if that fails, the scheduler's next
	 * pass makes it (a CA without a CRL is due immediately) */
	{
		struct tca_crl_published ci;
		char cwhy[256] = "";

		if (tca_engine_crl_sign(e, tenant, who, &ci, cwhy, sizeof(cwhy)) != TCA_OK)
			log_warn("tenant %s: first CRL not signed yet: %s", tenant, cwhy);
	}
 out:
	if (r != TCA_OK && generated && !committed && chg.outcome_unknown) {
		/* the CA may be recorded: its key must stay */
		log_error("tenant %s: whether the new CA was recorded is unknown (the "
		    "database went away during the commit); its key is kept - if the "
		    "CA was not recorded, the key is an orphan: `ca-admin ca delete %s "
		    "--confirm` removes it", tenant, tenant);
		generated = 0;
	}
	if (r != TCA_OK && generated && !committed) {
		/* nothing committed: take the key out of the token again */
		if (tca_token_destroy_key(e->tok, key_id, sizeof(key_id), NULL) != TCA_OK)
			log_error("tenant %s: removing the key of a failed CA create failed; "
			    "it is now an orphan", tenant);
	}
	/* after the key is gone: whoever reserves next finds no orphan */
	if (r != TCA_OK && reserved && !committed)
		ca_release(e, tenant, who);
	if (r != TCA_OK && out != NULL)
		tca_ca_desc_clear(out);
	tca_engine_entry_unref(ent);
	X509_free(cert);
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
	if (pending)
		pending_remove(e, tenant);
	return r;
}

int
tca_engine_ca_show(tca_engine *e, const char *tenant, int previous,
    struct tca_ca_desc *out, char *why, size_t whylen)
{
	struct ca_entry *ent;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	if (previous && ent->prev == NULL) {
		snprintf(why, whylen, "tenant %s's CA has no previous certificate", tenant);
		r = TCA_ERR_NOT_FOUND;
	} else if ((r = desc_from_entry(e, ent, out)) == TCA_OK && previous) {
		free(out->cert_der);
		out->cert_der = NULL;
		snprintf(out->status, sizeof(out->status), "previous");
		r = desc_from_der(ent->prev->der, ent->prev->der_len, out);
	}
	tca_engine_entry_unref(ent);
	return r;
}

struct list_ctx {
	tca_ca_desc_cb cb;
	void *ctx;
	tca_engine *e;
};

static int
list_row(void *ctx, const struct tca_ca_row *row)
{
	struct list_ctx *lc = ctx;
	struct tca_ca_desc d;
	struct ca_entry *ent;
	int r;

	memset(&d, 0, sizeof(d));
	if (row->status == TCA_CA_ACTIVE && (ent = tca_engine_cache_get(lc->e, row->tenant)) != NULL) {
		r = desc_from_entry(lc->e, ent, &d);
		tca_engine_entry_unref(ent);
	} else {
		snprintf(d.tenant, sizeof(d.tenant), "%s", row->tenant);
		snprintf(d.status, sizeof(d.status), "%s", tca_ca_status_name(row->status));
		snprintf(d.key_type, sizeof(d.key_type), "%s", row->key_type);
		tca_hex(row->key_id, row->key_id_len, d.key_id_hex);
		d.created_at = row->created_at;
		d.deleted_at = row->deleted_at;
		r = desc_from_der(row->cert_der, row->cert_der_len, &d);
	}
	if (r == TCA_OK)
		r = lc->cb(lc->ctx, &d);
	tca_ca_desc_clear(&d);
	return r;
}

int
tca_engine_ca_list(tca_engine *e, int include_deleted, tca_ca_desc_cb cb, void *ctx)
{
	struct list_ctx lc;

	lc.cb = cb;
	lc.ctx = ctx;
	lc.e = e;
	/* the store orders by tenant; active rows are described from the cache */
	return e->st->ops->foreach_ca(e->st, include_deleted, list_row, &lc);
}

int
tca_engine_ca_delete(tca_engine *e, const char *tenant,
    const struct tca_requester *who, unsigned long *destroyed_ptr,
    char *why, size_t whylen)
{
	unsigned char key_id[TCA_KEY_ID_LEN];
	char fp[65], details[96];
	struct tca_change chg;
	struct ca_entry *ent;
	unsigned long destroyed = 0;
	int r;

	*destroyed_ptr = 0;
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	tca_tenant_key_id(tenant, key_id);
	/* a CA another engine sharing the store created: read it first, or
	 * its key would look like an orphan */
	if ((ent = tca_engine_cache_get(e, tenant)) == NULL && e->shared &&
	    tca_engine_sync(e) == TCA_OK)
		ent = tca_engine_cache_get(e, tenant);
	if (ent == NULL) {
		if ((r = tca_token_check_key(e->tok, key_id, sizeof(key_id), NULL)) != TCA_OK) {
			if (r != TCA_ERR_NOT_FOUND) {
				snprintf(why, whylen, "the token is unavailable (%s)",
				    tca_strerror(r));
				return r;
			}
			snprintf(why, whylen, "tenant %s has no CA", tenant);
			return TCA_ERR_NOT_FOUND;
		}
		/*
		 * An orphan key, as far as this engine knows.  The tenant is
		 * reserved while it is destroyed: the store refuses if a CA
		 * owns the key after all (then it is deleted as one, below) or
		 * another engine is creating that CA right now (its key is not
		 * an orphan: refused), and no engine creates the tenant meanwhile.
		 */
		if ((r = ca_reserve(e, tenant, who, why, whylen)) != TCA_OK) {
			if (r != TCA_ERR_ALREADY_EXISTS ||
			    (ent = tca_engine_cache_get(e, tenant)) == NULL)
				return r;
		} else {
			r = tca_token_destroy_key(e->tok, key_id, sizeof(key_id), &destroyed);
			ca_release(e, tenant, who);
			*destroyed_ptr = destroyed;
			if (r != TCA_OK) {
				snprintf(why, whylen, "destroying the orphan key failed (%s)",
				    tca_strerror(r));
				return r;
			}
			log_notice("tenant %s: orphan key destroyed (%lu token objects, uid %u)",
			    tenant, destroyed, (unsigned int)who->uid);
			return TCA_OK;
		}
	}
	tca_hex(ent->cur->sha256, sizeof(ent->cur->sha256), fp);
	snprintf(details, sizeof(details), "ca_fingerprint=%.64s", fp);
	tca_engine_change_init(e, &chg, TCA_CHANGE_CA_DELETE, "ca-delete", tenant, who);
	chg.details = details;
	tca_engine_entry_unref(ent);
	/* store first: a CA the store calls deleted can never sign again, even if
	 * destroying the key fails below */
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK) {
		snprintf(why, whylen, r == TCA_ERR_NOT_FOUND ? "tenant %s has no CA" :
		    "the state store could not record the deletion (%s)",
		    r == TCA_ERR_NOT_FOUND ? tenant : tca_strerror(r));
		return r;
	}
	cache_remove(e, tenant);
	r = tca_token_destroy_key(e->tok, key_id, sizeof(key_id), &destroyed);
	*destroyed_ptr = destroyed;
	if (r != TCA_OK && r != TCA_ERR_NOT_FOUND) {
		snprintf(why, whylen, "CA deleted, but destroying its key in the token failed "
		    "(%s); run `ca-admin ca delete %s --confirm` again to remove it",
		    tca_strerror(r), tenant);
		log_error("tenant %s: %s", tenant, why);
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	log_notice("tenant %s: CA deleted, %lu token objects destroyed (uid %u pid %d)",
	    tenant, destroyed, (unsigned int)who->uid, (int)who->pid);
	return TCA_OK;
}

/* ------------------------------------------------------------ issuance */

/* tca_engine_issue, once: TCA_ERR_STALE (not counted) when the store
 * refused a certificate made from a cache another engine made stale. */
static int
issue_once(tca_engine *e, const char *tenant, const char *device_id,
    const unsigned char *csr_data, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days,
    const char *otp, const struct tca_requester *who, struct tca_issued *out,
    char *why, size_t whylen)
{
	unsigned char renews[TCA_SERIAL_MAX];
	char serial_hex[2 * TCA_SERIAL_MAX + 1];
	size_t renews_len = 0;
	struct tca_token_signer sctx;
	struct tca_device_params dp;
	struct tca_cert_info info;
	struct tca_change chg;
	struct tca_signer signer;
	struct tca_policy pol;
	struct ca_entry *ent = NULL;
	unsigned char *der = NULL;
	tca_csr *csr = NULL;
	const struct tca_issuer *cas[2];
	char details[16 + 8 * TCA_DEVICE_ID_MAX], secret[TCA_DEVICE_SECRET_MAX + 1] = "";
	int r, attempt, consume = 0;

	memset(out, 0, sizeof(*out));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_device_id_validate(device_id, why, whylen)) != TCA_OK)
		goto out;
	if (csr_len == 0 || csr_len > CSR_MAX) {
		snprintf(why, whylen, "CSR must be 1..%d bytes", CSR_MAX);
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = tca_csr_parse(csr_data, csr_len, &csr, why, whylen)) != TCA_OK ||
	    (r = tca_csr_check(csr, device_id, why, whylen)) != TCA_OK)
		goto out;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL ||
	    (r = tca_engine_key_usable(e, ent, why, whylen)) != TCA_OK)
		goto out;
	if (current != NULL) {
		cas[0] = ent->cur;
		cas[1] = ent->prev;
		if ((r = tca_reenroll_check(cas, ent->prev != NULL ? 2 : 1, current,
		    current_len, csr, why, whylen)) != TCA_OK ||
		    (r = tca_engine_check_not_revoked(e, tenant, current, current_len,
		    why, whylen)) != TCA_OK)
			goto out;
		/* and in the commit, against what other engines revoked */
		if (tca_cert_serial_of(current, current_len, renews, &renews_len) != TCA_OK)
			renews_len = 0;
	}
	tca_engine_policy_snapshot(e, &pol);
	memset(&dp, 0, sizeof(dp));
	dp.now = engine_now(e);
	dp.days = days;
	dp.default_days = pol.device_validity_days;
	dp.tenant = tenant;
	dp.device_id = device_id;
	/* device.min_validity_days: certificates are cut at the CA's notAfter
	 * (certs.c); a CA with less than this left issues nothing rather than
	 * certificates that expire with it (checked before the password) */
	if (pol.device_min_validity_days > 0 && ent->cur->not_after - (int64_t)dp.now <
	    (int64_t)pol.device_min_validity_days * 86400) {
		char na[32];

		tca_iso_time(ent->cur->not_after, na, sizeof(na));
		snprintf(why, whylen, "device.min_validity_days: tenant %s's CA certificate "
		    "%s at its notAfter %s, less than the %u days a certificate must be "
		    "valid; re-issue the CA (ca-admin ca reissue %s)", tenant,
		    ent->cur->not_after <= (int64_t)dp.now ? "has expired" : "expires",
		    na, pol.device_min_validity_days, tenant);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if (ent->policy != NULL) {
		/* the tenant's own rules, within the global ones (csr check above) */
		struct tca_policy_ceiling ceil;
		char rule[32];

		memset(&ceil, 0, sizeof(ceil));
		ceil.max_days = pol.device_validity_days;
		if ((r = tca_tenant_policy_check(ent->policy, &ceil, csr, device_id,
		    &dp.days, rule, sizeof(rule), why, whylen)) != TCA_OK)
			goto out;
		dp.san = ent->policy->san;
	}
	/* a first certificate: the device's registered password, checked last
	 * (it is the slow step) and used up by the commit below */
	if (current == NULL && tca_engine_registration_required(e, ent)) {
		if ((r = tca_engine_device_check(e, tenant, device_id, otp, secret,
		    sizeof(secret), why, whylen)) != TCA_OK)
			goto out;
		consume = 1;
	}
	tca_engine_signer_for(e, ent, &sctx, &signer);
	/* validated above, so nothing to escape today; escaped all the same,
	 * as everything a peer chose that goes into the journal */
	memcpy(details, "device_id=", 10);
	(void)tca_escape((const unsigned char *)device_id, strlen(device_id), details + 10,
	    sizeof(details) - 10);

	/* a fresh random serial clashing with a recorded one is astronomically
	 * unlikely, but the store refuses it, so draw once more */
	for (attempt = 0; attempt < 2; attempt++) {
		OPENSSL_free(der);
		der = NULL;
		if ((r = tca_cert_issue_device(ent->cur, &signer, csr, &dp, &info, &der,
		    why, whylen)) != TCA_OK) {
			tca_engine_sign_failure_why(r, why, whylen);
			goto out;
		}
		tca_engine_change_init(e, &chg, TCA_CHANGE_CERT_ISSUE,
		    current != NULL ? "reenroll" : "issue", tenant, who);
		chg.cert = &info;
		chg.device_id = device_id;
		chg.consume_secret = consume ? secret : NULL;
		chg.details = details;
		/* what this was decided from; the store refuses it if another
		 * engine changed that meanwhile (store.h) */
		chg.expect_ca_id = ent->ca_id;
		chg.expect_policy = ent->policy_text != NULL ? ent->policy_text : "";
		if (renews_len > 0) {
			chg.renews_serial = renews;
			chg.renews_serial_len = renews_len;
		}
		r = tca_committer_submit(e->cm, &chg);
		if (r != TCA_ERR_ALREADY_EXISTS)
			break;
		log_warn("tenant %s: serial clash, drawing a new serial", tenant);
	}
	if (r == TCA_ERR_CREDENTIAL_REFUSED) {
		/* another request used the password first (or it expired, was
		 * locked or replaced meanwhile): nothing was recorded */
		snprintf(why, whylen, "the one-time password of device %s is no longer "
		    "valid (used by a concurrent request, re-registered, locked or "
		    "expired); no certificate was issued", device_id);
		goto out;
	}
	if (r == TCA_ERR_STALE)
		goto out;
	if (r == TCA_ERR_REVOKED) {
		snprintf(why, whylen, "the certificate presented was revoked (through "
		    "another engine, a moment ago); no certificate was issued");
		goto out;
	}
	tca_hex(info.serial, info.serial_len, serial_hex);
	if (r != TCA_OK) {
		if (r == TCA_ERR_NOT_FOUND)
			snprintf(why, whylen, "tenant %s has no CA", tenant);
		else if (chg.outcome_unknown)
			snprintf(why, whylen, "the database went away while the certificate "
			    "(serial %s) was being committed and did not come back in time: "
			    "whether it was recorded is unknown; it is not returned (the "
			    "engine log says which once the database is back; `ca-admin "
			    "cert list %s --device %s` shows it if it was)", serial_hex,
			    tenant, device_id);
		else
			snprintf(why, whylen, "the certificate could not be recorded durably "
			    "(%s); no certificate was issued", tca_strerror(r));
		if (r != TCA_ERR_NOT_FOUND)
			r = TCA_ERR_JOURNAL_UNAVAILABLE;
		goto out;
	}
	if ((out->der = malloc(info.der_len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	memcpy(out->der, info.der, info.der_len);
	out->der_len = info.der_len;
	tca_hex(info.serial, info.serial_len, out->serial_hex);
	tca_hex(info.sha256, sizeof(info.sha256), out->fingerprint_hex);
	out->not_before = info.not_before;
	out->not_after = info.not_after;
	log_info("tenant %s: %s device %s serial %s (uid %u pid %d)", tenant, chg.op,
	    device_id, out->serial_hex, (unsigned int)who->uid, (int)who->pid);
 out:
	if (r == TCA_OK)
		__atomic_add_fetch(&e->issued, 1, __ATOMIC_RELAXED);
	else if (r != TCA_ERR_STALE)
		__atomic_add_fetch(&e->refused, 1, __ATOMIC_RELAXED);
	tca_engine_entry_unref(ent);
	tca_csr_free(csr);
	OPENSSL_free(der);
	/* a right password whose certificate was not recorded: its attempt is
	 * not the device's failure (a lost race found it used: nothing to do) */
	if (consume && r != TCA_OK && r != TCA_ERR_CREDENTIAL_REFUSED)
		(void)tca_engine_device_release(e, tenant, device_id);
	OPENSSL_cleanse(secret, sizeof(secret));
	return r;
}

int
tca_engine_issue(tca_engine *e, const char *tenant, const char *device_id,
    const unsigned char *csr_data, size_t csr_len,
    const unsigned char *current, size_t current_len, unsigned int days,
    const char *otp, const struct tca_requester *who, struct tca_issued *out,
    char *why, size_t whylen)
{
	uint64_t gen;
	int r, round;

	for (round = 0; round < 2; round++) {
		gen = __atomic_load_n(&e->cache_gen, __ATOMIC_ACQUIRE);
		r = issue_once(e, tenant, device_id, csr_data, csr_len, current,
		    current_len, days, otp, who, out, why, whylen);
		if (r == TCA_ERR_STALE) {
			/* another engine changed the tenant's CA or policy since
			 * this one cached it: read what changed, decide again */
			log_info("tenant %s: CA or policy changed through another engine "
			    "while issuing; deciding again from the store", tenant);
			if (e->shared)
				(void)tca_engine_sync(e);
			else
				(void)tca_engine_ca_refresh(e, tenant);
			continue;
		}
		/* a refusal made from the cache alone (the tenant's policy, its
		 * suspension), or a key that failed to sign (another engine may
		 * have deleted the CA and destroyed its key a moment ago), is
		 * checked against the store once when others share it: final
		 * only if the cache did not change */
		if (round > 0 || !e->shared || (r != TCA_ERR_TENANT_SUSPENDED &&
		    r != TCA_ERR_POLICY_VIOLATION && r != TCA_ERR_TOKEN_UNAVAILABLE) ||
		    tca_engine_sync(e) != TCA_OK ||
		    __atomic_load_n(&e->cache_gen, __ATOMIC_ACQUIRE) == gen)
			return r;
		__atomic_sub_fetch(&e->refused, 1, __ATOMIC_RELAXED);
	}
	if (r != TCA_ERR_STALE)
		return r;
	snprintf(why, whylen, "tenant %s's CA or policy changed twice through another "
	    "engine while the certificate was being issued; nothing was issued, try "
	    "again", tenant);
	__atomic_add_fetch(&e->refused, 1, __ATOMIC_RELAXED);
	return TCA_ERR_BUSY;
}

int
tca_engine_cacerts(tca_engine *e, const char *tenant, tca_der_cb cb, void *ctx,
    char *why, size_t whylen)
{
	struct ca_entry *ent;
	int r;

	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	r = cb(ctx, ent->cur->der, ent->cur->der_len);
	/* the previous certificate while it is still valid (RFC 7030 4.1.3 allows several) */
	if (r == TCA_OK && ent->prev != NULL && ent->prev->not_after > (int64_t)engine_now(e))
		r = cb(ctx, ent->prev->der, ent->prev->der_len);
	tca_engine_entry_unref(ent);
	return r;
}

void
tca_engine_status(tca_engine *e, struct tca_engine_status *st)
{
	struct orphan_count oc;
	struct tca_policy pol;
	struct node *n;
	time_t now = engine_now(e);
	size_t i;

	memset(st, 0, sizeof(*st));
	tca_engine_policy_snapshot(e, &pol);
	pthread_mutex_lock(&e->sync_lock);
	st->synced_seq = e->synced_seq;
	st->sync = !e->shared ? "off" : e->sync_failing ? "failing" :
	    e->sync_thread_running ? "following" : "not-following";
	pthread_mutex_unlock(&e->sync_lock);
	pthread_rwlock_rdlock(&e->lock);
	st->active_cas = e->n_active;
	st->missing_keys = e->n_missing;
	for (i = 0; i < N_BUCKETS; i++) {
		for (n = e->buckets[i]; n != NULL; n = n->next) {
			switch (tca_ca_expiry_of(n->ent->cur->not_after, now,
			    pol.ca_expiry_window_days)) {
			case TCA_CA_EXPIRED:
				st->expired++;
				break;
			case TCA_CA_EXPIRING:
				st->expiring++;
				break;
			default:
				break;
			}
		}
	}
	/* counted now: a failed create's key or a delete leaves or removes them
	 * at any time (lock order: engine, then the token's index) */
	oc.e = e;
	oc.n = 0;
	(void)tca_token_foreach_key(e->tok, orphan_cb, &oc);
	st->orphan_keys = oc.n;
	st->started = e->started;
	pthread_rwlock_unlock(&e->lock);
	st->issued = __atomic_load_n(&e->issued, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&e->refused, __ATOMIC_RELAXED);
}

void
tca_engine_count_refused(tca_engine *e)
{
	__atomic_add_fetch(&e->refused, 1, __ATOMIC_RELAXED);
}

size_t
tca_engine_warn_expiry(tca_engine *e)
{
	struct tca_policy pol;
	struct node *n;
	time_t now = engine_now(e);
	char na[32];
	size_t i, count = 0;

	tca_engine_policy_snapshot(e, &pol);
	pthread_rwlock_rdlock(&e->lock);
	for (i = 0; i < N_BUCKETS; i++) {
		for (n = e->buckets[i]; n != NULL; n = n->next) {
			const struct ca_entry *ent = n->ent;
			enum tca_ca_expiry x = tca_ca_expiry_of(ent->cur->not_after, now,
			    pol.ca_expiry_window_days);

			if (x == TCA_CA_VALID)
				continue;
			count++;
			tca_iso_time(ent->cur->not_after, na, sizeof(na));
			if (x == TCA_CA_EXPIRED)
				log_warn("tenant %s: the CA certificate expired at %s; it signs "
				    "nothing until it is re-issued (ca-admin ca reissue %s); "
				    "schedule.enabled = false, so this node will not",
				    ent->tenant, na, ent->tenant);
			else
				log_warn("tenant %s: the CA certificate expires at %s (within %u "
				    "days); schedule.enabled = false, so this node neither "
				    "re-issues it nor alerts: ca-admin ca reissue %s",
				    ent->tenant, na, pol.ca_expiry_window_days != 0 ?
				    pol.ca_expiry_window_days : TCA_CA_EXPIRY_WINDOW_DEFAULT,
				    ent->tenant);
		}
	}
	pthread_rwlock_unlock(&e->lock);
	return count;
}

/* ------------------------------------------------------------ re-issuance */

static void
add_diff(struct tca_reissue_result *out, const char *field, const char *old, const char *new_value)
{
	struct tca_tbs_diff *d;

	if (strcmp(old, new_value) == 0 || out->n_diff >= sizeof(out->diff) / sizeof(out->diff[0]))
		return;	/* only what changes, as tca_cert_tbs_diff reports it */
	d = &out->diff[out->n_diff++];
	snprintf(d->field, sizeof(d->field), "%s", field);
	snprintf(d->old_value, sizeof(d->old_value), "%s", old);
	snprintf(d->new_value, sizeof(d->new_value), "%s", new_value);
}

int
tca_engine_ca_reissue(tca_engine *e, const char *tenant, time_t not_before,
    enum tca_serial_mode mode, int dry_run, const struct tca_requester *who,
    struct tca_reissue_result *out, char *why, size_t whylen)
{
	struct tca_token_signer sctx;
	struct tca_cert_info old_info, info;
	struct tca_change chg;
	struct tca_signer signer;
	struct tca_policy pol;
	struct ca_entry *ent = NULL, *nent = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	char details[512], nb[32], na[32], ob[32];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	tca_engine_policy_snapshot(e, &pol);
	if ((r = tca_cert_info_from_der(ent->cur->der, ent->cur->der_len, &old_info)) != TCA_OK)
		goto out;
	tca_hex(old_info.sha256, sizeof(old_info.sha256), out->old_fingerprint);
	tca_hex(old_info.serial, old_info.serial_len, out->old_serial);
	out->old_not_before = old_info.not_before;
	out->old_not_after = old_info.not_after;
	out->not_before = (int64_t)not_before;
	out->not_after = (int64_t)not_before + (int64_t)pol.ca_validity_days * 86400;

	if (dry_run) {
		/* what will change, without touching the token */
		snprintf(out->new_serial, sizeof(out->new_serial), "%s",
		    mode == TCA_SERIAL_KEEP ? out->old_serial : "(new random serial)");
		if (mode != TCA_SERIAL_KEEP)
			add_diff(out, "serialNumber", out->old_serial, out->new_serial);
		tca_iso_time(out->old_not_before, ob, sizeof(ob));
		tca_iso_time(out->not_before, nb, sizeof(nb));
		add_diff(out, "validity.notBefore", ob, nb);
		tca_iso_time(out->old_not_after, ob, sizeof(ob));
		tca_iso_time(out->not_after, na, sizeof(na));
		add_diff(out, "validity.notAfter", ob, na);
		r = TCA_OK;
		goto out;
	}
	if ((r = tca_engine_key_usable(e, ent, why, whylen)) != TCA_OK)
		goto out;
	tca_engine_signer_for(e, ent, &sctx, &signer);
	if ((r = tca_cert_reissue_ca(ent->cur->der, ent->cur->der_len, not_before,
	    pol.ca_validity_days, mode, &signer, &der, &der_len)) != TCA_OK) {
		snprintf(why, whylen, "re-issuing the CA certificate failed (%s)", tca_strerror(r));
		goto out;
	}
	if ((r = tca_cert_tbs_diff(ent->cur->der, ent->cur->der_len, der, der_len, out->diff,
	    sizeof(out->diff) / sizeof(out->diff[0]), &out->n_diff)) != TCA_OK ||
	    (r = tca_cert_info_from_der(der, der_len, &info)) != TCA_OK)
		goto out;
	tca_hex(info.sha256, sizeof(info.sha256), out->new_fingerprint);
	tca_hex(info.serial, info.serial_len, out->new_serial);
	out->not_before = info.not_before;
	out->not_after = info.not_after;
	tca_iso_time(info.not_before, nb, sizeof(nb));
	tca_iso_time(info.not_after, na, sizeof(na));
	snprintf(details, sizeof(details), "old_fingerprint=%s old_serial=%s new_serial=%s "
	    "not_before=%s not_after=%s", out->old_fingerprint, out->old_serial,
	    out->new_serial, nb, na);

	tca_engine_change_init(e, &chg, TCA_CHANGE_CA_REISSUE, "ca-reissue", tenant, who);
	chg.cert = &info;
	chg.expect_current_sha256 = ent->cur->sha256;
	chg.details = details;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK) {
		if (r == TCA_ERR_ALREADY_EXISTS)
			snprintf(why, whylen, "tenant %s's CA was re-issued meanwhile", tenant);
		else if (r == TCA_ERR_NOT_FOUND)
			snprintf(why, whylen, "tenant %s has no CA", tenant);
		else
			snprintf(why, whylen, "the state store could not commit the re-issued "
			    "certificate (%s)", tca_strerror(r));
		goto out;
	}
	/* in service: the new certificate current, the old one previous */
	if ((nent = tca_engine_entry_clone(ent)) == NULL) {
		r = TCA_ERR_NOMEM;
		log_error("tenant %s: re-issued but not cached; restart the engine", tenant);
		goto out;
	}
	tca_issuer_free(nent->prev);
	nent->prev = nent->cur;	/* the clone's copy of the old certificate */
	nent->cur = NULL;
	if ((r = tca_issuer_new(der, info.der_len, &nent->cur)) != TCA_OK) {
		tca_engine_entry_unref(nent);
		log_error("tenant %s: re-issued but not cached; restart the engine", tenant);
		goto out;
	}
	memset(&nent->renewal, 0, sizeof(nent->renewal));
	pthread_rwlock_wrlock(&e->lock);
	r = cache_put_locked(e, nent);
	pthread_rwlock_unlock(&e->lock);
	if (r != TCA_OK) {
		tca_engine_entry_unref(nent);
		goto out;
	}
	log_notice("tenant %s: CA re-issued, serial %s -> %s, valid %s .. %s (uid %u)",
	    tenant, out->old_serial, out->new_serial, nb, na, (unsigned int)who->uid);
 out:
	tca_engine_entry_unref(ent);
	OPENSSL_free(der);
	return r;
}

int
tca_engine_set_renewal(tca_engine *e, const char *tenant,
    const struct tca_renewal_state *state)
{
	struct tca_change chg;
	struct ca_entry *ent, *nent;
	int r;

	tca_engine_change_init(e, &chg, TCA_CHANGE_RENEWAL_STATE, "renewal-state", tenant, NULL);
	chg.renewal = state;
	if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK)
		return r;
	pthread_rwlock_wrlock(&e->lock);
	if ((ent = cache_get_locked(e, tenant)) != NULL && (nent = tca_engine_entry_clone(ent)) != NULL) {
		nent->renewal = *state;
		if (cache_put_locked(e, nent) != TCA_OK)
			tca_engine_entry_unref(nent);
	}
	pthread_rwlock_unlock(&e->lock);
	return TCA_OK;
}

int
tca_engine_foreach_brief(tca_engine *e, tca_ca_brief_cb cb, void *ctx)
{
	struct tca_ca_brief *all = NULL;
	struct node *n;
	size_t i, count = 0, cap;
	int r = TCA_OK;

	pthread_rwlock_rdlock(&e->lock);
	cap = e->n_active;
	if (cap > 0 && (all = calloc(cap, sizeof(*all))) == NULL) {
		pthread_rwlock_unlock(&e->lock);
		return TCA_ERR_NOMEM;
	}
	for (i = 0; i < N_BUCKETS && count < cap; i++) {
		for (n = e->buckets[i]; n != NULL && count < cap; n = n->next) {
			struct tca_ca_brief *b = &all[count++];

			snprintf(b->tenant, sizeof(b->tenant), "%s", n->ent->tenant);
			b->key_present = n->ent->key_present;
			b->renewal = n->ent->renewal;
			b->crl = n->ent->crl;
			b->crl_number = n->ent->crl_number;
			b->crl_this_update = n->ent->crl_this_update;
			b->crl_next_update = n->ent->crl_next_update;
			b->not_before = n->ent->cur->not_before;
			b->not_after = n->ent->cur->not_after;
		}
	}
	pthread_rwlock_unlock(&e->lock);
	for (i = 0; i < count && r == TCA_OK; i++)
		r = cb(ctx, &all[i]);
	free(all);
	return r;
}
