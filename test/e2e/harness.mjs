// harness.mjs: what the browser tests (page.test.mjs) and the screenshot script
// (screenshots.mjs) share: a wsrelay process, Debian's chromium driven by playwright-core,
// one browser context per simulated person, and a way to wait for things without sleeping.
//
// Rules (the same as the integration suite's, test/integration/conftest.py): wsrelay listens
// on 127.0.0.1 with --port 0 and we learn the port from its "listening" log line; we talk
// to 127.0.0.1 only; every server we start is stopped by its PID; every wait has a generous
// timeout and nothing asserts speed.
//
// Chapters: 0. TLS, 1. the server process, 2. the browser, 3. people (pages) and what they
// send and receive, 4. reading the page, 5. waiting, 6. scenes: a test's servers and people,
// and the checks every test ends with.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.WSRELAY_BIN || join(REPO, 'wsrelay');
export const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------
// 0. TLS
// ---------------------------------------------------------------------------------------
//
// WSRELAY_TEST_TLS=1 (scripts/test.sh's TLS pass, issue 13): every server gets
// --tls-cert/--tls-key from a test CA made here with the `openssl` command, pages are
// opened over https:// (so the page's own code opens wss://, as a browser on the open
// internet would), and chromium trusts that CA the way a person's browser trusts an
// installed one: it is added to an NSS database (certutil, Debian's libnss3-tools) in a
// home directory of the test's own, which chromium on Linux reads at $HOME/.pki/nssdb.
// Nothing is skipped: certificate errors are not ignored, the CA is really trusted, so a
// wrong certificate (say, without 127.0.0.1 in its names) fails every test.
export const TLS = process.env.WSRELAY_TEST_TLS === '1';
export const WS_SCHEME = TLS ? 'wss' : 'ws';

// The test PKI, made once per process (each test file is one process under `node --test`)
// and removed as the process exits: { dir, ca, cert, key } (paths; dir is also chromium's
// HOME). A P-256 CA and a server pair for localhost and 127.0.0.1, valid for two days.
let pki = null;
export function testPki() {
    if (pki !== null)
        return pki;
    const dir = mkdtempSync(join(tmpdir(), 'wsrelay-e2e-pki-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const run = (cmd, ...args) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe',
        timeout: 60_000 });
    run('openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
    run('openssl', 'req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=wsrelay e2e test CA',
        '-days', '2', '-out', 'ca.pem');
    run('openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'srv.key');
    run('openssl', 'req', '-new', '-key', 'srv.key', '-subj', '/CN=localhost', '-out', 'srv.csr');
    writeFileSync(join(dir, 'srv.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    run('openssl', 'x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-days', '2', '-extfile', 'srv.ext', '-out', 'srv.pem');
    // "C,,": a trusted CA for TLS servers, nothing else (certutil(1), -t trustargs).
    const nssdb = join(dir, '.pki', 'nssdb');
    mkdirSync(nssdb, { recursive: true });
    run('certutil', '-d', `sql:${nssdb}`, '-N', '--empty-password');
    run('certutil', '-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'wsrelay e2e test CA',
        '-i', join(dir, 'ca.pem'));
    pki = { dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'srv.pem'), key: join(dir, 'srv.key') };
    return pki;
}

// An HTTP(S) GET from Node, outside any browser, trusting only the test CA over TLS:
// resolves { status, headers, body }. (Node's fetch() cannot be given a CA.)
export function httpGet(url, { headers = {} } = {}) {
    const lib = url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
        const req = lib.get(url, { headers, timeout: 5000,
            ...(TLS ? { ca: readFileSync(testPki().ca) } : {}) }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => { body += chunk; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 5 s`)));
        req.on('error', reject);
    });
}

// ---------------------------------------------------------------------------------------
// 1. The server process
// ---------------------------------------------------------------------------------------

const LISTENING_RE = /\bport=(\d+)\b.*"listening"/;
const SANITIZER_MARKERS = [
    'ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
    'SUMMARY: UndefinedBehaviorSanitizer', 'SUMMARY: AddressSanitizer',
];

// Starts wsrelay on 127.0.0.1 (port 0: the kernel picks a free one; or a given port, to
// restart a server where the pages expect it) and resolves once it logs "listening".
// `args` are more flags (['--max-room-clients', '1']). The returned object keeps every
// stderr line, so a test can show the log when it fails.
export async function startServer({ port = 0, args = [] } = {}) {
    const tls = TLS ? ['--tls-cert', testPki().cert, '--tls-key', testPki().key] : [];
    const proc = spawn(BIN, ['--host', HOST, '--port', String(port), '--www', join(REPO, 'www'),
        ...tls, ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
    });
    const server = {
        proc,
        port: null,         // known once it listens
        url: null,          // http://127.0.0.1:<port>/
        lines: [],          // its log (stderr), line by line
        exited: false,
        exitCode: null,     // once exited: its exit status, or null if a signal ended it
        stoppedWith: null,  // the signal stop() ended it with
        get log() { return this.lines.join('\n'); },
        // Stops it by PID: SIGTERM (a clean shutdown, close 1001 to every client) or, to
        // simulate a crash, SIGKILL. Resolves once the process is gone, with the signal
        // that stopped it (null if it had already exited by itself).
        async stop(signal = 'SIGTERM') {
            if (this.exited)
                return this.stoppedWith;
            const gone = once(proc, 'close'); // exited, and its stderr read to the end
            this.stoppedWith = signal;
            process.kill(proc.pid, signal);
            const timer = setTimeout(() => {
                if (!this.exited) {
                    this.stoppedWith = 'SIGKILL'; // it did not stop in time
                    process.kill(proc.pid, 'SIGKILL');
                }
            }, 5000);
            await gone;
            clearTimeout(timer);
            return this.stoppedWith;
        },
        // Sanitizer reports in the log so far (the ASan build prints them on stderr).
        sanitizerReports() {
            return this.lines.filter((l) => SANITIZER_MARKERS.some((m) => l.includes(m)));
        },
    };
    proc.on('exit', (code) => {
        server.exited = true;
        server.exitCode = code;
    });

    // Read stderr line by line; the first "listening" line tells the port.
    let partial = '';
    const listening = new Promise((resolve, reject) => {
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', (chunk) => {
            partial += chunk;
            const lines = partial.split('\n');
            partial = lines.pop();
            for (const line of lines) {
                server.lines.push(line);
                const m = LISTENING_RE.exec(line);
                if (m && server.port === null)
                    resolve(Number(m[1]));
            }
        });
        proc.stderr.on('end', () => {
            if (partial !== '')
                server.lines.push(partial); // a last line without a newline
        });
        proc.on('error', reject); // e.g. the binary does not exist
        proc.on('exit', (code) => reject(new Error(
            `wsrelay exited (status ${code}) before listening:\n${server.log}`)));
    });
    const timeout = new Promise((_, reject) => setTimeout(
        () => reject(new Error(`wsrelay did not log "listening" within 10 s:\n${server.log}`)),
        10_000).unref());
    try {
        server.port = await Promise.race([listening, timeout]);
    } catch (err) {
        if (!server.exited)
            process.kill(proc.pid, 'SIGKILL');
        throw err;
    }
    server.url = `${TLS ? 'https' : 'http'}://${HOST}:${server.port}/`;
    return server;
}

// Whether this binary implements issue 12 ("Latest position wins": the wsrelay.batch
// subprotocol, `count`, --roster-max), judged by its usage text. Tests that need a
// batching server are skipped with this as their reason until it lands; tests that merely
// allow one ask the running server instead (serverPicksBatch).
export const BATCH_SERVER = execFileSync(BIN, ['--help'], { encoding: 'utf8' })
    .includes('--roster-max');

// Asks `server` directly, outside any browser, whether it picks the wsrelay.batch
// subprotocol: one WebSocket handshake on /ws offering it (RFC 6455 §4.1), and what its
// 101 echoes in Sec-WebSocket-Protocol (§4.2.2: nothing, if it picked none). The socket is
// destroyed at once, so the room only sees a join and a leave.
export function serverPicksBatch(server) {
    return new Promise((resolve, reject) => {
        const req = (TLS ? https : http).request({
            host: HOST, port: server.port, path: '/ws', timeout: 5000,
            ...(TLS ? { ca: readFileSync(testPki().ca) } : {}),
            headers: {
                Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
                'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', // RFC 6455 §1.3's sample
                'Sec-WebSocket-Protocol': 'wsrelay.batch',
            },
        });
        req.on('upgrade', (res, socket) => {
            socket.destroy();
            resolve(res.headers['sec-websocket-protocol'] === 'wsrelay.batch');
        });
        req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
        req.on('timeout', () => req.destroy(new Error('no answer to the handshake in 5 s')));
        req.on('error', reject);
        req.end();
    });
}

// ---------------------------------------------------------------------------------------
// 2. The browser
// ---------------------------------------------------------------------------------------

// Debian's chromium (scripts/deps.sh installs it); playwright-core cannot download its own
// browsers here, and needs none. The flags keep a headless chromium from reaching for the
// network by itself (updates, sync, safe-browsing lists, QUIC probes): this machine refuses
// all of that, and a test should depend on nothing but 127.0.0.1. playwright-core gives
// every launch a fresh, empty user-data dir of its own in /tmp and deletes it at close.
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic',
];

// Over TLS, chromium's HOME is the test PKI's directory, whose NSS database trusts the
// test CA (chapter 0).
export function launchBrowser() {
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
        ...(TLS ? { env: { ...process.env, HOME: testPki().dir } } : {}) });
}

// ---------------------------------------------------------------------------------------
// 3. People: one browser context each, and what their page sends and receives
// ---------------------------------------------------------------------------------------
//
// A context is a separate browser profile (its own storage, like a different person's
// browser), so each person gets one. We watch the page's WebSocket frames from outside
// (Playwright reports every frame): tests compute what should be on screen from what was
// really sent, and learn each person's id and colour from their own `welcome`.

//
// openPerson resolves once the page's badge (#status, data-state) says "connected" and its
// welcome has arrived; `until` names another badge state to wait for instead (such as
// 'full', for a page the server refuses), and then no welcome is expected.
// `permissions` are granted to the page's origin (['clipboard-read']).
// Every page records the subprotocols each `new WebSocket(url, protocols)` offered, in
// window.offeredProtocols (an init script that wraps the constructor and only watches):
// frames show what the server sent, not what the page asked for.
export async function openPerson(browser, url, { viewport = { width: 1000, height: 700 },
    colorScheme = 'light', hasTouch = false, deviceScaleFactor = 1,
    reducedMotion = 'no-preference', until = 'connected', permissions = [] } = {}) {
    const context = await browser.newContext({ viewport, colorScheme, hasTouch,
        deviceScaleFactor, reducedMotion });
    await context.addInitScript(watchWebSocketOffers);
    if (permissions.length > 0)
        await context.grantPermissions(permissions, { origin: new URL(url).origin });
    const page = await context.newPage();
    const person = {
        context, page,
        sockets: [],    // the URL of every WebSocket the page opened, in order
        sent: [],       // every message the page sent, parsed
        frames: [],     // every frame it received, parsed: an object, or with wsrelay.batch
                        // an array of them
        received: [],   // every message it received, parsed, in order (batches unpacked)
        dialogs: [],    // alert()/confirm()/prompt() the page tried to open: should be none
        errors: [],     // uncaught exceptions in the page: should be none
        failedRequests: [], // "404 http://…" for every response of status 400 or more
        // The latest welcome: { id, color, peers } (a new one after each reconnect).
        get welcome() {
            return this.received.findLast((m) => m.type === 'welcome') ?? null;
        },
        get lastSent() { return this.sent.at(-1) ?? null; },
        async close() { await context.close(); },
    };
    page.on('websocket', (socket) => {
        person.sockets.push(socket.url());
        socket.on('framesent', (f) => person.sent.push(JSON.parse(f.payload)));
        // A seed server never sends an array (every message is an object), so an array
        // can only be a wsrelay.batch frame: its messages count one by one, in order.
        socket.on('framereceived', (f) => {
            const data = JSON.parse(f.payload);
            person.frames.push(data);
            if (Array.isArray(data))
                person.received.push(...data);
            else
                person.received.push(data);
        });
    });
    page.on('dialog', (d) => {
        person.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (err) => person.errors.push(String(err)));
    page.on('response', (res) => {
        if (res.status() >= 400)
            person.failedRequests.push(`${res.status()} ${res.url()}`);
    });
    await page.goto(url);
    await eventually(async () => {
        const state = await badgeState(page);
        if (state !== until || (until === 'connected' && person.welcome === null))
            throw new Error(`the page's badge says ${state}, expected ${until}`);
    });
    return person;
}

// Runs in the page before its own scripts (context.addInitScript).
export function watchWebSocketOffers() {
    const Native = window.WebSocket;
    window.offeredProtocols = [];
    window.WebSocket = class extends Native {
        constructor(url, protocols) {
            super(url, protocols);
            window.offeredProtocols.push(protocols === undefined ? [] : [].concat(protocols));
        }
    };
}

// The cursors.js handle's status, on a page opened with ?debug=1 (index.js then puts the
// handle on window.wsrelayCursors).
export function moduleStatus(page) {
    return page.evaluate(() => window.wsrelayCursors.status);
}

// ---------------------------------------------------------------------------------------
// 4. Reading the page
// ---------------------------------------------------------------------------------------

// Every cursor drawn on the page: its sender, where its tip is (the arrow's top-left corner,
// in CSS pixels of the window), the arrow's computed fill and the label's text. The cursors
// are in the shadow root of cursors.js's <wsrelay-cursors>: Playwright's CSS selectors
// look inside open shadow roots, and so this finds them.
export function cursors(page) {
    return page.$$eval('[data-sender]', (els) => els.map((el) => {
        const arrow = el.querySelector('svg');
        const box = arrow.getBoundingClientRect();
        return {
            sender: el.getAttribute('data-sender'),
            x: box.left,
            y: box.top,
            fill: getComputedStyle(arrow.querySelector('path')).fill,
            label: el.querySelector('.label')?.textContent ?? null,
        };
    }));
}

export function badgeState(page) {
    return page.$eval('#status', (el) => el.dataset.state);
}

export function badgeText(page) {
    return page.$eval('#status', (el) => el.textContent.trim());
}

// The head count in the room bar ("· 3 here"), as a number; null while it shows none.
export async function shownCount(page) {
    const text = await page.$eval('#room-count', (el) => el.textContent.trim());
    const m = /^· (\d+) here$/.exec(text);
    return m === null ? null : Number(m[1]);
}

// Waits until both the room bar and the badge count `n` people.
export async function waitForCount(person, n) {
    await eventually(async () => {
        assert.equal(await shownCount(person.page), n, 'the room bar\'s count');
        assert.match(await badgeText(person.page), n === 1 ? /only you here/
            : new RegExp(`\\b${n} people here`), 'the badge\'s count');
    });
}

// hsl(hue, 50%, 50%), the colour protocol.md says a hue is painted in, as the
// "rgb(r, g, b)" string getComputedStyle reports (CSS Color 4, "HSL to RGB").
export function hueToRgb(hue) {
    const f = (n) => {
        const k = (n + hue / 30) % 12;
        return 0.5 - 0.25 * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    };
    return [f(0), f(8), f(4)].map((c) => Math.round(c * 255));
}

export function parseRgb(css) {
    const m = /^rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(css);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

// ---------------------------------------------------------------------------------------
// 5. Waiting
// ---------------------------------------------------------------------------------------

// Runs `check` (which throws, e.g. an assert, while the condition does not hold yet) until
// it passes, then returns its result. After `timeout` ms it throws the last failure, so the
// message says what was still wrong. Generous by default: this proves behaviour, not speed.
export async function eventually(check, { timeout = 10_000, interval = 50 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
        try {
            return await check();
        } catch (err) {
            if (Date.now() >= deadline)
                throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, interval));
    }
}

// ---------------------------------------------------------------------------------------
// 6. Scenes, and the checks every test ends with
// ---------------------------------------------------------------------------------------

const TOLERANCE_PX = 1.5; // positions travel with 4 decimals: under half a pixel here

// A scene: a fresh server (started with `serverOptions`, see startServer), open() to let
// people in, and startServer() to replace the server (a restart). open() takes
// openPerson's options, plus `path` ('/r/abc': a page of the server other than /) or `url`
// (a page anywhere, such as another origin's). Everything is closed after the test,
// whatever happened; then each server's whole log is checked, since a sanitizer build
// reports leaks only as it exits.
export async function scene(t, browser, serverOptions = {}) {
    const r = {
        server: null,   // the current server
        servers: [],    // every server this room started
        people: [],
        async startServer(options) { // a restart keeps the first server's flags
            r.server = await startServer({ ...serverOptions, ...options });
            r.servers.push(r.server);
            return r.server;
        },
        async open({ path = '/', url = new URL(path, r.server.url).href, ...options } = {}) {
            const person = await openPerson(browser, url, options);
            r.people.push(person);
            return person;
        },
    };
    t.after(async () => {
        for (const p of r.people)
            await p.close().catch(() => {});
        for (const s of r.servers) {
            const signal = await s.stop();
            assert.deepEqual(s.sanitizerReports(), [], `sanitizer report:\n${s.log}`);
            if (signal === 'SIGTERM')
                assert.equal(s.exitCode, 0, `wsrelay did not exit cleanly:\n${s.log}`);
        }
    });
    await r.startServer(serverOptions);
    return r;
}

// The checks every test ends with: no page opened a dialog, threw, or got an HTTP error for
// anything it loaded (a relative URL in index.html would, at /r/<room>); no <img> exists
// anywhere (the page has none; one would mean a name was parsed as HTML); no page draws a
// cursor for its own pointer; and the server's log has no sanitizer report.
export async function assertClean({ server, people }) {
    for (const p of people) {
        if (p.page.isClosed())
            continue;
        assert.deepEqual(p.dialogs, [], 'a page opened a dialog');
        assert.deepEqual(p.errors, [], 'a page threw an exception');
        assert.deepEqual(p.failedRequests, [], 'a page got an HTTP error');
        assert.equal(await p.page.locator('img').count(), 0, 'an <img> appeared in a page');
        if (TLS) // the TLS pass: every socket the page opened went over TLS too
            assert.deepEqual(p.sockets.filter((u) => !u.startsWith('wss://')), [],
                'a page opened a WebSocket without TLS');
        const own = (await cursors(p.page)).filter((c) => c.sender === p.welcome?.id);
        assert.deepEqual(own, [], 'a page draws a cursor for its own pointer');
    }
    assert.deepEqual(server.sanitizerReports(), [], `sanitizer report:\n${server.log}`);
}

// The page's coordinates (docs/page.md): a fraction of the window, 4 decimals.
export function fraction(px, size) {
    return Math.round((px / size) * 10_000) / 10_000;
}

// Moves a person's mouse to (x, y) in CSS pixels of their window, in a few steps as a hand
// would, and waits until the page has sent that final position (as fractions of its
// window); returns the message.
export async function moveMouse(person, x, y) {
    const size = person.page.viewportSize();
    const want = { x: fraction(x, size.width), y: fraction(y, size.height) };
    await person.page.mouse.move(x, y, { steps: 4 });
    return eventually(() => {
        const last = person.lastSent;
        assert.ok(last !== null && last.x === want.x && last.y === want.y,
            `the page last sent ${JSON.stringify(last)}, expected x, y = ${want.x}, ${want.y}`);
        return last;
    });
}

// What a message from `sender` should look like on `viewer`'s screen: the arrow's tip at
// the same fractions of the viewer's window, painted in the sender's colour.
export function expectedCursor(viewer, senderWelcome, sent) {
    const size = viewer.page.viewportSize();
    return {
        sender: senderWelcome.id,
        x: sent.x * size.width,
        y: sent.y * size.height,
        rgb: hueToRgb(senderWelcome.color),
    };
}

// Waits until `viewer` draws the expected cursor there (it glides, so it may take a few
// frames), and returns what is drawn.
export async function waitForCursor(viewer, expected, { timeout } = {}) {
    return eventually(async () => {
        const mine = (await cursors(viewer.page)).filter((c) => c.sender === expected.sender);
        assert.equal(mine.length, 1, `expected one cursor for ${expected.sender}`);
        const c = mine[0];
        assert.ok(Math.abs(c.x - expected.x) <= TOLERANCE_PX &&
                  Math.abs(c.y - expected.y) <= TOLERANCE_PX,
            `cursor at (${c.x}, ${c.y}), expected (${expected.x}, ${expected.y})`);
        const rgb = parseRgb(c.fill);
        assert.ok(rgb !== null && rgb.every((v, i) => Math.abs(v - expected.rgb[i]) <= 1),
            `cursor fill ${c.fill}, expected rgb(${expected.rgb.join(', ')})`);
        return c;
    }, { timeout });
}

export async function waitForNoCursor(viewer, sender) {
    await eventually(async () => {
        const left = (await cursors(viewer.page)).filter((c) => c.sender === sender);
        assert.deepEqual(left, [], `a cursor for ${sender} is still drawn`);
    });
}

export async function waitForBadge(person, state, text) {
    await eventually(async () => {
        assert.equal(await badgeState(person.page), state);
        if (text !== undefined)
            assert.match(await badgeText(person.page), text);
    }, { timeout: 30_000 }); // reconnecting after a restart may take a few backoff steps
}
