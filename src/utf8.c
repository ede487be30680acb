/* utf8.c: the incremental UTF-8 validator described in utf8.h (RFC 3629 §3-4, RFC 6455 §8.1).
 *
 * Owns: the byte-class table and the state machine below; nothing else.
 * Does not own: decoding to code points (nobody in wsrelay needs them), or what to do with
 * invalid text (ws.c fails the connection with 1007).
 * Pure: two constant tables, no I/O, no allocation.
 *
 * After Bjoern Hoehrmann's "Flexible and Economical UTF-8 Decoder": every byte falls in one
 * of 12 classes, and a small transition table says where each class leads from each state.
 * The classes split the continuation range 80..BF in three because the second byte of four
 * lead bytes is restricted (RFC 3629 §4, the "UTF8-tail" exceptions):
 *
 *   E0 must be followed by A0..BF    (80..9F would be an overlong 3-byte form)
 *   ED must be followed by 80..9F    (A0..BF would encode a surrogate D800..DFFF)
 *   F0 must be followed by 90..BF    (80..8F would be an overlong 4-byte form)
 *   F4 must be followed by 80..8F    (90..BF would pass U+10FFFF)
 *   C0, C1 and F5..FF never appear   (overlong 2-byte forms; past U+10FFFF)
 *
 * States, and the bytes that move between them; every other (state, byte) pair leads to
 * REJECT, which no byte leaves:
 *
 *   ACCEPT --00..7F---------> ACCEPT
 *   ACCEPT --C2..DF---------> NEED1 ----80..BF--> ACCEPT
 *   ACCEPT --E1..EC, EE..EF-> NEED2 ----80..BF--> NEED1
 *   ACCEPT --F1..F3---------> NEED3 ----80..BF--> NEED2
 *   ACCEPT --E0-------------> AFTER_E0 -A0..BF--> NEED1
 *   ACCEPT --ED-------------> AFTER_ED -80..9F--> NEED1
 *   ACCEPT --F0-------------> AFTER_F0 -90..BF--> NEED2
 *   ACCEPT --F4-------------> AFTER_F4 -80..8F--> NEED2
 *
 * Failing at the first impossible byte is what RFC 6455 §8.1 and Autobahn's 6.4.x cases
 * ask for: the validator is told a prefix, and says "no" as soon as no continuation of that
 * prefix could be valid.
 */
#include "utf8.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------
 * The tables
 * ------------------------------------------------------------------------------------- */

enum utf8_class {
    CA, /* 00..7F: ASCII, a whole code point */
    C8, /* 80..8F: continuation */
    C9, /* 90..9F: continuation */
    CB, /* A0..BF: continuation */
    CX, /* C0, C1, F5..FF: never valid anywhere */
    L2, /* C2..DF: lead of 2 bytes */
    E0, /* E0: lead of 3, second byte A0..BF */
    L3, /* E1..EC, EE..EF: lead of 3 */
    ED, /* ED: lead of 3, second byte 80..9F */
    F0, /* F0: lead of 4, second byte 90..BF */
    L4, /* F1..F3: lead of 4 */
    F4, /* F4: lead of 4, second byte 80..8F */
    N_CLASSES
};

/* ACCEPT must be 0: utf8.h promises "0: between code points" and utf8_init() sets 0. */
enum utf8_st {
    ACCEPT,
    REJECT,
    NEED1, /* one more continuation byte, any of 80..BF */
    NEED2,
    NEED3,
    AFTER_E0,
    AFTER_ED,
    AFTER_F0,
    AFTER_F4,
    N_STATES
};

// clang-format off
static const uint8_t byte_class[256] = {
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 00..0F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 10..1F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 20..2F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 30..3F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 40..4F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 50..5F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 60..6F */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* 70..7F */
    C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, /* 80..8F */
    C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, /* 90..9F */
    CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, /* A0..AF */
    CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, CB, /* B0..BF */
    CX, CX, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* C0..CF */
    L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* D0..DF */
    E0, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, ED, L3, L3, /* E0..EF */
    F0, L4, L4, L4, F4, CX, CX, CX, CX, CX, CX, CX, CX, CX, CX, CX, /* F0..FF */
};

/* Short names so the table fits: A = ACCEPT, R = REJECT, Nn = NEEDn, Axx = AFTER_xx. */
#define A   ACCEPT
#define R   REJECT
#define N1  NEED1
#define N2  NEED2
#define N3  NEED3
#define AE0 AFTER_E0
#define AED AFTER_ED
#define AF0 AFTER_F0
#define AF4 AFTER_F4
static const uint8_t next_state[N_STATES][N_CLASSES] = {
    /*            CA  C8  C9  CB  CX  L2  E0   L3  ED   F0   L4  F4  */
    [ACCEPT]   = {A,  R,  R,  R,  R,  N1, AE0, N2, AED, AF0, N3, AF4},
    [REJECT]   = {R,  R,  R,  R,  R,  R,  R,   R,  R,   R,   R,  R  },
    [NEED1]    = {R,  A,  A,  A,  R,  R,  R,   R,  R,   R,   R,  R  },
    [NEED2]    = {R,  N1, N1, N1, R,  R,  R,   R,  R,   R,   R,  R  },
    [NEED3]    = {R,  N2, N2, N2, R,  R,  R,   R,  R,   R,   R,  R  },
    [AFTER_E0] = {R,  R,  R,  N1, R,  R,  R,   R,  R,   R,   R,  R  },
    [AFTER_ED] = {R,  N1, N1, R,  R,  R,  R,   R,  R,   R,   R,  R  },
    [AFTER_F0] = {R,  R,  N2, N2, R,  R,  R,   R,  R,   R,   R,  R  },
    [AFTER_F4] = {R,  N2, R,  R,  R,  R,  R,   R,  R,   R,   R,  R  },
};
#undef A
#undef N1
#undef N2
#undef N3
#undef AE0
#undef AED
#undef AF0
#undef AF4
#undef R
// clang-format on

/* ---------------------------------------------------------------------------------------
 * The validator
 * ------------------------------------------------------------------------------------- */

#define HIGH_BITS UINT64_C(0x8080808080808080)

bool utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len)
{
    uint32_t st = s->state;
    if (st == REJECT)
        return false;

    size_t i = 0;
    while (i < len) {
        /* Text on the cursor path is almost all ASCII: between code points, skip 8 ASCII
         * bytes at a time (no byte has its top bit set). memcpy: no unaligned loads. */
        if (st == ACCEPT && p[i] < 0x80) {
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if ((w & HIGH_BITS) != 0)
                    break;
                i += 8;
            }
            if (i == len)
                break;
        }
        st = next_state[st][byte_class[p[i]]];
        if (st == REJECT) {
            s->state = REJECT;
            return false; /* fail fast: no later byte can repair this prefix */
        }
        i++;
    }
    s->state = st;
    return true;
}

bool utf8_is_complete(const struct utf8_state *s)
{
    return s->state == ACCEPT;
}

bool utf8_valid(const uint8_t *p, size_t len)
{
    struct utf8_state s;
    utf8_init(&s);
    return utf8_feed(&s, p, len) && utf8_is_complete(&s);
}
