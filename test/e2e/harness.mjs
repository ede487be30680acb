// harness.mjs: what the browser tests (page.test.mjs) and the screenshot script
// (screenshots.mjs) share: a wsrelay process, Debian's chromium driven by playwright-core,
// one browser context per simulated person, and a way to wait for things without sleeping.
//
// Rules (the same as the integration suite's, test/integration/conftest.py): wsrelay listens
// on 127.0.0.1 with --port 0 and we learn the port from its "listening" log line; we talk
// to 127.0.0.1 only; every server we start is stopped by its PID; every wait has a generous
// timeout and nothing asserts speed.
//
// Chapters: 1. the server process, 2. the browser, 3. people (pages) and what they send
// and receive, 4. reading the page, 5. waiting.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.WSRELAY_BIN || join(REPO, 'wsrelay');
export const HOST = '127.0.0.1';

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
// The returned object keeps every stderr line, so a test can show the log when it fails.
export async function startServer({ port = 0 } = {}) {
    const proc = spawn(BIN, ['--host', HOST, '--port', String(port), '--www', join(REPO, 'www')], {
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
    server.url = `http://${HOST}:${server.port}/`;
    return server;
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

export function launchBrowser() {
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// ---------------------------------------------------------------------------------------
// 3. People: one browser context each, and what their page sends and receives
// ---------------------------------------------------------------------------------------
//
// A context is a separate browser profile (its own storage, like a different person's
// browser), so each person gets one. We watch the page's WebSocket frames from outside
// (Playwright reports every frame): tests compute what should be on screen from what was
// really sent, and learn each person's id and colour from their own `welcome`.

export async function openPerson(browser, url, { viewport = { width: 1000, height: 700 },
    colorScheme = 'light', hasTouch = false, deviceScaleFactor = 1,
    reducedMotion = 'no-preference' } = {}) {
    const context = await browser.newContext({ viewport, colorScheme, hasTouch,
        deviceScaleFactor, reducedMotion });
    const page = await context.newPage();
    const person = {
        context, page,
        sent: [],       // every message the page sent, parsed
        received: [],   // every message it received, parsed
        dialogs: [],    // alert()/confirm()/prompt() the page tried to open: should be none
        errors: [],     // uncaught exceptions in the page: should be none
        // The latest welcome: { id, color, peers } (a new one after each reconnect).
        get welcome() {
            return this.received.findLast((m) => m.type === 'welcome') ?? null;
        },
        get lastSent() { return this.sent.at(-1) ?? null; },
        async close() { await context.close(); },
    };
    page.on('websocket', (socket) => {
        socket.on('framesent', (f) => person.sent.push(JSON.parse(f.payload)));
        socket.on('framereceived', (f) => person.received.push(JSON.parse(f.payload)));
    });
    page.on('dialog', (d) => {
        person.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (err) => person.errors.push(String(err)));
    await page.goto(url);
    await eventually(async () => {
        if ((await badgeState(page)) !== 'connected' || person.welcome === null)
            throw new Error('the page did not connect');
    });
    return person;
}

// ---------------------------------------------------------------------------------------
// 4. Reading the page
// ---------------------------------------------------------------------------------------

// Every cursor drawn on the page: its sender, where its tip is (the arrow's top-left corner,
// in CSS pixels of the window), the arrow's computed fill and the label's text.
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
