/*
 * tca-client - reference client of the engine's frontend operations, built on
 * libtca-client only (what an EST front end would do, from a shell).
 *
 *   tca-client [--socket PATH] [--timeout MS] issue --tenant T --device-id D
 *              --csr FILE [--days N] [--out FILE] [--der]
 *   tca-client ... reenroll --tenant T --device-id D --csr FILE --current FILE
 *              [--days N] [--out FILE] [--der]
 *   tca-client ... cacerts --tenant T [--out FILE]
 *   tca-client ... status [--json]
 *   tca-client ops
 *
 * Exit codes: 0 ok; 1 the engine refused (stderr: "tca-client: CODE: message")
 * or a local file could not be read or written; 2 usage error; 3 the engine
 * could not be reached or answered outside the protocol.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-util.h"
#include "rpc-schema.h"
#include "tca-client.h"

#define PROG "tca-client"
#define FILE_MAX 65536		/* CSRs and certificates; the request cap anyway */
#define DAYS_MAX 36500
#define DEFAULT_TIMEOUT_MS 60000

/* argv[0] of a command while its options are parsed */
static char name_issue[] = PROG " issue";
static char name_reenroll[] = PROG " reenroll";
static char name_cacerts[] = PROG " cacerts";
static char name_status[] = PROG " status";

struct globals {
	const char *socket;
	int timeout_ms;
	int json;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [--socket PATH] [--timeout MS] COMMAND [OPTIONS]\n"
	    "\n"
	    "Commands:\n"
	    "  issue     --tenant T --device-id D --csr FILE [--days N] [--out FILE] [--der]\n"
	    "            issue a device certificate (printed as PEM)\n"
	    "  reenroll  --tenant T --device-id D --csr FILE --current FILE [--days N]\n"
	    "            [--out FILE] [--der]\n"
	    "            re-enroll a device holding a certificate of this tenant\n"
	    "  cacerts   --tenant T [--out FILE]\n"
	    "            the tenant's CA certificates, current first (PEM)\n"
	    "  status    [--json]\n"
	    "            engine, token and store status\n"
	    "  ops       the engine operations a front end may call, with their schemas\n"
	    "\n"
	    "Options:\n"
	    "  -s, --socket PATH   engine socket (default $TCA_SOCKET or %s)\n"
	    "  -t, --timeout MS    how long to wait for each answer (default %d)\n"
	    "  -h, --help          this text; COMMAND --help for the command's\n"
	    "\n"
	    "Exit codes: 0 ok, 1 refused by the engine (or a local file error),\n"
	    "2 usage, 3 engine unreachable or protocol error.\n",
	    TCA_CLIENT_DEFAULT_SOCKET, DEFAULT_TIMEOUT_MS);
}

static void
usage_issue(FILE *f, int reenroll)
{
	if (reenroll)
		fprintf(f,
		    "usage: " PROG " reenroll --tenant T --device-id D --csr FILE --current FILE\n"
		    "                          [--days N] [--out FILE] [--der]\n");
	else
		fprintf(f,
		    "usage: " PROG " issue --tenant T --device-id D --csr FILE [--days N]\n"
		    "                       [--out FILE] [--der]\n");
	fprintf(f,
	    "  -T, --tenant T       tenant whose CA signs\n"
	    "  -D, --device-id D    device id; must equal the CSR's CN\n"
	    "  -c, --csr FILE       PKCS#10 request, PEM or DER (\"-\": stdin)\n");
	if (reenroll)
		fprintf(f,
		    "  -C, --current FILE   the device's current certificate, PEM or DER\n");
	fprintf(f,
	    "  -d, --days N         validity in days (1..%d; default: the engine's)\n"
	    "  -o, --out FILE       write the certificate to FILE instead of stdout\n"
	    "      --der            write DER instead of PEM\n", DAYS_MAX);
}

static int
connect_engine(const struct globals *g, tca_client **c)
{
	struct tca_client_error err;
	int r;

	memset(&err, 0, sizeof(err));
	if ((r = tca_client_connect(cli_socket_path(g->socket), g->timeout_ms, c, &err)) ==
	    TCA_CLIENT_OK)
		return 0;
	fprintf(stderr, PROG ": cannot reach the engine: %s\n", err.message);
	return r == TCA_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_TRANSPORT;
}

static int
write_result_cert(const unsigned char *der, size_t len, const char *out, int der_out)
{
	char msg[512] = "";
	FILE *f;

	if ((f = cli_open_out(out, msg, sizeof(msg))) == NULL) {
		fprintf(stderr, PROG ": %s\n", msg);
		return CLI_EXIT_REFUSED;
	}
	if (cli_write_cert(f, der, len, !der_out) != 0) {
		fprintf(stderr, PROG ": the engine returned a certificate that does not parse\n");
		(void)cli_close_out(f, out, msg, sizeof(msg));
		return CLI_EXIT_TRANSPORT;
	}
	if (cli_close_out(f, out, msg, sizeof(msg)) != 0) {
		fprintf(stderr, PROG ": %s\n", msg);
		return CLI_EXIT_REFUSED;
	}
	return CLI_EXIT_OK;
}

static int
cmd_issue(const struct globals *g, int argc, char **argv, int reenroll)
{
	static const struct option longopts[] = {
		{ "tenant", required_argument, NULL, 'T' },
		{ "device-id", required_argument, NULL, 'D' },
		{ "csr", required_argument, NULL, 'c' },
		{ "current", required_argument, NULL, 'C' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "der", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = reenroll ? TCA_OP_REENROLL : TCA_OP_ISSUE;
	const char *tenant = NULL, *device = NULL, *csr_path = NULL, *cur_path = NULL;
	const char *out = NULL;
	struct tca_client_error err;
	unsigned char *csr = NULL, *cur = NULL, *cert = NULL;
	size_t csr_len = 0, cur_len = 0, cert_len = 0;
	unsigned long days = 0;
	char msg[512] = "";
	tca_client *c = NULL;
	int ch, der_out = 0, r = CLI_EXIT_USAGE;

	memset(&err, 0, sizeof(err));
	argv[0] = reenroll ? name_reenroll : name_issue;	/* for getopt's messages */
	optind = 0;	/* glibc: restart scanning at argv[1] */
	while ((ch = getopt_long(argc, argv, "T:D:c:C:d:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			tenant = optarg;
			break;
		case 'D':
			device = optarg;
			break;
		case 'c':
			csr_path = optarg;
			break;
		case 'C':
			if (!reenroll) {
				fprintf(stderr, PROG " issue: --current belongs to reenroll\n");
				return CLI_EXIT_USAGE;
			}
			cur_path = optarg;
			break;
		case 'd':
			if (cli_parse_ulong(optarg, 1, DAYS_MAX, &days) != 0) {
				fprintf(stderr, PROG " %s: --days must be 1..%d\n", cmd, DAYS_MAX);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'R':
			der_out = 1;
			break;
		case 'h':
			usage_issue(stdout, reenroll);
			return CLI_EXIT_OK;
		default:
			usage_issue(stderr, reenroll);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG " %s: unexpected argument %s\n", cmd, argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (tenant == NULL || device == NULL || csr_path == NULL ||
	    (reenroll && cur_path == NULL)) {
		fprintf(stderr, PROG " %s: --tenant, --device-id%s are required\n", cmd,
		    reenroll ? ", --csr and --current" : " and --csr");
		usage_issue(stderr, reenroll);
		return CLI_EXIT_USAGE;
	}
	if (cli_read_file(csr_path, FILE_MAX, &csr, &csr_len, msg, sizeof(msg)) != 0 ||
	    (reenroll && cli_read_file(cur_path, FILE_MAX, &cur, &cur_len, msg, sizeof(msg)) != 0)) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if (reenroll)
		r = tca_client_reenroll(c, tenant, device, csr, csr_len, cur, cur_len,
		    (unsigned int)days, &cert, &cert_len, &err);
	else
		r = tca_client_issue(c, tenant, device, csr, csr_len, (unsigned int)days,
		    &cert, &cert_len, &err);
	if (r != TCA_CLIENT_OK) {
		r = cli_report(PROG, cmd, r, &err);
		goto out;
	}
	r = write_result_cert(cert, cert_len, out, der_out);
 out:
	tca_client_close(c);
	free(csr);
	free(cur);
	free(cert);
	return r;
}

static int
cmd_cacerts(const struct globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tenant", required_argument, NULL, 'T' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage_text[] =
	    "usage: " PROG " cacerts --tenant T [--out FILE]\n"
	    "  -T, --tenant T     tenant\n"
	    "  -o, --out FILE     write the PEM certificates to FILE instead of stdout\n";
	const char *tenant = NULL, *out = NULL;
	struct tca_client_error err;
	unsigned char **certs = NULL;
	size_t *lens = NULL, n = 0, i;
	char msg[512] = "";
	tca_client *c = NULL;
	FILE *f = NULL;
	int ch, r = CLI_EXIT_USAGE;

	memset(&err, 0, sizeof(err));
	argv[0] = name_cacerts;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "T:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			tenant = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CLI_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc || tenant == NULL) {
		fprintf(stderr, PROG " cacerts: %s\n", tenant == NULL ? "--tenant is required" :
		    "unexpected argument");
		fputs(usage_text, stderr);
		return CLI_EXIT_USAGE;
	}
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if ((r = tca_client_cacerts(c, tenant, &certs, &lens, &n, &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_CACERTS, r, &err);
		goto out;
	}
	if ((f = cli_open_out(out, msg, sizeof(msg))) == NULL) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	r = CLI_EXIT_OK;
	for (i = 0; i < n; i++) {
		if (cli_write_cert(f, certs[i], lens[i], 1) != 0) {
			fprintf(stderr, PROG ": the engine returned a certificate that does not parse\n");
			r = CLI_EXIT_TRANSPORT;
			break;
		}
	}
	if (cli_close_out(f, out, msg, sizeof(msg)) != 0 && r == CLI_EXIT_OK) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
	}
 out:
	tca_client_free_certs(certs, lens, n);
	tca_client_close(c);
	return r;
}

static int
cmd_status(const struct globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage_text[] = "usage: " PROG " status [--json]\n";
	struct tca_client_error err;
	cbor_item_t *res = NULL;
	tca_client *c = NULL;
	int ch, json = g->json, r = CLI_EXIT_USAGE;

	memset(&err, 0, sizeof(err));
	argv[0] = name_status;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CLI_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG " status: unexpected argument %s\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if ((r = tca_client_call(c, TCA_OP_STATUS, NULL, &res, &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_STATUS, r, &err);
		goto out;
	}
	if (json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else
		cli_print_text(stdout, res, 0);
	r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
 out:
	if (res != NULL)
		cbor_decref(&res);
	tca_client_close(c);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct globals g;
	unsigned long ms;
	const char *cmd;
	int ch;

	memset(&g, 0, sizeof(g));
	g.timeout_ms = DEFAULT_TIMEOUT_MS;
	/* global options stop at the command word */
	while ((ch = getopt_long(argc, argv, "+s:t:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			g.socket = optarg;
			break;
		case 't':
			if (cli_parse_ulong(optarg, 1, 3600000, &ms) != 0) {
				fprintf(stderr, PROG ": --timeout must be 1..3600000 ms\n");
				return CLI_EXIT_USAGE;
			}
			g.timeout_ms = (int)ms;
			break;
		case 'j':
			g.json = 1;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = argv[0];
	if (strcmp(cmd, "issue") == 0)
		return cmd_issue(&g, argc, argv, 0);
	if (strcmp(cmd, "reenroll") == 0)
		return cmd_issue(&g, argc, argv, 1);
	if (strcmp(cmd, "cacerts") == 0)
		return cmd_cacerts(&g, argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&g, argc, argv);
	if (strcmp(cmd, "ops") == 0 && argc == 1) {
		cli_print_ops(stdout, 0, TCA_ROLE_FRONTEND);
		return CLI_EXIT_OK;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, PROG ": unknown command %s\n", cmd);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
