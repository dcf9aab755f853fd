/* checkpoint.c - signed journal checkpoints (checkpoint.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "checkpoint.h"
#include "hook.h"
#include "keytype.h"
#include "log.h"
#include "tca-error.h"
#include "text.h"

#define AUDIT_ID_LEN (sizeof(TCA_AUDIT_KEY_ID) - 1)
#define SPKI_MAX 512
#define SIG_MAX 160

struct tca_checkpointer {
	tca_token *tok;
	tca_store *st;
	struct tca_checkpoint_params p;
	unsigned char spki[SPKI_MAX];
	size_t spki_len;
	char keyfp[65];
	int64_t last_seq;		/* the head as far as read */
	unsigned char last_hash[32];
	tca_hooks *hooks;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;
};

static int
spki_of(EVP_PKEY *pub, unsigned char *out, size_t *len_ptr, char keyfp[65])
{
	unsigned char *der = NULL, fp[32];
	unsigned int fplen = 0;
	int len;

	if ((len = i2d_PUBKEY(pub, &der)) <= 0 || (size_t)len > SPKI_MAX) {
		OPENSSL_free(der);
		return TCA_ERR_CRYPTO;
	}
	memcpy(out, der, (size_t)len);
	*len_ptr = (size_t)len;
	OPENSSL_free(der);
	if (EVP_Digest(out, *len_ptr, fp, &fplen, EVP_sha256(), NULL) != 1 || fplen != 32)
		return TCA_ERR_CRYPTO;
	tca_hex(fp, 32, keyfp);
	return TCA_OK;
}

/* The audit key: found on the token (public key from the file), or made. */
static int
load_or_make_key(struct tca_checkpointer *cp, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	enum tca_key_type type = TCA_KEY_NONE;
	EVP_PKEY *pub = NULL;
	FILE *f = NULL;
	int fd, r;

	snprintf(path, sizeof(path), "%s", cp->p.key_file);
	r = tca_token_check_key(cp->tok, (const unsigned char *)TCA_AUDIT_KEY_ID,
	    AUDIT_ID_LEN, &type);
	if (r == TCA_ERR_NOT_FOUND) {
		if ((r = tca_token_generate_key(cp->tok, TCA_KEY_EC_P256,
		    (const unsigned char *)TCA_AUDIT_KEY_ID, AUDIT_ID_LEN,
		    TCA_AUDIT_KEY_LABEL, &pub)) != TCA_OK) {
			tca_setf(err, errlen, "generating the journal audit key in the "
			    "token: %s", tca_strerror(r));
			return r;
		}
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0644)) == -1 || (f = fdopen(fd, "w")) == NULL ||
		    PEM_write_PUBKEY(f, pub) != 1 || fclose(f) != 0) {
			if (fd != -1 && f == NULL)
				close(fd);
			tca_setf(err, errlen, "writing the audit key's public key to "
			    "%s failed (%s); the key is on the token (CKA_ID \"%s\"): "
			    "fix the cause and restart", path, strerror(errno),
			    TCA_AUDIT_KEY_ID);
			EVP_PKEY_free(pub);
			return TCA_ERR_SYSTEM;
		}
		r = spki_of(pub, cp->spki, &cp->spki_len, cp->keyfp);
		EVP_PKEY_free(pub);
		if (r != TCA_OK)
			return r;
		log_notice("journal checkpoints: generated the audit key in the token "
		    "(CKA_ID \"%s\", label \"%s\", EC P-256); public key in %s, "
		    "SHA-256 of its SubjectPublicKeyInfo %s: keep a copy of both "
		    "where checkpoints are verified", TCA_AUDIT_KEY_ID,
		    TCA_AUDIT_KEY_LABEL, path, cp->keyfp);
		return TCA_OK;
	}
	if (r != TCA_OK) {
		tca_setf(err, errlen, "looking for the journal audit key on the "
		    "token: %s", tca_strerror(r));
		return r;
	}
	if (type != TCA_KEY_EC_P256) {
		tca_setf(err, errlen, "the token key with CKA_ID \"%s\" is not an "
		    "EC P-256 key: it is not the journal audit key", TCA_AUDIT_KEY_ID);
		return TCA_ERR_POLICY_VIOLATION;
	}
	if ((f = fopen(path, "re")) == NULL ||
	    (pub = PEM_read_PUBKEY(f, NULL, NULL, NULL)) == NULL) {
		tca_setf(err, errlen, "the journal audit key (CKA_ID \"%s\") is on "
		    "the token, but its public key %s %s: restore the file from any "
		    "checkpoint line (echo SPKI | base64 -d | openssl pkey -pubin "
		    "-inform DER -out %s), or destroy the key on the token to have "
		    "a new one made", TCA_AUDIT_KEY_ID, path,
		    f == NULL ? "cannot be read" : "does not parse", path);
		if (f != NULL)
			fclose(f);
		return TCA_ERR_CONFIG;
	}
	fclose(f);
	r = spki_of(pub, cp->spki, &cp->spki_len, cp->keyfp);
	EVP_PKEY_free(pub);
	return r;
}

static int
head_cb(void *arg, const struct tca_journal_record *rec)
{
	struct tca_checkpointer *cp = arg;

	cp->last_seq = rec->seq;
	memcpy(cp->last_hash, rec->hash, 32);
	return 0;
}

/* Signs the current head into line.  TCA_OK or the reason it cannot. */
static int
sign_head(struct tca_checkpointer *cp, char *line, size_t linelen, char *why,
    size_t whylen)
{
	unsigned char sig[SIG_MAX];
	char hash_hex[65], spki_b64[((SPKI_MAX + 2) / 3) * 4 + 1];
	char sig_b64[((SIG_MAX + 2) / 3) * 4 + 1];
	size_t siglen = sizeof(sig);
	int n, r;

	if (cp->st->ops->health != NULL &&
	    cp->st->ops->health(cp->st, why, whylen) != TCA_OK)
		return TCA_ERR_JOURNAL_UNAVAILABLE;
	if ((r = cp->st->ops->journal_foreach(cp->st, cp->last_seq + 1, head_cb,
	    cp)) != TCA_OK) {
		tca_setf(why, whylen, "reading the journal head: %s", tca_strerror(r));
		return r;
	}
	tca_hex(cp->last_hash, 32, hash_hex);
	n = snprintf(line, linelen, "%s seq=%lld hash=%s time=%lld key=%s",
	    TCA_CHECKPOINT_TAG, (long long)cp->last_seq, hash_hex,
	    (long long)time(NULL), cp->keyfp);
	if (n < 0 || (size_t)n >= linelen)
		return TCA_ERR_INTERNAL;
	if ((r = tca_token_sign(cp->tok, (const unsigned char *)TCA_AUDIT_KEY_ID,
	    AUDIT_ID_LEN, TCA_SIG_ECDSA_SHA256, (const unsigned char *)line,
	    (size_t)n, sig, &siglen)) != TCA_OK) {
		tca_setf(why, whylen, "signing with the audit key: %s",
		    tca_strerror(r));
		return r;
	}
	EVP_EncodeBlock((unsigned char *)spki_b64, cp->spki, (int)cp->spki_len);
	EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)siglen);
	if ((size_t)snprintf(line + n, linelen - (size_t)n, " spki=%s sig=%s",
	    spki_b64, sig_b64) >= linelen - (size_t)n)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* One checkpoint: signed, logged, handed to the command. */
static int
emit(struct tca_checkpointer *cp, char *line, size_t linelen)
{
	char why[512] = "", e_line[TCA_CHECKPOINT_LINE_MAX + 32], e_seq[48];
	char e_hash[96], what[48], hash_hex[65];
	char *envp[5];
	int r;

	if ((r = sign_head(cp, line, linelen, why, sizeof(why))) != TCA_OK) {
		log_error("journal checkpoint not made: %s", why);
		return r;
	}
	log_notice("journal checkpoint: %s", line);
	if (cp->p.command[0] == '\0')
		return TCA_OK;
	tca_hex(cp->last_hash, 32, hash_hex);
	snprintf(e_line, sizeof(e_line), "TCA_CHECKPOINT=%s", line);
	snprintf(e_seq, sizeof(e_seq), "TCA_CHECKPOINT_SEQ=%lld", (long long)cp->last_seq);
	snprintf(e_hash, sizeof(e_hash), "TCA_CHECKPOINT_HASH=%s", hash_hex);
	envp[0] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	envp[1] = e_line;
	envp[2] = e_seq;
	envp[3] = e_hash;
	envp[4] = NULL;
	snprintf(what, sizeof(what), "seq %lld", (long long)cp->last_seq);
	(void)tca_hooks_spawn(cp->hooks, "checkpoint", what, cp->p.command, envp,
	    cp->p.timeout_s);
	return TCA_OK;
}

static void *
checkpoint_main(void *arg)
{
	struct tca_checkpointer *cp = arg;
	char line[TCA_CHECKPOINT_LINE_MAX];
	struct timespec until;

	pthread_mutex_lock(&cp->lock);
	while (!cp->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += cp->p.interval_s;
		while (!cp->stop && pthread_cond_timedwait(&cp->wake, &cp->lock,
		    &until) != ETIMEDOUT)
			;
		if (cp->stop)
			break;
		pthread_mutex_unlock(&cp->lock);
		(void)emit(cp, line, sizeof(line));
		pthread_mutex_lock(&cp->lock);
	}
	pthread_mutex_unlock(&cp->lock);
	return NULL;
}

void
tca_checkpoint_stop(tca_checkpointer *cp)
{
	if (cp == NULL)
		return;
	if (cp->thread_started) {
		pthread_mutex_lock(&cp->lock);
		cp->stop = 1;
		pthread_cond_broadcast(&cp->wake);
		pthread_mutex_unlock(&cp->lock);
		pthread_join(cp->thread, NULL);
	}
	tca_hooks_free(cp->hooks);
	pthread_mutex_destroy(&cp->lock);
	pthread_cond_destroy(&cp->wake);
	free(cp);
}

int
tca_checkpoint_start(tca_token *tok, tca_store *st,
    const struct tca_checkpoint_params *p, tca_checkpointer **cp_ptr,
    char *err, size_t errlen)
{
	struct tca_checkpointer *cp;
	pthread_condattr_t ca;
	char line[TCA_CHECKPOINT_LINE_MAX], why[256], fp[65], path[PATH_MAX + 32];
	unsigned char h[32];
	int64_t seq = 0, t = 0;
	int r;

	*cp_ptr = NULL;
	if (tok == NULL || st == NULL || p == NULL || p->interval_s == 0)
		return TCA_ERR_INVALID_ARG;
	if ((cp = calloc(1, sizeof(*cp))) == NULL)
		return TCA_ERR_NOMEM;
	cp->tok = tok;
	cp->st = st;
	cp->p = *p;
	pthread_mutex_init(&cp->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cp->wake, &ca);
	pthread_condattr_destroy(&ca);
	if ((r = tca_hooks_new(&cp->hooks)) != TCA_OK ||
	    (r = load_or_make_key(cp, err, errlen)) != TCA_OK)
		goto fail;
	if ((r = emit(cp, line, sizeof(line))) != TCA_OK) {
		tca_setf(err, errlen, "the first journal checkpoint could not be "
		    "signed (logged above)");
		goto fail;
	}
	/* the public key file must belong to the key on the token */
	if (tca_checkpoint_verify_line(line, NULL, &seq, h, &t, fp, why,
	    sizeof(why)) != TCA_OK) {
		snprintf(path, sizeof(path), "%s", p->key_file);
		tca_setf(err, errlen, "the journal audit key on the token does not "
		    "match its public key %s (%s): restore the right file, or "
		    "destroy the key on the token (CKA_ID \"%s\") to have a new one "
		    "made", path, why, TCA_AUDIT_KEY_ID);
		r = TCA_ERR_POLICY_VIOLATION;
		goto fail;
	}
	if (pthread_create(&cp->thread, NULL, checkpoint_main, cp) != 0) {
		tca_setf(err, errlen, "cannot start the checkpoint thread");
		r = TCA_ERR_SYSTEM;
		goto fail;
	}
	cp->thread_started = 1;
	log_info("journal checkpoints: every %u s, audit key %s%s%s", p->interval_s,
	    cp->keyfp, p->command[0] != '\0' ? ", command " : "", p->command);
	*cp_ptr = cp;
	return TCA_OK;
 fail:
	tca_checkpoint_stop(cp);
	return r;
}

/* ------------------------------------------------------------ verifying */

static int
b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax,
    size_t *len_ptr)
{
	int n, pad = 0;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > outmax)
		return -1;
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen)) < 0)
		return -1;
	if (in[inlen - 1] == '=')
		pad++;
	if (inlen > 1 && in[inlen - 2] == '=')
		pad++;
	*len_ptr = (size_t)n - (size_t)pad;
	return 0;
}

/* The value of " name=" in line: its start and length (up to a space). */
static const char *
field(const char *line, const char *name, size_t *len_ptr)
{
	char key[16];
	const char *p;

	snprintf(key, sizeof(key), " %s=", name);
	if ((p = strstr(line, key)) == NULL)
		return NULL;
	p += strlen(key);
	*len_ptr = strcspn(p, " ");
	return p;
}

static int
hex_field(const char *v, size_t len, unsigned char out[32])
{
	size_t i;
	int hi, lo;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		if ((hi = OPENSSL_hexchar2int((unsigned char)v[2 * i])) < 0 ||
		    (lo = OPENSSL_hexchar2int((unsigned char)v[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
tca_checkpoint_verify_line(const char *line, EVP_PKEY *pin, int64_t *seq_ptr,
    unsigned char hash[32], int64_t *time_ptr, char keyfp_hex[65],
    char *why, size_t whylen)
{
	unsigned char spki[SPKI_MAX], sig[SIG_MAX], fp[32], keyfp[32], *pin_der = NULL;
	const char *v, *signed_end;
	const unsigned char *q;
	size_t len, spki_len, sig_len, i;
	unsigned int fplen = 0;
	char num[24], *end;
	EVP_PKEY *pub = NULL;
	EVP_MD_CTX *md = NULL;
	int pin_len, r = TCA_ERR_POLICY_VIOLATION;

	if (line == NULL || seq_ptr == NULL || hash == NULL || time_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	len = strlen(line);
	for (i = 0; i < len; i++)
		if (line[i] < 0x20 || line[i] > 0x7e) {
			tca_setf(why, whylen, "not a checkpoint line (control or "
			    "non-ASCII byte)");
			return TCA_ERR_INVALID_ARG;
		}
	if (strncmp(line, TCA_CHECKPOINT_TAG " seq=", strlen(TCA_CHECKPOINT_TAG) + 5) != 0) {
		tca_setf(why, whylen, "not a checkpoint line (it does not start with "
		    "\"%s seq=\")", TCA_CHECKPOINT_TAG);
		return TCA_ERR_INVALID_ARG;
	}
	/* seq and time: decimal */
	if ((v = field(line, "seq", &len)) == NULL || len == 0 || len >= sizeof(num))
		goto bad_format;
	memcpy(num, v, len);
	num[len] = '\0';
	errno = 0;
	*seq_ptr = strtoll(num, &end, 10);
	if (*end != '\0' || errno != 0 || *seq_ptr < 0)
		goto bad_format;
	if ((v = field(line, "time", &len)) == NULL || len == 0 || len >= sizeof(num))
		goto bad_format;
	memcpy(num, v, len);
	num[len] = '\0';
	*time_ptr = strtoll(num, &end, 10);
	if (*end != '\0' || errno != 0)
		goto bad_format;
	if ((v = field(line, "hash", &len)) == NULL || hex_field(v, len, hash) != 0)
		goto bad_format;
	if ((v = field(line, "key", &len)) == NULL || hex_field(v, len, keyfp) != 0)
		goto bad_format;
	signed_end = v + len;
	if (strncmp(signed_end, " spki=", 6) != 0)
		goto bad_format;
	if ((v = field(line, "spki", &len)) == NULL ||
	    b64_decode(v, len, spki, sizeof(spki), &spki_len) != 0)
		goto bad_format;
	if ((v = field(line, "sig", &len)) == NULL || v[len] != '\0' ||
	    b64_decode(v, len, sig, sizeof(sig), &sig_len) != 0)
		goto bad_format;
	if (EVP_Digest(spki, spki_len, fp, &fplen, EVP_sha256(), NULL) != 1 ||
	    fplen != 32 || CRYPTO_memcmp(fp, keyfp, 32) != 0) {
		tca_setf(why, whylen, "key= is not the SHA-256 of the spki= key");
		goto out;
	}
	if (keyfp_hex != NULL)
		tca_hex(keyfp, 32, keyfp_hex);
	q = spki;
	if ((pub = d2i_PUBKEY(NULL, &q, (long)spki_len)) == NULL ||
	    q != spki + spki_len || !EVP_PKEY_is_a(pub, "EC")) {
		tca_setf(why, whylen, "spki= is not an EC public key");
		goto out;
	}
	if (pin != NULL) {
		if ((pin_len = i2d_PUBKEY(pin, &pin_der)) <= 0 ||
		    (size_t)pin_len != spki_len ||
		    memcmp(pin_der, spki, spki_len) != 0) {
			tca_setf(why, whylen, "signed by another key than the one given "
			    "(key %.16s...)", keyfp_hex != NULL ? keyfp_hex : "");
			goto out;
		}
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1) {
		r = TCA_ERR_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)line,
	    (size_t)(signed_end - line)) != 1) {
		tca_setf(why, whylen, "the signature does not verify (line altered, "
		    "or not signed by its key)");
		goto out;
	}
	r = TCA_OK;
	goto out;
 bad_format:
	tca_setf(why, whylen, "malformed checkpoint line (%s seq=N hash=H time=T "
	    "key=K spki=P sig=S expected)", TCA_CHECKPOINT_TAG);
	r = TCA_ERR_INVALID_ARG;
 out:
	OPENSSL_free(pin_der);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	return r;
}
