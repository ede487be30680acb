/* log.h: one line per event on stderr.
 *
 * Owns: the line format, the level filter (--quiet, --verbose) and escaping what is not ours. The
 * level is the only mutable global in wsrelay besides what main() owns. Does not own: deciding what
 * to log. Pure modules never log; the edge logs with context.
 *
 * A line looks like
 *     2026-11-25T10:22:07.481Z warn conn=17 peer=127.0.0.1:50412 close=1002 "unmasked frame"
 * time (UTC, milliseconds), level, key=value context, a human phrase in quotes: easy for
 * people to read and for grep/awk to cut. With --log-format json the same line is written as
 *     {"time":"2026-11-25T10:22:07.481Z","level":"warn","conn":17,"peer":"127.0.0.1:50412",
 *      "close":1002,"event":"unmasked frame"}
 * (logjson.h says how): one object per line, the same fields, for a log shipper. Either way
 * nothing secret is in a line: call sites never format a token, a password or a query.
 */
#ifndef WSRELAY_LOG_H
#define WSRELAY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LL_DEBUG, LL_INFO, LL_WARN, LL_ERROR };

/* Lines below this level are dropped. Default LL_INFO; --quiet sets LL_ERROR, --verbose
 * LL_DEBUG. */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* --log-format json: every line after this is one JSON object (logjson.h). Default: text. */
void log_set_json(bool on);

/* Writes one line: timestamp, level name, then the formatted text, then '\n', with one
 * write(2) so lines from one process never interleave. Lines are cut at LOG_LINE_MAX bytes.
 * Simplification: the write is blocking; a daemon that must never stall on a full stderr
 * pipe would hand lines to a logging thread or drop them. */
void log_at(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_LINE_MAX 1024

/* Copies at most max bytes of untrusted text p[0..len) into out[0..out_len) as printable
 * ASCII: quotes, backslashes and bytes outside 0x20..0x7e become \xHH, and a cut is marked
 * with "...". Always NUL-terminates. For text inside the line's quoted phrase. */
void log_escape(char *out, size_t out_len, const void *p, size_t len, size_t max);

/* Bytes that are not entirely ours (a decoded path, a header, a Redis reply, a flag value),
 * made safe for one log line. Returned by value: the array lives until the end of the full
 * expression that called the function (C11 §6.2.4), which is the log_at() call:
 *
 *     log_at(LL_DEBUG, "conn=%llu file=%s \"file served\"", serial, log_value_str(rel).s);
 *
 * At most LOG_VALUE_MAX bytes of the original are shown; a longer one is cut, "..." marking
 * the cut. */
#define LOG_VALUE_MAX  128
#define LOG_VALUE_SIZE (LOG_VALUE_MAX * 4 + 6) /* every byte as \xHH, two quotes, "...", NUL */

struct log_esc {
    char s[LOG_VALUE_SIZE];
};

/* For the value of a key=value field: one token that no reader can take for two fields, nor
 * for the phrase. Bytes outside 0x20..0x7e, '"', '\\' and '=' become \xHH; a value that holds
 * a space, or is empty, is put in double quotes (the phrase is quoted the same way). So the
 * decoded path `a b" status=200 x` is logged as file="a b\x22 status\x3d200 x": a logfmt
 * parser sees one field, and grep for status=200 does not match it. NULL is logged as "". */
struct log_esc log_value(const void *p, size_t len);
struct log_esc log_value_str(const char *s);

/* For text inside the quoted phrase (a reason Redis or hiredis gave): log_escape(), spaces
 * and '=' kept, so it reads as words but cannot close the phrase or start a line. NULL: "". */
struct log_esc log_text(const void *p, size_t len);
struct log_esc log_text_str(const char *s);

#endif
