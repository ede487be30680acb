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
    "  --quiet              log errors only\n"
    "  --help               show this text\n"
    "  --version            show the version\n"
    "\n"
    "BYTES may end in K or M (KiB, MiB). Paths: / (the page), /ws (the room), /echo.\n";

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

        /* Each flag writes either a string (a view into argv) or a bounded number. */
        const struct {
            const char *name;
            const char **str;
            size_t *num;
            uint64_t min, max;
        } flags[] = {
            {"--host", &cfg->host, NULL, 0, 0},
            {"--www", &cfg->www, NULL, 0, 0},
            {"--port", NULL, &port, 0, 65535},
            {"--max-clients", NULL, &cfg->max_clients, 1, CONFIG_MAX_CLIENTS_MAX},
            {"--max-message", NULL, &cfg->max_message, 1, CONFIG_MAX_MESSAGE_MAX},
            {"--max-buffer", NULL, &cfg->max_buffer, 1024, CONFIG_MAX_BUFFER_MAX},
        };
        size_t f = 0;
        while (f < sizeof flags / sizeof flags[0] &&
               !(strlen(flags[f].name) == name_len && strncmp(flags[f].name, arg, name_len) == 0))
            f++;
        if (f == sizeof flags / sizeof flags[0]) {
            snprintf(err, err_len, "unknown option '%.*s'", (int)name_len, arg);
            return CONFIG_ERROR;
        }
        if (value == NULL || value[0] == '\0') {
            snprintf(err, err_len, "option '%s' needs a value", flags[f].name);
            return CONFIG_ERROR;
        }
        if (flags[f].str != NULL) {
            *flags[f].str = value;
            continue;
        }
        uint64_t n;
        if (!parse_size(value, flags[f].min, flags[f].max, &n)) {
            snprintf(err, err_len, "option '%s': '%s' is not a number in %llu..%llu", flags[f].name,
                     value, (unsigned long long)flags[f].min, (unsigned long long)flags[f].max);
            return CONFIG_ERROR;
        }
        *flags[f].num = (size_t)n;
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
