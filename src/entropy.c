/* entropy.c: getrandom(2), and identities drawn from it (see entropy.h). */
#include "entropy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

int entropy_fill(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* 122 random bits, the version nibble 4 and the variant bits 10, in the 8-4-4-4-12 hex form.
 * And a hue without modulo bias: 65520 is the largest multiple of 360 below 65536, so draws
 * above it are thrown away. */
int entropy_identity(char id[PRESENCE_ID_SIZE], unsigned *color)
{
    uint8_t u[16];
    uint16_t h = 0;
    int rc = entropy_fill(u, sizeof u);
    do {
        if (rc == 0)
            rc = entropy_fill(&h, sizeof h);
    } while (rc == 0 && h >= 65520);
    if (rc < 0)
        return rc;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(id, PRESENCE_ID_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    *color = h % 360u;
    return 0;
}
