/* frame.c: RFC 6455 §5.2 frame headers (decode and encode) and §5.3 masking.
 *
 * Owns: the bytes of one frame header and the XOR mask over a payload.
 * Does not own: what frames mean together (fragmentation §5.4, control frames between
 * fragments, the close handshake §7: ws.c), nor payload bytes beyond unmasking them.
 * Pure: no I/O, no allocation, no state between calls.
 *
 * Order of the header checks (fail fast). A header is at most 14 bytes, but most mistakes
 * show in its first one or two, so frame_decode_hdr() reports an error as soon as the bytes
 * that prove it have arrived, without waiting for the rest of the header:
 *
 *   byte 0     1. RSV1..3 set                          FRAME_ERR_RSV       §5.2
 *              2. reserved opcode 0x3-0x7, 0xB-0xF     FRAME_ERR_OPCODE    §5.2
 *              3. control frame with FIN clear         FRAME_ERR_CONTROL   §5.5
 *   byte 1     4. control frame, 7-bit length > 125    FRAME_ERR_CONTROL   §5.5
 *              5. MASK clear when a mask is required   FRAME_ERR_UNMASKED  §5.1
 *   bytes 2-9  6. extended length: top bit set, or     FRAME_ERR_LENGTH    §5.2
 *                 not in its shortest form
 *              (checked once the extended length is in, before the 4-byte mask key)
 *
 * When one header breaks several rules, the first in this list is the one reported; every
 * one of them is answered with close 1002, so the order only changes the reason's words.
 */
#include "frame.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------- */

/* Reads an n-byte big-endian ("network byte order", §5.2) unsigned integer. */
static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reserved opcodes (§5.2): 0x3-0x7 are for future data frames, 0xB-0xF for future control
 * frames. With no extension negotiated (§9), receiving one is a protocol error. */
static bool opcode_reserved(uint8_t op)
{
    return (op >= 0x3 && op <= 0x7) || op >= 0xB;
}

ssize_t frame_decode_hdr(const uint8_t *in, size_t len, bool require_mask, struct frame_hdr *h)
{
    if (len < 1)
        return 0;

    bool fin = (in[0] & 0x80) != 0;
    uint8_t rsv = (uint8_t)((in[0] >> 4) & 0x7);
    uint8_t opcode = in[0] & 0x0F;

    /* §5.2: RSV bits mean something only under an extension both sides agreed on; we
     * negotiate none, so any set bit is a protocol error. */
    if (rsv != 0)
        return FRAME_ERR_RSV;
    if (opcode_reserved(opcode))
        return FRAME_ERR_OPCODE;
    /* §5.5: control frames may not be fragmented ... */
    if (frame_is_control(opcode) && !fin)
        return FRAME_ERR_CONTROL;

    if (len < 2)
        return 0;
    bool masked = (in[1] & 0x80) != 0;
    uint8_t len7 = in[1] & 0x7F;

    /* ... and carry at most 125 bytes, so their length always fits the 7-bit field (126 and
     * 127 here announce a longer one). */
    if (frame_is_control(opcode) && len7 > FRAME_CONTROL_MAX)
        return FRAME_ERR_CONTROL;
    /* §5.1: a client masks every frame, so a server must fail an unmasked one (masking
     * exists against §10.3's cache poisoning through intermediaries). */
    if (require_mask && !masked)
        return FRAME_ERR_UNMASKED;

    /* §5.2: the 7-bit length is a prefix code: 0..125 is the length itself, 126 means a
     * 16-bit length follows, 127 a 64-bit one whose top bit must be clear. The RFC asks for
     * the minimal number of bytes, so 126 with a value under 126, or 127 with a value that
     * fits 16 bits, is malformed rather than merely odd. */
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    uint64_t payload_len = len7;
    if (ext > 0) {
        if (len < 2 + ext)
            return 0;
        payload_len = read_be(in + 2, ext);
        if (ext == 8 && (payload_len >> 63) != 0)
            return FRAME_ERR_LENGTH;
        if ((ext == 2 && payload_len < 126) || (ext == 8 && payload_len <= 0xFFFF))
            return FRAME_ERR_LENGTH;
    }

    size_t size = 2 + ext + (masked ? 4 : 0);
    if (len < size)
        return 0;

    h->fin = fin;
    h->masked = masked;
    h->rsv = rsv;
    h->opcode = opcode;
    if (masked)
        memcpy(h->mask_key, in + 2 + ext, 4);
    else
        memset(h->mask_key, 0, 4);
    h->payload_len = payload_len;
    return (ssize_t)size;
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

size_t frame_encode_hdr(uint8_t *out, bool fin, enum frame_op op, uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0x00) | ((unsigned)op & 0x0F));
    /* MASK is always clear: §5.1 forbids a server to mask. Shortest length form (§5.2). */
    if (payload_len <= 125) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    size_t ext = payload_len <= 0xFFFF ? 2 : 8;
    out[1] = ext == 2 ? 126 : 127;
    for (size_t i = 0; i < ext; i++)
        out[2 + i] = (uint8_t)(payload_len >> (8 * (ext - 1 - i)));
    return 2 + ext;
}

/* ---------------------------------------------------------------------------------------
 * Masking
 * ------------------------------------------------------------------------------------- */

/* §5.3: payload byte i is XORed with key[i % 4], i counted from the start of the frame's
 * payload; hence `pos`, so a payload that arrives in pieces unmasks piece by piece.
 *
 * Eight bytes at a time: the key repeated twice, starting at phase pos % 4, makes a 64-bit
 * word that lines up with every 8-byte block (8 is a multiple of 4, so the phase does not
 * move between blocks). memcpy in and out of a uint64_t keeps it free of unaligned or
 * aliasing UB; compilers turn those memcpys into plain loads and stores. The word is built
 * byte by byte in memory order, so it is right whatever the host's endianness. */
void frame_unmask(uint8_t *p, size_t len, const uint8_t key[4], uint64_t pos)
{
    size_t phase = (size_t)(pos & 3);
    uint8_t rot[8];
    for (size_t i = 0; i < 8; i++)
        rot[i] = key[(phase + i) & 3];

    size_t i = 0;
    if (len >= 8) {
        uint64_t m;
        memcpy(&m, rot, 8);
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            w ^= m;
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < len; i++)
        p[i] ^= rot[i & 3]; /* rot[j] is key[(pos + j) % 4] */
}
