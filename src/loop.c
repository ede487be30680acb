/* loop.c: epoll, timerfd and signalfd behind the small interface of loop.h. */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static uint32_t to_epoll(unsigned mask)
{
    return ((mask & LOOP_IN) ? EPOLLIN : 0u) | ((mask & LOOP_OUT) ? EPOLLOUT : 0u);
}

int loop_init(struct loop *l, size_t max_events)
{
    l->events = calloc(max_events, sizeof(struct epoll_event));
    if (l->events == NULL)
        return -ENOMEM;
    l->max_events = max_events;
    l->now_ms = loop_now_ms();
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int err = -errno;
        free(l->events);
        return err;
    }
    return 0;
}

void loop_free(struct loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
    free(l->events);
    l->events = NULL;
}

static int watch(struct loop *l, struct loop_watch *w, int fd, unsigned mask, enum loop_kind kind,
                 loop_fn fn, void *ctx)
{
    *w = (struct loop_watch){.fd = fd, .mask = mask, .kind = kind, .fn = fn, .ctx = ctx};
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        w->fd = -1;
        return -errno;
    }
    return 0;
}

int loop_add(struct loop *l, struct loop_watch *w, int fd, unsigned mask, loop_fn fn, void *ctx)
{
    return watch(l, w, fd, mask, LOOP_KIND_FD, fn, ctx);
}

int loop_set(struct loop *l, struct loop_watch *w, unsigned mask)
{
    if (w->fd < 0 || w->mask == mask)
        return 0;
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
        return -errno;
    w->mask = mask;
    return 0;
}

void loop_del(struct loop *l, struct loop_watch *w)
{
    if (w->fd < 0)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->fd = -1;
}

int loop_add_timer(struct loop *l, struct loop_watch *w, unsigned interval_ms, loop_fn fn,
                   void *ctx)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct timespec every = {.tv_sec = interval_ms / 1000,
                             .tv_nsec = (long)(interval_ms % 1000) * 1000000L};
    struct itimerspec its = {.it_interval = every, .it_value = every};
    int err = timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
    if (err == 0)
        err = watch(l, w, fd, LOOP_IN, LOOP_KIND_TIMER, fn, ctx);
    if (err != 0)
        close(fd);
    return err;
}

int loop_add_signals(struct loop *l, struct loop_watch *w, const int *signals, size_t n, loop_fn fn,
                     void *ctx)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < n; i++)
        sigaddset(&set, signals[i]);
    /* Blocked signals stay pending until the signalfd reads them: they can no longer
     * interrupt a handler halfway, which is the point. */
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = watch(l, w, fd, LOOP_IN, LOOP_KIND_SIGNAL, fn, ctx);
    if (err != 0)
        close(fd);
    return err;
}

void loop_close_watch(struct loop *l, struct loop_watch *w)
{
    int fd = w->fd;
    loop_del(l, w);
    if (fd >= 0)
        close(fd);
}

/* Timers and signals are read here, so their handlers see a plain number. */
static void dispatch(struct loop_watch *w, uint32_t ev)
{
    switch (w->kind) {
    case LOOP_KIND_TIMER: {
        uint64_t expirations;
        if (read(w->fd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations)
            w->fn(w, (uint32_t)expirations);
        return;
    }
    case LOOP_KIND_SIGNAL: {
        struct signalfd_siginfo si;
        while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si)
            w->fn(w, si.ssi_signo);
        return;
    }
    case LOOP_KIND_FD:
        break;
    }
    uint32_t events = 0;
    if (ev & (EPOLLIN | EPOLLRDHUP))
        events |= LOOP_IN;
    if (ev & EPOLLOUT)
        events |= LOOP_OUT;
    if (ev & (EPOLLERR | EPOLLHUP))
        events |= LOOP_ERR;
    w->fn(w, events);
}

int loop_wait(struct loop *l, int timeout_ms)
{
    struct epoll_event *events = l->events;
    int n = epoll_wait(l->epfd, events, (int)l->max_events, timeout_ms);
    l->now_ms = loop_now_ms();
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int dispatched = 0;
    for (int i = 0; i < n; i++) {
        struct loop_watch *w = events[i].data.ptr;
        /* An earlier handler in this batch may have stopped watching this one (redis's
         * "re-check the event is still wanted"). The memory is still valid: nothing is
         * freed until the batch is over. */
        if (w->fd < 0)
            continue;
        dispatch(w, events[i].events);
        dispatched++;
    }
    return dispatched;
}

uint64_t loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
