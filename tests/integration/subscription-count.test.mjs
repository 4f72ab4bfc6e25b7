// subscription-count.test.mjs - pusher_internal:subscription_count for apps with
// subscription-count on: to every subscriber on each change up to 100
// subscribers, at most every 5 s above; never on presence channels; and
// info=subscription_count on the REST endpoints (PROTOCOL.md sections 3, 10, 12;
// issue 3).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, expectStatus, uniq,
    defaultApps, performance,
} from '../lib/harness.mjs';

const apps = [
    ...defaultApps(),
    { name: 'counted', key: 'counted-key', secret: 'counted-secret', 'subscription-count': true },
];
const gw = await startGateway({ apps });
const rest = gw.rest('counted');
const COUNT = 'pusher_internal:subscription_count';

const counts = (c, ch, from = 0) =>
    c.messages.filter((m) => m.event === COUNT && m.channel === ch, from)
        .map((m) => m.data.subscription_count);

test('pusher-js: each subscriber sees the count as others join and leave', async (t) => {
    const ch = uniq('pub-');
    const a = await connectClient(gw, { t, app: 'counted' });
    const { channel: ca } = await a.subscribe(ch);
    const first = await a.messages.waitFor(COUNT);
    assert.equal(first.data.subscription_count, 1);
    const two = waitForEvent(ca, 'pusher:subscription_count', 2000);
    const b = await connectClient(gw, { app: 'counted' });
    await b.subscribe(ch);
    assert.deepEqual((await two).data, { subscription_count: 2 });
    assert.equal(ca.subscriptionCount, 2);
    const one = waitForEvent(ca, 'pusher:subscription_count', 2000);
    b.close();
    assert.deepEqual((await one).data, { subscription_count: 1 });
});

test('raw wire format: {"event":"pusher_internal:subscription_count","channel":ch,"data":"{\\"subscription_count\\":N}"}', async (t) => {
    const ch = uniq('private-');
    const c = await rawConnect(gw, { t, key: 'counted-key' });
    await c.established();
    await c.subscribeAuth(ch, { app: 'counted' });
    const m = await c.waitFor(COUNT);
    assert.equal(m.text, JSON.stringify({ event: COUNT, channel: ch, data: '{"subscription_count":1}' }));
    const i = c.messages.items.indexOf(m);
    const ok = c.messages.items.findIndex((x) => x.event === 'pusher_internal:subscription_succeeded');
    assert.ok(ok < i, 'subscription_succeeded comes first');
});

test('no counts on presence channels, nor for an app without subscription-count', async (t) => {
    const pres = uniq('presence-');
    const c = await rawConnect(gw, { t, key: 'counted-key' });
    await c.established();
    await c.subscribeAuth(pres, { app: 'counted', presence: { user_id: 'p1' } });
    const off = await rawConnect(gw, { t });
    await off.established();
    const pub = uniq('pub-');
    await off.subscribe(pub);
    const off2 = await rawConnect(gw, { t });
    await off2.established();
    await off2.subscribe(pub);
    await c.barrier();
    await off.barrier();
    assert.equal(c.messages.count(COUNT), 0);
    assert.equal(off.messages.count(COUNT), 0);
});

test('REST: info=subscription_count on GET /channels and /channels/{ch}; 400 when the app has it off', async (t) => {
    const ch = uniq('pub-');
    const a = await rawConnect(gw, { t, key: 'counted-key' });
    await a.established();
    await a.subscribe(ch);
    const b = await rawConnect(gw, { t, key: 'counted-key' });
    await b.established();
    await b.subscribe(ch);
    assert.deepEqual(
        await okJson(rest.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } })),
        { occupied: true, subscription_count: 2 });
    const all = await okJson(rest.get({ path: '/channels', params: { info: 'subscription_count' } }));
    assert.deepEqual(all.channels[ch], { subscription_count: 2 });
    await expectStatus(gw.rest().get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } }), 400);
});

test('above 100 subscribers the count is sent at most every 5 s, the latest value', { timeout: 60000 }, async (t) => {
    const ch = uniq('pub-');
    const obs = await rawConnect(gw, { t, key: 'counted-key' });
    await obs.established();
    await obs.subscribe(ch);
    const subs = [];
    for (let i = 0; i < 99; i++) {
        const c = await rawConnect(gw, { t, key: 'counted-key', answerPings: true });
        await c.established();
        await c.subscribe(ch);
        subs.push(c);
    }
    await obs.waitFor((m) => m.event === COUNT && m.data.subscription_count === 100);
    assert.deepEqual(counts(obs, ch), Array.from({ length: 100 }, (_, i) => i + 1),
        'every change up to 100 is sent');
    const sent100 = obs.messages.filter(COUNT).at(-1).at;

    // 101..104 within a moment: one count, of 104, no sooner than 5 s after 100.
    const from = obs.messages.items.length;
    for (let i = 0; i < 4; i++) {
        const c = await rawConnect(gw, { t, key: 'counted-key' });
        await c.established();
        await c.subscribe(ch);
        subs.push(c);
    }
    const m = await obs.waitFor(COUNT, { from, timeout: 8000 });
    const gap = m.at - sent100;
    t.diagnostic(`throttled count ${m.data.subscription_count} after ${gap.toFixed(0)} ms`);
    assert.equal(m.data.subscription_count, 104);
    assert.ok(gap >= 4900, `sent ${gap} ms after the previous one`);
    assert.ok(gap < 5600, `not delayed beyond the 5 s window plus a tick: ${gap} ms`);

    // Dropping back to 100 or below is sent at once again.
    const t0 = performance.now();
    const from2 = obs.messages.items.length;
    for (const c of subs.splice(0, 4)) await c.close();
    await obs.waitFor((x) => x.event === COUNT && x.data.subscription_count === 100,
        { from: from2, timeout: 8000 });
    t.diagnostic(`count back at 100 after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(counts(obs, ch, from2).slice(-1), [100]);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
