/* Unit tests for json.c: the RFC 8259 check on top of jsmn, and the sender/color rewrite.
 *
 * Table-driven, as picohttpparser's tests are: each row is an input and either the exact
 * output or the exact error. Every input is copied into a heap block of exactly its length
 * (no NUL after it), so ASan reports any read past the end. Rows carry explicit lengths so
 * inputs may hold NUL bytes. On success out must be prefix + output; on error, prefix alone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

#define ID     "3f2b8c1e-9d4a-4f6b-8e2a-7c5d1b0a9e34"
#define HUE    120u
#define TAIL   "\"sender\":\"" ID "\",\"color\":120}"
#define PREFIX "previous frame|"

struct row {
    const char *in;
    size_t in_len;
    const char *out; /* NULL when err != 0 */
    int err;
};

/* sizeof on a string literal counts an embedded NUL too, unlike strlen. */
#define OK(in, out)                                                                                \
    {                                                                                              \
        in, sizeof(in) - 1, out, 0                                                                 \
    }
#define FAIL(in, err)                                                                              \
    {                                                                                              \
        in, sizeof(in) - 1, NULL, err                                                              \
    }

/* Runs one row; names the row in the failure message so a table failure is easy to find. */
static void check_row(const char *table, size_t i, const struct row *r)
{
    uint8_t *in = malloc(r->in_len); /* exact size: any over-read is an ASan report */
    assert_true(in != NULL || r->in_len == 0);
    if (r->in_len > 0)
        memcpy(in, r->in, r->in_len);

    struct buf out;
    buf_init(&out, 1 << 16);
    assert_int_equal(buf_append_str(&out, PREFIX), 0);
    int rc = json_rewrite(in, r->in_len, ID, HUE, &out);
    if (rc != r->err)
        fail_msg("%s row %zu (%s): returned %d, expected %d", table, i, r->in, rc, r->err);
    size_t want_len = strlen(PREFIX) + (r->out != NULL ? strlen(r->out) : 0);
    if (buf_size(&out) != want_len || memcmp(buf_head(&out), PREFIX, strlen(PREFIX)) != 0 ||
        (r->out != NULL && memcmp(buf_head(&out) + strlen(PREFIX), r->out, strlen(r->out)) != 0))
        fail_msg("%s row %zu (%s): out is \"%.*s\", expected \"%s%s\"", table, i, r->in,
                 (int)buf_size(&out), (const char *)buf_head(&out), PREFIX,
                 r->out != NULL ? r->out : "");
    buf_free(&out);
    free(in);
}

static void check_rows(const char *table, const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_row(table, i, &rows[i]);
}

#define CHECK_ROWS(rows) check_rows(#rows, rows, sizeof rows / sizeof rows[0])

/* ---- Rewrites that succeed ------------------------------------------------------------------ */

static const struct row rewrite_rows[] = {
    OK("{}", "{" TAIL),
    OK("{\"x\":120,\"y\":48.5}", "{\"x\":120,\"y\":48.5," TAIL), /* docs/protocol.md */
    OK("{\"x\":10, \"y\":2.50,\"color\":\"red\",\"sender\":7}",  /* json.h's example */
       "{\"x\":10,\"y\":2.50," TAIL),
    OK("{\"x\":-3,\"label\":\"hi\",\"down\":true}",
       "{\"x\":-3,\"label\":\"hi\",\"down\":true," TAIL),
    OK("{\"\":1}", "{\"\":1," TAIL),                   /* the empty name is a name (RFC 8259 §4) */
    OK("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2," TAIL), /* other duplicates: kept as sent */
};

static const struct row spoof_rows[] = {
    /* first, middle, last, only: never a leading, trailing or double comma */
    OK("{\"sender\":\"me\",\"x\":1,\"y\":2}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"x\":1,\"sender\":\"me\",\"y\":2}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"x\":1,\"y\":2,\"sender\":\"me\"}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"sender\":\"me\"}", "{" TAIL),
    OK("{\"color\":0,\"x\":1,\"y\":2}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"x\":1,\"color\":0,\"y\":2}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"x\":1,\"y\":2,\"color\":0}", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"color\":0}", "{" TAIL),
    OK("{\"color\":1,\"sender\":\"x\"}", "{" TAIL),
    OK("{\"sender\":1,\"color\":2,\"x\":3}", "{\"x\":3," TAIL),
    OK("{\"x\":3,\"sender\":1,\"color\":2}", "{\"x\":3," TAIL),
    /* duplicated: every one goes */
    OK("{\"sender\":1,\"x\":1,\"sender\":2,\"color\":3,\"color\":4}", "{\"x\":1," TAIL),
    OK("{\"sender\":1,\"sender\":2}", "{" TAIL),
    /* any value, however nested, goes with its key */
    OK("{\"sender\":{\"a\":[1,2,{\"b\":3}]},\"x\":[]}", "{\"x\":[]," TAIL),
    OK("{\"color\":[\"red\",{\"sender\":1}],\"x\":{}}", "{\"x\":{}," TAIL),
    OK("{\"sender\":null,\"color\":\"hsl(0,0%,0%)\"}", "{" TAIL),
    /* keys compare after decoding escapes (RFC 8259 §7), lower or upper case hex */
    OK("{\"send\\u0065r\":\"evil\",\"x\":1}", "{\"x\":1," TAIL),
    OK("{\"\\u0063olor\":0,\"x\":1}", "{\"x\":1," TAIL),
    OK("{\"\\u0073\\u0065\\u006E\\u0064\\u0065\\u0072\":1}", "{" TAIL),
    OK("{\"\\u0063\\u006f\\u006c\\u006f\\u0072\":1,\"y\":2}", "{\"y\":2," TAIL),
    OK("{\"x\":1,\"colo\\u0072\":1,\"sende\\u0072\":2}", "{\"x\":1," TAIL),
    /* near misses are ordinary members and stay, escapes and all */
    OK("{\"Sender\":1,\"senders\":2,\"colour\":3,\"sende\":4,\"COLOR\":5}",
       "{\"Sender\":1,\"senders\":2,\"colour\":3,\"sende\":4,\"COLOR\":5," TAIL),
    OK("{\"sender\\u0000\":1}", "{\"sender\\u0000\":1," TAIL),
    OK("{\"col\\/or\":1}", "{\"col\\/or\":1," TAIL),
    OK("{\" sender\":1}", "{\" sender\":1," TAIL),
    OK("{\"x\":\"sender\",\"y\":\"color\"}", "{\"x\":\"sender\",\"y\":\"color\"," TAIL),
};

static const struct row nested_rows[] = {
    /* only top-level members are rewritten: nested sender/color are plain data */
    OK("{\"a\":{\"sender\":\"me\",\"color\":1},\"b\":[{\"sender\":2}]}",
       "{\"a\":{\"sender\":\"me\",\"color\":1},\"b\":[{\"sender\":2}]," TAIL),
    OK("{\"a\":{},\"b\":[],\"c\":[[]],\"d\":{\"e\":{}}}",
       "{\"a\":{},\"b\":[],\"c\":[[]],\"d\":{\"e\":{}}," TAIL),
    /* nested values are copied whole, their inner whitespace included */
    OK("{ \"a\" : { \"b\" : [ 1 , 2 ] } , \"c\" : [ ] }",
       "{\"a\":{ \"b\" : [ 1 , 2 ] },\"c\":[ ]," TAIL),
    OK("{\"a\":[1,\"two\",{\"three\":[3]},null,true,false,-4.5e-1]}",
       "{\"a\":[1,\"two\",{\"three\":[3]},null,true,false,-4.5e-1]," TAIL),
    OK("{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "{\"a\":[[[[[[[[[[1]]]]]]]]]]," TAIL),
    OK("{\"a\":{\"type\":\"welcome\"}}", "{\"a\":{\"type\":\"welcome\"}," TAIL),
};

static const struct row string_rows[] = {
    /* every escape of RFC 8259 §7 kept byte for byte */
    OK("{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}",
       "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"," TAIL),
    OK("{\"s\":\"\\u0000\\u001f\\uFFFF\"}", "{\"s\":\"\\u0000\\u001f\\uFFFF\"," TAIL),
    OK("{\"s\":\"\"}", "{\"s\":\"\"," TAIL),
    OK("{\"s\":\"{\\\"x\\\":1}\"}", "{\"s\":\"{\\\"x\\\":1}\"," TAIL), /* JSON in a string */
    OK("{\"s\":\"[],:{} \"}", "{\"s\":\"[],:{} \"," TAIL),
    OK("{\"s\":\"\x7f\"}", "{\"s\":\"\x7f\"," TAIL), /* DEL is not a control char in §7 */
    /* unicode: raw UTF-8, \u escapes, a surrogate pair (U+1F600), a lone surrogate (§8.2
     * allows it in the grammar; browsers accept it) */
    OK("{\"name\":\"h\xc3\xa9llo w\xc3\xb6rld \xf0\x9f\x98\x80\"}",
       "{\"name\":\"h\xc3\xa9llo w\xc3\xb6rld \xf0\x9f\x98\x80\"," TAIL),
    OK("{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\":1}", "{\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\":1," TAIL),
    OK("{\"e\":\"\\u00e9\\uD83D\\uDE00\"}", "{\"e\":\"\\u00e9\\uD83D\\uDE00\"," TAIL),
    OK("{\"e\":\"\\uD800\",\"f\":\"\\uDC00x\"}", "{\"e\":\"\\uD800\",\"f\":\"\\uDC00x\"," TAIL),
    OK("{\"\\uD83D\\uDE00\":1}", "{\"\\uD83D\\uDE00\":1," TAIL),
    /* not our job to check UTF-8 (the WebSocket layer does), but nothing breaks if it isn't */
    OK("{\"s\":\"\xff\xfe\"}", "{\"s\":\"\xff\xfe\"," TAIL),
};

static const struct row number_rows[] = {
    /* numbers are copied as text, never reformatted (RFC 8259 §6 has no range limit) */
    OK("{\"a\":2.50,\"b\":-0,\"c\":1e10,\"d\":1E-5,\"e\":12345678901234567890}",
       "{\"a\":2.50,\"b\":-0,\"c\":1e10,\"d\":1E-5,\"e\":12345678901234567890," TAIL),
    OK("{\"f\":0,\"g\":-0.0e+0,\"h\":1.5E+3,\"i\":0.000,\"j\":-9.99e-999}",
       "{\"f\":0,\"g\":-0.0e+0,\"h\":1.5E+3,\"i\":0.000,\"j\":-9.99e-999," TAIL),
    OK("{\"t\":true,\"f\":false,\"n\":null}", "{\"t\":true,\"f\":false,\"n\":null," TAIL),
    OK("{\"a\":[0,-1,10,1.0,1e1]}", "{\"a\":[0,-1,10,1.0,1e1]," TAIL),
};

static const struct row whitespace_rows[] = {
    /* the four whitespace bytes of RFC 8259 §2, anywhere between tokens; dropped at top level */
    OK("  {}  ", "{" TAIL),
    OK("{ }", "{" TAIL),
    OK("\t\r\n {\t\"x\"\r:\n1 ,  \"y\" :2}\n\r\t ", "{\"x\":1,\"y\":2," TAIL),
    OK("{\"x\" : 1 , \"sender\" : \"me\" , \"y\" : 2 }", "{\"x\":1,\"y\":2," TAIL),
    OK("{\n  \"a\": [\n    1\n  ]\n}\n", "{\"a\":[\n    1\n  ]," TAIL),
    OK("{\"x\":1 }", "{\"x\":1," TAIL), /* a primitive ended by a space, then the brace */
    OK("{\"x\":true\n}", "{\"x\":true," TAIL),
};

static void rewrites(void **state)
{
    (void)state;
    CHECK_ROWS(rewrite_rows);
}

static void removes_spoofed_sender_and_color(void **state)
{
    (void)state;
    CHECK_ROWS(spoof_rows);
}

static void copies_nested_values_whole(void **state)
{
    (void)state;
    CHECK_ROWS(nested_rows);
}

static void keeps_strings_and_unicode_byte_for_byte(void **state)
{
    (void)state;
    CHECK_ROWS(string_rows);
}

static void keeps_numbers_exactly(void **state)
{
    (void)state;
    CHECK_ROWS(number_rows);
}

static void drops_top_level_whitespace_only(void **state)
{
    (void)state;
    CHECK_ROWS(whitespace_rows);
}

/* ---- Reserved types ---------------------------------------------------------------------------
 */

static const struct row reserved_rows[] = {
    FAIL("{\"type\":\"welcome\"}", JSON_ERR_RESERVED),
    FAIL("{\"type\":\"join\",\"x\":1}", JSON_ERR_RESERVED),
    FAIL("{\"x\":1,\"type\":\"leave\"}", JSON_ERR_RESERVED),
    FAIL("{\"type\":\"error\"}", JSON_ERR_RESERVED),
    FAIL("{\"type\":\"count\",\"count\":1}", JSON_ERR_RESERVED),        /* wsrelay.batch's */
    FAIL("{\"type\":\"welc\\u006fme\"}", JSON_ERR_RESERVED),            /* escaped value */
    FAIL("{\"typ\\u0065\":\"leave\"}", JSON_ERR_RESERVED),              /* escaped key */
    FAIL("{\"type\":\"cursor\",\"type\":\"join\"}", JSON_ERR_RESERVED), /* any duplicate */
    FAIL("{\"sender\":1,\"type\":\"error\"}", JSON_ERR_RESERVED),
    FAIL("{ \"type\" : \"welcome\" }", JSON_ERR_RESERVED),
    /* other types, non-string types, near misses and nested ones are fine */
    OK("{\"type\":\"cursor\",\"x\":1}", "{\"type\":\"cursor\",\"x\":1," TAIL),
    OK("{\"type\":1}", "{\"type\":1," TAIL),
    OK("{\"type\":null}", "{\"type\":null," TAIL),
    OK("{\"type\":[\"welcome\"]}", "{\"type\":[\"welcome\"]," TAIL),
    OK("{\"type\":{\"type\":\"join\"}}", "{\"type\":{\"type\":\"join\"}," TAIL),
    OK("{\"type\":\"Welcome\"}", "{\"type\":\"Welcome\"," TAIL),
    OK("{\"type\":\"welcomes\"}", "{\"type\":\"welcomes\"," TAIL),
    OK("{\"type\":\"join \"}", "{\"type\":\"join \"," TAIL),
    OK("{\"type\":\"\"}", "{\"type\":\"\"," TAIL),
    OK("{\"Type\":\"join\"}", "{\"Type\":\"join\"," TAIL),
    OK("{\"x\":\"welcome\"}", "{\"x\":\"welcome\"," TAIL),
};

static void refuses_reserved_types(void **state)
{
    (void)state;
    CHECK_ROWS(reserved_rows);
}

/* ---- Syntax errors: one group per class of mistake --------------------------------------- */

static const struct row syntax_rows[] = {
    /* trailing, leading and doubled commas (jsmn strict accepts all of these) */
    FAIL("{\"a\":1,}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[1,]}", JSON_ERR_SYNTAX),
    FAIL("{,}", JSON_ERR_SYNTAX),
    FAIL("{,\"a\":1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1,,\"b\":2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[,1]}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[1,,2]}", JSON_ERR_SYNTAX),
    /* missing or extra colons, missing values */
    FAIL("{\"a\" 1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\" \"b\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":}", JSON_ERR_SYNTAX),
    FAIL("{\"a\"::1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1:2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"b\":\"c\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":{\"b\":1}:2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[1:2]}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1,\"b\"}", JSON_ERR_SYNTAX),
    FAIL("{:1}", JSON_ERR_SYNTAX),
    /* missing commas */
    FAIL("{\"a\":1 \"b\":2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[1 2]}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"x\"\"y\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1 {}}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":{}\"b\":1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[][]}", JSON_ERR_SYNTAX),
    /* keys that are not strings (RFC 8259 §4) */
    FAIL("{a:1}", JSON_ERR_SYNTAX),
    FAIL("{1:2}", JSON_ERR_SYNTAX),
    FAIL("{null:1}", JSON_ERR_SYNTAX),
    FAIL("{{}:1}", JSON_ERR_SYNTAX),
    FAIL("{[]:1}", JSON_ERR_SYNTAX),
    FAIL("{'a':1}", JSON_ERR_SYNTAX),
    /* bad literals (RFC 8259 §3: lower case, exactly) */
    FAIL("{\"a\":tru}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":True}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":nul}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":truex}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":falsey}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":nulll}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":undefined}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":NaN}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":Infinity}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":'x'}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":t}", JSON_ERR_SYNTAX),
    /* bad numbers (RFC 8259 §6): leading zeros, bare signs and dots, empty exponents */
    FAIL("{\"a\":01}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":-01}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":00}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1.}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":.5}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":-}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":-.5}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1e}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1e+}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1.e5}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1.2.3}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":+1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":0x10}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1_000}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":--1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1e5e5}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1-2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[01]}", JSON_ERR_SYNTAX),
    /* bad escapes (RFC 8259 §7: exactly nine, \u with four hex digits) */
    FAIL("{\"a\":\"\\x\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\u12\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\u12G4\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\U0041\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\'\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\\q\":1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\\u00", JSON_ERR_SYNTAX),
    /* raw control bytes inside strings (RFC 8259 §7 wants them escaped; jsmn lets them by) */
    FAIL("{\"a\":\"x\ty\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\n\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\x01\":1}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"\x1f\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":\"x\0y\"}", JSON_ERR_SYNTAX),
    FAIL("{\"a\0\":1}", JSON_ERR_SYNTAX),
    /* unterminated strings, objects, arrays */
    FAIL("{\"a\":\"x}", JSON_ERR_SYNTAX),
    FAIL("{\"a", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[1,2}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":{}", JSON_ERR_SYNTAX),
    FAIL("{", JSON_ERR_SYNTAX),
    FAIL("{\"a\":[", JSON_ERR_SYNTAX),
    /* mismatched brackets */
    FAIL("{\"a\":[}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":{]}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1]", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1}}", JSON_ERR_SYNTAX),
    FAIL("{]", JSON_ERR_SYNTAX),
    /* anything but whitespace around the one value: trailing garbage, NUL, a BOM (§8.1 says
     * senders must not add one), form feed and vertical tab (not §2 whitespace) */
    FAIL("{}x", JSON_ERR_SYNTAX),
    FAIL("{} x", JSON_ERR_SYNTAX),
    FAIL("{}1", JSON_ERR_SYNTAX),
    FAIL("{} 1 ", JSON_ERR_SYNTAX),
    FAIL("{}]", JSON_ERR_SYNTAX),
    FAIL("{},", JSON_ERR_SYNTAX),
    FAIL("{}\0", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1}\0garbage", JSON_ERR_SYNTAX),
    FAIL("\0{}", JSON_ERR_SYNTAX),
    FAIL("{}\f", JSON_ERR_SYNTAX),
    FAIL("\v{}", JSON_ERR_SYNTAX),
    FAIL("\xef\xbb\xbf{}", JSON_ERR_SYNTAX),
    FAIL("x{}", JSON_ERR_SYNTAX),
    FAIL(",{}", JSON_ERR_SYNTAX),
    FAIL(":{}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1\xff}", JSON_ERR_SYNTAX),
    /* two objects: a JSON text is exactly one value (§2) */
    FAIL("{}{}", JSON_ERR_SYNTAX),
    FAIL("{} {}", JSON_ERR_SYNTAX),
    FAIL("{\"a\":1}{\"b\":2}", JSON_ERR_SYNTAX),
    FAIL("{}\n{}\n", JSON_ERR_SYNTAX),
    /* empty, or nothing but whitespace or punctuation */
    FAIL("", JSON_ERR_SYNTAX),
    FAIL("   ", JSON_ERR_SYNTAX),
    FAIL("\r\n", JSON_ERR_SYNTAX),
    FAIL("}", JSON_ERR_SYNTAX),
    FAIL("]", JSON_ERR_SYNTAX),
    FAIL(",", JSON_ERR_SYNTAX),
    FAIL(":", JSON_ERR_SYNTAX),
    FAIL("\"", JSON_ERR_SYNTAX),
    /* broken non-objects are syntax errors, not "not an object" */
    FAIL("[1,]", JSON_ERR_SYNTAX),
    FAIL("[} ", JSON_ERR_SYNTAX),
    FAIL("\"s", JSON_ERR_SYNTAX),
    FAIL("01", JSON_ERR_SYNTAX),
    FAIL("nul", JSON_ERR_SYNTAX),
    FAIL("1 2", JSON_ERR_SYNTAX),
    FAIL("tru e", JSON_ERR_SYNTAX),
    FAIL("-", JSON_ERR_SYNTAX),
    FAIL("[] []", JSON_ERR_SYNTAX),
    FAIL("\"a\" \"b\"", JSON_ERR_SYNTAX),
    FAIL("\"a\x01\"", JSON_ERR_SYNTAX),
    FAIL("1}", JSON_ERR_SYNTAX),
    FAIL("null{}", JSON_ERR_SYNTAX),
};

static void refuses_every_syntax_error(void **state)
{
    (void)state;
    CHECK_ROWS(syntax_rows);
}

static const struct row not_object_rows[] = {
    FAIL("[]", JSON_ERR_NOT_OBJECT),     FAIL("  [ ]  ", JSON_ERR_NOT_OBJECT),
    FAIL("[1,2]", JSON_ERR_NOT_OBJECT),  FAIL("[{\"a\":1}]", JSON_ERR_NOT_OBJECT),
    FAIL("\"s\"", JSON_ERR_NOT_OBJECT),  FAIL("\"\"", JSON_ERR_NOT_OBJECT),
    FAIL("\"{}\"", JSON_ERR_NOT_OBJECT), FAIL("1", JSON_ERR_NOT_OBJECT),
    FAIL(" 1 ", JSON_ERR_NOT_OBJECT),    FAIL("0", JSON_ERR_NOT_OBJECT),
    FAIL("-1.5e3", JSON_ERR_NOT_OBJECT), FAIL("null", JSON_ERR_NOT_OBJECT),
    FAIL("true", JSON_ERR_NOT_OBJECT),   FAIL("false\n", JSON_ERR_NOT_OBJECT),
};

static void tells_valid_non_objects_apart(void **state)
{
    (void)state;
    CHECK_ROWS(not_object_rows);
}

/* Every proper prefix of a valid message that stops before its closing brace is unfinished
 * JSON, so a syntax error: the check must never accept half a message. */
static void every_truncation_is_a_syntax_error(void **state)
{
    (void)state;
    const struct row *tables[] = {rewrite_rows, spoof_rows,  nested_rows,
                                  string_rows,  number_rows, whitespace_rows};
    const size_t sizes[] = {sizeof rewrite_rows / sizeof rewrite_rows[0],
                            sizeof spoof_rows / sizeof spoof_rows[0],
                            sizeof nested_rows / sizeof nested_rows[0],
                            sizeof string_rows / sizeof string_rows[0],
                            sizeof number_rows / sizeof number_rows[0],
                            sizeof whitespace_rows / sizeof whitespace_rows[0]};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < sizes[t]; i++) {
            const struct row *r = &tables[t][i];
            size_t close = r->in_len;
            while (r->in[close - 1] != '}')
                close--;
            for (size_t n = 0; n < close; n++) {
                struct row cut = {r->in, n, NULL, JSON_ERR_SYNTAX};
                check_row("truncated", i, &cut);
            }
        }
    }
}

/* Rewriting our own output again (same sender) changes nothing: the server's members are
 * last, whitespace is gone, so the rewrite is idempotent. */
static void rewriting_twice_changes_nothing(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof spoof_rows / sizeof spoof_rows[0]; i++) {
        struct buf once, twice;
        buf_init(&once, 1 << 16);
        buf_init(&twice, 1 << 16);
        const struct row *r = &spoof_rows[i];
        assert_int_equal(json_rewrite((const uint8_t *)r->in, r->in_len, ID, HUE, &once), 0);
        assert_int_equal(json_rewrite(buf_head(&once), buf_size(&once), ID, HUE, &twice), 0);
        assert_int_equal(buf_size(&once), buf_size(&twice));
        assert_memory_equal(buf_head(&once), buf_head(&twice), buf_size(&once));
        buf_free(&once);
        buf_free(&twice);
    }
}

/* ---- Limits ------------------------------------------------------------------------------ */

/* Builds head + n copies of item (the last one without sep) + tail into a heap string. */
static char *repeat(const char *head, const char *item, const char *sep, size_t n, const char *tail)
{
    size_t len = strlen(head) + n * (strlen(item) + strlen(sep)) + strlen(tail) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    strcpy(s, head);
    for (size_t i = 0; i < n; i++) {
        strcat(s, item);
        if (i + 1 < n)
            strcat(s, sep);
    }
    strcat(s, tail);
    return s;
}

static int rewrite_str(const char *s, struct buf *out)
{
    return json_rewrite((const uint8_t *)s, strlen(s), ID, HUE, out);
}

static void refuses_more_than_max_tokens(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1 << 16);

    /* {"a":[0,0,...]}: the object, the key and the array are 3 tokens, each 0 one more;
     * the output gains sender and color, 4 tokens: the most an input without them may have
     * is JSON_MAX_TOKENS - 4, so that the output is a valid input too (other nodes check
     * it). One more, and the output would be too complex: refused. */
    char *ok = repeat("{\"a\":[", "0", ",", JSON_MAX_TOKENS - 3 - 4, "]}");
    assert_int_equal(rewrite_str(ok, &out), 0);
    assert_int_equal(buf_size(&out), strlen(ok) - 1 + strlen("," TAIL));
    assert_memory_equal(buf_head(&out), ok, strlen(ok) - 1);
    /* The output's own check: rewritten again, the same bytes. */
    struct buf again;
    buf_init(&again, 1 << 16);
    assert_int_equal(json_rewrite(buf_head(&out), buf_size(&out), ID, HUE, &again), 0);
    assert_int_equal(buf_size(&again), buf_size(&out));
    assert_memory_equal(buf_head(&again), buf_head(&out), buf_size(&out));
    buf_free(&again);
    buf_reset(&out);
    char *grows_over = repeat("{\"a\":[", "0", ",", JSON_MAX_TOKENS - 3 - 3, "]}");
    assert_int_equal(rewrite_str(grows_over, &out), JSON_ERR_TOO_COMPLEX);
    assert_int_equal(buf_size(&out), 0);
    free(grows_over);
    char *over = repeat("{\"a\":[", "0", ",", JSON_MAX_TOKENS - 2, "]}");
    assert_int_equal(rewrite_str(over, &out), JSON_ERR_TOO_COMPLEX);
    assert_int_equal(buf_size(&out), 0);
    free(ok);
    free(over);

    /* depth counts too: {"a":[[[...]]]}, 2 + depth tokens, 4 more in the output */
    char *deep_ok = repeat("{\"a\":", "[", "", JSON_MAX_TOKENS - 2 - 4, "");
    char *deep_ok_full = repeat(deep_ok, "]", "", JSON_MAX_TOKENS - 2 - 4, "}");
    assert_int_equal(rewrite_str(deep_ok_full, &out), 0);
    buf_reset(&out);
    char *deep = repeat("{\"a\":", "[", "", JSON_MAX_TOKENS - 1, "");
    char *deep_full = repeat(deep, "]", "", JSON_MAX_TOKENS - 1, "}");
    assert_int_equal(rewrite_str(deep_full, &out), JSON_ERR_TOO_COMPLEX);
    free(deep_ok);
    free(deep_ok_full);
    free(deep);
    free(deep_full);

    /* a valid array of exactly JSON_MAX_TOKENS tokens is not an object; one more is too much */
    char *arr = repeat("[", "1", ",", JSON_MAX_TOKENS - 1, "]");
    assert_int_equal(rewrite_str(arr, &out), JSON_ERR_NOT_OBJECT);
    char *arr_over = repeat("[", "1", ",", JSON_MAX_TOKENS, "]");
    assert_int_equal(rewrite_str(arr_over, &out), JSON_ERR_TOO_COMPLEX);
    assert_int_equal(buf_size(&out), 0);
    free(arr);
    free(arr_over);
    buf_free(&out);
}

/* out's limit is the caller's: past it the rewrite fails whole and out keeps its bytes. */
static void out_unchanged_when_it_cannot_grow(void **state)
{
    (void)state;
    const char *in = "{\"x\":1,\"sender\":2}";
    const char *want = "{\"x\":1," TAIL;
    size_t need = strlen(PREFIX) + strlen(want);

    struct buf out;
    buf_init(&out, need - 1);
    assert_int_equal(buf_append_str(&out, PREFIX), 0);
    assert_int_equal(rewrite_str(in, &out), JSON_ERR_NOMEM);
    assert_int_equal(buf_size(&out), strlen(PREFIX));
    assert_memory_equal(buf_head(&out), PREFIX, strlen(PREFIX));
    buf_free(&out);

    buf_init(&out, need); /* exactly enough */
    assert_int_equal(buf_append_str(&out, PREFIX), 0);
    assert_int_equal(rewrite_str(in, &out), 0);
    assert_int_equal(buf_size(&out), need);
    assert_memory_equal(buf_head(&out) + strlen(PREFIX), want, strlen(want));
    buf_free(&out);

    buf_init(&out, 4); /* smaller than even "{}" */
    assert_int_equal(rewrite_str("{}", &out), JSON_ERR_NOMEM);
    assert_int_equal(buf_size(&out), 0);
    buf_free(&out);
}

/* Consumed bytes at the front of out (as after a partial write()) must not confuse it. */
static void appends_after_consumed_bytes(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(buf_append_str(&out, "0123456789"), 0);
    buf_consume(&out, 4);
    assert_int_equal(rewrite_str("{\"a\":1}", &out), 0);
    const char *want = "456789{\"a\":1," TAIL;
    assert_int_equal(buf_size(&out), strlen(want));
    assert_memory_equal(buf_head(&out), want, strlen(want));
    buf_free(&out);
}

static void writes_color_and_sender_given(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1 << 12);
    const char *id = "00000000-0000-4000-8000-000000000000";
    assert_int_equal(json_rewrite((const uint8_t *)"{\"color\":5}", 11, id, 0, &out), 0);
    const char *want0 = "{\"sender\":\"00000000-0000-4000-8000-000000000000\",\"color\":0}";
    assert_int_equal(buf_size(&out), strlen(want0));
    assert_memory_equal(buf_head(&out), want0, strlen(want0));
    buf_reset(&out);
    assert_int_equal(json_rewrite((const uint8_t *)"{}", 2, id, 359, &out), 0);
    const char *want359 = "{\"sender\":\"00000000-0000-4000-8000-000000000000\",\"color\":359}";
    assert_int_equal(buf_size(&out), strlen(want359));
    assert_memory_equal(buf_head(&out), want359, strlen(want359));
    buf_free(&out);
}

/* A room token's name: the client's "name" members go (however spelled), the server's goes
 * before sender and color; rewriting the output again, with the name or without it (what
 * another node of a cluster does, knowing no name), gives the same bytes. */
static void stamps_a_name_and_removes_the_clients(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } rows_n[] = {
        {"{\"x\":1}", "{\"x\":1,\"name\":\"Ann\"," TAIL},
        {"{}", "{\"name\":\"Ann\"," TAIL},
        {"{\"name\":\"Mallory\",\"x\":1}", "{\"x\":1,\"name\":\"Ann\"," TAIL},
        {"{\"n\\u0061me\":\"Mallory\",\"name\":{\"a\":1},\"y\":2}",
         "{\"y\":2,\"name\":\"Ann\"," TAIL},
        {"{\"x\":1,\"sender\":\"me\",\"color\":1,\"name\":\"Eve\"}",
         "{\"x\":1,\"name\":\"Ann\"," TAIL},
        {"{\"names\":1}", "{\"names\":1,\"name\":\"Ann\"," TAIL},
    };
    struct buf out, again;
    buf_init(&out, 1 << 12);
    buf_init(&again, 1 << 12);
    for (size_t i = 0; i < sizeof rows_n / sizeof rows_n[0]; i++) {
        buf_reset(&out);
        assert_int_equal(json_rewrite_named((const uint8_t *)rows_n[i].in, strlen(rows_n[i].in), ID,
                                            HUE, "\"Ann\"", &out),
                         0);
        if (buf_size(&out) != strlen(rows_n[i].out) ||
            memcmp(buf_head(&out), rows_n[i].out, buf_size(&out)) != 0)
            fail_msg("row %zu: \"%.*s\", want \"%s\"", i, (int)buf_size(&out),
                     (const char *)buf_head(&out), rows_n[i].out);
        for (int named = 0; named < 2; named++) {
            buf_reset(&again);
            assert_int_equal(json_rewrite_named(buf_head(&out), buf_size(&out), ID, HUE,
                                                named ? "\"Ann\"" : NULL, &again),
                             0);
            assert_int_equal(buf_size(&again), buf_size(&out));
            assert_memory_equal(buf_head(&again), buf_head(&out), buf_size(&out));
        }
    }
    /* Without a name, a client's own "name" is one of its members, kept where it stands. */
    buf_reset(&out);
    assert_int_equal(
        json_rewrite_named((const uint8_t *)"{\"name\":\"Bob\",\"x\":1}", 20, ID, HUE, NULL, &out),
        0);
    const char *want = "{\"name\":\"Bob\",\"x\":1," TAIL;
    assert_int_equal(buf_size(&out), strlen(want));
    assert_memory_equal(buf_head(&out), want, strlen(want));
    buf_free(&out);
    buf_free(&again);
}

/* json_members(): the top-level members, as views, each value with its kind. */
static void lists_the_members_of_an_object(void **state)
{
    (void)state;
    static const char in[] = " {\"a\":\"x\\u0041\", \"b\":-1.5e3,\"c\":true,\"d\":{\"e\":[1]},"
                             "\"f\":[],\"a\":null} ";
    struct json_member m[8];
    assert_int_equal(json_members((const uint8_t *)in, sizeof in - 1, m, 8), 6);
    static const enum json_kind kinds[] = {JSON_KIND_STRING, JSON_KIND_NUMBER, JSON_KIND_LITERAL,
                                           JSON_KIND_OBJECT, JSON_KIND_ARRAY,  JSON_KIND_LITERAL};
    static const char *const values[] = {"x\\u0041", "-1.5e3", "true", "{\"e\":[1]}", "[]", "null"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(m[i].kind, kinds[i]);
        assert_int_equal(m[i].value_len, strlen(values[i]));
        assert_memory_equal(m[i].value, values[i], m[i].value_len);
    }
    assert_int_equal(m[5].key_len, 1); /* duplicates are listed: the reader decides */
    assert_int_equal(json_members((const uint8_t *)in, sizeof in - 1, m, 5), JSON_ERR_TOO_COMPLEX);
    assert_int_equal(json_members((const uint8_t *)"{}", 2, m, 0), 0);
    assert_int_equal(json_members((const uint8_t *)"[1]", 3, m, 8), JSON_ERR_NOT_OBJECT);
    assert_int_equal(json_members((const uint8_t *)"{\"a\":01}", 8, m, 8), JSON_ERR_SYNTAX);

    uint8_t dec[8];
    assert_int_equal(json_string_decode(m[0].value, m[0].value_len, dec, sizeof dec), 2);
    assert_memory_equal(dec, "xA", 2);
    assert_int_equal(json_string_decode((const uint8_t *)"\\ud83d\\ude00", 12, dec, sizeof dec), 4);
    assert_memory_equal(dec, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(json_string_decode((const uint8_t *)"\\ud83d", 6, dec, sizeof dec), SIZE_MAX);
    assert_int_equal(json_string_decode((const uint8_t *)"\\ude00x", 7, dec, sizeof dec), SIZE_MAX);
    assert_int_equal(json_string_decode((const uint8_t *)"abc", 3, dec, 2), SIZE_MAX);
    assert_int_equal(json_string_decode((const uint8_t *)"a\\x", 3, dec, sizeof dec), SIZE_MAX);
}

/* ---- The error table ------------------------------------------------------------------------ */

static void maps_errors_to_close_codes(void **state)
{
    (void)state;
    assert_int_equal(json_err_close_code(JSON_ERR_SYNTAX), 1007);
    assert_string_equal(json_err_reason(JSON_ERR_SYNTAX), "invalid JSON");
    assert_int_equal(json_err_close_code(JSON_ERR_NOT_OBJECT), 1007);
    assert_string_equal(json_err_reason(JSON_ERR_NOT_OBJECT), "JSON is not an object");
    assert_int_equal(json_err_close_code(JSON_ERR_TOO_COMPLEX), 1009);
    assert_string_equal(json_err_reason(JSON_ERR_TOO_COMPLEX), "JSON too complex");
    assert_int_equal(json_err_close_code(JSON_ERR_RESERVED), 1008);
    assert_string_equal(json_err_reason(JSON_ERR_RESERVED), "reserved message type");
    assert_int_equal(json_err_close_code(JSON_ERR_NOMEM), 1011);
    assert_string_equal(json_err_reason(JSON_ERR_NOMEM), "out of memory");
    /* RFC 6455 §5.5.1: a close reason travels in a control frame, so at most 123 bytes */
    for (int e = JSON_ERR_NOMEM; e <= JSON_ERR_SYNTAX; e++)
        assert_true(strlen(json_err_reason(e)) <= 123);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rewrites),
        cmocka_unit_test(removes_spoofed_sender_and_color),
        cmocka_unit_test(copies_nested_values_whole),
        cmocka_unit_test(keeps_strings_and_unicode_byte_for_byte),
        cmocka_unit_test(keeps_numbers_exactly),
        cmocka_unit_test(drops_top_level_whitespace_only),
        cmocka_unit_test(refuses_reserved_types),
        cmocka_unit_test(refuses_every_syntax_error),
        cmocka_unit_test(tells_valid_non_objects_apart),
        cmocka_unit_test(every_truncation_is_a_syntax_error),
        cmocka_unit_test(rewriting_twice_changes_nothing),
        cmocka_unit_test(refuses_more_than_max_tokens),
        cmocka_unit_test(out_unchanged_when_it_cannot_grow),
        cmocka_unit_test(appends_after_consumed_bytes),
        cmocka_unit_test(writes_color_and_sender_given),
        cmocka_unit_test(stamps_a_name_and_removes_the_clients),
        cmocka_unit_test(lists_the_members_of_an_object),
        cmocka_unit_test(maps_errors_to_close_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
