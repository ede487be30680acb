// screenshots.mjs: the pictures in docs/ (`make screenshots`, or `node test/e2e/screenshots.mjs`).
//
// Starts wsrelay, lets a few people in (each its own browser context, as in the tests),
// points each one somewhere, and photographs what one more visitor sees: their cursors in
// their colours, with names, and the badge counting everyone. Light, dark and phone-sized.
// Colours are the server's random hues (kept apart, below), so every run gives slightly
// different pictures.

import { join } from 'node:path';
import { REPO, startServer, launchBrowser, openPerson, cursors, eventually } from './harness.mjs';

// Who points where, as fractions of their window (the page's coordinates, docs/page.md).
// null: no typed name, so the page shows the animal derived from the id.
const PEOPLE = [
    { name: 'Ada', at: [0.22, 0.2] },
    { name: 'Grace', at: [0.7, 0.16] },
    { name: null, at: [0.8, 0.66] },
    { name: 'Linus', at: [0.3, 0.68] },
    { name: 'Margaret', at: [0.56, 0.46] },
];

const SHOTS = [
    { file: 'screenshot.png', viewport: { width: 960, height: 600 }, colorScheme: 'light' },
    { file: 'screenshot-dark.png', viewport: { width: 960, height: 600 }, colorScheme: 'dark' },
    { file: 'screenshot-phone.png', viewport: { width: 390, height: 700 }, colorScheme: 'light' },
];

const server = await startServer();
const browser = await launchBrowser();
try {
    // Each person types their name into the page's field, like a visitor would, then moves.
    // Hues are random: for a readable picture, someone who got a hue too close to another's
    // comes in again (a new connection draws a new hue).
    const people = [];
    const hueDistance = (a, b) => Math.min(Math.abs(a - b), 360 - Math.abs(a - b));
    for (const p of PEOPLE) {
        const size = { width: 1000, height: 700 };
        let person;
        for (let tries = 0; ; tries++) {
            person = await openPerson(browser, server.url, { viewport: size });
            const hue = person.welcome.color;
            if (tries === 50 || people.every((q) => hueDistance(q.welcome.color, hue) >= 45))
                break;
            await person.close();
        }
        if (p.name)
            await person.page.fill('#name', p.name);
        await person.page.mouse.move(p.at[0] * size.width, p.at[1] * size.height, { steps: 4 });
        people.push(person);
    }
    for (const shot of SHOTS) {
        const viewer = await openPerson(browser, server.url, shot);
        await viewer.page.fill('#name', 'You');
        // Wait until every cursor is drawn and has stopped gliding.
        await eventually(async () => {
            const before = await cursors(viewer.page);
            await viewer.page.waitForTimeout(300);
            const after = await cursors(viewer.page);
            if (after.length !== PEOPLE.length || JSON.stringify(before) !== JSON.stringify(after))
                throw new Error(`cursors not settled: ${after.length} of ${PEOPLE.length}`);
        });
        await viewer.page.locator('#name').blur();
        const path = join(REPO, 'docs', shot.file);
        await viewer.page.screenshot({ path });
        console.log(`wrote ${path}`);
        await viewer.close();
    }
} finally {
    await browser.close();
    await server.stop();
}
