/* logjson.c: a log line's text form as one JSON object (see logjson.h). RFC 8259 §7 says
 * what a string may hold: anything but '"', '\' and U+0000..U+001F unescaped, in UTF-8 (§8.1). */
#include "logjson.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ascii.h"
#include "utf8.h"

/* ==== The output: appends that never pass the end ========================================= */

struct out {
    char *p;
    size_t len, cap;
    bool is_full; /* an append did not fit: the caller's buffer was below LOGJSON_SIZE() */
};

static void put(struct out *o, const void *s, size_t n)
{
    if (o->is_full || n > o->cap - o->len) {
        o->is_full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* ==== Strings ============================================================================= */

/* The byte at s[*i], or the one log.c's "\xHH" there stands for; advances *i past it. */
static uint8_t next_byte(const char *s, size_t len, size_t *i)
{
    if (s[*i] == '\\' && len - *i >= 4 && s[*i + 1] == 'x') {
        int hi = ascii_hex_value((unsigned char)s[*i + 2]);
        int lo = ascii_hex_value((unsigned char)s[*i + 3]);
        if (hi >= 0 && lo >= 0) {
            *i += 4;
            return (uint8_t)(hi * 16 + lo);
        }
    }
    return (uint8_t)s[(*i)++];
}

/* s[0..len), \xHH decoded, as the inside of a JSON string. */
static void put_escaped(struct out *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        uint8_t seq[4];
        seq[0] = next_byte(s, len, &j);
        if (seq[0] < 0x80) {
            char e[6] = {'\\', 'u', '0', '0', hex[seq[0] >> 4], hex[seq[0] & 15]};
            if (seq[0] == '"' || seq[0] == '\\') {
                e[1] = (char)seq[0];
                put(o, e, 2);
            } else if (seq[0] < 0x20 || seq[0] == 0x7f) {
                put(o, e, 6); /* DEL is legal JSON, but no terminal should get it raw */
            } else {
                put(o, seq, 1);
            }
            i = j;
            continue;
        }
        /* A lead byte says how long its sequence is; utf8_valid() says if it is one. */
        size_t n = seq[0] >= 0xf0 ? 4 : seq[0] >= 0xe0 ? 3 : seq[0] >= 0xc0 ? 2 : 1;
        size_t k = j, got = 1;
        while (got < n && k < len)
            seq[got++] = next_byte(s, len, &k);
        if (n > 1 && got == n && utf8_valid(seq, n)) {
            put(o, seq, n);
            i = k;
        } else {
            put_str(o, "\\ufffd"); /* this byte only: the next may start a good sequence */
            i = j;
        }
    }
}

static void put_string(struct out *o, const char *s, size_t len)
{
    put(o, "\"", 1);
    put_escaped(o, s, len);
    put(o, "\"", 1);
}

/* ==== The body's grammar: key=value ... "phrase" ========================================== */

static bool is_key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* 1 to 15 digits, no leading zero but "0" itself: exact as a double, and valid JSON. */
static bool is_number(const char *s, size_t len)
{
    if (len == 0 || len > 15 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ascii_is_digit((unsigned char)s[i]))
            return false;
    return true;
}

size_t logjson_line(char *out, size_t out_len, const char *time, const char *level,
                    const char *body, size_t body_len)
{
    if (out_len < LOGJSON_SIZE(body_len + strlen(time) + strlen(level)))
        return 0;
    struct out o = {.p = out, .cap = out_len};
    put_str(&o, "{\"time\":");
    put_string(&o, time, strlen(time));
    put_str(&o, ",\"level\":");
    put_string(&o, level, strlen(level));

    size_t pos = 0;
    for (;;) {
        size_t k = pos;
        while (k < body_len && is_key_char(body[k]))
            k++;
        if (k == pos || k == body_len || body[k] != '=')
            break; /* not a field: the phrase, or past the grammar */
        size_t v = k + 1, v_end;
        bool is_quoted = v < body_len && body[v] == '"';
        if (is_quoted) {
            const char *q = memchr(body + v + 1, '"', body_len - v - 1);
            if (q == NULL)
                break; /* an unclosed quote: the rest is the event */
            v_end = (size_t)(q - body) + 1;
        } else {
            const char *sp = memchr(body + v, ' ', body_len - v);
            v_end = sp != NULL ? (size_t)(sp - body) : body_len;
        }
        put(&o, ",", 1);
        put_string(&o, body + pos, k - pos);
        put(&o, ":", 1);
        if (is_quoted)
            put_string(&o, body + v + 1, v_end - v - 2);
        else if (is_number(body + v, v_end - v))
            put(&o, body + v, v_end - v);
        else
            put_string(&o, body + v, v_end - v);
        pos = v_end;
        if (pos < body_len && body[pos] == ' ')
            pos++;
    }

    /* The phrase: in quotes, which are dropped (the closing one is missing from a line
     * log.c cut at LOG_LINE_MAX). */
    const char *ev = body + pos;
    size_t ev_len = body_len - pos;
    if (ev_len >= 1 && ev[0] == '"') {
        ev++;
        ev_len--;
        if (ev_len >= 1 && ev[ev_len - 1] == '"')
            ev_len--;
    }
    put_str(&o, ",\"event\":");
    put_string(&o, ev, ev_len);
    put_str(&o, "}\n");
    return o.is_full ? 0 : o.len;
}
