/* notify.h: telling the service manager how the server is doing (sd_notify(3), libsystemd).
 *
 * Owns: the messages of systemd's Type=notify protocol: READY=1 once clients can connect,
 * RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 when a drain or a stop begins,
 * and the STATUS= line that `systemctl status wsrelay` shows (how many clients, what the node
 * is doing). Does not own: when any of that happens (server.c decides), nor the unit file
 * (debian/wsrelay.service; docs/deploy.md, "Debian package and systemd").
 * Edge: each message is one datagram on the unix socket named by $NOTIFY_SOCKET, which systemd
 * sets for a Type=notify service. Without it (a server run by hand, by the tests, by another
 * supervisor) every function returns at once without a system call.
 */
#ifndef WSRELAY_NOTIFY_H
#define WSRELAY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NOTIFY_STATUS_MS = 5000, /* the client count in STATUS= changes at most this often */
};

struct notify {
    bool is_enabled;         /* $NOTIFY_SOCKET was set at start-up */
    bool has_failed;         /* a send failed once: logged, and not again */
    size_t last_open;        /* the counts the last STATUS= line gave */
    size_t last_websockets;  /* ... */
    uint64_t last_status_ms; /* when it was sent (loop time) */
};

/* Reads $NOTIFY_SOCKET (and leaves it set: we send again later). */
void notify_init(struct notify *n);

/* READY=1 with a STATUS= line (a short phrase, no newline). After start-up: the listener is
 * open. After a reload: it is over (RELOADING=1 came first). */
void notify_ready(struct notify *n, const char *status);

/* RELOADING=1 and MONOTONIC_USEC=now, before a SIGHUP reload: systemd 253's Type=notify-reload
 * asks for both and waits for the READY=1 that follows; older versions take RELOADING=1 alone
 * and ignore what they don't know. */
void notify_reloading(struct notify *n);

/* STOPPING=1 with a STATUS= line: the server has begun to go (a drain, or the stop after it).
 * Sent again when the phase changes, so the status stays true; systemd takes the repeat. */
void notify_stopping(struct notify *n, const char *status);

/* STATUS= "serving N connections (M WebSockets)", if either count changed since the last
 * line and NOTIFY_STATUS_MS have passed: called from the tick, so a busy server sends at most
 * one datagram per NOTIFY_STATUS_MS and an idle one none. */
void notify_counts(struct notify *n, uint64_t now_ms, size_t open, size_t websockets);

#endif
