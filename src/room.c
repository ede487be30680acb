/* room.c: rooms, membership, relay (see room.h).
 *
 * Chapters: 1. the table of rooms, 2. member lists and the activity list, 3. local members,
 * 4. delivery (latest position wins), 5. remote members.
 */
#include "room.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bcast.h"
#include "json.h"
#include "ws.h"

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
    rs->dirty = calloc(max_rooms, sizeof *rs->dirty);
    rs->roster_max = SIZE_MAX;
    if (rs->rooms == NULL || rs->free_ids == NULL || rs->buckets == NULL || rs->dirty == NULL) {
        rooms_free(rs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nbuckets; i++)
        rs->buckets[i] = ROOM_NONE;
    buf_init(&rs->scratch, scratch_limit);
    /* A run is at most what one member may be handed in one flush (conn.h's burst_mark). */
    buf_init(&rs->run_frames, conns->burst_mark);
    buf_init(&rs->run_elems, conns->burst_mark);
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
    free(rs->dirty);
    buf_free(&rs->scratch);
    buf_free(&rs->run_frames);
    buf_free(&rs->run_elems);
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
    r->act_head = r->act_tail = PRESENCE_NO_ROOM;
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
    for (size_t k = 0; r->is_dirty && k < rs->ndirty; k++) {
        if (rs->dirty[k] == id) { /* nothing is owed to members it no longer has */
            rs->dirty[k] = rs->dirty[--rs->ndirty];
            break;
        }
    }
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

/* ==== 2. Member lists and the activity list ============================================== */

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

/* The activity list is doubly linked through the presence entries (O(1) to move a member to
 * the tail), ordered by act_seq, which only grows: so "every entry newer than seen_seq" is
 * a walk back from the tail, and a member that moves again leaves its old place, which is
 * how a newer message replaces an older one for every reader at once. */
static void act_unlink(struct presence *p, struct room *r, uint32_t i)
{
    struct presence_peer *e = &p->peers[i];
    if (e->act_prev != PRESENCE_NO_ROOM)
        p->peers[e->act_prev].act_next = e->act_next;
    else
        r->act_head = e->act_next;
    if (e->act_next != PRESENCE_NO_ROOM)
        p->peers[e->act_next].act_prev = e->act_prev;
    else
        r->act_tail = e->act_prev;
    e->act_prev = e->act_next = PRESENCE_NO_ROOM;
}

/* Member i was active (it is announced now, if it was not): to the tail, with a new count. */
static void act_touch(struct presence *p, struct room *r, uint32_t i)
{
    struct presence_peer *e = &p->peers[i];
    if (e->is_announced) {
        act_unlink(p, r, i);
    } else {
        e->is_announced = true;
        r->nannounced++;
    }
    e->act_seq = ++r->act_seq;
    e->act_prev = r->act_tail;
    if (r->act_tail != PRESENCE_NO_ROOM)
        p->peers[r->act_tail].act_next = i;
    else
        r->act_head = i;
    r->act_tail = i;
}

/* Member i leaves the list (it is leaving the room). */
static void act_forget(struct presence *p, struct room *r, uint32_t i)
{
    if (!p->peers[i].is_announced)
        return;
    act_unlink(p, r, i);
    p->peers[i].is_announced = false;
    r->nannounced--;
}

/* The oldest entry newer than seq, or PRESENCE_NO_ROOM: found from the tail, so the cost is
 * the number of entries a reader is owed, not the room's size. */
static uint32_t act_after(const struct presence *p, const struct room *r, uint64_t seq)
{
    uint32_t first = PRESENCE_NO_ROOM;
    for (uint32_t i = r->act_tail; i != PRESENCE_NO_ROOM && p->peers[i].act_seq > seq;
         i = p->peers[i].act_prev)
        first = i;
    return first;
}

/* The room has something for its members at the next rooms_flush(). */
static void mark_dirty(struct rooms *rs, struct room *r)
{
    if (r->is_dirty)
        return;
    r->is_dirty = true;
    rs->dirty[rs->ndirty++] = room_id(rs, r); /* once per open room: fits in max_rooms */
}

/* A server message to every local member of r (but except), counted. */
static void send_room(struct rooms *rs, const struct room *r, const void *p, size_t len,
                      const struct conn *except)
{
    rs->counters.messages_out += bcast_list(rs->conns, r->local, r->nlocal, p, len, except);
}

/* Members of the room, on every node: its size, the "count". */
static size_t room_size(const struct room *r)
{
    return (size_t)r->nlocal + r->nremote;
}

/* ==== 3. Local members =================================================================== */

/* The join of presence entry `index`, in rs->scratch: to the room's local members (all but
 * `except`) if the member is announced now, and, for one of ours, always to the listener,
 * so that the other nodes know it is there even when nobody is told. Returns whether it
 * was announced. */
static bool announce_join(struct rooms *rs, struct room *r, size_t index, const struct conn *except)
{
    struct presence *p = rs->presence;
    /* Above --roster-max, an arrival is not worth a message to everyone: it is announced by
     * its first move instead (docs/protocol.md, "Big rooms"). */
    bool is_announced = room_size(r) <= rs->roster_max;
    if (is_announced)
        act_touch(p, r, (uint32_t)index);
    buf_reset(&rs->scratch);
    if (presence_write_join(p, index, &rs->scratch) == 0) {
        if (is_announced)
            send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), except);
        bool is_local = index < p->local_slots; /* other nodes' members are theirs to tell */
        if (is_local && rs->listener != NULL && rs->listener->on_join != NULL)
            rs->listener->on_join(rs->listener_ctx, r, &p->peers[index], buf_head(&rs->scratch),
                                  buf_size(&rs->scratch));
    }
    mark_dirty(rs, r); /* its size changed: wsrelay.batch members get a count */
    return is_announced;
}

/* The welcome for local member c, just added to r's list: the whole room while every other
 * member is announced and they are at most --roster-max, else the --roster-max most
 * recently active, with the room's size. */
static int write_welcome(struct rooms *rs, struct room *r, struct conn *c)
{
    size_t total = room_size(r);
    bool is_whole = r->nannounced == total - 1 && total - 1 <= rs->roster_max;
    struct presence_roster roster = {
        .room = r->name,
        .room_len = r->name_len,
        .members = {r->local, r->remote},
        .count = {r->nlocal, r->nremote},
        .recent = is_whole ? PRESENCE_NO_ROOM : r->act_tail,
        .max_peers = rs->roster_max,
        .total = total,
        .with_count = conn_is_batch(c),
    };
    buf_reset(&rs->scratch);
    if (presence_write_welcome(rs->presence, c->slot, &roster, &rs->scratch) != 0 ||
        !bcast_one(rs->conns, c, FRAME_OP_TEXT, buf_head(&rs->scratch), buf_size(&rs->scratch)))
        return ROOM_ERR_WELCOME;
    c->ws.count_sent = (uint32_t)total;
    return 0;
}

int room_enter(struct rooms *rs, struct conn *c, const char *name, size_t len, const char *id,
               unsigned color, const char *user_name)
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
    int rc = (user_name == NULL || presence_set_name(p, c->slot, user_name) == 0) &&
                     list_add(&r->local, &r->nlocal, &r->cap_local, c->slot) == 0
                 ? 0
                 : ROOM_ERR_NOMEM;
    if (rc == 0) {
        /* The welcome lists the room as it is, the newcomer included (it skips itself). */
        rc = write_welcome(rs, r, c);
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
    announce_join(rs, r, c->slot, c);
    /* The welcome holds every latest message: it is owed nothing older than now. */
    c->ws.seen_seq = r->act_seq;
    c->ws.is_owed = false;
    return 0;
}

/* Presence entry `index` leaves r's activity list; its leave (in rs->scratch, unless muted)
 * goes to the local members if it was announced: nobody else knows it. Returns whether a
 * leave was written. */
static bool announce_leave(struct rooms *rs, struct room *r, size_t index)
{
    struct presence *p = rs->presence;
    bool was_announced = p->peers[index].is_announced;
    act_forget(p, r, (uint32_t)index);
    buf_reset(&rs->scratch);
    if (rs->is_muted || presence_write_leave(p, index, &rs->scratch) != 0)
        return false;
    if (was_announced)
        send_room(rs, r, buf_head(&rs->scratch), buf_size(&rs->scratch), NULL);
    return true;
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
    if (announce_leave(rs, r, c->slot) && rs->listener != NULL && rs->listener->on_leave != NULL)
        rs->listener->on_leave(rs->listener_ctx, r, &p->peers[c->slot], buf_head(&rs->scratch),
                               buf_size(&rs->scratch));
    presence_leave(p, c->slot);
    if (r->nlocal == 0)
        room_close(rs, r);
    else
        mark_dirty(rs, r);
}

/* Keeps msg as the latest of presence entry `index` and moves it to the tail of the room's
 * activity list: the next rooms_flush() hands it to every member, replacing any older one
 * still owed. If presence could not keep it (over a budget, out of memory), there is nothing
 * to hand out later: it is queued now to the members that keep up and have room, and the
 * others skip it (never dropped for it); the older one is gone from presence too, so no
 * member ever gets a stale message after it. */
static void keep_and_relay(struct rooms *rs, struct room *r, size_t index, const uint8_t *msg,
                           size_t len)
{
    struct presence *p = rs->presence;
    const struct presence_peer *peer = &p->peers[index];
    /* Its previous message was still owed to someone: this one replaces it (conflation). */
    if (peer->is_announced && buf_size(&peer->last) > 0 && peer->act_seq > r->min_seen)
        rs->counters.conflated++;
    bool is_kept = presence_update(p, index, msg, len) == 0;
    act_touch(p, r, (uint32_t)index);
    mark_dirty(rs, r);
    if (is_kept)
        return;
    size_t sent = 0;
    for (size_t i = 0; i < r->nlocal; i++) {
        struct conn *c = &rs->conns->conns[r->local[i]];
        sent += c->phase == CONN_WS && !c->is_behind && bcast_try(rs->conns, c, msg, len);
    }
    rs->counters.messages_out += sent;
    rs->counters.relayed += sent;
    if (index >= p->local_slots)
        rs->counters.relayed_remote += sent;
}

int room_message(struct rooms *rs, struct conn *c, const uint8_t *p, size_t len)
{
    struct room *r = rooms_of(rs, c->slot);
    if (r == NULL)
        return 0; /* left already (draining): nothing to relay to */
    const struct presence_peer *me = &rs->presence->peers[c->slot];
    buf_reset(&rs->scratch);
    int rc = json_rewrite_named(p, len, me->id, me->color, me->name, &rs->scratch);
    if (rc < 0)
        return rc;
    keep_and_relay(rs, r, c->slot, buf_head(&rs->scratch), buf_size(&rs->scratch));
    return 0;
}

/* ==== 4. Delivery: latest position wins ================================================== */

/* Counts one delivered message of presence entry `index`. */
static void count_relayed(struct rooms *rs, size_t index, size_t n)
{
    rs->counters.messages_out += n;
    rs->counters.relayed += n;
    if (index >= rs->presence->local_slots)
        rs->counters.relayed_remote += n;
}

/* Hands c every entry of r newer than its seen_seq, oldest first, while its buffer takes
 * them (bcast_try): the rest stays owed (is_owed) for room_catch_up(). Entries without a
 * message (announced by a join, or whose message presence could not keep) are passed over.
 * Each one's own count moves seen_seq, so a reader stopped half-way resumes exactly there;
 * an entry that moves again meanwhile goes to the tail and is still ahead of it. */
static void deliver_since(struct rooms *rs, struct room *r, struct conn *c)
{
    const struct presence *p = rs->presence;
    for (uint32_t i = act_after(p, r, c->ws.seen_seq); i != PRESENCE_NO_ROOM;
         i = p->peers[i].act_next) {
        const struct presence_peer *e = &p->peers[i];
        if (buf_size(&e->last) > 0) {
            if (!bcast_try(rs->conns, c, buf_head(&e->last), buf_size(&e->last))) {
                c->ws.is_owed = true;
                return;
            }
            count_relayed(rs, i, 1);
        }
        c->ws.seen_seq = e->act_seq;
    }
    c->ws.seen_seq = r->act_seq;
    c->ws.is_owed = false;
}

/* The room's new entries (newer than flushed_seq) in both wire forms, once for all its
 * members, and published to the cluster (only this node's members: the others' nodes
 * publish theirs). Returns false if the run outgrew its buffers: members then take the
 * entries one by one (deliver_since), which stops at each one's burst mark. */
static bool build_run(struct rooms *rs, struct room *r, size_t *n, size_t *nremote)
{
    const struct presence *p = rs->presence;
    bool is_whole = true;
    *n = *nremote = 0;
    buf_reset(&rs->run_frames);
    buf_reset(&rs->run_elems);
    for (uint32_t i = act_after(p, r, r->flushed_seq); i != PRESENCE_NO_ROOM;
         i = p->peers[i].act_next) {
        const struct presence_peer *e = &p->peers[i];
        size_t len = buf_size(&e->last);
        if (len == 0)
            continue;
        if (i < p->local_slots && rs->listener != NULL && rs->listener->on_message != NULL)
            rs->listener->on_message(rs->listener_ctx, r, e, buf_head(&e->last), len);
        if (!is_whole)
            continue;
        uint8_t hdr[FRAME_HDR_MAX];
        size_t hdr_len = frame_encode_hdr(hdr, true, FRAME_OP_TEXT, len);
        bool is_first = buf_size(&rs->run_elems) == 0;
        if (ws_append_frame(&rs->run_frames, hdr, hdr_len, buf_head(&e->last), len) != 0 ||
            (!is_first && buf_append(&rs->run_elems, ",", 1) != 0) ||
            buf_append(&rs->run_elems, buf_head(&e->last), len) != 0) {
            is_whole = false;
            continue;
        }
        (*n)++;
        *nremote += i >= p->local_slots;
    }
    return is_whole;
}

/* One room's flush: a count to wsrelay.batch members whose room changed size, then to each
 * member that keeps up its news: the shared run when it was given everything up to the
 * last flush (the usual case: one copy of bytes built once), else its own walk. */
static void flush_room(struct rooms *rs, struct room *r, uint64_t now_ms)
{
    size_t n = 0, nremote = 0;
    bool has_news = r->act_seq > r->flushed_seq;
    bool has_run = has_news && build_run(rs, r, &n, &nremote);
    size_t total = room_size(r);
    uint64_t min_seen = r->act_seq;
    for (size_t k = 0; k < r->nlocal; k++) {
        struct conn *c = &rs->conns->conns[r->local[k]];
        if (c->phase != CONN_WS)
            continue;
        if (conn_is_batch(c) && c->ws.count_sent != total) {
            buf_reset(&rs->scratch);
            if (presence_write_count(total, &rs->scratch) == 0 &&
                bcast_one(rs->conns, c, FRAME_OP_TEXT, buf_head(&rs->scratch),
                          buf_size(&rs->scratch)))
                rs->counters.messages_out++;
            c->ws.count_sent = (uint32_t)total;
        }
        if (c->phase == CONN_WS && c->ws.seen_seq < r->act_seq) {
            if (c->is_behind) {
                c->ws.is_owed = true; /* it is paid when its socket drains (room_catch_up) */
            } else if (has_run && c->ws.seen_seq == r->flushed_seq &&
                       bcast_try_run(rs->conns, c, buf_head(&rs->run_frames),
                                     buf_size(&rs->run_frames), buf_head(&rs->run_elems),
                                     buf_size(&rs->run_elems))) {
                c->ws.seen_seq = r->act_seq;
                c->ws.is_owed = false;
                rs->counters.messages_out += n;
                rs->counters.relayed += n;
                rs->counters.relayed_remote += nremote;
            } else {
                deliver_since(rs, r, c);
            }
        }
        if (c->ws.seen_seq < min_seen)
            min_seen = c->ws.seen_seq;
    }
    r->min_seen = min_seen;
    r->flushed_seq = r->act_seq;
    r->flushed_ms = now_ms;
}

void rooms_flush(struct rooms *rs, uint64_t now_ms)
{
    size_t keep = 0;
    for (size_t k = 0; k < rs->ndirty; k++) {
        struct room *r = &rs->rooms[rs->dirty[k]];
        if (rs->send_interval_ms > 0 && now_ms < r->flushed_ms + rs->send_interval_ms) {
            rs->dirty[keep++] = rs->dirty[k]; /* paced: collects until its interval is over */
            continue;
        }
        r->is_dirty = false;
        flush_room(rs, r, now_ms);
    }
    rs->ndirty = keep;
}

int rooms_next_flush_ms(const struct rooms *rs, uint64_t now_ms)
{
    if (rs->ndirty == 0)
        return -1;
    uint64_t soonest = UINT64_MAX;
    for (size_t k = 0; k < rs->ndirty; k++) {
        uint64_t due = rs->rooms[rs->dirty[k]].flushed_ms + rs->send_interval_ms;
        if (due < soonest)
            soonest = due;
    }
    return soonest <= now_ms ? 0 : (int)(soonest - now_ms); /* at most --send-interval */
}

void room_catch_up(struct rooms *rs, struct conn *c)
{
    struct room *r = rooms_of(rs, c->slot);
    if (r == NULL) {
        c->ws.is_owed = false;
        return;
    }
    deliver_since(rs, r, c);
}

/* ==== 5. Remote members ================================================================== */

void room_remote_leave(struct rooms *rs, size_t index)
{
    struct presence *p = rs->presence;
    struct room *r = rooms_of(rs, index);
    if (r != NULL) {
        /* A leave built here from its presence entry, never the bytes its node sent: a node
         * relays only what it would have written itself. */
        announce_leave(rs, r, index);
        remove_remote(rs, r, p->peers[index].room_pos);
        mark_dirty(rs, r);
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
    announce_join(rs, r, (size_t)index, NULL);
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
