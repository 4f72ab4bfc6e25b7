// api-restart.test.mjs - restarts around the local bus (RELIABILITY S8; issue 4):
// the gateway stopped (SIGTERM) and killed (SIGKILL, leaving its socket file)
// while micronotifier-api runs behind nginx: every trigger in the gap answers 503
// with a clear text, never 200, and service is back within 1 s of the gateway's
// return; micronotifier-api stopped and killed while the gateway runs: the web
// server answers 502 in the gap, the gateway drops the old bus connections, and
// the new daemon (replacing stale socket files) serves at once.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
    Gateway, connectClient, expectStatus, freePort, makeConfig, okJson, uniq, waitForEvent,
    waitUntil,
} from '../lib/harness.mjs';
import {
    ApiDaemon, daemonRequest, signedTarget, startWebServer, tempDir,
} from '../lib/webservers.mjs';

const dir = tempDir();
const port = await freePort();
const config = makeConfig(port, {
    config: {
        'local-socket': path.join(dir, 'bus.sock'),
        api: {
            fastcgi: path.join(dir, 'api-fastcgi.sock'),
            scgi: path.join(dir, 'api-scgi.sock'),
            'socket-mode': '0666',
        },
    },
});
const file = path.join(dir, 'config.json');
fs.writeFileSync(file, JSON.stringify(config, null, 2));

/** A gateway on the shared config; its own dir is all its stop() removes. */
async function startGw() {
    const gw = new Gateway(config, fs.mkdtempSync(path.join(dir, 'gw-')), file, {});
    await gw.start();
    return gw;
}

let gw = await startGw();
const api = new ApiDaemon(file, config.api);
await api.start();
const web = await startWebServer('nginx', 'fastcgi', 'root', config.api.fastcgi);
const app = gw.app('app1');
const rest = web.rest(app);

/** A trigger straight to the daemon over FastCGI: {status, body}. */
function trigger(channel, name, data = '{}') {
    const body = JSON.stringify({ name, channel, data });
    const t = signedTarget(app, 'POST', '/apps/app1/events', { body });
    return daemonRequest('fastcgi', config.api.fastcgi, 'POST', `${t.path}?${t.query}`, body);
}

/** Triggers every 10 ms until one answers 200; the ms that took and the
 * statuses seen before. */
async function untilServed(channel) {
    const t0 = Date.now();
    const seen = [];
    await waitUntil(async () => {
        const r = await trigger(channel, 'probe');
        if (r.status !== 200) seen.push(r.status);
        return r.status === 200;
    }, { timeout: 5000, every: 10, what: 'a trigger through the daemon to answer 200' });
    return { ms: Date.now() - t0, seen };
}

async function gapAnswers503(what) {
    for (let i = 0; i < 5; i++) {
        const r = await trigger(uniq('gap-'), 'lost');
        assert.equal(r.status, 503, `${what}: trigger ${i} answers 503, got ${r.status} ${r.body}`);
        assert.match(r.body, /gateway is not reachable over the local bus; the event was not published/);
    }
    const viaWeb = await expectStatus(rest.trigger(uniq('gap-'), 'lost', {}), 503);
    assert.match(viaWeb.body, /not published/);
    const q = await daemonRequest('scgi', config.api.scgi, 'GET',
        (() => { const t = signedTarget(app, 'GET', '/apps/app1/channels'); return `${t.path}?${t.query}`; })());
    assert.equal(q.status, 503, 'queries answer 503 too');
}

test('gateway stopped while the daemon runs: 503 in the gap, served within 1 s of its return',
    async (t) => {
        const ch = uniq('restart-');
        assert.equal((await trigger(ch, 'before')).status, 200);
        await gw.stop();
        await gapAnswers503('gateway stopped');
        gw = await startGw();
        const back = await untilServed(ch);
        t.diagnostic(`after SIGTERM + restart: served ${back.ms} ms after the gateway ` +
            `accepted again (statuses before: ${back.seen.join(',') || 'none'})`);
        assert.ok(back.ms < 1000, `served ${back.ms} ms after the gateway accepted again`);
        // pusher-js on the new gateway receives what the web server and daemon publish.
        const c = await connectClient(gw, { t });
        const { channel } = await c.subscribe(ch);
        const got = waitForEvent(channel, 'after', 2000);
        await okJson(rest.trigger(ch, 'after', { back: true }));
        assert.deepEqual((await got).data, { back: true });
        await waitUntil(() => /bus: gateway reachable again/.test(api.stderr),
            { timeout: 2000, what: 'the daemon to log the way back' });
        assert.match(api.stderr, /bus: gateway (unreachable|lost)/);
    });

test('gateway killed (SIGKILL) while the daemon runs: stale socket replaced, back within 1 s',
    async (t) => {
        const ch = uniq('killed-');
        const c = await connectClient(gw, { t });
        await c.subscribe(ch);
        await gw.kill();
        assert.ok(fs.existsSync(config['local-socket']), 'a killed gateway leaves its socket file');
        await gapAnswers503('gateway killed');
        gw = await startGw();
        // Logged before the gateway listens; its stderr pipe may be read
        // after the port accepts.
        await waitUntil(() => /removing stale local-socket/.test(gw.stderr),
            { timeout: 2000, what: 'the restarted gateway to log the stale socket' });
        const back = await untilServed(ch);
        t.diagnostic(`after SIGKILL + restart: served ${back.ms} ms after the gateway ` +
            `accepted again (statuses before: ${back.seen.join(',') || 'none'})`);
        assert.ok(back.ms < 1000, `served ${back.ms} ms after the gateway accepted again`);
        // The client reconnects to the new gateway by itself.
        await c.waitState('connected', 10000);
        const { channel } = await c.subscribe(ch);
        const got = waitForEvent(channel, 'again', 2000);
        await okJson(rest.trigger(ch, 'again', {}));
        await got;
    });

test('daemon stopped and killed while the gateway runs: 502 from nginx, then served at once',
    async (t) => {
        const ch = uniq('api-restart-');
        const c = await connectClient(gw, { t });
        const { channel } = await c.subscribe(ch);
        await api.stop();
        assert.ok(!fs.existsSync(config.api.fastcgi), 'a stopped daemon removes its sockets');
        await expectStatus(rest.trigger(ch, 'gap', {}), 502);
        await api.start();
        let got = waitForEvent(channel, 'one', 2000);
        await okJson(rest.trigger(ch, 'one', {}));
        await got;
        // SIGKILL leaves the socket files; the next daemon replaces them.
        await api.kill();
        assert.ok(fs.existsSync(config.api.fastcgi), 'a killed daemon leaves its sockets');
        await expectStatus(rest.trigger(ch, 'gap', {}), 502);
        await api.start();
        await waitUntil(() => /removing stale socket/.test(api.stderr),
            { timeout: 2000, what: 'the restarted daemon to log the stale sockets' });
        got = waitForEvent(channel, 'two', 2000);
        await okJson(rest.trigger(ch, 'two', {}));
        await got;
        assert.ok(gw.alive(), 'the gateway never noticed more than closed bus connections');
        assert.equal(c.state, 'connected');
    });

test('everything exits with status 0 on SIGTERM, sanitizers quiet', async () => {
    await web.stop();
    await api.stop();
    await gw.stop();
    fs.rmSync(dir, { recursive: true, force: true });
});
