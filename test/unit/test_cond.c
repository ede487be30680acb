/* Unit tests for cond.c: HTTP-dates written and read (RFC 9110 §5.6.7's own examples, a
 * sweep against the C library's gmtime_r/strftime, every refusal), validators, entity-tag
 * lists (§8.8.3.2's comparison table), the precondition order of §13.2.2, and Accept-Encoding
 * (§12.5.3). Every parsed value comes from a guarded copy, so a read past its end crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cond.h"
#include "guard.h"

/* cmocka's assertions print values, not which table row failed: this names the row first. */
static const char *row_name = "";

static void assert_row_int(long long got, long long want)
{
    if (got != want)
        print_error("in row \"%s\":\n", row_name);
    assert_int_equal(got, want);
}

#define T_1994 784111777LL    /* Sun, 06 Nov 1994 08:49:37 GMT: §5.6.7's example */
#define T_2025 1748736000LL   /* Sun, 01 Jun 2025 00:00:00 GMT: "now" for RFC 850 years */
#define T_9999 253402300799LL /* Fri, 31 Dec 9999 23:59:59 GMT: the last IMF-fixdate */

/* ---- Writing dates ------------------------------------------------------------------------ */

static void date_format_known_values(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *want;
    } rows[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {T_1994, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
        {T_9999, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {-62167219200LL, "Sat, 01 Jan 0000 00:00:00 GMT"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[COND_DATE_LEN + 1];
        assert_int_equal(cond_date_format(rows[i].t, out), 0);
        assert_string_equal(out, rows[i].want);
    }
    char out[COND_DATE_LEN + 1] = "x";
    assert_int_equal(cond_date_format(T_9999 + 1, out), -1); /* year 10000: 5 digits */
    assert_string_equal(out, "");
    assert_int_equal(cond_date_format(-62167219201LL, out), -1); /* year -1 */
    assert_int_equal(cond_date_format(INT64_MAX, out), -1);
    assert_int_equal(cond_date_format(INT64_MIN, out), -1);
}

/* Our calendar against the C library's, every 7 hours and 13 seconds over 1900..2200, plus
 * each of those read back. */
static void date_format_agrees_with_gmtime_and_reads_back(void **state)
{
    (void)state;
    for (int64_t t = -2208988800LL; t < 7258118400LL; t += 7 * 3600 + 13) {
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64], got[COND_DATE_LEN + 1];
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm); /* the C locale */
        assert_int_equal(cond_date_format(t, got), 0);
        assert_string_equal(got, want);
        int64_t back = 0;
        assert_int_equal(cond_date_parse(got, COND_DATE_LEN, T_2025, &back), 0);
        assert_int_equal(back, t);
    }
}

/* ---- Reading dates ------------------------------------------------------------------------ */

static int parse_guarded(const char *s, int64_t now, int64_t *t)
{
    struct guarded g;
    size_t len = strlen(s);
    const char *in = guard_copy(&g, s, len);
    int rc = cond_date_parse(in, len, now, t);
    guard_free(&g);
    return rc;
}

static void date_parse_table(void **state)
{
    (void)state;
    static const struct {
        const char *name, *in;
        int rc;
        int64_t t;
    } rows[] = {
        /* §5.6.7's three examples, all the same instant. */
        {"IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", 0, T_1994},
        {"RFC 850", "Sunday, 06-Nov-94 08:49:37 GMT", 0, T_1994},
        {"asctime", "Sun Nov  6 08:49:37 1994", 0, T_1994},
        {"asctime, two-digit day", "Sun Nov 06 08:49:37 1994", 0, T_1994},
        {"leap day", "Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400},
        {"leap second", "Sun, 06 Nov 1994 08:49:60 GMT", 0, T_1994 + 23},
        {"last IMF-fixdate", "Fri, 31 Dec 9999 23:59:59 GMT", 0, T_9999},
        /* RFC 850's two-digit year, now being 2025: 2070 is 45 years ahead, so 2070; 80
         * would be 2080 (55 ahead), so 1980. */
        {"RFC 850 year 70", "Wednesday, 01-Jan-70 00:00:00 GMT", 0, 3155760000LL},
        {"RFC 850 year 80", "Tuesday, 01-Jan-80 00:00:00 GMT", 0, 315532800},
        /* Refusals: a bad date is ignored, so strictness costs at most a full 200. */
        {"empty", "", -1, 0},
        {"short", "Sun", -1, 0},
        {"lower-case day", "sun, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"upper-case month", "Sun, 06 NOV 1994 08:49:37 GMT", -1, 0},
        {"not GMT", "Sun, 06 Nov 1994 08:49:37 UTC", -1, 0},
        {"gmt", "Sun, 06 Nov 1994 08:49:37 gmt", -1, 0},
        {"trailing space", "Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0},
        {"trailing junk", "Sun, 06 Nov 1994 08:49:37 GMTx", -1, 0},
        {"one-digit day", "Sun, 6 Nov 1994 08:49:37 GMT", -1, 0},
        {"wrong weekday", "Mon, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"Feb 29 1900", "Thu, 29 Feb 1900 00:00:00 GMT", -1, 0},
        {"Feb 30", "Wed, 30 Feb 2000 00:00:00 GMT", -1, 0},
        {"day 00", "Sat, 00 Jan 2000 00:00:00 GMT", -1, 0},
        {"day 32", "Tue, 32 Jan 2000 00:00:00 GMT", -1, 0},
        {"hour 24", "Sun, 06 Nov 1994 24:00:00 GMT", -1, 0},
        {"minute 60", "Sun, 06 Nov 1994 08:60:00 GMT", -1, 0},
        {"second 61", "Sun, 06 Nov 1994 08:49:61 GMT", -1, 0},
        {"five-digit year", "Sun, 06 Nov 19945 08:49:37 GMT", -1, 0},
        {"huge year", "Sun, 06 Nov 99999999999999999999 08:49:37 GMT", -1, 0},
        {"sign in year", "Sun, 06 Nov -994 08:49:37 GMT", -1, 0},
        {"number", "784111777", -1, 0},
        {"RFC 850 short day", "Sun, 06-Nov-94 08:49:37 GMT", -1, 0},
        {"RFC 850 four-digit year", "Sunday, 06-Nov-1994 08:49:37 GMT", -1, 0},
        {"asctime one space", "Sun Nov 6 08:49:37 1994", -1, 0},
        {"asctime with GMT", "Sun Nov  6 08:49:37 1994 GMT", -1, 0},
        {"ISO 8601", "1994-11-06T08:49:37Z", -1, 0},
        {"cut short", "Sun, 06 Nov 1994 08:49:37 G", -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].name;
        int64_t t = -42;
        assert_row_int(parse_guarded(rows[i].in, T_2025, &t), rows[i].rc);
        assert_row_int(t, rows[i].rc == 0 ? rows[i].t : -42); /* untouched on failure */
    }
    /* RFC 850 near a century's end: in 2099, "05" is 2105 (6 years ahead), not 2005. */
    int64_t t;
    assert_int_equal(parse_guarded("Thursday, 01-Jan-05 00:00:00 GMT", 4070908800LL, &t), 0);
    assert_int_equal(t, 4260211200LL); /* 2105-01-01 */
}

/* ---- Validators and entity tags -------------------------------------------------------------- */

static void validators(void **state)
{
    (void)state;
    struct cond_validators v, gz, br;
    cond_validators_init(&v, T_1994, 123456789, 12222, COND_IDENTITY, T_2025);
    assert_string_equal(v.etag, "\"2ebc98a1.75bcd15-2fbe\"");
    assert_string_equal(v.last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(v.mtime, T_1994);
    /* The variants: same time, and even the same size, still never the same tag. */
    cond_validators_init(&gz, T_1994, 123456789, 12222, COND_GZIP, T_2025);
    cond_validators_init(&br, T_1994, 123456789, 12222, COND_BR, T_2025);
    assert_string_equal(gz.etag, "\"2ebc98a1.75bcd15-2fbe-gz\"");
    assert_string_equal(br.etag, "\"2ebc98a1.75bcd15-2fbe-br\"");
    /* §8.8.2.1: a time in the future is sent as now; the tag and mtime keep the truth. */
    cond_validators_init(&v, T_2025 + 100, 0, 1, COND_IDENTITY, T_2025);
    assert_string_equal(v.last_modified, "Sun, 01 Jun 2025 00:00:00 GMT");
    assert_int_equal(v.mtime, T_2025 + 100);
    /* The largest values fit; a time no date can spell gives no Last-Modified. */
    cond_validators_init(&v, -1, 999999999, UINT64_MAX, COND_GZIP, -1);
    assert_string_equal(v.etag, "\"ffffffffffffffff.3b9ac9ff-ffffffffffffffff-gz\"");
    assert_true(strlen(v.etag) < COND_ETAG_MAX);
    cond_validators_init(&v, INT64_MIN, 0, 0, COND_IDENTITY, 0);
    assert_string_equal(v.last_modified, "");
    assert_string_equal(cond_coding_name(COND_BR), "br");
    assert_string_equal(cond_coding_name(COND_GZIP), "gzip");
    assert_null(cond_coding_name(COND_IDENTITY));
    assert_string_equal(cond_coding_suffix(COND_GZIP), ".gz");
    assert_string_equal(cond_coding_suffix(COND_IDENTITY), "");
}

static int match_guarded(const char *list, const char *etag, bool is_weak)
{
    struct guarded g;
    size_t len = strlen(list);
    const char *in = guard_copy(&g, list, len);
    int rc = cond_etag_list_match((struct http_view){in, len}, etag, is_weak);
    guard_free(&g);
    return rc;
}

static void etag_lists(void **state)
{
    (void)state;
    static const struct {
        const char *name, *list, *etag;
        int strong, weak; /* the answer with strong and with weak comparison */
    } rows[] = {
        /* §8.8.3.2's table, with our tag strong: W/"1" vs "1" is weak-equal only. */
        {"same strong", "\"1\"", "\"1\"", 1, 1},
        {"weak vs strong", "W/\"1\"", "\"1\"", 0, 1},
        {"different", "\"2\"", "\"1\"", 0, 0},
        {"weak different", "W/\"2\"", "\"1\"", 0, 0},
        {"star", "*", "\"1\"", 1, 1},
        {"star with spaces", " \t* ", "\"1\"", 1, 1},
        {"list, last", "\"a\", \"b\" ,W/\"1\"", "\"1\"", 0, 1},
        {"list, first", "\"1\",\"a\"", "\"1\"", 1, 1},
        {"comma inside a tag", "\"a,b\", \"1\"", "\"a,b\"", 1, 1},
        {"empty elements", " , ,\"1\",, ", "\"1\"", 1, 1},
        {"empty value", "", "\"1\"", 0, 0},
        {"only commas", ",,,", "\"1\"", 0, 0},
        {"empty tag", "\"\"", "\"1\"", 0, 0},
        {"prefix is no match", "\"12\"", "\"1\"", 0, 0},
        {"case matters", "\"A\"", "\"a\"", 0, 0},
        /* Not the grammar: nothing matches, even a tag that was there (-1). */
        {"unquoted", "1", "\"1\"", -1, -1},
        {"lower-case w/", "w/\"1\"", "\"1\"", -1, -1},
        {"W without slash", "W\"1\"", "\"1\"", -1, -1},
        {"unterminated", "\"1", "\"1\"", -1, -1},
        {"star in a list", "*, \"1\"", "\"1\"", -1, -1},
        {"junk after a match", "\"1\" x", "\"1\"", -1, -1},
        {"two tags no comma", "\"1\"\"2\"", "\"1\"", -1, -1},
        {"space inside", "\"a b\"", "\"1\"", -1, -1},
        {"DEL inside", "\"a\x7f\"", "\"1\"", -1, -1},
        {"obs-text is etagc", "\"\xc3\xa9\", \"1\"", "\"1\"", 1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].name;
        assert_row_int(match_guarded(rows[i].list, rows[i].etag, false), rows[i].strong);
        assert_row_int(match_guarded(rows[i].list, rows[i].etag, true), rows[i].weak);
    }
}

/* ---- Preconditions ------------------------------------------------------------------------- */

/* A request with method and up to 4 header fields given as "Name", "value" pairs (NULL ends). */
static struct http_request make_req(const char *method, const char *const *fields)
{
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = (struct http_view){method, strlen(method)};
    for (size_t i = 0; fields != NULL && fields[2 * i] != NULL; i++) {
        req.headers[i].name = (struct http_view){fields[2 * i], strlen(fields[2 * i])};
        req.headers[i].value = (struct http_view){fields[2 * i + 1], strlen(fields[2 * i + 1])};
        req.nheaders = i + 1;
    }
    return req;
}

#define ETAG   "\"2ebc98a1.75bcd15-2fbe\""
#define LM     "Sun, 06 Nov 1994 08:49:37 GMT"
#define BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define AFTER  "Sun, 06 Nov 1994 08:49:38 GMT"

static void preconditions_in_order(void **state)
{
    (void)state;
    static const struct {
        const char *name, *method;
        const char *fields[9];
        int want;
    } rows[] = {
        {"none", "GET", {NULL}, COND_SEND},
        {"INM match", "GET", {"If-None-Match", ETAG, NULL}, COND_NOT_MODIFIED},
        {"INM weak match", "HEAD", {"If-None-Match", "W/" ETAG, NULL}, COND_NOT_MODIFIED},
        {"INM star", "GET", {"if-none-match", "*", NULL}, COND_NOT_MODIFIED},
        {"INM other", "GET", {"If-None-Match", "\"x\"", NULL}, COND_SEND},
        {"INM garbage", "GET", {"If-None-Match", "garbage", NULL}, COND_SEND},
        {"INM in the second field",
         "GET",
         {"If-None-Match", "\"x\"", "If-None-Match", ETAG, NULL},
         COND_NOT_MODIFIED},
        {"INM match, not GET", "POST", {"If-None-Match", ETAG, NULL}, COND_FAILED},
        {"IMS equal", "GET", {"If-Modified-Since", LM, NULL}, COND_NOT_MODIFIED},
        {"IMS later", "GET", {"If-Modified-Since", AFTER, NULL}, COND_NOT_MODIFIED},
        {"IMS earlier", "GET", {"If-Modified-Since", BEFORE, NULL}, COND_SEND},
        {"IMS asctime",
         "GET",
         {"If-Modified-Since", "Sun Nov  6 08:49:37 1994", NULL},
         COND_NOT_MODIFIED},
        {"IMS garbage", "GET", {"If-Modified-Since", "yesterday", NULL}, COND_SEND},
        {"IMS twice", "GET", {"If-Modified-Since", LM, "If-Modified-Since", LM, NULL}, COND_SEND},
        {"IMS on POST", "POST", {"If-Modified-Since", LM, NULL}, COND_SEND},
        /* §13.2.2: If-None-Match present, If-Modified-Since is not even looked at. */
        {"INM no match beats IMS",
         "GET",
         {"If-None-Match", "\"x\"", "If-Modified-Since", AFTER, NULL},
         COND_SEND},
        {"INM garbage beats IMS",
         "GET",
         {"If-Modified-Since", AFTER, "If-None-Match", "junk", NULL},
         COND_SEND},
        {"INM match beats IMS",
         "GET",
         {"If-None-Match", ETAG, "If-Modified-Since", BEFORE, NULL},
         COND_NOT_MODIFIED},
        /* If-Match: strong comparison, before everything else. */
        {"IM match", "GET", {"If-Match", ETAG, NULL}, COND_SEND},
        {"IM star", "GET", {"If-Match", "*", NULL}, COND_SEND},
        {"IM weak", "GET", {"If-Match", "W/" ETAG, NULL}, COND_FAILED},
        {"IM other", "GET", {"If-Match", "\"x\"", NULL}, COND_FAILED},
        {"IM fails before INM",
         "GET",
         {"If-None-Match", ETAG, "If-Match", "\"x\"", NULL},
         COND_FAILED},
        {"IM passes, INM matches",
         "GET",
         {"If-Match", ETAG, "If-None-Match", ETAG, NULL},
         COND_NOT_MODIFIED},
        {"IUS earlier", "GET", {"If-Unmodified-Since", BEFORE, NULL}, COND_FAILED},
        {"IUS equal", "GET", {"If-Unmodified-Since", LM, NULL}, COND_SEND},
        {"IUS garbage", "GET", {"If-Unmodified-Since", "x", NULL}, COND_SEND},
        {"IM beats IUS", "GET", {"If-Match", ETAG, "If-Unmodified-Since", BEFORE, NULL}, COND_SEND},
    };
    struct cond_validators v;
    cond_validators_init(&v, T_1994, 123456789, 12222, COND_IDENTITY, T_2025);
    assert_string_equal(v.etag, ETAG);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].name;
        struct http_request req = make_req(rows[i].method, rows[i].fields);
        assert_row_int(cond_evaluate(&req, &v, T_2025), rows[i].want);
    }
}

/* ---- Accept-Encoding ----------------------------------------------------------------------- */

static void accept_encoding_table(void **state)
{
    (void)state;
    enum { I = -1 }; /* "nothing more" in a row's list */
    static const struct {
        const char *name;
        const char *fields[5];
        int want[2];
    } rows[] = {
        {"absent", {NULL}, {I, I}},
        {"empty", {"Accept-Encoding", "", NULL}, {I, I}},
        {"Chrome", {"Accept-Encoding", "gzip, deflate, br, zstd", NULL}, {COND_BR, COND_GZIP}},
        {"Firefox", {"Accept-Encoding", "gzip, deflate, br", NULL}, {COND_BR, COND_GZIP}},
        {"gzip only", {"Accept-Encoding", "gzip", NULL}, {COND_GZIP, I}},
        {"x-gzip", {"Accept-Encoding", "x-gzip", NULL}, {COND_GZIP, I}},
        {"case", {"accept-encoding", "GZIP, Br", NULL}, {COND_BR, COND_GZIP}},
        {"deflate only", {"Accept-Encoding", "deflate", NULL}, {I, I}},
        {"identity only", {"Accept-Encoding", "identity", NULL}, {I, I}},
        {"q orders", {"Accept-Encoding", "br;q=0.5, gzip;q=0.8", NULL}, {COND_GZIP, COND_BR}},
        {"equal q: br first",
         {"Accept-Encoding", "gzip;q=0.5, br;q=0.5", NULL},
         {COND_BR, COND_GZIP}},
        {"gzip refused", {"Accept-Encoding", "gzip;q=0, br", NULL}, {COND_BR, I}},
        {"both refused", {"Accept-Encoding", "gzip;q=0.000, br;q=0", NULL}, {I, I}},
        {"refusal wins", {"Accept-Encoding", "gzip, gzip;q=0", NULL}, {I, I}},
        {"refusal in a second field",
         {"Accept-Encoding", "gzip", "Accept-Encoding", "gzip;q=0", NULL},
         {I, I}},
        {"fields combine",
         {"Accept-Encoding", "gzip", "Accept-Encoding", "br", NULL},
         {COND_BR, COND_GZIP}},
        {"star", {"Accept-Encoding", "*", NULL}, {COND_BR, COND_GZIP}},
        {"star but gzip", {"Accept-Encoding", "*, gzip;q=0", NULL}, {COND_BR, I}},
        {"star refused", {"Accept-Encoding", "*;q=0, gzip", NULL}, {COND_GZIP, I}},
        {"identity refused", {"Accept-Encoding", "gzip, identity;q=0", NULL}, {COND_GZIP, I}},
        {"identity refused alone", {"Accept-Encoding", "identity;q=0", NULL}, {I, I}},
        {"all refused", {"Accept-Encoding", "*;q=0", NULL}, {I, I}},
        {"identity preferred", {"Accept-Encoding", "gzip;q=0.5, identity", NULL}, {I, I}},
        {"identity between",
         {"Accept-Encoding", "br, gzip;q=0.2, identity;q=0.5", NULL},
         {COND_BR, I}},
        {"tie with identity",
         {"Accept-Encoding", "gzip;q=0.5, identity;q=0.5", NULL},
         {COND_GZIP, I}},
        {"star weighs identity", {"Accept-Encoding", "gzip;q=0.3, *;q=0.6", NULL}, {COND_BR, I}},
        {"spaces", {"Accept-Encoding", " gzip ;\tq=1.0 ,br ; Q=0.9 ", NULL}, {COND_GZIP, COND_BR}},
        {"q=1.000", {"Accept-Encoding", "gzip;q=1.000", NULL}, {COND_GZIP, I}},
        /* Broken elements are skipped, and the rest still counts. */
        {"q over 1", {"Accept-Encoding", "gzip;q=1.5, br", NULL}, {COND_BR, I}},
        {"q four decimals", {"Accept-Encoding", "gzip;q=0.0001", NULL}, {I, I}},
        {"q empty", {"Accept-Encoding", "gzip;q=", NULL}, {I, I}},
        {"q sign", {"Accept-Encoding", "gzip;q=-1, br;q=+1", NULL}, {I, I}},
        {"q dot first", {"Accept-Encoding", "gzip;q=.5", NULL}, {I, I}},
        {"q garbage", {"Accept-Encoding", "gzip;q=abc, br;q=0.5x", NULL}, {I, I}},
        {"other parameter", {"Accept-Encoding", "gzip;level=9", NULL}, {I, I}},
        {"no name", {"Accept-Encoding", ";q=1, br", NULL}, {COND_BR, I}},
        {"garbage", {"Accept-Encoding", "\"gzip\", <br>", NULL}, {I, I}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].name;
        struct http_request req = make_req("GET", rows[i].fields);
        enum cond_coding out[2] = {COND_IDENTITY, COND_IDENTITY};
        size_t n = cond_codings_wanted(&req, out);
        size_t want_n = rows[i].want[0] == I ? 0 : rows[i].want[1] == I ? 1 : 2;
        assert_row_int((long long)n, (long long)want_n);
        for (size_t k = 0; k < n; k++)
            assert_row_int(out[k], rows[i].want[k]);
    }
}

/* 1000 entries (a hostile header, just under the 8 KiB head): linear, and still right. */
static void accept_encoding_many_entries(void **state)
{
    (void)state;
    static char value[8000];
    size_t o = 0;
    for (int i = 0; i < 999; i++)
        o += (size_t)snprintf(value + o, sizeof value - o, "x%d,", i % 100);
    snprintf(value + o, sizeof value - o, "gzip");
    const char *fields[] = {"Accept-Encoding", value, NULL};
    struct http_request req = make_req("GET", fields);
    enum cond_coding out[2];
    assert_int_equal(cond_codings_wanted(&req, out), 1);
    assert_int_equal(out[0], COND_GZIP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(date_format_known_values),
        cmocka_unit_test(date_format_agrees_with_gmtime_and_reads_back),
        cmocka_unit_test(date_parse_table),
        cmocka_unit_test(validators),
        cmocka_unit_test(etag_lists),
        cmocka_unit_test(preconditions_in_order),
        cmocka_unit_test(accept_encoding_table),
        cmocka_unit_test(accept_encoding_many_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
