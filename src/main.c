/* main.c: wsrelay's entry point. It only wires things together: flags, logging, server. */
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct config cfg;
    char err[256];

    switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
    case CONFIG_HELP:
        fputs(config_usage(), stdout);
        return 0;
    case CONFIG_VERSION:
        puts("wsrelay " WSRELAY_VERSION);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "wsrelay: %s\n\n%s", err, config_usage());
        return 2;
    case CONFIG_RUN:
        break;
    }

    log_set_level(cfg.quiet ? LL_ERROR : cfg.verbose ? LL_DEBUG : LL_INFO);
    return server_run(&cfg);
}
