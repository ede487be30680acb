/* www.h: mapping a request target to a file under the www root, safely.
 *
 * Owns: percent-decoding and normalising the path (pure), the file-extension -> Content-Type
 * table and which types are worth a precompressed variant (pure), and opening the file, or
 * its ".br"/".gz" variant if that is not stale, so that nothing outside the root can be
 * reached, even through a symlink (edge: openat2 with RESOLVE_BENEATH, Linux 5.6+).
 * Does not own: HTTP (http.c), which variant a client wants (cond.c), making variants (the
 * Makefile) or sending the bytes (conn_io.c).
 *
 * Two fences, because either alone has holes: www_resolve() refuses any path that names
 * "..", an encoded "/" or NUL, or anything odd before the filesystem is touched; then
 * www_open() asks the kernel to refuse any resolution that would leave the root directory.
 */
#ifndef WSRELAY_WWW_H
#define WSRELAY_WWW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest path we serve, after decoding. Longer: 404. */
#define WWW_PATH_MAX 1024

enum www_err {
    WWW_ERR_BAD = -1,       /* malformed target (bad %-escape, encoded '/' or NUL, ...): 400 */
    WWW_ERR_NOT_FOUND = -2, /* a safe but impossible path (".." segment, too long): 404 */
};

/* Turns the path part of an origin-form request target ("/a/b.css?v=1") into a relative
 * path under the root ("a/b.css"), NUL-terminated in out[0..out_cap).
 *  - the query ("?...") and fragment are dropped; "/" and any path ending in "/" get
 *    "index.html" appended;
 *  - %XX escapes are decoded; an escape that is malformed, or that decodes to '/', '\\' or
 *    NUL, or any byte < 0x20 or 0x7f after decoding, is WWW_ERR_BAD;
 *  - a target not starting with '/' (absolute-form, authority-form, "*") is WWW_ERR_BAD;
 *  - empty segments ("//") are dropped; "." segments are dropped; a ".." segment, or any
 *    segment beginning with '.' (dotfiles like .git), is WWW_ERR_NOT_FOUND.
 * Returns the length of out (> 0) or a negative enum www_err. */
int www_resolve(const char *target, size_t target_len, char *out, size_t out_cap);

/* The Content-Type for a path by its extension (case-insensitive), e.g. "text/html;
 * charset=utf-8" for .html; "application/octet-stream" for anything not in the table. */
const char *www_mime(const char *path);

/* Whether a file of this name is worth a precompressed variant (text, scripts, JSON, SVG,
 * WebAssembly: not images, fonts or archives, which are compressed already). Only for these
 * does the server look for "name.br" / "name.gz" and send Vary: Accept-Encoding. */
bool www_is_compressible(const char *path);

/* An open regular file, ready to be sent. */
struct www_file {
    int fd;              /* O_RDONLY | O_CLOEXEC; the caller closes it */
    uint64_t size;       /* from fstat */
    int64_t mtime_sec;   /* st_mtim: the validators (cond.h) and the staleness of variants */
    uint32_t mtime_nsec; /* 0..999999999 */
};

/* Opens root_fd-relative `rel` (from www_resolve) with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS), so neither ".." nor a symlink can lead outside the root.
 * Returns 0 and fills *f, or -errno: -ENOENT, -EXDEV (escape attempt), -EISDIR / -EACCES
 * (not a regular file), ... The caller answers every failure with 404. Edge: does I/O. */
int www_open(int root_fd, const char *rel, struct www_file *f);

/* Opens the precompressed variant of `orig` (already open as `rel`): rel + suffix (".br",
 * ".gz"), with www_open()'s fences. A variant older than its original (mtime_sec.mtime_nsec
 * before orig's) is stale, made from a version that has since been edited: it is closed and
 * -ESTALE returned, so the caller serves the original. Equal times are fine: gzip -k and
 * the Makefile's rules give a variant its original's time. Returns 0 and fills *f, -ESTALE,
 * -ENAMETOOLONG, or what www_open() returns (*f then holds fd -1). Edge: does I/O.
 * Simplification: a time is all we compare; an original replaced by an *older* copy with its
 * time kept (cp -p, tar) keeps a newer variant looking fresh. make rebuilds variants only
 * when the original is newer too, so delete them (make clean) after such a restore. */
int www_open_variant(int root_fd, const char *rel, const char *suffix, const struct www_file *orig,
                     struct www_file *f);

/* Whether an absolute, resolved path (no symlinks, no "..": realpath's output) is one only
 * root and `uid` can change: every directory from "/" down to it is owned by root or uid,
 * and none is writable by group or others, except a sticky one above it (like /tmp: POSIX
 * lets only an entry's owner rename or remove it there). OpenSSH's StrictModes check, with
 * that allowance. On false, why_dir[0..why_len) names the first directory that fails.
 * Edge: stat(2) on each component. */
bool www_path_is_trusted(const char *resolved, uid_t uid, char *why_dir, size_t why_len);

/* The default www root for the binary at `exe` (its resolved path, /proc/self/exe): the
 * installed <prefix>/share/wsrelay/www if the binary is <prefix>/bin/wsrelay (make
 * install's layout), else www/ beside the binary (the source tree). Never a directory
 * relative to the working directory, and a candidate whose path is not trusted (see above:
 * /tmp/share planted by another user beside a checkout in /tmp) is skipped, its reason in
 * skipped[0..skipped_len) for the log. Returns an O_PATH directory descriptor and its
 * resolved path in path[0..path_len), or -errno (-ENOENT: no trusted candidate). */
int www_open_default(const char *exe, uid_t uid, char *path, size_t path_len, char *skipped,
                     size_t skipped_len);

#endif
