/* backplane.h: wsrelay's link to Redis pub/sub, for running many nodes as one (issue 5), with
 * a channel per room (issue 11).
 *
 * Owns: two connections to Redis through hiredis's asynchronous API (one SUBSCRIBEd to the
 * control channel and to the room channels the caller asks for, one that PUBLISHes: a
 * subscribed connection can do nothing else), driven by our
 * own epoll loop through a small adapter (modelled on the adapters hiredis ships, such as
 * adapters/ae.h for redis's own loop); reconnecting with capped exponential backoff; a cap
 * on what may wait to be published; counters; one log line per change of state.
 * Does not own: what the messages say (cluster.c) or do (cluster_sync.c), or which rooms to
 * listen to. The messages are opaque bytes here.
 * Edge: sockets, through hiredis. Nothing here blocks: connects are non-blocking, and the
 * host name is resolved once, at start-up.
 */
#ifndef WSRELAY_BACKPLANE_H
#define WSRELAY_BACKPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

/* Bytes of PUBLISH commands issued but not yet acknowledged by Redis: a slow or stalled Redis
 * makes this grow; past the cap, publications are dropped (and counted) instead of queued.
 * The cap is this plus the largest message the caller will publish (backplane_init()), so
 * that even the biggest one always fits once Redis catches up. */
#define BACKPLANE_OUT_MAX            (8u << 20)
#define BACKPLANE_BACKOFF_MIN_MS     100u  /* first retry after a failure, doubling ... */
#define BACKPLANE_BACKOFF_MAX_MS     2000u /* ... up to this */
#define BACKPLANE_CONNECT_TIMEOUT_MS 2000u

struct redisAsyncContext; /* hiredis's; only backplane.c sees inside */
struct backplane;

enum backplane_state { BACKPLANE_DOWN, BACKPLANE_CONNECTING, BACKPLANE_READY };

struct backplane_link {
    struct backplane *bp;
    struct redisAsyncContext *ac; /* NULL while down */
    struct loop_watch watch;      /* ac's socket in our loop */
    bool is_subscriber;
    enum backplane_state state;
    uint64_t since_ms; /* when the state began */
    uint64_t retry_ms; /* DOWN: when to try again */
    uint64_t backoff_ms;
    bool is_refusal_logged; /* a refused AUTH or SELECT was logged since the link was ready */
};

/* What the server hears from the backplane. */
struct backplane_ops {
    /* A message on a channel we listen to (any node's, our own included: the caller
     * filters), with that channel's name (not NUL-terminated). */
    void (*on_message)(void *ctx, const char *channel, size_t channel_len, const uint8_t *p,
                       size_t len);
    /* Both links are ready after one of them was (re)connected: what was published while
     * down is lost and what others published was missed, so it is time to resynchronise,
     * and to subscribe again to every room channel (a new link listens to the control
     * channel only). */
    void (*on_ready)(void *ctx);
    /* Redis confirmed a backplane_subscribe(): from now on, nothing published on that
     * channel is missed. May be NULL. */
    void (*on_subscribed)(void *ctx, const char *channel, size_t channel_len);
    /* Redis confirmed a backplane_unsubscribe(). A caller that wants the channel again by now
     * must subscribe again (see backplane_subscribe()). May be NULL. */
    void (*on_unsubscribed)(void *ctx, const char *channel, size_t channel_len);
};

struct backplane {
    struct loop *loop;
    struct config_redis target;
    char ip[64];         /* target.host, resolved once at start-up */
    const char *channel; /* the control channel (--redis-channel) */
    struct backplane_link sub, pub;
    const struct backplane_ops *ops;
    void *ctx;
    bool needs_sync; /* a link (re)connected since the last on_ready */
    bool was_up;     /* both links were ready at the last state log */
    size_t inflight; /* see BACKPLANE_OUT_MAX */
    size_t out_max;  /* the cap on inflight */
    /* published: acknowledged by Redis; dropped: not published (link down, over the cap,
     * refused by Redis, or lost with the link before its acknowledgement). */
    uint64_t published, dropped, received;
};

/* Resolves the host (may block: call at start-up; the first address is used, for the life
 * of the process), and starts connecting on the next tick. message_max: the largest message
 * the caller will publish (see BACKPLANE_OUT_MAX). Returns 0, or -1 if the host does not
 * resolve (the message is logged). */
int backplane_init(struct backplane *b, struct loop *loop, const struct config_redis *target,
                   const char *channel, size_t message_max, const struct backplane_ops *ops,
                   void *ctx);

/* Closes both links (pending publications are dropped). */
void backplane_free(struct backplane *b);

/* Connects, retries and times out, as due at now_ms: call from the periodic tick. */
void backplane_tick(struct backplane *b, uint64_t now_ms);

/* Drops both links, logging `why` once, and starts again at the next backplane_tick() (a link
 * that then fails backs off as usual). For the caller's own liveness check: a connection can
 * stay open while nothing passes (a crashed Redis host, a NAT that forgot it), and only a
 * round trip proves it works. */
void backplane_reset(struct backplane *b, uint64_t now_ms, const char *why);

/* Queues one PUBLISH of p[0..len) on channel (NULL: the control channel). Returns true if
 * queued; false if it was dropped, because the publishing link is down or BACKPLANE_OUT_MAX
 * is reached (counted in b->dropped). Never blocks. */
bool backplane_publish(struct backplane *b, const char *channel, const void *p, size_t len);

/* Starts or stops listening to a room channel, if the subscriber link is up (if it is not,
 * on_ready comes when it is, and the caller subscribes then). Confirmed by on_subscribed.
 * Never blocks. */
void backplane_subscribe(struct backplane *b, const char *channel);
void backplane_unsubscribe(struct backplane *b, const char *channel);

/* Both links connected (and subscribed). */
bool backplane_is_up(const struct backplane *b);

#endif
