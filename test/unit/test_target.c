/* Unit tests for target.c: target_parse() over a table of every route and of every way to
 * name a room badly, each input guarded so that a read one byte past its end crashes (in the
 * release build too); the views it returns must point into the input at the offsets the rule
 * gives (never into a copy), the query without its '?', *why set exactly on -1, and *t reset
 * on every call. target_room_name_check() is compared with a predicate written here, from
 * the header's words alone, over all 256 single bytes, all 65,536 two-byte strings, every
 * short string over the bytes that matter, and a sample of random ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"
#include "target.h"

/* cmocka's assertions print values, not which table row failed: this names the row first. */
static char row_name[160];

static void name_row(const char *what, const char *s, size_t len)
{
    /* Printable bytes as they are, the others as \xHH: rows hold NUL and bytes >= 0x80. */
    size_t o = (size_t)snprintf(row_name, sizeof row_name, "%s \"", what);
    for (size_t i = 0; i < len && o + 8 < sizeof row_name; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            row_name[o++] = (char)c;
        else
            o += (size_t)snprintf(row_name + o, sizeof row_name - o, "\\x%02x", c);
    }
    snprintf(row_name + o, sizeof row_name - o, "%s\"", o + 8 < sizeof row_name ? "" : "...");
}

static void assert_row(bool ok, const char *what)
{
    if (!ok) {
        print_error("in row %s: %s\n", row_name, what);
        fail();
    }
}

/* ---- The independent rule ----------------------------------------------------------------- */

/* RFC 3986 §2.3's unreserved characters, spelled out: 66 bytes. memchr with the length, not
 * strchr, which would "find" NUL as the terminator. */
static const char UNRESERVED[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

static bool ref_unreserved(unsigned char c)
{
    return memchr(UNRESERVED, c, sizeof UNRESERVED - 1) != NULL;
}

/* target.h: 1..64 unreserved bytes, and neither "." nor "..". */
static bool ref_name_ok(const char *p, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    if ((len == 1 || len == 2) && memcmp(p, "..", len) == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ref_unreserved((unsigned char)p[i]))
            return false;
    return true;
}

/* ---- Guarded calls ------------------------------------------------------------------------ */

/* One mapping reused for the many short strings of the agreement tests: a string of n bytes
 * is written at end - n, and end is the first byte of a PROT_NONE page. */
static struct guarded scratch;
static char *scratch_end;
enum { SCRATCH = 4096 };

static int scratch_setup(void **state)
{
    (void)state;
    static char zeros[SCRATCH];
    scratch_end = (char *)guard_copy(&scratch, zeros, SCRATCH) + SCRATCH;
    return 0;
}

static int scratch_teardown(void **state)
{
    (void)state;
    guard_free(&scratch);
    return 0;
}

static const char *place(const char *s, size_t len)
{
    assert_true(len <= SCRATCH);
    memcpy(scratch_end - len, s, len);
    return scratch_end - len;
}

static bool inside(const char *p, size_t n, const char *in, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)in;
    return a >= b && n <= len && a - b <= len - n;
}

/* What one target_parse() call gave, with its views as offsets into the input (-1: NULL), so
 * that rows can be judged after the guarded copy is gone. */
struct got {
    int rc;
    const char *why;
    enum target_route route;
    ptrdiff_t path_at, query_at, room_at;
    size_t path_len, query_len, room_len;
};

static ptrdiff_t offset_in(const char *p, size_t n, const char *in, size_t len)
{
    if (p == NULL) {
        assert_row(n == 0, "a NULL view with a non-zero length");
        return -1;
    }
    assert_row(inside(p, n, in, len), "a view that is not inside the input");
    return p - in;
}

static const char SENTINEL[] = "not set";

/* Calls target_parse(in, len) on *t as the caller left it, and checks what holds for every
 * answer: 0 or -1; *why non-NULL, non-empty and not in the input exactly on -1; on 0, a path
 * at the input's start, the query just past the first '?', the room only for ROOM and PAGE. */
static struct got parse_at(const char *in, size_t len, struct target *t)
{
    const char *why = SENTINEL;
    struct got g = {0};
    g.rc = target_parse(in, len, t, &why);
    g.why = why;
    g.route = t->route;
    assert_row(g.rc == 0 || g.rc == -1, "returned neither 0 nor -1");
    if (g.rc == -1) {
        assert_row(why != NULL && why != SENTINEL && why[0] != '\0', "-1 without a reason");
        assert_row(!inside(why, 1, in, len), "the reason points into the input");
        assert_row(t->room == NULL && t->room_len == 0, "-1 with a room");
        return g;
    }
    assert_row(why == NULL, "0 with a reason");
    g.path_at = offset_in(t->path, t->path_len, in, len);
    g.query_at = offset_in(t->query, t->query_len, in, len);
    g.room_at = offset_in(t->room, t->room_len, in, len);
    g.path_len = t->path_len;
    g.query_len = t->query_len;
    g.room_len = t->room_len;
    assert_row(g.path_at == 0 && g.path_len >= 1 && in[0] == '/', "the path is not the start");
    assert_row(memchr(in, '?', g.path_len) == NULL, "a '?' in the path");
    if (g.query_at < 0) {
        assert_row(g.path_len == len, "no query, but the path stops short");
    } else {
        assert_row(g.path_len < len && in[g.path_len] == '?', "the path does not stop at '?'");
        assert_row((size_t)g.query_at == g.path_len + 1, "the query does not follow the '?'");
        assert_row(g.query_len == len - g.path_len - 1, "the query does not run to the end");
    }
    if (g.route != TARGET_ROOM && g.route != TARGET_PAGE)
        assert_row(g.room_at == -1 && g.room_len == 0, "a room for a route without rooms");
    if (g.room_len > 0)
        assert_row(target_room_name_check(t->room, t->room_len) == NULL, "a bad room name");
    return g;
}

/* The same on a guarded copy of s[0..len), with *t full of junk first. */
static struct got parse_guarded(const char *s, size_t len)
{
    struct guarded g;
    const char *in = guard_copy(&g, s, len);
    struct target t;
    memset(&t, 0xA5, sizeof t);
    struct got r = parse_at(in, len, &t);
    guard_free(&g);
    return r;
}

static bool reason_is_about_the_name(const char *why)
{
    return strncmp(why, "room name: ", 11) == 0 && why[11] != '\0';
}

/* ---- target_parse: the routes --------------------------------------------------------------- */

struct route_row {
    const char *in;
    size_t len; /* sizeof - 1: rows may hold NUL */
    int rc;
    enum target_route route;
    const char *path, *query, *room; /* query NULL: none; room "": none or the default */
};

#define ROUTE(in, route, path, query, room)                                                        \
    {                                                                                              \
        in, sizeof in - 1, 0, route, path, query, room                                             \
    }
#define REFUSED(in)                                                                                \
    {                                                                                              \
        in, sizeof in - 1, -1, TARGET_FILE, NULL, NULL, NULL                                       \
    }

static const struct route_row ROUTE_ROWS[] = {
    /* The room's WebSocket. */
    ROUTE("/ws", TARGET_ROOM, "/ws", NULL, ""),
    ROUTE("/ws/", TARGET_ROOM, "/ws/", NULL, ""),
    ROUTE("/ws/x", TARGET_ROOM, "/ws/x", NULL, "x"),
    ROUTE("/ws/lobby-2.b_c~d", TARGET_ROOM, "/ws/lobby-2.b_c~d", NULL, "lobby-2.b_c~d"),
    ROUTE("/ws?x", TARGET_ROOM, "/ws", "x", ""),
    ROUTE("/ws?", TARGET_ROOM, "/ws", "", ""),
    ROUTE("/ws/?x", TARGET_ROOM, "/ws/", "x", ""),
    ROUTE("/ws/a?", TARGET_ROOM, "/ws/a", "", "a"),
    ROUTE("/ws/a?b/c?d#e%zz", TARGET_ROOM, "/ws/a", "b/c?d#e%zz", "a"), /* the first '?' */
    ROUTE("/ws/...", TARGET_ROOM, "/ws/...", NULL, "..."),
    ROUTE("/ws??", TARGET_ROOM, "/ws", "?", ""),
    /* Not rooms: files, whatever www_resolve() makes of them. */
    ROUTE("/wsx", TARGET_FILE, "/wsx", NULL, ""),
    ROUTE("/wss", TARGET_FILE, "/wss", NULL, ""),
    ROUTE("/w", TARGET_FILE, "/w", NULL, ""),
    ROUTE("/WS", TARGET_FILE, "/WS", NULL, ""), /* paths are case-sensitive */
    ROUTE("/Ws/x", TARGET_FILE, "/Ws/x", NULL, ""),
    ROUTE("//ws", TARGET_FILE, "//ws", NULL, ""),
    ROUTE("/a/ws/x", TARGET_FILE, "/a/ws/x", NULL, ""),
    ROUTE("/ws#x", TARGET_FILE, "/ws#x", NULL, ""),     /* '#' is not a '/' */
    ROUTE("/ws\0/x", TARGET_FILE, "/ws\0/x", NULL, ""), /* nor is NUL */
    ROUTE("/ws%2fx", TARGET_FILE, "/ws%2fx", NULL, ""), /* nothing is decoded */
    /* The page of a room. */
    ROUTE("/r", TARGET_FILE, "/r", NULL, ""), /* a file name like any other */
    ROUTE("/r?x", TARGET_FILE, "/r", "x", ""),
    ROUTE("/rx", TARGET_FILE, "/rx", NULL, ""),
    ROUTE("/R/x", TARGET_FILE, "/R/x", NULL, ""),
    ROUTE("/r/x", TARGET_PAGE, "/r/x", NULL, "x"),
    ROUTE("/r/x?y=1", TARGET_PAGE, "/r/x", "y=1", "x"),
    ROUTE("/r/Lobby", TARGET_PAGE, "/r/Lobby", NULL, "Lobby"),
    /* The fixed routes, exactly. */
    ROUTE("/echo", TARGET_ECHO, "/echo", NULL, ""),
    ROUTE("/echo?x", TARGET_ECHO, "/echo", "x", ""),
    ROUTE("/echo/", TARGET_FILE, "/echo/", NULL, ""),
    ROUTE("/echo/x", TARGET_FILE, "/echo/x", NULL, ""),
    ROUTE("/echox", TARGET_FILE, "/echox", NULL, ""),
    ROUTE("/ech", TARGET_FILE, "/ech", NULL, ""),
    ROUTE("/Echo", TARGET_FILE, "/Echo", NULL, ""),
    ROUTE("/healthz", TARGET_HEALTHZ, "/healthz", NULL, ""),
    ROUTE("/healthz?", TARGET_HEALTHZ, "/healthz", "", ""),
    ROUTE("/healthz/", TARGET_FILE, "/healthz/", NULL, ""),
    ROUTE("/health", TARGET_FILE, "/health", NULL, ""),
    ROUTE("/metrics", TARGET_METRICS, "/metrics", NULL, ""),
    ROUTE("/metrics?x", TARGET_METRICS, "/metrics", "x", ""),
    ROUTE("/metrics/", TARGET_FILE, "/metrics/", NULL, ""),
    ROUTE("/metricsx", TARGET_FILE, "/metricsx", NULL, ""),
    /* Static files: not judged here. */
    ROUTE("/", TARGET_FILE, "/", NULL, ""),
    ROUTE("/?x", TARGET_FILE, "/", "x", ""),
    ROUTE("/?", TARGET_FILE, "/", "", ""),
    ROUTE("/index.js", TARGET_FILE, "/index.js", NULL, ""),
    ROUTE("/index.js?v=3", TARGET_FILE, "/index.js", "v=3", ""),
    ROUTE("/../etc/passwd", TARGET_FILE, "/../etc/passwd", NULL, ""),
    ROUTE("/a%00b\x80\xff", TARGET_FILE, "/a%00b\x80\xff", NULL, ""),
    ROUTE("/\0", TARGET_FILE, "/\0", NULL, ""),
    /* Not origin-form (RFC 9112 §3.2.1). */
    REFUSED(""),
    REFUSED("x"),
    REFUSED("*"),
    REFUSED("?x"),
    REFUSED("?"),
    REFUSED("#"),
    REFUSED(" /ws"),
    REFUSED("\0/ws"),
    REFUSED("ws"),
    REFUSED("http://a/ws"),
    REFUSED("https://a/r/x"),
    REFUSED("a:443"),
    REFUSED("%2fws"),
    REFUSED("\\ws"),
    /* Rooms named badly. */
    REFUSED("/r/"),
    REFUSED("/r/?x"),
    REFUSED("/r//"),
    REFUSED("/r/x/"),
    REFUSED("/r/."),
    REFUSED("/r/.."),
    REFUSED("/r/..?x"),
    REFUSED("/ws/."),
    REFUSED("/ws/.."),
    REFUSED("/ws//"),
    REFUSED("/ws//x"),
    REFUSED("/ws/a/"),
    REFUSED("/ws/a/b"),
    REFUSED("/ws/../x"),
    REFUSED("/ws/%41"),
    REFUSED("/ws/a%2fb"),
    REFUSED("/ws/#"),
    REFUSED("/ws/a#b"),
    REFUSED("/ws/a#?b"), /* '#' before the '?' is in the path, and in the name */
    REFUSED("/ws/a\0"),
    REFUSED("/ws/\0"),
    REFUSED("/ws/a b"),
    REFUSED("/ws/caf\xc3\xa9"),
    REFUSED("/r/a+b"),
};

static void route_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROUTE_ROWS / sizeof ROUTE_ROWS[0]; i++) {
        const struct route_row *row = &ROUTE_ROWS[i];
        name_row("target", row->in, row->len);
        struct got g = parse_guarded(row->in, row->len);
        assert_row(g.rc == row->rc, row->rc == 0 ? "refused" : "accepted");
        if (row->rc < 0) {
            /* A target with a path names a room badly; others are not origin-form. */
            bool has_path = row->len > 0 && row->in[0] == '/';
            assert_row(reason_is_about_the_name(g.why) == has_path, "the wrong kind of reason");
            continue;
        }
        size_t path_len = strlen(row->path), room_len = strlen(row->room);
        if (memchr(row->in, '\0', row->len) != NULL) /* strlen stops there */
            path_len = row->query == NULL ? row->len : row->len - strlen(row->query) - 1;
        assert_row(g.route == row->route, "the wrong route");
        assert_row(g.path_len == path_len && memcmp(row->in, row->path, path_len) == 0,
                   "the wrong path");
        if (row->query == NULL) {
            assert_row(g.query_at == -1 && g.query_len == 0, "a query that is not there");
        } else {
            size_t query_len = strlen(row->query);
            assert_row((size_t)g.query_at == path_len + 1 && g.query_len == query_len &&
                           memcmp(row->in + g.query_at, row->query, query_len) == 0,
                       "the wrong query");
        }
        assert_row(g.room_len == room_len, "the wrong room length");
        if (room_len > 0) /* the room is the path's tail: the view at path_len - room_len */
            assert_row((size_t)g.room_at == path_len - room_len &&
                           memcmp(row->in + g.room_at, row->room, room_len) == 0,
                       "the wrong room");
    }
}

/* The input ends at len, not at a NUL: the same bytes, cut shorter, are another target. */
static void length_is_the_end(void **state)
{
    (void)state;
    static const char s[] = "/ws/room?q=1";
    static const struct {
        size_t len;
        int rc;
        enum target_route route;
        size_t room_len, query_len;
        bool has_query;
    } rows[] = {
        {0, -1, TARGET_FILE, 0, 0, false}, {1, 0, TARGET_FILE, 0, 0, false},
        {2, 0, TARGET_FILE, 0, 0, false},  {3, 0, TARGET_ROOM, 0, 0, false},
        {4, 0, TARGET_ROOM, 0, 0, false},  {5, 0, TARGET_ROOM, 1, 0, false},
        {6, 0, TARGET_ROOM, 2, 0, false},  {7, 0, TARGET_ROOM, 3, 0, false},
        {8, 0, TARGET_ROOM, 4, 0, false},  {9, 0, TARGET_ROOM, 4, 0, true},
        {10, 0, TARGET_ROOM, 4, 1, true},  {11, 0, TARGET_ROOM, 4, 2, true},
        {12, 0, TARGET_ROOM, 4, 3, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        name_row("prefix", s, rows[i].len);
        struct got g = parse_guarded(s, rows[i].len);
        assert_row(g.rc == rows[i].rc, "the wrong answer");
        if (g.rc < 0)
            continue;
        assert_row(g.route == rows[i].route && g.room_len == rows[i].room_len, "the wrong room");
        if (g.room_len > 0)
            assert_row(g.room_at == 4, "the room is not at offset 4");
        assert_row((g.query_at >= 0) == rows[i].has_query && g.query_len == rows[i].query_len,
                   "the wrong query");
    }
    /* Readable bytes after len are not looked at either. */
    struct target t;
    const char *why;
    assert_int_equal(target_parse("/echo", 4, &t, &why), 0);
    assert_int_equal(t.route, TARGET_FILE);
    assert_int_equal(target_parse("/ws/a/b", 5, &t, &why), 0);
    assert_int_equal(t.route, TARGET_ROOM);
    assert_int_equal(t.room_len, 1);
    assert_int_equal(target_parse("/r/x?", 2, &t, &why), 0);
    assert_int_equal(t.route, TARGET_FILE);
}

/* *t is reset on entry: nothing a previous call left survives, whatever this one answers. */
static void t_is_reset_on_entry(void **state)
{
    (void)state;
    static const char *const firsts[] = {"/ws/abc?x", "/r/abc?x", "/metrics?x"};
    static const char *const seconds[] = {"/echo", "/", "/ws", "/ws/", "*", "", "/r/", "/ws/a/b"};
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        for (size_t j = 0; j < sizeof seconds / sizeof seconds[0]; j++) {
            struct guarded g1, g2;
            const char *a = guard_copy(&g1, firsts[i], strlen(firsts[i]));
            const char *b = guard_copy(&g2, seconds[j], strlen(seconds[j]));
            struct target t;
            memset(&t, 0xA5, sizeof t);
            name_row("first", firsts[i], strlen(firsts[i]));
            assert_int_equal(parse_at(a, strlen(firsts[i]), &t).rc, 0);
            name_row("then", seconds[j], strlen(seconds[j]));
            struct got r = parse_at(b, strlen(seconds[j]), &t);
            assert_row(t.query == NULL && t.query_len == 0, "the old query survived");
            assert_row(t.room == NULL && t.room_len == 0, "the old room survived");
            if (r.rc == 0 && strcmp(seconds[j], "/echo") == 0)
                assert_row(t.route == TARGET_ECHO, "the wrong route");
            if (strlen(seconds[j]) == 0 || seconds[j][0] != '/') {
                /* Refused before anything is read: everything is as it was reset. */
                assert_row(t.route == TARGET_FILE && t.path == NULL && t.path_len == 0,
                           "not reset");
            }
            guard_free(&g2);
            guard_free(&g1);
        }
    }
    /* And from junk, the same. */
    struct target t;
    memset(&t, 0xA5, sizeof t);
    const char *why = SENTINEL;
    assert_int_equal(target_parse("*", 1, &t, &why), -1);
    assert_int_equal(t.route, TARGET_FILE);
    assert_null(t.path);
    assert_null(t.query);
    assert_null(t.room);
    assert_int_equal(t.path_len + t.query_len + t.room_len, 0);
    memset(&t, 0xA5, sizeof t);
    assert_int_equal(target_parse("/x", 2, &t, &why), 0);
    assert_null(why);
    assert_int_equal(t.route, TARGET_FILE);
    assert_null(t.query);
    assert_null(t.room);
    assert_int_equal(t.query_len + t.room_len, 0);
}

/* ---- Room names --------------------------------------------------------------------------- */

struct name_row {
    const char *name;
    size_t len;
    bool ok;
};

#define NAME_OK(s)                                                                                 \
    {                                                                                              \
        s, sizeof s - 1, true                                                                      \
    }
#define NAME_BAD(s)                                                                                \
    {                                                                                              \
        s, sizeof s - 1, false                                                                     \
    }

static const struct name_row NAME_ROWS[] = {
    /* Each class of RFC 3986 §2.3's unreserved characters, alone. */
    NAME_OK("A"),
    NAME_OK("Z"),
    NAME_OK("a"),
    NAME_OK("z"),
    NAME_OK("0"),
    NAME_OK("5"),
    NAME_OK("9"),
    NAME_OK("-"),
    NAME_OK("_"),
    NAME_OK("~"),
    NAME_BAD("."), /* "this segment" (RFC 3986 §3.3) */
    NAME_BAD(".."),
    NAME_OK("..."),
    NAME_OK(".a"),
    NAME_OK("a."),
    NAME_OK("a.."),
    NAME_OK("..a"),
    NAME_OK(".-"),
    NAME_OK("~user"),
    NAME_OK("Room-1_b.c~d"),
    NAME_OK("0123456789012345678901234567890123456789012345678901234567890123"),   /* 64 */
    NAME_BAD("01234567890123456789012345678901234567890123456789012345678901234"), /* 65 */
    NAME_OK("................................................................"),
    NAME_BAD(""),
    /* One path segment only. */
    NAME_BAD("/"),
    NAME_BAD("/x"),
    NAME_BAD("a/"),
    NAME_BAD("a/b"),
    NAME_BAD("../x"),
    /* Nothing is decoded. */
    NAME_BAD("%41"),
    NAME_BAD("%2e"),
    NAME_BAD("%2e%2e"),
    NAME_BAD("a%"),
    NAME_BAD("%"),
    /* Everything else. */
    NAME_BAD("a#b"),
    NAME_BAD("#"),
    NAME_BAD("a\0b"),
    NAME_BAD("\0"),
    NAME_BAD("a\0"),
    NAME_BAD("a b"),
    NAME_BAD("a\tb"),
    NAME_BAD("a\r\nb"),
    NAME_BAD("a\x7f"),
    NAME_BAD("\x80"),
    NAME_BAD("\xff"),
    NAME_BAD("caf\xc3\xa9"),
    NAME_BAD("a+b"),
    NAME_BAD("a:b"),
    NAME_BAD("a@b"),
    NAME_BAD("a\\b"),
    NAME_BAD("a\"b"),
    NAME_BAD("a'b"),
    NAME_BAD("a=b"),
    NAME_BAD("a&b"),
    NAME_BAD("a;b"),
};

/* Checks a name three ways: alone, as /ws/<name> and as /r/<name> (not for names holding
 * '?', which ends the path: see route_table). */
static void check_name(const char *name, size_t len, bool ok)
{
    assert_row(ref_name_ok(name, len) == ok, "the table and the reference disagree");
    const char *p = place(name, len);
    const char *why = target_room_name_check(p, len);
    assert_row((why == NULL) == ok, ok ? "refused" : "accepted");
    if (why != NULL)
        assert_row(reason_is_about_the_name(why), "a reason that is not about the name");
    if (memchr(name, '?', len) != NULL)
        return;

    static const struct {
        const char *prefix;
        enum target_route route;
    } ways[] = {{"/ws/", TARGET_ROOM}, {"/r/", TARGET_PAGE}};
    for (size_t w = 0; w < 2; w++) {
        char buf[SCRATCH];
        size_t n = strlen(ways[w].prefix);
        assert_true(n + len <= sizeof buf);
        memcpy(buf, ways[w].prefix, n);
        memcpy(buf + n, name, len);
        const char *in = place(buf, n + len);
        struct target t;
        memset(&t, 0xA5, sizeof t);
        struct got g = parse_at(in, n + len, &t);
        /* "/ws/" alone is the default room; "/r/" alone names none. */
        bool want = ok || (len == 0 && ways[w].route == TARGET_ROOM);
        assert_row((g.rc == 0) == want, want ? "the target was refused" : "the target passed");
        if (g.rc < 0) {
            assert_row(reason_is_about_the_name(g.why), "a reason that is not about the name");
            continue;
        }
        assert_row(g.route == ways[w].route && g.room_len == len, "the wrong room");
        if (len > 0)
            assert_row(g.room_at == (ptrdiff_t)n, "the room is not right after the prefix");
    }
}

static void name_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof NAME_ROWS / sizeof NAME_ROWS[0]; i++) {
        name_row("name", NAME_ROWS[i].name, NAME_ROWS[i].len);
        check_name(NAME_ROWS[i].name, NAME_ROWS[i].len, NAME_ROWS[i].ok);
    }
    /* The empty name, from a pointer that cannot be read at all. */
    struct guarded g;
    const char *p = guard_copy(&g, "", 0);
    const char *why = target_room_name_check(p, 0);
    assert_non_null(why);
    assert_true(reason_is_about_the_name(why));
    guard_free(&g);
}

/* Every byte, alone, first, last and in the middle of a name; '?' through target_parse
 * ends the room instead. */
static void name_every_byte(void **state)
{
    (void)state;
    size_t accepted = 0;
    for (unsigned c = 0; c < 256; c++) {
        char ch = (char)c;
        bool u = memchr(UNRESERVED, (int)c, sizeof UNRESERVED - 1) != NULL;
        accepted += u;
        char s[3] = {ch, 0, 0};
        name_row("byte", s, 1);
        check_name(s, 1, u && ch != '.');
        char mid[3] = {'a', ch, 'b'}, first[2] = {ch, 'a'}, last[2] = {'a', ch};
        name_row("byte", mid, 3);
        check_name(mid, 3, u);
        name_row("byte", first, 2);
        check_name(first, 2, u);
        name_row("byte", last, 2);
        check_name(last, 2, u);
    }
    assert_int_equal(accepted, 66); /* 26 + 26 + 10 + 4 */

    /* '?' ends the path: /ws/a?b is room "a" with query "b". */
    name_row("target", "/ws/a?b", 7);
    struct got g = parse_guarded("/ws/a?b", 7);
    assert_row(g.rc == 0 && g.room_at == 4 && g.room_len == 1 && g.query_at == 6 &&
                   g.query_len == 1,
               "'?' did not end the room");
}

static void name_length_limits(void **state)
{
    (void)state;
    static char name[100000];
    for (size_t len = 0; len <= 130; len++) {
        for (size_t i = 0; i < len; i++)
            name[i] = UNRESERVED[(i * 7 + len) % (sizeof UNRESERVED - 1)];
        if (len == 2 && name[0] == '.' && name[1] == '.')
            name[1] = 'x';
        if (len == 1 && name[0] == '.')
            name[0] = 'x';
        name_row("length", name, len);
        check_name(name, len, len >= 1 && len <= TARGET_ROOM_MAX);
    }
    /* Long inputs: refused without reading past them. */
    memset(name, 'a', sizeof name);
    name_row("length", "100000 x a", 10);
    struct guarded g;
    const char *p = guard_copy(&g, name, sizeof name);
    assert_non_null(target_room_name_check(p, sizeof name));
    guard_free(&g);
    memcpy(name, "/ws/", 4);
    struct got r = parse_guarded(name, sizeof name);
    assert_row(r.rc == -1 && reason_is_about_the_name(r.why), "a 99996-byte room");
    memcpy(name, "/r/a", 4);
    r = parse_guarded(name, 64 + 3);
    assert_row(r.rc == 0 && r.room_at == 3 && r.room_len == 64, "a 64-byte page room");
    r = parse_guarded(name, 65 + 3);
    assert_row(r.rc == -1, "a 65-byte page room");
}

/* ---- Agreement with the reference --------------------------------------------------------- */

static void agree(const char *s, size_t len)
{
    const char *why = target_room_name_check(place(s, len), len);
    if ((why == NULL) != ref_name_ok(s, len)) {
        name_row("agreement", s, len);
        assert_row(false, why == NULL ? "accepted, the reference refuses" : "refused");
    }
    if (why != NULL && !reason_is_about_the_name(why)) {
        name_row("agreement", s, len);
        assert_row(false, "a reason that is not about the name");
    }
}

static void name_agrees_with_reference(void **state)
{
    (void)state;
    char s[80] = {0};
    agree(s, 0);
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (char)a;
        agree(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (char)b;
            agree(s, 2);
        }
    }
    /* Every string of up to 5 bytes over the bytes the rule turns on. */
    static const char ALPHA[] = {'.', 'a', '/', '%', '\0', '?', '#', '\x80', '~', 'Z'};
    enum { K = sizeof ALPHA };
    for (size_t len = 3; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= K;
        for (size_t n = 0; n < total; n++) {
            size_t x = n;
            for (size_t i = 0; i < len; i++, x /= K)
                s[i] = ALPHA[x % K];
            agree(s, len);
        }
    }
    /* Random strings of 0..79 bytes, mostly unreserved, with lengths around the limit. */
    uint64_t r = 0x9E3779B97F4A7C15u;
    for (int k = 0; k < 200000; k++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        size_t len = (size_t)(r % 80);
        unsigned bad_every = (unsigned)(r >> 8) % 128 + 1; /* 1: all random bytes */
        for (size_t i = 0; i < len; i++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            s[i] = (r >> 40) % bad_every == 0 ? (char)(r >> 16)
                                              : UNRESERVED[(r >> 24) % (sizeof UNRESERVED - 1)];
        }
        agree(s, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_table),
        cmocka_unit_test(length_is_the_end),
        cmocka_unit_test(t_is_reset_on_entry),
        cmocka_unit_test_setup_teardown(name_table, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(name_every_byte, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(name_length_limits, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(name_agrees_with_reference, scratch_setup,
                                        scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
