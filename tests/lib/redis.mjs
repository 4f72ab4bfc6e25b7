// redis.mjs - real redis-server and redis-sentinel processes for the
// distributed-mode tests (issue 5), on free loopback ports in a private temp
// dir, without persistence (--save ''), stopped after the test. Commands go
// through redis-cli. Every wait is a condition with a deadline. Also the
// fleets of gateways on them, pusher-js on two gateways, and the wait for
// delivery to resume after a Redis fault or a failover; a proxy that holds
// back Redis's answers on a gateway's command or pub/sub connection.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
    connectClient, freePort, okJson, performance, raceTimeout, startGateway, waitForEvent,
    waitUntil,
} from './harness.mjs';

const procs = new Set();
process.on('exit', () => {
    for (const p of procs) {
        try {
            p.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/** Runs redis-cli -p port args...; resolves its trimmed stdout ('' on error). */
export function cli(port, ...args) {
    return new Promise((resolve) => {
        execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args.map(String)],
            { timeout: 2000 }, (err, stdout) => resolve(err ? '' : stdout.trim()));
    });
}

/** One redis-server or redis-sentinel process on `port`. */
export class RedisProc {
    constructor(port, { sentinel = false, args = [], dir } = {}) {
        this.port = port;
        this.sentinel = sentinel;
        this.args = args;
        this.dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'mn-redis-'));
        this.log = '';
    }

    async start() {
        let argv;
        if (this.sentinel) {
            const file = path.join(this.dir, `sentinel-${this.port}.conf`);
            fs.writeFileSync(file, this.args.join('\n') + '\n');
            argv = ['redis-sentinel', [file]];
        } else {
            argv = ['redis-server', ['--port', String(this.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.args]];
        }
        this.proc = spawn(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'pipe'] });
        procs.add(this.proc);
        this.proc.stdout.on('data', (d) => {
            this.log = (this.log + d).slice(-20000);
        });
        this.proc.stderr.on('data', (d) => {
            this.log = (this.log + d).slice(-20000);
        });
        this.exited = new Promise((resolve) => this.proc.once('exit', () => {
            procs.delete(this.proc);
            resolve();
        }));
        await waitUntil(async () => (await cli(this.port, 'PING')) === 'PONG',
            { timeout: 5000, what: `redis on port ${this.port} to answer PING` });
        return this;
    }

    /** Stops the process with sig (SIGTERM: clean, SIGKILL: kill -9). */
    async stop(sig = 'SIGTERM') {
        if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
        this.proc.kill(sig);
        await this.exited;
    }
}

/** A plain redis-server on a free port (pass `port` to reuse one). */
export async function startRedis(opts = {}) {
    const port = opts.port ?? await freePort();
    return new RedisProc(port, opts).start();
}

/**
 * A master, a replica and three sentinels (down-after-milliseconds 1000),
 * resolved once every sentinel knows the replica and the two other sentinels.
 */
export async function startSentinelSet(masterName = 'mymaster') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-sentinel-'));
    const master = await startRedis({ dir });
    const replica = await startRedis({ dir, args: ['--replicaof', '127.0.0.1', master.port] });
    const sentinels = [];
    for (let i = 0; i < 3; i++) {
        const port = await freePort();
        sentinels.push(await new RedisProc(port, {
            sentinel: true,
            dir,
            args: [
                `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
                `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
                `sentinel down-after-milliseconds ${masterName} 1000`,
                `sentinel failover-timeout ${masterName} 5000`,
                `sentinel parallel-syncs ${masterName} 1`,
            ],
        }).start());
    }
    for (const s of sentinels) {
        await waitUntil(async () => {
            const reps = await cli(s.port, 'SENTINEL', 'replicas', masterName);
            const sens = await cli(s.port, 'SENTINEL', 'sentinels', masterName);
            return reps.includes(String(replica.port)) &&
                sentinels.every((o) => o === s || sens.includes(String(o.port)));
        }, { timeout: 15000, what: `sentinel ${s.port} to see the replica and its peers` });
    }
    return {
        master, replica, sentinels, dir,
        address: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
        async stop() {
            for (const p of [...sentinels, replica, master]) await p.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** Subscribers Redis counts on pub/sub name `name`. */
export async function numsub(port, name) {
    const out = await cli(port, 'PUBSUB', 'NUMSUB', name);
    const lines = out.split('\n');
    return lines.length >= 2 ? Number(lines[1]) : 0;
}

/**
 * Two gateways sharing the Redis described by redisConfig ({redis: {...}}),
 * stopped, and then `backend` (a RedisProc or a sentinel set), after the
 * file's tests. Returns [gw1, gw2].
 */
export async function gatewayPair(test, redisConfig, backend) {
    const gw1 = await startGateway({ config: redisConfig });
    const gw2 = await startGateway({ config: redisConfig });
    test.after(async () => {
        await gw1.stop();
        await gw2.stop();
        await backend.stop();
    });
    return [gw1, gw2];
}

/**
 * A function starting one more gateway with startGateway(opts); after the
 * file's tests every gateway still alive is stopped, then each of `backends`
 * (a RedisProc, a sentinel set, a webhook receiver: anything with stop()).
 */
export function gatewayFleet(test, opts, ...backends) {
    const gateways = [];
    test.after(async () => {
        for (const g of gateways) if (g.alive()) await g.stop();
        for (const b of backends) await b.stop();
    });
    return async () => {
        const g = await startGateway(opts);
        gateways.push(g);
        return g;
    };
}

/** Resolves once `n` gateways subscribe to channel ch of `app` (database 1)
 * in the Redis at `port`; fails after `timeout` ms. */
export function subscribedIn(port, ch, n = 2, timeout = 3000, app = 'app1') {
    const name = `mn:1:${app}:${ch}`;
    return waitUntil(async () => (await numsub(port, name)) === n,
        { timeout, what: `${n} Redis subscriber(s) of ${name} on port ${port}` });
}

/**
 * pusher-js on gw1 and on gw2 (app `app`) subscribed to ch; resolves once
 * both gateways subscribe to it in the Redis at `port`, with
 * { a, b, ca, cb }: the clients and their channels.
 */
export async function clientsOnBoth(t, [gw1, gw2], ch, port, app = 'app1') {
    const a = await connectClient(gw1, { t, app, name: 'on-gw1' });
    const b = await connectClient(gw2, { t, app, name: 'on-gw2' });
    const { channel: ca } = await a.subscribe(ch);
    const { channel: cb } = await b.subscribe(ch);
    await subscribedIn(port, ch, 2, 3000, app);
    return { a, b, ca, cb };
}

/**
 * After a Redis fault or a failover: triggers `event` on ch through rest
 * (data {n}) every `every` ms until one is accepted and every channel of
 * `channels` got it (within 1 s), or `timeout` passes (a test failure).
 * Resolves { at: performance.now() at the delivery, refused: the triggers
 * refused meanwhile }.
 */
export async function deliveredAgain(rest, ch, channels,
    { event = 'resumed', timeout = 5000, every = 20,
        what = 'a trigger accepted and delivered on both gateways' } = {}) {
    let n = 0;
    let refused = 0;
    const at = await waitUntil(async () => {
        const got = channels.map((c) => waitForEvent(c, event, 1000));
        try {
            await okJson(rest.trigger(ch, event, { n: ++n }));
        } catch {
            refused++;
            got.forEach((p) => p.catch(() => {}));
            return false;
        }
        await Promise.all(got);
        return performance.now();
    }, { timeout, every, what });
    return { at, refused };
}

/**
 * A TCP proxy to the Redis on `port` that can hold back what Redis answers
 * on a gateway's pub/sub connections (kind 'sub': their first command is
 * SUBSCRIBE) or on its command connections ('pub': anything else), in order,
 * until released; what the gateway sends always goes through at once.
 * hold(kind) and release(kind) (flushes what was held); seen(kind, text,
 * timeout) resolves once Redis's answers on a connection of that kind, held
 * or not, include text, and rejects after timeout ms; cut() drops every
 * connection and refuses new ones (the gateway's link is down, as after a
 * network fault, while Redis and the other gateways carry on) until
 * restore(); close().
 */
export async function gatedProxy(port) {
    const listen = await freePort();
    const conns = new Set(); // {down, up, kind, held: [], got: ''}
    const held = new Set();
    const waiters = new Set(); // {kind, text, resolve}
    const check = () => {
        for (const w of waiters) {
            if ([...conns].some((c) => c.kind === w.kind && c.got.includes(w.text))) {
                waiters.delete(w);
                w.resolve();
            }
        }
    };
    let refusing = false;
    const server = net.createServer((down) => {
        if (refusing) {
            down.destroy();
            return;
        }
        const c = { down, up: net.connect(port, '127.0.0.1'), kind: null, held: [], got: '' };
        conns.add(c);
        down.on('data', (d) => {
            c.kind ??= /^\*\d+\r\n\$9\r\nSUBSCRIBE\r\n/i.test(d.toString('latin1'))
                ? 'sub' : 'pub';
            c.up.write(d);
        });
        c.up.on('data', (d) => {
            c.got += d.toString('latin1');
            if (held.has(c.kind)) c.held.push(d);
            else down.write(d);
            check();
        });
        for (const [x, y] of [[down, c.up], [c.up, down]]) {
            x.on('error', () => y.destroy());
            x.on('close', () => {
                y.destroy();
                conns.delete(c);
            });
        }
    });
    await new Promise((resolve) => server.listen(listen, '127.0.0.1', resolve));
    return {
        port: listen,
        hold(kind) {
            held.add(kind);
        },
        release(kind) {
            held.delete(kind);
            for (const c of conns) {
                if (c.kind !== kind) continue;
                for (const d of c.held.splice(0)) c.down.write(d);
            }
        },
        seen(kind, text, timeout = 3000) {
            const w = { kind, text };
            const p = new Promise((resolve) => {
                w.resolve = resolve;
            });
            waiters.add(w);
            check();
            return raceTimeout(p, timeout, 'timeout').then((r) => {
                waiters.delete(w);
                if (r === 'timeout') {
                    throw new Error(`${text} not seen on a ${kind} connection in ${timeout} ms`);
                }
            });
        },
        cut() {
            refusing = true;
            for (const c of conns) {
                c.down.destroy();
                c.up.destroy();
            }
        },
        restore() {
            refusing = false;
        },
        close() {
            for (const c of conns) {
                c.down.destroy();
                c.up.destroy();
            }
            server.close();
        },
    };
}
