/* fuzz_cond.c: libFuzzer target for cond.c: HTTP-dates, entity-tag lists, preconditions and
 * Accept-Encoding, all of them header values a client writes.
 *
 * The input is one header value (any bytes: http.c lets through obs-text and HTAB, and
 * cond.h promises an answer for anything). Each run, on exact-size heap copies so that ASan
 * sees a read past the end:
 *   1. cond_date_parse(): 0 or -1, *t untouched on -1; an accepted date lies in the years
 *      0000..9999, is written again by cond_date_format() and that text parses back to the
 *      same instant; an accepted IMF-fixdate without a leap second is exactly the text
 *      cond_date_format() writes for it (one spelling per instant).
 *   2. cond_etag_list_match() with one of our tags, strong and weak: -1, 0 or 1; both
 *      comparisons agree on what is malformed; a strong match is a weak match; a valid
 *      list that did not match does once ", <our tag>" is appended.
 *   3. cond_codings_wanted() with the input as one Accept-Encoding field, and cut in two
 *      fields at a comma (which §5.3 says means the same): at most 2 codings, distinct,
 *      br or gzip only, the same answer both ways; a coding whose name (or "*") does not
 *      appear in the input is never chosen.
 *   4. cond_evaluate() on a request whose fields are the input's NUL-separated pieces, each
 *      named by the generator If-Match / If-None-Match / If-Modified-Since /
 *      If-Unmodified-Since / Accept-Encoding, with GET, HEAD or POST: the answer is 200, 304
 *      or 412; never 304 for POST; 200 when no precondition field is present.
 * Why: these values arrive on every request for a file; a crash is a dead server, and a
 *      wrong 304 leaves a browser on an old page.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy_of(const void *p, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* Case-insensitive search for a lower-case needle. */
static bool contains_ci(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k && (p[i + j] | 0x20) == needle[j])
            j++;
        if (j == k)
            return true;
    }
    return false;
}

#define NOW 1748736000LL /* 2025-06-01 */

static void check_date(const char *in, size_t len)
{
    int64_t t = 42;
    int rc = cond_date_parse(in, len, NOW, &t);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(t == 42);
        return;
    }
    FUZZ_CHECK(t >= -62167219200LL && t < 253402300800LL + 1);
    char out[COND_DATE_LEN + 1];
    if (t < 253402300800LL) {
        FUZZ_CHECK(cond_date_format(t, out) == 0 && strlen(out) == COND_DATE_LEN);
        int64_t back = 0;
        FUZZ_CHECK(cond_date_parse(out, COND_DATE_LEN, NOW, &back) == 0 && back == t);
        bool is_imf = len == COND_DATE_LEN && in[3] == ',';
        bool is_leap = len >= 15 && memcmp(in + len - 6, "60 GMT", 6) == 0;
        if (is_imf && !is_leap)
            FUZZ_CHECK(memcmp(out, in, COND_DATE_LEN) == 0);
    }
}

static void check_etags(const char *in, size_t len, const char *etag)
{
    struct http_view v = {in, len};
    int strong = cond_etag_list_match(v, etag, false);
    int weak = cond_etag_list_match(v, etag, true);
    FUZZ_CHECK(strong >= -1 && strong <= 1 && weak >= -1 && weak <= 1);
    FUZZ_CHECK((strong == -1) == (weak == -1));
    if (strong == 1)
        FUZZ_CHECK(weak == 1);
    if (weak == 0) {
        size_t n = strlen(etag);
        char *more = malloc(len + 1 + n);
        FUZZ_CHECK(more != NULL);
        if (len > 0)
            memcpy(more, in, len);
        more[len] = ',';
        memcpy(more + len + 1, etag, n);
        FUZZ_CHECK(cond_etag_list_match((struct http_view){more, len + 1 + n}, etag, true) == 1);
        free(more);
    }
}

static struct http_request req_of(const char *method)
{
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = (struct http_view){method, strlen(method)};
    return req;
}

static void add_field(struct http_request *req, const char *name, const char *p, size_t n)
{
    if (req->nheaders == HTTP_MAX_HEADERS)
        return;
    req->headers[req->nheaders++] = (struct http_header){{name, strlen(name)}, {p, n}};
}

static void check_codings(const char *in, size_t len)
{
    struct http_request one = req_of("GET");
    add_field(&one, "Accept-Encoding", in, len);
    enum cond_coding a[2] = {COND_IDENTITY, COND_IDENTITY};
    size_t n = cond_codings_wanted(&one, a);
    FUZZ_CHECK(n <= 2);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(a[i] == COND_BR || a[i] == COND_GZIP);
    if (n == 2)
        FUZZ_CHECK(a[0] != a[1]);
    bool has_star = memchr(in, '*', len) != NULL;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == COND_GZIP)
            FUZZ_CHECK(has_star || contains_ci(in, len, "gzip"));
        if (a[i] == COND_BR)
            FUZZ_CHECK(has_star || contains_ci(in, len, "br"));
    }

    /* The same list in two fields, cut just after a comma. */
    const char *comma = len > 0 ? memchr(in, ',', len) : NULL;
    if (comma == NULL)
        return;
    size_t cut = (size_t)(comma - in) + 1;
    struct http_request two = req_of("GET");
    add_field(&two, "Accept-Encoding", in, cut - 1);
    add_field(&two, "accept-encoding", in + cut, len - cut);
    enum cond_coding b[2] = {COND_IDENTITY, COND_IDENTITY};
    size_t m = cond_codings_wanted(&two, b);
    FUZZ_CHECK(m == n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(a[i] == b[i]);
}

static void check_evaluate(const char *in, size_t len, struct fuzz_rng *rng)
{
    static const char *const names[] = {"If-Match", "If-None-Match", "If-Modified-Since",
                                        "If-Unmodified-Since", "Accept-Encoding"};
    static const char *const methods[] = {"GET", "HEAD", "POST"};
    const char *method = methods[fuzz_rng_next(rng) % 3];
    struct http_request req = req_of(method);
    bool has_precondition = false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && in[i] != '\0')
            continue;
        size_t which = (size_t)(fuzz_rng_next(rng) % 5);
        has_precondition |= which < 4 && req.nheaders < HTTP_MAX_HEADERS;
        add_field(&req, names[which], in + start, i - start);
        start = i + 1;
    }
    struct cond_validators v;
    int64_t mtime = (int64_t)(fuzz_rng_next(rng) % 4000000000ULL) - 100000000;
    cond_validators_init(&v, mtime, (uint32_t)(fuzz_rng_next(rng) % 1000000000), fuzz_rng_next(rng),
                         (enum cond_coding)(fuzz_rng_next(rng) % 3), NOW);
    FUZZ_CHECK(v.etag[0] == '"' && strlen(v.etag) < COND_ETAG_MAX);
    enum cond_result r = cond_evaluate(&req, &v, NOW);
    FUZZ_CHECK(r == COND_SEND || r == COND_NOT_MODIFIED || r == COND_FAILED);
    if (strcmp(method, "POST") == 0)
        FUZZ_CHECK(r != COND_NOT_MODIFIED);
    if (!has_precondition)
        FUZZ_CHECK(r == COND_SEND);
    /* Our own tag in If-None-Match, and nothing else: always 304 for GET. */
    struct http_request own = req_of("GET");
    add_field(&own, "If-None-Match", v.etag, strlen(v.etag));
    FUZZ_CHECK(cond_evaluate(&own, &v, NOW) == COND_NOT_MODIFIED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = copy_of(data, size);
    struct fuzz_rng rng;
    fuzz_rng_init(&rng, data, size);

    check_date(in, size);
    check_etags(in, size, "\"2ebc98a1.75bcd15-2fbe\"");
    check_etags(in, size, "\"a,b\"");
    check_codings(in, size);
    check_evaluate(in, size, &rng);

    free(in);
    return 0;
}
