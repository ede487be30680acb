/* presence.h: who is connected, and the server's own messages about them.
 *
 * Owns: for each connection slot on /ws, its id, its color and a copy of the last message
 * relayed for it (bounded: last_max bytes, the largest relayed message), and the JSON of the
 * three messages the server writes itself: welcome, join and leave (see docs/protocol.md).
 * The last message is two things: the snapshot a newcomer's welcome lists (only if it is at
 * most PRESENCE_STATE_MAX bytes, so a welcome stays small), and the state a reader that fell
 * behind is owed (conflation, bcast.h), whatever its size.
 * Does not own: connections or sockets (conn.c), sending (bcast.c).
 * Pure: no I/O; allocation only through struct buf with a limit.
 *
 * Memory bound: at most max_slots * (last_max + sizeof(struct presence_peer)). A cursor page
 * keeps about 100 bytes per client (0.1 MiB at 1024 clients); only clients whose latest
 * message is large hold more, up to last_max each (16 MiB if all 1024 clients of a default
 * server send 16 KiB messages), and remote clients' big ones together at most as much
 * again (remote_big_budget). A welcome is at most about
 * (max_slots - 1) * (PRESENCE_STATE_MAX + 1) bytes, under the default --max-buffer; with
 * more slots or a smaller buffer it is cut at welcome_max.
 */
#ifndef WSRELAY_PRESENCE_H
#define WSRELAY_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The largest last message a welcome (or a cluster state) lists. A cursor message is about
 * 100 bytes; a longer one is still relayed and kept (for conflation), but the snapshot then
 * lists only the sender's id and color. */
#define PRESENCE_STATE_MAX 512
/* A UUID in its 36-character text form, plus the NUL. */
#define PRESENCE_ID_SIZE 37

#define PRESENCE_NO_ROOM UINT32_MAX

struct presence_peer {
    bool is_present;
    uint16_t node; /* 0: a client of this server; n: a client of cluster node n - 1 */
    /* The room it is in (room.c's room id) and its place in that room's member list, kept
     * by room.c; PRESENCE_NO_ROOM while it is in none. */
    uint32_t room, room_pos;
    /* Its place in its room's activity list (room.c keeps it): the members announced to the
     * room (docs/protocol.md, "Big rooms"), least recently active first. act_seq is the
     * room's activity count when it last moved or was announced. */
    bool is_announced;
    uint32_t act_prev, act_next; /* presence indices, or PRESENCE_NO_ROOM at either end */
    uint64_t act_seq;
    char id[PRESENCE_ID_SIZE];
    unsigned color;  /* hue, 0..359 */
    char *name;      /* a room token's name as a JSON string, quotes included (token.h), or
                      * NULL: the server stamps it beside id and color. Heap, owned here */
    struct buf last; /* last relayed message, limit last_max; empty if none */
};

/* Entries [0, local_slots) are this server's connection slots; [local_slots, max_slots) hold
 * clients of other nodes in a cluster (issue 5), found by id through a small hash table. An
 * entry's index is its "peer index": a connection slot, or a remote client's place. */
struct presence {
    struct presence_peer *peers; /* max_slots of them */
    size_t max_slots;            /* local_slots + remote slots */
    size_t local_slots;
    uint32_t *map;         /* open addressing: id -> remote index + 1 (0: empty) */
    size_t map_mask;       /* map has map_mask + 1 entries, a power of two, at least 2x remote */
    uint32_t *free_remote; /* released remote indices, reused first */
    size_t nfree_remote, remote_used;
    size_t welcome_max; /* the most bytes one welcome may take; SIZE_MAX after init */
    size_t last_max;    /* the largest last message kept: the largest relayed message */
    /* Remote entries' last messages over PRESENCE_STATE_MAX, in bytes, and their cap:
     * local_slots * last_max, what local clients may hold, so a hostile publisher inventing
     * thousands of remote clients with big messages cannot make a node hold more. */
    size_t remote_big_used, remote_big_budget;
};

/* Allocates local_slots + remote_slots empty peers (remote_slots is 0 for a single node);
 * each keeps a last message of up to last_max bytes (at least PRESENCE_STATE_MAX; the server
 * passes the largest message it relays). Returns 0 or -ENOMEM. Untouched entries cost
 * address space only. */
int presence_init(struct presence *p, size_t local_slots, size_t remote_slots, size_t last_max);
void presence_free(struct presence *p);

/* Slot `slot` is now a /ws client with this id and color (its last message is empty). */
void presence_join(struct presence *p, size_t slot, const char *id, unsigned color);

/* Gives the slot a name, the JSON string (quotes included, at most JSON_NAME_MAX bytes)
 * that welcome, join and a bare peer then carry as "name" after "color". Call after
 * presence_join(), which forgets any name. Returns 0 or -ENOMEM. */
int presence_set_name(struct presence *p, size_t slot, const char *name);

/* Remembers msg[0..len), the exact text relayed for that slot (already rewritten). Returns 0
 * if kept. If not, the slot's last message is emptied (so a stale position never outlives a
 * newer one) and the return says why: -EMSGSIZE over last_max; -ENOBUFS for a remote entry
 * whose message over PRESENCE_STATE_MAX would pass remote_big_budget; -ENOMEM. */
int presence_update(struct presence *p, size_t slot, const uint8_t *msg, size_t len);

/* The slot is empty again; its memory is released. */
void presence_leave(struct presence *p, size_t slot);

/* A client of another node, by id (a UUID: 36 characters). presence_remote_find() returns its
 * peer index or -1. presence_remote_add() makes it present (or, if it already is, updates
 * its color and node) and returns its index, or -1 when every remote place is taken.
 * presence_remote_remove() forgets it (call presence_write_leave() first if you need its
 * leave). */
long presence_remote_find(const struct presence *p, const char *id);
/* Whether a local slot holds this id: a linear scan, for the rare check that a remote
 * client's id is not one of ours (a forged envelope on the Redis channel). */
bool presence_is_local(const struct presence *p, const char *id);
long presence_remote_add(struct presence *p, const char *id, unsigned color, uint16_t node);
void presence_remote_remove(struct presence *p, size_t index);

/* Whether a peer's last message goes into snapshots (welcome, cluster state): it has one,
 * of at most PRESENCE_STATE_MAX bytes. */
bool presence_has_snapshot(const struct presence_peer *peer);

/* How many slots are present. */
size_t presence_count(const struct presence *p);

/* The room a welcome describes: its name (unreserved characters only, target.h), its size,
 * and whom to list. Either every member, from the room's two member lists (this server's
 * clients and other nodes'), in their order: when `recent` is PRESENCE_NO_ROOM. Or the
 * announced members from `recent`, the most recently active, backwards along act_prev:
 * the summary of a room above --roster-max. At most max_peers either way. */
struct presence_roster {
    const char *room;
    size_t room_len;
    const uint32_t *members[2];
    size_t count[2];
    uint32_t recent;  /* PRESENCE_NO_ROOM: list members[]; else the newest of the activity list */
    size_t max_peers; /* list at most this many peers */
    size_t total;     /* members of the room, the newcomer included: the "count" */
    bool with_count;  /* say "count" even when every other member is listed (wsrelay.batch) */
};

/* Appends {"type":"welcome","id":"<id>","color":<c>,"room":"<name>","peers":[...]} for slot
 * `self`, where peers holds, for each other present member the roster lists, its last
 * relayed message or, if it has sent none (or its last is over PRESENCE_STATE_MAX),
 * {"sender":"<id>","color":<c>}. A named slot (presence_set_name) has ,"name":<name> after
 * its color, in its welcome and as a bare peer. Peers that would take the message past
 * p->welcome_max bytes are left out (the server sets it from --max-buffer, so a welcome
 * always fits the newcomer's buffer). When fewer than total - 1 peers are listed, or
 * with_count, ,"count":N follows the peers. Returns 0, or -ENOBUFS / -ENOMEM (out unchanged). */
int presence_write_welcome(const struct presence *p, size_t self,
                           const struct presence_roster *roster, struct buf *out);

/* Appends {"type":"count","count":<n>}. Same returns. */
int presence_write_count(size_t n, struct buf *out);

/* Appends {"type":"join","sender":"<id>","color":<c>} for slot, with ,"name":<name> after
 * the color if it has one. Same returns. */
int presence_write_join(const struct presence *p, size_t slot, struct buf *out);

/* Appends {"type":"leave","sender":"<id>"} for slot (call before presence_leave()).
 * Same returns. */
int presence_write_leave(const struct presence *p, size_t slot, struct buf *out);

#endif
