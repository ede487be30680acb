/* ws.c: one connection's WebSocket session after the handshake (RFC 6455 §5-§8).
 *
 * Owns: the frame sequence a client sends: unmasking (§5.3), reassembly of fragmented
 * messages (§5.4), control frames and where they may appear (§5.5), close frames (§5.5.1,
 * §7.4), UTF-8 validation of text as it arrives (§8.1), the --max-message limit (§7.4.1
 * code 1009), and the one table that maps every error to its close code and reason.
 * Does not own: the header's bit layout (frame.c), the UTF-8 state machine (utf8.c),
 * sockets, timers, logging, or what a message means (routes.c).
 * Pure: no I/O; the only allocation is the reassembly buffer, through buf.h.
 *
 * Bytes in, events out (wsproto's sans-I/O shape): ws_feed() consumes what it can and
 * returns at the first complete event, so the caller acts on one event at a time.
 */
#include "ws.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Errors: the one table
 * ------------------------------------------------------------------------------------- */

/* Every ws_feed() failure and the close frame that answers it (§7.4.1): 1002 for broken
 * framing, 1007 for bad UTF-8 (§8.1), 1009 for an oversized message, 1011 for our own
 * trouble. The reasons are static English, short enough for a close frame (123 bytes). */
static const struct {
    uint16_t code;
    const char *reason;
} err_table[] = {
    [-WS_ERR_RSV] = {WS_CLOSE_PROTOCOL, "reserved bits set"},
    [-WS_ERR_OPCODE] = {WS_CLOSE_PROTOCOL, "reserved opcode"},
    [-WS_ERR_CONTROL] = {WS_CLOSE_PROTOCOL, "bad control frame"},
    [-WS_ERR_LENGTH] = {WS_CLOSE_PROTOCOL, "bad payload length"},
    [-WS_ERR_UNMASKED] = {WS_CLOSE_PROTOCOL, "unmasked frame"},
    [-WS_ERR_CONTINUATION] = {WS_CLOSE_PROTOCOL, "continuation without a message"},
    [-WS_ERR_INTERLEAVED] = {WS_CLOSE_PROTOCOL, "new message inside a fragmented one"},
    [-WS_ERR_UTF8] = {WS_CLOSE_INVALID_DATA, "invalid UTF-8"},
    [-WS_ERR_TOO_BIG] = {WS_CLOSE_TOO_BIG, "message too big"},
    [-WS_ERR_CLOSE_PAYLOAD] = {WS_CLOSE_PROTOCOL, "bad close frame"},
    [-WS_ERR_CLOSE_CODE] = {WS_CLOSE_PROTOCOL, "invalid close code"},
    [-WS_ERR_CLOSE_REASON] = {WS_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason"},
    [-WS_ERR_NOMEM] = {WS_CLOSE_INTERNAL, "out of memory"},
};

#define ERR_TABLE_LEN (sizeof err_table / sizeof err_table[0])

/* A value that is no enum ws_err is our bug, not the peer's: answer 1011 rather than crash. */
static bool err_known(int err)
{
    return err < 0 && err > -(int)ERR_TABLE_LEN && err_table[-err].reason != NULL;
}

uint16_t ws_err_close_code(int err)
{
    return err_known(err) ? err_table[-err].code : WS_CLOSE_INTERNAL;
}

const char *ws_err_reason(int err)
{
    return err_known(err) ? err_table[-err].reason : "internal error";
}

/* §7.4.1 defines 1000-1011 (1004 reserved; 1005 and 1006 mean "no code" and "no close
 * frame" and must never be sent); the IANA registry (§11.7) has since added 1012-1014
 * (service restart, try again later, bad gateway), which a peer may send; 1015 (TLS failure)
 * is like 1005 and 1006, never on the wire. §7.4.2: 0-999 are unused, 1000-2999 belong to
 * the RFC and its extensions (so anything unregistered there is invalid), 3000-3999 to
 * registered libraries and 4000-4999 to private use, both fine to receive. */
bool ws_close_code_valid(uint16_t code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    if (code < 1000 || code > 1014)
        return false;
    return code != 1004 && code != 1005 && code != 1006;
}

/* ---------------------------------------------------------------------------------------
 * The session
 *
 * The state is two flags of struct ws_session plus close_received. Across frames
 * (in_message):
 *
 *                  TEXT/BINARY, FIN clear                CONT, FIN clear
 *    +-----------+ ---------------------> +------------+ -----+
 *    |   IDLE    |                        | IN_MESSAGE |      | (append, keep going)
 *    |           | <--------------------- |            | <----+
 *    +-----------+   CONT, FIN set:       +------------+
 *      |   ^   |     deliver TEXT/BINARY    |        ^
 *      |   |   |                            |        | PING/PONG/CLOSE between fragments
 *      |   |   |                            +--------+ (§5.4): delivered, message untouched
 *      |   +---+ TEXT/BINARY, FIN set: deliver;  PING/PONG: deliver
 *      |
 *      | valid CLOSE (from either state)    Errors from any state: the session is dead.
 *      v                                    In IDLE, CONT -> WS_ERR_CONTINUATION;
 *    +--------+                             in IN_MESSAGE, TEXT/BINARY -> WS_ERR_INTERLEAVED.
 *    | CLOSED |  ws_feed() consumes nothing more and returns 0 (§5.5.1: after a close
 *    +--------+  frame, nothing the peer sends means anything).
 *
 * Within each frame (have_hdr), whatever the state above:
 *
 *    +--------+  whole header (2..14 bytes) in,    +---------+  payload_pos ==
 *    | HEADER | ---------------------------------> | PAYLOAD | --payload_len--> frame done
 *    +--------+  checks pass: have_hdr = true      +---------+  have_hdr = false
 *        ^       (too little: return, consume 0)     |    ^
 *        |                                           +----+ a piece arrives: unmask it,
 *        +------- next frame -------------------------      validate it, keep it
 *
 * Where payload bytes go:
 *   - TEXT/BINARY with FIN set whose whole payload is in `in` at once: unmasked in place and
 *     returned as a view into `in` (the fast path: no copy, no allocation).
 *   - Other data frames: each piece is unmasked in place, UTF-8-checked if text, and
 *     appended to s->message (limit max_message), then consumed.
 *   - Control frames (at most 125 bytes): left in `in` until the whole payload is there,
 *     then unmasked in place and returned as a view (no copy, and no 125-byte array in
 *     every session: the caller keeps the few unconsumed bytes).
 *
 * The reassembly buffer after a delivery. The event's data may point into s->message, and
 * must stay valid until the next ws_feed(); so the buffer is emptied (and shrunk back to
 * FREE_ABOVE bytes, so one big message does not pin memory) at the start of the next call,
 * whenever no frame or message is in progress. That is also the only time a new message can
 * start, so each message begins with an empty buffer.
 * ------------------------------------------------------------------------------------- */

/* Keep at most this much reassembly storage between messages: cursor messages are tiny,
 * so 4 KiB covers every ordinary one without a realloc, while a 1 MiB upload is released. */
enum { FREE_ABOVE = 4096 };

void ws_init(struct ws_session *s, size_t max_message)
{
    memset(s, 0, sizeof *s);
    s->max_message = max_message;
    /* A struct buf holds at most BUF_LIMIT_MAX (4 GiB) bytes; config.h caps --max-message
     * far below, so the clamp only matters to callers that want "no limit". */
    buf_init(&s->message, max_message < BUF_LIMIT_MAX ? max_message : BUF_LIMIT_MAX);
    utf8_init(&s->utf8);
}

void ws_free(struct ws_session *s)
{
    buf_free(&s->message);
}

void ws_trim(struct ws_session *s)
{
    if (!s->have_hdr && !s->in_message) {
        buf_reset(&s->message);
        buf_free(&s->message);
    }
}

/* Fills *ev. data is never NULL: an empty payload points at a static empty string, so a
 * caller may hand (data, len) to memcpy or ws_write_frame without a special case. */
static void set_event(struct ws_event *ev, enum ws_event_type type, const uint8_t *p, size_t len)
{
    ev->type = type;
    ev->data = len > 0 ? p : (const uint8_t *)"";
    ev->len = len;
}

/* Decodes the next frame header and applies the rules that need the session's state:
 * where continuation frames may appear (§5.4) and the message size limit. Returns the
 * header size, 0 if incomplete, or a negative enum ws_err; only on success does the
 * session change. The sequence and size checks wait for the whole header (at most 14
 * bytes): the header is never worth buffering less of, and the payload has not begun. */
static ssize_t start_frame(struct ws_session *s, const uint8_t *in, size_t len)
{
    struct frame_hdr h;
    ssize_t n = frame_decode_hdr(in, len, true, &h);
    if (n <= 0)
        return n;

    if (!frame_is_control(h.opcode)) {
        /* §5.4: a fragmented message is one TEXT/BINARY frame with FIN clear, then
         * CONT frames, the last with FIN set. Only control frames may come in between. */
        if (h.opcode == FRAME_OP_CONT && !s->in_message)
            return WS_ERR_CONTINUATION;
        if (h.opcode != FRAME_OP_CONT && s->in_message)
            return WS_ERR_INTERLEAVED;
        /* Fail fast on size: the header tells the whole frame's length before any of its
         * payload arrives, so a 2 GiB frame is refused after 10 bytes, not 2 GiB. */
        if (h.payload_len > s->max_message - buf_size(&s->message))
            return WS_ERR_TOO_BIG;
        if (h.opcode != FRAME_OP_CONT) {
            assert(buf_size(&s->message) == 0); /* emptied at the start of this call */
            s->message_opcode = h.opcode;
            utf8_init(&s->utf8);
            s->in_message = !h.fin;
        }
    }
    s->hdr = h;
    s->have_hdr = true;
    s->payload_pos = 0;
    return n;
}

/* A whole close frame's payload p[0..len) (§5.5.1): empty, or a 2-byte big-endian code
 * then a UTF-8 reason. A 1-byte body cannot hold a code, so it is malformed. */
static int close_event(struct ws_session *s, const uint8_t *p, size_t len, struct ws_event *ev)
{
    if (len == 0) {
        set_event(ev, WS_EV_CLOSE, p, 0);
        ev->close_code = WS_CLOSE_NO_STATUS; /* §7.1.5: "no status code was present" */
        s->close_received = true;
        return 0;
    }
    if (len == 1)
        return WS_ERR_CLOSE_PAYLOAD;
    uint16_t code = (uint16_t)((p[0] << 8) | p[1]);
    if (!ws_close_code_valid(code))
        return WS_ERR_CLOSE_CODE;
    /* Simplification: the reason is checked once the close frame is whole, not byte by
     * byte: it is at most 123 bytes, so failing faster would save nothing. */
    if (!utf8_valid(p + 2, len - 2))
        return WS_ERR_CLOSE_REASON;
    set_event(ev, WS_EV_CLOSE, p + 2, len - 2);
    ev->close_code = code;
    s->close_received = true;
    return 0;
}

/* A whole, unmasked control frame payload p[0..len): turn it into an event. */
static int control_event(struct ws_session *s, const uint8_t *p, size_t len, struct ws_event *ev)
{
    switch (s->hdr.opcode) {
    case FRAME_OP_PING:
        set_event(ev, WS_EV_PING, p, len);
        return 0;
    case FRAME_OP_PONG:
        set_event(ev, WS_EV_PONG, p, len); /* §5.5.3: unsolicited is fine */
        return 0;
    case FRAME_OP_CLOSE:
        return close_event(s, p, len, ev);
    default:
        return WS_ERR_OPCODE; /* unreachable: frame_decode_hdr rejects reserved opcodes */
    }
}

/* What ws.h leaves open, decided here (and tested in test_ws.c):
 *   - ev->data is never NULL, even for an empty payload.
 *   - Consume exactly the count returned, also when ev->type is WS_EV_NONE: those bytes may
 *     already be unmasked in place, so feeding them again would read garbage.
 *   - len 0 (in may then be NULL) returns 0; like every call, it first releases the last
 *     delivered message's storage if no message is in progress.
 *   - After WS_EV_CLOSE, every call returns 0 and consumes nothing (close_received).
 *   - After an error the session is dead: calls stay memory-safe but mean nothing.
 *   - Errors for one header come in this order: frame_decode_hdr()'s (see frame.c), then
 *     the fragmentation rules, then the size limit; a payload's UTF-8 error comes with the
 *     first bad byte; a close frame's checks (length, code, reason) when it is whole. */
ssize_t ws_feed(struct ws_session *s, uint8_t *in, size_t len, struct ws_event *ev)
{
    *ev = (struct ws_event){.type = WS_EV_NONE};

    /* Between messages: let go of the last delivered message (see the chapter comment). */
    if (!s->have_hdr && !s->in_message) {
        buf_reset(&s->message);
        buf_shrink(&s->message, FREE_ABOVE);
    }
    if (s->close_received || len == 0)
        return 0;

    size_t used = 0;
    for (;;) {
        if (!s->have_hdr) {
            ssize_t n = start_frame(s, in + used, len - used);
            if (n < 0)
                return n;
            if (n == 0)
                return (ssize_t)used; /* 0 if nothing at all was consumed */
            used += (size_t)n;
        }

        const struct frame_hdr *h = &s->hdr;
        uint64_t left = h->payload_len - s->payload_pos;
        size_t n = left < len - used ? (size_t)left : len - used;
        uint8_t *p = in + used;

        if (frame_is_control(h->opcode)) {
            /* §5.5: at most 125 bytes. Consume none of it until all of it is here (the
             * caller keeps them), then unmask it where it lies. */
            if (n < left)
                return (ssize_t)used;
            frame_unmask(p, n, h->mask_key, 0);
            used += n;
            s->have_hdr = false;
            int rc = control_event(s, p, n, ev);
            return rc < 0 ? rc : (ssize_t)used;
        }

        bool is_text = s->message_opcode == FRAME_OP_TEXT;

        /* The fast path: a whole unfragmented message is here. Unmask it where it lies and
         * hand out a view of it; text is validated in one pass. */
        if (h->fin && h->opcode != FRAME_OP_CONT && s->payload_pos == 0 && n == left) {
            frame_unmask(p, n, h->mask_key, 0);
            if (is_text && !utf8_valid(p, n))
                return WS_ERR_UTF8;
            s->have_hdr = false;
            used += n;
            set_event(ev, is_text ? WS_EV_TEXT : WS_EV_BINARY, p, n);
            return (ssize_t)used;
        }

        /* A piece of a longer payload, or a fragment: unmask and check it now (§8.1 fail
         * fast: a bad byte ends the connection before the rest of the frame is read), then
         * keep it. The size was checked against the whole frame at its header. */
        frame_unmask(p, n, h->mask_key, s->payload_pos);
        if (is_text && !utf8_feed(&s->utf8, p, n))
            return WS_ERR_UTF8;
        int rc = buf_append(&s->message, p, n);
        if (rc != 0)
            return rc == -ENOMEM ? WS_ERR_NOMEM : WS_ERR_TOO_BIG;
        s->payload_pos += n;
        used += n;
        if (s->payload_pos < h->payload_len)
            return (ssize_t)used;

        s->have_hdr = false;
        if (!h->fin)
            continue; /* a fragment ended; the next frame may already be here */

        /* The final fragment: a text message must end on a code point boundary (§8.1), or
         * its last sequence was truncated. */
        if (is_text && !utf8_is_complete(&s->utf8))
            return WS_ERR_UTF8;
        s->in_message = false;
        set_event(ev, is_text ? WS_EV_TEXT : WS_EV_BINARY, buf_head(&s->message),
                  buf_size(&s->message));
        return (ssize_t)used;
    }
}

/* ---------------------------------------------------------------------------------------
 * Writing server frames
 * ------------------------------------------------------------------------------------- */

int ws_append_frame(struct buf *out, const uint8_t *hdr, size_t hdr_len, const void *p, size_t len)
{
    /* Reserve header and payload together, so a full buffer gets no half frame: a peer
     * that received a header without its payload would misread the rest of the stream. */
    if (len > buf_room(out) || hdr_len > buf_room(out) - len)
        return -ENOBUFS;
    uint8_t *dst = buf_reserve(out, hdr_len + len);
    if (dst == NULL)
        return -ENOMEM; /* the limit was checked above: this is realloc failing */
    memcpy(dst, hdr, hdr_len);
    if (len > 0)
        memcpy(dst + hdr_len, p, len);
    buf_commit(out, hdr_len + len);
    return 0;
}

int ws_write_frame(struct buf *out, enum frame_op op, const void *p, size_t len)
{
    /* §5.5: control frames carry at most 125 bytes; a longer one would be our bug. */
    assert(!frame_is_control((uint8_t)op) || len <= FRAME_CONTROL_MAX);

    uint8_t hdr[FRAME_HDR_MAX];
    size_t hdr_len = frame_encode_hdr(hdr, true, op, len);
    return ws_append_frame(out, hdr, hdr_len, p, len);
}

size_t ws_close_payload(uint8_t body[FRAME_CONTROL_MAX], uint16_t code, const char *reason)
{
    if (code == 0)
        return 0;
    /* §5.5.1: a 2-byte big-endian code, then a reason in the 123 bytes left. */
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    size_t room = FRAME_CONTROL_MAX - 2;
    size_t r = 0;
    while (reason != NULL && r <= room && reason[r] != '\0')
        r++; /* strlen, but stops one past the room: all we need to know */
    if (r > room) {
        /* Cut on a code point boundary: if the first dropped byte is a continuation byte
         * (10xxxxxx), its sequence started inside the kept part; drop it whole. */
        r = room;
        while (r > 0 && ((uint8_t)reason[r] & 0xC0) == 0x80)
            r--;
    }
    if (r > 0)
        memcpy(body + 2, reason, r);
    return 2 + r;
}

int ws_write_close(struct buf *out, uint16_t code, const char *reason)
{
    uint8_t body[FRAME_CONTROL_MAX];
    return ws_write_frame(out, FRAME_OP_CLOSE, body, ws_close_payload(body, code, reason));
}
