/* connrate.c: a token bucket per client address (see connrate.h). */
#include "connrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The key of an address: its family, then the bytes that name one client (see the header).
 * Returns false for an address that cannot be keyed (family unknown). */
static bool make_key(const struct net_addr *a, uint8_t key[9])
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(key, 0, 9);
    if (a->family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, a->ip, 4);
        return true;
    }
    if (a->family == AF_INET6) {
        if (memcmp(a->ip, v4_mapped, sizeof v4_mapped) == 0) { /* RFC 4291 §2.5.5.2 */
            key[0] = 4;
            memcpy(key + 1, a->ip + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a->ip, 8); /* the /64 */
        }
        return true;
    }
    return false;
}

/* FNV-1a over the key. Collisions cost only evictions, which only make the limit laxer (see
 * the header), so a hash an attacker can predict does no harm here. */
static size_t key_hash(const uint8_t key[9])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 9; i++)
        h = (h ^ key[i]) * 16777619u;
    return h;
}

int connrate_init(struct connrate *t, size_t addresses, uint64_t per_sec, uint64_t burst)
{
    *t = (struct connrate){.per_sec = per_sec, .burst = burst};
    if (per_sec == 0)
        return 0;
    size_t cap = 64;
    while (cap < addresses && cap < ((size_t)1 << 30))
        cap *= 2;
    t->entries = calloc(cap, sizeof *t->entries); /* untouched pages cost address space only */
    if (t->entries == NULL)
        return -ENOMEM;
    t->mask = cap - 1;
    return 0;
}

void connrate_free(struct connrate *t)
{
    free(t->entries);
    *t = (struct connrate){0};
}

bool connrate_take(struct connrate *t, const struct net_addr *peer, uint64_t now_ms)
{
    uint8_t key[9];
    if (t->per_sec == 0 || !make_key(peer, key))
        return true;
    size_t home = key_hash(key) & t->mask;
    struct connrate_entry *slot = NULL;
    for (size_t i = 0; i < CONNRATE_WINDOW; i++) {
        struct connrate_entry *e = &t->entries[(home + i) & t->mask];
        if (memcmp(e->key, key, sizeof key) == 0) {
            slot = e; /* known: its own bucket */
            break;
        }
        if (e->key[0] == 0) {
            if (slot == NULL || slot->key[0] != 0)
                slot = e; /* the first free place, unless the key turns up further on */
        } else if (slot == NULL ||
                   (slot->key[0] != 0 && e->bucket.last_ms < slot->bucket.last_ms)) {
            slot = e; /* so far the least recently used */
        }
    }
    if (memcmp(slot->key, key, sizeof key) != 0) { /* a new key: a full bucket */
        memcpy(slot->key, key, sizeof key);
        rate_init(&slot->bucket, t->burst, now_ms);
    }
    return rate_take_n(&slot->bucket, t->per_sec, t->burst, now_ms, 1);
}
