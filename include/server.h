/* server.h: the glue. One struct server, made in main() and passed down.
 *
 * Owns: the read/write handlers, routing (static files, /ws, /echo), turning codec results
 * into actions (responses, relays, closes), the reaper, and the main loop.
 * Does not own: any protocol rule. Those live in the pure modules (http, www, upgrade,
 * frame, utf8, ws, json, presence, bcast); this file only calls them and does the I/O.
 *
 * One message's path, socket to every client:
 *   on_readable()        read() into conn.rbuf
 *   process_input()      ws_feed()     -> WS_EV_TEXT (unmasked, UTF-8 checked)
 *   on_room_text()       json_rewrite() -> {"x":..,"y":..,"sender":..,"color":..}
 *                        bcast_room()  -> one frame header, appended to every member's wbuf
 *   flush_writers()      write() once per queued connection, before epoll_wait()
 */
#ifndef WSRELAY_SERVER_H
#define WSRELAY_SERVER_H

#include "config.h"

/* Runs the server until SIGINT or SIGTERM. Returns the process exit status: 0 after a clean
 * stop; 1 if start-up failed (port in use, no www directory, ...), after logging why. */
int server_run(const struct config *cfg);

#endif
