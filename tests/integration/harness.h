/*
 * harness.h - driving the real tca-engined from Check suites: start/stop a
 * daemon on a throwaway token, client helpers, CSRs, verification with
 * OpenSSL and GnuTLS.  Every helper aborts the current test on failure.
 */
#ifndef TCA_TEST_HARNESS_H
#define TCA_TEST_HARNESS_H

#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tca-client.h"
#include "testutil.h"

#define NOBODY 65534
#define NO_ROLE_UID 65533

struct daemon {
	pid_t pid;
	char dir[80];		/* socket paths must fit sun_path (108) */
	char socket[108];
	char db[128];
	char config[128];
	char log[128];
};

int sock_connectable(const char *path);
/* (Re)starts tca-engined with d's configuration; waits for its socket. */
void daemon_exec(struct daemon *d, const char *preload);
/* Configures a daemon on token t under a fresh directory and starts it;
 * extra: more configuration lines; preload: LD_PRELOAD or NULL. */
void daemon_start(struct daemon *d, const struct test_token *t, const char *extra,
    const char *preload);
/* Like daemon_start, with another PKCS#11 module (tests/p11-faulty.c) and
 * hsm-profile (a name in hsm-profiles/ or a path). */
void daemon_start_module(struct daemon *d, const struct test_token *t, const char *module,
    const char *profile, const char *extra, const char *preload);
/* SIGTERM and wait: the exit status, -1 if killed by a signal. */
int daemon_stop(struct daemon *d);
/* SIGKILL if running; removes the directory. */
void daemon_cleanup(struct daemon *d);

tca_client *connect_or_die(const char *socket_path);
int ca_create(const char *socket_path, const char *tenant, const char *key_type,
    struct tca_client_error *err);
/* ca.show result (caller cbor_decref()s) or NULL with err */
cbor_item_t *ca_show(const char *socket_path, const char *tenant, struct tca_client_error *err);
X509 *ca_cert(const char *socket_path, const char *tenant);
EVP_PKEY *gen_key(const char *type);
unsigned char *make_csr(EVP_PKEY *key, const char *cn, int want_ca, int corrupt, size_t *len_ptr);
int issue(const char *socket_path, const char *tenant, const char *device, const char *keytype,
    unsigned char **cert_ptr, size_t *cert_len, struct tca_client_error *err);
void write_pem_der(const char *path, const unsigned char *der, size_t len, int append);
void write_pem(const char *path, X509 *x, int append);
/* openssl verify -x509_strict and certtool --verify-chain; both must pass */
void verify_with_openssl_and_gnutls(const char *dir, X509 *ca, const unsigned char *der, size_t len);

/* The serial of a DER certificate as the journal writes it (lower-case hex,
 * at most 16 bytes) into out[33]; "" if it does not parse. */
void cert_serial_hex(const unsigned char *der, size_t len, char out[33]);

/* The serials (lower-case hex) of every "issue" record in the store db's
 * journal, which must verify; caller frees set->s. */
struct serial_set {
	char (*s)[33];
	size_t n;
};
void journal_issue_serials(const char *db, struct serial_set *set);

#endif
