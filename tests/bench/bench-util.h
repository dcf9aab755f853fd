/*
 * bench-util.h - shared by the benchmark programs (tests/bench/): clocks,
 * latency recording and percentiles, device CSR generation, JSON result lines.
 *
 * Benchmarks are measurement tools, not part of the engine: they abort with a
 * message on set-up failures (out of memory, unreadable files) instead of
 * propagating error codes, so that a broken run never produces numbers.
 */
#ifndef TCA_BENCH_UTIL_H
#define TCA_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/* CLOCK_REALTIME in nanoseconds (to compare with `date +%s%N`). */
uint64_t bench_wall_ns(void);

/* CPU time (user + system, all threads) of process pid in nanoseconds, from
 * /proc/PID/stat (clock-tick resolution); pid 0: this process, from
 * CLOCK_PROCESS_CPUTIME_ID.  Exits on failure. */
uint64_t bench_cpu_ns(int pid);

/* Sleeps until the CLOCK_MONOTONIC time t_ns. */
void bench_sleep_until(uint64_t t_ns);

/* Prints "prog: message" and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *bench_xmalloc(size_t n);
void *bench_xcalloc(size_t n, size_t sz);

/* Latencies of one thread: growable array of nanoseconds. */
struct bench_lat {
	uint64_t *v;
	size_t n, cap;
};
void bench_lat_add(struct bench_lat *l, uint64_t ns);
void bench_lat_free(struct bench_lat *l);

/* Summary of a measurement: every latency of every thread, sorted. */
struct bench_summary {
	uint64_t ops;		/* operations completed in the window */
	uint64_t errors;	/* operations that failed in the window */
	double seconds;		/* length of the measurement window */
	double rate;		/* ops / seconds */
	double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
	double cpu_ms_per_op;	/* CPU time of the measured process in the window / ops; <0 unknown */
};
/* Merges lats[0..n) (each left intact), sorts, fills s (ops from the merged
 * count; errors and seconds must be set by the caller beforehand). */
void bench_summarize(struct bench_lat *lats, size_t n, struct bench_summary *s);

/* Device keys and CSRs, DER.  Subject CN=<prefix><i>, O=Thin Edge, OU=Device,
 * as thin-edge makes them.  type: "ec-p256" or "rsa-2048". */
struct bench_csr {
	unsigned char *der;
	size_t len;
	char device_id[64];
};
/* Makes n CSRs.  When cache_dir is non-NULL, CSRs are read from / written to
 * cache_dir/csr-<type>-<i>.der (RSA key generation is slow).  Caller frees
 * with bench_csrs_free(). */
struct bench_csr *bench_csrs_make(const char *type, size_t n, const char *cache_dir);
void bench_csrs_free(struct bench_csr *c, size_t n);

/* Reads a whole file (NUL-terminated); exits on failure. */
unsigned char *bench_read_file(const char *path, size_t *len_ptr);

/* Reads the first line of a PIN file into pin (capacity pinsz); exits on failure. */
void bench_read_pin(const char *path, char *pin, size_t pinsz);

/*
 * One JSON result line: bench_json_begin(f, "kind") writes `{"kind":"..."`,
 * the _str/_num/_int helpers add fields, bench_json_summary adds the summary
 * fields, bench_json_end closes the object and the line.  Strings are escaped.
 */
void bench_json_begin(FILE *f, const char *kind);
void bench_json_str(FILE *f, const char *key, const char *val);
void bench_json_num(FILE *f, const char *key, double val);
void bench_json_int(FILE *f, const char *key, long long val);
/* json: already valid JSON text (an array, say), written as it is */
void bench_json_raw(FILE *f, const char *key, const char *json);
void bench_json_summary(FILE *f, const struct bench_summary *s);
void bench_json_end(FILE *f);

/* Opens the results file for appending (path "-" or NULL: stdout). */
FILE *bench_results_open(const char *path);
void bench_results_close(FILE *f);

/* xorshift64* per-thread generator, for picking tenants uniformly. */
uint64_t bench_rand_next(uint64_t *state);

/* Tenant name used by the harness: "t" followed by five digits. */
void bench_tenant_name(unsigned int i, char *out, size_t outsz);

/* A start barrier and a shared stop time for the measurement threads. */
struct bench_clock {
	uint64_t start_ns;	/* warm-up begins */
	uint64_t window_ns;	/* measurement begins */
	uint64_t end_ns;	/* measurement ends */
};
void bench_clock_set(struct bench_clock *c, double warmup_s, double seconds);

#endif
