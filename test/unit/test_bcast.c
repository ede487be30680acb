/* Unit tests for bcast.c (and the conn table lists it relies on): one frame, many buffers,
 * the --max-buffer rule, the writers queue, cursor messages that go only where they fit,
 * and wsrelay.batch members' arrays. No sockets: connections are opened with fd -1.
 * The recipients are a member list, as room.c keeps one per room: here one list, `room`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bcast.h"
#include "conn.h"

enum { SLOTS = 4, WBUF_LIMIT = 64 };

static const struct net_addr no_peer;
/* these connections have no socket */
static const struct transport no_socket = {.ops = &transport_tcp, .fd = -1};

static uint32_t room[SLOTS]; /* the members, as room.c would list them */
static size_t nroom;

static struct conn *open_ws(struct conn_table *t, bool in_room)
{
    struct conn *c = conn_open(t, &no_socket, &no_peer, 1, 0);
    assert_non_null(c);
    c->phase = CONN_WS;
    c->route = CONN_ROUTE_ROOM;
    if (in_room)
        room[nroom++] = c->slot;
    return c;
}

/* A server message to the room's members. */
static size_t bcast_room(struct conn_table *t, const void *p, size_t len, const struct conn *except)
{
    return bcast_list(t, room, nroom, p, len, except);
}

/* Every test starts with an empty room. */
static int empty_room(void **state)
{
    (void)state;
    nroom = 0;
    return 0;
}

static void room_gets_one_frame_each_except_the_excluded(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, WBUF_LIMIT, 1024), 0);
    struct conn *a = open_ws(&t, true), *b = open_ws(&t, true), *c = open_ws(&t, true);
    struct conn *outsider = open_ws(&t, false); /* an /echo client, say: not in the room */

    assert_int_equal(bcast_room(&t, "hi", 2, b), 2);
    const uint8_t frame[] = {0x81, 0x02, 'h', 'i'}; /* FIN+text, unmasked, length 2 */
    assert_int_equal(buf_size(&a->wbuf), sizeof frame);
    assert_memory_equal(buf_head(&a->wbuf), frame, sizeof frame);
    assert_memory_equal(buf_head(&c->wbuf), frame, sizeof frame);
    assert_int_equal(buf_size(&b->wbuf), 0);
    assert_int_equal(buf_size(&outsider->wbuf), 0);

    /* Each recipient is queued for writing exactly once, however many frames it gets. */
    assert_int_equal(bcast_room(&t, "yo", 2, NULL), 3);
    assert_int_equal(t.nwriters, 3);
    assert_true(a->is_queued && b->is_queued && c->is_queued && !outsider->is_queued);
    conn_table_free(&t);
}

static void slow_reader_is_marked_and_others_still_receive(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, WBUF_LIMIT, 1024), 0);
    struct conn *fast = open_ws(&t, true), *slow = open_ws(&t, true);
    uint8_t payload[40];
    memset(payload, 'x', sizeof payload);

    assert_int_equal(bcast_room(&t, payload, sizeof payload, NULL), 2);
    buf_consume(&fast->wbuf, buf_size(&fast->wbuf)); /* fast one wrote its bytes out */
    /* 42 + 42 > 64: the slow one cannot take a second frame, not even part of it. */
    assert_int_equal(bcast_room(&t, payload, sizeof payload, NULL), 1);
    assert_int_equal(slow->phase, CONN_CLOSING);
    assert_string_equal(slow->close_reason, "output over --max-buffer");
    assert_int_equal(buf_size(&slow->wbuf), 42); /* the first frame, whole; no half frame */
    assert_int_equal(t.nclosing, 1);
    assert_int_equal(buf_size(&fast->wbuf), 42);

    /* A marked member gets nothing more and is not marked twice. */
    assert_int_equal(bcast_room(&t, "z", 1, NULL), 1);
    assert_int_equal(t.nclosing, 1);
    conn_table_free(&t);
}

static void one_connection_frames_and_limit(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, WBUF_LIMIT, 1024), 0);
    struct conn *c = open_ws(&t, false);
    assert_true(bcast_one(&t, c, FRAME_OP_PONG, "", 0));
    const uint8_t pong[] = {0x8a, 0x00};
    assert_memory_equal(buf_head(&c->wbuf), pong, sizeof pong);
    uint8_t big[WBUF_LIMIT];
    memset(big, 0, sizeof big);
    assert_false(bcast_one(&t, c, FRAME_OP_BINARY, big, sizeof big));
    assert_int_equal(c->phase, CONN_CLOSING);
    conn_table_free(&t);
}

static void full_table_refuses_and_release_recycles(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, 2, 1024, WBUF_LIMIT, 1024), 0);
    struct conn *a = conn_open(&t, &no_socket, &no_peer, 1, 0);
    struct conn *b = conn_open(&t, &no_socket, &no_peer, 2, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(conn_open(&t, &no_socket, &no_peer, 3, 0));
    assert_int_equal(t.nopen, 2);
    conn_release(&t, a);
    assert_int_equal(t.nopen, 1);
    struct conn *c = conn_open(&t, &no_socket, &no_peer, 3, 0);
    assert_ptr_equal(c, a); /* the freed slot is reused */
    assert_int_equal(c->serial, 3);
    conn_table_free(&t);
}

/* A cursor message goes only where it fits: below the burst mark before it and under the
 * limit with it. Where it does not, nothing changes and nobody is marked: the room keeps it
 * owed. */
static void a_cursor_message_is_added_only_where_it_fits(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    assert_int_equal(t.burst_mark, 512);
    struct conn *c = open_ws(&t, false);
    uint8_t filler[511];
    memset(filler, 0, sizeof filler);
    assert_int_equal(buf_append(&c->wbuf, filler, sizeof filler), 0);
    assert_true(bcast_try(&t, c, "{}", 2)); /* 511 < 512: one more */
    assert_int_equal(buf_size(&c->wbuf), sizeof filler + 4);
    assert_false(bcast_try(&t, c, "{}", 2)); /* at the mark: no more */
    assert_int_equal(buf_size(&c->wbuf), sizeof filler + 4);
    buf_reset(&c->wbuf);
    uint8_t big[1100];
    memset(big, 'b', sizeof big);
    assert_false(bcast_try(&t, c, big, sizeof big)); /* over the limit: owed, never dropped */
    assert_int_not_equal(c->phase, CONN_CLOSING);
    assert_int_equal(t.nclosing, 0);
    conn_table_free(&t);
}

/* A room's run goes to a seed member as frames and to a batch member as elements of its
 * open batch; either only if it keeps the member under the burst mark. */
static void a_run_goes_in_each_members_wire_form(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    struct conn *seed = open_ws(&t, false), *bt = open_ws(&t, false);
    bt->ws.is_batch = true;
    const uint8_t frames[] = "\x81\x03{a}\x81\x03{b}";
    const char elems[] = "{a},{b}";
    assert_true(bcast_try_run(&t, seed, frames, sizeof frames - 1, elems, sizeof elems - 1));
    assert_true(bcast_one(&t, bt, FRAME_OP_TEXT, "{w}", 3));
    assert_true(bcast_try_run(&t, bt, frames, sizeof frames - 1, elems, sizeof elems - 1));
    assert_true(bcast_seal(&t, bt));
    assert_int_equal(buf_size(&seed->wbuf), sizeof frames - 1);
    assert_memory_equal(buf_head(&seed->wbuf), frames, sizeof frames - 1);
    const char want[] = "\x81\x0d[{w},{a},{b}]";
    assert_int_equal(buf_size(&bt->wbuf), sizeof want - 1);
    assert_memory_equal(buf_head(&bt->wbuf), want, sizeof want - 1);
    /* Past the burst mark: refused whole. */
    uint8_t filler[510];
    memset(filler, 0, sizeof filler);
    assert_int_equal(buf_append(&seed->wbuf, filler, sizeof filler), 0);
    size_t before = buf_size(&seed->wbuf);
    assert_false(bcast_try_run(&t, seed, frames, sizeof frames - 1, elems, sizeof elems - 1));
    assert_int_equal(buf_size(&seed->wbuf), before);
    conn_table_free(&t);
}

/* A batch member's server messages join its open batch; any other frame (a pong, a close)
 * seals the batch first, so the wire keeps the order of the calls. */
static void a_control_frame_seals_the_batch_before_it(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    struct conn *bt = open_ws(&t, true);
    bt->ws.is_batch = true;
    assert_int_equal(bcast_room(&t, "{j}", 3, NULL), 1);
    assert_true(bcast_one(&t, bt, FRAME_OP_PONG, "", 0));
    assert_true(bcast_one(&t, bt, FRAME_OP_TEXT, "{l}", 3));
    assert_true(bcast_seal(&t, bt));
    const char want[] = "\x81\x05[{j}]\x8a\x00\x81\x05[{l}]";
    assert_int_equal(buf_size(&bt->wbuf), sizeof want - 1);
    assert_memory_equal(buf_head(&bt->wbuf), want, sizeof want - 1);
    conn_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(room_gets_one_frame_each_except_the_excluded, empty_room),
        cmocka_unit_test_setup(slow_reader_is_marked_and_others_still_receive, empty_room),
        cmocka_unit_test_setup(one_connection_frames_and_limit, empty_room),
        cmocka_unit_test_setup(full_table_refuses_and_release_recycles, empty_room),
        cmocka_unit_test_setup(a_cursor_message_is_added_only_where_it_fits, empty_room),
        cmocka_unit_test_setup(a_run_goes_in_each_members_wire_form, empty_room),
        cmocka_unit_test_setup(a_control_frame_seals_the_batch_before_it, empty_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
