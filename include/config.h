/* config.h: the command line, the config file, their defaults and their validation.
 *
 * Owns: argv and the bytes of a --config file -> struct config, the limits each value must
 * respect, and the usage text. One table of options (config.c) drives both: a name means the
 * same, takes the same values and is refused for the same reasons on the command line and in
 * the file. Does not own: reading the file, printing or exiting (main.c does those with what
 * config_parse() returns). Pure: no I/O, no globals (no getopt: its state is global), so
 * every flag and every line of a file is unit-tested and fuzzed.
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

/* --log-format: the same events and fields either way (log.h). */
enum config_log_format {
    CONFIG_LOG_TEXT, /* time level key=value ... "phrase": for people, grep and awk */
    CONFIG_LOG_JSON, /* one JSON object per line: for log shippers */
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
    const char *config_file;       /* --config: the file read before argv; NULL: none */
    bool quiet;                    /* log errors only */
    bool verbose;                  /* log debug lines too (per request, per message) */
    enum config_log_format log_format;    /* --log-format: text (the default) or json */
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

/* The config file: at most this many bytes (main.c refuses a bigger one rather than cut it),
 * and lines of at most CONFIG_FILE_LINE_MAX bytes (the longest real value, a --metrics-allow
 * list of 32 IPv6 prefixes, is under 1.5 KiB). */
#define CONFIG_FILE_MAX      ((size_t)64 * 1024)
#define CONFIG_FILE_LINE_MAX 4096

enum config_action {
    CONFIG_RUN,        /* start the server with *cfg */
    CONFIG_HELP,       /* print config_usage() on stdout, exit 0 */
    CONFIG_VERSION,    /* print "wsrelay " WSRELAY_VERSION on stdout, exit 0 */
    CONFIG_ERROR,      /* print err and config_usage() on stderr, exit 2 */
    CONFIG_FILE_ERROR, /* the file is at fault, not argv: print err alone on stderr, exit 2 */
    CONFIG_NEED_FILE,  /* argv names --config cfg->config_file: read it, then call
                        * config_parse_with_file() with its bytes */
};

/* A config file's bytes, as main.c read them. text[len] must be '\0' (one byte past the
 * content): the parser ends each value with a NUL in place, overwriting the newline or
 * whitespace after it, so struct config's strings point into text, which must outlive it. */
struct config_file {
    const char *name; /* the path, for messages: "NAME:LINE: reason" */
    char *text;
    size_t len; /* at most CONFIG_FILE_MAX */
};

/* Fills *cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Parses argv[1..argc) over the defaults. Flags take "--flag VALUE" or "--flag=VALUE";
 * those without a value (--quiet, --verbose) also take "--flag=true" or "--flag=false".
 * A flag given twice: the last wins. Sizes accept a K/KiB or M/MiB suffix (powers of 1024);
 * durations an "ms" or "s" suffix (none: seconds). On CONFIG_ERROR, err holds a one-line
 * message (NUL-terminated, cut to err_len). cfg's strings point into argv.
 * Cross-checks: --max-buffer must hold one frame of --max-message bytes and the server's
 * members (else every large message would disconnect its recipients).
 * If argv names --config (and is otherwise good), returns CONFIG_NEED_FILE with
 * cfg->config_file set and nothing cross-checked yet. */
enum config_action config_parse(struct config *cfg, int argc, char *const argv[], char *err,
                                size_t err_len);

/* The same with the config file's bytes (file == NULL: config_parse()). Order: defaults, then
 * the file, then argv, so a flag overrides the file wherever it stands on the command line;
 * then the cross-checks, on the result. One exception to "the last wins": --quiet or
 * --verbose on the command line turns off the other one if only the file set it.
 *
 * The file: lines of "name = value", the names of the long flags without "--". Blank lines
 * and lines whose first non-blank is '#' are skipped ('#' later in a line is part of the
 * value: no trailing comments, so a value may hold one). Space and tab around the name and
 * the value are dropped, and a CR before the newline; nothing else is: no quotes, no
 * escapes, the value is the rest of the line. --quiet and --verbose take true or false. A
 * UTF-8 byte order mark at the very start is skipped. Refused, each with
 * CONFIG_FILE_ERROR and "NAME:LINE: reason" in err: an unknown name, a bad value (the same
 * checks and words as the flag's), a name set twice, a line without '=', "config" (a file
 * naming another file), a line over CONFIG_FILE_LINE_MAX bytes, a NUL byte, a control
 * character other than tab, bytes that are not UTF-8, a file over CONFIG_FILE_MAX. */
enum config_action config_parse_with_file(struct config *cfg, int argc, char *const argv[],
                                          const struct config_file *file, char *err,
                                          size_t err_len);

/* The long options' names without "--", in the order of the usage text: i = 0, 1, ...;
 * NULL past the last. For tests that check the usage text, the man page and the sample
 * config file name every one. */
const char *config_option_name(size_t i);

/* The usage text, ending in a newline. */
const char *config_usage(void);

#endif
