/* otp.c - one-time passwords: generate, hash, verify (otp.h). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "otp.h"
#include "tca-error.h"
#include "text.h"

#define SALT_LEN	16
#define HASH_LEN	32
#define DEFAULT_LN	14
#define DEFAULT_R	8
#define DEFAULT_P	1

/* 32 letters, one case, none to confuse: no 0/O, no 1/I */
static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

int
tca_otp_generate(char *out, size_t outsz)
{
	unsigned char rnd[TCA_OTP_GENERATED_LEN];
	size_t i;

	if (out == NULL || outsz < TCA_OTP_GENERATED_LEN + 1)
		return TCA_ERR_INVALID_ARG;
	if (RAND_priv_bytes(rnd, sizeof(rnd)) != 1)
		return TCA_ERR_CRYPTO;
	/* 32 letters: 5 bits each, no modulo bias */
	for (i = 0; i < TCA_OTP_GENERATED_LEN; i++)
		out[i] = alphabet[rnd[i] & 31];
	out[TCA_OTP_GENERATED_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return TCA_OK;
}

int
tca_otp_check_password(const char *pw, size_t len, char *why, size_t whylen)
{
	size_t i;

	if (pw == NULL || len < TCA_OTP_MIN || len > TCA_OTP_MAX) {
		tca_setf(why, whylen, "a one-time password has %d..%d characters",
		    TCA_OTP_MIN, TCA_OTP_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)pw[i] < 0x21 || (unsigned char)pw[i] > 0x7e) {
			tca_setf(why, whylen, "a one-time password is printable ASCII "
			    "without spaces (character %zu is not)", i + 1);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	return TCA_OK;
}

static int
scrypt(const char *pw, size_t len, const unsigned char *salt, size_t salt_len,
    unsigned int ln, unsigned int r, unsigned int p, unsigned char out[HASH_LEN])
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[6];
	uint64_t n = (uint64_t)1 << ln;
	uint32_t r32 = r, p32 = p;
	int rc = TCA_ERR_CRYPTO;

	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL ||
	    (ctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(uintptr_t)pw, len);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)salt, salt_len);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	params[5] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, HASH_LEN, params) != 1)
		goto out;
	rc = TCA_OK;
 out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

int
tca_otp_hash(const char *pw, size_t len, char *out, size_t outsz)
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char salt64[4 * ((SALT_LEN + 2) / 3) + 1], hash64[4 * ((HASH_LEN + 2) / 3) + 1];
	int r, n;

	if (pw == NULL || out == NULL || outsz < TCA_OTP_HASH_MAX)
		return TCA_ERR_INVALID_ARG;
	out[0] = '\0';
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return TCA_ERR_CRYPTO;
	if ((r = scrypt(pw, len, salt, sizeof(salt), DEFAULT_LN, DEFAULT_R, DEFAULT_P,
	    hash)) != TCA_OK)
		goto out;
	if (EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt)) <= 0 ||
	    EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash)) <= 0) {
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	n = snprintf(out, outsz, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", DEFAULT_LN, DEFAULT_R,
	    DEFAULT_P, salt64, hash64);
	r = n > 0 && (size_t)n < outsz ? TCA_OK : TCA_ERR_INTERNAL;
 out:
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r != TCA_OK)
		out[0] = '\0';
	return r;
}

/* Decodes base64 text of exactly want bytes. */
static int
unbase64(const char *b64, size_t b64len, unsigned char *out, size_t want)
{
	unsigned char buf[64];
	int n;

	if (b64len == 0 || b64len % 4 != 0 || b64len / 4 * 3 > sizeof(buf))
		return -1;
	if ((n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)b64len)) < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (b64len >= 1 && b64[b64len - 1] == '=')
		n--;
	if (b64len >= 2 && b64[b64len - 2] == '=')
		n--;
	if ((size_t)n != want)
		return -1;
	memcpy(out, buf, want);
	return 0;
}

/* A decimal number of 1..2 digits at s, at most max: the text after it, or
 * NULL. */
static const char *
take_uint(const char *s, unsigned int max, unsigned int *v)
{
	unsigned int n = 0;
	int digits = 0;

	while (*s >= '0' && *s <= '9' && digits < 3) {
		n = n * 10 + (unsigned int)(*s - '0');
		s++;
		digits++;
	}
	if (digits == 0 || digits > 2 || n > max)
		return NULL;
	*v = n;
	return s;
}

int
tca_otp_verify(const char *pw, size_t len, const char *stored)
{
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	unsigned int ln, r, p;
	const char *salt64, *hash64, *end, *p_;
	int consumed = 0, rc;

	if (pw == NULL || stored == NULL)
		return 0;
	/* digits only, no signs, spaces or overflow */
	p_ = stored;
	if (strncmp(p_, "$scrypt$ln=", 11) != 0 || (p_ = take_uint(p_ + 11, 20, &ln)) == NULL ||
	    strncmp(p_, ",r=", 3) != 0 || (p_ = take_uint(p_ + 3, 32, &r)) == NULL ||
	    strncmp(p_, ",p=", 3) != 0 || (p_ = take_uint(p_ + 3, 16, &p)) == NULL ||
	    *p_ != '$' || ln < 10 || r < 1 || p < 1)
		return 0;
	consumed = (int)(p_ + 1 - stored);
	salt64 = stored + consumed;
	if ((hash64 = strchr(salt64, '$')) == NULL)
		return 0;
	end = hash64 + 1 + strlen(hash64 + 1);
	if (unbase64(salt64, (size_t)(hash64 - salt64), salt, sizeof(salt)) != 0 ||
	    unbase64(hash64 + 1, (size_t)(end - hash64 - 1), want, sizeof(want)) != 0)
		return 0;
	if ((rc = scrypt(pw, len, salt, sizeof(salt), ln, r, p, got)) != TCA_OK)
		return rc;
	rc = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}
