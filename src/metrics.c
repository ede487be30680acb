/* metrics.c: the Prometheus text page (see metrics.h).
 *
 * The format, in brief: for each metric a "# HELP name text" and a "# TYPE name counter|gauge"
 * line, then "name value" or "name{label="value"} value" samples, one per line. Counters only
 * go up (rates are the scraper's job); gauges are snapshots.
 */
#include "metrics.h"

#include <inttypes.h>

/* One metric without labels: its HELP, TYPE and sample. Keeps the first error in *rc and
 * writes nothing more after it. */
static void one(struct buf *out, int *rc, const char *name, const char *type, const char *help,
                uint64_t value)
{
    if (*rc == 0)
        *rc = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
                         type, name, value);
}

int metrics_write(const struct metrics *m, const struct metrics_gauges *g, struct buf *out)
{
    size_t mark = buf_size(out);
    int rc = 0;

    one(out, &rc, "wsrelay_connections_open", "gauge", "TCP connections open now.",
        g->connections_open);
    one(out, &rc, "wsrelay_connections_total", "counter", "TCP connections accepted.",
        m->connections_total);
    one(out, &rc, "wsrelay_connections_refused_total", "counter",
        "Connections answered 503 because every slot was taken.", m->refused_full);
    if (rc == 0)
        rc = buf_printf(out,
                        "# HELP wsrelay_websockets_open WebSocket connections open now, by path.\n"
                        "# TYPE wsrelay_websockets_open gauge\n"
                        "wsrelay_websockets_open{route=\"ws\"} %zu\n"
                        "wsrelay_websockets_open{route=\"echo\"} %zu\n",
                        g->ws_open, g->echo_open);
    one(out, &rc, "wsrelay_http_requests_total", "counter", "HTTP request heads parsed.",
        m->http_requests);
    one(out, &rc, "wsrelay_messages_in_total", "counter", "WebSocket data messages received.",
        m->messages_in);
    one(out, &rc, "wsrelay_messages_out_total", "counter",
        "WebSocket frames queued to clients (one per recipient).",
        m->messages_out + g->room_messages_out);
    one(out, &rc, "wsrelay_bytes_in_total", "counter", "Bytes read from clients.", m->bytes_in);
    one(out, &rc, "wsrelay_bytes_out_total", "counter", "Bytes written to clients.", m->bytes_out);
    one(out, &rc, "wsrelay_rate_limited_total", "counter", "Messages on /ws dropped by --max-rate.",
        m->rate_limited);
    one(out, &rc, "wsrelay_byte_rate_limited_total", "counter",
        "Messages on /ws dropped by --max-byte-rate.", m->byte_rate_limited);
    one(out, &rc, "wsrelay_connect_rate_limited_total", "counter",
        "Handshakes on /ws refused by --max-connect-rate.", m->connect_limited);
    one(out, &rc, "wsrelay_token_refused_total", "counter",
        "Handshakes on /ws refused for their room token (--token-secret-file).", m->token_refused);
    one(out, &rc, "wsrelay_conflated_total", "counter",
        "Cursor messages replaced by a newer one from the same sender before some member was given "
        "them.",
        m->conflated + g->room_conflated);
    one(out, &rc, "wsrelay_relayed_total", "counter",
        "Members' messages queued to members of their room (one per recipient).", g->room_relayed);
    one(out, &rc, "wsrelay_rooms_open", "gauge", "Rooms with a member on this node.",
        g->rooms_open);
    one(out, &rc, "wsrelay_room_clients_max", "gauge", "Members on this node of its largest room.",
        g->room_clients_max);
    one(out, &rc, "wsrelay_room_joins_total", "counter", "Clients that entered a room.",
        g->room_joins);
    one(out, &rc, "wsrelay_rooms_created_total", "counter", "Rooms opened by a first member.",
        g->rooms_created);
    one(out, &rc, "wsrelay_rooms_freed_total", "counter", "Rooms freed as their last member left.",
        g->rooms_freed);
    if (rc == 0)
        rc = buf_printf(out,
                        "# HELP wsrelay_room_refused_total Clients refused a room, by reason.\n"
                        "# TYPE wsrelay_room_refused_total counter\n"
                        "wsrelay_room_refused_total{reason=\"full\"} %" PRIu64 "\n"
                        "wsrelay_room_refused_total{reason=\"too_many_rooms\"} %" PRIu64 "\n",
                        g->room_refused_full, g->room_refused_too_many);
    one(out, &rc, "wsrelay_wbuf_high_water_bytes", "gauge",
        "Most output ever pending on one connection.", g->wbuf_high_water);
    if (g->is_clustered) {
        one(out, &rc, "wsrelay_relayed_remote_total", "counter",
            "Of wsrelay_relayed_total, other nodes' members' messages: what crossed Redis.",
            g->room_relayed_remote);
        one(out, &rc, "wsrelay_redis_up", "gauge", "1 if both Redis links are connected.",
            g->redis_up);
        one(out, &rc, "wsrelay_cluster_nodes", "gauge", "Other nodes heard from.",
            g->cluster_nodes);
        one(out, &rc, "wsrelay_remote_clients", "gauge", "Clients of other nodes.",
            g->remote_clients);
        one(out, &rc, "wsrelay_redis_published_total", "counter",
            "Messages published: acknowledged by Redis.", g->redis_published);
        one(out, &rc, "wsrelay_redis_dropped_total", "counter",
            "Messages not published: Redis down or refusing, its output over the cap, or lost with "
            "the link.",
            g->redis_dropped);
        one(out, &rc, "wsrelay_redis_received_total", "counter",
            "Messages received on the channel.", g->redis_received);
        one(out, &rc, "wsrelay_cluster_invalid_total", "counter",
            "Channel messages ignored: foreign or malformed.", m->cluster_invalid);
    }
    if (rc == 0)
        rc = buf_printf(out, "# HELP wsrelay_disconnects_total Connections ended, by reason.\n"
                             "# TYPE wsrelay_disconnects_total counter\n");
    for (int e = 0; e < CONN_END_COUNT && rc == 0; e++)
        rc = buf_printf(out, "wsrelay_disconnects_total{reason=\"%s\"} %" PRIu64 "\n",
                        conn_end_name((enum conn_end)e), m->disconnects[e]);

    if (rc != 0)
        buf_truncate(out, mark); /* all of the page or none of it */
    return rc;
}
