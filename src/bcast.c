/* bcast.c: messages into buffers (see bcast.h). */
#include "bcast.h"

#include <string.h>

#include "batch.h"
#include "ws.h"

/* The reason a slow reader is dropped with: it is logged, and sets the close path. */
static const char over_limit[] = "output over --max-buffer";

static void note_queued(struct conn_table *t, struct conn *c)
{
    if (buf_size(&c->wbuf) > t->wbuf_high_water)
        t->wbuf_high_water = buf_size(&c->wbuf);
    conn_queue_write(t, c);
}

/* Appends a text message to c in its wire form: an element of its batch, or a frame whose
 * header the caller encoded (once for many recipients). Whole or not at all. Returns 0 or
 * the buffer's negative errno. */
static int append_text(struct conn *c, const uint8_t *hdr, size_t hdr_len, const void *p,
                       size_t len)
{
    if (conn_is_batch(c))
        return batch_add(&c->wbuf, &c->ws.batch, p, len);
    return ws_append_frame(&c->wbuf, hdr, hdr_len, p, len);
}

size_t bcast_list(struct conn_table *t, const uint32_t *slots, size_t n, const void *p, size_t len,
                  const struct conn *except)
{
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, FRAME_OP_TEXT, len); /* once, not per member */
    size_t sent = 0;
    /* Walk the dense member list, not every slot: the work is proportional to the
     * recipients. Marking a member CLOSING does not change the list (room.c removes it when
     * the connection is reaped), so the loop is safe while it drops slow readers. */
    for (size_t i = 0; i < n; i++) {
        struct conn *c = &t->conns[slots[i]];
        if (c == except || c->phase != CONN_WS)
            continue;
        if (append_text(c, hdr, hdr_len, p, len) != 0) {
            conn_close_later(t, c, CONN_END_SLOW_READER, over_limit);
            continue;
        }
        note_queued(t, c);
        sent++;
    }
    return sent;
}

bool bcast_seal(struct conn_table *t, struct conn *c)
{
    if (!conn_is_batch(c) || !batch_is_open(&c->ws.batch))
        return true;
    if (batch_seal(&c->wbuf, &c->ws.batch) != 0) {
        conn_close_later(t, c, CONN_END_ERROR, "out of memory for a batch");
        return false;
    }
    return true;
}

bool bcast_one(struct conn_table *t, struct conn *c, enum frame_op op, const void *p, size_t len)
{
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, op, len);
    int rc;
    if (op == FRAME_OP_TEXT) {
        rc = append_text(c, hdr, hdr_len, p, len);
    } else {
        if (!bcast_seal(t, c))
            return false;
        rc = ws_append_frame(&c->wbuf, hdr, hdr_len, p, len);
    }
    if (rc != 0) {
        conn_close_later(t, c, CONN_END_SLOW_READER, over_limit);
        return false;
    }
    note_queued(t, c);
    return true;
}

bool bcast_try(struct conn_table *t, struct conn *c, const void *p, size_t len)
{
    if (buf_size(&c->wbuf) >= t->burst_mark)
        return false;
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, FRAME_OP_TEXT, len);
    if (append_text(c, hdr, hdr_len, p, len) != 0)
        return false; /* no room: owed, not dropped */
    note_queued(t, c);
    return true;
}

bool bcast_try_run(struct conn_table *t, struct conn *c, const void *frames, size_t frames_len,
                   const void *elems, size_t elems_len)
{
    bool is_batch = conn_is_batch(c);
    size_t len = is_batch ? elems_len : frames_len;
    if (len == 0)
        return true;
    if (buf_size(&c->wbuf) + len > t->burst_mark)
        return false;
    int rc = is_batch ? batch_add(&c->wbuf, &c->ws.batch, elems, elems_len)
                      : buf_append(&c->wbuf, frames, frames_len);
    if (rc != 0)
        return false;
    note_queued(t, c);
    return true;
}
