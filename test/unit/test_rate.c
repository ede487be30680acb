/* Unit tests for rate.c: burst, refill, cap, off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rate.h"

static int take_all(struct rate *r, uint64_t per_sec, uint64_t now_ms)
{
    int n = 0;
    while (rate_take(r, per_sec, now_ms))
        n++;
    return n;
}

static void burst_is_one_second_worth(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 10, 1000);
    assert_int_equal(take_all(&r, 10, 1000), 10);
    assert_false(rate_take(&r, 10, 1000));
}

static void refills_at_the_rate(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 200, 0);
    assert_int_equal(take_all(&r, 200, 0), 200);
    assert_false(rate_take(&r, 200, 4));           /* 4 ms: 0.8 of a token */
    assert_true(rate_take(&r, 200, 5));            /* 5 ms: the token is whole */
    assert_int_equal(take_all(&r, 200, 505), 100); /* half a second: half the bucket */
}

static void never_exceeds_capacity_after_idle(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 5, 0);
    assert_int_equal(take_all(&r, 5, 0), 5);
    /* An hour of silence (and a clock value near the top) still refills one bucket only. */
    assert_int_equal(take_all(&r, 5, UINT64_C(3600000)), 5);
    assert_int_equal(take_all(&r, 5, UINT64_MAX), 5);
}

static void zero_means_no_limit(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 0, 0);
    for (int i = 0; i < 100000; i++)
        assert_true(rate_take(&r, 0, 0));
}

static void clock_going_backwards_is_harmless(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 3, 1000);
    assert_int_equal(take_all(&r, 3, 1000), 3);
    assert_false(rate_take(&r, 3, 10)); /* no refill, no underflow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_is_one_second_worth),         cmocka_unit_test(refills_at_the_rate),
        cmocka_unit_test(never_exceeds_capacity_after_idle), cmocka_unit_test(zero_means_no_limit),
        cmocka_unit_test(clock_going_backwards_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
