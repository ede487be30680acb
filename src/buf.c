/* buf.c: the growable, capped byte buffer described in buf.h.
 *
 * Growth doubles the allocation (amortised O(1) appends) but never past `limit`; bytes
 * already consumed are reclaimed by sliding the readable ones to the front before growing,
 * so a buffer that is drained as fast as it fills never reallocates at all.
 */
#include "buf.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BUF_MIN_ALLOC = 256 }; /* a first allocation big enough for most small messages */

void buf_init(struct buf *b, size_t limit)
{
    assert(limit <= BUF_LIMIT_MAX); /* our invariant: config.h keeps every limit below it */
    *b = (struct buf){.limit = (uint32_t)limit};
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b, b->limit);
}

uint8_t *buf_reserve(struct buf *b, size_t n)
{
    size_t used = b->len - b->off;
    if (n > b->limit - used) /* the cap: checked without overflow, since used <= limit */
        return NULL;
    if (b->data != NULL && b->cap - b->len >= n)
        return b->data + b->len;

    /* Reclaim the consumed prefix first: cheaper than a realloc and often enough. */
    if (b->off > 0) {
        assert(b->data != NULL); /* off > 0 only ever follows a write */
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = (uint32_t)used;
        if (b->cap - b->len >= n)
            return b->data + b->len;
    }

    size_t need = used + n; /* <= limit, so no overflow */
    size_t cap = b->cap < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return NULL;
    b->data = p;
    b->cap = (uint32_t)cap; /* <= limit */
    return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
    b->len += (uint32_t)n; /* n was reserved: len + n <= cap */
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *dst = buf_reserve(b, n);
    if (dst == NULL)
        return n > buf_room(b) ? -ENOBUFS : -ENOMEM;
    memcpy(dst, p, n);
    b->len += (uint32_t)n;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;

    if ((size_t)n > buf_room(b))
        return -ENOBUFS;

    /* vsnprintf writes a NUL we do not keep: format into n + 1 reserved bytes, commit n.
     * Only when the NUL itself would cross the limit do we format into a scratch copy. */
    uint8_t *dst = (size_t)n + 1 <= buf_room(b) ? buf_reserve(b, (size_t)n + 1) : NULL;
    char *tmp = NULL;
    if (dst == NULL) {
        tmp = malloc((size_t)n + 1);
        if (tmp == NULL)
            return -ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(tmp != NULL ? tmp : (char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (tmp != NULL) {
        int rc = buf_append(b, tmp, (size_t)n);
        free(tmp);
        return rc;
    }
    b->len += (uint32_t)n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    b->off += (uint32_t)n; /* n <= buf_size() */
    if (b->off == b->len)
        b->off = b->len = 0;
}

void buf_truncate(struct buf *b, size_t size)
{
    if (size < b->len - b->off)
        b->len = b->off + (uint32_t)size;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void buf_reset(struct buf *b)
{
    b->off = b->len = 0;
}

void buf_shrink(struct buf *b, size_t keep)
{
    if (b->cap > keep && b->len == b->off)
        buf_free(b);
}

void buf_put(struct buf_writer *w, const void *p, size_t n)
{
    if (w->dst != NULL && n > 0)
        memcpy(w->dst + w->len, p, n);
    w->len += n;
}

void buf_put_str(struct buf_writer *w, const char *s)
{
    buf_put(w, s, strlen(s));
}

void buf_put_uint(struct buf_writer *w, unsigned v)
{
    char digits[16]; /* 4294967295 has 10 */
    int n = snprintf(digits, sizeof digits, "%u", v);
    buf_put(w, digits, (size_t)n);
}
