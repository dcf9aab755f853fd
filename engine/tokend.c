/*
 * tokend.c - tca-tokend, the token helper (docs/architecture.md,
 * "Privilege separation").
 *
 * tca-engined starts it with token.isolation = process: fork + exec with
 * one socketpair end on each of the descriptors TOKP_FD_BASE ..
 * TOKP_FD_BASE + n - 1 and nothing else open beyond stdin/out/err.  It
 * reads the configuration (the token.* keys and the profile), reads the PIN
 * itself (token.pin_file, or the environment at the first start), opens the
 * token with the in-process token layer and serves token.h's functions over
 * the framing of token-proto.h, one thread per connection, one request at a
 * time each.  The engine never maps the module and never holds the PIN; if
 * the module crashes or hangs, this process dies (or is killed) instead of
 * the engine, which starts a new one.
 *
 * It exits when the engine closes the connections (EOF), after logging out
 * and finalizing the module.  Not for running by hand.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "conf.h"
#include "log.h"
#include "secret.h"
#include "tca-error.h"
#include "token.h"
#include "token-proto.h"
#include "wire.h"

static tca_token *tok;
static struct tca_config cfg;

/* ---- the operations: each decodes its checked args, calls token.h, builds res */

static int
get_id(const cbor_item_t *args, const unsigned char **id, size_t *id_len)
{
	return tca_map_get_bytes(args, "id", id, id_len);
}

static int
op_retry(const cbor_item_t *args, cbor_item_t *res, char *why, size_t whylen)
{
	char *pin = NULL;
	size_t pin_len = 0;
	int reread = 0, r;

	(void)tca_map_get_bool(args, "reread_pin", &reread);
	/* the operator reloads after fixing the PIN file: read it again (a PIN
	 * from the environment was taken at start and is reused) */
	if (reread && cfg.pin_file[0] != '\0') {
		if ((r = tca_secret_read_file(cfg.pin_file, &pin, &pin_len, why,
		    whylen)) != TCA_OK)
			return r;
		if ((r = tca_profile_check_pin(&cfg, pin_len, "the PIN", why,
		    whylen)) != TCA_OK) {
			tca_secret_free(pin, pin_len);
			return r;
		}
	}
	r = tca_token_retry(tok, pin, pin_len);
	tca_secret_free(pin, pin_len);
	return r;
}

static int
op_type(enum tokp_op op, const cbor_item_t *args, cbor_item_t *res)
{
	const unsigned char *id;
	size_t id_len;
	enum tca_key_type type = TCA_KEY_NONE;
	int r;

	if (get_id(args, &id, &id_len) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	r = op == TOKP_FIND_KEY ? tca_token_find_key(tok, id, id_len, &type) :
	    tca_token_check_key(tok, id, id_len, &type);
	if (r == TCA_OK && tca_map_add_uint(res, "type", (uint64_t)type) != TCA_OK)
		r = TCA_ERR_NOMEM;
	return r;
}

static int
op_key_types(cbor_item_t *res)
{
	const char *mech[TCA_KEY_TYPE_COUNT + 1];
	cbor_item_t *arr = NULL, *s;
	unsigned int mask, i;
	int r = TCA_ERR_NOMEM;

	memset(mech, 0, sizeof(mech));
	mask = tca_token_key_types(tok, mech);
	if ((arr = cbor_new_definite_array(TCA_KEY_TYPE_COUNT + 1)) == NULL)
		goto out;
	for (i = 0; i <= TCA_KEY_TYPE_COUNT; i++) {
		if ((s = cbor_build_string(mech[i] != NULL ? mech[i] : "")) == NULL)
			goto out;
		if (!cbor_array_push(arr, s)) {
			cbor_decref(&s);
			goto out;
		}
		cbor_decref(&s);
	}
	if (tca_map_add_uint(res, "mask", mask) != TCA_OK ||
	    tca_map_add_item(res, "mechs", arr) != TCA_OK)
		goto out;
	arr = NULL;
	r = TCA_OK;
 out:
	if (arr != NULL)
		cbor_decref(&arr);
	return r;
}

static int
op_generate(const cbor_item_t *args, cbor_item_t *res)
{
	const unsigned char *id;
	size_t id_len;
	char label[TOKP_MAX_LABEL + 1];
	uint64_t type;
	EVP_PKEY *pub = NULL;
	unsigned char *der = NULL;
	int len, r;

	if (get_id(args, &id, &id_len) != TCA_OK ||
	    tca_map_get_uint(args, "type", &type) != TCA_OK ||
	    type < 1 || type > TCA_KEY_TYPE_COUNT ||
	    tca_map_get_text(args, "label", label, sizeof(label)) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_token_generate_key(tok, (enum tca_key_type)type, id, id_len, label,
	    &pub)) != TCA_OK)
		return r;
	if ((len = i2d_PUBKEY(pub, &der)) <= 0 || len > TOKP_MAX_PUB)
		r = TCA_ERR_CRYPTO;
	else if (tca_map_add_bytes(res, "pub", der, (size_t)len) != TCA_OK)
		r = TCA_ERR_NOMEM;
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
	return r;
}

static int
op_sign(const cbor_item_t *args, cbor_item_t *res)
{
	const unsigned char *id, *msg;
	size_t id_len, msg_len, sig_len;
	unsigned char sig[TOKP_MAX_SIG];
	uint64_t alg, cap;
	int r;

	if (get_id(args, &id, &id_len) != TCA_OK ||
	    tca_map_get_uint(args, "alg", &alg) != TCA_OK ||
	    alg < 1 || alg > TCA_KEY_TYPE_COUNT ||
	    tca_map_get_bytes(args, "msg", &msg, &msg_len) != TCA_OK ||
	    tca_map_get_uint(args, "cap", &cap) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	sig_len = cap < sizeof(sig) ? (size_t)cap : sizeof(sig);
	if ((r = tca_token_sign(tok, id, id_len, (enum tca_sig_alg)alg, msg, msg_len, sig,
	    &sig_len)) != TCA_OK)
		return r;
	if (tca_map_add_bytes(res, "sig", sig, sig_len) != TCA_OK)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

static int
op_count(enum tokp_op op, const cbor_item_t *args, cbor_item_t *res)
{
	const unsigned char *id;
	size_t id_len;
	unsigned long n = 0;
	int r;

	if (op == TOKP_KEY_COUNT) {
		n = (unsigned long)tca_token_key_count(tok);
		r = TCA_OK;
	} else if (get_id(args, &id, &id_len) != TCA_OK) {
		return TCA_ERR_BAD_REQUEST;
	} else if (op == TOKP_DESTROY_KEY) {
		r = tca_token_destroy_key(tok, id, id_len, &n);
	} else {
		r = tca_token_count_objects(tok, id, id_len, &n);
	}
	if (r == TCA_OK && tca_map_add_uint(res, "count", n) != TCA_OK)
		r = TCA_ERR_NOMEM;
	return r;
}

static int
op_attrs(const cbor_item_t *args, cbor_item_t *res)
{
	const unsigned char *id;
	size_t id_len;
	struct tca_key_attrs a;
	int r;

	if (get_id(args, &id, &id_len) != TCA_OK)
		return TCA_ERR_BAD_REQUEST;
	if ((r = tca_token_key_attrs(tok, id, id_len, &a)) != TCA_OK)
		return r;
	if (tca_map_add_bool(res, "token", a.token) != TCA_OK ||
	    tca_map_add_bool(res, "private", a.private_) != TCA_OK ||
	    tca_map_add_bool(res, "sensitive", a.sensitive) != TCA_OK ||
	    tca_map_add_bool(res, "extractable", a.extractable) != TCA_OK ||
	    tca_map_add_bool(res, "sign", a.sign) != TCA_OK ||
	    tca_map_add_bool(res, "always_sensitive", a.always_sensitive) != TCA_OK ||
	    tca_map_add_bool(res, "never_extractable", a.never_extractable) != TCA_OK ||
	    tca_map_add_bool(res, "value_readable", a.value_readable) != TCA_OK)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

/* the key list is copied out of the index first (the callback runs under
 * its read lock), then encoded as a definite array */
struct key_copy {
	unsigned char id[TOKP_MAX_ID];
	size_t id_len;
	char label[TOKP_MAX_LABEL + 1];
	enum tca_key_type type;
};
struct key_list {
	struct key_copy *k;
	size_t n, cap;
};

static int
list_cb(void *ctx, const unsigned char *id, size_t id_len, const char *label,
    enum tca_key_type type)
{
	struct key_list *l = ctx;
	struct key_copy *nk;

	if (id_len == 0 || id_len > TOKP_MAX_ID)
		return 0;		/* never indexed; skip rather than fail */
	if (l->n == l->cap) {
		size_t ncap = l->cap != 0 ? l->cap * 2 : 64;

		if (ncap > TOKP_MAX_KEYS ||
		    (nk = realloc(l->k, ncap * sizeof(*nk))) == NULL)
			return TCA_ERR_NOMEM;
		l->k = nk;
		l->cap = ncap;
	}
	nk = &l->k[l->n++];
	memcpy(nk->id, id, id_len);
	nk->id_len = id_len;
	snprintf(nk->label, sizeof(nk->label), "%s", label != NULL ? label : "");
	nk->type = type;
	return 0;
}

static int
op_list(cbor_item_t *res)
{
	struct key_list l;
	cbor_item_t *arr = NULL, *m = NULL;
	size_t i;
	int r;

	memset(&l, 0, sizeof(l));
	if ((r = tca_token_foreach_key(tok, list_cb, &l)) != TCA_OK)
		goto out;
	r = TCA_ERR_NOMEM;
	if ((arr = cbor_new_definite_array(l.n)) == NULL)
		goto out;
	for (i = 0; i < l.n; i++) {
		if ((m = cbor_new_definite_map(3)) == NULL ||
		    tca_map_add_bytes(m, "id", l.k[i].id, l.k[i].id_len) != TCA_OK ||
		    tca_map_add_text(m, "label", l.k[i].label) != TCA_OK ||
		    tca_map_add_uint(m, "type", (uint64_t)l.k[i].type) != TCA_OK ||
		    !cbor_array_push(arr, m))
			goto out;
		cbor_decref(&m);	/* the array holds it now */
		m = NULL;
	}
	if (tca_map_add_item(res, "keys", arr) != TCA_OK)
		goto out;
	arr = NULL;
	r = TCA_OK;
 out:
	if (m != NULL)
		cbor_decref(&m);
	if (arr != NULL)
		cbor_decref(&arr);
	free(l.k);
	return r;
}

static int
op_status(cbor_item_t *res)
{
	struct tca_token_status st;
	int r;

	if ((r = tca_token_get_status(tok, &st)) != TCA_OK)
		return r;
	if (tca_map_add_text(res, "label", st.label) != TCA_OK ||
	    tca_map_add_text(res, "manufacturer", st.manufacturer) != TCA_OK ||
	    tca_map_add_text(res, "model", st.model) != TCA_OK ||
	    tca_map_add_text(res, "serial", st.serial) != TCA_OK ||
	    tca_map_add_uint(res, "slot", st.slot_id) != TCA_OK ||
	    tca_map_add_uint(res, "pool_size", st.pool_size) != TCA_OK ||
	    tca_map_add_uint(res, "sessions_busy", st.sessions_busy) != TCA_OK ||
	    tca_map_add_uint(res, "keys", st.keys) != TCA_OK ||
	    tca_map_add_uint(res, "signatures", st.signatures) != TCA_OK ||
	    tca_map_add_uint(res, "sign_errors", st.sign_errors) != TCA_OK ||
	    tca_map_add_text(res, "health", st.health) != TCA_OK ||
	    tca_map_add_uint(res, "recoveries", st.recoveries) != TCA_OK ||
	    tca_map_add_uint(res, "relogins", st.relogins) != TCA_OK ||
	    tca_map_add_uint(res, "refreshes", st.refreshes) != TCA_OK ||
	    tca_map_add_uint(res, "sessions_replaced", st.sessions_replaced) != TCA_OK ||
	    tca_map_add_text(res, "problem", st.problem) != TCA_OK ||
	    tca_map_add_int(res, "problem_time", st.problem_time) != TCA_OK ||
	    tca_map_add_text(res, "last_error", st.last_error) != TCA_OK ||
	    tca_map_add_int(res, "last_error_time", st.last_error_time) != TCA_OK ||
	    tca_map_add_uint(res, "call_failures", st.call_failures) != TCA_OK)
		return TCA_ERR_NOMEM;
	return TCA_OK;
}

static int
dispatch(enum tokp_op op, const cbor_item_t *args, cbor_item_t *res, char *why,
    size_t whylen)
{
	switch (op) {
	case TOKP_RETRY:
		return op_retry(args, res, why, whylen);
	case TOKP_FIND_KEY:
	case TOKP_CHECK_KEY:
		return op_type(op, args, res);
	case TOKP_KEY_TYPES:
		return op_key_types(res);
	case TOKP_GENERATE_KEY:
		return op_generate(args, res);
	case TOKP_SIGN:
		return op_sign(args, res);
	case TOKP_KEY_COUNT:
	case TOKP_DESTROY_KEY:
	case TOKP_COUNT_OBJECTS:
		return op_count(op, args, res);
	case TOKP_KEY_ATTRS:
		return op_attrs(args, res);
	case TOKP_LIST_KEYS:
		return op_list(res);
	case TOKP_STATUS:
		return op_status(res);
	default:
		return TCA_ERR_BAD_REQUEST;
	}
}

static int
respond(int fd, int r, const char *why, const cbor_item_t *res)
{
	unsigned char *out = NULL;
	size_t out_len = 0;
	int rr;

	if ((rr = tokp_response_encode(r, why, res, &out, &out_len)) != TCA_OK)
		return rr;
	rr = tca_frame_write(fd, out, out_len, 60000);
	free(out);
	return rr;
}

/* One connection: one request at a time, until the engine closes it. */
static void *
serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = NULL;
	size_t len = 0;
	cbor_item_t *req = NULL, *res = NULL;
	const cbor_item_t *args;
	enum tokp_op op;
	char why[TOKP_MAX_WHY];
	int r;

	for (;;) {
		r = tca_frame_read(fd, TOKP_MAX_REQUEST, -1, 60000, NULL, &buf, &len);
		if (r == TCA_ERR_EOF)
			break;
		if (r != TCA_OK) {
			log_error("connection %d: reading a request: %s", fd - TOKP_FD_BASE,
			    tca_strerror(r));
			break;
		}
		why[0] = '\0';
		if ((r = tca_cbor_decode_map_limit(buf, len, TOKP_MAX_REQUEST_ITEMS, &req,
		    why, sizeof(why))) != TCA_OK ||
		    (r = tokp_request_check(req, &op, &args, why, sizeof(why))) != TCA_OK) {
			log_error("connection %d: request refused: %s", fd - TOKP_FD_BASE, why);
			r = TCA_ERR_BAD_REQUEST;
		} else if ((res = cbor_new_definite_map(24)) == NULL) {
			r = TCA_ERR_NOMEM;
		} else {
			r = dispatch(op, args, res, why, sizeof(why));
		}
		free(buf);
		buf = NULL;
		if (respond(fd, r, why, res) != TCA_OK) {
			log_error("connection %d: writing a response failed",
			    fd - TOKP_FD_BASE);
			break;
		}
		if (res != NULL)
			cbor_decref(&res);
		if (req != NULL)
			cbor_decref(&req);
	}
	if (res != NULL)
		cbor_decref(&res);
	if (req != NULL)
		cbor_decref(&req);
	free(buf);
	/* the engine sees EOF on this connection and replaces the helper,
	 * rather than waiting for an answer that will not come */
	(void)close(fd);
	return NULL;
}

/* Reads the PIN the way tca-engined did before the helper existed. */
static int
open_token(char *err, size_t errlen)
{
	struct tca_token_params tp;
	char *pin = NULL;
	size_t pin_len = 0;
	int r;

	r = cfg.pin_file[0] != '\0' ?
	    tca_secret_read_file(cfg.pin_file, &pin, &pin_len, err, errlen) :
	    tca_secret_take_env(cfg.pin_env, &pin, &pin_len, err, errlen);
	if (r != TCA_OK)
		return r;
	if ((r = tca_profile_check_pin(&cfg, pin_len, "the PIN", err, errlen)) != TCA_OK)
		goto out;
	tca_profile_apply_env(&cfg);
	memset(&tp, 0, sizeof(tp));
	tp.module_path = cfg.module;
	tp.init_args = cfg.init_args[0] != '\0' ? cfg.init_args : NULL;
	tp.token_uri = cfg.token_uri;
	tp.pool_size = cfg.pool_size;
	tp.wait_ms = cfg.recovery_wait_ms;
	/* calls run on the connection's thread: a hung one is bounded by the
	 * engine, which kills this process (token.call_timeout_ms) */
	tp.call_timeout_ms = 0;
	tp.quirks = cfg.quirks;
	r = tca_token_open(&tp, pin, pin_len, &tok, err, errlen);
 out:
	tca_secret_free(pin, pin_len);
	return r;
}

/* Every descriptor from lowfd up is closed: the helper holds no socket but
 * its connections. */
static void
close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned int)lowfd, ~0U, 0) == 0)
		return;
#endif
	{
		long maxfd = sysconf(_SC_OPEN_MAX);
		int fd;

		if (maxfd < 0 || maxfd > 1048576)
			maxfd = 1048576;
		for (fd = lowfd; fd < maxfd; fd++)
			(void)close(fd);
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tca-tokend --config FILE --connections N [--syslog]\n"
	    "\n"
	    "The token helper of tca-engined (token.isolation = process): holds the\n"
	    "PKCS#11 module and the PIN.  Started by the engine with its connections on\n"
	    "descriptors %d..%d+N-1; not for running by hand.\n", TOKP_FD_BASE, TOKP_FD_BASE);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "connections", required_argument, NULL, 'n' },
		{ "syslog", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	pthread_t th[TOKP_MAX_CONNS];
	struct sigaction sa;
	struct stat sb;
	const char *config_path = NULL;
	char err[1024] = "", *end;
	unsigned long n = 0;
	int ch, force_syslog = 0, i, started = 0, r;
	cbor_item_t *res = NULL;

	while ((ch = getopt_long(argc, argv, "c:n:sh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0')
				n = 0;
			break;
		case 's':
			force_syslog = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc || n < 1 || n > TOKP_MAX_CONNS) {
		usage(stderr);
		return 2;
	}
	tca_log_init("tca-tokend", force_syslog, LOG_INFO);
	for (i = 0; i < (int)n; i++) {
		if (fstat(TOKP_FD_BASE + i, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
			log_error("descriptor %d is not a socket: tca-tokend is started by "
			    "tca-engined (token.isolation = process), not by hand",
			    TOKP_FD_BASE + i);
			return 2;
		}
	}
	close_from(TOKP_FD_BASE + (int)n);
	/* no core dump holding the PIN, and no ptrace by other processes of
	 * this uid (root still can) */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* the engine's SIGHUP / SIGTERM go to its own process; the helper ends
	 * when its connections close */
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((r = tca_config_load(config_path, &cfg, err, sizeof(err))) != TCA_OK) {
		log_error("configuration: %s", err);
		goto ready;
	}
	tca_log_init("tca-tokend", force_syslog || cfg.log_syslog, cfg.log_level);
	if ((r = open_token(err, sizeof(err))) != TCA_OK)
		log_error("token: %s", err);
 ready:
	if (r == TCA_OK && ((res = cbor_new_definite_map(1)) == NULL ||
	    tca_map_add_uint(res, "pid", (uint64_t)getpid()) != TCA_OK)) {
		r = TCA_ERR_NOMEM;
		snprintf(err, sizeof(err), "out of memory");
	}
	if (respond(TOKP_FD_BASE, r, err, res) != TCA_OK || r != TCA_OK) {
		if (res != NULL)
			cbor_decref(&res);
		tca_token_close(tok);
		return 1;
	}
	cbor_decref(&res);
	for (i = 0; i < (int)n; i++) {
		if (pthread_create(&th[i], NULL, serve,
		    (void *)(intptr_t)(TOKP_FD_BASE + i)) != 0) {
			log_error("starting connection thread %d failed", i);
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	/* the engine closed the connections: it is stopping (or restarted us);
	 * with a call still inside the module, leave without its exit handlers
	 * (token.h) */
	if (tca_token_close(tok) > 0) {
		fflush(NULL);
		_exit(started == (int)n ? 0 : 1);
	}
	return started == (int)n ? 0 : 1;
}
