/* cluster_sync.c: the cluster protocol's glue (see cluster_sync.h).
 *
 * Chapters: 1. publishing, 2. what the rooms report, 3. what other nodes say, 4. the tick,
 * 5. start and stop.
 */
#include "cluster_sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitset.h"
#include "entropy.h"
#include "json.h"
#include "log.h"

enum {
    HEARTBEAT_MS = 1000,      /* how often each node says it is alive ... */
    NODE_TIMEOUT_MS = 3000,   /* ... and how long its silence means it is dead */
    SELF_TIMEOUT_MS = 2000,   /* our own heartbeats not back this long: our link is dead
                               * though open, replace it (see cluster_sync_tick) */
    LOG_EVERY_MS = 60 * 1000, /* a warning that could repeat per message: once a minute */
};

/* ==== 1. Publishing ===================================================================== */

/* A room's channel: the --redis-channel prefix, "/", the name ("wsrelay/doc-42"; the default
 * room's is "wsrelay/"). One channel per room, so a node hears only the rooms it serves,
 * and Redis Cluster's sharded pub/sub could place each room on a shard of its own. The
 * prefix is at most 128 bytes (config.c), a name at most TARGET_ROOM_MAX. */
enum { CHANNEL_MAX = 128 + 1 + TARGET_ROOM_MAX + 1 };

static void room_channel(const struct cluster_sync *cs, const char *room, char out[CHANNEL_MAX])
{
    snprintf(out, CHANNEL_MAX, "%s/%s", cs->cfg->redis_channel, room);
}

/* A publication that did not leave is counted (wsrelay_redis_dropped_total) and said in the
 * log, once a minute at most: a full queue would otherwise log every message. A link that is
 * down is the backplane's to report, once per change of state. */
static void log_dropped(struct cluster_sync *cs, const char *why, size_t len)
{
    if (cs->publish_drop_logged_ms != 0 &&
        cs->loop->now_ms - cs->publish_drop_logged_ms < LOG_EVERY_MS)
        return;
    cs->publish_drop_logged_ms = cs->loop->now_ms;
    log_at(LL_WARN, "len=%zu dropped=%llu \"cluster: not published: %s\"", len,
           (unsigned long long)cs->bp.dropped, why);
}

/* Hands the envelope in cs->out to the backplane, which counts what it drops: on the room's
 * channel, or with room NULL on the control channel. */
static void publish(struct cluster_sync *cs, const char *room)
{
    char channel[CHANNEL_MAX];
    const char *to = NULL; /* the control channel */
    if (room != NULL) {
        room_channel(cs, room, channel);
        to = channel;
    }
    size_t len = buf_size(&cs->out);
    if (!backplane_publish(&cs->bp, to, buf_head(&cs->out), len) && backplane_is_up(&cs->bp))
        log_dropped(cs, "the queue to Redis is full (Redis slow or stalled)", len);
}

/* Publishes one envelope (not after our "bye"). room is NULL for the kinds without one (hb,
 * bye, a hello to every room), which go on the control channel. */
static void publish_kind(struct cluster_sync *cs, enum cluster_kind kind, const char *room,
                         const struct presence_peer *who, const void *json, size_t json_len)
{
    if (cs->is_stopping)
        return;
    buf_reset(&cs->out);
    if (cluster_encode(&cs->out, cs->node_id, kind, room, who != NULL ? who->id : NULL,
                       who != NULL ? who->color : 0, json, json_len) != 0) {
        cs->bp.dropped++; /* cannot happen: cluster_sync_init sizes out for the largest */
        log_dropped(cs, "message too large for an envelope", json_len);
        return;
    }
    publish(cs, room);
}

/* One room's state: our clients in it and their last messages. */
static void publish_state(struct cluster_sync *cs, const struct room *r)
{
    if (cs->is_stopping)
        return; /* after our "bye", a state would bring us back to life elsewhere */
    buf_reset(&cs->out);
    if (cluster_encode_state(&cs->out, cs->node_id, r->name, cs->rooms->presence, r->local,
                             r->nlocal) != 0) {
        cs->bp.dropped++; /* cannot happen either */
        log_dropped(cs, "state too large for an envelope", 0);
        return;
    }
    publish(cs, r->name);
}

static void publish_all_states(struct cluster_sync *cs)
{
    const struct rooms *rs = cs->rooms;
    for (size_t i = 0; i < rs->nused; i++)
        if (rs->rooms[i].is_open)
            publish_state(cs, &rs->rooms[i]);
}

/* Asks every node for its whole state (room NULL: on the control channel, answered with a
 * state on each room's channel), or for its state of one room (on that room's channel). */
static void say_hello(struct cluster_sync *cs, const char *room)
{
    if (room == NULL)
        cs->hello_ms = cs->loop->now_ms;
    publish_kind(cs, CLUSTER_HELLO, room, NULL, NULL, 0);
}

/* ==== 2. What the rooms report ============================================================ */

/* A room opened here: we start listening to its channel. Its other nodes' members are not
 * known yet (a node keeps only the rooms it serves); once Redis confirms the subscription
 * (on_subscribed), our hello makes every node that serves the room answer with its state, so
 * the newcomer sees them as joins right after its welcome: within two Redis round trips and
 * the other nodes' loop passes, milliseconds on a LAN (docs/scaling.md). */
static void on_open(void *ctx, const struct room *r)
{
    struct cluster_sync *cs = ctx;
    char channel[CHANNEL_MAX];
    room_channel(cs, r->name, channel);
    backplane_subscribe(&cs->bp, channel);
}

/* The last local member left: we stop listening. The other nodes need no word: this node's
 * last member's leave went out before. */
static void on_free(void *ctx, const struct room *r)
{
    struct cluster_sync *cs = ctx;
    char channel[CHANNEL_MAX];
    room_channel(cs, r->name, channel);
    backplane_unsubscribe(&cs->bp, channel);
}

static void on_join(void *ctx, const struct room *r, const struct presence_peer *who,
                    const void *json, size_t len)
{
    publish_kind(ctx, CLUSTER_JOIN, r->name, who, json, len);
}

static void on_message(void *ctx, const struct room *r, const struct presence_peer *who,
                       const void *json, size_t len)
{
    publish_kind(ctx, CLUSTER_MSG, r->name, who, json, len);
}

static void on_leave(void *ctx, const struct room *r, const struct presence_peer *who,
                     const void *json, size_t len)
{
    publish_kind(ctx, CLUSTER_LEAVE, r->name, who, json, len);
}

static const struct room_listener listener = {
    .on_open = on_open,
    .on_free = on_free,
    .on_join = on_join,
    .on_message = on_message,
    .on_leave = on_leave,
};

/* ==== 3. What other nodes say =============================================================== */

/* A node died (silent too long) or said bye: all its clients leave their rooms. */
static void drop_node(struct cluster_sync *cs, int node)
{
    struct presence *p = cs->rooms->presence;
    uint16_t tag = (uint16_t)(node + 1);
    size_t n = 0;
    for (size_t i = p->local_slots; i < p->max_slots; i++) {
        if (p->peers[i].is_present && p->peers[i].node == tag) {
            room_remote_leave(cs->rooms, i);
            n++;
        }
    }
    /* Node ids passed cluster_decode(): hex digits, nothing to escape. */
    log_at(LL_INFO, "node=%s clients=%zu \"cluster: node gone, its clients left\"",
           cs->nodes.n[node].id, n);
    cluster_node_forget(&cs->nodes, node);
}

/* A client of another node in room r, known from a join, a message or a state: its presence
 * index, or -1 (no room for it, or a forged claim to one of ours: counted). */
static long remote_client(struct cluster_sync *cs, struct room *r, const char *id, unsigned color,
                          uint16_t tag)
{
    bool is_forged;
    long index = room_remote_join(cs->rooms, r, id, color, tag, &is_forged);
    if (is_forged) {
        cs->metrics->cluster_invalid++;
        /* id passed cluster_decode(): a lower-case UUID, nothing to escape. */
        log_at(LL_DEBUG, "sender=%s \"cluster: ignored a remote claim to a local client\"", id);
        return -1;
    }
    if (index < 0) {
        if (!cs->is_remote_full_logged)
            log_at(LL_WARN, "\"cluster: no room for more remote clients; new ones are not shown\"");
        cs->is_remote_full_logged = true;
        return -1;
    }
    cs->is_remote_full_logged = false;
    return index;
}

/* A remote client's message: checked like a local one (room_remote_message), refusals
 * counted and, for a size the nodes disagree on, logged once a minute. */
static void remote_message(struct cluster_sync *cs, long index, const char *node,
                           const uint8_t *json, size_t len)
{
    int rc = room_remote_message(cs->rooms, (size_t)index, json, len);
    if (rc == 0)
        return;
    cs->metrics->cluster_invalid++;
    if (rc == -EMSGSIZE && cs->loop->now_ms - cs->remote_big_logged_ms >= LOG_EVERY_MS) {
        cs->remote_big_logged_ms = cs->loop->now_ms;
        log_at(LL_WARN,
               "node=%s len=%zu max_message=%zu \"cluster: dropped a message over our "
               "--max-message; give every node the same limits\"",
               node, len, cs->cfg->max_message);
    } else {
        log_at(LL_DEBUG,
               "node=%s \"cluster: dropped a message a local client could not have sent\"", node);
    }
}

/* A node's state of one room: what we knew of it there is replaced. Clients we did not know
 * join, those it no longer lists leave, and positions newer than ours are relayed. */
static void apply_state(struct cluster_sync *cs, struct room *r, const struct cluster_msg *m,
                        uint16_t tag)
{
    struct presence *p = cs->rooms->presence;
    /* Which of this node's clients does the state still list? One bit per presence entry,
     * for the length of this call. */
    uint64_t *listed = bitset_new(p->max_slots);
    if (listed == NULL)
        return; /* the next state will do */
    size_t pos = 0;
    struct cluster_peer peer;
    while (cluster_next_peer(m, &pos, &peer)) {
        long index = remote_client(cs, r, peer.sender, peer.color, tag);
        if (index < 0)
            continue;
        bitset_add(listed, (size_t)index);
        /* Only a position newer than ours is relayed: judged on the checked bytes, which an
         * honest node's state holds exactly. */
        if (peer.json_len > 0 &&
            !room_remote_is_known(cs->rooms, (size_t)index, peer.json, peer.json_len))
            remote_message(cs, index, m->node, peer.json, peer.json_len);
    }
    /* Backwards: a leave moves the list's last entry into the hole, which we have seen. */
    for (size_t i = r->nremote; i-- > 0;) {
        size_t index = r->remote[i];
        if (p->peers[index].node == tag && !bitset_has(listed, index))
            room_remote_leave(cs->rooms, index);
    }
    free(listed);
}

/* Whether a message came on the channel its kind belongs on: a room's own channel for
 * anything that names a room, the control channel for the rest. A message on the wrong one
 * is someone else's publication (or a forgery) and is ignored. */
static bool is_on_its_channel(const struct cluster_sync *cs, const struct cluster_msg *m,
                              const char *channel, size_t channel_len)
{
    char want[CHANNEL_MAX];
    if (m->has_room)
        room_channel(cs, m->room, want);
    else
        snprintf(want, sizeof want, "%s", cs->cfg->redis_channel);
    return strlen(want) == channel_len && memcmp(want, channel, channel_len) == 0;
}

/* backplane_ops.on_message: one message from a channel. */
static void on_cluster_message(void *ctx, const char *channel, size_t channel_len,
                               const uint8_t *payload, size_t len)
{
    struct cluster_sync *cs = ctx;
    struct cluster_msg m;
    if (cluster_decode(payload, len, &m) < 0 || !is_on_its_channel(cs, &m, channel, channel_len)) {
        cs->metrics->cluster_invalid++; /* foreign or malformed: ignored, never relayed */
        log_at(LL_DEBUG, "len=%zu \"cluster: ignored a message that is not ours\"", len);
        return;
    }
    uint64_t now = cs->loop->now_ms;
    if (strcmp(m.node, cs->node_id) == 0) {
        /* Our own publication, back from Redis: our clients already have it. That it came
         * back proves both links work (see cluster_sync_tick). */
        cs->self_heard_ms = now;
        return;
    }
    bool is_new;
    int node = cluster_node_seen(&cs->nodes, m.node, now, &is_new);
    if (node < 0) {
        cs->metrics->cluster_invalid++;
        if (!cs->is_nodes_full_logged)
            log_at(LL_WARN, "\"cluster: too many nodes, ignoring new ones\"");
        cs->is_nodes_full_logged = true;
        return;
    }
    /* A node we do not know that does not introduce itself (a hello, or the state that
     * follows one) was taken for dead while it was only frozen or cut off, and it may have
     * forgotten us the same way: a hello makes every node, that one included, publish its
     * whole state, which makes both views whole again. Not if we said hello lately (we just
     * joined, and its state is on its way). */
    bool is_unannounced =
        m.kind != CLUSTER_HELLO && m.kind != CLUSTER_STATE && m.kind != CLUSTER_BYE;
    if (is_new && is_unannounced && now - cs->hello_ms >= NODE_TIMEOUT_MS) {
        log_at(LL_INFO, "node=%s \"cluster: an unknown node speaks, asking for states\"",
               m.node); /* 16 hex digits: cluster_decode() checked */
        say_hello(cs, NULL);
    }
    uint16_t tag = (uint16_t)(node + 1);
    /* A node keeps only the rooms it serves: anything about another room is not ours. */
    struct room *r = m.has_room ? rooms_find(cs->rooms, m.room, strlen(m.room)) : NULL;
    long index;
    switch (m.kind) {
    case CLUSTER_HB:
        return;
    case CLUSTER_HELLO: /* a node (re)joined, or opened a room, and knows nothing: tell it */
        if (!m.has_room)
            publish_all_states(cs);
        else if (r != NULL)
            publish_state(cs, r);
        return;
    case CLUSTER_BYE:
        drop_node(cs, node);
        return;
    case CLUSTER_JOIN: /* the envelope's id and color; the json it carries is not relayed */
        if (r != NULL)
            remote_client(cs, r, m.sender, m.color, tag);
        return;
    case CLUSTER_MSG:
        index = r != NULL ? remote_client(cs, r, m.sender, m.color, tag) : -1;
        if (index >= 0)
            remote_message(cs, index, m.node, m.json, m.json_len);
        return;
    case CLUSTER_LEAVE: /* only the node that has the client, in the room it names */
        index = presence_remote_find(cs->rooms->presence, m.sender);
        if (index >= 0 && r != NULL && rooms_of(cs->rooms, (size_t)index) == r &&
            cs->rooms->presence->peers[index].node == tag)
            room_remote_leave(cs->rooms, (size_t)index);
        return;
    case CLUSTER_STATE:
        if (r != NULL)
            apply_state(cs, r, &m, tag);
        return;
    }
}

/* backplane_ops.on_ready: connected again after a gap. A new subscriber link listens to the
 * control channel only: every room we serve is subscribed again, and as each subscription is
 * confirmed (on_subscribed) that room is resynchronised: our state out, theirs asked for. */
static void on_cluster_ready(void *ctx)
{
    struct cluster_sync *cs = ctx;
    cs->self_heard_ms = cs->loop->now_ms; /* the round-trip check starts afresh */
    cs->hello_ms = cs->loop->now_ms;      /* the rooms' hellos are on their way */
    const struct rooms *rs = cs->rooms;
    for (size_t i = 0; i < rs->nused; i++)
        if (rs->rooms[i].is_open)
            on_open(cs, &rs->rooms[i]);
}

/* The room a channel of ours belongs to, if it is open here. */
static struct room *room_of_channel(const struct cluster_sync *cs, const char *channel,
                                    size_t channel_len)
{
    size_t prefix = strlen(cs->cfg->redis_channel);
    if (channel_len <= prefix || memcmp(channel, cs->cfg->redis_channel, prefix) != 0 ||
        channel[prefix] != '/')
        return NULL;
    return rooms_find(cs->rooms, channel + prefix + 1, channel_len - prefix - 1);
}

/* backplane_ops.on_subscribed: we hear the room now, so nothing said there is missed: tell
 * the other nodes who we have in it, and ask them who they have. */
static void on_subscribed(void *ctx, const char *channel, size_t channel_len)
{
    struct cluster_sync *cs = ctx;
    struct room *r = room_of_channel(cs, channel, channel_len);
    if (r == NULL)
        return; /* freed since: its unsubscribe is on its way */
    publish_state(cs, r);
    say_hello(cs, r->name);
}

/* backplane_ops.on_unsubscribed: a room freed, then opened again before Redis confirmed the
 * unsubscribe, must be subscribed again (backplane.h says why). */
static void on_unsubscribed(void *ctx, const char *channel, size_t channel_len)
{
    struct cluster_sync *cs = ctx;
    struct room *r = room_of_channel(cs, channel, channel_len);
    if (r != NULL)
        on_open(cs, r);
}

static const struct backplane_ops cluster_ops = {
    .on_message = on_cluster_message,
    .on_ready = on_cluster_ready,
    .on_subscribed = on_subscribed,
    .on_unsubscribed = on_unsubscribed,
};

/* ==== 4. The tick ======================================================================== */

/* Why a cut-off node is whole again before anyone gives up on it. Times from h, when the
 * last heartbeat of ours that came back arrived (the others heard it at h too, or later):
 *
 *   h + SELF_TIMEOUT_MS .. + CLUSTER_SYNC_TICK_MS   we notice, drop both links, reconnect
 *   a few round trips later                         our hello and state reach the others
 *   h + NODE_TIMEOUT_MS at the earliest             another node would take us for dead
 *
 * so the reconnect has NODE_TIMEOUT_MS - SELF_TIMEOUT_MS - CLUSTER_SYNC_TICK_MS (750 ms) to
 * spare. The same must hold the other way round: while our own link is deaf, the others'
 * silence is ours, not theirs. Their silence counts only as far as our link vouches for it
 * (one heartbeat past our own last), and when we give up on the link their clocks restart
 * from h. */
_Static_assert(NODE_TIMEOUT_MS - SELF_TIMEOUT_MS - CLUSTER_SYNC_TICK_MS >= 500,
               "a cut-off node must replace its link well before the others give up on it");
_Static_assert(SELF_TIMEOUT_MS >= 2 * HEARTBEAT_MS,
               "one late heartbeat must not make a node replace a working link");

void cluster_sync_tick(struct cluster_sync *cs, uint64_t now)
{
    /* Both links "up" proves nothing: a connection can stay open while nothing passes (the
     * Redis host crashed, a NAT or firewall forgot the connection). Our own heartbeats come
     * back to us through the subscription: when they stop, we start both links again (before
     * backplane_tick, which reconnects at once), which resynchronises the rooms when they
     * work. */
    if (backplane_is_up(&cs->bp) && now - cs->self_heard_ms >= SELF_TIMEOUT_MS) {
        backplane_reset(&cs->bp, now, "our own heartbeats stopped coming back");
        cluster_node_excuse(&cs->nodes, cs->self_heard_ms);
    }
    backplane_tick(&cs->bp, now);
    /* A timer that fires a millisecond early must not put a beat off by a whole tick: a beat
     * is due within half a tick. */
    if (now + cs->tick_ms / 2 >= cs->next_heartbeat_ms) {
        cs->next_heartbeat_ms = now + HEARTBEAT_MS;
        publish_kind(cs, CLUSTER_HB, NULL, NULL, NULL, 0);
    }
    uint64_t vouched = now; /* how far our own link vouches for the others' silence */
    if (backplane_is_up(&cs->bp) && now > cs->self_heard_ms + HEARTBEAT_MS)
        vouched = cs->self_heard_ms + HEARTBEAT_MS;
    int node;
    while ((node = cluster_node_expired(&cs->nodes, vouched, NODE_TIMEOUT_MS)) >= 0) {
        drop_node(cs, node);
        cs->is_nodes_full_logged = false;
    }
}

/* ==== 5. Start and stop ================================================================== */

int cluster_sync_init(struct cluster_sync *cs, const struct config *cfg, struct loop *loop,
                      struct rooms *rooms, struct metrics *metrics, unsigned tick_ms)
{
    *cs = (struct cluster_sync){
        .cfg = cfg, .loop = loop, .rooms = rooms, .metrics = metrics, .tick_ms = tick_ms};
    struct config_redis target;
    char why[160];
    if (config_parse_redis_url(cfg->redis_url, &target, why, sizeof why) < 0) {
        log_at(LL_ERROR, "\"--redis: %s\"", log_text_str(why).s); /* config_parse() checked it */
        return -1;
    }
    /* The password may come from the environment instead of the command line, where every
     * user of the machine could read it in the process list. */
    const char *env = getenv("WSRELAY_REDIS_PASSWORD");
    if (target.password[0] == '\0' && env != NULL)
        snprintf(target.password, sizeof target.password, "%s", env);

    uint8_t raw[CLUSTER_NODE_ID_LEN / 2];
    if (entropy_fill(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(cs->node_id + 2 * i, 3, "%02x", raw[i]);
    /* The biggest envelope: a room's state listing every local member with its snapshot, or
     * one relayed message of the largest size. Either always fits, so no local message is
     * ever too large to publish. */
    size_t members =
        cfg->max_room_clients < cfg->max_clients ? cfg->max_room_clients : cfg->max_clients;
    size_t state_max = members * (PRESENCE_STATE_MAX + 64) + 256;
    size_t msg_max = cfg->max_message + JSON_REWRITE_GROWTH + 256;
    buf_init(&cs->out, state_max > msg_max ? state_max : msg_max);
    if (backplane_init(&cs->bp, loop, &target, cfg->redis_channel, cs->out.limit, &cluster_ops,
                       cs) < 0) {
        buf_free(&cs->out);
        return -1;
    }
    rooms->listener = &listener;
    rooms->listener_ctx = cs;
    log_at(LL_INFO, "node=%s redis=%s:%u/%u channel=%s \"cluster: joining\"", cs->node_id,
           cs->bp.ip, (unsigned)target.port, target.db, log_value_str(cfg->redis_channel).s);
    return 0;
}

void cluster_sync_free(struct cluster_sync *cs)
{
    backplane_free(&cs->bp);
    buf_free(&cs->out);
    if (cs->rooms != NULL && cs->rooms->listener == &listener)
        cs->rooms->listener = NULL;
}

void cluster_sync_bye(struct cluster_sync *cs)
{
    publish_kind(cs, CLUSTER_BYE, NULL, NULL, NULL, 0);
    cs->is_stopping = true;
}

bool cluster_sync_is_flushed(const struct cluster_sync *cs)
{
    return cs->bp.inflight == 0;
}

void cluster_sync_gauges(const struct cluster_sync *cs, struct metrics_gauges *g)
{
    const struct presence *p = cs->rooms->presence;
    g->is_clustered = true;
    g->redis_up = backplane_is_up(&cs->bp);
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        g->cluster_nodes += cs->nodes.n[i].id[0] != '\0';
    for (size_t i = p->local_slots; i < p->max_slots; i++)
        g->remote_clients += p->peers[i].is_present;
    g->redis_published = cs->bp.published;
    g->redis_dropped = cs->bp.dropped;
    g->redis_received = cs->bp.received;
}
