/* fuzz.h: the few helpers every libFuzzer target in test/fuzz/ shares.
 *
 * A fuzzer only finds what it can see fail. AddressSanitizer and UBSan see memory and
 * arithmetic errors; FUZZ_CHECK makes a broken contract (a wrong answer, not a crash) just as
 * visible: it prints the condition and aborts, and libFuzzer saves the input that did it.
 *
 * The targets also need randomness that is a function of the input alone (how to split it
 * into reads, how small to make an output buffer), so that a saved crash replays exactly:
 * fuzz_rng is a xorshift generator seeded with an FNV-1a hash of the input bytes.
 * Header-only: each target is one translation unit that includes it.
 */
#ifndef WSRELAY_FUZZ_H
#define WSRELAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts with the failed condition when a module breaks its contract. Never compiled out
 * (unlike assert under NDEBUG): a check that is off finds nothing. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a, 64-bit: a cheap, well-mixed hash of the input, for seeds and for comparing
 * payloads without keeping copies. */
static inline uint64_t fuzz_hash(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

struct fuzz_rng {
    uint64_t s;
};

static inline void fuzz_rng_init(struct fuzz_rng *r, const void *p, size_t len)
{
    r->s = fuzz_hash(p, len) | 1; /* xorshift's state must never be 0 */
}

/* xorshift64 (Marsaglia 2003): plenty for choosing split points. */
static inline uint64_t fuzz_rng_next(struct fuzz_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* A number in [lo, hi]. */
static inline size_t fuzz_rng_range(struct fuzz_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(fuzz_rng_next(r) % ((uint64_t)(hi - lo) + 1));
}

/* How a connection's bytes arrive is up to the network, so each target also cuts its input
 * the way reads from a socket might. fuzz_read_max() picks, once per input, the largest read:
 * 1 (the byte-at-a-time client), a few bytes, a few hundred, or everything at once.
 * fuzz_read_size() then picks each read's size in [1, max], at least `floor` (callers pass
 * len / N so that a long input costs at most about N calls), at most what is `left`. */
static inline size_t fuzz_read_max(struct fuzz_rng *r, size_t len)
{
    switch (fuzz_rng_next(r) % 4) {
    case 0:
        return 1;
    case 1:
        return fuzz_rng_range(r, 2, 16);
    case 2:
        return fuzz_rng_range(r, 17, 512);
    default:
        return len > 0 ? len : 1;
    }
}

static inline size_t fuzz_read_size(struct fuzz_rng *r, size_t max, size_t floor, size_t left)
{
    size_t n = fuzz_rng_range(r, 1, max);
    if (n < floor)
        n = floor;
    return n < left ? n : left;
}

#endif
