/* sd-notify.c - systemd's NOTIFY_SOCKET protocol and watchdog, see sd-notify.h. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sd-notify.h"
#include "tca-error.h"

#define STATUS_EVERY_MS 1000	/* how often the token's health is looked at */

static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;	/* 0: NOTIFY_SOCKET unset */
static unsigned long long watchdog_usec;

struct tca_sd_watch {
	tca_token *tok;
	unsigned int token_down_s;
	int64_t last_fed_ms;		/* 0: never */
	int64_t last_look_ms;
	int64_t down_since_ms;		/* 0: the token is ok */
	int withholding;		/* the watchdog is no longer fed */
	char health[16];		/* as last put into STATUS= */
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
parse_ull(const char *v, unsigned long long *out)
{
	char *end;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

int
tca_sd_notify_init(char *err, size_t errlen)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	const char *wu = getenv("WATCHDOG_USEC"), *wp = getenv("WATCHDOG_PID");
	unsigned long long usec = 0, pid = 0;
	size_t l;
	int r = TCA_OK;

	notify_addr_len = 0;
	watchdog_usec = 0;
	if (ns != NULL && ns[0] != '\0') {
		l = strlen(ns);
		if ((ns[0] != '/' && ns[0] != '@') || l < 2 || l >= sizeof(notify_addr.sun_path)) {
			snprintf(err, errlen, "NOTIFY_SOCKET=%s is neither an absolute socket path "
			    "nor an abstract \"@name\" that fits a Unix socket address", ns);
			r = TCA_ERR_CONFIG;
			goto out;
		}
		memset(&notify_addr, 0, sizeof(notify_addr));
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, ns, l);
		if (ns[0] == '@')
			notify_addr.sun_path[0] = '\0';	/* abstract: no terminating NUL */
		notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l +
		    (ns[0] == '@' ? 0 : 1));
	}
	if (wu != NULL) {
		if (parse_ull(wu, &usec) != 0 || (wp != NULL && parse_ull(wp, &pid) != 0)) {
			snprintf(err, errlen, "WATCHDOG_USEC=%s / WATCHDOG_PID=%s: not numbers", wu,
			    wp != NULL ? wp : "(unset)");
			r = TCA_ERR_CONFIG;
			goto out;
		}
		/* a WATCHDOG_PID of another process: not our watchdog */
		if (wp == NULL || pid == (unsigned long long)getpid())
			watchdog_usec = usec;
	}
 out:
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("WATCHDOG_USEC");
	(void)unsetenv("WATCHDOG_PID");
	return r;
}

int
tca_sd_notify_enabled(void)
{
	return notify_addr_len != 0;
}

unsigned long long
tca_sd_watchdog_usec(void)
{
	return notify_addr_len != 0 ? watchdog_usec : 0;
}

int
tca_sd_notify(const char *state)
{
	ssize_t n;
	int fd, e;

	if (notify_addr_len == 0)
		return TCA_OK;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		log_warn("systemd notification (%s): socket: %s", state, strerror(errno));
		return TCA_ERR_SYSTEM;
	}
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (const struct sockaddr *)&notify_addr, notify_addr_len);
	e = errno;
	close(fd);
	if (n < 0 || (size_t)n != strlen(state)) {
		log_warn("systemd notification to NOTIFY_SOCKET failed: %s",
		    n < 0 ? strerror(e) : "short write");
		return TCA_ERR_SYSTEM;
	}
	return TCA_OK;
}

tca_sd_watch *
tca_sd_watch_new(tca_token *tok, unsigned int token_down_s)
{
	tca_sd_watch *w;

	if (notify_addr_len == 0)
		return NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->tok = tok;
	w->token_down_s = token_down_s;
	snprintf(w->health, sizeof(w->health), "ok");
	return w;
}

/* STATUS= from the token's health, on a change only */
static void
look_at_token(tca_sd_watch *w, int64_t now)
{
	struct tca_token_status ts;
	char msg[320];
	size_t i;

	w->last_look_ms = now;
	if (w->tok == NULL || tca_token_get_status(w->tok, &ts) != TCA_OK)
		return;
	if (strcmp(ts.health, "ok") == 0)
		w->down_since_ms = 0;
	else if (w->down_since_ms == 0)
		w->down_since_ms = now;
	if (strcmp(ts.health, w->health) == 0)
		return;
	snprintf(w->health, sizeof(w->health), "%s", ts.health);
	/* one line: the problem text comes from a PKCS#11 module */
	for (i = 0; ts.problem[i] != '\0'; i++)
		if ((unsigned char)ts.problem[i] < 0x20)
			ts.problem[i] = ' ';
	if (strcmp(ts.health, "ok") == 0)
		snprintf(msg, sizeof(msg), "STATUS=serving; token ok");
	else
		snprintf(msg, sizeof(msg), "STATUS=serving; token %s%s%s", ts.health,
		    ts.problem[0] != '\0' ? ": " : "", ts.problem);
	(void)tca_sd_notify(msg);
}

void
tca_sd_watch_tick(void *ctx)
{
	tca_sd_watch *w = ctx;
	unsigned long long usec = tca_sd_watchdog_usec();
	int64_t now = mono_ms(), half_ms;
	int down;

	if (w == NULL)
		return;
	if (now - w->last_look_ms >= STATUS_EVERY_MS)
		look_at_token(w, now);
	if (usec == 0)
		return;
	down = w->token_down_s > 0 && w->down_since_ms != 0 &&
	    now - w->down_since_ms >= (int64_t)w->token_down_s * 1000;
	if (down) {
		if (!w->withholding) {
			log_error("the token has not been ok for %u s (watchdog.token_down_s): "
			    "no longer feeding the systemd watchdog, systemd will restart the "
			    "engine", w->token_down_s);
			/* after every WATCHDOG=1 sent so far (datagrams keep their order) */
			(void)tca_sd_notify("STATUS=token down: watchdog withheld "
			    "(watchdog.token_down_s), systemd will restart the engine");
		}
		w->withholding = 1;
		return;
	}
	if (w->withholding)
		log_notice("the token is ok again: feeding the systemd watchdog again");
	w->withholding = 0;
	half_ms = (int64_t)(usec / 2000);
	if (half_ms < 1)
		half_ms = 1;
	if (w->last_fed_ms != 0 && now - w->last_fed_ms < half_ms)
		return;
	if (tca_sd_notify("WATCHDOG=1") == TCA_OK)
		w->last_fed_ms = now;
}

void
tca_sd_watch_free(tca_sd_watch *w)
{
	free(w);
}
