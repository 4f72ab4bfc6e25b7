// webservers.mjs - helpers for micronotifier-api's tests, on top of harness.mjs.
//
// Owns: starting micronotifier-api (same config file as the gateway, sockets in a
// private temp dir) and stopping it (SIGTERM, exit 0, no sanitizer report); Debian's
// nginx, Apache 2.4 and lighttpd on free loopback ports with private configs built
// from the files in samples/ (so the samples are what is tested), each stopped
// after; raw FastCGI and SCGI clients that talk to the daemon's sockets directly
// (well-formed requests, and bytes of our choosing); a REST client for the
// `pusher` SDK through a web server, prefix included.
//
// Environment: MN_API (binary; default MN_BUILDDIR/micronotifier-api), plus what
// harness.mjs reads.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
    PusherServer,
    SANITIZER_RE,
    buildDir,
    freePort,
    hmacHex,
    httpRequest,
    md5Hex,
    raceTimeout,
    spawnCaptured,
    srcDir,
    startGateway,
    waitUntil,
} from './harness.mjs';

export const apiBin = process.env.MN_API || path.join(buildDir, 'micronotifier-api');
export const SERVERS = ['nginx', 'apache', 'lighttpd'];
export const PROTOCOLS = ['fastcgi', 'scgi'];

/** A private temp dir, world-traversable so that a web server's workers (which
 * drop to www-data or nobody when started as root) reach the sockets in it. */
export function tempDir(tag = 'mn-api-') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), tag));
    fs.chmodSync(dir, 0o755);
    return dir;
}

function canConnect(where) {
    return new Promise((resolve) => {
        const s = net.connect(where);
        s.once('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.once('error', () => resolve(false));
    });
}

/** net.connect options for an address: "host:port" or a socket path. */
export function connectOpts(addr) {
    const m = /^(.*):(\d+)$/.exec(addr);
    if (m && !addr.includes('/')) return { host: m[1], port: Number(m[2]) };
    return { path: addr };
}

/** A child process with captured output, used for the daemon and web servers. */
class Child {
    constructor(name, bin, args, opts = {}) {
        this.name = name;
        this.bin = bin;
        this.args = args;
        this.opts = opts;
        this.stderr = '';
        this.stdout = '';
        this.exit = null;
        this.sanitizerSeen = false;
    }

    spawn() {
        this.exit = null;
        const env = { ...process.env, ...(this.opts.env || {}) };
        if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'print_stacktrace=1';
        spawnCaptured(this, this.bin, this.args, env);
    }

    alive() {
        return this.exit === null;
    }

    tail(n = 4000) {
        const s = this.stderr + (this.stdout ? `\n--- stdout ---\n${this.stdout}` : '');
        return s.length > n ? '...' + s.slice(-n) : s;
    }

    async kill() {
        if (this.exit) return;
        this.proc.kill('SIGKILL');
        await this.exited;
    }

    /** SIGTERM and wait (deadline ms); resolves the exit status. */
    async terminate(deadline = 20000) {
        if (this.exit) return this.exit;
        this.proc.kill('SIGTERM');
        const r = await raceTimeout(this.exited, deadline, null);
        if (r === null) {
            await this.kill();
            throw new Error(`${this.name} did not exit within ${deadline} ms of SIGTERM\n` +
                this.tail());
        }
        return r;
    }
}

// ------------------------------------------------------------------ the daemon

/**
 * Starts a gateway with a local-socket plus an api object, and micronotifier-api
 * on the same config file. Options: fastcgi/scgi (true: a Unix socket in the temp
 * dir; a string: that address), prefix, threads, config (extra top-level keys),
 * apps. Resolves {gw, api, dir}.
 */
export async function startStack(opts = {}) {
    const dir = tempDir();
    const api = { 'socket-mode': '0666', threads: opts.threads ?? 4 };
    const sock = (v, name) => (v === true ? path.join(dir, name) : v);
    if (opts.fastcgi ?? true) api.fastcgi = sock(opts.fastcgi ?? true, 'api-fastcgi.sock');
    if (opts.scgi ?? true) api.scgi = sock(opts.scgi ?? true, 'api-scgi.sock');
    if (opts.prefix) api.prefix = opts.prefix;
    const gw = await startGateway({
        apps: opts.apps,
        config: { 'local-socket': path.join(dir, 'bus.sock'), api, ...(opts.config || {}) },
    });
    const daemon = new ApiDaemon(gw.file, gw.config.api);
    try {
        await daemon.start();
    } catch (e) {
        await gw.stop().catch(() => {});
        throw e;
    }
    return { gw, api: daemon, dir };
}

export class ApiDaemon extends Child {
    constructor(file, apiConfig) {
        super('micronotifier-api', apiBin, ['-c', file]);
        this.file = file;
        this.fastcgi = apiConfig.fastcgi;
        this.scgi = apiConfig.scgi;
        this.stopped = false;
    }

    /** Starts the daemon; resolves once every configured socket accepts. */
    async start() {
        if (!fs.existsSync(apiBin)) throw new Error(`api binary not found: ${apiBin}`);
        this.stopped = false;
        this.spawn();
        const addrs = [this.fastcgi, this.scgi].filter(Boolean);
        try {
            await waitUntil(async () => {
                if (this.exit) return true;
                for (const a of addrs) if (!(await canConnect(connectOpts(a)))) return false;
                return true;
            }, { timeout: 20000, every: 25, what: `micronotifier-api on ${addrs.join(', ')}` });
            if (this.exit) throw new Error(`api exited early (${JSON.stringify(this.exit)})`);
        } catch (e) {
            await this.kill();
            throw new Error(`${e.message}\n--- api stderr ---\n${this.tail()}`);
        }
    }

    /** SIGTERM; throws unless it exits 0 with no sanitizer report. */
    async stop() {
        if (this.stopped) return this.exit;
        this.stopped = true;
        if (this.exit) {
            throw new Error(`micronotifier-api died before SIGTERM: ${JSON.stringify(this.exit)}` +
                `\n${this.tail()}`);
        }
        const r = await this.terminate();
        if (this.sanitizerSeen || SANITIZER_RE.test(this.stderr)) {
            throw new Error(`sanitizer report in micronotifier-api stderr:\n${this.tail(20000)}`);
        }
        if (r.code !== 0 || r.signal !== null) {
            throw new Error(`micronotifier-api exit after SIGTERM was ${JSON.stringify(r)}\n` +
                this.tail());
        }
        return r;
    }
}

/** Stops the daemon, then the gateway (both must exit cleanly), then the dir. */
export async function stopStack(stack) {
    const errors = [];
    for (const p of [stack.web, stack.api, stack.gw]) {
        if (!p) continue;
        try {
            await p.stop();
        } catch (e) {
            errors.push(e);
        }
    }
    fs.rmSync(stack.dir, { recursive: true, force: true });
    if (errors.length) throw errors[0];
}

// ------------------------------------------------------------- web servers

/** The sample for a server, protocol and mount, with our paths and port in. */
export function sampleFor(server, proto, mount, { port, socket }) {
    const file = path.join(srcDir, 'samples', server, `${proto}-${mount}.conf`);
    let text = fs.readFileSync(file, 'utf8');
    const replace = (from, to) => {
        if (!text.includes(from)) throw new Error(`${file}: expected "${from}" in the sample`);
        text = text.split(from).join(to);
    };
    replace(`/run/micronotifier/api-${proto}.sock`, socket);
    if (server === 'nginx') {
        replace('listen 80;', `listen 127.0.0.1:${port};`);
        replace(`include ${proto}_params;`, `include /etc/nginx/${proto}_params;`);
    } else if (server === 'apache') {
        replace('<VirtualHost *:80>', `<VirtualHost 127.0.0.1:${port}>`);
    }
    return text;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** uid and gid of www-data, which the web servers drop to when started as root. */
function wwwData() {
    const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n')
        .find((l) => l.startsWith('www-data:'));
    if (!line) throw new Error('no www-data user in /etc/passwd (Debian creates it)');
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
}

function nginxConf(dir, sample) {
    const d = (n) => path.join(dir, n);
    return `daemon off;
worker_processes 1;
pid ${d('nginx.pid')};
error_log ${d('error.log')} info;
${isRoot ? 'user www-data;' : ''}
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path ${d('body')};
    fastcgi_temp_path ${d('fastcgi')};
    scgi_temp_path ${d('scgi')};
    uwsgi_temp_path ${d('uwsgi')};
    proxy_temp_path ${d('proxy')};
${sample}
}
`;
}

function apacheConf(dir, port, proto, sample) {
    const mod = (name, file) => `LoadModule ${name}_module /usr/lib/apache2/modules/mod_${file}.so`;
    return `ServerRoot "${dir}"
DefaultRuntimeDir "${dir}"
PidFile "${path.join(dir, 'apache2.pid')}"
ErrorLog "${path.join(dir, 'error.log')}"
LogLevel warn
ServerName localhost
Listen 127.0.0.1:${port}
${mod('mpm_event', 'mpm_event')}
${mod('authz_core', 'authz_core')}
${mod('proxy', 'proxy')}
${proto === 'fastcgi' ? mod('proxy_fcgi', 'proxy_fcgi') : mod('proxy_scgi', 'proxy_scgi')}
${isRoot ? 'User www-data\nGroup www-data' : ''}
StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
${sample}
`;
}

function lighttpdConf(dir, port, sample) {
    return `server.document-root = "${dir}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${path.join(dir, 'error.log')}"
server.modules = ( )
${isRoot ? 'server.username = "www-data"\nserver.groupname = "www-data"' : ''}
${sample}
`;
}

/**
 * Starts server ('nginx' | 'apache' | 'lighttpd') in front of the daemon's socket
 * for proto, configured from samples/SERVER/PROTO-MOUNT.conf (mount 'root' or
 * 'prefix'). Resolves a WebServer once its port accepts.
 */
export async function startWebServer(server, proto, mount, socket) {
    const dir = tempDir(`mn-${server}-`);
    const port = await freePort();
    const sample = sampleFor(server, proto, mount, { port, socket });
    let ws;
    if (server === 'nginx') {
        for (const t of ['body', 'fastcgi', 'scgi', 'uwsgi', 'proxy']) {
            fs.mkdirSync(path.join(dir, t));
        }
        fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, sample));
        ws = new WebServer(server, 'nginx',
            ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
            dir, port, mount);
    } else if (server === 'apache') {
        fs.writeFileSync(path.join(dir, 'apache2.conf'), apacheConf(dir, port, proto, sample));
        ws = new WebServer(server, 'apache2',
            ['-f', path.join(dir, 'apache2.conf'), '-DFOREGROUND'], dir, port, mount);
    } else if (server === 'lighttpd') {
        fs.writeFileSync(path.join(dir, 'lighttpd.conf'), lighttpdConf(dir, port, sample));
        // lighttpd opens its error log after dropping to www-data.
        fs.writeFileSync(path.join(dir, 'error.log'), '');
        if (isRoot) fs.chownSync(path.join(dir, 'error.log'), wwwData().uid, wwwData().gid);
        ws = new WebServer(server, 'lighttpd', ['-D', '-f', path.join(dir, 'lighttpd.conf')],
            dir, port, mount);
    } else {
        throw new Error(`unknown web server ${server}`);
    }
    await ws.start();
    return ws;
}

export class WebServer extends Child {
    constructor(server, bin, args, dir, port, mount) {
        super(server, bin, args);
        this.dir = dir;
        this.port = port;
        this.host = '127.0.0.1';
        this.mount = mount;
        this.prefix = mount === 'prefix' ? '/pusher' : '';
    }

    errorLog() {
        try {
            return fs.readFileSync(path.join(this.dir, 'error.log'), 'utf8');
        } catch {
            return '';
        }
    }

    tail(n = 4000) {
        const s = super.tail(n) + `\n--- error.log ---\n${this.errorLog()}`;
        return s.length > n ? '...' + s.slice(-n) : s;
    }

    async start() {
        this.spawn();
        try {
            await waitUntil(async () => this.exit || canConnect({ host: this.host, port: this.port }),
                { timeout: 15000, every: 25, what: `${this.name} on port ${this.port}` });
            if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)})`);
        } catch (e) {
            await this.kill();
            const log = this.tail();
            fs.rmSync(this.dir, { recursive: true, force: true });
            throw new Error(`${e.message}\n${log}`);
        }
    }

    async stop() {
        try {
            await this.terminate(10000);
        } finally {
            fs.rmSync(this.dir, { recursive: true, force: true });
        }
    }

    /** The `pusher` SDK aimed at this server (the prefix goes in the host, the
     * way pusher-http-node reaches an API mounted under a path). */
    rest(app, opts = {}) {
        return new PusherServer({
            appId: app.id,
            key: app.key,
            secret: app.secret,
            host: `${this.host}:${this.port}${this.prefix}`,
            useTLS: false,
            timeout: 10000,
            ...opts,
        });
    }

    /** The {host, port} a harness http helper needs, with the prefix to add. */
    get target() {
        return { host: this.host, port: this.port, tls: false, prefix: this.prefix };
    }
}

// --------------------------------------------------------------- signing

/** path?query for a request signed like the pusher SDK (path is /apps/...). */
export function signedTarget(app, method, reqPath, { params = {}, body = '', timestamp } = {}) {
    const q = {
        auth_key: app.key,
        auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        ...params,
    };
    if (body !== '') q.body_md5 = md5Hex(body);
    const canonical = Object.keys(q)
        .map((k) => [k.toLowerCase(), q[k]])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .map(([k, v]) => `${k}=${v}`)
        .join('&');
    const sig = hmacHex(app.secret, `${method}\n${reqPath}\n${canonical}`);
    const query = Object.entries({ ...q, auth_signature: sig })
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&');
    return { path: reqPath, query };
}

/**
 * A signed REST request over HTTP to target ({host, port, prefix?}: the gateway
 * itself, or a WebServer's target). apiPath is what the app signs (/apps/...);
 * the prefix is only in the URL. Options: params, body (object or text),
 * timestamp, secret (sign with another secret). Resolves {status, text, json,
 * headers} as harness.httpRequest does.
 */
export function signedHttp(target, app, method, apiPath, opts = {}) {
    const body = opts.body === undefined ? ''
        : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const signer = opts.secret ? { ...app, secret: opts.secret } : app;
    const t = signedTarget(signer, method, apiPath,
        { params: opts.params, body, timestamp: opts.timestamp });
    const headers = body ? { 'content-type': 'application/json' } : {};
    return httpRequest({ host: target.host, port: target.port, tls: false },
        { method, path: `${target.prefix || ''}${t.path}?${t.query}`, headers, body });
}

// ------------------------------------------------------- raw FastCGI / SCGI

const FCGI = { BEGIN: 1, ABORT: 2, END: 3, PARAMS: 4, STDIN: 5, STDOUT: 6, STDERR: 7,
    GET_VALUES: 9 };

/** One FastCGI record (content up to 65535 bytes, padded to 8). */
export function fcgiRecord(type, id, content = Buffer.alloc(0), padding) {
    const pad = padding ?? ((8 - (content.length % 8)) % 8);
    const h = Buffer.alloc(8);
    h[0] = 1;
    h[1] = type;
    h.writeUInt16BE(id, 2);
    h.writeUInt16BE(content.length, 4);
    h[6] = pad;
    return Buffer.concat([h, content, Buffer.alloc(pad)]);
}

function nvLen(n) {
    if (n < 128) return Buffer.from([n]);
    const b = Buffer.alloc(4);
    b.writeUInt32BE((n | 0x80000000) >>> 0);
    return b;
}

/** FastCGI name-value pairs. */
export function fcgiPairs(params) {
    return Buffer.concat(Object.entries(params).flatMap(([k, v]) => {
        const kb = Buffer.from(k);
        const vb = Buffer.from(String(v));
        return [nvLen(kb.length), nvLen(vb.length), kb, vb];
    }));
}

function chunks(buf, size = 65535) {
    const out = [];
    for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
    return out;
}

/** The bytes of a whole FastCGI responder request. */
export function fcgiRequestBytes(params, body = Buffer.alloc(0), id = 1) {
    const begin = Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]); // responder, no keep-conn
    const pairs = fcgiPairs(params);
    return Buffer.concat([
        fcgiRecord(FCGI.BEGIN, id, begin),
        ...chunks(pairs).map((c) => fcgiRecord(FCGI.PARAMS, id, c)),
        fcgiRecord(FCGI.PARAMS, id),
        ...chunks(Buffer.from(body)).map((c) => fcgiRecord(FCGI.STDIN, id, c)),
        fcgiRecord(FCGI.STDIN, id),
    ]);
}

/** The bytes of an SCGI request (CONTENT_LENGTH first, SCGI=1 added). */
export function scgiRequestBytes(headers, body = Buffer.alloc(0)) {
    const b = Buffer.from(body);
    const all = { CONTENT_LENGTH: String(b.length), SCGI: '1', ...headers };
    const text = Buffer.concat(Object.entries(all).map(([k, v]) =>
        Buffer.from(`${k}\0${v}\0`)));
    return Buffer.concat([Buffer.from(`${text.length}:`), text, Buffer.from(','), b]);
}

/**
 * Connects to addr, writes bytes (a Buffer, or an array of Buffers written one
 * after another), and collects what comes back until the peer closes or
 * timeout ms pass. Resolves {data, closed, reset, ms}.
 */
export function rawExchange(addr, bytes, { timeout = 8000, end = false } = {}) {
    return new Promise((resolve) => {
        const t0 = Date.now();
        const s = net.connect(connectOpts(addr));
        const got = [];
        let done = false;
        let reset = false;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            s.destroy();
            resolve({ data: Buffer.concat(got), closed, reset, ms: Date.now() - t0 });
        };
        const timer = setTimeout(() => finish(false), timeout);
        s.on('connect', () => {
            for (const b of Array.isArray(bytes) ? bytes : [bytes]) s.write(b);
            if (end) s.end();
        });
        s.on('data', (d) => got.push(d));
        s.on('error', (e) => {
            reset = e.code === 'ECONNRESET' || e.code === 'EPIPE';
            finish(true);
        });
        s.on('close', () => finish(true));
    });
}

/** Splits a CGI response ("Status: ...", headers, blank line, body). */
export function parseCgi(buf) {
    const text = buf.toString('utf8');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return { status: null, headers: {}, text, body: '' };
    const headers = {};
    for (const line of text.slice(0, end).split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = headers.status ? Number(headers.status.split(' ')[0]) : 200;
    return { status, headers, text, body: text.slice(end + 4) };
}

/** The STDOUT of a FastCGI response, and whether FCGI_END_REQUEST came. */
export function parseFcgi(buf) {
    const out = [];
    let ended = false;
    for (let i = 0; i + 8 <= buf.length;) {
        const type = buf[i + 1];
        const len = buf.readUInt16BE(i + 4);
        const pad = buf[i + 6];
        if (i + 8 + len + pad > buf.length) break;
        if (type === FCGI.STDOUT) out.push(buf.subarray(i + 8, i + 8 + len));
        if (type === FCGI.END) ended = true;
        i += 8 + len + pad;
    }
    return { stdout: Buffer.concat(out), ended };
}

/** The CGI variables a web server sends for method + target. */
export function cgiVars(method, target, body = '') {
    const [p, q = ''] = target.split('?');
    return {
        REQUEST_METHOD: method,
        REQUEST_URI: target,
        SCRIPT_NAME: p,
        QUERY_STRING: q,
        CONTENT_LENGTH: String(Buffer.byteLength(body)),
        CONTENT_TYPE: body ? 'application/json' : '',
        SERVER_PROTOCOL: 'HTTP/1.1',
    };
}

/** A well-formed FastCGI request straight to the daemon. Resolves the parsed
 * CGI response plus {ended, closed}. */
export async function fcgiRequest(addr, method, target, body = '', extra = {}) {
    const vars = { ...cgiVars(method, target, body), FCGI_ROLE: undefined, ...extra };
    delete vars.FCGI_ROLE;
    const r = await rawExchange(addr, fcgiRequestBytes(vars, Buffer.from(body)));
    const f = parseFcgi(r.data);
    return { ...parseCgi(f.stdout), ended: f.ended, closed: r.closed };
}

/** A well-formed SCGI request straight to the daemon. */
export async function scgiRequest(addr, method, target, body = '', extra = {}) {
    const vars = { ...cgiVars(method, target, body), ...extra };
    delete vars.CONTENT_LENGTH;
    const r = await rawExchange(addr, scgiRequestBytes(vars, Buffer.from(body)));
    return { ...parseCgi(r.data), closed: r.closed };
}

/** Sends the same request straight to the daemon over proto. */
export function daemonRequest(proto, addr, method, target, body = '', extra = {}) {
    return proto === 'fastcgi'
        ? fcgiRequest(addr, method, target, body, extra)
        : scgiRequest(addr, method, target, body, extra);
}
