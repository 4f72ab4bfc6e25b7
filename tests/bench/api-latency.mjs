// api-latency.mjs - trigger-to-receipt latency through each web server in front
// of micronotifier-api (not part of make check). For nginx, Apache 2.4 and
// lighttpd, over FastCGI and SCGI (configured from samples/, at the root), and for
// the gateway's own port as the baseline: N triggers one after another with the
// `pusher` library, each timed from the call to pusher-js receiving the event
// (and, separately, to the HTTP answer). Prints p50/p99 per path.
//
// Usage: MN_BUILDDIR=/path/to/build node tests/bench/api-latency.mjs [N=1000]
// (MN_GATEWAY and MN_API may name the binaries instead; MN_SRCDIR the sources.)
import { connectClient, percentile, performance, uniq } from '../lib/harness.mjs';
import {
    PROTOCOLS, SERVERS, startStack, startWebServer, stopStack,
} from '../lib/webservers.mjs';

const N = Number(process.argv[2] || 1000);
const WARMUP = 20;

const stack = await startStack({});
const app = stack.gw.app('app1');
const client = await connectClient(stack.gw);
const ch = uniq('bench-');
const { channel } = await client.subscribe(ch);

// Receipts by sequence number: each trigger waits for its own event.
const waiting = new Map();
channel.bind('tick', (data) => {
    const w = waiting.get(data.i);
    if (w) {
        waiting.delete(data.i);
        w(performance.now());
    }
});

async function run(label, rest) {
    const receipt = [];
    const answer = [];
    for (let i = -WARMUP; i < N; i++) {
        const got = new Promise((resolve) => waiting.set(i, resolve));
        const t0 = performance.now();
        const res = await rest.trigger(ch, 'tick', { i });
        const t1 = performance.now();
        if (res.status !== 200) throw new Error(`${label}: HTTP ${res.status}`);
        const t2 = await got;
        if (i >= 0) {
            answer.push(t1 - t0);
            receipt.push(t2 - t0);
        }
    }
    const f = (v) => v.toFixed(2).padStart(7);
    console.log(`${label.padEnd(22)} receipt p50 ${f(percentile(receipt, 50))} ms  ` +
        `p99 ${f(percentile(receipt, 99))} ms   HTTP answer p50 ` +
        `${f(percentile(answer, 50))} ms  p99 ${f(percentile(answer, 99))} ms`);
}

console.log(`${N} triggers per path, one at a time, pusher 5.3.4 -> ... -> pusher-js 8.6.0`);
await run('gateway port (direct)', stack.gw.rest('app1'));
for (const server of SERVERS) {
    for (const proto of PROTOCOLS) {
        const ws = await startWebServer(server, proto, 'root', stack.api[proto]);
        try {
            await run(`${server} + ${proto}`, ws.rest(app));
        } finally {
            await ws.stop();
        }
    }
}
client.close();
await stopStack(stack);
