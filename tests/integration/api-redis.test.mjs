// api-redis.test.mjs - micronotifier-api in distributed mode (issue 5): the
// daemon talks to Redis itself (no local-socket), behind a real lighttpd
// (FastCGI, root), nginx (SCGI, under /pusher) and Apache (FastCGI, under
// /pusher), in front of two gateways on
// one real redis-server (database 1, node-heartbeat 1, node-timeout 5). The
// `pusher` library triggers through the web servers: events reach pusher-js
// on both gateways; socket_id exclusion; a cache channel's last event is
// replayed to a later subscriber; GET /channels, /channels/{ch} (with
// user_count, subscription_count, cache) and /channels/{presence}/users equal
// both gateways' own answers byte for byte; terminate_connections closes a
// user's connections on both gateways; garbage on the daemon's sockets
// leaves it serving; Redis hung or stopped: 503 within about 1 s, and after
// Redis returns, 200 and delivery within 2 s; Redis restarted under a trigger
// every 10 ms: the daemon answers 503 until both gateways are subscribed again
// (its settle), so every trigger answered 200 reaches both gateways' subscribers
// exactly once (prints the losses, the 503s and the settle's line). Then
// through Sentinel: kill -9
// of the master, the daemon's triggers are accepted and delivered again
// within 5 s.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
    connectClient, defaultApps, okJson, performance, rawConnect, startGateway, uniq,
    waitForEvent, waitUntil,
} from '../lib/harness.mjs';
import {
    cli, clientsOnBoth, deliveredAgain, startRedis, startSentinelSet,
} from '../lib/redis.mjs';
import { rawSignin } from '../lib/signin.mjs';
import {
    ApiDaemon, apiBin, fcgiRecord, rawExchange, signedHttp, startWebServer, tempDir,
} from '../lib/webservers.mjs';

const counted = {
    name: 'counted', key: 'counted-key', secret: 'counted-secret', 'subscription-count': true,
};
const apps = [...defaultApps(), counted];

/** Two gateways and an api daemon on redisConfig; the daemon's config is the
 * first gateway's file (with an `api` object and no local-socket). */
async function fleet(redis) {
    const dir = tempDir();
    const api = {
        fastcgi: path.join(dir, 'api-fastcgi.sock'),
        scgi: path.join(dir, 'api-scgi.sock'),
        'socket-mode': '0666',
        threads: 4,
        prefix: '/pusher',
    };
    const gw1 = await startGateway({ apps, config: { redis, api } });
    const gw2 = await startGateway({ apps, config: { redis } });
    const daemon = new ApiDaemon(gw1.file, api);
    await daemon.start();
    return { gw1, gw2, daemon, dir };
}

const redis = await startRedis();
const redisConfig = {
    address: `127.0.0.1:${redis.port}`, database: 1, 'node-heartbeat': 1, 'node-timeout': 5,
};
const { gw1, gw2, daemon, dir: apiDir } = await fleet(redisConfig);
const lighttpd = await startWebServer('lighttpd', 'fastcgi', 'root', daemon.fastcgi);
const nginx = await startWebServer('nginx', 'scgi', 'prefix', daemon.scgi);
const apache = await startWebServer('apache', 'fastcgi', 'prefix', daemon.fastcgi);
const app = gw1.app('app1');
const countedApp = gw1.app('counted');
const viaLighttpd = lighttpd.rest(app);
const viaNginx = nginx.rest(app);
const viaApache = apache.rest(app);

/** Stops each of procs in turn, all of them even when one fails; throws the
 * first failure (a daemon that died, or exited other than 0, or a sanitizer
 * report). */
async function stopAll(procs) {
    const errors = [];
    for (const p of procs) {
        try {
            await p.stop();
        } catch (e) {
            errors.push(e);
        }
    }
    if (errors.length) throw errors[0];
}

test.after(async () => {
    try {
        await stopAll([apache, nginx, lighttpd, daemon, gw1, gw2, redis]);
    } finally {
        fs.rmSync(apiDir, { recursive: true, force: true });
    }
});

/** pusher-js on each gateway subscribed to ch, both gateways subscribed in Redis. */
const clientsOnGateways = (t, ch, app = 'app1') =>
    clientsOnBoth(t, [gw1, gw2], ch, redis.port, app);

/** The HTTP status of an SDK call, whether it resolved or threw. */
async function statusOf(promise) {
    try {
        return (await promise).status;
    } catch (e) {
        return e.status ?? e.message;
    }
}

function sameAnswer(got, want, what) {
    assert.equal(got.status, want.status, `${what}: status (${got.text} vs ${want.text})`);
    assert.equal(got.headers['content-type'], want.headers['content-type'],
        `${what}: content type`);
    assert.equal(got.text, want.text, `${what}: body`);
}

test('micronotifier-api starts on a config with redis and no local-socket', async () => {
    assert.equal(gw1.config['local-socket'], undefined);
    // The sockets accept just before the line is written.
    await waitUntil(() => /listening .*redis=127\.0\.0\.1:/.test(daemon.stderr),
        { timeout: 2000, what: 'the daemon\'s "listening" line naming Redis' });
});

test('--check-config: redis without local-socket is valid; neither is refused', async () => {
    const dir = tempDir('mn-api-check-');
    const check = (config) => {
        const file = path.join(dir, 'config.json');
        fs.writeFileSync(file, JSON.stringify({
            applications: apps, api: { scgi: path.join(dir, 's.sock') }, ...config,
        }));
        return new Promise((resolve) => execFile(apiBin, ['-c', file, '--check-config'],
            (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr })));
    };
    try {
        assert.equal((await check({ redis: redisConfig })).code, 0);
        const neither = await check({});
        assert.equal(neither.code, 1);
        assert.match(neither.stderr, /local-socket: missing; without "redis"/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('triggers through lighttpd, nginx and Apache reach pusher-js on both gateways', async (t) => {
    const ch = uniq('api-news-');
    const { ca, cb } = await clientsOnGateways(t, ch);
    for (const [rest, via] of [[viaLighttpd, 'lighttpd'], [viaNginx, 'nginx'],
        [viaApache, 'apache']]) {
        const got = [waitForEvent(ca, 'ev', 2000), waitForEvent(cb, 'ev', 2000)];
        assert.deepEqual(await okJson(rest.trigger(ch, 'ev', { via })), {});
        for (const g of got) assert.deepEqual((await g).data, { via });
    }
    // A batch, each event to both gateways, in order.
    const seen = [ca, cb].map((c) => c.inbox.items.length);
    await okJson(viaLighttpd.triggerBatch([
        { channel: ch, name: 'b1', data: { n: 1 } },
        { channel: ch, name: 'b2', data: { n: 2 } },
    ]));
    for (const [i, c] of [ca, cb].entries()) {
        await c.inbox.waitFor('b2', { from: seen[i], timeout: 2000 });
        assert.deepEqual(c.inbox.items.slice(seen[i]).map((e) => e.event), ['b1', 'b2']);
    }
});

test('socket_id exclusion works through the api, on either gateway', async (t) => {
    const ch = uniq('api-excl-');
    const { a, b, ca, cb } = await clientsOnGateways(t, ch);
    for (const [i, [skip, other, skipCh]] of [[a, cb, ca], [b, ca, cb]].entries()) {
        const got = waitForEvent(other, `excluded-${i}`, 2000);
        await okJson(viaLighttpd.trigger(ch, `excluded-${i}`, { from: skip.name },
            { socket_id: skip.socketId }));
        assert.deepEqual((await got).data, { from: skip.name });
        // A marker after it: once the excluded client has the marker, it
        // would have had the excluded event before (same publisher, order kept).
        await okJson(viaLighttpd.trigger(ch, `marker-${i}`, {}));
        await skipCh.inbox.waitFor(`marker-${i}`, { timeout: 2000 });
        assert.equal(skipCh.inbox.count(`excluded-${i}`), 0,
            `${skip.name} did not get the event it was excluded from`);
    }
});

test('a cache channel\'s last event triggered through the api is replayed to a later subscriber', async (t) => {
    const ch = uniq('cache-api-');
    await okJson(viaNginx.trigger(ch, 'price', { v: 1 }));
    await okJson(viaNginx.trigger(ch, 'price', { v: 2 }));
    for (const gw of [gw1, gw2]) {
        const c = await connectClient(gw, { t });
        const { channel } = await c.subscribe(ch, 5000);
        const ev = await channel.inbox.waitFor('price', { timeout: 2000 });
        assert.deepEqual(ev.data, { v: 2 }, 'the last event, replayed');
        await c.barrier();
        assert.deepEqual(channel.inbox.items.map((e) => e.event),
            ['pusher:subscription_succeeded', 'price'], 'the replay, once');
    }
    const ask = ['GET', `/apps/app1/channels/${ch}`, { params: { info: 'cache' } }];
    const viaApi = await signedHttp(lighttpd.target, app, ...ask);
    assert.equal(viaApi.status, 200, viaApi.text);
    assert.equal(viaApi.json.cache.data, JSON.stringify({ v: 2 }));
    assert.ok(viaApi.json.cache.ttl > 0 && viaApi.json.cache.ttl <= 1800);
    for (const gw of [gw1, gw2]) sameAnswer(viaApi, await signedHttp(gw, app, ...ask), 'info=cache');
});

test('channel queries through the api equal both gateways\' own answers', async (t) => {
    const p = uniq('q');
    const pres = `presence-${p}`;
    const pub = `${p}-pub`;
    const member = (gw, id) => connectClient(gw, {
        t, presence: { user_id: id, user_info: { name: id } }, name: id,
    });
    for (const [gw, id] of [[gw1, 'u1'], [gw2, 'u2'], [gw2, 'u1']]) {
        const c = await member(gw, id);
        await c.subscribe(pres, 5000);
        await c.subscribe(pub, 5000);
    }
    for (const gw of [gw1, gw2, gw2]) {
        const c = await connectClient(gw, { t, app: 'counted' });
        await c.subscribe(pub, 5000);
    }
    // The fleet's state, seen by a gateway once Redis has every change.
    await waitUntil(async () => {
        const r = await signedHttp(gw1, app, 'GET', `/apps/app1/channels/${pres}`,
            { params: { info: 'user_count' } });
        const s = await signedHttp(gw1, countedApp, 'GET', `/apps/counted/channels/${pub}`,
            { params: { info: 'subscription_count' } });
        return r.json?.user_count === 2 && s.json?.subscription_count === 3;
    }, { timeout: 3000, what: 'user_count 2 and subscription_count 3 in Redis' });
    const asks = [
        [app, 'GET', '/apps/app1/channels', {}],
        [app, 'GET', '/apps/app1/channels', { filter_by_prefix: p }],
        [app, 'GET', '/apps/app1/channels', { filter_by_prefix: 'presence-', info: 'user_count' }],
        [app, 'GET', `/apps/app1/channels/${pub}`, {}],
        [app, 'GET', `/apps/app1/channels/${pres}`, { info: 'user_count' }],
        [app, 'GET', `/apps/app1/channels/${pres}/users`, {}],
        [app, 'GET', `/apps/app1/channels/${pub}/users`, {}],
        [app, 'GET', `/apps/app1/channels/${p}-nobody`, {}],
        [app, 'GET', '/apps/nope/channels', {}],
        [countedApp, 'GET', '/apps/counted/channels', { info: 'subscription_count' }],
        [countedApp, 'GET', `/apps/counted/channels/${pub}`, { info: 'subscription_count' }],
    ];
    for (const [a, method, apiPath, params] of asks) {
        const want = await signedHttp(gw1, a, method, apiPath, { params });
        sameAnswer(await signedHttp(gw2, a, method, apiPath, { params }), want,
            `gw2 vs gw1: ${apiPath} ${JSON.stringify(params)}`);
        for (const ws of [lighttpd, nginx, apache]) {
            sameAnswer(await signedHttp(ws.target, a, method, apiPath, { params }), want,
                `${ws.name} vs gw1: ${apiPath} ${JSON.stringify(params)}`);
        }
    }
    const users = await signedHttp(nginx.target, app, 'GET', `/apps/app1/channels/${pres}/users`);
    assert.deepEqual(users.json.users.map((u) => u.id).sort(), ['u1', 'u2']);
    const count = await signedHttp(lighttpd.target, countedApp, 'GET',
        `/apps/counted/channels/${pub}`, { params: { info: 'subscription_count' } });
    assert.deepEqual(count.json, { occupied: true, subscription_count: 3 });
    // A trigger asking info answers the fleet's counts, as a gateway's does.
    const events = [
        { channel: pres, name: 'x', data: {}, info: 'user_count' },
        { channel: pub, name: 'y', data: {} },
    ];
    const batch = await okJson(viaLighttpd.triggerBatch(events));
    assert.deepEqual(batch, { batch: [{ user_count: 2 }, {}] });
    assert.deepEqual(await okJson(gw2.rest().triggerBatch(events)), batch);
    const one = await okJson(lighttpd.rest(countedApp).trigger(pub, 'z', {},
        { info: 'subscription_count' }));
    assert.deepEqual(one, { channels: { [pub]: { subscription_count: 3 } } });
    assert.deepEqual(await okJson(gw1.rest('counted').trigger(pub, 'z', {},
        { info: 'subscription_count' })), one);
});

test('after SCRIPT FLUSH the api still answers (NOSCRIPT: the whole script, once)', async () => {
    const ch = uniq('cache-flushed-');
    assert.equal(await cli(redis.port, 'SCRIPT', 'FLUSH'), 'OK');
    await okJson(viaNginx.trigger(ch, 'kept', { v: 1 })); // "cache", then PUBLISH
    assert.equal(await cli(redis.port, 'SCRIPT', 'FLUSH'), 'OK');
    const ask = ['GET', `/apps/app1/channels/${ch}`, { params: { info: 'cache' } }];
    const viaApi = await signedHttp(lighttpd.target, app, ...ask);
    assert.equal(viaApi.status, 200, viaApi.text);
    assert.equal(viaApi.json.cache.data, JSON.stringify({ v: 1 }));
});

test('terminate_connections through the api closes the user\'s connections on both gateways', async (t) => {
    const id = uniq('user-');
    const raws = [];
    for (const gw of [gw1, gw2]) {
        const raw = await rawConnect(gw, { t });
        assert.equal((await rawSignin(raw, { id })).event, 'pusher:signin_success');
        raws.push(raw);
    }
    const bystander = await rawConnect(gw2, { t });
    assert.equal((await rawSignin(bystander, { id: `${id}-other` })).event,
        'pusher:signin_success');
    assert.deepEqual(await okJson(viaNginx.terminateUserConnections(id)), {});
    for (const raw of raws) assert.equal((await raw.waitClose(3000)).code, 4009);
    await bystander.barrier();
    assert.equal(bystander.closeInfo, null, 'another user stays connected');
});

test('garbage on the daemon\'s sockets leaves it serving', async (t) => {
    const ch = uniq('api-garbage-');
    const { ca, cb } = await clientsOnGateways(t, ch);
    const junk = [
        Buffer.from('GET / HTTP/1.1\r\n\r\n'),
        Buffer.from('99999999999999999999:'),
        fcgiRecord(1, 1, Buffer.alloc(8)).subarray(0, 5),
        Buffer.alloc(70000, 0xff),
    ];
    for (const addr of [daemon.fastcgi, daemon.scgi]) {
        for (const bytes of junk) {
            const r = await rawExchange(addr, bytes, { timeout: 7000, end: true });
            assert.ok(r.closed, `the daemon closed a connection sending garbage (${r.ms} ms)`);
        }
    }
    const got = [waitForEvent(ca, 'still', 2000), waitForEvent(cb, 'still', 2000)];
    await okJson(viaLighttpd.trigger(ch, 'still', {}));
    await Promise.all(got);
    assert.ok(daemon.alive());
});

test('Redis hung (SIGSTOP): the api answers 503 within about 1 s; SIGCONT: served again', async (t) => {
    const ch = uniq('api-hang-');
    const { ca, cb } = await clientsOnGateways(t, ch);
    redis.proc.kill('SIGSTOP');
    try {
        for (const [what, call] of [
            ['trigger', () => viaLighttpd.trigger(ch, 'lost', {})],
            ['query', () => viaLighttpd.get({ path: '/channels' })],
        ]) {
            const t0 = performance.now();
            assert.equal(await statusOf(call()), 503, what);
            const ms = performance.now() - t0;
            t.diagnostic(`${what}: 503 after ${ms.toFixed(0)} ms with Redis hung`);
            assert.ok(ms < 1200, `${what}: 503 took ${ms.toFixed(0)} ms`);
        }
    } finally {
        redis.proc.kill('SIGCONT');
    }
    const back = performance.now();
    const { at } = await deliveredAgain(viaLighttpd, ch, [ca, cb], { timeout: 3000 });
    t.diagnostic(`api delivery resumed ${(at - back).toFixed(0)} ms after SIGCONT`);
});

test('Redis stopped: the api answers 503 within 1 s; Redis back: 200 and delivery within 2 s', async (t) => {
    const ch = uniq('api-outage-');
    const { a, b, ca, cb } = await clientsOnGateways(t, ch);
    await redis.stop();
    const text = await signedHttp(lighttpd.target, app, 'POST', '/apps/app1/events',
        { body: { name: 'lost', channel: ch, data: '{}' } });
    assert.equal(text.status, 503);
    assert.match(text.text, /Redis is unreachable/);
    for (const [what, call] of [
        ['trigger via lighttpd', () => viaLighttpd.trigger(ch, 'lost', {})],
        ['trigger via nginx', () => viaNginx.trigger(ch, 'lost', {})],
        ['users', () => viaNginx.get({ path: '/channels/presence-x/users' })],
        ['terminate', () => viaNginx.terminateUserConnections('nobody')],
    ]) {
        const t0 = performance.now();
        assert.equal(await statusOf(call()), 503, what);
        const ms = performance.now() - t0;
        t.diagnostic(`${what}: 503 after ${ms.toFixed(0)} ms with Redis stopped`);
        assert.ok(ms < 1000, `${what}: 503 took ${ms.toFixed(0)} ms`);
    }
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');

    await redis.start(); // the same port; resolves once it answers PING
    const back = performance.now();
    const { at } = await deliveredAgain(viaLighttpd, ch, [ca, cb], { timeout: 2000 });
    const ms = at - back;
    t.diagnostic(`api: 200 and delivery on both gateways ${ms.toFixed(0)} ms after Redis returned`);
    assert.ok(ms <= 2000, `resumed after ${ms.toFixed(0)} ms`);
    assert.match(daemon.stderr, /Redis unreachable/);
    assert.match(daemon.stderr, /Redis reachable again/);
});

/**
 * Sequence-numbered triggers of `ev` on ch through rest (the `pusher`
 * library), one every `every` ms; each answer recorded in records ({seq,
 * sentAt, answeredAt, status, body}). okSince(t): how many sent at or after
 * t were answered 200; stop() resolves once every trigger is answered.
 */
function steadyTriggers(rest, ch, every = 10) {
    const records = [];
    const pending = new Set();
    const timer = setInterval(() => {
        const rec = { seq: records.length + 1, sentAt: performance.now() };
        records.push(rec);
        const p = rest.trigger(ch, 'ev', { seq: rec.seq })
            .then((res) => [res.status, ''], (e) => [e.status ?? `error ${e.message}`,
                String(e.body ?? '')])
            .then(([status, body]) => {
                Object.assign(rec, { status, body, answeredAt: performance.now() });
                pending.delete(p);
            });
        pending.add(p);
    }, every);
    return {
        records,
        okSince: (t0) => records.filter((r) => r.sentAt >= t0 && r.status === 200).length,
        async stop() {
            clearInterval(timer);
            while (pending.size) await Promise.all([...pending]);
        },
    };
}

/**
 * Once every trigger of load answered 200 reached each of chans (or 3 s
 * passed): per channel, the 200s it never got and the events it got more
 * than once; and the 503s by text.
 */
async function deliveryFigures(load, chans) {
    const accepted = load.records.filter((r) => r.status === 200).map((r) => r.seq);
    const seen = (c) => {
        const m = new Map();
        for (const it of c.inbox.items) {
            if (it.event === 'ev') m.set(it.data.seq, (m.get(it.data.seq) || 0) + 1);
        }
        return m;
    };
    await waitUntil(() => chans.every((c) => accepted.every((q) => seen(c).has(q))),
        { timeout: 3000, what: 'every trigger answered 200 at every subscriber' })
        .catch(() => {}); // counted below
    const per = chans.map((c) => {
        const m = seen(c);
        return {
            lost: accepted.filter((q) => !m.has(q)),
            twice: [...m].filter(([, n]) => n > 1).map(([q]) => q),
        };
    });
    const refused = (re) => load.records.filter((r) => r.status === 503 && re.test(r.body))
        .length;
    return {
        accepted: accepted.length,
        per,
        down: refused(/Redis is unreachable/),
        back: refused(/Redis is back/),
        other: load.records.filter((r) => r.status !== 200 && r.status !== 503).length,
    };
}

/** The daemon's settle line after offset `from` of its stderr: { ms, refused,
 * ready } or null. */
function settleLine(from) {
    const m = /bus: (every live gateway is subscribed again after|not every live gateway subscribed again within) (\d+) ms; triggers accepted; refused while the gateways resubscribed=(\d+)/
        .exec(daemon.stderr.slice(from));
    return m && { ready: m[1].startsWith('every'), ms: Number(m[2]), refused: Number(m[3]) };
}

test('Redis restarted under a steady stream of api triggers: every trigger answered 200 reaches both gateways exactly once', async (t) => {
    const ch = uniq('api-settle-');
    const { a, b, ca, cb } = await clientsOnGateways(t, ch);
    const load = steadyTriggers(viaLighttpd, ch, 10);
    const logFrom = daemon.stderr.length;
    let back;
    try {
        const t0 = performance.now();
        await waitUntil(() => load.okSince(t0) >= 50,
            { timeout: 5000, what: '50 triggers accepted before the outage' });
        await redis.stop();
        const stopped = performance.now();
        // Down long enough for the gateways' reconnection back-off to grow.
        await waitUntil(() => load.records.filter((r) => r.sentAt >= stopped &&
            r.status === 503).length >= 30, { timeout: 3000, what: '30 503s while Redis is stopped' });
        await redis.start(); // the same port, empty (no persistence)
        back = performance.now();
        await waitUntil(() => load.okSince(back) >= 100,
            { timeout: 6000, what: '100 triggers accepted after Redis returned' });
    } finally {
        await load.stop();
    }
    const f = await deliveryFigures(load, [ca, cb]);
    const first = load.records.filter((r) => r.sentAt >= back && r.status === 200)
        .sort((x, y) => x.answeredAt - y.answeredAt)[0];
    const settled = settleLine(logFrom);
    t.diagnostic(`api under ${load.records.length} triggers (every 10 ms), Redis restarted: ` +
        `${f.accepted} answered 200, lost on gw1=${f.per[0].lost.length} ` +
        `gw2=${f.per[1].lost.length}, twice=${f.per[0].twice.length + f.per[1].twice.length}; ` +
        `503 while down=${f.down}, 503 while the gateways resubscribed=${f.back}; ` +
        `first 200 ${(first.answeredAt - back).toFixed(0)} ms after Redis returned; ` +
        `settle ${settled ? `${settled.ready ? 'ready' : 'gave up'} after ${settled.ms} ms, ` +
            `refused=${settled.refused}` : 'not logged'}`);
    assert.equal(f.other, 0, 'every trigger answered 200 or 503');
    for (const [i, p] of f.per.entries()) {
        assert.deepEqual(p.lost, [], `gw${i + 1}: triggers answered 200 but never delivered`);
        assert.deepEqual(p.twice, [], `gw${i + 1}: events delivered twice`);
    }
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');
    assert.ok(settled, 'the daemon logged the end of its settle');
    assert.equal(settled.refused, f.back, 'the logged refusals are the 503s seen');
});

test('through Sentinel: kill -9 of the master, the api\'s triggers are accepted and delivered again within 5 s', async (t) => {
    const set = await startSentinelSet();
    const s = await fleet({
        address: set.address, database: 1, sentinel: true, 'master-name': 'mymaster',
        'node-heartbeat': 1, 'node-timeout': 5,
    });
    const ws = await startWebServer('lighttpd', 'fastcgi', 'root', s.daemon.fastcgi);
    t.after(async () => {
        try {
            await stopAll([ws, s.daemon, s.gw1, s.gw2, set]);
        } finally {
            fs.rmSync(s.dir, { recursive: true, force: true });
        }
    });
    const rest = ws.rest(s.gw1.app('app1'));
    const ch = uniq('api-failover-');
    const { ca, cb } = await clientsOnBoth(t, [s.gw1, s.gw2], ch, set.master.port);
    const before = [waitForEvent(ca, 'before'), waitForEvent(cb, 'before')];
    await okJson(rest.trigger(ch, 'before', {}));
    await Promise.all(before);

    await set.master.stop('SIGKILL');
    const killed = performance.now();
    const { at, refused } = await deliveredAgain(rest, ch, [ca, cb], {
        event: 'after', timeout: 5000, every: 50,
        what: 'an api trigger accepted and delivered on both gateways',
    });
    const ms = at - killed;
    t.diagnostic(`api resumed ${ms.toFixed(0)} ms after kill -9 of the master ` +
        `(${refused} trigger(s) refused meanwhile)`);
    assert.ok(ms <= 5000);
    assert.match(await cli(set.replica.port, 'ROLE'), /^master/);
});
