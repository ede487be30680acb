// cursors.js: shared cursors for any web page, as one dependency-free ES module.
//
//     import { shareCursors } from 'https://cursors.example.com/cursors.js';
//     const cursors = shareCursors({ room: 'team-42', name: 'Ada' });
//     ...
//     cursors.stop();
//
// Owns: one WebSocket to a wsrelay server (/ws/<room>, or /ws for the default room) and its
// reconnection; turning the visitor's pointer into {"x":…,"y":…,"name":…} messages; drawing
// one arrow with a name label per *other* visitor, gliding between updates, in an overlay it
// adds to the page and removes on stop(). wsrelay's own page (index.js) uses it, and so can
// any site the server's --allow-origin lists (docs/embed.md).
// Does not own: ids, colours or who is in the room. The server decides all of that
// (docs/protocol.md) and this module only mirrors it, so nothing here is trusted to be true
// after a reconnect: we throw our picture away and let the next `welcome` redraw it. Nor
// does it own any visible control (status badge, name field): it reports its state through
// `onStatus`, and the page decides what to show.
//
// A guest on someone else's page must not break it, so:
// - everything it draws lives in a shadow root (an element of its own, <wsrelay-cursors>,
//   whose inside the host page's CSS cannot reach and whose CSS cannot leak out); the host
//   element itself is styled inline with !important, so no host rule can move it or make it
//   catch clicks. No global CSS, no reset, nothing outside that one element;
// - the overlay has `pointer-events: none`: it never steals a click, a hover or a scroll;
// - its listeners are passive and only record the pointer's position;
// - stop() removes the element, the listeners, the timers and the socket.
//
// Positions travel as FRACTIONS OF THE SENDER'S WINDOW: x = 0 is the left edge, x = 1 the
// right one, y = 0 the top, y = 1 the bottom, rounded to 4 decimals. Each receiver multiplies
// them by its own window size. "A third of the way across, near the top" means the same thing
// on a phone and on a wide monitor; in pixels, a cursor on the right of a big screen would be
// off the edge of a small one. (docs/page.md explains the choice and its price.)
//
// Each message we send is our whole state, as the server's snapshot for newcomers is the
// last message of each client: {"x":…,"y":…} while our pointer is over the page, no x/y
// once it has left; plus "name" if we have one.
//
// Two wire formats (docs/protocol.md): we offer the subprotocol `wsrelay.batch`, and if the
// server picks it every frame it sends is a JSON array of messages; if it does not (an older
// server, or `batch: false`), every frame is one message, the seed protocol. Either way each
// message goes through the same handler (chapter 8), and drawing waits for the next
// animation frame (chapter 7), so a frame of 300 messages costs one redraw, not 300.
//
// Chapters: 1. settings, 2. checking what the network sent, 3. names and colours,
// 4. the overlay's look, 5. shareCursors(): options and the overlay, 6. drawing cursors,
// 7. the animation frame: drawing and gliding, 8. server messages, 9. sending our state,
// 10. connection and reconnect, 11. status, 12. stop().

// ---------------------------------------------------------------------------------------
// 1. Settings
// ---------------------------------------------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';

// The classic arrow pointer, drawn with its tip at (0,0) so that translate(x, y) puts the
// tip exactly on the point the other person is pointing at.
export const ARROW_PATH = 'M0 0 L0 17 L4.5 12.7 L7.3 19.2 L10.3 17.9 L7.6 11.5 L13.2 11.5 Z';

// Reconnect delays (chapter 10): the first try at a random moment within a second, then
// about 1 s, 2 s, 4 s, 8 s, then 10 s for ever.
const FIRST_RETRY_SPREAD_MS = 1000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 10_000;

// After the server refused us a place (close 4001 "room is full", 4002 "too many rooms"),
// retry every 30-60 s. Retrying sooner would not help: a place frees only when someone
// leaves, and every attempt costs the server a handshake. Slower would make a person wait
// long after a place is free. (Reloading the page tries at once.)
const REFUSED_RETRY_MS = 60_000;

// Close codes the server uses to refuse a place (docs/protocol.md, "Errors").
const CLOSE_ROOM_FULL = 4001;
const CLOSE_TOO_MANY_ROOMS = 4002;

// At most one message every SEND_INTERVAL_MS (about 30 a second): smooth enough once the
// receivers glide between updates (chapter 7), a quarter of what a 120 Hz screen would send
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
// EASE_MS (chapter 7). Updates come every 16–50 ms, so the cursor trails by about one update
// and never stops between two of them.
const EASE_MS = 50;

// The subprotocol that asks the server for batched frames (docs/protocol.md, "The
// wsrelay.batch subprotocol"): one text frame per server write, holding a JSON array of the
// same message objects. In a room of 300 moving people that is one `message` event and one
// JSON.parse per write instead of 9,000 a second.
export const BATCH_PROTOCOL = 'wsrelay.batch';

// Names: at most this many characters, sent and shown.
export const NAME_MAX = 32;

// A room name, as the server accepts it (docs/protocol.md, "Rooms"): 1 to 64 of RFC 3986's
// unreserved characters, and not "." or "..", which URL paths treat as directories. "" is
// the default room. Checked here so that a typo fails loudly at once instead of as a
// handshake the server refuses (400) and we would retry for ever.
const ROOM_RE = /^[A-Za-z0-9._~-]{1,64}$/;

export function isRoomName(v) {
    return v === '' || (typeof v === 'string' && ROOM_RE.test(v) && v !== '.' && v !== '..');
}

// The tag of the overlay's host element. A custom-element-style name (it has a hyphen) that
// no host page styles by accident, unlike a <div>; it is never registered, it needs no
// behaviour of its own.
const HOST_TAG = 'wsrelay-cursors';

// The origin this module was loaded from: the default server. A page that imports
// https://cursors.example.com/cursors.js talks to https://cursors.example.com.
const MODULE_ORIGIN = new URL(import.meta.url).origin;

// ---------------------------------------------------------------------------------------
// 2. Checking what the network sent
// ---------------------------------------------------------------------------------------
//
// x, y and name come straight from other people's browsers (the server copies them byte
// for byte), and sender and color from the server; we check the type and range of each
// before it touches the page, so neither a hostile visitor nor a server bug can break it.
// And we never build markup from network data as a string (no innerHTML, no
// insertAdjacentHTML): a name of `<img src=x onerror=…>` would run someone else's script
// in the page. createElementNS + setAttribute + textContent pass values in as plain data,
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

// A room's head count: a whole number, at least 1 (us).
function isCount(v) {
    return Number.isSafeInteger(v) && v >= 1;
}

function isId(v) {
    // The server sends 36-character UUIDs; we only insist on a short non-empty string, so
    // the page keeps working if the id format ever changes.
    return typeof v === 'string' && v.length > 0 && v.length <= 64;
}

// A name as we show it: a string, runs of whitespace (newlines, tabs) made one space, at
// most NAME_MAX characters. Array.from splits by code point, so an emoji is never cut in
// half. '' means "no name". Used for our own name too, so we send what others will show.
export function cleanName(v) {
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

// The name the others show for `id` when it has none of its own.
export function defaultName(id) {
    return ANIMALS[hashString(id) % ANIMALS.length];
}

// A hue (0-359, or null) as the CSS colour every page paints it in (docs/protocol.md).
export function hueToCss(hue) {
    // Grey for a missing or bad colour: still visible, clearly "unknown".
    return hue === null ? 'hsl(0, 0%, 50%)' : `hsl(${hue}, 50%, 50%)`;
}

// Label text goes on the cursor's colour, and hsl(h, 50%, 50%) runs from a dark blue to a
// light yellow: white text is readable on one and not the other. So compute the colour's
// relative luminance (WCAG 2.1, "relative luminance") and pick black or white, whichever
// contrasts more.
export function textColorOn(hue) {
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
// 4. The overlay's look
// ---------------------------------------------------------------------------------------
//
// The host element is styled inline with !important (HOST_STYLE): an inline !important
// declaration beats every rule of the host page's stylesheets, so no `* { … }` or
// `body > * { … }` there can give it a size, a margin or pointer events. `all: initial`
// first cuts inheritance: the host page's font, colour or letter-spacing do not flow into
// our labels. (Custom properties such as --c are not reset by `all`; every cursor sets its
// own.) Set through the CSSOM (style.setProperty), which a Content-Security-Policy without
// 'unsafe-inline' still allows.

const HOST_STYLE = [
    ['all', 'initial'],
    ['position', 'fixed'],
    ['inset', '0'],
    ['display', 'block'],
    ['overflow', 'hidden'],
    ['pointer-events', 'none'], // never steals a click, a hover or a scroll from the page
    ['z-index', '2147483647'],  // above everything, as real pointers are
    ['contain', 'strict'],      // its inside never changes the host page's layout
];

// Inside the shadow root the host page's selectors cannot reach, so these short class names
// cannot clash with the host page's own. One cursor:
//   <div class="cursor" data-sender="…"><svg><path/></svg><span class="label">…</span></div>
// The script sets --c (their colour), --c-text (black or white, whichever reads better on
// --c) and the transform (it eases positions itself, frame by frame, so there is no CSS
// transition here).
const SHADOW_CSS = `
.cursor {
    position: absolute;
    top: 0;
    left: 0;
    pointer-events: none;
    will-change: transform;
}
.cursor svg {
    display: block;
    overflow: visible; /* the white outline may show past the edge of the viewBox */
    fill: var(--c);
    filter: drop-shadow(0 1px 1.5px rgb(0 0 0 / 0.35));
}
.cursor path {
    stroke: #fff;
    stroke-width: 1.5;
    stroke-linejoin: round;
}
.label {
    position: absolute;
    left: 13px;
    top: 19px;
    max-width: 14em;
    padding: 2px 7px 3px;
    overflow: hidden;
    white-space: nowrap;
    text-overflow: ellipsis;
    unicode-bidi: isolate; /* a right-to-left name cannot reorder anything outside it */
    font: 600 12px/16px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
    color: var(--c-text);
    background: var(--c);
    border-radius: 2px 8px 8px 8px; /* square corner nearest the arrow's tip */
    box-shadow: 0 1px 2px rgb(0 0 0 / 0.25);
}
/* Near the right edge the label goes left of the tip; near the bottom, above it
 * (placeCursor, chapter 6). */
.flip-x .label {
    left: auto;
    right: calc(100% - 4px);
    border-radius: 8px 2px 8px 8px;
}
.flip-y .label {
    top: auto;
    bottom: calc(100% + 2px);
    border-radius: 8px 8px 8px 2px;
}
.flip-x.flip-y .label {
    border-radius: 8px 8px 2px 8px;
}
`;

// The label's corner sits just below-right of the arrow's tip (SHADOW_CSS: left, top).
const LABEL_LEFT = 13;      // px from the tip
const LABEL_BOTTOM = 40;    // px from the tip to the label's bottom edge

// Puts SHADOW_CSS into a shadow root. A constructed stylesheet where the browser has them
// (a Content-Security-Policy without 'unsafe-inline' does not block those), else a <style>.
function adoptStyles(root) {
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(SHADOW_CSS);
        root.adoptedStyleSheets = [sheet];
    } else {
        const style = document.createElement('style');
        style.textContent = SHADOW_CSS;
        root.append(style);
    }
}

// ---------------------------------------------------------------------------------------
// 5. shareCursors(): options and the overlay
// ---------------------------------------------------------------------------------------

// The WebSocket URL for `server` (an http: or https: URL; only its origin counts) and
// `room`: wss: for https:, because browsers refuse plain ws: from a secure page.
function socketUrl(server, room) {
    const url = new URL(server);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new TypeError(`shareCursors: server must be an http: or https: URL, not ${server}`);
    const scheme = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${url.host}${room === '' ? '/ws' : `/ws/${room}`}`;
}

// Shows the other visitors' cursors on this page and ours on theirs.
//
// options (all optional):
//   room      the room's name: '' (the default room) or 1-64 of A-Z a-z 0-9 - . _ ~
//   name      the name the others see on our cursor (else an animal derived from our id)
//   server    the wsrelay's base URL, 'https://host[:port]'; default: where this module
//             was loaded from
//   onStatus  called with a status object (chapter 11) whenever it changes; the first call
//             comes just after shareCursors() returns
//   batch     true (default): offer the wsrelay.batch subprotocol; false: do not, and speak
//             the seed protocol (one message per frame) even to a server that could batch.
//             Both work with every server: a browser fails the handshake of one that does
//             not batch, and the module then retries at once without the offer (chapter 10).
//
// Returns a handle: { status, stats, setName(name), stop() }. Throws a TypeError for a bad room
// name or server URL: those are the caller's mistakes, better seen at once.
export function shareCursors(options = {}) {
    const room = options.room ?? '';
    if (!isRoomName(room))
        throw new TypeError(`shareCursors: not a room name: ${JSON.stringify(room)}`);
    const url = socketUrl(options.server ?? MODULE_ORIGIN, room);
    const onStatus = typeof options.onStatus === 'function' ? options.onStatus : () => {};
    const offerBatch = options.batch !== false;

    // The overlay: exactly the window, so a cursor at fractions (fx, fy) of the sender's
    // window is drawn at translate(fx * width, fy * height) here. Hidden from screen
    // readers: decoration that changes 60 times a second.
    const host = document.createElement(HOST_TAG);
    for (const [prop, value] of HOST_STYLE)
        host.style.setProperty(prop, value, 'important');
    host.setAttribute('aria-hidden', 'true');
    // Open, so that devtools and tests can look inside; nothing in it is secret.
    const layer = host.attachShadow({ mode: 'open' });
    adoptStyles(layer);
    (document.body ?? document.documentElement).append(host);

    const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

    // The connection (chapter 10). There is only ever one socket at a time.
    let ws = null;            // the WebSocket, or null while waiting to reconnect
    let backoffStep = 0;      // drops since the last welcome; sets the next reconnect delay
    let retryTimer = null;    // the pending reconnect, if any
    let stopped = false;
    let batched = false;      // this connection's server picked wsrelay.batch (chapter 10)
    let offered = false;      // this connection offered it
    let opened = false;       // this connection got as far as 'open'
    let retryWithoutOffer = false; // the next attempt must not offer it (chapter 10)

    // What we know of the room. Rebuilt from scratch by every `welcome`.
    let myId = null;          // our id, from `welcome`; null until then
    let myColor = null;       // our hue
    const peers = new Map();  // sender id -> peer (see newPeer)
    // How many are in the room. A batch server says so itself (`count` in its welcome, then
    // a `count` message whenever it changes): serverCount. A seed server does not, so we
    // count ourselves, everyone we know (peers) and `unseen`: members a big room's welcome
    // counted but did not list (protocol.md, "Big rooms"), who become peers as they move.
    let serverCount = null;   // the batch server's latest count, or null
    let unseen = 0;

    // What the handle's `stats` reports (chapter 11): what arrived, and the main-thread
    // time spent handling it, measured with performance.now() around each frame's handler.
    const stats = { frames: 0, messages: 0, handlerMs: 0 };

    // What onStatus last reported (chapter 11).
    let status = Object.freeze({
        state: 'connecting', room, people: 0, batched: false, id: null, color: null,
        code: null, reason: '', retryMs: null,
    });

    // -----------------------------------------------------------------------------------
    // 6. Drawing cursors
    // -----------------------------------------------------------------------------------

    // What we keep per other visitor. fx, fy: where they point, as fractions (null: their
    // pointer is not over their page, so we draw nothing). x, y: where we have drawn the
    // tip so far, in our pixels (chapter 7 moves it towards fx * width, fy * height).
    // labelWidth and flip: see placeCursor().
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
    // its colour and label kept current. Called from the animation frame only (chapter 7),
    // for the peers whose state changed since the last one. Returns true if the label's text
    // changed, so that the frame measures its width (after all its writes: one layout).
    function drawPeer(id, peer) {
        if (peer.fx === null) {
            peer.el?.remove();
            peer.el = null;
            peer.label = null;
            return false;
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
        if (peer.label.textContent === text)
            return false;
        peer.label.textContent = text; // textContent: shown as text, never parsed as HTML
        return true;
    }

    // Near the right or bottom edge of the window the label would be cut off, so there it
    // moves to the other side of the tip (classes flip-x and flip-y).
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
    // welcome's peers. Each is the sender's whole state, so a missing name means "no name"
    // and missing x, y mean "pointer not over their page". A sender we have never heard of
    // is simply added: in a big room (protocol.md, "Big rooms") a member's first cursor
    // message is how we learn it exists, and it carries everything a join would.
    // Only state changes here; the element follows on the next animation frame.
    // Returns true if the sender was new to us.
    function updatePeer(msg) {
        if (!isObject(msg) || !isId(msg.sender))
            return false;
        if (msg.sender === myId)
            return false; // our own echo: the real pointer is already on screen
        let peer = peers.get(msg.sender);
        const isNew = peer === undefined;
        if (isNew) {
            peer = newPeer();
            peers.set(msg.sender, peer);
        }
        if (isHue(msg.color))
            peer.color = msg.color;
        peer.name = cleanName(msg.name);
        const hasPosition = isFraction(msg.x) && isFraction(msg.y);
        peer.fx = hasPosition ? msg.x : null;
        peer.fy = hasPosition ? msg.y : null;
        dirty.add(msg.sender);
        requestFrame();
        return isNew;
    }

    // Returns true if we knew them. In a big room the server may announce the leave of a
    // member we never saw (our welcome did not list it and it never moved): nothing to undo.
    function removePeer(id) {
        const peer = peers.get(id);
        if (peer === undefined)
            return false; // never seen (or already gone): nothing to do
        peer.el?.remove();
        peers.delete(id);
        dirty.delete(id);
        return true;
    }

    function clearPeers() {
        for (const peer of peers.values())
            peer.el?.remove();
        peers.clear();
        dirty.clear();
    }

    // -----------------------------------------------------------------------------------
    // 7. The animation frame: drawing and gliding
    // -----------------------------------------------------------------------------------
    //
    // Messages only change what we know (chapter 6); the page changes once per animation
    // frame, here. Why: a batch can hold hundreds of messages, and even one message per
    // frame event arrives far faster than a screen refreshes (300 people at 30 Hz: 150
    // messages per 60 Hz frame). Touching the DOM for each would redo work nobody sees, and
    // measuring a label right after changing the DOM forces a layout each time. So a frame
    // first writes every changed peer's element, then reads the new labels' widths (one
    // layout for all of them), then moves the cursors.
    //
    // Updates arrive 20–60 times a second per person, in uneven steps. Jumping to each
    // would look jerky, so every frame each cursor covers a share of the distance still to go:
    //
    //     drawn += (target - drawn) * (1 - e^(-dt / EASE_MS))
    //
    // dt is the time since the previous frame, which makes the glide the same on a 60 Hz
    // and a 144 Hz screen. When nothing is left to draw or move the loop stops, so an idle
    // page costs nothing. A hidden tab gets no animation frames: messages still update the
    // state (at most one entry per person), and when the tab comes back dt is large and every
    // cursor lands on its target at once. Targets are fractions, multiplied by the window
    // size on every frame, so a resize moves the cursors with it.

    const dirty = new Set(); // ids of peers whose state changed since the last frame
    let frameRequest = null; // the pending requestAnimationFrame, if any
    let lastFrame = 0;

    function requestFrame() {
        if (frameRequest !== null || stopped)
            return;
        lastFrame = performance.now(); // no frame pending: the glide starts from now
        frameRequest = requestAnimationFrame(frame);
    }

    function frame(now) {
        frameRequest = null;
        // 1. Writes: every peer whose state changed.
        const relabelled = [];
        for (const id of dirty) {
            const peer = peers.get(id);
            if (drawPeer(id, peer))
                relabelled.push(peer);
        }
        dirty.clear();
        // 2. Reads: each new label's width, measured once per name, not per frame.
        for (const peer of relabelled)
            peer.labelWidth = peer.label.offsetWidth;
        for (const peer of relabelled)
            placeCursor(peer);
        // 3. Gliding.
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
        if (moving && !stopped)
            frameRequest = requestAnimationFrame(frame);
    }

    // -----------------------------------------------------------------------------------
    // 8. Server messages (docs/protocol.md, "Server → client")
    // -----------------------------------------------------------------------------------

    // One WebSocket message event: one frame from the server. With wsrelay.batch it holds
    // a JSON array of messages, else one message; either way each message goes through
    // handleMessage(), in order, and the status is reported once per frame. Anything that
    // is not what this connection's format promises (not JSON, an array on a seed
    // connection, a lone object on a batch one, an element that is not an object) is
    // ignored: the server never sends that, and a page must not crash on it.
    function onMessage(ev) {
        const started = performance.now();
        stats.frames++;
        if (typeof ev.data === 'string') // the room speaks JSON text only
            handleFrame(ev.data);
        stats.handlerMs += performance.now() - started;
    }

    function handleFrame(text) {
        let data;
        try {
            data = JSON.parse(text);
        } catch {
            return; // not JSON: the server never sends that; ignore rather than crash
        }
        if (batched) {
            if (!Array.isArray(data))
                return;
            for (const msg of data)
                handleMessage(msg);
        } else {
            handleMessage(data);
        }
        reportPeople();
    }

    // One server message (docs/protocol.md, "Server → client").
    function handleMessage(msg) {
        stats.messages++;
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
            // Someone we never knew: a big room's welcome did not list them (protocol.md,
            // "Big rooms"), so they were one of the unseen.
            if (!removePeer(msg.sender) && isId(msg.sender))
                unseen = Math.max(0, unseen - 1);
            break;
        case 'count': // {"type":"count","count":N}: batch connections only
            if (isCount(msg.count))
                serverCount = msg.count;
            break;
        case 'error': // reserved, but today's server reports errors with close codes instead
            break;
        default:
            // Every other `type` is one the server refuses from clients, so whatever is left
            // with a `sender` is a relayed client message: {"x":…,"y":…,"sender":…,"color":…}.
            // Messages with no sender are ignored, so a newer server can add message kinds
            // without breaking this page. A sender we never heard of is drawn as if its
            // join had come first; in a big room that is how members appear (so one fewer
            // is unseen).
            if ('sender' in msg && updatePeer(msg))
                unseen = Math.max(0, unseen - 1);
        }
    }

    // How many are in the room, us included: the batch server's count if it gave one,
    // else everyone we know of plus those a big room's welcome counted without listing.
    // Exact while the room is under --roster-max; a guess above it for a seed client, which
    // hears of arrivals only as they move (protocol.md, "count").
    function headCount() {
        return serverCount ?? peers.size + 1 + unseen;
    }

    function reportPeople() {
        if (myId !== null && status.people !== headCount())
            report({ people: headCount() });
    }

    // {"type":"welcome","id":…,"color":…,"room":…,"peers":[…]} (and "count":N on a batch
    // connection, or when the welcome does not list the whole room): who we are and who is
    // already here (in this room only: the server never mixes rooms).
    function onWelcome(msg) {
        if (!isId(msg.id))
            return;
        clearPeers(); // also done on close; harmless twice, and the welcome is the truth
        myId = msg.id;
        myColor = isHue(msg.color) ? msg.color : null;
        backoffStep = 0; // the server has really accepted us: the next drop starts afresh
        // Each peer is that client's last relayed message, or just {sender, color} if it
        // has not sent one yet: exactly the shapes updatePeer() already handles.
        if (Array.isArray(msg.peers)) {
            for (const p of msg.peers)
                updatePeer(p);
        }
        const count = isCount(msg.count) ? msg.count : null;
        // A batch server keeps us up to date with `count` messages; a seed server sends
        // none, so there the welcome's count only says how many it did not list.
        serverCount = batched ? count : null;
        unseen = !batched && count !== null ? Math.max(0, count - 1 - peers.size) : 0;
        report({ state: 'connected', people: headCount(), batched, id: myId, color: myColor,
            code: null, reason: '', retryMs: null });
        // After a reconnect the others have forgotten us: tell them where we are (if our
        // pointer is over the page) and our name, without waiting for the next move.
        requestSend();
    }

    // -----------------------------------------------------------------------------------
    // 9. Sending our state
    // -----------------------------------------------------------------------------------
    //
    // A mouse can report 120+ moves a second (1000 on gaming mice), more than a screen can
    // show. Sending each one would multiply the traffic the server relays to everyone for
    // no visible gain. So the event handlers only *remember* the latest state, and a
    // requestAnimationFrame callback sends it: at most one message per frame and per
    // SEND_INTERVAL_MS, always the freshest, and nothing at all while the pointer is still
    // or the tab is hidden. Pointer events (not mouse events) cover mouse, pen and touch.

    const me = { x: null, y: null, name: cleanName(options.name) }; // x, y: fractions or null
    let sendFrame = null; // the pending requestAnimationFrame, if a send is requested
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

    // The mouse left the window: hide our cursor from the others. A finger lifted from a
    // touch screen also "leaves"; there we keep the cursor where it touched, since a tap
    // means "look here" and a touch screen has no hovering pointer to follow.
    function onPointerLeave(ev) {
        if (ev.pointerType === 'touch')
            return;
        me.x = null;
        me.y = null;
        requestSend();
    }

    // Passive: we never call preventDefault(), so the browser need not wait for us before
    // scrolling, and the host page's own handlers see every event as before.
    const passive = { passive: true };
    window.addEventListener('pointermove', onPointer, passive);
    // pointerdown too: a tap on a touch screen sends no pointermove at all.
    window.addEventListener('pointerdown', onPointer, passive);
    document.documentElement.addEventListener('pointerleave', onPointerLeave, passive);
    // A window resize changes every target at once: glide there like after any update.
    window.addEventListener('resize', requestFrame, passive);

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
        if (sendFrame === null && !stopped)
            sendFrame = requestAnimationFrame(sendState);
    }

    function sendState(now) {
        sendFrame = null;
        if (ws === null || ws.readyState !== WebSocket.OPEN || myId === null)
            return; // nobody to tell yet; the next welcome sends our state
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

    // -----------------------------------------------------------------------------------
    // 10. Connection and reconnect
    // -----------------------------------------------------------------------------------
    //
    // There is only ever one socket: a new one is made only after the old one has closed.
    //
    //   connect() ──open──> (waiting for welcome) ──welcome──> connected
    //       ^                                                     │ close (any reason)
    //       └──────── timer: capped backoff + jitter <────────────┘
    //
    // A close with 4001 or 4002 (the server has no place for us) waits 30-60 s instead.
    //
    // Offering wsrelay.batch to a server that does not know it is NOT harmless in a browser,
    // although RFC 6455 §4.2.2 lets a server pick no subprotocol: the WHATWG WebSocket
    // standard ("obtain a WebSocket connection") makes the browser fail a handshake that
    // offered subprotocols when the 101 names none (Chromium: "Sent non-empty
    // 'Sec-WebSocket-Protocol' header but no response was received"), and the page sees
    // only a close 1006, exactly as if the server were down. So each attempt offers it
    // unless the attempt just before offered it and closed without ever opening; then the
    // next one goes at once, without the offer (and without counting as a backoff step):
    //
    //   offer ──closed before open──> no offer, at once ──closed before open──> backoff
    //     │                              │
    //     └── open: batched if the 101   └── open: the seed protocol
    //         named wsrelay.batch
    //
    // Against an old server that costs one short-lived connection per (re)connect (the
    // others see it join and leave); against a server that is down, two refused attempts
    // per backoff step. The next drop tries the offer again: the server may have been
    // upgraded in between.

    function connect() {
        retryTimer = null;
        // While we retry a refused place, keep saying why; a welcome or another kind of
        // close changes the state.
        let state = backoffStep === 0 ? 'connecting' : 'reconnecting';
        if (status.state === 'full' || status.state === 'too-many-rooms')
            state = status.state;
        report({ state, retryMs: null });
        try {
            offered = offerBatch && !retryWithoutOffer;
            retryWithoutOffer = false;
            opened = false;
            ws = offered ? new WebSocket(url, [BATCH_PROTOCOL]) : new WebSocket(url);
        } catch (err) {
            // Only a malformed URL throws here, e.g. a page opened as a file:// URL. Retrying
            // cannot help, so say so and stop.
            ws = null;
            report({ state: 'offline', reason: String(err), retryMs: null });
            return;
        }
        ws.addEventListener('open', onOpen);
        ws.addEventListener('message', onMessage);
        // 'close' follows every failure ('error' included, and a refused handshake such as
        // a 503 when the server is full), so it is the one place that schedules a retry.
        ws.addEventListener('close', onClose);
    }

    function onOpen() {
        lastSent = '{}'; // the new connection has heard nothing from us yet
        opened = true;
        // The server's choice, from its 101 response: what every frame will look like.
        batched = ws.protocol === BATCH_PROTOCOL;
    }

    function onClose(ev) {
        ws = null;
        if (offered && !opened) {
            // Perhaps a server that does not know wsrelay.batch (see above): ask again at
            // once without it. If the server is simply down, that fails too, and then the
            // backoff below applies.
            retryWithoutOffer = true;
            retryTimer = setTimeout(connect, 0);
            return;
        }
        myId = null;
        batched = false;
        serverCount = null;
        unseen = 0;
        clearPeers(); // stale cursors would be lies; the next welcome redraws the room
        let state;
        let delay;
        if (ev.code === CLOSE_ROOM_FULL || ev.code === CLOSE_TOO_MANY_ROOMS) {
            // The server accepted the connection, then refused a place. Say so, and ask
            // again only every half minute or so: a place frees only when someone leaves.
            state = ev.code === CLOSE_ROOM_FULL ? 'full' : 'too-many-rooms';
            delay = REFUSED_RETRY_MS / 2 + Math.random() * (REFUSED_RETRY_MS / 2);
        } else {
            // Why back off: if the server is down or full, retrying at once in a tight loop
            // would burn the battery and hammer the server the moment it comes back.
            // Doubling the wait keeps early retries quick and late ones cheap; the cap keeps
            // recovery within 10 s. Why jitter: a server restart drops everyone at the same
            // instant; without randomness all their pages would retry at the same instants
            // too, in synchronised waves. The first try comes at a random moment within a
            // second ("full jitter"): a node that stops, or drains (its closes already
            // spread over --drain-time), hands the other nodes its clients spread over that
            // second, not in one burst. Later waits are half fixed, half random ("equal
            // jitter"), so the waves stay apart while never retrying too soon.
            if (backoffStep === 0) {
                delay = Math.random() * FIRST_RETRY_SPREAD_MS;
            } else {
                const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (backoffStep - 1));
                delay = base / 2 + Math.random() * (base / 2);
            }
            backoffStep = Math.min(backoffStep + 1, 20); // no need to count past the cap
            state = 'reconnecting';
        }
        // The close code and reason say why (protocol.md, "Errors"); 1006 means the
        // connection simply dropped, with no close frame at all.
        report({ state, people: 0, batched: false, id: null, color: null, code: ev.code,
            reason: ev.reason, retryMs: Math.round(delay) });
        retryTimer = setTimeout(connect, delay);
    }

    // -----------------------------------------------------------------------------------
    // 11. Status
    // -----------------------------------------------------------------------------------
    //
    // The status object onStatus receives (a fresh, frozen object each time):
    //   state    'connecting' | 'connected' | 'reconnecting' (after a drop, waiting or trying)
    //            | 'full' (close 4001: the room has no place) | 'too-many-rooms' (close 4002:
    //            the server cannot open one more room) | 'offline' (no WebSocket possible;
    //            no retry) | 'stopped' (after stop())
    //   room     the room's name ('' for the default room)
    //   people   when connected: how many are in the room, us included; else 0. From the
    //            server's `count` on a batch connection; counted from welcome, join and
    //            leave on a seed one (exact up to --roster-max members, protocol.md)
    //   batched  true while connected with the wsrelay.batch subprotocol, else false
    //   id       our id while connected, else null
    //   color    our hue (0-359) while connected, else null; hueToCss() paints it
    //   code, reason  the last close code and reason (null, '' while connected)
    //   retryMs  after a close: how long until the next attempt, in ms; else null

    function report(changes) {
        const next = { ...status, ...changes };
        if (Object.keys(next).every((k) => next[k] === status[k]))
            return; // nothing new: most messages are cursors, which change no status
        status = Object.freeze(next);
        onStatus(status);
    }

    // -----------------------------------------------------------------------------------
    // 12. stop()
    // -----------------------------------------------------------------------------------

    function stop() {
        if (stopped)
            return;
        stopped = true;
        clearTimeout(retryTimer);
        if (ws !== null) {
            // Detach first: the close event that follows must not schedule a reconnect.
            ws.removeEventListener('open', onOpen);
            ws.removeEventListener('message', onMessage);
            ws.removeEventListener('close', onClose);
            ws.close(1000);
            ws = null;
        }
        window.removeEventListener('pointermove', onPointer, passive);
        window.removeEventListener('pointerdown', onPointer, passive);
        document.documentElement.removeEventListener('pointerleave', onPointerLeave, passive);
        window.removeEventListener('resize', requestFrame, passive);
        if (sendFrame !== null)
            cancelAnimationFrame(sendFrame);
        if (frameRequest !== null)
            cancelAnimationFrame(frameRequest);
        sendFrame = frameRequest = null;
        clearPeers();
        host.remove();
        myId = null;
        report({ state: 'stopped', people: 0, batched: false, id: null, color: null,
            retryMs: null });
    }

    // Reported after shareCursors() returns, so an onStatus that uses the handle can.
    queueMicrotask(() => {
        if (!stopped)
            onStatus(status);
    });
    connect();

    return {
        get status() { return status; },
        // Counters for measuring (bench/page_bench.mjs): server frames and messages
        // received since shareCursors() was called, and the milliseconds of main-thread
        // time spent in our message handler (parsing and updating state; drawing happens
        // later, in the animation frame). A fresh copy each time.
        get stats() { return { ...stats }; },
        // Changes the name on our cursor; '' (or anything not a string) means none. The
        // others see it with the next message, which is sent at once.
        setName(name) {
            me.name = cleanName(name);
            requestSend();
            return me.name;
        },
        stop,
    };
}
