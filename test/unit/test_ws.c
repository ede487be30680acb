/* Unit tests for ws.c: RFC 6455 §5.7's sample frames, a table of frame sequences (valid
 * ones and every error path, each with its exact enum ws_err and close code) played whole,
 * byte by byte, in uneven chunks and pipelined; fail-fast UTF-8 and size checks; where
 * event data lives and for how long; close codes; the frame writers.
 *
 * Client frames are built by add_frame(), which masks them as a browser would. The player
 * feeds them through an rbuf exactly as ws.h's usage loop says server.c will. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws.h"

/* ---------------------------------------------------------------------------------------
 * Building client frames
 * ------------------------------------------------------------------------------------- */

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7's mask key */

/* Appends one client frame to w: first byte b0 (FIN, RSV, opcode) as given, MASK set, the
 * shortest length form, the key, then the payload masked with it (§5.3). */
static void add_frame(struct buf *w, uint8_t b0, const void *payload, size_t len)
{
    uint8_t *dst = buf_reserve(w, FRAME_HDR_MAX + len);
    assert_non_null(dst);
    size_t n = frame_encode_hdr(dst, false, FRAME_OP_CONT, len); /* length bytes only */
    dst[0] = b0;
    dst[1] |= 0x80;
    memcpy(dst + n, KEY, 4);
    if (len > 0)
        memcpy(dst + n + 4, payload, len);
    frame_unmask(dst + n + 4, len, KEY, 0); /* XOR: masking and unmasking are the same */
    buf_commit(w, n + 4 + len);
}

/* ---------------------------------------------------------------------------------------
 * Playing bytes into a session
 * ------------------------------------------------------------------------------------- */

enum { MAX_EVENTS = 64 };

struct rec {
    enum ws_event_type type;
    uint16_t close_code;
    size_t len;
    uint8_t *data; /* a copy: the event's own data dies when its bytes are consumed */
};

struct run {
    int err;           /* 0, or the negative ws_feed() result that ended the run */
    size_t fed_at_err; /* how many wire bytes had arrived when the error came */
    size_t nev;
    struct rec ev[MAX_EVENTS];
};

static void record(struct run *r, const struct ws_event *ev)
{
    assert_true(r->nev < MAX_EVENTS);
    assert_non_null(ev->data); /* never NULL, even when len is 0 (documented in ws.c) */
    struct rec *x = &r->ev[r->nev++];
    x->type = ev->type;
    x->close_code = ev->close_code;
    x->len = ev->len;
    x->data = malloc(ev->len > 0 ? ev->len : 1);
    assert_non_null(x->data);
    if (ev->len > 0)
        memcpy(x->data, ev->data, ev->len);
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->nev; i++)
        free(r->ev[i].data);
    r->nev = 0;
}

/* Plays wire[0..len) into a fresh session the way server.c will: bytes arrive `chunk` at a
 * time in an rbuf; after each arrival ws_feed() runs until it needs more, and each event is
 * used (copied) before its bytes are consumed. Stops at the first error. */
static void play(const uint8_t *wire, size_t len, size_t chunk, size_t max_message, struct run *r)
{
    memset(r, 0, sizeof *r);
    struct ws_session s;
    ws_init(&s, max_message);
    struct buf rb;
    buf_init(&rb, len + 1);
    size_t fed = 0;
    while (fed < len && r->err == 0) {
        size_t k = chunk < len - fed ? chunk : len - fed;
        assert_int_equal(buf_append(&rb, wire + fed, k), 0);
        fed += k;
        for (;;) {
            struct ws_event ev;
            size_t avail = buf_size(&rb);
            ssize_t n = ws_feed(&s, buf_head(&rb), avail, &ev);
            if (n < 0) {
                r->err = (int)n;
                r->fed_at_err = fed;
                break;
            }
            if (n == 0) {
                assert_int_equal(ev.type, WS_EV_NONE);
                break;
            }
            assert_true((size_t)n <= avail);
            if (ev.type != WS_EV_NONE)
                record(r, &ev);
            buf_consume(&rb, (size_t)n);
        }
    }
    buf_free(&rb);
    ws_free(&s);
}

/* What a run should produce. */
struct expect_ev {
    enum ws_event_type type; /* WS_EV_NONE ends a list */
    const char *data;
    size_t len;
    uint16_t close_code;
};

static void check_run(const struct run *r, const struct expect_ev *want, int err)
{
    size_t n = 0;
    while (want[n].type != WS_EV_NONE)
        n++;
    assert_int_equal(r->err, err);
    assert_int_equal(r->nev, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r->ev[i].type, want[i].type);
        assert_int_equal(r->ev[i].len, want[i].len);
        if (want[i].len > 0)
            assert_memory_equal(r->ev[i].data, want[i].data, want[i].len);
        if (want[i].type == WS_EV_CLOSE)
            assert_int_equal(r->ev[i].close_code, want[i].close_code);
    }
}

/* Whole, byte by byte, and in uneven chunks: the outcome must never depend on how TCP cut
 * the stream. */
static const size_t chunks[] = {1, 2, 3, 5, 8, 13, 1000, SIZE_MAX};

static void play_all_ways(const uint8_t *wire, size_t len, size_t max_message,
                          const struct expect_ev *want, int err)
{
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct run r;
        play(wire, len, chunks[c], max_message, &r);
        check_run(&r, want, err);
        run_free(&r);
    }
}

/* ---------------------------------------------------------------------------------------
 * RFC 6455 §5.7 samples
 * ------------------------------------------------------------------------------------- */

static void rfc_masked_hello_and_pong(void **state)
{
    (void)state;
    /* As printed in §5.7: a masked "Hello" and a masked pong "Hello". */
    const uint8_t text[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    const struct expect_ev want_text[] = {{WS_EV_TEXT, "Hello", 5, 0}, {0}};
    const struct expect_ev want_pong[] = {{WS_EV_PONG, "Hello", 5, 0}, {0}};
    play_all_ways(text, sizeof text, 1024, want_text, 0);
    play_all_ways(pong, sizeof pong, 1024, want_pong, 0);

    /* Our helper builds exactly the RFC's bytes. */
    struct buf w;
    buf_init(&w, 64);
    add_frame(&w, 0x81, "Hello", 5);
    assert_int_equal(buf_size(&w), sizeof text);
    assert_memory_equal(buf_head(&w), text, sizeof text);
    buf_free(&w);
}

static void rfc_unmasked_samples_are_refused_from_a_client(void **state)
{
    (void)state;
    /* §5.7's unmasked frames are what a server sends; from a client they break §5.1. */
    const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    const uint8_t hel[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    const struct expect_ev none[] = {{0}};
    play_all_ways(hello, sizeof hello, 1024, none, WS_ERR_UNMASKED);
    play_all_ways(hel, sizeof hel, 1024, none, WS_ERR_UNMASKED);
    play_all_ways(ping, sizeof ping, 1024, none, WS_ERR_UNMASKED);
    assert_int_equal(ws_err_close_code(WS_ERR_UNMASKED), 1002);
}

static void rfc_fragments_ping_and_long_binaries(void **state)
{
    (void)state;
    uint8_t *b256 = malloc(256), *b64k = malloc(65536);
    assert_non_null(b256);
    assert_non_null(b64k);
    for (size_t i = 0; i < 256; i++)
        b256[i] = (uint8_t)i;
    for (size_t i = 0; i < 65536; i++)
        b64k[i] = (uint8_t)(i * 7 + (i >> 8));

    struct buf w;
    buf_init(&w, 1 << 20);
    add_frame(&w, 0x01, "Hel", 3); /* §5.7 fragmented text, masked as a client sends it */
    add_frame(&w, 0x80, "lo", 2);
    add_frame(&w, 0x89, "Hello", 5); /* §5.7 ping */
    size_t at256 = buf_size(&w);
    add_frame(&w, 0x82, b256, 256); /* §5.7: 16-bit length */
    size_t at64k = buf_size(&w);
    add_frame(&w, 0x82, b64k, 65536); /* §5.7: 64-bit length */
    const uint8_t *wire = buf_head(&w);
    assert_memory_equal(wire + at256, "\x82\xfe\x01\x00", 4);
    assert_memory_equal(wire + at64k, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    const struct expect_ev want[] = {
        {WS_EV_TEXT, "Hello", 5, 0},
        {WS_EV_PING, "Hello", 5, 0},
        {WS_EV_BINARY, (const char *)b256, 256, 0},
        {WS_EV_BINARY, (const char *)b64k, 65536, 0},
        {0},
    };
    /* Pipelined (all in one buffer, several events per read) and cut every way. */
    play_all_ways(wire, buf_size(&w), 65536, want, 0);
    buf_free(&w);
    free(b256);
    free(b64k);
}

/* ---------------------------------------------------------------------------------------
 * The table: frame sequences and what they must produce
 * ------------------------------------------------------------------------------------- */

struct frame_spec {
    uint8_t b0; /* FIN | RSV | opcode */
    const char *p;
    size_t len;
};

struct row {
    const char *name;
    size_t max_message; /* 0: 1024 */
    struct frame_spec f[8];
    struct expect_ev e[8];
    int err;           /* 0 or the expected enum ws_err */
    uint16_t err_code; /* its close code */
};

#define F(b0, s)                                                                                   \
    {                                                                                              \
        b0, s, sizeof(s) - 1                                                                       \
    }
#define EV(t, s)                                                                                   \
    {                                                                                              \
        t, s, sizeof(s) - 1, 0                                                                     \
    }
#define CLOSE_EV(c, s)                                                                             \
    {                                                                                              \
        WS_EV_CLOSE, s, sizeof(s) - 1, c                                                           \
    }
#define FAIL(e, code) e, code /* the expected error and its close code */
#define NO_ERR        0, 0

// clang-format off
static const struct row rows[] = {
    /* Single frames. */
    {"text", 0, {F(0x81, "Hello")}, {EV(WS_EV_TEXT, "Hello")}, NO_ERR},
    {"binary, not UTF-8 checked", 0, {F(0x82, "\x00\xff\xfe")},
     {EV(WS_EV_BINARY, "\x00\xff\xfe")}, NO_ERR},
    {"ping", 0, {F(0x89, "Hello")}, {EV(WS_EV_PING, "Hello")}, NO_ERR},
    {"empty ping", 0, {F(0x89, "")}, {EV(WS_EV_PING, "")}, NO_ERR},
    {"pong", 0, {F(0x8A, "Hello")}, {EV(WS_EV_PONG, "Hello")}, NO_ERR},
    {"empty text", 0, {F(0x81, "")}, {EV(WS_EV_TEXT, "")}, NO_ERR},
    {"empty binary", 0, {F(0x82, "")}, {EV(WS_EV_BINARY, "")}, NO_ERR},
    {"U+10FFFF and U+FFFF", 0, {F(0x81, "\xf4\x8f\xbf\xbf\xef\xbf\xbf")},
     {EV(WS_EV_TEXT, "\xf4\x8f\xbf\xbf\xef\xbf\xbf")}, NO_ERR},
    {"pipelined", 0, {F(0x81, "a"), F(0x82, "b"), F(0x89, "c"), F(0x8A, ""), F(0x81, "d")},
     {EV(WS_EV_TEXT, "a"), EV(WS_EV_BINARY, "b"), EV(WS_EV_PING, "c"), EV(WS_EV_PONG, ""),
      EV(WS_EV_TEXT, "d")}, NO_ERR},

    /* Fragmentation (§5.4). */
    {"Hel + lo", 0, {F(0x01, "Hel"), F(0x80, "lo")}, {EV(WS_EV_TEXT, "Hello")}, NO_ERR},
    {"ping between fragments", 0, {F(0x01, "Hel"), F(0x89, "ping"), F(0x80, "lo")},
     {EV(WS_EV_PING, "ping"), EV(WS_EV_TEXT, "Hello")}, NO_ERR},
    {"pong and ping between three fragments", 0,
     {F(0x02, "ab"), F(0x8A, ""), F(0x00, "cd"), F(0x89, "x"), F(0x80, "ef")},
     {EV(WS_EV_PONG, ""), EV(WS_EV_PING, "x"), EV(WS_EV_BINARY, "abcdef")}, NO_ERR},
    {"1-byte fragments", 0,
     {F(0x01, "H"), F(0x00, "e"), F(0x00, "l"), F(0x00, "l"), F(0x80, "o")},
     {EV(WS_EV_TEXT, "Hello")}, NO_ERR},
    {"empty fragments", 0, {F(0x01, ""), F(0x00, ""), F(0x80, "")},
     {EV(WS_EV_TEXT, "")}, NO_ERR},
    {"empty first fragment", 0, {F(0x01, ""), F(0x80, "Hello")},
     {EV(WS_EV_TEXT, "Hello")}, NO_ERR},
    {"empty last fragment", 0, {F(0x02, "Hello"), F(0x80, "")},
     {EV(WS_EV_BINARY, "Hello")}, NO_ERR},
    {"code point split across fragments", 0,
     {F(0x01, "\xce\xba\xe1"), F(0x00, "\xbd"), F(0x80, "\xb9")},
     {EV(WS_EV_TEXT, "\xce\xba\xe1\xbd\xb9")}, NO_ERR},
    {"4-byte code point in 1-byte fragments, ping inside", 0,
     {F(0x01, "\xf0"), F(0x00, "\x9f"), F(0x89, ""), F(0x00, "\x98"), F(0x80, "\x80")},
     {EV(WS_EV_PING, ""), EV(WS_EV_TEXT, "\xf0\x9f\x98\x80")}, NO_ERR},
    {"binary fragments, not UTF-8 checked", 0, {F(0x02, "\xf0"), F(0x80, "\xff")},
     {EV(WS_EV_BINARY, "\xf0\xff")}, NO_ERR},
    {"two fragmented messages in a row", 0,
     {F(0x01, "a"), F(0x80, "b"), F(0x02, "c"), F(0x80, "d")},
     {EV(WS_EV_TEXT, "ab"), EV(WS_EV_BINARY, "cd")}, NO_ERR},

    /* Close frames (§5.5.1, §7.4). */
    {"close, empty", 0, {F(0x88, "")}, {CLOSE_EV(WS_CLOSE_NO_STATUS, "")}, NO_ERR},
    {"close 1000", 0, {F(0x88, "\x03\xe8")}, {CLOSE_EV(1000, "")}, NO_ERR},
    {"close 1000 with reason", 0, {F(0x88, "\x03\xe8" "bye")},
     {CLOSE_EV(1000, "bye")}, NO_ERR},
    {"close 4999, UTF-8 reason", 0, {F(0x88, "\x13\x87\xce\xba")},
     {CLOSE_EV(4999, "\xce\xba")}, NO_ERR},
    {"close between fragments", 0, {F(0x01, "Hel"), F(0x88, "\x03\xe9")},
     {CLOSE_EV(1001, "")}, NO_ERR},
    {"nothing after close is read", 0, {F(0x88, "\x03\xe8"), F(0x81, "x"), F(0xC1, "bad")},
     {CLOSE_EV(1000, "")}, NO_ERR},

    /* Size limit (§7.4.1, 1009): message bytes so far + this frame > max_message. */
    {"exactly max_message", 8, {F(0x81, "12345678")},
     {EV(WS_EV_TEXT, "12345678")}, NO_ERR},
    {"exactly max_message in fragments", 8, {F(0x01, "1234"), F(0x89, "p"), F(0x80, "5678")},
     {EV(WS_EV_PING, "p"), EV(WS_EV_TEXT, "12345678")}, NO_ERR},
    {"one over", 8, {F(0x81, "123456789")}, {{0}}, FAIL(WS_ERR_TOO_BIG, 1009)},
    {"one over in fragments", 8, {F(0x02, "1234"), F(0x80, "56789")}, {{0}},
     FAIL(WS_ERR_TOO_BIG, 1009)},
    {"control frames do not count", 4, {F(0x89, "12345"), F(0x81, "1234")},
     {EV(WS_EV_PING, "12345"), EV(WS_EV_TEXT, "1234")}, NO_ERR},

    /* Frame errors (§5.2, §5.5): 1002. */
    {"RSV1", 0, {F(0xC1, "x")}, {{0}}, FAIL(WS_ERR_RSV, 1002)},
    {"RSV2", 0, {F(0xA1, "x")}, {{0}}, FAIL(WS_ERR_RSV, 1002)},
    {"RSV3", 0, {F(0x91, "x")}, {{0}}, FAIL(WS_ERR_RSV, 1002)},
    {"RSV on a continuation", 0, {F(0x01, "a"), F(0xC0, "b")}, {{0}}, FAIL(WS_ERR_RSV, 1002)},
    {"reserved data opcode 3", 0, {F(0x83, "")}, {{0}}, FAIL(WS_ERR_OPCODE, 1002)},
    {"reserved control opcode B", 0, {F(0x8B, "")}, {{0}}, FAIL(WS_ERR_OPCODE, 1002)},
    {"fragmented ping", 0, {F(0x09, "x")}, {{0}}, FAIL(WS_ERR_CONTROL, 1002)},
    {"fragmented close", 0, {F(0x08, "")}, {{0}}, FAIL(WS_ERR_CONTROL, 1002)},
    {"ping then a bad frame", 0, {F(0x89, "p"), F(0xC1, "x")},
     {EV(WS_EV_PING, "p")}, FAIL(WS_ERR_RSV, 1002)},

    /* Fragmentation errors (§5.4): 1002. */
    {"continuation, no message", 0, {F(0x80, "x")}, {{0}}, FAIL(WS_ERR_CONTINUATION, 1002)},
    {"non-final continuation, no message", 0, {F(0x00, "x")}, {{0}},
     FAIL(WS_ERR_CONTINUATION, 1002)},
    {"continuation after a whole message", 0, {F(0x81, "a"), F(0x80, "b")},
     {EV(WS_EV_TEXT, "a")}, FAIL(WS_ERR_CONTINUATION, 1002)},
    {"text inside a fragmented message", 0, {F(0x01, "a"), F(0x81, "b")}, {{0}},
     FAIL(WS_ERR_INTERLEAVED, 1002)},
    {"binary inside a fragmented message", 0, {F(0x01, "a"), F(0x02, "b")}, {{0}},
     FAIL(WS_ERR_INTERLEAVED, 1002)},

    /* Text that is not UTF-8 (§8.1): 1007. */
    {"overlong", 0, {F(0x81, "\xc0\x80")}, {{0}}, FAIL(WS_ERR_UTF8, 1007)},
    {"surrogate", 0, {F(0x81, "\xed\xa0\x80")}, {{0}}, FAIL(WS_ERR_UTF8, 1007)},
    {"F4 90", 0, {F(0x81, "\xf4\x90\x80\x80")}, {{0}}, FAIL(WS_ERR_UTF8, 1007)},
    {"stray continuation", 0, {F(0x81, "a\x80")}, {{0}}, FAIL(WS_ERR_UTF8, 1007)},
    {"truncated at the end", 0, {F(0x81, "\xe2\x82")}, {{0}}, FAIL(WS_ERR_UTF8, 1007)},
    {"truncated at the end, across fragments", 0, {F(0x01, "\xe2"), F(0x80, "\x82")}, {{0}},
     FAIL(WS_ERR_UTF8, 1007)},
    {"truncated before an empty last fragment", 0, {F(0x01, "\xc3"), F(0x80, "")}, {{0}},
     FAIL(WS_ERR_UTF8, 1007)},
    {"bad byte in a later fragment", 0, {F(0x01, "Hello"), F(0x00, "\xff"), F(0x80, "x")},
     {{0}}, FAIL(WS_ERR_UTF8, 1007)},

    /* Bad close frames (§5.5.1, §7.4). */
    {"close with 1 byte", 0, {F(0x88, "\x03")}, {{0}}, FAIL(WS_ERR_CLOSE_PAYLOAD, 1002)},
    {"close code 999", 0, {F(0x88, "\x03\xe7")}, {{0}}, FAIL(WS_ERR_CLOSE_CODE, 1002)},
    {"close code 1005 on the wire", 0, {F(0x88, "\x03\xed")}, {{0}},
     FAIL(WS_ERR_CLOSE_CODE, 1002)},
    {"close code 0", 0, {F(0x88, "\x00\x00")}, {{0}}, FAIL(WS_ERR_CLOSE_CODE, 1002)},
    {"close reason not UTF-8", 0, {F(0x88, "\x03\xe8\xff")}, {{0}},
     FAIL(WS_ERR_CLOSE_REASON, 1007)},
    {"close reason truncated", 0, {F(0x88, "\x03\xe8" "ab\xce")}, {{0}},
     FAIL(WS_ERR_CLOSE_REASON, 1007)},
    {"bad code and bad reason: the code is reported", 0, {F(0x88, "\x03\xee\xff")}, {{0}},
     FAIL(WS_ERR_CLOSE_CODE, 1002)},
};
// clang-format on

static size_t build_row(const struct row *r, struct buf *w)
{
    buf_init(w, 4096);
    for (const struct frame_spec *f = r->f; f->p != NULL; f++)
        add_frame(w, f->b0, f->p, f->len);
    return r->max_message != 0 ? r->max_message : 1024;
}

static void table_whole_byte_by_byte_and_chunked(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        print_message("  %s\n", r->name);
        struct buf w;
        size_t max = build_row(r, &w);
        play_all_ways(buf_head(&w), buf_size(&w), max, r->e, r->err);
        if (r->err != 0)
            assert_int_equal(ws_err_close_code(r->err), r->err_code);
        buf_free(&w);
    }
}

/* Every row without an error or a close, all in one buffer: one event after another. */
static void table_pipelined(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1 << 16);
    struct expect_ev want[MAX_EVENTS + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        bool closes = false;
        for (const struct expect_ev *e = r->e; e->type != WS_EV_NONE; e++)
            closes = closes || e->type == WS_EV_CLOSE;
        if (r->err != 0 || closes || r->max_message != 0)
            continue;
        for (const struct frame_spec *f = r->f; f->p != NULL; f++)
            add_frame(&w, f->b0, f->p, f->len);
        for (const struct expect_ev *e = r->e; e->type != WS_EV_NONE; e++) {
            assert_true(n < MAX_EVENTS);
            want[n++] = *e;
        }
    }
    want[n] = (struct expect_ev){0};
    assert_true(n > 20);
    play_all_ways(buf_head(&w), buf_size(&w), 1024, want, 0);
    buf_free(&w);
}

/* ---------------------------------------------------------------------------------------
 * Errors only raw bytes can show
 * ------------------------------------------------------------------------------------- */

/* Feeds raw bytes (already masked as needed) whole; returns the ws_feed result. */
static ssize_t feed_once(const uint8_t *wire, size_t len, size_t max_message, struct ws_event *ev)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, wire, len);
    struct ws_session s;
    ws_init(&s, max_message);
    ssize_t n = ws_feed(&s, copy, len, ev);
    ws_free(&s);
    free(copy);
    return n;
}

static void length_not_minimal_or_too_long(void **state)
{
    (void)state;
    struct ws_event ev;
    /* 126 announcing 5 bytes, 127 announcing 256, 127 with the top bit set (§5.2). */
    const uint8_t n16[] = {0x81, 0xFE, 0x00, 0x05, 0x37, 0xfa, 0x21, 0x3d, 1, 2, 3, 4, 5};
    const uint8_t n64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d};
    const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x37, 0xfa, 0x21, 0x3d};
    assert_int_equal(feed_once(n16, sizeof n16, 1024, &ev), WS_ERR_LENGTH);
    assert_int_equal(feed_once(n64, sizeof n64, 1024, &ev), WS_ERR_LENGTH);
    assert_int_equal(feed_once(top, sizeof top, SIZE_MAX, &ev), WS_ERR_LENGTH);
    assert_int_equal(ws_err_close_code(WS_ERR_LENGTH), 1002);

    /* A ping announcing 126 bytes (§5.5): refused after its first two bytes. */
    const uint8_t ping[] = {0x89, 0xFE};
    assert_int_equal(feed_once(ping, sizeof ping, 1024, &ev), WS_ERR_CONTROL);
    assert_int_equal(ws_err_close_code(WS_ERR_CONTROL), 1002);
}

static void every_reserved_opcode_is_refused(void **state)
{
    (void)state;
    for (unsigned op = 0; op < 16; op++) {
        if (op <= 0x2 || (op >= 0x8 && op <= 0xA))
            continue;
        const uint8_t wire[] = {(uint8_t)(0x80 | op), 0x80, 0x37, 0xfa, 0x21, 0x3d};
        struct ws_event ev;
        assert_int_equal(feed_once(wire, sizeof wire, 1024, &ev), WS_ERR_OPCODE);
        assert_int_equal(feed_once(wire, 1, 1024, &ev), WS_ERR_OPCODE); /* first byte: enough */
    }
}

static void control_frames_of_125_bytes_in_pieces(void **state)
{
    (void)state;
    char payload[126];
    memset(payload, 'p', 125);
    payload[125] = '\0';
    char close[126];
    close[0] = 0x03, close[1] = (char)0xe8;
    memset(close + 2, 'r', 123);
    close[125] = '\0';

    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x89, payload, 125);
    add_frame(&w, 0x8A, payload, 125);
    add_frame(&w, 0x88, close, 125);
    const struct expect_ev want[] = {
        {WS_EV_PING, payload, 125, 0},
        {WS_EV_PONG, payload, 125, 0},
        {WS_EV_CLOSE, close + 2, 123, 1000},
        {0},
    };
    play_all_ways(buf_head(&w), buf_size(&w), 16, want, 0); /* max_message: data only */
    buf_free(&w);
}

/* ---------------------------------------------------------------------------------------
 * Fail fast: errors before the rest of the frame arrives
 * ------------------------------------------------------------------------------------- */

static void invalid_utf8_fails_before_the_frame_ends(void **state)
{
    (void)state;
    /* One 40-byte text frame whose 5th payload byte is invalid: with bytes arriving one by
     * one, the error must come with that byte, 35 bytes before the frame is complete. */
    char text[41];
    memset(text, 'x', 40);
    text[40] = '\0';
    text[4] = (char)0xff;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x81, text, 40);
    struct run r;
    play(buf_head(&w), buf_size(&w), 1, 1024, &r);
    assert_int_equal(r.err, WS_ERR_UTF8);
    assert_int_equal(r.fed_at_err, 6 + 5); /* 6-byte header, then bytes 0..4 */
    run_free(&r);

    /* In three reads, the bad byte in the second (Autobahn 6.4.2's shape). */
    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    uint8_t *in = buf_head(&w);
    assert_int_equal(ws_feed(&s, in, 8, &ev), 8); /* header + "xx": consumed, nothing yet */
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_int_equal(ws_feed(&s, in + 8, 10, &ev), WS_ERR_UTF8);
    ws_free(&s);
    buf_free(&w);
}

static void invalid_utf8_fails_before_the_last_fragment(void **state)
{
    (void)state;
    /* Autobahn 6.4.1: "kosme", then a fragment holding a surrogate, then "edited". The
     * error must come with the surrogate's second byte, before the last fragment. */
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x01, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
    size_t first = buf_size(&w);
    add_frame(&w, 0x00, "\xed\xa0\x80", 3);
    add_frame(&w, 0x80, "edited", 6);
    struct run r;
    play(buf_head(&w), buf_size(&w), 1, 1024, &r);
    assert_int_equal(r.err, WS_ERR_UTF8);
    assert_int_equal(r.fed_at_err, first + 6 + 2);
    assert_int_equal(r.nev, 0);
    run_free(&r);
    buf_free(&w);
}

static void too_big_is_refused_at_the_header(void **state)
{
    (void)state;
    struct ws_event ev;
    /* A 16-bit length of 201 with max_message 200: refused with the header alone; one byte
     * short of the header, still waiting; with room for it, the header is consumed. */
    const uint8_t h16[] = {0x82, 0xFE, 0x00, 0xC9, 0x37, 0xfa, 0x21, 0x3d};
    assert_int_equal(feed_once(h16, sizeof h16, 200, &ev), WS_ERR_TOO_BIG);
    assert_int_equal(feed_once(h16, sizeof h16 - 1, 200, &ev), 0);
    assert_int_equal(feed_once(h16, sizeof h16, 201, &ev), (ssize_t)sizeof h16);
    /* A 64-bit length of 1 TiB: no waiting for a terabyte. */
    const uint8_t h64[] = {0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x37, 0xfa, 0x21, 0x3d};
    assert_int_equal(feed_once(h64, sizeof h64, 100, &ev), WS_ERR_TOO_BIG);
    assert_int_equal(feed_once(h64, sizeof h64, SIZE_MAX, &ev), (ssize_t)sizeof h64);
    assert_int_equal(ws_err_close_code(WS_ERR_TOO_BIG), 1009);

    /* Fragments: 60 bytes, then a header announcing 41 more: refused at that header. */
    uint8_t data[60] = {0};
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x02, data, 60);
    size_t first = buf_size(&w);
    add_frame(&w, 0x80, data, 41);
    struct run r;
    play(buf_head(&w), buf_size(&w), 1, 100, &r);
    assert_int_equal(r.err, WS_ERR_TOO_BIG);
    assert_int_equal(r.fed_at_err, first + 6);
    run_free(&r);
    buf_free(&w);

    /* max_message 0: only empty messages. */
    buf_init(&w, 64);
    add_frame(&w, 0x81, "", 0);
    add_frame(&w, 0x01, "", 0);
    add_frame(&w, 0x80, "", 0);
    add_frame(&w, 0x81, "x", 1);
    const struct expect_ev want[] = {{WS_EV_TEXT, "", 0, 0}, {WS_EV_TEXT, "", 0, 0}, {0}};
    play_all_ways(buf_head(&w), buf_size(&w), 0, want, WS_ERR_TOO_BIG);
    buf_free(&w);
}

/* ---------------------------------------------------------------------------------------
 * Where event data lives, and for how long
 * ------------------------------------------------------------------------------------- */

static void whole_frame_is_a_view_into_the_input(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x81, "Hello", 5);
    add_frame(&w, 0x82, "xyz", 3);
    uint8_t *in = buf_head(&w);
    size_t len = buf_size(&w);

    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, in, len, &ev), 11); /* the first frame only */
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_ptr_equal(ev.data, in + 6); /* unmasked in place: no copy */
    assert_memory_equal(in + 6, "Hello", 5);
    assert_int_equal(ws_feed(&s, in + 11, len - 11, &ev), 9);
    assert_int_equal(ev.type, WS_EV_BINARY);
    assert_ptr_equal(ev.data, in + 17);
    assert_null(s.message.data); /* nothing was ever allocated */
    ws_free(&s);
    buf_free(&w);
}

static void header_first_then_whole_payload_is_still_a_view(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x81, "Hello", 5);
    uint8_t *in = buf_head(&w);
    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, in, 6, &ev), 6); /* the header alone is consumed */
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_int_equal(ws_feed(&s, in + 6, 5, &ev), 5);
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_ptr_equal(ev.data, in + 6);
    assert_null(s.message.data);
    ws_free(&s);
    buf_free(&w);
}

static void partial_payload_is_copied_and_consumed(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x81, "Hello", 5);
    uint8_t *in = buf_head(&w);
    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, in, 8, &ev), 8); /* header + "He": all consumed */
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_int_equal(ws_feed(&s, in + 8, 3, &ev), 3);
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_int_equal(ev.len, 5);
    assert_ptr_equal(ev.data, buf_head(&s.message));
    assert_memory_equal(ev.data, "Hello", 5);
    ws_free(&s);
    buf_free(&w);
}

/* The reassembly buffer is emptied and shrunk at the start of the next ws_feed(), not
 * before returning the event: under ASan, reading ev.data here would fail if it were. */
static void reassembled_data_lives_until_the_next_feed(void **state)
{
    (void)state;
    enum { HALF = 5000 };
    uint8_t *big = malloc(2 * HALF);
    assert_non_null(big);
    for (size_t i = 0; i < 2 * HALF; i++)
        big[i] = (uint8_t)(i % 251);
    struct buf w;
    buf_init(&w, 1 << 16);
    add_frame(&w, 0x02, big, HALF);
    add_frame(&w, 0x80, big + HALF, HALF);

    struct ws_session s;
    ws_init(&s, 1 << 20);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, buf_head(&w), buf_size(&w), &ev), (ssize_t)buf_size(&w));
    assert_int_equal(ev.type, WS_EV_BINARY);
    assert_int_equal(ev.len, 2 * HALF);
    assert_ptr_equal(ev.data, buf_head(&s.message));
    assert_memory_equal(ev.data, big, 2 * HALF); /* still valid after ws_feed returned */
    assert_true(s.message.cap > 4096);

    /* The next call, even with no bytes, lets the big buffer go. */
    assert_int_equal(ws_feed(&s, NULL, 0, &ev), 0);
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_null(s.message.data);

    /* A small message's storage is kept for the next one, but emptied. */
    buf_reset(&w);
    add_frame(&w, 0x01, "ab", 2);
    add_frame(&w, 0x80, "cd", 2);
    assert_int_equal(ws_feed(&s, buf_head(&w), buf_size(&w), &ev), (ssize_t)buf_size(&w));
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_memory_equal(ev.data, "abcd", 4);
    uint8_t *storage = s.message.data;
    assert_int_equal(ws_feed(&s, buf_head(&w), 0, &ev), 0);
    assert_ptr_equal(s.message.data, storage);
    assert_int_equal(buf_size(&s.message), 0);

    ws_free(&s);
    buf_free(&w);
    free(big);
}

/* A control frame between fragments must leave the message being reassembled alone,
 * including its storage: the ping's event comes while the message is half built. */
static void control_frame_does_not_disturb_the_message(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x01, "Hel", 3);
    add_frame(&w, 0x89, "!", 1);
    size_t upto_ping = buf_size(&w);
    add_frame(&w, 0x80, "lo", 2);
    uint8_t *in = buf_head(&w);

    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, in, buf_size(&w), &ev), (ssize_t)upto_ping);
    assert_int_equal(ev.type, WS_EV_PING);
    assert_true(s.in_message);
    assert_int_equal(buf_size(&s.message), 3);
    assert_int_equal(ws_feed(&s, in + upto_ping, buf_size(&w) - upto_ping, &ev),
                     (ssize_t)(buf_size(&w) - upto_ping));
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_memory_equal(ev.data, "Hello", 5);
    assert_false(s.in_message);
    ws_free(&s);
    buf_free(&w);
}

static void empty_payloads_have_non_null_data(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x81, "", 0); /* fast path */
    add_frame(&w, 0x01, "", 0); /* reassembled, never allocated */
    add_frame(&w, 0x80, "", 0);
    add_frame(&w, 0x89, "", 0);
    add_frame(&w, 0x88, "", 0);
    uint8_t *in = buf_head(&w);
    size_t len = buf_size(&w), off = 0;
    struct ws_session s;
    ws_init(&s, 1024);
    const enum ws_event_type want[] = {WS_EV_TEXT, WS_EV_TEXT, WS_EV_PING, WS_EV_CLOSE};
    for (size_t i = 0; i < 4; i++) {
        struct ws_event ev;
        ssize_t n = ws_feed(&s, in + off, len - off, &ev);
        assert_true(n > 0);
        off += (size_t)n;
        assert_int_equal(ev.type, want[i]);
        assert_int_equal(ev.len, 0);
        assert_non_null(ev.data);
    }
    assert_int_equal(off, len);
    ws_free(&s);
    buf_free(&w);
}

static void after_close_nothing_is_consumed(void **state)
{
    (void)state;
    struct buf w;
    buf_init(&w, 1024);
    add_frame(&w, 0x88,
              "\x03\xe8"
              "bye",
              5);
    size_t close_len = buf_size(&w);
    add_frame(&w, 0x81, "late", 4);
    uint8_t *in = buf_head(&w);

    struct ws_session s;
    ws_init(&s, 1024);
    struct ws_event ev;
    assert_int_equal(ws_feed(&s, in, buf_size(&w), &ev), (ssize_t)close_len);
    assert_int_equal(ev.type, WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1000);
    assert_int_equal(ev.len, 3);
    assert_memory_equal(ev.data, "bye", 3);
    assert_true(s.close_received);
    assert_int_equal(ws_feed(&s, in + close_len, buf_size(&w) - close_len, &ev), 0);
    assert_int_equal(ev.type, WS_EV_NONE);
    ws_free(&s);
    buf_free(&w);
}

/* Many tiny fragments with pings between, multi-byte text cut everywhere. */
static void long_message_in_one_byte_fragments(void **state)
{
    (void)state;
    struct buf text;
    buf_init(&text, 4096);
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_append_str(&text, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 0);
    const uint8_t *t = buf_head(&text);
    size_t n = buf_size(&text);

    struct buf w;
    buf_init(&w, 1 << 16);
    for (size_t i = 0; i < n; i++) {
        uint8_t b0 = (uint8_t)((i == 0 ? FRAME_OP_TEXT : FRAME_OP_CONT) | (i == n - 1 ? 0x80 : 0));
        add_frame(&w, b0, t + i, 1);
        if (i % 97 == 0)
            add_frame(&w, 0x89, "", 0);
    }
    struct expect_ev want[8];
    size_t k = 0;
    for (size_t i = 0; i < n; i += 97)
        want[k++] = (struct expect_ev){WS_EV_PING, "", 0, 0};
    want[k++] = (struct expect_ev){WS_EV_TEXT, (const char *)t, n, 0};
    want[k] = (struct expect_ev){0};
    play_all_ways(buf_head(&w), buf_size(&w), n, want, 0);
    buf_free(&w);
    buf_free(&text);
}

/* ---------------------------------------------------------------------------------------
 * The error table and close codes
 * ------------------------------------------------------------------------------------- */

static void every_error_has_its_code_and_reason(void **state)
{
    (void)state;
    static const struct {
        int err;
        uint16_t code;
        const char *reason;
    } want[] = {
        {WS_ERR_RSV, 1002, "reserved bits set"},
        {WS_ERR_OPCODE, 1002, "reserved opcode"},
        {WS_ERR_CONTROL, 1002, "bad control frame"},
        {WS_ERR_LENGTH, 1002, "bad payload length"},
        {WS_ERR_UNMASKED, 1002, "unmasked frame"},
        {WS_ERR_CONTINUATION, 1002, "continuation without a message"},
        {WS_ERR_INTERLEAVED, 1002, "new message inside a fragmented one"},
        {WS_ERR_UTF8, 1007, "invalid UTF-8"},
        {WS_ERR_TOO_BIG, 1009, "message too big"},
        {WS_ERR_CLOSE_PAYLOAD, 1002, "bad close frame"},
        {WS_ERR_CLOSE_CODE, 1002, "invalid close code"},
        {WS_ERR_CLOSE_REASON, 1007, "invalid UTF-8 in close reason"},
        {WS_ERR_NOMEM, 1011, "out of memory"},
    };
    size_t n = sizeof want / sizeof want[0];
    assert_int_equal(n, 13); /* one row per enum ws_err, -1..-13 */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(want[i].err, -(int)(i + 1));
        assert_int_equal(ws_err_close_code(want[i].err), want[i].code);
        assert_string_equal(ws_err_reason(want[i].err), want[i].reason);
        assert_true(strlen(ws_err_reason(want[i].err)) <= 123); /* fits a close frame */
    }
    /* frame.h's errors are the same numbers. */
    assert_int_equal(FRAME_ERR_RSV, WS_ERR_RSV);
    assert_int_equal(FRAME_ERR_UNMASKED, WS_ERR_UNMASKED);
    /* Not an enum ws_err: our bug, answered 1011. */
    const int bogus[] = {0, 1, -14, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        assert_int_equal(ws_err_close_code(bogus[i]), 1011);
        assert_string_equal(ws_err_reason(bogus[i]), "internal error");
    }
}

static const struct {
    uint16_t code;
    bool valid;
} close_codes[] = {
    {0, false},    {999, false},  {1000, true},  {1001, true},   {1002, true}, {1003, true},
    {1004, false}, {1005, false}, {1006, false}, {1007, true},   {1008, true}, {1009, true},
    {1010, true},  {1011, true},  {1012, true},  {1013, true},   {1014, true}, {1015, false},
    {1016, false}, {1100, false}, {2000, false}, {2999, false},  {3000, true}, {3999, true},
    {4000, true},  {4999, true},  {5000, false}, {65535, false},
};

static void close_code_validity(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof close_codes / sizeof close_codes[0]; i++)
        assert_int_equal(ws_close_code_valid(close_codes[i].code), close_codes[i].valid);
    /* And nothing else: 1000-1003, 1007-1014, 3000-4999. */
    size_t n = 0;
    for (uint32_t c = 0; c <= 0xFFFF; c++)
        n += ws_close_code_valid((uint16_t)c);
    assert_int_equal(n, 4 + 8 + 2000);
}

static void close_codes_through_ws_feed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof close_codes / sizeof close_codes[0]; i++) {
        uint16_t c = close_codes[i].code;
        const uint8_t body[] = {(uint8_t)(c >> 8), (uint8_t)c, 'o', 'k'};
        struct buf w;
        buf_init(&w, 64);
        add_frame(&w, 0x88, body, sizeof body);
        struct run r;
        play(buf_head(&w), buf_size(&w), SIZE_MAX, 1024, &r);
        if (close_codes[i].valid) {
            assert_int_equal(r.err, 0);
            assert_int_equal(r.nev, 1);
            assert_int_equal(r.ev[0].type, WS_EV_CLOSE);
            assert_int_equal(r.ev[0].close_code, c);
            assert_int_equal(r.ev[0].len, 2);
            assert_memory_equal(r.ev[0].data, "ok", 2);
        } else {
            assert_int_equal(r.err, WS_ERR_CLOSE_CODE);
            assert_int_equal(r.nev, 0);
        }
        run_free(&r);
        buf_free(&w);
    }
}

/* ---------------------------------------------------------------------------------------
 * Writing frames
 * ------------------------------------------------------------------------------------- */

static void write_frame_lengths(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        size_t hdr_len;
        uint8_t hdr[10];
    } rows_w[] = {
        {0, 2, {0x82, 0x00}},
        {125, 2, {0x82, 0x7D}},
        {126, 4, {0x82, 0x7E, 0x00, 0x7E}},
        {65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
        {65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}},
    };
    uint8_t *payload = malloc(65536);
    assert_non_null(payload);
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (uint8_t)(i ^ 0x5A);
    for (size_t i = 0; i < sizeof rows_w / sizeof rows_w[0]; i++) {
        struct buf out;
        buf_init(&out, 1 << 20);
        assert_int_equal(buf_append(&out, "prev", 4), 0); /* earlier output stays intact */
        assert_int_equal(ws_write_frame(&out, FRAME_OP_BINARY, payload, rows_w[i].len), 0);
        const uint8_t *o = buf_head(&out);
        assert_int_equal(buf_size(&out), 4 + rows_w[i].hdr_len + rows_w[i].len);
        assert_memory_equal(o, "prev", 4);
        assert_memory_equal(o + 4, rows_w[i].hdr, rows_w[i].hdr_len);
        if (rows_w[i].len > 0)
            assert_memory_equal(o + 4 + rows_w[i].hdr_len, payload, rows_w[i].len);
        struct frame_hdr h;
        assert_int_equal(frame_decode_hdr(o + 4, buf_size(&out) - 4, false, &h),
                         (ssize_t)rows_w[i].hdr_len);
        assert_true(h.fin);
        assert_false(h.masked);
        assert_true(h.payload_len == rows_w[i].len);
        buf_free(&out);
    }
    /* Text with NULL and no bytes: a valid empty frame. */
    struct buf out;
    buf_init(&out, 16);
    assert_int_equal(ws_write_frame(&out, FRAME_OP_TEXT, NULL, 0), 0);
    assert_memory_equal(buf_head(&out), "\x81\x00", 2);
    buf_free(&out);
    free(payload);
}

static void write_frame_is_all_or_nothing(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 20);
    assert_int_equal(buf_append(&out, "abcde", 5), 0);
    /* 2 + 14 = 16 > 15 left: refused, and not one byte written. */
    assert_int_equal(ws_write_frame(&out, FRAME_OP_TEXT, "xxxxxxxxxxxxxx", 14), -ENOBUFS);
    assert_int_equal(buf_size(&out), 5);
    assert_memory_equal(buf_head(&out), "abcde", 5);
    /* A payload that alone is over the limit, and an absurd one. */
    assert_int_equal(ws_write_frame(&out, FRAME_OP_BINARY, "", 21), -ENOBUFS);
    assert_int_equal(ws_write_frame(&out, FRAME_OP_BINARY, "", SIZE_MAX), -ENOBUFS);
    assert_int_equal(buf_size(&out), 5);
    /* 2 + 13 = 15: exactly fits. */
    assert_int_equal(ws_write_frame(&out, FRAME_OP_TEXT, "xxxxxxxxxxxxx", 13), 0);
    assert_int_equal(buf_size(&out), 20);
    assert_int_equal(ws_write_close(&out, 1000, "x"), -ENOBUFS);
    assert_int_equal(ws_write_close(&out, 0, NULL), -ENOBUFS);
    assert_int_equal(buf_size(&out), 20);
    buf_free(&out);
}

/* Reads back a close frame we wrote: its code, and its reason (NUL-terminated copy). */
static void parse_close(const struct buf *out, uint16_t *code, char reason[124])
{
    const uint8_t *o = buf_head(out);
    struct frame_hdr h;
    assert_int_equal(frame_decode_hdr(o, buf_size(out), false, &h), 2);
    assert_int_equal(h.opcode, FRAME_OP_CLOSE);
    assert_true(h.fin);
    assert_true(h.payload_len >= 2 && h.payload_len <= 125);
    assert_int_equal(buf_size(out), 2 + h.payload_len);
    *code = (uint16_t)((o[2] << 8) | o[3]);
    size_t n = (size_t)h.payload_len - 2;
    memcpy(reason, o + 4, n);
    reason[n] = '\0';
}

static void write_close_bodies(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 256);
    assert_int_equal(ws_write_close(&out, 0, "ignored"), 0); /* code 0: empty body */
    assert_int_equal(buf_size(&out), 2);
    assert_memory_equal(buf_head(&out), "\x88\x00", 2);
    buf_reset(&out);
    assert_int_equal(ws_write_close(&out, 1000, NULL), 0);
    assert_int_equal(buf_size(&out), 4);
    assert_memory_equal(buf_head(&out), "\x88\x02\x03\xe8", 4);
    buf_reset(&out);
    assert_int_equal(ws_write_close(&out, 1000, ""), 0);
    assert_memory_equal(buf_head(&out), "\x88\x02\x03\xe8", 4);
    buf_reset(&out);
    assert_int_equal(
        ws_write_close(&out, ws_err_close_code(WS_ERR_UNMASKED), ws_err_reason(WS_ERR_UNMASKED)),
        0);
    assert_memory_equal(buf_head(&out),
                        "\x88\x10\x03\xea"
                        "unmasked frame",
                        18);
    buf_free(&out);
}

static void write_close_cuts_reason_on_a_code_point_boundary(void **state)
{
    (void)state;
    /* The reason, how many of its bytes must be kept (123 at most). */
    char ascii123[124], ascii124[125], ascii200[201];
    memset(ascii123, 'a', 123), ascii123[123] = '\0';
    memset(ascii124, 'a', 124), ascii124[124] = '\0';
    memset(ascii200, 'a', 200), ascii200[200] = '\0';
    char e_acute[201] = "", euro[151] = "", a_euro[152] = "a", ab_emoji[163] = "ab";
    for (int i = 0; i < 100; i++)
        strcat(e_acute, "\xc3\xa9"); /* 2-byte: 123 would split one */
    for (int i = 0; i < 50; i++)
        strcat(euro, "\xe2\x82\xac"); /* 3-byte: 123 = 41 whole ones */
    for (int i = 0; i < 50; i++)
        strcat(a_euro, "\xe2\x82\xac"); /* 1 + 3k: cut back to 121 */
    for (int i = 0; i < 40; i++)
        strcat(ab_emoji, "\xf0\x9f\x98\x80"); /* 2 + 4k: cut back to 122 */
    const struct {
        const char *reason;
        size_t keep;
    } cases[] = {
        {"short", 5},   {ascii123, 123}, {ascii124, 123}, {ascii200, 123},
        {e_acute, 122}, {euro, 123},     {a_euro, 121},   {ab_emoji, 122},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf out;
        buf_init(&out, 256);
        assert_int_equal(ws_write_close(&out, 4001, cases[i].reason), 0);
        uint16_t code;
        char reason[124];
        parse_close(&out, &code, reason);
        assert_int_equal(code, 4001);
        assert_int_equal(strlen(reason), cases[i].keep);
        assert_memory_equal(reason, cases[i].reason, cases[i].keep); /* a prefix */
        assert_true(utf8_valid((const uint8_t *)reason, cases[i].keep));

        /* What we send, a peer of ours accepts: re-mask it as a client and feed it. */
        struct buf w;
        buf_init(&w, 256);
        add_frame(&w, 0x88, buf_head(&out) + 2, buf_size(&out) - 2);
        struct run r;
        play(buf_head(&w), buf_size(&w), 1, 16, &r);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.nev, 1);
        assert_int_equal(r.ev[0].close_code, 4001);
        assert_int_equal(r.ev[0].len, cases[i].keep);
        run_free(&r);
        buf_free(&w);
        buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* RFC 6455 §5.7 */
        cmocka_unit_test(rfc_masked_hello_and_pong),
        cmocka_unit_test(rfc_unmasked_samples_are_refused_from_a_client),
        cmocka_unit_test(rfc_fragments_ping_and_long_binaries),
        /* The table */
        cmocka_unit_test(table_whole_byte_by_byte_and_chunked),
        cmocka_unit_test(table_pipelined),
        /* Raw-byte errors */
        cmocka_unit_test(length_not_minimal_or_too_long),
        cmocka_unit_test(every_reserved_opcode_is_refused),
        cmocka_unit_test(control_frames_of_125_bytes_in_pieces),
        /* Fail fast */
        cmocka_unit_test(invalid_utf8_fails_before_the_frame_ends),
        cmocka_unit_test(invalid_utf8_fails_before_the_last_fragment),
        cmocka_unit_test(too_big_is_refused_at_the_header),
        /* Event data */
        cmocka_unit_test(whole_frame_is_a_view_into_the_input),
        cmocka_unit_test(header_first_then_whole_payload_is_still_a_view),
        cmocka_unit_test(partial_payload_is_copied_and_consumed),
        cmocka_unit_test(reassembled_data_lives_until_the_next_feed),
        cmocka_unit_test(control_frame_does_not_disturb_the_message),
        cmocka_unit_test(empty_payloads_have_non_null_data),
        cmocka_unit_test(after_close_nothing_is_consumed),
        cmocka_unit_test(long_message_in_one_byte_fragments),
        /* Errors and close codes */
        cmocka_unit_test(every_error_has_its_code_and_reason),
        cmocka_unit_test(close_code_validity),
        cmocka_unit_test(close_codes_through_ws_feed),
        /* Writing */
        cmocka_unit_test(write_frame_lengths),
        cmocka_unit_test(write_frame_is_all_or_nothing),
        cmocka_unit_test(write_close_bodies),
        cmocka_unit_test(write_close_cuts_reason_on_a_code_point_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
