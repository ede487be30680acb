/* token.h: room tokens, JSON Web Tokens signed with HMAC-SHA-256 (issue 13).
 *
 * Owns: checking one token (RFC 7519 JWT in the JWS compact serialization, RFC 7515 §3.1,
 * §5.2; alg HS256 only, RFC 7518 §3.2) against the server's secret, the clock and the room a
 * handshake asks for; the claims it carries for the server to stamp (name, color); strict
 * base64url (RFC 4648 §5); finding "token=" in a query; and the one table from each refusal
 * to its HTTP status, its WWW-Authenticate challenge (RFC 6750 §3) and its reason.
 * Does not own: reading the secret (server.c), finding the token in a handshake or answering
 * it (routes.c), stamping (json.c, presence.c).
 * Pure: no I/O, no clock (now comes in as an argument), no logging; OpenSSL's HMAC is
 * computation. Every output lives in the caller's memory.
 *
 *     eyJhbGciOiJIUzI1NiJ9 . eyJleHAiOjE3OTk5OTk5OTksInJvb20iOiJkb2MifQ . <43 characters>
 *     base64url(header)      base64url(claims)                            base64url(HMAC)
 *     {"alg":"HS256"}        {"exp":1799999999,"room":"doc"}              of the first two
 *                                                                         segments and the dot
 *
 * The rules, strictest reading first (docs/security.md says why each one):
 *   - at most TOKEN_MAX_LEN bytes; exactly three segments; each only of the base64url
 *     alphabet, without padding, and canonical (the unused low bits of the last character
 *     are zero: RFC 4648 §3.5), so a token has exactly one spelling;
 *   - the signature is checked first, in constant time (CRYPTO_memcmp), over the first two
 *     segments as sent: nothing is parsed as JSON before it is known to come from the
 *     secret's holder;
 *   - header and claims are each one JSON object in UTF-8 (RFC 7515 §5.2 steps 3 and 8), with
 *     no member name twice (RFC 7515 §5.2 step 4, RFC 7519 §7.2 step 4) and at most
 *     TOKEN_MEMBERS_MAX members;
 *   - the header's "alg" is exactly "HS256": not "none", not "HS512", not "hs256" (the
 *     algorithm is ours to decide, never the token's: no algorithm confusion); a "crit"
 *     member is refused (RFC 7515 §4.1.11: we understand no extension); "typ", if present, is
 *     "JWT" in any case (RFC 7519 §5.1); other header members are ignored;
 *   - "exp" is required and "nbf" optional: NumericDates (RFC 7519 §2) written as integers of
 *     1 to 15 digits. A fraction, an exponent or a sign is refused (TOKEN_ERR_CLAIM), not
 *     read as a float: issuers write whole seconds, and a negative date is long past. No
 *     leeway: valid while now < exp (§4.1.4) and nbf <= now (§4.1.5); the token is checked
 *     once, at the handshake, against a clock the issuer should share through NTP;
 *   - "room" is required: the room's name exactly as the server names it ("" for the default
 *     room, "doc" for /ws/doc), or "*" for any room;
 *   - "name" is optional: 1 to TOKEN_NAME_MAX bytes of UTF-8 (RFC 3629) after decoding JSON
 *     escapes, without control characters (C0, DEL, C1) or a lone surrogate;
 *   - "color" is optional: an integer hue 0..359, the type "color" has on the wire;
 *   - every other claim (iat, sub, iss, jti...) is ignored.
 */
#ifndef WSRELAY_TOKEN_H
#define WSRELAY_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* The longest token accepted: a token with a room, a name and a few claims of the issuer's
 * own is about 250 bytes; 4 KiB leaves room for generous issuers and still fits the 8 KiB
 * request head with everything a browser sends beside it. */
#define TOKEN_MAX_LEN 4096
/* RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits. */
#define TOKEN_SECRET_MIN 32
/* The longest secret read from --token-secret-file or WSRELAY_TOKEN_SECRET: HMAC hashes a key
 * longer than its block (64 bytes) anyway, so more is never stronger, only a sign of the
 * wrong file. */
#define TOKEN_SECRET_MAX 4096
/* A name claim's bytes (after decoding escapes); the page shows at most 32 characters. */
#define TOKEN_NAME_MAX 64
/* Members of the header, and of the claims: a real token has fewer than ten. */
#define TOKEN_MEMBERS_MAX 32
/* The prefix of a room token offered as a subprotocol: "bearer.<token>". */
#define TOKEN_BEARER_PREFIX "bearer."

/* Why a token was refused; 0 is TOKEN_OK. Each has one status, challenge and reason
 * (token_err_status(), token_err_challenge(), token_err_reason()). */
enum token_err {
    TOKEN_OK = 0,
    TOKEN_ERR_MISSING = -1,   /* the handshake carries no token (routes.c) */
    TOKEN_ERR_AMBIGUOUS = -2, /* more than one: in the query and a subprotocol, or twice */
    TOKEN_ERR_TOO_LONG = -3,  /* over TOKEN_MAX_LEN */
    TOKEN_ERR_MALFORMED = -4, /* not three base64url segments of JSON objects in UTF-8 */
    TOKEN_ERR_SIGNATURE = -5, /* not the HMAC of the first two segments under our secret */
    TOKEN_ERR_ALG = -6,       /* "alg" missing or not exactly "HS256" */
    TOKEN_ERR_CRIT = -7,      /* a "crit" header member */
    TOKEN_ERR_TYP = -8,       /* "typ" present but not "JWT" */
    TOKEN_ERR_DUPLICATE = -9, /* a member name twice in the header or the claims */
    TOKEN_ERR_NO_EXP = -10,   /* no "exp" claim */
    TOKEN_ERR_NO_ROOM = -11,  /* no "room" claim */
    TOKEN_ERR_CLAIM = -12,    /* exp or nbf not an integer NumericDate, room not a string */
    TOKEN_ERR_NAME = -13,     /* "name" not a name by the rule above */
    TOKEN_ERR_COLOR = -14,    /* "color" not an integer 0..359 */
    TOKEN_ERR_EXPIRED = -15,  /* now >= exp */
    TOKEN_ERR_NOT_YET = -16,  /* now < nbf */
    TOKEN_ERR_ROOM = -17,     /* a valid token, for another room: 403, not 401 */
};

/* What a valid token says about its holder. */
struct token_claims {
    int64_t exp; /* seconds since the epoch */
    bool has_nbf;
    int64_t nbf;
    bool is_any_room; /* "room":"*" */
    /* The name claim, if has_name, as a JSON string, quotes included, NUL-terminated, with
     * only the quote and the backslash escaped: what json.c and presence.c stamp. */
    bool has_name;
    char name[JSON_NAME_MAX + 1];
    bool has_color;
    unsigned color; /* hue 0..359 */
};

/* Checks token[0..len) (any bytes) signed with secret[0..secret_len) (at least one byte; the
 * server holds TOKEN_SECRET_MIN or more), at now_s seconds since the epoch, for the room
 * room[0..room_len) ("" for the default room). Returns TOKEN_OK and fills *claims, or a
 * negative enum token_err (never TOKEN_ERR_MISSING or TOKEN_ERR_AMBIGUOUS) with *claims
 * zeroed. The checks run in the order of the enum from TOO_LONG down, so the first rule a
 * token breaks is the one reported; nothing but the signature check looks at a token whose
 * signature is wrong. */
int token_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                 int64_t now_s, const char *room, size_t room_len, struct token_claims *claims);

/* Strict base64url (RFC 4648 §5): decodes in[0..len) into out[0..cap). Only the alphabet
 * A-Z a-z 0-9 - _, no padding, no whitespace, and canonical: a length of 4k + 1 is refused,
 * and the bits the last character carries beyond the data must be zero (§3.5), so every
 * byte string has exactly one encoding. Returns the decoded length, or -1 (also when it does
 * not fit), out then holding an unspecified prefix. */
long token_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Looks for the parameter "token" in a query (the bytes after '?', RFC 3986 §3.4), split at
 * '&' into name=value pairs; names are compared exactly and nothing is percent-decoded (a
 * token is base64url and dots, which need no escaping). Returns how many there are; the
 * first's value is *value[0..*value_len) (a view into query) when there is one. */
size_t token_find_in_query(const char *query, size_t len, const char **value, size_t *value_len);

/* The answer to a refusal: 401 (RFC 9110 §15.5.2: no or bad credentials) for every reason but
 * TOKEN_ERR_ROOM, which is 403 (the token is good, for another room); 500 for what is not an
 * enum token_err. */
int token_err_status(int err);

/* The WWW-Authenticate field for it (RFC 6750 §3), a whole "Name: value\r\n" line: without an
 * error code for a missing token (§3.1: a request without credentials gets none),
 * error="insufficient_scope" for another room, error="invalid_token" for the rest. */
const char *token_err_challenge(int err);

/* A short static phrase for the body and the log ("token expired"). It never holds a byte of
 * the token, the secret or the expected signature. */
const char *token_err_reason(int err);

#endif
