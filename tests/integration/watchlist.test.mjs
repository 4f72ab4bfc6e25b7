// watchlist.test.mjs - watchlist events (opt-in per app, watchlist-events): the
// `watchlist` in sign-in user_data, pusher_internal:watchlist_events with the
// current online/offline state on sign-in and every change after, "online"
// meaning signed in on at least one connection, the first 100 ids accepted and
// pusher:error 4302 beyond (PROTOCOL.md sections 3, 4, 9; issue 3).
import test from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, rawConnect, connectClient, uniq, defaultApps } from '../lib/harness.mjs';
import { rawSignin, signedInClient } from '../lib/signin.mjs';

const apps = [
    ...defaultApps(),
    { name: 'watch', key: 'watch-key', secret: 'watch-secret', 'watchlist-events': true },
];
const gw = await startGateway({ apps });
const WL = 'pusher_internal:watchlist_events';

/** A raw client of the watch app signed in as id (watching `watchlist`),
 * resolved once the initial watchlist state (if any) has arrived. */
async function rawUser(t, id, watchlist) {
    const c = await rawConnect(gw, { t, key: 'watch-key' });
    const user = watchlist ? { id, watchlist } : { id };
    const from = c.messages.items.length;
    const m = await rawSignin(c, user, { app: 'watch' });
    assert.equal(m.event, 'pusher:signin_success', m.text);
    if (watchlist && watchlist.length) await c.waitFor(WL, { from }); // the initial state
    return c;
}

/** The next watchlist event of a pusher-js client's watchlist facade. */
function nextWatch(c, name, timeout = 2000) {
    const wl = c.pusher.user.watchlist;
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            wl.unbind(name, h);
            reject(new Error(`${c.name}: no watchlist ${name} within ${timeout} ms`));
        }, timeout);
        const h = (e) => {
            clearTimeout(timer);
            wl.unbind(name, h);
            resolve(e);
        };
        wl.bind(name, h);
    });
}

test('pusher-js gets the current state on sign-in, then online/offline as users come and go', async (t) => {
    const [me, b, c] = [uniq('me-'), uniq('b-'), uniq('c-')];
    await rawUser(t, b);
    const client = await connectWatcher(t, me, [b, c]);
    const [online, offline] = await client.initial;
    assert.deepEqual(online, { name: 'online', user_ids: [b] });
    assert.deepEqual(offline, { name: 'offline', user_ids: [c] });

    const cameOnline = nextWatch(client.c, 'online');
    const c1 = await rawUser(t, c);
    assert.deepEqual(await cameOnline, { name: 'online', user_ids: [c] });
    // A second connection of c changes nothing; its last one leaving does.
    const c2 = await rawUser(t, c);
    await c1.close();
    await c2.barrier();
    const wentOffline = nextWatch(client.c, 'offline');
    await c2.close();
    assert.deepEqual(await wentOffline, { name: 'offline', user_ids: [c] });
    await client.c.barrier();
    const all = client.c.messages.filter(WL).map((m) => m.data.events);
    assert.equal(all.length, 3, `initial state, c online, c offline: ${JSON.stringify(all)}`);
});

/** pusher-js signed in as id watching ids; initial resolves [online, offline] events. */
async function connectWatcher(t, id, watchlist) {
    const c = await connectClient(gw, { t, app: 'watch', user: { id, watchlist } });
    const online = nextWatch(c, 'online');
    const offline = nextWatch(c, 'offline');
    c.pusher.signin();
    return { c, initial: Promise.all([online, offline]) };
}

test('raw wire format on sign-in: signin_success, then watchlist_events without a channel', async (t) => {
    const x = uniq('x-');
    await rawUser(t, x);
    const c = await rawUser(t, uniq('w-'), [x, 'nobody-1', 'nobody-2']);
    const m = await c.waitFor(WL);
    assert.equal(m.channel, undefined);
    assert.equal(typeof m.rawData, 'string');
    assert.deepEqual(m.data, {
        events: [
            { name: 'online', user_ids: [x] },
            { name: 'offline', user_ids: ['nobody-1', 'nobody-2'] },
        ],
    });
    const order = c.messages.items.map((i) => i.event);
    assert.ok(order.indexOf('pusher:signin_success') < order.indexOf(WL));
});

test('101 ids: the first 100 are watched, pusher:error 4302, the connection stays signed in', async (t) => {
    const ids = Array.from({ length: 101 }, (_, i) => uniq(`many${i}-`));
    const c = await rawUser(t, uniq('big-'), ids);
    const err = await c.waitFor('pusher:error');
    assert.equal(err.data.code, 4302, err.text);
    const state = await c.waitFor(WL);
    assert.deepEqual(state.data.events, [{ name: 'offline', user_ids: ids.slice(0, 100) }]);
    // The 100th is watched, the 101st is not.
    const from = c.messages.items.length;
    await rawUser(t, ids[100]);
    await rawUser(t, ids[99]);
    const on = await c.waitFor(WL, { from });
    assert.deepEqual(on.data.events, [{ name: 'online', user_ids: [ids[99]] }]);
    await c.barrier();
    assert.equal(c.messages.count(WL, from), 1, 'nothing for the 101st id');
    assert.ok(c.isOpen);
});

test('the watcher may be on its own watchlist: it is online', async (t) => {
    const me = uniq('self-');
    const c = await rawUser(t, me, [me]);
    const m = await c.waitFor(WL);
    assert.deepEqual(m.data.events, [{ name: 'online', user_ids: [me] }]);
});

test('a user watched by several users: each watcher\'s connections are told', async (t) => {
    const star = uniq('star-');
    const fan2 = uniq('fan2-');
    const w1 = await rawUser(t, uniq('fan1-'), [star]);
    const w2a = await rawUser(t, fan2, [star]);
    const w2b = await rawUser(t, fan2, [star]);
    const marks = [w1, w2a, w2b].map((c) => [c, c.messages.items.length]);
    const s = await rawUser(t, star);
    for (const [c, from] of marks) {
        const m = await c.waitFor(WL, { from });
        assert.deepEqual(m.data.events, [{ name: 'online', user_ids: [star] }]);
    }
    const g1 = w1.messages.items.length;
    await s.close();
    const off = await w1.waitFor(WL, { from: g1 });
    assert.deepEqual(off.data.events, [{ name: 'offline', user_ids: [star] }]);
});

test('a watchlist that is not an array of ids refuses the sign-in with pusher:error', async (t) => {
    const c = await rawConnect(gw, { t, key: 'watch-key' });
    const m = await rawSignin(c, { id: 'bad', watchlist: 'not-a-list' }, { app: 'watch' });
    assert.equal(m.event, 'pusher:error', m.text);
    assert.match(m.data.message, /watchlist/);
    const ok = await rawSignin(c, { id: 'bad', watchlist: [] }, { app: 'watch' });
    assert.equal(ok.event, 'pusher:signin_success', ok.text);
});

test('an app without watchlist-events sends no watchlist events', async (t) => {
    const x = uniq('x-');
    const other = await rawConnect(gw, { t });
    await rawSignin(other, { id: x });
    const c = await signedInClient(gw, { id: uniq('plain-'), watchlist: [x, 'y'] }, { t });
    const d = await rawConnect(gw, { t });
    await rawSignin(d, { id: 'y' });
    await d.barrier();
    await c.barrier();
    assert.equal(c.messages.count(WL), 0);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
