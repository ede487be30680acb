/* config.c: parsing and validating the command line and the config file (see config.h).
 *
 * Chapters: the value parsers, the option table and apply() (the one place a value is
 * checked and stored), the command line, the config file, the checks across options. */
#include "config.h"

#include <arpa/inet.h> /* inet_pton(), inet_ntop(): text <-> address, no I/O */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "frame.h"
#include "json.h"
#include "utf8.h"

static bool parse_digits(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

static const char usage[] =
    "usage: wsrelay [options]\n"
    "\n"
    "Serves the shared-cursors page and relays cursor positions over WebSocket.\n"
    "\n"
    "  --config FILE        read options from FILE first: one 'name = value' a line, the\n"
    "                       names of these flags without --, '#' comments; flags given\n"
    "                       here override it (default: none; man wsrelay, docs/wsrelay.conf)\n"
    "  --host ADDR          address to listen on (default 0.0.0.0)\n"
    "  --port N             TCP port, 0 for any free one (default 7071)\n"
    "  --www DIR            static files (default: PREFIX/share/wsrelay/www for a binary in\n"
    "                       PREFIX/bin, else www/ beside the binary; never ./www)\n"
    "  --max-clients N      connection slots, allocated at start-up (default 1024)\n"
    "  --max-rooms N        rooms open at once; a client opening one more is closed with\n"
    "                       4002 \"too many rooms\" (default 10000)\n"
    "  --max-room-clients N members of one room on this node; one more is closed with\n"
    "                       4001 \"room is full\" (default 400)\n"
    "  --roster-max N       in a room of more members, a welcome lists the N most recently\n"
    "                       active and arrivals are announced when they move (default 1000)\n"
    "  --send-interval TIME write cursor messages to a room at most this often (default 0:\n"
    "                       as soon as the loop can)\n"
    "  --max-message BYTES  largest WebSocket message accepted (default 16K)\n"
    "  --max-buffer BYTES   pending output per client before it is dropped (default 1M)\n"
    "  --handshake-timeout TIME  close connections without a complete request (default 10s)\n"
    "  --ping-interval TIME      ping WebSocket clients, drop the silent (default 30s, 0: off)\n"
    "  --drain-time TIME    on SIGTERM: /healthz answers 503, new WebSockets are refused,\n"
    "                       open ones are closed (1001) spread over TIME, then exit; a\n"
    "                       second SIGTERM or SIGINT closes the rest at once (default 5s,\n"
    "                       0: close all at once)\n"
    "  --max-rate N         /ws messages per second per client, excess dropped (default 200,\n"
    "                       0: off)\n"
    "  --max-byte-rate BYTES  /ws message bytes per second per client, excess dropped\n"
    "                       (default 64K; a burst may hold one --max-message; 0: off)\n"
    "  --max-connect-rate N /ws handshakes per second per client address (IPv6: per /64),\n"
    "                       with a burst of 5 s' worth; past it 429 (default 20, 0: off)\n";
/* Two literals: C11 §5.2.4.1 promises only 4095 characters in one (-Woverlength-strings). */
static const char usage_more[] =
    "  --allow-origin LIST  browser origins allowed to open WebSockets: comma-separated\n"
    "                       http(s)://host[:port], or * (default: same host as the page;\n"
    "                       set it when browsers reach the server by a known name, or on a\n"
    "                       private network or loopback: DNS rebinding, docs/security.md)\n"
    "  --redis URL          join a cluster of nodes sharing rooms over Redis pub/sub:\n"
    "                       redis://[[user]:password@]host[:port][/db] (default: one node;\n"
    "                       the password may come from WSRELAY_REDIS_PASSWORD instead)\n"
    "  --redis-channel NAME the channel the nodes share (default wsrelay)\n"
    "  --tls-cert FILE      speak TLS (https://, wss://) with this PEM certificate, its\n"
    "                       chain after it; needs --tls-key; SIGHUP reloads both\n"
    "  --tls-key FILE       the certificate's PEM private key\n"
    "  --token-secret-file FILE  /ws handshakes need a room token (a JWT, HS256) signed with\n"
    "                       the key in FILE, at least 32 bytes (default: the key in\n"
    "                       WSRELAY_TOKEN_SECRET, else no tokens; docs/deploy.md)\n"
    "  --metrics-allow LIST who may read /metrics: comma-separated prefixes (10.0.0.0/8,\n"
    "                       fd00::/8) or addresses, or any (default " CONFIG_METRICS_ALLOW_DEFAULT
    ",\n"
    "                       this machine only); others get 403\n"
    "  --log-format FORMAT  text (time level key=value \"phrase\") or json (one object a\n"
    "                       line, the same fields) (default text)\n"
    "  --quiet              log errors only\n"
    "  --verbose            log debug lines too: every file served, every dropped message\n"
    "  --help               show this text\n"
    "  --version            show the version\n"
    "\n"
    "BYTES may end in K or M (KiB, MiB); TIME in ms or s (default s).\n"
    "Paths: / and /r/ROOM (the page), /ws and /ws/ROOM (a room), /echo, /metrics, /healthz.\n"
    "ROOM: 1-64 of A-Z a-z 0-9 - . _ ~ (not . or ..); /ws alone is the default room.\n";

const char *config_usage(void)
{
    static char text[sizeof usage + sizeof usage_more];
    if (text[0] == '\0')
        snprintf(text, sizeof text, "%s%s", usage, usage_more);
    return text;
}

void config_defaults(struct config *cfg)
{
    *cfg = (struct config){
        .host = "0.0.0.0",
        .port = 7071,
        .www = NULL,
        .max_clients = 1024,
        .max_rooms = 10000,
        .max_room_clients = 400,
        .roster_max = 1000,
        .send_interval_ms = 0,
        .max_message = (size_t)16 * 1024,
        .max_buffer = (size_t)1024 * 1024,
        .handshake_timeout_ms = 10000,
        .ping_interval_ms = 30000,
        .drain_time_ms = 5000,
        .max_rate = 200,
        .max_byte_rate = (uint64_t)64 * 1024,
        .max_connect_rate = 20,
        .allow_origin = NULL,
        .redis_url = NULL,
        .redis_channel = "wsrelay",
        .quiet = false,
        .verbose = false,
    };
    char err[8];
    config_parse_prefixes(CONFIG_METRICS_ALLOW_DEFAULT, &cfg->metrics_allow, err, sizeof err);
}

/* Parses a decimal number with an optional K/KiB/M/MiB suffix into [min, max].
 * strtoull alone would accept " 12", "-1" (as a huge number) and "12abc": we don't. */
static bool parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    uint64_t mult = 1;
    if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0 || strcmp(end, "k") == 0)
        mult = 1024;
    else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0 || strcmp(end, "m") == 0)
        mult = (uint64_t)1024 * 1024;
    else if (*end != '\0')
        return false;
    if (v > max / mult)
        return false;
    v *= mult;
    if (v < min)
        return false;
    *out = v;
    return true;
}

/* Parses a duration in milliseconds: digits, then "ms", "s" or nothing (seconds). */
static bool parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    uint64_t mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else
        return false;
    if (v > max / mult || v * mult < min)
        return false;
    *out = v * mult;
    return true;
}

/* An origin's host [":" port] (RFC 6454 §6.1): visible ASCII without the delimiters of a
 * path, query, fragment or userinfo; an IPv6 host in brackets; a port of 1 to 5 digits. */
static bool origin_authority_ok(const char *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] <= 0x20 || a[i] >= 0x7f || strchr("/?#@,", a[i]) != NULL)
            return false;
    size_t host_end = n;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close == NULL || close == a + 1)
            return false;
        host_end = (size_t)(close - a) + 1;
        if (host_end < n && a[host_end] != ':')
            return false;
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon != NULL)
            host_end = (size_t)(colon - a);
    }
    if (host_end == 0)
        return false;
    if (host_end == n)
        return true;
    uint64_t port;
    return parse_digits(a + host_end + 1, n - host_end - 1, 1, 65535, &port) && n - host_end <= 6;
}

/* --allow-origin: "*" alone, or a comma-separated list (spaces around the commas allowed,
 * as upgrade.c's http_list_has() skips them) of http:// or https:// origins, RFC 6454 §6.1's
 * scheme "://" host [":" port] without a path. A page served over HTTP has such an origin
 * (§4); any other entry could never match a browser of ours, or, like "null" (which every
 * sandboxed iframe and file:// page sends), would let in any site: refused, with a reason. */
static bool check_origins(const char *list, char *err, size_t err_len)
{
    const char *p = list;
    size_t count = 0;
    bool has_star = false;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        size_t n = len;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        count++;
        size_t scheme_len = n >= 7 && strncasecmp(p, "http://", 7) == 0    ? 7
                            : n >= 8 && strncasecmp(p, "https://", 8) == 0 ? 8
                                                                           : 0;
        bool is_ok =
            scheme_len > 0 && n > scheme_len && origin_authority_ok(p + scheme_len, n - scheme_len);
        if (n == 0) {
            snprintf(err, err_len, "option '--allow-origin': empty entry in '%s'", list);
            return false;
        }
        if (n == 1 && p[0] == '*') {
            has_star = true;
        } else if (n == 4 && strncasecmp(p, "null", 4) == 0) {
            snprintf(err, err_len,
                     "option '--allow-origin': 'null' is the origin of every sandboxed or file:// "
                     "page, listing it would let any site in (use '*' if that is meant)");
            return false;
        } else if (!is_ok) {
            snprintf(err, err_len,
                     "option '--allow-origin': '%.*s' is not an http:// or https:// origin "
                     "(scheme://host[:port], no path), nor '*'",
                     (int)n, p);
            return false;
        }
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    /* Exactly "*": upgrade.c compares the whole value, so " *" would be a list. */
    if (has_star && (count > 1 || strcmp(list, "*") != 0)) {
        snprintf(err, err_len, "option '--allow-origin': '*' must stand alone");
        return false;
    }
    return true;
}

/* ==== The options: one table for the command line and the config file ==================== */

/* What a value must look like. Each kind is checked in one place, apply(), whichever source
 * the value came from. */
enum opt_kind {
    OPT_BOOL,       /* no value on argv (or =true/=false); "true" or "false" in the file */
    OPT_STRING,     /* any non-empty text; a view into argv or the file */
    OPT_SIZE,       /* a number in [min, max], K/KiB/M/MiB allowed */
    OPT_DURATION,   /* milliseconds in [min, max], written with ms or s (none: s) */
    OPT_PREFIXES,   /* config_parse_prefixes() */
    OPT_LOG_FORMAT, /* text or json */
};

struct config_opt {
    const char *name;     /* the long flag without "--", and the config file's name for it */
    size_t offset, width; /* the struct config member it sets, and its size */
    uint64_t min, max;    /* OPT_SIZE, OPT_DURATION */
    enum opt_kind kind;
    bool is_argv_only; /* --config: a file that names another file is a maze */
};

#define MEMBER(m) offsetof(struct config, m), sizeof(((struct config *)0)->m)

/* The order of the usage text. A new option is one row here (and its lines in the usage
 * text, README.md, docs/wsrelay.1 and docs/wsrelay.conf, which tests hold to this table). */
static const struct config_opt options[] = {
    {"config", MEMBER(config_file), 0, 0, OPT_STRING, true},
    {"host", MEMBER(host), 0, 0, OPT_STRING, false},
    {"port", MEMBER(port), 0, 65535, OPT_SIZE, false},
    {"www", MEMBER(www), 0, 0, OPT_STRING, false},
    {"max-clients", MEMBER(max_clients), 1, CONFIG_MAX_CLIENTS_MAX, OPT_SIZE, false},
    {"max-rooms", MEMBER(max_rooms), 1, CONFIG_MAX_CLIENTS_MAX, OPT_SIZE, false},
    {"max-room-clients", MEMBER(max_room_clients), 1, CONFIG_MAX_CLIENTS_MAX, OPT_SIZE, false},
    {"roster-max", MEMBER(roster_max), 1, CONFIG_MAX_CLIENTS_MAX, OPT_SIZE, false},
    {"send-interval", MEMBER(send_interval_ms), 0, CONFIG_SEND_INTERVAL_MAX_MS, OPT_DURATION,
     false},
    {"max-message", MEMBER(max_message), 1, CONFIG_MAX_MESSAGE_MAX, OPT_SIZE, false},
    {"max-buffer", MEMBER(max_buffer), 1024, CONFIG_MAX_BUFFER_MAX, OPT_SIZE, false},
    {"handshake-timeout", MEMBER(handshake_timeout_ms), 10, CONFIG_DURATION_MAX_MS, OPT_DURATION,
     false},
    {"ping-interval", MEMBER(ping_interval_ms), 0, CONFIG_DURATION_MAX_MS, OPT_DURATION, false},
    {"drain-time", MEMBER(drain_time_ms), 0, CONFIG_DURATION_MAX_MS, OPT_DURATION, false},
    {"max-rate", MEMBER(max_rate), 0, CONFIG_MAX_RATE_MAX, OPT_SIZE, false},
    {"max-byte-rate", MEMBER(max_byte_rate), 0, CONFIG_MAX_BYTE_RATE_MAX, OPT_SIZE, false},
    {"max-connect-rate", MEMBER(max_connect_rate), 0, CONFIG_MAX_RATE_MAX, OPT_SIZE, false},
    {"allow-origin", MEMBER(allow_origin), 0, 0, OPT_STRING, false},
    {"redis", MEMBER(redis_url), 0, 0, OPT_STRING, false},
    {"redis-channel", MEMBER(redis_channel), 0, 0, OPT_STRING, false},
    {"tls-cert", MEMBER(tls_cert), 0, 0, OPT_STRING, false},
    {"tls-key", MEMBER(tls_key), 0, 0, OPT_STRING, false},
    {"token-secret-file", MEMBER(token_secret_file), 0, 0, OPT_STRING, false},
    {"metrics-allow", MEMBER(metrics_allow), 0, 0, OPT_PREFIXES, false},
    {"log-format", MEMBER(log_format), 0, 0, OPT_LOG_FORMAT, false},
    {"quiet", MEMBER(quiet), 0, 0, OPT_BOOL, false},
    {"verbose", MEMBER(verbose), 0, 0, OPT_BOOL, false},
};

#define OPTIONS_N (sizeof options / sizeof options[0])
/* Which options a source set, one bit each. */
_Static_assert(OPTIONS_N <= 64, "the seen masks are uint64_t");

const char *config_option_name(size_t i)
{
    return i < OPTIONS_N ? options[i].name : NULL;
}

static const struct config_opt *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTIONS_N; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Stores v in an unsigned member of `width` bytes; the table's max keeps it in range. */
static void store_uint(void *field, size_t width, uint64_t v)
{
    if (width == sizeof(uint16_t)) {
        uint16_t x = (uint16_t)v;
        memcpy(field, &x, sizeof x);
    } else if (width == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof x);
    } else {
        memcpy(field, &v, sizeof v);
    }
}

/* Sets option o from value (NUL-terminated; NULL: a flag given without one). dashes is how
 * the source spells the name in messages: "--" on the command line, "" in the file. Returns
 * true, or false with a one-line reason in err. */
static bool apply(struct config *cfg, const struct config_opt *o, const char *value,
                  const char *dashes, char *err, size_t err_len)
{
    unsigned char *field = (unsigned char *)cfg + o->offset;
    if (o->kind == OPT_BOOL) {
        bool is_on = value == NULL || strcmp(value, "true") == 0;
        if (!is_on && strcmp(value, "false") != 0) {
            snprintf(err, err_len, "option '%s%s': '%s' is neither true nor false", dashes, o->name,
                     value);
            return false;
        }
        memcpy(field, &is_on, sizeof is_on);
        return true;
    }
    if (value == NULL || value[0] == '\0') {
        snprintf(err, err_len, "option '%s%s' needs a value", dashes, o->name);
        return false;
    }
    uint64_t n = 0;
    char why[160];
    switch (o->kind) {
    case OPT_STRING:
        memcpy(field, &value, sizeof value);
        return true;
    case OPT_SIZE:
        if (!parse_size(value, o->min, o->max, &n)) {
            snprintf(err, err_len, "option '%s%s': '%s' is not a number in %llu..%llu", dashes,
                     o->name, value, (unsigned long long)o->min, (unsigned long long)o->max);
            return false;
        }
        store_uint(field, o->width, n);
        return true;
    case OPT_DURATION:
        if (!parse_duration(value, o->min, o->max, &n)) {
            snprintf(err, err_len, "option '%s%s': '%s' is not a duration in %llums..%llus", dashes,
                     o->name, value, (unsigned long long)o->min, (unsigned long long)o->max / 1000);
            return false;
        }
        store_uint(field, o->width, n);
        return true;
    case OPT_PREFIXES:
        if (config_parse_prefixes(value, (struct config_prefixes *)(void *)field, why, sizeof why) <
            0) {
            snprintf(err, err_len, "option '%s%s': %s", dashes, o->name, why);
            return false;
        }
        return true;
    case OPT_LOG_FORMAT: {
        enum config_log_format f = CONFIG_LOG_TEXT;
        if (strcmp(value, "json") == 0)
            f = CONFIG_LOG_JSON;
        else if (strcmp(value, "text") != 0) {
            snprintf(err, err_len, "option '%s%s': '%s' is neither text nor json", dashes, o->name,
                     value);
            return false;
        }
        memcpy(field, &f, sizeof f);
        return true;
    }
    case OPT_BOOL:
        break; /* handled above */
    }
    return true;
}

/* ==== The command line ==================================================================== */

/* Applies argv[1..argc) to *cfg; each option it sets gets its bit in *seen. */
static enum config_action apply_argv(struct config *cfg, int argc, char *const argv[],
                                     uint64_t *seen, char *err, size_t err_len)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CONFIG_HELP;
        if (strcmp(arg, "--version") == 0)
            return CONFIG_VERSION;
        /* The two short aliases, spelled out so they go through the table like the rest. */
        if (strcmp(arg, "-q") == 0)
            arg = "--quiet";
        else if (strcmp(arg, "-v") == 0)
            arg = "--verbose";
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_len, "unexpected argument '%s'", arg);
            return CONFIG_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct config_opt *o = find_option(name, name_len);
        if (o == NULL) {
            snprintf(err, err_len, "unknown option '--%.*s'", (int)name_len, name);
            return CONFIG_ERROR;
        }
        /* "--flag=VALUE", "--flag VALUE", or, for a flag without a value, "--flag". */
        const char *value = NULL;
        if (eq != NULL)
            value = eq + 1;
        else if (o->kind != OPT_BOOL && i + 1 < argc)
            value = argv[++i];
        if (!apply(cfg, o, value, "--", err, err_len))
            return CONFIG_ERROR;
        *seen |= (uint64_t)1 << (o - options);
    }
    return CONFIG_RUN;
}

/* ==== The config file ===================================================================== */

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* s[0..*len) without the blanks at both ends; returns the new start. */
static char *trim(char *s, size_t *len)
{
    while (*len > 0 && is_blank(s[0])) {
        s++;
        (*len)--;
    }
    while (*len > 0 && is_blank(s[*len - 1]))
        (*len)--;
    return s;
}

/* One line, p[0..len) without its '\n', line number `line`. Returns true, or false with the
 * reason (without the "NAME:LINE: " prefix) in err. first_line[i]: where option i was set, 0
 * if not yet. */
static bool apply_line(struct config *cfg, char *p, size_t len, unsigned line,
                       unsigned first_line[OPTIONS_N], uint64_t *seen, char *err, size_t err_len)
{
    if (len > CONFIG_FILE_LINE_MAX) {
        snprintf(err, err_len, "line longer than %d bytes", CONFIG_FILE_LINE_MAX);
        return false;
    }
    if (len > 0 && p[len - 1] == '\r') /* written on Windows: CRLF */
        len--;
    if (memchr(p, '\0', len) != NULL) {
        snprintf(err, err_len, "NUL byte");
        return false;
    }
    if (!utf8_valid((const uint8_t *)p, len)) {
        snprintf(err, err_len, "not UTF-8 text");
        return false;
    }
    /* Controls would reach a terminal through our own error messages; tab is a blank. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            snprintf(err, err_len, "control character 0x%02x", ch);
            return false;
        }
    }
    p = trim(p, &len);
    if (len == 0 || p[0] == '#')
        return true;

    char *eq = memchr(p, '=', len);
    if (eq == NULL) {
        snprintf(err, err_len, "expected 'name = value'");
        return false;
    }
    size_t name_len = (size_t)(eq - p);
    char *name = trim(p, &name_len);
    size_t value_len = len - (size_t)(eq + 1 - p);
    char *value = trim(eq + 1, &value_len);

    const struct config_opt *o = find_option(name, name_len);
    if (o == NULL) {
        snprintf(err, err_len, "unknown option '%.*s'", (int)name_len, name);
        return false;
    }
    if (o->is_argv_only) {
        snprintf(err, err_len, "'%s' only works on the command line", o->name);
        return false;
    }
    size_t idx = (size_t)(o - options);
    if (first_line[idx] != 0) {
        snprintf(err, err_len, "'%s' set again (first on line %u)", o->name, first_line[idx]);
        return false;
    }
    first_line[idx] = line;
    /* The value's end is inside this line, or at text[len]: the '\n', a blank, a CR or the
     * terminating NUL, none of which the value needs. */
    value[value_len] = '\0';
    if (!apply(cfg, o, value, "", err, err_len))
        return false;
    *seen |= (uint64_t)1 << idx;
    return true;
}

static enum config_action apply_file(struct config *cfg, const struct config_file *f,
                                     uint64_t *seen, char *err, size_t err_len)
{
    assert(f->text[f->len] == '\0'); /* config_file's contract */
    if (f->len > CONFIG_FILE_MAX) {
        snprintf(err, err_len, "%s: larger than %zu bytes", f->name, CONFIG_FILE_MAX);
        return CONFIG_FILE_ERROR;
    }
    char *p = f->text;
    char *end = f->text + f->len;
    static const char bom[] = "\xef\xbb\xbf";
    if (f->len >= 3 && memcmp(p, bom, 3) == 0)
        p += 3;
    unsigned first_line[OPTIONS_N] = {0};
    for (unsigned line = 1; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl != NULL ? nl : end;
        char why[256];
        if (!apply_line(cfg, p, (size_t)(line_end - p), line, first_line, seen, why, sizeof why)) {
            snprintf(err, err_len, "%s:%u: %s", f->name, line, why);
            return CONFIG_FILE_ERROR;
        }
        p = line_end + 1; /* past the end only when nl == NULL: the loop ends */
    }
    return CONFIG_RUN;
}

/* ==== Both, and the checks across options ================================================= */

/* What no single value can tell. */
static enum config_action check(struct config *cfg, char *err, size_t err_len)
{
    if (cfg->quiet && cfg->verbose) {
        snprintf(err, err_len, "--quiet and --verbose contradict each other");
        return CONFIG_ERROR;
    }
    if (cfg->allow_origin != NULL && !check_origins(cfg->allow_origin, err, err_len))
        return CONFIG_ERROR;
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, err_len, "options '--tls-cert' and '--tls-key' go together");
        return CONFIG_ERROR;
    }
    if (cfg->redis_url != NULL) {
        struct config_redis r;
        char why[160];
        if (config_parse_redis_url(cfg->redis_url, &r, why, sizeof why) < 0) {
            snprintf(err, err_len, "option '--redis': %s", why);
            return CONFIG_ERROR;
        }
    }
    /* A channel name travels in every PUBLISH: printable ASCII, no spaces, bounded. */
    size_t channel_len = strlen(cfg->redis_channel);
    bool is_channel_ok = channel_len > 0 && channel_len <= 128;
    for (size_t i = 0; i < channel_len; i++)
        is_channel_ok &= cfg->redis_channel[i] > 0x20 && cfg->redis_channel[i] < 0x7f;
    if (!is_channel_ok) {
        snprintf(err, err_len,
                 "option '--redis-channel': 1 to 128 printable characters, no spaces");
        return CONFIG_ERROR;
    }

    /* A relayed message of the largest size must fit a recipient's empty buffer, header and
     * the server's members (sender, color and a room token's name) included. */
    if (cfg->max_buffer < cfg->max_message + FRAME_HDR_MAX + JSON_REWRITE_GROWTH) {
        snprintf(err, err_len,
                 "--max-buffer (%zu) must exceed --max-message (%zu) by at least %d bytes",
                 cfg->max_buffer, cfg->max_message, FRAME_HDR_MAX + JSON_REWRITE_GROWTH);
        return CONFIG_ERROR;
    }
    return CONFIG_RUN;
}

enum config_action config_parse(struct config *cfg, int argc, char *const argv[], char *err,
                                size_t err_len)
{
    return config_parse_with_file(cfg, argc, argv, NULL, err, err_len);
}

enum config_action config_parse_with_file(struct config *cfg, int argc, char *const argv[],
                                          const struct config_file *file, char *err, size_t err_len)
{
    err[0] = '\0';
    uint64_t from_argv = 0, from_file = 0;

    /* First pass, argv alone: --help, a bad flag and the name of the file come out of it. */
    config_defaults(cfg);
    enum config_action a = apply_argv(cfg, argc, argv, &from_argv, err, err_len);
    if (a != CONFIG_RUN)
        return a;
    if (file == NULL && cfg->config_file != NULL)
        return CONFIG_NEED_FILE;

    if (file != NULL) {
        /* Second pass: the file over the defaults, then argv over the file. */
        config_defaults(cfg);
        a = apply_file(cfg, file, &from_file, err, err_len);
        if (a != CONFIG_RUN)
            return a;
        from_argv = 0;
        a = apply_argv(cfg, argc, argv, &from_argv, err, err_len);
        if (a != CONFIG_RUN)
            return a; /* cannot happen: the first pass took the same argv */
    }
    /* Overriding a level: "--verbose" means verbose even if the file says quiet = true. */
    uint64_t quiet_bit = (uint64_t)1 << (find_option("quiet", 5) - options);
    uint64_t verbose_bit = (uint64_t)1 << (find_option("verbose", 7) - options);
    if (cfg->quiet && (from_argv & quiet_bit) && !(from_argv & verbose_bit))
        cfg->verbose = false;
    if (cfg->verbose && (from_argv & verbose_bit) && !(from_argv & quiet_bit))
        cfg->quiet = false;
    (void)from_file; /* where a value came from matters only for the levels above */
    return check(cfg, err, err_len);
}

/* s[0..len) as a decimal number in [min, max]: digits only, at least one. */
static bool parse_digits(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ascii_is_digit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Copies s[0..len) into out[0..cap) decoding %XX escapes (RFC 3986 §2.1). Returns 0, or -1
 * if an escape is malformed or the result (plus its NUL) does not fit. */
static int copy_decoded(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = ascii_hex_value((unsigned char)s[i + 1]);
            int lo = ascii_hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || hi * 16 + lo == 0) /* a NUL would cut the string */
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

int config_parse_redis_url(const char *url, struct config_redis *out, char *err, size_t err_len)
{
    *out = (struct config_redis){.port = 6379};
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, err_len, "the URL must start with redis://");
        return -1;
    }
    const char *p = url + sizeof scheme - 1;
    const char *end = p + strcspn(p, "/?#"); /* the authority: [userinfo@]host[:port] */

    /* The last '@' ends the userinfo: a password may itself contain '@' (better escaped). */
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon != NULL ? colon : at;
        if (copy_decoded(p, (size_t)(user_end - p), out->user, sizeof out->user) < 0 ||
            (colon != NULL && copy_decoded(colon + 1, (size_t)(at - colon - 1), out->password,
                                           sizeof out->password) < 0)) {
            snprintf(err, err_len, "bad or too long user or password in the URL");
            return -1;
        }
        p = at + 1;
    }

    const char *host_end;
    const char *port_start = NULL;
    if (*p == '[') { /* an IPv6 literal, RFC 3986 §3.2.2 */
        host_end = memchr(p, ']', (size_t)(end - p));
        if (host_end == NULL) {
            snprintf(err, err_len, "unclosed '[' in the host");
            return -1;
        }
        p++;
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                snprintf(err, err_len, "junk after the IPv6 host");
                return -1;
            }
            port_start = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end != NULL)
            port_start = host_end + 1;
        else
            host_end = end;
    }
    size_t host_len = (size_t)(host_end - p);
    if (host_len == 0 || host_len >= sizeof out->host) {
        snprintf(err, err_len, "the URL needs a host (at most %zu characters)",
                 sizeof out->host - 1);
        return -1;
    }
    memcpy(out->host, p, host_len);
    out->host[host_len] = '\0';
    for (size_t i = 0; i < host_len; i++) {
        if (out->host[i] <= 0x20 || out->host[i] >= 0x7f) {
            snprintf(err, err_len, "the host has a space or a non-ASCII byte");
            return -1;
        }
    }

    uint64_t port = out->port;
    if (port_start != NULL &&
        !parse_digits(port_start, (size_t)(end - port_start), 1, 65535, &port)) {
        snprintf(err, err_len, "bad port in the URL");
        return -1;
    }
    out->port = (uint16_t)port;

    /* The path is the database number, and nothing else may follow. */
    if (*end == '/' && end[1] != '\0') {
        uint64_t db;
        if (!parse_digits(end + 1, strlen(end + 1), 0, 100000, &db)) {
            snprintf(err, err_len, "the database after '/' must be a number");
            return -1;
        }
        out->db = (unsigned)db;
    } else if (*end != '\0' && !(*end == '/' && end[1] == '\0')) {
        snprintf(err, err_len, "unexpected '%c' in the URL", *end);
        return -1;
    }
    return 0;
}

/* ---- --metrics-allow: address prefixes ------------------------------------------------- */

/* One entry s[0..len): "addr" or "addr/bits". */
static int parse_prefix(const char *s, size_t len, struct config_prefix *out, char *err,
                        size_t err_len)
{
    char text[INET6_ADDRSTRLEN + 8]; /* the longest address, "/128" and a NUL */
    if (len >= sizeof text) {
        snprintf(err, err_len, "'%.*s...' is too long for an address prefix", 16, s);
        return -1;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    if (strcmp(text, "any") == 0) {
        snprintf(err, err_len, "'any' must stand alone");
        return -1;
    }
    *out = (struct config_prefix){.is_v6 = strchr(text, ':') != NULL};
    unsigned max_bits = out->is_v6 ? 128 : 32;
    uint64_t bits = max_bits;
    char *slash = strchr(text, '/');
    if (slash != NULL) {
        *slash = '\0';
        const char *b = slash + 1;
        size_t b_len = strlen(b);
        /* Decimal, no sign, no leading zero ("/08" is a typo or octal, not 8). */
        if ((b_len > 1 && b[0] == '0') || !parse_digits(b, b_len, 0, max_bits, &bits)) {
            snprintf(err, err_len, "'%.*s': the prefix length after '/' must be 0 to %u", (int)len,
                     s, max_bits);
            return -1;
        }
    }
    if (inet_pton(out->is_v6 ? AF_INET6 : AF_INET, text, out->ip) != 1) {
        snprintf(err, err_len, "'%.*s' is not an IPv4 or IPv6 address or prefix (a.b.c.d/n, x::/n)",
                 (int)len, s);
        return -1;
    }
    out->bits = (uint8_t)bits;
    /* No bit past the prefix may be set: "192.168.1.0/16" names 192.168.0.0/16, and whoever
     * wrote it probably meant /24. Refuse, and say which network the prefix would be. */
    uint8_t net[16] = {0};
    size_t bytes = max_bits / 8;
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? (unsigned)(bits - 8 * i) : 0;
        net[i] = (uint8_t)(out->ip[i] & (0xff00u >> keep));
    }
    if (memcmp(net, out->ip, bytes) != 0) {
        char fixed[INET6_ADDRSTRLEN] = "?";
        inet_ntop(out->is_v6 ? AF_INET6 : AF_INET, net, fixed, sizeof fixed);
        snprintf(err, err_len, "'%.*s' has bits set past the prefix length (the network is %s/%u)",
                 (int)len, s, fixed, (unsigned)bits);
        return -1;
    }
    return 0;
}

int config_parse_prefixes(const char *list, struct config_prefixes *out, char *err, size_t err_len)
{
    *out = (struct config_prefixes){.n = 0};
    if (strcmp(list, "any") == 0) {
        out->is_any = true;
        return 0;
    }
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        int rc = 0;
        if (len == 0) {
            snprintf(err, err_len, "empty entry in '%s'", list);
            rc = -1;
        } else if (memchr(p, ' ', len) != NULL || memchr(p, '\t', len) != NULL) {
            snprintf(err, err_len, "no spaces in the list, please: '%.*s'", (int)len, p);
            rc = -1;
        } else if (out->n == CONFIG_PREFIXES_MAX) {
            snprintf(err, err_len, "more than %d entries", CONFIG_PREFIXES_MAX);
            rc = -1;
        } else {
            rc = parse_prefix(p, len, &out->p[out->n], err, err_len);
        }
        if (rc < 0) {
            *out = (struct config_prefixes){.n = 0};
            return -1;
        }
        out->n++;
        p += len;
        if (*p == '\0')
            return 0;
    }
}

/* The first `bits` bits of ip equal those of the prefix's address. */
static bool prefix_holds(const struct config_prefix *pre, const uint8_t *ip)
{
    size_t whole = pre->bits / 8;
    unsigned rest = pre->bits % 8;
    if (memcmp(pre->ip, ip, whole) != 0)
        return false;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return rest == 0 || (ip[whole] & mask) == pre->ip[whole];
}

bool config_prefixes_match(const struct config_prefixes *set, unsigned version,
                           const uint8_t ip[16])
{
    if (set->is_any)
        return true;
    /* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is the IPv4 address a.b.c.d. Both forms, always. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t v6[16];
    const uint8_t *v4 = NULL;
    if (version == 4) {
        memcpy(v6, mapped, sizeof mapped);
        memcpy(v6 + 12, ip, 4);
        v4 = ip;
    } else if (version == 6) {
        memcpy(v6, ip, 16);
        if (memcmp(ip, mapped, sizeof mapped) == 0)
            v4 = ip + 12;
    } else {
        return false;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct config_prefix *pre = &set->p[i];
        if (pre->is_v6 ? prefix_holds(pre, v6) : v4 != NULL && prefix_holds(pre, v4))
            return true;
    }
    return false;
}
