/*
 * token-index.c - the key index: CKA_ID -> private key handle and type.
 *
 * Built with one enumeration of the token's private keys at start; requests
 * never search the token (SoftHSMv2's C_FindObjects is linear in the object
 * count, ~32 ms at 2,000 objects).
 */
#include "config.h"

#include "token-int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "log.h"
#include "tca-error.h"

#define TOKEN_INDEX_MIN_BUCKETS	1024

struct key_index {
	struct key_entry **buckets;
	size_t n_buckets;
	size_t n_keys;		/* entries with a handle */
	size_t n_entries;	/* all entries, the searched-and-missing ones too */
	uint64_t hash_seed;
};

static uint64_t
id_hash(const struct key_index *ix, const unsigned char *id, size_t id_len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ ix->hash_seed;
	size_t i;

	/* FNV-1a; the seed keeps bucket placement unpredictable */
	for (i = 0; i < id_len; i++) {
		h ^= id[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static void
index_destroy(struct key_index *ix)
{
	struct key_entry *e, *next;
	size_t i;

	if (ix == NULL)
		return;
	for (i = 0; ix->buckets != NULL && i < ix->n_buckets; i++) {
		for (e = ix->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(ix->buckets);
	free(ix);
}

static struct key_index *
index_new(void)
{
	struct key_index *ix;

	if ((ix = calloc(1, sizeof(*ix))) == NULL)
		return NULL;
	if (RAND_bytes((unsigned char *)&ix->hash_seed, sizeof(ix->hash_seed)) != 1)
		ix->hash_seed = (uint64_t)(uintptr_t)ix;	/* placement only, not security */
	ix->n_buckets = TOKEN_INDEX_MIN_BUCKETS;
	if ((ix->buckets = calloc(ix->n_buckets, sizeof(*ix->buckets))) == NULL) {
		free(ix);
		return NULL;
	}
	return ix;
}

int
tok_index_init(tok_local *tok)
{
	if ((tok->idx = index_new()) == NULL)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

void
tok_index_free(tok_local *tok)
{
	index_destroy(tok->idx);
	tok->idx = NULL;
}

static struct key_entry *
index_find_locked(const struct key_index *ix, const unsigned char *id, size_t id_len)
{
	uint64_t h = id_hash(ix, id, id_len);
	struct key_entry *e;

	for (e = ix->buckets[h & (ix->n_buckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && e->id_len == id_len && memcmp(e->id, id, id_len) == 0)
			return e;
	return NULL;
}

static int
index_grow_locked(struct key_index *ix)
{
	struct key_entry **nb, *e, *next;
	size_t n = ix->n_buckets * 2, i;

	if (n > SIZE_MAX / sizeof(*nb) || (nb = calloc(n, sizeof(*nb))) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < ix->n_buckets; i++) {
		for (e = ix->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(ix->buckets);
	ix->buckets = nb;
	ix->n_buckets = n;
	return TCA_OK;
}

/* Inserts e.  An entry with e's id is replaced by e (it carries the new
 * handle, type, label and search time) if replace is set or if it only
 * remembers a search that found nothing; otherwise TCA_ERR_ALREADY_EXISTS and
 * e is not consumed.  Takes ownership of e on TCA_OK. */
static int
index_put_locked(struct key_index *ix, struct key_entry *e, int replace)
{
	struct key_entry **pp, *old;
	size_t b;

	e->hash = id_hash(ix, e->id, e->id_len);
	b = e->hash & (ix->n_buckets - 1);
	for (pp = &ix->buckets[b]; (old = *pp) != NULL; pp = &old->next)
		if (old->hash == e->hash && old->id_len == e->id_len &&
		    memcmp(old->id, e->id, e->id_len) == 0)
			break;
	if (old != NULL) {
		if (!replace && old->handle != CK_INVALID_HANDLE)
			return TCA_ERR_ALREADY_EXISTS;
		/* e takes old's place in the chain */
		e->next = old->next;
		*pp = e;
		if (old->handle != CK_INVALID_HANDLE)
			ix->n_keys--;
		if (e->handle != CK_INVALID_HANDLE)
			ix->n_keys++;
		free(old);
		return TCA_OK;
	}
	/* load factor 1; a failed grow only costs speed */
	if (ix->n_entries >= ix->n_buckets && index_grow_locked(ix) != TCA_OK)
		log_warn("token: key index could not grow (out of memory)");
	b = e->hash & (ix->n_buckets - 1);
	e->next = ix->buckets[b];
	ix->buckets[b] = e;
	ix->n_entries++;
	if (e->handle != CK_INVALID_HANDLE)
		ix->n_keys++;
	return TCA_OK;
}

int
tok_index_insert(tok_local *tok, struct key_entry *e)
{
	int r;

	pthread_rwlock_wrlock(&tok->index_lock);
	r = index_put_locked(tok->idx, e, 0);
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

int
tok_index_update(tok_local *tok, struct key_entry *e)
{
	int r;

	pthread_rwlock_wrlock(&tok->index_lock);
	r = index_put_locked(tok->idx, e, 1);
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

int
tok_index_remove(tok_local *tok, const unsigned char *id, size_t id_len)
{
	struct key_index *ix;
	struct key_entry **pp, *e;
	uint64_t h;
	int removed = 0;

	pthread_rwlock_wrlock(&tok->index_lock);
	ix = tok->idx;
	h = id_hash(ix, id, id_len);
	for (pp = &ix->buckets[h & (ix->n_buckets - 1)]; (e = *pp) != NULL; pp = &e->next) {
		if (e->hash == h && e->id_len == id_len && memcmp(e->id, id, id_len) == 0) {
			*pp = e->next;
			if (e->handle != CK_INVALID_HANDLE) {
				ix->n_keys--;
				removed = 1;
			}
			ix->n_entries--;
			free(e);
			break;
		}
	}
	pthread_rwlock_unlock(&tok->index_lock);
	return removed;
}

struct key_entry *
tok_entry_new(const unsigned char *id, size_t id_len, const char *label, size_t label_len,
    CK_OBJECT_HANDLE handle, enum tca_key_type type)
{
	struct key_entry *e;

	if (id_len == 0 || id_len > TOKEN_MAX_ID)
		return NULL;
	if (label_len > TOKEN_MAX_LABEL)
		label_len = TOKEN_MAX_LABEL;
	if ((e = calloc(1, sizeof(*e) + id_len + label_len + 1)) == NULL)
		return NULL;
	e->id = (unsigned char *)(e + 1);
	e->label = (char *)e->id + id_len;
	memcpy(e->id, id, id_len);
	if (label_len > 0)
		memcpy(e->label, label, label_len);
	e->label[label_len] = '\0';
	e->id_len = id_len;
	e->handle = handle;
	e->type = type;
	return e;
}

/* The entry may go away once the lock is dropped: copy out what is needed. */
int
tok_index_lookup(tok_local *tok, const unsigned char *id, size_t id_len,
    CK_OBJECT_HANDLE *handle_ptr, enum tca_key_type *type_ptr, int64_t *searched_ptr)
{
	struct key_entry *e;
	int r = TCA_ERR_NOT_FOUND;

	if (searched_ptr != NULL)
		*searched_ptr = 0;
	pthread_rwlock_rdlock(&tok->index_lock);
	if ((e = index_find_locked(tok->idx, id, id_len)) != NULL) {
		if (searched_ptr != NULL)
			*searched_ptr = e->searched_at;
		if (e->handle != CK_INVALID_HANDLE) {
			if (handle_ptr != NULL)
				*handle_ptr = e->handle;
			if (type_ptr != NULL)
				*type_ptr = e->type;
			r = TCA_OK;
		}
	}
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

size_t
tok_index_count(tok_local *tok)
{
	size_t n;

	pthread_rwlock_rdlock(&tok->index_lock);
	n = tok->idx != NULL ? tok->idx->n_keys : 0;
	pthread_rwlock_unlock(&tok->index_lock);
	return n;
}

int
tok_index_foreach(tok_local *tok, tca_token_key_cb cb, void *ctx)
{
	struct key_index *ix;
	struct key_entry *e;
	size_t i;
	int r = 0;

	pthread_rwlock_rdlock(&tok->index_lock);
	ix = tok->idx;
	for (i = 0; i < ix->n_buckets && r == 0; i++)
		for (e = ix->buckets[i]; e != NULL && r == 0; e = e->next)
			if (e->handle != CK_INVALID_HANDLE)
				r = cb(ctx, e->id, e->id_len, e->label, e->type);
	pthread_rwlock_unlock(&tok->index_lock);
	return r;
}

enum tca_key_type
tok_ec_params_type(const unsigned char *p, size_t len, CK_KEY_TYPE kt)
{
	const struct tca_key_desc *kd;
	size_t i;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (kd->ckk != kt)
			continue;
		if ((kd->ec_params != NULL && kd->ec_params_len == len &&
		    memcmp(kd->ec_params, p, len) == 0) ||
		    (kd->ec_params_name != NULL && kd->ec_params_name_len == len &&
		    memcmp(kd->ec_params_name, p, len) == 0))
			return kd->type;
	}
	return TCA_KEY_NONE;
}

/* The RSA type of this modulus size, or TCA_KEY_NONE. */
static enum tca_key_type
rsa_bits_type(CK_ULONG bits)
{
	const struct tca_key_desc *kd;
	size_t i;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++)
		if (kd->ckk == CKK_RSA && kd->rsa_bits == bits)
			return kd->type;
	return TCA_KEY_NONE;
}

/* Works out the index type of a private key (TCA_KEY_NONE for keys we cannot
 * sign with, which are still indexed so their ids count as taken). */
static CK_RV
classify_key(tok_local *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_KEY_TYPE kt,
    enum tca_key_type *type_ptr)
{
	unsigned char params[64];
	CK_ULONG bits = 0;
	CK_ATTRIBUTE a;
	size_t len = 0;
	CK_RV rv;

	*type_ptr = TCA_KEY_NONE;
	switch (kt) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		rv = tca_p11_get_attr(tok->mod, h, obj, CKA_EC_PARAMS, params, sizeof(params), &len);
		if (rv == CKR_OK)
			*type_ptr = tok_ec_params_type(params, len, kt);
		else if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID)
			rv = CKR_OK;	/* explicit curve parameters: not ours */
		return rv;
	case CKK_RSA:
		rv = tca_p11_get_attr(tok->mod, h, obj, CKA_MODULUS_BITS, &bits, sizeof(bits), &len);
		if (rv != CKR_OK || len != sizeof(bits)) {
			/* private key objects often lack CKA_MODULUS_BITS */
			a.type = CKA_MODULUS;
			a.pValue = NULL;
			a.ulValueLen = 0;
			rv = P11_CALL_QUIET(tok->mod, C_GetAttributeValue, h, obj, &a, 1);
			if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
				return CKR_OK;
			if (rv != CKR_OK)
				return rv;
			if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 4096)
				return CKR_OK;
			bits = a.ulValueLen * 8;
		}
		*type_ptr = rsa_bits_type(bits);
		return CKR_OK;
	default:
		return CKR_OK;
	}
}

/*
 * Reads obj's id, label and type in one call and puts it into ix (a new index
 * being built: duplicates are kept first-come) or, with ix NULL, into the
 * token's index replacing whatever entry has the same id (a key found again).
 */
static int
index_add_object(tok_local *tok, struct key_index *ix, CK_SESSION_HANDLE h,
    CK_OBJECT_HANDLE obj)
{
	unsigned char id[TOKEN_MAX_ID], params[64];
	char label[TOKEN_MAX_LABEL + 1];
	CK_KEY_TYPE kt = CKK_VENDOR_DEFINED;
	enum tca_key_type type = TCA_KEY_NONE;
	CK_ATTRIBUTE a[5];
	struct key_entry *e = NULL;
	size_t label_len = 0;
	char hex[2 * 16 + 1];
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	a[0].type = CKA_ID;
	a[0].pValue = id;
	a[0].ulValueLen = sizeof(id);
	a[1].type = CKA_LABEL;
	a[1].pValue = label;
	a[1].ulValueLen = sizeof(label) - 1;
	a[2].type = CKA_KEY_TYPE;
	a[2].pValue = &kt;
	a[2].ulValueLen = sizeof(kt);
	/* What classify_key() needs, in the same call (one C_GetAttributeValue
	 * per key: SoftHSM's file store re-reads the object file on every call,
	 * docs/performance.md F4).  Each key type lacks one of these, so the
	 * call returns CKR_ATTRIBUTE_TYPE_INVALID with that one marked
	 * unavailable and the others filled (PKCS#11 3.0 5.7). */
	a[3].type = CKA_EC_PARAMS;
	a[3].pValue = params;
	a[3].ulValueLen = sizeof(params);
	a[4].type = CKA_MODULUS;	/* its length only */
	a[4].pValue = NULL;
	a[4].ulValueLen = 0;
	rv = P11_CALL_QUIET(tok->mod, C_GetAttributeValue, h, obj, a, 5);
	if (rv == CKR_OBJECT_HANDLE_INVALID) {
		/* deleted by another application meanwhile */
		r = TCA_OK;
		goto out;
	}
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE) {
		tca_p11_result(tok->mod, "C_GetAttributeValue (key index)", P11_LOG_ERROR, rv);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[0].ulValueLen > sizeof(id)) {
		log_warn("token: private key object %lu has no usable CKA_ID (longer than %d "
		    "bytes or unreadable); not indexed", (unsigned long)obj, TOKEN_MAX_ID);
		r = TCA_OK;
		goto out;
	}
	if (a[0].ulValueLen == 0) {
		log_debug("token: private key object %lu has an empty CKA_ID; not indexed",
		    (unsigned long)obj);
		r = TCA_OK;
		goto out;
	}
	if (a[2].ulValueLen != sizeof(kt)) {
		log_warn("token: private key object %lu has no readable CKA_KEY_TYPE; not indexed",
		    (unsigned long)obj);
		r = TCA_OK;
		goto out;
	}
	if (a[1].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[1].ulValueLen < sizeof(label))
		label_len = a[1].ulValueLen;
	if ((kt == CKK_EC || kt == CKK_EC_EDWARDS) &&
	    a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[3].ulValueLen <= sizeof(params)) {
		type = tok_ec_params_type(params, a[3].ulValueLen, kt);
		rv = CKR_OK;
	} else if (kt == CKK_RSA && a[4].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
	    a[4].ulValueLen > 0 && a[4].ulValueLen <= 4096) {
		type = rsa_bits_type(a[4].ulValueLen * 8);
		rv = CKR_OK;
	} else	/* a token that stopped at the first invalid attribute, or odd keys */
		rv = classify_key(tok, h, obj, kt, &type);
	if (rv != CKR_OK) {
		tca_p11_result(tok->mod, "C_GetAttributeValue (key type details)",
		    P11_LOG_ERROR, rv);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((e = tok_entry_new(id, a[0].ulValueLen, label, label_len, obj, type)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if (ix != NULL)
		r = index_put_locked(ix, e, 0);
	else
		r = tok_index_update(tok, e);
	if (r == TCA_ERR_ALREADY_EXISTS) {
		tca_p11_id_hex(id, a[0].ulValueLen > 16 ? 16 : a[0].ulValueLen, hex, sizeof(hex));
		log_warn("token: several private keys have CKA_ID %s; using the first", hex);
		r = TCA_OK;
		goto out;
	}
	if (r != TCA_OK)
		goto out;
	e = NULL;
	r = TCA_OK;
 out:
	free(e);
	return r;
}

int
tok_index_build(tok_local *tok, CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[1];
	CK_OBJECT_HANDLE *objs = NULL;
	struct key_index *ix = NULL, *old;
	size_t n = 0, i, keys;
	int r = TCA_ERR_INTERNAL;

	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	if ((ix = index_new()) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if (tca_p11_find_all(tok->mod, h, tmpl, 1, &objs, &n) != CKR_OK) {
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = index_add_object(tok, ix, h, objs[i])) != TCA_OK)
			goto out;
	keys = ix->n_keys;
	/* the new index replaces the old one whole: every handle is new */
	pthread_rwlock_wrlock(&tok->index_lock);
	old = tok->idx;
	tok->idx = ix;
	pthread_rwlock_unlock(&tok->index_lock);
	ix = old;
	log_debug("token: indexed %zu of %zu private key objects", keys, n);
	r = TCA_OK;
 out:
	index_destroy(ix);
	free(objs);
	return r;
}

int
tok_index_refresh(tok_local *tok, CK_SESSION_HANDLE h, const unsigned char *id,
    size_t id_len, CK_RV *rv_ptr)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2];
	CK_OBJECT_HANDLE *objs = NULL;
	struct key_entry *e;
	size_t n = 0;
	CK_RV rv;
	int r;

	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	tmpl[1].type = CKA_ID;
	tmpl[1].pValue = (void *)id;
	tmpl[1].ulValueLen = (CK_ULONG)id_len;
	*rv_ptr = CKR_OK;
	if ((rv = tca_p11_find_all(tok->mod, h, tmpl, 2, &objs, &n)) != CKR_OK) {
		*rv_ptr = rv;
		return TCA_ERR_TOKEN_UNAVAILABLE;
	}
	r = n > 0 ? index_add_object(tok, NULL, h, objs[0]) : TCA_OK;
	free(objs);	/* allocated even when nothing was found */
	if (n > 0) {
		if (r != TCA_OK)
			return r;
		return tok_index_lookup(tok, id, id_len, NULL, NULL, NULL) == TCA_OK ?
		    TCA_OK : TCA_ERR_NOT_FOUND;
	}
	/* not on the token: remember when we looked, so a tenant whose key is
	 * missing does not cost a token search on every request */
	if ((e = tok_entry_new(id, id_len, "", 0, CK_INVALID_HANDLE, TCA_KEY_NONE)) == NULL)
		return TCA_ERR_NOMEM;
	e->searched_at = tca_p11_now_ms();
	if ((r = tok_index_update(tok, e)) != TCA_OK)
		free(e);
	return TCA_ERR_NOT_FOUND;
}
