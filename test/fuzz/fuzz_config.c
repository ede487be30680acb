/* fuzz_config.c: libFuzzer target for config.c: --metrics-allow's prefix list above all, and,
 * cheaply, every other flag value through config_parse().
 *
 * The input is text an operator (or a deployment script with a typo in it) passes on the
 * command line. Each run:
 *   1. parses the input, up to its first NUL, with config_parse_prefixes(), with an error
 *      buffer of an input-derived size (1..160);
 *   2. on success: "any" alone sets is_any and nothing else; otherwise 1..CONFIG_PREFIXES_MAX
 *      entries, one per comma-separated entry, each with bits <= 32 (IPv4) or <= 128 (IPv6)
 *      and no address bit set past its prefix; the list printed back (inet_ntop, "/bits")
 *      parses to the same entries;
 *   3. on failure: a NUL-terminated, non-empty reason that fits the buffer, and a zeroed set
 *      (it matches nobody);
 *   4. matching is consistent, checked against a bit-at-a-time matcher written here: for
 *      addresses derived from the input (random ones, and each prefix's own network with
 *      random host bits, which must match), config_prefixes_match() agrees with it, and an
 *      IPv4 address and its IPv4-mapped IPv6 form (RFC 4291 §2.5.5.2) always get the same
 *      answer;
 *   5. splits the whole input at its NUL bytes into up to 16 arguments and runs
 *      config_parse() on them, then on each flag with the first piece as its value (both
 *      "--flag VALUE" and "--flag=VALUE"): no crash; an error says why in a NUL-terminated
 *      message; an accepted configuration respects every bound config.h states;
 *   6. takes the whole input as a --config file (config_parse_with_file(), the file named
 *      "f"), once alone and once under flags: an error is CONFIG_FILE_ERROR naming "f:" and,
 *      past the size check, a line number no greater than the file's count of lines; an
 *      accepted file gives a configuration within the bounds, whose strings all lie inside
 *      the buffer or argv; the bytes outside values are untouched except newlines, blanks
 *      and CRs turned into NULs.
 * Why: a prefix list that silently means something else than it reads (a /33 taken as /32, a
 * host address widening to a network, "10.0.0.0/8, ::1" dropping its second half) would
 * show the counters to the wrong peers or hide them from the right ones, and a crash on a bad
 * flag is a crash at start-up.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "frame.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ARGS = 16 };

/* The reference matcher: bit i of an address, most significant first. */
static bool bit(const uint8_t *ip, unsigned i)
{
    return (ip[i / 8] >> (7 - i % 8)) & 1;
}

static bool ref_prefix_holds(const struct config_prefix *p, const uint8_t *ip)
{
    for (unsigned i = 0; i < p->bits; i++)
        if (bit(p->ip, i) != bit(ip, i))
            return false;
    return true;
}

/* version 4: ip[0..4); 6: ip[0..16). Both forms of an IPv4 address, as config.h says. */
static bool ref_match(const struct config_prefixes *set, unsigned version, const uint8_t *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (set->is_any)
        return true;
    uint8_t v6[16];
    const uint8_t *v4;
    if (version == 4) {
        memcpy(v6, mapped, 12);
        memcpy(v6 + 12, ip, 4);
        v4 = ip;
    } else {
        memcpy(v6, ip, 16);
        v4 = memcmp(ip, mapped, 12) == 0 ? ip + 12 : NULL;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct config_prefix *p = &set->p[i];
        if (p->is_v6 ? ref_prefix_holds(p, v6) : (v4 != NULL && ref_prefix_holds(p, v4)))
            return true;
    }
    return false;
}

static void check_match(const struct config_prefixes *set, unsigned version, const uint8_t *ip)
{
    uint8_t full[16] = {0};
    memcpy(full, ip, version == 4 ? 4 : 16);
    bool got = config_prefixes_match(set, version, full);
    FUZZ_CHECK(got == ref_match(set, version, full));
    if (version == 4) { /* the same peer seen by a socket listening on "::" */
        uint8_t m[16] = {[10] = 0xff, [11] = 0xff};
        memcpy(m + 12, ip, 4);
        FUZZ_CHECK(config_prefixes_match(set, 6, m) == got);
    }
}

static void random_bytes(struct fuzz_rng *r, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)fuzz_rng_next(r);
}

/* Steps 2 and 4 for an accepted list. */
static void check_accepted(const char *text, const struct config_prefixes *set, struct fuzz_rng *r)
{
    FUZZ_CHECK(set->is_any == (strcmp(text, "any") == 0));
    if (set->is_any) {
        FUZZ_CHECK(set->n == 0);
        return;
    }
    size_t commas = 0;
    for (const char *p = text; *p != '\0'; p++)
        commas += *p == ',';
    FUZZ_CHECK(set->n >= 1 && set->n <= CONFIG_PREFIXES_MAX && set->n == commas + 1);

    static char again[CONFIG_PREFIXES_MAX * (INET6_ADDRSTRLEN + 5) + 1];
    size_t len = 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct config_prefix *p = &set->p[i];
        unsigned max = p->is_v6 ? 128 : 32;
        FUZZ_CHECK(p->bits <= max);
        for (unsigned b = p->bits; b < max; b++)
            FUZZ_CHECK(!bit(p->ip, b)); /* no host bit */
        if (!p->is_v6)
            for (size_t k = 4; k < 16; k++)
                FUZZ_CHECK(p->ip[k] == 0);
        char addr[INET6_ADDRSTRLEN];
        FUZZ_CHECK(inet_ntop(p->is_v6 ? AF_INET6 : AF_INET, p->ip, addr, sizeof addr) != NULL);
        int n = snprintf(again + len, sizeof again - len, "%s%s/%u", i ? "," : "", addr,
                         (unsigned)p->bits);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof again - len);
        len += (size_t)n;

        /* The prefix's own network, with random host bits, is in the set. */
        uint8_t ip[16];
        random_bytes(r, ip, sizeof ip);
        for (unsigned b = 0; b < p->bits; b++) {
            uint8_t m = (uint8_t)(0x80u >> (b % 8));
            ip[b / 8] = (uint8_t)(bit(p->ip, b) ? ip[b / 8] | m : ip[b / 8] & ~m);
        }
        FUZZ_CHECK(config_prefixes_match(set, p->is_v6 ? 6 : 4, ip));
        check_match(set, p->is_v6 ? 6 : 4, ip);
    }
    struct config_prefixes round;
    char err[160];
    FUZZ_CHECK(config_parse_prefixes(again, &round, err, sizeof err) == 0);
    FUZZ_CHECK(round.n == set->n && !round.is_any);
    for (size_t i = 0; i < set->n; i++)
        FUZZ_CHECK(round.p[i].is_v6 == set->p[i].is_v6 && round.p[i].bits == set->p[i].bits &&
                   memcmp(round.p[i].ip, set->p[i].ip, 16) == 0);
}

/* Step 5: an accepted configuration keeps config.h's bounds. */
static void check_config(const struct config *cfg, const char *err, enum config_action a)
{
    if (a == CONFIG_ERROR) {
        FUZZ_CHECK(strlen(err) > 0 && strlen(err) < 256);
        return;
    }
    if (a != CONFIG_RUN)
        return;
    FUZZ_CHECK(cfg->max_clients >= 1 && cfg->max_clients <= CONFIG_MAX_CLIENTS_MAX);
    FUZZ_CHECK(cfg->max_message >= 1 && cfg->max_message <= CONFIG_MAX_MESSAGE_MAX);
    FUZZ_CHECK(cfg->max_buffer >= 1024 && cfg->max_buffer <= CONFIG_MAX_BUFFER_MAX);
    FUZZ_CHECK(cfg->max_buffer >= cfg->max_message + FRAME_HDR_MAX + 128);
    FUZZ_CHECK(cfg->handshake_timeout_ms >= 10 &&
               cfg->handshake_timeout_ms <= CONFIG_DURATION_MAX_MS);
    FUZZ_CHECK(cfg->ping_interval_ms <= CONFIG_DURATION_MAX_MS);
    FUZZ_CHECK(cfg->max_rate <= CONFIG_MAX_RATE_MAX);
    FUZZ_CHECK(cfg->host != NULL && cfg->redis_channel != NULL);
    FUZZ_CHECK(!(cfg->quiet && cfg->verbose));
    FUZZ_CHECK(cfg->metrics_allow.n <= CONFIG_PREFIXES_MAX);
    FUZZ_CHECK(!cfg->metrics_allow.is_any || cfg->metrics_allow.n == 0);
    if (cfg->allow_origin != NULL && strcmp(cfg->allow_origin, "*") != 0) {
        /* Every entry is an http(s) origin: at least its scheme says so. */
        const char *p = cfg->allow_origin;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            FUZZ_CHECK(strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0);
            p = strchr(p, ',');
            if (p == NULL)
                break;
            p++;
        }
    }
}

/* Step 6. */
static bool points_into(const char *s, const char *buf, size_t size)
{
    return s == NULL || (s >= buf && s <= buf + size);
}

static void check_file(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    char *plain[] = {"wsrelay", "--config", "f"};
    char *flags[] = {"wsrelay", "--config=f", "--port", "1", "-v", "--max-message=1K"};
    for (int pass = 0; pass < 2; pass++) {
        memcpy(buf, data, size); /* the parser wrote NULs into the last pass's copy */
        struct config_file f = {.name = "f", .text = buf, .len = size};
        struct config cfg;
        char err[256];
        enum config_action a = pass == 0
                                   ? config_parse_with_file(&cfg, 3, plain, &f, err, sizeof err)
                                   : config_parse_with_file(&cfg, 6, flags, &f, err, sizeof err);
        FUZZ_CHECK(a == CONFIG_RUN || a == CONFIG_ERROR || a == CONFIG_FILE_ERROR);
        if (a == CONFIG_FILE_ERROR) {
            FUZZ_CHECK(strncmp(err, "f:", 2) == 0);
            unsigned long line = strtoul(err + 2, NULL, 10);
            FUZZ_CHECK(line >= 1 && line <= lines);
        }
        check_config(&cfg, err, a);
        if (a != CONFIG_RUN)
            continue;
        if (pass == 1)
            FUZZ_CHECK(cfg.port == 1 && cfg.verbose && !cfg.quiet && cfg.max_message == 1024);
        /* Each string is the file's, argv's or the default. */
        struct config d;
        config_defaults(&d);
        FUZZ_CHECK(points_into(cfg.host, buf, size) || cfg.host == d.host);
        FUZZ_CHECK(points_into(cfg.redis_channel, buf, size) ||
                   cfg.redis_channel == d.redis_channel);
        const char *strings[] = {cfg.www,      cfg.allow_origin, cfg.redis_url,
                                 cfg.tls_cert, cfg.tls_key,      cfg.token_secret_file};
        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
            FUZZ_CHECK(points_into(strings[i], buf, size));
        FUZZ_CHECK(strcmp(cfg.config_file, "f") == 0);
        for (size_t i = 0; i < size; i++)
            FUZZ_CHECK(buf[i] == (char)data[i] ||
                       (buf[i] == '\0' && strchr("\n \t\r", data[i]) != NULL));
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_rng r;
    fuzz_rng_init(&r, data, size);
    char *text = malloc(size + 1); /* the whole input, NUL-terminated: pieces point into it */
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    /* 1-3: the input up to its first NUL as a --metrics-allow value. */
    char err[160];
    size_t err_len = fuzz_rng_range(&r, 1, sizeof err);
    memset(err, 'x', sizeof err);
    struct config_prefixes set;
    memset(&set, 0x5a, sizeof set);
    if (config_parse_prefixes(text, &set, err, err_len) == 0) {
        check_accepted(text, &set, &r);
    } else {
        FUZZ_CHECK(memchr(err, '\0', err_len) != NULL);
        FUZZ_CHECK(err_len == 1 || err[0] != '\0');
        FUZZ_CHECK(!set.is_any && set.n == 0);
    }

    /* 4: addresses from the input. */
    for (int i = 0; i < 4; i++) {
        uint8_t ip[16];
        random_bytes(&r, ip, sizeof ip);
        check_match(&set, 4, ip);
        check_match(&set, 6, ip);
        ip[10] = ip[11] = 0xff; /* a mapped one */
        memset(ip, 0, 10);
        check_match(&set, 6, ip);
    }

    /* 5: the input's NUL-separated pieces as arguments, then the first piece as each flag's
     * value. */
    char *argv[MAX_ARGS + 3] = {"wsrelay"};
    int argc = 1;
    for (size_t at = 0; at <= size && argc < MAX_ARGS + 1;) {
        argv[argc++] = text + at;
        at += strlen(text + at) + 1;
    }
    struct config cfg;
    char cerr[256];
    check_config(&cfg, cerr, config_parse(&cfg, argc, argv, cerr, sizeof cerr));

    static const char *const flags[] = {
        "--host",          "--www",           "--allow-origin", "--redis",
        "--redis-channel", "--metrics-allow", "--port",         "--max-clients",
        "--max-message",   "--max-buffer",    "--max-rate",     "--handshake-timeout",
        "--ping-interval", "--log-format",
    };
    static char joined[64 + 8192 + 1];
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        char *two[] = {"wsrelay", (char *)flags[f], text};
        check_config(&cfg, cerr, config_parse(&cfg, 3, two, cerr, sizeof cerr));
        int n = snprintf(joined, sizeof joined, "%s=%s", flags[f], text);
        if (n > 0 && (size_t)n < sizeof joined) {
            char *one[] = {"wsrelay", joined};
            check_config(&cfg, cerr, config_parse(&cfg, 2, one, cerr, sizeof cerr));
        }
    }

    check_file(data, size);
    free(text);
    return 0;
}
