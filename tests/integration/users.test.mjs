// users.test.mjs - user sign-in (pusher:signin, signed <socket_id>::user::<user_data>),
// the #server-to-user-{id} channel and sendToUser, presence subscriptions that
// take the signed-in user's user_info, and terminate_connections
// (PROTOCOL.md sections 3, 6, 9, 11; issue 3).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, uniq, hmacHex,
} from '../lib/harness.mjs';
import { rawSignin, signedInClient, userChannelReady } from '../lib/signin.mjs';

const gw = await startGateway();
const rest = gw.rest();

/** Waits for the next pusher-js user event `name` (pusher.user.bind). */
function userEvent(c, name, timeout = 2000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            c.pusher.user.unbind(name, h);
            reject(new Error(`${c.name}: no user event ${name} within ${timeout} ms`));
        }, timeout);
        const h = (data) => {
            clearTimeout(timer);
            c.pusher.user.unbind(name, h);
            resolve(data);
        };
        c.pusher.user.bind(name, h);
    });
}

test('pusher-js signs in, subscribes #server-to-user-{id} and receives sendToUser events', async (t) => {
    const id = uniq('u-');
    const c = await connectClient(gw, { t, user: { id, user_info: { name: 'Ann' } } });
    c.pusher.signin();
    const ok = await c.messages.waitFor('pusher:signin_success');
    assert.deepEqual(JSON.parse(ok.data.user_data), { id, user_info: { name: 'Ann' } });
    const sub = await userChannelReady(c);
    assert.equal(sub.channel, `#server-to-user-${id}`);
    const got = userEvent(c, 'notice');
    await okJson(rest.sendToUser(id, 'notice', { text: 'hello user' }));
    assert.deepEqual(await got, { text: 'hello user' });
});

test('raw: signin_success is {"event":"pusher:signin_success","data":"{\\"user_data\\":...}"} echoing the signed text', async (t) => {
    const c = await rawConnect(gw, { t });
    const m = await rawSignin(c, { id: 'raw-1', user_info: { a: [1, 'é'] } });
    assert.equal(m.event, 'pusher:signin_success', m.text);
    assert.equal(m.channel, undefined);
    assert.equal(typeof m.rawData, 'string', 'data is double-encoded');
    assert.deepEqual(Object.keys(m.data), ['user_data']);
    assert.equal(m.data.user_data, JSON.stringify({ id: 'raw-1', user_info: { a: [1, 'é'] } }));
});

test('the signature is HMAC-SHA256 of socket_id::user::user_data (hand-computed, no SDK)', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const userData = '{"id":"12345"}';
    const auth = `app1-key:${hmacHex('app1-secret', `${c.socketId}::user::${userData}`)}`;
    const m = await rawSignin(c, null, { auth, userData });
    assert.equal(m.event, 'pusher:signin_success', m.text);
    assert.equal(m.data.user_data, userData);
});

test('a bad signature is answered with pusher:error 4009, the connection stays and is not signed in', async (t) => {
    const c = await rawConnect(gw, { t });
    const m = await rawSignin(c, { id: 'mallory' }, { secret: 'not-the-secret' });
    assert.equal(m.event, 'pusher:error', m.text);
    assert.equal(m.data.code, 4009);
    assert.match(m.data.message, /signature/i);
    assert.ok(c.isOpen);
    const sub = await c.subscribe('#server-to-user-mallory', { auth: '' });
    assert.equal(sub.event, 'pusher:subscription_error', sub.text);
    assert.equal(sub.data.status, 403);
});

test('user_data signed with a different socket_id is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const userData = '{"id":"x"}';
    const auth = `app1-key:${hmacHex('app1-secret', `1.2::user::${userData}`)}`;
    const m = await rawSignin(c, null, { auth, userData });
    assert.equal(m.event, 'pusher:error', m.text);
    assert.equal(m.data.code, 4009);
});

test('pusher:signin without auth or user_data, or user_data without an id, is refused with pusher:error', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    for (const data of [{ user_data: '{"id":"a"}' }, { auth: 'app1-key:00' }]) {
        const from = c.messages.items.length;
        c.send({ event: 'pusher:signin', data });
        const e = await c.waitFor('pusher:error', { from });
        assert.equal(e.data.code, 4009, e.text);
    }
    const m = await rawSignin(c, { name: 'no id' });
    assert.equal(m.event, 'pusher:error', m.text);
    assert.match(m.data.message, /"id" missing/);
    const empty = await rawSignin(c, { id: '' });
    assert.equal(empty.event, 'pusher:error', empty.text);
    assert.ok(c.isOpen);
});

test('a user id of 128 characters signs in, 129 is refused; user_info over 1 KB is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    const long = await rawSignin(c, { id: 'x'.repeat(129) });
    assert.equal(long.event, 'pusher:error', long.text);
    const big = await rawSignin(c, { id: 'y', user_info: 'z'.repeat(1023) });
    assert.equal(big.event, 'pusher:error', big.text);
    const ok = await rawSignin(c, { id: 'x'.repeat(128) });
    assert.equal(ok.event, 'pusher:signin_success', ok.text);
});

test('a socket signed in as one user is refused as another (4009) and stays the first user', async (t) => {
    const c = await rawConnect(gw, { t });
    const a = uniq('a-');
    const b = uniq('b-');
    assert.equal((await rawSignin(c, { id: a })).event, 'pusher:signin_success');
    const m = await rawSignin(c, { id: b });
    assert.equal(m.event, 'pusher:error', m.text);
    assert.equal(m.data.code, 4009);
    assert.match(m.data.message, /already signed in/);
    const own = await c.subscribe(`#server-to-user-${a}`, { auth: '' });
    assert.equal(own.event, 'pusher_internal:subscription_succeeded', own.text);
    const other = await c.subscribe(`#server-to-user-${b}`, { auth: '' });
    assert.equal(other.event, 'pusher:subscription_error', other.text);
    const again = await rawSignin(c, { id: a, user_info: { v: 2 } });
    assert.equal(again.event, 'pusher:signin_success', 'the same user may sign in again');
});

test('#server-to-user-: refused without sign-in and for another user\'s id; the connection stays', async (t) => {
    const anon = await rawConnect(gw, { t });
    await anon.established();
    const r1 = await anon.subscribe('#server-to-user-victim', { auth: '' });
    assert.equal(r1.event, 'pusher:subscription_error', r1.text);
    assert.equal(r1.data.type, 'AuthError');
    assert.equal(r1.data.status, 403);
    const signed = await rawConnect(gw, { t });
    await rawSignin(signed, { id: 'eve' });
    const r2 = await signed.subscribe('#server-to-user-victim', { auth: '' });
    assert.equal(r2.event, 'pusher:subscription_error', r2.text);
    const r3 = await signed.subscribe('#server-to-user-eve', { auth: '' });
    assert.equal(r3.event, 'pusher_internal:subscription_succeeded', r3.text);
    const r4 = await signed.subscribe('#other-thing', { auth: '' });
    assert.notEqual(r4.event, 'pusher_internal:subscription_succeeded', r4.text);
    assert.ok(anon.isOpen && signed.isOpen);
});

test('sendToUser reaches every connection signed in as that user and nobody else', async (t) => {
    const id = uniq('multi-');
    const clients = [];
    for (let i = 0; i < 4; i++) {
        const c = await signedInClient(gw, { id }, { t });
        await userChannelReady(c);
        clients.push(c);
    }
    const other = await signedInClient(gw, { id: uniq('bystander-') }, { t });
    await userChannelReady(other);
    const got = clients.map((c) => userEvent(c, 'ping-all'));
    await okJson(rest.sendToUser(id, 'ping-all', { n: 1 }));
    for (const p of got) assert.deepEqual(await p, { n: 1 });
    await other.barrier();
    assert.equal(other.messages.count('ping-all'), 0, 'the bystander got nothing');
});

test('presence without channel_data takes the signed-in user\'s id and user_info', async (t) => {
    const ch = uniq('presence-');
    const id = uniq('p-');
    // presence undefined: the SDK signs socket_id:channel only, as an app server
    // does for a signed-in user.
    const c = await signedInClient(gw, { id, user_info: { name: 'Signed In' } }, { t });
    const { data: members } = await c.subscribe(ch);
    assert.equal(members.me.id, id);
    assert.deepEqual(members.me.info, { name: 'Signed In' });
    const obs = await rawConnect(gw, { t });
    const joined = await obs.subscribeAuth(ch, { presence: { user_id: 'obs' } });
    assert.deepEqual(joined.data.presence.hash[id], { name: 'Signed In' });
});

test('explicit channel_data still wins over the signed-in user', async (t) => {
    const ch = uniq('presence-');
    const c = await rawConnect(gw, { t });
    await rawSignin(c, { id: 'signed', user_info: { from: 'signin' } });
    const m = await c.subscribeAuth(ch, { presence: { user_id: 'explicit', user_info: { from: 'auth' } } });
    assert.equal(m.event, 'pusher_internal:subscription_succeeded', m.text);
    assert.deepEqual(m.data.presence.ids, ['explicit']);
    assert.deepEqual(m.data.presence.hash.explicit, { from: 'auth' });
});

test('presence without channel_data is still refused when the socket is not signed in', async (t) => {
    const ch = uniq('presence-');
    const c = await rawConnect(gw, { t });
    const m = await c.subscribeAuth(ch); // auth over socket_id:channel, no channel_data
    assert.equal(m.event, 'pusher:subscription_error', m.text);
    assert.ok(c.isOpen);
});

test('terminateUserConnections closes every connection of the user with 4009 and answers {}', async (t) => {
    const id = uniq('kick-');
    const victims = [];
    for (let i = 0; i < 4; i++) {
        const c = await rawConnect(gw, { t });
        assert.equal((await rawSignin(c, { id })).event, 'pusher:signin_success');
        victims.push(c);
    }
    const js = await signedInClient(gw, { id }, { t });
    const bystander = await rawConnect(gw, { t });
    await rawSignin(bystander, { id: uniq('stay-') });
    // Same user id in a presence channel but never signed in: not terminated.
    const presenceOnly = await rawConnect(gw, { t });
    await presenceOnly.subscribeAuth(uniq('presence-'), { presence: { user_id: id } });

    const res = await rest.terminateUserConnections(id);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    for (const v of victims) {
        const { code } = await v.waitClose(3000);
        assert.equal(code, 4009);
    }
    await js.waitState('disconnected', 3000);
    assert.ok(js.errors.some((e) => e.data && e.data.code === 4009),
        `pusher-js saw close code 4009: ${JSON.stringify(js.errors)}`);
    await bystander.barrier();
    await presenceOnly.barrier();
    assert.ok(bystander.isOpen && presenceOnly.isOpen);
});

test('a terminated user may connect and sign in again', async (t) => {
    const id = uniq('back-');
    const c = await signedInClient(gw, { id }, { t });
    await okJson(rest.terminateUserConnections(id));
    await c.waitState('disconnected', 3000);
    const from = c.messages.items.length;
    c.pusher.connect();
    await c.connected();
    await c.messages.waitFor('pusher:signin_success', { from, timeout: 3000 });
    await userChannelReady(c, 3000, from);
    const got = userEvent(c, 'welcome-back');
    await okJson(rest.sendToUser(id, 'welcome-back', {}));
    await got;
});

test('terminate for a user nobody is signed in as answers {}', async () => {
    const res = await rest.terminateUserConnections('nobody-here');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
