/* Unit tests for logjson.c: a log line's body as one JSON object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "logjson.h"

#define T   "2026-11-25T10:22:07.481Z"
#define PRE "{\"time\":\"" T "\",\"level\":\"info\""

static void converts_each_body(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t len; /* 0: strlen */
        const char *json;
    } rows[] = {
        /* log.h's own example: numbers stay numbers, the phrase is the event. */
        {"conn=17 peer=127.0.0.1:50412 close=1002 \"unmasked frame\"", 0,
         PRE ",\"conn\":17,\"peer\":\"127.0.0.1:50412\",\"close\":1002,\"event\":\"unmasked "
             "frame\"}\n"},
        /* A quoted value loses its quotes; log.c's escapes are decoded, then JSON-escaped. */
        {"conn=9 status=200 file=\"a b\\x22 status\\x3d200 x\" \"file served\"", 0,
         PRE ",\"conn\":9,\"status\":200,\"file\":\"a b\\\" status=200 x\",\"event\":\"file "
             "served\"}\n"},
        {"file=caf\\xc3\\xa9 \"x\"", 0, PRE ",\"file\":\"caf\xc3\xa9\",\"event\":\"x\"}\n"},
        {"file=\\xff\\xc0\\xaf\\x5c \"x\"", 0,
         PRE ",\"file\":\"\\ufffd\\ufffd\\ufffd\\\\\",\"event\":\"x\"}\n"},
        {"file=\\x1b[31m\\x00\\x7f \"x\"", 0,
         PRE ",\"file\":\"\\u001b[31m\\u0000\\u007f\",\"event\":\"x\"}\n"},
        /* Raw hostile bytes (a caller's mistake) cannot break the line either. */
        {"x=\"\n\r\x01\xff\" \"a\\\"b\"", 0,
         PRE ",\"x\":\"\\u000a\\u000d\\u0001\\ufffd\",\"event\":\"a\\\\\\\"b\"}\n"},
        /* Which bare values are numbers. */
        {"a=0 b=007 c=123456789012345 d=1234567890123456 e=-1 f= \"n\"", 0,
         PRE ",\"a\":0,\"b\":\"007\",\"c\":123456789012345,\"d\":\"1234567890123456\",\"e\":"
             "\"-1\",\"f\":\"\",\"event\":\"n\"}\n"},
        /* Out of the grammar: the rest is the event. A cut line lacks its closing quote. */
        {"\"out of file descriptors\"", 0, PRE ",\"event\":\"out of file descriptors\"}\n"},
        {"conn=1 file=\"aaaa", 0, PRE ",\"conn\":1,\"event\":\"file=\\\"aaaa\"}\n"},
        {"conn=1 \"closed: a cut phras", 0, PRE ",\"conn\":1,\"event\":\"closed: a cut phras\"}\n"},
        {"Conn=1 x=2", 0, PRE ",\"event\":\"Conn=1 x=2\"}\n"},
        {"", 0, PRE ",\"event\":\"\"}\n"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[LOGJSON_SIZE(200)];
        size_t len = rows[i].len != 0 ? rows[i].len : strlen(rows[i].body);
        size_t n = logjson_line(out, sizeof out, T, "info", rows[i].body, len);
        if (n != strlen(rows[i].json) || memcmp(out, rows[i].json, n) != 0)
            fail_msg("row %zu: got '%.*s', want '%s'", i, (int)n, out, rows[i].json);
    }
}

static void refuses_a_small_buffer(void **state)
{
    (void)state;
    const char *body = "conn=1 \"x\"";
    size_t need = LOGJSON_SIZE(strlen(body) + strlen(T) + strlen("info"));
    char out[LOGJSON_SIZE(64)];
    assert_true(need <= sizeof out);
    assert_int_equal(logjson_line(out, need - 1, T, "info", body, strlen(body)), 0);
    assert_true(logjson_line(out, need, T, "info", body, strlen(body)) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(converts_each_body),
        cmocka_unit_test(refuses_a_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
