// cache.test.mjs - cache channels (cache-, private-cache-, private-encrypted-cache-,
// presence-cache-): the last server-triggered event is replayed right after
// subscription_succeeded, else pusher:cache_miss; client events are never cached;
// the entry lives for the app's cache-ttl; GET /channels/{ch}?info=cache reports
// data and ttl (PROTOCOL.md sections 3, 6, 12; issue 3).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, expectStatus, uniq,
    waitUntil, gatewayBin, defaultApps,
} from '../lib/harness.mjs';

const apps = [
    ...defaultApps(),
    { name: 'short', key: 'short-key', secret: 'short-secret', 'cache-ttl': 1 },
];
const gw = await startGateway({ apps });
const rest = gw.rest();

/** The events a raw client got on channel ch, in order (names only). */
function eventsOn(c, ch) {
    return c.messages.filter((m) => m.channel === ch).map((m) => m.event);
}

test('a subscriber gets the last event right after subscription_succeeded', async (t) => {
    const ch = uniq('cache-');
    await okJson(rest.trigger(ch, 'price', { v: 1 }));
    await okJson(rest.trigger(ch, 'price', { v: 2 }));
    const c = await rawConnect(gw, { t });
    await c.established();
    const ok = await c.subscribe(ch);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded', ok.text);
    const ev = await c.waitFor((m) => m.channel === ch && m.event === 'price');
    assert.deepEqual(ev.data, { v: 2 }, 'only the last event is kept');
    await c.barrier();
    assert.deepEqual(eventsOn(c, ch), ['pusher_internal:subscription_succeeded', 'price']);
    await okJson(rest.trigger(ch, 'price', { v: 3 }));
    const live = await c.waitFor((m) => m.channel === ch && m.event === 'price' && m.data.v === 3);
    assert.ok(live);
    assert.deepEqual(eventsOn(c, ch), ['pusher_internal:subscription_succeeded', 'price', 'price']);
});

test('pusher-js on an empty cache channel gets pusher:cache_miss; raw frame has no data', async (t) => {
    const ch = uniq('cache-');
    const c = await connectClient(gw, { t });
    const pch = c.pusher.subscribe(ch);
    const miss = waitForEvent(pch, 'pusher:cache_miss', 2000);
    await miss;
    const raw = await rawConnect(gw, { t });
    await raw.established();
    await raw.subscribe(ch);
    const m = await raw.waitFor('pusher:cache_miss');
    assert.equal(m.text, JSON.stringify({ event: 'pusher:cache_miss', channel: ch }));
});

test('pusher-js receives the cached event through its normal binding', async (t) => {
    const ch = uniq('cache-');
    await okJson(rest.trigger(ch, 'state', { on: true }));
    const c = await connectClient(gw, { t });
    const pch = c.pusher.subscribe(ch);
    const { data } = await waitForEvent(pch, 'state', 2000);
    assert.deepEqual(data, { on: true });
});

for (const prefix of ['cache-', 'private-cache-', 'presence-cache-']) {
    test(`${prefix} channels replay the cached event to pusher-js`, async (t) => {
        const ch = uniq(prefix);
        await okJson(rest.trigger(ch, 'snap', { p: prefix }));
        const c = await connectClient(gw, { t, presence: { user_id: 'u1', user_info: {} } });
        const pch = c.pusher.subscribe(ch);
        const got = waitForEvent(pch, 'snap', 2000);
        assert.deepEqual((await got).data, { p: prefix });
    });
}

test('private-encrypted-cache-: the replayed event is the ciphertext, decrypted by pusher-js', async (t) => {
    const ch = uniq('private-encrypted-cache-');
    await okJson(rest.trigger(ch, 'secret', { msg: 'only for you' }));
    const raw = await rawConnect(gw, { t });
    await raw.established();
    await raw.subscribeAuth(ch);
    const ev = await raw.waitFor('secret');
    assert.ok(ev.data.nonce && ev.data.ciphertext, `opaque ciphertext: ${ev.text}`);
    const c = await connectClient(gw, { t });
    const pch = c.pusher.subscribe(ch);
    const { data } = await waitForEvent(pch, 'secret', 2000);
    assert.deepEqual(data, { msg: 'only for you' });
});

test('client events are never cached', async (t) => {
    const ch = uniq('private-cache-');
    const a = await rawConnect(gw, { t });
    await a.subscribeAuth(ch);
    a.send({ event: 'client-typing', channel: ch, data: { x: 1 } });
    await a.barrier();
    const b = await rawConnect(gw, { t });
    await b.subscribeAuth(ch);
    await b.waitFor('pusher:cache_miss');
    await okJson(rest.trigger(ch, 'server-side', { s: 1 }));
    a.send({ event: 'client-typing', channel: ch, data: { x: 2 } });
    await b.waitFor('client-typing');
    const c = await rawConnect(gw, { t });
    await c.subscribeAuth(ch);
    const replay = await c.waitFor((m) => m.channel === ch && m.event !== 'pusher_internal:subscription_succeeded');
    assert.equal(replay.event, 'server-side', replay.text);
});

test('a trigger to several cache channels caches each; batch_events too', async (t) => {
    const c1 = uniq('cache-');
    const c2 = uniq('cache-');
    const c3 = uniq('cache-');
    await okJson(rest.trigger([c1, c2], 'multi', { m: 1 }));
    await okJson(rest.triggerBatch([{ channel: c3, name: 'batched', data: { b: 1 } }]));
    const c = await rawConnect(gw, { t });
    await c.established();
    for (const [ch, name] of [[c1, 'multi'], [c2, 'multi'], [c3, 'batched']]) {
        await c.subscribe(ch);
        const ev = await c.waitFor((m) => m.channel === ch && m.event === name);
        assert.ok(ev);
    }
});

test('GET /channels/{ch}?info=cache returns {"data":..., "ttl":N} with N <= 1800', async () => {
    const ch = uniq('cache-');
    await okJson(rest.trigger(ch, 'kept', { k: 'v' }));
    const body = await okJson(rest.get({ path: `/channels/${ch}`, params: { info: 'cache' } }));
    assert.equal(body.occupied, false);
    assert.equal(body.cache.data, JSON.stringify({ k: 'v' }));
    assert.ok(body.cache.ttl <= 1800 && body.cache.ttl >= 1795, `ttl ${body.cache.ttl}`);
    const empty = await okJson(rest.get({ path: `/channels/${uniq('cache-')}`, params: { info: 'cache' } }));
    assert.deepEqual(empty, { occupied: false });
    await expectStatus(rest.get({ path: `/channels/${uniq('pub-')}`, params: { info: 'cache' } }), 400);
});

test('cache-ttl 1: the entry expires, then subscribers get pusher:cache_miss', async (t) => {
    const short = gw.rest('short');
    const ch = uniq('cache-');
    await okJson(short.trigger(ch, 'brief', {}));
    const first = await okJson(short.get({ path: `/channels/${ch}`, params: { info: 'cache' } }));
    assert.equal(first.cache.ttl, 1);
    const c = await rawConnect(gw, { t, key: 'short-key' });
    await c.established();
    await c.subscribe(ch);
    await c.waitFor('brief');
    await waitUntil(async () => {
        const b = await okJson(short.get({ path: `/channels/${ch}`, params: { info: 'cache' } }));
        return b.cache === undefined;
    }, { timeout: 3000, every: 100, what: 'the cache entry to expire' });
    const d = await rawConnect(gw, { t, key: 'short-key' });
    await d.established();
    await d.subscribe(ch);
    await d.waitFor('pusher:cache_miss');
});

test('cache-ttl above 1800 is refused by --check-config', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-cache-'));
    const file = path.join(dir, 'c.json');
    const a = { name: 'x', key: 'x-key', secret: 'x-secret', 'cache-ttl': 1801 };
    fs.writeFileSync(file, JSON.stringify({ port: 1, applications: [a] }));
    const r = spawnSync(gatewayBin, ['-c', file, '--check-config'], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /cache-ttl/);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
