/* room.h: rooms, their members, and relaying within a room (issue 11).
 *
 * Owns: the table of open rooms (by name, a room is opened by its first member and freed as
 * its last local member leaves), each room's member lists (this server's clients, and other
 * nodes' clients in a cluster), the --max-rooms and --max-room-clients rules, and everything
 * a member's arrival, message and departure sends: the welcome to it, the join, relayed
 * message and leave to the others of its room, and the latest state owed to a reader that fell
 * behind (conflation, bcast.h). A member never receives a byte caused by another room.
 * Does not own: connections (conn.c), sockets or closing them (conn_io.c: a refused member
 * is told by the caller), identities (the caller makes them), or the cluster: joins,
 * messages, leaves and rooms opening and closing are reported through struct
 * room_listener, which cluster_sync.c implements.
 * Pure: no I/O, no clock, no logging; memory through calloc and struct buf with limits.
 *
 *     rooms ──name──▶ room { "doc-42": local [3, 9, 4]  remote [1030, 1101] }
 *                       │                │                  │
 *                       │     conn slots = presence entries   presence entries of other nodes
 *                       └─ freed when local is empty (its remote members are forgotten: the
 *                          node no longer serves the room, so nobody here needs them)
 *
 * Memory: the table takes max_rooms * sizeof(struct room) of address space at start, touched
 * only as rooms open; a room's member lists grow by doubling, so a room costs about
 * sizeof(struct room) plus 4 bytes per member, in lists that double when full and halve
 * at a quarter full (so at most 4 times that) (docs/security.md has the
 * measured figure).
 */
#ifndef WSRELAY_ROOM_H
#define WSRELAY_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "presence.h"
#include "target.h"

#define ROOM_NONE UINT32_MAX

/* The close codes of a refused member (docs/protocol.md): in RFC 6455 §7.4.2's range for
 * private use, so the page can tell the user why (a browser cannot read an HTTP status). */
enum room_close {
    ROOM_CLOSE_FULL = 4001,     /* "room is full": --max-room-clients */
    ROOM_CLOSE_TOO_MANY = 4002, /* "too many rooms": --max-rooms */
};

enum room_err {
    ROOM_ERR_FULL = -1,     /* the room has --max-room-clients local members */
    ROOM_ERR_TOO_MANY = -2, /* --max-rooms rooms are open */
    ROOM_ERR_NOMEM = -3,    /* a member list could not grow */
    ROOM_ERR_WELCOME = -4,  /* the welcome could not be written (over --max-buffer) */
};

struct room {
    char name[TARGET_ROOM_MAX + 1]; /* "" is the default room */
    uint8_t name_len;
    bool is_open;
    bool is_dirty;            /* in rs->dirty: something to hand its members at the next flush */
    uint32_t next;            /* the next room in its hash bucket, or ROOM_NONE */
    uint32_t *local, *remote; /* presence indices (local ones are also conn slots) */
    uint32_t nlocal, nremote, cap_local, cap_remote;
    /* The activity list (presence_peer's act_*): announced members, least recently active
     * first, each holding its latest message in presence. */
    uint32_t act_head, act_tail, nannounced;
    uint64_t act_seq;     /* activity count: one more per message kept or member announced */
    uint64_t flushed_seq; /* entries up to here were handed to every member keeping up */
    uint64_t min_seen;    /* the least seen_seq of its members at the last flush */
    uint64_t flushed_ms;  /* when that flush was: --send-interval counts from it */
};

/* What a room reports to whoever listens (the cluster). Every callback may be NULL. The
 * JSON given is exactly what this server sent its own members. */
struct room_listener {
    void (*on_open)(void *ctx, const struct room *r); /* its first local member arrived */
    void (*on_free)(void *ctx, const struct room *r); /* its last local member left */
    void (*on_join)(void *ctx, const struct room *r, const struct presence_peer *who,
                    const void *json, size_t len);
    void (*on_message)(void *ctx, const struct room *r, const struct presence_peer *who,
                       const void *json, size_t len);
    void (*on_leave)(void *ctx, const struct room *r, const struct presence_peer *who,
                     const void *json, size_t len);
};

/* What rooms did, for /metrics. */
struct room_counters {
    uint64_t joins;          /* local clients that entered a room */
    uint64_t created, freed; /* rooms opened and freed */
    uint64_t refused_full, refused_too_many;
    uint64_t messages_out;   /* frames queued to members */
    uint64_t relayed;        /* of those, members' messages (cursor updates) ... */
    uint64_t relayed_remote; /* ... and of those, other nodes' members' */
    uint64_t conflated;      /* messages that replaced one some member had not been given */
};

struct rooms {
    struct room *rooms; /* max_rooms entries; [0, nused) were ever used */
    size_t max_rooms, nused, nopen;
    uint32_t *free_ids; /* freed room ids, reused first */
    size_t nfree;
    uint32_t *buckets; /* name hash -> first room id, or ROOM_NONE */
    size_t bucket_mask;
    uint64_t seed; /* keys the name hash, so names that collide cannot be precomputed */
    size_t max_room_clients;
    size_t max_message; /* the largest message a member may send (--max-message) */

    struct conn_table *conns;
    struct presence *presence;
    struct buf scratch; /* one message being built or rewritten */
    const struct room_listener *listener;
    void *listener_ctx;
    bool is_muted; /* the server is stopping: leaves are not announced */
    /* Set after rooms_init (defaults: no summary, no pacing): --roster-max and
     * --send-interval. */
    size_t roster_max;
    uint64_t send_interval_ms;
    uint32_t *dirty; /* ids of rooms with is_dirty set */
    size_t ndirty;
    /* A room's new entries in both wire forms, built once per flush for every member that
     * keeps up: complete frames (seed clients), and JSON values joined by commas
     * (wsrelay.batch clients). */
    struct buf run_frames, run_elems;
    struct room_counters counters;
};

/* Allocates the table. max_message is --max-message; scratch_limit bounds a built message
 * (a welcome: --max-buffer). seed should be random (getrandom). Returns 0 or -ENOMEM. */
int rooms_init(struct rooms *rs, size_t max_rooms, size_t max_room_clients, size_t max_message,
               size_t scratch_limit, uint64_t seed, struct conn_table *conns,
               struct presence *presence);

/* Frees every room and the table (members are not told: the server is exiting). */
void rooms_free(struct rooms *rs);

/* The open room with this name, or NULL. */
struct room *rooms_find(const struct rooms *rs, const char *name, size_t len);

/* The room a presence entry is in, or NULL. */
struct room *rooms_of(const struct rooms *rs, size_t peer);

/* Local members of the largest open room (for /metrics: O(rooms open)). */
size_t rooms_largest(const struct rooms *rs);

/* A local client (a /ws connection, c->slot) with this id and color, and the name its room
 * token gave it (a JSON string, presence_set_name(); NULL: none), enters the room named
 * name[0..len) (already checked by target.h), which is opened if it is not: it gets a
 * welcome listing the room, the room's other members get its join. Returns 0; or a negative
 * enum room_err, and then nothing changed: the caller closes the connection (ROOM_ERR_FULL
 * and ROOM_ERR_TOO_MANY with enum room_close's codes). With ROOM_ERR_WELCOME the connection
 * may already be marked closing (bcast_one). */
int room_enter(struct rooms *rs, struct conn *c, const char *name, size_t len, const char *id,
               unsigned color, const char *user_name);

/* A local client leaves its room: the others get its leave (unless muted), and an emptied
 * room is freed at once. Idempotent: a client in no room is left alone. */
void room_leave(struct rooms *rs, struct conn *c);

/* A text message from a local member: rewritten with its sender and color, and its name if
 * it has one (json_rewrite_named()), kept in
 * presence as its latest, to be delivered to every member of its room (the sender included)
 * and published by the next rooms_flush(). Returns 0, or the
 * negative json.h error that refused it (the caller fails the connection with
 * json_err_close_code()). */
int room_message(struct rooms *rs, struct conn *c, const uint8_t *p, size_t len);

/* ---- Delivery: latest position wins (docs/protocol.md) ------------------------------------
 *
 * A member's message is not queued to anyone when it arrives: it replaces the member's
 * latest in presence and moves the member to the tail of its room's activity list. Before
 * the loop sleeps, rooms_flush() hands each member of each room with news every entry newer
 * than what it was given (its seen_seq), oldest first, and publishes the room's local news
 * to the cluster: so between two writes a client is owed at most one message per sender,
 * always the latest, and several messages read in one pass cost one delivery. Server
 * messages (welcome, join, leave) are queued at once, never skipped; a member's message
 * never precedes its join nor follows its leave (the leave removes its entry). */

/* Hands out what each room with news owes its members (rooms whose --send-interval has not
 * passed since their last flush wait). Members that are behind, or whose buffer reaches its
 * burst mark, keep the rest owed (room_catch_up). */
void rooms_flush(struct rooms *rs, uint64_t now_ms);

/* How long the loop may sleep before rooms_flush() has work: -1 (nothing waits), 0 (now),
 * or the milliseconds until the next paced room is due. */
int rooms_next_flush_ms(const struct rooms *rs, uint64_t now_ms);

/* A reader that fell behind has caught up below the conflation mark: queue every entry it
 * is owed, oldest first, until it is behind again. */
void room_catch_up(struct rooms *rs, struct conn *c);

/* ---- Other nodes' clients (cluster_sync.c) ----------------------------------------------- */

/* A client of node `tag` (cluster.h's node index + 1) in room r: made present (a new one's
 * join, built here, goes to r's local members; one its own node now places in another room
 * moves, and has left the old one even if -1 follows). Returns its presence index; -1 if
 * every remote place is taken or a list cannot grow; -1 with *is_forged set if the id is one
 * of our own clients or a client another node has. */
long room_remote_join(struct rooms *rs, struct room *r, const char *id, unsigned color,
                      uint16_t tag, bool *is_forged);

/* A message from remote member `index`: checked as a local one would be (at most
 * --max-message plus the server's fields, one JSON object, no reserved type) and rewritten
 * with the sender and color we hold for it, kept, and relayed to its room. Returns 0, or
 * -EMSGSIZE (too big: the nodes' limits differ) or another negative json.h error. */
int room_remote_message(struct rooms *rs, size_t index, const uint8_t *json, size_t len);

/* Whether json[0..len), checked and rewritten as room_remote_message() would, equals what
 * we hold for remote member `index` (a state repeating a position we have). */
bool room_remote_is_known(struct rooms *rs, size_t index, const uint8_t *json, size_t len);

/* A remote member leaves: a leave, built here, goes to its room's local members. */
void room_remote_leave(struct rooms *rs, size_t index);

#endif
