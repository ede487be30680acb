/* room.c: rooms, membership, relay (see room.h).
 *
 * Chapters: 1. the table of rooms, 2. member lists, 3. local members, 4. remote members.
 */
#include "room.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bcast.h"
#include "json.h"

/* ==== 1. The table of rooms ============================================================= */

int rooms_init(struct rooms *rs, size_t max_rooms, size_t max_room_clients, size_t max_message,
               size_t scratch_limit, uint64_t seed, struct conn_table *conns,
               struct presence *presence)
{
    *rs = (struct rooms){
        .max_rooms = max_rooms,
        .seed = seed,
        .max_room_clients = max_room_clients,
        .max_message = max_message,
        .conns = conns,
        .presence = presence,
    };
    /* Buckets: a power of two at least the room count, so chains stay about one long. */
    size_t nbuckets = 1;
    while (nbuckets < max_rooms)
        nbuckets *= 2;
    rs->bucket_mask = nbuckets - 1;
    rs->rooms = calloc(max_rooms, sizeof *rs->rooms); /* untouched pages: address space only */
    rs->free_ids = calloc(max_rooms, sizeof *rs->free_ids);
    rs->buckets = malloc(nbuckets * sizeof *rs->buckets);
    if (rs->rooms == NULL || rs->free_ids == NULL || rs->buckets == NULL) {
        rooms_free(rs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nbuckets; i++)
        rs->buckets[i] = ROOM_NONE;
    buf_init(&rs->scratch, scratch_limit);
    return 0;
}

void rooms_free(struct rooms *rs)
{
    for (size_t i = 0; rs->rooms != NULL && i < rs->nused; i++) {
        free(rs->rooms[i].local);
        free(rs->rooms[i].remote);
    }
    free(rs->rooms);
    free(rs->free_ids);
    free(rs->buckets);
    buf_free(&rs->scratch);
    *rs = (struct rooms){0};
}

/* FNV-1a, started from a random seed. Names come from clients: with a known hash, one client
 * could pick thousands of names in one bucket and make every lookup walk them all. A seeded
 * FNV is no SipHash, but the damage is bounded anyway (a chain is at most --max-rooms long)
 * and the seed keeps collisions from being computed offline. */
static size_t name_hash(const struct rooms *rs, const char *name, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ rs->seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= UINT64_C(1099511628211);
    }
    return (size_t)(h ^ (h >> 32)) & rs->bucket_mask;
}

struct room *rooms_find(const struct rooms *rs, const char *name, size_t len)
{
    for (uint32_t id = rs->buckets[name_hash(rs, name, len)]; id != ROOM_NONE;
         id = rs->rooms[id].next) {
        const struct room *r = &rs->rooms[id];
        if (r->name_len == len && (len == 0 || memcmp(r->name, name, len) == 0))
            return &rs->rooms[id];
    }
    return NULL;
}

struct room *rooms_of(const struct rooms *rs, size_t peer)
{
    uint32_t id = rs->presence->peers[peer].room;
    return rs->presence->peers[peer].is_present && id != PRESENCE_NO_ROOM ? &rs->rooms[id] : NULL;
}

size_t rooms_largest(const struct rooms *rs)
{
    size_t most = 0;
    for (size_t i = 0; i < rs->nused; i++)
        if (rs->rooms[i].is_open && rs->rooms[i].nlocal > most)
            most = rs->rooms[i].nlocal;
    return most;
}

static uint32_t room_id(const struct rooms *rs, const struct room *r)
{
    return (uint32_t)(r - rs->rooms);
}

/* Opens a room (the caller checked that none has this name). NULL at --max-rooms. */
static struct room *room_open(struct rooms *rs, const char *name, size_t len)
{
    uint32_t id;
    if (rs->nfree > 0)
        id = rs->free_ids[--rs->nfree];
    else if (rs->nused < rs->max_rooms)
        id = (uint32_t)rs->nused++;
    else
        return NULL;
    struct room *r = &rs->rooms[id];
    assert(len <= TARGET_ROOM_MAX && !r->is_open);
    if (len > 0) /* the default room's name may come as NULL, 0 */
        memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->name_len = (uint8_t)len;
    r->is_open = true;
    size_t b = name_hash(rs, name, len);
    r->next = rs->buckets[b];
    rs->buckets[b] = id;
    rs->nopen++;
    rs->counters.created++;
    if (rs->listener != NULL && rs->listener->on_open != NULL)
        rs->listener->on_open(rs->listener_ctx, r);
    return r;
}

static void remove_remote(struct rooms *rs, struct room *r, size_t pos);

/* The last local member left: the room is freed at once. Its remote members go with it,
 * silently: nobody here is left to tell, and a node that serves the room no longer needs
 * them (the cluster stops listening to it, on_free). */
static void room_close(struct rooms *rs, struct room *r)
{
    assert(r->is_open && r->nlocal == 0);
    while (r->nremote > 0) {
        size_t index = r->remote[r->nremote - 1];
        remove_remote(rs, r, r->nremote - 1);
        presence_remote_remove(rs->presence, index);
    }
    if (rs->listener != NULL && rs->listener->on_free != NULL)
        rs->listener->on_free(rs->listener_ctx, r);
    uint32_t id = room_id(rs, r);
    uint32_t *link = &rs->buckets[name_hash(rs, r->name, r->name_len)];
    while (*link != id)
        link = &rs->rooms[*link].next;
    *link = r->next;
    free(r->local);
    free(r->remote);
    *r = (struct room){.next = ROOM_NONE};
    rs->free_ids[rs->nfree++] = id;
    rs->nopen--;
    rs->counters.freed++;
}

/* ==== 2. Member lists ==================================================================== */

/* Appends a presence index to one of a room's lists, which doubles when full (from 4): a
 * room of two costs two small allocations, not --max-room-clients entries. */
static int list_add(uint32_t **list, uint32_t *n, uint32_t *cap, uint32_t index)
{
    if (*n == *cap) {
        uint32_t want = *cap == 0 ? 4 : *cap * 2;
        uint32_t *p = realloc(*list, (size_t)want * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        *list = p;
        *cap = want;
    }
    (*list)[(*n)++] = index;
    return 0;
}

/* Removes the entry at pos: the last one moves into the hole (O(1)), and its presence entry
 * learns its new place. A list that falls to a quarter of its capacity shrinks by half, so a
 * room that was once big does not keep its memory. */
static void list_remove(struct presence *p, uint32_t **list, uint32_t *n, uint32_t *cap, size_t pos)
{
    uint32_t last = (*list)[--*n];
    if (pos < *n) {
        (*list)[pos] = last;
        p->peers[last].room_pos = (uint32_t)pos;
    }
    if (*cap > 4 && *n <= *cap / 4) {
        uint32_t *q = realloc(*list, (size_t)(*cap / 2) * sizeof *q);
        if (q != NULL) { /* if shrinking fails, keeping the bigger list is fine */
            *list = q;
            *cap /= 2;
        }
    }
}

static void remove_remote(struct rooms *rs, struct room *r, size_t pos)
{
    struct presence_peer *peer = &rs->presence->peers[r->remote[pos]];
    list_remove(rs->presence, &r->remote, &r->nremote, &r->cap_remote, pos);
    peer->room = PRESENCE_NO_ROOM;
}

/* Frames to every local member of r (but except), counted. */
static void send_room(struct rooms *rs, const struct room *r, const void *p, size_t len,
                      const struct conn *except, uint32_t sender)
{
    struct bcast_result res =
        bcast_list(rs->conns, r->local, r->nlocal, FRAME_OP_TEXT, p, len, except, sender);
    rs->counters.messages_out += res.sent;
    rs->counters.conflated += res.conflated;
}

/* ==== 3. Local members =================================================================== */

int room_enter(struct rooms *rs, struct conn *c, const char *name, size_t len, const char *id,
               unsigned color)
{
    struct room *r = rooms_find(rs, name, len);
    if (r != NULL && r->nlocal >= rs->max_room_clients) {
        rs->counters.refused_full++;
        return ROOM_ERR_FULL;
    }
    bool is_new = r == NULL;
    if (is_new && rs->nopen >= rs->max_rooms) {
        rs->counters.refused_too_many++;
        return ROOM_ERR_TOO_MANY;
    }
    if (is_new && (r = room_open(rs, name, len)) == NULL)
        return ROOM_ERR_TOO_MANY; /* cannot happen: nopen < max_rooms leaves a free id */

    struct presence *p = rs->presence;
    presence_join(p, c->slot, id, color);
    int rc = list_add(&r->local, &r->nlocal, &r->cap_local, c->slot) == 0 ? 0 : ROOM_ERR_NOMEM;
    if (rc == 0) {
        /* The welcome lists the room as it is, the newcomer included (it skips itself). */
        struct presence_roster roster = {
            .room = r->name,
            .room_len = r->name_len,
            .members = {r->local, r->remote},
            .count = {r->nlocal, r->nremote},
        };
        buf_reset(&rs->scratch);
        if (presence_write_welcome(p, c->slot, &roster, &rs->scratch) != 0 ||
            !bcast_one(rs->conns, c, FRAME_OP_TEXT, buf_head(&rs->scratch), buf_size(&rs->scratch)))
            rc = ROOM_ERR_WELCOME;
        if (rc != 0)
            r->nlocal--; /* it was the last entry */
    }
    if (rc != 0) {
        presence_leave(p, c->slot);
        if (r->nlocal == 0)
            room_close(rs, r);
        return rc;
    }
    rs->counters.messages_out++;
    p->peers[c->slot].room = room_id(rs, r);
    p->peers[c->slot].room_pos = r->nlocal - 1;
    rs->counters.joins++;

    buf_reset(&rs->scratch);
    if (presence_write_join(p, c->slot, &rs->scratch) == 0) {
        send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), c, BCAST_NO_CONFLATION);
        if (rs->listener != NULL && rs->listener->on_join != NULL)
            rs->listener->on_join(rs->listener_ctx, r, &p->peers[c->slot], buf_head(&rs->scratch),
                                  buf_size(&rs->scratch));
    }
    return 0;
}

void room_leave(struct rooms *rs, struct conn *c)
{
    struct room *r = rooms_of(rs, c->slot);
    if (r == NULL)
        return;
    struct presence *p = rs->presence;
    list_remove(p, &r->local, &r->nlocal, &r->cap_local, p->peers[c->slot].room_pos);
    p->peers[c->slot].room = PRESENCE_NO_ROOM;
    /* When the whole server stops, everyone gets a close frame instead, and the other nodes
     * one "bye": no leave storm. */
    buf_reset(&rs->scratch);
    if (!rs->is_muted && presence_write_leave(p, c->slot, &rs->scratch) == 0) {
        send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), NULL, BCAST_NO_CONFLATION);
        if (rs->listener != NULL && rs->listener->on_leave != NULL)
            rs->listener->on_leave(rs->listener_ctx, r, &p->peers[c->slot], buf_head(&rs->scratch),
                                   buf_size(&rs->scratch));
    }
    presence_leave(p, c->slot);
    if (r->nlocal == 0)
        room_close(rs, r);
}

/* Keeps msg as the latest state of presence entry `index` and relays it to its room.
 * Presence first: it is both the next newcomer's snapshot and the state a member that fell
 * behind is owed (conflation), whatever its size, so a reader that keeps up with the room's
 * cursors is never dropped because one sender's messages are big. If presence could not
 * keep it (over a budget, out of memory), a reader that is behind skips this one update
 * (there is nothing to owe it) and is not dropped for it (BCAST_UNKEPT). */
static void keep_and_relay(struct rooms *rs, const struct room *r, size_t index, const uint8_t *msg,
                           size_t len)
{
    bool is_kept = presence_update(rs->presence, index, msg, len) == 0;
    uint64_t before = rs->counters.messages_out;
    send_room(rs, r, msg, len, NULL, (uint32_t)index | (is_kept ? 0 : BCAST_UNKEPT));
    uint64_t sent = rs->counters.messages_out - before;
    rs->counters.relayed += sent;
    if (index >= rs->presence->local_slots)
        rs->counters.relayed_remote += sent;
}

int room_message(struct rooms *rs, struct conn *c, const uint8_t *p, size_t len)
{
    struct room *r = rooms_of(rs, c->slot);
    if (r == NULL)
        return 0; /* left already (draining): nothing to relay to */
    const struct presence_peer *me = &rs->presence->peers[c->slot];
    buf_reset(&rs->scratch);
    int rc = json_rewrite(p, len, me->id, me->color, &rs->scratch);
    if (rc < 0)
        return rc;
    keep_and_relay(rs, r, c->slot, buf_head(&rs->scratch), buf_size(&rs->scratch));
    if (rs->listener != NULL && rs->listener->on_message != NULL)
        rs->listener->on_message(rs->listener_ctx, r, me, buf_head(&rs->scratch),
                                 buf_size(&rs->scratch));
    return 0;
}

/* A sender that has left since is skipped (its leave was queued, never conflated); a slot
 * now held by a newcomer yields the newcomer's state, which is exactly what is owed, and a
 * sender now in another room is skipped: it says nothing to this room any more. */
void room_pay_owed(struct rooms *rs, struct conn *c)
{
    uint32_t room = rs->presence->peers[c->slot].room;
    while (buf_size(&c->wbuf) < rs->conns->conflate_mark) {
        long slot = conn_take_owed(rs->conns, c);
        if (slot < 0)
            return;
        const struct presence_peer *peer = &rs->presence->peers[slot];
        if (!peer->is_present || peer->room != room || buf_size(&peer->last) == 0)
            continue;
        if (buf_size(&c->wbuf) + FRAME_HDR_MAX + buf_size(&peer->last) > c->wbuf.limit) {
            conn_owe(rs->conns, c, (uint32_t)slot); /* its own debt must not drop it */
            return;
        }
        if (!bcast_one(rs->conns, c, FRAME_OP_TEXT, buf_head(&peer->last), buf_size(&peer->last)))
            return; /* over --max-buffer: marked closing */
        rs->counters.messages_out++;
    }
}

/* ==== 4. Remote members ================================================================== */

void room_remote_leave(struct rooms *rs, size_t index)
{
    struct presence *p = rs->presence;
    struct room *r = rooms_of(rs, index);
    if (r != NULL) {
        /* A leave built here from its presence entry, never the bytes its node sent: a node
         * relays only what it would have written itself. */
        buf_reset(&rs->scratch);
        if (presence_write_leave(p, index, &rs->scratch) == 0)
            send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), NULL,
                      BCAST_NO_CONFLATION);
        remove_remote(rs, r, p->peers[index].room_pos);
    }
    presence_remote_remove(p, index);
}

long room_remote_join(struct rooms *rs, struct room *r, const char *id, unsigned color,
                      uint16_t tag, bool *is_forged)
{
    struct presence *p = rs->presence;
    *is_forged = false;
    long index = presence_remote_find(p, id);
    /* Ids are per connection: a client never changes node. Only its own node may speak for
     * it; another node's claim is a forgery (or a bug) and changes nothing, so that no room
     * hears a leave caused by a message in another room. */
    if (index >= 0 && p->peers[index].node != tag) {
        *is_forged = true;
        return -1;
    }
    if (index >= 0 && rooms_of(rs, (size_t)index) == r)
        return index;
    if (index >= 0) /* its own node now places it in another room: believe the latest */
        room_remote_leave(rs, (size_t)index);
    /* Ids are random (122 bits): another node never names one of our clients, unless the
     * envelope is forged. Believing it would show our own client twice, or make it "leave". */
    if (presence_is_local(p, id)) {
        *is_forged = true;
        return -1;
    }
    index = presence_remote_add(p, id, color, tag);
    if (index < 0)
        return -1;
    if (list_add(&r->remote, &r->nremote, &r->cap_remote, (uint32_t)index) != 0) {
        presence_remote_remove(p, (size_t)index);
        return -1;
    }
    p->peers[index].room = room_id(rs, r);
    p->peers[index].room_pos = r->nremote - 1;
    buf_reset(&rs->scratch);
    if (presence_write_join(p, (size_t)index, &rs->scratch) == 0)
        send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), NULL, BCAST_NO_CONFLATION);
    return index;
}

/* The checks a local message passes (room_message), for a remote one: at most --max-message
 * plus the server's own members, exactly one JSON object, no reserved "type" (a forged
 * welcome would make the page adopt a new id), and rewritten with the sender and color we
 * hold for that client, so it can only speak for the client the envelope names. An honest
 * node's message is already in that form, and json_rewrite() of its own output gives back
 * the same bytes: messages stay byte for byte equal on every node. The result is in
 * rs->scratch. */
static int check_remote(struct rooms *rs, size_t index, const uint8_t *json, size_t len)
{
    const struct presence_peer *who = &rs->presence->peers[index];
    size_t limit = rs->max_message + JSON_REWRITE_GROWTH; /* what a local one can be */
    if (len > limit)
        return -EMSGSIZE;
    buf_reset(&rs->scratch);
    int rc = json_rewrite(json, len, who->id, who->color, &rs->scratch);
    if (rc == 0 && buf_size(&rs->scratch) > limit) /* grew past it in the rewrite */
        rc = -EMSGSIZE;
    return rc;
}

int room_remote_message(struct rooms *rs, size_t index, const uint8_t *json, size_t len)
{
    struct room *r = rooms_of(rs, index);
    if (r == NULL)
        return 0;
    int rc = check_remote(rs, index, json, len);
    if (rc == 0)
        keep_and_relay(rs, r, index, buf_head(&rs->scratch), buf_size(&rs->scratch));
    return rc;
}

bool room_remote_is_known(struct rooms *rs, size_t index, const uint8_t *json, size_t len)
{
    if (check_remote(rs, index, json, len) != 0)
        return true; /* refused: nothing new to relay */
    const struct buf *last = &rs->presence->peers[index].last;
    return buf_size(last) == buf_size(&rs->scratch) &&
           (buf_size(last) == 0 ||
            memcmp(buf_head(last), buf_head(&rs->scratch), buf_size(last)) == 0);
}
