/* Unit tests for utf8.c: a table of valid and invalid sequences (with the exact byte at
 * which the validator must give up), the same inputs split at every point, the ASCII fast
 * path, and an exhaustive comparison with a straightforward decoder written from RFC 3629. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

/* ---------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------- */

struct row {
    const char *name;
    const char *bytes;
    size_t len;
    int fail_at;   /* index of the first byte utf8_feed() must refuse, or -1 */
    bool complete; /* with fail_at == -1: does the input end on a code point boundary? */
};

#define OK(name, s)                                                                                \
    {                                                                                              \
        name, s, sizeof(s) - 1, -1, true                                                           \
    }
#define TRUNCATED(name, s)                                                                         \
    {                                                                                              \
        name, s, sizeof(s) - 1, -1, false                                                          \
    }
#define BAD(name, s, at)                                                                           \
    {                                                                                              \
        name, s, sizeof(s) - 1, at, false                                                          \
    }

static const struct row rows[] = {
    OK("empty", ""),
    OK("ASCII", "Hello"),
    OK("NUL", "\x00"),
    OK("U+007F", "\x7f"),
    OK("U+0080", "\xc2\x80"),
    OK("U+07FF", "\xdf\xbf"),
    OK("U+0800", "\xe0\xa0\x80"),
    OK("U+D7FF, last before the surrogates", "\xed\x9f\xbf"),
    OK("U+E000, first after the surrogates", "\xee\x80\x80"),
    OK("U+FFFD", "\xef\xbf\xbd"),
    OK("U+FFFF (a noncharacter, still valid UTF-8)", "\xef\xbf\xbf"),
    OK("U+10000", "\xf0\x90\x80\x80"),
    OK("U+10FFFF, the last code point", "\xf4\x8f\xbf\xbf"),
    OK("kosme (Autobahn 6.2)", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    OK("mixed widths", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"),
    /* Overlong forms (RFC 3629 §3: "MUST NOT" decode them). */
    BAD("overlong NUL C0 80", "\xc0\x80", 0),
    BAD("overlong '/' C0 AF", "\xc0\xaf", 0),
    BAD("overlong C1 BF", "\xc1\xbf", 0),
    BAD("overlong 3-byte E0 80 80", "\xe0\x80\x80", 1),
    BAD("overlong 3-byte E0 9F BF", "\xe0\x9f\xbf", 1),
    BAD("overlong 4-byte F0 80 80 80", "\xf0\x80\x80\x80", 1),
    BAD("overlong 4-byte F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1),
    /* UTF-16 surrogates (RFC 3629 §3). */
    BAD("surrogate U+D800", "\xed\xa0\x80", 1),
    BAD("surrogate U+DFFF", "\xed\xbf\xbf", 1),
    BAD("surrogate pair", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("kosme then a surrogate (Autobahn 6.4.1)",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 12),
    /* Past U+10FFFF. */
    BAD("U+110000 F4 90 80 80", "\xf4\x90\x80\x80", 1),
    BAD("F4 BF", "\xf4\xbf\xbf\xbf", 1),
    BAD("F5", "\xf5\x80\x80\x80", 0),
    BAD("F8 (old 5-byte)", "\xf8\x88\x80\x80\x80", 0),
    BAD("FE", "\xfe", 0),
    BAD("FF", "\xff", 0),
    /* Stray continuations and interrupted sequences. */
    BAD("lone continuation 80", "\x80", 0),
    BAD("lone continuation BF after ASCII", "a\xbf", 1),
    BAD("one continuation too many", "\xc3\xa9\xa9", 2),
    BAD("2-byte lead then ASCII", "\xc2\x41", 1),
    BAD("3-byte lead, one tail, then ASCII", "\xe2\x82\x41", 2),
    BAD("4-byte lead, two tails, then ASCII", "\xf0\x9f\x98\x41", 3),
    BAD("a lead inside a sequence", "\xe2\xc2\x80", 1),
    /* Truncated at the end: nothing wrong yet, but not a whole message. */
    TRUNCATED("lone 2-byte lead", "\xc2"),
    TRUNCATED("euro sign missing its last byte", "\xe2\x82"),
    TRUNCATED("emoji missing its last byte", "\xf0\x9f\x98"),
    TRUNCATED("ASCII then a lone F4", "abc\xf4"),
};

/* Feeds bytes as pieces ending at the given split points, then checks the outcome. */
static void check_split(const struct row *r, size_t split1, size_t split2)
{
    const uint8_t *p = (const uint8_t *)r->bytes;
    size_t cut[4] = {0, split1, split2, r->len};
    struct utf8_state s;
    utf8_init(&s);
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        bool fed = utf8_feed(&s, p + cut[i], cut[i + 1] - cut[i]);
        /* A piece is refused exactly when it holds the first bad byte (or comes after). */
        bool holds_bad = r->fail_at >= 0 && (size_t)r->fail_at < cut[i + 1];
        assert_int_equal(fed, !holds_bad);
        ok = ok && fed;
    }
    assert_int_equal(ok, r->fail_at < 0);
    assert_int_equal(utf8_is_complete(&s), r->fail_at < 0 && r->complete);
}

static void table_whole_split_and_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        print_message("  %s\n", r->name);
        const uint8_t *p = (const uint8_t *)r->bytes;

        /* One shot. */
        assert_int_equal(utf8_valid(p, r->len), r->fail_at < 0 && r->complete);

        /* Byte by byte: true up to fail_at, false from it on (the rejection sticks). */
        struct utf8_state s;
        utf8_init(&s);
        for (size_t k = 0; k < r->len; k++)
            assert_int_equal(utf8_feed(&s, p + k, 1), r->fail_at < 0 || (int)k < r->fail_at);
        assert_int_equal(utf8_is_complete(&s), r->fail_at < 0 && r->complete);

        /* Every split into three pieces (some empty). */
        for (size_t a = 0; a <= r->len; a++)
            for (size_t b = a; b <= r->len; b++)
                check_split(r, a, b);
    }
}

static void rejection_is_sticky(void **state)
{
    (void)state;
    struct utf8_state s;
    utf8_init(&s);
    assert_false(utf8_feed(&s, (const uint8_t *)"\xff", 1));
    assert_false(utf8_feed(&s, (const uint8_t *)"abc", 3));
    assert_false(utf8_feed(&s, NULL, 0));
    assert_false(utf8_is_complete(&s));
    utf8_init(&s); /* until the next message */
    assert_true(utf8_feed(&s, (const uint8_t *)"abc", 3));
    assert_true(utf8_is_complete(&s));
}

static void empty_feeds_change_nothing(void **state)
{
    (void)state;
    struct utf8_state s;
    utf8_init(&s);
    assert_true(utf8_feed(&s, NULL, 0));
    assert_true(utf8_is_complete(&s));
    assert_true(utf8_feed(&s, (const uint8_t *)"\xe2", 1));
    assert_true(utf8_feed(&s, NULL, 0));
    assert_false(utf8_is_complete(&s)); /* still waiting for two continuation bytes */
    assert_true(utf8_valid(NULL, 0));
}

/* The 8-bytes-at-a-time ASCII skip: a bad or multi-byte sequence at every offset of a long
 * ASCII run, including across the 8-byte blocks. */
static void ascii_fast_path_finds_every_position(void **state)
{
    (void)state;
    enum { N = 67 };
    uint8_t buf[N + 4];
    for (size_t at = 0; at + 4 <= N; at++) {
        memset(buf, 'x', sizeof buf);
        buf[at] = 0xff;
        struct utf8_state s;
        utf8_init(&s);
        assert_false(utf8_feed(&s, buf, N));
        /* The same bad byte fed in two pieces around it. */
        utf8_init(&s);
        assert_true(utf8_feed(&s, buf, at));
        assert_false(utf8_feed(&s, buf + at, N - at));

        memcpy(buf + at, "\xf0\x9f\x98\x80", 4); /* U+1F600 straddling a block */
        assert_true(utf8_valid(buf, N));
        assert_false(utf8_valid(buf, at + 3)); /* cut inside it */
    }
}

/* ---------------------------------------------------------------------------------------
 * Against a reference decoder
 * ------------------------------------------------------------------------------------- */

/* RFC 3629 read literally: decode each sequence's code point by its lead byte's length,
 * then refuse overlong forms, surrogates and anything past U+10FFFF. Slow and obvious. */
static bool ref_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        size_t need;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            need = 1, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            need = 2, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            need = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

static void agrees_with_reference_on_all_short_inputs(void **state)
{
    (void)state;
    uint8_t b[4];
    /* Every 1- and 2-byte input. */
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        assert_int_equal(utf8_valid(b, 1), ref_valid(b, 1));
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            assert_int_equal(utf8_valid(b, 2), ref_valid(b, 2));
        }
    }
    /* Every 3-byte input that starts with a non-ASCII byte. */
    for (unsigned x = 0x80; x < 256; x++)
        for (unsigned y = 0; y < 256; y++)
            for (unsigned z = 0; z < 256; z++) {
                b[0] = (uint8_t)x, b[1] = (uint8_t)y, b[2] = (uint8_t)z;
                if (utf8_valid(b, 3) != ref_valid(b, 3))
                    fail_msg("3 bytes %02x %02x %02x", x, y, z);
            }
    /* 4-byte inputs: every lead and second byte, the others at every class boundary. */
    static const uint8_t edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                   0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    for (unsigned x = 0xC0; x < 256; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t i = 0; i < sizeof edge; i++)
                for (size_t j = 0; j < sizeof edge; j++) {
                    b[0] = (uint8_t)x, b[1] = (uint8_t)y, b[2] = edge[i], b[3] = edge[j];
                    if (utf8_valid(b, 4) != ref_valid(b, 4))
                        fail_msg("4 bytes %02x %02x %02x %02x", x, y, b[2], b[3]);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_whole_split_and_byte_by_byte),
        cmocka_unit_test(rejection_is_sticky),
        cmocka_unit_test(empty_feeds_change_nothing),
        cmocka_unit_test(ascii_fast_path_finds_every_position),
        cmocka_unit_test(agrees_with_reference_on_all_short_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
