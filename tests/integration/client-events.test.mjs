// client-events.test.mjs - client events (PROTOCOL.md section 8; RELIABILITY
// P7, P8): client- names only, private/presence channels only, sender must be
// subscribed, never echoed, user_id added on presence, refused when the app
// disables them, 10 per second per connection (4301), 10 KB data cap.
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, uniq,
} from '../lib/harness.mjs';

const gw = await startGateway();
const rest = gw.rest();

/** Two raw clients subscribed to `ch` (signed when private/presence). */
async function pair(t, ch, { app = 'app1', presence } = {}) {
    const key = gw.app(app).key;
    const a = await rawConnect(gw, { t, key, name: 'sender' });
    const b = await rawConnect(gw, { t, key, name: 'receiver' });
    for (const [c, id] of [[a, 'a'], [b, 'b']]) {
        await c.established();
        const pres = presence ? { user_id: id, user_info: { n: id } } : undefined;
        const m = ch.startsWith('private-') || ch.startsWith('presence-')
            ? await c.subscribeAuth(ch, { app, presence: pres })
            : await c.subscribe(ch);
        assert.equal(m.event, 'pusher_internal:subscription_succeeded', m.text);
    }
    return [a, b];
}

test('pusher-js: a client event on a private channel reaches the other subscriber', async (t) => {
    const ch = uniq('private-chat-');
    const a = await connectClient(gw, { t });
    const b = await connectClient(gw, { t });
    const { channel: ca } = await a.subscribe(ch);
    const { channel: cb } = await b.subscribe(ch);
    const got = waitForEvent(cb, 'client-typing', 1000);
    assert.equal(ca.trigger('client-typing', { who: 'a' }), true);
    const { data } = await got;
    assert.deepEqual(data, { who: 'a' });
});

test('a client event is never echoed to its sender', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch);
    a.send({ event: 'client-hello', channel: ch, data: { n: 1 } });
    await a.barrier(); // an echo would be queued before the pong
    const m = await b.waitFor('client-hello');
    assert.equal(m.channel, ch);
    assert.deepEqual(m.data, { n: 1 });
    assert.equal(a.messages.count('client-hello'), 0, 'sender got 0 copies');
    assert.equal(m.user_id, undefined, 'no user_id on a private channel');
});

test('on a presence channel the server adds the sender\'s user_id', async (t) => {
    const ch = uniq('presence-');
    const [a, b] = await pair(t, ch, { presence: true });
    a.send({ event: 'client-wave', channel: ch, data: 'hi' });
    const m = await b.waitFor('client-wave');
    assert.equal(m.user_id, 'a');
    assert.equal(m.data, 'hi');
    await a.barrier();
    assert.equal(a.messages.count('client-wave'), 0);
});

test('pusher-js on presence gets the sender user_id as metadata', async (t) => {
    const ch = uniq('presence-');
    const a = await connectClient(gw, { t, presence: { user_id: 'alice', user_info: {} } });
    const b = await connectClient(gw, { t, presence: { user_id: 'bob', user_info: {} } });
    const { channel: ca } = await a.subscribe(ch);
    const { channel: cb } = await b.subscribe(ch);
    const got = waitForEvent(cb, 'client-move', 1000);
    ca.trigger('client-move', { x: 3 });
    const { data, metadata } = await got;
    assert.deepEqual(data, { x: 3 });
    assert.equal(metadata.user_id, 'alice');
});

/** Sends a refused event, then a valid one as a marker; returns what b saw. */
async function refusedThenMarker(a, b, ch, bad, markerChannel = ch) {
    const from = a.messages.items.length;
    a.send(bad);
    a.send({ event: 'client-marker', channel: markerChannel, data: {} });
    await b.waitFor('client-marker');
    await a.barrier();
    return { errors: a.messages.filter('pusher:error', from) };
}

test('an event name without the client- prefix is not delivered', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch);
    await refusedThenMarker(a, b, ch, { event: 'server-only', channel: ch, data: {} });
    assert.equal(b.messages.count('server-only'), 0);
    assert.ok(a.isOpen);
});

test('a client event on a public channel is not delivered', async (t) => {
    const pub = uniq('pub-');
    const priv = uniq('private-');
    const [a, b] = await pair(t, pub);
    for (const c of [a, b]) await c.subscribeAuth(priv);
    await refusedThenMarker(a, b, pub, { event: 'client-public', channel: pub, data: {} }, priv);
    assert.equal(b.messages.count('client-public'), 0);
});

test('a client event on a channel the sender has not subscribed to is not delivered', async (t) => {
    const shared = uniq('private-');
    const only = uniq('private-');
    const [a, b] = await pair(t, shared);
    await b.subscribeAuth(only);
    await refusedThenMarker(a, b, only, { event: 'client-sneak', channel: only, data: {} }, shared);
    assert.equal(b.messages.count('client-sneak'), 0);
});

test('after unsubscribing, the sender can no longer send client events there', async (t) => {
    const ch = uniq('private-');
    const mk = uniq('private-');
    const [a, b] = await pair(t, ch);
    for (const c of [a, b]) await c.subscribeAuth(mk);
    a.send({ event: 'pusher:unsubscribe', data: { channel: ch } });
    await refusedThenMarker(a, b, ch, { event: 'client-late', channel: ch, data: {} }, mk);
    assert.equal(b.messages.count('client-late'), 0);
});

test('client events are refused with pusher:error when the app disables them', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch, { app: 'noclient' });
    const from = a.messages.items.length;
    a.send({ event: 'client-nope', channel: ch, data: {} });
    const err = await a.waitFor('pusher:error', { from });
    assert.equal(typeof err.data.message, 'string');
    await okJson(gw.rest('noclient').trigger(ch, 'marker', {}));
    await b.waitFor('marker');
    assert.equal(b.messages.count('client-nope'), 0);
    assert.ok(a.isOpen, 'the connection is kept');
});

test('50 client events at once: at most ~10 delivered, the rest rejected with 4301, connection kept', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch);
    const from = a.messages.items.length;
    for (let i = 0; i < 50; i++) {
        a.send({ event: 'client-burst', channel: ch, data: { i } });
    }
    await a.barrier(); // all 50 processed
    await okJson(rest.trigger(ch, 'marker', {}));
    await b.waitFor('marker');
    const delivered = b.messages.count('client-burst');
    const errors = a.messages.filter('pusher:error', from);
    const e4301 = errors.filter((e) => e.data && e.data.code === 4301);
    t.diagnostic(`delivered ${delivered} of 50, pusher:error 4301 x ${e4301.length}`);
    assert.ok(delivered >= 1, 'some got through');
    assert.ok(delivered <= 11, `delivered ${delivered}, want <= 11`);
    assert.ok(e4301.length >= 1, 'rejections answered with pusher:error 4301');
    assert.ok(a.isOpen, 'the connection stays open');
    assert.equal(a.closeInfo, null);
});

test('client event data of 10 KB is delivered; larger is refused', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch);
    // 10238 characters encode to exactly 10240 bytes of JSON: within the cap
    // whether the gateway counts the string or its encoding.
    a.send({ event: 'client-big', channel: ch, data: 'x'.repeat(10238) });
    const m = await b.waitFor('client-big', { timeout: 2000 });
    assert.equal(m.data.length, 10238);
    const from = a.messages.items.length;
    a.send({ event: 'client-huge', channel: ch, data: 'y'.repeat(10241) });
    a.send({ event: 'client-marker', channel: ch, data: {} });
    await b.waitFor('client-marker');
    await a.barrier();
    assert.equal(b.messages.count('client-huge'), 0, 'over 10 KB not delivered');
    assert.ok(a.messages.count('pusher:error', from) >= 1, 'the sender is told');
    assert.ok(a.isOpen);
});

test('client event names of 200 characters are delivered; 201 are refused', async (t) => {
    const ch = uniq('private-');
    const [a, b] = await pair(t, ch);
    const ok = 'client-' + 'n'.repeat(193);
    const tooLong = 'client-' + 'm'.repeat(194);
    a.send({ event: ok, channel: ch, data: {} });
    await b.waitFor(ok);
    await refusedThenMarker(a, b, ch, { event: tooLong, channel: ch, data: {} });
    assert.equal(b.messages.count(tooLong), 0);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
