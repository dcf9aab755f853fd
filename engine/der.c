/*
 * der.c - DER reader and writer (der.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "der.h"
#include "tca-error.h"

/* ------------------------------------------------------------ writing */

size_t
tca_der_hdr_len(size_t len)
{
	if (len < 0x80)
		return 2;
	if (len <= 0xff)
		return 3;
	if (len <= 0xffff)
		return 4;
	if (len <= 0xffffff)
		return 5;
	return 6;
}

/* Tag + definite length (at most 4 length bytes) at buf[*pos]. */
int
tca_der_put_hdr(unsigned char *buf, size_t cap, size_t *pos, unsigned char tag,
    size_t len)
{
	size_t n = tca_der_hdr_len(len), i;

	if (len > 0xffffffffUL || *pos > cap || cap - *pos < n)
		return TCA_ERR_INTERNAL;
	buf[(*pos)++] = tag;
	if (len < 0x80) {
		buf[(*pos)++] = (unsigned char)len;
		return TCA_OK;
	}
	buf[(*pos)++] = (unsigned char)(0x80 | (n - 2));
	for (i = n - 2; i > 0; i--)
		buf[(*pos)++] = (unsigned char)(len >> (8 * (i - 1)));
	return TCA_OK;
}

int
tca_der_put(unsigned char *buf, size_t cap, size_t *pos, const void *p, size_t len)
{
	if (*pos > cap || cap - *pos < len)
		return TCA_ERR_INTERNAL;
	memcpy(buf + *pos, p, len);
	*pos += len;
	return TCA_OK;
}

/* UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5); both
 * in the Z form with seconds (4.1.2.5.1, 4.1.2.5.2). */
int
tca_der_put_time(unsigned char *buf, size_t cap, size_t *pos, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];
	int year, n;

	memset(&tm, 0, sizeof(tm));
	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL)
		return TCA_ERR_INVALID_ARG;
	year = tm.tm_year + 1900;
	if (year < 1950 || year > 9999)
		return TCA_ERR_INVALID_ARG;
	if (year < 2050)
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ",
		    year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	else
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ",
		    year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	if (n != (year < 2050 ? 13 : 15))
		return TCA_ERR_INTERNAL;
	if (tca_der_put_hdr(buf, cap, pos, year < 2050 ? 0x17 : 0x18,
	    (size_t)n) != TCA_OK ||
	    tca_der_put(buf, cap, pos, s, (size_t)n) != TCA_OK)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* 2050-01-01T00:00:00Z: the first instant written as GeneralizedTime */
#define DER_T2050	INT64_C(2524608000)
/* 1950-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define DER_TMIN	INT64_C(-631152000)
#define DER_TMAX	INT64_C(253402300799)

size_t
tca_der_time_len(int64_t t)
{
	if (t < DER_TMIN || t > DER_TMAX)
		return 0;
	return t < DER_T2050 ? 15 : 17;
}

int
tca_der_put_gentime(unsigned char *buf, size_t cap, size_t *pos, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];
	int n;

	memset(&tm, 0, sizeof(tm));
	if (t < DER_TMIN || t > DER_TMAX || (int64_t)tt != t ||
	    gmtime_r(&tt, &tm) == NULL)
		return TCA_ERR_INVALID_ARG;
	n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	if (n != 15 ||
	    tca_der_put_hdr(buf, cap, pos, 0x18, (size_t)n) != TCA_OK ||
	    tca_der_put(buf, cap, pos, s, (size_t)n) != TCA_OK)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* mag without its leading zero octets (at least one octet left) */
static void
uint_trim(const unsigned char **mag, size_t *len)
{
	while (*len > 1 && (*mag)[0] == 0) {
		(*mag)++;
		(*len)--;
	}
}

size_t
tca_der_uint_len(const unsigned char *mag, size_t len)
{
	size_t vlen;

	if (mag == NULL || len == 0)
		return 0;
	uint_trim(&mag, &len);
	vlen = len + ((mag[0] & 0x80) != 0);
	return tca_der_hdr_len(vlen) + vlen;
}

int
tca_der_put_uint(unsigned char *buf, size_t cap, size_t *pos,
    const unsigned char *mag, size_t len)
{
	int pad;

	if (mag == NULL || len == 0)
		return TCA_ERR_INTERNAL;
	uint_trim(&mag, &len);
	pad = (mag[0] & 0x80) != 0;
	if (tca_der_put_hdr(buf, cap, pos, 0x02, len + (size_t)pad) != TCA_OK ||
	    (pad && tca_der_put(buf, cap, pos, "", 1) != TCA_OK) ||
	    tca_der_put(buf, cap, pos, mag, len) != TCA_OK)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

void
tca_der_u64_mag(uint64_t v, unsigned char mag[8])
{
	int i;

	for (i = 7; i >= 0; i--) {
		mag[i] = (unsigned char)v;
		v >>= 8;
	}
}

/* ------------------------------------------------------------ reading */

/* The TLV at buf[*pos..end); *pos moves past it. */
int
tca_der_get(const unsigned char *buf, size_t end, size_t *pos, struct tca_der_tlv *t)
{
	size_t i = *pos, n, k, vlen = 0;

	memset(t, 0, sizeof(*t));
	if (i > end || end - i < 2)
		return TCA_ERR_BAD_REQUEST;
	t->tag = buf[i++];
	if ((t->tag & 0x1f) == 0x1f)	/* high tag number: not in X.509 */
		return TCA_ERR_BAD_REQUEST;
	if (buf[i] < 0x80)
		vlen = buf[i++];
	else {
		/* 0x80 (indefinite) gives n = 0 */
		n = buf[i++] & 0x7f;
		if (n == 0 || n > 4 || end - i < n || buf[i] == 0)
			return TCA_ERR_BAD_REQUEST;
		for (k = 0; k < n; k++)
			vlen = (vlen << 8) | buf[i++];
		if (vlen < 0x80)
			return TCA_ERR_BAD_REQUEST;
	}
	if (end - i < vlen)
		return TCA_ERR_BAD_REQUEST;
	t->p = buf + *pos;
	t->val = buf + i;
	t->vlen = vlen;
	t->len = i + vlen - *pos;
	*pos = i + vlen;
	return TCA_OK;
}

/* Like tca_der_get(), but the element must carry tag. */
int
tca_der_get_tag(const unsigned char *buf, size_t end, size_t *pos,
    unsigned char tag, struct tca_der_tlv *t)
{
	int r;

	if ((r = tca_der_get(buf, end, pos, t)) != TCA_OK)
		return r;
	return t->tag == tag ? TCA_OK : TCA_ERR_BAD_REQUEST;
}

/* An optional element: read it only if the next tag is tag. */
int
tca_der_get_opt(const unsigned char *buf, size_t end, size_t *pos,
    unsigned char tag, struct tca_der_tlv *t)
{
	memset(t, 0, sizeof(*t));
	if (*pos >= end || buf[*pos] != tag)
		return TCA_OK;
	return tca_der_get(buf, end, pos, t);
}

int
tca_der_eq(const struct tca_der_tlv *a, const struct tca_der_tlv *b)
{
	if (a->p == NULL || b->p == NULL)
		return a->p == NULL && b->p == NULL;
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

int
tca_der_cert_split(const unsigned char *der, size_t len, struct tca_cert_parts *c)
{
	struct tca_der_tlv cert, inner;
	const unsigned char *tb;
	size_t pos = 0, tend, q;

	memset(c, 0, sizeof(*c));
	if (der == NULL ||
	    tca_der_get_tag(der, len, &pos, 0x30, &cert) != TCA_OK || pos != len)
		return TCA_ERR_BAD_REQUEST;
	pos = (size_t)(cert.val - der);
	if (tca_der_get_tag(der, len, &pos, 0x30, &c->tbs) != TCA_OK ||
	    tca_der_get_tag(der, len, &pos, 0x30, &c->outer_alg) != TCA_OK ||
	    tca_der_get_tag(der, len, &pos, 0x03, &c->sig) != TCA_OK ||
	    pos != len)
		return TCA_ERR_BAD_REQUEST;

	tb = c->tbs.val;
	tend = c->tbs.vlen;
	pos = 0;
	if (tca_der_get_opt(tb, tend, &pos, 0xa0, &c->version) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if (c->version.p != NULL) {
		/* [0] EXPLICIT Version: exactly one INTEGER */
		q = 0;
		if (tca_der_get_tag(c->version.val, c->version.vlen, &q, 0x02,
		    &inner) != TCA_OK || q != c->version.vlen || inner.vlen != 1)
			return TCA_ERR_BAD_REQUEST;
	}
	if (tca_der_get_tag(tb, tend, &pos, 0x02, &c->serial) != TCA_OK ||
	    c->serial.vlen == 0 ||
	    tca_der_get_tag(tb, tend, &pos, 0x30, &c->sigalg) != TCA_OK ||
	    tca_der_get_tag(tb, tend, &pos, 0x30, &c->issuer) != TCA_OK ||
	    tca_der_get_tag(tb, tend, &pos, 0x30, &c->validity) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	q = 0;
	if (tca_der_get(c->validity.val, c->validity.vlen, &q, &c->not_before) !=
	    TCA_OK ||
	    tca_der_get(c->validity.val, c->validity.vlen, &q, &c->not_after) !=
	    TCA_OK || q != c->validity.vlen ||
	    (c->not_before.tag != 0x17 && c->not_before.tag != 0x18) ||
	    (c->not_after.tag != 0x17 && c->not_after.tag != 0x18))
		return TCA_ERR_BAD_REQUEST;
	if (tca_der_get_tag(tb, tend, &pos, 0x30, &c->subject) != TCA_OK ||
	    tca_der_get_tag(tb, tend, &pos, 0x30, &c->spki) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	c->rest = tb + pos;
	c->rest_len = tend - pos;
	if (tca_der_get_opt(tb, tend, &pos, 0x81, &c->iuid) != TCA_OK ||
	    tca_der_get_opt(tb, tend, &pos, 0x82, &c->suid) != TCA_OK ||
	    tca_der_get_opt(tb, tend, &pos, 0xa3, &c->exts) != TCA_OK ||
	    pos != tend)
		return TCA_ERR_BAD_REQUEST;
	if (c->exts.p != NULL) {
		/* [3] EXPLICIT Extensions: exactly one SEQUENCE */
		q = 0;
		if (tca_der_get_tag(c->exts.val, c->exts.vlen, &q, 0x30, &inner) !=
		    TCA_OK || q != c->exts.vlen)
			return TCA_ERR_BAD_REQUEST;
	}
	return TCA_OK;
}

/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE,
 * extnValue OCTET STRING } */
int
tca_der_ext_split(const struct tca_der_tlv *ext, struct tca_der_tlv *oid, int *critical,
    struct tca_der_tlv *value)
{
	struct tca_der_tlv crit;
	size_t q = 0;

	*critical = 0;
	if (ext->tag != 0x30 ||
	    tca_der_get_tag(ext->val, ext->vlen, &q, 0x06, oid) != TCA_OK ||
	    oid->vlen == 0 ||
	    tca_der_get_opt(ext->val, ext->vlen, &q, 0x01, &crit) != TCA_OK ||
	    (crit.p != NULL && crit.vlen != 1) ||
	    tca_der_get_tag(ext->val, ext->vlen, &q, 0x04, value) != TCA_OK ||
	    q != ext->vlen)
		return TCA_ERR_BAD_REQUEST;
	*critical = crit.p != NULL && crit.val[0] != 0;
	return TCA_OK;
}

/* The SEQUENCE OF Extension inside [3] (tca_der_cert_split checked the wrapper);
 * *n_ptr elements, each checked with tca_der_ext_split().  Absent [3]: none. */
int
tca_der_exts(const struct tca_der_tlv *exts, const unsigned char **seq_ptr,
    size_t *seq_len_ptr, size_t *n_ptr)
{
	struct tca_der_tlv seq, ext, oid, val;
	size_t q = 0, n = 0;
	int crit;

	*seq_ptr = NULL;
	*seq_len_ptr = 0;
	*n_ptr = 0;
	if (exts->p == NULL)
		return TCA_OK;
	if (tca_der_get_tag(exts->val, exts->vlen, &q, 0x30, &seq) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	for (q = 0; q < seq.vlen; n++) {
		if (n >= TCA_DER_MAX_EXTS ||
		    tca_der_get(seq.val, seq.vlen, &q, &ext) != TCA_OK ||
		    tca_der_ext_split(&ext, &oid, &crit, &val) != TCA_OK)
			return TCA_ERR_BAD_REQUEST;
	}
	*seq_ptr = seq.val;
	*seq_len_ptr = seq.vlen;
	*n_ptr = n;
	return TCA_OK;
}

/* The idx-th extension (whole TLV, OID, criticality, extnValue) of a
 * sequence that tca_der_exts() accepted. */
void
tca_der_ext_at(const unsigned char *seq, size_t seq_len, size_t idx,
    struct tca_der_tlv *ext, struct tca_der_tlv *oid, int *critical,
    struct tca_der_tlv *value)
{
	size_t q = 0, i;

	memset(ext, 0, sizeof(*ext));
	for (i = 0; i <= idx; i++)
		(void)tca_der_get(seq, seq_len, &q, ext);
	(void)tca_der_ext_split(ext, oid, critical, value);
}


/* n decimal digits at s; -1 if any is not a digit */
static int
digits(const unsigned char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
tca_der_get_time(const struct tca_der_tlv *t, int64_t *out)
{
	const unsigned char *s;
	struct tm tm;
	time_t v;
	int year, mon, day, hour, min, sec;
	size_t yl;

	if (t == NULL || t->p == NULL || out == NULL)
		return TCA_ERR_BAD_REQUEST;
	if (t->tag == 0x17 && t->vlen == 13)
		yl = 2;
	else if (t->tag == 0x18 && t->vlen == 15)
		yl = 4;
	else
		return TCA_ERR_BAD_REQUEST;
	s = t->val;
	if (s[yl + 10] != 'Z' ||
	    (year = digits(s, yl)) < 0 || (mon = digits(s + yl, 2)) < 1 || mon > 12 ||
	    (day = digits(s + yl + 2, 2)) < 1 || day > 31 ||
	    (hour = digits(s + yl + 4, 2)) < 0 || hour > 23 ||
	    (min = digits(s + yl + 6, 2)) < 0 || min > 59 ||
	    (sec = digits(s + yl + 8, 2)) < 0 || sec > 59)
		return TCA_ERR_BAD_REQUEST;
	if (yl == 2)
		year += year < 50 ? 2000 : 1900;	/* RFC 5280 4.1.2.5.1 */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	if ((v = timegm(&tm)) == (time_t)-1 || tm.tm_mday != day)
		return TCA_ERR_BAD_REQUEST;	/* 31 April and the like */
	*out = (int64_t)v;
	return TCA_OK;
}
