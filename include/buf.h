/* buf.h: a growable byte buffer with a hard cap.
 *
 * Owns: the bytes of one buffer and their lifetime. This is the only code in wsrelay that
 * calls realloc() on byte storage, so every growth path passes one cap check.
 * Does not own: any meaning of the bytes. Pure: no I/O, no logging, no globals.
 *
 *      data                off             len               cap         limit
 *       |<-- consumed -->|<-- readable -->|<-- spare -->|  (not yet    |
 *       +----------------+----------------+-------------+  allocated)  |
 *
 * Invariant: off <= len <= cap <= limit. Readable bytes are data[off..len).
 * A pointer into data dies at the next buf_reserve()/buf_append() (which may move it) or
 * buf_consume() (which may shift the bytes down). Take views, act, consume: in one pass.
 */
#ifndef WSRELAY_BUF_H
#define WSRELAY_BUF_H

#include <stddef.h>
#include <stdint.h>

/* Sizes are 32-bit: every limit in wsrelay is under 4 GiB (config.h caps them), and a
 * connection holds three of these, so 16 bytes saved per buffer is memory per client. */
#define BUF_LIMIT_MAX UINT32_MAX

struct buf {
    uint8_t *data;
    uint32_t off;   /* first unconsumed byte */
    uint32_t len;   /* one past the last written byte */
    uint32_t cap;   /* bytes allocated */
    uint32_t limit; /* the most len - off may ever be: the buffer's reason to exist */
};

/* An empty buffer that may hold at most limit (<= BUF_LIMIT_MAX) readable bytes. Allocates
 * nothing yet. */
void buf_init(struct buf *b, size_t limit);

/* Releases the storage; the buffer is empty again (and may be reused, same limit). */
void buf_free(struct buf *b);

/* Bytes waiting to be read, and where they start (NULL when the buffer never held any). */
static inline size_t buf_size(const struct buf *b)
{
    return b->len - b->off;
}
/* How many more bytes fit under the limit. */
static inline size_t buf_room(const struct buf *b)
{
    return b->limit - buf_size(b);
}
static inline uint8_t *buf_head(const struct buf *b)
{
    return b->data == NULL ? NULL : b->data + b->off;
}

/* Makes room for n more bytes after the readable ones and returns where they go, or NULL
 * when that would pass the limit (or memory is exhausted). Nothing counts as written until
 * buf_commit(). May move the data: earlier pointers into the buffer die. */
uint8_t *buf_reserve(struct buf *b, size_t n);

/* Marks n bytes written at the pointer the last buf_reserve() returned (n <= what it was asked). */
void buf_commit(struct buf *b, size_t n);

/* Appends n bytes. Returns 0, or -ENOBUFS past the limit, or -ENOMEM. On failure the buffer
 * is unchanged, so a caller can drop the whole message rather than half of it. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string, without the NUL. Same returns as buf_append(). */
int buf_append_str(struct buf *b, const char *s);

/* Appends printf-style text (no NUL). Same returns as buf_append(), and -EINVAL if the
 * format fails. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops n readable bytes from the front (n <= buf_size()). When the buffer empties, off and
 * len return to 0 so the storage is reused from its start. */
void buf_consume(struct buf *b, size_t n);

/* Keeps only the first `size` readable bytes (size <= buf_size()): undoes the appends made
 * since buf_size() returned size, when a message built in several appends fails halfway. */
void buf_truncate(struct buf *b, size_t size);

/* Drops every readable byte; keeps the storage. */
void buf_reset(struct buf *b);

/* Releases the storage if it is larger than keep bytes and the buffer is empty: so one
 * big message does not pin memory to an idle connection for ever. */
void buf_shrink(struct buf *b, size_t keep);

/* A measuring writer, for appending a message whole or not at all without a rollback.
 * Run the same writing code twice: first with dst == NULL, where it only counts; then with
 * dst = buf_reserve(out, counted) and, after it, buf_commit(out, counted). A failure can then
 * only happen at the reserve, before any byte is written, and the buffer grows at most once.
 * json.c and presence.c build their messages this way. */
struct buf_writer {
    uint8_t *dst; /* NULL: only count */
    size_t len;   /* bytes counted or written so far */
};

/* Counts, or writes at dst + len, n bytes; a NUL-terminated string; an unsigned in decimal. */
void buf_put(struct buf_writer *w, const void *p, size_t n);
void buf_put_str(struct buf_writer *w, const char *s);
void buf_put_uint(struct buf_writer *w, unsigned v);

#endif
