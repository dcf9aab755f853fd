/*
 * bench-util.c - see bench-util.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "bench-util.h"

extern const char *bench_progname;

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t
bench_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t
bench_cpu_ns(int pid)
{
	struct timespec ts;
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	long tck;
	size_t n;
	FILE *f;
	int i;

	if (pid == 0) {
		if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
			bench_die("clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
		return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		bench_die("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces: fields count from the last ')' */
	if ((p = strrchr(buf, ')')) == NULL)
		bench_die("%s: unexpected format", path);
	/* after ")": state is field 3; utime and stime are fields 14 and 15 */
	for (i = 3; i <= 14 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &ut, &st) != 2)
		bench_die("%s: unexpected format", path);
	if ((tck = sysconf(_SC_CLK_TCK)) <= 0)
		bench_die("sysconf(_SC_CLK_TCK) failed");
	return (ut + st) * (1000000000ULL / (unsigned long long)tck);
}

void
bench_sleep_until(uint64_t t_ns)
{
	struct timespec due;

	due.tv_sec = (time_t)(t_ns / 1000000000ULL);
	due.tv_nsec = (long)(t_ns % 1000000000ULL);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) != 0)
		;
}

void
bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", bench_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *
bench_xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		bench_die("out of memory (%zu bytes)", n);
	return p;
}

void *
bench_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n == 0 ? 1 : n, sz == 0 ? 1 : sz);

	if (p == NULL)
		bench_die("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

void
bench_lat_add(struct bench_lat *l, uint64_t ns)
{
	uint64_t *nv;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap == 0 ? 4096 : l->cap * 2;
		if (ncap < l->cap || ncap > SIZE_MAX / sizeof(*nv))
			bench_die("latency array overflow");
		if ((nv = realloc(l->v, ncap * sizeof(*nv))) == NULL)
			bench_die("out of memory (latencies)");
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = ns;
}

void
bench_lat_free(struct bench_lat *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array */
static double
pct_ms(const uint64_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1e6;
}

void
bench_summarize(struct bench_lat *lats, size_t n, struct bench_summary *s)
{
	uint64_t *all;
	size_t total = 0, i, k = 0;
	double sum = 0.0;

	for (i = 0; i < n; i++)
		total += lats[i].n;
	all = bench_xmalloc(total * sizeof(*all));
	for (i = 0; i < n; i++) {
		if (lats[i].n > 0)
			memcpy(all + k, lats[i].v, lats[i].n * sizeof(*all));
		k += lats[i].n;
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	for (i = 0; i < total; i++)
		sum += (double)all[i];
	s->ops = total;
	s->rate = s->seconds > 0 ? (double)total / s->seconds : 0.0;
	s->p50_ms = pct_ms(all, total, 50);
	s->p90_ms = pct_ms(all, total, 90);
	s->p99_ms = pct_ms(all, total, 99);
	s->max_ms = total > 0 ? (double)all[total - 1] / 1e6 : 0.0;
	s->mean_ms = total > 0 ? sum / (double)total / 1e6 : 0.0;
	free(all);
}

/* ------------------------------------------------------------ CSRs */

static EVP_PKEY *
make_key(const char *type)
{
	EVP_PKEY *pk = NULL;

	if (strcmp(type, "ec-p256") == 0)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(type, "rsa-2048") == 0)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		bench_die("unknown CSR key type %s (ec-p256, rsa-2048)", type);
	if (pk == NULL)
		bench_die("%s key generation failed", type);
	return pk;
}

static void
make_csr(const char *type, const char *cn, unsigned char **der_ptr, size_t *len_ptr)
{
	EVP_PKEY *pk = make_key(type);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	int len;

	if (req == NULL || (name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Thin Edge", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
	    (const unsigned char *)"Device", -1, -1, 0) ||
	    !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, pk) ||
	    X509_REQ_sign(req, pk, EVP_sha256()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0)
		bench_die("building a %s CSR failed", type);
	*der_ptr = bench_xmalloc((size_t)len);
	memcpy(*der_ptr, der, (size_t)len);
	*len_ptr = (size_t)len;
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
}

static int
read_cached(const char *path, unsigned char **der_ptr, size_t *len_ptr)
{
	FILE *f = fopen(path, "rb");
	unsigned char buf[8192];
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == 0 || n == sizeof(buf))
		return -1;
	*der_ptr = bench_xmalloc(n);
	memcpy(*der_ptr, buf, n);
	*len_ptr = n;
	return 0;
}

static void
write_cached(const char *path, const unsigned char *der, size_t len)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	if ((f = fopen(tmp, "wb")) == NULL)
		return;
	if (fwrite(der, 1, len, f) != len || fclose(f) != 0) {
		unlink(tmp);
		return;
	}
	if (rename(tmp, path) != 0)
		unlink(tmp);
}

struct bench_csr *
bench_csrs_make(const char *type, size_t n, const char *cache_dir)
{
	struct bench_csr *c = bench_xcalloc(n, sizeof(*c));
	char path[4096];
	size_t i;

	if (cache_dir != NULL && mkdir(cache_dir, 0700) != 0 && errno != EEXIST)
		bench_die("mkdir %s: %s", cache_dir, strerror(errno));
	for (i = 0; i < n; i++) {
		snprintf(c[i].device_id, sizeof(c[i].device_id), "dev-%s-%06zu", type, i);
		if (cache_dir != NULL) {
			if (snprintf(path, sizeof(path), "%s/csr-%s-%06zu.der", cache_dir, type, i) >=
			    (int)sizeof(path))
				bench_die("cache path too long");
			if (read_cached(path, &c[i].der, &c[i].len) == 0)
				continue;
		}
		make_csr(type, c[i].device_id, &c[i].der, &c[i].len);
		if (cache_dir != NULL)
			write_cached(path, c[i].der, c[i].len);
	}
	return c;
}

void
bench_csrs_free(struct bench_csr *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		free(c[i].der);
	free(c);
}

unsigned char *
bench_read_file(const char *path, size_t *len_ptr)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		bench_die("%s: %s", path, strerror(errno));
	for (;;) {
		if (cap - len < 4096) {
			if (cap > (1U << 26))
				bench_die("%s: too large", path);
			cap = cap == 0 ? 8192 : cap * 2;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				bench_die("out of memory");
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		bench_die("%s: read error", path);
	fclose(f);
	buf[len] = '\0';
	*len_ptr = len;
	return buf;
}

void
bench_read_pin(const char *path, char *pin, size_t pinsz)
{
	unsigned char *buf;
	size_t len, i;

	buf = bench_read_file(path, &len);
	for (i = 0; i < len && buf[i] != '\n' && buf[i] != '\r'; i++)
		;
	if (i == 0 || i >= pinsz)
		bench_die("%s: no usable PIN on the first line", path);
	memcpy(pin, buf, i);
	pin[i] = '\0';
	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* ------------------------------------------------------------ JSON */

static int json_first;

static void
json_key(FILE *f, const char *key)
{
	const char *p;

	fputs(json_first ? "" : ",", f);
	json_first = 0;
	fputc('"', f);
	for (p = key; *p != '\0'; p++)
		fputc(*p, f);
	fputs("\":", f);
}

void
bench_json_begin(FILE *f, const char *kind)
{
	fputc('{', f);
	json_first = 1;
	bench_json_str(f, "kind", kind);
}

void
bench_json_str(FILE *f, const char *key, const char *val)
{
	const unsigned char *p;

	json_key(f, key);
	fputc('"', f);
	for (p = (const unsigned char *)val; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void
bench_json_num(FILE *f, const char *key, double val)
{
	json_key(f, key);
	fprintf(f, "%.3f", val);
}

void
bench_json_int(FILE *f, const char *key, long long val)
{
	json_key(f, key);
	fprintf(f, "%lld", val);
}

void
bench_json_raw(FILE *f, const char *key, const char *json)
{
	json_key(f, key);
	fputs(json, f);
}

void
bench_json_summary(FILE *f, const struct bench_summary *s)
{
	bench_json_num(f, "seconds", s->seconds);
	bench_json_int(f, "ops", (long long)s->ops);
	bench_json_int(f, "errors", (long long)s->errors);
	bench_json_num(f, "rate", s->rate);
	bench_json_num(f, "p50_ms", s->p50_ms);
	bench_json_num(f, "p90_ms", s->p90_ms);
	bench_json_num(f, "p99_ms", s->p99_ms);
	bench_json_num(f, "max_ms", s->max_ms);
	bench_json_num(f, "mean_ms", s->mean_ms);
	if (s->cpu_ms_per_op >= 0)
		bench_json_num(f, "cpu_ms_per_op", s->cpu_ms_per_op);
}

void
bench_json_end(FILE *f)
{
	fputs("}\n", f);
	fflush(f);
}

FILE *
bench_results_open(const char *path)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0)
		return stdout;
	if ((f = fopen(path, "a")) == NULL)
		bench_die("%s: %s", path, strerror(errno));
	return f;
}

void
bench_results_close(FILE *f)
{
	if (f != stdout && fclose(f) != 0)
		bench_die("writing the results file failed");
}

uint64_t
bench_rand_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void
bench_tenant_name(unsigned int i, char *out, size_t outsz)
{
	snprintf(out, outsz, "t%05u", i);
}

void
bench_clock_set(struct bench_clock *c, double warmup_s, double seconds)
{
	c->start_ns = bench_now_ns();
	c->window_ns = c->start_ns + (uint64_t)(warmup_s * 1e9);
	c->end_ns = c->window_ns + (uint64_t)(seconds * 1e9);
}
