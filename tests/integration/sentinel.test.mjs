// sentinel.test.mjs - distributed mode through Redis Sentinel (issue 5, first
// increment; RELIABILITY S1): a master, a replica and three real
// redis-sentinel processes (down-after-milliseconds 1000), two gateways with
// config/sample-redis-sentinel-test.json's shape (database 1) and pusher-js
// on each. kill -9 of the master: triggers succeed and reach both gateways
// again within 5 s, on the promoted replica.
import test from 'node:test';
import assert from 'node:assert/strict';

import { waitForEvent, okJson, uniq, performance } from '../lib/harness.mjs';
import {
    startSentinelSet, cli, gatewayPair, clientsOnBoth, deliveredAgain,
} from '../lib/redis.mjs';
import { member, converged } from '../lib/cluster.mjs';

const set = await startSentinelSet();
const redisConfig = {
    redis: { address: set.address, database: 1, sentinel: true, 'master-name': 'mymaster' },
};
const [gw1, gw2] = await gatewayPair(test, redisConfig, set);
const rest1 = gw1.rest();
const rest2 = gw2.rest();

test('through Sentinel: a trigger through either gateway reaches both', async (t) => {
    const ch = uniq('s-news-');
    const { ca, cb } = await clientsOnBoth(t, [gw1, gw2], ch, set.master.port);
    for (const [rest, n] of [[rest1, 1], [rest2, 2]]) {
        const got = [waitForEvent(ca, 'ev'), waitForEvent(cb, 'ev')];
        await okJson(rest.trigger(ch, 'ev', { n }));
        for (const g of got) assert.deepEqual((await g).data, { n });
    }
});

// Presence members who joined before the failover, checked after it.
const before = [];
const presenceCh = uniq('presence-s-');

test('presence across gateways through Sentinel (before the failover)', async () => {
    before.push(await member(null, gw1, presenceCh, 'p1'), await member(null, gw2, presenceCh, 'p2'));
    await converged(presenceCh, before, ['p1', 'p2'], [gw1, gw2]);
});

test('kill -9 of the master: triggers succeed and reach both gateways again within 5 s', async (t) => {
    const ch = uniq('s-failover-');
    const { a, b, ca, cb } = await clientsOnBoth(t, [gw1, gw2], ch, set.master.port);
    await set.master.stop('SIGKILL');
    const killed = performance.now();
    const { at, refused } = await deliveredAgain(rest1, ch, [ca, cb],
        { event: 'after', timeout: 5000, every: 50 });
    const ms = at - killed;
    t.diagnostic(`resumed ${ms.toFixed(0)} ms after kill -9 (${refused} trigger(s) refused meanwhile)`);
    assert.ok(ms <= 5000);
    // The gateways are on the promoted replica now.
    assert.match(await cli(set.replica.port, 'ROLE'), /^master/);
    assert.equal(a.state, 'connected');
    assert.equal(b.state, 'connected');
});

test('after the failover the cluster state is whole: earlier members listed, new ones seen everywhere', async (t) => {
    const late = await member(t, gw2, presenceCh, 'p3');
    await converged(presenceCh, [...before, late], ['p1', 'p2', 'p3'], [gw1, gw2], 5000);
    before[0].c.close();
    await converged(presenceCh, [before[1], late], ['p2', 'p3'], [gw1, gw2], 5000);
    before[1].c.close();
});
