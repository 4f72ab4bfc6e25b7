// http-abuse.test.mjs - hostile HTTP at the gateway's port (RELIABILITY G8,
// G9): oversized headers and URIs, many headers, broken upgrades, and a
// slowloris crowd while a prober keeps connecting. Each gets a 4xx or a
// close within the bound; the gateway keeps serving and exits cleanly.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startGateway, rawConnect, performance, waitUntil } from '../lib/harness.mjs';

const gw = await startGateway({ config: { workers: 2 } });

/** Sends raw bytes; resolves {status, closed, ms} at the first status line or close. */
function rawHttp(text, timeout = 5000) {
    return new Promise((resolve, reject) => {
        const t0 = performance.now();
        const s = net.connect(gw.port, '127.0.0.1');
        let got = '';
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error(`no answer in ${timeout} ms`));
        }, timeout);
        const done = (closed) => {
            clearTimeout(timer);
            const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
            resolve({ status: m ? Number(m[1]) : null, closed, ms: performance.now() - t0 });
            s.destroy();
        };
        s.on('data', (d) => {
            got += d.toString('latin1');
            if (/\r\n/.test(got)) done(false);
        });
        s.on('close', () => done(true));
        s.on('error', () => done(true));
        s.write(text);
    });
}

const upgrade = (extra = '', uri = '/app/app1-key?protocol=7') =>
    `GET ${uri} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;

async function stillServes() {
    const c = await rawConnect(gw);
    await c.barrier();
    c.close();
}

test('a 16 KiB header is refused (4xx or close) within 1 s', async () => {
    const r = await rawHttp(upgrade(`Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Big: ${'a'.repeat(16384)}\r\n`));
    assert.ok(r.closed || (r.status >= 400 && r.status < 500), JSON.stringify(r));
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    await stillServes();
});

test('a 64 KiB URI is refused within 1 s', async () => {
    const r = await rawHttp(upgrade('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
        `/app/app1-key?protocol=7&x=${'b'.repeat(65536)}`));
    assert.ok(r.closed || (r.status >= 400 && r.status < 500), JSON.stringify(r));
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    await stillServes();
});

test('500 headers are refused or answered within 1 s', async () => {
    let extra = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    for (let i = 0; i < 500; i++) extra += `X-H${i}: v\r\n`;
    const r = await rawHttp(upgrade(extra));
    assert.ok(r.closed || r.status !== null, JSON.stringify(r));
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    await stillServes();
});

test('an upgrade without Sec-WebSocket-Key gets no WebSocket', async () => {
    const r = await rawHttp(upgrade(''));
    assert.notEqual(r.status, 101, JSON.stringify(r));
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    await stillServes();
});

test('an upgrade asking for WebSocket version 12 gets no WebSocket', async () => {
    const r = await rawHttp(upgrade('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n')
        .replace('Version: 13', 'Version: 12'));
    assert.notEqual(r.status, 101, JSON.stringify(r));
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    await stillServes();
});

test('slowloris: 100 connections dribbling headers are closed by 12 s; a prober keeps connecting fast',
    { timeout: 60000 }, async (t) => {
        const slow = [];
        let closed = 0;
        for (let i = 0; i < 100; i++) {
            const s = net.connect(gw.port, '127.0.0.1');
            s.on('error', () => {});
            s.on('close', () => closed++);
            s.write('GET /app/app1-key?protocol=7 HTTP/1.1\r\nHost: x\r\n');
            slow.push(s);
        }
        const drip = setInterval(() => {
            for (const s of slow) if (!s.destroyed) s.write('X-Slow: 1\r\n');
        }, 1000);
        const t0 = performance.now();
        const probes = [];
        try {
            while (closed < slow.length && performance.now() - t0 < 15000) {
                const p0 = performance.now();
                await stillServes();
                probes.push(performance.now() - p0);
            }
        } finally {
            clearInterval(drip);
        }
        const secs = (performance.now() - t0) / 1000;
        probes.sort((a, b) => a - b);
        const p99 = probes[Math.floor(probes.length * 0.99)] ?? 0;
        t.diagnostic(`${closed}/${slow.length} slow connections closed after ${secs.toFixed(1)} s; ` +
            `${probes.length} probes, connect+ping p99 ${p99.toFixed(1)} ms`);
        await waitUntil(() => closed === slow.length, { timeout: 1000, what: 'every slow connection closed' });
        assert.ok(secs <= 12.5, `closed after ${secs.toFixed(1)} s`);
        assert.ok(p99 < 200, `probe p99 ${p99.toFixed(1)} ms`);
        for (const s of slow) s.destroy();
    });

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
