/*
 * tenant.h - tenant and device identifiers, and how a tenant's key is named
 * on the token.
 *
 * Tenant id: 1..64 bytes of [A-Za-z0-9._-], starting with a letter or digit.
 * Case-sensitive ("t100" and "T100" are different tenants).
 *
 * Token naming (documented in docs/hsm-provisioning.md, never change it: the
 * engine finds existing keys by it):
 *   CKA_ID    = first 16 bytes of SHA-256("tca/v1/ca-key/" || tenant)
 *   CKA_LABEL = "tca-ca:" || tenant
 */
#ifndef TCA_TENANT_H
#define TCA_TENANT_H

#include <stddef.h>

#define TCA_KEY_ID_LEN 16
#define TCA_KEY_LABEL_PREFIX "tca-ca:"
#define TCA_DEVICE_ID_MAX 64	/* X.509 ub-common-name */

/* TCA_OK or TCA_ERR_BAD_REQUEST with a reason in why. */
int tca_tenant_validate(const char *tenant, char *why, size_t whylen);

/* Device id: 1..64 bytes of valid UTF-8 without control, format or
 * separator characters (Unicode Cc, Cf, Zl, Zp: text.h tca_unicode_hidden;
 * e.g. U+0085 NEL, U+200B, U+202E, U+2028).  TCA_OK or TCA_ERR_BAD_REQUEST
 * with a reason naming the first offending character by code point.
 * Tenant ids are ASCII [A-Za-z0-9._-] (above), so none of those either. */
int tca_device_id_validate(const char *device_id, char *why, size_t whylen);

void tca_tenant_key_id(const char *tenant, unsigned char id[TCA_KEY_ID_LEN]);

/* "tca-ca:<tenant>" into out; outsz >= 8 + 64 + 1 */
void tca_tenant_key_label(const char *tenant, char *out, size_t outsz);

#endif
