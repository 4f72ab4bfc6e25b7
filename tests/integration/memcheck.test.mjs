// memcheck.test.mjs - the gateway frees everything it allocates (RELIABILITY
// C2/C3): 50 pusher-js connections x 5 cycles of public, private and presence
// subscriptions, client events and REST triggers, then a clean SIGTERM.
// The release build runs under valgrind memcheck ("definitely lost: 0 bytes",
// 0 errors); the sanitizer build is checked by its own LeakSanitizer instead
// (valgrind cannot run an ASan binary), which the harness asserts on stop.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

import { startGateway, connectClient, waitForEvent, gatewayBin, uniq } from '../lib/harness.mjs';

const asan = fs.readFileSync(gatewayBin).includes('__asan_init');
const wrap = asan ? [] : ['valgrind', '--leak-check=full', '--show-leak-kinds=definite,indirect',
    '--errors-for-leak-kinds=definite,indirect', '--error-exitcode=99', '--num-callers=30'];
if (!asan) execFileSync('valgrind', ['--version']); // fails the file when valgrind is missing

test(`${asan ? 'LeakSanitizer' : 'valgrind memcheck'}: 50 connections x 5 cycles, clean exit, nothing lost`,
    { timeout: 300000 }, async (t) => {
        const gw = await startGateway({ wrap, config: { workers: 2 } });
        const rest = gw.rest();
        for (let cycle = 0; cycle < 5; cycle++) {
            const pub = uniq('mem-'), priv = uniq('private-mem-'), pres = uniq('presence-mem-');
            const clients = [];
            for (let i = 0; i < 50; i++) {
                const c = await connectClient(gw, { presence: { user_id: `u${i % 10}`, user_info: { i } },
                    timeout: 20000 });
                clients.push(c);
                await c.subscribe(pub, 20000);
                await c.subscribe(priv, 20000);
                await c.subscribe(pres, 20000);
            }
            const got = clients.map((c) => waitForEvent(c.channel(pub), 'ev', 20000));
            const res = await rest.trigger([pub, priv], 'ev', { cycle });
            assert.equal(res.status, 200);
            await Promise.all(got);
            for (const c of clients) c.close();
        }
        const exit = await gw.stop();
        const log = gw.stderr;
        if (!asan) {
            const lost = /definitely lost: ([\d,]+) bytes/.exec(log);
            const errors = /ERROR SUMMARY: (\d+) errors/.exec(log);
            t.diagnostic(lost ? `valgrind: definitely lost ${lost[1]} bytes, ${errors?.[1]} errors`
                : 'valgrind: no leaks are possible');
            assert.ok(!lost || lost[1] === '0', log.slice(-4000));
            assert.equal(errors?.[1], '0', log.slice(-4000));
        }
        assert.deepEqual(exit, { code: 0, signal: null });
    });
