/* drain.h: the schedule of a drain, for --drain-time (SIGTERM, issue 14).
 *
 * Owns: when, during a drain of `total` WebSockets over `time_ms`, each of them is due to be
 * closed. A node that closes all its clients at once sends them all to the other nodes in the
 * same second (a reconnect storm); closing them one by one, spread evenly over the drain
 * time, hands the other nodes a steady trickle instead. The i-th close (i = 0 .. total-1) is
 * due at i * time_ms / total after the start: the first at once, the last one step before
 * the end (rounded up to a whole ms, so at the end at the latest).
 * Does not own: which connection is closed, the close frame (conn_io_drain_some), the signal,
 * /healthz (server.c, routes.c).
 * Pure: no I/O, no clock; times come in as arguments, in ms.
 */
#ifndef WSRELAY_DRAIN_H
#define WSRELAY_DRAIN_H

#include <stddef.h>
#include <stdint.h>

struct drain {
    uint64_t start_ms; /* when the drain began */
    uint64_t time_ms;  /* --drain-time: > 0 */
    size_t total;      /* WebSockets open when it began: the most it will close */
    size_t closed;     /* closes done so far (drain_closed) */
};

void drain_start(struct drain *d, uint64_t now_ms, uint64_t time_ms, size_t total);

/* How many closes are due by now_ms, in all (closed ones included): at most total, all of
 * them once time_ms has passed. */
size_t drain_due(const struct drain *d, uint64_t now_ms);

/* The caller closed n more (fewer than due if some had left by themselves). */
void drain_closed(struct drain *d, size_t n);

/* Milliseconds from now_ms until the next close is due (0: one is due now), or -1 when
 * every close is done. For the event loop's timeout. */
int64_t drain_next_ms(const struct drain *d, uint64_t now_ms);

#endif
