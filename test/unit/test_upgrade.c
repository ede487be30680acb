/* Unit tests for upgrade.c: Sec-WebSocket-Accept against RFC 6455 §1.3's example and other
 * vectors (computed independently with Python's hashlib), then upgrade_check() over a table
 * of real request heads, run through http_parse_request() first as server.c will do, one
 * row per rule of §4.2.1 and per error path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "upgrade.h"

/* ---- Sec-WebSocket-Accept --------------------------------------------------------------- */

static void accept_key_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *key, *accept;
    } rows[] = {
        {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, /* RFC 6455 §1.3 */
        {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
        {"/////////////////////w==", "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
        {"", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="}, /* the hash of the GUID alone */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char accept[UPGRADE_ACCEPT_LEN + 1];
        memset(accept, 'Z', sizeof accept);
        upgrade_accept_key(rows[i].key, strlen(rows[i].key), accept);
        assert_string_equal(accept, rows[i].accept);
        assert_int_equal(strlen(accept), UPGRADE_ACCEPT_LEN);
    }
}

/* Only key_len bytes are hashed: the key is a view into the request, not a C string. */
static void accept_key_uses_only_key_len_bytes(void **state)
{
    (void)state;
    static const char view[] = "dGhlIHNhbXBsZSBub25jZQ==\r\nUpgrade: websocket";
    char accept[UPGRADE_ACCEPT_LEN + 1];
    upgrade_accept_key(view, 24, accept);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    upgrade_accept_key(NULL, 0, accept);
    assert_string_equal(accept, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
}

/* No valid key is that long; the answer is an empty string rather than an overflow. */
static void accept_key_refuses_absurd_lengths(void **state)
{
    (void)state;
    char big[4096];
    memset(big, 'A', sizeof big);
    char accept[UPGRADE_ACCEPT_LEN + 1];
    memset(accept, 'Z', sizeof accept);
    upgrade_accept_key(big, sizeof big, accept);
    assert_string_equal(accept, "");
    upgrade_accept_key(big, 128, accept); /* the longest it hashes */
    assert_int_equal(strlen(accept), UPGRADE_ACCEPT_LEN);
    upgrade_accept_key(big, 129, accept);
    assert_string_equal(accept, "");
}

/* ---- upgrade_check ---------------------------------------------------------------------- */

/* A valid handshake, field by field, so each row can change exactly one thing. */
#define LINE "GET /ws HTTP/1.1\r\n"
#define HOST "Host: example.com\r\n"
#define UPG  "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER  "Sec-WebSocket-Version: 13\r\n"
#define END  "\r\n"

#define ACCEPT_RFC "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

struct check_row {
    const char *name;
    const char *head;
    int rc;
};

static const struct check_row CHECK_ROWS[] = {
    /* Valid */
    {"RFC 6455 1.2 example", LINE HOST UPG CONN KEY VER END, 0},
    {"fields in another order", LINE VER KEY CONN UPG HOST END, 0},
    {"Upgrade: WebSocket", LINE HOST "Upgrade: WebSocket\r\n" CONN KEY VER END, 0},
    {"Upgrade: WEBSOCKET", LINE HOST "Upgrade: WEBSOCKET\r\n" CONN KEY VER END, 0},
    {"Upgrade list", LINE HOST "Upgrade: h2c, websocket\r\n" CONN KEY VER END, 0},
    {"Upgrade in two fields", LINE HOST "Upgrade: h2c\r\n" UPG CONN KEY VER END, 0},
    {"Firefox Connection", LINE HOST UPG "Connection: keep-alive, Upgrade\r\n" KEY VER END, 0},
    {"connection: upgrade", LINE HOST UPG "connection: upgrade\r\n" KEY VER END, 0},
    {"Connection: UPGRADE", LINE HOST UPG "Connection: UPGRADE\r\n" KEY VER END, 0},
    {"Connection in two fields",
     LINE HOST UPG "Connection: keep-alive\r\nConnection: Upgrade\r\n" KEY VER END, 0},
    {"field names in any case",
     LINE "HOST: example.com\r\nUPGRADE: websocket\r\nCONNECTION: Upgrade\r\n"
          "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n" END,
     0},
    {"OWS around values",
     LINE HOST "Upgrade:  websocket \r\n" CONN "Sec-WebSocket-Key:\tdGhlIHNhbXBsZSBub25jZQ==\t\r\n"
               "Sec-WebSocket-Version:   13  \r\n" END,
     0},
    {"Content-Length: 0", LINE HOST UPG CONN KEY VER "Content-Length: 0\r\n" END, 0},
    {"Origin and extensions ignored",
     LINE HOST UPG CONN KEY VER "Origin: http://example.com\r\n"
                                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                "Sec-WebSocket-Protocol: chat\r\n" END,
     0},
    /* §4.2.1 item 1: GET */
    {"POST", "POST /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END, UPGRADE_ERR_METHOD},
    {"HEAD", "HEAD /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END, UPGRADE_ERR_METHOD},
    {"get (methods are case-sensitive)", "get /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END,
     UPGRADE_ERR_METHOD},
    {"GETS", "GETS /ws HTTP/1.1\r\n" HOST UPG CONN KEY VER END, UPGRADE_ERR_METHOD},
    {"POST over HTTP/1.0 (method first)", "POST /ws HTTP/1.0\r\n" HOST UPG CONN KEY VER END,
     UPGRADE_ERR_METHOD},
    /* §4.2.1 item 1: HTTP/1.1, and no body */
    {"HTTP/1.0", "GET /ws HTTP/1.0\r\n" HOST UPG CONN KEY VER END, UPGRADE_ERR_HTTP},
    {"HTTP/1.0 without Host", "GET /ws HTTP/1.0\r\n" UPG CONN KEY VER END, UPGRADE_ERR_HTTP},
    {"Content-Length: 5", LINE HOST UPG CONN KEY VER "Content-Length: 5\r\n" END, UPGRADE_ERR_HTTP},
    {"Transfer-Encoding", LINE HOST UPG CONN KEY VER "Transfer-Encoding: chunked\r\n" END,
     UPGRADE_ERR_HTTP},
    /* §4.2.1 items 3 and 4: Upgrade and Connection */
    {"no Upgrade", LINE HOST CONN KEY VER END, UPGRADE_ERR_HEADERS},
    {"Upgrade: websockets", LINE HOST "Upgrade: websockets\r\n" CONN KEY VER END,
     UPGRADE_ERR_HEADERS},
    {"Upgrade: h2c", LINE HOST "Upgrade: h2c\r\n" CONN KEY VER END, UPGRADE_ERR_HEADERS},
    {"Upgrade: websocket/13", LINE HOST "Upgrade: websocket/13\r\n" CONN KEY VER END,
     UPGRADE_ERR_HEADERS},
    {"Upgrade empty", LINE HOST "Upgrade:\r\n" CONN KEY VER END, UPGRADE_ERR_HEADERS},
    {"no Connection", LINE HOST UPG KEY VER END, UPGRADE_ERR_HEADERS},
    {"Connection: keep-alive", LINE HOST UPG "Connection: keep-alive\r\n" KEY VER END,
     UPGRADE_ERR_HEADERS},
    {"Connection: upgraded", LINE HOST UPG "Connection: upgraded\r\n" KEY VER END,
     UPGRADE_ERR_HEADERS},
    {"Connection: websocket", LINE HOST UPG "Connection: websocket\r\n" KEY VER END,
     UPGRADE_ERR_HEADERS},
    {"headers before version", LINE HOST CONN KEY END, UPGRADE_ERR_HEADERS},
    /* §4.2.1 item 6 and §4.4: the version */
    {"no version", LINE HOST UPG CONN KEY END, UPGRADE_ERR_VERSION},
    {"version 8", LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END, UPGRADE_ERR_VERSION},
    {"version 14", LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 14\r\n" END, UPGRADE_ERR_VERSION},
    {"version 130", LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 130\r\n" END,
     UPGRADE_ERR_VERSION},
    {"version 013", LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 013\r\n" END,
     UPGRADE_ERR_VERSION},
    {"version list", LINE HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n" END,
     UPGRADE_ERR_VERSION},
    {"version empty", LINE HOST UPG CONN KEY "Sec-WebSocket-Version:\r\n" END, UPGRADE_ERR_VERSION},
    {"version twice", LINE HOST UPG CONN KEY VER VER END, UPGRADE_ERR_VERSION},
    {"version before key", LINE HOST UPG CONN "Sec-WebSocket-Version: 8\r\n" END,
     UPGRADE_ERR_VERSION},
    /* §4.2.1 item 5: the key */
    {"no key", LINE HOST UPG CONN VER END, UPGRADE_ERR_KEY},
    {"key twice", LINE HOST UPG CONN KEY KEY VER END, UPGRADE_ERR_KEY},
    {"key twice, different",
     LINE HOST UPG CONN KEY "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n" VER END,
     UPGRADE_ERR_KEY},
    {"key empty", LINE HOST UPG CONN "Sec-WebSocket-Key:\r\n" VER END, UPGRADE_ERR_KEY},
    {"key 23 chars", LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n" VER END,
     UPGRADE_ERR_KEY},
    {"key 25 chars", LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n" VER END,
     UPGRADE_ERR_KEY},
    {"key of 18 bytes (no padding)",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAB\r\n" VER END, UPGRADE_ERR_KEY},
    {"key of 17 bytes (one =)",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQA=\r\n" VER END, UPGRADE_ERR_KEY},
    {"key with a bad character",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n" VER END, UPGRADE_ERR_KEY},
    {"key base64url alphabet",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ-==\r\n" VER END, UPGRADE_ERR_KEY},
    {"key with = inside",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNh=XBsZSBub25jZQ==\r\n" VER END, UPGRADE_ERR_KEY},
    {"key all =", LINE HOST UPG CONN "Sec-WebSocket-Key: ========================\r\n" VER END,
     UPGRADE_ERR_KEY},
    {"key with a space inside",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ ==\r\n" VER END, UPGRADE_ERR_KEY},
    {"key with obs-text",
     LINE HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ\xc3==\r\n" VER END,
     UPGRADE_ERR_KEY},
};

static const char *row_name = "";

static void assert_row_int(long long got, long long want)
{
    if (got != want)
        print_error("in row \"%s\":\n", row_name);
    assert_int_equal(got, want);
}

static void check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CHECK_ROWS / sizeof CHECK_ROWS[0]; i++) {
        const struct check_row *row = &CHECK_ROWS[i];
        row_name = row->name;
        size_t len = strlen(row->head);
        /* The request sits at the end of its allocation, as in test_http.c: ASan notices if
         * either module reads past it. */
        char *in = malloc(len);
        assert_non_null(in);
        memcpy(in, row->head, len);
        struct http_request req;
        assert_row_int(http_parse_request(in, len, 0, &req), (long long)len);

        char accept[UPGRADE_ACCEPT_LEN + 1];
        memset(accept, 'Z', sizeof accept);
        assert_row_int(upgrade_check(&req, accept), row->rc);
        if (row->rc == 0) {
            /* Every valid row carries the §1.3 key, so the same accept value. */
            assert_string_equal(accept, ACCEPT_RFC);
        } else {
            assert_string_equal(accept, ""); /* never a stale or partial value */
        }
        free(in);
    }
}

/* Requests the parser would never produce, built by hand to reach the checks that guard
 * against them anyway. */
static void check_hand_built_requests(void **state)
{
    (void)state;
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    struct http_request req = {
        .method = {"GET", 3},
        .target = {"/ws", 3},
        .minor_version = 1,
        .nheaders = 4,
        .headers = {{{"Upgrade", 7}, {"websocket", 9}},
                    {{"Connection", 10}, {"Upgrade", 7}},
                    {{"Sec-WebSocket-Key", 17}, {key, 24}},
                    {{"Sec-WebSocket-Version", 21}, {"13", 2}}},
        .keep_alive = true,
    };
    char accept[UPGRADE_ACCEPT_LEN + 1];
    /* §4.2.1 item 2: no Host. */
    assert_int_equal(upgrade_check(&req, accept), UPGRADE_ERR_HEADERS);

    req.headers[req.nheaders++] = (struct http_header){{"Host", 4}, {"h", 1}};
    assert_int_equal(upgrade_check(&req, accept), 0);
    assert_string_equal(accept, ACCEPT_RFC);

    req.headers[req.nheaders++] = (struct http_header){{"Host", 4}, {"h", 1}};
    assert_int_equal(upgrade_check(&req, accept), UPGRADE_ERR_HEADERS); /* two Hosts */
    req.nheaders--;

    req.minor_version = 2; /* "HTTP/1.2" never gets past the parser; refused here too */
    assert_int_equal(upgrade_check(&req, accept), UPGRADE_ERR_HTTP);
    req.minor_version = 1;

    req.method = (struct http_view){"GE", 2};
    assert_int_equal(upgrade_check(&req, accept), UPGRADE_ERR_METHOD);
    req.method = (struct http_view){"GET", 3};

    /* A key view that is 24 bytes long only because the bytes after it are "==". */
    static const char longer[] = "dGhlIHNhbXBsZSBub25jZQ==";
    req.headers[2].value = (struct http_view){longer, 22};
    assert_int_equal(upgrade_check(&req, accept), UPGRADE_ERR_KEY);
    req.headers[2].value = (struct http_view){longer, 24};
    assert_int_equal(upgrade_check(&req, accept), 0);
}

static void error_statuses(void **state)
{
    (void)state;
    assert_int_equal(upgrade_err_status(UPGRADE_ERR_METHOD), 405);
    assert_int_equal(upgrade_err_status(UPGRADE_ERR_HEADERS), 400);
    assert_int_equal(upgrade_err_status(UPGRADE_ERR_VERSION), 426);
    assert_int_equal(upgrade_err_status(UPGRADE_ERR_KEY), 400);
    assert_int_equal(upgrade_err_status(UPGRADE_ERR_HTTP), 400);
    assert_int_equal(upgrade_err_status(0), 500);
    assert_int_equal(upgrade_err_status(-42), 500);
}

/* ---- upgrade_origin_allowed ------------------------------------------------------------ */

struct origin_row {
    const char *name;
    const char *fields; /* extra header lines: Host and Origin */
    const char *allow;  /* --allow-origin, or NULL */
    bool is_allowed;
};

static const struct origin_row ORIGIN_ROWS[] = {
    {"no Origin: not a browser", "Host: a.example:7071\r\n", NULL, true},
    {"same host and port", "Host: a.example:7071\r\nOrigin: http://a.example:7071\r\n", NULL, true},
    {"https page, same host", "Host: a.example\r\nOrigin: https://a.example\r\n", NULL, true},
    {"case differs", "Host: A.Example:7071\r\nOrigin: http://a.example:7071\r\n", NULL, true},
    {"other site: hijacking", "Host: a.example:7071\r\nOrigin: http://evil.example\r\n", NULL,
     false},
    {"same host, other port", "Host: a.example:7071\r\nOrigin: http://a.example:8080\r\n", NULL,
     false},
    {"suffix trick", "Host: a.example\r\nOrigin: http://a.example.evil.example\r\n", NULL, false},
    {"opaque null origin", "Host: a.example\r\nOrigin: null\r\n", NULL, false},
    {"no scheme", "Host: a.example\r\nOrigin: a.example\r\n", NULL, false},
    {"empty authority", "Host: a.example\r\nOrigin: http://\r\n", NULL, false},
    {"two Origin fields",
     "Host: a.example\r\nOrigin: http://a.example\r\nOrigin: http://a.example\r\n", NULL, false},
    {"star allows any", "Host: a.example\r\nOrigin: http://evil.example\r\n", "*", true},
    {"listed", "Host: a.example\r\nOrigin: https://b.example\r\n",
     "https://c.example, https://b.example", true},
    {"listed, other case", "Host: a.example\r\nOrigin: HTTPS://B.example\r\n", "https://b.example",
     true},
    {"not listed", "Host: a.example\r\nOrigin: https://d.example\r\n",
     "https://c.example,https://b.example", false},
    {"a list replaces the same-host rule", "Host: a.example\r\nOrigin: http://a.example\r\n",
     "https://b.example", false},
    /* RFC 6454 §4: our page is served over http or https, so only those schemes are ours. */
    {"https, upper-case scheme", "Host: a.example\r\nOrigin: HTTPS://a.example\r\n", NULL, true},
    {"http, mixed-case scheme", "Host: a.example\r\nOrigin: HtTp://a.example\r\n", NULL, true},
    {"foreign scheme, same authority", "Host: a.example:7071\r\nOrigin: evil://a.example:7071\r\n",
     NULL, false},
    {"ws scheme", "Host: a.example\r\nOrigin: ws://a.example\r\n", NULL, false},
    {"file scheme", "Host: a.example\r\nOrigin: file://a.example\r\n", NULL, false},
    {"extension scheme", "Host: a.example\r\nOrigin: chrome-extension://a.example\r\n", NULL,
     false},
    {"scheme with a suffix", "Host: a.example\r\nOrigin: httpx://a.example\r\n", NULL, false},
    {"scheme cut short", "Host: a.example\r\nOrigin: htt://a.example\r\n", NULL, false},
    {"empty scheme", "Host: a.example\r\nOrigin: ://a.example\r\n", NULL, false},
    {"one slash", "Host: a.example\r\nOrigin: http:/a.example\r\n", NULL, false},
    {"foreign scheme, listed anyway", "Host: a.example\r\nOrigin: evil://b.example\r\n",
     "evil://b.example", false},
    {"foreign scheme under star", "Host: a.example\r\nOrigin: evil://b.example\r\n", "*", true},
    /* "null" is what any sandboxed iframe sends: config.c refuses to list it; here too. */
    {"null even when listed", "Host: a.example\r\nOrigin: null\r\n", "null", false},
    {"null under star", "Host: a.example\r\nOrigin: null\r\n", "*", true},
};

static void origin_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ORIGIN_ROWS / sizeof ORIGIN_ROWS[0]; i++) {
        const struct origin_row *row = &ORIGIN_ROWS[i];
        char head[512];
        int n = snprintf(head, sizeof head, "GET /ws HTTP/1.1\r\n%s\r\n", row->fields);
        assert_true(n > 0 && (size_t)n < sizeof head);
        struct http_request req;
        assert_int_equal(http_parse_request(head, (size_t)n, 0, &req), n);
        if (upgrade_origin_allowed(&req, row->allow) != row->is_allowed)
            fail_msg("row \"%s\": expected %s", row->name, row->is_allowed ? "allowed" : "refused");
    }
}

/* upgrade_protocol_with_prefix(): a room token offered as "bearer.<token>", across fields
 * and list elements, counted so that two tokens can be refused. */
static void finds_protocols_by_prefix(void **state)
{
    (void)state;
    struct http_request req = {
        .nheaders = 3,
        .headers = {{{"Sec-WebSocket-Protocol", 22}, {"wsrelay.batch, bearer.a.b.c", 27}},
                    {{"Host", 4}, {"bearer.x", 8}},
                    {{"sec-websocket-protocol", 22}, {" , Bearer.y,bearer", 18}}},
    };
    struct http_view rest = {NULL, 0};
    assert_int_equal(upgrade_protocol_with_prefix(&req, "bearer.", &rest), 1);
    assert_int_equal(rest.len, 5);
    assert_memory_equal(rest.p, "a.b.c", 5);
    req.headers[2].value = (struct http_view){"bearer.", 7}; /* a second, empty one */
    assert_int_equal(upgrade_protocol_with_prefix(&req, "bearer.", &rest), 2);
    assert_memory_equal(rest.p, "a.b.c", 5); /* the first */
    req.nheaders = 1;
    req.headers[0].value = (struct http_view){"wsrelay.batch", 13};
    assert_int_equal(upgrade_protocol_with_prefix(&req, "bearer.", &rest), 0);
    assert_true(upgrade_offers_protocol(&req, "wsrelay.batch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key_vectors),
        cmocka_unit_test(accept_key_uses_only_key_len_bytes),
        cmocka_unit_test(accept_key_refuses_absurd_lengths),
        cmocka_unit_test(check_table),
        cmocka_unit_test(check_hand_built_requests),
        cmocka_unit_test(error_statuses),
        cmocka_unit_test(origin_table),
        cmocka_unit_test(finds_protocols_by_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
