/* Unit tests for config.c: defaults, every flag, both value forms, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static enum config_action parse(struct config *cfg, int argc, char *const argv[])
{
    char err[256];
    enum config_action a = config_parse(cfg, argc, argv, err, sizeof err);
    if (a == CONFIG_ERROR)
        assert_true(strlen(err) > 0); /* every refusal says why */
    return a;
}

static void defaults_match_the_issue(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {"wsrelay"};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), CONFIG_RUN);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 7071);
    assert_null(cfg.www);
    assert_int_equal(cfg.max_clients, 1024);
    assert_int_equal(cfg.max_message, 16 * 1024);
    assert_int_equal(cfg.max_buffer, 1024 * 1024);
    assert_false(cfg.quiet);
    assert_false(cfg.verbose);
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.ping_interval_ms, 30000);
    assert_int_equal(cfg.max_rate, 200);
    assert_int_equal(cfg.max_byte_rate, 64 * 1024);
    assert_int_equal(cfg.max_connect_rate, 20);
    assert_null(cfg.allow_origin);
}

static void durations_rates_and_origins(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {"wsrelay",
                    "--handshake-timeout",
                    "500ms",
                    "--ping-interval=2",
                    "--max-rate",
                    "0",
                    "--max-byte-rate=1M",
                    "--allow-origin",
                    "https://a.example,https://b.example"};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), CONFIG_RUN);
    assert_int_equal(cfg.handshake_timeout_ms, 500);
    assert_int_equal(cfg.ping_interval_ms, 2000);
    assert_int_equal(cfg.max_rate, 0);
    assert_int_equal(cfg.max_byte_rate, 1024 * 1024);
    assert_string_equal(cfg.allow_origin, "https://a.example,https://b.example");
    char *off[] = {"wsrelay", "--ping-interval", "0", "--handshake-timeout", "3s"};
    assert_int_equal(parse(&cfg, ARGC(off), off), CONFIG_RUN);
    assert_int_equal(cfg.ping_interval_ms, 0);
    assert_int_equal(cfg.handshake_timeout_ms, 3000);
}

static void every_flag_in_both_forms(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {
        "wsrelay",          "--host",        "127.0.0.1", "--port=8080",       "--www",  "/srv/www",
        "--max-clients=10", "--max-message", "64K",       "--max-buffer=2MiB", "--quiet"};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), CONFIG_RUN);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.www, "/srv/www");
    assert_int_equal(cfg.max_clients, 10);
    assert_int_equal(cfg.max_message, 64 * 1024);
    assert_int_equal(cfg.max_buffer, 2 * 1024 * 1024);
    assert_true(cfg.quiet);
    char *verbose[] = {"wsrelay", "--verbose"};
    assert_int_equal(parse(&cfg, ARGC(verbose), verbose), CONFIG_RUN);
    assert_true(cfg.verbose && !cfg.quiet);
    char *v[] = {"wsrelay", "-v"};
    assert_int_equal(parse(&cfg, ARGC(v), v), CONFIG_RUN);
    assert_true(cfg.verbose);
}

static void help_and_version(void **state)
{
    (void)state;
    struct config cfg;
    char *help[] = {"wsrelay", "--port", "1", "--help"};
    char *version[] = {"wsrelay", "--version"};
    assert_int_equal(parse(&cfg, ARGC(help), help), CONFIG_HELP);
    assert_int_equal(parse(&cfg, ARGC(version), version), CONFIG_VERSION);
    assert_non_null(strstr(config_usage(), "--max-buffer"));
}

static void port_zero_and_bounds(void **state)
{
    (void)state;
    struct config cfg;
    char *zero[] = {"wsrelay", "--port", "0"};
    char *max[] = {"wsrelay", "--port", "65535"};
    assert_int_equal(parse(&cfg, ARGC(zero), zero), CONFIG_RUN);
    assert_int_equal(cfg.port, 0);
    assert_int_equal(parse(&cfg, ARGC(max), max), CONFIG_RUN);
    assert_int_equal(cfg.port, 65535);
    char *suffix[] = {"wsrelay", "--port", "1K"}; /* suffixes apply to every number */
    assert_int_equal(parse(&cfg, ARGC(suffix), suffix), CONFIG_RUN);
    assert_int_equal(cfg.port, 1024);
}

static void refusals(void **state)
{
    (void)state;
    /* Each row is one argv that must be refused with CONFIG_ERROR. */
    static const char *const rows[][4] = {
        {"--bogus", NULL},
        {"-x", NULL},
        {"stray", NULL},
        {"--port", NULL},          /* missing value */
        {"--port=", NULL},         /* empty value */
        {"--port", "70000", NULL}, /* out of range */
        {"--port", "-1", NULL},    /* strtoull would wrap this */
        {"--port", " 80", NULL},   /* leading space */
        {"--port", "80x", NULL},   /* trailing junk */
        {"--max-clients", "0", NULL},
        {"--max-clients", "1000001", NULL},
        {"--max-message", "0", NULL},
        {"--max-message", "65M", NULL},
        {"--max-message", "18446744073709551616", NULL}, /* 2^64: overflow */
        {"--max-buffer", "100", NULL},                   /* under 1 KiB */
        {"--max-buffer", "16K", NULL},                   /* cannot hold one 16 KiB message */
        {"--quiet=yes", NULL},
        {"--verbose=yes", NULL},
        {"--quiet", "--verbose", NULL}, /* which one? */
        {"-v", "-q", NULL},
        {"--handshake-timeout", "0", NULL},  /* 0 would close every connection at once */
        {"--handshake-timeout", "5m", NULL}, /* minutes: not a unit we take */
        {"--ping-interval", "2h", NULL},
        {"--ping-interval", "3601", NULL}, /* over an hour */
        {"--ping-interval", "-1", NULL},
        {"--max-rate", "1000001", NULL},
        {"--max-byte-rate", "2048M", NULL}, /* over 1 GiB/s */
        {"--max-connect-rate", "1000001", NULL},
        {"--max-connect-rate", "x", NULL},
        {"--max-byte-rate", "-1", NULL},
        {"--allow-origin", NULL},
        /* --allow-origin lists http(s) origins only (RFC 6454 §4, §6.1), or "*" alone. */
        {"--allow-origin", "evil://a.example", NULL},
        {"--allow-origin", "ws://a.example", NULL},
        {"--allow-origin", "null", NULL}, /* every sandboxed iframe sends it */
        {"--allow-origin", "http://a.example,null", NULL},
        {"--allow-origin", "a.example", NULL}, /* no scheme */
        {"--allow-origin", "http://", NULL},   /* no host */
        {"--allow-origin", "http://a.example/", NULL},
        {"--allow-origin", "http://a.example/path", NULL},
        {"--allow-origin", "http://user@a.example", NULL},
        {"--allow-origin", "http://a.example:", NULL},
        {"--allow-origin", "http://a.example:x", NULL},
        {"--allow-origin", "http://a.example:65536", NULL},
        {"--allow-origin", "http://[::1", NULL},
        {"--allow-origin", "http://[::1]x", NULL},
        {"--allow-origin", "http://a b", NULL},
        {"--allow-origin", "http:/a.example", NULL},
        {"--allow-origin", "*,http://a.example", NULL},
        /* regressions/config/allow_origin_tab_star: config.c trimmed it to "*", upgrade.c
         * compares the whole value and took it for a list that matches nothing. */
        {"--allow-origin", "\t*", NULL},
        {"--allow-origin", " *", NULL},
        {"--allow-origin", "http://a.example,,http://b.example", NULL},
        {"--allow-origin", "http://a.example,", NULL},
        {"--allow-origin", " ", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *argv[5] = {"wsrelay"};
        int argc = 1;
        for (size_t j = 0; j < 4 && rows[i][j] != NULL; j++)
            argv[argc++] = (char *)rows[i][j];
        struct config cfg;
        print_message("row %zu: %s %s\n", i, rows[i][0], rows[i][1] ? rows[i][1] : "");
        assert_int_equal(parse(&cfg, argc, argv), CONFIG_ERROR);
    }
}

static void allow_origin_takes_http_and_https_origins_or_star(void **state)
{
    (void)state;
    static const char *const good[] = {
        "*",
        "http://a.example",
        "https://a.example:8443",
        "HTTPS://A.Example",
        "http://[::1]:7071",
        "http://127.0.0.1:7071,https://b.example",
        "https://a.example, https://b.example", /* spaces around commas, as http_list_has */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config cfg;
        char *argv[] = {"wsrelay", "--allow-origin", (char *)good[i]};
        print_message("good %zu: %s\n", i, good[i]);
        assert_int_equal(parse(&cfg, ARGC(argv), argv), CONFIG_RUN);
        assert_string_equal(cfg.allow_origin, good[i]);
    }
    /* The refusal names the entry and what an entry must be. */
    struct config cfg;
    char err[256];
    char *argv[] = {"wsrelay", "--allow-origin", "https://a.example,evil://b.example"};
    assert_int_equal(config_parse(&cfg, ARGC(argv), argv, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "'evil://b.example'"));
    assert_non_null(strstr(err, "http:// or https://"));
}

/* ---- --metrics-allow ------------------------------------------------------------------- */

struct prefix_row {
    const char *text;
    size_t n;       /* entries parsed */
    bool is_v6;     /* of the first entry */
    unsigned bits;  /* of the first entry */
    uint8_t ip[16]; /* of the first entry */
};

static const struct prefix_row GOOD_PREFIXES[] = {
    {"127.0.0.0/8", 1, false, 8, {127}},
    {"10.0.0.0/8,192.168.0.0/16", 2, false, 8, {10}},
    {"192.168.1.7", 1, false, 32, {192, 168, 1, 7}}, /* a bare address: /32 */
    {"0.0.0.0/0", 1, false, 0, {0}},
    {"255.255.255.255/32", 1, false, 32, {255, 255, 255, 255}},
    {"::1", 1, true, 128, {[15] = 1}}, /* a bare address: /128 */
    {"::/0", 1, true, 0, {0}},
    {"fd00::/8", 1, true, 8, {0xfd}},
    {"2001:DB8::/32", 1, true, 32, {0x20, 0x01, 0x0d, 0xb8}}, /* hex in any case */
    {"::ffff:10.0.0.0/104", 1, true, 104, {[10] = 0xff, [11] = 0xff, [12] = 10}},
    {"1.2.3.0/24,::1,fe80::/10", 3, false, 24, {1, 2, 3}},
    {"10.0.0.0/8,10.0.0.0/8", 2, false, 8, {10}}, /* repeats are harmless */
};

static const char *const BAD_PREFIXES[] = {
    "10.0.0.0/33",
    "::/129",
    "1.2.3.4/",
    "/8",
    "10.0.0.0/08",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/8/8",
    "10.0.0.0/8 ",
    " 10.0.0.0/8",
    "10.0.0.0/8, ::1",
    "10.0.0.0/8,",
    ",10.0.0.0/8",
    "10.0.0.0/8,,::1",
    ",",
    "",
    "garbage",
    "localhost",
    "10.0.0",
    "10.0.0.0.0",
    "256.0.0.0/8",
    "1.2.3.04",
    "10.0.0.1/8",
    "192.168.1.0/16",
    "::1/64",
    "fe80::1/10",
    "1:2:3:4:5:6:7:8:9",
    "fe80::1%eth0",
    "any,::1",
    "::1,any",
    "ANY",
    "10.0.0.0/8\t",
    "0x7f.0.0.1",
    "1.2.3.4/32a",
    "1.2.3.4/3 2",
    "1.2.3.4/999999999999999999999",
};

static void metrics_allow_parses_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof GOOD_PREFIXES / sizeof GOOD_PREFIXES[0]; i++) {
        const struct prefix_row *row = &GOOD_PREFIXES[i];
        struct config_prefixes set;
        char err[160] = "";
        print_message("good %zu: %s\n", i, row->text);
        assert_int_equal(config_parse_prefixes(row->text, &set, err, sizeof err), 0);
        assert_false(set.is_any);
        assert_int_equal(set.n, row->n);
        assert_int_equal(set.p[0].is_v6, row->is_v6);
        assert_int_equal(set.p[0].bits, row->bits);
        assert_memory_equal(set.p[0].ip, row->ip, row->is_v6 ? 16 : 4);
    }
    struct config_prefixes set;
    char err[160];
    assert_int_equal(config_parse_prefixes("any", &set, err, sizeof err), 0);
    assert_true(set.is_any);
    assert_int_equal(set.n, 0);
}

static void metrics_allow_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD_PREFIXES / sizeof BAD_PREFIXES[0]; i++) {
        struct config_prefixes set;
        memset(&set, 0x5a, sizeof set);
        char err[160] = "";
        print_message("bad %zu: '%s'\n", i, BAD_PREFIXES[i]);
        assert_int_equal(config_parse_prefixes(BAD_PREFIXES[i], &set, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
        assert_false(set.is_any); /* zeroed on failure: matches nobody */
        assert_int_equal(set.n, 0);
    }
    /* Host bits set: refused, and the message names the network that was probably meant. */
    struct config_prefixes set;
    char err[160];
    assert_int_equal(config_parse_prefixes("192.168.1.0/16", &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "192.168.0.0/16"));
    assert_int_equal(config_parse_prefixes("fe80::1/10", &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "fe80::/10"));
}

static void metrics_allow_caps_the_list(void **state)
{
    (void)state;
    char list[CONFIG_PREFIXES_MAX * 16 + 16] = "";
    size_t len = 0;
    for (int i = 0; i < CONFIG_PREFIXES_MAX; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s10.%d.0.0/16", i ? "," : "", i);
    struct config_prefixes set;
    char err[160];
    assert_int_equal(config_parse_prefixes(list, &set, err, sizeof err), 0);
    assert_int_equal(set.n, CONFIG_PREFIXES_MAX);
    snprintf(list + len, sizeof list - len, ",10.99.0.0/16"); /* one more */
    assert_int_equal(config_parse_prefixes(list, &set, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than"));
    assert_int_equal(set.n, 0);
}

struct match_row {
    const char *allow;
    unsigned version;
    uint8_t ip[16];
    bool is_in;
};

#define V4(a, b, c, d)                                                                             \
    4,                                                                                             \
    {                                                                                              \
        a, b, c, d                                                                                 \
    }
#define MAPPED(a, b, c, d)                                                                         \
    6,                                                                                             \
    {                                                                                              \
        [10] = 0xff, [11] = 0xff, [12] = a, [13] = b, [14] = c, [15] = d                           \
    }

static const struct match_row MATCH_ROWS[] = {
    {CONFIG_METRICS_ALLOW_DEFAULT, V4(127, 0, 0, 1), true},
    {CONFIG_METRICS_ALLOW_DEFAULT, V4(127, 255, 255, 254), true},
    {CONFIG_METRICS_ALLOW_DEFAULT, V4(128, 0, 0, 1), false},
    {CONFIG_METRICS_ALLOW_DEFAULT, V4(10, 0, 0, 1), false},
    {CONFIG_METRICS_ALLOW_DEFAULT, 6, {[15] = 1}, true},        /* ::1 */
    {CONFIG_METRICS_ALLOW_DEFAULT, 6, {[15] = 2}, false},       /* ::2 */
    {CONFIG_METRICS_ALLOW_DEFAULT, MAPPED(127, 0, 0, 1), true}, /* listening on "::" */
    {CONFIG_METRICS_ALLOW_DEFAULT, MAPPED(192, 0, 2, 1), false},
    {CONFIG_METRICS_ALLOW_DEFAULT, 6, {[11] = 0xff, [12] = 127, [15] = 1}, false}, /* not mapped */
    {"10.0.0.0/8", V4(10, 200, 3, 4), true},
    {"10.0.0.0/8", V4(11, 0, 0, 0), false},
    {"10.0.0.0/8", MAPPED(10, 1, 2, 3), true},
    {"192.168.0.0/23", V4(192, 168, 1, 255), true},
    {"192.168.0.0/23", V4(192, 168, 2, 0), false},
    {"172.16.0.0/12", V4(172, 31, 255, 255), true},
    {"172.16.0.0/12", V4(172, 32, 0, 0), false},
    {"0.0.0.0/0", V4(203, 0, 113, 9), true},
    {"0.0.0.0/0", 6, {0x20, 0x01, 0x0d, 0xb8}, false}, /* all of IPv4, no IPv6 */
    {"::/0", 6, {0x20, 0x01, 0x0d, 0xb8}, true},
    {"::/0", V4(1, 2, 3, 4), true},                 /* ::ffff:1.2.3.4 is in ::/0 too */
    {"::ffff:10.0.0.0/104", V4(10, 9, 9, 9), true}, /* an IPv4 peer in its mapped form */
    {"::ffff:10.0.0.0/104", V4(11, 9, 9, 9), false},
    {"fd00::/8", 6, {0xfd, 0x12}, true},
    {"fd00::/8", 6, {0xfc, 0x12}, false},
    {"fe80::/10", 6, {0xfe, 0xbf}, true},
    {"fe80::/10", 6, {0xfe, 0xc0}, false},
    {"1.2.3.4", V4(1, 2, 3, 4), true},
    {"1.2.3.4", V4(1, 2, 3, 5), false},
    {"any", V4(1, 2, 3, 4), true},
    {"any", 0, {0}, true},
    {"0.0.0.0/0,::/0", 0, {0}, false}, /* unknown family: only "any" lets it in */
};

static void metrics_allow_matches(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MATCH_ROWS / sizeof MATCH_ROWS[0]; i++) {
        const struct match_row *row = &MATCH_ROWS[i];
        struct config_prefixes set;
        char err[160];
        assert_int_equal(config_parse_prefixes(row->allow, &set, err, sizeof err), 0);
        if (config_prefixes_match(&set, row->version, row->ip) != row->is_in)
            fail_msg("row %zu (%s): expected %s", i, row->allow, row->is_in ? "in" : "out");
    }
}

static void metrics_allow_flag(void **state)
{
    (void)state;
    struct config cfg;
    char *dflt[] = {"wsrelay"};
    assert_int_equal(parse(&cfg, ARGC(dflt), dflt), CONFIG_RUN);
    assert_int_equal(cfg.metrics_allow.n, 2); /* 127.0.0.0/8 and ::1 */
    assert_false(cfg.metrics_allow.is_any);
    char *any[] = {"wsrelay", "--metrics-allow=any"};
    assert_int_equal(parse(&cfg, ARGC(any), any), CONFIG_RUN);
    assert_true(cfg.metrics_allow.is_any);
    char *list[] = {"wsrelay", "--metrics-allow", "10.0.0.0/8,fd00::/8"};
    assert_int_equal(parse(&cfg, ARGC(list), list), CONFIG_RUN);
    assert_int_equal(cfg.metrics_allow.n, 2);
    char err[256];
    char *bad[] = {"wsrelay", "--metrics-allow", "10.0.0.0/33"};
    assert_int_equal(config_parse(&cfg, ARGC(bad), bad, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--metrics-allow"));
    char *none[] = {"wsrelay", "--metrics-allow"};
    assert_int_equal(parse(&cfg, ARGC(none), none), CONFIG_ERROR);
}

static void max_buffer_must_hold_a_max_message(void **state)
{
    (void)state;
    struct config cfg;
    char *ok[] = {"wsrelay", "--max-message", "16M", "--max-buffer", "17M"};
    char *bad[] = {"wsrelay", "--max-message", "16M", "--max-buffer", "16M"};
    assert_int_equal(parse(&cfg, ARGC(ok), ok), CONFIG_RUN);
    assert_int_equal(parse(&cfg, ARGC(bad), bad), CONFIG_ERROR);
}

/* --token-secret-file takes a path (server.c reads and judges the file: config is pure). */
static void token_secret_file_flag(void **state)
{
    (void)state;
    struct config cfg;
    char *dflt[] = {"wsrelay"};
    assert_int_equal(parse(&cfg, ARGC(dflt), dflt), CONFIG_RUN);
    assert_null(cfg.token_secret_file);
    char *two[] = {"wsrelay", "--token-secret-file", "/run/secrets/k"};
    assert_int_equal(parse(&cfg, ARGC(two), two), CONFIG_RUN);
    assert_string_equal(cfg.token_secret_file, "/run/secrets/k");
    char *eq[] = {"wsrelay", "--token-secret-file=k.txt"};
    assert_int_equal(parse(&cfg, ARGC(eq), eq), CONFIG_RUN);
    assert_string_equal(cfg.token_secret_file, "k.txt");
    char *none[] = {"wsrelay", "--token-secret-file"};
    assert_int_equal(parse(&cfg, ARGC(none), none), CONFIG_ERROR);
    char *empty[] = {"wsrelay", "--token-secret-file="};
    assert_int_equal(parse(&cfg, ARGC(empty), empty), CONFIG_ERROR);
    assert_non_null(strstr(config_usage(), "--token-secret-file"));
    assert_non_null(strstr(config_usage(), "WSRELAY_TOKEN_SECRET"));
}

/* --tls-cert and --tls-key: paths (server.c loads and judges them), and only together. */
static void tls_flags_go_together(void **state)
{
    (void)state;
    struct config cfg;
    char *dflt[] = {"wsrelay"};
    assert_int_equal(parse(&cfg, ARGC(dflt), dflt), CONFIG_RUN);
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
    char *both[] = {"wsrelay", "--tls-cert", "c.pem", "--tls-key=k.pem"};
    assert_int_equal(parse(&cfg, ARGC(both), both), CONFIG_RUN);
    assert_string_equal(cfg.tls_cert, "c.pem");
    assert_string_equal(cfg.tls_key, "k.pem");
    char err[200];
    char *cert_only[] = {"wsrelay", "--tls-cert", "c.pem"};
    assert_int_equal(config_parse(&cfg, ARGC(cert_only), cert_only, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "go together"));
    char *key_only[] = {"wsrelay", "--tls-key", "k.pem"};
    assert_int_equal(parse(&cfg, ARGC(key_only), key_only), CONFIG_ERROR);
    char *empty[] = {"wsrelay", "--tls-cert=", "--tls-key", "k.pem"};
    assert_int_equal(parse(&cfg, ARGC(empty), empty), CONFIG_ERROR);
    assert_non_null(strstr(config_usage(), "--tls-cert"));
}

/* ---- --config: the file ------------------------------------------------------------------ */

/* Parses text as the file "t.conf" under argv; the text is copied into a buffer that lives
 * until the next call (struct config's strings point into it). */
static char file_buf[CONFIG_FILE_MAX + 2];

static enum config_action parse_file_argv(struct config *cfg, const char *text, size_t len,
                                          int argc, char *const argv[], char *err, size_t err_len)
{
    assert_true(len <= CONFIG_FILE_MAX + 1);
    memcpy(file_buf, text, len);
    file_buf[len] = '\0';
    struct config_file f = {.name = "t.conf", .text = file_buf, .len = len};
    return config_parse_with_file(cfg, argc, argv, &f, err, err_len);
}

static enum config_action parse_file(struct config *cfg, const char *text, char *err,
                                     size_t err_len)
{
    char *argv[] = {"wsrelay", "--config", "t.conf"};
    return parse_file_argv(cfg, text, strlen(text), ARGC(argv), argv, err, err_len);
}

static void config_flag_asks_for_the_file(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    char *argv[] = {"wsrelay", "--port", "1", "--config", "/etc/wsrelay/wsrelay.conf"};
    assert_int_equal(config_parse(&cfg, ARGC(argv), argv, err, sizeof err), CONFIG_NEED_FILE);
    assert_string_equal(cfg.config_file, "/etc/wsrelay/wsrelay.conf");
    char *eq[] = {"wsrelay", "--config=x.conf"};
    assert_int_equal(config_parse(&cfg, ARGC(eq), eq, err, sizeof err), CONFIG_NEED_FILE);
    assert_string_equal(cfg.config_file, "x.conf");
    /* A bad flag, --help and --version still answer first, and --config needs a value. */
    char *bad[] = {"wsrelay", "--config", "x.conf", "--prot", "1"};
    assert_int_equal(config_parse(&cfg, ARGC(bad), bad, err, sizeof err), CONFIG_ERROR);
    char *help[] = {"wsrelay", "--config", "x.conf", "--help"};
    assert_int_equal(config_parse(&cfg, ARGC(help), help, err, sizeof err), CONFIG_HELP);
    char *none[] = {"wsrelay", "--config"};
    assert_int_equal(config_parse(&cfg, ARGC(none), none, err, sizeof err), CONFIG_ERROR);
    /* "--host --config": --config is the host's value, not an option. */
    char *as_value[] = {"wsrelay", "--host", "--config"};
    assert_int_equal(config_parse(&cfg, ARGC(as_value), as_value, err, sizeof err), CONFIG_RUN);
}

static void good_files(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    /* Every kind of value, comments, blanks, CRLF, tabs, a '#' inside a value, a BOM. */
    const char *text = "\xef\xbb\xbf# wsrelay.conf\n"
                       "\n"
                       "   # indented comment\n"
                       "host = 127.0.0.1\n"
                       "port=8080\r\n"
                       "\twww\t=\t/srv/my www/#1  \n"
                       "max-message = 64K\n"
                       "max-buffer = 2MiB\n"
                       "handshake-timeout = 500ms\n"
                       "metrics-allow = 10.0.0.0/8,::1\n"
                       "allow-origin = https://a.example, https://b.example\n"
                       "log-format = json\n"
                       "verbose = true\n"
                       "quiet = false\n"
                       "token-secret-file = /etc/wsrelay/secret"; /* no final newline */
    assert_int_equal(parse_file(&cfg, text, err, sizeof err), CONFIG_RUN);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.www, "/srv/my www/#1");
    assert_int_equal(cfg.max_message, 64 * 1024);
    assert_int_equal(cfg.max_buffer, 2 * 1024 * 1024);
    assert_int_equal(cfg.handshake_timeout_ms, 500);
    assert_int_equal(cfg.metrics_allow.n, 2);
    assert_string_equal(cfg.allow_origin, "https://a.example, https://b.example");
    assert_int_equal(cfg.log_format, CONFIG_LOG_JSON);
    assert_true(cfg.verbose);
    assert_false(cfg.quiet);
    assert_string_equal(cfg.token_secret_file, "/etc/wsrelay/secret");
    assert_string_equal(cfg.config_file, "t.conf");

    /* Empty files and files of comments are the defaults. */
    const char *empties[] = {"", "\n", "# only a comment", "\n\n  \t\n#x\r\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        assert_int_equal(parse_file(&cfg, empties[i], err, sizeof err), CONFIG_RUN);
        assert_int_equal(cfg.port, 7071);
        assert_string_equal(cfg.host, "0.0.0.0");
    }
    /* A line of exactly CONFIG_FILE_LINE_MAX bytes is fine. */
    static char longline[CONFIG_FILE_LINE_MAX + 2];
    memset(longline, ' ', CONFIG_FILE_LINE_MAX);
    memcpy(longline, "redis-channel = c", 17);
    longline[CONFIG_FILE_LINE_MAX] = '\n';
    assert_int_equal(parse_file(&cfg, longline, err, sizeof err), CONFIG_RUN);
    assert_string_equal(cfg.redis_channel, "c");
}

static void flags_override_the_file_wherever_they_stand(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *text = "port = 8080\nhost = 10.0.0.1\nquiet = true\nmax-rate = 5\n";
    char *before[] = {"wsrelay", "--port", "9090", "--config", "t.conf", "--verbose"};
    assert_int_equal(
        parse_file_argv(&cfg, text, strlen(text), ARGC(before), before, err, sizeof err),
        CONFIG_RUN);
    assert_int_equal(cfg.port, 9090);          /* the flag, given before --config */
    assert_string_equal(cfg.host, "10.0.0.1"); /* the file, where no flag says otherwise */
    assert_int_equal(cfg.max_rate, 5);
    assert_true(cfg.verbose); /* --verbose wins over the file's quiet = true */
    assert_false(cfg.quiet);
    char *after[] = {"wsrelay", "--config=t.conf", "--port=1"};
    assert_int_equal(parse_file_argv(&cfg, text, strlen(text), ARGC(after), after, err, sizeof err),
                     CONFIG_RUN);
    assert_int_equal(cfg.port, 1);
    assert_true(cfg.quiet);
    /* Both levels on the command line still contradict each other; in the file too. */
    char *both[] = {"wsrelay", "--config=t.conf", "-q", "-v"};
    assert_int_equal(parse_file_argv(&cfg, text, strlen(text), ARGC(both), both, err, sizeof err),
                     CONFIG_ERROR);
    assert_int_equal(parse_file(&cfg, "quiet = true\nverbose = true\n", err, sizeof err),
                     CONFIG_ERROR);
    assert_non_null(strstr(err, "contradict"));
    /* The checks across options see the merged result: the key from the file, the cert from
     * the flag. */
    const char *key = "tls-key = k.pem\n";
    char *cert[] = {"wsrelay", "--config=t.conf", "--tls-cert=c.pem"};
    assert_int_equal(parse_file_argv(&cfg, key, strlen(key), ARGC(cert), cert, err, sizeof err),
                     CONFIG_RUN);
    assert_string_equal(cfg.tls_key, "k.pem");
    assert_string_equal(cfg.tls_cert, "c.pem");
    char *no_cert[] = {"wsrelay", "--config=t.conf"};
    assert_int_equal(
        parse_file_argv(&cfg, key, strlen(key), ARGC(no_cert), no_cert, err, sizeof err),
        CONFIG_ERROR);
}

static void bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len;      /* 0: strlen(text) */
        const char *err; /* the whole message */
    } rows[] = {
        {"prot = 1\n", 0, "t.conf:1: unknown option 'prot'"},
        {"# c\n\nport = 80x\n", 0, "t.conf:3: option 'port': '80x' is not a number in 0..65535"},
        {"port = 1\nhost = h\nport = 2\n", 0, "t.conf:3: 'port' set again (first on line 1)"},
        {"port 8080\n", 0, "t.conf:1: expected 'name = value'"},
        {"= 8080\n", 0, "t.conf:1: unknown option ''"},
        {"port =\n", 0, "t.conf:1: option 'port' needs a value"},
        {"port = \"8080\"\n", 0, "t.conf:1: option 'port': '\"8080\"' is not a number in 0..65535"},
        {"config = other.conf\n", 0, "t.conf:1: 'config' only works on the command line"},
        {"help = true\n", 0, "t.conf:1: unknown option 'help'"},
        {"--port = 1\n", 0, "t.conf:1: unknown option '--port'"},
        {"Port = 1\n", 0, "t.conf:1: unknown option 'Port'"},
        {"quiet\n", 0, "t.conf:1: expected 'name = value'"},
        {"quiet = yes\n", 0, "t.conf:1: option 'quiet': 'yes' is neither true nor false"},
        {"quiet =\n", 0, "t.conf:1: option 'quiet': '' is neither true nor false"},
        {"log-format = xml\n", 0, "t.conf:1: option 'log-format': 'xml' is neither text nor json"},
        {"max-clients = 0\n", 0,
         "t.conf:1: option 'max-clients': '0' is not a number in 1..1000000"},
        {"ping-interval = 2h\n", 0,
         "t.conf:1: option 'ping-interval': '2h' is not a duration in 0ms..3600s"},
        {"metrics-allow = 10.0.0.1/8\n", 0,
         "t.conf:1: option 'metrics-allow': '10.0.0.1/8' has bits set past the prefix length "
         "(the network is 10.0.0.0/8)"},
        {"port = 1\nhost = a\0b\n", 19, "t.conf:2: NUL byte"},
        {"host = caf\xe9\n", 0, "t.conf:1: not UTF-8 text"},
        {"host = \xc0\xaf\n", 0, "t.conf:1: not UTF-8 text"}, /* overlong '/' */
        {"host = a\x1b[31m\n", 0, "t.conf:1: control character 0x1b"},
        {"host = a\rb\n", 0, "t.conf:1: control character 0x0d"},
        {"host = a\x7f\n", 0, "t.conf:1: control character 0x7f"},
        {"# \x01\n", 0, "t.conf:1: control character 0x01"}, /* comments too: any line */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct config cfg;
        char err[256];
        char *argv[] = {"wsrelay", "--config", "t.conf"};
        size_t len = rows[i].len != 0 ? rows[i].len : strlen(rows[i].text);
        enum config_action a =
            parse_file_argv(&cfg, rows[i].text, len, ARGC(argv), argv, err, sizeof err);
        if (a != CONFIG_FILE_ERROR || strcmp(err, rows[i].err) != 0)
            fail_msg("row %zu: got %d '%s', want '%s'", i, a, err, rows[i].err);
    }

    /* Too long: a line of CONFIG_FILE_LINE_MAX + 1 bytes, and a file past CONFIG_FILE_MAX. */
    struct config cfg;
    char err[256];
    char *argv[] = {"wsrelay", "--config", "t.conf"};
    static char big[CONFIG_FILE_MAX + 2];
    memset(big, 'x', CONFIG_FILE_LINE_MAX + 1);
    memcpy(big, "host = ", 7);
    big[CONFIG_FILE_LINE_MAX + 1] = '\n';
    assert_int_equal(
        parse_file_argv(&cfg, big, CONFIG_FILE_LINE_MAX + 2, ARGC(argv), argv, err, sizeof err),
        CONFIG_FILE_ERROR);
    assert_string_equal(err, "t.conf:1: line longer than 4096 bytes");
    memset(big, '\n', sizeof big);
    assert_int_equal(
        parse_file_argv(&cfg, big, CONFIG_FILE_MAX + 1, ARGC(argv), argv, err, sizeof err),
        CONFIG_FILE_ERROR);
    assert_string_equal(err, "t.conf: larger than 65536 bytes");
    /* Just at the cap: fine. */
    assert_int_equal(parse_file_argv(&cfg, big, CONFIG_FILE_MAX, ARGC(argv), argv, err, sizeof err),
                     CONFIG_RUN);
    /* A tight error buffer is cut, still terminated. */
    char tiny[8];
    assert_int_equal(parse_file(&cfg, "prot = 1\n", tiny, sizeof tiny), CONFIG_FILE_ERROR);
    assert_string_equal(tiny, "t.conf:");
}

/* The same checks on both sides: every value the command line refuses, the file refuses
 * with the same words. */
static void the_file_and_the_flags_share_their_checks(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"port", "65536"},       {"max-buffer", "1MB"},        {"max-rooms", "0"},
        {"send-interval", "2s"}, {"metrics-allow", "any,::1"}, {"quiet", "maybe"},
        {"log-format", "JSON"},  {"handshake-timeout", "1ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char flag_err[256], file_err[256], arg[64], text[64];
        snprintf(arg, sizeof arg, "--%s=%s", cases[i][0], cases[i][1]);
        char *argv[] = {"wsrelay", arg};
        assert_int_equal(config_parse(&cfg, ARGC(argv), argv, flag_err, sizeof flag_err),
                         CONFIG_ERROR);
        snprintf(text, sizeof text, "%s = %s\n", cases[i][0], cases[i][1]);
        assert_int_equal(parse_file(&cfg, text, file_err, sizeof file_err), CONFIG_FILE_ERROR);
        /* "option '--port': ..." and "t.conf:1: option 'port': ...": the same but for the
         * prefix and the dashes. */
        char want[300];
        const char *rest = strstr(flag_err, cases[i][0]);
        assert_non_null(rest);
        snprintf(want, sizeof want, "t.conf:1: option '%s", rest);
        if (strcmp(file_err, want) != 0)
            fail_msg("%s: file says '%s', flag says '%s'", cases[i][0], file_err, flag_err);
    }
}

static void usage_names_every_option(void **state)
{
    (void)state;
    size_t n = 0;
    for (const char *name; (name = config_option_name(n)) != NULL; n++) {
        char flag[64];
        snprintf(flag, sizeof flag, "  --%s ", name);
        if (strstr(config_usage(), flag) == NULL)
            fail_msg("usage text lacks '%s'", flag);
    }
    assert_int_equal(n, 27); /* a new option: add it here, knowing the docs need it too */
    assert_null(config_option_name(n));
}

static void log_format_flag(void **state)
{
    (void)state;
    struct config cfg;
    char *json[] = {"wsrelay", "--log-format", "json"};
    assert_int_equal(parse(&cfg, ARGC(json), json), CONFIG_RUN);
    assert_int_equal(cfg.log_format, CONFIG_LOG_JSON);
    char *text[] = {"wsrelay", "--log-format=text"};
    assert_int_equal(parse(&cfg, ARGC(text), text), CONFIG_RUN);
    assert_int_equal(cfg.log_format, CONFIG_LOG_TEXT);
    char *none[] = {"wsrelay"};
    assert_int_equal(parse(&cfg, ARGC(none), none), CONFIG_RUN);
    assert_int_equal(cfg.log_format, CONFIG_LOG_TEXT);
    char *bad[] = {"wsrelay", "--log-format", "xml"};
    assert_int_equal(parse(&cfg, ARGC(bad), bad), CONFIG_ERROR);
    /* Booleans take =true/=false on the command line too, and never the next argument. */
    char *q[] = {"wsrelay", "--quiet=false", "--verbose=true"};
    assert_int_equal(parse(&cfg, ARGC(q), q), CONFIG_RUN);
    assert_false(cfg.quiet);
    assert_true(cfg.verbose);
    char *next[] = {"wsrelay", "--quiet", "true"};
    assert_int_equal(parse(&cfg, ARGC(next), next), CONFIG_ERROR); /* "true": a stray argument */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_match_the_issue),
        cmocka_unit_test(every_flag_in_both_forms),
        cmocka_unit_test(durations_rates_and_origins),
        cmocka_unit_test(help_and_version),
        cmocka_unit_test(port_zero_and_bounds),
        cmocka_unit_test(refusals),
        cmocka_unit_test(allow_origin_takes_http_and_https_origins_or_star),
        cmocka_unit_test(metrics_allow_parses_prefixes),
        cmocka_unit_test(metrics_allow_refusals),
        cmocka_unit_test(metrics_allow_caps_the_list),
        cmocka_unit_test(metrics_allow_matches),
        cmocka_unit_test(metrics_allow_flag),
        cmocka_unit_test(max_buffer_must_hold_a_max_message),
        cmocka_unit_test(token_secret_file_flag),
        cmocka_unit_test(tls_flags_go_together),
        cmocka_unit_test(config_flag_asks_for_the_file),
        cmocka_unit_test(good_files),
        cmocka_unit_test(flags_override_the_file_wherever_they_stand),
        cmocka_unit_test(bad_files),
        cmocka_unit_test(the_file_and_the_flags_share_their_checks),
        cmocka_unit_test(usage_names_every_option),
        cmocka_unit_test(log_format_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
