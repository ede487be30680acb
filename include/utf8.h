/* utf8.h: an incremental UTF-8 validator (RFC 3629 §3-4; RFC 6455 §8.1).
 *
 * Owns: deciding whether a byte stream is well-formed UTF-8, one chunk at a time, failing at
 * the first byte that cannot start or continue a valid sequence ("fail fast": RFC 6455 §8.1
 * wants the connection failed as soon as the text is known to be invalid, even mid-frame).
 * Rejects overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points over U+10FFFF.
 * Pure: a small state machine (after Bjoern Hoehrmann's DFA), no tables outside this module.
 */
#ifndef WSRELAY_UTF8_H
#define WSRELAY_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct utf8_state {
    uint32_t state; /* 0: between code points; otherwise inside a sequence or rejected */
};

/* A state between code points. */
static inline void utf8_init(struct utf8_state *s)
{
    s->state = 0;
}

/* Feeds p[0..len). Returns false as soon as the input so far cannot be the start of valid
 * UTF-8 (the state then stays rejected); true otherwise, even if a sequence is still open. */
bool utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len);

/* True if everything fed so far is valid and ends on a code point boundary: what a complete
 * text message must satisfy. */
bool utf8_is_complete(const struct utf8_state *s);

/* One-shot check of a whole buffer. */
bool utf8_valid(const uint8_t *p, size_t len);

#endif
