/*
 * token.h - the PKCS#11 token layer.
 *
 * Talks to one token of one PKCS#11 module through the PKCS#11 API directly
 * (module loading and RFC 7512 URI parsing from p11-kit; no libp11, no ENGINE).
 *
 * - tca_token_open() loads the module, selects the one token matching the URI,
 *   opens a fixed pool of sessions, logs in once (login state is per
 *   application, so there is exactly one C_Login and one C_Logout), and builds
 *   the key index with a single enumeration of the token's private keys
 *   (CKA_ID, CKA_LABEL, CKA_KEY_TYPE, and for EC keys CKA_EC_PARAMS).
 *   Requests never search the token: tca_token_sign() finds the key handle in
 *   the in-memory index (SoftHSMv2's C_FindObjects is linear in the object
 *   count, ~32 ms at 2,000 objects).
 * - All functions are thread-safe.  Signing borrows a session from the pool and
 *   blocks while all sessions are busy.
 * - The PIN is never logged; one copy is kept (mlock()ed, wiped at close) so
 *   the supervisor can log in again.  The caller's buffer stays the caller's.
 *
 * Return values are TCA_OK or a negative TCA_ERR_* (tca-error.h).  Token
 * failures (CK_RV) are reported as TCA_ERR_TOKEN_UNAVAILABLE with the CK_RV
 * name written to the log.
 */
#ifndef TCA_TOKEN_H
#define TCA_TOKEN_H

#include <stddef.h>

#include <openssl/evp.h>

#include "keytype.h"

typedef struct tca_token tca_token;

/* Token quirks, read from the hsm-profile (hsm-profiles/NAME.conf).  What the
 * token can do (key types, mechanisms) is discovered from the token itself;
 * these say what it cannot be asked to do. */
struct tca_token_quirks {
	int no_ed25519;		/* never make Ed25519 keys, even if the token offers it */
	unsigned long max_sessions;	/* 0 = no limit known; pool_size is capped to it */
	/* template attributes this token refuses (tpm2-pkcs11 refuses public
	 * CKA_VERIFY=TRUE with private CKA_DECRYPT=FALSE); only attributes that
	 * do not protect the key can be omitted */
	int omit_verify, omit_decrypt, omit_unwrap, omit_derive;
	/* CKM_ names (comma-separated) to sign with in preference to the raw
	 * mechanisms, e.g. "CKM_ECDSA_SHA256, CKM_SHA256_RSA_PKCS" */
	char prefer_mechanisms[256];
	/* sessions unused this long (ms) are replaced before use; 0 = never */
	unsigned long idle_timeout_ms;
	/* a dead session means the module must be re-initialised (YubiHSM 2
	 * connector, pkcs11-proxy): escalate at once instead of replacing it */
	int reinit_on_session_loss;
};

struct tca_token_params {
	const char *module_path;	/* absolute path of the PKCS#11 module */
	const char *init_args;	/* C_Initialize pReserved string (NSS softokn), or NULL */
	const char *token_uri;	/* RFC 7512 URI; must match exactly one present token */
	unsigned int pool_size;	/* sessions opened at start, >= 1 */
	unsigned int wait_ms;	/* a request waits this long for a recovering token;
				 * 0 = TCA_TOKEN_DEFAULT_WAIT_MS */
	unsigned int call_timeout_ms;	/* a signature call that has not returned by
				 * then fails the request and retires its session;
				 * 0 = unbounded (calls run on the caller's thread) */
	struct tca_token_quirks quirks;
};
#define TCA_TOKEN_DEFAULT_WAIT_MS 5000
/* The engine configuration's default: unbounded.  Bounding hands every
 * signature to an executor thread, which costs about 18 % more engine CPU
 * per certificate on SoftHSMv2 (docs/performance.md); set
 * token.call_timeout_ms for network HSMs, where a hung call is the risk. */
#define TCA_TOKEN_DEFAULT_CALL_TIMEOUT_MS 0

/*
 * Loads and initializes the module, finds the token, opens the session pool,
 * logs in with pin/pin_len (CKU_USER), and builds the key index.
 * On failure, writes a one-line reason (never containing the PIN) into
 * err/errlen and returns TCA_ERR_TOKEN_UNAVAILABLE (module/token problems),
 * TCA_ERR_CONFIG (bad URI, no or several matching tokens) or TCA_ERR_UNAUTHORIZED
 * (CKR_PIN_INCORRECT / CKR_PIN_LOCKED etc.).
 * An empty PIN is refused (TCA_ERR_CONFIG) before the token is asked.
 * On success *tok_ptr is set; the caller frees it with tca_token_close().
 * A copy of the PIN is kept in mlock()ed memory, for logging in again after
 * the token forgot the login (docs/security.md), and wiped at close.
 */
int tca_token_open(const struct tca_token_params *params,
    const char *pin, size_t pin_len, tca_token **tok_ptr,
    char *err, size_t errlen);

/*
 * Logs out, closes every session, finalizes the module, frees tok.  NULL ok.
 * Returns the number of PKCS#11 calls still inside the module (calls that
 * hung past token.call_timeout_ms and never returned): when it is not 0 the
 * module was left loaded and initialised, and tok is not freed, because those
 * threads will touch both when they return.  A process that got a non-zero
 * answer must leave with _exit(): exit() would run the module's own exit
 * handlers (SoftHSMv2's C++ destructors) under the still-running call, which
 * then crashes inside the module.
 */
int tca_token_close(tca_token *tok);

/*
 * Session supervisor (token-supervisor.c): a failed call is classified
 * (tca_p11_classify) and recovered from - session replaced, login repeated
 * with the kept PIN, key handle looked up again, module re-initialised with
 * backoff - while requests wait up to params.wait_ms and then fail with
 * TCA_ERR_TOKEN_UNAVAILABLE.  A refused PIN is never retried automatically;
 * tca_token_retry() (ca-admin reload) tries again, with pin if not NULL
 * (copied).  TCA_OK, or TCA_ERR_ALREADY_EXISTS if the PIN was not refused.
 */
int tca_token_retry(tca_token *tok, const char *pin, size_t pin_len);

/* Number of private keys in the index. */
size_t tca_token_key_count(tca_token *tok);

/* Index lookup (no token access).  TCA_OK and *type_ptr set (type_ptr may be
 * NULL), or TCA_ERR_NOT_FOUND. */
int tca_token_find_key(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr);

/*
 * The key types the token can generate and sign with, discovered at open
 * (C_GetMechanismList / C_GetMechanismInfo) and after each re-initialisation:
 * bit (1 << type) set in the mask.  sign_mech_ptr (may be NULL) receives, per
 * type, the mechanism signatures use ("CKM_ECDSA", "CKM_ECDSA_SHA256", ...;
 * NULL where unsupported), indexed by type.
 */
unsigned int tca_token_key_types(tca_token *tok,
    const char *sign_mech_ptr[TCA_KEY_TYPE_COUNT + 1]);

/* Like tca_token_find_key, but an index miss looks on the token once (a key
 * another engine sharing the token made, or one that came back); a key not
 * found is not searched for again for a second.  TCA_OK, TCA_ERR_NOT_FOUND,
 * or TCA_ERR_TOKEN_UNAVAILABLE. */
int tca_token_check_key(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_key_type *type_ptr);

/*
 * Generates a key pair inside the token with C_GenerateKeyPair:
 * private: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE = TRUE, CKA_EXTRACTABLE = FALSE,
 *          CKA_SIGN = TRUE, CKA_DECRYPT/UNWRAP/DERIVE = FALSE, CKA_ID, CKA_LABEL;
 * public:  CKA_TOKEN, CKA_VERIFY = TRUE, same CKA_ID and CKA_LABEL.
 * The profile may omit public CKA_VERIFY and private CKA_DECRYPT/UNWRAP/DERIVE
 * (quirks); the security attributes are always set, and read back after
 * generation: a key that is not sensitive, private, never extractable and
 * always sensitive is destroyed and TCA_ERR_TOKEN_REFUSED returned.
 * Adds the private key to the index.  Returns TCA_ERR_ALREADY_EXISTS if the
 * index already holds a key with this id, TCA_ERR_POLICY_VIOLATION if the token
 * cannot make or sign with this type (tca_token_key_types), TOKEN_REFUSED if it
 * refuses the template, TOKEN_FULL if it has no room.  On success *pub_ptr is
 * the public key (read back from the token's public key object, CKA_EC_POINT
 * in DER or raw form); caller frees with EVP_PKEY_free().
 */
int tca_token_generate_key(tca_token *tok, enum tca_key_type type,
    const unsigned char *id, size_t id_len, const char *label,
    EVP_PKEY **pub_ptr);

/*
 * Signs msg/msg_len with the private key whose CKA_ID is id, as algorithm alg
 * (the key-type table says how: a digest, a DigestInfo or the message itself,
 * and the raw mechanism); an ECDSA r||s is converted into a DER
 * ECDSA-Sig-Value.  sig/ *sig_len: buffer and its capacity in; signature length
 * out (the result is exactly what goes into the certificate's signatureValue).
 * Runs under the session supervisor (see tca_token_retry): a stale key handle
 * is looked up again, an index miss searches the token once.
 * TCA_ERR_INVALID_ARG if the buffer is too small, alg does not fit the key
 * type or msg_len exceeds TCA_TOKEN_MAX_MSG (64 MiB: a CRL of a million
 * entries; certificates and OCSP responses are a few hundred bytes.  With
 * the raw mechanisms the token only ever sees the digest; EdDSA and
 * hash-on-token mechanisms get the whole message in one C_Sign, which a
 * token may refuse as too long); TCA_ERR_TOKEN_UNAVAILABLE on a
 * token failure that recovery could not mend within the wait, and when no key
 * with this id is on the token; TCA_ERR_TOKEN_REFUSED if the token refuses the
 * mechanism.
 */
#define TCA_TOKEN_MAX_MSG (64u * 1024 * 1024)
int tca_token_sign(tca_token *tok, const unsigned char *id, size_t id_len,
    enum tca_sig_alg alg, const unsigned char *msg, size_t msg_len,
    unsigned char *sig, size_t *sig_len);

/*
 * Destroys every object on the token whose CKA_ID is id (private key, public
 * key, anything else) - this searches the token, it is an admin operation -
 * and removes the key from the index.  *destroyed_ptr (may be NULL) is the
 * number of objects destroyed.  TCA_ERR_NOT_FOUND if there were none.
 */
int tca_token_destroy_key(tca_token *tok, const unsigned char *id, size_t id_len,
    unsigned long *destroyed_ptr);

/* Number of token objects (any class) with this CKA_ID.  Searches the token:
 * for admin operations and tests, never on the request path. */
int tca_token_count_objects(tca_token *tok, const unsigned char *id,
    size_t id_len, unsigned long *count_ptr);

/* Security attributes of the private key with this id, read back from the token. */
struct tca_key_attrs {
	int token, private_, sensitive, extractable, sign;
	int always_sensitive, never_extractable;
	int value_readable;	/* 1 if C_GetAttributeValue(CKA_VALUE) returned data */
};
int tca_token_key_attrs(tca_token *tok, const unsigned char *id, size_t id_len,
    struct tca_key_attrs *attrs);

/* Calls cb for every key in the index (under a read lock: cb must not call back
 * into tok).  Stops and returns cb's value if it is non-zero. */
typedef int (*tca_token_key_cb)(void *ctx, const unsigned char *id, size_t id_len,
    const char *label, enum tca_key_type type);
int tca_token_foreach_key(tca_token *tok, tca_token_key_cb cb, void *ctx);

/* Snapshot for the status operation.  Strings are NUL-terminated, trimmed. */
struct tca_token_status {
	char label[33], manufacturer[33], model[17], serial[17];
	unsigned long slot_id;
	unsigned int pool_size, sessions_busy;
	size_t keys;
	unsigned long long signatures, sign_errors;
	char health[16];	/* "ok", "recovering", "pin-refused" */
	unsigned long long recoveries;	/* module re-initialisations that succeeded */
	unsigned long long relogins;	/* logins after the token forgot ours */
	unsigned long long refreshes;	/* token searches for stale or missing keys */
	unsigned long long sessions_replaced;
	char problem[200];	/* what the supervisor last saw go wrong ("" = nothing) */
	int64_t problem_time;	/* Unix time */
	char last_error[96];	/* last failed C_* call: "C_Sign: CKR_DEVICE_ERROR" */
	int64_t last_error_time;
	unsigned long long call_failures;
	/* privilege separation: "none" (the module in this process) or
	 * "process" (in tca-tokend); how often the helper was replaced and its
	 * pid (0 while it is away, and without a helper) */
	char isolation[8];
	unsigned long long helper_restarts;
	long helper_pid;
};
int tca_token_get_status(tca_token *tok, struct tca_token_status *st);

/*
 * Privilege separation (docs/architecture.md): the module and the PIN in a
 * separate process, tca-tokend, started here with fork + exec.  The helper
 * reads the token.* keys, the profile and the PIN from config_path itself;
 * this process never maps the module and never reads the PIN.  params gives
 * pool_size (the helper's sessions; one connection each, plus one for
 * status), wait_ms and call_timeout_ms (a call the helper has not answered
 * within wait_ms + call_timeout_ms - 30 s if 0 - is taken for a hung module:
 * the helper is killed and started again); module, URI and PIN fields are
 * not used.  Returns what tca_token_open would, with the helper's reason in
 * err.  Everything else - every function of this header - works on the
 * result as on an in-process token; tca_token_retry ignores its PIN (the
 * helper re-reads token.pin_file).
 */
struct tca_token_helper_params {
	const char *helper_path;	/* absolute path of tca-tokend */
	const char *config_path;	/* the engine's configuration file */
	int syslog;			/* --syslog: the helper logs to syslog */
};
int tca_token_open_helper(const struct tca_token_params *params,
    const struct tca_token_helper_params *hp, tca_token **tok_ptr, char *err, size_t errlen);

/* Where the module runs: "none" (in this process) or "process" (in the
 * tca-tokend helper, docs/architecture.md "Privilege separation"). */
const char *tca_token_isolation(tca_token *tok);

/*
 * Development provisioning (ca-admin token init): loads the module (with
 * init_args, may be NULL), picks the first slot whose token is present but not
 * initialized (SoftHSMv2 always offers one), C_InitToken with label, logs in
 * as SO, C_InitPIN with user_pin, logs out.  Modules whose C_InitToken wants
 * their current SO PIN (openCryptoki: the shipped 87654321) get it in
 * current_so_pin; the SO PIN is then changed to so_pin with C_SetPIN.  With
 * current_so_pin NULL, C_InitToken takes so_pin itself (SoftHSMv2).
 * *slot_ptr (may be NULL) receives the slot id.  Refuses
 * (TCA_ERR_ALREADY_EXISTS) if an initialized token with this label already
 * exists.  PINs are not retained.  Production slots are provisioned with the
 * vendor's tools (docs/hsm-provisioning.md).
 */
struct tca_token_init_params {
	const char *module_path;
	const char *init_args;
	const char *label;
	const char *so_pin;
	size_t so_pin_len;
	const char *current_so_pin;	/* NULL: C_InitToken takes so_pin */
	size_t current_so_pin_len;
	const char *user_pin;
	size_t user_pin_len;
};
int tca_token_init(const struct tca_token_init_params *p, unsigned long *slot_ptr,
    char *err, size_t errlen);

#endif
