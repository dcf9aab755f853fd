/*
 * tenant-policy.c - each tenant's issuance policy (tenant-policy.h).
 *
 * Pure computation: text form, JSON, the per-request check, the RFC 7030
 * CSR attributes and the device_id_pattern glob.  Nothing here allocates
 * except tca_tenant_policy_csrattrs' result.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "csr.h"
#include "der.h"
#include "keytype.h"
#include "tca-error.h"
#include "tenant-policy.h"
#include "text.h"

/* ------------------------------------------------------------ keys */

/* The text-form keys, sorted: the order of the canonical form. */
enum pkey {
	K_DEVICE_ID_PATTERN, K_KEY_TYPES, K_MAX_DAYS, K_O, K_O_REQUIRED,
	K_OU, K_OU_REQUIRED, K_REGISTRATION, K_RSA_MIN_BITS, K_SAN, K_SUSPENDED, K_COUNT
};

static const char *const key_names[K_COUNT] = {
	"device_id_pattern", "key_types", "max_days", "o", "o_required",
	"ou", "ou_required", "registration", "rsa_min_bits", "san", "suspended",
};

/* Device key type names, in the order the text form lists them. */
static const struct {
	unsigned int bit;
	const char *name;
} devkeys[] = {
	{ TCA_DEVKEY_EC_P256, "ec-p256" },
	{ TCA_DEVKEY_EC_P384, "ec-p384" },
	{ TCA_DEVKEY_RSA, "rsa" },
	{ TCA_DEVKEY_ED25519, "ed25519" },
};
#define N_DEVKEYS (sizeof(devkeys) / sizeof(devkeys[0]))

static const char *const san_names[] = { "uri", "dns", "none" };
/* TCA_REG_*: index 0 (the global setting) has no text form */
static const char *const reg_names[] = { "", "required", "none" };

void
tca_tenant_policy_defaults(struct tca_tenant_policy *tp)
{
	if (tp != NULL)
		memset(tp, 0, sizeof(*tp));
}

/* Fields hold only what set/parse produce (a hand-filled structure may
 * not): everything that formats, checks or encodes a policy relies on it. */
static int
rule_sane(const struct tca_name_rule *nr)
{
	unsigned int i;
	size_t len;

	if (nr->n > TCA_POLICY_MAX_VALUES || (nr->required != 0 && nr->required != 1))
		return 0;
	for (i = 0; i < nr->n; i++) {
		len = strnlen(nr->allowed[i], sizeof(nr->allowed[i]));
		if (len == 0 || len > TCA_POLICY_VALUE_MAX ||
		    memchr(nr->allowed[i], '|', len) != NULL ||
		    memchr(nr->allowed[i], '\n', len) != NULL ||
		    (i > 0 && strcmp(nr->allowed[i - 1], nr->allowed[i]) >= 0))
			return 0;
	}
	return 1;
}

static int
policy_sane(const struct tca_tenant_policy *tp)
{
	size_t plen = strnlen(tp->device_id_pattern, sizeof(tp->device_id_pattern));

	return (tp->key_types & ~TCA_DEVKEY_ALL) == 0 &&
	    (tp->rsa_min_bits == 0 || (tp->rsa_min_bits >= TCA_POLICY_RSA_FLOOR &&
	    tp->rsa_min_bits <= TCA_POLICY_RSA_CEIL)) &&
	    tp->max_days <= TCA_POLICY_MAX_DAYS &&
	    rule_sane(&tp->o) && rule_sane(&tp->ou) &&
	    plen <= TCA_GLOB_MAX &&
	    (plen == 0 || tca_glob_valid(tp->device_id_pattern, NULL, 0) == TCA_OK) &&
	    (tp->san == TCA_SAN_URI || tp->san == TCA_SAN_DNS || tp->san == TCA_SAN_NONE) &&
	    (tp->registration == TCA_REG_GLOBAL || tp->registration == TCA_REG_REQUIRED ||
	    tp->registration == TCA_REG_NONE) &&
	    (tp->suspended == 0 || tp->suspended == 1);
}

int
tca_tenant_policy_is_default(const struct tca_tenant_policy *tp)
{
	return tp != NULL && tp->key_types == 0 && tp->rsa_min_bits == 0 &&
	    tp->max_days == 0 && tp->o.n == 0 && !tp->o.required &&
	    tp->ou.n == 0 && !tp->ou.required && tp->device_id_pattern[0] == '\0' &&
	    tp->san == TCA_SAN_URI && tp->registration == TCA_REG_GLOBAL && !tp->suspended;
}

/* ------------------------------------------------------------ values */

/* Decimal without sign, leading zeros or overflow; lo..hi, or 0 if zero_ok. */
static int
parse_uint(const char *v, unsigned int lo, unsigned int hi, int zero_ok,
    unsigned int *out)
{
	unsigned long n = 0;
	size_t i, len = strlen(v);

	if (len == 0 || len > 10 || (len > 1 && v[0] == '0'))
		return 0;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		n = n * 10 + (unsigned long)(v[i] - '0');
	}
	if (n == 0 && zero_ok) {
		*out = 0;
		return 1;
	}
	if (n < lo || n > hi)
		return 0;
	*out = (unsigned int)n;
	return 1;
}

static int
parse_bool(const char *v, int *out)
{
	if (strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0)
		*out = 0;
	else
		return 0;
	return 1;
}

static int
set_key_types(unsigned int *mask, const char *v, const char *kn, char *why,
    size_t whylen)
{
	char item[16], shown[40];
	const char *p = v, *e;
	unsigned int m = 0;
	size_t i, len;

	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == 0) {
			tca_setf(why, whylen, "%s: empty item in the list "
			    "(ec-p256, ec-p384, rsa, ed25519, comma-separated)", kn);
			return TCA_ERR_BAD_REQUEST;
		}
		for (i = 0; i < N_DEVKEYS; i++)
			if (strlen(devkeys[i].name) == len &&
			    memcmp(devkeys[i].name, p, len) == 0)
				break;
		if (i == N_DEVKEYS) {
			tca_sanitize((const unsigned char *)p, len, shown, sizeof(shown));
			tca_setf(why, whylen, "%s: unknown key type \"%s\" "
			    "(ec-p256, ec-p384, rsa, ed25519)", kn, shown);
			return TCA_ERR_BAD_REQUEST;
		}
		if (m & devkeys[i].bit) {
			snprintf(item, sizeof(item), "%s", devkeys[i].name);
			tca_setf(why, whylen, "%s: %s is listed twice", kn, item);
			return TCA_ERR_BAD_REQUEST;
		}
		m |= devkeys[i].bit;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*mask = m;
	return TCA_OK;
}

static int
cmp_values(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* "v1|v2|..." into nr's allowed values, sorted. */
static int
set_values(struct tca_name_rule *nr, const char *v, const char *kn, char *why,
    size_t whylen)
{
	struct tca_name_rule tmp;
	const unsigned char *p = (const unsigned char *)v, *e;
	char shown[80];
	size_t i, len;

	memset(&tmp, 0, sizeof(tmp));
	tmp.required = nr->required;
	for (;;) {
		e = (const unsigned char *)strchr((const char *)p, '|');
		len = e != NULL ? (size_t)(e - p) : strlen((const char *)p);
		tca_sanitize(p, len, shown, sizeof(shown));
		if (len == 0) {
			tca_setf(why, whylen, "%s: empty value in the list "
			    "('|'-separated)", kn);
			return TCA_ERR_BAD_REQUEST;
		}
		if (tmp.n == TCA_POLICY_MAX_VALUES) {
			tca_setf(why, whylen, "%s: more than %d values", kn,
			    TCA_POLICY_MAX_VALUES);
			return TCA_ERR_BAD_REQUEST;
		}
		if (len > TCA_POLICY_VALUE_MAX) {
			tca_setf(why, whylen, "%s: value \"%s\" is longer than %d bytes",
			    kn, shown, TCA_POLICY_VALUE_MAX);
			return TCA_ERR_BAD_REQUEST;
		}
		for (i = 0; i < len; i++)
			if (p[i] < 0x20 || p[i] == 0x7f)
				break;
		if (i < len) {
			tca_setf(why, whylen, "%s: value \"%s\" contains a control "
			    "character", kn, shown);
			return TCA_ERR_BAD_REQUEST;
		}
		if (!tca_utf8_valid(p, len)) {
			tca_setf(why, whylen, "%s: value \"%s\" is not valid UTF-8",
			    kn, shown);
			return TCA_ERR_BAD_REQUEST;
		}
		if (p[0] == ' ' || p[len - 1] == ' ') {
			tca_setf(why, whylen, "%s: value \"%s\" has leading or "
			    "trailing spaces", kn, shown);
			return TCA_ERR_BAD_REQUEST;
		}
		memcpy(tmp.allowed[tmp.n], p, len);
		tmp.allowed[tmp.n][len] = '\0';
		tmp.n++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	qsort(tmp.allowed, tmp.n, sizeof(tmp.allowed[0]), cmp_values);
	for (i = 1; i < tmp.n; i++) {
		if (strcmp(tmp.allowed[i - 1], tmp.allowed[i]) == 0) {
			tca_sanitize((const unsigned char *)tmp.allowed[i],
			    strlen(tmp.allowed[i]), shown, sizeof(shown));
			tca_setf(why, whylen, "%s: value \"%s\" is listed twice",
			    kn, shown);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	*nr = tmp;
	return TCA_OK;
}

/* Applies key k = v (NUL-terminated) to tp; "" resets the key. */
static int
set_one(struct tca_tenant_policy *tp, enum pkey k, const char *v, char *why,
    size_t whylen)
{
	const char *kn = key_names[k];
	struct tca_name_rule *nr;
	char shown[80], gwhy[160];
	unsigned int u;
	size_t i;
	int b;

	tca_sanitize((const unsigned char *)v, strlen(v), shown, sizeof(shown));
	switch (k) {
	case K_DEVICE_ID_PATTERN:
		if (strlen(v) > TCA_GLOB_MAX) {
			tca_setf(why, whylen, "%s: longer than %d bytes", kn, TCA_GLOB_MAX);
			return TCA_ERR_BAD_REQUEST;
		}
		if (tca_glob_valid(v, gwhy, sizeof(gwhy)) != TCA_OK) {
			tca_setf(why, whylen, "%s: %s", kn, gwhy);
			return TCA_ERR_BAD_REQUEST;
		}
		snprintf(tp->device_id_pattern, sizeof(tp->device_id_pattern), "%s", v);
		return TCA_OK;
	case K_KEY_TYPES:
		if (*v == '\0') {
			tp->key_types = 0;
			return TCA_OK;
		}
		return set_key_types(&tp->key_types, v, kn, why, whylen);
	case K_MAX_DAYS:
		if (*v == '\0') {
			tp->max_days = 0;
			return TCA_OK;
		}
		if (!parse_uint(v, 1, TCA_POLICY_MAX_DAYS, 1, &u)) {
			tca_setf(why, whylen, "%s: \"%s\" is not a number of days "
			    "(1..%u, 0 for the global validity)", kn, shown,
			    TCA_POLICY_MAX_DAYS);
			return TCA_ERR_BAD_REQUEST;
		}
		tp->max_days = u;
		return TCA_OK;
	case K_RSA_MIN_BITS:
		if (*v == '\0') {
			tp->rsa_min_bits = 0;
			return TCA_OK;
		}
		if (!parse_uint(v, TCA_POLICY_RSA_FLOOR, TCA_POLICY_RSA_CEIL, 1, &u)) {
			tca_setf(why, whylen, "%s: \"%s\" is not a number of bits in "
			    "%u..%u (a tenant can only raise the global minimum; 0 "
			    "for the global minimum)", kn, shown, TCA_POLICY_RSA_FLOOR,
			    TCA_POLICY_RSA_CEIL);
			return TCA_ERR_BAD_REQUEST;
		}
		tp->rsa_min_bits = u;
		return TCA_OK;
	case K_O:
	case K_OU:
		nr = k == K_O ? &tp->o : &tp->ou;
		if (*v == '\0') {
			/* the values only: *_required is a key of its own */
			nr->n = 0;
			memset(nr->allowed, 0, sizeof(nr->allowed));
			return TCA_OK;
		}
		return set_values(nr, v, kn, why, whylen);
	case K_O_REQUIRED:
	case K_OU_REQUIRED:
	case K_SUSPENDED:
		if (*v == '\0')
			b = 0;
		else if (!parse_bool(v, &b)) {
			tca_setf(why, whylen, "%s: \"%s\" is not true or false", kn,
			    shown);
			return TCA_ERR_BAD_REQUEST;
		}
		if (k == K_O_REQUIRED)
			tp->o.required = b;
		else if (k == K_OU_REQUIRED)
			tp->ou.required = b;
		else
			tp->suspended = b;
		return TCA_OK;
	case K_SAN:
		if (*v == '\0') {
			tp->san = TCA_SAN_URI;
			return TCA_OK;
		}
		for (i = 0; i < sizeof(san_names) / sizeof(san_names[0]); i++) {
			if (strcmp(v, san_names[i]) == 0) {
				tp->san = (enum tca_san_form)i;
				return TCA_OK;
			}
		}
		tca_setf(why, whylen, "%s: \"%s\" is not uri, dns or none", kn, shown);
		return TCA_ERR_BAD_REQUEST;
	case K_REGISTRATION:
		if (*v == '\0') {
			tp->registration = TCA_REG_GLOBAL;
			return TCA_OK;
		}
		for (i = 1; i < sizeof(reg_names) / sizeof(reg_names[0]); i++) {
			if (strcmp(v, reg_names[i]) == 0) {
				tp->registration = (enum tca_registration)i;
				return TCA_OK;
			}
		}
		tca_setf(why, whylen, "%s: \"%s\" is not required or none", kn, shown);
		return TCA_ERR_BAD_REQUEST;
	case K_COUNT:
		break;
	}
	return TCA_ERR_INTERNAL;
}

/* The key of "key=value" (NUL-terminated assignment a); *k_ptr and the
 * value's start, or TCA_ERR_BAD_REQUEST naming the fault (where, e.g.
 * "line 3", prefixes a reason that has no key to name). */
static int
split_assignment(const char *a, enum pkey *k_ptr, const char **val_ptr,
    const char *where, char *why, size_t whylen)
{
	const char *eq = strchr(a, '=');
	char shown[80];
	size_t klen, i;

	if (eq == NULL) {
		tca_sanitize((const unsigned char *)a, strlen(a), shown, sizeof(shown));
		tca_setf(why, whylen, "%s: \"%s\" is not key=value", where, shown);
		return TCA_ERR_BAD_REQUEST;
	}
	klen = (size_t)(eq - a);
	for (i = 0; i < K_COUNT; i++) {
		if (strlen(key_names[i]) == klen &&
		    memcmp(key_names[i], a, klen) == 0) {
			*k_ptr = (enum pkey)i;
			*val_ptr = eq + 1;
			return TCA_OK;
		}
	}
	tca_sanitize((const unsigned char *)a, klen, shown, sizeof(shown));
	if (klen == 0)
		tca_setf(why, whylen, "%s: empty key before '='", where);
	else
		tca_setf(why, whylen, "%s: unknown key (device_id_pattern, "
		    "key_types, max_days, o, o_required, ou, ou_required, "
		    "registration, rsa_min_bits, san, suspended)", shown);
	return TCA_ERR_BAD_REQUEST;
}

int
tca_tenant_policy_set(struct tca_tenant_policy *tp, const char *assignment,
    char *why, size_t whylen)
{
	struct tca_tenant_policy tmp;
	const char *v;
	enum pkey k;
	int r;

	if (tp == NULL || assignment == NULL)
		return TCA_ERR_INVALID_ARG;
	if ((r = split_assignment(assignment, &k, &v, "assignment", why,
	    whylen)) != TCA_OK)
		return r;
	tmp = *tp;
	if ((r = set_one(&tmp, k, v, why, whylen)) != TCA_OK)
		return r;
	*tp = tmp;
	return TCA_OK;
}

int
tca_tenant_policy_parse(const char *text, struct tca_tenant_policy *tp,
    char *why, size_t whylen)
{
	struct tca_tenant_policy tmp;
	const char *p, *nl, *v;
	char where[32];
	unsigned int seen = 0, lineno = 0;
	size_t len;
	enum pkey k;
	int r = TCA_ERR_INTERNAL;

	if (tp != NULL)
		tca_tenant_policy_defaults(tp);
	if (text == NULL || tp == NULL)
		return TCA_ERR_INVALID_ARG;
	tca_tenant_policy_defaults(&tmp);
	for (p = text; *p != '\0'; p = nl != NULL ? nl + 1 : p + len) {
		char buf[TCA_TENANT_POLICY_TEXT_MAX];

		lineno++;
		snprintf(where, sizeof(where), "line %u", lineno);
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len == 0) {
			tca_setf(why, whylen, "%s: empty line", where);
			return TCA_ERR_BAD_REQUEST;
		}
		if (len >= sizeof(buf)) {
			tca_setf(why, whylen, "%s: longer than %zu bytes", where,
			    sizeof(buf) - 1);
			return TCA_ERR_BAD_REQUEST;
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		if ((r = split_assignment(buf, &k, &v, where, why, whylen)) != TCA_OK)
			return r;
		if (seen & (1u << k)) {
			tca_setf(why, whylen, "%s: given twice (%s)", key_names[k],
			    where);
			return TCA_ERR_BAD_REQUEST;
		}
		seen |= 1u << k;
		if ((r = set_one(&tmp, k, v, why, whylen)) != TCA_OK)
			return r;
	}
	*tp = tmp;
	return TCA_OK;
}

/* ------------------------------------------------------------ output */

/* A bounded string builder; overflow is sticky. */
struct sbuf {
	char *p;
	size_t cap, len;
	int overflow;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->cap - sb->len) {
		sb->overflow = 1;
		sb->p[sb->len] = '\0';
		return;
	}
	sb->len += (size_t)n;
}

/* A JSON string: '"', '\' and control characters escaped; the policy's
 * strings are valid UTF-8 (set refuses anything else). */
static void
sb_json_str(struct sbuf *sb, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	sb_printf(sb, "\"");
	for (; *u != '\0'; u++) {
		if (*u == '"' || *u == '\\')
			sb_printf(sb, "\\%c", *u);
		else if (*u < 0x20 || *u == 0x7f)
			sb_printf(sb, "\\u%04x", *u);
		else
			sb_printf(sb, "%c", *u);
	}
	sb_printf(sb, "\"");
}

static int
sb_init(struct sbuf *sb, char *out, size_t outsz)
{
	if (out == NULL || outsz == 0)
		return 0;
	sb->p = out;
	sb->cap = outsz;
	sb->len = 0;
	sb->overflow = 0;
	out[0] = '\0';
	return 1;
}

static void
key_types_list(struct sbuf *sb, unsigned int mask, const char *sep, int quote)
{
	size_t i;
	int first = 1;

	for (i = 0; i < N_DEVKEYS; i++) {
		if (!(mask & devkeys[i].bit))
			continue;
		sb_printf(sb, "%s%s%s%s", first ? "" : sep, quote ? "\"" : "",
		    devkeys[i].name, quote ? "\"" : "");
		first = 0;
	}
}

int
tca_tenant_policy_format(const struct tca_tenant_policy *tp, char *out, size_t outsz)
{
	struct sbuf sb;
	unsigned int i;

	if (tp == NULL || !sb_init(&sb, out, outsz) || !policy_sane(tp))
		return TCA_ERR_INVALID_ARG;
	/* in key order (key_names[]) */
	if (tp->device_id_pattern[0] != '\0')
		sb_printf(&sb, "device_id_pattern=%s\n", tp->device_id_pattern);
	if (tp->key_types != 0) {
		sb_printf(&sb, "key_types=");
		key_types_list(&sb, tp->key_types, ",", 0);
		sb_printf(&sb, "\n");
	}
	if (tp->max_days != 0)
		sb_printf(&sb, "max_days=%u\n", tp->max_days);
	if (tp->o.n > 0) {
		sb_printf(&sb, "o=");
		for (i = 0; i < tp->o.n; i++)
			sb_printf(&sb, "%s%s", i > 0 ? "|" : "", tp->o.allowed[i]);
		sb_printf(&sb, "\n");
	}
	if (tp->o.required)
		sb_printf(&sb, "o_required=true\n");
	if (tp->ou.n > 0) {
		sb_printf(&sb, "ou=");
		for (i = 0; i < tp->ou.n; i++)
			sb_printf(&sb, "%s%s", i > 0 ? "|" : "", tp->ou.allowed[i]);
		sb_printf(&sb, "\n");
	}
	if (tp->ou.required)
		sb_printf(&sb, "ou_required=true\n");
	if (tp->registration != TCA_REG_GLOBAL)
		sb_printf(&sb, "registration=%s\n", reg_names[tp->registration]);
	if (tp->rsa_min_bits != 0)
		sb_printf(&sb, "rsa_min_bits=%u\n", tp->rsa_min_bits);
	if (tp->san != TCA_SAN_URI)
		sb_printf(&sb, "san=%s\n", san_names[tp->san]);
	if (tp->suspended)
		sb_printf(&sb, "suspended=true\n");
	if (sb.overflow) {
		out[0] = '\0';
		return TCA_ERR_INVALID_ARG;
	}
	return TCA_OK;
}

static void
json_values(struct sbuf *sb, const char *key, const struct tca_name_rule *nr)
{
	unsigned int i;

	sb_printf(sb, ",\"%s\":", key);
	if (nr->n == 0) {
		sb_printf(sb, "null");
	} else {
		sb_printf(sb, "[");
		for (i = 0; i < nr->n; i++) {
			if (i > 0)
				sb_printf(sb, ",");
			sb_json_str(sb, nr->allowed[i]);
		}
		sb_printf(sb, "]");
	}
	sb_printf(sb, ",\"%s_required\":%s", key, nr->required ? "true" : "false");
}

int
tca_tenant_policy_json(const struct tca_tenant_policy *tp, char *out, size_t outsz)
{
	struct sbuf sb;

	if (tp == NULL || !sb_init(&sb, out, outsz) || !policy_sane(tp))
		return TCA_ERR_INVALID_ARG;
	sb_printf(&sb, "{\"device_id_pattern\":");
	if (tp->device_id_pattern[0] == '\0')
		sb_printf(&sb, "null");
	else
		sb_json_str(&sb, tp->device_id_pattern);
	sb_printf(&sb, ",\"key_types\":");
	if (tp->key_types == 0) {
		sb_printf(&sb, "null");
	} else {
		sb_printf(&sb, "[");
		key_types_list(&sb, tp->key_types, ",", 1);
		sb_printf(&sb, "]");
	}
	if (tp->max_days == 0)
		sb_printf(&sb, ",\"max_days\":null");
	else
		sb_printf(&sb, ",\"max_days\":%u", tp->max_days);
	json_values(&sb, "o", &tp->o);
	json_values(&sb, "ou", &tp->ou);
	if (tp->registration == TCA_REG_GLOBAL)
		sb_printf(&sb, ",\"registration\":null");
	else
		sb_printf(&sb, ",\"registration\":\"%s\"", reg_names[tp->registration]);
	if (tp->rsa_min_bits == 0)
		sb_printf(&sb, ",\"rsa_min_bits\":null");
	else
		sb_printf(&sb, ",\"rsa_min_bits\":%u", tp->rsa_min_bits);
	sb_printf(&sb, ",\"san\":\"%s\",\"suspended\":%s}", san_names[tp->san],
	    tp->suspended ? "true" : "false");
	if (sb.overflow) {
		out[0] = '\0';
		return TCA_ERR_INVALID_ARG;
	}
	return TCA_OK;
}

/* ------------------------------------------------------------ check */

static void
set_rule(char *rule, size_t rulelen, const char *name)
{
	if (rule != NULL && rulelen > 0)
		snprintf(rule, rulelen, "%s", name);
}

/* The TCA_DEVKEY_* bit of the CSR's key, or 0 for a type outside them. */
static unsigned int
devkey_of(EVP_PKEY *pkey)
{
	const struct tca_key_desc *kd;
	char group[80];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		return TCA_DEVKEY_RSA;
	case EVP_PKEY_ED25519:
		return TCA_DEVKEY_ED25519;
	case EVP_PKEY_EC:
		memset(group, 0, sizeof(group));
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen) != 1) {
			ERR_clear_error();
			return 0;
		}
		kd = tca_key_desc(TCA_KEY_EC_P256);
		if (kd != NULL && (strcmp(group, kd->group) == 0 ||
		    strcmp(group, kd->nist_name) == 0))
			return TCA_DEVKEY_EC_P256;
		kd = tca_key_desc(TCA_KEY_EC_P384);
		if (kd != NULL && (strcmp(group, kd->group) == 0 ||
		    strcmp(group, kd->nist_name) == 0))
			return TCA_DEVKEY_EC_P384;
		return 0;
	default:
		return 0;
	}
}

static const char *
devkey_name(unsigned int bit)
{
	size_t i;

	for (i = 0; i < N_DEVKEYS; i++)
		if (devkeys[i].bit == bit)
			return devkeys[i].name;
	return "other";
}

static int
value_allowed(const struct tca_name_rule *nr, const unsigned char *v, size_t len)
{
	unsigned int i;

	for (i = 0; i < nr->n; i++)
		if (strlen(nr->allowed[i]) == len && memcmp(nr->allowed[i], v, len) == 0)
			return 1;
	return 0;
}

/* The O (nid NID_organizationName) or OU values of the subject against nr:
 * rule_name ("o") if one is not allowed, rule_name_required ("o_required")
 * if none is present and one must be. */
static int
check_name_rule(const X509_NAME *subj, int nid, const char *label,
    const struct tca_name_rule *nr, const char *rule_name, const char *req_name,
    const char **rule_ptr, char *why, size_t whylen)
{
	const X509_NAME_ENTRY *ne;
	unsigned char *utf8 = NULL;
	char shown[80];
	int i, n, ulen, count = 0, r = TCA_ERR_INTERNAL;

	n = subj != NULL ? X509_NAME_entry_count(subj) : 0;
	for (i = 0; i < n; i++) {
		ne = X509_NAME_get_entry(subj, i);
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne)) != nid)
			continue;
		count++;
		if (nr->n == 0)
			continue;
		OPENSSL_free(utf8);
		utf8 = NULL;
		if ((ulen = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne))) < 0) {
			ERR_clear_error();
			*rule_ptr = rule_name;
			tca_setf(why, whylen, "%s: CSR subject %s is not a valid string",
			    rule_name, label);
			r = TCA_ERR_BAD_REQUEST;
			goto out;
		}
		if (!value_allowed(nr, utf8, (size_t)ulen)) {
			tca_sanitize(utf8, (size_t)ulen, shown, sizeof(shown));
			*rule_ptr = rule_name;
			tca_setf(why, whylen, "%s: CSR subject %s \"%s\" is not one of "
			    "the tenant's allowed values", rule_name, label, shown);
			r = TCA_ERR_POLICY_VIOLATION;
			goto out;
		}
	}
	if (nr->required && count == 0) {
		*rule_ptr = req_name;
		tca_setf(why, whylen, "%s: the tenant requires an %s in the CSR "
		    "subject, and it has none", req_name, label);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	r = TCA_OK;
 out:
	OPENSSL_free(utf8);
	return r;
}

int
tca_tenant_policy_check(const struct tca_tenant_policy *tp,
    const struct tca_policy_ceiling *ceil, const tca_csr *csr, const char *device_id,
    unsigned int *days_ptr, char *rule, size_t rulelen, char *why, size_t whylen)
{
	const char *refused = "";
	char allowed[64], dev[80], pat[160];
	unsigned int kt, min_bits, cap, days;
	int bits, r = TCA_ERR_INTERNAL;

	set_rule(rule, rulelen, "");
	if (tp == NULL || ceil == NULL || csr == NULL || device_id == NULL ||
	    days_ptr == NULL || ceil->max_days == 0 || !policy_sane(tp))
		return TCA_ERR_INVALID_ARG;
	if (csr->pkey == NULL)
		return TCA_ERR_INVALID_ARG;	/* tca_csr_check did not accept it */
	tca_sanitize((const unsigned char *)device_id, strlen(device_id), dev,
	    sizeof(dev));

	if (tp->suspended) {
		refused = "suspended";
		tca_setf(why, whylen, "suspended: the tenant is suspended and "
		    "issues no certificates");
		r = TCA_ERR_TENANT_SUSPENDED;
		goto out;
	}
	kt = devkey_of(csr->pkey);
	if (tp->key_types != 0 && (kt & tp->key_types) == 0) {
		struct sbuf sb;

		sb_init(&sb, allowed, sizeof(allowed));
		key_types_list(&sb, tp->key_types, ", ", 0);
		refused = "key_types";
		tca_setf(why, whylen, "key_types: %s key not allowed by the tenant "
		    "(allowed: %s)", devkey_name(kt), allowed);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if (kt == TCA_DEVKEY_RSA) {
		min_bits = ceil->rsa_min_bits != 0 ? ceil->rsa_min_bits :
		    TCA_POLICY_RSA_FLOOR;
		if (tp->rsa_min_bits > min_bits)
			min_bits = tp->rsa_min_bits;
		bits = EVP_PKEY_get_bits(csr->pkey);
		if (bits < 0 || (unsigned int)bits < min_bits) {
			refused = "rsa_min_bits";
			tca_setf(why, whylen, "rsa_min_bits: RSA key of %d bits is "
			    "below the tenant's minimum of %u bits", bits, min_bits);
			r = TCA_ERR_POLICY_VIOLATION;
			goto out;
		}
	}
	if ((r = check_name_rule(csr->subject, NID_organizationName, "O", &tp->o,
	    "o", "o_required", &refused, why, whylen)) != TCA_OK ||
	    (r = check_name_rule(csr->subject, NID_organizationalUnitName, "OU",
	    &tp->ou, "ou", "ou_required", &refused, why, whylen)) != TCA_OK)
		goto out;
	if (tp->device_id_pattern[0] != '\0' &&
	    tca_glob_match(tp->device_id_pattern, device_id) != 1) {
		tca_sanitize((const unsigned char *)tp->device_id_pattern,
		    strlen(tp->device_id_pattern), pat, sizeof(pat));
		refused = "device_id_pattern";
		tca_setf(why, whylen, "device_id_pattern: device id \"%s\" does not "
		    "match the tenant's pattern \"%s\"", dev, pat);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}
	if (tp->san == TCA_SAN_DNS && !tca_dns_name_valid(device_id)) {
		refused = "san";
		tca_setf(why, whylen, "san: device id \"%s\" is not a DNS host name, "
		    "and the tenant's certificates name the device by one (san=dns)",
		    dev);
		r = TCA_ERR_POLICY_VIOLATION;
		goto out;
	}

	cap = ceil->max_days;
	if (tp->max_days != 0 && tp->max_days < cap)
		cap = tp->max_days;
	days = *days_ptr == 0 || *days_ptr > cap ? cap : *days_ptr;
	*days_ptr = days;
	r = TCA_OK;
 out:
	set_rule(rule, rulelen, refused);
	return r;
}

/* ------------------------------------------------------------ CsrAttrs */

static const unsigned char oid_ec_public_key[] = {
	0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01	/* 1.2.840.10045.2.1 */
};
static const unsigned char oid_secp256r1[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07	/* 1.2.840.10045.3.1.7 */
};
static const unsigned char oid_secp384r1[] = {
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22	/* 1.3.132.0.34 */
};
static const unsigned char oid_rsa_encryption[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01	/* 1.2.840.113549.1.1.1 */
};
static const unsigned char oid_ed25519[] = {
	0x06, 0x03, 0x2b, 0x65, 0x70	/* 1.3.101.112 */
};
static const unsigned char oid_ecdsa_sha256[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02	/* 1.2.840.10045.4.3.2 */
};
static const unsigned char oid_ecdsa_sha384[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03	/* 1.2.840.10045.4.3.3 */
};
static const unsigned char oid_sha256_rsa[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b	/* 1.2.840.113549.1.1.11 */
};
static const unsigned char oid_common_name[] = { 0x06, 0x03, 0x55, 0x04, 0x03 };
static const unsigned char oid_org_name[] = { 0x06, 0x03, 0x55, 0x04, 0x0a };
static const unsigned char oid_org_unit_name[] = { 0x06, 0x03, 0x55, 0x04, 0x0b };

#define CSRATTRS_MAX	1024	/* the largest policy needs about 300 bytes */

/* Attribute ::= SEQUENCE { type OID, values SET { value } } */
static int
put_attr(unsigned char *buf, size_t cap, size_t *pos, const unsigned char *oid,
    size_t oid_len, const unsigned char *val, size_t val_len)
{
	size_t set_len = tca_der_hdr_len(val_len) + val_len;

	if (tca_der_put_hdr(buf, cap, pos, 0x30, oid_len + set_len) != TCA_OK ||
	    tca_der_put(buf, cap, pos, oid, oid_len) != TCA_OK ||
	    tca_der_put_hdr(buf, cap, pos, 0x31, val_len) != TCA_OK ||
	    tca_der_put(buf, cap, pos, val, val_len) != TCA_OK)
		return TCA_ERR_INTERNAL;
	return TCA_OK;
}

/* INTEGER n (positive, minimal) into out (>= 7 bytes); its length. */
static size_t
der_uint(unsigned int n, unsigned char *out)
{
	unsigned char mag[5];
	size_t i = sizeof(mag), len;

	do {
		mag[--i] = (unsigned char)(n & 0xff);
		n >>= 8;
	} while (n != 0);
	if (mag[i] & 0x80)
		mag[--i] = 0x00;
	len = sizeof(mag) - i;
	out[0] = 0x02;
	out[1] = (unsigned char)len;
	memcpy(out + 2, mag + i, len);
	return 2 + len;
}

/* A required O or OU: the attribute with its one allowed value, else the
 * bare OID. */
static int
put_name_rule(unsigned char *buf, size_t cap, size_t *pos,
    const struct tca_name_rule *nr, const unsigned char *oid, size_t oid_len)
{
	unsigned char val[2 + TCA_POLICY_VALUE_MAX];
	size_t len;

	if (!nr->required)
		return TCA_OK;
	if (nr->n != 1)
		return tca_der_put(buf, cap, pos, oid, oid_len);
	len = strlen(nr->allowed[0]);
	val[0] = 0x0c;	/* UTF8String */
	val[1] = (unsigned char)len;
	memcpy(val + 2, nr->allowed[0], len);
	return put_attr(buf, cap, pos, oid, oid_len, val, 2 + len);
}

int
tca_tenant_policy_csrattrs(const struct tca_tenant_policy *tp,
    unsigned char **der_ptr, size_t *len_ptr)
{
	unsigned char body[CSRATTRS_MAX], intbuf[8], *der = NULL;
	const unsigned char *sig = NULL;
	size_t pos = 0, total, out = 0, sig_len = 0, il;
	unsigned int kt, ec;
	int r = TCA_ERR_INTERNAL;

	if (der_ptr != NULL)
		*der_ptr = NULL;
	if (len_ptr != NULL)
		*len_ptr = 0;
	if (tp == NULL || der_ptr == NULL || len_ptr == NULL || !policy_sane(tp))
		return TCA_ERR_INVALID_ARG;

	kt = tp->key_types;
	if (kt == TCA_DEVKEY_ALL)
		kt = 0;		/* every type: no restriction to tell */
	ec = kt & (TCA_DEVKEY_EC_P256 | TCA_DEVKEY_EC_P384);
	if (ec == TCA_DEVKEY_EC_P256 || ec == TCA_DEVKEY_EC_P384) {
		if ((r = put_attr(body, sizeof(body), &pos, oid_ec_public_key,
		    sizeof(oid_ec_public_key),
		    ec == TCA_DEVKEY_EC_P256 ? oid_secp256r1 : oid_secp384r1,
		    ec == TCA_DEVKEY_EC_P256 ? sizeof(oid_secp256r1) :
		    sizeof(oid_secp384r1))) != TCA_OK)
			goto out;
	} else if (ec != 0 && (r = tca_der_put(body, sizeof(body), &pos,
	    oid_ec_public_key, sizeof(oid_ec_public_key))) != TCA_OK)
		goto out;
	if (kt & TCA_DEVKEY_RSA) {
		if (tp->rsa_min_bits != 0) {
			il = der_uint(tp->rsa_min_bits, intbuf);
			r = put_attr(body, sizeof(body), &pos, oid_rsa_encryption,
			    sizeof(oid_rsa_encryption), intbuf, il);
		} else
			r = tca_der_put(body, sizeof(body), &pos, oid_rsa_encryption,
			    sizeof(oid_rsa_encryption));
		if (r != TCA_OK)
			goto out;
	}
	if ((kt & TCA_DEVKEY_ED25519) && (r = tca_der_put(body, sizeof(body), &pos,
	    oid_ed25519, sizeof(oid_ed25519))) != TCA_OK)
		goto out;
	switch (kt) {
	case TCA_DEVKEY_EC_P256:
		sig = oid_ecdsa_sha256;
		sig_len = sizeof(oid_ecdsa_sha256);
		break;
	case TCA_DEVKEY_EC_P384:
		sig = oid_ecdsa_sha384;
		sig_len = sizeof(oid_ecdsa_sha384);
		break;
	case TCA_DEVKEY_RSA:
		sig = oid_sha256_rsa;
		sig_len = sizeof(oid_sha256_rsa);
		break;
	default:
		break;
	}
	if (sig != NULL && (r = tca_der_put(body, sizeof(body), &pos, sig,
	    sig_len)) != TCA_OK)
		goto out;
	if ((r = tca_der_put(body, sizeof(body), &pos, oid_common_name,
	    sizeof(oid_common_name))) != TCA_OK ||
	    (r = put_name_rule(body, sizeof(body), &pos, &tp->o, oid_org_name,
	    sizeof(oid_org_name))) != TCA_OK ||
	    (r = put_name_rule(body, sizeof(body), &pos, &tp->ou, oid_org_unit_name,
	    sizeof(oid_org_unit_name))) != TCA_OK)
		goto out;

	total = tca_der_hdr_len(pos) + pos;
	if ((der = OPENSSL_malloc(total)) == NULL) {
		r = TCA_ERR_NOMEM;
		goto out;
	}
	if ((r = tca_der_put_hdr(der, total, &out, 0x30, pos)) != TCA_OK ||
	    (r = tca_der_put(der, total, &out, body, pos)) != TCA_OK ||
	    out != total) {
		r = TCA_ERR_INTERNAL;
		goto out;
	}
	*der_ptr = der;
	*len_ptr = total;
	der = NULL;
	r = TCA_OK;
 out:
	OPENSSL_free(der);
	return r;
}

/* ------------------------------------------------------------ glob */

enum gkind { G_LIT, G_ANY, G_STAR, G_CLASS };

struct gtok {
	unsigned char kind;
	unsigned char neg;	/* G_CLASS: '!' */
	uint32_t c;		/* G_LIT: the character */
	size_t off, len;	/* G_CLASS: the members, pattern[off..off+len) */
};

#define NOT_UTF8	0x110000u	/* + byte: a byte that is not UTF-8 */

/* The character at s[*i] (within n bytes); *i moves past it. */
static uint32_t
next_char(const unsigned char *s, size_t n, size_t *i)
{
	size_t l = tca_utf8_seq_len(s + *i, n - *i);
	uint32_t c;

	if (l == 0)
		return NOT_UTF8 + s[(*i)++];
	c = s[*i];
	if (l == 2)
		c = ((c & 0x1fu) << 6) | (s[*i + 1] & 0x3fu);
	else if (l == 3)
		c = ((c & 0x0fu) << 12) | ((s[*i + 1] & 0x3fu) << 6) |
		    (s[*i + 2] & 0x3fu);
	else if (l == 4)
		c = ((c & 0x07u) << 18) | ((s[*i + 1] & 0x3fu) << 12) |
		    ((s[*i + 2] & 0x3fu) << 6) | (s[*i + 3] & 0x3fu);
	*i += l;
	return c;
}

/*
 * One class body p[0..n) (after '[' and '!', before the closing ']'): calls
 * in every member character or range.  With c != NULL, returns 1 if *c is a
 * member.  With c == NULL, checks the syntax: 0, or the 1-based offset
 * within the body of a reversed range (its first character).
 */
static size_t
class_scan(const unsigned char *p, size_t n, const uint32_t *c, int *member)
{
	size_t i = 0, at;
	uint32_t lo, hi;

	*member = 0;
	while (i < n) {
		at = i;
		if (p[i] == '\\')
			i++;
		lo = next_char(p, n, &i);
		hi = lo;
		if (i + 1 < n && p[i] == '-') {
			i++;
			if (p[i] == '\\')
				i++;
			hi = next_char(p, n, &i);
			if (hi < lo && c == NULL)
				return at + 1;
		}
		if (c != NULL && *c >= lo && *c <= hi) {
			*member = 1;
			return 0;
		}
	}
	return 0;
}

/* Compiles pattern into toks (capacity TCA_GLOB_MAX); *n_ptr tokens.
 * TCA_ERR_BAD_REQUEST with the position of a fault. */
static int
glob_compile(const char *pattern, struct gtok *toks, size_t *n_ptr, char *why,
    size_t whylen)
{
	const unsigned char *p = (const unsigned char *)pattern;
	size_t n = strlen(pattern), i = 0, nt = 0, start, j, bad;
	int member;

	if (n > TCA_GLOB_MAX) {
		tca_setf(why, whylen, "pattern is longer than %d bytes", TCA_GLOB_MAX);
		return TCA_ERR_BAD_REQUEST;
	}
	for (j = 0; j < n; j++) {
		if (p[j] < 0x20 || p[j] == 0x7f) {
			tca_setf(why, whylen, "control character at position %zu", j + 1);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	for (j = 0; j < n; j += tca_utf8_seq_len(p + j, n - j)) {
		if (tca_utf8_seq_len(p + j, n - j) == 0) {
			tca_setf(why, whylen, "invalid UTF-8 at position %zu", j + 1);
			return TCA_ERR_BAD_REQUEST;
		}
	}
	while (i < n) {
		struct gtok *t = &toks[nt];

		memset(t, 0, sizeof(*t));
		start = i;
		switch (p[i]) {
		case '?':
			t->kind = G_ANY;
			i++;
			break;
		case '*':
			i++;
			if (nt > 0 && toks[nt - 1].kind == G_STAR)
				continue;	/* "**" is "*" */
			t->kind = G_STAR;
			break;
		case '\\':
			if (i + 1 >= n) {
				tca_setf(why, whylen, "'\\' at position %zu escapes "
				    "nothing", i + 1);
				return TCA_ERR_BAD_REQUEST;
			}
			i++;
			t->kind = G_LIT;
			t->c = next_char(p, n, &i);
			break;
		case '[':
			t->kind = G_CLASS;
			i++;
			if (i < n && p[i] == '!') {
				t->neg = 1;
				i++;
			}
			t->off = i;
			/* ']' first is a member */
			if (i < n && p[i] == ']')
				i++;
			while (i < n && p[i] != ']') {
				if (p[i] == '\\') {
					if (i + 1 >= n) {
						i = n;	/* "[a\" */
						break;
					}
					i++;
				}
				(void)next_char(p, n, &i);
			}
			if (i >= n) {
				tca_setf(why, whylen, "unterminated '[' at position %zu",
				    start + 1);
				return TCA_ERR_BAD_REQUEST;
			}
			t->len = i - t->off;
			if ((bad = class_scan(p + t->off, t->len, NULL, &member)) != 0) {
				tca_setf(why, whylen, "reversed range in '[' at position "
				    "%zu", t->off + bad);
				return TCA_ERR_BAD_REQUEST;
			}
			i++;	/* ']' */
			break;
		default:
			t->kind = G_LIT;
			t->c = next_char(p, n, &i);
			break;
		}
		nt++;
	}
	*n_ptr = nt;
	return TCA_OK;
}

int
tca_glob_valid(const char *pattern, char *why, size_t whylen)
{
	struct gtok toks[TCA_GLOB_MAX];
	size_t nt;

	if (pattern == NULL)
		return TCA_ERR_INVALID_ARG;
	return glob_compile(pattern, toks, &nt, why, whylen);
}

int
tca_glob_match_counted(const char *pattern, const char *s, unsigned long *steps)
{
	struct gtok toks[TCA_GLOB_MAX];
	unsigned char cur[TCA_GLOB_MAX + 1], nxt[TCA_GLOB_MAX + 1];
	const unsigned char *u = (const unsigned char *)s;
	unsigned long count = 0;
	size_t nt, i, pos = 0, slen;
	uint32_t c;
	int member, any;

	if (steps != NULL)
		*steps = 0;
	if (pattern == NULL || s == NULL ||
	    glob_compile(pattern, toks, &nt, NULL, 0) != TCA_OK)
		return TCA_ERR_INVALID_ARG;
	slen = strlen(s);

	/* cur[i]: the tokens before i have matched the characters so far;
	 * a '*' at i may also match nothing, so i + 1 follows i. */
	memset(cur, 0, sizeof(cur));
	cur[0] = 1;
	for (i = 0; i < nt; i++)
		if (cur[i] && toks[i].kind == G_STAR)
			cur[i + 1] = 1;
	while (pos < slen) {
		c = next_char(u, slen, &pos);
		memset(nxt, 0, nt + 1);
		any = 0;
		for (i = 0; i < nt; i++) {
			count++;
			if (!cur[i])
				continue;
			switch (toks[i].kind) {
			case G_STAR:
				nxt[i] = 1;
				break;
			case G_ANY:
				nxt[i + 1] = 1;
				break;
			case G_LIT:
				if (toks[i].c == c)
					nxt[i + 1] = 1;
				break;
			case G_CLASS:
				(void)class_scan((const unsigned char *)pattern +
				    toks[i].off, toks[i].len, &c, &member);
				if (member != toks[i].neg)
					nxt[i + 1] = 1;
				break;
			}
		}
		count++;	/* position nt: consumes nothing */
		for (i = 0; i <= nt; i++) {
			if (nxt[i] && i < nt && toks[i].kind == G_STAR)
				nxt[i + 1] = 1;
			any |= nxt[i];
		}
		memcpy(cur, nxt, nt + 1);
		if (!any)
			break;
	}
	if (steps != NULL)
		*steps = count;
	return pos >= slen && cur[nt] ? 1 : 0;
}

int
tca_glob_match(const char *pattern, const char *s)
{
	return tca_glob_match_counted(pattern, s, NULL);
}

/* ------------------------------------------------------------ DNS names */

int
tca_dns_name_valid(const char *s)
{
	size_t i, len, label = 0;
	int digits_only = 1;
	unsigned char c;

	if (s == NULL || (len = strlen(s)) == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		c = (unsigned char)s[i];
		if (c == '.' || c == '\0') {
			/* label s[i - label .. i) */
			if (label == 0 || label > 63 || s[i - label] == '-' ||
			    s[i - 1] == '-')
				return 0;
			if (c == '\0')
				break;
			label = 0;
			digits_only = 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c < '0' || c > '9')
			digits_only = 0;
		label++;
	}
	return !digits_only;
}
