// The shared-cursors protocol of node-ws-demo.js on uWebSockets.js, the fastest WebSocket
// server for Node we know: one pub/sub topic per room holds the room's clients, and each
// message is parsed, stamped with its sender's id and color, stringified and published once
// to its sender's topic.
//
// Rooms (wsrelay's issue 11, as uWS would do them): a client on /ws/<room> subscribes to the
// topic <room> and publishes there; any other path (/ws, /) is the default room, topic "/"
// (no room name holds a "/", so it cannot clash). The room is read from the URL in the
// upgrade handler, the only place uWS shows the request; no name check, no welcome, no
// limits: only what the benchmark exercises.
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
const DEFAULT_TOPIC = '/';
const decoder = new TextDecoder();

// "/ws/doc" -> "doc"; "/ws", "/ws/", "/" and anything else -> the default room.
function topicOf(url) {
  const m = /^\/ws\/([^/?]+)/.exec(url);
  return m ? m[1] : DEFAULT_TOPIC;
}

const app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024,
  idleTimeout: 0,
  maxBackpressure,
  closeOnBackpressureLimit: false,

  // The default upgrade, plus the topic taken from the URL (req dies when this returns).
  upgrade: (res, req, context) => {
    res.upgrade({ topic: topicOf(req.getUrl()) },
      req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'), context);
  },

  open: (ws) => {
    const data = ws.getUserData();
    data.id = crypto.randomUUID();
    data.color = Math.floor(Math.random() * 360);
    ws.subscribe(data.topic);
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
    app.publish(data.topic, JSON.stringify(message), false);
  },
});

app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`uws-demo: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.log(`listening on 127.0.0.1:${port}`);
});
