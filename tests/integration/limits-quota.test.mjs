// limits-quota.test.mjs - connection quotas: an app over its max-connections is
// refused with pusher:error and close 4004 (pusher-js stops), the node over its
// max-connections with 4100 (pusher-js backs off and comes back once there is
// room); the connections already open are unaffected (PROTOCOL.md section 4;
// RELIABILITY P10, G11; issue 3). The per-connection caps (message size,
// subscriptions, presence members, user_info, user id) are in limits.test.mjs,
// the client-event rate (4301) in client-events.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, PusherClient, defaultApps, waitUntil,
} from '../lib/harness.mjs';

const quotaApps = [
    ...defaultApps(),
    { name: 'quota', key: 'quota-key', secret: 'quota-secret', 'max-connections': 3 },
];

/** The Pusher code in a pusher-js connection error: a close code arrives as
 * {type: 'PusherError', data}, a pusher:error message wrapped in a WebSocketError. */
const codeOf = (e) => e?.data?.code ?? e?.error?.data?.code;

/** Opens n raw connections of key and waits for each to be established. */
async function openN(gw, t, n, key) {
    const out = [];
    for (let i = 0; i < n; i++) {
        const c = await rawConnect(gw, { t, key });
        await c.established();
        out.push(c);
    }
    return out;
}

test('app quota: the 4th connection of an app with max-connections 3 gets 4004; the others stay', async (t) => {
    const gw = await startGateway({ apps: quotaApps });
    t.after(() => gw.stop());
    const three = await openN(gw, t, 3, 'quota-key');
    const fourth = await rawConnect(gw, { t, key: 'quota-key' });
    const err = await fourth.waitFor('pusher:error');
    assert.equal(err.data.code, 4004, err.text);
    const { code } = await fourth.waitClose(3000);
    assert.equal(code, 4004);
    for (const c of three) {
        await c.barrier();
        assert.ok(c.isOpen);
    }
    // Other apps are not limited by this app's quota.
    await openN(gw, t, 4, 'app1-key');
    // Room again after one leaves.
    await three[0].close();
    const again = await rawConnect(gw, { t, key: 'quota-key' });
    await again.established();
});

test('pusher-js over the app quota reports 4004 and stays disconnected', async (t) => {
    const gw = await startGateway({ apps: quotaApps });
    t.after(() => gw.stop());
    await openN(gw, t, 3, 'quota-key');
    const c = new PusherClient(gw, { app: 'quota' });
    t.after(() => c.close());
    await c.waitState('disconnected', 3000);
    assert.ok(c.errors.some((e) => codeOf(e) === 4004), JSON.stringify(c.errors));
    assert.ok(!c.states.includes('connected'), `states ${c.states.join(' > ')}`);
});

test('node capacity: with max-connections 4 the 5th connection gets 4100; pusher-js backs off and comes back', async (t) => {
    const gw = await startGateway({ config: { 'max-connections': 4 } });
    t.after(() => gw.stop());
    const four = await openN(gw, t, 4, 'app1-key');
    const fifth = await rawConnect(gw, { t, key: 'noclient-key' });
    const err = await fifth.waitFor('pusher:error');
    assert.equal(err.data.code, 4100, err.text);
    assert.equal((await fifth.waitClose(3000)).code, 4100);
    const js = new PusherClient(gw, {}); // connects on its own
    t.after(() => js.close());
    await waitUntil(() => js.errors.some((e) => codeOf(e) === 4100),
        { timeout: 3000, what: 'pusher-js to see 4100' });
    assert.notEqual(js.state, 'connected');
    await four[0].close();
    // 4100 is "reconnect after a back-off" for pusher-js: it comes back by itself.
    await js.connected(5000);
    for (const c of four.slice(1)) {
        await c.barrier();
        assert.ok(c.isOpen);
    }
});
