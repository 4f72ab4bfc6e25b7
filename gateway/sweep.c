/* sweep.c - the liveness checks of a worker's Pusher connections: a ping to
 * a connection silent for idle-ping seconds, a close (4201) when the pong
 * does not come within pong-timeout, and a close (4009) of a connection not
 * authorized within its app's authorization-timeout.
 *
 * Each connection waits in a timer wheel of SWEEP_SLOTS slots of one tick
 * (250 ms), in the slot of its next deadline, so a tick touches only the
 * connections due then instead of walking all of them (a pass over 5,000
 * connections cost 1-1.5 ms four times a second, a stall of every delivery
 * queued behind it). Deadlines move lazily: a message received only updates
 * last_rx_ms, and the connection, found in its old slot, is put back in the
 * slot of its new deadline. A deadline only ever moves later outside this
 * file, so a connection is never checked late by more than one tick. */
#include "gw.h"
#include "mn.h"
#include "msg.h"

/* The deadline of c's next check, from what it is waiting for. */
static uint64_t
due_ms(const struct conn *c, const struct mn_config *cfg)
{
    uint64_t due = c->ping_sent_ms ? c->ping_sent_ms + cfg->pong_timeout * 1000ull
                                   : c->last_rx_ms + cfg->idle_ping * 1000ull;

    if (c->app && c->app->authorized_connections && !c->authorized) {
        uint64_t auth = c->opened_ms + c->app->authorization_timeout * 1000ull;

        if (auth < due)
            due = auth;
    }
    return due;
}

static void
unlink_conn(struct conn *c)
{
    if (c->sweep_pprev == NULL)
        return;
    *c->sweep_pprev = c->sweep_next;
    if (c->sweep_next)
        c->sweep_next->sweep_pprev = c->sweep_pprev;
    c->sweep_pprev = NULL;
    c->sweep_next = NULL;
}

/* Puts c in the slot of its deadline: at the earliest the next tick's, at
 * the latest the wheel's last one (checked again then). */
static void
place(struct worker *w, struct conn *c)
{
    uint64_t tick = due_ms(c, w->cfg) / SWEEP_TICK_MS, slot;

    if (tick <= w->sweep_tick)
        tick = w->sweep_tick + 1;
    else if (tick >= w->sweep_tick + SWEEP_SLOTS)
        tick = w->sweep_tick + SWEEP_SLOTS - 1;
    slot = tick % SWEEP_SLOTS;
    c->sweep_next = w->sweep_wheel[slot];
    if (c->sweep_next)
        c->sweep_next->sweep_pprev = &c->sweep_next;
    w->sweep_wheel[slot] = c;
    c->sweep_pprev = &w->sweep_wheel[slot];
}

void
sweep_add(struct worker *w, struct conn *c)
{
    if (w->sweep_tick == 0)
        w->sweep_tick = mn_now_ms() / SWEEP_TICK_MS;
    place(w, c);
}

void
sweep_remove(struct conn *c)
{
    unlink_conn(c);
}

/* The checks of one connection whose deadline may have come. */
static void
check(struct conn *c, uint64_t now, struct buf *b)
{
    const struct mn_config *cfg = c->w->cfg;

    if (c->close_code)
        return;
    if (c->ping_sent_ms == 0 && now - c->last_rx_ms >= cfg->idle_ping * 1000ull) {
        msg_ping(b);
        ws_send_buf(c, b);
        c->ping_sent_ms = now;
    } else if (c->ping_sent_ms && now - c->ping_sent_ms >= cfg->pong_timeout * 1000ull) {
        ws_close(c, 4201, "Pong reply not received");
    }
    if (c->app && c->app->authorized_connections && !c->authorized &&
        now - c->opened_ms >= c->app->authorization_timeout * 1000ull)
        ws_close(c, 4009, "Connection not authorized within timeout");
}

void
ws_sweep(struct worker *w, uint64_t now)
{
    struct buf b = BUF_INIT;
    uint64_t until = now / SWEEP_TICK_MS;

    if (w->sweep_tick == 0)
        w->sweep_tick = until;
    /* A late tick (a stalled loop) catches up on every slot it passed. */
    if (until - w->sweep_tick > SWEEP_SLOTS)
        w->sweep_tick = until - SWEEP_SLOTS;
    while (w->sweep_tick < until) {
        size_t slot = ++w->sweep_tick % SWEEP_SLOTS;
        struct conn *head = w->sweep_wheel[slot], *c;

        /* Detached first: a connection put back lands in a later slot, never
         * in this pass; one closed meanwhile unlinks itself from head. */
        w->sweep_wheel[slot] = NULL;
        if (head)
            head->sweep_pprev = &head;
        while ((c = head) != NULL) {
            unlink_conn(c);
            check(c, now, &b);
            if (!c->close_code)
                place(w, c);
        }
    }
    buf_free(&b);
}
