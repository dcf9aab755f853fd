/*
 * bench-client.c - tca-bench-client: drives the real daemon over its socket
 * with libtca-client; for the revocation benchmark also fills a stopped
 * engine's store (revpop) and takes its CRL signing path apart in process
 * (crlparts) with libtca-core.
 *
 *   tca-bench-client load  --socket S --clients N --seconds S --csr-type T
 *                          [--tenants N] [--warmup S] [--csrs N] [--csr-cache DIR]
 *                          [--rate R] [--engine-pid PID] [--label L] [--out FILE]
 *                          [--window-file F] [--stop-file F] [--timeline]
 *       N client threads, one connection each, issue certificates from
 *       pre-generated device CSRs for a fixed time; tenants t00000.. picked
 *       uniformly at random per request.  Every latency is recorded
 *       (CLOCK_MONOTONIC) and percentiles computed by sorting.  One JSON line.
 *       Closed loop (each client sends its next request when the previous one
 *       is answered) unless --rate R: then open loop, R requests/s offered in
 *       total at fixed times, latency measured from each request's due time.
 *       --engine-pid: also the engine's CPU time (all threads) per certificate
 *       during the window.
 *       --window-file F: F is created when the measurement window begins
 *       (after the warm-up), so a script can start something in step with it.
 *       --stop-file F: the window ends as soon as F exists (checked every
 *       10 ms) instead of after --seconds, which stays the upper bound; the
 *       rate is then over the window's actual length, and the JSON line says
 *       whether the file ended it ("stopped_by_file").  F must not exist when
 *       the load starts.
 *       --timeline: the result also holds per-second latency over the window
 *       ("timeline": [[second, certificates, p50_ms, p99_ms, max_ms], ...]).
 *       --op issue (default) | ocsp: see below.
 *       --op ocsp: instead of issuing, the clients send OCSP requests
 *       (tca_client_ocsp) for tenant t00000, round-robin over a pool of
 *       --ocsp-pool certificates (default 200) issued through the socket
 *       before the window, --ocsp-revoked of them (default 50, spread evenly)
 *       revoked with cert.revoke (keyCompromise); one DER request per
 *       certificate (tca_ocsp_request_build, SHA-1 CertID, a 16-byte nonce of
 *       its own).  Before the window every certificate's response is checked
 *       in full (tca_ocsp_response_check: signature with the CA certificate,
 *       nonce, CertID, status and reason); in the window each answer's status
 *       must be the expected one (else it counts as an error), and each
 *       client's first answer in the window is checked in full afterwards.
 *       The rate is responses/s.
 *   tca-bench-client crl   --socket S --tenant T [--repeat N] [--fetch N]
 *                          [--expect N] [--crl-out FILE] [--engine-pid PID]
 *                          [--label L] [--out FILE]
 *       times N `crl.sign` calls (default 3) one after the other, then N
 *       fetches of the current CRL (`crl`, tca_client_crl; --fetch, default
 *       3), and checks the last CRL fetched: it parses (d2i_X509_CRL), its
 *       signature verifies with the tenant's CA certificate (`cacerts`), its
 *       number is the last one signed and it lists --expect entries.  One
 *       JSON line (kind "crl"); --crl-out: the DER, for an openssl check.
 *   tca-bench-client revpop --db FILE --tenant T --count N [--batch B]
 *                          [--der-bytes N] [--out FILE]
 *       writes N revoked device certificates of tenant T straight into a
 *       stopped engine's store (tca_store_open): per batch of B
 *       (default 1000) one commit of B TCA_CHANGE_CERT_ISSUE changes (fake
 *       but well-formed tca_cert_info: random 16-byte serials, issuer_hash =
 *       SHA-256 of the CA certificate's subject Name DER as read with
 *       get_ca, not_after a year ahead, der = --der-bytes random octets,
 *       default 560, about a device certificate) followed by one
 *       TCA_CHANGE_CERT_REVOKE for each (reasons cycling through
 *       unspecified, keyCompromise, affiliationChanged, superseded,
 *       cessationOfOperation, privilegeWithdrawn).  Journaled as the engine
 *       would.  Issuing and revoking them through the socket would re-sign
 *       the CRL after every revocation.
 *   tca-bench-client commits --db URI --tenant T --batch B --seconds S
 *                          [--clients K] [--warmup S] [--label L] [--out FILE]
 *       the store's commit alone, in process, on a stopped engine's store
 *       (any backend, tca_store_open): K committers (default 1), each with
 *       its own store handle - for PostgreSQL its own connections, as K
 *       engines' committers - commit batches of B TCA_CHANGE_CERT_ISSUE
 *       changes of tenant T (fake certificates as revpop makes them,
 *       journaled as the engine would) in a loop; after the warm-up
 *       (default 1 s) every commit() that ends in the S-second window is
 *       timed.  One JSON line (kind "commits"): commits/s, changes/s, the
 *       commit() latency percentiles (ms per batch), commits per
 *       committer.  What one batch costs the store, and, with K > 1 on
 *       PostgreSQL, how the journal head lock serialises committers.
 *   tca-bench-client invpop --db FILE --count N [--per-tenant P]
 *                          [--revoked-per-tenant R] [--batch B] [--der-bytes N]
 *                          [--grouped] [--out FILE]
 *       the certificate inventory of N tenants (t00000..t<N-1>, each with an
 *       active CA in the store) written straight into a stopped engine's
 *       store, as revpop does: P device certificates per tenant (default
 *       100), device ids dev-000..dev-<P-1> (CN=dev-NNN,OU=Device,O=Thin
 *       Edge), random 16-byte serials, der = --der-bytes random octets
 *       (default 560), issued round-robin over the tenants (dev-000 of
 *       every tenant, then dev-001, ...: a tenant's certificates lie
 *       spread over the whole table, as when devices enrol over time;
 *       --grouped: tenant by tenant instead); notBefore spread over the 420
 *       days before now (deterministic per tenant and device), one year of
 *       validity, so about 13 % have expired when the store is written
 *       (more as it ages); R of each tenant's certificates revoked
 *       (default 5: devices 7, 7 + P/R, ...; reasons cycling as in
 *       revpop).  B (default 1000) TCA_CHANGE_CERT_ISSUE changes per
 *       commit, followed in the same commit by the revocations of the
 *       certificates it issued; journaled as the engine would.  One JSON
 *       line (kind "invpop"): counts by state at the time of writing, time,
 *       rate, store size.
 *   tca-bench-client inventory --socket S --tenant T [--repeat N]
 *                          [--device D] [--page-limit L] [--since-ns T0
 *                          --stale-s S] [--engine-pid PID] [--label L]
 *                          [--out FILE]
 *       times the inventory RPCs over one connection, each N times (default
 *       3) one after the other: cert.list first page with limit 100 and 500,
 *       filtered pages (status revoked / valid / expired, device_id D,
 *       default dev-042), cert.show of the middle certificate of the first
 *       page, and paging through all of T's certificates with limit L
 *       (default 10) following `next`.  Then `status`: with --since-ns (when
 *       the engine's first `status` computed the certificate counts,
 *       CLOCK_REALTIME ns) it first waits until T0 + S seconds (S default
 *       31: the engine caches the counts 30 s), so its first call computes
 *       them again; meanwhile a second connection calls cert.show in a loop
 *       and the latencies of the calls that overlapped that status call are
 *       reported (the store's reader is one connection behind one lock).
 *       Then N cached `status` calls.  Checks: every call answered, page
 *       sizes as the filters imply, the pages together hold the tenant's
 *       certificates once each.  One JSON line (kind "inventory"):
 *       per operation the times (ms), median, max and rows.
 *   tca-bench-client invparts --db FILE --tenant T [--repeat N] [--device D]
 *                          [--label L] [--out FILE]
 *       the store side of the inventory, in process on a stopped engine's
 *       store (opened read-only with tca_store_open, as the engine's
 *       reader): cert_counts N times (the first on the fresh connection, as
 *       the engine's first `status`), then cert_list as the engine calls it
 *       for the pages `inventory` asks for (limit + 1 rows) and cert_get,
 *       N times each.  One JSON line (kind "invparts"), times in ms.
 *   tca-bench-client crlparts --db FILE --module M --uri U --pin-file F
 *                          --tenant T [--repeat N] [--label L] [--out FILE]
 *       the engine's CRL signing path (revocation.c crl_sign_once) taken
 *       apart in process on a stopped engine's store and token, N times
 *       (default 3): crl_get, revoked_foreach, tca_crl_build with the token
 *       signer (the signer call timed on its own) and the CRL_PUBLISH
 *       commit.  Should the token layer refuse the message
 *       (tca_token_sign: more than TCA_TOKEN_MAX_MSG octets), the result
 *       says so and the CRL is signed instead by hashing here and calling
 *       C_Sign (CKM_ECDSA) on the digest with the same token key, which is
 *       what the token layer does for messages it accepts.  The CRL built
 *       is checked like `crl` checks it, and committed: later fetches serve it.
 *   tca-bench-client mkca  --socket S --count N [--connections K] [--out FILE]
 *       creates tenant CAs t00000..t<N-1> with ca.create over K connections in
 *       parallel (tenants that already exist are counted, not an error).
 *   tca-bench-client ready --socket S --since-ns T [--timeout-ms MS]
 *                          [--label L --out FILE]
 *       polls until the engine answers `status`; prints the milliseconds since
 *       T (CLOCK_REALTIME ns, as from `date +%s%N`): the start-up time.
 *       --out: also one JSON line (kind "ready") with the start-up time, how
 *       long that first `status` call took (it computes the certificate
 *       counts the engine then caches), the counts it gave and the wall
 *       clock when it answered (answered_ns).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#include <p11-kit/pkcs11.h>

#include "bench-util.h"
#include "certs.h"
#include "crl.h"
#include "engine.h"
#include "issuer.h"
#include "keytype.h"
#include "log.h"
#include "ocsp.h"
#include "store.h"
#include "tca-client.h"
#include "tenant.h"
#include "text.h"
#include "token.h"
#include "wire.h"

const char *bench_progname = "tca-bench-client";

struct opts {
	const char *socket;
	const char *csr_type;
	const char *csr_cache;
	const char *label;
	const char *out;
	const char *stop_file;	/* load: the window ends when this file exists */
	const char *window_file;	/* load: created when the window begins */
	int timeline;		/* load: per-second latency in the result */
	unsigned int clients;
	unsigned int tenants;
	unsigned int ncsrs;
	unsigned int count;
	unsigned int connections;
	unsigned long long since_ns;
	int timeout_ms;
	int engine_pid;		/* load: measure this process's CPU time per certificate */
	double seconds;
	double warmup;
	double rate;		/* load: offered certificates/s over all clients; 0 = closed loop */
	const char *op;		/* load: "issue" or "ocsp" */
	unsigned int ocsp_pool;	/* load --op ocsp: certificates asked about */
	unsigned int ocsp_revoked;	/* ... of which revoked */
	const char *tenant;	/* crl, revpop, crlparts */
	const char *db;		/* revpop, crlparts: the store */
	const char *module;	/* crlparts: the token */
	const char *uri;
	const char *pin_file;
	unsigned int batch;	/* revpop: changes of each kind per commit */
	unsigned int der_bytes;	/* revpop: size of the fake certificates */
	unsigned int repeat;	/* crl: crl.sign calls; crlparts: rounds */
	unsigned int fetch;	/* crl: `crl` fetches */
	long long expect;	/* crl: entries the CRL must list; < 0: any */
	const char *crl_out;	/* crl: where the DER goes */
	unsigned int per_tenant;	/* invpop: device certificates per tenant */
	unsigned int revoked_per;	/* invpop: revoked per tenant */
	const char *device;	/* inventory: the device_id filter */
	unsigned int page_limit;	/* inventory: limit when paging through a tenant */
	double stale_s;		/* inventory: wait since --since-ns before the first status */
	int grouped;		/* invpop: tenant by tenant instead of round-robin */
};

/* ------------------------------------------------------------ load */

/* --op ocsp: one certificate of the pool and its prepared request */
struct ocsp_item {
	unsigned char *cert;	/* DER */
	size_t cert_len;
	unsigned char nonce[16];
	unsigned char *req;	/* DER OCSPRequest (OPENSSL_malloc) */
	size_t req_len;
	int revoked;		/* expected answer: revoked (keyCompromise), else good */
};

struct load_shared {
	const struct opts *o;
	const struct bench_csr *csrs;
	size_t ncsrs;
	/* --op ocsp */
	struct ocsp_item *pool;
	size_t npool;
	unsigned char *issuer;	/* the tenant's CA certificate, DER */
	size_t issuer_len;
	char status_example[16];	/* an engine status string that was not expected */
	struct bench_clock clk;
	pthread_barrier_t barrier;
	pthread_mutex_t err_lock;
	char first_error[320];
};

struct load_thread {
	struct load_shared *sh;
	unsigned int idx;
	pthread_t th;
	struct bench_lat lat;
	struct bench_lat at;	/* --timeline: completion time in the window, per lat entry */
	uint64_t errors;
	uint64_t reconnects;
	int verified;
	/* --op ocsp: the first response in the window, checked afterwards */
	unsigned char *sample;
	size_t sample_len;
	size_t sample_idx;
	uint64_t status_mismatch;	/* answers whose status string was not the certStatus */
};

/* The certStatus of the first SingleResponse of a DER OCSPResponse
 * (V_OCSP_CERTSTATUS_*), without checking the signature; -1 if there is none. */
static int
ocsp_first_status(const unsigned char *resp, size_t len)
{
	const unsigned char *p = resp;
	OCSP_RESPONSE *or;
	OCSP_BASICRESP *bs = NULL;
	OCSP_SINGLERESP *sr;
	int st = -1, reason;

	if (len > LONG_MAX || (or = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL)
		return -1;
	if (p == resp + len && OCSP_response_status(or) == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
	    (bs = OCSP_response_get1_basic(or)) != NULL && (sr = OCSP_resp_get0(bs, 0)) != NULL)
		st = OCSP_single_get0_status(sr, &reason, NULL, NULL, NULL);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(or);
	return st;
}

static void
note_error(struct load_shared *sh, const char *what, int r, const struct tca_client_error *err)
{
	pthread_mutex_lock(&sh->err_lock);
	if (sh->first_error[0] == '\0')
		snprintf(sh->first_error, sizeof(sh->first_error), "%s: %s: %s", what,
		    err->code[0] != '\0' ? err->code : tca_client_strerror(r), err->message);
	pthread_mutex_unlock(&sh->err_lock);
}

/* The end of the measurement window: fixed, or moved earlier by the main
 * thread when the stop file appears (--stop-file). */
static uint64_t
window_end(struct load_shared *sh)
{
	return __atomic_load_n(&sh->clk.end_ns, __ATOMIC_ACQUIRE);
}

static int
transport_error(int r)
{
	return r == TCA_ERR_SYSTEM || r == TCA_ERR_TIMEOUT || r == TCA_ERR_PROTOCOL ||
	    r == TCA_ERR_EOF || r == TCA_ERR_TRUNCATED || r == TCA_ERR_BUSY ||
	    r == TCA_ERR_UNAUTHORIZED;
}

static void *
load_main(void *arg)
{
	struct load_thread *t = arg;
	struct load_shared *sh = t->sh;
	const struct opts *o = sh->o;
	struct tca_client_error err;
	tca_client *c = NULL;
	uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(t->idx + 1) * 0xD1B54A32D192ED03ULL);
	unsigned char *cert = NULL;
	const unsigned char *p;
	size_t cert_len = 0, k = t->idx;
	uint64_t t0, t1, end, next = 0, interval = 0;
	char tenant[16], status[16];
	struct ocsp_item *it = NULL;
	X509 *x;
	int r, bad;

	memset(&err, 0, sizeof(err));
	if ((r = tca_client_connect(o->socket, 30000, &c, &err)) != TCA_CLIENT_OK)
		bench_die("connect %s: %s", o->socket, err.message);
	pthread_barrier_wait(&sh->barrier);
	if (o->rate > 0) {
		/* open loop: each client sends at fixed times, staggered against
		 * the others; latency counts from the due time, so a request that
		 * had to wait for the previous one is not under-reported
		 * (no coordinated omission) */
		interval = (uint64_t)((double)o->clients / o->rate * 1e9);
		next = sh->clk.start_ns + interval * t->idx / o->clients;
	}
	for (;;) {
		const struct bench_csr *csr = &sh->csrs[k % sh->ncsrs];

		if (sh->pool != NULL)
			it = &sh->pool[k % sh->npool];
		k += o->clients;
		bench_tenant_name(o->tenants <= 1 || sh->pool != NULL ? 0 :
		    (unsigned int)(bench_rand_next(&rng) % o->tenants), tenant, sizeof(tenant));
		if (c == NULL) {
			t->reconnects++;
			if ((r = tca_client_connect(o->socket, 30000, &c, &err)) != TCA_CLIENT_OK) {
				note_error(sh, "reconnect", r, &err);
				c = NULL;
			}
		}
		if (interval != 0) {
			if (next >= window_end(sh))
				break;
			bench_sleep_until(next);
			t0 = next;
			next += interval;
		} else if ((t0 = bench_now_ns()) >= window_end(sh))
			break;
		bad = 0;
		if (c == NULL)
			r = TCA_ERR_SYSTEM;
		else if (it != NULL) {
			r = tca_client_ocsp(c, tenant, it->req, it->req_len, &cert, &cert_len,
			    status, sizeof(status), &err);
			/* every answer's certStatus must be the certificate's: read
			 * from the response itself, without the signature check
			 * (signatures are checked on a sample, before and after the
			 * window); the engine's status string is compared apart */
			if (r == TCA_CLIENT_OK) {
				bad = ocsp_first_status(cert, cert_len) != (it->revoked ?
				    V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD);
				if (strcmp(status, it->revoked ? "revoked" : "good") != 0 &&
				    t->status_mismatch++ == 0) {
					pthread_mutex_lock(&sh->err_lock);
					if (sh->status_example[0] == '\0')
						snprintf(sh->status_example,
						    sizeof(sh->status_example), "%s", status);
					pthread_mutex_unlock(&sh->err_lock);
				}
			}
		} else
			r = tca_client_issue(c, tenant, csr->device_id, csr->der, csr->len, 0,
			    &cert, &cert_len, &err);
		t1 = bench_now_ns();
		if (bad) {
			pthread_mutex_lock(&sh->err_lock);
			if (sh->first_error[0] == '\0')
				snprintf(sh->first_error, sizeof(sh->first_error),
				    "ocsp: certStatus %d for a %s certificate",
				    ocsp_first_status(cert, cert_len), it->revoked ? "revoked" : "good");
			pthread_mutex_unlock(&sh->err_lock);
		}
		if (r == TCA_CLIENT_OK && !bad && it != NULL && t->sample == NULL &&
		    t1 >= sh->clk.window_ns && t1 <= window_end(sh)) {
			t->sample = bench_xmalloc(cert_len);
			memcpy(t->sample, cert, cert_len);
			t->sample_len = cert_len;
			t->sample_idx = (size_t)(it - sh->pool);
		}
		if (r == TCA_CLIENT_OK && it == NULL && !t->verified) {
			/* sanity: what came back is a certificate */
			p = cert;
			if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
			    p != cert + cert_len)
				bench_die("the engine returned something that is not a certificate");
			X509_free(x);
			t->verified = 1;
		}
		free(cert);
		cert = NULL;
		end = window_end(sh);
		if (t1 >= sh->clk.window_ns && t1 <= end) {
			if (r == TCA_CLIENT_OK && !bad) {
				bench_lat_add(&t->lat, t1 - t0);
				if (sh->o->timeline)
					bench_lat_add(&t->at, t1 - sh->clk.window_ns);
			} else
				t->errors++;
		}
		if (r != TCA_CLIENT_OK) {
			note_error(sh, it != NULL ? "ocsp" : "issue", r, &err);
			if (c != NULL && transport_error(r)) {
				tca_client_close(c);
				c = NULL;
			}
		}
	}
	tca_client_close(c);
	return NULL;
}

static void
touch_file(const char *path)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		bench_die("%s: %s", path, strerror(errno));
	if (close(fd) != 0)
		bench_die("%s: %s", path, strerror(errno));
}

/*
 * Main thread, from the start of the window: waits until the window ends -
 * at the fixed end, or, with a stop file, when that file appears (then the
 * end is moved to that moment for the client threads).  Returns the end;
 * *by_file tells which.
 */
static uint64_t
wait_window_end(struct load_shared *sh, const char *stop_file, int *by_file)
{
	uint64_t now, end = window_end(sh);

	*by_file = 0;
	if (stop_file == NULL) {
		bench_sleep_until(end);
		return end;
	}
	for (;;) {
		if ((now = bench_now_ns()) >= end)
			return end;
		if (access(stop_file, F_OK) == 0) {
			__atomic_store_n(&sh->clk.end_ns, now, __ATOMIC_RELEASE);
			*by_file = 1;
			return now;
		}
		if (errno != ENOENT)
			bench_die("%s: %s", stop_file, strerror(errno));
		bench_sleep_until(now + 10000000ULL < end ? now + 10000000ULL : end);
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * --timeline: [[second, certificates, p50_ms, p99_ms, max_ms], ...] over the
 * window, by completion time, as JSON text (caller frees).  Shows when
 * latency rose, which one window-wide percentile cannot.
 */
static char *
timeline_json(struct load_thread *ts, unsigned int nthreads, double seconds)
{
	size_t nsec = (size_t)seconds + 1, s, i, k, n, len = 0, cap;
	struct bench_lat *b = bench_xcalloc(nsec, sizeof(*b));
	char *out, *p;
	unsigned int t;

	for (t = 0; t < nthreads; t++)
		for (i = 0; i < ts[t].at.n && i < ts[t].lat.n; i++) {
			s = (size_t)(ts[t].at.v[i] / 1000000000ULL);
			if (s < nsec)
				bench_lat_add(&b[s], ts[t].lat.v[i]);
		}
	cap = nsec * 64 + 3;
	out = p = bench_xcalloc(1, cap);
	*p++ = '[';
	len = 1;
	for (s = 0; s < nsec; s++) {
		n = b[s].n;
		if (n > 0)
			qsort(b[s].v, n, sizeof(*b[s].v), cmp_u64);
		k = (size_t)snprintf(out + len, cap - len, "%s[%zu,%zu,%.2f,%.2f,%.2f]",
		    s > 0 ? "," : "", s, n, n > 0 ? (double)b[s].v[(n - 1) / 2] / 1e6 : 0.0,
		    n > 0 ? (double)b[s].v[(n * 99 + 99) / 100 - 1] / 1e6 : 0.0,
		    n > 0 ? (double)b[s].v[n - 1] / 1e6 : 0.0);
		if (k >= cap - len)
			bench_die("timeline: buffer");
		len += k;
		bench_lat_free(&b[s]);
	}
	out[len++] = ']';
	out[len] = '\0';
	free(b);
	return out;
}

/* ------------------------------------------------------------ load --op ocsp */

static cbor_item_t *
xmap(size_t n)
{
	cbor_item_t *m = cbor_new_definite_map(n);

	if (m == NULL)
		bench_die("out of memory (cbor)");
	return m;
}

static void
xmap_text(cbor_item_t *m, const char *k, const char *v)
{
	if (tca_map_add_text(m, k, v) != TCA_OK)
		bench_die("out of memory (cbor)");
}

/* The tenant's current CA certificate (DER; caller frees). */
static unsigned char *
fetch_ca_cert(tca_client *c, const char *tenant, size_t *len_ptr)
{
	struct tca_client_error err;
	unsigned char **certs = NULL, *out;
	size_t *lens = NULL, n = 0;
	int r;

	memset(&err, 0, sizeof(err));
	if ((r = tca_client_cacerts(c, tenant, &certs, &lens, &n, &err)) != TCA_CLIENT_OK ||
	    n == 0)
		bench_die("cacerts %s: %s", tenant, r != TCA_CLIENT_OK ? err.message : "none");
	out = bench_xmalloc(lens[0]);
	memcpy(out, certs[0], lens[0]);
	*len_ptr = lens[0];
	tca_client_free_certs(certs, lens, n);
	return out;
}

/*
 * Checks one OCSP response for pool item it in full (signature with the CA
 * certificate, nonce, CertID, status and reason).  0 if right, else 1 with
 * why set.
 */
static int
ocsp_check_one(const struct load_shared *sh, const struct ocsp_item *it,
    const unsigned char *resp, size_t resp_len, char *why, size_t whylen)
{
	struct tca_ocsp_cert_status cs;
	char w[200] = "";
	int r;

	memset(&cs, 0, sizeof(cs));
	r = tca_ocsp_response_check(resp, resp_len, it->cert, it->cert_len, sh->issuer,
	    sh->issuer_len, it->nonce, sizeof(it->nonce), (int64_t)time(NULL), &cs, w, sizeof(w));
	if (r != TCA_OK) {
		snprintf(why, whylen, "response check: %s: %s", tca_strerror(r), w);
		return 1;
	}
	if (it->revoked && (cs.status != TCA_OCSP_REVOKED || cs.reason != TCA_REASON_KEY_COMPROMISE)) {
		snprintf(why, whylen, "a revoked certificate answered with status %d reason %d",
		    (int)cs.status, cs.reason);
		return 1;
	}
	if (!it->revoked && cs.status != TCA_OCSP_GOOD) {
		snprintf(why, whylen, "a good certificate answered with status %d", (int)cs.status);
		return 1;
	}
	return 0;
}

/*
 * Before the window: issues the pool over the socket, revokes some of it,
 * builds one request per certificate and checks every answer in full.
 * Returns the number of failed checks (first one in why).
 */
static unsigned int
ocsp_prepare(struct load_shared *sh, char *why, size_t whylen, double *secs_ptr)
{
	const struct opts *o = sh->o;
	struct tca_client_error err;
	struct tca_cert_info info;
	cbor_item_t *args, *res = NULL;
	tca_client *c = NULL;
	unsigned char *resp = NULL;
	size_t i, resp_len = 0;
	char tenant[16], hex[2 * TCA_SERIAL_MAX + 1], status[16], w[256];
	unsigned int failed = 0;
	uint64_t t0 = bench_now_ns();
	int r, already;

	memset(&err, 0, sizeof(err));
	bench_tenant_name(0, tenant, sizeof(tenant));
	if (o->ocsp_pool == 0 || o->ocsp_revoked > o->ocsp_pool)
		bench_die("load --op ocsp: --ocsp-pool >= 1 and --ocsp-revoked <= --ocsp-pool needed");
	if ((r = tca_client_connect(o->socket, 60000, &c, &err)) != TCA_CLIENT_OK)
		bench_die("connect %s: %s", o->socket, err.message);
	sh->issuer = fetch_ca_cert(c, tenant, &sh->issuer_len);
	sh->npool = o->ocsp_pool;
	sh->pool = bench_xcalloc(sh->npool, sizeof(*sh->pool));
	fprintf(stderr, "%s: ocsp: issuing %zu certificates of %s, revoking %u\n",
	    bench_progname, sh->npool, tenant, o->ocsp_revoked);
	for (i = 0; i < sh->npool; i++) {
		struct ocsp_item *it = &sh->pool[i];
		const struct bench_csr *csr = &sh->csrs[i % sh->ncsrs];

		if ((r = tca_client_issue(c, tenant, csr->device_id, csr->der, csr->len, 0,
		    &it->cert, &it->cert_len, &err)) != TCA_CLIENT_OK)
			bench_die("ocsp: issuing the pool: %s: %s", err.code, err.message);
		/* o->ocsp_revoked of them, spread evenly over the pool */
		it->revoked = (i * o->ocsp_revoked) / sh->npool !=
		    ((i + 1) * o->ocsp_revoked) / sh->npool;
		if (it->revoked) {
			if (tca_cert_info_from_der(it->cert, it->cert_len, &info) != TCA_OK)
				bench_die("ocsp: the engine issued a certificate that does not parse");
			tca_hex(info.serial, info.serial_len, hex);
			args = xmap(3);
			xmap_text(args, "tenant", tenant);
			xmap_text(args, "serial", hex);
			xmap_text(args, "reason", "keyCompromise");
			r = tca_client_call(c, "cert.revoke", args, &res, &err);
			cbor_decref(&args);
			if (r != TCA_CLIENT_OK)
				bench_die("ocsp: cert.revoke %s: %s: %s", hex, err.code, err.message);
			already = 0;
			(void)tca_map_get_bool(res, "already", &already);
			if (already)
				bench_die("ocsp: certificate %s was revoked already", hex);
			if (tca_map_get(res, "crl_error") != NULL)
				fprintf(stderr, "%s: ocsp: cert.revoke %s: the CRL was not re-signed\n",
				    bench_progname, hex);
			cbor_decref(&res);
		}
		if (RAND_bytes(it->nonce, sizeof(it->nonce)) != 1 ||
		    tca_ocsp_request_build(it->cert, it->cert_len, sh->issuer, sh->issuer_len,
		    it->nonce, sizeof(it->nonce), &it->req, &it->req_len) != TCA_OK)
			bench_die("ocsp: building the request failed");
	}
	/* every certificate asked once and its answer checked in full */
	for (i = 0; i < sh->npool; i++) {
		struct ocsp_item *it = &sh->pool[i];

		if ((r = tca_client_ocsp(c, tenant, it->req, it->req_len, &resp, &resp_len,
		    status, sizeof(status), &err)) != TCA_CLIENT_OK)
			bench_die("ocsp: %s: %s", err.code, err.message);
		if (ocsp_check_one(sh, it, resp, resp_len, w, sizeof(w)) != 0) {
			if (failed++ == 0)
				snprintf(why, whylen, "pool item %zu: %s", i, w);
		}
		free(resp);
		resp = NULL;
	}
	tca_client_close(c);
	*secs_ptr = (double)(bench_now_ns() - t0) / 1e9;
	return failed;
}

static void
ocsp_pool_free(struct load_shared *sh)
{
	size_t i;

	for (i = 0; i < sh->npool; i++) {
		free(sh->pool[i].cert);
		OPENSSL_free(sh->pool[i].req);
	}
	free(sh->pool);
	free(sh->issuer);
}

static int
cmd_load(const struct opts *o)
{
	struct load_shared sh;
	struct load_thread *ts;
	struct bench_lat *lats;
	struct bench_summary s;
	FILE *f;
	unsigned int i;
	uint64_t reconnects = 0, cpu0 = 0, cpu1 = 0, end = 0, self0 = 0, self1 = 0;
	char *timeline = NULL;
	char vwhy[320] = "", swhy[320] = "", w[256];
	unsigned int vfailed = 0, sfailed = 0, checked = 0;
	uint64_t status_mismatch = 0;
	double setup_s = 0;
	int by_file = 0, ocsp;

	if (o->socket == NULL || o->clients == 0 || o->seconds <= 0 || o->ncsrs == 0)
		bench_die("load: --socket, --clients >= 1, --seconds > 0 needed");
	if (o->stop_file != NULL && access(o->stop_file, F_OK) == 0)
		bench_die("load: the stop file %s exists already", o->stop_file);
	if (strcmp(o->op, "issue") != 0 && strcmp(o->op, "ocsp") != 0)
		bench_die("load: --op issue or ocsp");
	ocsp = strcmp(o->op, "ocsp") == 0;
	memset(&sh, 0, sizeof(sh));
	sh.o = o;
	sh.ncsrs = o->ncsrs;
	fprintf(stderr, "%s: preparing %u %s CSRs\n", bench_progname, o->ncsrs, o->csr_type);
	sh.csrs = bench_csrs_make(o->csr_type, o->ncsrs, o->csr_cache);
	pthread_mutex_init(&sh.err_lock, NULL);
	if (ocsp) {
		vfailed = ocsp_prepare(&sh, vwhy, sizeof(vwhy), &setup_s);
		fprintf(stderr, "%s: ocsp: pool ready in %.1f s; %zu responses checked before the "
		    "window, %u wrong%s%s\n", bench_progname, setup_s, sh.npool, vfailed,
		    vfailed > 0 ? ": " : "", vwhy);
	}
	if (pthread_barrier_init(&sh.barrier, NULL, o->clients + 1) != 0)
		bench_die("pthread_barrier_init failed");
	ts = bench_xcalloc(o->clients, sizeof(*ts));
	for (i = 0; i < o->clients; i++) {
		ts[i].sh = &sh;
		ts[i].idx = i;
		if (pthread_create(&ts[i].th, NULL, load_main, &ts[i]) != 0)
			bench_die("pthread_create failed");
	}
	bench_clock_set(&sh.clk, o->warmup, o->seconds);
	pthread_barrier_wait(&sh.barrier);
	memset(&s, 0, sizeof(s));
	if (o->engine_pid > 0 || o->stop_file != NULL || o->window_file != NULL) {
		bench_sleep_until(sh.clk.window_ns);
		if (o->engine_pid > 0)
			cpu0 = bench_cpu_ns(o->engine_pid);
		self0 = bench_cpu_ns(0);
		if (o->window_file != NULL)
			touch_file(o->window_file);
		end = wait_window_end(&sh, o->stop_file, &by_file);
		if (o->engine_pid > 0)
			cpu1 = bench_cpu_ns(o->engine_pid);
		self1 = bench_cpu_ns(0);
	}
	lats = bench_xcalloc(o->clients, sizeof(*lats));
	for (i = 0; i < o->clients; i++) {
		pthread_join(ts[i].th, NULL);
		s.errors += ts[i].errors;
		reconnects += ts[i].reconnects;
		status_mismatch += ts[i].status_mismatch;
	}
	/* a stop file ends the window early: the rate is over its real length */
	s.seconds = by_file ? (double)(end - sh.clk.window_ns) / 1e9 : o->seconds;
	/* before bench_summarize() sorts the latencies */
	if (o->timeline)
		timeline = timeline_json(ts, o->clients, s.seconds);
	for (i = 0; i < o->clients; i++)
		lats[i] = ts[i].lat;
	bench_summarize(lats, o->clients, &s);
	/* --op ocsp: each client's first answer in the window, in full */
	for (i = 0; ocsp && i < o->clients; i++) {
		if (ts[i].sample == NULL)
			continue;
		checked++;
		if (ocsp_check_one(&sh, &sh.pool[ts[i].sample_idx], ts[i].sample,
		    ts[i].sample_len, w, sizeof(w)) != 0 && sfailed++ == 0)
			snprintf(swhy, sizeof(swhy), "client %u: %s", i, w);
		free(ts[i].sample);
	}
	s.cpu_ms_per_op = o->engine_pid > 0 && s.ops > 0 ?
	    (double)(cpu1 - cpu0) / 1e6 / (double)s.ops : -1.0;
	f = bench_results_open(o->out);
	bench_json_begin(f, "engine");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "op", o->op);
	bench_json_str(f, "csr_type", o->csr_type);
	bench_json_int(f, "clients", o->clients);
	bench_json_int(f, "tenants", ocsp ? 1 : o->tenants);
	bench_json_num(f, "offered_rate", o->rate);
	bench_json_summary(f, &s);
	if (ocsp) {
		bench_json_int(f, "pool", (long long)sh.npool);
		bench_json_int(f, "pool_revoked", o->ocsp_revoked);
		bench_json_num(f, "setup_seconds", setup_s);
		bench_json_int(f, "checked_before", (long long)sh.npool);
		bench_json_int(f, "checked_before_failed", vfailed);
		bench_json_int(f, "checked_window", checked);
		bench_json_int(f, "checked_window_failed", sfailed);
		/* the RPC's `status` (docs/rpc.md 7.17: good, revoked, unknown,
		 * malformed) disagreeing with the response's certStatus */
		bench_json_int(f, "status_field_mismatch", (long long)status_mismatch);
		if (sh.status_example[0] != '\0')
			bench_json_str(f, "status_field_example", sh.status_example);
		if (vwhy[0] != '\0' || swhy[0] != '\0')
			bench_json_str(f, "check_error", vwhy[0] != '\0' ? vwhy : swhy);
	}
	bench_json_int(f, "reconnects", (long long)reconnects);
	/* the load generator's own CPU (all its threads) in the window: on a
	 * small machine it shares the CPUs with the engine */
	if (self1 > self0 && s.ops > 0)
		bench_json_num(f, "client_cpu_ms_per_op", (double)(self1 - self0) / 1e6 /
		    (double)s.ops);
	if (o->stop_file != NULL)
		bench_json_int(f, "stopped_by_file", by_file);
	if (timeline != NULL)
		bench_json_raw(f, "timeline", timeline);
	if (sh.first_error[0] != '\0')
		bench_json_str(f, "first_error", sh.first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: engine %s %s clients=%u tenants=%u: %.1f %s/s, p50 %.2f p90 %.2f "
	    "p99 %.2f max %.2f ms, %llu errors\n", bench_progname, o->op, o->csr_type,
	    o->clients, ocsp ? 1 : o->tenants, s.rate, ocsp ? "responses" : "certs", s.p50_ms,
	    s.p90_ms, s.p99_ms, s.max_ms, (unsigned long long)s.errors);
	if (ocsp)
		fprintf(stderr, "%s: ocsp: %u of %u sampled window responses wrong%s%s; the "
		    "engine's status string disagreed with certStatus %llu times%s%s%s\n",
		    bench_progname, sfailed, checked, sfailed > 0 ? ": " : "", swhy,
		    (unsigned long long)status_mismatch, sh.status_example[0] != '\0' ?
		    " (e.g. \"" : "", sh.status_example, sh.status_example[0] != '\0' ? "\")" : "");
	if (sh.first_error[0] != '\0')
		fprintf(stderr, "%s: first error: %s\n", bench_progname, sh.first_error);
	for (i = 0; i < o->clients; i++) {
		bench_lat_free(&ts[i].lat);
		bench_lat_free(&ts[i].at);
	}
	free(timeline);
	free(lats);
	free(ts);
	bench_csrs_free((struct bench_csr *)sh.csrs, sh.ncsrs);
	ocsp_pool_free(&sh);
	pthread_barrier_destroy(&sh.barrier);
	pthread_mutex_destroy(&sh.err_lock);
	return s.errors > 0 || s.ops == 0 || vfailed > 0 || sfailed > 0;
}

/* ------------------------------------------------------------ mkca */

struct mkca_shared {
	const struct opts *o;
	pthread_mutex_t lock;
	unsigned int next;
	unsigned int created, existing, failed;
	uint64_t start_ns;
	char first_error[320];
};

static cbor_item_t *
create_args(const char *tenant)
{
	cbor_item_t *m = cbor_new_definite_map(1);
	cbor_item_t *k = cbor_build_string("tenant"), *v = cbor_build_string(tenant);

	if (m == NULL || k == NULL || v == NULL ||
	    !cbor_map_add(m, (struct cbor_pair){ .key = cbor_move(k), .value = cbor_move(v) }))
		bench_die("out of memory (cbor)");
	return m;
}

static void *
mkca_main(void *arg)
{
	struct mkca_shared *sh = arg;
	struct tca_client_error err;
	cbor_item_t *args, *res = NULL;
	tca_client *c = NULL;
	char tenant[16];
	unsigned int i, done;
	int r;

	memset(&err, 0, sizeof(err));
	for (;;) {
		pthread_mutex_lock(&sh->lock);
		i = sh->next < sh->o->count ? sh->next++ : sh->o->count;
		pthread_mutex_unlock(&sh->lock);
		if (i >= sh->o->count)
			break;
		if (c == NULL &&
		    (r = tca_client_connect(sh->o->socket, 120000, &c, &err)) != TCA_CLIENT_OK)
			bench_die("connect %s: %s", sh->o->socket, err.message);
		bench_tenant_name(i, tenant, sizeof(tenant));
		args = create_args(tenant);
		r = tca_client_call(c, "ca.create", args, &res, &err);
		cbor_decref(&args);
		if (res != NULL)
			cbor_decref(&res);
		pthread_mutex_lock(&sh->lock);
		if (r == TCA_CLIENT_OK)
			sh->created++;
		else if (r == TCA_ERR_ALREADY_EXISTS)
			sh->existing++;
		else {
			sh->failed++;
			if (sh->first_error[0] == '\0')
				snprintf(sh->first_error, sizeof(sh->first_error), "%s: %s: %s",
				    tenant, err.code, err.message);
		}
		done = sh->created + sh->existing + sh->failed;
		if (done % 500 == 0)
			fprintf(stderr, "%s: mkca %u/%u (%.1f/s)\n", bench_progname, done,
			    sh->o->count, (double)done /
			    ((double)(bench_now_ns() - sh->start_ns) / 1e9));
		pthread_mutex_unlock(&sh->lock);
		if (r != TCA_CLIENT_OK && transport_error(r)) {
			tca_client_close(c);
			c = NULL;
		}
	}
	tca_client_close(c);
	return NULL;
}

static int
cmd_mkca(const struct opts *o)
{
	struct mkca_shared sh;
	pthread_t *th;
	unsigned int i, k = o->connections == 0 ? 4 : o->connections;
	double secs;
	FILE *f;

	if (o->socket == NULL || o->count == 0 || o->count > 100000)
		bench_die("mkca: --socket and --count 1..100000 needed");
	memset(&sh, 0, sizeof(sh));
	sh.o = o;
	pthread_mutex_init(&sh.lock, NULL);
	th = bench_xcalloc(k, sizeof(*th));
	sh.start_ns = bench_now_ns();
	for (i = 0; i < k; i++)
		if (pthread_create(&th[i], NULL, mkca_main, &sh) != 0)
			bench_die("pthread_create failed");
	for (i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	secs = (double)(bench_now_ns() - sh.start_ns) / 1e9;
	f = bench_results_open(o->out);
	bench_json_begin(f, "mkca");
	bench_json_int(f, "count", o->count);
	bench_json_int(f, "connections", k);
	bench_json_int(f, "created", sh.created);
	bench_json_int(f, "existing", sh.existing);
	bench_json_int(f, "failed", sh.failed);
	bench_json_num(f, "seconds", secs);
	bench_json_num(f, "rate", secs > 0 ? sh.created / secs : 0);
	bench_json_end(f);
	bench_results_close(f);
	if (sh.failed > 0)
		fprintf(stderr, "%s: %u CA creations failed, first: %s\n", bench_progname,
		    sh.failed, sh.first_error);
	free(th);
	pthread_mutex_destroy(&sh.lock);
	return sh.failed > 0;
}

/* ------------------------------------------------------------ shared by crl, crlparts */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (v is left as it is); 0 when n == 0. */
static double
median_of(const double *v, size_t n)
{
	double *c, m;

	if (n == 0)
		return 0;
	c = bench_xcalloc(n, sizeof(*c));
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	m = n % 2 == 1 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

/* key: [v0, v1, ...] with 3 decimals */
static void
json_ms_array(FILE *f, const char *key, const double *v, size_t n)
{
	char *buf = bench_xcalloc(n + 1, 32), *p = buf;
	size_t i;

	*p++ = '[';
	for (i = 0; i < n; i++)
		p += snprintf(p, 32, "%s%.3f", i > 0 ? "," : "", v[i]);
	*p++ = ']';
	*p = '\0';
	bench_json_raw(f, key, buf);
	free(buf);
}

/*
 * A DER CRL checked as a relying party would: it parses with OpenSSL
 * (exactly len octets), its issuer is the CA certificate's subject, its
 * signature verifies with the CA certificate's key, and OpenSSL and the
 * engine's own reader (tca_crl_info) count the same entries.  0 if so
 * (*entries_ptr, *number_ptr set), else 1 with why.
 */
static int
crl_verify(const unsigned char *der, size_t len, const unsigned char *ca, size_t ca_len,
    long long *entries_ptr, uint64_t *number_ptr, char *why, size_t whylen)
{
	const unsigned char *p;
	STACK_OF(X509_REVOKED) *revs;
	X509_CRL *crl = NULL;
	X509 *cax = NULL;
	size_t n_ours = 0;
	int n_ossl, bad = 1;

	*entries_ptr = -1;
	*number_ptr = 0;
	p = ca;
	if ((cax = d2i_X509(NULL, &p, (long)ca_len)) == NULL) {
		snprintf(why, whylen, "the CA certificate does not parse");
		goto out;
	}
	p = der;
	if (len > LONG_MAX || (crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		snprintf(why, whylen, "the CRL (%zu octets) does not parse", len);
		goto out;
	}
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(cax)) != 0) {
		snprintf(why, whylen, "the CRL's issuer is not the CA's subject");
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(cax)) != 1) {
		snprintf(why, whylen, "the CRL's signature does not verify with the CA key");
		goto out;
	}
	revs = X509_CRL_get_REVOKED(crl);
	n_ossl = revs == NULL ? 0 : sk_X509_REVOKED_num(revs);
	if (tca_crl_info(der, len, number_ptr, NULL, NULL, &n_ours) != TCA_OK ||
	    (size_t)n_ossl != n_ours) {
		snprintf(why, whylen, "OpenSSL counts %d entries, tca_crl_info %zu", n_ossl, n_ours);
		goto out;
	}
	*entries_ptr = n_ossl;
	bad = 0;
 out:
	X509_CRL_free(crl);
	X509_free(cax);
	return bad;
}

/* ------------------------------------------------------------ crl */

static int
cmd_crl(const struct opts *o)
{
	struct tca_client_error err;
	cbor_item_t *args, *res = NULL;
	tca_client *c = NULL;
	unsigned char *ca, *der = NULL;
	size_t ca_len, der_len = 0, i, nsign = 0, nfetch = 0;
	double *sign_ms, *sign_cpu_ms, *fetch_ms, *failed_ms;
	uint64_t t0, t1, cpu0 = 0, cpu1 = 0, number, last_signed = 0, crl_number = 0;
	uint64_t entries_signed = 0;
	long long entries = -1;
	char first_error[320] = "", why[256] = "";
	unsigned int errors = 0;
	int r, bad = 1;
	FILE *f;

	if (o->socket == NULL || o->tenant == NULL)
		bench_die("crl: --socket and --tenant needed");
	memset(&err, 0, sizeof(err));
	/* a CRL of 100,000 entries may take a while: 10 minutes per call */
	if ((r = tca_client_connect(o->socket, 600000, &c, &err)) != TCA_CLIENT_OK)
		bench_die("connect %s: %s", o->socket, err.message);
	ca = fetch_ca_cert(c, o->tenant, &ca_len);
	sign_ms = bench_xcalloc(o->repeat + 1, sizeof(*sign_ms));
	sign_cpu_ms = bench_xcalloc(o->repeat + 1, sizeof(*sign_cpu_ms));
	failed_ms = bench_xcalloc(o->repeat + 1, sizeof(*failed_ms));
	fetch_ms = bench_xcalloc(o->fetch + 1, sizeof(*fetch_ms));
	for (i = 0; i < o->repeat; i++) {
		args = xmap(1);
		xmap_text(args, "tenant", o->tenant);
		if (o->engine_pid > 0)
			cpu0 = bench_cpu_ns(o->engine_pid);
		t0 = bench_now_ns();
		r = tca_client_call(c, "crl.sign", args, &res, &err);
		t1 = bench_now_ns();
		if (o->engine_pid > 0)
			cpu1 = bench_cpu_ns(o->engine_pid);
		cbor_decref(&args);
		if (r != TCA_CLIENT_OK) {
			/* how long the engine worked before it gave up */
			failed_ms[errors] = (double)(t1 - t0) / 1e6;
			if (errors++ == 0)
				snprintf(first_error, sizeof(first_error), "crl.sign: %s: %s",
				    err.code[0] != '\0' ? err.code : tca_client_strerror(r),
				    err.message);
			fprintf(stderr, "%s: crl.sign %s failed after %.1f ms: %s: %s\n",
			    bench_progname, o->tenant, (double)(t1 - t0) / 1e6,
			    err.code[0] != '\0' ? err.code : tca_client_strerror(r), err.message);
			if (transport_error(r)) {
				tca_client_close(c);
				if (tca_client_connect(o->socket, 600000, &c, &err) != TCA_CLIENT_OK)
					bench_die("reconnect %s: %s", o->socket, err.message);
			}
			continue;
		}
		number = 0;
		(void)tca_map_get_uint(res, "number", &number);
		(void)tca_map_get_uint(res, "entries", &entries_signed);
		cbor_decref(&res);
		last_signed = number;
		sign_ms[nsign] = (double)(t1 - t0) / 1e6;
		sign_cpu_ms[nsign] = (double)(cpu1 - cpu0) / 1e6;
		fprintf(stderr, "%s: crl.sign %s: CRL %llu, %llu entries, %.1f ms\n",
		    bench_progname, o->tenant, (unsigned long long)number,
		    (unsigned long long)entries_signed, sign_ms[nsign]);
		nsign++;
	}
	for (i = 0; i < o->fetch; i++) {
		free(der);
		der = NULL;
		t0 = bench_now_ns();
		r = tca_client_crl(c, o->tenant, &der, &der_len, &err);
		t1 = bench_now_ns();
		if (r != TCA_CLIENT_OK) {
			if (errors++ == 0)
				snprintf(first_error, sizeof(first_error), "crl: %s: %s",
				    err.code[0] != '\0' ? err.code : tca_client_strerror(r),
				    err.message);
			der = NULL;
			break;
		}
		fetch_ms[nfetch++] = (double)(t1 - t0) / 1e6;
	}
	if (der != NULL) {
		bad = crl_verify(der, der_len, ca, ca_len, &entries, &crl_number, why, sizeof(why));
		if (!bad && nsign > 0 && crl_number != last_signed) {
			snprintf(why, sizeof(why), "fetched CRL %llu, last signed %llu",
			    (unsigned long long)crl_number, (unsigned long long)last_signed);
			bad = 1;
		}
		if (!bad && o->expect >= 0 && entries != o->expect) {
			snprintf(why, sizeof(why), "the CRL lists %lld entries, expected %lld",
			    entries, o->expect);
			bad = 1;
		}
		if (o->crl_out != NULL) {
			FILE *cf = fopen(o->crl_out, "wb");

			if (cf == NULL || fwrite(der, 1, der_len, cf) != der_len || fclose(cf) != 0)
				bench_die("%s: cannot write", o->crl_out);
		}
	} else
		snprintf(why, sizeof(why), "no CRL fetched");
	f = bench_results_open(o->out);
	bench_json_begin(f, "crl");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "tenant", o->tenant);
	bench_json_int(f, "sign_requested", o->repeat);
	bench_json_int(f, "signed", (long long)nsign);
	json_ms_array(f, "sign_ms", sign_ms, nsign);
	if (nsign > 0) {
		bench_json_num(f, "sign_ms_median", median_of(sign_ms, nsign));
		bench_json_int(f, "signed_entries", (long long)entries_signed);
		if (o->engine_pid > 0)
			json_ms_array(f, "sign_engine_cpu_ms", sign_cpu_ms, nsign);
	}
	if (nsign < o->repeat)
		json_ms_array(f, "sign_failed_ms", failed_ms, o->repeat - nsign);
	json_ms_array(f, "fetch_ms", fetch_ms, nfetch);
	if (nfetch > 0)
		bench_json_num(f, "fetch_ms_median", median_of(fetch_ms, nfetch));
	bench_json_int(f, "crl_number", (long long)crl_number);
	bench_json_int(f, "entries", entries);
	bench_json_int(f, "bytes", der != NULL ? (long long)der_len : -1);
	bench_json_int(f, "verified", !bad);
	if (bad)
		bench_json_str(f, "verify_error", why);
	bench_json_int(f, "errors", errors);
	if (first_error[0] != '\0')
		bench_json_str(f, "first_error", first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: crl %s: %zu/%u signed (median %.1f ms), fetched %zu times (median "
	    "%.1f ms): CRL %llu, %lld entries, %zu octets, %s%s\n", bench_progname, o->tenant,
	    nsign, o->repeat, median_of(sign_ms, nsign), nfetch, median_of(fetch_ms, nfetch),
	    (unsigned long long)crl_number, entries, der != NULL ? der_len : 0,
	    bad ? "NOT VERIFIED: " : "verified", bad ? why : "");
	tca_client_close(c);
	free(der);
	free(ca);
	free(sign_ms);
	free(sign_cpu_ms);
	free(failed_ms);
	free(fetch_ms);
	return errors > 0 || bad;
}

/* ------------------------------------------------------------ revpop */

static int
cmd_revpop(const struct opts *o)
{
	static const int reasons[] = {
		TCA_REASON_UNSPECIFIED, TCA_REASON_KEY_COMPROMISE, TCA_REASON_AFFILIATION_CHANGED,
		TCA_REASON_SUPERSEDED, TCA_REASON_CESSATION_OF_OPERATION,
		TCA_REASON_PRIVILEGE_WITHDRAWN,
	};
	struct tca_requester who;
	struct tca_cert_info cainfo, *infos;
	struct tca_change *chgs, **ptrs;
	struct tca_ca_row row;
	struct tca_issuer *iss = NULL;
	struct stat sb;
	tca_store *st = NULL;
	unsigned char ihash[32], *ders;
	char err[256], (*devids)[32], (*details)[64];
	size_t b = o->batch, dl = o->der_bytes, done, nb, j, i, commits = 0;
	int64_t now = (int64_t)time(NULL), now_ms;
	uint64_t t0, t1;
	int *results, r;
	FILE *f;

	if (o->db == NULL || o->tenant == NULL || o->count == 0 || b == 0 || dl < 16)
		bench_die("revpop: --db, --tenant, --count >= 1, --batch >= 1, --der-bytes >= 16 needed");
	if ((r = tca_store_open(o->db, 0, &st, err, sizeof(err))) != TCA_OK)
		bench_die("revpop: %s", err);
	memset(&row, 0, sizeof(row));
	if ((r = st->ops->get_ca(st, o->tenant, &row)) != TCA_OK)
		bench_die("revpop: tenant %s: get_ca: %s", o->tenant, tca_strerror(r));
	/* store.h: issuer_hash = SHA-256 of the issuer Name DER; a device
	 * certificate's issuer Name is the CA certificate's subject Name, byte
	 * for byte (crl.h, certs.c copy it) */
	if (tca_issuer_new(row.cert_der, row.cert_der_len, &iss) != TCA_OK ||
	    EVP_Digest(iss->subject.p, iss->subject.len, ihash, NULL, EVP_sha256(), NULL) != 1 ||
	    tca_cert_info_from_der(row.cert_der, row.cert_der_len, &cainfo) != TCA_OK)
		bench_die("revpop: the CA certificate of %s does not parse", o->tenant);
	if (memcmp(cainfo.issuer_hash, ihash, 32) != 0)
		fprintf(stderr, "%s: revpop: note: the CA certificate is not self-issued; the store "
		    "matches device certificates on the CA certificate's issuer hash\n",
		    bench_progname);
	memset(&who, 0, sizeof(who));
	who.uid = (uint32_t)getuid();
	who.gid = (uint32_t)getgid();
	who.pid = (int32_t)getpid();
	infos = bench_xcalloc(b, sizeof(*infos));
	ders = bench_xmalloc(b * dl);
	devids = bench_xcalloc(b, sizeof(*devids));
	details = bench_xcalloc(2 * b, sizeof(*details));
	chgs = bench_xcalloc(2 * b, sizeof(*chgs));
	ptrs = bench_xcalloc(2 * b, sizeof(*ptrs));
	results = bench_xcalloc(2 * b, sizeof(*results));
	t0 = bench_now_ns();
	for (done = 0; done < o->count; done += nb) {
		nb = o->count - done < b ? o->count - done : b;
		now_ms = (int64_t)(bench_wall_ns() / 1000000ULL);
		if (RAND_bytes(ders, (int)(nb * dl)) != 1)
			bench_die("RAND_bytes failed");
		memset(chgs, 0, 2 * nb * sizeof(*chgs));
		for (j = 0; j < nb; j++) {
			struct tca_cert_info *ci = &infos[j];
			struct tca_change *ic = &chgs[j], *rc = &chgs[nb + j];

			i = done + j;
			memset(ci, 0, sizeof(*ci));
			ci->der = ders + j * dl;
			ci->der_len = dl;
			if (tca_random_serial(ci->serial) != TCA_OK)
				bench_die("tca_random_serial failed");
			ci->serial_len = TCA_SERIAL_LEN;
			snprintf(devids[j], sizeof(devids[j]), "rev-%07zu", i);
			snprintf(ci->subject, sizeof(ci->subject), "CN=%s,OU=Device,O=Thin Edge",
			    devids[j]);
			snprintf(ci->issuer, sizeof(ci->issuer), "%s", cainfo.subject);
			memcpy(ci->issuer_hash, ihash, 32);
			if (EVP_Digest(ci->der, ci->der_len, ci->sha256, NULL, EVP_sha256(), NULL) != 1)
				bench_die("SHA-256 failed");
			ci->not_before = now - 86400;
			ci->not_after = now + 365 * 86400;
			ic->kind = TCA_CHANGE_CERT_ISSUE;
			ic->op = "issue";
			ic->tenant = o->tenant;
			ic->time_ms = now_ms;
			ic->who = who;
			ic->cert = ci;
			ic->device_id = devids[j];
			snprintf(details[j], sizeof(details[j]), "device_id=%s", devids[j]);
			ic->details = details[j];
			rc->kind = TCA_CHANGE_CERT_REVOKE;
			rc->op = "revoke";
			rc->tenant = o->tenant;
			rc->time_ms = now_ms;
			rc->who = who;
			rc->serial = ci->serial;
			rc->serial_len = ci->serial_len;
			rc->reason = reasons[i % (sizeof(reasons) / sizeof(reasons[0]))];
			rc->revoked_at = now - 60;
			snprintf(details[nb + j], sizeof(details[nb + j]), "reason=%s",
			    tca_crl_reason_name(rc->reason));
			rc->details = details[nb + j];
		}
		for (j = 0; j < 2 * nb; j++)
			ptrs[j] = &chgs[j];
		if ((r = st->ops->commit(st, ptrs, 2 * nb, results)) != TCA_OK)
			bench_die("revpop: commit failed: %s", tca_strerror(r));
		for (j = 0; j < 2 * nb; j++)
			if (results[j] != TCA_OK)
				bench_die("revpop: change %zu of batch %zu (%s): %s", j, commits,
				    j < nb ? "issue" : "revoke", tca_strerror(results[j]));
		commits++;
		if (commits % 10 == 0)
			fprintf(stderr, "%s: revpop: %zu/%u (%.0f/s)\n", bench_progname, done + nb,
			    o->count, (double)(done + nb) /
			    ((double)(bench_now_ns() - t0) / 1e9));
	}
	t1 = bench_now_ns();
	st->ops->close(st);
	f = bench_results_open(o->out);
	bench_json_begin(f, "revpop");
	bench_json_str(f, "tenant", o->tenant);
	bench_json_int(f, "count", o->count);
	bench_json_int(f, "batch", (long long)b);
	bench_json_int(f, "commits", (long long)commits);
	bench_json_int(f, "der_bytes", (long long)dl);
	bench_json_num(f, "seconds", (double)(t1 - t0) / 1e9);
	bench_json_num(f, "rate", (double)o->count / ((double)(t1 - t0) / 1e9));
	bench_json_int(f, "db_bytes", stat(o->db, &sb) == 0 ? (long long)sb.st_size : -1);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: revpop: %u certificates issued and revoked in %.1f s (%zu commits)\n",
	    bench_progname, o->count, (double)(t1 - t0) / 1e9, commits);
	tca_issuer_free(iss);
	tca_ca_row_clear(&row);
	free(infos);
	free(ders);
	free(devids);
	free(details);
	free(chgs);
	free(ptrs);
	free(results);
	return 0;
}

/* ------------------------------------------------------------ commits */

/*
 * One committer of `commits`: its own store handle (for PostgreSQL its own
 * connections, as one engine's committer), batches of --batch device
 * certificate issues of --tenant, each commit() timed, from the shared start
 * until the end of the window; only commits that end inside the window
 * count.
 */
struct commits_thread {
	pthread_t th;
	const struct opts *o;
	const struct bench_clock *clk;
	unsigned int id;
	struct bench_lat lat;	/* ns per commit() in the window */
	uint64_t changes;	/* in the window */
	uint64_t errors;
	char err[256];
};

static void *
commits_main(void *arg)
{
	struct commits_thread *ct = arg;
	const struct opts *o = ct->o;
	struct tca_requester who;
	struct tca_cert_info cainfo, *infos;
	struct tca_change *chgs, **ptrs;
	struct tca_ca_row row;
	struct tca_issuer *iss = NULL;
	tca_store *st = NULL;
	unsigned char ihash[32], *ders;
	char (*devids)[32], (*details)[64];
	size_t b = o->batch, dl = o->der_bytes, j;
	uint64_t seq = 0, t0, t1;
	int64_t now = (int64_t)time(NULL);
	int *results, r;

	if ((r = tca_store_open(o->db, 0, &st, ct->err, sizeof(ct->err))) != TCA_OK)
		bench_die("commits: %s", ct->err);
	memset(&row, 0, sizeof(row));
	if ((r = st->ops->get_ca(st, o->tenant, &row)) != TCA_OK)
		bench_die("commits: tenant %s: get_ca: %s", o->tenant, tca_strerror(r));
	if (tca_issuer_new(row.cert_der, row.cert_der_len, &iss) != TCA_OK ||
	    EVP_Digest(iss->subject.p, iss->subject.len, ihash, NULL, EVP_sha256(), NULL) != 1 ||
	    tca_cert_info_from_der(row.cert_der, row.cert_der_len, &cainfo) != TCA_OK)
		bench_die("commits: the CA certificate of %s does not parse", o->tenant);
	memset(&who, 0, sizeof(who));
	who.uid = (uint32_t)getuid();
	who.gid = (uint32_t)getgid();
	who.pid = (int32_t)getpid();
	infos = bench_xcalloc(b, sizeof(*infos));
	ders = bench_xmalloc(b * dl);
	devids = bench_xcalloc(b, sizeof(*devids));
	details = bench_xcalloc(b, sizeof(*details));
	chgs = bench_xcalloc(b, sizeof(*chgs));
	ptrs = bench_xcalloc(b, sizeof(*ptrs));
	results = bench_xcalloc(b, sizeof(*results));
	bench_sleep_until(ct->clk->start_ns);
	for (;;) {
		if (bench_now_ns() >= ct->clk->end_ns)
			break;
		if (RAND_bytes(ders, (int)(b * dl)) != 1)
			bench_die("RAND_bytes failed");
		memset(chgs, 0, b * sizeof(*chgs));
		for (j = 0; j < b; j++) {
			struct tca_cert_info *ci = &infos[j];
			struct tca_change *ic = &chgs[j];

			memset(ci, 0, sizeof(*ci));
			ci->der = ders + j * dl;
			ci->der_len = dl;
			if (tca_random_serial(ci->serial) != TCA_OK)
				bench_die("tca_random_serial failed");
			ci->serial_len = TCA_SERIAL_LEN;
			snprintf(devids[j], sizeof(devids[j]), "c%u-%09llu", ct->id,
			    (unsigned long long)seq++);
			snprintf(ci->subject, sizeof(ci->subject), "CN=%s,OU=Device,O=Thin Edge",
			    devids[j]);
			snprintf(ci->issuer, sizeof(ci->issuer), "%s", cainfo.subject);
			memcpy(ci->issuer_hash, ihash, 32);
			if (EVP_Digest(ci->der, ci->der_len, ci->sha256, NULL, EVP_sha256(), NULL) != 1)
				bench_die("SHA-256 failed");
			ci->not_before = now - 60;
			ci->not_after = now + 365 * 86400;
			ic->kind = TCA_CHANGE_CERT_ISSUE;
			ic->op = "issue";
			ic->tenant = o->tenant;
			ic->time_ms = (int64_t)(bench_wall_ns() / 1000000ULL);
			ic->who = who;
			ic->cert = ci;
			ic->device_id = devids[j];
			snprintf(details[j], sizeof(details[j]), "device_id=%s", devids[j]);
			ic->details = details[j];
			ptrs[j] = ic;
		}
		t0 = bench_now_ns();
		r = st->ops->commit(st, ptrs, b, results);
		t1 = bench_now_ns();
		for (j = 0; r == TCA_OK && j < b; j++)
			if (results[j] != TCA_OK)
				r = results[j];
		if (t1 < ct->clk->window_ns || t1 > ct->clk->end_ns)
			continue;
		if (r != TCA_OK) {
			if (ct->errors++ == 0)
				snprintf(ct->err, sizeof(ct->err), "commit: %s", tca_strerror(r));
			continue;
		}
		bench_lat_add(&ct->lat, t1 - t0);
		ct->changes += b;
	}
	st->ops->close(st);
	tca_issuer_free(iss);
	tca_ca_row_clear(&row);
	free(infos);
	free(ders);
	free(devids);
	free(details);
	free(chgs);
	free(ptrs);
	free(results);
	return NULL;
}

static int
cmd_commits(const struct opts *o)
{
	struct commits_thread *ct;
	struct bench_lat *lats;
	struct bench_summary s;
	struct bench_clock clk;
	unsigned int k = o->clients > 0 ? o->clients : 1, i;
	uint64_t changes = 0, errors = 0;
	const char *first_error = NULL;
	char per[64 * 16];
	size_t pl = 0;
	FILE *f;

	if (o->db == NULL || o->tenant == NULL || o->batch == 0 || o->seconds <= 0 ||
	    o->der_bytes < 16 || k > 64)
		bench_die("commits: --db, --tenant, --batch >= 1, --seconds > 0, "
		    "--clients 1..64, --der-bytes >= 16 needed");
	ct = bench_xcalloc(k, sizeof(*ct));
	lats = bench_xcalloc(k, sizeof(*lats));
	/* the stores open in the threads before the start: 1 s is plenty */
	bench_clock_set(&clk, 1.0 + o->warmup, o->seconds);
	clk.start_ns += 1000000000ULL;
	for (i = 0; i < k; i++) {
		ct[i].o = o;
		ct[i].clk = &clk;
		ct[i].id = i;
		if (pthread_create(&ct[i].th, NULL, commits_main, &ct[i]) != 0)
			bench_die("pthread_create failed");
	}
	for (i = 0; i < k; i++) {
		pthread_join(ct[i].th, NULL);
		lats[i] = ct[i].lat;
		changes += ct[i].changes;
		errors += ct[i].errors;
		if (first_error == NULL && ct[i].errors > 0)
			first_error = ct[i].err;
	}
	memset(&s, 0, sizeof(s));
	s.errors = errors;
	s.seconds = o->seconds;
	s.cpu_ms_per_op = -1;
	bench_summarize(lats, k, &s);
	per[0] = '[';
	pl = 1;
	for (i = 0; i < k && pl < sizeof(per) - 24; i++)
		pl += (size_t)snprintf(per + pl, sizeof(per) - pl, "%s%zu", i > 0 ? "," : "",
		    ct[i].lat.n);
	snprintf(per + pl, sizeof(per) - pl, "]");
	f = bench_results_open(o->out);
	bench_json_begin(f, "commits");
	bench_json_str(f, "label", o->label != NULL ? o->label : "commits");
	bench_json_str(f, "backend", strncmp(o->db, "sqlite:", 7) == 0 || o->db[0] == '/' ?
	    "sqlite" : "postgresql");
	bench_json_int(f, "committers", k);
	bench_json_int(f, "batch", o->batch);
	bench_json_int(f, "changes", (long long)changes);
	bench_json_num(f, "changes_per_s", (double)changes / o->seconds);
	bench_json_summary(f, &s);
	bench_json_raw(f, "commits_per_committer", per);
	if (first_error != NULL)
		bench_json_str(f, "first_error", first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: commits %s: %u committer(s), batch %u: %.0f commits/s, %.0f "
	    "changes/s, commit() p50 %.2f p99 %.2f ms, %llu errors\n", bench_progname, o->db, k,
	    o->batch, s.rate, (double)changes / o->seconds, s.p50_ms, s.p99_ms,
	    (unsigned long long)errors);
	for (i = 0; i < k; i++)
		bench_lat_free(&ct[i].lat);
	free(ct);
	free(lats);
	return errors > 0;
}

/* ------------------------------------------------------------ invpop */

/* The issuer of one tenant's device certificates, as revpop derives it. */
struct inv_issuer {
	unsigned char ihash[32];
	char subject[TCA_SUBJECT_MAX];
};

/* invpop's validity spread: notBefore this many seconds before now,
 * deterministic per (tenant, device), over 0..420 days. */
static int64_t
inv_age_s(size_t t, size_t d)
{
	return (int64_t)((t * 7919u + d * 104729u) % 420u) * 86400 +
	    (int64_t)((t * 13u + d * 7u) % 86400u);
}

static int
cmd_invpop(const struct opts *o)
{
	static const int reasons[] = {
		TCA_REASON_UNSPECIFIED, TCA_REASON_KEY_COMPROMISE, TCA_REASON_AFFILIATION_CHANGED,
		TCA_REASON_SUPERSEDED, TCA_REASON_CESSATION_OF_OPERATION,
		TCA_REASON_PRIVILEGE_WITHDRAWN,
	};
	struct tca_requester who;
	struct inv_issuer *iss_of;
	struct tca_cert_info *infos, cainfo;
	struct tca_change *chgs, **ptrs;
	struct tca_ca_row row;
	struct tca_issuer *iss;
	struct stat sb;
	tca_store *st = NULL;
	unsigned char *ders;
	char err[256], name[TCA_TENANT_MAX + 1], (*tnames)[TCA_TENANT_MAX + 1], (*devids)[32];
	char (*details)[64];
	size_t p = o->per_tenant, rv = o->revoked_per, b = o->batch, dl = o->der_bytes;
	size_t total, done, nb, nr, j, t, d, step, commits = 0;
	uint64_t n_valid = 0, n_expired = 0, n_revoked = 0, n_revoked_unexpired = 0;
	int64_t now = (int64_t)time(NULL), now_ms, age;
	uint64_t t0, t1, tr0, tr1;
	long long wal = -1;
	int *results, r;
	FILE *f;

	if (o->db == NULL || o->count == 0 || p == 0 || p > 1000 || rv > p || b == 0 || dl < 16)
		bench_die("invpop: --db, --count >= 1, --per-tenant 1..1000, --revoked-per-tenant "
		    "<= per-tenant, --batch >= 1, --der-bytes >= 16 needed");
	step = rv > 0 ? p / rv : 1;
	if ((r = tca_store_open(o->db, 0, &st, err, sizeof(err))) != TCA_OK)
		bench_die("invpop: %s", err);
	/* every tenant's issuer, read once (as revpop does for its one tenant) */
	tr0 = bench_now_ns();
	iss_of = bench_xcalloc(o->count, sizeof(*iss_of));
	tnames = bench_xcalloc(o->count, sizeof(*tnames));
	for (t = 0; t < o->count; t++) {
		bench_tenant_name((unsigned int)t, name, sizeof(name));
		snprintf(tnames[t], sizeof(tnames[t]), "%s", name);
		memset(&row, 0, sizeof(row));
		if ((r = st->ops->get_ca(st, name, &row)) != TCA_OK)
			bench_die("invpop: tenant %s: get_ca: %s", name, tca_strerror(r));
		iss = NULL;
		if (tca_issuer_new(row.cert_der, row.cert_der_len, &iss) != TCA_OK ||
		    EVP_Digest(iss->subject.p, iss->subject.len, iss_of[t].ihash, NULL,
		    EVP_sha256(), NULL) != 1 ||
		    tca_cert_info_from_der(row.cert_der, row.cert_der_len, &cainfo) != TCA_OK)
			bench_die("invpop: the CA certificate of %s does not parse", name);
		/* the store finds device certificates by the CA certificate's
		 * issuer hash: the CAs are self-issued, so it is the same */
		if (memcmp(cainfo.issuer_hash, iss_of[t].ihash, 32) != 0)
			bench_die("invpop: the CA certificate of %s is not self-issued", name);
		snprintf(iss_of[t].subject, sizeof(iss_of[t].subject), "%s", cainfo.subject);
		tca_issuer_free(iss);
		tca_ca_row_clear(&row);
	}
	tr1 = bench_now_ns();
	memset(&who, 0, sizeof(who));
	who.uid = (uint32_t)getuid();
	who.gid = (uint32_t)getgid();
	who.pid = (int32_t)getpid();
	/* a batch revokes at most the b certificates it issues */
	nr = b;
	infos = bench_xcalloc(b, sizeof(*infos));
	ders = bench_xmalloc(b * dl);
	devids = bench_xcalloc(b, sizeof(*devids));
	details = bench_xcalloc(b + nr, sizeof(*details));
	chgs = bench_xcalloc(b + nr, sizeof(*chgs));
	ptrs = bench_xcalloc(b + nr, sizeof(*ptrs));
	results = bench_xcalloc(b + nr, sizeof(*results));
	total = (size_t)o->count * p;
	t0 = bench_now_ns();
	for (done = 0; done < total; done += nb) {
		size_t k = 0, n;

		nb = total - done < b ? total - done : b;
		now_ms = (int64_t)(bench_wall_ns() / 1000000ULL);
		if (RAND_bytes(ders, (int)(nb * dl)) != 1)
			bench_die("RAND_bytes failed");
		memset(chgs, 0, (nb + nr) * sizeof(*chgs));
		for (j = 0; j < nb; j++) {
			struct tca_cert_info *ci = &infos[j];
			struct tca_change *ic = &chgs[j];

			/* interleaved, as devices enrol over time: round-robin over
			 * the tenants, so a tenant's certificates are spread over
			 * the whole table; --grouped: tenant by tenant */
			t = o->grouped ? (done + j) / p : (done + j) % o->count;
			d = o->grouped ? (done + j) % p : (done + j) / o->count;
			age = inv_age_s(t, d);
			memset(ci, 0, sizeof(*ci));
			ci->der = ders + j * dl;
			ci->der_len = dl;
			if (tca_random_serial(ci->serial) != TCA_OK)
				bench_die("tca_random_serial failed");
			ci->serial_len = TCA_SERIAL_LEN;
			snprintf(devids[j], sizeof(devids[j]), "dev-%03zu", d);
			snprintf(ci->subject, sizeof(ci->subject), "CN=%s,OU=Device,O=Thin Edge",
			    devids[j]);
			snprintf(ci->issuer, sizeof(ci->issuer), "%s", iss_of[t].subject);
			memcpy(ci->issuer_hash, iss_of[t].ihash, 32);
			if (EVP_Digest(ci->der, ci->der_len, ci->sha256, NULL, EVP_sha256(), NULL) != 1)
				bench_die("SHA-256 failed");
			ci->not_before = now - age;
			ci->not_after = ci->not_before + 365 * 86400;
			ic->kind = TCA_CHANGE_CERT_ISSUE;
			ic->op = "issue";
			ic->tenant = tnames[t];
			ic->time_ms = now_ms;
			ic->who = who;
			ic->cert = ci;
			ic->device_id = devids[j];
			snprintf(details[j], sizeof(details[j]), "device_id=%s", devids[j]);
			ic->details = details[j];
			if (rv > 0 && d % step == 7 % step && d / step < rv) {
				struct tca_change *rc = &chgs[nb + k];

				if (k == nr)
					bench_die("invpop: too many revocations in one batch");
				rc->kind = TCA_CHANGE_CERT_REVOKE;
				rc->op = "revoke";
				rc->tenant = tnames[t];
				rc->time_ms = now_ms;
				rc->who = who;
				rc->serial = ci->serial;
				rc->serial_len = ci->serial_len;
				rc->reason = reasons[(t + d) % (sizeof(reasons) / sizeof(reasons[0]))];
				rc->revoked_at = now - age / 2;
				snprintf(details[nb + k], sizeof(details[nb + k]), "reason=%s",
				    tca_crl_reason_name(rc->reason));
				rc->details = details[nb + k];
				k++;
				n_revoked++;
				n_revoked_unexpired += ci->not_after >= now;
			} else if (ci->not_after < now)
				n_expired++;
			else
				n_valid++;
		}
		n = nb + k;
		for (j = 0; j < n; j++)
			ptrs[j] = &chgs[j];
		if ((r = st->ops->commit(st, ptrs, n, results)) != TCA_OK)
			bench_die("invpop: commit failed: %s", tca_strerror(r));
		for (j = 0; j < n; j++)
			if (results[j] != TCA_OK)
				bench_die("invpop: change %zu of batch %zu (%s): %s", j, commits,
				    j < nb ? "issue" : "revoke", tca_strerror(results[j]));
		commits++;
		if (commits % 10 == 0)
			fprintf(stderr, "%s: invpop: %zu/%zu (%.0f/s)\n", bench_progname, done + nb,
			    total, (double)(done + nb) / ((double)(bench_now_ns() - t0) / 1e9));
	}
	t1 = bench_now_ns();
	st->ops->close(st);
	{
		char walp[PATH_MAX];

		snprintf(walp, sizeof(walp), "%s-wal", o->db);
		if (stat(walp, &sb) == 0)
			wal = (long long)sb.st_size;
	}
	f = bench_results_open(o->out);
	bench_json_begin(f, "invpop");
	bench_json_int(f, "tenants", o->count);
	bench_json_int(f, "per_tenant", (long long)p);
	bench_json_int(f, "revoked_per_tenant", (long long)rv);
	bench_json_int(f, "certificates", (long long)total);
	bench_json_int(f, "revoked", (long long)n_revoked);
	bench_json_int(f, "revoked_unexpired", (long long)n_revoked_unexpired);
	bench_json_int(f, "valid", (long long)n_valid);
	bench_json_int(f, "expired", (long long)n_expired);
	bench_json_int(f, "now", now);
	bench_json_str(f, "order", o->grouped ? "grouped" : "interleaved");
	bench_json_int(f, "batch", (long long)b);
	bench_json_int(f, "commits", (long long)commits);
	bench_json_int(f, "der_bytes", (long long)dl);
	bench_json_num(f, "issuers_seconds", (double)(tr1 - tr0) / 1e9);
	bench_json_num(f, "seconds", (double)(t1 - t0) / 1e9);
	bench_json_num(f, "rate", (double)total / ((double)(t1 - t0) / 1e9));
	bench_json_int(f, "db_bytes", stat(o->db, &sb) == 0 ? (long long)sb.st_size : -1);
	bench_json_int(f, "wal_bytes", wal);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: invpop: %zu certificates of %u tenants (%llu revoked) in %.1f s "
	    "(%zu commits, %.0f/s)\n", bench_progname, total, o->count,
	    (unsigned long long)n_revoked, (double)(t1 - t0) / 1e9, commits,
	    (double)total / ((double)(t1 - t0) / 1e9));
	free(iss_of);
	free(tnames);
	free(infos);
	free(ders);
	free(devids);
	free(details);
	free(chgs);
	free(ptrs);
	free(results);
	return 0;
}

/* ------------------------------------------------------------ inventory */

/* The times of one operation repeated: ms per call, rows per answer. */
struct inv_op {
	const char *name;
	double *ms;
	size_t n, cap;
	long long rows;		/* rows of the last answer (-1: none yet) */
	int rows_vary;		/* the answers did not all hold the same number */
	int more;		/* the last answer had `next` */
};

struct inv_run {
	const struct opts *o;
	tca_client *c;
	unsigned int errors;
	char first_error[320];
};

static void
inv_op_add(struct inv_op *op, double ms, long long rows, int more)
{
	if (op->n == op->cap) {
		double *v;

		op->cap = op->cap == 0 ? 16 : op->cap * 2;
		if ((v = realloc(op->ms, op->cap * sizeof(*v))) == NULL)
			bench_die("out of memory");
		op->ms = v;
	}
	op->ms[op->n++] = ms;
	if (op->n > 1 && rows != op->rows)
		op->rows_vary = 1;
	op->rows = rows;
	op->more = more;
}

static double
max_of(const double *v, size_t n)
{
	double m = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static void
inv_fail(struct inv_run *ir, const char *what, int r, const struct tca_client_error *err)
{
	if (ir->errors++ == 0)
		snprintf(ir->first_error, sizeof(ir->first_error), "%s: %s: %s", what,
		    err->code[0] != '\0' ? err->code : tca_client_strerror(r), err->message);
	fprintf(stderr, "%s: inventory: %s: %s: %s\n", bench_progname, what,
	    err->code[0] != '\0' ? err->code : tca_client_strerror(r), err->message);
}

/* One call, timed; *res_ptr the result (caller decrefs) or NULL on error. */
static double
inv_call(struct inv_run *ir, const char *op, cbor_item_t *args, cbor_item_t **res_ptr)
{
	struct tca_client_error err;
	uint64_t t0, t1;
	int r;

	memset(&err, 0, sizeof(err));
	*res_ptr = NULL;
	t0 = bench_now_ns();
	r = tca_client_call(ir->c, op, args, res_ptr, &err);
	t1 = bench_now_ns();
	if (r != TCA_CLIENT_OK) {
		*res_ptr = NULL;
		inv_fail(ir, op, r, &err);
		if (transport_error(r)) {
			tca_client_close(ir->c);
			ir->c = NULL;
			if (tca_client_connect(ir->o->socket, 600000, &ir->c, &err) != TCA_CLIENT_OK)
				bench_die("reconnect %s: %s", ir->o->socket, err.message);
		}
		return -1;
	}
	return (double)(t1 - t0) / 1e6;
}

static cbor_item_t *
list_args(const char *tenant, const char *device, const char *status, const char *after,
    uint64_t limit)
{
	cbor_item_t *a = xmap(2 + (device != NULL) + (status != NULL) + (after != NULL));

	xmap_text(a, "tenant", tenant);
	if (device != NULL)
		xmap_text(a, "device_id", device);
	if (status != NULL)
		xmap_text(a, "status", status);
	if (after != NULL)
		xmap_text(a, "after", after);
	if (tca_map_add_uint(a, "limit", limit) != TCA_OK)
		bench_die("out of memory (cbor)");
	return a;
}

/* The certificates array of a cert.list result (NULL if malformed). */
static cbor_item_t *
list_certs(const cbor_item_t *res)
{
	cbor_item_t *arr = res != NULL ? tca_map_get(res, "certificates") : NULL;

	return arr != NULL && cbor_isa_array(arr) ? arr : NULL;
}

/*
 * cert.list once with these filters: adds the time to op; checks every row
 * against the filter (status, device id); *next (if non-NULL, capacity 32)
 * gets `next` or "".  The number of rows, or -1 on error.
 */
static long long
inv_list(struct inv_run *ir, struct inv_op *op, const char *device, const char *status,
    const char *after, uint64_t limit, char *next, cbor_item_t **res_keep)
{
	cbor_item_t *args, *res, *arr, *el;
	char nx[32] = "", v[300];
	size_t i, n;
	double ms;

	args = list_args(ir->o->tenant, device, status, after, limit);
	ms = inv_call(ir, "cert.list", args, &res);
	cbor_decref(&args);
	if (ms < 0)
		return -1;
	if ((arr = list_certs(res)) == NULL) {
		struct tca_client_error e = { .message = "no certificates array" };

		inv_fail(ir, op->name, TCA_CLIENT_OK, &e);
		cbor_decref(&res);
		return -1;
	}
	n = cbor_array_size(arr);
	(void)tca_map_get_text(res, "next", nx, sizeof(nx));
	for (i = 0; i < n; i++) {
		el = cbor_array_get(arr, i);
		if ((status != NULL && (tca_map_get_text(el, "status", v, sizeof(v)) != TCA_OK ||
		    strcmp(v, status) != 0)) ||
		    (device != NULL && (tca_map_get_text(el, "device_id", v, sizeof(v)) != TCA_OK ||
		    strcmp(v, device) != 0))) {
			struct tca_client_error e;

			memset(&e, 0, sizeof(e));
			snprintf(e.message, sizeof(e.message), "row %zu does not match the filter "
			    "(status %s, device %s)", i, status != NULL ? status : "-",
			    device != NULL ? device : "-");
			inv_fail(ir, op->name, TCA_CLIENT_OK, &e);
		}
		cbor_decref(&el);
	}
	if (n > limit) {
		struct tca_client_error e = { .message = "more rows than the limit" };

		inv_fail(ir, op->name, TCA_CLIENT_OK, &e);
	}
	inv_op_add(op, ms, (long long)n, nx[0] != '\0');
	if (next != NULL)
		snprintf(next, 32, "%s", nx);
	if (res_keep != NULL)
		*res_keep = res;
	else
		cbor_decref(&res);
	return (long long)n;
}

/* The second connection during the uncached status: cert.show in a loop. */
struct inv_probe {
	const char *socket, *tenant, *serial;
	int stop;		/* __atomic */
	uint64_t *t0, *t1;	/* each call's start and end, CLOCK_MONOTONIC ns */
	size_t n, cap;
	unsigned int errors;
	pthread_t th;
};

static void *
inv_probe_main(void *arg)
{
	struct inv_probe *pr = arg;
	struct tca_client_error err;
	cbor_item_t *args, *res;
	tca_client *c = NULL;
	uint64_t a, b;

	memset(&err, 0, sizeof(err));
	if (tca_client_connect(pr->socket, 600000, &c, &err) != TCA_CLIENT_OK)
		bench_die("probe: connect %s: %s", pr->socket, err.message);
	args = xmap(2);
	xmap_text(args, "tenant", pr->tenant);
	xmap_text(args, "serial", pr->serial);
	while (!__atomic_load_n(&pr->stop, __ATOMIC_ACQUIRE)) {
		res = NULL;
		a = bench_now_ns();
		if (tca_client_call(c, "cert.show", args, &res, &err) != TCA_CLIENT_OK)
			pr->errors++;
		b = bench_now_ns();
		if (res != NULL)
			cbor_decref(&res);
		if (pr->n == pr->cap) {
			pr->cap = pr->cap == 0 ? 4096 : pr->cap * 2;
			if ((pr->t0 = realloc(pr->t0, pr->cap * sizeof(*pr->t0))) == NULL ||
			    (pr->t1 = realloc(pr->t1, pr->cap * sizeof(*pr->t1))) == NULL)
				bench_die("out of memory");
		}
		pr->t0[pr->n] = a;
		pr->t1[pr->n] = b;
		pr->n++;
	}
	cbor_decref(&args);
	tca_client_close(c);
	return NULL;
}

/* The certificate counts of a status result; 0 if present. */
static int
status_counts(const cbor_item_t *res, uint64_t cnt[3])
{
	cbor_item_t *m = res != NULL ? tca_map_get(res, "certificates") : NULL;

	cnt[0] = cnt[1] = cnt[2] = 0;
	return m == NULL || tca_map_get_uint(m, "valid", &cnt[0]) != TCA_OK ||
	    tca_map_get_uint(m, "revoked", &cnt[1]) != TCA_OK ||
	    tca_map_get_uint(m, "expired", &cnt[2]) != TCA_OK;
}

static void
json_op(FILE *f, const struct inv_op *op)
{
	char key[64];

	snprintf(key, sizeof(key), "%s_ms", op->name);
	json_ms_array(f, key, op->ms, op->n);
	if (op->n == 0)
		return;
	snprintf(key, sizeof(key), "%s_ms_median", op->name);
	bench_json_num(f, key, median_of(op->ms, op->n));
	snprintf(key, sizeof(key), "%s_ms_max", op->name);
	bench_json_num(f, key, max_of(op->ms, op->n));
	if (op->rows >= 0) {
		snprintf(key, sizeof(key), "%s_rows", op->name);
		bench_json_int(f, key, op->rows_vary ? -1 : op->rows);
	}
}

static int
cmd_inventory(const struct opts *o)
{
	enum { L100, L500, LREV, LVALID, LEXP, LDEV, SHOW, PAGEALL, STATUS_CACHED, NOPS };
	struct inv_op ops[NOPS] = {
		[L100] = { .name = "list100", .rows = -1 },
		[L500] = { .name = "list500", .rows = -1 },
		[LREV] = { .name = "list_revoked", .rows = -1 },
		[LVALID] = { .name = "list_valid", .rows = -1 },
		[LEXP] = { .name = "list_expired", .rows = -1 },
		[LDEV] = { .name = "list_device", .rows = -1 },
		[SHOW] = { .name = "show", .rows = -1 },
		[PAGEALL] = { .name = "page_all", .rows = -1 },
		[STATUS_CACHED] = { .name = "status_cached", .rows = -1 },
	};
	struct inv_op page = { .name = "page", .rows = -1 };
	struct tca_client_error err;
	struct inv_run ir;
	struct inv_probe pr;
	cbor_item_t *args, *res = NULL, *arr, *el;
	char serial[80] = "", next[32], after[32], dev[64];
	const char *device = o->device != NULL ? o->device : "dev-042";
	uint64_t lim = o->page_limit > 0 ? o->page_limit : 10, cnt[3] = { 0, 0, 0 };
	uint64_t cnt2[3], s0 = 0, s1 = 0, cpu0 = 0, cpu1 = 0, base_n = 0, dur_n = 0;
	double first_ms = -1, ms, sum, base_max = 0, dur_max = 0, *base_v = NULL;
	long long n, rows, tenant_total = -1, pages = 0;
	unsigned int i;
	size_t k, nb = 0;
	FILE *f;

	if (o->socket == NULL || o->tenant == NULL || o->repeat == 0)
		bench_die("inventory: --socket, --tenant, --repeat >= 1 needed");
	memset(&ir, 0, sizeof(ir));
	memset(&err, 0, sizeof(err));
	ir.o = o;
	if (tca_client_connect(o->socket, 600000, &ir.c, &err) != TCA_CLIENT_OK)
		bench_die("connect %s: %s", o->socket, err.message);
	for (i = 0; i < o->repeat; i++) {
		res = NULL;
		n = inv_list(&ir, &ops[L100], NULL, NULL, NULL, 100, NULL, i == 0 ? &res : NULL);
		if (i == 0 && res != NULL) {
			/* cert.show asks for the middle certificate of this page */
			arr = list_certs(res);
			if (n > 0 && arr != NULL) {
				el = cbor_array_get(arr, (size_t)n / 2);
				(void)tca_map_get_text(el, "serial", serial, sizeof(serial));
				cbor_decref(&el);
			}
			cbor_decref(&res);
		}
	}
	for (i = 0; i < o->repeat; i++)
		(void)inv_list(&ir, &ops[L500], NULL, NULL, NULL, 500, NULL, NULL);
	for (i = 0; i < o->repeat; i++)
		(void)inv_list(&ir, &ops[LREV], NULL, "revoked", NULL, 500, NULL, NULL);
	for (i = 0; i < o->repeat; i++)
		(void)inv_list(&ir, &ops[LVALID], NULL, "valid", NULL, 500, NULL, NULL);
	for (i = 0; i < o->repeat; i++)
		(void)inv_list(&ir, &ops[LEXP], NULL, "expired", NULL, 500, NULL, NULL);
	for (i = 0; i < o->repeat; i++)
		(void)inv_list(&ir, &ops[LDEV], device, NULL, NULL, 500, NULL, NULL);
	if (serial[0] == '\0')
		bench_die("inventory: tenant %s: the first page has no certificate to show", o->tenant);
	for (i = 0; i < o->repeat; i++) {
		args = xmap(2);
		xmap_text(args, "tenant", o->tenant);
		xmap_text(args, "serial", serial);
		ms = inv_call(&ir, "cert.show", args, &res);
		cbor_decref(&args);
		if (ms < 0)
			continue;
		if (tca_map_get_text(res, "serial", dev, sizeof(dev)) != TCA_OK ||
		    strcmp(dev, serial) != 0) {
			struct tca_client_error e = { .message = "cert.show answered another serial" };

			inv_fail(&ir, "cert.show", TCA_CLIENT_OK, &e);
		}
		inv_op_add(&ops[SHOW], ms, 1, 0);
		cbor_decref(&res);
	}
	/* every page of the tenant, following next */
	for (i = 0; i < o->repeat; i++) {
		sum = 0;
		rows = 0;
		pages = 0;
		after[0] = '\0';
		for (;;) {
			n = inv_list(&ir, &page, NULL, NULL, after[0] != '\0' ? after : NULL, lim,
			    next, NULL);
			if (n < 0)
				break;
			sum += page.ms[page.n - 1];
			rows += n;
			pages++;
			if (next[0] == '\0')
				break;
			if (n != (long long)lim) {
				struct tca_client_error e = { .message = "a short page with next" };

				inv_fail(&ir, "page_all", TCA_CLIENT_OK, &e);
				break;
			}
			snprintf(after, sizeof(after), "%s", next);
		}
		inv_op_add(&ops[PAGEALL], sum, rows, 0);
		tenant_total = rows;
	}
	/* the whole tenant fits the first 500-page: paging must find as many */
	if (ops[L500].rows >= 0 && !ops[L500].more && tenant_total != ops[L500].rows) {
		struct tca_client_error e;

		memset(&e, 0, sizeof(e));
		snprintf(e.message, sizeof(e.message), "paging found %lld certificates, the "
		    "500-page %lld", tenant_total, ops[L500].rows);
		inv_fail(&ir, "page_all", TCA_CLIENT_OK, &e);
	}
	if (ops[L500].rows >= 0 && !ops[L500].more && ops[LREV].rows >= 0 &&
	    ops[LVALID].rows >= 0 && ops[LEXP].rows >= 0 &&
	    ops[LREV].rows + ops[LVALID].rows + ops[LEXP].rows != ops[L500].rows) {
		struct tca_client_error e;

		memset(&e, 0, sizeof(e));
		snprintf(e.message, sizeof(e.message), "revoked %lld + valid %lld + expired %lld "
		    "!= %lld", ops[LREV].rows, ops[LVALID].rows, ops[LEXP].rows, ops[L500].rows);
		inv_fail(&ir, "cert.list by status", TCA_CLIENT_OK, &e);
	}
	/* status: the first call after the counts went stale, with the probe */
	memset(&pr, 0, sizeof(pr));
	if (o->since_ns > 0) {
		uint64_t due = o->since_ns + (uint64_t)((o->stale_s > 0 ? o->stale_s : 31) * 1e9);
		uint64_t wall = bench_wall_ns();

		if (due > wall) {
			fprintf(stderr, "%s: inventory: waiting %.1f s for the engine's cached "
			    "certificate counts to go stale\n", bench_progname,
			    (double)(due - wall) / 1e9);
			bench_sleep_until(bench_now_ns() + (due - wall));
		}
		pr.socket = o->socket;
		pr.tenant = o->tenant;
		pr.serial = serial;
		if (pthread_create(&pr.th, NULL, inv_probe_main, &pr) != 0)
			bench_die("pthread_create failed");
		bench_sleep_until(bench_now_ns() + 300000000ULL);	/* 0.3 s of baseline */
		if (o->engine_pid > 0)
			cpu0 = bench_cpu_ns(o->engine_pid);
		s0 = bench_now_ns();
		first_ms = inv_call(&ir, "status", NULL, &res);
		s1 = bench_now_ns();
		if (o->engine_pid > 0)
			cpu1 = bench_cpu_ns(o->engine_pid);
		bench_sleep_until(bench_now_ns() + 100000000ULL);
		__atomic_store_n(&pr.stop, 1, __ATOMIC_RELEASE);
		pthread_join(pr.th, NULL);
		if (res != NULL && status_counts(res, cnt) != 0) {
			struct tca_client_error e = { .message = "no certificate counts" };

			inv_fail(&ir, "status", TCA_CLIENT_OK, &e);
		}
		if (res != NULL)
			cbor_decref(&res);
		/* probe calls that ended before the status call began (baseline)
		 * and those that overlapped it */
		base_v = bench_xcalloc(pr.n + 1, sizeof(*base_v));
		for (k = 0; k < pr.n; k++) {
			double l = (double)(pr.t1[k] - pr.t0[k]) / 1e6;

			if (pr.t1[k] <= s0) {
				base_v[nb++] = l;
				if (l > base_max)
					base_max = l;
			} else if (pr.t0[k] < s1) {
				dur_n++;
				if (l > dur_max)
					dur_max = l;
			}
		}
		base_n = nb;
	}
	for (i = 0; i < o->repeat; i++) {
		ms = inv_call(&ir, "status", NULL, &res);
		if (ms < 0)
			continue;
		if (status_counts(res, cnt2) != 0 ||
		    (first_ms >= 0 && memcmp(cnt, cnt2, sizeof(cnt)) != 0)) {
			struct tca_client_error e = { .message = "the cached counts differ" };

			inv_fail(&ir, "status", TCA_CLIENT_OK, &e);
		}
		if (first_ms < 0)
			memcpy(cnt, cnt2, sizeof(cnt));
		inv_op_add(&ops[STATUS_CACHED], ms, -1, 0);
		cbor_decref(&res);
	}
	f = bench_results_open(o->out);
	bench_json_begin(f, "inventory");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "tenant", o->tenant);
	bench_json_str(f, "device", device);
	bench_json_str(f, "serial", serial);
	bench_json_int(f, "repeat", o->repeat);
	bench_json_int(f, "page_limit", (long long)lim);
	for (k = 0; k < NOPS; k++)
		json_op(f, &ops[k]);
	bench_json_int(f, "pages", pages);
	bench_json_int(f, "tenant_certificates", tenant_total);
	if (page.n > 0) {
		bench_json_num(f, "page_ms_median", median_of(page.ms, page.n));
		bench_json_num(f, "page_ms_max", max_of(page.ms, page.n));
	}
	if (first_ms >= 0) {
		bench_json_num(f, "status_first_ms", first_ms);
		if (o->engine_pid > 0)
			bench_json_num(f, "status_first_engine_cpu_ms", (double)(cpu1 - cpu0) / 1e6);
		bench_json_int(f, "probe_before_calls", (long long)base_n);
		bench_json_num(f, "probe_before_ms_median", median_of(base_v, nb));
		bench_json_num(f, "probe_before_ms_max", base_max);
		bench_json_int(f, "probe_during_calls", (long long)dur_n);
		bench_json_num(f, "probe_during_ms_max", dur_max);
		bench_json_int(f, "probe_errors", pr.errors);
		free(base_v);
	}
	bench_json_int(f, "valid", (long long)cnt[0]);
	bench_json_int(f, "revoked", (long long)cnt[1]);
	bench_json_int(f, "expired", (long long)cnt[2]);
	bench_json_int(f, "errors", ir.errors);
	if (ir.first_error[0] != '\0')
		bench_json_str(f, "first_error", ir.first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: inventory %s: list100 %.2f ms, list500 %.2f, revoked %.2f, "
	    "device %.2f, show %.2f, all %lld in %lld pages %.2f ms; status first %.1f ms "
	    "(probe max %.1f ms during, %.1f before), cached %.2f ms; counts %llu/%llu/%llu; "
	    "%u errors\n", bench_progname, o->tenant,
	    median_of(ops[L100].ms, ops[L100].n), median_of(ops[L500].ms, ops[L500].n),
	    median_of(ops[LREV].ms, ops[LREV].n), median_of(ops[LDEV].ms, ops[LDEV].n),
	    median_of(ops[SHOW].ms, ops[SHOW].n), tenant_total, pages,
	    median_of(ops[PAGEALL].ms, ops[PAGEALL].n), first_ms, dur_max, base_max,
	    median_of(ops[STATUS_CACHED].ms, ops[STATUS_CACHED].n),
	    (unsigned long long)cnt[0], (unsigned long long)cnt[1], (unsigned long long)cnt[2],
	    ir.errors);
	for (k = 0; k < NOPS; k++)
		free(ops[k].ms);
	free(page.ms);
	free(pr.t0);
	free(pr.t1);
	if (ir.c != NULL)
		tca_client_close(ir.c);
	return ir.errors > 0;
}

/* ------------------------------------------------------------ invparts */

struct parts_rows {
	long long n;
	char serial[2 * TCA_SERIAL_MAX + 1];	/* of the middle row of the first call */
	long long want_mid;
};

static int
parts_row_cb(void *ctx, const struct tca_cert_row *row)
{
	struct parts_rows *pr = ctx;

	if (pr->n == pr->want_mid && pr->serial[0] == '\0')
		snprintf(pr->serial, sizeof(pr->serial), "%s", row->serial_hex);
	pr->n++;
	return 0;
}

static int
cmd_invparts(const struct opts *o)
{
	enum { P100, P500, PREV, PVALID, PEXP, PDEV, PGET, PCOUNTS, PN };
	static const char *const names[PN] = {
		"list100", "list500", "list_revoked", "list_valid", "list_expired",
		"list_device", "get", "counts",
	};
	struct inv_op ops[PN];
	struct tca_cert_query q;
	struct tca_cert_counts cc;
	struct tca_cert_row row;
	struct parts_rows pr;
	tca_store *st = NULL;
	unsigned char serial[TCA_SERIAL_MAX];
	size_t slen = 0, k;
	char err[256], why[128], serial_hex[2 * TCA_SERIAL_MAX + 1] = "";
	const char *device = o->device != NULL ? o->device : "dev-042";
	uint64_t t0, t1;
	unsigned int i;
	int r, errors = 0;
	FILE *f;

	if (o->db == NULL || o->tenant == NULL || o->repeat == 0)
		bench_die("invparts: --db, --tenant, --repeat >= 1 needed");
	memset(ops, 0, sizeof(ops));
	memset(&cc, 0, sizeof(cc));
	for (k = 0; k < PN; k++) {
		ops[k].name = names[k];
		ops[k].rows = -1;
	}
	if ((r = tca_store_open(o->db, TCA_STORE_READONLY, &st, err, sizeof(err))) != TCA_OK)
		bench_die("invparts: %s", err);
	/* the counts first, on the fresh connection: what the engine's first
	 * `status` after start-up does */
	for (i = 0; i < o->repeat; i++) {
		t0 = bench_now_ns();
		r = st->ops->cert_counts(st, (int64_t)time(NULL), &cc);
		t1 = bench_now_ns();
		if (r != TCA_OK) {
			fprintf(stderr, "%s: invparts: cert_counts: %s\n", bench_progname, tca_strerror(r));
			errors++;
			continue;
		}
		inv_op_add(&ops[PCOUNTS], (double)(t1 - t0) / 1e6, -1, 0);
	}
	for (k = P100; k <= PDEV; k++) {
		for (i = 0; i < o->repeat; i++) {
			memset(&q, 0, sizeof(q));
			memset(&pr, 0, sizeof(pr));
			q.tenant = o->tenant;
			q.now = (int64_t)time(NULL);
			/* one more than the page, as the engine asks */
			q.limit = k == P100 ? 101 : 501;
			q.state = k == PREV ? TCA_CERT_REVOKED : k == PVALID ? TCA_CERT_VALID :
			    k == PEXP ? TCA_CERT_EXPIRED : TCA_CERT_ANY;
			q.device_id = k == PDEV ? device : NULL;
			pr.want_mid = 50;
			t0 = bench_now_ns();
			r = st->ops->cert_list(st, &q, parts_row_cb, &pr);
			t1 = bench_now_ns();
			if (r != TCA_OK) {
				fprintf(stderr, "%s: invparts: cert_list: %s\n", bench_progname,
				    tca_strerror(r));
				errors++;
				continue;
			}
			inv_op_add(&ops[k], (double)(t1 - t0) / 1e6, pr.n, 0);
			if (k == P100 && serial_hex[0] == '\0')
				snprintf(serial_hex, sizeof(serial_hex), "%s", pr.serial);
		}
	}
	if (serial_hex[0] == '\0' ||
	    tca_serial_parse_hex(serial_hex, serial, &slen, why, sizeof(why)) != TCA_OK)
		bench_die("invparts: tenant %s: no certificate to get", o->tenant);
	for (i = 0; i < o->repeat; i++) {
		t0 = bench_now_ns();
		r = st->ops->cert_get(st, o->tenant, serial, slen, &row);
		t1 = bench_now_ns();
		if (r != TCA_OK) {
			fprintf(stderr, "%s: invparts: cert_get: %s\n", bench_progname, tca_strerror(r));
			errors++;
			continue;
		}
		tca_cert_row_clear(&row);
		inv_op_add(&ops[PGET], (double)(t1 - t0) / 1e6, 1, 0);
	}
	st->ops->close(st);
	f = bench_results_open(o->out);
	bench_json_begin(f, "invparts");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "tenant", o->tenant);
	bench_json_str(f, "device", device);
	bench_json_int(f, "repeat", o->repeat);
	for (k = 0; k < PN; k++)
		json_op(f, &ops[k]);
	bench_json_int(f, "valid", (long long)cc.valid);
	bench_json_int(f, "revoked", (long long)cc.revoked);
	bench_json_int(f, "expired", (long long)cc.expired);
	bench_json_int(f, "errors", errors);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: invparts %s (store API, in process, medians): cert_counts %.1f ms "
	    "(first %.1f), cert_list 100 %.3f ms, 500 %.3f, revoked %.3f, device %.3f, "
	    "cert_get %.3f\n", bench_progname, o->tenant,
	    median_of(ops[PCOUNTS].ms, ops[PCOUNTS].n), ops[PCOUNTS].n > 0 ? ops[PCOUNTS].ms[0] : -1,
	    median_of(ops[P100].ms, ops[P100].n), median_of(ops[P500].ms, ops[P500].n),
	    median_of(ops[PREV].ms, ops[PREV].n), median_of(ops[PDEV].ms, ops[PDEV].n),
	    median_of(ops[PGET].ms, ops[PGET].n));
	for (k = 0; k < PN; k++)
		free(ops[k].ms);
	return errors > 0;
}

/* ------------------------------------------------------------ crlparts */

/* revocation.c's collect_entry, for the same read */
struct entries {
	struct tca_crl_entry *v;
	unsigned char (*serials)[TCA_SERIAL_MAX];
	size_t n, cap;
};

static int
collect_entry(void *ctx, const unsigned char *serial, size_t serial_len,
    int64_t revoked_at, int reason, int64_t not_after)
{
	struct entries *es = ctx;
	size_t i;

	(void)not_after;
	if (es->n == es->cap) {
		es->cap = es->cap == 0 ? 64 : es->cap * 2;
		if ((es->v = realloc(es->v, es->cap * sizeof(*es->v))) == NULL ||
		    (es->serials = realloc(es->serials, es->cap * TCA_SERIAL_MAX)) == NULL)
			bench_die("out of memory");
		for (i = 0; i < es->n; i++)
			es->v[i].serial = es->serials[i];
	}
	memcpy(es->serials[es->n], serial, serial_len);
	es->v[es->n].serial = es->serials[es->n];
	es->v[es->n].serial_len = serial_len;
	es->v[es->n].revoked_at = revoked_at;
	es->v[es->n].reason = reason;
	es->n++;
	return 0;
}

/*
 * The signer of crlparts: the engine's token signer, timed; when the token
 * layer refuses the message for its size, the digest is computed here and
 * the same key signs it with a bare C_Sign (CKM_ECDSA).
 */
struct parts_signer {
	struct tca_token_signer tctx;
	struct tca_signer token;	/* the engine's signer */
	const char *module, *uri, *pin;
	const unsigned char *key_id;
	size_t key_id_len;
	enum tca_sig_alg alg;
	int prehash;			/* signing through bare PKCS#11 */
	int refused;			/* the token layer refused a message */
	int refused_r;
	size_t refused_len;
	CK_FUNCTION_LIST *p11;
	CK_SESSION_HANDLE sess;
	CK_OBJECT_HANDLE key;
	uint64_t sign_ns, hash_ns, csign_ns;	/* in the last build */
};

static void
parts_p11_open(struct parts_signer *ps)
{
	CK_C_INITIALIZE_ARGS ia;
	CK_SLOT_ID slots[64], slot = 0;
	CK_ULONG nslots = 64, i, n = 0;
	CK_TOKEN_INFO ti;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2];
	P11KitUri *u;
	CK_RV rv;

	if ((ps->p11 = p11_kit_module_load(ps->module, P11_KIT_MODULE_UNMANAGED)) == NULL)
		bench_die("p11_kit_module_load %s: %s", ps->module, p11_kit_message());
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	/* the token layer has initialised the same module already */
	if ((rv = ps->p11->C_Initialize(&ia)) != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		bench_die("C_Initialize: 0x%lx", (unsigned long)rv);
	if ((u = p11_kit_uri_new()) == NULL ||
	    p11_kit_uri_parse(ps->uri, P11_KIT_URI_FOR_TOKEN, u) != P11_KIT_URI_OK)
		bench_die("%s: not a token URI", ps->uri);
	if ((rv = ps->p11->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK)
		bench_die("C_GetSlotList: 0x%lx", (unsigned long)rv);
	for (i = 0; i < nslots; i++)
		if (ps->p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    p11_kit_uri_match_token_info(u, &ti)) {
			slot = slots[i];
			n++;
		}
	p11_kit_uri_free(u);
	if (n != 1)
		bench_die("%lu tokens match %s", (unsigned long)n, ps->uri);
	if ((rv = ps->p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ps->sess)) != CKR_OK)
		bench_die("C_OpenSession: 0x%lx", (unsigned long)rv);
	rv = ps->p11->C_Login(ps->sess, CKU_USER, (CK_UTF8CHAR_PTR)ps->pin,
	    (CK_ULONG)strlen(ps->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		bench_die("C_Login: 0x%lx", (unsigned long)rv);
	tmpl[0].type = CKA_CLASS;
	tmpl[0].pValue = &cls;
	tmpl[0].ulValueLen = sizeof(cls);
	tmpl[1].type = CKA_ID;
	tmpl[1].pValue = (void *)ps->key_id;
	tmpl[1].ulValueLen = (CK_ULONG)ps->key_id_len;
	n = 0;
	if ((rv = ps->p11->C_FindObjectsInit(ps->sess, tmpl, 2)) != CKR_OK ||
	    (rv = ps->p11->C_FindObjects(ps->sess, &ps->key, 1, &n)) != CKR_OK ||
	    (rv = ps->p11->C_FindObjectsFinal(ps->sess)) != CKR_OK || n != 1)
		bench_die("finding the CA key: 0x%lx, %lu found", (unsigned long)rv,
		    (unsigned long)n);
}

static int
parts_prehash_sign(struct parts_signer *ps, const unsigned char *tbs, size_t tbs_len,
    unsigned char *sig, size_t *sig_len)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	unsigned char md[64], rs[132], *p;
	unsigned int mdlen = 0;
	CK_ULONG rslen = sizeof(rs);
	ECDSA_SIG *es;
	BIGNUM *br, *bs;
	uint64_t t0, t1, t2;
	int n;

	t0 = bench_now_ns();
	if (EVP_Digest(tbs, tbs_len, md, &mdlen, ps->alg == TCA_SIG_ECDSA_SHA384 ?
	    EVP_sha384() : EVP_sha256(), NULL) != 1)
		return TCA_ERR_CRYPTO;
	t1 = bench_now_ns();
	if (ps->p11->C_SignInit(ps->sess, &m, ps->key) != CKR_OK ||
	    ps->p11->C_Sign(ps->sess, md, mdlen, rs, &rslen) != CKR_OK || rslen % 2 != 0)
		return TCA_ERR_TOKEN_UNAVAILABLE;
	t2 = bench_now_ns();
	ps->hash_ns += t1 - t0;
	ps->csign_ns += t2 - t1;
	/* r||s -> ECDSA-Sig-Value, as the token layer converts it */
	if ((es = ECDSA_SIG_new()) == NULL)
		return TCA_ERR_NOMEM;
	br = BN_bin2bn(rs, (int)(rslen / 2), NULL);
	bs = BN_bin2bn(rs + rslen / 2, (int)(rslen / 2), NULL);
	if (br == NULL || bs == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
		BN_free(br);
		BN_free(bs);
		ECDSA_SIG_free(es);
		return TCA_ERR_NOMEM;
	}
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || (size_t)n > *sig_len) {
		ECDSA_SIG_free(es);
		return TCA_ERR_INVALID_ARG;
	}
	p = sig;
	n = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	*sig_len = (size_t)n;
	return TCA_OK;
}

static int
parts_sign(void *ctx, const unsigned char *tbs, size_t tbs_len, unsigned char *sig,
    size_t *sig_len)
{
	struct parts_signer *ps = ctx;
	uint64_t t0 = bench_now_ns();
	int r;

	if (!ps->prehash) {
		r = ps->token.sign(ps->token.ctx, tbs, tbs_len, sig, sig_len);
		ps->sign_ns += bench_now_ns() - t0;
		if (!(r == TCA_ERR_INVALID_ARG && tbs_len > TCA_TOKEN_MAX_MSG))
			return r;
		/* the token layer takes at most TCA_TOKEN_MAX_MSG octets */
		ps->refused = 1;
		ps->refused_r = r;
		ps->refused_len = tbs_len;
		if (ps->alg != TCA_SIG_ECDSA_SHA256 && ps->alg != TCA_SIG_ECDSA_SHA384)
			return r;
		fprintf(stderr, "%s: crlparts: the token layer refused to sign %zu octets (%s); "
		    "signing the digest with C_Sign instead\n", bench_progname, tbs_len,
		    tca_strerror(r));
		parts_p11_open(ps);
		ps->prehash = 1;
		t0 = bench_now_ns();
	}
	r = parts_prehash_sign(ps, tbs, tbs_len, sig, sig_len);
	ps->sign_ns += bench_now_ns() - t0;
	return r;
}

static int
cmd_crlparts(const struct opts *o)
{
	struct tca_token_params tp;
	struct tca_crl_params cp;
	struct tca_crl_row crow;
	struct tca_ca_row row;
	struct tca_change chg, *chgp = &chg;
	struct tca_signer signer;
	struct parts_signer ps;
	struct tca_issuer *iss = NULL;
	struct entries es;
	enum tca_key_type kt;
	tca_token *tok = NULL;
	tca_store *st = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0, i, n = o->repeat, done = 0;
	double *get_ms, *read_ms, *build_ms, *sign_ms, *hash_ms, *csign_ms, *commit_ms, *total_ms;
	char pin[256], err[256], why[256] = "", details[160];
	uint64_t t0, t1, t2, t3, t4, number = 0;
	long long entries = -1;
	int64_t now;
	int r, res, bad = 0;
	FILE *f;

	if (o->db == NULL || o->module == NULL || o->uri == NULL || o->pin_file == NULL ||
	    o->tenant == NULL || n == 0)
		bench_die("crlparts: --db, --module, --uri, --pin-file, --tenant, --repeat >= 1 needed");
	if ((r = tca_store_open(o->db, 0, &st, err, sizeof(err))) != TCA_OK)
		bench_die("crlparts: %s", err);
	memset(&row, 0, sizeof(row));
	if ((r = st->ops->get_ca(st, o->tenant, &row)) != TCA_OK)
		bench_die("crlparts: tenant %s: get_ca: %s", o->tenant, tca_strerror(r));
	if (tca_issuer_new(row.cert_der, row.cert_der_len, &iss) != TCA_OK ||
	    tca_key_type_from_name(row.key_type, &kt) != TCA_OK)
		bench_die("crlparts: the CA of %s does not load", o->tenant);
	bench_read_pin(o->pin_file, pin, sizeof(pin));
	memset(&tp, 0, sizeof(tp));
	tp.module_path = o->module;
	tp.token_uri = o->uri;
	tp.pool_size = 1;
	if ((r = tca_token_open(&tp, pin, strlen(pin), &tok, err, sizeof(err))) != TCA_OK)
		bench_die("token: %s", err);
	memset(&ps, 0, sizeof(ps));
	ps.module = o->module;
	ps.uri = o->uri;
	ps.pin = pin;
	ps.key_id = row.key_id;
	ps.key_id_len = row.key_id_len;
	ps.alg = tca_key_type_sig_alg(kt);
	/* exactly the engine's signer (tca_engine_signer_for) */
	tca_token_signer_init(&ps.tctx, tok, row.key_id, ps.alg, &ps.token);
	signer.alg = ps.alg;
	signer.sign = parts_sign;
	signer.ctx = &ps;
	get_ms = bench_xcalloc(n, sizeof(double));
	read_ms = bench_xcalloc(n, sizeof(double));
	build_ms = bench_xcalloc(n, sizeof(double));
	sign_ms = bench_xcalloc(n, sizeof(double));
	hash_ms = bench_xcalloc(n, sizeof(double));
	csign_ms = bench_xcalloc(n, sizeof(double));
	commit_ms = bench_xcalloc(n, sizeof(double));
	total_ms = bench_xcalloc(n, sizeof(double));
	for (i = 0; i < n; i++) {
		memset(&es, 0, sizeof(es));
		memset(&crow, 0, sizeof(crow));
		now = (int64_t)time(NULL);
		ps.sign_ns = ps.hash_ns = ps.csign_ns = 0;
		/* revocation.c crl_sign_once, step by step */
		t0 = bench_now_ns();
		r = st->ops->crl_get(st, o->tenant, &crow);
		if (r != TCA_OK && r != TCA_ERR_NOT_FOUND)
			bench_die("crlparts: crl_get: %s", tca_strerror(r));
		t1 = bench_now_ns();
		if ((r = st->ops->revoked_foreach(st, o->tenant, now, collect_entry, &es)) != TCA_OK)
			bench_die("crlparts: revoked_foreach: %s", tca_strerror(r));
		t2 = bench_now_ns();
		memset(&cp, 0, sizeof(cp));
		cp.crl_number = crow.next_number;
		cp.this_update = now;
		cp.next_update = now + 168 * 3600;	/* crl.validity_hours default */
		if ((r = tca_crl_build(iss, &signer, &cp, es.v, es.n, &der, &der_len)) != TCA_OK)
			bench_die("crlparts: tca_crl_build (%zu entries): %s", es.n, tca_strerror(r));
		t3 = bench_now_ns();
		snprintf(details, sizeof(details), "crl_number=%llu entries=%zu (tca-bench-client "
		    "crlparts)", (unsigned long long)cp.crl_number, es.n);
		memset(&chg, 0, sizeof(chg));
		chg.kind = TCA_CHANGE_CRL_PUBLISH;
		chg.op = "crl";
		chg.tenant = o->tenant;
		chg.time_ms = (int64_t)(bench_wall_ns() / 1000000ULL);
		chg.who.uid = (uint32_t)getuid();
		chg.who.gid = (uint32_t)getgid();
		chg.who.pid = (int32_t)getpid();
		chg.crl_der = der;
		chg.crl_len = der_len;
		chg.crl_number = cp.crl_number;
		chg.this_update = cp.this_update;
		chg.next_update = cp.next_update;
		chg.crl_entries = es.n;
		chg.details = details;
		if ((r = st->ops->commit(st, &chgp, 1, &res)) != TCA_OK || res != TCA_OK)
			bench_die("crlparts: commit: %s", tca_strerror(r != TCA_OK ? r : res));
		t4 = bench_now_ns();
		get_ms[i] = (double)(t1 - t0) / 1e6;
		read_ms[i] = (double)(t2 - t1) / 1e6;
		build_ms[i] = (double)(t3 - t2) / 1e6;
		sign_ms[i] = (double)ps.sign_ns / 1e6;
		hash_ms[i] = (double)ps.hash_ns / 1e6;
		csign_ms[i] = (double)ps.csign_ns / 1e6;
		commit_ms[i] = (double)(t4 - t3) / 1e6;
		total_ms[i] = (double)(t4 - t0) / 1e6;
		fprintf(stderr, "%s: crlparts: CRL %llu, %zu entries, %zu octets: crl_get %.1f, "
		    "revoked_foreach %.1f, build %.1f (signer %.1f), commit %.1f = %.1f ms\n",
		    bench_progname, (unsigned long long)cp.crl_number, es.n, der_len, get_ms[i],
		    read_ms[i], build_ms[i], sign_ms[i], commit_ms[i], total_ms[i]);
		if (i == n - 1 && crl_verify(der, der_len, row.cert_der, row.cert_der_len,
		    &entries, &number, why, sizeof(why)) != 0)
			bad = 1;
		if (!bad && i == n - 1 && (entries != (long long)es.n || number != cp.crl_number)) {
			snprintf(why, sizeof(why), "the CRL lists %lld entries (%zu read), number %llu",
			    entries, es.n, (unsigned long long)number);
			bad = 1;
		}
		done++;
		OPENSSL_free(der);
		der = NULL;
		free(es.v);
		free(es.serials);
		tca_crl_row_clear(&crow);
	}
	OPENSSL_cleanse(pin, sizeof(pin));
	f = bench_results_open(o->out);
	bench_json_begin(f, "crlparts");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "tenant", o->tenant);
	bench_json_str(f, "key_type", row.key_type);
	bench_json_int(f, "rounds", (long long)done);
	bench_json_int(f, "entries", entries);
	bench_json_int(f, "bytes", (long long)der_len);
	bench_json_str(f, "signer", ps.prehash ? "prehash-c-sign" : "token");
	bench_json_int(f, "token_refused", ps.refused);
	if (ps.refused) {
		bench_json_int(f, "token_refused_octets", (long long)ps.refused_len);
		bench_json_str(f, "token_refused_error", tca_strerror(ps.refused_r));
		bench_json_int(f, "token_max_msg", TCA_TOKEN_MAX_MSG);
	}
	json_ms_array(f, "crl_get_ms", get_ms, done);
	json_ms_array(f, "read_ms", read_ms, done);
	json_ms_array(f, "build_ms", build_ms, done);
	json_ms_array(f, "signer_ms", sign_ms, done);
	json_ms_array(f, "hash_ms", hash_ms, done);
	json_ms_array(f, "c_sign_ms", csign_ms, done);
	json_ms_array(f, "commit_ms", commit_ms, done);
	json_ms_array(f, "total_ms", total_ms, done);
	bench_json_num(f, "crl_get_ms_median", median_of(get_ms, done));
	bench_json_num(f, "read_ms_median", median_of(read_ms, done));
	bench_json_num(f, "build_ms_median", median_of(build_ms, done));
	bench_json_num(f, "signer_ms_median", median_of(sign_ms, done));
	bench_json_num(f, "commit_ms_median", median_of(commit_ms, done));
	bench_json_num(f, "total_ms_median", median_of(total_ms, done));
	bench_json_int(f, "verified", !bad);
	if (bad)
		bench_json_str(f, "verify_error", why);
	bench_json_end(f);
	bench_results_close(f);
	if (bad)
		fprintf(stderr, "%s: crlparts: the CRL does NOT verify: %s\n", bench_progname, why);
	free(get_ms);
	free(read_ms);
	free(build_ms);
	free(sign_ms);
	free(hash_ms);
	free(csign_ms);
	free(commit_ms);
	free(total_ms);
	tca_token_close(tok);
	tca_issuer_free(iss);
	tca_ca_row_clear(&row);
	st->ops->close(st);
	return bad;
}

/* ------------------------------------------------------------ ready */

static int
cmd_ready(const struct opts *o)
{
	struct tca_client_error err;
	struct timespec ts = { 0, 1000000 };
	cbor_item_t *res = NULL;
	tca_client *c = NULL;
	uint64_t deadline = bench_now_ns() +
	    (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 60000) * 1000000ULL;
	uint64_t now, t0, t1, cnt[3];
	int r;
	FILE *f;

	if (o->socket == NULL || o->since_ns == 0)
		bench_die("ready: --socket and --since-ns needed");
	for (;;) {
		memset(&err, 0, sizeof(err));
		if (tca_client_connect(o->socket, 5000, &c, &err) == TCA_CLIENT_OK) {
			t0 = bench_now_ns();
			r = tca_client_call(c, "status", NULL, &res, &err);
			t1 = bench_now_ns();
			tca_client_close(c);
			c = NULL;
			if (r == TCA_CLIENT_OK) {
				now = bench_wall_ns();
				if (o->out != NULL) {
					f = bench_results_open(o->out);
					bench_json_begin(f, "ready");
					bench_json_str(f, "label", o->label != NULL ? o->label : "");
					bench_json_num(f, "startup_ms", (double)(now - o->since_ns) / 1e6);
					bench_json_num(f, "status_ms", (double)(t1 - t0) / 1e6);
					bench_json_int(f, "answered_ns", (long long)now);
					if (status_counts(res, cnt) == 0) {
						bench_json_int(f, "valid", (long long)cnt[0]);
						bench_json_int(f, "revoked", (long long)cnt[1]);
						bench_json_int(f, "expired", (long long)cnt[2]);
					}
					bench_json_end(f);
					bench_results_close(f);
				}
				cbor_decref(&res);
				printf("%.1f\n", (double)(now - o->since_ns) / 1e6);
				return 0;
			}
		}
		if (bench_now_ns() > deadline)
			bench_die("the engine did not answer within %d ms", o->timeout_ms);
		nanosleep(&ts, NULL);
	}
}

/* ------------------------------------------------------------ main */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: tca-bench-client load --socket S --clients N --seconds S --csr-type ec-p256|rsa-2048\n"
	    "                        [--tenants N] [--warmup S] [--csrs N] [--csr-cache DIR]\n"
	    "                        [--rate R] [--engine-pid PID] [--label L] [--out FILE]\n"
	    "                        [--window-file F] [--stop-file F] [--timeline]\n"
	    "                        [--op issue|ocsp [--ocsp-pool N] [--ocsp-revoked N]]\n"
	    "       tca-bench-client crl --socket S --tenant T [--repeat N] [--fetch N] [--expect N]\n"
	    "                        [--crl-out FILE] [--engine-pid PID] [--label L] [--out FILE]\n"
	    "       tca-bench-client revpop --db FILE --tenant T --count N [--batch B]\n"
	    "                        [--der-bytes N] [--out FILE]\n"
	    "       tca-bench-client commits --db URI --tenant T --batch B --seconds S\n"
	    "                        [--clients K] [--warmup S] [--label L] [--out FILE]\n"
	    "       tca-bench-client invpop --db FILE --count N [--per-tenant P]\n"
	    "                        [--revoked-per-tenant R] [--batch B] [--der-bytes N] [--grouped]\n"
	    "                        [--out FILE]\n"
	    "       tca-bench-client inventory --socket S --tenant T [--repeat N] [--device D]\n"
	    "                        [--page-limit L] [--since-ns T0 [--stale-s S]] [--engine-pid PID]\n"
	    "                        [--label L] [--out FILE]\n"
	    "       tca-bench-client invparts --db FILE --tenant T [--repeat N] [--device D]\n"
	    "                        [--label L] [--out FILE]\n"
	    "       tca-bench-client crlparts --db FILE --module M --uri U --pin-file F --tenant T\n"
	    "                        [--repeat N] [--label L] [--out FILE]\n"
	    "       tca-bench-client mkca --socket S --count N [--connections K] [--out FILE]\n"
	    "       tca-bench-client ready --socket S --since-ns T [--timeout-ms MS]\n"
	    "                        [--label L --out FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "csr-type", required_argument, NULL, 't' },
		{ "csrs", required_argument, NULL, 'n' },
		{ "csr-cache", required_argument, NULL, 'C' },
		{ "tenants", required_argument, NULL, 'T' },
		{ "label", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'N' },
		{ "connections", required_argument, NULL, 'k' },
		{ "since-ns", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'r' },
		{ "engine-pid", required_argument, NULL, 'p' },
		{ "stop-file", required_argument, NULL, 'X' },
		{ "timeline", no_argument, NULL, 'L' },
		{ "window-file", required_argument, NULL, 'W' },
		{ "op", required_argument, NULL, 256 },
		{ "ocsp-pool", required_argument, NULL, 257 },
		{ "ocsp-revoked", required_argument, NULL, 258 },
		{ "tenant", required_argument, NULL, 259 },
		{ "db", required_argument, NULL, 260 },
		{ "module", required_argument, NULL, 261 },
		{ "uri", required_argument, NULL, 262 },
		{ "pin-file", required_argument, NULL, 263 },
		{ "batch", required_argument, NULL, 264 },
		{ "der-bytes", required_argument, NULL, 265 },
		{ "repeat", required_argument, NULL, 266 },
		{ "fetch", required_argument, NULL, 267 },
		{ "expect", required_argument, NULL, 268 },
		{ "crl-out", required_argument, NULL, 269 },
		{ "per-tenant", required_argument, NULL, 270 },
		{ "revoked-per-tenant", required_argument, NULL, 271 },
		{ "device", required_argument, NULL, 272 },
		{ "page-limit", required_argument, NULL, 273 },
		{ "stale-s", required_argument, NULL, 274 },
		{ "grouped", no_argument, NULL, 275 },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o;
	const char *cmd;
	int ch;

	memset(&o, 0, sizeof(o));
	o.csr_type = "ec-p256";
	o.tenants = 1;
	o.ncsrs = 256;
	o.warmup = 1.0;
	o.op = "issue";
	o.ocsp_pool = 200;
	o.ocsp_revoked = 50;
	o.batch = 1000;
	o.der_bytes = 560;
	o.repeat = 3;
	o.fetch = 3;
	o.expect = -1;
	o.per_tenant = 100;
	o.revoked_per = 5;
	o.page_limit = 10;
	o.stale_s = 31;
	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'c': o.clients = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'S': o.seconds = strtod(optarg, NULL); break;
		case 'w': o.warmup = strtod(optarg, NULL); break;
		case 't': o.csr_type = optarg; break;
		case 'n': o.ncsrs = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'C': o.csr_cache = optarg; break;
		case 'T': o.tenants = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'l': o.label = optarg; break;
		case 'o': o.out = optarg; break;
		case 'N': o.count = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'k': o.connections = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'i': o.since_ns = strtoull(optarg, NULL, 10); break;
		case 'm': o.timeout_ms = atoi(optarg); break;
		case 'r': o.rate = strtod(optarg, NULL); break;
		case 'p': o.engine_pid = atoi(optarg); break;
		case 'X': o.stop_file = optarg; break;
		case 'L': o.timeline = 1; break;
		case 'W': o.window_file = optarg; break;
		case 256: o.op = optarg; break;
		case 257: o.ocsp_pool = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 258: o.ocsp_revoked = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 259: o.tenant = optarg; break;
		case 260: o.db = optarg; break;
		case 261: o.module = optarg; break;
		case 262: o.uri = optarg; break;
		case 263: o.pin_file = optarg; break;
		case 264: o.batch = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 265: o.der_bytes = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 266: o.repeat = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 267: o.fetch = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 268: o.expect = strtoll(optarg, NULL, 10); break;
		case 269: o.crl_out = optarg; break;
		case 270: o.per_tenant = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 271: o.revoked_per = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 272: o.device = optarg; break;
		case 273: o.page_limit = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 274: o.stale_s = strtod(optarg, NULL); break;
		case 275: o.grouped = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (strcmp(cmd, "load") == 0)
		return cmd_load(&o);
	if (strcmp(cmd, "mkca") == 0)
		return cmd_mkca(&o);
	if (strcmp(cmd, "ready") == 0)
		return cmd_ready(&o);
	if (strcmp(cmd, "crl") == 0)
		return cmd_crl(&o);
	if (strcmp(cmd, "inventory") == 0)
		return cmd_inventory(&o);
	if (strcmp(cmd, "invpop") == 0 || strcmp(cmd, "invparts") == 0) {
		tca_log_init(bench_progname, 0, LOG_WARNING);
		return strcmp(cmd, "invpop") == 0 ? cmd_invpop(&o) : cmd_invparts(&o);
	}
	if (strcmp(cmd, "commits") == 0) {
		tca_log_init(bench_progname, 0, LOG_WARNING);
		return cmd_commits(&o);
	}
	if (strcmp(cmd, "revpop") == 0 || strcmp(cmd, "crlparts") == 0) {
		tca_log_init(bench_progname, 0, LOG_WARNING);
		return strcmp(cmd, "revpop") == 0 ? cmd_revpop(&o) : cmd_crlparts(&o);
	}
	usage();
	return 2;
}
