/*
 * token.c - the PKCS#11 token layer: opening the token and the operations
 * (generate, sign, destroy, read back).  The module, the session pool and the
 * key index are in p11.c, token-pool.c and token-index.c (token-int.h).
 */
#include "config.h"

#include "token-int.h"

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "secret.h"
#include "text.h"
#include "token.h"

#define TOKEN_MAX_SIG		512	/* raw token signature (RSA-4096 at most) */
#define TOKEN_SIGN_IN_MAX	(64 + EVP_MAX_MD_SIZE)	/* DigestInfo prefix + digest */

/* ------------------------------------------------------------ open/close */

/* PKCS#11 string fields are blank-padded; tpm2-pkcs11 pads with NUL bytes,
 * which p11-kit's URI matching (blank-padded comparison) would not match. */
static void
pad_with_blanks(CK_UTF8CHAR *f, size_t len)
{
	size_t n = len;

	while (n > 0 && (f[n - 1] == '\0' || f[n - 1] == ' '))
		f[--n] = ' ';
}

static void
token_info_normalize(CK_TOKEN_INFO *ti)
{
	pad_with_blanks(ti->label, sizeof(ti->label));
	pad_with_blanks(ti->manufacturerID, sizeof(ti->manufacturerID));
	pad_with_blanks(ti->model, sizeof(ti->model));
	pad_with_blanks(ti->serialNumber, sizeof(ti->serialNumber));
}

/* Appends "label (manufacturer model, serial S)" of ti to list. */
static void
list_token(char *list, size_t listsz, const CK_TOKEN_INFO *ti, CK_SLOT_ID slot)
{
	char label[33], manuf[33], model[17], serial[17];
	size_t o = strlen(list);

	if (o >= listsz)
		return;
	tca_p11_str(ti->label, sizeof(ti->label), label, sizeof(label));
	tca_p11_str(ti->manufacturerID, sizeof(ti->manufacturerID), manuf, sizeof(manuf));
	tca_p11_str(ti->model, sizeof(ti->model), model, sizeof(model));
	tca_p11_str(ti->serialNumber, sizeof(ti->serialNumber), serial, sizeof(serial));
	snprintf(list + o, listsz - o, "%s\"%s\" (%s %s, serial %s, slot %lu%s)",
	    o > 0 ? "; " : "", label, manuf, model, serial, (unsigned long)slot,
	    (ti->flags & CKF_TOKEN_INITIALIZED) ? "" : ", not initialized");
}

int
tok_select(tok_local *tok, const char *uri_str, CK_TOKEN_INFO *ti_ptr,
    char *err, size_t errlen)
{
	char present[512] = "";
	P11KitUri *uri = NULL;
	CK_SLOT_ID *slots = NULL, uri_slot;
	CK_ULONG n_slots = 0, i;
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	unsigned int matches = 0, uninit = 0;
	CK_RV rv;
	int rc, r = TCA_ERR_INTERNAL;

	if (uri_str == NULL || *uri_str == '\0') {
		tca_setf(err, errlen, "token.uri is not set");
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if ((uri = p11_kit_uri_new()) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	rc = p11_kit_uri_parse(uri_str, P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_SLOT |
	    P11_KIT_URI_FOR_MODULE, uri);
	if (rc != P11_KIT_URI_OK) {
		/* the URI is not echoed: it might carry a PIN */
		tca_setf(err, errlen, "token.uri is not a valid PKCS#11 URI: %s",
		    p11_kit_uri_message(rc));
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_get_pin_value(uri) != NULL) {
		tca_setf(err, errlen, "token.uri carries a pin-value; remove it and put the PIN "
		    "in a 0600 file (token.pin_file)");
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_any_unrecognized(uri)) {
		tca_setf(err, errlen, "token.uri %s names more than a token (object, id, type "
		    "or unknown attributes); use only token, slot and library attributes",
		    uri_str);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (p11_kit_uri_get_pin_source(uri) != NULL)
		log_warn("token: ignoring pin-source in token.uri; the PIN comes from token.pin_file");
	if (P11_CALL(tok->mod, C_GetInfo, &info) != CKR_OK) {
		tca_setf(err, errlen, "C_GetInfo failed");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((rv = tca_p11_slots(tok->mod, &slots, &n_slots)) != CKR_OK) {
		tca_setf(err, errlen, "C_GetSlotList failed: %s", tca_p11_rv_name(rv));
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	uri_slot = p11_kit_uri_get_slot_id(uri);	/* (CK_SLOT_ID)-1: not given */
	if (p11_kit_uri_match_module_info(uri, &info)) {
		for (i = 0; i < n_slots; i++) {
			if (P11_CALL(tok->mod, C_GetSlotInfo, slots[i], &si) != CKR_OK ||
			    P11_CALL(tok->mod, C_GetTokenInfo, slots[i], &ti) != CKR_OK)
				continue;
			token_info_normalize(&ti);
			list_token(present, sizeof(present), &ti, slots[i]);
			/* p11_kit_uri_match_slot_info() does not look at slot-id */
			if ((uri_slot != (CK_SLOT_ID)-1 && uri_slot != slots[i]) ||
			    !p11_kit_uri_match_slot_info(uri, &si) ||
			    !p11_kit_uri_match_token_info(uri, &ti))
				continue;
			/* SoftHSMv2 always shows a blank token; it cannot be ours */
			if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
				uninit++;
				continue;
			}
			if (matches++ == 0) {
				tok->slot = slots[i];
				*ti_ptr = ti;
			}
		}
	}
	if (matches == 0 && uninit > 0) {
		tca_setf(err, errlen, "the only token matching URI %s is not initialized",
		    uri_str);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (matches == 0) {
		tca_setf(err, errlen, "no token matches URI %s (%lu tokens present%s%s)", uri_str,
		    (unsigned long)n_slots, present[0] != '\0' ? ": " : "", present);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	if (matches > 1) {
		tca_setf(err, errlen, "%u tokens match URI %s; make it select exactly one "
		    "(add serial=...)", matches, uri_str);
		r = TCA_ERR_CONFIG;
		goto out;
	}
	r = TCA_OK;
 out:
	free(slots);
	if (uri != NULL)
		p11_kit_uri_free(uri);
	return r;
}

/* Every name in the profile's prefer_mechanisms must be a mechanism. */
static int
check_preferred(const struct tca_token_quirks *q, char *err, size_t errlen)
{
	char buf[sizeof(q->prefer_mechanisms)], *t, *save = NULL;
	CK_MECHANISM_TYPE m;

	snprintf(buf, sizeof(buf), "%s", q->prefer_mechanisms);
	for (t = strtok_r(buf, ", \t", &save); t != NULL; t = strtok_r(NULL, ", \t", &save)) {
		if (tca_p11_mech_from_name(t, &m) != 0) {
			tca_setf(err, errlen, "hsm-profile prefer_mechanisms: unknown mechanism "
			    "%s (a CKM_ name or a number)", t);
			return TCA_ERR_CONFIG;
		}
	}
	return TCA_OK;
}

/* The token's locks; condition variables time out on the monotonic clock
 * (tca_p11_now_ms). */
static int
token_locks_init(tok_local *tok)
{
	int step = 0;

	if (pthread_condattr_init(&tok->cond_attr) != 0)
		return TCA_ERR_SYSTEM;
	if (pthread_condattr_setclock(&tok->cond_attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_mutex_init(&tok->pool_lock, NULL) != 0)
		goto fail;
	step = 1;
	if (pthread_cond_init(&tok->pool_cond, &tok->cond_attr) != 0)
		goto fail;
	step = 2;
	if (pthread_cond_init(&tok->sup_cond, &tok->cond_attr) != 0)
		goto fail;
	step = 3;
	if (pthread_rwlock_init(&tok->index_lock, NULL) != 0)
		goto fail;
	step = 4;
	if (pthread_mutex_init(&tok->admin_lock, NULL) != 0)
		goto fail;
	step = 5;
	if (pthread_mutex_init(&tok->exec_lock, NULL) != 0)
		goto fail;
	step = 6;
	if (pthread_cond_init(&tok->exec_cond, &tok->cond_attr) != 0)
		goto fail;
	tok->locks_ok = 1;
	return TCA_OK;
 fail:
	if (step >= 6)
		pthread_mutex_destroy(&tok->exec_lock);
	if (step >= 5)
		pthread_mutex_destroy(&tok->admin_lock);
	if (step >= 4)
		pthread_rwlock_destroy(&tok->index_lock);
	if (step >= 3)
		pthread_cond_destroy(&tok->sup_cond);
	if (step >= 2)
		pthread_cond_destroy(&tok->pool_cond);
	if (step >= 1)
		pthread_mutex_destroy(&tok->pool_lock);
	pthread_condattr_destroy(&tok->cond_attr);
	return TCA_ERR_SYSTEM;
}

int
tok_local_open(const struct tca_token_params *params, const char *pin, size_t pin_len,
    tok_local **tok_ptr, char *err, size_t errlen)
{
	tok_local *tok = NULL;
	CK_TOKEN_INFO ti;
	unsigned int n;
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (tok_ptr == NULL || params == NULL) {
		tca_setf(err, errlen, "invalid arguments");
		return TCA_ERR_INVALID_ARG;
	}
	*tok_ptr = NULL;
	if (params->pool_size < 1 || params->pool_size > TOKEN_MAX_POOL) {
		tca_setf(err, errlen, "token pool_size must be 1..%d", TOKEN_MAX_POOL);
		return TCA_ERR_CONFIG;
	}
	if (pin == NULL || pin_len == 0) {
		/* an empty C_Login could count as a failed attempt on a real HSM */
		tca_setf(err, errlen, "no PIN: the engine logs in as the token's user");
		return TCA_ERR_CONFIG;
	}
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		tca_setf(err, errlen, "out of memory");
		return TCA_ERR_NOMEM;
	}
	tok->base.ops = &tok_local_ops;
	tok->quirks = params->quirks;
	if ((r = check_preferred(&tok->quirks, err, errlen)) != TCA_OK) {
		free(tok);
		return r;
	}
	tok->wait_ms = params->wait_ms != 0 ? params->wait_ms : TCA_TOKEN_DEFAULT_WAIT_MS;
	tok->call_timeout_ms = params->call_timeout_ms;
	if (token_locks_init(tok) != TCA_OK) {
		free(tok);
		tca_setf(err, errlen, "initialising the token's locks failed");
		return TCA_ERR_SYSTEM;
	}
	if ((r = tok_index_init(tok)) != TCA_OK) {
		tca_setf(err, errlen, "out of memory");
		goto out;
	}
	/* the PIN is kept, mlock()ed, to log in again after the token forgot
	 * the login or the module was re-initialised (docs/security.md) */
	if (pin != NULL && (r = tca_secret_copy(pin, pin_len, &tok->pin, &tok->pin_len,
	    err, errlen)) != TCA_OK)
		goto out;
	if (params->token_uri != NULL && (tok->uri = strdup(params->token_uri)) == NULL) {
		tca_setf(err, errlen, "out of memory");
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_p11_load(params->module_path, params->init_args, &tok->mod, err,
	    errlen)) != TCA_OK)
		goto out;
	memset(&ti, 0, sizeof(ti));
	if ((r = tok_select(tok, params->token_uri, &ti, err, errlen)) != TCA_OK)
		goto out;
	tca_p11_str(ti.label, sizeof(ti.label), tok->label, sizeof(tok->label));
	tca_p11_str(ti.manufacturerID, sizeof(ti.manufacturerID), tok->manufacturer,
	    sizeof(tok->manufacturer));
	tca_p11_str(ti.model, sizeof(ti.model), tok->model, sizeof(tok->model));
	tca_p11_str(ti.serialNumber, sizeof(ti.serialNumber), tok->serial, sizeof(tok->serial));

	n = params->pool_size;
	if (params->quirks.max_sessions != 0 && n > params->quirks.max_sessions) {
		log_info("token: pool_size %u capped to the profile's max_sessions %lu", n,
		    params->quirks.max_sessions);
		n = (unsigned int)params->quirks.max_sessions;
	}
	if (ti.ulMaxRwSessionCount != CK_EFFECTIVELY_INFINITE &&
	    ti.ulMaxRwSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    n > ti.ulMaxRwSessionCount) {
		log_info("token: pool_size %u capped to the token's %lu read/write sessions", n,
		    (unsigned long)ti.ulMaxRwSessionCount);
		n = (unsigned int)ti.ulMaxRwSessionCount;
	}
	if ((r = tok_pool_open(tok, n, err, errlen)) != TCA_OK)
		goto out;
	if ((rv = tok_login(tok, tok->sessions[0].h)) != CKR_OK) {
		tca_setf(err, errlen, "login to token \"%s\" failed: %s", tok->label,
		    tca_p11_rv_name(rv));
		r = tca_p11_error(rv) == TCA_ERR_UNAUTHORIZED ? TCA_ERR_UNAUTHORIZED :
		    TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((r = tok_index_build(tok, tok->sessions[0].h)) != TCA_OK) {
		tca_setf(err, errlen, "building the key index of token \"%s\" failed (%s)",
		    tok->label, tca_strerror(r));
		goto out;
	}
	if ((r = tok_discover(tok, err, errlen)) != TCA_OK)
		goto out;
	if (tok->call_timeout_ms != 0 && (r = tok_exec_start(tok, tok->n_sessions)) != TCA_OK) {
		tca_setf(err, errlen, "starting the executor threads failed");
		goto out;
	}
	if ((r = tok_supervisor_start(tok)) != TCA_OK) {
		tca_setf(err, errlen, "starting the token supervisor failed");
		goto out;
	}
	log_info("token: \"%s\" (%s %s, serial %s) slot %lu: %u sessions, %zu keys",
	    tok->label, tok->manufacturer, tok->model, tok->serial,
	    (unsigned long)tok->slot, tok->n_sessions, tok_index_count(tok));
	*tok_ptr = tok;
	tok = NULL;
	r = TCA_OK;
 out:
	tok_local_close(tok);
	return r;
}

int
tok_local_close(tok_local *tok)
{
	int hung;

	if (tok == NULL)
		return 0;
	tok_supervisor_stop(tok);
	if (tok->locks_ok)
		tok_exec_stop(tok);
	if (tok->locks_ok && (hung = tok_exec_hung(tok)) > 0) {
		/* a call is still inside the module and its thread will touch tok
		 * and the module when it returns: neither can be freed, and the
		 * caller must not run the module's exit handlers (token.h) */
		log_error("token: closing with %d PKCS#11 calls still hung; the token's "
		    "memory and module stay as they are", hung);
		return hung;
	}
	if (tok->mod != NULL) {
		tok_pool_close(tok);
		tca_p11_unload(tok->mod);
	}
	tok_index_free(tok);
	if (tok->pin != NULL)
		tca_secret_free(tok->pin, tok->pin_len);
	free(tok->uri);
	if (tok->locks_ok) {
		pthread_cond_destroy(&tok->exec_cond);
		pthread_mutex_destroy(&tok->exec_lock);
		pthread_mutex_destroy(&tok->admin_lock);
		pthread_rwlock_destroy(&tok->index_lock);
		pthread_cond_destroy(&tok->sup_cond);
		pthread_cond_destroy(&tok->pool_cond);
		pthread_mutex_destroy(&tok->pool_lock);
		pthread_condattr_destroy(&tok->cond_attr);
	}
	free(tok);
	return 0;
}

size_t
tok_local_key_count(tok_local *tok)
{
	return tok != NULL ? tok_index_count(tok) : 0;
}

static int
id_ok(const unsigned char *id, size_t id_len)
{
	return id != NULL && id_len > 0 && id_len <= TOKEN_MAX_ID;
}

static int
tok_local_find_key(tok_local *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	if (tok == NULL || !id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	return tok_index_lookup(tok, id, id_len, NULL, type_ptr, NULL);
}

/* ------------------------------------------------------------ public keys */

static int
pkey_from_params(const char *keytype, OSSL_PARAM_BLD *bld, EVP_PKEY **pkey_ptr)
{
	EVP_PKEY_CTX *cctx = NULL;
	EVP_PKEY *pkey = NULL;
	int r = TCA_ERR_CRYPTO;

	/* a freshly generated key is also checked as a public key */
	if (tca_pkey_fromdata(keytype, bld, &pkey) != TCA_OK ||
	    (cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(cctx) != 1)
		goto out;
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(cctx);
	return r;
}

/* Builds the EVP_PKEY of a generated key from its public key object. */
static int
read_public_key(tok_local *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub,
    enum tca_key_type type, EVP_PKEY **pkey_ptr, CK_RV *rv_ptr)
{
	unsigned char buf[600], e_buf[16];
	const unsigned char *pt = NULL;
	size_t len = 0, pt_len = 0, e_len = 0;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	const struct tca_key_desc *kd;
	CK_RV rv = CKR_OK;
	int r = TCA_ERR_INTERNAL;

	*pkey_ptr = NULL;
	if ((kd = tca_key_desc(type)) == NULL)
		return TCA_ERR_INVALID_ARG;
	if (kd->rsa_bits != 0) {
		if ((rv = tca_p11_result(tok->mod, "C_GetAttributeValue(CKA_MODULUS)", P11_LOG_ERROR,
		    tca_p11_get_attr(tok->mod, h, pub, CKA_MODULUS, buf, sizeof(buf), &len))) != CKR_OK ||
		    (rv = tca_p11_result(tok->mod, "C_GetAttributeValue(CKA_PUBLIC_EXPONENT)", P11_LOG_ERROR,
		    tca_p11_get_attr(tok->mod, h, pub, CKA_PUBLIC_EXPONENT, e_buf, sizeof(e_buf),
		    &e_len))) != CKR_OK) {
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		r = TCA_ERR_CRYPTO;
		if ((n = BN_bin2bn(buf, (int)len, NULL)) == NULL ||
		    (e = BN_bin2bn(e_buf, (int)e_len, NULL)) == NULL)
			goto out;
		if (BN_num_bits(n) != (int)kd->rsa_bits) {
			log_error("token: generated RSA key has %d bits, not %u", BN_num_bits(n),
			    kd->rsa_bits);
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
		if ((r = pkey_from_params(kd->pkey_type, bld, &pkey)) != TCA_OK)
			goto out;
	} else {
		if ((rv = tca_p11_result(tok->mod, "C_GetAttributeValue(CKA_EC_POINT)", P11_LOG_ERROR,
		    tca_p11_get_attr(tok->mod, h, pub, CKA_EC_POINT, buf, sizeof(buf), &len))) != CKR_OK) {
			r = TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
		if ((r = tca_p11_ec_point(kd, buf, len, &pt, &pt_len)) != TCA_OK) {
			log_error("token: CKA_EC_POINT (%zu bytes) is neither a %s point nor a "
			    "DER OCTET STRING holding one", len, kd->name);
			goto out;
		}
		r = TCA_ERR_CRYPTO;
		if (kd->group == NULL) {
			/* Ed25519: the 32-byte encoding (RFC 8032 5.1.5) */
			if (pt_len != kd->field_len) {
				log_error("token: Ed25519 public key is %zu bytes, not %zu", pt_len,
				    kd->field_len);
				r = TCA_ERR_TOKEN_UNAVAILABLE;
				goto out;
			}
			if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt,
			    pt_len)) == NULL)
				goto out;
		} else {
			if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
			    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
			    kd->group, 0) ||
			    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
			    pt, pt_len))
				goto out;
			if ((r = pkey_from_params(kd->pkey_type, bld, &pkey)) != TCA_OK) {
				log_error("token: CKA_EC_POINT is not a valid point on the curve");
				goto out;
			}
		}
	}
	*pkey_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (rv_ptr != NULL)
		*rv_ptr = rv;
	EVP_PKEY_free(pkey);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

/* ------------------------------------------------------------ capabilities */

#define TOKEN_MAX_MECHS 4096

/* 1 if the mechanism's key size range (bits; some tokens say bytes for EC)
 * admits kd, or says nothing. */
static int
size_fits(const struct tca_key_desc *kd, const CK_MECHANISM_INFO *mi)
{
	CK_ULONG bits;

	if (mi->ulMaxKeySize == 0 || kd->ckk == CKK_EC_EDWARDS)
		return 1;
	bits = kd->rsa_bits != 0 ? kd->rsa_bits : (CK_ULONG)kd->field_len * 8;
	if (bits >= mi->ulMinKeySize && bits <= mi->ulMaxKeySize)
		return 1;
	return kd->rsa_bits == 0 && kd->field_len >= mi->ulMinKeySize &&
	    kd->field_len <= mi->ulMaxKeySize;
}

/* 1 if m is in the list, has flag and fits kd's size. */
static int
mech_usable(tok_local *tok, const CK_MECHANISM_TYPE *mechs, CK_ULONG n, CK_MECHANISM_TYPE m,
    CK_FLAGS flag, const struct tca_key_desc *kd)
{
	CK_MECHANISM_INFO mi;
	CK_ULONG i;

	for (i = 0; i < n; i++)
		if (mechs[i] == m)
			break;
	if (i == n)
		return 0;
	memset(&mi, 0, sizeof(mi));
	if (P11_CALL(tok->mod, C_GetMechanismInfo, tok->slot, m, &mi) != CKR_OK)
		return 0;
	return (mi.flags & flag) != 0 && size_fits(kd, &mi);
}

/* 1 if the profile's prefer_mechanisms names m. */
static int
mech_preferred(tok_local *tok, CK_MECHANISM_TYPE m)
{
	char buf[sizeof(tok->quirks.prefer_mechanisms)], *t, *save = NULL;
	CK_MECHANISM_TYPE pm;

	snprintf(buf, sizeof(buf), "%s", tok->quirks.prefer_mechanisms);
	for (t = strtok_r(buf, ", \t", &save); t != NULL; t = strtok_r(NULL, ", \t", &save))
		if (tca_p11_mech_from_name(t, &pm) == 0 && pm == m)
			return 1;
	return 0;
}

int
tok_discover(tok_local *tok, char *err, size_t errlen)
{
	CK_MECHANISM_TYPE *mechs = NULL, sign_mech[TCA_KEY_TYPE_COUNT + 1], cand[2];
	int hash_on_token[TCA_KEY_TYPE_COUNT + 1];
	const struct tca_key_desc *kd;
	unsigned int gen = 0, sign = 0;
	char names[160], desc[512] = "";
	CK_ULONG n = 0;
	size_t i, j, o = 0;
	CK_RV rv;
	int prefer, r = TCA_ERR_TOKEN_UNAVAILABLE;

	for (i = 0; i <= TCA_KEY_TYPE_COUNT; i++) {
		sign_mech[i] = CKM_VENDOR_DEFINED;
		hash_on_token[i] = 0;
	}
	if ((rv = P11_CALL(tok->mod, C_GetMechanismList, tok->slot, NULL, &n)) != CKR_OK ||
	    n > TOKEN_MAX_MECHS) {
		tca_setf(err, errlen, "C_GetMechanismList failed: %s", rv != CKR_OK ?
		    tca_p11_rv_name(rv) : "too many mechanisms");
		goto out;
	}
	if (n > 0 && (mechs = calloc(n, sizeof(*mechs))) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if (n > 0 && (rv = P11_CALL(tok->mod, C_GetMechanismList, tok->slot, mechs, &n)) != CKR_OK) {
		tca_setf(err, errlen, "C_GetMechanismList failed: %s", tca_p11_rv_name(rv));
		goto out;
	}
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		if (kd->type == TCA_KEY_ED25519 && tok->quirks.no_ed25519)
			continue;
		if (!mech_usable(tok, mechs, n, kd->gen_mech, CKF_GENERATE_KEY_PAIR, kd))
			continue;
		/* the raw mechanism unless the profile prefers the token to hash */
		prefer = kd->hash_mech != 0 && mech_preferred(tok, kd->hash_mech);
		cand[0] = prefer ? kd->hash_mech : kd->raw_mech;
		cand[1] = prefer ? kd->raw_mech : kd->hash_mech;
		for (j = 0; j < 2; j++) {
			if ((cand[j] == kd->hash_mech && kd->hash_mech == 0) ||
			    !mech_usable(tok, mechs, n, cand[j], CKF_SIGN, kd))
				continue;
			sign_mech[kd->type] = cand[j];
			hash_on_token[kd->type] = cand[j] == kd->hash_mech;
			break;
		}
		if (sign_mech[kd->type] == CKM_VENDOR_DEFINED)
			continue;
		gen |= 1u << kd->type;
		sign |= 1u << kd->type;
		if (o < sizeof(desc))
			o += (size_t)snprintf(desc + o, sizeof(desc) - o, "%s%s (%s)",
			    o > 0 ? ", " : "", kd->name, tca_p11_mech_name(sign_mech[kd->type]));
	}
	pthread_mutex_lock(&tok->pool_lock);
	tok->gen_mask = gen;
	tok->sign_mask = sign;
	memcpy(tok->sign_mech, sign_mech, sizeof(sign_mech));
	memcpy(tok->hash_on_token, hash_on_token, sizeof(hash_on_token));
	pthread_mutex_unlock(&tok->pool_lock);
	tca_key_types_format(gen, names, sizeof(names));
	if (gen == 0)
		log_warn("token: \"%s\" offers no key type the engine can use (%lu mechanisms); "
		    "ca create will be refused", tok->label, (unsigned long)n);
	else
		log_info("token: key types: %s", desc);
	r = TCA_OK;
 out:
	free(mechs);
	return r;
}

static unsigned int
tok_local_key_types(tok_local *tok, const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1])
{
	unsigned int mask;
	size_t i;

	if (tok == NULL)
		return 0;
	pthread_mutex_lock(&tok->pool_lock);
	mask = tok->gen_mask & tok->sign_mask;
	for (i = 0; sign_mech_ptr != NULL && i <= TCA_KEY_TYPE_COUNT; i++)
		sign_mech_ptr[i] = (mask & (1u << i)) ? tca_p11_mech_name(tok->sign_mech[i]) : NULL;
	pthread_mutex_unlock(&tok->pool_lock);
	return mask;
}

/* ------------------------------------------------------------ read-back */

/* 1 if the token hands out the value of attribute type of obj. */
static int
attr_readable(tok_local *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE_TYPE type)
{
	unsigned char *buf = NULL;
	CK_ATTRIBUTE a;
	CK_ULONG len;
	int readable = 0;

	a.type = type;
	a.pValue = NULL;
	a.ulValueLen = 0;
	/* CKR_ATTRIBUTE_SENSITIVE / TYPE_INVALID: not readable */
	if (P11_CALL_QUIET(tok->mod, C_GetAttributeValue, h, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 ||
	    a.ulValueLen > 8192)
		return 0;
	len = a.ulValueLen;
	if ((buf = malloc(len)) == NULL)
		return 0;
	a.pValue = buf;
	if (P11_CALL_QUIET(tok->mod, C_GetAttributeValue, h, obj, &a, 1) == CKR_OK &&
	    a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > 0 && a.ulValueLen <= len)
		readable = 1;
	OPENSSL_cleanse(buf, len);
	free(buf);
	return readable;
}

/* The security attributes of private key obj, read on session h.  An
 * attribute the token does not have reads as 0 (CKR_ATTRIBUTE_TYPE_INVALID). */
static CK_RV
read_key_attrs(tok_local *tok, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key,
    struct tca_key_attrs *attrs)
{
	static const CK_ATTRIBUTE_TYPE secret_parts[] = {
		CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
	};
	struct {
		CK_ATTRIBUTE_TYPE type;
		int *out;
	} bools[7];
	size_t i;
	CK_RV rv;

	memset(attrs, 0, sizeof(*attrs));
	bools[0].type = CKA_TOKEN;		bools[0].out = &attrs->token;
	bools[1].type = CKA_PRIVATE;		bools[1].out = &attrs->private_;
	bools[2].type = CKA_SENSITIVE;		bools[2].out = &attrs->sensitive;
	bools[3].type = CKA_EXTRACTABLE;	bools[3].out = &attrs->extractable;
	bools[4].type = CKA_SIGN;		bools[4].out = &attrs->sign;
	bools[5].type = CKA_ALWAYS_SENSITIVE;	bools[5].out = &attrs->always_sensitive;
	bools[6].type = CKA_NEVER_EXTRACTABLE;	bools[6].out = &attrs->never_extractable;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		/* one at a time: a token lacking one attribute fails the whole call */
		rv = tca_p11_get_bool(tok->mod, h, key, bools[i].type, bools[i].out);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
			continue;
		if (rv != CKR_OK)
			return tca_p11_result(tok->mod, "C_GetAttributeValue (key attributes)",
			    P11_LOG_ERROR, rv);
	}
	for (i = 0; i < sizeof(secret_parts) / sizeof(secret_parts[0]); i++)
		if (attr_readable(tok, h, key, secret_parts[i]))
			attrs->value_readable = 1;
	return CKR_OK;
}

/* NULL if the attributes say the key can never leave the token, else what
 * is wrong. */
static const char *
key_attrs_weakness(const struct tca_key_attrs *a)
{
	if (!a->private_)
		return "CKA_PRIVATE is not TRUE";
	if (!a->sensitive)
		return "CKA_SENSITIVE is not TRUE";
	if (a->extractable)
		return "CKA_EXTRACTABLE is TRUE";
	if (!a->always_sensitive)
		return "CKA_ALWAYS_SENSITIVE is not TRUE";
	if (!a->never_extractable)
		return "CKA_NEVER_EXTRACTABLE is not TRUE";
	if (a->value_readable)
		return "the private key value can be read";
	return NULL;
}

/* ------------------------------------------------------------ generate */

/* Removes a half-made key pair.  0 if nothing is left behind. */
static int
destroy_pair(tok_local *tok, struct session *s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	CK_OBJECT_HANDLE objs[2];
	CK_RV rv;
	int i, left = 0;

	objs[0] = priv;
	objs[1] = pub;
	for (i = 0; i < 2; i++) {
		if (objs[i] == CK_INVALID_HANDLE)
			continue;
		rv = P11_CALL(tok->mod, C_DestroyObject, s->h, objs[i]);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
			tok_session_failed(tok, s, rv);
			left++;
		}
	}
	return left;
}

static int
tok_local_generate_key(tok_local *tok, enum tca_key_type type,
    const unsigned char *id, size_t id_len, const char *label, EVP_PKEY **pub_ptr)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	static const unsigned char rsa_f4[] = { 0x01, 0x00, 0x01 };
	const struct tca_key_desc *kd;
	CK_ULONG bits = 0;
	int ec_params_slot = -1;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub_tmpl[8], priv_tmpl[12];
	CK_ULONG n_pub = 0, n_priv = 0;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	struct session *s = NULL;
	struct key_entry *e = NULL;
	EVP_PKEY *pkey = NULL;
	struct tca_key_attrs attrs;
	const char *weak;
	size_t label_len;
	char hex[2 * 16 + 1];
	CK_RV rv = CKR_OK;
	int admin_locked = 0, r = TCA_ERR_INTERNAL;

#define ATTR(arr, n, ty, p, l) do { \
	(arr)[n].type = (ty); (arr)[n].pValue = (void *)(p); (arr)[n].ulValueLen = (l); (n)++; \
} while (0)

	if (pub_ptr != NULL)
		*pub_ptr = NULL;
	if (tok == NULL || !id_ok(id, id_len) || label == NULL || pub_ptr == NULL ||
	    (label_len = strlen(label)) > TOKEN_MAX_LABEL)
		return TCA_ERR_INVALID_ARG;
	tca_p11_id_hex(id, id_len > 16 ? 16 : id_len, hex, sizeof(hex));
	if ((kd = tca_key_desc(type)) == NULL)
		return TCA_ERR_INVALID_ARG;
	if (!(tok_local_key_types(tok, NULL) & (1u << type))) {
		log_error("token: refusing to make a %s key: the token does not offer its "
		    "generation and signing mechanisms", kd->name);
		return TCA_ERR_POLICY_VIOLATION;
	}
	mech.mechanism = kd->gen_mech;
	if (kd->ec_params != NULL) {
		/* the RFC 5480 / RFC 8410 OID; SoftHSMv2 2.6.1 also accepts the
		 * PrintableString "edwards25519" and stores that form on the key */
		ec_params_slot = (int)n_pub;
		ATTR(pub_tmpl, n_pub, CKA_EC_PARAMS, kd->ec_params, kd->ec_params_len);
	} else {
		bits = kd->rsa_bits;
		ATTR(pub_tmpl, n_pub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ATTR(pub_tmpl, n_pub, CKA_PUBLIC_EXPONENT, rsa_f4, sizeof(rsa_f4));
	}
	ATTR(pub_tmpl, n_pub, CKA_TOKEN, &t, sizeof(t));
	if (!tok->quirks.omit_verify)
		ATTR(pub_tmpl, n_pub, CKA_VERIFY, &t, sizeof(t));
	ATTR(pub_tmpl, n_pub, CKA_ID, id, id_len);
	ATTR(pub_tmpl, n_pub, CKA_LABEL, label, label_len);

	ATTR(priv_tmpl, n_priv, CKA_TOKEN, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_PRIVATE, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_SENSITIVE, &t, sizeof(t));
	ATTR(priv_tmpl, n_priv, CKA_EXTRACTABLE, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_SIGN, &t, sizeof(t));
	/* not security attributes: a profile may leave them to the token */
	if (!tok->quirks.omit_decrypt)
		ATTR(priv_tmpl, n_priv, CKA_DECRYPT, &f, sizeof(f));
	if (!tok->quirks.omit_unwrap)
		ATTR(priv_tmpl, n_priv, CKA_UNWRAP, &f, sizeof(f));
	if (!tok->quirks.omit_derive)
		ATTR(priv_tmpl, n_priv, CKA_DERIVE, &f, sizeof(f));
	ATTR(priv_tmpl, n_priv, CKA_ID, id, id_len);
	ATTR(priv_tmpl, n_priv, CKA_LABEL, label, label_len);
#undef ATTR

	pthread_mutex_lock(&tok->admin_lock);
	admin_locked = 1;
	if (tok_index_lookup(tok, id, id_len, NULL, NULL, NULL) == TCA_OK) {
		r = TCA_ERR_ALREADY_EXISTS;
		goto out;
	}
	if ((e = tok_entry_new(id, id_len, label, label_len, CK_INVALID_HANDLE, type)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tok_pool_borrow(tok, tca_p11_now_ms() + tok->wait_ms, &s)) != TCA_OK)
		goto out;
	rv = P11_CALL(tok->mod, C_GenerateKeyPair, s->h, &mech, pub_tmpl, n_pub, priv_tmpl,
	    n_priv, &pub, &priv);
	if (kd->ec_params_name != NULL && ec_params_slot >= 0 &&
	    (rv == CKR_CURVE_NOT_SUPPORTED || rv == CKR_DOMAIN_PARAMS_INVALID ||
	    rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT)) {
		/* PKCS#11 3.0 allows the curve name instead of the OID, and some
		 * modules take only that (yubihsm-shell: "edwards25519"); the first
		 * attempt made nothing, so a second one cannot leave a stray key */
		log_info("token: the token refused the %s curve OID (%s); trying the curve name",
		    kd->name, tca_p11_rv_name(rv));
		pub_tmpl[ec_params_slot].pValue = (void *)kd->ec_params_name;
		pub_tmpl[ec_params_slot].ulValueLen = kd->ec_params_name_len;
		pub = priv = CK_INVALID_HANDLE;
		rv = P11_CALL(tok->mod, C_GenerateKeyPair, s->h, &mech, pub_tmpl, n_pub,
		    priv_tmpl, n_priv, &pub, &priv);
	}
	if (rv != CKR_OK) {
		/* never retried (the token may have made the key before failing):
		 * the recovery only prepares the next request */
		if ((r = tok_recover(tok, s, rv, "C_GenerateKeyPair")) == TCA_OK)
			r = TCA_ERR_TOKEN_UNAVAILABLE;
		log_error("token: generating a %s key (id %s) failed: %s%s", kd->name, hex,
		    tca_p11_rv_name(rv), r == TCA_ERR_TOKEN_REFUSED ? " (the token refuses "
		    "the key template or mechanism: see the hsm-profile)" : "");
		if (rv == CKR_MECHANISM_INVALID || rv == CKR_CURVE_NOT_SUPPORTED ||
		    rv == CKR_DOMAIN_PARAMS_INVALID)
			r = TCA_ERR_POLICY_VIOLATION;	/* a key type this token cannot make */
		pub = priv = CK_INVALID_HANDLE;
		goto out;
	}
	/* the key must be unable ever to leave the token, as the token says */
	if ((rv = read_key_attrs(tok, s->h, priv, &attrs)) != CKR_OK) {
		r = tca_p11_error(rv);
		goto out;
	}
	if ((weak = key_attrs_weakness(&attrs)) != NULL) {
		log_error("token: the generated %s key (id %s) is refused: %s", kd->name, hex,
		    weak);
		r = TCA_ERR_TOKEN_REFUSED;
		goto out;
	}
	if ((r = read_public_key(tok, s->h, pub, type, &pkey, &rv)) != TCA_OK) {
		tok_session_failed(tok, s, rv);
		goto out;
	}
	e->handle = priv;
	if ((r = tok_index_insert(tok, e)) != TCA_OK)
		goto out;
	e = NULL;
	log_info("token: generated %s key, id %s", kd->name, hex);
	*pub_ptr = pkey;
	pkey = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK && s != NULL && (pub != CK_INVALID_HANDLE || priv != CK_INVALID_HANDLE) &&
	    destroy_pair(tok, s, pub, priv) != 0 && e != NULL && priv != CK_INVALID_HANDLE) {
		/* indexed, so status counts it and `ca delete` removes it */
		log_error("token: could not remove the half-made key pair %s; it stays on "
		    "the token as an orphan", hex);
		e->handle = priv;
		if (tok_index_insert(tok, e) == TCA_OK)
			e = NULL;
	}
	tok_pool_return(tok, s);
	if (admin_locked)
		pthread_mutex_unlock(&tok->admin_lock);
	EVP_PKEY_free(pkey);
	free(e);
	return r;
}

/* ------------------------------------------------------------ sign */

struct sign_ctx {
	struct tok_ref ref;		/* first: an executor may hold it longer */
	enum tca_key_type type;		/* the key type the algorithm needs */
	const unsigned char *in;	/* for the raw mechanism: digest, DigestInfo or message */
	size_t in_len;
	const unsigned char *msg;	/* for a hash-on-token mechanism: the message */
	size_t msg_len;
	unsigned char *out;
	size_t cap, out_len;
	size_t alloc_len;		/* of the whole allocation, for the wipe */
};

static CK_RV
sign_op(tok_local *tok, struct session *s, struct tok_op *op, void *vctx)
{
	struct sign_ctx *c = vctx;	/* its tok_ref comes first */
	CK_MECHANISM mech = { CKM_VENDOR_DEFINED, NULL, 0 };
	CK_ULONG olen = (CK_ULONG)c->cap;
	const unsigned char *in = c->in;
	size_t in_len = c->in_len;
	CK_RV rv;

	if (op->type != c->type) {
		/* the algorithm does not fit the key: the caller's mistake */
		op->r = TCA_ERR_INVALID_ARG;
		return TOK_RV_ENGINE;
	}
	/* read with a session borrowed: the supervisor rewrites the capabilities
	 * only while every session is back in the pool */
	if ((mech.mechanism = tok->sign_mech[c->type]) == CKM_VENDOR_DEFINED) {
		op->r = TCA_ERR_TOKEN_REFUSED;
		return TOK_RV_ENGINE;
	}
	if (tok->hash_on_token[c->type]) {
		in = c->msg;
		in_len = c->msg_len;
	}
	if ((rv = P11_CALL(tok->mod, C_SignInit, s->h, &mech, op->key)) != CKR_OK)
		return rv;
	/* C_Sign ends the operation whatever it returns (except BUFFER_TOO_SMALL,
	 * which cannot happen: out holds any signature we accept) */
	rv = P11_CALL(tok->mod, C_Sign, s->h, (CK_BYTE_PTR)in, (CK_ULONG)in_len, c->out, &olen);
	if (rv == CKR_OK)
		c->out_len = olen;
	return rv;
}

static void
count_sign(tok_local *tok, int ok)
{
	pthread_mutex_lock(&tok->pool_lock);
	if (ok)
		tok->signatures++;
	else
		tok->sign_errors++;
	pthread_mutex_unlock(&tok->pool_lock);
}

/* The digest named in the key-type table; NULL for a name we do not hash with. */
static const EVP_MD *
md_of(const char *name)
{
	if (name == NULL)
		return NULL;
	if (strcmp(name, "SHA256") == 0)
		return EVP_sha256();
	if (strcmp(name, "SHA384") == 0)
		return EVP_sha384();
	return NULL;
}

/* r||s (each half field_len bytes) -> DER ECDSA-Sig-Value. */
static int
ecdsa_raw_to_der(const unsigned char *raw, size_t field_len, unsigned char *sig,
    size_t *sig_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p;
	int len, r = TCA_ERR_CRYPTO;

	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(raw, (int)field_len, NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + field_len, (int)field_len, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL;		/* owned by es now */
	if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0)
		goto out;
	if ((size_t)len > *sig_len) {
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	p = sig;
	if (i2d_ECDSA_SIG(es, &p) != len)
		goto out;
	*sig_len = (size_t)len;
	r = TCA_OK;
 out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

static void
sign_ctx_free(struct tok_ref *ref)
{
	struct sign_ctx *c = (struct sign_ctx *)ref;

	/* nothing secret, but the signature and what was signed go no further */
	OPENSSL_cleanse(c, c->alloc_len);
	free(c);
}

static int
tok_local_sign(tok_local *tok, const unsigned char *id, size_t id_len,
    enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
    unsigned char *sig, size_t *sig_len)
{
	const struct tca_key_desc *kd;
	const EVP_MD *md = NULL;
	unsigned int md_len = 0;
	size_t alloc_len;
	struct sign_ctx *c = NULL;
	unsigned char *in, *copy;
	struct tok_op op;
	int r = TCA_ERR_INTERNAL;

	if (tok == NULL || !id_ok(id, id_len) || (msg == NULL && msg_len != 0) ||
	    sig == NULL || sig_len == NULL || msg_len > TCA_TOKEN_MAX_MSG)
		return TCA_ERR_INVALID_ARG;
	if ((kd = tca_key_desc_by_alg(alg)) == NULL || kd->digest_info_len > 64)
		return TCA_ERR_INVALID_ARG;
	/* largest DER ECDSA-Sig-Value: two INTEGERs with a sign byte */
	if (*sig_len < kd->sig_len + (kd->sig_form == TCA_SIG_FORM_ECDSA_RS ? 8 : 0))
		return TCA_ERR_INVALID_ARG;
	/*
	 * One allocation holds everything the token call touches - the prepared
	 * input, the signature and a copy of the message for hash-on-token
	 * mechanisms - because a call that hangs past token.call_timeout_ms may
	 * return after this function has.
	 */
	alloc_len = sizeof(*c) + TOKEN_SIGN_IN_MAX + TOKEN_MAX_SIG + msg_len;
	if ((c = calloc(1, alloc_len)) == NULL)
		return TCA_ERR_NOMEM;
	c->alloc_len = alloc_len;
	c->ref.refs = 1;
	c->ref.free_fn = sign_ctx_free;
	c->type = kd->type;
	in = (unsigned char *)(c + 1);
	c->out = in + TOKEN_SIGN_IN_MAX;
	c->cap = TOKEN_MAX_SIG;
	copy = c->out + TOKEN_MAX_SIG;
	if (msg_len > 0)
		memcpy(copy, msg, msg_len);
	c->msg = copy;
	c->msg_len = msg_len;
	if (kd->md == NULL) {
		/* EdDSA signs the message itself */
		c->in = copy;
		c->in_len = msg_len;
	} else {
		if ((md = md_of(kd->md)) == NULL) {
			r = TCA_ERR_INVALID_ARG;
			goto out;
		}
		if (kd->digest_info != NULL)
			memcpy(in, kd->digest_info, kd->digest_info_len);
		if (EVP_Digest(msg, msg_len, in + kd->digest_info_len, &md_len, md, NULL) != 1) {
			r = TCA_ERR_CRYPTO;
			goto out;
		}
		c->in = in;
		c->in_len = kd->digest_info_len + md_len;
	}
	memset(&op, 0, sizeof(op));
	op.what = "signing";
	op.id = id;
	op.id_len = id_len;
	op.bounded = 1;
	r = tok_run(tok, sign_op, &op, &c->ref);
	if (r != TCA_ERR_INVALID_ARG)	/* a caller's mistake never reached the token */
		count_sign(tok, r == TCA_OK);
	if (r != TCA_OK)
		goto out;
	if (c->out_len != kd->sig_len) {
		log_error("token: %s signature is %zu bytes, expected %zu", kd->name,
		    c->out_len, kd->sig_len);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (kd->sig_form == TCA_SIG_FORM_ECDSA_RS) {
		r = ecdsa_raw_to_der(c->out, kd->field_len, sig, sig_len);
		goto out;
	}
	memcpy(sig, c->out, c->out_len);
	*sig_len = c->out_len;
	r = TCA_OK;
 out:
	tok_ref_put(&c->ref);
	return r;
}

static int
tok_local_check_key(tok_local *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr)
{
	struct tok_op op;
	int r;

	if (tok == NULL || !id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	if (tok_index_lookup(tok, id, id_len, NULL, type_ptr, NULL) == TCA_OK)
		return TCA_OK;
	memset(&op, 0, sizeof(op));
	op.what = "looking up a key";
	op.absent_ok = 1;
	op.id = id;
	op.id_len = id_len;
	r = tok_run(tok, NULL, &op, NULL);
	if (op.key_missing)
		return TCA_ERR_NOT_FOUND;
	if (r == TCA_OK && type_ptr != NULL)
		*type_ptr = op.type;
	return r;
}

/* ------------------------------------------------------------ admin ops */

struct find_ctx {
	const unsigned char *id;
	size_t id_len;
	unsigned long destroyed;	/* destroy: objects destroyed so far */
	unsigned long count;		/* count: objects found */
	int destroy;
};

/* Finds every object with the id and counts or destroys them.  Safe to run
 * again: what was destroyed is not found the next time. */
static CK_RV
find_op(tok_local *tok, struct session *s, struct tok_op *op, void *vctx)
{
	struct find_ctx *c = vctx;
	CK_OBJECT_HANDLE *objs = NULL;
	CK_ATTRIBUTE tmpl[1];
	size_t n = 0, i;
	CK_RV rv;

	(void)op;
	tmpl[0].type = CKA_ID;
	tmpl[0].pValue = (void *)c->id;
	tmpl[0].ulValueLen = (CK_ULONG)c->id_len;
	if ((rv = tca_p11_find_all(tok->mod, s->h, tmpl, 1, &objs, &n)) != CKR_OK)
		return rv;
	c->count = (unsigned long)n;
	for (i = 0; c->destroy && i < n; i++) {
		rv = P11_CALL(tok->mod, C_DestroyObject, s->h, objs[i]);
		if (rv == CKR_OBJECT_HANDLE_INVALID) {
			rv = CKR_OK;
			continue;
		}
		if (rv != CKR_OK)
			break;
		c->destroyed++;
	}
	free(objs);
	return rv;
}

static int
tok_local_destroy_key(tok_local *tok, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr)
{
	struct find_ctx c;
	struct tok_op op;
	char hex[2 * 16 + 1];
	int r;

	if (destroyed_ptr != NULL)
		*destroyed_ptr = 0;
	if (tok == NULL || !id_ok(id, id_len))
		return TCA_ERR_INVALID_ARG;
	tca_p11_id_hex(id, id_len > 16 ? 16 : id_len, hex, sizeof(hex));
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.id_len = id_len;
	c.destroy = 1;
	memset(&op, 0, sizeof(op));
	op.what = "destroying a key";
	pthread_mutex_lock(&tok->admin_lock);
	r = tok_run(tok, find_op, &op, &c);
	/* whatever happened, the key must not be used for signing any more */
	(void)tok_index_remove(tok, id, id_len);
	pthread_mutex_unlock(&tok->admin_lock);
	if (r == TCA_OK && c.destroyed == 0)
		r = TCA_ERR_NOT_FOUND;
	if (r != TCA_OK && r != TCA_ERR_NOT_FOUND)
		log_error("token: destroying the objects of id %s stopped after %lu (%s)",
		    hex, c.destroyed, tca_strerror(r));
	if (c.destroyed > 0)
		log_info("token: destroyed %lu objects with id %s", c.destroyed, hex);
	if (destroyed_ptr != NULL)
		*destroyed_ptr = c.destroyed;
	return r;
}

static int
tok_local_count_objects(tok_local *tok, const unsigned char *id, size_t id_len,
    unsigned long *count_ptr)
{
	struct find_ctx c;
	struct tok_op op;
	int r;

	if (count_ptr != NULL)
		*count_ptr = 0;
	if (tok == NULL || !id_ok(id, id_len) || count_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(&c, 0, sizeof(c));
	c.id = id;
	c.id_len = id_len;
	memset(&op, 0, sizeof(op));
	op.what = "counting objects";
	if ((r = tok_run(tok, find_op, &op, &c)) == TCA_OK)
		*count_ptr = c.count;
	return r;
}

static CK_RV
attrs_op(tok_local *tok, struct session *s, struct tok_op *op, void *vctx)
{
	return read_key_attrs(tok, s->h, op->key, vctx);
}

static int
tok_local_key_attrs(tok_local *tok, const unsigned char *id, size_t id_len,
    struct tca_key_attrs *attrs)
{
	struct tok_op op;
	int r;

	if (tok == NULL || !id_ok(id, id_len) || attrs == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(attrs, 0, sizeof(*attrs));
	memset(&op, 0, sizeof(op));
	op.what = "reading key attributes";
	op.id = id;
	op.id_len = id_len;
	r = tok_run(tok, attrs_op, &op, attrs);
	return op.key_missing ? TCA_ERR_NOT_FOUND : r;
}

static int
tok_local_foreach_key(tok_local *tok, tca_token_key_cb cb, void *ctx)
{
	if (tok == NULL || cb == NULL)
		return TCA_ERR_INVALID_ARG;
	return tok_index_foreach(tok, cb, ctx);
}

static const char *
health_name(enum tok_health h)
{
	switch (h) {
	case TOK_OK:
		return "ok";
	case TOK_RECOVERING:
		return "recovering";
	case TOK_PIN_REFUSED:
		return "pin-refused";
	default:
		return "unknown";
	}
}

static int
tok_local_get_status(tok_local *tok, struct tca_token_status *st)
{
	char fn[64];
	CK_RV rv = CKR_OK;
	int64_t when = 0;
	unsigned long long failures = 0;

	if (tok == NULL || st == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(st, 0, sizeof(*st));
	/* from memory: status must answer while the token is away */
	snprintf(st->label, sizeof(st->label), "%s", tok->label);
	snprintf(st->manufacturer, sizeof(st->manufacturer), "%s", tok->manufacturer);
	snprintf(st->model, sizeof(st->model), "%s", tok->model);
	snprintf(st->serial, sizeof(st->serial), "%s", tok->serial);
	pthread_mutex_lock(&tok->pool_lock);
	st->slot_id = (unsigned long)tok->slot;
	st->pool_size = tok->n_sessions;
	st->sessions_busy = tok->n_sessions - tok->n_free;
	st->signatures = tok->signatures;
	st->sign_errors = tok->sign_errors;
	snprintf(st->health, sizeof(st->health), "%s", health_name(tok->health));
	st->recoveries = tok->recoveries;
	st->relogins = tok->relogins;
	st->refreshes = tok->refreshes;
	st->sessions_replaced = tok->replaced;
	snprintf(st->problem, sizeof(st->problem), "%s", tok->problem);
	st->problem_time = tok->problem_time;
	pthread_mutex_unlock(&tok->pool_lock);
	tca_p11_last_error(tok->mod, fn, sizeof(fn), &rv, &when, &failures);
	if (fn[0] != '\0')
		snprintf(st->last_error, sizeof(st->last_error), "%s: %s", fn,
		    tca_p11_rv_name(rv));
	st->last_error_time = when;
	st->call_failures = failures;
	st->keys = tok_local_key_count(tok);
	snprintf(st->isolation, sizeof(st->isolation), "none");
	return TCA_OK;
}

/* ---- the backend table (token-backend.h) */

#define LOCAL(t) ((tok_local *)(void *)(t))

static int
l_close(tca_token *t)
{
	return tok_local_close(LOCAL(t));
}

static int
l_retry(tca_token *t, const char *pin, size_t pin_len)
{
	return tok_local_retry(LOCAL(t), pin, pin_len);
}

static size_t
l_key_count(tca_token *t)
{
	return tok_local_key_count(LOCAL(t));
}

static int
l_find_key(tca_token *t, const unsigned char *id, size_t id_len, enum tca_key_type *type_ptr)
{
	return tok_local_find_key(LOCAL(t), id, id_len, type_ptr);
}

static unsigned int
l_key_types(tca_token *t, const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1])
{
	return tok_local_key_types(LOCAL(t), sign_mech_ptr);
}

static int
l_check_key(tca_token *t, const unsigned char *id, size_t id_len, enum tca_key_type *type_ptr)
{
	return tok_local_check_key(LOCAL(t), id, id_len, type_ptr);
}

static int
l_generate_key(tca_token *t, enum tca_key_type type, const unsigned char *id,
    size_t id_len, const char *label, EVP_PKEY **pub_ptr)
{
	return tok_local_generate_key(LOCAL(t), type, id, id_len, label, pub_ptr);
}

static int
l_sign(tca_token *t, const unsigned char *id, size_t id_len, enum tca_sig_alg alg,
    const unsigned char *msg, size_t msg_len, unsigned char *sig, size_t *sig_len)
{
	return tok_local_sign(LOCAL(t), id, id_len, alg, msg, msg_len, sig, sig_len);
}

static int
l_destroy_key(tca_token *t, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr)
{
	return tok_local_destroy_key(LOCAL(t), id, id_len, destroyed_ptr);
}

static int
l_count_objects(tca_token *t, const unsigned char *id, size_t id_len,
    unsigned long *count_ptr)
{
	return tok_local_count_objects(LOCAL(t), id, id_len, count_ptr);
}

static int
l_key_attrs(tca_token *t, const unsigned char *id, size_t id_len, struct tca_key_attrs *attrs)
{
	return tok_local_key_attrs(LOCAL(t), id, id_len, attrs);
}

static int
l_foreach_key(tca_token *t, tca_token_key_cb cb, void *ctx)
{
	return tok_local_foreach_key(LOCAL(t), cb, ctx);
}

static int
l_get_status(tca_token *t, struct tca_token_status *st)
{
	return tok_local_get_status(LOCAL(t), st);
}

const struct tca_token_ops tok_local_ops = {
	.name = "none",
	.close = l_close,
	.retry = l_retry,
	.key_count = l_key_count,
	.find_key = l_find_key,
	.key_types = l_key_types,
	.check_key = l_check_key,
	.generate_key = l_generate_key,
	.sign = l_sign,
	.destroy_key = l_destroy_key,
	.count_objects = l_count_objects,
	.key_attrs = l_key_attrs,
	.foreach_key = l_foreach_key,
	.get_status = l_get_status,
};
