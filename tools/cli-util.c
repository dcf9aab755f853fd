/* cli-util.c - helpers shared by the command-line tools (see cli-util.h). */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli-util.h"
#include "rpc-schema.h"
#include "otp.h"
#include "text.h"

const char *
cli_socket_path(const char *opt)
{
	const char *env;

	if (opt != NULL)
		return opt;
	if ((env = getenv("TCA_SOCKET")) != NULL && env[0] != '\0')
		return env;
	return TCA_CLIENT_DEFAULT_SOCKET;
}

int
cli_check_utf8(const char *prog, const char *name, const char *value)
{
	if (value == NULL || tca_utf8_valid((const unsigned char *)value, strlen(value)))
		return 0;
	fprintf(stderr, "%s: argument %s is not valid UTF-8\n", prog, name);
	return CLI_EXIT_USAGE;
}

int
cli_parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *v_ptr)
{
	unsigned long v;
	char *end = NULL;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*v_ptr = v;
	return 0;
}

int
cli_read_file(const char *path, size_t max, unsigned char **buf_ptr,
    size_t *len_ptr, char *err, size_t errlen)
{
	unsigned char *buf = NULL, *nb;
	size_t cap = 0, len = 0;
	ssize_t n;
	int fd = -1, r = -1;

	*buf_ptr = NULL;
	*len_ptr = 0;
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		if (len == cap) {
			/* one byte beyond max tells "too large" from "exactly max" */
			if (cap > max) {
				snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
				goto out;
			}
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	if (len == 0) {
		snprintf(err, errlen, "%s: empty", path);
		goto out;
	}
	*buf_ptr = buf;
	*len_ptr = len;
	buf = NULL;
	r = 0;
 out:
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	free(buf);
	return r;
}

FILE *
cli_open_out(const char *path, char *err, size_t errlen)
{
	FILE *f;
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		return stdout;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	return f;
}

int
cli_close_out(FILE *f, const char *path, char *err, size_t errlen)
{
	int bad;

	if (f == NULL)
		return -1;
	bad = ferror(f);
	if (f == stdout)
		bad |= fflush(f) != 0;
	else
		bad |= fclose(f) != 0;
	if (bad) {
		snprintf(err, errlen, "%s: write failed", path != NULL ? path : "stdout");
		return -1;
	}
	return 0;
}

int
cli_write_cert(FILE *f, const unsigned char *der, size_t len, int pem)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	int r = -1;

	if (der == NULL || len == 0 || len > 0x7fffffff)
		return -1;
	if (!pem) {
		r = fwrite(der, 1, len, f) == len ? 0 : -1;
		goto out;
	}
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	if (PEM_write_X509(f, x) != 1)
		goto out;
	r = 0;
 out:
	X509_free(x);
	return r;
}



static void
json_base64(FILE *f, const unsigned char *b, size_t len)
{
	unsigned char *out;
	int n;

	if (len > 0x30000000 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
		fputs("null", f);
		return;
	}
	n = EVP_EncodeBlock(out, b, (int)len);
	fputc('"', f);
	fwrite(out, 1, (size_t)(n > 0 ? n : 0), f);
	fputc('"', f);
	free(out);
}

void
cli_print_json(FILE *f, const cbor_item_t *it)
{
	struct cbor_pair *p;
	cbor_item_t **a;
	uint64_t u;
	size_t i, n;

	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
		fprintf(f, "%" PRIu64, cbor_get_int(it));
		break;
	case CBOR_TYPE_NEGINT:
		/* -1 - n, without overflowing for n = 2^64 - 1 */
		u = cbor_get_int(it);
		if (u == UINT64_MAX)
			fputs("-18446744073709551616", f);
		else
			fprintf(f, "-%" PRIu64, u + 1);
		break;
	case CBOR_TYPE_STRING:
		if (cbor_string_is_definite(it))
			tca_json_string(f, cbor_string_handle(it), cbor_string_length(it));
		else
			fputs("null", f);
		break;
	case CBOR_TYPE_BYTESTRING:
		if (cbor_bytestring_is_definite(it))
			json_base64(f, cbor_bytestring_handle(it), cbor_bytestring_length(it));
		else
			fputs("null", f);
		break;
	case CBOR_TYPE_ARRAY:
		fputc('[', f);
		n = cbor_array_size(it);
		a = cbor_array_handle(it);
		for (i = 0; i < n; i++) {
			if (i > 0)
				fputc(',', f);
			cli_print_json(f, a[i]);
		}
		fputc(']', f);
		break;
	case CBOR_TYPE_MAP:
		fputc('{', f);
		n = cbor_map_size(it);
		p = cbor_map_handle(it);
		for (i = 0; i < n; i++) {
			if (i > 0)
				fputc(',', f);
			/* JSON keys must be strings */
			if (cbor_isa_string(p[i].key))
				cli_print_json(f, p[i].key);
			else
				fputs("\"?\"", f);
			fputc(':', f);
			cli_print_json(f, p[i].value);
		}
		fputc('}', f);
		break;
	case CBOR_TYPE_FLOAT_CTRL:
		if (cbor_is_bool(it))
			fputs(cbor_get_bool(it) ? "true" : "false", f);
		else
			fputs("null", f);
		break;
	default:
		fputs("null", f);
	}
}

static int
is_time_key(const char *k)
{
	size_t l = strlen(k);

	return strcmp(k, "not_before") == 0 || strcmp(k, "not_after") == 0 ||
	    (l > 3 && strcmp(k + l - 3, "_at") == 0);
}

void
cli_print_text(FILE *f, const cbor_item_t *m, int indent)
{
	struct cbor_pair *p;
	const cbor_item_t *v;
	char key[64], ts[32];
	size_t i, n, kl;

	if (m == NULL || !cbor_isa_map(m))
		return;
	n = cbor_map_size(m);
	p = cbor_map_handle(m);
	for (i = 0; i < n; i++) {
		v = p[i].value;
		if (!cbor_isa_string(p[i].key) || !cbor_string_is_definite(p[i].key))
			continue;
		kl = cbor_string_length(p[i].key);
		snprintf(key, sizeof(key), "%.*s", (int)(kl < 60 ? kl : 60),
		    (const char *)cbor_string_handle(p[i].key));
		if (cbor_isa_bytestring(v))
			continue;	/* certificates: use the PEM or JSON output */
		fprintf(f, "%*s%-24s", indent, "", key);
		if (cbor_isa_map(v)) {
			fputc('\n', f);
			cli_print_text(f, v, indent + 2);
		} else if (cbor_isa_uint(v) && is_time_key(key)) {
			tca_iso_time((int64_t)cbor_get_int(v), ts, sizeof(ts));
			fprintf(f, "%s\n", ts);
		} else if (cbor_isa_string(v) && cbor_string_is_definite(v)) {
			fprintf(f, "%.*s\n", (int)cbor_string_length(v),
			    (const char *)cbor_string_handle(v));
		} else {
			cli_print_json(f, v);
			fputc('\n', f);
		}
	}
}

int
cli_report(const char *prog, const char *what, int r, const struct tca_client_error *err)
{
	const char *msg = err != NULL && err->message[0] != '\0' ? err->message :
	    tca_client_strerror(r);

	if (err != NULL && err->code[0] != '\0') {
		fprintf(stderr, "%s: %s: %s\n", prog, err->code, msg);
		return CLI_EXIT_REFUSED;
	}
	fprintf(stderr, "%s: %s: %s\n", prog, what, msg);
	return r == TCA_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_TRANSPORT;
}

/* ------------------------------------------------------------ op table */

static void
print_fields(FILE *f, const struct tca_arg_spec *spec, size_t n, int markdown)
{
	const struct tca_arg_spec *s;
	size_t i;

	if (n == 0) {
		fputs(markdown ? "(none)" : "none", f);
		return;
	}
	for (i = 0; i < n; i++) {
		s = &spec[i];
		fprintf(f, "%s%s%s%s%s %s", i > 0 ? ", " : "", markdown ? "`" : "", s->name,
		    markdown ? "`" : "", s->required ? "" : "?", tca_arg_type_name(s->type));
		if (s->type == TCA_ARG_ARRAY && s->n_sub == 1)
			fprintf(f, " of %s", tca_arg_type_name(s->sub[0].type));
		if ((s->type == TCA_ARG_TEXT || s->type == TCA_ARG_BYTES) && s->max_len != 0)
			fprintf(f, markdown ? " \u2264 %zu" : " <= %zu", s->max_len);
	}
}

void
cli_print_ops(FILE *f, int markdown, int role_max)
{
	const struct tca_op_desc *d;
	size_t i;

	if (markdown) {
		fputs("| operation | role | arguments (`?` optional) | result | |\n"
		    "|---|---|---|---|---|\n", f);
	}
	for (i = 0; (d = tca_op_at(i)) != NULL; i++) {
		if ((int)d->role > role_max)
			continue;
		if (markdown) {
			fprintf(f, "| `%s` | %s | ", d->name, tca_role_name(d->role));
			print_fields(f, d->args, d->n_args, 1);
			fputs(" | ", f);
			print_fields(f, d->result, d->n_result, 1);
			fprintf(f, " | %s |\n", d->summary);
		} else {
			fprintf(f, "%s (%s): %s\n    args:   ", d->name, tca_role_name(d->role),
			    d->summary);
			print_fields(f, d->args, d->n_args, 0);
			fputs("\n    result: ", f);
			print_fields(f, d->result, d->n_result, 0);
			fputc('\n', f);
		}
	}
}

/* ------------------------------------------------------------ passwords */

/* (cli-util.h) */
int
cli_read_otp_file(const char *path, char *out, size_t outsz, char *err, size_t errlen)
{
	char buf[TCA_OTP_MAX + 3], why[160];
	struct stat st;
	size_t total = 0, len;
	ssize_t n;
	int fd = -1, r = -1;

	out[0] = '\0';
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "cannot open one-time password file %s: %s", path,
		    strerror(errno));
		goto out;
	} else if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "one-time password file %s is not a regular file", path);
		goto out;
	} else if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "one-time password file %s has mode %04o; it must not "
		    "be accessible by group or others (chmod 600)", path,
		    (unsigned int)(st.st_mode & 07777));
		goto out;
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "one-time password file %s is owned by uid %u, not by "
		    "uid %u or root", path, (unsigned int)st.st_uid, (unsigned int)geteuid());
		goto out;
	}
	while (total < sizeof(buf)) {
		n = read(fd, buf + total, sizeof(buf) - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	if (total == sizeof(buf)) {
		snprintf(err, errlen, "%s: a one-time password has at most %d characters",
		    path, TCA_OTP_MAX);
		goto out;
	}
	len = total;
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		snprintf(err, errlen, "%s holds no one-time password", path);
		goto out;
	}
	if (memchr(buf, '\n', len) != NULL) {
		snprintf(err, errlen, "%s holds more than one line", path);
		goto out;
	}
	if (tca_otp_check_password(buf, len, why, sizeof(why)) != TCA_OK) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	if (len >= outsz) {
		snprintf(err, errlen, "%s: password too long", path);
		goto out;
	}
	memcpy(out, buf, len);
	out[len] = '\0';
	r = 0;
 out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	return r;
}
