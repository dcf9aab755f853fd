/*
 * engine-device.c - device registration (issue 14): a device's first
 * certificate needs the one-time password registered for it, checked here,
 * where the keys are, and used up in the same store transaction as the
 * certificate (store.h CERT_ISSUE consume_secret), so one password yields at
 * most one certificate even when two requests race or the engine crashes.
 *
 * Passwords are stored only as scrypt hashes (otp.h).  Hashing is slow on
 * purpose (16 MiB, tens of milliseconds), so at most KDF_SLOTS run at once:
 * that bounds the memory a burst of enrollments or registrations can take.
 */
#include "config.h"

#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine-int.h"
#include "log.h"
#include "otp.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"

#define KDF_SLOTS 4

/* engine.h spells the generated length out to stay free of otp.h */
_Static_assert(TCA_OTP_GENERATED_LEN == 24, "engine.h: generated[24 + 1]");

static sem_t kdf_slots;
static pthread_once_t kdf_once = PTHREAD_ONCE_INIT;

static void
kdf_init(void)
{
	if (sem_init(&kdf_slots, 0, KDF_SLOTS) != 0)
		abort();	/* cannot fail for a process-private semaphore */
}

static void
kdf_enter(void)
{
	pthread_once(&kdf_once, kdf_init);
	while (sem_wait(&kdf_slots) != 0 && errno == EINTR)
		;
}

static void
kdf_leave(void)
{
	sem_post(&kdf_slots);
}

/* ------------------------------------------------------------ registration */

int
tca_engine_registration_required(tca_engine *e, const struct ca_entry *ent)
{
	struct tca_policy pol;

	if (ent->policy != NULL && ent->policy->registration != TCA_REG_GLOBAL)
		return ent->policy->registration == TCA_REG_REQUIRED;
	tca_engine_policy_snapshot(e, &pol);
	return pol.registration_required;
}

int
tca_engine_device_register(tca_engine *e, const char *tenant,
    const struct tca_device_new *devs, size_t n, int64_t expires_at,
    const struct tca_requester *who, char (*generated)[24 + 1],
    char *why, size_t whylen)
{
	struct tca_change chg;
	struct ca_entry *ent;
	char (*hashes)[TCA_OTP_HASH_MAX] = NULL, details[320];
	size_t i, j;
	int r;

	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	if ((ent = tca_engine_ca_lookup(e, tenant, &r, why, whylen)) == NULL)
		return r;
	tca_engine_entry_unref(ent);
	if (n == 0 || expires_at < 0) {
		tca_setf(why, whylen, n == 0 ? "no device given" : "expiry in the past");
		return TCA_ERR_BAD_REQUEST;
	}
	/* every entry valid before any is stored */
	for (i = 0; i < n; i++) {
		char iwhy[200];

		if ((r = tca_device_id_validate(devs[i].device_id, iwhy, sizeof(iwhy))) != TCA_OK ||
		    (devs[i].otp != NULL && (r = tca_otp_check_password(devs[i].otp,
		    strlen(devs[i].otp), iwhy, sizeof(iwhy))) != TCA_OK)) {
			tca_setf(why, whylen, "device %zu (%s): %s", i + 1, devs[i].device_id, iwhy);
			return TCA_ERR_BAD_REQUEST;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(devs[i].device_id, devs[j].device_id) == 0) {
				tca_setf(why, whylen, "device %zu: %s is listed twice (also %zu)",
				    i + 1, devs[i].device_id, j + 1);
				return TCA_ERR_BAD_REQUEST;
			}
		}
	}
	if ((hashes = calloc(n, sizeof(*hashes))) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const char *pw = devs[i].otp;

		if (pw == NULL) {
			if ((r = tca_otp_generate(generated[i], sizeof(generated[i]))) != TCA_OK)
				goto out;
			pw = generated[i];
		} else
			generated[i][0] = '\0';
		kdf_enter();
		r = tca_otp_hash(pw, strlen(pw), hashes[i], sizeof(hashes[i]));
		kdf_leave();
		if (r != TCA_OK) {
			tca_setf(why, whylen, "hashing the password failed (%s)", tca_strerror(r));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		char exp[32] = "never";

		if (expires_at != 0)
			tca_iso_time(expires_at, exp, sizeof(exp));
		snprintf(details, sizeof(details), "device_id=%s expires=%s", devs[i].device_id,
		    exp);
		tca_engine_change_init(e, &chg, TCA_CHANGE_DEVICE_REGISTER, "device-register",
		    tenant, who);
		chg.device_id = devs[i].device_id;
		chg.secret = hashes[i];
		chg.expires_at = expires_at;
		chg.details = details;
		if ((r = tca_committer_submit(e->cm, &chg)) != TCA_OK) {
			if (r == TCA_ERR_NOT_FOUND)
				tca_setf(why, whylen, "tenant %s has no CA", tenant);
			else
				tca_setf(why, whylen, "device %zu (%s) could not be recorded "
				    "(%s); the %zu before it were", i + 1, devs[i].device_id,
				    tca_strerror(r), i);
			goto out;
		}
	}
	log_notice("tenant %s: %zu device%s registered (uid %u)", tenant, n, n == 1 ? "" : "s",
	    (unsigned int)(who != NULL ? who->uid : 0));
	r = TCA_OK;
 out:
	if (hashes != NULL) {
		OPENSSL_cleanse(hashes, n * sizeof(*hashes));
		free(hashes);
	}
	if (r != TCA_OK)
		OPENSSL_cleanse(generated, n * sizeof(*generated));
	return r;
}

int
tca_engine_device_unregister(tca_engine *e, const char *tenant, const char *device_id,
    const struct tca_requester *who, char *why, size_t whylen)
{
	struct tca_change chg;
	char details[300];
	int r;

	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_device_id_validate(device_id, why, whylen)) != TCA_OK)
		return r;
	snprintf(details, sizeof(details), "device_id=%s", device_id);
	tca_engine_change_init(e, &chg, TCA_CHANGE_DEVICE_UNREGISTER, "device-unregister",
	    tenant, who);
	chg.device_id = device_id;
	chg.details = details;
	if ((r = tca_committer_submit(e->cm, &chg)) == TCA_ERR_NOT_FOUND)
		tca_setf(why, whylen, "device %s of tenant %s is not registered", device_id,
		    tenant);
	else if (r != TCA_OK)
		tca_setf(why, whylen, "the store could not record it (%s)", tca_strerror(r));
	return r;
}

int
tca_engine_device_show(tca_engine *e, const char *tenant, const char *device_id,
    struct tca_device_row *row, char *why, size_t whylen)
{
	int r;

	memset(row, 0, sizeof(*row));
	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK ||
	    (r = tca_device_id_validate(device_id, why, whylen)) != TCA_OK)
		return r;
	if ((r = e->st->ops->device_get(e->st, tenant, device_id, row)) == TCA_ERR_NOT_FOUND)
		tca_setf(why, whylen, "device %s of tenant %s is not registered", device_id,
		    tenant);
	else if (r != TCA_OK)
		tca_setf(why, whylen, "the store could not be read");
	/* the hash never leaves the engine */
	OPENSSL_cleanse(row->secret, sizeof(row->secret));
	return r;
}

struct list_ctx {
	int (*cb)(void *ctx, const struct tca_device_row *row);
	void *ctx;
};

static int
list_one(void *vctx, const struct tca_device_row *row)
{
	struct list_ctx *lc = vctx;
	struct tca_device_row copy = *row;
	int r;

	OPENSSL_cleanse(copy.secret, sizeof(copy.secret));
	r = lc->cb(lc->ctx, &copy);
	return r;
}

int
tca_engine_device_list(tca_engine *e, const char *tenant, const char *after, size_t limit,
    int (*cb)(void *ctx, const struct tca_device_row *row), void *ctx,
    char *why, size_t whylen)
{
	struct list_ctx lc;
	int r;

	if ((r = tca_tenant_validate(tenant, why, whylen)) != TCA_OK)
		return r;
	lc.cb = cb;
	lc.ctx = ctx;
	if ((r = e->st->ops->device_list(e->st, tenant, after, limit, list_one, &lc)) ==
	    TCA_ERR_JOURNAL_UNAVAILABLE)
		tca_setf(why, whylen, "the store could not be read");
	return r;
}

const char *
tca_device_state(const struct tca_device_row *row, int64_t now)
{
	if (row->consumed_at != 0)
		return "used";
	if (row->locked)
		return "locked";
	if (row->expires_at != 0 && row->expires_at < now)
		return "expired";
	return "pending";
}

/* ------------------------------------------------------------ enrollment */

/* One of DEVICE_ATTEMPT / FAILURE / RELEASE for the device; the change is
 * returned for its out fields. */
static int
device_counter(tca_engine *e, enum tca_change_kind kind, const char *tenant,
    const char *device_id, struct tca_change *chg)
{
	struct tca_policy pol;
	char details[320];

	tca_engine_policy_snapshot(e, &pol);
	snprintf(details, sizeof(details), "device_id=%s max_failures=%u", device_id,
	    pol.otp_max_failures);
	tca_engine_change_init(e, chg, kind, kind == TCA_CHANGE_DEVICE_FAILURE ?
	    "device-locked" : NULL, tenant, NULL);
	chg->device_id = device_id;
	chg->max_failures = pol.otp_max_failures;
	chg->details = details;		/* journaled only when it locks */
	return tca_committer_submit(e->cm, chg);
}

/* Why a registration cannot be used now, or NULL. */
static const char *
unusable(tca_engine *e, const struct tca_device_row *row, unsigned int max_failures,
    char *why, size_t whylen)
{
	char when[32];

	if (row->consumed_at != 0) {
		tca_setf(why, whylen, "the one-time password of device %s was used already "
		    "(certificate %s); re-register the device for a new one", row->device_id,
		    row->consumed_serial_hex);
		return why;
	}
	if (row->locked) {
		tca_setf(why, whylen, "device %s is locked after %u wrong passwords; "
		    "re-register it", row->device_id, row->failures);
		return why;
	}
	if (row->expires_at != 0 && row->expires_at < (int64_t)tca_engine_now(e)) {
		tca_iso_time(row->expires_at, when, sizeof(when));
		tca_setf(why, whylen, "the one-time password of device %s expired at %s",
		    row->device_id, when);
		return why;
	}
	if (row->failures >= max_failures) {
		tca_setf(why, whylen, "device %s has %u password checks under way or "
		    "failed; try again later", row->device_id, row->failures);
		return why;
	}
	return NULL;
}

int
tca_engine_device_check(tca_engine *e, const char *tenant, const char *device_id,
    const char *otp, char *secret, size_t secretlen, char *why, size_t whylen)
{
	struct tca_device_row row;
	struct tca_change chg;
	struct tca_policy pol;
	int r, ok;

	secret[0] = '\0';
	if (otp == NULL || otp[0] == '\0') {
		tca_setf(why, whylen, "device %s of tenant %s must present its one-time "
		    "password", device_id, tenant);
		return TCA_ERR_CREDENTIAL_REFUSED;
	}
	tca_engine_policy_snapshot(e, &pol);
	r = e->st->ops->device_get(e->st, tenant, device_id, &row);
	if (r == TCA_ERR_NOT_FOUND) {
		tca_setf(why, whylen, "device %s of tenant %s is not registered", device_id,
		    tenant);
		return TCA_ERR_CREDENTIAL_REFUSED;
	}
	if (r != TCA_OK) {
		tca_setf(why, whylen, "the registration could not be read");
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	}
	r = TCA_ERR_CREDENTIAL_REFUSED;
	if (unusable(e, &row, pol.otp_max_failures, why, whylen) != NULL)
		goto out;
	/*
	 * Count the attempt before the slow check: parallel guesses cannot get
	 * more than otp_max_failures checks between them.  A right password
	 * takes its attempt back (the certificate's commit, or a release).
	 */
	if ((r = device_counter(e, TCA_CHANGE_DEVICE_ATTEMPT, tenant, device_id,
	    &chg)) != TCA_OK) {
		if (r == TCA_ERR_CREDENTIAL_REFUSED) {
			/* changed meanwhile: say why if the row tells */
			if (e->st->ops->device_get(e->st, tenant, device_id, &row) != TCA_OK ||
			    unusable(e, &row, pol.otp_max_failures, why, whylen) == NULL)
				tca_setf(why, whylen, "the one-time password of device %s "
				    "cannot be checked now", device_id);
		} else {
			tca_setf(why, whylen, "the attempt could not be recorded (%s)",
			    tca_strerror(r));
			r = TCA_ERR_JOURNAL_UNAVAILABLE;
		}
		goto out;
	}
	kdf_enter();
	ok = tca_otp_verify(otp, strlen(otp), row.secret);
	kdf_leave();
	if (ok != 1) {
		if (ok < 0) {
			/* could not check: not the device's failure */
			(void)tca_engine_device_release(e, tenant, device_id);
			tca_setf(why, whylen, "the password could not be checked (%s)",
			    tca_strerror(ok));
			r = ok;
			goto out;
		}
		if (device_counter(e, TCA_CHANGE_DEVICE_FAILURE, tenant, device_id,
		    &chg) != TCA_OK)
			log_error("tenant %s: locking device %s after a wrong password failed",
			    tenant, device_id);
		else if (chg.device_locked)
			log_notice("tenant %s: device %s locked after %u wrong passwords", tenant,
			    device_id, chg.device_failures);
		else
			log_info("tenant %s: wrong one-time password for device %s", tenant,
			    device_id);
		tca_setf(why, whylen, "wrong one-time password for device %s%s", device_id,
		    chg.device_locked ? "; the device is now locked" : "");
		r = TCA_ERR_CREDENTIAL_REFUSED;
		goto out;
	}
	if (strlen(row.secret) >= secretlen) {
		(void)tca_engine_device_release(e, tenant, device_id);
		r = TCA_ERR_INTERNAL;
		goto out;
	}
	memcpy(secret, row.secret, strlen(row.secret) + 1);
	r = TCA_OK;
 out:
	OPENSSL_cleanse(row.secret, sizeof(row.secret));
	return r;
}

int
tca_engine_device_release(tca_engine *e, const char *tenant, const char *device_id)
{
	struct tca_change chg;
	int r;

	if ((r = device_counter(e, TCA_CHANGE_DEVICE_RELEASE, tenant, device_id, &chg)) !=
	    TCA_OK && r != TCA_ERR_NOT_FOUND)
		log_error("tenant %s: device %s: an attempt that found the right password "
		    "stays counted (%s)", tenant, device_id, tca_strerror(r));
	return r;
}
