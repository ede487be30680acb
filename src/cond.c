/* cond.c: validators, HTTP-dates, entity-tag lists, preconditions and Accept-Encoding, as
 * cond.h describes.
 *
 * Owns: RFC 9110 §5.6.7 (HTTP-date), §8.8 (validators), §12.4.2 and §12.5.3 (qvalues,
 * Accept-Encoding), §13.1 and §13.2 (preconditions and their order).
 * Does not own: anything on disk or on a socket. Pure: no syscalls, no clock (now is an
 * argument), no locale (gmtime/strftime spell names by locale and time zone; our own
 * calendar arithmetic below does not), no logging, no allocation.
 *
 * Chapters: 1. the calendar, 2. writing and reading dates, 3. validators and entity tags,
 * 4. preconditions, 5. Accept-Encoding.
 */
#include "cond.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"

/* ==== 1. The calendar ==================================================================== */

/* Proleptic Gregorian calendar <-> days since 1970-01-01, after Howard Hinnant's
 * "chrono-Compatible Low-Level Date Algorithms": exact for any year an int64 holds days of,
 * with no table and no loop. An era is 400 years (146097 days), after which the calendar
 * repeats; years start on March 1 inside the computation so that Feb 29 is a year's last day. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                     /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + (d - 1); /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;             /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday. 1970-01-01 was a Thursday. */
static unsigned weekday(int64_t days)
{
    return (unsigned)(((days % 7) + 7 + 4) % 7);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

/* ==== 2. Writing and reading HTTP-dates (RFC 9110 §5.6.7) ================================ */

static const char WDAY[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const WDAY_LONG[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char MONTH[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Seconds of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z: what 4DIGIT can spell. */
#define YEAR0_T     (-62167219200LL)
#define YEAR10000_T (253402300800LL)

int cond_date_format(int64_t t, char *out)
{
    out[0] = '\0';
    if (t < YEAR0_T || t >= YEAR10000_T)
        return -1;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400); /* floor */
    int64_t secs = t - days * 86400;                             /* [0, 86399] */
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* The ranges are checked above, so the output is exactly COND_DATE_LEN bytes. */
    int n = snprintf(out, COND_DATE_LEN + 1, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                     WDAY[weekday(days)], d, MONTH[m - 1], (int)y, (int)(secs / 3600),
                     (int)(secs / 60 % 60), (int)(secs % 60));
    if (n != COND_DATE_LEN) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* A cursor over the value being parsed: every reader checks what is left first, so no path
 * reads past s + len. */
struct scan {
    const char *p, *end;
};

static bool lit(struct scan *sc, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, s, n) != 0)
        return false;
    sc->p += n;
    return true;
}

/* Exactly n digits, as a number. */
static bool digits(struct scan *sc, size_t n, unsigned *out)
{
    if ((size_t)(sc->end - sc->p) < n)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ascii_is_digit(sc->p[i]))
            return false;
        v = v * 10 + (unsigned)(sc->p[i] - '0');
    }
    sc->p += n;
    *out = v;
    return true;
}

/* One of the names in the table (case-sensitive, §5.6.7): its index, or -1. */
static int name_in(struct scan *sc, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (lit(sc, names[i]))
            return (int)i;
    return -1;
}

static int short_name(struct scan *sc, const char (*names)[4], size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (lit(sc, names[i]))
            return (int)i;
    return -1;
}

/* time-of-day = hour ":" minute ":" second; second 60 is a leap second (§5.6.7). */
static bool time_of_day(struct scan *sc, unsigned *h, unsigned *mi, unsigned *s)
{
    return digits(sc, 2, h) && lit(sc, ":") && digits(sc, 2, mi) && lit(sc, ":") &&
           digits(sc, 2, s) && *h <= 23 && *mi <= 59 && *s <= 60;
}

/* Checks the date is real and named by its own weekday, then gives the seconds. */
static int finish(int wday, int64_t y, unsigned m, unsigned d, unsigned h, unsigned mi, unsigned s,
                  int64_t *t)
{
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    int64_t days = days_from_civil(y, m, d);
    if ((int)weekday(days) != wday)
        return -1;
    *t = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
    return 0;
}

/* IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT; date1 = 2DIGIT SP month SP 4DIGIT */
static int parse_imf(struct scan sc, int64_t *t)
{
    int wd = short_name(&sc, WDAY, 7);
    unsigned d, y, h, mi, s;
    if (wd < 0 || !lit(&sc, ", ") || !digits(&sc, 2, &d) || !lit(&sc, " "))
        return -1;
    int mo = short_name(&sc, MONTH, 12);
    if (mo < 0 || !lit(&sc, " ") || !digits(&sc, 4, &y) || !lit(&sc, " ") ||
        !time_of_day(&sc, &h, &mi, &s) || !lit(&sc, " GMT") || sc.p != sc.end)
        return -1;
    return finish(wd, y, (unsigned)mo + 1, d, h, mi, s, t);
}

/* rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT; date2 = 2DIGIT "-" month "-"
 * 2DIGIT. §5.6.7: a two-digit year that looks more than 50 years in the future is the most
 * recent past year with those digits. */
static int parse_rfc850(struct scan sc, int64_t now, int64_t *t)
{
    int wd = name_in(&sc, WDAY_LONG, 7);
    unsigned d, yy, h, mi, s;
    if (wd < 0 || !lit(&sc, ", ") || !digits(&sc, 2, &d) || !lit(&sc, "-"))
        return -1;
    int mo = short_name(&sc, MONTH, 12);
    if (mo < 0 || !lit(&sc, "-") || !digits(&sc, 2, &yy) || !lit(&sc, " ") ||
        !time_of_day(&sc, &h, &mi, &s) || !lit(&sc, " GMT") || sc.p != sc.end)
        return -1;
    int64_t now_days = now >= 0 ? now / 86400 : -((-now + 86399) / 86400);
    int64_t this_year;
    unsigned um, ud;
    civil_from_days(now_days, &this_year, &um, &ud);
    int64_t century = this_year - ((this_year % 100) + 100) % 100;
    int64_t y = century + yy;
    if (y > this_year + 50)
        y -= 100;
    else if (y + 100 <= this_year + 50)
        y += 100;
    return finish(wd, y, (unsigned)mo + 1, d, h, mi, s, t);
}

/* asctime-date = day-name SP date3 SP time-of-day SP year; date3 = month SP ( 2DIGIT /
 * ( SP DIGIT ) ) */
static int parse_asctime(struct scan sc, int64_t *t)
{
    int wd = short_name(&sc, WDAY, 7);
    if (wd < 0 || !lit(&sc, " "))
        return -1;
    int mo = short_name(&sc, MONTH, 12);
    unsigned d, y, h, mi, s;
    if (mo < 0 || !lit(&sc, " "))
        return -1;
    if (!(lit(&sc, " ") ? digits(&sc, 1, &d) : digits(&sc, 2, &d)))
        return -1;
    if (!lit(&sc, " ") || !time_of_day(&sc, &h, &mi, &s) || !lit(&sc, " ") || !digits(&sc, 4, &y) ||
        sc.p != sc.end)
        return -1;
    return finish(wd, y, (unsigned)mo + 1, d, h, mi, s, t);
}

int cond_date_parse(const char *s, size_t len, int64_t now, int64_t *t)
{
    struct scan sc = {s, s + len};
    int64_t v;
    /* Which form it is shows by the 4th byte: ',' after a 3-letter day name (IMF), ' '
     * (asctime), a letter (RFC 850's long day name). Each parser then insists on its whole
     * grammar, so trying them in turn would give the same answers; this just avoids it. */
    if (len < 4)
        return -1;
    int rc = s[3] == ','   ? parse_imf(sc, &v)
             : s[3] == ' ' ? parse_asctime(sc, &v)
                           : parse_rfc850(sc, now, &v);
    if (rc == 0)
        *t = v;
    return rc;
}

/* ==== 3. Validators and entity tags (RFC 9110 §8.8) ====================================== */

const char *cond_coding_name(enum cond_coding c)
{
    return c == COND_BR ? "br" : c == COND_GZIP ? "gzip" : NULL;
}

const char *cond_coding_suffix(enum cond_coding c)
{
    return c == COND_BR ? ".br" : c == COND_GZIP ? ".gz" : "";
}

/* The entity tag is strong, made of the served file's modification time to the nanosecond
 * and its size, nginx's recipe ("mtime-size") with the nanoseconds added; RFC 9110 §8.8.3.1
 * names such metadata as a usual source. Why strong: the tag changes whenever the file does,
 * unless a file of the same size is rewritten within one tick of the filesystem clock (a
 * few milliseconds) or has its time set back by hand (touch -d, cp -p of an older copy).
 * Simplification: a content hash would close that gap, at the cost of reading every file
 * once per change; the residual risk is one stale revalidation, never a wrong body, as long
 * as we serve no ranges (a strong tag would let If-Range splice two versions).
 * Why no inode (Apache's old default): nodes of a cluster behind one load balancer hold the
 * same files in different inodes; with dpkg or rsync -t keeping the times, mtime and size
 * give every node the same tag, so a browser moved to another node still gets its 304.
 * A variant (".br", ".gz") gets a tag of its own, from its own metadata plus its coding:
 * §8.8.3.3 says two encodings of one resource are different representations and must not
 * share a strong tag, or a cache could answer a gzip client with identity bytes. */
void cond_validators_init(struct cond_validators *v, int64_t mtime_sec, uint32_t mtime_nsec,
                          uint64_t size, enum cond_coding coding, int64_t now)
{
    *v = (struct cond_validators){.mtime = mtime_sec};
    const char *tail = coding == COND_BR ? "-br" : coding == COND_GZIP ? "-gz" : "";
    int n = snprintf(v->etag, sizeof v->etag, "\"%" PRIx64 ".%" PRIx32 "-%" PRIx64 "%s\"",
                     (uint64_t)mtime_sec, mtime_nsec, size, tail);
    if (n < 0 || (size_t)n >= sizeof v->etag)
        snprintf(v->etag, sizeof v->etag, "\"0\""); /* unreachable: 47 bytes at most */
    /* §8.8.2.1: a modification time in the future (a clock set wrong when the file was
     * written) is sent as the time of the response. */
    if (cond_date_format(mtime_sec < now ? mtime_sec : now, v->last_modified) != 0)
        v->last_modified[0] = '\0';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text: any visible byte but '"' (and none of SP, controls). */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* Weak comparison: both opaque-tags equal, either may be weak; strong: both strong too.
 * Our own tag is always strong, so only the other side's W/ matters. */
int cond_etag_list_match(struct http_view list, const char *etag, bool is_weak)
{
    size_t etag_len = strlen(etag);
    size_t i = 0, n = list.len;
    const char *p = list.p;
    while (i < n && is_ows(p[i]))
        i++;
    size_t j = n;
    while (j > i && is_ows(p[j - 1]))
        j--;
    if (j - i == 1 && p[i] == '*')
        return 1; /* §13.1.1, §13.1.2: "*" matches any current representation, and ours is */

    /* #entity-tag (§5.6.1): elements separated by commas with OWS around; empty elements
     * are allowed. A comma may sit inside the quotes (etagc includes it), so the list is
     * walked tag by tag, never split on commas. */
    bool matched = false;
    i = 0;
    for (;;) {
        while (i < n && (is_ows(p[i]) || p[i] == ','))
            i++;
        if (i == n)
            break;
        bool weak = false;
        if (n - i >= 2 && p[i] == 'W' && p[i + 1] == '/') { /* %s"W/": case-sensitive */
            weak = true;
            i += 2;
        }
        if (i == n || p[i] != '"')
            return -1;
        size_t start = i++;
        while (i < n && is_etagc((unsigned char)p[i]))
            i++;
        if (i == n || p[i] != '"')
            return -1;
        i++;
        size_t tag_len = i - start;
        if ((is_weak || !weak) && tag_len == etag_len && memcmp(p + start, etag, etag_len) == 0)
            matched = true; /* keep walking: a malformed tail makes the whole value invalid */
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i] != ',')
            return -1;
    }
    return matched ? 1 : 0;
}

/* ==== 4. Preconditions (RFC 9110 §13.2.2) ================================================ */

static bool method_is(const struct http_request *req, const char *m)
{
    size_t n = strlen(m);
    return req->method.len == n && memcmp(req->method.p, m, n) == 0;
}

/* Is any field named `name` present, and does any of them match? A field that is not a tag
 * list matches nothing (cond_etag_list_match() returning -1). */
static bool tags_present(const struct http_request *req, const char *name, const char *etag,
                         bool is_weak, bool *matched)
{
    bool present = false;
    *matched = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!http_view_eq(req->headers[i].name, name))
            continue;
        present = true;
        if (cond_etag_list_match(req->headers[i].value, etag, is_weak) == 1)
            *matched = true;
    }
    return present;
}

/* The one valid date of the field `name`, or false: absent, sent twice (a list of more than
 * one member, §13.1.3, §13.1.4), or not an HTTP-date. */
static bool one_date(const struct http_request *req, const char *name, int64_t now, int64_t *t)
{
    const struct http_header *h = http_find_header(req, name);
    if (h == NULL || http_count_headers(req, name) != 1)
        return false;
    return cond_date_parse(h->value.p, h->value.len, now, t) == 0;
}

enum cond_result cond_evaluate(const struct http_request *req, const struct cond_validators *v,
                               int64_t now)
{
    bool is_get_head = method_is(req, "GET") || method_is(req, "HEAD");
    bool matched;
    int64_t t;

    /* Step 1: If-Match, strong comparison (§13.1.1): the client changes something only if
     * it still has this version. Step 2, only without it: If-Unmodified-Since (§13.1.4). */
    if (tags_present(req, "If-Match", v->etag, false, &matched)) {
        if (!matched)
            return COND_FAILED;
    } else if (one_date(req, "If-Unmodified-Since", now, &t) && v->mtime > t) {
        return COND_FAILED;
    }
    /* Step 3: If-None-Match, weak comparison (§13.1.2): the client has this version
     * already. Step 4, only without it: If-Modified-Since, for GET and HEAD only (§13.1.3):
     * If-None-Match wins because a tag can tell apart two versions written within one
     * second, a date cannot. */
    if (tags_present(req, "If-None-Match", v->etag, true, &matched)) {
        if (matched)
            return is_get_head ? COND_NOT_MODIFIED : COND_FAILED;
    } else if (is_get_head && one_date(req, "If-Modified-Since", now, &t) && v->mtime <= t) {
        return COND_NOT_MODIFIED;
    }
    return COND_SEND;
}

/* ==== 5. Accept-Encoding (RFC 9110 §12.5.3) ============================================== */

/* §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
 * Returns 0..1000, or -1. */
static int qvalue(const char *p, size_t len)
{
    if (len == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    if (len == 1)
        return p[0] == '1' ? 1000 : 0;
    if (p[1] != '.' || len > 5)
        return -1;
    int v = 0, scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (!ascii_is_digit(p[i]) || (p[0] == '1' && p[i] != '0'))
            return -1;
        v += (p[i] - '0') * scale;
    }
    return p[0] == '1' ? 1000 : v;
}

/* One element, `coding [ weight ]`: its name into *name and its q (1000 without a weight).
 * Returns false for anything else (another parameter, a bad qvalue, a name that is not a
 * token): the caller skips the element. */
static bool accept_element(struct http_view e, struct http_view *name, int *q)
{
    size_t i = 0;
    while (i < e.len && ascii_is_tchar(e.p[i]))
        i++;
    if (i == 0)
        return false;
    *name = (struct http_view){e.p, i};
    *q = 1000;
    while (i < e.len && is_ows(e.p[i]))
        i++;
    if (i == e.len)
        return true;
    if (e.p[i] != ';')
        return false;
    i++;
    while (i < e.len && is_ows(e.p[i]))
        i++;
    if (e.len - i < 2 || (e.p[i] != 'q' && e.p[i] != 'Q') || e.p[i + 1] != '=')
        return false;
    i += 2;
    /* http_list_next() trimmed the element's end, so the qvalue runs to it. */
    *q = qvalue(e.p + i, e.len - i);
    return *q >= 0;
}

enum { Q_UNSET = -1 };

size_t cond_codings_wanted(const struct http_request *req, enum cond_coding out[2])
{
    int q_br = Q_UNSET, q_gzip = Q_UNSET, q_identity = Q_UNSET, q_star = Q_UNSET;
    for (size_t h = 0; h < req->nheaders; h++) {
        if (!http_view_eq(req->headers[h].name, "Accept-Encoding"))
            continue;
        /* Several fields form one list (§5.3). */
        size_t pos = 0;
        struct http_view e, name;
        int q;
        while (http_list_next(req->headers[h].value, &pos, &e)) {
            if (!accept_element(e, &name, &q))
                continue;
            int *slot = http_view_eq(name, "br")         ? &q_br
                        : http_view_eq(name, "gzip")     ? &q_gzip
                        : http_view_eq(name, "x-gzip")   ? &q_gzip
                        : http_view_eq(name, "identity") ? &q_identity
                        : http_view_eq(name, "*")        ? &q_star
                                                         : NULL;
            if (slot != NULL && (*slot == Q_UNSET || q < *slot))
                *slot = q;
        }
    }
    /* "*" stands for every coding not named (§12.5.3), identity included. */
    int eff_br = q_br != Q_UNSET ? q_br : q_star != Q_UNSET ? q_star : 0;
    int eff_gzip = q_gzip != Q_UNSET ? q_gzip : q_star != Q_UNSET ? q_star : 0;
    int eff_identity = q_identity != Q_UNSET ? q_identity : q_star; /* Q_UNSET: not weighed */

    size_t n = 0;
    enum cond_coding first = eff_gzip > eff_br ? COND_GZIP : COND_BR; /* br wins a tie */
    enum cond_coding second = first == COND_BR ? COND_GZIP : COND_BR;
    int q_first = first == COND_BR ? eff_br : eff_gzip;
    int q_second = first == COND_BR ? eff_gzip : eff_br;
    /* A coding the client weighs below identity is not worth it; an unweighed identity is
     * acceptable by default but ranks below any coding the client named. */
    if (q_first > 0 && q_first >= eff_identity)
        out[n++] = first;
    if (n == 1 && q_second > 0 && q_second >= eff_identity)
        out[n++] = second;
    return n;
}
