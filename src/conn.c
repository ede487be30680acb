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
    };
    t->conns = calloc(max, sizeof *t->conns);
    t->free_slots = calloc(max, sizeof *t->free_slots);
    t->writers = calloc(max, sizeof *t->writers);
    t->closing = calloc(max, sizeof *t->closing);
    t->room = calloc(max, sizeof *t->room);
    if (!t->conns || !t->free_slots || !t->writers || !t->closing || !t->room) {
        conn_table_free(t);
        return -ENOMEM;
    }
    /* Push in reverse so slot 0 is handed out first: easier to follow in logs. */
    for (size_t i = max; i-- > 0;) {
        t->conns[i].slot = (uint32_t)i;
        t->conns[i].watch.fd = -1;
        t->conns[i].fd = -1;
        t->conns[i].file_fd = -1;
        t->conns[i].room_index = CONN_NOT_IN_ROOM;
        t->free_slots[t->nfree++] = (uint32_t)i;
    }
    return 0;
}

void conn_table_free(struct conn_table *t)
{
    if (t->conns != NULL) {
        for (size_t i = 0; i < t->max; i++)
            if (t->conns[i].phase != CONN_FREE)
                conn_release(t, &t->conns[i]);
    }
    free(t->conns);
    free(t->free_slots);
    free(t->writers);
    free(t->closing);
    free(t->room);
    *t = (struct conn_table){0};
}

struct conn *conn_open(struct conn_table *t, int fd, const char *peer, uint64_t serial,
                       uint64_t now_ms)
{
    if (t->nfree == 0)
        return NULL;
    struct conn *c = &t->conns[t->free_slots[--t->nfree]];
    uint32_t slot = c->slot;
    *c = (struct conn){
        .watch = {.fd = -1},
        .fd = fd,
        .slot = slot,
        .phase = CONN_HTTP,
        .route = CONN_ROUTE_NONE,
        .serial = serial,
        .since_ms = now_ms,
        .file_fd = -1,
        .room_index = CONN_NOT_IN_ROOM,
    };
    strncpy(c->peer, peer, sizeof c->peer - 1);
    buf_init(&c->rbuf, t->rbuf_limit);
    buf_init(&c->wbuf, t->wbuf_limit);
    ws_init(&c->ws, t->max_message);
    t->nopen++;
    return c;
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
    if (c->is_queued || c->phase == CONN_CLOSING)
        return;
    c->is_queued = true;
    t->writers[t->nwriters++] = c->slot;
}

void conn_room_join(struct conn_table *t, struct conn *c)
{
    if (c->room_index != CONN_NOT_IN_ROOM)
        return;
    c->room_index = (uint32_t)t->nroom;
    t->room[t->nroom++] = c->slot;
}

void conn_room_leave(struct conn_table *t, struct conn *c)
{
    uint32_t i = c->room_index;
    if (i == CONN_NOT_IN_ROOM)
        return;
    uint32_t last = t->room[--t->nroom];
    t->room[i] = last;
    t->conns[last].room_index = i;
    c->room_index = CONN_NOT_IN_ROOM;
}

void conn_release(struct conn_table *t, struct conn *c)
{
    conn_room_leave(t, c);
    if (c->fd >= 0)
        close(c->fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    ws_free(&c->ws);
    uint32_t slot = c->slot;
    *c = (struct conn){
        .watch = {.fd = -1},
        .fd = -1,
        .slot = slot,
        .phase = CONN_FREE,
        .file_fd = -1,
        .room_index = CONN_NOT_IN_ROOM,
    };
    t->free_slots[t->nfree++] = slot;
    t->nopen--;
}
