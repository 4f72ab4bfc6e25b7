// browser.test.mjs - real pusher-js browser bundles in Debian's chromium
// (headless, playwright-core) against the gateway over ws://: public, private,
// presence and private-encrypted channels, events triggered with the `pusher`
// SDK, auth through the app server's /pusher/auth, client events between tabs.
import test from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, okJson, uniq, SOCKET_ID_RE } from '../lib/harness.mjs';
import {
    startAppServer, launchBrowser, openPage, pageSubscribe, pageEvent,
} from '../lib/browser.mjs';

const gw = await startGateway();
const rest = gw.rest();
const app = await startAppServer(gw);
const browser = await launchBrowser();

test('chromium loads pusher.min.js and connects over ws:// with a valid socket_id', async (t) => {
    const page = await openPage(browser, app, { t });
    const sid = await page.evaluate(() => window.mn.socketId());
    assert.match(sid, SOCKET_ID_RE);
    assert.equal(page.wsUrls.length, 1, JSON.stringify(page.wsUrls));
    assert.ok(page.wsUrls[0].startsWith(`ws://127.0.0.1:${gw.port}/app/app1-key?protocol=7`),
        page.wsUrls[0]);
});

test('browser receives a public event triggered by the SDK', async (t) => {
    const page = await openPage(browser, app, { t });
    const ch = uniq('browser-pub-');
    await pageSubscribe(page, ch);
    await okJson(rest.trigger(ch, 'hello', { from: 'sdk', n: 1 }));
    const e = await pageEvent(page, ch, 'hello');
    assert.deepEqual(e.data, { from: 'sdk', n: 1 });
});

test('browser subscribes to a private channel through /pusher/auth and receives events', async (t) => {
    const page = await openPage(browser, app, { t });
    const ch = uniq('private-browser-');
    await pageSubscribe(page, ch);
    assert.ok(app.requests.includes('POST /pusher/auth'), 'the page asked the app server');
    await okJson(rest.trigger(ch, 'private-news', { p: true }));
    assert.deepEqual((await pageEvent(page, ch, 'private-news')).data, { p: true });
});

test('two browser tabs on a presence channel see each other; events reach both', async (t) => {
    const ch = uniq('presence-browser-');
    const p1 = await openPage(browser, app, { t, user: { id: 'ann', name: 'Ann' } });
    const r1 = await pageSubscribe(p1, ch);
    assert.equal(r1.members.count, 1);
    assert.equal(r1.members.me.id, 'ann');
    const p2 = await openPage(browser, app, { t, user: { id: 'ben', name: 'Ben' } });
    const r2 = await pageSubscribe(p2, ch);
    assert.equal(r2.members.count, 2);
    assert.deepEqual(r2.members.ids, ['ann', 'ben']);
    const added = await pageEvent(p1, ch, 'pusher:member_added');
    assert.deepEqual(added.data, { id: 'ben', info: { name: 'Ben' } });
    const users = await okJson(rest.get({ path: `/channels/${ch}/users` }));
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['ann', 'ben']);
    await okJson(rest.trigger(ch, 'room-news', { r: 1 }));
    await pageEvent(p1, ch, 'room-news');
    await pageEvent(p2, ch, 'room-news');
    await p2.closeContext();
    const removed = await pageEvent(p1, ch, 'pusher:member_removed', 5000);
    assert.equal(removed.data.id, 'ben');
});

test('client events between two browser tabs on a private channel', async (t) => {
    const ch = uniq('private-tabs-');
    const p1 = await openPage(browser, app, { t });
    const p2 = await openPage(browser, app, { t });
    await pageSubscribe(p1, ch);
    await pageSubscribe(p2, ch);
    const sent = await p1.evaluate((c) => window.mn.pusher.channel(c).trigger('client-ping', { x: 1 }), ch);
    assert.equal(sent, true);
    assert.deepEqual((await pageEvent(p2, ch, 'client-ping')).data, { x: 1 });
});

test('private-encrypted: pusher-with-encryption.min.js decrypts what the SDK encrypted', async (t) => {
    const page = await openPage(browser, app, { t, bundle: 'pusher-with-encryption.min.js' });
    const ch = uniq('private-encrypted-browser-');
    await pageSubscribe(page, ch);
    await okJson(rest.trigger(ch, 'sealed', { secret: 'only the browser reads this' }));
    const e = await pageEvent(page, ch, 'sealed');
    assert.deepEqual(e.data, { secret: 'only the browser reads this' });
});

test('browser signs in through /pusher/user-auth and receives sendToUser events', async (t) => {
    const page = await openPage(browser, app, { t, user: { id: 'carol', name: 'Carol' } });
    const r = await page.evaluate(() => window.mn.signin());
    assert.deepEqual(r, { id: 'carol', channel: '#server-to-user-carol' });
    assert.ok(app.requests.includes('POST /pusher/user-auth'), 'the page asked the app server');
    await okJson(rest.sendToUser('carol', 'direct', { just: 'for carol' }));
    const e = await pageEvent(page, '#user', 'direct');
    assert.deepEqual(e.data, { just: 'for carol' });
});

test('browser, app server and gateway stop cleanly (gateway exit 0, no sanitizer report)', async () => {
    await browser.close();
    await app.close();
    await gw.stop();
});
