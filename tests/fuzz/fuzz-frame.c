/*
 * fuzz-frame.c - fuzz target "frame": what a peer's bytes meet first in the
 * engine (engine/server.c's connection loop, engine/rpc-ops.c's dispatch).
 *
 * The input is the byte stream a client writes on its connection.  It is
 * written into one end of a Unix socketpair and read back from the other
 * with tca_frame_read (the engine's limits: TCA_FRAME_MAX_DEFAULT), frame
 * after frame, until the reader refuses or the stream ends.  Each frame then
 * goes through what the server does with it: tca_request_peek_op (its idle
 * accounting), tca_request_decode, tca_op_find and tca_args_check against
 * the operation's argument schema (engine/rpc-schema.c), and also through
 * the client's side, tca_response_decode and tca_result_check.
 *
 * Invariants checked: a request that decodes has a valid op that
 * tca_request_peek_op reads the same way, and it encodes again
 * (tca_request_encode) into a frame that decodes to the same version, id
 * and op.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cbor.h>

#include "fuzz.h"
#include "rpc-schema.h"
#include "tca-error.h"
#include "wire.h"

/* more than one largest frame, less than a Unix socket's default buffer */
#define FRAME_FUZZ_MAX_INPUT (TCA_FRAME_MAX_DEFAULT + 4096)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void
check_reencode(const struct tca_request *req)
{
	struct tca_request again;
	unsigned char *buf = NULL;
	size_t len = 0;
	char why[256];
	int r;

	if (tca_request_encode(req->version, req->id, req->op, req->args, &buf,
	    &len) != TCA_OK)
		return;	/* out of memory only */
	r = tca_request_decode(buf, len, &again, why, sizeof(why));
	FUZZ_ASSERT(r == TCA_OK);
	FUZZ_ASSERT(again.version == req->version);
	FUZZ_ASSERT(again.id == req->id);
	FUZZ_ASSERT(strcmp(again.op, req->op) == 0);
	tca_request_clear(&again);
	free(buf);
}

static void
one_frame(const unsigned char *frame, size_t len)
{
	const struct tca_op_desc *op;
	struct tca_request req;
	struct tca_response resp;
	char why[256], peek[TCA_OP_MAX + 1];
	int r, pr;

	pr = tca_request_peek_op(frame, len, peek, sizeof(peek));
	r = tca_request_decode(frame, len, &req, why, sizeof(why));
	if (r == TCA_OK) {
		FUZZ_ASSERT(req.op[0] != '\0' && req.args != NULL);
		FUZZ_ASSERT(pr == TCA_OK && strcmp(peek, req.op) == 0);
		if ((op = tca_op_find(req.op)) != NULL)
			(void)tca_args_check(req.args, op->args, op->n_args, why, sizeof(why));
		check_reencode(&req);
		tca_request_clear(&req);
	} else
		FUZZ_ASSERT(req.item == NULL);
	memset(&resp, 0, sizeof(resp));
	if (tca_response_decode(frame, len, &resp) == TCA_OK) {
		if (resp.result != NULL && pr == TCA_OK &&
		    (op = tca_op_find(peek)) != NULL)
			(void)tca_result_check(resp.result, op->result, op->n_result,
			    why, sizeof(why));
		tca_response_clear(&resp);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *frame;
	size_t len, off = 0;
	ssize_t w;
	int sv[2], r;

	if (size > FRAME_FUZZ_MAX_INPUT)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("fuzz-frame: socketpair");
		abort();
	}
	while (off < size) {
		w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* the buffer is full: the reader sees what fitted */
		off += (size_t)w;
	}
	(void)shutdown(sv[1], SHUT_WR);
	for (;;) {
		frame = NULL;
		r = tca_frame_read(sv[0], TCA_FRAME_MAX_DEFAULT, 1000, 1000, NULL, &frame, &len);
		if (r != TCA_OK) {
			FUZZ_ASSERT(frame == NULL);
			break;
		}
		FUZZ_ASSERT(frame != NULL && len > 0 && len <= TCA_FRAME_MAX_DEFAULT);
		one_frame(frame, len);
		free(frame);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
