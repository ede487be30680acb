/* wsbench.c: wsrelay's load generator (issue 4). One process, one thread, one epoll loop
 * driving many WebSocket clients, and one JSON line at the end.
 *
 * Owns: opening and driving the clients, measuring what the server does with them, reading
 * the server's CPU time and memory from /proc, and the report. Four modes:
 *
 *   cursor  N clients each send {"x","y","t"} at R Hz and receive everyone's messages:
 *           deliveries per second, loss after a drain, latency percentiles
 *   fanout  S senders send as fast as a window of unanswered messages allows, N receivers:
 *           delivered frames per second
 *   idle    N connections held open: the server's RSS per connection
 *   churn   C concurrent cycles of connect + handshake + close: cycles per second
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

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
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
/* Our cursor message: {"x":X,"y":Y,"t":T} is 16 bytes plus three integers of at most 20
 * digits, and with several ports ,"n":K adds 5 bytes and one digit: at most 82 bytes, always
 * under 126, so its frame uses the 7-bit length (§5.2). */
/* With --rooms, ,"r":R adds 5 bytes and up to 6 digits: still under 126. */
#define MSG_MAX 100
/* --rooms: each room keeps its own counters and a coarse histogram (1 KiB), so a fleet of
 * small rooms stays within a few hundred MiB at the most. */
#define ROOMS_MAX 100000
/* --port and --server-pid lists: a few nodes on one machine, not a fleet. One digit of "n". */
#define LIST_MAX 8

#define WBUF_INIT              512 /* first output buffer of a connection; it doubles as needed */
#define WBUF_LIMIT             (64u << 20) /* pending output past this: the server is not reading */
#define MAX_EVENTS             1024        /* epoll events fetched per wait */
#define MAX_PENDING_HANDSHAKES 256 /* while ramping: never more connects in flight than this */

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

enum mode { MODE_CURSOR, MODE_FANOUT, MODE_IDLE, MODE_CHURN };

static const char *const MODE_NAMES[] = {"cursor", "fanout", "idle", "churn"};

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
    double rate, duration, warmup, drain, progress, connect_rate;
};

static const char USAGE[] =
    "usage: wsbench MODE [options]      MODE: cursor | fanout | idle | churn\n"
    "\n"
    "  cursor  N clients each send {\"x\",\"y\",\"t\"} at --rate Hz and receive everyone's;\n"
    "          deliveries/s, loss, latency (receive time - scheduled send time)\n"
    "  fanout  --senders S send as fast as --window allows, N receivers; delivered frames/s\n"
    "  idle    N connections held for --duration; server RSS per connection (--server-pid)\n"
    "  churn   N concurrent connect + handshake + close cycles for --duration; cycles/s\n"
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
    "  --connect-rate N    new connections per second while ramping up (2000)\n"
    "  --help              this text\n"
    "\n"
    "Progress and a summary go to stderr; the last line on stdout is one JSON object.\n"
    "Exit status: 0 for a completed run, whatever its numbers; 1 if it could not run;\n"
    "2 for a usage error.\n";

/* One row per flag: where its value goes and the range it must be in. */
enum flag_kind { FLAG_STR, FLAG_UINT, FLAG_UINTS, FLAG_SECS };

struct flag {
    const char *name;
    enum flag_kind kind;
    void *dst; /* const char **, uint64_t *, struct uint_list * or double *, by kind */
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
    };

    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(USAGE, stdout);
        return 1;
    }
    if (argc < 2)
        return usage_error("no MODE given", NULL);
    size_t m = 0;
    while (m < 4 && strcmp(argv[1], MODE_NAMES[m]) != 0)
        m++;
    if (m == 4)
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

/* Resident set size in KiB, the "VmRSS:" line of /proc/PID/status. */
static bool proc_rss_kb(pid_t pid, uint64_t *kb)
{
    char buf[4096];
    if (read_proc(pid, "status", buf, sizeof buf) < 0)
        return false;
    const char *p = strstr(buf, "\nVmRSS:");
    unsigned long long v;
    if (p == NULL || sscanf(p + 7, "%llu", &v) != 1)
        return false;
    *kb = v;
    return true;
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
    CONN_HANDSHAKE,  /* request sent, waiting for the 101 */
    CONN_OPEN,       /* WebSocket open */
    CONN_CLOSING,    /* a close frame went one way or the other; waiting for the server's EOF */
    CONN_DONE,       /* socket closed */
};

struct conn {
    int fd; /* -1 unless CONNECTING..CLOSING */
    enum conn_phase phase;
    uint32_t slot;   /* index in bench.conns; also the epoll tag */
    uint32_t events; /* epoll interest currently registered */
    uint32_t node;   /* which --port (slot mod the number of ports): its messages' "n" */
    uint32_t room;   /* --rooms: slot mod N, its messages' "r"; 0 without rooms */
    bool is_sender;  /* fanout: sends, and counts its own messages back */
    bool is_queued;  /* listed in bench.writers for this pass */
    bool is_counted; /* handshake done: counted in bench.nopen */
    bool close_sent, close_rcvd;
    uint64_t deadline_ns;                /* handshake or closing timeout; 0: none */
    char accept[UPGRADE_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept we expect */

    /* Input: bytes of an incomplete frame carried to the next read (see "Receiving"). */
    uint8_t *carry; /* CARRY_MAX bytes, allocated on first use */
    size_t carry_len;
    /* A frame over SMALL_MAX being streamed: payload bytes still to come. */
    uint64_t big_left;
    bool big_is_text;
    struct utf8_state big_utf8;

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

    struct stats st;
    struct hist lat;    /* latency of measured deliveries, us */
    struct hist local;  /* several ports: those from a sender on the receiver's node */
    struct hist cross;  /* several ports: those from a sender on another node */
    struct hist recent; /* latency since the last progress line, any delivery */
    struct hist lag;    /* cursor: how late measured sends left (actual - scheduled), us */
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

/* One send() of whatever is pending. EPOLLOUT is armed only while bytes remain, as the
 * server does it (redis's pattern): an idle socket that is always writable would otherwise
 * wake every epoll_wait. */
static void conn_flush(struct bench *b, struct conn *c)
{
    size_t pending = c->wlen - c->woff;
    if (pending > 0) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, pending, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_end(b, c, false, "send failed", errno);
            return;
        }
        if (n > 0)
            c->woff += (size_t)n;
    }
    conn_set_events(b, c, c->woff < c->wlen ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Every connection with new output gets one send() before the loop sleeps: all the frames a
 * pass produced for one socket leave in one system call. */
static void flush_writers(struct bench *b)
{
    for (uint32_t i = 0; i < b->nwriters; i++) {
        struct conn *c = &b->conns[b->writers[i]];
        c->is_queued = false;
        if (c->fd >= 0 && c->phase != CONN_CONNECTING)
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

/* Appends {"x":X,"y":Y,"t":T} as one masked text frame, written in place in c's output (no
 * intermediate buffer, no snprintf). With --rooms, ,"r":R follows: R is c's room, so a
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
    bool in_handshake = c->phase == CONN_CONNECTING || c->phase == CONN_HANDSHAKE;
    if (!is_clean) {
        if (in_handshake)
            b->st.connect_failures++;
        else if (c->phase == CONN_OPEN && b->phase != PH_CLOSE && b->opt.mode != MODE_CHURN)
            b->st.disconnects++;
        note_error(b, c, why, err);
    }
    if (b->opt.mode == MODE_CHURN && b->phase == PH_MEASURE) {
        if (is_clean)
            b->st.cycles++;
        else
            b->st.failures++;
    }
    close(c->fd);
    c->fd = -1;
    c->phase = CONN_DONE;
    c->woff = c->wlen = 0;
    c->carry_len = 0;
    b->nlive--;
    if (c->is_counted) {
        c->is_counted = false;
        b->nopen--;
    }
    if (b->opt.mode == MODE_CHURN)
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
    c->deadline_ns = b->now_ns + HANDSHAKE_TIMEOUT_NS;

    int fd = socket(b->addr[c->node].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->fd = -1;
        c->phase = CONN_DONE;
        b->st.connect_failures++;
        if (b->opt.mode == MODE_CHURN && b->phase == PH_MEASURE)
            b->st.failures++;
        note_error(b, c, "socket", errno);
        if (b->opt.mode == MODE_CHURN)
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

/* connect() finished: check how, then send the opening handshake (§4.1). */
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
                     "\r\n",
                     path, b->host_header[c->node], key);
    uint8_t *out = n > 0 && (size_t)n < sizeof req ? out_reserve(c, (size_t)n) : NULL;
    if (out == NULL) {
        conn_end(b, c, false, "handshake request too long (--path?)", 0);
        return;
    }
    memcpy(out, req, (size_t)n);
    out_commit(b, c, (size_t)n);
    c->phase = CONN_HANDSHAKE;
    conn_set_events(b, c, EPOLLIN);
}

/* Checks the server's answer to the handshake (§4.1, client's requirements 1-4): status 101
 * and the Sec-WebSocket-Accept that proves the server read our key. Returns the length of
 * the head (what follows it are WebSocket bytes), 0 if the head is not complete yet, or -1
 * with *why set.
 * Simplification: the Upgrade and Connection fields of the answer are not checked; a server
 * that computes the accept value and answers 101 has understood the request. */
static ssize_t check_response(const struct conn *c, const uint8_t *p, size_t len, const char **why)
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
    /* Walk the header lines for Sec-WebSocket-Accept (field names are case-insensitive,
     * RFC 9110 §5.1; the value may be surrounded by spaces or tabs, §5.5). */
    static const char name[] = "Sec-WebSocket-Accept:";
    const size_t name_len = sizeof name - 1;
    const char *line = memchr(p, '\n', head_len);
    const char *stop = (const char *)end;
    while (line != NULL && line + 1 < stop) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(stop + 2 - line));
        if (eol == NULL)
            break;
        if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if ((size_t)(ve - v) == UPGRADE_ACCEPT_LEN &&
                memcmp(v, c->accept, UPGRADE_ACCEPT_LEN) == 0)
                return (ssize_t)head_len;
            *why = "wrong Sec-WebSocket-Accept";
            return -1;
        }
        line = memchr(eol, '\n', (size_t)(stop + 2 - eol));
    }
    *why = "no Sec-WebSocket-Accept in the 101";
    return -1;
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
static bool find_member(const uint8_t *p, size_t n, char key, uint64_t *v)
{
    const uint8_t *end = p + n;
    for (const uint8_t *q = p; (q = memchr(q, key, (size_t)(end - q))) != NULL; q++)
        if (q > p && q[-1] == '"' && end - q > 3 && q[1] == '"' && q[2] == ':')
            return read_uint(q + 3, end, v);
    return false;
}

static void bad_frame(struct bench *b, struct conn *c, const char *why)
{
    b->st.bad_frames++;
    /* §7.1.7: fail the connection: close 1002 (protocol error), best effort, then drop it. */
    if (!c->close_sent && send_frame(b, c, FRAME_OP_CLOSE, (const uint8_t *)"\x03\xea", 2))
        conn_flush(b, c);
    conn_end(b, c, false, why, 0);
}

/* One text message. Those whose text starts with {"type": are server messages (wsrelay's
 * welcome, join, leave) and count as "other", unread: a welcome's "peers" holds earlier
 * cursor messages, "t" included, which must not count as deliveries. Any other text with a
 * "t" member is a delivery; its latency is now - t. With several ports, a measured delivery
 * is also filed by its "n": from c's own node (local) or through the backplane (cross). */
static void on_text(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    if (!is_ascii(p, n) && !utf8_valid(p, n)) {
        bad_frame(b, c, "text frame is not UTF-8 (RFC 6455 §8.1)");
        return;
    }
    uint64_t t_us;
    if ((n >= 8 && memcmp(p, "{\"type\":", 8) == 0) || !find_member(p, n, 't', &t_us)) {
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

/* Passes the bytes of a frame over SMALL_MAX; returns how many of p[0..avail) it used. */
static size_t stream_big(struct bench *b, struct conn *c, const uint8_t *p, size_t avail)
{
    size_t k = avail < c->big_left ? avail : (size_t)c->big_left;
    if (c->big_is_text && !utf8_feed(&c->big_utf8, p, k)) {
        bad_frame(b, c, "text frame is not UTF-8 (RFC 6455 §8.1)");
        return k;
    }
    c->big_left -= k;
    if (c->big_left == 0) {
        if (c->big_is_text && !utf8_is_complete(&c->big_utf8)) {
            bad_frame(b, c, "text frame ends inside a UTF-8 sequence (RFC 6455 §8.1)");
            return k;
        }
        /* Simplification: a message this large is never a delivery (ours are < 100 bytes). */
        b->st.other++;
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
    ssize_t n = recv(c->fd, b->rbuf + CARRY_MAX, READ_CHUNK, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return; /* level-triggered: epoll will tell us again */
    if (n <= 0) {
        on_eof(b, c, n < 0 ? errno : 0);
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
        ssize_t head = check_response(c, start, len, &why);
        if (head < 0) {
            conn_end(b, c, false, why, 0);
            return;
        }
        if (head > 0) {
            used = (size_t)head;
            c->phase = CONN_OPEN;
            c->deadline_ns = 0;
            c->is_counted = true;
            b->opened++;
            b->nopen++;
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
    /* epoll reports EPOLLHUP and EPOLLERR unasked: read, and recv() tells us what happened. */
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
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
 * listen backlog and measure the kernel's SYN retry timer instead), with at most
 * MAX_PENDING_HANDSHAKES in flight. Returns when it next wants to run. */
static uint64_t tick_ramp(struct bench *b)
{
    double elapsed = (double)(b->now_ns - b->ramp_start_ns) / 1e9;
    double allowed = elapsed * b->opt.connect_rate + 1;
    while (b->started < b->nconns && (double)b->started < allowed &&
           b->started - b->opened - b->st.connect_failures < MAX_PENDING_HANDSHAKES)
        conn_start(b, &b->conns[b->order[b->started++]]);
    if (b->started == b->nconns ||
        b->started - b->opened - b->st.connect_failures >= MAX_PENDING_HANDSHAKES)
        return UINT64_MAX; /* nothing to do until a handshake ends */
    return b->ramp_start_ns + secs_to_ns((double)b->started / b->opt.connect_rate);
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
        else if (b->opt.mode == MODE_CHURN)
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
        uint64_t wait = wake > b->now_ns ? wake - b->now_ns : 0;
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
    if (b->phase == PH_RAMP) {
        fprintf(stderr, "wsbench %5.1fs %s: %" PRIu32 "/%" PRIu32 " open, %" PRIu64 " failed\n", t,
                ph, b->opened, b->nconns, b->st.connect_failures);
    } else if (b->opt.mode == MODE_CHURN) {
        fprintf(stderr,
                "wsbench %5.1fs churn: %.0f cycles/s, %" PRIu64 " cycles, %" PRIu64 " failures\n",
                t, (double)(b->st.cycles - b->prog_prev_cycles) / dt, b->st.cycles, b->st.failures);
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
            if (b->conns[i].phase == CONN_OPEN)
                b->active[b->nactive++] = i;
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
    case MODE_CHURN:
        fprintf(stderr,
                "wsbench churn: %" PRIu64 " at a time for %g s: %" PRIu64
                " cycles (%.0f/s), %" PRIu64 " failures; %sclient cpu %.2f%s; %" PRIu64
                " bad frames\n",
                o->clients, o->duration, b->st.cycles, cycles_per_s, b->st.failures, srv,
                client_cpu, rss, b->st.bad_frames);
        break;
    }

    /* The JSON line: the orchestrator's input. */
    struct json j = {.is_first = true};
    json_str(&j, "mode", MODE_NAMES[o->mode]);
    json_u64(&j, "clients", o->clients);
    if (is_multi)
        json_u64(&j, "nodes", b->nports);
    if (o->mode != MODE_CHURN)
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
    }
    /* The wall time between the CPU marks that bracket the measured period: --duration when
     * we kept up; far from it when one pass of our loop overran the period's start or end
     * (then the CPU shares above are over that span, not over the period). */
    if (o->mode != MODE_CHURN)
        json_num(&j, "measured_wall_s", wall, 3, has_cpu);
    if (o->mode == MODE_CURSOR || o->mode == MODE_FANOUT)
        json_num(&j, "loop_busy_max_ms", (double)b->busy_max_ns / 1e6, 3, true);
    if (o->mode == MODE_CHURN) {
        json_u64(&j, "cycles", b->st.cycles);
        json_num(&j, "cycles_per_s", cycles_per_s, 1, true);
        json_u64(&j, "failures", b->st.failures);
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
    b->t0_ns = b->now_ns = b->prog_prev_ns = mono_ns();
    b->next_progress_ns = b->t0_ns + secs_to_ns(o->progress);
    b->measure_from_us = UINT64_MAX; /* nothing is measured until a window is set */
    b->next_send_ns = UINT64_MAX;
    return true;
}

static void teardown(struct bench *b)
{
    for (uint32_t i = 0; i < b->nconns; i++) {
        free(b->conns[i].carry);
        free(b->conns[i].wbuf);
    }
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
        rc = run_churn(b);
        break;
    }
    if (rc == 0)
        report(b);
    teardown(b);
    return rc == 0 ? 0 : EXIT_FAIL;
}
