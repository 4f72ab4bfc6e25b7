// browser-users.test.mjs - issue 3 in Debian's chromium with the real pusher-js
// browser bundles: signed-in tabs of one user all get sendToUser events and are
// all closed by terminateUserConnections (4009, pusher-js stays disconnected)
// while another user's tab stays; a private-encrypted-cache- channel replays
// its cached ciphertext, which pusher-with-encryption.min.js decrypts, and an
// empty cache channel reports pusher:cache_miss.
import test from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, okJson, uniq } from '../lib/harness.mjs';
import {
    startAppServer, launchBrowser, openPage, pageSubscribe, pageEvent, waitUntil,
} from '../lib/browser.mjs';

const gw = await startGateway();
const rest = gw.rest();
const app = await startAppServer(gw);
const browser = await launchBrowser();

async function signedInTab(t, id) {
    const page = await openPage(browser, app, { t, user: { id, name: id } });
    const r = await page.evaluate(() => window.mn.signin());
    assert.deepEqual(r, { id, channel: `#server-to-user-${id}` }, page.problems.join('; '));
    return page;
}

test('two tabs of one user get sendToUser; terminate closes both with 4009, not the other user', async (t) => {
    const dave = uniq('dave-');
    const erin = uniq('erin-');
    const tab1 = await signedInTab(t, dave);
    const tab2 = await signedInTab(t, dave);
    const other = await signedInTab(t, erin);
    await okJson(rest.sendToUser(dave, 'hello', { to: 'dave' }));
    for (const p of [tab1, tab2]) assert.deepEqual((await pageEvent(p, '#user', 'hello')).data, { to: 'dave' });

    const res = await rest.terminateUserConnections(dave);
    assert.equal(res.status, 200);
    for (const p of [tab1, tab2]) {
        await p.waitForFunction(() => window.mn.state() === 'disconnected', null, { timeout: 5000 });
        const errors = await p.evaluate(() => window.mn.errors);
        assert.ok(errors.some((e) => e.includes('4009')), `4009 in ${JSON.stringify(errors)}`);
    }
    assert.equal(await other.evaluate(() => window.mn.state()), 'connected');
    await okJson(rest.sendToUser(erin, 'still-here', {}));
    await pageEvent(other, '#user', 'still-here');
    const log = await other.evaluate(() => window.mn.log.map((e) => e.event));
    assert.ok(!log.includes('hello'), 'erin never saw dave\'s event');
});

test('private-encrypted-cache-: the browser decrypts the replayed cached event, then live ones', async (t) => {
    const ch = uniq('private-encrypted-cache-browser-');
    await okJson(rest.trigger(ch, 'sealed', { n: 1, text: 'cached before you came' }));
    const page = await openPage(browser, app, { t, bundle: 'pusher-with-encryption.min.js' });
    await pageSubscribe(page, ch);
    const replay = await pageEvent(page, ch, 'sealed');
    assert.deepEqual(replay.data, { n: 1, text: 'cached before you came' });
    await okJson(rest.trigger(ch, 'sealed', { n: 2, text: 'live' }));
    await waitUntil(() => page.evaluate(
        (c) => window.mn.log.filter((e) => e.channel === c && e.event === 'sealed').length, ch)
        .then((n) => n === 2), { timeout: 3000, what: 'the live encrypted event' });
    const events = await page.evaluate(
        (c) => window.mn.log.filter((e) => e.channel === c).map((e) => e.event), ch);
    assert.ok(!events.includes('pusher:cache_miss'), JSON.stringify(events));
});

test('an empty cache channel gives the browser pusher:cache_miss', async (t) => {
    const page = await openPage(browser, app, { t, bundle: 'pusher-with-encryption.min.js' });
    for (const ch of [uniq('cache-browser-'), uniq('private-encrypted-cache-browser-')]) {
        await pageSubscribe(page, ch);
        await pageEvent(page, ch, 'pusher:cache_miss');
    }
});

test('browser, app server and gateway stop cleanly (gateway exit 0, no sanitizer report)', async () => {
    await browser.close();
    await app.close();
    await gw.stop();
});
