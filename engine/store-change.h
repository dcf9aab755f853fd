/*
 * store-change.h - what every store backend does the same way with a
 * struct tca_change (store.h): validate it before touching the database, and
 * build its journal record (chaining and hashing) from the change, the
 * subject the backend looked up and the previous record's seq and hash.
 *
 * Keeping this in one file is what keeps backends byte-identical in what they
 * journal: a record built by the SQLite backend and one built by the
 * PostgreSQL backend for the same change and the same predecessor hash to the
 * same value, so one `journal verify` and one `store migrate` serve both.
 *
 * Pure functions: no I/O, no locks, no allocation; thread-safe.
 */
#ifndef TCA_STORE_CHANGE_H
#define TCA_STORE_CHANGE_H

#include <stdint.h>

#include "store.h"

/*
 * 1 if chg is well formed for its kind (every field commit() needs present,
 * every length within the store's limits), else 0.  A backend answers
 * TCA_ERR_INVALID_ARG for a malformed change and applies nothing of it.
 */
int tca_change_valid(const struct tca_change *chg);

/* 1 if a change of this kind writes a journal record when it applies
 * (DEVICE_FAILURE only when it locks the registration: the backend knows). */
int tca_change_journaled(enum tca_change_kind kind);

/*
 * The journal record of an applied change, hashed and chained after
 * (prev_seq, prev_hash) (0 and 32 zero bytes before the first record).
 * subject: the certificate's subject for CA_CREATE, CERT_ISSUE and
 * CA_REISSUE (taken from chg->cert, the argument is ignored), otherwise what
 * the backend looked up (the retired CA certificate's subject for CA_DELETE,
 * the revoked certificate's for CERT_REVOKE, the CA's for CRL_PUBLISH and
 * POLICY_SET; "" if none).  fp_of_revoked: the revoked certificate's
 * fingerprint in hex for CERT_REVOKE (ignored otherwise).
 * rec's strings point into hexbuf (serial_hex, fingerprint_hex) and into
 * chg/subject (borrowed): keep them alive while rec is used.
 * TCA_OK, or TCA_ERR_INTERNAL if the digest failed (rec->hash all zero:
 * never to be recorded).
 */
struct tca_change_hex {
	char serial[2 * TCA_SERIAL_MAX + 1];
	char fingerprint[2 * 32 + 1];
};
int tca_change_journal_record(const struct tca_change *chg, const char *subject,
    const char *fp_of_revoked, int64_t prev_seq, const unsigned char prev_hash[32],
    struct tca_change_hex *hexbuf, struct tca_journal_record *rec);

#endif
