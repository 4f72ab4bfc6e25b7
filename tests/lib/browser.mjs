// browser.mjs - the browser tier's pieces: a small app server (test page,
// pusher-js browser bundles from node_modules, /pusher/auth and
// /pusher/user-auth signing with the `pusher` SDK) and Debian's chromium
// driven by playwright-core. Never downloads a browser.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

import { chromium } from 'playwright-core';

import { libDir, certFile, waitUntil } from './harness.mjs';

const require = createRequire(import.meta.url);
const pusherJsDir = path.join(path.dirname(require.resolve('pusher-js/package.json')), 'dist', 'web');

export const CHROMIUM = process.env.MN_CHROMIUM || '/usr/bin/chromium';

const BUNDLES = {
    '/pusher.min.js': 'pusher.min.js',
    // The plain bundle has no NaCl: private-encrypted- needs this one.
    '/pusher-with-encryption.min.js': 'pusher-with-encryption.min.js',
};

function readForm(req) {
    return new Promise((resolve, reject) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d) => {
            body += d;
            if (body.length > 65536) req.destroy(new Error('auth body too large'));
        });
        req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
        req.on('error', reject);
    });
}

function send(res, status, type, body) {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
}

/**
 * Starts the app server on a free port for gateway gw and app `app`.
 * Presence auth uses the form fields user_id and user_name that the page adds
 * to pusher-js's auth params. Resolves {url, port, requests, close()}.
 */
export async function startAppServer(gw, { app = 'app1' } = {}) {
    const sdk = gw.rest(app);
    const a = gw.app(app);
    const page = fs.readFileSync(path.join(libDir, 'browser-page.html'), 'utf8');
    const requests = [];
    const server = http.createServer(async (req, res) => {
        const url = new URL(req.url, 'http://localhost');
        requests.push(`${req.method} ${url.pathname}`);
        try {
            if (req.method === 'GET' && url.pathname === '/') {
                return send(res, 200, 'text/html; charset=utf-8', page);
            }
            if (req.method === 'GET' && url.pathname === '/config.json') {
                return send(res, 200, 'application/json', JSON.stringify({
                    key: a.key, host: gw.host, port: gw.port, tls: gw.tls,
                }));
            }
            if (req.method === 'GET' && BUNDLES[url.pathname]) {
                const js = fs.readFileSync(path.join(pusherJsDir, BUNDLES[url.pathname]));
                return send(res, 200, 'text/javascript', js);
            }
            if (req.method === 'POST' && url.pathname === '/pusher/auth') {
                const f = await readForm(req);
                const presence = f.channel_name.startsWith('presence-')
                    ? { user_id: f.user_id, user_info: { name: f.user_name } }
                    : undefined;
                const auth = sdk.authorizeChannel(f.socket_id, f.channel_name, presence);
                return send(res, 200, 'application/json', JSON.stringify(auth));
            }
            if (req.method === 'POST' && url.pathname === '/pusher/user-auth') {
                const f = await readForm(req);
                const auth = sdk.authenticateUser(f.socket_id, {
                    id: f.user_id, user_info: { name: f.user_name },
                });
                return send(res, 200, 'application/json', JSON.stringify(auth));
            }
            if (url.pathname === '/favicon.ico') return send(res, 204, 'text/plain', '');
            return send(res, 404, 'text/plain', 'not found');
        } catch (e) {
            return send(res, 403, 'text/plain', `auth refused: ${e.message}`);
        }
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    return {
        port,
        url: `http://127.0.0.1:${port}/`,
        requests,
        close: () => new Promise((resolve) => {
            server.closeAllConnections?.();
            server.close(() => resolve());
        }),
    };
}

/** SHA-256 of the certificate's SubjectPublicKeyInfo, base64: what Chrome's
 * --ignore-certificate-errors-spki-list takes. */
export function spkiHash(pemFile = certFile) {
    const cert = new crypto.X509Certificate(fs.readFileSync(pemFile));
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    return crypto.createHash('sha256').update(spki).digest('base64');
}

/** Launches Debian's chromium headless. extraArgs are appended. */
export async function launchBrowser(extraArgs = []) {
    if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
    }
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
            '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run',
            '--disable-quic', '--disable-dev-shm-usage', ...extraArgs,
        ],
        timeout: 30000,
    });
}

/**
 * Opens the test page as user {id, name} in a fresh browser context, with the
 * bundle `bundle` ('pusher.min.js' or 'pusher-with-encryption.min.js'), and
 * waits until pusher-js is connected. Console errors and page errors are kept
 * in page.problems for failure messages.
 */
export async function openPage(browser, appServer, { user = { id: 'u1', name: 'User 1' },
    bundle = 'pusher.min.js', t } = {}) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.problems = [];
    page.wsUrls = []; // every WebSocket the page opened
    page.on('websocket', (ws) => page.wsUrls.push(ws.url()));
    page.on('console', (m) => {
        if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
    if (t) t.after(() => context.close().catch(() => {}));
    const q = new URLSearchParams({ bundle, user_id: user.id, user_name: user.name });
    await page.goto(`${appServer.url}?${q}`);
    try {
        await page.waitForFunction(() => window.mn && window.mn.state() === 'connected',
            null, { timeout: 10000 });
    } catch (e) {
        const states = await page.evaluate(() => window.mn && window.mn.states).catch(() => null);
        throw new Error(`page never connected: states ${JSON.stringify(states)}; ` +
            `${page.problems.join('; ')}`);
    }
    page.closeContext = () => context.close();
    return page;
}

/** Subscribes in the page; resolves what subscription_succeeded gave (members for presence). */
export async function pageSubscribe(page, channel) {
    const r = await page.evaluate((ch) => window.mn.subscribe(ch), channel);
    if (r.error) throw new Error(`subscribe ${channel} failed in the browser: ${JSON.stringify(r.error)}`);
    return r;
}

/** Waits until the page logged `event` on `channel`; returns the log entry. */
export async function pageEvent(page, channel, event, timeout = 3000) {
    try {
        const h = await page.waitForFunction(
            ([ch, ev]) => window.mn.log.find((e) => e.channel === ch && e.event === ev),
            [channel, event], { timeout });
        return await h.jsonValue();
    } catch {
        const log = await page.evaluate(() => window.mn.log);
        throw new Error(`no ${event} on ${channel} in the browser within ${timeout} ms; ` +
            `log ${JSON.stringify(log).slice(0, 800)}; ${page.problems.join('; ')}`);
    }
}

export { waitUntil };
