/* fuzz_ws.c: libFuzzer target for the WebSocket side of wsrelay: ws.c's session (reassembly,
 * control frames, close, limits) and the two modules under it, frame.c and utf8.c.
 *
 * The input is the byte stream a client sends after the 101. Each run drives:
 *   1. ws_feed() over a private copy of the input (it unmasks in place), looping as conn_io.c
 *      does: consume what it returns, wait for more on 0, stop on an error or a close. This
 *      is played three ways: everything at once, in reads of input-derived sizes, and (for
 *      short inputs) one byte at a time. max_message is 4096 for most inputs and 0..200 for
 *      some, so the 1009 path is reached by small inputs too;
 *   2. for each event, the server's answer (echo, pong, close) written with ws_write_frame()
 *      / ws_write_close() into a small struct buf that is sometimes full;
 *   3. frame_decode_hdr() directly on the input (with and without require_mask), on its
 *      prefixes, and back through frame_encode_hdr(); frame_unmask() whole and in pieces;
 *   4. utf8_feed() over the input in pieces against utf8_valid() and a reference validator
 *      written here from the Unicode table of well-formed byte sequences;
 *   5. ws_write_close() with the input as the reason, ws_write_frame() with it as payload.
 *
 * Invariants (each a FUZZ_CHECK below, with its reason):
 *   - ws_feed() never consumes more than it was given; 0 means WS_EV_NONE; event data is
 *     never NULL; TEXT is valid UTF-8 (RFC 6455 §8.1) and at most max_message bytes, as is
 *     BINARY; PING/PONG payloads are at most 125 bytes (§5.5); a close code is one a peer may
 *     send (§7.4) or 1005 with an empty body, and the reason is UTF-8 of at most 123 bytes;
 *     after a close, ws_feed() consumes nothing; every error maps to a close code we send;
 *   - how the stream is cut into reads changes nothing: the same events (type, length,
 *     bytes, close code), the same error, the same bytes consumed. A session that answered
 *     differently to the same bytes would be at the mercy of TCP segmentation;
 *   - the writers append a whole frame or nothing (out unchanged on failure), and what they
 *     append decodes back to what was asked; a close reason is cut to 123 bytes on a UTF-8
 *     boundary;
 *   - frame_decode_hdr(): size 2..14 and within the input, only legal headers, shortest
 *     length form; fewer bytes never turn an answer into a different one; *h untouched on 0;
 *     encode(decode(x)) gives x back, minus mask;
 *   - utf8: pieces and whole agree, fail fast at exactly the first impossible byte, and match
 *     the reference.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "fuzz.h"
#include "utf8.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- A reference UTF-8 validator ---------------------------------------------------------
 * The Unicode Standard's Table 3-7 (well-formed UTF-8 byte sequences), read literally: the
 * first byte fixes the sequence length and the range allowed for the second byte (which is
 * where overlongs, surrogates and code points past U+10FFFF are excluded); later bytes are
 * 80..BF. */

struct utf8_ref {
    size_t bad_at; /* shortest prefix that cannot start valid UTF-8, or SIZE_MAX */
    bool complete; /* no sequence left open at the end (meaningful if bad_at == SIZE_MAX) */
};

static struct utf8_ref utf8_reference(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b == 0xE0) {
            need = 2, lo = 0xA0; /* no overlong 3-byte forms */
        } else if (b == 0xED) {
            need = 2, hi = 0x9F; /* no surrogates U+D800..U+DFFF */
        } else if (b >= 0xE1 && b <= 0xEF) {
            need = 2;
        } else if (b == 0xF0) {
            need = 3, lo = 0x90; /* no overlong 4-byte forms */
        } else if (b == 0xF4) {
            need = 3, hi = 0x8F; /* nothing past U+10FFFF */
        } else if (b >= 0xF1 && b <= 0xF3) {
            need = 3;
        } else {
            return (struct utf8_ref){i + 1, false}; /* 80..C1, F5..FF never start one */
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= len)
                return (struct utf8_ref){SIZE_MAX, false}; /* cut short, still possible */
            uint8_t c = p[i + k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF))
                return (struct utf8_ref){i + k + 1, false};
        }
        i += need + 1;
    }
    return (struct utf8_ref){SIZE_MAX, true};
}

static bool utf8_reference_valid(const uint8_t *p, size_t len)
{
    struct utf8_ref r = utf8_reference(p, len);
    return r.bad_at == SIZE_MAX && r.complete;
}

/* ---- Checking what the writers appended --------------------------------------------------- */

/* The frame the writers just appended at out's readable offset `at` (they write one whole
 * frame, FIN set, unmasked: §5.1). Returns its payload and length. */
static const uint8_t *check_written_frame(const struct buf *out, size_t at, uint8_t op,
                                          size_t *payload_len)
{
    const uint8_t *p = buf_head(out) + at;
    size_t len = buf_size(out) - at;
    struct frame_hdr h;
    ssize_t n = frame_decode_hdr(p, len, false, &h);
    FUZZ_CHECK(n >= 2 && !h.masked && h.fin && h.opcode == op);
    FUZZ_CHECK(h.payload_len == len - (size_t)n); /* exactly one frame, nothing else */
    *payload_len = len - (size_t)n;
    return p + n;
}

/* Snapshot of a buffer, to check that a failed write left it alone. */
struct snap {
    size_t size;
    uint64_t hash;
};

static struct snap snap_of(const struct buf *b)
{
    return (struct snap){buf_size(b), buf_size(b) ? fuzz_hash(buf_head(b), buf_size(b)) : 0};
}

static bool snap_same(const struct buf *b, struct snap s)
{
    struct snap now = snap_of(b);
    return now.size == s.size && now.hash == s.hash;
}

/* ws_write_frame(), checked: all or nothing, and it decodes back to (op, p, len). */
static void write_frame_checked(struct buf *out, enum frame_op op, const uint8_t *p, size_t len)
{
    struct snap before = snap_of(out);
    int rc = ws_write_frame(out, op, p, len);
    if (rc != 0) {
        FUZZ_CHECK(rc == -ENOBUFS || rc == -ENOMEM);
        FUZZ_CHECK(snap_same(out, before)); /* never half a frame on the wire */
        return;
    }
    size_t got_len;
    const uint8_t *got = check_written_frame(out, before.size, (uint8_t)op, &got_len);
    FUZZ_CHECK(got_len == len && (len == 0 || memcmp(got, p, len) == 0));
}

/* ws_write_close(), checked: §5.5.1's body, the reason cut to 123 bytes on a code point
 * boundary, all or nothing. */
static void write_close_checked(struct buf *out, uint16_t code, const char *reason)
{
    struct snap before = snap_of(out);
    int rc = ws_write_close(out, code, reason);
    if (rc != 0) {
        FUZZ_CHECK(rc == -ENOBUFS || rc == -ENOMEM);
        FUZZ_CHECK(snap_same(out, before));
        return;
    }
    size_t len;
    const uint8_t *body = check_written_frame(out, before.size, FRAME_OP_CLOSE, &len);
    FUZZ_CHECK(len <= FRAME_CONTROL_MAX);
    if (code == 0) {
        FUZZ_CHECK(len == 0);
        return;
    }
    FUZZ_CHECK(len >= 2 && body[0] == code >> 8 && body[1] == (code & 0xFF));
    size_t r = len - 2, want = reason != NULL ? strlen(reason) : 0;
    FUZZ_CHECK(r <= want && memcmp(body + 2, reason != NULL ? reason : "", r) == 0);
    if (want <= FRAME_CONTROL_MAX - 2) {
        FUZZ_CHECK(r == want); /* it fits: nothing is cut */
    } else {
        FUZZ_CHECK(r <= FRAME_CONTROL_MAX - 2);
        /* A UTF-8 reason is cut on a code point boundary: at most the 3 bytes of a sequence
         * that would not fit are dropped, and what is left is still UTF-8. (Server reasons
         * are static English; an invalid one only needs to be cut, however.) */
        if (utf8_reference_valid((const uint8_t *)reason, want)) {
            FUZZ_CHECK(r + 3 >= FRAME_CONTROL_MAX - 2);
            FUZZ_CHECK(((uint8_t)reason[r] & 0xC0) != 0x80);
            FUZZ_CHECK(utf8_valid(body + 2, r));
        }
    }
}

/* ---- Playing the stream through a session ------------------------------------------------ */

struct outcome {
    size_t nevents;
    uint64_t digest; /* hash over every event's type, code, length and bytes, in order */
    int err;         /* the ws_feed() error that ended the run, or 0 */
    bool closed;     /* a close frame ended it */
    size_t consumed; /* bytes consumed by the end (compared only when err == 0) */
};

static void digest_add(uint64_t *d, const void *p, size_t len)
{
    uint64_t h[2] = {*d, fuzz_hash(p, len)};
    *d = fuzz_hash(h, sizeof h);
}

static void check_event(const struct ws_event *ev, size_t max_message)
{
    /* ws.c: an event's data is never NULL, even when empty (WS_EV_NONE carries none). */
    FUZZ_CHECK(ev->type == WS_EV_NONE || ev->data != NULL);
    switch (ev->type) {
    case WS_EV_TEXT:
        /* §8.1: only valid UTF-8 reaches the application; the limit holds for the whole
         * message, however it was fragmented. */
        FUZZ_CHECK(ev->len <= max_message);
        FUZZ_CHECK(utf8_valid(ev->data, ev->len));
        FUZZ_CHECK(utf8_reference_valid(ev->data, ev->len));
        break;
    case WS_EV_BINARY:
        FUZZ_CHECK(ev->len <= max_message);
        break;
    case WS_EV_PING:
    case WS_EV_PONG:
        FUZZ_CHECK(ev->len <= FRAME_CONTROL_MAX); /* §5.5 */
        break;
    case WS_EV_CLOSE:
        /* §5.5.1: a 2-byte code and up to 123 bytes of UTF-8 reason, or nothing at all. */
        FUZZ_CHECK(ev->len <= FRAME_CONTROL_MAX - 2);
        if (ev->close_code == WS_CLOSE_NO_STATUS)
            FUZZ_CHECK(ev->len == 0);
        else
            FUZZ_CHECK(ws_close_code_valid(ev->close_code));
        FUZZ_CHECK(utf8_reference_valid(ev->data, ev->len));
        break;
    case WS_EV_NONE:
        break;
    default:
        FUZZ_CHECK(!"unknown event type");
    }
}

/* What routes.c does with an event: echo a message, answer a ping, return a close. */
static void answer(const struct ws_event *ev, struct buf *out)
{
    switch (ev->type) {
    case WS_EV_TEXT:
        write_frame_checked(out, FRAME_OP_TEXT, ev->data, ev->len);
        break;
    case WS_EV_BINARY:
        write_frame_checked(out, FRAME_OP_BINARY, ev->data, ev->len);
        break;
    case WS_EV_PING:
        write_frame_checked(out, FRAME_OP_PONG, ev->data, ev->len);
        break;
    case WS_EV_CLOSE:
        write_close_checked(out, ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code, "");
        break;
    default:
        break;
    }
}

/* Plays data[0..size) into a fresh session in reads of at most read_max bytes. The input
 * is copied into a buffer of exactly its size: ws_feed() writes (unmasks) in place, and
 * ASan then catches any access past the end. */
static struct outcome play(const uint8_t *data, size_t size, size_t max_message, size_t read_max,
                           struct fuzz_rng *r)
{
    struct outcome o = {.digest = 0};
    uint8_t *in = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(in != NULL);
    if (size > 0)
        memcpy(in, data, size);

    struct ws_session s;
    ws_init(&s, max_message);
    struct buf out; /* the server's output: small, so it is sometimes full */
    buf_init(&out, fuzz_rng_range(r, 0, 300));

    size_t have = 0, off = 0, floor = size / 256;
    while (have < size) {
        have += fuzz_read_size(r, read_max, floor, size - have); /* one read() */
        while (off < have) {
            struct ws_event ev;
            memset(&ev, 0xA5, sizeof ev); /* ws_feed must set every field it promises */
            ssize_t n = ws_feed(&s, in + off, have - off, &ev);
            if (n < 0) {
                o.err = (int)n;
                uint16_t code = ws_err_close_code(o.err);
                const char *why = ws_err_reason(o.err);
                /* Every error has its own close code (ws.h's table), never 1011 "ours". */
                FUZZ_CHECK(n >= WS_ERR_NOMEM && n != WS_ERR_NOMEM);
                FUZZ_CHECK(code == 1002 || code == 1007 || code == 1009);
                FUZZ_CHECK(why != NULL && why[0] != '\0' && strlen(why) <= 123);
                write_close_checked(&out, code, why);
                goto done;
            }
            FUZZ_CHECK((size_t)n <= have - off);
            if (n == 0) {
                FUZZ_CHECK(ev.type == WS_EV_NONE);
                break; /* needs more bytes: wait for the next read */
            }
            check_event(&ev, max_message);
            if (ev.type != WS_EV_NONE) {
                uint64_t rec[3] = {ev.type, ev.len, ev.close_code};
                if (ev.type != WS_EV_CLOSE)
                    rec[2] = 0; /* close_code is only meaningful for a close */
                digest_add(&o.digest, rec, sizeof rec);
                digest_add(&o.digest, ev.data, ev.len);
                o.nevents++;
                answer(&ev, &out);
                if (fuzz_rng_next(r) % 2) /* sometimes the socket drains, sometimes not */
                    buf_consume(&out, buf_size(&out));
            }
            off += (size_t)n; /* ev.data dies here */
            if (ev.type == WS_EV_CLOSE) {
                /* §5.5.1: after a close frame nothing the peer sends means anything. */
                o.closed = true;
                FUZZ_CHECK(ws_feed(&s, in + off, size - off, &ev) == 0);
                FUZZ_CHECK(ev.type == WS_EV_NONE);
                goto done;
            }
        }
    }
done:
    o.consumed = off;
    buf_free(&out);
    ws_free(&s);
    free(in);
    return o;
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    FUZZ_CHECK(a->nevents == b->nevents);
    FUZZ_CHECK(a->digest == b->digest);
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(a->closed == b->closed);
    if (a->err == 0)
        FUZZ_CHECK(a->consumed == b->consumed);
}

/* ---- frame.c directly --------------------------------------------------------------------- */

static void check_frame_hdr(const uint8_t *data, size_t size, bool require_mask, struct fuzz_rng *r)
{
    struct frame_hdr h, untouched;
    memset(&h, 0x5A, sizeof h);
    untouched = h;
    ssize_t n = frame_decode_hdr(data, size, require_mask, &h);
    FUZZ_CHECK(n >= FRAME_ERR_UNMASKED && n <= FRAME_HDR_MAX);
    FUZZ_CHECK(n <= 0 || (size_t)n <= size);
    if (n == 0) /* header.h: "*h untouched", and 14 bytes always decide */
        FUZZ_CHECK(memcmp(&h, &untouched, sizeof h) == 0 && size < FRAME_HDR_MAX);

    /* Fewer bytes: "need more" or the same error, never a different answer. */
    size_t lim = size < FRAME_HDR_MAX ? size : FRAME_HDR_MAX;
    for (size_t k = 0; k < lim; k++) {
        struct frame_hdr ph;
        ssize_t m = frame_decode_hdr(data, k, require_mask, &ph);
        if (n > 0)
            FUZZ_CHECK(k >= (size_t)n ? m == n : m == 0);
        else
            FUZZ_CHECK(m == 0 || m == n);
    }
    if (n <= 0)
        return;

    /* §5.2, as decoded: only what we accept gets through. */
    FUZZ_CHECK(h.rsv == 0);
    FUZZ_CHECK(h.opcode <= 0x2 || (h.opcode >= 0x8 && h.opcode <= 0xA));
    FUZZ_CHECK(!frame_is_control(h.opcode) || (h.fin && h.payload_len <= FRAME_CONTROL_MAX));
    FUZZ_CHECK(h.masked || !require_mask);
    FUZZ_CHECK((h.payload_len >> 63) == 0);
    size_t ext = h.payload_len <= 125 ? 0 : h.payload_len <= 0xFFFF ? 2 : 8; /* shortest */
    FUZZ_CHECK((size_t)n == 2 + ext + (h.masked ? 4 : 0));
    FUZZ_CHECK(h.masked ? memcmp(h.mask_key, data + n - 4, 4) == 0
                        : memcmp(h.mask_key, "\0\0\0\0", 4) == 0);

    /* Encoding it again gives the same bytes, minus MASK and key (a server never masks). */
    uint8_t enc[FRAME_HDR_MAX];
    size_t e = frame_encode_hdr(enc, h.fin, (enum frame_op)h.opcode, h.payload_len);
    FUZZ_CHECK(e == 2 + ext && enc[0] == data[0] && enc[1] == (data[1] & 0x7F));
    FUZZ_CHECK(memcmp(enc + 2, data + 2, ext) == 0);

    /* §5.3: unmasking in pieces (pos = offset in the payload) equals unmasking at once. */
    size_t plen = size - (size_t)n;
    if (plen > h.payload_len)
        plen = (size_t)h.payload_len;
    if (plen == 0)
        return;
    uint8_t *whole = malloc(plen), *pieces = malloc(plen);
    FUZZ_CHECK(whole != NULL && pieces != NULL);
    memcpy(whole, data + n, plen);
    memcpy(pieces, data + n, plen);
    frame_unmask(whole, plen, h.mask_key, 0);
    size_t max = fuzz_read_max(r, plen);
    for (size_t pos = 0; pos < plen;) {
        size_t k = fuzz_read_size(r, max, plen / 64, plen - pos);
        frame_unmask(pieces + pos, k, h.mask_key, pos);
        pos += k;
    }
    for (size_t i = 0; i < plen; i++)
        FUZZ_CHECK(whole[i] == (data[(size_t)n + i] ^ h.mask_key[i % 4]));
    FUZZ_CHECK(memcmp(whole, pieces, plen) == 0);
    free(whole);
    free(pieces);
}

/* ---- utf8.c directly ---------------------------------------------------------------------- */

static void check_utf8(const uint8_t *p, size_t len, struct fuzz_rng *r)
{
    struct utf8_ref ref = utf8_reference(p, len);
    bool valid = ref.bad_at == SIZE_MAX && ref.complete;
    FUZZ_CHECK(utf8_valid(p, len) == valid);

    struct utf8_state s;
    utf8_init(&s);
    size_t max = fuzz_read_max(r, len);
    for (size_t fed = 0; fed < len;) {
        size_t k = fuzz_read_size(r, max, len / 128, len - fed);
        bool ok = utf8_feed(&s, p + fed, k);
        fed += k;
        /* §8.1 fail fast: false exactly once the bytes so far cannot start valid UTF-8,
         * and false for ever after. */
        FUZZ_CHECK(ok == (fed < ref.bad_at));
    }
    FUZZ_CHECK(utf8_is_complete(&s) == valid);
}

/* ---- The target -------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_rng r;
    fuzz_rng_init(&r, data, size);

    /* Mostly the 4 KiB of the brief; one input in four gets a tiny limit, so that inputs of
     * a few bytes reach the 1009 paths (header check and reassembly) too. */
    size_t max_message = fuzz_rng_next(&r) % 4 ? 4096 : fuzz_rng_range(&r, 0, 200);

    struct outcome whole = play(data, size, max_message, size > 0 ? size : 1, &r);
    struct outcome split = play(data, size, max_message, fuzz_read_max(&r, size), &r);
    check_same(&whole, &split);
    if (size <= 512) {
        struct outcome bytes = play(data, size, max_message, 1, &r);
        check_same(&whole, &bytes);
    }

    check_frame_hdr(data, size, true, &r);
    check_frame_hdr(data, size, false, &r);
    check_utf8(data, size, &r);

    /* The writers with peer-chosen bytes: the input as a close reason (up to its first NUL)
     * and as a payload, into a buffer of random room that may already hold a few bytes. */
    char reason[301];
    size_t rlen = size < sizeof reason - 1 ? size : sizeof reason - 1;
    memcpy(reason, data, rlen);
    reason[rlen] = '\0';
    struct buf out;
    buf_init(&out, fuzz_rng_range(&r, 0, 160));
    if (fuzz_rng_next(&r) % 2)
        (void)buf_append(&out, "\x81\x00", 2); /* an earlier frame, if it fits */
    static const uint16_t codes[] = {0, 1000, 1001, 1002, 1007, 1009, 1011, 3000, 4999};
    uint16_t code = codes[fuzz_rng_next(&r) % (sizeof codes / sizeof codes[0])];
    write_close_checked(&out, code, reason);
    static const enum frame_op ops[] = {FRAME_OP_TEXT, FRAME_OP_BINARY, FRAME_OP_CONT,
                                        FRAME_OP_PING, FRAME_OP_PONG,   FRAME_OP_CLOSE};
    enum frame_op op = ops[fuzz_rng_next(&r) % (sizeof ops / sizeof ops[0])];
    size_t plen =
        frame_is_control((uint8_t)op) && size > FRAME_CONTROL_MAX ? FRAME_CONTROL_MAX : size;
    write_frame_checked(&out, op, data, plen);
    buf_free(&out);
    return 0;
}
