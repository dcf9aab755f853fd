/*
 * token-init.c - development provisioning (ca-admin token init): initialises
 * a free slot's token with a label, an SO PIN and a user PIN.  Production
 * slots are provisioned by the security team with the vendor's tools
 * (docs/hsm-provisioning.md).
 */
#include "config.h"

#include "token-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tca-error.h"
#include "text.h"
#include "token.h"

/* ------------------------------------------------------------ token init */

int
tca_token_init(const struct tca_token_init_params *p, unsigned long *slot_ptr,
    char *err, size_t errlen)
{
	const char *module_path = p->module_path, *label = p->label;
	const char *so_pin = p->so_pin, *user_pin = p->user_pin;
	size_t so_pin_len = p->so_pin_len, user_pin_len = p->user_pin_len;
	/* what C_InitToken and the first SO login take */
	const char *init_pin = p->current_so_pin != NULL ? p->current_so_pin : so_pin;
	size_t init_pin_len = p->current_so_pin != NULL ? p->current_so_pin_len : so_pin_len;
	struct tca_p11 *m = NULL;
	CK_SLOT_ID *slots = NULL, chosen = 0;
	CK_ULONG n_slots = 0, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_UTF8CHAR padded[32];
	char tlabel[33], serial[17], tserial[17];
	size_t label_len;
	int found = 0, so_logged_in = 0;
	CK_RV rv;
	int r = TCA_ERR_INTERNAL;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (slot_ptr != NULL)
		*slot_ptr = 0;
	if (label == NULL || (label_len = strlen(label)) == 0 || label_len > 32) {
		tca_setf(err, errlen, "token label must be 1..32 bytes");
		return TCA_ERR_INVALID_ARG;
	}
	if (so_pin == NULL || so_pin_len == 0 || user_pin == NULL || user_pin_len == 0 ||
	    init_pin == NULL || init_pin_len == 0) {
		tca_setf(err, errlen, "SO PIN and user PIN are required");
		return TCA_ERR_INVALID_ARG;
	}
	if ((r = tca_p11_load(module_path, p->init_args, &m, err, errlen)) != TCA_OK)
		return r;
	if ((rv = tca_p11_slots(m, &slots, &n_slots)) != CKR_OK) {
		tca_setf(err, errlen, "C_GetSlotList failed: %s", tca_p11_rv_name(rv));
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < n_slots; i++) {
		if (P11_CALL(m, C_GetTokenInfo, slots[i], &ti) != CKR_OK)
			continue;
		if (ti.flags & CKF_TOKEN_INITIALIZED) {
			tca_p11_str(ti.label, sizeof(ti.label), tlabel, sizeof(tlabel));
			if (strcmp(tlabel, label) == 0) {
				tca_setf(err, errlen, "a token labelled \"%s\" is already "
				    "initialized (slot %lu)", label, (unsigned long)slots[i]);
				r = TCA_ERR_ALREADY_EXISTS;
				goto out;
			}
		} else if (!found) {
			chosen = slots[i];
			found = 1;
		}
	}
	if (!found) {
		tca_setf(err, errlen, "no slot with an uninitialized token in %s", module_path);
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, label_len);
	rv = P11_CALL_QUIET(m, C_InitToken, chosen, (CK_UTF8CHAR_PTR)init_pin,
	    (CK_ULONG)init_pin_len, padded);
	if (tca_p11_result(m, "C_InitToken", P11_LOG_ERROR, rv) != CKR_OK) {
		tca_setf(err, errlen, "C_InitToken in slot %lu failed: %s%s", (unsigned long)chosen,
		    tca_p11_rv_name(rv), rv == CKR_PIN_INCORRECT && p->current_so_pin == NULL ?
		    " (does the module want its current SO PIN? hsm-profile init_so_pin = "
		    "current, ca-admin token init --current-so-pin-file)" : "");
		r = tca_p11_classify(rv) == TCA_P11_PIN ? TCA_ERR_UNAUTHORIZED : TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	if ((rv = P11_CALL(m, C_OpenSession, chosen, TOKEN_SESSION_FLAGS, NULL, NULL, &h)) != CKR_OK ||
	    (rv = P11_CALL(m, C_Login, h, CKU_SO, (CK_UTF8CHAR_PTR)init_pin,
	    (CK_ULONG)init_pin_len)) != CKR_OK) {
		tca_setf(err, errlen, "SO login to the new token failed: %s", tca_p11_rv_name(rv));
		r = tca_p11_classify(rv) == TCA_P11_PIN ? TCA_ERR_UNAUTHORIZED : TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	so_logged_in = 1;
	if (p->current_so_pin != NULL) {
		/* the module's default SO PIN must not stay */
		rv = P11_CALL(m, C_SetPIN, h, (CK_UTF8CHAR_PTR)init_pin, (CK_ULONG)init_pin_len,
		    (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)so_pin_len);
		if (rv != CKR_OK) {
			tca_setf(err, errlen, "changing the SO PIN failed: %s", tca_p11_rv_name(rv));
			r = (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) ? TCA_ERR_CONFIG :
			    TCA_ERR_TOKEN_UNAVAILABLE;
			goto out;
		}
	}
	rv = P11_CALL_QUIET(m, C_InitPIN, h, (CK_UTF8CHAR_PTR)user_pin, (CK_ULONG)user_pin_len);
	if (tca_p11_result(m, "C_InitPIN", P11_LOG_ERROR, rv) != CKR_OK) {
		tca_setf(err, errlen, "setting the user PIN failed: %s", tca_p11_rv_name(rv));
		r = (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) ? TCA_ERR_CONFIG :
		    TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	memset(&ti, 0, sizeof(ti));
	if (P11_CALL(m, C_GetTokenInfo, chosen, &ti) != CKR_OK) {
		tca_setf(err, errlen, "C_GetTokenInfo on the new token failed");
		r = TCA_ERR_TOKEN_UNAVAILABLE;
		goto out;
	}
	tca_p11_str(ti.serialNumber, sizeof(ti.serialNumber), serial, sizeof(serial));
	r = TCA_OK;
 out:
	if (so_logged_in)
		(void)P11_CALL(m, C_Logout, h);
	if (h != CK_INVALID_HANDLE)
		(void)P11_CALL(m, C_CloseSession, h);
	if (r == TCA_OK) {
		/*
		 * SoftHSMv2 derives slot ids from token serials when the library
		 * is initialized, so the new token's lasting slot id shows only
		 * after a fresh C_Initialize (which happens here unless another
		 * token of this module is open in the process).
		 */
		tca_p11_unload(m);
		m = NULL;
		free(slots);
		slots = NULL;
		if (tca_p11_load(module_path, p->init_args, &m, NULL, 0) == TCA_OK &&
		    tca_p11_slots(m, &slots, &n_slots) == CKR_OK) {
			for (i = 0; i < n_slots; i++) {
				if (P11_CALL_QUIET(m, C_GetTokenInfo, slots[i], &ti) != CKR_OK ||
				    !(ti.flags & CKF_TOKEN_INITIALIZED))
					continue;
				tca_p11_str(ti.serialNumber, sizeof(ti.serialNumber), tserial,
				    sizeof(tserial));
				tca_p11_str(ti.label, sizeof(ti.label), tlabel, sizeof(tlabel));
				if (strcmp(tserial, serial) == 0 && strcmp(tlabel, label) == 0) {
					chosen = slots[i];
					break;
				}
			}
		}
		if (slot_ptr != NULL)
			*slot_ptr = (unsigned long)chosen;
		log_info("token: initialized token \"%s\" (serial %s) in slot %lu", label,
		    serial, (unsigned long)chosen);
	}
	free(slots);
	tca_p11_unload(m);
	return r;
}
