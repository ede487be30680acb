/* Unit tests for drain.c: the closes of a drain, spread evenly over its time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "drain.h"

/* Runs a drain as the event loop would: at each wake-up, close what is due, sleep until
 * the next close. Records when each close happened (ms after the start) in at[]. */
static size_t simulate(uint64_t time_ms, size_t total, uint64_t at[], size_t cap)
{
    struct drain d;
    uint64_t now = 1000;
    drain_start(&d, now, time_ms, total);
    size_t n = 0;
    for (int wakeups = 0; wakeups < 100000; wakeups++) {
        size_t due = drain_due(&d, now);
        for (size_t i = d.closed; i < due && n < cap; i++)
            at[n++] = now - 1000;
        drain_closed(&d, due - d.closed);
        int64_t next = drain_next_ms(&d, now);
        if (next < 0)
            break;
        assert_true(next > 0); /* what was due is done: never a busy loop */
        now += (uint64_t)next;
    }
    return n;
}

static void spreads_closes_evenly(void **state)
{
    (void)state;
    uint64_t at[10];
    assert_int_equal(simulate(5000, 10, at, 10), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(at[i], i * 500); /* 0, 500, ... 4500: the first at once */
}

static void one_client_goes_at_once(void **state)
{
    (void)state;
    uint64_t at[1];
    assert_int_equal(simulate(5000, 1, at, 1), 1);
    assert_int_equal(at[0], 0);
}

static void no_client_ends_at_once(void **state)
{
    (void)state;
    struct drain d;
    drain_start(&d, 7, 5000, 0);
    assert_int_equal(drain_due(&d, 7), 0);
    assert_int_equal(drain_next_ms(&d, 7), -1);
}

/* More clients than milliseconds: several per wake-up, and still all within the time. */
static void more_clients_than_ms(void **state)
{
    (void)state;
    static uint64_t at[10000];
    assert_int_equal(simulate(100, 10000, at, 10000), 10000);
    for (size_t i = 1; i < 10000; i++)
        assert_true(at[i] >= at[i - 1]);
    assert_true(at[9999] <= 100); /* the last is due by the end, at the latest */
    /* Evenly: by 50 ms, half of them (give or take one millisecond's worth). */
    size_t by_half = 0;
    while (by_half < 10000 && at[by_half] <= 50)
        by_half++;
    assert_in_range(by_half, 5000, 5100);
}

/* No close comes before its time, and everything is done by the end. */
static void never_early_never_late(void **state)
{
    (void)state;
    static const size_t totals[] = {2, 3, 7, 333, 1000};
    static const uint64_t times[] = {1, 999, 5000, 3600000};
    static uint64_t at[1000];
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
        for (size_t m = 0; m < sizeof times / sizeof times[0]; m++) {
            size_t n = simulate(times[m], totals[t], at, 1000);
            assert_int_equal(n, totals[t]);
            for (size_t i = 0; i < n; i++) {
                /* due at ceil(i * T / N): never before i * T / N */
                assert_true(at[i] * totals[t] >= i * times[m]);
                assert_true(at[i] <= times[m]);
            }
        }
}

/* A wake-up late by more than the whole drain (a stopped process, a busy loop): everything
 * is due at once, nothing overflows. */
static void late_wakeup_closes_the_rest(void **state)
{
    (void)state;
    struct drain d;
    drain_start(&d, 0, CONFIG_DURATION_MAX_MS, CONFIG_MAX_CLIENTS_MAX);
    assert_int_equal(drain_due(&d, 0), 1);
    assert_int_equal(drain_due(&d, UINT64_MAX / 2), CONFIG_MAX_CLIENTS_MAX);
    assert_int_equal(drain_due(&d, CONFIG_DURATION_MAX_MS - 1), CONFIG_MAX_CLIENTS_MAX);
    drain_closed(&d, SIZE_MAX); /* more than there are: capped */
    assert_int_equal(d.closed, CONFIG_MAX_CLIENTS_MAX);
    assert_int_equal(drain_next_ms(&d, 0), -1);
}

/* A clock that seems to go backwards (now before the start) closes only the first. */
static void clock_before_start(void **state)
{
    (void)state;
    struct drain d;
    drain_start(&d, 1000, 5000, 10);
    assert_int_equal(drain_due(&d, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spreads_closes_evenly),  cmocka_unit_test(one_client_goes_at_once),
        cmocka_unit_test(no_client_ends_at_once), cmocka_unit_test(more_clients_than_ms),
        cmocka_unit_test(never_early_never_late), cmocka_unit_test(late_wakeup_closes_the_rest),
        cmocka_unit_test(clock_before_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
