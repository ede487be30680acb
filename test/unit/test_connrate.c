/* Unit tests for connrate.c: a bucket per address, IPv6 by /64, IPv4-mapped as IPv4, a
 * fixed table whose evictions only ever make the limit laxer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "connrate.h"

static struct net_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct net_addr x = {.family = AF_INET, .port = 40000};
    x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
    return x;
}

static struct net_addr v6(uint16_t net, uint16_t host)
{
    struct net_addr x = {.family = AF_INET6, .port = 40000};
    x.ip[0] = 0x20, x.ip[1] = 0x01, x.ip[2] = 0x0d, x.ip[3] = 0xb8; /* 2001:db8::/32 */
    x.ip[6] = (uint8_t)(net >> 8), x.ip[7] = (uint8_t)net;          /* .. the /64 */
    x.ip[14] = (uint8_t)(host >> 8), x.ip[15] = (uint8_t)host;      /* .. the host */
    return x;
}

static int take_all(struct connrate *t, const struct net_addr *a, uint64_t now)
{
    int n = 0;
    while (n < 100000 && connrate_take(t, a, now))
        n++;
    return n;
}

static void burst_then_refill_per_address(void **state)
{
    (void)state;
    struct connrate t;
    assert_int_equal(connrate_init(&t, 100, 20, 100), 0);
    struct net_addr a = v4(192, 0, 2, 1), b = v4(192, 0, 2, 2);
    assert_int_equal(take_all(&t, &a, 1000), 100);   /* the burst */
    assert_false(connrate_take(&t, &a, 1049));       /* 0.98 of a token */
    assert_true(connrate_take(&t, &a, 1050));        /* 20 a second: one per 50 ms */
    assert_int_equal(take_all(&t, &b, 1050), 100);   /* another address: its own bucket */
    assert_int_equal(take_all(&t, &a, 2050), 20);    /* one second: 20 more */
    assert_int_equal(take_all(&t, &a, 100000), 100); /* idle: full again, never more */
    connrate_free(&t);
}

static void ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4(void **state)
{
    (void)state;
    struct connrate t;
    assert_int_equal(connrate_init(&t, 100, 1, 3), 0);
    struct net_addr h1 = v6(7, 1), h2 = v6(7, 2), other = v6(8, 1);
    assert_int_equal(take_all(&t, &h1, 0), 3);
    assert_false(connrate_take(&t, &h2, 0)); /* same /64: the same client */
    assert_int_equal(take_all(&t, &other, 0), 3);

    struct net_addr plain = v4(198, 51, 100, 9);
    struct net_addr mapped = {.family = AF_INET6};
    mapped.ip[10] = 0xff, mapped.ip[11] = 0xff;
    memcpy(mapped.ip + 12, plain.ip, 4); /* ::ffff:198.51.100.9 */
    assert_int_equal(take_all(&t, &mapped, 0), 3);
    assert_false(connrate_take(&t, &plain, 0));
    connrate_free(&t);
}

static void off_and_unknown_family_never_limit(void **state)
{
    (void)state;
    struct connrate t;
    assert_int_equal(connrate_init(&t, 100, 0, 0), 0);
    assert_null(t.entries); /* off: no memory at all */
    struct net_addr a = v4(192, 0, 2, 1);
    for (int i = 0; i < 1000; i++)
        assert_true(connrate_take(&t, &a, 0));
    connrate_free(&t);
    assert_int_equal(connrate_init(&t, 100, 1, 1), 0);
    struct net_addr unknown = {.family = 0};
    for (int i = 0; i < 1000; i++)
        assert_true(connrate_take(&t, &unknown, 0));
    connrate_free(&t);
}

/* Many more addresses than places: the table stays its size, and each new address starts
 * with a full bucket (an eviction only hands an address a full bucket again: laxer, never
 * stricter). */
static void a_crowd_of_addresses_never_grows_the_table_nor_refuses_a_newcomer(void **state)
{
    (void)state;
    struct connrate t;
    assert_int_equal(connrate_init(&t, 10, 1, 2), 0);
    size_t mask = t.mask;
    assert_int_equal(mask + 1, 64);
    for (uint32_t i = 0; i < 100000; i++) {
        struct net_addr a = v4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        assert_true(connrate_take(&t, &a, 1 + i / 1000)); /* a newcomer: a full bucket */
    }
    assert_int_equal(t.mask, mask);
    connrate_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refill_per_address),
        cmocka_unit_test(ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4),
        cmocka_unit_test(off_and_unknown_family_never_limit),
        cmocka_unit_test(a_crowd_of_addresses_never_grows_the_table_nor_refuses_a_newcomer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
