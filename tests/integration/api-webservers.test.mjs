// api-webservers.test.mjs - micronotifier-api behind Debian's nginx, Apache 2.4 and
// lighttpd, over FastCGI and SCGI, at the root and under /pusher, each configured
// from its file in samples/: the `pusher` library triggers (one event, a batch with
// info) through the web server and pusher-js receives; GET /channels,
// /channels/{ch}, /channels/{ch}/users and refusals (wrong signature, unknown app,
// users of a non-presence channel) answer byte for byte what the gateway's own
// port answers; sendToUser, terminate_connections and cache channels work through
// the bus too (issue 4; DESIGN "one REST core").
import test from 'node:test';
import assert from 'node:assert/strict';

import { connectClient, okJson, rawConnect, uniq, waitForEvent } from '../lib/harness.mjs';
import { rawSignin } from '../lib/signin.mjs';
import {
    PROTOCOLS, SERVERS, signedHttp, startStack, startWebServer, stopStack,
} from '../lib/webservers.mjs';

// One gateway and one daemon for every pair; the daemon strips /pusher when it
// is there, so the same daemon serves both mounts.
const stack = await startStack({ prefix: '/pusher' });
const { gw } = stack;
const app = gw.app('app1');

function sameAnswer(viaWeb, direct, what) {
    assert.equal(viaWeb.status, direct.status, `${what}: status (${viaWeb.text})`);
    assert.equal(viaWeb.headers['content-type'], direct.headers['content-type'],
        `${what}: content type`);
    assert.equal(viaWeb.text, direct.text, `${what}: body`);
}

for (const server of SERVERS) {
    for (const proto of PROTOCOLS) {
        for (const mount of ['root', 'prefix']) {
            test(`${server} + ${proto} (${mount}): pusher triggers, pusher-js receives, ` +
                `answers equal the gateway's`, async (t) => {
                const ws = await startWebServer(server, proto, mount, stack.api[proto]);
                t.after(() => ws.stop());
                const rest = ws.rest(app);
                const p = uniq(`${server}-${proto}-${mount}-`);
                const ch = `${p}-pub`;
                const pres = `presence-${p}`;
                const c = await connectClient(gw, {
                    t, presence: { user_id: `u-${p}`, user_info: { name: 'one' } },
                });
                const { channel } = await c.subscribe(ch);
                await c.subscribe(pres);

                const got = waitForEvent(channel, 'hello', 2000);
                assert.deepEqual(await okJson(rest.trigger(ch, 'hello', { via: server })), {});
                assert.deepEqual((await got).data, { via: server });

                const gotBatch = waitForEvent(channel, 'second', 2000);
                const batch = await okJson(rest.triggerBatch([
                    { channel: pres, name: 'first', data: { n: 1 }, info: 'user_count' },
                    { channel: ch, name: 'second', data: { n: 2 } },
                ]));
                assert.deepEqual(batch, { batch: [{ user_count: 1 }, {}] });
                assert.deepEqual((await gotBatch).data, { n: 2 });

                const asks = [
                    ['GET', '/apps/app1/channels', { filter_by_prefix: p }],
                    ['GET', '/apps/app1/channels',
                        { filter_by_prefix: `presence-${p}`, info: 'user_count' }],
                    ['GET', `/apps/app1/channels/${ch}`, {}],
                    ['GET', `/apps/app1/channels/${pres}`, { info: 'user_count' }],
                    ['GET', `/apps/app1/channels/${pres}/users`, {}],
                    ['GET', `/apps/app1/channels/${ch}/users`, {}],
                    ['GET', `/apps/app1/channels/${p}-nobody`, {}],
                    ['GET', '/apps/nope/channels', {}],
                    ['POST', '/apps/app1/events',
                        { body: { name: 'x', channel: pres, data: '{}', info: 'user_count' } }],
                    ['POST', '/apps/app1/events', { body: '{"name": "x", "channel": ' }],
                ];
                for (const [method, apiPath, opts] of asks) {
                    const o = opts.body ? { body: opts.body } : { params: opts };
                    const viaWeb = await signedHttp(ws.target, app, method, apiPath, o);
                    const direct = await signedHttp(gw, app, method, apiPath, o);
                    sameAnswer(viaWeb, direct, `${method} ${apiPath}`);
                }
                const users = await signedHttp(ws.target, app, 'GET',
                    `/apps/app1/channels/${pres}/users`);
                assert.deepEqual(users.json, { users: [{ id: `u-${p}` }] });

                const bad = await signedHttp(ws.target, app, 'GET', '/apps/app1/channels',
                    { secret: 'not-the-secret' });
                const badDirect = await signedHttp(gw, app, 'GET', '/apps/app1/channels',
                    { secret: 'not-the-secret' });
                assert.equal(bad.status, 401);
                sameAnswer(bad, badDirect, 'wrong signature');
            });
        }
    }
}

test('through nginx + SCGI: sendToUser, terminateUserConnections and cache channels ' +
    'cross the bus', async (t) => {
    const ws = await startWebServer('nginx', 'scgi', 'prefix', stack.api.scgi);
    t.after(() => ws.stop());
    const rest = ws.rest(app);
    // A signed-in user gets sendToUser, then is terminated (4009).
    const id = uniq('user-');
    const raw = await rawConnect(gw, { t });
    assert.equal((await rawSignin(raw, { id })).event, 'pusher:signin_success');
    await raw.subscribe(`#server-to-user-${id}`);
    await okJson(rest.sendToUser(id, 'notice', { hi: id }));
    const m = await raw.waitFor('notice');
    assert.deepEqual(m.data, { hi: id });
    assert.deepEqual(await okJson(rest.terminateUserConnections(id)), {});
    assert.equal((await raw.waitClose(3000)).code, 4009);
    // A cache channel keeps the last event published through the daemon.
    const cache = uniq('cache-');
    await okJson(rest.trigger(cache, 'cached', { v: 1 }));
    const info = await okJson(rest.get({ path: `/channels/${cache}`, params: { info: 'cache' } }));
    assert.equal(info.occupied, false);
    assert.equal(info.cache.data, JSON.stringify({ v: 1 }));
    assert.ok(info.cache.ttl > 0 && info.cache.ttl <= 1800, `ttl ${info.cache.ttl}`);
});

test('micronotifier-api and the gateway exit with status 0 on SIGTERM, sanitizers quiet',
    async () => {
        await stopStack(stack);
    });
