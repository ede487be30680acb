// index.js: the shared-cursors page (an ES module, loaded with <script type="module">).
//
// Owns: the WebSocket connection to /ws and its reconnection; turning pointer movement into
// {"x":…,"y":…,"name":…} messages; drawing one arrow with a name label per *other* visitor
// from what the server relays, gliding between updates; the status badge and the name field.
// Does not own: ids, colours or who is in the room. The server decides all of that
// (docs/protocol.md) and this page only mirrors it, so nothing here is trusted to be true
// after a reconnect: we throw our picture away and let the next `welcome` redraw it.
//
// Positions travel as FRACTIONS OF THE SENDER'S WINDOW: x = 0 is the left edge, x = 1 the
// right one, y = 0 the top, y = 1 the bottom, rounded to 4 decimals. Each receiver multiplies
// them by its own window size. The page has nothing to scroll and nothing at a fixed pixel
// place, so "a third of the way across, near the top" is the only position that means the
// same thing on a phone and on a wide monitor; in pixels, a cursor on the right of a big
// screen would be off the edge of a small one. (docs/page.md explains the choice.)
//
// Each message we send is our whole state, as the server's snapshot for newcomers is the
// last message of each client: {"x":…,"y":…} while our pointer is over the page, no x/y
// once it has left; plus "name" if the visitor typed one.
//
// Chapters: 1. settings and page elements, 2. checking what the network sent, 3. names and
// colours, 4. drawing cursors, 5. gliding, 6. server messages, 7. sending our state,
// 8. connection and reconnect, 9. the status badge, 10. the name field.

// ---------------------------------------------------------------------------------------
// 1. Settings and page elements
// ---------------------------------------------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';

// The classic arrow pointer, drawn with its tip at (0,0) so that translate(x, y) puts the
// tip exactly on the point the other person is pointing at.
const ARROW_PATH = 'M0 0 L0 17 L4.5 12.7 L7.3 19.2 L10.3 17.9 L7.6 11.5 L13.2 11.5 Z';

// Reconnect delays: about 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s for ever (see chapter 8).
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

// At most one message every SEND_INTERVAL_MS (about 30 a second): smooth enough once the
// receivers glide between updates (chapter 5), a quarter of what a 120 Hz screen would send
// at one message per frame, and well under the server's default --max-rate of 200 a second,
// past which it drops messages silently.
const SEND_INTERVAL_MS = 32;

// If the browser has this many bytes queued but not yet sent, the network is slower than
// the pointer: wait instead of queueing positions that will be stale when they arrive.
const SEND_QUEUE_LIMIT = 4096;

// Positions are sent with 4 decimals: a step of 1/10000 of the window, under half a pixel
// even on a 4K-wide window, in at most 6 characters ("0.4213").
const FRACTION_STEPS = 10_000;

// How fast a remote cursor glides towards its latest position: the gap shrinks by 63% every
// EASE_MS (chapter 5). Updates come every 16–50 ms, so the cursor trails by about one update
// and never stops between two of them.
const EASE_MS = 50;

// Names: at most this many characters, sent and shown (the input's maxlength says the same).
const NAME_MAX = 32;
const NAME_STORAGE_KEY = 'wsrelay.name';

const layer = document.getElementById('cursors');
const badge = document.getElementById('status');
const badgeText = document.getElementById('status-text');
const nameInput = document.getElementById('name');
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

// The connection (chapter 8). There is only ever one socket at a time.
let ws = null;            // the WebSocket, or null while waiting to reconnect
let backoffStep = 0;      // drops since the last welcome; sets the next reconnect delay

// What we know of the room. Rebuilt from scratch by every `welcome`.
let myId = null;          // our id, from `welcome`; null until then
let myColor = null;       // our hue, shown in the badge and beside the name field
const peers = new Map();  // sender id -> peer (see newPeer)

// ---------------------------------------------------------------------------------------
// 2. Checking what the network sent
// ---------------------------------------------------------------------------------------
//
// x, y and name come straight from other people's browsers (the server copies them byte
// for byte), and sender and color from the server; we check the type and range of each
// before it touches the page, so neither a hostile visitor nor a server bug can break it.
// And we never build markup from network data as a string (no innerHTML, no
// insertAdjacentHTML): a name of `<img src=x onerror=…>` would run someone else's script
// in our page. createElementNS + setAttribute + textContent pass values in as plain data,
// which the browser never parses as HTML.

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isHue(v) {
    return Number.isInteger(v) && v >= 0 && v <= 359;
}

// A position from this page is a number from 0 to 1. Anything else (a string, NaN, or
// pixels from a client that speaks the older pixel convention) is "no position": better
// not drawn than drawn in the wrong place.
function isFraction(v) {
    return typeof v === 'number' && v >= 0 && v <= 1;
}

function isId(v) {
    // The server sends 36-character UUIDs; we only insist on a short non-empty string, so
    // the page keeps working if the id format ever changes.
    return typeof v === 'string' && v.length > 0 && v.length <= 64;
}

// A name as we show it: a string, runs of whitespace (newlines, tabs) made one space, at
// most NAME_MAX characters. Array.from splits by code point, so an emoji is never cut in
// half. '' means "no name". Used for our own name too, so we send what others will show.
function cleanName(v) {
    if (typeof v !== 'string')
        return '';
    return Array.from(v.replace(/\s+/g, ' ').trim()).slice(0, NAME_MAX).join('');
}

// ---------------------------------------------------------------------------------------
// 3. Names and colours
// ---------------------------------------------------------------------------------------

// Someone who has not typed a name is shown as an animal picked by their id, so the label
// is short, readable and the same in every window. (Two people may get the same animal;
// their colours still tell them apart.)
const ANIMALS = [
    'Otter', 'Fox', 'Heron', 'Lynx', 'Panda', 'Koala', 'Badger', 'Falcon',
    'Walrus', 'Gecko', 'Marten', 'Puffin', 'Bison', 'Ibex', 'Okapi', 'Tapir',
    'Wombat', 'Lemur', 'Moose', 'Orca', 'Raven', 'Stoat', 'Yak', 'Zebra',
];

// FNV-1a, a tiny string hash: any id (not only UUIDs) maps to a well-spread 32-bit number.
function hashString(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
        h ^= s.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0; // multiply modulo 2^32, kept unsigned
    }
    return h;
}

function defaultName(id) {
    return ANIMALS[hashString(id) % ANIMALS.length];
}

function hueToCss(hue) {
    // Grey for a missing or bad colour: still visible, clearly "unknown".
    return hue === null ? 'hsl(0, 0%, 50%)' : `hsl(${hue}, 50%, 50%)`;
}

// Label text goes on the cursor's colour, and hsl(h, 50%, 50%) runs from a dark blue to a
// light yellow: white text is readable on one and not the other. So compute the colour's
// relative luminance (WCAG 2.1, "relative luminance") and pick black or white, whichever
// contrasts more.
function textColorOn(hue) {
    if (hue === null)
        return '#fff';
    // hsl -> rgb for s = l = 0.5 (CSS Color 4, "HSL to RGB"), each channel in 0..1.
    const channel = (n) => {
        const k = (n + hue / 30) % 12;
        return 0.5 - 0.25 * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    };
    const linear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const lum = 0.2126 * linear(channel(0)) + 0.7152 * linear(channel(8)) +
                0.0722 * linear(channel(4));
    const onWhite = 1.05 / (lum + 0.05);   // contrast ratio of white text
    const onBlack = (lum + 0.05) / 0.05;   // contrast ratio of black text
    return onWhite >= onBlack ? '#fff' : '#111';
}

// ---------------------------------------------------------------------------------------
// 4. Drawing cursors
// ---------------------------------------------------------------------------------------

// What we keep per other visitor. fx, fy: where they point, as fractions (null: their
// pointer is not over their page, so we draw nothing). x, y: where we have drawn the tip so
// far, in our pixels (chapter 5 moves it towards fx * width, fy * height). labelWidth and
// flip: see placeCursor().
function newPeer() {
    return {
        color: null, name: '', fx: null, fy: null, x: 0, y: 0,
        el: null, label: null, labelWidth: 0, flip: '',
    };
}

// Builds <div class="cursor" data-sender="…"><svg><path/></svg><span class="label"/></div>.
function createCursor(id) {
    const el = document.createElement('div');
    el.className = 'cursor';
    el.setAttribute('data-sender', id); // an attribute value: never parsed as markup
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('width', '20');
    svg.setAttribute('height', '24');
    svg.setAttribute('viewBox', '0 0 20 24');
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ARROW_PATH);
    svg.append(path);
    const label = document.createElement('span');
    label.className = 'label';
    el.append(svg, label);
    return el;
}

// Brings one peer's element in line with what we know: removed if they have no position,
// created (at its place, without gliding in from a corner) when they first get one, and
// its colour and label kept current.
function drawPeer(id, peer) {
    if (peer.fx === null) {
        peer.el?.remove();
        peer.el = null;
        peer.label = null;
        return;
    }
    if (peer.el === null) {
        peer.el = createCursor(id);
        peer.label = peer.el.querySelector('.label');
        peer.x = peer.fx * window.innerWidth;
        peer.y = peer.fy * window.innerHeight;
        placeCursor(peer);
        layer.append(peer.el);
    }
    const css = hueToCss(peer.color);
    if (peer.el.style.getPropertyValue('--c') !== css) {
        peer.el.style.setProperty('--c', css);
        peer.el.style.setProperty('--c-text', textColorOn(peer.color));
    }
    const text = peer.name || defaultName(id);
    if (peer.label.textContent !== text) {
        peer.label.textContent = text; // textContent: shown as text, never parsed as HTML
        peer.labelWidth = peer.label.offsetWidth; // measured once per name, not per frame
        placeCursor(peer);
    }
    startGliding();
}

// The label's corner sits just below-right of the arrow's tip. Near the right or bottom
// edge of the window it would be cut off, so there it moves to the other side of the tip
// (classes flip-x and flip-y in style.css).
const LABEL_LEFT = 13;      // px from the tip, as in style.css
const LABEL_BOTTOM = 40;    // px from the tip to the label's bottom edge

function placeCursor(peer) {
    // A transform moves the element without relayout (only compositing).
    peer.el.style.transform = `translate(${peer.x}px, ${peer.y}px)`;
    const flipX = peer.x + LABEL_LEFT + peer.labelWidth > window.innerWidth;
    const flipY = peer.y + LABEL_BOTTOM > window.innerHeight;
    const flip = `${flipX ? 'flip-x' : ''} ${flipY ? 'flip-y' : ''}`.trim();
    if (flip !== peer.flip) { // touch the class list only when it changes
        peer.flip = flip;
        peer.el.className = `cursor ${flip}`.trim();
    }
}

// Everything a relayed message says about its sender: a cursor, a join, or an entry of
// welcome's peers. Each is the sender's whole state, so a missing name means "no name" and
// missing x, y mean "pointer not over their page".
function updatePeer(msg) {
    if (!isObject(msg) || !isId(msg.sender))
        return;
    if (msg.sender === myId)
        return; // our own echo: the real pointer is already on screen
    let peer = peers.get(msg.sender);
    if (peer === undefined) {
        peer = newPeer();
        peers.set(msg.sender, peer);
    }
    if (isHue(msg.color))
        peer.color = msg.color;
    peer.name = cleanName(msg.name);
    const hasPosition = isFraction(msg.x) && isFraction(msg.y);
    peer.fx = hasPosition ? msg.x : null;
    peer.fy = hasPosition ? msg.y : null;
    drawPeer(msg.sender, peer);
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
// 5. Gliding
// ---------------------------------------------------------------------------------------
//
// Updates arrive 20–60 times a second, in uneven steps. Jumping to each would look jerky,
// so every animation frame each cursor covers a share of the distance still to go:
//
//     drawn += (target - drawn) * (1 - e^(-dt / EASE_MS))
//
// dt is the time since the previous frame, which makes the glide the same on a 60 Hz and
// a 144 Hz screen. When nothing is left to move the loop stops, so an idle page costs
// nothing. A hidden tab gets no animation frames; when it comes back dt is large and every
// cursor lands on its target at once. Targets are fractions, multiplied by the window size
// on every frame, so a resize moves the cursors with it.

let gliding = false;
let lastFrame = 0;

function startGliding() {
    if (gliding)
        return;
    gliding = true;
    lastFrame = performance.now();
    requestAnimationFrame(glide);
}

function glide(now) {
    const dt = Math.max(0, now - lastFrame);
    lastFrame = now;
    const share = reducedMotion.matches ? 1 : 1 - Math.exp(-dt / EASE_MS);
    const width = window.innerWidth;
    const height = window.innerHeight;
    let moving = false;
    for (const peer of peers.values()) {
        if (peer.el === null)
            continue;
        const tx = peer.fx * width;
        const ty = peer.fy * height;
        if (peer.x === tx && peer.y === ty)
            continue;
        peer.x += (tx - peer.x) * share;
        peer.y += (ty - peer.y) * share;
        if (Math.abs(tx - peer.x) < 0.1 && Math.abs(ty - peer.y) < 0.1) {
            peer.x = tx; // close enough to see no difference: land exactly
            peer.y = ty;
        } else {
            moving = true;
        }
        placeCursor(peer);
    }
    if (moving)
        requestAnimationFrame(glide);
    else
        gliding = false;
}

// A window resize changes every target at once: glide there like after any update.
window.addEventListener('resize', startGliding);

// ---------------------------------------------------------------------------------------
// 6. Server messages (docs/protocol.md, "Server → client")
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
    if (!isObject(msg))
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
        // Messages with no sender are ignored, so a newer server can add message kinds
        // without breaking this page.
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
    // Our colour, for the badge's dot and the preview of our cursor around the name field.
    document.body.style.setProperty('--you', hueToCss(myColor));
    document.body.style.setProperty('--you-text', textColorOn(myColor));
    nameInput.placeholder = defaultName(myId); // what the others call us if we type nothing
    // Each peer is that client's last relayed message, or just {sender, color} if it has
    // not sent one yet: exactly the shapes updatePeer() already handles.
    if (Array.isArray(msg.peers)) {
        for (const p of msg.peers)
            updatePeer(p);
    }
    // After a reconnect the others have forgotten us: tell them where we are (if our
    // pointer is over the page) and our name, without waiting for the next move.
    requestSend();
}

// ---------------------------------------------------------------------------------------
// 7. Sending our state
// ---------------------------------------------------------------------------------------
//
// A mouse can report 120+ moves a second (1000 on gaming mice), more than a screen can
// show. Sending each one would multiply the traffic the server relays to everyone for no
// visible gain. So the event handlers only *remember* the latest state, and a
// requestAnimationFrame callback sends it: at most one message per frame and per
// SEND_INTERVAL_MS, always the freshest, and nothing at all while the pointer is still or
// the tab is hidden.
// Pointer events (not mouse events) cover mouse, pen and touch alike.

const me = { x: null, y: null, name: '' }; // x, y: fractions of our window, or null
let sendRequested = false;
let lastSendTime = -Infinity; // when we last sent (a requestAnimationFrame timestamp)
// The last text we sent on this connection. A new connection starts from '{}': until we
// say something, the others know no position and no name for us.
let lastSent = '{}';

function toFraction(v, size) {
    if (!(size > 0))
        return 0;
    const f = Math.min(1, Math.max(0, v / size)); // a drag may go past the window's edge
    return Math.round(f * FRACTION_STEPS) / FRACTION_STEPS;
}

function onPointer(ev) {
    me.x = toFraction(ev.clientX, window.innerWidth);
    me.y = toFraction(ev.clientY, window.innerHeight);
    requestSend();
}

// pointerdown too: a tap on a touch screen sends no pointermove at all.
window.addEventListener('pointermove', onPointer, { passive: true });
window.addEventListener('pointerdown', onPointer, { passive: true });

// The mouse left the window: hide our cursor from the others. A finger lifted from a touch
// screen also "leaves"; there we keep the cursor where it touched, since a tap means "look
// here" and a touch screen has no hovering pointer to follow.
document.documentElement.addEventListener('pointerleave', (ev) => {
    if (ev.pointerType === 'touch')
        return;
    me.x = null;
    me.y = null;
    requestSend();
});

function myState() {
    // Key order is insertion order, so the message reads {"x":…,"y":…,"name":…}.
    const msg = {};
    if (me.x !== null) {
        msg.x = me.x;
        msg.y = me.y;
    }
    if (me.name !== '')
        msg.name = me.name;
    return msg;
}

function requestSend() {
    if (!sendRequested) {
        sendRequested = true;
        requestAnimationFrame(sendState);
    }
}

function sendState(now) {
    sendRequested = false;
    if (ws === null || ws.readyState !== WebSocket.OPEN)
        return; // nobody to tell; the next welcome sends our state
    if (now - lastSendTime < SEND_INTERVAL_MS || ws.bufferedAmount > SEND_QUEUE_LIMIT) {
        requestSend(); // too soon, or the network is behind: keep the state, try next frame
        return;
    }
    const text = JSON.stringify(myState());
    if (text === lastSent)
        return; // rounding made it identical, or nothing changed
    ws.send(text);
    lastSent = text;
    lastSendTime = now;
}

// ---------------------------------------------------------------------------------------
// 8. Connection and reconnect
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
        lastSent = '{}'; // the new connection has heard nothing from us yet
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
// 9. The status badge
// ---------------------------------------------------------------------------------------

function renderBadge() {
    const state = badge.dataset.state;
    let text;
    if (state === 'connected') {
        const people = peers.size + 1; // everyone the server told us about, and us
        text = people === 1 ? 'connected · only you here' : `connected · ${people} people here`;
    } else if (state === 'offline') {
        text = 'offline · open this page from the wsrelay server';
    } else {
        text = state === 'connecting' ? 'connecting…' : 'reconnecting…';
        document.body.style.removeProperty('--you'); // grey until the next welcome
        document.body.style.removeProperty('--you-text');
    }
    if (badgeText.textContent !== text)
        badgeText.textContent = text; // textContent: never parsed as HTML
}

// ---------------------------------------------------------------------------------------
// 10. The name field
// ---------------------------------------------------------------------------------------
//
// What the visitor types goes out with the next message (and every later one, since each
// message is our whole state). It is remembered in localStorage, which may be unavailable
// (private modes, blocked storage): then the name lasts as long as the page.

function loadName() {
    try {
        return cleanName(localStorage.getItem(NAME_STORAGE_KEY));
    } catch {
        return '';
    }
}

function saveName(name) {
    try {
        if (name === '')
            localStorage.removeItem(NAME_STORAGE_KEY);
        else
            localStorage.setItem(NAME_STORAGE_KEY, name);
    } catch {
        // storage refused: keep the name for this page only
    }
}

me.name = loadName();
nameInput.value = me.name;

nameInput.addEventListener('input', () => {
    me.name = cleanName(nameInput.value);
    saveName(me.name);
    requestSend();
});

// Enter (or "done" on a phone keyboard) finishes editing.
nameInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === 'Escape')
        nameInput.blur();
});

connect();
