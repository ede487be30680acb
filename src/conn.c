/* conn.c: the slot table (see conn.h). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int conn_table_init(struct conn_table *t, size_t max, size_t rbuf_limit, size_t wbuf_limit,
                    size_t max_message)
{
    *t = (struct conn_table){
        .max = max,
        .rbuf_limit = rbuf_limit,
        .wbuf_limit = wbuf_limit,
        .max_message = max_message,
        /* A sixteenth of --max-buffer (64 KiB by default): far more than a healthy client
         * ever has pending, far enough below the limit that server messages still fit. */
        .conflate_mark = wbuf_limit / 16,
        .burst_mark = wbuf_limit / 2,
    };
    /* calloc hands back zeroed pages the kernel maps only when first written: slots that
     * were never used cost address space, not memory. So nothing here writes to them; a
     * zeroed slot reads as CONN_FREE, and conn_open() fills in the rest. */
    t->conns = calloc(max, sizeof *t->conns);
    t->free_slots = calloc(max, sizeof *t->free_slots);
    t->writers = calloc(max, sizeof *t->writers);
    t->closing = calloc(max, sizeof *t->closing);
    if (!t->conns || !t->free_slots || !t->writers || !t->closing) {
        conn_table_free(t);
        return -ENOMEM;
    }
    return 0;
}

void conn_table_free(struct conn_table *t)
{
    for (size_t i = 0; t->conns != NULL && i < t->nused; i++)
        if (t->conns[i].phase != CONN_FREE)
            conn_release(t, &t->conns[i]);
    free(t->conns);
    free(t->free_slots);
    free(t->writers);
    free(t->closing);
    *t = (struct conn_table){0};
}

struct conn *conn_open(struct conn_table *t, const struct transport *tp,
                       const struct net_addr *peer, uint64_t serial, uint64_t now_ms)
{
    uint32_t slot;
    if (t->nfree > 0)
        slot = t->free_slots[--t->nfree]; /* a released slot: its pages are resident */
    else if (t->nused < t->max)
        slot = (uint32_t)t->nused++; /* a fresh one, in order: slot 0 first */
    else
        return NULL;
    struct conn *c = &t->conns[slot];
    *c = (struct conn){
        .watch = {.fd = -1},
        .tp = *tp,
        .slot = slot,
        .phase = CONN_HTTP,
        .route = CONN_ROUTE_NONE,
        .serial = serial,
        .since_ms = now_ms,
        .peer = *peer,
        .http = {.file_fd = -1},
    };
    buf_init(&c->rbuf, t->rbuf_limit);
    buf_init(&c->wbuf, t->wbuf_limit);
    t->nopen++;
    return c;
}

bool conn_trim(struct conn *c)
{
    bool had_memory = c->rbuf.data != NULL || c->wbuf.data != NULL ||
                      (c->route != CONN_ROUTE_NONE && c->ws.session.message.data != NULL);
    if (!c->is_busy) {
        buf_shrink(&c->rbuf, 0);
        buf_shrink(&c->wbuf, 0);
        if (c->route != CONN_ROUTE_NONE)
            ws_trim(&c->ws.session);
    }
    c->is_busy = false;
    return had_memory && c->rbuf.data == NULL && c->wbuf.data == NULL &&
           (c->route == CONN_ROUTE_NONE || c->ws.session.message.data == NULL);
}

const char *conn_http_judge_reader(struct conn_http *h, uint64_t acked, uint64_t now_ms,
                                   uint64_t grace_ms, uint64_t min_rate)
{
    if (acked > h->out_acked) {
        h->out_acked = acked;
        h->acked_ms = now_ms;
    }
    if (now_ms - h->acked_ms >= grace_ms)
        return "response not read within --handshake-timeout";
    uint64_t elapsed = now_ms - h->out_since_ms;
    /* acked / (elapsed - grace) < min_rate, in integers: both sides stay far below 2^64 for
     * any time under a century and any file under an exabyte. */
    if (elapsed > grace_ms && h->out_acked * 1000 < (elapsed - grace_ms) * min_rate)
        return "response read too slowly";
    return NULL;
}

const char *conn_end_name(enum conn_end end)
{
    static const char *const names[CONN_END_COUNT] = {
        [CONN_END_CLOSED] = "closed",       [CONN_END_HTTP] = "http_done",
        [CONN_END_PROTOCOL] = "protocol",   [CONN_END_SLOW_READER] = "slow_reader",
        [CONN_END_TIMEOUT] = "timeout",     [CONN_END_PING_TIMEOUT] = "ping_timeout",
        [CONN_END_PEER_GONE] = "peer_gone", [CONN_END_SHUTDOWN] = "shutdown",
        [CONN_END_ERROR] = "error",
    };
    return end < CONN_END_COUNT ? names[end] : "unknown";
}

void conn_close_later(struct conn_table *t, struct conn *c, enum conn_end end, const char *why)
{
    if (c->phase == CONN_CLOSING || c->phase == CONN_FREE)
        return; /* first reason wins */
    c->phase = CONN_CLOSING;
    c->end = end;
    c->close_reason = why;
    t->closing[t->nclosing++] = c->slot; /* at most once per slot: fits in max entries */
}

void conn_queue_write(struct conn_table *t, struct conn *c)
{
    c->is_busy = true;
    if (c->is_queued || c->phase == CONN_CLOSING)
        return;
    c->is_queued = true;
    t->writers[t->nwriters++] = c->slot;
}

void conn_release(struct conn_table *t, struct conn *c)
{
    transport_close(&c->tp, c->is_reset);
    if (c->route == CONN_ROUTE_NONE && c->http.file_fd >= 0)
        close(c->http.file_fd);
    if (c->route != CONN_ROUTE_NONE)
        ws_free(&c->ws.session);
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    uint32_t slot = c->slot;
    *c = (struct conn){
        .watch = {.fd = -1},
        .tp = {.fd = -1},
        .slot = slot,
        .phase = CONN_FREE,
        .http = {.file_fd = -1},
    };
    t->free_slots[t->nfree++] = slot;
    t->nopen--;
}

const char *conn_route_name(enum conn_route r)
{
    return r == CONN_ROUTE_ROOM ? "/ws" : r == CONN_ROUTE_ECHO ? "/echo" : "http";
}

struct conn_peer_text conn_peer_text(const struct conn *c)
{
    struct conn_peer_text t = {.s = ""};
    net_addr_format(&c->peer, t.s);
    return t;
}
