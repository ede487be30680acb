/* config.c: parsing and validating the command line (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static const char usage[] =
    "usage: wsrelay [options]\n"
    "\n"
    "Serves the shared-cursors page and relays cursor positions over WebSocket.\n"
    "\n"
    "  --host ADDR          address to listen on (default 0.0.0.0)\n"
    "  --port N             TCP port, 0 for any free one (default 7071)\n"
    "  --www DIR            static files (default: www/ beside the binary, or ./www)\n"
    "  --max-clients N      connection slots, allocated at start-up (default 1024)\n"
    "  --max-message BYTES  largest WebSocket message accepted (default 16K)\n"
    "  --max-buffer BYTES   pending output per client before it is dropped (default 1M)\n"
    "  --handshake-timeout TIME  close connections without a complete request (default 10s)\n"
    "  --ping-interval TIME      ping WebSocket clients, drop the silent (default 30s, 0: off)\n"
    "  --max-rate N         /ws messages per second per client, excess dropped (default 200,\n"
    "                       0: off)\n"
    "  --allow-origin LIST  browser origins allowed to open WebSockets: comma-separated\n"
    "                       scheme://host[:port], or * (default: same host as the page)\n"
    "  --quiet              log errors only\n"
    "  --help               show this text\n"
    "  --version            show the version\n"
    "\n"
    "BYTES may end in K or M (KiB, MiB); TIME in ms or s (default s).\n"
    "Paths: / (the page), /ws (the room), /echo, /metrics, /healthz.\n";

const char *config_usage(void)
{
    return usage;
}

void config_defaults(struct config *cfg)
{
    *cfg = (struct config){
        .host = "0.0.0.0",
        .port = 7071,
        .www = NULL,
        .max_clients = 1024,
        .max_message = (size_t)16 * 1024,
        .max_buffer = (size_t)1024 * 1024,
        .handshake_timeout_ms = 10000,
        .ping_interval_ms = 30000,
        .max_rate = 200,
        .allow_origin = NULL,
        .quiet = false,
    };
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

enum config_action config_parse(struct config *cfg, int argc, char *const argv[], char *err,
                                size_t err_len)
{
    config_defaults(cfg);
    size_t port = cfg->port;
    err[0] = '\0';

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CONFIG_HELP;
        if (strcmp(arg, "--version") == 0)
            return CONFIG_VERSION;
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            cfg->quiet = true;
            continue;
        }

        /* Every other flag takes a value: "--flag VALUE" or "--flag=VALUE". */
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_len, "unexpected argument '%s'", arg);
            return CONFIG_ERROR;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            value = NULL;
        }

        /* The flags that take a value: a string (a view into argv), a size or a duration. */
        enum flag_kind { FLAG_STRING, FLAG_SIZE, FLAG_DURATION };
        static const struct {
            const char *name;
            enum flag_kind kind;
            uint64_t min, max;
        } flags[] = {
            {"--host", FLAG_STRING, 0, 0},
            {"--www", FLAG_STRING, 0, 0},
            {"--allow-origin", FLAG_STRING, 0, 0},
            {"--port", FLAG_SIZE, 0, 65535},
            {"--max-clients", FLAG_SIZE, 1, CONFIG_MAX_CLIENTS_MAX},
            {"--max-message", FLAG_SIZE, 1, CONFIG_MAX_MESSAGE_MAX},
            {"--max-buffer", FLAG_SIZE, 1024, CONFIG_MAX_BUFFER_MAX},
            {"--max-rate", FLAG_SIZE, 0, CONFIG_MAX_RATE_MAX},
            {"--handshake-timeout", FLAG_DURATION, 10, CONFIG_DURATION_MAX_MS},
            {"--ping-interval", FLAG_DURATION, 0, CONFIG_DURATION_MAX_MS},
        };
        size_t f = 0;
        while (f < sizeof flags / sizeof flags[0] &&
               !(strlen(flags[f].name) == name_len && strncmp(flags[f].name, arg, name_len) == 0))
            f++;
        if (f == sizeof flags / sizeof flags[0]) {
            snprintf(err, err_len, "unknown option '%.*s'", (int)name_len, arg);
            return CONFIG_ERROR;
        }
        const char *name = flags[f].name;
        if (value == NULL || value[0] == '\0') {
            snprintf(err, err_len, "option '%s' needs a value", name);
            return CONFIG_ERROR;
        }
        uint64_t n = 0;
        if (flags[f].kind == FLAG_SIZE && !parse_size(value, flags[f].min, flags[f].max, &n)) {
            snprintf(err, err_len, "option '%s': '%s' is not a number in %llu..%llu", name, value,
                     (unsigned long long)flags[f].min, (unsigned long long)flags[f].max);
            return CONFIG_ERROR;
        }
        if (flags[f].kind == FLAG_DURATION &&
            !parse_duration(value, flags[f].min, flags[f].max, &n)) {
            snprintf(err, err_len, "option '%s': '%s' is not a duration in %llums..%llus", name,
                     value, (unsigned long long)flags[f].min,
                     (unsigned long long)flags[f].max / 1000);
            return CONFIG_ERROR;
        }

        if (strcmp(name, "--host") == 0)
            cfg->host = value;
        else if (strcmp(name, "--www") == 0)
            cfg->www = value;
        else if (strcmp(name, "--allow-origin") == 0)
            cfg->allow_origin = value;
        else if (strcmp(name, "--port") == 0)
            port = (size_t)n;
        else if (strcmp(name, "--max-clients") == 0)
            cfg->max_clients = (size_t)n;
        else if (strcmp(name, "--max-message") == 0)
            cfg->max_message = (size_t)n;
        else if (strcmp(name, "--max-buffer") == 0)
            cfg->max_buffer = (size_t)n;
        else if (strcmp(name, "--max-rate") == 0)
            cfg->max_rate = n;
        else if (strcmp(name, "--handshake-timeout") == 0)
            cfg->handshake_timeout_ms = n;
        else
            cfg->ping_interval_ms = n;
    }
    cfg->port = (uint16_t)port;

    /* A relayed message of the largest size must fit a recipient's empty buffer, header and
     * the server's sender/color members (about 80 bytes) included. */
    if (cfg->max_buffer < cfg->max_message + FRAME_HDR_MAX + 128) {
        snprintf(err, err_len,
                 "--max-buffer (%zu) must exceed --max-message (%zu) by at least %d bytes",
                 cfg->max_buffer, cfg->max_message, FRAME_HDR_MAX + 128);
        return CONFIG_ERROR;
    }
    return CONFIG_RUN;
}
