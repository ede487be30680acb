/* cluster.h: what wsrelay nodes say to each other over the Redis channel (issue 5).
 *
 * Owns: the envelope every node publishes (encoding and strict decoding, so a malformed or
 * foreign message is refused before it can reach a client), and the table of other nodes
 * with the time each was last heard from (so a node that died without a word is noticed).
 * Does not own: Redis (backplane.c), or what a message means to the room (server.c).
 * Pure: no I/O; time comes in as an argument.
 *
 * Every message is one line of text, then, for some kinds, bytes:
 *
 *     wsr1 <node> hb                               I am alive (every second)
 *     wsr1 <node> hello                            I (re)joined: tell me your state
 *     wsr1 <node> bye                              I am stopping: forget my clients
 *     wsr1 <node> join  <sender> <color> <json>    a client arrived: the join, as sent
 *     wsr1 <node> msg   <sender> <color> <json>    a client's relayed message, as sent
 *     wsr1 <node> leave <sender> <color> <json>    a client left: the leave, as sent
 *     wsr1 <node> state <n>{\n<sender> <color> <len>:<json>}   my n clients, last messages
 *
 * <node> is 16 lowercase hex digits, <sender> a client's UUID, <color> its hue 0..359, <json>
 * the exact bytes the origin node sent to its own clients, which every other node relays to
 * its clients unchanged: a message is byte-for-byte the same on every node.
 */
#ifndef WSRELAY_CLUSTER_H
#define WSRELAY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "presence.h"

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
    char sender[PRESENCE_ID_SIZE]; /* JOIN, MSG, LEAVE */
    unsigned color;                /* JOIN, MSG, LEAVE */
    const uint8_t *json;           /* JOIN, MSG, LEAVE: a view into the input; STATE: the
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

/* Decodes in[0..len) (a whole channel message). Returns 0 and fills *m (views into in), or -1
 * if it is not exactly one of the forms above: wrong prefix or kind, a bad node id, sender
 * or color, JSON that is not one valid object in valid UTF-8, or a STATE whose records do not
 * add up. Nothing that returns 0 can break a client. */
int cluster_decode(const uint8_t *in, size_t len, struct cluster_msg *m);

/* Walks a decoded STATE's records: fills *peer and returns true, or false after the last.
 * *pos starts at 0. Only call on a STATE that cluster_decode() accepted. */
bool cluster_next_peer(const struct cluster_msg *m, size_t *pos, struct cluster_peer *peer);

/* Appends one message of a kind without a client (HB, HELLO, BYE), or with one (JOIN, MSG,
 * LEAVE: sender, color and the json bytes). Returns 0, or -ENOBUFS / -ENOMEM (out unchanged). */
int cluster_encode(struct buf *out, const char *node, enum cluster_kind kind, const char *sender,
                   unsigned color, const void *json, size_t json_len);

/* Appends a STATE message listing this server's own clients (presence entries with node 0)
 * and their last messages. Same returns. */
int cluster_encode_state(struct buf *out, const char *node, const struct presence *p);

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
