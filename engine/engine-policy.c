/*
 * engine-policy.c - each tenant's own policy (tenant-policy.h) as the engine
 * keeps it: stored with the tenant's CA, journaled on every change, cached
 * parsed in the CA's cache entry and applied by the next request.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine-int.h"
#include "log.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"

int
tca_engine_policy_get(tca_engine *e, const char *tenant, struct tca_tenant_policy *out,
    char *why, size_t whylen)
{
	struct ca_entry *ent;
	int r;

	tca_tenant_policy_defaults(out);
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	if (ent->policy != NULL)
		*out = *ent->policy;
	tca_engine_entry_unref(ent);
	return TCA_OK;
}

struct new_policy {
	const struct tca_tenant_policy *tp;
	const char *text;	/* as stored */
};

static void
apply_policy(struct ca_entry *nent, void *ctx)
{
	const struct new_policy *np = ctx;

	free(nent->policy);
	nent->policy = NULL;
	free(nent->policy_text);
	nent->policy_text = NULL;
	if (tca_tenant_policy_is_default(np->tp) && np->text[0] == '\0')
		return;
	/* on allocation failure the clone keeps no policy, which a commit
	 * made from it then finds stale (the store has the text) */
	if ((nent->policy_text = strdup(np->text)) != NULL &&
	    (nent->policy = malloc(sizeof(*nent->policy))) != NULL)
		*nent->policy = *np->tp;
}

/* The policy text the tenant's cached CA holds (malloc'd; "" = defaults),
 * or NULL with r and why. */
static char *
cached_policy_text(tca_engine *e, const char *tenant, int *r_ptr, char *why, size_t whylen)
{
	struct ca_entry *ent;
	char *text;

	if ((ent = tca_engine_ca_lookup(e, tenant, r_ptr, why, whylen)) == NULL)
		return NULL;
	if ((text = strdup(ent->policy_text != NULL ? ent->policy_text : "")) == NULL)
		*r_ptr = TCA_ERR_NOMEM;
	tca_engine_entry_unref(ent);
	return text;
}

static int
policy_set_once(tca_engine *e, const char *tenant, const char *const *assignments,
    size_t n, const struct tca_requester *who, struct tca_tenant_policy *out,
    char *why, size_t whylen)
{
	struct tca_tenant_policy tp;
	struct tca_change chg;
	struct new_policy np;
	char *text = NULL, *expect = NULL;
	size_t i;
	int r;

	/* what the change is made from: the store refuses it if another
	 * engine changed the policy meanwhile (a lost update otherwise) */
	if ((expect = cached_policy_text(e, tenant, &r, why, whylen)) == NULL)
		return r;
	if ((r = tca_engine_policy_get(e, tenant, &tp, why, whylen)) != TCA_OK)
		goto out;
	if (n == 0) {
		tca_setf(why, whylen, "no key=value given");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((r = tca_tenant_policy_set(&tp, assignments[i], why, whylen)) != TCA_OK)
			goto out;
	if ((text = malloc(TCA_TENANT_POLICY_TEXT_MAX)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_tenant_policy_format(&tp, text, TCA_TENANT_POLICY_TEXT_MAX)) != TCA_OK) {
		tca_setf(why, whylen, "the policy cannot be written (%s)", tca_strerror(r));
		goto out;
	}
	/* journaled with the whole new policy as details (store.h POLICY_SET) */
	tca_engine_change_init(e, &chg, TCA_CHANGE_POLICY_SET, "policy-set", tenant, who);
	chg.policy = text;
	chg.expect_policy = expect;
	if ((r = tca_committer_submit(e->cm, &chg)) == TCA_ERR_STALE)
		goto out;
	if (r != TCA_OK) {
		tca_setf(why, whylen, r == TCA_ERR_NOT_FOUND ? "tenant %s has no CA" :
		    "the policy could not be recorded (%s); nothing changed",
		    r == TCA_ERR_NOT_FOUND ? tenant : tca_strerror(r));
		goto out;
	}
	/* effective for the next request: the cache entry is replaced */
	np.tp = &tp;
	np.text = text;
	if ((r = tca_engine_entry_update(e, tenant, apply_policy, &np)) != TCA_OK) {
		log_error("tenant %s: policy recorded but not in effect (%s); restart "
		    "the engine", tenant, tca_strerror(r));
		tca_setf(why, whylen, "policy recorded, but not in effect until restart");
		goto out;
	}
	log_notice("tenant %s: policy set (uid %u): %s", tenant, (unsigned int)chg.who.uid,
	    text[0] != '\0' ? "see the journal" : "the global defaults");
	if (out != NULL)
		*out = tp;
 out:
	free(text);
	free(expect);
	return r;
}

int
tca_engine_policy_set(tca_engine *e, const char *tenant, const char *const *assignments,
    size_t n, const struct tca_requester *who, struct tca_tenant_policy *out,
    char *why, size_t whylen)
{
	int r, round;

	for (round = 0; round < 2; round++) {
		if ((r = policy_set_once(e, tenant, assignments, n, who, out, why,
		    whylen)) != TCA_ERR_STALE)
			return r;
		/* another engine set the policy (or replaced the CA) since this
		 * one cached it: apply the assignments to what it set */
		log_info("tenant %s: policy changed through another engine meanwhile; "
		    "applying the change to the policy the store holds", tenant);
		if (e->shared)
			(void)tca_engine_sync(e);
		else
			(void)tca_engine_ca_refresh(e, tenant);
	}
	tca_setf(why, whylen, "tenant %s's policy changed twice through another engine "
	    "meanwhile; nothing changed, try again", tenant);
	return TCA_ERR_BUSY;
}

int
tca_engine_csrattrs(tca_engine *e, const char *tenant, unsigned char **der_ptr,
    size_t *len_ptr, char *why, size_t whylen)
{
	struct tca_tenant_policy tp;
	unsigned char *der = NULL;
	size_t len = 0;
	int r;

	*der_ptr = NULL;
	*len_ptr = 0;
	if ((r = tca_engine_policy_get(e, tenant, &tp, why, whylen)) != TCA_OK)
		return r;
	if ((r = tca_tenant_policy_csrattrs(&tp, &der, &len)) != TCA_OK) {
		tca_setf(why, whylen, "the CSR attributes cannot be made (%s)", tca_strerror(r));
		return r;
	}
	if ((*der_ptr = malloc(len)) == NULL) {
		OPENSSL_free(der);
		return TCA_ERR_NOMEM;
	}
	memcpy(*der_ptr, der, len);
	*len_ptr = len;
	OPENSSL_free(der);
	return TCA_OK;
}
