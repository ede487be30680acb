/* backplane.c: Redis pub/sub through hiredis's async API, on our own loop (see backplane.h).
 *
 * Chapters:
 *   1. The adapter: hiredis asks to watch its socket, we watch it in our loop
 *   2. A link's life: connect, authenticate, subscribe, lose it, retry
 *   3. Publishing, with a cap
 *
 * The life of one link (the subscriber's; the publisher's is the same without SUBSCRIBE):
 *
 *   DOWN --retry_ms reached--> CONNECTING --connected, AUTH/SELECT/SUBSCRIBE sent-->
 *     ^                             |              --"subscribe" confirmed--> READY
 *     |                             | refused, or no answer within 2 s            |
 *     +-----------------------------+--------------- connection lost -------------+
 *   (each failure doubles the wait before the next try, 100 ms up to 2 s; READY resets it)
 */
#include "backplane.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "log.h"

/* ==== 1. The adapter ===================================================================== */

/* hiredis calls these to say which directions it wants to hear about; they must be
 * idempotent (hiredis calls them freely). We keep the interest in the watch's mask. */
static void set_interest(struct backplane_link *l, unsigned add, unsigned remove)
{
    if (l->ac == NULL || l->watch.fd < 0)
        return;
    unsigned mask = (l->watch.mask | add) & ~remove;
    if (loop_set(l->bp->loop, &l->watch, mask) < 0)
        log_at(LL_ERROR, "\"redis: epoll_ctl failed\"");
}

static void ev_add_read(void *privdata)
{
    set_interest(privdata, LOOP_IN, 0);
}
static void ev_del_read(void *privdata)
{
    set_interest(privdata, 0, LOOP_IN);
}
static void ev_add_write(void *privdata)
{
    set_interest(privdata, LOOP_OUT, 0);
}
static void ev_del_write(void *privdata)
{
    set_interest(privdata, 0, LOOP_OUT);
}

/* hiredis is about to free the context (and close its socket): stop watching it. The watch
 * lives in struct backplane, not in memory hiredis frees, so an event for it still in the
 * current batch finds watch.fd == -1 and is skipped by loop_wait(). */
static void ev_cleanup(void *privdata)
{
    struct backplane_link *l = privdata;
    loop_del(l->bp->loop, &l->watch);
    l->ac = NULL;
}

/* Reads per wake-up, at most: hiredis reads 16 KiB per call, and the subscriber carries
 * every other node's traffic, so one call per wake-up could fall behind a busy channel. The
 * bound keeps one link from starving the clients (64 x 16 KiB = 1 MiB). */
enum { READS_PER_EVENT = 64 };

/* Our loop says the socket is ready: let hiredis read or write. A read may end in a
 * disconnect that frees the context (ev_cleanup sets l->ac to NULL), so check each time. */
static void on_link_event(struct loop_watch *w, uint32_t events)
{
    struct backplane_link *l = w->ctx;
    if (events & (LOOP_IN | LOOP_ERR)) {
        for (int i = 0; i < READS_PER_EVENT && l->ac != NULL; i++) {
            redisAsyncHandleRead(l->ac);
            int pending = 0;
            if (l->ac == NULL || ioctl(l->ac->c.fd, FIONREAD, &pending) < 0 || pending <= 0)
                break;
        }
    }
    if ((events & (LOOP_OUT | LOOP_ERR)) && l->ac != NULL)
        redisAsyncHandleWrite(l->ac);
}

static int attach(struct backplane_link *l)
{
    redisAsyncContext *ac = l->ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = l;
    ac->data = l;
    return loop_add(l->bp->loop, &l->watch, ac->c.fd, 0, on_link_event, l);
}

/* ==== 2. A link's life =================================================================== */

static const char *link_name(const struct backplane_link *l)
{
    return l->is_subscriber ? "subscriber" : "publisher";
}

/* One line when the cluster link as a whole goes up or down, not one per attempt or per
 * message: an outage of a minute must not flood the log. */
static void log_state(struct backplane *b, const char *why)
{
    bool is_up = backplane_is_up(b);
    if (is_up == b->was_up)
        return;
    b->was_up = is_up;
    if (is_up)
        log_at(LL_INFO, "redis=%s:%u channel=%s \"redis: connected\"", b->ip,
               (unsigned)b->target.port, log_value_str(b->channel).s);
    else /* why: hiredis's errstr, which can quote what the server sent */
        log_at(LL_WARN, "redis=%s:%u \"redis: connection lost (%s): relaying locally, retrying\"",
               b->ip, (unsigned)b->target.port, log_text_str(why).s);
}

static void became_ready(struct backplane_link *l)
{
    struct backplane *b = l->bp;
    l->state = BACKPLANE_READY;
    l->backoff_ms = BACKPLANE_BACKOFF_MIN_MS;
    l->is_refusal_logged = false;
    log_state(b, "");
    if (backplane_is_up(b) && b->needs_sync) {
        b->needs_sync = false;
        b->ops->on_ready(b->ctx);
    }
}

/* The link is gone (refused, lost, timed out): wait, then try again, longer each time. */
static void went_down(struct backplane_link *l, uint64_t now_ms, const char *why)
{
    struct backplane *b = l->bp;
    bool was_up = backplane_is_up(b);
    l->state = BACKPLANE_DOWN;
    l->since_ms = now_ms;
    l->retry_ms = now_ms + l->backoff_ms;
    l->backoff_ms =
        l->backoff_ms * 2 > BACKPLANE_BACKOFF_MAX_MS ? BACKPLANE_BACKOFF_MAX_MS : l->backoff_ms * 2;
    b->needs_sync = true; /* whatever happens next, the other nodes' view and ours diverged */
    if (was_up)
        log_state(b, why);
    else
        log_at(LL_DEBUG, "link=%s \"redis: %s\"", link_name(l), log_text_str(why).s);
}

/* Redis refused a command (AUTH: a wrong password, or none configured; SELECT: a database out
 * of range; SUBSCRIBE or PUBLISH: an ACL user without the channel). A configuration problem
 * that retrying will not fix quickly: say so loudly, once (not on every retry, not on every
 * message: until the link has worked again), then retry with backoff. */
static void refused(struct backplane_link *l, const char *what, const redisReply *reply)
{
    /* The error text is the server's: whatever answers on the Redis port chose it. */
    log_at(l->is_refusal_logged ? LL_DEBUG : LL_ERROR, "link=%s \"redis refused %s: %s\"",
           link_name(l), what, log_text(reply->str, reply->len).s);
    l->is_refusal_logged = true;
}

/* A reply that arrives after a refusal asked hiredis to disconnect (Redis answers pipelined
 * commands in order, so a PONG can follow a refused AUTH) must not make the link ready. */
static bool is_closing(const redisAsyncContext *ac)
{
    return (ac->c.flags & REDIS_DISCONNECTING) != 0;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    const redisReply *reply = r;
    struct backplane_link *l = ac->data;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !is_closing(ac)) {
        refused(l, privdata, reply);
        redisAsyncDisconnect(ac);
    }
}

/* The publisher's PING, sent after AUTH and SELECT: its PONG says they were accepted, and
 * only then is the link ready (before, a PUBLISH would be refused, unauthenticated). */
static void on_pub_ping_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    const redisReply *reply = r;
    struct backplane_link *l = ac->data;
    if (reply != NULL && l != NULL && reply->type == REDIS_REPLY_STATUS && !is_closing(ac))
        became_ready(l);
}

/* Every reply on the subscriber link: for each channel, its confirmation, then one reply per
 * message (hiredis routes a channel's replies to the callback of its SUBSCRIBE). The control
 * channel's confirmation makes the link ready; a room channel's tells the caller it may now
 * ask for that room's state without missing the answers. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    const redisReply *reply = r;
    struct backplane_link *l = ac->data;
    if (reply == NULL || l == NULL || is_closing(ac))
        return;
    if (reply->type == REDIS_REPLY_ERROR) { /* SUBSCRIBE refused */
        refused(l, "SUBSCRIBE", reply);
        redisAsyncDisconnect(ac);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    const redisReply *kind = reply->element[0];
    const redisReply *channel = reply->element[1];
    const redisReply *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING)
        return;
    struct backplane *b = l->bp;
    bool is_control =
        strlen(b->channel) == channel->len && memcmp(b->channel, channel->str, channel->len) == 0;
    if (strcmp(kind->str, "subscribe") == 0) {
        if (is_control)
            became_ready(l);
        else if (b->ops->on_subscribed != NULL)
            b->ops->on_subscribed(b->ctx, channel->str, channel->len);
    } else if (strcmp(kind->str, "unsubscribe") == 0 && b->ops->on_unsubscribed != NULL) {
        b->ops->on_unsubscribed(b->ctx, channel->str, channel->len);
    } else if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING) {
        b->received++;
        b->ops->on_message(b->ctx, channel->str, channel->len, (const uint8_t *)payload->str,
                           payload->len);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct backplane_link *l = cac->data;
    redisAsyncContext *ac = l->ac;
    struct backplane *b = l->bp;
    if (status != REDIS_OK) {
        /* hiredis frees the context after we return (ev_cleanup clears l->ac). */
        went_down(l, b->loop->now_ms, cac->errstr);
        return;
    }
    /* Keep-alive probes: a link whose peer vanished (a crashed host) errors out in minutes
     * instead of never; the server's round-trip check (backplane_reset) is quicker still. */
    redisEnableKeepAlive(&ac->c);
    /* Pipelined: Redis answers in order, so a PUBLISH or SUBSCRIBE sent after AUTH runs
     * authenticated. The password goes as an argument (%s), never into a log line. */
    if (b->target.password[0] != '\0') {
        if (b->target.user[0] != '\0')
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", b->target.user,
                              b->target.password);
        else
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", b->target.password);
    }
    if (b->target.db != 0)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %u", b->target.db);
    if (l->is_subscriber)
        redisAsyncCommand(ac, on_sub_reply, NULL, "SUBSCRIBE %s", b->channel);
    else
        redisAsyncCommand(ac, on_pub_ping_reply, NULL, "PING");
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct backplane_link *l = cac->data;
    (void)status;
    went_down(l, l->bp->loop->now_ms, cac->err != 0 ? cac->errstr : "closed by the server");
}

static void start_connect(struct backplane_link *l, uint64_t now_ms)
{
    struct backplane *b = l->bp;
    l->since_ms = now_ms;
    l->ac = redisAsyncConnect(b->ip, b->target.port); /* non-blocking connect */
    if (l->ac == NULL || l->ac->err != 0) {
        const char *why = l->ac != NULL ? l->ac->errstr : "out of memory";
        if (l->ac != NULL)
            redisAsyncFree(l->ac);
        l->ac = NULL;
        went_down(l, now_ms, why);
        return;
    }
    if (attach(l) < 0) {
        redisAsyncFree(l->ac); /* runs ev_cleanup */
        went_down(l, now_ms, "cannot watch the socket");
        return;
    }
    l->state = BACKPLANE_CONNECTING;
    redisAsyncSetConnectCallback(l->ac, on_connect);
    redisAsyncSetDisconnectCallback(l->ac, on_disconnect);
}

/* Frees a link's context from outside hiredis's callbacks. hiredis fails the pending
 * commands' callbacks with a NULL reply (so inflight drains), and would call on_disconnect
 * for a connected link: the callback is taken off first, since the caller reports. */
static void free_context(struct backplane_link *l)
{
    if (l->ac != NULL) {
        l->ac->onDisconnect = NULL; /* a public field: hiredis has no call to unset it */
        redisAsyncFree(l->ac);      /* runs ev_cleanup, which sets l->ac to NULL */
        l->ac = NULL;
    }
}

/* Gives up on a link (timed out, or dead though open) and goes down, reported once, here. */
static void drop_link(struct backplane_link *l, uint64_t now_ms, const char *why)
{
    free_context(l);
    went_down(l, now_ms, why);
}

static void tick_link(struct backplane_link *l, uint64_t now_ms)
{
    if (l->state == BACKPLANE_DOWN && now_ms >= l->retry_ms)
        start_connect(l, now_ms);
    else if (l->state == BACKPLANE_CONNECTING &&
             now_ms - l->since_ms >= BACKPLANE_CONNECT_TIMEOUT_MS)
        drop_link(l, now_ms, "no answer: connect timed out"); /* a black hole, a stopped Redis */
}

int backplane_init(struct backplane *b, struct loop *loop, const struct config_redis *target,
                   const char *channel, size_t message_max, const struct backplane_ops *ops,
                   void *ctx)
{
    *b = (struct backplane){.loop = loop,
                            .target = *target,
                            .channel = channel,
                            .out_max = BACKPLANE_OUT_MAX + message_max,
                            .ops = ops,
                            .ctx = ctx};
    /* Resolved once, here: hiredis would call getaddrinfo() on every reconnect, inside the
     * loop, where a slow DNS server would stall every client. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(target->host, NULL, &hints, &res);
    if (rc != 0) {
        log_at(LL_ERROR, "host=%s \"redis: cannot resolve the host: %s\"",
               log_value_str(target->host).s, gai_strerror(rc));
        return -1;
    }
    getnameinfo(res->ai_addr, res->ai_addrlen, b->ip, sizeof b->ip, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);

    struct backplane_link *links[] = {&b->sub, &b->pub};
    for (size_t i = 0; i < 2; i++) {
        *links[i] = (struct backplane_link){
            .bp = b,
            .watch = {.fd = -1},
            .is_subscriber = i == 0,
            .state = BACKPLANE_DOWN,
            .retry_ms = 0, /* at the first tick */
            .backoff_ms = BACKPLANE_BACKOFF_MIN_MS,
        };
    }
    b->needs_sync = true;
    return 0;
}

void backplane_free(struct backplane *b)
{
    free_context(&b->sub); /* going away on purpose: no loss to report */
    free_context(&b->pub);
}

void backplane_reset(struct backplane *b, uint64_t now_ms, const char *why)
{
    struct backplane_link *links[] = {&b->sub, &b->pub};
    for (size_t i = 0; i < 2; i++) {
        if (links[i]->state != BACKPLANE_DOWN) {
            drop_link(links[i], now_ms, why);
            links[i]->retry_ms = now_ms; /* nothing refused it: try again at once */
        }
    }
}

void backplane_tick(struct backplane *b, uint64_t now_ms)
{
    tick_link(&b->sub, now_ms);
    tick_link(&b->pub, now_ms);
}

bool backplane_is_up(const struct backplane *b)
{
    return b->sub.state == BACKPLANE_READY && b->pub.state == BACKPLANE_READY;
}

/* ==== 3. Publishing ====================================================================== */

/* Redis acknowledged a PUBLISH (or the link died and hiredis is failing its callbacks): its
 * bytes no longer wait. privdata carries the size, so nothing is allocated per message. */
static void on_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    const redisReply *reply = r;
    struct backplane_link *l = ac->data;
    struct backplane *b = l->bp;
    size_t len = (size_t)(uintptr_t)privdata;
    b->inflight -= len < b->inflight ? len : b->inflight;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        b->published++; /* the reply is how many subscribers got it */
        return;
    }
    b->dropped++;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        refused(l, "PUBLISH", reply);
}

bool backplane_publish(struct backplane *b, const char *channel, const void *p, size_t len)
{
    struct backplane_link *l = &b->pub;
    if (l->state != BACKPLANE_READY || l->ac == NULL || b->inflight + len > b->out_max) {
        b->dropped++;
        return false;
    }
    /* %b: binary-safe (pointer, length), so a message needs no escaping. */
    /* The command's size rides in hiredis's privdata pointer: no allocation per message. */
    void *size_tag = (void *)(uintptr_t)len; // NOLINT(performance-no-int-to-ptr)
    if (redisAsyncCommand(l->ac, on_publish_reply, size_tag, "PUBLISH %s %b",
                          channel != NULL ? channel : b->channel, p, len) != REDIS_OK) {
        b->dropped++;
        return false;
    }
    b->inflight += len;
    return true;
}

/* ==== 4. Room channels =================================================================== */

/* A channel's replies come to on_sub_reply. While the link is down there is nothing to do:
 * on_ready makes the caller subscribe again.
 *
 * A room freed and opened again before Redis answered its UNSUBSCRIBE sends UNSUBSCRIBE,
 * SUBSCRIBE; Redis ends subscribed, and Debian 12's hiredis (0.14.1) keeps the channel's
 * callback through the unsubscribe reply (checked with a small program). Other hiredis
 * versions have handled that reply differently, so every unsubscribe reply is reported
 * (on_unsubscribed) and the caller subscribes again if it wants the channel after all: one
 * more SUBSCRIBE, which Redis takes as a no-op, against a room that would hear nothing. */
void backplane_subscribe(struct backplane *b, const char *channel)
{
    if (b->sub.state == BACKPLANE_READY && b->sub.ac != NULL)
        redisAsyncCommand(b->sub.ac, on_sub_reply, NULL, "SUBSCRIBE %s", channel);
}

void backplane_unsubscribe(struct backplane *b, const char *channel)
{
    if (b->sub.state == BACKPLANE_READY && b->sub.ac != NULL)
        redisAsyncCommand(b->sub.ac, on_sub_reply, NULL, "UNSUBSCRIBE %s", channel);
}
