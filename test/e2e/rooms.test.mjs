// rooms.test.mjs: rooms (issue 11) in a real browser: the page at /r/<room>, its room bar,
// refused places, and cursors.js embedded in a page of another origin.
//
//     node --test test/e2e/rooms.test.mjs     (WSRELAY_BIN picks the binary, default ./wsrelay)
//
// Same rules as page.test.mjs (harness.mjs): each test starts its own wsrelay on a free
// loopback port, every person is a browser context of their own, every wait polls with a
// generous timeout, and every test ends with assertClean(). The contract tested here is
// docs/protocol.md ("Rooms", close codes 4001 and 4002), docs/page.md and docs/embed.md.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
    REPO, HOST, WS_SCHEME, httpGet, launchBrowser, cursors, badgeText, eventually, scene,
    assertClean, moveMouse, expectedCursor, waitForCursor, waitForNoCursor, waitForBadge,
} from './harness.mjs';

const TEST_OPTIONS = { timeout: 90_000 };

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

// What the page shows as its room's name.
function shownRoom(person) {
    return person.page.$eval('#room-link', (el) => el.textContent);
}

// Every message `person` received that was caused by one of `others` (their cursor, join
// or leave): must stay empty when they are in another room.
function heardFrom(person, others) {
    const ids = new Set(others.map((o) => o.welcome.id));
    return person.received.filter((m) => ids.has(m.sender) ||
        (m.type === 'welcome' && (m.peers ?? []).some((p) => ids.has(p.sender))));
}

// ---------------------------------------------------------------------------------------
// The page in rooms
// ---------------------------------------------------------------------------------------

test('index.html loads everything by absolute URL, since it is also served at /r/<room>', async () => {
    const html = await readFile(join(REPO, 'www', 'index.html'), 'utf8');
    const urls = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    assert.ok(urls.length >= 4, `too few URLs found: ${urls}`); // icon, css, preload, script
    for (const url of urls)
        assert.match(url, /^\/(?!\/)/, `a URL in index.html is not absolute: ${url}`);
});

test('pages in one room see each other, and never a cursor from another room; the default room is a room of its own', TEST_OPTIONS, async (t) => {
    const s = await scene(t, browser);
    const a1 = await s.open({ path: '/r/room-A' });
    const a2 = await s.open({ path: '/r/room-A', viewport: { width: 800, height: 600 } });
    const b1 = await s.open({ path: '/r/room-B' });
    const b2 = await s.open({ path: '/r/room-B' });
    const d = await s.open({ path: '/' });

    // Each page joined its own room, and says which.
    assert.match(a1.sockets[0], /\/ws\/room-A$/);
    assert.match(d.sockets[0], /\/ws$/);
    assert.equal(a1.welcome.room, 'room-A');
    assert.equal(b1.welcome.room, 'room-B');
    assert.equal(d.welcome.room, '', 'the default room is ""');
    assert.equal(await shownRoom(a2), 'room-A');
    assert.equal(await shownRoom(b2), 'room-B');
    assert.equal(await shownRoom(d), 'default room');
    await waitForBadge(a1, 'connected', /2 people here/);
    await waitForBadge(b1, 'connected', /2 people here/);
    await waitForBadge(d, 'connected', /only you here/);

    // Room B and the default room move first, and are seen in their own room.
    const sentB = await moveMouse(b1, 200, 200);
    await moveMouse(d, 300, 300);
    await waitForCursor(b2, expectedCursor(b2, b1.welcome, sentB));
    // Then room A. The server relays from one loop, so once b2 holds b1's cursor, any copy
    // of it meant (wrongly) for room A was queued to a1 and a2 already, ahead of a1's move:
    // when a2 draws a1's move below, a leak would have arrived before it.
    const sentA = await moveMouse(a1, 700, 100);
    await waitForCursor(a2, expectedCursor(a2, a1.welcome, sentA));
    const sentB2 = await moveMouse(b2, 100, 600); // and the same the other way round
    await waitForCursor(b1, expectedCursor(b1, b2.welcome, sentB2));

    for (const p of [a1, a2]) {
        assert.deepEqual(heardFrom(p, [b1, b2, d]), [], 'room A heard from another room');
        assert.ok((await cursors(p.page)).every((c) => c.sender === a1.welcome.id));
    }
    for (const p of [b1, b2])
        assert.deepEqual(heardFrom(p, [a1, a2, d]), [], 'room B heard from another room');
    assert.deepEqual(heardFrom(d, [a1, a2, b1, b2]), [], 'the default room heard from a room');
    assert.deepEqual(await cursors(d.page), []);
    assert.match(await badgeText(d.page), /only you here/);
    await assertClean(s);
});

test('"New room" opens /r/<a random name>, shows that name, and whoever opens its link is in it', TEST_OPTIONS, async (t) => {
    const s = await scene(t, browser);
    const first = await s.open({ path: '/' });
    await first.page.click('#new-room');
    await first.page.waitForURL(/\/r\//);
    const path = new URL(first.page.url()).pathname;
    // 16 random bytes in base64url without padding: 22 characters.
    const m = /^\/r\/([A-Za-z0-9_-]{22})$/.exec(path);
    assert.ok(m !== null, `not a new room's path: ${path}`);
    const name = m[1];
    await waitForBadge(first, 'connected', /only you here/);
    await eventually(() => assert.equal(first.welcome.room, name, 'the server chose the room'));
    assert.match(first.sockets.at(-1), new RegExp(`/ws/${name}$`));
    assert.equal(await shownRoom(first), name);
    assert.equal(await first.page.$eval('#room-link', (el) => el.href),
        `${s.server.url}r/${name}`);

    // A second person clicking "New room" gets another room.
    const other = await s.open({ path: '/' });
    await other.page.click('#new-room');
    await other.page.waitForURL(/\/r\//);
    assert.notEqual(new URL(other.page.url()).pathname, path, 'two new rooms, one name');

    // Someone opening the link sees the first person (and nobody from the default room).
    const lobby = await s.open({ path: '/' });
    await moveMouse(lobby, 50, 50);
    const second = await s.open({ url: `${s.server.url}r/${name}` });
    await waitForBadge(second, 'connected', /2 people here/);
    const sent = await moveMouse(first, 400, 300);
    await waitForCursor(second, expectedCursor(second, first.welcome, sent));
    assert.equal((await cursors(second.page)).length, 1);
    await assertClean(s);
});

test('"Copy link" puts the room\'s link on the clipboard, or else shows it selected', TEST_OPTIONS, async (t) => {
    const s = await scene(t, browser);
    const clip = ['clipboard-read', 'clipboard-write'];
    const a = await s.open({ path: '/r/copy.me~1', permissions: clip });
    await a.page.click('#copy-link');
    await eventually(async () => assert.equal(
        await a.page.$eval('#copy-status', (el) => el.textContent), 'Link copied'));
    assert.equal(await a.page.evaluate(() => navigator.clipboard.readText()),
        `${s.server.url}r/copy.me~1`);

    // The default room's link is the server's root.
    const d = await s.open({ path: '/', permissions: clip });
    await d.page.click('#copy-link');
    await eventually(async () => assert.equal(
        await d.page.evaluate(() => navigator.clipboard.readText()), s.server.url));

    // A browser that will not copy (no permission, or a plain-http page on the network):
    // the page shows the link in a field, selected, ready for Ctrl+C.
    const refused = await s.open({ path: '/r/no-clipboard' });
    await refused.page.evaluate(() => {
        navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied'));
    });
    await refused.page.click('#copy-link');
    const field = await eventually(async () => {
        const f = await refused.page.$eval('#link-field', (el) => ({
            hidden: el.hidden, value: el.value, focused: document.activeElement === el,
            selected: el.value.slice(el.selectionStart, el.selectionEnd),
        }));
        assert.equal(f.hidden, false, 'the link field is shown');
        return f;
    });
    assert.equal(field.value, `${s.server.url}r/no-clipboard`);
    assert.ok(field.focused, 'the link field has the focus');
    assert.equal(field.selected, field.value, 'the whole link is selected');
    assert.match(await refused.page.$eval('#copy-status', (el) => el.textContent),
        /Press (Ctrl|⌘)\+?C to copy/);
    await assertClean(s);
});

// ---------------------------------------------------------------------------------------
// Refused places: close 4001 and 4002
// ---------------------------------------------------------------------------------------

// The page shows why, and does not come back in a tight loop: after a drop the normal
// backoff would retry within 1 s, so three seconds without a new socket prove the
// slow retry. (Not "one single socket": against a server without wsrelay.batch the page's
// first attempt, which offers it, fails and is followed at once by one that does not;
// docs/page.md, "Batched frames".)
async function assertRefused(person, { state, code, badge, notice }) {
    await waitForBadge(person, state, badge);
    assert.equal(person.welcome, null, 'a refused page gets no welcome');
    const shown = await person.page.$eval('#notice', (el) => ({
        hidden: el.hidden, text: el.textContent, role: el.getAttribute('role') }));
    assert.equal(shown.hidden, false, 'the notice is shown');
    assert.equal(shown.role, 'alert', 'and read out by screen readers');
    assert.match(shown.text, notice);
    // The badge's tooltip has the close code and the time until the next try.
    const title = await person.page.$eval('#status', (el) => el.title);
    assert.match(title, new RegExp(`^closed: ${code} `), title);
    const wait = Number(/next try in (\d+) s/.exec(title)?.[1]);
    assert.ok(wait >= 30 && wait <= 60, `the page retries in ${wait} s, not 30-60 s`);
    const socketsBefore = person.sockets.length;
    await person.page.waitForTimeout(3000);
    assert.equal(person.sockets.length, socketsBefore, `the page reconnected: ${person.sockets}`);
    assert.equal(await person.page.$eval('#status', (el) => el.dataset.state), state);
    assert.deepEqual(await cursors(person.page), []);
}

test('a full room: the newcomer is told "room is full" and does not retry in a tight loop; other rooms still open', TEST_OPTIONS, async (t) => {
    const s = await scene(t, browser, { args: ['--max-room-clients', '1'] });
    const a = await s.open({ path: '/r/tiny' });
    const b = await s.open({ path: '/r/tiny', until: 'full' });
    await assertRefused(b, {
        state: 'full', code: 4001, badge: /room is full/, notice: /This room is full/,
    });
    assert.match(await badgeText(a.page), /only you here/, 'the refused page was never counted');
    // The limit is per room: another room, and the default one, still take people.
    await s.open({ path: '/r/roomy' });
    await s.open({ path: '/' });
    await assertClean(s);
});

test('too many rooms: the page says so and does not retry in a tight loop', TEST_OPTIONS, async (t) => {
    const s = await scene(t, browser, { args: ['--max-rooms', '1'] });
    const a = await s.open({ path: '/r/one' });
    const b = await s.open({ path: '/r/two', until: 'too-many-rooms' });
    await assertRefused(b, {
        state: 'too-many-rooms', code: 4002, badge: /too many rooms/,
        notice: /as many rooms open as it allows/,
    });
    await s.open({ path: '/r/one' }); // the room that is open still takes people
    await waitForBadge(a, 'connected', /2 people here/);
    await assertClean(s);
});

// ---------------------------------------------------------------------------------------
// cursors.js on a page of another origin
// ---------------------------------------------------------------------------------------

// A host page as another site would write it, with CSS that would wreck an overlay that
// is not protected from it: margins and pointer events on everything, fonts and spacing
// inherited. It imports cursors.js from the wsrelay (so the module must find its server
// from import.meta.url), reports the module's status in #status (the badge the harness
// reads) and counts clicks on a button under the cursors. It is served with a strict
// Content-Security-Policy (hostPolicy), as careful sites are: only its own nonce'd <style>
// and <script>, the module and the WebSocket are allowed, so the test also proves that
// cursors.js needs no 'unsafe-inline' for its styles (docs/embed.md).
const NONCE = 'e2e-nonce';

function hostPolicy(wsrelayUrl) {
    // Any loopback port for the WebSocket: one test points the module at a second wsrelay.
    return `default-src 'none'; img-src data:; style-src 'nonce-${NONCE}'; ` +
        `script-src 'nonce-${NONCE}' ${wsrelayUrl}cursors.js; connect-src ${WS_SCHEME}://${HOST}:*`;
}

function hostPage(wsrelayUrl) {
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>A site that embeds cursors</title>
<link rel="icon" href="data:,">
<style nonce="${NONCE}">
  * { margin: 9px; padding: 3px; pointer-events: auto !important; }
  div, span, svg, path { all: unset; fill: red; font-size: 40px; }
  body { font: 30px/3 serif; letter-spacing: 5px; transform: none; }
  #target { position: fixed; left: 300px; top: 200px; width: 300px; height: 200px; }
</style>
</head>
<body>
<p id="status" data-state="loading">loading</p>
<button id="target" type="button">clicked <span id="clicks">0</span> times</button>
<script type="module" nonce="${NONCE}">
  import { shareCursors } from '${wsrelayUrl}cursors.js';
  const params = new URLSearchParams(location.search);
  const status = document.getElementById('status');
  window.cursors = shareCursors({
    room: params.get('room') ?? '',
    name: params.get('name') ?? undefined,
    server: params.get('server') ?? undefined,
    onStatus(s) {
      status.dataset.state = s.state;
      status.textContent = s.state + ' ' + s.people;
    },
  });
  const clicks = document.getElementById('clicks');
  document.getElementById('target').addEventListener('click', () => {
    clicks.textContent = String(Number(clicks.textContent) + 1);
  });
</script>
</body>
</html>
`;
}

// A static server on another loopback port: another origin. Serves hostPage() at / once
// `wsrelayUrl` is known. Closed after the test.
async function startHostSite(t) {
    const site = { wsrelayUrl: null, origin: null };
    const http = createServer((req, res) => {
        if (new URL(req.url, 'http://x').pathname !== '/' || site.wsrelayUrl === null) {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8',
            'Content-Security-Policy': hostPolicy(site.wsrelayUrl) });
        res.end(hostPage(site.wsrelayUrl));
    });
    http.listen(0, HOST);
    await once(http, 'listening');
    site.origin = `http://${HOST}:${http.address().port}`;
    t.after(() => new Promise((resolve) => {
        http.closeAllConnections();
        http.close(resolve);
    }));
    return site;
}

test('cursors.js on a page of another origin: two such pages see each other, and the host page keeps working', TEST_OPTIONS, async (t) => {
    const site = await startHostSite(t);
    const s = await scene(t, browser, { args: ['--allow-origin', site.origin] });
    site.wsrelayUrl = s.server.url;

    // The module itself is served with the CORS header a cross-origin import needs.
    const res = await httpGet(`${s.server.url}cursors.js`, { headers: { Origin: site.origin } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], site.origin);
    assert.match(res.headers.vary ?? '', /\bOrigin\b/i);
    assert.match(res.headers['content-type'] ?? '', /javascript/);

    const one = await s.open({ url: `${site.origin}/?room=embed&name=Embedded%20One` });
    const two = await s.open({ url: `${site.origin}/?room=embed`,
        viewport: { width: 900, height: 600 } });
    // No `server` option: the module talked to where it came from, not to the page's origin.
    assert.equal(one.sockets[0], `${WS_SCHEME}://${HOST}:${s.server.port}/ws/embed`);
    assert.equal(one.welcome.room, 'embed');
    await eventually(async () => assert.equal(
        await two.page.$eval('#status', (el) => el.textContent), 'connected 2'));

    // One points at the middle of the button; two draws it there, unharmed by the host's
    // CSS (a margin on the overlay would shift it; fill: red would paint it red).
    const sent = await moveMouse(one, 450, 300);
    const drawn = await waitForCursor(two, expectedCursor(two, one.welcome, sent));
    assert.equal(drawn.label, 'Embedded One', 'the name option travels');
    const sentTwo = await moveMouse(two, 100, 500);
    await waitForCursor(one, expectedCursor(one, two.welcome, sentTwo));

    // The overlay never takes a click: one clicks exactly where two's cursor is drawn over
    // the button (at two's fractions of one's window), and the button gets the click.
    const under = expectedCursor(one, two.welcome, { x: 0.5, y: 0.5 });
    await moveMouse(two, 450, 300);
    await waitForCursor(one, under);
    await one.page.mouse.click(under.x + 3, under.y + 3);
    await eventually(async () => assert.equal(
        await one.page.$eval('#clicks', (el) => el.textContent), '1'));

    // What the module added to the host page: one element, and no style sheet of its own.
    const added = await one.page.evaluate(() => ({
        tags: [...document.body.children].map((el) => el.localName),
        sheets: document.styleSheets.length,
        adopted: document.adoptedStyleSheets.length,
        overlay: getComputedStyle(document.querySelector('wsrelay-cursors')).pointerEvents,
    }));
    assert.deepEqual(added, { tags: ['p', 'button', 'script', 'wsrelay-cursors'], sheets: 1,
        adopted: 0, overlay: 'none' });

    // stop(): the element goes, the socket closes (two sees one leave), the status says so.
    const socketsBefore = one.sockets.length;
    await one.page.evaluate(() => window.cursors.stop());
    assert.equal(await one.page.$eval('#status', (el) => el.dataset.state), 'stopped');
    assert.equal(await one.page.locator('wsrelay-cursors').count(), 0);
    await waitForNoCursor(two, one.welcome.id);
    await eventually(async () => assert.equal(
        await two.page.$eval('#status', (el) => el.textContent), 'connected 1'));
    // And it sends nothing more when the pointer moves.
    const sentBefore = one.sent.length;
    await one.page.mouse.move(10, 10, { steps: 3 });
    await one.page.waitForTimeout(300);
    assert.equal(one.sent.length, sentBefore);
    assert.equal(one.sockets.length, socketsBefore, 'no reconnection after stop()');
    await assertClean(s);
});

test('cursors.js: the server option picks another wsrelay than the one it came from; a bad room name throws', TEST_OPTIONS, async (t) => {
    const site = await startHostSite(t);
    const s = await scene(t, browser, { args: ['--allow-origin', site.origin] });
    const origin = s.server;                    // serves cursors.js
    site.wsrelayUrl = origin.url;
    const other = await s.startServer();        // a second, separate wsrelay
    const otherBase = other.url.replace(/\/$/, '');

    const viaOther = `${site.origin}/?room=elsewhere&server=${encodeURIComponent(otherBase)}`;
    const a = await s.open({ url: viaOther });
    const b = await s.open({ url: viaOther });
    const c = await s.open({ url: `${site.origin}/?room=elsewhere` }); // no option: origin's
    assert.equal(a.sockets[0], `${WS_SCHEME}://${HOST}:${other.port}/ws/elsewhere`);
    assert.equal(c.sockets[0], `${WS_SCHEME}://${HOST}:${origin.port}/ws/elsewhere`);
    const sent = await moveMouse(a, 200, 100);
    await waitForCursor(b, expectedCursor(b, a.welcome, sent));
    // Same room name, other server: c is alone there, and hears nothing of a and b.
    await moveMouse(c, 300, 300);
    assert.equal((await c.page.$eval('#status', (el) => el.textContent)), 'connected 1');
    assert.equal((await b.page.$eval('#status', (el) => el.textContent)), 'connected 2');
    assert.deepEqual(heardFrom(c, [a, b]), []);

    // Mistakes in the options throw at once instead of connecting to something refused.
    const thrown = await a.page.evaluate(async (moduleUrl) => {
        const { shareCursors } = await import(moduleUrl);
        const attempt = (options) => {
            try {
                shareCursors(options).stop();
                return 'no error';
            } catch (err) {
                return err.name;
            }
        };
        return [{ room: 'a/b' }, { room: '..' }, { room: 'x'.repeat(65) }, { room: '%41' },
            { server: 'ftp://example.com' }].map(attempt);
    }, `${origin.url}cursors.js`);
    assert.deepEqual(thrown, Array(5).fill('TypeError'));
    assert.equal(await a.page.locator('wsrelay-cursors').count(), 1, 'no overlay left behind');
    await assertClean(s);
});
