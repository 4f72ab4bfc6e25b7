// authorized-connections.test.mjs - apps with authorized-connections: a
// connection that neither signs in nor joins a private or presence channel
// within authorization-timeout seconds (1 here) is closed with 4009; pusher-js
// then stays disconnected (PROTOCOL.md sections 4, 9; RELIABILITY G10; issue 3).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, uniq, defaultApps, performance,
} from '../lib/harness.mjs';
import { rawSignin } from '../lib/signin.mjs';

const apps = [
    ...defaultApps(),
    {
        name: 'authz', key: 'authz-key', secret: 'authz-secret',
        'authorized-connections': true, 'authorization-timeout': 1,
    },
];
const gw = await startGateway({ apps });

test('an idle connection is closed with 4009 after the timeout (1 s)', async (t) => {
    const t0 = performance.now();
    const c = await rawConnect(gw, { t, key: 'authz-key' });
    await c.established();
    const { code, reason, at } = await c.waitClose(4000);
    const ms = at - t0;
    t.diagnostic(`closed after ${ms.toFixed(0)} ms: ${code} ${reason}`);
    assert.equal(code, 4009);
    assert.ok(ms >= 1000 && ms < 1800, `closed after ${ms} ms`);
});

test('pusher-js that never authorizes is closed with 4009 and stays disconnected', async (t) => {
    const c = await connectClient(gw, { t, app: 'authz' });
    await c.waitState('disconnected', 4000);
    assert.ok(c.errors.some((e) => e.data && e.data.code === 4009),
        `error 4009: ${JSON.stringify(c.errors)}`);
});

test('signing in, or joining a private or presence channel, in time keeps the connection', async (t) => {
    const idle = await rawConnect(gw, { t, key: 'authz-key' });
    const publicOnly = await rawConnect(gw, { t, key: 'authz-key' });
    const signed = await rawConnect(gw, { t, key: 'authz-key' });
    const priv = await rawConnect(gw, { t, key: 'authz-key' });
    const pres = await rawConnect(gw, { t, key: 'authz-key' });
    const otherApp = await rawConnect(gw, { t });
    for (const c of [idle, publicOnly, signed, priv, pres, otherApp]) await c.established();
    await publicOnly.subscribe(uniq('pub-'));
    assert.equal((await rawSignin(signed, { id: 'ok' }, { app: 'authz' })).event,
        'pusher:signin_success');
    assert.equal((await priv.subscribeAuth(uniq('private-'), { app: 'authz' })).event,
        'pusher_internal:subscription_succeeded');
    assert.equal((await pres.subscribeAuth(uniq('presence-'),
        { app: 'authz', presence: { user_id: 'p' } })).event,
    'pusher_internal:subscription_succeeded');
    // Both unauthorized ones go at the same deadline; the rest stay.
    assert.equal((await idle.waitClose(4000)).code, 4009);
    assert.equal((await publicOnly.waitClose(2000)).code, 4009, 'a public channel does not authorize');
    for (const c of [signed, priv, pres, otherApp]) {
        await c.barrier();
        assert.ok(c.isOpen, `${c.name} still open`);
    }
});

test('a refused sign-in does not authorize the connection', async (t) => {
    const c = await rawConnect(gw, { t, key: 'authz-key' });
    const m = await rawSignin(c, { id: 'x' }, { app: 'authz', secret: 'wrong' });
    assert.equal(m.event, 'pusher:error');
    assert.equal((await c.waitClose(4000)).code, 4009);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
