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

/* --max-byte-rate: a bucket of bytes, n per message, bigger than one second's worth. */
static void takes_n_tokens_or_none(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 1000, 0);                             /* 1000 bytes of burst */
    assert_true(rate_take_n(&r, 100, 1000, 0, 600));    /* 400 left */
    assert_false(rate_take_n(&r, 100, 1000, 0, 500));   /* not enough: nothing taken */
    assert_true(rate_take_n(&r, 100, 1000, 0, 400));    /* exactly the rest */
    assert_false(rate_take_n(&r, 100, 1000, 999, 100)); /* 99.9 bytes refilled */
    assert_true(rate_take_n(&r, 100, 1000, 1000, 100)); /* 100 bytes a second */
    /* Idle long enough, it holds the burst, not one second's worth. */
    assert_true(rate_take_n(&r, 100, 1000, 1000 + 10000, 1000));
    /* A message bigger than the whole bucket can never pass. */
    rate_init(&r, 1000, 0);
    assert_false(rate_take_n(&r, 100, 1000, UINT64_MAX, 1001));
}

static void largest_values_do_not_overflow(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, RATE_MAX, 0);
    assert_true(rate_take_n(&r, RATE_MAX, RATE_MAX, 0, RATE_MAX));
    assert_false(rate_take_n(&r, RATE_MAX, RATE_MAX, 0, 1));
    assert_true(rate_take_n(&r, RATE_MAX, RATE_MAX, UINT64_MAX, RATE_MAX)); /* refilled, capped */
    assert_false(rate_take_n(&r, RATE_MAX, RATE_MAX, UINT64_MAX, 1));
    rate_init(&r, RATE_MAX, 0);
    assert_true(rate_take_n(&r, 1, RATE_MAX, UINT64_MAX, RATE_MAX)); /* slow refill, huge gap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_is_one_second_worth),
        cmocka_unit_test(refills_at_the_rate),
        cmocka_unit_test(never_exceeds_capacity_after_idle),
        cmocka_unit_test(zero_means_no_limit),
        cmocka_unit_test(clock_going_backwards_is_harmless),
        cmocka_unit_test(takes_n_tokens_or_none),
        cmocka_unit_test(largest_values_do_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
