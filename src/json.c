/* json.c: checks that a /ws message is exactly one JSON object and rewrites its sender/color.
 *
 * Owns: the only #include of <jsmn.h> in wsrelay; the RFC 8259 grammar check jsmn does not do;
 * the relay rewrite described in json.h; the json_err -> close code table.
 * Does not own: the server's own messages (presence.c), UTF-8 validation (utf8.c has already
 * checked the text by RFC 6455 §8.1 before we see it; we still never misbehave if it hasn't).
 * Pure: no I/O, no logging, no allocation but the caller's struct buf.
 *
 * Implements RFC 8259 §2 (one value, the four whitespace bytes), §4 (objects), §5 (arrays),
 * §6 (numbers), §7 (strings and escapes) and §3 (the three literals).
 *
 * Why jsmn is not enough on its own. jsmn is a tokenizer: it finds where each value starts and
 * ends, and even built with JSMN_STRICT it accepts, for example (all tried against Debian's
 * libjsmn-dev 1.1.0):
 *
 *     {"a":tru}  {"a":01}  {"a":1.2.3}  {"a":-}      primitives are any run of printable bytes
 *     {"a":"<TAB>"}                                  raw control bytes inside strings
 *     {"a":1,}  {,}  {"a":1,,"b":2}  [1,]            stray commas
 *     {"a"}  {"a":}  {"a"::1}  [1:2]                 missing values, stray colons
 *     {"a":1 "b":2}  {"a":[1 2]}  {"a":"x""y"}       missing commas
 *     {} {}   {} 1                                   more than one top-level value
 *     {}<NUL>garbage                                 it stops at the first NUL byte
 *
 * So we use jsmn for what it is good at (bounded work: at most JSON_MAX_TOKENS tokens, on the
 * stack; and the exact span of every value) and then walk the text ourselves with a small
 * recursive-descent check that looks at every byte: each token must start exactly where the
 * grammar expects a value, and the bytes between tokens must be whitespace plus exactly the
 * one punctuation mark the grammar wants there. Anything jsmn and we disagree about is a
 * syntax error.
 */
#include "json.h"

#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Header-only jsmn: JSMN_STATIC keeps its functions local to this file; JSMN_STRICT makes it
 * refuse unquoted keys and bare words (but see above for what it still lets through). */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "ascii.h"

/* ---- Token spans -------------------------------------------------------------------------
 *
 * jsmn reports a string's span without its quotes, every other token's span in full:
 *
 *     {"key":-1.5}     object  [0, 12)   the braces included
 *      "key"           string  [2, 5)    begin()/end() below widen it to [1, 6)
 *            -1.5      primitive [7, 11)
 *
 * begin()/end() give every token's span as it stands in the text, quotes included, which is
 * what we both check against and copy. */

static size_t tok_begin(const jsmntok_t *t)
{
    return (size_t)t->start - (t->type == JSMN_STRING ? 1 : 0);
}

static size_t tok_end(const jsmntok_t *t)
{
    return (size_t)t->end + (t->type == JSMN_STRING ? 1 : 0);
}

/* ---- RFC 8259 lexical rules --------------------------------------------------------------- */

/* §2: insignificant whitespace is exactly these four bytes, nothing else (no \f, no \v). */
static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const uint8_t *in, size_t len, size_t pos)
{
    while (pos < len && is_ws(in[pos]))
        pos++;
    return pos;
}

/* §6: number = [ "-" ] int [ frac ] [ exp ]
 *       int  = "0" / ( digit1-9 *digit )      so no leading zeros: 01 and -01 are not numbers
 *       frac = "." 1*digit                    so "1." and ".5" are not numbers
 *       exp  = ( "e" / "E" ) [ "-" / "+" ] 1*digit
 * There is no range limit in the grammar (§6 leaves precision to implementations), and we
 * copy numbers as text, so 12345678901234567890 is as good as 1. */
static bool is_number(const uint8_t *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0') {
        i++;
    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        while (i < len && ascii_is_digit(s[i]))
            i++;
    } else {
        return false; /* "-" alone, or no digit at all */
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i == len || !ascii_is_digit(s[i]))
            return false;
        while (i < len && ascii_is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i == len || !ascii_is_digit(s[i]))
            return false;
        while (i < len && ascii_is_digit(s[i]))
            i++;
    }
    return i == len;
}

/* §3 (the literals, lower case only) and §6 (numbers): what a jsmn "primitive" must be. */
static bool is_primitive(const uint8_t *s, size_t len)
{
    if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 5 && memcmp(s, "false", 5) == 0) ||
        (len == 4 && memcmp(s, "null", 4) == 0))
        return true;
    return is_number(s, len);
}

/* §7: the bytes between a string's quotes. Every byte below 0x20 must be escaped (a raw TAB or
 * newline is not allowed); a backslash starts one of exactly nine escapes, \u taking four hex
 * digits; an unescaped quote would have ended the string. Bytes >= 0x80 are UTF-8 and pass as
 * they are (§8.1; the WebSocket layer has validated them).
 *
 * \u escapes of surrogates need not pair up: §7's grammar allows a lone \uD800 and §8.2 only
 * warns that receivers may behave unpredictably. Browsers' JSON.parse accepts it, so we relay
 * it unchanged rather than refuse what every client accepts. */
static bool is_string_body(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c < 0x20 || c == '"')
            return false;
        if (c != '\\')
            continue;
        if (++i == len)
            return false;
        switch (s[i]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            break;
        case 'u':
            if (len - i - 1 < 4)
                return false;
            for (size_t k = 1; k <= 4; k++)
                if (ascii_hex_value(s[i + k]) < 0)
                    return false;
            i += 4;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* ---- Decoding a (validated) string, to compare keys and "type" values ---------------------
 *
 * The client may spell "sender" as "send\u0065r" (§7 lets any character be escaped), so keys
 * are compared by what they mean, not by their bytes. Our keys and type values are short
 * ASCII words, so decoding stops as soon as the result cannot fit in `cap` bytes: a longer
 * string can't equal any of them. */

static size_t put_utf8(uint32_t cp, uint8_t *out) /* RFC 3629 §3; out has room for 4 */
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const uint8_t *s) /* four hex digits, already checked */
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = v << 4 | (uint32_t)ascii_hex_value(s[k]);
    return v;
}

/* Decodes the escaped body s[0..len) (already passed is_string_body()) into out[0..cap).
 * Returns the decoded length, or SIZE_MAX if it does not fit. *has_lone is set if a \u
 * escape of a lone surrogate was met (decoded as U+FFFD). */
static size_t decode_string(const uint8_t *s, size_t len, uint8_t *out, size_t cap, bool *has_lone)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint8_t tmp[4];
        size_t tmp_len = 1;
        if (s[i] != '\\') {
            tmp[0] = s[i++];
        } else {
            uint8_t e = s[i + 1];
            i += 2;
            switch (e) {
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                /* §7: a character outside the BMP is written as a UTF-16 surrogate pair,
                 * "\uD834\uDD1E" for U+1D11E. A surrogate without its partner decodes to
                 * U+FFFD: it cannot spell any ASCII word we look for anyway. */
                uint32_t cp = hex4(s + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && len - i >= 6 && s[i] == '\\' &&
                    s[i + 1] == 'u') {
                    uint32_t lo = hex4(s + i + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD;
                    *has_lone = true;
                }
                tmp_len = put_utf8(cp, tmp);
                break;
            }
            default: /* '"', '\\', '/': the character itself */
                tmp[0] = e;
                break;
            }
        }
        if (tmp_len > cap - n)
            return SIZE_MAX;
        memcpy(out + n, tmp, tmp_len);
        n += tmp_len;
    }
    return n;
}

/* Does string token t decode to exactly the NUL-terminated ASCII word `word`? */
static bool string_equals(const uint8_t *in, const jsmntok_t *t, const char *word)
{
    uint8_t dec[16];
    size_t word_len = strlen(word);
    assert(word_len <= sizeof dec);
    bool has_lone = false;
    size_t n =
        decode_string(in + t->start, (size_t)(t->end - t->start), dec, sizeof dec, &has_lone);
    return n == word_len && memcmp(dec, word, word_len) == 0;
}

/* ---- The grammar walk ----------------------------------------------------------------------
 *
 * A recursive-descent check of RFC 8259 §2-§7 that reads every byte of the text once, using
 * jsmn's tokens (in document order: jsmn hands them out as it meets each value's first byte)
 * to know where each value ends. `pos` is the next byte to read, `next` the next token to use.
 * Recursion depth is at most the token count, so at most JSON_MAX_TOKENS frames. */

struct walk {
    const uint8_t *in;
    size_t len;
    const jsmntok_t *toks;
    size_t ntoks;
    size_t pos;
    size_t next;
};

static bool walk_value(struct walk *w);

/* The next token must start exactly at the current byte (a value where the grammar wants
 * one); returns it, or NULL. pos is not moved: the caller checks the token's body first. */
static const jsmntok_t *walk_expect_token(struct walk *w)
{
    if (w->next >= w->ntoks)
        return NULL;
    const jsmntok_t *t = &w->toks[w->next];
    if (tok_begin(t) != w->pos || tok_end(t) > w->len)
        return NULL;
    w->next++;
    return t;
}

/* After whitespace, is the next byte c? If so, step over it. */
static bool walk_punct(struct walk *w, uint8_t c)
{
    w->pos = skip_ws(w->in, w->len, w->pos);
    if (w->pos < w->len && w->in[w->pos] == c) {
        w->pos++;
        return true;
    }
    return false;
}

/* §4 object = "{" [ member *( "," member ) ] "}",  member = string ":" value
 * §5 array  = "[" [ value *( "," value ) ] "]"
 * Called with pos just past the opening bracket of container t. */
static bool walk_container(struct walk *w, const jsmntok_t *t)
{
    bool is_object = t->type == JSMN_OBJECT;
    uint8_t close = is_object ? '}' : ']';
    if (walk_punct(w, close)) /* empty: {} or [] */
        return w->pos == tok_end(t);
    for (;;) {
        if (is_object) {
            w->pos = skip_ws(w->in, w->len, w->pos);
            const jsmntok_t *key = walk_expect_token(w);
            /* §4: a name is a string; jsmn strict already refuses other keys, we re-check */
            if (key == NULL || key->type != JSMN_STRING ||
                !is_string_body(w->in + key->start, (size_t)(key->end - key->start)))
                return false;
            w->pos = tok_end(key);
            if (!walk_punct(w, ':'))
                return false;
        }
        if (!walk_value(w))
            return false;
        if (walk_punct(w, ','))
            continue;
        if (!walk_punct(w, close))
            return false;
        return w->pos == tok_end(t); /* the bracket we found is the one jsmn matched */
    }
}

/* value = object / array / string / number / true / false / null, after optional whitespace. */
static bool walk_value(struct walk *w)
{
    w->pos = skip_ws(w->in, w->len, w->pos);
    const jsmntok_t *t = walk_expect_token(w);
    if (t == NULL)
        return false;
    size_t body_len = (size_t)(t->end - t->start);
    switch (t->type) {
    case JSMN_OBJECT:
    case JSMN_ARRAY:
        w->pos++;
        return walk_container(w, t);
    case JSMN_STRING:
        if (!is_string_body(w->in + t->start, body_len))
            return false;
        break;
    case JSMN_PRIMITIVE:
        if (!is_primitive(w->in + t->start, body_len))
            return false;
        break;
    default: /* JSMN_UNDEFINED: never handed out for a complete parse */
        return false;
    }
    w->pos = tok_end(t);
    return true;
}

/* ---- The rewrite -----------------------------------------------------------------------------
 *
 * Measured, then written (buf.h's struct buf_writer): the same function runs twice, first
 * to count the bytes (and to find a reserved "type"), then into space reserved in `out`. So a
 * failure leaves `out` exactly as it was without any rollback, and `out` grows at most once. */

/* The index just past token v's subtree: tokens are in document order, so v's descendants are
 * exactly the tokens that follow it and start before it ends. */
static size_t skip_subtree(const jsmntok_t *toks, size_t ntoks, size_t v)
{
    size_t i = v + 1;
    while (i < ntoks && toks[i].start < toks[v].end)
        i++;
    return i;
}

/* §4 leaves duplicate names to the implementation; we remove every "sender"/"color" however
 * often it occurs, and refuse if any "type" member is reserved. */
static bool is_reserved_type(const uint8_t *in, const jsmntok_t *v)
{
    static const char *const reserved[] = {"welcome", "join", "leave", "count", "error"};
    if (v->type != JSMN_STRING) /* "type":1 is not a server message; kept as it is */
        return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (string_equals(in, v, reserved[i]))
            return true;
    return false;
}

/* Emits the rewritten object for a text whose token 0 is a validated object; name is the
 * stamped name (JSON text) or NULL. */
static int rewrite(const uint8_t *in, const jsmntok_t *toks, size_t ntoks, const char *sender,
                   const char *hue, const char *name, struct buf_writer *e)
{
    bool first = true;
    /* The object, and the server's two members (three with a name). */
    size_t out_tokens = 1 + 4 + (name != NULL ? 2 : 0);
    buf_put(e, "{", 1);
    for (size_t k = 1; k < ntoks;) { /* k: a key of the top-level object; k + 1 its value */
        const jsmntok_t *key = &toks[k];
        const jsmntok_t *val = &toks[k + 1];
        size_t after = skip_subtree(toks, ntoks, k + 1);
        size_t member_tokens = after - k;
        k = after;
        if (string_equals(in, key, "type") && is_reserved_type(in, val))
            return JSON_ERR_RESERVED;
        if (string_equals(in, key, "sender") || string_equals(in, key, "color") ||
            (name != NULL && string_equals(in, key, "name")))
            continue;
        out_tokens += member_tokens;
        if (!first)
            buf_put(e, ",", 1);
        first = false;
        buf_put(e, in + tok_begin(key), tok_end(key) - tok_begin(key)); /* quotes and escapes */
        buf_put(e, ":", 1);
        buf_put(e, in + tok_begin(val), tok_end(val) - tok_begin(val)); /* nested: whole span */
    }
    /* The output must pass our own check too: other nodes parse it (cluster.c), and a message
     * of 509..512 tokens without sender and color would grow past JSON_MAX_TOKENS here. */
    if (out_tokens > JSON_MAX_TOKENS)
        return JSON_ERR_TOO_COMPLEX;
    if (!first)
        buf_put(e, ",", 1);
    if (name != NULL) {
        buf_put(e, "\"name\":", 7);
        buf_put(e, name, strlen(name));
        buf_put(e, ",", 1);
    }
    buf_put(e, "\"sender\":\"", 10);
    buf_put(e, sender, strlen(sender));
    buf_put(e, "\",\"color\":", 10);
    buf_put(e, hue, strlen(hue));
    buf_put(e, "}", 1);
    return 0;
}

/* ---- Public -------------------------------------------------------------------------------- */

/* Tokenizes in[0..len) into toks and checks it is exactly one JSON object (RFC 8259).
 * Returns the token count (> 0), or a negative enum json_err. */
static int parse_object(const uint8_t *in, size_t len, jsmntok_t toks[JSON_MAX_TOKENS])
{
    /* jsmn keeps offsets in int; a message this big is refused long before, by --max-message. */
    if (len > INT_MAX)
        return JSON_ERR_TOO_COMPLEX;

    /* §2: JSON-text = ws value ws. Nothing but whitespace is no JSON text at all. */
    size_t first = skip_ws(in, len, 0);
    if (first == len)
        return JSON_ERR_SYNTAX;

    /* A bare top-level number or literal: jsmn strict ends a primitive only at a delimiter
     * and so answers "incomplete" for "1" or "null" at the very end of the input. Judge it
     * ourselves, so that valid JSON which is not an object gets the right answer. */
    uint8_t c = in[first];
    if (c == '-' || ascii_is_digit(c) || c == 't' || c == 'f' || c == 'n') {
        size_t last = len;
        while (is_ws(in[last - 1]))
            last--;
        return is_primitive(in + first, last - first) ? JSON_ERR_NOT_OBJECT : JSON_ERR_SYNTAX;
    }

    jsmn_parser parser;
    jsmn_init(&parser);
    int n = jsmn_parse(&parser, (const char *)in, len, toks, JSON_MAX_TOKENS);
    if (n == JSMN_ERROR_NOMEM)
        return JSON_ERR_TOO_COMPLEX; /* refuse, don't regrow: the bound is the point */
    if (n <= 0)                      /* INVAL, PART, or no token at all (e.g. ",") */
        return JSON_ERR_SYNTAX;

    struct walk w = {.in = in, .len = len, .toks = toks, .ntoks = (size_t)n, .pos = first};
    if (!walk_value(&w))
        return JSON_ERR_SYNTAX;
    /* §2: after the one value only whitespace; no second value, no NUL, no garbage. */
    if (skip_ws(in, len, w.pos) != len || w.next != (size_t)n)
        return JSON_ERR_SYNTAX;
    if (toks[0].type != JSMN_OBJECT)
        return JSON_ERR_NOT_OBJECT;
    return n;
}

int json_check_object(const uint8_t *in, size_t len)
{
    jsmntok_t toks[JSON_MAX_TOKENS];
    int n = parse_object(in, len, toks);
    return n < 0 ? n : 0;
}

int json_rewrite(const uint8_t *in, size_t len, const char *sender, unsigned color, struct buf *out)
{
    return json_rewrite_named(in, len, sender, color, NULL, out);
}

int json_rewrite_named(const uint8_t *in, size_t len, const char *sender, unsigned color,
                       const char *name, struct buf *out)
{
    /* The caller's promise (a UUID), checked cheaply: we copy sender into a JSON string
     * without escaping, so a quote, backslash or control byte here would be our bug. */
    for (const char *s = sender; *s != '\0'; s++)
        assert(*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20);
    assert(name == NULL || (strlen(name) >= 2 && strlen(name) <= JSON_NAME_MAX));

    jsmntok_t toks[JSON_MAX_TOKENS];
    int n = parse_object(in, len, toks);
    if (n < 0)
        return n;

    char hue[16];
    snprintf(hue, sizeof hue, "%u", color);

    struct buf_writer e = {.dst = NULL};
    int rc = rewrite(in, toks, (size_t)n, sender, hue, name, &e);
    if (rc < 0)
        return rc;
    size_t need = e.len;
    e = (struct buf_writer){.dst = buf_reserve(out, need)};
    if (e.dst == NULL)
        return JSON_ERR_NOMEM; /* over out's limit, or no memory: out is unchanged */
    rewrite(in, toks, (size_t)n, sender, hue, name, &e);
    assert(e.len == need);
    buf_commit(out, need);
    return 0;
}

int json_members(const uint8_t *in, size_t len, struct json_member *out, size_t cap)
{
    jsmntok_t toks[JSON_MAX_TOKENS];
    int n = parse_object(in, len, toks);
    if (n < 0)
        return n;
    size_t count = 0;
    for (size_t k = 1; k < (size_t)n;) { /* k: a key of the top-level object; k + 1 its value */
        const jsmntok_t *key = &toks[k];
        const jsmntok_t *val = &toks[k + 1];
        k = skip_subtree(toks, (size_t)n, k + 1);
        if (count == cap)
            return JSON_ERR_TOO_COMPLEX;
        enum json_kind kind = val->type == JSMN_STRING   ? JSON_KIND_STRING
                              : val->type == JSMN_OBJECT ? JSON_KIND_OBJECT
                              : val->type == JSMN_ARRAY  ? JSON_KIND_ARRAY
                              : ascii_is_digit(in[val->start]) || in[val->start] == '-'
                                  ? JSON_KIND_NUMBER
                                  : JSON_KIND_LITERAL;
        out[count++] = (struct json_member){
            .key = in + key->start,
            .key_len = (size_t)(key->end - key->start),
            .kind = kind,
            .value = in + val->start,
            .value_len = (size_t)(val->end - val->start),
        };
    }
    return (int)count;
}

size_t json_string_decode(const uint8_t *body, size_t len, uint8_t *out, size_t cap)
{
    if (!is_string_body(body, len))
        return SIZE_MAX; /* not a string body at all: the caller's mistake, refused */
    bool has_lone = false;
    size_t n = decode_string(body, len, out, cap, &has_lone);
    return has_lone ? SIZE_MAX : n;
}

/* One table for every error: the close code (RFC 6455 §7.4.1) and the reason sent with it. */
static const struct {
    int err;
    uint16_t code;
    const char *reason;
} json_answers[] = {
    {JSON_ERR_SYNTAX, 1007, "invalid JSON"}, /* §7.4.1: data not consistent */
    {JSON_ERR_NOT_OBJECT, 1007, "JSON is not an object"},
    {JSON_ERR_TOO_COMPLEX, 1009, "JSON too complex"},   /* too big to process */
    {JSON_ERR_RESERVED, 1008, "reserved message type"}, /* violates our policy */
    {JSON_ERR_NOMEM, 1011, "out of memory"},            /* unexpected server condition */
};

uint16_t json_err_close_code(int err)
{
    for (size_t i = 0; i < sizeof json_answers / sizeof json_answers[0]; i++)
        if (json_answers[i].err == err)
            return json_answers[i].code;
    return 1011; /* not a json_err: our bug, answered as an internal error */
}

const char *json_err_reason(int err)
{
    for (size_t i = 0; i < sizeof json_answers / sizeof json_answers[0]; i++)
        if (json_answers[i].err == err)
            return json_answers[i].reason;
    return "internal error";
}
