/* Unit tests for presence.c: the roster, the kept last messages, and the exact bytes of
 * welcome, join and leave (docs/protocol.md). Every message is appended whole or not at all,
 * so the limit tests pre-fill out and check those bytes survive a refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "presence.h"

#define ID_A "00000000-0000-4000-8000-00000000000a"
#define ID_B "00000000-0000-4000-8000-00000000000b"
#define ID_C "00000000-0000-4000-8000-00000000000c"
#define ID_D "00000000-0000-4000-8000-00000000000d"

/* out must hold exactly the NUL-terminated text want. */
/* A welcome for the default room listing every entry: the room's lists, as room.c keeps
 * them, are all slots here (presence skips the absent and the newcomer itself). */
static int welcome(const struct presence *p, size_t self, struct buf *out)
{
    static uint32_t all[64];
    for (uint32_t i = 0; i < 64; i++)
        all[i] = i;
    assert_true(p->max_slots <= 64);
    struct presence_roster roster = {
        .room = "",
        .members = {all, all + p->local_slots},
        .count = {p->local_slots, p->max_slots - p->local_slots},
        .recent = PRESENCE_NO_ROOM,
        .max_peers = SIZE_MAX,
        .total = presence_count(p),
    };
    return presence_write_welcome(p, self, &roster, out);
}

static void assert_out(const struct buf *out, const char *want)
{
    if (buf_size(out) != strlen(want) || memcmp(buf_head(out), want, strlen(want)) != 0)
        fail_msg("out is \"%.*s\"\n expected \"%s\"", (int)buf_size(out),
                 buf_head(out) != NULL ? (const char *)buf_head(out) : "", want);
}

static int update_str(struct presence *p, size_t slot, const char *msg)
{
    return presence_update(p, slot, (const uint8_t *)msg, strlen(msg));
}

static void join_and_leave_messages(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 4, 0, 0), 0);
    assert_int_equal(presence_count(&p), 0);
    presence_join(&p, 2, ID_A, 7);
    assert_int_equal(presence_count(&p), 1);

    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(presence_write_join(&p, 2, &out), 0);
    assert_out(&out, "{\"type\":\"join\",\"sender\":\"" ID_A "\",\"color\":7}");
    buf_reset(&out);
    assert_int_equal(presence_write_leave(&p, 2, &out), 0);
    assert_out(&out, "{\"type\":\"leave\",\"sender\":\"" ID_A "\"}");

    presence_leave(&p, 2);
    assert_int_equal(presence_count(&p), 0);
    assert_false(p.peers[2].is_present);
    buf_free(&out);
    presence_free(&p);
    assert_null(p.peers);
}

static void welcome_alone_lists_no_peers(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 0, 0), 0);
    presence_join(&p, 0, ID_A, 0);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 0, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_A "\",\"color\":0,\"room\":\"\",\"peers\":[]}");
    buf_free(&out);
    presence_free(&p);
}

static void welcome_with_one_silent_peer(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 0, 0), 0);
    presence_join(&p, 1, ID_A, 359);
    presence_join(&p, 2, ID_B, 12);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 2, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":12,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_A "\",\"color\":359}]}");
    buf_free(&out);
    presence_free(&p);
}

static void welcome_with_one_peer_that_moved(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 0, 0), 0);
    presence_join(&p, 0, ID_A, 1);
    presence_join(&p, 1, ID_B, 2);
    const char *moved = "{\"x\":120,\"y\":48.5,\"sender\":\"" ID_A "\",\"color\":1}";
    assert_int_equal(update_str(&p, 0, moved), 0);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 1, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":2,\"room\":\"\",\"peers\":["
               "{\"x\":120,\"y\":48.5,\"sender\":\"" ID_A "\",\"color\":1}]}");
    buf_free(&out);
    presence_free(&p);
}

/* Several peers, in slot order, with gaps, the newcomer in the middle, some silent. */
static void welcome_lists_every_other_peer_in_slot_order(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 8, 0, 0), 0);
    presence_join(&p, 6, ID_D, 40);
    presence_join(&p, 1, ID_A, 10);
    presence_join(&p, 3, ID_B, 20);
    presence_join(&p, 4, ID_C, 30);
    assert_int_equal(update_str(&p, 6, "{\"x\":6}"), 0);
    assert_int_equal(update_str(&p, 1, "{\"x\":1}"), 0);
    assert_int_equal(presence_count(&p), 4);

    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 3, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":20,\"room\":\"\",\"peers\":["
               "{\"x\":1},"
               "{\"sender\":\"" ID_C "\",\"color\":30},"
               "{\"x\":6}]}");

    /* after C leaves, nobody sees it; after A rejoins slot 1 it has said nothing yet */
    presence_leave(&p, 4);
    presence_leave(&p, 1);
    presence_join(&p, 1, ID_A, 11);
    buf_reset(&out);
    assert_int_equal(welcome(&p, 3, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":20,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_A "\",\"color\":11},"
               "{\"x\":6}]}");
    buf_free(&out);
    presence_free(&p);
}

static void update_keeps_only_the_latest_message(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 0, 0), 0);
    presence_join(&p, 0, ID_A, 1);
    presence_join(&p, 1, ID_B, 2);
    assert_int_equal(update_str(&p, 0, "{\"x\":1}"), 0);
    assert_int_equal(update_str(&p, 0, "{\"x\":22}"), 0);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 1, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":2,\"room\":\"\",\"peers\":["
               "{\"x\":22}]}");
    buf_free(&out);
    presence_free(&p);
}

/* Up to PRESENCE_STATE_MAX bytes are kept; one byte more empties the kept message, so the
 * welcome falls back to id and color rather than show an older position. */
static void update_over_the_bound_empties_the_kept_message(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 0, 0), 0);
    presence_join(&p, 0, ID_A, 5);
    presence_join(&p, 1, ID_B, 6);

    uint8_t big[PRESENCE_STATE_MAX + 1];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[PRESENCE_STATE_MAX - 1] = '}';
    assert_int_equal(presence_update(&p, 0, big, PRESENCE_STATE_MAX), 0);
    assert_int_equal(buf_size(&p.peers[0].last), PRESENCE_STATE_MAX);

    assert_int_equal(presence_update(&p, 0, big, PRESENCE_STATE_MAX + 1), -EMSGSIZE); /* not kept */
    assert_int_equal(buf_size(&p.peers[0].last), 0);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 1, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":6,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_A "\",\"color\":5}]}");
    buf_free(&out);
    presence_free(&p);
}

/* With last_max above PRESENCE_STATE_MAX (the server passes its largest relayed message), a
 * big message is kept, for a reader that fell behind, but a welcome still lists only the
 * sender's id and color; back to a small message, the big storage is given back. */
static void big_last_is_kept_for_conflation_but_not_in_the_welcome(void **state)
{
    (void)state;
    enum { BIG = 16 * 1024 };
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 0, BIG), 0);
    presence_join(&p, 0, ID_A, 5);
    presence_join(&p, 1, ID_B, 6);
    static uint8_t big[BIG + 1];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[BIG - 1] = '}';
    assert_int_equal(presence_update(&p, 0, big, BIG), 0);
    assert_int_equal(buf_size(&p.peers[0].last), BIG);
    assert_false(presence_has_snapshot(&p.peers[0]));

    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 1, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":6,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_A "\",\"color\":5}]}");
    assert_int_equal(presence_update(&p, 0, big, BIG + 1), -EMSGSIZE); /* emptied */
    assert_int_equal(buf_size(&p.peers[0].last), 0);
    assert_int_equal(presence_update(&p, 0, big, BIG), 0);
    assert_int_equal(update_str(&p, 0, "{\"x\":1}"), 0);
    assert_true(presence_has_snapshot(&p.peers[0]));
    assert_true(p.peers[0].last.cap <= PRESENCE_STATE_MAX); /* the 16 KiB went back */
    buf_free(&out);
    presence_free(&p);
}

/* Remote clients' big last messages share one budget, local_slots * last_max: a publisher
 * inventing remote clients with big messages cannot make a node hold more than its own
 * clients could. Small ones never count; leaving and shrinking give bytes back. */
static void remote_big_lasts_share_one_budget(void **state)
{
    (void)state;
    enum { BIG = 1024 };
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 8, BIG), 0);
    assert_int_equal(p.remote_big_budget, 2 * BIG);
    static uint8_t big[BIG];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[BIG - 1] = '}';
    static const char *const ids[] = {ID_A, ID_B, ID_C};
    long r[3];
    for (int i = 0; i < 3; i++)
        r[i] = presence_remote_add(&p, ids[i], 1, 1);
    assert_int_equal(presence_update(&p, (size_t)r[0], big, BIG), 0);
    assert_int_equal(presence_update(&p, (size_t)r[1], big, BIG), 0);
    assert_int_equal(p.remote_big_used, 2 * BIG);
    assert_int_equal(presence_update(&p, (size_t)r[2], big, BIG), -ENOBUFS); /* over budget */
    assert_int_equal(buf_size(&p.peers[r[2]].last), 0);
    assert_int_equal(update_str(&p, (size_t)r[2], "{\"x\":1}"), 0);   /* small: always kept */
    assert_int_equal(presence_update(&p, (size_t)r[0], big, BIG), 0); /* replacing itself */
    assert_int_equal(update_str(&p, (size_t)r[1], "{\"x\":2}"), 0);   /* gives BIG back */
    assert_int_equal(p.remote_big_used, BIG);
    assert_int_equal(presence_update(&p, (size_t)r[2], big, BIG), 0);
    presence_remote_remove(&p, (size_t)r[0]); /* leaving gives it back too */
    assert_int_equal(p.remote_big_used, BIG);
    /* Local slots never count against it. */
    presence_join(&p, 0, ID_A, 1);
    presence_join(&p, 1, ID_B, 1);
    assert_int_equal(presence_update(&p, 0, big, BIG), 0);
    assert_int_equal(presence_update(&p, 1, big, BIG), 0);
    assert_int_equal(p.remote_big_used, BIG);
    presence_free(&p);
}

static void leave_releases_the_slot_memory(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 1, 0, 0), 0);
    presence_join(&p, 0, ID_A, 1);
    assert_int_equal(update_str(&p, 0, "{\"x\":1}"), 0);
    assert_non_null(p.peers[0].last.data);
    presence_leave(&p, 0);
    assert_null(p.peers[0].last.data);
    assert_int_equal(p.peers[0].last.limit, PRESENCE_STATE_MAX); /* ready for the next join */
    presence_join(&p, 0, ID_B, 2);
    assert_int_equal(buf_size(&p.peers[0].last), 0);
    assert_string_equal(p.peers[0].id, ID_B);
    presence_free(&p);
}

/* The id is copied with a bound: a longer string is cut, never overruns the array. */
static void join_copies_the_id_with_a_bound(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 1, 0, 0), 0);
    presence_join(&p, 0, ID_A "-and-much-more-than-a-uuid", 1);
    assert_int_equal(strlen(p.peers[0].id), PRESENCE_ID_SIZE - 1);
    assert_string_equal(p.peers[0].id, ID_A);
    presence_join(&p, 0, "short", 1);
    assert_string_equal(p.peers[0].id, "short");
    presence_free(&p);
}

static void zero_slots_is_an_empty_room(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 0, 0, 0), 0);
    assert_int_equal(presence_count(&p), 0);
    presence_free(&p);
}

/* Each writer appends its message whole or not at all: with out one byte short, the bytes
 * already there survive untouched; with exactly enough room, it fits. */
static void writes_are_all_or_nothing(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 0, 0), 0);
    presence_join(&p, 0, ID_A, 100);
    presence_join(&p, 1, ID_B, 200);
    presence_join(&p, 2, ID_C, 300);
    assert_int_equal(update_str(&p, 0, "{\"x\":0}"), 0);

    int (*const writers[])(const struct presence *, size_t,
                           struct buf *) = {welcome, presence_write_join, presence_write_leave};
    for (size_t w = 0; w < sizeof writers / sizeof writers[0]; w++) {
        /* measure with room to spare */
        struct buf out;
        buf_init(&out, 1 << 12);
        assert_int_equal(writers[w](&p, 1, &out), 0);
        size_t need = buf_size(&out);
        buf_free(&out);

        buf_init(&out, 2 + need - 1);
        assert_int_equal(buf_append(&out, "ab", 2), 0);
        assert_int_equal(writers[w](&p, 1, &out), -ENOBUFS);
        assert_out(&out, "ab");
        buf_free(&out);

        buf_init(&out, 2 + need);
        assert_int_equal(buf_append(&out, "ab", 2), 0);
        assert_int_equal(writers[w](&p, 1, &out), 0);
        assert_int_equal(buf_size(&out), 2 + need);
        buf_free(&out);
    }
    presence_free(&p);
}

/* Appending goes after bytes already queued, as the server queues several frames. */
static void appends_after_existing_output(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 2, 0, 0), 0);
    presence_join(&p, 0, ID_A, 1);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(presence_write_join(&p, 0, &out), 0);
    assert_int_equal(presence_write_leave(&p, 0, &out), 0);
    assert_out(&out, "{\"type\":\"join\",\"sender\":\"" ID_A "\",\"color\":1}"
                     "{\"type\":\"leave\",\"sender\":\"" ID_A "\"}");
    buf_free(&out);
    presence_free(&p);
}

/* A welcome past its budget leaves out the peers that do not fit, and stays valid JSON. */
static void welcome_is_cut_to_its_budget(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 0, 0), 0);
    presence_join(&p, 0, ID_A, 100);
    presence_join(&p, 1, ID_B, 200);
    presence_join(&p, 2, ID_C, 300);
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(welcome(&p, 0, &out), 0);
    size_t whole = buf_size(&out);
    buf_reset(&out);

    p.welcome_max = whole - 1; /* one byte short: the last peer cannot be listed */
    assert_int_equal(welcome(&p, 0, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_A "\",\"color\":100,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_B "\",\"color\":200}],\"count\":3}");
    assert_true(buf_size(&out) <= p.welcome_max);
    buf_reset(&out);

    p.welcome_max = 0; /* nothing fits: the welcome still names the newcomer */
    assert_int_equal(welcome(&p, 0, &out), 0);
    assert_out(&out, "{\"type\":\"welcome\",\"id\":\"" ID_A
                     "\",\"color\":100,\"room\":\"\",\"peers\":[],\"count\":3}");
    buf_free(&out);
    presence_free(&p);
}

/* A summarised welcome (a room above --roster-max): the announced members from the newest
 * along the activity list, at most max_peers, then the room's count. And the count message. */
static void welcome_of_a_big_room_lists_the_most_recent_with_the_count(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 4, 0, 0), 0);
    presence_join(&p, 0, ID_A, 100);
    presence_join(&p, 1, ID_B, 200);
    presence_join(&p, 2, ID_C, 300);
    presence_join(&p, 3, ID_D, 400);
    /* Activity list, oldest first: C, A, B (D never announced; room.c links them). */
    p.peers[2].act_next = 0;
    p.peers[0].act_prev = 2;
    p.peers[0].act_next = 1;
    p.peers[1].act_prev = 0;
    const char *b_last = "{\"x\":1,\"sender\":\"" ID_B "\",\"color\":200}";
    assert_int_equal(presence_update(&p, 1, (const uint8_t *)b_last, strlen(b_last)), 0);
    struct presence_roster roster = {
        .room = "big", .room_len = 3, .recent = 1, .max_peers = 2, .total = 4};
    struct buf out;
    buf_init(&out, 1 << 12);
    assert_int_equal(presence_write_welcome(&p, 3, &roster, &out), 0);
    assert_out(&out, "{\"type\":\"welcome\",\"id\":\"" ID_D "\",\"color\":400,\"room\":\"big\","
                     "\"peers\":[{\"x\":1,\"sender\":\"" ID_B "\",\"color\":200},"
                     "{\"sender\":\"" ID_A "\",\"color\":100}],\"count\":4}");
    /* The newcomer itself is skipped, and does not use up a place. */
    buf_reset(&out);
    assert_int_equal(presence_write_welcome(&p, 1, &roster, &out), 0);
    assert_out(&out, "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":200,\"room\":\"big\","
                     "\"peers\":[{\"sender\":\"" ID_A "\",\"color\":100},"
                     "{\"sender\":\"" ID_C "\",\"color\":300}],\"count\":4}");
    buf_reset(&out);
    assert_int_equal(presence_write_count(12345, &out), 0);
    assert_out(&out, "{\"type\":\"count\",\"count\":12345}");
    buf_free(&out);
    presence_free(&p);
}

/* Remote clients (issue 5): found by id, removable in any order without losing the others
 * (the hash table's backward-shift deletion), places reused, and listed in welcomes. */
static void remote_clients_by_id(void **state)
{
    (void)state;
    enum { LOCAL = 2, REMOTE = 40 };
    struct presence p;
    assert_int_equal(presence_init(&p, LOCAL, REMOTE, 0), 0);
    char ids[REMOTE][PRESENCE_ID_SIZE];
    long idx[REMOTE];
    for (int i = 0; i < REMOTE; i++) {
        snprintf(ids[i], sizeof ids[i], "00000000-0000-4000-8000-%012d", i);
        idx[i] = presence_remote_add(&p, ids[i], (unsigned)i, 3);
        assert_true(idx[i] >= LOCAL && idx[i] < LOCAL + REMOTE);
        assert_int_equal(p.peers[idx[i]].node, 3);
    }
    assert_int_equal(presence_remote_add(&p, "00000000-0000-4000-8000-999999999999", 1, 1), -1);
    assert_int_equal(presence_remote_add(&p, ids[7], 300, 4), idx[7]); /* an update */
    assert_int_equal(p.peers[idx[7]].color, 300);

    for (int i = 0; i < REMOTE; i += 3) /* remove a third, scattered through the table */
        presence_remote_remove(&p, (size_t)idx[i]);
    for (int i = 0; i < REMOTE; i++)
        assert_int_equal(presence_remote_find(&p, ids[i]), i % 3 == 0 ? -1 : idx[i]);
    assert_int_equal(presence_count(&p), REMOTE - (REMOTE + 2) / 3);

    long again = presence_remote_add(&p, ids[0], 5, 1); /* a freed place is reused */
    assert_true(again >= LOCAL);
    assert_int_equal(presence_remote_find(&p, ids[0]), again);

    /* Local and remote ids are told apart: a remote id is not local, and the other way. */
    assert_false(presence_is_local(&p, ID_A));
    presence_join(&p, 0, ID_A, 100); /* a local client sees remote ones in its welcome */
    assert_true(presence_is_local(&p, ID_A));
    assert_false(presence_is_local(&p, ids[1]));
    assert_int_equal(presence_remote_find(&p, ID_A), -1);
    struct buf out;
    buf_init(&out, 1 << 16);
    assert_int_equal(welcome(&p, 0, &out), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_non_null(strstr((char *)buf_head(&out), ids[1]));
    assert_null(strstr((char *)buf_head(&out), ids[3]));
    buf_free(&out);
    presence_free(&p);
}

/* A room token's name (presence_set_name) rides after the color in the welcome, the join
 * and a silent peer's entry; the leave and the unnamed are unchanged. A new join forgets it. */
static void a_named_slot_carries_its_name(void **state)
{
    (void)state;
    struct presence p;
    assert_int_equal(presence_init(&p, 3, 0, 0), 0);
    presence_join(&p, 0, ID_A, 7);
    assert_int_equal(presence_set_name(&p, 0, "\"Ann \\\"A\\\"\""), 0);
    presence_join(&p, 1, ID_B, 9);
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(presence_write_join(&p, 0, &out), 0);
    assert_out(&out, "{\"type\":\"join\",\"sender\":\"" ID_A
                     "\",\"color\":7,\"name\":\"Ann \\\"A\\\"\"}");
    buf_reset(&out);
    assert_int_equal(presence_write_join(&p, 1, &out), 0);
    assert_out(&out, "{\"type\":\"join\",\"sender\":\"" ID_B "\",\"color\":9}");
    buf_reset(&out);
    assert_int_equal(welcome(&p, 0, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_A "\",\"color\":7,\"name\":\"Ann \\\"A\\\"\","
               "\"room\":\"\",\"peers\":[{\"sender\":\"" ID_B "\",\"color\":9}]}");
    buf_reset(&out);
    assert_int_equal(welcome(&p, 1, &out), 0);
    assert_out(&out,
               "{\"type\":\"welcome\",\"id\":\"" ID_B "\",\"color\":9,\"room\":\"\",\"peers\":["
               "{\"sender\":\"" ID_A "\",\"color\":7,\"name\":\"Ann \\\"A\\\"\"}]}");
    buf_reset(&out);
    assert_int_equal(presence_write_leave(&p, 0, &out), 0);
    assert_out(&out, "{\"type\":\"leave\",\"sender\":\"" ID_A "\"}");
    presence_join(&p, 0, ID_C, 1); /* the slot's next client is nobody in particular */
    assert_null(p.peers[0].name);
    assert_int_equal(presence_set_name(&p, 1, "\"B\""), 0);
    presence_leave(&p, 1);
    assert_null(p.peers[1].name);
    presence_join(&p, 2, ID_D, 2);
    assert_int_equal(presence_set_name(&p, 2, "\"D\""), 0); /* freed by presence_free */
    buf_free(&out);
    presence_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(join_and_leave_messages),
        cmocka_unit_test(a_named_slot_carries_its_name),
        cmocka_unit_test(welcome_alone_lists_no_peers),
        cmocka_unit_test(welcome_with_one_silent_peer),
        cmocka_unit_test(welcome_with_one_peer_that_moved),
        cmocka_unit_test(welcome_lists_every_other_peer_in_slot_order),
        cmocka_unit_test(update_keeps_only_the_latest_message),
        cmocka_unit_test(update_over_the_bound_empties_the_kept_message),
        cmocka_unit_test(big_last_is_kept_for_conflation_but_not_in_the_welcome),
        cmocka_unit_test(remote_big_lasts_share_one_budget),
        cmocka_unit_test(leave_releases_the_slot_memory),
        cmocka_unit_test(join_copies_the_id_with_a_bound),
        cmocka_unit_test(zero_slots_is_an_empty_room),
        cmocka_unit_test(writes_are_all_or_nothing),
        cmocka_unit_test(welcome_is_cut_to_its_budget),
        cmocka_unit_test(welcome_of_a_big_room_lists_the_most_recent_with_the_count),
        cmocka_unit_test(remote_clients_by_id),
        cmocka_unit_test(appends_after_existing_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
