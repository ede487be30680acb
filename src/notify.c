/* notify.c: sd_notify(3) messages to the service manager (see notify.h).
 *
 * Why a blocking send is acceptable in the event loop: sd_notify() opens an AF_UNIX SOCK_DGRAM
 * socket, sends one datagram of a few dozen bytes with sendmsg() and closes it (libsystemd 252;
 * strace shows socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC), sendmsg(..., MSG_NOSIGNAL), no
 * MSG_DONTWAIT). A unix datagram send waits only while the receiver's queue is full, and the
 * receiver is PID 1, which reads its notify socket at once. We send a handful of messages in
 * a run (start, reload, stop) plus at most one STATUS= per NOTIFY_STATUS_MS, never per
 * connection or per message.
 * Simplification: a production daemon expecting a wedged receiver would send on its own
 * non-blocking socket instead (the protocol is just "KEY=VALUE\n" datagrams).
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

void notify_init(struct notify *n)
{
    memset(n, 0, sizeof *n);
    const char *socket = getenv("NOTIFY_SOCKET");
    n->is_enabled = socket != NULL && socket[0] != '\0';
}

/* One message. sd_notify() returns > 0 when sent, 0 when there is no socket (not our case:
 * is_enabled), < 0 as -errno. A failure is logged once: the server works without it, but a
 * Type=notify unit waiting for READY=1 would time out, and the log should say why. */
static void send_state(struct notify *n, const char *state)
{
    if (!n->is_enabled)
        return;
    int rc = sd_notify(0, state); /* 0: keep $NOTIFY_SOCKET for the messages to come */
    if (rc < 0 && !n->has_failed) {
        n->has_failed = true;
        log_at(LL_WARN, "\"cannot notify the service manager ($NOTIFY_SOCKET): %s\"",
               strerror(-rc));
    }
}

void notify_ready(struct notify *n, const char *status)
{
    char msg[256];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    send_state(n, msg);
}

void notify_reloading(struct notify *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_state(n, msg);
}

void notify_stopping(struct notify *n, const char *status)
{
    char msg[256];
    snprintf(msg, sizeof msg, "STOPPING=1\nSTATUS=%s", status);
    send_state(n, msg);
}

void notify_counts(struct notify *n, uint64_t now_ms, size_t open, size_t websockets)
{
    if (!n->is_enabled || (open == n->last_open && websockets == n->last_websockets) ||
        now_ms - n->last_status_ms < NOTIFY_STATUS_MS)
        return;
    n->last_open = open;
    n->last_websockets = websockets;
    n->last_status_ms = now_ms;
    char msg[128];
    snprintf(msg, sizeof msg, "STATUS=serving %zu connections (%zu WebSockets)", open, websockets);
    send_state(n, msg);
}
