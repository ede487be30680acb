/* rate.c: the token bucket described in rate.h. */
#include "rate.h"

enum { MILLI = 1000 };

void rate_init(struct rate *r, uint64_t burst, uint64_t now_ms)
{
    r->milli_tokens = burst * MILLI;
    r->last_ms = now_ms;
}

bool rate_take_n(struct rate *r, uint64_t per_sec, uint64_t burst, uint64_t now_ms, uint64_t n)
{
    if (per_sec == 0)
        return true;
    uint64_t cap = burst * MILLI;
    if (r->milli_tokens > cap)
        r->milli_tokens = cap;
    if (now_ms > r->last_ms) {
        /* per_sec tokens a second is per_sec milli-tokens a millisecond. A long idle spell
         * fills the bucket without multiplying: the product could overflow otherwise. */
        uint64_t elapsed = now_ms - r->last_ms;
        uint64_t room = cap - r->milli_tokens;
        if (elapsed > room / per_sec)
            r->milli_tokens = cap;
        else
            r->milli_tokens += elapsed * per_sec; /* <= room: no overflow, never past cap */
        r->last_ms = now_ms;
    }
    if (n > burst || r->milli_tokens < n * MILLI)
        return false;
    r->milli_tokens -= n * MILLI;
    return true;
}

bool rate_take(struct rate *r, uint64_t per_sec, uint64_t now_ms)
{
    return rate_take_n(r, per_sec, per_sec, now_ms, 1);
}
