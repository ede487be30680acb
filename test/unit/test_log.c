/* Unit tests for log.c's escaping: log_value() (a key=value field's value), log_text() (text
 * inside the quoted phrase) and log_escape(). The line format itself is checked from the
 * outside by test/integration/test_cli.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

struct esc_row {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *out;
};

static const struct esc_row VALUE_ROWS[] = {
    {"plain", "index.html", 0, "index.html"},
    {"path with slashes and dots", "sub/a.b-c_d~e", 0, "sub/a.b-c_d~e"},
    {"empty: quoted, so the field is visibly empty", "", 0, "\"\""},
    {"a space: quoted", "a b", 0, "\"a b\""},
    {"the forged-field attack", "a b\" status=200 x", 0, "\"a b\\x22 status\\x3d200 x\""},
    {"'=' alone", "k=v", 0, "k\\x3dv"},
    {"a quote alone", "a\"b", 0, "a\\x22b"},
    {"a backslash: escaped, so \\x in the output is always ours", "a\\x41", 0, "a\\x5cx41"},
    {"newline and CR: no second line", "a\r\nFAKE", 0, "a\\x0d\\x0aFAKE"},
    {"tab", "a\tb", 0, "a\\x09b"},
    {"terminal escape", "\x1b[31m", 0, "\\x1b[31m"},
    {"DEL and high bytes", "\x7f\x80\xff", 0, "\\x7f\\x80\\xff"},
    {"UTF-8 bytes, escaped one by one", "\xc3\xa9", 0, "\\xc3\\xa9"},
    {"an embedded NUL", "a\0b", 3, "a\\x00b"},
    {"space and NUL", " \0", 2, "\" \\x00\""},
};

static const struct esc_row TEXT_ROWS[] = {
    {"words stay words", "WRONGPASS invalid username-password pair", 0,
     "WRONGPASS invalid username-password pair"},
    {"'=' is kept inside the phrase", "a=b c", 0, "a=b c"},
    {"a quote cannot close the phrase", "x\" status=200 \"y", 0, "x\\x22 status=200 \\x22y"},
    {"no second line", "err\nFAKE line", 0, "err\\x0aFAKE line"},
    {"empty", "", 0, ""},
};

static void check_rows(const struct esc_row *rows, size_t n,
                       struct log_esc (*f)(const void *, size_t))
{
    for (size_t i = 0; i < n; i++) {
        size_t len = rows[i].len != 0 ? rows[i].len : strlen(rows[i].in);
        struct log_esc e = f(rows[i].in, len);
        if (strcmp(e.s, rows[i].out) != 0)
            fail_msg("row \"%s\": got [%s], want [%s]", rows[i].name, e.s, rows[i].out);
    }
}

static void value_table(void **state)
{
    (void)state;
    check_rows(VALUE_ROWS, sizeof VALUE_ROWS / sizeof VALUE_ROWS[0], log_value);
    assert_string_equal(log_value_str("a b").s, "\"a b\"");
    assert_string_equal(log_value_str(NULL).s, "\"\"");
}

static void text_table(void **state)
{
    (void)state;
    check_rows(TEXT_ROWS, sizeof TEXT_ROWS / sizeof TEXT_ROWS[0], log_text);
    assert_string_equal(log_text_str(NULL).s, "");
}

/* Whatever the bytes, a value is one token: printable ASCII; no space, '=' or '"' except that
 * a quoted value starts and ends with '"' and may hold spaces between. */
static void check_one_token(const char *s)
{
    size_t n = strlen(s);
    bool is_quoted = n >= 2 && s[0] == '"' && s[n - 1] == '"';
    size_t from = is_quoted ? 1 : 0, to = is_quoted ? n - 1 : n;
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_true(s[i] >= 0x20 && s[i] <= 0x7e);
    for (size_t i = from; i < to; i++) {
        assert_true(s[i] != '"' && s[i] != '=');
        if (!is_quoted)
            assert_true(s[i] != ' ');
    }
}

static void every_byte_makes_one_token(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        unsigned char in[3] = {'x', (unsigned char)b, 'y'};
        check_one_token(log_value(in, sizeof in).s);
        check_one_token(log_value(in + 1, 1).s);
        struct log_esc t = log_text(in, sizeof in);
        for (const char *p = t.s; *p != '\0'; p++)
            assert_true(*p >= 0x20 && *p <= 0x7e && *p != '"');
    }
}

static void long_values_are_cut_and_marked(void **state)
{
    (void)state;
    char in[LOG_VALUE_MAX * 2];
    memset(in, 'a', sizeof in);
    struct log_esc e = log_value(in, sizeof in);
    assert_int_equal(strlen(e.s), LOG_VALUE_MAX + 3);
    assert_memory_equal(e.s + LOG_VALUE_MAX, "...", 3);
    /* Exactly LOG_VALUE_MAX bytes: not cut. */
    e = log_value(in, LOG_VALUE_MAX);
    assert_int_equal(strlen(e.s), LOG_VALUE_MAX);
    /* The worst case, every byte escaped, quoted, and cut, still fits. */
    memset(in, ' ', 1);
    memset(in + 1, '"', sizeof in - 1);
    e = log_value(in, sizeof in);
    assert_int_equal(strlen(e.s), 1 + 1 + (LOG_VALUE_MAX - 1) * 4 + 3 + 1);
    assert_true(e.s[0] == '"' && e.s[strlen(e.s) - 1] == '"');
    assert_memory_equal(e.s + strlen(e.s) - 4, "...\"", 4);
    check_one_token(e.s);
    memset(in, 0xff, sizeof in);
    e = log_value(in, sizeof in);
    assert_int_equal(strlen(e.s), LOG_VALUE_MAX * 4 + 3);
    assert_true(strlen(e.s) < sizeof e.s);
}

static void log_escape_keeps_its_contract(void **state)
{
    (void)state;
    char out[16];
    log_escape(out, sizeof out, "a \"b\"", 5, 100);
    assert_string_equal(out, "a \\x22b\\x22");
    log_escape(out, sizeof out, "abcdefghijklmnopqrstuvwxyz", 26, 100); /* cut by out_len */
    assert_string_equal(out, "abcdefghijkl...");
    log_escape(out, sizeof out, "abcdef", 6, 3); /* cut by max */
    assert_string_equal(out, "abc...");
    log_escape(out, 3, "abc", 3, 100); /* too small to say anything */
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(value_table),
        cmocka_unit_test(text_table),
        cmocka_unit_test(every_byte_makes_one_token),
        cmocka_unit_test(long_values_are_cut_and_marked),
        cmocka_unit_test(log_escape_keeps_its_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
