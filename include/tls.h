/* tls.h: wss:// and https:// on the listener (issue 13): the server's TLS context, and the
 * transport table (transport.h) whose operations run OpenSSL over a client's socket.
 *
 * Owns: the SSL_CTX (certificate chain, key, protocol versions, ALPN, tickets) and its
 * reload, one SSL object per connection, and turning OpenSSL's WANT_READ / WANT_WRITE into
 * what conn_io understands: -EAGAIN, plus two questions it asks after every read
 * (tls_wants_write(): the read can only go on once the socket is writable; and
 * transport_has_buffered(): OpenSSL holds bytes that level-triggered epoll cannot know about).
 * Does not own: when to read or write (conn_io.c), reading the files' names (config.c), or
 * logging (it returns reasons; server.c and conn_io.c log them).
 * Edge: system calls through OpenSSL's socket BIO.
 *
 *   accept ─▶ tls_transport() ─▶ first recv: SSL_read runs the handshake (RFC 8446 §2)
 *          ─▶ recv/send of plaintext ─▶ shutdown_write: close_notify (RFC 8446 §6.1), FIN
 */
#ifndef WSRELAY_TLS_H
#define WSRELAY_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "transport.h"

struct ssl_ctx_st; /* OpenSSL's SSL_CTX: only tls.c includes <openssl/ssl.h> */

struct tls_server {
    struct ssl_ctx_st *ctx; /* for new handshakes; connections hold their own reference */
    const char *cert_path;  /* PEM: the certificate, then its chain */
    const char *key_path;   /* PEM: the private key */
};

/* Loads cert_path and key_path into a new context. Returns 0, or -1 with a one-line reason in
 * err (naming the file, and OpenSSL's reason). */
int tls_server_init(struct tls_server *ts, const char *cert_path, const char *key_path, char *err,
                    size_t err_len);

/* SIGHUP: loads the files again into a new context. On success new handshakes use it and
 * open connections keep the pair they were made with; on failure (-1, reason in err) the old
 * context stays. */
int tls_server_reload(struct tls_server *ts, char *err, size_t err_len);

void tls_server_free(struct tls_server *ts);

/* The TLS operations (recv, send, sendfile, shutdown_write, close). */
extern const struct transport_ops transport_tls;

/* A TLS transport over socket fd, waiting for the client's hello. Returns 0, or -ENOMEM (the
 * caller still owns fd). */
int tls_transport(struct tls_server *ts, int fd, struct transport *out);

/* True if the last recv stopped because OpenSSL must write first (a handshake message the
 * socket would not take): the connection must be read again once the socket is writable. */
bool tls_wants_write(const struct transport *t);

/* After the handshake: does the kernel encrypt for us (kTLS), so that sendfile() stays
 * zero-copy? Else files go through a read buffer and SSL_write. */
bool tls_uses_ktls(const struct transport *t);

/* The negotiated protocol version ("TLSv1.3"), or "" before the handshake. */
const char *tls_version(const struct transport *t);

#endif
