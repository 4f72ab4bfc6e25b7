/* frame.c - refcounted frames and the bounded send queue (a growable ring). */
#include "frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "mn.h"

struct frame *
frame_new(const void *payload, size_t len)
{
    struct frame *f = xmalloc(sizeof(*f) + LWS_PRE + len);

    atomic_init(&f->refs, 1);
    f->len = len;
    f->hdr[0] = 0x81; /* FIN, text */
    if (len < 126) {
        f->hdr[1] = (unsigned char)len;
        f->hlen = 2;
    } else if (len <= 0xffff) {
        f->hdr[1] = 126;
        f->hdr[2] = (unsigned char)(len >> 8);
        f->hdr[3] = (unsigned char)len;
        f->hlen = 4;
    } else {
        f->hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            f->hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        f->hlen = 10;
    }
    memcpy(f->data + LWS_PRE, payload, len);
    return f;
}

struct frame *
frame_ref(struct frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void
frame_unref(struct frame *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static void
grow(struct sendq *q)
{
    size_t slots = q->slots ? q->slots * 2 : 8;
    struct frame **ring = xmalloc(slots * sizeof(*ring));

    for (size_t i = 0; i < q->count; i++)
        ring[i] = q->ring[(q->head + i) % q->slots];
    free(q->ring);
    q->ring = ring;
    q->head = 0;
    q->slots = slots;
}

int
sendq_push_take(struct sendq *q, struct frame *f, size_t max_msgs, size_t max_bytes)
{
    if (q->count >= max_msgs || q->bytes + f->len > max_bytes) {
        frame_unref(f);
        return -1;
    }
    if (q->count == q->slots)
        grow(q);
    q->ring[(q->head + q->count) % q->slots] = f;
    q->count++;
    q->bytes += f->len;
    return 0;
}

struct frame *
sendq_peek(const struct sendq *q)
{
    return q->count ? q->ring[q->head] : NULL;
}

void
sendq_pop(struct sendq *q)
{
    struct frame *f;

    if (q->count == 0)
        return;
    f = q->ring[q->head];
    q->head = (q->head + 1) % q->slots;
    q->count--;
    q->bytes -= f->len;
    frame_unref(f);
}

void
sendq_clear(struct sendq *q)
{
    while (q->count)
        sendq_pop(q);
    free(q->ring);
    q->ring = NULL;
    q->head = q->slots = 0;
}
