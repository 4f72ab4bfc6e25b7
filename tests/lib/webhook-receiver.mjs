// webhook-receiver.mjs - a webhook endpoint for the tests: node http on a
// free loopback port; every request is checked with the `pusher` library's
// verifier (isValid(), then getEvents()); each route can answer 500 a number
// of times or hold requests (hang).
import http from 'node:http';

import { performance, Inbox, PusherServer } from './harness.mjs';

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
    constructor() {
        this.routes = new Map();
    }

    route(path, app) {
        const r = new Route(path, app);
        this.routes.set(path, r);
        return r;
    }

    async start() {
        this.server = http.createServer((req, res) => {
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
        });
        await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
        this.port = this.server.address().port;
        return this;
    }

    url(path) {
        return `http://127.0.0.1:${this.port}${path}`;
    }

    stop() {
        this.server.closeAllConnections();
        return new Promise((resolve) => this.server.close(resolve));
    }
}
