// webhook-receiver.mjs - a webhook endpoint for the tests: node http, or
// https with config/test-cert.pem, on a free loopback port; every request is
// checked with the `pusher` library's verifier (isValid(), then getEvents());
// each route can answer 500 a number of times or hold requests (hang).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import { performance, Inbox, PusherServer, certFile, keyFile } from './harness.mjs';

/** One webhook endpoint: what it answers, and every request it got. */
export class Route {
    constructor(path, app) {
        this.path = path;
        this.sdk = new PusherServer({ appId: app.id || app.name, key: app.key, secret: app.secret });
        this.requests = []; // every request: {valid, status, events, at, ...}
        this.events = new Inbox(`webhooks ${path}`); // events of requests answered 200
        this.fail = 0; // answer this many next requests with 500
        this.hang = false; // hold requests without answering
        this.held = [];
    }

    handle(req, res, rawBody) {
        const hook = this.sdk.webhook({ headers: req.headers, rawBody });
        const valid = hook.isValid();
        const rec = {
            at: performance.now(),
            valid,
            rawBody,
            contentType: req.headers['content-type'],
            key: req.headers['x-pusher-key'],
            host: req.headers.host,
            encrypted: Boolean(req.socket.encrypted), // https
            servername: req.socket.servername, // https: the SNI name, or false
            events: valid ? hook.getEvents() : [],
            timeMs: valid ? hook.getData().time_ms : null,
        };
        this.requests.push(rec);
        if (this.hang) {
            rec.status = 'held';
            this.held.push(res);
            return;
        }
        if (this.fail > 0) {
            this.fail--;
            rec.status = 500;
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end('try again');
            return;
        }
        rec.status = 200;
        for (const ev of rec.events) this.events.push({ ...ev, at: rec.at });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
    }

    /** Ends a hang: held requests are dropped unanswered, new ones answered. */
    release() {
        this.hang = false;
        for (const res of this.held) res.socket?.destroy();
        this.held = [];
    }

    of(name, channel) {
        return this.events.filter((e) => e.name === name && (channel === undefined || e.channel === channel));
    }

    waitFor(pred, timeout = 2000) {
        return this.events.waitFor(pred, { timeout });
    }
}

export class Receiver {
    /** tls: https with config/test-cert.pem (names localhost and 127.0.0.1);
     * host: the loopback address to listen on. */
    constructor({ tls = false, host = '127.0.0.1' } = {}) {
        this.tls = tls;
        this.host = host;
        this.routes = new Map();
        this.connections = []; // performance.now() of every TCP connection
        this.tlsErrors = []; // https: handshakes that failed, with the reason
    }

    route(path, app) {
        const r = new Route(path, app);
        this.routes.set(path, r);
        return r;
    }

    async start() {
        const handler = (req, res) => {
            const chunks = [];
            req.on('data', (d) => chunks.push(d));
            req.on('end', () => {
                const route = this.routes.get(req.url);
                if (!route) {
                    res.writeHead(404);
                    res.end();
                    return;
                }
                route.handle(req, res, Buffer.concat(chunks).toString('utf8'));
            });
        };
        this.server = this.tls
            ? https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, handler)
            : http.createServer(handler);
        this.server.on('connection', () => this.connections.push(performance.now()));
        this.server.on('tlsClientError', (e) => this.tlsErrors.push(e.code || e.message));
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(0, this.host, resolve);
        });
        this.port = this.server.address().port;
        return this;
    }

    /** The URL of path, naming the receiver as host (default: its address). */
    url(path, host = this.host) {
        return `${this.tls ? 'https' : 'http'}://${host}:${this.port}${path}`;
    }

    stop() {
        this.server.closeAllConnections();
        return new Promise((resolve) => this.server.close(resolve));
    }
}

/**
 * Counts of each event type, expected against received, over the channels a
 * test accounts for exactly: account() asserts and adds a row; table holds
 * kind -> {expected, received}, printed by a file's last test.
 */
export function tally() {
    const table = new Map();
    const account = (kind, expected, received) => {
        const row = table.get(kind) || { expected: 0, received: 0 };
        row.expected += expected;
        row.received += received;
        table.set(kind, row);
        assert.equal(received, expected, `${kind}: received ${received}, expected ${expected}`);
    };
    return { table, account };
}

