/* target.c: request target -> route and room (see target.h). */
#include "target.h"

#include <string.h>

/* RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~". Written out rather than
 * with <ctype.h>, whose answers depend on the locale. */
static bool is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

const char *target_room_name_check(const char *p, size_t len)
{
    if (len == 0)
        return "room name: empty";
    if (len > TARGET_ROOM_MAX)
        return "room name: longer than 64 bytes";
    /* "." and ".." are unreserved characters, but as a path segment they mean "this" and
     * "the parent" (RFC 3986 §3.3): a client or proxy would rewrite /r/.. before we see it. */
    if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
        return "room name: \".\" and \"..\" are not names";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '/')
            return "room name: no \"/\" (one path segment only)";
        if (ch == '%')
            return "room name: no percent-encoding (letters, digits and - . _ ~ only)";
        if (!is_unreserved(ch))
            return "room name: letters, digits and - . _ ~ only";
    }
    return NULL;
}

/* Whether path[0..len) is prefix exactly, or prefix followed by a '/' (then *rest is what
 * follows that '/'). */
static bool has_prefix_dir(const char *path, size_t len, const char *prefix, const char **rest,
                           size_t *rest_len)
{
    size_t n = strlen(prefix);
    if (len < n || memcmp(path, prefix, n) != 0)
        return false;
    if (len == n) {
        *rest = path + n;
        *rest_len = 0;
        return true;
    }
    if (path[n] != '/')
        return false; /* "/wsx" is a file, not a room */
    *rest = path + n + 1;
    *rest_len = len - n - 1;
    return true;
}

/* Exact comparison: paths are case-sensitive (RFC 9110 §4.2.3). */
static bool path_is(const char *path, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(path, s, len) == 0;
}

int target_parse(const char *target, size_t len, struct target *t, const char **why)
{
    *t = (struct target){.route = TARGET_FILE};
    *why = NULL;
    if (len == 0 || target[0] != '/') {
        /* Only origin-form. RFC 9112 §3.2.2 asks servers to accept absolute-form too, but we
         * are no proxy, and a target naming another host than Host is a classic way to
         * confuse caches and proxies in front of us. */
        *why = "request target: not a path (origin-form only)";
        return -1;
    }
    const char *q = memchr(target, '?', len);
    t->path = target;
    t->path_len = q != NULL ? (size_t)(q - target) : len;
    if (q != NULL) {
        t->query = q + 1;
        t->query_len = len - t->path_len - 1;
    }

    const char *rest;
    size_t rest_len;
    if (has_prefix_dir(t->path, t->path_len, "/ws", &rest, &rest_len)) {
        t->route = TARGET_ROOM;
        if (rest_len == 0) /* "/ws" and "/ws/": the default room */
            return 0;
    } else if (has_prefix_dir(t->path, t->path_len, "/r", &rest, &rest_len)) {
        t->route = TARGET_PAGE;
        if (t->path_len == 2) { /* "/r" alone is a file name like any other */
            t->route = TARGET_FILE;
            return 0;
        }
    } else {
        if (path_is(t->path, t->path_len, "/echo"))
            t->route = TARGET_ECHO;
        else if (path_is(t->path, t->path_len, "/healthz"))
            t->route = TARGET_HEALTHZ;
        else if (path_is(t->path, t->path_len, "/metrics"))
            t->route = TARGET_METRICS;
        return 0;
    }
    *why = target_room_name_check(rest, rest_len);
    if (*why != NULL)
        return -1;
    t->room = rest;
    t->room_len = rest_len;
    return 0;
}
