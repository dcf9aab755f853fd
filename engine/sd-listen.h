/*
 * sd-listen.h - a listening socket passed by systemd (socket activation).
 *
 * The protocol (sd_listen_fds(3)), done by hand so the engine needs no
 * libsystemd: the service manager passes the sockets of tca-engined.socket
 * as descriptors 3.. and sets LISTEN_PID to the engine's pid and LISTEN_FDS
 * to their number.  The engine takes exactly one, and only if it is what it
 * would have made itself: an AF_UNIX SOCK_STREAM socket that is listening,
 * bound to socket.path, with no access for others.  Without LISTEN_FDS (or
 * with a LISTEN_PID that is not ours) nothing changes: the engine creates the
 * socket itself.
 */
#ifndef TCA_SD_LISTEN_H
#define TCA_SD_LISTEN_H

#include <stddef.h>

/*
 * *fd = -1 and TCA_OK when the engine was not socket-activated.  *fd = the
 * passed descriptor (3, close-on-exec set) and TCA_OK when it checks out.
 * TCA_ERR_CONFIG with err naming what is wrong and the fix otherwise.
 * Either way LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from the
 * environment so that no child (alert.command) inherits them.  The caller
 * owns *fd.
 */
int tca_sd_listen_fd(const char *socket_path, int *fd, char *err, size_t errlen);

#endif
