// index.js: the shared-cursors page (an ES module, loaded with <script type="module">).
//
// Owns: which room this page is (from its own URL), the controls around it (the room's
// name, "Copy link", "New room", the status badge, the name field) and the notices for a
// refused place. Does not own the cursors: cursors.js connects, sends our pointer and draws
// everyone else's, exactly as it does on any other site that embeds it (docs/embed.md);
// this page is its first user. It reports what happens through onStatus, and we show it.
//
// Two URL parameters are for measuring and testing, not for visitors: `?batch=0` makes
// cursors.js speak the seed protocol (one message per frame) even to a server that could
// batch, and `?debug=1` puts the cursors.js handle on `window.wsrelayCursors`, whose
// `stats` bench/page_bench.mjs reads. Neither changes what the page looks like.
//
// Chapters: 1. the room from the URL, 2. page elements, 3. the room bar (name, head count,
// copy link, new room), 4. the status badge and notices, 5. the name field, 6. start.

import {
    shareCursors, isRoomName, cleanName, defaultName, hueToCss, textColorOn,
} from '/cursors.js';

// ---------------------------------------------------------------------------------------
// 1. The room from the URL
// ---------------------------------------------------------------------------------------
//
// The server serves this page at / (the default room, whose name is "") and at /r/<room>
// (docs/protocol.md, "Rooms"); it refuses a bad name with a 400 before we ever run. A room
// name is only unreserved characters (A-Z a-z 0-9 - . _ ~), which a URL never encodes, so
// location.pathname holds it exactly as the server read it.

// The room this path names: '' for the default room, null for a path that names none
// (which the server would not have served; we then join nothing rather than guess, since
// falling back to the default room would show a private room's visitor to everyone).
function roomFromPath(path) {
    if (path === '/' || path === '/index.html')
        return '';
    const m = /^\/r\/([^/]+)$/.exec(path);
    return m !== null && isRoomName(m[1]) ? m[1] : null;
}

// The link that brings someone into `room`: what "Copy link" copies.
function roomLink(room) {
    return room === '' ? `${location.origin}/` : `${location.origin}/r/${room}`;
}

// A fresh room name nobody can guess: 16 random bytes (128 bits; a random UUID has 122) in
// base64url without padding: 22 characters of A-Z a-z 0-9 - _, all of them unreserved, so
// the name is valid as it is and never needs encoding in a URL.
// crypto.getRandomValues, not Math.random: a room's name is the only thing keeping
// strangers out of it, so it must come from the browser's cryptographic generator.
function randomRoomName() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const base64 = btoa(String.fromCharCode(...bytes));
    return base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const room = roomFromPath(location.pathname);
const params = new URLSearchParams(location.search);
const batch = params.get('batch') !== '0';
const debug = params.get('debug') === '1';

// ---------------------------------------------------------------------------------------
// 2. Page elements
// ---------------------------------------------------------------------------------------

const roomLinkEl = document.getElementById('room-link');
const roomCount = document.getElementById('room-count');
const copyButton = document.getElementById('copy-link');
const newRoomButton = document.getElementById('new-room');
const linkField = document.getElementById('link-field');
const copyStatus = document.getElementById('copy-status');
const notice = document.getElementById('notice');
const badge = document.getElementById('status');
const badgeText = document.getElementById('status-text');
const nameInput = document.getElementById('name');

const NAME_STORAGE_KEY = 'wsrelay.name';

// ---------------------------------------------------------------------------------------
// 3. The room bar
// ---------------------------------------------------------------------------------------

function showRoom() {
    if (room === null) {
        roomLinkEl.textContent = 'no room';
        roomLinkEl.removeAttribute('href');
        copyButton.disabled = true;
        return;
    }
    // The default room is shown as "default room": no room can have that name (a space is
    // not allowed), so it cannot be mistaken for one called "lobby" or "default".
    roomLinkEl.textContent = room === '' ? 'default room' : room; // text, never markup
    roomLinkEl.classList.toggle('is-default', room === '');
    roomLinkEl.href = roomLink(room);
    if (room !== '')
        document.title = `${room} · wsrelay · shared cursors`;
}

// The Clipboard API exists in secure contexts only (https:, or http://localhost and
// 127.0.0.1), and the browser may still refuse. Then we show the link, selected, so that
// the visitor can copy it with the keyboard: the page never hides the link from them.
async function copyLink() {
    const link = roomLink(room);
    try {
        if (navigator.clipboard === undefined)
            throw new Error('no clipboard here');
        await navigator.clipboard.writeText(link);
        linkField.hidden = true;
        say('Link copied');
    } catch {
        linkField.value = link;
        linkField.hidden = false;
        linkField.focus();
        linkField.select();
        const mac = /Mac|iPhone|iPad/.test(navigator.platform);
        say(mac ? 'Press ⌘C to copy' : 'Press Ctrl+C to copy');
    }
}

// The room's head count, you included: "· 3 here" while connected, nothing otherwise.
// cursors.js takes it from the server's `count` where it can (a batch connection) and
// counts welcome, join and leave otherwise (its chapter 11).
function showCount(status) {
    const text = status.state === 'connected' ? `· ${status.people} here` : '';
    if (roomCount.textContent !== text)
        roomCount.textContent = text;
    roomCount.title = text === '' ? '' : status.people === 1 ? 'only you in this room'
        : `${status.people} people in this room, you included`;
}

// Shows (and announces) a short message beside the buttons for a few seconds.
let sayTimer = null;
function say(text) {
    copyStatus.textContent = text;
    clearTimeout(sayTimer);
    sayTimer = setTimeout(() => { copyStatus.textContent = ''; }, 4000);
}

copyButton.addEventListener('click', copyLink);
newRoomButton.addEventListener('click', () => {
    location.assign(`/r/${randomRoomName()}`);
});

// ---------------------------------------------------------------------------------------
// 4. The status badge and notices
// ---------------------------------------------------------------------------------------

// What the badge says in each state of cursors.js (its chapter 11).
function badgeLabel(status) {
    switch (status.state) {
    case 'connected':
        return status.people === 1 ? 'connected · only you here'
            : `connected · ${status.people} people here`;
    case 'connecting':
        return 'connecting…';
    case 'full':
        return 'room is full · trying again soon';
    case 'too-many-rooms':
        return 'too many rooms · trying again soon';
    case 'offline':
        return 'offline · open this page from the wsrelay server';
    case 'no-room':
        return 'not connected';
    default: // 'reconnecting', and 'stopped', which this page never asks for
        return 'reconnecting…';
    }
}

// The longer explanation under the greeting, for the states a person must act on (or at
// least understand): '' hides it. role="alert" makes screen readers read it out whenever it
// changes, so it stays the same from one retry to the next (the badge's tooltip has the
// exact time of the next one).
function noticeText(status) {
    switch (status.state) {
    case 'full':
        return 'This room is full: it has as many people as this server allows in one room. ' +
            'The page tries again every 30 to 60 seconds, or you can start a new room.';
    case 'too-many-rooms':
        return 'This server has as many rooms open as it allows, so it cannot open this one. ' +
            'The page tries again every 30 to 60 seconds.';
    case 'no-room':
        return 'This link names no room. Room links look like /r/ and a name of letters, ' +
            'digits, "-", ".", "_" or "~". Start a new room, or ask for the link again.';
    default:
        return '';
    }
}

function showStatus(status) {
    showCount(status);
    badge.dataset.state = status.state;
    const text = badgeLabel(status);
    if (badgeText.textContent !== text)
        badgeText.textContent = text; // textContent: never parsed as HTML
    // The badge's tooltip says who we are, or why we are not connected: the close code and
    // reason (protocol.md, "Errors"; 1006 means the connection dropped without a close
    // frame). A property, not markup: safe with any string.
    if (status.state === 'connected') {
        badge.title = `you are ${status.id}`;
    } else if (status.code !== null) {
        const retry = status.retryMs === null ? ''
            : `; next try in ${Math.max(1, Math.round(status.retryMs / 1000))} s`;
        badge.title = `closed: ${status.code}${status.reason ? ' ' + status.reason : ''}${retry}`;
    }
    const message = noticeText(status);
    if (notice.textContent !== message) {
        notice.textContent = message;
        notice.hidden = message === '';
    }
    // Our colour, for the badge's dot and the preview of our cursor around the name field;
    // grey until the server gives us one.
    if (status.state === 'connected') {
        document.body.style.setProperty('--you', hueToCss(status.color));
        document.body.style.setProperty('--you-text', textColorOn(status.color));
        nameInput.placeholder = defaultName(status.id); // what the others call us otherwise
    } else {
        document.body.style.removeProperty('--you');
        document.body.style.removeProperty('--you-text');
    }
}

// ---------------------------------------------------------------------------------------
// 5. The name field
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

// ---------------------------------------------------------------------------------------
// 6. Start
// ---------------------------------------------------------------------------------------

showRoom();
const name = loadName();
nameInput.value = name;

let cursors = null;
if (room === null) {
    showStatus({ state: 'no-room', code: null, retryMs: null });
} else {
    try {
        // No `server`: cursors.js talks to the server it was loaded from, this page's own.
        cursors = shareCursors({ room, name, batch, onStatus: showStatus });
        if (debug)
            window.wsrelayCursors = cursors;
    } catch (err) {
        // A URL cursors.js cannot turn into a WebSocket one (a page opened as a file).
        showStatus({ state: 'offline', code: null, retryMs: null });
        badge.title = String(err);
    }
}

nameInput.addEventListener('input', () => {
    const cleaned = cleanName(nameInput.value);
    saveName(cleaned);
    cursors?.setName(cleaned);
});

// Enter (or "done" on a phone keyboard) finishes editing.
nameInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === 'Escape')
        nameInput.blur();
});
