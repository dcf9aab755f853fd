/*
 * bench-client.c - tca-bench-client: drives the real daemon over its socket
 * with libtca-client.
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
 *   tca-bench-client mkca  --socket S --count N [--connections K] [--out FILE]
 *       creates tenant CAs t00000..t<N-1> with ca.create over K connections in
 *       parallel (tenants that already exist are counted, not an error).
 *   tca-bench-client ready --socket S --since-ns T [--timeout-ms MS]
 *       polls until the engine answers `status`; prints the milliseconds since
 *       T (CLOCK_REALTIME ns, as from `date +%s%N`): the start-up time.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cbor.h>
#include <openssl/x509.h>

#include "bench-util.h"
#include "tca-client.h"

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
};

/* ------------------------------------------------------------ load */

struct load_shared {
	const struct opts *o;
	const struct bench_csr *csrs;
	size_t ncsrs;
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
};

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
	char tenant[16];
	X509 *x;
	int r;

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

		k += o->clients;
		bench_tenant_name(o->tenants <= 1 ? 0 :
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
		r = c == NULL ? TCA_ERR_SYSTEM : tca_client_issue(c, tenant, csr->device_id,
		    csr->der, csr->len, 0, &cert, &cert_len, &err);
		t1 = bench_now_ns();
		if (r == TCA_CLIENT_OK && !t->verified) {
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
			if (r == TCA_CLIENT_OK) {
				bench_lat_add(&t->lat, t1 - t0);
				if (sh->o->timeline)
					bench_lat_add(&t->at, t1 - sh->clk.window_ns);
			} else
				t->errors++;
		}
		if (r != TCA_CLIENT_OK) {
			note_error(sh, "issue", r, &err);
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

static int
cmd_load(const struct opts *o)
{
	struct load_shared sh;
	struct load_thread *ts;
	struct bench_lat *lats;
	struct bench_summary s;
	FILE *f;
	unsigned int i;
	uint64_t reconnects = 0, cpu0 = 0, cpu1 = 0, end = 0;
	char *timeline = NULL;
	int by_file = 0;

	if (o->socket == NULL || o->clients == 0 || o->seconds <= 0 || o->ncsrs == 0)
		bench_die("load: --socket, --clients >= 1, --seconds > 0 needed");
	if (o->stop_file != NULL && access(o->stop_file, F_OK) == 0)
		bench_die("load: the stop file %s exists already", o->stop_file);
	memset(&sh, 0, sizeof(sh));
	sh.o = o;
	sh.ncsrs = o->ncsrs;
	fprintf(stderr, "%s: preparing %u %s CSRs\n", bench_progname, o->ncsrs, o->csr_type);
	sh.csrs = bench_csrs_make(o->csr_type, o->ncsrs, o->csr_cache);
	pthread_mutex_init(&sh.err_lock, NULL);
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
		if (o->window_file != NULL)
			touch_file(o->window_file);
		end = wait_window_end(&sh, o->stop_file, &by_file);
		if (o->engine_pid > 0)
			cpu1 = bench_cpu_ns(o->engine_pid);
	}
	lats = bench_xcalloc(o->clients, sizeof(*lats));
	for (i = 0; i < o->clients; i++) {
		pthread_join(ts[i].th, NULL);
		s.errors += ts[i].errors;
		reconnects += ts[i].reconnects;
	}
	/* a stop file ends the window early: the rate is over its real length */
	s.seconds = by_file ? (double)(end - sh.clk.window_ns) / 1e9 : o->seconds;
	/* before bench_summarize() sorts the latencies */
	if (o->timeline)
		timeline = timeline_json(ts, o->clients, s.seconds);
	for (i = 0; i < o->clients; i++)
		lats[i] = ts[i].lat;
	bench_summarize(lats, o->clients, &s);
	s.cpu_ms_per_op = o->engine_pid > 0 && s.ops > 0 ?
	    (double)(cpu1 - cpu0) / 1e6 / (double)s.ops : -1.0;
	f = bench_results_open(o->out);
	bench_json_begin(f, "engine");
	bench_json_str(f, "label", o->label != NULL ? o->label : "");
	bench_json_str(f, "csr_type", o->csr_type);
	bench_json_int(f, "clients", o->clients);
	bench_json_int(f, "tenants", o->tenants);
	bench_json_num(f, "offered_rate", o->rate);
	bench_json_summary(f, &s);
	bench_json_int(f, "reconnects", (long long)reconnects);
	if (o->stop_file != NULL)
		bench_json_int(f, "stopped_by_file", by_file);
	if (timeline != NULL)
		bench_json_raw(f, "timeline", timeline);
	if (sh.first_error[0] != '\0')
		bench_json_str(f, "first_error", sh.first_error);
	bench_json_end(f);
	bench_results_close(f);
	fprintf(stderr, "%s: engine %s clients=%u tenants=%u: %.1f certs/s, p50 %.2f p90 %.2f "
	    "p99 %.2f max %.2f ms, %llu errors\n", bench_progname, o->csr_type, o->clients,
	    o->tenants, s.rate, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms,
	    (unsigned long long)s.errors);
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
	pthread_barrier_destroy(&sh.barrier);
	pthread_mutex_destroy(&sh.err_lock);
	return s.errors > 0 || s.ops == 0;
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
	uint64_t now;
	int r;

	if (o->socket == NULL || o->since_ns == 0)
		bench_die("ready: --socket and --since-ns needed");
	for (;;) {
		memset(&err, 0, sizeof(err));
		if (tca_client_connect(o->socket, 5000, &c, &err) == TCA_CLIENT_OK) {
			r = tca_client_call(c, "status", NULL, &res, &err);
			tca_client_close(c);
			c = NULL;
			if (r == TCA_CLIENT_OK) {
				now = bench_wall_ns();
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
	    "       tca-bench-client mkca --socket S --count N [--connections K] [--out FILE]\n"
	    "       tca-bench-client ready --socket S --since-ns T [--timeout-ms MS]\n");
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
	usage();
	return 2;
}
