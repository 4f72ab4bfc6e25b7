/* test_sweep.c - gateway/sweep.c, the liveness checks' timer wheel, with
 * ws_send_buf and ws_close stubbed out and time given by the test: a silent
 * connection is pinged once its idle-ping has passed and not before, closed
 * with 4201 when the pong does not come in pong-timeout, a received message
 * moves its deadline (found lazily in the old slot), 4009 for a connection not
 * authorized in time, a removed connection is never touched again, a stalled
 * loop (past the whole wheel) catches up once, and 2,000 connections with
 * spread deadlines are each pinged exactly once within one tick of it, and
 * closed within one tick of their pong deadline. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "tap.h"

#define NCONNS 2000

static struct conn *conns;
static size_t nconns;
static unsigned pings[NCONNS + 8];
static uint64_t pinged_at[NCONNS + 8], closed_at[NCONNS + 8];
static uint64_t now_ms;

static size_t
index_of(const struct conn *c)
{
    return (size_t)(c - conns);
}

void
ws_send_buf(struct conn *c, struct buf *b)
{
    if (b->len && strstr(buf_data(b), "pusher:ping")) {
        pings[index_of(c)]++;
        pinged_at[index_of(c)] = now_ms;
    }
    buf_reset(b);
}

void
ws_close(struct conn *c, int code, const char *why)
{
    (void)why;
    c->close_code = code;
    closed_at[index_of(c)] = now_ms;
}

static void
sweep_at(struct worker *w, uint64_t t)
{
    now_ms = t;
    ws_sweep(w, t);
}

/* The conn i, silent since t. */
static struct conn *
conn_at(struct worker *w, const struct mn_app *app, size_t i, uint64_t t)
{
    struct conn *c = &conns[i];

    memset(c, 0, sizeof(*c));
    c->w = w;
    c->app = app;
    c->last_rx_ms = c->opened_ms = t;
    pings[i] = 0;
    pinged_at[i] = 0;
    sweep_add(w, c);
    if (i >= nconns)
        nconns = i + 1;
    return c;
}

int
main(void)
{
    struct mn_config cfg = {0};
    struct mn_app app = {0}, strict = {0};
    struct worker *w = calloc(1, sizeof(*w));
    const uint64_t t0 = 10000000; /* ms */
    struct conn *a, *b, *u;
    bool all_once = true, in_time = true, closed_in_time = true;

    plan(20);
    conns = calloc(NCONNS + 8, sizeof(*conns));
    cfg.idle_ping = 45;
    cfg.pong_timeout = 30;
    strict.authorized_connections = true;
    strict.authorization_timeout = 5;
    w->cfg = &cfg;
    w->sweep_tick = t0 / SWEEP_TICK_MS;

    a = conn_at(w, &app, 0, t0);
    b = conn_at(w, &app, 1, t0);
    u = conn_at(w, &strict, 2, t0);
    sweep_at(w, t0 + 4750);
    ok(u->close_code == 0, "not authorized, 4.75 s: still open");
    sweep_at(w, t0 + 5000);
    is_int(u->close_code, 4009, "not authorized, 5 s: closed 4009");
    sweep_at(w, t0 + 30000);
    b->last_rx_ms = t0 + 30000; /* b spoke; its slot is not touched */
    sweep_at(w, t0 + 44750);
    ok(pings[0] == 0 && pings[1] == 0, "44.75 s of silence: no ping yet");
    sweep_at(w, t0 + 45000);
    is_int((int)pings[0], 1, "45 s of silence: pinged");
    ok(a->ping_sent_ms == t0 + 45000, "the ping's time is kept");
    is_int((int)pings[1], 0,
           "b, silent for 15 s only: not pinged (its old slot is re-placed)");
    sweep_at(w, t0 + 74750);
    ok(a->close_code == 0, "29.75 s without a pong: still open");
    sweep_at(w, t0 + 75000);
    is_int(a->close_code, 4201, "30 s without a pong: closed 4201");
    is_int((int)pings[1], 1, "b pinged 45 s after it last spoke");
    b->ping_sent_ms = 0; /* the pong */
    b->last_rx_ms = t0 + 76000;
    sweep_at(w, t0 + 105000);
    ok(b->close_code == 0, "b answered: not closed when its pong deadline comes");
    is_int((int)pings[1], 1, "... nor pinged again before 45 s of silence");
    sweep_at(w, t0 + 121000);
    is_int((int)pings[1], 2, "b pinged again 45 s after the pong");
    ok(pings[0] == 1, "a closed connection is never pinged again");

    /* Removed: never touched again, however long the loop runs. */
    sweep_remove(b);
    b->ping_sent_ms = 0;
    for (uint64_t t = t0 + 121250; t <= t0 + 400000; t += 250)
        sweep_at(w, t);
    is_int((int)pings[1], 2, "a removed connection is never touched");

    /* A loop stalled past the whole wheel (256 s): one catch-up pass. */
    b = conn_at(w, &app, 3, t0 + 400000);
    sweep_at(w, t0 + 400000 + 600000);
    is_int((int)pings[3], 1, "after a 10-minute stall: pinged once");
    sweep_at(w, t0 + 400000 + 600250);
    is_int((int)pings[3], 1, "... and not again at the next tick");
    ok(b->ping_sent_ms == t0 + 1000000, "... with the ping's time of the late tick");

    /* 2,000 connections that last spoke at spread times within 60 s. */
    {
        uint64_t base = t0 + 2000000, end = base + 110000;

        w->sweep_tick = base / SWEEP_TICK_MS;
        for (size_t i = 8; i < NCONNS + 8; i++)
            conn_at(w, &app, i, base + (uint64_t)(i * 37 % 60000));
        for (uint64_t t = base + 250; t <= end; t += 250)
            sweep_at(w, t);
        for (size_t i = 8; i < NCONNS + 8; i++) {
            uint64_t due = conns[i].last_rx_ms + 45000;

            all_once &= pings[i] == 1;
            in_time &= pinged_at[i] >= due && pinged_at[i] < due + SWEEP_TICK_MS;
            /* No pong: closed at the tick of its pong deadline, if that
             * came before the loop's end, else still open. */
            if (pinged_at[i] + 30000 <= end)
                closed_in_time &= conns[i].close_code == 4201 &&
                                  closed_at[i] >= pinged_at[i] + 30000 &&
                                  closed_at[i] < pinged_at[i] + 30000 + SWEEP_TICK_MS;
            else
                closed_in_time &= conns[i].close_code == 0;
        }
        ok(all_once, "2,000 connections: each pinged exactly once");
        ok(in_time, "... each at its deadline's tick, never before it");
        ok(closed_in_time, "... closed 4201 at their pong deadline's tick, not before");
    }
    free(conns);
    free(w);
    return done_testing();
}
