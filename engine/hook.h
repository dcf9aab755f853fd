/*
 * hook.h - external commands the engine runs and never waits for: the alert
 * hook (alert.command, renewal.c) and the journal checkpoint hook
 * (journal.checkpoint_command, checkpoint.c).
 *
 * A command is started with posix_spawn(): argv = { command }, the given
 * environment only, stdin /dev/null, stdout/stderr the engine's.  A detached
 * reaper thread per command waits for it, kills it (SIGKILL) once it has run
 * timeout_s seconds, and logs how it ended ("<kind> command for <what>
 * done" / "failed (exit N)").  tca_hooks_free() waits for the running ones
 * (each ends by its timeout at the latest).
 */
#ifndef TCA_HOOK_H
#define TCA_HOOK_H

typedef struct tca_hooks tca_hooks;

/* TCA_OK or TCA_ERR_NOMEM / TCA_ERR_SYSTEM. */
int tca_hooks_new(tca_hooks **h_ptr);

/* Waits for every command still running, then frees h (NULL: nothing). */
void tca_hooks_free(tca_hooks *h);

/*
 * Starts command (an absolute path) with envp (NULL-terminated, copied by
 * the kernel; PATH is not added).  kind and what only name it in the log.
 * TCA_OK once it is started; TCA_ERR_SYSTEM (logged) if it could not be.
 */
int tca_hooks_spawn(tca_hooks *h, const char *kind, const char *what,
    const char *command, char *const envp[], unsigned int timeout_s);

#endif
