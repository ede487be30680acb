/* rate.c: the token bucket described in rate.h. */
#include "rate.h"

enum { MILLI = 1000 };

void rate_init(struct rate *r, uint64_t per_sec, uint64_t now_ms)
{
    r->milli_tokens = per_sec * MILLI;
    r->last_ms = now_ms;
}

bool rate_take(struct rate *r, uint64_t per_sec, uint64_t now_ms)
{
    if (per_sec == 0)
        return true;
    uint64_t cap = per_sec * MILLI;
    if (now_ms > r->last_ms) {
        /* per_sec tokens a second is per_sec milli-tokens a millisecond. Cap the elapsed
         * time first so the product cannot overflow after a long idle spell. */
        uint64_t elapsed = now_ms - r->last_ms;
        if (elapsed > MILLI)
            elapsed = MILLI;
        r->milli_tokens += elapsed * per_sec;
        if (r->milli_tokens > cap)
            r->milli_tokens = cap;
        r->last_ms = now_ms;
    }
    if (r->milli_tokens < MILLI)
        return false;
    r->milli_tokens -= MILLI;
    return true;
}
