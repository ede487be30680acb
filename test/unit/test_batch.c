/* Unit tests for batch.c: JSON-array frames built at the tail of a buffer, sealed with the
 * shortest length form RFC 6455 §5.2 asks for, whatever the payload's size. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "frame.h"

/* Decodes the frame at the head of b: checks it is one complete FIN text frame, and returns
 * its payload's length and start. */
static size_t one_frame(const struct buf *b, const uint8_t **payload)
{
    struct frame_hdr h;
    ssize_t n = frame_decode_hdr(buf_head(b), buf_size(b), false, &h);
    assert_true(n > 0);
    assert_true(h.fin);
    assert_int_equal(h.opcode, FRAME_OP_TEXT);
    assert_false(h.masked);
    assert_int_equal((size_t)n + h.payload_len, buf_size(b)); /* nothing before or after */
    *payload = buf_head(b) + n;
    return (size_t)h.payload_len;
}

static void two_messages_make_one_array(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1024);
    struct batch b = {0};
    assert_false(batch_is_open(&b));
    assert_int_equal(batch_add(&out, &b, "{\"a\":1}", 7), 0);
    assert_true(batch_is_open(&b));
    assert_int_equal(batch_add(&out, &b, "{\"b\":2}", 7), 0);
    assert_int_equal(batch_seal(&out, &b), 0);
    assert_false(batch_is_open(&b));
    const uint8_t expect[] = "\x81\x11[{\"a\":1},{\"b\":2}]";
    assert_int_equal(buf_size(&out), sizeof expect - 1);
    assert_memory_equal(buf_head(&out), expect, sizeof expect - 1);
    assert_int_equal(batch_seal(&out, &b), 0); /* nothing open: nothing changes */
    assert_int_equal(buf_size(&out), sizeof expect - 1);
    buf_free(&out);
}

/* A frame already queued before the batch is left exactly as it was. */
static void the_batch_follows_what_was_queued(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1024);
    const uint8_t ping[] = {0x89, 0x00};
    assert_int_equal(buf_append(&out, ping, sizeof ping), 0);
    struct batch b = {0};
    assert_int_equal(batch_add(&out, &b, "1", 1), 0);
    assert_int_equal(batch_seal(&out, &b), 0);
    const uint8_t expect[] = {0x89, 0x00, 0x81, 0x03, '[', '1', ']'};
    assert_int_equal(buf_size(&out), sizeof expect);
    assert_memory_equal(buf_head(&out), expect, sizeof expect);
    buf_free(&out);
}

/* Payload sizes around each boundary of §5.2's length forms (125/126, 65535/65536): the
 * header is the shortest, and the array survives the move intact. */
static void every_size_gets_the_shortest_header(void **state)
{
    (void)state;
    static const size_t payloads[] = {3, 124, 125, 126, 127, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
        size_t want = payloads[k];
        size_t body = want - 2; /* one element: '[' body ']' */
        char *json = malloc(body);
        assert_non_null(json);
        json[0] = '"';
        for (size_t i = 1; i + 1 < body; i++)
            json[i] = (char)('a' + i % 26);
        json[body - 1] = '"';
        struct buf out;
        buf_init(&out, 1 << 20);
        struct batch b = {0};
        assert_int_equal(batch_add(&out, &b, json, body), 0);
        assert_int_equal(batch_seal(&out, &b), 0);
        const uint8_t *p;
        assert_int_equal(one_frame(&out, &p), want);
        size_t hdr = buf_size(&out) - want;
        assert_int_equal(hdr, want < 126 ? 2 : want <= 65535 ? 4 : 10);
        assert_int_equal(p[0], '[');
        assert_memory_equal(p + 1, json, body);
        assert_int_equal(p[want - 1], ']');
        buf_free(&out);
        free(json);
    }
}

/* Over the limit (with the seal's slack kept): refused whole, the buffer unchanged, and
 * what was already in the batch still seals. */
static void a_message_over_the_limit_is_refused_whole(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 32);
    struct batch b = {0};
    assert_int_equal(batch_add(&out, &b, "[1,2,3]", 7), 0);
    size_t before = buf_size(&out);
    char big[32];
    memset(big, '1', sizeof big);
    assert_int_equal(batch_add(&out, &b, big, sizeof big), -ENOBUFS);
    assert_int_equal(buf_size(&out), before);
    /* Exactly what fits with the slack kept: accepted, and the seal needs no more room. */
    size_t fits = buf_room(&out) - 1 - BATCH_SEAL_SLACK;
    assert_int_equal(batch_add(&out, &b, big, fits), 0);
    assert_int_equal(batch_seal(&out, &b), 0);
    const uint8_t *p;
    assert_int_equal(one_frame(&out, &p), 2 + 7 + 1 + fits);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_messages_make_one_array),
        cmocka_unit_test(the_batch_follows_what_was_queued),
        cmocka_unit_test(every_size_gets_the_shortest_header),
        cmocka_unit_test(a_message_over_the_limit_is_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
