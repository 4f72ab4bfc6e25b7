// harness.mjs - shared helpers for the integration and browser tiers.
//
// Owns: finding the gateway binary, free loopback ports, writing a config into a
// private temp dir, starting the gateway and stopping it (SIGTERM, exit status 0,
// no sanitizer report), pusher-js clients with a signing authorizer, raw `ws`
// clients, REST clients (the `pusher` SDK) and a raw REST signer for requests the
// SDK refuses to build. Every wait is a condition with a deadline.
//
// Environment: MN_GATEWAY (binary), MN_SRCDIR (source tree: config/test-*.pem),
// MN_BUILDDIR (build tree; informational). `make check` sets all three.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

export { Pusher, PusherServer, WebSocket, performance };

export const libDir = path.dirname(fileURLToPath(import.meta.url));
export const srcDir = process.env.MN_SRCDIR || path.resolve(libDir, '../..');
export const buildDir = process.env.MN_BUILDDIR || path.resolve(libDir, '../..');
export const gatewayBin =
    process.env.MN_GATEWAY || path.resolve(libDir, '../../micronotifier-gateway');
export const certFile = path.join(srcDir, 'config', 'test-cert.pem');
export const keyFile = path.join(srcDir, 'config', 'test-key.pem');

/** 32-byte master key for private-encrypted- channels (base64), test only. */
export const MASTER_KEY_B64 = Buffer.alloc(32, 7).toString('base64');

/** Query string pusher-js 8.6.0 sends on connect. */
export const PUSHER_QUERY = 'protocol=7&client=js&version=8.6.0&flash=false';

/** socket_id format every server library insists on. */
export const SOCKET_ID_RE = /^\d+\.\d+$/;

/** Text any sanitizer prints when it finds something. */
export const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** The three apps of the brief's example config. */
export function defaultApps() {
    return [
        { name: 'app1', id: 'app1', key: 'app1-key', secret: 'app1-secret', 'client-events': true },
        { name: 'off', key: 'off-key', secret: 'off-secret', enabled: false },
        { name: 'noclient', key: 'noclient-key', secret: 'noclient-secret' },
    ];
}

const running = new Set(); // child processes still alive, killed on exit
process.on('exit', () => {
    for (const proc of running) {
        try {
            proc.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/** Resolves after ms milliseconds. Only for pacing or for a bounded observation
 * window that is itself the thing under test, never to wait for a condition. */
export function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves like promise, or with `onTimeout` after ms; the timer is cleared
 * either way so that it never keeps the process alive. */
export function raceTimeout(promise, ms, onTimeout = null) {
    let timer;
    const t = new Promise((resolve) => {
        timer = setTimeout(() => resolve(onTimeout), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; we release it at once). */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

/** Polls fn (sync or async) every `every` ms until it returns a truthy value,
 * which is returned; throws after timeout ms naming what was awaited. */
export async function waitUntil(fn, { timeout = 5000, every = 20, what = 'condition' } = {}) {
    const deadline = Date.now() + timeout;
    let lastErr;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() > deadline) {
            const why = lastErr ? ` (last error: ${lastErr.message})` : '';
            throw new Error(`timed out after ${timeout} ms waiting for ${what}${why}`);
        }
        await delay(every);
    }
}

function canConnect(port) {
    return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.once('error', () => resolve(false));
    });
}

function matcher(pred) {
    if (typeof pred === 'function') return pred;
    if (typeof pred === 'string') return (m) => m.event === pred;
    return (m) => Object.entries(pred).every(([k, v]) => m[k] === v);
}

function describe(pred) {
    if (typeof pred === 'string') return `event ${pred}`;
    if (typeof pred === 'function') return pred.what || 'a matching message';
    return JSON.stringify(pred);
}

/** An ordered log of received items that tests can wait on. */
export class Inbox {
    constructor(name) {
        this.name = name;
        this.items = [];
        this.waiters = new Set();
        this.closedWith = null;
    }

    push(item) {
        this.items.push(item);
        const i = this.items.length - 1;
        for (const w of [...this.waiters]) w.offer(item, i);
    }

    /** Makes every pending and future wait fail at once with reason. */
    close(reason) {
        this.closedWith = reason;
        for (const w of [...this.waiters]) w.fail(reason);
    }

    /** Items matching pred (event name, field object or function). */
    filter(pred, from = 0) {
        const f = matcher(pred);
        return this.items.slice(from).filter(f);
    }

    count(pred, from = 0) {
        return this.filter(pred, from).length;
    }

    /** First item at index >= from matching pred, waiting up to timeout ms. */
    waitFor(pred, { timeout = 2000, from = 0, what } = {}) {
        const f = matcher(pred);
        const label = what || describe(pred);
        for (let i = from; i < this.items.length; i++) {
            if (f(this.items[i])) return Promise.resolve(this.items[i]);
        }
        if (this.closedWith) {
            return Promise.reject(
                new Error(`${this.name}: ${this.closedWith} while waiting for ${label}; ` +
                    `received: ${this.summary()}`));
        }
        return new Promise((resolve, reject) => {
            const w = {
                offer: (item, i) => {
                    if (i >= from && f(item)) {
                        this.waiters.delete(w);
                        clearTimeout(w.timer);
                        resolve(item);
                    }
                },
                fail: (reason) => {
                    this.waiters.delete(w);
                    clearTimeout(w.timer);
                    reject(new Error(`${this.name}: ${reason} while waiting for ${label}; ` +
                        `received: ${this.summary()}`));
                },
            };
            w.timer = setTimeout(() => {
                this.waiters.delete(w);
                reject(new Error(`${this.name}: timed out after ${timeout} ms waiting for ` +
                    `${label}; received: ${this.summary()}`));
            }, timeout);
            this.waiters.add(w);
        });
    }

    summary(n = 8) {
        const tail = this.items.slice(-n).map((m) => {
            const s = m.text ?? JSON.stringify(m);
            return s.length > 160 ? s.slice(0, 160) + '...' : s;
        });
        return `${this.items.length} item(s)${tail.length ? ': ' + tail.join(' | ') : ''}`;
    }
}

/** Builds a gateway config object (see docs/config.md). */
export function makeConfig(port, { apps, config = {}, tls = false } = {}) {
    const cfg = {
        host: '127.0.0.1',
        port,
        workers: 2,
        'activity-timeout': 120,
        'idle-ping': 2,
        'pong-timeout': 2,
        applications: apps || defaultApps(),
        ...config,
    };
    if (tls) {
        cfg.certificate = certFile;
        cfg['private-key'] = keyFile;
    }
    return cfg;
}

/**
 * Starts micronotifier-gateway on a free port with a config written to a fresh
 * temp dir, and resolves once the port accepts connections (deadline 20 s: ASan
 * builds start slowly). Options: apps (array), config (extra top-level keys),
 * tls (use config/test-cert.pem and test-key.pem).
 */
export async function startGateway(opts = {}) {
    if (!fs.existsSync(gatewayBin)) {
        throw new Error(`gateway binary not found: ${gatewayBin} (set MN_GATEWAY)`);
    }
    if (opts.tls && !(fs.existsSync(certFile) && fs.existsSync(keyFile))) {
        throw new Error(`TLS fixtures missing: ${certFile}, ${keyFile}`);
    }
    const port = await freePort();
    const config = makeConfig(port, opts);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mn-test-'));
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    const gw = new Gateway(config, dir, file, opts);
    await gw.start();
    return gw;
}

const LOG_CAP = 4 * 1024 * 1024;

/**
 * Spawns bin args with env into owner (a Gateway or a webservers.mjs Child):
 * sets owner.proc, keeps the tail of stdout/stderr in owner.stdout/.stderr
 * (a sanitizer report comes last: every chunk is scanned, with some overlap,
 * into owner.sanitizerSeen), and owner.exited resolving owner.exit. The
 * process is killed if the test process exits first.
 */
export function spawnCaptured(owner, bin, args, env) {
    owner.proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    running.add(owner.proc);
    owner.proc.stdout.setEncoding('utf8');
    owner.proc.stderr.setEncoding('utf8');
    owner.proc.stdout.on('data', (d) => {
        owner.stdout = (owner.stdout + d).slice(-LOG_CAP);
    });
    owner.proc.stderr.on('data', (d) => {
        if (SANITIZER_RE.test(owner.stderr.slice(-200) + d)) owner.sanitizerSeen = true;
        owner.stderr = (owner.stderr + d).slice(-LOG_CAP);
    });
    owner.exited = new Promise((resolve) => {
        owner.proc.once('exit', (code, signal) => {
            running.delete(owner.proc);
            owner.exit = { code, signal };
            resolve(owner.exit);
        });
    });
    owner.proc.once('error', (e) => {
        owner.stderr += `\nspawn error: ${e.message}`;
    });
}

export class Gateway {
    constructor(config, dir, file, opts) {
        this.config = config;
        this.dir = dir;
        this.file = file;
        this.port = config.port;
        this.host = '127.0.0.1';
        this.tls = Boolean(opts.tls);
        this.apps = config.applications;
        this.stdout = '';
        this.stderr = '';
        this.clients = new Set(); // anything with close(), closed before SIGTERM
        this.exit = null; // {code, signal} once exited
        this.sanitizerSeen = false;
        this.stopped = false;
        this.opts = opts;
    }

    async start() {
        const env = { ...process.env };
        if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'print_stacktrace=1';
        // opts.wrap: a command to run the gateway under, e.g. ['valgrind', ...].
        const wrap = this.opts.wrap || [];
        const argv = [...wrap.slice(1), gatewayBin, '-c', this.file];
        spawnCaptured(this, wrap.length ? wrap[0] : gatewayBin,
            wrap.length ? argv : argv.slice(1), env);
        try {
            await waitUntil(
                async () => {
                    if (this.exit) {
                        throw new Error(`gateway exited early (${JSON.stringify(this.exit)})`);
                    }
                    return canConnect(this.port);
                },
                { timeout: 20000, every: 25, what: `gateway to accept on port ${this.port}` },
            );
        } catch (e) {
            await this.kill();
            throw new Error(`${e.message}\n--- gateway stderr ---\n${this.tail()}`);
        }
    }

    /** Last n characters of stderr and stdout, for failure messages. */
    tail(n = 4000) {
        const s = this.stderr + (this.stdout ? `\n--- stdout ---\n${this.stdout}` : '');
        return s.length > n ? '...' + s.slice(-n) : s;
    }

    app(name = 'app1') {
        const a = this.apps.find((x) => x.name === name);
        if (!a) throw new Error(`no app ${name} in config`);
        return { ...a, id: a.id || a.name };
    }

    get scheme() {
        return this.tls ? 'wss' : 'ws';
    }

    /** The URL pusher-js would open for app key `key`. */
    wsUrl(key = 'app1-key', query = PUSHER_QUERY) {
        return `${this.scheme}://${this.host}:${this.port}/app/${key}` +
            (query === null ? '' : `?${query}`);
    }

    /** The `pusher` SDK (REST) for an app; opts override SDK options. */
    rest(name = 'app1', opts = {}) {
        const a = this.app(name);
        return new PusherServer({
            appId: a.id,
            key: a.key,
            secret: a.secret,
            host: this.host,
            port: this.port,
            useTLS: this.tls,
            agent: this.tls ? tlsAgent() : undefined,
            encryptionMasterKeyBase64: MASTER_KEY_B64,
            timeout: 10000,
            ...opts,
        });
    }

    /** True while the process runs. */
    alive() {
        return this.exit === null;
    }

    async kill() {
        if (this.exit) return;
        this.proc.kill('SIGKILL');
        await this.exited;
    }

    /**
     * Closes every client opened through the harness, sends SIGTERM and waits
     * (deadline 20 s) for the exit. Throws unless the status is 0 and stderr has
     * no sanitizer report.
     */
    async stop() {
        if (this.stopped) return this.exit;
        this.stopped = true;
        for (const c of [...this.clients]) {
            try {
                c.close();
            } catch {
                /* already closed */
            }
        }
        this.clients.clear();
        if (this.exit) {
            throw new Error(`gateway died before SIGTERM: ${JSON.stringify(this.exit)}\n` +
                this.tail());
        }
        this.proc.kill('SIGTERM');
        const r = await raceTimeout(this.exited, 20000, 'timeout');
        if (r === 'timeout') {
            await this.kill();
            throw new Error(`gateway did not exit within 20 s of SIGTERM\n${this.tail()}`);
        }
        fs.rmSync(this.dir, { recursive: true, force: true });
        if (this.sanitizerSeen || SANITIZER_RE.test(this.stderr)) {
            throw new Error(`sanitizer report in gateway stderr:\n${this.tail(20000)}`);
        }
        if (this.exit.code !== 0 || this.exit.signal !== null) {
            throw new Error(`gateway exit after SIGTERM was ${JSON.stringify(this.exit)}, ` +
                `want code 0\n${this.tail()}`);
        }
        return this.exit;
    }
}

let agentCache = null;
/** An https.Agent trusting only config/test-cert.pem. */
export function tlsAgent() {
    if (!agentCache) agentCache = new https.Agent({ ca: fs.readFileSync(certFile), keepAlive: false });
    return agentCache;
}

// ---------------------------------------------------------------- signatures

export function hmacHex(secret, text) {
    return crypto.createHmac('sha256', secret).update(text).digest('hex');
}

export function md5Hex(text) {
    return crypto.createHash('md5').update(text, 'utf8').digest('hex');
}

/** The auth object an app server's /pusher/auth would return (pusher SDK). */
export function authorize(gw, { app = 'app1', secret, socketId, channel, presence }) {
    const sdk = gw.rest(app, secret ? { secret } : {});
    return sdk.authorizeChannel(socketId, channel, presence);
}

// ------------------------------------------------------------ pusher-js client

let clientSeq = 0;

/**
 * Connects a pusher-js (Node build) client and resolves once it is connected.
 * Options: app (config name), key (override the app key), presence (an object
 * {user_id, user_info}, or a function(channelName) returning one), authSecret
 * (sign with this secret instead: a wrong signature), t (node:test context: the
 * client is disconnected after the test), tls, options (extra pusher-js options).
 * Rejects if not connected within timeout ms.
 */
export async function connectClient(gw, opts = {}) {
    const c = new PusherClient(gw, opts);
    if (opts.t) opts.t.after(() => c.close());
    await c.connected(opts.timeout ?? 5000);
    return c;
}

export class PusherClient {
    constructor(gw, opts = {}) {
        this.gw = gw;
        this.name = opts.name || `pusher-js#${++clientSeq}`;
        const app = gw.app(opts.app || 'app1');
        this.app = app;
        const sdk = gw.rest(app.name, opts.authSecret ? { secret: opts.authSecret } : {});
        this.states = [];
        this.errors = [];
        this.messages = new Inbox(this.name); // every protocol message, decoded
        const presenceFor = (ch) =>
            typeof opts.presence === 'function' ? opts.presence(ch) : opts.presence;
        const tls = opts.tls ?? gw.tls;
        this.pusher = new Pusher(opts.key || app.key, {
            wsHost: gw.host,
            wsPort: gw.port,
            wssPort: gw.port,
            forceTLS: tls,
            enabledTransports: ['ws'],
            disableStats: true,
            cluster: 'mt1',
            channelAuthorization: {
                customHandler: ({ socketId, channelName }, cb) => {
                    try {
                        const p = channelName.startsWith('presence-')
                            ? presenceFor(channelName)
                            : undefined;
                        cb(null, sdk.authorizeChannel(socketId, channelName, p));
                    } catch (e) {
                        cb(e, null);
                    }
                },
            },
            userAuthentication: {
                customHandler: ({ socketId }, cb) => {
                    try {
                        cb(null, sdk.authenticateUser(socketId, opts.user || { id: 'user' }));
                    } catch (e) {
                        cb(e, null);
                    }
                },
            },
            ...(opts.options || {}),
        });
        this.pusher.connection.bind('state_change', (s) => this.states.push(s.current));
        this.pusher.connection.bind('error', (e) => this.errors.push(e));
        this.pusher.connection.bind('message', (m) => this.messages.push(m));
        gw.clients.add(this);
    }

    get socketId() {
        return this.pusher.connection.socket_id;
    }

    get state() {
        return this.pusher.connection.state;
    }

    connected(timeout = 5000) {
        return new Promise((resolve, reject) => {
            if (this.state === 'connected') return resolve(this);
            const timer = setTimeout(() => {
                this.pusher.connection.unbind('connected', ok);
                reject(new Error(`${this.name}: not connected within ${timeout} ms; states ` +
                    `${this.states.join(' > ')}; errors ${JSON.stringify(this.errors)}`));
            }, timeout);
            const ok = () => {
                clearTimeout(timer);
                this.pusher.connection.unbind('connected', ok);
                resolve(this);
            };
            this.pusher.connection.bind('connected', ok);
        });
    }

    /** Waits for connection state `state` (e.g. 'disconnected', 'failed'). */
    waitState(state, timeout = 5000) {
        return waitUntil(() => this.state === state, {
            timeout,
            every: 10,
            what: `${this.name} state ${state} (states so far: ${this.states.join(' > ')})`,
        });
    }

    /**
     * Subscribes and resolves {channel, data, ms} at pusher:subscription_succeeded;
     * rejects on pusher:subscription_error or after timeout ms. Every event on the
     * channel is recorded in channel.inbox.
     */
    subscribe(name, timeout = 2000) {
        const t0 = performance.now();
        const ch = this.pusher.subscribe(name);
        if (!ch.inbox) {
            ch.inbox = new Inbox(`${this.name} ${name}`);
            ch.bind_global((event, data) => ch.inbox.push({ event, data, at: performance.now() }));
        }
        return new Promise((resolve, reject) => {
            const done = () => {
                clearTimeout(timer);
                ch.unbind('pusher:subscription_succeeded', ok);
                ch.unbind('pusher:subscription_error', bad);
            };
            const ok = (data) => {
                done();
                resolve({ channel: ch, data, ms: performance.now() - t0 });
            };
            const bad = (err) => {
                done();
                const e = new Error(`${this.name}: subscription_error on ${name}: ` +
                    JSON.stringify(err));
                e.subscriptionError = err;
                reject(e);
            };
            const timer = setTimeout(() => {
                done();
                reject(new Error(`${this.name}: no answer to subscribe ${name} in ${timeout} ms`));
            }, timeout);
            ch.bind('pusher:subscription_succeeded', ok);
            ch.bind('pusher:subscription_error', bad);
        });
    }

    /** Subscribes expecting a refusal; resolves the subscription_error payload. */
    async subscribeFails(name, timeout = 2000) {
        try {
            await this.subscribe(name, timeout);
        } catch (e) {
            if (e.subscriptionError) return e.subscriptionError;
            throw e;
        }
        throw new Error(`${this.name}: subscribe ${name} succeeded, want subscription_error`);
    }

    channel(name) {
        return this.pusher.channel(name);
    }

    /**
     * Sends pusher:ping and waits for the pusher:pong that answers it: the gateway
     * handles one connection's messages in order, so everything sent before has
     * been processed (and anything it produced for us has arrived) by then.
     */
    async barrier(timeout = 2000) {
        const from = this.messages.items.length;
        this.pusher.connection.send_event('pusher:ping', {});
        await this.messages.waitFor('pusher:pong', { from, timeout });
    }

    close() {
        this.gw.clients.delete(this);
        this.pusher.disconnect();
    }
}

/** Resolves {data, metadata} of the next `event` on a pusher-js channel. */
export function waitForEvent(channel, event, timeout = 2000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            channel.unbind(event, h);
            reject(new Error(`no ${event} on ${channel.name} within ${timeout} ms`));
        }, timeout);
        const h = (data, metadata) => {
            clearTimeout(timer);
            channel.unbind(event, h);
            resolve({ data, metadata });
        };
        channel.bind(event, h);
    });
}

// ------------------------------------------------------------------ raw ws

/** Decodes one text frame: JSON envelope, data decoded when it is a JSON string. */
export function decodeFrame(text) {
    let m;
    try {
        m = JSON.parse(text);
    } catch {
        return { event: undefined, text, invalid: true };
    }
    if (m === null || typeof m !== 'object') return { event: undefined, text, invalid: true };
    const out = { ...m, text, rawData: m.data };
    if (typeof m.data === 'string') {
        try {
            out.data = JSON.parse(m.data);
        } catch {
            /* plain string data stays as is */
        }
    }
    return out;
}

/**
 * Opens a raw WebSocket. Options: key (default app1-key), path (replaces
 * /app/KEY), query (string, or null for none), answerPings (reply pusher:pong
 * to the server's pusher:ping, default true), autoPong (ws-level pong, default
 * true), tls (default gw.tls; trusts config/test-cert.pem), t (close after test).
 * Resolves once the HTTP upgrade finished; see established() for the handshake.
 */
export async function rawConnect(gw, opts = {}) {
    const c = new RawClient(gw, opts);
    if (opts.t) opts.t.after(() => c.close());
    await c.opened;
    return c;
}

export class RawClient {
    constructor(gw, opts = {}) {
        this.gw = gw;
        this.name = opts.name || `raw#${++clientSeq}`;
        const tls = opts.tls ?? gw.tls;
        const scheme = tls ? 'wss' : 'ws';
        const pathPart = opts.path ?? `/app/${opts.key ?? 'app1-key'}`;
        const query = opts.query === undefined ? PUSHER_QUERY : opts.query;
        this.url = `${scheme}://${gw.host}:${gw.port}${pathPart}` +
            (query === null ? '' : `?${query}`);
        this.messages = new Inbox(this.name);
        this.wsPings = 0;
        this.answerPings = opts.answerPings ?? true;
        this.closeInfo = null;
        this.httpStatus = null;
        this.ws = new WebSocket(this.url, {
            autoPong: opts.autoPong ?? true,
            ca: tls ? fs.readFileSync(certFile) : undefined,
            perMessageDeflate: false,
            handshakeTimeout: 10000,
            maxPayload: 256 * 1024 * 1024,
        });
        this.opened = new Promise((resolve, reject) => {
            this.ws.once('open', () => resolve(this));
            this.ws.once('unexpected-response', (req, res) => {
                this.httpStatus = res.statusCode;
                res.resume();
                reject(new Error(`${this.name}: upgrade refused with HTTP ${res.statusCode}`));
                this.ws.terminate();
            });
            this.ws.once('error', (e) => reject(new Error(`${this.name}: ${e.message}`)));
        });
        this.opened.catch(() => {}); // observed through closed as well
        this.closed = new Promise((resolve) => {
            this.ws.once('close', (code, reason) => {
                this.closeInfo = { code, reason: reason.toString(), at: performance.now() };
                this.messages.close(`connection closed (${code} ${reason})`);
                resolve(this.closeInfo);
            });
        });
        this.ws.on('error', (e) => {
            this.error = e;
        });
        this.ws.on('ping', () => {
            this.wsPings++;
            this.messages.push({ event: '(ws ping)', text: '(ws ping)', at: performance.now() });
        });
        this.ws.on('pong', () => {
            this.messages.push({ event: '(ws pong)', text: '(ws pong)', at: performance.now() });
        });
        this.ws.on('message', (buf, isBinary) => {
            const text = buf.toString('utf8');
            const m = isBinary ? { event: undefined, text, binary: true } : decodeFrame(text);
            m.at = performance.now();
            this.messages.push(m);
            if (this.answerPings && m.event === 'pusher:ping') {
                this.send({ event: 'pusher:pong', data: {} });
            }
        });
        gw.clients.add(this);
    }

    get isOpen() {
        return this.ws.readyState === WebSocket.OPEN;
    }

    send(obj) {
        this.ws.send(JSON.stringify(obj));
    }

    sendText(text) {
        this.ws.send(text);
    }

    waitFor(pred, opts) {
        return this.messages.waitFor(pred, opts);
    }

    /** Waits for pusher:connection_established; returns its decoded data. */
    async established(timeout = 3000) {
        const m = await this.waitFor('pusher:connection_established', { timeout });
        this.socketId = m.data.socket_id;
        return m.data;
    }

    /** See PusherClient.barrier: pusher:ping, then the pong answering it. */
    async barrier(timeout = 2000) {
        const from = this.messages.items.length;
        this.send({ event: 'pusher:ping', data: {} });
        return this.waitFor('pusher:pong', { from, timeout });
    }

    /**
     * Sends pusher:subscribe and resolves the first answer about that channel:
     * pusher_internal:subscription_succeeded, pusher:subscription_error, or a
     * pusher:error (no channel field) arriving after the request.
     */
    async subscribe(channel, extra = {}, timeout = 2000) {
        const from = this.messages.items.length;
        this.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
        const f = (m) =>
            (m.channel === channel &&
                (m.event === 'pusher_internal:subscription_succeeded' ||
                    m.event === 'pusher:subscription_error')) ||
            m.event === 'pusher:error';
        f.what = `an answer to subscribing ${channel}`;
        return this.waitFor(f, { from, timeout });
    }

    /** Subscribes with a valid signature from the pusher SDK. */
    async subscribeAuth(channel, { app = 'app1', presence, secret } = {}, timeout = 2000) {
        if (!this.socketId) await this.established();
        const a = authorize(this.gw, { app, secret, socketId: this.socketId, channel, presence });
        const data = { auth: a.auth };
        if (a.channel_data !== undefined) data.channel_data = a.channel_data;
        return this.subscribe(channel, data, timeout);
    }

    /** Resolves {code, reason} when closed, rejecting after timeout ms. */
    async waitClose(timeout = 5000) {
        const r = await raceTimeout(this.closed, timeout, null);
        if (!r) {
            throw new Error(`${this.name}: still open after ${timeout} ms; received ` +
                this.messages.summary());
        }
        return r;
    }

    close() {
        this.gw.clients.delete(this);
        if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
            this.ws.close(1000);
        }
        return this.closed;
    }

    terminate() {
        this.gw.clients.delete(this);
        this.ws.terminate();
    }
}

// ------------------------------------------------------------------- REST

/**
 * Sends a REST request signed like the pusher SDK, with every knob exposed so
 * tests can produce what the SDK never would. Options: app (config name),
 * method, path (default /apps/{id}/events), params (extra query params, signed),
 * body (object, string or undefined), key, secret, timestamp, version,
 * bodyMd5 (string to override, null to omit), override (query params replaced
 * after signing; a value of null removes the param), rawQuery (send exactly
 * this query string), headers. Resolves {status, text, json, headers}.
 */
export async function signedRequest(gw, opts = {}) {
    const app = gw.app(opts.app || 'app1');
    const method = (opts.method || 'POST').toUpperCase();
    const reqPath = opts.path || `/apps/${app.id}/events`;
    const bodyText = opts.body === undefined
        ? ''
        : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const q = {
        auth_key: opts.key ?? app.key,
        auth_timestamp: String(opts.timestamp ?? Math.floor(Date.now() / 1000)),
        auth_version: opts.version ?? '1.0',
        ...(opts.params || {}),
    };
    if (opts.bodyMd5 !== null && (bodyText !== '' || opts.bodyMd5 !== undefined)) {
        q.body_md5 = opts.bodyMd5 ?? md5Hex(bodyText);
    }
    const canonical = Object.keys(q)
        .map((k) => [k.toLowerCase(), q[k]])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .map(([k, v]) => `${k}=${v}`)
        .join('&');
    const sig = hmacHex(opts.secret ?? app.secret, `${method}\n${reqPath}\n${canonical}`);
    const final = { ...q, auth_signature: sig, ...(opts.override || {}) };
    const query = opts.rawQuery ?? Object.entries(final)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&');
    const headers = { ...(opts.headers || {}) };
    if (bodyText !== '' && !headers['content-type']) headers['content-type'] = 'application/json';
    return httpRequest(gw, { method, path: `${reqPath}?${query}`, headers, body: bodyText });
}

/** A plain HTTP(S) request to the gateway on a fresh connection (no keep-alive
 * pool, so one test's refused request cannot spoil the next). Resolves
 * {status, text, json, headers}. */
export function httpRequest(gw, { method = 'GET', path: p = '/', headers = {}, body = '' } = {}) {
    const mod = gw.tls ? https : http;
    return new Promise((resolve, reject) => {
        const buf = Buffer.from(body, 'utf8');
        const req = mod.request({
            host: gw.host,
            port: gw.port,
            method,
            path: p,
            headers: { ...headers, 'content-length': buf.length },
            agent: false,
            ca: gw.tls ? fs.readFileSync(certFile) : undefined,
            timeout: 10000,
        }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try {
                    json = JSON.parse(text);
                } catch {
                    json = undefined;
                }
                resolve({ status: res.statusCode, text, json, headers: res.headers });
            });
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 10 s`)));
        req.on('error', reject);
        req.end(buf);
    });
}

/** Awaits an SDK promise expected to fail with HTTP `status`; returns the error. */
export async function expectStatus(promise, status) {
    let res;
    try {
        res = await promise;
    } catch (e) {
        if (e.status === status) return e;
        throw new Error(`want HTTP ${status}, got ${e.status ?? e.message}: ${e.body ?? ''}`);
    }
    throw new Error(`want HTTP ${status}, got ${res.status}: ${await res.text()}`);
}

/** Awaits an SDK promise expected to succeed; returns the parsed JSON body. */
export async function okJson(promise) {
    let res;
    try {
        res = await promise;
    } catch (e) {
        throw new Error(`REST call failed: ${e.status ?? ''} ${e.message} ${e.body ?? ''}` +
            (e.error ? ` (${e.error.message})` : ''));
    }
    if (res.status !== 200) throw new Error(`want HTTP 200, got ${res.status}`);
    return res.json();
}

/** p-th percentile (0..100) of numbers, nearest-rank. */
export function percentile(values, p) {
    const s = [...values].sort((a, b) => a - b);
    if (s.length === 0) return NaN;
    const rank = Math.ceil((p / 100) * s.length);
    return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** A channel name unique within the run (letters, digits, '-'). */
let nameSeq = 0;
export function uniq(prefix = '') {
    return `${prefix}t${process.pid}-${++nameSeq}`;
}
