// limits.test.mjs - caps on what a client may send (RELIABILITY G1, G2, G5, G6,
// G7): WebSocket messages over 64 KiB close with 1009, 1,000 subscriptions per
// connection, 100 presence members, user_info 1 KB, user_id 128 characters.
import test from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, rawConnect, performance, uniq } from '../lib/harness.mjs';

const gw = await startGateway();

/** A pusher:ping of exactly `size` bytes (padding inside data). */
function pingOfSize(size) {
    const base = JSON.stringify({ event: 'pusher:ping', data: { pad: '' } }).length;
    const text = JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(size - base) } });
    assert.equal(Buffer.byteLength(text), size);
    return text;
}

test('a 65,536-byte message is accepted (pusher:ping answered)', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const from = c.messages.items.length;
    c.sendText(pingOfSize(65536));
    await c.waitFor('pusher:pong', { from });
    assert.ok(c.isOpen);
});

test('a 65,537-byte message closes the connection with 1009', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    c.sendText(pingOfSize(65537));
    const { code } = await c.waitClose(2000);
    assert.equal(code, 1009);
});

test('a 1 MiB frame is closed with 1009 within 1 s and the gateway keeps serving', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const t0 = performance.now();
    c.sendText(pingOfSize(1024 * 1024));
    const { code, at } = await c.waitClose(3000);
    t.diagnostic(`closed after ${Math.round(at - t0)} ms`);
    assert.equal(code, 1009);
    assert.ok(at - t0 < 1000, `took ${at - t0} ms`);
    const probe = await rawConnect(gw, { t });
    await probe.established();
    await probe.barrier();
});

test('a fragmented message growing past 64 KiB is closed with 1009', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const chunk = 'x'.repeat(16 * 1024);
    c.ws.send('{"event":"pusher:ping","data":{"pad":"', { fin: false });
    for (let i = 0; i < 8 && c.isOpen; i++) c.ws.send(chunk, { fin: false });
    if (c.isOpen) c.ws.send('"}}', { fin: true });
    const { code } = await c.waitClose(3000);
    assert.equal(code, 1009);
});

test('1,000 subscriptions on one connection succeed; the 1,001st is refused, connection kept', { timeout: 30000 }, async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const tag = uniq('many');
    const ok = (m) => m.event === 'pusher_internal:subscription_succeeded';
    for (let i = 0; i < 1000; i++) c.send({ event: 'pusher:subscribe', data: { channel: `${tag}-${i}` } });
    const want1000 = (m) => ok(m) && c.messages.count(ok) >= 1000;
    want1000.what = '1,000 subscription_succeeded';
    await c.waitFor(want1000, { timeout: 20000 });
    const extra = await c.subscribe(`${tag}-1000`);
    assert.notEqual(extra.event, 'pusher_internal:subscription_succeeded', extra.text);
    await c.barrier();
    assert.ok(c.isOpen);
    assert.equal(c.messages.count(ok), 1000);
});

test('a presence channel takes 100 members; the 101st gets subscription_error, the others are unaffected', { timeout: 60000 }, async (t) => {
    const ch = uniq('presence-full-');
    const clients = [];
    for (let i = 1; i <= 100; i++) {
        const c = await rawConnect(gw, { t });
        const m = await c.subscribeAuth(ch, { presence: { user_id: `u${i}`, user_info: {} } });
        assert.equal(m.event, 'pusher_internal:subscription_succeeded', `member ${i}: ${m.text}`);
        clients.push(c);
    }
    const last = await rawConnect(gw, { t });
    const m = await last.subscribeAuth(ch, { presence: { user_id: 'u101', user_info: {} } });
    assert.equal(m.event, 'pusher:subscription_error', m.text);
    await last.barrier();
    assert.ok(last.isOpen);
    // A second connection of an existing member is not a new member: accepted.
    const again = await rawConnect(gw, { t });
    const m2 = await again.subscribeAuth(ch, { presence: { user_id: 'u1', user_info: {} } });
    assert.equal(m2.event, 'pusher_internal:subscription_succeeded', m2.text);
    assert.equal(m2.data.presence.count, 100);
    const added = clients[0].messages.filter('pusher_internal:member_added')
        .filter((x) => x.data.user_id === 'u101');
    assert.equal(added.length, 0, 'members never saw the refused user');
});

/** user_info of exactly `size` bytes of compact JSON. */
function infoOfSize(size) {
    const base = JSON.stringify({ n: '' }).length;
    const info = { n: 'i'.repeat(size - base) };
    assert.equal(JSON.stringify(info).length, size);
    return info;
}

test('user_info of 1,024 bytes is accepted, 1,025 refused', async (t) => {
    const ch = uniq('presence-info-');
    const a = await rawConnect(gw, { t });
    const ok = await a.subscribeAuth(ch, { presence: { user_id: 'a', user_info: infoOfSize(1024) } });
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded', ok.text.slice(0, 200));
    const b = await rawConnect(gw, { t });
    const bad = await b.subscribeAuth(ch, { presence: { user_id: 'b', user_info: infoOfSize(1025) } });
    assert.notEqual(bad.event, 'pusher_internal:subscription_succeeded');
    await b.barrier();
});

test('user_id of 128 characters is accepted, 129 refused', async (t) => {
    const ch = uniq('presence-id-');
    const a = await rawConnect(gw, { t });
    const ok = await a.subscribeAuth(ch, { presence: { user_id: 'u'.repeat(128), user_info: {} } });
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded', ok.text);
    const b = await rawConnect(gw, { t });
    const bad = await b.subscribeAuth(ch, { presence: { user_id: 'v'.repeat(129), user_info: {} } });
    assert.notEqual(bad.event, 'pusher_internal:subscription_succeeded', bad.text);
    await b.barrier();
});

test('an empty user_id is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    const m = await c.subscribeAuth(uniq('presence-'), { presence: { user_id: '', user_info: {} } });
    assert.notEqual(m.event, 'pusher_internal:subscription_succeeded', m.text);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
