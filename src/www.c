/* www.c: request target -> file under the www root, as www.h describes.
 *
 * Owns: percent-decoding and normalising a URL path (RFC 3986 §2.1 escapes, §3.3 segments,
 * §5.2.4 dot segments), the extension -> media type table (RFC 9110 §8.3), and opening the
 * file so that it cannot lie outside the root (openat2(2), Linux 5.6+).
 * Does not own: HTTP parsing (http.c), conditional requests and Accept-Encoding (cond.c),
 * range requests, directory listings, reading or sending the file (routes.c, conn_io.c).
 * Precompressed variants are found here (www_open_variant()) but never made: make does that.
 * Two halves: www_resolve() and www_mime() are pure; www_open() is the edge and the only
 * function here that makes system calls.
 *
 * Why two fences: www_resolve() alone would trust every symlink in the tree; openat2 alone
 * would happily serve ".git/config" or decode "%2f" into a different path than the one a
 * log shows. Each catches what the other cannot see.
 */
#include "www.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ascii.h"

/* ---- Resolving a target (pure) ---------------------------------------------------------- */

static const char INDEX_FILE[] = "index.html";

/* Decodes one byte of a path segment at s[i] (s[i..end) is the rest of the segment): a plain
 * byte or a %XX escape (RFC 3986 §2.1). Returns how many input bytes it took (1 or 3) and
 * stores the byte, or WWW_ERR_BAD.
 *
 * Refused, whether sent raw or escaped:
 *  - '/' in escaped form: "%2f" would make one segment into two after our ".." check ran;
 *  - '\\': a path separator on other systems, and a classic traversal spelling ("..\\");
 *  - NUL: it would end the C string early, so we'd open a different file than we checked;
 *  - other control bytes (< 0x20, 0x7f): no file we serve has one, a log line would. */
static int decode_at(const char *s, size_t i, size_t end, unsigned char *out)
{
    unsigned char c = (unsigned char)s[i];
    int used = 1;
    if (c == '%') {
        if (end - i < 3)
            return WWW_ERR_BAD; /* "%" or "%4" at the end of the segment */
        int hi = ascii_hex_value(s[i + 1]), lo = ascii_hex_value(s[i + 2]);
        if (hi < 0 || lo < 0)
            return WWW_ERR_BAD; /* "%zz" */
        c = (unsigned char)(hi * 16 + lo);
        used = 3;
        if (c == '/')
            return WWW_ERR_BAD;
    }
    if (c == '\\' || c < 0x20 || c == 0x7f)
        return WWW_ERR_BAD;
    *out = c;
    return used;
}

/* www_resolve() without the cleanup: may leave a partial path in out on failure. */
static int resolve_into(const char *target, size_t target_len, char *out, size_t out_cap)
{
    /* Only origin-form (RFC 9112 §3.2.1) names a file. absolute-form ("http://x/y") is for
     * proxies, authority-form for CONNECT, asterisk-form ("*") for OPTIONS: none is ours. */
    if (target_len == 0 || target[0] != '/')
        return WWW_ERR_BAD;
    if (out_cap == 0)
        return WWW_ERR_NOT_FOUND; /* no room even for the NUL: "too long" */
    size_t cap = out_cap - 1 < WWW_PATH_MAX ? out_cap - 1 : WWW_PATH_MAX; /* bytes before NUL */

    /* The query (RFC 3986 §3.4) selects nothing on disk; a fragment should never reach a
     * server, but if one does it is not part of the path either. */
    size_t path_len = 0;
    while (path_len < target_len && target[path_len] != '?' && target[path_len] != '#')
        path_len++;

    size_t o = 0;        /* bytes written to out */
    bool is_dir = false; /* did the last segment name a directory ("" or ".")? */
    size_t s = 1;        /* start of the current segment, just past a '/' */
    for (;;) {
        size_t e = s;
        while (e < path_len && target[e] != '/')
            e++;

        /* First pass: validate and measure the decoded segment, remembering its first
         * byte, so dot segments are judged after decoding ("%2e%2e" is ".."). */
        size_t dlen = 0;
        unsigned char first = 0;
        for (size_t i = s; i < e;) {
            unsigned char c;
            int used = decode_at(target, i, e, &c);
            if (used < 0)
                return used;
            if (dlen == 0)
                first = c;
            dlen++;
            i += (size_t)used;
        }

        if (dlen == 0 || (dlen == 1 && first == '.')) {
            /* "//" and "/./" name the same directory as "/" (RFC 3986 §5.2.4 for "."; empty
             * segments are a filesystem habit): drop them. */
            is_dir = true;
        } else if (first == '.') {
            /* ".." would climb out of the root; we refuse it instead of resolving it, since
             * a client that sends it is not following a link we served. Other dot names are
             * hidden files (.git, .env, .htpasswd) that a www root may hold by accident. */
            return WWW_ERR_NOT_FOUND;
        } else {
            size_t need = dlen + (o > 0);
            if (need > cap - o)
                return WWW_ERR_NOT_FOUND;
            if (o > 0)
                out[o++] = '/';
            for (size_t i = s; i < e;) {
                unsigned char c = 0;
                i += (size_t)decode_at(target, i, e, &c); /* validated above */
                out[o++] = (char)c;
            }
            is_dir = false;
        }

        if (e >= path_len)
            break;
        s = e + 1;
    }

    if (is_dir) {
        size_t need = (sizeof INDEX_FILE - 1) + (o > 0);
        if (need > cap - o)
            return WWW_ERR_NOT_FOUND;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, INDEX_FILE, sizeof INDEX_FILE - 1);
        o += sizeof INDEX_FILE - 1;
    }
    out[o] = '\0';
    return (int)o;
}

int www_resolve(const char *target, size_t target_len, char *out, size_t out_cap)
{
    int rc = resolve_into(target, target_len, out, out_cap);
    if (rc < 0 && out_cap > 0)
        out[0] = '\0'; /* never leave half a path for a careless caller to open */
    return rc;
}

/* ---- Media types (pure) ----------------------------------------------------------------- */

/* RFC 9110 §8.3. Text types carry charset=utf-8 because a browser otherwise guesses (and an
 * old one might guess UTF-7). We never sniff content: a file's name decides its type. */
/* is_compressible: worth a .br/.gz variant (www_is_compressible()). ".ico" stays off: most
 * hold PNG inside. A direct request for "x.js.gz" is a file like any other, of type
 * application/gzip (RFC 6713), never sent with Content-Encoding (a download of an archive
 * must stay an archive). */
static const struct {
    const char *ext;
    const char *type;
    bool is_compressible;
} MIME_TYPES[] = {
    {"html", "text/html; charset=utf-8", true},
    {"htm", "text/html; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true}, /* RFC 9239 §6: text/javascript */
    {"mjs", "text/javascript; charset=utf-8", true},
    {"json", "application/json", true}, /* RFC 8259 §11: no charset parameter */
    {"map", "application/json", true},  /* source maps are JSON */
    {"webmanifest", "application/manifest+json", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"md", "text/markdown; charset=utf-8", true},
    {"xml", "application/xml", true},
    {"svg", "image/svg+xml", true},
    {"png", "image/png", false},
    {"jpg", "image/jpeg", false},
    {"jpeg", "image/jpeg", false},
    {"gif", "image/gif", false},
    {"webp", "image/webp", false},
    {"avif", "image/avif", false},
    {"ico", "image/x-icon", false},
    {"woff", "font/woff", false},   /* RFC 8081 */
    {"woff2", "font/woff2", false}, /* RFC 8081 */
    {"wasm", "application/wasm", true},
    {"pdf", "application/pdf", false},
    {"gz", "application/gzip", false},
};

/* The table row for path's extension (case-insensitive), or -1. */
static int mime_row(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    /* No dot, or only a leading one (".profile"): no extension. */
    if (dot != NULL && dot != base) {
        for (size_t i = 0; i < sizeof MIME_TYPES / sizeof MIME_TYPES[0]; i++)
            if (strcasecmp(dot + 1, MIME_TYPES[i].ext) == 0)
                return (int)i;
    }
    return -1;
}

const char *www_mime(const char *path)
{
    int i = mime_row(path);
    /* RFC 9110 §8.3: when the type is unknown, say only "bytes". */
    return i >= 0 ? MIME_TYPES[i].type : "application/octet-stream";
}

bool www_is_compressible(const char *path)
{
    int i = mime_row(path);
    return i >= 0 && MIME_TYPES[i].is_compressible;
}

/* ---- Opening the file (edge) ------------------------------------------------------------ */

/* O_NONBLOCK: if someone leaves a FIFO (or a device) in the www root, open() on it would wait
 * for a writer and freeze the whole event loop; with O_NONBLOCK it returns at once and the
 * S_ISREG check below refuses it. On a regular file the flag changes nothing.
 * O_NOCTTY: a terminal device must never become our controlling terminal. */
#define WWW_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Simplification: without openat2 (Linux < 5.6, or a seccomp filter that answers ENOSYS) we
 * do not try to emulate RESOLVE_BENEATH's "symlinks are fine as long as they stay inside":
 * we walk the path one component at a time with O_NOFOLLOW, so no symlink is followed at all
 * (-ELOOP for the last component, -ENOTDIR for a directory) and ".." is refused outright
 * (-EXDEV). Production code would follow symlinks itself and track the depth, as
 * libpathrs does; a www root made of plain files loses nothing. */
static int open_no_symlinks(int root_fd, const char *rel)
{
    char path[WWW_PATH_MAX + 1];
    size_t n = strnlen(rel, sizeof path);
    if (n == sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, rel, n + 1);
    if (n == 0)
        return -ENOENT; /* as openat2 and openat say for "" */
    if (path[0] == '/')
        return -EXDEV; /* an absolute path is an escape, as RESOLVE_BENEATH says too */

    int dir = root_fd; /* the directory we are in; ours to close unless it is root_fd */
    char *comp = path;
    int rc;
    for (;;) {
        char *slash = strchr(comp, '/');
        if (slash != NULL)
            *slash = '\0';
        if (strcmp(comp, "..") == 0) {
            rc = -EXDEV;
            goto out;
        }
        bool skip = comp[0] == '\0' || strcmp(comp, ".") == 0;
        if (slash == NULL) {
            if (skip) {
                rc = -EISDIR; /* "", "a/" or "a/.": the path names a directory */
                goto out;
            }
            rc = openat(dir, comp, WWW_OPEN_FLAGS | O_NOFOLLOW);
            if (rc < 0)
                rc = -errno;
            goto out;
        }
        if (!skip) {
            /* O_PATH: we only need to look up names in it, not read it. With O_NOFOLLOW a
             * symlink opens as itself, which O_DIRECTORY then refuses with ENOTDIR. */
            int next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) {
                rc = -errno;
                goto out;
            }
            if (dir != root_fd)
                close(dir);
            dir = next;
        }
        comp = slash + 1;
    }
out:
    if (dir != root_fd)
        close(dir);
    return rc;
}

int www_open(int root_fd, const char *rel, struct www_file *f)
{
    *f = (struct www_file){.fd = -1, .size = 0};

    /* RESOLVE_BENEATH: the kernel refuses (EXDEV) any lookup that would leave root_fd's
     * directory, by "..", by an absolute path or by a symlink, checked as it walks, so no
     * race with someone renaming directories can defeat it. RESOLVE_NO_MAGICLINKS: the
     * /proc/<pid>/fd/ kind of link, which jumps anywhere without a path, is refused too. */
    struct open_how how = {
        .flags = WWW_OPEN_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    if (fd < 0) {
        if (errno != ENOSYS)
            return -errno;
        fd = open_no_symlinks(root_fd, rel);
        if (fd < 0)
            return fd;
    }

    /* Only regular files: a directory has no bytes to send, and anything else (FIFO, socket,
     * device) could block, never end, or have side effects when read. */
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else if (!S_ISREG(st.st_mode))
        rc = -EACCES;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    f->mtime_sec = (int64_t)st.st_mtim.tv_sec;
    f->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
    return 0;
}

int www_open_variant(int root_fd, const char *rel, const char *suffix, const struct www_file *orig,
                     struct www_file *f)
{
    *f = (struct www_file){.fd = -1, .size = 0};
    char path[WWW_PATH_MAX + 8];
    int n = snprintf(path, sizeof path, "%s%s", rel, suffix);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    int rc = www_open(root_fd, path, f);
    if (rc < 0)
        return rc;
    bool is_older = f->mtime_sec < orig->mtime_sec ||
                    (f->mtime_sec == orig->mtime_sec && f->mtime_nsec < orig->mtime_nsec);
    if (is_older) {
        close(f->fd);
        *f = (struct www_file){.fd = -1, .size = 0};
        return -ESTALE;
    }
    return 0;
}

/* ---- The default root: where the page is, when --www does not say ------------------------- */

bool www_path_is_trusted(const char *resolved, uid_t uid, char *why_dir, size_t why_len)
{
    size_t len = strnlen(resolved, PATH_MAX);
    if (len == 0 || len >= PATH_MAX || resolved[0] != '/') {
        snprintf(why_dir, why_len, "%s", resolved);
        return false;
    }
    for (size_t end = 1; end <= len; end++) {
        if (end < len && resolved[end] != '/')
            continue;
        char prefix[PATH_MAX];
        memcpy(prefix, resolved, end);
        prefix[end] = '\0';
        struct stat st;
        bool ok =
            stat(prefix, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_uid == 0 || st.st_uid == uid);
        /* A directory others may write to lets them swap what lies below it; a sticky one
         * does not (only an entry's owner may rename or remove it), so it may stand above
         * the root, never be the root: files could be added to it. */
        bool others_write = ok && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
        if (others_write && !((st.st_mode & S_ISVTX) != 0 && end < len))
            ok = false;
        if (!ok) {
            snprintf(why_dir, why_len, "%s", prefix);
            return false;
        }
    }
    return true;
}

int www_open_default(const char *exe, uid_t uid, char *path, size_t path_len, char *skipped,
                     size_t skipped_len)
{
    char dir[PATH_MAX];
    skipped[0] = '\0';
    snprintf(path, path_len, "%s", exe);
    if (exe[0] != '/' || strlen(exe) >= sizeof dir)
        return -ENOENT;
    snprintf(dir, sizeof dir, "%s", exe);
    char *slash = strrchr(dir, '/');
    *slash = '\0'; /* the binary's directory ("" for a binary in /) */
    const char *base = strrchr(dir, '/');
    bool in_bin = base != NULL && strcmp(base + 1, "bin") == 0;

    char candidates[2][PATH_MAX + 32];
    int n = 0;
    if (in_bin) /* PREFIX/bin/wsrelay -> PREFIX/share/wsrelay/www */
        snprintf(candidates[n++], sizeof candidates[0], "%.*s/share/wsrelay/www", (int)(base - dir),
                 dir);
    snprintf(candidates[n++], sizeof candidates[0], "%s/www", dir);

    int err = -ENOENT;
    for (int i = 0; i < n; i++) {
        char real[PATH_MAX];
        if (realpath(candidates[i], real) == NULL) {
            err = -errno;
            snprintf(path, path_len, "%s", candidates[i]);
            continue;
        }
        char why_dir[PATH_MAX];
        if (!www_path_is_trusted(real, uid, why_dir, sizeof why_dir)) {
            snprintf(skipped, skipped_len,
                     "%s (%s is not owned by root or us, or others "
                     "may write to it)",
                     real, why_dir);
            snprintf(path, path_len, "%s", real);
            err = -EPERM;
            continue;
        }
        int fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        snprintf(path, path_len, "%s", real);
        return fd;
    }
    return err;
}
