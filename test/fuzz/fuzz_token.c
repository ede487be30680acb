/* fuzz_token.c: libFuzzer target for token.c: room tokens, base64url, the query parameter.
 *
 * A random token almost never carries a valid HMAC, so a fuzzer fed raw tokens would only
 * ever meet the signature check. So the input is read three ways:
 *   1. as a whole token: token_verify() answers TOKEN_OK or one of the enum's reasons (never
 *      MISSING or AMBIGUOUS, which are routes.c's), and on a refusal *claims is all zero;
 *   2. as "header NUL claims NUL room" (one part alone: the claims, under {"alg":"HS256"};
 *      no room: the default room ""): the target encodes header and claims with a base64url
 *      encoder of its own and signs them with HMAC-SHA-256, so token_verify() sees a signed
 *      token and must never answer TOKEN_ERR_SIGNATURE, and TOO_LONG exactly when it is over
 *      TOKEN_MAX_LEN. When it accepts: exp > now, nbf <= now, the color is at most 359, and
 *      the name, put in an object, is JSON json.c accepts, and json_rewrite_named() of
 *      {"x":1} with it succeeds and rewrites to itself with the name and without it (what
 *      another node does). The same token with another key, or with one signature character
 *      changed, is never accepted;
 *   3. as base64url text and as bytes: whatever token_base64url_decode() accepts encodes back
 *      to the input (one spelling per byte string: RFC 4648 §3.5), and any bytes encode to
 *      text that decodes back to them; token_find_in_query()'s value lies inside the input,
 *      right after "token=".
 * Why: the token decides who enters which room under what name; a crash, an accepted
 * forgery, or a name that breaks the JSON it is stamped into would each be a hole.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "json.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000

static const uint8_t KEY[] = "fuzz_token's key: thirty-two bytes or more, as the server asks";
#define KEY_LEN (sizeof KEY - 1)

/* RFC 4648 §5, written here by shifting bits the other way round from token.c. */
static size_t encode(const uint8_t *p, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        uint32_t v = 0;
        for (size_t k = 0; k < 3; k++)
            v = v << 8 | (k < n ? p[i + k] : 0);
        for (size_t k = 0; k < n + 1; k++)
            out[o++] = abc[(v >> (18 - 6 * k)) & 63];
    }
    return o;
}

static bool is_valid_err(int rc)
{
    return rc == TOKEN_OK || (rc <= TOKEN_ERR_TOO_LONG && rc >= TOKEN_ERR_ROOM);
}

static bool is_zero(const struct token_claims *c)
{
    static const struct token_claims zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

/* The next NUL-terminated part of data[*pos..size), or the whole rest. */
static const uint8_t *part(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
    if (*pos > size)
        return NULL;
    const uint8_t *p = data + *pos;
    const uint8_t *nul = memchr(p, 0, size - *pos);
    *len = nul != NULL ? (size_t)(nul - p) : size - *pos;
    *pos += *len + 1;
    return p;
}

/* Everything an accepted token promises. */
static void check_accepted(const struct token_claims *c)
{
    FUZZ_CHECK(c->exp > NOW);
    FUZZ_CHECK(!c->has_nbf || c->nbf <= NOW);
    FUZZ_CHECK(!c->has_color || c->color <= 359);
    if (!c->has_name)
        return;
    size_t n = strlen(c->name);
    FUZZ_CHECK(n >= 3 && n <= JSON_NAME_MAX && c->name[0] == '"' && c->name[n - 1] == '"');
    char obj[JSON_NAME_MAX + 8];
    memcpy(obj, "{\"n\":", 5);
    memcpy(obj + 5, c->name, n);
    obj[5 + n] = '}';
    FUZZ_CHECK(json_check_object((const uint8_t *)obj, n + 6) == 0);
    struct buf out, again;
    buf_init(&out, 4096);
    buf_init(&again, 4096);
    static const char id[] = "00000000-0000-4000-8000-000000000000";
    FUZZ_CHECK(json_rewrite_named((const uint8_t *)"{\"x\":1}", 7, id, 7, c->name, &out) == 0);
    for (int named = 0; named < 2; named++) {
        buf_reset(&again);
        FUZZ_CHECK(json_rewrite_named(buf_head(&out), buf_size(&out), id, 7, named ? c->name : NULL,
                                      &again) == 0);
        FUZZ_CHECK(buf_size(&again) == buf_size(&out) &&
                   memcmp(buf_head(&again), buf_head(&out), buf_size(&out)) == 0);
    }
    buf_free(&out);
    buf_free(&again);
}

/* 2. A token made from the input's parts, correctly signed. */
static void signed_token(const uint8_t *data, size_t size)
{
    size_t pos = 0, hlen = 0, clen = 0, rlen = 0;
    const uint8_t *h = part(data, size, &pos, &hlen);
    const uint8_t *cl = part(data, size, &pos, &clen);
    const uint8_t *room = part(data, size, &pos, &rlen);
    static const uint8_t dflt_h[] = "{\"alg\":\"HS256\"}";
    if (cl == NULL) { /* one part: it is the claims */
        cl = h;
        clen = hlen;
        h = dflt_h;
        hlen = sizeof dflt_h - 1;
    }
    if (room == NULL)
        rlen = 0;
    if (hlen > TOKEN_MAX_LEN || clen > TOKEN_MAX_LEN)
        return;
    char *tok = malloc(2 * TOKEN_MAX_LEN + 64);
    size_t n = encode(h, hlen, tok);
    tok[n++] = '.';
    n += encode(cl, clen, tok + n);
    uint8_t mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), KEY, (int)KEY_LEN, (const uint8_t *)tok, n, mac, &mac_len);
    tok[n++] = '.';
    n += encode(mac, mac_len, tok + n);

    char *exact = malloc(n); /* an exact-size copy: ASan sees any read past it */
    memcpy(exact, tok, n);
    const char *r = room != NULL ? (const char *)room : "";
    struct token_claims c;
    int rc = token_verify(exact, n, KEY, KEY_LEN, NOW, r, rlen, &c);
    FUZZ_CHECK(is_valid_err(rc));
    FUZZ_CHECK(rc != TOKEN_ERR_SIGNATURE);
    FUZZ_CHECK((rc == TOKEN_ERR_TOO_LONG) == (n > TOKEN_MAX_LEN));
    if (rc == TOKEN_OK)
        check_accepted(&c);
    else
        FUZZ_CHECK(is_zero(&c));

    /* Forgeries: another key; the signature's first character changed. */
    static const uint8_t other[] = "another key of thirty-two bytes or more, not the server's";
    rc = token_verify(exact, n, other, sizeof other - 1, NOW, r, rlen, &c);
    FUZZ_CHECK(rc == TOKEN_ERR_SIGNATURE || rc == TOKEN_ERR_TOO_LONG);
    if (n <= TOKEN_MAX_LEN) {
        exact[n - 43] = exact[n - 43] == 'A' ? 'B' : 'A';
        rc = token_verify(exact, n, KEY, KEY_LEN, NOW, r, rlen, &c);
        FUZZ_CHECK(rc == TOKEN_ERR_SIGNATURE);
    }
    free(exact);
    free(tok);
}

/* 3. base64url both ways, and the query parameter. */
static void codec(const uint8_t *data, size_t size)
{
    if (size > TOKEN_MAX_LEN)
        return;
    uint8_t *out = malloc(size + 1);
    char *back = malloc(2 * size + 8);
    long n = token_base64url_decode((const char *)data, size, out, size + 1);
    if (n >= 0) {
        FUZZ_CHECK(encode(out, (size_t)n, back) == size && memcmp(back, data, size) == 0);
    }
    size_t m = encode(data, size, back);
    uint8_t *again = malloc(size + 1);
    FUZZ_CHECK(token_base64url_decode(back, m, again, size + 1) == (long)size);
    FUZZ_CHECK(size == 0 || memcmp(again, data, size) == 0);
    if (size > 0) /* one byte short of room */
        FUZZ_CHECK(token_base64url_decode(back, m, again, size - 1) == -1);

    const char *v = NULL;
    size_t v_len = 0;
    size_t count = token_find_in_query((const char *)data, size, &v, &v_len);
    if (count > 0) {
        FUZZ_CHECK(v >= (const char *)data + 6 && v + v_len <= (const char *)data + size);
        FUZZ_CHECK(memcmp(v - 6, "token=", 6) == 0);
        FUZZ_CHECK(memchr(v, '&', v_len) == NULL);
    }
    free(again);
    free(back);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. The input as a token, in an exact-size copy. */
    char *tok = malloc(size + 1);
    if (size > 0)
        memcpy(tok, data, size);
    struct token_claims c;
    int rc = token_verify(tok, size, KEY, KEY_LEN, NOW, "a", 1, &c);
    FUZZ_CHECK(is_valid_err(rc));
    if (rc == TOKEN_OK)
        check_accepted(&c);
    else
        FUZZ_CHECK(is_zero(&c));
    free(tok);

    signed_token(data, size);
    codec(data, size);
    return 0;
}
