/* tls.c: the TLS context and the TLS transport (see tls.h).
 *
 * Chapters:
 *   1. The context: files, versions, ALPN, reload
 *   2. The transport: OpenSSL's answers as counts and -errno
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net.h"

enum {
    FILE_CHUNK = 16 * 1024, /* file bytes per SSL_write without kTLS: one full record
                             * (RFC 8446 §5.1: 2^14 bytes of plaintext at most) */
};

/* ==== 1. The context ==================================================================== */

/* OpenSSL's first queued error as one line, the queue emptied: what an operator needs to
 * fix a file ("no start line", "key values mismatch"). */
static void take_ssl_error(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    /* A file that cannot be opened is a system error: its errno says why ("No such file
     * or directory"), where OpenSSL's own tables have no string for it. */
    const char *why = e == 0                ? NULL
                      : ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e))
                                            : ERR_reason_error_string(e);
    snprintf(out, len, "%s", why != NULL ? why : "unknown OpenSSL error");
    ERR_clear_error();
}

/* ALPN (RFC 7301 §3.2): we speak HTTP/1.1 only (a WebSocket upgrade is an HTTP/1.1 request,
 * RFC 6455 §4.1). A client that offers protocols but not this one gets the fatal
 * no_application_protocol alert the RFC asks for, rather than a server that would answer a
 * language it did not ask for. A client that offers none goes on without ALPN. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *in, unsigned in_len, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *picked = NULL;
    if (SSL_select_next_proto(&picked, out_len, ours, sizeof ours - 1, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = picked;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(const char *cert_path, const char *key_path, char *err, size_t err_len)
{
    char why[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        take_ssl_error(why, sizeof why);
        snprintf(err, err_len, "cannot make a TLS context: %s", why);
        return NULL;
    }
    /* TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1). Debian's OpenSSL already
     * enforces security level 2 (2048-bit RSA, no SHA-1 signatures); for 1.2 we also keep
     * only forward-secret AEAD suites, Mozilla's "intermediate" list. 1.3's suites are all
     * of that kind and stay OpenSSL's default. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    /* No compression (CRIME), no renegotiation (a client-driven CPU cost, and gone in 1.3);
     * a peer that closes TCP without close_notify is an end of stream, as plain TCP's FIN
     * is (browsers do it all the time; our framing, not TLS, tells a truncated message);
     * SSL_OP_ENABLE_KTLS lets the kernel encrypt where it can, so sendfile stays zero-copy. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_ENABLE_KTLS);
    /* Partial writes: SSL_write returns what it sent, like send(). A moving buffer: our wbuf
     * may be reallocated between a write that would block and its retry (the bytes are the
     * same; conn_io never changes queued bytes). Released buffers: an idle connection gives
     * OpenSSL's 16 KiB read and write buffers back, so idle memory stays small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    /* Session resumption: tickets (RFC 8446 §4.6.1; OpenSSL's default, keys per context) and
     * the session-ID cache for TLS 1.2 clients, which needs a context id. */
    static const unsigned char sid[] = "wsrelay";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);

    /* The key is judged twice: readable as a key, then matching the certificate. */
    const char *bad = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
        bad = cert_path;
    else if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(ctx) != 1)
        bad = key_path;
    if (bad != NULL) {
        take_ssl_error(why, sizeof why);
        snprintf(err, err_len, "%s: %s", bad, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tls_server_init(struct tls_server *ts, const char *cert_path, const char *key_path, char *err,
                    size_t err_len)
{
    *ts = (struct tls_server){.cert_path = cert_path, .key_path = key_path};
    ts->ctx = make_ctx(cert_path, key_path, err, err_len);
    return ts->ctx != NULL ? 0 : -1;
}

int tls_server_reload(struct tls_server *ts, char *err, size_t err_len)
{
    SSL_CTX *fresh = make_ctx(ts->cert_path, ts->key_path, err, err_len);
    if (fresh == NULL)
        return -1;
    /* Every SSL made from the old context holds a reference (SSL_new), so open connections
     * keep their pair and the old context goes when the last of them does. */
    SSL_CTX_free(ts->ctx);
    ts->ctx = fresh;
    return 0;
}

void tls_server_free(struct tls_server *ts)
{
    SSL_CTX_free(ts->ctx);
    ts->ctx = NULL;
}

int tls_transport(struct tls_server *ts, int fd, struct transport *out)
{
    SSL *ssl = SSL_new(ts->ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_accept_state(ssl); /* the first SSL_read runs the server's side of the handshake */
    *out = (struct transport){.ops = &transport_tls, .fd = fd, .ssl = ssl};
    return 0;
}

/* ==== 2. The transport ================================================================== */

/* What a failed SSL_read/SSL_write means, as -errno. WANT_READ and WANT_WRITE are -EAGAIN
 * (a read that must write first says so in wants_write); a TCP error stays itself; every
 * protocol failure is -EPROTO with OpenSSL's reason in t->why (a static string of its
 * tables, so it outlives the call). */
static ssize_t fail(struct transport *t, SSL *ssl, int rc, bool is_read)
{
    int e = SSL_get_error(ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (is_read)
            t->wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or (IGNORE_UNEXPECTED_EOF) a bare FIN */
        return 0;
    case SSL_ERROR_SYSCALL: {
        int saved = errno;
        ERR_clear_error();
        return saved != 0 ? -saved : -ECONNRESET;
    }
    default: {
        unsigned long err = ERR_get_error();
        int reason = ERR_GET_REASON(err);
        /* nginx's courtesy: a browser pointed at http:// on our TLS port learns why. The
         * request was plain text, so is the answer; the socket is fresh, so it fits. */
        if (reason == SSL_R_HTTP_REQUEST) {
            static const char plain[] = "HTTP/1.1 400 Bad Request\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 47\r\nConnection: close\r\n\r\n"
                                        "400 Bad Request: this port speaks only https.\n";
            ssize_t n = send(t->fd, plain, sizeof plain - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            /* OpenSSL read only a record header's worth: the rest of the request waits in
             * the socket, and closing over unread bytes would send a reset that can destroy
             * our answer before the browser reads it (RFC 9112 §9.6). So take what is there,
             * within a bound; a client still sending after that gets the reset. */
            uint8_t sink[4096];
            for (int i = 0; i < 4 && n >= 0; i++)
                n = recv(t->fd, sink, sizeof sink, MSG_DONTWAIT);
            shutdown(t->fd, SHUT_WR);
        }
        const char *why = ERR_reason_error_string(err);
        t->why = reason == SSL_R_HTTP_REQUEST ? "plain HTTP on the TLS port"
                 : why != NULL                ? why
                                              : "TLS error";
        ERR_clear_error();
        return -EPROTO;
    }
    }
}

/* As many records as fit in len, until OpenSSL needs the socket again: one call takes what
 * a plain read() would have, so a busy sender costs one wake-up either way. */
static ssize_t tls_recv(struct transport *t, void *p, size_t len)
{
    SSL *ssl = t->ssl;
    size_t got = 0;
    t->wants_write = false;
    ERR_clear_error(); /* SSL_get_error reads the thread's queue: stale entries would lie */
    while (got < len) {
        size_t n = 0;
        int rc = SSL_read_ex(ssl, (char *)p + got, len - got, &n);
        if (rc == 1) {
            got += n;
            continue;
        }
        ssize_t r = fail(t, ssl, rc, true);
        /* Bytes already read go up first; the end or the error shows on the next call
         * (an SSL that failed fails again; one that saw close_notify reads 0 again). */
        return got > 0 ? (ssize_t)got : r;
    }
    return (ssize_t)got;
}

/* more is only a hint for TCP's packets (transport.h): OpenSSL writes whole records, so
 * there is nothing to hold back here. */
static ssize_t tls_send(struct transport *t, const void *p, size_t len, bool more)
{
    (void)more;
    SSL *ssl = t->ssl;
    size_t sent = 0;
    ERR_clear_error();
    while (sent < len) {
        size_t n = 0;
        int rc = SSL_write_ex(ssl, (const char *)p + sent, len - sent, &n);
        if (rc == 1) {
            sent += n;
            continue;
        }
        ssize_t r = fail(t, ssl, rc, false);
        /* OpenSSL keeps the record it could not finish: the next call must offer these same
         * bytes again (they stay at the head of wbuf, since nothing was consumed). */
        return sent > 0 ? (ssize_t)sent : r == 0 ? -EPIPE : r;
    }
    return (ssize_t)sent;
}

/* With kTLS the kernel encrypts the file's pages itself (SSL_sendfile); without it the bytes
 * pass through a buffer and SSL_write, one record at a time, as nginx does. A retry after
 * -EAGAIN reads the same offset again, so it offers the same bytes, as OpenSSL requires. */
static ssize_t tls_sendfile(struct transport *t, int file_fd, uint64_t *off, size_t len)
{
    SSL *ssl = t->ssl;
    ERR_clear_error();
    if (BIO_get_ktls_send(SSL_get_wbio(ssl))) {
        ossl_ssize_t n = SSL_sendfile(ssl, file_fd, (off_t)*off, len, 0);
        if (n < 0)
            return fail(t, ssl, -1, false);
        *off += (uint64_t)n;
        return n;
    }
    uint8_t chunk[FILE_CHUNK];
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < sizeof chunk ? len - done : sizeof chunk;
        ssize_t got = pread(file_fd, chunk, want, (off_t)*off);
        if (got < 0)
            return done > 0 ? (ssize_t)done : -errno;
        if (got == 0)
            break; /* the file shrank: conn_io sees 0 and closes */
        ssize_t n = tls_send(t, chunk, (size_t)got, false);
        if (n <= 0)
            return done > 0 ? (ssize_t)done : n;
        *off += (uint64_t)n;
        done += (size_t)n;
        if ((size_t)n < (size_t)got)
            break;
    }
    return (ssize_t)done;
}

/* close_notify first (RFC 8446 §6.1: either side may close by sending it), then the FIN that
 * starts conn_io's lingering close. Before the handshake is over there is nothing to close. */
static void tls_shutdown_write(struct transport *t)
{
    if (SSL_is_init_finished(t->ssl)) {
        ERR_clear_error();
        SSL_shutdown(t->ssl); /* one try: a full socket buffer just loses the alert */
        ERR_clear_error();
    }
    shutdown(t->fd, SHUT_WR);
}

static void tls_close(struct transport *t, bool reset)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
    if (reset)
        net_set_reset_on_close(t->fd);
    close(t->fd);
}

static bool tls_has_buffered(const struct transport *t)
{
    return t->ssl != NULL && SSL_has_pending(t->ssl);
}

const struct transport_ops transport_tls = {
    .name = "tls",
    .recv = tls_recv,
    .send = tls_send,
    .sendfile = tls_sendfile,
    .shutdown_write = tls_shutdown_write,
    .close = tls_close,
    .has_buffered = tls_has_buffered,
};

bool tls_wants_write(const struct transport *t)
{
    return t->ssl != NULL && t->wants_write;
}

bool tls_uses_ktls(const struct transport *t)
{
    return t->ssl != NULL && BIO_get_ktls_send(SSL_get_wbio(t->ssl));
}

const char *tls_version(const struct transport *t)
{
    return t->ssl != NULL && SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}
