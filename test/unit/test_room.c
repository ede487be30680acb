/* Unit tests for room.c: the room table (opened by a first member, freed at once by the
 * last), --max-rooms and --max-room-clients, isolation (a member never gets a byte caused by
 * another room), the welcome naming its room, remote members, and the listener contract the
 * cluster relies on. No sockets: connections are opened with fd -1, and what a member would
 * receive is read straight out of its wbuf (unmasked server frames, RFC 6455 §5.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bcast.h"
#include "room.h"

enum { SLOTS = 64, REMOTE = 16, BUFFER = 1 << 16 };

static const struct net_addr no_peer;
static const struct transport no_socket = {.ops = &transport_tcp, .fd = -1};

struct fixture {
    struct conn_table conns;
    struct presence presence;
    struct rooms rooms;
    char events[4096]; /* what the listener heard, one line per call */
    uint64_t now_ms;   /* the clock rooms_flush() is given */
};

static struct fixture fx;

static void heard(const char *what, const struct room *r, const struct presence_peer *who,
                  const void *json, size_t len)
{
    size_t used = strlen(fx.events);
    snprintf(fx.events + used, sizeof fx.events - used, "%s /%s %s %.*s\n", what, r->name,
             who != NULL ? who->id : "-", (int)len, json != NULL ? (const char *)json : "");
}
static void l_open(void *ctx, const struct room *r)
{
    (void)ctx;
    heard("open", r, NULL, NULL, 0);
}
static void l_free(void *ctx, const struct room *r)
{
    (void)ctx;
    heard("free", r, NULL, NULL, 0);
}
static void l_join(void *ctx, const struct room *r, const struct presence_peer *who,
                   const void *json, size_t len)
{
    (void)ctx;
    heard("join", r, who, json, len);
}
static void l_message(void *ctx, const struct room *r, const struct presence_peer *who,
                      const void *json, size_t len)
{
    (void)ctx;
    heard("msg", r, who, json, len);
}
static void l_leave(void *ctx, const struct room *r, const struct presence_peer *who,
                    const void *json, size_t len)
{
    (void)ctx;
    heard("leave", r, who, json, len);
}
static const struct room_listener listener = {l_open, l_free, l_join, l_message, l_leave};

static int setup_limits(size_t max_rooms, size_t max_room_clients)
{
    memset(&fx, 0, sizeof fx);
    assert_int_equal(conn_table_init(&fx.conns, SLOTS, 1024, BUFFER, 4096), 0);
    assert_int_equal(presence_init(&fx.presence, SLOTS, REMOTE, 4096 + 64), 0);
    assert_int_equal(rooms_init(&fx.rooms, max_rooms, max_room_clients, 4096, BUFFER, 42, &fx.conns,
                                &fx.presence),
                     0);
    fx.rooms.listener = &listener;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_limits(8, 8);
}

static int teardown(void **state)
{
    (void)state;
    rooms_free(&fx.rooms);
    presence_free(&fx.presence);
    conn_table_free(&fx.conns);
    return 0;
}

/* A UUID-shaped id for member n (ids are opaque to room.c; presence keeps 36 characters). */
static const char *id_of(unsigned n)
{
    static char ids[SLOTS + REMOTE][PRESENCE_ID_SIZE];
    char *id = ids[n % (SLOTS + REMOTE)];
    snprintf(id, PRESENCE_ID_SIZE, "00000000-0000-4000-8000-%012u", n);
    return id;
}

static struct conn *open_ws(void)
{
    struct conn *c = conn_open(&fx.conns, &no_socket, &no_peer, 1, 0);
    assert_non_null(c);
    c->phase = CONN_WS;
    c->route = CONN_ROUTE_ROOM;
    return c;
}

/* What conn_io's flush does before every wait: the writers list starts empty again. */
static void flushed(void)
{
    for (size_t i = 0; i < fx.conns.nwriters; i++)
        fx.conns.conns[fx.conns.writers[i]].is_queued = false;
    fx.conns.nwriters = 0;
}

static struct conn *enter(const char *room)
{
    struct conn *c = open_ws();
    assert_int_equal(room_enter(&fx.rooms, c, room, strlen(room), id_of(c->slot), c->slot, NULL),
                     0);
    return c;
}

/* What the server does before each wait: the rooms hand out what they owe (latest position
 * wins), then conn_io seals each batch client's open batch before its write. */
static void flush(void)
{
    rooms_flush(&fx.rooms, fx.now_ms);
    for (size_t i = 0; i < fx.conns.max; i++)
        if (fx.conns.conns[i].phase == CONN_WS)
            assert_true(bcast_seal(&fx.conns, &fx.conns.conns[i]));
}

/* The payloads of the text frames in c's output once flushed (short frames only: < 126
 * bytes, or 16-bit lengths), as one string with a newline after each; the output is then
 * emptied. */
static const char *received(struct conn *c)
{
    flush();
    static char text[BUFFER];
    size_t used = 0;
    const uint8_t *p = buf_head(&c->wbuf);
    size_t n = buf_size(&c->wbuf), pos = 0;
    text[0] = '\0';
    while (pos + 2 <= n) {
        size_t len = p[pos + 1] & 0x7f, hdr = 2;
        if (len == 126) {
            len = (size_t)p[pos + 2] << 8 | p[pos + 3];
            hdr = 4;
        }
        assert_true(pos + hdr + len <= n);
        assert_true(used + len + 2 < sizeof text);
        memcpy(text + used, p + pos + hdr, len);
        used += len;
        text[used++] = '\n';
        text[used] = '\0';
        pos += hdr + len;
    }
    assert_int_equal(pos, n); /* never half a frame */
    buf_consume(&c->wbuf, n);
    return text;
}

static void send_text(struct conn *c, const char *json)
{
    assert_int_equal(room_message(&fx.rooms, c, (const uint8_t *)json, strlen(json)), 0);
}

/* ---- The table ----------------------------------------------------------------------- */

static void first_member_opens_last_frees_at_once(void **state)
{
    (void)state;
    assert_null(rooms_find(&fx.rooms, "doc", 3));
    struct conn *a = enter("doc");
    struct room *r = rooms_find(&fx.rooms, "doc", 3);
    assert_non_null(r);
    assert_ptr_equal(rooms_of(&fx.rooms, a->slot), r);
    assert_int_equal(fx.rooms.nopen, 1);
    struct conn *b = enter("doc");
    assert_int_equal(r->nlocal, 2);
    assert_int_equal(fx.rooms.counters.created, 1);
    assert_int_equal(fx.rooms.counters.joins, 2);
    room_leave(&fx.rooms, a);
    assert_int_equal(fx.rooms.nopen, 1);
    room_leave(&fx.rooms, b);
    assert_int_equal(fx.rooms.nopen, 0);
    assert_null(rooms_find(&fx.rooms, "doc", 3));
    assert_int_equal(fx.rooms.counters.freed, 1);
    room_leave(&fx.rooms, b); /* twice: harmless */
    assert_int_equal(fx.rooms.counters.freed, 1);
    assert_false(fx.presence.peers[b->slot].is_present);
}

static void names_are_exact_and_the_default_room_is_its_own(void **state)
{
    (void)state;
    struct conn *lobby = enter(""), *upper = enter("A"), *lower = enter("a");
    assert_int_equal(fx.rooms.nopen, 3);
    assert_ptr_not_equal(rooms_of(&fx.rooms, upper->slot), rooms_of(&fx.rooms, lower->slot));
    assert_ptr_equal(rooms_find(&fx.rooms, "", 0), rooms_of(&fx.rooms, lobby->slot));
    assert_null(rooms_find(&fx.rooms, "aa", 2));
}

static void full_room_refuses_and_changes_nothing(void **state)
{
    (void)state;
    teardown(state);
    setup_limits(8, 2);
    struct conn *a = enter("r"), *b = enter("r");
    received(a);
    received(b);
    struct conn *c = open_ws();
    fx.events[0] = '\0';
    assert_int_equal(room_enter(&fx.rooms, c, "r", 1, id_of(c->slot), 1, NULL), ROOM_ERR_FULL);
    assert_false(fx.presence.peers[c->slot].is_present);
    assert_null(rooms_of(&fx.rooms, c->slot));
    assert_string_equal(received(a), ""); /* no join for a member that never entered */
    assert_string_equal(received(c), ""); /* and no welcome */
    assert_string_equal(fx.events, "");
    assert_int_equal(fx.rooms.counters.refused_full, 1);
    assert_int_equal(room_enter(&fx.rooms, c, "other", 5, id_of(c->slot), 1, NULL),
                     0); /* elsewhere */
    room_leave(&fx.rooms, a);
    struct conn *d = open_ws();
    assert_int_equal(room_enter(&fx.rooms, d, "r", 1, id_of(d->slot), 1, NULL), 0); /* a place */
}

static void too_many_rooms_refuses_until_one_frees(void **state)
{
    (void)state;
    teardown(state);
    setup_limits(2, 8);
    struct conn *a = enter("one");
    enter("two");
    struct conn *c = open_ws();
    assert_int_equal(room_enter(&fx.rooms, c, "three", 5, id_of(c->slot), 1, NULL),
                     ROOM_ERR_TOO_MANY);
    assert_int_equal(fx.rooms.counters.refused_too_many, 1);
    assert_int_equal(room_enter(&fx.rooms, c, "one", 3, id_of(c->slot), 1, NULL),
                     0); /* an open one */
    room_leave(&fx.rooms, c);
    room_leave(&fx.rooms, a); /* "one" frees */
    struct conn *d = open_ws();
    assert_int_equal(room_enter(&fx.rooms, d, "three", 5, id_of(d->slot), 1, NULL), 0);
    assert_int_equal(fx.rooms.nopen, 2);
}

/* Many rooms opened and freed in every order: the hash chains and the free list stay
 * consistent (every open room is found by its name, no freed one is). */
static void churn_keeps_the_table_consistent(void **state)
{
    (void)state;
    teardown(state);
    setup_limits(SLOTS, 4);
    struct conn *members[SLOTS];
    char names[SLOTS][8];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < SLOTS; i++) {
            snprintf(names[i], sizeof names[i], "r%d", (i * 7 + round) % SLOTS);
            members[i] = enter(names[i]);
        }
        assert_int_equal(fx.rooms.nopen, SLOTS);
        for (int i = 0; i < SLOTS; i++)
            assert_ptr_equal(rooms_find(&fx.rooms, names[i], strlen(names[i])),
                             rooms_of(&fx.rooms, members[i]->slot));
        for (int i = 0; i < SLOTS; i++) {
            int k = (i * 13 + round) % SLOTS; /* leave in another order */
            room_leave(&fx.rooms, members[k]);
            conn_release(&fx.conns, members[k]);
            assert_null(rooms_find(&fx.rooms, names[k], strlen(names[k])));
        }
        flushed();
        assert_int_equal(fx.rooms.nopen, 0);
    }
    assert_int_equal(fx.rooms.counters.created, fx.rooms.counters.freed);
}

/* ---- What members receive ------------------------------------------------------------ */

static void welcome_names_the_room_and_lists_only_its_members(void **state)
{
    (void)state;
    struct conn *a = enter("doc");
    enter("elsewhere");
    send_text(a, "{\"x\":1}");
    struct conn *b = open_ws();
    assert_int_equal(room_enter(&fx.rooms, b, "doc", 3, id_of(b->slot), 7, NULL), 0);
    char want[4096];
    snprintf(want, sizeof want,
             "{\"type\":\"welcome\",\"id\":\"%s\",\"color\":7,\"room\":\"doc\",\"peers\":["
             "{\"x\":1,\"sender\":\"%s\",\"color\":%u}]}\n",
             id_of(b->slot), id_of(a->slot), a->slot);
    assert_string_equal(received(b), want);
}

static void rooms_are_isolated_byte_for_byte(void **state)
{
    (void)state;
    struct conn *a1 = enter("A"), *a2 = enter("A");
    struct conn *b1 = enter("B");
    received(a1);
    received(a2);
    received(b1);
    send_text(a1, "{\"x\":0.5,\"y\":0.5}");
    struct conn *a3 = enter("A");
    room_leave(&fx.rooms, a2);
    flush();
    assert_int_equal(buf_size(&b1->wbuf), 0); /* not one byte from room A */
    assert_true(strlen(received(a1)) > 0);
    send_text(b1, "{\"x\":1}");
    flush();
    assert_int_equal(buf_size(&a1->wbuf), 0);
    assert_int_equal(buf_size(&a3->wbuf) > 0, true); /* its welcome */
    received(a3);
    assert_int_equal(buf_size(&a3->wbuf), 0); /* and nothing of B's */
}

static void listener_hears_every_event_in_order(void **state)
{
    (void)state;
    struct conn *a = enter("doc");
    struct conn *b = enter("doc");
    send_text(a, "{\"x\":1}");
    flush(); /* a's message is published at the flush, once however often it moved */
    room_leave(&fx.rooms, b);
    room_leave(&fx.rooms, a);
    char want[2048];
    snprintf(want, sizeof want,
             "open /doc - \n"
             "join /doc %s {\"type\":\"join\",\"sender\":\"%s\",\"color\":%u}\n"
             "join /doc %s {\"type\":\"join\",\"sender\":\"%s\",\"color\":%u}\n"
             "msg /doc %s {\"x\":1,\"sender\":\"%s\",\"color\":%u}\n"
             "leave /doc %s {\"type\":\"leave\",\"sender\":\"%s\"}\n"
             "leave /doc %s {\"type\":\"leave\",\"sender\":\"%s\"}\n"
             "free /doc - \n",
             id_of(a->slot), id_of(a->slot), a->slot, id_of(b->slot), id_of(b->slot), b->slot,
             id_of(a->slot), id_of(a->slot), a->slot, id_of(b->slot), id_of(b->slot),
             id_of(a->slot), id_of(a->slot));
    assert_string_equal(fx.events, want);
}

static void muted_rooms_send_no_leaves(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(a);
    fx.events[0] = '\0';
    fx.rooms.is_muted = true; /* the server is stopping */
    room_leave(&fx.rooms, b);
    assert_int_equal(buf_size(&a->wbuf), 0);
    assert_null(strstr(fx.events, "leave"));
}

static void bad_json_is_refused_and_not_relayed(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(b);
    fx.events[0] = '\0';
    assert_true(room_message(&fx.rooms, a, (const uint8_t *)"[1]", 3) < 0);
    flush();
    assert_int_equal(buf_size(&b->wbuf), 0);
    assert_string_equal(fx.events, "");
}

/* ---- Remote members ------------------------------------------------------------------ */

static void remote_members_join_leave_and_go_with_their_room(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *other = enter("else");
    received(a);
    received(other);
    struct room *r = rooms_find(&fx.rooms, "doc", 3);
    bool is_forged;
    long x = room_remote_join(&fx.rooms, r, id_of(100), 9, 1, &is_forged);
    assert_true(x >= SLOTS && !is_forged);
    char want[4096];
    snprintf(want, sizeof want, "{\"type\":\"join\",\"sender\":\"%s\",\"color\":9}\n", id_of(100));
    assert_string_equal(received(a), want);
    assert_int_equal(buf_size(&other->wbuf), 0);
    /* Known already: no second join. */
    assert_int_equal(room_remote_join(&fx.rooms, r, id_of(100), 9, 1, &is_forged), x);
    flush();
    assert_int_equal(buf_size(&a->wbuf), 0);
    /* Its messages are checked and rewritten with what we hold for it. */
    const char *forged = "{\"x\":1,\"sender\":\"someone-else\",\"color\":1}";
    assert_int_equal(
        room_remote_message(&fx.rooms, (size_t)x, (const uint8_t *)forged, strlen(forged)), 0);
    snprintf(want, sizeof want, "{\"x\":1,\"sender\":\"%s\",\"color\":9}\n", id_of(100));
    assert_string_equal(received(a), want);
    assert_true(
        room_remote_is_known(&fx.rooms, (size_t)x, (const uint8_t *)forged, strlen(forged)));
    const char *welcome = "{\"type\":\"welcome\",\"id\":\"x\"}";
    assert_true(
        room_remote_message(&fx.rooms, (size_t)x, (const uint8_t *)welcome, strlen(welcome)) < 0);
    /* Another node's claim to this client (ids are per connection: it never changes node)
     * is refused and changes nothing, in this room or any other. */
    struct conn *other_member = enter("other");
    received(other_member);
    assert_int_equal(room_remote_join(&fx.rooms, rooms_find(&fx.rooms, "other", 5), id_of(100), 9,
                                      2, &is_forged),
                     -1);
    assert_true(is_forged);
    assert_int_equal(room_remote_join(&fx.rooms, r, id_of(100), 9, 2, &is_forged), -1);
    assert_true(is_forged);
    flush();
    assert_int_equal(buf_size(&a->wbuf), 0); /* no leave, no join */
    assert_int_equal(buf_size(&other_member->wbuf), 0);
    assert_ptr_equal(rooms_of(&fx.rooms, (size_t)x), r);
    assert_int_equal(fx.presence.peers[x].node, 1);
    /* A claim to one of our own ids is refused. */
    assert_int_equal(room_remote_join(&fx.rooms, r, id_of(a->slot), 1, 1, &is_forged), -1);
    assert_true(is_forged);
    /* The last local member leaves: the room and its remote members go, silently. */
    room_leave(&fx.rooms, a);
    assert_int_equal(presence_remote_find(&fx.presence, id_of(100)), -1);
    assert_null(rooms_find(&fx.rooms, "doc", 3));
}

static void remote_leave_reaches_only_its_room(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *b = enter("else");
    received(a);
    received(b);
    bool is_forged;
    long x =
        room_remote_join(&fx.rooms, rooms_find(&fx.rooms, "doc", 3), id_of(101), 3, 2, &is_forged);
    received(a);
    room_remote_leave(&fx.rooms, (size_t)x);
    char want[4096];
    snprintf(want, sizeof want, "{\"type\":\"leave\",\"sender\":\"%s\"}\n", id_of(101));
    assert_string_equal(received(a), want);
    assert_int_equal(buf_size(&b->wbuf), 0);
    assert_int_equal(rooms_find(&fx.rooms, "doc", 3)->nremote, 0);
}

/* ---- Latest position wins ---------------------------------------------------------- */

/* The text a member would see relayed from c: {"x":<x>,"sender":...,"color":...}. */
static const char *relayed(const struct conn *c, const char *body)
{
    static char text[8][256];
    static unsigned next;
    char *t = text[next++ % 8];
    snprintf(t, sizeof text[0], "{%s,\"sender\":\"%s\",\"color\":%u}", body, id_of(c->slot),
             c->slot);
    return t;
}

/* Several messages from one sender in one pass: each is checked, the last alone relayed,
 * once to every member (the sender too), and published once. */
static void several_messages_in_one_pass_relay_the_last(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(a);
    received(b);
    fx.events[0] = '\0';
    send_text(a, "{\"x\":1}");
    send_text(a, "{\"x\":2}");
    assert_true(room_message(&fx.rooms, a, (const uint8_t *)"nope", 4) < 0); /* still checked */
    send_text(a, "{\"x\":3}");
    char want[512];
    snprintf(want, sizeof want, "%s\n", relayed(a, "\"x\":3"));
    assert_string_equal(received(b), want);
    assert_string_equal(received(a), want);
    char heard_want[512];
    snprintf(heard_want, sizeof heard_want, "msg /doc %s %s\n", id_of(a->slot),
             relayed(a, "\"x\":3"));
    assert_string_equal(fx.events, heard_want);
    assert_string_equal(received(b), ""); /* nothing more to hand out */
    assert_int_equal(fx.rooms.counters.relayed, 2);
}

/* A reader that is behind gets server messages at once and in order, and cursor messages
 * only once it catches up: then each sender's latest, once, oldest change first. */
static void a_reader_behind_gets_server_messages_in_order_and_each_latest_once(void **state)
{
    (void)state;
    struct conn *reader = enter("doc"), *s1 = enter("doc"), *s2 = enter("doc");
    received(reader);
    received(s1);
    received(s2);
    reader->is_behind = true;
    send_text(s1, "{\"x\":1}");
    send_text(s2, "{\"x\":10}");
    flush();
    send_text(s1, "{\"x\":2}"); /* replaces s1's first, for the reader too */
    struct conn *s3 = enter("doc");
    flush();
    assert_true(reader->ws.is_owed);
    /* Only the join was queued while it was behind. */
    char want[1024];
    snprintf(want, sizeof want, "{\"type\":\"join\",\"sender\":\"%s\",\"color\":%u}\n",
             id_of(s3->slot), s3->slot);
    reader->is_behind = true; /* received() flushes: keep it behind until it catches up */
    assert_string_equal(received(reader), want);
    reader->is_behind = false;
    room_catch_up(&fx.rooms, reader);
    assert_false(reader->ws.is_owed);
    /* s2 moved before s1's second message: oldest change first. */
    snprintf(want, sizeof want, "%s\n%s\n", relayed(s2, "\"x\":10"), relayed(s1, "\"x\":2"));
    assert_string_equal(received(reader), want);
}

/* A member that leaves before the flush: its leave, and nothing of it after (a cursor
 * message never follows its sender's leave). */
static void nothing_follows_a_leave(void **state)
{
    (void)state;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(a);
    received(b);
    send_text(b, "{\"x\":1}");
    char want[512];
    snprintf(want, sizeof want, "{\"type\":\"leave\",\"sender\":\"%s\"}\n", id_of(b->slot));
    room_leave(&fx.rooms, b);
    assert_string_equal(received(a), want);
}

/* A reader whose buffer fills half-way through its debt resumes exactly there, and a
 * sender that moves again meanwhile comes after the others: never an older message after a
 * newer one, every sender's latest in the end. */
static void a_debt_paid_in_parts_never_goes_back(void **state)
{
    (void)state;
    struct conn *reader = enter("doc");
    struct conn *s[4];
    for (int i = 0; i < 4; i++)
        s[i] = enter("doc");
    received(reader);
    for (int i = 0; i < 4; i++)
        received(s[i]);
    reader->is_behind = true;
    char body[64];
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "{\"x\":%d}", i);
        send_text(s[i], body);
    }
    flush();
    /* Room for about two of them under the burst mark. */
    size_t one = strlen(relayed(s[0], "\"x\":0")) + 2;
    uint8_t filler[BUFFER];
    memset(filler, 0, sizeof filler);
    assert_int_equal(buf_append(&reader->wbuf, filler, fx.conns.burst_mark - 2 * one), 0);
    reader->is_behind = false;
    room_catch_up(&fx.rooms, reader);
    assert_true(reader->ws.is_owed);
    buf_consume(&reader->wbuf, fx.conns.burst_mark - 2 * one);
    char want[1024];
    snprintf(want, sizeof want, "%s\n%s\n", relayed(s[0], "\"x\":0"), relayed(s[1], "\"x\":1"));
    reader->is_behind = true; /* received() flushes: the debt is paid by room_catch_up only */
    assert_string_equal(received(reader), want);
    send_text(s[0], "{\"x\":100}"); /* s0 again: after s2 and s3 now */
    reader->is_behind = false;
    room_catch_up(&fx.rooms, reader);
    snprintf(want, sizeof want, "%s\n%s\n%s\n", relayed(s[2], "\"x\":2"), relayed(s[3], "\"x\":3"),
             relayed(s[0], "\"x\":100"));
    assert_string_equal(received(reader), want);
    assert_false(reader->ws.is_owed);
}

/* A reader that fell behind is owed its room's senders' latest states; a sender that moved
 * to another room since owes it nothing. */
static void owed_updates_come_from_the_readers_room_only(void **state)
{
    (void)state;
    struct conn *reader = enter("doc"), *sender = enter("doc");
    received(reader);
    received(sender);
    reader->is_behind = true;
    send_text(sender, "{\"x\":3}");
    flush();
    room_leave(&fx.rooms, sender);
    assert_int_equal(room_enter(&fx.rooms, sender, "else", 4, id_of(sender->slot), 1, NULL), 0);
    send_text(sender, "{\"x\":4}"); /* said in room "else" */
    reader->is_behind = false;
    received(reader); /* the leave */
    room_catch_up(&fx.rooms, reader);
    assert_string_equal(received(reader), "");
}

/* --send-interval: a room's news waits until its interval since the last flush is over;
 * server messages do not. */
static void a_paced_room_collects_until_its_interval(void **state)
{
    (void)state;
    fx.rooms.send_interval_ms = 50;
    fx.now_ms = 1000;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(a);
    received(b);
    assert_int_equal(rooms_next_flush_ms(&fx.rooms, fx.now_ms), -1);
    fx.now_ms = 1060;
    send_text(a, "{\"x\":1}");
    char want[512];
    snprintf(want, sizeof want, "%s\n", relayed(a, "\"x\":1"));
    assert_string_equal(received(b), want); /* 60 ms since the last flush: at once */
    fx.now_ms = 1070;
    send_text(a, "{\"x\":2}");
    assert_int_equal(rooms_next_flush_ms(&fx.rooms, fx.now_ms), 40);
    assert_string_equal(received(b), "");
    struct conn *c = enter("doc"); /* server messages are not paced */
    snprintf(want, sizeof want, "{\"type\":\"join\",\"sender\":\"%s\",\"color\":%u}\n",
             id_of(c->slot), c->slot);
    assert_string_equal(received(b), want);
    fx.now_ms = 1110;
    assert_int_equal(rooms_next_flush_ms(&fx.rooms, fx.now_ms), 0);
    snprintf(want, sizeof want, "%s\n", relayed(a, "\"x\":2"));
    assert_string_equal(received(b), want);
    assert_int_equal(rooms_next_flush_ms(&fx.rooms, fx.now_ms), -1);
}

/* ---- Big rooms: --roster-max ---------------------------------------------------------- */

/* docs/protocol.md: above --roster-max members an arrival is announced by its first
 * message, not its join; a leave goes only for announced members; a welcome lists at most
 * --roster-max, the most recently active first, with the room's count. */
static void above_roster_max_arrivals_show_when_they_move(void **state)
{
    (void)state;
    fx.rooms.roster_max = 2;
    struct conn *a = enter("doc"), *b = enter("doc");
    received(a);
    received(b);
    struct conn *quiet = enter("doc"); /* the third: not announced */
    assert_string_equal(received(a), "");
    struct conn *mover = enter("doc");
    assert_string_equal(received(a), "");
    send_text(mover, "{\"x\":1}");
    char want[1024];
    snprintf(want, sizeof want, "%s\n", relayed(mover, "\"x\":1"));
    assert_string_equal(received(a), want);
    /* A newcomer: the two most recently active (mover, then b), and the count. */
    struct conn *n = open_ws();
    assert_int_equal(room_enter(&fx.rooms, n, "doc", 3, id_of(n->slot), 5, NULL), 0);
    snprintf(want, sizeof want,
             "{\"type\":\"welcome\",\"id\":\"%s\",\"color\":5,\"room\":\"doc\",\"peers\":["
             "%s,{\"sender\":\"%s\",\"color\":%u}],\"count\":5}\n",
             id_of(n->slot), relayed(mover, "\"x\":1"), id_of(b->slot), b->slot);
    assert_string_equal(received(n), want);
    /* The quiet one leaves unseen; the mover's leave is sent. */
    room_leave(&fx.rooms, quiet);
    assert_string_equal(received(a), "");
    room_leave(&fx.rooms, mover);
    snprintf(want, sizeof want, "{\"type\":\"leave\",\"sender\":\"%s\"}\n", id_of(mover->slot));
    assert_string_equal(received(a), want);
}

/* ---- wsrelay.batch ------------------------------------------------------------------ */

/* A batch member gets one array per write: its welcome with the count, then a count when
 * the room's size changes, and the same objects a seed member gets. */
static void a_batch_member_gets_arrays_of_the_same_objects(void **state)
{
    (void)state;
    struct conn *seed = enter("doc");
    struct conn *bt = open_ws();
    bt->ws.is_batch = true;
    assert_int_equal(room_enter(&fx.rooms, bt, "doc", 3, id_of(bt->slot), 4, NULL), 0);
    char want[1024];
    snprintf(want, sizeof want,
             "[{\"type\":\"welcome\",\"id\":\"%s\",\"color\":4,\"room\":\"doc\",\"peers\":["
             "{\"sender\":\"%s\",\"color\":%u}],\"count\":2}]\n",
             id_of(bt->slot), id_of(seed->slot), seed->slot);
    assert_string_equal(received(bt), want);
    received(seed);
    struct conn *c = enter("doc");
    send_text(seed, "{\"x\":1}");
    send_text(c, "{\"x\":2}");
    snprintf(want, sizeof want,
             "[{\"type\":\"join\",\"sender\":\"%s\",\"color\":%u},{\"type\":\"count\",\"count\":3},"
             "%s,%s]\n",
             id_of(c->slot), c->slot, relayed(seed, "\"x\":1"), relayed(c, "\"x\":2"));
    assert_string_equal(received(bt), want);
    snprintf(want, sizeof want, "{\"type\":\"join\",\"sender\":\"%s\",\"color\":%u}\n%s\n%s\n",
             id_of(c->slot), c->slot, relayed(seed, "\"x\":1"), relayed(c, "\"x\":2"));
    assert_string_equal(received(seed), want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_member_opens_last_frees_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(names_are_exact_and_the_default_room_is_its_own, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(full_room_refuses_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(too_many_rooms_refuses_until_one_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(churn_keeps_the_table_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(welcome_names_the_room_and_lists_only_its_members, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rooms_are_isolated_byte_for_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(listener_hears_every_event_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(muted_rooms_send_no_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_json_is_refused_and_not_relayed, setup, teardown),
        cmocka_unit_test_setup_teardown(remote_members_join_leave_and_go_with_their_room, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(remote_leave_reaches_only_its_room, setup, teardown),
        cmocka_unit_test_setup_teardown(several_messages_in_one_pass_relay_the_last, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_reader_behind_gets_server_messages_in_order_and_each_latest_once, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_follows_a_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(a_debt_paid_in_parts_never_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(a_paced_room_collects_until_its_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(above_roster_max_arrivals_show_when_they_move, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_batch_member_gets_arrays_of_the_same_objects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(owed_updates_come_from_the_readers_room_only, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
