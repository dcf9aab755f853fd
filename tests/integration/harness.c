/* harness.c - the real daemon under test (see harness.h). */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "store.h"
#include "tca-error.h"
#include "wire.h"

/* ------------------------------------------------------------ daemon control */

int
sock_connectable(const char *path)
{
	struct sockaddr_un sun;
	int fd, ok;

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

/* Starts (or restarts) tca-engined with d's configuration and waits for its
 * socket.  preload: LD_PRELOAD value or NULL. */
void
daemon_exec(struct daemon *d, const char *preload)
{
	char engined[PATH_MAX];
	int i;

	test_build_path("tca-engined", engined, sizeof(engined));
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		if (preload != NULL)
			setenv("LD_PRELOAD", preload, 1);
		execl(engined, "tca-engined", "--config", d->config, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 400; i++) {
		int st;

		if (sock_connectable(d->socket))
			return;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			test_sh("cat '%s' >&2", d->log);
			ck_abort_msg("tca-engined exited during start-up (status %d)", st);
		}
		usleep(50000);
	}
	test_sh("cat '%s' >&2", d->log);
	ck_abort_msg("tca-engined did not open its socket");
}

/* Configures tca-engined on token t with its own store and socket under a
 * fresh directory and starts it.  extra: more config lines. */
void
daemon_start(struct daemon *d, const struct test_token *t, const char *extra,
    const char *preload)
{
	daemon_start_module(d, t, test_softhsm_module(), "softhsm2", extra, preload);
}

void
daemon_start_module(struct daemon *d, const struct test_token *t, const char *module,
    const char *profile, const char *extra, const char *preload)
{
	char cfg[16384], *srcdir = getenv("TCA_SRCDIR");

	memset(d, 0, sizeof(*d));
	test_mkdtemp(d->dir, sizeof(d->dir));
	chmod(d->dir, 0755);	/* other-uid clients must reach the socket */
	snprintf(d->socket, sizeof(d->socket), "%s/engine.sock", d->dir);
	snprintf(d->db, sizeof(d->db), "%s/state.db", d->dir);
	snprintf(d->config, sizeof(d->config), "%s/engine.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/engine.log", d->dir);
	/* the engine refuses profiles others can write (engine/fileperm.c):
	 * use a copy, whatever the checkout's owner and umask */
	ck_assert_msg(test_sh("cp -R '%s/hsm-profiles' '%s/hsm-profiles' && chmod -R go-w '%s/hsm-profiles'",
	    srcdir != NULL ? srcdir : ".", d->dir, d->dir) == 0, "copying hsm-profiles");
	snprintf(cfg, sizeof(cfg),
	    "socket.path = %s\n"
	    "socket.mode = 0660\n"
	    "socket.group = %d\n"
	    "token.profiles_dir = %s/hsm-profiles\n"
	    "token.profile = %s\n"
	    "token.module = %s\n"
	    "token.uri = %s\n"
	    "token.pin_file = %s\n"
	    "token.pool_size = 4\n"
	    "store.path = %s\n"
	    "roles.admin_uids = 0\n"
	    "roles.frontend_uids = %d\n"
	    "rpc.frame_timeout_ms = 2000\n"
	    "log.level = debug\n"
	    "%s%s",
	    d->socket, NOBODY, d->dir, profile, module,
	    t->uri, t->pin_file, d->db, NOBODY,
	    /* these suites predate registration; a test that wants it says so */
	    extra != NULL && strstr(extra, "device.registration") != NULL ? "" :
	    "device.registration = none\n", extra != NULL ? extra : "");
	ck_assert_int_eq(test_write_file(d->config, cfg, strlen(cfg), 0600), 0);
	daemon_exec(d, preload);
}

/* SIGTERM and wait; returns the exit status (or -1 if killed by a signal). */
int
daemon_stop(struct daemon *d)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	if (waitpid(d->pid, &st, 0) != d->pid)
		return -1;
	d->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
daemon_cleanup(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	if (d->dir[0] != '\0')
		test_sh("rm -rf '%s'", d->dir);
}

/* ------------------------------------------------------------ client helpers */

tca_client *
connect_or_die(const char *socket_path)
{
	struct tca_client_error err;
	tca_client *c = NULL;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(tca_client_connect(socket_path, 60000, &c, &err) == TCA_CLIENT_OK,
	    "connect %s: %s", socket_path, err.message);
	return c;
}

/* ca.create with key_type; returns the engine's error (TCA_OK on success). */
int
ca_create(const char *socket_path, const char *tenant, const char *key_type,
    struct tca_client_error *err)
{
	tca_client *c = connect_or_die(socket_path);
	cbor_item_t *args = cbor_new_definite_map(2), *res = NULL;
	int r;

	ck_assert_int_eq(tca_map_add_text(args, "tenant", tenant), TCA_OK);
	if (key_type != NULL)
		ck_assert_int_eq(tca_map_add_text(args, "key_type", key_type), TCA_OK);
	memset(err, 0, sizeof(*err));
	r = tca_client_call(c, "ca.create", args, &res, err);
	cbor_decref(&args);
	if (res != NULL)
		cbor_decref(&res);
	tca_client_close(c);
	return r;
}

/* ca.show result (caller decrefs) or NULL with err */
cbor_item_t *
ca_show(const char *socket_path, const char *tenant, struct tca_client_error *err)
{
	tca_client *c = connect_or_die(socket_path);
	cbor_item_t *args = cbor_new_definite_map(1), *res = NULL;

	ck_assert_int_eq(tca_map_add_text(args, "tenant", tenant), TCA_OK);
	memset(err, 0, sizeof(*err));
	(void)tca_client_call(c, "ca.show", args, &res, err);
	cbor_decref(&args);
	tca_client_close(c);
	return res;
}

X509 *
ca_cert(const char *socket_path, const char *tenant)
{
	struct tca_client_error err;
	cbor_item_t *res = ca_show(socket_path, tenant, &err), *der;
	const unsigned char *p;
	X509 *x;

	ck_assert_msg(res != NULL, "ca.show %s: %s", tenant, err.message);
	der = tca_map_get(res, "certificate");
	ck_assert_ptr_nonnull(der);
	p = cbor_bytestring_handle(der);
	x = d2i_X509(NULL, &p, (long)cbor_bytestring_length(der));
	ck_assert_ptr_nonnull(x);
	cbor_decref(&res);
	return x;
}

EVP_PKEY *
gen_key(const char *type)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "ec-p256") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(type, "ec-p384") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (strcmp(type, "secp256k1") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	else if (strcmp(type, "rsa-2048") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(type, "rsa-1024") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else if (strcmp(type, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ck_assert_msg(k != NULL, "keygen %s", type);
	return k;
}

/* DER CSR for key with subject CN=cn, O=Thin Edge, OU=Device; optionally
 * requesting CA:TRUE, optionally with a corrupted signature.  Caller frees. */
unsigned char *
make_csr(EVP_PKEY *key, const char *cn, int want_ca, int corrupt, size_t *len_ptr)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int len, is_ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;

	ck_assert_ptr_nonnull(req);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Thin Edge", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)"Device", -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_NAME_free(name);
	X509_REQ_set_pubkey(req, key);
	if (want_ca) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
		    "critical,CA:TRUE");

		sk_X509_EXTENSION_push(exts, ext);
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	ck_assert_int_gt(X509_REQ_sign(req, key, is_ed ? NULL : EVP_sha256()), 0);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	if (corrupt)
		der[len - 5] ^= 0x01;	/* inside the signature BIT STRING */
	X509_REQ_free(req);
	*len_ptr = (size_t)len;
	return der;
}

/* issue; returns engine error, *cert_ptr DER on success (caller free()s) */
int
issue(const char *socket_path, const char *tenant, const char *device, const char *keytype,
    unsigned char **cert_ptr, size_t *cert_len, struct tca_client_error *err)
{
	EVP_PKEY *k = gen_key(keytype);
	size_t csr_len;
	unsigned char *csr = make_csr(k, device, 0, 0, &csr_len);
	tca_client *c = connect_or_die(socket_path);
	int r;

	memset(err, 0, sizeof(*err));
	r = tca_client_issue(c, tenant, device, csr, csr_len, 0, cert_ptr, cert_len, err);
	tca_client_close(c);
	OPENSSL_free(csr);
	EVP_PKEY_free(k);
	return r;
}

void
write_pem_der(const char *path, const unsigned char *der, size_t len, int append)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	FILE *f = fopen(path, append ? "a" : "w");

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
}

void
write_pem(const char *path, X509 *x, int append)
{
	FILE *f = fopen(path, append ? "a" : "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
}

/* openssl verify -x509_strict and certtool --verify-chain, both must pass */
void
verify_with_openssl_and_gnutls(const char *dir, X509 *ca, const unsigned char *der, size_t len)
{
	char ca_pem[PATH_MAX + 16], dev_pem[PATH_MAX + 16], chain[PATH_MAX + 16];

	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(dev_pem, sizeof(dev_pem), "%s/dev.pem", dir);
	snprintf(chain, sizeof(chain), "%s/chain.pem", dir);
	write_pem(ca_pem, ca, 0);
	write_pem_der(dev_pem, der, len, 0);
	write_pem_der(chain, der, len, 0);
	write_pem(chain, ca, 1);
	ck_assert_msg(test_sh("openssl verify -x509_strict -purpose sslclient -CAfile '%s' '%s' >/dev/null",
	    ca_pem, dev_pem) == 0, "openssl verify failed");
	ck_assert_msg(test_sh("certtool --verify-chain --infile '%s' >'%s/certtool.out' 2>&1",
	    chain, dir) == 0, "certtool --verify-chain failed");
	ck_assert_msg(test_sh("grep -q 'Chain verification output: Verified' '%s/certtool.out'", dir) == 0,
	    "certtool did not report a verified chain");
}


static int
collect_issue_serial(void *ctx, const struct tca_journal_record *rec)
{
	struct serial_set *set = ctx;

	if (strcmp(rec->op, "issue") == 0 && set->n < 200000)
		snprintf(set->s[set->n++], 33, "%s", rec->serial_hex);
	return 0;
}

void
journal_issue_serials(const char *db, struct serial_set *set)
{
	tca_store *st = NULL;
	char why[256];
	uint64_t count = 0;
	int64_t bad = 0;

	ck_assert_msg(tca_store_open(db, TCA_STORE_READONLY, &st, why, sizeof(why)) ==
	    TCA_OK, "%s", why);
	ck_assert_msg(tca_journal_verify(st, &count, &bad, NULL, why, sizeof(why)) == TCA_OK,
	    "journal: %s", why);
	set->s = calloc(200000, sizeof(*set->s));
	ck_assert_ptr_nonnull(set->s);
	set->n = 0;
	ck_assert_int_eq(st->ops->journal_foreach(st, 1, collect_issue_serial, set), TCA_OK);
	st->ops->close(st);
}

void
cert_serial_hex(const unsigned char *der, size_t len, char out[33])
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	const ASN1_INTEGER *sn = x != NULL ? X509_get0_serialNumber(x) : NULL;
	int j;

	out[0] = '\0';
	for (j = 0; sn != NULL && j < ASN1_STRING_length(sn) && j < 16; j++)
		snprintf(out + 2 * j, 3, "%02x", ASN1_STRING_get0_data(sn)[j]);
	X509_free(x);
}
