/* token.c: checking a room token (see token.h).
 *
 * Owns: the JWS compact serialization's three segments (RFC 7515 §3.1, §7.1), strict
 * base64url (RFC 4648 §5), the HS256 signature (RFC 7518 §3.2) compared in constant time, and
 * the claims wsrelay reads (RFC 7519 §4.1.4 exp, §4.1.5 nbf; room, name and color of our own).
 * Does not own: JSON (json.c tokenizes and checks the grammar; we only read the members it
 * lists), where a token comes from or what a refusal looks like on the wire (routes.c).
 * Pure: no I/O, no clock, no logging, no allocation; the decoded segments live on the stack.
 *
 * Chapters: 1. base64url, 2. the segments and the signature, 3. the JSON objects,
 * 4. the claims, 5. the answers.
 */
#include "token.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h> /* CRYPTO_memcmp */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ascii.h"
#include "utf8.h"

/* The stamped name is the claim with quotes and at most one escape per byte. */
_Static_assert(2 * TOKEN_NAME_MAX + 2 <= JSON_NAME_MAX, "a name claim must fit json.c's stamp");

/* HS256: the HMAC is SHA-256's size, 32 bytes, 43 base64url characters without padding. */
enum { MAC_LEN = 32 };

/* ==== 1. base64url ====================================================================== */

/* RFC 4648 §5, Table 2: the URL- and filename-safe alphabet. -1: not in it ('=' included:
 * a JWS segment is unpadded, RFC 7515 §2). */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long token_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    /* Four characters carry three bytes; a last group of one character would carry only 6
     * bits, less than a byte: no encoder makes it. */
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1) > cap)
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* RFC 4648 §3.5: the pad bits of the last character must be zero, else "AB" and "AC"
     * would both decode to the same byte and a token would have two spellings. */
    if (acc != 0)
        return -1;
    return (long)n;
}

/* ==== 2. The segments and the signature ================================================== */

/* The three segments of a compact JWS (RFC 7515 §7.1): header.claims.signature. */
struct segments {
    const char *header, *claims, *sig;
    size_t header_len, claims_len, sig_len;
};

/* Splits at the first two dots. A third dot is not in the base64url alphabet, so it makes the
 * signature segment fail to decode: exactly three segments, or malformed. */
static bool split(const char *t, size_t len, struct segments *s)
{
    const char *d1 = memchr(t, '.', len);
    if (d1 == NULL)
        return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t));
    if (d2 == NULL)
        return false;
    *s = (struct segments){
        .header = t,
        .header_len = (size_t)(d1 - t),
        .claims = d1 + 1,
        .claims_len = (size_t)(d2 - d1 - 1),
        .sig = d2 + 1,
        .sig_len = len - (size_t)(d2 + 1 - t),
    };
    return true;
}

/* RFC 7515 §5.2 step 9 with RFC 7518 §3.2: the signature is the HMAC-SHA-256 of the signing
 * input, ASCII(header "." claims) as sent, never re-encoded. Compared with CRYPTO_memcmp,
 * whose time depends on the length only: memcmp stops at the first differing byte, and
 * timing how long a guess survives would reveal the expected MAC byte by byte. */
static int check_signature(const struct segments *s, const uint8_t *secret, size_t secret_len)
{
    uint8_t sig[MAC_LEN + 3];
    long sig_len = token_base64url_decode(s->sig, s->sig_len, sig, sizeof sig);
    if (sig_len < 0)
        return TOKEN_ERR_MALFORMED;
    if (sig_len != MAC_LEN) /* empty, truncated or too long: not an HS256 signature */
        return TOKEN_ERR_SIGNATURE;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    size_t input_len = s->header_len + 1 + s->claims_len;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)s->header, input_len,
             mac, &mac_len) == NULL ||
        mac_len != MAC_LEN)
        return TOKEN_ERR_SIGNATURE; /* cannot happen with a key under INT_MAX bytes */
    return CRYPTO_memcmp(mac, sig, MAC_LEN) == 0 ? TOKEN_OK : TOKEN_ERR_SIGNATURE;
}

/* ==== 3. The JSON objects ================================================================ */

/* One decoded segment and its members. */
struct object {
    uint8_t text[TOKEN_MAX_LEN / 4 * 3];
    size_t len;
    struct json_member m[TOKEN_MEMBERS_MAX];
    size_t n;
};

/* Decodes a segment into one JSON object in UTF-8 (RFC 7515 §5.2 steps 2-3 and 7-8) whose
 * member names are all different. RFC 8259 §4 leaves duplicates to the reader and many
 * readers keep the last: "room":"a" ... "room":"b" would mean one room to us and another to
 * the issuer's library, so duplicates are refused (RFC 7515 §5.2 step 4, RFC 7519 §7.2). */
static int read_object(const char *seg, size_t seg_len, struct object *o)
{
    long n = token_base64url_decode(seg, seg_len, o->text, sizeof o->text);
    if (n < 0 || !utf8_valid(o->text, (size_t)n))
        return TOKEN_ERR_MALFORMED;
    o->len = (size_t)n;
    int count = json_members(o->text, o->len, o->m, TOKEN_MEMBERS_MAX);
    if (count < 0)
        return TOKEN_ERR_MALFORMED;
    o->n = (size_t)count;

    /* Names compared after decoding escapes ("r\u006fom" is "room"): decoded into one
     * scratch area, which decoding never outgrows (an escape is longer than what it
     * stands for). */
    uint8_t names[sizeof o->text];
    size_t off[TOKEN_MEMBERS_MAX + 1];
    off[0] = 0;
    for (size_t i = 0; i < o->n; i++) {
        size_t k =
            json_string_decode(o->m[i].key, o->m[i].key_len, names + off[i], sizeof names - off[i]);
        if (k == SIZE_MAX)
            return TOKEN_ERR_MALFORMED; /* a lone surrogate: no name at all */
        off[i + 1] = off[i] + k;
        for (size_t j = 0; j < i; j++)
            if (off[j + 1] - off[j] == k && memcmp(names + off[j], names + off[i], k) == 0)
                return TOKEN_ERR_DUPLICATE;
    }
    return TOKEN_OK;
}

/* The member named `name` (an ASCII word), or NULL. Names are short words, so a decoded key
 * longer than 16 bytes is none of them. */
static const struct json_member *member(const struct object *o, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < o->n; i++) {
        uint8_t k[16];
        size_t n = json_string_decode(o->m[i].key, o->m[i].key_len, k, sizeof k);
        if (n == name_len && memcmp(k, name, n) == 0)
            return &o->m[i];
    }
    return NULL;
}

/* A string member decoded into out[0..cap); SIZE_MAX if it is not a string, does not fit or
 * holds a lone surrogate. */
static size_t string_value(const struct json_member *m, uint8_t *out, size_t cap)
{
    if (m->kind != JSON_KIND_STRING)
        return SIZE_MAX;
    return json_string_decode(m->value, m->value_len, out, cap);
}

/* RFC 7515 §4.1.1: "alg" is required; we accept exactly one, so a token cannot choose a
 * weaker one ("none", §A.5's unsecured JWS) or make us verify an HMAC with a public key.
 * The signature was already checked as HS256 whatever the header said; this refuses tokens
 * whose issuer meant something else. */
static int check_header(const struct object *h)
{
    const struct json_member *alg = member(h, "alg");
    uint8_t v[8];
    size_t n = alg != NULL ? string_value(alg, v, sizeof v) : SIZE_MAX;
    if (n != 5 || memcmp(v, "HS256", 5) != 0)
        return TOKEN_ERR_ALG;
    /* §4.1.11: a recipient that does not understand every extension "crit" lists must
     * refuse the token; we understand none. */
    if (member(h, "crit") != NULL)
        return TOKEN_ERR_CRIT;
    /* RFC 7519 §5.1: "typ" is "JWT", compared case-insensitively (RFC 7515 §4.1.9). */
    const struct json_member *typ = member(h, "typ");
    if (typ != NULL) {
        n = string_value(typ, v, sizeof v);
        if (n != 3 || strncasecmp((const char *)v, "JWT", 3) != 0)
            return TOKEN_ERR_TYP;
    }
    return TOKEN_OK;
}

/* ==== 4. The claims ===================================================================== */

/* A number of 1 to 15 digits and nothing else: a NumericDate (RFC 7519 §2) as we take it
 * (token.h), or a hue. 15 digits of seconds is 31 million years: no overflow of int64_t, and
 * no date anyone means. */
static bool whole_number(const struct json_member *m, int64_t *out)
{
    if (m->kind != JSON_KIND_NUMBER || m->value_len == 0 || m->value_len > 15)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < m->value_len; i++) {
        if (!ascii_is_digit(m->value[i]))
            return false; /* '-', '.', 'e' */
        v = v * 10 + (m->value[i] - '0');
    }
    *out = v;
    return true;
}

/* "color": the hue the server would otherwise draw at random, as an integer 0..359. */
static bool hue(const struct json_member *m, unsigned *out)
{
    int64_t v;
    if (!whole_number(m, &v) || v > 359)
        return false;
    *out = (unsigned)v;
    return true;
}

/* "name": 1..TOKEN_NAME_MAX bytes of UTF-8 once decoded, no control character (C0, DEL, or
 * C1, which is U+0080..U+009F, C2 80..C2 9F in UTF-8): a name is shown to every member of the
 * room, and a control byte could break the line it is shown on. Re-encoded as a JSON
 * string with only '"' and '\' escaped, which is then all there is to escape. */
static bool name_claim(const struct json_member *m, char out[JSON_NAME_MAX + 1])
{
    uint8_t v[TOKEN_NAME_MAX];
    size_t n = string_value(m, v, sizeof v);
    if (n == SIZE_MAX || n == 0 || !utf8_valid(v, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] == 0x7f || (v[i] == 0xc2 && i + 1 < n && v[i + 1] < 0xa0))
            return false;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            out[o++] = '\\';
        out[o++] = (char)v[i];
    }
    out[o++] = '"';
    out[o] = '\0';
    return true;
}

/* RFC 7519 §4.1: the claims we read, each with its type; the others are ignored. */
static int read_claims(const struct object *p, struct token_claims *c)
{
    const struct json_member *exp = member(p, "exp");
    const struct json_member *nbf = member(p, "nbf");
    const struct json_member *room = member(p, "room");
    const struct json_member *name = member(p, "name");
    const struct json_member *color = member(p, "color");
    if (exp == NULL)
        return TOKEN_ERR_NO_EXP;
    if (room == NULL)
        return TOKEN_ERR_NO_ROOM;
    if (!whole_number(exp, &c->exp) || room->kind != JSON_KIND_STRING)
        return TOKEN_ERR_CLAIM;
    c->has_nbf = nbf != NULL;
    if (c->has_nbf && !whole_number(nbf, &c->nbf))
        return TOKEN_ERR_CLAIM;
    c->has_name = name != NULL;
    if (c->has_name && !name_claim(name, c->name))
        return TOKEN_ERR_NAME;
    c->has_color = color != NULL;
    if (c->has_color && !hue(color, &c->color))
        return TOKEN_ERR_COLOR;
    return TOKEN_OK;
}

/* "room": exactly the room's name, or "*". A string that cannot be a room name (too long, a
 * lone surrogate) is simply another room. */
static int check_room(const struct object *p, const char *room, size_t room_len,
                      struct token_claims *c)
{
    uint8_t v[TOKEN_MAX_LEN];
    size_t n = string_value(member(p, "room"), v, sizeof v);
    if (n == 1 && v[0] == '*') {
        c->is_any_room = true;
        return TOKEN_OK;
    }
    return n == room_len && memcmp(v, room, room_len) == 0 ? TOKEN_OK : TOKEN_ERR_ROOM;
}

static int verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                  int64_t now_s, const char *room, size_t room_len, struct token_claims *c)
{
    if (len > TOKEN_MAX_LEN)
        return TOKEN_ERR_TOO_LONG;
    struct segments s;
    if (!split(token, len, &s))
        return TOKEN_ERR_MALFORMED;
    int rc = check_signature(&s, secret, secret_len);
    if (rc != TOKEN_OK)
        return rc;
    struct object header, payload;
    rc = read_object(s.header, s.header_len, &header);
    if (rc == TOKEN_OK)
        rc = read_object(s.claims, s.claims_len, &payload);
    if (rc == TOKEN_OK)
        rc = check_header(&header);
    if (rc == TOKEN_OK)
        rc = read_claims(&payload, c);
    if (rc != TOKEN_OK)
        return rc;
    /* RFC 7519 §4.1.4: accepted only "before" exp; §4.1.5: not "before" nbf. */
    if (now_s >= c->exp)
        return TOKEN_ERR_EXPIRED;
    if (c->has_nbf && now_s < c->nbf)
        return TOKEN_ERR_NOT_YET;
    return check_room(&payload, room, room_len, c);
}

int token_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                 int64_t now_s, const char *room, size_t room_len, struct token_claims *claims)
{
    *claims = (struct token_claims){0};
    int rc = verify(token, len, secret, secret_len, now_s, room, room_len, claims);
    if (rc != TOKEN_OK)
        *claims = (struct token_claims){0};
    return rc;
}

size_t token_find_in_query(const char *query, size_t len, const char **value, size_t *value_len)
{
    size_t count = 0;
    if (query == NULL)
        return 0;
    for (size_t i = 0; i <= len;) {
        const char *amp = memchr(query + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - query) : len;
        if (end - i >= 6 && memcmp(query + i, "token=", 6) == 0 && count++ == 0) {
            *value = query + i + 6;
            *value_len = end - i - 6;
        }
        i = end + 1;
    }
    return count;
}

/* ==== 5. The answers ===================================================================== */

#define INVALID "WWW-Authenticate: Bearer realm=\"wsrelay\", error=\"invalid_token\"\r\n"

/* One table for every refusal: status, challenge, reason. */
static const struct {
    int err;
    int status;
    const char *challenge;
    const char *reason;
} token_answers[] = {
    {TOKEN_ERR_MISSING, 401, "WWW-Authenticate: Bearer realm=\"wsrelay\"\r\n", "token required"},
    {TOKEN_ERR_AMBIGUOUS, 401, INVALID, "more than one token"},
    {TOKEN_ERR_TOO_LONG, 401, INVALID, "token too long"},
    {TOKEN_ERR_MALFORMED, 401, INVALID, "malformed token"},
    {TOKEN_ERR_SIGNATURE, 401, INVALID, "bad token signature"},
    {TOKEN_ERR_ALG, 401, INVALID, "token algorithm must be HS256"},
    {TOKEN_ERR_CRIT, 401, INVALID, "token has critical extensions"},
    {TOKEN_ERR_TYP, 401, INVALID, "token type is not JWT"},
    {TOKEN_ERR_DUPLICATE, 401, INVALID, "token has a duplicate member"},
    {TOKEN_ERR_NO_EXP, 401, INVALID, "token has no exp"},
    {TOKEN_ERR_NO_ROOM, 401, INVALID, "token has no room"},
    {TOKEN_ERR_CLAIM, 401, INVALID, "token claim of the wrong type"},
    {TOKEN_ERR_NAME, 401, INVALID, "token name is not a valid name"},
    {TOKEN_ERR_COLOR, 401, INVALID, "token color is not a hue 0-359"},
    {TOKEN_ERR_EXPIRED, 401, INVALID, "token expired"},
    {TOKEN_ERR_NOT_YET, 401, INVALID, "token not yet valid"},
    {TOKEN_ERR_ROOM, 403,
     "WWW-Authenticate: Bearer realm=\"wsrelay\", error=\"insufficient_scope\"\r\n",
     "token is for another room"},
};

static size_t answer(int err)
{
    size_t i = 0;
    while (i < sizeof token_answers / sizeof token_answers[0] && token_answers[i].err != err)
        i++;
    return i;
}

int token_err_status(int err)
{
    size_t i = answer(err);
    return i < sizeof token_answers / sizeof token_answers[0] ? token_answers[i].status : 500;
}

const char *token_err_challenge(int err)
{
    size_t i = answer(err);
    return i < sizeof token_answers / sizeof token_answers[0] ? token_answers[i].challenge : "";
}

const char *token_err_reason(int err)
{
    size_t i = answer(err);
    return i < sizeof token_answers / sizeof token_answers[0] ? token_answers[i].reason
                                                              : "internal error";
}
