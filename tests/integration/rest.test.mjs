// rest.test.mjs - Pusher's HTTP API through the `pusher` SDK: trigger to 1 and
// 100 channels, socket_id exclusion, batches, info attributes, channel queries
// and size limits (PROTOCOL.md section 12; RELIABILITY P4, R10, R11).
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, expectStatus,
    signedRequest, uniq,
} from '../lib/harness.mjs';

const gw = await startGateway();
const rest = gw.rest();

const user = (id) => ({ user_id: id, user_info: { name: id } });

test('trigger to one channel answers 200 {} and pusher-js receives it', async (t) => {
    const c = await connectClient(gw, { t });
    const ch = uniq('rest-');
    const { channel } = await c.subscribe(ch);
    const got = waitForEvent(channel, 'one', 1000);
    const body = await okJson(rest.trigger(ch, 'one', { v: 1 }));
    assert.deepEqual(body, {});
    assert.deepEqual((await got).data, { v: 1 });
});

test('trigger to 100 channels reaches subscribers of each; 101 channels is 400', async (t) => {
    const names = Array.from({ length: 100 }, (_, i) => uniq(`multi${i}-`));
    const c = await rawConnect(gw, { t });
    await c.established();
    for (const n of names) c.send({ event: 'pusher:subscribe', data: { channel: n } });
    await c.waitFor((m) => m.event === 'pusher_internal:subscription_succeeded' &&
        c.messages.count('pusher_internal:subscription_succeeded') === 100, { timeout: 5000 });
    const body = await okJson(rest.trigger(names, 'wide', { w: 1 }));
    assert.deepEqual(body, {});
    await c.waitFor((m) => m.event === 'wide' && c.messages.count('wide') === 100, { timeout: 3000 });
    const got = new Set(c.messages.filter('wide').map((m) => m.channel));
    assert.equal(got.size, 100, 'one event per channel');
    // The SDK refuses 101 channels itself, so sign the request by hand.
    const r = await signedRequest(gw, {
        body: { name: 'wide', data: '{}', channels: [...names, uniq('extra-')] },
    });
    assert.equal(r.status, 400, r.text);
});

test('socket_id excludes that connection only', async (t) => {
    const ch = uniq('rest-');
    const a = await connectClient(gw, { t });
    const b = await connectClient(gw, { t });
    const { channel: ca } = await a.subscribe(ch);
    const { channel: cb } = await b.subscribe(ch);
    const gotB = waitForEvent(cb, 'not-for-a', 1000);
    await okJson(rest.trigger(ch, 'not-for-a', { x: 1 }, { socket_id: a.socketId }));
    await gotB;
    // Marker on the same connection: a later event without exclusion.
    await okJson(rest.trigger(ch, 'for-all', {}));
    await ca.inbox.waitFor((e) => e.event === 'for-all');
    assert.equal(ca.inbox.count((e) => e.event === 'not-for-a'), 0, 'excluded socket got nothing');
});

test('batch of 10 events is delivered in order; 11 is 400', async (t) => {
    const ch = uniq('batch-');
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(ch);
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: ch, name: 'b', data: { i } }));
    const body = await okJson(rest.triggerBatch(batch));
    assert.deepEqual(body, {});
    await c.waitFor((m) => m.event === 'b' && m.data.i === 9);
    assert.deepEqual(c.messages.filter('b').map((m) => m.data.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const eleven = Array.from({ length: 11 }, (_, i) => ({ channel: ch, name: 'b11', data: { i } }));
    await expectStatus(rest.triggerBatch(eleven), 400);
    await okJson(rest.trigger(ch, 'marker', {}));
    await c.waitFor('marker');
    assert.equal(c.messages.count('b11'), 0, 'a refused batch delivers nothing');
});

test('batch entries may carry socket_id exclusion', async (t) => {
    const ch = uniq('batch-');
    const a = await rawConnect(gw, { t });
    const b = await rawConnect(gw, { t });
    const sid = (await a.established()).socket_id;
    await b.established();
    await a.subscribe(ch);
    await b.subscribe(ch);
    await okJson(rest.triggerBatch([{ channel: ch, name: 'ex', data: {}, socket_id: sid }]));
    await b.waitFor('ex');
    await okJson(rest.trigger(ch, 'marker', {}));
    await a.waitFor('marker');
    assert.equal(a.messages.count('ex'), 0);
});

test('trigger with info=user_count on a presence channel returns the count', async (t) => {
    const ch = uniq('presence-');
    for (const id of ['1', '2', '2']) {
        const c = await connectClient(gw, { t, presence: user(id) });
        await c.subscribe(ch);
    }
    const body = await okJson(rest.trigger(ch, 'counted', {}, { info: 'user_count' }));
    assert.deepEqual(body, { channels: { [ch]: { user_count: 2 } } });
});

test('trigger info=user_count,subscription_count (app with subscription-count on)', async (t) => {
    const gw2 = await startGateway({
        apps: [{ name: 'sc', key: 'sc-key', secret: 'sc-secret', 'subscription-count': true }],
    });
    t.after(() => gw2.stop().catch(() => {}));
    const r2 = gw2.rest('sc');
    const pres = uniq('presence-');
    const pub = uniq('pub-');
    for (const id of ['1', '2', '2']) {
        const c = await connectClient(gw2, { t, app: 'sc', presence: user(id) });
        await c.subscribe(pres);
    }
    for (let i = 0; i < 2; i++) {
        const c = await connectClient(gw2, { t, app: 'sc' });
        await c.subscribe(pub);
    }
    const body = await okJson(r2.trigger(pres, 'x', {}, { info: 'user_count,subscription_count' }));
    assert.deepEqual(body, { channels: { [pres]: { user_count: 2, subscription_count: 3 } } });
    const b2 = await okJson(r2.trigger(pub, 'x', {}, { info: 'subscription_count' }));
    assert.deepEqual(b2, { channels: { [pub]: { subscription_count: 2 } } });
    const chInfo = await okJson(r2.get({ path: `/channels/${pub}`, params: { info: 'subscription_count' } }));
    assert.deepEqual(chInfo, { occupied: true, subscription_count: 2 });
    await gw2.stop(); // exit status 0, no sanitizer report
});

test('GET /channels lists occupied channels only, with filter_by_prefix', async (t) => {
    const tag = uniq('list');
    const a = `${tag}-a`;
    const b = `${tag}-b`;
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(a);
    await c.subscribe(b);
    const all = await okJson(rest.get({ path: '/channels' }));
    assert.ok(all.channels[a] && all.channels[b], JSON.stringify(all));
    const some = await okJson(rest.get({ path: '/channels', params: { filter_by_prefix: `${tag}-a` } }));
    assert.deepEqual(some, { channels: { [a]: {} } });
    c.send({ event: 'pusher:unsubscribe', data: { channel: b } });
    await c.barrier();
    const after = await okJson(rest.get({ path: '/channels', params: { filter_by_prefix: tag } }));
    assert.deepEqual(after, { channels: { [a]: {} } }, 'vacated channel is gone');
});

test('GET /channels?filter_by_prefix=presence-&info=user_count gives user counts; without the presence filter 400', async (t) => {
    const tag = uniq('presence-cnt');
    for (const [ch, id] of [[`${tag}-x`, '1'], [`${tag}-x`, '2'], [`${tag}-y`, '1']]) {
        const c = await connectClient(gw, { t, presence: user(id) });
        await c.subscribe(ch);
    }
    const body = await okJson(rest.get({
        path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' },
    }));
    assert.deepEqual(body.channels[`${tag}-x`], { user_count: 2 });
    assert.deepEqual(body.channels[`${tag}-y`], { user_count: 1 });
    await expectStatus(rest.get({ path: '/channels', params: { info: 'user_count' } }), 400);
    await expectStatus(rest.get({
        path: '/channels', params: { filter_by_prefix: 'private-', info: 'user_count' },
    }), 400);
});

test('GET /channels/{channel}: occupied true/false; user_count for presence, 400 otherwise', async (t) => {
    const pub = uniq('one-');
    const pres = uniq('presence-one-');
    const c = await connectClient(gw, { t, presence: user('7') });
    await c.subscribe(pub);
    await c.subscribe(pres);
    assert.deepEqual(await okJson(rest.get({ path: `/channels/${pub}` })), { occupied: true });
    assert.deepEqual(await okJson(rest.get({ path: `/channels/${uniq('empty-')}` })), { occupied: false });
    assert.deepEqual(await okJson(rest.get({ path: `/channels/${pres}`, params: { info: 'user_count' } })),
        { occupied: true, user_count: 1 });
    await expectStatus(rest.get({ path: `/channels/${pub}`, params: { info: 'user_count' } }), 400);
});

test('GET /channels/{presence}/users gives {"users":[{"id":...}]}; non-presence is 400', async (t) => {
    const pres = uniq('presence-u-');
    for (const id of ['1', '22']) {
        const c = await connectClient(gw, { t, presence: user(id) });
        await c.subscribe(pres);
    }
    const body = await okJson(rest.get({ path: `/channels/${pres}/users` }));
    assert.deepEqual(body.users.sort((x, y) => x.id.localeCompare(y.id)), [{ id: '1' }, { id: '22' }]);
    await expectStatus(rest.get({ path: `/channels/${uniq('pub-')}/users` }), 400);
    await expectStatus(rest.get({ path: `/channels/${uniq('private-')}/users` }), 400);
});

test('event data of 10240 bytes is accepted, 10241 is 413', async (t) => {
    const ch = uniq('size-');
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(ch);
    await okJson(rest.trigger(ch, 'max', 'a'.repeat(10240)));
    const m = await c.waitFor('max');
    assert.equal(m.data.length, 10240);
    // One connection per request here; keep-alive after a 413 is the next test.
    const fresh = gw.rest('app1', { agent: new http.Agent({ keepAlive: false }) });
    await expectStatus(fresh.trigger(ch, 'over', 'a'.repeat(10241)), 413);
    await expectStatus(fresh.triggerBatch([{ channel: ch, name: 'over', data: 'b'.repeat(10241) }]), 413);
    await okJson(fresh.trigger(ch, 'marker', {}));
    await c.waitFor('marker');
    assert.equal(c.messages.count('over'), 0);
});

test('after a 413 the SDK (keep-alive connection) can trigger again', async () => {
    const sdk = gw.rest('app1', { agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) });
    await expectStatus(sdk.trigger(uniq('ka-'), 'over', 'a'.repeat(10241)), 413);
    await okJson(sdk.trigger(uniq('ka-'), 'next', {}));
});

test('after a 400 and a 401 the SDK (keep-alive connection) can trigger again', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await expectStatus(gw.rest('app1', { agent }).get({ path: '/channels', params: { info: 'user_count' } }), 400);
    await okJson(gw.rest('app1', { agent }).trigger(uniq('ka-'), 'next', {}));
    await expectStatus(gw.rest('app1', { agent, secret: 'bad' }).trigger(uniq('ka-'), 'x', {}), 401);
    await okJson(gw.rest('app1', { agent }).trigger(uniq('ka-'), 'next', {}));
});

test('event names: 200 characters and Laravel-style class names with backslashes are delivered', async (t) => {
    const ch = uniq('names-');
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(ch);
    const long = 'e'.repeat(200);
    const laravel = 'App\\Events\\OrderShipped';
    await okJson(rest.trigger(ch, long, {}));
    await okJson(rest.trigger(ch, laravel, { id: 1 }));
    await c.waitFor(laravel);
    assert.equal(c.messages.count(long), 1);
});

test('a request body over max-request-size (256 KiB) is 413', async () => {
    const r = await signedRequest(gw, {
        body: { name: 'x', channels: ['a'], data: 'z'.repeat(300 * 1024) },
    });
    assert.equal(r.status, 413, r.text);
});

for (const sid of ['1.1\n', '../1', '1.1 ', 'abc', '1', `${'9'.repeat(600)}.${'9'.repeat(600)}`]) {
    test(`socket_id ${JSON.stringify(sid.slice(0, 12))} is refused with 400`, async () => {
        const r = await signedRequest(gw, {
            body: { name: 'x', channels: ['sid-check'], data: '{}', socket_id: sid },
        });
        assert.equal(r.status, 400, r.text);
    });
}

const badBodies = [
    ['no name', { channels: ['a'], data: '{}' }],
    ['no data', { name: 'x', channels: ['a'] }],
    ['no channel', { name: 'x', data: '{}' }],
    ['data not a string', { name: 'x', channels: ['a'], data: { o: 1 } }],
    ['an invalid channel name', { name: 'x', channels: ['bad channel'], data: '{}' }],
    ['an event name over 200 chars', { name: 'e'.repeat(201), channels: ['a'], data: '{}' }],
    ['a body that is not JSON', 'name=x&data=y'],
    ['deeply nested JSON', '['.repeat(10000) + ']'.repeat(10000)],
];
for (const [what, body] of badBodies) {
    test(`trigger with ${what} is 400`, async () => {
        const r = await signedRequest(gw, { body });
        assert.equal(r.status, 400, r.text);
    });
}

test('the single "channel" field works like "channels"', async (t) => {
    const ch = uniq('single-');
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(ch);
    const r = await signedRequest(gw, { body: { name: 'solo', channel: ch, data: '"s"' } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await c.waitFor('solo')).data, 's');
});

test('trigger to private-encrypted- together with another channel is 400', async () => {
    const r = await signedRequest(gw, {
        body: { name: 'x', channels: [uniq('private-encrypted-'), uniq('pub-')], data: '{}' },
    });
    assert.equal(r.status, 400, r.text);
});

test('unknown REST paths answer 404', async () => {
    const r = await signedRequest(gw, { method: 'GET', path: '/apps/app1/nothing-here' });
    assert.equal(r.status, 404, r.text);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
