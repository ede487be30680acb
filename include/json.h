/* json.h: checking and rewriting a client's cursor message on /ws.
 *
 * Owns: the one place that tokenizes JSON (with jsmn, built strict), the exact grammar check
 * jsmn alone does not do (RFC 8259), and the rewrite the relay needs: set "sender" and
 * "color" to the server's values and keep every other member byte-for-byte.
 * Does not own: building the server's own messages (presence.c writes those directly).
 * Pure: no I/O, no allocation beyond the caller's struct buf; the token array is on the stack.
 */
#ifndef WSRELAY_JSON_H
#define WSRELAY_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* A message with more JSON tokens than this (every key, value, object and array counts one)
 * is refused: a cursor message has about ten. The token array lives on the stack. */
#define JSON_MAX_TOKENS 512

/* The longest name json_rewrite_named() stamps, as JSON text with its quotes: a room
 * token's name claim (token.h: at most 64 bytes, of which only the quote and the backslash need
 * escaping,
 * so at most 130) fits. */
#define JSON_NAME_MAX 136

/* The most json_rewrite() adds to its input: the server's members for a 36-character id and
 * a three-digit hue, ,"sender":"<id>","color":359 (60 bytes), rounded up to 64, plus a
 * stamped ,"name":<name> (8 + JSON_NAME_MAX). A relayed message is at most --max-message
 * plus this. */
#define JSON_REWRITE_GROWTH (64 + 8 + JSON_NAME_MAX)

enum json_err {
    JSON_ERR_SYNTAX = -1,      /* not JSON (RFC 8259): close 1007 */
    JSON_ERR_NOT_OBJECT = -2,  /* valid JSON, but not one object: close 1007 */
    JSON_ERR_TOO_COMPLEX = -3, /* over JSON_MAX_TOKENS: close 1009 */
    JSON_ERR_RESERVED = -4,    /* a top-level "type" naming a server message: close 1008 */
    JSON_ERR_NOMEM = -5,       /* out could not grow (-ENOBUFS/-ENOMEM from buf) */
};

/* Validates in[0..len) as exactly one JSON object (whitespace around it allowed) and appends
 * to out the object with its "sender" and "color" members replaced:
 *
 *     {"x":10, "y":2.50,"color":"red","sender":7}  ->
 * {"x":10,"y":2.50,"sender":"<id>","color":<hue>}
 *
 * Every other top-level member is kept in order, its key and value copied byte-for-byte
 * (numbers are not reformatted, escapes are not decoded, nested values are copied whole);
 * only whitespace between top-level tokens is dropped. "sender" and "color" members the
 * client sent are removed wherever they stand (keys are compared after decoding escapes, so
 * "send\u0065r" counts), and the server's two are appended last. sender is copied as a JSON
 * string (the caller guarantees it needs no escaping: a UUID).
 * A top-level "type" whose string value is one the server sends ("welcome", "join", "leave",
 * "count", "error") is JSON_ERR_RESERVED, so no client can forge a server message.
 * The output has at most JSON_MAX_TOKENS tokens too (else JSON_ERR_TOO_COMPLEX): it is
 * itself a valid input, and rewriting it again gives the same bytes, which is how another
 * node checks a relayed message (room.c's check_remote) without changing it.
 * Returns 0, or a negative enum json_err; on error out is unchanged. */
int json_rewrite(const uint8_t *in, size_t len, const char *sender, unsigned color,
                 struct buf *out);

/* json_rewrite() for a client whose room token names it (token.h): name is a JSON string,
 * quotes included, at most JSON_NAME_MAX bytes, that needs no checking (token_verify() made
 * it). Every top-level "name" member the client sent is removed too, and the server's
 * "name" goes just before "sender" and "color":
 *
 *     {"x":1,"name":"Mallory"}  ->  {"x":1,"name":"Alice","sender":"<id>","color":<hue>}
 *
 * Before them, not after, so that a node that knows no name for the client (another node
 * of a cluster, which rewrites with json_rewrite()) keeps it as one of the client's members
 * and gives back the same bytes. name == NULL is json_rewrite(). Same returns. */
int json_rewrite_named(const uint8_t *in, size_t len, const char *sender, unsigned color,
                       const char *name, struct buf *out);

/* ---- Reading a small object: the claims of a room token (token.c) ------------------------ */

enum json_kind {
    JSON_KIND_STRING = 1, /* value: the bytes between the quotes, escapes not decoded */
    JSON_KIND_NUMBER,     /* value: the number's text (RFC 8259 §6 grammar, checked) */
    JSON_KIND_LITERAL,    /* true, false or null */
    JSON_KIND_OBJECT,     /* value: the whole span, braces included */
    JSON_KIND_ARRAY,      /* value: the whole span, brackets included */
};

/* One top-level member of an object: views into the caller's input. */
struct json_member {
    const uint8_t *key; /* the bytes between the key's quotes, escapes not decoded */
    size_t key_len;
    enum json_kind kind;
    const uint8_t *value;
    size_t value_len;
};

/* Checks in[0..len) as json_check_object() does and lists its top-level members, in order,
 * into out[0..cap) (nested values are one member each, not listed inside). Returns how many
 * (0 for {}), or a negative enum json_err: JSON_ERR_TOO_COMPLEX for more than cap members
 * (or JSON_MAX_TOKENS tokens). out's views live as long as in. Duplicate keys are listed as
 * they come: RFC 8259 §4 leaves them to the reader, and the reader decides. */
int json_members(const uint8_t *in, size_t len, struct json_member *out, size_t cap);

/* Decodes a string's body (a JSON_KIND_STRING value or a key, as json_members() gives it)
 * into out[0..cap): escapes become the bytes they stand for, a surrogate pair its character
 * in UTF-8. Returns the decoded length, or SIZE_MAX if it does not fit or holds a "\u"
 * escape of a lone surrogate (RFC 8259 §8.2: no character at all, so no string we accept).
 * Raw bytes are copied as they are: the caller checks UTF-8 if it cares. */
size_t json_string_decode(const uint8_t *body, size_t len, uint8_t *out, size_t cap);

/* Only the check: in[0..len) is exactly one JSON object (RFC 8259) of at most
 * JSON_MAX_TOKENS tokens. Returns 0 or a negative enum json_err. cluster_decode() uses it
 * to refuse envelopes that are not ours; the messages it accepts are then checked and
 * rewritten like a local client's (json_rewrite). */
int json_check_object(const uint8_t *in, size_t len);

/* The close code (1007, 1008, 1009 or 1011) and a short static reason for an enum json_err. */
uint16_t json_err_close_code(int err);
const char *json_err_reason(int err);

#endif
