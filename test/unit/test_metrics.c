/* Unit tests for metrics.c: the Prometheus text page, its values, and all-or-nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static char *page(const struct metrics *m, const struct metrics_gauges *g, struct buf *out)
{
    buf_init(out, 1 << 16);
    assert_int_equal(metrics_write(m, g, out), 0);
    assert_int_equal(buf_append(out, "", 1), 0); /* NUL-terminate for strstr */
    return (char *)buf_head(out);
}

static void every_sample_has_help_and_type(void **state)
{
    (void)state;
    struct metrics m = {0};
    struct metrics_gauges g = {0};
    struct buf out;
    char *text = page(&m, &g, &out);
    /* Walk the lines: each sample's metric name must have been announced by HELP and TYPE. */
    char announced[64][64];
    size_t nannounced = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[64];
        if (sscanf(line, "# TYPE %63s", name) == 1) {
            assert_true(nannounced < 64);
            strcpy(announced[nannounced++], name);
        } else if (line[0] != '#') {
            size_t n = strcspn(line, "{ ");
            assert_true(n > 0 && n < sizeof name);
            memcpy(name, line, n);
            name[n] = '\0';
            bool found = false;
            for (size_t i = 0; i < nannounced; i++)
                found |= strcmp(announced[i], name) == 0;
            if (!found)
                fail_msg("sample without # TYPE: %s", line);
        }
    }
    assert_true(nannounced >= 10);
    buf_free(&out);
}

static void values_and_labels(void **state)
{
    (void)state;
    struct metrics m = {.connections_total = 12,
                        .messages_in = 3,
                        .messages_out = 7,
                        .bytes_in = 100,
                        .bytes_out = UINT64_C(18446744073709551615),
                        .rate_limited = 5};
    m.disconnects[CONN_END_SLOW_READER] = 2;
    struct metrics_gauges g = {
        .connections_open = 4, .ws_open = 2, .echo_open = 1, .wbuf_high_water = 4096};
    struct buf out;
    char *text = page(&m, &g, &out);
    assert_non_null(strstr(text, "\nwsrelay_connections_open 4\n"));
    assert_non_null(strstr(text, "\nwsrelay_connections_total 12\n"));
    assert_non_null(strstr(text, "\nwsrelay_websockets_open{route=\"ws\"} 2\n"));
    assert_non_null(strstr(text, "\nwsrelay_websockets_open{route=\"echo\"} 1\n"));
    assert_non_null(strstr(text, "\nwsrelay_messages_out_total 7\n"));
    assert_non_null(strstr(text, "\nwsrelay_bytes_out_total 18446744073709551615\n"));
    assert_non_null(strstr(text, "\nwsrelay_rate_limited_total 5\n"));
    assert_non_null(strstr(text, "\nwsrelay_disconnects_total{reason=\"slow_reader\"} 2\n"));
    assert_non_null(strstr(text, "\nwsrelay_disconnects_total{reason=\"closed\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE wsrelay_messages_in_total counter\n"));
    assert_non_null(strstr(text, "# TYPE wsrelay_connections_open gauge\n"));
    buf_free(&out);
}

static void page_is_all_or_nothing(void **state)
{
    (void)state;
    struct metrics m = {0};
    struct metrics_gauges g = {0};
    struct buf out;
    buf_init(&out, 1 << 16);
    assert_int_equal(metrics_write(&m, &g, &out), 0);
    size_t whole = buf_size(&out);
    buf_free(&out);

    buf_init(&out, 2 + whole - 1);
    assert_int_equal(buf_append(&out, "ab", 2), 0);
    assert_int_equal(metrics_write(&m, &g, &out), -ENOBUFS);
    assert_int_equal(buf_size(&out), 2);
    assert_memory_equal(buf_head(&out), "ab", 2);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_sample_has_help_and_type),
        cmocka_unit_test(values_and_labels),
        cmocka_unit_test(page_is_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
