/* fuzz_cluster.c: libFuzzer target for cluster.c's decoding of what arrives on the Redis
 * channel (issue 5), and for what the server then does with it in presence.c.
 *
 * The input is one channel message: anything at all, because anything that can reach Redis
 * can publish on the channel. Each run:
 *   1. decodes it with cluster_decode();
 *   2. if it was accepted, encodes the decoded fields again (cluster_encode(), or the STATE
 *      record format by hand), which must give back the input byte for byte: the envelope
 *      has exactly one spelling, so nothing accepted can carry bytes that decoding did not
 *      look at;
 *   3. every JSON payload it accepted (a message, or each STATE record's) must be valid
 *      UTF-8 and one JSON object: it is about to become a text frame for browsers;
 *   4. applies it to a small presence table the way server.c does (a remote client added,
 *      its last message remembered, a state's clients added), then writes a welcome, a join
 *      and a leave, each of which must again be one JSON object in valid UTF-8.
 * Why: cluster_decode() is the only gate between Redis and every browser of a node. A wrong
 * "valid" would send browsers a broken frame (RFC 6455 §8.1: they must fail the connection)
 * or a forged field; a crash would take down a node and every client on it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "cluster.h"
#include "fuzz.h"
#include "json.h"
#include "presence.h"
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

/* Step 2 for a STATE: the header, then each record as "\n<sender> <color> <len>:<json>". */
static void reencode_state(const struct cluster_msg *m, struct buf *out)
{
    FUZZ_CHECK(buf_printf(out, "wsr1 %s state %zu", m->node, m->count) == 0);
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

/* Step 4: what server.c's on_cluster_message() does to presence, in miniature. */
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
    size_t mark = buf_size(out);
    FUZZ_CHECK(presence_write_welcome(p, 0, out) == 0);
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

    struct buf out;
    buf_init(&out, 4 * size + 65536);
    if (m.kind == CLUSTER_STATE) {
        reencode_state(&m, &out);
    } else {
        FUZZ_CHECK(cluster_encode(&out, m.node, m.kind, m.sender, m.color, m.json, m.json_len) ==
                   0);
        if (m.kind == CLUSTER_JOIN || m.kind == CLUSTER_MSG || m.kind == CLUSTER_LEAVE)
            check_relayable(m.json, m.json_len);
    }
    FUZZ_CHECK(buf_size(&out) == size && memcmp(buf_head(&out), data, size) == 0);

    struct presence p;
    FUZZ_CHECK(presence_init(&p, LOCAL_SLOTS, REMOTE_SLOTS, 0) == 0);
    presence_join(&p, 0, "00000000-0000-4000-8000-000000000000", 7); /* the newcomer */
    buf_reset(&out);
    apply(&p, &m, &out);
    presence_free(&p);
    buf_free(&out);
    return 0;
}
