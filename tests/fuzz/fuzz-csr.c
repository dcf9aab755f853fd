/*
 * fuzz-csr.c - fuzz target "csr": a device's certificate request on its way
 * through the engine's issuance checks (engine/engine.c tca_engine_issue):
 * tca_csr_parse (csr.c, the strict DER reader, PEM too), tca_csr_check (the
 * global policy: proof of possession, subject, key) and, when that accepts
 * it, tca_tenant_policy_check (tenant-policy.c) under three tenant policies
 * (default, restrictive, and one naming every rule).
 *
 * The input is the CSR as a front end passes it (DER or PEM, at most
 * TCA_CSR_MAX_INPUT bytes, as the engine's own bound).  The device id checked
 * against is the subject's first CN when it is a valid device id (so that
 * accepted requests reach the tenant policies), else "device-0001".
 *
 * Invariant checked: a CSR the global policy accepts has a public key.
 */
#include "config.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "csr.h"
#include "fuzz.h"
#include "tca-error.h"
#include "tenant-policy.h"
#include "tenant.h"

static const char *const policy_texts[] = {
	"",
	"device_id_pattern=device-*\nkey_types=ec-p256,rsa\nmax_days=30\no=Thin Edge\n"
	    "o_required=true\nrsa_min_bits=3072\nsan=dns\n",
	"device_id_pattern=[a-z]*-[!x]?*\nkey_types=ec-p384,ed25519\nou=Device|Gateway\n"
	    "ou_required=true\nregistration=none\nsan=none\n",
};
#define N_POLICIES (sizeof(policy_texts) / sizeof(policy_texts[0]))
static struct tca_tenant_policy policies[N_POLICIES];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char why[256];
	size_t i;

	(void)argc;
	(void)argv;
	for (i = 0; i < N_POLICIES; i++)
		if (tca_tenant_policy_parse(policy_texts[i], &policies[i], why,
		    sizeof(why)) != TCA_OK) {
			fprintf(stderr, "fuzz-csr: policy %zu: %s\n", i, why);
			return 1;
		}
	return 0;
}

/* The subject's first CN as a device id, if it is a valid one. */
static void
device_id_of(const tca_csr *csr, char *out, size_t outsz)
{
	const ASN1_STRING *s;
	X509_NAME_ENTRY *ne;
	char why[128];
	int i, n;

	snprintf(out, outsz, "device-0001");
	if (csr->subject == NULL ||
	    (i = X509_NAME_get_index_by_NID(csr->subject, NID_commonName, -1)) < 0 ||
	    (ne = X509_NAME_get_entry(csr->subject, i)) == NULL ||
	    (s = X509_NAME_ENTRY_get_data(ne)) == NULL)
		return;
	n = ASN1_STRING_length(s);
	if (n <= 0 || (size_t)n >= outsz || memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n))
		return;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	if (tca_device_id_validate(out, why, sizeof(why)) != TCA_OK)
		snprintf(out, outsz, "device-0001");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tca_policy_ceiling ceil;
	tca_csr *csr = NULL;
	char device_id[256], why[256], rule[32];
	unsigned int days;
	size_t i;

	if (size > TCA_CSR_MAX_INPUT)
		return 0;
	if (tca_csr_parse(data, size, &csr, why, sizeof(why)) != TCA_OK) {
		FUZZ_ASSERT(csr == NULL);
		goto out;
	}
	FUZZ_ASSERT(csr != NULL);
	device_id_of(csr, device_id, sizeof(device_id));
	if (tca_csr_check(csr, device_id, why, sizeof(why)) != TCA_OK)
		goto out;
	FUZZ_ASSERT(csr->pkey != NULL);
	memset(&ceil, 0, sizeof(ceil));
	ceil.max_days = 365;
	for (i = 0; i < N_POLICIES; i++) {
		days = (unsigned int)(i * 200);
		if (tca_tenant_policy_check(&policies[i], &ceil, csr, device_id, &days, rule,
		    sizeof(rule), why, sizeof(why)) == TCA_OK)
			FUZZ_ASSERT(days >= 1 && days <= ceil.max_days);
	}
 out:
	tca_csr_free(csr);
	ERR_clear_error();
	return 0;
}
