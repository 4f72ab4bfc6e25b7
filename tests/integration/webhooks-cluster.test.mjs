// webhooks-cluster.test.mjs - webhooks in distributed mode (issue 6, second
// half; PROTOCOL.md section 13): two gateways on one real redis-server
// (node-heartbeat 1 s, node-timeout 5 s), a receiver that checks every
// request with the `pusher` library's verifier. Each transition is sent once
// for the fleet by the node whose Redis update made it: channel_occupied and
// channel_vacated with subscribers on both gateways, member_added and
// member_removed for a user connected to both, the vacated/occupied pair
// suppressed when the channel is occupied again on the other gateway within
// 3 s, cache_miss once for subscribers joining on both gateways at once,
// client_event once, subscription_count once per change with the fleet's
// count, and the channel_vacated and member_removed owed for a
// gateway killed with kill -9. The last test prints the counts received
// against the counts expected.
import test from 'node:test';
import assert from 'node:assert/strict';

import {
    connectClient, uniq, delay, performance, defaultApps, waitUntil,
} from '../lib/harness.mjs';
import { startRedis, gatewayFleet } from '../lib/redis.mjs';
import { Receiver, tally } from '../lib/webhook-receiver.mjs';

const DELAY_MS = 3000;
// Long enough for a duplicate from the other gateway to arrive: the bounded
// observation window after the awaited event is what these tests check.
const QUIET_MS = 1000;

const redis = await startRedis();
const rx = await new Receiver().start();
const app = {
    name: 'hooked', id: 'hooked', key: 'hooked-key', secret: 'hooked-secret',
    'client-events': true, 'subscription-count': true,
};
const hook = rx.route('/hooks', app);
app.webhooks = [{ url: rx.url('/hooks') }];
const apps = [...defaultApps(), app];
const config = {
    redis: {
        address: `127.0.0.1:${redis.port}`, database: 1, 'node-heartbeat': 1, 'node-timeout': 5,
    },
};
const gateway = gatewayFleet(test, { apps, config }, redis, rx);
const gw1 = await gateway();
const gw2 = await gateway();

const { table, account } = tally(); // counts of each event type, printed last
const n = (name, channel) => hook.of(name, channel).length;
const client = (t, gw, opts = {}) => connectClient(gw, { t, app: 'hooked', ...opts });
const member = (id) => ({ user_id: id, user_info: { name: id } });

test('occupied and vacated once for the fleet, with subscribers on both gateways', async (t) => {
    const ch = uniq('cl-occ-');
    const a = await client(t, gw1);
    const b = await client(t, gw2);
    await a.subscribe(ch, 5000);
    await b.subscribe(ch, 5000);
    await hook.waitFor({ name: 'channel_occupied', channel: ch }, 2000);
    a.pusher.unsubscribe(ch);
    await delay(QUIET_MS);
    assert.equal(n('channel_vacated', ch), 0, 'one subscriber is left, on the other gateway');
    const t0 = performance.now();
    b.pusher.unsubscribe(ch);
    await hook.waitFor({ name: 'channel_vacated', channel: ch }, DELAY_MS + 2000);
    const ms = performance.now() - t0;
    assert.ok(ms >= DELAY_MS - 100, `vacated after ${ms.toFixed(0)} ms, not before the delay`);
    await delay(QUIET_MS);
    account('channel_occupied', 1, n('channel_occupied', ch));
    account('channel_vacated', 1, n('channel_vacated', ch));
});

test('member_added and member_removed once for a user connected to both gateways', async (t) => {
    const ch = uniq('presence-cl-');
    const u1 = await client(t, gw1, { presence: member('u') });
    const u2 = await client(t, gw2, { presence: member('u') });
    await u1.subscribe(ch, 5000);
    await u2.subscribe(ch, 5000);
    await hook.waitFor({ name: 'member_added', channel: ch }, 2000);
    u1.pusher.unsubscribe(ch);
    await delay(QUIET_MS);
    assert.equal(n('member_removed', ch), 0, 'the user is still connected to gw2');
    u2.pusher.unsubscribe(ch);
    await hook.waitFor({ name: 'member_removed', channel: ch }, DELAY_MS + 2000);
    await delay(QUIET_MS);
    account('member_added', 1, n('member_added', ch));
    account('member_removed', 1, n('member_removed', ch));
    assert.equal(hook.of('member_removed', ch)[0].user_id, 'u');
});

test('vacated on one gateway, occupied again on the other within 3 s: neither is sent', async (t) => {
    const ch = uniq('cl-pair-');
    const a = await client(t, gw1);
    await a.subscribe(ch, 5000);
    await hook.waitFor({ name: 'channel_occupied', channel: ch }, 2000);
    a.pusher.unsubscribe(ch);
    const b = await client(t, gw2);
    await b.subscribe(ch, 5000);
    await delay(DELAY_MS + QUIET_MS);
    account('channel_occupied', 1, n('channel_occupied', ch));
    account('channel_vacated', 0, n('channel_vacated', ch));
});

test('cache_miss once for subscribers joining on both gateways at once', async (t) => {
    const ch = uniq('cache-cl-');
    const a = await client(t, gw1);
    const b = await client(t, gw2);
    await Promise.all([a.subscribe(ch, 5000), b.subscribe(ch, 5000)]);
    await hook.waitFor({ name: 'cache_miss', channel: ch }, 2000);
    await delay(QUIET_MS);
    account('cache_miss', 1, n('cache_miss', ch));
});

test('client_event once, from the sender\'s gateway', async (t) => {
    const ch = uniq('private-cl-');
    const a = await client(t, gw1);
    const b = await client(t, gw2);
    const { channel } = await a.subscribe(ch, 5000);
    await b.subscribe(ch, 5000);
    channel.trigger('client-hi', { x: 1 });
    const ev = await hook.waitFor({ name: 'client_event', channel: ch }, 2000);
    assert.equal(ev.socket_id, a.socketId);
    await delay(QUIET_MS);
    account('client_event', 1, n('client_event', ch));
});

test('kill -9: the survivors send the channel_vacated and member_removed it owed, once', async (t) => {
    const ch = uniq('presence-dead-');
    const doomed = await gateway();
    const d = await client(t, doomed, { presence: member('gone') });
    await d.subscribe(ch, 5000);
    await hook.waitFor({ name: 'member_added', channel: ch }, 2000);
    const t0 = performance.now();
    await doomed.kill();
    d.pusher.disconnect();
    await hook.waitFor({ name: 'channel_vacated', channel: ch }, 5000 + 1000 + DELAY_MS + 2000);
    t.diagnostic(`vacated for the dead node after ${(performance.now() - t0).toFixed(0)} ms`);
    await delay(QUIET_MS);
    account('member_removed', 1, n('member_removed', ch));
    account('channel_vacated', 1, n('channel_vacated', ch));
});

test('subscription_count: the fleet\'s count to the subscribers of both gateways, one webhook per change', async (t) => {
    const ch = uniq('cl-count-');
    const a = await client(t, gw1);
    const b = await client(t, gw2);
    const { channel: ca } = await a.subscribe(ch, 5000);
    await waitUntil(() => n('subscription_count', ch) >= 1,
        { timeout: 3000, what: 'the first subscription_count webhook' });
    const { channel: cb } = await b.subscribe(ch, 5000);
    // Both gateways' subscribers see the fleet's count 2 (gw2's subscriber
    // too: the count reaches gw2 through Redis right after its SUBSCRIBE).
    for (const c of [ca, cb]) {
        await c.inbox.waitFor((m) => m.event === 'pusher:subscription_count' &&
            m.data.subscription_count === 2, { timeout: 3000 });
    }
    const from = ca.inbox.items.length;
    b.pusher.unsubscribe(ch);
    await ca.inbox.waitFor((m) => m.event === 'pusher:subscription_count' &&
        m.data.subscription_count === 1, { from, timeout: 3000 });
    await waitUntil(() => n('subscription_count', ch) >= 3,
        { timeout: 3000, what: '3 subscription_count webhooks' });
    await delay(QUIET_MS);
    const counts = hook.of('subscription_count', ch).map((e) => e.subscription_count);
    assert.deepEqual(counts, [1, 2, 1], 'one webhook per change, with the fleet\'s count');
    account('subscription_count', 3, counts.length);
});

test('subscription_count: each new subscriber on the second gateway gets the count it made (20 channels)', async (t) => {
    // The count is published through Redis as soon as gw2's SUBSCRIBE is
    // live; it must reach the subscriber whose join made it even when it
    // arrives before that subscriber's worker has answered the join.
    const a = await client(t, gw1);
    const b = await client(t, gw2);
    const missed = [];
    for (let i = 0; i < 20; i++) {
        const ch = uniq('cl-count-each-');
        await a.subscribe(ch, 5000);
        const { channel } = await b.subscribe(ch, 5000);
        try {
            await channel.inbox.waitFor((m) => m.event === 'pusher:subscription_count' &&
                m.data.subscription_count === 2, { timeout: 2000 });
        } catch {
            missed.push(ch);
        }
        a.pusher.unsubscribe(ch);
        b.pusher.unsubscribe(ch);
    }
    assert.deepEqual(missed, [], 'every subscriber on gw2 got subscription_count 2');
});

test('every request was signed; counts of each event type, expected against received', () => {
    assert.ok(hook.requests.length > 0);
    for (const r of hook.requests) {
        assert.equal(r.valid, true);
        assert.equal(r.contentType, 'application/json');
    }
    for (const [kind, row] of table) {
        console.log(`# ${kind}: expected ${row.expected}, received ${row.received}`);
    }
});
