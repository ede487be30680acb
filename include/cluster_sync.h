/* cluster_sync.h: the cluster protocol's glue (issue 5), room by room (issue 11).
 *
 * Owns: this node's part in the cluster: its random node id, publishing what its rooms report
 * (room_listener: joins, messages, leaves), heartbeats, hello and state (resynchronisation),
 * the table of other nodes and what happens when one dies, says bye or comes back, and
 * applying what other nodes publish to the rooms (room.h's remote members).
 * Does not own: Redis (backplane.c), the envelope's bytes (cluster.c), or rooms (room.c).
 * Edge: it logs, and drives the backplane.
 *
 * Staying whole when things fail:
 *   - every node says "hb" each HEARTBEAT_MS; a node silent for NODE_TIMEOUT_MS is dead, and
 *     its clients leave every room (kill -9 a node: its users vanish elsewhere within ~3 s);
 *   - a node that (re)connects to Redis says "hello" and publishes a "state" for each of its
 *     rooms; every node that hears a hello answers with its own states, and a state replaces
 *     what we knew of that node in that room: new clients join, missing ones leave, newer
 *     positions are sent;
 *   - while Redis is away, the local rooms go on: publications are dropped (counted), and the
 *     resync above repairs the view when it comes back;
 *   - a node hears its own heartbeats back through its subscription: when they stop coming
 *     for SELF_TIMEOUT_MS (a link open but dead), it drops both links and reconnects at once,
 *     which resyncs as above; that is sooner than the others' NODE_TIMEOUT_MS, so when the
 *     reconnect works nobody has taken it for dead, and it has taken nobody for dead;
 *   - a node back from the dead (frozen, cut off) is asked for its state by whoever had
 *     forgotten it, and answers.
 */
#ifndef WSRELAY_CLUSTER_SYNC_H
#define WSRELAY_CLUSTER_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "backplane.h"
#include "buf.h"
#include "cluster.h"
#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "room.h"

enum {
    CLUSTER_SYNC_TICK_MS = 250,        /* with --redis the tick runs at least this often */
    CLUSTER_SYNC_REMOTE_PER_LOCAL = 8, /* remote client places per local slot */
};

struct cluster_sync {
    const struct config *cfg;
    struct loop *loop;
    struct rooms *rooms;
    struct metrics *metrics;
    unsigned tick_ms; /* the server's tick period: a heartbeat is due within half of one */

    struct backplane bp;
    char node_id[CLUSTER_NODE_ID_LEN + 1]; /* random: tags our publications */
    struct cluster_nodes nodes;            /* the other nodes, and when we last heard them */
    struct buf out;                        /* one envelope being built */
    uint64_t next_heartbeat_ms;
    uint64_t hello_ms;      /* when we last asked every node for its state */
    uint64_t self_heard_ms; /* when one of our own publications last came back */
    bool is_stopping;       /* said bye: publish nothing more */
    bool is_remote_full_logged, is_nodes_full_logged;      /* log those once, not per message */
    uint64_t remote_big_logged_ms, publish_drop_logged_ms; /* ... and those once a minute */
};

/* Joins the cluster cfg->redis_url names, and becomes the rooms' listener. tick_ms is the
 * server's tick period. Returns 0, or -1 (logged). */
int cluster_sync_init(struct cluster_sync *cs, const struct config *cfg, struct loop *loop,
                      struct rooms *rooms, struct metrics *metrics, unsigned tick_ms);
void cluster_sync_free(struct cluster_sync *cs);

/* The periodic tick: our link's health, heartbeats, and nodes gone silent. */
void cluster_sync_tick(struct cluster_sync *cs, uint64_t now_ms);

/* SIGTERM: one "bye" (the other nodes forget our clients at once), then silence. */
void cluster_sync_bye(struct cluster_sync *cs);

/* Whether everything published has reached Redis (the bye, before we exit). */
bool cluster_sync_is_flushed(const struct cluster_sync *cs);

/* The cluster's part of /metrics. */
void cluster_sync_gauges(const struct cluster_sync *cs, struct metrics_gauges *g);

#endif
