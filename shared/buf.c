/* buf.c - growable buffers. Owns growth and overflow checks; knows nothing of
 * what is written into it beyond JSON string escaping. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "mn.h"

void
buf_init_head(struct buf *b, size_t head)
{
    b->base = NULL;
    b->head = head;
    b->len = 0;
    b->cap = 0;
}

void
buf_reserve(struct buf *b, size_t more)
{
    size_t want, cap;

    if (more > SIZE_MAX - b->len - 1 - b->head)
        abort(); /* a caller forgot to cap a network size: our bug */
    want = b->len + more + 1;
    if (b->base != NULL && want <= b->cap)
        return;
    cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    b->base = xrealloc(b->base, b->head + cap);
    b->cap = cap;
}

void
buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->base + b->head + b->len, data, len);
    b->len += len;
    b->base[b->head + b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->base + b->head + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void
buf_json_str(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    buf_reserve(b, len + 2);
    buf_putc(b, '"');
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        buf_append(b, esc, n);
    }
    buf_append(b, s + run, len - run);
    buf_putc(b, '"');
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->base)
        b->base[b->head] = '\0';
}

char *
buf_steal(struct buf *b)
{
    char *p;

    if (b->base == NULL)
        buf_reserve(b, 0), b->base[b->head] = '\0';
    p = b->base;
    b->base = NULL;
    b->len = b->cap = 0;
    return p;
}

void
buf_free(struct buf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
