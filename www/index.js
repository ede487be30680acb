// index.js: the shared-cursors page (an ES module, loaded with <script type="module">).
//
// Owns: the WebSocket connection to /ws and its reconnection; turning pointer movement into
// {"x":…,"y":…} messages; drawing one SVG arrow per *other* visitor from what the server
// relays; the status badge.
// Does not own: ids, colours or who is in the room. The server decides all of that
// (docs/protocol.md) and this page only mirrors it, so nothing here is trusted to be true
// after a reconnect: we throw our picture away and let the next `welcome` redraw it.
//
// Chapters: 1. settings and page elements, 2. checking what the network sent,
// 3. drawing cursors, 4. server messages, 5. sending our position, 6. connection and
// reconnect, 7. the status badge.

// ---------------------------------------------------------------------------------------
// 1. Settings and page elements
// ---------------------------------------------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';

// The classic arrow pointer, drawn with its tip at (0,0) so that translate(x, y) puts the
// tip exactly on the point the other person is pointing at.
const ARROW_PATH = 'M0 0 L0 17 L4.5 12.7 L7.3 19.2 L10.3 17.9 L7.6 11.5 L13.2 11.5 Z';

// Reconnect delays: 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s for ever (see chapter 6).
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

// If the browser has this many bytes queued but not yet sent, the network is slower than
// the pointer: wait instead of queueing positions that will be stale when they arrive.
const SEND_QUEUE_LIMIT = 4096;

const layer = document.getElementById('cursors');
const badge = document.getElementById('status');
const badgeText = document.getElementById('status-text');

// The connection (chapter 6). There is only ever one socket at a time.
let ws = null;            // the WebSocket, or null while waiting to reconnect
let backoffStep = 0;      // drops since the last welcome; sets the next reconnect delay

// What we know of the room. Rebuilt from scratch by every `welcome`.
let myId = null;          // our id, from `welcome`; null until then
let myColor = null;       // our hue, shown in the badge
const peers = new Map();  // sender id -> { color: hue or null, el: <svg> or null }

// ---------------------------------------------------------------------------------------
// 2. Checking what the network sent
// ---------------------------------------------------------------------------------------
//
// x and y come straight from other people's browsers (the server copies them byte for
// byte), and sender and color from the server; we check the type and range of each before
// it touches the page, so neither a hostile visitor nor a server bug can break it. And we
// never build markup from network data as a string (no innerHTML, no insertAdjacentHTML):
// an "x" of `<img src=x onerror=…>` would run someone else's script in our page.
// createElementNS + setAttribute + textContent pass values in as plain data, which the
// browser never parses as HTML.

function isHue(v) {
    return Number.isInteger(v) && v >= 0 && v <= 359;
}

function isCoord(v) {
    return Number.isFinite(v); // false for strings, NaN, Infinity, null, …
}

function isId(v) {
    // The server sends 36-character UUIDs; we only insist on a short non-empty string, so
    // the page keeps working if the id format ever changes.
    return typeof v === 'string' && v.length > 0 && v.length <= 64;
}

function hueToCss(hue) {
    // Grey for a missing or bad colour: still visible, clearly "unknown".
    return hue === null ? 'hsl(0, 0%, 50%)' : `hsl(${hue}, 50%, 50%)`;
}

// ---------------------------------------------------------------------------------------
// 3. Drawing cursors
// ---------------------------------------------------------------------------------------

// Builds <svg class="cursor" data-sender="…"><path d="…"/></svg>. The fill goes on the
// <svg>; the <path> inherits it, so a colour change touches a single attribute.
function createCursor(id) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'cursor');
    svg.setAttribute('data-sender', id);
    svg.setAttribute('width', '20');
    svg.setAttribute('height', '24');
    svg.setAttribute('viewBox', '0 0 20 24');
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ARROW_PATH);
    svg.append(path);
    return svg;
}

// Remembers a peer (so the badge counts it) and, if the message says where it is, draws
// it there. welcome's peers, join and cursor messages all carry `sender` and `color`, so
// one function serves all three; a message without x,y just keeps the peer counted.
function updatePeer(msg) {
    if (msg === null || typeof msg !== 'object' || !isId(msg.sender))
        return;
    if (msg.sender === myId)
        return; // our own echo: the real pointer is already on screen
    let peer = peers.get(msg.sender);
    if (peer === undefined) {
        peer = { color: null, el: null };
        peers.set(msg.sender, peer);
    }
    if (isHue(msg.color))
        peer.color = msg.color;
    if (!isCoord(msg.x) || !isCoord(msg.y))
        return;
    if (peer.el === null)
        peer.el = createCursor(msg.sender);
    peer.el.setAttribute('fill', hueToCss(peer.color));
    // A CSS transform moves the cursor without relayout (only compositing), and a short
    // transition in style.css smooths the steps between network updates.
    peer.el.style.transform = `translate(${msg.x}px, ${msg.y}px)`;
    if (!peer.el.isConnected)
        layer.append(peer.el); // first position known: show it (no transition from 0,0)
}

function removePeer(id) {
    const peer = peers.get(id);
    if (peer === undefined)
        return; // never seen (or already gone): nothing to do
    peer.el?.remove();
    peers.delete(id);
}

function clearPeers() {
    for (const peer of peers.values())
        peer.el?.remove();
    peers.clear();
}

// ---------------------------------------------------------------------------------------
// 4. Server messages (docs/protocol.md, "Server → client")
// ---------------------------------------------------------------------------------------

function onMessage(ev) {
    if (typeof ev.data !== 'string')
        return; // the room speaks JSON text only
    let msg;
    try {
        msg = JSON.parse(ev.data);
    } catch {
        return; // not JSON: the server never sends that; ignore rather than crash
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
        return;
    // `welcome` is always first. Until we have our id we cannot tell our own echo from
    // other people's cursors, so anything before it is ignored.
    if (msg.type !== 'welcome' && myId === null)
        return;

    switch (msg.type) {
    case 'welcome':
        onWelcome(msg);
        break;
    case 'join': // {"type":"join","sender":…,"color":…}: counted now, drawn once it moves
        updatePeer(msg);
        break;
    case 'leave': // {"type":"leave","sender":…}
        removePeer(msg.sender);
        break;
    case 'error': // reserved, but today's server reports errors with close codes instead
        break;
    default:
        // Every other `type` is one the server refuses from clients, so whatever is left
        // with a `sender` is a relayed client message: {"x":…,"y":…,"sender":…,"color":…}.
        // A client may put its own `type` in (e.g. "chat"); it is still that client's
        // message, and still moves its cursor if it has x,y. Messages with no sender are
        // ignored, so a newer server can add message kinds without breaking this page.
        if ('sender' in msg)
            updatePeer(msg);
    }
    renderBadge();
}

// {"type":"welcome","id":…,"color":…,"peers":[…]}: who we are and who is already here.
function onWelcome(msg) {
    if (!isId(msg.id))
        return;
    clearPeers(); // also done on close; harmless twice, and the welcome is the truth
    myId = msg.id;
    myColor = isHue(msg.color) ? msg.color : null;
    backoffStep = 0; // the server has really accepted us: the next drop starts afresh
    badge.dataset.state = 'connected';
    badge.title = `you are ${myId}`; // a property, not markup: safe with any string
    // Each peer is that client's last relayed message, or just {sender, color} if it has
    // not moved yet: exactly the shapes updatePeer() already handles.
    if (Array.isArray(msg.peers)) {
        for (const p of msg.peers)
            updatePeer(p);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Sending our position
// ---------------------------------------------------------------------------------------
//
// A mouse can report 120+ moves a second (1000 on gaming mice), more than a screen can
// show. Sending each one would multiply the traffic the server relays to everyone for no
// visible gain. So the event handler only *remembers* the latest position, and a
// requestAnimationFrame callback sends it: at most one message per frame, always the
// freshest, and nothing at all while the pointer is still or the tab is hidden.
// pointermove (not mousemove) covers mouse, pen and touch alike.

let pending = null;        // latest position not yet sent, or null
let frameRequested = false;
let lastSent = '';         // skip a send when rounding made it identical to the last one

window.addEventListener('pointermove', (ev) => {
    // Page coordinates, as whole pixels: shorter messages, and nobody sees half a pixel.
    pending = { x: Math.round(ev.pageX), y: Math.round(ev.pageY) };
    if (!frameRequested) {
        frameRequested = true;
        requestAnimationFrame(sendPending);
    }
}, { passive: true });

function sendPending() {
    frameRequested = false;
    if (pending === null)
        return;
    if (ws === null || ws.readyState !== WebSocket.OPEN) {
        pending = null; // nobody to tell; the next move after reconnecting will be sent
        return;
    }
    if (ws.bufferedAmount > SEND_QUEUE_LIMIT) {
        frameRequested = true; // keep the position; try again next frame
        requestAnimationFrame(sendPending);
        return;
    }
    const text = JSON.stringify(pending); // {"x":…,"y":…}: key order is insertion order
    pending = null;
    if (text === lastSent)
        return;
    ws.send(text);
    lastSent = text;
}

// ---------------------------------------------------------------------------------------
// 6. Connection and reconnect
// ---------------------------------------------------------------------------------------
//
// There is only ever one socket: a new one is made only after the old one has closed.
//
//   connect() ──open──> (waiting for welcome) ──welcome──> connected
//       ^                                                     │ close (any reason)
//       └──────── timer: capped backoff + jitter <────────────┘

// Same host and port as the page, so the page works wherever it is served; wss: when the
// page came over https:, because browsers refuse plain ws: from a secure page.
function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws`;
}

function connect() {
    badge.dataset.state = backoffStep === 0 ? 'connecting' : 'reconnecting';
    renderBadge();
    try {
        ws = new WebSocket(socketUrl());
    } catch (err) {
        // Only a malformed URL throws here, e.g. the page opened as a file:// URL. Retrying
        // cannot help, so say so and stop.
        ws = null;
        badge.dataset.state = 'offline';
        badge.title = String(err);
        renderBadge();
        return;
    }
    ws.addEventListener('open', () => {
        lastSent = ''; // the new connection has heard nothing from us yet
    });
    ws.addEventListener('message', onMessage);
    // 'close' follows every failure ('error' included, and a refused handshake such as a
    // 503 when the server is full), so it is the one place that schedules a retry.
    ws.addEventListener('close', onClose);
}

function onClose(ev) {
    ws = null;
    myId = null;
    clearPeers(); // stale cursors would be lies; the next welcome redraws the room
    // Why back off: if the server is down or full, retrying at once in a tight loop would
    // burn the battery and hammer the server the moment it comes back. Doubling the wait
    // keeps early retries quick and late ones cheap; the cap keeps recovery within 10 s.
    // Why jitter: a server restart drops everyone at the same instant; without randomness
    // all their pages would retry at the same instants too, in synchronised waves. Each
    // wait here is half fixed, half random ("equal jitter"), so the waves spread out.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** backoffStep);
    const delay = base / 2 + Math.random() * (base / 2);
    backoffStep = Math.min(backoffStep + 1, 20); // no need to count higher than the cap
    badge.dataset.state = 'reconnecting';
    // The close code and reason say why (protocol.md, "Errors"); 1006 means the
    // connection simply dropped, with no close frame at all.
    badge.title = `closed: ${ev.code}${ev.reason ? ' ' + ev.reason : ''}`;
    renderBadge();
    setTimeout(connect, delay);
}

// ---------------------------------------------------------------------------------------
// 7. The status badge
// ---------------------------------------------------------------------------------------

function renderBadge() {
    const state = badge.dataset.state;
    let text;
    if (state === 'connected') {
        const n = peers.size;
        text = n === 0 ? 'connected · nobody else here yet'
                       : `connected · ${n} other${n === 1 ? '' : 's'} here`;
        badge.style.setProperty('--you', hueToCss(myColor)); // the dot shows your colour
    } else if (state === 'offline') {
        text = 'offline · open this page from the wsrelay server';
    } else {
        text = state === 'connecting' ? 'connecting…' : 'reconnecting…';
        badge.style.removeProperty('--you');
    }
    badgeText.textContent = text; // textContent: never parsed as HTML
}

connect();
