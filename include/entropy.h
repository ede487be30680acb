/* entropy.h: random bytes from the kernel, and the random identity of a client.
 *
 * Owns: getrandom(2) in a loop, and the one use that needs care: a UUID and a hue drawn
 * without bias. Never rand(): ids, ping payloads and node ids must not be guessable.
 * Edge: a system call (which does not block once the kernel's pool is initialised, long
 * before a server starts).
 */
#ifndef WSRELAY_ENTROPY_H
#define WSRELAY_ENTROPY_H

#include <stddef.h>

#include "presence.h"

/* Fills p[0..n) with random bytes. Returns 0 or -errno. */
int entropy_fill(void *p, size_t n);

/* A UUID version 4 (RFC 9562 §5.4) in its 36-character text form, and a hue 0..359. Returns
 * 0 or -errno. */
int entropy_identity(char id[PRESENCE_ID_SIZE], unsigned *color);

#endif
