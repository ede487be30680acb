/* cluster.c: the envelope between nodes, and the table of nodes (see cluster.h).
 *
 * Decoding is strict on purpose. Anything can publish on a Redis channel (another program,
 * an older wsrelay, an attacker who got at Redis), and what we accept we relay to browsers.
 * So every field is checked against its exact form, and the JSON payload is checked to be
 * one object in valid UTF-8 (RFC 6455 §8.1 would make a browser fail the connection on bad
 * UTF-8 in a text frame) before anything else looks at it. A room name is checked by the
 * same rule as in a URL (target_room_name_check()), since it may become a log field or part
 * of a Redis channel's name.
 */
#include "cluster.h"

#include <errno.h>
#include <string.h>

#include "ascii.h"
#include "json.h"
#include "target.h"
#include "utf8.h"

/* "wsr1 " was issue 5's envelope, without rooms: see cluster.h for why it changed. */
static const char MAGIC[] = "wsr2 ";

static const struct {
    const char *name;
    enum cluster_kind kind;
    bool has_client; /* room, sender, color and JSON follow */
} KINDS[] = {
    {"hb", CLUSTER_HB, false},       {"hello", CLUSTER_HELLO, false},
    {"bye", CLUSTER_BYE, false},     {"join", CLUSTER_JOIN, true},
    {"msg", CLUSTER_MSG, true},      {"leave", CLUSTER_LEAVE, true},
    {"state", CLUSTER_STATE, false},
};

/* ---- Field readers: each takes in[*pos..len), advances *pos, and says whether it fit ---- */

/* A token up to the next space (or the end): [*pos, *end). */
static bool token(const uint8_t *in, size_t len, size_t *pos, size_t *start, size_t *tok_len)
{
    size_t i = *pos;
    while (i < len && in[i] != ' ' && in[i] != '\n')
        i++;
    *start = *pos;
    *tok_len = i - *pos;
    *pos = i;
    return *tok_len > 0;
}

static bool skip_char(const uint8_t *in, size_t len, size_t *pos, uint8_t ch)
{
    if (*pos >= len || in[*pos] != ch)
        return false;
    (*pos)++;
    return true;
}

/* 16 lowercase hex digits. */
static bool node_id(const uint8_t *p, size_t n, char out[CLUSTER_NODE_ID_LEN + 1])
{
    if (n != CLUSTER_NODE_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(ascii_is_digit(p[i]) || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* A UUID in its canonical 8-4-4-4-12 lowercase form: the only ids wsrelay hands out, and the
 * only ones it will put into a JSON string unescaped. */
static bool uuid(const uint8_t *p, size_t n, char out[PRESENCE_ID_SIZE])
{
    if (n != PRESENCE_ID_SIZE - 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool is_dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (is_dash ? p[i] != '-' : !(ascii_is_digit(p[i]) || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* "/" then a room name, or "/" alone: the default room, "". One spelling per room. */
static bool room_token(const uint8_t *p, size_t n, char out[TARGET_ROOM_MAX + 1])
{
    if (n == 0 || p[0] != '/')
        return false;
    if (n > 1 && target_room_name_check((const char *)p + 1, n - 1) != NULL)
        return false;
    memcpy(out, p + 1, n - 1); /* n - 1 <= TARGET_ROOM_MAX: the check bounds it */
    out[n - 1] = '\0';
    return true;
}

/* " /<room>" at in[*pos..len). */
static bool room_field(const uint8_t *in, size_t len, size_t *pos, struct cluster_msg *m)
{
    size_t start, n;
    return skip_char(in, len, pos, ' ') && token(in, len, pos, &start, &n) &&
           room_token(in + start, n, m->room);
}

/* A decimal number in [0, max] without leading zeros. */
static bool number(const uint8_t *p, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 10 || (n > 1 && p[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ascii_is_digit(p[i]))
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* What a browser will get as a text frame: valid UTF-8, one JSON object. */
static bool relayable(const uint8_t *p, size_t n)
{
    return utf8_valid(p, n) && json_check_object(p, n) == 0;
}

/* " /<room> <sender> <color> " then the rest of the input is the JSON. */
static bool client_fields(const uint8_t *in, size_t len, size_t *pos, struct cluster_msg *m)
{
    size_t start, n;
    uint64_t color;
    if (!room_field(in, len, pos, m) || !skip_char(in, len, pos, ' ') ||
        !token(in, len, pos, &start, &n) || !uuid(in + start, n, m->sender) ||
        !skip_char(in, len, pos, ' ') || !token(in, len, pos, &start, &n) ||
        !number(in + start, n, 359, &color) || !skip_char(in, len, pos, ' '))
        return false;
    m->color = (unsigned)color;
    m->json = in + *pos;
    m->json_len = len - *pos;
    return relayable(m->json, m->json_len);
}

/* One STATE record at in[*pos..len): "\n<sender> <color> <len>:<json>". */
static bool state_record(const uint8_t *in, size_t len, size_t *pos, struct cluster_peer *peer)
{
    size_t start, n;
    uint64_t color, json_len;
    if (!skip_char(in, len, pos, '\n') || !token(in, len, pos, &start, &n) ||
        !uuid(in + start, n, peer->sender) || !skip_char(in, len, pos, ' ') ||
        !token(in, len, pos, &start, &n) || !number(in + start, n, 359, &color) ||
        !skip_char(in, len, pos, ' '))
        return false;
    size_t colon = *pos;
    while (colon < len && in[colon] != ':')
        colon++;
    if (colon == len || !number(in + *pos, colon - *pos, PRESENCE_STATE_MAX, &json_len) ||
        json_len > len - colon - 1)
        return false;
    peer->color = (unsigned)color;
    peer->json = in + colon + 1;
    peer->json_len = (size_t)json_len;
    *pos = colon + 1 + (size_t)json_len;
    return json_len == 0 || relayable(peer->json, peer->json_len);
}

int cluster_decode(const uint8_t *in, size_t len, struct cluster_msg *m)
{
    *m = (struct cluster_msg){0};
    size_t pos = sizeof MAGIC - 1, start, n;
    if (len < pos || memcmp(in, MAGIC, pos) != 0 || !token(in, len, &pos, &start, &n) ||
        !node_id(in + start, n, m->node) || !skip_char(in, len, &pos, ' ') ||
        !token(in, len, &pos, &start, &n))
        return -1;
    size_t k = 0;
    while (k < sizeof KINDS / sizeof KINDS[0] &&
           !(strlen(KINDS[k].name) == n && memcmp(KINDS[k].name, in + start, n) == 0))
        k++;
    if (k == sizeof KINDS / sizeof KINDS[0])
        return -1;
    m->kind = KINDS[k].kind;

    if (KINDS[k].has_client) {
        m->has_room = true;
        return client_fields(in, len, &pos, m) ? 0 : -1;
    }
    if (m->kind == CLUSTER_HELLO && pos < len) { /* a hello for one room */
        m->has_room = true;
        return room_field(in, len, &pos, m) && pos == len ? 0 : -1;
    }
    if (m->kind != CLUSTER_STATE)
        return pos == len ? 0 : -1;
    m->has_room = true;

    uint64_t count;
    if (!room_field(in, len, &pos, m) || !skip_char(in, len, &pos, ' ') ||
        !token(in, len, &pos, &start, &n) || !number(in + start, n, UINT32_MAX, &count))
        return -1;
    m->count = (size_t)count;
    m->json = in + pos;
    m->json_len = len - pos;
    /* Check every record now, so that handling a STATE never stops halfway. */
    size_t at = pos;
    struct cluster_peer peer;
    for (size_t i = 0; i < m->count; i++)
        if (!state_record(in, len, &at, &peer))
            return -1;
    return at == len ? 0 : -1;
}

bool cluster_next_peer(const struct cluster_msg *m, size_t *pos, struct cluster_peer *peer)
{
    if (*pos >= m->json_len)
        return false;
    return state_record(m->json, m->json_len, pos, peer);
}

/* ---- Encoding ------------------------------------------------------------------------------ */

/* The name of a kind, or NULL for a value that is none. */
static const char *kind_name(enum cluster_kind kind)
{
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        if (KINDS[k].kind == kind)
            return KINDS[k].name;
    return NULL;
}

/* Whether room is one cluster_decode() would accept after its "/": "" or a room name. Reads
 * at most TARGET_ROOM_MAX + 1 bytes of it, so a long string is refused without a full scan. */
static bool room_ok(const char *room)
{
    if (room == NULL)
        return false;
    size_t n = strnlen(room, TARGET_ROOM_MAX + 1);
    return n == 0 || target_room_name_check(room, n) == NULL;
}

int cluster_encode(struct buf *out, const char *node, enum cluster_kind kind, const char *room,
                   const char *sender, unsigned color, const void *json, size_t json_len)
{
    const char *name = kind_name(kind);
    bool has_client = kind == CLUSTER_JOIN || kind == CLUSTER_MSG || kind == CLUSTER_LEAVE;
    if (name == NULL || kind == CLUSTER_STATE || (has_client && !room_ok(room)))
        return -EINVAL;
    if (kind == CLUSTER_HELLO && room != NULL && !room_ok(room))
        return -EINVAL;
    size_t mark = buf_size(out);
    int rc = buf_printf(out, "%s%s %s", MAGIC, node, name);
    if (rc == 0 && kind == CLUSTER_HELLO && room != NULL)
        rc = buf_printf(out, " /%s", room);
    if (rc == 0 && has_client) {
        rc = buf_printf(out, " /%s %s %u ", room, sender, color);
        if (rc == 0)
            rc = buf_append(out, json, json_len);
    }
    if (rc != 0)
        buf_truncate(out, mark);
    return rc;
}

/* The entry at a peer index if cluster_encode_state() lists it (a present client of this
 * server), else NULL. */
static const struct presence_peer *state_member(const struct presence *p, uint32_t index)
{
    if (index >= p->max_slots)
        return NULL;
    const struct presence_peer *peer = &p->peers[index];
    return peer->is_present && peer->node == 0 ? peer : NULL;
}

int cluster_encode_state(struct buf *out, const char *node, const char *room,
                         const struct presence *p, const uint32_t *members, size_t n)
{
    if (!room_ok(room))
        return -EINVAL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += state_member(p, members[i]) != NULL;
    size_t mark = buf_size(out);
    int rc = buf_printf(out, "%s%s state /%s %zu", MAGIC, node, room, count);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct presence_peer *peer = state_member(p, members[i]);
        if (peer == NULL)
            continue;
        /* A last message over PRESENCE_STATE_MAX is listed as none, as in a welcome: a state
         * stays bounded, and the next message brings the rest. */
        size_t len = presence_has_snapshot(peer) ? buf_size(&peer->last) : 0;
        rc = buf_printf(out, "\n%s %u %zu:", peer->id, peer->color, len);
        if (rc == 0 && len > 0)
            rc = buf_append(out, buf_head(&peer->last), len);
    }
    if (rc != 0)
        buf_truncate(out, mark);
    return rc;
}

/* ---- The other nodes ----------------------------------------------------------------------- */

int cluster_node_seen(struct cluster_nodes *t, const char *id, uint64_t now_ms, bool *is_new)
{
    int free_entry = -1;
    *is_new = false;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (strcmp(t->n[i].id, id) == 0) {
            t->n[i].last_seen_ms = now_ms;
            return i;
        }
        if (free_entry < 0 && t->n[i].id[0] == '\0')
            free_entry = i;
    }
    if (free_entry >= 0) {
        memcpy(t->n[free_entry].id, id, CLUSTER_NODE_ID_LEN + 1);
        t->n[free_entry].last_seen_ms = now_ms;
        *is_new = true;
    }
    return free_entry;
}

int cluster_node_expired(const struct cluster_nodes *t, uint64_t now_ms, uint64_t timeout_ms)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (t->n[i].id[0] != '\0' && now_ms >= t->n[i].last_seen_ms + timeout_ms)
            return i; /* (now_ms may be earlier than last_seen_ms: see the header) */
    return -1;
}

void cluster_node_excuse(struct cluster_nodes *t, uint64_t until_ms)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        if (t->n[i].id[0] != '\0' && t->n[i].last_seen_ms < until_ms)
            t->n[i].last_seen_ms = until_ms;
}

void cluster_node_forget(struct cluster_nodes *t, int index)
{
    t->n[index] = (struct cluster_node){0};
}
