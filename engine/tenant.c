/* tenant.c - identifier validation and token key naming. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "store.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int
tca_tenant_validate(const char *tenant, char *why, size_t whylen)
{
	size_t i, len;

	if (tenant == NULL || (len = strlen(tenant)) == 0) {
		snprintf(why, whylen, "tenant id is empty");
		return TCA_ERR_BAD_REQUEST;
	}
	if (len > TCA_TENANT_MAX) {
		snprintf(why, whylen, "tenant id is longer than %d characters", TCA_TENANT_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	if (!is_alnum((unsigned char)tenant[0])) {
		snprintf(why, whylen, "tenant id must start with a letter or digit");
		return TCA_ERR_BAD_REQUEST;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tenant[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
			snprintf(why, whylen, "tenant id may contain only A-Z a-z 0-9 . _ - "
			    "(character %zu is not allowed)", i + 1);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	return TCA_OK;
}


int
tca_device_id_validate(const char *device_id, char *why, size_t whylen)
{
	const unsigned char *s = (const unsigned char *)device_id;
	const char *cat;
	size_t i, len, n;
	uint32_t cp;

	if (device_id == NULL || (len = strlen(device_id)) == 0) {
		snprintf(why, whylen, "device id is empty");
		return TCA_ERR_BAD_REQUEST;
	}
	if (len > TCA_DEVICE_ID_MAX) {
		snprintf(why, whylen, "device id is longer than %d bytes", TCA_DEVICE_ID_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	for (i = 0; i < len; i += n) {
		if ((n = tca_utf8_decode(s + i, len - i, &cp)) == 0) {
			snprintf(why, whylen, "device id is not valid UTF-8 (byte %zu)", i + 1);
			return TCA_ERR_BAD_REQUEST;
		}
		/* named by code point: echoing it would do what it is refused for */
		if ((cat = tca_unicode_hidden(cp)) != NULL) {
			snprintf(why, whylen, "device id contains a %s character (U+%04X "
			    "at byte %zu); Unicode control, format and separator characters "
			    "(Cc, Cf, Zl, Zp) are not allowed",
			    strcmp(cat, "Cc") == 0 ? "control" : strcmp(cat, "Cf") == 0 ?
			    "format" : strcmp(cat, "Zl") == 0 ? "line separator" :
			    "paragraph separator", (unsigned int)cp, i + 1);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	return TCA_OK;
}

void
tca_tenant_key_id(const char *tenant, unsigned char id[TCA_KEY_ID_LEN])
{
	static const char prefix[] = "tca/v1/ca-key/";
	unsigned char buf[sizeof(prefix) - 1 + TCA_TENANT_MAX];
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t tl = strnlen(tenant, TCA_TENANT_MAX);

	memcpy(buf, prefix, sizeof(prefix) - 1);
	memcpy(buf + sizeof(prefix) - 1, tenant, tl);
	SHA256(buf, sizeof(prefix) - 1 + tl, md);
	memcpy(id, md, TCA_KEY_ID_LEN);
}

void
tca_tenant_key_label(const char *tenant, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s", TCA_KEY_LABEL_PREFIX, tenant);
}
