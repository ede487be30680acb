/* connrate.h: a token bucket per client address, for --max-connect-rate.
 *
 * Owns: remembering, for the addresses that opened WebSockets on /ws lately, how many more
 * handshakes each may make now. Every handshake on /ws costs every member of the room a join
 * and then a leave, and the newcomer a welcome listing everyone: one client in a
 * connect/close loop makes the server write to every member at the loop's speed. A bucket per
 * address bounds that cost, whatever one client does.
 * Does not own: what happens to a refused handshake (routes.c answers 429), or time.
 * Pure: no I/O; time comes in as an argument; the table is allocated once.
 *
 * Keys: an IPv4 address (an IPv4-mapped IPv6 address counts as its IPv4 form), or the first
 * 64 bits of an IPv6 address: one customer's network is usually a /64, and a client that
 * owns one can draw 2^64 addresses from it.
 *
 * The table is fixed (a power of two, at least twice the slots the server has): each key has
 * a window of CONNRATE_WINDOW places from its hash. A key not found there takes a free place,
 * or else the place whose bucket was used least recently. Losing an entry only hands that
 * address a full bucket again: an eviction can make the limit laxer, never stricter, so no
 * choice of addresses can get an innocent client refused.
 */
#ifndef WSRELAY_CONNRATE_H
#define WSRELAY_CONNRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "rate.h"

#define CONNRATE_WINDOW 8 /* places probed per key */

struct connrate_entry {
    uint8_t key[9]; /* family byte (4 or 6), then 4 or 8 address bytes; zero: free */
    struct rate bucket;
};

struct connrate {
    struct connrate_entry *entries;
    size_t mask;             /* entries has mask + 1 places, a power of two */
    uint64_t per_sec, burst; /* refill rate and bucket size; per_sec 0: no limit */
};

/* Allocates a table for about `addresses` addresses (rounded up to a power of two, at least
 * 64). Returns 0 or -ENOMEM. per_sec 0 turns the limit off (no table is allocated). */
int connrate_init(struct connrate *t, size_t addresses, uint64_t per_sec, uint64_t burst);
void connrate_free(struct connrate *t);

/* One handshake from peer at now_ms: takes a token from its address's bucket. Returns true if
 * it may go on, false if that address is over the limit. An address of unknown family is
 * never limited. */
bool connrate_take(struct connrate *t, const struct net_addr *peer, uint64_t now_ms);

#endif
