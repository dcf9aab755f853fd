/*
 * otp.h - devices' one-time passwords: generated, hashed for the store,
 * verified.  The store never holds a password, only its salted scrypt hash
 * (EVP_KDF "SCRYPT"), in one self-describing string:
 *
 *     $scrypt$ln=14,r=8,p=1$<salt, base64>$<32-byte hash, base64>
 *
 * so the cost can be raised later without invalidating registrations made
 * before.  ln=14 (N = 16384, 16 MiB, about 40 ms on the reference machine)
 * is the default.  Verification compares in constant time.
 *
 * Pure: no store, no clock.  Buffers holding passwords are the caller's to
 * wipe (OPENSSL_cleanse).
 */
#ifndef TCA_OTP_H
#define TCA_OTP_H

#include <stddef.h>

#define TCA_OTP_MIN		8	/* shortest password accepted at registration */
#define TCA_OTP_MAX		128	/* longest */
#define TCA_OTP_HASH_MAX	160	/* the hash string, NUL included */
#define TCA_OTP_GENERATED_LEN	24	/* characters of a generated password */

/* A fresh random password: TCA_OTP_GENERATED_LEN characters from an
 * unambiguous 32-letter alphabet (120 bits).  out: at least
 * TCA_OTP_GENERATED_LEN + 1 bytes.  TCA_OK or TCA_ERR_CRYPTO. */
int tca_otp_generate(char *out, size_t outsz);

/* TCA_OK if pw[0..len) is acceptable as a one-time password: TCA_OTP_MIN..
 * TCA_OTP_MAX bytes of printable ASCII without spaces at either end;
 * TCA_ERR_BAD_REQUEST with why otherwise. */
int tca_otp_check_password(const char *pw, size_t len, char *why, size_t whylen);

/* The hash string of pw (fresh random salt).  out: TCA_OTP_HASH_MAX bytes.
 * TCA_OK, TCA_ERR_CRYPTO, TCA_ERR_NOMEM. */
int tca_otp_hash(const char *pw, size_t len, char *out, size_t outsz);

/* 1 if pw matches the hash string, 0 if not (also for a malformed string or
 * parameters outside the accepted range: ln 10..20, r 1..32, p 1..16),
 * TCA_ERR_CRYPTO / TCA_ERR_NOMEM if the KDF could not run. */
int tca_otp_verify(const char *pw, size_t len, const char *stored);

#endif
