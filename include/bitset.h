/* bitset.h: a set of small integers, one bit each.
 *
 * Owns: the words of a fixed-size bit set and the few operations wsrelay needs: add, test,
 * and take the lowest member. Two users: the senders a slow reader is owed (conn.c) and the
 * clients a cluster state still lists (cluster_sync.c).
 * Pure: calloc once, no I/O.
 */
#ifndef WSRELAY_BITSET_H
#define WSRELAY_BITSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An empty set for members 0..nbits-1: nbits/8 bytes, zeroed. NULL if out of memory. Free it
 * with free(). */
uint64_t *bitset_new(size_t nbits);

/* Adds i (i < nbits). Adding a member twice is harmless. */
void bitset_add(uint64_t *set, size_t i);

/* Whether i is in the set. */
bool bitset_has(const uint64_t *set, size_t i);

/* Removes and returns the lowest member, or -1 if the set is empty. O(nbits/64). */
long bitset_take_lowest(uint64_t *set, size_t nbits);

#endif
