/*
 * sd-notify.h - telling systemd how the engine is doing (Type=notify).
 *
 * The protocol (sd_notify(3)), done by hand so the engine needs no
 * libsystemd: datagrams of "KEY=value" lines to the AF_UNIX socket named by
 * NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).  The engine
 * sends READY=1 once its socket is listening, STOPPING=1 when it starts to
 * drain, STATUS= lines with the token's health, and - when the unit sets
 * WatchdogSec= (WATCHDOG_USEC, WATCHDOG_PID) - WATCHDOG=1 from its accept
 * loop at half the interval, so a hung engine is restarted.
 *
 * The token's health withholds the watchdog only if watchdog.token_down_s is
 * set: then, once the token has not been "ok" for that long, the engine stops
 * feeding it and systemd restarts the engine.  By default (0) it does not,
 * because the engine recovers the token by itself and a restart while the HSM
 * is away only fails at start-up and stops the crl and cacerts answers the
 * engine goes on giving meanwhile (docs/operations.md, "systemd").
 *
 * Without NOTIFY_SOCKET every call does nothing.
 */
#ifndef TCA_SD_NOTIFY_H
#define TCA_SD_NOTIFY_H

#include <stddef.h>

#include "token.h"

/*
 * Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment
 * (removing them, so children such as alert.command do not inherit them).
 * Call once, early.  TCA_OK, or TCA_ERR_CONFIG with err when a value is
 * malformed.
 */
int tca_sd_notify_init(char *err, size_t errlen);

/* 1 when NOTIFY_SOCKET was set */
int tca_sd_notify_enabled(void);

/* Sends state (e.g. "READY=1\nSTATUS=serving").  TCA_OK also when
 * NOTIFY_SOCKET is unset; TCA_ERR_SYSTEM when the send failed. */
int tca_sd_notify(const char *state);

/* The watchdog interval systemd asked for in microseconds; 0: none. */
unsigned long long tca_sd_watchdog_usec(void);

typedef struct tca_sd_watch tca_sd_watch;

/*
 * State for tca_sd_watch_tick: the token whose health goes into STATUS= (and,
 * with token_down_s > 0, withholds the watchdog after that many seconds of
 * not being "ok").  NULL when NOTIFY_SOCKET is unset (ticking is not
 * needed) or on allocation failure.  The caller frees it with
 * tca_sd_watch_free; tok must outlive it.
 */
tca_sd_watch *tca_sd_watch_new(tca_token *tok, unsigned int token_down_s);

/* From the accept loop, at least every 200 ms (tca_server_params.tick):
 * feeds the watchdog when due and updates STATUS= when the token's health
 * changed.  NULL-safe; ctx is a tca_sd_watch. */
void tca_sd_watch_tick(void *ctx);

void tca_sd_watch_free(tca_sd_watch *w);

#endif
