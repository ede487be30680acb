/* target.h: what a request target asks for, and which room (issue 11).
 *
 * Owns: splitting an origin-form request target (RFC 9112 §3.2.1, "/path?query") into its
 * path and query, naming the route the path selects (the room, the page of a room, /echo,
 * /healthz, /metrics or a static file), and the rule for room names, which the cluster
 * envelope (cluster.c) shares.
 * Does not own: what a route does (routes.c), or mapping a file path to a file (www.c).
 * Pure: no I/O, no allocation; results are views into the caller's bytes.
 *
 *     /ws  /ws/            the default room (its name is "")
 *     /ws/<room>           room <room>
 *     /r/<room>            the page, for room <room> (the page at / is the default room's)
 *     /echo  /healthz  /metrics
 *     anything else        a static file under the www root (www_resolve() judges it)
 *
 * A room name is 1..TARGET_ROOM_MAX bytes of RFC 3986 §2.3's unreserved characters
 * (A-Z a-z 0-9 - . _ ~), case-sensitive, and neither "." nor "..". Nothing is percent-decoded:
 * "%41" is refused, not read as "A", so a room has exactly one spelling in a URL, in a log
 * line and in a Redis channel name, and "..", "/" or a NUL can never reach any of them.
 */
#ifndef WSRELAY_TARGET_H
#define WSRELAY_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#define TARGET_ROOM_MAX 64

enum target_route {
    TARGET_FILE,    /* a static file: the whole path goes to www_resolve() */
    TARGET_ROOM,    /* /ws, /ws/, /ws/<room>: the WebSocket of a room */
    TARGET_PAGE,    /* /r/<room>: index.html, for that room */
    TARGET_ECHO,    /* /echo */
    TARGET_HEALTHZ, /* /healthz */
    TARGET_METRICS, /* /metrics */
};

/* A parsed target. room is a view into the target (room_len 0: the default room, or no
 * room for routes that have none). */
struct target {
    enum target_route route;
    const char *path, *query; /* path[0] == '/'; query excludes the '?' (NULL: none) */
    size_t path_len, query_len;
    const char *room;
    size_t room_len;
};

/* Parses target[0..len). Returns 0 and fills *t; or -1 with *why set to a static phrase (for
 * the body of a 400) when the target is not origin-form or names a room badly. A file path is
 * not judged here: www_resolve() does that. A fragment ('#') is not part of a request target
 * (RFC 9110 §7.1) and, like every byte outside the rules, makes a room name bad. */
int target_parse(const char *target, size_t len, struct target *t, const char **why);

/* Whether p[0..len) is a room name by the rule above; the empty name (the default room) is
 * not. Returns NULL if it is, or a static phrase saying why not ("room name: too long"). */
const char *target_room_name_check(const char *p, size_t len);

#endif
