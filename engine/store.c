/*
 * store.c - opening a state store by URI: which backend a URI names, and the
 * URI with its password hidden for messages.  The backends themselves are
 * store-sqlite.c and (built with libpq) store-postgresql.c; store.h says
 * which URI forms each takes.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "store-sqlite.h"
#if HAVE_LIBPQ
#include "store-postgresql.h"
#endif
#include "tca-error.h"
#include "text.h"

#define SQLITE_PREFIX "sqlite:"
#define STORE_FORMS "sqlite:PATH, a file path, postgresql://..., " \
	"postgres://... or a libpq key=value string"

/* Length of uri's "scheme:" prefix (RFC 3986 scheme, colon included), or 0
 * if it has none.  A path starting with '/' or '.' never has one. */
static size_t
scheme_len(const char *uri)
{
	size_t i;

	if (!isalpha((unsigned char)uri[0]))
		return 0;
	for (i = 1; uri[i] != '\0'; i++) {
		if (uri[i] == ':')
			return i + 1;
		if (!isalnum((unsigned char)uri[i]) && uri[i] != '+' &&
		    uri[i] != '-' && uri[i] != '.')
			return 0;
	}
	return 0;
}

static int
is_pg_url(const char *uri)
{
	return strncmp(uri, "postgresql://", 13) == 0 ||
	    strncmp(uri, "postgres://", 11) == 0;
}

const char *
tca_store_uri_backend(const char *uri, const char **path_ptr)
{
	size_t n;

	if (path_ptr != NULL)
		*path_ptr = NULL;
	if (uri == NULL || *uri == '\0')
		return NULL;
	if (strncmp(uri, SQLITE_PREFIX, strlen(SQLITE_PREFIX)) == 0) {
		if (path_ptr != NULL)
			*path_ptr = uri + strlen(SQLITE_PREFIX);
		return "sqlite";
	}
	if (is_pg_url(uri))
		return "postgresql";
	if ((n = scheme_len(uri)) > 0)
		return NULL;
	if (strchr(uri, '=') != NULL)
		return "postgresql";	/* libpq key=value */
	if (path_ptr != NULL)
		*path_ptr = uri;
	return "sqlite";
}

/* Bounded appender: out always NUL-terminated, the rest dropped. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void
put(struct sbuf *b, const char *s, size_t n)
{
	size_t room;

	if (b->cap == 0)
		return;
	room = b->cap - 1 - b->len;
	if (n > room)
		n = room;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
redact_url(const char *uri, struct sbuf *b)
{
	const char *auth, *q, *at = NULL, *colon, *p, *end;

	auth = strstr(uri, "://") + 3;
	q = auth + strcspn(auth, "?#");
	/* userinfo ends at the last '@' before the query: a password with a
	 * raw '/' or '@' in it is still hidden (over-hiding is safe) */
	for (p = auth; p < q; p++)
		if (*p == '@')
			at = p;
	if (at != NULL && (colon = memchr(auth, ':', (size_t)(at - auth))) != NULL) {
		put(b, uri, (size_t)(colon + 1 - uri));
		put(b, "***", 3);
		put(b, at, (size_t)(q - at));
	} else
		put(b, uri, (size_t)(q - uri));
	if (*q != '?') {
		put(b, q, strlen(q));
		return;
	}
	/* query parameters: hide the value of password= */
	p = q;
	while (*p == '?' || *p == '&') {
		put(b, p, 1);
		p++;
		end = p + strcspn(p, "&#");
		if (strncmp(p, "password=", 9) == 0) {
			put(b, p, 9);
			put(b, "***", 3);
		} else
			put(b, p, (size_t)(end - p));
		p = end;
	}
	put(b, p, strlen(p));
}

/* libpq key=value: keys and values separated by optional blanks around '=',
 * values unquoted (to the next blank) or single-quoted; backslash escapes
 * either. */
static void
redact_kv(const char *s, struct sbuf *b)
{
	const char *p = s, *k, *v;
	size_t klen;

	while (*p != '\0') {
		if (isspace((unsigned char)*p)) {
			put(b, p++, 1);
			continue;
		}
		k = p;
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		klen = (size_t)(p - k);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {	/* not key=value: copy as is */
			put(b, k, (size_t)(p - k));
			continue;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		v = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\'')
				p++;
		} else {
			for (; *p != '\0' && !isspace((unsigned char)*p); p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
		}
		put(b, k, (size_t)(v - k));
		if (klen == 8 && strncmp(k, "password", 8) == 0)
			put(b, "***", 3);
		else
			put(b, v, (size_t)(p - v));
	}
}

void
tca_store_uri_redact(const char *uri, char *out, size_t outlen)
{
	struct sbuf b = { out, 0, outlen };

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (uri == NULL)
		return;
	if (scheme_len(uri) > 0 && strncmp(uri + scheme_len(uri) - 1, "://", 3) == 0)
		redact_url(uri, &b);	/* postgresql://, and any other scheme:// */
	else if (scheme_len(uri) == 0 && strchr(uri, '=') != NULL)
		redact_kv(uri, &b);
	else
		put(&b, uri, strlen(uri));
}

int
tca_store_open(const char *uri, int flags, tca_store **st_ptr, char *err,
    size_t errlen)
{
	char shown[512];
	const char *backend, *path;
	size_t n;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (st_ptr == NULL)
		return TCA_ERR_INVALID_ARG;
	*st_ptr = NULL;
	if (uri == NULL || *uri == '\0') {
		tca_setf(err, errlen, "no store given (accepted: %s)", STORE_FORMS);
		return TCA_ERR_CONFIG;
	}
	tca_store_uri_redact(uri, shown, sizeof(shown));
	if ((backend = tca_store_uri_backend(uri, &path)) == NULL) {
		n = scheme_len(uri);
		tca_setf(err, errlen, "store %s: unknown URI scheme \"%.*s\" "
		    "(accepted: %s; a file path with a ':' in its first part is "
		    "written sqlite:PATH)", shown, (int)(n > 0 ? n - 1 : 0), uri,
		    STORE_FORMS);
		return TCA_ERR_CONFIG;
	}
	if (strcmp(backend, "sqlite") == 0)
		return tca_store_open_sqlite(path, flags, st_ptr, err, errlen);
#if HAVE_LIBPQ
	return tca_store_open_postgresql(uri, flags, st_ptr, err, errlen);
#else
	tca_setf(err, errlen, "store %s: this build has no PostgreSQL support "
	    "(configure found no libpq); use a SQLite store (sqlite:PATH) or a "
	    "build with libpq", shown);
	return TCA_ERR_CONFIG;
#endif
}
