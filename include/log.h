/* log.h: one line per event on stderr.
 *
 * Owns: the line format and the level filter (--quiet). The level is the only mutable
 * global in wsrelay besides what main() owns.
 * Does not own: deciding what to log. Pure modules never log; the edge logs with context.
 *
 * A line looks like
 *     2026-11-25T10:22:07.481Z warn conn=17 peer=127.0.0.1:50412 close=1002 "unmasked frame"
 * time (UTC, milliseconds), level, key=value context, a human phrase in quotes: easy for
 * people to read and for grep/awk to cut.
 */
#ifndef WSRELAY_LOG_H
#define WSRELAY_LOG_H

#include <stddef.h>

enum log_level { LL_DEBUG, LL_INFO, LL_WARN, LL_ERROR };

/* Lines below this level are dropped. Default LL_INFO; --quiet sets LL_ERROR. */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* Writes one line: timestamp, level name, then the formatted text, then '\n', with one
 * write(2) so lines from one process never interleave. Lines are cut at LOG_LINE_MAX bytes.
 * Simplification: the write is blocking; a daemon that must never stall on a full stderr
 * pipe would hand lines to a logging thread or drop them. */
void log_at(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_LINE_MAX 1024

/* Copies at most max bytes of untrusted text p[0..len) into out[0..out_len) as printable
 * ASCII: quotes, backslashes and bytes outside 0x20..0x7e become \xHH, and a cut is marked
 * with "...". Always NUL-terminates. For logging what a peer sent. */
void log_escape(char *out, size_t out_len, const void *p, size_t len, size_t max);

#endif
