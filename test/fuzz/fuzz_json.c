/* fuzz_json.c: libFuzzer target for json.c's check-and-rewrite of a /ws message.
 *
 * The input is the text of one WebSocket message (already UTF-8-checked by ws.c in the
 * server, but json.c promises to behave on any bytes). Each run drives json_rewrite() with a
 * fixed sender UUID and color:
 *   1. into a roomy output buffer that already holds a few bytes (json_rewrite appends);
 *   2. into a buffer with an input-derived limit, often too small, for the JSON_ERR_NOMEM
 *      path;
 *   3. on its own output, which must come back unchanged.
 *
 * The oracle is a second JSON parser written here from RFC 8259's grammar, small and
 * obviously recursive-descent, which also records the top-level members. From it this file
 * predicts json_rewrite()'s exact answer and, on success, its exact output bytes:
 *   - not JSON -> JSON_ERR_SYNTAX (or JSON_ERR_TOO_COMPLEX: jsmn may run out of tokens before
 *     it meets the error);
 *   - JSON that is not an object -> JSON_ERR_NOT_OBJECT (JSON_ERR_TOO_COMPLEX past 512 tokens);
 *   - an object of more than JSON_MAX_TOKENS tokens, or whose rewritten form would have more
 *     -> JSON_ERR_TOO_COMPLEX (the reserved-type check comes before the output's count);
 *   - a top-level "type" whose string value decodes to welcome/join/leave/error ->
 *     JSON_ERR_RESERVED, keys compared after decoding escapes ("typ\u0065");
 *   - otherwise 0 and "{" + every other top-level member, key and value byte for byte,
 *     comma-separated + the server's "sender" and "color" + "}", or JSON_ERR_NOMEM when that
 *     does not fit the buffer's limit.
 * And, whatever the oracle says: on error out is unchanged (same size, same bytes); on
 * success the output is one valid JSON object in which "sender" and "color" appear exactly
 * once at top level, as the last two members; rewriting the output again is the identity;
 * every error has a close code (1007, 1008, 1009, 1011) and a reason.
 * Why: json_rewrite() is what stands between one client's bytes and every other client's
 * screen. A wrong "valid" lets a client forge a sender or a server message; a wrong
 * "invalid" disconnects a well-behaved client with 1007.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SENDER[] = "123e4567-e89b-12d3-a456-426614174000"; /* a UUID, as conn.c */
static const unsigned COLOR = 210;
static const char COLOR_TEXT[] = "210";

/* Deeper than this the oracle gives up: such a text has more than JSON_MAX_TOKENS tokens
 * (each bracket is one), so json.c must refuse it anyway. */
enum { MAX_DEPTH = 600 };

/* ---- The oracle: RFC 8259 by recursive descent ------------------------------------------- */

struct member {
    size_t key_begin, key_end; /* the key's span, quotes included */
    size_t val_begin, val_end; /* the value's span */
    bool val_is_string;
};

struct oracle {
    const uint8_t *s;
    size_t len, pos;
    size_t tokens; /* every value and every key counts one, as jsmn counts */
    bool too_deep;
    struct member *members; /* the top-level object's, when there is one */
    size_t nmembers;
};

static bool o_value(struct oracle *o, size_t depth);

static void o_ws(struct oracle *o) /* §2: exactly four whitespace bytes */
{
    while (o->pos < o->len && (o->s[o->pos] == ' ' || o->s[o->pos] == '\t' ||
                               o->s[o->pos] == '\n' || o->s[o->pos] == '\r'))
        o->pos++;
}

static bool o_byte(struct oracle *o, uint8_t c)
{
    if (o->pos < o->len && o->s[o->pos] == c) {
        o->pos++;
        return true;
    }
    return false;
}

static bool is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* §7: quotation-mark *char quotation-mark; char is unescaped (0x20-0x21, 0x23-0x5B,
 * 0x5D-...: every byte from 0x80 up passes, json.h leaves UTF-8 to ws.c) or one of the nine
 * escapes. */
static bool o_string(struct oracle *o)
{
    if (!o_byte(o, '"'))
        return false;
    o->tokens++;
    for (;;) {
        if (o->pos >= o->len)
            return false;
        uint8_t c = o->s[o->pos++];
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (o->pos >= o->len)
            return false;
        c = o->s[o->pos++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++)
                if (o->pos >= o->len || !is_hex(o->s[o->pos++]))
                    return false;
        } else if (strchr("\"\\/bfnrt", c) == NULL || c == 0) {
            return false;
        }
    }
}

/* §6: [ minus ] int [ frac ] [ exp ]. */
static bool o_number(struct oracle *o)
{
    o->tokens++;
    o_byte(o, '-');
    if (o_byte(o, '0')) {
        /* int = zero: no more digits may follow */
    } else if (o->pos < o->len && o->s[o->pos] >= '1' && o->s[o->pos] <= '9') {
        while (o->pos < o->len && is_digit(o->s[o->pos]))
            o->pos++;
    } else {
        return false;
    }
    if (o_byte(o, '.')) {
        if (o->pos >= o->len || !is_digit(o->s[o->pos]))
            return false;
        while (o->pos < o->len && is_digit(o->s[o->pos]))
            o->pos++;
    }
    if (o_byte(o, 'e') || o_byte(o, 'E')) {
        if (!o_byte(o, '+'))
            o_byte(o, '-');
        if (o->pos >= o->len || !is_digit(o->s[o->pos]))
            return false;
        while (o->pos < o->len && is_digit(o->s[o->pos]))
            o->pos++;
    }
    return true;
}

static bool o_literal(struct oracle *o, const char *word)
{
    size_t n = strlen(word);
    if (o->len - o->pos < n || memcmp(o->s + o->pos, word, n) != 0)
        return false;
    o->pos += n;
    o->tokens++;
    return true;
}

/* §4 object = begin-object [ member *( value-separator member ) ] end-object
 * §5 array  = begin-array [ value *( value-separator value ) ] end-array */
static bool o_container(struct oracle *o, size_t depth, bool is_object)
{
    uint8_t close = is_object ? '}' : ']';
    o->pos++; /* the opening bracket */
    o->tokens++;
    o_ws(o);
    if (o_byte(o, close))
        return true;
    for (;;) {
        struct member m = {0};
        o_ws(o);
        if (is_object) {
            m.key_begin = o->pos;
            if (!o_string(o))
                return false;
            m.key_end = o->pos;
            o_ws(o);
            if (!o_byte(o, ':'))
                return false;
            o_ws(o);
        }
        m.val_begin = o->pos;
        m.val_is_string = o->pos < o->len && o->s[o->pos] == '"';
        if (!o_value(o, depth + 1))
            return false;
        m.val_end = o->pos;
        if (is_object && depth == 0)
            o->members[o->nmembers++] = m; /* room: a member takes at least 4 bytes */
        o_ws(o);
        if (o_byte(o, ','))
            continue;
        return o_byte(o, close);
    }
}

/* §3 value, with no whitespace around it (callers skip that). */
static bool o_value(struct oracle *o, size_t depth)
{
    if (depth > MAX_DEPTH) {
        o->too_deep = true;
        return false;
    }
    if (o->pos >= o->len)
        return false;
    switch (o->s[o->pos]) {
    case '{':
        return o_container(o, depth, true);
    case '[':
        return o_container(o, depth, false);
    case '"':
        return o_string(o);
    case 't':
        return o_literal(o, "true");
    case 'f':
        return o_literal(o, "false");
    case 'n':
        return o_literal(o, "null");
    default:
        return o_number(o);
    }
}

enum verdict { NOT_JSON, NOT_OBJECT, OBJECT, TOO_DEEP };

/* §2 JSON-text = ws value ws. */
static enum verdict o_text(struct oracle *o)
{
    o_ws(o);
    size_t first = o->pos;
    bool ok = o_value(o, 0);
    if (o->too_deep)
        return TOO_DEEP;
    o_ws(o);
    if (!ok || o->pos != o->len)
        return NOT_JSON;
    return o->s[first] == '{' ? OBJECT : NOT_OBJECT;
}

/* §7's escapes decoded to UTF-8 (a surrogate pair to its code point; a lone surrogate to a
 * 3-byte form no ASCII word can equal), so keys compare by meaning as json.h says. Returns
 * the decoded length; decodes at most cap bytes (enough to compare with a short word). */
static size_t decode(const uint8_t *s, size_t begin, size_t end, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = begin + 1; i + 1 < end && n + 4 <= cap;) { /* inside the quotes */
        uint32_t cp = s[i];
        if (cp != '\\') {
            out[n++] = s[i++];
            continue;
        }
        uint8_t e = s[i + 1];
        i += 2;
        if (e != 'u') {
            static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
            const char *k = strchr(from, e);
            out[n++] = k != NULL ? (uint8_t)to[k - from] : e;
            continue;
        }
        cp = (uint32_t)strtoul(
            (const char[5]){(char)s[i], (char)s[i + 1], (char)s[i + 2], (char)s[i + 3], '\0'}, NULL,
            16);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= end - 1 && s[i] == '\\' && s[i + 1] == 'u') {
            uint32_t lo = (uint32_t)strtoul((const char[5]){(char)s[i + 2], (char)s[i + 3],
                                                            (char)s[i + 4], (char)s[i + 5], '\0'},
                                            NULL, 16);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        if (cp < 0x80) {
            out[n++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            out[n++] = (uint8_t)(0xC0 | cp >> 6);
            out[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[n++] = (uint8_t)(0xE0 | cp >> 12);
            out[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            out[n++] = (uint8_t)(0xF0 | cp >> 18);
            out[n++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            out[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}

static bool string_is(const uint8_t *s, size_t begin, size_t end, const char *word)
{
    uint8_t dec[32];
    size_t n = decode(s, begin, end, dec, sizeof dec);
    return n == strlen(word) && memcmp(dec, word, n) == 0; /* n < 28: decoded to the end */
}

/* ---- Predicting the answer ---------------------------------------------------------------- */

struct prediction {
    enum verdict verdict;
    size_t tokens, out_tokens; /* the input's, and the rewritten object's */
    bool reserved;
    uint8_t *text; /* on a predicted success: the exact output (malloc'd) */
    size_t text_len;
};

static void put(uint8_t *dst, size_t *n, const void *p, size_t len)
{
    if (dst != NULL)
        memcpy(dst + *n, p, len);
    *n += len;
}

/* The rewritten object, measured (dst NULL) or written. */
static size_t build(const uint8_t *in, const struct oracle *o, uint8_t *dst)
{
    size_t n = 0;
    bool first = true;
    put(dst, &n, "{", 1);
    for (size_t i = 0; i < o->nmembers; i++) {
        const struct member *m = &o->members[i];
        if (string_is(in, m->key_begin, m->key_end, "sender") ||
            string_is(in, m->key_begin, m->key_end, "color"))
            continue;
        if (!first)
            put(dst, &n, ",", 1);
        first = false;
        put(dst, &n, in + m->key_begin, m->key_end - m->key_begin);
        put(dst, &n, ":", 1);
        put(dst, &n, in + m->val_begin, m->val_end - m->val_begin);
    }
    if (!first)
        put(dst, &n, ",", 1);
    put(dst, &n, "\"sender\":\"", 10);
    put(dst, &n, SENDER, sizeof SENDER - 1);
    put(dst, &n, "\",\"color\":", 10);
    put(dst, &n, COLOR_TEXT, sizeof COLOR_TEXT - 1);
    put(dst, &n, "}", 1);
    return n;
}

/* Runs the oracle on s[0..len). members must have room for len / 4 + 1 entries. */
static enum verdict judge(const uint8_t *s, size_t len, struct oracle *o, struct member *members)
{
    *o = (struct oracle){.s = s, .len = len, .members = members};
    return o_text(o);
}

static struct prediction predict(const uint8_t *in, size_t len, struct member *members)
{
    struct oracle o;
    struct prediction p = {.verdict = judge(in, len, &o, members)};
    p.tokens = o.tokens;
    if (p.verdict != OBJECT)
        return p;
    static const char *const reserved[] = {"welcome", "join", "leave", "count", "error"};
    for (size_t i = 0; i < o.nmembers; i++) {
        const struct member *m = &o.members[i];
        if (!string_is(in, m->key_begin, m->key_end, "type") || !m->val_is_string)
            continue;
        for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
            p.reserved |= string_is(in, m->val_begin, m->val_end, reserved[k]);
    }
    p.text_len = build(in, &o, NULL);
    p.text = malloc(p.text_len);
    FUZZ_CHECK(p.text != NULL);
    build(in, &o, p.text);
    struct member *out_members = malloc((p.text_len / 4 + 1) * sizeof *out_members);
    FUZZ_CHECK(out_members != NULL);
    struct oracle out;
    FUZZ_CHECK(judge(p.text, p.text_len, &out, out_members) == OBJECT);
    p.out_tokens = out.tokens;
    free(out_members);
    return p;
}

/* ---- Checks ------------------------------------------------------------------------------- */

/* Is rc what the oracle allows? */
static void check_rc(int rc, const struct prediction *p)
{
    bool too_many = p->tokens > JSON_MAX_TOKENS;
    switch (p->verdict) {
    case NOT_JSON:
    case TOO_DEEP: /* more tokens than allowed, whatever else it is */
        FUZZ_CHECK(rc == JSON_ERR_SYNTAX || rc == JSON_ERR_TOO_COMPLEX);
        break;
    case NOT_OBJECT:
        FUZZ_CHECK(rc == JSON_ERR_NOT_OBJECT || (too_many && rc == JSON_ERR_TOO_COMPLEX));
        break;
    case OBJECT:
        if (too_many)
            FUZZ_CHECK(rc == JSON_ERR_TOO_COMPLEX);
        else if (p->reserved)
            FUZZ_CHECK(rc == JSON_ERR_RESERVED);
        else if (p->out_tokens > JSON_MAX_TOKENS)
            FUZZ_CHECK(rc == JSON_ERR_TOO_COMPLEX);
        else
            FUZZ_CHECK(rc == 0 || rc == JSON_ERR_NOMEM);
        break;
    }
    if (rc < 0) {
        uint16_t code = json_err_close_code(rc);
        FUZZ_CHECK(code == 1007 || code == 1008 || code == 1009 || code == 1011);
        const char *why = json_err_reason(rc);
        FUZZ_CHECK(why != NULL && why[0] != '\0' && strlen(why) <= 123);
    }
}

/* The output on its own terms: one JSON object, "sender" and "color" once each at top
 * level, as its last two members, with the server's values. Returns its token count. */
static size_t check_output(const uint8_t *out, size_t len)
{
    struct member *members = malloc((len / 4 + 1) * sizeof *members);
    FUZZ_CHECK(members != NULL);
    struct oracle o;
    FUZZ_CHECK(judge(out, len, &o, members) == OBJECT);
    FUZZ_CHECK(out[0] == '{' && out[len - 1] == '}'); /* no whitespace around it */
    size_t senders = 0, colors = 0;
    for (size_t i = 0; i < o.nmembers; i++) {
        senders += string_is(out, members[i].key_begin, members[i].key_end, "sender");
        colors += string_is(out, members[i].key_begin, members[i].key_end, "color");
    }
    FUZZ_CHECK(senders == 1 && colors == 1 && o.nmembers >= 2);
    const struct member *s = &members[o.nmembers - 2], *c = &members[o.nmembers - 1];
    FUZZ_CHECK(string_is(out, s->key_begin, s->key_end, "sender"));
    FUZZ_CHECK(s->val_end - s->val_begin == sizeof SENDER + 1 &&
               memcmp(out + s->val_begin + 1, SENDER, sizeof SENDER - 1) == 0);
    FUZZ_CHECK(string_is(out, c->key_begin, c->key_end, "color"));
    FUZZ_CHECK(c->val_end - c->val_begin == sizeof COLOR_TEXT - 1 &&
               memcmp(out + c->val_begin, COLOR_TEXT, sizeof COLOR_TEXT - 1) == 0);
    free(members);
    return o.tokens;
}

/* json_rewrite() into out, which already holds some bytes; checks "unchanged on error".
 * Returns rc; on success *res / *res_len is the appended text (inside out). */
static uint64_t hash_first(const struct buf *b, size_t n) /* buf_head() may be NULL */
{
    return n > 0 ? fuzz_hash(buf_head(b), n) : 0;
}

static int rewrite_checked(const uint8_t *in, size_t len, struct buf *out, const uint8_t **res,
                           size_t *res_len)
{
    size_t before = buf_size(out);
    uint64_t before_hash = hash_first(out, before);
    int rc = json_rewrite(in, len, SENDER, COLOR, out);
    FUZZ_CHECK(rc <= 0 && rc >= JSON_ERR_NOMEM);
    if (rc < 0) {
        FUZZ_CHECK(buf_size(out) == before && hash_first(out, before) == before_hash);
        return rc;
    }
    FUZZ_CHECK(buf_size(out) > before && hash_first(out, before) == before_hash);
    *res = buf_head(out) + before;
    *res_len = buf_size(out) - before;
    return rc;
}

/* ---- The target -------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_rng r;
    fuzz_rng_init(&r, data, size);

    /* An exact-size copy: ASan then catches any read past the message. */
    uint8_t *in = malloc(size > 0 ? size : 1);
    struct member *members = malloc((size / 4 + 1) * sizeof *members);
    FUZZ_CHECK(in != NULL && members != NULL);
    if (size > 0)
        memcpy(in, data, size);

    struct prediction p = predict(in, size, members);

    /* 1: roomy, and json_rewrite appends to what out already holds. */
    struct buf out;
    buf_init(&out, 1 << 20);
    FUZZ_CHECK(buf_append(&out, "PFX", 3) == 0);
    const uint8_t *res = NULL;
    size_t res_len = 0;
    int rc = rewrite_checked(in, size, &out, &res, &res_len);
    check_rc(rc, &p);
    if (p.verdict == OBJECT && rc == 0) /* the exact bytes the oracle built */
        FUZZ_CHECK(res_len == p.text_len && memcmp(res, p.text, res_len) == 0);

    /* 2: a limit that often does not fit; then the answer may only turn into NOMEM. */
    struct buf tight;
    size_t limit = fuzz_rng_range(&r, 0, (rc == 0 ? res_len : size) + 16);
    buf_init(&tight, limit);
    size_t pre = fuzz_rng_range(&r, 0, 3);
    if (pre > limit)
        pre = limit;
    FUZZ_CHECK(buf_append(&tight, "PFX", pre) == 0);
    const uint8_t *res2 = NULL;
    size_t res2_len = 0;
    int rc2 = rewrite_checked(in, size, &tight, &res2, &res2_len);
    if (rc == 0 && res_len <= limit - pre)
        FUZZ_CHECK(rc2 == 0 && res2_len == res_len && memcmp(res2, res, res_len) == 0);
    else if (rc == 0)
        FUZZ_CHECK(rc2 == JSON_ERR_NOMEM); /* reserved whole or not at all */
    else
        FUZZ_CHECK(rc2 == rc); /* errors are found before anything is reserved */
    buf_free(&tight);

    /* 3: the output is a valid object of at most JSON_MAX_TOKENS tokens with one sender
     * and one color, and a fixed point: rewriting it again changes nothing. Other nodes
     * rely on that: they check a relayed message by rewriting it (room.c). */
    if (rc == 0) {
        FUZZ_CHECK(check_output(res, res_len) <= JSON_MAX_TOKENS);
        struct buf again;
        buf_init(&again, 1 << 20);
        const uint8_t *res3 = NULL;
        size_t res3_len = 0;
        int rc3 = rewrite_checked(res, res_len, &again, &res3, &res3_len);
        FUZZ_CHECK(rc3 == 0);
        FUZZ_CHECK(res3_len == res_len && memcmp(res3, res, res_len) == 0);
        buf_free(&again);
    }

    buf_free(&out);
    free(p.text);
    free(members);
    free(in);
    return 0;
}
