/* frame.h: RFC 6455 §5.2 frame headers, and masking (§5.3).
 *
 * Owns: the wire layout of one frame header, both directions, and the XOR mask.
 * Does not own: what a sequence of frames means (fragmentation, control frames, close:
 * ws.c). Pure: no I/O, no allocation.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-------+-+-------------+-------------------------------+
 *  |F|R|R|R| opcode|M| payload len |   extended payload length     |
 *  |I|S|S|S|  (4)  |A|     (7)     |  (16 bits if len == 126, or   |
 *  |N|V|V|V|       |S|             |   64 bits if len == 127)      |
 *  | |1|2|3|       |K|             |                               |
 *  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *  |   ...extended length...       | masking key (4 bytes, if MASK)|
 *  +-------------------------------+-------------------------------+
 *  |                         payload ...                           |
 */
#ifndef WSRELAY_FRAME_H
#define WSRELAY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_HDR_MAX     14  /* 2 fixed + 8 extended length + 4 mask key */
#define FRAME_CONTROL_MAX 125 /* §5.5: control frame payloads fit the 7-bit length */

enum frame_op { /* §5.2; 0x3-0x7 and 0xB-0xF are reserved */
                FRAME_OP_CONT = 0x0,
                FRAME_OP_TEXT = 0x1,
                FRAME_OP_BINARY = 0x2,
                FRAME_OP_CLOSE = 0x8,
                FRAME_OP_PING = 0x9,
                FRAME_OP_PONG = 0xA,
};

struct frame_hdr {
    bool fin, masked;
    uint8_t rsv; /* RSV1..3 as bits 2..0; must be 0, we negotiate no extension */
    uint8_t opcode;
    uint8_t mask_key[4];
    uint64_t payload_len; /* < 2^63; check before narrowing to size_t */
};

/* Frame-level protocol errors, all answered with close 1002 (see ws.h's ws_err). The values
 * are shared with enum ws_err so a frame error can be returned from ws_feed() unchanged. */
enum frame_err {
    FRAME_ERR_RSV = -1,      /* a reserved bit set, no extension negotiated (§5.2) */
    FRAME_ERR_OPCODE = -2,   /* a reserved opcode (§5.2) */
    FRAME_ERR_CONTROL = -3,  /* control frame fragmented or over 125 bytes (§5.5) */
    FRAME_ERR_LENGTH = -4,   /* 64-bit length with the top bit set, or not minimal (§5.2) */
    FRAME_ERR_UNMASKED = -5, /* a client frame without a mask (§5.1); see frame_decode_hdr */
};

/* Decodes the header at in[0..len). Returns its size (2..14) and fills *h; 0 if more bytes
 * are needed (*h untouched); or a negative enum frame_err. Never reads past in + len.
 * Checks everything a header alone can show is wrong: RSV bits, reserved opcodes, control
 * frames with FIN clear or a length over 125, a 64-bit length with its top bit set, a length
 * not in its shortest form, and (when require_mask, as a server must, §5.1) a missing mask. */
ssize_t frame_decode_hdr(const uint8_t *in, size_t len, bool require_mask, struct frame_hdr *h);

/* Writes an unmasked (server, §5.1) frame header for a payload of payload_len bytes, using
 * the shortest length form. Writes at most FRAME_HDR_MAX bytes (10 in practice) to out and
 * returns how many. */
size_t frame_encode_hdr(uint8_t *out, bool fin, enum frame_op op, uint64_t payload_len);

/* XORs p[0..len) with the mask key in place (§5.3). `pos` is the offset of p[0] within the
 * frame's payload, so a payload can be unmasked in pieces as it arrives. */
void frame_unmask(uint8_t *p, size_t len, const uint8_t key[4], uint64_t pos);

/* True for opcodes 0x8..0xF (§5.5). */
static inline bool frame_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

#endif
