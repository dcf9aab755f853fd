/*
 * cli-util.h - small helpers shared by the command-line tools (tca-client,
 * ca-admin): exit codes, socket default, bounded file reading, certificate
 * output, CBOR result printing and error reporting.
 *
 * Everything prints to the FILE it is given and never exits the process.
 */
#ifndef TCA_CLI_UTIL_H
#define TCA_CLI_UTIL_H

#include <stddef.h>
#include <stdio.h>

#include <cbor.h>

#include "tca-client.h"

/* Exit codes common to the tools. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_REFUSED 1	/* the engine refused, or a local step failed */
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_TRANSPORT 3	/* engine unreachable, timeout, protocol error */

/* The socket to use: opt if non-NULL, else $TCA_SOCKET if set and non-empty,
 * else TCA_CLIENT_DEFAULT_SOCKET.  Never NULL. */
const char *cli_socket_path(const char *opt);

/*
 * Every text argument a tool puts on the wire must be UTF-8 (the engine
 * refuses CBOR text that is not).  0 if value is NULL or valid UTF-8; else
 * prints "PROG: argument NAME is not valid UTF-8" on stderr and returns
 * CLI_EXIT_USAGE.  name: the option as the user typed it ("--device-id").
 */
int cli_check_utf8(const char *prog, const char *name, const char *value);

/* Parses a decimal number in [min, max] (no sign, no trailing text).
 * 0 and *v_ptr, or -1. */
int cli_parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *v_ptr);

/*
 * Reads all of path ("-": standard input), at most max bytes.  Returns 0 with
 * *buf_ptr (caller free()s) and *len_ptr, or -1 with a message in err
 * (including "larger than max").  An empty file is an error.
 */
int cli_read_file(const char *path, size_t max, unsigned char **buf_ptr,
    size_t *len_ptr, char *err, size_t errlen);

/*
 * Opens path for writing, created 0644 and truncated; NULL or "-" gives
 * stdout.  Returns NULL with err filled on failure.  Close it with
 * cli_close_out(), which reports write errors (0 or -1 with err).
 */
FILE *cli_open_out(const char *path, char *err, size_t errlen);
int cli_close_out(FILE *f, const char *path, char *err, size_t errlen);

/* Writes one DER certificate as PEM (pem != 0; the DER must parse as exactly
 * one X.509 certificate) or unchanged.  0, or -1 (unparsable or write error). */
int cli_write_cert(FILE *f, const unsigned char *der, size_t len, int pem);

/* A CBOR value as JSON: byte strings base64, unknown simple values null. */
void cli_print_json(FILE *f, const cbor_item_t *item);

/* A CBOR map as aligned "key value" lines: nested maps indented, byte strings
 * skipped, not_before, not_after and keys ending in "_at" (unsigned
 * integers) as UTC timestamps. */
void cli_print_text(FILE *f, const cbor_item_t *map, int indent);

/*
 * Reports a failed library call on stderr and returns the exit code:
 * an engine refusal as "PROG: CODE: message" (CLI_EXIT_REFUSED); an invalid
 * argument as "PROG: what: message" (CLI_EXIT_USAGE); anything else as
 * "PROG: what: message" (CLI_EXIT_TRANSPORT).
 */
int cli_report(const char *prog, const char *what, int r, const struct tca_client_error *err);

/*
 * The RPC operation table (rpc-schema.h) for `ca-admin ops` and `tca-client
 * ops`: per op its role, arguments and result fields.  markdown: the
 * operation index table of docs/rpc.md (a test keeps the two identical);
 * role_max limits the listing to ops that role may call (TCA_ROLE_ADMIN:
 * all).
 */
void cli_print_ops(FILE *f, int markdown, int role_max);

/*
 * Reads a one-time password from path ("-": standard input): one line, one
 * trailing "\n" (or "\r\n") stripped, tca_otp_check_password's rules.  A
 * file must be a regular file of this user (or root) that group and others
 * cannot access, as the engine wants PIN files (engine/secret.c).  0 with
 * the password in out, or -1 with why in err (never the password).  The
 * caller wipes out.
 */
int cli_read_otp_file(const char *path, char *out, size_t outsz, char *err, size_t errlen);

#endif
