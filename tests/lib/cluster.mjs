// cluster.mjs - presence helpers for the distributed-mode tests: pusher-js
// members on a gateway, and the convergence check of RELIABILITY section 5
// (every subscriber's member list = GET /users on every gateway = the users
// actually connected).
import assert from 'node:assert/strict';

import { connectClient, okJson, waitUntil } from './harness.mjs';

export const user = (id) => ({ user_id: id, user_info: { name: `user ${id}` } });

export async function users(gw, ch) {
    const res = await okJson(gw.rest().get({ path: `/channels/${ch}/users` }));
    return res.users.map((u) => u.id).sort();
}

/** A pusher-js client on gw subscribed to presence channel ch as user id. */
export async function member(t, gw, ch, id) {
    const c = await connectClient(gw, { t, presence: user(id), name: `u${id}@${gw.port}` });
    const { channel } = await c.subscribe(ch, 5000);
    return { c, channel, id };
}

export function memberIds(channel) {
    const ids = [];
    channel.members.each((m) => ids.push(m.id));
    return ids.sort();
}

/** Every client's member list = GET /users on every gateway = want. */
export async function converged(ch, clients, want, gws, timeout = 3000) {
    const sorted = [...new Set(want)].sort();
    await waitUntil(async () => {
        for (const g of gws) {
            if (JSON.stringify(await users(g, ch)) !== JSON.stringify(sorted)) return false;
        }
        return clients.every((m) => JSON.stringify(memberIds(m.channel)) === JSON.stringify(sorted));
    }, {
        timeout,
        what: `convergence on ${ch}: want ${sorted}; clients ` +
            clients.map((m) => `${m.id}:[${memberIds(m.channel)}]`).join(' '),
    });
    for (const m of clients) assert.equal(m.channel.members.count, sorted.length);
}
