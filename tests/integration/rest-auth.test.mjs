// rest-auth.test.mjs - HTTP API authentication (PROTOCOL.md sections 11, 12;
// RELIABILITY R1-R7): wrong secret 401, unknown app 404, disabled app 403, the
// 600 s auth_timestamp window, body_md5, malformed signatures. Cases the SDK
// cannot produce are signed by hand with node's crypto (harness signedRequest).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, okJson, expectStatus, signedRequest, hmacHex, md5Hex, uniq,
} from '../lib/harness.mjs';

const gw = await startGateway();
const body = () => ({ name: 'auth-check', channels: [uniq('auth-')], data: '{}' });
const now = () => Math.floor(Date.now() / 1000);

test('PROTOCOL.md section 11 HTTP vector: our hand signer gives the documented signature', () => {
    const b = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
    assert.equal(md5Hex(b), 'ec365a775a4cd0599faeb73354201b6f');
    const s = 'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179' +
        '&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f';
    assert.equal(hmacHex('7ad3773142a6692b25b8', s),
        'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
});

test('a request signed by hand exactly like the SDK is accepted (200 {})', async () => {
    const r = await signedRequest(gw, { body: body() });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
});

test('the SDK with the wrong secret gets 401', async () => {
    await expectStatus(gw.rest('app1', { secret: 'wrong-secret' }).trigger('a', 'e', {}), 401);
    await expectStatus(gw.rest('app1', { secret: 'wrong-secret' }).get({ path: '/channels' }), 401);
});

test('an unknown app id in the path gets 404', async () => {
    await expectStatus(gw.rest('app1', { appId: 'no-such-app' }).trigger('a', 'e', {}), 404);
});

test('a disabled app gets 403', async () => {
    await expectStatus(gw.rest('off').trigger('a', 'e', {}), 403);
});

test('an unknown auth_key gets 401', async () => {
    const r = await signedRequest(gw, { body: body(), key: 'no-such-key' });
    assert.equal(r.status, 401, r.text);
});

test('the key of another app on this app\'s path gets 401', async () => {
    const r = await signedRequest(gw, {
        body: body(), key: 'noclient-key', secret: 'noclient-secret',
    });
    assert.equal(r.status, 401, r.text);
});

for (const [what, offset, want] of [
    ['now - 599 s', -599, 200],
    ['now + 599 s', 599, 200],
    ['now - 601 s (stale)', -601, 401],
    ['now + 601 s (future)', 601, 401],
]) {
    test(`auth_timestamp ${what} answers ${want}`, async () => {
        const r = await signedRequest(gw, { body: body(), timestamp: now() + offset });
        assert.equal(r.status, want, r.text);
    });
}

for (const ts of ['abc', '-1', '99999999999999999999', '', '1e9', '0x10']) {
    test(`auth_timestamp ${JSON.stringify(ts)} answers 401`, async () => {
        const r = await signedRequest(gw, { body: body(), timestamp: ts });
        assert.equal(r.status, 401, r.text);
    });
}

test('missing auth_timestamp answers 401', async () => {
    const r = await signedRequest(gw, { body: body(), override: { auth_timestamp: null } });
    assert.equal(r.status, 401, r.text);
});

test('an exact replay inside the window is accepted (as Pusher does)', async () => {
    const ts = now();
    const b = body();
    const r1 = await signedRequest(gw, { body: b, timestamp: ts });
    const r2 = await signedRequest(gw, { body: b, timestamp: ts });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r2.status, 200, r2.text);
});

const sigMutations = [
    ['a wrong signature', (s) => (s[0] === '0' ? '1' : '0') + s.slice(1)],
    ['an upper-case signature', (s) => s.toUpperCase()],
    ['63 hex characters', (s) => s.slice(0, 63)],
    ['65 hex characters', (s) => s + '0'],
    ['an empty signature', () => ''],
];
for (const [what, mutate] of sigMutations) {
    test(`${what} answers 401`, async () => {
        const b = body();
        const ok = await signedRequest(gw, { body: b }); // the undamaged baseline
        assert.equal(ok.status, 200);
        // Recompute the signature the same way, then damage it.
        const ts = String(now());
        const text = JSON.stringify(b);
        const md5 = md5Hex(text);
        const q = `auth_key=app1-key&auth_timestamp=${ts}&auth_version=1.0&body_md5=${md5}`;
        const sig = hmacHex('app1-secret', `POST\n/apps/app1/events\n${q}`);
        const r = await signedRequest(gw, { body: b, rawQuery: `${q}&auth_signature=${mutate(sig)}` });
        assert.equal(r.status, 401, r.text);
    });
}

test('a missing auth_signature answers 401', async () => {
    const r = await signedRequest(gw, { body: body(), override: { auth_signature: null } });
    assert.equal(r.status, 401, r.text);
});

test('a duplicated auth_signature answers 401', async () => {
    const ts = String(now());
    const b = body();
    const q = `auth_key=app1-key&auth_timestamp=${ts}&auth_version=1.0&body_md5=${md5Hex(JSON.stringify(b))}`;
    const sig = hmacHex('app1-secret', `POST\n/apps/app1/events\n${q}`);
    const r = await signedRequest(gw, {
        body: b, rawQuery: `${q}&auth_signature=${sig}&auth_signature=${sig}`,
    });
    assert.equal(r.status, 401, r.text);
});

test('auth_version 2.0 answers 401', async () => {
    const r = await signedRequest(gw, { body: body(), version: '2.0' });
    assert.equal(r.status, 401, r.text);
});

test('a body without body_md5 answers 401', async () => {
    const r = await signedRequest(gw, { body: body(), bodyMd5: null });
    assert.equal(r.status, 401, r.text);
});

test('a wrong body_md5 (signed) answers 401', async () => {
    const r = await signedRequest(gw, { body: body(), bodyMd5: md5Hex('something else') });
    assert.equal(r.status, 401, r.text);
});

test('a body changed after signing answers 401 and delivers nothing', async (t) => {
    const ch = uniq('tamper-');
    const c = await rawConnect(gw, { t });
    await c.established();
    await c.subscribe(ch);
    const signedFor = JSON.stringify({ name: 'orig', channels: [ch], data: '{}' });
    const sent = JSON.stringify({ name: 'evil', channels: [ch], data: '{}' });
    const r = await signedRequest(gw, { body: sent, bodyMd5: md5Hex(signedFor) });
    assert.equal(r.status, 401, r.text);
    await okJson(gw.rest().trigger(ch, 'marker', {}));
    await c.waitFor('marker');
    assert.equal(c.messages.count('evil'), 0);
});

test('extra query parameters are part of the signature', async () => {
    // Signed with filter_by_prefix=a, sent with filter_by_prefix=b.
    const ts = String(now());
    const q = `auth_key=app1-key&auth_timestamp=${ts}&auth_version=1.0&filter_by_prefix=a`;
    const sig = hmacHex('app1-secret', `GET\n/apps/app1/channels\n${q}`);
    const ok = await signedRequest(gw, {
        method: 'GET', path: '/apps/app1/channels', rawQuery: `${q}&auth_signature=${sig}`,
    });
    assert.equal(ok.status, 200, ok.text);
    const bad = await signedRequest(gw, {
        method: 'GET', path: '/apps/app1/channels',
        rawQuery: `${q.replace('prefix=a', 'prefix=b')}&auth_signature=${sig}`,
    });
    assert.equal(bad.status, 401, bad.text);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
