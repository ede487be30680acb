/* bcast.h: putting outbound messages into connections' output buffers.
 *
 * Owns: appending a server message to one connection or to a room's members (a frame
 * encoded once for all of them, or an element of a wsrelay.batch client's open batch,
 * batch.h), the --max-buffer rule (a recipient whose pending output would pass it is marked
 * for closing: a slow reader is dropped, no one else waits for it), cursor messages that are
 * added only if they fit (they are never the reason a reader is dropped), and queueing
 * recipients for writing.
 * Does not own: the socket writes (conn_io.c flushes the queued connections before the
 * loop sleeps, sealing open batches first), who the recipients are or which cursor messages
 * they are owed (room.c), or what the messages say.
 * Pure: it touches only buffers and the table's lists; no system calls.
 *
 *   join(A)   hdr = encode(len) once ─▶ B.wbuf [..old..][hdr|join]           ─▶ queued
 *             for each member         C.wbuf [.. [welcome,{x..}           ─▶ + ",join"
 *                                     D.wbuf [.........over limit!]       ─▶ CLOSING
 */
#ifndef WSRELAY_BCAST_H
#define WSRELAY_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "frame.h"

/* Appends one server message (a text frame, or an element of the open batch) to every open
 * (CONN_WS) connection of slots[0..n) except `except` (NULL: everyone). A recipient that
 * cannot take it is marked CLOSING with reason "output over --max-buffer": server messages
 * (welcome, join, leave, count) are never skipped, so a reader that cannot take them goes.
 * Returns how many got it queued. */
size_t bcast_list(struct conn_table *t, const uint32_t *slots, size_t n, const void *p, size_t len,
                  const struct conn *except);

/* The same for one connection, with any opcode: text joins c's open batch if it speaks
 * wsrelay.batch; any other frame (a pong, a close, an echo) seals the batch first, so the
 * order on the wire is the order of the calls. Returns true if appended; false if c was
 * marked CLOSING for passing its limit. */
bool bcast_one(struct conn_table *t, struct conn *c, enum frame_op op, const void *p, size_t len);

/* A cursor message for one connection, only if it fits: under t->burst_mark pending before
 * it, and under the buffer's limit with it. Returns true if appended (and c queued); false
 * if not, and then nothing changed: the room keeps it as owed. */
bool bcast_try(struct conn_table *t, struct conn *c, const void *p, size_t len);

/* Appends bytes already in c's wire form: `frames` (complete frames, for a seed client) or
 * `elems` (JSON values joined by commas, for a wsrelay.batch client), built once for a whole
 * room (room.c's run). Same rule and returns as bcast_try(). */
bool bcast_try_run(struct conn_table *t, struct conn *c, const void *frames, size_t frames_len,
                   const void *elems, size_t elems_len);

/* Seals c's open batch, if any, before a write (conn_io.c). Returns false if it could not
 * (out of memory: c is marked CLOSING). */
bool bcast_seal(struct conn_table *t, struct conn *c);

#endif
