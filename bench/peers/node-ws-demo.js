// The original shared-cursors demo's server, kept as it was so that wsrelay is compared with
// the real thing: the `ws` package, a Map of clients, and per message JSON.parse, two
// assignments, JSON.stringify and one send per client, the sender included.
//
// Added for the benchmark only (none of it runs per message):
//   - the port comes from argv[2] or $PORT (the demo hard-coded 7071), host 127.0.0.1;
//   - "listening" is printed once the socket is bound, so bench/run.py knows when to start;
//   - no `path` option, as in the demo: ws then accepts a handshake on any path (/ws too);
//   - the id comes from crypto.randomUUID() (the demo used a Math.random() UUID helper).
//
// Like the demo, a message that is not JSON throws and stops the process: that is the bug
// wsrelay fixes, and the benchmark never sends one.
//
// `npm ci` here also installs bufferutil and utf-8-validate (optional dependencies of the
// uWebSockets.js package beside us); a plain `npm install ws`, as the demo did, has neither,
// so ws is told not to load them.
'use strict';
process.env.WS_NO_BUFFER_UTIL = '1';
process.env.WS_NO_UTF_8_VALIDATE = '1';

const crypto = require('crypto');
const WebSocket = require('ws');

const port = Number(process.argv[2] || process.env.PORT || 7071);
const wss = new WebSocket.Server({ host: '127.0.0.1', port });
const clients = new Map();

wss.on('connection', (ws) => {
  const id = crypto.randomUUID();
  const color = Math.floor(Math.random() * 360);
  const metadata = { id, color };

  clients.set(ws, metadata);

  ws.on('message', (messageAsString) => {
    const message = JSON.parse(messageAsString);
    const metadata = clients.get(ws);

    message.sender = metadata.id;
    message.color = metadata.color;

    const outbound = JSON.stringify(message);

    [...clients.keys()].forEach((client) => {
      client.send(outbound);
    });
  });

  ws.on('close', () => {
    clients.delete(ws);
  });
});

wss.on('listening', () => {
  console.log(`listening on 127.0.0.1:${wss.address().port}`);
});
