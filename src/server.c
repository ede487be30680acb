/* server.c: start-up, signals, the tick, the main loop (see server.h). */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h> /* OPENSSL_cleanse */

#include "cluster_sync.h"
#include "conn.h"
#include "conn_io.h"
#include "drain.h"
#include "entropy.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "notify.h"
#include "presence.h"
#include "room.h"
#include "routes.h"
#include "tls.h"
#include "token.h"
#include "www.h"

enum {
    MAX_EVENTS = 256,   /* events fetched per epoll_wait() */
    TICK_MS = 1000,     /* the periodic timer's longest period (tick_interval_ms) */
    SHUTDOWN_MS = 2000, /* SIGTERM: close frames get this long to leave, then we exit */
};

struct server {
    const struct config *cfg;
    struct loop loop;
    struct loop_watch signals, tick;
    struct conn_table conns;
    struct presence presence;
    struct rooms rooms;
    struct metrics metrics;
    struct conn_io io;
    struct routes routes;
    struct cluster_sync cluster;
    struct tls_server tls;
    struct drain drain;
    struct notify notify; /* systemd readiness (Type=notify): no-op without $NOTIFY_SOCKET */
    uint64_t stop_deadline_ms;
    bool has_cluster;
    bool has_tls;
    bool is_draining; /* SIGTERM with --drain-time: closing WebSockets one by one */
    bool is_stopping; /* closing everything, until stop_deadline_ms */
    uint8_t token_secret[TOKEN_SECRET_MAX + 2]; /* room tokens' key (a newline may follow) */
    size_t token_secret_len;                    /* 0: no tokens */
};

/* The end: stop accepting, send every WebSocket client left close 1001 ("going away",
 * RFC 6455 §7.4.1), let HTTP responses in flight finish, and give it all SHUTDOWN_MS before
 * the main loop gives up and exits. */
static void stop_now(struct server *srv)
{
    srv->is_draining = false;
    if (srv->has_cluster)
        cluster_sync_bye(&srv->cluster); /* the other nodes forget our clients at once */
    srv->is_stopping = true;
    srv->rooms.is_muted = true; /* everyone gets a close frame: no storm of leaves */
    srv->stop_deadline_ms = srv->loop.now_ms + SHUTDOWN_MS;
    conn_io_stop(&srv->io);
    char status[128];
    snprintf(status, sizeof status, "stopping: closing %zu connections", srv->conns.nopen);
    notify_stopping(&srv->notify, status);
}

/* --drain-time: instead of closing every WebSocket at once, which sends all their clients to
 * the other nodes in the same second, /healthz turns 503 (a load balancer's health check
 * takes the node out, while the listener stays open to say so), new WebSockets get 503, and
 * the open ones are closed spread evenly over the drain time (drain.h), each client's leave
 * told to its room as usual; then stop_now(). The node stays in the cluster meanwhile: its
 * clients are still here until they are closed. */
static void start_drain(struct server *srv)
{
    size_t open = srv->io.ws_open[CONN_ROUTE_ROOM] + srv->io.ws_open[CONN_ROUTE_ECHO];
    drain_start(&srv->drain, srv->loop.now_ms, srv->cfg->drain_time_ms, open);
    srv->is_draining = true;
    srv->routes.is_draining = true;
    /* STOPPING=1 now, not when the listener closes: `systemctl stop` is under way, and
     * systemd's stop timeout (the unit's TimeoutStopSec) must cover the drain. */
    char status[128];
    snprintf(status, sizeof status, "draining: closing %zu WebSockets over %llu ms", open,
             (unsigned long long)srv->cfg->drain_time_ms);
    notify_stopping(&srv->notify, status);
}

/* The loop's part of a drain: close what is due; at the end (all closed, or none left
 * because they left by themselves), stop. Returns how long the loop may sleep (ms, -1: no
 * limit from the drain). */
static int drain_step(struct server *srv)
{
    uint64_t now = srv->loop.now_ms;
    size_t due = drain_due(&srv->drain, now);
    if (due > srv->drain.closed) {
        size_t want = due - srv->drain.closed;
        size_t done = conn_io_close_websockets(&srv->io, want);
        drain_closed(&srv->drain, want);
        if (done < want) /* none left to close */
            drain_closed(&srv->drain, srv->drain.total);
    }
    int64_t next = drain_next_ms(&srv->drain, now);
    if (next < 0) {
        log_at(LL_INFO, "closed=%zu \"drained\"", srv->drain.total);
        stop_now(srv);
        return 0;
    }
    return next < INT_MAX ? (int)next : INT_MAX;
}

/* SIGINT or SIGTERM: a drain (--drain-time), or at once with --drain-time 0. During a drain,
 * a second signal stops at once; during the stop, it exits at once. SIGHUP: reload TLS. */
static void on_signal(struct loop_watch *w, uint32_t signo)
{
    struct server *srv = w->ctx;
    if (signo == SIGHUP) {
        /* Reload (certbot's deploy hook, systemctl reload): new handshakes get the new pair;
         * a bad file keeps the old one, and says why. */
        char err[512];
        /* RELOADING=1 ... READY=1 (notify.h): the reload is synchronous, so both go out in
         * this one callback, and `systemctl reload` returns once it is done. A failed reload
         * is still READY=1: the server keeps serving with the old pair; STATUS= says so. */
        notify_reloading(&srv->notify);
        if (!srv->has_tls) {
            log_at(LL_INFO, "signal=%u \"SIGHUP: nothing to reload (no --tls-cert)\"", signo);
            notify_ready(&srv->notify, "reloaded: nothing to reload (no TLS)");
        } else if (tls_server_reload(&srv->tls, err, sizeof err) < 0) {
            log_at(LL_ERROR, "signal=%u reason=%s \"TLS reload failed: keeping the old pair\"",
                   signo, log_value_str(err).s);
            notify_ready(&srv->notify,
                         "TLS reload failed: serving with the old pair (see the log)");
        } else {
            log_at(LL_INFO, "signal=%u cert=%s \"TLS certificate and key reloaded\"", signo,
                   log_value_str(srv->cfg->tls_cert).s);
            notify_ready(&srv->notify, "TLS certificate and key reloaded");
        }
        return;
    }
    if (srv->is_stopping) {
        log_at(LL_INFO, "signal=%u \"second signal: stopping now\"", signo);
        srv->stop_deadline_ms = srv->loop.now_ms;
        return;
    }
    if (srv->is_draining) {
        log_at(LL_INFO, "signal=%u left=%zu \"second signal: closing the rest at once\"", signo,
               srv->drain.total - srv->drain.closed);
        stop_now(srv);
        return;
    }
    if (srv->cfg->drain_time_ms > 0) {
        start_drain(srv);
        log_at(LL_INFO, "signal=%u open=%zu websockets=%zu drain_ms=%llu \"draining\"", signo,
               srv->conns.nopen, srv->drain.total, (unsigned long long)srv->cfg->drain_time_ms);
        return;
    }
    log_at(LL_INFO, "signal=%u open=%zu \"shutting down\"", signo, srv->conns.nopen);
    stop_now(srv);
}

static void on_tick(struct loop_watch *w, uint32_t expirations)
{
    struct server *srv = w->ctx;
    (void)expirations;
    if (srv->has_cluster)
        cluster_sync_tick(&srv->cluster, srv->loop.now_ms);
    conn_io_tick(&srv->io, srv->loop.now_ms);
    if (!srv->is_draining && !srv->is_stopping)
        notify_counts(&srv->notify, srv->loop.now_ms, srv->conns.nopen,
                      srv->io.ws_open[CONN_ROUTE_ROOM] + srv->io.ws_open[CONN_ROUTE_ECHO]);
}

/* The www directory: --www as given (the operator's choice), else www_open_default(): the
 * installed PREFIX/share/wsrelay/www for PREFIX/bin/wsrelay, else www/ beside the binary
 * (the source tree), and only along a path no other user can change. Never ./www of the
 * working directory: whoever can write there (a shared /tmp, a user's checkout) could
 * otherwise plant the page an installed server hands to every visitor. Returns an O_PATH
 * directory descriptor or -errno; path[] holds the directory opened (resolved, for the log)
 * or the one tried last. */
static int open_www(const char *flag, char path[PATH_MAX])
{
    if (flag != NULL) {
        snprintf(path, PATH_MAX, "%s", flag);
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        char real[PATH_MAX]; /* the log names the directory served */
        if (realpath(path, real) != NULL)
            snprintf(path, PATH_MAX, "%s", real);
        return fd;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) { /* no /proc (a bare chroot): no way to know where we are installed */
        snprintf(path, PATH_MAX, "(the binary's directory: /proc/self/exe unreadable)");
        return -ENOENT;
    }
    exe[n] = '\0';
    char skipped[PATH_MAX + 128];
    int fd = www_open_default(exe, geteuid(), path, PATH_MAX, skipped, sizeof skipped);
    if (skipped[0] != '\0')
        log_at(LL_WARN, "www=%s \"not serving an untrusted directory; give --www\"",
               log_value_str(skipped).s);
    return fd;
}

/* The room tokens' key (token.h): the bytes of --token-secret-file less one trailing newline
 * (LF or CRLF: what an editor or `echo` leaves), or the value of WSRELAY_TOKEN_SECRET, which
 * keeps it off the command line that every user can read in /proc. Both at once is refused
 * rather than ranked: the operator meant one of them. A key must have TOKEN_SECRET_MIN bytes
 * (RFC 7518 §3.2: at least the hash's 256 bits); a missing, unreadable, empty or short key
 * is an error at start, never a server that silently lets everyone in. Returns 0 (the length
 * in srv->token_secret_len, 0 for no tokens) or -1, logged naming the file. */
static int load_token_secret(struct server *srv)
{
    const char *path = srv->cfg->token_secret_file;
    const char *env = getenv("WSRELAY_TOKEN_SECRET");
    const char *why = NULL;
    size_t n = 0;
    if (path == NULL && env == NULL)
        return 0;
    if (path != NULL && env != NULL) {
        why = "both --token-secret-file and WSRELAY_TOKEN_SECRET are set: give one";
    } else if (path == NULL) {
        n = strlen(env);
        if (n > TOKEN_SECRET_MAX)
            why = "WSRELAY_TOKEN_SECRET is longer than 4096 bytes";
        else
            memcpy(srv->token_secret, env, n);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = 1;
        while (fd >= 0 && got > 0 && n < sizeof srv->token_secret) {
            got = read(fd, srv->token_secret + n, sizeof srv->token_secret - n);
            n += got > 0 ? (size_t)got : 0;
        }
        char probe;
        if (fd < 0 || got < 0)
            why = strerror(errno); /* "No such file or directory", "Permission denied" */
        else if (n == sizeof srv->token_secret && read(fd, &probe, 1) > 0)
            why = "longer than 4096 bytes: is this the right file?";
        if (fd >= 0)
            close(fd);
        if (n > 0 && srv->token_secret[n - 1] == '\n')
            n -= n > 1 && srv->token_secret[n - 2] == '\r' ? 2 : 1;
        if (why == NULL && n > TOKEN_SECRET_MAX)
            why = "longer than 4096 bytes: is this the right file?";
    }
    if (why == NULL && n == 0)
        why = "empty";
    else if (why == NULL && n < TOKEN_SECRET_MIN)
        why = "shorter than 32 bytes (RFC 7518 3.2: at least the 256 bits of SHA-256)";
    if (why != NULL) {
        OPENSSL_cleanse(srv->token_secret, sizeof srv->token_secret);
        if (path != NULL && env == NULL)
            log_at(LL_ERROR, "file=%s \"cannot use the --token-secret-file: %s\"",
                   log_value_str(path).s, log_text_str(why).s);
        else
            log_at(LL_ERROR, "\"cannot use the room token secret: %s\"", log_text_str(why).s);
        return -1;
    }
    srv->token_secret_len = n;
    log_at(LL_INFO, "from=%s \"room tokens required on /ws\"",
           path != NULL ? log_value_str(path).s : "WSRELAY_TOKEN_SECRET");
    return 0;
}

/* The tick checks every timeout, so it runs a few times per shortest timeout: a deadline is
 * then missed by at most a quarter of its length. Never more than once a second, nor more
 * than 100 times. */
static unsigned tick_interval_ms(const struct config *cfg)
{
    uint64_t shortest = CONN_IO_DRAIN_TIMEOUT_MS;
    if (cfg->handshake_timeout_ms < shortest)
        shortest = cfg->handshake_timeout_ms;
    if (cfg->ping_interval_ms > 0 && cfg->ping_interval_ms < shortest)
        shortest = cfg->ping_interval_ms;
    uint64_t tick = shortest / 4;
    if (cfg->redis_url != NULL && tick > CLUSTER_SYNC_TICK_MS)
        tick = CLUSTER_SYNC_TICK_MS; /* the cluster's deadlines, see cluster_sync_tick() */
    return tick > TICK_MS ? TICK_MS : tick < 10 ? 10 : (unsigned)tick;
}

/* Every slot may hold a socket (and, briefly, a file): ask for enough descriptors. */
static int ensure_fd_limit(size_t max_clients)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_clients * 2 + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < need)
        log_at(LL_WARN, "nofile=%llu need=%llu \"descriptor limit is low: raise ulimit -n\"",
               (unsigned long long)rl.rlim_cur, (unsigned long long)need);
    return 0;
}

/* The listening socket, with a clear line for the usual failure. Returns it or -1. */
static int listen_on(const struct config *cfg, uint16_t *port)
{
    int fd = net_listen(cfg->host, cfg->port, 511, port);
    if (fd == -EADDRINUSE)
        log_at(LL_ERROR, "host=%s port=%u \"address already in use: is another wsrelay running?\"",
               log_value_str(cfg->host).s, (unsigned)cfg->port);
    else if (fd < 0)
        log_at(LL_ERROR, "host=%s port=%u \"cannot listen: %s\"", log_value_str(cfg->host).s,
               (unsigned)cfg->port, strerror(-fd));
    return fd < 0 ? -1 : fd;
}

/* The tables, sized once from the flags. Returns 0, or -1 (logged). */
static int make_tables(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    uint64_t seed = 0;
    if (conn_table_init(&srv->conns, cfg->max_clients, CONN_IO_RBUF_LIMIT, cfg->max_buffer,
                        cfg->max_message) < 0 ||
        presence_init(&srv->presence, cfg->max_clients,
                      cfg->redis_url != NULL ? CLUSTER_SYNC_REMOTE_PER_LOCAL * cfg->max_clients : 0,
                      cfg->max_message + JSON_REWRITE_GROWTH) < 0 ||
        entropy_fill(&seed, sizeof seed) < 0 ||
        rooms_init(&srv->rooms, cfg->max_rooms, cfg->max_room_clients, cfg->max_message,
                   cfg->max_buffer, seed, &srv->conns, &srv->presence) < 0) {
        log_at(LL_ERROR, "max_clients=%zu max_rooms=%zu \"out of memory for the tables\"",
               cfg->max_clients, cfg->max_rooms);
        return -1;
    }
    /* A welcome goes into a buffer that already holds the 101 response: leave it room. */
    srv->presence.welcome_max = cfg->max_buffer - 1024;
    srv->rooms.roster_max = cfg->roster_max;
    srv->rooms.send_interval_ms = cfg->send_interval_ms;
    return 0;
}

int server_run(const struct config *cfg)
{
    struct server s = {.cfg = cfg};
    struct server *srv = &s;
    int status = 1;
    bool has_io = false, has_routes = false;
    int www_fd = -1, listen_fd = -1;
    char www_path[PATH_MAX];

    /* SIGPIPE would kill us when a peer vanishes mid-write; errors come back as EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    srv->loop.epfd = -1;
    notify_init(&srv->notify);

    if (load_token_secret(srv) < 0)
        goto out;
    www_fd = open_www(cfg->www, www_path);
    if (www_fd < 0) {
        log_at(LL_ERROR, "www=%s \"cannot open the www directory: %s\"", log_value_str(www_path).s,
               strerror(-www_fd));
        goto out;
    }
    int rc = ensure_fd_limit(cfg->max_clients);
    if (rc < 0)
        log_at(LL_WARN, "\"cannot raise the descriptor limit: %s\"", strerror(-rc));

    if (cfg->tls_cert != NULL) {
        char err[512];
        if (tls_server_init(&srv->tls, cfg->tls_cert, cfg->tls_key, err, sizeof err) < 0) {
            log_at(LL_ERROR, "reason=%s \"cannot load the TLS certificate and key\"",
                   log_value_str(err).s);
            goto out;
        }
        srv->has_tls = true;
    }
    uint16_t port = cfg->port;
    listen_fd = listen_on(cfg, &port);
    if (listen_fd < 0 || make_tables(srv) < 0)
        goto out;
    rc = loop_init(&srv->loop, MAX_EVENTS);
    if (rc == 0) {
        rc = conn_io_init(&srv->io, cfg, &srv->loop, &srv->conns, &srv->metrics, listen_fd,
                          &routes_ops, &srv->routes);
        has_io = true; /* it owns listen_fd now */
        listen_fd = -1;
        srv->io.tls = srv->has_tls ? &srv->tls : NULL;
    }
    if (rc == 0) {
        static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
        rc = loop_add_signals(&srv->loop, &srv->signals, signals, 3, on_signal, srv);
    }
    if (rc == 0)
        rc = loop_add_timer(&srv->loop, &srv->tick, tick_interval_ms(cfg), on_tick, srv);
    if (rc < 0) {
        log_at(LL_ERROR, "\"cannot set up the event loop: %s\"", strerror(-rc));
        goto out;
    }
    has_routes = true;
    if (routes_init(&srv->routes, cfg, &srv->io, &srv->rooms, &srv->metrics, www_fd) < 0) {
        log_at(LL_ERROR, "\"out of memory for the --max-connect-rate table\"");
        goto out;
    }
    srv->routes.token_secret = srv->token_secret;
    srv->routes.token_secret_len = srv->token_secret_len;
    if (cfg->redis_url != NULL) {
        if (cluster_sync_init(&srv->cluster, cfg, &srv->loop, &srv->rooms, &srv->metrics,
                              tick_interval_ms(cfg)) < 0)
            goto out;
        srv->has_cluster = true;
        srv->routes.cluster = &srv->cluster;
    }

    /* The www path may hold a space (a home directory, a --www flag): escaped like a peer's. */
    log_at(LL_INFO, "host=%s port=%u tls=%s www=%s max_clients=%zu \"listening\"",
           log_value_str(cfg->host).s, (unsigned)port, srv->has_tls ? "on" : "off",
           log_value_str(www_path).s, cfg->max_clients);
    /* Ready means: a client can connect and be served. That is now, with --redis too: the
     * rooms of this node work while Redis is down or still connecting (cluster_sync keeps
     * trying, /metrics says wsrelay_redis_up), so waiting for Redis would only turn a Redis
     * outage into a start-up timeout and a restart loop of every node at once. */
    char ready[160];
    snprintf(ready, sizeof ready, "listening on port %u (TLS %s%s)", (unsigned)port,
             srv->has_tls ? "on" : "off", srv->has_cluster ? ", cluster over Redis" : "");
    notify_ready(&srv->notify, ready);

    /* The loop: flush before sleeping, so epoll waits only for what could not be written. */
    for (;;) {
        /* TLS records OpenSSL read ahead: no epoll event will say they are there. */
        conn_io_read_buffered(&srv->io);
        /* A drain's closes that are due, before the flush writes their close frames. */
        int drain_left = srv->is_draining ? drain_step(srv) : -1;
        /* What rooms owe their members first (latest position wins, room.h), then one write
         * to every connection with output. */
        rooms_flush(&srv->rooms, srv->loop.now_ms);
        conn_io_flush(&srv->io);
        /* Leaves queued while reaping changed room sizes; a paced room waits its turn. */
        int timeout = rooms_next_flush_ms(&srv->rooms, srv->loop.now_ms);
        if (conn_io_has_buffered(&srv->io))
            timeout = 0;
        if (drain_left >= 0 && (timeout < 0 || drain_left < timeout))
            timeout = drain_left;
        if (srv->is_stopping) {
            /* Done when every client is gone and our "bye" has reached Redis; or at the
             * deadline, whatever is left. */
            bool is_flushed = !srv->has_cluster || cluster_sync_is_flushed(&srv->cluster);
            if ((srv->conns.nopen == 0 && is_flushed) || srv->loop.now_ms >= srv->stop_deadline_ms)
                break;
            int left = (int)(srv->stop_deadline_ms - srv->loop.now_ms);
            timeout = timeout >= 0 && timeout < left ? timeout : left;
        }
        rc = loop_wait(&srv->loop, timeout);
        if (rc < 0) {
            log_at(LL_ERROR, "\"epoll_wait failed: %s\"", strerror(-rc));
            goto out;
        }
    }
    log_at(LL_INFO, "open=%zu \"stopped\"", srv->conns.nopen);
    status = 0;

out:
    if (srv->loop.epfd >= 0) {
        loop_close_watch(&srv->loop, &srv->signals);
        loop_close_watch(&srv->loop, &srv->tick);
    }
    if (srv->has_cluster)
        cluster_sync_free(&srv->cluster);
    if (has_routes)
        routes_free(&srv->routes);
    rooms_free(&srv->rooms);
    conn_table_free(&srv->conns);
    presence_free(&srv->presence);
    if (has_io)
        conn_io_free(&srv->io);
    if (srv->loop.epfd >= 0)
        loop_free(&srv->loop);
    if (listen_fd >= 0)
        close(listen_fd);
    if (www_fd >= 0)
        close(www_fd);
    OPENSSL_cleanse(srv->token_secret, sizeof srv->token_secret);
    if (srv->has_tls)
        tls_server_free(&srv->tls);
    return status;
}
