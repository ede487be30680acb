/* batch.h: the frames of the wsrelay.batch subprotocol (docs/protocol.md).
 *
 * Owns: building, at the tail of a connection's output buffer, one text frame whose payload
 * is a JSON array of the messages queued since the last write, and sealing it when the write
 * comes. Does not own: choosing who speaks the subprotocol (routes.c negotiates it), what the
 * messages say, or writing (conn_io.c seals before each send).
 * Pure: bytes in a struct buf, nothing else.
 *
 *      wbuf: [ frames already sealed ........ ][ h h ? ? [ m1 , m2 , m3 ]
 *                                              |<------- b->open ------->|
 *
 * RFC 6455 §5.2 wants a frame's length in its shortest form, and the length is known only
 * at the seal. So the open batch reserves 4 header bytes, the form of a 126..65535-byte
 * payload that nearly every batch takes; at the seal a shorter batch moves its (under 126)
 * bytes down by 2, and a longer one (over 64 KiB, rare) moves up by 6. No batch is ever
 * copied twice in the common case.
 */
#ifndef WSRELAY_BATCH_H
#define WSRELAY_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The header bytes an open batch holds in reserve (2 + a 16-bit extended length). */
#define BATCH_HDR_GUESS 4
/* What sealing may still add: the closing ']' and, for a batch over 65535 bytes, 6 more
 * header bytes (the 64-bit length form). batch_add keeps this much room, so a seal never
 * meets the buffer's limit. */
#define BATCH_SEAL_SLACK 7

struct batch {
    uint32_t open; /* bytes of the open batch at the tail of the buffer; 0: none open */
};

/* Appends json[0..len) (one JSON value, or several already joined by commas) to the open
 * batch at the tail of out, opening one if none is. Returns 0, or -ENOBUFS when it would
 * not fit under out's limit (with the seal's slack), or -ENOMEM; out is then unchanged. */
int batch_add(struct buf *out, struct batch *b, const void *json, size_t len);

/* Whether a batch is open (something was added since the last seal). */
static inline bool batch_is_open(const struct batch *b)
{
    return b->open > 0;
}

/* Closes the open batch (if any) into one complete text frame. Returns 0, or -ENOMEM if the
 * buffer could not grow by the 6 bytes a batch over 64 KiB needs (the batch is then left
 * open and unsendable: the caller closes the connection). */
int batch_seal(struct buf *out, struct batch *b);

/* Forgets an open batch without sealing it (its bytes are dropped with the buffer). */
static inline void batch_drop(struct batch *b)
{
    b->open = 0;
}

#endif
