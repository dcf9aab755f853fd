/*
 * fuzz-reenroll.c - fuzz target "reenroll": the check of the certificate a
 * device presents on `reenroll` (RFC 7030 4.2.2), tca_reenroll_check
 * (engine/certs.c), with the tenant CA certificates read the way the engine
 * loads them, tca_issuer_new (engine/issuer.c).
 *
 * Input layout (all of it from the fuzzer):
 *   2 bytes   big-endian length L1, then L1 bytes: the current CA certificate (DER)
 *   2 bytes   big-endian length L2, then L2 bytes: the previous one (DER; L2 may be 0)
 *   the rest  the presented current certificate (DER or PEM)
 * A length running past the end ends the CA list there; the rest is the
 * presented certificate.  CA certificates tca_issuer_new refuses are left
 * out of the list, as the engine never loads them.
 *
 * The CSR is fixed (made once at start-up: EC P-256, subject
 * CN=device-0001, O=Thin Edge), as a re-enrollment only reaches this check
 * after tca_csr_check accepted its CSR.  The seeds (make-seeds.sh) are
 * certificates of that subject issued by the seed CAs.
 *
 * Invariant checked: a certificate accepted here parses as an X.509
 * certificate (DER or PEM), and it is refused when no CA is given.
 */
#include "config.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs.h"
#include "csr.h"
#include "fuzz.h"
#include "issuer.h"
#include "tca-error.h"

static tca_csr *fixed_csr;

static int
make_csr(void)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name;
	unsigned char *der = NULL;
	char why[256];
	int len, r = 1;

	if ((key = EVP_EC_gen("P-256")) == NULL || (req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, 0) != 1 ||
	    (name = X509_REQ_get_subject_name(req)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"device-0001", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Thin Edge", -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	if (tca_csr_parse(der, (size_t)len, &fixed_csr, why, sizeof(why)) != TCA_OK ||
	    tca_csr_check(fixed_csr, "device-0001", why, sizeof(why)) != TCA_OK) {
		fprintf(stderr, "fuzz-reenroll: the fixed CSR: %s\n", why);
		goto out;
	}
	r = 0;
 out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return r;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return make_csr();
}

/* Reads a 2-byte length and that many bytes; 0 if they are not there. */
static int
take(const uint8_t **p, size_t *left, const uint8_t **out, size_t *outlen)
{
	size_t n;

	if (*left < 2)
		return 0;
	n = ((size_t)(*p)[0] << 8) | (*p)[1];
	if (n > *left - 2)
		return 0;
	*out = *p + 2;
	*outlen = n;
	*p += 2 + n;
	*left -= 2 + n;
	return 1;
}

static int
parses_as_cert(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x;
	BIO *bio;

	if ((x = d2i_X509(NULL, &p, (long)size)) != NULL) {
		X509_free(x);
		return 1;
	}
	if ((bio = BIO_new_mem_buf(data, (int)size)) == NULL)
		return 1;	/* cannot tell */
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	X509_free(x);
	return x != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tca_issuer *iss[2] = { NULL, NULL };
	const struct tca_issuer *cas[2] = { NULL, NULL };
	const uint8_t *p = data, *ca;
	size_t left = size, calen, n_cas = 0, i;
	char why[256];
	int r;

	if (size > 2 * TCA_CSR_MAX_INPUT)
		return 0;
	for (i = 0; i < 2 && take(&p, &left, &ca, &calen); i++)
		if (calen > 0 && tca_issuer_new(ca, calen, &iss[i]) == TCA_OK)
			cas[n_cas++] = iss[i];
	r = tca_reenroll_check(cas, n_cas, p, left, fixed_csr, why, sizeof(why));
	if (r == TCA_OK) {
		FUZZ_ASSERT(n_cas > 0);
		FUZZ_ASSERT(parses_as_cert(p, left));
	}
	tca_issuer_free(iss[0]);
	tca_issuer_free(iss[1]);
	ERR_clear_error();
	return 0;
}
