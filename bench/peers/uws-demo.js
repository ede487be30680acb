// The shared-cursors protocol of node-ws-demo.js on uWebSockets.js, the fastest WebSocket
// server for Node we know: one pub/sub topic holds every client, and each message is parsed,
// stamped with its sender's id and color, stringified and published once to the topic.
//
//   node uws-demo.js PORT [MAX_BACKPRESSURE_BYTES]
//
// The package is @trufflesuite/uws-js-unofficial, a build of uWebSockets.js for Node 20 (the
// official one is not on npm). Its entry point quietly falls back to a pure-JS emulation on
// top of `ws` when the native binary does not load ("performance may be degraded"): that
// would benchmark ws twice under two names, so we load the native binary ourselves and stop
// if it is missing.
//
// Choices that differ from uWS's defaults, each to match how wsrelay runs in the benchmark:
//   - idleTimeout 0: no pings or idle timeout (wsrelay runs with --ping-interval 0);
//   - maxBackpressure from argv[3] (run.py passes wsrelay's --max-buffer): past it uWS skips
//     the slow reader's messages (it does not close it), where wsrelay would drop the client.
// Binary messages are ignored; a text message that is not JSON closes that client (1007),
// where the Node demo would crash.
'use strict';

const crypto = require('crypto');
const path = require('path');

const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const native = path.join(pkgDir, 'binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
let uWS;
try {
  uWS = require(native);
} catch (e) {
  console.error(`uws-demo: native uWebSockets.js not loadable (${e.message}); refusing to run ` +
    'the package\'s ws-based fallback');
  process.exit(1);
}

const port = Number(process.argv[2] || process.env.PORT || 7071);
const maxBackpressure = Number(process.argv[3] || 64 * 1024);
const TOPIC = 'room';
const decoder = new TextDecoder();

const app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024,
  idleTimeout: 0,
  maxBackpressure,
  closeOnBackpressureLimit: false,

  open: (ws) => {
    const data = ws.getUserData();
    data.id = crypto.randomUUID();
    data.color = Math.floor(Math.random() * 360);
    ws.subscribe(TOPIC);
  },

  message: (ws, buffer, isBinary) => {
    if (isBinary)
      return;
    let message;
    try {
      message = JSON.parse(decoder.decode(buffer)); // buffer dies when this handler returns
    } catch (e) {
      ws.end(1007, 'invalid JSON');
      return;
    }
    const data = ws.getUserData();
    message.sender = data.id;
    message.color = data.color;
    // app.publish reaches every subscriber, the sender included (ws.publish would skip it).
    app.publish(TOPIC, JSON.stringify(message), false);
  },
});

app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`uws-demo: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.log(`listening on 127.0.0.1:${port}`);
});
