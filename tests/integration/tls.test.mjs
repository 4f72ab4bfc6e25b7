// tls.test.mjs - the same port serving wss:// and https:// with the sample
// certificate config/test-cert.pem (self-signed for localhost and 127.0.0.1).
// Raw clients and the SDK trust exactly that certificate; pusher-js's Node
// build takes no CA option, so it runs with NODE_TLS_REJECT_UNAUTHORIZED=0.
import test from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import fs from 'node:fs';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, expectStatus, uniq,
    certFile, SOCKET_ID_RE,
} from '../lib/harness.mjs';

const gw = await startGateway({ tls: true });
const rest = gw.rest(); // https with an agent trusting config/test-cert.pem

test('the TLS handshake verifies against config/test-cert.pem for 127.0.0.1', async () => {
    const info = await new Promise((resolve, reject) => {
        const s = tls.connect({
            host: '127.0.0.1', port: gw.port, ca: fs.readFileSync(certFile), servername: 'localhost',
        }, () => {
            resolve({ authorized: s.authorized, protocol: s.getProtocol() });
            s.end();
        });
        s.on('error', reject);
    });
    assert.equal(info.authorized, true);
    assert.match(info.protocol, /^TLSv1\.[23]$/);
});

test('wss:// connection_established with a valid socket_id', async (t) => {
    const c = await rawConnect(gw, { t });
    const d = await c.established();
    assert.match(d.socket_id, SOCKET_ID_RE);
    await c.barrier();
});

test('https REST trigger reaches a wss raw subscriber', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const ch = uniq('tls-');
    await c.subscribe(ch);
    assert.deepEqual(await okJson(rest.trigger(ch, 'secure', { s: 1 })), {});
    assert.deepEqual((await c.waitFor('secure')).data, { s: 1 });
});

test('pusher-js over wss: public, private, presence and private-encrypted events', async (t) => {
    const prev = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    t.after(() => {
        if (prev === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
        else process.env.NODE_TLS_REJECT_UNAUTHORIZED = prev;
    });
    const c = await connectClient(gw, { t, presence: { user_id: 'tls-user', user_info: {} } });
    assert.match(c.socketId, SOCKET_ID_RE);
    for (const prefix of ['pub-', 'private-', 'presence-', 'private-encrypted-']) {
        const ch = uniq(prefix);
        const { channel } = await c.subscribe(ch);
        const got = waitForEvent(channel, 'over-tls', 1000);
        await okJson(rest.trigger(ch, 'over-tls', { prefix }));
        assert.deepEqual((await got).data, { prefix }, prefix);
    }
});

test('https REST authentication still applies (wrong secret 401)', async () => {
    await expectStatus(gw.rest('app1', { secret: 'nope' }).trigger('a', 'e', {}), 401);
});

test('a plain-text ws:// client on the TLS port gets no handshake', async (t) => {
    let established = false;
    try {
        const c = await rawConnect(gw, { t, tls: false });
        established = await c.established(2000).then(() => true, () => false);
    } catch {
        established = false;
    }
    assert.equal(established, false);
    const probe = await rawConnect(gw, { t });
    await probe.established();
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
