/* config.h: the command line, its defaults and its validation.
 *
 * Owns: argv -> struct config, the limits each value must respect, and the usage text.
 * Does not own: printing or exiting (main.c does that with what config_parse() returns).
 * Pure: no I/O, no globals (no getopt: its state is global), so every flag is unit-tested.
 */
#ifndef WSRELAY_CONFIG_H
#define WSRELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSRELAY_VERSION "0.1.0"

/* --metrics-allow: the peers that may read /metrics, as address prefixes (CIDR, RFC 4632 §3.1
 * for IPv4, RFC 4291 §2.3 for IPv6). A fixed array: the list comes from argv, and a cap keeps
 * a typo from costing anything. */
#define CONFIG_PREFIXES_MAX          32
#define CONFIG_METRICS_ALLOW_DEFAULT "127.0.0.0/8,::1" /* this machine only */

struct config_prefix {
    bool is_v6;     /* false: IPv4, in ip[0..4) */
    uint8_t bits;   /* prefix length: 0..32 (IPv4) or 0..128 (IPv6) */
    uint8_t ip[16]; /* the network address: every bit past `bits` is zero */
};

struct config_prefixes {
    bool is_any; /* "any": every peer */
    size_t n;
    struct config_prefix p[CONFIG_PREFIXES_MAX];
};

struct config {
    const char *host;          /* numeric IPv4/IPv6 address or name to listen on; "0.0.0.0" */
    uint16_t port;             /* 7071, the original demo's; 0 lets the kernel pick one */
    const char *www;           /* directory of static files; NULL: find the default at start-up */
    size_t max_clients;        /* every TCP connection takes one slot, allocated at start-up */
    size_t max_rooms;          /* rooms open at once (docs/security.md says why 10000) */
    size_t max_room_clients;   /* local members of one room (docs/security.md: why 400) */
    size_t roster_max;         /* above this many members a room's presence is summarised
                                * (docs/protocol.md, "Big rooms") */
    uint64_t send_interval_ms; /* cursor messages reach a room at most this often; 0: at once */
    size_t max_message;        /* largest WebSocket message accepted (RFC 6455 §7.4.1 code 1009) */
    size_t max_buffer;         /* pending output per connection before a slow reader is dropped */
    uint64_t handshake_timeout_ms; /* a complete request head must arrive within this */
    uint64_t ping_interval_ms;     /* ping WebSocket clients this often; 0: never */
    uint64_t drain_time_ms;        /* SIGTERM: close WebSockets spread over this long; 0: at once */
    uint64_t max_rate;             /* /ws messages per second per client; 0: no limit */
    uint64_t max_connect_rate;     /* /ws handshakes per second per client address (IPv6: per
                                    * /64), burst CONFIG_CONNECT_BURST_S seconds; 0: no limit */
    uint64_t max_byte_rate;        /* /ws message bytes per second per client; 0: no limit.
                                    * Its bucket holds max(this, max_message) bytes, so one
                                    * message of the largest size can always pass */
    const char *allow_origin;      /* NULL: Origin must match Host; "*": any; else a comma list */
    const char *redis_url;         /* --redis: NULL runs a single node (the default) */
    const char *redis_channel;     /* --redis-channel: the pub/sub channel nodes share */
    const char *tls_cert;          /* --tls-cert: PEM chain; NULL: plain TCP (with tls_key) */
    const char *tls_key;           /* --tls-key: its PEM private key */
    const char *token_secret_file; /* --token-secret-file: /ws needs room tokens signed with
                                    * the key in it (token.h); NULL: WSRELAY_TOKEN_SECRET,
                                    * or no tokens. server.c reads it */
    bool quiet;                    /* log errors only */
    bool verbose;                  /* log debug lines too (per request, per message) */
    struct config_prefixes metrics_allow; /* --metrics-allow: who may read /metrics */
};

/* Where a cluster's Redis is: what config_parse_redis_url() makes of
 * redis://[[user]:password@]host[:port][/db]. */
struct config_redis {
    char host[256];     /* a name, an IPv4 address, or an IPv6 one without its brackets */
    uint16_t port;      /* 6379 if the URL names none */
    unsigned db;        /* SELECT this database; 0 if the URL names none */
    char user[128];     /* ACL user (Redis 6+), or empty */
    char password[256]; /* percent-decoded; empty: no AUTH. Never logged */
};

/* Parses a redis:// URL into *out (zeroed first). Returns 0, or -1 with a one-line reason in
 * err (which never contains the password). Percent-escapes are decoded in user and
 * password, so any byte can be written. */
int config_parse_redis_url(const char *url, struct config_redis *out, char *err, size_t err_len);

/* Parses --metrics-allow's value into *out (zeroed first): "any" alone, or a comma-separated
 * list of at most CONFIG_PREFIXES_MAX entries, each an IPv4 prefix "a.b.c.d/n" (n 0..32), an
 * IPv6 prefix "x::/n" (n 0..128, any RFC 4291 §2.2 text form), or a bare address, meaning /32
 * or /128. Strict: no spaces, no empty entries, n in decimal without leading zeros, and no
 * bit set past the prefix length ("10.0.0.1/8" is refused, naming 10.0.0.0/8: a typo there
 * would otherwise quietly widen or move the range). Returns 0, or -1 with a one-line reason
 * in err (*out zeroed again). Pure: inet_pton() is computation, not I/O. */
int config_parse_prefixes(const char *list, struct config_prefixes *out, char *err, size_t err_len);

/* Is the address ip (version 4: ip[0..4); version 6: ip[0..16)) in the set? An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, how an IPv4 peer looks to a socket listening on "::") is
 * matched by its IPv4 form against IPv4 prefixes and as itself against IPv6 prefixes, and an
 * IPv4 address the same way, so the answer never depends on how the server listens. Any
 * other version matches only "any". */
bool config_prefixes_match(const struct config_prefixes *set, unsigned version,
                           const uint8_t ip[16]);

/* Bounds. Each exists so that a typo cannot make the server allocate absurd amounts. */
#define CONFIG_MAX_CLIENTS_MAX 1000000
#define CONFIG_MAX_MESSAGE_MAX (64u << 20) /* 64 MiB */
#define CONFIG_MAX_BUFFER_MAX  (1u << 30)  /* 1 GiB */
#define CONFIG_DURATION_MAX_MS 3600000u    /* 1 hour */
/* --send-interval: a second between writes is already useless for cursors. */
#define CONFIG_SEND_INTERVAL_MAX_MS 1000u
#define CONFIG_MAX_RATE_MAX         1000000u
#define CONFIG_MAX_BYTE_RATE_MAX    (1u << 30) /* 1 GiB/s */
/* --max-connect-rate's bucket holds this many seconds' worth: a page reloaded a few times,
 * or a NAT of a hundred users all reconnecting after a restart, passes at once. */
#define CONFIG_CONNECT_BURST_S 5

enum config_action {
    CONFIG_RUN,     /* start the server with *cfg */
    CONFIG_HELP,    /* print config_usage() on stdout, exit 0 */
    CONFIG_VERSION, /* print "wsrelay " WSRELAY_VERSION on stdout, exit 0 */
    CONFIG_ERROR,   /* print err and config_usage() on stderr, exit 2 */
};

/* Fills *cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Parses argv[1..argc) over the defaults. Flags take "--flag VALUE" or "--flag=VALUE".
 * Sizes accept a K/KiB or M/MiB suffix (powers of 1024); durations an "ms" or "s" suffix
 * (none: seconds). On CONFIG_ERROR, err holds a
 * one-line message (NUL-terminated, cut to err_len). cfg->host and cfg->www point into argv.
 * Cross-checks: --max-buffer must hold one frame of --max-message bytes and the server's
 * members (else every large message would disconnect its recipients). */
enum config_action config_parse(struct config *cfg, int argc, char *const argv[], char *err,
                                size_t err_len);

/* The usage text, ending in a newline. */
const char *config_usage(void);

#endif
