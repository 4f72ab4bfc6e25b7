// connection.test.mjs - Pusher protocol 7 connection life: handshake,
// ping/pong, the server's idle ping and 4201, and the close codes a refused
// handshake must carry (PROTOCOL.md sections 1, 4, 5; RELIABILITY P3, P9, P10).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, PusherClient, SOCKET_ID_RE, delay, uniq, okJson,
    performance,
} from '../lib/harness.mjs';

const gw = await startGateway();

test('connection_established carries a socket_id like 123.456 and activity_timeout in seconds', async (t) => {
    const c = await rawConnect(gw, { t });
    const first = await c.waitFor(() => true, { what: 'the first message' });
    assert.equal(first.event, 'pusher:connection_established', 'first message is the handshake');
    assert.equal(typeof first.rawData, 'string', 'data is a JSON-encoded string (double encoding)');
    assert.match(first.data.socket_id, SOCKET_ID_RE);
    assert.equal(first.data.activity_timeout, 120, 'activity_timeout is the configured 120 s');
});

test('pusher-js connects and gets distinct socket ids on two connections', async (t) => {
    const a = await connectClient(gw, { t });
    const b = await connectClient(gw, { t });
    assert.equal(a.state, 'connected');
    assert.match(a.socketId, SOCKET_ID_RE);
    assert.match(b.socketId, SOCKET_ID_RE);
    assert.notEqual(a.socketId, b.socketId);
});

test('pusher:ping is answered by pusher:pong', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const pong = await c.barrier();
    assert.equal(pong.event, 'pusher:pong');
    assert.equal(pong.channel, undefined);
});

test('a WebSocket-level ping is answered by a pong', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    c.ws.ping(Buffer.from('hello'));
    await c.waitFor('(ws pong)');
});

test('the server pings a silent connection and closes it with 4201 when no pong comes', async (t) => {
    // idle-ping 2 s, pong-timeout 2 s: the client answers neither pusher:ping nor
    // WS pings, so the close must come within 2 + 2 s (plus 1.5 s of slack).
    const c = await rawConnect(gw, { t, answerPings: false, autoPong: false });
    await c.established();
    const t0 = performance.now();
    const { code, at } = await c.waitClose(9000);
    const pinged = c.messages.count((m) => m.event === 'pusher:ping' || m.event === '(ws ping)');
    t.diagnostic(`closed ${Math.round(at - t0)} ms after connect, pings seen ${pinged}`);
    assert.ok(pinged >= 1, 'the server pinged before closing');
    assert.equal(code, 4201);
    assert.ok(at - t0 <= 5500, `closed after ${Math.round(at - t0)} ms, want <= 5500`);
});

test('a raw client that answers the server pings stays open over several ping rounds', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    // Three answered pings span at least three idle periods and two pong timeouts.
    const isPing = (m) => m.event === 'pusher:ping' || m.event === '(ws ping)';
    isPing.what = 'a third server ping';
    await c.waitFor((m) => isPing(m) && c.messages.count(isPing) >= 3, { timeout: 15000 });
    assert.ok(c.isOpen, 'still open');
    await c.barrier();
});

test('pusher-js idle for 3 ping rounds is never closed (it answers the pings)', { timeout: 30000 }, async (t) => {
    const c = await connectClient(gw, { t });
    const ch = uniq('idle-');
    const { channel } = await c.subscribe(ch);
    const id = c.socketId;
    const statesBefore = c.states.length;
    // The observation window is the property under test: 3 x (idle-ping + pong-timeout).
    await delay(12000);
    const pings = c.messages.count('pusher:ping');
    t.diagnostic(`pusher:ping seen by pusher-js: ${pings}`);
    assert.deepEqual(c.states.slice(statesBefore), [], 'no state change while idle');
    assert.equal(c.socketId, id, 'same connection');
    const got = new Promise((resolve) => channel.bind('after-idle', resolve));
    await okJson(gw.rest().trigger(ch, 'after-idle', { ok: 1 }));
    assert.deepEqual(await got, { ok: 1 });
});

async function refused(t, opts) {
    const c = await rawConnect(gw, { t, ...opts });
    const { code } = await c.waitClose(3000);
    const err = c.messages.filter('pusher:error')[0];
    return { code, err, c };
}

const closeCases = [
    { what: 'an unknown app key', opts: { key: 'no-such-key' }, code: 4001 },
    { what: 'a disabled app', opts: { key: 'off-key' }, code: 4003 },
    { what: 'a path other than /app/KEY', opts: { path: '/foo' }, code: 4005 },
    { what: 'no protocol parameter', opts: { query: null }, code: 4008 },
    { what: 'protocol=2 (unsupported)', opts: { query: 'protocol=2' }, code: 4007 },
    { what: 'protocol=3 (no longer supported)', opts: { query: 'protocol=3&client=js&version=8.6.0' }, code: 4007 },
    { what: 'protocol=abc (not a number)', opts: { query: 'protocol=abc&client=js&version=8.6.0' }, code: 4006 },
];

for (const k of closeCases) {
    test(`${k.what} is refused with pusher:error ${k.code} and close ${k.code}`, async (t) => {
        const { code, err, c } = await refused(t, k.opts);
        assert.equal(c.messages.count('pusher:connection_established'), 0, 'no handshake');
        assert.ok(err, `a pusher:error before the close; got ${c.messages.summary()}`);
        assert.equal(err.data.code, k.code, 'pusher:error code');
        assert.equal(typeof err.data.message, 'string');
        assert.equal(code, k.code, 'close code');
    });
}

test('pusher-js given an unknown key reports error 4001 and stops (state disconnected)', async (t) => {
    const app = gw.app('app1');
    const c = new PusherClient(gw, { key: 'no-such-key' });
    t.after(() => c.close());
    await c.waitState('disconnected', 5000);
    const codes = c.errors.map((e) => e?.error?.data?.code ?? e?.data?.code);
    assert.ok(codes.includes(4001), `errors seen: ${JSON.stringify(c.errors)}`);
    assert.ok(!c.states.includes('connected'), `states: ${c.states.join(' > ')}`);
    assert.ok(app.key !== 'no-such-key');
});

test('pusher-js on a disabled app reports error 4003 and stops', async (t) => {
    const c = new PusherClient(gw, { app: 'off' });
    t.after(() => c.close());
    await c.waitState('disconnected', 5000);
    const codes = c.errors.map((e) => e?.error?.data?.code ?? e?.data?.code);
    assert.ok(codes.includes(4003), `errors seen: ${JSON.stringify(c.errors)}`);
});

test('invalid JSON and unknown events do not close the connection', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    for (const text of ['not json', '{', 'null', '[]', '"x"', '{"event":7}',
        '{"event":"pusher:subscribe","data":5}', '{"event":"pusher:unsubscribe"}',
        '{"event":"no-such-event","data":{}}']) {
        c.sendText(text);
    }
    c.sendText('['.repeat(10000) + ']'.repeat(10000));
    await c.barrier();
    assert.ok(c.isOpen, 'still open after malformed input');
    const bad = c.messages.filter((m) => m.invalid || m.binary);
    assert.deepEqual(bad, [], 'everything the server sent was a JSON object');
});

test('a binary frame is refused without crashing the gateway', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    c.ws.send(Buffer.from('{"event":"pusher:ping","data":{}}'), { binary: true });
    // Either ignored (then a ping still works) or closed (1003 is RFC 6455's choice).
    const r = await Promise.race([c.closed, c.barrier().then(() => null)]);
    if (r) assert.equal(r.code, 1003, 'a close for a binary frame uses 1003');
    const probe = await rawConnect(gw, { t });
    await probe.established();
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
