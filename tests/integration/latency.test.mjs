// latency.test.mjs - RELIABILITY P4: 1,000 REST triggers, each received by a
// pusher-js client; prints p50/p99 of trigger-call-to-receipt and requires
// p99 < 100 ms.
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, connectClient, okJson, percentile, performance, uniq,
} from '../lib/harness.mjs';

const gw = await startGateway();
const N = 1000;

test(`${N} triggers: pusher-js receives every one, p99 latency < 100 ms`, { timeout: 120000 }, async (t) => {
    const rest = gw.rest();
    const c = await connectClient(gw, { t });
    const ch = uniq('lat-');
    const { channel } = await c.subscribe(ch);
    const sentAt = new Map();
    const seen = new Set();
    const lat = [];
    let dups = 0;
    let waiting = null;
    channel.bind('tick', (d) => {
        if (seen.has(d.i)) {
            dups++;
            return;
        }
        seen.add(d.i);
        lat.push(performance.now() - sentAt.get(d.i));
        if (waiting && waiting.i === d.i) waiting.resolve();
    });
    const rtt = []; // REST call round trips, printed as a figure only (R15 is T2)
    const start = performance.now();
    for (let i = 0; i < N; i++) {
        let timer;
        const arrived = new Promise((resolve, reject) => {
            waiting = { i, resolve };
            timer = setTimeout(() => reject(new Error(`event ${i} not received within 2 s`)), 2000);
        });
        sentAt.set(i, performance.now());
        await okJson(rest.trigger(ch, 'tick', { i }));
        rtt.push(performance.now() - sentAt.get(i));
        try {
            await arrived;
        } finally {
            clearTimeout(timer);
        }
    }
    const total = performance.now() - start;
    const p50 = percentile(lat, 50);
    const p99 = percentile(lat, 99);
    const max = Math.max(...lat);
    t.diagnostic(`received ${lat.length}/${N} in ${(total / 1000).toFixed(1)} s; ` +
        `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms`);
    t.diagnostic(`REST trigger round trip p50 ${percentile(rtt, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(rtt, 99).toFixed(2)} ms`);
    assert.equal(lat.length, N, 'every trigger received');
    assert.equal(dups, 0, 'no duplicates');
    assert.ok(p99 < 100, `p99 ${p99.toFixed(2)} ms, want < 100 ms`);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
