/* Unit tests for frame.c: RFC 6455 §5.7 sample headers, every header error with the exact
 * prefix length at which it is reported (fail fast), the encoder's shortest lengths, and
 * unmasking in pieces against a byte-at-a-time reference.
 *
 * Each header is decoded from a heap copy of exactly the bytes given, so ASan catches any
 * read past in + len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

/* frame_decode_hdr on a malloc'd copy of wire[0..n): an over-read is an ASan report. */
static ssize_t decode_exact(const uint8_t *wire, size_t n, bool require_mask, struct frame_hdr *h)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    if (n > 0)
        memcpy(copy, wire, n);
    ssize_t rc = frame_decode_hdr(copy, n, require_mask, h);
    free(copy);
    return rc;
}

/* A header filled with a pattern, to check "*h untouched" after a 0 or an error. */
static void poison(struct frame_hdr *h)
{
    memset(h, 0xA5, sizeof *h);
}

static void assert_poisoned(const struct frame_hdr *h)
{
    struct frame_hdr p;
    poison(&p);
    assert_memory_equal(h, &p, sizeof p);
}

#define KEY 0x37, 0xfa, 0x21, 0x3d /* the mask key of RFC 6455 §5.7's examples */

/* ---------------------------------------------------------------------------------------
 * Decoding good headers
 * ------------------------------------------------------------------------------------- */

struct good_row {
    const char *name;
    uint8_t wire[FRAME_HDR_MAX];
    size_t hdr_len;
    bool require_mask;
    bool fin, masked;
    uint8_t opcode;
    uint64_t payload_len;
};

static const struct good_row good_rows[] = {
    /* RFC 6455 §5.7, as printed (the unmasked ones are what a server sends). */
    {"unmasked text Hello", {0x81, 0x05}, 2, false, true, false, FRAME_OP_TEXT, 5},
    {"masked text Hello", {0x81, 0x85, KEY}, 6, true, true, true, FRAME_OP_TEXT, 5},
    {"first fragment Hel", {0x01, 0x03}, 2, false, false, false, FRAME_OP_TEXT, 3},
    {"last fragment lo", {0x80, 0x02}, 2, false, true, false, FRAME_OP_CONT, 2},
    {"unmasked ping Hello", {0x89, 0x05}, 2, false, true, false, FRAME_OP_PING, 5},
    {"masked pong Hello", {0x8a, 0x85, KEY}, 6, true, true, true, FRAME_OP_PONG, 5},
    {"256 bytes, 16-bit length",
     {0x82, 0x7E, 0x01, 0x00},
     4,
     false,
     true,
     false,
     FRAME_OP_BINARY,
     256},
    {"64 KiB, 64-bit length",
     {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0},
     10,
     false,
     true,
     false,
     FRAME_OP_BINARY,
     65536},
    /* The same long ones masked, as a client sends them: the longest header, 14 bytes. */
    {"masked 256 bytes", {0x82, 0xFE, 0x01, 0x00, KEY}, 8, true, true, true, FRAME_OP_BINARY, 256},
    {"masked 64 KiB",
     {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, KEY},
     14,
     true,
     true,
     true,
     FRAME_OP_BINARY,
     65536},
    /* Length boundaries: the largest of each form and the smallest of the next. */
    {"7-bit 0", {0x82, 0x80, KEY}, 6, true, true, true, FRAME_OP_BINARY, 0},
    {"7-bit 125", {0x82, 0xFD, KEY}, 6, true, true, true, FRAME_OP_BINARY, 125},
    {"16-bit 126", {0x82, 0xFE, 0x00, 0x7E, KEY}, 8, true, true, true, FRAME_OP_BINARY, 126},
    {"16-bit 65535", {0x82, 0xFE, 0xFF, 0xFF, KEY}, 8, true, true, true, FRAME_OP_BINARY, 65535},
    {"64-bit 2^63-1",
     {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, KEY},
     14,
     true,
     true,
     true,
     FRAME_OP_BINARY,
     INT64_MAX},
    /* Control frames at their limit, and a close. */
    {"ping of 125", {0x89, 0xFD, KEY}, 6, true, true, true, FRAME_OP_PING, 125},
    {"close", {0x88, 0x82, KEY}, 6, true, true, true, FRAME_OP_CLOSE, 2},
    {"non-final continuation", {0x00, 0x81, KEY}, 6, true, false, true, FRAME_OP_CONT, 1},
    /* A masked frame is fine when no mask is required (a client decoding a peer). */
    {"masked, mask not required", {0x81, 0x85, KEY}, 6, false, true, true, FRAME_OP_TEXT, 5},
};

static void check_good_row(const struct good_row *r)
{
    struct frame_hdr h;
    /* Every strict prefix: "need more", and *h untouched. */
    for (size_t n = 0; n < r->hdr_len; n++) {
        poison(&h);
        assert_int_equal(decode_exact(r->wire, n, r->require_mask, &h), 0);
        assert_poisoned(&h);
    }
    /* The whole header, then with trailing payload bytes (which must not matter). */
    uint8_t longer[FRAME_HDR_MAX + 3];
    memcpy(longer, r->wire, r->hdr_len);
    memset(longer + r->hdr_len, 'x', 3);
    for (size_t extra = 0; extra <= 3; extra++) {
        poison(&h);
        assert_int_equal(decode_exact(longer, r->hdr_len + extra, r->require_mask, &h),
                         (ssize_t)r->hdr_len);
        assert_int_equal(h.fin, r->fin);
        assert_int_equal(h.masked, r->masked);
        assert_int_equal(h.rsv, 0);
        assert_int_equal(h.opcode, r->opcode);
        assert_true(h.payload_len == r->payload_len);
        const uint8_t key[4] = {KEY};
        const uint8_t zero[4] = {0};
        assert_memory_equal(h.mask_key, r->masked ? key : zero, 4);
    }
}

static void decodes_good_headers_at_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_rows / sizeof good_rows[0]; i++) {
        print_message("  %s\n", good_rows[i].name);
        check_good_row(&good_rows[i]);
    }
}

/* ---------------------------------------------------------------------------------------
 * Decoding bad headers: the error, and how early it is reported
 * ------------------------------------------------------------------------------------- */

struct bad_row {
    const char *name;
    uint8_t wire[FRAME_HDR_MAX];
    size_t len;     /* the whole header */
    size_t fail_at; /* the shortest prefix that already returns err (fail fast) */
    int err;
};

static const struct bad_row bad_rows[] = {
    /* Byte 0 alone shows these. */
    {"RSV1", {0xC1, 0x85, KEY}, 6, 1, FRAME_ERR_RSV},
    {"RSV2", {0xA1, 0x85, KEY}, 6, 1, FRAME_ERR_RSV},
    {"RSV3", {0x91, 0x85, KEY}, 6, 1, FRAME_ERR_RSV},
    {"all RSV on a ping", {0xF9, 0x80, KEY}, 6, 1, FRAME_ERR_RSV},
    {"opcode 0x3", {0x83, 0x80, KEY}, 6, 1, FRAME_ERR_OPCODE},
    {"opcode 0x7", {0x87, 0x80, KEY}, 6, 1, FRAME_ERR_OPCODE},
    {"opcode 0xB", {0x8B, 0x80, KEY}, 6, 1, FRAME_ERR_OPCODE},
    {"opcode 0xF", {0x8F, 0x80, KEY}, 6, 1, FRAME_ERR_OPCODE},
    {"fragmented ping", {0x09, 0x80, KEY}, 6, 1, FRAME_ERR_CONTROL},
    {"fragmented pong", {0x0A, 0x80, KEY}, 6, 1, FRAME_ERR_CONTROL},
    {"fragmented close", {0x08, 0x80, KEY}, 6, 1, FRAME_ERR_CONTROL},
    /* Byte 1 too. */
    {"ping of 126", {0x89, 0xFE, 0x00, 0x7E, KEY}, 8, 2, FRAME_ERR_CONTROL},
    {"close of 127", {0x88, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, KEY}, 14, 2, FRAME_ERR_CONTROL},
    {"unmasked text", {0x81, 0x05}, 2, 2, FRAME_ERR_UNMASKED},
    {"unmasked 16-bit", {0x82, 0x7E, 0x01, 0x00}, 4, 2, FRAME_ERR_UNMASKED},
    {"unmasked ping", {0x89, 0x00}, 2, 2, FRAME_ERR_UNMASKED},
    /* The extended length, before the mask key arrives. */
    {"16-bit length 125", {0x81, 0xFE, 0x00, 0x7D, KEY}, 8, 4, FRAME_ERR_LENGTH},
    {"16-bit length 0", {0x81, 0xFE, 0x00, 0x00, KEY}, 8, 4, FRAME_ERR_LENGTH},
    {"64-bit length 65535",
     {0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, KEY},
     14,
     10,
     FRAME_ERR_LENGTH},
    {"64-bit length 0", {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, KEY}, 14, 10, FRAME_ERR_LENGTH},
    {"64-bit length 5", {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5, KEY}, 14, 10, FRAME_ERR_LENGTH},
    {"64-bit length, top bit",
     {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, KEY},
     14,
     10,
     FRAME_ERR_LENGTH},
    {"64-bit length, all ones",
     {0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, KEY},
     14,
     10,
     FRAME_ERR_LENGTH},
    /* Several faults at once: the documented order picks the first. */
    {"RSV before opcode", {0xC3, 0x05}, 2, 1, FRAME_ERR_RSV},
    {"opcode before control", {0x0B, 0xFE}, 2, 1, FRAME_ERR_OPCODE},
    {"control before mask", {0x89, 0x7E}, 2, 2, FRAME_ERR_CONTROL},
    {"mask before length", {0x81, 0x7E, 0x00, 0x01}, 4, 2, FRAME_ERR_UNMASKED},
};

static void rejects_bad_headers_as_early_as_possible(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const struct bad_row *r = &bad_rows[i];
        print_message("  %s\n", r->name);
        struct frame_hdr h;
        for (size_t n = 0; n <= r->len; n++) {
            poison(&h);
            ssize_t rc = decode_exact(r->wire, n, true, &h);
            assert_int_equal(rc, n < r->fail_at ? 0 : r->err);
            assert_poisoned(&h); /* untouched on 0 and on error */
        }
    }
}

static void unmasked_frames_pass_when_no_mask_is_required(void **state)
{
    (void)state;
    const uint8_t wire[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}; /* §5.7 */
    struct frame_hdr h;
    assert_int_equal(decode_exact(wire, sizeof wire, false, &h), 2);
    assert_false(h.masked);
    assert_int_equal(decode_exact(wire, sizeof wire, true, &h), FRAME_ERR_UNMASKED);
}

static void every_opcode_is_classified(void **state)
{
    (void)state;
    for (unsigned op = 0; op < 16; op++) {
        uint8_t wire[6] = {(uint8_t)(0x80 | op), 0x80, KEY};
        struct frame_hdr h;
        ssize_t rc = decode_exact(wire, sizeof wire, true, &h);
        bool reserved = (op >= 0x3 && op <= 0x7) || op >= 0xB;
        assert_int_equal(rc, reserved ? FRAME_ERR_OPCODE : 6);
        assert_int_equal(frame_is_control((uint8_t)op), op >= 0x8);
    }
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

struct enc_row {
    bool fin;
    enum frame_op op;
    uint64_t payload_len;
    size_t hdr_len;
    uint8_t wire[FRAME_HDR_MAX];
};

static const struct enc_row enc_rows[] = {
    {true, FRAME_OP_TEXT, 5, 2, {0x81, 0x05}},  /* §5.7 "Hello" */
    {false, FRAME_OP_TEXT, 3, 2, {0x01, 0x03}}, /* §5.7 "Hel" */
    {true, FRAME_OP_CONT, 2, 2, {0x80, 0x02}},  /* §5.7 "lo" */
    {true, FRAME_OP_PING, 5, 2, {0x89, 0x05}},  /* §5.7 ping */
    {true, FRAME_OP_BINARY, 256, 4, {0x82, 0x7E, 0x01, 0x00}},
    {true, FRAME_OP_BINARY, 65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}},
    {true, FRAME_OP_BINARY, 0, 2, {0x82, 0x00}},
    {true, FRAME_OP_BINARY, 125, 2, {0x82, 0x7D}},
    {true, FRAME_OP_BINARY, 126, 4, {0x82, 0x7E, 0x00, 0x7E}},
    {true, FRAME_OP_BINARY, 65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
    {true, FRAME_OP_CLOSE, 0, 2, {0x88, 0x00}},
    {true, FRAME_OP_PONG, 125, 2, {0x8A, 0x7D}},
    {true, FRAME_OP_TEXT, UINT64_C(1) << 32, 10, {0x81, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0}},
    {true,
     FRAME_OP_TEXT,
     INT64_MAX,
     10,
     {0x81, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
};

static void encodes_shortest_form_and_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof enc_rows / sizeof enc_rows[0]; i++) {
        const struct enc_row *r = &enc_rows[i];
        uint8_t out[FRAME_HDR_MAX + 1];
        memset(out, 0xEE, sizeof out);
        size_t n = frame_encode_hdr(out, r->fin, r->op, r->payload_len);
        assert_int_equal(n, r->hdr_len);
        assert_memory_equal(out, r->wire, n);
        assert_int_equal(out[n], 0xEE); /* nothing written past the header */

        /* What we send must decode as what we meant (as a client would decode it). */
        struct frame_hdr h;
        assert_int_equal(decode_exact(out, n, false, &h), (ssize_t)n);
        assert_int_equal(h.fin, r->fin);
        assert_false(h.masked); /* §5.1: servers never mask */
        assert_int_equal(h.opcode, r->op);
        assert_true(h.payload_len == r->payload_len);
    }
}

/* ---------------------------------------------------------------------------------------
 * Unmasking
 * ------------------------------------------------------------------------------------- */

static void unmasks_rfc_sample_in_every_split(void **state)
{
    (void)state;
    const uint8_t masked[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58}; /* §5.7 masked "Hello" */
    const uint8_t key[4] = {KEY};
    for (size_t k = 0; k <= sizeof masked; k++) {
        uint8_t p[sizeof masked];
        memcpy(p, masked, sizeof p);
        frame_unmask(p, k, key, 0);
        frame_unmask(p + k, sizeof p - k, key, k);
        assert_memory_equal(p, "Hello", 5);
    }
}

/* Against the definition (§5.3: octet i XOR key[i mod 4]) for every start alignment,
 * every phase and every length around the 8-byte blocks. */
static void unmask_matches_definition(void **state)
{
    (void)state;
    const uint8_t key[4] = {0x01, 0x80, 0xFF, 0x5A};
    uint8_t src[96], got[96];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 9; off++) {
        for (uint64_t pos = 0; pos < 9; pos++) {
            for (size_t len = 0; off + len <= 80; len++) {
                memcpy(got, src, sizeof got);
                frame_unmask(got + off, len, key, pos);
                for (size_t i = 0; i < sizeof got; i++) {
                    uint8_t want = src[i];
                    if (i >= off && i < off + len)
                        want ^= key[(pos + (i - off)) % 4];
                    assert_int_equal(got[i], want); /* and nothing outside touched */
                }
            }
        }
    }
}

static void unmask_is_its_own_inverse_on_a_large_payload(void **state)
{
    (void)state;
    enum { N = 70000 };
    uint8_t *p = malloc(N), *orig = malloc(N);
    assert_non_null(p);
    assert_non_null(orig);
    for (size_t i = 0; i < N; i++)
        orig[i] = (uint8_t)(i ^ (i >> 8));
    memcpy(p, orig, N);
    const uint8_t key[4] = {KEY};
    /* Mask in one go, unmask in uneven pieces: pieces must agree with the whole. */
    frame_unmask(p, N, key, 0);
    size_t pos = 0, step = 1;
    while (pos < N) {
        size_t n = step < N - pos ? step : N - pos;
        frame_unmask(p + pos, n, key, pos);
        pos += n;
        step = step * 3 + 1;
    }
    assert_memory_equal(p, orig, N);
    free(p);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_good_headers_at_every_prefix),
        cmocka_unit_test(rejects_bad_headers_as_early_as_possible),
        cmocka_unit_test(unmasked_frames_pass_when_no_mask_is_required),
        cmocka_unit_test(every_opcode_is_classified),
        cmocka_unit_test(encodes_shortest_form_and_round_trips),
        cmocka_unit_test(unmasks_rfc_sample_in_every_split),
        cmocka_unit_test(unmask_matches_definition),
        cmocka_unit_test(unmask_is_its_own_inverse_on_a_large_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
