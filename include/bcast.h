/* bcast.h: putting one outbound message into many connections' output buffers.
 *
 * Owns: encoding a server frame once and appending it to each recipient's wbuf, the
 * --max-buffer rule (a recipient whose pending output would pass it is marked for closing:
 * a slow reader is dropped, no one else waits for it), and queueing recipients for writing.
 * Does not own: the socket writes (conn_io.c flushes the queued connections before the
 * loop sleeps), who the recipients are (room.c's member lists) or what the message says.
 * Pure: it touches only buffers and the table's lists; no system calls.
 *
 *   relay(A's message)             A.wbuf  [..old..][hdr|payload]
 *      hdr = encode(len) once  ->  B.wbuf  [hdr|payload]            -> queued for write
 *      for each member of the list C.wbuf  [.........over limit!]   -> marked CLOSING
 */
#ifndef WSRELAY_BCAST_H
#define WSRELAY_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "frame.h"

/* What a broadcast did, for /metrics. */
struct bcast_result {
    size_t sent;      /* recipients that got the frame queued */
    size_t conflated; /* recipients that were behind: marked as owed the sender's state */
};

/* For messages that must reach every recipient as they are (welcome, join, leave). */
#define BCAST_NO_CONFLATION UINT32_MAX

/* OR'ed into a sender's slot when presence could not keep its message (over a budget, out
 * of memory): there is then nothing to owe. Recipients with room that are not behind get it
 * queued as usual; the others skip it (counted as conflated), and none is dropped for it. */
#define BCAST_UNKEPT UINT32_C(0x80000000)

/* Appends one frame (FIN, opcode op, payload p[0..len)) to the wbuf of every connection
 * slots[0..n) (a room's members) except `except` (NULL: everyone) that is still open
 * (CONN_WS). Members that could not take
 * it are marked CLOSING with reason "output over --max-buffer".
 *
 * Conflation: when `sender` is a slot (not BCAST_NO_CONFLATION), the payload is that
 * client's latest state, which presence also holds. A recipient that is behind (is_behind:
 * after its last write, more than t->conflate_mark bytes were still pending, so the kernel
 * would not take them: a slow reader, not merely a big batch), or that holds t->burst_mark
 * bytes not yet written (a burst within one loop pass), or that has no room for this frame,
 * does not get it queued; it is marked as owed that sender's state instead (conn_owe), and
 * room.c sends the latest state once the recipient has caught up. So a conflatable
 * message never makes a recipient pass --max-buffer; only server messages can. A slow reader thus
 * gets fresh positions in bounded memory, and a second update from the same sender replaces the
 * first instead of queueing behind it. */
struct bcast_result bcast_list(struct conn_table *t, const uint32_t *slots, size_t n,
                               enum frame_op op, const void *p, size_t len,
                               const struct conn *except, uint32_t sender);

/* The same for one connection (a welcome, a pong, an echo). Returns true if appended;
 * false if c was marked CLOSING for passing its limit. */
bool bcast_one(struct conn_table *t, struct conn *c, enum frame_op op, const void *p, size_t len);

#endif
