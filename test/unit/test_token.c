/* Unit tests for token.c: room tokens (JWT, HS256), strict base64url, the query parameter.
 *
 * RFC 7515 §A.1's example first: its signature must verify with its key, and then its claims
 * are refused for the right reason (it names no room). Then one table of tokens, each signed
 * here with HMAC-SHA-256 (OpenSSL, the same primitive, so the table can hold any header and
 * claims) or spelled out byte for byte, with the exact answer token_verify() must give. Every
 * token is placed just before a PROT_NONE page (guard.h): reading one byte past it crashes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "guard.h"
#include "token.h"

#define NOW 1800000000 /* 2027-01-15: the clock every row runs at */

static const uint8_t KEY[] = "a test key of at least thirty-two bytes, for HS256";
#define KEY_LEN (sizeof KEY - 1)

/* ---- Helpers: base64url and signing, written independently of token.c -------------------- */

static size_t b64url(const void *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *p = in;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < chars; k++)
            out[o++] = abc[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
    return o;
}

/* header.claims.signature, signed with key (NULL: KEY). */
static char *sign_with(const char *header, const char *claims, const uint8_t *key, size_t key_len,
                       char *out)
{
    size_t n = b64url(header, strlen(header), out);
    out[n++] = '.';
    n += b64url(claims, strlen(claims), out + n);
    uint8_t mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const uint8_t *)out, n, mac, &mac_len);
    out[n++] = '.';
    b64url(mac, mac_len, out + n);
    return out;
}

static char *sign(const char *header, const char *claims, char *out)
{
    return sign_with(header, claims, KEY, KEY_LEN, out);
}

/* token_verify() on a guarded copy of tok[0..len), for room `room`, at NOW. */
static int verify_at(const char *tok, size_t len, const uint8_t *key, size_t key_len, int64_t now,
                     const char *room, struct token_claims *c)
{
    struct guarded g;
    const char *p = guard_copy(&g, tok, len);
    int rc = token_verify(p, len, key, key_len, now, room, strlen(room), c);
    guard_free(&g);
    return rc;
}

static int verify(const char *tok, const char *room, struct token_claims *c)
{
    return verify_at(tok, strlen(tok), KEY, KEY_LEN, NOW, room, c);
}

/* ---- RFC 7515 §A.1 ----------------------------------------------------------------------- */

/* §A.1.1's JWK "k" (base64url of the 64-byte key) and the JWS of §A.1.1, with its header
 * {"typ":"JWT",\r\n "alg":"HS256"} and claims
 * {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}. */
static const char A1_KEY[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
static const char A1_JWS[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                             "."
                             "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                             "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
                             "."
                             "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static void rfc7515_a1_signature_verifies_then_its_claims_are_refused(void **state)
{
    (void)state;
    uint8_t key[64];
    assert_int_equal(token_base64url_decode(A1_KEY, strlen(A1_KEY), key, sizeof key), 64);
    struct token_claims c;
    /* Before its exp: the signature passes, the header is HS256 with typ JWT, and the first
     * claim rule it breaks is ours, "room": not a signature or format reason. */
    assert_int_equal(verify_at(A1_JWS, strlen(A1_JWS), key, 64, 1300819379, "", &c),
                     TOKEN_ERR_NO_ROOM);
    assert_int_equal(verify_at(A1_JWS, strlen(A1_JWS), key, 64, NOW, "", &c), TOKEN_ERR_NO_ROOM);
    /* Another key, or one character of the signature changed (not the last, which must
     * stay canonical), and it is the signature. */
    assert_int_equal(verify_at(A1_JWS, strlen(A1_JWS), KEY, KEY_LEN, 1300819379, "", &c),
                     TOKEN_ERR_SIGNATURE);
    char flipped[sizeof A1_JWS];
    memcpy(flipped, A1_JWS, sizeof A1_JWS);
    flipped[sizeof A1_JWS - 3] = 'k';
    assert_int_equal(verify_at(flipped, strlen(flipped), key, 64, 1300819379, "", &c),
                     TOKEN_ERR_SIGNATURE);
    /* One byte of the claims changed: the signature covers the segments as sent. */
    memcpy(flipped, A1_JWS, sizeof A1_JWS);
    flipped[45] ^= 1;
    assert_int_equal(verify_at(flipped, strlen(flipped), key, 64, 1300819379, "", &c),
                     TOKEN_ERR_SIGNATURE);
    /* Our own signer agrees with the RFC's on its own input (a check of the table's helper). */
    char again[512];
    sign_with("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}",
              "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}",
              key, 64, again);
    assert_string_equal(again, A1_JWS);
}

/* ---- Accepted tokens and what they carry ------------------------------------------------- */

#define H "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void accepted_tokens_fill_the_claims(void **state)
{
    (void)state;
    char tok[8192];
    struct token_claims c;
    assert_int_equal(verify(sign(H, "{\"exp\":1800000001,\"room\":\"doc\"}", tok), "doc", &c), 0);
    assert_int_equal(c.exp, 1800000001);
    assert_false(c.has_nbf || c.has_name || c.has_color || c.is_any_room);

    assert_int_equal(
        verify(sign("{\"alg\":\"HS256\"}",
                    "{\"exp\":1800000100,\"nbf\":1800000000,\"room\":\"*\",\"name\":"
                    "\"Ann \\\"the\\\" \\\\ \\u00e9\\ud83d\\ude00\",\"color\":0,\"iat\":1,"
                    "\"sub\":{\"any\":[\"thing\"]}}",
                    tok),
               "anything", &c),
        0);
    assert_true(c.has_nbf && c.is_any_room && c.has_name && c.has_color);
    assert_int_equal(c.nbf, NOW);
    assert_int_equal(c.color, 0);
    /* Decoded, then written back with only '"' and '\' escaped: é and the emoji as UTF-8. */
    assert_string_equal(c.name, "\"Ann \\\"the\\\" \\\\ \xc3\xa9\xf0\x9f\x98\x80\"");

    /* The default room is "", and "typ" in any case (RFC 7515 §4.1.9). */
    assert_int_equal(verify(sign("{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}",
                                 "{\"room\":\"\",\"exp\":1800000001,\"color\":359}", tok),
                            "", &c),
                     0);
    assert_int_equal(c.color, 359);

    /* Names of exactly TOKEN_NAME_MAX bytes. */
    char claims[256];
    snprintf(claims, sizeof claims, "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"%.*s\"}",
             TOKEN_NAME_MAX,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    assert_int_equal(verify(sign(H, claims, tok), "a", &c), 0);
    assert_int_equal(strlen(c.name), TOKEN_NAME_MAX + 2);
}

static void the_size_cap_is_exact(void **state)
{
    (void)state;
    /* Pad the claims until the token is exactly TOKEN_MAX_LEN bytes: accepted; one more
     * byte of padding: refused as too long, before any other rule. */
    char claims[4096], tok[8192];
    struct token_claims c;
    bool is_exact = false;
    for (size_t pad = 2800; pad < 3100; pad++) {
        snprintf(claims, sizeof claims, "{\"exp\":1800000001,\"room\":\"a\",\"p\":\"%0*d\"}",
                 (int)pad, 0);
        size_t len = strlen(sign(H, claims, tok));
        if (len == TOKEN_MAX_LEN) {
            assert_int_equal(verify(tok, "a", &c), 0);
            is_exact = true;
        }
        if (len > TOKEN_MAX_LEN)
            assert_int_equal(verify(tok, "a", &c), TOKEN_ERR_TOO_LONG);
    }
    assert_true(is_exact);
}

/* ---- The table of refusals --------------------------------------------------------------- */

struct row {
    const char *what;
    const char *header; /* signed with KEY; NULL: raw is the whole token */
    const char *claims;
    const char *raw;
    const char *room;
    int want;
};

#define SIGNED(what, h, claims, room, want)                                                        \
    {                                                                                              \
        what, h, claims, NULL, room, want                                                          \
    }
#define RAW(what, tok, room, want)                                                                 \
    {                                                                                              \
        what, NULL, NULL, tok, room, want                                                          \
    }

/* A valid header and claims, base64url: {"alg":"HS256"} and {"exp":1800000001,"room":"a"}. */
#define HB "eyJhbGciOiJIUzI1NiJ9"
#define PB "eyJleHAiOjE4MDAwMDAwMDEsInJvb20iOiJhIn0"

static const struct row rows[] = {
    /* The header: one algorithm, ours (RFC 7515 §4.1.1, RFC 7518 §3.1). */
    SIGNED("alg none, signed", "{\"alg\":\"none\"}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg HS512", "{\"alg\":\"HS512\"}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg hs256", "{\"alg\":\"hs256\"}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg RS256", "{\"alg\":\"RS256\"}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg missing", "{\"typ\":\"JWT\"}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg a number", "{\"alg\":256}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg in an array", "{\"alg\":[\"HS256\"]}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_ALG),
    SIGNED("alg with a NUL", "{\"alg\":\"HS256\\u0000\"}", "{\"exp\":1800000001,\"room\":\"a\"}",
           "a", TOKEN_ERR_ALG),
    SIGNED("crit", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"exp\":1800000001,\"room\":\"a\"}",
           "a", TOKEN_ERR_CRIT),
    SIGNED("typ JOSE+JSON", "{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}",
           "{\"exp\":1800000001,\"room\":\"a\"}", "a", TOKEN_ERR_TYP),
    SIGNED("typ a number", "{\"alg\":\"HS256\",\"typ\":1}", "{\"exp\":1800000001,\"room\":\"a\"}",
           "a", TOKEN_ERR_TYP),
    SIGNED("header duplicate alg", "{\"alg\":\"none\",\"alg\":\"HS256\"}",
           "{\"exp\":1800000001,\"room\":\"a\"}", "a", TOKEN_ERR_DUPLICATE),
    SIGNED("header not an object", "[\"HS256\"]", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_MALFORMED),
    SIGNED("header not JSON", "{alg:HS256}", "{\"exp\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_MALFORMED),
    SIGNED("header empty", "", "{\"exp\":1800000001,\"room\":\"a\"}", "a", TOKEN_ERR_MALFORMED),

    /* The claims: JSON objects in UTF-8, each name once. */
    SIGNED("claims not an object", H, "1800000001", "a", TOKEN_ERR_MALFORMED),
    SIGNED("claims two objects", H, "{\"exp\":1800000001,\"room\":\"a\"}{}", "a",
           TOKEN_ERR_MALFORMED),
    SIGNED("claims invalid UTF-8", H, "{\"exp\":1800000001,\"room\":\"a\",\"x\":\"\xc3\"}", "a",
           TOKEN_ERR_MALFORMED),
    SIGNED("claims duplicate room", H, "{\"exp\":1800000001,\"room\":\"b\",\"room\":\"a\"}", "a",
           TOKEN_ERR_DUPLICATE),
    SIGNED("claims duplicate, escaped", H,
           "{\"exp\":1800000001,\"room\":\"a\",\"r\\u006fom\":\"b\"}", "a", TOKEN_ERR_DUPLICATE),
    SIGNED("claims duplicate exp", H, "{\"exp\":1,\"room\":\"a\",\"exp\":1800000001}", "a",
           TOKEN_ERR_DUPLICATE),
    SIGNED("claims duplicate unknown", H, "{\"exp\":1800000001,\"room\":\"a\",\"z\":1,\"z\":2}",
           "a", TOKEN_ERR_DUPLICATE),
    SIGNED(
        "33 claims", H,
        "{\"exp\":1800000001,\"room\":\"a\",\"c\":0,\"d\":0,\"e\":0,\"f\":0,\"g\":0,\"h\":0,"
        "\"i\":0,\"j\":0,\"k\":0,\"l\":0,\"m\":0,\"n\":0,\"o\":0,\"p\":0,\"q\":0,\"r\":0,\"s\":0,"
        "\"t\":0,\"u\":0,\"v\":0,\"w\":0,\"x\":0,\"y\":0,\"z\":0,\"A\":0,\"B\":0,\"C\":0,\"D\":0,"
        "\"E\":0,\"F\":0,\"G\":0}",
        "a", TOKEN_ERR_MALFORMED),

    /* exp and nbf: required / optional integer NumericDates. */
    SIGNED("no exp", H, "{\"room\":\"a\"}", "a", TOKEN_ERR_NO_EXP),
    SIGNED("exp a string", H, "{\"exp\":\"1800000001\",\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp fractional", H, "{\"exp\":1800000001.5,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp an exponent", H, "{\"exp\":2e9,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp negative", H, "{\"exp\":-1,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp 16 digits", H, "{\"exp\":1000000000000000,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED(
        "exp 400 digits", H,
        "{\"exp\":"
        "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
        "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
        "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
        "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
        "111111111111111111111111111111111111111111111111,\"room\":\"a\"}",
        "a", TOKEN_ERR_CLAIM),
    SIGNED("exp true", H, "{\"exp\":true,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp null", H, "{\"exp\":null,\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp an object", H, "{\"exp\":{\"v\":1800000001},\"room\":\"a\"}", "a", TOKEN_ERR_CLAIM),
    SIGNED("exp now", H, "{\"exp\":1800000000,\"room\":\"a\"}", "a", TOKEN_ERR_EXPIRED),
    SIGNED("exp a second ago", H, "{\"exp\":1799999999,\"room\":\"a\"}", "a", TOKEN_ERR_EXPIRED),
    SIGNED("exp 0", H, "{\"exp\":0,\"room\":\"a\"}", "a", TOKEN_ERR_EXPIRED),
    SIGNED("nbf in a second", H, "{\"exp\":1800000100,\"nbf\":1800000001,\"room\":\"a\"}", "a",
           TOKEN_ERR_NOT_YET),
    SIGNED("nbf a string", H, "{\"exp\":1800000100,\"nbf\":\"0\",\"room\":\"a\"}", "a",
           TOKEN_ERR_CLAIM),
    SIGNED("nbf fractional", H, "{\"exp\":1800000100,\"nbf\":0.5,\"room\":\"a\"}", "a",
           TOKEN_ERR_CLAIM),
    SIGNED("expired and another room", H, "{\"exp\":1,\"room\":\"b\"}", "a", TOKEN_ERR_EXPIRED),

    /* room: required, exact. */
    SIGNED("no room", H, "{\"exp\":1800000001}", "a", TOKEN_ERR_NO_ROOM),
    SIGNED("room a number", H, "{\"exp\":1800000001,\"room\":1}", "a", TOKEN_ERR_CLAIM),
    SIGNED("room a nested object", H, "{\"exp\":1800000001,\"room\":{\"name\":\"a\"}}", "a",
           TOKEN_ERR_CLAIM),
    SIGNED("room an array", H, "{\"exp\":1800000001,\"room\":[\"a\"]}", "a", TOKEN_ERR_CLAIM),
    SIGNED("another room", H, "{\"exp\":1800000001,\"room\":\"b\"}", "a", TOKEN_ERR_ROOM),
    SIGNED("room in another case", H, "{\"exp\":1800000001,\"room\":\"A\"}", "a", TOKEN_ERR_ROOM),
    SIGNED("room a prefix", H, "{\"exp\":1800000001,\"room\":\"do\"}", "doc", TOKEN_ERR_ROOM),
    SIGNED("a room for the default room", H, "{\"exp\":1800000001,\"room\":\"a\"}", "",
           TOKEN_ERR_ROOM),
    SIGNED("room ** is not any", H, "{\"exp\":1800000001,\"room\":\"**\"}", "a", TOKEN_ERR_ROOM),

    /* name and color. */
    SIGNED("name empty", H, "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"\"}", "a",
           TOKEN_ERR_NAME),
    SIGNED("name 65 bytes", H,
           "{\"exp\":1800000001,\"room\":\"a\",\"name\":"
           "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
           "a", TOKEN_ERR_NAME),
    SIGNED("name with a newline", H, "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"a\\nb\"}", "a",
           TOKEN_ERR_NAME),
    SIGNED("name with a NUL", H, "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"a\\u0000\"}", "a",
           TOKEN_ERR_NAME),
    SIGNED("name with DEL", H, "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"a\\u007f\"}", "a",
           TOKEN_ERR_NAME),
    SIGNED("name with a C1 control", H,
           "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"a\xc2\x85\"}", "a", TOKEN_ERR_NAME),
    SIGNED("name with a lone surrogate", H,
           "{\"exp\":1800000001,\"room\":\"a\",\"name\":\"a\\ud800\"}", "a", TOKEN_ERR_NAME),
    SIGNED("name a number", H, "{\"exp\":1800000001,\"room\":\"a\",\"name\":7}", "a",
           TOKEN_ERR_NAME),
    SIGNED("name a nested object", H,
           "{\"exp\":1800000001,\"room\":\"a\",\"name\":{\"first\":\"Ann\"}}", "a", TOKEN_ERR_NAME),
    SIGNED("color 360", H, "{\"exp\":1800000001,\"room\":\"a\",\"color\":360}", "a",
           TOKEN_ERR_COLOR),
    SIGNED("color -1", H, "{\"exp\":1800000001,\"room\":\"a\",\"color\":-1}", "a", TOKEN_ERR_COLOR),
    SIGNED("color 1.0", H, "{\"exp\":1800000001,\"room\":\"a\",\"color\":1.0}", "a",
           TOKEN_ERR_COLOR),
    SIGNED("color #ff0000", H, "{\"exp\":1800000001,\"room\":\"a\",\"color\":\"#ff0000\"}", "a",
           TOKEN_ERR_COLOR),

    /* The compact serialization: three segments of strict base64url. */
    RAW("empty", "", "a", TOKEN_ERR_MALFORMED),
    RAW("one segment", HB, "a", TOKEN_ERR_MALFORMED),
    RAW("two segments", HB "." PB, "a", TOKEN_ERR_MALFORMED),
    RAW("four segments", HB "." PB ".AAAA.AAAA", "a", TOKEN_ERR_MALFORMED),
    RAW("empty signature (alg none's shape)", HB "." PB ".", "a", TOKEN_ERR_SIGNATURE),
    RAW("truncated signature", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_w", "a",
        TOKEN_ERR_SIGNATURE),
    RAW("signature of the wrong key", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "a",
        TOKEN_ERR_SIGNATURE),
    RAW("padding in the signature", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk=", "a",
        TOKEN_ERR_MALFORMED),
    RAW("standard base64 in the signature",
        HB "." PB ".dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk", "a", TOKEN_ERR_MALFORMED),
    RAW("non-canonical last character", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
        "a", TOKEN_ERR_MALFORMED),
    RAW("signature a byte too long", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkA", "a",
        TOKEN_ERR_SIGNATURE),
    RAW("a length of 4k+1", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkAA", "a",
        TOKEN_ERR_MALFORMED),
    /* Whitespace in the first two segments changes the signed bytes: the signature, checked
     * before anything is decoded, refuses it (signed whitespace: the test below). */
    RAW("space before", " " HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "a",
        TOKEN_ERR_SIGNATURE),
    RAW("space after a dot", HB ". " PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "a",
        TOKEN_ERR_SIGNATURE),
    RAW("space before the signature", HB "." PB ". dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "a", TOKEN_ERR_MALFORMED),
    RAW("newline after", HB "." PB ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\n", "a",
        TOKEN_ERR_MALFORMED),
    RAW("percent-encoded", HB "." PB ".dBjftJeZ4CVP%2DmB92K27uhbUJU1p1r_wW1gFWFOEjXk", "a",
        TOKEN_ERR_MALFORMED),
};

/* The rows that are signed get their signature here; then padding and whitespace are put
 * into the signed header or claims segment too, which the signature then covers, so only the
 * base64url rule can refuse them. */
static void refusal_table(void **state)
{
    (void)state;
    char tok[8192];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        const char *t = r->raw != NULL ? r->raw : sign(r->header, r->claims, tok);
        struct token_claims c;
        memset(&c, 0xa5, sizeof c);
        int rc = verify(t, r->room, &c);
        if (rc != r->want)
            fail_msg("row %zu (%s): got %d (%s), want %d (%s)", i, r->what, rc,
                     token_err_reason(rc), r->want, token_err_reason(r->want));
        struct token_claims zero = {0};
        if (memcmp(&c, &zero, sizeof c) != 0)
            fail_msg("row %zu (%s): claims not zeroed on a refusal", i, r->what);
    }
}

/* A signed segment with '=' padding, or a space, is refused even though the HMAC of those
 * bytes is right: the signature is not the only rule. */
static void padding_and_whitespace_inside_signed_segments(void **state)
{
    (void)state;
    static const char *const segs[][2] = {
        {HB "=", PB}, {HB, PB "="},  {HB, PB "=="}, {" " HB, PB},
        {HB, PB " "}, {HB, "\t" PB}, {HB "\n", PB}, {HB, PB "+"},
    };
    for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
        char input[512], tok[600];
        int n = snprintf(input, sizeof input, "%s.%s", segs[i][0], segs[i][1]);
        uint8_t mac[32];
        unsigned mac_len = 0;
        HMAC(EVP_sha256(), KEY, (int)KEY_LEN, (const uint8_t *)input, (size_t)n, mac, &mac_len);
        char sig[64];
        b64url(mac, mac_len, sig);
        snprintf(tok, sizeof tok, "%s.%s", input, sig);
        struct token_claims c;
        assert_int_equal(verify(tok, "a", &c), TOKEN_ERR_MALFORMED);
    }
}

/* ---- base64url, the query, the answers --------------------------------------------------- */

static void base64url_vectors_and_refusals(void **state)
{
    (void)state;
    /* RFC 4648 §10, in the URL alphabet, unpadded. */
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    static const char dec[] = "foobar";
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        uint8_t out[8];
        assert_int_equal(token_base64url_decode(enc[i], strlen(enc[i]), out, sizeof out), i);
        assert_memory_equal(out, dec, i);
        if (i > 0) /* one byte short of room: refused */
            assert_int_equal(token_base64url_decode(enc[i], strlen(enc[i]), out, i - 1), -1);
    }
    uint8_t all[3];
    assert_int_equal(token_base64url_decode("-_-_", 4, all, sizeof all), 3);
    assert_memory_equal(all, "\xfb\xff\xbf", 3);
    static const char *const bad[] = {"Zg==",  "Zg=",    "Zh",     "Zm9wZ",  "Z",
                                      "Zm+v",  "Zm/v",   "Zm9v\n", " Zm9v",  "Zm 9v",
                                      "Zm9v.", "Z\x80g", "Zm9=",   "Zm9vYh", "Zm9vYmF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[8];
        if (token_base64url_decode(bad[i], strlen(bad[i]), out, sizeof out) != -1)
            fail_msg("\"%s\" decoded", bad[i]);
    }
}

static void finds_the_token_parameter(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        size_t n;
        const char *value;
    } rows_q[] = {
        {"token=abc", 1, "abc"}, {"x=1&token=abc&y", 1, "abc"},
        {"token=", 1, ""},       {"token=a&token=b", 2, "a"},
        {"tokens=a", 0, NULL},   {"xtoken=a", 0, NULL},
        {"Token=a", 0, NULL},    {"token", 0, NULL},
        {"", 0, NULL},           {"&&token=a.b.c&", 1, "a.b.c"},
    };
    for (size_t i = 0; i < sizeof rows_q / sizeof rows_q[0]; i++) {
        const char *v = NULL;
        size_t v_len = 0;
        struct guarded g;
        const char *q = guard_copy(&g, rows_q[i].q, strlen(rows_q[i].q));
        assert_int_equal(token_find_in_query(q, strlen(rows_q[i].q), &v, &v_len), rows_q[i].n);
        if (rows_q[i].value != NULL) {
            assert_int_equal(v_len, strlen(rows_q[i].value));
            assert_memory_equal(v, rows_q[i].value, v_len);
        }
        guard_free(&g);
    }
    const char *v = NULL;
    size_t v_len = 0;
    assert_int_equal(token_find_in_query(NULL, 0, &v, &v_len), 0);
}

static void every_refusal_has_one_answer(void **state)
{
    (void)state;
    for (int err = TOKEN_ERR_MISSING; err >= TOKEN_ERR_ROOM; err--) {
        int status = token_err_status(err);
        assert_int_equal(status, err == TOKEN_ERR_ROOM ? 403 : 401);
        const char *ch = token_err_challenge(err);
        assert_true(strncmp(ch, "WWW-Authenticate: Bearer realm=\"wsrelay\"", 40) == 0);
        assert_non_null(strstr(ch, "\r\n"));
        assert_true(strlen(token_err_reason(err)) > 0);
        if (err == TOKEN_ERR_MISSING)
            assert_null(strstr(ch, "error=")); /* RFC 6750 §3.1 */
        else if (err == TOKEN_ERR_ROOM)
            assert_non_null(strstr(ch, "error=\"insufficient_scope\""));
        else
            assert_non_null(strstr(ch, "error=\"invalid_token\""));
    }
    assert_int_equal(token_err_status(0), 500);
    assert_int_equal(token_err_status(-99), 500);
    assert_string_equal(token_err_challenge(-99), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7515_a1_signature_verifies_then_its_claims_are_refused),
        cmocka_unit_test(accepted_tokens_fill_the_claims),
        cmocka_unit_test(the_size_cap_is_exact),
        cmocka_unit_test(refusal_table),
        cmocka_unit_test(padding_and_whitespace_inside_signed_segments),
        cmocka_unit_test(base64url_vectors_and_refusals),
        cmocka_unit_test(finds_the_token_parameter),
        cmocka_unit_test(every_refusal_has_one_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
