// browser-tls.test.mjs - pusher-js in Debian's chromium over wss:// with the
// sample certificate config/test-cert.pem. Chromium trusts exactly that key
// (--ignore-certificate-errors-spki-list with its SPKI hash), not any cert.
import test from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, okJson, uniq, SOCKET_ID_RE } from '../lib/harness.mjs';
import {
    startAppServer, launchBrowser, openPage, pageSubscribe, pageEvent, spkiHash,
} from '../lib/browser.mjs';

const gw = await startGateway({ tls: true });
const rest = gw.rest(); // https, trusting config/test-cert.pem
const app = await startAppServer(gw);
const browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${spkiHash()}`]);

test('chromium connects over wss:// to the gateway\'s TLS port', async (t) => {
    const page = await openPage(browser, app, { t });
    assert.match(await page.evaluate(() => window.mn.socketId()), SOCKET_ID_RE);
    assert.ok(page.wsUrls[0].startsWith(`wss://127.0.0.1:${gw.port}/app/app1-key?`), page.wsUrls[0]);
});

for (const [prefix, bundle] of [
    ['browser-tls-', 'pusher.min.js'],
    ['private-browser-tls-', 'pusher.min.js'],
    ['presence-browser-tls-', 'pusher.min.js'],
    ['private-encrypted-browser-tls-', 'pusher-with-encryption.min.js'],
]) {
    test(`over wss://: ${prefix.replace(/browser-tls-$/, '') || 'public '}channel event reaches the browser`, async (t) => {
        const page = await openPage(browser, app, { t, bundle });
        const ch = uniq(prefix);
        await pageSubscribe(page, ch);
        await okJson(rest.trigger(ch, 'tls-event', { over: 'wss', prefix }));
        assert.deepEqual((await pageEvent(page, ch, 'tls-event')).data, { over: 'wss', prefix });
    });
}

test('browser, app server and gateway stop cleanly (gateway exit 0, no sanitizer report)', async () => {
    await browser.close();
    await app.close();
    await gw.stop();
});
