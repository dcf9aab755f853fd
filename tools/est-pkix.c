/* est-pkix.c - base64, certs-only PKCS#7, CSR and certificate checks for
 * tca-estd (see est-pkix.h). */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "est-pkix.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
est_b64_decode(const char *in, size_t len, unsigned char **out_ptr, size_t *out_len_ptr)
{
	unsigned char *out;
	uint32_t acc = 0;
	size_t i, o = 0;
	int n = 0, pad = 0, v;

	*out_ptr = NULL;
	*out_len_ptr = 0;
	if ((out = malloc(len / 4 * 3 + 3)) == NULL)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			/* "xx==" or "xxx=": padding only at the end of a quantum */
			if (n < 2 || n + pad >= 4)
				goto bad;
			pad++;
			continue;
		}
		if (pad != 0 || (v = b64_value(c)) < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		if (++n == 4) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
			n = 0;
		}
	}
	if (n != 0) {
		if (n + pad != 4)
			goto bad;
		acc <<= 6 * (4 - n);
		out[o++] = (unsigned char)(acc >> 16);
		if (n == 3)
			out[o++] = (unsigned char)(acc >> 8);
	} else if (pad != 0) {
		goto bad;
	}
	if (o == 0)
		goto bad;
	*out_ptr = out;
	*out_len_ptr = o;
	return 0;
 bad:
	free(out);
	return -1;
}

int
est_b64_encode(const unsigned char *in, size_t len, char **out_ptr, size_t *out_len_ptr)
{
	size_t quads = (len + 2) / 3, chars = quads * 4, cap, i, o = 0, col = 0;
	char *out;

	*out_ptr = NULL;
	*out_len_ptr = 0;
	cap = chars + chars / 64 + 2;
	if ((out = malloc(cap)) == NULL)
		return -1;
	for (i = 0; i < len; i += 3) {
		uint32_t acc = (uint32_t)in[i] << 16;
		size_t rem = len - i;
		char q[4];
		int k;

		if (rem > 1)
			acc |= (uint32_t)in[i + 1] << 8;
		if (rem > 2)
			acc |= in[i + 2];
		q[0] = b64_alphabet[(acc >> 18) & 63];
		q[1] = b64_alphabet[(acc >> 12) & 63];
		q[2] = rem > 1 ? b64_alphabet[(acc >> 6) & 63] : '=';
		q[3] = rem > 2 ? b64_alphabet[acc & 63] : '=';
		for (k = 0; k < 4; k++) {
			out[o++] = q[k];
			if (++col == 64) {
				out[o++] = '\n';
				col = 0;
			}
		}
	}
	if (col != 0)
		out[o++] = '\n';
	out[o] = '\0';
	*out_ptr = out;
	*out_len_ptr = o;
	return 0;
}

int
est_certs_only(const unsigned char *const *certs, const size_t *lens, size_t n,
    unsigned char **der_ptr, size_t *der_len_ptr)
{
	PKCS7 *p7 = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL, *copy = NULL;
	const unsigned char *p;
	size_t i;
	int len, r = -1;

	*der_ptr = NULL;
	*der_len_ptr = 0;
	/* SignedData, version 1, no digest algorithms, content type data with
	 * the content absent, the certificates, no signers (RFC 5652 5.2's
	 * degenerate case; what `openssl crl2pkcs7 -nocrl` writes) */
	if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    p7->d.sign == NULL || p7->d.sign->contents == NULL)
		goto out;
	p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
	for (i = 0; i < n; i++) {
		p = certs[i];
		if (lens[i] > LONG_MAX ||
		    (x = d2i_X509(NULL, &p, (long)lens[i])) == NULL || p != certs[i] + lens[i])
			goto out;
		if (!PKCS7_add_certificate(p7, x))	/* takes its own reference */
			goto out;
		X509_free(x);
		x = NULL;
	}
	if ((len = i2d_PKCS7(p7, &der)) <= 0)
		goto out;
	if ((copy = malloc((size_t)len)) == NULL)
		goto out;
	memcpy(copy, der, (size_t)len);
	*der_ptr = copy;
	*der_len_ptr = (size_t)len;
	r = 0;
 out:
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(x);
	PKCS7_free(p7);
	return r;
}

/* The only commonName of name, as UTF-8, into cn ("" if none or several). */
static void
name_cn(const X509_NAME *name, char *cn, size_t cnlen)
{
	const X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int idx, len;

	cn[0] = '\0';
	if ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
		return;
	if ((e = X509_NAME_get_entry(name, idx)) == NULL ||
	    (len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
		return;
	/* no NUL inside, and it fits */
	if ((size_t)len < cnlen && memchr(utf8, '\0', (size_t)len) == NULL) {
		memcpy(cn, utf8, (size_t)len);
		cn[len] = '\0';
	}
	OPENSSL_free(utf8);
}

int
est_csr_parse(const unsigned char *der, size_t len, char *cn, size_t cnlen,
    char *why, size_t whylen)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	int r = -1;

	cn[0] = '\0';
	if (len > LONG_MAX || (req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		snprintf(why, whylen, "the body is not a PKCS#10 certification request");
		goto out;
	}
	if (p != der + len) {
		snprintf(why, whylen, "trailing bytes after the PKCS#10 request");
		goto out;
	}
	name_cn(X509_REQ_get_subject_name(req), cn, cnlen);
	r = 0;
 out:
	ERR_clear_error();
	X509_REQ_free(req);
	return r;
}

int
est_cert_cn(const unsigned char *der, size_t len, char *cn, size_t cnlen)
{
	const unsigned char *p = der;
	X509 *x;

	cn[0] = '\0';
	if (len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return -1;
	}
	name_cn(X509_get_subject_name(x), cn, cnlen);
	X509_free(x);
	return 0;
}

int
est_cert_issued_by_any(const unsigned char *cert, size_t cert_len,
    const unsigned char *const *cas, const size_t *ca_lens, size_t n)
{
	const unsigned char *p = cert;
	X509 *x = NULL, *ca = NULL;
	EVP_PKEY *pub;
	size_t i;
	int found = 0;

	if (cert_len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
	    p != cert + cert_len) {
		X509_free(x);
		ERR_clear_error();
		return -1;
	}
	for (i = 0; i < n && !found; i++) {
		p = cas[i];
		if (ca_lens[i] > LONG_MAX || (ca = d2i_X509(NULL, &p, (long)ca_lens[i])) == NULL)
			continue;
		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(x)) == 0 &&
		    (pub = X509_get0_pubkey(ca)) != NULL && X509_verify(x, pub) == 1)
			found = 1;
		X509_free(ca);
		ca = NULL;
	}
	ERR_clear_error();
	X509_free(x);
	return found;
}

int
est_check_key_pair(const char *cert, size_t cert_len, const char *key, size_t key_len,
    char *why, size_t whylen)
{
	BIO *b = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	unsigned long e;
	int r = -1;

	if (cert_len > INT_MAX || key_len > INT_MAX)
		goto out;
	if ((b = BIO_new_mem_buf(cert, (int)cert_len)) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		snprintf(why, whylen, "the certificate file holds no PEM certificate");
		goto out;
	}
	BIO_free(b);
	if ((b = BIO_new_mem_buf(key, (int)key_len)) == NULL ||
	    (pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		const char *reason = NULL;

		if ((e = ERR_peek_last_error()) != 0)
			reason = ERR_reason_error_string(e);
		snprintf(why, whylen, "the key file holds no unencrypted PEM private key%s%s",
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		snprintf(why, whylen, "the private key does not belong to the certificate");
		goto out;
	}
	r = 0;
 out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(b);
	return r;
}
