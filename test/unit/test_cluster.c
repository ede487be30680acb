/* Unit tests for cluster.c: the envelope between nodes (round trips, rooms good and bad in
 * every kind, and a table of every way a message can be malformed or foreign), one room's
 * STATE, and the node table. */
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

#define ROOM_64 "0123456789abcdef0123456789ABCDEF0123456789-._~0123456789abcdefgh"
#define ROOM_65 ROOM_64 "x"

static int decode_str(const char *s, struct cluster_msg *m)
{
    return cluster_decode((const uint8_t *)s, strlen(s), m);
}

static bool has_room(enum cluster_kind kind)
{
    return kind == CLUSTER_JOIN || kind == CLUSTER_MSG || kind == CLUSTER_LEAVE ||
           kind == CLUSTER_STATE;
}

static void round_trips(void **state)
{
    (void)state;
    static const char json[] = "{\"x\":1,\"sender\":\"" ID_A "\",\"color\":42}";
    static const char *const rooms[] = {"", "a", "lobby", ROOM_64};
    const enum cluster_kind kinds[] = {CLUSTER_HB,   CLUSTER_HELLO, CLUSTER_BYE,
                                       CLUSTER_JOIN, CLUSTER_MSG,   CLUSTER_LEAVE};
    assert_int_equal(strlen(ROOM_64), TARGET_ROOM_MAX);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t r = 0; r < sizeof rooms / sizeof rooms[0]; r++) {
            struct buf out;
            buf_init(&out, 4096);
            assert_int_equal(
                cluster_encode(&out, NODE, kinds[k], rooms[r], ID_A, 42, json, strlen(json)), 0);
            struct cluster_msg m;
            assert_int_equal(cluster_decode(buf_head(&out), buf_size(&out), &m), 0);
            assert_int_equal(m.kind, kinds[k]);
            assert_string_equal(m.node, NODE);
            if (kinds[k] == CLUSTER_HELLO) { /* a hello for one room */
                assert_true(m.has_room);
                assert_string_equal(m.room, rooms[r]);
            } else if (has_room(kinds[k])) {
                assert_true(m.has_room);
                assert_string_equal(m.room, rooms[r]);
                assert_string_equal(m.sender, ID_A);
                assert_int_equal(m.color, 42);
                assert_int_equal(m.json_len, strlen(json));
                assert_memory_equal(m.json, json, m.json_len); /* byte for byte */
            } else {
                assert_false(m.has_room);
                assert_string_equal(m.room, ""); /* not on the wire: ignored */
            }
            buf_free(&out);
        }
    }
    /* HB and BYE carry no room, sender or json: NULL is fine, a bad room ignored. A HELLO
     * without a room (NULL) asks for every room's state; with a bad one it is refused. */
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(cluster_encode(&out, NODE, CLUSTER_HB, NULL, NULL, 0, NULL, 0), 0);
    assert_int_equal(cluster_encode(&out, NODE, CLUSTER_BYE, "..", NULL, 0, NULL, 0), 0);
    assert_int_equal(cluster_encode(&out, NODE, CLUSTER_HELLO, NULL, NULL, 0, NULL, 0), 0);
    assert_int_equal(cluster_encode(&out, NODE, CLUSTER_HELLO, "..", NULL, 0, NULL, 0), -EINVAL);
    static const char both[] = "wsr2 " NODE " hbwsr2 " NODE " byewsr2 " NODE " hello";
    assert_int_equal(buf_size(&out), strlen(both));
    assert_memory_equal(buf_head(&out), both, strlen(both));
    buf_free(&out);

    /* The exact spelling, default room and a named one. */
    static const char *const lines[] = {
        "wsr2 " NODE " msg / " ID_A " 359 {}",
        "wsr2 " NODE " join /lobby " ID_A " 0 {}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct cluster_msg m;
        assert_int_equal(decode_str(lines[i], &m), 0);
        buf_init(&out, 4096);
        assert_int_equal(
            cluster_encode(&out, m.node, m.kind, m.room, m.sender, m.color, m.json, m.json_len), 0);
        assert_int_equal(buf_size(&out), strlen(lines[i]));
        assert_memory_equal(buf_head(&out), lines[i], strlen(lines[i]));
        buf_free(&out);
    }
    struct cluster_msg m;
    assert_int_equal(decode_str(lines[0], &m), 0);
    assert_int_equal(m.color, 359);
    assert_string_equal(m.room, "");
}

/* Room tokens as they appear on the wire, in every kind that carries one. */
static const struct {
    const char *token; /* what follows "<kind> " */
    const char *room;  /* the name decoded, or NULL: refused */
} WIRE_ROOMS[] = {
    {"/", ""},
    {"/a", "a"},
    {"/Lobby-1.b_c~", "Lobby-1.b_c~"}, /* case kept: names are case-sensitive */
    {"/" ROOM_64, ROOM_64},
    {"/" ROOM_65, NULL}, /* one byte too long */
    {"/.", NULL},        /* "." and ".." are not names */
    {"/..", NULL},
    {"/...", "..."}, /* only those two: three dots are a name */
    {"a", NULL},     /* no slash */
    {"//x", NULL},   /* one segment only */
    {"/x/", NULL},
    {"/%41", NULL},  /* not percent-decoded into "A" */
    {"/a b", NULL},  /* two tokens: "b" is no sender */
    {"/a\tb", NULL}, /* a byte outside the rule */
    {"/\xc3\xa9", NULL},
    {"", NULL},   /* an empty token: two spaces */
    {NULL, NULL}, /* no room at all: the old (wsr1) layout under the new magic */
};

static void rooms_in_every_kind(void **state)
{
    (void)state;
    static const char *const kinds[] = {"join", "msg", "leave", "state"};
    char line[512];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        bool is_state = strcmp(kinds[k], "state") == 0;
        const char *rest = is_state ? "1\n" ID_A " 5 2:{}" : ID_A " 5 {}";
        for (size_t r = 0; r < sizeof WIRE_ROOMS / sizeof WIRE_ROOMS[0]; r++) {
            if (WIRE_ROOMS[r].token != NULL)
                snprintf(line, sizeof line, "wsr2 %s %s %s %s", NODE, kinds[k], WIRE_ROOMS[r].token,
                         rest);
            else
                snprintf(line, sizeof line, "wsr2 %s %s %s", NODE, kinds[k], rest);
            struct cluster_msg m;
            int rc = decode_str(line, &m);
            if (WIRE_ROOMS[r].room == NULL) {
                if (rc != -1)
                    fail_msg("room %zu accepted: %s", r, line);
                continue;
            }
            if (rc != 0)
                fail_msg("room %zu refused: %s", r, line);
            assert_string_equal(m.room, WIRE_ROOMS[r].room);
            assert_int_equal(m.count, is_state ? 1 : 0);
        }
    }
    /* A NUL in the room (the decoder takes bytes, not a C string). */
    static const char nul[] = "wsr2 " NODE " msg /a\0b " ID_A " 5 {}";
    struct cluster_msg m;
    assert_int_equal(cluster_decode((const uint8_t *)nul, sizeof nul - 1, &m), -1);
    /* The kinds without a room take none; a hello takes one or none. */
    assert_int_equal(decode_str("wsr2 " NODE " hb /", &m), -1);
    assert_int_equal(decode_str("wsr2 " NODE " bye /a", &m), -1);
    assert_int_equal(decode_str("wsr2 " NODE " hello", &m), 0);
    assert_false(m.has_room);
    assert_int_equal(decode_str("wsr2 " NODE " hello /a", &m), 0);
    assert_true(m.has_room);
    assert_string_equal(m.room, "a");
    assert_int_equal(decode_str("wsr2 " NODE " hello /", &m), 0);
    assert_string_equal(m.room, "");
    assert_int_equal(decode_str("wsr2 " NODE " hello /..", &m), -1);
    assert_int_equal(decode_str("wsr2 " NODE " hello /a ", &m), -1);
    assert_int_equal(decode_str("wsr2 " NODE " hello a", &m), -1);
}

static void encode_refuses_a_bad_room(void **state)
{
    (void)state;
    static const char *const bad[] = {".",   "..",  ROOM_65, "/",   "/a",
                                      "a/b", "%41", "a b",   "a\n", "\xc3\xa9"};
    const enum cluster_kind kinds[] = {CLUSTER_JOIN, CLUSTER_MSG, CLUSTER_LEAVE};
    struct presence p;
    assert_int_equal(presence_init(&p, 1, 0, 0), 0);
    presence_join(&p, 0, ID_A, 1);
    const uint32_t members[] = {0};
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(buf_append_str(&out, "before"), 0);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        assert_int_equal(cluster_encode(&out, NODE, kinds[k], NULL, ID_A, 1, "{}", 2), -EINVAL);
        for (size_t r = 0; r < sizeof bad / sizeof bad[0]; r++)
            assert_int_equal(cluster_encode(&out, NODE, kinds[k], bad[r], ID_A, 1, "{}", 2),
                             -EINVAL);
    }
    assert_int_equal(cluster_encode_state(&out, NODE, NULL, &p, members, 1), -EINVAL);
    for (size_t r = 0; r < sizeof bad / sizeof bad[0]; r++)
        assert_int_equal(cluster_encode_state(&out, NODE, bad[r], &p, members, 1), -EINVAL);
    /* A STATE goes through cluster_encode_state(); a value that is no kind, nowhere. */
    assert_int_equal(cluster_encode(&out, NODE, CLUSTER_STATE, "", NULL, 0, NULL, 0), -EINVAL);
    assert_int_equal(cluster_encode(&out, NODE, (enum cluster_kind)0, "", NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(buf_size(&out), strlen("before")); /* out unchanged */
    assert_memory_equal(buf_head(&out), "before", strlen("before"));

    /* Too small: -ENOBUFS, out unchanged too. */
    struct buf small;
    buf_init(&small, strlen("wsr2 " NODE " msg /a " ID_A " 1 {}") - 1);
    assert_int_equal(cluster_encode(&small, NODE, CLUSTER_MSG, "a", ID_A, 1, "{}", 2), -ENOBUFS);
    assert_int_equal(buf_size(&small), 0);
    buf_free(&small);
    buf_free(&out);
    presence_free(&p);
}

static void refusals(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "",
        "hello world",
        "wsr1 " NODE " hb", /* issue 5's magic: an old node, ignored */
        "wsr1 " NODE " msg " ID_A " 5 {}",
        "wsr1 " NODE " msg / " ID_A " 5 {}",
        "wsr1 " NODE " state 0",
        "wsr3 " NODE " hb", /* another version */
        "WSR2 " NODE " hb",
        "wsr2 " NODE,                          /* no kind */
        "wsr2 " NODE " hb ",                   /* trailing space */
        "wsr2 " NODE " shout",                 /* unknown kind */
        "wsr2 0123456789ABCDEF hb",            /* upper-case node id */
        "wsr2 0123456789abcde hb",             /* 15 digits */
        "wsr2 0123456789abcdefa hb",           /* 17 digits */
        "wsr2 " NODE " msg / " ID_A " 360 {}", /* hue out of range */
        "wsr2 " NODE " msg / " ID_A " 042 {}", /* leading zero */
        "wsr2 " NODE " msg / " ID_A " -1 {}",
        "wsr2 " NODE " msg / " ID_A " 5", /* no JSON */
        "wsr2 " NODE " msg / " ID_A " 5 ",
        "wsr2 " NODE " msg / " ID_A " 5 not-json",
        "wsr2 " NODE " msg / " ID_A " 5 [1,2]",                          /* not an object */
        "wsr2 " NODE " msg / " ID_A " 5 {\"a\":1}x",                     /* trailing garbage */
        "wsr2 " NODE " msg / " ID_A " 5 {\"a\":\"\xff\"}",               /* not UTF-8 */
        "wsr2 " NODE " msg / 3F2B8C1E-9D4A-4F6B-8E2A-7C5D1B0A9E34 5 {}", /* upper-case id */
        "wsr2 " NODE " msg / 3f2b8c1e9d4a4f6b8e2a7c5d1b0a9e34xxxx 5 {}", /* no dashes */
        "wsr2 " NODE " msg / \"><img src=x>-4f6b-8e2a-7c5d1b0a9e34 5 {}",
        "wsr2 " NODE " msg /",                       /* a room, then nothing */
        "wsr2 " NODE " state",                       /* no room, no count */
        "wsr2 " NODE " state /",                     /* no count */
        "wsr2 " NODE " state 0",                     /* no room */
        "wsr2 " NODE " state / 1",                   /* a record missing */
        "wsr2 " NODE " state / 0\n" ID_A " 5 0:",    /* one record too many */
        "wsr2 " NODE " state / 1\n" ID_A " 5 3:{}",  /* length past the end */
        "wsr2 " NODE " state / 1\n" ID_A " 5 2:{}x", /* bytes after the last record */
        "wsr2 " NODE " state / 1\n" ID_A " 5 2:[]",  /* a record that is not an object */
        "wsr2 " NODE " state / 1\n" ID_A " 5 513:",  /* longer than presence keeps */
        "wsr2 " NODE " state / 01",                  /* leading zero in the count */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cluster_msg m;
        if (decode_str(rows[i], &m) != -1)
            fail_msg("row %zu accepted: %s", i, rows[i]);
    }
}

static void state_lists_one_rooms_local_clients(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 4, 4, 1024), 0);
    presence_join(&p, 0, ID_A, 10);
    static const char last[] = "{\"x\":7,\"sender\":\"" ID_A "\",\"color\":10}";
    assert_int_equal(presence_update(&p, 0, (const uint8_t *)last, strlen(last)), 0);
    presence_join(&p, 2, ID_B, 20);                                   /* no message yet */
    presence_join(&p, 3, "22222222-2222-4222-8222-222222222222", 30); /* another room's */
    long remote = presence_remote_add(&p, "11111111-1111-4111-8111-111111111111", 1, 1);
    assert_true(remote >= 4);

    /* The room's members as the caller lists them, with what must be skipped for safety: an
     * empty slot (1), another node's client, an index past the table. */
    const uint32_t members[] = {1, 0, (uint32_t)remote, 2, UINT32_MAX, (uint32_t)p.max_slots};
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(
        cluster_encode_state(&out, NODE, "lobby", &p, members, sizeof members / sizeof members[0]),
        0);
    static const char want_head[] = "wsr2 " NODE " state /lobby 2\n" ID_A " 10 ";
    assert_memory_equal(buf_head(&out), want_head, strlen(want_head));
    struct cluster_msg m;
    assert_int_equal(cluster_decode(buf_head(&out), buf_size(&out), &m), 0);
    assert_int_equal(m.kind, CLUSTER_STATE);
    assert_string_equal(m.room, "lobby");
    assert_int_equal(m.count, 2); /* counted as listed: the skipped ones are not */

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
    assert_int_equal(cluster_encode_state(&small, NODE, "lobby", &p, members,
                                          sizeof members / sizeof members[0]),
                     -ENOBUFS);
    assert_int_equal(buf_size(&small), 0);
    buf_free(&small);

    /* The default room, and a room with nobody here (members may be NULL when n is 0). */
    static const char *const empty[] = {"wsr2 " NODE " state / 0", "wsr2 " NODE " state /x 0"};
    const char *const rooms[] = {"", "x"};
    for (size_t i = 0; i < 2; i++) {
        buf_reset(&out);
        assert_int_equal(cluster_encode_state(&out, NODE, rooms[i], &p, NULL, 0), 0);
        assert_int_equal(buf_size(&out), strlen(empty[i]));
        assert_memory_equal(buf_head(&out), empty[i], strlen(empty[i]));
        assert_int_equal(cluster_decode(buf_head(&out), buf_size(&out), &m), 0);
        assert_string_equal(m.room, rooms[i]);
        assert_int_equal(m.count, 0);
    }

    /* A last message over PRESENCE_STATE_MAX is listed as none. */
    char big[PRESENCE_STATE_MAX + 16];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    assert_int_equal(presence_update(&p, 2, (const uint8_t *)big, sizeof big), 0);
    const uint32_t just_b[] = {2};
    buf_reset(&out);
    assert_int_equal(cluster_encode_state(&out, NODE, "", &p, just_b, 1), 0);
    static const char want_b[] = "wsr2 " NODE " state / 1\n" ID_B " 20 0:";
    assert_int_equal(buf_size(&out), strlen(want_b));
    assert_memory_equal(buf_head(&out), want_b, strlen(want_b));
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
        cmocka_unit_test(rooms_in_every_kind),
        cmocka_unit_test(encode_refuses_a_bad_room),
        cmocka_unit_test(refusals),
        cmocka_unit_test(state_lists_one_rooms_local_clients),
        cmocka_unit_test(nodes_are_remembered_and_expire),
        cmocka_unit_test(a_silence_our_link_did_not_hear_is_excused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
