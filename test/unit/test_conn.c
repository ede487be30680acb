/* Unit tests for conn.c's pure rules: the slow-reader verdict on HTTP responses (issue 10
 * §2.2). The slot table and its lists are exercised by test_bcast.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conn.h"

enum { GRACE = 2000, MIN_RATE = 4096 };

static const char not_read[] = "response not read within --handshake-timeout";
static const char too_slow[] = "response read too slowly";

static struct conn_http started_at(uint64_t t)
{
    return (struct conn_http){.out_since_ms = t, .acked_ms = t};
}

/* A reader that takes nothing: fine for the grace, then closed. */
static void nothing_acknowledged_for_the_grace_is_not_read(void **state)
{
    (void)state;
    struct conn_http h = started_at(1000);
    assert_null(conn_http_judge_reader(&h, 0, 1000, GRACE, MIN_RATE));
    assert_null(conn_http_judge_reader(&h, 0, 1000 + GRACE - 1, GRACE, MIN_RATE));
    assert_string_equal(conn_http_judge_reader(&h, 0, 1000 + GRACE, GRACE, MIN_RATE), not_read);
}

/* Each newly acknowledged byte restarts that clock; an unchanged count does not. */
static void progress_restarts_the_no_progress_clock(void **state)
{
    (void)state;
    struct conn_http h = started_at(0);
    assert_null(conn_http_judge_reader(&h, 100000, 1500, GRACE, MIN_RATE));
    assert_int_equal(h.acked_ms, 1500);
    assert_int_equal(h.out_acked, 100000);
    assert_null(conn_http_judge_reader(&h, 100000, 3000, GRACE, MIN_RATE)); /* same count */
    assert_int_equal(h.acked_ms, 1500);
    assert_string_equal(conn_http_judge_reader(&h, 100000, 3500, GRACE, MIN_RATE), not_read);
}

/* slowhttptest -X: a little progress every second, far under the floor. Fine during the
 * grace; afterwards closed as soon as the average since the grace falls under min_rate. */
static void a_trickle_is_too_slow_once_the_grace_is_over(void **state)
{
    (void)state;
    struct conn_http h = started_at(0);
    uint64_t acked = 8192; /* what the peer's receive buffer swallowed at once */
    const char *why = NULL;
    uint64_t t;
    for (t = 1000; t <= 60000 && why == NULL; t += 1000) {
        acked += 32; /* 32 bytes a second */
        why = conn_http_judge_reader(&h, acked, t, GRACE, MIN_RATE);
    }
    assert_string_equal(why, too_slow);
    /* 8192 + 32 t < 4096 (t - 2): first true at t = 5 s, the tick after 4.03 s. */
    assert_int_equal(t - 1000, 5000);
}

/* A slow phone at 5 KB/s downloads a big file to the end. */
static void a_reader_over_the_floor_is_never_closed(void **state)
{
    (void)state;
    struct conn_http h = started_at(0);
    for (uint64_t t = 500; t <= 600000; t += 500)
        assert_null(conn_http_judge_reader(&h, t * 5, t, GRACE, MIN_RATE)); /* 5000 B/s */
}

/* Exactly at the floor is not under it. */
static void the_floor_itself_passes(void **state)
{
    (void)state;
    struct conn_http h = started_at(0);
    assert_null(conn_http_judge_reader(&h, 4096 * 8, 10000, GRACE, MIN_RATE));
    assert_string_equal(conn_http_judge_reader(&h, 4096 * 8, 10001, GRACE, MIN_RATE), too_slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_acknowledged_for_the_grace_is_not_read),
        cmocka_unit_test(progress_restarts_the_no_progress_clock),
        cmocka_unit_test(a_trickle_is_too_slow_once_the_grace_is_over),
        cmocka_unit_test(a_reader_over_the_floor_is_never_closed),
        cmocka_unit_test(the_floor_itself_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
