/* fuzz_logjson.c: libFuzzer target for logjson.c: a log line's body -> one JSON object.
 *
 * The input is the body of a log line (what follows "TIME LEVEL "): log_at() formats it from
 * our own format strings, but values in it come from peers, so any bytes it is. Each run:
 *   1. converts the input with a roomy buffer: the answer is never 0, ends in "}\n", has no
 *      other newline nor any byte below 0x20 or DEL, is valid UTF-8 (utf8_valid()), and is
 *      a JSON object by the strict reader written here (RFC 8259 §4, §6, §7): keys and
 *      string values with only the escapes \" \\ \uXXXX, numbers of 1 to 15 digits without
 *      a leading zero; its keys are "time" and "level" first, then keys of [a-z0-9_] taken
 *      from the input, then "event" last;
 *   2. converts it again with a buffer one byte below LOGJSON_SIZE(): the answer is 0;
 *      and with a buffer of exactly LOGJSON_SIZE(): the same bytes as step 1.
 * Why: a log shipper that meets one bad line drops it, or stops; a value that could end its
 * string would let a peer forge fields (a fake "level", a fake "event") in the operator's
 * search results.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "logjson.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TIME[] = "2026-11-25T10:22:07.481Z";
static const char LEVEL[] = "warn";

/* Reads a JSON string at s[*i] (its opening quote); returns its raw inside's length and
 * advances *i past the closing quote. Aborts on anything but the escapes logjson writes. */
static size_t read_string(const char *s, size_t len, size_t *i)
{
    FUZZ_CHECK(*i < len && s[*i] == '"');
    size_t start = ++*i;
    while (*i < len && s[*i] != '"') {
        if (s[*i] == '\\') {
            FUZZ_CHECK(*i + 1 < len);
            char e = s[*i + 1];
            if (e == 'u') {
                FUZZ_CHECK(*i + 5 < len);
                for (int k = 2; k < 6; k++)
                    FUZZ_CHECK(strchr("0123456789abcdef", s[*i + k]) != NULL && s[*i + k]);
                *i += 6;
            } else {
                FUZZ_CHECK(e == '"' || e == '\\');
                *i += 2;
            }
        } else {
            (*i)++;
        }
    }
    FUZZ_CHECK(*i < len);
    size_t n = *i - start;
    (*i)++;
    return n;
}

static void check_object(const char *s, size_t len)
{
    FUZZ_CHECK(len >= 3 && s[0] == '{' && s[len - 2] == '}' && s[len - 1] == '\n');
    FUZZ_CHECK(utf8_valid((const uint8_t *)s, len));
    for (size_t i = 0; i + 1 < len; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
    size_t i = 1, end = len - 2, fields = 0;
    const char *last_key = NULL;
    size_t last_key_len = 0;
    while (i < end) {
        if (fields > 0) {
            FUZZ_CHECK(s[i] == ',');
            i++;
        }
        const char *key = s + i + 1;
        size_t key_len = read_string(s, end, &i);
        if (fields == 0)
            FUZZ_CHECK(key_len == 4 && memcmp(key, "time", 4) == 0);
        else if (fields == 1)
            FUZZ_CHECK(key_len == 5 && memcmp(key, "level", 5) == 0);
        else
            for (size_t k = 0; k < key_len; k++)
                FUZZ_CHECK((key[k] >= 'a' && key[k] <= 'z') || (key[k] >= '0' && key[k] <= '9') ||
                           key[k] == '_');
        FUZZ_CHECK(i < end && s[i] == ':');
        i++;
        FUZZ_CHECK(i < end);
        if (s[i] == '"') {
            read_string(s, end, &i);
        } else {
            size_t d = i;
            while (i < end && s[i] >= '0' && s[i] <= '9')
                i++;
            FUZZ_CHECK(i - d >= 1 && i - d <= 15 && (i - d == 1 || s[d] != '0'));
        }
        last_key = key;
        last_key_len = key_len;
        fields++;
    }
    FUZZ_CHECK(i == end && fields >= 3);
    FUZZ_CHECK(last_key_len == 5 && memcmp(last_key, "event", 5) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t need = LOGJSON_SIZE(size + strlen(TIME) + strlen(LEVEL));
    char *body = malloc(size + 1); /* exact size (+1 so size 0 is a real allocation) */
    char *out = malloc(need);
    FUZZ_CHECK(body != NULL && out != NULL);
    memcpy(body, data, size);

    size_t n = logjson_line(out, need, TIME, LEVEL, body, size);
    FUZZ_CHECK(n > 0 && n <= need);
    check_object(out, n);

    char *tight = malloc(need);
    FUZZ_CHECK(tight != NULL);
    FUZZ_CHECK(logjson_line(tight, need - 1, TIME, LEVEL, body, size) == 0);
    FUZZ_CHECK(logjson_line(tight, need, TIME, LEVEL, body, size) == n);
    FUZZ_CHECK(memcmp(tight, out, n) == 0);
    free(tight);
    free(out);
    free(body);
    return 0;
}
