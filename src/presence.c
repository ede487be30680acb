/* presence.c: the room's roster and the three messages the server writes about it.
 *
 * Owns: one struct presence_peer per connection slot (id, color, last relayed message) and
 * the exact bytes of welcome, join and leave as docs/protocol.md shows them.
 * Does not own: deciding who joins or leaves (room.c), checking or rewriting client JSON
 * (json.c: what we keep here was already rewritten by it), sending (bcast.c).
 * Pure: no I/O, no logging; memory through calloc once at start and struct buf with a limit.
 *
 * The JSON here is written by hand, not by a library: every value is either a UUID we made
 * (needs no escaping, RFC 8259 §7), an unsigned integer (§6), a name token.c wrote as a
 * JSON string, or a message json.c has already proved to be one JSON object, so plain
 * concatenation is exact.
 *
 * A welcome walks the newcomer's room only (the lists room.c keeps): its cost is the room's
 * size, however many rooms the server holds.
 */
#include "presence.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Measured, then written ----------------------------------------------------------------
 *
 * Every writer below runs twice (buf.h's struct buf_writer): first to count the bytes, then
 * into space reserved in `out` in one piece. So a message is appended whole or not at all (a half
 * welcome would be a corrupt frame), with no rollback and at most one growth of `out`. */

typedef void (*writer_fn)(const struct presence *p, size_t slot, const void *arg,
                          struct buf_writer *e);

/* Runs w once to measure, once to write. Returns 0, or -ENOBUFS / -ENOMEM with out unchanged
 * (buf_reserve() does not say which; past the limit is the one that can be told apart). */
static int write_whole(const struct presence *p, size_t slot, const void *arg, writer_fn w,
                       struct buf *out)
{
    struct buf_writer e = {.dst = NULL};
    w(p, slot, arg, &e);
    size_t need = e.len;
    e = (struct buf_writer){.dst = buf_reserve(out, need)};
    if (e.dst == NULL)
        return need > buf_room(out) ? -ENOBUFS : -ENOMEM;
    w(p, slot, arg, &e);
    assert(e.len == need);
    buf_commit(out, need);
    return 0;
}

/* ---- The messages (docs/protocol.md, "Server -> client") ----------------------------------- */

/* ,"name":<name> for a peer a room token named; nothing for the others, so that a server
 * without tokens writes the same bytes as before them. The name is a JSON string token.c
 * wrote. */
static void emit_name(const struct presence_peer *peer, struct buf_writer *e)
{
    if (peer->name == NULL)
        return;
    buf_put_str(e, ",\"name\":");
    buf_put_str(e, peer->name);
}

/* {"sender":"<id>","color":<c>}: a peer that has sent nothing we kept. */
static void emit_bare_peer(const struct presence_peer *peer, struct buf_writer *e)
{
    buf_put_str(e, "{\"sender\":\"");
    buf_put_str(e, peer->id);
    buf_put_str(e, "\",\"color\":");
    buf_put_uint(e, peer->color);
    emit_name(peer, e);
    buf_put_str(e, "}");
}

/* One peer of a welcome, unless it would take the welcome past its budget: a room too big
 * for one message still gets a welcome, and the missing peers appear as they move. The test
 * depends only on e->len, so the measuring and the writing pass agree. Returns whether it
 * was listed. */
static bool emit_peer(const struct presence *p, const struct presence_peer *peer, size_t listed,
                      struct buf_writer *e)
{
    struct buf_writer bare = {.dst = NULL};
    emit_bare_peer(peer, &bare);
    bool has_state = presence_has_snapshot(peer);
    size_t peer_len = has_state ? buf_size(&peer->last) : bare.len;
    /* Room kept for the closing "]}" and a ,"count":N (at most 30 bytes). */
    if (e->len + (listed == 0 ? 0 : 1) + peer_len + 2 + 30 > p->welcome_max)
        return false;
    if (listed > 0)
        buf_put_str(e, ",");
    if (has_state) /* exactly what was relayed for it */
        buf_put(e, buf_head(&peer->last), buf_size(&peer->last));
    else
        emit_bare_peer(peer, e);
    return true;
}

static void emit_welcome(const struct presence *p, size_t self, const void *arg,
                         struct buf_writer *e)
{
    const struct presence_roster *r = arg;
    const struct presence_peer *me = &p->peers[self];
    buf_put_str(e, "{\"type\":\"welcome\",\"id\":\"");
    buf_put_str(e, me->id);
    buf_put_str(e, "\",\"color\":");
    buf_put_uint(e, me->color);
    emit_name(me, e);
    /* A room name is unreserved characters only (target.h): nothing to escape (RFC 8259 §7). */
    buf_put_str(e, ",\"room\":\"");
    buf_put(e, r->room, r->room_len);
    buf_put_str(e, "\",\"peers\":[");
    size_t listed = 0;
    if (r->recent == PRESENCE_NO_ROOM) {
        for (int list = 0; list < 2; list++) {
            for (size_t i = 0; i < r->count[list] && listed < r->max_peers; i++) {
                size_t index = r->members[list][i];
                const struct presence_peer *peer = &p->peers[index];
                if (index != self && peer->is_present)
                    listed += emit_peer(p, peer, listed, e);
            }
        }
    } else {
        /* Newest first: the most recently active are the ones a page most wants to draw. */
        for (uint32_t index = r->recent; index != PRESENCE_NO_ROOM && listed < r->max_peers;
             index = p->peers[index].act_prev) {
            const struct presence_peer *peer = &p->peers[index];
            if (index != self && peer->is_present)
                listed += emit_peer(p, peer, listed, e);
        }
    }
    buf_put_str(e, "]");
    if (r->with_count || listed + 1 < r->total) {
        buf_put_str(e, ",\"count\":");
        buf_put_uint(e, (unsigned)r->total);
    }
    buf_put_str(e, "}");
}

static void emit_join(const struct presence *p, size_t slot, const void *arg, struct buf_writer *e)
{
    (void)arg;
    buf_put_str(e, "{\"type\":\"join\",\"sender\":\"");
    buf_put_str(e, p->peers[slot].id);
    buf_put_str(e, "\",\"color\":");
    buf_put_uint(e, p->peers[slot].color);
    emit_name(&p->peers[slot], e);
    buf_put_str(e, "}");
}

static void emit_leave(const struct presence *p, size_t slot, const void *arg, struct buf_writer *e)
{
    (void)arg;
    buf_put_str(e, "{\"type\":\"leave\",\"sender\":\"");
    buf_put_str(e, p->peers[slot].id);
    buf_put_str(e, "\"}");
}

/* ---- Public -------------------------------------------------------------------------------- */

int presence_init(struct presence *p, size_t local_slots, size_t remote_slots, size_t last_max)
{
    size_t max_slots = local_slots + remote_slots;
    *p = (struct presence){.max_slots = max_slots,
                           .local_slots = local_slots,
                           .welcome_max = SIZE_MAX,
                           .last_max =
                               last_max > PRESENCE_STATE_MAX ? last_max : PRESENCE_STATE_MAX};
    /* Remote clients' big messages together may hold what local ones can: a cluster never
     * multiplies that memory by the remote places, however much is published on the channel. */
    p->remote_big_budget = local_slots * p->last_max;
    if (max_slots == 0)
        return 0;
    p->peers = calloc(max_slots, sizeof *p->peers); /* calloc checks the multiplication */
    if (remote_slots > 0) {
        size_t cap = 16;
        while (cap < 2 * remote_slots) /* at most half full: probes stay short */
            cap *= 2;
        p->map = calloc(cap, sizeof *p->map);
        p->map_mask = cap - 1;
        p->free_remote = calloc(remote_slots, sizeof *p->free_remote);
    }
    if (p->peers == NULL || (remote_slots > 0 && (p->map == NULL || p->free_remote == NULL))) {
        presence_free(p);
        return -ENOMEM;
    }
    /* Nothing more: the zeroed pages stay unmapped until a slot is used (presence_join). */
    return 0;
}

void presence_free(struct presence *p)
{
    for (size_t i = 0; p->peers != NULL && i < p->max_slots; i++) {
        buf_free(&p->peers[i].last);
        free(p->peers[i].name);
    }
    free(p->peers);
    free(p->map);
    free(p->free_remote);
    *p = (struct presence){0};
}

/* ---- Remote clients: a hash table from id to index ----------------------------------------
 *
 * Linear probing over a table at most half full; deletion shifts the following entries back
 * (no tombstones, so a long-lived cluster never degrades). The hash is FNV-1a over the id's
 * text: ids are random UUIDs, so anything that mixes all their bytes spreads them well. */

static size_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id != '\0'; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

long presence_remote_find(const struct presence *p, const char *id)
{
    if (p->map == NULL)
        return -1;
    for (size_t i = id_hash(id) & p->map_mask;; i = (i + 1) & p->map_mask) {
        uint32_t e = p->map[i];
        if (e == 0)
            return -1;
        if (strcmp(p->peers[e - 1].id, id) == 0)
            return (long)(e - 1);
    }
}

bool presence_is_local(const struct presence *p, const char *id)
{
    for (size_t i = 0; i < p->local_slots; i++)
        if (p->peers[i].is_present && strcmp(p->peers[i].id, id) == 0)
            return true;
    return false;
}

long presence_remote_add(struct presence *p, const char *id, unsigned color, uint16_t node)
{
    long found = presence_remote_find(p, id);
    if (found >= 0) {
        p->peers[found].color = color;
        p->peers[found].node = node;
        return found;
    }
    size_t index;
    if (p->nfree_remote > 0)
        index = p->free_remote[--p->nfree_remote];
    else if (p->local_slots + p->remote_used < p->max_slots)
        index = p->local_slots + p->remote_used++;
    else
        return -1; /* every remote place is taken */
    presence_join(p, index, id, color);
    p->peers[index].node = node;
    size_t i = id_hash(p->peers[index].id) & p->map_mask;
    while (p->map[i] != 0)
        i = (i + 1) & p->map_mask;
    p->map[i] = (uint32_t)index + 1;
    return (long)index;
}

void presence_remote_remove(struct presence *p, size_t index)
{
    assert(index >= p->local_slots && index < p->max_slots && p->peers[index].is_present);
    size_t i = id_hash(p->peers[index].id) & p->map_mask;
    while (p->map[i] != index + 1)
        i = (i + 1) & p->map_mask;
    /* Backward-shift deletion: move each following entry of the run into the hole if its
     * home position allows it, so every remaining id is still found from its home. */
    p->map[i] = 0;
    for (size_t j = (i + 1) & p->map_mask; p->map[j] != 0; j = (j + 1) & p->map_mask) {
        size_t home = id_hash(p->peers[p->map[j] - 1].id) & p->map_mask;
        bool hole_between = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (hole_between) {
            p->map[i] = p->map[j];
            p->map[j] = 0;
            i = j;
        }
    }
    presence_leave(p, index);
    p->free_remote[p->nfree_remote++] = (uint32_t)index;
}

/* Bytes of a remote entry's last message that count against remote_big_budget. */
static size_t remote_big(const struct presence *p, size_t slot)
{
    size_t n = buf_size(&p->peers[slot].last);
    return slot >= p->local_slots && n > PRESENCE_STATE_MAX ? n : 0;
}

void presence_join(struct presence *p, size_t slot, const char *id, unsigned color)
{
    assert(slot < p->max_slots); /* slots come from conn.c, never from a peer */
    struct presence_peer *peer = &p->peers[slot];
    /* Bounded copy: an id longer than a UUID is our bug, but must not overrun the array. */
    size_t n = strnlen(id, PRESENCE_ID_SIZE - 1);
    memcpy(peer->id, id, n);
    peer->id[n] = '\0';
    peer->color = color;
    free(peer->name);
    peer->name = NULL;
    peer->is_present = true;
    peer->room = PRESENCE_NO_ROOM; /* room.c puts it in one */
    peer->is_announced = false;
    peer->act_prev = peer->act_next = PRESENCE_NO_ROOM;
    peer->act_seq = 0;
    p->remote_big_used -= remote_big(p, slot);
    buf_free(&peer->last);
    buf_init(&peer->last, p->last_max); /* a fresh client has said nothing yet */
}

int presence_set_name(struct presence *p, size_t slot, const char *name)
{
    assert(slot < p->max_slots && p->peers[slot].is_present);
    free(p->peers[slot].name);
    p->peers[slot].name = strdup(name);
    return p->peers[slot].name != NULL ? 0 : -ENOMEM;
}

int presence_update(struct presence *p, size_t slot, const uint8_t *msg, size_t len)
{
    assert(slot < p->max_slots);
    struct buf *last = &p->peers[slot].last;
    /* Empty first: if the new message is not kept, the old position must not outlive it. */
    p->remote_big_used -= remote_big(p, slot);
    buf_reset(last);
    /* A sender back to small messages after a big one gives the big storage back: the
     * common case stays a few hundred bytes per client. */
    if (len <= PRESENCE_STATE_MAX)
        buf_shrink(last, PRESENCE_STATE_MAX);
    if (len > p->last_max)
        return -EMSGSIZE;
    bool is_remote_big = slot >= p->local_slots && len > PRESENCE_STATE_MAX;
    if (is_remote_big && p->remote_big_used + len > p->remote_big_budget) {
        buf_shrink(last, 0);
        return -ENOBUFS;
    }
    /* Within the limit, so only memory can fail here. */
    if (buf_append(last, msg, len) != 0)
        return -ENOMEM;
    if (is_remote_big)
        p->remote_big_used += len;
    return 0;
}

void presence_leave(struct presence *p, size_t slot)
{
    assert(slot < p->max_slots);
    struct presence_peer *peer = &p->peers[slot];
    p->remote_big_used -= remote_big(p, slot);
    buf_free(&peer->last); /* keeps the limit, so the slot is ready for the next join */
    peer->is_present = false;
    peer->id[0] = '\0';
    peer->color = 0;
    free(peer->name);
    peer->name = NULL;
    peer->node = 0;
    peer->room = PRESENCE_NO_ROOM;
    peer->is_announced = false;
    peer->act_prev = peer->act_next = PRESENCE_NO_ROOM;
}

bool presence_has_snapshot(const struct presence_peer *peer)
{
    size_t n = buf_size(&peer->last);
    return n > 0 && n <= PRESENCE_STATE_MAX;
}

size_t presence_count(const struct presence *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->max_slots; i++)
        n += p->peers[i].is_present;
    return n;
}

int presence_write_welcome(const struct presence *p, size_t self,
                           const struct presence_roster *roster, struct buf *out)
{
    assert(self < p->max_slots);
    return write_whole(p, self, roster, emit_welcome, out);
}

static void emit_count(const struct presence *p, size_t n, const void *arg, struct buf_writer *e)
{
    (void)p;
    (void)arg;
    buf_put_str(e, "{\"type\":\"count\",\"count\":");
    buf_put_uint(e, (unsigned)n);
    buf_put_str(e, "}");
}

int presence_write_count(size_t n, struct buf *out)
{
    return write_whole(NULL, n, NULL, emit_count, out);
}

int presence_write_join(const struct presence *p, size_t slot, struct buf *out)
{
    assert(slot < p->max_slots);
    return write_whole(p, slot, NULL, emit_join, out);
}

int presence_write_leave(const struct presence *p, size_t slot, struct buf *out)
{
    assert(slot < p->max_slots);
    return write_whole(p, slot, NULL, emit_leave, out);
}
