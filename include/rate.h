/* rate.h: a token bucket, for --max-rate.
 *
 * Owns: deciding whether one more message is allowed now. A bucket holds up to `per_sec`
 * tokens and refills at `per_sec` tokens a second; each message takes one. So a client may
 * burst up to one second's worth, then keep to the rate, and a flood costs the server one
 * comparison per excess message instead of a JSON parse and a broadcast to everyone.
 * Pure: time comes in as an argument; integer arithmetic in thousandths of a token, so a rate
 * of 200/s refills exactly one token every 5 ms with no floating point.
 */
#ifndef WSRELAY_RATE_H
#define WSRELAY_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct rate {
    uint64_t milli_tokens; /* tokens * 1000, at most per_sec * 1000 */
    uint64_t last_ms;      /* when it was last refilled */
};

/* A full bucket at time now_ms. */
void rate_init(struct rate *r, uint64_t per_sec, uint64_t now_ms);

/* Refills for the time since the last call, then takes one token if there is one.
 * Returns true if the message may pass. per_sec 0 means no limit: always true. */
bool rate_take(struct rate *r, uint64_t per_sec, uint64_t now_ms);

#endif
