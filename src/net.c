/* net.c: socket helpers (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void net_addr_format(const struct net_addr *a, char out[NET_ADDR_STR])
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->family == AF_INET) {
        inet_ntop(AF_INET, a->ip, host, sizeof host);
        snprintf(out, NET_ADDR_STR, "%s:%u", host, (unsigned)a->port);
    } else if (a->family == AF_INET6) {
        inet_ntop(AF_INET6, a->ip, host, sizeof host);
        snprintf(out, NET_ADDR_STR, "[%s]:%u", host, (unsigned)a->port);
    } else {
        snprintf(out, NET_ADDR_STR, "unknown");
    }
}

/* A union says what the casts would hide: one socket address, several views of it. */
union any_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_storage ss;
};

int net_listen(const char *host, uint16_t port, int backlog, uint16_t *bound_port)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo *res;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -EINVAL;

    int err = -EINVAL;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        int one = 1, zero = 0;
        /* SO_REUSEADDR: restart at once even while old connections sit in TIME_WAIT. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
            union any_addr a = {0};
            socklen_t len = sizeof a;
            if (getsockname(fd, &a.sa, &len) == 0)
                *bound_port = ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in.sin_port);
            break;
        }
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : err;
}

int net_accept(int listen_fd, struct net_addr *peer)
{
    union any_addr a = {0};
    socklen_t len = sizeof a;
    int fd = accept4(listen_fd, &a.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    *peer = (struct net_addr){0};
    if (a.sa.sa_family == AF_INET) {
        peer->family = AF_INET;
        peer->port = ntohs(a.in.sin_port);
        memcpy(peer->ip, &a.in.sin_addr, 4);
    } else if (a.sa.sa_family == AF_INET6) {
        peer->family = AF_INET6;
        peer->port = ntohs(a.in6.sin6_port);
        memcpy(peer->ip, &a.in6.sin6_addr, 16);
    }
    return fd;
}

int net_set_sndbuf(int fd, int bytes)
{
    return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == 0 ? 0 : -errno;
}

int net_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 ? 0 : -errno;
}

long net_unacked(int fd)
{
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) < 0)
        return -errno;
    return n;
}

int net_set_reset_on_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0 : -errno;
}
