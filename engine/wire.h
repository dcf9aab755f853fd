/*
 * wire.h - framing and message model of the engine's RPC (docs/rpc.md).
 *
 * Shared by the engine and libtca-client.
 *
 * Frame: 4-byte big-endian length N, then exactly N bytes holding ONE CBOR
 * data item, a map.  N is checked against the reader's cap before anything is
 * allocated; 0 is invalid.
 *
 * Request map (text keys, exactly these, no others):
 *   "v":    unsigned int, protocol version
 *   "id":   unsigned int, request id chosen by the client, echoed back
 *   "op":   text, operation name (<= 32 bytes)
 *   "args": map with text keys (may be empty)
 * Response map:
 *   "id":     the request id (0 if the request could not be decoded that far)
 *   "result": map                        - on success, or
 *   "error":  map { "code": text, "message": text
 *                   [, "min_version": uint, "max_version": uint] }
 */
#ifndef TCA_WIRE_H
#define TCA_WIRE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#define TCA_PROTO_VERSION_MIN 1
#define TCA_PROTO_VERSION_MAX 1
#define TCA_FRAME_MAX_DEFAULT 65536
#define TCA_OP_MAX 32
/*
 * Most CBOR data items (every map, array, key, value and element counts) in
 * one request frame, checked by the structural pre-check before libcbor
 * allocates anything.  The largest legitimate request, device.register with
 * 200 devices, holds about 1,020.  libcbor takes 72..104 bytes per item, so
 * a request decodes into at most ~0.45 MB plus its string bytes.
 */
#define TCA_FRAME_MAX_ITEMS 4096

/*
 * Reads one frame.  Waits up to idle_timeout_ms (< 0: forever) for the first
 * byte, polling *stop (may be NULL) every 100 ms before that byte: if *stop
 * becomes non-zero while idle, returns TCA_ERR_SHUTTING_DOWN.  Once the first
 * byte arrived the whole frame must arrive within frame_timeout_ms (< 0: no
 * limit).  Never consumes bytes past the frame; works on blocking and
 * non-blocking sockets alike (MSG_DONTWAIT + poll).
 * Returns TCA_OK with *buf_ptr (caller frees with free()) and *len_ptr;
 * TCA_ERR_EOF (closed before the first byte); TCA_ERR_TIMEOUT (idle or frame
 * timeout); TCA_ERR_TRUNCATED (closed inside a frame);
 * TCA_ERR_FRAME_TOO_LARGE (*len_ptr = announced length; nothing allocated, the
 * body is not consumed); TCA_ERR_BAD_REQUEST (length 0); TCA_ERR_SYSTEM.
 */
int tca_frame_read(int fd, size_t max_len, int idle_timeout_ms,
    int frame_timeout_ms, volatile sig_atomic_t *stop,
    unsigned char **buf_ptr, size_t *len_ptr);
/* As tca_frame_read; *idle_ptr (may be NULL) becomes 1 when TCA_ERR_TIMEOUT
 * means that no byte arrived within idle_timeout_ms, else 0. */
int tca_frame_read_ex(int fd, size_t max_len, int idle_timeout_ms,
    int frame_timeout_ms, volatile sig_atomic_t *stop,
    unsigned char **buf_ptr, size_t *len_ptr, int *idle_ptr);

/* Writes length prefix and body (MSG_NOSIGNAL), within timeout_ms overall
 * (< 0: no limit).  TCA_OK, TCA_ERR_TIMEOUT, TCA_ERR_SYSTEM (errno: EPIPE
 * etc.), TCA_ERR_INVALID_ARG (len 0 or >= 2^32). */
int tca_frame_write(int fd, const unsigned char *buf, size_t len, int timeout_ms);

/* Serialises item into a freshly allocated buffer (caller frees with free()). */
int tca_cbor_serialize(const cbor_item_t *item, unsigned char **buf_ptr, size_t *len_ptr);

/*
 * Decodes buf/len as exactly one CBOR item: TCA_ERR_BAD_REQUEST with why if
 * libcbor reports an error, if it consumed fewer than len bytes (trailing
 * data), or if the item is not a definite... map.  Before libcbor runs, the
 * bytes are checked structurally: definite lengths only, no tags, nesting
 * <= 16, no element count the data cannot hold.  *item_ptr: caller
 * cbor_decref()s.  No bound on the number of items (responses: a ca.list
 * page is large); requests go through tca_cbor_decode_map_limit.
 */
int tca_cbor_decode_map(const unsigned char *buf, size_t len,
    cbor_item_t **item_ptr, char *why, size_t whylen);
/* As tca_cbor_decode_map; the pre-check also refuses (TCA_ERR_BAD_REQUEST,
 * why naming the limit) more than max_items data items (0: no bound), before
 * libcbor allocates anything.  tca_request_decode uses TCA_FRAME_MAX_ITEMS. */
int tca_cbor_decode_map_limit(const unsigned char *buf, size_t len, size_t max_items,
    cbor_item_t **item_ptr, char *why, size_t whylen);

/* A decoded request.  args is a borrowed pointer into the owning item. */
struct tca_request {
	uint64_t version;
	uint64_t id;
	char op[TCA_OP_MAX + 1];
	cbor_item_t *item;	/* the whole map; owned, released by tca_request_clear */
	cbor_item_t *args;	/* borrowed from item */
};

/*
 * Decodes and schema-checks a request frame.  Returns TCA_OK;
 * TCA_ERR_BAD_REQUEST (bad CBOR, trailing bytes, more than TCA_FRAME_MAX_ITEMS
 * data items, missing/unknown/duplicate keys, wrong types) with why, and req->id set if the id could be read;
 * TCA_ERR_UNSUPPORTED_VERSION if v is outside [MIN, MAX] (req->id set).
 */
int tca_request_decode(const unsigned char *buf, size_t len,
    struct tca_request *req, char *why, size_t whylen);
/*
 * The request's "op" without decoding the frame: TCA_OK with op (NUL-ended)
 * if buf starts with a definite map with a text key "op" at the top level whose
 * value is a valid operation name shorter than opsz; else
 * TCA_ERR_BAD_REQUEST.  Allocates nothing; bounded by len.  Only a hint (the
 * server's idle accounting): the frame may still be refused by
 * tca_request_decode.
 */
int tca_request_peek_op(const unsigned char *buf, size_t len, char *op, size_t opsz);
void tca_request_clear(struct tca_request *req);

/*
 * Schema of a map (an op's arguments or result): the keys it may hold, each
 * at most once, of the given type.  Text must be valid UTF-8 without NUL;
 * text and bytes at most max_len bytes (0 = TCA_FRAME_MAX_DEFAULT); arrays at
 * most max_len elements (0 = no bound), each described by sub[0]; maps
 * described by sub[0..n_sub).  doc is a short note for the generated
 * operation index (docs/rpc.md).  rpc-schema.c holds every op's schemas.
 */
enum tca_arg_type {
	TCA_ARG_TEXT = 1, TCA_ARG_BYTES, TCA_ARG_UINT, TCA_ARG_BOOL,
	TCA_ARG_INT,	/* unsigned or negative, within int64 */
	TCA_ARG_MAP, TCA_ARG_ARRAY,
};
struct tca_arg_spec {
	const char *name;
	enum tca_arg_type type;
	int required;
	size_t max_len;
	const struct tca_arg_spec *sub;
	size_t n_sub;
	const char *doc;
};
/* Requests are strict: an unknown, missing, duplicate or mistyped key at any
 * level is TCA_ERR_BAD_REQUEST with why. */
int tca_args_check(const cbor_item_t *args, const struct tca_arg_spec *spec,
    size_t n_spec, char *why, size_t whylen);
/* Results are checked by clients leniently: unknown keys are ignored (a newer
 * engine may add some), a missing required or mistyped one is
 * TCA_ERR_PROTOCOL with why naming it ("certificates[2]", "token.health"). */
int tca_result_check(const cbor_item_t *result, const struct tca_arg_spec *spec,
    size_t n_spec, char *why, size_t whylen);

/*
 * Map accessors for items that passed tca_args_check (or any map): return the
 * value of text key `key` (borrowed from the map: do not decref), or NULL.  The getters return TCA_ERR_NOT_FOUND when
 * the key is absent, TCA_ERR_BAD_REQUEST on a type mismatch or, for text,
 * when it does not fit out (outsz includes the NUL).
 */
cbor_item_t *tca_map_get(const cbor_item_t *map, const char *key);
int tca_map_get_text(const cbor_item_t *map, const char *key, char *out, size_t outsz);
int tca_map_get_bytes(const cbor_item_t *map, const char *key,
    const unsigned char **data_ptr, size_t *len_ptr);	/* borrowed */
int tca_map_get_uint(const cbor_item_t *map, const char *key, uint64_t *v_ptr);
int tca_map_get_bool(const cbor_item_t *map, const char *key, int *v_ptr);

/* Builders; each returns TCA_OK or TCA_ERR_NOMEM (also when a definite map is
 * already full).  Values are copied; integers use their shortest encoding. */
int tca_map_add_text(cbor_item_t *map, const char *key, const char *value);
int tca_map_add_bytes(cbor_item_t *map, const char *key, const unsigned char *v, size_t len);
int tca_map_add_uint(cbor_item_t *map, const char *key, uint64_t v);
int tca_map_add_int(cbor_item_t *map, const char *key, int64_t v);
int tca_map_add_bool(cbor_item_t *map, const char *key, int v);
/* Adds item under key, taking over the caller's reference on success. */
int tca_map_add_item(cbor_item_t *map, const char *key, cbor_item_t *item);

/* Encoders.  args/result are borrowed (may be NULL for an empty map). */
int tca_request_encode(uint64_t version, uint64_t id, const char *op,
    const cbor_item_t *args, unsigned char **buf_ptr, size_t *len_ptr);
int tca_response_encode_result(uint64_t id, const cbor_item_t *result,
    unsigned char **buf_ptr, size_t *len_ptr);
/* err is a TCA_ERR_* code, sent as tca_err_wire_code(err).  For
 * TCA_ERR_UNSUPPORTED_VERSION the supported range is added. */
int tca_response_encode_error(uint64_t id, int err, const char *message,
    unsigned char **buf_ptr, size_t *len_ptr);

/* A decoded response.  result is borrowed from item. */
struct tca_response {
	uint64_t id;
	int err;			/* TCA_OK or tca_err_from_wire_code(code) */
	char code[32];
	char message[256];
	uint64_t min_version, max_version;	/* with UNSUPPORTED_VERSION */
	cbor_item_t *item;	/* owned */
	cbor_item_t *result;	/* borrowed, NULL on error */
};
/* TCA_OK (check resp->err), or TCA_ERR_PROTOCOL if it is not a valid response.
 * Unknown keys inside the error map are ignored (docs/rpc.md 4.2). */
int tca_response_decode(const unsigned char *buf, size_t len, struct tca_response *resp);
void tca_response_clear(struct tca_response *resp);

#endif
