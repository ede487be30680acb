/* ws.h: one connection's WebSocket session, after the handshake (RFC 6455 §5-§8).
 *
 * Owns: turning the client's bytes into whole messages and control frames: header decoding
 * (via frame.h), unmasking, reassembly of fragmented messages (§5.4), UTF-8 validation of
 * text as it arrives (§8.1), the rules for control frames (§5.5) and close frames (§5.5.1,
 * §7.4), and the --max-message limit. Also the few helpers that write server frames.
 * Does not own: sockets, timers, or what a message means (routes.c decides).
 * Pure: no I/O; the only allocation is the reassembly buffer, a struct buf with a limit.
 *
 * Sans-I/O, like wsproto: the caller feeds bytes, gets events, and writes whatever answer it
 * chooses (pong, close, relay) into its own output buffer with ws_write_*().
 */
#ifndef WSRELAY_WS_H
#define WSRELAY_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "frame.h"
#include "utf8.h"

/* Close status codes (§7.4.1) that wsrelay sends or must recognise. */
enum ws_close {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001, /* server shutting down */
    WS_CLOSE_PROTOCOL = 1002,   /* the peer broke RFC 6455 */
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,    /* never sent: "the close frame had no code" */
    WS_CLOSE_ABNORMAL = 1006,     /* never sent: "no close frame at all" */
    WS_CLOSE_INVALID_DATA = 1007, /* bad UTF-8, or (wsrelay) a /ws message that is not JSON */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Everything ws_feed() can fail with. Each maps to exactly one close code and one short
 * reason (ws_err_close_code(), ws_err_reason()). The first five are enum frame_err's. */
enum ws_err {
    WS_ERR_RSV = FRAME_ERR_RSV,           /* 1002 */
    WS_ERR_OPCODE = FRAME_ERR_OPCODE,     /* 1002 */
    WS_ERR_CONTROL = FRAME_ERR_CONTROL,   /* 1002 */
    WS_ERR_LENGTH = FRAME_ERR_LENGTH,     /* 1002 */
    WS_ERR_UNMASKED = FRAME_ERR_UNMASKED, /* 1002 */
    WS_ERR_CONTINUATION = -6,   /* continuation frame with no message started (§5.4): 1002 */
    WS_ERR_INTERLEAVED = -7,    /* new text/binary frame inside a fragmented message: 1002 */
    WS_ERR_UTF8 = -8,           /* text that is not UTF-8 (§8.1): 1007 */
    WS_ERR_TOO_BIG = -9,        /* message over max_message (§7.4.1): 1009 */
    WS_ERR_CLOSE_PAYLOAD = -10, /* close frame with a 1-byte payload (§5.5.1): 1002 */
    WS_ERR_CLOSE_CODE = -11,    /* close code not allowed on the wire (§7.4): 1002 */
    WS_ERR_CLOSE_REASON = -12,  /* close reason not UTF-8 (§5.5.1): 1007 */
    WS_ERR_NOMEM = -13,         /* out of memory while reassembling: 1011 */
};

enum ws_event_type {
    WS_EV_NONE = 0, /* bytes were consumed, nothing complete yet */
    WS_EV_TEXT,     /* a complete, valid UTF-8 text message */
    WS_EV_BINARY,   /* a complete binary message */
    WS_EV_PING,     /* answer with ws_write_frame(FRAME_OP_PONG, same payload) */
    WS_EV_PONG,
    WS_EV_CLOSE, /* a valid close frame: answer with ws_write_close() and close TCP */
};

struct ws_event {
    enum ws_event_type type;
    /* The payload (a close frame's reason, for WS_EV_CLOSE). It points either into the
     * caller's input (unmasked in place) or into the session's reassembly buffer; it lives
     * until the next ws_feed()/ws_free() on this session and until the caller consumes or
     * reserves its input buffer, whichever comes first. */
    const uint8_t *data;
    size_t len;
    uint16_t close_code; /* WS_EV_CLOSE only: the peer's code, or WS_CLOSE_NO_STATUS */
};

struct ws_session {
    size_t max_message; /* --max-message: the largest reassembled message, in bytes */

    /* The frame being read. */
    bool have_hdr; /* hdr is valid, payload_pos bytes of its payload consumed */
    struct frame_hdr hdr;
    uint64_t payload_pos;

    /* The data message being reassembled (§5.4), if any. */
    bool in_message;        /* a first fragment (FIN clear) arrived, continuation expected */
    uint8_t message_opcode; /* FRAME_OP_TEXT or FRAME_OP_BINARY */
    struct buf message;     /* payload so far; limit max_message */
    struct utf8_state utf8; /* validator state across fragments, for text */

    bool close_received; /* a close frame was returned; feed nothing more */
};

/* A fresh session that accepts messages up to max_message bytes. Allocates nothing yet. */
void ws_init(struct ws_session *s, size_t max_message);

/* Releases the reassembly buffer. */
void ws_free(struct ws_session *s);

/* Releases the reassembly buffer's storage if no message is being reassembled: for idle
 * connections, which then hold no heap memory at all. */
void ws_trim(struct ws_session *s);

/* Feeds client bytes in[0..len). in is writable: payloads are unmasked in place.
 * Processes frames up to and including the first complete event, then stops. A control
 * frame's payload (at most 125 bytes) is consumed only once it is all there: until then the
 * caller keeps those bytes and feeds them again with more.
 * Returns how many bytes it consumed (> 0) and sets *ev (ev->type may be WS_EV_NONE when it
 * only consumed a header or part of a payload); 0 if it needs more bytes before it can make
 * progress (ev->type == WS_EV_NONE); or a negative enum ws_err, after which the session is
 * dead: the caller sends ws_write_close(ws_err_close_code(err), ws_err_reason(err)) and
 * closes the connection. Typical use:
 *
 *     while ((n = ws_feed(s, buf_head(rb), buf_size(rb), &ev)) > 0) {
 *         handle(&ev);          // ev.data may point into rb: use it before consuming
 *         buf_consume(rb, n);
 *     }
 */
ssize_t ws_feed(struct ws_session *s, uint8_t *in, size_t len, struct ws_event *ev);

/* The close code and a short static reason for an enum ws_err (a negative ws_feed result). */
uint16_t ws_err_close_code(int err);
const char *ws_err_reason(int err);

/* True for codes a peer may send in a close frame (§7.4.1, §7.4.2; IANA registry):
 * 1000-1003, 1007-1011, 1012-1014, 3000-4999. False for <1000, 1004-1006, 1015, 1016-2999,
 * >= 5000. */
bool ws_close_code_valid(uint16_t code);

/* Appends one complete unmasked frame (FIN set) with payload p[0..len) to out. Returns 0,
 * or -ENOBUFS / -ENOMEM, in which case out is unchanged (never half a frame). */
int ws_write_frame(struct buf *out, enum frame_op op, const void *p, size_t len);

/* The same with a header already encoded (frame_encode_hdr), for a broadcast that encodes
 * it once for every recipient (bcast.c). Same returns: the one frame writer. */
int ws_append_frame(struct buf *out, const uint8_t *hdr, size_t hdr_len, const void *p, size_t len);

/* A close frame's payload (§5.5.1) into body: code 0 gives an empty body (the answer to a
 * close that had none); otherwise the code and the reason, cut to the 123 bytes a control
 * frame leaves for it (cut on a UTF-8 boundary). Returns its length. */
size_t ws_close_payload(uint8_t body[FRAME_CONTROL_MAX], uint16_t code, const char *reason);

/* Appends a close frame with ws_close_payload(code, reason). Same returns as
 * ws_write_frame(). */
int ws_write_close(struct buf *out, uint16_t code, const char *reason);

#endif
