// presence.test.mjs - presence channels: member list on subscription_succeeded,
// member_added for a user's first connection only, member_removed for the last
// only, numeric user ids as strings, auth variants, and the REST views of
// membership (PROTOCOL.md sections 3, 6, 7; RELIABILITY P5, P6).
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    startGateway, rawConnect, connectClient, waitForEvent, okJson, uniq,
} from '../lib/harness.mjs';

const gw = await startGateway();
const rest = gw.rest();

const user = (id, name) => ({ user_id: id, user_info: { name } });

async function getJson(path, params) {
    return okJson(rest.get({ path, params }));
}

test('pusher-js joins a presence channel: members include itself with its user_info', async (t) => {
    const ch = uniq('presence-');
    const a = await connectClient(gw, { t, presence: user('1', 'Alice') });
    const { channel, data: members, ms } = await a.subscribe(ch);
    t.diagnostic(`presence subscription_succeeded after ${ms.toFixed(1)} ms`);
    assert.equal(members.count, 1);
    assert.equal(members.me.id, '1');
    assert.deepEqual(members.me.info, { name: 'Alice' });
    assert.deepEqual(channel.members.get('1').info, { name: 'Alice' });
});

test('raw subscription_succeeded data is {"presence":{"ids":[...],"hash":{...},"count":N}}', async (t) => {
    const ch = uniq('presence-');
    const a = await rawConnect(gw, { t });
    await a.subscribeAuth(ch, { presence: user('1', 'Alice') });
    const b = await rawConnect(gw, { t });
    const m = await b.subscribeAuth(ch, { presence: user('2', 'Bob') });
    assert.equal(m.event, 'pusher_internal:subscription_succeeded', m.text);
    assert.equal(m.channel, ch);
    assert.equal(typeof m.rawData, 'string', 'data is double-encoded');
    const p = m.data.presence;
    assert.equal(p.count, 2);
    assert.deepEqual([...p.ids].sort(), ['1', '2']);
    assert.deepEqual(p.hash, { 1: { name: 'Alice' }, 2: { name: 'Bob' } });
});

test('member_added reaches the others (not the joiner); member_removed when it leaves', async (t) => {
    const ch = uniq('presence-');
    const a = await connectClient(gw, { t, presence: user('1', 'Alice') });
    const { channel: ca } = await a.subscribe(ch);
    const added = waitForEvent(ca, 'pusher:member_added', 2000);
    const b = await connectClient(gw, { presence: user('2', 'Bob') });
    const { channel: cb, data: bm } = await b.subscribe(ch);
    const { data: member } = await added;
    assert.equal(member.id, '2');
    assert.deepEqual(member.info, { name: 'Bob' });
    assert.equal(bm.count, 2);
    assert.equal(ca.members.count, 2);
    assert.equal(b.messages.count('pusher_internal:member_added'), 0, 'the joiner gets no member_added for itself');
    assert.ok(cb);
    const removed = waitForEvent(ca, 'pusher:member_removed', 3000);
    b.close();
    const { data: gone } = await removed;
    assert.equal(gone.id, '2');
    assert.equal(ca.members.count, 1);
});

test('a numeric user_id is normalised to a string in ids, hash and member_added', async (t) => {
    const ch = uniq('presence-');
    const obs = await rawConnect(gw, { t });
    await obs.subscribeAuth(ch, { presence: user('obs', 'Observer') });
    const n = await rawConnect(gw, { t });
    const m = await n.subscribeAuth(ch, { presence: { user_id: 10, user_info: { name: 'Ten' } } });
    assert.equal(m.event, 'pusher_internal:subscription_succeeded', m.text);
    assert.ok(m.data.presence.ids.includes('10'), `ids ${JSON.stringify(m.data.presence.ids)}`);
    assert.ok(!m.data.presence.ids.includes(10), 'no numeric id');
    assert.deepEqual(m.data.presence.hash['10'], { name: 'Ten' });
    const added = await obs.waitFor('pusher_internal:member_added');
    assert.equal(added.data.user_id, '10');
    assert.deepEqual(added.data.user_info, { name: 'Ten' });
});

test('same user on two connections: one member_added, member_removed only after the last leaves', { timeout: 20000 }, async (t) => {
    const ch = uniq('presence-');
    const obs = await connectClient(gw, { t, presence: user('obs', 'Observer') });
    const { channel } = await obs.subscribe(ch);
    const log = channel.inbox;
    const isAdd = (id) => (e) => e.event === 'pusher:member_added' && e.data.id === id;
    const isRemove = (id) => (e) => e.event === 'pusher:member_removed' && e.data.id === id;

    const tab1 = await connectClient(gw, { presence: user('2', 'Bob') });
    const { data: m1 } = await tab1.subscribe(ch);
    const tab2 = await connectClient(gw, { presence: user('2', 'Bob') });
    const { data: m2 } = await tab2.subscribe(ch);
    assert.equal(m1.count, 2);
    assert.equal(m2.count, 2, 'user 2 counted once');
    // Marker: a third user joins after both tabs, so both joins were handled.
    const c3 = await connectClient(gw, { presence: user('3', 'Carol') });
    await c3.subscribe(ch);
    await log.waitFor(isAdd('3'));
    assert.equal(log.count(isAdd('2')), 1, 'exactly one member_added for user 2');

    const info = await getJson(`/channels/${ch}`, { info: 'user_count' });
    assert.equal(info.user_count, 3, 'user_count counts distinct users');

    tab1.close();
    await tab1.waitState('disconnected');
    // Marker: Carol leaves after tab1 closed; her removal arrives, Bob's must not.
    c3.close();
    await log.waitFor(isRemove('3'), { timeout: 3000 });
    assert.equal(log.count(isRemove('2')), 0, 'no member_removed while user 2 has a connection');
    assert.equal(channel.members.count, 2);
    const users = await getJson(`/channels/${ch}/users`);
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['2', 'obs']);

    tab2.close();
    await log.waitFor(isRemove('2'), { timeout: 3000 });
    // Marker for "exactly one": a fourth user joins and leaves.
    const c4 = await connectClient(gw, { presence: user('4', 'Dan') });
    await c4.subscribe(ch);
    c4.close();
    await log.waitFor(isRemove('4'), { timeout: 3000 });
    assert.equal(log.count(isRemove('2')), 1, 'exactly one member_removed for user 2');
    assert.equal(channel.members.count, 1);
});

test('unsubscribing (not disconnecting) from presence also removes the member', async (t) => {
    const ch = uniq('presence-');
    const a = await connectClient(gw, { t, presence: user('1', 'A') });
    const { channel } = await a.subscribe(ch);
    const b = await connectClient(gw, { t, presence: user('2', 'B') });
    await b.subscribe(ch);
    await channel.inbox.waitFor((e) => e.event === 'pusher:member_added');
    b.pusher.unsubscribe(ch);
    const { data } = await waitForEvent(channel, 'pusher:member_removed', 3000);
    assert.equal(data.id, '2');
    assert.equal(b.state, 'connected');
});

test('presence subscribe without channel_data is refused with subscription_error within 1 s', async (t) => {
    const c = await rawConnect(gw, { t });
    const { socket_id: sid } = await c.established();
    const ch = uniq('presence-');
    const a = gw.rest().authorizeChannel(sid, ch); // signed as if private
    const m = await c.subscribe(ch, { auth: a.auth }, 1000);
    assert.notEqual(m.event, 'pusher_internal:subscription_succeeded', m.text);
    await c.barrier();
});

test('presence subscribe without auth is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    await c.established();
    const ch = uniq('presence-');
    const m = await c.subscribe(ch, { channel_data: JSON.stringify(user('1', 'x')) }, 1000);
    assert.notEqual(m.event, 'pusher_internal:subscription_succeeded', m.text);
});

test('presence channel_data changed after signing is refused', async (t) => {
    const c = await rawConnect(gw, { t });
    const { socket_id: sid } = await c.established();
    const ch = uniq('presence-');
    const a = gw.rest().authorizeChannel(sid, ch, user('1', 'Alice'));
    const forged = JSON.stringify(user('1', 'Mallory'));
    const m = await c.subscribe(ch, { auth: a.auth, channel_data: forged }, 1000);
    assert.equal(m.event, 'pusher:subscription_error', m.text);
    assert.equal(m.data.status, 401);
});

test('a private subscribe signed with channel_data (soketi#177) is answered within 1 s', async (t) => {
    const c = await rawConnect(gw, { t });
    const { socket_id: sid } = await c.established();
    const ch = uniq('private-');
    const a = gw.rest().authorizeChannel(sid, ch, user('1', 'x'));
    const m = await c.subscribe(ch, { auth: a.auth, channel_data: a.channel_data }, 1000);
    assert.ok(['pusher_internal:subscription_succeeded', 'pusher:subscription_error',
        'pusher:error'].includes(m.event), m.text);
    await c.barrier();
});

test('REST GET /channels/{presence}/users lists the distinct user ids', async (t) => {
    const ch = uniq('presence-');
    for (const id of ['u1', 'u2', 'u2']) {
        const c = await connectClient(gw, { t, presence: user(id, id) });
        await c.subscribe(ch);
    }
    const body = await getJson(`/channels/${ch}/users`);
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['u1', 'u2']);
    for (const u of body.users) assert.deepEqual(Object.keys(u), ['id']);
    const info = await getJson(`/channels/${ch}`, { info: 'user_count' });
    assert.equal(info.occupied, true);
    assert.equal(info.user_count, 2);
});

test('gateway exits with status 0 on SIGTERM and no sanitizer report', async () => {
    await gw.stop();
});
