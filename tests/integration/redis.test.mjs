// redis.test.mjs - distributed mode over a plain Redis (issue 5, first
// increment; RELIABILITY S5): two gateways on one real redis-server (database
// 1, config/sample-redis-test.json's shape), pusher-js on each, the `pusher`
// library triggering through either; subscription_succeeded only once Redis
// subscribed (an event from the other gateway right after it is never
// missed); socket_id exclusion, client events and
// sendToUser across gateways; Redis hung (a trigger's 503 within 1.2 s, its
// own deadline); Redis stopped (503 within 1 s, clients stay) and started
// again (delivery resumes within 2 s); redis.give-up (exit 75).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import {
    startGateway, connectClient, waitForEvent, okJson, uniq, waitUntil, performance,
    SANITIZER_RE, freePort,
} from '../lib/harness.mjs';
import {
    startRedis, gatewayPair, clientsOnBoth, deliveredAgain, subscribedIn,
} from '../lib/redis.mjs';
import { signedInClient, userChannelReady } from '../lib/signin.mjs';

const redis = await startRedis();
const redisConfig = { redis: { address: `127.0.0.1:${redis.port}`, database: 1 } };
const [gw1, gw2] = await gatewayPair(test, redisConfig, redis);
const rest1 = gw1.rest();
const rest2 = gw2.rest();

/** Resolves once `n` gateways subscribe to channel `ch` of app1 in Redis. */
const subscribedInRedis = (ch, n = 2) => subscribedIn(redis.port, ch, n);

/** pusher-js on each gateway subscribed to ch, both gateways subscribed in Redis. */
const clientsOnGateways = (t, ch) => clientsOnBoth(t, [gw1, gw2], ch, redis.port);

test('a trigger through either gateway reaches pusher-js on both', async (t) => {
    const ch = uniq('news-');
    const { ca, cb } = await clientsOnGateways(t, ch);
    for (const [rest, n] of [[rest1, 1], [rest2, 2]]) {
        const got = [waitForEvent(ca, 'ev', 2000), waitForEvent(cb, 'ev', 2000)];
        await okJson(rest.trigger(ch, 'ev', { n }));
        for (const g of got) assert.deepEqual((await g).data, { n });
    }
});

test('a gateway subscribes in Redis only while it has local subscribers', async (t) => {
    const ch = uniq('only-');
    const a = await connectClient(gw1, { t });
    await a.subscribe(ch);
    await subscribedInRedis(ch, 1);
    a.pusher.unsubscribe(ch);
    await subscribedInRedis(ch, 0);
});

test('socket_id exclusion works across gateways', async (t) => {
    const ch = uniq('excl-');
    const { a, ca, cb } = await clientsOnGateways(t, ch);
    const gotB = waitForEvent(cb, 'first', 2000);
    await okJson(rest2.trigger(ch, 'first', { n: 1 }, { socket_id: a.socketId }));
    assert.deepEqual((await gotB).data, { n: 1 });
    // A marker without exclusion: once a has it, a would have had `first` before.
    const marker = waitForEvent(ca, 'marker', 2000);
    await okJson(rest2.trigger(ch, 'marker', {}));
    await marker;
    assert.equal(ca.inbox.count('first'), 0, 'the excluded socket got the event');
});

test('client events cross gateways', async (t) => {
    const ch = uniq('private-chat-');
    const { ca, cb } = await clientsOnGateways(t, ch);
    const got = waitForEvent(cb, 'client-typing', 2000);
    assert.equal(ca.trigger('client-typing', { who: 'a' }), true);
    assert.deepEqual((await got).data, { who: 'a' });
});

test('sendToUser through one gateway reaches the user signed in on the other', async (t) => {
    const id = uniq('u-');
    const c = await signedInClient(gw2, { id }, { t });
    await userChannelReady(c);
    await subscribedInRedis(`#server-to-user-${id}`, 1);
    const got = new Promise((resolve) => c.pusher.user.bind('notice', resolve));
    await okJson(rest1.sendToUser(id, 'notice', { text: 'hi' }));
    assert.deepEqual(await got, { text: 'hi' });
});

/** A TCP proxy to Redis that delays what the gateway sends by `ms` (order
 * kept), so its SUBSCRIBE lands after a publish from another gateway would. */
async function slowProxy(ms) {
    const port = await freePort();
    const socks = new Set();
    const server = net.createServer((down) => {
        const up = net.connect(redis.port, '127.0.0.1');
        socks.add(down).add(up);
        down.on('data', (d) => setTimeout(() => up.write(d), ms));
        up.pipe(down);
        for (const [x, y] of [[down, up], [up, down]]) {
            x.on('error', () => y.destroy());
            x.on('close', () => y.destroy());
        }
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    return {
        port,
        close() {
            for (const x of socks) x.destroy();
            server.close();
        },
    };
}

test('subscription_succeeded comes after Redis subscribed: a trigger through the other gateway right after it is never missed (50 rounds)', async (t) => {
    const proxy = await slowProxy(50);
    const gw3 = await startGateway({
        config: { redis: { address: `127.0.0.1:${proxy.port}`, database: 1 } },
    });
    t.after(async () => {
        await gw3.stop();
        proxy.close();
    });
    await waitUntil(async () => (await statusOf(gw3.rest().trigger('warm-up', 'x', {}))) === 200,
        { timeout: 5000, what: 'the gateway behind the slow proxy to reach Redis' });
    const a = await connectClient(gw3, { t, name: 'first-subscriber' });
    for (let i = 0; i < 50; i++) {
        const ch = uniq(`window-${i}-`);
        const { channel } = await a.subscribe(ch); // no PUBSUB NUMSUB wait
        const got = waitForEvent(channel, 'right-after', 2000);
        await okJson(rest2.trigger(ch, 'right-after', { i }));
        assert.deepEqual((await got).data, { i }, `round ${i}`);
        a.pusher.unsubscribe(ch);
    }
});

/** The HTTP status of an SDK call, whether it resolved or threw. */
async function statusOf(promise) {
    try {
        return (await promise).status;
    } catch (e) {
        return e.status ?? e.message;
    }
}

test('Redis hung (SIGSTOP): triggers answer 503, a trigger abandoned by its client is dropped safely, SIGCONT resumes', async (t) => {
    const ch = uniq('hang-');
    const { a, b, ca, cb } = await clientsOnGateways(t, ch);
    redis.proc.kill('SIGSTOP');
    try {
        // The SDK gives up after 100 ms: the gateway's answer finds no connection.
        const impatient = gw1.rest('app1', { timeout: 100 });
        assert.notEqual(await statusOf(impatient.trigger(ch, 'abandoned', {})), 200);
        const t0 = performance.now();
        assert.equal(await statusOf(rest1.trigger(ch, 'lost', {})), 503);
        const ms = performance.now() - t0;
        t.diagnostic(`503 after ${ms.toFixed(0)} ms with the master hung`);
        // The per-trigger deadline (800 ms + one 100 ms tick), not the PING one.
        assert.ok(ms < 1200, `503 took ${ms.toFixed(0)} ms`);
    } finally {
        redis.proc.kill('SIGCONT');
    }
    const back = performance.now();
    const { at: at } = await deliveredAgain(rest2, ch, [ca, cb], { timeout: 3000 });
    t.diagnostic(`delivery resumed ${(at - back).toFixed(0)} ms after SIGCONT`);
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');
});

test('Redis stopped: triggers answer 503 within 1 s and clients stay; Redis back: delivery resumes within 2 s', async (t) => {
    const ch = uniq('outage-');
    const { a, b, ca, cb } = await clientsOnGateways(t, ch);
    await redis.stop();
    for (const rest of [rest1, rest2]) {
        const t0 = performance.now();
        const status = await statusOf(rest.trigger(ch, 'lost', {}));
        const ms = performance.now() - t0;
        assert.equal(status, 503, 'a trigger while Redis is down');
        assert.ok(ms < 1000, `503 took ${ms.toFixed(0)} ms`);
    }
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');

    await redis.start(); // the same port
    const back = performance.now();
    const { at: deliveredAt } = await deliveredAgain(rest1, ch, [ca, cb], { timeout: 2000 });
    const ms = deliveredAt - back;
    t.diagnostic(`delivery resumed ${ms.toFixed(0)} ms after Redis answered PING again`);
    assert.ok(ms <= 2000, `resumed after ${ms.toFixed(0)} ms`);
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');
    assert.deepEqual(a.states.filter((s) => s !== 'connected' && s !== 'connecting'), []);
});

test('redis.give-up 2: Redis stopped, the gateway closes its clients and exits 75 within about 3 s', async (t) => {
    const own = await startRedis();
    const gw = await startGateway({
        config: { redis: { address: `127.0.0.1:${own.port}`, database: 1, 'give-up': 2 } },
    });
    try {
        const a = await connectClient(gw, { t, name: 'give-up' });
        const ch = uniq('giveup-');
        await a.subscribe(ch);
        const left = new Promise((resolve) => a.pusher.connection.bind('state_change', (s) => {
            if (s.current !== 'connected') resolve(performance.now());
        }));
        await own.stop();
        const t0 = performance.now();
        const exit = await Promise.race([gw.exited,
            new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000))]);
        const ms = performance.now() - t0;
        t.diagnostic(`exited ${JSON.stringify(exit)} ${ms.toFixed(0)} ms after Redis stopped`);
        assert.deepEqual(exit, { code: 75, signal: null });
        assert.ok(ms < 3500, `exit took ${ms.toFixed(0)} ms`);
        assert.ok(ms >= 1900, `gave up after ${ms.toFixed(0)} ms, before give-up`);
        const closedAt = await Promise.race([left,
            new Promise((resolve) => setTimeout(() => resolve(null), 2000))]);
        assert.ok(closedAt !== null, 'the WebSocket client saw its connection close');
        assert.match(gw.stderr, /give-up/);
        assert.doesNotMatch(gw.stderr, SANITIZER_RE);
    } finally {
        if (gw.exit) {
            for (const c of gw.clients) c.close();
            gw.stopped = true; // exited by itself: stop() would call it a crash
            fs.rmSync(gw.dir, { recursive: true, force: true });
        } else {
            await gw.stop();
        }
        await own.stop();
    }
});
