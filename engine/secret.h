/*
 * secret.h - reading PINs without leaking them.
 *
 * A PIN comes from a file or from an environment variable.  A PIN file must be
 * a regular file owned by the reading user (or root) with no group or other
 * permission bits (0600 or 0400); anything else is refused, because a
 * world-readable PIN is a leaked PIN.  The buffer returned is mlock()ed where
 * possible and must be released with tca_secret_free(), which wipes it.
 */
#ifndef TCA_SECRET_H
#define TCA_SECRET_H

#include <stddef.h>

#define TCA_SECRET_MAX 256

/* Reads the first line of path (trailing "\n" or "\r\n" removed).
 * TCA_OK and *secret_ptr (NUL-terminated, caller frees with tca_secret_free)
 * and *len_ptr; TCA_ERR_CONFIG with a reason in err otherwise (bad mode, not a
 * regular file, empty, longer than TCA_SECRET_MAX). */
int tca_secret_read_file(const char *path, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen);

/* Takes the value of environment variable var, then wipes the value in the
 * environment block and unsets the variable so child processes (alert hooks)
 * never see it.  Same results as tca_secret_read_file. */
int tca_secret_take_env(const char *var, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen);

/* A copy of src (len bytes) in the same kind of buffer (NUL-terminated,
 * mlock()ed where possible); caller frees with tca_secret_free. */
int tca_secret_copy(const char *src, size_t len, char **secret_ptr, size_t *len_ptr,
    char *err, size_t errlen);

/* Wipes and frees; NULL ok. */
void tca_secret_free(char *secret, size_t len);

#endif
