/*
 * der.h - the small DER reader and writer used where the engine works on a
 * certificate's encoding instead of OpenSSL's parsed structures.
 *
 * Re-issuance copies bytes out of a certificate instead of re-encoding parsed
 * structures (a re-encoded SKI or name that differs by one octet breaks every
 * chain built on the old one), and the issuer cache (issuer.c) reads the few
 * fields device issuance needs without d2i_X509 (docs/performance.md, F3).
 *
 * The reader accepts DER only: low tag numbers, definite lengths in minimal
 * form with at most 4 length octets.  Indefinite lengths, truncation and
 * non-minimal lengths are TCA_ERR_BAD_REQUEST.  Nothing is allocated: a
 * tca_der_tlv points into the caller's buffer, which must outlive it.
 */
#ifndef TCA_DER_H
#define TCA_DER_H

#include <stddef.h>
#include <stdint.h>

#define TCA_DER_MAX_EXTS	1024	/* bounds the quadratic per-OID diff */

struct tca_der_tlv {
	unsigned char tag;
	const unsigned char *p;		/* tag octet; NULL: element absent */
	size_t len;			/* header + contents */
	const unsigned char *val;	/* contents */
	size_t vlen;
};

/* The TLV at buf[*pos..end); *pos moves past it. */
int tca_der_get(const unsigned char *buf, size_t end, size_t *pos, struct tca_der_tlv *t);
/* Like tca_der_get(), but the element must carry tag. */
int tca_der_get_tag(const unsigned char *buf, size_t end, size_t *pos,
    unsigned char tag, struct tca_der_tlv *t);
/* An optional element: read it only if the next tag is tag (else t->p == NULL). */
int tca_der_get_opt(const unsigned char *buf, size_t end, size_t *pos,
    unsigned char tag, struct tca_der_tlv *t);
/* Same encoding (both absent counts as equal). */
int tca_der_eq(const struct tca_der_tlv *a, const struct tca_der_tlv *b);

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue } and
 * the TBSCertificate elements of RFC 5280 4.1, in order. */
struct tca_cert_parts {
	struct tca_der_tlv tbs, outer_alg, sig;
	struct tca_der_tlv version, serial, sigalg, issuer, validity;
	struct tca_der_tlv not_before, not_after, subject, spki;
	struct tca_der_tlv iuid, suid, exts;	/* optional; p == NULL if absent */
	const unsigned char *rest;	/* from after spki to the TBS end */
	size_t rest_len;
};

/* Splits a whole Certificate (no trailing bytes) into c. */
int tca_der_cert_split(const unsigned char *der, size_t len, struct tca_cert_parts *c);

/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE,
 * extnValue OCTET STRING } */
int tca_der_ext_split(const struct tca_der_tlv *ext, struct tca_der_tlv *oid, int *critical,
    struct tca_der_tlv *value);
/* The SEQUENCE OF Extension inside [3] (tca_der_cert_split checked the
 * wrapper); *n_ptr elements, each checked.  Absent [3]: none. */
int tca_der_exts(const struct tca_der_tlv *exts, const unsigned char **seq_ptr,
    size_t *seq_len_ptr, size_t *n_ptr);
/* The idx-th extension of a sequence that tca_der_exts() accepted. */
void tca_der_ext_at(const unsigned char *seq, size_t seq_len, size_t idx,
    struct tca_der_tlv *ext, struct tca_der_tlv *oid, int *critical,
    struct tca_der_tlv *value);

/* Unix seconds of a UTCTime or GeneralizedTime element in the RFC 5280
 * 4.1.2.5 form (Z, with seconds, no fractions; two-digit years < 50 are
 * 20xx).  TCA_ERR_BAD_REQUEST for anything else. */
int tca_der_get_time(const struct tca_der_tlv *t, int64_t *out);

/* ---- writing (into a caller's buffer of capacity cap, at *pos) */

/* Octets of a tag + definite length header for contents of len octets. */
size_t tca_der_hdr_len(size_t len);
/* Tag + definite length (at most 4 length octets).  TCA_ERR_INTERNAL if it
 * does not fit. */
int tca_der_put_hdr(unsigned char *buf, size_t cap, size_t *pos, unsigned char tag,
    size_t len);
/* len raw octets.  TCA_ERR_INTERNAL if they do not fit. */
int tca_der_put(unsigned char *buf, size_t cap, size_t *pos, const void *p, size_t len);

/* UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), Z
 * form with seconds.  TCA_ERR_INVALID_ARG outside 1950..9999. */
int tca_der_put_time(unsigned char *buf, size_t cap, size_t *pos, int64_t t);
/* Octets tca_der_put_time() writes for t (15 or 17), 0 outside 1950..9999:
 * for sizing a buffer before writing. */
size_t tca_der_time_len(int64_t t);
/* Always GeneralizedTime (OCSP, RFC 6960 4.2.2.1), Z form with seconds: 17
 * octets.  TCA_ERR_INVALID_ARG outside 1950..9999. */
int tca_der_put_gentime(unsigned char *buf, size_t cap, size_t *pos, int64_t t);

/* A non-negative INTEGER from the big-endian magnitude mag[0..len) (len >= 1):
 * leading zero octets dropped, one 0x00 added when the top bit is set, so the
 * encoding is minimal and positive.  tca_der_uint_len() is the whole TLV's
 * length, tca_der_put_uint() writes it (TCA_ERR_INTERNAL if it does not fit). */
size_t tca_der_uint_len(const unsigned char *mag, size_t len);
int tca_der_put_uint(unsigned char *buf, size_t cap, size_t *pos,
    const unsigned char *mag, size_t len);
/* v as a big-endian 8-octet magnitude, for tca_der_*_uint(). */
void tca_der_u64_mag(uint64_t v, unsigned char mag[8]);

#endif
