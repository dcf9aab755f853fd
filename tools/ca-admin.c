/*
 * ca-admin - operator CLI for the tca engine.
 *
 *   ca-admin [--socket PATH] [--json] ca create TENANT [--key-type T]
 *   ca-admin [--socket PATH] [--json] ca show TENANT [--pem]
 *   ca-admin [--socket PATH] [--json] ca list [--all]
 *   ca-admin [--socket PATH] [--json] ca delete TENANT --confirm
 *   ca-admin [--socket PATH] [--json] ca reissue (TENANT | --all) [--dry-run]
 *   ca-admin [--socket PATH] [--json] status
 *   ca-admin [--socket PATH] reload
 *   ca-admin ops [--markdown]
 *   ca-admin [--socket PATH] [--json] cert revoke TENANT (SERIAL | --device ID) [--reason R]
 *   ca-admin [--socket PATH] [--json] cert list TENANT [--device ID] [--status S] [--limit N]
 *   ca-admin [--socket PATH] [--json] cert show TENANT SERIAL [--pem]
 *   ca-admin [--socket PATH] [--json] crl sign TENANT
 *   ca-admin [--socket PATH] [--json] ca suspend|resume TENANT
 *   ca-admin [--socket PATH] [--json] policy set TENANT key=value ...
 *   ca-admin [--socket PATH] [--json] policy show TENANT
 *   ca-admin [--socket PATH] [--json] device register TENANT DEVICE_ID
 *                       [--otp-file F | --generate] [--expires DURATION]
 *   ca-admin [--socket PATH] [--json] device import TENANT FILE.csv [--expires DURATION]
 *   ca-admin [--socket PATH] [--json] device list TENANT
 *   ca-admin [--socket PATH] [--json] device show TENANT DEVICE_ID
 *   ca-admin [--socket PATH] [--json] device unregister TENANT DEVICE_ID
 *   ca-admin journal verify (--db FILE | --store URI | --config FILE)
 *       [--head N:HASH | --checkpoint FILE [--pubkey PEM]]
 *   ca-admin journal export (--db FILE | --store URI | --config FILE) [--out FILE]
 *   ca-admin [--json] store migrate (--from URI | --config FILE) --to URI
 *   ca-admin token init --profile NAME [--profiles-dir DIR] --label L
 *                       --so-pin-file F --pin-file F
 *   ca-admin [--json] hsm-check --profile P [--config FILE] [--uri URI]
 *                       [--pin-file F] [--module PATH] [--init-args S]
 *                       [--key-types LIST] [--sessions N] [--seconds S]
 *
 * device (issue 14): one-time passwords for devices' first certificates.
 * register reads the password from --otp-file F ("-": stdin; refused if
 * group or others may read F) or lets the engine generate one (--generate,
 * the default), which is printed once; nothing else ever prints a password.
 * import reads the platform's bulk-registration CSV (header row; ';' or ','
 * separated; ID, DEVICE_ID or EXTERNAL_ID and ENROLLMENT_OTP columns, others
 * ignored), checks every row first (errors name the file's line numbers) and
 * registers nothing if one is bad, then sends device.register requests of at
 * most 200 devices.  Every registration is journaled by the engine.
 *
 * Exit codes: 0 success; 1 the engine refused or the operation failed;
 * 2 usage error; 3 the engine could not be reached (transport error);
 * 4 journal verification found a broken record; 5 store migrate refused
 * (the source is in use by an engine, or the target is not empty).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli-util.h"
#include "conf.h"
#include "hsm-check.h"
#include "log.h"
#include "otp.h"
#include "secret.h"
#include "checkpoint.h"
#include "store.h"
#include "store-migrate.h"
#include "store-sqlite.h"
#include "tca-client.h"
#include "rpc-schema.h"
#include "tenant-policy.h"
#include "tca-error.h"
#include "tenant.h"
#include "text.h"
#include "token.h"
#include "wire.h"

#define EXIT_REFUSED CLI_EXIT_REFUSED
#define EXIT_USAGE CLI_EXIT_USAGE
#define EXIT_TRANSPORT CLI_EXIT_TRANSPORT
#define EXIT_JOURNAL_BROKEN 4

struct globals {
	const char *socket;
	int json;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ca-admin [--socket PATH] [--json] COMMAND ...\n"
	    "\n"
	    "Tenant CAs (through the engine socket, admin role):\n"
	    "  ca create TENANT [--key-type ec-p256|ec-p384|rsa-3072|ed25519]\n"
	    "  ca show TENANT [--pem] [--previous]\n"
	    "  ca list [--all]                  --all includes deleted CAs\n"
	    "  ca delete TENANT --confirm       destroys the CA key in the token\n"
	    "  ca suspend TENANT                the tenant issues nothing (TENANT_SUSPENDED)\n"
	    "  ca resume TENANT\n"
	    "  policy set TENANT key=value ...  the tenant's own issuance rules (journaled)\n"
	    "  policy show TENANT\n"
	    "  ca reissue (TENANT | --all) [--dry-run]\n"
	    "                                   re-issue with the same key now (the yearly\n"
	    "                                   re-issuance's code path); --dry-run prints\n"
	    "                                   the field diff without signing\n"
	    "\n"
	    "Device certificates (admin role):\n"
	    "  cert revoke TENANT SERIAL [--reason R]\n"
	    "  cert revoke TENANT --device ID [--reason R]\n"
	    "                                   irreversible; the CRL is re-signed at once\n"
	    "  cert list TENANT [--device ID] [--status valid|revoked|expired] [--limit N]\n"
	    "  cert show TENANT SERIAL [--pem]\n"
	    "  crl sign TENANT                  sign and publish a fresh CRL now\n"
	    "\n"
	    "Device registration (admin role; ca-admin device --help):\n"
	    "  device register TENANT DEVICE_ID [--otp-file F | --generate] [--expires D]\n"
	    "                                   the one-time password of the device's first\n"
	    "                                   certificate (--generate: printed once)\n"
	    "  device import TENANT FILE.csv [--expires D]\n"
	    "                                   bulk registration: ID|DEVICE_ID|EXTERNAL_ID\n"
	    "                                   and ENROLLMENT_OTP columns; all rows or none\n"
	    "  device list TENANT\n"
	    "  device show TENANT DEVICE_ID\n"
	    "  device unregister TENANT DEVICE_ID\n"
	    "\n"
	    "Engine:\n"
	    "  status                           engine, token and store status\n"
	    "  reload                           re-read the engine configuration\n"
	    "  ops [--markdown]                 the RPC operations, roles and schemas\n"
	    "\n"
	    "Audit journal (reads the state store file directly, read-only):\n"
	    "  journal verify --db FILE | --store URI | --config FILE [--head N:HASH | --checkpoint FILE [--pubkey PEM]]\n"
	    "                                  chain, certificates against it, and that record N\n"
	    "                                  still has HASH (a head saved by an earlier verify --json,\n"
	    "                                  or the last signed line of a checkpoint file)\n"
	    "  journal export --db FILE | --store URI | --config FILE [--out FILE]\n"
	    "\n"
	    "Moving a deployment to another store (engine stopped; ca-admin store --help):\n"
	    "  store migrate (--from URI | --config FILE) --to URI\n"
	    "                                   copy every row into an empty store, in one\n"
	    "                                   transaction, both journals verified\n"
	    "\n"
	    "Token provisioning for development (SoftHSMv2):\n"
	    "  token init --profile NAME [--profiles-dir DIR] --label LABEL\n"
	    "             --so-pin-file FILE --pin-file FILE\n"
	    "\n"
	    "Token acceptance check, before the engine uses a new HSM slot:\n"
	    "  hsm-check --profile P [--config FILE] [--uri URI] [--pin-file F] ...\n"
	    "                                   every capability the engine needs, PASS/FAIL/SKIP\n"
	    "                                   per check (ca-admin hsm-check --help)\n"
	    "\n"
	    "Options:\n"
	    "  -s, --socket PATH   engine socket (default $TCA_SOCKET, else %s)\n"
	    "  -j, --json          machine-readable output\n"
	    "  -h, --help          this text (also after any command)\n"
	    "\n"
	    "Exit codes: 0 ok, 1 refused/failed, 2 usage, 3 engine unreachable,\n"
	    "4 journal verification failed, 5 store migrate refused.\n",
	    TCA_CLIENT_DEFAULT_SOCKET);
}

/* ------------------------------------------------------------ RPC commands */

static int
call(const struct globals *g, const char *op, const cbor_item_t *args, cbor_item_t **result)
{
	struct tca_client_error err;
	tca_client *c = NULL;
	int r;

	memset(&err, 0, sizeof(err));
	if ((r = tca_client_connect(cli_socket_path(g->socket), 120000, &c, &err)) != TCA_CLIENT_OK)
		return cli_report("ca-admin", cli_socket_path(g->socket), r, &err);
	r = tca_client_call(c, op, args, result, &err);
	tca_client_close(c);
	return r == TCA_CLIENT_OK ? 0 : cli_report("ca-admin", op, r, &err);
}

static void
print_result(const struct globals *g, const cbor_item_t *res)
{
	if (g->json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else
		cli_print_text(stdout, res, 0);
}

static cbor_item_t *
args_new(size_t n)
{
	cbor_item_t *m = cbor_new_definite_map(n);

	if (m == NULL) {
		fprintf(stderr, "ca-admin: out of memory\n");
		exit(EXIT_REFUSED);
	}
	return m;
}

/* Exits (usage) unless v is UTF-8: the argument is named after its request
 * field, device_id as --device-id, whether given as an option or in place. */
static void
args_check_utf8(const char *k, const char *v)
{
	char name[64];
	size_t i;

	snprintf(name, sizeof(name), "--%s", k);
	for (i = 2; name[i] != '\0'; i++)
		if (name[i] == '_')
			name[i] = '-';
	if (cli_check_utf8("ca-admin", name, v) != 0)
		exit(EXIT_USAGE);
}

static void
args_text(cbor_item_t *m, const char *k, const char *v)
{
	cbor_item_t *key, *val;

	args_check_utf8(k, v);
	key = cbor_build_string(k);
	val = cbor_build_string(v);
	if (key == NULL || val == NULL ||
	    !cbor_map_add(m, (struct cbor_pair){ .key = cbor_move(key), .value = cbor_move(val) })) {
		fprintf(stderr, "ca-admin: out of memory\n");
		exit(EXIT_REFUSED);
	}
}

static void
args_other(cbor_item_t *m, const char *k, cbor_item_t *val)
{
	cbor_item_t *key = cbor_build_string(k);

	if (key == NULL || val == NULL ||
	    !cbor_map_add(m, (struct cbor_pair){ .key = cbor_move(key), .value = cbor_move(val) })) {
		fprintf(stderr, "ca-admin: out of memory\n");
		exit(EXIT_REFUSED);
	}
}

static int
wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

/* ca reissue: one tenant or all; prints what changed per tenant */
static int
cmd_reissue(const struct globals *g, const char *tenant, int all, int dry_run)
{
	cbor_item_t *args, *res = NULL, *results;
	uint64_t failed = 0;
	size_t i, n;
	int r;

	if ((tenant == NULL) == (all == 0)) {
		fprintf(stderr, "ca-admin ca reissue: give TENANT or --all\n");
		return EXIT_USAGE;
	}
	args = args_new(2);
	if (all)
		args_other(args, "all", cbor_build_bool(true));
	else
		args_text(args, "tenant", tenant);
	args_other(args, "dry_run", cbor_build_bool(dry_run));
	r = call(g, TCA_OP_CA_REISSUE, args, &res);
	cbor_decref(&args);
	if (r != 0)
		return r;
	(void)tca_map_get_uint(res, "failed", &failed);
	if (g->json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else {
		results = tca_map_get(res, "results");
		n = results != NULL && cbor_isa_array(results) ? cbor_array_size(results) : 0;
		for (i = 0; i < n; i++) {
			cbor_item_t *one = cbor_array_get(results, i), *diff;
			char t[TCA_TENANT_MAX + 1] = "", code[32] = "", msg[512] = "";
			int ok = 0;

			(void)tca_map_get_text(one, "tenant", t, sizeof(t));
			(void)tca_map_get_bool(one, "ok", &ok);
			if (!ok) {
				(void)tca_map_get_text(one, "code", code, sizeof(code));
				(void)tca_map_get_text(one, "message", msg, sizeof(msg));
				printf("%s: FAILED %s: %s\n", t, code, msg);
			} else if ((diff = tca_map_get(one, "diff")) != NULL && cbor_isa_array(diff)) {
				size_t k, nd = cbor_array_size(diff);

				printf("%s:%s\n", t, dry_run ? " would change (dry run, nothing signed)" :
				    " re-issued; changed fields:");
				for (k = 0; k < nd; k++) {
					cbor_item_t *d = cbor_array_get(diff, k);
					char f[64] = "", o[256] = "", nw[256] = "";

					(void)tca_map_get_text(d, "field", f, sizeof(f));
					(void)tca_map_get_text(d, "old", o, sizeof(o));
					(void)tca_map_get_text(d, "new", nw, sizeof(nw));
					printf("  %-22s %s -> %s\n", f, o, nw);
					cbor_decref(&d);
				}
				printf("  all other fields copied byte for byte (same key, subject, SKI, extensions)\n");
			} else
				printf("%s: re-issued\n", t);
			cbor_decref(&one);
		}
		if (all)
			printf("%zu CAs, %" PRIu64 " failed\n", n, failed);
	}
	cbor_decref(&res);
	return failed > 0 ? EXIT_REFUSED : 0;
}

static int
cmd_ca(const struct globals *g, int argc, char **argv)
{
	const char *sub, *tenant = NULL, *key_type = NULL;
	cbor_item_t *args = NULL, *res = NULL, *cert;
	int i, confirm = 0, all = 0, pem = 0, previous = 0, dry_run = 0, r;

	if (argc < 1 || wants_help(argc, argv)) {
		fprintf(argc < 1 ? stderr : stdout,
		    "usage: ca-admin ca create TENANT [--key-type T]\n"
		    "       ca-admin ca show TENANT [--pem] [--previous]\n"
		    "       ca-admin ca list [--all]\n"
		    "       ca-admin ca delete TENANT --confirm\n"
		    "       ca-admin ca reissue (TENANT | --all) [--dry-run]\n"
		    "       ca-admin ca suspend|resume TENANT\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	sub = argv[0];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--key-type") == 0 && i + 1 < argc)
			key_type = argv[++i];
		else if (strcmp(argv[i], "--confirm") == 0)
			confirm = 1;
		else if (strcmp(argv[i], "--all") == 0)
			all = 1;
		else if (strcmp(argv[i], "--pem") == 0)
			pem = 1;
		else if (strcmp(argv[i], "--previous") == 0)
			previous = 1;
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry_run = 1;
		else if (argv[i][0] != '-' && tenant == NULL)
			tenant = argv[i];
		else {
			fprintf(stderr, "ca-admin ca %s: unexpected argument %s\n", sub, argv[i]);
			return EXIT_USAGE;
		}
	}
	if (strcmp(sub, "list") == 0) {
		char after[TCA_TENANT_MAX + 1] = "";
		int first = 1;

		if (g->json)
			putchar('[');
		for (;;) {
			cbor_item_t *cas, *next;
			size_t n, k;

			args = args_new(after[0] != '\0' ? 2 : 1);
			args_other(args, "all", cbor_build_bool(all));
			if (after[0] != '\0')
				args_text(args, "after", after);
			r = call(g, TCA_OP_CA_LIST, args, &res);
			cbor_decref(&args);
			if (r != 0)
				return r;
			cas = tca_map_get(res, "cas");
			n = cas != NULL && cbor_isa_array(cas) ? cbor_array_size(cas) : 0;
			for (k = 0; k < n; k++) {
				cbor_item_t *ca = cbor_array_get(cas, k);

				if (g->json) {
					if (!first)
						putchar(',');
					cli_print_json(stdout, ca);
				} else {
					if (!first)
						putchar('\n');
					cli_print_text(stdout, ca, 0);
				}
				first = 0;
				cbor_decref(&ca);
			}
			next = tca_map_get(res, "next");
			after[0] = '\0';
			if (next != NULL && cbor_isa_string(next) &&
			    cbor_string_length(next) < sizeof(after))
				snprintf(after, sizeof(after), "%.*s", (int)cbor_string_length(next),
				    (const char *)cbor_string_handle(next));
			cbor_decref(&res);
			if (after[0] == '\0')
				break;
		}
		if (g->json)
			puts("]");
		else if (first)
			fprintf(stderr, "no CAs\n");
		return 0;
	}
	if (strcmp(sub, "reissue") == 0)
		return cmd_reissue(g, tenant, all, dry_run);
	if (tenant == NULL) {
		fprintf(stderr, "ca-admin ca %s: TENANT is required\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "create") == 0) {
		args = args_new(key_type != NULL ? 2 : 1);
		args_text(args, "tenant", tenant);
		if (key_type != NULL)
			args_text(args, "key_type", key_type);
		r = call(g, TCA_OP_CA_CREATE, args, &res);
	} else if (strcmp(sub, "show") == 0) {
		args = args_new(previous ? 2 : 1);
		args_text(args, "tenant", tenant);
		if (previous)
			args_other(args, "previous", cbor_build_bool(true));
		r = call(g, TCA_OP_CA_SHOW, args, &res);
	} else if (strcmp(sub, "suspend") == 0 || strcmp(sub, "resume") == 0) {
		args = args_new(1);
		args_text(args, "tenant", tenant);
		r = call(g, sub[0] == 's' ? TCA_OP_CA_SUSPEND : TCA_OP_CA_RESUME, args, &res);
		cbor_decref(&args);
		if (r != 0)
			return r;
		if (g->json)
			print_result(g, res);
		else
			printf("tenant %s: %s\n", tenant, sub[0] == 's' ?
			    "suspended: it issues nothing until resumed" : "resumed");
		cbor_decref(&res);
		return 0;
	} else if (strcmp(sub, "delete") == 0) {
		if (!confirm) {
			fprintf(stderr, "ca-admin: deleting tenant %s's CA destroys its private key "
			    "in the token and cannot be undone; add --confirm\n", tenant);
			return EXIT_USAGE;
		}
		args = args_new(2);
		args_text(args, "tenant", tenant);
		args_other(args, "confirm", cbor_build_bool(true));
		r = call(g, TCA_OP_CA_DELETE, args, &res);
	} else {
		fprintf(stderr, "ca-admin: unknown command ca %s\n", sub);
		return EXIT_USAGE;
	}
	cbor_decref(&args);
	if (r != 0)
		return r;
	if (pem && (cert = tca_map_get(res, "certificate")) != NULL &&
	    cbor_isa_bytestring(cert)) {
		r = cli_write_cert(stdout, cbor_bytestring_handle(cert),
		    cbor_bytestring_length(cert), 1) == 0 ? 0 : EXIT_REFUSED;
	} else
		print_result(g, res);
	cbor_decref(&res);
	return r;
}

/* ------------------------------------------------------------ certificates */

static void
print_revoked(const cbor_item_t *rv)
{
	char serial[64] = "", reason[40] = "", subject[256] = "";
	int already = 0;

	(void)tca_map_get_text(rv, "serial", serial, sizeof(serial));
	(void)tca_map_get_text(rv, "reason", reason, sizeof(reason));
	(void)tca_map_get_text(rv, "subject", subject, sizeof(subject));
	(void)tca_map_get_bool(rv, "already", &already);
	printf("%s %s (%s)\n", serial, already ? "was already revoked" : "revoked", reason);
	if (subject[0] != '\0')
		printf("  subject %s\n", subject);
}

static void
print_crl_outcome(const cbor_item_t *res)
{
	cbor_item_t *crl = tca_map_get(res, "crl");
	char crl_error[256] = "";
	uint64_t number = 0;

	if (crl != NULL && tca_map_get_uint(crl, "number", &number) == TCA_OK)
		printf("CRL %" PRIu64 " signed\n", number);
	else if (tca_map_get_text(res, "crl_error", crl_error, sizeof(crl_error)) == TCA_OK)
		printf("warning: the CRL was not re-signed (%s); the engine retries, "
		    "see ca-admin status\n", crl_error);
}

/* cert revoke TENANT (SERIAL | --device ID) [--reason R] */
static int
cmd_cert_revoke(const struct globals *g, const char *tenant, const char *serial,
    const char *device, const char *reason)
{
	cbor_item_t *args, *res = NULL, *arr;
	size_t i, n;
	int r;

	if ((serial == NULL) == (device == NULL)) {
		fprintf(stderr, "ca-admin cert revoke: give SERIAL or --device ID\n");
		return EXIT_USAGE;
	}
	args = args_new(3);
	args_text(args, "tenant", tenant);
	if (serial != NULL)
		args_text(args, "serial", serial);
	else
		args_text(args, "device_id", device);
	if (reason != NULL)
		args_text(args, "reason", reason);
	r = call(g, serial != NULL ? TCA_OP_CERT_REVOKE : TCA_OP_CERT_REVOKE_DEVICE, args, &res);
	cbor_decref(&args);
	if (r != 0)
		return r;
	if (g->json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else if (serial != NULL) {
		print_revoked(res);
		print_crl_outcome(res);
	} else {
		arr = tca_map_get(res, "revoked");
		n = arr != NULL && cbor_isa_array(arr) ? cbor_array_size(arr) : 0;
		for (i = 0; i < n; i++) {
			cbor_item_t *one = cbor_array_get(arr, i);

			print_revoked(one);
			cbor_decref(&one);
		}
		print_crl_outcome(res);
	}
	cbor_decref(&res);
	return 0;
}

/* cert list: every page unless --limit */
static int
cmd_cert_list(const struct globals *g, const char *tenant, const char *device,
    const char *status, unsigned long limit)
{
	char after[24] = "";
	size_t shown = 0;
	int first = 1, r;

	if (g->json)
		putchar('[');
	for (;;) {
		cbor_item_t *args, *res = NULL, *certs, *next;
		size_t n, k;

		args = args_new(5);
		args_text(args, "tenant", tenant);
		if (device != NULL)
			args_text(args, "device_id", device);
		if (status != NULL)
			args_text(args, "status", status);
		if (after[0] != '\0')
			args_text(args, "after", after);
		if (limit != 0)
			args_other(args, "limit", cbor_build_uint32((uint32_t)(limit - shown)));
		r = call(g, TCA_OP_CERT_LIST, args, &res);
		cbor_decref(&args);
		if (r != 0)
			return r;
		certs = tca_map_get(res, "certificates");
		n = certs != NULL && cbor_isa_array(certs) ? cbor_array_size(certs) : 0;
		for (k = 0; k < n; k++) {
			cbor_item_t *c = cbor_array_get(certs, k);

			if (g->json) {
				if (!first)
					putchar(',');
				cli_print_json(stdout, c);
			} else {
				char serial[64] = "", dev[260] = "", st[16] = "";
				int64_t na = 0;
				uint64_t u = 0;
				char when[32];

				(void)tca_map_get_text(c, "serial", serial, sizeof(serial));
				(void)tca_map_get_text(c, "device_id", dev, sizeof(dev));
				(void)tca_map_get_text(c, "status", st, sizeof(st));
				if (tca_map_get_uint(c, "not_after", &u) == TCA_OK)
					na = (int64_t)u;
				tca_iso_time(na, when, sizeof(when));
				if (first)
					printf("%-40s %-8s %-20s %s\n", "SERIAL", "STATUS", "NOT AFTER",
					    "DEVICE");
				printf("%-40s %-8s %-20s %s\n", serial, st, when, dev);
			}
			first = 0;
			cbor_decref(&c);
		}
		shown += n;
		next = tca_map_get(res, "next");
		after[0] = '\0';
		if (next != NULL && cbor_isa_string(next) && cbor_string_length(next) < sizeof(after))
			snprintf(after, sizeof(after), "%.*s", (int)cbor_string_length(next),
			    (const char *)cbor_string_handle(next));
		cbor_decref(&res);
		if (after[0] == '\0' || (limit != 0 && shown >= limit))
			break;
	}
	if (g->json)
		puts("]");
	else if (first)
		fprintf(stderr, "no certificates\n");
	return 0;
}

static int
cmd_cert(const struct globals *g, int argc, char **argv)
{
	const char *sub, *tenant = NULL, *serial = NULL, *device = NULL, *reason = NULL;
	const char *status = NULL;
	unsigned long limit = 0;
	cbor_item_t *args, *res = NULL, *cert;
	int i, pem = 0, r;

	if (argc < 1 || wants_help(argc, argv)) {
		fprintf(argc < 1 ? stderr : stdout,
		    "usage: ca-admin cert revoke TENANT SERIAL [--reason R]\n"
		    "       ca-admin cert revoke TENANT --device ID [--reason R]\n"
		    "       ca-admin cert list TENANT [--device ID] [--status valid|revoked|expired]\n"
		    "                          [--limit N]\n"
		    "       ca-admin cert show TENANT SERIAL [--pem]\n"
		    "reasons (RFC 5280): unspecified (default), keyCompromise, cACompromise,\n"
		    "  affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn;\n"
		    "  certificateHold is refused: revocation is irreversible\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	sub = argv[0];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
			device = argv[++i];
		else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
			status = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (cli_parse_ulong(argv[++i], 1, 1000000, &limit) != 0) {
				fprintf(stderr, "ca-admin cert %s: --limit takes 1..1000000\n", sub);
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "--pem") == 0)
			pem = 1;
		else if (argv[i][0] != '-' && tenant == NULL)
			tenant = argv[i];
		else if (argv[i][0] != '-' && serial == NULL)
			serial = argv[i];
		else {
			fprintf(stderr, "ca-admin cert %s: unexpected argument %s\n", sub, argv[i]);
			return EXIT_USAGE;
		}
	}
	if (tenant == NULL) {
		fprintf(stderr, "ca-admin cert %s: TENANT is required\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "revoke") == 0)
		return cmd_cert_revoke(g, tenant, serial, device, reason);
	if (strcmp(sub, "list") == 0) {
		if (serial != NULL) {
			fprintf(stderr, "ca-admin cert list: unexpected argument %s\n", serial);
			return EXIT_USAGE;
		}
		return cmd_cert_list(g, tenant, device, status, limit);
	}
	if (strcmp(sub, "show") != 0) {
		fprintf(stderr, "ca-admin: unknown command cert %s\n", sub);
		return EXIT_USAGE;
	}
	if (serial == NULL) {
		fprintf(stderr, "ca-admin cert show: SERIAL is required\n");
		return EXIT_USAGE;
	}
	args = args_new(2);
	args_text(args, "tenant", tenant);
	args_text(args, "serial", serial);
	r = call(g, TCA_OP_CERT_SHOW, args, &res);
	cbor_decref(&args);
	if (r != 0)
		return r;
	if (pem && (cert = tca_map_get(res, "certificate")) != NULL && cbor_isa_bytestring(cert))
		r = cli_write_cert(stdout, cbor_bytestring_handle(cert),
		    cbor_bytestring_length(cert), 1) == 0 ? 0 : EXIT_REFUSED;
	else
		print_result(g, res);
	cbor_decref(&res);
	return r;
}

/* policy set TENANT key=value ... | policy show TENANT */
static int
cmd_policy(const struct globals *g, int argc, char **argv)
{
	struct tca_tenant_policy tp;
	char text[TCA_TENANT_POLICY_TEXT_MAX], json[TCA_TENANT_POLICY_JSON_MAX], why[256];
	cbor_item_t *args, *res = NULL, *arr;
	int i, r;

	if (argc < 2 || wants_help(argc, argv)) {
		fprintf(argc < 2 ? stderr : stdout,
		    "usage: ca-admin policy set TENANT key=value ...   (key= resets a key)\n"
		    "       ca-admin policy show TENANT [--json]\n"
		    "keys: key_types (ec-p256,ec-p384,rsa,ed25519), rsa_min_bits, max_days,\n"
		    "  o, ou (allowed values, |-separated), o_required, ou_required (true|false),\n"
		    "  device_id_pattern (glob: ? * [a-z] [!x] \\c), san (uri|dns|none),\n"
		    "  suspended (true|false), registration (required|none: whether a device's\n"
		    "  first certificate needs its registered one-time password; default\n"
		    "  device.registration); the global configuration is the default and\n"
		    "  the ceiling (docs/configuration.md, docs/security.md)\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[0], "set") == 0) {
		if (argc < 3) {
			fprintf(stderr, "ca-admin policy set: give at least one key=value\n");
			return EXIT_USAGE;
		}
		if (argc - 2 > 32) {
			fprintf(stderr, "ca-admin policy set: at most 32 assignments at once\n");
			return EXIT_USAGE;
		}
		for (i = 2; i < argc; i++) {
			if (strchr(argv[i], '=') == NULL) {
				fprintf(stderr, "ca-admin policy set: \"%s\" is not key=value\n",
				    argv[i]);
				return EXIT_USAGE;
			}
		}
		args = args_new(2);
		args_text(args, "tenant", argv[1]);
		if ((arr = cbor_new_definite_array((size_t)(argc - 2))) == NULL) {
			fprintf(stderr, "ca-admin: out of memory\n");
			return EXIT_REFUSED;
		}
		for (i = 2; i < argc; i++) {
			cbor_item_t *t;

			args_check_utf8("set", argv[i]);
			t = cbor_build_string(argv[i]);

			if (t == NULL || !cbor_array_push(arr, t)) {
				fprintf(stderr, "ca-admin: out of memory\n");
				return EXIT_REFUSED;
			}
			cbor_decref(&t);
		}
		args_other(args, "set", arr);
		r = call(g, TCA_OP_POLICY_SET, args, &res);
	} else if (strcmp(argv[0], "show") == 0 && argc == 2) {
		args = args_new(1);
		args_text(args, "tenant", argv[1]);
		r = call(g, TCA_OP_POLICY_SHOW, args, &res);
	} else {
		fprintf(stderr, "ca-admin: usage: ca-admin policy (set TENANT key=value ... | "
		    "show TENANT)\n");
		return EXIT_USAGE;
	}
	cbor_decref(&args);
	if (r != 0)
		return r;
	if (tca_map_get_text(res, "policy", text, sizeof(text)) != TCA_OK ||
	    tca_tenant_policy_parse(text, &tp, why, sizeof(why)) != TCA_OK) {
		fprintf(stderr, "ca-admin: the engine returned a policy this ca-admin "
		    "cannot read\n");
		cbor_decref(&res);
		return EXIT_TRANSPORT;
	}
	cbor_decref(&res);
	if (g->json) {
		if (tca_tenant_policy_json(&tp, json, sizeof(json)) != TCA_OK)
			return EXIT_REFUSED;
		puts(json);
	} else if (text[0] == '\0')
		printf("tenant %s: the global policy (no rules of its own)\n", argv[1]);
	else
		fputs(text, stdout);
	return 0;
}

/* crl sign TENANT */
static int
cmd_crl(const struct globals *g, int argc, char **argv)
{
	cbor_item_t *args, *res = NULL;
	int r;

	if (argc < 1 || wants_help(argc, argv)) {
		fprintf(argc < 1 ? stderr : stdout,
		    "usage: ca-admin crl sign TENANT    sign and publish a fresh CRL now\n"
		    "(the current CRL itself: tca-client crl --tenant T)\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[0], "sign") != 0 || argc != 2) {
		fprintf(stderr, "ca-admin: usage: ca-admin crl sign TENANT\n");
		return EXIT_USAGE;
	}
	args = args_new(1);
	args_text(args, "tenant", argv[1]);
	r = call(g, TCA_OP_CRL_SIGN, args, &res);
	cbor_decref(&args);
	if (r != 0)
		return r;
	print_result(g, res);
	cbor_decref(&res);
	return 0;
}

static int
cmd_simple(const struct globals *g, const char *op, int argc, char **argv)
{
	cbor_item_t *res = NULL;
	int r;

	if (wants_help(argc, argv)) {
		printf("usage: ca-admin [--json] %s\n", op);
		return 0;
	}
	if (argc > 0) {
		fprintf(stderr, "ca-admin %s: unexpected argument %s\n", op, argv[0]);
		return EXIT_USAGE;
	}
	if ((r = call(g, op, NULL, &res)) != 0)
		return r;
	print_result(g, res);
	cbor_decref(&res);
	return 0;
}

/* ------------------------------------------------------------ devices */

/*
 * Device registration (issue 14): a device's first certificate needs the
 * one-time password registered for it here.  Passwords reach the engine in
 * device.register requests and are stored there as hashes only; this tool
 * prints a password only when the engine generated it (--generate), never
 * one it read from a file.
 */

#define REGISTER_CHUNK 200		/* device.register's bound (rpc-schema.c) */
#define REGISTER_CHUNK_BYTES 32768	/* and well within the default rpc.max_frame */
#define EXPIRES_MAX_S (10 * 366 * 86400)	/* the engine's bound on expires_in_s */
#define CSV_MAX (64 * 1024 * 1024)

static const char device_usage[] =
    "usage: ca-admin device register TENANT DEVICE_ID [--otp-file F | --generate]\n"
    "                                [--expires DURATION]\n"
    "       ca-admin device import TENANT FILE.csv [--expires DURATION]\n"
    "       ca-admin device list TENANT\n"
    "       ca-admin device show TENANT DEVICE_ID\n"
    "       ca-admin device unregister TENANT DEVICE_ID\n"
    "A registered device presents its one-time password with its first `issue`\n"
    "(tca-client issue --otp-file); the password is used up by the certificate it\n"
    "yields, locked after device.otp_max_failures wrong ones and expires.\n"
    "Registering a device again gives it a new password and clears its failures,\n"
    "lock and use.  The engine stores only a slow salted hash of each password.\n"
    "  --otp-file F      the password: one line of F (\"-\": stdin), 8..128\n"
    "                    printable ASCII characters without spaces; F must not be\n"
    "                    readable by group or others (chmod 600)\n"
    "  --generate        the engine generates one (the default): printed once on\n"
    "                    stdout (\"one-time password: ...\", with --json the `otp`\n"
    "                    field) and stored nowhere in clear\n"
    "  --expires D       how long the password is valid: Ns, Nm, Nh, Nd (e.g. 30d,\n"
    "                    12h, 90m, 3600s, at most 3660d) or never; default the\n"
    "                    engine's device.otp_expiry_days\n"
    "import: the platform's bulk-registration CSV.  Line 1 is the header; fields\n"
    "  are separated by ';' or ',' (whichever the header uses), may be quoted\n"
    "  (\"a;b\", \"\" for a quote), CRLF line ends, a UTF-8 BOM and empty lines are\n"
    "  accepted, spaces around fields are ignored.  Columns: the device id, named\n"
    "  ID, DEVICE_ID or EXTERNAL_ID (case-insensitive, exactly one of them), and\n"
    "  the password, ENROLLMENT_OTP; other columns are ignored.  Every row is\n"
    "  checked first (device id, password rules, duplicates, field count); if any\n"
    "  is bad, each bad line is reported by its line number in the file and\n"
    "  nothing is registered.  Then the devices are registered in requests of at\n"
    "  most 200.  --json prints the per-device results.  Passwords from a file\n"
    "  are never printed.\n";


/* "30d", "12h", "90m", "3600s" or "never" (0) as seconds; 0 or -1. */
static int
parse_expires(const char *s, uint64_t *secs_ptr)
{
	unsigned long v, mult;
	char num[24];
	size_t len = strlen(s);

	if (strcmp(s, "never") == 0) {
		*secs_ptr = 0;
		return 0;
	}
	if (len < 2 || len - 1 >= sizeof(num))
		return -1;
	switch (s[len - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return -1;
	}
	memcpy(num, s, len - 1);
	num[len - 1] = '\0';
	if (cli_parse_ulong(num, 1, EXPIRES_MAX_S / mult, &v) != 0)
		return -1;
	*secs_ptr = (uint64_t)v * mult;
	return 0;
}

/* Wipes the text value of key in map in place (a password). */
static void
wipe_text(const cbor_item_t *map, const char *key)
{
	cbor_item_t *v = map != NULL && cbor_isa_map(map) ? tca_map_get(map, key) : NULL;

	if (v != NULL && cbor_isa_string(v) && cbor_string_is_definite(v) &&
	    cbor_string_handle(v) != NULL)
		OPENSSL_cleanse(cbor_string_handle(v), cbor_string_length(v));
}

/* Wipes the `otp` of every map in the array under key. */
static void
wipe_otps(const cbor_item_t *map, const char *key)
{
	cbor_item_t *arr = map != NULL && cbor_isa_map(map) ? tca_map_get(map, key) : NULL;
	size_t i;

	if (arr == NULL || !cbor_isa_array(arr))
		return;
	for (i = 0; i < cbor_array_size(arr); i++)
		wipe_text(cbor_array_handle(arr)[i], "otp");
}

/* call() that also hands back the engine's error (for --json). */
static int
call_err(const struct globals *g, const char *op, const cbor_item_t *args,
    cbor_item_t **result, struct tca_client_error *err)
{
	tca_client *c = NULL;
	int r;

	memset(err, 0, sizeof(*err));
	if ((r = tca_client_connect(cli_socket_path(g->socket), 120000, &c, err)) != TCA_CLIENT_OK)
		return cli_report("ca-admin", cli_socket_path(g->socket), r, err);
	r = tca_client_call(c, op, args, result, err);
	tca_client_close(c);
	return r == TCA_CLIENT_OK ? 0 : cli_report("ca-admin", op, r, err);
}

static void
print_when(const char *label, uint64_t t, const char *zero)
{
	char when[32];

	if (t == 0) {
		printf("%-24s%s\n", label, zero);
		return;
	}
	tca_iso_time((int64_t)t, when, sizeof(when));
	printf("%-24s%s\n", label, when);
}

/* One device.show / device.list element as text. */
static void
print_device(const cbor_item_t *d)
{
	char id[TCA_DEVICE_ID_MAX * 4 + 1] = "", state[16] = "", serial[2 * TCA_SERIAL_MAX + 1] = "";
	uint64_t reg = 0, exp = 0, used = 0, failures = 0;

	(void)tca_map_get_text(d, "device_id", id, sizeof(id));
	(void)tca_map_get_text(d, "state", state, sizeof(state));
	(void)tca_map_get_uint(d, "registered_at", &reg);
	(void)tca_map_get_uint(d, "expires_at", &exp);
	(void)tca_map_get_uint(d, "failures", &failures);
	printf("%-24s%s\n", "device_id", id);
	printf("%-24s%s\n", "state", state);
	print_when("registered_at", reg, "-");
	print_when("expires_at", exp, "never");
	printf("%-24s%" PRIu64 "\n", "failures", failures);
	if (tca_map_get_uint(d, "used_at", &used) == TCA_OK) {
		print_when("used_at", used, "-");
		(void)tca_map_get_text(d, "certificate_serial", serial, sizeof(serial));
		printf("%-24s%s\n", "certificate_serial", serial);
	}
}

/* device register TENANT DEVICE_ID [--otp-file F | --generate] [--expires D] */
static int
cmd_device_register(const struct globals *g, const char *tenant, const char *device,
    const char *otp_file, int have_expires, uint64_t expires_s)
{
	char otp[TCA_OTP_MAX + 1] = "", msg[512] = "", gen[TCA_OTP_MAX + 1] = "";
	cbor_item_t *args = NULL, *res = NULL, *arr, *one, *reg;
	uint64_t exp_at = 0;
	int r;

	if (otp_file != NULL && cli_read_otp_file(otp_file, otp, sizeof(otp), msg,
	    sizeof(msg)) != 0) {
		fprintf(stderr, "ca-admin device register: %s\n", msg);
		return EXIT_REFUSED;
	}
	args = args_new(have_expires ? 3 : 2);
	args_text(args, "tenant", tenant);
	if ((arr = cbor_new_definite_array(1)) == NULL) {
		fprintf(stderr, "ca-admin: out of memory\n");
		exit(EXIT_REFUSED);
	}
	one = args_new(otp[0] != '\0' ? 2 : 1);
	args_text(one, "device_id", device);
	if (otp[0] != '\0')
		args_text(one, "otp", otp);
	OPENSSL_cleanse(otp, sizeof(otp));
	if (!cbor_array_push(arr, one)) {
		fprintf(stderr, "ca-admin: out of memory\n");
		exit(EXIT_REFUSED);
	}
	cbor_decref(&one);
	args_other(args, "devices", arr);
	if (have_expires)
		args_other(args, "expires_in_s", cbor_build_uint64(expires_s));
	r = call(g, TCA_OP_DEVICE_REGISTER, args, &res);
	wipe_otps(args, "devices");
	cbor_decref(&args);
	if (r != 0)
		return r;
	arr = tca_map_get(res, "registered");
	reg = arr != NULL && cbor_isa_array(arr) && cbor_array_size(arr) == 1 ?
	    cbor_array_handle(arr)[0] : NULL;
	(void)tca_map_get_uint(res, "expires_at", &exp_at);
	if (g->json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else {
		char when[32] = "";

		if (exp_at != 0)
			tca_iso_time((int64_t)exp_at, when, sizeof(when));
		printf("device %s of tenant %s registered; its one-time password %s%s\n",
		    device, tenant, exp_at != 0 ? "expires at " : "does not expire", when);
		if (reg != NULL && tca_map_get_text(reg, "otp", gen, sizeof(gen)) == TCA_OK) {
			printf("one-time password: %s\n", gen);
			printf("(shown this once: the engine keeps only a hash of it; hand it to "
			    "the device, which presents it with its first certificate request)\n");
		}
	}
	fflush(stdout);
	OPENSSL_cleanse(gen, sizeof(gen));
	wipe_otps(res, "registered");
	cbor_decref(&res);
	return 0;
}

/* ---- device import: the bulk-registration CSV */

/* One record's fields, each NUL-terminated in buf at off[i]. */
struct csv_rec {
	char *buf;
	size_t len, cap;
	size_t *off;
	size_t n, ncap;
	int all_empty;
};

struct csv_row {
	size_t line;		/* the file line its record starts on, 1-based */
	char *id, *otp;		/* malloc()ed copies; otp wiped before free */
};

static void
csv_rec_free(struct csv_rec *rec)
{
	if (rec->buf != NULL)
		OPENSSL_cleanse(rec->buf, rec->cap);
	free(rec->buf);
	free(rec->off);
	memset(rec, 0, sizeof(*rec));
}

static int
csv_put(struct csv_rec *rec, char c)
{
	char *nb;

	if (rec->len == rec->cap) {
		size_t ncap = rec->cap == 0 ? 256 : rec->cap * 2;

		/* grown by hand so no copy of a password is left behind */
		if ((nb = malloc(ncap)) == NULL)
			return -1;
		if (rec->buf != NULL) {
			memcpy(nb, rec->buf, rec->len);
			OPENSSL_cleanse(rec->buf, rec->cap);
			free(rec->buf);
		}
		rec->buf = nb;
		rec->cap = ncap;
	}
	rec->buf[rec->len++] = c;
	return 0;
}

static int
csv_field_start(struct csv_rec *rec)
{
	size_t *no;

	if (rec->n == rec->ncap) {
		size_t ncap = rec->ncap == 0 ? 16 : rec->ncap * 2;

		if ((no = realloc(rec->off, ncap * sizeof(*no))) == NULL)
			return -1;
		rec->off = no;
		rec->ncap = ncap;
	}
	rec->off[rec->n++] = rec->len;
	return 0;
}

static int
at_line_end(const char *b, size_t len, size_t p)
{
	return p >= len || b[p] == '\n' || (b[p] == '\r' && (p + 1 == len || b[p + 1] == '\n'));
}

/*
 * Parses the record at *pos (the start of line *line) with delimiter delim
 * into rec: quoted fields ("" = a quote; delimiters and line breaks inside),
 * spaces and tabs around fields dropped, "\r\n" or "\n" ending it.  1 with
 * *pos and *line past it, 0 at the end of the data, -1 with why (naming the
 * line) for a malformed record.  Field text is never put in why.
 */
static int
csv_record(const char *b, size_t len, size_t *pos, size_t *line, char delim,
    struct csv_rec *rec, char *why, size_t whylen)
{
	size_t p = *pos, start_line = *line, end;

	rec->len = 0;
	rec->n = 0;
	rec->all_empty = 1;
	if (p >= len)
		return 0;
	for (;;) {
		if (csv_field_start(rec) != 0)
			goto nomem;
		while (p < len && (b[p] == ' ' || b[p] == '\t'))
			p++;
		if (p < len && b[p] == '"') {
			p++;
			for (;;) {
				if (p >= len) {
					snprintf(why, whylen, "line %zu: a quoted field is not "
					    "closed", start_line);
					return -1;
				}
				if (b[p] == '"') {
					if (p + 1 < len && b[p + 1] == '"') {
						if (csv_put(rec, '"') != 0)
							goto nomem;
						p += 2;
						continue;
					}
					p++;
					break;
				}
				if (b[p] == '\n')
					(*line)++;
				if (csv_put(rec, b[p]) != 0)
					goto nomem;
				p++;
			}
			while (p < len && (b[p] == ' ' || b[p] == '\t'))
				p++;
			if (p < len && b[p] != delim && !at_line_end(b, len, p)) {
				snprintf(why, whylen, "line %zu: text after the closing quote of "
				    "a field", *line);
				return -1;
			}
		} else {
			while (p < len && b[p] != delim && !at_line_end(b, len, p)) {
				if (b[p] == '"') {
					snprintf(why, whylen, "line %zu: a quote inside an "
					    "unquoted field (quote the whole field, doubling "
					    "the quote)", *line);
					return -1;
				}
				if (csv_put(rec, b[p]) != 0)
					goto nomem;
				p++;
			}
			end = rec->len;
			while (end > rec->off[rec->n - 1] &&
			    (rec->buf[end - 1] == ' ' || rec->buf[end - 1] == '\t'))
				end--;
			rec->len = end;
		}
		if (rec->len > rec->off[rec->n - 1])
			rec->all_empty = 0;
		if (csv_put(rec, '\0') != 0)
			goto nomem;
		if (p < len && b[p] == delim) {
			p++;
			continue;
		}
		break;
	}
	if (p < len && b[p] == '\r')
		p++;
	if (p < len && b[p] == '\n')
		p++;
	(*line)++;
	*pos = p;
	return 1;
 nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

/* The columns of a header record: the id and password ones (-1 if absent);
 * -1 with why if a kind is named twice. */
static int
csv_header_columns(const struct csv_rec *h, long *id_col, long *otp_col, char *why,
    size_t whylen)
{
	static const char *const id_names[] = { "ID", "DEVICE_ID", "EXTERNAL_ID" };
	size_t i, k;

	*id_col = *otp_col = -1;
	for (i = 0; i < h->n; i++) {
		const char *name = h->buf + h->off[i];

		for (k = 0; k < sizeof(id_names) / sizeof(id_names[0]); k++) {
			if (strcasecmp(name, id_names[k]) != 0)
				continue;
			if (*id_col >= 0) {
				snprintf(why, whylen, "the header names two device id columns "
				    "(%s, column %ld, and %s, column %zu): keep one of ID, "
				    "DEVICE_ID, EXTERNAL_ID", h->buf + h->off[*id_col],
				    *id_col + 1, name, i + 1);
				return -1;
			}
			*id_col = (long)i;
		}
		if (strcasecmp(name, "ENROLLMENT_OTP") == 0) {
			if (*otp_col >= 0) {
				snprintf(why, whylen, "the header names ENROLLMENT_OTP twice "
				    "(columns %ld and %zu)", *otp_col + 1, i + 1);
				return -1;
			}
			*otp_col = (long)i;
		}
	}
	return 0;
}

static int
row_cmp(const void *a, const void *b)
{
	const struct csv_row *x = *(const struct csv_row *const *)a;
	const struct csv_row *y = *(const struct csv_row *const *)b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : x->line < y->line ? -1 : x->line > y->line;
}

struct import_err {
	size_t line;	/* 0: the file as a whole */
	char msg[320];
};

struct import {
	const char *path;
	struct csv_row *rows;
	size_t n, cap;
	struct import_err *errs;
	size_t nerr, errcap;
	int oom;
};

static void
import_error(struct import *im, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
import_error(struct import *im, size_t line, const char *fmt, ...)
{
	struct import_err *ne;
	va_list ap;

	if (im->nerr == im->errcap) {
		size_t ncap = im->errcap == 0 ? 16 : im->errcap * 2;

		if ((ne = realloc(im->errs, ncap * sizeof(*ne))) == NULL) {
			im->oom = 1;
			return;
		}
		im->errs = ne;
		im->errcap = ncap;
	}
	im->errs[im->nerr].line = line;
	va_start(ap, fmt);
	vsnprintf(im->errs[im->nerr].msg, sizeof(im->errs[im->nerr].msg), fmt, ap);
	va_end(ap);
	im->nerr++;
}

static void
import_free(struct import *im)
{
	size_t i;

	for (i = 0; i < im->n; i++) {
		if (im->rows[i].otp != NULL) {
			OPENSSL_cleanse(im->rows[i].otp, strlen(im->rows[i].otp));
			free(im->rows[i].otp);
		}
		free(im->rows[i].id);
	}
	free(im->rows);
	free(im->errs);
}

/* The line number of offset off in b. */
static size_t
line_of(const char *b, size_t off)
{
	size_t i, line = 1;

	for (i = 0; i < off; i++)
		if (b[i] == '\n')
			line++;
	return line;
}

/*
 * Parses and checks the whole file into im->rows; every problem goes to
 * im->errs (each naming its line).  Returns 0 if the file could be read and
 * parsed to its end (im->nerr tells whether rows were bad), -1 otherwise.
 */
static int
import_parse(struct import *im, const char *b, size_t len)
{
	struct csv_rec rec, h;
	struct csv_row **sorted = NULL;
	char why[256];
	const char *nul;
	size_t pos = 0, line = 1, hline, i, hpos;
	long id_col = -1, otp_col = -1;
	char delim = 0;
	int r = -1, k, got;

	memset(&rec, 0, sizeof(rec));
	memset(&h, 0, sizeof(h));
	if ((nul = memchr(b, '\0', len)) != NULL) {
		import_error(im, line_of(b, (size_t)(nul - b)), "a NUL byte (not a text file)");
		return -1;
	}
	if (len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	/* the header: the first record that is not empty; its delimiter is the
	 * one that makes it name both columns */
	for (;;) {
		hpos = pos;
		hline = line;
		got = csv_record(b, len, &pos, &line, ';', &h, why, sizeof(why));
		if (got <= 0 || !h.all_empty)
			break;
	}
	if (got == 0) {
		import_error(im, 0, "no header row (the file has no data)");
		goto out;
	}
	for (k = 0; k < 2 && delim == 0; k++) {
		char d = k == 0 ? ';' : ',';
		size_t p2 = hpos, l2 = hline;

		if (csv_record(b, len, &p2, &l2, d, &h, why, sizeof(why)) != 1)
			continue;
		if (csv_header_columns(&h, &id_col, &otp_col, why, sizeof(why)) != 0) {
			import_error(im, hline, "%s", why);
			goto out;
		}
		if (id_col >= 0 && otp_col >= 0) {
			delim = d;
			pos = p2;
			line = l2;
		}
	}
	if (delim == 0) {
		import_error(im, hline, "the header must name the device id column (ID, "
		    "DEVICE_ID or EXTERNAL_ID) and ENROLLMENT_OTP, separated by ';' or ','");
		goto out;
	}
	for (;;) {
		struct csv_row *row;
		const char *id, *otp;
		size_t rline = line;

		got = csv_record(b, len, &pos, &line, delim, &rec, why, sizeof(why));
		if (got == 0)
			break;
		if (got < 0) {
			import_error(im, 0, "%s; the rest of the file was not read", why);
			goto out;
		}
		if (rec.all_empty)
			continue;
		if (rec.n != h.n) {
			import_error(im, rline, "%zu field%s, the header (line %zu) has %zu",
			    rec.n, rec.n == 1 ? "" : "s", hline, h.n);
			continue;
		}
		id = rec.buf + rec.off[id_col];
		otp = rec.buf + rec.off[otp_col];
		if (tca_device_id_validate(id, why, sizeof(why)) != TCA_OK) {
			import_error(im, rline, "%s", why);
			continue;
		}
		if (otp[0] == '\0') {
			import_error(im, rline, "device %s: ENROLLMENT_OTP is empty", id);
			continue;
		}
		if (tca_otp_check_password(otp, strlen(otp), why, sizeof(why)) != TCA_OK) {
			import_error(im, rline, "device %s: %s", id, why);
			continue;
		}
		if (im->n == im->cap) {
			size_t ncap = im->cap == 0 ? 64 : im->cap * 2;
			struct csv_row *nr;

			if ((nr = realloc(im->rows, ncap * sizeof(*nr))) == NULL) {
				im->oom = 1;
				goto out;
			}
			im->rows = nr;
			im->cap = ncap;
		}
		row = &im->rows[im->n];
		row->line = rline;
		row->id = strdup(id);
		row->otp = strdup(otp);
		im->n++;
		if (row->id == NULL || row->otp == NULL) {
			im->oom = 1;
			goto out;
		}
	}
	if (im->n == 0 && im->nerr == 0) {
		import_error(im, 0, "no devices after the header (line %zu)", hline);
		goto out;
	}
	/* duplicates: each later line names the first */
	if (im->n > 1) {
		if ((sorted = calloc(im->n, sizeof(*sorted))) == NULL) {
			im->oom = 1;
			goto out;
		}
		for (i = 0; i < im->n; i++)
			sorted[i] = &im->rows[i];
		if (im->n > 0)
			qsort(sorted, im->n, sizeof(*sorted), row_cmp);
		for (i = 1; i < im->n; i++) {
			size_t first = i - 1;

			while (first > 0 && strcmp(sorted[first - 1]->id, sorted[i]->id) == 0)
				first--;
			if (strcmp(sorted[first]->id, sorted[i]->id) == 0)
				import_error(im, sorted[i]->line, "device %s is listed twice "
				    "(first on line %zu)", sorted[i]->id, sorted[first]->line);
		}
	}
	r = 0;
 out:
	free(sorted);
	csv_rec_free(&rec);
	csv_rec_free(&h);
	return r;
}

static int
import_err_cmp(const void *a, const void *b)
{
	const struct import_err *x = a, *y = b;

	return x->line < y->line ? -1 : x->line > y->line;
}

/* device import TENANT FILE [--expires D] */
static int
cmd_device_import(const struct globals *g, const char *tenant, const char *path,
    int have_expires, uint64_t expires_s)
{
	struct import im;
	struct tca_client_error err;
	struct stat st;
	unsigned char *data = NULL;
	size_t len = 0, done = 0, i, k;
	char msg[512] = "";
	cbor_item_t *devs = NULL;
	uint64_t exp_at = 0;
	int r = EXIT_REFUSED;

	memset(&im, 0, sizeof(im));
	memset(&err, 0, sizeof(err));
	im.path = path;
	if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr, "ca-admin device import: warning: %s holds one-time passwords "
		    "and is readable by group or others (mode %04o); remove it once "
		    "imported\n", path, (unsigned int)(st.st_mode & 07777));
	if (cli_read_file(path, CSV_MAX, &data, &len, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "ca-admin device import: %s\n", msg);
		return EXIT_REFUSED;
	}
	if (import_parse(&im, (const char *)data, len) != 0 || im.nerr > 0 || im.oom) {
		if (im.oom)
			fprintf(stderr, "ca-admin device import: out of memory\n");
		if (im.nerr > 0)
			qsort(im.errs, im.nerr, sizeof(*im.errs), import_err_cmp);
		for (i = 0; i < im.nerr; i++) {
			if (im.errs[i].line > 0)
				fprintf(stderr, "ca-admin device import: %s: line %zu: %s\n", path,
				    im.errs[i].line, im.errs[i].msg);
			else
				fprintf(stderr, "ca-admin device import: %s: %s\n", path,
				    im.errs[i].msg);
		}
		fprintf(stderr, "ca-admin device import: %s: %zu problem%s; nothing was "
		    "registered\n", path, im.nerr, im.nerr == 1 ? "" : "s");
		if (g->json) {
			cbor_item_t *doc = cbor_new_definite_map(4), *errs =
			    cbor_new_definite_array(im.nerr);

			if (doc != NULL && errs != NULL &&
			    tca_map_add_bool(doc, "ok", 0) == TCA_OK &&
			    tca_map_add_text(doc, "file", path) == TCA_OK &&
			    tca_map_add_uint(doc, "registered", 0) == TCA_OK) {
				for (i = 0; i < im.nerr; i++) {
					cbor_item_t *e = cbor_new_definite_map(2);

					if (e == NULL || tca_map_add_uint(e, "line",
					    im.errs[i].line) != TCA_OK ||
					    tca_map_add_text(e, "message", im.errs[i].msg) != TCA_OK ||
					    !cbor_array_push(errs, e)) {
						if (e != NULL)
							cbor_decref(&e);
						break;
					}
					cbor_decref(&e);
				}
				if (tca_map_add_item(doc, "errors", errs) == TCA_OK) {
					errs = NULL;
					cli_print_json(stdout, doc);
					putchar('\n');
				}
			}
			if (errs != NULL)
				cbor_decref(&errs);
			if (doc != NULL)
				cbor_decref(&doc);
		}
		r = EXIT_REFUSED;
		goto out;
	}
	/* every row is good: register them, at most REGISTER_CHUNK per request */
	if (g->json && ((devs = cbor_new_definite_array(im.n)) == NULL)) {
		fprintf(stderr, "ca-admin: out of memory\n");
		goto out;
	}
	while (done < im.n) {
		cbor_item_t *args, *arr, *res = NULL;
		size_t n = 0, bytes = 0;

		while (done + n < im.n && n < REGISTER_CHUNK &&
		    (n == 0 || bytes + strlen(im.rows[done + n].id) +
		    strlen(im.rows[done + n].otp) + 24 <= REGISTER_CHUNK_BYTES)) {
			bytes += strlen(im.rows[done + n].id) + strlen(im.rows[done + n].otp) + 24;
			n++;
		}
		args = args_new(have_expires ? 3 : 2);
		args_text(args, "tenant", tenant);
		if ((arr = cbor_new_definite_array(n)) == NULL) {
			fprintf(stderr, "ca-admin: out of memory\n");
			exit(EXIT_REFUSED);
		}
		for (k = 0; k < n; k++) {
			cbor_item_t *one = args_new(2);

			args_text(one, "device_id", im.rows[done + k].id);
			args_text(one, "otp", im.rows[done + k].otp);
			if (!cbor_array_push(arr, one)) {
				fprintf(stderr, "ca-admin: out of memory\n");
				exit(EXIT_REFUSED);
			}
			cbor_decref(&one);
		}
		args_other(args, "devices", arr);
		if (have_expires)
			args_other(args, "expires_in_s", cbor_build_uint64(expires_s));
		r = call_err(g, TCA_OP_DEVICE_REGISTER, args, &res, &err);
		wipe_otps(args, "devices");
		cbor_decref(&args);
		if (r != 0) {
			fprintf(stderr, "ca-admin device import: %s: the request for lines "
			    "%zu..%zu was refused: %zu device%s before line %zu %s registered, "
			    "the %zu from line %zu on %s not\n", path, im.rows[done].line,
			    im.rows[done + n - 1].line, done, done == 1 ? "" : "s",
			    im.rows[done].line, done == 1 ? "was" : "were", im.n - done,
			    im.rows[done].line, im.n - done == 1 ? "was" : "were");
			break;
		}
		(void)tca_map_get_uint(res, "expires_at", &exp_at);
		wipe_otps(res, "registered");
		cbor_decref(&res);
		done += n;
	}
	if (g->json) {
		cbor_item_t *doc = NULL;

		for (i = 0; i < im.n; i++) {
			cbor_item_t *e = cbor_new_definite_map(3);

			if (e == NULL || tca_map_add_uint(e, "line", im.rows[i].line) != TCA_OK ||
			    tca_map_add_text(e, "device_id", im.rows[i].id) != TCA_OK ||
			    tca_map_add_bool(e, "registered", i < done) != TCA_OK ||
			    !cbor_array_push(devs, e)) {
				if (e != NULL)
					cbor_decref(&e);
				fprintf(stderr, "ca-admin: out of memory\n");
				r = EXIT_REFUSED;
				goto out;
			}
			cbor_decref(&e);
		}
		if ((doc = cbor_new_definite_map(done < im.n ? 7 : 6)) == NULL ||
		    tca_map_add_bool(doc, "ok", done == im.n) != TCA_OK ||
		    tca_map_add_text(doc, "tenant", tenant) != TCA_OK ||
		    tca_map_add_text(doc, "file", path) != TCA_OK ||
		    tca_map_add_uint(doc, "registered", done) != TCA_OK ||
		    tca_map_add_int(doc, "expires_at", (int64_t)exp_at) != TCA_OK ||
		    (done < im.n && tca_map_add_text(doc, "error", err.message[0] != '\0' ?
		    err.message : "the engine refused") != TCA_OK) ||
		    tca_map_add_item(doc, "devices", devs) != TCA_OK) {
			if (doc != NULL)
				cbor_decref(&doc);
			fprintf(stderr, "ca-admin: out of memory\n");
			r = EXIT_REFUSED;
			goto out;
		}
		devs = NULL;
		cli_print_json(stdout, doc);
		putchar('\n');
		cbor_decref(&doc);
	} else if (done > 0) {
		char when[32] = "";

		if (exp_at != 0)
			tca_iso_time((int64_t)exp_at, when, sizeof(when));
		printf("tenant %s: %zu device%s registered from %s (lines %zu..%zu); their "
		    "one-time passwords %s%s\n", tenant, done, done == 1 ? "" : "s", path,
		    im.rows[0].line, im.rows[done - 1].line,
		    exp_at != 0 ? "expire at " : "do not expire", when);
	}
	if (done == im.n)
		r = 0;
 out:
	if (devs != NULL)
		cbor_decref(&devs);
	if (data != NULL) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	import_free(&im);
	return r;
}

/* device list TENANT: every page */
static int
cmd_device_list(const struct globals *g, const char *tenant)
{
	char after[TCA_DEVICE_ID_MAX * 4 + 1] = "";
	int first = 1, r;

	if (g->json)
		putchar('[');
	for (;;) {
		cbor_item_t *args, *res = NULL, *devs, *next;
		size_t n, k;

		args = args_new(after[0] != '\0' ? 2 : 1);
		args_text(args, "tenant", tenant);
		if (after[0] != '\0')
			args_text(args, "after", after);
		r = call(g, TCA_OP_DEVICE_LIST, args, &res);
		cbor_decref(&args);
		if (r != 0) {
			if (g->json)
				puts("]");
			return r;
		}
		devs = tca_map_get(res, "devices");
		n = devs != NULL && cbor_isa_array(devs) ? cbor_array_size(devs) : 0;
		for (k = 0; k < n; k++) {
			const cbor_item_t *d = cbor_array_handle(devs)[k];

			if (g->json) {
				if (!first)
					putchar(',');
				cli_print_json(stdout, d);
			} else {
				char id[TCA_DEVICE_ID_MAX * 4 + 1] = "", state[16] = "";
				char serial[2 * TCA_SERIAL_MAX + 1] = "-", when[32] = "never";
				uint64_t exp = 0, failures = 0;

				(void)tca_map_get_text(d, "device_id", id, sizeof(id));
				(void)tca_map_get_text(d, "state", state, sizeof(state));
				(void)tca_map_get_uint(d, "failures", &failures);
				if (tca_map_get_uint(d, "expires_at", &exp) == TCA_OK && exp != 0)
					tca_iso_time((int64_t)exp, when, sizeof(when));
				(void)tca_map_get_text(d, "certificate_serial", serial,
				    sizeof(serial));
				if (first)
					printf("%-32s %-8s %-8s %-20s %s\n", "DEVICE", "STATE",
					    "FAILURES", "EXPIRES", "CERTIFICATE");
				printf("%-32s %-8s %-8" PRIu64 " %-20s %s\n", id, state, failures,
				    when, serial);
			}
			first = 0;
		}
		next = tca_map_get(res, "next");
		after[0] = '\0';
		if (next != NULL && cbor_isa_string(next) && cbor_string_length(next) < sizeof(after))
			snprintf(after, sizeof(after), "%.*s", (int)cbor_string_length(next),
			    (const char *)cbor_string_handle(next));
		cbor_decref(&res);
		if (after[0] == '\0')
			break;
	}
	if (g->json)
		puts("]");
	else if (first)
		fprintf(stderr, "no registered devices\n");
	return 0;
}

static int
cmd_device(const struct globals *g, int argc, char **argv)
{
	const char *sub, *pos[3] = { NULL, NULL, NULL }, *otp_file = NULL, *expires = NULL;
	cbor_item_t *args, *res = NULL;
	uint64_t expires_s = 0;
	int i, npos = 0, generate = 0, opts_done = 0, r;

	if (argc < 1 || wants_help(argc, argv)) {
		fputs(device_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : 0;
	}
	sub = argv[0];
	for (i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0)
			opts_done = 1;
		else if (!opts_done && strcmp(argv[i], "--otp-file") == 0 && i + 1 < argc)
			otp_file = argv[++i];
		else if (!opts_done && strcmp(argv[i], "--generate") == 0)
			generate = 1;
		else if (!opts_done && strcmp(argv[i], "--expires") == 0 && i + 1 < argc)
			expires = argv[++i];
		else if ((opts_done || argv[i][0] != '-' || strcmp(argv[i], "-") == 0) &&
		    npos < 3)
			pos[npos++] = argv[i];
		else {
			fprintf(stderr, "ca-admin device %s: unexpected argument %s\n", sub, argv[i]);
			return EXIT_USAGE;
		}
	}
	if (expires != NULL && parse_expires(expires, &expires_s) != 0) {
		fprintf(stderr, "ca-admin device %s: --expires takes Ns, Nm, Nh or Nd (at most "
		    "%dd) or never, e.g. 30d\n", sub, EXPIRES_MAX_S / 86400);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "register") != 0 && (otp_file != NULL || generate)) {
		fprintf(stderr, "ca-admin device %s: --otp-file and --generate belong to "
		    "device register\n", sub);
		return EXIT_USAGE;
	}
	if (expires != NULL && strcmp(sub, "register") != 0 && strcmp(sub, "import") != 0) {
		fprintf(stderr, "ca-admin device %s: --expires belongs to register and import\n",
		    sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "register") == 0 || strcmp(sub, "import") == 0 ||
	    strcmp(sub, "show") == 0 || strcmp(sub, "unregister") == 0) {
		if (npos != 2) {
			fprintf(stderr, "ca-admin device %s: give TENANT and %s\n", sub,
			    strcmp(sub, "import") == 0 ? "FILE.csv" : "DEVICE_ID");
			return EXIT_USAGE;
		}
	} else if (strcmp(sub, "list") == 0) {
		if (npos != 1) {
			fprintf(stderr, "ca-admin device list: give TENANT only\n");
			return EXIT_USAGE;
		}
		return cmd_device_list(g, pos[0]);
	} else {
		fprintf(stderr, "ca-admin: unknown command device %s\n", sub);
		fputs(device_usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "register") == 0) {
		if (otp_file != NULL && generate) {
			fprintf(stderr, "ca-admin device register: give --otp-file or --generate, "
			    "not both\n");
			return EXIT_USAGE;
		}
		return cmd_device_register(g, pos[0], pos[1], otp_file, expires != NULL,
		    expires_s);
	}
	if (strcmp(sub, "import") == 0)
		return cmd_device_import(g, pos[0], pos[1], expires != NULL, expires_s);
	args = args_new(2);
	args_text(args, "tenant", pos[0]);
	args_text(args, "device_id", pos[1]);
	r = call(g, sub[0] == 's' ? TCA_OP_DEVICE_SHOW : TCA_OP_DEVICE_UNREGISTER, args, &res);
	cbor_decref(&args);
	if (r != 0)
		return r;
	if (g->json) {
		cli_print_json(stdout, res);
		putchar('\n');
	} else if (sub[0] == 's')
		print_device(res);
	else
		printf("device %s of tenant %s unregistered\n", pos[1], pos[0]);
	cbor_decref(&res);
	return 0;
}

/* ------------------------------------------------------------ local commands */

/* ops [--markdown]: the RPC operation table this ca-admin was built with */
static int
cmd_ops(int argc, char **argv)
{
	int markdown = 0, i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--markdown") == 0)
			markdown = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: ca-admin ops [--markdown]\n");
			return 0;
		} else {
			fprintf(stderr, "ca-admin ops: unexpected argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	cli_print_ops(stdout, markdown, TCA_ROLE_ADMIN);
	return 0;
}

/* store.uri / store.path of the engine configuration */
static int
take_store_keys(void *ctx, const char *key, const char *value, char *why, size_t whylen)
{
	struct tca_config *cfg = ctx;

	(void)why;
	(void)whylen;
	if (strcmp(key, "store.path") == 0) {
		snprintf(cfg->store_path, sizeof(cfg->store_path), "%s", value);
		cfg->store_path_set = 1;
	} else if (strcmp(key, "store.uri") == 0) {
		snprintf(cfg->store_uri, sizeof(cfg->store_uri), "%s", value);
		cfg->store_uri_set = 1;
	} else if (strcmp(key, "journal.checkpoint_key_file") == 0)
		snprintf(cfg->checkpoint_key_file, sizeof(cfg->checkpoint_key_file),
		    "%s", value);
	return TCA_OK;
}

/* The store: --db FILE (a SQLite file), --store URI, or store.uri /
 * store.path of the engine configuration (only those keys are read, so the
 * journal can be audited on a machine without the token). */
static int
store_uri_from(const char *db, const char *uri, const char *config, char *out,
    size_t outsz, char *keyfile, size_t keylen)
{
	struct tca_config *k = NULL;  /* large: not on the stack */
	char err[1024];
	int r = EXIT_REFUSED;

	if ((db != NULL) + (uri != NULL) + (config != NULL) != 1) {
		fprintf(stderr, "ca-admin journal: give exactly one of --db FILE, "
		    "--store URI and --config FILE\n");
		return EXIT_USAGE;
	}
	keyfile[0] = '\0';
	if (db != NULL || uri != NULL) {
		const char *backend, *file = NULL;

		if ((size_t)snprintf(out, outsz, "%s%s", db != NULL ? "sqlite:" : "",
		    db != NULL ? db : uri) >= outsz) {
			fprintf(stderr, "ca-admin: store name too long\n");
			return EXIT_USAGE;
		}
		/* the audit public key the engine writes beside a SQLite store */
		backend = tca_store_uri_backend(out, &file);
		if (backend != NULL && strcmp(backend, "sqlite") == 0 && file != NULL &&
		    *file != '\0' &&
		    (size_t)snprintf(keyfile, keylen, "%s.audit-key.pem", file) >= keylen)
			keyfile[0] = '\0';
		return 0;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		fprintf(stderr, "ca-admin: out of memory\n");
		return EXIT_REFUSED;
	}
	tca_config_defaults(k);
	if (tca_kv_parse_file(config, take_store_keys, k, err, sizeof(err)) != TCA_OK ||
	    tca_config_store(k, config, err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin: %s\n", err);
		goto out;
	}
	if ((size_t)snprintf(out, outsz, "%s", k->store_uri) >= outsz) {
		fprintf(stderr, "ca-admin: store.uri too long\n");
		goto out;
	}
	if (tca_config_checkpoint_key_file(k, keyfile, keylen) != TCA_OK)
		keyfile[0] = '\0';
	r = 0;
 out:
	free(k);
	return r;
}

/*
 * --checkpoint FILE [--pubkey PEM]: the last "tca-checkpoint-v1" line of
 * FILE, its signature checked (against PEM if given).  0 with the head it
 * names and a description ("(signed ... by audit key ...)"), or an exit
 * code after a message.
 */
static int
read_checkpoint(const char *file, const char *pubfile, long long *seq_ptr,
    unsigned char hash[32], char *desc, size_t desclen)
{
	char buf[TCA_CHECKPOINT_LINE_MAX + 2], last[TCA_CHECKPOINT_LINE_MAX + 2] = "";
	char why[256] = "", fp[65] = "", when[40];
	EVP_PKEY *pin = NULL;
	FILE *f;
	int64_t seq = 0, t = 0;
	size_t n;
	int r;

	if (pubfile != NULL) {
		if ((f = fopen(pubfile, "re")) == NULL ||
		    (pin = PEM_read_PUBKEY(f, NULL, NULL, NULL)) == NULL) {
			fprintf(stderr, "ca-admin journal verify: --pubkey %s: %s\n",
			    pubfile, f == NULL ? strerror(errno) : "not a PEM public key");
			if (f != NULL)
				fclose(f);
			return EXIT_USAGE;
		}
		fclose(f);
	}
	if ((f = fopen(file, "re")) == NULL) {
		fprintf(stderr, "ca-admin journal verify: --checkpoint %s: %s\n", file,
		    strerror(errno));
		EVP_PKEY_free(pin);
		return EXIT_REFUSED;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		n = strcspn(buf, "\r\n");
		buf[n] = '\0';
		if (strncmp(buf, TCA_CHECKPOINT_TAG " ", strlen(TCA_CHECKPOINT_TAG) + 1) == 0)
			snprintf(last, sizeof(last), "%s", buf);
	}
	fclose(f);
	if (last[0] == '\0') {
		fprintf(stderr, "ca-admin journal verify: %s holds no %s line\n", file,
		    TCA_CHECKPOINT_TAG);
		EVP_PKEY_free(pin);
		return EXIT_REFUSED;
	}
	r = tca_checkpoint_verify_line(last, pin, &seq, hash, &t, fp, why, sizeof(why));
	EVP_PKEY_free(pin);
	if (r != TCA_OK) {
		printf("checkpoint INVALID: %s\n", why);
		return EXIT_JOURNAL_BROKEN;
	}
	tca_iso_time(t, when, sizeof(when));
	snprintf(desc, desclen, " (signed %s by audit key %.16s...)", when, fp);
	*seq_ptr = seq;
	return 0;
}

/* The cross-check's problem lines, for --json (arr) and text (text). */
struct xc_lines {
	cbor_item_t *arr;
	char *text;
	size_t len;
	int nomem;
};

static void
xc_line(void *ctx, const char *line)
{
	struct xc_lines *xl = ctx;
	cbor_item_t *s;
	size_t n = strlen(line);
	char *nt;

	if (xl->arr != NULL) {
		if ((s = cbor_build_string(line)) == NULL ||
		    !cbor_array_push(xl->arr, s))
			xl->nomem = 1;
		if (s != NULL)
			cbor_decref(&s);
	}
	if ((nt = realloc(xl->text, xl->len + n + 4)) == NULL) {
		xl->nomem = 1;
		return;
	}
	xl->text = nt;
	snprintf(xl->text + xl->len, n + 4, "  %s\n", line);
	xl->len += n + 3;
}

static int
cmd_journal(const struct globals *g, int argc, char **argv)
{
	const char *db = NULL, *uri = NULL, *config = NULL, *outpath = NULL;
	const char *saved = NULL, *cpfile = NULL, *pubfile = NULL;
	char path[PATH_MAX + 16], shown[PATH_MAX + 16], why[512] = "", headhex[65];
	char hwhy[512] = "", cpdesc[200] = "", keyfile[PATH_MAX + 32];
	unsigned char head[32], saved_hash[32];
	long long saved_seq = 0;
	int hr = TCA_OK;
	uint64_t count = 0;
	int64_t bad = 0;
	tca_store *st = NULL;
	FILE *out = stdout;
	int i, r;

	if (argc < 1 || wants_help(argc, argv)) {
		fprintf(argc < 1 ? stderr : stdout,
		    "usage: ca-admin journal verify (--db FILE | --store URI | --config FILE)\n"
		    "           [--head N:HASH | --checkpoint FILE [--pubkey PEM]]\n"
		    "       ca-admin journal export (--db FILE | --store URI | --config FILE)\n"
		    "           [--out FILE]\n"
		    "  --db FILE: a SQLite store file; --store URI: sqlite:PATH,\n"
		    "  postgresql://... or a libpq key=value string; --config FILE:\n"
		    "  store.uri / store.path of the engine configuration\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			uri = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			outpath = argv[++i];
		else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc &&
		    strcmp(argv[0], "verify") == 0)
			saved = argv[++i];
		else if (strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc &&
		    strcmp(argv[0], "verify") == 0)
			cpfile = argv[++i];
		else if (strcmp(argv[i], "--pubkey") == 0 && i + 1 < argc &&
		    strcmp(argv[0], "verify") == 0)
			pubfile = argv[++i];
		else {
			fprintf(stderr, "ca-admin journal: unexpected argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (saved != NULL && cpfile != NULL) {
		fprintf(stderr, "ca-admin journal verify: give --head or --checkpoint, "
		    "not both\n");
		return EXIT_USAGE;
	}
	if (pubfile != NULL && cpfile == NULL) {
		fprintf(stderr, "ca-admin journal verify: --pubkey goes with "
		    "--checkpoint\n");
		return EXIT_USAGE;
	}
	if ((r = store_uri_from(db, uri, config, path, sizeof(path), keyfile,
	    sizeof(keyfile))) != 0)
		return r;
	/* --checkpoint FILE: its last signed line becomes the saved head; the
	 * audit key pinned by --pubkey, else by the public key file the engine
	 * wrote (journal.checkpoint_key_file, or beside a SQLite store) */
	if (cpfile != NULL && pubfile == NULL && keyfile[0] != '\0' &&
	    access(keyfile, F_OK) == 0)
		pubfile = keyfile;
	if (cpfile != NULL && pubfile == NULL)
		fprintf(stderr, "ca-admin journal verify: warning: no audit public key "
		    "(--pubkey, journal.checkpoint_key_file of --config, or the file "
		    "beside a SQLite store): the checkpoint's signature is checked "
		    "against the key in its own line only\n");
	if (cpfile != NULL && (r = read_checkpoint(cpfile, pubfile, &saved_seq,
	    saved_hash, cpdesc, sizeof(cpdesc))) != 0)
		return r;
	if (cpfile != NULL)
		saved = cpfile;
	/* --head N:HASH, as journal verify --json printed records and head */
	if (saved != NULL && cpfile == NULL) {
		const char *colon = strchr(saved, ':');
		char *end = NULL;
		size_t k;

		errno = 0;
		saved_seq = strtoll(saved, &end, 10);
		if (colon == NULL || end != colon || errno != 0 || saved_seq < 1 ||
		    strlen(colon + 1) != 64) {
			fprintf(stderr, "ca-admin journal verify: --head wants N:HASH "
			    "(records and head of an earlier journal verify --json), "
			    "not %s\n", saved);
			return EXIT_USAGE;
		}
		for (k = 0; k < 32; k++) {
			int hi = OPENSSL_hexchar2int((unsigned char)colon[1 + 2 * k]);
			int lo = OPENSSL_hexchar2int((unsigned char)colon[2 + 2 * k]);

			if (hi < 0 || lo < 0) {
				fprintf(stderr, "ca-admin journal verify: --head: %s "
				    "is not 64 hex digits\n", colon + 1);
				return EXIT_USAGE;
			}
			saved_hash[k] = (unsigned char)(hi << 4 | lo);
		}
	}
	if (strcmp(argv[0], "verify") != 0 && strcmp(argv[0], "export") != 0) {
		fprintf(stderr, "ca-admin: unknown command journal %s\n", argv[0]);
		return EXIT_USAGE;
	}
	tca_store_uri_redact(path, shown, sizeof(shown));
	if (tca_store_open(path, TCA_STORE_READONLY, &st, why, sizeof(why)) != TCA_OK) {
		fprintf(stderr, "ca-admin: cannot open store %s: %s\n", shown, why);
		return EXIT_REFUSED;
	}
	if (strcmp(argv[0], "verify") == 0) {
		r = tca_journal_verify(st, &count, &bad, head, why, sizeof(why));
		tca_hex(head, sizeof(head), headhex);
		if (r == TCA_OK || r == TCA_ERR_POLICY_VIOLATION) {
			/* the certificates against the journal, broken chain or not */
			struct xc_lines xl;
			uint64_t problems = 0, certs = 0;
			cbor_item_t *m = cbor_new_definite_map((r == TCA_OK ? 6 : 8) +
			    (saved != NULL && r == TCA_OK ? 1 : 0));
			int xr;

			memset(&xl, 0, sizeof(xl));
			if (saved != NULL && r == TCA_OK && saved_seq == 0) {
				hr = TCA_OK;	/* a checkpoint of the empty journal */
			} else if (saved != NULL && r == TCA_OK) {
				hr = tca_journal_check_head(st, saved_seq, saved_hash,
				    hwhy, sizeof(hwhy));
				if (hr != TCA_OK && hr != TCA_ERR_POLICY_VIOLATION) {
					fprintf(stderr, "ca-admin journal verify: --head: %s\n",
					    tca_strerror(hr));
					st->ops->close(st);
					return EXIT_REFUSED;
				}
			}
			xl.arr = cbor_new_indefinite_array();
			xr = tca_journal_crosscheck(st, TCA_XC_DER, xc_line, &xl, &problems, &certs);
			if (xr != TCA_OK && xr != TCA_ERR_POLICY_VIOLATION) {
				fprintf(stderr, "ca-admin: journal verify: cross-checking "
				    "the certificates: %s\n", tca_strerror(xr));
				r = EXIT_REFUSED;
			} else if (m == NULL || xl.arr == NULL || xl.nomem ||
			    tca_map_add_bool(m, "ok", r == TCA_OK && xr == TCA_OK &&
			    hr == TCA_OK) != TCA_OK ||
			    (saved != NULL && r == TCA_OK && tca_map_add_text(m,
			    cpfile != NULL ? "checkpoint" : "saved_head",
			    hr == TCA_OK ? "ok" : hwhy) != TCA_OK) ||
			    tca_map_add_uint(m, "records", count) != TCA_OK ||
			    tca_map_add_text(m, "head", r == TCA_OK && count > 0 ? headhex : "") != TCA_OK ||
			    (r != TCA_OK && (tca_map_add_int(m, "first_bad_seq", bad) != TCA_OK ||
			    tca_map_add_text(m, "reason", why) != TCA_OK)) ||
			    tca_map_add_uint(m, "certificates", certs) != TCA_OK ||
			    tca_map_add_uint(m, "certificate_problems", problems) != TCA_OK ||
			    tca_map_add_item(m, "problems", xl.arr) != TCA_OK) {
				fprintf(stderr, "ca-admin: out of memory\n");
				r = EXIT_REFUSED;
			} else {
				xl.arr = NULL;	/* the map holds it */
				if (g->json) {
					cli_print_json(stdout, m);
					putchar('\n');
				} else {
					if (r == TCA_OK)
						printf("journal OK: %" PRIu64 " records, head hash %s\n",
						    count, count > 0 ? headhex : "(empty)");
					else
						printf("journal BROKEN at record %" PRId64 ": %s\n", bad, why);
					if (saved != NULL && r == TCA_OK && hr == TCA_OK)
						printf("%s OK: record %lld is still there, "
						    "unchanged%s\n", cpfile != NULL ? "checkpoint" :
						    "saved head", saved_seq, cpdesc);
					else if (saved != NULL && r == TCA_OK)
						printf("%s MISSING: %s%s\n", cpfile != NULL ?
						    "checkpoint" : "saved head", hwhy, cpdesc);
					if (xr == TCA_OK)
						printf("certificates OK: %" PRIu64 " rows match the journal\n",
						    certs);
					else
						printf("certificates DO NOT MATCH the journal: %" PRIu64
						    " problem(s) in %" PRIu64 " rows\n%s", problems,
						    certs, xl.text != NULL ? xl.text : "");
				}
				if (r == TCA_OK && xr == TCA_OK && hr == TCA_OK)
					r = 0;
				else
					r = EXIT_JOURNAL_BROKEN;
			}
			if (xl.arr != NULL)
				cbor_decref(&xl.arr);
			free(xl.text);
			if (m != NULL)
				cbor_decref(&m);
		} else {
			fprintf(stderr, "ca-admin: journal verify: %s %s\n", tca_strerror(r), why);
			r = EXIT_REFUSED;
		}
	} else {
		if (outpath != NULL && (out = fopen(outpath, "we")) == NULL) {
			perror(outpath);
			st->ops->close(st);
			return EXIT_REFUSED;
		}
		r = tca_journal_export_json(st, out) == TCA_OK ? 0 : EXIT_REFUSED;
		if (out != stdout && fclose(out) != 0)
			r = EXIT_REFUSED;
		if (r != 0)
			fprintf(stderr, "ca-admin: journal export failed\n");
	}
	st->ops->close(st);
	return r;
}

/* ------------------------------------------------------------ store migrate */

#define EXIT_MIGRATE_REFUSED 5

static const char store_usage[] =
    "usage: ca-admin store migrate (--from URI | --config FILE) --to URI\n"
    "  Copies a whole store (every CA with its state, certificate, revocation,\n"
    "  CRL, device registration and journal record, ids and hashes kept) into\n"
    "  an EMPTY store of any backend, in one transaction, e.g.\n"
    "    --from sqlite:/var/lib/tca/state.db --to postgresql://tca@db/tca\n"
    "  --from URI: the source store; --config FILE: the source is store.uri of\n"
    "  this engine configuration; --to URI: the target (sqlite:PATH,\n"
    "  postgresql://... or a libpq key=value string).\n"
    "  Stop the engine first: a SQLite source locked by an engine is refused.\n"
    "  The source is read-only and verified first (journal chain, certificates\n"
    "  against it); the target is verified after (same record count and head).\n"
    "  Exit codes: 0 migrated and verified; 1 failed (cannot open, I/O; nothing\n"
    "  written); 2 usage; 4 a journal did not verify (source: nothing written;\n"
    "  target: see the message); 5 refused (the source is in use by an engine,\n"
    "  or the target is not empty).\n";

struct verified {
	uint64_t records;
	unsigned char head[32];
	uint64_t certs;
};

/* Chain and cross-check (with DER) of st, named shown in messages.  0, or
 * EXIT_JOURNAL_BROKEN / EXIT_REFUSED after a message. */
static int
verify_store(tca_store *st, const char *role, const char *shown, struct verified *v)
{
	struct xc_lines xl;
	char why[512] = "";
	uint64_t problems = 0;
	int64_t bad = 0;
	int r;

	memset(v, 0, sizeof(*v));
	r = tca_journal_verify(st, &v->records, &bad, v->head, why, sizeof(why));
	if (r == TCA_ERR_POLICY_VIOLATION) {
		fprintf(stderr, "ca-admin store migrate: the %s %s: journal BROKEN at "
		    "record %" PRId64 ": %s\n", role, shown, bad, why);
		return EXIT_JOURNAL_BROKEN;
	}
	if (r != TCA_OK) {
		fprintf(stderr, "ca-admin store migrate: the %s %s: reading the journal: "
		    "%s %s\n", role, shown, tca_strerror(r), why);
		return EXIT_REFUSED;
	}
	memset(&xl, 0, sizeof(xl));
	r = tca_journal_crosscheck(st, TCA_XC_DER, xc_line, &xl, &problems, &v->certs);
	if (r == TCA_ERR_POLICY_VIOLATION) {
		fprintf(stderr, "ca-admin store migrate: the %s %s: certificates DO NOT "
		    "MATCH the journal: %" PRIu64 " problem(s) in %" PRIu64 " rows\n%s",
		    role, shown, problems, v->certs, xl.text != NULL ? xl.text : "");
		free(xl.text);
		return EXIT_JOURNAL_BROKEN;
	}
	free(xl.text);
	if (r != TCA_OK) {
		fprintf(stderr, "ca-admin store migrate: the %s %s: cross-checking the "
		    "certificates: %s\n", role, shown, tca_strerror(r));
		return EXIT_REFUSED;
	}
	return 0;
}

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int
cmd_store(const struct globals *g, int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *config = NULL, *src_path = NULL, *dst_path;
	char src_uri[PATH_MAX + 16], src_shown[PATH_MAX + 16], dst_shown[PATH_MAX + 16];
	char keyfile[PATH_MAX + 32];	/* store_uri_from fills it; unused here */
	char why[1024] = "", headhex[65];
	struct tca_mig_stats stats;
	struct verified vs, vd;
	struct timespec t0;
	struct stat sb;
	tca_store *src = NULL, *dst = NULL;
	int i, r = EXIT_REFUSED, lock_fd = -1, mr, t;
	cbor_item_t *m = NULL, *tables = NULL;

	if (argc < 1 || wants_help(argc, argv)) {
		fputs(store_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[0], "migrate") != 0) {
		fprintf(stderr, "ca-admin: unknown command store %s\n%s", argv[0], store_usage);
		return EXIT_USAGE;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else {
			fprintf(stderr, "ca-admin store migrate: unexpected argument %s\n%s",
			    argv[i], store_usage);
			return EXIT_USAGE;
		}
	}
	if (to == NULL || (from == NULL) == (config == NULL)) {
		fprintf(stderr, "ca-admin store migrate: give --to URI and one of "
		    "--from URI and --config FILE\n%s", store_usage);
		return EXIT_USAGE;
	}
	if ((r = store_uri_from(NULL, from, config, src_uri, sizeof(src_uri), keyfile,
	    sizeof(keyfile))) != 0)
		return r;
	r = EXIT_REFUSED;
	tca_store_uri_redact(src_uri, src_shown, sizeof(src_shown));
	tca_store_uri_redact(to, dst_shown, sizeof(dst_shown));
	if (tca_store_uri_backend(src_uri, &src_path) == NULL ||
	    tca_store_uri_backend(to, &dst_path) == NULL) {
		fprintf(stderr, "ca-admin store migrate: %s: not a store URI (sqlite:PATH, "
		    "postgresql://... or a libpq key=value string)\n",
		    tca_store_uri_backend(src_uri, NULL) == NULL ? src_shown : dst_shown);
		return EXIT_USAGE;
	}
	if (strcmp(src_uri, to) == 0 || (src_path != NULL && dst_path != NULL &&
	    strcmp(src_path, dst_path) == 0)) {
		fprintf(stderr, "ca-admin store migrate: --from and --to name the same "
		    "store\n");
		return EXIT_USAGE;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a SQLite source: no engine may run on it meanwhile (we hold its
	 * lock until the end, so none starts either) */
	if (src_path != NULL) {
		if (stat(src_path, &sb) != 0) {
			fprintf(stderr, "ca-admin store migrate: the source %s: %s\n",
			    src_shown, strerror(errno));
			return EXIT_REFUSED;
		}
		if (tca_store_sqlite_lock(src_path, &lock_fd, why, sizeof(why)) != TCA_OK) {
			fprintf(stderr, "ca-admin store migrate: refused: %s\n"
			    "  Stop the engine on it (systemctl stop tca-engined), then run "
			    "the migration again.\n", why);
			return EXIT_MIGRATE_REFUSED;
		}
	}
	if (tca_store_open(src_uri, TCA_STORE_READONLY, &src, why, sizeof(why)) != TCA_OK) {
		fprintf(stderr, "ca-admin store migrate: cannot open the source %s: %s\n",
		    src_shown, why);
		goto out;
	}
	if ((r = verify_store(src, "source", src_shown, &vs)) != 0) {
		fprintf(stderr, "ca-admin store migrate: nothing was migrated: the "
		    "source must verify first\n");
		goto out;
	}
	r = EXIT_REFUSED;
	if (tca_store_open(to, dst_path != NULL ? TCA_STORE_EXCLUSIVE : 0, &dst, why,
	    sizeof(why)) != TCA_OK) {
		fprintf(stderr, "ca-admin store migrate: cannot open the target %s: %s\n",
		    dst_shown, why);
		goto out;
	}
	mr = tca_store_migrate(src, dst, &stats, why, sizeof(why));
	if (mr != TCA_OK) {
		fprintf(stderr, "ca-admin store migrate: %s: %s\n"
		    "  Nothing was written: the target %s is as it was.\n",
		    mr == TCA_ERR_ALREADY_EXISTS ? "refused" : "failed", why, dst_shown);
		r = mr == TCA_ERR_ALREADY_EXISTS ? EXIT_MIGRATE_REFUSED :
		    mr == TCA_ERR_POLICY_VIOLATION ? EXIT_JOURNAL_BROKEN : EXIT_REFUSED;
		goto out;
	}
	if ((r = verify_store(dst, "target", dst_shown, &vd)) != 0)
		goto committed_bad;
	if (vd.records != vs.records || stats.records != vs.records ||
	    memcmp(vd.head, vs.head, 32) != 0 || vd.certs != vs.certs) {
		fprintf(stderr, "ca-admin store migrate: the target does not match the "
		    "source: %" PRIu64 " records and %" PRIu64 " certificates there, %"
		    PRIu64 " and %" PRIu64 " here, or another head hash\n",
		    vs.records, vs.certs, vd.records, vd.certs);
		r = EXIT_JOURNAL_BROKEN;
		goto committed_bad;
	}
	tca_hex(vd.head, 32, headhex);
	if (g->json) {
		if ((m = cbor_new_definite_map(7)) == NULL ||
		    (tables = cbor_new_definite_map(TCA_MIG_NTABLES)) == NULL)
			goto nomem;
		for (t = 0; t < TCA_MIG_NTABLES; t++)
			if (tca_map_add_uint(tables, tca_mig_tables[t].label,
			    stats.rows[t]) != TCA_OK)
				goto nomem;
		if (tca_map_add_bool(m, "ok", 1) != TCA_OK ||
		    tca_map_add_text(m, "from", src_shown) != TCA_OK ||
		    tca_map_add_text(m, "to", dst_shown) != TCA_OK ||
		    tca_map_add_item(m, "rows", tables) != TCA_OK)
			goto nomem;
		tables = NULL;
		if (tca_map_add_uint(m, "records", vd.records) != TCA_OK ||
		    tca_map_add_text(m, "head", vd.records > 0 ? headhex : "") != TCA_OK ||
		    tca_map_add_uint(m, "milliseconds",
		    (uint64_t)(elapsed_s(&t0) * 1000.0)) != TCA_OK)
			goto nomem;
		cli_print_json(stdout, m);
		putchar('\n');
	} else {
		printf("migrated %s -> %s\n", src_shown, dst_shown);
		for (t = 0; t < TCA_MIG_NTABLES; t++)
			printf("  %-13s %" PRIu64 "\n", tca_mig_tables[t].label, stats.rows[t]);
		printf("journal OK on the target: %" PRIu64 " records, head seq %" PRId64
		    " hash %s (the source's)\n", vd.records, stats.head_seq,
		    vd.records > 0 ? headhex : "(empty)");
		printf("certificates OK: %" PRIu64 " rows match the journal\n", vd.certs);
		printf("took %.3f s\n", elapsed_s(&t0));
	}
	r = 0;
	goto out;
 nomem:
	fprintf(stderr, "ca-admin: out of memory (the migration itself succeeded)\n");
	r = EXIT_REFUSED;
	goto out;
 committed_bad:
	fprintf(stderr, "ca-admin store migrate: the copy was committed to %s but "
	    "does not verify: do not start an engine on it; drop the target "
	    "(a fresh database or file) and report this\n", dst_shown);
 out:
	if (tables != NULL)
		cbor_decref(&tables);
	if (m != NULL)
		cbor_decref(&m);
	if (dst != NULL)
		dst->ops->close(dst);
	if (src != NULL)
		src->ops->close(src);
	if (lock_fd != -1)
		close(lock_fd);
	return r;
}

static int
cmd_token(const struct globals *g, int argc, char **argv)
{
	const char *profile = NULL, *dir = NULL, *label = NULL, *so_file = NULL, *pin_file = NULL;
	const char *cur_file = NULL, *init_args = NULL;
	struct tca_token_init_params tp;
	struct tca_config *cfg = NULL;
	char err[1024] = "", ppath[2 * PATH_MAX + 16];
	char *so = NULL, *pin = NULL, *cur = NULL;
	size_t so_len = 0, pin_len = 0, cur_len = 0;
	unsigned long slot = 0;
	int i, r = EXIT_REFUSED;

	if (argc < 1 || strcmp(argv[0], "init") != 0 || wants_help(argc, argv)) {
		fprintf(argc < 1 || wants_help(argc, argv) ? stdout : stderr,
		    "usage: ca-admin token init --profile NAME [--profiles-dir DIR] --label LABEL\n"
		    "                           --so-pin-file FILE --pin-file FILE\n"
		    "                           [--current-so-pin-file FILE] [--init-args STRING]\n"
		    "Provisions a DEVELOPMENT token: initializes a free slot (SoftHSMv2,\n"
		    "openCryptoki's soft token) with a label, an SO PIN and a user PIN.\n"
		    "Production HSM slots are provisioned by the security team with the vendor's\n"
		    "own tools (docs/hsm-provisioning.md); check them with ca-admin hsm-check.\n"
		    "PIN files must be mode 0600 and within the profile's pin_min..pin_max.\n"
		    "--current-so-pin-file: for modules whose C_InitToken wants their current SO\n"
		    "PIN (profile init_so_pin = current, openCryptoki: 87654321); the SO PIN is\n"
		    "then changed to the one in --so-pin-file.\n");
		return wants_help(argc, argv) ? 0 : EXIT_USAGE;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
			profile = argv[++i];
		else if (strcmp(argv[i], "--profiles-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
			label = argv[++i];
		else if (strcmp(argv[i], "--so-pin-file") == 0 && i + 1 < argc)
			so_file = argv[++i];
		else if (strcmp(argv[i], "--pin-file") == 0 && i + 1 < argc)
			pin_file = argv[++i];
		else if (strcmp(argv[i], "--current-so-pin-file") == 0 && i + 1 < argc)
			cur_file = argv[++i];
		else if (strcmp(argv[i], "--init-args") == 0 && i + 1 < argc)
			init_args = argv[++i];
		else {
			fprintf(stderr, "ca-admin token init: unexpected argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (profile == NULL || label == NULL || so_file == NULL || pin_file == NULL) {
		fprintf(stderr, "ca-admin token init: --profile, --label, --so-pin-file and "
		    "--pin-file are required\n");
		return EXIT_USAGE;
	}
	if (strlen(label) == 0 || strlen(label) > 32) {
		fprintf(stderr, "ca-admin token init: label must be 1..32 characters\n");
		return EXIT_USAGE;
	}
	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		goto out;
	tca_config_defaults(cfg);
	if (dir != NULL)
		snprintf(cfg->profiles_dir, sizeof(cfg->profiles_dir), "%s", dir);
	tca_profile_path(cfg, profile, ppath, sizeof(ppath));
	if (tca_profile_load(ppath, cfg, err, sizeof(err)) != TCA_OK ||
	    tca_secret_read_file(so_file, &so, &so_len, err, sizeof(err)) != TCA_OK ||
	    tca_secret_read_file(pin_file, &pin, &pin_len, err, sizeof(err)) != TCA_OK ||
	    (cur_file != NULL &&
	    tca_secret_read_file(cur_file, &cur, &cur_len, err, sizeof(err)) != TCA_OK)) {
		fprintf(stderr, "ca-admin token init: %s\n", err);
		goto out;
	}
	if (cfg->init_so_pin_current && cur == NULL) {
		fprintf(stderr, "ca-admin token init: the profile %s says C_InitToken wants the "
		    "module's current SO PIN: give it with --current-so-pin-file\n",
		    cfg->profile_name);
		r = EXIT_USAGE;
		goto out;
	}
	/* the token would answer CKR_PIN_LEN_RANGE, perhaps after a half-done init */
	if (tca_profile_check_pin(cfg, so_len, "the SO PIN", err, sizeof(err)) != TCA_OK ||
	    tca_profile_check_pin(cfg, pin_len, "the user PIN", err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin token init: %s\n", err);
		goto out;
	}
	tca_profile_apply_env(cfg);
	memset(&tp, 0, sizeof(tp));
	tp.module_path = cfg->module;
	tp.init_args = init_args != NULL ? init_args :
	    cfg->init_args[0] != '\0' ? cfg->init_args : NULL;
	tp.label = label;
	tp.so_pin = so;
	tp.so_pin_len = so_len;
	tp.current_so_pin = cur;
	tp.current_so_pin_len = cur_len;
	tp.user_pin = pin;
	tp.user_pin_len = pin_len;
	if (tca_token_init(&tp, &slot, err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin token init: %s\n", err);
		goto out;
	}
	if (g->json)
		printf("{\"label\":\"%s\",\"slot\":%lu,\"uri\":\"pkcs11:token=%s\"}\n", label, slot, label);
	else
		printf("token \"%s\" initialized in slot %lu; token.uri = pkcs11:token=%s\n"
		    "(a development token: production slots are provisioned with the vendor's "
		    "tools, docs/hsm-provisioning.md)\n", label, slot, label);
	r = 0;
 out:
	tca_secret_free(so, so_len);
	tca_secret_free(pin, pin_len);
	tca_secret_free(cur, cur_len);
	free(cfg);
	return r;
}

/* ------------------------------------------------------------ hsm-check */

static volatile sig_atomic_t hsm_check_stop;

static void
on_hsm_check_signal(int sig)
{
	(void)sig;
	hsm_check_stop = 1;
}

/* "ec-p256,rsa-3072" -> mask of (1 << type).  0, or -1 after saying on
 * stderr what is wrong. */
static int
parse_key_types(const char *list, unsigned int *mask_ptr)
{
	char buf[256], *t, *save = NULL;
	enum tca_key_type type;

	*mask_ptr = 0;
	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf)) {
		fprintf(stderr, "ca-admin hsm-check: --key-types: list too long\n");
		return -1;
	}
	for (t = strtok_r(buf, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		if (tca_key_type_from_name(t, &type) != TCA_OK) {
			fprintf(stderr, "ca-admin hsm-check: unknown key type %s (ec-p256, ec-p384, "
			    "rsa-3072, ed25519)\n", t);
			return -1;
		}
		*mask_ptr |= 1u << type;
	}
	if (*mask_ptr == 0) {
		fprintf(stderr, "ca-admin hsm-check: --key-types: empty list\n");
		return -1;
	}
	return 0;
}

/* Seconds with up to three decimals ("2", "0.5"), 0..600, as milliseconds. */
static int
parse_seconds(const char *s, unsigned int *ms_ptr)
{
	unsigned long whole = 0, frac = 0;
	const char *dot = strchr(s, '.');
	char ibuf[16];
	size_t ilen = dot != NULL ? (size_t)(dot - s) : strlen(s), flen, i;

	if (ilen == 0 || ilen >= sizeof(ibuf))
		return -1;
	memcpy(ibuf, s, ilen);
	ibuf[ilen] = '\0';
	if (cli_parse_ulong(ibuf, 0, 600, &whole) != 0)
		return -1;
	if (dot != NULL) {
		flen = strlen(dot + 1);
		if (flen == 0 || flen > 3 || strspn(dot + 1, "0123456789") != flen)
			return -1;
		for (i = 0; i < 3; i++)
			frac = frac * 10 + (i < flen ? (unsigned long)(dot[1 + i] - '0') : 0);
	}
	if (whole * 1000 + frac > 600000)
		return -1;
	*ms_ptr = (unsigned int)(whole * 1000 + frac);
	return 0;
}

struct hsm_check_out {
	int json;
	cbor_item_t *checks;	/* --json: the results so far */
	int oom;
};

static int
add_text_or_null(cbor_item_t *m, const char *k, const char *v)
{
	cbor_item_t *null;

	if (v != NULL)
		return tca_map_add_text(m, k, v);
	if ((null = cbor_new_null()) == NULL)
		return TCA_ERR_NOMEM;
	if (tca_map_add_item(m, k, null) != TCA_OK) {
		cbor_decref(&null);
		return TCA_ERR_NOMEM;
	}
	return TCA_OK;
}

/* One result: a line now (the slow checks show progress), or a JSON object
 * for the end. */
static void
hsm_check_result(void *vctx, const struct tca_hsm_check_result *res)
{
	struct hsm_check_out *o = vctx;
	cbor_item_t *m;

	if (!o->json) {
		printf("%s  %-20s %s%s%s%s%s%s\n", tca_hsm_check_status_name(res->status),
		    res->name, res->rv != NULL ? res->rv : "", res->rv != NULL ? ": " : "",
		    res->detail, res->status == TCA_HSM_FAIL && !res->required ?
		    " (informational)" : "", res->hint != NULL ? " -- hint: " : "",
		    res->hint != NULL ? res->hint : "");
		fflush(stdout);
		return;
	}
	if ((m = cbor_new_definite_map(6)) == NULL) {
		o->oom = 1;
		return;
	}
	if (tca_map_add_text(m, "name", res->name) != TCA_OK ||
	    tca_map_add_text(m, "status", tca_hsm_check_status_name(res->status)) != TCA_OK ||
	    add_text_or_null(m, "rv", res->rv) != TCA_OK ||
	    tca_map_add_text(m, "detail", res->detail) != TCA_OK ||
	    add_text_or_null(m, "hint", res->hint) != TCA_OK ||
	    tca_map_add_bool(m, "required", res->required) != TCA_OK ||
	    !cbor_array_push(o->checks, m))
		o->oom = 1;
	cbor_decref(&m);
}

/* The --json document: profile, module, token, checks, key_types,
 * signatures_per_s, ok. */
static int
hsm_check_print_json(const struct tca_hsm_check_summary *sum, cbor_item_t *checks)
{
	cbor_item_t *doc = NULL, *tok = NULL, *types = NULL, *rates = NULL, *t = NULL;
	const struct tca_key_desc *kd;
	size_t i, n_rates = 0;
	int r = -1;

	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++)
		if (sum->signatures_per_s[kd->type] >= 0)
			n_rates++;
	if ((doc = cbor_new_definite_map(7)) == NULL || (tok = cbor_new_definite_map(4)) == NULL ||
	    (types = cbor_new_indefinite_array()) == NULL ||
	    (rates = cbor_new_definite_map(n_rates)) == NULL)
		goto out;
	if (tca_map_add_text(tok, "label", sum->label) != TCA_OK ||
	    tca_map_add_text(tok, "manufacturer", sum->manufacturer) != TCA_OK ||
	    tca_map_add_text(tok, "model", sum->model) != TCA_OK ||
	    tca_map_add_text(tok, "serial", sum->serial) != TCA_OK)
		goto out;
	for (i = 0; (kd = tca_key_desc_at(i)) != NULL; i++) {
		unsigned int bit = 1u << kd->type;

		if (sum->signatures_per_s[kd->type] >= 0 && tca_map_add_uint(rates, kd->name,
		    (uint64_t)(sum->signatures_per_s[kd->type] + 0.5)) != TCA_OK)
			goto out;
		if (!(sum->key_types & bit))
			continue;
		if ((t = cbor_new_definite_map(4)) == NULL ||
		    tca_map_add_text(t, "type", kd->name) != TCA_OK ||
		    tca_map_add_text(t, "mechanism", sum->mechanism[kd->type]) != TCA_OK ||
		    tca_map_add_bool(t, "checked", (sum->checked & bit) != 0) != TCA_OK ||
		    tca_map_add_bool(t, "ok", (sum->passed & bit) != 0) != TCA_OK ||
		    !cbor_array_push(types, t))
			goto out;
		/* the array holds it now; cbor_decref clears t only when it frees */
		cbor_decref(&t);
		t = NULL;
	}
	if (tca_map_add_text(doc, "profile", sum->profile) != TCA_OK ||
	    tca_map_add_text(doc, "module", sum->module) != TCA_OK ||
	    tca_map_add_item(doc, "token", tok) != TCA_OK)
		goto out;
	tok = NULL;
	cbor_incref(checks);	/* the caller keeps its reference */
	if (tca_map_add_item(doc, "checks", checks) != TCA_OK) {
		cbor_decref(&checks);
		goto out;
	}
	if (tca_map_add_item(doc, "key_types", types) != TCA_OK)
		goto out;
	types = NULL;
	if (tca_map_add_item(doc, "signatures_per_s", rates) != TCA_OK)
		goto out;
	rates = NULL;
	if (tca_map_add_bool(doc, "ok", sum->ok) != TCA_OK)
		goto out;
	cli_print_json(stdout, doc);
	putchar('\n');
	r = 0;
 out:
	if (t != NULL)
		cbor_decref(&t);
	if (rates != NULL)
		cbor_decref(&rates);
	if (types != NULL)
		cbor_decref(&types);
	if (tok != NULL)
		cbor_decref(&tok);
	if (doc != NULL)
		cbor_decref(&doc);
	return r;
}

static int
cmd_hsm_check(const struct globals *g, int argc, char **argv)
{
	struct tca_hsm_check_params p;
	struct tca_hsm_check_summary *sum = NULL;
	struct hsm_check_out o;
	struct sigaction sa, old_int, old_term, old_hup, old_pipe;
	unsigned long n;
	char err[1024] = "";
	int i, handlers = 0, r = EXIT_REFUSED;

	if (wants_help(argc, argv)) {
		printf("usage: ca-admin [--json] hsm-check --profile P [--config FILE] [--uri URI]\n"
		    "           [--pin-file F] [--module PATH] [--init-args S] [--profiles-dir DIR]\n"
		    "           [--key-types LIST] [--sessions N] [--seconds S]\n"
		    "Checks an already provisioned token before the engine uses it: module,\n"
		    "token, login (one try), mechanisms, per key type generate / attributes /\n"
		    "sign / destroy (throwaway keys, always removed), sessions, capacity and\n"
		    "signatures per second.  --config takes token.uri, token.pin_file, the\n"
		    "profile and token.init_args from the engine configuration; the other\n"
		    "options override it.  --key-types: comma-separated (default: every type\n"
		    "the token offers); --sessions: default the profile's max_sessions, else %d;\n"
		    "--seconds: signing time per key type, default %d, 0 = not measured.\n"
		    "Exit codes: 0 every required check passed, 1 a required check failed or\n"
		    "the configuration could not be read, 2 usage error.  docs/hsm-check.md\n",
		    TCA_HSM_CHECK_SESSIONS, TCA_HSM_CHECK_RATE_MS / 1000);
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.rate_ms = TCA_HSM_CHECK_RATE_MS;
	for (i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (val == NULL || opt[0] != '-') {
			fprintf(stderr, "ca-admin hsm-check: unexpected argument %s\n", opt);
			return EXIT_USAGE;
		}
		i++;
		if (strcmp(opt, "--profile") == 0)
			p.profile = val;
		else if (strcmp(opt, "--config") == 0)
			p.config_path = val;
		else if (strcmp(opt, "--profiles-dir") == 0)
			p.profiles_dir = val;
		else if (strcmp(opt, "--uri") == 0)
			p.uri = val;
		else if (strcmp(opt, "--pin-file") == 0)
			p.pin_file = val;
		else if (strcmp(opt, "--module") == 0)
			p.module = val;
		else if (strcmp(opt, "--init-args") == 0)
			p.init_args = val;
		else if (strcmp(opt, "--key-types") == 0) {
			if (parse_key_types(val, &p.key_types) != 0)
				return EXIT_USAGE;
		} else if (strcmp(opt, "--sessions") == 0) {
			if (cli_parse_ulong(val, 1, TCA_HSM_CHECK_MAX_SESSIONS, &n) != 0) {
				fprintf(stderr, "ca-admin hsm-check: --sessions: 1..%d\n",
				    TCA_HSM_CHECK_MAX_SESSIONS);
				return EXIT_USAGE;
			}
			p.sessions = (unsigned int)n;
		} else if (strcmp(opt, "--seconds") == 0) {
			if (parse_seconds(val, &p.rate_ms) != 0) {
				fprintf(stderr, "ca-admin hsm-check: --seconds: 0..600, up to three "
				    "decimals\n");
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "ca-admin hsm-check: unexpected argument %s\n", opt);
			return EXIT_USAGE;
		}
	}
	if (p.profile == NULL && p.config_path == NULL) {
		fprintf(stderr, "ca-admin hsm-check: --profile is required (or --config)\n");
		return EXIT_USAGE;
	}
	if (p.config_path == NULL && (p.uri == NULL || p.pin_file == NULL)) {
		fprintf(stderr, "ca-admin hsm-check: --uri and --pin-file are required without "
		    "--config\n");
		return EXIT_USAGE;
	}
	memset(&o, 0, sizeof(o));
	o.json = g->json;
	if ((sum = malloc(sizeof(*sum))) == NULL ||
	    (o.json && (o.checks = cbor_new_indefinite_array()) == NULL)) {
		fprintf(stderr, "ca-admin: out of memory\n");
		goto out;
	}
	/* the token layer's own errors go to stderr; the results to stdout */
	tca_log_init("ca-admin", 0, LOG_ERR);
	/* an interrupted run still removes the keys it made: the signals only
	 * ask it to stop, and a reader that went away (| head) must not kill
	 * the process between generating a key and destroying it */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hsm_check_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, &old_int) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0 ||
	    sigaction(SIGHUP, &sa, &old_hup) != 0) {
		perror("ca-admin: sigaction");
		goto out;
	}
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, &old_pipe) != 0) {
		perror("ca-admin: sigaction");
		goto out;
	}
	p.stop = &hsm_check_stop;
	handlers = 1;
	r = tca_hsm_check_run(&p, hsm_check_result, &o, sum, err, sizeof(err));
	if (r != TCA_OK) {
		fprintf(stderr, "ca-admin hsm-check: %s\n", err[0] != '\0' ? err : tca_strerror(r));
		r = EXIT_REFUSED;
		goto out;
	}
	if (o.oom || (o.json && hsm_check_print_json(sum, o.checks) != 0)) {
		fprintf(stderr, "ca-admin: out of memory\n");
		r = EXIT_REFUSED;
		goto out;
	}
	if (!o.json) {
		if (sum->label[0] != '\0')
			printf("token \"%s\" (%s %s, serial %s), profile %s, module %s\n",
			    sum->label, sum->manufacturer, sum->model, sum->serial, sum->profile,
			    sum->module);
		if (sum->ok)
			printf("hsm-check: OK - every required check passed (%u results)\n",
			    sum->results);
		else
			printf("hsm-check: FAILED - required checks that did not pass: %u "
			    "(%u results)\n", sum->required_failed, sum->results);
	}
	if (hsm_check_stop)
		fprintf(stderr, "ca-admin hsm-check: interrupted; the keys made so far were "
		    "destroyed unless a destroy result says otherwise\n");
	r = sum->ok && !hsm_check_stop ? 0 : EXIT_REFUSED;
 out:
	if (handlers) {
		/* written while SIGPIPE is still ignored: a reader that went away
		 * does not turn the result into a signal */
		(void)fflush(stdout);
		(void)sigaction(SIGINT, &old_int, NULL);
		(void)sigaction(SIGTERM, &old_term, NULL);
		(void)sigaction(SIGHUP, &old_hup, NULL);
		(void)sigaction(SIGPIPE, &old_pipe, NULL);
	}
	if (o.checks != NULL)
		cbor_decref(&o.checks);
	free(sum);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct globals g;
	const char *cmd;
	int ch;

	memset(&g, 0, sizeof(g));
	/* global options stop at the first command word */
	while ((ch = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			g.socket = optarg;
			break;
		case 'j':
			g.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[0];
	/* allow --json after the command too */
	for (ch = 1; ch < argc; ch++) {
		if (strcmp(argv[ch], "--json") == 0) {
			g.json = 1;
			memmove(&argv[ch], &argv[ch + 1], (size_t)(argc - ch) * sizeof(*argv));
			argc--;
			ch--;
		}
	}
	if (strcmp(cmd, "ca") == 0)
		return cmd_ca(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0)
		return cmd_simple(&g, TCA_OP_STATUS, argc - 1, argv + 1);
	if (strcmp(cmd, "reload") == 0)
		return cmd_simple(&g, TCA_OP_RELOAD, argc - 1, argv + 1);
	if (strcmp(cmd, "ops") == 0)
		return cmd_ops(argc - 1, argv + 1);
	if (strcmp(cmd, "cert") == 0)
		return cmd_cert(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "crl") == 0)
		return cmd_crl(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "device") == 0)
		return cmd_device(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "journal") == 0)
		return cmd_journal(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "store") == 0)
		return cmd_store(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "hsm-check") == 0)
		return cmd_hsm_check(&g, argc - 1, argv + 1);
	fprintf(stderr, "ca-admin: unknown command %s\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
