/*
 * checkpoint.h - signed journal checkpoints (issue 11): every
 * journal.checkpoint_interval_s seconds the engine signs the journal head
 * (sequence number, hash, time) with an audit key kept in the token, logs the
 * signed line and hands it to journal.checkpoint_command.  Kept somewhere the
 * engine host cannot write, such lines let `ca-admin journal verify
 * --checkpoint FILE` prove later that the journal still holds that head - the
 * one thing a hash chain cannot show by itself is its newest records cut off
 * (Certificate Transparency's signed tree heads, RFC 6962 section 3.5).
 *
 * The audit key: EC P-256, generated in the token on first use with CKA_ID
 * TCA_AUDIT_KEY_ID (the 20 ASCII bytes, no terminator) and CKA_LABEL
 * TCA_AUDIT_KEY_LABEL - never a tenant CA key (those are "tca-ca:<tenant>"
 * with 16-byte random ids).  Its public key is written at generation to
 * <store.path>.audit-key.pem and read from there at later starts (the token
 * API hands a public key out only at generation).
 *
 * One checkpoint is one line of printable ASCII:
 *
 *   tca-checkpoint-v1 seq=N hash=H time=T key=K spki=P sig=S
 *
 * N: the journal's last sequence number (decimal, 0 for an empty journal);
 * H: its hash, 64 lower-case hex digits (64 zeros when empty); T: unix
 * seconds when signed; K: SHA-256 of the audit key's SubjectPublicKeyInfo
 * DER, 64 hex digits; P: that SubjectPublicKeyInfo, base64; S: base64 of the
 * DER ECDSA-Sig-Value, ECDSA P-256 with SHA-256 over the line's bytes from
 * "tca-checkpoint-v1" up to and including K (nothing after it).
 */
#ifndef TCA_CHECKPOINT_H
#define TCA_CHECKPOINT_H

#include <limits.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "store.h"
#include "token.h"

#define TCA_AUDIT_KEY_ID "tca-journal-audit-v1"
#define TCA_AUDIT_KEY_LABEL "tca-journal-audit"
#define TCA_CHECKPOINT_TAG "tca-checkpoint-v1"
#define TCA_CHECKPOINT_LINE_MAX 1024

struct tca_checkpoint_params {
	unsigned int interval_s;	/* > 0 */
	char command[PATH_MAX];		/* "" = log only */
	unsigned int timeout_s;		/* the command's (alert.timeout_s) */
	char key_file[PATH_MAX];	/* the public key file (conf.h
					 * tca_config_checkpoint_key_file) */
};

typedef struct tca_checkpointer tca_checkpointer;

/*
 * Finds or generates the audit key, signs a first checkpoint at once
 * (checking it against the public key file), then signs one every
 * interval_s on a thread of its own.  TCA_OK and *cp_ptr, or an error with a
 * reason in err (the engine refuses to start: the operator asked for
 * checkpoints).
 */
int tca_checkpoint_start(tca_token *tok, tca_store *st,
    const struct tca_checkpoint_params *p, tca_checkpointer **cp_ptr,
    char *err, size_t errlen);

/* Stops the thread, waits for running commands (NULL: nothing). */
void tca_checkpoint_stop(tca_checkpointer *cp);

/*
 * Parses and checks one checkpoint line (no token needed): format, key
 * fingerprint against the embedded key, signature; with pin (may be NULL)
 * the embedded key must be pin.  TCA_OK with *seq_ptr, hash, *time_ptr and
 * keyfp_hex (65 bytes) set, or TCA_ERR_POLICY_VIOLATION / INVALID_ARG with
 * why.
 */
int tca_checkpoint_verify_line(const char *line, EVP_PKEY *pin, int64_t *seq_ptr,
    unsigned char hash[32], int64_t *time_ptr, char keyfp_hex[65],
    char *why, size_t whylen);

#endif
