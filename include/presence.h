/* presence.h: who is in the room, and the server's own messages about it.
 *
 * Owns: for each connection slot on /ws, its id, its color and a copy of the last message
 * relayed for it (bounded: PRESENCE_STATE_MAX bytes), and the JSON of the three messages the
 * server writes itself: welcome, join and leave (see docs/protocol.md).
 * Does not own: connections or sockets (conn.c), sending (bcast.c).
 * Pure: no I/O; allocation only through struct buf with a limit.
 *
 * Memory bound: at most max_slots * (PRESENCE_STATE_MAX + sizeof(struct presence_peer)).
 * With the defaults (1024 slots) that is about 0.6 MiB, and a welcome is at most about
 * (max_slots - 1) * (PRESENCE_STATE_MAX + 1) bytes, under the default --max-buffer; with
 * more slots or a smaller buffer it is cut at welcome_max.
 */
#ifndef WSRELAY_PRESENCE_H
#define WSRELAY_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The largest message remembered per client for the welcome snapshot. A cursor message is
 * about 100 bytes; a longer message is still relayed, but the snapshot then lists only the
 * sender's id and color. */
#define PRESENCE_STATE_MAX 512
/* A UUID in its 36-character text form, plus the NUL. */
#define PRESENCE_ID_SIZE 37

struct presence_peer {
    bool is_present;
    char id[PRESENCE_ID_SIZE];
    unsigned color;  /* hue, 0..359 */
    struct buf last; /* last relayed message, limit PRESENCE_STATE_MAX; empty if none */
};

struct presence {
    struct presence_peer *peers; /* one per slot */
    size_t max_slots;
    size_t welcome_max; /* the most bytes one welcome may take; SIZE_MAX after init */
};

/* Allocates max_slots empty peers. Returns 0 or -ENOMEM. */
int presence_init(struct presence *p, size_t max_slots);
void presence_free(struct presence *p);

/* Slot `slot` is now a /ws client with this id and color (its last message is empty). */
void presence_join(struct presence *p, size_t slot, const char *id, unsigned color);

/* Remembers msg[0..len), the exact text relayed for that slot (already rewritten). A message
 * over PRESENCE_STATE_MAX is not kept and the slot's last message is emptied (so a stale
 * position never outlives a newer one). Returns 0, or -ENOMEM. */
int presence_update(struct presence *p, size_t slot, const uint8_t *msg, size_t len);

/* The slot is empty again; its memory is released. */
void presence_leave(struct presence *p, size_t slot);

/* How many slots are present. */
size_t presence_count(const struct presence *p);

/* Appends {"type":"welcome","id":"<id>","color":<c>,"peers":[...]} for slot `self`, where
 * peers holds, for every other present slot, its last relayed message or, if it has sent
 * none (or one too long to keep), {"sender":"<id>","color":<c>}. Peers that would take the
 * message past p->welcome_max bytes are left out (the server sets it from --max-buffer, so
 * a welcome always fits the newcomer's buffer). Returns 0, or -ENOBUFS /
 * -ENOMEM (out unchanged). */
int presence_write_welcome(const struct presence *p, size_t self, struct buf *out);

/* Appends {"type":"join","sender":"<id>","color":<c>} for slot. Same returns. */
int presence_write_join(const struct presence *p, size_t slot, struct buf *out);

/* Appends {"type":"leave","sender":"<id>"} for slot (call before presence_leave()).
 * Same returns. */
int presence_write_leave(const struct presence *p, size_t slot, struct buf *out);

#endif
