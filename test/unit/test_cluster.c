/* Unit tests for cluster.c: the envelope between nodes (round trips, and a table of every
 * way a message can be malformed or foreign), STATE records, and the node table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

#define NODE "0123456789abcdef"
#define ID_A "3f2b8c1e-9d4a-4f6b-8e2a-7c5d1b0a9e34"
#define ID_B "00000000-0000-4000-8000-00000000000b"

static int decode_str(const char *s, struct cluster_msg *m)
{
    return cluster_decode((const uint8_t *)s, strlen(s), m);
}

static void round_trips(void **state)
{
    (void)state;
    static const char json[] = "{\"x\":1,\"sender\":\"" ID_A "\",\"color\":42}";
    const enum cluster_kind kinds[] = {CLUSTER_HB,   CLUSTER_HELLO, CLUSTER_BYE,
                                       CLUSTER_JOIN, CLUSTER_MSG,   CLUSTER_LEAVE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct buf out;
        buf_init(&out, 4096);
        assert_int_equal(cluster_encode(&out, NODE, kinds[k], ID_A, 42, json, strlen(json)), 0);
        struct cluster_msg m;
        assert_int_equal(cluster_decode(buf_head(&out), buf_size(&out), &m), 0);
        assert_int_equal(m.kind, kinds[k]);
        assert_string_equal(m.node, NODE);
        if (kinds[k] == CLUSTER_JOIN || kinds[k] == CLUSTER_MSG || kinds[k] == CLUSTER_LEAVE) {
            assert_string_equal(m.sender, ID_A);
            assert_int_equal(m.color, 42);
            assert_int_equal(m.json_len, strlen(json));
            assert_memory_equal(m.json, json, m.json_len); /* byte for byte */
        }
        buf_free(&out);
    }
    struct cluster_msg m;
    assert_int_equal(decode_str("wsr1 " NODE " msg " ID_A " 359 {}", &m), 0);
    assert_int_equal(m.color, 359);
}

static void refusals(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "",
        "hello world",
        "wsr2 " NODE " hb",                  /* another version */
        "wsr1 " NODE,                        /* no kind */
        "wsr1 " NODE " hb ",                 /* trailing space */
        "wsr1 " NODE " shout",               /* unknown kind */
        "wsr1 0123456789ABCDEF hb",          /* upper-case node id */
        "wsr1 0123456789abcde hb",           /* 15 digits */
        "wsr1 0123456789abcdefa hb",         /* 17 digits */
        "wsr1 " NODE " msg " ID_A " 360 {}", /* hue out of range */
        "wsr1 " NODE " msg " ID_A " 042 {}", /* leading zero */
        "wsr1 " NODE " msg " ID_A " -1 {}",
        "wsr1 " NODE " msg " ID_A " 5", /* no JSON */
        "wsr1 " NODE " msg " ID_A " 5 not-json",
        "wsr1 " NODE " msg " ID_A " 5 [1,2]",                          /* JSON, not an object */
        "wsr1 " NODE " msg " ID_A " 5 {\"a\":1}x",                     /* trailing garbage */
        "wsr1 " NODE " msg " ID_A " 5 {\"a\":\"\xff\"}",               /* not UTF-8 */
        "wsr1 " NODE " msg 3F2B8C1E-9D4A-4F6B-8E2A-7C5D1B0A9E34 5 {}", /* upper-case id */
        "wsr1 " NODE " msg 3f2b8c1e9d4a4f6b8e2a7c5d1b0a9e34xxxx 5 {}", /* no dashes */
        "wsr1 " NODE " msg \"><img src=x>-4f6b-8e2a-7c5d1b0a9e34 5 {}",
        "wsr1 " NODE " state",                     /* no count */
        "wsr1 " NODE " state 1",                   /* a record missing */
        "wsr1 " NODE " state 0\n" ID_A " 5 0:",    /* one record too many */
        "wsr1 " NODE " state 1\n" ID_A " 5 3:{}",  /* length past the end */
        "wsr1 " NODE " state 1\n" ID_A " 5 2:{}x", /* bytes after the last record */
        "wsr1 " NODE " state 1\n" ID_A " 5 2:[]",  /* a record that is not an object */
        "wsr1 " NODE " state 1\n" ID_A " 5 513:",  /* longer than presence keeps */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cluster_msg m;
        if (decode_str(rows[i], &m) != -1)
            fail_msg("row %zu accepted: %s", i, rows[i]);
    }
}

static void state_lists_local_clients_only(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 4, 0), 0);
    presence_join(&p, 0, ID_A, 10);
    static const char last[] = "{\"x\":7,\"sender\":\"" ID_A "\",\"color\":10}";
    assert_int_equal(presence_update(&p, 0, (const uint8_t *)last, strlen(last)), 0);
    presence_join(&p, 2, ID_B, 20); /* no message yet */
    assert_true(presence_remote_add(&p, "11111111-1111-4111-8111-111111111111", 1, 1) >= 0);

    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(cluster_encode_state(&out, NODE, &p), 0);
    struct cluster_msg m;
    assert_int_equal(cluster_decode(buf_head(&out), buf_size(&out), &m), 0);
    assert_int_equal(m.kind, CLUSTER_STATE);
    assert_int_equal(m.count, 2); /* the remote client is another node's to announce */

    size_t pos = 0;
    struct cluster_peer peer;
    assert_true(cluster_next_peer(&m, &pos, &peer));
    assert_string_equal(peer.sender, ID_A);
    assert_int_equal(peer.color, 10);
    assert_int_equal(peer.json_len, strlen(last));
    assert_memory_equal(peer.json, last, peer.json_len);
    assert_true(cluster_next_peer(&m, &pos, &peer));
    assert_string_equal(peer.sender, ID_B);
    assert_int_equal(peer.json_len, 0);
    assert_false(cluster_next_peer(&m, &pos, &peer));

    /* All or nothing: one byte short of the whole state leaves out untouched. */
    size_t whole = buf_size(&out);
    struct buf small;
    buf_init(&small, whole - 1);
    assert_int_equal(cluster_encode_state(&small, NODE, &p), -ENOBUFS);
    assert_int_equal(buf_size(&small), 0);
    buf_free(&small);
    buf_free(&out);
    presence_free(&p);
}

static void nodes_are_remembered_and_expire(void **state)
{
    (void)state;
    struct cluster_nodes t = {0};
    bool is_new = false;
    int a = cluster_node_seen(&t, "aaaaaaaaaaaaaaaa", 1000, &is_new);
    assert_true(is_new);
    int b = cluster_node_seen(&t, "bbbbbbbbbbbbbbbb", 1500, &is_new);
    assert_true(a >= 0 && b >= 0 && a != b);
    assert_int_equal(cluster_node_seen(&t, "aaaaaaaaaaaaaaaa", 2000, &is_new), a); /* again */
    assert_false(is_new);
    assert_int_equal(cluster_node_expired(&t, 4000, 3000), -1);
    assert_int_equal(cluster_node_expired(&t, 4500, 3000), b); /* 3000 ms of silence */
    cluster_node_forget(&t, b);
    assert_int_equal(cluster_node_expired(&t, 4500, 3000), -1);
    assert_int_equal(cluster_node_expired(&t, 5000, 3000), a);
    /* A forgotten node heard from again is new again (it was frozen, not dead). */
    assert_true(cluster_node_seen(&t, "bbbbbbbbbbbbbbbb", 5000, &is_new) >= 0);
    assert_true(is_new);
    /* Judged at a time before a node was last heard: not expired (no wrap-around). */
    assert_int_equal(cluster_node_expired(&t, 4000, 3000), -1);

    struct cluster_nodes full = {0};
    char id[CLUSTER_NODE_ID_LEN + 1];
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        snprintf(id, sizeof id, "%016x", i);
        assert_int_equal(cluster_node_seen(&full, id, 0, &is_new), i);
    }
    assert_int_equal(cluster_node_seen(&full, "ffffffffffffffff", 0, &is_new), -1);
    assert_false(is_new);
}

static void a_silence_our_link_did_not_hear_is_excused(void **state)
{
    (void)state;
    struct cluster_nodes t = {0};
    bool is_new = false;
    int a = cluster_node_seen(&t, "aaaaaaaaaaaaaaaa", 1000, &is_new);
    int b = cluster_node_seen(&t, "bbbbbbbbbbbbbbbb", 2500, &is_new);
    cluster_node_excuse(&t, 2000); /* our own link was last proven at 2000 */
    assert_int_equal(cluster_node_expired(&t, 4999, 3000), -1);
    assert_int_equal(cluster_node_expired(&t, 5000, 3000), a); /* counted from 2000 */
    cluster_node_forget(&t, a);
    assert_int_equal(cluster_node_expired(&t, 5499, 3000), -1); /* b: heard later, unchanged */
    assert_int_equal(cluster_node_expired(&t, 5500, 3000), b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),
        cmocka_unit_test(refusals),
        cmocka_unit_test(state_lists_local_clients_only),
        cmocka_unit_test(nodes_are_remembered_and_expire),
        cmocka_unit_test(a_silence_our_link_did_not_hear_is_excused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
