/* fileperm.c - owner and mode of every path the engine trusts (fileperm.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fileperm.h"
#include "tca-error.h"

#define MAX_SYMLINKS 40

struct fp {
	enum tca_fileperm_kind kind;
	uid_t uid;		/* the engine's */
	const char *path;	/* as configured: every message names it */
	char *err;
	size_t errlen;
};

static const char *
kind_name(enum tca_fileperm_kind kind)
{
	switch (kind) {
	case TCA_FILEPERM_CONFIG:
		return "configuration file";
	case TCA_FILEPERM_PROFILE:
		return "hsm-profile";
	case TCA_FILEPERM_PROGRAM:
		return "alert.command";
	case TCA_FILEPERM_MODULE:
		return "PKCS#11 module";
	case TCA_FILEPERM_SECRET:
		return "PIN file";
	case TCA_FILEPERM_SOCKET:
		return "socket.path";
	case TCA_FILEPERM_STORE:
		return "store";
	case TCA_FILEPERM_HELPER:
		return "token helper";
	}
	return "file";
}

/* "what path" and, when the culprit is another path (a directory on the
 * way, the file a symlink leads to), ": [role ]culprit" after it; then the
 * formatted rest.  Always TCA_ERR_CONFIG. */
static int
refuse(const struct fp *f, const char *role, const char *culprit, const char *fmt, ...)
{
	char rest[1024], subject[PATH_MAX + 32] = "";
	va_list ap;

	if (culprit != NULL && strcmp(culprit, f->path) != 0)
		snprintf(subject, sizeof(subject), ": %s%s%s", role != NULL ? role : "",
		    role != NULL ? " " : "", culprit);
	else if (culprit != NULL && role != NULL)
		snprintf(subject, sizeof(subject), " (%s)", role);
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if (f->err != NULL && f->errlen > 0)
		snprintf(f->err, f->errlen, "%s %s%s%s", kind_name(f->kind), f->path, subject, rest);
	return TCA_ERR_CONFIG;
}

static void
user_name(uid_t uid, char *out, size_t outsz)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(out, outsz, "%s", pw.pw_name);
	else
		snprintf(out, outsz, "%u", (unsigned int)uid);
}

static int
owner_ok(const struct fp *f, uid_t owner)
{
	return owner == f->uid || owner == 0;
}

static int
bad_owner(const struct fp *f, const char *role, const char *p, uid_t owner)
{
	char oname[64], ename[64], notby[160];

	user_name(owner, oname, sizeof(oname));
	user_name(f->uid, ename, sizeof(ename));
	if (f->uid == 0)
		snprintf(notby, sizeof(notby), "root");
	else
		snprintf(notby, sizeof(notby), "the engine's user %s (uid %u) or root", ename,
		    (unsigned int)f->uid);
	return refuse(f, role, p, " is owned by uid %u (%s), not by %s; fix: chown %s%s %s",
	    (unsigned int)owner, oname, notby, role != NULL && strcmp(role, "symlink") == 0 ?
	    "-h " : "", ename, p);
}

/* who may write besides the owner, and the chmod that stops it */
static void
writers(mode_t mode, const char **who, const char **bits)
{
	if ((mode & S_IWGRP) && (mode & S_IWOTH)) {
		*who = "group and others";
		*bits = "go-w";
	} else if (mode & S_IWGRP) {
		*who = "group";
		*bits = "g-w";
	} else {
		*who = "others";
		*bits = "o-w";
	}
}

/* group and/or others may write */
static int
bad_write(const struct fp *f, const char *role, const char *p, mode_t mode)
{
	const char *who, *bits;

	writers(mode, &who, &bits);
	return refuse(f, role, p, " is writable by %s (mode %04o); fix: chmod %s %s", who,
	    (unsigned int)(mode & 07777), bits, p);
}

/*
 * A directory the engine looks a name up in.  strict: the engine creates
 * files in it, so no group/other write at all; else group/other write is
 * tolerated with the sticky bit (others cannot rename or remove what is
 * ours; what we look up in it is checked for its owner in turn).
 */
static int
check_dir(const struct fp *f, const char *dir, int strict)
{
	const char *who, *bits;
	char ename[64];
	struct stat st;

	if (lstat(dir, &st) != 0)
		return refuse(f, "directory", dir, ": cannot stat: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return refuse(f, NULL, dir, " is not a directory");
	if (!owner_ok(f, st.st_uid))
		return bad_owner(f, "directory", dir, st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0)
		return TCA_OK;
	if (!strict && (st.st_mode & S_ISVTX) != 0)
		return TCA_OK;
	if (strict && (st.st_mode & S_ISVTX) != 0) {
		user_name(f->uid, ename, sizeof(ename));
		writers(st.st_mode, &who, &bits);
		return refuse(f, "directory", dir, " is writable by %s (mode %04o): the "
		    "engine creates files there and the sticky bit does not stop others from "
		    "taking their names first; fix: use a directory of its own that only %s%s "
		    "can write", who, (unsigned int)(st.st_mode & 07777), ename,
		    f->uid != 0 ? " (or root)" : "");
	}
	return bad_write(f, "directory", dir, st.st_mode);
}

/*
 * Resolves path (relative to the working directory) into out, component by
 * component, checking every directory a name is looked up in and the owner
 * of every symlink followed (a symlink is as good as the directory it is
 * in, and its owner could point it elsewhere).  A missing last component is
 * fine with missing_ok (*exists = 0, out is where it would be); with
 * missing_ok 2 a missing directory on the way too.
 */
static int
walk(const struct fp *f, const char *path, int missing_ok, char *out, size_t outsz,
    int *exists)
{
	char todo[2 * PATH_MAX + 2], tmp[2 * PATH_MAX + 2], cur[PATH_MAX], next[PATH_MAX];
	char target[PATH_MAX], comp[NAME_MAX + 1];
	const char *p, *rest;
	struct stat st;
	size_t len;
	ssize_t n;
	int links = 0, last;

	*exists = 1;
	if (path[0] == '/') {
		if (snprintf(todo, sizeof(todo), "%s", path) >= (int)sizeof(todo))
			return refuse(f, NULL, NULL, ": path too long");
	} else {
		if (getcwd(cur, sizeof(cur)) == NULL)
			return refuse(f, NULL, NULL, ": cannot get the working directory: %s",
			    strerror(errno));
		if (snprintf(todo, sizeof(todo), "%s/%s", cur, path) >= (int)sizeof(todo))
			return refuse(f, NULL, NULL, ": path too long");
	}
	cur[0] = '\0';		/* "" is / */
	p = todo;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, "/");
		if (len > NAME_MAX)
			return refuse(f, NULL, NULL, ": a path component is too long");
		memcpy(comp, p, len);
		comp[len] = '\0';
		for (rest = p + len; *rest == '/'; rest++)
			;
		last = *rest == '\0';
		p = rest;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *s = strrchr(cur, '/');

			if (s != NULL)
				*s = '\0';
			continue;
		}
		if (check_dir(f, cur[0] != '\0' ? cur : "/", 0) != TCA_OK)
			return TCA_ERR_CONFIG;
		if (snprintf(next, sizeof(next), "%s/%s", cur, comp) >= (int)sizeof(next))
			return refuse(f, NULL, NULL, ": path too long");
		if (lstat(next, &st) != 0) {
			if (errno == ENOENT && (last ? missing_ok : missing_ok > 1)) {
				*exists = 0;
				memcpy(cur, next, strlen(next) + 1);
				break;
			}
			return refuse(f, NULL, next, ": %s", strerror(errno));
		}
		if (S_ISLNK(st.st_mode)) {
			if (++links > MAX_SYMLINKS)
				return refuse(f, NULL, NULL, ": too many levels of symbolic links");
			if (!owner_ok(f, st.st_uid))
				return bad_owner(f, "symlink", next, st.st_uid);
			if ((n = readlink(next, target, sizeof(target) - 1)) <= 0 ||
			    (size_t)n >= sizeof(target) - 1)
				return refuse(f, "symlink", next, ": cannot read it");
			target[n] = '\0';
			if (snprintf(tmp, sizeof(tmp), "%s/%s", target, p) >= (int)sizeof(tmp))
				return refuse(f, NULL, NULL, ": path too long");
			memcpy(todo, tmp, strlen(tmp) + 1);
			p = todo;
			if (target[0] == '/')
				cur[0] = '\0';
			continue;
		}
		if (!last && !S_ISDIR(st.st_mode))
			return refuse(f, NULL, next, " is not a directory");
		memcpy(cur, next, strlen(next) + 1);
	}
	if (snprintf(out, outsz, "%s", cur[0] != '\0' ? cur : "/") >= (int)outsz)
		return refuse(f, NULL, NULL, ": path too long");
	return TCA_OK;
}

/* The directory of an absolute, resolved path. */
static void
parent_of(const char *real, char *out, size_t outsz)
{
	const char *s = strrchr(real, '/');

	if (s == NULL || s == real)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(s - real), real);
}

/* The file itself (real: resolved; it exists). */
static int
check_file(const struct fp *f, const char *real, int secret)
{
	struct stat st;

	if (lstat(real, &st) != 0)
		return refuse(f, NULL, real, ": %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return refuse(f, NULL, real, " is not a regular file");
	if (!owner_ok(f, st.st_uid))
		return bad_owner(f, NULL, real, st.st_uid);
	if (secret && (st.st_mode & 077) != 0)
		return refuse(f, NULL, real, " has mode %04o; it must not be accessible by "
		    "group or others; fix: chmod 600 %s", (unsigned int)(st.st_mode & 07777), real);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return bad_write(f, NULL, real, st.st_mode);
	return TCA_OK;
}

/* The socket's directory: exists, is safe on the way, and strictly so itself. */
static int
check_socket(const struct fp *f)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *s = strrchr(f->path, '/');
	int exists;

	if (s == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (s == f->path)
		snprintf(dir, sizeof(dir), "/");
	else if (snprintf(dir, sizeof(dir), "%.*s", (int)(s - f->path), f->path) >= (int)sizeof(dir))
		return refuse(f, NULL, NULL, ": path too long");
	if (walk(f, dir, 0, real, sizeof(real), &exists) != TCA_OK)
		return TCA_ERR_CONFIG;
	return check_dir(f, real, 1);
}

/* The store, its directory and the SQLite files next to it. */
static int
check_store(const struct fp *f)
{
	static const char *const sfx[] = { "-wal", "-shm" };
	char real[PATH_MAX], dir[PATH_MAX], side[PATH_MAX + 8];
	struct stat st;
	size_t i;
	int exists;

	if (walk(f, f->path, 1, real, sizeof(real), &exists) != TCA_OK)
		return TCA_ERR_CONFIG;
	parent_of(real, dir, sizeof(dir));
	if (check_dir(f, dir, 1) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (!exists)
		return TCA_OK;	/* created at first start, mode 0600 */
	if (check_file(f, real, 0) != TCA_OK)
		return TCA_ERR_CONFIG;
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", real, sfx[i]);
		if (lstat(side, &st) != 0) {
			if (errno == ENOENT)
				continue;
			return refuse(f, NULL, side, ": %s", strerror(errno));
		}
		if (check_file(f, side, 0) != TCA_OK)
			return TCA_ERR_CONFIG;
	}
	return TCA_OK;
}

int
tca_fileperm_check_uid(const char *path, enum tca_fileperm_kind kind, uid_t uid,
    char *err, size_t errlen)
{
	struct fp f;
	char real[PATH_MAX];
	int exists;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	f.kind = kind;
	f.uid = uid;
	f.path = path != NULL ? path : "";
	f.err = err;
	f.errlen = errlen;
	if (f.path[0] == '\0')
		return refuse(&f, NULL, NULL, "(empty path)");
	switch (kind) {
	case TCA_FILEPERM_SOCKET:
		return check_socket(&f);
	case TCA_FILEPERM_STORE:
		return check_store(&f);
	default:
		break;
	}
	if (walk(&f, path, kind == TCA_FILEPERM_MODULE ? 2 : 0, real, sizeof(real), &exists) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (!exists)
		return TCA_OK;	/* a module: the token layer says it is missing */
	return check_file(&f, real, kind == TCA_FILEPERM_SECRET);
}

int
tca_fileperm_check(const char *path, enum tca_fileperm_kind kind, char *err, size_t errlen)
{
	return tca_fileperm_check_uid(path, kind, geteuid(), err, errlen);
}

int
tca_fileperm_check_config(const struct tca_config *cfg, char *err, size_t errlen)
{
	char ppath[2 * PATH_MAX + 16];

	if (tca_fileperm_check(cfg->path, TCA_FILEPERM_CONFIG, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	tca_profile_path(cfg, cfg->profile, ppath, sizeof(ppath));
	if (tca_fileperm_check(ppath, TCA_FILEPERM_PROFILE, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	/* a bare name is found by the dynamic linker in the system's directories */
	if (strchr(cfg->module, '/') != NULL &&
	    tca_fileperm_check(cfg->module, TCA_FILEPERM_MODULE, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (cfg->pin_file[0] != '\0' &&
	    tca_fileperm_check(cfg->pin_file, TCA_FILEPERM_SECRET, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (cfg->alert_command[0] != '\0' &&
	    tca_fileperm_check(cfg->alert_command, TCA_FILEPERM_PROGRAM, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (cfg->checkpoint_command[0] != '\0' &&
	    tca_fileperm_check(cfg->checkpoint_command, TCA_FILEPERM_PROGRAM, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	/* the program that gets the module and the PIN */
	if (cfg->isolation == TCA_ISOLATION_PROCESS && cfg->helper_path[0] != '\0' &&
	    tca_fileperm_check(cfg->helper_path, TCA_FILEPERM_HELPER, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	if (tca_fileperm_check(cfg->socket_path, TCA_FILEPERM_SOCKET, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	/* the store's file and directory: a SQLite store only (store_path is
	 * "" for another backend, whose data is not a file of ours) */
	if (cfg->store_path[0] != '\0' &&
	    tca_fileperm_check(cfg->store_path, TCA_FILEPERM_STORE, err, errlen) != TCA_OK)
		return TCA_ERR_CONFIG;
	return TCA_OK;
}
