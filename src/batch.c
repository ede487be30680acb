/* batch.c: JSON-array frames for wsrelay.batch clients (see batch.h). */
#include "batch.h"

#include <errno.h>
#include <string.h>

#include "frame.h"

int batch_add(struct buf *out, struct batch *b, const void *json, size_t len)
{
    /* '[' and the header reserve for a new batch, ',' between elements of an open one. */
    size_t lead = b->open == 0 ? BATCH_HDR_GUESS + 1 : 1;
    if (len > buf_room(out) || lead + BATCH_SEAL_SLACK > buf_room(out) - len)
        return -ENOBUFS;
    uint8_t *dst = buf_reserve(out, lead + len);
    if (dst == NULL)
        return -ENOMEM;
    if (b->open == 0) {
        memset(dst, 0, BATCH_HDR_GUESS); /* written at the seal */
        dst[BATCH_HDR_GUESS] = '[';
    } else {
        dst[0] = ',';
    }
    memcpy(dst + lead, json, len);
    buf_commit(out, lead + len);
    b->open += (uint32_t)(lead + len);
    return 0;
}

int batch_seal(struct buf *out, struct batch *b)
{
    if (b->open == 0)
        return 0;
    uint8_t *end = buf_reserve(out, 1); /* within the slack batch_add kept */
    if (end == NULL)
        return -ENOMEM;
    *end = ']';
    buf_commit(out, 1);
    b->open++;
    size_t payload = b->open - BATCH_HDR_GUESS;
    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, FRAME_OP_TEXT, payload);
    size_t grow = hdr_len > BATCH_HDR_GUESS ? hdr_len - BATCH_HDR_GUESS : 0;
    if (grow > 0) {                         /* over 65535 bytes: the 64-bit length form */
        if (buf_reserve(out, grow) == NULL) /* within the slack, so only memory can fail */
            return -ENOMEM;
        buf_commit(out, grow);
    }
    /* Found again from the tail: reserving may have moved the storage. */
    uint8_t *start = buf_head(out) + buf_size(out) - grow - b->open;
    if (hdr_len != BATCH_HDR_GUESS)
        memmove(start + hdr_len, start + BATCH_HDR_GUESS, payload);
    memcpy(start, hdr, hdr_len);
    if (hdr_len < BATCH_HDR_GUESS)
        buf_truncate(out, buf_size(out) - (BATCH_HDR_GUESS - hdr_len));
    b->open = 0;
    return 0;
}
