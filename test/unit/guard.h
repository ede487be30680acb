/* guard.h: test inputs that end exactly at an inaccessible page (picohttpparser's trick).
 *
 * guard_copy() places a copy of the input so that its last byte is the last byte of a
 * readable page and the next page is PROT_NONE: a parser that reads even one byte past
 * in + len crashes at once, in every build, not only under AddressSanitizer.
 * For unit tests only: header-only, so each test binary takes what it uses.
 */
#ifndef WSRELAY_TEST_GUARD_H
#define WSRELAY_TEST_GUARD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

struct guarded {
    char *map;
    size_t map_len;
    char *p; /* the copy: p[len] is the first byte of a PROT_NONE page */
};

static inline const char *guard_copy(struct guarded *g, const char *s, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    g->map_len = (data_pages + 1) * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + data_pages * page, page, PROT_NONE), 0);
    g->p = g->map + data_pages * page - len;
    if (len > 0)
        memcpy(g->p, s, len);
    return g->p;
}

static inline void guard_free(struct guarded *g)
{
    munmap(g->map, g->map_len);
    g->map = NULL;
}

#endif
