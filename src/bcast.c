/* bcast.c: one frame, many buffers (see bcast.h). */
#include "bcast.h"

#include <string.h>

#include "ws.h"

/* The reason a slow reader is dropped with: it is logged, and sets the close path. */
static const char over_limit[] = "output over --max-buffer";

/* Appends the already-encoded header and the payload as one unit: either both fit under the
 * buffer's limit or neither is written, so a recipient never holds half a frame. */
static bool append_frame(struct conn_table *t, struct conn *c, const uint8_t *hdr, size_t hdr_len,
                         const void *p, size_t len)
{
    if (ws_append_frame(&c->wbuf, hdr, hdr_len, p, len) != 0) {
        conn_close_later(t, c, CONN_END_SLOW_READER, over_limit);
        return false;
    }
    if (buf_size(&c->wbuf) > t->wbuf_high_water)
        t->wbuf_high_water = buf_size(&c->wbuf);
    conn_queue_write(t, c);
    return true;
}

struct bcast_result bcast_list(struct conn_table *t, const uint32_t *slots, size_t n,
                               enum frame_op op, const void *p, size_t len,
                               const struct conn *except, uint32_t sender)
{
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, op, len); /* once, not once per recipient */
    struct bcast_result r = {0, 0};

    /* Walk the dense member list, not every slot: the work is proportional to the
     * recipients. Marking a member CLOSING does not change the list (room.c removes it when
     * the connection is reaped), so the loop is safe while it drops slow readers. */
    for (size_t i = 0; i < n; i++) {
        struct conn *c = &t->conns[slots[i]];
        if (c == except || c->phase != CONN_WS)
            continue;
        /* Behind after its last write (a slow reader), or already holding burst_mark bytes
         * that no write has tried yet (a burst of big messages from many senders in one loop
         * pass, which would carry even a fast reader past --max-buffer before the next
         * flush), or simply without room for this one: an update from this sender is then
         * owed, not queued, and never the reason a reader is dropped. The flush that drains
         * it below conflate_mark pays the debt (room_pay_owed). */
        size_t pending = buf_size(&c->wbuf);
        bool has_no_room = pending + hdr_len + len > c->wbuf.limit;
        if (sender != BCAST_NO_CONFLATION && (sender & BCAST_UNKEPT) != 0) {
            if (c->is_behind || has_no_room) { /* nothing to owe: this update is skipped */
                r.conflated++;
                continue;
            }
        } else if (sender != BCAST_NO_CONFLATION &&
                   (c->is_behind || pending >= t->burst_mark || has_no_room) &&
                   conn_owe(t, c, sender)) {
            r.conflated++;
            continue;
        }
        if (append_frame(t, c, hdr, hdr_len, p, len))
            r.sent++;
    }
    return r;
}

bool bcast_one(struct conn_table *t, struct conn *c, enum frame_op op, const void *p, size_t len)
{
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, op, len);
    return append_frame(t, c, hdr, hdr_len, p, len);
}
