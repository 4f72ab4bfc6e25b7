// channels.test.mjs - subscribing to public, private and private-encrypted
// channels with pusher-js and a raw client, signature failures, channel-name
// rules and unsubscribe (PROTOCOL.md sections 3, 6, 11, 14; RELIABILITY P3, G5).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, uniq, MASTER_KEY_B64,
} from '../lib/harness.mjs';

const gw = await startGateway();
const rest = gw.rest();

test('pusher-js subscribes to a public channel within 200 ms and receives a REST event', async (t) => {
    const c = await connectClient(gw, { t });
    const name = uniq('pub-');
    const { channel, ms } = await c.subscribe(name);
    t.diagnostic(`subscription_succeeded after ${ms.toFixed(1)} ms`);
    assert.ok(ms < 200, `subscription_succeeded took ${ms} ms`);
    const got = waitForEvent(channel, 'greeting', 1000);
    await okJson(rest.trigger(name, 'greeting', { hello: 'world', n: 1 }));
    const { data } = await got;
    assert.deepEqual(data, { hello: 'world', n: 1 });
});

test('string data arrives as the same string', async (t) => {
    const c = await connectClient(gw, { t });
    const name = uniq('pub-');
    const { channel } = await c.subscribe(name);
    const got = waitForEvent(channel, 'plain', 1000);
    await okJson(rest.trigger(name, 'plain', 'just text, not JSON'));
    assert.equal((await got).data, 'just text, not JSON');
});

test('raw subscribe to a public channel: subscription_succeeded, then double-encoded events', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const name = uniq('pub-');
    const ok = await c.subscribe(name);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
    assert.equal(ok.channel, name);
    await okJson(rest.trigger(name, 'my-event', { a: [1, 2] }));
    const ev = await c.waitFor('my-event');
    assert.equal(ev.channel, name);
    assert.equal(typeof ev.rawData, 'string', 'data sent as a JSON string');
    assert.deepEqual(ev.data, { a: [1, 2] });
    assert.equal(ev.user_id, undefined, 'no user_id on server events');
});

test('pusher-js subscribes to a private channel signed by the pusher SDK and receives events', async (t) => {
    const c = await connectClient(gw, { t });
    const name = uniq('private-');
    const { channel, ms } = await c.subscribe(name);
    t.diagnostic(`private subscription_succeeded after ${ms.toFixed(1)} ms`);
    const got = waitForEvent(channel, 'secret-news', 1000);
    await okJson(rest.trigger(name, 'secret-news', { x: 1 }));
    assert.deepEqual((await got).data, { x: 1 });
});

test('a private subscription signed with the wrong secret gets pusher:subscription_error and the connection stays', async (t) => {
    const c = await connectClient(gw, { t, authSecret: 'not-the-secret' });
    const err = await c.subscribeFails(uniq('private-'));
    assert.equal(err.type, 'AuthError');
    assert.equal(err.status, 401);
    assert.equal(typeof err.error, 'string');
    assert.equal(c.state, 'connected');
    const name = uniq('pub-');
    const { channel } = await c.subscribe(name);
    const got = waitForEvent(channel, 'still-here', 1000);
    await okJson(rest.trigger(name, 'still-here', {}));
    await got;
});

test('raw: a bad signature answers {"event":"pusher:subscription_error","channel":...,"data":{"type":"AuthError","status":401}}', async (t) => {
    const c = await rawConnect(gw, { t });
    const { socket_id: socketId } = await c.established();
    const name = uniq('private-');
    const sig = '0'.repeat(64);
    const m = await c.subscribe(name, { auth: `app1-key:${sig}` });
    assert.equal(m.event, 'pusher:subscription_error');
    assert.equal(m.channel, name);
    assert.equal(m.data.type, 'AuthError');
    assert.equal(m.data.status, 401);
    assert.equal(typeof m.data.error, 'string');
    assert.ok(socketId);
    await c.barrier();
    assert.ok(c.isOpen);
});

const badAuth = [
    ['no auth field', () => ({})],
    ['an empty auth', () => ({ auth: '' })],
    ['another app key', (good) => ({ auth: good.auth.replace(/^app1-key:/, 'noclient-key:') })],
    ['upper-case hex', (good) => ({ auth: good.auth.replace(/:(.*)$/, (_, h) => ':' + h.toUpperCase()) })],
    ['a truncated signature', (good) => ({ auth: good.auth.slice(0, -1) })],
    ['the signature of another channel', (good, g2) => ({ auth: g2.auth })],
];

for (const [what, make] of badAuth) {
    test(`private subscribe with ${what} is refused and the connection stays open`, async (t) => {
        const c = await rawConnect(gw, { t });
        const { socket_id: sid } = await c.established();
        const name = uniq('private-');
        const good = gw.rest().authorizeChannel(sid, name);
        const other = gw.rest().authorizeChannel(sid, name + 'x');
        const m = await c.subscribe(name, make(good, other));
        assert.notEqual(m.event, 'pusher_internal:subscription_succeeded', `got ${m.text}`);
        assert.ok(m.event === 'pusher:subscription_error' || m.event === 'pusher:error', m.text);
        await c.barrier();
        // Nothing is delivered on the refused channel.
        await okJson(rest.trigger(name, 'leak', {}));
        const pub = uniq('pub-');
        await c.subscribe(pub);
        await okJson(rest.trigger(pub, 'marker', {}));
        await c.waitFor('marker');
        assert.equal(c.messages.count('leak'), 0, 'no event on a refused channel');
    });
}

test('a signature made for another socket_id is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const name = uniq('private-');
    const a = gw.rest().authorizeChannel('1234.1234', name);
    const m = await c.subscribe(name, { auth: a.auth });
    assert.notEqual(m.event, 'pusher_internal:subscription_succeeded');
});

test('private-encrypted: the SDK encrypts, pusher-js decrypts with the shared_secret', async (t) => {
    const c = await connectClient(gw, { t });
    const name = uniq('private-encrypted-');
    const { channel } = await c.subscribe(name);
    const got = waitForEvent(channel, 'sealed', 1000);
    await okJson(rest.trigger(name, 'sealed', { msg: 'for your eyes only' }));
    assert.deepEqual((await got).data, { msg: 'for your eyes only' });
});

test('private-encrypted: the server relays {nonce, ciphertext} opaquely', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const name = uniq('private-encrypted-');
    const ok = await c.subscribeAuth(name);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
    await okJson(rest.trigger(name, 'sealed', { secret: 'plaintext-marker' }));
    const ev = await c.waitFor('sealed');
    assert.equal(typeof ev.data.nonce, 'string');
    assert.equal(typeof ev.data.ciphertext, 'string');
    assert.ok(!ev.text.includes('plaintext-marker'), 'the gateway never sees plaintext');
    assert.ok(MASTER_KEY_B64);
});

test('unsubscribe stops delivery on that channel only', async (t) => {
    const c = await connectClient(gw, { t });
    const gone = uniq('pub-gone-');
    const kept = uniq('pub-kept-');
    const { channel: g } = await c.subscribe(gone);
    const { channel: k } = await c.subscribe(kept);
    const first = waitForEvent(g, 'ev', 1000);
    await okJson(rest.trigger([gone, kept], 'ev', { n: 1 }));
    await first;
    c.pusher.unsubscribe(gone);
    await c.barrier(); // the unsubscribe has been processed
    await okJson(rest.trigger([gone, kept], 'ev', { n: 2 }));
    await k.inbox.waitFor((e) => e.event === 'ev' && e.data.n === 2);
    assert.equal(g.inbox.count((e) => e.event === 'ev' && e.data.n === 2), 0);
    const raw = c.messages.filter((m) => m.event === 'ev' && m.channel === gone);
    assert.equal(raw.length, 1, 'only the event before unsubscribing arrived');
});

test('two subscribers on one channel both receive; a non-subscriber does not', async (t) => {
    const name = uniq('pub-');
    const other = uniq('pub-');
    const a = await connectClient(gw, { t });
    const b = await connectClient(gw, { t });
    const n = await connectClient(gw, { t });
    const { channel: ca } = await a.subscribe(name);
    const { channel: cb } = await b.subscribe(name);
    const { channel: cn } = await n.subscribe(other);
    const ga = waitForEvent(ca, 'fanout', 1000);
    const gb = waitForEvent(cb, 'fanout', 1000);
    await okJson(rest.trigger(name, 'fanout', { v: 1 }));
    await Promise.all([ga, gb]);
    await okJson(rest.trigger(other, 'marker', {}));
    await cn.inbox.waitFor((e) => e.event === 'marker');
    assert.equal(n.messages.count('fanout'), 0);
});

test('subscribing twice to the same channel does not duplicate events', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const name = uniq('pub-');
    await c.subscribe(name);
    c.send({ event: 'pusher:subscribe', data: { channel: name } });
    await c.barrier();
    await okJson(rest.trigger(name, 'once', {}));
    await okJson(rest.trigger(name, 'marker', {}));
    await c.waitFor('marker');
    assert.equal(c.messages.count('once'), 1);
});

test('channel names: 164 characters accepted, 165 refused, connection kept', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const base = uniq('n');
    const n164 = base + 'x'.repeat(164 - base.length);
    const n165 = base + 'y'.repeat(165 - base.length);
    const ok = await c.subscribe(n164);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded', ok.text);
    const bad = await c.subscribe(n165);
    assert.notEqual(bad.event, 'pusher_internal:subscription_succeeded', bad.text);
    await c.barrier();
    assert.ok(c.isOpen);
});

test('every allowed character [A-Za-z0-9_-=@,.;] is accepted in a channel name', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const name = uniq('Az09_-=@,.;');
    const ok = await c.subscribe(name);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded', ok.text);
    await okJson(rest.trigger(name, 'chars', {}));
    await c.waitFor('chars');
});

for (const bad of ['has space', 'slash/y', 'quote"x', 'hash#x', '#server-to-user-1', '', 'ünïcode']) {
    test(`channel name ${JSON.stringify(bad)} is refused with an error, connection kept`, async (t) => {
        const c = await rawConnect(gw, { t });
        await c.established();
        const m = await c.subscribe(bad);
        assert.notEqual(m.event, 'pusher_internal:subscription_succeeded', m.text);
        await c.barrier();
        assert.ok(c.isOpen);
    });
}

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
