// redis-faults.test.mjs - the Redis and Sentinel fault tier of issue 5
// (RELIABILITY section 6, T1) under load: a steady stream of REST triggers
// (the `pusher` library, sequence numbers in the data) alternating between two
// gateways, pusher-js subscribers on both. Every trigger is answered (200, or
// 503 within 1.2 s), no subscriber sees an event twice, every event answered
// 200 reaches every subscriber on both gateways but those in flight at the
// fault (answered within 100 ms of it: counted and printed; a gateway back
// from an outage answers 503 until every live gateway is subscribed again),
// and the 503s match what the gateways log when their link is up again.
//   S2  the Sentinel master SIGSTOPped for 20 s, then SIGCONT: failover,
//       resume within 5 s, the old master rejoins as a replica, unused.
//   S3  SENTINEL FAILOVER: resume within 5 s, no duplicates.
//   S5  a plain Redis stopped for 10 s and started on the same port: clients
//       stay connected, both gateways resubscribe within 2 s.
//   S6  every sentinel killed, the master up: triggers keep answering 200,
//       also across a cut connection (the last known master); sentinels back:
//       the gateways listen for +switch-master again.
// kill -9 of the master and a short Redis stop are in sentinel.test.mjs and
// redis.test.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import {
    connectClient, uniq, waitUntil, performance, delay, raceTimeout,
} from '../lib/harness.mjs';
import {
    startRedis, startSentinelSet, gatewayPair, numsub, cli, subscribedIn,
} from '../lib/redis.mjs';

const RATE = 300; // triggers per second, both gateways together
const PER_GATEWAY = 2; // pusher-js subscribers on each gateway
const ANSWER_MS = 1200; // every trigger answered within this, 503 included
const RESUME_MS = 5000;

const set = await startSentinelSet();
const sentinelConfig = {
    redis: { address: set.address, database: 1, sentinel: true, 'master-name': 'mymaster' },
};
const [sg1, sg2] = await gatewayPair(test, sentinelConfig, set);
const redis = await startRedis();
const [pg1, pg2] = await gatewayPair(test,
    { redis: { address: `127.0.0.1:${redis.port}`, database: 1 } }, redis);

/** The RedisProc of the set that the sentinels name as master now. */
async function currentMaster() {
    const out = await cli(set.sentinels[0].port, 'SENTINEL', 'get-master-addr-by-name',
        'mymaster');
    const port = Number(out.split('\n')[1]);
    return [set.master, set.replica].find((p) => p.port === port);
}

/** The clients of the Redis at port other than sentinels, its master link
 * and this CLIENT LIST itself: gateways, or stray ROLE checks. */
async function gatewayClientsOf(port) {
    const list = await cli(port, 'CLIENT', 'LIST');
    return list.split('\n').filter((l) => l && !/ name=sentinel-/.test(l) &&
        !/ flags=[^ ]*M/.test(l) && !/ cmd=client\|list/.test(l))
        .map((l) => l.replace(/^id=\d+ /, '').replace(/ age=.*? cmd=/, ' cmd=').slice(0, 120));
}

/**
 * pusher-js subscribers of channel ch, PER_GATEWAY on each gateway; each
 * counts the sequence numbers of `ev` it receives (seen: seq -> times).
 */
async function subscribers(t, gws, ch) {
    const subs = [];
    for (const [g, gw] of gws.entries()) {
        for (let i = 0; i < PER_GATEWAY; i++) {
            const c = await connectClient(gw, { t, name: `gw${g + 1}-sub${i}` });
            const { channel } = await c.subscribe(ch);
            const s = { c, g, seen: new Map(), markers: new Set() };
            channel.bind('ev', (d) => s.seen.set(d.seq, (s.seen.get(d.seq) || 0) + 1));
            channel.bind('marker', (d) => s.markers.add(d.id));
            subs.push(s);
        }
    }
    return subs;
}

/** RATE triggers a second on ch, alternating between the gateways. */
class Load {
    constructor(gws, ch) {
        this.ch = ch;
        this.rests = gws.map((gw) => gw.rest('app1', { timeout: 5000 }));
        this.records = []; // {seq, g, sentAt, answeredAt, status}
        this.pending = new Set();
    }

    start() {
        const t0 = performance.now();
        let n = 0;
        this.timer = setInterval(() => {
            const due = Math.floor(((performance.now() - t0) * RATE) / 1000);
            for (; n < due; n++) this.fire();
        }, 5);
    }

    fire() {
        const seq = this.records.length + 1;
        const rec = { seq, g: seq % this.rests.length, sentAt: performance.now() };
        this.records.push(rec);
        const p = this.rests[rec.g].trigger(this.ch, 'ev', { seq })
            .then((res) => res.status, (e) => e.status ?? `error ${e.message}`)
            .then((status) => {
                rec.status = status;
                rec.answeredAt = performance.now();
                this.pending.delete(p);
            });
        this.pending.add(p);
    }

    /** Resolves once each gateway answered `n` triggers 200 sent after `since`. */
    okSince(since, n = 20, timeout = 10000, what = 'triggers accepted again') {
        return waitUntil(() => this.rests.every((_, g) => this.records.filter((r) =>
            r.g === g && r.sentAt >= since && r.status === 200).length >= n),
        { timeout, every: 20, what: `each gateway: ${n} ${what}` });
    }

    async stop() {
        clearInterval(this.timer);
        while (this.pending.size) await Promise.all([...this.pending]);
    }
}

/** A marker through each gateway; resolves once every subscriber has both:
 * everything each gateway published before it has arrived by then. */
async function markersSeen(gws, ch, subs) {
    const ids = [];
    for (const gw of gws) {
        const id = uniq('m-');
        ids.push(id);
        await gw.rest().trigger(ch, 'marker', { id });
    }
    await waitUntil(() => subs.every((s) => ids.every((id) => s.markers.has(id))),
        { timeout: 5000, what: 'the markers at every subscriber' });
}

/**
 * For each gateway, when it answered its first 200 after its last non-200
 * of the run (null: never refused anything). The latest of these is when
 * service resumed on both.
 */
function resumeOf(records, ngw) {
    const per = [];
    for (let g = 0; g < ngw; g++) {
        const mine = records.filter((r) => r.g === g).sort((a, b) => a.answeredAt - b.answeredAt);
        let lastBad = -1;
        mine.forEach((r, i) => {
            if (r.status !== 200) lastBad = i;
        });
        if (lastBad < 0) {
            per.push(null);
            continue;
        }
        const next = mine.slice(lastBad + 1).find((r) => r.status === 200);
        per.push(next ? next.answeredAt : Infinity);
    }
    return per;
}

/** Sum of the "link up again" figures a gateway logged from offset `from` of
 * its stderr. */
function loggedFailures(gw, from) {
    const re = /redis: link up again after (\d+) ms; publishes failed in flight=(\d+) refused while down=(\d+)/g;
    let failed = 0;
    let refused = 0;
    let lines = 0;
    for (const m of gw.stderr.slice(from).matchAll(re)) {
        lines++;
        failed += Number(m[2]);
        refused += Number(m[3]);
    }
    // After its link came back, a gateway refuses triggers until every live
    // gateway is subscribed again (so that none misses an accepted event).
    const settle = /cluster: .*triggers accepted; refused while the others resubscribed=(\d+)/g;
    for (const m of gw.stderr.slice(from).matchAll(settle)) refused += Number(m[1]);
    return { failed, refused, lines };
}

/** Events answered 200 within this of the fault may be lost in flight:
 * Redis took them, and a SIGSTOP or kill between its reply to the publisher
 * and its writes to the subscribers keeps them from the latter. */
const IN_FLIGHT_MS = 100;

/**
 * The delivery checks of a scenario whose fault came at faultAt: every
 * trigger was answered, 200 or 503, within ANSWER_MS; no subscriber saw an
 * event twice; every subscriber, on either gateway, got every event answered
 * 200, except events answered within IN_FLIGHT_MS of the fault (counted as
 * lost in flight, and printed). (Redis pub/sub keeps nothing for a gateway
 * that has not subscribed again yet: a gateway whose link came back answers
 * 503 until every live gateway is subscribed again, so the first one back
 * never accepts what the others would miss.) Returns the figures.
 */
function check(name, records, subs, faultAt) {
    const statuses = new Map();
    for (const r of records) statuses.set(r.status, (statuses.get(r.status) || 0) + 1);
    const odd = [...statuses.keys()].filter((s) => s !== 200 && s !== 503);
    assert.deepEqual(odd, [], `${name}: answers other than 200 and 503: ` +
        JSON.stringify([...statuses]));
    const slow = records.filter((r) => r.answeredAt - r.sentAt > ANSWER_MS);
    assert.deepEqual(slow.map((r) => r.seq), [], `${name}: triggers answered after ` +
        `${ANSWER_MS} ms: ${slow.slice(0, 5).map((r) => `${r.status} in ` +
            `${(r.answeredAt - r.sentAt).toFixed(0)} ms`).join(', ')}`);
    const ok = records.filter((r) => r.status === 200);
    const refused = records.filter((r) => r.status === 503);
    const inFlight = (r) => Math.abs(r.answeredAt - faultAt) <= IN_FLIGHT_MS;
    const lost = new Set();
    for (const s of subs) {
        const dups = [...s.seen].filter(([, n]) => n > 1).map(([seq]) => seq);
        assert.deepEqual(dups, [], `${name}: ${s.c.name} got these events twice or more`);
        const missing = ok.filter((r) => !s.seen.has(r.seq));
        assert.deepEqual(missing.filter((r) => !inFlight(r)).map((r) => `${r.seq} via ` +
            `gw${r.g + 1} answered ${(r.answeredAt - faultAt).toFixed(0)} ms after the fault`), [],
        `${name}: ${s.c.name} (gw${s.g + 1}) missed events answered 200`);
        for (const r of missing) lost.add(r.seq);
    }
    const deliveredAnyway = refused.filter((r) => subs.some((s) => s.seen.has(r.seq))).length;
    const per = [0, 1].map((g) => refused.filter((r) => r.g === g).length);
    return { ok: ok.length, refused: refused.length, per, deliveredAnyway, lost: lost.size };
}

/** The summary line's delivery part. */
function delivered(f) {
    const lost = f.lost ? ` except ${f.lost} lost in flight at the fault (answered 200 ` +
        `within ${IN_FLIGHT_MS} ms of it, missed by a subscriber)` : '';
    return `200-answered ${f.ok} all delivered${lost}, 503-answered ${f.refused} (per ` +
        `gateway ${f.per.join('/')}; ${f.deliveredAnyway} delivered anyway)`;
}

/** Checks that each gateway logged, since stderr offset from[g], as many
 * failed and refused publishes as it answered 503s. */
function checkLogged(name, gws, from, f) {
    const log = gws.map((gw, g) => loggedFailures(gw, from[g]));
    for (let g = 0; g < gws.length; g++) {
        assert.equal(log[g].failed + log[g].refused, f.per[g],
            `${name}: gw${g + 1} logged failed in flight ${log[g].failed} + refused ` +
            `${log[g].refused}, answered 503 ${f.per[g]} times`);
    }
    return 'logged failed/refused ' + log.map((l) => `${l.failed}/${l.refused}`).join(', ');
}

/** A sentinel watcher: resolves `at` with the time of the first
 * +switch-master message any of the sentinels publishes. */
function watchSwitch(ports) {
    const socks = [];
    let resolve;
    const at = new Promise((r) => {
        resolve = r;
    });
    let subscribed = 0;
    for (const port of ports) {
        const s = net.connect(port, '127.0.0.1');
        s.setEncoding('utf8');
        let buf = '';
        let confirmed = false;
        s.on('data', (d) => {
            buf += d;
            if (!confirmed && /subscribe\r\n\$14\r\n\+switch-master\r\n/.test(buf)) {
                confirmed = true;
                subscribed++;
            }
            if (/message\r\n\$14\r\n\+switch-master\r\n/.test(buf)) resolve(performance.now());
        });
        s.on('error', () => {});
        s.write('SUBSCRIBE +switch-master\r\n');
        socks.push(s);
    }
    return {
        at,
        ready: () => waitUntil(() => subscribed === ports.length,
            { timeout: 3000, what: 'the +switch-master watchers subscribed' }),
        close: () => socks.forEach((s) => s.destroy()),
    };
}

function secs(ms) {
    return (ms / 1000).toFixed(1);
}

test('S2: master SIGSTOPped for 20 s: 503 within 1.2 s meanwhile, resume within 5 s of the failover, the old master rejoins as a replica that nobody writes to', async (t) => {
    const gws = [sg1, sg2];
    const old = await currentMaster();
    const ch = uniq('s2-');
    const subs = await subscribers(t, gws, ch);
    await subscribedIn(old.port, ch);
    const logFrom = gws.map((gw) => gw.stderr.length);
    const load = new Load(gws, ch);
    const watch = watchSwitch(set.sentinels.map((s) => s.port));
    t.after(() => watch.close());
    await watch.ready();
    load.start();
    let cont = false;
    try {
        await load.okSince(0, 50, 5000, 'triggers accepted before the fault');
        old.proc.kill('SIGSTOP');
        const stoppedAt = performance.now();
        const switchedAt = await raceTimeout(watch.at, 15000, null);
        assert.ok(switchedAt, 'no +switch-master within 15 s of SIGSTOP');
        const fresh = await currentMaster();
        assert.notEqual(fresh.port, old.port);
        await load.okSince(switchedAt, 20, RESUME_MS + 3000, 'triggers accepted after the switch');
        await subscribedIn(fresh.port, ch);
        // The fault itself lasts 20 s, whatever happens meanwhile.
        await delay(Math.max(0, 20000 - (performance.now() - stoppedAt)));
        old.proc.kill('SIGCONT');
        cont = true;
        const contAt = performance.now();
        // Sentinel turns the old master into a replica (about 8 s after it
        // reports itself as master again). Meanwhile and afterwards no gateway
        // may be its client: each poll lists its clients (what the gateways
        // sent before SIGCONT is answered and closed before ROLE answers us).
        const strangers = new Set();
        const role = async () => {
            const r = await cli(old.port, 'ROLE');
            for (const c of await gatewayClientsOf(old.port)) strangers.add(c);
            return r;
        };
        await waitUntil(async () => /^slave/.test(await role()),
            { timeout: 15000, every: 200, what: 'the old master to become a replica' });
        const demotedAt = performance.now();
        await load.okSince(demotedAt, 20, 3000, 'triggers accepted after the demotion');
        await role();
        assert.deepEqual([...strangers], [], 'clients of the old master besides sentinels');
        assert.equal(await numsub(old.port, `mn:1:app1:${ch}`), 0,
            'a gateway subscribed on the old master');
        t.diagnostic(`S2 the old master was a replica ${secs(demotedAt - contAt)} s after SIGCONT`);
        await load.stop();
        await markersSeen(gws, ch, subs);
        const resume = resumeOf(load.records, gws.length);
        const resumedAt = Math.max(...resume.map((x) => x ?? 0));
        const f = check('S2', load.records, subs, stoppedAt);
        const logged = checkLogged('S2', gws, logFrom, f);
        console.log(`S2 resume ${secs(resumedAt - switchedAt)} s after +switch-master ` +
            `(${secs(resumedAt - stoppedAt)} s after SIGSTOP, the switch after ` +
            `${secs(switchedAt - stoppedAt)} s), ${delivered(f)}; ${logged}`);
        assert.ok(resumedAt - switchedAt <= RESUME_MS,
            `resumed ${secs(resumedAt - switchedAt)} s after the switch`);
    } finally {
        if (!cont) old.proc.kill('SIGCONT');
        await load.stop();
    }
});

/** Waits until proc is a replica in sync and every sentinel counts it as a
 * usable one (a manual failover needs one). */
async function healthyReplica(proc) {
    await waitUntil(async () => /master_link_status:up/.test(
        await cli(proc.port, 'INFO', 'replication')),
    { timeout: 15000, what: `the replica on ${proc.port} in sync` });
    for (const s of set.sentinels) {
        await waitUntil(async () => {
            const out = await cli(s.port, 'SENTINEL', 'replicas', 'mymaster');
            const lines = out.split('\n');
            const i = lines.indexOf(String(proc.port));
            if (i < 0) return false;
            const flags = lines[lines.indexOf('flags', i) + 1] || '';
            return flags === 'slave';
        }, { timeout: 15000, what: `sentinel ${s.port} to count ${proc.port} as a good replica` });
    }
}

test('S3: SENTINEL FAILOVER: resume within 5 s, no duplicates, every event answered 200 delivered', async (t) => {
    const gws = [sg1, sg2];
    const old = await currentMaster();
    const next = old === set.master ? set.replica : set.master;
    await healthyReplica(next);
    const ch = uniq('s3-');
    const subs = await subscribers(t, gws, ch);
    await subscribedIn(old.port, ch);
    const logFrom = gws.map((gw) => gw.stderr.length);
    const watch = watchSwitch(set.sentinels.map((s) => s.port));
    t.after(() => watch.close());
    await watch.ready();
    const load = new Load(gws, ch);
    load.start();
    try {
        await load.okSince(0, 50, 5000, 'triggers accepted before the failover');
        const failoverAt = performance.now();
        await waitUntil(async () =>
            (await cli(set.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'mymaster')) === 'OK',
        { timeout: 5000, every: 100, what: 'SENTINEL FAILOVER to be accepted' });
        const switchedAt = await raceTimeout(watch.at, 10000, null);
        assert.ok(switchedAt, 'no +switch-master within 10 s of SENTINEL FAILOVER');
        assert.equal((await currentMaster()).port, next.port);
        await load.okSince(switchedAt, 20, RESUME_MS + 3000, 'triggers accepted after the switch');
        await subscribedIn(next.port, ch);
        await load.okSince(performance.now(), 50, 3000, 'triggers accepted once resubscribed');
        await load.stop();
        await markersSeen(gws, ch, subs);
        const resume = resumeOf(load.records, gws.length);
        const resumedAt = Math.max(...resume.map((x) => x ?? failoverAt));
        const f = check('S3', load.records, subs, failoverAt);
        const logged = checkLogged('S3', gws, logFrom, f);
        console.log(`S3 resume ${secs(resumedAt - failoverAt)} s after SENTINEL FAILOVER ` +
            `(the switch after ${secs(switchedAt - failoverAt)} s), no duplicates, ` +
            `${delivered(f)}; ${logged}`);
        assert.ok(resumedAt - failoverAt <= RESUME_MS,
            `resumed ${secs(resumedAt - failoverAt)} s after SENTINEL FAILOVER`);
    } finally {
        await load.stop();
    }
});

test('S5: plain Redis stopped for 10 s: clients stay connected; started again: both gateways resubscribe within 2 s, every event answered 200 delivered', async (t) => {
    const gws = [pg1, pg2];
    const ch = uniq('s5-');
    const subs = await subscribers(t, gws, ch);
    await subscribedIn(redis.port, ch);
    const states = subs.map((s) => s.c.states.length);
    const logFrom = gws.map((gw) => gw.stderr.length);
    const load = new Load(gws, ch);
    load.start();
    try {
        await load.okSince(0, 50, 5000, 'triggers accepted before the fault');
        await redis.stop();
        const stoppedAt = performance.now();
        // The outage itself lasts 10 s.
        await delay(10000);
        await redis.start(); // the same port; resolves once it answers PING
        const backAt = performance.now();
        await subscribedIn(redis.port, ch, 2, 2000 + 1000);
        const resubscribed = performance.now() - backAt;
        await load.okSince(backAt, 20, 3000, 'triggers accepted after Redis returned');
        await load.okSince(performance.now(), 50, 3000, 'triggers accepted once resubscribed');
        await load.stop();
        await markersSeen(gws, ch, subs);
        const resume = resumeOf(load.records, gws.length);
        const resumedAt = Math.max(...resume.map((x) => x ?? backAt));
        const f = check('S5', load.records, subs, stoppedAt);
        const logged = checkLogged('S5', gws, logFrom, f);
        console.log(`S5 resume ${secs(resumedAt - backAt)} s after Redis answered PING again, ` +
            `resubscribed after ${secs(resubscribed)} s, ${delivered(f)}; ${logged}`);
        assert.ok(resubscribed <= 2000, `resubscribed after ${resubscribed.toFixed(0)} ms`);
        for (const [i, s] of subs.entries()) {
            assert.deepEqual(s.c.states.slice(states[i]), [], `${s.c.name} changed state`);
            assert.equal(s.c.state, 'connected');
        }
    } finally {
        await load.stop();
    }
});

test('S6: every sentinel killed, the master up: triggers keep answering 200, a cut connection goes back to the last known master; sentinels back: the gateways listen to them again', async (t) => {
    const gws = [sg1, sg2];
    const master = await currentMaster();
    const ch = uniq('s6-');
    const subs = await subscribers(t, gws, ch);
    await subscribedIn(master.port, ch);
    const logFrom = gws.map((gw) => gw.stderr.length);
    const load = new Load(gws, ch);
    load.start();
    try {
        await load.okSince(0, 50, 5000, 'triggers accepted before the fault');
        for (const s of set.sentinels) await s.stop('SIGKILL');
        const killedAt = performance.now();
        // Two seconds without sentinels is the property itself: all 200.
        await delay(2000);
        const alone = load.records.filter((r) => r.sentAt >= killedAt && r.status !== undefined);
        assert.ok(alone.length > 0);
        assert.deepEqual(alone.filter((r) => r.status !== 200).map((r) => r.status), [],
            'triggers refused while only the sentinels were down');
        // Cut every gateway connection: with no sentinel to ask, they go back
        // to the master they knew (ROLE still says master).
        const cutAt = performance.now();
        assert.notEqual(await cli(master.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), '');
        assert.notEqual(await cli(master.port, 'CLIENT', 'KILL', 'TYPE', 'normal'), '');
        await load.okSince(cutAt, 20, 3000, 'triggers accepted after the cut');
        await subscribedIn(master.port, ch, 2, 3000);
        // The sentinels come back (monitoring the master of now): each gateway
        // listens for +switch-master on one of them again.
        for (const s of set.sentinels) {
            s.args = s.args.map((a) => a.startsWith('sentinel monitor ')
                ? `sentinel monitor mymaster 127.0.0.1 ${master.port} 2` : a);
            await s.start();
        }
        const backAt = performance.now();
        const listening = async () => {
            let n = 0;
            for (const s of set.sentinels) {
                const list = await cli(s.port, 'CLIENT', 'LIST');
                n += list.split('\n').filter((l) => / cmd=subscribe/.test(l) &&
                    !/ name=sentinel-/.test(l)).length;
            }
            return n >= gws.length;
        };
        await waitUntil(listening, { timeout: 5000, what: 'both gateways subscribed to +switch-master' });
        const relisten = performance.now() - backAt;
        await load.stop();
        await markersSeen(gws, ch, subs);
        const resume = resumeOf(load.records, gws.length);
        const resumedAt = Math.max(...resume.map((x) => x ?? cutAt));
        const f = check('S6', load.records, subs, cutAt);
        const logged = checkLogged('S6', gws, logFrom, f);
        console.log(`S6 no 503 in ${secs(cutAt - killedAt)} s without sentinels; connections cut: ` +
            `back on the last known master after ${secs(resumedAt - cutAt)} s; sentinels ` +
            `listened to again ${secs(relisten)} s after they restarted; ${delivered(f)}; ` +
            logged);
        for (const gw of gws) assert.ok(gw.alive(), 'a gateway died');
    } finally {
        await load.stop();
    }
});
