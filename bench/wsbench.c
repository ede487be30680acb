/* wsbench.c: wsrelay's load generator (issue 4). One process, one thread, one epoll loop
 * driving many WebSocket clients, and one JSON line at the end.
 *
 * Owns: opening and driving the clients, measuring what the server does with them, reading
 * the server's CPU time and memory from /proc, and the report. Five modes:
 *
 *   cursor  N clients each send {"x","y","t","i"} at R Hz and receive everyone's messages:
 *           deliveries per second, loss after a drain, latency percentiles, and per-pair
 *           freshness (below)
 *   fanout  S senders send as fast as a window of unanswered messages allows, N receivers:
 *           delivered frames per second
 *   idle    N connections held open: the server's RSS per connection
 *   churn   C concurrent cycles of connect + handshake + close: cycles per second
 *   storm   N clients connect at once (issue 12's join storm): time until every one is
 *           connected and welcomed, each client's view checked against --roster-max's rule,
 *           and with rooms the time until every client knows its whole room (below)
 *   handshake  (--tls) C concurrent cycles of connect + full TLS 1.3 handshake + close:
 *           handshakes per second, against any TLS server (no HTTP is spoken; below)
 *
 * It is a real RFC 6455 client, not a replay of canned bytes: a fresh Sec-WebSocket-Key per
 * connection and a check of the Sec-WebSocket-Accept that comes back (§4.1, §4.2.2); every
 * frame it sends is masked with a fresh key (§5.3); every frame it receives is checked (FIN
 * set, RSV clear, a known opcode, no mask, the length in its shortest form: §5.2; text is
 * UTF-8: §8.1); pings are answered (§5.5.2) and connections end with the closing handshake
 * (§7.1.2). A frame that breaks a rule counts as a bad frame and fails that one connection
 * (§7.1.7); the run goes on.
 *
 * What counts. A message whose text starts with {"type": is a server message (wsrelay's
 * welcome, join, leave) and counts as "other"; any other text with a "t" member is a
 * delivery, with latency = arrival time - t. In cursor mode t is the *scheduled* send time
 * (open loop), so lateness anywhere, ours included, shows as latency; our own share is
 * reported apart as send_lag_*. Only messages whose t falls in the measured period count as
 * sent or received, so nothing from the warm-up or the drain leaks into the numbers.
 *
 * Several nodes (issue 5). --port takes a list: connection i connects to the (i mod count)-th
 * port, so clients are spread evenly over the nodes of a cluster. Each cursor and fanout
 * message then also carries its sender's node (the index of its port) as "n", and every
 * measured delivery is counted, and its latency recorded, as same-node ("local": sender and
 * receiver on one node) or cross-node (through the backplane: Redis here). --server-pid takes
 * a list too (the server's CPU and RSS are then the sums over the nodes, each also reported),
 * and --redis-pid names one more process whose CPU and RSS are reported apart. With one
 * port nothing of this shows: the messages and the report are what they were.
 *
 * Rooms (issue 11). --rooms N puts connection i in room r = i mod N: it opens
 * <path>/r<r> (wsrelay's /ws/<room>) instead of <path>. Each cursor and fanout message then
 * also carries its sender's room as "r", and a client expects exactly the messages of its
 * own room's members: expected, received and loss are counted room by room (and summed),
 * each room keeps a small latency histogram of its own (the report gives the worst room's
 * loss and p99 beside the overall figures), and a delivery that names another room, or
 * none, is not a delivery at all but an error, counted as "foreign". Two more things change
 * with rooms, both so that nothing lines a room up with a node by accident: connections open
 * in a random order (a balancer that assigns by arrival, round robin or leastconn, would
 * otherwise put every member of a room on one node whenever the node count divides N), and
 * with several ports the k-th member of a room (k = i div N) uses port k mod count, so every
 * room is spread over the nodes as evenly as its size allows. --rooms 0, the default, is
 * the single room at <path>, exactly as before.
 *
 * Freshness (issue 12, "latest position wins"). Each cursor message also carries its
 * sender's connection index as "i", right after "t", so a receiver tells senders apart
 * without reading their UUIDs. Every receiver keeps, per member of its room, the "t" of the
 * newest position it holds from that member (4 bytes a pair: N^2 for a room of N, bounded by
 * FRESH_PAIRS_MAX; past it freshness is skipped and the report says so). Every 50 ms of the
 * measured period, each (receiver, moving sender) pair is sampled: age = now - t of the
 * newest position held, the receiver's own echo excluded; a pair that holds nothing yet
 * counts its age since the senders began (the start of the warm-up) and is also counted
 * apart as "never". Latency says how late the positions that arrived were; freshness says
 * how stale what a page would draw is, the figure that stays honest when a server drops
 * superseded positions (fewer, fresher deliveries) or queues them (every one, late). At R Hz
 * the age includes the wait for the sender's next send: its median is about 1/(2R) even on
 * a perfect relay. A position older than one already held from that sender is counted as
 * "reordered" (issue 12: never an older position after a newer one).
 *
 * Batched frames (--batch, issue 12). The handshake offers Sec-WebSocket-Protocol:
 * wsrelay.batch; a connection whose 101 echoes it parses each text frame as a JSON array of
 * messages (a small depth- and string-aware scanner splits the top-level elements) and
 * handles each element as a seed frame. A server that does not echo it gets seed-protocol
 * clients: the report counts how many got batch. Frames and messages received are counted
 * apart. Frames over SMALL_MAX are assembled (up to ASSEMBLE_MAX each) on batch connections
 * and in storm mode, where they must be read; elsewhere they are streamed as before.
 *
 * Join storm (storm mode). Every client starts its connect at once, with at most --inflight
 * handshakes (connect to 101) in flight, so the server's listen backlog (511 for wsrelay) is
 * not overrun into the kernel's SYN retry timer. Each client's welcome is checked against
 * docs/protocol.md's rule: at most --roster-max peers, a "count" when it does not list the
 * whole room (known to be incomplete when it lists fewer peers than the clients of that room
 * we had seen welcomed before this one sent its request), a count of at least peers + 1. With
 * roster tracking (rooms small enough: ROSTER_ENTRIES_MAX), each client keeps the set of ids
 * it knows (welcome peers + joins + movers - leaves) and notes when it reaches its room's
 * size: the time until every roster is complete. The server's CPU seconds over the storm and
 * its peak RSS (sampled VmRSS, and VmHWM) are reported. Peers without a welcome
 * (--no-welcome): a client counts as done at its 101.
 *
 * TLS (--tls, issue 13). Every connection speaks TLS 1.3 (RFC 8446) before its HTTP: the
 * same client for every mode, offering X25519 only (§4.2.7), ALPN http/1.1, and a fresh
 * SSL from a context with no session cache, so no handshake is ever resumed; the tickets a
 * server sends (§4.6.1) are read and dropped. The certificate is checked only against
 * --tls-ca. Non-blocking throughout: SSL_ERROR_WANT_READ/WANT_WRITE become the epoll
 * interest, and since OpenSSL reads whole records, bytes it holds that we have not read
 * (SSL_has_pending) put the connection on a list read again before the loop sleeps, which
 * level-triggered epoll, seeing only the socket, would never report. The handshake mode
 * counts a cycle when, after its Finished, our close_notify (§6.1) has been answered by the
 * server's close: the server has then done all its work for it, not just the flight that
 * ends the client's side (a TLS 1.3 client is done one flight before the server). It reports
 * handshakes per second and per server CPU second.
 *
 * Our own CPU. getrusage() over the measured period (the storm for storm), as a share of one
 * core, is reported as loadgen_cpu_pct, and loadgen_saturated is true at 90 % or more: the
 * figures of such a run may measure us, not the server.
 *
 * Does not own: starting servers, repeating runs, tables and plots (`make bench` does that
 * and reads our last line), nor judging results: a completed run exits 0 however bad its
 * numbers; only a usage error (2) or a run that could not happen at all (1) does not.
 *
 * Why it is built this way: on a two-core machine the generator and the server share the
 * box, and a generator that runs out of CPU first measures itself. So the receive path is
 * the hot path and is kept cheap: one 64 KiB recv() per wake-up into one shared buffer,
 * frames parsed where they lie, no allocation per message, one clock reading per read, the
 * "t" member found with memchr rather than a JSON parser. See "Receiving" below.
 *
 * The codec pieces are the server's own pure modules from build/release/libwsrelay.a:
 * frame_decode_hdr() (called with require_mask false: a client must see *unmasked* frames),
 * frame_encode_hdr() and frame_unmask() (masking is the same XOR), utf8_valid() and
 * utf8_feed(), upgrade_accept_key().
 */
#include "frame.h"
#include "upgrade.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ========================================================================================
 * Limits and constants
 * ====================================================================================== */

#define NS_PER_US UINT64_C(1000)
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

/* One recv() per wake-up, into one buffer shared by every connection. 64 KiB holds several
 * hundred cursor frames, so a busy socket costs one system call per few hundred messages. */
#define READ_CHUNK ((size_t)64 * 1024)
/* Frames with a payload up to this size are parsed whole, where they lie in the read buffer.
 * Larger ones (a big welcome) are streamed: checked and counted as they pass, never stored. */
#define SMALL_MAX 4096
/* The most a connection carries over from one read to the next: an incomplete small frame
 * (at most 4 + SMALL_MAX bytes) or an incomplete handshake response head. */
#define CARRY_MAX 8192
/* Our cursor message: {"x":X,"y":Y,"t":T,"i":I} is 22 bytes plus x and y (at most 4 digits
 * each: triangle waves under 1300), t (at most 20) and i (at most 7: a connection index);
 * with --rooms ,"r":R adds 5 bytes and up to 6 digits, and with several ports ,"n":K 5 bytes
 * and one digit: at most 74 bytes, always under 126, so its frame uses the 7-bit length
 * (§5.2). MSG_MAX is what we reserve per message. */
#define MSG_MAX 120
/* --rooms: each room keeps its own counters and a coarse histogram (1 KiB), so a fleet of
 * small rooms stays within a few hundred MiB at the most. */
#define ROOMS_MAX 100000
/* --port and --server-pid lists: a few nodes on one machine, not a fleet. One digit of "n". */
#define LIST_MAX 8

#define WBUF_INIT              512 /* first output buffer of a connection; it doubles as needed */
#define WBUF_LIMIT             (64u << 20) /* pending output past this: the server is not reading */
#define MAX_EVENTS             1024        /* epoll events fetched per wait */
#define MAX_PENDING_HANDSHAKES 256 /* --inflight's default: connects in flight while ramping */
/* Freshness: one uint32_t "t" per (receiver, member of its room): 16 Mi pairs are 64 MiB,
 * a single room of 4,096. Past it freshness is skipped, with a line saying so. */
#define FRESH_PAIRS_MAX  ((uint64_t)16 << 20)
#define FRESH_SAMPLE_NS  (50 * NS_PER_MS)
#define FRESH_T_MAX_SECS 3000.0 /* "t" kept as 32-bit microseconds: 71 min; we stop at 50 */
/* Storm roster tracking: each client's known ids in an open-addressing table of 64-bit
 * hashes, twice its room's size rounded up to a power of two; 8 Mi entries in all (64 MiB):
 * 5,000 clients in rooms of 10 need 160 Ki, 2,000 in one room 8 Mi. Past it: not tracked. */
#define ROSTER_ENTRIES_MAX ((uint64_t)8 << 20)
/* Frames over SMALL_MAX that must be read (batch frames, storm welcomes) are assembled in a
 * buffer of their own: at most this big each, and this much in all at once. */
#define ASSEMBLE_MAX       ((size_t)8 << 20)
#define ASSEMBLE_TOTAL_MAX ((size_t)1 << 30)
#define LOADGEN_SATURATED  0.9 /* our CPU share of one core from which a run may measure us */

#define HANDSHAKE_TIMEOUT_NS (10 * NS_PER_S)   /* connect + 101 */
#define CLOSE_TIMEOUT_NS     (2 * NS_PER_S)    /* our close frame sent or theirs received -> EOF */
#define SWEEP_NS             (100 * NS_PER_MS) /* how often timeouts are checked */
#define CLOSE_ALL_NS         (3 * NS_PER_S)    /* end of a run: how long clean closes may take */
#define CHURN_WIND_DOWN_NS   (2 * NS_PER_S)    /* churn: cycles still running at the end */
#define IDLE_QUIET_NS        (500 * NS_PER_MS) /* idle: no input this long = server is done */
#define IDLE_QUIET_MAX_NS    (30 * NS_PER_S)
#define RSS_STABLE_NS        (1 * NS_PER_S) /* idle: RSS unchanged this long = settled ... */
#define RSS_STABLE_MAX_NS    (3 * NS_PER_S) /* ... or this long, whichever comes first */
#define RSS_SAMPLE_NS        (100 * NS_PER_MS)

#define MAX_ERRORS_SHOWN 5 /* per-connection errors printed before we only count them */

#define EXIT_FAIL  1 /* the run could not happen (no connection, fd limit, bad pid) */
#define EXIT_USAGE 2 /* bad command line */

/* ========================================================================================
 * Options: the command line
 * ====================================================================================== */

enum mode { MODE_CURSOR, MODE_FANOUT, MODE_IDLE, MODE_CHURN, MODE_STORM, MODE_HANDSHAKE };

static const char *const MODE_NAMES[] = {"cursor", "fanout", "idle", "churn", "storm", "handshake"};
#define MODE_COUNT 6

/* A comma-separated list of whole numbers on the command line ("7071,7072"). */
struct uint_list {
    uint64_t v[LIST_MAX];
    size_t n;
};

struct options {
    enum mode mode;
    const char *host;
    const char *path;
    struct uint_list ports;                       /* at least one */
    struct uint_list server_pids;                 /* n 0: not given */
    uint64_t clients, senders, window, redis_pid; /* redis_pid 0: not given */
    uint64_t rooms;                               /* 0: everyone at path, one room */
    uint64_t inflight;                            /* handshakes in flight while ramping */
    uint64_t roster_max;                          /* storm: the server's --roster-max; 0: none */
    bool is_batch;                                /* --batch: offer wsrelay.batch */
    bool is_no_welcome;                           /* --no-welcome: storm done at the 101 */
    bool is_tls;                                  /* --tls: every connection speaks TLS 1.3 */
    const char *tls_ca;                           /* --tls-ca: verify the server against it */
    double rate, duration, warmup, drain, progress, connect_rate;
};

static const char USAGE[] =
    "usage: wsbench MODE [options]\n"
    "       MODE: cursor | fanout | idle | churn | storm | handshake\n"
    "\n"
    "  cursor  N clients each send {\"x\",\"y\",\"t\",\"i\"} at --rate Hz and receive\n"
    "          everyone's; deliveries/s, loss, latency (receive time - scheduled send time),\n"
    "          freshness (age of the newest position each receiver holds of each sender,\n"
    "          sampled every 50 ms), reordered positions\n"
    "  fanout  --senders S send as fast as --window allows, N receivers; delivered frames/s\n"
    "  idle    N connections held for --duration; server RSS per connection (--server-pid)\n"
    "  churn   N concurrent connect + handshake + close cycles for --duration; cycles/s\n"
    "  storm   N clients connect at once (--inflight at a time); time until all are\n"
    "          connected and welcomed, welcomes checked against --roster-max, with --rooms\n"
    "          the time until every client knows its whole room; --duration is the limit\n"
    "  handshake  (needs --tls) N concurrent full TLS 1.3 handshakes for --duration, each\n"
    "          on a fresh connection with a fresh session (no resumption), then our\n"
    "          close_notify and the server's close; no HTTP at all, so any TLS server\n"
    "          can be measured; handshakes/s\n"
    "\n"
    "  --host ADDR         server address (127.0.0.1)\n"
    "  --port N[,N...]     server port (7071); up to 8 ports, one per node of a cluster:\n"
    "                      connection i uses the (i mod count)-th, messages carry their\n"
    "                      sender's port index as \"n\", and deliveries are also reported\n"
    "                      apart as same-node (local_*) and cross-node (cross_*)\n"
    "  --path P            WebSocket path (/ws)\n"
    "  --rooms N           connection i joins <path>/r<i mod N> (0: everyone at <path>);\n"
    "                      messages carry their room as \"r\", loss and latency are counted\n"
    "                      per room, a delivery from another room is an error (\"foreign\");\n"
    "                      connections open in random order, and with several ports each\n"
    "                      room is spread over them (member k of a room: port k mod count)\n"
    "  --clients N         cursor: clients; fanout: receivers; idle: connections;\n"
    "                      churn: concurrency (100)\n"
    "  --rate HZ           cursor: each client's send rate (30)\n"
    "  --duration SEC      measured period, or idle's hold time (10; fractions allowed)\n"
    "  --warmup SEC        cursor/fanout: after the handshakes, before measuring (2)\n"
    "  --drain SEC         cursor/fanout: after the last send, wait for messages in flight (2)\n"
    "  --senders S         fanout: sending connections, which also receive (1)\n"
    "  --window W          fanout: messages a sender may have in flight (1000)\n"
    "  --server-pid PID[,PID...]  report the server's CPU (/proc/PID/stat) and RSS\n"
    "                      (/proc/PID/status); with several PIDs (nodes), their sums and each\n"
    "  --redis-pid PID     report this process's CPU and RSS apart (redis_cpu, redis_rss_kb)\n"
    "  --progress SEC      progress line on stderr every SEC; 0: none (1)\n"
    "  --connect-rate N    new connections per second while ramping up (2000; storm: none)\n"
    "  --inflight N        handshakes (connect to 101) in flight at once while ramping (256)\n"
    "  --batch             offer Sec-WebSocket-Protocol: wsrelay.batch; where the 101 echoes\n"
    "                      it, each text frame is a JSON array of messages\n"
    "  --roster-max N      storm: the server's --roster-max, checked in every welcome\n"
    "                      (0: not checked)\n"
    "  --no-welcome        storm: the server sends no welcome (the peers): done at the 101\n"
    "  --tls               speak TLS to the server (wss://): TLS 1.3 only, key exchange\n"
    "                      X25519 only, ALPN http/1.1, a fresh session every connection;\n"
    "                      the certificate is not verified unless --tls-ca is given\n"
    "  --tls-ca FILE       with --tls: verify the server's certificate against FILE (PEM)\n"
    "                      and --host (an IP address or a name)\n"
    "  --help              this text\n"
    "\n"
    "Progress and a summary go to stderr; the last line on stdout is one JSON object.\n"
    "Exit status: 0 for a completed run, whatever its numbers; 1 if it could not run;\n"
    "2 for a usage error.\n";

/* One row per flag: where its value goes and the range it must be in. */
enum flag_kind { FLAG_STR, FLAG_UINT, FLAG_UINTS, FLAG_SECS, FLAG_BOOL };

struct flag {
    const char *name;
    enum flag_kind kind;
    void *dst; /* const char **, uint64_t *, struct uint_list *, double * or bool *, by kind */
    double lo, hi;
};

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "wsbench: %s%s%s\n\n%s", what, arg ? ": " : "", arg ? arg : "", USAGE);
    return -1;
}

/* A whole decimal number in [lo, hi]; nothing before or after it. */
static bool parse_uint(const char *s, double lo, double hi, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || (double)v < lo || (double)v > hi)
        return false;
    *out = v;
    return true;
}

/* One to LIST_MAX whole numbers in [lo, hi], separated by commas, no empty item ("1,2"). */
static bool parse_uints(const char *s, double lo, double hi, struct uint_list *out)
{
    char item[24];
    out->n = 0;
    for (;;) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof item || out->n == LIST_MAX)
            return false;
        memcpy(item, s, len);
        item[len] = '\0';
        if (!parse_uint(item, lo, hi, &out->v[out->n++]))
            return false;
        if (s[len] == '\0')
            return true;
        s += len + 1;
    }
}

/* A number of seconds, fractions allowed ("0.5", "2"), in [lo, hi]. */
static bool parse_secs(const char *s, double lo, double hi, double *out)
{
    if ((*s < '0' || *s > '9') && *s != '.')
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) /* !(>=) also refuses NaN */
        return false;
    *out = v;
    return true;
}

/* Fills *o from argv. Returns 0 to run, 1 after printing --help, -1 after a usage error.
 * Flags a mode does not use are accepted and ignored, so a script can pass one set to all. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .host = "127.0.0.1",
        .path = "/ws",
        .ports = {.v = {7071}, .n = 1},
        .clients = 100,
        .senders = 1,
        .window = 1000,
        .rate = 30,
        .duration = 10,
        .warmup = 2,
        .drain = 2,
        .progress = 1,
        .connect_rate = 2000,
        .inflight = MAX_PENDING_HANDSHAKES,
    };
    const struct flag flags[] = {
        {"--host", FLAG_STR, &o->host, 0, 0},
        {"--path", FLAG_STR, &o->path, 0, 0},
        {"--port", FLAG_UINTS, &o->ports, 1, 65535},
        {"--clients", FLAG_UINT, &o->clients, 1, 1000000},
        {"--senders", FLAG_UINT, &o->senders, 1, 10000},
        {"--window", FLAG_UINT, &o->window, 1, 10000000},
        {"--server-pid", FLAG_UINTS, &o->server_pids, 1, 4194304}, /* PID_MAX_LIMIT */
        {"--redis-pid", FLAG_UINT, &o->redis_pid, 1, 4194304},
        {"--rooms", FLAG_UINT, &o->rooms, 0, ROOMS_MAX},
        {"--rate", FLAG_SECS, &o->rate, 0.001, 1e6},
        {"--duration", FLAG_SECS, &o->duration, 0.001, 1e6},
        {"--warmup", FLAG_SECS, &o->warmup, 0, 1e6},
        {"--drain", FLAG_SECS, &o->drain, 0, 1e6},
        {"--progress", FLAG_SECS, &o->progress, 0, 1e6},
        {"--connect-rate", FLAG_SECS, &o->connect_rate, 1, 1e7},
        {"--inflight", FLAG_UINT, &o->inflight, 1, 100000},
        {"--roster-max", FLAG_UINT, &o->roster_max, 0, 10000000},
        {"--batch", FLAG_BOOL, &o->is_batch, 0, 0},
        {"--no-welcome", FLAG_BOOL, &o->is_no_welcome, 0, 0},
        {"--tls", FLAG_BOOL, &o->is_tls, 0, 0},
        {"--tls-ca", FLAG_STR, &o->tls_ca, 0, 0},
    };

    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(USAGE, stdout);
        return 1;
    }
    if (argc < 2)
        return usage_error("no MODE given", NULL);
    size_t m = 0;
    while (m < MODE_COUNT && strcmp(argv[1], MODE_NAMES[m]) != 0)
        m++;
    if (m == MODE_COUNT)
        return usage_error("unknown MODE", argv[1]);
    o->mode = (enum mode)m;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(USAGE, stdout);
            return 1;
        }
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(argv[i], flags[k].name) == 0)
                f = &flags[k];
        if (f == NULL)
            return usage_error("unknown option", argv[i]);
        if (f->kind == FLAG_BOOL) {
            *(bool *)f->dst = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage_error("option needs a value", argv[i]);
        const char *v = argv[++i];
        bool ok = true;
        if (f->kind == FLAG_STR)
            *(const char **)f->dst = v;
        else if (f->kind == FLAG_UINT)
            ok = parse_uint(v, f->lo, f->hi, f->dst);
        else if (f->kind == FLAG_UINTS)
            ok = parse_uints(v, f->lo, f->hi, f->dst);
        else
            ok = parse_secs(v, f->lo, f->hi, f->dst);
        if (!ok) {
            fprintf(stderr, "wsbench: bad value for %s: %s (expected %g..%g%s)\n\n%s", f->name, v,
                    f->lo, f->hi, f->kind == FLAG_UINTS ? ", up to 8 separated by commas" : "",
                    USAGE);
            return -1;
        }
    }
    if (o->path[0] != '/')
        return usage_error("--path must start with /", o->path);
    if (o->mode == MODE_HANDSHAKE && !o->is_tls)
        return usage_error("handshake needs --tls", NULL);
    if (o->tls_ca != NULL && !o->is_tls)
        return usage_error("--tls-ca needs --tls", NULL);
    if (o->rooms > o->clients + (o->mode == MODE_FANOUT ? o->senders : 0))
        return usage_error("--rooms must not exceed the connections (--clients)", NULL);
    return 0;
}

/* ========================================================================================
 * Clock and random numbers
 * ====================================================================================== */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t secs_to_ns(double s)
{
    return (uint64_t)llround(s * 1e9);
}

/* splitmix64 (Steele, Lea, Flood 2014): a few multiplies per 64 random bits.
 * Simplification: §5.3 asks browsers for mask keys an attacker cannot predict, because the
 * mask protects proxies from script-controlled bytes (§10.3). A load generator runs no
 * untrusted script; what we need from the key is that it changes every frame, so the server
 * does the same unmasking work a browser would cause. A fast PRNG seeded from the kernel
 * does that; a browser would use a CSPRNG. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ========================================================================================
 * Latency histogram: log-linear buckets, fixed memory, microseconds
 * ====================================================================================== */

/* HdrHistogram's idea in a few lines. Values below 2 * HIST_SUB get a bucket each. Above,
 * every power of two [2^k, 2^(k+1)) is cut into HIST_SUB equal buckets, so a bucket is never
 * wider than 1/HIST_SUB (0.8 %) of the values in it: fine resolution at 50 us, coarse at
 * 50 s, and 30 KiB of counters whatever the number of samples.
 *
 *   value v < 256:  index v
 *   otherwise:      e = floor(log2 v) - 7   (so v >> e is in [128, 256))
 *                   index = 128 * e + (v >> e)
 */
#define HIST_SUB_BITS 7
#define HIST_SUB      ((size_t)1 << HIST_SUB_BITS)
#define HIST_MAX_BITS 36 /* 2^36 us is 19 hours; larger values are clamped */
#define HIST_BUCKETS  (HIST_SUB * (HIST_MAX_BITS - HIST_SUB_BITS + 1))

struct hist {
    uint64_t count;
    uint64_t max; /* exact, not bucketed */
    uint64_t bucket[HIST_BUCKETS];
};

/* The same scheme with 2^sub_bits buckets per power of two; the main histograms use
 * HIST_SUB_BITS, the per-room ones ROOM_SUB_BITS. */
static size_t lhist_index(uint64_t v, unsigned sub_bits)
{
    const uint64_t sub = UINT64_C(1) << sub_bits;
    if (v >= (UINT64_C(1) << HIST_MAX_BITS))
        v = (UINT64_C(1) << HIST_MAX_BITS) - 1;
    if (v < 2 * sub)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v) - sub_bits;
    return (size_t)(sub * e + (v >> e));
}

/* The largest value that lands in bucket i (HdrHistogram's "highest equivalent value"):
 * percentiles err on the pessimistic side, by less than one bucket width. */
static uint64_t lhist_bucket_top(size_t i, unsigned sub_bits)
{
    const uint64_t sub = UINT64_C(1) << sub_bits;
    if (i < 2 * sub)
        return i;
    unsigned e = (unsigned)(i / sub) - 1;
    uint64_t m = i - sub * e; /* in [sub, 2 sub) */
    return ((m + 1) << e) - 1;
}

static size_t hist_index(uint64_t v)
{
    return lhist_index(v, HIST_SUB_BITS);
}

static uint64_t hist_bucket_top(size_t i)
{
    return lhist_bucket_top(i, HIST_SUB_BITS);
}

/* A room's latency histogram (--rooms): 8 buckets per power of two, so a bucket is at most
 * 1/8 of its values wide (12 %): enough to tell a room at 5 ms from one at 500 ms, in
 * 1 KiB of 32-bit counters (a room of 10 at 30 Hz counts 3,000 deliveries a second). */
#define ROOM_SUB_BITS 3
#define ROOM_BUCKETS  (((size_t)1 << ROOM_SUB_BITS) * (HIST_MAX_BITS - ROOM_SUB_BITS + 1))

struct room_stat {
    uint32_t receivers; /* its members open when the measured period began */
    uint32_t bucket[ROOM_BUCKETS];
    uint64_t count, max;
};

static void room_hist_record(struct room_stat *r, uint64_t v)
{
    size_t i = lhist_index(v, ROOM_SUB_BITS);
    if (r->bucket[i] < UINT32_MAX)
        r->bucket[i]++;
    r->count++;
    if (v > r->max)
        r->max = v;
}

/* As hist_percentile(), for a room's histogram. */
static uint64_t room_hist_percentile(const struct room_stat *r, double p)
{
    if (r->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)r->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < ROOM_BUCKETS; i++) {
        seen += r->bucket[i];
        if (seen >= rank) {
            uint64_t top = lhist_bucket_top(i, ROOM_SUB_BITS);
            return top < r->max ? top : r->max;
        }
    }
    return r->max;
}

static void hist_record(struct hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

/* The value below which p percent of the samples fall (0 < p <= 100); 0 if empty. */
static uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

/* ========================================================================================
 * The server process, seen through /proc
 * ====================================================================================== */

/* Reads a small /proc file whole; returns its length or -1. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* CPU seconds the process has used, user + system (proc(5): fields 14 and 15 of stat, in
 * clock ticks). The command name (field 2) may hold spaces and parentheses, so fields are
 * counted from the last ')'. */
static bool proc_cpu_seconds(pid_t pid, double *secs)
{
    char buf[1024];
    if (read_proc(pid, "stat", buf, sizeof buf) < 0)
        return false;
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *secs = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* A "Vm...:" line of /proc/PID/status in KiB; field is e.g. "\nVmRSS:". */
static bool proc_status_kb(pid_t pid, const char *field, uint64_t *kb)
{
    char buf[4096];
    if (read_proc(pid, "status", buf, sizeof buf) < 0)
        return false;
    const char *p = strstr(buf, field);
    unsigned long long v;
    if (p == NULL || sscanf(p + strlen(field), "%llu", &v) != 1)
        return false;
    *kb = v;
    return true;
}

/* Resident set size in KiB, the "VmRSS:" line of /proc/PID/status. */
static bool proc_rss_kb(pid_t pid, uint64_t *kb)
{
    return proc_status_kb(pid, "\nVmRSS:", kb);
}

/* Our own CPU seconds, user + system. */
static double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The servers' RSS (every --server-pid): the sum, and each in each[] if not NULL. False if
 * none was given or one cannot be read. */
static bool servers_rss_kb(const struct options *o, uint64_t *sum, uint64_t *each)
{
    *sum = 0;
    for (size_t i = 0; i < o->server_pids.n; i++) {
        uint64_t kb;
        if (!proc_rss_kb((pid_t)o->server_pids.v[i], &kb))
            return false;
        *sum += kb;
        if (each != NULL)
            each[i] = kb;
    }
    return o->server_pids.n > 0;
}

/* The servers' peak RSS over their lives (VmHWM), summed over every --server-pid. */
static bool servers_hwm_kb(const struct options *o, uint64_t *sum)
{
    *sum = 0;
    for (size_t i = 0; i < o->server_pids.n; i++) {
        uint64_t kb;
        if (!proc_status_kb((pid_t)o->server_pids.v[i], "\nVmHWM:", &kb))
            return false;
        *sum += kb;
    }
    return o->server_pids.n > 0;
}

/* Every process's CPU time at one instant: ours, the servers' (their sum, and each), Redis's;
 * two of these bracket the measured period. */
struct cpu_mark {
    uint64_t wall_ns;
    double client_s, server_s, redis_s;
    double server_each_s[LIST_MAX];
    bool has_server, has_redis; /* has_server: every --server-pid was read */
};

static void cpu_mark(const struct options *o, struct cpu_mark *m)
{
    m->wall_ns = mono_ns();
    m->client_s = self_cpu_seconds();
    m->server_s = 0;
    m->has_server = o->server_pids.n > 0;
    for (size_t i = 0; i < o->server_pids.n && m->has_server; i++) {
        m->has_server = proc_cpu_seconds((pid_t)o->server_pids.v[i], &m->server_each_s[i]);
        m->server_s += m->server_each_s[i];
    }
    m->has_redis = o->redis_pid > 0 && proc_cpu_seconds((pid_t)o->redis_pid, &m->redis_s);
}

/* ========================================================================================
 * State: connections and the run
 * ====================================================================================== */

enum conn_phase {
    CONN_FREE,       /* slot unused */
    CONN_CONNECTING, /* connect() in progress: waiting for EPOLLOUT */
    CONN_TLS,        /* --tls: the TLS handshake (RFC 8446 §4) in progress */
    CONN_HANDSHAKE,  /* request sent, waiting for the 101 */
    CONN_OPEN,       /* WebSocket open */
    CONN_CLOSING,    /* a close frame went one way or the other; waiting for the server's EOF */
    CONN_DONE,       /* socket closed */
};

struct conn {
    int fd;   /* -1 unless CONNECTING..CLOSING */
    SSL *ssl; /* --tls: from the TLS handshake until the socket is closed; else NULL */
    enum conn_phase phase;
    uint32_t slot;   /* index in bench.conns; also the epoll tag */
    uint32_t events; /* epoll interest currently registered */
    uint32_t node;   /* which --port (slot mod the number of ports): its messages' "n" */
    uint32_t room;   /* --rooms: slot mod N, its messages' "r"; 0 without rooms */
    bool is_sender;  /* fanout: sends, and counts its own messages back */
    bool is_queued;  /* listed in bench.writers for this pass */
    bool is_counted; /* handshake done: counted in bench.nopen */
    bool close_sent, close_rcvd;
    bool is_active;          /* cursor: in the sending schedule (a "moving" sender) */
    bool is_batch;           /* the 101 echoed wsrelay.batch: text frames are JSON arrays */
    bool is_welcomed;        /* its welcome came (storm: checked) */
    bool is_complete;        /* storm with roster tracking: it knows its whole room */
    bool is_satisfied;       /* storm: welcomed (and complete, when tracked); counted once */
    bool is_tls_pending;     /* listed in bench.tls_pending: OpenSSL holds unread bytes */
    bool tls_read_wants_out; /* SSL_read must write first: EPOLLOUT retries the read */
    uint64_t deadline_ns;    /* handshake or closing timeout; 0: none */
    uint64_t connect_ns;     /* when its connect() started */
    uint32_t members_before; /* storm: its room's clients welcomed before its request */
    char accept[UPGRADE_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept we expect */

    /* Input: bytes of an incomplete frame carried to the next read (see "Receiving"). */
    uint8_t *carry; /* CARRY_MAX bytes, allocated on first use */
    size_t carry_len;
    /* A frame over SMALL_MAX being streamed: payload bytes still to come. */
    uint64_t big_left;
    bool big_is_text;
    struct utf8_state big_utf8;
    /* ... or assembled, when it must be read (batch, storm): big_len of big_cap bytes. */
    uint8_t *big;
    size_t big_len, big_cap;
    bool is_big_kept; /* this big frame is being assembled into big */

    /* Freshness (cursor): per member k of its room (slot = room + k x rooms), the "t" of the
     * newest position it holds from it; 0: none yet. Points into bench.fresh_pool. */
    uint32_t *fresh;
    /* Storm roster: hashes of the ids it knows (0 empty, 1 deleted), known_cap a power of
     * two; known_n live entries. Points into bench.known_pool. */
    uint64_t *known;
    uint32_t known_cap, known_n;

    /* Output: frames waiting for the socket, [woff, wlen) of wbuf. */
    uint8_t *wbuf;
    size_t woff, wlen, wcap;

    /* fanout senders */
    uint64_t sender_id; /* the x of its messages, so it can recognise its own */
    uint64_t in_flight; /* sent, not yet received back */
    uint64_t seq;
};

enum bench_phase {
    PH_RAMP,    /* opening connections at --connect-rate */
    PH_WARMUP,  /* cursor/fanout: sending, not yet measuring */
    PH_MEASURE, /* the measured period (cursor, fanout, churn) */
    PH_DRAIN,   /* cursor/fanout: sending stopped; waiting for messages in flight */
    PH_SETTLE,  /* idle: waiting for the server to go quiet and its RSS to settle */
    PH_HOLD,    /* idle: holding the connections */
    PH_CLOSE,   /* closing every connection with the closing handshake */
};

static const char *const PHASE_NAMES[] = {"ramp",   "warmup", "measure", "drain",
                                          "settle", "hold",   "close"};

struct stats {
    uint64_t sent;             /* messages sent in the measured period */
    uint64_t expected;         /* sent x receivers */
    uint64_t received;         /* deliveries of messages sent in the measured period */
    uint64_t deliveries;       /* every message with a "t" received, measured or not */
    uint64_t other;            /* messages without "t": welcome, join, leave, ... */
    uint64_t bad_frames;       /* protocol violations by the server */
    uint64_t connect_failures; /* connect or handshake failed */
    uint64_t disconnects;      /* connections the server ended before we closed them */
    uint64_t cycles;           /* churn: completed cycles in the measured period */
    uint64_t failures;         /* churn: failed cycles in the measured period */
    /* Several ports only: measured messages sent from each node, and the deliveries of
     * measured messages split by where they came from. received = local + cross + those
     * without a valid "n" (none, from us). */
    uint64_t sent_by_node[LIST_MAX];
    uint64_t local_received; /* sender and receiver on one node */
    uint64_t cross_received; /* through the backplane */
    uint64_t cross_expected; /* sum over nodes k: sent_by_node[k] x receivers not on k */
    /* --rooms: deliveries that named another room than the receiver's, or none: errors,
     * never counted as received. */
    uint64_t foreign;
    /* Freshness: positions older than (reordered) or the same as (duplicates) the newest
     * already held from that sender; deliveries whose "i" names no member of the room. */
    uint64_t reordered, duplicates, unattributed;
    uint64_t fresh_never; /* freshness samples of pairs that held nothing yet */
    /* Frames and messages in, during the measured period (batch: a frame holds several). */
    uint64_t rx_frames, rx_messages;
    uint64_t batch_clients; /* handshakes whose 101 echoed wsrelay.batch */
    uint64_t bad_batches;   /* batch frames that are not a JSON array of objects */
    uint64_t unparsed_big;  /* frames over the assembly caps: streamed, not read */
    /* storm: welcomes and what the rule says of them */
    uint64_t welcomed, welcomes_with_count, welcome_peers_max, second_welcomes;
    uint64_t welcome_over_roster_max;     /* more peers than --roster-max */
    uint64_t welcome_incomplete_no_count; /* fewer peers than known members, no "count" */
    uint64_t welcome_bad_count;           /* "count" below peers + 1 */
    uint64_t batch_welcome_no_count;      /* a wsrelay.batch welcome without "count" */
    uint64_t roster_overflow;             /* ids past a client's table (more than its room) */
    uint64_t completed;                   /* clients that came to know their whole room */
    /* --tls: handshakes completed (ever), and those that resumed a session (must be 0) */
    uint64_t tls_handshakes, tls_resumed;
};

struct bench {
    struct options opt;
    int epfd;
    uint32_t nports; /* opt.ports.n: the nodes the connections are spread over */
    struct sockaddr_storage addr[LIST_MAX];
    socklen_t addr_len[LIST_MAX];
    char host_header[LIST_MAX][300]; /* "127.0.0.1:7071": the Host field, per port */
    char target[400];                /* for messages: "127.0.0.1:7071" or "127.0.0.1:7071,7072" */

    struct conn *conns;
    uint32_t nconns;
    uint32_t *writers; /* connections with output to flush this pass */
    uint32_t nwriters;
    uint32_t *free_slots; /* churn: slots ready for a new cycle */
    uint32_t nfree;
    uint32_t *active; /* cursor: the clients that send, in schedule order */
    uint32_t nactive;
    uint32_t *order; /* ramp: the order in which slots connect (--rooms: shuffled) */

    /* Rooms (--rooms; without it one room, index 0, holds everyone). Per room and node,
     * [room * nports + node]: measured messages sent, deliveries received, receivers open
     * when the measured period began. */
    uint32_t nrooms;
    struct room_stat *room;
    uint64_t *room_sent, *room_received;
    uint32_t *room_receivers;
    size_t path_len; /* --path without a trailing '/', which "/r<k>" then follows */

    uint8_t *rbuf; /* CARRY_MAX + READ_CHUNK, shared by every connection */

    /* --tls. OpenSSL reads whole records: bytes it already took off the socket but we have
     * not read yet are invisible to level-triggered epoll, so connections with such bytes
     * are listed here and read again before the loop sleeps. */
    SSL_CTX *tls_ctx;
    uint32_t *tls_pending, *tls_reading; /* listed / being read now: swapped each pass */
    uint32_t ntls_pending;
    const char *tls_why; /* the last TLS failure: a static string of OpenSSL's tables */
    const char *tls_version, *tls_cipher, *tls_group; /* of the first handshake: static */
    uint64_t rng;
    uint64_t t0_ns;  /* run start: "t" in messages is microseconds since this */
    uint64_t now_ns; /* the latest clock reading (per loop pass, and per read) */

    enum bench_phase phase;
    uint32_t started;   /* ramp: connections started */
    uint32_t opened;    /* handshakes completed, ever */
    uint32_t nopen;     /* open now (handshake done, not yet ended) */
    uint32_t nlive;     /* sockets open now */
    uint32_t receivers; /* open connections at the start of the measured period */
    uint32_t receivers_by_node[LIST_MAX];
    uint64_t ramp_start_ns;
    uint64_t next_sweep_ns;
    uint64_t last_rx_ns;

    /* The sending schedule and the measured window. A message is measured if its "t" is in
     * [measure_from_us, measure_until_us); nothing is measured until these are set. */
    uint64_t send_start_ns, send_until_ns, measure_start_ns, measure_end_ns;
    uint64_t measure_from_us, measure_until_us;
    double step_ns;        /* cursor: time between two consecutive sends (of any client) */
    uint64_t send_j;       /* cursor: sends scheduled so far */
    uint64_t next_send_ns; /* cursor: when send_j is due; UINT64_MAX when not sending */
    /* Our own stalls: the longest stretch, while sending or draining, between getting events
     * and asking for more (a pass's dispatch, sends and flushes). Over a few ms, the
     * latencies we report include that much of our own lateness in reading. */
    uint64_t busy_from_ns, busy_max_ns;

    /* idle: the server's RSS while settling (the sum over --server-pid); each, at the end */
    uint64_t rss_before_kb, rss_after_kb, rss_last_kb, rss_stable_since_ns, next_rss_ns;
    uint64_t rss_each_kb[LIST_MAX], redis_rss_kb;
    bool has_rss_before, has_rss_after, has_redis_rss;
    bool churn_backoff;

    /* Freshness (cursor; see the header): the pairs' "t" values, one pool for every
     * receiver; sampled every FRESH_SAMPLE_NS of the measured period. */
    uint32_t *fresh_pool;
    uint64_t fresh_pairs;      /* sum over rooms of size^2; 0 when skipped */
    const char *fresh_skipped; /* why freshness is not measured, or NULL */
    uint64_t next_fresh_ns, fresh_sample_max_ns, fresh_sweeps;
    uint8_t *moving; /* per slot, during a sample: 1 if it is an open, scheduled sender */
    uint64_t fresh_never_pairs; /* pairs holding nothing at the end of the measured period */

    /* Server RSS sampled every RSS_SAMPLE_NS while measuring (cursor, fanout, storm). */
    uint64_t rss_max_kb, hwm_kb, next_rss_max_ns;
    bool has_rss_max, has_hwm;

    size_t assembling; /* bytes in every connection's assembly buffer (ASSEMBLE_TOTAL_MAX) */

    /* storm */
    uint64_t storm_start_ns, last_open_ns, last_welcome_ns, last_complete_ns;
    uint64_t storm_lost; /* ended before being satisfied */
    uint64_t storm_satisfied;
    uint32_t *room_welcomed; /* per room: clients welcomed so far */
    uint32_t *room_target;   /* per room: its planned size (our clients in it) */
    uint64_t *known_pool;
    const char *roster_skipped; /* why rosters are not tracked, or NULL */
    bool has_roster;

    struct stats st;
    struct hist lat;        /* latency of measured deliveries, us */
    struct hist local;      /* several ports: those from a sender on the receiver's node */
    struct hist cross;      /* several ports: those from a sender on another node */
    struct hist recent;     /* latency since the last progress line, any delivery */
    struct hist lag;        /* cursor: how late measured sends left (actual - scheduled), us */
    struct hist fresh;      /* cursor: ages of the (receiver, sender) pairs' newest positions, us */
    struct hist open_at;    /* storm: 101 time since the storm began, us */
    struct hist welcome_at; /* storm: welcome time since the storm began, us */
    struct hist welcome_lat; /* storm: each client's connect() to its welcome, us */
    struct hist complete_at; /* storm: roster-complete time since the storm began, us */
    struct cpu_mark cpu_start, cpu_end;

    uint64_t next_progress_ns, prog_prev_ns, prog_prev_deliveries, prog_prev_cycles;
    unsigned errors_shown;
    char first_error[160];
};

/* ========================================================================================
 * Errors worth a line
 * ====================================================================================== */

/* One line per connection-level error, for the first few; the rest are only counted (and
 * the counters are in the report). The first one is kept for "could not connect at all". */
static void note_error(struct bench *b, const struct conn *c, const char *why, int err)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s%s%s", why ? why : "closed", err ? ": " : "",
             err ? strerror(err) : "");
    if (b->first_error[0] == '\0')
        snprintf(b->first_error, sizeof b->first_error, "%s", msg);
    if (b->errors_shown < MAX_ERRORS_SHOWN)
        fprintf(stderr, "wsbench: conn %" PRIu32 ": %s\n", c->slot, msg);
    else if (b->errors_shown == MAX_ERRORS_SHOWN)
        fprintf(stderr, "wsbench: further connection errors are counted, not shown\n");
    b->errors_shown++;
}

/* ========================================================================================
 * The socket, plain or TLS (--tls)
 * ====================================================================================== */

/* What a failed SSL call means, as the plain socket calls would say it: -EAGAIN for
 * WANT_READ/WANT_WRITE (*wants_out tells a read that must write first), 0 for the end of
 * the stream (close_notify, RFC 8446 §6.1, or a bare FIN: SSL_OP_IGNORE_UNEXPECTED_EOF),
 * the TCP error itself, or -EPROTO with OpenSSL's reason in b->tls_why. */
static ssize_t tls_fail(struct bench *b, SSL *ssl, int rc, bool *wants_out)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (wants_out != NULL)
            *wants_out = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL: {
        int saved = errno;
        ERR_clear_error();
        return saved != 0 ? -saved : -ECONNRESET;
    }
    default: {
        const char *why = ERR_reason_error_string(ERR_get_error());
        b->tls_why = why != NULL ? why : "TLS error";
        ERR_clear_error();
        return -EPROTO;
    }
    }
}

/* Reads up to len bytes: a count, 0 at the end of the stream, -EAGAIN, or another -errno.
 * With TLS, as many records as fit (one SSL_read returns at most one record, 16 KiB: RFC
 * 8446 §5.1), so a busy socket costs one wake-up as with plain TCP; what OpenSSL still
 * holds afterwards puts c on the pending list. */
static ssize_t conn_recv(struct bench *b, struct conn *c, uint8_t *p, size_t len)
{
    if (c->ssl == NULL) {
        ssize_t n = recv(c->fd, p, len, 0);
        return n >= 0 ? n : -errno;
    }
    size_t got = 0;
    ssize_t r = 0;
    c->tls_read_wants_out = false;
    ERR_clear_error(); /* SSL_get_error reads the thread's queue: stale entries would lie */
    while (got < len) {
        size_t n = 0;
        int rc = SSL_read_ex(c->ssl, p + got, len - got, &n);
        if (rc != 1) {
            r = tls_fail(b, c->ssl, rc, &c->tls_read_wants_out);
            break;
        }
        got += n;
    }
    if (got < len || !SSL_has_pending(c->ssl) || c->is_tls_pending ||
        b->ntls_pending >= b->nconns)      /* never: a slot is listed once (its flag) */
        return got > 0 ? (ssize_t)got : r; /* an end or error shows again on the next call */
    c->is_tls_pending = true;
    b->tls_pending[b->ntls_pending++] = c->slot;
    return (ssize_t)got;
}

/* Sends up to len bytes: a count, -EAGAIN, or another -errno. With TLS, a write that would
 * block leaves its record inside OpenSSL, and the retry must offer the same bytes again
 * (they stay at the head of wbuf: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets wbuf move). */
static ssize_t conn_send(struct bench *b, struct conn *c, const uint8_t *p, size_t len)
{
    if (c->ssl == NULL) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        return n >= 0 ? n : -errno;
    }
    ERR_clear_error();
    size_t n = 0;
    int rc = SSL_write_ex(c->ssl, p, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    ssize_t r = tls_fail(b, c->ssl, rc, NULL);
    return r == 0 ? -EPIPE : r;
}

/* ========================================================================================
 * Output: each connection's buffer, flushed once per loop pass
 * ====================================================================================== */

/* Registers the epoll interest ev for c, if it changed. */
static void conn_set_events(struct bench *b, struct conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.u32 = c->slot};
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Room for n more output bytes (call out_commit() after writing them), or NULL past
 * WBUF_LIMIT or when memory runs out. */
static uint8_t *out_reserve(struct conn *c, size_t n)
{
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap && c->woff > 0) { /* slide the unsent bytes to the front */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : WBUF_INIT;
        while (cap < c->wlen + n)
            cap *= 2;
        if (cap > WBUF_LIMIT)
            return NULL;
        uint8_t *p = realloc(c->wbuf, cap);
        if (p == NULL)
            return NULL;
        c->wbuf = p;
        c->wcap = cap;
    }
    return c->wbuf + c->wlen;
}

/* n bytes were written at out_reserve()'s pointer: queue c for this pass's flush. */
static void out_commit(struct bench *b, struct conn *c, size_t n)
{
    c->wlen += n;
    if (!c->is_queued) {
        c->is_queued = true;
        b->writers[b->nwriters++] = c->slot;
    }
}

static void conn_end(struct bench *b, struct conn *c, bool is_clean, const char *why, int err);

/* churn and handshake: slots end and start again for the whole measured period. */
static bool is_cycling(const struct bench *b)
{
    return b->opt.mode == MODE_CHURN || b->opt.mode == MODE_HANDSHAKE;
}

/* Releases c's assembly buffer (a frame being assembled is abandoned). */
static void big_free(struct bench *b, struct conn *c)
{
    b->assembling -= c->big_cap;
    free(c->big);
    c->big = NULL;
    c->big_len = c->big_cap = 0;
}

/* One send() of whatever is pending. EPOLLOUT is armed only while bytes remain, as the
 * server does it (redis's pattern): an idle socket that is always writable would otherwise
 * wake every epoll_wait. */
static void conn_flush(struct bench *b, struct conn *c)
{
    size_t pending = c->wlen - c->woff;
    if (pending > 0) {
        ssize_t n = conn_send(b, c, c->wbuf + c->woff, pending);
        if (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) {
            conn_end(b, c, false, n == -EPROTO ? b->tls_why : "send failed",
                     n == -EPROTO ? 0 : (int)-n);
            return;
        }
        if (n > 0)
            c->woff += (size_t)n;
    }
    bool wants_out = c->woff < c->wlen || c->tls_read_wants_out;
    conn_set_events(b, c, wants_out ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Every connection with new output gets one send() before the loop sleeps: all the frames a
 * pass produced for one socket leave in one system call. */
static void flush_writers(struct bench *b)
{
    for (uint32_t i = 0; i < b->nwriters; i++) {
        struct conn *c = &b->conns[b->writers[i]];
        c->is_queued = false;
        if (c->fd >= 0 && c->phase != CONN_CONNECTING && c->phase != CONN_TLS)
            conn_flush(b, c);
    }
    b->nwriters = 0;
}

/* ========================================================================================
 * Sending: masked frames (§5.2, §5.3)
 * ====================================================================================== */

/* A client frame header: the server's encoder writes FIN, opcode and the shortest length;
 * we set MASK (§5.1: every client frame is masked) and append the key. Returns its size. */
static size_t put_client_hdr(uint8_t *out, enum frame_op op, size_t len, const uint8_t key[4])
{
    size_t n = frame_encode_hdr(out, true, op, len);
    out[1] |= 0x80;
    memcpy(out + n, key, 4);
    return n + 4;
}

static void new_mask_key(struct bench *b, uint8_t key[4])
{
    uint32_t r = (uint32_t)rng_next(&b->rng);
    memcpy(key, &r, 4);
}

/* Appends one masked frame carrying payload[0..len). False if c's output is over its cap
 * (c is then failed). */
static bool send_frame(struct bench *b, struct conn *c, enum frame_op op, const uint8_t *payload,
                       size_t len)
{
    uint8_t *out = out_reserve(c, FRAME_HDR_MAX + len);
    if (out == NULL) {
        conn_end(b, c, false, "output over limit: the server is not reading", 0);
        return false;
    }
    uint8_t key[4];
    new_mask_key(b, key);
    size_t h = put_client_hdr(out, op, len, key);
    if (len > 0)
        memcpy(out + h, payload, len);
    frame_unmask(out + h, len, key, 0); /* XOR with the key: masking and unmasking are one */
    out_commit(b, c, h + len);
    return true;
}

/* Decimal digits of v at out; returns how many (1..20). */
static size_t put_u64(uint8_t *out, uint64_t v)
{
    uint8_t tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Copies the characters of s (no NUL: these are wire bytes) to out; returns how many. */
static size_t put_str(uint8_t *out, const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        out[n] = (uint8_t)s[n];
    return n;
}

/* Appends {"x":X,"y":Y,"t":T,"i":I} as one masked text frame, written in place in c's output
 * (no intermediate buffer, no snprintf). I is c's connection index, so a receiver can keep
 * each sender's newest position apart (freshness). With --rooms, ,"r":R follows: R is c's
 * room, so a
 * receiver can tell a delivery from another room. With several ports, ,"n":K ends it: K is
 * c's node, so a receiver can tell a same-node delivery from a cross-node one. */
static bool send_cursor(struct bench *b, struct conn *c, uint64_t x, uint64_t y, uint64_t t_us)
{
    uint8_t *out = out_reserve(c, 6 + MSG_MAX);
    if (out == NULL) {
        conn_end(b, c, false, "output over limit: the server is not reading", 0);
        return false;
    }
    uint8_t *p = out + 6; /* 2-byte header + 4-byte key: the payload is under 126 bytes */
    size_t n = put_str(p, "{\"x\":");
    n += put_u64(p + n, x);
    n += put_str(p + n, ",\"y\":");
    n += put_u64(p + n, y);
    n += put_str(p + n, ",\"t\":");
    n += put_u64(p + n, t_us);
    n += put_str(p + n, ",\"i\":");
    n += put_u64(p + n, c->slot);
    if (b->opt.rooms > 0) {
        n += put_str(p + n, ",\"r\":");
        n += put_u64(p + n, c->room);
    }
    if (b->nports > 1) {
        n += put_str(p + n, ",\"n\":");
        n += put_u64(p + n, c->node);
    }
    p[n++] = '}';
    uint8_t key[4];
    new_mask_key(b, key);
    put_client_hdr(out, FRAME_OP_TEXT, n, key);
    frame_unmask(p, n, key, 0);
    out_commit(b, c, 6 + n);
    return true;
}

/* Starts the closing handshake from our side (§7.1.2), or answers the server's close
 * (§5.5.1: echo its status code). code < 0: a close frame with no body. */
static void send_close(struct bench *b, struct conn *c, int code)
{
    uint8_t body[2] = {0, 0};
    if (code >= 0) {
        body[0] = (uint8_t)((unsigned)code >> 8);
        body[1] = (uint8_t)code;
    }
    if (!send_frame(b, c, FRAME_OP_CLOSE, body, code >= 0 ? 2 : 0))
        return;
    c->close_sent = true;
    if (c->phase == CONN_OPEN) {
        c->phase = CONN_CLOSING;
        c->deadline_ns = b->now_ns + CLOSE_TIMEOUT_NS;
    }
}

/* ========================================================================================
 * Connection setup and teardown
 * ====================================================================================== */

/* Ends a connection: counts the outcome, closes the socket (which also removes it from
 * epoll). Safe during dispatch: the handler that calls it touches only this connection, and
 * epoll reports each socket at most once per wait, so no later event in the batch names it.
 * Slots are reused only from the tick, between batches. */
static void conn_end(struct bench *b, struct conn *c, bool is_clean, const char *why, int err)
{
    if (c->fd < 0)
        return;
    bool in_handshake =
        c->phase == CONN_CONNECTING || c->phase == CONN_TLS || c->phase == CONN_HANDSHAKE;
    if (!is_clean) {
        if (in_handshake)
            b->st.connect_failures++;
        else if (c->phase == CONN_OPEN && b->phase != PH_CLOSE && !is_cycling(b))
            b->st.disconnects++;
        note_error(b, c, why, err);
    }
    if (is_cycling(b) && b->phase == PH_MEASURE) {
        if (is_clean)
            b->st.cycles++;
        else
            b->st.failures++;
    }
    if (b->opt.mode == MODE_STORM && !c->is_satisfied)
        b->storm_lost++;
    SSL_free(c->ssl); /* no close_notify of ours here: see tls_done() and §7.1.1 */
    c->ssl = NULL;
    c->is_tls_pending = c->tls_read_wants_out = false; /* a stale pending entry is skipped */
    close(c->fd);
    c->fd = -1;
    c->phase = CONN_DONE;
    c->woff = c->wlen = 0;
    c->carry_len = 0;
    c->big_left = 0;
    big_free(b, c);
    b->nlive--;
    if (c->is_counted) {
        c->is_counted = false;
        b->nopen--;
    }
    if (is_cycling(b))
        b->free_slots[b->nfree++] = c->slot;
}

/* Opens a non-blocking socket and starts connect(); the rest happens in on_connected(). */
static void conn_start(struct bench *b, struct conn *c)
{
    /* Reset everything a previous cycle in this slot left (the buffers are kept). */
    c->phase = CONN_CONNECTING;
    c->events = EPOLLOUT;
    c->close_sent = c->close_rcvd = false;
    c->carry_len = 0;
    c->big_left = 0;
    c->woff = c->wlen = 0;
    c->in_flight = 0;
    c->connect_ns = b->now_ns;
    /* A storm may take the server far longer than one handshake: its limit is --duration. */
    uint64_t limit = HANDSHAKE_TIMEOUT_NS;
    if (b->opt.mode == MODE_STORM && secs_to_ns(b->opt.duration) > limit)
        limit = secs_to_ns(b->opt.duration);
    c->deadline_ns = b->now_ns + limit;

    int fd = socket(b->addr[c->node].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->fd = -1;
        c->phase = CONN_DONE;
        b->st.connect_failures++;
        if (is_cycling(b) && b->phase == PH_MEASURE)
            b->st.failures++;
        note_error(b, c, "socket", errno);
        if (is_cycling(b))
            b->free_slots[b->nfree++] = c->slot;
        return;
    }
    c->fd = fd;
    b->nlive++;
    int one = 1; /* small frames must leave now, not wait for Nagle's timer */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&b->addr[c->node], b->addr_len[c->node]) < 0 &&
        errno != EINPROGRESS) {
        conn_end(b, c, false, "connect", errno);
        return;
    }
    struct epoll_event e = {.events = EPOLLOUT, .data.u32 = c->slot};
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        conn_end(b, c, false, "epoll_ctl", errno);
}

/* Sends the opening handshake (§4.1) on a connected socket (with --tls: after the TLS
 * handshake). */
static void send_upgrade(struct bench *b, struct conn *c)
{
    /* §4.1: a fresh random 16-byte nonce, base64-encoded, for every connection. */
    uint8_t nonce[16];
    for (size_t i = 0; i < 16; i += 8) {
        uint64_t r = rng_next(&b->rng);
        memcpy(nonce + i, &r, 8);
    }
    char key[25];
    EVP_EncodeBlock((unsigned char *)key, nonce, 16);
    upgrade_accept_key(key, 24, c->accept);

    /* --rooms: <path>/r<room>, e.g. /ws/r17; otherwise <path> itself. */
    char path[320];
    if (b->opt.rooms > 0)
        snprintf(path, sizeof path, "%.*s/r%" PRIu32, (int)b->path_len, b->opt.path, c->room);
    else
        snprintf(path, sizeof path, "%s", b->opt.path);

    char req[512 + 300 + 320];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s"
                     "\r\n",
                     path, b->host_header[c->node], key,
                     b->opt.is_batch ? "Sec-WebSocket-Protocol: wsrelay.batch\r\n" : "");
    uint8_t *out = n > 0 && (size_t)n < sizeof req ? out_reserve(c, (size_t)n) : NULL;
    if (out == NULL) {
        conn_end(b, c, false, "handshake request too long (--path?)", 0);
        return;
    }
    memcpy(out, req, (size_t)n);
    out_commit(b, c, (size_t)n);
    /* Every client of its room welcomed before now is a member its welcome must count. */
    if (b->room_welcomed != NULL)
        c->members_before = b->room_welcomed[c->room];
    c->phase = CONN_HANDSHAKE;
    conn_set_events(b, c, EPOLLIN);
}

/* The TLS handshake is over (RFC 8446 §4.4.4: we sent our Finished). The handshake mode
 * closes now: our close_notify (§6.1), then we wait for the server's close, so a cycle
 * counts only once the server has read our Finished and everything after it: a client's
 * handshake ends a flight before the server's does, and counting it there would credit a
 * server with work it has not done. The other modes go on to the WebSocket handshake. */
static void tls_done(struct bench *b, struct conn *c)
{
    if (b->st.tls_handshakes++ == 0) {
        b->tls_version = SSL_get_version(c->ssl);
        b->tls_cipher = SSL_get_cipher_name(c->ssl);
        b->tls_group = OBJ_nid2sn(SSL_get_negotiated_group(c->ssl) & ~TLSEXT_nid_unknown);
    }
    b->st.tls_resumed += SSL_session_reused(c->ssl) == 1;
    if (b->opt.mode != MODE_HANDSHAKE) {
        send_upgrade(b, c);
        return;
    }
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* one try: 24 bytes into an empty socket buffer */
    ERR_clear_error();
    c->close_sent = true;
    c->phase = CONN_CLOSING;
    c->deadline_ns = b->now_ns + CLOSE_TIMEOUT_NS;
    conn_set_events(b, c, EPOLLIN);
}

/* One step of the client's TLS handshake: on to tls_done() when it is over, otherwise wait
 * for the direction OpenSSL asks for. */
static void tls_step(struct bench *b, struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        tls_done(b, c);
        return;
    }
    bool wants_out = false;
    ssize_t r = tls_fail(b, c->ssl, rc, &wants_out);
    if (r == -EAGAIN) {
        conn_set_events(b, c, wants_out ? EPOLLIN | EPOLLOUT : EPOLLIN);
        return;
    }
    conn_end(b, c, false, r == -EPROTO ? b->tls_why : "TLS handshake", r < 0 ? (int)-r : 0);
}

/* connect() finished: check how, then start TLS (--tls) or the opening handshake. */
static void on_connected(struct bench *b, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        conn_end(b, c, false, "connect", err);
        return;
    }
    if (b->tls_ctx == NULL) {
        send_upgrade(b, c);
        return;
    }
    /* A fresh SSL from a context with no session cache: every handshake is a full one. */
    c->ssl = SSL_new(b->tls_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        ERR_clear_error();
        conn_end(b, c, false, "SSL_new", ENOMEM);
        return;
    }
    SSL_set_connect_state(c->ssl);
    /* RFC 6066 §3: a host name, never an address literal, goes into server_name. */
    struct in6_addr any;
    const char *host = b->opt.host;
    if (inet_pton(AF_INET, host, &any) != 1 && inet_pton(AF_INET6, host, &any) != 1)
        SSL_set_tlsext_host_name(c->ssl, host);
    if (b->opt.tls_ca != NULL)
        SSL_set1_host(c->ssl, host); /* checks an IP address or a DNS name in the certificate */
    c->phase = CONN_TLS;
    tls_step(b, c);
}

/* Checks the server's answer to the handshake (§4.1, client's requirements 1-4 and 6):
 * status 101, the Sec-WebSocket-Accept that proves the server read our key, and a
 * Sec-WebSocket-Protocol, if any, that is the one we offered (wsrelay.batch with --batch);
 * *is_batch tells whether it was echoed. Returns the length of the head (what follows it
 * are WebSocket bytes), 0 if the head is not complete yet, or -1 with *why set.
 * Simplification: the Upgrade and Connection fields of the answer are not checked; a server
 * that computes the accept value and answers 101 has understood the request. */
static ssize_t check_response(const struct conn *c, const uint8_t *p, size_t len, bool offered,
                              bool *is_batch, const char **why)
{
    const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        *why = "response head too long";
        return len >= CARRY_MAX ? -1 : 0;
    }
    size_t head_len = (size_t)(end - p) + 4;
    if (head_len < 12 ||
        (memcmp(p, "HTTP/1.1 101", 12) != 0 && memcmp(p, "HTTP/1.0 101", 12) != 0)) {
        *why = "handshake refused (status is not 101)";
        return -1;
    }
    /* Walk the header lines (field names are case-insensitive, RFC 9110 §5.1; a value may be
     * surrounded by spaces or tabs, §5.5). */
    static const char acc_name[] = "Sec-WebSocket-Accept:";
    static const char proto_name[] = "Sec-WebSocket-Protocol:";
    bool has_accept = false;
    *is_batch = false;
    const char *line = memchr(p, '\n', head_len);
    const char *stop = (const char *)end;
    while (line != NULL && line + 1 < stop) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(stop + 2 - line));
        if (eol == NULL)
            break;
        size_t ll = (size_t)(eol - line);
        const char *name = NULL;
        if (ll > sizeof acc_name - 1 && strncasecmp(line, acc_name, sizeof acc_name - 1) == 0)
            name = acc_name;
        else if (ll > sizeof proto_name - 1 &&
                 strncasecmp(line, proto_name, sizeof proto_name - 1) == 0)
            name = proto_name;
        if (name != NULL) {
            const char *v = line + strlen(name);
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = (size_t)(ve - v);
            if (name == acc_name) {
                if (vl != UPGRADE_ACCEPT_LEN || memcmp(v, c->accept, UPGRADE_ACCEPT_LEN) != 0) {
                    *why = "wrong Sec-WebSocket-Accept";
                    return -1;
                }
                has_accept = true;
            } else {
                /* §4.1 client requirement 6: a subprotocol we did not offer fails the
                 * connection. Values are compared exactly (§4.2.2 step 5.4). */
                if (!offered || vl != 13 || memcmp(v, "wsrelay.batch", 13) != 0) {
                    *why = "the 101 names a subprotocol we did not offer";
                    return -1;
                }
                *is_batch = true;
            }
        }
        line = memchr(eol, '\n', (size_t)(stop + 2 - eol));
    }
    if (!has_accept) {
        *why = "no Sec-WebSocket-Accept in the 101";
        return -1;
    }
    return (ssize_t)head_len;
}

/* ========================================================================================
 * Receiving: frames parsed where they lie
 * ====================================================================================== */

/* The read path, the hot one. Every connection reads into the same buffer, b->rbuf:
 *
 *   b->rbuf  [ ........ CARRY_MAX ........ | .............. READ_CHUNK ............... ]
 *                      [ carried bytes ][ bytes from this recv() ...          ]
 *                      ^ parsing starts here
 *
 * The bytes a connection could not use last time (an incomplete frame, at most CARRY_MAX)
 * are copied in just before the read area, recv() appends up to 64 KiB, and whole frames are
 * handled where they lie: nothing is copied per message and nothing is allocated. What is
 * left at the end (the start of a frame still arriving) is copied back to the connection's
 * carry buffer. Frames over SMALL_MAX are rare here (a welcome listing many peers) and are
 * streamed instead: checked and counted as their bytes pass, never stored, so the carry
 * stays small. One clock reading per recv() dates every message in it: they all arrived
 * by then. */

/* Is a message with this "t" one of the measured ones? Senders and receivers both ask this
 * about the same microsecond value, so sent and received always count the same messages. */
static bool is_measured(const struct bench *b, uint64_t t_us)
{
    return t_us >= b->measure_from_us && t_us < b->measure_until_us;
}

/* Are frames and messages in counted now? While measuring (a storm: all along). */
static bool is_counting_rx(const struct bench *b)
{
    return b->phase == PH_MEASURE || (b->opt.mode == MODE_STORM && b->phase == PH_RAMP);
}

/* True if p[0..n) is all ASCII: 8 bytes at a time, the common case for JSON. */
static bool is_ascii(const uint8_t *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

/* Reads the unsigned decimal integer at p (at most 19 digits, so it cannot overflow). */
static bool read_uint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *d = p;
    uint64_t x = 0;
    while (p < end && p - d < 19 && *p >= '0' && *p <= '9')
        x = x * 10 + (uint64_t)(*p++ - '0');
    *v = x;
    return p > d;
}

/* Finds the member "key": (key is one character) and reads its integer value.
 * Simplification: the first "k": anywhere in the text is taken to be the top-level member.
 * That holds for relayed cursor messages, {"x":..,"y":..,"t":..,"n":..,"sender":"<uuid>",
 * "color":..} (wsrelay keeps the members in order and appends its two), in which nothing
 * before "t" contains a t, nor before "n" an n; server messages that could nest one (a
 * welcome's peers) are set aside before we get here. A JSON parser would be exact,
 * and many times slower than memchr, which scans 16 or 32 bytes per instruction. */
static const uint8_t *find_member_end(const uint8_t *p, size_t n, char key, uint64_t *v)
{
    const uint8_t *end = p + n;
    for (const uint8_t *q = p; (q = memchr(q, key, (size_t)(end - q))) != NULL; q++)
        if (q > p && q[-1] == '"' && end - q > 3 && q[1] == '"' && q[2] == ':') {
            const uint8_t *d = q + 3;
            if (!read_uint(d, end, v))
                return NULL;
            while (d < end && *d >= '0' && *d <= '9')
                d++;
            return d; /* just past the value's digits */
        }
    return NULL;
}

static bool find_member(const uint8_t *p, size_t n, char key, uint64_t *v)
{
    return find_member_end(p, n, key, v) != NULL;
}

/* ---- A small JSON scanner: just enough to split arrays (batch frames, a welcome's peers).
 * It checks nesting and strings, not the grammar of what is between: the server's JSON is
 * what wsrelay's json module wrote, and each element is then handled as a seed message. */

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* The length of the object or array that starts at p[0] ('{' or '['): up to and including
 * its matching bracket, brackets inside strings (with their backslash escapes) not
 * counting; 0 if it does not end within p[0..n) or its brackets do not match in depth. */
static size_t json_value_end(const uint8_t *p, size_t n)
{
    size_t depth = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (ch == '"') { /* skip the string: to the next quote not escaped */
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
            if (i >= n)
                return 0;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return 0;
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

/* Walks the elements of one JSON array; pos starts just after its '['. */
struct json_iter {
    const uint8_t *pos, *end;
    size_t count; /* elements returned so far */
};

/* The next element, an object or an array, in [*el, *el + *el_len): returns 1; 0 at the
 * closing ']' (pos is then just past it); -1 if what follows is not ", element" or "]"
 * (or the first element), or is a value other than an object or an array. */
static int json_iter_next(struct json_iter *it, const uint8_t **el, size_t *el_len)
{
    const uint8_t *p = skip_ws(it->pos, it->end);
    if (p < it->end && *p == ']') {
        it->pos = p + 1;
        return 0;
    }
    if (it->count > 0) {
        if (p >= it->end || *p != ',')
            return -1;
        p = skip_ws(p + 1, it->end);
    }
    if (p >= it->end || (*p != '{' && *p != '['))
        return -1;
    size_t len = json_value_end(p, (size_t)(it->end - p));
    if (len == 0)
        return -1;
    *el = p;
    *el_len = len;
    it->pos = p + len;
    it->count++;
    return 1;
}

static void bad_frame(struct bench *b, struct conn *c, const char *why)
{
    b->st.bad_frames++;
    /* §7.1.7: fail the connection: close 1002 (protocol error), best effort, then drop it. */
    if (!c->close_sent && send_frame(b, c, FRAME_OP_CLOSE, (const uint8_t *)"\x03\xea", 2))
        conn_flush(b, c);
    conn_end(b, c, false, why, 0);
}

/* ---- Storm: what each client knows of its room ------------------------------------- */

/* A 64-bit FNV-1a hash of an id (a UUID's 36 characters): its key in a client's roster.
 * 0 and 1 mark empty and deleted entries, so hashes start at 2. Simplification: two ids
 * with one hash would count as one; at 64 bits among thousands, that does not happen. */
static uint64_t id_hash(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h < 2 ? h + 2 : h;
}

/* The "sender" of a message: the 36 characters after its last "sender":" (the server
 * appends it after the client's own members, whose strings cannot hold an unescaped quote).
 * False if there is none. */
static bool find_sender(const uint8_t *p, size_t n, const uint8_t **id)
{
    static const char key[] = "\"sender\":\"";
    const size_t kl = sizeof key - 1;
    const uint8_t *last = NULL;
    for (const uint8_t *q = p; (q = memmem(q, (size_t)(p + n - q), key, kl)) != NULL; q += kl)
        last = q;
    if (last == NULL || (size_t)(p + n - last) < kl + 36 + 1 || last[kl + 36] != '"')
        return false;
    *id = last + kl;
    return true;
}

static void roster_update(struct bench *b, struct conn *c);

/* Adds (is_add) or removes an id from c's roster (open addressing, linear probing). */
static void roster_apply(struct bench *b, struct conn *c, const uint8_t *id, bool is_add)
{
    if (c->known == NULL)
        return;
    uint64_t h = id_hash(id, 36);
    uint32_t mask = c->known_cap - 1, i = (uint32_t)h & mask, free_at = UINT32_MAX;
    for (uint32_t probes = 0; probes < c->known_cap; probes++, i = (i + 1) & mask) {
        uint64_t e = c->known[i];
        if (e == h) {
            if (!is_add) {
                c->known[i] = 1;
                c->known_n--;
            }
            roster_update(b, c);
            return;
        }
        if (e == 1 && free_at == UINT32_MAX)
            free_at = i;
        if (e == 0) {
            if (free_at == UINT32_MAX)
                free_at = i;
            break;
        }
    }
    if (!is_add)
        return; /* a leave for someone it never knew */
    if (free_at == UINT32_MAX || (uint64_t)c->known_n + 1 > (uint64_t)c->known_cap * 3 / 4) {
        b->st.roster_overflow++; /* more ids than its room holds: someone else's clients? */
        return;
    }
    c->known[free_at] = h;
    c->known_n++;
    roster_update(b, c);
}

/* Storm: is c done? Welcomed (or, with --no-welcome, open), and with rosters tracked,
 * knowing its whole room. */
static void roster_update(struct bench *b, struct conn *c)
{
    uint64_t since = (b->now_ns - b->storm_start_ns) / NS_PER_US;
    if (b->has_roster && !c->is_complete && c->is_welcomed &&
        (uint64_t)c->known_n + 1 >= b->room_target[c->room]) {
        c->is_complete = true;
        b->st.completed++;
        b->last_complete_ns = b->now_ns;
        hist_record(&b->complete_at, since);
    }
    if (!c->is_satisfied && (c->is_welcomed || b->opt.is_no_welcome) &&
        (!b->has_roster || c->is_complete)) {
        c->is_satisfied = true;
        b->storm_satisfied++;
    }
}

/* A welcome, in storm mode: timed, its peers counted (and known), and checked against
 * docs/protocol.md's rule for big rooms. */
static void on_welcome(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (c->is_welcomed) {
        b->st.second_welcomes++;
        return;
    }
    c->is_welcomed = true;
    b->st.welcomed++;
    b->room_welcomed[c->room]++;
    b->last_welcome_ns = b->now_ns;
    hist_record(&b->welcome_at, (b->now_ns - b->storm_start_ns) / NS_PER_US);
    hist_record(&b->welcome_lat, (b->now_ns - c->connect_ns) / NS_PER_US);

    /* {"type":"welcome","id":..,"color":..,"room":"..","peers":[..]} and maybe ,"count":N.
     * Nothing before "peers" can hold that text: an id, a number, a room name. */
    const uint8_t *end = p + n, *after = p;
    const uint8_t *q = memmem(p, n, "\"peers\":[", 9);
    uint64_t peers = 0;
    bool is_ok = q != NULL;
    if (is_ok) {
        struct json_iter it = {.pos = q + 9, .end = end};
        const uint8_t *el;
        size_t el_len;
        int r;
        while ((r = json_iter_next(&it, &el, &el_len)) > 0) {
            peers++;
            const uint8_t *id;
            if (c->known != NULL && find_sender(el, el_len, &id))
                roster_apply(b, c, id, true);
        }
        is_ok = r == 0;
        after = it.pos;
    }
    if (!is_ok) {
        bad_frame(b, c, "welcome without a well-formed \"peers\" array");
        return;
    }
    uint64_t count = 0;
    const uint8_t *k = memmem(after, (size_t)(end - after), "\"count\":", 8);
    bool has_count = k != NULL && read_uint(k + 8, end, &count);
    if (has_count)
        b->st.welcomes_with_count++;
    if (peers > b->st.welcome_peers_max)
        b->st.welcome_peers_max = peers;
    if (b->opt.roster_max > 0 && peers > b->opt.roster_max)
        b->st.welcome_over_roster_max++;
    if (!has_count && peers < c->members_before)
        b->st.welcome_incomplete_no_count++; /* it does not list the whole room, says nothing */
    if (has_count && count < peers + 1)
        b->st.welcome_bad_count++;
    if (c->is_batch && !has_count)
        b->st.batch_welcome_no_count++;
    roster_update(b, c);
}

/* A server message in storm mode: welcome, join and leave shape what c knows. */
static void on_presence(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    static const char welcome[] = "{\"type\":\"welcome\"";
    static const char join[] = "{\"type\":\"join\",\"sender\":\"";
    static const char leave[] = "{\"type\":\"leave\",\"sender\":\"";
    if (n >= sizeof welcome - 1 && memcmp(p, welcome, sizeof welcome - 1) == 0) {
        on_welcome(b, c, p, n);
    } else if (c->known != NULL && n >= sizeof join - 1 + 36 &&
               memcmp(p, join, sizeof join - 1) == 0) {
        roster_apply(b, c, p + sizeof join - 1, true);
    } else if (c->known != NULL && n >= sizeof leave - 1 + 36 &&
               memcmp(p, leave, sizeof leave - 1) == 0) {
        roster_apply(b, c, p + sizeof leave - 1, false);
    }
}

/* ---- Freshness ----------------------------------------------------------------------- */

/* A delivery from sender "i" (read right after "t", where we put it) with scheduled time
 * t_us: c now holds it, unless it already holds a newer one (reordered) or this one. */
static void note_position(struct bench *b, struct conn *c, const uint8_t *p, size_t n,
                          const uint8_t *t_end, uint64_t t_us)
{
    const uint8_t *end = p + n;
    uint64_t s;
    bool is_ok = end - t_end > 5 && memcmp(t_end, ",\"i\":", 5) == 0 ? read_uint(t_end + 5, end, &s)
                                                                     : find_member(p, n, 'i', &s);
    if (!is_ok || s >= b->nconns || s % b->nrooms != c->room || t_us == 0 || t_us > UINT32_MAX) {
        b->st.unattributed++;
        return;
    }
    uint32_t *held = &c->fresh[s / b->nrooms];
    uint32_t t = (uint32_t)t_us;
    if (t > *held) {
        *held = t;
    } else if (t == *held) {
        b->st.duplicates++;
    } else {
        if (b->st.reordered++ == 0)
            fprintf(stderr,
                    "wsbench: conn %" PRIu32 " got sender %" PRIu64 "'s position of t=%" PRIu32
                    " us after the one of t=%" PRIu32 " us (reordered)\n",
                    c->slot, s, t, *held);
    }
}

/* ---- Messages ------------------------------------------------------------------------ */

/* One message: a seed frame's text, or one element of a batch frame. Those whose text
 * starts with {"type": are server messages (wsrelay's welcome, join, leave, count) and
 * count as "other" (storm mode reads them: on_presence()); a welcome's "peers" holds
 * earlier cursor messages, "t" included, which must not count as deliveries. Any other text
 * with a "t" member is a delivery; its latency is now - t. With several ports, a measured
 * delivery is also filed by its "n": from c's own node (local) or through the backplane
 * (cross). */
static void on_message(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (is_counting_rx(b))
        b->st.rx_messages++;
    if (n >= 8 && memcmp(p, "{\"type\":", 8) == 0) {
        b->st.other++;
        if (b->opt.mode == MODE_STORM)
            on_presence(b, c, p, n);
        return;
    }
    if (b->opt.mode == MODE_STORM) { /* someone moved: in a big room, that announces it */
        const uint8_t *id;
        b->st.other++;
        if (c->known != NULL && find_sender(p, n, &id))
            roster_apply(b, c, id, true);
        return;
    }
    uint64_t t_us;
    const uint8_t *t_end = find_member_end(p, n, 't', &t_us);
    if (t_end == NULL) {
        b->st.other++;
        return;
    }
    uint64_t room = 0;
    if (b->opt.rooms > 0 && (!find_member(p, n, 'r', &room) || room != c->room)) {
        b->st.foreign++; /* another room's message, or one that names none: never ours */
        if (b->st.foreign == 1)
            fprintf(stderr,
                    "wsbench: conn %" PRIu32 " (room r%" PRIu32 ") got another room's "
                    "message: %.*s\n",
                    c->slot, c->room, (int)(n < 120 ? n : 120), (const char *)p);
        return;
    }
    b->st.deliveries++;
    if (c->fresh != NULL)
        note_position(b, c, p, n, t_end, t_us);
    uint64_t now_us = (b->now_ns - b->t0_ns) / NS_PER_US;
    uint64_t lat = now_us > t_us ? now_us - t_us : 0;
    hist_record(&b->recent, lat);
    if (is_measured(b, t_us)) {
        b->st.received++;
        hist_record(&b->lat, lat);
        b->room_received[(size_t)c->room * b->nports + c->node]++;
        room_hist_record(&b->room[c->room], lat);
        uint64_t node;
        if (b->nports > 1 && find_member(p, n, 'n', &node)) {
            if (node == c->node) {
                b->st.local_received++;
                hist_record(&b->local, lat);
            } else {
                b->st.cross_received++;
                hist_record(&b->cross, lat);
            }
        }
    }
    uint64_t x;
    if (c->is_sender && c->in_flight > 0 && find_member(p, n, 'x', &x) && x == c->sender_id)
        c->in_flight--; /* fanout: one of ours came back; the window opens by one */
}

/* A wsrelay.batch frame: a JSON array of objects, never empty (docs/protocol.md); each
 * element is handled as a seed frame would be. Anything else is a bad frame. */
static void on_batch(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n, *q = skip_ws(p, end);
    if (q == end || *q != '[') {
        b->st.bad_batches++;
        bad_frame(b, c, "wsrelay.batch frame is not a JSON array");
        return;
    }
    struct json_iter it = {.pos = q + 1, .end = end};
    const uint8_t *el;
    size_t el_len;
    int r = 0;
    while (c->fd >= 0 && (r = json_iter_next(&it, &el, &el_len)) > 0) {
        if (*el != '{') {
            r = -1;
            break;
        }
        on_message(b, c, el, el_len);
    }
    if (c->fd < 0)
        return; /* an element failed the connection */
    if (r < 0 || it.count == 0 || skip_ws(it.pos, end) != end) {
        b->st.bad_batches++;
        bad_frame(b, c, "wsrelay.batch frame is not a non-empty JSON array of objects");
    }
}

/* One text frame, its UTF-8 already checked: a batch or one message. */
static void on_text_valid(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (is_counting_rx(b))
        b->st.rx_frames++;
    if (c->is_batch)
        on_batch(b, c, p, n);
    else
        on_message(b, c, p, n);
}

static void on_text(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (!is_ascii(p, n) && !utf8_valid(p, n)) {
        bad_frame(b, c, "text frame is not UTF-8 (RFC 6455 §8.1)");
        return;
    }
    on_text_valid(b, c, p, n);
}

/* A close frame from the server (§5.5.1). */
static void on_close_frame(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (n == 1) {
        bad_frame(b, c, "close frame with a 1-byte body (RFC 6455 §5.5.1)");
        return;
    }
    c->close_rcvd = true;
    if (!c->close_sent) {
        /* The server started it: unexpected in the middle of a run. */
        if (c->phase == CONN_OPEN && b->phase != PH_CLOSE && b->opt.mode != MODE_CHURN) {
            b->st.disconnects++;
            char why[64];
            snprintf(why, sizeof why, "server closed the connection (code %d)",
                     n >= 2 ? p[0] << 8 | p[1] : 1005);
            note_error(b, c, why, 0);
        }
        send_close(b, c, n >= 2 ? p[0] << 8 | p[1] : -1);
    }
    /* Now the server closes TCP (§7.1.1): we wait for its EOF rather than closing first,
     * which leaves TIME_WAIT on its side, not ours (churn would run out of ports). */
    c->phase = CONN_CLOSING;
    c->deadline_ns = b->now_ns + CLOSE_TIMEOUT_NS;
}

/* One complete frame whose header passed every check. */
static void on_frame(struct bench *b, struct conn *c, uint8_t opcode, const uint8_t *p, size_t n)
{
    switch (opcode) {
    case FRAME_OP_TEXT:
        on_text(b, c, p, n);
        break;
    case FRAME_OP_BINARY:
        b->st.other++;
        break;
    case FRAME_OP_PING: /* §5.5.2: answer with a pong carrying the same bytes */
        if (!c->close_sent)
            send_frame(b, c, FRAME_OP_PONG, p, n);
        break;
    case FRAME_OP_PONG: /* §5.5.3: unsolicited pongs are allowed and need no answer */
        break;
    case FRAME_OP_CLOSE:
        on_close_frame(b, c, p, n);
        break;
    default: /* frame_decode_hdr() refused the reserved ones; CONT was refused by our check */
        break;
    }
}

/* What frame_decode_hdr() accepts from anyone but a client must still refuse, or NULL. */
static const char *check_server_hdr(const struct frame_hdr *h)
{
    if (h->masked)
        return "masked frame from the server (RFC 6455 §5.1)";
    /* Simplification: fragmented messages are legal (§5.4), but no server we measure sends
     * one, and accepting them would mean reassembling; so they count as bad frames here. */
    if (!h->fin || h->opcode == FRAME_OP_CONT)
        return "fragmented message (FIN clear or continuation frame)";
    return NULL;
}

static const char *frame_err_text(ssize_t err)
{
    switch (err) {
    case FRAME_ERR_RSV:
        return "RSV bit set (RFC 6455 §5.2)";
    case FRAME_ERR_OPCODE:
        return "reserved opcode (RFC 6455 §5.2)";
    case FRAME_ERR_CONTROL:
        return "fragmented or oversized control frame (RFC 6455 §5.5)";
    case FRAME_ERR_LENGTH:
        return "length not in its shortest form, or 64-bit top bit set (RFC 6455 §5.2)";
    default:
        return "bad frame header";
    }
}

/* A text frame of len > SMALL_MAX bytes begins on a connection that must read it (batch,
 * storm): make room to assemble it, within ASSEMBLE_MAX and ASSEMBLE_TOTAL_MAX; past them
 * it is streamed unread and counted as unparsed_big. */
static void big_begin(struct bench *b, struct conn *c, uint64_t len)
{
    c->is_big_kept = false;
    c->big_len = 0;
    if (len > ASSEMBLE_MAX || b->assembling - c->big_cap + len > ASSEMBLE_TOTAL_MAX) {
        b->st.unparsed_big++;
        return;
    }
    if (c->big_cap < len) {
        uint8_t *nb = realloc(c->big, (size_t)len);
        if (nb == NULL) {
            b->st.unparsed_big++;
            return;
        }
        b->assembling += (size_t)len - c->big_cap;
        c->big = nb;
        c->big_cap = (size_t)len;
    }
    c->is_big_kept = true;
}

/* Passes the bytes of a frame over SMALL_MAX; returns how many of p[0..avail) it used. */
static size_t stream_big(struct bench *b, struct conn *c, const uint8_t *p, size_t avail)
{
    size_t k = avail < c->big_left ? avail : (size_t)c->big_left;
    if (c->big_is_text && !utf8_feed(&c->big_utf8, p, k)) {
        bad_frame(b, c, "text frame is not UTF-8 (RFC 6455 §8.1)");
        return k;
    }
    if (c->is_big_kept) { /* big_begin() made room for the whole payload */
        memcpy(c->big + c->big_len, p, k);
        c->big_len += k;
    }
    c->big_left -= k;
    if (c->big_left == 0) {
        if (c->big_is_text && !utf8_is_complete(&c->big_utf8)) {
            bad_frame(b, c, "text frame ends inside a UTF-8 sequence (RFC 6455 §8.1)");
            return k;
        }
        if (!c->is_big_kept) {
            /* Simplification: a message this large, streamed, is never a delivery (ours are
             * < 100 bytes). */
            b->st.other++;
            if (is_counting_rx(b))
                b->st.rx_frames++;
            return k;
        }
        /* Detach the buffer while its frame is handled: a bad frame in it ends c, which
         * must not free what we are reading. Keep it for the next frame only if small. */
        uint8_t *buf = c->big;
        size_t cap = c->big_cap, len = c->big_len;
        c->big = NULL;
        c->big_len = c->big_cap = 0;
        c->is_big_kept = false;
        on_text_valid(b, c, buf, len);
        if (c->fd >= 0 && c->big == NULL && cap <= 64 * 1024 && b->opt.mode != MODE_STORM) {
            c->big = buf;
            c->big_cap = cap;
        } else {
            free(buf);
            b->assembling -= cap;
        }
    }
    return k;
}

/* Handles every complete frame in p[0..len); returns how many bytes it used (the rest is an
 * incomplete frame). Stops when the connection fails; after the server's close frame the
 * rest is ignored (§5.5.1: nothing may follow it). */
static size_t parse_frames(struct bench *b, struct conn *c, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len && c->fd >= 0 && !c->close_rcvd) {
        const uint8_t *f = p + off;
        size_t avail = len - off;
        if (c->big_left > 0) {
            off += stream_big(b, c, f, avail);
            continue;
        }
        /* Fast path for nearly every frame: 0x81 is FIN + text with RSV clear, and a second
         * byte of 0..125 is MASK clear with a 7-bit length (necessarily the shortest form).
         * Exactly what the full check below would accept for such a frame, in two compares. */
        if (avail >= 2 && f[0] == 0x81 && f[1] <= 125) {
            size_t n = f[1];
            if (avail < 2 + n)
                break;
            on_text(b, c, f + 2, n);
            off += 2 + n;
            continue;
        }
        struct frame_hdr h;
        ssize_t hl = frame_decode_hdr(f, avail, false, &h);
        if (hl == 0)
            break;
        const char *bad = hl < 0 ? frame_err_text(hl) : check_server_hdr(&h);
        if (bad != NULL) {
            bad_frame(b, c, bad);
            break;
        }
        if (h.payload_len > SMALL_MAX) { /* a data frame: control frames are <= 125 */
            c->big_left = h.payload_len;
            c->big_is_text = h.opcode == FRAME_OP_TEXT;
            utf8_init(&c->big_utf8);
            c->is_big_kept = false;
            if (c->big_is_text && (c->is_batch || b->opt.mode == MODE_STORM))
                big_begin(b, c, h.payload_len);
            off += (size_t)hl;
            continue;
        }
        size_t n = (size_t)h.payload_len;
        if (avail < (size_t)hl + n)
            break;
        on_frame(b, c, h.opcode, f + hl, n);
        off += (size_t)hl + n;
    }
    return c->close_rcvd ? len : off;
}

/* The server closed TCP. Clean after a close frame went either way (§7.1.1: the server
 * closes first); otherwise the connection was dropped. */
static void on_eof(struct bench *b, struct conn *c, int err)
{
    if (c->phase == CONN_CLOSING && (c->close_rcvd || b->opt.mode != MODE_CHURN))
        conn_end(b, c, true, NULL, 0);
    else if (c->phase == CONN_HANDSHAKE)
        conn_end(b, c, false, "connection closed during the handshake", err);
    else
        conn_end(b, c, false, "connection closed without a close frame", err);
}

static void on_readable(struct bench *b, struct conn *c)
{
    size_t carried = c->carry_len;
    uint8_t *start = b->rbuf + CARRY_MAX - carried;
    ssize_t n = conn_recv(b, c, b->rbuf + CARRY_MAX, READ_CHUNK);
    if (c->tls_read_wants_out) /* OpenSSL must write before it can read on */
        conn_set_events(b, c, EPOLLIN | EPOLLOUT);
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return; /* level-triggered: epoll will tell us again */
    if (n == -EPROTO) {
        conn_end(b, c, false, b->tls_why, 0);
        return;
    }
    if (n <= 0) {
        on_eof(b, c, (int)-n);
        return;
    }
    if (carried > 0)
        memcpy(start, c->carry, carried);
    b->now_ns = mono_ns(); /* the arrival time of every message in this read */
    b->last_rx_ns = b->now_ns;
    size_t len = carried + (size_t)n;
    size_t used = 0;

    if (c->phase == CONN_HANDSHAKE) {
        const char *why = NULL;
        bool is_batch = false;
        ssize_t head = check_response(c, start, len, b->opt.is_batch, &is_batch, &why);
        if (head < 0) {
            conn_end(b, c, false, why, 0);
            return;
        }
        if (head > 0) {
            used = (size_t)head;
            c->phase = CONN_OPEN;
            c->deadline_ns = 0;
            c->is_counted = true;
            c->is_batch = is_batch;
            b->st.batch_clients += is_batch;
            b->opened++;
            b->nopen++;
            if (b->opt.mode == MODE_STORM) {
                b->last_open_ns = b->now_ns;
                hist_record(&b->open_at, (b->now_ns - b->storm_start_ns) / NS_PER_US);
                roster_update(b, c); /* --no-welcome: done now */
            }
            if (b->opt.mode == MODE_CHURN) /* churn: close right away (§7.1.2) */
                send_close(b, c, 1000);
        }
    }
    if (c->phase != CONN_HANDSHAKE)
        used += parse_frames(b, c, start + used, len - used);
    if (c->fd < 0)
        return;

    size_t tail = len - used; /* < CARRY_MAX: see SMALL_MAX and check_response() */
    if (tail > 0 && c->carry == NULL && (c->carry = malloc(CARRY_MAX)) == NULL) {
        conn_end(b, c, false, "out of memory", ENOMEM);
        return;
    }
    if (tail > 0)
        memcpy(c->carry, start + used, tail);
    c->carry_len = tail;
}

static void on_event(struct bench *b, struct conn *c, uint32_t ev)
{
    if (c->fd < 0)
        return;
    if (c->phase == CONN_CONNECTING) {
        on_connected(b, c); /* EPOLLOUT, EPOLLERR or EPOLLHUP: SO_ERROR says which */
        return;
    }
    if (c->phase == CONN_TLS) {
        tls_step(b, c); /* whichever way it waited; an error shows in SSL_do_handshake */
        return;
    }
    /* epoll reports EPOLLHUP and EPOLLERR unasked: read, and recv() tells us what happened. */
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) || (c->tls_read_wants_out && (ev & EPOLLOUT)))
        on_readable(b, c);
    if (c->fd >= 0 && (ev & EPOLLOUT))
        conn_flush(b, c);
}

/* ========================================================================================
 * The loop and the scheduled work
 * ====================================================================================== */

/* Fails connections whose handshake or closing handshake takes too long. */
static void sweep_timeouts(struct bench *b)
{
    for (uint32_t i = 0; i < b->nconns; i++) {
        struct conn *c = &b->conns[i];
        if (c->fd < 0 || c->deadline_ns == 0 || b->now_ns < c->deadline_ns)
            continue;
        if (c->phase == CONN_CLOSING)
            /* Their close frame came but their EOF did not: the handshake is done anyway. */
            conn_end(b, c, c->close_rcvd, "no close frame from the server (timeout)", 0);
        else
            conn_end(b, c, false, "handshake timeout", 0);
    }
}

/* Ramp-up: connections start at --connect-rate (a burst of SYNs would overflow the server's
 * listen backlog and measure the kernel's SYN retry timer instead), with at most --inflight
 * handshakes in flight. A storm has no rate: only --inflight holds it back. Returns when it
 * next wants to run. */
static uint64_t tick_ramp(struct bench *b)
{
    double elapsed = (double)(b->now_ns - b->ramp_start_ns) / 1e9;
    bool is_storm = b->opt.mode == MODE_STORM;
    double allowed = is_storm ? (double)b->nconns : elapsed * b->opt.connect_rate + 1;
    const uint64_t inflight = b->opt.inflight;
    while (b->started < b->nconns && (double)b->started < allowed &&
           b->started - b->opened - b->st.connect_failures < inflight)
        conn_start(b, &b->conns[b->order[b->started++]]);
    if (b->started == b->nconns || is_storm ||
        b->started - b->opened - b->st.connect_failures >= inflight)
        return UINT64_MAX; /* nothing to do until a handshake ends */
    return b->ramp_start_ns + secs_to_ns((double)b->started / b->opt.connect_rate);
}

/* The server's RSS, every RSS_SAMPLE_NS while measuring: its maximum (server_rss_max_kb). */
static uint64_t tick_rss_max(struct bench *b)
{
    if (b->opt.server_pids.n == 0)
        return UINT64_MAX;
    if (b->now_ns >= b->next_rss_max_ns) {
        uint64_t kb;
        if (servers_rss_kb(&b->opt, &kb, NULL)) {
            b->has_rss_max = true;
            if (kb > b->rss_max_kb)
                b->rss_max_kb = kb;
        }
        b->next_rss_max_ns = b->now_ns + RSS_SAMPLE_NS;
    }
    return b->next_rss_max_ns;
}

/* Freshness, every FRESH_SAMPLE_NS of the measured period: for every open receiver and
 * every other member of its room that is an open, scheduled sender, the age of the newest
 * position the receiver holds from it (see the header). */
static uint64_t tick_fresh(struct bench *b)
{
    if (b->fresh_pool == NULL)
        return UINT64_MAX;
    if (b->now_ns < b->next_fresh_ns)
        return b->next_fresh_ns;
    uint64_t t0 = mono_ns();
    uint64_t now_us = (b->now_ns - b->t0_ns) / NS_PER_US;
    uint64_t began_us = (b->send_start_ns - b->t0_ns) / NS_PER_US;
    uint64_t never_age = now_us > began_us ? now_us - began_us : 0;
    for (uint32_t i = 0; i < b->nconns; i++)
        b->moving[i] = b->conns[i].phase == CONN_OPEN && b->conns[i].is_active;
    for (uint32_t i = 0; i < b->nconns; i++) {
        const struct conn *c = &b->conns[i];
        if (c->phase != CONN_OPEN)
            continue;
        const uint32_t members = (b->nconns - c->room + b->nrooms - 1) / b->nrooms;
        for (uint32_t k = 0, s = c->room; k < members; k++, s += b->nrooms) {
            if (!b->moving[s] || s == i)
                continue;
            uint32_t t = c->fresh[k];
            if (t == 0) {
                b->st.fresh_never++;
                hist_record(&b->fresh, never_age);
            } else {
                hist_record(&b->fresh, now_us > t ? now_us - t : 0);
            }
        }
    }
    b->fresh_sweeps++;
    uint64_t took = mono_ns() - t0;
    if (took > b->fresh_sample_max_ns)
        b->fresh_sample_max_ns = took;
    b->next_fresh_ns += FRESH_SAMPLE_NS;
    if (b->next_fresh_ns <= b->now_ns) /* we fell behind: the next sample is a period away */
        b->next_fresh_ns = b->now_ns + FRESH_SAMPLE_NS;
    return b->next_fresh_ns;
}

/* A triangle wave between 0 and amp: how x and y glide back and forth. */
static uint64_t triangle(uint64_t v, uint64_t amp)
{
    uint64_t r = v % (2 * amp);
    return r < amp ? r : 2 * amp - r;
}

/* Cursor: the open-loop schedule. Send j goes to client j % N at
 *
 *     send_start + j * period / N      (period = 1 / rate)
 *
 * so client i sends at send_start + i * period / N + k * period: N clients evenly spread
 * over each period. Every send whose time has come is made now, however late, and carries
 * its *scheduled* time as "t": a server (or a generator) that stalls shows as latency; it
 * cannot make messages wait unseen (no coordinated omission). Returns the next send time. */
static uint64_t tick_cursor(struct bench *b)
{
    for (;;) {
        uint64_t due = b->send_start_ns + (uint64_t)((double)b->send_j * b->step_ns);
        if (due >= b->send_until_ns)
            return UINT64_MAX;
        if (due > b->now_ns)
            return due;
        uint64_t i = b->send_j % b->nactive, k = b->send_j / b->nactive;
        b->send_j++;
        struct conn *c = &b->conns[b->active[i]];
        if (c->phase != CONN_OPEN)
            continue; /* it died: its sends are not made, nor counted */
        uint64_t x = 40 + triangle(k * 4 + i * 97, 1200), y = 40 + triangle(k * 3 + i * 61, 700);
        uint64_t t_us = (due - b->t0_ns) / NS_PER_US;
        if (send_cursor(b, c, x, y, t_us) && is_measured(b, t_us)) {
            b->st.sent++;
            b->st.sent_by_node[c->node]++;
            b->room_sent[(size_t)c->room * b->nports + c->node]++;
            /* Our own lateness is part of every latency we report (by design, see above):
             * measured apart, it shows when the generator, not the server, is behind. */
            hist_record(&b->lag, (b->now_ns - due) / NS_PER_US);
        }
    }
}

/* Fanout: each sender tops its window up. "t" is the real send time; x names the sender. */
static void tick_fanout(struct bench *b)
{
    if (b->now_ns >= b->send_until_ns)
        return;
    uint64_t t_us = (b->now_ns - b->t0_ns) / NS_PER_US;
    bool measured = is_measured(b, t_us);
    for (uint32_t s = 0; s < b->opt.senders; s++) {
        struct conn *c = &b->conns[s];
        while (c->phase == CONN_OPEN && c->in_flight < b->opt.window) {
            if (!send_cursor(b, c, c->sender_id, c->seq++ % 1000, t_us))
                break;
            c->in_flight++;
            if (measured) {
                b->st.sent++;
                b->st.sent_by_node[c->node]++;
                b->room_sent[(size_t)c->room * b->nports + c->node]++;
            }
        }
    }
}

/* Churn: every free slot starts a new cycle while the measured period lasts. A slot that
 * failed at once (no free port, EMFILE) makes the next try wait 10 ms rather than spin. */
static uint64_t tick_churn(struct bench *b)
{
    if (b->now_ns >= b->measure_end_ns)
        return UINT64_MAX;
    uint64_t before = b->st.connect_failures;
    for (uint32_t k = b->nfree; k > 0 && b->nfree > 0; k--) {
        conn_start(b, &b->conns[b->free_slots[--b->nfree]]);
        if (b->st.connect_failures != before)
            return b->now_ns + 10 * NS_PER_MS;
    }
    return UINT64_MAX;
}

/* Idle: samples the server's RSS until it stops changing. */
static uint64_t tick_settle(struct bench *b)
{
    if (b->opt.server_pids.n == 0 || b->now_ns < b->next_rss_ns)
        return b->next_rss_ns;
    uint64_t kb;
    if (servers_rss_kb(&b->opt, &kb, NULL) && kb != b->rss_last_kb) {
        b->rss_last_kb = kb;
        b->rss_stable_since_ns = b->now_ns;
    }
    b->next_rss_ns = b->now_ns + RSS_SAMPLE_NS;
    return b->next_rss_ns;
}

/* The work that is due at b->now_ns, whatever the sockets do. Returns when it is next due. */
static uint64_t tick(struct bench *b)
{
    if (b->now_ns >= b->next_sweep_ns) {
        sweep_timeouts(b);
        b->next_sweep_ns = b->now_ns + SWEEP_NS;
    }
    uint64_t wake = b->next_sweep_ns, w = UINT64_MAX;
    bool is_measuring =
        b->opt.mode == MODE_STORM
            ? b->phase == PH_RAMP
            : b->phase == PH_WARMUP || b->phase == PH_MEASURE || b->phase == PH_DRAIN;
    if (is_measuring &&
        (b->opt.mode == MODE_CURSOR || b->opt.mode == MODE_FANOUT || b->opt.mode == MODE_STORM)) {
        uint64_t r = tick_rss_max(b);
        wake = r < wake ? r : wake;
    }
    if (b->phase == PH_MEASURE) {
        uint64_t f = tick_fresh(b);
        wake = f < wake ? f : wake;
    }
    switch (b->phase) {
    case PH_RAMP:
        w = tick_ramp(b);
        break;
    case PH_WARMUP:
    case PH_MEASURE:
        if (b->opt.mode == MODE_CURSOR)
            w = b->next_send_ns = tick_cursor(b);
        else if (b->opt.mode == MODE_FANOUT)
            tick_fanout(b); /* it runs again when echoes open the windows */
        else if (is_cycling(b))
            w = tick_churn(b);
        break;
    case PH_SETTLE:
        w = tick_settle(b);
        break;
    default:
        break;
    }
    return w < wake ? w : wake;
}

static void progress(struct bench *b);

/* --tls: one more read for each connection whose bytes OpenSSL already holds (epoll, which
 * sees only the socket, would not report them). A read that leaves bytes behind again lists
 * its connection again, for the next pass, which then does not sleep. Connections ended
 * since they were listed have had their flag cleared, and are skipped. */
static void read_tls_pending(struct bench *b)
{
    uint32_t n = b->ntls_pending, *list = b->tls_pending;
    b->tls_pending = b->tls_reading; /* the reads below list into the other array */
    b->tls_reading = list;
    b->ntls_pending = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct conn *c = &b->conns[list[i]];
        if (!c->is_tls_pending)
            continue;
        c->is_tls_pending = false;
        if (c->fd >= 0 && c->ssl != NULL && c->phase != CONN_TLS)
            on_readable(b, c);
    }
}

/* Runs the loop until until_ns, or until done(b) says so. Each pass: the due work (sends,
 * connects, timeouts), one flush per connection with output, a progress line if one is due,
 * then epoll_pwait2() (nanosecond timeout: a send due in 300 us must not wait a whole
 * millisecond, or the generator's lateness would show as the server's latency) and the
 * dispatch of what it returns. */
static void run_until(struct bench *b, uint64_t until_ns, bool (*done)(const struct bench *))
{
    struct epoll_event ev[MAX_EVENTS];
    b->busy_from_ns = mono_ns();
    for (;;) {
        b->now_ns = mono_ns();
        uint64_t wake = tick(b);
        flush_writers(b);
        if (b->now_ns >= b->next_progress_ns)
            progress(b);
        if (b->now_ns >= until_ns || (done != NULL && done(b)))
            return;
        if (until_ns < wake)
            wake = until_ns;
        if (b->next_progress_ns < wake)
            wake = b->next_progress_ns;
        uint64_t wait = wake > b->now_ns && b->ntls_pending == 0 ? wake - b->now_ns : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait / NS_PER_S),
                              .tv_nsec = (long)(wait % NS_PER_S)};
        uint64_t busy = mono_ns() - b->busy_from_ns;
        if ((b->phase == PH_WARMUP || b->phase == PH_MEASURE || b->phase == PH_DRAIN) &&
            busy > b->busy_max_ns)
            b->busy_max_ns = busy;
        int n = epoll_pwait2(b->epfd, ev, MAX_EVENTS, &ts, NULL);
        b->busy_from_ns = mono_ns();
        if (n < 0 && errno != EINTR) {
            perror("wsbench: epoll_pwait2");
            exit(EXIT_FAIL);
        }
        for (int i = 0; i < n; i++) {
            on_event(b, &b->conns[ev[i].data.u32], ev[i].events);
            /* A batch of big reads can take milliseconds; cursor sends that fall due
             * meanwhile go out now, not after the batch (each read updated now_ns). Only
             * cursor mode does this: it reuses no slot, so nothing here can meet a stale
             * event later in the batch. */
            if (b->now_ns >= b->next_send_ns) {
                b->next_send_ns = tick_cursor(b);
                flush_writers(b);
            }
        }
        read_tls_pending(b);
    }
}

static bool ramp_done(const struct bench *b)
{
    return b->opened + b->st.connect_failures >= b->nconns;
}

static bool all_received(const struct bench *b)
{
    return b->st.received >= b->st.expected;
}

static bool all_closed(const struct bench *b)
{
    return b->nlive == 0;
}

static bool input_quiet(const struct bench *b)
{
    return b->now_ns - b->last_rx_ns >= IDLE_QUIET_NS;
}

static bool rss_stable(const struct bench *b)
{
    return b->opt.server_pids.n == 0 || b->now_ns - b->rss_stable_since_ns >= RSS_STABLE_NS;
}

/* ========================================================================================
 * Progress lines
 * ====================================================================================== */

static void progress(struct bench *b)
{
    if (b->opt.progress <= 0) {
        b->next_progress_ns = UINT64_MAX;
        return;
    }
    uint64_t now = b->now_ns;
    double dt = (double)(now - b->prog_prev_ns) / 1e9;
    const char *ph = PHASE_NAMES[b->phase];
    double t = (double)(now - b->t0_ns) / 1e9;
    if (b->phase == PH_RAMP && b->opt.mode == MODE_STORM) {
        fprintf(stderr,
                "wsbench %5.1fs storm: %" PRIu32 "/%" PRIu32 " open, %" PRIu64 " welcomed, %" PRIu64
                " know their room, %" PRIu64 " failed\n",
                t, b->opened, b->nconns, b->st.welcomed, b->st.completed, b->st.connect_failures);
    } else if (b->phase == PH_RAMP) {
        fprintf(stderr, "wsbench %5.1fs %s: %" PRIu32 "/%" PRIu32 " open, %" PRIu64 " failed\n", t,
                ph, b->opened, b->nconns, b->st.connect_failures);
    } else if (is_cycling(b)) {
        fprintf(stderr,
                "wsbench %5.1fs %s: %.0f cycles/s, %" PRIu64 " cycles, %" PRIu64 " failures\n", t,
                MODE_NAMES[b->opt.mode], (double)(b->st.cycles - b->prog_prev_cycles) / dt,
                b->st.cycles, b->st.failures);
    } else if (b->opt.mode == MODE_IDLE) {
        fprintf(stderr, "wsbench %5.1fs %s: %" PRIu32 " open, %" PRIu64 " messages in\n", t, ph,
                b->nopen, b->st.other);
    } else {
        fprintf(stderr,
                "wsbench %5.1fs %s: %.3f M deliveries/s, p50 %.2f ms, p99 %.2f ms, "
                "max %.2f ms, %" PRIu32 " open, %" PRIu64 " bad frames\n",
                t, ph, (double)(b->st.deliveries - b->prog_prev_deliveries) / dt / 1e6,
                (double)hist_percentile(&b->recent, 50) / 1e3,
                (double)hist_percentile(&b->recent, 99) / 1e3, (double)b->recent.max / 1e3,
                b->nopen, b->st.bad_frames);
    }
    hist_reset(&b->recent);
    b->prog_prev_ns = now;
    b->prog_prev_deliveries = b->st.deliveries;
    b->prog_prev_cycles = b->st.cycles;
    b->next_progress_ns = now + secs_to_ns(b->opt.progress);
}

/* ========================================================================================
 * The modes
 * ====================================================================================== */

/* Opens every connection (at --connect-rate) and waits for their handshakes. False if not
 * a single one opened: the run cannot happen. */
static bool ramp_up(struct bench *b)
{
    b->phase = PH_RAMP;
    b->ramp_start_ns = mono_ns();
    run_until(b, UINT64_MAX, ramp_done);
    if (b->opened == 0) {
        fprintf(stderr, "wsbench: could not open any WebSocket to %s%s (%s)\n", b->target,
                b->opt.path, b->first_error[0] ? b->first_error : "no error recorded");
        return false;
    }
    return true;
}

static void measure_begin(struct bench *b)
{
    b->phase = PH_MEASURE;
    b->receivers = b->nopen;
    for (uint32_t i = 0; i < b->nconns; i++)
        if (b->conns[i].is_counted) {
            const struct conn *c = &b->conns[i];
            b->receivers_by_node[c->node]++;
            b->room_receivers[(size_t)c->room * b->nports + c->node]++;
            b->room[c->room].receivers++;
        }
    b->next_fresh_ns = mono_ns() + FRESH_SAMPLE_NS;
    cpu_mark(&b->opt, &b->cpu_start);
}

/* The processes' RSS at the end of the measured period (or of idle's settling). */
static void read_rss_after(struct bench *b)
{
    b->has_rss_after = servers_rss_kb(&b->opt, &b->rss_after_kb, b->rss_each_kb);
    b->has_redis_rss =
        b->opt.redis_pid > 0 && proc_rss_kb((pid_t)b->opt.redis_pid, &b->redis_rss_kb);
}

static void measure_end(struct bench *b)
{
    cpu_mark(&b->opt, &b->cpu_end);
    read_rss_after(b);
    b->has_hwm = servers_hwm_kb(&b->opt, &b->hwm_kb);
    if (b->has_rss_after && b->rss_after_kb > b->rss_max_kb) {
        b->rss_max_kb = b->rss_after_kb; /* the last reading counts too */
        b->has_rss_max = true;
    }
    if (b->fresh_pool == NULL)
        return;
    /* Pairs still holding nothing now: a receiver that never heard of a moving sender. */
    for (uint32_t i = 0; i < b->nconns; i++) {
        const struct conn *c = &b->conns[i];
        if (c->phase != CONN_OPEN)
            continue;
        const uint32_t members = (b->nconns - c->room + b->nrooms - 1) / b->nrooms;
        for (uint32_t k = 0, s = c->room; k < members; k++, s += b->nrooms)
            if (s != i && b->conns[s].phase == CONN_OPEN && b->conns[s].is_active &&
                c->fresh[k] == 0)
                b->fresh_never_pairs++;
    }
}

/* Closes every connection with the closing handshake and waits (a while) for the server's
 * EOFs; what is left after that is simply closed. */
static void close_all(struct bench *b)
{
    b->phase = PH_CLOSE;
    b->now_ns = mono_ns();
    for (uint32_t i = 0; i < b->nconns; i++)
        if (b->conns[i].phase == CONN_OPEN)
            send_close(b, &b->conns[i], 1000);
    run_until(b, mono_ns() + CLOSE_ALL_NS, all_closed);
    for (uint32_t i = 0; i < b->nconns; i++)
        if (b->conns[i].fd >= 0)
            conn_end(b, &b->conns[i], true, NULL, 0);
}

/* Sets the sending period [start, start + warmup + duration) and the measured part of it. */
static void schedule(struct bench *b)
{
    b->send_start_ns = mono_ns();
    b->measure_start_ns = b->send_start_ns + secs_to_ns(b->opt.warmup);
    b->measure_end_ns = b->measure_start_ns + secs_to_ns(b->opt.duration);
    b->send_until_ns = b->measure_end_ns;
    b->measure_from_us = (b->measure_start_ns - b->t0_ns) / NS_PER_US;
    b->measure_until_us = (b->measure_end_ns - b->t0_ns) / NS_PER_US;
}

/* cursor and fanout share their shape: ramp, warm up, measure, drain, close. */
static int run_traffic(struct bench *b)
{
    if (!ramp_up(b))
        return -1;
    if (b->opt.mode == MODE_CURSOR) {
        b->nactive = 0;
        for (uint32_t i = 0; i < b->nconns; i++)
            if (b->conns[i].phase == CONN_OPEN) {
                b->active[b->nactive++] = i;
                b->conns[i].is_active = true;
            }
        b->step_ns = b->nactive ? 1e9 / (b->opt.rate * (double)b->nactive) : 0;
    }
    schedule(b);
    if (b->opt.mode == MODE_CURSOR && b->nactive == 0)
        b->send_until_ns = b->send_start_ns; /* every client died during the ramp */
    b->phase = PH_WARMUP;
    run_until(b, b->measure_start_ns, NULL);
    measure_begin(b);
    run_until(b, b->measure_end_ns, NULL);
    measure_end(b);
    b->next_send_ns = UINT64_MAX; /* sending is over */
    /* Every open connection of a room receives every message of that room, its own
     * included (without --rooms: everyone receives everything); with several ports, those
     * on other nodes than the sender's through the backplane. */
    for (uint32_t r = 0; r < b->nrooms; r++) {
        const size_t base = (size_t)r * b->nports;
        for (uint32_t k = 0; k < b->nports; k++) {
            uint64_t sent = b->room_sent[base + k];
            b->st.expected += sent * b->room[r].receivers;
            b->st.cross_expected += sent * (b->room[r].receivers - b->room_receivers[base + k]);
        }
    }
    b->phase = PH_DRAIN;
    run_until(b, mono_ns() + secs_to_ns(b->opt.drain), all_received);
    close_all(b);
    return 0;
}

/* idle: RSS before, N connections, wait for quiet and a settled RSS, RSS after, hold. */
static int run_idle(struct bench *b)
{
    b->has_rss_before = servers_rss_kb(&b->opt, &b->rss_before_kb, NULL);
    if (!ramp_up(b))
        return -1;
    /* First the server must be done sending (joins go to everyone already there: N^2/2
     * messages), then its RSS must stop moving: unchanged for 1 s, or 3 s at most. */
    b->phase = PH_SETTLE;
    b->last_rx_ns = mono_ns();
    run_until(b, mono_ns() + IDLE_QUIET_MAX_NS, input_quiet);
    b->rss_stable_since_ns = mono_ns();
    b->rss_last_kb = 0;
    b->next_rss_ns = 0;
    run_until(b, mono_ns() + RSS_STABLE_MAX_NS, rss_stable);
    read_rss_after(b);
    b->receivers = b->nopen;

    b->phase = PH_HOLD;
    cpu_mark(&b->opt, &b->cpu_start);
    run_until(b, mono_ns() + secs_to_ns(b->opt.duration), NULL);
    cpu_mark(&b->opt, &b->cpu_end);
    close_all(b);
    return 0;
}

static bool storm_done(const struct bench *b)
{
    return b->storm_satisfied + b->storm_lost >= b->nconns;
}

/* storm: every connection started at once (--inflight at a time), until each is welcomed
 * (and knows its room, when tracked) or has failed, or --duration has passed. The server's
 * CPU and RSS are read over exactly that span. */
static int run_storm(struct bench *b)
{
    b->phase = PH_RAMP;
    b->now_ns = b->ramp_start_ns = b->storm_start_ns = mono_ns();
    b->receivers = b->nconns;
    cpu_mark(&b->opt, &b->cpu_start);
    run_until(b, b->storm_start_ns + secs_to_ns(b->opt.duration), storm_done);
    b->now_ns = mono_ns();
    measure_end(b);
    if (b->opened == 0) {
        fprintf(stderr, "wsbench: could not open any WebSocket to %s%s (%s)\n", b->target,
                b->opt.path, b->first_error[0] ? b->first_error : "no error recorded");
        return -1;
    }
    b->receivers = b->nopen;
    close_all(b);
    return 0;
}

/* churn: --clients cycles at a time for --duration; then the ones still running finish. */
static int run_churn(struct bench *b)
{
    for (uint32_t i = b->nconns; i > 0; i--) /* slot 0 first */
        b->free_slots[b->nfree++] = i - 1;
    b->measure_start_ns = mono_ns();
    b->measure_end_ns = b->measure_start_ns + secs_to_ns(b->opt.duration);
    measure_begin(b);
    run_until(b, b->measure_end_ns, NULL);
    measure_end(b);
    if (b->st.cycles == 0 && b->opened == 0) {
        fprintf(stderr, "wsbench: could not open any WebSocket to %s%s (%s)\n", b->target,
                b->opt.path, b->first_error[0] ? b->first_error : "no error recorded");
        return -1;
    }
    b->phase = PH_CLOSE; /* cycles that end from now on are not counted */
    run_until(b, mono_ns() + CHURN_WIND_DOWN_NS, all_closed);
    for (uint32_t i = 0; i < b->nconns; i++)
        if (b->conns[i].fd >= 0)
            conn_end(b, &b->conns[i], true, NULL, 0);
    return 0;
}

/* ========================================================================================
 * The report: a human summary on stderr, one JSON object as the last line of stdout
 * ====================================================================================== */

struct json {
    bool is_first;
};

static void json_key(struct json *j, const char *key)
{
    printf("%s\"%s\":", j->is_first ? "{" : ",", key);
    j->is_first = false;
}

static void json_str(struct json *j, const char *key, const char *v)
{
    json_key(j, key);
    printf("\"%s\"", v); /* only our own fixed strings: nothing to escape */
}

static void json_str_or_null(struct json *j, const char *key, const char *v)
{
    if (v != NULL) {
        json_str(j, key, v);
        return;
    }
    json_key(j, key);
    printf("null");
}

static void json_bool(struct json *j, const char *key, bool v)
{
    json_key(j, key);
    printf(v ? "true" : "false");
}

static void json_u64(struct json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    printf("%" PRIu64, v);
}

/* A number with `digits` decimals, or null when it is not known. */
static void json_num(struct json *j, const char *key, double v, int digits, bool is_known)
{
    json_key(j, key);
    if (is_known && isfinite(v))
        printf("%.*f", digits, v);
    else
        printf("null");
}

static void json_ratio(struct json *j, const char *key, double v, bool is_known)
{
    json_key(j, key);
    if (is_known && isfinite(v))
        printf("%.6g", v);
    else
        printf("null");
}

/* An array of numbers with `digits` decimals, null for those not known (NaN). */
static void json_nums(struct json *j, const char *key, const double *v, size_t n, int digits)
{
    json_key(j, key);
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            putchar(',');
        if (isfinite(v[i]))
            printf("%.*f", digits, v[i]);
        else
            printf("null");
    }
    putchar(']');
}

static double ms(uint64_t us)
{
    return (double)us / 1e3;
}

/* <prefix>p50_ms, p99_ms, p999_ms and max_ms of one histogram (null when it is empty). */
static void json_latencies(struct json *j, const char *prefix, const struct hist *h)
{
    static const char *const names[] = {"p50_ms", "p99_ms", "p999_ms", "max_ms"};
    const uint64_t us[] = {hist_percentile(h, 50), hist_percentile(h, 99), hist_percentile(h, 99.9),
                           h->max};
    for (size_t i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        json_num(j, key, ms(us[i]), 3, h->count > 0);
    }
}

/* --rooms: the rooms seen one by one, for the report. */
struct rooms_summary {
    uint32_t joined;                  /* rooms with at least one receiver */
    uint32_t size_min, size_max;      /* receivers of the smallest and the largest of those */
    uint32_t with_loss;               /* rooms that received less than they were owed */
    double loss_max;                  /* the worst room's loss */
    double p99_max_ms, p99_median_ms; /* the worst room's p99, and the median room's */
    bool has_p99;
};

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

static void summarize_rooms(const struct bench *b, struct rooms_summary *rs)
{
    *rs = (struct rooms_summary){.size_min = UINT32_MAX};
    uint64_t *p99 = calloc(b->nrooms, sizeof *p99);
    size_t np99 = 0;
    for (uint32_t r = 0; r < b->nrooms; r++) {
        const struct room_stat *st = &b->room[r];
        if (st->receivers == 0)
            continue;
        rs->joined++;
        rs->size_min = st->receivers < rs->size_min ? st->receivers : rs->size_min;
        rs->size_max = st->receivers > rs->size_max ? st->receivers : rs->size_max;
        uint64_t expected = 0, received = 0;
        for (uint32_t k = 0; k < b->nports; k++) {
            expected += b->room_sent[(size_t)r * b->nports + k] * st->receivers;
            received += b->room_received[(size_t)r * b->nports + k];
        }
        if (received < expected) {
            rs->with_loss++;
            double loss = 1.0 - (double)received / (double)expected;
            rs->loss_max = loss > rs->loss_max ? loss : rs->loss_max;
        }
        if (st->count > 0 && p99 != NULL)
            p99[np99++] = room_hist_percentile(st, 99);
    }
    if (rs->joined == 0)
        rs->size_min = 0;
    if (np99 > 0) {
        qsort(p99, np99, sizeof *p99, cmp_u64);
        rs->has_p99 = true;
        rs->p99_max_ms = ms(p99[np99 - 1]);
        rs->p99_median_ms = ms(p99[np99 / 2]);
    }
    free(p99);
}

static void report(struct bench *b)
{
    const struct options *o = &b->opt;
    double wall = (double)(b->cpu_end.wall_ns - b->cpu_start.wall_ns) / 1e9;
    bool has_cpu = wall > 0;
    bool has_server_cpu = has_cpu && b->cpu_start.has_server && b->cpu_end.has_server;
    double client_cpu = has_cpu ? (b->cpu_end.client_s - b->cpu_start.client_s) / wall : NAN;
    double server_cpu = has_server_cpu ? (b->cpu_end.server_s - b->cpu_start.server_s) / wall : NAN;
    double server_each[LIST_MAX], rss_each[LIST_MAX];
    size_t npids = o->server_pids.n;
    for (size_t i = 0; i < npids; i++) {
        server_each[i] = has_server_cpu
                             ? (b->cpu_end.server_each_s[i] - b->cpu_start.server_each_s[i]) / wall
                             : NAN;
        rss_each[i] = b->has_rss_after ? (double)b->rss_each_kb[i] : NAN;
    }
    bool has_redis_cpu = has_cpu && b->cpu_start.has_redis && b->cpu_end.has_redis;
    double redis_cpu = has_redis_cpu ? (b->cpu_end.redis_s - b->cpu_start.redis_s) / wall : NAN;
    bool is_multi = b->nports > 1;
    bool has_lat = b->lat.count > 0;
    uint64_t p50 = hist_percentile(&b->lat, 50), p99 = hist_percentile(&b->lat, 99);
    uint64_t p999 = hist_percentile(&b->lat, 99.9);
    double loss = b->st.expected ? 1.0 - (double)b->st.received / (double)b->st.expected : NAN;
    double per_s = (double)b->st.received / o->duration;
    double cycles_per_s = (double)b->st.cycles / o->duration;
    int64_t rss_delta = (int64_t)b->rss_after_kb - (int64_t)b->rss_before_kb;
    bool has_rss_per_conn = b->has_rss_before && b->has_rss_after && b->receivers > 0;
    double rss_per_conn = has_rss_per_conn ? (double)rss_delta * 1024.0 / b->receivers : NAN;
    char srv[256] = "", rss[48] = "";
    size_t sl = 0;
    if (has_server_cpu) {
        sl += (size_t)snprintf(srv, sizeof srv, "server cpu %.2f", server_cpu);
        for (size_t i = 0; npids > 1 && i < npids; i++) /* " (0.41 + 0.40)" */
            sl += (size_t)snprintf(srv + sl, sizeof srv - sl, "%s%.2f%s", i ? " + " : " (",
                                   server_each[i], i + 1 == npids ? ")" : "");
        sl += (size_t)snprintf(srv + sl, sizeof srv - sl, ", ");
    }
    if (has_redis_cpu)
        snprintf(srv + sl, sizeof srv - sl, "redis cpu %.2f, ", redis_cpu);
    if (b->has_rss_after)
        snprintf(rss, sizeof rss, ", server rss %" PRIu64 " KiB", b->rss_after_kb);

    /* The human summary. */
    switch (o->mode) {
    case MODE_CURSOR:
    case MODE_FANOUT:
        if (o->mode == MODE_CURSOR && b->lag.count > 0)
            fprintf(stderr, "wsbench cursor: our sends left late by p99 %.2f ms, max %.2f ms\n",
                    ms(hist_percentile(&b->lag, 99)), ms(b->lag.max));
        if (o->mode == MODE_CURSOR)
            fprintf(stderr, "wsbench cursor: %" PRIu32 " clients x %g Hz for %g s: ", b->receivers,
                    o->rate, o->duration);
        else
            fprintf(stderr,
                    "wsbench fanout: %" PRIu64 " senders -> %" PRIu64 " receivers, window %" PRIu64
                    ", %g s: ",
                    o->senders, o->clients, o->window, o->duration);
        fprintf(stderr,
                "%" PRIu64 "/%" PRIu64 " delivered (loss %.4f%%), %.3f M deliveries/s, "
                "latency p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms; %sclient cpu %.2f%s; "
                "%" PRIu64 " bad frames, %" PRIu64 " connect failures, %" PRIu64 " disconnects\n",
                b->st.received, b->st.expected, isfinite(loss) ? loss * 100 : 0.0, per_s / 1e6,
                ms(p50), ms(p99), ms(p999), ms(b->lat.max), srv, client_cpu, rss, b->st.bad_frames,
                b->st.connect_failures, b->st.disconnects);
        if (o->rooms > 0) {
            struct rooms_summary rs;
            summarize_rooms(b, &rs);
            fprintf(stderr,
                    "wsbench %s: %" PRIu64 " rooms (%" PRIu32 " with members, %" PRIu32 "-%" PRIu32
                    " each): %" PRIu32 " with loss (worst %.4f%%), room p99 median %.2f ms, "
                    "worst %.2f ms; %" PRIu64 " foreign deliveries\n",
                    MODE_NAMES[o->mode], o->rooms, rs.joined, rs.size_min, rs.size_max,
                    rs.with_loss, rs.loss_max * 100, rs.p99_median_ms, rs.p99_max_ms,
                    b->st.foreign);
        }
        if (o->mode == MODE_CURSOR && b->fresh_pool != NULL)
            fprintf(stderr,
                    "wsbench cursor: freshness over %" PRIu64 " samples: p50 %.2f ms p99 %.2f ms "
                    "max %.2f ms (%" PRIu64 " samples of pairs holding nothing yet); %" PRIu64
                    " reordered, %" PRIu64 " duplicates\n",
                    b->fresh.count, ms(hist_percentile(&b->fresh, 50)),
                    ms(hist_percentile(&b->fresh, 99)), ms(b->fresh.max), b->st.fresh_never,
                    b->st.reordered, b->st.duplicates);
        if (o->is_batch)
            fprintf(stderr,
                    "wsbench %s: %" PRIu64 " of %" PRIu32 " clients got wsrelay.batch; %" PRIu64
                    " frames and %" PRIu64 " messages in while measuring\n",
                    MODE_NAMES[o->mode], b->st.batch_clients, b->opened, b->st.rx_frames,
                    b->st.rx_messages);
        if (is_multi)
            fprintf(stderr,
                    "wsbench %s: %" PRIu32 " nodes: same-node %" PRIu64
                    " delivered, p50 %.2f ms p99 %.2f ms; cross-node %" PRIu64 "/%" PRIu64
                    " delivered, p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms\n",
                    MODE_NAMES[o->mode], b->nports, b->st.local_received,
                    ms(hist_percentile(&b->local, 50)), ms(hist_percentile(&b->local, 99)),
                    b->st.cross_received, b->st.cross_expected, ms(hist_percentile(&b->cross, 50)),
                    ms(hist_percentile(&b->cross, 99)), ms(hist_percentile(&b->cross, 99.9)),
                    ms(b->cross.max));
        break;
    case MODE_IDLE:
        fprintf(stderr, "wsbench idle: %" PRIu32 " connections held %g s; ", b->receivers,
                o->duration);
        if (has_rss_per_conn)
            fprintf(stderr, "server rss %" PRIu64 " -> %" PRIu64 " KiB, %.0f bytes/connection; ",
                    b->rss_before_kb, b->rss_after_kb, rss_per_conn);
        fprintf(stderr,
                "%sclient cpu %.2f; %" PRIu64 " bad frames, %" PRIu64 " connect failures, %" PRIu64
                " disconnects\n",
                srv, client_cpu, b->st.bad_frames, b->st.connect_failures, b->st.disconnects);
        break;
    case MODE_STORM:
        fprintf(stderr,
                "wsbench storm: %" PRIu32 " clients in %" PRIu32 " room%s, %" PRIu64
                " in flight at most: %" PRIu32 " connected in %.3f s, %" PRIu64
                " welcomed (last at %.3f s), %" PRIu64 " knew their whole room (last at %.3f s); "
                "%" PRIu64 " connect failures, %" PRIu64 " disconnects; %sclient cpu %.2f, "
                "server peak rss %" PRIu64 " KiB\n",
                b->nconns, b->nrooms, b->nrooms == 1 ? "" : "s", o->inflight, b->opened,
                b->opened ? (double)(b->last_open_ns - b->storm_start_ns) / 1e9 : 0.0,
                b->st.welcomed,
                b->st.welcomed ? (double)(b->last_welcome_ns - b->storm_start_ns) / 1e9 : 0.0,
                b->st.completed,
                b->st.completed ? (double)(b->last_complete_ns - b->storm_start_ns) / 1e9 : 0.0,
                b->st.connect_failures, b->st.disconnects, srv, client_cpu, b->rss_max_kb);
        if (!o->is_no_welcome)
            fprintf(stderr,
                    "wsbench storm: welcomes: at most %" PRIu64 " peers, %" PRIu64
                    " with a count; %" PRIu64 " over --roster-max, %" PRIu64
                    " incomplete without a count, %" PRIu64 " with a count below their peers\n",
                    b->st.welcome_peers_max, b->st.welcomes_with_count,
                    b->st.welcome_over_roster_max, b->st.welcome_incomplete_no_count,
                    b->st.welcome_bad_count);
        break;
    case MODE_CHURN:
        fprintf(stderr,
                "wsbench churn: %" PRIu64 " at a time for %g s: %" PRIu64
                " cycles (%.0f/s), %" PRIu64 " failures; %sclient cpu %.2f%s; %" PRIu64
                " bad frames\n",
                o->clients, o->duration, b->st.cycles, cycles_per_s, b->st.failures, srv,
                client_cpu, rss, b->st.bad_frames);
        break;
    case MODE_HANDSHAKE:
        fprintf(stderr,
                "wsbench handshake: %" PRIu64 " at a time for %g s: %" PRIu64
                " full handshakes (%.0f/s), %" PRIu64 " failures, %" PRIu64
                " resumed; %sclient cpu %.2f%s; %s %s %s\n",
                o->clients, o->duration, b->st.cycles, cycles_per_s, b->st.failures,
                b->st.tls_resumed, srv, client_cpu, rss, b->tls_version ? b->tls_version : "-",
                b->tls_group ? b->tls_group : "-", b->tls_cipher ? b->tls_cipher : "-");
        break;
    }

    /* The JSON line: the orchestrator's input. */
    struct json j = {.is_first = true};
    json_str(&j, "mode", MODE_NAMES[o->mode]);
    json_u64(&j, "clients", o->clients);
    if (is_multi)
        json_u64(&j, "nodes", b->nports);
    if (!is_cycling(b))
        json_u64(&j, "connected", b->receivers);
    if (o->mode == MODE_CURSOR)
        json_num(&j, "rate", o->rate, 3, true);
    if (o->mode == MODE_FANOUT) {
        json_u64(&j, "senders", o->senders);
        json_u64(&j, "window", o->window);
    }
    json_num(&j, "duration", o->duration, 3, true);
    if (o->mode == MODE_CURSOR || o->mode == MODE_FANOUT) {
        json_u64(&j, "sent", b->st.sent);
        json_u64(&j, "expected", b->st.expected);
        json_u64(&j, "received", b->st.received);
        json_ratio(&j, "loss", loss, true);
        json_num(&j, "p50_ms", ms(p50), 3, has_lat);
        json_num(&j, "p99_ms", ms(p99), 3, has_lat);
        json_num(&j, "p999_ms", ms(p999), 3, has_lat);
        json_num(&j, "max_ms", ms(b->lat.max), 3, has_lat);
        json_num(&j, "deliveries_per_s", per_s, 0, true);
        if (is_multi) { /* deliveries split by where their sender sits */
            json_u64(&j, "local_received", b->st.local_received);
            json_u64(&j, "cross_expected", b->st.cross_expected);
            json_u64(&j, "cross_received", b->st.cross_received);
            json_latencies(&j, "local_", &b->local);
            json_latencies(&j, "cross_", &b->cross);
        }
        if (o->mode == MODE_FANOUT)
            json_num(&j, "frames_per_s", per_s, 0, true);
        if (o->rooms > 0) { /* each room owed only its own members' messages */
            struct rooms_summary rs;
            summarize_rooms(b, &rs);
            json_u64(&j, "rooms", o->rooms);
            json_u64(&j, "rooms_joined", rs.joined);
            json_u64(&j, "room_size_min", rs.size_min);
            json_u64(&j, "room_size_max", rs.size_max);
            json_u64(&j, "rooms_with_loss", rs.with_loss);
            json_ratio(&j, "room_loss_max", rs.loss_max, true);
            json_num(&j, "room_p99_ms_median", rs.p99_median_ms, 3, rs.has_p99);
            json_num(&j, "room_p99_ms_max", rs.p99_max_ms, 3, rs.has_p99);
            json_u64(&j, "foreign", b->st.foreign);
        }
    }
    if (o->mode == MODE_CURSOR) {
        json_num(&j, "send_lag_p99_ms", ms(hist_percentile(&b->lag, 99)), 3, b->lag.count > 0);
        json_num(&j, "send_lag_max_ms", ms(b->lag.max), 3, b->lag.count > 0);
        /* Freshness: ages of the newest position each receiver holds of each moving sender,
         * sampled every 50 ms (null when skipped: fresh_skipped says why). */
        bool has_fresh = b->fresh.count > 0;
        json_u64(&j, "fresh_pairs", b->fresh_pairs);
        json_u64(&j, "fresh_samples", b->fresh.count);
        json_num(&j, "fresh_p50_ms", ms(hist_percentile(&b->fresh, 50)), 3, has_fresh);
        json_num(&j, "fresh_p99_ms", ms(hist_percentile(&b->fresh, 99)), 3, has_fresh);
        json_num(&j, "fresh_max_ms", ms(b->fresh.max), 3, has_fresh);
        json_u64(&j, "fresh_never_samples", b->st.fresh_never);
        json_u64(&j, "fresh_never_pairs", b->fresh_never_pairs);
        json_num(&j, "fresh_sample_max_ms", (double)b->fresh_sample_max_ns / 1e6, 3,
                 b->fresh_sweeps > 0);
        json_str_or_null(&j, "fresh_skipped", b->fresh_skipped);
        json_u64(&j, "reordered", b->st.reordered);
        json_u64(&j, "duplicates", b->st.duplicates);
        json_u64(&j, "unattributed", b->st.unattributed);
    }
    if (o->mode == MODE_CURSOR || o->mode == MODE_FANOUT || o->mode == MODE_STORM) {
        /* What came in while measuring: frames, and messages (several per batch frame). */
        json_u64(&j, "frames_received", b->st.rx_frames);
        json_u64(&j, "messages_received", b->st.rx_messages);
        json_num(&j, "messages_per_frame", (double)b->st.rx_messages / (double)b->st.rx_frames, 3,
                 b->st.rx_frames > 0);
        if (o->mode != MODE_STORM) {
            json_num(&j, "frames_per_s_in", (double)b->st.rx_frames / o->duration, 0, true);
            json_num(&j, "messages_per_s_in", (double)b->st.rx_messages / o->duration, 0, true);
        }
        json_bool(&j, "batch_requested", o->is_batch);
        json_u64(&j, "batch_clients", b->st.batch_clients);
        json_u64(&j, "bad_batches", b->st.bad_batches);
        json_u64(&j, "unparsed_big", b->st.unparsed_big);
    }
    if (o->mode == MODE_STORM) {
        double since = (double)b->storm_start_ns;
        bool all_open = b->opened == b->nconns;
        bool all_welcomed = b->st.welcomed == b->nconns;
        json_u64(&j, "rooms", b->nrooms);
        json_u64(&j, "inflight", o->inflight);
        json_bool(&j, "welcome_expected", !o->is_no_welcome);
        json_num(&j, "connect_all_s", ((double)b->last_open_ns - since) / 1e9, 3, all_open);
        json_latencies(&j, "open_at_", &b->open_at);
        json_u64(&j, "welcomed", b->st.welcomed);
        json_num(&j, "welcome_all_s", ((double)b->last_welcome_ns - since) / 1e9, 3,
                 all_welcomed && !o->is_no_welcome);
        json_latencies(&j, "welcome_at_", &b->welcome_at);
        json_latencies(&j, "connect_to_welcome_", &b->welcome_lat);
        json_num(&j, "roster_max", (double)o->roster_max, 0, o->roster_max > 0);
        json_u64(&j, "welcome_peers_max", b->st.welcome_peers_max);
        json_u64(&j, "welcomes_with_count", b->st.welcomes_with_count);
        json_u64(&j, "welcome_over_roster_max", b->st.welcome_over_roster_max);
        json_u64(&j, "welcome_incomplete_no_count", b->st.welcome_incomplete_no_count);
        json_u64(&j, "welcome_bad_count", b->st.welcome_bad_count);
        json_u64(&j, "batch_welcome_no_count", b->st.batch_welcome_no_count);
        json_u64(&j, "second_welcomes", b->st.second_welcomes);
        uint64_t violations = b->st.welcome_over_roster_max + b->st.welcome_incomplete_no_count +
                              b->st.welcome_bad_count + b->st.batch_welcome_no_count +
                              b->st.second_welcomes;
        json_u64(&j, "view_violations", violations);
        json_bool(&j, "roster_tracked", b->has_roster);
        json_str_or_null(&j, "roster_skipped", b->roster_skipped);
        json_u64(&j, "rosters_complete", b->st.completed);
        json_num(&j, "roster_all_s", ((double)b->last_complete_ns - since) / 1e9, 3,
                 b->has_roster && b->st.completed == b->nconns);
        json_latencies(&j, "roster_at_", &b->complete_at);
        json_u64(&j, "roster_overflow", b->st.roster_overflow);
        json_num(&j, "server_cpu_s", server_cpu * wall, 3, has_server_cpu);
    }
    json_num(&j, "loadgen_cpu_pct", client_cpu * 100, 1, has_cpu);
    json_bool(&j, "loadgen_saturated", has_cpu && client_cpu >= LOADGEN_SATURATED);
    /* The wall time between the CPU marks that bracket the measured period: --duration when
     * we kept up; far from it when one pass of our loop overran the period's start or end
     * (then the CPU shares above are over that span, not over the period). */
    if (!is_cycling(b))
        json_num(&j, "measured_wall_s", wall, 3, has_cpu);
    if (o->mode == MODE_CURSOR || o->mode == MODE_FANOUT)
        json_num(&j, "loop_busy_max_ms", (double)b->busy_max_ns / 1e6, 3, true);
    if (o->mode == MODE_CHURN) {
        json_u64(&j, "cycles", b->st.cycles);
        json_num(&j, "cycles_per_s", cycles_per_s, 1, true);
        json_u64(&j, "failures", b->st.failures);
    }
    if (o->mode == MODE_HANDSHAKE) {
        /* Per server CPU second too: the figure a busy neighbour on the server's core
         * disturbs least (it takes time from the server, not work from each handshake). */
        json_u64(&j, "handshakes", b->st.cycles);
        json_num(&j, "handshakes_per_s", cycles_per_s, 1, true);
        json_num(&j, "handshakes_per_server_cpu_s", cycles_per_s / server_cpu, 1,
                 has_server_cpu && server_cpu > 0);
        json_u64(&j, "failures", b->st.failures);
    }
    json_bool(&j, "tls", o->is_tls);
    if (o->is_tls) {
        json_str_or_null(&j, "tls_version", b->tls_version);
        json_str_or_null(&j, "tls_group", b->tls_group);
        json_str_or_null(&j, "tls_cipher", b->tls_cipher);
        json_u64(&j, "tls_handshakes", b->st.tls_handshakes);
        json_u64(&j, "tls_resumed", b->st.tls_resumed);
    }
    json_u64(&j, "other", b->st.other);
    json_u64(&j, "bad_frames", b->st.bad_frames);
    json_u64(&j, "connect_failures", b->st.connect_failures);
    json_u64(&j, "disconnects", b->st.disconnects);
    json_num(&j, "server_cpu", server_cpu, 3, has_server_cpu);
    if (npids > 1)
        json_nums(&j, "server_cpu_each", server_each, npids, 3);
    if (o->redis_pid > 0)
        json_num(&j, "redis_cpu", redis_cpu, 3, has_redis_cpu);
    json_num(&j, "client_cpu", client_cpu, 3, has_cpu);
    if (o->mode == MODE_IDLE) {
        json_num(&j, "server_rss_before_kb", (double)b->rss_before_kb, 0, b->has_rss_before);
        json_num(&j, "rss_per_conn_bytes", rss_per_conn, 0, has_rss_per_conn);
    }
    json_num(&j, "server_rss_kb", (double)b->rss_after_kb, 0, b->has_rss_after);
    if (o->mode == MODE_CURSOR || o->mode == MODE_FANOUT || o->mode == MODE_STORM) {
        json_num(&j, "server_rss_max_kb", (double)b->rss_max_kb, 0, b->has_rss_max);
        json_num(&j, "server_hwm_kb", (double)b->hwm_kb, 0, b->has_hwm);
    }
    if (npids > 1)
        json_nums(&j, "server_rss_kb_each", rss_each, npids, 0);
    if (o->redis_pid > 0)
        json_num(&j, "redis_rss_kb", (double)b->redis_rss_kb, 0, b->has_redis_rss);
    printf("}\n");
    fflush(stdout);
}

/* ========================================================================================
 * Setup and main
 * ====================================================================================== */

/* Resolves --host with each --port once; every connection reuses its port's address. */
static bool resolve(struct bench *b)
{
    b->nports = (uint32_t)b->opt.ports.n;
    size_t tl = 0;
    for (uint32_t i = 0; i < b->nports; i++) {
        char port[8];
        snprintf(port, sizeof port, "%" PRIu64, b->opt.ports.v[i]);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res;
        int rc = getaddrinfo(b->opt.host, port, &hints, &res);
        if (rc != 0) {
            fprintf(stderr, "wsbench: cannot resolve %s: %s\n", b->opt.host, gai_strerror(rc));
            return false;
        }
        memcpy(&b->addr[i], res->ai_addr, res->ai_addrlen);
        b->addr_len[i] = res->ai_addrlen;
        bool is_v6 = res->ai_family == AF_INET6;
        freeaddrinfo(res);
        snprintf(b->host_header[i], sizeof b->host_header[i], "%s%s%s:%s", is_v6 ? "[" : "",
                 b->opt.host, is_v6 ? "]" : "", port);
        /* "127.0.0.1:7071", then ",7072" for each further port: at most 299 + 7 x 6 bytes */
        if (i == 0)
            tl = (size_t)snprintf(b->target, sizeof b->target, "%s", b->host_header[0]);
        else
            tl += (size_t)snprintf(b->target + tl, sizeof b->target - tl, ",%s", port);
    }
    return true;
}

/* Each connection is a file descriptor: raise RLIMIT_NOFILE to what the run needs (the
 * hard limit too, which only works with privileges), or say why we cannot. */
static bool raise_fd_limit(uint64_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
        return true;
    struct rlimit want = {.rlim_cur = need, .rlim_max = rl.rlim_max < need ? need : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return true;
    fprintf(stderr,
            "wsbench: need %" PRIu64 " file descriptors, the limit is %llu (hard limit %llu) "
            "and cannot be raised: try `ulimit -n %" PRIu64 "` (as root for a hard limit)\n",
            need, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, need);
    return false;
}

/* Our clients in room r: slots r, r + rooms, r + 2 x rooms, ... */
static uint32_t room_members(const struct bench *b, uint32_t r)
{
    return (b->nconns - r + b->nrooms - 1) / b->nrooms;
}

/* Cursor mode: one "t" per (receiver, member of its room), in one pool (FRESH_PAIRS_MAX).
 * False only when memory runs out; past the cap freshness is skipped, and said so. */
static bool setup_fresh(struct bench *b)
{
    const struct options *o = &b->opt;
    if (o->mode != MODE_CURSOR)
        return true;
    uint64_t pairs = 0;
    for (uint32_t r = 0; r < b->nrooms; r++)
        pairs += (uint64_t)room_members(b, r) * room_members(b, r);
    if (pairs > FRESH_PAIRS_MAX) {
        b->fresh_skipped = "too many (receiver, sender) pairs";
        fprintf(stderr,
                "wsbench: freshness not measured: %" PRIu64 " (receiver, sender) pairs, more "
                "than the %" PRIu64 " it keeps (a room of 4,096)\n",
                pairs, FRESH_PAIRS_MAX);
        return true;
    }
    if (o->warmup + o->duration + o->drain > FRESH_T_MAX_SECS) {
        b->fresh_skipped = "run too long for 32-bit microsecond times";
        fprintf(stderr, "wsbench: freshness not measured: runs over %.0f s are not supported\n",
                FRESH_T_MAX_SECS);
        return true;
    }
    b->fresh_pool = calloc((size_t)pairs, sizeof *b->fresh_pool);
    b->moving = calloc(b->nconns, 1);
    if (b->fresh_pool == NULL || b->moving == NULL) {
        fprintf(stderr, "wsbench: out of memory for freshness (%" PRIu64 " pairs)\n", pairs);
        return false;
    }
    b->fresh_pairs = pairs;
    /* Rooms in turn: room r's receivers (slots r, r + rooms, ...) each get its members' row. */
    size_t off = 0;
    for (uint32_t r = 0; r < b->nrooms; r++) {
        uint32_t m = room_members(b, r);
        for (uint32_t k = 0; k < m; k++) {
            b->conns[r + (size_t)k * b->nrooms].fresh = b->fresh_pool + off;
            off += m;
        }
    }
    return true;
}

/* Storm mode: per room its planned size and its welcomed count; rosters if they fit. */
static bool setup_storm(struct bench *b)
{
    if (b->opt.mode != MODE_STORM)
        return true;
    b->room_welcomed = calloc(b->nrooms, sizeof *b->room_welcomed);
    b->room_target = calloc(b->nrooms, sizeof *b->room_target);
    if (b->room_welcomed == NULL || b->room_target == NULL) {
        fprintf(stderr, "wsbench: out of memory\n");
        return false;
    }
    uint64_t entries = 0;
    for (uint32_t r = 0; r < b->nrooms; r++) {
        b->room_target[r] = room_members(b, r);
        uint32_t cap = 4;
        while (cap < 2 * b->room_target[r])
            cap *= 2;
        entries += (uint64_t)cap * b->room_target[r];
    }
    if (b->opt.is_no_welcome) {
        b->roster_skipped = "--no-welcome";
        return true;
    }
    if (entries > ROSTER_ENTRIES_MAX) {
        b->roster_skipped = "rooms too big to track";
        fprintf(stderr,
                "wsbench: rosters not tracked: they would take %" PRIu64 " entries, more than "
                "%" PRIu64 " (welcomes are still checked)\n",
                entries, ROSTER_ENTRIES_MAX);
        return true;
    }
    b->known_pool = calloc((size_t)entries, sizeof *b->known_pool);
    if (b->known_pool == NULL) {
        fprintf(stderr, "wsbench: out of memory for rosters\n");
        return false;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < b->nconns; i++) {
        struct conn *c = &b->conns[i];
        uint32_t cap = 4;
        while (cap < 2 * b->room_target[c->room])
            cap *= 2;
        c->known = b->known_pool + off;
        c->known_cap = cap;
        off += cap;
    }
    b->has_roster = true;
    return true;
}

/* --tls: the client's one context. TLS 1.3 only (RFC 8446) and X25519 only (§4.2.7: the
 * groups we offer; §4.2.8: our key share), so every server we measure does the same key
 * exchange, whatever it would prefer; ALPN http/1.1 (RFC 7301), as a browser offers it. No
 * session cache, and a fresh SSL per connection: the tickets servers send (§4.6.1) are
 * read and dropped, so every handshake is a full one. Certificates are verified only
 * against --tls-ca: a loopback benchmark has nobody in the middle to fear, and what the
 * server signs (CertificateVerify, §4.4.3) is checked either way. */
static bool setup_tls(struct bench *b)
{
    const struct options *o = &b->opt;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    b->tls_ctx = ctx;
    b->tls_pending = calloc(b->nconns, sizeof *b->tls_pending);
    b->tls_reading = calloc(b->nconns, sizeof *b->tls_reading);
    static const unsigned char alpn[] = "\x08http/1.1";
    if (ctx == NULL || b->tls_pending == NULL || b->tls_reading == NULL ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519") != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
        fprintf(stderr, "wsbench: cannot make a TLS context: %s\n",
                ERR_reason_error_string(ERR_get_error()));
        return false;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* A server that closes TCP without close_notify ends the stream, as FIN does in plain
     * mode: the WebSocket closing handshake, not TLS, tells a clean end. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    /* As the server does it: partial writes like send(), a wbuf that may move between a
     * blocked write and its retry, and 16 KiB buffers released while a connection is idle
     * (10,000 idle clients must not cost us 320 MiB). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (o->tls_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL) != 1) {
            fprintf(stderr, "wsbench: --tls-ca %s: %s\n", o->tls_ca,
                    ERR_reason_error_string(ERR_get_error()));
            return false;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return true;
}

static bool setup(struct bench *b)
{
    const struct options *o = &b->opt;
    uint64_t pids[LIST_MAX + 1];
    size_t npids = 0;
    for (size_t i = 0; i < o->server_pids.n; i++)
        pids[npids++] = o->server_pids.v[i];
    if (o->redis_pid > 0)
        pids[npids++] = o->redis_pid;
    for (size_t i = 0; i < npids; i++) {
        double s;
        if (!proc_cpu_seconds((pid_t)pids[i], &s)) {
            fprintf(stderr, "wsbench: cannot read /proc/%" PRIu64 "/stat: no such process?\n",
                    pids[i]);
            return false;
        }
    }
    if (!resolve(b))
        return false;
    b->nconns = (uint32_t)(o->clients + (o->mode == MODE_FANOUT ? o->senders : 0));
    if (!raise_fd_limit((uint64_t)b->nconns + 32))
        return false;

    b->conns = calloc(b->nconns, sizeof *b->conns);
    b->writers = calloc(b->nconns, sizeof *b->writers);
    b->free_slots = calloc(b->nconns, sizeof *b->free_slots);
    b->active = calloc(b->nconns, sizeof *b->active);
    b->order = calloc(b->nconns, sizeof *b->order);
    b->nrooms = o->rooms > 0 ? (uint32_t)o->rooms : 1;
    b->room = calloc(b->nrooms, sizeof *b->room);
    b->room_sent = calloc((size_t)b->nrooms * b->nports, sizeof *b->room_sent);
    b->room_received = calloc((size_t)b->nrooms * b->nports, sizeof *b->room_received);
    b->room_receivers = calloc((size_t)b->nrooms * b->nports, sizeof *b->room_receivers);
    b->rbuf = malloc(CARRY_MAX + READ_CHUNK);
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!b->conns || !b->writers || !b->free_slots || !b->active || !b->order || !b->room ||
        !b->room_sent || !b->room_received || !b->room_receivers || !b->rbuf || b->epfd < 0) {
        fprintf(stderr, "wsbench: out of memory or epoll_create1 failed\n");
        return false;
    }
    b->path_len = strlen(o->path);
    while (b->path_len > 1 && o->path[b->path_len - 1] == '/') /* "/ws/" + "/r3": no "//" */
        b->path_len--;
    if (b->path_len == 1) /* --path /: rooms at /r<k> */
        b->path_len = 0;
    if (getrandom(&b->rng, sizeof b->rng, 0) != sizeof b->rng)
        b->rng = mono_ns();
    for (uint32_t i = 0; i < b->nconns; i++) {
        struct conn *c = &b->conns[i];
        c->fd = -1;
        c->slot = i;
        c->room = (uint32_t)(i % b->nrooms);
        /* Clients spread evenly over the nodes: by slot, or with rooms by their rank in the
         * room, so that each room is spread too (by slot, a room of slots r, r + N, ...
         * would sit on one node whenever the node count divides N). */
        c->node = (o->rooms > 0 ? i / b->nrooms : i) % b->nports;
        b->order[i] = i;
        /* fanout: the first S connections are the senders; their x is their number */
        c->is_sender = o->mode == MODE_FANOUT && i < o->senders;
        c->sender_id = i;
    }
    /* With rooms, connections open in a random order (Fisher-Yates), as real visitors would
     * arrive: a balancer that assigns by arrival must not line rooms up with nodes. */
    for (uint32_t i = b->nconns; o->rooms > 0 && i > 1; i--) {
        uint32_t j = (uint32_t)(rng_next(&b->rng) % i), t = b->order[i - 1];
        b->order[i - 1] = b->order[j];
        b->order[j] = t;
    }
    if (!setup_fresh(b) || !setup_storm(b) || (o->is_tls && !setup_tls(b)))
        return false;
    b->t0_ns = b->now_ns = b->prog_prev_ns = mono_ns();
    b->next_progress_ns = b->t0_ns + secs_to_ns(o->progress);
    b->measure_from_us = UINT64_MAX; /* nothing is measured until a window is set */
    b->next_send_ns = UINT64_MAX;
    return true;
}

static void teardown(struct bench *b)
{
    for (uint32_t i = 0; b->conns != NULL && i < b->nconns; i++) {
        free(b->conns[i].carry);
        free(b->conns[i].wbuf);
        free(b->conns[i].big);
        SSL_free(b->conns[i].ssl);
    }
    SSL_CTX_free(b->tls_ctx);
    free(b->tls_pending);
    free(b->tls_reading);
    free(b->fresh_pool);
    free(b->moving);
    free(b->room_welcomed);
    free(b->room_target);
    free(b->known_pool);
    free(b->conns);
    free(b->writers);
    free(b->free_slots);
    free(b->active);
    free(b->order);
    free(b->room);
    free(b->room_sent);
    free(b->room_received);
    free(b->room_receivers);
    free(b->rbuf);
    if (b->epfd >= 0)
        close(b->epfd);
}

int main(int argc, char **argv)
{
    static struct bench bench; /* five histograms, 30 KiB each: too big for a polite stack */
    struct bench *b = &bench;
    b->epfd = -1;
    int rc = parse_args(argc, argv, &b->opt);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;
    signal(SIGPIPE, SIG_IGN); /* a dead peer is an EPIPE from send(), not a signal */
    if (!setup(b)) {
        teardown(b);
        return EXIT_FAIL;
    }
    switch (b->opt.mode) {
    case MODE_CURSOR:
    case MODE_FANOUT:
        rc = run_traffic(b);
        break;
    case MODE_IDLE:
        rc = run_idle(b);
        break;
    case MODE_CHURN:
    case MODE_HANDSHAKE:
        rc = run_churn(b);
        break;
    case MODE_STORM:
        rc = run_storm(b);
        break;
    }
    if (rc == 0)
        report(b);
    teardown(b);
    return rc == 0 ? 0 : EXIT_FAIL;
}
