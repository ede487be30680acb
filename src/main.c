/* main.c: wsrelay's entry point. It only wires things together: flags, the config file,
 * logging, server. Reading the config file is here, at the edge, so config.c stays pure. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"

/* The config file's bytes: struct config's strings point into them for the whole run, hence
 * static. One byte more than CONFIG_FILE_MAX tells a file too big from one just at the cap,
 * and one more holds the NUL struct config_file asks for. */
static char file_text[CONFIG_FILE_MAX + 2];

/* Reads path into file_text. Returns its length, or -1 with a reason naming the file in err.
 * A bigger file is refused, not cut: half a config is a different config. */
static ssize_t read_config_file(const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    while (n < CONFIG_FILE_MAX + 1) {
        ssize_t r = read(fd, file_text + n, CONFIG_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > CONFIG_FILE_MAX) {
        snprintf(err, err_len, "%s: larger than %zu bytes", path, CONFIG_FILE_MAX);
        return -1;
    }
    file_text[n] = '\0';
    return (ssize_t)n;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];

    enum config_action a = config_parse(&cfg, argc, argv, err, sizeof err);
    if (a == CONFIG_NEED_FILE) {
        ssize_t len = read_config_file(cfg.config_file, err, sizeof err);
        struct config_file file = {
            .name = cfg.config_file, .text = file_text, .len = len < 0 ? 0 : (size_t)len};
        a = len < 0 ? CONFIG_FILE_ERROR
                    : config_parse_with_file(&cfg, argc, argv, &file, err, sizeof err);
    }
    switch (a) {
    case CONFIG_HELP:
        fputs(config_usage(), stdout);
        return 0;
    case CONFIG_VERSION:
        puts("wsrelay " WSRELAY_VERSION);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "wsrelay: %s\n\n%s", err, config_usage());
        return 2;
    case CONFIG_FILE_ERROR:
        fprintf(stderr, "wsrelay: %s\n", err);
        return 2;
    case CONFIG_NEED_FILE: /* config_parse_with_file() never asks again */
    case CONFIG_RUN:
        break;
    }

    log_set_level(cfg.quiet ? LL_ERROR : cfg.verbose ? LL_DEBUG : LL_INFO);
    log_set_json(cfg.log_format == CONFIG_LOG_JSON);
    return server_run(&cfg);
}
