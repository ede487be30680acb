/* upgrade.c: the server side of the WebSocket opening handshake, as upgrade.h describes.
 *
 * Owns: RFC 6455 §4.2.1 (is this request a valid opening handshake?) and §4.2.2 step 5.4
 * (the Sec-WebSocket-Accept value that proves we read the client's key), and reading the
 * subprotocols a client offers (§4.1).
 * Does not own: routing (target.c and routes.c pick which paths may upgrade), choosing a
 * subprotocol (routes.c: wsrelay.batch on a room) and extensions (we negotiate none: the
 * 101 carries no Sec-WebSocket-Extensions, §4.2.2 step 5.5),
 * Origin checks (§10.2: a policy for routes.c), and writing the 101 itself (http.c).
 * Pure: OpenSSL is used as a hash and an encoder, no I/O.
 *
 * The handshake this module accepts, as a browser sends it:
 *
 *     GET /ws HTTP/1.1
 *     Host: example.com
 *     Upgrade: websocket
 *     Connection: Upgrade
 *     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==     16 random bytes, base64: 24 chars
 *     Sec-WebSocket-Version: 13
 *
 * and the line of the 101 it lets the server write:
 *
 *     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  base64(SHA-1(key + GUID))
 */
#include "upgrade.h"

#include <string.h>

/* Why the "deprecated" SHA1_Init/Update/Final and not the one-shot SHA1(): in OpenSSL 3,
 * SHA1() goes through EVP_Q_digest, whose first call loads the configuration file and the
 * default provider and builds its algorithm tables: about 2 MiB of resident memory, for one
 * 20-byte hash per handshake, in a server whose goal is a few MiB in all (measured with
 * /proc/self/status: RssFile 2.4 -> 4.4 MiB, RssAnon +140 KiB). The low-level functions
 * compute the same digest directly. They are deprecated for new code that wants provider
 * selection (FIPS, engines), which a handshake hash does not need. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

/* RFC 6455 §1.3: a GUID no endpoint that doesn't speak WebSocket would know, so a valid
 * accept value proves the server really understood the handshake (and wasn't, say, a cache
 * replaying an old response). */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* §4.1: the key is 16 random bytes in base64 (RFC 4648 §4): 22 data characters and "==". */
#define KEY_B64_LEN 24
#define KEY_RAW_LEN 16

/* Longest key upgrade_accept_key() will hash: far above the 24 a valid key has, small
 * enough for a stack buffer. */
#define KEY_MAX_LEN 128

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* §4.2.1 item 5: the key must decode to exactly 16 bytes. We check the shape first (24
 * characters, the last two "=") because EVP_DecodeBlock is lenient in ways we are not: it
 * skips leading and trailing whitespace and counts the padding, so for a valid key it
 * returns 18, not 16.
 * Simplification: the 4 unused bits of the last data character are not required to be zero
 * (RFC 4648 §3.5 lets a decoder reject that; no real client sends it, and the accept value
 * hashes the key's text, not its bytes, so nothing depends on it). */
static bool key_is_valid(struct http_view key)
{
    if (key.len != KEY_B64_LEN || key.p[KEY_B64_LEN - 2] != '=' || key.p[KEY_B64_LEN - 1] != '=')
        return false;
    for (size_t i = 0; i < KEY_B64_LEN - 2; i++)
        if (!is_base64_char(key.p[i]))
            return false;
    unsigned char raw[KEY_B64_LEN / 4 * 3]; /* 18: what EVP_DecodeBlock writes for 24 chars */
    int n = EVP_DecodeBlock(raw, (const unsigned char *)key.p, KEY_B64_LEN);
    /* The shape above already implies 16 bytes; this confirms it with the decoder. */
    return n == KEY_RAW_LEN + 2; /* 16 bytes + the two padding bytes it counts */
}

int upgrade_check(const struct http_request *req, char accept[UPGRADE_ACCEPT_LEN + 1])
{
    accept[0] = '\0';

    /* §4.2.1 item 1: "an HTTP/1.1 or higher GET request". Methods are case-sensitive
     * (RFC 9110 §9.1), so "get" is not GET. */
    if (!(req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0))
        return UPGRADE_ERR_METHOD;
    if (req->minor_version != 1)
        return UPGRADE_ERR_HTTP;
    /* A GET has no meaningful body (RFC 9110 §9.3.1); after the 101 every byte belongs to the
     * WebSocket, so a body here would be read as frames. Refuse rather than guess. */
    if (req->has_transfer_encoding || (req->has_content_length && req->content_length > 0))
        return UPGRADE_ERR_HTTP;

    /* §4.2.1 item 2: a Host field. The parser already demands exactly one on HTTP/1.1; this
     * keeps the check true for any struct handed to us. */
    if (http_count_headers(req, "Host") != 1)
        return UPGRADE_ERR_HEADERS;

    /* §4.2.1 item 3: Upgrade holds "websocket", ASCII case-insensitive. Upgrade is a list
     * (RFC 9110 §7.8), possibly sent as several fields, so look at every element. */
    bool upgrade = false, connection = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_view_eq(h->name, "Upgrade"))
            upgrade |= http_has_token(h->value, "websocket");
        else if (http_view_eq(h->name, "Connection"))
            /* §4.2.1 item 4: Connection includes the token "Upgrade", case-insensitive;
             * browsers send "Upgrade", Firefox "keep-alive, Upgrade". */
            connection |= http_has_token(h->value, "upgrade");
    }
    if (!upgrade || !connection)
        return UPGRADE_ERR_HEADERS;

    /* §4.2.1 item 6: Sec-WebSocket-Version must be 13. §4.2.2 step 4 and §4.4: otherwise
     * answer 426 with "Sec-WebSocket-Version: 13" so the client can retry with a version we
     * speak. A missing version is answered the same way: it tells the client just as much. */
    const struct http_header *version = http_find_header(req, "Sec-WebSocket-Version");
    if (version == NULL || http_count_headers(req, "Sec-WebSocket-Version") != 1 ||
        !(version->value.len == 2 && memcmp(version->value.p, "13", 2) == 0))
        return UPGRADE_ERR_VERSION;

    /* §4.2.1 item 5: exactly one key (§11.3.1: the field must not appear more than once). */
    const struct http_header *key = http_find_header(req, "Sec-WebSocket-Key");
    if (key == NULL || http_count_headers(req, "Sec-WebSocket-Key") != 1 ||
        !key_is_valid(key->value))
        return UPGRADE_ERR_KEY;

    upgrade_accept_key(key->value.p, key->value.len, accept);
    return 0;
}

bool upgrade_origin_allowed(const struct http_request *req, const char *allow)
{
    const struct http_header *origin = http_find_header(req, "Origin");
    if (origin == NULL)
        return true;
    if (http_count_headers(req, "Origin") != 1)
        return false;
    if (allow != NULL && strcmp(allow, "*") == 0)
        return true; /* the operator said any origin, whatever its scheme */

    /* RFC 6454 §6.1: an origin serialises as scheme "://" host [ ":" port ], no path. The
     * page that talks to us was served over HTTP, so its origin's scheme is http or https
     * (§4: the scheme of the URI it was fetched from, lowercased; we compare it
     * case-insensitively all the same, as §3.2.1 compares schemes). Any other scheme is not
     * our page: a browser extension, a custom scheme an app registered, or a forgery whose
     * authority happens to match ("evil://our-host" must not pass for our own origin). */
    struct http_view o = origin->value;
    const char *sep = memmem(o.p, o.len, "://", 3);
    if (sep == NULL)
        return false; /* "null" (sandboxed or file:// pages: any site can send it), garbage */
    struct http_view scheme = {o.p, (size_t)(sep - o.p)};
    if (!http_view_eq(scheme, "http") && !http_view_eq(scheme, "https"))
        return false;
    if (allow != NULL) /* config.c lets only http(s) origins into the list; this holds anyway */
        return http_list_has((struct http_view){allow, strlen(allow)}, o);

    /* Simplification: the same-host rule trusts Host, which the browser sets from the name
     * it resolved; DNS rebinding gives an attacker's page a name whose Origin and Host agree
     * (docs/security.md). --allow-origin is the defence there. */
    struct http_view authority = {sep + 3, o.len - (size_t)(sep + 3 - o.p)};
    const struct http_header *host = http_find_header(req, "Host");
    return host != NULL && authority.len > 0 && http_views_eq(authority, host->value);
}

bool upgrade_offers_protocol(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_view_eq(h->name, "Sec-WebSocket-Protocol") && http_list_has_exact(h->value, name))
            return true;
    }
    return false;
}

size_t upgrade_protocol_with_prefix(const struct http_request *req, const char *prefix,
                                    struct http_view *rest)
{
    size_t n = 0, prefix_len = strlen(prefix);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!http_view_eq(h->name, "Sec-WebSocket-Protocol"))
            continue;
        size_t pos = 0;
        struct http_view e;
        while (http_list_next(h->value, &pos, &e)) {
            if (e.len < prefix_len || memcmp(e.p, prefix, prefix_len) != 0)
                continue;
            if (n++ == 0)
                *rest = (struct http_view){e.p + prefix_len, e.len - prefix_len};
        }
    }
    return n;
}

int upgrade_err_status(int err)
{
    switch (err) {
    case UPGRADE_ERR_METHOD:
        return 405; /* send "Allow: GET" with it (RFC 9110 §15.5.6) */
    case UPGRADE_ERR_VERSION:
        return 426; /* with "Sec-WebSocket-Version: 13" (RFC 6455 §4.4) */
    case UPGRADE_ERR_HEADERS:
    case UPGRADE_ERR_KEY:
    case UPGRADE_ERR_HTTP:
        return 400; /* §4.2.2: "the server MUST ... return an appropriate HTTP error code" */
    default:
        return 500; /* not an enum upgrade_err: our bug */
    }
}

/* §4.2.2 step 5.4: SHA-1 over the key *as sent* (its base64 text, not the decoded bytes)
 * followed by the GUID, then base64 of the 20-byte digest. SHA-1's weakness doesn't matter
 * here: this proves understanding, it protects nothing. */
void upgrade_accept_key(const char *key, size_t key_len, char accept[UPGRADE_ACCEPT_LEN + 1])
{
    /* A key longer than KEY_MAX_LEN is never one upgrade_check() let through: answer with an
     * empty string, which matches no client's expectation, instead of overflowing. */
    if (key_len > KEY_MAX_LEN) {
        accept[0] = '\0';
        return;
    }
    unsigned char msg[KEY_MAX_LEN + sizeof WS_GUID - 1];
    if (key_len > 0) /* key may be NULL when empty: memcpy must not see it */
        memcpy(msg, key, key_len);
    memcpy(msg + key_len, WS_GUID, sizeof WS_GUID - 1);

    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA_CTX ctx;
    SHA1_Init(&ctx);
    SHA1_Update(&ctx, msg, key_len + sizeof WS_GUID - 1);
    SHA1_Final(digest, &ctx);
    /* EVP_EncodeBlock writes 4 characters per 3 bytes (20 -> 28, padded) plus a NUL: exactly
     * UPGRADE_ACCEPT_LEN + 1 bytes. */
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
}
