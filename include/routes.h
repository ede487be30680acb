/* routes.h: what each path does.
 *
 * Owns: deciding what a request gets (target.h names the route): static files and the page
 * of a room, /healthz, /metrics (and who may read it), the WebSocket upgrade (its checks,
 * the Origin rule, room tokens, --max-connect-rate, then entering the room), and what each
 * WebSocket event becomes: a relayed room message, an echo, a pong, the close handshake,
 * under --max-rate and --max-byte-rate.
 * Does not own: reading, writing or ending connections (conn_io.c, which calls routes
 * through struct conn_io_ops), rooms (room.c) or the cluster (cluster_sync.c, whose gauges
 * /metrics shows).
 * Edge: it opens files and logs.
 */
#ifndef WSRELAY_ROUTES_H
#define WSRELAY_ROUTES_H

#include "cluster_sync.h"
#include "config.h"
#include "conn_io.h"
#include "connrate.h"
#include "metrics.h"
#include "room.h"

/* The subprotocol of batched frames (docs/protocol.md). */
#define ROUTES_BATCH_PROTOCOL "wsrelay.batch"

struct routes {
    const struct config *cfg;
    struct conn_io *io;
    struct rooms *rooms;
    struct metrics *metrics;
    const struct cluster_sync *cluster; /* NULL: a single node */
    struct connrate connrate;           /* --max-connect-rate: a bucket per client address */
    int www_fd;                         /* O_PATH directory: every file is opened beneath it */
    const uint8_t *token_secret;        /* --token-secret-file: every /ws handshake needs a */
    size_t token_secret_len;            /* room token signed with it (token.h); 0: none */
    struct buf page;                    /* the /metrics page being written */
    bool is_draining; /* --drain-time: /healthz says 503, new WebSockets are refused */
};

/* The table conn_io calls; ctx is the struct routes. */
extern const struct conn_io_ops routes_ops;

/* Returns 0, or -ENOMEM for the --max-connect-rate table. www_fd is owned by the caller. */
int routes_init(struct routes *r, const struct config *cfg, struct conn_io *io, struct rooms *rooms,
                struct metrics *metrics, int www_fd);
void routes_free(struct routes *r);

#endif
