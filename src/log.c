/* log.c: leveled one-line logging to stderr. See log.h for the format. */
#include "log.h"

#include "logjson.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LL_INFO;
static bool is_json; /* --log-format json: the same line, through logjson_line() */

static const char *const level_names[] = {
    [LL_DEBUG] = "debug",
    [LL_INFO] = "info",
    [LL_WARN] = "warn",
    [LL_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_set_json(bool on)
{
    is_json = on;
}

int log_enabled(enum log_level level)
{
    return level >= min_level;
}

void log_at(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;

    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ", ts.tv_nsec / 1000000);
    size_t time_len = n;
    n += (size_t)snprintf(line + n, sizeof line - n, " %s ", level_names[level]);

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 1) /* cut: keep room for the newline */
        n = sizeof line - 1;
    line[n++] = '\n';

    /* One write per line. A short write or an error on stderr has nowhere to be reported. */
    ssize_t w;
    if (is_json) {
        /* The text line is "TIME LEVEL body\n"; time and level are ours, the body is read. */
        char json[LOGJSON_SIZE(LOG_LINE_MAX)];
        size_t body = time_len + 1 + strlen(level_names[level]) + 1;
        line[time_len] = '\0'; /* the space after the time */
        size_t j =
            logjson_line(json, sizeof json, line, level_names[level], line + body, n - 1 - body);
        w = write(STDERR_FILENO, json, j);
    } else {
        w = write(STDERR_FILENO, line, n);
    }
    (void)w;
}

/* The one escaper. is_value: a key=value field's value, where '=' is escaped too (spaces are
 * kept: log_value() quotes a value that has one); otherwise text inside the phrase. */
static void escape(char *out, size_t out_len, const void *p, size_t len, size_t max, bool is_value)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = p;
    size_t o = 0;
    bool is_cut = len > max;

    if (out_len < 4) { /* too small to say anything useful */
        if (out_len > 0)
            out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char ch = s[i];
        bool is_plain =
            ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\' && !(is_value && ch == '=');
        size_t need = is_plain ? 1 : 4;
        if (o + need + 3 + 1 > out_len) { /* keep room for "..." and the NUL */
            is_cut = true;
            break;
        }
        if (is_plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (is_cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void log_escape(char *out, size_t out_len, const void *p, size_t len, size_t max)
{
    escape(out, out_len, p, len, max, false);
}

struct log_esc log_value(const void *p, size_t len)
{
    struct log_esc e = {.s = ""};
    size_t shown = len < LOG_VALUE_MAX ? len : LOG_VALUE_MAX;
    /* Quoted when a reader splitting at spaces would see two tokens, or none at all. */
    bool is_quoted = shown == 0 || memchr(p, ' ', shown) != NULL;
    if (!is_quoted) {
        escape(e.s, sizeof e.s, p, len, LOG_VALUE_MAX, true);
        return e;
    }
    e.s[0] = '"';
    escape(e.s + 1, sizeof e.s - 2, p, len, LOG_VALUE_MAX, true); /* room for the last '"' */
    size_t n = strlen(e.s);
    e.s[n] = '"';
    e.s[n + 1] = '\0';
    return e;
}

struct log_esc log_value_str(const char *s)
{
    return s != NULL ? log_value(s, strlen(s)) : log_value("", 0);
}

struct log_esc log_text(const void *p, size_t len)
{
    struct log_esc e = {.s = ""};
    escape(e.s, sizeof e.s, p, len, LOG_VALUE_MAX, false);
    return e;
}

struct log_esc log_text_str(const char *s)
{
    return s != NULL ? log_text(s, strlen(s)) : log_text("", 0);
}
