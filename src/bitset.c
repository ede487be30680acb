/* bitset.c: one bit per member (see bitset.h). */
#include "bitset.h"

#include <stdlib.h>

enum { BITS = 64 };

uint64_t *bitset_new(size_t nbits)
{
    return calloc((nbits + BITS - 1) / BITS, sizeof(uint64_t)); /* calloc checks the product */
}

void bitset_add(uint64_t *set, size_t i)
{
    set[i / BITS] |= UINT64_C(1) << (i % BITS);
}

bool bitset_has(const uint64_t *set, size_t i)
{
    return (set[i / BITS] & (UINT64_C(1) << (i % BITS))) != 0;
}

long bitset_take_lowest(uint64_t *set, size_t nbits)
{
    size_t words = (nbits + BITS - 1) / BITS;
    for (size_t w = 0; w < words; w++) {
        if (set[w] != 0) {
            int bit = __builtin_ctzll(set[w]); /* the lowest set bit (a GCC/Clang builtin) */
            set[w] &= set[w] - 1;              /* clears exactly that bit */
            return (long)(w * BITS + (size_t)bit);
        }
    }
    return -1;
}
