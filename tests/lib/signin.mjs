// signin.mjs - user sign-in helpers for the tests of issue 3 (users, watchlist,
// authorized connections), on top of harness.mjs: a raw pusher:signin signed by
// the `pusher` SDK, and pusher-js's own signin() awaited to signin_success.

import { connectClient, hmacHex } from './harness.mjs';

/**
 * Sends pusher:signin on a raw client with user_data = JSON of `user`, signed
 * for app (config name, default app1; `secret` signs with another secret), or
 * with `auth` / `userData` text given as is, and resolves the first answer:
 * the pusher:signin_success or a pusher:error arriving after the request.
 */
export async function rawSignin(c, user, opts = {}) {
    const { app = 'app1', secret, auth, userData, timeout = 2000 } = opts;
    if (!c.socketId) await c.established();
    const a = c.gw.app(app);
    // Signed by hand (the SDK refuses user data without an id, which the
    // refusal tests need); the SDK's authenticateUser serialises the same way.
    const text = userData ?? JSON.stringify(user);
    const sig = hmacHex(secret ?? a.secret, `${c.socketId}::user::${text}`);
    const from = c.messages.items.length;
    c.send({ event: 'pusher:signin', data: { auth: auth ?? `${a.key}:${sig}`, user_data: text } });
    const f = (m) => m.event === 'pusher:signin_success' || m.event === 'pusher:error';
    f.what = 'an answer to pusher:signin';
    return c.waitFor(f, { from, timeout });
}

/**
 * Connects pusher-js with userAuthentication signing `user` through the SDK,
 * calls pusher.signin() and resolves the client once pusher:signin_success has
 * arrived. Options as connectClient (app, t, presence, options...).
 */
export async function signedInClient(gw, user, opts = {}) {
    const c = await connectClient(gw, { ...opts, user });
    const from = c.messages.items.length;
    c.pusher.signin();
    await c.messages.waitFor('pusher:signin_success', { from, timeout: opts.timeout ?? 3000 });
    return c;
}

/** Resolves once pusher-js has subscribed its #server-to-user-{id} channel
 * (a subscription_succeeded at message index >= from: after a reconnect, pass
 * the index the new connection started at). */
export function userChannelReady(c, timeout = 3000, from = 0) {
    const f = (m) => m.event === 'pusher_internal:subscription_succeeded' &&
        typeof m.channel === 'string' && m.channel.startsWith('#server-to-user-');
    f.what = 'subscription_succeeded on #server-to-user-';
    return c.messages.waitFor(f, { timeout, from });
}
