/* fuzz_target.c: libFuzzer target for target.c: a request target -> route and room name.
 *
 * The input is a request target as http.c hands it over (http.c lets through only visible
 * ASCII, but target.h promises an answer for any bytes, so any bytes it is). Each run:
 *   1. parses the input with target_parse(): it returns 0 or -1; on -1 *why is a non-empty
 *      static phrase (not in the input) and no room is set; on 0 *why is NULL, the path starts
 *      the input with a '/', holds no '?', and is followed by the query, just past the first
 *      '?', to the end (or there is no '?' and no query); room_len > 0 only for ROOM and
 *      PAGE, and then the room is a good name (target_room_name_check() == NULL) and exactly
 *      the path after "/ws/" or "/r/"; routes without rooms have room NULL;
 *   2. compares the whole answer (0 or -1, route, room, query) with a second implementation
 *      of the routing table written here, which splits the path into its first segment and
 *      the rest instead of matching prefixes, and with a room-name predicate of its own;
 *   3. parses "/ws/" + input and "/r/" + input (exact-size heap copies, so ASan sees a read
 *      past them), which puts arbitrary bytes where a room name goes: the name is the input
 *      up to its first '?', and it is accepted exactly when the predicate says so ("/ws/"
 *      alone being the default room);
 *   4. checks target_room_name_check() against the predicate on the whole input and on a few
 *      input-derived slices, each an exact-size copy; a refusal's reason is "room name: ...".
 * Why: a room name reaches a log line, a Redis channel name and other nodes' rosters; if the
 *      parser and the rule ever disagreed, "..", "/", "%2f" or a NUL could reach them, or one
 *      room would answer to two spellings.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- The reference ------------------------------------------------------------------------ */

/* RFC 3986 §2.3, by ranges of the ASCII table rather than by target.c's comparisons. */
static bool ref_unreserved(uint8_t c)
{
    static const char marks[4] = {'-', '.', '_', '~'};
    if ((uint8_t)(c | 0x20) >= 'a' && (uint8_t)(c | 0x20) <= 'z')
        return true;
    if (c >= '0' && c <= '9')
        return true;
    return memchr(marks, c, sizeof marks) != NULL;
}

/* target.h: 1..64 unreserved bytes, neither "." nor "..". Counted from the dots: a name of
 * dots only is refused when it has fewer than three. */
static bool ref_name_ok(const char *p, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (!ref_unreserved((uint8_t)p[i]))
            return false;
        dots += p[i] == '.';
    }
    return !(dots == len && len <= 2);
}

struct ref {
    int rc;
    enum target_route route;
    size_t path_len;
    bool has_query;
    size_t room_at, room_len; /* room_len 0: none */
};

static bool seg_is(const char *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

/* The routing table of target.h, read as "first segment, then the rest". */
static struct ref ref_parse(const char *in, size_t len)
{
    struct ref r = {.rc = -1, .route = TARGET_FILE};
    if (len == 0 || in[0] != '/')
        return r;
    size_t path_len = 0;
    while (path_len < len && in[path_len] != '?')
        path_len++;
    r.path_len = path_len;
    r.has_query = path_len < len;

    /* The first segment: after the leading '/', up to the next '/' or the end of the path. */
    size_t seg_end = 1;
    while (seg_end < path_len && in[seg_end] != '/')
        seg_end++;
    const char *seg = in + 1;
    size_t seg_len = seg_end - 1;
    bool more = seg_end < path_len; /* a '/' follows the first segment */
    const char *name = more ? in + seg_end + 1 : NULL;
    size_t name_len = more ? path_len - seg_end - 1 : 0;

    r.rc = 0;
    if (seg_is(seg, seg_len, "ws")) {
        r.route = TARGET_ROOM;
        if (name_len > 0 && !ref_name_ok(name, name_len))
            r.rc = -1;
    } else if (seg_is(seg, seg_len, "r") && more) {
        r.route = TARGET_PAGE;
        if (!ref_name_ok(name, name_len))
            r.rc = -1;
    } else if (!more && seg_is(seg, seg_len, "echo")) {
        r.route = TARGET_ECHO;
    } else if (!more && seg_is(seg, seg_len, "healthz")) {
        r.route = TARGET_HEALTHZ;
    } else if (!more && seg_is(seg, seg_len, "metrics")) {
        r.route = TARGET_METRICS;
    }
    if (r.rc == 0 && (r.route == TARGET_ROOM || r.route == TARGET_PAGE) && name_len > 0) {
        r.room_at = (size_t)(name - in);
        r.room_len = name_len;
    }
    return r;
}

/* ---- Checks --------------------------------------------------------------------------------- */

static bool inside(const char *p, size_t n, const char *in, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)in;
    return a >= b && n <= len && a - b <= len - n;
}

static bool about_the_name(const char *why)
{
    return strncmp(why, "room name: ", 11) == 0 && why[11] != '\0';
}

/* Step 1 for in[0..len): what any answer must satisfy. Returns the answer. */
static int check_parse(const char *in, size_t len, struct target *t, const char **why)
{
    memset(t, 0xA5, sizeof *t);
    *why = "sentinel";
    int rc = target_parse(in, len, t, why);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        FUZZ_CHECK(*why != NULL && strcmp(*why, "sentinel") != 0 && (*why)[0] != '\0');
        FUZZ_CHECK(!inside(*why, 1, in, len)); /* static, not a view */
        FUZZ_CHECK(t->room == NULL && t->room_len == 0);
        /* A target with a path is refused for its room name only. */
        FUZZ_CHECK(about_the_name(*why) == (len > 0 && in[0] == '/'));
        return rc;
    }
    FUZZ_CHECK(*why == NULL);
    FUZZ_CHECK(t->path == in && t->path_len >= 1 && t->path_len <= len && in[0] == '/');
    FUZZ_CHECK(memchr(t->path, '?', t->path_len) == NULL);
    if (t->query == NULL) {
        FUZZ_CHECK(t->query_len == 0 && t->path_len == len);
    } else {
        FUZZ_CHECK(t->path_len < len && in[t->path_len] == '?');
        FUZZ_CHECK(t->query == in + t->path_len + 1 && t->query_len == len - t->path_len - 1);
    }
    switch (t->route) {
    case TARGET_ROOM:
    case TARGET_PAGE: {
        size_t n = t->route == TARGET_ROOM ? 4 : 3; /* "/ws/" or "/r/" */
        const char *prefix = t->route == TARGET_ROOM ? "/ws/" : "/r/";
        if (t->room_len == 0) {
            /* Only the default room: /ws or /ws/. */
            FUZZ_CHECK(t->route == TARGET_ROOM && t->room == NULL);
            FUZZ_CHECK(seg_is(in, t->path_len, "/ws") || seg_is(in, t->path_len, "/ws/"));
            break;
        }
        FUZZ_CHECK(t->path_len == n + t->room_len && memcmp(in, prefix, n) == 0);
        FUZZ_CHECK(t->room == in + n);
        FUZZ_CHECK(target_room_name_check(t->room, t->room_len) == NULL);
        break;
    }
    case TARGET_FILE:
    case TARGET_ECHO:
    case TARGET_HEALTHZ:
    case TARGET_METRICS:
        FUZZ_CHECK(t->room == NULL && t->room_len == 0);
        break;
    default:
        FUZZ_CHECK(!"a route target.h does not name");
    }
    return rc;
}

/* Step 2: the same answer as the reference. */
static void check_against_ref(const char *in, size_t len)
{
    struct target t;
    const char *why;
    int rc = check_parse(in, len, &t, &why);
    struct ref r = ref_parse(in, len);
    FUZZ_CHECK(rc == r.rc);
    if (rc < 0)
        return;
    FUZZ_CHECK(t.route == r.route && t.path_len == r.path_len);
    FUZZ_CHECK((t.query != NULL) == r.has_query);
    FUZZ_CHECK(t.room_len == r.room_len);
    if (r.room_len > 0)
        FUZZ_CHECK(t.room == in + r.room_at);
}

/* Step 3: prefix + data, in an exact-size heap copy. */
static void check_prefixed(const char *prefix, enum target_route route, const uint8_t *data,
                           size_t size)
{
    size_t n = strlen(prefix);
    char *in = malloc(n + size);
    FUZZ_CHECK(in != NULL);
    memcpy(in, prefix, n);
    if (size > 0)
        memcpy(in + n, data, size);
    check_against_ref(in, n + size);

    struct target t;
    const char *why;
    int rc = check_parse(in, n + size, &t, &why);
    const char *q = size > 0 ? memchr(data, '?', size) : NULL;
    size_t name_len = q != NULL ? (size_t)(q - (const char *)data) : size;
    bool want = ref_name_ok(in + n, name_len) || (name_len == 0 && route == TARGET_ROOM);
    FUZZ_CHECK((rc == 0) == want);
    if (rc == 0) {
        FUZZ_CHECK(t.route == route && t.room_len == name_len);
        FUZZ_CHECK(name_len == 0 || t.room == in + n);
        FUZZ_CHECK((t.query != NULL) == (q != NULL));
    }
    free(in);
}

/* Step 4: target_room_name_check(p[0..len)) on an exact-size copy. */
static void check_name(const char *p, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, p, len);
    const char *why = target_room_name_check(copy, len);
    FUZZ_CHECK((why == NULL) == ref_name_ok(copy, len));
    if (why != NULL)
        FUZZ_CHECK(about_the_name(why) && !inside(why, 1, copy, len));
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    check_against_ref(in, size);
    check_prefixed("/ws/", TARGET_ROOM, data, size);
    check_prefixed("/r/", TARGET_PAGE, data, size);

    check_name(in, size);
    struct fuzz_rng r;
    fuzz_rng_init(&r, data, size);
    for (int k = 0; k < 4 && size > 0; k++) {
        size_t at = fuzz_rng_range(&r, 0, size - 1);
        size_t max = size - at < 70 ? size - at : 70; /* around the 64-byte limit */
        check_name(in + at, fuzz_rng_range(&r, 0, max));
    }
    return 0;
}
