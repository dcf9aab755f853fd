/*
 * ocsp.c - OCSP responder and client checks (ocsp.h, RFC 6960).
 *
 * Responder: the request is split with the der.h reader into what the answer
 * needs - the CertIDs (echoed byte for byte) and the nonce extension (echoed
 * byte for byte) - and everything else is checked for structure only.  The
 * answer is written with the DER writer in two passes (sizes, then octets),
 * signed through tca_sign_assemble_der (certs.h) and wrapped:
 *
 *   OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
 *     responseBytes [0] EXPLICIT SEQUENCE { responseType OID,
 *       response OCTET STRING (BasicOCSPResponse) } OPTIONAL }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm,
 *     signature BIT STRING }				(no certs)
 *   ResponseData ::= SEQUENCE { responderID [2] EXPLICIT KeyHash,
 *     producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
 *     responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate,
 *     nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL }
 *
 * Client: OpenSSL's OCSP API, on answers of our own engine.
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "certs.h"
#include "crl.h"
#include "der.h"
#include "issuer.h"
#include "log.h"
#include "ocsp.h"
#include "tca-error.h"
#include "text.h"

#define OCSP_SKEW	300	/* seconds of clock skew the client tolerates */
#define GENTIME_LEN	17	/* GeneralizedTime TLV, YYYYMMDDHHMMSSZ */

/* Content octets of the OBJECT IDENTIFIERs we read or write. */
static const unsigned char oid_sha1[] = { 0x2b, 0x0e, 0x03, 0x02, 0x1a };
static const unsigned char oid_sha256[] = {
	0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01
};
static const unsigned char oid_nonce[] = {	/* id-pkix-ocsp-nonce */
	0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02
};
static const unsigned char oid_basic[] = {	/* id-pkix-ocsp-basic */
	0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01
};

/* OCSPResponse { malformedRequest }: unsigned, as RFC 6960 4.2.1 has it */
static const unsigned char resp_malformed[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };

/* The part of a request the responder answers; pointers into the request. */
struct ocsp_req {
	struct tca_der_tlv list;	/* requestList */
	size_t n;			/* its Request entries */
	struct tca_der_tlv nonce;	/* the nonce Extension; p NULL if none */
};

/* One SingleResponse to write. */
struct single {
	struct tca_der_tlv certid;
	struct tca_ocsp_cert_status st;
	size_t revoked_content;		/* RevokedInfo contents (REVOKED) */
	size_t status_len;		/* CertStatus TLV */
	size_t content;			/* SingleResponse contents */
};

/* What a CertID must hold to name the CA. */
struct ca_hashes {
	unsigned char name_sha1[20], key_sha1[20];
	unsigned char name_sha256[32], key_sha256[32];
};

static int
oid_is(const struct tca_der_tlv *t, const unsigned char *oid, size_t len)
{
	return t->p != NULL && t->tag == 0x06 && t->vlen == len &&
	    memcmp(t->val, oid, len) == 0;
}

/* ------------------------------------------------------------ request */

/* X.690 8.3.2: no redundant leading 0x00 or 0xff octet. */
static int
int_minimal(const struct tca_der_tlv *t)
{
	if (t->vlen == 0)
		return 0;
	if (t->vlen > 1 &&
	    ((t->val[0] == 0x00 && (t->val[1] & 0x80) == 0) ||
	    (t->val[0] == 0xff && (t->val[1] & 0x80) != 0)))
		return 0;
	return 1;
}

/*
 * CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier,
 *   issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING,
 *   serialNumber INTEGER }
 * params: the AlgorithmIdentifier's parameters (p NULL if absent).
 */
static int
certid_split(const struct tca_der_tlv *id, struct tca_der_tlv *alg_oid,
    struct tca_der_tlv *params, struct tca_der_tlv *name_hash,
    struct tca_der_tlv *key_hash, struct tca_der_tlv *serial)
{
	struct tca_der_tlv alg;
	size_t q = 0, k = 0;

	memset(params, 0, sizeof(*params));
	if (id->tag != 0x30 ||
	    tca_der_get_tag(id->val, id->vlen, &q, 0x30, &alg) != TCA_OK ||
	    tca_der_get_tag(id->val, id->vlen, &q, 0x04, name_hash) != TCA_OK ||
	    tca_der_get_tag(id->val, id->vlen, &q, 0x04, key_hash) != TCA_OK ||
	    tca_der_get_tag(id->val, id->vlen, &q, 0x02, serial) != TCA_OK ||
	    q != id->vlen || !int_minimal(serial))
		return TCA_ERR_BAD_REQUEST;
	if (tca_der_get_tag(alg.val, alg.vlen, &k, 0x06, alg_oid) != TCA_OK ||
	    alg_oid->vlen == 0 ||
	    (k < alg.vlen && tca_der_get(alg.val, alg.vlen, &k, params) != TCA_OK) ||
	    k != alg.vlen)
		return TCA_ERR_BAD_REQUEST;
	return TCA_OK;
}

/* Request ::= SEQUENCE { reqCert CertID,
 *   singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL } */
static int
request_certid(const struct tca_der_tlv *r, struct tca_der_tlv *certid)
{
	struct tca_der_tlv ex, seq, oid, params, nh, kh, serial;
	size_t q = 0, k = 0;

	if (r->tag != 0x30 ||
	    tca_der_get_tag(r->val, r->vlen, &q, 0x30, certid) != TCA_OK ||
	    tca_der_get_opt(r->val, r->vlen, &q, 0xa0, &ex) != TCA_OK ||
	    q != r->vlen ||
	    certid_split(certid, &oid, &params, &nh, &kh, &serial) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if (ex.p != NULL &&
	    (tca_der_get_tag(ex.val, ex.vlen, &k, 0x30, &seq) != TCA_OK ||
	    k != ex.vlen))
		return TCA_ERR_BAD_REQUEST;
	return TCA_OK;
}

/* requestExtensions [2] EXPLICIT Extensions: finds the nonce. */
static int
request_exts(const struct tca_der_tlv *ex, struct tca_der_tlv *nonce,
    const char **why)
{
	struct tca_der_tlv seq, ext, oid, value, in;
	size_t q = 0, k;
	int crit;

	if (tca_der_get_tag(ex->val, ex->vlen, &q, 0x30, &seq) != TCA_OK ||
	    q != ex->vlen) {
		*why = "requestExtensions is not one SEQUENCE";
		return TCA_ERR_BAD_REQUEST;
	}
	for (q = 0; q < seq.vlen; ) {
		if (tca_der_get(seq.val, seq.vlen, &q, &ext) != TCA_OK ||
		    tca_der_ext_split(&ext, &oid, &crit, &value) != TCA_OK) {
			*why = "malformed request extension";
			return TCA_ERR_BAD_REQUEST;
		}
		if (!oid_is(&oid, oid_nonce, sizeof(oid_nonce)))
			continue;	/* RFC 6960 4.4: others are optional */
		if (nonce->p != NULL) {
			*why = "two nonce extensions";
			return TCA_ERR_BAD_REQUEST;
		}
		/* RFC 8954: Nonce ::= OCTET STRING inside extnValue; a bare
		 * value (older clients) is measured as is */
		k = 0;
		if (tca_der_get_tag(value.val, value.vlen, &k, 0x04, &in) != TCA_OK ||
		    k != value.vlen) {
			in.vlen = value.vlen;
		}
		if (in.vlen == 0 || in.vlen > TCA_OCSP_MAX_NONCE) {
			*why = "nonce is empty or longer than 128 octets";
			return TCA_ERR_BAD_REQUEST;
		}
		*nonce = ext;
	}
	return TCA_OK;
}

/*
 * OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest,
 *   optionalSignature [0] EXPLICIT Signature OPTIONAL }
 * TBSRequest ::= SEQUENCE { version [0] EXPLICIT INTEGER DEFAULT v1,
 *   requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *   requestList SEQUENCE OF Request,
 *   requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 * TCA_ERR_BAD_REQUEST (answered malformedRequest) with why for the log.
 */
static int
request_parse(const unsigned char *req, size_t len, size_t max, struct ocsp_req *o,
    const char **why)
{
	struct tca_der_tlv outer, tbs, sig, ver, in, name, ex, r, certid;
	size_t pos = 0, q;

	memset(o, 0, sizeof(*o));
	*why = "not a DER OCSPRequest";
	if (len == 0 || len > TCA_OCSP_MAX_REQUEST) {
		*why = "request is empty or larger than 64 KiB";
		return TCA_ERR_BAD_REQUEST;
	}
	if (tca_der_get_tag(req, len, &pos, 0x30, &outer) != TCA_OK || pos != len)
		return TCA_ERR_BAD_REQUEST;
	pos = 0;
	/* optionalSignature: read as one element, not looked into */
	if (tca_der_get_tag(outer.val, outer.vlen, &pos, 0x30, &tbs) != TCA_OK ||
	    tca_der_get_opt(outer.val, outer.vlen, &pos, 0xa0, &sig) != TCA_OK ||
	    pos != outer.vlen)
		return TCA_ERR_BAD_REQUEST;

	pos = 0;
	if (tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0xa0, &ver) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if (ver.p != NULL) {
		/* DER omits the DEFAULT, but v1 spelled out is harmless */
		q = 0;
		if (tca_der_get_tag(ver.val, ver.vlen, &q, 0x02, &in) != TCA_OK ||
		    q != ver.vlen || in.vlen != 1 || in.val[0] != 0) {
			*why = "request version is not v1";
			return TCA_ERR_BAD_REQUEST;
		}
	}
	if (tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0xa1, &name) != TCA_OK ||
	    tca_der_get_tag(tbs.val, tbs.vlen, &pos, 0x30, &o->list) != TCA_OK ||
	    tca_der_get_opt(tbs.val, tbs.vlen, &pos, 0xa2, &ex) != TCA_OK ||
	    pos != tbs.vlen)
		return TCA_ERR_BAD_REQUEST;

	for (q = 0; q < o->list.vlen; o->n++) {
		if (o->n >= max) {
			*why = "more Request entries than allowed";
			return TCA_ERR_BAD_REQUEST;
		}
		if (tca_der_get(o->list.val, o->list.vlen, &q, &r) != TCA_OK ||
		    request_certid(&r, &certid) != TCA_OK) {
			*why = "malformed Request or CertID";
			return TCA_ERR_BAD_REQUEST;
		}
	}
	if (o->n == 0) {
		*why = "empty requestList";
		return TCA_ERR_BAD_REQUEST;
	}
	if (ex.p != NULL && request_exts(&ex, &o->nonce, why) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	return TCA_OK;
}

/* ------------------------------------------------------------ answer */

static int
digest(const EVP_MD *md, const unsigned char *p, size_t len, unsigned char *out,
    size_t outlen)
{
	unsigned int n = (unsigned int)outlen;

	if (EVP_Digest(p, len, out, &n, md, NULL) != 1 || n != outlen)
		return TCA_ERR_CRYPTO;
	return TCA_OK;
}

/* The subjectPublicKey BIT STRING contents without the unused-bits octet. */
static int
spki_key_bits(const struct tca_der_tlv *spki, const unsigned char **key,
    size_t *key_len)
{
	struct tca_der_tlv alg, bits;
	size_t q = 0;

	if (spki->p == NULL || spki->tag != 0x30 ||
	    tca_der_get_tag(spki->val, spki->vlen, &q, 0x30, &alg) != TCA_OK ||
	    tca_der_get_tag(spki->val, spki->vlen, &q, 0x03, &bits) != TCA_OK ||
	    q != spki->vlen || bits.vlen < 2 || bits.val[0] != 0)
		return TCA_ERR_BAD_REQUEST;
	*key = bits.val + 1;
	*key_len = bits.vlen - 1;
	return TCA_OK;
}

static int
ca_hashes_of(const struct tca_issuer *ca, struct ca_hashes *h)
{
	const unsigned char *key;
	size_t key_len;

	if (spki_key_bits(&ca->spki, &key, &key_len) != TCA_OK)
		return TCA_ERR_INVALID_ARG;
	if (digest(EVP_sha1(), ca->subject.p, ca->subject.len, h->name_sha1,
	    sizeof(h->name_sha1)) != TCA_OK ||
	    digest(EVP_sha1(), key, key_len, h->key_sha1, sizeof(h->key_sha1)) != TCA_OK ||
	    digest(EVP_sha256(), ca->subject.p, ca->subject.len, h->name_sha256,
	    sizeof(h->name_sha256)) != TCA_OK ||
	    digest(EVP_sha256(), key, key_len, h->key_sha256,
	    sizeof(h->key_sha256)) != TCA_OK)
		return TCA_ERR_CRYPTO;
	return TCA_OK;
}

static int
hash_eq(const struct tca_der_tlv *t, const unsigned char *h, size_t len)
{
	return t->vlen == len && CRYPTO_memcmp(t->val, h, len) == 0;
}

/* The status of one CertID: unknown unless it names the CA, else lookup's. */
static int
answer_one(const struct ca_hashes *h, struct single *s, tca_ocsp_lookup_fn lookup,
    void *lookup_ctx)
{
	struct tca_der_tlv oid, params, nh, kh, serial;
	const unsigned char *mag;
	size_t ml;
	int match = 0, r;

	memset(&s->st, 0, sizeof(s->st));
	s->st.status = TCA_OCSP_UNKNOWN;
	if (certid_split(&s->certid, &oid, &params, &nh, &kh, &serial) != TCA_OK)
		return TCA_ERR_INTERNAL;	/* request_parse() checked it */
	/* parameters absent or NULL (RFC 5754 2: both are seen) */
	if (params.p != NULL && (params.tag != 0x05 || params.vlen != 0))
		return TCA_OK;
	if (oid_is(&oid, oid_sha1, sizeof(oid_sha1)))
		match = hash_eq(&nh, h->name_sha1, sizeof(h->name_sha1)) &&
		    hash_eq(&kh, h->key_sha1, sizeof(h->key_sha1));
	else if (oid_is(&oid, oid_sha256, sizeof(oid_sha256)))
		match = hash_eq(&nh, h->name_sha256, sizeof(h->name_sha256)) &&
		    hash_eq(&kh, h->key_sha256, sizeof(h->key_sha256));
	if (!match || (serial.val[0] & 0x80) != 0)	/* negative: never ours */
		return TCA_OK;
	mag = serial.val;
	ml = serial.vlen;
	if (ml > 1 && mag[0] == 0x00) {
		mag++;
		ml--;
	}
	if (ml > TCA_CRL_MAX_SERIAL)
		return TCA_OK;
	if ((r = lookup(lookup_ctx, mag, ml, &s->st)) != TCA_OK) {
		memset(&s->st, 0, sizeof(s->st));
		return r;
	}
	switch (s->st.status) {
	case TCA_OCSP_GOOD:
	case TCA_OCSP_UNKNOWN:
		return TCA_OK;
	case TCA_OCSP_REVOKED:
		if (tca_crl_reason_name(s->st.reason) != NULL &&
		    tca_der_time_len(s->st.revoked_at) != 0)
			return TCA_OK;
		break;
	}
	log_error_f("lookup returned status %d, reason %d, time %lld",
	    (int)s->st.status, s->st.reason, (long long)s->st.revoked_at);
	return TCA_ERR_INVALID_ARG;
}

static size_t
single_size(struct single *s, int with_next)
{
	size_t c;

	if (s->st.status == TCA_OCSP_REVOKED) {
		/* RevokedInfo { revocationTime, [0] EXPLICIT ENUMERATED } */
		c = GENTIME_LEN +
		    (s->st.reason != TCA_REASON_UNSPECIFIED ? 5 : 0);
		s->revoked_content = c;
		s->status_len = tca_der_hdr_len(c) + c;
	} else
		s->status_len = 2;	/* [0] or [2] IMPLICIT NULL */
	s->content = s->certid.len + s->status_len + GENTIME_LEN +
	    (with_next ? tca_der_hdr_len(GENTIME_LEN) + GENTIME_LEN : 0);
	return tca_der_hdr_len(s->content) + s->content;
}

static int
put_single(unsigned char *b, size_t cap, size_t *pos, const struct single *s,
    const struct tca_ocsp_params *p)
{
	unsigned char rr[5] = { 0xa0, 0x03, 0x0a, 0x01, 0x00 };

	if (tca_der_put_hdr(b, cap, pos, 0x30, s->content) != TCA_OK ||
	    tca_der_put(b, cap, pos, s->certid.p, s->certid.len) != TCA_OK)
		return TCA_ERR_INTERNAL;
	switch (s->st.status) {
	case TCA_OCSP_GOOD:
		if (tca_der_put(b, cap, pos, "\x80\x00", 2) != TCA_OK)
			return TCA_ERR_INTERNAL;
		break;
	case TCA_OCSP_UNKNOWN:
		if (tca_der_put(b, cap, pos, "\x82\x00", 2) != TCA_OK)
			return TCA_ERR_INTERNAL;
		break;
	case TCA_OCSP_REVOKED:
		rr[4] = (unsigned char)s->st.reason;
		if (tca_der_put_hdr(b, cap, pos, 0xa1, s->revoked_content) != TCA_OK ||
		    tca_der_put_gentime(b, cap, pos, s->st.revoked_at) != TCA_OK ||
		    (s->st.reason != TCA_REASON_UNSPECIFIED &&
		    tca_der_put(b, cap, pos, rr, sizeof(rr)) != TCA_OK))
			return TCA_ERR_INTERNAL;
		break;
	default:
		return TCA_ERR_INTERNAL;
	}
	if (tca_der_put_gentime(b, cap, pos, p->now) != TCA_OK)
		return TCA_ERR_INTERNAL;
	if (p->next_update != 0 &&
	    (tca_der_put_hdr(b, cap, pos, 0xa0, GENTIME_LEN) != TCA_OK ||
	    tca_der_put_gentime(b, cap, pos, p->next_update) != TCA_OK))
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* OCSPResponse { successful, responseBytes { id-pkix-ocsp-basic, basic } } */
static int
wrap_basic(const unsigned char *basic, size_t blen, unsigned char **resp_ptr,
    size_t *resp_len_ptr)
{
	unsigned char *b = NULL;
	size_t rb, ex, content, total, pos = 0;

	rb = tca_der_hdr_len(sizeof(oid_basic)) + sizeof(oid_basic) +
	    tca_der_hdr_len(blen) + blen;			/* ResponseBytes */
	ex = tca_der_hdr_len(rb) + rb;				/* [0] contents */
	content = 3 + tca_der_hdr_len(ex) + ex;
	total = tca_der_hdr_len(content) + content;
	if (content > 0xffffffffUL)
		return TCA_ERR_INTERNAL;
	if ((b = OPENSSL_malloc(total)) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_der_put_hdr(b, total, &pos, 0x30, content) != TCA_OK ||
	    tca_der_put(b, total, &pos, "\x0a\x01\x00", 3) != TCA_OK ||
	    tca_der_put_hdr(b, total, &pos, 0xa0, ex) != TCA_OK ||
	    tca_der_put_hdr(b, total, &pos, 0x30, rb) != TCA_OK ||
	    tca_der_put_hdr(b, total, &pos, 0x06, sizeof(oid_basic)) != TCA_OK ||
	    tca_der_put(b, total, &pos, oid_basic, sizeof(oid_basic)) != TCA_OK ||
	    tca_der_put_hdr(b, total, &pos, 0x04, blen) != TCA_OK ||
	    tca_der_put(b, total, &pos, basic, blen) != TCA_OK ||
	    pos != total) {
		OPENSSL_free(b);
		return TCA_ERR_INTERNAL;
	}
	*resp_ptr = b;
	*resp_len_ptr = total;
	return TCA_OK;
}

int
tca_ocsp_respond(const struct tca_issuer *ca, const struct tca_signer *signer,
    const unsigned char *req, size_t req_len, const struct tca_ocsp_params *p,
    tca_ocsp_lookup_fn lookup, void *lookup_ctx, unsigned char **resp_ptr,
    size_t *resp_len_ptr, const char **status_ptr)
{
	struct ocsp_req o;
	struct ca_hashes h;
	struct single *singles = NULL;
	unsigned char *algder = NULL, *rd = NULL, *basic = NULL;
	EVP_PKEY *pub = NULL;
	const char *why = NULL;
	size_t alglen = 0, blen = 0, max, responses = 0, exts = 0, rd_content;
	size_t rdlen = 0, pos, q, i;
	struct tca_der_tlv one;
	int r = TCA_ERR_INVALID_ARG;

	if (resp_ptr != NULL)
		*resp_ptr = NULL;
	if (resp_len_ptr != NULL)
		*resp_len_ptr = 0;
	if (status_ptr != NULL)
		*status_ptr = NULL;
	if (ca == NULL || signer == NULL || (req == NULL && req_len > 0) ||
	    p == NULL || lookup == NULL || resp_ptr == NULL || resp_len_ptr == NULL ||
	    ca->subject.p == NULL || tca_der_time_len(p->now) == 0 ||
	    (p->next_update != 0 && (p->next_update <= p->now ||
	    tca_der_time_len(p->next_update) == 0)))
		return TCA_ERR_INVALID_ARG;
	max = p->max_requests == 0 ? TCA_OCSP_DEFAULT_MAX_REQUESTS : p->max_requests;

	if (request_parse(req, req_len, max, &o, &why) != TCA_OK) {
		log_debug_f("malformed OCSP request (%zu octets): %s", req_len, why);
		if ((*resp_ptr = OPENSSL_memdup(resp_malformed,
		    sizeof(resp_malformed))) == NULL)
			return TCA_ERR_NOMEM;
		*resp_len_ptr = sizeof(resp_malformed);
		if (status_ptr != NULL)
			*status_ptr = "malformed";
		return TCA_OK;
	}

	/* the signer is checked before any lookup reaches the store */
	if ((r = tca_issuer_pubkey(ca, &pub)) != TCA_OK) {
		log_error_f("tenant CA key does not decode: %s", tca_strerror(r));
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	if ((r = tca_signer_alg_check(signer->alg, pub)) != TCA_OK) {
		log_error_f("signer algorithm %d is not the CA key's", (int)signer->alg);
		goto out;
	}
	if ((r = ca_hashes_of(ca, &h)) != TCA_OK)
		goto out;
	if ((singles = OPENSSL_zalloc(o.n * sizeof(*singles))) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	for (i = 0, q = 0; i < o.n; i++) {
		if (tca_der_get(o.list.val, o.list.vlen, &q, &one) != TCA_OK ||
		    request_certid(&one, &singles[i].certid) != TCA_OK) {
			r = TCA_ERR_INTERNAL;
			goto out;
		}
		if ((r = answer_one(&h, &singles[i], lookup, lookup_ctx)) != TCA_OK)
			goto out;
		responses += single_size(&singles[i], p->next_update != 0);
	}

	r = TCA_ERR_INTERNAL;
	if (o.nonce.p != NULL) {
		exts = tca_der_hdr_len(o.nonce.len) + o.nonce.len;	/* SEQUENCE OF */
		exts = tca_der_hdr_len(exts) + exts;			/* [1] */
	}
	/* responderID [2] { OCTET STRING (20) } = 24 octets */
	rd_content = 24 + GENTIME_LEN + tca_der_hdr_len(responses) + responses + exts;
	rdlen = tca_der_hdr_len(rd_content) + rd_content;
	if (rd_content > 0xffffffffUL)
		goto out;
	if ((rd = OPENSSL_malloc(rdlen)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	pos = 0;
	if (tca_der_put_hdr(rd, rdlen, &pos, 0x30, rd_content) != TCA_OK ||
	    tca_der_put(rd, rdlen, &pos, "\xa2\x16\x04\x14", 4) != TCA_OK ||
	    tca_der_put(rd, rdlen, &pos, h.key_sha1, sizeof(h.key_sha1)) != TCA_OK ||
	    tca_der_put_gentime(rd, rdlen, &pos, p->now) != TCA_OK ||
	    tca_der_put_hdr(rd, rdlen, &pos, 0x30, responses) != TCA_OK)
		goto out;
	for (i = 0; i < o.n; i++)
		if (put_single(rd, rdlen, &pos, &singles[i], p) != TCA_OK)
			goto out;
	if (o.nonce.p != NULL &&
	    (tca_der_put_hdr(rd, rdlen, &pos, 0xa1,
	    tca_der_hdr_len(o.nonce.len) + o.nonce.len) != TCA_OK ||
	    tca_der_put_hdr(rd, rdlen, &pos, 0x30, o.nonce.len) != TCA_OK ||
	    tca_der_put(rd, rdlen, &pos, o.nonce.p, o.nonce.len) != TCA_OK))
		goto out;
	if (pos != rdlen) {
		log_error_f("ResponseData writer: %zu of %zu octets", pos, rdlen);
		goto out;
	}

	if ((r = tca_sig_alg_der(signer->alg, &algder, &alglen)) != TCA_OK ||
	    (r = tca_sign_assemble_der(rd, rdlen, algder, alglen, signer, pub,
	    &basic, &blen)) != TCA_OK ||
	    (r = wrap_basic(basic, blen, resp_ptr, resp_len_ptr)) != TCA_OK)
		goto out;
	if (status_ptr != NULL)
		*status_ptr = "successful";
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	OPENSSL_free(basic);
	OPENSSL_free(rd);
	OPENSSL_free(algder);
	OPENSSL_free(singles);
	EVP_PKEY_free(pub);
	return r;
}

/* ------------------------------------------------------------ client */

static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	time_t v;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    (v = timegm(&tm)) == (time_t)-1)
		return TCA_ERR_PROTOCOL;
	*out = (int64_t)v;
	return TCA_OK;
}

int
tca_ocsp_request_build(const unsigned char *cert, size_t cert_len,
    const unsigned char *issuer, size_t issuer_len, const unsigned char *nonce,
    size_t nonce_len, unsigned char **req_ptr, size_t *req_len_ptr)
{
	OCSP_REQUEST *req = NULL;
	OCSP_CERTID *id = NULL;
	X509 *c = NULL, *is = NULL;
	unsigned char *der = NULL;
	int len, r = TCA_ERR_INVALID_ARG;

	if (req_ptr != NULL)
		*req_ptr = NULL;
	if (req_len_ptr != NULL)
		*req_len_ptr = 0;
	if (req_ptr == NULL || req_len_ptr == NULL ||
	    (nonce != NULL && nonce_len > TCA_OCSP_MAX_NONCE))
		return TCA_ERR_INVALID_ARG;
	if ((r = tca_cert_from_der(cert, cert_len, &c)) != TCA_OK ||
	    (r = tca_cert_from_der(issuer, issuer_len, &is)) != TCA_OK)
		goto out;
	r = TCA_ERR_CRYPTO;
	if ((req = OCSP_REQUEST_new()) == NULL ||
	    (id = OCSP_cert_to_id(EVP_sha1(), c, is)) == NULL ||
	    OCSP_request_add0_id(req, id) == NULL)
		goto out;
	id = NULL;	/* req owns it */
	/* OpenSSL takes the nonce as non-const but copies it */
	if (nonce != NULL && nonce_len > 0 &&
	    OCSP_request_add1_nonce(req, (unsigned char *)(uintptr_t)nonce,
	    (int)nonce_len) != 1)
		goto out;
	if ((len = i2d_OCSP_REQUEST(req, &der)) <= 0)
		goto out;
	*req_ptr = der;
	*req_len_ptr = (size_t)len;
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	X509_free(is);
	X509_free(c);
	return r;
}

int
tca_ocsp_response_check(const unsigned char *resp, size_t resp_len,
    const unsigned char *cert, size_t cert_len, const unsigned char *issuer,
    size_t issuer_len, const unsigned char *nonce, size_t nonce_len, int64_t now,
    struct tca_ocsp_cert_status *out, char *why, size_t whylen)
{
	OCSP_RESPONSE *rsp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_REQUEST *nreq = NULL;
	OCSP_CERTID *id = NULL;
	X509 *c = NULL, *is = NULL;
	STACK_OF(X509) *signers = NULL;
	X509_STORE *st = NULL;
	const EVP_MD *mds[2];
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	const unsigned char *pp = resp;
	int64_t t;
	long rs;
	size_t i;
	int status = -1, reason = -1, found = 0, k, r = TCA_ERR_INVALID_ARG;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (resp == NULL || out == NULL || (nonce != NULL && nonce_len > INT_MAX))
		return TCA_ERR_INVALID_ARG;
	if ((r = tca_cert_from_der(cert, cert_len, &c)) != TCA_OK) {
		tca_setf(why, whylen, "certificate does not parse");
		goto out;
	}
	if ((r = tca_cert_from_der(issuer, issuer_len, &is)) != TCA_OK) {
		tca_setf(why, whylen, "issuer certificate does not parse");
		goto out;
	}

	r = TCA_ERR_PROTOCOL;
	if (resp_len == 0 || resp_len > LONG_MAX ||
	    (rsp = d2i_OCSP_RESPONSE(NULL, &pp, (long)resp_len)) == NULL ||
	    pp != resp + resp_len) {
		tca_setf(why, whylen, "answer is not a DER OCSPResponse");
		goto out;
	}
	if ((rs = OCSP_response_status(rsp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		tca_setf(why, whylen, "OCSP responder answered %s (%ld)",
		    OCSP_response_status_str(rs), rs);
		goto out;
	}
	if ((bs = OCSP_response_get1_basic(rsp)) == NULL) {
		tca_setf(why, whylen, "OCSP response is not a BasicOCSPResponse");
		goto out;
	}

	/* The issuer is the only signer looked for, and trusted as is:
	 * OCSP_TRUSTOTHER skips chain building for a signer found in
	 * signers, OCSP_NOINTERN ignores certificates in the response. */
	r = TCA_ERR_NOMEM;
	if ((signers = sk_X509_new_null()) == NULL ||
	    sk_X509_push(signers, is) <= 0 ||
	    (st = X509_STORE_new()) == NULL)
		goto out;
	r = TCA_ERR_PROTOCOL;
	if (OCSP_basic_verify(bs, signers, st, OCSP_TRUSTOTHER | OCSP_NOINTERN) <= 0) {
		tca_setf(why, whylen, "OCSP response is not signed by the issuer's key");
		goto out;
	}

	if (nonce != NULL && nonce_len > 0) {
		r = TCA_ERR_NOMEM;
		if ((nreq = OCSP_REQUEST_new()) == NULL ||
		    OCSP_request_add1_nonce(nreq, (unsigned char *)(uintptr_t)nonce,
		    (int)nonce_len) != 1)
			goto out;
		r = TCA_ERR_PROTOCOL;
		if ((k = OCSP_check_nonce(nreq, bs)) != 1) {
			tca_setf(why, whylen, k == -1 ? "OCSP response carries no nonce" :
			    "OCSP response nonce differs from the request's");
			goto out;
		}
	}

	/* our requests use SHA-1 CertIDs; other clients' SHA-256 ones */
	mds[0] = EVP_sha1();
	mds[1] = EVP_sha256();
	for (i = 0; i < sizeof(mds) / sizeof(mds[0]) && !found; i++) {
		r = TCA_ERR_CRYPTO;
		if ((id = OCSP_cert_to_id(mds[i], c, is)) == NULL)
			goto out;
		found = OCSP_resp_find_status(bs, id, &status, &reason, &rev,
		    &thisupd, &nextupd) == 1;
		OCSP_CERTID_free(id);
		id = NULL;
	}
	r = TCA_ERR_PROTOCOL;
	if (!found) {
		tca_setf(why, whylen, "OCSP response has no status for this certificate");
		goto out;
	}
	if (now != 0) {
		if (asn1_time_unix(thisupd, &t) != TCA_OK || t > now + OCSP_SKEW) {
			tca_setf(why, whylen, "OCSP response is not valid yet");
			goto out;
		}
		if (nextupd != NULL &&
		    (asn1_time_unix(nextupd, &t) != TCA_OK || t < now - OCSP_SKEW)) {
			tca_setf(why, whylen, "OCSP response has expired");
			goto out;
		}
	}
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		out->status = TCA_OCSP_GOOD;
		break;
	case V_OCSP_CERTSTATUS_UNKNOWN:
		out->status = TCA_OCSP_UNKNOWN;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		if (asn1_time_unix(rev, &out->revoked_at) != TCA_OK) {
			tca_setf(why, whylen, "OCSP response has a bad revocation time");
			goto out;
		}
		out->status = TCA_OCSP_REVOKED;
		out->reason = reason < 0 ? TCA_REASON_UNSPECIFIED : reason;
		break;
	default:
		tca_setf(why, whylen, "OCSP response has certificate status %d", status);
		goto out;
	}
	r = TCA_OK;
 out:
	if (r != TCA_OK) {
		memset(out, 0, sizeof(*out));
		tca_log_ossl_errors(NULL);
	}
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(nreq);
	X509_STORE_free(st);
	sk_X509_free(signers);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(rsp);
	X509_free(is);
	X509_free(c);
	return r;
}
