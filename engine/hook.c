/* hook.c - external commands started and reaped in the background (hook.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hook.h"
#include "log.h"
#include "tca-error.h"

struct tca_hooks {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned int running;
};

struct hook_run {
	tca_hooks *h;
	pid_t pid;
	unsigned int timeout_s;
	char kind[32];
	char what[160];
};

int
tca_hooks_new(tca_hooks **h_ptr)
{
	tca_hooks *h;

	*h_ptr = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return TCA_ERR_NOMEM;
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h);
		return TCA_ERR_SYSTEM;
	}
	if (pthread_cond_init(&h->done, NULL) != 0) {
		pthread_mutex_destroy(&h->lock);
		free(h);
		return TCA_ERR_SYSTEM;
	}
	*h_ptr = h;
	return TCA_OK;
}

void
tca_hooks_free(tca_hooks *h)
{
	if (h == NULL)
		return;
	/* reapers kill their command at its timeout, so this ends */
	pthread_mutex_lock(&h->lock);
	while (h->running > 0)
		pthread_cond_wait(&h->done, &h->lock);
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->done);
	free(h);
}

static void *
hook_reaper(void *arg)
{
	struct hook_run *a = arg;
	tca_hooks *h = a->h;
	unsigned int waited_ms = 0;
	int st = 0;
	pid_t w;

	for (;;) {
		w = waitpid(a->pid, &st, WNOHANG);
		if (w == a->pid || (w < 0 && errno != EINTR))
			break;
		if (waited_ms >= a->timeout_s * 1000) {
			log_error("%s command for %s still running after %u s: killed",
			    a->kind, a->what, a->timeout_s);
			kill(a->pid, SIGKILL);
			waitpid(a->pid, &st, 0);
			w = -1;
			break;
		}
		usleep(100000);
		waited_ms += 100;
	}
	if (w == a->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("%s command for %s done", a->kind, a->what);
	else if (w == a->pid)
		log_error("%s command for %s failed (%s %d)", a->kind, a->what,
		    WIFEXITED(st) ? "exit" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	pthread_mutex_lock(&h->lock);
	h->running--;
	pthread_cond_broadcast(&h->done);
	pthread_mutex_unlock(&h->lock);
	free(a);
	return NULL;
}

int
tca_hooks_spawn(tca_hooks *h, const char *kind, const char *what,
    const char *command, char *const envp[], unsigned int timeout_s)
{
	char *argv[2];
	posix_spawn_file_actions_t fa;
	pthread_attr_t attr;
	pthread_t th;
	struct hook_run *a;
	pid_t pid;
	int rc;

	if (h == NULL || command == NULL || command[0] == '\0')
		return TCA_ERR_INVALID_ARG;
	argv[0] = (char *)command;
	argv[1] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return TCA_ERR_SYSTEM;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawn(&pid, command, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		log_error("%s command %s could not be started: %s", kind, command,
		    strerror(rc));
		return TCA_ERR_SYSTEM;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		waitpid(pid, NULL, 0);	/* cannot track it: do not leave a zombie */
		return TCA_ERR_NOMEM;
	}
	a->h = h;
	a->pid = pid;
	a->timeout_s = timeout_s;
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	snprintf(a->what, sizeof(a->what), "%s", what);
	pthread_mutex_lock(&h->lock);
	h->running++;
	pthread_mutex_unlock(&h->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, hook_reaper, a) != 0) {
		pthread_attr_destroy(&attr);
		waitpid(pid, NULL, 0);
		pthread_mutex_lock(&h->lock);
		h->running--;
		pthread_mutex_unlock(&h->lock);
		free(a);
		return TCA_ERR_SYSTEM;
	}
	pthread_attr_destroy(&attr);
	return TCA_OK;
}
