/* Unit tests for config.c: defaults, every flag, both value forms, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.ping_interval_ms, 30000);
    assert_int_equal(cfg.max_rate, 200);
    assert_null(cfg.allow_origin);
}

static void durations_rates_and_origins(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {"wsrelay",        "--handshake-timeout",
                    "500ms",          "--ping-interval=2",
                    "--max-rate",     "0",
                    "--allow-origin", "https://a.example,https://b.example"};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), CONFIG_RUN);
    assert_int_equal(cfg.handshake_timeout_ms, 500);
    assert_int_equal(cfg.ping_interval_ms, 2000);
    assert_int_equal(cfg.max_rate, 0);
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
        {"--handshake-timeout", "0", NULL},  /* 0 would close every connection at once */
        {"--handshake-timeout", "5m", NULL}, /* minutes: not a unit we take */
        {"--ping-interval", "2h", NULL},
        {"--ping-interval", "3601", NULL}, /* over an hour */
        {"--ping-interval", "-1", NULL},
        {"--max-rate", "1000001", NULL},
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

static void max_buffer_must_hold_a_max_message(void **state)
{
    (void)state;
    struct config cfg;
    char *ok[] = {"wsrelay", "--max-message", "16M", "--max-buffer", "17M"};
    char *bad[] = {"wsrelay", "--max-message", "16M", "--max-buffer", "16M"};
    assert_int_equal(parse(&cfg, ARGC(ok), ok), CONFIG_RUN);
    assert_int_equal(parse(&cfg, ARGC(bad), bad), CONFIG_ERROR);
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
        cmocka_unit_test(max_buffer_must_hold_a_max_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
