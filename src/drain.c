/* drain.c: the schedule of a drain (see drain.h). */
#include "drain.h"

void drain_start(struct drain *d, uint64_t now_ms, uint64_t time_ms, size_t total)
{
    *d = (struct drain){.start_ms = now_ms, .time_ms = time_ms > 0 ? time_ms : 1, .total = total};
}

/* When close number i (from 0) is due, in ms after the start: i * time / total, rounded up
 * so that no close comes early. time_ms is bounded by the configuration (an hour) and total
 * by the slot count (a million), so the product stays far below 2^64. */
static uint64_t due_at(const struct drain *d, size_t i)
{
    return ((uint64_t)i * d->time_ms + d->total - 1) / d->total;
}

size_t drain_due(const struct drain *d, uint64_t now_ms)
{
    if (d->total == 0)
        return 0;
    uint64_t elapsed = now_ms > d->start_ms ? now_ms - d->start_ms : 0;
    if (elapsed >= d->time_ms)
        return d->total;
    /* The closes due by `elapsed` are those with due_at(i) <= elapsed, i.e. i * time <=
     * elapsed * total: i from 0 to floor(elapsed * total / time). */
    uint64_t n = elapsed * d->total / d->time_ms + 1;
    return n < d->total ? (size_t)n : d->total;
}

void drain_closed(struct drain *d, size_t n)
{
    d->closed = n < d->total - d->closed ? d->closed + n : d->total;
}

int64_t drain_next_ms(const struct drain *d, uint64_t now_ms)
{
    if (d->closed >= d->total)
        return -1;
    uint64_t at = d->start_ms + due_at(d, d->closed);
    return at > now_ms ? (int64_t)(at - now_ms) : 0;
}
