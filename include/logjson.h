/* logjson.h: one log line's text form -> the same line as one JSON object (--log-format json).
 *
 * Owns: reading the body log_at() formatted (key=value fields, then the quoted phrase, the
 * grammar log.h describes) and writing it as RFC 8259 JSON. Does not own: the fields (every
 * call site chooses them, and both formats show exactly those) nor writing the line (log.c).
 * Pure: no I/O, no allocation; any bytes in give one valid JSON object out, so a caller's
 * mistake (a peer's bytes formatted unescaped) can spoil a value but never the line.
 *
 *     2026-11-25T10:22:07.481Z warn conn=17 peer=127.0.0.1:50412 close=1002 "unmasked frame"
 * becomes
 *     {"time":"2026-11-25T10:22:07.481Z","level":"warn","conn":17,"peer":"127.0.0.1:50412",
 *      "close":1002,"event":"unmasked frame"}
 * (one line). Rules:
 *   - keys are the text's keys; the phrase is "event"; time and level come first;
 *   - a bare value of 1 to 15 digits without a leading zero is a number (15: every such
 *     number is exact in a double, which is what most JSON readers use); any other is a
 *     string, its double quotes (for a value with a space) dropped;
 *   - log.c's \xHH escapes are decoded, then the bytes are JSON-escaped: '"' and '\' with a
 *     backslash, control bytes and DEL as \u00XX, valid UTF-8 kept, each byte of invalid
 *     UTF-8 replaced by \ufffd. So a value reads as what the peer sent, and cannot end the
 *     string, the object or the line;
 *   - where the body leaves the grammar (no '=' where a key should be, an unclosed quote),
 *     the rest of it, as it stands, is the event.
 */
#ifndef WSRELAY_LOGJSON_H
#define WSRELAY_LOGJSON_H

#include <stddef.h>

/* Room enough for any body of body_len bytes: each byte grows to at most 6 ("\u00XX"), plus
 * the time, the level and the punctuation. */
#define LOGJSON_SIZE(body_len) (6 * (body_len) + 160)

/* Writes {"time":time,"level":level,...fields of body...,"event":...} and a '\n' to out.
 * time and level are ours (NUL-terminated, plain ASCII); body[0..body_len) may be any bytes.
 * Returns the length written (no NUL is added), or 0 if out_len is below
 * LOGJSON_SIZE(body_len + strlen(time) + strlen(level)), out then undefined. */
size_t logjson_line(char *out, size_t out_len, const char *time, const char *level,
                    const char *body, size_t body_len);

#endif
