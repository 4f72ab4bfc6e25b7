// webhooks-tls.test.mjs - webhooks to https:// receivers (issue 6, PROTOCOL.md
// section 13). Real Node https receivers with config/test-cert.pem (self-signed
// for localhost and 127.0.0.1) check every request with the `pusher` library's
// webhook verifier (isValid(), then getEvents()). The gateway trusts that
// certificate through the receiver's "ca-file"; a receiver without one is
// verified against the system's CA store and must never get a request (the
// failure is logged and retried); so must a receiver whose address is not in
// the certificate. A 500 then 200 over https is retried with the same body,
// and a receiver that accepts TCP but never finishes the TLS handshake times
// out after 5 s and is retried. The last test prints the counts of each event
// type received against the counts expected.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
    startGateway, connectClient, gatewayBin, performance, uniq, waitUntil, SANITIZER_RE, certFile,
} from '../lib/harness.mjs';
import { Receiver, tally } from '../lib/webhook-receiver.mjs';

const DELAY_MS = 3000; // the documented delay of channel_vacated and member_removed
const TIMEOUT_MS = 5000; // one webhook request, connect to status line

// ------------------------------------------------------------------ receivers

/** Accepts TCP connections and never answers: a TLS handshake that hangs. */
class SilentReceiver {
    constructor() {
        this.connections = [];
        this.sockets = new Set();
    }

    async start() {
        this.server = net.createServer((s) => {
            this.connections.push(performance.now());
            this.sockets.add(s);
            s.on('data', () => {}); // read the ClientHello, answer nothing
            s.on('error', () => {});
            s.on('close', () => this.sockets.delete(s));
        });
        await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
        this.port = this.server.address().port;
        return this;
    }

    stop() {
        for (const s of this.sockets) s.destroy();
        return new Promise((resolve) => this.server.close(resolve));
    }
}

// ------------------------------------------------------------------- setup

const apps = {
    app1: { name: 'app1', id: 'app1', key: 'app1-key', secret: 'app1-secret', 'client-events': true },
    named: { name: 'named', key: 'named-key', secret: 'named-secret' },
    flaky: { name: 'flaky', key: 'flaky-key', secret: 'flaky-secret' },
    untrusted: { name: 'untrusted', key: 'untrusted-key', secret: 'untrusted-secret' },
    mismatch: { name: 'mismatch', key: 'mismatch-key', secret: 'mismatch-secret' },
    silent: { name: 'silent', key: 'silent-key', secret: 'silent-secret' },
};
const rx = await new Receiver({ tls: true }).start();
const hooks = {
    app1: rx.route('/hooks/app1', apps.app1),
    named: rx.route('/hooks/named', apps.named),
    flaky: rx.route('/hooks/flaky', apps.flaky),
};
// Each failing receiver has a server of its own, so that its connections can
// be counted.
const untrusted = await new Receiver({ tls: true }).start();
const untrustedRoute = untrusted.route('/hooks/untrusted', apps.untrusted);
// 127.0.0.2 is loopback too, but not in the certificate (127.0.0.1, localhost).
const mismatch = await new Receiver({ tls: true, host: '127.0.0.2' }).start();
const mismatchRoute = mismatch.route('/hooks/mismatch', apps.mismatch);
const silent = await new SilentReceiver().start();

apps.app1.webhooks = [{ url: rx.url('/hooks/app1'), 'ca-file': certFile }];
apps.named.webhooks = [{ url: rx.url('/hooks/named', 'localhost'), 'ca-file': certFile,
    events: ['channel_occupied'] }];
apps.flaky.webhooks = [{ url: rx.url('/hooks/flaky'), 'ca-file': certFile }];
apps.untrusted.webhooks = [{ url: untrusted.url('/hooks/untrusted') }]; // the system's CAs
apps.mismatch.webhooks = [{ url: mismatch.url('/hooks/mismatch'), 'ca-file': certFile }];
apps.silent.webhooks = [{ url: `https://127.0.0.1:${silent.port}/hooks/silent`, 'ca-file': certFile }];
// tests/lsan.supp hides every leak in libssl (for lws's TLS listener, which
// this gateway has not): with no suppressions, the sanitizer tier checks that
// each SSL and SSL_CTX of the webhook sender is freed.
const lsanDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-whtls-lsan-'));
fs.writeFileSync(path.join(lsanDir, 'none.supp'), '');
const lsanBefore = process.env.LSAN_OPTIONS;
process.env.LSAN_OPTIONS = `${lsanBefore || ''} suppressions=${path.join(lsanDir, 'none.supp')}`;
const gw = await startGateway({ apps: Object.values(apps) });
if (lsanBefore === undefined) delete process.env.LSAN_OPTIONS;
else process.env.LSAN_OPTIONS = lsanBefore;

const { table, account } = tally(); // counts of each event type, printed last

const member = (id) => ({ user_id: id, user_info: { name: id } });

/** Runs the gateway with --check-config on config; resolves {code, err}. */
function checkConfig(file) {
    return new Promise((resolve, reject) => {
        const p = spawn(gatewayBin, ['-c', file, '--check-config'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code, err }));
    });
}

// ------------------------------------------------------------------- tests

test('config: https urls and ca-file are accepted; ca-file needs https and a readable PEM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-whtls-'));
    const base = { name: 'a', key: 'a-key', secret: 'a-secret' };
    const write = (hook) => {
        const file = path.join(dir, 'c.json');
        fs.writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 1, applications: [{ ...base, webhooks: [hook] }] }));
        return file;
    };
    try {
        for (const hook of [{ url: 'https://x/' }, { url: 'https://x:8443/p?q=1', 'ca-file': certFile },
            { url: 'https://[::1]/', 'ca-file': 'relative.pem' }]) {
            const r = await checkConfig(write(hook));
            assert.equal(r.code, 0, `${JSON.stringify(hook)}: exit ${r.code}: ${r.err}`);
        }
        const r = await checkConfig(write({ url: 'http://x/', 'ca-file': certFile }));
        assert.equal(r.code, 1);
        assert.match(r.err, /webhooks\[0\]\.ca-file: is for https:\/\/ receivers only/);
        // A ca-file that cannot be loaded stops the gateway at start, naming
        // the receiver by host and port (a URL's query may hold a token).
        const bad = path.join(dir, 'not-a-cert.pem');
        fs.writeFileSync(bad, 'not a certificate\n');
        for (const ca of [bad, path.join(dir, 'missing.pem')]) {
            const file = write({ url: 'https://127.0.0.1:9/hook?token=s3cr3t', 'ca-file': ca });
            const res = await new Promise((resolve, reject) => {
                const p = spawn(gatewayBin, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
                let err = '';
                p.stderr.on('data', (d) => (err += d));
                p.stdout.on('data', (d) => (err += d));
                p.on('error', reject);
                p.on('close', (code) => resolve({ code, err }));
            });
            assert.equal(res.code, 1, `exit ${res.code}: ${res.err}`);
            assert.match(res.err, /webhook: cannot load the certificates to trust app=a host=127\.0\.0\.1 port=9: /);
            assert.doesNotMatch(res.err, /s3cr3t/);
            assert.doesNotMatch(res.err, SANITIZER_RE);
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('channel_occupied and channel_vacated arrive over https, signed and verified', async (t) => {
    const h = hooks.app1;
    const ch = uniq('whtls-pub-');
    const c = await connectClient(gw, { t });
    const t0 = performance.now();
    await c.subscribe(ch);
    const occ = await h.waitFor({ name: 'channel_occupied', channel: ch }, 3000);
    t.diagnostic(`channel_occupied over https after ${(occ.at - t0).toFixed(1)} ms`);
    c.pusher.unsubscribe(ch);
    await c.barrier();
    const left = performance.now();
    const vac = await h.waitFor({ name: 'channel_vacated', channel: ch }, DELAY_MS + 3000);
    assert.ok(vac.at - left >= DELAY_MS - 100, `vacated after ${vac.at - left} ms`);
    const reqs = h.requests.filter((r) => r.events.some((e) => e.channel === ch));
    assert.equal(reqs.length, 2);
    for (const r of reqs) {
        assert.ok(r.valid, `pusher.webhook().isValid(): ${r.rawBody}`);
        assert.ok(r.encrypted, 'over TLS');
        assert.equal(r.servername, false, 'no SNI for an IP address');
        assert.equal(r.host, `127.0.0.1:${rx.port}`);
        assert.equal(r.contentType, 'application/json');
    }
    account('channel_occupied', 1, h.of('channel_occupied', ch).length);
    account('channel_vacated', 1, h.of('channel_vacated', ch).length);
});

test('member_added / member_removed and client_event over https', async (t) => {
    const h = hooks.app1;
    const ch = `presence-${uniq('whtls-')}`;
    const a = await connectClient(gw, { t, presence: member('u1') });
    const b = await connectClient(gw, { t, presence: member('u2') });
    const { channel: ca } = await a.subscribe(ch);
    await b.subscribe(ch);
    await h.waitFor({ name: 'member_added', channel: ch, user_id: 'u1' }, 3000);
    await h.waitFor({ name: 'member_added', channel: ch, user_id: 'u2' }, 3000);
    ca.trigger('client-say', 'over tls');
    const ce = await h.waitFor({ name: 'client_event', channel: ch }, 3000);
    assert.equal(ce.event, 'client-say');
    assert.equal(ce.data, 'over tls');
    assert.equal(ce.user_id, 'u1');
    b.pusher.unsubscribe(ch);
    await b.barrier();
    await h.waitFor({ name: 'member_removed', channel: ch, user_id: 'u2' }, DELAY_MS + 3000);
    account('member_added', 2, h.of('member_added', ch).length);
    account('member_removed', 1, h.of('member_removed', ch).length);
    account('client_event', 1, h.of('client_event', ch).length);
    account('channel_occupied', 1, h.of('channel_occupied', ch).length);
});

test('a receiver named by host name gets SNI and is verified by that name', async (t) => {
    const h = hooks.named;
    const ch = uniq('whtls-named-');
    const c = await connectClient(gw, { t, app: 'named' });
    await c.subscribe(ch);
    await h.waitFor({ name: 'channel_occupied', channel: ch }, 3000);
    const r = h.requests.find((q) => q.events.some((e) => e.channel === ch));
    assert.ok(r.valid);
    assert.equal(r.servername, 'localhost');
    assert.equal(r.host, `localhost:${rx.port}`);
    account('channel_occupied', 1, h.of('channel_occupied', ch).length);
});

test('a 500 over https is retried with back-off; the 200 retry carries the same signed body', async (t) => {
    const h = hooks.flaky;
    h.fail = 1;
    const ch = uniq('whtls-retry-');
    const c = await connectClient(gw, { t, app: 'flaky' });
    await c.subscribe(ch);
    await h.waitFor({ name: 'channel_occupied', channel: ch }, 5000);
    const tries = h.requests.filter((r) => r.events.some((e) => e.channel === ch));
    assert.equal(tries.length, 2, 'the failed request and its retry');
    assert.deepEqual(tries.map((r) => r.status), [500, 200]);
    assert.ok(tries.every((r) => r.valid && r.encrypted));
    assert.equal(tries[1].rawBody, tries[0].rawBody);
    const gap = tries[1].at - tries[0].at;
    t.diagnostic(`retried ${gap.toFixed(0)} ms after the 500`);
    assert.ok(gap >= 900, `retry after ${gap} ms, want the 1 s back-off`);
    assert.match(gw.stderr, /webhook: receiver failing app=flaky host=127\.0\.0\.1 port=\d+ status=500 error=HTTP status/);
    account('channel_occupied', 1, h.of('channel_occupied', ch).length);
});

test('an untrusted certificate (no ca-file: the system CAs) gets nothing; logged and retried', async (t) => {
    const ch = uniq('whtls-untrusted-');
    const c = await connectClient(gw, { t, app: 'untrusted' });
    const from = untrusted.connections.length;
    await c.subscribe(ch);
    // first attempt at once, retries 1 s and 2 s later
    await waitUntil(() => untrusted.connections.length - from >= 3, {
        timeout: 6000, what: 'three connection attempts to the untrusted receiver',
    });
    const at = untrusted.connections.slice(from);
    t.diagnostic(`attempts at +0, ${at.slice(1).map((x) => `+${(x - at[0]).toFixed(0)}`).join(', ')} ms; ` +
        `receiver saw handshake errors: ${[...new Set(untrusted.tlsErrors)].join(', ')}`);
    assert.ok(at[1] - at[0] >= 900, 'the retry waits for the back-off');
    assert.equal(untrustedRoute.requests.length, 0, 'no request over an unverified connection');
    assert.match(gw.stderr, /webhook: receiver failing app=untrusted host=127\.0\.0\.1 port=\d+ status=-1 error=certificate verify failed: self[- ]signed certificate \(retrying with back-off\)/);
    account('channel_occupied', 0, untrustedRoute.of('channel_occupied', ch).length);
});

test('a trusted certificate that does not name the URL\'s address gets nothing', async (t) => {
    const ch = uniq('whtls-mismatch-');
    const c = await connectClient(gw, { t, app: 'mismatch' });
    const from = mismatch.connections.length;
    await c.subscribe(ch);
    await waitUntil(() => mismatch.connections.length - from >= 2, {
        timeout: 4000, what: 'two connection attempts to 127.0.0.2',
    });
    assert.equal(mismatchRoute.requests.length, 0);
    assert.match(gw.stderr, /webhook: receiver failing app=mismatch host=127\.0\.0\.2 port=\d+ status=-1 error=certificate verify failed: IP address mismatch/);
    account('channel_occupied', 0, mismatchRoute.of('channel_occupied', ch).length);
});

test('a TLS handshake that hangs times out after 5 s and is retried', { timeout: 30000 }, async (t) => {
    const c = await connectClient(gw, { t, app: 'silent' });
    const from = silent.connections.length;
    await c.subscribe(uniq('whtls-silent-'));
    await waitUntil(() => silent.connections.length - from >= 2, {
        timeout: TIMEOUT_MS + 4000, every: 50, what: 'the retry after the handshake timed out',
    });
    const [first, second] = silent.connections.slice(from);
    t.diagnostic(`second attempt ${(second - first).toFixed(0)} ms after the first`);
    assert.ok(second - first >= TIMEOUT_MS + 900, `retried after ${second - first} ms, want 5 s + 1 s`);
    assert.match(gw.stderr, /webhook: receiver failing app=silent host=127\.0\.0\.1 port=\d+ status=-2 error=timed out during the tls handshake/);
});

test('every request verified; counts of each event type received against expected', (t) => {
    let invalid = 0;
    let total = 0;
    for (const r of rx.routes.values()) {
        total += r.requests.length;
        invalid += r.requests.filter((q) => !q.valid || !q.encrypted).length;
    }
    t.diagnostic(`${total} webhook requests over https, ${invalid} failing pusher.webhook().isValid()`);
    t.diagnostic(`untrusted receiver: ${untrusted.connections.length} connections, ` +
        `${untrustedRoute.requests.length} requests; 127.0.0.2: ${mismatch.connections.length} connections, ` +
        `${mismatchRoute.requests.length} requests; silent: ${silent.connections.length} connections`);
    t.diagnostic('event type | expected | received');
    for (const [kind, row] of table) t.diagnostic(`${kind} | ${row.expected} | ${row.received}`);
    assert.equal(invalid, 0);
    assert.ok(total > 0);
    for (const [kind, row] of table) assert.equal(row.received, row.expected, kind);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    // Requests to the failing receivers are still in flight or waiting for a
    // retry: stopping cancels them. The receivers stop even when this fails,
    // or node would wait on their sockets forever.
    try {
        await gw.stop();
    } finally {
        await Promise.all([rx.stop(), untrusted.stop(), mismatch.stop(), silent.stop()]);
        fs.rmSync(lsanDir, { recursive: true, force: true });
    }
});
