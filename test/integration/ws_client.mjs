// Node's `ws` client (package.json) against a wsrelay speaking TLS: test_node_ws.py runs one
// scenario per process and judges what it prints, one JSON object on stdout.
//
//   node ws_client.mjs SCENARIO BASE_URL CA_FILE [TOKEN]
//
// BASE_URL is wss://127.0.0.1:PORT; CA_FILE the test CA, trusted through `ca:` only (never
// rejectUnauthorized: false), so every connection here also proves the server's chain.
// Scenarios:
//   relay      two clients on /ws: both welcomes, a's view of b's join, and what a and b
//              receive after b sends {"x":1,"y":2}
//   echo       /echo: a 70 KB binary message whole, then the same bytes in three fragments
//   untrusted  /echo without the CA: the error a client that does not trust it gets
//   token      /ws/doc with ['wsrelay.batch', 'bearer.' + TOKEN]: the protocol chosen and
//              the first batch; then /ws/doc without a token: the HTTP status
// Every wait is bounded (TIMEOUT_MS); a failure prints {"error": ...} and exits 1.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const TIMEOUT_MS = 10000;
const [scenario, base, caFile, token] = process.argv.slice(2);
const ca = readFileSync(caFile);

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A client whose messages queue up until asked for, so none is missed between awaits.
function open(path, protocols = [], options = { ca }) {
  const ws = new WebSocket(base + path, protocols, options);
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const msg = { data, isBinary };
    if (waiters.length) waiters.shift()(msg);
    else queue.push(msg);
  });
  let closed = null;
  ws.on('close', (code, reason) => {
    closed = new Error(`closed by the server: ${code} ${reason}`);
    while (waiters.length) waiters.shift()(null);
  });
  ws.next = async (what) => {
    const msg = await withTimeout(
      new Promise((resolve) => (queue.length || closed ? resolve(queue.shift() ?? null) : waiters.push(resolve))),
      what,
    );
    if (msg === null) throw new Error(`${what}: ${closed.message}`);
    return msg;
  };
  ws.opened = withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.on('error', reject); // kept: a later error must not go unhandled
      ws.once('unexpected-response', (req, res) => {
        reject(Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode }));
        req.destroy(); // with this listener, ending the refused handshake is ours to do
      });
    }),
    `open ${path}`,
  );
  return ws;
}

async function text(ws, what) {
  const { data, isBinary } = await ws.next(what);
  if (isBinary) throw new Error(`${what}: a binary message`);
  return data.toString('utf8');
}

function closeAll(...sockets) {
  return Promise.all(
    sockets.map((ws) => withTimeout(new Promise((resolve) => { ws.once('close', resolve); ws.close(1000); }), 'close')),
  );
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

const scenarios = {
  async relay() {
    const a = open('/ws');
    await a.opened;
    const welcomeA = await text(a, 'a: welcome');
    const b = open('/ws');
    await b.opened;
    const welcomeB = await text(b, 'b: welcome');
    const joinSeenByA = await text(a, "a: b's join");
    b.send(JSON.stringify({ x: 1, y: 2 }));
    const relayedToA = await text(a, "a: b's cursor");
    const relayedToB = await text(b, "b: its own cursor");
    await closeAll(a, b);
    return { welcomeA, welcomeB, joinSeenByA, relayedToA, relayedToB };
  },

  async echo() {
    const ws = open('/echo');
    await ws.opened;
    const blob = Buffer.alloc(70 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + (i >> 8)) & 0xff;
    ws.send(blob, { binary: true });
    const whole = await ws.next('echo of the whole message');
    // RFC 6455 §5.4: one message in three frames (binary, continuation, final continuation).
    const cuts = [0, 1000, 40000, blob.length];
    for (let i = 0; i < 3; i++) ws.send(blob.subarray(cuts[i], cuts[i + 1]), { binary: true, fin: i === 2 });
    const fragmented = await ws.next('echo of the fragmented message');
    await closeAll(ws);
    return {
      sent: { length: blob.length, sha256: sha256(blob) },
      whole: { isBinary: whole.isBinary, length: whole.data.length, sha256: sha256(whole.data) },
      fragmented: { isBinary: fragmented.isBinary, length: fragmented.data.length, sha256: sha256(fragmented.data) },
    };
  },

  async untrusted() {
    const ws = open('/echo', [], {}); // Node's own CA list: the test CA is not in it
    try {
      await ws.opened;
    } catch (e) {
      return { failed: true, code: e.code ?? null, message: e.message };
    }
    await closeAll(ws);
    return { failed: false };
  },

  async token() {
    const ws = open('/ws/doc', ['wsrelay.batch', `bearer.${token}`]);
    await ws.opened;
    const protocol = ws.protocol;
    const batch = await text(ws, 'the welcome batch');
    await closeAll(ws);
    let refusedStatus = null;
    try {
      await open('/ws/doc', ['wsrelay.batch']).opened;
    } catch (e) {
      refusedStatus = e.status ?? e.message;
    }
    return { protocol, batch, refusedStatus };
  },
};

try {
  if (!(scenario in scenarios)) throw new Error(`unknown scenario ${scenario}`);
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (e) {
  console.log(JSON.stringify({ error: `${e.message} (${e.code ?? ''})` }));
  process.exitCode = 1;
}
