// page.test.mjs: the shared-cursors page (www/), proven in a real browser.
//
//     node --test test/e2e/page.test.mjs      (scripts/test.sh runs it; WSRELAY_BIN picks
//                                              the binary, default ./wsrelay)
//
// Each test starts its own wsrelay on a free loopback port and opens the page as several
// people, each in a browser context of their own (separate storage, like separate
// browsers), in Debian's chromium driven by playwright-core (harness.mjs). Then it does
// what a person does, moving the mouse, tapping, typing a name, closing the tab, and checks
// what the *other* people see on their screens: cursor elements, where they are drawn,
// their computed colour, their label.
//
// Expected positions come from what was really sent, watched on the wire: the page sends
// fractions of its window (docs/page.md), so a message {"x":0.25,"y":0.5} from A must be
// drawn by B at 0.25 × B's width, 0.5 × B's height. Colours come from each person's own
// `welcome`: a hue h is painted hsl(h, 50%, 50%) (docs/protocol.md).
//
// Every wait is `eventually(...)` with a generous timeout: these tests prove behaviour,
// never speed. After each test: no page opened a dialog, threw or got an HTTP error, no
// <img> exists anywhere (the page has none; one would mean a name was parsed as HTML), no
// page draws a cursor for its own pointer, and each server's log has no sanitizer report
// and it exited with status 0 on SIGTERM. The helpers for all this are in harness.mjs
// (chapter 6), shared with rooms.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
    launchBrowser, cursors, badgeText, eventually, scene, assertClean, moveMouse,
    expectedCursor, waitForCursor, waitForNoCursor, waitForBadge, REPO,
} from './harness.mjs';

const TEST_OPTIONS = { timeout: 90_000 };

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

test('a mouse move in A is drawn in B, at the same fractions of B\'s window, in A\'s colour; A draws no cursor of its own', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    // Different window sizes on purpose: positions must scale, not copy pixels.
    const a = await r.open({ viewport: { width: 1000, height: 700 } });
    const b = await r.open({ viewport: { width: 640, height: 800 } });
    await waitForBadge(b, 'connected', /2 people here/);

    const sent = await moveMouse(a, 250, 350);
    assert.deepEqual(sent, { x: 0.25, y: 0.5 }, 'A sends fractions of its window');
    const drawn = await waitForCursor(b, expectedCursor(b, a.welcome, sent)); // (160, 400)
    assert.equal((await cursors(b.page)).length, 1, 'B draws exactly one cursor');
    assert.ok(drawn.label.length > 0, 'the cursor has a name label');
    assert.deepEqual(await cursors(a.page), [], 'A draws no cursor (B has not moved)');

    // A keeps moving: B's cursor follows to the new place.
    const next = await moveMouse(a, 900, 140);
    await waitForCursor(b, expectedCursor(b, a.welcome, next));
    assert.equal((await cursors(b.page)).length, 1);
    await assertClean(r);
});

test('a page opened later draws everyone already there at once, before anyone moves again (welcome snapshot)', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open({ viewport: { width: 800, height: 600 } });
    await b.page.fill('#name', 'Bea');
    const sentA = await moveMouse(a, 100, 600);
    const sentB = await moveMouse(b, 700, 60);
    assert.equal(sentB.name, 'Bea', 'the typed name travels in the cursor message');
    await waitForCursor(a, expectedCursor(a, b.welcome, sentB));
    await waitForCursor(b, expectedCursor(b, a.welcome, sentA));
    const sentSoFar = a.sent.length + b.sent.length;

    const c = await r.open({ viewport: { width: 1200, height: 500 } });
    const ids = c.welcome.peers.map((p) => p.sender).sort();
    assert.deepEqual(ids, [a.welcome.id, b.welcome.id].sort(), 'the welcome lists A and B');
    await waitForCursor(c, expectedCursor(c, a.welcome, sentA));
    const drawnB = await waitForCursor(c, expectedCursor(c, b.welcome, sentB));
    assert.equal(drawnB.label, 'Bea', 'the name comes with the snapshot');
    assert.equal((await cursors(c.page)).length, 2);
    assert.equal(a.sent.length + b.sent.length, sentSoFar, 'nobody moved again meanwhile');
    await waitForBadge(c, 'connected', /3 people here/);
    await assertClean(r);
});

test('a page that closes disappears from the others', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open();
    const c = await r.open({ viewport: { width: 500, height: 900 } });
    const sentA = await moveMouse(a, 420, 240);
    await waitForCursor(b, expectedCursor(b, a.welcome, sentA));
    await waitForCursor(c, expectedCursor(c, a.welcome, sentA));
    await waitForBadge(b, 'connected', /3 people here/);

    const idA = a.welcome.id;
    await a.close(); // the tab closes: the browser closes its WebSocket
    await waitForNoCursor(b, idA);
    await waitForNoCursor(c, idA);
    await waitForBadge(b, 'connected', /2 people here/);
    await waitForBadge(c, 'connected', /2 people here/);
    await assertClean(r);
});

test('after a server restart the pages reconnect by themselves and cursors flow again', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open({ viewport: { width: 700, height: 700 } });
    const sent = await moveMouse(a, 300, 200);
    await waitForCursor(b, expectedCursor(b, a.welcome, sent));
    const firstIdA = a.welcome.id;

    // Crash the server (SIGKILL: no close frame, as in a real crash), then start a new one
    // on the same port, where the pages will look for it.
    const port = r.server.port;
    await r.server.stop('SIGKILL');
    await waitForBadge(a, 'reconnecting', /reconnecting/);
    await waitForBadge(b, 'reconnecting', /reconnecting/);
    assert.deepEqual(await cursors(b.page), [], 'B drops cursors it can no longer vouch for');

    await r.startServer({ port });
    await waitForBadge(a, 'connected', /2 people here/);
    await waitForBadge(b, 'connected', /2 people here/);
    assert.notEqual(a.welcome.id, firstIdA, 'a new server, a new id');

    // A's pointer is still over its page, so A tells the new server where it is at once,
    // and B draws it again (in A's new colour) before A moves.
    await waitForCursor(b, expectedCursor(b, a.welcome, sent));
    // And cursors flow again.
    const next = await moveMouse(a, 640, 520);
    await waitForCursor(b, expectedCursor(b, a.welcome, next));
    await assertClean(r);
});

test('a name is shown as text, never parsed as HTML', TEST_OPTIONS, async (t) => {
    const NAME = '<img src=x onerror=alert(1)>';
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open();
    await a.page.fill('#name', NAME); // typed into the page's own name field
    const sent = await moveMouse(a, 500, 300);
    assert.equal(sent.name, NAME);

    const drawn = await waitForCursor(b, expectedCursor(b, a.welcome, sent));
    assert.equal(drawn.label, NAME, 'B shows the name exactly as typed');
    const html = await b.page.$eval(`[data-sender="${a.welcome.id}"] .label`, (el) => el.innerHTML);
    assert.equal(html, '&lt;img src=x onerror=alert(1)&gt;', 'the label holds text, no element');

    // And through the welcome snapshot, to a page opened later.
    const c = await r.open();
    const late = await waitForCursor(c, expectedCursor(c, a.welcome, sent));
    assert.equal(late.label, NAME);
    await assertClean(r); // no <img> anywhere, no alert dialog in any page
});

test('touch: a tap places the cursor, and it stays when the finger lifts', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const phone = await r.open({ viewport: { width: 390, height: 700 }, hasTouch: true });
    await phone.page.touchscreen.tap(78, 490); // pointer events of type "touch"
    const sent = await eventually(() => {
        assert.ok(phone.lastSent !== null && 'x' in phone.lastSent, 'the tap sent no position');
        return phone.lastSent;
    });
    assert.deepEqual(sent, { x: 0.2, y: 0.7 });
    await waitForCursor(a, expectedCursor(a, phone.welcome, sent));
    assert.ok('x' in phone.lastSent, 'lifting the finger does not hide the cursor');
    await assertClean(r);
});

test('a resized window moves the cursors with it', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open({ viewport: { width: 1000, height: 700 } });
    const sent = await moveMouse(a, 750, 175);
    await waitForCursor(b, expectedCursor(b, a.welcome, sent));
    await b.page.setViewportSize({ width: 480, height: 800 });
    await waitForCursor(b, expectedCursor(b, a.welcome, sent)); // (360, 200) now
    await assertClean(r);
});

test('a mouse that leaves the window hides its cursor from the others, until it comes back', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const b = await r.open();
    const sent = await moveMouse(a, 300, 300);
    await waitForCursor(b, expectedCursor(b, a.welcome, sent));

    await a.page.mouse.move(-20, 300, { steps: 3 }); // out past the left edge
    await eventually(() => assert.deepEqual(a.lastSent, {}, 'A says it has no position'));
    await waitForNoCursor(b, a.welcome.id);
    assert.match(await badgeText(b.page), /2 people here/, 'A is still counted');
    const c = await r.open(); // the snapshot says "no position" too
    assert.deepEqual(await cursors(c.page), []);

    const back = await moveMouse(a, 100, 650);
    await waitForCursor(b, expectedCursor(b, a.welcome, back));
    await waitForCursor(c, expectedCursor(c, a.welcome, back));
    await assertClean(r);
});

// Records, on every animation frame of `viewer`, where the cursor of `sender` is drawn (its
// x), until stopTrack() returns the list. Only watches: it changes nothing in the page.
async function startTrack(viewer, sender) {
    await viewer.page.evaluate((id) => {
        window.trackedX = [];
        const frame = () => {
            // The cursors live in the shadow root of cursors.js's <wsrelay-cursors> element.
            const layer = document.querySelector('wsrelay-cursors')?.shadowRoot;
            const arrow = layer?.querySelector(`[data-sender="${id}"] svg`) ?? null;
            if (arrow !== null)
                window.trackedX.push(arrow.getBoundingClientRect().left);
            window.trackFrame = requestAnimationFrame(frame);
        };
        frame();
    }, sender);
}

function stopTrack(viewer) {
    return viewer.page.evaluate(() => {
        cancelAnimationFrame(window.trackFrame);
        return window.trackedX;
    });
}

test('remote cursors glide between updates, and jump for a viewer who prefers reduced motion', TEST_OPTIONS, async (t) => {
    const r = await scene(t, browser);
    const a = await r.open();
    const smooth = await r.open();
    const still = await r.open({ reducedMotion: 'reduce' });
    const from = await moveMouse(a, 100, 350);
    for (const viewer of [smooth, still]) {
        await waitForCursor(viewer, expectedCursor(viewer, a.welcome, from));
        await startTrack(viewer, a.welcome.id);
    }

    // One big jump, 800 px in a single event: the page sends one update.
    await a.page.mouse.move(900, 350);
    const to = await eventually(() => {
        assert.equal(a.lastSent.x, 0.9);
        return a.lastSent;
    });
    for (const viewer of [smooth, still])
        await waitForCursor(viewer, expectedCursor(viewer, a.welcome, to));
    const startX = 100;
    const endX = 900; // both viewers are 1000 px wide, like A
    const between = (xs) => xs.filter((x) => x > startX + 1 && x < endX - 1);

    const glided = await stopTrack(smooth);
    assert.ok(between(glided).length > 0,
        `the cursor jumped instead of gliding: ${glided.join(', ')}`);
    const jumped = await stopTrack(still);
    assert.deepEqual(between(jumped), [], 'with reduced motion, no frame in between');
    await assertClean(r);
});

// Issue 14: the page as a web server serves it. `make` leaves www/*.br and www/*.gz beside the
// page's files; Chromium asks for br, so it gets those, and a reload asks again with the
// ETags it kept (Cache-Control: no-cache) and gets 304s, and the page still works. The
// server's --verbose log says what each request got ("status=… file=… coding=…").
test('the page arrives precompressed, a reload revalidates it with 304s, and it still works', TEST_OPTIONS, async (t) => {
    if (!existsSync(join(REPO, 'www', 'index.js.br'))) {
        t.skip('no www/*.br: run make (make precompress) first');
        return;
    }
    const r = await scene(t, browser, { args: ['--verbose'] });
    const served = (status) => r.server.lines
        .filter((l) => l.includes('"file served"') && l.includes(` status=${status} `))
        .map((l) => `${/ file=(\S+)/.exec(l)[1]} ${/ coding=(\S+)/.exec(l)[1]}`);
    const a = await r.open();
    await eventually(() => {
        for (const f of ['index.html', 'index.js', 'cursors.js', 'style.css'])
            assert.ok(served(200).includes(`${f} br`), `${f} not sent as br: ${served(200)}`);
    });
    await a.page.reload();
    await waitForBadge(a, 'connected');
    await eventually(() => {
        for (const f of ['index.html', 'index.js', 'cursors.js', 'style.css'])
            assert.ok(served(304).includes(`${f} br`), `${f} not revalidated: ${served(304)}`);
    });
    const b = await r.open();
    const sentA = await moveMouse(a, 300, 200);
    await waitForCursor(b, expectedCursor(b, a.welcome, sentA));
    await assertClean(r);
});
