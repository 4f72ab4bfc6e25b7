// cli.test.mjs - the gateway's command line as a user meets it: --check-config
// (exit 0/1, errors naming the file, the JSON path and the reason),
// --config-docs, a missing file, a busy port, and the embedded default
// (localhost:8111, app "demo", key "demo-key", secret "demo-secret") driven by
// pusher-js and the pusher SDK exactly as the README shows.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
    gatewayBin, makeConfig, freePort, waitUntil, raceTimeout, Pusher, PusherServer,
    SANITIZER_RE,
} from '../lib/harness.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-cli-'));
const children = new Set();
process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the gateway with args to completion (deadline 20 s). */
function run(args) {
    return new Promise((resolve, reject) => {
        const p = spawn(gatewayBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        const timer = setTimeout(() => {
            p.kill('SIGKILL');
            reject(new Error(`${args.join(' ')}: still running after 20 s`));
        }, 20000);
        p.on('error', reject);
        p.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({ code, signal, out, err });
        });
    });
}

function writeConfig(name, value) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
    return file;
}

function noSanitizer(r) {
    assert.doesNotMatch(r.err, SANITIZER_RE, r.err);
}

test('--check-config accepts the test config: exit 0', async () => {
    const file = writeConfig('good.json', makeConfig(await freePort()));
    const r = await run(['-c', file, '--check-config']);
    assert.equal(r.code, 0, r.err);
    noSanitizer(r);
});

const invalid = [
    ['a misspelt key', { prot: 8111 }, ['prot']],
    ['a port that is not a number', { port: 'abc' }, ['port']],
    ['a port out of range', { port: 70000 }, ['port']],
    ['an application without a key', { applications: [{ name: 'a', secret: 's' }] },
        ['applications', 'key']],
    ['an unknown per-app key', {
        applications: [{ name: 'a', key: 'k', secret: 's', 'client-event': true }],
    }, ['applications', 'client-event']],
    ['a wrong type in an app limit', {
        applications: [{ name: 'a', key: 'k', secret: 's', 'max-event-size': 'big' }],
    }, ['applications', 'max-event-size']],
];

for (const [what, cfg, words] of invalid) {
    test(`--check-config refuses ${what}: exit 1, naming the file, the JSON path and the reason`, async () => {
        const file = writeConfig(`bad-${words.at(-1)}.json`, cfg);
        const r = await run(['-c', file, '--check-config']);
        assert.equal(r.code, 1, `exit ${r.code}; stderr ${r.err}`);
        const msg = r.err + r.out;
        assert.ok(msg.includes(path.basename(file)), `names the file: ${msg}`);
        for (const w of words) assert.ok(msg.includes(w), `mentions ${w}: ${msg}`);
        assert.ok(msg.trim().split(':').length >= 3, `has a reason: ${msg}`);
        noSanitizer(r);
    });
}

test('--check-config on invalid JSON names the file and the position', async () => {
    const file = writeConfig('syntax.json', '{"port": 1,,}');
    const r = await run(['-c', file, '--check-config']);
    assert.equal(r.code, 1);
    assert.ok(r.err.includes('syntax.json'), r.err);
    assert.match(r.err, /:1\b|line 1/, r.err);
});

test('a missing config file is an error naming the file, not a start with defaults', async () => {
    const file = path.join(dir, 'does-not-exist.json');
    const r = await run(['-c', file]);
    assert.notEqual(r.code, 0);
    assert.ok(r.err.includes('does-not-exist.json'), r.err);
});

test('--config-docs prints the key reference with every documented key', async () => {
    const r = await run(['--config-docs']);
    assert.equal(r.code, 0, r.err);
    for (const key of ['host', 'port', 'certificate', 'private-key', 'applications', 'enabled',
        'client-events', 'max-event-size', 'max-trigger-channels', 'max-batch-events',
        'max-presence-members', 'max-user-info-size', 'max-user-id-length', 'client-event-rate',
        'max-subscriptions', 'max-message-size', 'max-request-size', 'activity-timeout']) {
        assert.ok(r.out.includes(key), `documents ${key}`);
    }
});

test('a port already in use makes the gateway exit non-zero with a message (no hang)', async (t) => {
    const blocker = net.createServer();
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => blocker.close());
    const { port } = blocker.address();
    const file = writeConfig('busy.json', { ...makeConfig(port), workers: 1 });
    const r = await run(['-c', file]);
    assert.notEqual(r.code, 0, 'must not start on a busy port');
    assert.ok(r.err.length > 0, 'says why');
    noSanitizer(r);
});

test('no -c: the embedded default serves the README example on localhost:8111', { timeout: 30000 }, async (t) => {
    const free = await new Promise((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(8111, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    assert.ok(free, 'port 8111 must be free for this test');
    const p = spawn(gatewayBin, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.stdout.on('data', (d) => (err += d));
    const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
    t.after(() => p.kill('SIGKILL'));
    await waitUntil(() => new Promise((resolve) => {
        const s = net.connect({ host: 'localhost', port: 8111 });
        s.once('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.once('error', () => resolve(false));
    }), { timeout: 20000, what: 'localhost:8111 to accept' });

    const client = new Pusher('demo-key', {
        wsHost: 'localhost', wsPort: 8111, forceTLS: false, enabledTransports: ['ws'],
        cluster: 'mt1', disableStats: true,
    });
    t.after(() => client.disconnect());
    const got = new Promise((resolve) => client.subscribe('news').bind('update', resolve));
    await new Promise((resolve) => client.subscribe('news').bind('pusher:subscription_succeeded', resolve));
    const server = new PusherServer({
        appId: 'demo', key: 'demo-key', secret: 'demo-secret', host: 'localhost', port: '8111',
        useTLS: false,
    });
    const res = await server.trigger('news', 'update', { hello: 'world' });
    assert.equal(res.status, 200);
    assert.deepEqual(await raceTimeout(got, 2000, 'timeout'), { hello: 'world' });

    client.disconnect();
    p.kill('SIGTERM');
    const ex = await raceTimeout(exited, 20000, null);
    assert.ok(ex, 'exited within 20 s of SIGTERM');
    children.delete(p);
    assert.deepEqual(ex, { code: 0, signal: null }, err);
    assert.doesNotMatch(err, SANITIZER_RE, err);
    assert.match(err, /ws:\/\/localhost:8111\/app\/demo-key/, 'the banner says where to look');
    assert.doesNotMatch(err, /demo-secret/, 'the secret is never logged, not even the demo one');
});
