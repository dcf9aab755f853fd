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
 *   ca-admin journal verify (--db FILE | --config FILE)
 *   ca-admin journal export (--db FILE | --config FILE) [--out FILE]
 *   ca-admin token init --profile NAME [--profiles-dir DIR] --label L
 *                       --so-pin-file F --pin-file F
 *
 * Exit codes: 0 success; 1 the engine refused or the operation failed;
 * 2 usage error; 3 the engine could not be reached (transport error);
 * 4 journal verification found a broken record.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli-util.h"
#include "conf.h"
#include "secret.h"
#include "store.h"
#include "tca-client.h"
#include "tca-error.h"
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
	    "  ca reissue (TENANT | --all) [--dry-run]\n"
	    "                                   re-issue with the same key now (the yearly\n"
	    "                                   re-issuance's code path); --dry-run prints\n"
	    "                                   the field diff without signing\n"
	    "  status                           engine, token and store status\n"
	    "  reload                           re-read the engine configuration\n"
	    "\n"
	    "Audit journal (reads the state store file directly, read-only):\n"
	    "  journal verify --db FILE | --config FILE\n"
	    "  journal export --db FILE | --config FILE [--out FILE]\n"
	    "\n"
	    "Token provisioning for development (SoftHSMv2):\n"
	    "  token init --profile NAME [--profiles-dir DIR] --label LABEL\n"
	    "             --so-pin-file FILE --pin-file FILE\n"
	    "\n"
	    "Options:\n"
	    "  -s, --socket PATH   engine socket (default $TCA_SOCKET, else %s)\n"
	    "  -j, --json          machine-readable output\n"
	    "  -h, --help          this text (also after any command)\n"
	    "\n"
	    "Exit codes: 0 ok, 1 refused/failed, 2 usage, 3 engine unreachable,\n"
	    "4 journal verification failed.\n", TCA_CLIENT_DEFAULT_SOCKET);
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

static void
args_text(cbor_item_t *m, const char *k, const char *v)
{
	cbor_item_t *key = cbor_build_string(k), *val = cbor_build_string(v);

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
	r = call(g, "ca.reissue", args, &res);
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
		    "       ca-admin ca reissue (TENANT | --all) [--dry-run]\n");
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
			r = call(g, "ca.list", args, &res);
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
		r = call(g, "ca.create", args, &res);
	} else if (strcmp(sub, "show") == 0) {
		args = args_new(previous ? 2 : 1);
		args_text(args, "tenant", tenant);
		if (previous)
			args_other(args, "previous", cbor_build_bool(true));
		r = call(g, "ca.show", args, &res);
	} else if (strcmp(sub, "delete") == 0) {
		if (!confirm) {
			fprintf(stderr, "ca-admin: deleting tenant %s's CA destroys its private key "
			    "in the token and cannot be undone; add --confirm\n", tenant);
			return EXIT_USAGE;
		}
		args = args_new(2);
		args_text(args, "tenant", tenant);
		args_other(args, "confirm", cbor_build_bool(true));
		r = call(g, "ca.delete", args, &res);
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

/* ------------------------------------------------------------ local commands */

static int
take_store_path(void *ctx, const char *key, const char *value, char *why, size_t whylen)
{
	if (strcmp(key, "store.path") == 0)
		snprintf(ctx, PATH_MAX, "%s", value);
	return TCA_OK;
}

/* The store file: --db, or store.path of the engine configuration (only that
 * key is read, so the journal can be audited on a machine without the token). */
static int
store_path_from(const char *db, const char *config, char *out, size_t outsz)
{
	struct tca_config defaults;
	char err[1024];

	if ((db == NULL) == (config == NULL)) {
		fprintf(stderr, "ca-admin journal: give exactly one of --db FILE and --config FILE\n");
		return EXIT_USAGE;
	}
	if (db != NULL) {
		snprintf(out, outsz, "%s", db);
		return 0;
	}
	tca_config_defaults(&defaults);
	snprintf(out, outsz, "%s", defaults.store_path);
	if (tca_kv_parse_file(config, take_store_path, out, err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin: %s\n", err);
		return EXIT_REFUSED;
	}
	return 0;
}

static int
cmd_journal(const struct globals *g, int argc, char **argv)
{
	const char *db = NULL, *config = NULL, *outpath = NULL;
	char path[PATH_MAX], why[512] = "", headhex[65];
	unsigned char head[32];
	uint64_t count = 0;
	int64_t bad = 0;
	tca_store *st = NULL;
	FILE *out = stdout;
	int i, r;

	if (argc < 1 || wants_help(argc, argv)) {
		fprintf(argc < 1 ? stderr : stdout,
		    "usage: ca-admin journal verify (--db FILE | --config FILE)\n"
		    "       ca-admin journal export (--db FILE | --config FILE) [--out FILE]\n");
		return argc < 1 ? EXIT_USAGE : 0;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			outpath = argv[++i];
		else {
			fprintf(stderr, "ca-admin journal: unexpected argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (strcmp(argv[0], "verify") != 0 && strcmp(argv[0], "export") != 0) {
		fprintf(stderr, "ca-admin: unknown command journal %s\n", argv[0]);
		return EXIT_USAGE;
	}
	if ((r = store_path_from(db, config, path, sizeof(path))) != 0)
		return r;
	if (tca_store_open_sqlite(path, TCA_STORE_READONLY, &st, why, sizeof(why)) != TCA_OK) {
		fprintf(stderr, "ca-admin: cannot open store %s: %s\n", path, why);
		return EXIT_REFUSED;
	}
	if (strcmp(argv[0], "verify") == 0) {
		r = tca_journal_verify(st, &count, &bad, head, why, sizeof(why));
		tca_hex(head, sizeof(head), headhex);
		if (r == TCA_OK || r == TCA_ERR_POLICY_VIOLATION) {
			cbor_item_t *m = cbor_new_definite_map(r == TCA_OK ? 3 : 5);

			if (m == NULL || tca_map_add_bool(m, "ok", r == TCA_OK) != TCA_OK ||
			    tca_map_add_uint(m, "records", count) != TCA_OK ||
			    tca_map_add_text(m, "head", r == TCA_OK && count > 0 ? headhex : "") != TCA_OK ||
			    (r != TCA_OK && (tca_map_add_int(m, "first_bad_seq", bad) != TCA_OK ||
			    tca_map_add_text(m, "reason", why) != TCA_OK))) {
				fprintf(stderr, "ca-admin: out of memory\n");
				r = EXIT_REFUSED;
			} else if (g->json) {
				cli_print_json(stdout, m);
				putchar('\n');
			} else if (r == TCA_OK) {
				printf("journal OK: %" PRIu64 " records, head hash %s\n", count,
				    count > 0 ? headhex : "(empty)");
			} else {
				printf("journal BROKEN at record %" PRId64 ": %s\n", bad, why);
			}
			if (m != NULL)
				cbor_decref(&m);
			if (r == TCA_OK)
				r = 0;
			else if (r == TCA_ERR_POLICY_VIOLATION)
				r = EXIT_JOURNAL_BROKEN;
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

static int
cmd_token(const struct globals *g, int argc, char **argv)
{
	const char *profile = NULL, *dir = NULL, *label = NULL, *so_file = NULL, *pin_file = NULL;
	struct tca_config *cfg = NULL;
	char err[1024] = "", ppath[2 * PATH_MAX + 16];
	char *so = NULL, *pin = NULL;
	size_t so_len = 0, pin_len = 0;
	unsigned long slot = 0;
	int i, r = EXIT_REFUSED;

	if (argc < 1 || strcmp(argv[0], "init") != 0 || wants_help(argc, argv)) {
		fprintf(argc < 1 || wants_help(argc, argv) ? stdout : stderr,
		    "usage: ca-admin token init --profile NAME [--profiles-dir DIR] --label LABEL\n"
		    "                           --so-pin-file FILE --pin-file FILE\n"
		    "Initializes a free slot of a development token (SoftHSMv2).  PIN files\n"
		    "must be mode 0600.  Real HSMs: see docs/hsm-provisioning.md.\n");
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
	    tca_secret_read_file(pin_file, &pin, &pin_len, err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin token init: %s\n", err);
		goto out;
	}
	if (tca_token_init(cfg->module, label, so, so_len, pin, pin_len, &slot,
	    err, sizeof(err)) != TCA_OK) {
		fprintf(stderr, "ca-admin token init: %s\n", err);
		goto out;
	}
	if (g->json)
		printf("{\"label\":\"%s\",\"slot\":%lu,\"uri\":\"pkcs11:token=%s\"}\n", label, slot, label);
	else
		printf("token \"%s\" initialized in slot %lu; token.uri = pkcs11:token=%s\n",
		    label, slot, label);
	r = 0;
 out:
	tca_secret_free(so, so_len);
	tca_secret_free(pin, pin_len);
	free(cfg);
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
		return cmd_simple(&g, "status", argc - 1, argv + 1);
	if (strcmp(cmd, "reload") == 0)
		return cmd_simple(&g, "reload", argc - 1, argv + 1);
	if (strcmp(cmd, "journal") == 0)
		return cmd_journal(&g, argc - 1, argv + 1);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(&g, argc - 1, argv + 1);
	fprintf(stderr, "ca-admin: unknown command %s\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
