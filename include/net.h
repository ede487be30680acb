/* net.h: the few socket calls wsrelay makes, as small helpers (after redis's anet.c).
 *
 * Owns: creating the listening socket, accepting non-blocking connections, socket options,
 * and printing addresses. Every function returns 0 / a descriptor, or -errno: the caller
 * decides what an error means and logs it with context.
 * Edge: these are system calls.
 */
#ifndef WSRELAY_NET_H
#define WSRELAY_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for "[ffff:...:ffff]:65535" and a NUL. */
#define NET_ADDR_STR 64

/* Resolves host (a numeric address, or a name: this may block, so call it at start-up only),
 * binds host:port with SO_REUSEADDR (and IPV6_V6ONLY off for "::", so one socket takes both
 * families) and listens. The socket is non-blocking and close-on-exec.
 * Returns the descriptor, or -errno (-EADDRINUSE: the port is taken; -EADDRNOTAVAIL,
 * -EACCES, ...; -EINVAL if host does not resolve). *bound_port receives the actual port. */
int net_listen(const char *host, uint16_t port, int backlog, uint16_t *bound_port);

/* A peer's address in 20 bytes, kept per connection for logs (a sockaddr_storage is 128,
 * its text up to 64): formatted only when a line is written. */
struct net_addr {
    uint16_t family; /* AF_INET or AF_INET6; 0: unknown */
    uint16_t port;   /* host byte order */
    uint8_t ip[16];  /* IPv4 in the first 4 bytes */
};

/* accept4(NONBLOCK | CLOEXEC). Returns the descriptor or -errno (-EAGAIN: none waiting).
 * Fills *peer. */
int net_accept(int listen_fd, struct net_addr *peer);

/* Formats a peer as "1.2.3.4:80" or "[::1]:80" ("unknown" if family is 0). */
void net_addr_format(const struct net_addr *a, char out[NET_ADDR_STR]);

/* SO_SNDBUF: caps the kernel's send buffer for the socket (Linux doubles the value for its
 * bookkeeping, and turns off its autotuning, which would otherwise let a reader that stopped
 * reading park up to net.ipv4.tcp_wmem's maximum, 4 MiB by default, in kernel memory). */
int net_set_sndbuf(int fd, int bytes);

/* TCP_NODELAY: a cursor update is small and must leave now, not wait for Nagle (RFC 896). */
int net_set_nodelay(int fd);

/* SO_LINGER with a zero timeout: the next close() sends a reset and drops whatever the
 * kernel still holds for the peer, instead of sending it after our FIN (socket(7)). */
int net_set_reset_on_close(int fd);

/* Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ, tcp(7)):
 * what sits in our kernel's send queue. Returns the count, or -errno. So "sent" minus this
 * is what the peer really took, which send()'s return value alone cannot tell. */
long net_unacked(int fd);

#endif
