/* rate.h: a token bucket, for --max-rate (messages) and --max-byte-rate (bytes).
 *
 * Owns: deciding whether one more message is allowed now. A bucket holds up to `burst`
 * tokens and refills at `per_sec` tokens a second; a message takes one token (--max-rate) or
 * one per byte (--max-byte-rate). So a client may burst up to the bucket's size, then keep to
 * the rate, and a flood costs the server one comparison per excess message instead of a JSON
 * parse and a broadcast to everyone.
 * Pure: time comes in as an argument; integer arithmetic in thousandths of a token, so a rate
 * of 200/s refills exactly one token every 5 ms with no floating point.
 */
#ifndef WSRELAY_RATE_H
#define WSRELAY_RATE_H

#include <stdbool.h>
#include <stdint.h>

/* The largest per_sec and burst the arithmetic is exact for: tokens * 1000 and a refill
 * step stay far below 2^64. config.c keeps every flag under it. */
#define RATE_MAX (UINT64_C(1) << 40)

struct rate {
    uint64_t milli_tokens; /* tokens * 1000, at most burst * 1000 */
    uint64_t last_ms;      /* when it was last refilled */
};

/* A full bucket of `burst` tokens at time now_ms. */
void rate_init(struct rate *r, uint64_t burst, uint64_t now_ms);

/* Refills for the time since the last call (per_sec tokens a second, never past burst), then
 * takes n tokens if the bucket holds them all; otherwise takes none. Returns true if the
 * message may pass. per_sec 0 means no limit: always true. n > burst never passes. */
bool rate_take_n(struct rate *r, uint64_t per_sec, uint64_t burst, uint64_t now_ms, uint64_t n);

/* One token from a bucket whose size is one second's worth: rate_take_n(r, per_sec,
 * per_sec, now_ms, 1). */
bool rate_take(struct rate *r, uint64_t per_sec, uint64_t now_ms);

#endif
