/* upgrade.h: the server side of the WebSocket opening handshake (RFC 6455 §4.2).
 *
 * Owns: deciding whether a parsed HTTP request is a valid WebSocket upgrade (§4.2.1) and
 * computing Sec-WebSocket-Accept (§4.2.2 step 5.4) with OpenSSL's SHA-1 and base64.
 * Does not own: routing (which paths upgrade: routes.c, target.c) or writing the response (http.c).
 * Pure: computation only (OpenSSL here is a hash function, not I/O).
 */
#ifndef WSRELAY_UPGRADE_H
#define WSRELAY_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* base64 of a 20-byte SHA-1 digest: 28 characters. */
#define UPGRADE_ACCEPT_LEN 28

enum upgrade_err {
    UPGRADE_ERR_METHOD = -1,  /* not GET (§4.2.1 item 1): 405 */
    UPGRADE_ERR_HEADERS = -2, /* Upgrade / Connection fields missing or wrong: 400 */
    UPGRADE_ERR_VERSION = -3, /* Sec-WebSocket-Version absent or not 13: 426 (§4.2.2) */
    UPGRADE_ERR_KEY = -4,     /* Sec-WebSocket-Key absent, repeated, or not 16 bytes: 400 */
    UPGRADE_ERR_HTTP = -5,    /* not HTTP/1.1, or the request carries a body: 400 */
};

/* Checks req against RFC 6455 §4.2.1: GET, HTTP/1.1, "Upgrade: websocket" (case-insensitive),
 * "Connection" holding the "upgrade" token (comma lists allowed), "Sec-WebSocket-Version: 13",
 * exactly one "Sec-WebSocket-Key" that base64-decodes to 16 bytes, no Content-Length > 0 and
 * no Transfer-Encoding. On success writes the Sec-WebSocket-Accept value, NUL-terminated,
 * into accept[] and returns 0; otherwise returns a negative enum upgrade_err. */
int upgrade_check(const struct http_request *req, char accept[UPGRADE_ACCEPT_LEN + 1]);

/* RFC 6455 §10.2: may a handshake with this Origin open a WebSocket? Browsers send Origin
 * with every handshake; a page on another site opening a WebSocket to us with the visitor's
 * cookies (cross-site WebSocket hijacking) is refused by checking it. Clients that send no
 * Origin (programs, not browsers) are not affected: true.
 *   allow == "*":  any Origin, whatever its scheme;
 *   otherwise the Origin's scheme must be http or https (RFC 6454 §4; case-insensitive), and
 *   allow == NULL: the Origin's authority (after "scheme://") must equal the Host field,
 *                  case-insensitively: the page and the WebSocket come from the same server
 *                  (which DNS rebinding defeats: docs/security.md);
 *   otherwise:     allow is a comma-separated list of exact origins ("https://a.example"),
 *                  compared case-insensitively.
 * Two Origin fields, and the opaque "null" origin (unless allow is "*"), are refused. Answer
 * false with 403 (RFC 6455 §4.2.2 step 4 leaves the status to us; 403 says "not you"). */
bool upgrade_origin_allowed(const struct http_request *req, const char *allow);

/* RFC 6455 §4.1, §11.3.4: does the handshake offer this subprotocol? Sec-WebSocket-Protocol
 * is a comma-separated list and may come as several fields (one list); names are compared
 * exactly. Choosing among the offers, and echoing the choice, is the caller's. */
bool upgrade_offers_protocol(const struct http_request *req, const char *name);

/* How many offered subprotocols start with prefix (exactly, case-sensitive), across every
 * Sec-WebSocket-Protocol field; *rest is set to what follows the prefix in the first one
 * (a view into req) when there is one. A room token travels this way as "bearer.<token>"
 * beside a real protocol name (routes.c): the one header a browser's WebSocket API lets a
 * page set. */
size_t upgrade_protocol_with_prefix(const struct http_request *req, const char *prefix,
                                    struct http_view *rest);

/* The status to answer an enum upgrade_err with (405, 400 or 426). */
int upgrade_err_status(int err);

/* Sec-WebSocket-Accept for a key (§4.2.2: base64(SHA-1(key + the GUID))), NUL-terminated.
 * §1.3's example: "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
void upgrade_accept_key(const char *key, size_t key_len, char accept[UPGRADE_ACCEPT_LEN + 1]);

#endif
