/*
 * tca-client - reference client of the engine's frontend operations, built on
 * libtca-client only (what an EST front end would do, from a shell).
 *
 *   tca-client [--socket PATH] [--timeout MS] issue --tenant T --device-id D
 *              --csr FILE [--days N] [--otp-file F] [--out FILE] [--der]
 *   tca-client ... reenroll --tenant T --device-id D --csr FILE --current FILE
 *              [--days N] [--out FILE] [--der]
 *   tca-client ... cacerts --tenant T [--out FILE]
 *   tca-client ... status [--json]
 *   tca-client ... crl --tenant T [--out FILE] [--pem]
 *   tca-client ... ocsp --tenant T --cert FILE [--out FILE]
 *   tca-client ... csrattrs --tenant T --out FILE
 *   tca-client ops
 *
 * issue --otp-file: the device's registered one-time password (issue 14), for a
 * tenant that requires device registration: read from F ("-": stdin; one
 * line, one trailing newline stripped; a file group or others may read is
 * refused, as the engine refuses such PIN files), sent as the request's
 * `otp` and wiped.  Re-enrollment needs none.
 *
 * Exit codes: 0 ok; 1 the engine refused (stderr: "tca-client: CODE: message")
 * or a local file could not be read or written; 2 usage error; 3 the engine
 * could not be reached or answered outside the protocol.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cli-util.h"
#include "crl.h"
#include "ocsp.h"
#include "otp.h"
#include "text.h"
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
static char name_crl[] = PROG " crl";
static char name_ocsp[] = PROG " ocsp";
static char name_csrattrs[] = PROG " csrattrs";

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
	    "  issue     --tenant T --device-id D --csr FILE [--days N] [--otp-file F]\n"
	    "            [--out FILE] [--der]\n"
	    "            issue a device certificate (printed as PEM); --otp-file: the\n"
	    "            device's registered one-time password, for its first certificate\n"
	    "  reenroll  --tenant T --device-id D --csr FILE --current FILE [--days N]\n"
	    "            [--out FILE] [--der]\n"
	    "            re-enroll a device holding a certificate of this tenant\n"
	    "  cacerts   --tenant T [--out FILE]\n"
	    "            the tenant's CA certificates, current first (PEM)\n"
	    "  status    [--json]\n"
	    "            engine, token and store status\n"
	    "  crl       --tenant T [--out FILE] [--pem]\n"
	    "            the tenant's current CRL (DER unless --pem)\n"
	    "  ocsp      --tenant T --cert FILE [--out FILE] [--reqout FILE]\n"
	    "            the certificate's revocation status, by OCSP (good, revoked, unknown)\n"
	    "  csrattrs  --tenant T --out FILE\n"
	    "            the tenant's RFC 7030 CSR attributes (DER), from its policy\n"
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
		    "                       [--otp-file F] [--out FILE] [--der]\n");
	fprintf(f,
	    "  -T, --tenant T       tenant whose CA signs\n"
	    "  -D, --device-id D    device id; must equal the CSR's CN\n"
	    "  -c, --csr FILE       PKCS#10 request, PEM or DER (\"-\": stdin)\n");
	if (reenroll)
		fprintf(f,
		    "  -C, --current FILE   the device's current certificate, PEM or DER\n");
	fprintf(f,
	    "  -d, --days N         validity in days (1..%d; default: the engine's)\n",
	    DAYS_MAX);
	if (!reenroll)
		fprintf(f,
		    "  -P, --otp-file F     the device's registered one-time password, needed\n"
		    "                       for its first certificate when its tenant requires\n"
		    "                       registration (CREDENTIAL_REFUSED otherwise): one\n"
		    "                       line of F (\"-\": stdin); F must not be readable by\n"
		    "                       group or others (chmod 600).  Used up by the\n"
		    "                       certificate it yields\n");
	else
		fprintf(f,
		    "  (re-enrollment needs no one-time password)\n");
	fprintf(f,
	    "  -o, --out FILE       write the certificate to FILE instead of stdout\n"
	    "      --der            write DER instead of PEM\n");
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
		{ "otp-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = reenroll ? TCA_OP_REENROLL : TCA_OP_ISSUE;
	const char *tenant = NULL, *device = NULL, *csr_path = NULL, *cur_path = NULL;
	const char *out = NULL, *otp_path = NULL;
	char otp[TCA_OTP_MAX + 1] = "";
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
	while ((ch = getopt_long(argc, argv, "T:D:c:C:d:o:P:h", longopts, NULL)) != -1) {
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
		case 'P':
			if (reenroll) {
				fprintf(stderr, PROG " reenroll: --otp-file belongs to issue "
				    "(re-enrollment needs no one-time password)\n");
				return CLI_EXIT_USAGE;
			}
			otp_path = optarg;
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
	/* text the request carries must be UTF-8: said here, naming the option */
	if ((r = cli_check_utf8(PROG, "--tenant", tenant)) != 0 ||
	    (r = cli_check_utf8(PROG, "--device-id", device)) != 0)
		return r;
	if (otp_path != NULL && strcmp(otp_path, "-") == 0 && strcmp(csr_path, "-") == 0) {
		fprintf(stderr, PROG " issue: --csr and --otp-file cannot both be stdin\n");
		return CLI_EXIT_USAGE;
	}
	if (otp_path != NULL && cli_read_otp_file(otp_path, otp, sizeof(otp), msg,
	    sizeof(msg)) != 0) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
		goto out;
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
		r = tca_client_issue_otp(c, tenant, device, csr, csr_len, (unsigned int)days,
		    otp_path != NULL ? otp : NULL, &cert, &cert_len, &err);
	if (r != TCA_CLIENT_OK) {
		r = cli_report(PROG, cmd, r, &err);
		goto out;
	}
	r = write_result_cert(cert, cert_len, out, der_out);
 out:
	OPENSSL_cleanse(otp, sizeof(otp));
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
	if ((r = cli_check_utf8(PROG, "--tenant", tenant)) != 0)
		return r;
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

/* A certificate file (PEM or DER) as DER; *der_ptr: OPENSSL_free(). */
static int
cert_file_der(const char *path, unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char *buf = NULL, *der = NULL;
	const unsigned char *p;
	char msg[512] = "";
	size_t len = 0;
	X509 *x = NULL;
	BIO *bio = NULL;
	int n, r = -1;

	*der_ptr = NULL;
	if (cli_read_file(path, FILE_MAX, &buf, &len, msg, sizeof(msg)) != 0) {
		fprintf(stderr, PROG ": %s\n", msg);
		return -1;
	}
	p = buf;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != buf + len) {
		X509_free(x);
		x = NULL;
		if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	}
	if (x == NULL || (n = i2d_X509(x, &der)) <= 0) {
		fprintf(stderr, PROG ": %s is not an X.509 certificate (PEM or DER)\n", path);
		goto out;
	}
	*der_ptr = der;
	*len_ptr = (size_t)n;
	r = 0;
 out:
	BIO_free(bio);
	X509_free(x);
	free(buf);
	return r;
}

/* Writes len bytes to path (created 0644); 0, or -1 after saying why. */
static int
write_file(const char *path, const unsigned char *buf, size_t len)
{
	char msg[512] = "";
	FILE *f;
	int bad;

	if ((f = cli_open_out(path, msg, sizeof(msg))) == NULL) {
		fprintf(stderr, PROG ": %s\n", msg);
		return -1;
	}
	bad = fwrite(buf, 1, len, f) != len;
	if (cli_close_out(f, path, msg, sizeof(msg)) != 0 || bad) {
		fprintf(stderr, PROG ": %s\n", msg[0] != '\0' ? msg : "write failed");
		return -1;
	}
	return 0;
}

static int
cmd_crl(const struct globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tenant", required_argument, NULL, 'T' },
		{ "out", required_argument, NULL, 'o' },
		{ "pem", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage_text[] =
	    "usage: " PROG " crl --tenant T [--out FILE] [--pem]\n"
	    "  -T, --tenant T     tenant\n"
	    "  -o, --out FILE     write the CRL to FILE instead of stdout\n"
	    "  -p, --pem          PEM instead of DER\n";
	const char *tenant = NULL, *out = NULL;
	struct tca_client_error err;
	unsigned char *crl = NULL;
	const unsigned char *p;
	size_t len = 0;
	char msg[512] = "";
	tca_client *c = NULL;
	X509_CRL *x = NULL;
	FILE *f = NULL;
	int ch, pem = 0, r = CLI_EXIT_USAGE;

	memset(&err, 0, sizeof(err));
	argv[0] = name_crl;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "T:o:ph", longopts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			tenant = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'p':
			pem = 1;
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
		fprintf(stderr, PROG " crl: %s\n", tenant == NULL ? "--tenant is required" :
		    "unexpected argument");
		fputs(usage_text, stderr);
		return CLI_EXIT_USAGE;
	}
	if ((r = cli_check_utf8(PROG, "--tenant", tenant)) != 0)
		return r;
	if (out == NULL && !pem && isatty(STDOUT_FILENO)) {
		fprintf(stderr, PROG " crl: refusing to write DER to a terminal; "
		    "use --out FILE or --pem\n");
		return CLI_EXIT_USAGE;
	}
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if ((r = tca_client_crl(c, tenant, &crl, &len, &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_CRL, r, &err);
		goto out;
	}
	p = crl;
	if ((x = d2i_X509_CRL(NULL, &p, (long)len)) == NULL || p != crl + len) {
		fprintf(stderr, PROG ": the engine returned a CRL that does not parse\n");
		r = CLI_EXIT_TRANSPORT;
		goto out;
	}
	if ((f = cli_open_out(out, msg, sizeof(msg))) == NULL) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	r = CLI_EXIT_OK;
	if (pem ? PEM_write_X509_CRL(f, x) != 1 : fwrite(crl, 1, len, f) != len) {
		fprintf(stderr, PROG ": writing the CRL failed\n");
		r = CLI_EXIT_REFUSED;
	}
	if (cli_close_out(f, out, msg, sizeof(msg)) != 0 && r == CLI_EXIT_OK) {
		fprintf(stderr, PROG ": %s\n", msg);
		r = CLI_EXIT_REFUSED;
	}
 out:
	X509_CRL_free(x);
	free(crl);
	tca_client_close(c);
	return r;
}

static int
cmd_csrattrs(const struct globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tenant", required_argument, NULL, 'T' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage_text[] =
	    "usage: " PROG " csrattrs --tenant T --out FILE\n"
	    "  -T, --tenant T     tenant\n"
	    "  -o, --out FILE     write the DER CsrAttrs (RFC 7030 4.5.2) to FILE\n";
	const char *tenant = NULL, *out = NULL;
	struct tca_client_error err;
	unsigned char *der = NULL;
	size_t len = 0;
	tca_client *c = NULL;
	int ch, r = CLI_EXIT_USAGE;

	memset(&err, 0, sizeof(err));
	argv[0] = name_csrattrs;
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
	if (optind < argc || tenant == NULL || out == NULL) {
		fprintf(stderr, PROG " csrattrs: %s\n", optind < argc ? "unexpected argument" :
		    "--tenant and --out are required");
		fputs(usage_text, stderr);
		return CLI_EXIT_USAGE;
	}
	if ((r = cli_check_utf8(PROG, "--tenant", tenant)) != 0)
		return r;
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if ((r = tca_client_csrattrs(c, tenant, &der, &len, &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_CSRATTRS, r, &err);
		goto out;
	}
	r = write_file(out, der, len) == 0 ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
 out:
	free(der);
	tca_client_close(c);
	return r;
}

static int
cmd_ocsp(const struct globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tenant", required_argument, NULL, 'T' },
		{ "cert", required_argument, NULL, 'C' },
		{ "out", required_argument, NULL, 'o' },
		{ "reqout", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage_text[] =
	    "usage: " PROG " ocsp --tenant T --cert FILE [--out FILE] [--reqout FILE]\n"
	    "  -T, --tenant T     tenant\n"
	    "  -C, --cert FILE    the certificate to ask about (PEM or DER)\n"
	    "  -o, --out FILE     also write the DER OCSP response to FILE\n"
	    "  -R, --reqout FILE  also write the DER OCSP request to FILE\n"
	    "Asks the engine with a fresh nonce, checks the response against the\n"
	    "tenant's CA certificate and prints good, revoked (with time and reason)\n"
	    "or unknown.  Exit 0 for good, 1 otherwise.\n";
	const char *tenant = NULL, *cert_path = NULL, *out = NULL, *reqout = NULL;
	struct tca_ocsp_cert_status cs;
	struct tca_client_error err;
	unsigned char *cert = NULL, *req = NULL, *resp = NULL, **cas = NULL, nonce[16];
	size_t cert_len = 0, req_len = 0, resp_len = 0, *ca_lens = NULL, n_ca = 0, i;
	char msg[512] = "", status[16] = "", when[32];
	tca_client *c = NULL;
	int ch, r = CLI_EXIT_USAGE, checked = 0;

	memset(&err, 0, sizeof(err));
	argv[0] = name_ocsp;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "T:C:o:R:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			tenant = optarg;
			break;
		case 'C':
			cert_path = optarg;
			break;
		case 'R':
			reqout = optarg;
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
	if (optind < argc || tenant == NULL || cert_path == NULL) {
		fprintf(stderr, PROG " ocsp: %s\n", optind < argc ? "unexpected argument" :
		    "--tenant and --cert are required");
		fputs(usage_text, stderr);
		return CLI_EXIT_USAGE;
	}
	if ((r = cli_check_utf8(PROG, "--tenant", tenant)) != 0)
		return r;
	if (cert_file_der(cert_path, &cert, &cert_len) != 0) {
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	if ((r = connect_engine(g, &c)) != 0)
		goto out;
	if ((r = tca_client_cacerts(c, tenant, &cas, &ca_lens, &n_ca, &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_CACERTS, r, &err);
		goto out;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1 || n_ca == 0 ||
	    tca_ocsp_request_build(cert, cert_len, cas[0], ca_lens[0], nonce, sizeof(nonce),
	    &req, &req_len) != TCA_OK) {
		fprintf(stderr, PROG ": cannot build the OCSP request\n");
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	if ((r = tca_client_ocsp(c, tenant, req, req_len, &resp, &resp_len, status,
	    sizeof(status), &err)) != TCA_CLIENT_OK) {
		r = cli_report(PROG, TCA_OP_OCSP, r, &err);
		goto out;
	}
	if ((out != NULL && write_file(out, resp, resp_len) != 0) ||
	    (reqout != NULL && write_file(reqout, req, req_len) != 0)) {
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	/* the response must verify with one of the tenant's CA certificates
	 * (current or previous: same key and name) */
	for (i = 0; i < n_ca && !checked; i++)
		checked = tca_ocsp_response_check(resp, resp_len, cert, cert_len, cas[i],
		    ca_lens[i], nonce, sizeof(nonce), (int64_t)time(NULL), &cs, msg,
		    sizeof(msg)) == TCA_OK;
	if (!checked) {
		fprintf(stderr, PROG ": the OCSP response does not check out: %s\n", msg);
		r = CLI_EXIT_TRANSPORT;
		goto out;
	}
	switch (cs.status) {
	case TCA_OCSP_GOOD:
		printf("%s: good\n", cert_path);
		r = CLI_EXIT_OK;
		break;
	case TCA_OCSP_REVOKED:
		tca_iso_time(cs.revoked_at, when, sizeof(when));
		printf("%s: revoked at %s (%s)\n", cert_path, when,
		    tca_crl_reason_name(cs.reason) != NULL ? tca_crl_reason_name(cs.reason) :
		    "unspecified");
		r = CLI_EXIT_REFUSED;
		break;
	default:
		printf("%s: unknown\n", cert_path);
		r = CLI_EXIT_REFUSED;
		break;
	}
 out:
	OPENSSL_free(cert);
	OPENSSL_free(req);
	free(resp);
	tca_client_free_certs(cas, ca_lens, n_ca);
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
	if (strcmp(cmd, "crl") == 0)
		return cmd_crl(&g, argc, argv);
	if (strcmp(cmd, "ocsp") == 0)
		return cmd_ocsp(&g, argc, argv);
	if (strcmp(cmd, "csrattrs") == 0)
		return cmd_csrattrs(&g, argc, argv);
	if (strcmp(cmd, "ops") == 0) {
		if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			printf("usage: " PROG " ops\n"
			    "  the engine operations a front end may call, with their schemas\n"
			    "  (from this tool's copy of the operation table; no engine needed)\n");
			return CLI_EXIT_OK;
		}
		if (argc != 1) {
			fprintf(stderr, PROG ": ops takes no arguments\n");
			return CLI_EXIT_USAGE;
		}
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
