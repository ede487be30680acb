/* Unit tests for bcast.c (and the conn table lists it relies on): one frame, many buffers,
 * the --max-buffer rule, the writers queue. No sockets: connections are opened with fd -1.
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

static const struct net_addr no_peer; /* these connections have no socket */

static uint32_t room[SLOTS]; /* the members, as room.c would list them */
static size_t nroom;

static struct conn *open_ws(struct conn_table *t, bool in_room)
{
    struct conn *c = conn_open(t, -1, &no_peer, 1, 0);
    assert_non_null(c);
    c->phase = CONN_WS;
    c->route = CONN_ROUTE_ROOM;
    if (in_room)
        room[nroom++] = c->slot;
    return c;
}

/* The broadcast to the room's members. */
static struct bcast_result bcast_room(struct conn_table *t, enum frame_op op, const void *p,
                                      size_t len, const struct conn *except, uint32_t sender)
{
    return bcast_list(t, room, nroom, op, p, len, except, sender);
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

    assert_int_equal(bcast_room(&t, FRAME_OP_TEXT, "hi", 2, b, BCAST_NO_CONFLATION).sent, 2);
    const uint8_t frame[] = {0x81, 0x02, 'h', 'i'}; /* FIN+text, unmasked, length 2 */
    assert_int_equal(buf_size(&a->wbuf), sizeof frame);
    assert_memory_equal(buf_head(&a->wbuf), frame, sizeof frame);
    assert_memory_equal(buf_head(&c->wbuf), frame, sizeof frame);
    assert_int_equal(buf_size(&b->wbuf), 0);
    assert_int_equal(buf_size(&outsider->wbuf), 0);

    /* Each recipient is queued for writing exactly once, however many frames it gets. */
    assert_int_equal(bcast_room(&t, FRAME_OP_TEXT, "yo", 2, NULL, BCAST_NO_CONFLATION).sent, 3);
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

    assert_int_equal(
        bcast_room(&t, FRAME_OP_TEXT, payload, sizeof payload, NULL, BCAST_NO_CONFLATION).sent, 2);
    buf_consume(&fast->wbuf, buf_size(&fast->wbuf)); /* fast one wrote its bytes out */
    /* 42 + 42 > 64: the slow one cannot take a second frame, not even part of it. */
    assert_int_equal(
        bcast_room(&t, FRAME_OP_TEXT, payload, sizeof payload, NULL, BCAST_NO_CONFLATION).sent, 1);
    assert_int_equal(slow->phase, CONN_CLOSING);
    assert_string_equal(slow->close_reason, "output over --max-buffer");
    assert_int_equal(buf_size(&slow->wbuf), 42); /* the first frame, whole; no half frame */
    assert_int_equal(t.nclosing, 1);
    assert_int_equal(buf_size(&fast->wbuf), 42);

    /* A marked member gets nothing more and is not marked twice. */
    assert_int_equal(bcast_room(&t, FRAME_OP_TEXT, "z", 1, NULL, BCAST_NO_CONFLATION).sent, 1);
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
    struct conn *a = conn_open(&t, -1, &no_peer, 1, 0);
    struct conn *b = conn_open(&t, -1, &no_peer, 2, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(conn_open(&t, -1, &no_peer, 3, 0));
    assert_int_equal(t.nopen, 2);
    conn_release(&t, a);
    assert_int_equal(t.nopen, 1);
    struct conn *c = conn_open(&t, -1, &no_peer, 3, 0);
    assert_ptr_equal(c, a); /* the freed slot is reused */
    assert_int_equal(c->serial, 3);
    conn_table_free(&t);
}

/* A recipient that is behind is owed the sender's state instead of being queued
 * the update; a second update from the same sender adds nothing; server messages are still
 * queued; paying the debt yields each owed sender once, then frees the set. */
static void behind_recipient_is_owed_not_queued(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    assert_int_equal(t.conflate_mark, 1024 / 16);
    struct conn *fast = open_ws(&t, true), *slow = open_ws(&t, true);
    uint8_t filler[70];
    memset(filler, 'f', sizeof filler);
    assert_int_equal(buf_append(&slow->wbuf, filler, sizeof filler), 0);
    /* A big batch alone does not make a reader slow: fast is not behind with 70 bytes. */
    assert_int_equal(buf_append(&fast->wbuf, filler, sizeof filler), 0);
    buf_consume(&fast->wbuf, sizeof filler);
    slow->is_behind = true; /* what flush_conn() sets when the kernel would not take it all */

    struct bcast_result r = bcast_room(&t, FRAME_OP_TEXT, "a1", 2, NULL, fast->slot);
    assert_int_equal(r.sent, 1);
    assert_int_equal(r.conflated, 1);
    r = bcast_room(&t, FRAME_OP_TEXT, "a2", 2, NULL, fast->slot); /* replaces a1 */
    assert_int_equal(r.conflated, 1);
    assert_int_equal(buf_size(&slow->wbuf), sizeof filler); /* nothing queued behind */
    assert_true(conn_owes_any(slow));

    /* A server message (a leave, say) is never conflated. */
    r = bcast_room(&t, FRAME_OP_TEXT, "bye", 3, NULL, BCAST_NO_CONFLATION);
    assert_int_equal(r.sent, 2);
    assert_int_equal(buf_size(&slow->wbuf), sizeof filler + 5);

    assert_int_equal(conn_take_owed(&t, slow), fast->slot); /* once, however often updated */
    assert_int_equal(conn_take_owed(&t, slow), -1);
    assert_false(conn_owes_any(slow));                              /* paid: the set is freed */
    assert_int_equal(buf_size(&fast->wbuf), 2 + 2 + 2 + 2 + 2 + 3); /* fast got everything */
    conn_table_free(&t);
}

/* A burst within one loop pass: a recipient that no write has judged yet, but whose pending
 * output already reached half of --max-buffer (burst_mark), is owed further updates instead
 * of being queued them, so a burst of big messages from many senders cannot carry a reader
 * that keeps up past --max-buffer before the next flush. Below it (past conflate_mark, even)
 * a reader no write has found slow is queued everything: a fast reader misses nothing. */
static void recipient_at_the_burst_mark_is_owed_before_any_write(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    assert_int_equal(t.burst_mark, 512);
    struct conn *a = open_ws(&t, true), *b = open_ws(&t, true);
    uint8_t filler[450], msg[60];
    memset(filler, 'f', sizeof filler);
    memset(msg, 'm', sizeof msg);
    assert_int_equal(buf_append(&b->wbuf, filler, sizeof filler), 0); /* past conflate_mark */
    struct bcast_result r = bcast_room(&t, FRAME_OP_TEXT, msg, sizeof msg, a, a->slot);
    assert_int_equal(r.sent, 1); /* 450 < 512: queued, now 512 */
    assert_int_equal(r.conflated, 0);
    r = bcast_room(&t, FRAME_OP_TEXT, msg, sizeof msg, a, a->slot);
    assert_int_equal(r.sent, 0);
    assert_int_equal(r.conflated, 1);
    assert_int_equal(buf_size(&b->wbuf), sizeof filler + 2 + sizeof msg);
    assert_int_equal(conn_take_owed(&t, b), a->slot);
    /* A server message still goes in. */
    assert_int_equal(bcast_room(&t, FRAME_OP_TEXT, "j", 1, a, BCAST_NO_CONFLATION).sent, 1);
    conn_table_free(&t);
}

/* A conflatable message that would not fit is owed, never the reason a reader is dropped;
 * the same bytes as a server message do drop it (--max-buffer). */
static void a_conflatable_message_without_room_is_owed_not_dropped(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    struct conn *a = open_ws(&t, true), *b = open_ws(&t, true);
    uint8_t filler[400], big[700];
    memset(filler, 'f', sizeof filler);
    memset(big, 'b', sizeof big);
    assert_int_equal(buf_append(&b->wbuf, filler, sizeof filler), 0); /* under burst_mark */
    struct bcast_result r = bcast_room(&t, FRAME_OP_TEXT, big, sizeof big, a, a->slot);
    assert_int_equal(r.sent, 0);
    assert_int_equal(r.conflated, 1); /* 400 + 4 + 700 > 1024 */
    assert_int_not_equal(b->phase, CONN_CLOSING);
    r = bcast_room(&t, FRAME_OP_TEXT, big, sizeof big, a, BCAST_NO_CONFLATION);
    assert_int_equal(r.sent, 0);
    assert_int_equal(b->phase, CONN_CLOSING);
    conn_table_free(&t);
}

/* A message presence could not keep (BCAST_UNKEPT): nothing can be owed, so a reader that is
 * behind, or has no room, skips it; one at the burst mark still gets it; none is dropped. */
static void an_unkept_message_is_skipped_by_readers_behind_and_queued_for_the_rest(void **state)
{
    (void)state;
    struct conn_table t;
    assert_int_equal(conn_table_init(&t, SLOTS, 1024, 1024, 1024), 0);
    struct conn *a = open_ws(&t, true), *behind = open_ws(&t, true), *busy = open_ws(&t, true);
    uint8_t filler[600], msg[100];
    memset(filler, 'f', sizeof filler);
    memset(msg, 'm', sizeof msg);
    behind->is_behind = true;
    assert_int_equal(buf_append(&busy->wbuf, filler, sizeof filler), 0); /* past burst_mark */
    struct bcast_result r =
        bcast_room(&t, FRAME_OP_TEXT, msg, sizeof msg, a, a->slot | BCAST_UNKEPT);
    assert_int_equal(r.sent, 1);      /* busy: room enough */
    assert_int_equal(r.conflated, 1); /* behind: skipped */
    assert_false(conn_owes_any(behind));
    assert_int_equal(buf_size(&busy->wbuf), sizeof filler + 2 + sizeof msg);
    assert_int_equal(buf_size(&behind->wbuf), 0);
    uint8_t big[400];
    memset(big, 'b', sizeof big);
    r = bcast_room(&t, FRAME_OP_TEXT, big, sizeof big, a, a->slot | BCAST_UNKEPT);
    assert_int_equal(r.sent, 0); /* busy has no room for 404 more: skipped, not dropped */
    assert_int_not_equal(busy->phase, CONN_CLOSING);
    conn_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(room_gets_one_frame_each_except_the_excluded, empty_room),
        cmocka_unit_test_setup(slow_reader_is_marked_and_others_still_receive, empty_room),
        cmocka_unit_test_setup(one_connection_frames_and_limit, empty_room),
        cmocka_unit_test_setup(full_table_refuses_and_release_recycles, empty_room),
        cmocka_unit_test_setup(behind_recipient_is_owed_not_queued, empty_room),
        cmocka_unit_test_setup(recipient_at_the_burst_mark_is_owed_before_any_write, empty_room),
        cmocka_unit_test_setup(a_conflatable_message_without_room_is_owed_not_dropped, empty_room),
        cmocka_unit_test_setup(
            an_unkept_message_is_skipped_by_readers_behind_and_queued_for_the_rest, empty_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
