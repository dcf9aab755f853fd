/*
 * wire.c - RPC framing and CBOR message model (docs/rpc.md).
 *
 * Compiled into the engine and into libtca-client, so it must not log: every
 * failure is reported through its return code and, where the API has one, the
 * caller's `why` buffer.
 *
 * Everything read here comes from an untrusted peer.  Before libcbor sees a
 * buffer, cbor_prescan() walks its structure: it refuses indefinite lengths,
 * tags, reserved encodings, nesting deeper than WIRE_MAX_DEPTH and element
 * counts the remaining bytes cannot possibly hold.  That keeps libcbor from
 * allocating from a forged count and keeps its recursive cbor_decref() shallow.
 * For requests it also counts data items (TCA_FRAME_MAX_ITEMS): libcbor spends
 * 72..104 bytes on every item, so 64 KiB of one-byte items would become
 * 4.7..6.8 MB; bounded, a request's tree stays under about 0.45 MB plus its
 * string bytes.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tca-error.h"
#include "text.h"
#include "wire.h"

#define WIRE_MAX_DEPTH 16
#define WIRE_STOP_POLL_MS 100

/* ------------------------------------------------------------ helpers */



/* Peer-chosen bytes echoed in an error message: printable ASCII only, so the
 * message stays valid UTF-8 and harmless in logs. */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF. */

/* Copies at most outsz-1 bytes of valid UTF-8 without control characters,
 * replacing anything else with '?' and never cutting a character in two. */
static void
copy_text_safe(const unsigned char *s, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, n;

	if (outsz == 0)
		return;
	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			if (o + 1 >= outsz)
				break;
			out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			i++;
			continue;
		}
		n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (n > len - i || !tca_utf8_valid(s + i, n)) {
			if (o + 1 >= outsz)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + n >= outsz)
			break;
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms left until deadline (-1: none) as a poll() timeout; 0 when past it */
static int
remaining_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Waits for events on fd until deadline: TCA_OK, TCA_ERR_TIMEOUT, TCA_ERR_SYSTEM. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int n, ms;

	for (;;) {
		ms = remaining_ms(deadline);
		if (deadline >= 0 && ms == 0)
			return TCA_ERR_TIMEOUT;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TCA_ERR_SYSTEM;
		}
		if (n == 0)
			continue;	/* re-checks the deadline */
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return TCA_ERR_SYSTEM;
		}
		/* POLLHUP/POLLERR: the next recv/send reports what happened */
		return TCA_OK;
	}
}

/* ------------------------------------------------------------ framing */

/* Idle phase: waits for the first byte, watching *stop. */
static int
wait_first_byte(int fd, int idle_timeout_ms, volatile sig_atomic_t *stop)
{
	int64_t end = idle_timeout_ms < 0 ? -1 : now_ms() + idle_timeout_ms;
	struct pollfd pfd;
	int n, ms;

	for (;;) {
		if (stop != NULL && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
			return TCA_ERR_SHUTTING_DOWN;
		ms = remaining_ms(end);
		if (end >= 0 && ms == 0)
			return TCA_ERR_TIMEOUT;
		if (stop != NULL && (ms < 0 || ms > WIRE_STOP_POLL_MS))
			ms = WIRE_STOP_POLL_MS;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TCA_ERR_SYSTEM;
		}
		if (n == 0)
			continue;
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return TCA_ERR_SYSTEM;
		}
		return TCA_OK;
	}
}

/*
 * Reads exactly n bytes, never more: nothing past the frame is taken out of
 * the socket.  *started says whether part of the frame was already consumed,
 * which decides between a clean EOF and a truncated frame.
 */
static int
recv_exact(int fd, unsigned char *p, size_t n, int64_t deadline, int *started)
{
	ssize_t k;
	int r;

	while (n > 0) {
		k = recv(fd, p, n, MSG_DONTWAIT);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			*started = 1;
			continue;
		}
		if (k == 0)
			return *started ? TCA_ERR_TRUNCATED : TCA_ERR_EOF;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return *started ? TCA_ERR_TRUNCATED : TCA_ERR_EOF;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return TCA_ERR_SYSTEM;
		if ((r = wait_fd(fd, POLLIN, deadline)) != TCA_OK)
			return r;
	}
	return TCA_OK;
}

int
tca_frame_read(int fd, size_t max_len, int idle_timeout_ms,
    int frame_timeout_ms, volatile sig_atomic_t *stop,
    unsigned char **buf_ptr, size_t *len_ptr)
{
	return tca_frame_read_ex(fd, max_len, idle_timeout_ms, frame_timeout_ms, stop,
	    buf_ptr, len_ptr, NULL);
}

int
tca_frame_read_ex(int fd, size_t max_len, int idle_timeout_ms,
    int frame_timeout_ms, volatile sig_atomic_t *stop,
    unsigned char **buf_ptr, size_t *len_ptr, int *idle_ptr)
{
	unsigned char hdr[4], *buf = NULL;
	size_t len = 0;
	int64_t deadline;
	int started = 0, r = TCA_ERR_INTERNAL;

	if (idle_ptr != NULL)
		*idle_ptr = 0;
	if (buf_ptr == NULL || len_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*buf_ptr = NULL;
	*len_ptr = 0;
	if (fd < 0)
		return TCA_ERR_INVALID_ARG;
	if ((r = wait_first_byte(fd, idle_timeout_ms, stop)) != TCA_OK) {
		if (r == TCA_ERR_TIMEOUT && idle_ptr != NULL)
			*idle_ptr = 1;
		goto out;
	}
	deadline = frame_timeout_ms < 0 ? -1 : now_ms() + frame_timeout_ms;
	if ((r = recv_exact(fd, hdr, sizeof(hdr), deadline, &started)) != TCA_OK)
		goto out;
	len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) |
	    ((size_t)hdr[2] << 8) | (size_t)hdr[3];
	if (len == 0) {
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if (len > max_len) {
		/* before any allocation; the body stays in the socket */
		*len_ptr = len;
		r = TCA_ERR_FRAME_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc(len)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = recv_exact(fd, buf, len, deadline, &started)) != TCA_OK)
		goto out;
	*buf_ptr = buf;
	*len_ptr = len;
	buf = NULL;
	r = TCA_OK;
 out:
	free(buf);
	return r;
}

int
tca_frame_write(int fd, const unsigned char *buf, size_t len, int timeout_ms)
{
	unsigned char hdr[4];
	struct iovec iov[2];
	struct msghdr msg;
	size_t sent = 0, total;
	int64_t deadline;
	ssize_t k;
	int niov, r = TCA_ERR_INTERNAL;

	if (fd < 0 || buf == NULL || len == 0 || len > 0xffffffffUL)
		return TCA_ERR_INVALID_ARG;
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	total = sizeof(hdr) + len;
	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	while (sent < total) {
		niov = 0;
		if (sent < sizeof(hdr)) {
			iov[niov].iov_base = hdr + sent;
			iov[niov++].iov_len = sizeof(hdr) - sent;
			iov[niov].iov_base = (void *)(uintptr_t)buf;
			iov[niov++].iov_len = len;
		} else {
			iov[niov].iov_base = (void *)(uintptr_t)(buf + (sent - sizeof(hdr)));
			iov[niov++].iov_len = total - sent;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)niov;
		k = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k >= 0) {
			sent += (size_t)k;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = TCA_ERR_SYSTEM;
			goto out;
		}
		if ((r = wait_fd(fd, POLLOUT, deadline)) != TCA_OK)
			goto out;
	}
	r = TCA_OK;
 out:
	return r;
}

/* ------------------------------------------------------------ CBOR */

int
tca_cbor_serialize(const cbor_item_t *item, unsigned char **buf_ptr, size_t *len_ptr)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len;

	if (item == NULL || buf_ptr == NULL || len_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*buf_ptr = NULL;
	*len_ptr = 0;
	len = cbor_serialize_alloc(item, &buf, &cap);
	if (len == 0 || buf == NULL) {
		free(buf);
		return TCA_ERR_NOMEM;
	}
	*buf_ptr = buf;
	*len_ptr = len;
	return TCA_OK;
}

/*
 * Structural check of buf before libcbor decodes it (see the top of the
 * file).  Accepts exactly one data item filling buf.
 */
static int
cbor_prescan(const unsigned char *b, size_t len, size_t max_items, char *why, size_t whylen)
{
	uint64_t left[WIRE_MAX_DEPTH + 1], val, items = 0;
	size_t pos = 0, i, nb;
	int depth = 0;
	unsigned char ib, major, ai;

	left[0] = 1;
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		/* every data item counts: containers, keys, values, elements */
		if (max_items != 0 && ++items > max_items)
			goto too_many;
		if (pos >= len) {
			tca_setf(why, whylen, "truncated CBOR data");
			return TCA_ERR_BAD_REQUEST;
		}
		ib = b[pos++];
		major = ib >> 5;
		ai = ib & 0x1f;
		if (ai < 24)
			val = ai;
		else if (ai <= 27) {
			nb = (size_t)1 << (ai - 24);
			if (len - pos < nb) {
				tca_setf(why, whylen, "truncated CBOR data");
				return TCA_ERR_BAD_REQUEST;
			}
			for (val = 0, i = 0; i < nb; i++)
				val = (val << 8) | b[pos++];
		} else if (ai == 31) {
			tca_setf(why, whylen, major == 7 ? "unexpected CBOR break" :
			    "indefinite-length CBOR items are not allowed");
			return TCA_ERR_BAD_REQUEST;
		} else {
			tca_setf(why, whylen, "malformed CBOR (reserved encoding)");
			return TCA_ERR_BAD_REQUEST;
		}
		switch (major) {
		case 0:
		case 1:
		case 7:
			break;
		case 2:
		case 3:
			if (val > len - pos) {
				tca_setf(why, whylen, "truncated CBOR string");
				return TCA_ERR_BAD_REQUEST;
			}
			pos += (size_t)val;
			break;
		case 4:
		case 5:
			/* every element needs at least one byte */
			if (val > (len - pos) / (major == 5 ? 2 : 1)) {
				tca_setf(why, whylen, "CBOR %s announces more elements than the data holds",
				    major == 5 ? "map" : "array");
				return TCA_ERR_BAD_REQUEST;
			}
			/* each announced element is at least one more item: refuse a
			 * count over the limit before walking it */
			if (max_items != 0 && (major == 5 ? val * 2 : val) > max_items - items)
				goto too_many;
			if (val == 0)
				break;
			if (depth + 1 > WIRE_MAX_DEPTH) {
				tca_setf(why, whylen, "CBOR nested more than %d levels deep", WIRE_MAX_DEPTH);
				return TCA_ERR_BAD_REQUEST;
			}
			left[++depth] = major == 5 ? val * 2 : val;
			break;
		default:
			tca_setf(why, whylen, "CBOR tags are not allowed");
			return TCA_ERR_BAD_REQUEST;
		}
	}
	if (pos != len) {
		tca_setf(why, whylen, "trailing data after the CBOR map (%zu bytes)", len - pos);
		return TCA_ERR_BAD_REQUEST;
	}
	return TCA_OK;
 too_many:
	tca_setf(why, whylen, "the frame holds more than %zu CBOR data items (the limit per "
	    "request)", max_items);
	return TCA_ERR_BAD_REQUEST;
}

int
tca_cbor_decode_map(const unsigned char *buf, size_t len,
    cbor_item_t **item_ptr, char *why, size_t whylen)
{
	return tca_cbor_decode_map_limit(buf, len, 0, item_ptr, why, whylen);
}

int
tca_cbor_decode_map_limit(const unsigned char *buf, size_t len, size_t max_items,
    cbor_item_t **item_ptr, char *why, size_t whylen)
{
	struct cbor_load_result res;
	cbor_item_t *item = NULL;
	int r = TCA_ERR_INTERNAL;

	if (item_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*item_ptr = NULL;
	if (buf == NULL || len == 0) {
		tca_setf(why, whylen, "empty message");
		return TCA_ERR_BAD_REQUEST;
	}
	if ((r = cbor_prescan(buf, len, max_items, why, whylen)) != TCA_OK)
		goto out;
	memset(&res, 0, sizeof(res));
	item = cbor_load(buf, len, &res);
	if (item == NULL || res.error.code != CBOR_ERR_NONE) {
		if (res.error.code == CBOR_ERR_MEMERROR) {
			tca_setf(why, whylen, "out of memory decoding CBOR");
			r = TCA_ERR_NOMEM;
		} else {
			tca_setf(why, whylen, "malformed CBOR at offset %zu", res.error.position);
			r = TCA_ERR_BAD_REQUEST;
		}
		goto out;
	}
	if (res.read != len) {
		tca_setf(why, whylen, "trailing data after the CBOR map (%zu bytes)", len - res.read);
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if (!cbor_isa_map(item) || !cbor_map_is_definite(item)) {
		tca_setf(why, whylen, "message is not a definite-length CBOR map");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	*item_ptr = item;
	item = NULL;
	r = TCA_OK;
 out:
	if (item != NULL)
		cbor_decref(&item);
	return r;
}

static int
is_text(const cbor_item_t *it)
{
	return it != NULL && cbor_isa_string(it) && cbor_string_is_definite(it);
}

static int
key_eq(const cbor_item_t *key, const char *s)
{
	size_t l = strlen(s);

	return is_text(key) && cbor_string_length(key) == l &&
	    (l == 0 || memcmp(cbor_string_handle(key), s, l) == 0);
}

static int
key_cmp(const void *a, const void *b)
{
	const cbor_item_t *x = *(cbor_item_t * const *)a, *y = *(cbor_item_t * const *)b;
	size_t lx = cbor_string_length(x), ly = cbor_string_length(y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (lx == 0)
		return 0;
	return memcmp(cbor_string_handle(x), cbor_string_handle(y), lx);
}

/*
 * A definite map whose keys are all definite text strings, none twice.
 * Duplicates are found by sorting, so a peer cannot make this quadratic.
 */
static int
check_map_keys(const cbor_item_t *map, const char *what, char *why, size_t whylen)
{
	struct cbor_pair *p;
	cbor_item_t **keys = NULL;
	char name[40];
	size_t i, n;
	int r = TCA_ERR_INTERNAL;

	if (map == NULL || !cbor_isa_map(map) || !cbor_map_is_definite(map)) {
		tca_setf(why, whylen, "%s is not a definite-length map", what);
		return TCA_ERR_BAD_REQUEST;
	}
	n = cbor_map_size(map);
	if (n == 0)
		return TCA_OK;
	p = cbor_map_handle(map);
	for (i = 0; i < n; i++) {
		if (!is_text(p[i].key)) {
			tca_setf(why, whylen, "%s has a key that is not a text string", what);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	if (n == 1)
		return TCA_OK;
	if ((keys = calloc(n, sizeof(*keys))) == NULL)
		return TCA_ERR_NOMEM;
	for (i = 0; i < n; i++)
		keys[i] = p[i].key;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 1; i < n; i++) {
		if (key_cmp(&keys[i - 1], &keys[i]) == 0) {
			tca_sanitize(cbor_string_handle(keys[i]), cbor_string_length(keys[i]),
			    name, sizeof(name));
			tca_setf(why, whylen, "%s has duplicate key \"%s\"", what, name);
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
	}
	r = TCA_OK;
 out:
	free(keys);
	return r;
}

static int
get_uint(const cbor_item_t *it, uint64_t *v)
{
	if (it == NULL || !cbor_isa_uint(it))
		return 0;
	*v = cbor_get_int(it);
	return 1;
}

/* ------------------------------------------------------------ requests */

static int
op_name_valid(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TCA_OP_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '.' || s[i] == '_'))
			return 0;
	return 1;
}

int
tca_request_decode(const unsigned char *buf, size_t len,
    struct tca_request *req, char *why, size_t whylen)
{
	cbor_item_t *item = NULL, *v, *id, *op, *args;
	struct cbor_pair *p;
	char name[40];
	size_t i, n;
	int r = TCA_ERR_INTERNAL;

	if (req == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(req, 0, sizeof(*req));
	if ((r = tca_cbor_decode_map_limit(buf, len, TCA_FRAME_MAX_ITEMS, &item, why,
	    whylen)) != TCA_OK)
		goto out;
	if ((r = check_map_keys(item, "request", why, whylen)) != TCA_OK)
		goto out;
	/* the id first, so that every later refusal can be matched by the client */
	if ((id = tca_map_get(item, "id")) != NULL && !get_uint(id, &req->id)) {
		tca_setf(why, whylen, "request \"id\" must be an unsigned integer");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	/* then the version: the rest of the schema belongs to it */
	if ((v = tca_map_get(item, "v")) == NULL || !get_uint(v, &req->version)) {
		tca_setf(why, whylen, v == NULL ? "request has no \"v\"" :
		    "request \"v\" must be an unsigned integer");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if (req->version < TCA_PROTO_VERSION_MIN || req->version > TCA_PROTO_VERSION_MAX) {
		tca_setf(why, whylen, "protocol version %llu is not supported (%d..%d)",
		    (unsigned long long)req->version, TCA_PROTO_VERSION_MIN, TCA_PROTO_VERSION_MAX);
		r = TCA_ERR_UNSUPPORTED_VERSION;
		goto out;
	}
	n = cbor_map_size(item);
	p = cbor_map_handle(item);
	for (i = 0; i < n; i++) {
		if (key_eq(p[i].key, "v") || key_eq(p[i].key, "id") ||
		    key_eq(p[i].key, "op") || key_eq(p[i].key, "args"))
			continue;
		tca_sanitize(cbor_string_handle(p[i].key), cbor_string_length(p[i].key),
		    name, sizeof(name));
		tca_setf(why, whylen, "unknown request key \"%s\"", name);
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if (id == NULL) {
		tca_setf(why, whylen, "request has no \"id\"");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if ((op = tca_map_get(item, "op")) == NULL || !is_text(op) ||
	    !op_name_valid(cbor_string_handle(op), cbor_string_length(op))) {
		tca_setf(why, whylen, op == NULL ? "request has no \"op\"" :
		    "request \"op\" must be text of 1..%d characters a-z, '.' and '_'", TCA_OP_MAX);
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if ((args = tca_map_get(item, "args")) == NULL) {
		tca_setf(why, whylen, "request has no \"args\"");
		r = TCA_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = check_map_keys(args, "request \"args\"", why, whylen)) != TCA_OK)
		goto out;
	memcpy(req->op, cbor_string_handle(op), cbor_string_length(op));
	req->op[cbor_string_length(op)] = '\0';
	req->item = item;
	req->args = args;
	item = NULL;
	r = TCA_OK;
 out:
	if (item != NULL)
		cbor_decref(&item);
	return r;
}

/* One CBOR head at *pos: major type and argument; -1 if truncated, reserved
 * or indefinite. */
static int
cbor_head(const unsigned char *b, size_t len, size_t *pos, unsigned char *major,
    uint64_t *val)
{
	unsigned char ai;
	size_t i, nb;

	if (*pos >= len)
		return -1;
	*major = b[*pos] >> 5;
	ai = b[(*pos)++] & 0x1f;
	if (ai < 24) {
		*val = ai;
		return 0;
	}
	if (ai > 27)
		return -1;
	nb = (size_t)1 << (ai - 24);
	if (len - *pos < nb)
		return -1;
	for (*val = 0, i = 0; i < nb; i++)
		*val = (*val << 8) | b[(*pos)++];
	return 0;
}

/* Skips one data item (no recursion: a count of items still to skip). */
static int
cbor_skip(const unsigned char *b, size_t len, size_t *pos)
{
	uint64_t pending = 1, val;
	unsigned char major;

	while (pending > 0) {
		pending--;
		if (cbor_head(b, len, pos, &major, &val) != 0)
			return -1;
		switch (major) {
		case 2:
		case 3:
			if (val > len - *pos)
				return -1;
			*pos += (size_t)val;
			break;
		case 4:
		case 5:
			/* bounded by the bytes left, so pending cannot overflow */
			if (val > len - *pos)
				return -1;
			pending += major == 5 ? val * 2 : val;
			break;
		case 6:
			pending++;
			break;
		default:
			break;
		}
	}
	return 0;
}

int
tca_request_peek_op(const unsigned char *buf, size_t len, char *op, size_t opsz)
{
	uint64_t n, klen, vlen;
	size_t pos = 0;
	unsigned char major;

	if (op == NULL || opsz == 0)
		return TCA_ERR_INVALID_ARG;
	op[0] = '\0';
	if (buf == NULL || cbor_head(buf, len, &pos, &major, &n) != 0 || major != 5)
		return TCA_ERR_BAD_REQUEST;
	while (n-- > 0) {
		if (cbor_head(buf, len, &pos, &major, &klen) != 0 || major != 3 ||
		    klen > len - pos)
			return TCA_ERR_BAD_REQUEST;
		pos += (size_t)klen;
		if (klen == 2 && memcmp(buf + pos - 2, "op", 2) == 0) {
			if (cbor_head(buf, len, &pos, &major, &vlen) != 0 || major != 3 ||
			    vlen > len - pos || vlen >= opsz ||
			    !op_name_valid(buf + pos, (size_t)vlen))
				return TCA_ERR_BAD_REQUEST;
			memcpy(op, buf + pos, (size_t)vlen);
			op[vlen] = '\0';
			return TCA_OK;
		}
		if (cbor_skip(buf, len, &pos) != 0)
			return TCA_ERR_BAD_REQUEST;
	}
	return TCA_ERR_BAD_REQUEST;
}

void
tca_request_clear(struct tca_request *req)
{
	if (req == NULL)
		return;
	if (req->item != NULL)
		cbor_decref(&req->item);
	memset(req, 0, sizeof(*req));
}

/* ------------------------------------------------------------ arguments */

static int check_map(const cbor_item_t *map, const struct tca_arg_spec *spec,
    size_t n_spec, const char *what, const char *prefix, int strict, int err,
    char *why, size_t whylen);

/*
 * Checks one value against its spec.  what is "argument" or "result field"
 * (for the message), name the key's printable name.  Requests are strict
 * (unknown keys refused, at every level); results are lenient (unknown keys
 * ignored: a newer engine may add fields).
 */
static int
check_value(const cbor_item_t *val, const struct tca_arg_spec *s, const char *what,
    const char *name, int strict, int err, char *why, size_t whylen)
{
	size_t l, max = s->max_len != 0 ? s->max_len : strict ? TCA_FRAME_MAX_DEFAULT : SIZE_MAX;
	size_t i, n;
	uint64_t u;
	int r;

	switch (s->type) {
	case TCA_ARG_TEXT:
		if (!is_text(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be a text string", what, name);
			return err;
		}
		l = cbor_string_length(val);
		if (l > max) {
			tca_setf(why, whylen, "%s \"%s\" is longer than %zu bytes", what, name, max);
			return err;
		}
		if (l > 0 && memchr(cbor_string_handle(val), '\0', l) != NULL) {
			tca_setf(why, whylen, "%s \"%s\" contains a NUL character", what, name);
			return err;
		}
		if (!tca_utf8_valid(cbor_string_handle(val), l)) {
			tca_setf(why, whylen, "%s \"%s\" is not valid UTF-8", what, name);
			return err;
		}
		return TCA_OK;
	case TCA_ARG_BYTES:
		if (!cbor_isa_bytestring(val) || !cbor_bytestring_is_definite(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be a byte string", what, name);
			return err;
		}
		if (cbor_bytestring_length(val) > max) {
			tca_setf(why, whylen, "%s \"%s\" is longer than %zu bytes", what, name, max);
			return err;
		}
		return TCA_OK;
	case TCA_ARG_UINT:
		if (!cbor_isa_uint(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be an unsigned integer", what, name);
			return err;
		}
		return TCA_OK;
	case TCA_ARG_INT:
		if (!cbor_isa_uint(val) && !cbor_isa_negint(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be an integer", what, name);
			return err;
		}
		if (cbor_isa_negint(val) && (u = cbor_get_int(val)) > (uint64_t)INT64_MAX) {
			tca_setf(why, whylen, "%s \"%s\" is below the int64 range", what, name);
			return err;
		}
		return TCA_OK;
	case TCA_ARG_BOOL:
		if (!cbor_is_bool(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be true or false", what, name);
			return err;
		}
		return TCA_OK;
	case TCA_ARG_MAP:
		if (!cbor_isa_map(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be a map", what, name);
			return err;
		}
		return check_map(val, s->sub, s->n_sub, what, name, strict, err, why, whylen);
	case TCA_ARG_ARRAY:
		if (!cbor_isa_array(val) || !cbor_array_is_definite(val)) {
			tca_setf(why, whylen, "%s \"%s\" must be an array", what, name);
			return err;
		}
		/* for arrays max_len bounds the element count (0: no bound) */
		n = cbor_array_size(val);
		if (s->max_len != 0 && n > s->max_len) {
			tca_setf(why, whylen, "%s \"%s\" has more than %zu elements", what,
			    name, s->max_len);
			return err;
		}
		if (s->sub == NULL || s->n_sub != 1)
			break;
		for (i = 0; i < n; i++) {
			const cbor_item_t *e = cbor_array_handle(val)[i];
			char ename[96];

			snprintf(ename, sizeof(ename), "%.60s[%zu]", name, i);
			if ((r = check_value(e, &s->sub[0], what, ename, strict, err,
			    why, whylen)) != TCA_OK)
				return r;
		}
		return TCA_OK;
	default:
		break;
	}
	tca_setf(why, whylen, "%s \"%s\" has no usable schema", what, name);
	return TCA_ERR_INTERNAL;
}

/* Checks a map's keys against spec[0..n_spec); prefix names the enclosing
 * field for messages ("" at the top). */
static int
check_map(const cbor_item_t *map, const struct tca_arg_spec *spec, size_t n_spec,
    const char *what, const char *prefix, int strict, int err, char *why, size_t whylen)
{
	struct cbor_pair *p;
	const struct tca_arg_spec *s;
	char key[40], name[120];
	size_t i, j, n;
	int r;

	if ((r = check_map_keys(map, prefix[0] != '\0' ? prefix : strict ? "args" : "result",
	    why, whylen)) != TCA_OK)
		return r == TCA_ERR_NOMEM ? r : err;
	n = cbor_map_size(map);
	p = cbor_map_handle(map);
	for (i = 0; i < n; i++) {
		tca_sanitize(cbor_string_handle(p[i].key), cbor_string_length(p[i].key),
		    key, sizeof(key));
		snprintf(name, sizeof(name), "%.70s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
		for (s = NULL, j = 0; j < n_spec; j++)
			if (key_eq(p[i].key, spec[j].name))
				s = &spec[j];
		if (s == NULL) {
			if (!strict)
				continue;
			tca_setf(why, whylen, "unknown %s \"%s\"", what, name);
			return err;
		}
		if ((r = check_value(p[i].value, s, what, name, strict, err, why, whylen)) != TCA_OK)
			return r;
	}
	for (j = 0; j < n_spec; j++) {
		if (spec[j].required && tca_map_get(map, spec[j].name) == NULL) {
			tca_setf(why, whylen, "missing %s \"%s%s%s\"", what, prefix,
			    prefix[0] != '\0' ? "." : "", spec[j].name);
			return err;
		}
	}
	return TCA_OK;
}

int
tca_args_check(const cbor_item_t *args, const struct tca_arg_spec *spec,
    size_t n_spec, char *why, size_t whylen)
{
	return check_map(args, spec, n_spec, "argument", "", 1, TCA_ERR_BAD_REQUEST,
	    why, whylen);
}

int
tca_result_check(const cbor_item_t *result, const struct tca_arg_spec *spec,
    size_t n_spec, char *why, size_t whylen)
{
	if (result == NULL || !cbor_isa_map(result)) {
		tca_setf(why, whylen, "result is not a map");
		return TCA_ERR_PROTOCOL;
	}
	return check_map(result, spec, n_spec, "result field", "", 0, TCA_ERR_PROTOCOL,
	    why, whylen);
}

/* ------------------------------------------------------------ accessors */

cbor_item_t *
tca_map_get(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *p;
	size_t i, n;

	if (map == NULL || key == NULL || !cbor_isa_map(map))
		return NULL;
	n = cbor_map_size(map);
	p = cbor_map_handle(map);
	for (i = 0; i < n; i++)
		if (key_eq(p[i].key, key))
			return p[i].value;
	return NULL;
}

int
tca_map_get_text(const cbor_item_t *map, const char *key, char *out, size_t outsz)
{
	const cbor_item_t *v;
	size_t l;

	if (out == NULL || outsz == 0)
		return TCA_ERR_INVALID_ARG;
	out[0] = '\0';
	if ((v = tca_map_get(map, key)) == NULL)
		return TCA_ERR_NOT_FOUND;
	if (!is_text(v))
		return TCA_ERR_BAD_REQUEST;
	l = cbor_string_length(v);
	/* a NUL would silently shorten the C string the caller sees */
	if (l >= outsz || (l > 0 && memchr(cbor_string_handle(v), '\0', l) != NULL))
		return TCA_ERR_BAD_REQUEST;
	if (l > 0)
		memcpy(out, cbor_string_handle(v), l);
	out[l] = '\0';
	return TCA_OK;
}

int
tca_map_get_bytes(const cbor_item_t *map, const char *key,
    const unsigned char **data_ptr, size_t *len_ptr)
{
	const cbor_item_t *v;

	if (data_ptr == NULL || len_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*data_ptr = NULL;
	*len_ptr = 0;
	if ((v = tca_map_get(map, key)) == NULL)
		return TCA_ERR_NOT_FOUND;
	if (!cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v))
		return TCA_ERR_BAD_REQUEST;
	*data_ptr = cbor_bytestring_handle(v);
	*len_ptr = cbor_bytestring_length(v);
	return TCA_OK;
}

int
tca_map_get_uint(const cbor_item_t *map, const char *key, uint64_t *v_ptr)
{
	const cbor_item_t *v;

	if (v_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*v_ptr = 0;
	if ((v = tca_map_get(map, key)) == NULL)
		return TCA_ERR_NOT_FOUND;
	if (!get_uint(v, v_ptr))
		return TCA_ERR_BAD_REQUEST;
	return TCA_OK;
}

int
tca_map_get_bool(const cbor_item_t *map, const char *key, int *v_ptr)
{
	const cbor_item_t *v;

	if (v_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*v_ptr = 0;
	if ((v = tca_map_get(map, key)) == NULL)
		return TCA_ERR_NOT_FOUND;
	if (!cbor_is_bool(v))
		return TCA_ERR_BAD_REQUEST;
	*v_ptr = cbor_get_bool(v) ? 1 : 0;
	return TCA_OK;
}

/* ------------------------------------------------------------ builders */

/* Adds key -> value; consumes the reference on value in every case. */
static int
map_add_owned(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k = NULL;
	int r = TCA_ERR_NOMEM;

	if (value == NULL)
		return TCA_ERR_NOMEM;
	if (map == NULL || key == NULL || !cbor_isa_map(map)) {
		r = TCA_ERR_INVALID_ARG;
		goto out;
	}
	if ((k = cbor_build_string(key)) == NULL)
		goto out;
	/* fails when a definite map is already full */
	if (!cbor_map_add(map, (struct cbor_pair){ .key = k, .value = value }))
		goto out;
	r = TCA_OK;
 out:
	if (k != NULL)
		cbor_decref(&k);
	cbor_decref(&value);
	return r;
}

int
tca_map_add_text(cbor_item_t *map, const char *key, const char *value)
{
	if (value == NULL)
		return TCA_ERR_INVALID_ARG;
	return map_add_owned(map, key, cbor_build_string(value));
}

int
tca_map_add_bytes(cbor_item_t *map, const char *key, const unsigned char *v, size_t len)
{
	if (v == NULL && len != 0)
		return TCA_ERR_INVALID_ARG;
	return map_add_owned(map, key, cbor_build_bytestring(v != NULL ? v :
	    (const unsigned char *)"", len));
}

/* Integers in their shortest encoding (RFC 8949 preferred serialization). */
static cbor_item_t *
build_uint(uint64_t v)
{
	if (v <= UINT8_MAX)
		return cbor_build_uint8((uint8_t)v);
	if (v <= UINT16_MAX)
		return cbor_build_uint16((uint16_t)v);
	if (v <= UINT32_MAX)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

/* CBOR negative integer -1 - n */
static cbor_item_t *
build_negint(uint64_t n)
{
	if (n <= UINT8_MAX)
		return cbor_build_negint8((uint8_t)n);
	if (n <= UINT16_MAX)
		return cbor_build_negint16((uint16_t)n);
	if (n <= UINT32_MAX)
		return cbor_build_negint32((uint32_t)n);
	return cbor_build_negint64(n);
}

int
tca_map_add_uint(cbor_item_t *map, const char *key, uint64_t v)
{
	return map_add_owned(map, key, build_uint(v));
}

int
tca_map_add_int(cbor_item_t *map, const char *key, int64_t v)
{
	/* CBOR negative n encodes -1 - n; written so INT64_MIN cannot overflow */
	if (v >= 0)
		return map_add_owned(map, key, build_uint((uint64_t)v));
	return map_add_owned(map, key, build_negint((uint64_t)(-(v + 1))));
}

int
tca_map_add_bool(cbor_item_t *map, const char *key, int v)
{
	return map_add_owned(map, key, cbor_build_bool(v != 0));
}

int
tca_map_add_item(cbor_item_t *map, const char *key, cbor_item_t *item)
{
	cbor_item_t *k = NULL;
	int r = TCA_ERR_NOMEM;

	if (map == NULL || key == NULL || item == NULL || !cbor_isa_map(map))
		return TCA_ERR_INVALID_ARG;
	if ((k = cbor_build_string(key)) == NULL)
		goto out;
	if (!cbor_map_add(map, (struct cbor_pair){ .key = k, .value = item }))
		goto out;
	/* the map holds its own reference now; drop the caller's */
	cbor_decref(&item);
	r = TCA_OK;
 out:
	if (k != NULL)
		cbor_decref(&k);
	return r;
}

/* ------------------------------------------------------------ encoders */

/* Adds a borrowed map (NULL: a new empty one) under key. */
static int
add_borrowed_map(cbor_item_t *map, const char *key, const cbor_item_t *value)
{
	cbor_item_t *v;
	int r;

	if (value != NULL && !cbor_isa_map(value))
		return TCA_ERR_INVALID_ARG;
	/* libcbor takes non-const items; the value is only referenced, not changed */
	v = value != NULL ? cbor_incref((cbor_item_t *)(uintptr_t)value) :
	    cbor_new_definite_map(0);
	if (v == NULL)
		return TCA_ERR_NOMEM;
	if ((r = tca_map_add_item(map, key, v)) != TCA_OK)
		cbor_decref(&v);
	return r;
}

static int
serialize_and_free(cbor_item_t **m, unsigned char **buf_ptr, size_t *len_ptr)
{
	int r = tca_cbor_serialize(*m, buf_ptr, len_ptr);

	cbor_decref(m);
	return r;
}

int
tca_request_encode(uint64_t version, uint64_t id, const char *op,
    const cbor_item_t *args, unsigned char **buf_ptr, size_t *len_ptr)
{
	cbor_item_t *m = NULL;
	size_t l;
	int r = TCA_ERR_INTERNAL;

	if (buf_ptr == NULL || len_ptr == NULL || op == NULL)
		return TCA_ERR_INVALID_ARG;
	*buf_ptr = NULL;
	*len_ptr = 0;
	l = strlen(op);
	if (l == 0 || l > TCA_OP_MAX)
		return TCA_ERR_INVALID_ARG;
	if ((m = cbor_new_definite_map(4)) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = tca_map_add_uint(m, "v", version)) != TCA_OK ||
	    (r = tca_map_add_uint(m, "id", id)) != TCA_OK ||
	    (r = tca_map_add_text(m, "op", op)) != TCA_OK ||
	    (r = add_borrowed_map(m, "args", args)) != TCA_OK) {
		cbor_decref(&m);
		return r;
	}
	return serialize_and_free(&m, buf_ptr, len_ptr);
}

int
tca_response_encode_result(uint64_t id, const cbor_item_t *result,
    unsigned char **buf_ptr, size_t *len_ptr)
{
	cbor_item_t *m = NULL;
	int r = TCA_ERR_INTERNAL;

	if (buf_ptr == NULL || len_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*buf_ptr = NULL;
	*len_ptr = 0;
	if ((m = cbor_new_definite_map(2)) == NULL)
		return TCA_ERR_NOMEM;
	if ((r = tca_map_add_uint(m, "id", id)) != TCA_OK ||
	    (r = add_borrowed_map(m, "result", result)) != TCA_OK) {
		cbor_decref(&m);
		return r;
	}
	return serialize_and_free(&m, buf_ptr, len_ptr);
}

int
tca_response_encode_error(uint64_t id, int err, const char *message,
    unsigned char **buf_ptr, size_t *len_ptr)
{
	cbor_item_t *m = NULL, *e = NULL;
	char msg[512];
	int vr, r = TCA_ERR_INTERNAL;

	if (buf_ptr == NULL || len_ptr == NULL || err >= 0)
		return TCA_ERR_INVALID_ARG;
	*buf_ptr = NULL;
	*len_ptr = 0;
	if (message == NULL || message[0] == '\0')
		message = tca_strerror(err);
	/* messages may quote peer input: keep them valid UTF-8 and bounded */
	copy_text_safe((const unsigned char *)message, strlen(message), msg, sizeof(msg));
	vr = err == TCA_ERR_UNSUPPORTED_VERSION;
	r = TCA_ERR_NOMEM;
	if ((m = cbor_new_definite_map(2)) == NULL ||
	    (e = cbor_new_definite_map(vr ? 4 : 2)) == NULL)
		goto out;
	if ((r = tca_map_add_text(e, "code", tca_err_wire_code(err))) != TCA_OK ||
	    (r = tca_map_add_text(e, "message", msg)) != TCA_OK ||
	    (vr && (r = tca_map_add_uint(e, "min_version", TCA_PROTO_VERSION_MIN)) != TCA_OK) ||
	    (vr && (r = tca_map_add_uint(e, "max_version", TCA_PROTO_VERSION_MAX)) != TCA_OK) ||
	    (r = tca_map_add_uint(m, "id", id)) != TCA_OK ||
	    (r = tca_map_add_item(m, "error", e)) != TCA_OK)
		goto out;
	e = NULL;
	r = serialize_and_free(&m, buf_ptr, len_ptr);
 out:
	if (e != NULL)
		cbor_decref(&e);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

/* ------------------------------------------------------------ responses */

static int
wire_code_valid(const unsigned char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_'))
			return 0;
	return 1;
}

/* The error map: code and message required, the version range optional;
 * other keys are ignored (later protocol versions may add detail). */
static int
decode_error_map(const cbor_item_t *e, struct tca_response *resp)
{
	const cbor_item_t *code, *msg, *x;

	if (check_map_keys(e, "error", NULL, 0) != TCA_OK)
		return TCA_ERR_PROTOCOL;
	if ((code = tca_map_get(e, "code")) == NULL || !is_text(code) ||
	    !wire_code_valid(cbor_string_handle(code), cbor_string_length(code),
	    sizeof(resp->code) - 1))
		return TCA_ERR_PROTOCOL;
	if ((msg = tca_map_get(e, "message")) == NULL || !is_text(msg) ||
	    !tca_utf8_valid(cbor_string_handle(msg), cbor_string_length(msg)))
		return TCA_ERR_PROTOCOL;
	memcpy(resp->code, cbor_string_handle(code), cbor_string_length(code));
	resp->code[cbor_string_length(code)] = '\0';
	copy_text_safe(cbor_string_handle(msg), cbor_string_length(msg),
	    resp->message, sizeof(resp->message));
	if ((x = tca_map_get(e, "min_version")) != NULL && !get_uint(x, &resp->min_version))
		return TCA_ERR_PROTOCOL;
	if ((x = tca_map_get(e, "max_version")) != NULL && !get_uint(x, &resp->max_version))
		return TCA_ERR_PROTOCOL;
	resp->err = tca_err_from_wire_code(resp->code);
	/* an "error" that claims success would leave the caller without a result */
	if (resp->err == TCA_OK)
		return TCA_ERR_PROTOCOL;
	return TCA_OK;
}

int
tca_response_decode(const unsigned char *buf, size_t len, struct tca_response *resp)
{
	cbor_item_t *item = NULL, *id, *result, *error;
	int r = TCA_ERR_PROTOCOL;

	if (resp == NULL)
		return TCA_ERR_INVALID_ARG;
	memset(resp, 0, sizeof(resp[0]));
	if ((r = tca_cbor_decode_map(buf, len, &item, NULL, 0)) != TCA_OK) {
		r = r == TCA_ERR_NOMEM ? r : TCA_ERR_PROTOCOL;
		goto out;
	}
	r = TCA_ERR_PROTOCOL;
	if (check_map_keys(item, "response", NULL, 0) != TCA_OK || cbor_map_size(item) != 2)
		goto out;
	if ((id = tca_map_get(item, "id")) == NULL || !get_uint(id, &resp->id))
		goto out;
	result = tca_map_get(item, "result");
	error = tca_map_get(item, "error");
	if ((result == NULL) == (error == NULL))
		goto out;
	if (result != NULL) {
		if (check_map_keys(result, "result", NULL, 0) != TCA_OK)
			goto out;
		resp->err = TCA_OK;
		resp->result = result;
	} else if ((r = decode_error_map(error, resp)) != TCA_OK)
		goto out;
	resp->item = item;
	item = NULL;
	r = TCA_OK;
 out:
	if (item != NULL)
		cbor_decref(&item);
	if (r != TCA_OK) {
		memset(resp, 0, sizeof(resp[0]));
		resp->err = r;
	}
	return r;
}

void
tca_response_clear(struct tca_response *resp)
{
	if (resp == NULL)
		return;
	if (resp->item != NULL)
		cbor_decref(&resp->item);
	memset(resp, 0, sizeof(resp[0]));
}
