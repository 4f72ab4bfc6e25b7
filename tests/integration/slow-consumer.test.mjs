// slow-consumer.test.mjs - a client that stops reading (RELIABILITY B1, T1 size):
// 100 healthy subscribers and one raw TCP WebSocket client that subscribes and
// then never reads, on one channel; 10 KiB events at 200/s. The stalled client
// is closed with 4100 once its send queue passes the cap (test: 256 KiB / 256
// messages), the healthy ones lose nothing and their latency stays near the
// run without it, and the gateway's memory stays bounded. Prints RSS before,
// peak and after, the time to the close, and the healthy clients' latency.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

import {
    startGateway, WebSocket, okJson, uniq, waitUntil, delay, percentile, performance,
    PUSHER_QUERY,
} from '../lib/harness.mjs';

const HEALTHY = 100;
const RATE = 200; // events per second
const BATCH = 10; // events per batch_events call: RATE / BATCH calls per second
const DATA_BYTES = 10 * 1024;
const QUEUE_BYTES = 256 * 1024;

const gw = await startGateway({
    config: { 'send-queue-bytes': QUEUE_BYTES, 'send-queue-messages': 256, workers: 2 },
});
const rest = gw.rest();

function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

/** Whether process pid runs with AddressSanitizer's runtime. */
function sanitized(pid) {
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan');
}

/**
 * A WebSocket client on a plain net.Socket with the upgrade written by hand, so
 * that it can stop reading (socket.pause(): the kernel buffers fill and the
 * gateway's writes block). Parses server frames: counts text frames, records
 * the close code.
 */
class StalledClient {
    constructor(port, key) {
        this.sock = net.connect({ host: '127.0.0.1', port });
        this.buf = Buffer.alloc(0);
        this.upgraded = false;
        this.texts = [];
        this.textCount = 0;
        this.closeCode = null;
        this.ended = false;
        const wsKey = crypto.randomBytes(16).toString('base64');
        this.sock.on('connect', () => {
            this.sock.write(`GET /app/${key}?${PUSHER_QUERY} HTTP/1.1\r\n` +
                `Host: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                `Sec-WebSocket-Key: ${wsKey}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        });
        this.sock.on('data', (d) => this.onData(d));
        this.sock.on('close', () => {
            this.ended = true;
        });
        this.sock.on('error', () => {
            this.ended = true;
        });
    }

    onData(d) {
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
        if (!this.upgraded) {
            const end = this.buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            assert.match(this.buf.subarray(0, end).toString(), /^HTTP\/1\.1 101/);
            this.upgraded = true;
            this.buf = this.buf.subarray(end + 4);
        }
        for (;;) {
            if (this.buf.length < 2) return;
            const op = this.buf[0] & 0x0f;
            let len = this.buf[1] & 0x7f;
            let off = 2;
            if (len === 126) {
                if (this.buf.length < 4) return;
                len = this.buf.readUInt16BE(2);
                off = 4;
            } else if (len === 127) {
                if (this.buf.length < 10) return;
                len = Number(this.buf.readBigUInt64BE(2));
                off = 10;
            }
            if (this.buf.length < off + len) return;
            const payload = this.buf.subarray(off, off + len);
            this.buf = this.buf.subarray(off + len);
            if (op === 1) {
                this.textCount++;
                if (this.texts.length < 8) this.texts.push(payload.toString());
            } else if (op === 8) {
                this.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
                this.closeReason = payload.subarray(2).toString();
            }
        }
    }

    send(obj) {
        const payload = Buffer.from(JSON.stringify(obj));
        const mask = crypto.randomBytes(4);
        const head = payload.length < 126
            ? Buffer.from([0x81, 0x80 | payload.length])
            : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
        const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
        this.sock.write(Buffer.concat([head, mask, body]));
    }

    destroy() {
        this.sock.destroy();
    }
}

/** A healthy subscriber that records, per event, its seq and latency. */
function healthy(ch) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/app/app1-key?${PUSHER_QUERY}`,
            { perMessageDeflate: false });
        const c = { ws, seqs: [], lat: [], subscribed: false };
        ws.on('message', (buf) => {
            // Only the head is decoded: 100 clients x 200 events/s of 10 KiB.
            const head = buf.subarray(0, 160).toString();
            const m = /\\"seq\\":(\d+),\\"ts\\":([\d.]+)/.exec(head);
            if (m) {
                c.seqs.push(Number(m[1]));
                c.lat.push(performance.now() - Number(m[2]));
            } else if (head.includes('pusher:connection_established')) {
                ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: ch } }));
            } else if (head.includes('subscription_succeeded')) {
                c.subscribed = true;
                resolve(c);
            } else if (head.includes('pusher:ping')) {
                ws.send('{"event":"pusher:pong","data":{}}');
            }
        });
        ws.on('error', reject);
        ws.on('close', (code) => {
            c.closeCode = code;
        });
    });
}

/** Publishes RATE events/s for `seconds`, or until stop() says so after a
 * batch; returns the next seq. */
async function publish(ch, seq, seconds, stop = () => false) {
    const pad = 'x'.repeat(DATA_BYTES - 64);
    const t0 = performance.now();
    const calls = Math.round(seconds * RATE / BATCH);
    for (let i = 0; i < calls; i++) {
        const batch = [];
        for (let k = 0; k < BATCH; k++) {
            const data = `{"seq":${seq++},"ts":${performance.now().toFixed(3)},"pad":"${pad}"}`;
            batch.push({ channel: ch, name: 'tick', data: data.padEnd(DATA_BYTES, ' ') });
        }
        await okJson(rest.triggerBatch(batch));
        if (stop()) break;
        const next = t0 + ((i + 1) * 1000 * BATCH) / RATE; // pacing, not a wait for a condition
        const wait = next - performance.now();
        if (wait > 0) await delay(wait);
    }
    return seq;
}

test(`a client that stops reading is closed with 4100; ${HEALTHY} others lose nothing; memory bounded`, { timeout: 120000 }, async (t) => {
    const ch = uniq('pub-');
    const subs = [];
    for (let i = 0; i < HEALTHY; i++) subs.push(await healthy(ch));
    t.after(() => subs.forEach((c) => c.ws.terminate()));

    // Phase 1: the baseline, no stalled client.
    let seq = await publish(ch, 0, 2);
    await waitUntil(() => subs.every((c) => c.seqs.length === seq),
        { timeout: 10000, what: 'baseline events at every subscriber' });
    const baseLat = subs.flatMap((c) => c.lat);
    const baseP99 = percentile(baseLat, 99);
    for (const c of subs) c.lat = [];

    // Phase 2: one client subscribes and stops reading.
    const stalled = new StalledClient(gw.port, 'app1-key');
    t.after(() => stalled.destroy());
    await waitUntil(() => stalled.texts.some((s) => s.includes('connection_established')),
        { what: 'the stalled client to connect' });
    stalled.send({ event: 'pusher:subscribe', data: { channel: ch } });
    await waitUntil(() => stalled.texts.some((s) => s.includes('subscription_succeeded')),
        { what: 'the stalled client to subscribe' });
    stalled.sock.pause();
    const rssBefore = rssKiB(gw.proc.pid);
    let rssPeak = rssBefore;
    const t0 = performance.now();
    let closedAt = null;
    const closeSeen = () => /slow client closed/.test(gw.stderr);
    const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, rssKiB(gw.proc.pid));
    }, 50);
    t.after(() => clearInterval(sampler));
    const from = seq;
    seq = await publish(ch, seq, 15, () => {
        if (closeSeen()) {
            closedAt = performance.now();
            stalled.sock.resume(); // read again: the close frame follows the backlog
        }
        return closedAt !== null;
    });
    // One more second past the close: the others are measured after it too.
    if (closedAt !== null) seq = await publish(ch, seq, 1);
    clearInterval(sampler);
    assert.ok(closedAt !== null, `the stalled client was not closed within 15 s; stderr:\n${gw.tail()}`);
    await waitUntil(() => stalled.closeCode !== null || stalled.ended,
        { timeout: 10000, what: 'the stalled client to see its close' });
    const closeMs = closedAt - t0;

    await waitUntil(() => subs.every((c) => c.seqs.length === seq),
        { timeout: 15000, what: `all ${seq} events at every healthy subscriber` });
    const rssAfter = rssKiB(gw.proc.pid);
    const lat = subs.flatMap((c) => c.lat);
    const p50 = percentile(lat, 50);
    const p99 = percentile(lat, 99);

    t.diagnostic(`stalled client closed with ${stalled.closeCode} (${stalled.closeReason}) ` +
        `${(closeMs / 1000).toFixed(2)} s after it stopped reading; it had received ` +
        `${stalled.textCount} frames (kernel buffers); events published ${seq - from} in phase 2`);
    t.diagnostic(`gateway RSS: before ${(rssBefore / 1024).toFixed(1)} MiB, peak ` +
        `${(rssPeak / 1024).toFixed(1)} MiB (+${((rssPeak - rssBefore) / 1024).toFixed(2)} MiB), ` +
        `after ${(rssAfter / 1024).toFixed(1)} MiB; queue cap ${QUEUE_BYTES / 1024} KiB`);
    t.diagnostic(`healthy latency: baseline p99 ${baseP99.toFixed(1)} ms; with the stalled ` +
        `client p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${HEALTHY} subscribers, ` +
        `${RATE} events/s of ${DATA_BYTES / 1024} KiB)`);

    assert.equal(stalled.closeCode, 4100, 'close frame with 4100 once it read again');
    assert.ok(closeMs < 10000, `closed after ${closeMs} ms`);
    for (const c of subs) {
        assert.equal(c.closeCode, undefined, 'no healthy subscriber was closed');
        assert.ok(c.seqs.every((s, i) => s === i), 'every event, in order, none lost');
    }
    if (sanitized(gw.proc.pid)) {
        // ASan's quarantine keeps freed frames for a while: RSS says nothing there.
        t.diagnostic('RSS bound not checked: sanitizer build (ASan quarantine holds freed memory)');
    } else {
        assert.ok(rssPeak - rssBefore <= QUEUE_BYTES / 1024 + 2048,
            `RSS grew by ${rssPeak - rssBefore} KiB, more than the queue cap + 2 MiB`);
    }
    // 1.5x the baseline, with a 20 ms floor: loopback p99s of a few ms jitter by more.
    assert.ok(p99 <= Math.max(1.5 * baseP99, baseP99 + 20),
        `p99 ${p99} ms vs baseline ${baseP99} ms`);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
