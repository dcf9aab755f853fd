/*
 * fileperm.h - is this path safe for the engine to trust?
 *
 * Whoever can write the configuration file controls roles.admin_uids, and
 * through alert.command, the hsm-profile and the PKCS#11 module, runs code as
 * the engine.  Whoever can write the directory of the socket, the store or
 * the PIN file can swap them.  So before the engine uses a path it walks it
 * from / component by component (following symlinks the way the kernel
 * does, like OpenSSH's safe_path but for every directory actually
 * traversed), and refuses when:
 *
 *  - a directory on the way, a symlink on the way or the file itself is owned
 *    by a uid other than the engine's (effective) uid or root;
 *  - a directory on the way is writable by group or others, unless it has the
 *    sticky bit (like /tmp: others may add names but cannot rename or remove
 *    ours, which must then be owned by the engine's uid or root);
 *  - the directory in which the engine creates files (the socket's, the
 *    store's) is writable by group or others at all: the sticky bit is not
 *    enough there, anyone could take a name first;
 *  - the file itself is writable by group or others (a PIN file: accessible
 *    by group or others at all) or is not a regular file.
 *
 * Readable by others is fine for everything but the PIN file: the
 * configuration, profiles and programs hold no secret (a PIN in token.uri is
 * refused).  Every refusal names the path, what is wrong and the fix
 * ("chmod o-w /etc/tca", "chown tca /var/lib/tca").
 */
#ifndef TCA_FILEPERM_H
#define TCA_FILEPERM_H

#include <stddef.h>
#include <sys/types.h>

struct tca_config;

enum tca_fileperm_kind {
	TCA_FILEPERM_CONFIG,	/* the configuration file: must exist */
	TCA_FILEPERM_PROFILE,	/* the hsm-profile in use: must exist */
	TCA_FILEPERM_PROGRAM,	/* alert.command: must exist */
	TCA_FILEPERM_MODULE,	/* the PKCS#11 module: a missing one is left to the
				 * token layer to report */
	TCA_FILEPERM_SECRET,	/* a PIN file: must exist, no group/other access */
	TCA_FILEPERM_SOCKET,	/* socket.path: only its directory is checked, and
				 * strictly (the engine creates the socket there) */
	TCA_FILEPERM_STORE,	/* store.path: may not exist yet; its directory
				 * strictly; the -wal/-shm files next to it if present */
	TCA_FILEPERM_HELPER,	/* the token helper, tca-tokend: must exist */
};

/* TCA_OK if path is safe for an engine running as geteuid(); else
 * TCA_ERR_CONFIG with "what path: problem; fix: command" in err. */
int tca_fileperm_check(const char *path, enum tca_fileperm_kind kind,
    char *err, size_t errlen);

/* The same for an engine running as uid (tests; --check-config as root for
 * another user is not offered: run it as the engine's user). */
int tca_fileperm_check_uid(const char *path, enum tca_fileperm_kind kind, uid_t uid,
    char *err, size_t errlen);

/* Every path a loaded configuration makes the engine trust: the
 * configuration file itself (cfg->path), the hsm-profile, token.module (when
 * it is a path), token.pin_file, alert.command, the socket's directory and
 * the store.  Called at start (and by --check-config) and at every reload,
 * which a refusal refuses as a whole.  TCA_OK or TCA_ERR_CONFIG with the
 * first problem in err. */
int tca_fileperm_check_config(const struct tca_config *cfg, char *err, size_t errlen);

#endif
