/* cond.h: conditional requests (RFC 9110 §13) and content codings for static files.
 *
 * Owns: a file's validators (an entity tag, §8.8.3, and Last-Modified, §8.8.2), HTTP-dates
 * (§5.6.7: writing IMF-fixdate, reading all three forms a recipient must accept), entity-tag
 * lists (§8.8.3.2 comparison), the precondition order of §13.2.2 (If-Match,
 * If-Unmodified-Since, If-None-Match, If-Modified-Since) and Accept-Encoding (§12.5.3):
 * which precompressed variant a client would rather have.
 * Does not own: files, their metadata or variants on disk (www.c), the response itself
 * (routes.c writes it with http.c). Range requests and If-Range: wsrelay serves none.
 * Pure: no I/O, no clock (the caller passes `now`), no logging, no allocation.
 */
#ifndef WSRELAY_COND_H
#define WSRELAY_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* "Sun, 06 Nov 1994 08:49:37 GMT": RFC 9110 §5.6.7's IMF-fixdate is always 29 bytes. */
#define COND_DATE_LEN 29
/* Our entity tags: "<mtime s>.<mtime ns>-<size>-<coding>" in hex, quoted: at most
 * 2 + 16 + 1 + 8 + 1 + 16 + 3 = 47 bytes. 64 leaves room and is checked. */
#define COND_ETAG_MAX 64

/* The content codings we can serve (RFC 9110 §8.4.1), each from a file beside the original:
 * "x.js.gz" and "x.js.br". Order matters only as the tie-break: br first (RFC 7932 brotli
 * files are smaller than gzip's at equal quality), then gzip. */
enum cond_coding {
    COND_IDENTITY = 0, /* the file itself */
    COND_BR,
    COND_GZIP,
};

/* Content-Encoding's value ("br", "gzip"), NULL for identity. */
const char *cond_coding_name(enum cond_coding c);
/* The suffix of the variant's file name (".br", ".gz"), "" for identity. */
const char *cond_coding_suffix(enum cond_coding c);

/* ---- HTTP-dates (RFC 9110 §5.6.7) ----------------------------------------------------- */

/* Writes t (seconds since 1970-01-01T00:00:00Z) as an IMF-fixdate and a NUL into
 * out[0..COND_DATE_LEN]. Returns 0, or -1 for a time outside the years 0000..9999 that the
 * format can spell (out is then ""). */
int cond_date_format(int64_t t, char *out);

/* Parses s[0..len) as an HTTP-date: IMF-fixdate, or the obsolete RFC 850 form
 * ("Sunday, 06-Nov-94 08:49:37 GMT") or asctime form ("Sun Nov  6 08:49:37 1994"), which
 * §5.6.7 says a recipient MUST accept. Strict: the whole value and nothing else, case as in
 * the grammar (§5.6.7: HTTP-date is case-sensitive), a real calendar day whose weekday is the
 * one named, 00:00:00..23:59:60. now (seconds) places an RFC 850 two-digit year: more than
 * 50 years ahead of now means the century before. Returns 0 and *t, or -1 (*t untouched). */
int cond_date_parse(const char *s, size_t len, int64_t now, int64_t *t);

/* ---- Validators ------------------------------------------------------------------------- */

struct cond_validators {
    char etag[COND_ETAG_MAX];              /* strong, quoted: "\"…\"" */
    char last_modified[COND_DATE_LEN + 1]; /* IMF-fixdate, or "" if the time is unusable */
    int64_t mtime;                         /* seconds: what If-(Un)Modified-Since compare */
};

/* The validators of a file served in `coding` whose own metadata (the variant's, for br and
 * gzip) is mtime_sec.mtime_nsec and size. now: the time of the response; a modification
 * time after it is sent as now (RFC 9110 §8.8.2.1). */
void cond_validators_init(struct cond_validators *v, int64_t mtime_sec, uint32_t mtime_nsec,
                          uint64_t size, enum cond_coding coding, int64_t now);

/* Does the field value `list` (RFC 9110 §13.1.1 / §13.1.2: "*" or #entity-tag) match
 * `etag` (one of ours, strong)? Strong comparison (If-Match) or weak (If-None-Match),
 * §8.8.3.2. Returns 1 (a match, or "*"), 0 (no match), or -1: the value is not that grammar
 * (an unquoted tag, a "*" among tags, junk between elements); callers treat it as 0. */
int cond_etag_list_match(struct http_view list, const char *etag, bool is_weak);

/* What the preconditions of req say, for a resource that exists with validators v
 * (RFC 9110 §13.2.2's order; each field as its section says):
 *   COND_SEND          200: no precondition, or all passed;
 *   COND_NOT_MODIFIED  304: If-None-Match matched (GET/HEAD), or, without If-None-Match,
 *                      If-Modified-Since is a valid date not before v->mtime (GET/HEAD);
 *   COND_FAILED        412: If-Match did not match, or, without If-Match,
 *                      If-Unmodified-Since is a valid date before v->mtime; or If-None-Match
 *                      matched on another method.
 * A field sent more than once: If-Match and If-None-Match are lists and combine (RFC 9110
 * §5.3); the date fields then have more than one member and are ignored (§13.1.3). An
 * invalid date is ignored; an invalid tag list matches nothing. now: for RFC 850 years. */
enum cond_result {
    COND_SEND = 200,
    COND_NOT_MODIFIED = 304,
    COND_FAILED = 412,
};
enum cond_result cond_evaluate(const struct http_request *req, const struct cond_validators *v,
                               int64_t now);

/* ---- Accept-Encoding (RFC 9110 §12.5.3) ------------------------------------------------- */

/* The codings to try for req, best first, into out[0..2): each one the client finds
 * acceptable (named with q > 0, "x-gzip" being "gzip" (§8.4.1.3), or covered by a "*" with
 * q > 0) and preferred to identity (a higher q than identity's own or "*"'s; on a tie the
 * coding wins, being smaller). Higher q first, br before gzip on equal q. Returns how many
 * (0..2). 0, so identity, when the field is absent or empty: §12.5.3 lets us treat an
 * absent field as "anything", but a client that said nothing (curl, wrk) gets the plain
 * file. An element that is not `coding [ OWS ";" OWS "q=" qvalue ]` with §12.4.2's qvalue is
 * skipped; a coding named twice keeps its lowest q (a refusal is never overruled).
 * "identity;q=0" with no acceptable coding is disregarded (§12.5.3 lets a server ignore the
 * field; the caller sends identity rather than 406 to a client that refused everything). */
size_t cond_codings_wanted(const struct http_request *req, enum cond_coding out[2]);

#endif
