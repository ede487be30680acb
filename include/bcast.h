/* bcast.h: putting one outbound message into many connections' output buffers.
 *
 * Owns: encoding a server frame once and appending it to each recipient's wbuf, the
 * --max-buffer rule (a recipient whose pending output would pass it is marked for closing:
 * a slow reader is dropped, no one else waits for it), and queueing recipients for writing.
 * Does not own: the socket writes (server.c flushes the queued connections before the
 * loop sleeps) or what the message says.
 * Pure: it touches only buffers and the table's lists; no system calls.
 *
 *   relay(A's message)             A.wbuf  [..old..][hdr|payload]
 *      hdr = encode(len) once  ->  B.wbuf  [hdr|payload]            -> queued for write
 *      for each room member        C.wbuf  [.........over limit!]   -> marked CLOSING
 */
#ifndef WSRELAY_BCAST_H
#define WSRELAY_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "frame.h"

/* Appends one frame (FIN, opcode op, payload p[0..len)) to the wbuf of every room member
 * except `except` (NULL: everyone) that is still open (CONN_WS). Returns how many received
 * it; members that could not take it are marked CLOSING with reason "output over
 * --max-buffer". */
size_t bcast_room(struct conn_table *t, enum frame_op op, const void *p, size_t len,
                  const struct conn *except);

/* The same for one connection (a welcome, a pong, an echo). Returns true if appended;
 * false if c was marked CLOSING for passing its limit. */
bool bcast_one(struct conn_table *t, struct conn *c, enum frame_op op, const void *p, size_t len);

#endif
