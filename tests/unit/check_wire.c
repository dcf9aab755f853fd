/*
 * check_wire.c - RPC framing, message model and client library (docs/rpc.md).
 *
 * /wire/frame/...     length-prefixed frames over real socketpairs
 * /wire/request/...   request encoding, decoding and schema refusals; the
 *                     item limit per frame and what decoding allocates
 * /wire/args/...      per-op argument schema checks
 * /wire/map/...       map accessors and builders
 * /wire/response/...  response encoding and strict decoding
 * /wire/client/...    libtca-client against an in-test fake engine
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tca-client.h"
#include "tca-error.h"
#include "testutil.h"
#include "rpc-ops.h"
#include "wire.h"

/* ------------------------------------------------------------ helpers */

static void
pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void
send_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	ssize_t k;

	while (n > 0) {
		k = send(fd, b, n, MSG_NOSIGNAL);
		ck_assert_msg(k > 0, "send: %s", strerror(errno));
		b += k;
		n -= (size_t)k;
	}
}

static void
send_len(int fd, uint32_t len)
{
	uint32_t be = htonl(len);

	send_all(fd, &be, sizeof(be));
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* decodes raw request bytes; returns the result code, keeps why */
static int
decode_raw(const unsigned char *b, size_t n, struct tca_request *req, char *why, size_t whylen)
{
	why[0] = '\0';
	return tca_request_decode(b, n, req, why, whylen);
}

static cbor_item_t *
new_map(size_t n)
{
	cbor_item_t *m = cbor_new_definite_map(n);

	ck_assert_ptr_nonnull(m);
	return m;
}

/* ------------------------------------------------------------ frames */

struct writer {
	int fd;
	const unsigned char *buf;
	size_t len;
	int r;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	w->r = tca_frame_write(w->fd, w->buf, w->len, 10000);
	return NULL;
}

/* /wire/frame/roundtrip: small frames back to back are read one at a time
 * (nothing past a frame is consumed); a frame larger than the socket buffer
 * crosses partial writes and reads */
START_TEST(test_frame_roundtrip)
{
	static const unsigned char a[] = "first frame", b[] = "second";
	unsigned char *big, *got = NULL;
	struct writer w;
	pthread_t th;
	size_t len = 0, i, bigsz = 1024 * 1024;
	int sv[2];

	pair(sv);
	ck_assert_int_eq(tca_frame_write(sv[0], a, sizeof(a), 1000), TCA_OK);
	ck_assert_int_eq(tca_frame_write(sv[0], b, sizeof(b), 1000), TCA_OK);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len), TCA_OK);
	ck_assert_uint_eq(len, sizeof(a));
	ck_assert_mem_eq(got, a, sizeof(a));
	free(got);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len), TCA_OK);
	ck_assert_uint_eq(len, sizeof(b));
	ck_assert_mem_eq(got, b, sizeof(b));
	free(got);
	got = NULL;

	big = malloc(bigsz);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < bigsz; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	w.fd = sv[0];
	w.buf = big;
	w.len = bigsz;
	w.r = -999;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	ck_assert_int_eq(tca_frame_read(sv[1], bigsz, 5000, 5000, NULL, &got, &len), TCA_OK);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.r, TCA_OK);
	ck_assert_uint_eq(len, bigsz);
	ck_assert_mem_eq(got, big, bigsz);
	free(got);
	free(big);

	/* a clean close between frames is EOF */
	close(sv[0]);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len), TCA_ERR_EOF);
	ck_assert_ptr_null(got);
	close(sv[1]);
}
END_TEST

/* /wire/frame/too-large: refused from the announced length alone; the
 * length is reported and the body is left in the socket */
START_TEST(test_frame_too_large)
{
	unsigned char *got = NULL, body[16];
	size_t len = 0;
	int sv[2];

	pair(sv);
	send_len(sv[0], 65537);
	send_all(sv[0], "BODY", 4);
	ck_assert_int_eq(tca_frame_read(sv[1], 65536, 1000, 1000, NULL, &got, &len),
	    TCA_ERR_FRAME_TOO_LARGE);
	ck_assert_ptr_null(got);
	ck_assert_uint_eq(len, 65537);
	/* the body was not consumed */
	ck_assert_int_eq(recv(sv[1], body, sizeof(body), MSG_DONTWAIT), 4);
	ck_assert_mem_eq(body, "BODY", 4);

	/* the largest possible announcement needs no allocation either */
	send_len(sv[0], 0xffffffffU);
	ck_assert_int_eq(tca_frame_read(sv[1], 65536, 1000, 1000, NULL, &got, &len),
	    TCA_ERR_FRAME_TOO_LARGE);
	ck_assert_uint_eq(len, 0xffffffffU);
	ck_assert_ptr_null(got);

	/* exactly the cap is fine */
	{
		unsigned char *exact = calloc(1, 1024);

		ck_assert_ptr_nonnull(exact);
		ck_assert_int_eq(tca_frame_write(sv[0], exact, 1024, 1000), TCA_OK);
		ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len), TCA_OK);
		ck_assert_uint_eq(len, 1024);
		free(got);
		free(exact);
	}
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* /wire/frame/zero-length */
START_TEST(test_frame_zero)
{
	unsigned char *got = NULL;
	size_t len = 99;
	int sv[2];

	pair(sv);
	send_len(sv[0], 0);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_null(got);
	ck_assert_uint_eq(len, 0);
	/* writing an empty frame is a programming error */
	ck_assert_int_eq(tca_frame_write(sv[0], (const unsigned char *)"", 0, 1000),
	    TCA_ERR_INVALID_ARG);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* /wire/frame/truncated: peer closes inside the length or inside the body */
START_TEST(test_frame_truncated)
{
	unsigned char *got = NULL;
	size_t len = 0;
	uint32_t be = htonl(100);
	int sv[2];

	pair(sv);
	send_all(sv[0], &be, 2);
	close(sv[0]);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len),
	    TCA_ERR_TRUNCATED);
	ck_assert_ptr_null(got);
	close(sv[1]);

	pair(sv);
	send_len(sv[0], 100);
	send_all(sv[0], "0123456789012345678901234567890123456789012345678", 50);
	close(sv[0]);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 1000, 1000, NULL, &got, &len),
	    TCA_ERR_TRUNCATED);
	ck_assert_ptr_null(got);
	close(sv[1]);
}
END_TEST

/* /wire/frame/timeouts: idle timeout before the first byte; frame timeout
 * once a frame started */
START_TEST(test_frame_timeouts)
{
	unsigned char *got = NULL;
	size_t len = 0;
	int64_t t0, dt;
	int sv[2], idle;

	pair(sv);
	t0 = mono_ms();
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 150, 5000, NULL, &got, &len),
	    TCA_ERR_TIMEOUT);
	dt = mono_ms() - t0;
	ck_assert_msg(dt >= 140 && dt < 2000, "idle timeout took %lld ms", (long long)dt);

	send_len(sv[0], 10);
	send_all(sv[0], "abc", 3);
	t0 = mono_ms();
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, 5000, 150, NULL, &got, &len),
	    TCA_ERR_TIMEOUT);
	dt = mono_ms() - t0;
	ck_assert_msg(dt >= 140 && dt < 2000, "frame timeout took %lld ms", (long long)dt);
	ck_assert_ptr_null(got);
	close(sv[0]);
	close(sv[1]);

	/* tca_frame_read_ex tells the two apart */
	pair(sv);
	idle = -1;
	ck_assert_int_eq(tca_frame_read_ex(sv[1], 1024, 50, 5000, NULL, &got, &len, &idle),
	    TCA_ERR_TIMEOUT);
	ck_assert_int_eq(idle, 1);
	send_len(sv[0], 10);
	ck_assert_int_eq(tca_frame_read_ex(sv[1], 1024, 5000, 50, NULL, &got, &len, &idle),
	    TCA_ERR_TIMEOUT);
	ck_assert_int_eq(idle, 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static volatile sig_atomic_t stop_flag;

static void *
set_stop_later(void *arg)
{
	usleep(200 * 1000);
	stop_flag = 1;
	return NULL;
}

/* /wire/frame/stop: the stop flag ends an idle wait, even an unbounded one */
START_TEST(test_frame_stop)
{
	unsigned char *got = NULL;
	size_t len = 0;
	pthread_t th;
	int64_t t0, dt;
	int sv[2];

	pair(sv);
	stop_flag = 1;
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, -1, 1000, &stop_flag, &got, &len),
	    TCA_ERR_SHUTTING_DOWN);
	stop_flag = 0;
	t0 = mono_ms();
	ck_assert_int_eq(pthread_create(&th, NULL, set_stop_later, NULL), 0);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, -1, 1000, &stop_flag, &got, &len),
	    TCA_ERR_SHUTTING_DOWN);
	dt = mono_ms() - t0;
	pthread_join(th, NULL);
	ck_assert_msg(dt >= 150 && dt < 2000, "stop noticed after %lld ms", (long long)dt);
	ck_assert_ptr_null(got);

	/* a frame already waiting is still read when stop is clear */
	stop_flag = 0;
	ck_assert_int_eq(tca_frame_write(sv[0], (const unsigned char *)"x", 1, 1000), TCA_OK);
	ck_assert_int_eq(tca_frame_read(sv[1], 1024, -1, 1000, &stop_flag, &got, &len), TCA_OK);
	free(got);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* /wire/frame/write-errors: a closed peer is an error, not SIGPIPE; a peer
 * that does not read makes the write time out */
START_TEST(test_frame_write_errors)
{
	unsigned char *big;
	size_t bigsz = 8 * 1024 * 1024;
	int sv[2], r, e;

	pair(sv);
	close(sv[1]);
	r = tca_frame_write(sv[0], (const unsigned char *)"x", 1, 1000);
	e = errno;
	ck_assert_int_eq(r, TCA_ERR_SYSTEM);
	ck_assert_int_eq(e, EPIPE);
	close(sv[0]);

	pair(sv);
	big = calloc(1, bigsz);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(tca_frame_write(sv[0], big, bigsz, 200), TCA_ERR_TIMEOUT);
	free(big);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ------------------------------------------------------------ requests */

/* /wire/request/roundtrip */
START_TEST(test_request_roundtrip)
{
	static const unsigned char csr[] = { 0x30, 0x82, 0x00, 0x01, 0xff };
	struct tca_request req;
	cbor_item_t *args = new_map(5);
	const unsigned char *b;
	unsigned char *buf = NULL;
	char why[256], text[64];
	size_t len = 0, bl;
	uint64_t u;
	int v;

	ck_assert_int_eq(tca_map_add_text(args, "tenant", "acme"), TCA_OK);
	ck_assert_int_eq(tca_map_add_text(args, "device_id", "dev-1 \xc3\xa9"), TCA_OK);
	ck_assert_int_eq(tca_map_add_bytes(args, "csr", csr, sizeof(csr)), TCA_OK);
	ck_assert_int_eq(tca_map_add_uint(args, "days", 30), TCA_OK);
	ck_assert_int_eq(tca_map_add_bool(args, "confirm", 1), TCA_OK);
	ck_assert_int_eq(tca_request_encode(1, 0x1234567890ULL, "issue", args, &buf, &len), TCA_OK);
	cbor_decref(&args);

	ck_assert_int_eq(decode_raw(buf, len, &req, why, sizeof(why)), TCA_OK);
	ck_assert_uint_eq(req.version, 1);
	ck_assert_uint_eq(req.id, 0x1234567890ULL);
	ck_assert_str_eq(req.op, "issue");
	ck_assert_ptr_nonnull(req.args);
	ck_assert_int_eq(tca_map_get_text(req.args, "tenant", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "acme");
	ck_assert_int_eq(tca_map_get_text(req.args, "device_id", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "dev-1 \xc3\xa9");
	ck_assert_int_eq(tca_map_get_bytes(req.args, "csr", &b, &bl), TCA_OK);
	ck_assert_uint_eq(bl, sizeof(csr));
	ck_assert_mem_eq(b, csr, sizeof(csr));
	ck_assert_int_eq(tca_map_get_uint(req.args, "days", &u), TCA_OK);
	ck_assert_uint_eq(u, 30);
	ck_assert_int_eq(tca_map_get_bool(req.args, "confirm", &v), TCA_OK);
	ck_assert_int_eq(v, 1);
	tca_request_clear(&req);
	ck_assert_ptr_null(req.item);
	free(buf);

	/* NULL args: an empty map */
	ck_assert_int_eq(tca_request_encode(1, 2, "ca.list", NULL, &buf, &len), TCA_OK);
	ck_assert_int_eq(decode_raw(buf, len, &req, why, sizeof(why)), TCA_OK);
	ck_assert_str_eq(req.op, "ca.list");
	ck_assert_uint_eq(cbor_map_size(req.args), 0);
	tca_request_clear(&req);
	free(buf);

	/* the encoder refuses empty and over-long op names */
	ck_assert_int_eq(tca_request_encode(1, 2, "", NULL, &buf, &len), TCA_ERR_INVALID_ARG);
	ck_assert_int_eq(tca_request_encode(1, 2, "abcdefghijklmnopqrstuvwxyzabcdefg", NULL,
	    &buf, &len), TCA_ERR_INVALID_ARG);
}
END_TEST

/* /wire/request/golden: the byte-exact example of docs/rpc.md (integers in
 * their shortest form) */
START_TEST(test_request_golden)
{
	static const unsigned char want[] = {
		0xa4, 0x61, 0x76, 0x01, 0x62, 0x69, 0x64, 0x01, 0x62, 0x6f, 0x70, 0x66,
		0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x64, 0x61, 0x72, 0x67, 0x73, 0xa0 };
	unsigned char *buf = NULL, *got = NULL;
	size_t len = 0, glen = 0;
	int sv[2];

	ck_assert_int_eq(tca_request_encode(1, 1, "status", NULL, &buf, &len), TCA_OK);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	/* and on the wire: 00 00 00 18, then the map */
	pair(sv);
	ck_assert_int_eq(tca_frame_write(sv[0], buf, len, 1000), TCA_OK);
	ck_assert_int_eq(recv(sv[1], buf, 4, 0), 4);
	ck_assert_mem_eq(buf, "\x00\x00\x00\x18", 4);
	ck_assert_int_eq(send(sv[0], "\x00\x00\x00\x01\x00", 5, 0), 5);
	ck_assert_int_eq(recv(sv[1], buf, sizeof(want), 0), (ssize_t)sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	ck_assert_int_eq(tca_frame_read(sv[1], 16, 1000, 1000, NULL, &got, &glen), TCA_OK);
	ck_assert_uint_eq(glen, 1);
	free(got);
	free(buf);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* /wire/request/trailing-bytes */
START_TEST(test_request_trailing)
{
	struct tca_request req;
	unsigned char *buf = NULL;
	char why[256];
	size_t len = 0;

	ck_assert_int_eq(tca_request_encode(1, 5, "status", NULL, &buf, &len), TCA_OK);
	buf = realloc(buf, len + 1);
	ck_assert_ptr_nonnull(buf);
	buf[len] = 0x00;
	ck_assert_int_eq(decode_raw(buf, len + 1, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, "trailing") != NULL, "why: %s", why);
	ck_assert_ptr_null(req.item);
	tca_request_clear(&req);
	/* and a frame cut short */
	ck_assert_int_eq(decode_raw(buf, len - 1, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	tca_request_clear(&req);
	free(buf);
}
END_TEST

struct bad_case {
	const char *name;
	const unsigned char *b;
	size_t n;
	int want;
	uint64_t want_id;
};

#define BC(name, want, id, ...) { name, (const unsigned char[]){ __VA_ARGS__ }, \
	sizeof((const unsigned char[]){ __VA_ARGS__ }), want, id }

/* CBOR fragments of a request: "v", "id", "op", "args" keys */
#define K_V 0x61, 'v'
#define K_ID 0x62, 'i', 'd'
#define K_OP 0x62, 'o', 'p'
#define K_ARGS 0x64, 'a', 'r', 'g', 's'
#define OP_STATUS 0x66, 's', 't', 'a', 't', 'u', 's'

/* /wire/request/malformed: each schema violation is BAD_REQUEST (the id is
 * kept when it could be read); an unknown version is UNSUPPORTED_VERSION */
START_TEST(test_request_malformed)
{
	const struct bad_case cases[] = {
		BC("valid", TCA_OK, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS, K_ARGS, 0xa0),
		BC("not a map (array)", TCA_ERR_BAD_REQUEST, 0, 0x82, 0x01, 0x02),
		BC("not a map (uint)", TCA_ERR_BAD_REQUEST, 0, 0x01),
		BC("not CBOR", TCA_ERR_BAD_REQUEST, 0, 0xff, 0xff, 0xff),
		BC("missing op", TCA_ERR_BAD_REQUEST, 7, 0xa3, K_V, 0x01, K_ID, 0x07, K_ARGS, 0xa0),
		BC("missing args", TCA_ERR_BAD_REQUEST, 7, 0xa3, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS),
		BC("missing id", TCA_ERR_BAD_REQUEST, 0, 0xa3, K_V, 0x01, K_OP, OP_STATUS, K_ARGS, 0xa0),
		BC("missing v", TCA_ERR_BAD_REQUEST, 7, 0xa3, K_ID, 0x07, K_OP, OP_STATUS, K_ARGS, 0xa0),
		BC("unknown key", TCA_ERR_BAD_REQUEST, 7, 0xa5, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		    K_ARGS, 0xa0, 0x61, 'x', 0x01),
		BC("duplicate key", TCA_ERR_BAD_REQUEST, 0, 0xa5, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		    K_OP, OP_STATUS, K_ARGS, 0xa0),
		BC("integer key", TCA_ERR_BAD_REQUEST, 0, 0xa5, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		    K_ARGS, 0xa0, 0x01, 0x01),
		BC("op integer", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, 0x05,
		    K_ARGS, 0xa0),
		BC("op bytes", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    0x46, 's', 't', 'a', 't', 'u', 's', K_ARGS, 0xa0),
		BC("op empty", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, 0x60,
		    K_ARGS, 0xa0),
		BC("op upper case", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    0x66, 'S', 't', 'a', 't', 'u', 's', K_ARGS, 0xa0),
		BC("op 33 bytes", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    0x78, 33, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
		    'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
		    'a', 'a', 'a', K_ARGS, 0xa0),
		BC("v negative", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x20, K_ID, 0x07, K_OP, OP_STATUS,
		    K_ARGS, 0xa0),
		BC("v float", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0xf9, 0x3c, 0x00, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("id as text", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x61, '7', K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("id negative", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x26, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("args array", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		    K_ARGS, 0x80),
		BC("args integer key", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa1, 0x01, 0x01),
		BC("args duplicate key", TCA_ERR_BAD_REQUEST, 7, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02),
		BC("indefinite map", TCA_ERR_BAD_REQUEST, 0, 0xbf, K_V, 0x01, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0, 0xff),
		BC("indefinite args", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xbf, 0xff),
		BC("indefinite string", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    0x7f, 0x66, 's', 't', 'a', 't', 'u', 's', 0xff, K_ARGS, 0xa0),
		BC("tagged value", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0xc1, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("reserved encoding", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x1c, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("forged array count", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa1, 0x61, 'a', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0x00),
		BC("forged string length", TCA_ERR_BAD_REQUEST, 0, 0xa4, K_V, 0x01, K_ID, 0x07, K_OP,
		    0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 's', K_ARGS, 0xa0),
		BC("stray break", TCA_ERR_BAD_REQUEST, 0, 0xff),
		BC("v 99", TCA_ERR_UNSUPPORTED_VERSION, 7, 0xa4, K_V, 0x18, 99, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("v 0", TCA_ERR_UNSUPPORTED_VERSION, 7, 0xa4, K_V, 0x00, K_ID, 0x07, K_OP,
		    OP_STATUS, K_ARGS, 0xa0),
		BC("v 99, large id", TCA_ERR_UNSUPPORTED_VERSION, 0x0102030405060708ULL, 0xa4, K_V,
		    0x18, 99, K_ID, 0x1b, 1, 2, 3, 4, 5, 6, 7, 8, K_OP, OP_STATUS, K_ARGS, 0xa0),
	};
	struct tca_request req;
	char why[256];
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = decode_raw(cases[i].b, cases[i].n, &req, why, sizeof(why));
		ck_assert_msg(r == cases[i].want, "%s: got %d (%s), want %d", cases[i].name, r,
		    why, cases[i].want);
		ck_assert_msg(req.id == cases[i].want_id, "%s: id %llu, want %llu",
		    cases[i].name, (unsigned long long)req.id,
		    (unsigned long long)cases[i].want_id);
		if (r != TCA_OK) {
			ck_assert_msg(why[0] != '\0', "%s: no reason given", cases[i].name);
			ck_assert_ptr_null(req.item);
		}
		tca_request_clear(&req);
	}
}
END_TEST

/* /wire/request/deep-nesting: refused before libcbor builds it */
START_TEST(test_request_deep)
{
	static const unsigned char head[] = { 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		K_ARGS, 0xa1, 0x61, 'a' };
	unsigned char buf[sizeof(head) + 40000];
	struct tca_request req;
	char why[256];
	size_t i, n = sizeof(head);

	memcpy(buf, head, sizeof(head));
	for (i = 0; i < 39999; i++)
		buf[n++] = 0x81;	/* [[[[...]]]] */
	buf[n++] = 0x00;
	ck_assert_int_eq(decode_raw(buf, n, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, "nested") != NULL, "why: %s", why);
	tca_request_clear(&req);
}
END_TEST

/* ------------------------------------------------------------ item limit */

/* {"v": 1, "id": 7, "op": "status", "args": {"x": [n elements]}}: 11 items
 * besides the elements */
#define ITEMS_HEAD 11

static unsigned char *
items_frame(const unsigned char *elem, size_t elen, size_t n, size_t *len_ptr)
{
	static const unsigned char head[] = { 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		K_ARGS, 0xa1, 0x61, 'x', 0x9a };
	unsigned char *b = malloc(sizeof(head) + 4 + n * elen);
	size_t len = 0, i;

	ck_assert_ptr_nonnull(b);
	memcpy(b, head, sizeof(head));
	len = sizeof(head);
	b[len++] = (unsigned char)(n >> 24);
	b[len++] = (unsigned char)(n >> 16);
	b[len++] = (unsigned char)(n >> 8);
	b[len++] = (unsigned char)n;
	for (i = 0; i < n; i++, len += elen)
		memcpy(b + len, elem, elen);
	*len_ptr = len;
	return b;
}

/* /wire/request/item-limit: TCA_FRAME_MAX_ITEMS data items decode, one more
 * is BAD_REQUEST naming the limit; responses are not bound by it; the
 * largest legitimate request (device.register, 200 devices) is well inside */
START_TEST(test_request_items)
{
	static const unsigned char one[] = { 0x01 };
	const struct tca_op_desc *reg = tca_op_find("device.register");
	struct tca_request req;
	cbor_item_t *args, *devs, *item = NULL;
	unsigned char *b;
	char why[256], num[16], dev[65], otp[129];
	size_t len, i;

	b = items_frame(one, 1, TCA_FRAME_MAX_ITEMS - ITEMS_HEAD, &len);
	ck_assert_msg(decode_raw(b, len, &req, why, sizeof(why)) == TCA_OK, "%s", why);
	tca_request_clear(&req);
	free(b);

	b = items_frame(one, 1, TCA_FRAME_MAX_ITEMS - ITEMS_HEAD + 1, &len);
	ck_assert_int_eq(decode_raw(b, len, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	snprintf(num, sizeof(num), "%d", TCA_FRAME_MAX_ITEMS);
	ck_assert_msg(strstr(why, num) != NULL && strstr(why, "items") != NULL, "why: %s", why);
	ck_assert_ptr_null(req.item);
	ck_assert_uint_eq(req.id, 0);	/* refused before anything was decoded */
	tca_request_clear(&req);
	free(b);

	/* the attack frame: 65,000 one-byte items in 64 KiB */
	b = items_frame(one, 1, 65000, &len);
	ck_assert_uint_le(len, TCA_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(decode_raw(b, len, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, num) != NULL, "why: %s", why);
	/* responses (client side) have no item bound: a ca.list page is large */
	ck_assert_int_eq(tca_cbor_decode_map(b, len, &item, why, sizeof(why)), TCA_OK);
	cbor_decref(&item);
	ck_assert_int_eq(tca_cbor_decode_map_limit(b, len, 100, &item, why, sizeof(why)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_ptr_null(item);
	ck_assert_msg(strstr(why, "100") != NULL, "why: %s", why);
	free(b);

	/* device.register with 200 devices, longest device ids and passwords */
	ck_assert_ptr_nonnull(reg);
	memset(dev, 'd', 64);
	dev[64] = '\0';
	memset(otp, 'o', 128);
	otp[128] = '\0';
	args = new_map(3);
	devs = cbor_new_definite_array(200);
	ck_assert_ptr_nonnull(devs);
	for (i = 0; i < 200; i++) {
		cbor_item_t *d = new_map(2);

		snprintf(dev, sizeof(dev), "%064zu", i);
		ck_assert_int_eq(tca_map_add_text(d, "device_id", dev), TCA_OK);
		ck_assert_int_eq(tca_map_add_text(d, "otp", otp), TCA_OK);
		ck_assert(cbor_array_push(devs, d));
		cbor_decref(&d);
	}
	ck_assert_int_eq(tca_map_add_text(args, "tenant", "acme"), TCA_OK);
	ck_assert_int_eq(tca_map_add_item(args, "devices", devs), TCA_OK);
	ck_assert_int_eq(tca_map_add_uint(args, "expires_in_s", 86400), TCA_OK);
	ck_assert_int_eq(tca_request_encode(1, 9, "device.register", args, &b, &len), TCA_OK);
	cbor_decref(&args);
	ck_assert_uint_le(len, TCA_FRAME_MAX_DEFAULT);
	ck_assert_msg(decode_raw(b, len, &req, why, sizeof(why)) == TCA_OK, "%s", why);
	ck_assert_msg(tca_args_check(req.args, reg->args, reg->n_args, why, sizeof(why)) ==
	    TCA_OK, "%s", why);
	tca_request_clear(&req);
	free(b);
}
END_TEST

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* /wire/request/item-memory: what decoding the worst frames under the item
 * limit allocates (mallinfo2, main arena, this thread only): at most the
 * frame's size plus 128 bytes per item, under 8 x 64 KiB; a frame over the
 * limit allocates nothing */
START_TEST(test_request_items_memory)
{
	static const struct {
		const char *name;
		unsigned char e[16];
		size_t elen, items;	/* bytes and data items per element */
	} shapes[] = {
		{ "uint8", { 0x01 }, 1, 1 },
		{ "uint64", { 0x1b, 1, 2, 3, 4, 5, 6, 7, 8 }, 9, 1 },
		{ "false", { 0xf4 }, 1, 1 },
		{ "half float", { 0xf9, 0x3c, 0x00 }, 3, 1 },
		{ "empty array", { 0x80 }, 1, 1 },
		{ "empty map", { 0xa0 }, 1, 1 },
		{ "empty text", { 0x60 }, 1, 1 },
		{ "empty bytes", { 0x40 }, 1, 1 },
		{ "text 15", { 0x6f, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
		    'm', 'n', 'o' }, 16, 1 },
		{ "[0]", { 0x81, 0x00 }, 2, 2 },
		{ "{\"\": 0}", { 0xa1, 0x60, 0x00 }, 3, 3 },
	};
	static const unsigned char one[] = { 0x01 };
	struct tca_request req;
	unsigned char *b;
	char why[256];
	size_t i, n, len, before, used, worst = 0, bound;
	unsigned char *volatile probe;

	/* under valgrind (its own allocator) mallinfo2 sees nothing: say so
	 * instead of passing on zeros */
	before = heap_in_use();
	probe = malloc(100000);
	ck_assert_ptr_nonnull(probe);
	memset(probe, 1, 100000);
	used = heap_in_use() - before;
	free(probe);
	if (used < 100000) {
		fprintf(stderr, "wire/request/item-memory: mallinfo2 does not see this "
		    "allocator; not measured\n");
		return;
	}
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		n = (TCA_FRAME_MAX_ITEMS - ITEMS_HEAD) / shapes[i].items;
		b = items_frame(shapes[i].e, shapes[i].elen, n, &len);
		before = heap_in_use();
		ck_assert_msg(decode_raw(b, len, &req, why, sizeof(why)) == TCA_OK, "%s: %s",
		    shapes[i].name, why);
		used = heap_in_use() - before;
		tca_request_clear(&req);
		bound = len + 128 * (size_t)TCA_FRAME_MAX_ITEMS;
		ck_assert_msg(used <= bound && used <= 8 * 65536, "%s: %zu items in %zu bytes "
		    "took %zu bytes (bound %zu)", shapes[i].name, n * shapes[i].items +
		    ITEMS_HEAD, len, used, bound);
		if (used > worst)
			worst = used;
		free(b);
	}
	fprintf(stderr, "wire/request/item-memory: worst decoded request under the limit: "
	    "%zu bytes\n", worst);

	/* over the limit: the pre-check refuses before libcbor allocates */
	b = items_frame(one, 1, 65000, &len);
	before = heap_in_use();
	ck_assert_int_eq(decode_raw(b, len, &req, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	used = heap_in_use() - before;
	ck_assert_msg(used < 1024, "a refused frame left %zu bytes allocated", used);
	free(b);
}
END_TEST

/* /wire/request/peek-op: the op name without decoding; anything else is
 * BAD_REQUEST, never a read past the buffer */
START_TEST(test_request_peek_op)
{
	static const unsigned char ok[] = { 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, OP_STATUS,
		K_ARGS, 0xa0 };
	/* args first, with nested values to skip, then op */
	static const unsigned char late[] = { 0xa4, K_ARGS, 0xa2, 0x61, 'a', 0x82, 0x81, 0x01,
		0xa1, 0x61, 'b', 0x43, 1, 2, 3, 0x61, 'c', 0xf5, K_V, 0x01, K_ID, 0x07,
		K_OP, 0x67, 'c', 'a', 'c', 'e', 'r', 't', 's' };
	static const unsigned char no_op[] = { 0xa3, K_V, 0x01, K_ID, 0x07, K_ARGS, 0xa0 };
	static const unsigned char op_int[] = { 0xa4, K_V, 0x01, K_ID, 0x07, K_OP, 0x05,
		K_ARGS, 0xa0 };
	static const unsigned char op_bad[] = { 0xa1, K_OP, 0x62, 'A', 'B' };
	static const unsigned char arr[] = { 0x82, K_OP, OP_STATUS };
	static const unsigned char forged[] = { 0xa2, K_ARGS, 0x9b, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0x00, K_OP, OP_STATUS };
	char op[TCA_OP_MAX + 1];
	unsigned char rnd[64];
	size_t i, j;

	ck_assert_int_eq(tca_request_peek_op(ok, sizeof(ok), op, sizeof(op)), TCA_OK);
	ck_assert_str_eq(op, "status");
	ck_assert_int_eq(tca_request_peek_op(late, sizeof(late), op, sizeof(op)), TCA_OK);
	ck_assert_str_eq(op, "cacerts");
	ck_assert_int_eq(tca_request_peek_op(ok, sizeof(ok), op, 6), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(no_op, sizeof(no_op), op, sizeof(op)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(op_int, sizeof(op_int), op, sizeof(op)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(op_bad, sizeof(op_bad), op, sizeof(op)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(arr, sizeof(arr), op, sizeof(op)),
	    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(forged, sizeof(forged), op, sizeof(op)),
	    TCA_ERR_BAD_REQUEST);
	for (i = 1; i < sizeof(late); i++)	/* every truncation */
		ck_assert_int_eq(tca_request_peek_op(late, i, op, sizeof(op)),
		    TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_request_peek_op(NULL, 0, op, sizeof(op)), TCA_ERR_BAD_REQUEST);
	/* random bytes: any answer, no crash (run under valgrind/ASan to see reads) */
	srandom(11);
	for (i = 0; i < 20000; i++) {
		for (j = 0; j < sizeof(rnd); j++)
			rnd[j] = (unsigned char)random();
		rnd[0] = (unsigned char)(0xa0 | (rnd[0] & 0x1f));
		(void)tca_request_peek_op(rnd, (size_t)(random() % (long)sizeof(rnd)) + 1, op,
		    sizeof(op));
	}
}
END_TEST

/* ------------------------------------------------------------ args */

static const struct tca_arg_spec spec[] = {
	{ "tenant", TCA_ARG_TEXT, 1, 8, NULL, 0, NULL },
	{ "csr", TCA_ARG_BYTES, 1, 4, NULL, 0, NULL },
	{ "days", TCA_ARG_UINT, 0, 0, NULL, 0, NULL },
	{ "confirm", TCA_ARG_BOOL, 0, 0, NULL, 0, NULL },
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

static cbor_item_t *
args_with(const char *tenant, size_t tlen, size_t csrlen)
{
	cbor_item_t *m = new_map(3), *t = cbor_build_stringn(tenant, tlen);

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tca_map_add_item(m, "tenant", t), TCA_OK);
	ck_assert_int_eq(tca_map_add_bytes(m, "csr", (const unsigned char *)"abcdefgh", csrlen),
	    TCA_OK);
	return m;
}

static void
expect_args(cbor_item_t *m, int want, const char *needle)
{
	char why[256] = "";
	int r = tca_args_check(m, spec, NSPEC, why, sizeof(why));

	ck_assert_msg(r == want, "got %d (%s), want %d", r, why, want);
	if (needle != NULL)
		ck_assert_msg(strstr(why, needle) != NULL, "why \"%s\" lacks \"%s\"", why, needle);
	cbor_decref(&m);
}

/* /wire/args/schema */
START_TEST(test_args_check)
{
	cbor_item_t *m;
	char why[256];

	/* valid, with and without optionals */
	expect_args(args_with("acme", 4, 4), TCA_OK, NULL);
	m = new_map(4);
	tca_map_add_text(m, "tenant", "t\xc3\xa9");
	tca_map_add_bytes(m, "csr", (const unsigned char *)"x", 1);
	tca_map_add_uint(m, "days", 10);
	tca_map_add_bool(m, "confirm", 0);
	expect_args(m, TCA_OK, NULL);

	/* required missing */
	m = new_map(1);
	tca_map_add_text(m, "tenant", "acme");
	expect_args(m, TCA_ERR_BAD_REQUEST, "missing argument \"csr\"");
	/* unknown argument */
	m = new_map(3);
	tca_map_add_text(m, "tenant", "acme");
	tca_map_add_bytes(m, "csr", (const unsigned char *)"x", 1);
	tca_map_add_uint(m, "bogus", 1);
	expect_args(m, TCA_ERR_BAD_REQUEST, "unknown argument \"bogus\"");
	/* wrong types */
	m = new_map(2);
	tca_map_add_bytes(m, "tenant", (const unsigned char *)"acme", 4);
	tca_map_add_bytes(m, "csr", (const unsigned char *)"x", 1);
	expect_args(m, TCA_ERR_BAD_REQUEST, "tenant");
	m = new_map(2);
	tca_map_add_text(m, "tenant", "acme");
	tca_map_add_text(m, "csr", "x");
	expect_args(m, TCA_ERR_BAD_REQUEST, "csr");
	m = new_map(3);
	tca_map_add_text(m, "tenant", "acme");
	tca_map_add_bytes(m, "csr", (const unsigned char *)"x", 1);
	tca_map_add_int(m, "days", -1);
	expect_args(m, TCA_ERR_BAD_REQUEST, "days");
	m = new_map(3);
	tca_map_add_text(m, "tenant", "acme");
	tca_map_add_bytes(m, "csr", (const unsigned char *)"x", 1);
	tca_map_add_uint(m, "confirm", 1);
	expect_args(m, TCA_ERR_BAD_REQUEST, "confirm");
	/* over-long text and bytes (limits 8 and 4) */
	expect_args(args_with("acmeacme", 8, 4), TCA_OK, NULL);
	expect_args(args_with("acmeacmex", 9, 4), TCA_ERR_BAD_REQUEST, "longer than 8");
	expect_args(args_with("acme", 4, 5), TCA_ERR_BAD_REQUEST, "longer than 4");
	/* NUL inside text */
	expect_args(args_with("ac\0me", 5, 4), TCA_ERR_BAD_REQUEST, "NUL");
	/* invalid UTF-8: bare continuation, overlong '/', surrogate, cut short, > U+10FFFF */
	expect_args(args_with("a\x80", 2, 4), TCA_ERR_BAD_REQUEST, "UTF-8");
	expect_args(args_with("\xc0\xaf", 2, 4), TCA_ERR_BAD_REQUEST, "UTF-8");
	expect_args(args_with("\xed\xa0\x80", 3, 4), TCA_ERR_BAD_REQUEST, "UTF-8");
	expect_args(args_with("ab\xe2\x82", 4, 4), TCA_ERR_BAD_REQUEST, "UTF-8");
	expect_args(args_with("\xf4\x90\x80\x80", 4, 4), TCA_ERR_BAD_REQUEST, "UTF-8");
	expect_args(args_with("\xf0\x9f\x98\x80", 4, 4), TCA_OK, NULL);

	/* an op without arguments takes only the empty map */
	m = new_map(0);
	ck_assert_int_eq(tca_args_check(m, NULL, 0, why, sizeof(why)), TCA_OK);
	cbor_decref(&m);
	m = new_map(1);
	tca_map_add_uint(m, "x", 1);
	ck_assert_int_eq(tca_args_check(m, NULL, 0, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	cbor_decref(&m);
	/* not a map at all */
	m = cbor_build_uint8(1);
	ck_assert_int_eq(tca_args_check(m, spec, NSPEC, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	cbor_decref(&m);
}
END_TEST

/* /wire/result/schema: results are checked leniently, nested fields by path */
START_TEST(test_result_check)
{
	static const struct tca_arg_spec inner[] = {
		{ "health", TCA_ARG_TEXT, 1, 0, NULL, 0, NULL },
	};
	static const struct tca_arg_spec elem[] = {
		{ "cert", TCA_ARG_BYTES, 1, 0, NULL, 0, NULL },
	};
	static const struct tca_arg_spec rs[] = {
		{ "n", TCA_ARG_INT, 1, 0, NULL, 0, NULL },
		{ "token", TCA_ARG_MAP, 1, 0, inner, 1, NULL },
		{ "certs", TCA_ARG_ARRAY, 0, 2, elem, 1, NULL },
	};
	cbor_item_t *m, *tok, *arr, *b;
	char why[256] = "";

	/* unknown keys are fine in results, negative ints are ints */
	m = new_map(4);
	tca_map_add_int(m, "n", -5);
	tok = new_map(2);
	tca_map_add_text(tok, "health", "ok");
	tca_map_add_uint(tok, "future_field", 1);
	ck_assert_int_eq(tca_map_add_item(m, "token", tok), TCA_OK);
	tca_map_add_text(m, "newer", "x");
	arr = cbor_new_definite_array(3);
	ck_assert_ptr_nonnull(arr);
	b = cbor_build_bytestring((const unsigned char *)"ab", 2);
	ck_assert(cbor_array_push(arr, b));
	ck_assert(cbor_array_push(arr, b));
	cbor_decref(&b);
	ck_assert_int_eq(tca_map_add_item(m, "certs", arr), TCA_OK);
	ck_assert_msg(tca_result_check(m, rs, 3, why, sizeof(why)) == TCA_OK, "%s", why);
	/* a third element exceeds the bound of 2 */
	b = cbor_build_bytestring((const unsigned char *)"ab", 2);
	ck_assert(cbor_array_push(arr, b));
	cbor_decref(&b);
	ck_assert_int_eq(tca_result_check(m, rs, 3, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_msg(strstr(why, "certs") != NULL, "%s", why);
	cbor_decref(&m);

	/* a nested field of the wrong type is named by its path */
	m = new_map(2);
	tca_map_add_int(m, "n", 1);
	tok = new_map(1);
	tca_map_add_uint(tok, "health", 1);
	ck_assert_int_eq(tca_map_add_item(m, "token", tok), TCA_OK);
	ck_assert_int_eq(tca_result_check(m, rs, 3, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_msg(strstr(why, "\"token.health\" must be a text string") != NULL, "%s", why);
	cbor_decref(&m);

	/* an array element of the wrong type: named with its index */
	m = new_map(3);
	tca_map_add_int(m, "n", 1);
	tok = new_map(1);
	tca_map_add_text(tok, "health", "ok");
	ck_assert_int_eq(tca_map_add_item(m, "token", tok), TCA_OK);
	arr = cbor_new_definite_array(2);
	b = cbor_build_bytestring((const unsigned char *)"ab", 2);
	ck_assert(cbor_array_push(arr, b));
	cbor_decref(&b);
	b = cbor_build_string("ab");
	ck_assert(cbor_array_push(arr, b));
	cbor_decref(&b);
	ck_assert_int_eq(tca_map_add_item(m, "certs", arr), TCA_OK);
	ck_assert_int_eq(tca_result_check(m, rs, 3, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_msg(strstr(why, "certs[1]") != NULL, "%s", why);
	cbor_decref(&m);

	/* a missing required nested field */
	m = new_map(2);
	tca_map_add_int(m, "n", 1);
	tok = new_map(0);
	ck_assert_int_eq(tca_map_add_item(m, "token", tok), TCA_OK);
	ck_assert_int_eq(tca_result_check(m, rs, 3, why, sizeof(why)), TCA_ERR_PROTOCOL);
	ck_assert_msg(strstr(why, "missing result field \"token.health\"") != NULL, "%s", why);
	cbor_decref(&m);

	/* requests stay strict at every level: an unknown nested key is refused */
	m = new_map(2);
	tca_map_add_int(m, "n", 1);
	tok = new_map(2);
	tca_map_add_text(tok, "health", "ok");
	tca_map_add_text(tok, "extra", "x");
	ck_assert_int_eq(tca_map_add_item(m, "token", tok), TCA_OK);
	ck_assert_int_eq(tca_args_check(m, rs, 3, why, sizeof(why)), TCA_ERR_BAD_REQUEST);
	ck_assert_msg(strstr(why, "unknown argument \"token.extra\"") != NULL, "%s", why);
	cbor_decref(&m);
}
END_TEST

/* /wire/ops/table: one row per op, every schema usable, every row handled */
START_TEST(test_op_table)
{
	const struct tca_op_desc *d, *e;
	char why[256] = "";
	size_t i, j;

	ck_assert_msg(tca_rpc_ops_selfcheck(why, sizeof(why)) == TCA_OK, "%s", why);
	for (i = 0; (d = tca_op_at(i)) != NULL; i++) {
		ck_assert_ptr_eq(tca_op_find(d->name), d);
		ck_assert(d->role == TCA_ROLE_FRONTEND || d->role == TCA_ROLE_ADMIN);
		ck_assert(d->summary != NULL && d->summary[0] != '\0');
		ck_assert(d->n_result > 0);
		ck_assert(strlen(d->name) <= TCA_OP_MAX);
		for (j = 0; j < d->n_args; j++)
			ck_assert_msg(d->args[j].type != TCA_ARG_MAP || d->args[j].sub != NULL,
			    "%s.%s", d->name, d->args[j].name);
		for (j = 0; (e = tca_op_at(j)) != NULL; j++)
			ck_assert(j == i || strcmp(e->name, d->name) != 0);
	}
	ck_assert_uint_ge(i, 10);
	ck_assert_ptr_null(tca_op_find("nope"));
	ck_assert_ptr_null(tca_op_find(NULL));
}
END_TEST

/* ------------------------------------------------------------ maps */

/* /wire/map/accessors-builders */
START_TEST(test_map_access)
{
	cbor_item_t *m = new_map(6), *full = new_map(1), *arr;
	const unsigned char *b;
	char small[4];
	uint64_t u;
	size_t bl;
	int v;

	ck_assert_int_eq(tca_map_add_text(m, "t", "hello"), TCA_OK);
	ck_assert_int_eq(tca_map_add_int(m, "neg", -5), TCA_OK);
	ck_assert_int_eq(tca_map_add_int(m, "min", INT64_MIN), TCA_OK);
	ck_assert_int_eq(tca_map_add_int(m, "pos", 1700000000), TCA_OK);
	ck_assert_int_eq(tca_map_add_bytes(m, "empty", NULL, 0), TCA_OK);
	arr = cbor_new_definite_array(0);
	ck_assert_int_eq(tca_map_add_item(m, "arr", arr), TCA_OK);
	ck_assert_uint_eq(cbor_refcount(arr), 1);	/* the map owns it now */

	ck_assert_ptr_null(tca_map_get(m, "absent"));
	ck_assert_int_eq(tca_map_get_text(m, "absent", small, sizeof(small)), TCA_ERR_NOT_FOUND);
	ck_assert_int_eq(tca_map_get_text(m, "t", small, sizeof(small)), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_map_get_uint(m, "t", &u), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_map_get_bool(m, "t", &v), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_map_get_bytes(m, "t", &b, &bl), TCA_ERR_BAD_REQUEST);
	ck_assert_int_eq(tca_map_get_bytes(m, "empty", &b, &bl), TCA_OK);
	ck_assert_uint_eq(bl, 0);
	/* negative integers are CBOR negints, not unsigned */
	ck_assert_int_eq(tca_map_get_uint(m, "neg", &u), TCA_ERR_BAD_REQUEST);
	ck_assert(cbor_isa_negint(tca_map_get(m, "neg")));
	ck_assert_uint_eq(cbor_get_int(tca_map_get(m, "neg")), 4);
	ck_assert_uint_eq(cbor_get_int(tca_map_get(m, "min")), (uint64_t)INT64_MAX);
	ck_assert_int_eq(tca_map_get_uint(m, "pos", &u), TCA_OK);
	ck_assert_uint_eq(u, 1700000000);
	ck_assert_int_eq(tca_map_get_text(NULL, "t", small, sizeof(small)), TCA_ERR_NOT_FOUND);

	/* every width round-trips through the wire */
	{
		static const int64_t vals[] = { 0, 23, 24, 255, 256, 65535, 65536, 4294967295LL,
			4294967296LL, INT64_MAX, -1, -24, -25, -256, -257, -65537, -4294967297LL,
			INT64_MIN };
		struct tca_response resp;
		cbor_item_t *w = new_map(sizeof(vals) / sizeof(vals[0]));
		unsigned char *buf = NULL;
		char key[8];
		size_t i, len = 0;

		for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			snprintf(key, sizeof(key), "k%zu", i);
			ck_assert_int_eq(tca_map_add_int(w, key, vals[i]), TCA_OK);
		}
		ck_assert_int_eq(tca_response_encode_result(1, w, &buf, &len), TCA_OK);
		cbor_decref(&w);
		ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
		for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			const cbor_item_t *x;

			snprintf(key, sizeof(key), "k%zu", i);
			x = tca_map_get(resp.result, key);
			ck_assert_ptr_nonnull(x);
			if (vals[i] >= 0) {
				ck_assert(cbor_isa_uint(x));
				ck_assert_uint_eq(cbor_get_int(x), (uint64_t)vals[i]);
			} else {
				ck_assert(cbor_isa_negint(x));
				ck_assert_uint_eq(cbor_get_int(x), (uint64_t)(-(vals[i] + 1)));
			}
		}
		tca_response_clear(&resp);
		free(buf);
	}

	/* a definite map that is full refuses more */
	ck_assert_int_eq(tca_map_add_uint(full, "a", 1), TCA_OK);
	ck_assert_int_eq(tca_map_add_uint(full, "b", 2), TCA_ERR_NOMEM);
	ck_assert_uint_eq(cbor_map_size(full), 1);
	cbor_decref(&full);
	cbor_decref(&m);
}
END_TEST

/* ------------------------------------------------------------ responses */

/* /wire/response/roundtrip */
START_TEST(test_response_roundtrip)
{
	struct tca_response resp;
	cbor_item_t *res = new_map(2);
	unsigned char *buf = NULL;
	char text[32];
	size_t len = 0;

	tca_map_add_text(res, "serial", "0a0b");
	tca_map_add_int(res, "not_before", 1700000000);
	ck_assert_int_eq(tca_response_encode_result(42, res, &buf, &len), TCA_OK);
	cbor_decref(&res);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_uint_eq(resp.id, 42);
	ck_assert_int_eq(resp.err, TCA_OK);
	ck_assert_ptr_nonnull(resp.result);
	ck_assert_int_eq(tca_map_get_text(resp.result, "serial", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "0a0b");
	tca_response_clear(&resp);
	ck_assert_ptr_null(resp.item);
	free(buf);

	/* NULL result: an empty map */
	ck_assert_int_eq(tca_response_encode_result(1, NULL, &buf, &len), TCA_OK);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_uint_eq(cbor_map_size(resp.result), 0);
	tca_response_clear(&resp);
	free(buf);

	/* error */
	ck_assert_int_eq(tca_response_encode_error(9, TCA_ERR_POLICY_VIOLATION,
	    "CN does not match", &buf, &len), TCA_OK);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_uint_eq(resp.id, 9);
	ck_assert_int_eq(resp.err, TCA_ERR_POLICY_VIOLATION);
	ck_assert_str_eq(resp.code, "POLICY_VIOLATION");
	ck_assert_str_eq(resp.message, "CN does not match");
	ck_assert_ptr_null(resp.result);
	ck_assert_uint_eq(resp.min_version, 0);
	tca_response_clear(&resp);
	free(buf);

	/* unsupported version carries the supported range */
	ck_assert_int_eq(tca_response_encode_error(3, TCA_ERR_UNSUPPORTED_VERSION, NULL,
	    &buf, &len), TCA_OK);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_int_eq(resp.err, TCA_ERR_UNSUPPORTED_VERSION);
	ck_assert_uint_eq(resp.min_version, TCA_PROTO_VERSION_MIN);
	ck_assert_uint_eq(resp.max_version, TCA_PROTO_VERSION_MAX);
	ck_assert_str_eq(resp.message, tca_strerror(TCA_ERR_UNSUPPORTED_VERSION));
	tca_response_clear(&resp);
	free(buf);

	/* internal codes go out as their wire code; peer bytes in a message stay
	 * valid UTF-8 */
	ck_assert_int_eq(tca_response_encode_error(0, TCA_ERR_NOMEM, "bad \xff\x01 byte",
	    &buf, &len), TCA_OK);
	ck_assert_int_eq(tca_response_decode(buf, len, &resp), TCA_OK);
	ck_assert_str_eq(resp.code, "INTERNAL");
	ck_assert_int_eq(resp.err, TCA_ERR_INTERNAL);
	ck_assert_str_eq(resp.message, "bad ?? byte");
	tca_response_clear(&resp);
	free(buf);

	ck_assert_int_eq(tca_response_encode_error(0, TCA_OK, "x", &buf, &len),
	    TCA_ERR_INVALID_ARG);
}
END_TEST

#define K_RESULT 0x66, 'r', 'e', 's', 'u', 'l', 't'
#define K_ERROR 0x65, 'e', 'r', 'r', 'o', 'r'
#define K_CODE 0x64, 'c', 'o', 'd', 'e'
#define K_MSG 0x67, 'm', 'e', 's', 's', 'a', 'g', 'e'

/* /wire/response/garbage: anything but a well-formed response is PROTOCOL */
START_TEST(test_response_garbage)
{
	const struct bad_case cases[] = {
		BC("valid", TCA_OK, 1, 0xa2, K_ID, 0x01, K_RESULT, 0xa0),
		BC("valid error", TCA_OK, 1, 0xa2, K_ID, 0x01, K_ERROR, 0xa2, K_CODE,
		    0x64, 'B', 'U', 'S', 'Y', K_MSG, 0x60),
		BC("junk", TCA_ERR_PROTOCOL, 0, 0xde, 0xad, 0xbe, 0xef),
		BC("array", TCA_ERR_PROTOCOL, 0, 0x80),
		BC("trailing", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_RESULT, 0xa0, 0x00),
		BC("no id", TCA_ERR_PROTOCOL, 0, 0xa1, K_RESULT, 0xa0),
		BC("id text", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x61, '1', K_RESULT, 0xa0),
		BC("neither", TCA_ERR_PROTOCOL, 0, 0xa1, K_ID, 0x01),
		BC("both", TCA_ERR_PROTOCOL, 0, 0xa3, K_ID, 0x01, K_RESULT, 0xa0, K_ERROR, 0xa2,
		    K_CODE, 0x64, 'B', 'U', 'S', 'Y', K_MSG, 0x60),
		BC("extra key", TCA_ERR_PROTOCOL, 0, 0xa3, K_ID, 0x01, K_RESULT, 0xa0, 0x61, 'x', 0x00),
		BC("result array", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_RESULT, 0x80),
		BC("result int keys", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_RESULT, 0xa1, 0x01, 0x01),
		BC("error without code", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_ERROR, 0xa1, K_MSG,
		    0x60),
		BC("error code OK", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_ERROR, 0xa2, K_CODE,
		    0x62, 'O', 'K', K_MSG, 0x60),
		BC("error code lower", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_ERROR, 0xa2, K_CODE,
		    0x64, 'b', 'u', 's', 'y', K_MSG, 0x60),
		BC("message bytes", TCA_ERR_PROTOCOL, 0, 0xa2, K_ID, 0x01, K_ERROR, 0xa2, K_CODE,
		    0x64, 'B', 'U', 'S', 'Y', K_MSG, 0x40),
		BC("indefinite", TCA_ERR_PROTOCOL, 0, 0xbf, K_ID, 0x01, K_RESULT, 0xa0, 0xff),
	};
	struct tca_response resp;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = tca_response_decode(cases[i].b, cases[i].n, &resp);
		ck_assert_msg(r == cases[i].want, "%s: got %d, want %d", cases[i].name, r,
		    cases[i].want);
		if (r != TCA_OK)
			ck_assert_ptr_null(resp.item);
		tca_response_clear(&resp);
	}
	/* an unknown (future) wire code is kept by name and treated as INTERNAL */
	{
		static const unsigned char future[] = { 0xa2, K_ID, 0x01, K_ERROR, 0xa2, K_CODE,
			0x63, 'N', 'E', 'W', K_MSG, 0x61, 'm' };

		ck_assert_int_eq(tca_response_decode(future, sizeof(future), &resp), TCA_OK);
		ck_assert_int_eq(resp.err, TCA_ERR_INTERNAL);
		ck_assert_str_eq(resp.code, "NEW");
		tca_response_clear(&resp);
	}
}
END_TEST

/* ------------------------------------------------------------ client */

enum fake_mode {
	FAKE_ECHO,		/* canned issue/cacerts/status results with the right id */
	FAKE_WRONG_ID,		/* answers with id + 100 */
	FAKE_REFUSE,		/* POLICY_VIOLATION */
	FAKE_UNAUTHORIZED,	/* id-0 UNAUTHORIZED at accept, then close */
	FAKE_GARBAGE,		/* a frame that is not CBOR */
	FAKE_SILENT,		/* reads the request, never answers */
	FAKE_BAD_RESULT,	/* issue result without a certificate */
};

struct fake {
	char dir[256];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	enum fake_mode mode;
	pthread_t th;
	uint64_t ids[8];
	char ops[8][TCA_OP_MAX + 1];
	int args_ok[8];
	int n;
};

static const unsigned char fake_cert[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };

static const struct tca_arg_spec issue_spec[] = {
	{ "tenant", TCA_ARG_TEXT, 1, 64, NULL, 0, NULL },
	{ "device_id", TCA_ARG_TEXT, 1, 256, NULL, 0, NULL },
	{ "csr", TCA_ARG_BYTES, 1, 0, NULL, 0, NULL },
	{ "current", TCA_ARG_BYTES, 0, 0, NULL, 0, NULL },
	{ "days", TCA_ARG_UINT, 0, 0, NULL, 0, NULL },
};

static void
fake_answer(struct fake *f, int fd, const struct tca_request *req)
{
	cbor_item_t *res = NULL, *arr;
	unsigned char *buf = NULL;
	size_t len = 0;
	char why[128];
	int i;

	switch (f->mode) {
	case FAKE_REFUSE:
		ck_assert_int_eq(tca_response_encode_error(req->id, TCA_ERR_POLICY_VIOLATION,
		    "CN \"x\" does not match device id", &buf, &len), TCA_OK);
		break;
	case FAKE_GARBAGE:
		buf = malloc(3);
		memcpy(buf, "\xff\xff\xff", 3);
		len = 3;
		break;
	case FAKE_SILENT:
		return;
	default:
		if (strcmp(req->op, "issue") == 0 || strcmp(req->op, "reenroll") == 0) {
			f->args_ok[f->n - 1] = tca_args_check(req->args, issue_spec, 5, why,
			    sizeof(why)) == TCA_OK;
			res = new_map(5);
			if (f->mode != FAKE_BAD_RESULT)
				tca_map_add_bytes(res, "certificate", fake_cert, sizeof(fake_cert));
			tca_map_add_text(res, "serial", "0102");
			tca_map_add_int(res, "not_before", 1700000000);
			tca_map_add_int(res, "not_after", 1800000000);
			tca_map_add_text(res, "fingerprint", "ab");
		} else if (strcmp(req->op, "cacerts") == 0) {
			res = new_map(1);
			arr = cbor_new_definite_array(2);
			for (i = 0; i < 2; i++) {
				cbor_item_t *b = cbor_build_bytestring(fake_cert, sizeof(fake_cert) - (size_t)i);

				ck_assert(cbor_array_push(arr, b));
				cbor_decref(&b);
			}
			tca_map_add_item(res, "certificates", arr);
		} else {
			res = new_map(1);
			tca_map_add_text(res, "version", "test");
		}
		ck_assert_int_eq(tca_response_encode_result(f->mode == FAKE_WRONG_ID ?
		    req->id + 100 : req->id, res, &buf, &len), TCA_OK);
		cbor_decref(&res);
	}
	ck_assert_int_eq(tca_frame_write(fd, buf, len, 5000), TCA_OK);
	free(buf);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct tca_request req;
	unsigned char *buf = NULL;
	char why[256];
	size_t len = 0;
	int fd, r;

	if ((fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	if (f->mode == FAKE_UNAUTHORIZED) {
		ck_assert_int_eq(tca_response_encode_error(0, TCA_ERR_UNAUTHORIZED,
		    "this uid/gid has no role on this engine", &buf, &len), TCA_OK);
		ck_assert_int_eq(tca_frame_write(fd, buf, len, 5000), TCA_OK);
		free(buf);
		close(fd);
		return NULL;
	}
	while ((r = tca_frame_read(fd, TCA_FRAME_MAX_DEFAULT, 10000, 10000, NULL, &buf, &len)) ==
	    TCA_OK) {
		ck_assert_int_eq(tca_request_decode(buf, len, &req, why, sizeof(why)), TCA_OK);
		free(buf);
		buf = NULL;
		if (f->n < 8) {
			f->ids[f->n] = req.id;
			snprintf(f->ops[f->n], sizeof(f->ops[0]), "%s", req.op);
			f->n++;
		}
		fake_answer(f, fd, &req);
		tca_request_clear(&req);
	}
	if (r == TCA_ERR_FRAME_TOO_LARGE) {
		/* as the engine does: answer with id 0, close without reading the body */
		ck_assert_int_eq(tca_response_encode_error(0, TCA_ERR_FRAME_TOO_LARGE,
		    "frame exceeds the limit", &buf, &len), TCA_OK);
		ck_assert_int_eq(tca_frame_write(fd, buf, len, 5000), TCA_OK);
		free(buf);
	}
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_un sun;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	test_mkdtemp(f->dir, sizeof(f->dir));
	ck_assert_uint_lt(strlen(f->dir) + sizeof("/e.sock"), sizeof(f->path));
	memcpy(f->path, f->dir, strlen(f->dir));
	memcpy(f->path + strlen(f->dir), "/e.sock", sizeof("/e.sock"));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, f->path, sizeof(f->path));
	ck_assert_int_ge(f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

static tca_client *
client_for(struct fake *f, int timeout_ms)
{
	struct tca_client_error err;
	tca_client *c = NULL;

	ck_assert_msg(tca_client_connect(f->path, timeout_ms, &c, &err) == TCA_CLIENT_OK,
	    "connect: %s", err.message);
	return c;
}

/* /wire/client/calls: typed helpers, request ids 1, 2, 3 on one connection,
 * arguments as the engine's schema wants them */
START_TEST(test_client_calls)
{
	static const unsigned char csr[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
	struct tca_client_error err;
	struct fake f;
	tca_client *c;
	cbor_item_t *res = NULL;
	unsigned char *cert = NULL, **certs = NULL;
	size_t cert_len = 0, *lens = NULL, n = 0;
	char text[16];

	fake_start(&f, FAKE_ECHO);
	c = client_for(&f, 5000);
	ck_assert_int_eq(tca_client_issue(c, "acme", "dev-1", csr, sizeof(csr) - 1, 30,
	    &cert, &cert_len, &err), TCA_CLIENT_OK);
	ck_assert_uint_eq(cert_len, sizeof(fake_cert));
	ck_assert_mem_eq(cert, fake_cert, sizeof(fake_cert));
	free(cert);
	ck_assert_int_eq(tca_client_reenroll(c, "acme", "dev-1", csr, sizeof(csr) - 1,
	    fake_cert, sizeof(fake_cert), 0, &cert, &cert_len, &err), TCA_CLIENT_OK);
	free(cert);
	ck_assert_int_eq(tca_client_cacerts(c, "acme", &certs, &lens, &n, &err), TCA_CLIENT_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(lens[0], sizeof(fake_cert));
	ck_assert_uint_eq(lens[1], sizeof(fake_cert) - 1);
	ck_assert_mem_eq(certs[0], fake_cert, sizeof(fake_cert));
	tca_client_free_certs(certs, lens, n);
	/* an op the table does not know: the result is passed through unchecked */
	ck_assert_int_eq(tca_client_call(c, "x.version", NULL, &res, &err), TCA_CLIENT_OK);
	ck_assert_int_eq(tca_map_get_text(res, "version", text, sizeof(text)), TCA_OK);
	ck_assert_str_eq(text, "test");
	cbor_decref(&res);
	/* a known op whose result breaks its schema: a protocol error naming the
	 * field, and the connection stays usable */
	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_ERR_PROTOCOL);
	ck_assert_ptr_null(res);
	ck_assert_msg(strstr(err.message, "proto_min") != NULL, "%s", err.message);
	tca_client_close(c);
	fake_stop(&f);

	ck_assert_int_eq(f.n, 5);
	ck_assert_uint_eq(f.ids[0], 1);
	ck_assert_uint_eq(f.ids[1], 2);
	ck_assert_uint_eq(f.ids[2], 3);
	ck_assert_uint_eq(f.ids[3], 4);
	ck_assert_str_eq(f.ops[0], "issue");
	ck_assert_str_eq(f.ops[1], "reenroll");
	ck_assert_str_eq(f.ops[2], "cacerts");
	ck_assert_str_eq(f.ops[3], "x.version");
	ck_assert_str_eq(f.ops[4], "status");
	ck_assert_int_eq(f.args_ok[0], 1);
	ck_assert_int_eq(f.args_ok[1], 1);
}
END_TEST

/* /wire/client/mismatched-id: a response for another request is a protocol
 * error and the connection is not used again */
START_TEST(test_client_wrong_id)
{
	struct tca_client_error err;
	struct fake f;
	tca_client *c;
	cbor_item_t *res = NULL;

	fake_start(&f, FAKE_WRONG_ID);
	c = client_for(&f, 5000);
	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_ERR_PROTOCOL);
	ck_assert_ptr_null(res);
	ck_assert_int_eq(err.err, TCA_ERR_PROTOCOL);
	ck_assert_str_eq(err.code, "");
	ck_assert_msg(strstr(err.message, "does not match") != NULL, "%s", err.message);
	ck_assert_int_ne(tca_client_call(c, "status", NULL, &res, &err), TCA_CLIENT_OK);
	tca_client_close(c);
	fake_stop(&f);
}
END_TEST

/* /wire/client/engine-errors: a refusal fills code and message; a
 * connection-level refusal (id 0) is reported as such, not as EPIPE */
START_TEST(test_client_refusals)
{
	struct tca_client_error err;
	struct fake f;
	tca_client *c;
	unsigned char *cert = NULL;
	size_t cert_len = 0;

	fake_start(&f, FAKE_REFUSE);
	c = client_for(&f, 5000);
	ck_assert_int_eq(tca_client_issue(c, "acme", "dev-1", (const unsigned char *)"x", 1, 0,
	    &cert, &cert_len, &err), TCA_ERR_POLICY_VIOLATION);
	ck_assert_ptr_null(cert);
	ck_assert_int_eq(err.err, TCA_ERR_POLICY_VIOLATION);
	ck_assert_str_eq(err.code, "POLICY_VIOLATION");
	ck_assert_str_eq(err.message, "CN \"x\" does not match device id");
	tca_client_close(c);
	fake_stop(&f);

	fake_start(&f, FAKE_UNAUTHORIZED);
	c = client_for(&f, 5000);
	usleep(100 * 1000);	/* let the fake engine answer and close first */
	ck_assert_int_eq(tca_client_issue(c, "acme", "dev-1", (const unsigned char *)"x", 1, 0,
	    &cert, &cert_len, &err), TCA_ERR_UNAUTHORIZED);
	ck_assert_str_eq(err.code, "UNAUTHORIZED");
	tca_client_close(c);
	fake_stop(&f);

	/* a request over the engine's cap: the engine answers FRAME_TOO_LARGE and
	 * closes while the client is still writing; the client reports the
	 * engine's reason, not EPIPE */
	{
		size_t big = 1024 * 1024;
		unsigned char *csr = calloc(1, big);

		ck_assert_ptr_nonnull(csr);
		fake_start(&f, FAKE_ECHO);
		c = client_for(&f, 5000);
		ck_assert_int_eq(tca_client_issue(c, "acme", "dev-1", csr, big, 0, &cert,
		    &cert_len, &err), TCA_ERR_FRAME_TOO_LARGE);
		ck_assert_str_eq(err.code, "FRAME_TOO_LARGE");
		tca_client_close(c);
		fake_stop(&f);
		free(csr);
	}

	fake_start(&f, FAKE_BAD_RESULT);
	c = client_for(&f, 5000);
	ck_assert_int_eq(tca_client_issue(c, "acme", "dev-1", (const unsigned char *)"x", 1, 0,
	    &cert, &cert_len, &err), TCA_ERR_PROTOCOL);
	ck_assert_ptr_null(cert);
	ck_assert_msg(strstr(err.message, "certificate") != NULL, "%s", err.message);
	tca_client_close(c);
	fake_stop(&f);
}
END_TEST

/* /wire/client/transport: garbage, silence, no engine, bad path */
START_TEST(test_client_transport)
{
	struct tca_client_error err;
	struct fake f;
	tca_client *c = NULL;
	cbor_item_t *res = NULL;
	char longpath[200];
	int64_t t0, dt;

	fake_start(&f, FAKE_GARBAGE);
	c = client_for(&f, 5000);
	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_ERR_PROTOCOL);
	tca_client_close(c);
	fake_stop(&f);

	fake_start(&f, FAKE_SILENT);
	c = client_for(&f, 300);
	t0 = mono_ms();
	ck_assert_int_eq(tca_client_call(c, "status", NULL, &res, &err), TCA_ERR_TIMEOUT);
	dt = mono_ms() - t0;
	ck_assert_msg(dt >= 250 && dt < 3000, "timeout after %lld ms", (long long)dt);
	tca_client_close(c);
	fake_stop(&f);

	c = NULL;
	ck_assert_int_eq(tca_client_connect("/nonexistent/tca-test.sock", 1000, &c, &err),
	    TCA_ERR_SYSTEM);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err.message, "/nonexistent/tca-test.sock") != NULL, "%s",
	    err.message);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(tca_client_connect(longpath, 1000, &c, &err), TCA_ERR_INVALID_ARG);
	ck_assert_str_eq(tca_client_strerror(TCA_ERR_PROTOCOL), tca_strerror(TCA_ERR_PROTOCOL));
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_frame_roundtrip);
	tcase_add_test(tc, test_frame_too_large);
	tcase_add_test(tc, test_frame_zero);
	tcase_add_test(tc, test_frame_truncated);
	tcase_add_test(tc, test_frame_timeouts);
	tcase_add_test(tc, test_frame_stop);
	tcase_add_test(tc, test_frame_write_errors);
	tcase_add_test(tc, test_request_roundtrip);
	tcase_add_test(tc, test_request_golden);
	tcase_add_test(tc, test_request_trailing);
	tcase_add_test(tc, test_request_malformed);
	tcase_add_test(tc, test_request_deep);
	tcase_add_test(tc, test_request_items);
	tcase_add_test(tc, test_request_items_memory);
	tcase_add_test(tc, test_request_peek_op);
	tcase_add_test(tc, test_args_check);
	tcase_add_test(tc, test_result_check);
	tcase_add_test(tc, test_op_table);
	tcase_add_test(tc, test_map_access);
	tcase_add_test(tc, test_response_roundtrip);
	tcase_add_test(tc, test_response_garbage);
	tcase_add_test(tc, test_client_calls);
	tcase_add_test(tc, test_client_wrong_id);
	tcase_add_test(tc, test_client_refusals);
	tcase_add_test(tc, test_client_transport);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
