/* loop.h: the event loop, a thin layer over epoll(7).
 *
 * Owns: the epoll instance, interest changes, waiting and dispatching, one periodic timer
 * (timerfd) and signal delivery (signalfd), so that timers and signals arrive as ordinary
 * events and no handler ever runs in signal context. The only file that includes
 * <sys/epoll.h>.
 * Does not own: what an event means (conn_io.c, server.c, backplane.c), or the lifetime of
 * watched objects.
 *
 * Each watched descriptor has a struct loop_watch that lives inside its owner (a connection,
 * the listener); epoll hands the watch back with each event. The owner must keep the watch
 * alive while registered and call loop_del() before freeing it. wsrelay never frees a
 * connection mid-dispatch (see conn_close_later()), so an event fetched in the same batch
 * can never point at freed memory.
 *
 * Level-triggered: an fd that still has unread bytes is reported again on the next wait, so
 * one read() per wake-up is enough, and fair to every connection.
 */
#ifndef WSRELAY_LOOP_H
#define WSRELAY_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Interest and event bits. LOOP_ERR is never asked for: epoll reports hang-ups and errors
 * unasked, and handlers treat it as "readable, and the read will tell what happened". */
enum { LOOP_IN = 1u, LOOP_OUT = 2u, LOOP_ERR = 4u };

struct loop_watch;
/* events: LOOP_* bits for descriptors; the signal number for signal watches; the number of
 * expirations for the timer. */
typedef void (*loop_fn)(struct loop_watch *w, uint32_t events);

enum loop_kind { LOOP_KIND_FD, LOOP_KIND_TIMER, LOOP_KIND_SIGNAL };

struct loop_watch {
    int fd;        /* -1 when not registered */
    unsigned mask; /* current interest: LOOP_IN | LOOP_OUT */
    enum loop_kind kind;
    loop_fn fn;
    void *ctx; /* the owner, for the handler */
};

struct loop {
    int epfd;
    void *events;      /* struct epoll_event[max_events], opaque to keep epoll in loop.c */
    size_t max_events; /* events fetched per wait */
    uint64_t now_ms;   /* loop_now_ms() when the current batch was fetched: handlers share
                        * one reading of the clock instead of each asking for its own */
};

/* Creates the epoll instance. Returns 0 or -errno. */
int loop_init(struct loop *l, size_t max_events);
void loop_free(struct loop *l);

/* Starts watching fd with interest mask; fn(w, events) runs for each event. Returns 0 or
 * -errno. */
int loop_add(struct loop *l, struct loop_watch *w, int fd, unsigned mask, loop_fn fn, void *ctx);

/* Changes the interest of a registered watch; does nothing if it is unchanged (no syscall).
 * Returns 0 or -errno. */
int loop_set(struct loop *l, struct loop_watch *w, unsigned mask);

/* Stops watching (the caller still owns and closes the descriptor). Safe to call twice. */
void loop_del(struct loop *l, struct loop_watch *w);

/* A periodic timer every interval_ms, as a timerfd. fn receives the expiration count.
 * The watch owns the timerfd; loop_close_watch() closes it. Returns 0 or -errno. */
int loop_add_timer(struct loop *l, struct loop_watch *w, unsigned interval_ms, loop_fn fn,
                   void *ctx);

/* Blocks the given signals for the process and delivers them as events through a signalfd;
 * fn receives the signal number. Returns 0 or -errno. */
int loop_add_signals(struct loop *l, struct loop_watch *w, const int *signals, size_t n, loop_fn fn,
                     void *ctx);

/* loop_del() and close() for the watches whose descriptor the loop created (timer, signals). */
void loop_close_watch(struct loop *l, struct loop_watch *w);

/* Waits up to timeout_ms (-1: no limit) and dispatches what arrived. Returns the number of
 * events dispatched (0 on timeout or EINTR), or -errno. */
int loop_wait(struct loop *l, int timeout_ms);

/* Milliseconds on the monotonic clock: for timeouts, immune to wall-clock jumps. */
uint64_t loop_now_ms(void);

#endif
