/* transport.h: the only code that reads from, writes to, sendfiles into or shuts down a
 * client socket.
 *
 * Owns: a small table of operations per kind of transport (after redis's ConnectionType), so
 * that the rest of the server never calls read(), send(), sendfile() or shutdown() on a
 * client itself. Two kinds: plain TCP (transport.c) and TLS (tls.c), whose operations run
 * OpenSSL over the same descriptor.
 * Does not own: the descriptor's registration with the loop (conn_io.c), socket options
 * (net.c), or deciding when to read or write.
 * Edge: these are system calls. Every operation returns a count or -errno, never sets errno
 * for the caller, and never raises SIGPIPE.
 */
#ifndef WSRELAY_TRANSPORT_H
#define WSRELAY_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct transport;

struct transport_ops {
    const char *name; /* "tcp", "tls" */
    /* Up to len bytes into p: the count (> 0), 0 at the peer's end of stream, or -errno
     * (-EAGAIN: nothing now). */
    ssize_t (*recv)(struct transport *t, void *p, size_t len);
    /* Up to len bytes from p: the count taken (>= 0), or -errno (-EAGAIN: no room now).
     * more: a sendfile() of the same response follows at once, so the kernel may hold these
     * bytes to go out with it (MSG_MORE) instead of in a packet of their own. */
    ssize_t (*send)(struct transport *t, const void *p, size_t len, bool more);
    /* Up to len bytes of file_fd from *off, which advances: the count, or -errno. */
    ssize_t (*sendfile)(struct transport *t, int file_fd, uint64_t *off, size_t len);
    /* Our side is done sending (a FIN after the last byte). */
    void (*shutdown_write)(struct transport *t);
    /* Closes the socket; with reset, with a TCP reset that drops unsent bytes. */
    void (*close)(struct transport *t, bool reset);
    /* Input already read from the socket but not yet handed out (TLS: decrypted or whole
     * records inside OpenSSL). Level-triggered epoll sees only the socket, so conn_io asks
     * this after each read: true means "read me again without waiting". */
    bool (*has_buffered)(const struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd;           /* the socket; -1 once closed */
    void *ssl;        /* TLS: the connection's SSL object; NULL for plain TCP */
    bool wants_write; /* TLS: the last recv needs the socket writable first (tls.h) */
    const char *why;  /* after -EPROTO: a static reason ("tls: wrong version number") */
};

/* Plain TCP. */
extern const struct transport_ops transport_tcp;

/* A transport of the given kind over socket fd. */
static inline struct transport transport_make(const struct transport_ops *ops, int fd)
{
    return (struct transport){.ops = ops, .fd = fd};
}

static inline ssize_t transport_recv(struct transport *t, void *p, size_t len)
{
    return t->ops->recv(t, p, len);
}

static inline ssize_t transport_send(struct transport *t, const void *p, size_t len, bool more)
{
    return t->ops->send(t, p, len, more);
}

static inline ssize_t transport_sendfile(struct transport *t, int file_fd, uint64_t *off,
                                         size_t len)
{
    return t->ops->sendfile(t, file_fd, off, len);
}

static inline void transport_shutdown_write(struct transport *t)
{
    t->ops->shutdown_write(t);
}

static inline bool transport_has_buffered(const struct transport *t)
{
    return t->ops->has_buffered(t);
}

static inline void transport_close(struct transport *t, bool reset)
{
    if (t->fd >= 0)
        t->ops->close(t, reset);
    t->fd = -1;
}

/* Before a connection has a slot (every slot taken): one non-blocking best-effort send of a
 * short refusal on a plain socket, then close (with len 0, only the close: a TLS client
 * could not read a plain refusal). */
void transport_refuse(int fd, const void *p, size_t len);

#endif
