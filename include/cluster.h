/* cluster.h: what wsrelay nodes say to each other over the Redis channel (issues 5 and 11).
 *
 * Owns: the envelope every node publishes (encoding and strict decoding, so a malformed or
 * foreign message is refused before it can reach a client), and the table of other nodes
 * with the time each was last heard from (so a node that died without a word is noticed).
 * Does not own: Redis (backplane.c), what a message means to a room (the server), or the rule
 * for room names (target.h: the envelope spells a room exactly as a URL does).
 * Pure: no I/O; time comes in as an argument.
 *
 * Every message is one line of text, then, for some kinds, bytes:
 *
 *     wsr2 <node> hb                                      I am alive (every second)
 *     wsr2 <node> hello                                   I (re)joined: tell me your state
 *     wsr2 <node> hello /<room>                           I opened a room: its state, please
 *     wsr2 <node> bye                                     I am stopping: forget my clients
 *     wsr2 <node> join  /<room> <sender> <color> <json>   a client arrived: the join, as sent
 *     wsr2 <node> msg   /<room> <sender> <color> <json>   a client's relayed message, as sent
 *     wsr2 <node> leave /<room> <sender> <color> <json>   a client left: the leave, as sent
 *     wsr2 <node> state /<room> <n>{\n<sender> <color> <len>:<json>}
 *                                       my n clients in that room, and their last messages
 *
 * <node> is 16 lowercase hex digits, <sender> a client's UUID, <color> its hue 0..359, <json>
 * the exact bytes the origin node sent to its own clients, which every other node relays to
 * its clients unchanged: a message is byte-for-byte the same on every node.
 *
 * /<room> is "/" then the room's name: "/" alone is the default room (name ""), "/abc" is
 * room "abc", and a name must pass target_room_name_check() (1..TARGET_ROOM_MAX bytes of
 * A-Z a-z 0-9 - . _ ~, not "." or "..", nothing percent-decoded). Every message about a
 * client names its room. A STATE describes one room: the sending node's own clients in it
 * (a node publishes one STATE per room it serves; "state /<room> 0": none there).
 *
 * The magic became "wsr2 " with rooms (issue 11; issue 5's envelope, without rooms, was
 * "wsr1 "), so that a node running the old code and one running the new code refuse all of
 * each other's messages (each counts them as invalid) instead of misreading some: with one
 * magic, both would still accept each other's hb, hello and bye and take each other for
 * live nodes, while every message about a client failed on the room (an old node finds
 * "/<room>" where a sender should be), a cluster silently missing half its clients. Mixed
 * versions do not form one cluster; upgrade every node.
 */
#ifndef WSRELAY_CLUSTER_H
#define WSRELAY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "presence.h"
#include "target.h"

#define CLUSTER_NODE_ID_LEN 16 /* hex digits: 64 random bits */
#define CLUSTER_MAX_NODES   64 /* other nodes one node keeps track of */

enum cluster_kind {
    CLUSTER_HB = 1,
    CLUSTER_HELLO,
    CLUSTER_BYE,
    CLUSTER_JOIN,
    CLUSTER_MSG,
    CLUSTER_LEAVE,
    CLUSTER_STATE,
};

struct cluster_msg {
    char node[CLUSTER_NODE_ID_LEN + 1];
    enum cluster_kind kind;
    bool has_room;                  /* JOIN, MSG, LEAVE, STATE, and HELLO for one room */
    char room[TARGET_ROOM_MAX + 1]; /* then: the room's name, NUL-terminated ("" for the
                                     * default room); "" otherwise */
    char sender[PRESENCE_ID_SIZE];  /* JOIN, MSG, LEAVE */
    unsigned color;                 /* JOIN, MSG, LEAVE */
    const uint8_t *json;            /* JOIN, MSG, LEAVE: a view into the input; STATE: the
                                     * records, for cluster_next_peer() */
    size_t json_len;
    size_t count; /* STATE: how many records */
};

/* One client in a STATE message. */
struct cluster_peer {
    char sender[PRESENCE_ID_SIZE];
    unsigned color;
    const uint8_t *json; /* its last message, or empty (json_len 0) */
    size_t json_len;
};

/* Decodes in[0..len) (a whole channel message). Returns 0 and fills *m (json: a view into
 * in), or -1 if it is not exactly one of the forms above: wrong magic (an older node's
 * "wsr1 " too) or kind, a bad node id, room, sender or color, JSON that is not one valid
 * object in valid UTF-8, or a STATE whose records do not add up. Nothing that returns 0 can
 * break a client, and everything that returns 0 encodes back to in[0..len) byte for byte
 * (cluster_encode(), or cluster_encode_state() for a STATE): the envelope has one spelling. */
int cluster_decode(const uint8_t *in, size_t len, struct cluster_msg *m);

/* Walks a decoded STATE's records: fills *peer and returns true, or false after the last.
 * *pos starts at 0. Only call on a STATE that cluster_decode() accepted. */
bool cluster_next_peer(const struct cluster_msg *m, size_t *pos, struct cluster_peer *peer);

/* Appends one message of a kind without a client (HB, HELLO, BYE: sender, color and json
 * are ignored, the pointers may be NULL; a HELLO with a room other than NULL asks for that
 * room's state only, and the room is checked as below), or with one (JOIN, MSG, LEAVE: the client's
 * room, "" for the default one, then sender, color and the json bytes, which are not checked
 * here). Returns 0; -EINVAL if room is NULL or neither "" nor a name that
 * target_room_name_check() accepts, or if kind is CLUSTER_STATE (see below) or no kind at
 * all; -ENOBUFS / -ENOMEM. On every error out is unchanged. */
int cluster_encode(struct buf *out, const char *node, enum cluster_kind kind, const char *room,
                   const char *sender, unsigned color, const void *json, size_t json_len);

/* Appends the STATE of one room (room: "" or a name, as for cluster_encode()): the presence
 * entries members[0..n) (peer indices), each with its last message, or none if that is over
 * PRESENCE_STATE_MAX (as in a welcome: a state stays bounded, and the next message brings
 * the rest). The caller passes that room's clients of this server, each present with node 0;
 * an index that is not (out of range, an empty slot, another node's client) is skipped, not
 * listed, and not counted. n may be 0 (members NULL): no client of the room is here.
 * Returns 0, -EINVAL for a bad room, -ENOBUFS / -ENOMEM; on every error out is unchanged. */
int cluster_encode_state(struct buf *out, const char *node, const char *room,
                         const struct presence *p, const uint32_t *members, size_t n);

/* ---- The other nodes ------------------------------------------------------------------- */

struct cluster_node {
    char id[CLUSTER_NODE_ID_LEN + 1]; /* empty: a free entry */
    uint64_t last_seen_ms;
};

struct cluster_nodes {
    struct cluster_node n[CLUSTER_MAX_NODES];
};

/* The node heard from at now_ms: returns its index (a new entry if it is new, and then
 * *is_new is set), or -1 when the table is full. */
int cluster_node_seen(struct cluster_nodes *t, const char *id, uint64_t now_ms, bool *is_new);

/* One node not heard from for timeout_ms or more before now_ms, or -1 if there is none. The
 * caller removes its clients, then calls cluster_node_forget(). now_ms may lie in the past
 * (a node heard after it is not expired): the caller may judge silence only up to the time
 * its own link was last proven to work. */
int cluster_node_expired(const struct cluster_nodes *t, uint64_t now_ms, uint64_t timeout_ms);

/* Every node last heard before until_ms counts as heard at until_ms: its silence since then
 * is excused (our own link was deaf: their silence says nothing about them). */
void cluster_node_excuse(struct cluster_nodes *t, uint64_t until_ms);

/* Frees a node's entry. */
void cluster_node_forget(struct cluster_nodes *t, int index);

#endif
