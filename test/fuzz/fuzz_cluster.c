/* fuzz_cluster.c: libFuzzer target for cluster.c's decoding of what arrives on the Redis
 * channel (issues 5 and 11), and for what the server then does with it in presence.c.
 *
 * The input is one channel message: anything at all, because anything that can reach Redis
 * can publish on the channel. Each run:
 *   1. decodes it with cluster_decode(); a room it accepted is "" or passes
 *      target_room_name_check(), and only the kinds about clients have one;
 *   2. if it was accepted, encodes the decoded fields again, which must give back the input
 *      byte for byte: the envelope has exactly one spelling, so nothing accepted can carry
 *      bytes that decoding did not look at. A message goes through cluster_encode(); a STATE
 *      both through the record format by hand (what cluster_next_peer() reads) and through
 *      cluster_encode_state(), from a presence table holding its records, given members to
 *      skip between them (an empty slot, another node's client, an index past the table).
 *      Into a buffer one byte too small, either encoder fails with -ENOBUFS and writes
 *      nothing;
 *   3. every JSON payload it accepted (a message, or each STATE record's) must be valid
 *      UTF-8 and one JSON object: it is about to become a text frame for browsers;
 *   4. applies it to a small presence table the way room.c and cluster_sync.c do (a remote client
 * added, its last message remembered, a state's clients added), then writes a welcome, a join and a
 * leave, each of which must again be one JSON object in valid UTF-8. Why: cluster_decode() is the
 * only gate between Redis and every browser of a node. A wrong "valid" would send browsers a broken
 * frame (RFC 6455 §8.1: they must fail the connection) or a forged field; a crash would take down a
 * node and every client on it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cluster.h"
#include "fuzz.h"
#include "json.h"
#include "presence.h"
#include "target.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { LOCAL_SLOTS = 2, REMOTE_SLOTS = 8 }; /* small: "every place taken" is reachable */

static void check_relayable(const uint8_t *p, size_t n)
{
    FUZZ_CHECK(utf8_valid(p, n));
    FUZZ_CHECK(json_check_object(p, n) == 0);
}

/* A presence message just written at out[mark..]: one JSON object in valid UTF-8. */
static void check_written(const struct buf *out, size_t mark)
{
    check_relayable(buf_head(out) + mark, buf_size(out) - mark);
}

static bool has_room(enum cluster_kind kind)
{
    return kind == CLUSTER_JOIN || kind == CLUSTER_MSG || kind == CLUSTER_LEAVE ||
           kind == CLUSTER_STATE;
}

/* Step 1's check of the room. */
static void check_room(const struct cluster_msg *m)
{
    size_t n = strnlen(m->room, sizeof m->room);
    FUZZ_CHECK(n < sizeof m->room);                /* NUL-terminated */
    FUZZ_CHECK(!has_room(m->kind) || m->has_room); /* these kinds always name a room */
    FUZZ_CHECK(m->kind == CLUSTER_HELLO || has_room(m->kind) || !m->has_room); /* hb, bye: never */
    if (!m->has_room)
        FUZZ_CHECK(n == 0);
    else
        FUZZ_CHECK(n == 0 || target_room_name_check(m->room, n) == NULL);
}

/* Step 2 for a STATE by hand: the header, then each record as
 * "\n<sender> <color> <len>:<json>". */
static void reencode_state(const struct cluster_msg *m, struct buf *out)
{
    FUZZ_CHECK(buf_printf(out, "wsr2 %s state /%s %zu", m->node, m->room, m->count) == 0);
    size_t pos = 0, seen = 0;
    struct cluster_peer peer;
    while (cluster_next_peer(m, &pos, &peer)) {
        FUZZ_CHECK(buf_printf(out, "\n%s %u %zu:", peer.sender, peer.color, peer.json_len) == 0);
        FUZZ_CHECK(buf_append(out, peer.json, peer.json_len) == 0);
        if (peer.json_len > 0)
            check_relayable(peer.json, peer.json_len);
        seen++;
    }
    FUZZ_CHECK(seen == m->count);
}

/* Step 2 for a STATE through cluster_encode_state(): its records become local slots 1..count
 * of a presence table (slot 0 stays empty), one remote client is added, and the members
 * list every record's slot in order with the empty slot, the remote client and an index
 * past the table mixed in, which must all be skipped. Returns the encoder's answer. */
static int encode_state_again(const struct cluster_msg *m, struct buf *out)
{
    struct presence q;
    FUZZ_CHECK(presence_init(&q, m->count + 1, 1, 0) == 0);
    long remote = presence_remote_add(&q, "ffffffff-ffff-4fff-8fff-ffffffffffff", 1, 1);
    FUZZ_CHECK(remote >= (long)m->count + 1);
    uint32_t *members = malloc((m->count + 3) * sizeof *members);
    FUZZ_CHECK(members != NULL);
    size_t n = 0, pos = 0, slot = 1;
    members[n++] = 0; /* empty */
    struct cluster_peer peer;
    while (cluster_next_peer(m, &pos, &peer)) {
        presence_join(&q, slot, peer.sender, peer.color);
        /* Records are at most PRESENCE_STATE_MAX bytes (decode checks), so each is kept and
         * counts as a snapshot: listed again exactly as it came. */
        FUZZ_CHECK(presence_update(&q, slot, peer.json, peer.json_len) == 0);
        members[n++] = (uint32_t)slot++;
        if (slot == 2)
            members[n++] = (uint32_t)remote; /* another node's client */
    }
    FUZZ_CHECK(slot == m->count + 1);
    if (m->count == 0)
        members[n++] = (uint32_t)remote;
    members[n++] = (uint32_t)q.max_slots; /* past the table */
    FUZZ_CHECK(n == m->count + 3);
    int rc = cluster_encode_state(out, m->node, m->room, &q, members, n);
    free(members);
    presence_free(&q);
    return rc;
}

/* The room to encode m again with: a hello without one is asked with NULL. */
static const char *room_arg(const struct cluster_msg *m)
{
    return m->kind == CLUSTER_HELLO && !m->has_room ? NULL : m->room;
}

/* Step 2's all-or-nothing check: into a buffer one byte short of the message, an encoder
 * refuses with -ENOBUFS and leaves it empty. */
static void check_tight(const struct cluster_msg *m, size_t size)
{
    if (size == 0)
        return;
    struct buf tight;
    buf_init(&tight, size - 1);
    int rc = m->kind == CLUSTER_STATE ? encode_state_again(m, &tight)
                                      : cluster_encode(&tight, m->node, m->kind, room_arg(m),
                                                       m->sender, m->color, m->json, m->json_len);
    FUZZ_CHECK(rc == -ENOBUFS);
    FUZZ_CHECK(buf_size(&tight) == 0);
    buf_free(&tight);
}

/* Step 4: what cluster_sync.c's on_cluster_message() does to presence, in miniature. */
static void apply(struct presence *p, const struct cluster_msg *m, struct buf *out)
{
    long index = -1;
    const char *id = m->sender; /* the client of `index` */
    if (m->kind == CLUSTER_JOIN || m->kind == CLUSTER_MSG || m->kind == CLUSTER_LEAVE) {
        index = presence_remote_add(p, m->sender, m->color, 1);
        FUZZ_CHECK(index >= (long)LOCAL_SLOTS); /* the table starts empty: there is room */
        FUZZ_CHECK(presence_remote_find(p, m->sender) == index);
        if (m->kind == CLUSTER_MSG) {
            /* Kept, or refused for its size (over last_max: the slot's last is emptied). */
            int rc = presence_update(p, (size_t)index, m->json, m->json_len);
            FUZZ_CHECK(rc == 0 || (rc == -EMSGSIZE && m->json_len > p->last_max));
            FUZZ_CHECK(rc == 0 || buf_size(&p->peers[index].last) == 0);
        }
    } else if (m->kind == CLUSTER_STATE) {
        size_t pos = 0;
        struct cluster_peer peer;
        while (cluster_next_peer(m, &pos, &peer)) {
            long i = presence_remote_add(p, peer.sender, peer.color, 1);
            if (i < 0)
                continue; /* every remote place taken: the server logs and goes on */
            FUZZ_CHECK(presence_update(p, (size_t)i, peer.json, peer.json_len) == 0);
            FUZZ_CHECK(presence_remote_find(p, peer.sender) == i);
            index = i;
            id = p->peers[i].id;
        }
    }
    /* The welcome of local slot 0, listing every entry as a room's lists would. */
    static uint32_t all[LOCAL_SLOTS + REMOTE_SLOTS];
    for (uint32_t i = 0; i < p->max_slots; i++)
        all[i] = i;
    struct presence_roster roster = {
        .room = m->room,
        .room_len = strlen(m->room),
        .members = {all, all + p->local_slots},
        .count = {p->local_slots, p->max_slots - p->local_slots},
    };
    size_t mark = buf_size(out);
    FUZZ_CHECK(presence_write_welcome(p, 0, &roster, out) == 0);
    check_written(out, mark);
    if (index < 0)
        return;
    mark = buf_size(out);
    FUZZ_CHECK(presence_write_join(p, (size_t)index, out) == 0);
    check_written(out, mark);
    mark = buf_size(out);
    FUZZ_CHECK(presence_write_leave(p, (size_t)index, out) == 0);
    check_written(out, mark);
    char gone[PRESENCE_ID_SIZE];
    memcpy(gone, id, sizeof gone);
    presence_remote_remove(p, (size_t)index);
    FUZZ_CHECK(presence_remote_find(p, gone) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cluster_msg m;
    if (cluster_decode(data, size, &m) < 0)
        return 0;
    FUZZ_CHECK(strlen(m.node) == CLUSTER_NODE_ID_LEN);
    check_room(&m);

    struct buf out;
    buf_init(&out, 4 * size + 65536);
    if (m.kind == CLUSTER_STATE) {
        reencode_state(&m, &out);
        FUZZ_CHECK(buf_size(&out) == size && memcmp(buf_head(&out), data, size) == 0);
        buf_reset(&out);
        FUZZ_CHECK(encode_state_again(&m, &out) == 0);
    } else {
        FUZZ_CHECK(cluster_encode(&out, m.node, m.kind, room_arg(&m), m.sender, m.color, m.json,
                                  m.json_len) == 0);
        if (m.kind == CLUSTER_JOIN || m.kind == CLUSTER_MSG || m.kind == CLUSTER_LEAVE)
            check_relayable(m.json, m.json_len);
    }
    FUZZ_CHECK(buf_size(&out) == size && memcmp(buf_head(&out), data, size) == 0);
    check_tight(&m, size);

    struct presence p;
    FUZZ_CHECK(presence_init(&p, LOCAL_SLOTS, REMOTE_SLOTS, 0) == 0);
    presence_join(&p, 0, "00000000-0000-4000-8000-000000000000", 7); /* the newcomer */
    buf_reset(&out);
    apply(&p, &m, &out);
    presence_free(&p);
    buf_free(&out);
    return 0;
}
