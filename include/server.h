/* server.h: start-up, signals, the tick and the main loop.
 *
 * Owns: the module states (one of each, in struct server, made by server_run()), wiring them
 * together (conn_io reports to routes, rooms report to the cluster), the signals, the
 * periodic tick, and the main loop. Nothing else: every rule lives in a module below.
 *
 *   server ─┬─ conn_io ──(conn_io_ops)──▶ routes ─┬─ room ─(room_listener)─▶ cluster_sync
 *           │     └ transport (the socket calls)  └ target, www, upgrade     └ backplane
 *           └ loop, signals, tick
 *
 * One message's path, socket to every client: docs/architecture.md.
 */
#ifndef WSRELAY_SERVER_H
#define WSRELAY_SERVER_H

#include "config.h"

/* Runs the server until SIGINT or SIGTERM. Returns the process exit status: 0 after a clean
 * stop; 1 if start-up failed (port in use, no www directory, ...), after logging why. */
int server_run(const struct config *cfg);

#endif
