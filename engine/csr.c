/*
 * csr.c - device certificate requests: parsing and issuance policy (csr.h).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr.h"
#include "keytype.h"
#include "der.h"
#include "issuer.h"
#include "log.h"
#include "tca-error.h"
#include "text.h"

#define CSR_MAX_ATTRS	64	/* attributes in one request */

/* extensionRequest (PKCS#9, RFC 2985) and Microsoft's older OID for it;
 * OpenSSL's X509_REQ_get_extensions() accepts both, and so do we. */
static const unsigned char oid_ext_req[] = {
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e
};
static const unsigned char oid_ms_ext_req[] = {
	0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0e
};

/* ------------------------------------------------------------ parsing */

void
tca_csr_free(tca_csr *csr)
{
	if (csr == NULL)
		return;
	X509_NAME_free(csr->subject);
	X509_ALGOR_free(csr->key_alg);
	EVP_PKEY_free(csr->pkey);
	sk_X509_EXTENSION_pop_free(csr->exts, X509_EXTENSION_free);
	free(csr->der);
	free(csr);
}

/* The DER bytes of data: data itself, or the body of a PEM request. */
static int
csr_der(const unsigned char *data, size_t len, unsigned char **der_ptr, size_t *len_ptr)
{
	char *name = NULL;
	unsigned char *body = NULL;
	long blen = 0;
	BIO *bio = NULL;
	int r = TCA_ERR_BAD_REQUEST;

	*der_ptr = NULL;
	if (data[0] == 0x30) {
		if ((*der_ptr = malloc(len)) == NULL)
			return TCA_ERR_NOMEM;
		memcpy(*der_ptr, data, len);
		*len_ptr = len;
		return TCA_OK;
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	/* the first "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST" block,
	 * other blocks skipped, as PEM_read_bio_X509_REQ() does */
	if (PEM_bytes_read_bio(&body, &blen, &name, PEM_STRING_X509_REQ, bio,
	    NULL, NULL) != 1 || blen <= 0 || (size_t)blen > len)
		goto out;
	if ((*der_ptr = malloc((size_t)blen)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	memcpy(*der_ptr, body, (size_t)blen);
	*len_ptr = (size_t)blen;
	r = TCA_OK;
 out:
	OPENSSL_free(name);
	OPENSSL_free(body);
	BIO_free(bio);
	return r;
}

/*
 * The extension request among the attributes ([0] IMPLICIT SET OF
 * Attribute): the first value of the first extensionRequest attribute, or of
 * the first Microsoft one if there is none, like X509_REQ_get_extensions().
 */
static int
csr_attributes(tca_csr *csr, const struct tca_der_tlv *attrs)
{
	struct tca_der_tlv attr, oid, vals, val, found;
	const unsigned char *p;
	size_t pos = 0, q, n = 0;
	int rank = 0, this_rank;

	memset(&found, 0, sizeof(found));
	while (pos < attrs->vlen) {
		if (++n > CSR_MAX_ATTRS ||
		    tca_der_get_tag(attrs->val, attrs->vlen, &pos, 0x30, &attr) != TCA_OK)
			return TCA_ERR_BAD_REQUEST;
		q = 0;
		if (tca_der_get_tag(attr.val, attr.vlen, &q, 0x06, &oid) != TCA_OK ||
		    tca_der_get_tag(attr.val, attr.vlen, &q, 0x31, &vals) != TCA_OK ||
		    q != attr.vlen)
			return TCA_ERR_BAD_REQUEST;
		this_rank = 0;
		if (oid.vlen == sizeof(oid_ext_req) &&
		    memcmp(oid.val, oid_ext_req, oid.vlen) == 0)
			this_rank = 2;
		else if (oid.vlen == sizeof(oid_ms_ext_req) &&
		    memcmp(oid.val, oid_ms_ext_req, oid.vlen) == 0)
			this_rank = 1;
		if (this_rank <= rank)
			continue;
		rank = this_rank;
		q = 0;
		if (vals.vlen == 0 ||
		    tca_der_get(vals.val, vals.vlen, &q, &val) != TCA_OK ||
		    val.tag != 0x30) {
			memset(&found, 0, sizeof(found));
			csr->exts_malformed = 1;
			continue;
		}
		found = val;
		csr->exts_malformed = 0;
	}
	if (found.p != NULL) {
		p = found.p;
		if ((csr->exts = d2i_X509_EXTENSIONS(NULL, &p, (long)found.len)) == NULL ||
		    p != found.p + found.len) {
			sk_X509_EXTENSION_pop_free(csr->exts, X509_EXTENSION_free);
			csr->exts = NULL;
			csr->exts_malformed = 1;
		}
	}
	return TCA_OK;
}

/*
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE {
 *     version INTEGER, subject Name, subjectPKInfo SubjectPublicKeyInfo,
 *     attributes [0] IMPLICIT SET OF Attribute (absent in some requests) },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 */
static int
csr_split(tca_csr *csr)
{
	struct tca_der_tlv req, version, subject, spki, alg, bits, attrs, sig;
	const unsigned char *b = csr->der, *p;
	size_t pos = 0;

	if (tca_der_get_tag(b, csr->der_len, &pos, 0x30, &req) != TCA_OK ||
	    pos != csr->der_len)
		return TCA_ERR_BAD_REQUEST;
	pos = 0;
	if (tca_der_get_tag(req.val, req.vlen, &pos, 0x30, &csr->info) != TCA_OK ||
	    tca_der_get_tag(req.val, req.vlen, &pos, 0x30, &csr->sig_alg) != TCA_OK ||
	    tca_der_get_tag(req.val, req.vlen, &pos, 0x03, &sig) != TCA_OK ||
	    pos != req.vlen || sig.vlen < 2 || sig.val[0] != 0)
		return TCA_ERR_BAD_REQUEST;
	csr->sig = sig.val + 1;
	csr->sig_len = sig.vlen - 1;

	pos = 0;
	if (tca_der_get_tag(csr->info.val, csr->info.vlen, &pos, 0x02, &version) != TCA_OK ||
	    version.vlen != 1 ||
	    tca_der_get_tag(csr->info.val, csr->info.vlen, &pos, 0x30, &subject) != TCA_OK ||
	    tca_der_get_tag(csr->info.val, csr->info.vlen, &pos, 0x30, &spki) != TCA_OK ||
	    tca_der_get_opt(csr->info.val, csr->info.vlen, &pos, 0xa0, &attrs) != TCA_OK ||
	    pos != csr->info.vlen)
		return TCA_ERR_BAD_REQUEST;

	p = subject.p;
	if ((csr->subject = d2i_X509_NAME(NULL, &p, (long)subject.len)) == NULL ||
	    p != subject.p + subject.len)
		return TCA_ERR_BAD_REQUEST;
	/* SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey } */
	pos = 0;
	if (tca_der_get_tag(spki.val, spki.vlen, &pos, 0x30, &alg) != TCA_OK ||
	    tca_der_get_tag(spki.val, spki.vlen, &pos, 0x03, &bits) != TCA_OK ||
	    pos != spki.vlen || bits.vlen < 2 || bits.val[0] != 0)
		return TCA_ERR_BAD_REQUEST;
	p = alg.p;
	if ((csr->key_alg = d2i_X509_ALGOR(NULL, &p, (long)alg.len)) == NULL ||
	    p != alg.p + alg.len)
		return TCA_ERR_BAD_REQUEST;
	csr->key = bits.val + 1;
	csr->key_len = bits.vlen - 1;
	/* a key that does not decode, or that anyone could sign for, is the
	 * policy's refusal, not a parse error */
	if ((csr->key_err = tca_spki_to_pkey(spki.p, spki.len, &csr->pkey,
	    csr->key_why, sizeof(csr->key_why))) != TCA_OK)
		csr->pkey = NULL;
	if (attrs.p != NULL)
		return csr_attributes(csr, &attrs);
	return TCA_OK;
}

int
tca_csr_parse(const unsigned char *data, size_t len, tca_csr **csr_ptr,
    char *why, size_t whylen)
{
	tca_csr *csr = NULL;
	int r = TCA_ERR_INTERNAL;

	if (csr_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*csr_ptr = NULL;
	if (data == NULL || len == 0) {
		tca_setf(why, whylen, "CSR is empty");
		return TCA_ERR_BAD_REQUEST;
	}
	if (len > TCA_CSR_MAX_INPUT) {
		tca_setf(why, whylen, "CSR is larger than %d bytes", TCA_CSR_MAX_INPUT);
		return TCA_ERR_BAD_REQUEST;
	}
	if ((csr = calloc(1, sizeof(*csr))) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = csr_der(data, len, &csr->der, &csr->der_len)) != TCA_OK) {
		if (r == TCA_ERR_BAD_REQUEST)
			tca_setf(why, whylen, "CSR is neither a DER nor a PEM PKCS#10 request");
		goto out;
	}
	if ((r = csr_split(csr)) != TCA_OK) {
		tca_setf(why, whylen, "CSR is not a DER PKCS#10 request (RFC 2986)%s",
		    data[0] == 0x30 ? "; trailing bytes, BER or truncated?" : "");
		goto out;
	}
	*csr_ptr = csr;
	csr = NULL;
	r = TCA_OK;
 out:
	if (r != TCA_OK)
		tca_log_ossl_errors(__func__);
	tca_csr_free(csr);
	return r;
}

/* ------------------------------------------------------------ policy */

static int
attr_name(const ASN1_OBJECT *obj, char *out, size_t outsz)
{
	int nid = OBJ_obj2nid(obj);
	const char *sn = (nid != NID_undef) ? OBJ_nid2sn(nid) : NULL;

	if (sn != NULL) {
		snprintf(out, outsz, "%s", sn);
		return 0;
	}
	if (OBJ_obj2txt(out, (int)outsz, obj, 1) <= 0)
		snprintf(out, outsz, "(unknown)");
	return 0;
}

static int
check_subject(const X509_NAME *name, const char *device_id, char *why, size_t whylen)
{
	const X509_NAME_ENTRY *ne;
	const ASN1_STRING *val;
	unsigned char *utf8 = NULL, *cn = NULL;
	char attr[80], shown[80], dev[80];
	int i, n, nid, ulen, cnlen = 0, ncn = 0, r = TCA_ERR_INTERNAL;

	if (name == NULL || (n = X509_NAME_entry_count(name)) <= 0) {
		tca_setf(why, whylen, "CSR subject is empty");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	for (i = 0; i < n; i++) {
		ne = X509_NAME_get_entry(name, i);
		nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne));
		attr_name(X509_NAME_ENTRY_get_object(ne), attr, sizeof(attr));
		if (nid != NID_commonName && nid != NID_organizationName &&
		    nid != NID_organizationalUnitName) {
			tca_setf(why, whylen, "CSR subject attribute %s is not "
			    "allowed (only CN, O and OU)", attr);
			r = TCA_ERR_POLICY_VIOLATION;
			goto out;
		}
		val = X509_NAME_ENTRY_get_data(ne);
		OPENSSL_free(utf8);
		utf8 = NULL;
		if ((ulen = ASN1_STRING_to_UTF8(&utf8, val)) < 0) {
			tca_setf(why, whylen, "CSR subject %s is not a valid string", attr);
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
		if (memchr(utf8, '\0', (size_t)ulen) != NULL) {
			tca_setf(why, whylen, "CSR subject %s contains a NUL character", attr);
			r = TCA_ERR_POLICY_VIOLATION;
			goto out;
		}
		if (nid == NID_commonName) {
			if (++ncn > 1) {
				tca_setf(why, whylen, "CSR subject has more than one CN");
				r = TCA_ERR_POLICY_VIOLATION;
				goto out;
			}
			cn = utf8;
			cnlen = ulen;
			utf8 = NULL;
		}
	}
	if (ncn == 0) {
		tca_setf(why, whylen, "CSR subject has no CN");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if ((size_t)cnlen != strlen(device_id) ||
	    memcmp(cn, device_id, (size_t)cnlen) != 0) {
		tca_sanitize(cn, (size_t)cnlen, shown, sizeof(shown));
		tca_sanitize((const unsigned char *)device_id, strlen(device_id),
		    dev, sizeof(dev));
		tca_setf(why, whylen, "CSR CN \"%s\" does not match device id \"%s\"",
		    shown, dev);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	r = TCA_OK;
 out:
	OPENSSL_free(utf8);
	OPENSSL_free(cn);
	return r;
}

static int
check_key(EVP_PKEY *pkey, char *why, size_t whylen)
{
	const struct tca_key_desc *kd;
	char group[80];
	size_t glen = 0, i;
	int id, bits;

	id = EVP_PKEY_get_base_id(pkey);
	switch (id) {
	case EVP_PKEY_EC:
		memset(group, 0, sizeof(group));
		if (EVP_PKEY_get_utf8_string_param(pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1) {
			ERR_clear_error();
			tca_setf(why, whylen, "EC key without a named curve is not "
			    "accepted (P-256 or P-384 only)");
			return TCA_ERR_POLICY_VIOLATION;
		}
		/* the curves of the key-type table (keytype.h) */
		for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++)
			if (kd->group != NULL && (strcmp(group, kd->group) == 0 ||
			    (kd->nist_name != NULL && strcmp(group, kd->nist_name) == 0)))
				return TCA_OK;
		tca_setf(why, whylen, "EC curve %s is not accepted (P-256 or P-384 only)",
		    group);
		return TCA_ERR_POLICY_VIOLATION;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < 2048) {
			tca_setf(why, whylen, "RSA key of %d bits is below the "
			    "2048-bit minimum", bits);
			return TCA_ERR_POLICY_VIOLATION;
		}
		if (bits > 8192) {
			tca_setf(why, whylen, "RSA key of %d bits exceeds the "
			    "8192-bit maximum", bits);
			return TCA_ERR_POLICY_VIOLATION;
		}
		return TCA_OK;
	case EVP_PKEY_ED25519:
		return TCA_OK;
	default:
		tca_setf(why, whylen, "key type %s is not accepted "
		    "(EC P-256/P-384, RSA 2048-8192, Ed25519)",
		    id != NID_undef && OBJ_nid2sn(id) != NULL ? OBJ_nid2sn(id) :
		    (EVP_PKEY_get0_type_name(pkey) != NULL ?
		    EVP_PKEY_get0_type_name(pkey) : "unknown"));
		return TCA_ERR_POLICY_VIOLATION;
	}
}

static int
check_requested_exts(const tca_csr *csr, char *why, size_t whylen)
{
	X509_EXTENSION *ext;
	BASIC_CONSTRAINTS *bc = NULL;
	int i, r = TCA_ERR_INTERNAL;

	if (csr->exts_malformed) {
		tca_setf(why, whylen, "CSR extension request is malformed");
		return TCA_ERR_BAD_REQUEST;
	}
	if (csr->exts == NULL)
		return TCA_OK;
	for (i = -1; (i = X509v3_get_ext_by_NID(csr->exts, NID_basic_constraints,
	    i)) >= 0;) {
		ext = sk_X509_EXTENSION_value(csr->exts, i);
		BASIC_CONSTRAINTS_free(bc);
		if ((bc = X509V3_EXT_d2i(ext)) == NULL) {
			tca_setf(why, whylen, "CSR basicConstraints extension is malformed");
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
		if (bc->ca) {
			tca_setf(why, whylen, "CSR requests CA:TRUE");
			r = TCA_ERR_POLICY_VIOLATION;
			goto out;
		}
	}
	r = TCA_OK;
 out:
	BASIC_CONSTRAINTS_free(bc);
	return r;
}

/*
 * Proof of possession: the signature over the CertificationRequestInfo bytes
 * verifies under the request's own key.  Algorithms that map to a (digest,
 * key type) pair are checked here; the rest (RSASSA-PSS with its parameters)
 * by OpenSSL's full parse and X509_REQ_verify().  1 if it verifies.
 */
static int
proof_of_possession(const tca_csr *csr)
{
	const unsigned char *p = csr->sig_alg.p;
	X509_ALGOR *alg = NULL;
	X509_REQ *req = NULL;
	const char *mdname = NULL;
	int sig_nid, md_nid = NID_undef, pk_nid = NID_undef, ok = 0;

	if ((alg = d2i_X509_ALGOR(NULL, &p, (long)csr->sig_alg.len)) == NULL ||
	    p != csr->sig_alg.p + csr->sig_alg.len)
		goto out;
	sig_nid = OBJ_obj2nid(alg->algorithm);
	if (sig_nid == NID_undef || sig_nid == NID_rsassaPss ||
	    OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) {
		p = csr->der;
		if ((req = d2i_X509_REQ(NULL, &p, (long)csr->der_len)) != NULL &&
		    p == csr->der + csr->der_len &&
		    X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1)
			ok = 1;
		goto out;
	}
	/* the signature algorithm's key type must be the request's */
	if (pk_nid != EVP_PKEY_get_base_id(csr->pkey))
		goto out;
	if (md_nid != NID_undef && (mdname = OBJ_nid2sn(md_nid)) == NULL)
		goto out;
	ok = tca_sig_verify(csr->pkey, mdname, csr->info.p, csr->info.len, csr->sig,
	    csr->sig_len);
 out:
	X509_REQ_free(req);
	X509_ALGOR_free(alg);
	return ok;
}

int
tca_csr_check(const tca_csr *csr, const char *device_id, char *why, size_t whylen)
{
	int r = TCA_ERR_INTERNAL;

	if (csr == NULL || device_id == NULL || *device_id == '\0')
		return TCA_ERR_INVALID_ARG;
	if (csr->pkey == NULL) {
		if (csr->key_err == TCA_ERR_POLICY_VIOLATION) {
			tca_setf(why, whylen, "CSR public key refused: %s", csr->key_why);
			r = TCA_ERR_POLICY_VIOLATION;
		} else {
			tca_setf(why, whylen, "CSR public key is malformed or of an "
			    "unsupported type");
			r = TCA_ERR_BAD_REQUEST;
		}
		goto out;
	}
	if (!proof_of_possession(csr)) {
		tca_setf(why, whylen, "CSR signature does not verify "
		    "(proof of possession failed)");
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if ((r = check_subject(csr->subject, device_id, why, whylen)) != TCA_OK ||
	    (r = check_key(csr->pkey, why, whylen)) != TCA_OK ||
	    (r = check_requested_exts(csr, why, whylen)) != TCA_OK)
		goto out;
	r = TCA_OK;
 out:
	tca_log_ossl_errors(r == TCA_OK ? NULL : __func__);
	return r;
}
