// api-abuse.test.mjs - bad input straight to micronotifier-api's sockets and to the
// gateway's local bus (RELIABILITY R10-R13; issue 4): direct FastCGI and SCGI
// answers equal the gateway's own port for good and refused requests; malformed
// SCGI netstrings (huge, leading-zero and wrong lengths, missing comma, 1 MiB
// headers, NUL in names, CONTENT_LENGTH late or too big), truncated and random
// FastCGI records, bodies over the cap, wrong signatures, stalled connections;
// oversized and garbled bus frames. Each gets a clear status or a closed
// connection, and both daemons stay up (a good request works after each group,
// and both exit 0 with quiet sanitizers at the end).
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

import { connectClient, okJson, uniq, waitForEvent, waitUntil } from '../lib/harness.mjs';
import {
    cgiVars, daemonRequest, fcgiPairs, fcgiRecord, fcgiRequestBytes, parseCgi, parseFcgi,
    rawExchange, scgiRequestBytes, signedHttp, signedTarget, startStack, stopStack,
} from '../lib/webservers.mjs';

const stack = await startStack({ threads: 4 });
const { gw, api } = stack;
const app = gw.app('app1');
const MAX = 262144; // max-request-size's default
const addr = { fastcgi: api.fastcgi, scgi: api.scgi };

/** A signed request straight to the daemon over proto. */
function direct(proto, method, apiPath, opts = {}) {
    const body = opts.body === undefined ? ''
        : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const t = signedTarget(opts.secret ? { ...app, secret: opts.secret } : app, method,
        apiPath, { params: opts.params, body });
    return daemonRequest(proto, addr[proto], method, `${t.path}?${t.query}`, body,
        opts.extra || {});
}

/** The daemon still answers a good request over both protocols. */
async function alive(what) {
    assert.ok(api.alive(), `micronotifier-api is running after ${what}\n${api.tail()}`);
    assert.ok(gw.alive(), `gateway is running after ${what}`);
    for (const proto of ['fastcgi', 'scgi']) {
        const r = await direct(proto, 'GET', '/apps/app1/channels');
        assert.equal(r.status, 200, `${proto} after ${what}: ${r.text}`);
    }
}

test('direct FastCGI and SCGI answers equal the gateway port, good and refused', async () => {
    const big = 'x'.repeat(10241);
    const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
    const asks = [
        ['GET', '/apps/app1/channels', {}],
        ['GET', '/apps/app1/channels/some-channel', { params: { info: 'user_count' } }],
        ['GET', '/apps/app1/channels/presence-x/users', {}],
        ['POST', '/apps/app1/events', { body: { name: 'e', channel: 'c', data: '{}' } }],
        ['POST', '/apps/app1/events', { body: { name: 'e', channel: 'c', data: big } }],
        ['POST', '/apps/app1/events', { body: { name: 'e', channels: many, data: '{}' } }],
        ['POST', '/apps/app1/events', { body: '{"name": "e", "channel": "c", "data": ' }],
        ['POST', '/apps/app1/events', { body: { name: 'e', channel: 'c', data: '{}' },
            secret: 'wrong' }],
        ['POST', '/apps/app1/batch_events', { body: { batch: [] } }],
        ['GET', '/apps/app1/events', {}],
        ['GET', '/apps/nope/channels', {}],
        ['GET', '/apps/app1/nothing-here', {}],
        ['POST', '/apps/app1/users/u1/terminate_connections', { body: {} }],
        ['POST', '/apps/app1/events', { body: 'y'.repeat(MAX + 1) }],
    ];
    for (const [method, apiPath, opts] of asks) {
        const want = await signedHttp(gw, app, method, apiPath, opts);
        for (const proto of ['fastcgi', 'scgi']) {
            const got = await direct(proto, method, apiPath, opts);
            const what = `${proto} ${method} ${apiPath} (${want.status})`;
            assert.equal(got.status, want.status, `${what}: ${got.text}`);
            assert.equal(got.headers['content-type'], want.headers['content-type'], what);
            assert.equal(got.body, want.text, what);
        }
    }
});

test('prefix from SCRIPT_NAME: /x/apps/... verifies when SCRIPT_NAME is /x', async () => {
    const t = signedTarget(app, 'GET', '/apps/app1/channels');
    for (const proto of ['fastcgi', 'scgi']) {
        const r = await daemonRequest(proto, addr[proto], 'GET', `/x/apps/app1/channels?${t.query}`,
            '', { SCRIPT_NAME: '/x', PATH_INFO: '/apps/app1/channels' });
        assert.equal(r.status, 200, `${proto}: ${r.text}`);
        // Without the SCRIPT_NAME, /x/apps/... is no route (and no prefix is configured).
        const n = await daemonRequest(proto, addr[proto], 'GET', `/x/apps/app1/channels?${t.query}`,
            '', { SCRIPT_NAME: '/x/apps/app1/channels' });
        assert.equal(n.status, 404, `${proto}: ${n.text}`);
    }
});

test('bodies over max-request-size are 413 before any parsing, over both protocols',
    async () => {
        const body = 'z'.repeat(MAX + 1);
        const t = signedTarget(app, 'POST', '/apps/app1/events', { body });
        const target = `${t.path}?${t.query}`;
        // SCGI announcing more than the cap: refused from CONTENT_LENGTH alone.
        const s = await rawExchange(addr.scgi, scgiRequestBytes(
            cgiVars('POST', target, body), Buffer.from(body)));
        assert.equal(parseCgi(s.data).status, 413);
        assert.equal(parseCgi(s.data).body, 'Request body too large\n');
        // FastCGI with CONTENT_LENGTH, and without one (the body itself is too long).
        for (const withLength of [true, false]) {
            const vars = cgiVars('POST', target, body);
            if (!withLength) delete vars.CONTENT_LENGTH;
            const r = await rawExchange(addr.fastcgi, fcgiRequestBytes(vars, Buffer.from(body)));
            const cgi = parseCgi(parseFcgi(r.data).stdout);
            assert.equal(cgi.status, 413, `CONTENT_LENGTH ${withLength}: ${cgi.text}`);
        }
        // A CONTENT_LENGTH of 10 GB is refused the same way, nothing allocated.
        const huge = await rawExchange(addr.scgi,
            scgiRequestBytes({ ...cgiVars('POST', target), CONTENT_LENGTH: '10000000000' }),
            { end: true });
        assert.equal(parseCgi(huge.data).status, 413);
        await alive('oversized bodies');
    });

test('wrong signatures are 401 over both protocols', async () => {
    for (const proto of ['fastcgi', 'scgi']) {
        const r = await direct(proto, 'POST', '/apps/app1/events',
            { body: { name: 'e', channel: 'c', data: '{}' }, secret: 'not-it' });
        assert.equal(r.status, 401, r.text);
        assert.equal(r.body, 'Invalid signature');
        const t = signedTarget(app, 'GET', '/apps/app1/channels');
        const q = t.query.replace(/auth_signature=[0-9a-f]+/, 'auth_signature=' + 'A'.repeat(64));
        const u = await daemonRequest(proto, addr[proto], 'GET', `${t.path}?${q}`);
        assert.equal(u.status, 401, u.text);
    }
});

// R12: each malformed SCGI request gets a 400 (or the connection closed) quickly.
const HEAD = Buffer.from('CONTENT_LENGTH\0' + '0\0' + 'SCGI\0' + '1\0');
const scgiBad = {
    'huge length': Buffer.from('99999999999999999999:'),
    'leading zero': Buffer.concat([Buffer.from(`0${HEAD.length}:`), HEAD, Buffer.from(',')]),
    'length shorter than the headers': Buffer.concat([Buffer.from('10:'), HEAD,
        Buffer.from(',')]),
    'length longer than the headers': Buffer.concat([Buffer.from(`${HEAD.length + 1}:`),
        HEAD, Buffer.from(',,')]),
    'missing comma': Buffer.concat([Buffer.from(`${HEAD.length}:`), HEAD, Buffer.from(';')]),
    '1 MiB of headers': Buffer.concat([Buffer.from('1048576:'),
        Buffer.alloc(1048576, 'A')]),
    'NUL in names': Buffer.concat([Buffer.from(`${HEAD.length + 2}:`), HEAD,
        Buffer.from('\0\0,')]),
    'CONTENT_LENGTH not first': (() => {
        const h = Buffer.from('SCGI\0' + '1\0' + 'CONTENT_LENGTH\0' + '0\0');
        return Buffer.concat([Buffer.from(`${h.length}:`), h, Buffer.from(',')]);
    })(),
    'no SCGI header': (() => {
        const h = Buffer.from('CONTENT_LENGTH\0' + '0\0' + 'REQUEST_METHOD\0' + 'GET\0');
        return Buffer.concat([Buffer.from(`${h.length}:`), h, Buffer.from(',')]);
    })(),
    'CONTENT_LENGTH not a number': (() => {
        const h = Buffer.from('CONTENT_LENGTH\0' + '0x10\0' + 'SCGI\0' + '1\0');
        return Buffer.concat([Buffer.from(`${h.length}:`), h, Buffer.from(',')]);
    })(),
    'binary garbage': crypto.randomBytes(4096),
};

test('malformed SCGI netstrings: 400 or closed, at once, daemon alive (R12)', async () => {
    for (const [what, bytes] of Object.entries(scgiBad)) {
        const r = await rawExchange(addr.scgi, bytes);
        assert.ok(r.closed, `${what}: the daemon closes the connection`);
        const cgi = parseCgi(r.data);
        assert.ok(r.data.length === 0 || cgi.status === 400,
            `${what}: a 400 or nothing, got ${JSON.stringify(r.data.toString().slice(0, 200))}`);
        assert.ok(r.ms < 3000, `${what}: refused at once (${r.ms} ms)`);
    }
    await alive('malformed SCGI');
});

test('SCGI: a body shorter than CONTENT_LENGTH, and a stall, end at the 5 s deadline',
    async () => {
        const t = signedTarget(app, 'GET', '/apps/app1/channels');
        const vars = { ...cgiVars('GET', `${t.path}?${t.query}`), CONTENT_LENGTH: '10' };
        const bytes = scgiRequestBytes(vars);
        // Announces 10 body bytes, sends 5 and waits.
        const short = rawExchange(addr.scgi, [bytes, Buffer.from('12345')], { timeout: 9000 });
        // Sends half of a header and waits.
        const stall = rawExchange(addr.scgi, bytes.subarray(0, 20), { timeout: 9000 });
        for (const [what, r] of [['short body', await short], ['stalled header', await stall]]) {
            assert.ok(r.closed, `${what}: closed by the daemon`);
            assert.equal(r.data.length, 0, `${what}: no answer to a request never complete`);
            assert.ok(r.ms >= 4500 && r.ms < 8000, `${what}: closed at the deadline (${r.ms} ms)`);
        }
        await alive('stalled SCGI connections');
    });

test('FastCGI: stalled connections on every thread do not hold the daemon', async () => {
    // As many half-sent requests as there are threads (4), then a good request:
    // it is answered once the 5 s deadline has freed a thread.
    const t = signedTarget(app, 'GET', '/apps/app1/channels');
    const bytes = fcgiRequestBytes(cgiVars('GET', `${t.path}?${t.query}`));
    const stalls = Array.from({ length: 4 }, () =>
        rawExchange(addr.fastcgi, bytes.subarray(0, 30), { timeout: 12000 }));
    await waitUntil(async () => {
        // each stalled connection has been taken by a thread: a fifth waits
        const probe = await rawExchange(addr.fastcgi, bytes, { timeout: 300 });
        return !probe.closed;
    }, { timeout: 3000, what: 'all four threads busy with stalled connections' });
    const t0 = Date.now();
    const good = await daemonRequest('fastcgi', addr.fastcgi, 'GET', `${t.path}?${t.query}`);
    assert.equal(good.status, 200, good.text);
    assert.ok(Date.now() - t0 < 8000, `answered within the deadline (${Date.now() - t0} ms)`);
    for (const r of await Promise.all(stalls)) {
        assert.ok(r.closed && r.data.length === 0 && r.ms >= 4500 && r.ms < 8000,
            `stalled connection closed at the deadline (${r.ms} ms)`);
    }
});

test('truncated FastCGI requests: each connection closed, daemon alive (R13)', async () => {
    const t = signedTarget(app, 'POST', '/apps/app1/events',
        { body: '{"name":"e","channel":"c","data":"{}"}' });
    const whole = fcgiRequestBytes(cgiVars('POST', `${t.path}?${t.query}`,
        '{"name":"e","channel":"c","data":"{}"}'), Buffer.from('{"name":"e","channel":"c","data":"{}"}'));
    const cuts = [];
    for (let at = 1; at < whole.length; at += Math.max(1, Math.floor(whole.length / 60))) {
        cuts.push(at);
    }
    for (let i = 0; i < cuts.length; i += 8) {
        const batch = cuts.slice(i, i + 8).map((at) =>
            rawExchange(addr.fastcgi, whole.subarray(0, at), { end: true, timeout: 8000 }));
        for (const r of await Promise.all(batch)) {
            assert.ok(r.closed, 'the daemon closes a truncated request');
        }
    }
    await alive('truncated FastCGI requests');
});

/** A random FastCGI record: any type, a small request id (0 included), random
 * content; one in sixteen with a bad version or a lying length. */
function randomRecord(type = crypto.randomInt(0, 13), id = crypto.randomInt(0, 4)) {
    const rec = fcgiRecord(type, id, crypto.randomBytes(crypto.randomInt(0, 300)));
    const roll = crypto.randomInt(0, 16);
    if (roll === 0) rec[0] = crypto.randomInt(0, 256);
    if (roll === 1) rec.writeUInt16BE(crypto.randomInt(0, 65536), 4);
    return rec;
}

/** Random bytes without NUL: names and values the gate lets through. */
function noNul(n) {
    return Buffer.from(crypto.randomBytes(n).map((b) => b || 1));
}

const BEGIN = () => fcgiRecord(1, 1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]));

/** n records of one of three kinds: pure noise; a request start followed by
 * random parameter and body records; a request with well-formed random
 * parameters (reaching libfcgi's parser and our handler) and a random body. */
function randomConnection(n) {
    const kind = crypto.randomInt(0, 3);
    if (kind === 0) return Array.from({ length: n }, () => randomRecord());
    if (kind === 1) {
        return [BEGIN(), ...Array.from({ length: n - 1 }, () => {
            const roll = crypto.randomInt(0, 10);
            return randomRecord(roll < 7 ? 4 : roll < 9 ? 5 : undefined, 1);
        })];
    }
    const pairs = {};
    for (let i = 0; i < n - 4; i++) {
        pairs[noNul(crypto.randomInt(1, 40)).toString('latin1')] =
            noNul(crypto.randomInt(0, 200)).toString('latin1');
    }
    return [BEGIN(), fcgiRecord(4, 1, fcgiPairs(pairs)), fcgiRecord(4, 1),
        fcgiRecord(5, 1, crypto.randomBytes(crypto.randomInt(0, 500))), fcgiRecord(5, 1)];
}

test('10,000 random FastCGI records: connections closed, daemon alive (R13)', async () => {
    let records = 0;
    let answered = 0;
    while (records < 10000) {
        const batch = Array.from({ length: 10 }, () => {
            const recs = randomConnection(20);
            records += recs.length;
            return rawExchange(addr.fastcgi, Buffer.concat(recs), { end: true, timeout: 8000 });
        });
        for (const r of await Promise.all(batch)) {
            assert.ok(r.closed, 'connection closed');
            if (parseFcgi(r.data).ended) answered++;
        }
    }
    assert.ok(answered > 0, `some random requests reached the handler (${answered})`);
    await alive(`${records} random FastCGI records`);
});

test('odd but valid FastCGI: GET_VALUES, other roles, huge parameter lengths', async () => {
    // A management record: libfcgi answers FCGI_GET_VALUES_RESULT.
    const gv = await rawExchange(addr.fastcgi,
        fcgiRecord(9, 0, fcgiPairs({ FCGI_MAX_CONNS: '' })), { end: true });
    assert.ok(gv.closed);
    // The authorizer role is not served: 400.
    const t = signedTarget(app, 'GET', '/apps/app1/channels');
    const vars = fcgiPairs(cgiVars('GET', `${t.path}?${t.query}`));
    const auth = await rawExchange(addr.fastcgi, Buffer.concat([
        fcgiRecord(1, 1, Buffer.from([0, 2, 0, 0, 0, 0, 0, 0])),
        fcgiRecord(4, 1, vars), fcgiRecord(4, 1), fcgiRecord(5, 1),
    ]));
    assert.equal(parseCgi(parseFcgi(auth.data).stdout).status, 400);
    // A parameter announcing a 1 GiB name, then the connection ends.
    const hugeName = Buffer.from([0xc0, 0, 0, 0, 1, 0x41, 0x42]);
    const h = await rawExchange(addr.fastcgi, Buffer.concat([
        fcgiRecord(1, 1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), fcgiRecord(4, 1, hugeName),
    ]), { end: true });
    assert.ok(h.closed);
    // CONTENT_LENGTH that is not a number: 400.
    const bad = await daemonRequest('fastcgi', addr.fastcgi, 'POST', `${t.path}?${t.query}`,
        '', { CONTENT_LENGTH: '-1' });
    assert.equal(bad.status, 400, bad.text);
    await alive('odd FastCGI');
});

/** Bytes to the gateway's local-socket; resolves what came back. */
function busExchange(bytes, timeout = 5000) {
    return rawExchange(path.join(stack.dir, 'bus.sock'), bytes, { timeout });
}

test('local bus: oversized and garbled frames are refused and logged, gateway unharmed',
    async (t) => {
        const c = await connectClient(gw, { t });
        const ch = uniq('bus-');
        const { channel } = await c.subscribe(ch);
        // A frame that stops half-way: dropped after 5 s (meanwhile, the rest).
        const head = Buffer.alloc(24);
        head.writeUInt32BE(100, 0);
        const stuck = busExchange(head, 10000);
        // 64 MiB announced: closed without reading it.
        const big = Buffer.alloc(8);
        big.writeUInt32BE(64 << 20, 0);
        const r1 = await busExchange(big);
        assert.ok(r1.closed && r1.data.length === 0, 'oversized frame: connection closed');
        // A complete frame of garbage: an error answer, then closed.
        const junk = crypto.randomBytes(64);
        const frame = Buffer.concat([Buffer.from([0, 0, 0, junk.length]), junk]);
        const r2 = await busExchange(frame);
        assert.ok(r2.closed, 'garbled frame: connection closed');
        assert.ok(r2.data.length > 4, 'garbled frame: an error answer first');
        // A truncated frame then the end; a flood of random bytes.
        await busExchange(frame.subarray(0, 20));
        await busExchange(crypto.randomBytes(1 << 20));
        const s = await stuck;
        assert.ok(s.closed && s.ms >= 4500 && s.ms < 8000,
            `an incomplete frame is dropped after 5 s (${s.ms} ms)`);
        await waitUntil(() => /bus: dropped a connection: a frame incomplete/.test(gw.stderr),
            { timeout: 2000, what: 'the gateway to log the dropped connection' });
        assert.match(gw.stderr, /bus: refused an oversized message/);
        assert.match(gw.stderr, /bus: refused a message/);
        // The gateway serves, over its bus too: a trigger through the daemon arrives.
        const got = waitForEvent(channel, 'after-junk', 2000);
        const r = await direct('fastcgi', 'POST', '/apps/app1/events',
            { body: { name: 'after-junk', channel: ch, data: '{"ok":1}' } });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual((await got).data, { ok: 1 });
        assert.equal(c.state, 'connected', 'the pusher-js client never noticed');
        await okJson(gw.rest().trigger(ch, 'gateway-port', {}));
    });

test('a connection that sends nothing to the bus does not block the daemon', async () => {
    const idle = net.connect(path.join(stack.dir, 'bus.sock'));
    await new Promise((resolve) => idle.once('connect', resolve));
    await alive('an idle bus connection');
    idle.destroy();
});

test('both daemons exit with status 0 on SIGTERM, sanitizers quiet', async () => {
    await stopStack(stack);
});
