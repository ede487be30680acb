/* Unit tests for www.c: www_resolve() over a table of friendly, odd and hostile targets
 * (with guarded input and an exactly-sized output), the MIME table, and www_open() against a
 * real directory tree made in /tmp, holding symlinks in and out of the root, a directory and
 * a FIFO; once with openat2, and once in a child whose seccomp filter makes openat2 fail with
 * ENOSYS, so the no-symlinks fallback runs for real. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cmocka.h>

#include "guard.h"
#include "www.h"

/* cmocka's assertions print values, not which table row failed: this names the row first. */
static const char *row_name = "";

static void assert_row_int(long long got, long long want)
{
    if (got != want)
        print_error("in row \"%s\":\n", row_name);
    assert_int_equal(got, want);
}

/* Resolves target[0..len) from a guarded copy into a malloc'd buffer of exactly out_cap
 * bytes (ASan catches a write past it). Returns the result; *out holds a copy of the text. */
static int resolve(const char *target, size_t len, size_t out_cap, char *copy, size_t copy_cap)
{
    struct guarded g;
    const char *in = guard_copy(&g, target, len);
    char *out = malloc(out_cap > 0 ? out_cap : 1);
    assert_non_null(out);
    memset(out, 'Z', out_cap > 0 ? out_cap : 1);
    int rc = www_resolve(in, len, out, out_cap);
    if (rc > 0) {
        assert_true((size_t)rc < out_cap);
        assert_int_equal(out[rc], '\0');
        assert_int_equal(strlen(out), (size_t)rc);
    } else if (out_cap > 0) {
        assert_int_equal(out[0], '\0'); /* a failure leaves an empty string */
    }
    snprintf(copy, copy_cap, "%s", out_cap > 0 ? out : "");
    free(out);
    guard_free(&g);
    return rc;
}

/* ---- www_resolve ------------------------------------------------------------------------ */

struct resolve_row {
    const char *target;
    size_t len; /* sizeof - 1: rows may hold NUL */
    int rc;     /* > 0: the length of want */
    const char *want;
};

#define OK(t, w)                                                                                   \
    {                                                                                              \
        t, sizeof t - 1, (int)sizeof w - 1, w                                                      \
    }
#define ERR(t, e)                                                                                  \
    {                                                                                              \
        t, sizeof t - 1, e, ""                                                                     \
    }

static const struct resolve_row RESOLVE_ROWS[] = {
    /* Plain paths */
    OK("/", "index.html"),
    OK("/index.html", "index.html"),
    OK("/a/b/", "a/b/index.html"),
    OK("/a/b/c.css", "a/b/c.css"),
    OK("/a.b/c.d", "a.b/c.d"),
    OK("/a%2e", "a."),
    OK("/x-y_z~1", "x-y_z~1"),
    /* Empty and "." segments are dropped (RFC 3986 §5.2.4) */
    OK("/a//b", "a/b"),
    OK("//", "index.html"),
    OK("///a///", "a/index.html"),
    OK("/./a", "a"),
    OK("/a/./b", "a/b"),
    OK("/a/.", "a/index.html"),
    OK("/%2e/a", "a"),
    OK("/a/%2E", "a/index.html"),
    OK("/./", "index.html"),
    /* ".." and dotfiles: 404, whatever the spelling */
    ERR("/../etc/passwd", WWW_ERR_NOT_FOUND),
    ERR("/..", WWW_ERR_NOT_FOUND),
    ERR("/a/..", WWW_ERR_NOT_FOUND),
    ERR("/a/b/../c", WWW_ERR_NOT_FOUND),
    ERR("/%2e%2e/x", WWW_ERR_NOT_FOUND),
    ERR("/a/%2E%2e/b", WWW_ERR_NOT_FOUND),
    ERR("/.%2e/x", WWW_ERR_NOT_FOUND),
    ERR("/%2e./x", WWW_ERR_NOT_FOUND),
    ERR("/...", WWW_ERR_NOT_FOUND),
    ERR("/.git/config", WWW_ERR_NOT_FOUND),
    ERR("/a/.env", WWW_ERR_NOT_FOUND),
    ERR("/%2egit/config", WWW_ERR_NOT_FOUND),
    ERR("/a/.htpasswd", WWW_ERR_NOT_FOUND),
    /* Encoded '/', '\\' and NUL, raw or escaped control bytes: 400 */
    ERR("/%2f", WWW_ERR_BAD),
    ERR("/a%2fb", WWW_ERR_BAD),
    ERR("/a%2Fb", WWW_ERR_BAD),
    ERR("/..%2f..%2fetc/passwd", WWW_ERR_BAD),
    ERR("/%00", WWW_ERR_BAD),
    ERR("/a%00.html", WWW_ERR_BAD),
    ERR("/%5c", WWW_ERR_BAD),
    ERR("/%5C..%5C", WWW_ERR_BAD),
    ERR("/a\\b", WWW_ERR_BAD),
    ERR("/..\\x", WWW_ERR_BAD), /* the backslash is refused before the segment is judged */
    ERR("/%0a", WWW_ERR_BAD),
    ERR("/%0D%0A", WWW_ERR_BAD),
    ERR("/%1f", WWW_ERR_BAD),
    ERR("/%7f", WWW_ERR_BAD),
    ERR("/%7F", WWW_ERR_BAD),
    ERR("/a\0b", WWW_ERR_BAD),
    ERR("/a\tb", WWW_ERR_BAD),
    ERR("/a\x7f", WWW_ERR_BAD),
    /* Malformed escapes: 400 */
    ERR("/%zz", WWW_ERR_BAD),
    ERR("/%4", WWW_ERR_BAD),
    ERR("/%", WWW_ERR_BAD),
    ERR("/%g0", WWW_ERR_BAD),
    ERR("/%0g", WWW_ERR_BAD),
    ERR("/a%2", WWW_ERR_BAD),
    ERR("/%4/1", WWW_ERR_BAD),
    ERR("/%%41", WWW_ERR_BAD),
    ERR("/%?41", WWW_ERR_BAD),
    /* Escapes that decode to ordinary bytes */
    OK("/%41", "A"),
    OK("/%61%62%63", "abc"),
    OK("/%20x", " x"),
    OK("/a%3Fb", "a?b"),
    OK("/%25", "%"),
    OK("/%25zz", "%zz"),
    OK("/caf%C3%A9.html", "caf\xc3\xa9.html"),
    OK("/caf\xc3\xa9.html", "caf\xc3\xa9.html"),
    /* Not origin-form: 400 */
    ERR("http://x/y", WWW_ERR_BAD),
    ERR("*", WWW_ERR_BAD),
    ERR("", WWW_ERR_BAD),
    ERR("example.com:443", WWW_ERR_BAD),
    ERR("?x", WWW_ERR_BAD),
    ERR("%2f", WWW_ERR_BAD),
    /* Query and fragment are not part of the path, and are not decoded */
    OK("/a?x=../..", "a"),
    OK("/?x", "index.html"),
    OK("/a/?q=1", "a/index.html"),
    OK("/a#frag", "a"),
    OK("/a?%zz%00", "a"),
    OK("/a?b#c/..", "a"),
    ERR("/..?x", WWW_ERR_NOT_FOUND),
};

static void resolve_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof RESOLVE_ROWS / sizeof RESOLVE_ROWS[0]; i++) {
        const struct resolve_row *row = &RESOLVE_ROWS[i];
        row_name = row->target;
        char got[WWW_PATH_MAX + 1];
        assert_row_int(resolve(row->target, row->len, WWW_PATH_MAX + 1, got, sizeof got), row->rc);
        if (row->rc > 0)
            assert_string_equal(got, row->want);
    }
}

/* A target of `n` copies of `unit` between `pre` and `post`. */
static char *repeat(const char *pre, const char *unit, size_t n, const char *post, size_t *len)
{
    size_t ul = strlen(unit), pl = strlen(pre), ql = strlen(post);
    char *s = malloc(pl + ul * n + ql + 1);
    assert_non_null(s);
    memcpy(s, pre, pl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * n, post, ql + 1);
    *len = pl + ul * n + ql;
    return s;
}

static void resolve_length_limits(void **state)
{
    (void)state;
    static char got[4 * WWW_PATH_MAX];
    static const struct {
        const char *pre, *unit;
        size_t n;
        const char *post;
        int rc;
    } rows[] = {
        {"/", "a", WWW_PATH_MAX, "", WWW_PATH_MAX},          /* exactly the limit */
        {"/", "a", WWW_PATH_MAX + 1, "", WWW_ERR_NOT_FOUND}, /* one over */
        {"/", "%41", WWW_PATH_MAX, "", WWW_PATH_MAX},        /* the limit is after decoding */
        {"/", "%41", WWW_PATH_MAX + 1, "", WWW_ERR_NOT_FOUND},
        {"/", "a", WWW_PATH_MAX - 11, "/", WWW_PATH_MAX}, /* "/index.html" fits exactly */
        {"/", "a", WWW_PATH_MAX - 10, "/", WWW_ERR_NOT_FOUND},
        {"/", "a", WWW_PATH_MAX - 11, "//./", WWW_PATH_MAX}, /* dropped segments cost nothing */
        {"/", "a/", 400, "", 810},                           /* 400 segments, "/index.html" added */
        {"/", "./", 5000, "x", 1},
        {"/", "/", 5000, "x", 1},
        {"/", "a", 100000, "", WWW_ERR_NOT_FOUND},
        {"/", "a", 100000, "/%zz", WWW_ERR_NOT_FOUND}, /* the first bad segment decides */
        {"/", "a", 100000, "%zz", WWW_ERR_BAD},        /* a segment is checked whole first */
        {"/%zz", "a", 100000, "", WWW_ERR_BAD},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len;
        char *t = repeat(rows[i].pre, rows[i].unit, rows[i].n, rows[i].post, &len);
        char name[64];
        snprintf(name, sizeof name, "%s + %zu x %s + %s", rows[i].pre, rows[i].n, rows[i].unit,
                 rows[i].post);
        row_name = name;
        assert_row_int(resolve(t, len, WWW_PATH_MAX + 1, got, sizeof got), rows[i].rc);
        /* A larger buffer does not raise the limit. */
        assert_row_int(resolve(t, len, 3 * WWW_PATH_MAX, got, sizeof got), rows[i].rc);
        free(t);
    }
}

static void resolve_respects_a_small_output_buffer(void **state)
{
    (void)state;
    char got[64];
    assert_int_equal(resolve("/abcd", 5, 5, got, sizeof got), 4);
    assert_string_equal(got, "abcd");
    assert_int_equal(resolve("/abcde", 6, 5, got, sizeof got), WWW_ERR_NOT_FOUND);
    assert_int_equal(resolve("/a/bc", 5, 5, got, sizeof got), 4);
    assert_int_equal(resolve("/a/bcd", 6, 5, got, sizeof got), WWW_ERR_NOT_FOUND);
    assert_int_equal(resolve("/", 1, 11, got, sizeof got), 10);
    assert_int_equal(resolve("/", 1, 10, got, sizeof got), WWW_ERR_NOT_FOUND);
    assert_int_equal(resolve("/", 1, 1, got, sizeof got), WWW_ERR_NOT_FOUND);
    assert_int_equal(resolve("/", 1, 0, got, sizeof got), WWW_ERR_NOT_FOUND);
    assert_int_equal(resolve("*", 1, 0, got, sizeof got), WWW_ERR_BAD);
}

/* ---- www_mime --------------------------------------------------------------------------- */

static void mime_table(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type;
    } rows[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"a/b.HTML", "text/html; charset=utf-8"},
        {"old.htm", "text/html; charset=utf-8"},
        {"s.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"d.json", "application/json"},
        {"app.js.map", "application/json"},
        {"i.svg", "image/svg+xml"},
        {"p.png", "image/png"},
        {"favicon.ico", "image/x-icon"},
        {"r.txt", "text/plain; charset=utf-8"},
        {"j.jpg", "image/jpeg"},
        {"j.JPEG", "image/jpeg"},
        {"g.gif", "image/gif"},
        {"w.webp", "image/webp"},
        {"f.woff", "font/woff"},
        {"f.woff2", "font/woff2"},
        {"m.wasm", "application/wasm"},
        {"noext", "application/octet-stream"},
        {"a.b/c", "application/octet-stream"},
        {"dir.html/file", "application/octet-stream"},
        {".hidden", "application/octet-stream"},
        {"a/.html", "application/octet-stream"},
        {"archive.tar.gz", "application/gzip"}, /* served as itself, never decoded */
        {"index.js.br", "application/octet-stream"},
        {"x.", "application/octet-stream"},
        {"x.exe", "application/octet-stream"},
        {"x.htmlx", "application/octet-stream"},
        {"x.ht", "application/octet-stream"},
        {"", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].path;
        const char *got = www_mime(rows[i].path);
        if (strcmp(got, rows[i].type) != 0)
            print_error("in row \"%s\":\n", row_name);
        assert_string_equal(got, rows[i].type);
    }
}

static void compressible_table(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        bool want;
    } rows[] = {
        {"index.html", true}, {"a/b.CSS", true},  {"x.js", true},         {"x.mjs", true},
        {"d.json", true},     {"i.svg", true},    {"m.wasm", true},       {"r.txt", true},
        {"p.png", false},     {"j.jpg", false},   {"f.woff2", false},     {"favicon.ico", false},
        {"x.js.gz", false},   {"x.js.br", false}, {"noext", false},       {".js", false},
        {"a.pdf", false},     {"", false},        {"dir.js/file", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].path;
        assert_row_int(www_is_compressible(rows[i].path), rows[i].want);
    }
}

/* ---- www_open: a real tree -------------------------------------------------------------- */

/*   <tmp>/outside.txt                 "secret\n"     must never be served
 *   <tmp>/root/index.html             "<h1>hi</h1>\n"
 *             empty.txt               ""
 *             sub/page.css            "body{}\n"
 *             sub/deeper/x.js         "1;\n"
 *             sub/link_parent      -> ../index.html      (stays inside: allowed)
 *             link_in              -> sub/page.css       (allowed)
 *             link_dir             -> sub                (allowed, as a directory)
 *             link_out             -> ../outside.txt     (escape)
 *             link_abs             -> <tmp>/outside.txt  (escape: absolute)
 *             link_loop            -> link_loop
 *             fifo                    a named pipe with no writer */
struct tree {
    char tmp[64];
    char path[128];
    int root_fd;
};

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* <tmp>/rel, in buf. */
static const char *in_tmp(const struct tree *t, const char *rel, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", t->tmp, rel);
    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

static int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->tmp, sizeof t->tmp, "/tmp/wsrelay_www_test.XXXXXX");
    assert_non_null(mkdtemp(t->tmp));
    char p[256], q[256];
    put_file(in_tmp(t, "outside.txt", p, sizeof p), "secret\n");
    assert_int_equal(mkdir(in_tmp(t, "root", p, sizeof p), 0755), 0);
    put_file(in_tmp(t, "root/index.html", p, sizeof p), "<h1>hi</h1>\n");
    put_file(in_tmp(t, "root/empty.txt", p, sizeof p), "");
    assert_int_equal(mkdir(in_tmp(t, "root/sub", p, sizeof p), 0755), 0);
    put_file(in_tmp(t, "root/sub/page.css", p, sizeof p), "body{}\n");
    assert_int_equal(mkdir(in_tmp(t, "root/sub/deeper", p, sizeof p), 0755), 0);
    put_file(in_tmp(t, "root/sub/deeper/x.js", p, sizeof p), "1;\n");
    assert_int_equal(symlink("../index.html", in_tmp(t, "root/sub/link_parent", p, sizeof p)), 0);
    assert_int_equal(symlink("sub/page.css", in_tmp(t, "root/link_in", p, sizeof p)), 0);
    assert_int_equal(symlink("sub", in_tmp(t, "root/link_dir", p, sizeof p)), 0);
    assert_int_equal(symlink("../outside.txt", in_tmp(t, "root/link_out", p, sizeof p)), 0);
    in_tmp(t, "outside.txt", q, sizeof q);
    assert_int_equal(symlink(q, in_tmp(t, "root/link_abs", p, sizeof p)), 0);
    assert_int_equal(symlink("link_loop", in_tmp(t, "root/link_loop", p, sizeof p)), 0);
    assert_int_equal(mkfifo(in_tmp(t, "root/fifo", p, sizeof p), 0644), 0);
    in_tmp(t, "root", t->path, sizeof t->path);
    t->root_fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->root_fd >= 0);
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    static const char *const names[] = {
        "root/sub/link_parent", "root/link_in",         "root/link_dir",     "root/link_out",
        "root/link_abs",        "root/link_loop",       "root/fifo",         "root/index.html",
        "root/empty.txt",       "root/sub/deeper/x.js", "root/sub/page.css", "outside.txt",
    };
    static const char *const dirs[] = {"root/sub/deeper", "root/sub", "root", ""};
    char p[256];
    close(t->root_fd);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", t->tmp, names[i]);
        unlink(p);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", t->tmp, dirs[i]);
        rmdir(p);
    }
    free(t);
    return 0;
}

static int lowest_free_fd(void);

/* www_open_variant(): a fresh variant (same time, or newer) opens with its own size and
 * time; one older by a single nanosecond is stale; a missing one, a symlink out of the root
 * and a name too long are refused as www_open() would; no descriptor leaks. */
static void open_variants(void **state)
{
    (void)state;
    char tmp[64] = "/tmp/wsrelay_www_variant.XXXXXX", p[256];
    assert_non_null(mkdtemp(tmp));
    static const char *const files[] = {"a.js", "a.js.gz", "a.js.br", "b.css", "b.css.gz"};
    static const char *const bodies[] = {"1;\n", "GZ", "BRx", "b{}\n", "GZb"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        put_file(p, bodies[i]);
    }
    snprintf(p, sizeof p, "%s/x.txt", tmp);
    put_file(p, "outside\n");
    assert_int_equal(mkdir(strcat(strcpy(p, tmp), "/root"), 0755), 0);
    /* The files move under root/ only now, so the symlink target stays outside it. */
    for (size_t i = 0; i < 5; i++) {
        char from[256];
        snprintf(from, sizeof from, "%s/%s", tmp, files[i]);
        snprintf(p, sizeof p, "%s/root/%s", tmp, files[i]);
        assert_int_equal(rename(from, p), 0);
    }
    snprintf(p, sizeof p, "%s/root/c.js", tmp);
    put_file(p, "c;\n");
    char q[256];
    snprintf(q, sizeof q, "%s/root/c.js.gz", tmp);
    assert_int_equal(symlink("../x.txt", q), 0);
    /* Times: a.js and a.js.gz equal to the nanosecond, a.js.br 1 ns older, b.css.gz newer. */
    static const struct {
        const char *name;
        long sec, nsec;
    } times[] = {{"a.js", 1000, 500},
                 {"a.js.gz", 1000, 500},
                 {"a.js.br", 1000, 499},
                 {"b.css", 2000, 0},
                 {"b.css.gz", 2001, 0}};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        struct timespec ts[2] = {{times[i].sec, times[i].nsec}, {times[i].sec, times[i].nsec}};
        snprintf(p, sizeof p, "%s/root/%s", tmp, times[i].name);
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
    snprintf(p, sizeof p, "%s/root", tmp);
    int root = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(root >= 0);
    int before = lowest_free_fd();

    struct www_file a, v;
    assert_int_equal(www_open(root, "a.js", &a), 0);
    assert_int_equal(a.mtime_sec, 1000);
    assert_int_equal(a.mtime_nsec, 500);
    assert_int_equal(www_open_variant(root, "a.js", ".gz", &a, &v), 0);
    assert_int_equal(v.size, 2);
    assert_int_equal(v.mtime_sec, 1000);
    assert_int_equal(v.mtime_nsec, 500);
    close(v.fd);
    assert_int_equal(www_open_variant(root, "a.js", ".br", &a, &v), -ESTALE);
    assert_int_equal(v.fd, -1);
    assert_int_equal(www_open_variant(root, "a.js", ".zz", &a, &v), -ENOENT);
    close(a.fd);

    assert_int_equal(www_open(root, "b.css", &a), 0);
    assert_int_equal(www_open_variant(root, "b.css", ".gz", &a, &v), 0);
    assert_int_equal(v.size, 3);
    close(v.fd);
    assert_int_equal(www_open_variant(root, "b.css", ".br", &a, &v), -ENOENT);
    close(a.fd);

    assert_int_equal(www_open(root, "c.js", &a), 0);
    assert_int_equal(www_open_variant(root, "c.js", ".gz", &a, &v), -EXDEV); /* out of root */
    char longname[WWW_PATH_MAX + 1];
    memset(longname, 'a', WWW_PATH_MAX);
    longname[WWW_PATH_MAX] = '\0';
    assert_int_equal(www_open_variant(root, longname, ".longer-than-8", &a, &v), -ENAMETOOLONG);
    close(a.fd);
    assert_int_equal(lowest_free_fd(), before);

    close(root);
    static const char *const rm[] = {"root/a.js",     "root/a.js.gz", "root/a.js.br", "root/b.css",
                                     "root/b.css.gz", "root/c.js",    "root/c.js.gz", "x.txt"};
    for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, rm[i]);
        assert_int_equal(unlink(p), 0);
    }
    snprintf(p, sizeof p, "%s/root", tmp);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(rmdir(tmp), 0);
}

/* One www_open() case: what openat2 answers, and what the fallback answers. */
struct open_row {
    const char *rel;
    int rc_openat2;
    int rc_fallback;
    const char *content; /* for a 0 */
};

static const struct open_row OPEN_ROWS[] = {
    {"index.html", 0, 0, "<h1>hi</h1>\n"},
    {"empty.txt", 0, 0, ""},
    {"sub/page.css", 0, 0, "body{}\n"},
    {"sub/deeper/x.js", 0, 0, "1;\n"},
    {"./index.html", 0, 0, "<h1>hi</h1>\n"},
    {"sub//page.css", 0, 0, "body{}\n"},
    /* Symlinks that stay inside: fine for openat2; the fallback follows none. */
    {"link_in", 0, -ELOOP, "body{}\n"},
    {"sub/link_parent", 0, -ELOOP, "<h1>hi</h1>\n"},
    {"link_dir/page.css", 0, -ENOTDIR, "body{}\n"},
    {"sub/../index.html", 0, -EXDEV, "<h1>hi</h1>\n"},
    /* Escapes. */
    {"link_out", -EXDEV, -ELOOP, NULL},
    {"link_abs", -EXDEV, -ELOOP, NULL},
    {"../outside.txt", -EXDEV, -EXDEV, NULL},
    {"sub/../../outside.txt", -EXDEV, -EXDEV, NULL},
    {"/etc/passwd", -EXDEV, -EXDEV, NULL},
    /* Not a regular file, or not there. */
    {"sub", -EISDIR, -EISDIR, NULL},
    {"sub/", -EISDIR, -EISDIR, NULL},
    {".", -EISDIR, -EISDIR, NULL},
    {"link_dir", -EISDIR, -ELOOP, NULL},
    {"fifo", -EACCES, -EACCES, NULL}, /* and it must not block: see the alarm() */
    {"link_loop", -ELOOP, -ELOOP, NULL},
    {"missing.html", -ENOENT, -ENOENT, NULL},
    {"sub/missing/x", -ENOENT, -ENOENT, NULL},
    {"", -ENOENT, -ENOENT, NULL},
    {"index.html/x", -ENOTDIR, -ENOTDIR, NULL},
};

/* Runs one row; returns NULL if it behaved, or a static description of what went wrong.
 * No cmocka here: the fallback variant runs it in a forked child. */
static const char *check_open_row(int root_fd, const struct open_row *row, bool fallback)
{
    int want = fallback ? row->rc_fallback : row->rc_openat2;
    struct www_file f = {.fd = 12345, .size = 99};
    int rc = www_open(root_fd, row->rel, &f);
    if (rc != want)
        return "wrong result";
    if (rc < 0)
        return f.fd == -1 && f.size == 0 ? NULL : "failure did not reset *f";
    char buf[64];
    ssize_t n = read(f.fd, buf, sizeof buf);
    int fdflags = fcntl(f.fd, F_GETFD);
    close(f.fd);
    if (f.size != strlen(row->content))
        return "wrong size";
    if (n != (ssize_t)f.size || memcmp(buf, row->content, f.size) != 0)
        return "wrong content";
    if (fdflags < 0 || !(fdflags & FD_CLOEXEC))
        return "fd is not close-on-exec";
    return NULL;
}

/* The lowest free fd: if it moves, something leaked a descriptor. */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    close(fd);
    return fd;
}

static void open_with_openat2(void **state)
{
    struct tree *t = *state;
    int before = lowest_free_fd();
    /* A FIFO opened without O_NONBLOCK waits for a writer for ever: turn that into a
     * SIGALRM failure instead of a hung test run. */
    alarm(10);
    for (size_t i = 0; i < sizeof OPEN_ROWS / sizeof OPEN_ROWS[0]; i++) {
        const char *why = check_open_row(t->root_fd, &OPEN_ROWS[i], false);
        if (why != NULL)
            fail_msg("www_open(\"%s\"): %s", OPEN_ROWS[i].rel, why);
    }
    alarm(0);
    assert_int_equal(lowest_free_fd(), before);
}

/* Makes openat2 fail with ENOSYS in this process, as on a kernel older than 5.6. */
static int forbid_openat2(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

enum { CHILD_SKIP = 77, CHILD_LEAK = 78 }; /* exit codes; 0 = all rows fine, k = row k-1 */

static void open_with_fallback(void **state)
{
    struct tree *t = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        if (forbid_openat2() != 0)
            _exit(CHILD_SKIP);
        int before = lowest_free_fd();
        for (size_t i = 0; i < sizeof OPEN_ROWS / sizeof OPEN_ROWS[0]; i++) {
            const char *why = check_open_row(t->root_fd, &OPEN_ROWS[i], true);
            if (why != NULL) {
                fprintf(stderr, "fallback www_open(\"%s\"): %s\n", OPEN_ROWS[i].rel, why);
                _exit((int)i + 1);
            }
        }
        _exit(lowest_free_fd() == before ? 0 : CHILD_LEAK);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status)); /* not killed by SIGALRM: nothing blocked */
    if (WEXITSTATUS(status) == CHILD_SKIP)
        skip(); /* no seccomp here: nothing to learn */
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The two fences together, as server.c uses them: a hostile target never reaches a file. */
static void resolve_then_open(void **state)
{
    struct tree *t = *state;
    static const struct {
        const char *target;
        int rc;
    } rows[] = {
        {"/", 0},
        {"/sub/page.css?v=3", 0},
        {"/sub/deeper/", -ENOENT}, /* sub/deeper/index.html */
        {"/link_out", -EXDEV},
        {"/link_dir/page.css", 0},
        {"/sub/%2e%2e/%2e%2e/outside.txt", WWW_ERR_NOT_FOUND},
        {"/..%2foutside.txt", WWW_ERR_BAD},
        {"/fifo", -EACCES},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].target;
        char rel[WWW_PATH_MAX + 1];
        int rc = www_resolve(rows[i].target, strlen(rows[i].target), rel, sizeof rel);
        if (rc > 0) {
            struct www_file f;
            rc = www_open(t->root_fd, rel, &f);
            if (rc == 0)
                close(f.fd);
        }
        assert_row_int(rc, rows[i].rc);
    }
}

/* www_path_is_trusted(): a path only root and we can change. Built under a fresh mkdtemp()
 * directory (0700, ours) below /tmp (sticky, root's: allowed above the root). */
static void trusted_paths(void **state)
{
    (void)state;
    char base[] = "/tmp/wsrelay-trust-XXXXXX";
    assert_non_null(mkdtemp(base));
    char real[PATH_MAX], why[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 32];
    assert_non_null(realpath(base, real));
    snprintf(a, sizeof a, "%s/a", real);
    snprintf(b, sizeof b, "%s/a/b", real);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    uid_t me = geteuid();

    assert_true(www_path_is_trusted(b, me, why, sizeof why));
    assert_true(www_path_is_trusted("/", me, why, sizeof why));
    /* Group- or world-writable, not sticky: anyone in it could swap b. */
    assert_int_equal(chmod(a, 0775), 0);
    assert_false(www_path_is_trusted(b, me, why, sizeof why));
    assert_string_equal(why, a);
    /* Sticky and world-writable (like /tmp) above the root: allowed ... */
    assert_int_equal(chmod(a, 01777), 0);
    assert_true(www_path_is_trusted(b, me, why, sizeof why));
    /* ... but never as the root itself: anyone could add files to it. */
    assert_false(www_path_is_trusted(a, me, why, sizeof why));
    assert_int_equal(chmod(a, 0755), 0);
    /* Owned by someone else (only root can make that happen here). */
    if (me == 0) {
        assert_int_equal(chown(b, 65534, 65534), 0);
        assert_false(www_path_is_trusted(b, me, why, sizeof why));
        assert_string_equal(why, b);
        assert_true(www_path_is_trusted(b, 65534, why, sizeof why)); /* ... unless it is us */
    }
    /* Not absolute, not there, not a directory. */
    assert_false(www_path_is_trusted("www", me, why, sizeof why));
    assert_false(www_path_is_trusted("", me, why, sizeof why));
    snprintf(b, sizeof b, "%s/a/missing", real);
    assert_false(www_path_is_trusted(b, me, why, sizeof why));

    snprintf(b, sizeof b, "%s/a/b", real);
    assert_int_equal(rmdir(b), 0);
    assert_int_equal(rmdir(a), 0);
    assert_int_equal(rmdir(real), 0);
}

/* www_open_default(): bin/ -> ../share/wsrelay/www first; anything else: www/ beside it. */
static void default_root_by_layout(void **state)
{
    (void)state;
    char base[] = "/tmp/wsrelay-layout-XXXXXX";
    assert_non_null(mkdtemp(base));
    char real[PATH_MAX], p[PATH_MAX + 64], path[PATH_MAX], skipped[PATH_MAX + 128];
    assert_non_null(realpath(base, real));
    const char *dirs[] = {"/bin",  "/bin/www", "/share", "/share/wsrelay", "/share/wsrelay/www",
                          "/tree", "/tree/www"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s%s", real, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof p, "%s/bin/wsrelay", real);
    int fd = www_open_default(p, geteuid(), path, sizeof path, skipped, sizeof skipped);
    assert_true(fd >= 0);
    close(fd);
    snprintf(p, sizeof p, "%s/share/wsrelay/www", real);
    assert_string_equal(path, p); /* installed first, resolved */
    snprintf(p, sizeof p, "%s/tree/wsrelay", real);
    fd = www_open_default(p, geteuid(), path, sizeof path, skipped, sizeof skipped);
    assert_true(fd >= 0);
    close(fd);
    snprintf(p, sizeof p, "%s/tree/www", real);
    assert_string_equal(path, p); /* not in bin/: ../share is not even looked at */
    assert_string_equal(skipped, "");
    assert_int_equal(
        www_open_default("wsrelay", geteuid(), path, sizeof path, skipped, sizeof skipped),
        -ENOENT); /* a relative name never means the working directory */
    for (size_t i = sizeof dirs / sizeof dirs[0]; i-- > 0;) {
        snprintf(p, sizeof p, "%s%s", real, dirs[i]);
        assert_int_equal(rmdir(p), 0);
    }
    assert_int_equal(rmdir(real), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolve_table),
        cmocka_unit_test(resolve_length_limits),
        cmocka_unit_test(resolve_respects_a_small_output_buffer),
        cmocka_unit_test(mime_table),
        cmocka_unit_test(compressible_table),
        cmocka_unit_test(open_variants),
        cmocka_unit_test_setup_teardown(open_with_openat2, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(open_with_fallback, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(resolve_then_open, tree_setup, tree_teardown),
        cmocka_unit_test(trusted_paths),
        cmocka_unit_test(default_root_by_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
