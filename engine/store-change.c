/*
 * store-change.c - change validation and journal record building shared by
 * the store backends (store-change.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "store-change.h"
#include "tca-error.h"
#include "text.h"

static int
valid_cert(const struct tca_cert_info *ci)
{
	return ci != NULL && ci->der != NULL && ci->der_len > 0 &&
	    ci->der_len <= INT32_MAX &&
	    ci->serial_len > 0 && ci->serial_len <= TCA_SERIAL_MAX &&
	    memchr(ci->subject, '\0', sizeof(ci->subject)) != NULL;
}

static int
valid_device_id(const char *id)
{
	return id != NULL && id[0] != '\0' && strlen(id) <= 256;
}

static int
valid_holder(const char *holder)
{
	return holder != NULL && holder[0] != '\0' && strlen(holder) <= TCA_HOLDER_MAX;
}

static int
valid_expect(const struct tca_change *chg)
{
	return chg->expect_ca_id >= 0 &&
	    (chg->expect_policy == NULL || strlen(chg->expect_policy) <= 16384);
}

int
tca_change_is_cache_op(enum tca_change_kind kind)
{
	switch (kind) {
	case TCA_CHANGE_CA_CREATE:
	case TCA_CHANGE_CA_DELETE:
	case TCA_CHANGE_CA_REISSUE:
	case TCA_CHANGE_POLICY_SET:
	case TCA_CHANGE_CRL_PUBLISH:
	case TCA_CHANGE_CERT_REVOKE:
		return 1;
	default:
		return 0;
	}
}

int
tca_change_journaled(enum tca_change_kind kind)
{
	switch (kind) {
	case TCA_CHANGE_RENEWAL_STATE:
	case TCA_CHANGE_CRL_STATE:
	case TCA_CHANGE_DEVICE_ATTEMPT:
	case TCA_CHANGE_DEVICE_RELEASE:
	case TCA_CHANGE_CA_RESERVE:
	case TCA_CHANGE_CA_RELEASE:
		return 0;
	case TCA_CHANGE_DEVICE_FAILURE:	/* when it locks */
	default:
		return 1;
	}
}

int
tca_change_valid(const struct tca_change *chg)
{
	size_t tlen;

	if (chg == NULL || chg->tenant == NULL)
		return 0;
	/* every kind that may write a journal record needs its op */
	if (chg->kind != TCA_CHANGE_RENEWAL_STATE && chg->kind != TCA_CHANGE_CRL_STATE &&
	    chg->kind != TCA_CHANGE_DEVICE_ATTEMPT && chg->kind != TCA_CHANGE_DEVICE_FAILURE &&
	    chg->kind != TCA_CHANGE_DEVICE_RELEASE && chg->kind != TCA_CHANGE_CA_RESERVE &&
	    chg->kind != TCA_CHANGE_CA_RELEASE &&
	    (chg->op == NULL || *chg->op == '\0'))
		return 0;
	tlen = strlen(chg->tenant);
	if (tlen == 0 || tlen > TCA_TENANT_MAX)
		return 0;
	switch (chg->kind) {
	case TCA_CHANGE_CA_CREATE:
		return (chg->holder == NULL || valid_holder(chg->holder)) &&
		    chg->key_type != NULL && *chg->key_type != '\0' &&
		    strlen(chg->key_type) < sizeof(((struct tca_ca_row *)0)->key_type) &&
		    chg->key_id != NULL && chg->key_id_len > 0 &&
		    chg->key_id_len <= TCA_KEY_ID_MAX && valid_cert(chg->cert);
	case TCA_CHANGE_CA_DELETE:
		return 1;
	case TCA_CHANGE_CERT_ISSUE:
		return valid_cert(chg->cert) && valid_expect(chg) &&
		    (chg->renews_serial == NULL || (chg->renews_serial_len > 0 &&
		    chg->renews_serial_len <= TCA_SERIAL_MAX)) &&
		    (chg->consume_secret == NULL ||
		    (valid_device_id(chg->device_id) && chg->consume_secret[0] != '\0'));
	case TCA_CHANGE_CA_REISSUE:
		return valid_cert(chg->cert) && chg->expect_current_sha256 != NULL;
	case TCA_CHANGE_RENEWAL_STATE:
	case TCA_CHANGE_CRL_STATE:
		return chg->renewal != NULL &&
		    memchr(chg->renewal->reason, '\0',
		    sizeof(chg->renewal->reason)) != NULL;
	case TCA_CHANGE_CERT_REVOKE:
		return chg->serial != NULL && chg->serial_len > 0 &&
		    chg->serial_len <= TCA_SERIAL_MAX &&
		    chg->reason >= 0 && chg->reason <= 9 && chg->reason != 6 &&
		    chg->reason != 7 && chg->reason != 8;
	case TCA_CHANGE_CRL_PUBLISH:
		return chg->crl_der != NULL && chg->crl_len > 0 &&
		    chg->crl_len <= INT32_MAX && chg->crl_number > 0 &&
		    chg->crl_number <= INT64_MAX &&
		    chg->next_update > chg->this_update;
	case TCA_CHANGE_POLICY_SET:
		return chg->policy != NULL && strlen(chg->policy) <= 16384 &&
		    valid_expect(chg);
	case TCA_CHANGE_DEVICE_REGISTER:
		return valid_device_id(chg->device_id) && chg->secret != NULL &&
		    chg->secret[0] != '\0' && strlen(chg->secret) <= TCA_DEVICE_SECRET_MAX &&
		    chg->expires_at >= 0;
	case TCA_CHANGE_DEVICE_UNREGISTER:
		return valid_device_id(chg->device_id);
	case TCA_CHANGE_DEVICE_ATTEMPT:
	case TCA_CHANGE_DEVICE_FAILURE:
		return valid_device_id(chg->device_id) && chg->max_failures > 0;
	case TCA_CHANGE_DEVICE_RELEASE:
		return valid_device_id(chg->device_id);
	case TCA_CHANGE_CA_RESERVE:
		return valid_holder(chg->holder) && chg->lease_until_ms > chg->time_ms;
	case TCA_CHANGE_CA_RELEASE:
		return valid_holder(chg->holder);
	}
	return 0;
}

int
tca_change_journal_record(const struct tca_change *chg, const char *subject,
    const char *fp_of_revoked, int64_t prev_seq, const unsigned char prev_hash[32],
    struct tca_change_hex *hexbuf, struct tca_journal_record *rec)
{
	static const unsigned char zero[32];
	int cert_kind;

	memset(rec, 0, sizeof(*rec));
	hexbuf->serial[0] = '\0';
	hexbuf->fingerprint[0] = '\0';
	cert_kind = chg->kind == TCA_CHANGE_CA_CREATE ||
	    chg->kind == TCA_CHANGE_CERT_ISSUE || chg->kind == TCA_CHANGE_CA_REISSUE;
	if (cert_kind && chg->cert != NULL) {
		tca_hex(chg->cert->serial, chg->cert->serial_len, hexbuf->serial);
		tca_hex(chg->cert->sha256, sizeof(chg->cert->sha256),
		    hexbuf->fingerprint);
		subject = chg->cert->subject;
	} else if (chg->kind == TCA_CHANGE_CERT_REVOKE) {
		tca_hex(chg->serial, chg->serial_len, hexbuf->serial);
		snprintf(hexbuf->fingerprint, sizeof(hexbuf->fingerprint), "%s",
		    fp_of_revoked != NULL ? fp_of_revoked : "");
	}
	rec->seq = prev_seq + 1;
	rec->time_ms = chg->time_ms;
	rec->op = chg->op;
	rec->tenant = chg->tenant;
	rec->serial_hex = hexbuf->serial;
	rec->subject = subject != NULL ? subject : "";
	rec->fingerprint_hex = hexbuf->fingerprint;
	rec->uid = chg->who.uid;
	rec->pid = chg->who.pid;
	rec->details = chg->kind == TCA_CHANGE_POLICY_SET ? chg->policy :
	    chg->details != NULL ? chg->details : "";
	memcpy(rec->prev_hash, prev_hash, 32);
	tca_journal_hash(rec, rec->hash);
	/* tca_journal_hash() signals a digest failure with an all-zero hash */
	return memcmp(rec->hash, zero, sizeof(zero)) == 0 ? TCA_ERR_INTERNAL : TCA_OK;
}
