/* transport.c: plain TCP under the transport table (see transport.h). */
#include "transport.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

static ssize_t tcp_recv(struct transport *t, void *p, size_t len)
{
    ssize_t n = read(t->fd, p, len);
    return n < 0 ? -errno : n;
}

static ssize_t tcp_send(struct transport *t, const void *p, size_t len, bool more)
{
    /* MSG_NOSIGNAL: a peer that vanished gives EPIPE here, not a SIGPIPE death. MSG_MORE
     * (tcp(7)): a response head and the start of its file leave in one segment, as nginx's
     * tcp_nopush does with TCP_CORK, instead of a small packet of their own; the sendfile()
     * that follows, which sets no such flag, pushes them out. */
    ssize_t n = send(t->fd, p, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    return n < 0 ? -errno : n;
}

static ssize_t tcp_sendfile(struct transport *t, int file_fd, uint64_t *off, size_t len)
{
    off_t o = (off_t)*off;
    ssize_t n = sendfile(t->fd, file_fd, &o, len);
    if (n < 0)
        return -errno;
    *off = (uint64_t)o;
    return n;
}

static void tcp_shutdown_write(struct transport *t)
{
    shutdown(t->fd, SHUT_WR);
}

static void tcp_close(struct transport *t, bool reset)
{
    if (reset)
        net_set_reset_on_close(t->fd);
    close(t->fd);
}

static bool tcp_has_buffered(const struct transport *t)
{
    (void)t;
    return false; /* every byte we have not read is still in the socket, where epoll sees it */
}

const struct transport_ops transport_tcp = {
    .name = "tcp",
    .recv = tcp_recv,
    .send = tcp_send,
    .sendfile = tcp_sendfile,
    .shutdown_write = tcp_shutdown_write,
    .close = tcp_close,
    .has_buffered = tcp_has_buffered,
};

void transport_refuse(int fd, const void *p, size_t len)
{
    /* The socket is fresh and its send buffer empty: a few hundred bytes fit, or are lost,
     * which is acceptable for a refusal. */
    if (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    close(fd);
}
