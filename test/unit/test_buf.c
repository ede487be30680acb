/* Unit tests for buf.c: the cap, growth, consume/reuse, printf. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void append_respects_limit_and_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345", 5), 0);
    assert_int_equal(buf_append(&b, "6789", 4), -ENOBUFS); /* 9 > 8: all or nothing */
    assert_int_equal(buf_size(&b), 5);
    assert_int_equal(buf_append(&b, "678", 3), 0); /* exactly the limit */
    assert_memory_equal(buf_head(&b), "12345678", 8);
    assert_null(buf_reserve(&b, 1));
    buf_free(&b);
}

static void consume_makes_room_again(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "abcdefgh", 8), 0);
    buf_consume(&b, 3);
    assert_int_equal(buf_size(&b), 5);
    assert_int_equal(buf_append(&b, "ijk", 3), 0); /* slides "defgh" down, no growth */
    assert_memory_equal(buf_head(&b), "defghijk", 8);
    buf_consume(&b, 8);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void grows_past_first_allocation(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    uint8_t chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(buf_size(&b), 100000);
    assert_true(b.cap >= 100000 && b.cap <= b.limit);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.limit, 1 << 20); /* reusable with the same limit */
}

static void reserve_commit_pair(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    uint8_t *p = buf_reserve(&b, 10);
    assert_non_null(p);
    memcpy(p, "hello", 5);
    buf_commit(&b, 5);
    assert_int_equal(buf_size(&b), 5);
    assert_memory_equal(buf_head(&b), "hello", 5);
    buf_free(&b);
}

static void printf_appends_without_nul_and_respects_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "ab"), 0);
    assert_int_equal(buf_size(&b), 5);
    assert_int_equal(buf_printf(&b, "%s", "12345"), 0); /* exactly 10: NUL never counted */
    assert_memory_equal(buf_head(&b), "42-ab12345", 10);
    assert_int_equal(buf_printf(&b, "x"), -ENOBUFS);
    assert_int_equal(buf_size(&b), 10);
    buf_free(&b);
}

static void shrink_releases_only_empty_big_buffers(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_non_null(buf_reserve(&b, 5000));
    buf_commit(&b, 5000);
    buf_shrink(&b, 4096);
    assert_non_null(b.data); /* not empty: kept */
    buf_consume(&b, 5000);
    buf_shrink(&b, 4096);
    assert_null(b.data);
    buf_free(&b);
}

static void writer_measures_then_writes_the_same_bytes(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    for (int pass = 0; pass < 2; pass++) {
        static size_t need;
        struct buf_writer w = {.dst = pass == 0 ? NULL : buf_reserve(&b, need)};
        buf_put_str(&w, "{\"n\":");
        buf_put_uint(&w, 4294967295u);
        buf_put(&w, "}", 1);
        if (pass == 0) {
            need = w.len;
            assert_int_equal(buf_size(&b), 0); /* counting wrote nothing */
        } else {
            assert_int_equal(w.len, need);
            buf_commit(&b, need);
        }
    }
    assert_int_equal(buf_size(&b), 16);
    assert_memory_equal(buf_head(&b), "{\"n\":4294967295}", 16);
    buf_free(&b);
}

static void truncate_undoes_a_partial_message(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    assert_int_equal(buf_append(&b, "keep", 4), 0);
    buf_consume(&b, 1); /* off > 0: truncate counts from the readable start */
    size_t mark = buf_size(&b);
    assert_int_equal(buf_append(&b, "half", 4), 0);
    assert_int_equal(buf_append(&b, "0123456789", 10), -ENOBUFS);
    buf_truncate(&b, mark);
    assert_int_equal(buf_size(&b), 3);
    assert_memory_equal(buf_head(&b), "eep", 3);
    buf_truncate(&b, 0);
    assert_int_equal(buf_size(&b), 0);
    assert_int_equal(b.off, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_respects_limit_and_leaves_buffer_unchanged),
        cmocka_unit_test(consume_makes_room_again),
        cmocka_unit_test(grows_past_first_allocation),
        cmocka_unit_test(reserve_commit_pair),
        cmocka_unit_test(printf_appends_without_nul_and_respects_limit),
        cmocka_unit_test(shrink_releases_only_empty_big_buffers),
        cmocka_unit_test(writer_measures_then_writes_the_same_bytes),
        cmocka_unit_test(truncate_undoes_a_partial_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
