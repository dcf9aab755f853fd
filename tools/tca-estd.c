/*
 * tca-estd - the reference EST front end (RFC 7030, RFC 8951) of the tca
 * engine: HTTPS (libmicrohttpd on GnuTLS) outside, the engine's Unix-socket
 * RPC (libtca-client) inside.  docs/est.md describes it; in short:
 *
 *   GET  /.well-known/est[/LABEL]/cacerts         engine `cacerts`
 *   POST /.well-known/est[/LABEL]/simpleenroll    engine `issue`, HTTP Basic
 *                                                 (device id, one-time password)
 *   POST /.well-known/est[/LABEL]/simplereenroll  engine `reenroll`, the TLS
 *                                                 client certificate as `current`
 *   GET  /.well-known/est[/LABEL]/csrattrs        engine `csrattrs`
 *
 * LABEL is the tenant; without one the Host header picks it (est-conf.c).
 * It holds no key but its own TLS server key, and no secret of the CA.
 *
 *   tca-estd [--config FILE] [--port-file FILE] [--check-config] [--help]
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "est-conf.h"
#include "est-engine.h"
#include "est-log.h"
#include "est-pkix.h"
#include "tca-client.h"

#define PROG "tca-estd"
#define EST_PREFIX "/.well-known/est/"
#define PEM_FILE_MAX (1024 * 1024)
#define DEVICE_ID_MAX 256	/* the RPC schema's bound; the engine checks 64 */
#define OTP_MAX 128	/* the `otp` argument's bound (docs/rpc.md 7.1) */
#define CT_PKCS7 "application/pkcs7-mime; smime-type=certs-only"
#define CT_CSRATTRS "application/csrattrs"
#define CT_TEXT "text/plain; charset=utf-8"
/* RFC 8951 makes the body base64 whatever this header says, but clients
 * written to RFC 7030 (BouncyCastle's EST client among them) decode base64
 * only when it is there */
#define HDR_CTE "Content-Transfer-Encoding"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

enum est_op {
	OP_NONE = 0,
	OP_CACERTS,
	OP_SIMPLEENROLL,
	OP_SIMPLEREENROLL,
	OP_CSRATTRS,
};

struct estd {
	struct est_config cfg;
	struct est_engine engine;
	char retry_after[16];
	char www_authenticate[96];
	volatile int started;		/* MHD's messages: errors before, debug after */
};

/* one HTTP request, from its headers to the log line */
struct est_req {
	struct timespec start;
	char method[8];
	char path[128];			/* sanitized, for the log */
	char peer[64];
	char tenant[EST_TENANT_MAX + 1];
	char device[72];		/* sanitized, for the log */
	enum est_op op;
	unsigned int status;		/* queued HTTP status; 0: none yet */
	char engine[32];		/* engine code for the log; "-": not asked */
	char reason[192];		/* why, for the log (sanitized) */
	unsigned char *body;
	size_t body_len;
	size_t seen;			/* body bytes received, kept or not */
	int too_large;
};

/* ------------------------------------------------------------ small helpers */

/* printable ASCII except space, quote and backslash; the rest as '?' */
static void
sanitize(char *dst, size_t dstsz, const char *src, size_t srclen)
{
	size_t i, o = 0;

	for (i = 0; i < srclen && src[i] != '\0' && o + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[o++] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	dst[o] = '\0';
}

static void
set_reason(struct est_req *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_reason(struct est_req *rq, const char *fmt, ...)
{
	char tmp[sizeof(rq->reason)];
	size_t i;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	for (i = 0; tmp[i] != '\0'; i++)
		if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f || tmp[i] == '"')
			tmp[i] = '\'';
	memcpy(rq->reason, tmp, sizeof(tmp));
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void
peer_name(struct MHD_Connection *conn, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci;
	char host[INET6_ADDRSTRLEN], serv[8];
	socklen_t len;

	snprintf(out, outsz, "?");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, len, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	if (ci->client_addr->sa_family == AF_INET6)
		snprintf(out, outsz, "[%s]:%s", host, serv);
	else
		snprintf(out, outsz, "%s:%s", host, serv);
}

/* "application/pkcs10" matches "Application/PKCS10 ; x=y" */
static int
content_type_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	if (v == NULL)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, want, n) != 0)
		return 0;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';';
}

/*
 * HTTP Basic credentials (RFC 7617): user (the device id) and password (its
 * one-time password), NUL-terminated.  0, or -1 if absent or malformed.  The
 * decoded copy is wiped; the caller wipes pass.
 */
static int
basic_auth(struct MHD_Connection *conn, char *user, size_t userlen, char *pass, size_t passlen)
{
	const char *h;
	unsigned char *dec = NULL;
	const unsigned char *colon;
	size_t declen = 0, ulen, plen, i;
	int r = -1;

	user[0] = '\0';
	pass[0] = '\0';
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Basic", 5) != 0 || (h[5] != ' ' && h[5] != '\t'))
		return -1;
	h += 5;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strlen(h) > 4 * (DEVICE_ID_MAX + OTP_MAX) ||
	    est_b64_decode(h, strlen(h), &dec, &declen) != 0)
		return -1;
	if ((colon = memchr(dec, ':', declen)) == NULL)
		goto out;
	ulen = (size_t)(colon - dec);
	plen = declen - ulen - 1;
	if (ulen == 0 || plen == 0 || ulen >= userlen || plen >= passlen)
		goto out;
	for (i = 0; i < ulen; i++)
		if (dec[i] < 0x20 || dec[i] == 0x7f)
			goto out;
	if (memchr(colon + 1, '\0', plen) != NULL)
		goto out;
	memcpy(user, dec, ulen);
	user[ulen] = '\0';
	memcpy(pass, colon + 1, plen);
	pass[plen] = '\0';
	r = 0;
 out:
	OPENSSL_cleanse(dec, declen);
	free(dec);
	return r;
}

/*
 * The TLS client certificate (DER, owned by the session), or -1 if the
 * client presented none.  GnuTLS returns peer certificates only after a
 * handshake in which the client proved it holds the key (CertificateVerify);
 * whether the certificate is worth anything is for the caller (and the
 * engine) to decide.
 */
static int
client_cert(struct MHD_Connection *conn, const unsigned char **der, size_t *len)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	gnutls_session_t s;
	unsigned int n = 0;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return -1;
	s = (gnutls_session_t)ci->tls_session;
	if (gnutls_auth_get_type(s) != GNUTLS_CRD_CERTIFICATE ||
	    gnutls_certificate_type_get2(s, GNUTLS_CTYPE_CLIENT) != GNUTLS_CRT_X509)
		return -1;
	if ((peers = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0 ||
	    peers[0].size == 0)
		return -1;
	*der = peers[0].data;
	*len = peers[0].size;
	return 0;
}

/* ----------------------------------------------------------------- replies */

/* Queues status with body (malloc'd, taken; may be NULL) and the headers
 * the status needs: WWW-Authenticate with 401, Retry-After with 503. */
static MHD_RESULT
reply(struct estd *s, struct MHD_Connection *conn, struct est_req *rq, unsigned int status,
    const char *ctype, char *body, size_t len, const char *hname, const char *hvalue)
{
	struct MHD_Response *resp;
	MHD_RESULT ret;

	resp = MHD_create_response_from_buffer(len, body != NULL ? body : (void *)"",
	    body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	if ((ctype != NULL &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (status == 401 && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    s->www_authenticate) != MHD_YES) ||
	    (status == 503 && MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
	    s->retry_after) != MHD_YES) ||
	    (hname != NULL && MHD_add_response_header(resp, hname, hvalue) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES)
		rq->status = status;
	return ret;
}

static MHD_RESULT
reply_text(struct estd *s, struct MHD_Connection *conn, struct est_req *rq,
    unsigned int status, const char *hname, const char *hvalue, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static MHD_RESULT
reply_text(struct estd *s, struct MHD_Connection *conn, struct est_req *rq,
    unsigned int status, const char *hname, const char *hvalue, const char *fmt, ...)
{
	char *body;
	va_list ap;
	int n;

	if ((body = malloc(512)) == NULL)
		return MHD_NO;
	va_start(ap, fmt);
	n = vsnprintf(body, 510, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > 509)
		n = 509;
	body[n++] = '\n';
	body[n] = '\0';
	if (rq->reason[0] == '\0')
		set_reason(rq, "%.*s", n - 1, body);
	if (status == 401) {
		/* a challenge goes out without a body: the reason is in the log
		 * line; some clients (BouncyCastle's HttpAuth) cannot answer a
		 * challenge whose body they did not read */
		free(body);
		return reply(s, conn, rq, status, NULL, NULL, 0, hname, hvalue);
	}
	return reply(s, conn, rq, status, CT_TEXT, body, (size_t)n, hname, hvalue);
}

/* An engine refusal or an unreachable engine, as docs/est.md's table says. */
static MHD_RESULT
reply_engine_error(struct estd *s, struct MHD_Connection *conn, struct est_req *rq,
    const struct tca_client_error *err)
{
	unsigned int status;
	int show;

	snprintf(rq->engine, sizeof(rq->engine), "%s", est_engine_code(err));
	set_reason(rq, "%s", err->message);
	status = est_engine_http_status(err, &show);
	if (err->err == TCA_ERR_UNAUTHORIZED)
		est_log(LOG_ERR, "the engine refuses this front end (%s): give its uid or gid "
		    "the frontend role (roles.frontend_uids / roles.frontend_gids)",
		    err->message);
	if (show)
		return reply_text(s, conn, rq, status, NULL, NULL, "%s", err->message);
	switch (status) {
	case 401:
		return reply_text(s, conn, rq, status, NULL, NULL, "authentication failed");
	case 403:
		return reply_text(s, conn, rq, status, NULL, NULL, "refused");
	case 404:
		return reply_text(s, conn, rq, status, NULL, NULL, "unknown tenant");
	case 503:
		return reply_text(s, conn, rq, status, NULL, NULL,
		    "the certification authority is unavailable; retry later");
	case 400:
		return reply_text(s, conn, rq, status, NULL, NULL, "bad request");
	default:
		return reply_text(s, conn, rq, 500, NULL, NULL, "internal error");
	}
}

/* n DER certificates as base64 certs-only PKCS#7, status 200 */
static MHD_RESULT
reply_certs(struct estd *s, struct MHD_Connection *conn, struct est_req *rq,
    const unsigned char *const *certs, const size_t *lens, size_t n)
{
	unsigned char *p7 = NULL;
	char *b64 = NULL;
	size_t p7len = 0, b64len = 0;

	if (est_certs_only(certs, lens, n, &p7, &p7len) != 0 ||
	    est_b64_encode(p7, p7len, &b64, &b64len) != 0) {
		free(p7);
		set_reason(rq, "cannot build the PKCS#7 response");
		return reply_text(s, conn, rq, 500, NULL, NULL, "internal error");
	}
	free(p7);
	return reply(s, conn, rq, 200, CT_PKCS7, b64, b64len, HDR_CTE, "base64");
}

/* ------------------------------------------------------------- operations */

static MHD_RESULT
do_cacerts(struct estd *s, struct MHD_Connection *conn, struct est_req *rq)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	unsigned char **certs = NULL;
	size_t *lens = NULL, n = 0;
	MHD_RESULT ret;
	int r;

	if ((r = est_engine_open(&s->engine, &c, &err)) == TCA_CLIENT_OK)
		r = tca_client_cacerts(c, rq->tenant, &certs, &lens, &n, &err);
	est_engine_close(&s->engine, c);
	if (r != TCA_CLIENT_OK)
		return reply_engine_error(s, conn, rq, &err);
	snprintf(rq->engine, sizeof(rq->engine), "OK");
	ret = reply_certs(s, conn, rq, (const unsigned char *const *)certs, lens, n);
	tca_client_free_certs(certs, lens, n);
	return ret;
}

static MHD_RESULT
do_csrattrs(struct estd *s, struct MHD_Connection *conn, struct est_req *rq)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL;
	size_t len = 0, b64len = 0;
	int r;

	if ((r = est_engine_open(&s->engine, &c, &err)) == TCA_CLIENT_OK)
		r = tca_client_csrattrs(c, rq->tenant, &der, &len, &err);
	est_engine_close(&s->engine, c);
	if (r != TCA_CLIENT_OK)
		return reply_engine_error(s, conn, rq, &err);
	snprintf(rq->engine, sizeof(rq->engine), "OK");
	/* RFC 7030 4.5.2: no attributes -> 204 (an empty SEQUENCE) */
	if (len == 2 && der[0] == 0x30 && der[1] == 0x00) {
		free(der);
		return reply(s, conn, rq, 204, NULL, NULL, 0, NULL, NULL);
	}
	r = est_b64_encode(der, len, &b64, &b64len);
	free(der);
	if (r != 0)
		return reply_text(s, conn, rq, 500, NULL, NULL, "internal error");
	return reply(s, conn, rq, 200, CT_CSRATTRS, b64, b64len, HDR_CTE, "base64");
}

/*
 * simpleenroll / simplereenroll, once the whole body is in: base64 PKCS#10
 * (RFC 8951), then the engine.
 */
static MHD_RESULT
do_enroll(struct estd *s, struct MHD_Connection *conn, struct est_req *rq)
{
	struct tca_client_error err;
	char user[DEVICE_ID_MAX + 1], otp[OTP_MAX + 1], cn[DEVICE_ID_MAX + 1], why[128];
	const unsigned char *cur = NULL;
	const char *device;
	unsigned char *csr = NULL, *cert = NULL, **cas = NULL;
	size_t csr_len = 0, cert_len = 0, cur_len = 0, *ca_lens = NULL, n_cas = 0;
	tca_client *c = NULL;
	MHD_RESULT ret;
	int r, have_otp = 0;

	if (rq->too_large)
		return reply_text(s, conn, rq, 413, NULL, NULL,
		    "the request body is larger than %zu bytes", s->cfg.max_body);
	if (rq->body_len == 0 ||
	    est_b64_decode((const char *)rq->body, rq->body_len, &csr, &csr_len) != 0)
		return reply_text(s, conn, rq, 400, NULL, NULL,
		    "the body must be a base64-encoded PKCS#10 request (RFC 8951)");
	if (est_csr_parse(csr, csr_len, cn, sizeof(cn), why, sizeof(why)) != 0) {
		ret = reply_text(s, conn, rq, 400, NULL, NULL, "%s", why);
		goto out;
	}
	if (rq->op == OP_SIMPLEENROLL && s->cfg.auth == EST_AUTH_OTP) {
		/* checked with the headers; read again, so the password is held
		 * only for the engine call */
		if (basic_auth(conn, user, sizeof(user), otp, sizeof(otp)) != 0) {
			ret = reply_text(s, conn, rq, 401, NULL, NULL, "authentication required");
			goto out;
		}
		have_otp = 1;
		device = user;
	} else {
		if (cn[0] == '\0') {
			ret = reply_text(s, conn, rq, 400, NULL, NULL, "the CSR subject needs "
			    "exactly one commonName: the device id");
			goto out;
		}
		device = cn;
	}
	sanitize(rq->device, sizeof(rq->device), device, strlen(device));
	if (rq->op == OP_SIMPLEREENROLL && client_cert(conn, &cur, &cur_len) != 0) {
		ret = reply_text(s, conn, rq, 401, NULL, NULL,
		    "re-enrollment needs the current certificate as TLS client certificate");
		goto out;
	}
	if ((r = est_engine_open(&s->engine, &c, &err)) != TCA_CLIENT_OK) {
		ret = reply_engine_error(s, conn, rq, &err);
		goto out;
	}
	if (rq->op == OP_SIMPLEREENROLL) {
		/* the front end's own check before it forwards the certificate: it
		 * must be one of this tenant's (the engine checks again, with the
		 * subject) */
		if ((r = tca_client_cacerts(c, rq->tenant, &cas, &ca_lens, &n_cas, &err)) !=
		    TCA_CLIENT_OK) {
			ret = reply_engine_error(s, conn, rq, &err);
			goto out;
		}
		if (est_cert_issued_by_any(cur, cur_len, (const unsigned char *const *)cas,
		    ca_lens, n_cas) != 1) {
			ret = reply_text(s, conn, rq, 403, NULL, NULL, "the client certificate "
			    "was not issued by this tenant's CA");
			goto out;
		}
	}
	r = est_engine_enroll(c, rq->tenant, device, csr, csr_len, have_otp ? otp : NULL,
	    cur, cur_len, &cert, &cert_len, &err);
	if (r != TCA_CLIENT_OK) {
		ret = reply_engine_error(s, conn, rq, &err);
		goto out;
	}
	snprintf(rq->engine, sizeof(rq->engine), "OK");
	{
		const unsigned char *one[1] = { cert };

		ret = reply_certs(s, conn, rq, one, &cert_len, 1);
	}
 out:
	est_engine_close(&s->engine, c);
	OPENSSL_cleanse(otp, sizeof(otp));
	tca_client_free_certs(cas, ca_lens, n_cas);
	free(cert);
	free(csr);
	return ret;
}

/* --------------------------------------------------------- request routing */

static enum est_op
op_named(const char *s, size_t len)
{
	static const struct {
		const char *name;
		enum est_op op;
	} ops[] = {
		{ "cacerts", OP_CACERTS }, { "simpleenroll", OP_SIMPLEENROLL },
		{ "simplereenroll", OP_SIMPLEREENROLL }, { "csrattrs", OP_CSRATTRS },
	};
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strlen(ops[i].name) == len && memcmp(ops[i].name, s, len) == 0)
			return ops[i].op;
	return OP_NONE;
}

/* The first call for a request: its headers are in, the body is not. */
static MHD_RESULT
on_headers(struct estd *s, struct MHD_Connection *conn, struct est_req *rq, const char *url,
    const char *method)
{
	const char *rest, *slash, *opname, *v;
	char user[DEVICE_ID_MAX + 1], otp[OTP_MAX + 1];
	const unsigned char *der;
	size_t oplen, der_len;
	unsigned long long clen;
	char *end;
	int is_get, is_post, ok;

	if (strncmp(url, EST_PREFIX, strlen(EST_PREFIX)) != 0)
		return reply_text(s, conn, rq, 404, NULL, NULL, "not found");
	rest = url + strlen(EST_PREFIX);
	if ((slash = strchr(rest, '/')) != NULL) {
		/* /.well-known/est/LABEL/OP: the label is the tenant */
		opname = slash + 1;
		if (strchr(opname, '/') != NULL || !est_tenant_valid(rest, (size_t)(slash - rest)))
			return reply_text(s, conn, rq, 404, NULL, NULL, "not found");
		memcpy(rq->tenant, rest, (size_t)(slash - rest));
		rq->tenant[slash - rest] = '\0';
	} else {
		opname = rest;
	}
	oplen = strlen(opname);
	if ((rq->op = op_named(opname, oplen)) == OP_NONE) {
		if ((oplen == 12 && memcmp(opname, "serverkeygen", 12) == 0) ||
		    (oplen == 7 && memcmp(opname, "fullcmc", 7) == 0))
			return reply_text(s, conn, rq, 501, NULL, NULL,
			    "/%s is not offered by this EST server", opname);
		return reply_text(s, conn, rq, 404, NULL, NULL, "not found");
	}
	if (rq->tenant[0] == '\0' &&
	    est_config_tenant_for_host(&s->cfg, MHD_lookup_connection_value(conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST), rq->tenant, sizeof(rq->tenant)) != 0)
		return reply_text(s, conn, rq, 404, NULL, NULL,
		    "no tenant for this host name: use " EST_PREFIX "<label>/%s", opname);

	is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	is_post = strcmp(method, "POST") == 0;
	if (rq->op == OP_CACERTS || rq->op == OP_CSRATTRS) {
		/* answered on the next call, when the request is complete: an
		 * answer queued now would close the connection (no keep-alive) */
		if (!is_get)
			return reply_text(s, conn, rq, 405, MHD_HTTP_HEADER_ALLOW, "GET, HEAD",
			    "use GET");
		return MHD_YES;
	}
	if (!is_post)
		return reply_text(s, conn, rq, 405, MHD_HTTP_HEADER_ALLOW, "POST", "use POST");

	/* authentication first: an unauthenticated client learns nothing more
	 * and uploads nothing */
	if (rq->op == OP_SIMPLEENROLL && s->cfg.auth == EST_AUTH_OTP) {
		ok = basic_auth(conn, user, sizeof(user), otp, sizeof(otp)) == 0;
		OPENSSL_cleanse(otp, sizeof(otp));
		if (!ok)
			return reply_text(s, conn, rq, 401, NULL, NULL, "HTTP Basic authentication "
			    "with the device id and its one-time password is required");
		sanitize(rq->device, sizeof(rq->device), user, strlen(user));
	}
	if (rq->op == OP_SIMPLEREENROLL && client_cert(conn, &der, &der_len) != 0)
		return reply_text(s, conn, rq, 401, NULL, NULL,
		    "re-enrollment needs the current certificate as TLS client certificate");
	if (!content_type_is(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE), "application/pkcs10"))
		return reply_text(s, conn, rq, 415, NULL, NULL,
		    "the body must be application/pkcs10");
	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v != NULL) {
		errno = 0;
		clen = strtoull(v, &end, 10);
		if (errno != 0 || end == v)
			clen = ULLONG_MAX;
		if (clen > s->cfg.max_body) {
			/* A client waiting for "100 Continue" has sent nothing yet:
			 * answer now.  Otherwise, up to max_discard, the body is read
			 * and dropped, so the client sees the 413 (a connection closed
			 * on unread data may lose it); beyond, answered at once and
			 * closed. */
			v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
			if ((v != NULL && strcasecmp(v, "100-continue") == 0) ||
			    s->cfg.max_discard == 0 || clen > s->cfg.max_discard)
				return reply_text(s, conn, rq, 413, NULL, NULL,
				    "the request body is larger than %zu bytes", s->cfg.max_body);
			rq->too_large = 1;
		}
	}
	return MHD_YES;
}

static MHD_RESULT
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct estd *s = cls;
	struct est_req *rq = *con_cls;
	size_t n;

	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		sanitize(rq->method, sizeof(rq->method), method, strlen(method));
		sanitize(rq->path, sizeof(rq->path), url, strlen(url));
		snprintf(rq->engine, sizeof(rq->engine), "-");
		peer_name(conn, rq->peer, sizeof(rq->peer));
		*con_cls = rq;
		return on_headers(s, conn, rq, url, method);
	}
	if (rq->status != 0) {		/* answered already; nothing more to read */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		n = *upload_data_size;
		*upload_data_size = 0;
		rq->seen += n;
		if (!rq->too_large && rq->body_len + n <= s->cfg.max_body) {
			if (rq->body == NULL && (rq->body = malloc(s->cfg.max_body)) == NULL)
				return MHD_NO;
			memcpy(rq->body + rq->body_len, upload_data, n);
			rq->body_len += n;
			return MHD_YES;
		}
		rq->too_large = 1;
		if (s->cfg.max_discard == 0 || rq->seen > s->cfg.max_discard) {
			/* a body without a (truthful) length that does not stop */
			rq->status = 413;
			set_reason(rq, "request body over %zu bytes: connection closed",
			    s->cfg.max_discard);
			return MHD_NO;
		}
		return MHD_YES;
	}
	switch (rq->op) {
	case OP_CACERTS:
		return do_cacerts(s, conn, rq);
	case OP_CSRATTRS:
		return do_csrattrs(s, conn, rq);
	default:
		return do_enroll(s, conn, rq);
	}
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct est_req *rq = *con_cls;
	char status[16];

	if (rq == NULL)
		return;
	*con_cls = NULL;
	if (rq->status != 0)
		snprintf(status, sizeof(status), "%u", rq->status);
	else
		snprintf(status, sizeof(status), "-");
	est_log(LOG_INFO, "request method=%s path=%s tenant=%s device=%s status=%s engine=%s "
	    "ms=%ld peer=%s%s%s%s%s", rq->method, rq->path,
	    rq->tenant[0] != '\0' ? rq->tenant : "-", rq->device[0] != '\0' ? rq->device : "-",
	    status, rq->engine, elapsed_ms(&rq->start), rq->peer,
	    rq->reason[0] != '\0' ? " reason=\"" : "", rq->reason,
	    rq->reason[0] != '\0' ? "\"" : "",
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
	    toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)" :
	    toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client went away)" :
	    toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)" : " (aborted)");
	free(rq->body);
	free(rq);
}

/* Every TLS session asks for a client certificate (optional).  No trust
 * list is configured in GnuTLS, so the request names no authorities and any
 * certificate the client has is offered; it is checked per request. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci != NULL && ci->tls_session != NULL)
		gnutls_certificate_server_set_request((gnutls_session_t)ci->tls_session,
		    GNUTLS_CERT_REQUEST);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct estd *s = cls;

	est_vlog(s->started ? LOG_DEBUG : LOG_ERR, fmt, ap);
}

/* ------------------------------------------------------------------ startup */

/* Reads a whole PEM file as a NUL-terminated string.  key: refuse a file
 * others may read or the group may write. */
static char *
read_pem(const char *path, int key, size_t *len_ptr, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (key && (st.st_mode & 0027) != 0) {
		snprintf(err, errlen, "tls.key_file %s has mode %04o: it must not be accessible "
		    "to others nor writable by its group (chmod 0600 or 0640)", path,
		    (unsigned int)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > PEM_FILE_MAX) {
		snprintf(err, errlen, "%s: empty or larger than %d bytes", path, PEM_FILE_MAX);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) :
			    "file shrank while read");
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	*len_ptr = len;
	return buf;
 fail:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return NULL;
}

static int
listen_socket(const struct est_config *cfg, unsigned int *port_ptr, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", cfg->listen_port);
	if ((rc = getaddrinfo(cfg->listen_address, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listen.address %s: %s", cfg->listen_address,
		    gai_strerror(rc));
		return -1;
	}
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, (int)cfg->listen_backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(err, errlen, "listen on %s port %s: %s", cfg->listen_address, port,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	*port_ptr = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static int
write_port_file(const char *path, unsigned int port, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "--port-file: path too long");
		return -1;
	}
	if ((f = fopen(tmp, "we")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [--config FILE] [--port-file FILE] [--check-config]\n"
	    "\n"
	    "The EST (RFC 7030) front end of the tca engine.\n"
	    "\n"
	    "  --config FILE     configuration (default " TCA_SYSCONFDIR "/tca/estd.conf)\n"
	    "  --port-file FILE  once listening, write the bound port there (for\n"
	    "                    listen.port = 0)\n"
	    "  --check-config    check the configuration, the TLS certificate and key,\n"
	    "                    then exit (0: fine)\n"
	    "  --help            this text\n"
	    "\n"
	    "See docs/est.md.  SIGTERM or SIGINT stop it, after requests in flight.\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct estd srv;
	const char *config = TCA_SYSCONFDIR "/tca/estd.conf", *port_file = NULL;
	char err[8192];
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	struct MHD_Daemon *d = NULL;
	gnutls_priority_t prio;
	const char *errpos = NULL;
	unsigned int port = 0;
	struct sigaction sa;
	sigset_t sigs;
	int opt, check = 0, fd = -1, sig = 0, rc = 1;
	MHD_socket lfd;

	while ((opt = getopt_long(argc, argv, "c:p:kh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	est_config_defaults(&srv.cfg);
	if (est_config_load(config, &srv.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if ((cert = read_pem(srv.cfg.tls_cert_file, 0, &cert_len, err, sizeof(err))) == NULL ||
	    (key = read_pem(srv.cfg.tls_key_file, 1, &key_len, err, sizeof(err))) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (est_check_key_pair(cert, cert_len, key, key_len, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s, %s: %s\n", srv.cfg.tls_cert_file,
		    srv.cfg.tls_key_file, err);
		goto out;
	}
	if (gnutls_priority_init(&prio, srv.cfg.tls_priorities, &errpos) != GNUTLS_E_SUCCESS) {
		fprintf(stderr, PROG ": tls.priorities: GnuTLS refuses it at \"%.40s\"\n",
		    errpos != NULL ? errpos : "?");
		goto out;
	}
	gnutls_priority_deinit(prio);
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		fprintf(stderr, PROG ": this libmicrohttpd has no TLS support\n");
		goto out;
	}
	if (check) {
		printf(PROG ": configuration OK: %s port %u, engine %s, auth %s, %zu host "
		    "mapping(s)%s%s%s%s\n", srv.cfg.listen_address, srv.cfg.listen_port,
		    srv.cfg.engine_socket, srv.cfg.auth == EST_AUTH_OTP ? "otp" : "none",
		    srv.cfg.n_hosts, srv.cfg.host_suffix[0] != '\0' ? ", suffix " : "",
		    srv.cfg.host_suffix, srv.cfg.default_tenant[0] != '\0' ? ", default " : "",
		    srv.cfg.default_tenant);
		rc = 0;
		goto out;
	}

	est_log_init(PROG, srv.cfg.log_syslog, srv.cfg.log_level);
	snprintf(srv.retry_after, sizeof(srv.retry_after), "%u", srv.cfg.retry_after_s);
	snprintf(srv.www_authenticate, sizeof(srv.www_authenticate), "Basic realm=\"%s\"",
	    srv.cfg.realm);
	if (est_engine_init(&srv.engine, srv.cfg.engine_socket, srv.cfg.engine_timeout_ms,
	    srv.cfg.engine_max_connections, srv.cfg.engine_wait_ms) != 0) {
		est_log(LOG_ERR, "cannot initialise the engine connection pool");
		goto out;
	}
	if ((fd = listen_socket(&srv.cfg, &port, err, sizeof(err))) < 0) {
		est_log(LOG_ERR, "%s", err);
		goto out_engine;
	}

	/* SIGTERM, SIGINT, SIGHUP for the main thread only (sigwait below);
	 * the daemon's threads inherit the mask */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* one thread per connection, at most http.max_connections of them:
	 * an engine call blocks only its own connection */
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_access, &srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &srv,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_HTTPS_MEM_CERT, cert,
	    MHD_OPTION_HTTPS_MEM_KEY, key,
	    MHD_OPTION_HTTPS_PRIORITIES, srv.cfg.tls_priorities,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)srv.cfg.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)srv.cfg.max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv.cfg.timeout_s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, &srv,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
	    MHD_OPTION_END);
	if (d == NULL) {
		est_log(LOG_ERR, "cannot start the HTTPS server (see above)");
		close(fd);
		goto out_engine;
	}
	srv.started = 1;
	if (port_file != NULL && write_port_file(port_file, port, err, sizeof(err)) != 0) {
		est_log(LOG_ERR, "%s", err);
		goto out_stop;
	}
	est_log(LOG_NOTICE, "serving EST on %s port %u (engine %s, auth %s, %u connections, "
	    "body <= %zu bytes)", srv.cfg.listen_address, port, srv.cfg.engine_socket,
	    srv.cfg.auth == EST_AUTH_OTP ? "otp" : "none", srv.cfg.max_connections,
	    srv.cfg.max_body);

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		est_log(LOG_NOTICE, "SIGHUP: nothing is re-read; restart " PROG
		    " to apply configuration changes");
	}
	est_log(LOG_NOTICE, "signal %d: stopping, after requests in flight", sig);
	rc = 0;
 out_stop:
	/* stop accepting at once, then finish what is in flight */
	if ((lfd = MHD_quiesce_daemon(d)) != MHD_INVALID_SOCKET)
		close(lfd);
	MHD_stop_daemon(d);
	if (port_file != NULL && rc == 0)
		unlink(port_file);
	if (rc == 0)
		est_log(LOG_NOTICE, "stopped");
 out_engine:
	est_engine_destroy(&srv.engine);
 out:
	if (key != NULL) {
		OPENSSL_cleanse(key, key_len);
		free(key);
	}
	free(cert);
	est_config_free(&srv.cfg);
	return rc;
}
